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

step "batches queued behind another are applied together, acknowledged by the last"
# Not bad input: the receiver's catching up (HIER_APPLY_BYTES), with the
# same tool.  Six batches at once: the first is applied alone, the others
# queue behind it and are applied in fewer transactions; every record is
# there, the cursor is the last batch's, and that one is acknowledged.
tree_stop kid
wait_for "kid's link down again" 30 kid_down
RX=$(tree_sql top "SELECT rx_seq FROM hier_links WHERE name = 'kid'")
args=(--send-json "$(hello)" --recv)
for i in 1 2 3 4 5 6; do
	args+=(--send-json "$(jq -cn --argjson l $((RX + i)) \
	    --arg r "$(jq -cn --argjson s $((RX + i)) --arg id "$KID/m$i" \
	    --arg o "$KID" --arg n "merged-$i" '{s: $s, k: "device", op: "u",
	    id: $id, o: $o, v: $s, d: {name: $n, vs: "main"}}')" \
	    '{t: "h_batch", snap: 0, last: $l, recs: [$r]}')")
done
args+=(--wait-file "$TEST_DIR/merged.done")
merged() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_devices
	    WHERE name LIKE 'merged-%'")" = 6 ] &&
	    [ "$(tree_sql top "SELECT rx_seq FROM hier_links
	    WHERE name = 'kid'")" = $((RX + 6)) ]
}
( wait_for "the six batches applied" 30 merged; touch "$TEST_DIR/merged.done" ) &
# What came back is printed until the probe's timeout: the acknowledgements.
out=$("$PROBE" --ca "$TOP_CA" --cert "$KID_STATE/parent.pem" \
    --key "$KID_STATE/parent.key" --timeout 10 "${args[@]}" \
    "127.0.0.1:$TOP_PORT" 2>&1 || true)
wait $! || fail "the six batches were not all applied: $out"
assert_contains "$out" "\"seq\":$((RX + 6))" "the acknowledgement of the last batch"
acks=$(grep -o '"t":"h_ack"' <<<"$out" | wc -l)
[ "$acks" -ge 1 ] && [ "$acks" -le 6 ] ||
    fail "$acks acknowledgements for six batches: $out"

step "more batches than HIER_RX_QUEUE (20) unacknowledged"
# Last, because the batches that are applied move the top's cursor.
RX=$(tree_sql top "SELECT rx_seq FROM hier_links WHERE name = 'kid'")
args=(--send-json "$(hello)" --recv)
for i in $(seq 1 40); do
	args+=(--send-json "$(jq -cn --argjson l $((RX + i)) \
	    '{t:"h_batch",snap:0,last:$l,recs:[]}')")
done
out=$(probe "${args[@]}")
expect_error "$out" window_exceeded "without acknowledgement" \
    "40 batches sent at once"
