# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A tree of canopyd servers in one test, on top of lib.sh:
#
#	#!/bin/bash
#	set -eu
#	. "$(dirname "$0")/lib.sh"
#	. "$CANOPY_ROOT/tests/integration/lib_tree.sh"   # lib.sh cd-ed
#
# One PostgreSQL cluster (lib.sh's pg_start, called for you), one database
# per server ("canopy_<name>", owned by the role canopy), and for each
# server its own directory $TEST_DIR/srv-<name> (config, state, log
# canopyd-<name>.log), ports and administrator account.
#
#   tree_server_start NAME [PARENT]
#                       create and start server NAME (first call) or start
#                       it again.  With PARENT (a server started before):
#                       POST /servers/children {"name":NAME} on PARENT and
#                       write NAME's "parent 127.0.0.1:<PARENT's agent
#                       port>", "parent-token" and "parent-ca" lines.  Extra
#                       config lines: TREE_EXTRA_CONF (an array) at the time
#                       of the first call.  Ends with tree_use NAME.
#   tree_use NAME       point lib.sh at NAME: CANOPYD_CONF/STATE/LOG/URL/
#                       PID/ports, PG_CONNINFO, the admin account and the
#                       API session, so that api, agent_enroll, token_create,
#                       canopyd_stop, … act on NAME unchanged.  canopyctl
#                       keeps one login: call ctl_login after tree_use.
#   tree_sql NAME SQL   run SQL in NAME's database as the superuser (psql
#                       -At), so row-level security does not apply
#   tree_kill NAME      SIGKILL (and reap)
#   tree_stop NAME      SIGTERM; fails unless it exits 0 in time
#   tree_start NAME     start it again with the same config
#   tree_stop_signal NAME STOP|CONT
#                       freeze or thaw the process (a partition that keeps
#                       the sockets open); returns once it took effect
#   tree_alive NAME     true while it runs
#   tree_names          print the servers created, in order
#   TREE_CUR            the server tree_use last chose
#
# Everything is stopped at exit (thawed first, so that SIGTERM works).

declare -A TREE_PID=() TREE_API=() TREE_AGENT=() TREE_APITOK=()
TREE_ORDER=""
TREE_CUR=""
TREE_ADMIN_USER=${TREE_ADMIN_USER:-admin}
TREE_ADMIN_PASS=${TREE_ADMIN_PASS:-tree-admin-Pw-1}
declare -a TREE_EXTRA_CONF=()

_tree_dir() {
	echo "$TEST_DIR/srv-$1"
}

_tree_known() {
	[ -n "${TREE_API[$1]:-}" ] || fail "lib_tree: no server named '$1'"
}

tree_names() {
	local n
	for n in $TREE_ORDER; do
		echo "$n"
	done
}

# Remembers what lib.sh's globals say of the current server.
_tree_save() {
	[ -n "$TREE_CUR" ] || return 0
	TREE_PID[$TREE_CUR]=${CANOPYD_PID:-}
	TREE_APITOK[$TREE_CUR]=${API_TOKEN:-}
}

tree_use() {
	local n=$1 d
	_tree_known "$n"
	_tree_save
	d=$(_tree_dir "$n")
	TREE_CUR=$n
	CANOPYD_CONF=$d/canopyd.conf
	CANOPYD_STATE=$d/state
	CANOPYD_LOG=$TEST_DIR/canopyd-$n.log
	CANOPYD_API_PORT=${TREE_API[$n]}
	CANOPYD_AGENT_PORT=${TREE_AGENT[$n]}
	CANOPYD_URL=https://localhost:$CANOPYD_API_PORT
	CANOPYD_PID=${TREE_PID[$n]:-}
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=canopy_$n user=canopy connect_timeout=5"
	ADMIN_USER=$TREE_ADMIN_USER
	ADMIN_PASS=$TREE_ADMIN_PASS
	API_TOKEN=${TREE_APITOK[$n]:-}
	export CANOPYD_CONF CANOPYD_STATE CANOPYD_API_PORT CANOPYD_AGENT_PORT \
	    PG_CONNINFO
}

tree_sql() {
	_tree_known "$1"
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "canopy_$1" \
	    -v ON_ERROR_STOP=1 -Atqc "$2"
}

tree_alive() {
	local pid
	_tree_save
	pid=${TREE_PID[$1]:-}
	[ -n "$pid" ] && _pid_running "$pid"
}

_tree_ready() {
	tree_alive "$1" ||
	    fail "canopyd $1 exited while starting: $(tail -n 30 "$TEST_DIR/canopyd-$1.log")"
	[ -f "$(_tree_dir "$1")/state/ca.pem" ] && [ "$(healthz_status)" = 200 ]
}

# Writes NAME's config; extra lines follow.
_tree_conf() {
	local n=$1 d l
	shift
	d=$(_tree_dir "$n")
	mkdir -p "$d/state"
	chmod 700 "$d/state"
	{
		echo "# written by tests/integration/lib_tree.sh for $TEST_NAME"
		echo "server-name \"$n\""
		echo "listen agents 127.0.0.1:${TREE_AGENT[$n]}"
		echo "listen api 127.0.0.1:${TREE_API[$n]}"
		echo "database \"host=127.0.0.1 port=$PG_PORT dbname=canopy_$n user=canopy connect_timeout=5\""
		echo "state-dir $d/state"
		echo "log stderr"
		echo "log-level ${CANOPYD_LOG_LEVEL:-info}"
		for l in "$@"; do
			echo "$l"
		done
	} >"$d/canopyd.conf"
}

tree_start() {
	local n=$1
	_tree_known "$n"
	need_bin canopyd
	tree_use "$n"
	! tree_alive "$n" || fail "tree_start: $n is already running"
	echo "---- canopyd start $(date +%T)" >>"$CANOPYD_LOG"
	# In a session of its own: when the test's process group is orphaned
	# (a detached run), the kernel sends SIGHUP and SIGCONT to a group
	# with a stopped member, which would end tree_stop_signal's partition.
	# shellcheck disable=SC2086
	setsid "$CANOPY_BUILD/canopyd" ${CANOPYD_FLAGS--d} -c "$CANOPYD_CONF" \
	    >>"$CANOPYD_LOG" 2>&1 &
	TREE_PID[$n]=$!
	CANOPYD_PID=$!
	track_pid "$CANOPYD_PID"
	wait_for "canopyd $n to answer /healthz 200" 60 _tree_ready "$n"
	step "server $n: pid $CANOPYD_PID, agents ${TREE_AGENT[$n]}, api ${TREE_API[$n]}"
}

tree_server_start() {
	local n=$1 parent=${2:-} lines=() body
	[ -n "${PG_PORT:-}" ] || pg_start
	if [ -n "${TREE_API[$n]:-}" ]; then
		tree_start "$n"
		return 0
	fi
	case $n in
	*[!A-Za-z0-9._-]*|'') fail "tree_server_start: bad name '$n'" ;;
	esac
	if [ -n "$parent" ]; then
		_tree_known "$parent"
		tree_use "$parent"
		body=$(jq -cn --arg n "$n" '{name: $n}')
		api POST /api/v1/servers/children "$body" >/dev/null
		assert_status 201 "POST /servers/children {\"name\":\"$n\"} on $parent"
		mkdir -p "$(_tree_dir "$n")"
		json .ca_pem >"$(_tree_dir "$n")/parent-ca.pem"
		lines+=("parent 127.0.0.1:${TREE_AGENT[$parent]}"
		    "parent-token \"$(json .token)\""
		    "parent-ca $(_tree_dir "$n")/parent-ca.pem")
	fi
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
	    -v ON_ERROR_STOP=1 -Atqc "CREATE DATABASE \"canopy_$n\" OWNER canopy" \
	    >/dev/null || fail "could not create database canopy_$n"
	TREE_API[$n]=$(free_port)
	TREE_AGENT[$n]=$(free_port)
	TREE_ORDER="$TREE_ORDER $n"
	_tree_conf "$n" "${lines[@]}" "${TREE_EXTRA_CONF[@]}"
	tree_start "$n"
	admin_create "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
	TREE_APITOK[$n]=""
}

tree_kill() {
	local pid
	_tree_known "$1"
	_tree_save
	pid=${TREE_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	_reap "$pid"
	_untrack_pid "$pid"
	TREE_PID[$1]=""
	[ "$TREE_CUR" != "$1" ] || CANOPYD_PID=""
}

tree_stop() {
	local pid
	_tree_known "$1"
	_tree_save
	pid=${TREE_PID[$1]:-}
	[ -n "$pid" ] || fail "tree_stop: $1 is not running"
	kill -CONT "$pid" 2>/dev/null || true
	stop_pid "$pid" "${2:-30}"
	[ "$STOPPED_RC" = 0 ] ||
	    fail "canopyd $1 did not exit cleanly on SIGTERM (status $STOPPED_RC): $(tail -n 30 "$TEST_DIR/canopyd-$1.log")"
	TREE_PID[$1]=""
	[ "$TREE_CUR" != "$1" ] || CANOPYD_PID=""
}

tree_stop_signal() {
	local pid
	_tree_known "$1"
	_tree_save
	pid=${TREE_PID[$1]:-}
	[ -n "$pid" ] || fail "tree_stop_signal: $1 is not running"
	case $2 in
	STOP|CONT) kill "-$2" "$pid" || fail "kill -$2 $1 ($pid) failed" ;;
	*) fail "tree_stop_signal: STOP or CONT, not '$2'" ;;
	esac
	# The signal is delivered asynchronously: return once it took effect.
	_TREE_SIG_PID=$pid
	if [ "$2" = STOP ]; then
		wait_for "$1 ($pid) to stop" 10 _tree_pid_stopped
	else
		wait_for "$1 ($pid) to continue" 10 _tree_pid_running
	fi
}

# The process state of _TREE_SIG_PID ('T': stopped by a signal).
_tree_pid_state() {
	sed 's/.*) //' "/proc/$_TREE_SIG_PID/stat" 2>/dev/null | cut -d' ' -f1
}
_tree_pid_stopped() { [ "$(_tree_pid_state)" = T ]; }
_tree_pid_running() {
	local st
	st=$(_tree_pid_state)
	[ -n "$st" ] && [ "$st" != T ]
}

# Frozen servers would ignore lib.sh's SIGTERM until its SIGKILL: thaw them.
_tree_cleanup() {
	local rc=$? n
	set +e
	if [ "$BASHPID" = "$_LIB_MAIN_PID" ]; then
		_tree_save
		for n in $TREE_ORDER; do
			[ -n "${TREE_PID[$n]:-}" ] &&
			    kill -CONT "${TREE_PID[$n]}" 2>/dev/null
		done
	fi
	_tree_rc "$rc"
	_lib_cleanup
}

_tree_rc() {
	return "$1"
}

trap _tree_cleanup EXIT
