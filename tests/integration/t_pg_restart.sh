#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# PostgreSQL goes away under running agents: canopyd stays up, /healthz says
# 503, agents are told to retry and keep their events on disk; when the
# database is back every event is stored exactly once (nothing missing,
# nothing twice).
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopy-agent
pg_start
canopyd_start
admin_create admin 'pg-restart-password'
token_create 2 >/dev/null
token=$ENROLL_TOKEN
for a in a1 a2; do
	agent_enroll "$a" "$token"
	agent_start "$a"
done
wait_for "$AGENTS_METRIC to be 2" 60 metric_is "$AGENTS_METRIC" 2

events_stored() {
	pg_sql "SELECT count(*) FROM events WHERE type = 'pgtest'"
}
stored_is() {
	[ "$(events_stored)" = "$1" ]
}
queued() {
	find "$(agent_dir "$1")/events" -type f 2>/dev/null | wc -l
}
queues_empty() {
	[ "$(queued a1)" = 0 ] && [ "$(queued a2)" = 0 ]
}

step "events while the database is up"
for i in $(seq 1 15); do
	agent_event a1 info pgtest "a1-$i"
	agent_event a2 warning pgtest "a2-$i"
done
wait_for "the first 30 events to be stored" 60 stored_is 30

step "more events, then the database stops under them"
for i in $(seq 16 25); do
	agent_event a1 info pgtest "a1-$i"
	agent_event a2 error pgtest "a2-$i"
done
pg_stop
step "PostgreSQL stopped"
for i in $(seq 26 40); do
	agent_event a1 critical pgtest "a1-$i"
	agent_event a2 info pgtest "a2-$i"
done
healthz_is() { [ "$(healthz_status)" = "$1" ]; }
wait_for "/healthz to say 503 while the database is down" 60 healthz_is 503
api_anon GET /healthz >/dev/null
assert_status 503 "/healthz while the database is down"
canopyd_alive || fail "canopyd exited when PostgreSQL stopped"
# What was not acknowledged stays on the agents' disks.
q1=$(queued a1)
q2=$(queued a2)
[ "$q1" -ge 15 ] && [ "$q2" -ge 15 ] ||
    fail "events queued on disk while the database is down: a1 $q1, a2 $q2 (want >= 15 each)"
# Let the agents meet 'retry' a few times (their sessions must stay up).
retried() { metrics | grep -Eq '^canopy_retries(_total)?(\{[^}]*\})? [1-9]'; }
wait_for "canopyd to answer 'retry' (canopy_retries > 0)" 60 retried
canopyd_alive || fail "canopyd exited while the database was down"
for a in a1 a2; do
	agent_alive "$a" || fail "agent $a exited while the database was down"
done
assert_eq 2 "$(metric "$AGENTS_METRIC")" "$AGENTS_METRIC while the database is down"

step "PostgreSQL back"
pg_restart
wait_for "/healthz to say 200 again" 60 healthz_is 200
wait_for "all 80 events to be stored" 90 stored_is 80
wait_for "the agents' queues to drain" 60 queues_empty

step "every event exactly once"
dups=$(pg_sql "SELECT text || ' x' || count(*) FROM events WHERE type = 'pgtest' GROUP BY text HAVING count(*) <> 1")
assert_eq "" "$dups" "events stored more than once"
expected=$(for a in a1 a2; do for i in $(seq 1 40); do echo "$a-$i"; done; done | sort)
got=$(pg_sql "SELECT text FROM events WHERE type = 'pgtest' ORDER BY text" | sort)
assert_eq "$expected" "$got" "the set of stored events"
# Each agent's events belong to its own device, with their severities.
assert_eq 2 "$(pg_sql "SELECT count(DISTINCT device_id) FROM events WHERE type = 'pgtest'")" \
    "devices owning the events"
assert_eq 1 "$(pg_sql "SELECT count(DISTINCT device_id) FROM events WHERE text LIKE 'a1-%'")" \
    "devices owning a1's events"
assert_eq 10 "$(pg_sql "SELECT count(*) FROM events WHERE type = 'pgtest' AND severity = 'error'")" \
    "events of severity error"
# No late duplicate: a fresh event after everything goes through alone.
agent_event a1 info pgtest "a1-final"
wait_for "the final event to be stored" 60 stored_is 81
dups=$(pg_sql "SELECT count(*) FROM events WHERE type = 'pgtest' GROUP BY text HAVING count(*) <> 1")
assert_eq "" "$dups" "events stored more than once, after the final one"

for a in a1 a2; do
	agent_stop "$a"
done
canopyd_stop
