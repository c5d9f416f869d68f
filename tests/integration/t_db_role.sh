#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Row-level security does not hold for a superuser: canopyd says so at
# start, and says nothing when it runs as the ordinary role it should.
set -eu
. "$(dirname "$0")/lib.sh"

warned() { grep -q "row-level security does not isolate" "$CANOPYD_LOG"; }

pg_start
step "as the ordinary role canopy: no warning"
canopyd_start
wait_for "the schema migrated" 30 pg_sql "SELECT 1 FROM status_rules LIMIT 1"
! warned || fail "canopyd warned about row-level security as role canopy"
canopyd_stop

step "as the superuser postgres: the warning"
ordinary=$PG_CONNINFO
PG_CONNINFO=${ordinary/user=canopy/user=postgres}
canopyd_start "max-agents 100"	# rewrites the config with PG_CONNINFO
wait_for "the warning about row-level security in the log" 30 warned
canopyd_stop
