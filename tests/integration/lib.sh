# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The integration-test harness.  Every tests/integration/t_*.sh starts with
#
#	#!/bin/bash
#	set -eu
#	. "$(dirname "$0")/lib.sh"
#
# and is run by tests/run.sh (or by hand: bash tests/integration/t_x.sh)
# as root.  A test runs in its own fresh directory $TEST_DIR; everything it
# starts through these functions is stopped by PID when it exits, however it
# exits.  Exit status 0 is a pass, 77 a skip, anything else a failure.
#
# Environment (set by tests/run.sh, all optional):
#   CANOPY_ROOT         the source tree (default: two levels above this file)
#   CANOPY_BUILD        where canopyd, canopy-agent, canopyctl are
#                       (default: $CANOPY_ROOT/build/asan)
#   CANOPY_TEST_DIR     the test's fresh directory (default: a new /tmp dir,
#                       removed when the test passes)
#   CANOPY_PG_TEMPLATE  an initdb'd data directory to copy (default: initdb)
#   CANOPY_PG_OPTS      postgres options (default: -c fsync=off)
#   CANOPYD_FLAGS       canopyd's flags besides -c (default: -d)
#
# Functions (they fail the test themselves; nothing needs "|| fail"):
#   fail MSG...                   print MSG, fail the test now
#   skip MSG...                   skip the test (exit 77)
#   step MSG...                   log a progress line (to the test log)
#   assert_eq EXPECTED ACTUAL [WHAT]
#   assert_ne UNEXPECTED ACTUAL [WHAT]
#   assert_contains HAYSTACK NEEDLE [WHAT]
#   assert_not_contains HAYSTACK NEEDLE [WHAT]
#   assert_match HAYSTACK EXTENDED_REGEX [WHAT]
#   wait_for DESCRIPTION DEADLINE_S CMD...
#                                 (DEADLINE_S: whole seconds)
#                                 run CMD (quietly) every 0.1 s until it
#                                 succeeds; after DEADLINE_S seconds fail
#                                 with DESCRIPTION.  CMD runs in this shell
#                                 and may itself call fail.
#   free_port                     print a TCP port nobody uses (20000-32767,
#                                 below the kernel's ephemeral range)
#   track_pid PID                 stop PID (TERM, then KILL) at exit
#   stop_pid PID DEADLINE_S       TERM our child PID and wait for it; sets
#                                 STOPPED_RC to its exit status; fails if it
#                                 outlives DEADLINE_S
#
#   pg_start                      a private PostgreSQL 15 with database
#                                 "canopy" owned by the ordinary role
#                                 "canopy" (not a superuser: superusers
#                                 bypass row-level security), which canopyd
#                                 uses; sets PG_PORT, PG_DATA, PG_SOCK,
#                                 PG_CONNINFO
#   pg_stop / pg_restart          stop (fast) / start the same cluster again
#   pg_sql SQL                    run SQL in "canopy" as the superuser,
#                                 print rows (psql -At)
#   pg_sql_as_canopy SQL          the same as canopyd's role "canopy", so
#                                 row-level security applies
#
#   canopyd_conf [LINE...]        (re)write $CANOPYD_CONF: server-name,
#                                 listen agents/api on fresh ports (kept across
#                                 calls), database, state-dir, log-level, and
#                                 each extra LINE verbatim
#   canopyd_start [LINE...]       write the config if there is none (or if
#                                 LINEs are given), start canopyd -d -c, wait
#                                 for /healthz 200.  Sets CANOPYD_PID,
#                                 CANOPYD_API_PORT, CANOPYD_AGENT_PORT,
#                                 CANOPYD_STATE, CANOPYD_LOG, CANOPYD_URL
#   canopyd_stop [DEADLINE_S]     SIGTERM; fail unless it exits 0 in time
#   canopyd_kill                  SIGKILL and reap
#   canopyd_alive                 true while the canopyd we started runs
#   healthz_status                print the HTTP status of /healthz
#   healthz_is CODE               true if /healthz answers CODE (for wait_for)
#   metrics                       print /metrics
#   metric NAME                   print the value of metric NAME (first
#                                 sample, labels ignored); fails if absent
#   metric_is NAME VALUE          true if metric NAME is VALUE (for wait_for)
#   AGENTS_METRIC                 the name of the connected-agents gauge
#
#   admin_create NAME PASSWORD    canopyd -c CONF admin-add NAME (password on
#                                 stdin); also makes it the account that api
#                                 uses (ADMIN_USER, ADMIN_PASS)
#   api_login [USER PASS]         POST /api/v1/login; sets API_TOKEN
#   api METHOD PATH [JSON|@FILE]  request with the Bearer token (logs in
#                                 first if needed).  PATH is below the API
#                                 root, e.g. /api/v1/devices or /healthz.
#                                 Prints the body; sets API_STATUS, API_BODY
#                                 and API_HEADERS (a file).  Inside $(...)
#                                 the variables are lost: call api plainly
#                                 (api GET /x >/dev/null) and use $API_BODY.
#   api_anon METHOD PATH [JSON]   the same, without credentials
#   api_basic USER PASS METHOD PATH [JSON]   with Basic credentials
#   api_header NAME               print every value of response header NAME
#                                 of the last request, one a line
#   assert_status CODE [WHAT]     the last request's status was CODE
#   assert_error_body [WHAT]      the last answer is JSON (Content-Type too):
#                                 {"error":{"code","message"}}
#   json EXPR [JSON]              jq -r EXPR on JSON (default: $API_BODY)
#
#   token_create [USES]           POST /api/v1/enrollment-tokens; sets
#                                 ENROLL_TOKEN (and API_BODY), writes its CA
#                                 to $TEST_DIR/enroll-ca.pem, prints the token
#   agent_enroll NAME [TOKEN]     canopy-agent enroll into $TEST_DIR/agent-NAME
#                                 (TOKEN defaults to the last token_create)
#   agent_start NAME              canopy-agent run -d in the background
#   agent_stop NAME [DEADLINE_S]  SIGTERM; fail unless it exits 0 in time
#   agent_dir NAME                print the agent's state directory
#   agent_cmd ARGS...             run canopy-agent ARGS
#   agent_event NAME SEVERITY TYPE TEXT
#                                 canopy-agent event: queue one event in the
#                                 agent's state directory
#   agent_alive NAME              true while the agent runs
#
#   need_bin NAME                 fail unless $CANOPY_BUILD/NAME exists
#
#   ctl ARGS...                   canopyctl --config-dir $TEST_DIR/ctl-home/
#                                 canopy ARGS (log in with ctl_login first)
#   ctl_login                     log canopyctl in as ADMIN_USER

set -o pipefail

CANOPY_ROOT=${CANOPY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CANOPY_BUILD=${CANOPY_BUILD:-$CANOPY_ROOT/build/asan}
case $CANOPY_BUILD in /*) ;; *) CANOPY_BUILD=$CANOPY_ROOT/$CANOPY_BUILD ;; esac
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TEST_NAME=${CANOPY_TEST_NAME:-$(basename "$0" .sh)}

# Sanitizer reports must fail the test, and must say where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: integration tests run as root (PostgreSQL runs as postgres)"
	exit 77
fi

if [ -n "${CANOPY_TEST_DIR:-}" ]; then
	TEST_DIR=$CANOPY_TEST_DIR
	_LIB_OWN_DIR=0
else
	TEST_DIR=$(mktemp -d /tmp/cnp.XXXXXX)
	_LIB_OWN_DIR=1
fi
mkdir -p "$TEST_DIR"
chmod 755 "$TEST_DIR"
export CANOPY_TEST_DIR=$TEST_DIR	# run.sh finds strays by it
cd "$TEST_DIR" || exit 1

_LIB_MAIN_PID=$$
_LIB_PIDS=""
: >"$TEST_DIR/.pids"
: >"$TEST_DIR/.ports"
rm -f "$TEST_DIR/.failmsg"
declare -A AGENT_PIDS=()
CANOPYD_PID=""
PG_DATA=""
# The /metrics sample that counts connected agents.
AGENTS_METRIC=${AGENTS_METRIC:-canopy_agents_connected}
API_TOKEN=""
API_STATUS=""
API_BODY=""
API_HEADERS=$TEST_DIR/.api-headers

step() {
	echo "== [$(date +%T)] $*"
}

fail() {
	echo "FAIL: $*" | tee -a "$TEST_DIR/.failmsg" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

assert_eq() {
	[ "$1" = "$2" ] ||
	    fail "${3:-value}: expected '$1', got '$2'"
}

assert_ne() {
	[ "$1" != "$2" ] ||
	    fail "${3:-value}: expected anything but '$1'"
}

assert_contains() {
	case $1 in
	*"$2"*) ;;
	*) fail "${3:-text} does not contain '$2': $(printf %s "$1" | head -c 2000)" ;;
	esac
}

assert_not_contains() {
	case $1 in
	*"$2"*) fail "${3:-text} contains '$2': $(printf %s "$1" | head -c 2000)" ;;
	esac
}

assert_match() {
	printf '%s\n' "$1" | grep -Eq -- "$2" ||
	    fail "${3:-text} does not match /$2/: $(printf %s "$1" | head -c 2000)"
}

# Microseconds since the epoch, without a subshell (see _lib_cleanup).
_now_us() {
	_NOW_US=${EPOCHREALTIME//[!0-9]/}
}

wait_for() {
	local what=$1 secs=$2 end
	shift 2
	_now_us
	end=$((_NOW_US + secs * 1000000))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		_now_us
		[ "$_NOW_US" -lt "$end" ] ||
		    fail "timed out after ${secs}s waiting for: $what"
		sleep 0.1 2>/dev/null
	done
}

free_port() {
	local p i lo
	lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$lo" ] && [ "$lo" -gt 21000 ] || lo=32768
	for i in $(seq 500); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % (lo - 20000)))
		case $p in 13000|13299|5432|15432) continue ;; esac
		grep -qx "$p" "$TEST_DIR/.ports" && continue
		if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
			echo "$p" >>"$TEST_DIR/.ports"
			echo "$p"
			return 0
		fi
	done
	fail "free_port: no free port found"
}

track_pid() {
	_LIB_PIDS="$_LIB_PIDS $1"
	echo "$1" >>"$TEST_DIR/.pids"
}

_untrack_pid() {
	local p keep=""
	for p in $_LIB_PIDS; do
		[ "$p" = "$1" ] || keep="$keep $p"
	done
	_LIB_PIDS=$keep
}

# True while PID runs (a zombie does not count).
_pid_running() {
	local st
	read -r _ _ st _ 2>/dev/null <"/proc/$1/stat" || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_pid_gone() { ! _pid_running "$1"; }

# Sets STOPPED_RC to the exit status of our child PID, which has exited
# (128+N for signal N).  Not in a subshell: only the parent can reap.
_reap() {
	STOPPED_RC=0
	wait "$1" 2>/dev/null || STOPPED_RC=$?
}

stop_pid() {
	local pid=$1 secs=${2:-30} w
	rm -f "$TEST_DIR/.killed.$pid"
	kill -TERM "$pid" 2>/dev/null || true
	# Reap at once (a dead child left unreaped makes bash run the EXIT
	# trap in its subshells); a watchdog enforces the deadline.
	(
		trap - EXIT TERM INT
		for _ in $(seq $((secs * 10))); do
			kill -0 "$pid" 2>/dev/null || exit 0
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null && : >"$TEST_DIR/.killed.$pid"
	) &
	w=$!
	_reap "$pid"
	wait "$w" 2>/dev/null || true
	_untrack_pid "$pid"
	[ ! -e "$TEST_DIR/.killed.$pid" ] ||
	    fail "PID $pid did not exit within ${secs}s of SIGTERM (killed)"
}

# ---------------------------------------------------------------- PostgreSQL

_pg_ctl() {
	# cwd must be readable by postgres.
	(cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" "$@")
}

_pg_ctl_start() {
	_pg_ctl -D "$PG_DATA" -l "$TEST_DIR/postgres.log" -w -t 60 \
	    -o "-k $PG_SOCK -h 127.0.0.1 -p $PG_PORT ${CANOPY_PG_OPTS--c fsync=off}" start \
	    >>"$TEST_DIR/pg_ctl.log" 2>&1 ||
	    fail "PostgreSQL did not start: $(tail -n 20 "$TEST_DIR/postgres.log")"
}

pg_start() {
	PG_PORT=$(free_port)
	PG_DATA=$TEST_DIR/pg
	# A Unix socket path must stay under 107 bytes.
	if [ ${#TEST_DIR} -lt 60 ]; then
		PG_SOCK=$TEST_DIR/s
	else
		PG_SOCK=$(mktemp -d /tmp/cnps.XXXXXX)
		_LIB_RM_SOCK=$PG_SOCK
	fi
	mkdir -p "$PG_SOCK"
	chown postgres "$PG_SOCK"
	touch "$TEST_DIR/postgres.log"
	chown postgres "$TEST_DIR/postgres.log"
	if [ -n "${CANOPY_PG_TEMPLATE:-}" ] &&
	    [ -f "$CANOPY_PG_TEMPLATE/PG_VERSION" ]; then
		cp -a "$CANOPY_PG_TEMPLATE" "$PG_DATA"
	else
		mkdir -p "$PG_DATA"
		chown postgres "$PG_DATA"
		(cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" \
		    -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync) \
		    >>"$TEST_DIR/initdb.log" 2>&1 ||
		    fail "initdb failed: $(tail -n 20 "$TEST_DIR/initdb.log")"
	fi
	_pg_ctl_start
	# canopyd runs as an ordinary role, as in production: row-level
	# security does not hold for superusers.
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
	    -v ON_ERROR_STOP=1 -Atq \
	    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles
		WHERE rolname = 'canopy') THEN CREATE ROLE canopy LOGIN
		NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; END IF;
		END \$\$" \
	    -c "CREATE DATABASE canopy OWNER canopy" >/dev/null ||
	    fail "could not create the database"
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=canopy user=canopy connect_timeout=5"
	export PG_CONNINFO PG_PORT PG_DATA PG_SOCK
	step "PostgreSQL on port $PG_PORT"
}

pg_stop() {
	_pg_ctl -D "$PG_DATA" -m fast -w -t 60 stop >>"$TEST_DIR/pg_ctl.log" 2>&1 ||
	    fail "PostgreSQL did not stop"
}

pg_restart() {
	_pg_ctl_start
}

pg_sql() {
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d canopy \
	    -v ON_ERROR_STOP=1 -Atqc "$1"
}

pg_sql_as_canopy() {
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U canopy -d canopy \
	    -v ON_ERROR_STOP=1 -Atqc "$1"
}

# ------------------------------------------------------------------- canopyd

need_bin() {
	[ -x "$CANOPY_BUILD/$1" ] || fail "$CANOPY_BUILD/$1 is missing (run make)"
}

canopyd_conf() {
	[ -n "${PG_CONNINFO:-}" ] || fail "canopyd_conf: call pg_start first"
	CANOPYD_CONF=$TEST_DIR/canopyd.conf
	CANOPYD_STATE=$TEST_DIR/canopyd-state
	CANOPYD_LOG=$TEST_DIR/canopyd.log
	: "${CANOPYD_AGENT_PORT:=$(free_port)}"
	: "${CANOPYD_API_PORT:=$(free_port)}"
	CANOPYD_URL=https://localhost:$CANOPYD_API_PORT
	mkdir -p "$CANOPYD_STATE"
	chmod 700 "$CANOPYD_STATE"
	{
		echo "# written by tests/integration/lib.sh for $TEST_NAME"
		echo "server-name \"test-$TEST_NAME\""
		echo "listen agents 127.0.0.1:$CANOPYD_AGENT_PORT"
		echo "listen api 127.0.0.1:$CANOPYD_API_PORT"
		echo "database \"$PG_CONNINFO\""
		echo "state-dir $CANOPYD_STATE"
		echo "log stderr"
		echo "log-level ${CANOPYD_LOG_LEVEL:-info}"
		local l
		for l in "$@"; do
			echo "$l"
		done
	} >"$CANOPYD_CONF"
	export CANOPYD_CONF CANOPYD_STATE CANOPYD_AGENT_PORT CANOPYD_API_PORT
}

canopyd_alive() {
	[ -n "$CANOPYD_PID" ] && _pid_running "$CANOPYD_PID"
}

healthz_status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    --cacert "$CANOPYD_STATE/ca.pem" "$CANOPYD_URL/healthz" 2>/dev/null ||
	    true
}

# For wait_for: the status is fetched anew at every try.  (Never write
# wait_for ... test "$(healthz_status)" = 200: the shell expands that once.)
healthz_is() {
	[ "$(healthz_status)" = "$1" ]
}

_canopyd_ready() {
	canopyd_alive ||
	    fail "canopyd exited while starting: $(tail -n 30 "$CANOPYD_LOG")"
	[ -f "$CANOPYD_STATE/ca.pem" ] && [ "$(healthz_status)" = 200 ]
}

canopyd_start() {
	need_bin canopyd
	if [ $# -gt 0 ] || [ ! -f "${CANOPYD_CONF:-/nonexistent}" ]; then
		canopyd_conf "$@"
	fi
	[ -z "$CANOPYD_PID" ] || ! canopyd_alive ||
	    fail "canopyd_start: canopyd is already running"
	echo "---- canopyd start $(date +%T)" >>"$CANOPYD_LOG"
	# shellcheck disable=SC2086
	"$CANOPY_BUILD/canopyd" ${CANOPYD_FLAGS--d} -c "$CANOPYD_CONF" >>"$CANOPYD_LOG" 2>&1 &
	CANOPYD_PID=$!
	track_pid "$CANOPYD_PID"
	wait_for "canopyd /healthz to answer 200" 60 _canopyd_ready
	step "canopyd $CANOPYD_PID: agents $CANOPYD_AGENT_PORT, api $CANOPYD_API_PORT"
}

canopyd_stop() {
	[ -n "$CANOPYD_PID" ] || fail "canopyd_stop: not started"
	stop_pid "$CANOPYD_PID" "${1:-30}"
	[ "$STOPPED_RC" = 0 ] ||
	    fail "canopyd did not exit cleanly on SIGTERM (status $STOPPED_RC): $(tail -n 30 "$CANOPYD_LOG")"
	CANOPYD_PID=""
}

canopyd_kill() {
	[ -n "$CANOPYD_PID" ] || return 0
	kill -KILL "$CANOPYD_PID" 2>/dev/null || true
	_reap "$CANOPYD_PID"	# at once: see stop_pid
	_untrack_pid "$CANOPYD_PID"
	CANOPYD_PID=""
}

metrics() {
	curl -sf --max-time 10 --cacert "$CANOPYD_STATE/ca.pem" \
	    "$CANOPYD_URL/metrics"
}

# The value of the first sample of NAME, or nothing.
_metric_value() {
	metrics | awk -v n="$1" '
	    $1 == n || index($1, n "{") == 1 { print $NF; exit }'
}

metric() {
	local v
	v=$(_metric_value "$1") || true
	[ -n "$v" ] || fail "metric $1 is not in /metrics"
	echo "$v"
}

metric_is() {
	[ "$(_metric_value "$1")" = "$2" ]
}

# --------------------------------------------------------------------- API

admin_create() {
	local name=$1 pw=$2
	printf '%s\n' "$pw" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
	    admin-add "$name" >>"$TEST_DIR/admin-add.log" 2>&1 ||
	    fail "canopyd admin-add $name failed: $(tail -n 10 "$TEST_DIR/admin-add.log")"
	ADMIN_USER=$name
	ADMIN_PASS=$pw
	API_TOKEN=""
}

# _api_curl AUTH METHOD PATH [DATA]: AUTH is "bearer", "none" or
# "basic:USER:PASS".
_api_curl() {
	local auth=$1 method=$2 path=$3 out rc
	shift 3
	local args=(-s -S --max-time 60 --cacert "$CANOPYD_STATE/ca.pem"
	    -X "$method" -D "$API_HEADERS" -o "$TEST_DIR/.api-body"
	    -w '%{http_code}')
	case $auth in
	bearer) args+=(-H "Authorization: Bearer $API_TOKEN") ;;
	basic:*)
		auth=${auth#basic:}
		args+=(-u "${auth%%:*}:${auth#*:}")
		;;
	esac
	if [ $# -gt 0 ]; then
		args+=(-H "Content-Type: application/json" --data-binary "$1")
	fi
	rc=0
	out=$(curl "${args[@]}" "$CANOPYD_URL$path" 2>"$TEST_DIR/.api-err") ||
	    rc=$?
	[ "$rc" = 0 ] ||
	    fail "curl $method $path failed ($rc): $(cat "$TEST_DIR/.api-err")"
	API_STATUS=$out
	API_BODY=$(cat "$TEST_DIR/.api-body")
	echo "api: $method $path -> $API_STATUS $(printf %s "$API_BODY" |
	    head -c 300)" >>"$TEST_DIR/api.log"
	printf '%s\n' "$API_BODY"
}

api_login() {
	local user=${1:-${ADMIN_USER:-}} pw=${2:-${ADMIN_PASS:-}} body
	[ -n "$user" ] || fail "api_login: no user (call admin_create)"
	body=$(jq -cn --arg u "$user" --arg p "$pw" '{user: $u, password: $p}')
	_api_curl none POST /api/v1/login "$body" >/dev/null
	[ "$API_STATUS" = 200 ] ||
	    fail "login as $user: status $API_STATUS: $API_BODY"
	API_TOKEN=$(json .token)
	[ -n "$API_TOKEN" ] && [ "$API_TOKEN" != null ] ||
	    fail "login as $user: no token in $API_BODY"
}

api() {
	[ -n "$API_TOKEN" ] || api_login
	_api_curl bearer "$@"
}

api_anon() {
	_api_curl none "$@"
}

api_basic() {
	local u=$1 p=$2
	shift 2
	_api_curl "basic:$u:$p" "$@"
}

api_header() {
	tr -d '\r' <"$API_HEADERS" | awk -v h="$1" '
	    { i = index($0, ":"); if (i == 0) next
	      if (tolower(substr($0, 1, i - 1)) == tolower(h)) {
		v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v } }'
}

assert_status() {
	[ "$API_STATUS" = "$1" ] ||
	    fail "${2:-request}: expected HTTP $1, got $API_STATUS: $(printf %s "$API_BODY" | head -c 1000)"
}

assert_error_body() {
	printf '%s' "$API_BODY" | jq -e '
	    (.error | type == "object") and
	    (.error.code | type == "string" and test("^[a-z][a-z0-9_]*$")) and
	    (.error.message | type == "string" and length > 0)' >/dev/null 2>&1 ||
	    fail "${1:-error} body is not {\"error\":{\"code\",\"message\"}}: $API_BODY"
	assert_contains "$(api_header Content-Type)" application/json \
	    "${1:-error}: Content-Type"
}

json() {
	local expr=$1
	if [ $# -gt 1 ]; then
		printf '%s' "$2" | jq -r "$expr"
	else
		printf '%s' "$API_BODY" | jq -r "$expr"
	fi
}

token_create() {
	local uses=${1:-1}
	api POST /api/v1/enrollment-tokens "{\"uses\":$uses}" >/dev/null
	[ "$API_STATUS" = 201 ] || [ "$API_STATUS" = 200 ] ||
	    fail "POST /enrollment-tokens: status $API_STATUS: $API_BODY"
	json .ca_pem >"$TEST_DIR/enroll-ca.pem"
	ENROLL_TOKEN=$(json .token)
	printf '%s\n' "$ENROLL_TOKEN" >"$TEST_DIR/.last-token"
	grep -q 'BEGIN CERTIFICATE' "$TEST_DIR/enroll-ca.pem" ||
	    fail "enrolment token answer has no ca_pem: $API_BODY"
	cat "$TEST_DIR/.last-token"
}

# ------------------------------------------------------------------- agents

agent_dir() {
	echo "$TEST_DIR/agent-$1"
}

agent_cmd() {
	need_bin canopy-agent
	"$CANOPY_BUILD/canopy-agent" "$@"
}

agent_event() {
	local dir
	dir=$(agent_dir "$1")
	"$CANOPY_BUILD/canopy-agent" event --state-dir "$dir" \
	    --severity "$2" --type "$3" "$4" >>"$TEST_DIR/agent-$1.log" 2>&1 ||
	    fail "canopy-agent event for $1 failed: $(tail -n 5 "$TEST_DIR/agent-$1.log")"
}

agent_enroll() {
	local name=$1 token=${2:-} dir rc
	need_bin canopy-agent
	[ -n "$token" ] || token=$(cat "$TEST_DIR/.last-token" 2>/dev/null) ||
	    fail "agent_enroll: no token (call token_create)"
	dir=$(agent_dir "$name")
	mkdir -p "$dir"
	echo "---- enroll $(date +%T)" >>"$TEST_DIR/agent-$name.log"
	rc=0
	timeout -k 5 60 "$CANOPY_BUILD/canopy-agent" enroll \
	    --server "127.0.0.1:$CANOPYD_AGENT_PORT" \
	    --ca "$TEST_DIR/enroll-ca.pem" --token "$token" --name "$name" \
	    --state-dir "$dir" >>"$TEST_DIR/agent-$name.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] ||
	    fail "canopy-agent enroll $name failed ($rc): $(tail -n 20 "$TEST_DIR/agent-$name.log")"
}

agent_start() {
	local name=$1 dir
	need_bin canopy-agent
	dir=$(agent_dir "$name")
	echo "---- run $(date +%T)" >>"$TEST_DIR/agent-$name.log"
	"$CANOPY_BUILD/canopy-agent" run --state-dir "$dir" -d \
	    >>"$TEST_DIR/agent-$name.log" 2>&1 &
	AGENT_PIDS[$name]=$!
	track_pid "$!"
}

agent_alive() {
	[ -n "${AGENT_PIDS[$1]:-}" ] && _pid_running "${AGENT_PIDS[$1]}"
}

agent_stop() {
	local name=$1
	[ -n "${AGENT_PIDS[$name]:-}" ] || fail "agent_stop: $name not started"
	stop_pid "${AGENT_PIDS[$name]}" "${2:-30}"
	[ "$STOPPED_RC" = 0 ] ||
	    fail "agent $name did not exit cleanly on SIGTERM (status $STOPPED_RC): $(tail -n 20 "$TEST_DIR/agent-$name.log")"
	unset "AGENT_PIDS[$name]"
}

# ---------------------------------------------------------------- canopyctl

ctl() {
	need_bin canopyctl
	mkdir -p "$TEST_DIR/ctl-home"
	HOME=$TEST_DIR/ctl-home XDG_CONFIG_HOME=$TEST_DIR/ctl-home/.config \
	    "$CANOPY_BUILD/canopyctl" --config-dir "$TEST_DIR/ctl-home/canopy" \
	    "$@"
}

ctl_login() {
	printf '%s\n' "$ADMIN_PASS" | ctl login --server "$CANOPYD_URL" \
	    --ca "$CANOPYD_STATE/ca.pem" --user "$ADMIN_USER" \
	    --password-stdin >>"$TEST_DIR/ctl.log" 2>&1 ||
	    fail "canopyctl login failed: $(tail -n 10 "$TEST_DIR/ctl.log")"
}

# ------------------------------------------------------------------ cleanup

# Sanitizer reports in any log fail the test.
_lib_scan_logs() {
	local f bad=0
	for f in "$TEST_DIR"/*.log; do
		[ -f "$f" ] || continue
		if grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$f"; then
			echo "sanitizer report in $(basename "$f"):"
			grep -E -A 25 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" |
			    head -n 40
			bad=1
		fi
	done
	return $bad
}

_lib_cleanup() {
	local rc=$? pid f i
	set +e
	# Bash 5.2 runs the EXIT trap in a $(...) subshell too when a
	# background job has died unreaped: only the test's own shell cleans
	# up (quietly, in the subshell's case).
	if [ "$BASHPID" != "$_LIB_MAIN_PID" ]; then
		exec 2>/dev/null
		return "$rc"
	fi
	trap - EXIT INT TERM
	# Everything we started, politely first.
	for pid in $_LIB_PIDS; do
		kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 50); do
		f=0
		for pid in $_LIB_PIDS; do
			_pid_running "$pid" && f=1
		done
		[ $f = 0 ] && break
		sleep 0.1 2>/dev/null
	done
	for pid in $_LIB_PIDS; do
		_pid_running "$pid" && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		_pg_ctl -D "$PG_DATA" -m immediate -w -t 20 stop >/dev/null 2>&1
	fi
	[ -n "${_LIB_RM_SOCK:-}" ] && rm -rf "$_LIB_RM_SOCK"
	if [ "$rc" = 0 ] && ! _lib_scan_logs; then
		echo "FAIL: a sanitizer reported an error (see above)" |
		    tee -a "$TEST_DIR/.failmsg"
		rc=1
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		i=0
		for f in "$TEST_DIR"/canopyd.log "$TEST_DIR"/agent-*.log \
		    "$TEST_DIR"/postgres.log; do
			[ -s "$f" ] || continue
			echo "---- $(basename "$f") (last 12 lines)"
			tail -n 12 "$f"
			i=1
		done
		# Again, so that it ends the log.
		[ "$i" = 1 ] && [ -s "$TEST_DIR/.failmsg" ] &&
		    cat "$TEST_DIR/.failmsg"
		[ "$_LIB_OWN_DIR" = 1 ] && echo "test directory kept: $TEST_DIR"
	elif [ "$_LIB_OWN_DIR" = 1 ]; then
		cd /
		rm -rf "$TEST_DIR"
	fi
	exit "$rc"
}

# A command that fails under set -e outside any helper says which.
_lib_on_err() {
	[ "$BASHPID" = "$_LIB_MAIN_PID" ] || return 0
	[ -s "$TEST_DIR/.failmsg" ] && return 0
	echo "FAIL: $(basename "$0"):$2: '$3' exited with status $1" |
	    tee -a "$TEST_DIR/.failmsg" >&2
}

trap _lib_cleanup EXIT
trap '_lib_on_err $? $LINENO "$BASH_COMMAND"' ERR
trap 'exit 143' TERM
trap 'exit 130' INT
step "$TEST_NAME in $TEST_DIR, binaries from $CANOPY_BUILD"
