#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Virtual servers and tenant isolation: main and two tenants A and B, each
# with enrolment tokens and real agents; a tenant's administrator sees only
# that tenant (the others' objects are 404 and absent from lists and
# counts); an administrator of main acts in a tenant with ?vs=; only such an
# administrator manages virtual servers; deletion with and without force.
# Row-level security is checked directly: canopyd's own (non-superuser)
# role, with no WHERE clause, sees only the tenant named in canopy.vs_id.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopy-agent
need_bin canopyctl
# Every statement is logged, so that the test sees the API's connections
# switch to the caller's tenant and back.
CANOPY_PG_OPTS="${CANOPY_PG_OPTS--c fsync=off} -c log_statement=all"
pg_start
canopyd_start

step "canopyd's role is not a superuser (RLS would not hold)"
assert_eq f "$(pg_sql_as_canopy "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")" \
    "the canopy role is superuser or bypasses RLS"
assert_eq "canopy" "$(pg_sql "SELECT usename FROM pg_stat_activity WHERE application_name = 'canopyd' LIMIT 1")" \
    "the role canopyd connects as"

PW='tenant-test-pw-1'
admin_create root "$PW"
api_login
ROOT_TOK=$API_TOKEN

# add_admin NAME VS [ROLE]
add_admin() {
	printf '%s\n' "$PW" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
	    admin-add "$1" --vs "$2" --role "${3:-administrator}" \
	    >>"$TEST_DIR/admin-add.log" 2>&1 ||
	    fail "admin-add $1 --vs $2: $(tail -n 5 "$TEST_DIR/admin-add.log")"
}
as() { API_TOKEN=$1; }

step "create virtual servers"
api POST /api/v1/vservers '{"name":"A"}' >/dev/null
assert_status 201 "POST /vservers A"
A_ID=$(json .id)
assert_eq A "$(json .name)" "created name"
[ "$A_ID" -ge 1 ] || fail "vserver id $A_ID: expected >= 1"
api POST /api/v1/vservers '{"name":"B"}' >/dev/null
assert_status 201 "POST /vservers B"
B_ID=$(json .id)
assert_ne "$A_ID" "$B_ID" "the ids of A and B"
api POST /api/v1/vservers '{"name":"A"}' >/dev/null
assert_status 409 "POST /vservers A again"
assert_error_body
api POST /api/v1/vservers '{"name":"main"}' >/dev/null
assert_status 409 "POST /vservers main"
for bad in '{"name":""}' '{"name":"a b"}' '{"name":"x/y"}' '{}' '{"name":7}' \
    "{\"name\":\"$(printf 'x%.0s' $(seq 64))\"}" '{"name":"A","x":1}' 'nope'; do
	api POST /api/v1/vservers "$bad" >/dev/null
	assert_status 400 "POST /vservers $bad"
	assert_error_body
done
api POST /api/v1/vservers '{}' >/dev/null
assert_contains "$(json .error.message)" "name" "the 400 message names the field"
assert_eq 2 "$(pg_sql "SELECT count(*) FROM groups WHERE vs_id = $A_ID AND kind IN ('root', 'unassigned') AND parent IS NULL")" \
    "A's root group and unassigned pool"
assert_eq 2 "$(pg_sql "SELECT count(*) FROM groups WHERE vs_id = $B_ID")" "B's groups"

api GET /api/v1/vservers >/dev/null
assert_status 200 "GET /vservers"
assert_eq "main A B" "$(json '[.vservers[].name] | join(" ")')" "the list of virtual servers"
printf '%s' "$API_BODY" | jq -e '.vservers | all(has("id") and has("name") and
    has("devices") and has("created"))' >/dev/null ||
    fail "GET /vservers entries lack fields: $API_BODY"

step "tenant administrators (canopyd admin-add --vs) and a main operator"
add_admin alice A
add_admin bob B
add_admin oper main operator
printf '%s\n' "$PW" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
    admin-add nobody --vs nosuch >/dev/null 2>&1 &&
    fail "admin-add --vs of a virtual server that does not exist succeeded"
api_login 'A\alice' "$PW"
ALICE_TOK=$API_TOKEN
assert_eq A "$(json .vs)" "alice's login: vs"
# The JSON login names the virtual server in "vs".
_api_curl none POST /api/v1/login "{\"user\":\"bob\",\"password\":\"$PW\",\"vs\":\"B\"}" >/dev/null
assert_status 200 "login bob with vs B"
BOB_TOK=$(json .token)
api_login oper "$PW"
OPER_TOK=$API_TOKEN
# alice of main does not exist: the tenant's account is not main's.
_api_curl none POST /api/v1/login "{\"user\":\"alice\",\"password\":\"$PW\"}" >/dev/null
assert_status 401 "alice logging in to main"
as "$ALICE_TOK"
api GET /api/v1/whoami >/dev/null
assert_eq A "$(json .vs)" "alice's whoami"

step "enrolment tokens in main, in A (by root with ?vs=A and by alice) and in B"
as "$ROOT_TOK"
TOK_MAIN=$(token_create 1)
api POST "/api/v1/enrollment-tokens?vs=A" '{"uses":1}' >/dev/null
assert_status 201 "root: POST /enrollment-tokens?vs=A"
TOK_A1=$(json .token)
as "$ALICE_TOK"
api POST /api/v1/enrollment-tokens '{"uses":1}' >/dev/null
assert_status 201 "alice: POST /enrollment-tokens"
TOK_A2=$(json .token)
as "$BOB_TOK"
api POST /api/v1/enrollment-tokens '{"uses":1}' >/dev/null
assert_status 201 "bob: POST /enrollment-tokens"
TOK_B1=$(json .token)
assert_eq 2 "$(pg_sql "SELECT count(*) FROM enrollment_tokens WHERE vs_id = $A_ID")" "A's tokens"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM enrollment_tokens WHERE vs_id = $B_ID")" "B's tokens"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM enrollment_tokens WHERE vs_id = 0")" "main's tokens"

step "a tenant cannot name another tenant's group"
B_POOL=$(pg_sql "SELECT id FROM groups WHERE vs_id = $B_ID AND kind = 'unassigned'")
as "$ALICE_TOK"
api POST /api/v1/enrollment-tokens "{\"group\":\"$B_POOL\"}" >/dev/null
assert_status 404 "alice: token for B's group"
api POST /api/v1/enrollment-tokens '{"group":"/Managed devices"}' >/dev/null
assert_status 201 "alice: token for A's own root by path"

step "agents enrol into their token's virtual server"
agent_enroll m1 "$TOK_MAIN"
agent_enroll a1 "$TOK_A1"
agent_enroll a2 "$TOK_A2"
agent_enroll b1 "$TOK_B1"
for a in m1 a1 a2 b1; do
	agent_start "$a"
done
wait_for "4 agents connected" 60 metric_is "$AGENTS_METRIC" 4
assert_eq 2 "$(pg_sql "SELECT count(*) FROM devices d JOIN groups g ON g.id = d.group_id WHERE d.vs_id = $A_ID AND g.vs_id = $A_ID AND g.kind = 'unassigned'")" \
    "A's devices, in A's unassigned pool"
assert_eq "b1" "$(pg_sql "SELECT name FROM devices WHERE vs_id = $B_ID")" "B's device"
assert_eq "m1" "$(pg_sql "SELECT name FROM devices WHERE vs_id = 0")" "main's device"

as "$ROOT_TOK"
api GET /api/v1/vservers >/dev/null
assert_eq "main:1 A:2 B:1" "$(json '[.vservers[] | "\(.name):\(.devices)"] | join(" ")')" \
    "device counts in GET /vservers"

step "each sees only its own devices"
# devs TOKEN [QUERY]: prints the sorted device names
devs() {
	as "$1"
	api GET "/api/v1/devices${2:-}" >/dev/null
	assert_status 200 "GET /devices${2:-}"
	json '[.devices[].name] | sort | join(" ")'
}
assert_eq "a1 a2" "$(devs "$ALICE_TOK")" "alice's devices"
assert_eq "b1" "$(devs "$BOB_TOK")" "bob's devices"
assert_eq "m1" "$(devs "$ROOT_TOK")" "root's devices in main"
assert_eq "a1 a2" "$(devs "$ROOT_TOK" '?vs=A')" "root's devices with ?vs=A"
assert_eq "b1" "$(devs "$ROOT_TOK" '?vs=B')" "root's devices with ?vs=B"
assert_eq "m1" "$(devs "$OPER_TOK")" "main operator's devices"
B1=$(pg_sql "SELECT id FROM devices WHERE name = 'b1'")
A1=$(pg_sql "SELECT id FROM devices WHERE name = 'a1'")
M1=$(pg_sql "SELECT id FROM devices WHERE name = 'm1'")
as "$ALICE_TOK"
api GET "/api/v1/devices/$B1" >/dev/null
assert_status 404 "alice: GET B's device"
api GET "/api/v1/devices/$M1" >/dev/null
assert_status 404 "alice: GET main's device"
api POST "/api/v1/devices/$B1/sync" >/dev/null
assert_status 404 "alice: sync B's device"
api GET "/api/v1/devices/$A1" >/dev/null
assert_status 200 "alice: GET A's device"
assert_eq A "$(json .vs)" "A's device: vs"
as "$ROOT_TOK"
api GET "/api/v1/devices/$A1" >/dev/null
assert_status 404 "root in main: GET A's device"
api GET "/api/v1/devices/$A1?vs=A" >/dev/null
assert_status 200 "root with ?vs=A: GET A's device"
api GET "/api/v1/devices?vs=nosuch" >/dev/null
assert_status 404 "root with ?vs of no virtual server"

step "API requests run in the caller's tenant (row-level security)"
# switches VALUE: how often a connection was set to canopy.vs_id = VALUE
switches() {
	grep -A1 -F "set_config('canopy.vs_id', \$1, false)" "$TEST_DIR/postgres.log" |
	    grep -c -F "parameters: \$1 = '$1'" || true
}
[ "$(switches "$A_ID")" -gt 0 ] || fail "no API connection was narrowed to A ($A_ID)"
[ "$(switches "$B_ID")" -gt 0 ] || fail "no API connection was narrowed to B ($B_ID)"
[ "$(switches system)" -gt "$(switches "$A_ID")" ] ||
    fail "API connections were not put back in system mode"

step "groups are per tenant"
as "$ALICE_TOK"
api GET /api/v1/groups >/dev/null
assert_status 200 "alice: GET /groups"
a_groups=$(json '[.groups[].id | tostring] | sort | join(" ")')
assert_eq "$(pg_sql "SELECT string_agg(id::text, ' ' ORDER BY id::text) FROM groups WHERE vs_id = $A_ID")" \
    "$a_groups" "alice's groups are A's"
assert_not_contains " $a_groups " " $B_POOL " "alice's groups"

step "every other resource is per tenant: B's objects are 404 to alice"
# made TOKEN METHOD PATH JSON: creates; prints the new id
made() {
	as "$1"
	api "$2" "$3" "$4" >/dev/null
	[ "$API_STATUS" = 201 ] || fail "$2 $3 $4: expected 201, got $API_STATUS: $API_BODY"
	json .id
}
# hidden PATH ID LISTKEY [noget]: alice gets 404 for PATH/ID, and ID is
# not in alice's GET PATH (under LISTKEY)
hidden() {
	as "$ALICE_TOK"
	if [ "${4:-}" != noget ]; then
		api GET "/api/v1$1/$2" >/dev/null
		assert_status 404 "alice: GET $1/$2 (B's)"
	fi
	api DELETE "/api/v1$1/$2" >/dev/null
	assert_status 404 "alice: DELETE $1/$2 (B's)"
	api GET "/api/v1$1" >/dev/null
	assert_status 200 "alice: GET $1"
	printf '%s' "$API_BODY" | jq -e --arg id "$2" --arg k "$3" \
	    '[.[$k][] | .id | tostring] | index($id) == null' >/dev/null ||
	    fail "alice's GET $1 lists B's $2: $API_BODY"
}
B_GROUP=$(made "$BOB_TOK" POST /api/v1/groups '{"path":"/Managed devices/Berlin"}')
A_GROUP=$(made "$ALICE_TOK" POST /api/v1/groups '{"path":"/Managed devices/Berlin"}')
assert_ne "$A_GROUP" "$B_GROUP" "A's and B's Berlin"
as "$ALICE_TOK"
api GET "/api/v1/groups/$B_GROUP" >/dev/null
assert_status 404 "alice: GET B's group"
api PATCH "/api/v1/groups/$B_GROUP" '{"name":"Hamburg"}' >/dev/null
assert_status 404 "alice: PATCH B's group"
api DELETE "/api/v1/groups/$B_GROUP" >/dev/null
assert_status 404 "alice: DELETE B's group"
api POST "/api/v1/devices/$A1/move" "{\"group\":\"$B_GROUP\"}" >/dev/null
assert_status 404 "alice: move A's device into B's group"
api POST "/api/v1/devices/$B1/move" "{\"group\":\"$A_GROUP\"}" >/dev/null
assert_status 404 "alice: move B's device"
api GET /api/v1/groups >/dev/null
assert_not_contains "$(json '[.groups[].id | tostring] | join(" ")')" "$B_GROUP" "alice's groups"
assert_eq "$B_GROUP" "$(pg_sql "SELECT id FROM groups WHERE vs_id = $B_ID AND name = 'Berlin'")" "B's Berlin untouched"

B_POL=$(made "$BOB_TOK" POST /api/v1/policies '{"group":"/Managed devices","product":"canopy-agent","name":"bp","settings":{}}')
hidden /policies "$B_POL" policies
as "$ALICE_TOK"
api PUT "/api/v1/policies/$B_POL" '{"settings":{}}' >/dev/null
assert_status 404 "alice: PUT B's policy"
api GET "/api/v1/devices/$B1/effective-policy" >/dev/null
assert_status 404 "alice: effective policy of B's device"
api POST /api/v1/policies "{\"group\":\"$B_GROUP\",\"product\":\"canopy-agent\",\"name\":\"x\",\"settings\":{}}" >/dev/null
assert_status 404 "alice: a policy on B's group"

B_TASK=$(made "$BOB_TOK" POST /api/v1/tasks '{"type":"inventory_refresh","name":"bt","group":"/Managed devices"}')
hidden /tasks "$B_TASK" tasks
as "$ALICE_TOK"
api POST /api/v1/tasks "{\"type\":\"inventory_refresh\",\"devices\":[\"$B1\"]}" >/dev/null
assert_status 404 "alice: a task for B's device"
api POST /api/v1/tasks "{\"type\":\"inventory_refresh\",\"group\":\"$B_GROUP\"}" >/dev/null
assert_status 404 "alice: a task for B's group"

B_MR=$(made "$BOB_TOK" POST /api/v1/moving-rules "{\"name\":\"bm\",\"group\":\"$B_GROUP\",\"match\":{\"os\":\"Debian\"}}")
hidden /moving-rules "$B_MR" rules noget
as "$ALICE_TOK"
api POST /api/v1/moving-rules "{\"name\":\"am\",\"group\":\"$B_GROUP\",\"match\":{\"os\":\"Debian\"}}" >/dev/null
assert_status 404 "alice: a moving rule into B's group"
as "$BOB_TOK"
api GET /api/v1/status-rules >/dev/null
assert_status 200 "bob: GET /status-rules"
B_SR=$(json '.rules[0].id')
[ -n "$B_SR" ] && [ "$B_SR" != null ] || fail "B has no status rules: $API_BODY"
as "$ALICE_TOK"
api PATCH "/api/v1/status-rules/$B_SR" '{"enabled":false}' >/dev/null
assert_status 404 "alice: PATCH B's status rule"
api DELETE "/api/v1/status-rules/$B_SR" >/dev/null
assert_status 404 "alice: DELETE B's status rule"
api GET /api/v1/status-rules >/dev/null
printf '%s' "$API_BODY" | jq -e --arg id "$B_SR" \
    '[.rules[] | .id | tostring] | index($id) == null' >/dev/null ||
    fail "alice's status rules list B's $B_SR: $API_BODY"

as "$ALICE_TOK"
api GET "/api/v1/events?limit=1000" >/dev/null
assert_status 200 "alice: GET /events"
for d in "$B1" "$M1"; do
	assert_not_contains "$API_BODY" "$d" "alice's events"
done
api GET "/api/v1/events?device=$B1" >/dev/null
[ "$API_STATUS" = 404 ] || [ "$(json '.events | length')" = 0 ] ||
    fail "alice: GET /events?device= of B's device: $API_STATUS $API_BODY"
api GET "/api/v1/audit?limit=1000" >/dev/null
assert_status 200 "alice: GET /audit"
assert_eq "" "$(json '[.audit[] | select(.actor == "bob" or .action == "vserver_create")] | .[].actor')" \
    "bob's audit rows and main's in alice's audit log"
assert_not_contains "$API_BODY" "Berlin\",\"vs\":\"B" "alice's audit"
api GET /api/v1/admins >/dev/null
assert_status 200 "alice: GET /admins"
assert_eq "alice" "$(json '[.admins[].name] | sort | join(" ")')" "alice's administrators"
BOB_ID=$(pg_sql "SELECT id FROM admins WHERE name = 'bob'")
api DELETE "/api/v1/admins/$BOB_ID" >/dev/null
assert_status 404 "alice: DELETE bob"
api POST "/api/v1/admins/$BOB_ID/unlock" >/dev/null
assert_status 404 "alice: unlock bob"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM admins WHERE name = 'bob'")" "bob still there"

step "a tenant's accounts cannot see or manage virtual servers"
for t in "$ALICE_TOK" "$BOB_TOK"; do
	as "$t"
	api GET /api/v1/vservers >/dev/null
	assert_status 404 "tenant admin: GET /vservers"
	api POST /api/v1/vservers '{"name":"C"}' >/dev/null
	assert_status 404 "tenant admin: POST /vservers"
	api DELETE /api/v1/vservers/B >/dev/null
	assert_status 404 "tenant admin: DELETE /vservers/B"
	assert_not_contains "$API_BODY" '"B"' "the 404 body"
done
as "$ALICE_TOK"
api GET "/api/v1/devices?vs=B" >/dev/null
assert_status 403 "alice with ?vs=B"
assert_not_contains "$API_BODY" "b1" "alice with ?vs=B"
as "$OPER_TOK"
api POST /api/v1/vservers '{"name":"C"}' >/dev/null
assert_status 403 "main operator: POST /vservers"
api GET /api/v1/vservers >/dev/null
assert_status 403 "main operator: GET /vservers"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM vservers WHERE name = 'C'")" "no vserver C"

step "row-level security as canopyd's role, without any WHERE"
rls_count() {
	pg_sql_as_canopy "SELECT set_config('canopy.vs_id', '$1', false);
	    SELECT count(*) FROM $2" | tail -n 1
}
rls_unset() {
	pg_sql_as_canopy "SELECT count(*) FROM $1"
}
assert_eq 2 "$(rls_count "$A_ID" devices)" "devices seen as A"
assert_eq 1 "$(rls_count "$B_ID" devices)" "devices seen as B"
assert_eq 1 "$(rls_count 0 devices)" "devices seen as main"
assert_eq 4 "$(rls_count system devices)" "devices seen as system"
assert_eq 0 "$(rls_unset devices)" "devices seen with canopy.vs_id unset"
assert_eq 0 "$(rls_count garbage devices)" "devices seen with canopy.vs_id garbage"
assert_eq "$(pg_sql "SELECT count(*) FROM groups WHERE vs_id = $A_ID")" \
    "$(rls_count "$A_ID" groups)" "groups seen as A"
assert_eq 0 "$(rls_unset groups)" "groups seen unset"
assert_eq 3 "$(rls_count "$A_ID" enrollment_tokens)" "tokens seen as A"
assert_eq 0 "$(rls_unset enrollment_tokens)" "tokens seen unset"
assert_eq 1 "$(rls_count "$A_ID" admins)" "admins seen as A"
assert_eq 0 "$(rls_unset admins)" "admins seen unset"
assert_eq 2 "$(rls_count "$A_ID" inventory)" "inventories seen as A"
assert_eq 0 "$(rls_unset inventory)" "inventories seen unset"
assert_eq A "$(pg_sql_as_canopy "SELECT set_config('canopy.vs_id', '$A_ID', false);
    SELECT string_agg(name, ' ') FROM vservers" | tail -n 1)" \
    "virtual servers seen as A"
assert_eq 0 "$(rls_unset vservers)" "virtual servers seen unset"
for t in policies tasks task_runs status_rules moving_rules events audit; do
	n=$(pg_sql "SELECT count(*) FROM $t WHERE vs_id = $A_ID")
	assert_eq "$n" "$(rls_count "$A_ID" "$t")" "$t seen as A"
	assert_eq 0 "$(rls_unset "$t")" "$t seen unset"
	assert_eq "$(pg_sql "SELECT count(*) FROM $t")" "$(rls_count system "$t")" "$t seen as system"
done
assert_ne 0 "$(rls_count "$B_ID" policies)" "B's policies seen as B"
assert_eq 0 "$(rls_count "$A_ID" "policies WHERE vs_id = $B_ID")" "B's policies seen as A"
# Writing into another tenant is refused too.
if pg_sql_as_canopy "SELECT set_config('canopy.vs_id', '$A_ID', false);
    INSERT INTO groups (vs_id, parent, name) VALUES ($B_ID, NULL, 'x')" \
    >/dev/null 2>&1; then
	fail "as A, inserting a group of B succeeded"
fi

step "deleting virtual servers"
as "$ROOT_TOK"
api DELETE /api/v1/vservers/B >/dev/null
assert_status 409 "DELETE /vservers/B with a device"
assert_contains "$(json .error.message)" "force" "the 409 message"
api DELETE /api/v1/vservers/main >/dev/null
assert_status 409 "DELETE /vservers/main"
api DELETE /api/v1/vservers/nosuch >/dev/null
assert_status 404 "DELETE /vservers/nosuch"
api POST /api/v1/vservers '{"name":"C"}' >/dev/null
assert_status 201 "POST /vservers C"
C_ID=$(json .id)
api DELETE /api/v1/vservers/C >/dev/null
assert_status 204 "DELETE /vservers/C (empty)"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM groups WHERE vs_id = $C_ID")" "C's groups after delete"
agent_stop b1
# A deeper tree with a device in it must go too (a group's parent is ON
# DELETE RESTRICT).
pg_sql "INSERT INTO groups (vs_id, parent, name) SELECT $B_ID, id, 'sub'
    FROM groups WHERE vs_id = $B_ID AND kind = 'root';
    INSERT INTO groups (vs_id, parent, name) SELECT $B_ID, id, 'subsub'
    FROM groups WHERE vs_id = $B_ID AND name = 'sub';
    UPDATE devices SET group_id = (SELECT id FROM groups WHERE vs_id = $B_ID
    AND name = 'subsub') WHERE vs_id = $B_ID" >/dev/null
api DELETE /api/v1/vservers/B >/dev/null
assert_status 409 "DELETE /vservers/B without force"
api DELETE "/api/v1/vservers/B?force=maybe" >/dev/null
assert_status 400 "DELETE /vservers/B?force=maybe"
api DELETE "/api/v1/vservers/B?force=1" >/dev/null
assert_status 204 "DELETE /vservers/B?force=1"
for t in devices groups enrollment_tokens admins sessions policies tasks task_runs moving_rules status_rules events; do
	assert_eq 0 "$(pg_sql "SELECT count(*) FROM $t WHERE vs_id = $B_ID")" "B's $t after delete"
done
api GET /api/v1/vservers >/dev/null
assert_eq "main A" "$(json '[.vservers[].name] | join(" ")')" "virtual servers after delete"
as "$BOB_TOK"
api GET /api/v1/devices >/dev/null
assert_status 401 "bob's session after B is gone"
assert_eq "a1 a2" "$(devs "$ALICE_TOK")" "alice's devices after B is gone"
assert_eq 5 "$(pg_sql "SELECT count(*) FROM audit WHERE vs_id = 0 AND action IN ('vserver_create', 'vserver_delete')")" \
    "audit rows of virtual server changes"

step "force-deleting a tenant whose agent is connected"
as "$ROOT_TOK"
api POST /api/v1/vservers '{"name":"E"}' >/dev/null
assert_status 201 "POST /vservers E"
api POST "/api/v1/enrollment-tokens?vs=E" '{"uses":1}' >/dev/null
assert_status 201 "root: token in E"
agent_enroll e1 "$(json .token)"
agent_start e1
wait_for "e1 connected (4 agents)" 60 metric_is "$AGENTS_METRIC" 4
api DELETE "/api/v1/vservers/E?force=1" >/dev/null
assert_status 204 "DELETE /vservers/E?force=1 with its agent connected"
canopyd_alive || fail "canopyd died deleting E"
# Its session may outlive the delete; a new one is refused.
agent_stop e1
wait_for "e1's session to end (3 agents)" 60 metric_is "$AGENTS_METRIC" 3
agent_start e1
e1_refused() {
	! agent_alive e1 && grep -q unknown_device "$TEST_DIR/agent-e1.log"
}
wait_for "e1 refused as an unknown device" 60 e1_refused
assert_eq 3 "$(metric "$AGENTS_METRIC")" "connected agents after e1's refusal"
canopyd_alive || fail "canopyd died refusing e1"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM devices WHERE name = 'e1'")" "e1's device row"

step "canopyctl vserver and --vs"
ctl_login
ctl vserver create D >ctl.out 2>&1 || fail "canopyctl vserver create D: $(cat ctl.out)"
ctl vserver list >ctl.out 2>&1 || fail "canopyctl vserver list: $(cat ctl.out)"
assert_contains "$(cat ctl.out)" "D" "canopyctl vserver list"
ctl --json vserver list >ctl.out 2>&1
assert_eq "main A D" "$(jq -r '[.vservers[].name] | join(" ")' ctl.out)" "canopyctl --json vserver list"
ctl --vs A --json device list >ctl.out 2>&1 || fail "canopyctl --vs A device list: $(cat ctl.out)"
assert_eq "a1 a2" "$(jq -r '[.devices[].name] | sort | join(" ")' ctl.out)" "canopyctl --vs A device list"
ctl --json device list --vs A >ctl.out 2>&1 || fail "canopyctl device list --vs A: $(cat ctl.out)"
assert_eq "a1 a2" "$(jq -r '[.devices[].name] | sort | join(" ")' ctl.out)" "canopyctl device list --vs A"
ctl vserver delete A >ctl.out 2>&1 && fail "canopyctl vserver delete A with devices succeeded"
ctl vserver delete D >ctl.out 2>&1 || fail "canopyctl vserver delete D: $(cat ctl.out)"
ctl vserver --help >ctl.out 2>&1 || fail "canopyctl vserver --help"
assert_contains "$(cat ctl.out)" "delete NAME" "canopyctl vserver --help"

step "canopyctl as a tenant's administrator"
ADMIN_USER='A\alice' ADMIN_PASS=$PW
ctl_login
ctl --json whoami >ctl.out 2>&1 || fail "canopyctl whoami as alice: $(cat ctl.out)"
assert_eq A "$(jq -r .vs ctl.out)" "canopyctl whoami as alice"
ctl --json device list >ctl.out 2>&1 || fail "canopyctl device list as alice: $(cat ctl.out)"
assert_eq "a1 a2" "$(jq -r '[.devices[].name] | sort | join(" ")' ctl.out)" "alice's canopyctl device list"
ctl vserver list >ctl.out 2>&1 && fail "canopyctl vserver list as alice succeeded"
assert_not_contains "$(cat ctl.out)" "main" "canopyctl vserver list as alice"

step "main's agent and main's account still work"
assert_eq "m1" "$(devs "$ROOT_TOK")" "root's devices at the end"
for a in m1 a1 a2; do
	agent_alive "$a" || fail "agent $a died"
done
canopyd_alive || fail "canopyd died"
