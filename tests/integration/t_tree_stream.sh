#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The server tree's streams under failure (issue 4): a tree of three levels,
# 1 + 2 + 2 (top; mid-a, mid-b; leaf-a below mid-a, leaf-b below mid-b),
# with a real agent at each leaf.  While 10,000 changes flow up from leaf-a
# and a locked policy flows down from the top:
#   1. mid-a is killed with SIGKILL at random moments and restarted;
#   2. mid-a is frozen (SIGSTOP) for longer than a link takes to be declared
#      dead, then thawed;
#   3. PostgreSQL (every server's, the parent's included) restarts.
# After each phase the top holds exactly leaf-a's devices and events
# (counts and a checksum of the content: nothing missing, nothing twice),
# and both leaves hold the top's policy, and their agents got it.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_tree.sh"

CHANGES=10000		# events per phase, split in batches
BATCH=50

tree_server_start top
tree_server_start mid-a top
tree_server_start mid-b top
tree_server_start leaf-a mid-a
tree_server_start leaf-b mid-b

links_up() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_links WHERE role = 'child'
	    AND state = 'connected'")" = 2 ] &&
	[ "$(tree_sql mid-a "SELECT count(*) FROM hier_links
	    WHERE state = 'connected'")" = 2 ] &&
	[ "$(tree_sql mid-b "SELECT count(*) FROM hier_links
	    WHERE state = 'connected'")" = 2 ] &&
	[ "$(tree_sql leaf-a "SELECT count(*) FROM hier_links
	    WHERE state = 'connected'")" = 1 ] &&
	[ "$(tree_sql leaf-b "SELECT count(*) FROM hier_links
	    WHERE state = 'connected'")" = 1 ]
}
wait_for "every link of the tree to be connected" 60 links_up

LEAF_A=$(tree_sql leaf-a "SELECT uuid FROM hier_self")
MID_A=$(tree_sql mid-a "SELECT uuid FROM hier_self")

step "the top sees the whole tree"
servers_known() {
	[ "$(tree_sql top "SELECT string_agg(name || ':' || level, ','
	    ORDER BY name) FROM hier_servers")" = \
	    "leaf-a:2,leaf-b:2,mid-a:1,mid-b:1" ]
}
wait_for "the top to know all four servers below it" 30 servers_known
assert_eq "1" "$(tree_sql top "SELECT level FROM hier_servers
    WHERE name = 'mid-a'")" "mid-a's level as the top sees it"
assert_eq "2" "$(tree_sql top "SELECT level FROM hier_servers
    WHERE name = 'leaf-a'")" "leaf-a's level as the top sees it"
assert_eq "$MID_A" "$(tree_sql top "SELECT parent_uuid FROM hier_servers
    WHERE name = 'leaf-a'")" "leaf-a's parent as the top sees it"

step "a virtual server's devices flow up inside its server's stream"
tree_use leaf-a
api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
api POST /api/v1/vservers '{"name":"shop"}' >/dev/null
assert_status 201 "POST /vservers at leaf-a: $API_BODY"
tree_sql leaf-a "INSERT INTO devices (vs_id, group_id, name)
    SELECT v.id, g.id, 'shop-till-1' FROM vservers v JOIN groups g
    ON g.vs_id = v.id AND g.kind = 'root' WHERE v.name = 'shop'"
shop_at_top() {
	[ "$(tree_sql top "SELECT vs || ':' || name FROM hier_devices
	    WHERE origin = '$LEAF_A'")" = "shop:shop-till-1" ]
}
wait_for "the tenant's device at the top, with its virtual server" 30 \
    shop_at_top

step "a real agent at each leaf"
for leaf in leaf-a leaf-b; do
	tree_use "$leaf"
	api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
	token_create 1 >/dev/null
	agent_enroll "agent-$leaf"
	agent_start "agent-$leaf"
done

# Checksums of what leaf-a owns, at leaf-a and as mirrored at $1.
leaf_sum() {
	tree_sql leaf-a "SELECT count(*) || ':' || coalesce(md5(string_agg(
	    '$LEAF_A/' || id || '|' || severity || '|' || type || '|' || text,
	    ',' ORDER BY '$LEAF_A/' || id)), '-') FROM events
	    WHERE severity IN ('warning', 'error', 'critical')"
}
mirror_sum() {
	tree_sql "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(
	    oid || '|' || severity || '|' || type || '|' || text, ','
	    ORDER BY oid)), '-') FROM hier_events WHERE origin = '$LEAF_A'"
}
leaf_dev_sum() {
	tree_sql leaf-a "SELECT count(*) || ':' || coalesce(md5(string_agg(
	    '$LEAF_A/' || d.id || '|' || d.name || '|' || v.name, ','
	    ORDER BY '$LEAF_A/' || d.id)), '-') FROM devices d
	    JOIN vservers v ON v.id = d.vs_id"
}
mirror_dev_sum() {
	tree_sql "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(
	    oid || '|' || name || '|' || vs, ',' ORDER BY oid)), '-')
	    FROM hier_devices WHERE origin = '$LEAF_A'"
}
top_has_leaf() {
	local want
	want=$(leaf_sum)
	[ "$(mirror_sum top)" = "$want" ] && [ "$(mirror_sum mid-a)" = "$want" ] &&
	    [ "$(leaf_dev_sum)" = "$(mirror_dev_sum top)" ]
}
# No object is mirrored twice, under any id: the oids are keys, and each
# leaf event appears once.
no_duplicates() {
	assert_eq "0" "$(tree_sql top "SELECT count(*) FROM (SELECT text
	    FROM hier_events WHERE origin = '$LEAF_A' GROUP BY text
	    HAVING count(*) > 1) x")" "events mirrored twice at the top"
}

# Writes $CHANGES events at leaf-a, $BATCH per transaction, in the
# background (the changes flow while the test breaks things).
GEN_PID=""
generate() {
	local phase=$1
	(
		i=0 tries=0
		while [ $i -lt $((CHANGES / BATCH)) ]; do
			# Idempotent, so a batch is retried while PostgreSQL
			# restarts (paced, and bounded).
			if tree_sql leaf-a "INSERT INTO events (vs_id,
			    severity, type, time, text) SELECT 0, 'warning',
			    'load', now(), '$phase-$i-' || g
			    FROM generate_series(1, $BATCH) g
			    WHERE NOT EXISTS (SELECT 1 FROM events
			    WHERE text = '$phase-$i-1')"; then
				i=$((i + 1))
				tries=0
			else
				tries=$((tries + 1))
				[ $tries -lt 300 ] || exit 1
				sleep 0.2
			fi
		done
	) >>"$TEST_DIR/generator.log" 2>&1 &
	GEN_PID=$!
	track_pid "$GEN_PID"
}
generator_done() {
	! _pid_running "$GEN_PID"
}
top_events_at_least() {
	[ "$(tree_sql top "SELECT count(*) FROM hier_events
	    WHERE origin = '$LEAF_A'")" -ge "$1" ]
}

step "a locked policy at the top flows down"
tree_use top
api_login "$TREE_ADMIN_USER" "$TREE_ADMIN_PASS"
api POST /api/v1/policies '{"group":"/Managed devices","product":"canopy-agent",
    "name":"corporate","settings":{"inventory_interval_s":{"value":3600,"locked":true},
    "motd":{"value":"phase0","locked":false}}}' >/dev/null
assert_status 201 "POST /policies at the top: $API_BODY"
POLICY=$(json .id)

leaves_have_policy() {
	local leaf want=$1
	for leaf in leaf-a leaf-b; do
		[ "$(tree_sql "$leaf" "SELECT settings -> 'motd' ->> 'value'
		    FROM hier_policies WHERE server = 'top'")" = "$want" ] ||
		    return 1
		# The leaf's agent got it: the policy it acknowledged is the
		# one the leaf computes now.
		[ "$(tree_sql "$leaf" "SELECT count(*) FROM devices
		    WHERE policy_hash IS NOT NULL AND policy_hash = (SELECT
		    policy_hash FROM devices ORDER BY name LIMIT 1)")" -ge 1 ] ||
		    return 1
		grep -q "\"$want\"" "$(agent_dir "agent-$leaf")"/policy*.json \
		    2>/dev/null || return 1
	done
}
wait_for "the top's policy at both leaves and their agents" 60 \
    leaves_have_policy phase0

# ------------------------------------------------------------- phase 1
step "phase 1: SIGKILL the middle server at random moments"
generate p1
api PUT "/api/v1/policies/$POLICY" '{"settings":{"inventory_interval_s":{
    "value":3600,"locked":true},"motd":{"value":"phase1","locked":false}}}' >/dev/null
assert_status 200 "PUT /policies at the top: $API_BODY"
for k in 1 2 3; do
	at=$(( (RANDOM % 2500) + (k - 1) * 2500 ))
	wait_for "the top to have $at of phase 1's events" 90 \
	    top_events_at_least "$at"
	step "kill -9 mid-a with $at events at the top"
	tree_kill mid-a
	tree_start mid-a
done
wait_for "the generator to finish" 120 generator_done
wait_for "the top to hold exactly leaf-a's events and devices" 120 top_has_leaf
no_duplicates
wait_for "the new policy at both leaves and their agents" 60 \
    leaves_have_policy phase1

# ------------------------------------------------------------- phase 2
step "phase 2: a partition longer than the link's dead time"
generate p2
tree_use top
api PUT "/api/v1/policies/$POLICY" '{"settings":{"inventory_interval_s":{
    "value":3600,"locked":true},"motd":{"value":"phase2","locked":false}}}' >/dev/null
assert_status 200 "PUT /policies at the top: $API_BODY"
tree_stop_signal mid-a STOP
link_down_at_top() {
	[ "$(tree_sql top "SELECT state FROM hier_links
	    WHERE name = 'mid-a'")" = disconnected ]
}
wait_for "the top to see mid-a's link go down" 60 link_down_at_top
tree_stop_signal mid-a CONT
wait_for "the generator to finish" 120 generator_done
wait_for "every link connected again" 90 links_up
wait_for "the top to hold exactly leaf-a's events and devices" 120 top_has_leaf
no_duplicates
wait_for "the new policy at both leaves and their agents" 60 \
    leaves_have_policy phase2

# ------------------------------------------------------------- phase 3
step "phase 3: PostgreSQL restarts during the stream"
generate p3
tree_use top
at=$(( RANDOM % 3000 + 20000 ))
wait_for "the top to have some of phase 3's events" 90 \
    top_events_at_least "$at"
pg_stop
pg_restart
api PUT "/api/v1/policies/$POLICY" '{"settings":{"inventory_interval_s":{
    "value":3600,"locked":true},"motd":{"value":"phase3","locked":false}}}' >/dev/null ||
    true
policy_put() {
	api PUT "/api/v1/policies/$POLICY" '{"settings":{
	    "inventory_interval_s":{"value":3600,"locked":true},"motd":{"value":"phase3",
	    "locked":false}}}' >/dev/null
	[ "$API_STATUS" = 200 ]
}
wait_for "the top's API to take the policy change" 60 policy_put
wait_for "the generator to finish" 120 generator_done
wait_for "every link connected again" 90 links_up
wait_for "the top to hold exactly leaf-a's events and devices" 120 top_has_leaf
no_duplicates
wait_for "the new policy at both leaves and their agents" 60 \
    leaves_have_policy phase3
assert_eq "$((3 * CHANGES))" "$(tree_sql top "SELECT count(*) FROM hier_events
    WHERE origin = '$LEAF_A' AND type = 'load'")" "load events at the top"

step "the outbox is compacted once acknowledged"
compacted() {
	[ "$(tree_sql leaf-a "SELECT count(*) FROM hier_changes")" -lt 100 ]
}
wait_for "leaf-a's outbox to be compacted" 60 compacted

step "a task at the top reaches the leaves' agents; their results come back up"
# Tasks from above run over each server's Managed devices.
for leaf in leaf-a leaf-b; do
	tree_use "$leaf"
	id=$(tree_sql "$leaf" "SELECT id FROM devices WHERE name = 'agent-$leaf'")
	api POST "/api/v1/devices/$id/move" '{"group":"/Managed devices"}' \
	    >/dev/null
	assert_status 200 "moving agent-$leaf: $API_BODY"
done
tree_use top
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Managed devices"}' \
    >/dev/null
assert_status 201 "POST /tasks at the top: $API_BODY"
TASK=$(json .id)
leaf_results_done() {
	api GET "/api/v1/tasks/$TASK" >/dev/null
	[ "$API_STATUS" = 200 ] || return 1
	[ "$(json '[.results[] | select(.state == "done") | .device_name]
	    | sort | join(",")')" = "agent-leaf-a,agent-leaf-b" ]
}
wait_for "both leaf agents' results at the top" 90 leaf_results_done
assert_eq "leaf-a" "$(json '.results[] | select(.device_name ==
    "agent-leaf-a") | .server')" "the server of agent-leaf-a's result"
