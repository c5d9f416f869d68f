#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The server-tree benchmark (issue 4), called from `make bench` or by hand.
# A tree of 1 + 3 + 9 servers on this machine (one PostgreSQL cluster, a
# database each), BENCH_AGENTS (10,000) simulated agents spread over the 9
# leaves, then:
#
#   1. a policy change at the top until every leaf agent holds it
#      (BENCH_TREE_ROUNDS changes; the acknowledgements stored at the
#      leaves, each stamped by a bench-only trigger, and canopy-sim's own
#      clock of the last policy received);
#   2. a device change at a leaf until the top shows it: BENCH_TREE_DEVCHG
#      changes spread over the leaves and over time, each timed from the
#      leaf's commit to the top's (a bench-only trigger at the top records
#      arrivals; one clock, one machine);
#   3. upward throughput of one link: 100,000 events written at a leaf,
#      timed until its parent and the top hold them all, beside the leaf's
#      own INSERT of those rows (the machine's write rate for them);
#   4. catch-up after a partition: one middle server frozen (SIGSTOP) for
#      BENCH_PARTITION_S (600) seconds while its three leaves keep writing
#      BENCH_PARTITION_RATE (200) events a second, then thawed: the time
#      until the top holds everything.
#
# CANOPY_BUILD: the optimised build (./build).  Prints a Markdown table.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CANOPY_ROOT=$ROOT
export CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build}
export CANOPY_TEST_NAME=${CANOPY_TEST_NAME:-bench-tree}
export CANOPY_PG_OPTS=${CANOPY_PG_OPTS:-"-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=30min -c max_connections=200"}
export CANOPYD_FLAGS=${CANOPYD_FLAGS:-""}
export CANOPYD_LOG_LEVEL=${CANOPYD_LOG_LEVEL:-warn}
N=${BENCH_AGENTS:-10000}
ROUNDS=${BENCH_TREE_ROUNDS:-5}
DEVCHG=${BENCH_TREE_DEVCHG:-900}
THRU=${BENCH_TREE_EVENTS:-100000}
PART_S=${BENCH_PARTITION_S:-600}
PART_RATE=${BENCH_PARTITION_RATE:-200}

# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=../tests/integration/lib_tree.sh
. "$ROOT/tests/integration/lib_tree.sh"
need_bin canopy-sim

say() { printf '%s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
pctl() {	# percentile P of the numbers on stdin
	sort -n | awk -v p="$1" '{ a[NR] = $1 } END {
	    if (NR == 0) { print "n/a"; exit }
	    i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print a[i] }'
}

MIDS="mid-1 mid-2 mid-3"
LEAVES=""
PER=$((N / 9))
TREE_EXTRA_CONF=("db-workers 3" "max-agents $((PER + 500))")

say "tree: 1 + 3 + 9 servers"
tree_server_start top
for m in 1 2 3; do
	tree_server_start "mid-$m" top
done
for m in 1 2 3; do
	for l in 1 2 3; do
		tree_server_start "leaf-$m-$l" "mid-$m"
		LEAVES="$LEAVES leaf-$m-$l"
	done
done
all_up() {
	local n
	[ "$(tree_sql top "SELECT count(*) FROM hier_links
	    WHERE state = 'connected'")" = 3 ] || return 1
	for n in $MIDS; do
		[ "$(tree_sql "$n" "SELECT count(*) FROM hier_links
		    WHERE state = 'connected'")" = 4 ] || return 1
	done
	for n in $LEAVES; do
		[ "$(tree_sql "$n" "SELECT count(*) FROM hier_links
		    WHERE state = 'connected'")" = 1 ] || return 1
	done
}
wait_for "every link of the tree up" 120 all_up

say "tree: $N simulated agents, $PER at each leaf"
declare -A SIM_PID=()
for n in $LEAVES; do
	tree_use "$n"
	api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
	api POST /api/v1/enrollment-tokens "{\"uses\":$((PER + 10))}" >/dev/null
	assert_status 201 "POST /enrollment-tokens at $n: $API_BODY"
	mkdir -p "$TEST_DIR/sim-$n"
	"$CANOPY_BUILD/canopy-sim" --server "127.0.0.1:${TREE_AGENT[$n]}" \
	    --ca "$TEST_DIR/srv-$n/state/ca.pem" --token "$(json .token)" \
	    --agents "$PER" --dir "$TEST_DIR/sim-$n" --json --hold \
	    --duration 3600 >"$TEST_DIR/sim-$n.json" \
	    2>"$TEST_DIR/sim-$n.log" &
	SIM_PID[$n]=$!
	track_pid "$!"
done
top_has_all() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_devices
	    WHERE last_seen IS NOT NULL")" -ge "$((PER * 9))" ]
}
wait_for "the top to see all $((PER * 9)) agents' devices" 1200 top_has_all

# ------------------------------------------------------------------ 1.
# A bench-only trigger at each leaf stamps every acknowledgement stored
# (one clock, one machine): a round's time is its last stamp, not the
# moment a poll of nine databases noticed it.
for n in $LEAVES; do
	tree_sql "$n" "CREATE TABLE bench_acks (hash text, at_ms bigint);
	    CREATE FUNCTION bench_ack() RETURNS trigger LANGUAGE plpgsql AS \$\$
	    BEGIN
		INSERT INTO bench_acks VALUES (NEW.policy_hash,
		    (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
		RETURN NULL;
	    END \$\$;
	    CREATE TRIGGER bench_ack AFTER UPDATE OF policy_hash ON devices
		FOR EACH ROW WHEN (NEW.policy_hash IS DISTINCT FROM
		OLD.policy_hash) EXECUTE FUNCTION bench_ack();
	    GRANT INSERT ON bench_acks TO canopy;" >/dev/null
done
HASHQ="SELECT canopy_policy_hash(canopy_policy_view(eff)) FROM
    canopy_policy_groups(0) WHERE group_id = (SELECT id FROM groups
    WHERE vs_id = 0 AND kind = 'unassigned')"
leaves_acked() {
	local n h
	for n in $LEAVES; do
		h=$(tree_sql "$n" "$HASHQ")
		[ "$(tree_sql "$n" "SELECT count(*) FROM devices
		    WHERE policy_hash = '$h'")" -ge "$PER" ] || return 1
	done
}
tree_use top
api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
api POST /api/v1/policies '{"group":"/Managed devices","product":"canopy-agent",
    "name":"bench","settings":{"tags":{"value":["r0"],"locked":true}}}' \
    >/dev/null
assert_status 201 "POST /policies at the top: $API_BODY"
POL=$(json .id)
wait_for "every leaf agent to acknowledge the first policy" 600 leaves_acked
PROP=""
for r in $(seq 1 "$ROUNDS"); do
	tree_use top
	T0=$(now_ms)
	api PUT "/api/v1/policies/$POL" "{\"settings\":{\"tags\":{\"value\":
	    [\"r$r\"],\"locked\":true}}}" >/dev/null
	assert_status 200 "PUT /policies at the top: $API_BODY"
	wait_for "every leaf agent to acknowledge round $r" 300 leaves_acked
	T1=0
	for n in $LEAVES; do
		t=$(tree_sql "$n" "SELECT max(at_ms) FROM bench_acks
		    WHERE hash = ($HASHQ)")
		[ "$t" -gt "$T1" ] && T1=$t
	done
	PROP="$PROP $((T1 - T0))"
	say "  round $r: $((T1 - T0)) ms until $((PER * 9)) acknowledgements stored"
done
LAST_ROUND_T0=$T0

# ------------------------------------------------------------------ 2.
say "tree: $DEVCHG device changes at the leaves, timed to the top"
tree_sql top "CREATE TABLE bench_arrivals (oid text, sent_ms bigint,
    arrived_ms bigint);
    CREATE FUNCTION bench_arrival() RETURNS trigger LANGUAGE plpgsql AS \$\$
    BEGIN
	INSERT INTO bench_arrivals VALUES (NEW.oid,
	    substring(NEW.os FROM 7)::bigint,
	    (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
	RETURN NULL;
    END \$\$;
    CREATE TRIGGER bench_arrival AFTER INSERT OR UPDATE ON hier_devices
	FOR EACH ROW WHEN (NEW.os LIKE 'bench-%') EXECUTE FUNCTION bench_arrival();
    GRANT INSERT ON bench_arrivals TO canopy;"
PER_ROUND=$((DEVCHG / 9 / 10))
[ "$PER_ROUND" -ge 1 ] || PER_ROUND=1
# Devices not changed before: one arrival per change.  The UPDATE meets
# the leaf's own batched updates of the same rows (heartbeats,
# acknowledgements), which lock them in another order: PostgreSQL may
# break a deadlock by failing it, which canopyd's statements are tried
# again after and this one is too (three times at most).
change_devices() {
	local i
	for i in 1 2 3; do
		tree_sql "$1" "UPDATE devices SET os = 'bench-' ||
		    (extract(epoch FROM clock_timestamp()) * 1000)::bigint
		    WHERE id IN (SELECT id FROM devices WHERE os IS NULL
		    OR os NOT LIKE 'bench-%' ORDER BY random()
		    LIMIT $PER_ROUND)" >/dev/null 2>"$TEST_DIR/devchg-$1.err" &&
		    return 0
		grep -q "deadlock detected" "$TEST_DIR/devchg-$1.err" || break
	done
	cat "$TEST_DIR/devchg-$1.err" >&2
	return 1
}
for r in $(seq 1 10); do
	pids=""
	for n in $LEAVES; do
		change_devices "$n" &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	sleep 0.2	# spread the changes over time (pacing, not waiting)
done
CHANGED=0
for n in $LEAVES; do
	CHANGED=$((CHANGED + $(tree_sql "$n" "SELECT count(*) FROM devices
	    WHERE os LIKE 'bench-%'")))
done
arrived() {
	[ "$(tree_sql top "SELECT count(*) FROM bench_arrivals")" -ge \
	    "$CHANGED" ]
}
wait_for "the device changes at the top" 120 arrived
tree_sql top "SELECT arrived_ms - sent_ms FROM bench_arrivals" \
    >"$TEST_DIR/devlat.txt"
DEV_N=$(wc -l <"$TEST_DIR/devlat.txt")
DEV_P50=$(pctl 50 <"$TEST_DIR/devlat.txt")
DEV_P99=$(pctl 99 <"$TEST_DIR/devlat.txt")
say "  $DEV_N arrivals: p50 $DEV_P50 ms, p99 $DEV_P99 ms"

# ------------------------------------------------------------------ 3.
say "tree: upward throughput, $THRU events from leaf-1-1"
LEAF=$(tree_sql leaf-1-1 "SELECT uuid FROM hier_self")
# A bench-only statement trigger at mid-1 and the top stamps each batch of
# these events as it is applied: the last stamp is the arrival, and the
# wait below polls the stamps twice a second.  (Polling a count of the
# mirror ten times a second, as this bench did before, took CPU from the
# flow it measured: a psql process and a backend each time.)
for n in mid-1 top; do
	tree_sql "$n" "CREATE TABLE bench_thru (n bigint, at_ms bigint);
	    CREATE FUNCTION bench_thru() RETURNS trigger LANGUAGE plpgsql AS \$\$
	    BEGIN
		INSERT INTO bench_thru SELECT count(*),
		    (extract(epoch FROM clock_timestamp()) * 1000)::bigint
		FROM bench_new WHERE origin = '$LEAF' AND type = 'thru'
		HAVING count(*) > 0;
		RETURN NULL;
	    END \$\$;
	    CREATE TRIGGER bench_thru AFTER INSERT ON hier_events
		REFERENCING NEW TABLE AS bench_new
		FOR EACH STATEMENT EXECUTE FUNCTION bench_thru();
	    GRANT INSERT ON bench_thru TO canopy;" >/dev/null
done
has_thru() {
	sleep 0.4	# pacing the polls, not waiting for the condition
	[ "$(tree_sql "$1" "SELECT coalesce(sum(n), 0) FROM bench_thru")" \
	    -ge "$THRU" ]
}
T0=$(now_ms)
tree_sql leaf-1-1 "INSERT INTO events (vs_id, severity, type, time, text)
    SELECT 0, 'warning', 'thru', now(), 'e' || g
    FROM generate_series(1, $THRU) g" >/dev/null
T_INS=$(now_ms)
wait_for "mid-1 to hold the $THRU events" 600 has_thru mid-1
wait_for "the top to hold the $THRU events" 600 has_thru top
T_MID=$(tree_sql mid-1 "SELECT max(at_ms) FROM bench_thru")
T_TOP=$(tree_sql top "SELECT max(at_ms) FROM bench_thru")
for n in mid-1 top; do
	tree_sql "$n" "DROP TRIGGER bench_thru ON hier_events" >/dev/null
done
INS_RATE=$((THRU * 1000 / (T_INS - T0 + 1)))
# The links' throughput: from the leaf's commit (nothing can flow before
# it) until the last record arrives; and end to end, the INSERT included.
MID_RATE=$((THRU * 1000 / (T_MID - T_INS + 1)))
TOP_RATE=$((THRU * 1000 / (T_TOP - T_INS + 1)))
MID_E2E=$((THRU * 1000 / (T_MID - T0 + 1)))
TOP_E2E=$((THRU * 1000 / (T_TOP - T0 + 1)))
say "  leaf's INSERT $INS_RATE/s; from its commit: at mid-1 $MID_RATE/s," \
    "at the top $TOP_RATE/s; end to end $MID_E2E/s and $TOP_E2E/s"

# ------------------------------------------------------------------ 4.
say "tree: mid-1 partitioned for ${PART_S}s, its leaves writing ${PART_RATE}/s"
GENS=""
for l in 1 2 3; do
	(
		end=$(( $(date +%s) + PART_S ))
		i=0
		while [ "$(date +%s)" -lt "$end" ]; do
			tree_sql "leaf-1-$l" "INSERT INTO events (vs_id, severity,
			    type, time, text) SELECT 0, 'warning', 'part',
			    now(), '$i-' || g FROM generate_series(1,
			    $((PART_RATE / 3)))  g" >/dev/null
			i=$((i + 1))
			sleep 1	# the write rate (pacing)
		done
	) &
	GENS="$GENS $!"
done
tree_stop_signal mid-1 STOP
# shellcheck disable=SC2086
wait $GENS
ACC=0
for l in 1 2 3; do
	ACC=$((ACC + $(tree_sql "leaf-1-$l" "SELECT count(*) FROM events
	    WHERE type = 'part'")))
done
T0=$(now_ms)
tree_stop_signal mid-1 CONT
caught_up() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_events
	    WHERE type = 'part'")" -ge "$ACC" ]
}
wait_for "the top to catch up with $ACC events" 1800 caught_up
CATCH=$(( $(now_ms) - T0 ))
say "  $ACC events accumulated; caught up in $CATCH ms"

# The sims' own clocks for the last policy round.
LAST=0
for n in $LEAVES; do
	stop_pid "${SIM_PID[$n]}" 60
	v=$(jq -r '.policy_last_ms // 0' "$TEST_DIR/sim-$n.json")
	[ "$v" -le "$LAST" ] || LAST=$v
done
SIM_LAST=$((LAST - LAST_ROUND_T0))

P50=$(echo "$PROP" | tr ' ' '\n' | grep . | pctl 50)
PMAX=$(echo "$PROP" | tr ' ' '\n' | grep . | pctl 100)
cat <<EOF

## $(date -u +%Y-%m-%d) — \`bench/tree.sh\` ($(nproc) cores, 13 servers and $((PER * 9)) simulated agents on this one machine)

| what | canopy | reference, same run | target |
|---|---|---|---|
| policy change at the top until all $((PER * 9)) leaf agents' acknowledgements are stored at the 9 leaves ($ROUNDS changes; each stamped by a trigger as it is stored) | median $P50 ms, worst $PMAX ms | last round by the agents' own clock: the last of $((PER * 9)) received it after $SIM_LAST ms | p99 < 2000 ms |
| device change at a leaf until the top has it ($DEV_N changes) | p50 $DEV_P50 ms, p99 $DEV_P99 ms | | p99 < 2000 ms |
| upward throughput, leaf-1-1 → mid-1 → top ($THRU events in one transaction, timed from its commit) | $MID_RATE records/s at mid-1, $TOP_RATE records/s at the top (end to end, the INSERT included: $MID_E2E and $TOP_E2E) | the leaf's own INSERT of those rows: $INS_RATE rows/s (ratio $(awk -v a=$TOP_RATE -v b=$INS_RATE 'BEGIN{printf "%.2f", a/b}')) | >= 20,000/s per link |
| catch-up after a ${PART_S} s partition of mid-1 ($ACC events accumulated at its 3 leaves) | $CATCH ms | | |
EOF
for n in $(tree_names); do
	tree_stop "$n" 60
done
