#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# deploy/demo.sh start|stop|status: a whole Canopy server tree on this
# machine, under ./var (make demo, make demo-stop):
#
#   demo                the primary server: canopyd on the default ports
#   |-- branch-a        13000 (agents) and 13299 (API), both on loopback
#   `-- branch-b        only, with three agents and a virtual server "shop"
#       `-- branch-b1   (two agents of its own); each secondary has two
#                       agents.  Secondary N listens on 13000+10N (agents)
#                       and 13299+10N (API) and joined its parent with a
#                       token from POST /servers/children (canopyctl server
#                       add-child), with the parent/parent-token/parent-ca
#                       lines in its configuration.
#
#   ./var/pg          a private PostgreSQL 15 on 127.0.0.1:15432 (durable
#                     settings: fsync and synchronous commit on), one
#                     database per server (canopy, canopy_branch_a, ...)
#   ./var/canopyd.conf, ./var/state
#                     the primary's configuration and state;
#                     ./var/servers/NAME/ the same for each secondary
#   ./var/admin-password
#                     the password of the administrator "admin" of every
#                     server
#   ./var/agents/     the agents' state (agentN: the primary's)
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
# The defaults are the real ones; the variables let a test run beside them.
PG_PORT=${CANOPY_DEMO_PG_PORT:-15432}
AGENT_PORT0=${CANOPY_DEMO_AGENT_PORT:-13000}
API_PORT0=${CANOPY_DEMO_API_PORT:-13299}

# The tree: names, parents (by index), agents of each; the virtual server.
SERVERS=(demo branch-a branch-b branch-b1)
PARENTS=("" 0 0 2)
SRV_AGENTS=(3 2 2 2)
VSERVER=shop
VS_AGENTS=2

VAR=$ROOT/var
PGDATA=$VAR/pg/data
RUN=$VAR/run
LOGDIR=$VAR/log
ADMIN_USER="admin"
ADMIN_PW=$VAR/admin-password
DB_PW=$VAR/db-password
CANOPYD=$ROOT/$BUILD/canopyd
AGENT=$ROOT/$BUILD/canopy-agent
CTL=$ROOT/$BUILD/canopyctl

# Deadlines, in seconds.
T_PG=60
T_HEALTH=60
T_DEVICES=90
T_TREE=30
T_STOP=30

say() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# Points the per-server variables at server $1 (an index into SERVERS).
# The primary keeps the paths of the single-server demo.
use_server() {
	SI=$1
	NAME=${SERVERS[$SI]}
	AGENT_PORT=$((AGENT_PORT0 + 10 * SI))
	API_PORT=$((API_PORT0 + 10 * SI))
	API_URL=https://localhost:$API_PORT
	if [ "$SI" = 0 ]; then
		SDIR=$VAR
		DBNAME=canopy
		CANOPYD_PID=$RUN/canopyd.pid
		CANOPYD_LOG=$LOGDIR/canopyd.log
		CTL_DIR=$VAR/canopyctl	# canopyctl's own session, not the user's
	else
		SDIR=$VAR/servers/$NAME
		DBNAME=canopy_${NAME//-/_}
		CANOPYD_PID=$RUN/canopyd-$NAME.pid
		CANOPYD_LOG=$LOGDIR/canopyd-$NAME.log
		CTL_DIR=$SDIR/canopyctl
	fi
	CONF=$SDIR/canopyd.conf
	STATE=$SDIR/state
	CA=$STATE/ca.pem
	PARENT=${PARENTS[$SI]}
	use_agents "" "${SRV_AGENTS[$SI]}"
}

# The agent set of the current server: in virtual server $1 ("" for main),
# $2 of them.
use_agents() {
	AG_VS=$1
	NAGENTS=$2
	if [ -n "$AG_VS" ]; then
		AG_TAG=$AG_VS-agent
		AG_NAME=$AG_VS-agent
	elif [ "$SI" = 0 ]; then
		AG_TAG=agent
		AG_NAME=demo-agent
	else
		AG_TAG=$NAME-agent
		AG_NAME=$NAME-agent
	fi
}

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

# canopyctl in the current agent set's virtual server.
ctl_vs() {
	if [ -n "$AG_VS" ]; then
		ctl --vs "$AG_VS" "$@"
	else
		ctl "$@"
	fi
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
	local i db
	for i in "${!SERVERS[@]}"; do
		db=canopy
		[ "$i" = 0 ] || db=canopy_${SERVERS[$i]//-/_}
		if [ -z "$(pg_psql -d postgres -At -c \
		    "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
			pg_psql -d postgres -c "CREATE DATABASE $db OWNER canopy"
		fi
	done
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
	mkdir -p "$SDIR"
	(umask 077; {
		cat <<EOF
# canopyd configuration of the demo (written by deploy/demo.sh; see
# deploy/canopyd.conf.example for every keyword).
server-name "$NAME"
listen agents 127.0.0.1:$AGENT_PORT
listen api 127.0.0.1:$API_PORT
database "host=127.0.0.1 port=$PG_PORT dbname=$DBNAME user=canopy password=$pw"
state-dir "$STATE"
log stderr
log-level info
EOF
		# A secondary: how it reaches its parent (join_parent).
		if [ -n "$PARENT" ]; then
			cat "$SDIR/parent.conf"
		fi
	} >"$tmp")
	mv -f "$tmp" "$CONF"
}

# A secondary joins its parent once: a child link and a one-time token made
# on the parent (canopyctl server add-child), kept in ./var/servers/NAME/
# parent.conf.  A lost parent.conf makes a new link (the old one removed).
join_parent() {
	local me=$SI out token pport
	[ -n "$PARENT" ] || return 0
	[ -s "$SDIR/parent.conf" ] && return 0
	mkdir -p "$SDIR"
	use_server "$PARENT"
	say "registering ${SERVERS[$me]} as a child of $NAME"
	ctl server remove-child "${SERVERS[$me]}" >/dev/null 2>&1 || true
	out=$(ctl --json server add-child "${SERVERS[$me]}") ||
	    die "canopyctl server add-child ${SERVERS[$me]} on $NAME failed"
	token=$(printf '%s' "$out" | jq -r .token)
	[ -n "$token" ] && [ "$token" != null ] ||
	    die "no token in the API's answer: $out"
	pport=$AGENT_PORT
	use_server "$me"
	printf '%s\n' "$out" | jq -r .ca_pem >"$SDIR/parent-ca.pem"
	(umask 077; cat >"$SDIR/parent.conf.tmp" <<EOF
parent 127.0.0.1:$pport
parent-token "$token"
parent-ca $SDIR/parent-ca.pem
EOF
	)
	mv -f "$SDIR/parent.conf.tmp" "$SDIR/parent.conf"
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
		say "starting canopyd $NAME (log: ${CANOPYD_LOG#"$ROOT"/})"
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
		die "canopyd $NAME did not become healthy within" \
		    "$T_HEALTH s (GET $API_URL/healthz): see $CANOPYD_LOG"
	fi
	die "canopyd $NAME exited: see $CANOPYD_LOG"
}

admin_create() {
	local tmp
	# The primary of a single-server demo made before had no marker.
	if [ "$SI" = 0 ] && [ -s "$ADMIN_PW" ] && [ ! -e "$SDIR/.admin-created" ]
	then
		: >"$SDIR/.admin-created"
	fi
	[ -s "$ADMIN_PW" ] && [ -e "$SDIR/.admin-created" ] && return 0
	say "creating the administrator '$ADMIN_USER' of $NAME"
	if [ ! -s "$ADMIN_PW" ]; then
		tmp=$ADMIN_PW.tmp
		(umask 077; random_secret >"$tmp")
		mv -f "$tmp" "$ADMIN_PW"
		chmod 0600 "$ADMIN_PW"
	fi
	if ! "$CANOPYD" -c "$CONF" admin-add "$ADMIN_USER" <"$ADMIN_PW" \
	    >"$LOGDIR/admin-add.log" 2>&1; then
		cat "$LOGDIR/admin-add.log" >&2
		die "canopyd admin-add on $NAME failed (if '$ADMIN_USER'" \
		    "exists but ./var/admin-password was lost, remove ./var" \
		    "and start afresh)"
	fi
	: >"$SDIR/.admin-created"
	rm -f "$CTL_DIR/config.json"
}

ctl_login() {
	# A stored session that still works is kept.
	if ctl whoami >/dev/null 2>&1; then
		return 0
	fi
	ctl login --server "$API_URL" --ca "$CA" --user "$ADMIN_USER" \
	    --password-stdin <"$ADMIN_PW" >/dev/null ||
	    die "canopyctl login as $ADMIN_USER on $NAME failed"
}

# --- agents -----------------------------------------------------------------

agent_dir() { echo "$VAR/agents/$AG_TAG$1"; }
agent_pid() { echo "$RUN/$AG_TAG$1.pid"; }
agent_log() { echo "$LOGDIR/$AG_TAG$1.log"; }

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
		out=$(ctl_vs --json enroll-token create --uses "$need" \
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
			say "enrolling $AG_TAG$n"
			if ! "$AGENT" enroll --server "127.0.0.1:$AGENT_PORT" \
			    --ca "$CA" --token "$token" --state-dir "$d" \
			    --name "$AG_NAME$n" \
			    >>"$(agent_log "$n")" 2>&1 </dev/null; then
				tail -n 5 "$(agent_log "$n")" >&2
				die "$AG_TAG$n could not enrol: see" \
				    "$(agent_log "$n")"
			fi
		fi
		say "starting $AG_TAG$n"
		setsid "$AGENT" run -v --state-dir "$d" \
		    --pidfile "$(agent_pid "$n")" \
		    </dev/null >>"$(agent_log "$n")" 2>&1 &
		echo $! >"$(agent_pid "$n")"
	done
}

agents_stop() {
	local n
	for ((n = 1; n <= NAGENTS; n++)); do
		if pid_alive "$(agent_pid "$n")" "$AGENT"; then
			say "stopping $AG_TAG$n"
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
		n=$(ctl_vs --json device list --all 2>/dev/null |
		    jq --argjson ids "$ids" \
		    '[.devices[] | select(.id as $d | $ids | index($d))] |
		    length' 2>/dev/null) || n=0
		[ "${n:-0}" -ge "$NAGENTS" ] && return 0
		for ((k = 1; k <= NAGENTS; k++)); do
			pid_alive "$(agent_pid "$k")" "$AGENT" ||
			    die "$AG_TAG$k exited: see $(agent_log "$k")"
		done
		sleep 0.25
	done
	die "only ${n:-0} of $NAGENTS devices of $NAME${AG_VS:+/$AG_VS}" \
	    "appeared within $T_DEVICES s: see $CANOPYD_LOG and" \
	    "var/log/$AG_TAG*.log"
}

# --- commands ---------------------------------------------------------------

print_status() {
	local i
	use_server 0
	cat <<EOF

Canopy demo is running: a primary, its secondaries and a virtual server.

  primary "demo":    API $API_URL (agents connect to 127.0.0.1:$AGENT_PORT)
EOF
	for i in "${!SERVERS[@]}"; do
		[ "$i" = 0 ] && continue
		use_server "$i"
		printf '  %-18s API %s, child of %s (config: %s)\n' \
		    "\"$NAME\":" "$API_URL" "${SERVERS[$PARENT]}" \
		    "${CONF#"$ROOT"/}"
	done
	use_server 0
	cat <<EOF
  virtual server:    "$VSERVER" on the primary (canopyctl --vs $VSERVER ...)
  administrator:     $ADMIN_USER on every server, password in ./var/admin-password
  CA certificate:    ./var/state/ca.pem (the primary's)
  logs:              ./var/log/  (canopyd.log, canopyd-branch-a.log, agent1.log, ...)
  PostgreSQL:        127.0.0.1:$PG_PORT, databases canopy, canopy_branch_a, ...

Use canopyctl:

  ./$BUILD/canopyctl login --server $API_URL --ca ./var/state/ca.pem --user $ADMIN_USER
  ./$BUILD/canopyctl server tree
  ./$BUILD/canopyctl device list --hierarchy
  ./$BUILD/canopyctl report status --hierarchy

  (password: cat ./var/admin-password; or
   ./$BUILD/canopyctl login ... --password-stdin < ./var/admin-password)

Stop with 'make demo-stop' (data stays in ./var; 'rm -rf ./var' starts afresh).

\$ canopyctl server tree
EOF
	ctl server tree || true
}

# The secondaries' devices reach the primary through the links: wait a
# little for them, but show the tree in any case.
wait_tree() {
	local i want=0 n=0
	for i in "${SRV_AGENTS[@]}"; do
		want=$((want + i))
	done
	use_server 0
	for ((i = 0; i < T_TREE * 4; i++)); do
		n=$(ctl --json device list --all --hierarchy 2>/dev/null |
		    jq '.devices | length' 2>/dev/null) || n=0
		# Every link of the tree up, as the primary sees it.
		if [ "${n:-0}" -ge "$want" ] && ctl --json server tree \
		    2>/dev/null | jq -e '[.. | objects | select(has("children")
		    and has("state")) | .state] | all(. == "connected")' \
		    >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.25
	done
	say "the primary shows ${n:-0} of the $want devices of the tree" \
	    "so far (the links may still be catching up)"
}

vserver_create() {
	use_server 0
	if ! ctl --json vserver list 2>/dev/null |
	    jq -e --arg v "$VSERVER" '.vservers[] | select(.name == $v)' \
	    >/dev/null 2>&1; then
		say "creating the virtual server $VSERVER"
		ctl vserver create "$VSERVER" >/dev/null ||
		    die "canopyctl vserver create $VSERVER failed"
	fi
}

cmd_start() {
	local b i
	for b in "$CANOPYD" "$AGENT" "$CTL"; do
		[ -x "$b" ] || die "$b is missing: run make first"
	done
	for b in curl jq ss setsid runuser; do
		command -v "$b" >/dev/null 2>&1 ||
		    die "$b is missing: run deploy/install-deps.sh"
	done
	[ -x "$PGBIN/initdb" ] ||
	    die "PostgreSQL 15 is not in $PGBIN: run deploy/install-deps.sh"
	mkdir -p "$VAR" "$RUN" "$LOGDIR" "$VAR/agents" "$VAR/pg" "$VAR/servers"
	chmod 0755 "$VAR"	# postgres must get through to ./var/pg
	chmod 0700 "$VAR/agents" "$VAR/servers"

	pg_start
	# Parents first: a child registers with a token made on its parent.
	for i in "${!SERVERS[@]}"; do
		use_server "$i"
		join_parent
		canopyd_start
		admin_create
		ctl_login
		agents_start
		if [ "$i" = 0 ]; then
			vserver_create
			use_agents "$VSERVER" "$VS_AGENTS"
			agents_start
		fi
	done
	for i in "${!SERVERS[@]}"; do
		use_server "$i"
		wait_devices
		if [ "$i" = 0 ]; then
			use_agents "$VSERVER" "$VS_AGENTS"
			wait_devices
		fi
	done
	wait_tree
	print_status
}

cmd_stop() {
	local i
	# Children first, so that no parent sees its children go one by one.
	for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do
		use_server "$i"
		agents_stop
		if [ "$i" = 0 ]; then
			use_agents "$VSERVER" "$VS_AGENTS"
			agents_stop
		fi
		if pid_alive "$CANOPYD_PID" "$CANOPYD"; then
			say "stopping canopyd $NAME"
		fi
		stop_pidfile "$CANOPYD_PID" "$CANOPYD" "$T_STOP"
	done
	pg_stop
	say "stopped; the data stays in ./var"
}

use_server 0

case ${1:-} in
start)	cmd_start ;;
stop)	cmd_stop ;;
status)
	if healthy; then print_status; else say "not running"; exit 1; fi ;;
*)	echo "usage: deploy/demo.sh start|stop|status" >&2; exit 2 ;;
esac
