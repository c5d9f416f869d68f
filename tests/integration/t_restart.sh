#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# canopyd stops on SIGTERM and starts again with the same state: the same
# three agents reconnect by themselves (with backoff), nobody re-enrols, and
# their last_seen advances.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopy-agent
pg_start
canopyd_start
admin_create admin 'restart-password-1'
token_create 3 >/dev/null
token=$ENROLL_TOKEN
for a in a1 a2 a3; do
	agent_enroll "$a" "$token"
	agent_start "$a"
done
wait_for "$AGENTS_METRIC to be 3" 60 metric_is "$AGENTS_METRIC" 3
all_seen() {
	[ "$(pg_sql "SELECT count(*) FROM devices WHERE last_seen IS NOT NULL")" = 3 ]
}
wait_for "3 devices with a last_seen" 30 all_seen
ca_before=$(cat "$CANOPYD_STATE/ca.pem")
api GET /api/v1/devices >/dev/null
assert_status 200 "GET /devices"
ids_before=$(json '.devices[].id' | sort)

step "stop canopyd"
canopyd_stop
for a in a1 a2 a3; do
	agent_alive "$a" || fail "agent $a exited when the server went away"
done
t0=$(pg_sql "SELECT now()")

step "start it again"
canopyd_start
assert_eq "$ca_before" "$(cat "$CANOPYD_STATE/ca.pem")" "the CA after a restart"
wait_for "the 3 agents to reconnect ($AGENTS_METRIC = 3)" 90 \
    metric_is "$AGENTS_METRIC" 3
seen_since() {
	[ "$(pg_sql "SELECT count(*) FROM devices WHERE last_seen > '$t0'")" = 3 ]
}
wait_for "last_seen of all 3 devices to advance past the restart" 60 seen_since
api_login
api GET /api/v1/devices >/dev/null
assert_status 200 "GET /devices after the restart"
assert_eq "$ids_before" "$(json '.devices[].id' | sort)" \
    "the devices after the restart (nobody re-enrolled)"
assert_eq 3 "$(json '[.devices[] | select(.last_seen != null)] | length')" \
    "devices with last_seen in GET /devices"
for a in a1 a2 a3; do
	agent_alive "$a" || fail "agent $a exited"
done

step "a second restart, this time with SIGKILL"
canopyd_kill
t0=$(pg_sql "SELECT now()")
canopyd_start
wait_for "the 3 agents to reconnect after SIGKILL" 90 \
    metric_is "$AGENTS_METRIC" 3
wait_for "last_seen to advance after the SIGKILL restart" 60 seen_since

for a in a1 a2 a3; do
	agent_stop "$a"
done
canopyd_stop
