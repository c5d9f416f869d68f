#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# deploy/demo.sh start|stop|status: a whole Canopy on this machine, under
# ./var (make demo, make demo-stop):
#
#   ./var/pg          a private PostgreSQL 15 on 127.0.0.1:15432 (durable
#                     settings: fsync and synchronous commit on)
#   ./var/canopyd.conf, ./var/state
#                     canopyd on the default ports 13000 (agents) and 13299
#                     (API), both on loopback only
#   ./var/admin-password
#                     the password of the first administrator, "admin"
#   ./var/agents/agentN
#                     three real canopy-agent processes, enrolled with a
#                     token made through the API
#   ./var/log, ./var/run
#                     logs and pidfiles
#
# Running it again while everything runs only prints the status; pieces that
# died or were half started are cleaned up and started again.  'stop' stops
# everything by pidfile and keeps the data, so the next start reuses it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

BUILD=${BUILD:-build}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
NAGENTS=3
# The defaults are the real ones; the variables let a test run beside them.
PG_PORT=${CANOPY_DEMO_PG_PORT:-15432}
AGENT_PORT=${CANOPY_DEMO_AGENT_PORT:-13000}
API_PORT=${CANOPY_DEMO_API_PORT:-13299}
API_URL=https://localhost:$API_PORT

VAR=$ROOT/var
PGDATA=$VAR/pg/data
CONF=$VAR/canopyd.conf
STATE=$VAR/state
CA=$STATE/ca.pem
RUN=$VAR/run
LOGDIR=$VAR/log
CANOPYD_PID=$RUN/canopyd.pid
CANOPYD_LOG=$LOGDIR/canopyd.log
ADMIN_USER="admin"
ADMIN_PW=$VAR/admin-password
DB_PW=$VAR/db-password
CTL_DIR=$VAR/canopyctl		# canopyctl's own session, not the user's
CANOPYD=$ROOT/$BUILD/canopyd
AGENT=$ROOT/$BUILD/canopy-agent
CTL=$ROOT/$BUILD/canopyctl

# Deadlines, in seconds.
T_PG=60
T_HEALTH=60
T_DEVICES=90
T_STOP=30

say() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# --- helpers ---------------------------------------------------------------

# True when pidfile $1 names a live process whose command line holds $2:
# a pid reused by another program after a crash does not count.
pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(head -n1 "$1" 2>/dev/null) || return 1
	case $pid in ''|*[!0-9]*) return 1 ;; esac
	[ -r "/proc/$pid/cmdline" ] || return 1
	grep -q "state:[[:space:]]*Z" "/proc/$pid/status" 2>/dev/null &&
	    return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# Stops the process of pidfile $1 (command line holding $2): SIGTERM, wait
# up to $3 seconds, then SIGKILL.  Removes the pidfile.
stop_pidfile() {
	local pid i
	if pid_alive "$1" "$2"; then
		pid=$(head -n1 "$1")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < $3 * 10; i++)); do
			pid_alive "$1" "$2" || break
			sleep 0.1
		done
		if pid_alive "$1" "$2"; then
			say "$(basename "$2") (pid $pid) did not stop in $3 s:" \
			    "killing it"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				pid_alive "$1" "$2" || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$1"
}

# A random password of 32 characters [A-Za-z0-9_-].
random_secret() {
	head -c 24 /dev/urandom | base64 | tr '+/' '-_'
}

# Runs a PostgreSQL program as the owner of the cluster.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_superuser() {
	if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# The socket directory: under ./var unless that makes the socket path
# longer than the 107 bytes a sockaddr_un holds.
pg_sockdir() {
	local d=$VAR/pg/run
	if [ $((${#d} + ${#PG_PORT} + 10)) -gt 100 ]; then
		d=/tmp/canopy-demo-$(printf '%s' "$ROOT" | sha256sum |
		    cut -c1-12)
	fi
	echo "$d"
}

http_status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" \
	    "$API_URL$1" 2>/dev/null || true
}

healthy() {
	[ -s "$CA" ] && [ "$(http_status /healthz)" = 200 ]
}

ctl() {
	"$CTL" --config-dir "$CTL_DIR" "$@"
}

port_busy() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# --- PostgreSQL -------------------------------------------------------------

# PostgreSQL runs as user postgres, which must be able to reach ./var.
pg_check_reachable() {
	local d p
	[ "$(id -u)" -eq 0 ] || return 0
	id postgres >/dev/null 2>&1 ||
	    die "there is no user 'postgres': run deploy/install-deps.sh"
	if runuser -u postgres -- test -x "$VAR/pg"; then
		return 0
	fi
	d=""
	p=$VAR/pg
	while [ "$p" != / ]; do
		runuser -u postgres -- test -x "$p" 2>/dev/null || d=$p
		p=$(dirname "$p")
	done
	die "PostgreSQL runs as user postgres, which cannot enter ${d:-$VAR/pg}." \
	    "Make the path to the checkout searchable (chmod o+x ${d:-...})," \
	    "or move the checkout (e.g. to /srv/canopy)."
}

pg_init() {
	local sock
	sock=$(pg_sockdir)
	if [ -s "$PGDATA/PG_VERSION" ] && [ -s "$PGDATA/postgresql.conf" ] &&
	    grep -q "^# canopy demo" "$PGDATA/postgresql.conf"; then
		return 0
	fi
	if [ -e "$PGDATA" ]; then
		say "removing a half-initialised PostgreSQL in $PGDATA"
		rm -rf "$PGDATA"
	fi
	say "initialising PostgreSQL in $PGDATA"
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres:postgres "$VAR/pg"
	fi
	# Local connections: peer (the cluster's own user); TCP: passwords.
	if ! pg_as "$PGBIN/initdb" -D "$PGDATA" -U "$(pg_superuser)" \
	    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
	    --locale=C.UTF-8 >"$LOGDIR/initdb.log" 2>&1; then
		rm -rf "$PGDATA"
		die "initdb failed: see $LOGDIR/initdb.log"
	fi
	# Durable on purpose: this is a demo of a real installation, not a
	# test, so a crash must not lose what the server acknowledged.
	pg_as tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

# canopy demo (deploy/demo.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
logging_collector = off
EOF
}

pg_running() {
	[ -s "$PGDATA/PG_VERSION" ] &&
	    pg_as "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

pg_psql() {
	pg_as "$PGBIN/psql" -h "$(pg_sockdir)" -p "$PG_PORT" \
	    -U "$(pg_superuser)" -X -q -v ON_ERROR_STOP=1 "$@"
}

pg_start() {
	local sock pw
	pg_check_reachable
	pg_init
	sock=$(pg_sockdir)
	mkdir -p "$sock"
	[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$sock"
	if ! pg_running; then
		if port_busy "$PG_PORT"; then
			die "port $PG_PORT is in use by another program:" \
			    "the demo's PostgreSQL needs it"
		fi
		say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
		[ "$(id -u)" -ne 0 ] || touch "$LOGDIR/postgresql.log"
		[ "$(id -u)" -ne 0 ] ||
		    chown postgres:postgres "$LOGDIR/postgresql.log"
		if ! pg_as "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGDIR/postgresql.log" \
		    -w -t "$T_PG" start >/dev/null; then
			tail -n 20 "$LOGDIR/postgresql.log" >&2 || true
			die "PostgreSQL did not start: see $LOGDIR/postgresql.log"
		fi
	fi

	# The role and database, made once; the password is set every time,
	# so that a lost ./var/db-password heals.
	if [ ! -s "$DB_PW" ]; then
		(umask 077; random_secret >"$DB_PW")
	fi
	pw=$(cat "$DB_PW")
	if [ -z "$(pg_psql -d postgres -At -c \
	    "SELECT 1 FROM pg_roles WHERE rolname = 'canopy'")" ]; then
		pg_psql -d postgres -c "CREATE ROLE canopy LOGIN"
	fi
	pg_psql -d postgres -c "ALTER ROLE canopy PASSWORD '$pw'"
	# An ordinary role: row-level security does not hold for superusers.
	pg_psql -d postgres -c "ALTER ROLE canopy NOSUPERUSER NOBYPASSRLS"
	if [ -z "$(pg_psql -d postgres -At -c \
	    "SELECT 1 FROM pg_database WHERE datname = 'canopy'")" ]; then
		pg_psql -d postgres -c "CREATE DATABASE canopy OWNER canopy"
	fi
}

pg_stop() {
	if pg_running; then
		say "stopping PostgreSQL"
		pg_as "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t "$T_STOP" \
		    stop >/dev/null || say "pg_ctl stop failed"
	fi
}

# --- canopyd ----------------------------------------------------------------

write_conf() {
	local pw tmp
	pw=$(cat "$DB_PW")
	tmp=$CONF.tmp
	(umask 077; cat >"$tmp" <<EOF
# canopyd configuration of the demo (written by deploy/demo.sh; see
# deploy/canopyd.conf.example for every keyword).
server-name "demo"
listen agents 127.0.0.1:$AGENT_PORT
listen api 127.0.0.1:$API_PORT
database "host=127.0.0.1 port=$PG_PORT dbname=canopy user=canopy password=$pw"
state-dir "$STATE"
log stderr
log-level info
EOF
	)
	mv -f "$tmp" "$CONF"
}

canopyd_start() {
	local i spid=""
	if pid_alive "$CANOPYD_PID" "$CANOPYD"; then
		healthy && return 0
		# Running but not answering: it gets the deadline below.
		spid=$(head -n1 "$CANOPYD_PID")
		say "canopyd runs (pid $spid) but is not healthy yet"
	else
		rm -f "$CANOPYD_PID"
		for i in "$AGENT_PORT" "$API_PORT"; do
			if port_busy "$i"; then
				die "port $i is in use by another program:" \
				    "stop it (ss -ltnp 'sport = :$i' shows" \
				    "which) and run make demo again"
			fi
		done
		write_conf
		if ! "$CANOPYD" -n -c "$CONF" 2>"$LOGDIR/canopyd-check.log"; then
			cat "$LOGDIR/canopyd-check.log" >&2
			die "canopyd refuses $CONF"
		fi
		say "starting canopyd (log: var/log/canopyd.log)"
		# setsid: the server outlives the terminal that ran make demo.
		setsid "$CANOPYD" -c "$CONF" -p "$CANOPYD_PID" \
		    </dev/null >>"$CANOPYD_LOG" 2>&1 &
		spid=$!
	fi
	for ((i = 0; i < T_HEALTH * 10; i++)); do
		# The pidfile is written once the listeners are up.
		if healthy && pid_alive "$CANOPYD_PID" "$CANOPYD"; then
			return 0
		fi
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$CANOPYD_LOG" >&2 || true
	if kill -0 "$spid" 2>/dev/null; then
		say "stopping the unhealthy canopyd (pid $spid)"
		kill -TERM "$spid" 2>/dev/null || true
		die "canopyd did not become healthy within $T_HEALTH s" \
		    "(GET $API_URL/healthz): see var/log/canopyd.log"
	fi
	die "canopyd exited: see var/log/canopyd.log"
}

admin_create() {
	local pw tmp
	[ -s "$ADMIN_PW" ] && return 0
	say "creating the administrator '$ADMIN_USER'"
	tmp=$ADMIN_PW.tmp
	(umask 077; random_secret >"$tmp")
	if ! "$CANOPYD" -c "$CONF" admin-add "$ADMIN_USER" <"$tmp" \
	    >"$LOGDIR/admin-add.log" 2>&1; then
		cat "$LOGDIR/admin-add.log" >&2
		rm -f "$tmp"
		die "canopyd admin-add failed (if '$ADMIN_USER' exists but" \
		    "./var/admin-password was lost, remove ./var and start" \
		    "afresh)"
	fi
	mv -f "$tmp" "$ADMIN_PW"
	chmod 0600 "$ADMIN_PW"
	rm -f "$CTL_DIR/config.json"
}

ctl_login() {
	# A stored session that still works is kept.
	if ctl whoami >/dev/null 2>&1; then
		return 0
	fi
	ctl login --server "$API_URL" --ca "$CA" --user "$ADMIN_USER" \
	    --password-stdin <"$ADMIN_PW" >/dev/null ||
	    die "canopyctl login as $ADMIN_USER failed"
}

# --- agents -----------------------------------------------------------------

agent_dir() { echo "$VAR/agents/agent$1"; }
agent_pid() { echo "$RUN/agent$1.pid"; }

agent_enrolled() {
	local d
	d=$(agent_dir "$1")
	# canopy-agent enroll writes state.json last.
	[ -s "$d/state.json" ] && [ -s "$d/agent.pem" ] && [ -s "$d/agent.key" ]
}

agents_start() {
	local n need=0 token d out
	for ((n = 1; n <= NAGENTS; n++)); do
		pid_alive "$(agent_pid "$n")" "$AGENT" && continue
		agent_enrolled "$n" || need=$((need + 1))
	done
	if [ "$need" -gt 0 ]; then
		out=$(ctl --json enroll-token create --uses "$need" \
		    --ttl 3600) || die "cannot create an enrolment token"
		token=$(printf '%s' "$out" | jq -r .token)
		if [ -z "$token" ] || [ "$token" = null ]; then
			die "no token in the API's answer: $out"
		fi
	fi
	for ((n = 1; n <= NAGENTS; n++)); do
		d=$(agent_dir "$n")
		if pid_alive "$(agent_pid "$n")" "$AGENT"; then
			continue
		fi
		rm -f "$(agent_pid "$n")"
		if ! agent_enrolled "$n"; then
			# A half-done enrolment starts over.
			rm -rf "$d"
			mkdir -p "$d"
			chmod 0700 "$d"
			say "enrolling agent$n"
			if ! "$AGENT" enroll --server "127.0.0.1:$AGENT_PORT" \
			    --ca "$CA" --token "$token" --state-dir "$d" \
			    --name "demo-agent$n" \
			    >>"$LOGDIR/agent$n.log" 2>&1 </dev/null; then
				tail -n 5 "$LOGDIR/agent$n.log" >&2
				die "agent$n could not enrol: see" \
				    "var/log/agent$n.log"
			fi
		fi
		say "starting agent$n"
		setsid "$AGENT" run -v --state-dir "$d" \
		    --pidfile "$(agent_pid "$n")" \
		    </dev/null >>"$LOGDIR/agent$n.log" 2>&1 &
		echo $! >"$(agent_pid "$n")"
	done
}

agents_stop() {
	local n
	for ((n = 1; n <= NAGENTS; n++)); do
		if pid_alive "$(agent_pid "$n")" "$AGENT"; then
			say "stopping agent$n"
		fi
		stop_pidfile "$(agent_pid "$n")" "$AGENT" 10
	done
}

# The device ids of the demo's agents, as a JSON array.
agent_ids() {
	local n
	for ((n = 1; n <= NAGENTS; n++)); do
		jq -r .device_id "$(agent_dir "$n")/state.json" 2>/dev/null ||
		    true
	done | jq -R . | jq -s -c .
}

# Waits until the API lists every demo agent's device.
wait_devices() {
	local i k n=0 ids
	ids=$(agent_ids)
	for ((i = 0; i < T_DEVICES * 4; i++)); do
		n=$(ctl --json device list --all 2>/dev/null |
		    jq --argjson ids "$ids" \
		    '[.devices[] | select(.id as $d | $ids | index($d))] |
		    length' 2>/dev/null) || n=0
		[ "${n:-0}" -ge "$NAGENTS" ] && return 0
		for ((k = 1; k <= NAGENTS; k++)); do
			pid_alive "$(agent_pid "$k")" "$AGENT" ||
			    die "agent$k exited: see var/log/agent$k.log"
		done
		sleep 0.25
	done
	die "only ${n:-0} of $NAGENTS devices appeared within $T_DEVICES s:" \
	    "see var/log/canopyd.log and var/log/agent*.log"
}

# --- commands ---------------------------------------------------------------

print_status() {
	cat <<EOF

Canopy demo is running.

  API:              $API_URL     (agents connect to 127.0.0.1:$AGENT_PORT)
  administrator:    $ADMIN_USER, password in ./var/admin-password
  CA certificate:   ./var/state/ca.pem
  configuration:    ./var/canopyd.conf
  logs:             ./var/log/  (canopyd.log, agent1.log, ...)
  PostgreSQL:       127.0.0.1:$PG_PORT, database canopy (data in ./var/pg)

Use canopyctl:

  ./$BUILD/canopyctl login --server $API_URL --ca ./var/state/ca.pem --user $ADMIN_USER
  ./$BUILD/canopyctl device list
  ./$BUILD/canopyctl device show ID

  (password: cat ./var/admin-password; or
   ./$BUILD/canopyctl login ... --password-stdin < ./var/admin-password)

Stop with 'make demo-stop' (data stays in ./var; 'rm -rf ./var' starts afresh).

\$ canopyctl device list
EOF
	ctl device list --all || true
}

cmd_start() {
	local b
	for b in "$CANOPYD" "$AGENT" "$CTL"; do
		[ -x "$b" ] || die "$b is missing: run make first"
	done
	for b in curl jq ss setsid runuser; do
		command -v "$b" >/dev/null 2>&1 ||
		    die "$b is missing: run deploy/install-deps.sh"
	done
	[ -x "$PGBIN/initdb" ] ||
	    die "PostgreSQL 15 is not in $PGBIN: run deploy/install-deps.sh"
	mkdir -p "$VAR" "$RUN" "$LOGDIR" "$VAR/agents" "$VAR/pg"
	chmod 0755 "$VAR"	# postgres must get through to ./var/pg
	chmod 0700 "$VAR/agents"

	pg_start
	canopyd_start
	admin_create
	ctl_login
	agents_start
	wait_devices
	print_status
}

cmd_stop() {
	agents_stop
	if pid_alive "$CANOPYD_PID" "$CANOPYD"; then
		say "stopping canopyd"
	fi
	stop_pidfile "$CANOPYD_PID" "$CANOPYD" "$T_STOP"
	pg_stop
	say "stopped; the data stays in ./var"
}

case ${1:-} in
start)	cmd_start ;;
stop)	cmd_stop ;;
status)
	if healthy; then print_status; else say "not running"; exit 1; fi ;;
*)	echo "usage: deploy/demo.sh start|stop|status" >&2; exit 2 ;;
esac
