#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# lib_tree.sh itself, which the server-tree failure tests stand on: three
# servers in one PostgreSQL cluster (a database each), each child
# registered on its parent with POST /servers/children and configured with
# the parent/parent-token/parent-ca lines; tree_use points lib.sh's api,
# token_create and agent_enroll at one server; tree_kill, tree_stop/
# tree_start and tree_stop_signal act on one server only; everything stops
# at exit, a frozen server too.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_tree.sh"

need_bin canopyd
need_bin canopy-agent

tree_server_start top
tree_server_start mid top
tree_server_start leaf mid
assert_eq "top mid leaf" "$(echo $(tree_names))" "tree_names"

step "each server has its own database, config and API"
for n in top mid leaf; do
	assert_eq 1 "$(tree_sql "$n" "SELECT count(*) FROM admins WHERE name = 'admin'")" "$n's admin"
	assert_eq "canopy_$n" "$(tree_sql "$n" "SELECT current_database()")" "$n's database"
done
tree_use top
api GET /api/v1/servers >/dev/null
assert_status 200 "GET /servers on top"
assert_eq '["mid"]' "$(printf %s "$API_BODY" | jq -c '[.children[].name]')" "top's children"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_links WHERE name = 'leaf'")" "leaf is not top's child"
tree_use mid
api GET /api/v1/servers >/dev/null
assert_eq '["leaf"]' "$(printf %s "$API_BODY" | jq -c '[.children[].name]')" "mid's children"
assert_eq "parent 127.0.0.1:${TREE_AGENT[top]}" "$(grep '^parent ' "$CANOPYD_CONF")" "mid's parent line"
assert_match "$(grep '^parent-token ' "$CANOPYD_CONF")" '^parent-token "[^"]{32,}"$' "mid's parent-token line"
assert_eq "$(tr -d '\n' <"$(_tree_dir top)/state/ca.pem")" \
    "$(tr -d '\n' <"$(_tree_dir mid)/parent-ca.pem")" "mid's parent-ca is top's CA"

step "lib.sh's helpers act on the server tree_use chose"
token_create >/dev/null
agent_enroll leaf-pc1
assert_eq leaf-pc1 "$(tree_sql mid "SELECT name FROM devices")" "the agent enrolled into mid"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM devices")" "top's devices"
agent_start leaf-pc1

step "kill, stop, start and freeze one server"
PID_TOP=${TREE_PID[top]}
tree_kill mid
! tree_alive mid || fail "mid alive after tree_kill"
tree_alive top || fail "top died with mid"
tree_start mid
tree_alive mid || fail "mid did not start again"
api GET /api/v1/devices >/dev/null
assert_status 200 "mid's API after the restart (the old session still works)"
assert_eq '["leaf-pc1"]' "$(printf %s "$API_BODY" | jq -c '[.devices[].name]')" "mid's devices"
tree_stop leaf
tree_start leaf
tree_stop_signal mid STOP
assert_eq T "$(awk '{ print $3 }' "/proc/${TREE_PID[mid]}/stat")" "mid frozen"
tree_stop_signal mid CONT
tree_use top
assert_eq "$PID_TOP" "$CANOPYD_PID" "top's pid after acting on the others"
api GET /api/v1/servers >/dev/null
assert_status 200 "top's API"
# Left frozen: the exit must still stop it.
tree_stop_signal leaf STOP
step "done"
