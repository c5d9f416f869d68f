#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The server tree's API on one server, without live links: the mirrors
# (hier_links, hier_servers, hier_devices, hier_policies, hier_task_results)
# are written by SQL as the superuser, as the links would write them.
# Proves GET /servers (shape, state and lag of direct and deeper children,
# device counts, vservers), GET /devices?hierarchy=1 (owner server, paging,
# filters), GET /devices/{origin}/{id} of a mirror, GET /reports/status?
# hierarchy=1, that tenants see no mirrors, policies inherited from above
# (sources, locks, 409 on a locked key, what agents get), task results from
# below, POST/DELETE /servers/children (token, CA, 409 on a duplicate name,
# 404, 400s naming fields, audit) and canopyctl's server/report commands.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_tree.sh"

need_bin canopyd
need_bin canopy-agent
need_bin canopyctl

tree_server_start top
api_login

ME=$(tree_sql top "SELECT hier_me()")
step "this server is $ME"

step "POST /servers/children: 400s name the field"
bad() {
	api POST /api/v1/servers/children "$1" >/dev/null
	assert_status 400 "POST /servers/children $1"
	assert_error_body
	assert_contains "$(json .error.message)" "$2" "message for $1"
}
bad '{}' name
bad '{"name":7}' name
bad '{"name":""}' name
bad '{"name":"a b"}' name
bad '{"name":"x/y"}' name
bad "{\"name\":\"$(printf 'x%.0s' $(seq 64))\"}" name
bad '{"name":"ok","ttl_s":0}' ttl_s
bad '{"name":"ok","ttl_s":"1"}' ttl_s
bad '{"name":"ok","ttl_s":99999999}' ttl_s
bad '{"name":"ok","group":5.5}' group
bad '{"name":"ok","zzz":1}' zzz
api POST /api/v1/servers/children 'nope' >/dev/null
assert_status 400 "POST /servers/children with a body that is not JSON"
api POST /api/v1/servers/children '{"name":"ok","group":"/No such group"}' >/dev/null
assert_status 404 "POST /servers/children into a missing group"
assert_contains "$(json .error.message)" group
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_links")" "links after failures"

step "POST /servers/children: token, CA, fingerprint; stored hashed"
api POST /api/v1/servers/children '{"name":"mid"}' >/dev/null
assert_status 201 "POST /servers/children mid"
TOKEN=$(json .token)
[ ${#TOKEN} -ge 32 ] || fail "token too short: $TOKEN"
assert_contains "$(json .ca_pem)" "BEGIN CERTIFICATE" "ca_pem"
assert_eq "$(cat "$CANOPYD_STATE/ca.pem" | tr -d '\n')" "$(json .ca_pem | tr -d '\n')" \
    "ca_pem is this server's CA"
assert_match "$(json .fingerprint)" '^(SHA256:)?[0-9A-Fa-f:]{32,}$' "fingerprint"
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
assert_eq 1 "$(tree_sql top "SELECT count(*) FROM hier_tokens t JOIN hier_links l ON l.id = t.link_id WHERE t.hash = '$HASH' AND l.name = 'mid' AND l.role = 'child' AND t.used IS NULL AND t.expires BETWEEN now() + interval '23 hours' AND now() + interval '25 hours'")" \
    "the token's hash, default ttl 24 h"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_tokens WHERE hash = '$TOKEN'")" \
    "the token itself is not stored"
api POST /api/v1/servers/children '{"name":"mid"}' >/dev/null
assert_status 409 "POST /servers/children mid again"
assert_error_body
assert_contains "$(json .error.message)" "name"

api POST /api/v1/groups '{"path":"/Managed devices/Branch"}' >/dev/null
assert_status 201 "POST /groups Branch"
BRANCH_GID=$(json .id)
api POST /api/v1/servers/children '{"name":"branch","group":"/Managed devices/Branch","ttl_s":600}' >/dev/null
assert_status 201 "POST /servers/children branch into a group"
assert_eq "$BRANCH_GID" "$(tree_sql top "SELECT group_id FROM hier_links WHERE name = 'branch'")" "branch's group"
assert_eq 1 "$(tree_sql top "SELECT count(*) FROM hier_tokens t JOIN hier_links l ON l.id = t.link_id WHERE l.name = 'branch' AND t.expires BETWEEN now() + interval '9 minutes' AND now() + interval '11 minutes'")" \
    "ttl_s 600"

step "a local device, in /Managed devices"
api POST /api/v1/enrollment-tokens '{"group":"/Managed devices","uses":1}' >/dev/null
assert_status 201 "enrolment token"
json .ca_pem >"$TEST_DIR/enroll-ca.pem"
json .token >"$TEST_DIR/.last-token"
agent_enroll top-pc1
LOCAL_ID=$(tree_sql top "SELECT id FROM devices WHERE name = 'top-pc1'")
[ -n "$LOCAL_ID" ] || fail "the enrolled device is not in the database"

step "mirrors, as the links would write them"
MID_U=11111111-1111-4111-8111-111111111111
LEAF_U=22222222-2222-4222-8222-222222222222
ROOT_U=33333333-3333-4333-8333-333333333333
D1=aaaaaaaa-0000-4000-8000-000000000001
D2=aaaaaaaa-0000-4000-8000-000000000002
tree_sql top "
UPDATE hier_links SET peer_uuid = '$MID_U', state = 'connected',
    last_seen = now(), lag_s = 0.5 WHERE name = 'mid';
INSERT INTO hier_links (role, name, peer_uuid, state, last_seen, lag_s)
    VALUES ('parent', 'root', '$ROOT_U', 'connected', now(), 0.25);
UPDATE hier_self SET level = 1, parent_uuid = '$ROOT_U',
    name = CASE name WHEN '' THEN 'top' ELSE name END;
INSERT INTO hier_servers (oid, uuid, origin, version, link_id, name,
    parent_uuid, level, status)
SELECT '$MID_U/server', '$MID_U', '$MID_U', 1, l.id, 'mid', '$ME', 2,
    '{\"devices\": 2, \"vservers\": [{\"name\": \"main\", \"devices\": 2},
      {\"name\": \"empty\", \"devices\": 0}],
      \"links\": {\"$LEAF_U\": {\"name\": \"leaf\", \"state\": \"connected\",
      \"last_seen\": \"2026-11-21T08:00:00.123456+00:00\", \"lag_s\": 1.5}}}'
FROM hier_links l WHERE l.name = 'mid';
INSERT INTO hier_servers (oid, uuid, origin, version, link_id, name,
    parent_uuid, level, status)
SELECT '$LEAF_U/server', '$LEAF_U', '$LEAF_U', 1, l.id, 'leaf', '$MID_U', 3,
    '{}' FROM hier_links l WHERE l.name = 'mid';
INSERT INTO hier_devices (oid, origin, version, link_id, vs, name, fqdn, ip,
    mac, os, group_path, status, source, first_seen, last_seen)
SELECT x.oid, x.origin::uuid, 1, l.id, x.vs, x.name, x.name || '.example',
    ARRAY[x.ip], '{}', 'Linux', '/Managed devices', x.status, 'agent', now(),
    now()
FROM hier_links l, (VALUES
    ('$MID_U/$D1', '$MID_U', 'main', 'mid-pc1', '10.9.0.1', 'ok'),
    ('$MID_U/$D2', '$MID_U', 'main', 'mid-pc2', '10.9.0.2', 'warning'),
    ('$LEAF_U/$D1', '$LEAF_U', 'main', 'leaf-pc1', '10.9.1.1', 'ok'),
    ('$LEAF_U/$D2', '$LEAF_U', 'acme', 'leaf-pc2', '10.9.1.2', 'critical'))
    AS x(oid, origin, vs, name, ip, status)
WHERE l.name = 'mid';
" >/dev/null

step "GET /servers: the whole tree below"
api GET /api/v1/servers >/dev/null
assert_status 200 "GET /servers"
NAME=$(json .name)
assert_eq "$NAME" "$(tree_sql top "SELECT name FROM hier_self")" "name"
assert_eq "$ME" "$(json .uuid)" "uuid"
assert_eq root "$(json .parent.name)" "parent.name"
assert_eq connected "$(json .parent.state)" "parent.state"
assert_eq 0.25 "$(json .parent.lag_s)" "parent.lag_s"
assert_eq '["branch","mid"]' "$(printf %s "$API_BODY" | jq -c '[.children[].name]')" "children"
M='.children[] | select(.name == "mid")'
assert_eq connected "$(json "$M | .state")" "mid.state"
assert_eq 0.5 "$(json "$M | .lag_s")" "mid.lag_s"
assert_ne null "$(json "$M | .last_seen")" "mid.last_seen"
assert_eq 2 "$(json "$M | .devices")" "mid.devices"
assert_eq "$MID_U" "$(json "$M | .uuid")" "mid.uuid"
assert_eq '[{"name":"main","devices":2},{"name":"empty","devices":0}]' \
    "$(printf %s "$API_BODY" | jq -c "$M | .vservers")" "mid.vservers"
L="$M | .children[] | select(.name == \"leaf\")"
assert_eq connected "$(json "$L | .state")" "leaf.state (from mid's status)"
assert_eq 1.5 "$(json "$L | .lag_s")" "leaf.lag_s"
assert_eq 2026-11-21T08:00:00Z "$(json "$L | .last_seen")" "leaf.last_seen"
assert_eq 2 "$(json "$L | .devices")" "leaf.devices"
assert_eq '[]' "$(printf %s "$API_BODY" | jq -c "$L | .children")" "leaf.children"
assert_eq '["acme","main"]' "$(printf %s "$API_BODY" | jq -c "[$L | .vservers[].name] | sort")" "leaf.vservers"
B='.children[] | select(.name == "branch")'
assert_eq disconnected "$(json "$B | .state")" "branch.state"
assert_eq 0 "$(json "$B | .devices")" "branch.devices"
assert_eq "/Managed devices/Branch" "$(json "$B | .group")" "branch.group"
assert_eq '[{"name":"main","devices":1}]' "$(printf %s "$API_BODY" | jq -c '.vservers')" "this server's vservers"
printf %s "$API_BODY" | jq -e '(.children | type == "array") and
    all(.children[]; has("name") and has("state") and has("last_seen") and
    has("lag_s") and has("devices") and has("children"))' >/dev/null ||
    fail "GET /servers shape: $API_BODY"

step "GET /devices?hierarchy=1: local and mirrored, with the owner"
api GET /api/v1/devices >/dev/null
assert_status 200 "GET /devices"
assert_eq 1 "$(json '.devices | length')" "local devices only without hierarchy=1"
api GET '/api/v1/devices?hierarchy=1' >/dev/null
assert_status 200 "GET /devices?hierarchy=1"
assert_eq 5 "$(json '.devices | length')" "devices with hierarchy=1"
assert_eq "$NAME" "$(json '.devices[] | select(.name == "top-pc1") | .server')" "local device's server"
assert_eq mid "$(json '.devices[] | select(.name == "mid-pc2") | .server')" "mid-pc2's server"
assert_eq leaf "$(json '.devices[] | select(.name == "leaf-pc2") | .server')" "leaf-pc2's server"
assert_eq acme "$(json '.devices[] | select(.name == "leaf-pc2") | .vs')" "leaf-pc2's vs"
assert_eq "$LEAF_U/$D2" "$(json '.devices[] | select(.name == "leaf-pc2") | .id')" "leaf-pc2's id"
assert_eq 10.9.1.2 "$(json '.devices[] | select(.name == "leaf-pc2") | .ip')" "leaf-pc2's ip"
assert_eq "/Managed devices" "$(json '.devices[] | select(.name == "leaf-pc2") | .group_path')" "leaf-pc2's group path"
api GET '/api/v1/devices?hierarchy=1&status=critical' >/dev/null
assert_eq '["leaf-pc2"]' "$(printf %s "$API_BODY" | jq -c '[.devices[].name]')" "status=critical"
api GET '/api/v1/devices?hierarchy=1&q=mid-' >/dev/null
assert_eq '["mid-pc1","mid-pc2"]' "$(printf %s "$API_BODY" | jq -c '[.devices[].name]')" "q=mid-"
api GET '/api/v1/devices?hierarchy=0' >/dev/null
assert_eq 1 "$(json '.devices | length')" "hierarchy=0"
api GET '/api/v1/devices?hierarchy=maybe' >/dev/null
assert_status 400 "hierarchy=maybe"
assert_contains "$(json .error.message)" hierarchy

step "GET /devices/{id} of a mirrored device: its summary"
api GET "/api/v1/devices/$LEAF_U/$D2" >/dev/null
assert_status 200 "GET /devices/$LEAF_U/$D2"
assert_eq leaf-pc2 "$(json .name)" "mirrored device's name"
assert_eq leaf "$(json .server)" "mirrored device's server"
assert_eq acme "$(json .vs)" "mirrored device's vs"
assert_eq critical "$(json .status)" "mirrored device's status"
assert_eq 10.9.1.2 "$(json .ip)" "mirrored device's ip"
api GET "/api/v1/devices/$LEAF_U/aaaaaaaa-0000-4000-8000-000000000009" >/dev/null
assert_status 404 "an unknown mirrored device"
api GET "/api/v1/devices/$LEAF_U/nope" >/dev/null
assert_status 404 "a malformed mirrored id"
api GET "/api/v1/devices/$LOCAL_ID/move" >/dev/null
assert_status 405 "GET /devices/{id}/move"
api GET "/api/v1/devices/$LOCAL_ID/effective-policy" >/dev/null
assert_status 200 "GET /devices/{id}/effective-policy still answers"

step "paging over local and mirrored devices"
SEEN=""
URL='/api/v1/devices?hierarchy=1&limit=2'
pages=0
while :; do
	api GET "$URL" >/dev/null
	assert_status 200 "page $pages"
	SEEN="$SEEN $(json '.devices[].name' | tr '\n' ' ')"
	pages=$((pages + 1))
	NEXT=$(json .next)
	[ "$NEXT" != null ] || break
	[ $pages -lt 10 ] || fail "paging does not end"
	URL="/api/v1/devices?hierarchy=1&limit=2&cursor=$(jq -rn --arg c "$NEXT" '$c|@uri')"
done
assert_eq 3 "$pages" "pages of 2"
assert_eq "leaf-pc1 leaf-pc2 mid-pc1 mid-pc2 top-pc1" "$(echo $SEEN)" "every device once, in name order"

step "GET /reports/status"
api GET '/api/v1/reports/status?hierarchy=1' >/dev/null
assert_status 200 "GET /reports/status?hierarchy=1"
assert_eq 5 "$(json .total)" "total"
assert_eq 1 "$(json .critical)" "critical"
assert_eq 1 "$(json .warning)" "warning"
assert_eq 2 "$(json .by_server.mid.total)" "mid's total"
assert_eq 1 "$(json .by_server.mid.warning)" "mid's warnings"
assert_eq 2 "$(json .by_server.leaf.total)" "leaf's total"
assert_eq 1 "$(json ".by_server[\"$NAME\"].total")" "this server's total"
api GET /api/v1/reports/status >/dev/null
assert_status 200 "GET /reports/status"
assert_eq 1 "$(json .total)" "total without hierarchy"
assert_eq "[\"$NAME\"]" "$(printf %s "$API_BODY" | jq -c '.by_server | keys')" "by_server without hierarchy"

step "canopyctl server tree, report status, device list --hierarchy"
ctl_login
OUT=$(ctl server tree) || fail "canopyctl server tree failed"
echo "$OUT"
assert_contains "$OUT" "$NAME"
assert_contains "$OUT" "parent: root"
assert_match "$OUT" '(\||`)-- mid +\[connected, lag 0\.5s'
assert_match "$OUT" '    `-- leaf +\[connected, lag 1\.5s.*devices 2'
assert_contains "$OUT" "vservers: main 2, empty 0"
assert_match "$OUT" 'branch +\[disconnected'
OUT=$(ctl server tree --json) || fail "canopyctl server tree --json failed"
assert_eq leaf "$(json '.children[] | select(.name == "mid") | .children[0].name' "$OUT")" "tree --json"
OUT=$(ctl report status --hierarchy) || fail "canopyctl report status --hierarchy failed"
assert_match "$OUT" 'leaf +2 +1 +0 +1'
assert_match "$OUT" '\(all\) +5 +3 +1 +1'
OUT=$(ctl report status) || fail "canopyctl report status failed"
assert_match "$OUT" '\(all\) +1 +1 +0 +0'
OUT=$(ctl device list --hierarchy) || fail "canopyctl device list --hierarchy failed"
assert_match "$OUT" 'leaf-pc2.*leaf'
assert_match "$OUT" "top-pc1.*$NAME"
OUT=$(ctl server add-child viactl --ttl 300 --ca-out "$TEST_DIR/viactl-ca.pem" --parent 127.0.0.1:$CANOPYD_AGENT_PORT) ||
    fail "canopyctl server add-child failed: $OUT"
assert_contains "$OUT" "parent 127.0.0.1:$CANOPYD_AGENT_PORT"
assert_match "$OUT" 'parent-token "[^"]{32,}"'
assert_contains "$OUT" "parent-ca $TEST_DIR/viactl-ca.pem"
assert_eq "$(tr -d '\n' <"$CANOPYD_STATE/ca.pem")" "$(tr -d '\n' <"$TEST_DIR/viactl-ca.pem")" "--ca-out wrote the CA"
OUT=$(ctl server add-child viactl 2>&1) && fail "add-child of a taken name succeeded"
assert_contains "$OUT" "viactl"
ctl server remove-child viactl >/dev/null || fail "canopyctl server remove-child failed"
OUT=$(ctl server remove-child viactl 2>&1) && fail "remove-child of an unknown name succeeded"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_links WHERE name = 'viactl'")" "viactl removed"

step "tenants see no mirrors and no tree"
ROOT_TOK=$API_TOKEN
api POST /api/v1/vservers '{"name":"acme"}' >/dev/null
assert_status 201 "POST /vservers acme"
printf '%s\n' "tenant-pw-1" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
    admin-add alice --vs acme --role administrator >>"$TEST_DIR/admin-add.log" 2>&1 ||
    fail "admin-add alice: $(tail -n 5 "$TEST_DIR/admin-add.log")"
_api_curl none POST /api/v1/login '{"user":"alice","password":"tenant-pw-1","vs":"acme"}' >/dev/null
assert_status 200 "login alice"
API_TOKEN=$(json .token)
api GET '/api/v1/devices?hierarchy=1' >/dev/null
assert_status 200 "tenant GET /devices?hierarchy=1"
assert_eq 0 "$(json '.devices | length')" "tenant sees no mirrored devices"
api GET /api/v1/servers >/dev/null
assert_status 404 "tenant GET /servers"
api GET "/api/v1/devices/$LEAF_U/$D2" >/dev/null
assert_status 404 "tenant GET of a mirrored device"
api POST /api/v1/servers/children '{"name":"t1"}' >/dev/null
assert_status 404 "tenant POST /servers/children"
api DELETE /api/v1/servers/children/mid >/dev/null
assert_status 404 "tenant DELETE /servers/children/mid"
api GET '/api/v1/reports/status?hierarchy=1' >/dev/null
assert_status 200 "tenant GET /reports/status?hierarchy=1"
assert_eq 0 "$(json .total)" "tenant's report"
assert_eq '["acme"]' "$(printf %s "$API_BODY" | jq -c '.by_server | keys')" "tenant's by_server"
API_TOKEN=$ROOT_TOK

agent_start top-pc1
agent_online() {
	[ "$(tree_sql top "SELECT count(*) FROM devices WHERE id = '$LOCAL_ID' AND last_seen > now() - interval '1 minute'")" = 1 ]
}
wait_for "agent top-pc1 to connect" 30 agent_online

step "policies from above: merged top-down, locks hold, sources named"
tree_sql top "
INSERT INTO hier_policies (oid, origin, version, link_id, server, level,
    group_path, gdepth, name, product, settings)
SELECT x.oid, x.origin::uuid, 1, l.id, x.server, x.level, x.gpath, x.gdepth,
    x.name, 'canopy-agent', x.settings::jsonb
FROM hier_links l, (VALUES
    ('$ROOT_U/1', '$ROOT_U', 'root', 0, '/Managed devices', 1, 'Base',
     '{\"sync_interval_s\": {\"value\": 300, \"locked\": true},
       \"tags\": {\"value\": [\"base\"], \"locked\": false},
       \"motd\": {\"value\": \"hello\", \"locked\": false}}'),
    ('$ROOT_U/2', '$ROOT_U', 'root', 0, '/Managed devices/Europe', 2, 'Europe',
     '{\"sync_interval_s\": {\"value\": 10, \"locked\": false},
       \"color\": {\"value\": \"red\", \"locked\": true}}'),
    ('$ROOT_U/3', '$ROOT_U', 'root', 0, '/Managed devices/Europe/DE', 3, 'DE',
     '{\"color\": {\"value\": \"blue\", \"locked\": false},
       \"motd\": {\"value\": \"hallo\", \"locked\": false}}'))
    AS x(oid, origin, server, level, gpath, gdepth, name, settings)
WHERE l.role = 'parent';
" >/dev/null
EP="/api/v1/devices/$LOCAL_ID/effective-policy?product=canopy-agent"
api GET "$EP" >/dev/null
assert_status 200 "effective policy"
assert_eq 300 "$(json .settings.sync_interval_s.value)" "sync_interval_s (locked at the top)"
assert_eq true "$(json .settings.sync_interval_s.locked)" "sync_interval_s locked"
assert_eq root "$(json .settings.sync_interval_s.source.server)" "sync_interval_s source server"
assert_eq Base "$(json .settings.sync_interval_s.source.policy)" "sync_interval_s source policy"
assert_eq "/Managed devices" "$(json .settings.sync_interval_s.source.group)" "sync_interval_s source group"
assert_eq red "$(json .settings.color.value)" "color (locked by Europe)"
assert_eq Europe "$(json .settings.color.source.policy)" "color's policy"
assert_eq hallo "$(json .settings.motd.value)" "motd (overridden further down)"
assert_eq DE "$(json .settings.motd.source.policy)" "motd's policy"

step "a local policy overrides what is not locked, and names this server"
api POST /api/v1/policies '{"group":"/Managed devices","product":"canopy-agent","name":"Local","settings":{"tags":{"value":["local"]},"x":{"value":1,"locked":true}}}' >/dev/null
assert_status 201 "POST /policies Local"
LOCAL_POL=$(json .id)
api GET "$EP" >/dev/null
assert_eq '["local"]' "$(printf %s "$API_BODY" | jq -c .settings.tags.value)" "tags overridden here"
assert_eq "$NAME" "$(json .settings.tags.source.server)" "tags' source server"
assert_eq Local "$(json .settings.tags.source.policy)" "tags' source policy"
assert_eq 300 "$(json .settings.sync_interval_s.value)" "sync_interval_s still from the top"
assert_eq root "$(json .settings.sync_interval_s.source.server)" "sync_interval_s still root's"

step "409 on a key locked above, naming the policy and its server"
api POST /api/v1/policies '{"group":"/Managed devices/Branch","product":"canopy-agent","name":"B","settings":{"sync_interval_s":{"value":5}}}' >/dev/null
assert_status 409 "POST /policies setting a key locked at the top"
assert_error_body
assert_contains "$(json .error.message)" "sync_interval_s"
assert_contains "$(json .error.message)" "'Base'"
assert_contains "$(json .error.message)" "root"
api PUT "/api/v1/policies/$LOCAL_POL" '{"name":"Local","settings":{"color":{"value":"green"}}}' >/dev/null
assert_status 409 "PUT /policies on a root group setting a key locked above"
assert_contains "$(json .error.message)" "'Europe'"
assert_contains "$(json .error.message)" "root"
api POST /api/v1/policies '{"group":"/Managed devices/Branch","product":"canopy-agent","name":"B","settings":{"x":{"value":2}}}' >/dev/null
assert_status 409 "a key locked by a local policy is still 409"
assert_contains "$(json .error.message)" "'Local'"
api POST /api/v1/policies '{"group":"/Managed devices/Branch","product":"canopy-agent","name":"B","settings":{"motd":{"value":"hi"}}}' >/dev/null
assert_status 201 "an unlocked inherited key may be set below"

step "what agents get includes the inherited settings"
VIEW=$(tree_sql top "SELECT canopy_policy_view(eff) -> 'canopy-agent' FROM canopy_policy_groups(0) e JOIN devices d ON d.group_id = e.group_id WHERE d.id = '$LOCAL_ID'")
# The agent acknowledges the hash of what it got: the whole view.
agent_acked() {
	[ "$(tree_sql top "SELECT d.policy_hash = canopy_policy_hash(canopy_policy_view(e.eff)) FROM devices d JOIN canopy_policy_groups(0) e ON e.group_id = d.group_id WHERE d.id = '$LOCAL_ID'")" = t ]
}
wait_for "the agent to acknowledge the policy with inherited settings" 30 agent_acked
assert_eq 300 "$(json .sync_interval_s "$VIEW")" "agent's sync_interval_s"
assert_eq red "$(json .color "$VIEW")" "agent's color"
assert_eq '["local"]' "$(printf %s "$VIEW" | jq -c .tags)" "agent's tags"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM canopy_policy_groups(1) e WHERE e.eff ? 'canopy-agent'")" \
    "a virtual server does not inherit main's parent policies"

step "task results from the servers below"
api POST /api/v1/tasks '{"type":"inventory_refresh","group":"/Managed devices"}' >/dev/null
assert_status 201 "POST /tasks"
TASK=$(json .id)
tree_sql top "
INSERT INTO hier_task_results (oid, origin, version, link_id, task_oid,
    device_oid, device_name, state, finished, exit_code, output)
SELECT x.oid, x.origin::uuid, 1, l.id, '$ME/$TASK', x.dev, x.dname, x.state,
    now(), 0, 'done'
FROM hier_links l, (VALUES
    ('$LEAF_U/r1', '$LEAF_U', '$LEAF_U/1', 'leaf-pc1', 'done'),
    ('$MID_U/r1', '$MID_U', '$MID_U/1', 'mid-pc1', 'done'),
    ('$MID_U/r9', '$MID_U', '$MID_U/2', 'mid-pc2', 'done'))
    AS x(oid, origin, dev, dname, state)
WHERE l.name = 'mid';
UPDATE hier_task_results SET task_oid = '$ME/999999' WHERE oid = '$MID_U/r9';
" >/dev/null
# The connected agent's run is made as the task is scheduled: wait for it.
local_run() {
	[ "$(tree_sql top "SELECT count(*) FROM task_runs WHERE task_id = $TASK")" = 1 ]
}
wait_for "the local device's run of task $TASK" 30 local_run
api GET "/api/v1/tasks/$TASK" >/dev/null
assert_status 200 "GET /tasks/$TASK"
R='.results[] | select(.device_name == "leaf-pc1")'
assert_eq leaf "$(json "$R | .server")" "leaf-pc1's result: server"
assert_eq done "$(json "$R | .state")" "leaf-pc1's result: state"
assert_eq "$LEAF_U/1" "$(json "$R | .device")" "leaf-pc1's result: device"
assert_eq mid "$(json '.results[] | select(.device_name == "mid-pc1") | .server')" "mid-pc1's result"
assert_eq 0 "$(printf %s "$API_BODY" | jq '[.results[] | select(.device_name == "mid-pc2")] | length')" \
    "another task's result is not listed"
NLOCAL=$(tree_sql top "SELECT count(*) FROM task_runs WHERE task_id = $TASK")
assert_eq $((NLOCAL + 2)) "$(json '.results | length')" \
    "results: the local runs and the two from below"

step "GET /servers crosses HIER_TREE_DEPTH_MAX (32) and HIER_TREE_SERVERS_MAX (10000)"
tree_sql top "
INSERT INTO hier_servers (oid, uuid, origin, version, link_id, name,
    parent_uuid, level)
SELECT md5('chain' || i)::uuid || '/server', md5('chain' || i)::uuid,
    md5('chain' || i)::uuid, 1, l.id, 'chain' || i,
    CASE i WHEN 1 THEN '$LEAF_U'::uuid ELSE md5('chain' || (i - 1))::uuid END,
    3 + i
FROM hier_links l, generate_series(1, 40) i WHERE l.name = 'mid';
" >/dev/null
api GET /api/v1/servers >/dev/null
assert_status 200 "GET /servers with a chain of 40 below leaf"
DEPTH='def d: if (.children | length) == 0 then 0 else 1 + ([.children[] | d] | max) end; d'
assert_eq 33 "$(printf %s "$API_BODY" | jq "$DEPTH")" "levels shown (the direct children and 32 below)"
tree_sql top "DELETE FROM hier_servers WHERE name LIKE 'chain%';
INSERT INTO hier_servers (oid, uuid, origin, version, link_id, name,
    parent_uuid, level)
SELECT md5('wide' || i)::uuid || '/server', md5('wide' || i)::uuid,
    md5('wide' || i)::uuid, 1, l.id, 'wide' || lpad(i::text, 5, '0'),
    '$MID_U', 3
FROM hier_links l, generate_series(1, 10001) i WHERE l.name = 'mid';
" >/dev/null
api GET /api/v1/servers >/dev/null
assert_status 200 "GET /servers with 10001 servers below mid"
NODES='[.. | objects | select(has("children") and has("state"))] | length'
assert_eq 10000 "$(printf %s "$API_BODY" | jq "$NODES")" "servers listed"
assert_eq true "$(json .truncated)" "truncated"
tree_sql top "DELETE FROM hier_servers WHERE name LIKE 'wide%'" >/dev/null
api GET /api/v1/servers >/dev/null
assert_eq null "$(json .truncated)" "not truncated"

step "DELETE /servers/children"
api DELETE /api/v1/servers/children/nosuch >/dev/null
assert_status 404 "DELETE an unknown child"
assert_error_body
api DELETE /api/v1/servers/children/mid >/dev/null
assert_status 204 "DELETE /servers/children/mid"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_devices")" "mid's mirrored devices are gone"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_servers")" "mid's servers are gone"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_task_results")" "mid's task results are gone"
assert_eq 0 "$(tree_sql top "SELECT count(*) FROM hier_tokens t JOIN hier_links l ON l.id = t.link_id WHERE l.name = 'mid'")" "mid's token is gone"
api GET /api/v1/servers >/dev/null
assert_eq '["branch"]' "$(printf %s "$API_BODY" | jq -c '[.children[].name]')" "children after the delete"
api GET '/api/v1/devices?hierarchy=1' >/dev/null
assert_eq 1 "$(json '.devices | length')" "devices?hierarchy=1 after the delete"
api DELETE /api/v1/servers/children/mid >/dev/null
assert_status 404 "DELETE mid again"
api POST /api/v1/servers/children '{"name":"mid"}' >/dev/null
assert_status 201 "the name is free again"

step "audited"
AUD=$(tree_sql top "SELECT string_agg(action || ':' || object, ' ' ORDER BY id) FROM audit WHERE action LIKE 'server_child%'")
assert_contains "$AUD" "server_child_add:mid"
assert_contains "$AUD" "server_child_add:branch"
assert_contains "$AUD" "server_child_remove:mid"

step "only an administrator of all of main manages children"
printf '%s\n' "oper-pw-1" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
    admin-add oper --role operator >>"$TEST_DIR/admin-add.log" 2>&1 ||
    fail "admin-add oper: $(tail -n 5 "$TEST_DIR/admin-add.log")"
_api_curl none POST /api/v1/login '{"user":"oper","password":"oper-pw-1"}' >/dev/null
assert_status 200 "login oper"
API_TOKEN=$(json .token)
api POST /api/v1/servers/children '{"name":"x1"}' >/dev/null
assert_status 403 "operator POST /servers/children"
api GET /api/v1/servers >/dev/null
assert_status 200 "operator GET /servers"
API_TOKEN=$ROOT_TOK

step "done"
