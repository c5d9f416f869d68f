#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Bad input on a server link (issue 4): a registered child's certificate in
# the hands of tests/tools/proto-probe, which then sends garbage, a version
# nobody speaks, a sequence number going backwards, a forged origin, an
# object claimed by the wrong owner, a kind that does not flow up, a bad
# registration token.  Each is refused with an error naming the problem,
# nothing of it is applied, and the real child links up again afterwards.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_tree.sh"

need_bin tools/proto-probe
PROBE=$CANOPY_BUILD/tools/proto-probe

tree_server_start top
tree_server_start kid top

kid_up() {
	[ "$(tree_sql top "SELECT state FROM hier_links WHERE name = 'kid'")" = \
	    connected ]
}
wait_for "kid's link to the top" 60 kid_up
tree_sql kid "INSERT INTO devices (vs_id, group_id, name)
    SELECT 0, id, 'kid-dev-' || g FROM groups, generate_series(1, 5) g
    WHERE vs_id = 0 AND kind = 'root'"
five() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_devices")" = 5 ]
}
wait_for "kid's five devices at the top" 30 five

KID=$(tree_sql kid "SELECT uuid FROM hier_self")
TOP=$(tree_sql top "SELECT uuid FROM hier_self")
KID_STATE=$TEST_DIR/srv-kid/state
TOP_CA=$TEST_DIR/srv-top/state/ca.pem
TOP_PORT=${TREE_AGENT[top]}
tree_stop kid
kid_down() {
	[ "$(tree_sql top "SELECT state FROM hier_links WHERE name = 'kid'")" = \
	    disconnected ]
}
wait_for "kid's link down" 30 kid_down
RX=$(tree_sql top "SELECT rx_seq FROM hier_links WHERE name = 'kid'")
BEFORE=$(tree_sql top "SELECT count(*) || ':' || md5(string_agg(oid || name,
    ',' ORDER BY oid)) FROM hier_devices")

hello() {
	printf '{"t":"hello","role":"server","name":"kid","uuid":"%s",' "$KID"
	printf '"level":1,"rx":0,"heartbeat_s":5,"proto_min":%s,' "${1:-1}"
	printf '"proto_max":%s}' "${2:-1}"
}
# A batch of one record; $1 last, $2 the record's JSON (as a string).
batch() {
	jq -cn --argjson last "$1" --arg rec "$2" \
	    '{t: "h_batch", snap: 0, last: $last, recs: [$rec]}'
}
rec() {	# seq kind id origin
	jq -cn --argjson s "$1" --arg k "$2" --arg id "$3" --arg o "$4" \
	    '{s: $s, k: $k, op: "u", id: $id, o: $o, v: 1,
	      d: {name: "evil", vs: "main"}}'
}
probe() {
	"$PROBE" --ca "$TOP_CA" --cert "$KID_STATE/parent.pem" \
	    --key "$KID_STATE/parent.key" --timeout 20 "$@" \
	    "127.0.0.1:$TOP_PORT" 2>&1 || true
}
# Says the hello, waits for the answer, sends $1, prints what came back.
probe_batch() {
	probe --send-json "$(hello)" --recv --send-json "$1"
}
expect_error() {	# output code text
	assert_contains "$1" "\"code\":\"$2\"" "error code for: $4"
	assert_contains "$1" "$3" "error message for: $4"
}

step "garbage after the hello"
out=$(probe --send-json "$(hello)" --recv --send-raw-hex 0000000a0102030405060708090a)
expect_error "$out" bad_message "" "garbage"

step "a protocol version nobody speaks"
out=$(probe --send-json "$(hello 7 9)")
expect_error "$out" unsupported_version "server protocol 7..9" "version 7..9"

step "a sequence number going backwards"
out=$(probe_batch "$(batch "$RX" "$(rec "$RX" device "$KID/x1" "$KID")")")
expect_error "$out" bad_sequence "goes backwards" "last = rx"
out=$(probe_batch "$(jq -cn --argjson l $((RX + 10)) --arg a \
    "$(rec $((RX + 5)) device "$KID/x2" "$KID")" --arg b \
    "$(rec $((RX + 3)) device "$KID/x3" "$KID")" \
    '{t:"h_batch",snap:0,last:$l,recs:[$a,$b]}')")
expect_error "$out" bad_batch "goes backwards" "seq 5 then 3"

step "a forged origin"
FORGED=0b0b0b0b-1111-2222-3333-444444444444
out=$(probe_batch "$(batch $((RX + 1)) \
    "$(rec $((RX + 1)) device "$FORGED/x4" "$FORGED")")")
expect_error "$out" bad_batch "forged origin" "origin not below the link"
out=$(probe_batch "$(batch $((RX + 1)) \
    "$(rec $((RX + 1)) device "$TOP/x5" "$TOP")")")
expect_error "$out" bad_batch "is this server" "origin = the top"

step "an object claimed by the wrong owner"
out=$(probe_batch "$(batch $((RX + 1)) \
    "$(rec $((RX + 1)) device "$TOP/x6" "$KID")")")
expect_error "$out" bad_batch "is owned by $TOP, not by $KID" "wrong owner"

step "a kind that does not flow up"
out=$(probe_batch "$(batch $((RX + 1)) \
    "$(rec $((RX + 1)) policy "$KID/x7" "$KID")")")
expect_error "$out" bad_batch "does not flow up" "a policy from a child"

step "a record that is not JSON"
out=$(probe_batch "$(jq -cn --argjson l $((RX + 1)) \
    '{t:"h_batch",snap:0,last:$l,recs:["{not json"]}')")
expect_error "$out" bad_batch "" "not JSON"

step "a bad registration token"
out=$("$PROBE" --ca "$TOP_CA" --timeout 20 --send-json "$(hello)" \
    --send-json "$(jq -cn --arg u "$KID" \
    '{t:"register",token:"not-a-token",csr:"x",uuid:$u}')" \
    "127.0.0.1:$TOP_PORT" 2>&1 || true)
expect_error "$out" bad_token "unknown, already used or expired" "bad token"

step "nothing of it was applied"
assert_eq "$BEFORE" "$(tree_sql top "SELECT count(*) || ':' ||
    md5(string_agg(oid || name, ',' ORDER BY oid)) FROM hier_devices")" \
    "the top's mirror of kid"
assert_eq "$RX" "$(tree_sql top "SELECT rx_seq FROM hier_links
    WHERE name = 'kid'")" "the top's cursor for kid"
assert_eq "0" "$(tree_sql top "SELECT count(*) FROM hier_devices
    WHERE name = 'evil'")" "records of the bad batches"
assert_contains "$(tree_sql top "SELECT last_error FROM hier_links
    WHERE name = 'kid'")" "bad_" "the link shows its last error"

step "the real kid links up again and its changes flow"
tree_start kid
wait_for "kid's link to the top again" 60 kid_up
tree_sql kid "INSERT INTO devices (vs_id, group_id, name)
    SELECT 0, id, 'kid-dev-6' FROM groups WHERE vs_id = 0 AND kind = 'root'"
six() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_devices")" = 6 ]
}
wait_for "kid's sixth device at the top" 30 six

# The tests of the receiver's queue need it to fill first.  held_probe
# says kid's hello, then sends what its arguments say while the top's
# hier_apply waits for kid's link row, which a transaction of ours holds;
# once everything is sent and the top has read it (its socket's receive
# queue is empty), the row is let go.  The probe runs on (HELD_PROBE) until
# $TEST_DIR/done exists or the top closes; it writes to $HELD_OUT.
HELD_OUT=$TEST_DIR/held-probe.out
held_probe() {
	local f holder
	for f in held sent release done; do
		rm -f "$TEST_DIR/$f"
	done
	# Emptied here: the probe's own redirection may come after the wait
	# below has read the last probe's hello.
	: >"$HELD_OUT"
	"$PROBE" --ca "$TOP_CA" --cert "$KID_STATE/parent.pem" \
	    --key "$KID_STATE/parent.key" --timeout 60 \
	    --send-json "$(hello)" --recv --wait-file "$TEST_DIR/held" "$@" \
	    --touch-file "$TEST_DIR/sent" --wait-file "$TEST_DIR/done" \
	    "127.0.0.1:$TOP_PORT" >"$HELD_OUT" 2>&1 &
	HELD_PROBE=$!
	wait_for "the top's hello" 30 grep -q '"t":"hello"' "$HELD_OUT"
	"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d canopy_top \
	    -v ON_ERROR_STOP=1 -q >"$TEST_DIR/hold.log" 2>&1 <<HOLD &
BEGIN;
SELECT 1 FROM hier_links WHERE name = 'kid' FOR UPDATE;
\! touch $TEST_DIR/held; n=0; while [ ! -e $TEST_DIR/release ] && [ \$n -lt 1200 ]; do sleep 0.05; n=\$((n + 1)); done
COMMIT;
HOLD
	holder=$!
	wait_for "kid's link row held" 30 test -e "$TEST_DIR/held"
	wait_for "everything sent (or the link closed)" 60 _held_sent
	wait_for "the top to read it all" 30 _top_read_all
	touch "$TEST_DIR/release"
	wait "$holder" ||
	    fail "holding kid's link row: $(cat "$TEST_DIR/hold.log")"
}
_held_sent() {
	[ -e "$TEST_DIR/sent" ] || ! kill -0 "$HELD_PROBE" 2>/dev/null
}
_top_read_all() {
	ss -tnH state established "( sport = :$TOP_PORT )" |
	    awk '$1 != 0 { n++ } END { exit n > 0 }'
}
# Lets the probe read what came back until a line matches $1 (or the top
# closed), then ends it; HELD holds what it printed.
held_probe_end() {
	touch "$TEST_DIR/done"
	wait_for "the top's answer ($1)" 30 _held_answered "$1"
	kill "$HELD_PROBE" 2>/dev/null || true
	wait "$HELD_PROBE" 2>/dev/null || true
	HELD=$(cut -c1-300 "$HELD_OUT")
}
_held_answered() {
	grep -q "$1" "$HELD_OUT" || ! kill -0 "$HELD_PROBE" 2>/dev/null
}
top_rx() {
	tree_sql top "SELECT rx_seq FROM hier_links WHERE name = 'kid'"
}

step "batches queued behind another are applied together, acknowledged by the last"
# Not bad input: the receiver's catching up (HIER_APPLY_BYTES), with the
# same tool.  Six batches queue while the first waits; then the first is
# applied alone and the other five together.  The sixth deletes what the
# third made: applied together, the deletion still comes last.  Every
# other record is there, the cursor is the last batch's, and the queued
# ones are acknowledged by one acknowledgement, of the last.
tree_stop kid
wait_for "kid's link down again" 30 kid_down
RX=$(top_rx)
args=()
for i in 1 2 3 4 5 6; do
	if [ "$i" = 6 ]; then
		r=$(jq -cn --argjson s $((RX + i)) --arg id "$KID/m3" \
		    --arg o "$KID" '{s: $s, k: "device", op: "d", id: $id,
		    o: $o, v: $s}')
	else
		r=$(jq -cn --argjson s $((RX + i)) --arg id "$KID/m$i" \
		    --arg o "$KID" --arg n "merged-$i" '{s: $s, k: "device",
		    op: "u", id: $id, o: $o, v: $s, d: {name: $n, vs: "main"}}')
	fi
	args+=(--send-json "$(jq -cn --argjson l $((RX + i)) --arg r "$r" \
	    '{t: "h_batch", snap: 0, last: $l, recs: [$r]}')")
done
held_probe "${args[@]}"
merged() { [ "$(top_rx)" = $((RX + 6)) ]; }
wait_for "the six batches applied" 30 merged
held_probe_end "\"seq\":$((RX + 6))"
out=$HELD
assert_eq "merged-1 merged-2 merged-4 merged-5" "$(tree_sql top "SELECT
    string_agg(name, ' ' ORDER BY name) FROM hier_devices
    WHERE name LIKE 'merged-%'")" "the devices after the six batches"
assert_contains "$out" "\"seq\":$((RX + 6))" "the acknowledgement of the last batch"
assert_eq 2 "$(grep -c '"t":"h_ack"' <<<"$out")" \
    "acknowledgements, the first batch's and the last's: $out"

step "batches applied together stay within HIER_APPLY_BYTES (4 MiB)"
# Six batches of one 900 kB event each queue while the first waits: 4.5 MB
# wait behind it, and one transaction may take four of them only (rows
# written by one transaction share its xmin).
RX=$(top_rx)
head -c 900000 /dev/zero | tr '\0' x >"$TEST_DIR/big.txt"
args=()
for i in 1 2 3 4 5 6; do
	jq -cn --argjson s $((RX + i)) --arg id "$KID/big$i" --arg o "$KID" \
	    --rawfile t "$TEST_DIR/big.txt" '{t: "h_batch", snap: 0, last: $s,
	    recs: [{s: $s, k: "event", op: "u", id: $id, o: $o, v: $s,
	    d: {vs: "main", severity: "warning", type: "big", text: $t}}
	    | tojson]}' >"$TEST_DIR/big-$i.json"
	args+=(--send-json-file "$TEST_DIR/big-$i.json")
done
held_probe "${args[@]}"
big_applied() { [ "$(top_rx)" = $((RX + 6)) ]; }
wait_for "the six big batches applied" 60 big_applied
held_probe_end "\"seq\":$((RX + 6))"
assert_eq 6 "$(tree_sql top "SELECT count(*) FROM hier_events
    WHERE type = 'big' AND length(text) = 900000")" "the big events"
assert_eq "1 1 4" "$(tree_sql top "SELECT string_agg(n::text, ' '
    ORDER BY n) FROM (SELECT count(*) AS n FROM hier_events
    WHERE type = 'big' GROUP BY xmin::text) x")" \
    "big events per transaction: the first, four, the last"

step "more batches than HIER_RX_QUEUE (20) unacknowledged"
# Last, because the batches that are applied move the top's cursor.
RX=$(top_rx)
args=()
for i in $(seq 1 40); do
	args+=(--send-json "$(jq -cn --argjson l $((RX + i)) \
	    '{t:"h_batch",snap:0,last:$l,recs:[]}')")
done
held_probe "${args[@]}"
held_probe_end window_exceeded
out=$HELD
expect_error "$out" window_exceeded "without acknowledgement" \
    "40 batches sent at once"
