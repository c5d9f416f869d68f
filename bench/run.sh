#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# make bench: canopyd against canopy-sim on this machine, each figure beside
# the machine's own limit measured in the same run:
#
#   TLS handshakes/s   openssl s_server + s_time with the server's own
#                      certificate (ECDSA P-256, TLS 1.3)
#   database rows/s    pgbench on the same PostgreSQL: batched updates of
#                      last-seen rows, and batched upserts of inventory
#                      documents of the simulator's size
#
# PostgreSQL runs with durable settings (fsync on), as in production.
# Environment: BENCH_AGENTS (10000), BENCH_SECONDS (20), CANOPY_BUILD
# (./build, the optimised build).  Prints a Markdown table; record it in
# docs/BENCHMARKS.md with the date and this command.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CANOPY_ROOT=$ROOT
export CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build}
export CANOPY_TEST_NAME=bench
export CANOPY_PG_OPTS="-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=30min"
export CANOPYD_FLAGS=""
export CANOPYD_LOG_LEVEL=warn
N=${BENCH_AGENTS:-10000}
SECS=${BENCH_SECONDS:-20}

# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
need_bin canopy-sim
command -v pgbench >/dev/null || PATH=$PATH:$PG_BIN

say() { printf '%s\n' "$*" >&2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
jget() { jq -r "$1" "$2"; }

pg_start
canopyd_start "max-agents $((N + 1000))" "db-workers 4"
admin_create bench "bench-password-$$"
token_create $((N + 10)) >/dev/null
CA=$CANOPYD_STATE/ca.pem
SIMDIR=$TEST_DIR/sim
mkdir -p "$SIMDIR"
SIM=("$CANOPY_BUILD/canopy-sim" --server "127.0.0.1:$CANOPYD_AGENT_PORT"
    --ca "$CA" --token "$ENROLL_TOKEN" --agents "$N" --dir "$SIMDIR" --json)

# ------------------------------------------------------ the machine's limits
say "machine: TLS handshakes with openssl s_server/s_time (5 s)"
TLSPORT=$(free_port)
openssl s_server -quiet -tls1_3 -accept "$TLSPORT" \
    -cert "$CANOPYD_STATE/server.pem" -key "$CANOPYD_STATE/server.key" \
    </dev/null >"$TEST_DIR/s_server.log" 2>&1 &
track_pid $!
wait_for "openssl s_server to listen" 10 \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$TLSPORT"
openssl s_time -connect "127.0.0.1:$TLSPORT" -new -time 5 -CAfile "$CA" \
    >"$TEST_DIR/s_time.log" 2>&1 || true
TLS_HS=$(awk '/connections in .* real seconds/ {print $1 / $4; exit}' \
    "$TEST_DIR/s_time.log")
[ -n "$TLS_HS" ] || fail "openssl s_time gave no figure: $(cat "$TEST_DIR/s_time.log")"

say "machine: database rows with pgbench (10 s each)"
INV_JSON=$("$CANOPY_BUILD/canopy-agent" inventory)
pg_sql "CREATE TABLE bench_seen (id int PRIMARY KEY, last_seen timestamptz, n bigint);
	INSERT INTO bench_seen SELECT g, now(), 0 FROM generate_series(1, $N) g;
	CREATE TABLE bench_inv (id int PRIMARY KEY, data jsonb, updated timestamptz);
	CREATE TABLE bench_doc (data jsonb);" >/dev/null
INV_JSON=$(printf '%s' "$INV_JSON" | jq -c .)
# psql interpolates :'doc' (quoted) only in statements read from stdin.
echo "INSERT INTO bench_doc VALUES (:'doc')" | "$PG_BIN/psql" -h 127.0.0.1 \
    -p "$PG_PORT" -U postgres -d canopy -v ON_ERROR_STOP=1 -v doc="$INV_JSON" -q >/dev/null
cat >"$TEST_DIR/seen.sql" <<EOF
\\set a random(1, $((N - 500)))
UPDATE bench_seen SET last_seen = now(), n = n + 1 WHERE id BETWEEN :a AND :a + 499;
EOF
cat >"$TEST_DIR/inv.sql" <<EOF
\\set a random(1, $((N - 100)))
INSERT INTO bench_inv SELECT g, d.data, now() FROM generate_series(:a, :a + 99) g, bench_doc d
  ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated = excluded.updated;
EOF
pgb() {
	"$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c 4 -j 2 \
	    -T 10 -f "$1" canopy 2>&1 | awk '/^tps/ {print $3; exit}'
}
PG_SEEN=$(awk -v t="$(pgb "$TEST_DIR/seen.sql")" 'BEGIN {print t * 500}')
PG_INV=$(awk -v t="$(pgb "$TEST_DIR/inv.sql")" 'BEGIN {print t * 100}')
DOC_BYTES=${#INV_JSON}

# ------------------------------------------------------------------ canopyd
say "canopy: enrol $N agents and hold them connected"
RSS0=$(rss_kib "$CANOPYD_PID")
"${SIM[@]}" --hold --duration 600 >"$TEST_DIR/hold.json" 2>"$TEST_DIR/hold.log" &
HOLD_PID=$!
track_pid $HOLD_PID
wait_for "$N agents connected" 900 metric_is "$AGENTS_METRIC" "$N"
# Idle: let handshakes' transient memory settle before reading.
sleep 2
RSS1=$(rss_kib "$CANOPYD_PID")
stop_pid $HOLD_PID 60
ENROLL_S=$(jget .enroll_s "$TEST_DIR/hold.json")
ENROLL_RATE=$(jget .enroll_per_s "$TEST_DIR/hold.json")
CONNECT_S=$(jget .connect_s "$TEST_DIR/hold.json")
CONNECT_RATE=$(awk -v n="$N" -v s="$CONNECT_S" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }')
MEM_PER=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$N" 'BEGIN {printf "%.1f", (b - a) / n}')
wait_for "agents to disconnect" 60 metric_is "$AGENTS_METRIC" 0

say "canopy: unchanged syncs for ${SECS}s"
"${SIM[@]}" --duration "$SECS" --sync-interval-ms 1000 --changed 0 \
    >"$TEST_DIR/unchanged.json" 2>"$TEST_DIR/unchanged.log"
wait_for "agents to disconnect" 60 metric_is "$AGENTS_METRIC" 0
say "canopy: changed-inventory syncs for ${SECS}s"
"${SIM[@]}" --duration "$SECS" --sync-interval-ms 2500 --changed 100 \
    >"$TEST_DIR/changed.json" 2>"$TEST_DIR/changed.log"

U=$TEST_DIR/unchanged.json C=$TEST_DIR/changed.json
U_RATE=$(jget .syncs_unchanged_per_s "$U")
C_RATE=$(jget .syncs_changed_per_s "$C")
for f in "$U" "$C" "$TEST_DIR/hold.json"; do
	[ "$(jget .errors "$f")" = 0 ] || say "warning: errors in $(basename "$f"): $(cat "$f")"
done

cat <<EOF

## $(date -u +%Y-%m-%d) — \`make bench\` ($N simulated agents, $(nproc) cores, ${SECS}s runs)

| what | canopy | machine limit (same run) | ratio |
|---|---|---|---|
| enrolment (CSR signed, device stored) | $(printf %.0f "$ENROLL_RATE")/s, $N in $(printf %.1f "$ENROLL_S") s | $(printf %.0f "$TLS_HS") TLS handshakes/s (openssl s_time, 1 client) | $(ratio "$ENROLL_RATE" "$TLS_HS") |
| mutual-TLS connections established | $CONNECT_RATE/s | $(printf %.0f "$TLS_HS") handshakes/s | $(ratio "$CONNECT_RATE" "$TLS_HS") |
| agents held connected | $(jget .connected "$TEST_DIR/hold.json") | target 10,000 | |
| server memory per idle agent | $MEM_PER KiB (RSS $((RSS0 / 1024)) → $((RSS1 / 1024)) MiB) | target ≤ 32 KiB | |
| unchanged syncs | $(printf %.0f "$U_RATE")/s (offered $N/s) | $(printf %.0f "$PG_SEEN") rows/s (pgbench, 500-row updates) | $(ratio "$U_RATE" "$PG_SEEN") |
| unchanged sync latency | p50 $(jget .ack_p50_ms "$U") ms, p99 $(jget .ack_p99_ms "$U") ms | | |
| changed-inventory syncs | $(printf %.0f "$C_RATE")/s ($(jget .inventory_bytes "$C") B msgpack each; offered $((N * 1000 / 2500))/s) | $(printf %.0f "$PG_INV") rows/s (pgbench, 100-row upserts of a $DOC_BYTES B JSON inventory) | $(ratio "$C_RATE" "$PG_INV") |
| changed sync latency | p50 $(jget .ack_p50_ms "$C") ms, p99 $(jget .ack_p99_ms "$C") ms | | |
| retries / errors | $(jget .retries "$U")+$(jget .retries "$C") / $(jget .errors "$U")+$(jget .errors "$C") | | |
EOF
