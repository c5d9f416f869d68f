#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The authentication benchmark (issue 6), called from bench/run.sh or by
# hand: a real MIT KDC (tests/integration/lib_krb.sh), canopyd with its
# keytab, then in the same run
#   - SPNEGO logins per second: BENCH_AUTH_CLIENTS (4) curl processes, each
#     doing BENCH_AUTH_LOGINS (100) POST /login with Negotiate (a fresh
#     authenticator each: the replay cache is on), beside the same number
#     of password logins (Basic, scrypt) as the peer;
#   - API requests per second with a session token (GET /whoami, Bearer,
#     keep-alive), beside GET /healthz (no authentication, no database) by
#     the same client as the peer.
# Every login is checked (the audit rows count them).  CANOPY_BUILD: the
# optimised build (./build).  Prints a Markdown table.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CANOPY_ROOT=$ROOT
export CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build}
export CANOPY_TEST_NAME=${CANOPY_TEST_NAME:-bench-auth}
export CANOPYD_FLAGS=${CANOPYD_FLAGS:-""}
export CANOPYD_LOG_LEVEL=${CANOPYD_LOG_LEVEL:-info}
CLIENTS=${BENCH_AUTH_CLIENTS:-4}
LOGINS=${BENCH_AUTH_LOGINS:-100}
REQS=${BENCH_AUTH_REQUESTS:-2000}

# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=../tests/integration/lib_krb.sh
. "$ROOT/tests/integration/lib_krb.sh"

say() { printf '%s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }'; }

krb_start CORP.EXAMPLE
krb_addprinc alice@CORP.EXAMPLE alice-pw
krb_addprinc HTTP/localhost@CORP.EXAMPLE
krb_ktadd "$KRB_DIR/http.keytab" HTTP/localhost@CORP.EXAMPLE
pg_start
canopyd_start "kerberos-keytab $KRB_DIR/http.keytab"
admin_create admin 'bench-auth-pw-1'
"$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" admin-add alice \
    --principal alice@CORP.EXAMPLE </dev/null >>"$TEST_DIR/admin-add.log" 2>&1 ||
    fail "admin-add alice"
krb_kinit alice@CORP.EXAMPLE alice-pw
CA=$CANOPYD_STATE/ca.pem

# N logins by one client: "negotiate" or "basic".  Globbing keeps one
# connection; each URL is one login (a 401 round first for Negotiate).
logins() {
	local how=$1 n=$2 args=(-s -o /dev/null --cacert "$CA" -X POST)
	case $how in
	negotiate) args+=(--negotiate -u :) ;;
	basic) args+=(-u admin:bench-auth-pw-1) ;;
	esac
	curl "${args[@]}" -w '%{http_code}\n' \
	    "$CANOPYD_URL/api/v1/login?n=[1-$n]" >>"$TEST_DIR/$how.codes"
}

run_logins() {
	local how=$1 i t0 t1 pids=()
	: >"$TEST_DIR/$how.codes"
	t0=$(now_ms)
	for i in $(seq "$CLIENTS"); do
		logins "$how" "$LOGINS" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	t1=$(now_ms)
	local ok
	ok=$(grep -c '^200$' "$TEST_DIR/$how.codes" || true)
	[ "$ok" = $((CLIENTS * LOGINS)) ] ||
	    fail "$how logins: $ok of $((CLIENTS * LOGINS)) succeeded"
	echo $((t1 - t0))
}

say "auth: $CLIENTS clients x $LOGINS logins each"
logins negotiate 5 >/dev/null; logins basic 2 >/dev/null	# warm up
K_MS=$(run_logins negotiate)
B_MS=$(run_logins basic)
n=$(pg_sql "SELECT count(*) FROM audit WHERE action = 'login'
    AND detail::jsonb->>'method' = 'kerberos'")
[ "$n" -ge $((CLIENTS * LOGINS)) ] || fail "only $n Kerberos logins audited"
K_RATE=$(rate $((CLIENTS * LOGINS)) "$K_MS")
B_RATE=$(rate $((CLIENTS * LOGINS)) "$B_MS")

api_login admin 'bench-auth-pw-1'
reqs() {	# PATH AUTH...: REQS keep-alive requests, CLIENTS in parallel
	local path=$1 i t0 t1 pids=()
	shift
	: >"$TEST_DIR/reqs.codes"
	t0=$(now_ms)
	for i in $(seq "$CLIENTS"); do
		curl -s -o /dev/null --cacert "$CA" "$@" -w '%{http_code}\n' \
		    "$CANOPYD_URL$path?n=[1-$((REQS / CLIENTS))]" \
		    >>"$TEST_DIR/reqs.codes" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	t1=$(now_ms)
	[ "$(grep -c '^200$' "$TEST_DIR/reqs.codes")" = $(( (REQS / CLIENTS) * CLIENTS )) ] ||
	    fail "requests to $path: not all 200"
	echo $((t1 - t0))
}
S_MS=$(reqs /api/v1/whoami -H "Authorization: Bearer $API_TOKEN")
H_MS=$(reqs /healthz)
NREQ=$(( (REQS / CLIENTS) * CLIENTS ))
S_RATE=$(rate "$NREQ" "$S_MS")
H_RATE=$(rate "$NREQ" "$H_MS")

cat <<EOT
| measure | canopyd | peer in the same run | peer | ratio |
|---|---|---|---|---|
| SPNEGO logins/s (POST /login, Negotiate, $CLIENTS clients, replay cache on) | $K_RATE | password logins/s (Basic, scrypt) | $B_RATE | $(awk -v a="$K_RATE" -v b="$B_RATE" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }') |
| API requests/s with a session token (GET /whoami, Bearer) | $S_RATE | GET /healthz/s (no auth, no database) | $H_RATE | $(awk -v a="$S_RATE" -v b="$H_RATE" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }') |
EOT
