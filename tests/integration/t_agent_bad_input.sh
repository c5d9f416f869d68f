#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Hostile and broken input on the agent port (13000): each case gets the
# right 'error' and a closed connection, and afterwards the server still
# enrols and serves a good agent with its database intact.
set -eu
. "$(dirname "$0")/lib.sh"

PROBE=$CANOPY_BUILD/tools/proto-probe
[ -x "$PROBE" ] || PROBE=$CANOPY_ROOT/build/tools/proto-probe
[ -x "$PROBE" ] || fail "proto-probe is missing (run make)"

HELLO='{"t":"hello","role":"agent","name":"probe","proto_min":1,"proto_max":1,"version":"test"}'

# probe ARGS...: runs proto-probe against the agent port with the server's
# CA; sets PROBE_OUT (its stdout) and PROBE_RC.
probe() {
	PROBE_RC=0
	PROBE_OUT=$("$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 20 "$@" \
	    "127.0.0.1:$CANOPYD_AGENT_PORT" 2>>"$TEST_DIR/probe.log") ||
	    PROBE_RC=$?
	printf 'probe (rc %s):\n%s\n' "$PROBE_RC" "$PROBE_OUT" \
	    >>"$TEST_DIR/probe.log"
}

# The frames received (JSON lines only).
probe_frames() {
	printf '%s\n' "$PROBE_OUT" | grep '^{' || true
}

# expect_error WHAT CODE [MESSAGE_PART]: the server answered exactly one
# 'error' with CODE (any code if CODE is '*'), then closed.
expect_error() {
	local what=$1 code=$2 part=${3:-} frames got msg
	assert_eq 0 "$PROBE_RC" "$what: probe exit status (server close)"
	assert_eq CLOSED "$(printf '%s\n' "$PROBE_OUT" | tail -n 1)" \
	    "$what: last line"
	frames=$(probe_frames)
	got=$(printf '%s\n' "$frames" | jq -r 'select(.t == "error") | .code' |
	    head -n 1)
	msg=$(printf '%s\n' "$frames" | jq -r 'select(.t == "error") | .message' |
	    head -n 1)
	[ -n "$got" ] || fail "$what: no error received: $PROBE_OUT"
	if [ "$code" != '*' ]; then
		assert_eq "$code" "$got" "$what: error code"
	fi
	assert_match "$got" '^[a-z][a-z0-9_]*$' "$what: error code"
	[ -n "$msg" ] || fail "$what: error without a message"
	if [ -n "$part" ]; then
		assert_contains "$msg" "$part" "$what: error message"
	fi
	step "$what: $got: $msg"
}

# enroll_json TOKEN CSR_FILE: the enroll message.
enroll_json() {
	jq -cn --arg t "$1" --rawfile c "$2" '{t: "enroll", token: $t, csr: $c}'
}

# new_csr NAME: a P-256 key and CSR in $TEST_DIR/NAME.key, NAME.csr
new_csr() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -subj "/CN=$1" -keyout "$TEST_DIR/$1.key" \
	    -out "$TEST_DIR/$1.csr" >>"$TEST_DIR/openssl.log" 2>&1 ||
	    fail "openssl req failed"
}

token_hash_sql() {
	printf "encode(sha256('%s'::bytea), 'hex')" "$1"
}

pg_start
canopyd_start
admin_create admin 'correct horse battery'

# ---------------------------------------------------------------- framing
step "framing"
# An HTTP request: its first four bytes read as a length of ~1.2 GB.
probe --send-raw-hex "$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | od -An -tx1 | tr -d ' \n')"
expect_error "garbage (HTTP request)" bad_frame "exceeds the limit"

# A plausible length followed by bytes msgpack never uses.
probe --send-raw-hex 0000000481a174c1
expect_error "garbage body" bad_message "0xc1"

probe --send-raw-hex 01000001
expect_error "length over max-frame" bad_frame "16777217 bytes"

probe --send-raw-hex 00000000
expect_error "zero length" bad_frame "empty"

# {"t":"hello","x":[[[... 20 deep ...]]]}
probe --send-frame-hex "82a174a568656c6c6fa178$(printf '91%.0s' $(seq 20))c0"
expect_error "deeply nested msgpack" bad_message "nesting deeper"

probe --send-frame-hex 93010203
expect_error "not a map" bad_message "not a map"

probe --send-frame-hex 82a174a568656c6c6f
expect_error "truncated map" bad_message "truncated"

# -------------------------------------------------------------- messages
step "messages"
probe --send-json '{"t":"bogus"}'
expect_error "unknown message type" bad_message "unknown message type 'bogus'"

probe --send-json '{"role":"agent"}'
expect_error "no type" bad_message "no 't'"

probe --send-json '{"t":"hello","role":"agent","name":"p","proto_min":"one","proto_max":1}'
expect_error "wrong-typed field" bad_message "proto_min"

probe --send-json '{"t":"hello","role":"agent","name":"p","proto_min":2,"proto_max":3}'
expect_error "unsupported version" unsupported_version "2..3"
assert_contains "$PROBE_OUT" "1..1" "unsupported_version names the server's range"

probe --send-json '{"t":"sync","seq":1,"hash":"x"}'
expect_error "sync before hello" unexpected_message "sync"

probe --send-json "$HELLO" --send-json '{"t":"heartbeat","seq":1}'
expect_error "heartbeat before enrolment" unexpected_message "heartbeat"
assert_eq hello "$(probe_frames | head -n 1 | jq -r .t)" "server hello first"

probe --send-json "$HELLO" --send-json "$HELLO"
expect_error "second hello" unexpected_message "hello"

# ------------------------------------------------------------- enrolment
step "enrolment"
new_csr good
new_csr other

probe --send-json "$HELLO" --send-json "$(enroll_json not-a-token "$TEST_DIR/good.csr")"
expect_error "invalid token" bad_token

# Single use: the first enrolment works, the second is refused.
token_create 1 >/dev/null
TOK1=$(cat "$TEST_DIR/.last-token")
probe --send-json "$HELLO" --send-json "$(enroll_json "$TOK1" "$TEST_DIR/good.csr")"
assert_eq 0 "$PROBE_RC" "enrolment: probe exit status"
ENROLLED=$(probe_frames | jq -c 'select(.t == "enrolled")')
[ -n "$ENROLLED" ] || fail "enrolment with a valid token failed: $PROBE_OUT"
DEV=$(json .device_id "$ENROLLED")
json .cert "$ENROLLED" >"$TEST_DIR/good.pem"
assert_match "$DEV" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "device id"
assert_eq "$DEV" "$(openssl x509 -in "$TEST_DIR/good.pem" -noout -subject -nameopt multiline | awk '/commonName/ { print $3 }')" "certificate CN"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices WHERE id = '$DEV' AND name = 'probe' AND enrolled IS NOT NULL AND cert_fingerprint IS NOT NULL")" "enrolled device row"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$DEV' AND severity = 'info'")" "enrolment event"

probe --send-json "$HELLO" --send-json "$(enroll_json "$TOK1" "$TEST_DIR/other.csr")"
expect_error "reused single-use token" bad_token

# Expired.
token_create 5 >/dev/null
TOKX=$(cat "$TEST_DIR/.last-token")
pg_sql "UPDATE enrollment_tokens SET expires = now() - interval '1 hour' WHERE token_hash = $(token_hash_sql "$TOKX")" >/dev/null
probe --send-json "$HELLO" --send-json "$(enroll_json "$TOKX" "$TEST_DIR/other.csr")"
expect_error "expired token" bad_token
assert_eq 5 "$(pg_sql "SELECT uses_left FROM enrollment_tokens WHERE token_hash = $(token_hash_sql "$TOKX")")" "expired token not used"

# An invalid CSR does not use the token up.
token_create 1 >/dev/null
TOK2=$(cat "$TEST_DIR/.last-token")
probe --send-json "$HELLO" --send-json "{\"t\":\"enroll\",\"token\":\"$TOK2\",\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}"
expect_error "invalid CSR" bad_csr
assert_eq 1 "$(pg_sql "SELECT uses_left FROM enrollment_tokens WHERE token_hash = $(token_hash_sql "$TOK2")")" "token kept after a bad CSR"

probe --send-json "$HELLO" --send-json '{"t":"enroll","token":"x"}'
expect_error "enroll without csr" bad_message "csr"

# ------------------------------------------------------ foreign certificate
step "a certificate from another CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=evil CA" -days 2 -keyout "$TEST_DIR/evilca.key" \
    -out "$TEST_DIR/evilca.pem" >>"$TEST_DIR/openssl.log" 2>&1
printf 'extendedKeyUsage = clientAuth\n' >"$TEST_DIR/evil.ext"
openssl x509 -req -in "$TEST_DIR/other.csr" -CA "$TEST_DIR/evilca.pem" \
    -CAkey "$TEST_DIR/evilca.key" -CAcreateserial -days 2 \
    -extfile "$TEST_DIR/evil.ext" -out "$TEST_DIR/evil.pem" \
    >>"$TEST_DIR/openssl.log" 2>&1
# The same CN as a real device: the certificate must still be refused.
probe --cert "$TEST_DIR/evil.pem" --key "$TEST_DIR/other.key" \
    --send-json "$HELLO"
assert_not_contains "$PROBE_OUT" '"t":"hello"' "foreign certificate"
assert_ne 0 "$PROBE_RC" "foreign certificate: probe exit status"
step "foreign certificate refused: $(printf '%s' "$PROBE_OUT" | tail -n 1)"

# ------------------------------------------------------------- a session
step "a good agent"
GOOD=(--cert "$TEST_DIR/good.pem" --key "$TEST_DIR/good.key")
INV='{"hostname":"probe-host","fqdn":"probe-host.example.org","os":{"name":"Debian","pretty_name":"Debian GNU/Linux 12"},"interfaces":[{"name":"eth0","mac":"52:54:00:12:34:56","ipv4":["192.0.2.7"],"ipv6":[]}],"software":[{"name":"bash","version":"5.2"}]}'
probe "${GOOD[@]}" --send-json "$HELLO" --recv \
    --send-json '{"t":"sync","seq":1,"hash":"h1"}' --recv \
    --send-json "{\"t\":\"sync\",\"seq\":2,\"hash\":\"h1\",\"inventory\":$INV}" --recv \
    --send-json '{"t":"sync","seq":3,"hash":"h1"}' --recv \
    --send-json '{"t":"heartbeat","seq":4}' --recv \
    --send-json '{"t":"events","seq":5,"events":[{"id":"e1","time":1700000000000,"severity":"warning","type":"test","text":"one"},{"id":"e2","time":1700000000001,"severity":"info","type":"test","text":"two"}]}' --recv \
    --send-json '{"t":"events","seq":6,"events":[{"id":"e1","time":1700000000000,"severity":"warning","type":"test","text":"one again"}]}' --recv \
    --send-json '{"t":"enroll","token":"x","csr":"y"}'
expect_error "enroll inside a session" unexpected_message "enroll"
FR=$(probe_frames)
assert_eq "$DEV" "$(printf '%s\n' "$FR" | jq -r 'select(.t == "hello") | .device_id')" "server hello names the device"
assert_eq true "$(printf '%s\n' "$FR" | jq -r 'select(.t == "ack" and .seq == 1) | .need_inventory')" "unknown hash: need_inventory"
for s in 2 3 4 5 6; do
	assert_eq "ack" "$(printf '%s\n' "$FR" | jq -r "select(.seq == $s) | .t")" "answer to seq $s"
done
assert_eq null "$(printf '%s\n' "$FR" | jq -r 'select(.t == "ack" and .seq == 3) | .need_inventory')" "known hash: no need_inventory"
assert_eq "probe-host|probe-host.example.org|Debian GNU/Linux 12|{192.0.2.7}|{52:54:00:12:34:56}|h1" \
    "$(pg_sql "SELECT name, fqdn, os, ip, mac, inv_hash FROM devices WHERE id = '$DEV'")" "device row from inventory"
assert_eq "h1|bash" "$(pg_sql "SELECT hash, data->'software'->0->>'name' FROM inventory WHERE device_id = '$DEV'")" "stored inventory"
assert_eq 2 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$DEV' AND agent_event_id IS NOT NULL")" "events stored once"
assert_eq one "$(pg_sql "SELECT text FROM events WHERE device_id = '$DEV' AND agent_event_id = 'e1'")" "the first copy of an event wins"

# The connection dies while its write is in flight: the write still
# commits, nothing is acknowledged on a closed session, nothing crashes.
# (One write, so that both frames are read before the commit.)
EV40=$("$PROBE" --frame-hex '{"t":"events","seq":40,"events":[{"id":"e40","time":1700000000000,"severity":"critical","type":"test","text":"in flight"}]}')
probe "${GOOD[@]}" --send-json "$HELLO" --recv --send-raw-hex "${EV40}00000000"
expect_error "error with a write in flight" bad_frame "empty"
assert_eq "" "$(probe_frames | jq -r 'select(.t == "ack") | .seq')" "no ack after the error"
event_e40_stored() {
	[ "$(pg_sql "SELECT count(*) FROM events WHERE agent_event_id = 'e40'")" = 1 ]
}
wait_for "the in-flight event to commit" 10 event_e40_stored

# One session per device: a second connection replaces the first.
step "one session per device"
"$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 30 "${GOOD[@]}" \
    --send-json "$HELLO" --recv --recv "127.0.0.1:$CANOPYD_AGENT_PORT" \
    >"$TEST_DIR/first.out" 2>>"$TEST_DIR/probe.log" &
FIRST=$!
track_pid "$FIRST"
wait_for "the first session" 20 grep -q '"t":"hello"' "$TEST_DIR/first.out"
probe "${GOOD[@]}" --send-json "$HELLO" --recv \
    --send-json '{"t":"heartbeat","seq":31}' --recv --send-json "$HELLO"
expect_error "second connection of a device" unexpected_message "hello"
assert_eq ack "$(probe_frames | jq -r 'select(.seq == 31) | .t')" "the new session is served"
wait_for "the first connection to be closed" 20 _pid_gone "$FIRST"
_untrack_pid "$FIRST"
_reap "$FIRST"
assert_eq 0 "$STOPPED_RC" "replaced session: probe exit status"
assert_eq CLOSED "$(tail -n 1 "$TEST_DIR/first.out")" "replaced session closed by the server"

# max-agents, applied by a reload: at the limit nobody else is served.
step "max-agents"
canopyd_conf "max-agents 1"
kill -HUP "$CANOPYD_PID"
wait_for "the reload" 10 grep -q "configuration reloaded" "$CANOPYD_LOG"
"$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 30 "${GOOD[@]}" \
    --send-json "$HELLO" --recv --recv "127.0.0.1:$CANOPYD_AGENT_PORT" \
    >"$TEST_DIR/hold.out" 2>>"$TEST_DIR/probe.log" &
HOLD=$!
track_pid "$HOLD"
wait_for "the one allowed session" 20 grep -q '"t":"hello"' "$TEST_DIR/hold.out"
PROBE_RC=0
PROBE_OUT=$("$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 2 \
    --send-json "$HELLO" "127.0.0.1:$CANOPYD_AGENT_PORT" 2>>"$TEST_DIR/probe.log") ||
    PROBE_RC=$?
assert_eq 2 "$PROBE_RC" "over max-agents: probe exit status (timeout)"
assert_not_contains "$PROBE_OUT" '"t":"hello"' "over max-agents"
stop_pid "$HOLD" 10
# Below the limit again: accepting resumes.
probe --send-json "$HELLO" --recv --send-json "$HELLO"
expect_error "after max-agents" unexpected_message "hello"
canopyd_conf
kill -HUP "$CANOPYD_PID"
reloads_are() { [ "$(grep -c "configuration reloaded" "$CANOPYD_LOG")" = "$1" ]; }
wait_for "the second reload" 10 reloads_are 2

# Out of file descriptors: accepting pauses (instead of spinning on
# EMFILE) and resumes by itself once descriptors are free again.
if command -v prlimit >/dev/null 2>&1; then
	step "out of file descriptors"
	NOFILE=$(prlimit --pid "$CANOPYD_PID" --nofile --output SOFT --noheadings | tr -d ' ')
	NFD=$(ls "/proc/$CANOPYD_PID/fd" | wc -l)
	prlimit --pid "$CANOPYD_PID" --nofile="$NFD:$(prlimit --pid "$CANOPYD_PID" --nofile --output HARD --noheadings | tr -d ' ')"
	"$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 30 \
	    --send-json "$HELLO" --recv --send-json "$HELLO" \
	    "127.0.0.1:$CANOPYD_AGENT_PORT" >"$TEST_DIR/emfile.out" \
	    2>>"$TEST_DIR/probe.log" &
	EMF=$!
	track_pid "$EMF"
	wait_for "accept to pause on EMFILE" 10 grep -q "accept: Too many open files; pausing" "$CANOPYD_LOG"
	prlimit --pid "$CANOPYD_PID" --nofile="$NOFILE:$(prlimit --pid "$CANOPYD_PID" --nofile --output HARD --noheadings | tr -d ' ')"
	wait_for "the waiting connection to be served" 20 _pid_gone "$EMF"
	_untrack_pid "$EMF"
	_reap "$EMF"
	PROBE_RC=$STOPPED_RC
	PROBE_OUT=$(cat "$TEST_DIR/emfile.out")
	expect_error "served after EMFILE" unexpected_message "hello"
	canopyd_alive || fail "canopyd died on EMFILE"
fi

# A device deleted meanwhile.
new_csr gone
token_create 1 >/dev/null
probe --send-json "$HELLO" --send-json "$(enroll_json "$(cat "$TEST_DIR/.last-token")" "$TEST_DIR/gone.csr")"
GONE=$(probe_frames | jq -r 'select(.t == "enrolled") | .device_id')
probe_frames | jq -r 'select(.t == "enrolled") | .cert' >"$TEST_DIR/gone.pem"
[ -n "$GONE" ] || fail "second enrolment failed: $PROBE_OUT"
pg_sql "DELETE FROM devices WHERE id = '$GONE'" >/dev/null
probe --cert "$TEST_DIR/gone.pem" --key "$TEST_DIR/gone.key" --send-json "$HELLO"
expect_error "deleted device" unknown_device "$GONE"

# ----------------------------------------------------------- still alive
step "after all that"
canopyd_alive || fail "canopyd died"
assert_eq 200 "$(healthz_status)" "/healthz"
probe "${GOOD[@]}" --send-json "$HELLO" --recv \
    --send-json '{"t":"heartbeat","seq":9}' --recv --send-json "$HELLO"
expect_error "hello inside a session" unexpected_message "hello"
assert_eq ack "$(probe_frames | jq -r 'select(.seq == 9) | .t')" "a good agent is still served"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices")" "devices"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM enrollment_tokens WHERE uses_left < 0")" "token counts"
PERR=$(metric canopy_agent_protocol_errors_total)
[ "${PERR%.*}" -ge 20 ] || fail "canopy_agent_protocol_errors_total is $PERR, expected >= 20"

# The database goes away in the middle of a session: 'retry', never 'ack'.
step "database down"
rm -f "$TEST_DIR/pg-down"
PROBE_RC=0
"$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 60 "${GOOD[@]}" \
    --send-json "$HELLO" --recv --wait-file "$TEST_DIR/pg-down" \
    --send-json '{"t":"heartbeat","seq":21}' --recv \
    --send-json '{"t":"events","seq":22,"events":[{"id":"e9","time":1700000000000,"severity":"error","type":"test","text":"lost?"}]}' --recv \
    --send-json "$HELLO" "127.0.0.1:$CANOPYD_AGENT_PORT" \
    >"$TEST_DIR/probe-down.out" 2>>"$TEST_DIR/probe.log" &
PROBE_PID=$!
track_pid "$PROBE_PID"
wait_for "the session's hello" 20 grep -q '"t":"hello"' "$TEST_DIR/probe-down.out"
pg_stop
touch "$TEST_DIR/pg-down"
wait_for "the probe to finish" 60 _pid_gone "$PROBE_PID"
_untrack_pid "$PROBE_PID"
_reap "$PROBE_PID"
PROBE_RC=$STOPPED_RC
PROBE_OUT=$(cat "$TEST_DIR/probe-down.out")
expect_error "database down" unexpected_message "hello"
for s in 21 22; do
	assert_eq retry "$(probe_frames | jq -r "select(.seq == $s) | .t")" "answer to seq $s with the database down"
	assert_eq 2000 "$(probe_frames | jq -r "select(.seq == $s) | .after_ms")" "after_ms for seq $s"
done
# A new session cannot even be looked up: 'unavailable', not 'unknown_device'.
probe "${GOOD[@]}" --send-json "$HELLO"
expect_error "look-up with the database down" unavailable
pg_restart
wait_for "/healthz 200 after PostgreSQL is back" 60 healthz_is 200
# A worker still holding a broken connection fails one job (the agent is
# told 'unavailable' and comes back later): try until one goes through.
events_acked() {
	probe "${GOOD[@]}" --send-json "$HELLO" --recv \
	    --send-json '{"t":"events","seq":23,"events":[{"id":"e9","time":1700000000000,"severity":"error","type":"test","text":"lost?"}]}' --recv \
	    --send-json "$HELLO"
	[ "$(probe_frames | jq -r 'select(.seq == 23) | .t')" = ack ]
}
wait_for "events acknowledged once the database is back" 30 events_acked
assert_eq 1 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$DEV' AND agent_event_id = 'e9'")" "the retried event is stored"

real_inventory_stored() {
	[ "$(pg_sql "SELECT count(*) FROM devices d JOIN inventory i ON i.device_id = d.id WHERE d.id <> '$DEV' AND d.name <> 'probe'")" = 1 ]
}

if [ -x "$CANOPY_BUILD/canopy-agent" ]; then
	step "canopy-agent enrols after the abuse"
	token_create 1 >/dev/null
	agent_enroll real
	agent_start real
	wait_for "the real agent's inventory" 30 real_inventory_stored
	agent_stop real
fi
# Stopping with a session open closes it; the sanitizer build checks that
# nothing leaks.
"$PROBE" --ca "$CANOPYD_STATE/ca.pem" --timeout 30 "${GOOD[@]}" \
    --send-json "$HELLO" --recv --recv "127.0.0.1:$CANOPYD_AGENT_PORT" \
    >"$TEST_DIR/last.out" 2>>"$TEST_DIR/probe.log" &
LAST=$!
track_pid "$LAST"
wait_for "a session before the stop" 20 grep -q '"t":"hello"' "$TEST_DIR/last.out"
canopyd_stop
wait_for "the session to be closed by the stop" 20 _pid_gone "$LAST"
_untrack_pid "$LAST"
_reap "$LAST"
assert_eq CLOSED "$(tail -n 1 "$TEST_DIR/last.out")" "session at stop"
step "passed"
