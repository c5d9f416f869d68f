#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A child the parent dials (issue 4, DMZ): the child's configuration names
# no parent address ("parent accept"), the parent's names the child
# ("child-dial").  Registration happens over the parent's connection; after
# it both directions work as on any link, and the link comes back after a
# restart of either side.  A sibling's certificate (issued by the same CA)
# cannot pose as the parent.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_tree.sh"

need_bin tools/proto-probe
tree_server_start top
tree_server_start kid top

step "register the DMZ child on the top"
tree_use top
api POST /api/v1/servers/children '{"name":"dmz"}' >/dev/null
assert_status 201 "POST /servers/children dmz: $API_BODY"
mkdir -p "$TEST_DIR/dmz-conf"
json .ca_pem >"$TEST_DIR/dmz-conf/parent-ca.pem"
TREE_EXTRA_CONF=("parent accept" "parent-token \"$(json .token)\""
    "parent-ca $TEST_DIR/dmz-conf/parent-ca.pem")
tree_server_start dmz
TREE_EXTRA_CONF=()

step "the top dials it"
tree_stop top
echo "child-dial dmz 127.0.0.1:${TREE_AGENT[dmz]}" \
    >>"$TEST_DIR/srv-top/canopyd.conf"
tree_start top

dmz_up() {
	[ "$(tree_sql top "SELECT state FROM hier_links WHERE name = 'dmz'")" = \
	    connected ] &&
	[ "$(tree_sql dmz "SELECT state FROM hier_links
	    WHERE role = 'parent'")" = connected ]
}
wait_for "the DMZ link up on both sides" 60 dmz_up
assert_eq "1" "$(tree_sql dmz "SELECT level FROM hier_self")" "dmz's level"
[ -f "$TEST_DIR/srv-dmz/state/parent.pem" ] ||
    fail "the DMZ child keeps no registration certificate"

step "records flow up and down"
tree_sql dmz "INSERT INTO devices (vs_id, group_id, name)
    SELECT 0, id, 'dmz-dev-' || g FROM groups, generate_series(1, 3) g
    WHERE vs_id = 0 AND kind = 'root'"
dmz_devices() {
	[ "$(tree_sql top "SELECT string_agg(name, ',' ORDER BY name)
	    FROM hier_devices")" = "dmz-dev-1,dmz-dev-2,dmz-dev-3" ]
}
wait_for "the DMZ child's devices at the top" 30 dmz_devices
tree_use top
api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
api POST /api/v1/policies '{"group":"/Managed devices","product":"canopy-agent",
    "name":"edge","settings":{"log_level":{"value":"debug","locked":true}}}' \
    >/dev/null
assert_status 201 "POST /policies: $API_BODY"
dmz_policy() {
	[ "$(tree_sql dmz "SELECT name FROM hier_policies")" = edge ]
}
wait_for "the top's policy at the DMZ child" 30 dmz_policy

step "both sides restart; the link comes back"
tree_stop dmz
tree_start dmz
wait_for "the DMZ link up again after the child restarted" 90 dmz_up
tree_stop top
tree_start top
wait_for "the DMZ link up again after the parent restarted" 90 dmz_up
tree_sql dmz "INSERT INTO devices (vs_id, group_id, name)
    SELECT 0, id, 'dmz-dev-4' FROM groups WHERE vs_id = 0 AND kind = 'root'"
four() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_devices
	    WHERE name LIKE 'dmz-dev-%'")" = 4 ]
}
wait_for "a new device after the restarts" 30 four

step "a sibling's certificate cannot pose as the parent"
KID_STATE=$TEST_DIR/srv-kid/state
out=$("$CANOPY_BUILD/tools/proto-probe" --ca "$TEST_DIR/srv-dmz/state/ca.pem" \
    --cert "$KID_STATE/parent.pem" --key "$KID_STATE/parent.key" \
    --timeout 20 --send-json "$(jq -cn --arg u \
    "$(tree_sql kid "SELECT uuid FROM hier_self")" \
    '{t:"hello",role:"server",name:"top",uuid:$u,level:0,rx:0,
      heartbeat_s:5,proto_min:1,proto_max:1}')" \
    "127.0.0.1:${TREE_AGENT[dmz]}" 2>&1 || true)
assert_contains "$out" '"code":"unknown_server"' "a sibling posing as parent"
wait_for "the real link still up" 30 dmz_up
