#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Groups, device moves, events and audit through the API and canopyctl:
# the tree (create by path or parent+name, rename, move, delete), cycles,
# the fixed groups, 409s, names with spaces and non-ASCII letters, moving
# a device (event + audit row), paging, and every bad input -> 400 naming
# the field.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopyctl
pg_start
canopyd_start
admin_create admin 'groups-test-pw-1'
api_login

# req METHOD PATH [BODY] EXPECTED WHAT: one request, its status checked.
req() {
	local method=$1 path=$2 body expected what
	if [ $# = 5 ]; then
		body=$3 expected=$4 what=$5
		api "$method" "$path" "$body" >/dev/null
	else
		expected=$3 what=$4
		api "$method" "$path" >/dev/null
	fi
	assert_status "$expected" "$what"
	case $expected in 4*) assert_error_body "$what" ;; esac
}
# bad METHOD PATH BODY FIELD: 400 whose message starts with FIELD.
bad() {
	if [ -n "$3" ]; then
		req "$1" "$2" "$3" 400 "$1 $2 $3"
	else
		req "$1" "$2" 400 "$1 $2"
	fi
	assert_match "$(json .error.message)" "^$4" "message of $1 $2 $3"
}
gid() {	# the id of the group at path $1
	api GET /api/v1/groups >/dev/null
	printf '%s' "$API_BODY" |
	    jq -r --arg p "$1" '.groups[] | select(.path == $p) | .id'
}

step "the fixed groups"
api GET /api/v1/groups >/dev/null
assert_status 200 "GET /groups"
ROOT=$(json '.groups[] | select(.path == "/Managed devices") | .id')
POOL=$(json '.groups[] | select(.path == "/Unassigned devices") | .id')
[ -n "$ROOT" ] && [ -n "$POOL" ] || fail "no fixed groups in $API_BODY"
assert_eq null "$(json '.groups[] | select(.id == "'"$ROOT"'") | .parent')" \
    "the root's parent"
# The legacy shape is kept: id, parent, name, path on each.
assert_eq true "$(json '[.groups[] | has("id") and has("parent") and
    has("name") and has("path")] | all')" "group fields"

step "create by path and by parent+name"
req POST /api/v1/groups '{"path":"/Managed devices/Berlin"}' 201 "create Berlin"
BERLIN=$(json .id)
assert_eq "/Managed devices/Berlin" "$(json .path)" "Berlin's path"
assert_eq "$ROOT" "$(json .parent)" "Berlin's parent"
req POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"Paris Nord\"}" 201 \
    "create by parent id"
PARIS=$(json .id)
assert_eq "/Managed devices/Paris Nord" "$(json .path)" "path with a space"
req POST /api/v1/groups '{"parent":"/Managed devices","name":"Zürich"}' 201 \
    "create by parent path, non-ASCII"
ZURICH=$(json .id)
req POST /api/v1/groups "{\"parent\":$ZURICH,\"name\":\"Bahnhofstraße 1\"}" \
    201 "create by integer parent id"
BAHN=$(json .id)
assert_eq "/Managed devices/Zürich/Bahnhofstraße 1" "$(json .path)" \
    "non-ASCII path"
assert_eq "$BAHN" "$(gid "/Managed devices/Zürich/Bahnhofstraße 1")" \
    "listed under its path"
req GET "/api/v1/groups/$BAHN" 200 "GET /groups/{id}"
assert_eq "Bahnhofstraße 1" "$(json .name)" "the group's name"

step "conflicts and missing parents"
req POST /api/v1/groups '{"path":"/Managed devices/Berlin"}' 409 "duplicate"
assert_contains "$(json .error.message)" "Berlin" "duplicate message"
req POST /api/v1/groups '{"path":"/Managed devices/Nowhere/Sub"}' 404 \
    "missing intermediate group"
assert_contains "$(json .error.message)" "path: no group '/Managed devices/Nowhere'" \
    "404 names the missing parent"
req POST /api/v1/groups '{"parent":"999999","name":"X"}' 404 "no parent id"
assert_match "$(json .error.message)" "^parent" "404 names parent"
req POST /api/v1/groups '{"path":"/Unassigned devices/X"}' 409 \
    "no groups in the unassigned pool"
[ -z "$(gid "/Managed devices/Nowhere")" ] || fail "intermediate group created"

step "bad input -> 400 naming the field"
bad POST /api/v1/groups '{' "body"
bad POST /api/v1/groups '[]' "body"
bad POST /api/v1/groups '{}' "parent"
bad POST /api/v1/groups '{"path":5}' "path"
bad POST /api/v1/groups '{"path":"no-slash"}' "path"
bad POST /api/v1/groups '{"path":"/"}' "path"
bad POST /api/v1/groups '{"path":"/Top"}' "path"
bad POST /api/v1/groups '{"path":"/Managed devices//x"}' "path"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\"}" "name"
bad POST /api/v1/groups '{"name":"x"}' "parent"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"\"}" "name"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"a/b\"}" "name"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"..\"}" "name"
bad POST /api/v1/groups '{"path":"/Managed devices/."}' "path"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"tab\\there\"}" "name"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":7}" "name"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"$(printf 'n%.0s' $(seq 256))\"}" "name"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"x\",\"path\":\"/a/b\"}" "path"
bad POST /api/v1/groups "{\"parent\":true,\"name\":\"x\"}" "parent"
bad POST /api/v1/groups "{\"parent\":\"$ROOT\",\"name\":\"x\",\"colour\":1}" "colour"
bad PATCH "/api/v1/groups/$BERLIN" '{}' "body"
bad PATCH "/api/v1/groups/$BERLIN" '{"name":""}' "name"
bad PATCH "/api/v1/groups/$BERLIN" '{"name":"a/b"}' "name"
bad PATCH "/api/v1/groups/$BERLIN" '{"parent":[1]}' "parent"
bad PATCH "/api/v1/groups/$BERLIN" '{"nam":"x"}' "nam"
req GET /api/v1/groups/abc 404 "a non-numeric group id"
req DELETE /api/v1/groups/999999 404 "no such group"
req PATCH /api/v1/groups/999999 '{"name":"x"}' 404 "patch no such group"
# Nothing was partially applied.
assert_eq "" "$(gid "/Managed devices/x")" "no group from a bad request"

step "rename and move"
req PATCH "/api/v1/groups/$BERLIN" '{"name":"Berlin Mitte"}' 200 "rename"
assert_eq "/Managed devices/Berlin Mitte" "$(json .path)" "renamed path"
req PATCH "/api/v1/groups/$BERLIN" '{"name":"Paris Nord"}' 409 \
    "rename onto a sibling's name"
req PATCH "/api/v1/groups/$PARIS" "{\"parent\":\"$BERLIN\"}" 200 "move"
assert_eq "/Managed devices/Berlin Mitte/Paris Nord" "$(json .path)" \
    "moved path"
req PATCH "/api/v1/groups/$BERLIN" "{\"parent\":\"$PARIS\"}" 400 \
    "move below its own child"
assert_contains "$(json .error.message)" "parent: would create a cycle" \
    "cycle message"
req PATCH "/api/v1/groups/$BERLIN" "{\"parent\":\"$BERLIN\"}" 400 \
    "move into itself"
assert_contains "$(json .error.message)" "cycle" "self-cycle message"
req PATCH "/api/v1/groups/$ZURICH" \
    '{"parent":"/Managed devices/Berlin Mitte/Paris Nord","name":"Zürich Süd"}' \
    200 "move and rename at once, parent by path"
assert_eq "/Managed devices/Berlin Mitte/Paris Nord/Zürich Süd" "$(json .path)" \
    "moved and renamed"
assert_eq "$BAHN" \
    "$(gid "/Managed devices/Berlin Mitte/Paris Nord/Zürich Süd/Bahnhofstraße 1")" \
    "the subtree moved along"
req PATCH "/api/v1/groups/$BERLIN" "{\"parent\":\"$POOL\"}" 409 \
    "move into the unassigned pool"
# A move that renames too is checked against the new name only.
req POST /api/v1/groups '{"path":"/Managed devices/Berlin Mitte/Dup"}' 201 "Dup below"
DUPB=$(json .id)
req POST /api/v1/groups '{"path":"/Managed devices/Dup"}' 201 "Dup above"
DUP=$(json .id)
req PATCH "/api/v1/groups/$DUP" "{\"parent\":\"$BERLIN\"}" 409 \
    "move onto a sibling's name"
req PATCH "/api/v1/groups/$DUP" "{\"parent\":\"$BERLIN\",\"name\":\"Dup 2\"}" \
    200 "move and rename past a sibling's name"
assert_eq "/Managed devices/Berlin Mitte/Dup 2" "$(json .path)" "moved and renamed"
req DELETE "/api/v1/groups/$DUP" 204 "delete Dup 2"
req DELETE "/api/v1/groups/$DUPB" 204 "delete Dup"

step "the fixed groups cannot be renamed, moved or deleted"
req PATCH "/api/v1/groups/$ROOT" '{"name":"Mine"}' 409 "rename the root"
assert_contains "$(json .error.message)" "Managed devices" "root message"
req PATCH "/api/v1/groups/$ROOT" "{\"parent\":\"$BERLIN\"}" 409 "move the root"
req DELETE "/api/v1/groups/$ROOT" 409 "delete the root"
req PATCH "/api/v1/groups/$POOL" '{"name":"Pool"}' 409 "rename the pool"
req DELETE "/api/v1/groups/$POOL" 409 "delete the pool"

step "a non-empty group cannot be deleted"
req DELETE "/api/v1/groups/$BERLIN" 409 "delete a group with groups"
assert_contains "$(json .error.message)" "1 group" "what it holds"

step "devices move between groups"
DEV=$(pg_sql "INSERT INTO devices (vs_id, group_id, name)
    VALUES (0, $POOL, 'dev-one') RETURNING id" | head -n 1)
[ -n "$DEV" ] || fail "no device"
req POST "/api/v1/devices/$DEV/move" "{\"group\":\"$BAHN\"}" 200 "device move"
assert_eq "$DEV" "$(json .id)" "the moved device"
assert_eq "$BAHN" "$(json .group)" "its new group"
req GET "/api/v1/devices/$DEV" 200 "the device after the move"
assert_eq "$BAHN" "$(json .group)" "stored"
req GET "/api/v1/events?device=$DEV&type=device_moved" 200 "events"
assert_eq 1 "$(json '.events | length')" "one device_moved event"
assert_eq info "$(json '.events[0].severity')" "its severity"
assert_eq "dev-one" "$(json '.events[0].device_name')" "its device name"
assert_eq "moved from /Unassigned devices to /Managed devices/Berlin Mitte/Paris Nord/Zürich Süd/Bahnhofstraße 1 by admin" \
    "$(json '.events[0].text')" "the event text"
assert_match "$(json '.events[0].time')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "event time"
req GET "/api/v1/audit?action=device_move" 200 "audit"
assert_eq "$DEV" "$(json '.audit[0].object')" "audit object"
assert_eq admin "$(json '.audit[0].actor')" "audit actor"
assert_eq "/Unassigned devices" "$(json '.audit[0].detail.before.group')" \
    "audit before"
assert_match "$(json '.audit[0].addr')" '127\.0\.0\.1' "audit address"
req DELETE "/api/v1/groups/$BAHN" 409 "delete a group holding a device"
assert_contains "$(json .error.message)" "1 device" "device count"

step "device move bad input"
bad POST "/api/v1/devices/$DEV/move" '{}' "group"
bad POST "/api/v1/devices/$DEV/move" '{"group":true}' "group"
bad POST "/api/v1/devices/$DEV/move" '{"group":"/x","y":1}' "y"
bad POST "/api/v1/devices/$DEV/move" 'nope' "body"
req POST "/api/v1/devices/$DEV/move" '{"group":"/Managed devices/None"}' 404 \
    "move to a missing group"
assert_match "$(json .error.message)" "^group" "names group"
req POST /api/v1/devices/00000000-0000-4000-8000-000000000000/move \
    "{\"group\":\"$ROOT\"}" 404 "no such device"
req POST /api/v1/devices/not-a-uuid/move "{\"group\":\"$ROOT\"}" 404 \
    "malformed device id"
req GET "/api/v1/devices/$DEV" 200 "unchanged"
assert_eq "$BAHN" "$(json .group)" "a failed move changes nothing"

step "events: filters and paging"
for i in 1 2 3 4 5; do
	pg_sql "INSERT INTO events (vs_id, device_id, severity, type, time, text)
	    VALUES (0, '$DEV', 'warning', 'disk', now() - interval '$i min',
	    'disk $i')" >/dev/null
done
pg_sql "INSERT INTO events (vs_id, device_id, severity, type, time, text)
    VALUES (0, '$DEV', 'critical', 'disk', now() - interval '1 day', 'old')" \
    >/dev/null
req GET "/api/v1/events?device=$DEV&severity=warning" 200 "at least warning"
assert_eq 6 "$(json '.events | length')" "warning and above"
req GET "/api/v1/events?device=$DEV&severity=critical" 200 "critical"
assert_eq old "$(json '.events[0].text')" "only the critical one"
req GET "/api/v1/events?device=$DEV" 200 "all"
assert_eq 7 "$(json '.events | length')" "every event"
assert_eq device_moved "$(json '.events[0].type')" "newest first"
req GET "/api/v1/events?device=$DEV&since=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)" \
    200 "since"
assert_eq 6 "$(json '.events | length')" "since two hours ago"
seen=0 cursor="" pages=0
while :; do
	req GET "/api/v1/events?device=$DEV&limit=2${cursor:+&cursor=$cursor}" \
	    200 "page"
	seen=$((seen + $(json '.events | length')))
	pages=$((pages + 1))
	cursor=$(json '.next // empty')
	[ -n "$cursor" ] || break
	[ "$pages" -lt 10 ] || fail "events paging does not end"
done
assert_eq 7 "$seen" "every event once over the pages"
assert_eq 4 "$pages" "pages of 2"
bad GET "/api/v1/events?severity=loud" "" "severity"
bad GET "/api/v1/events?since=yesterday" "" "since"
bad GET "/api/v1/events?since=2026-02-30T00:00:00Z" "" "since"
bad GET "/api/v1/events?limit=0" "" "limit"
bad GET "/api/v1/events?limit=1001" "" "limit"
bad GET "/api/v1/events?device=abc" "" "device"
bad GET "/api/v1/events?cursor=xyz" "" "cursor"

step "audit: filters and paging"
req GET "/api/v1/audit?limit=1" 200 "audit page"
assert_eq 1 "$(json '.audit | length')" "one row"
next=$(json .next)
[ "$next" != null ] || fail "no next page of the audit log"
req GET "/api/v1/audit?limit=1&cursor=$next" 200 "audit next page"
assert_ne "$next" "$(json '.audit[0].id')" "the next page moves on"
req GET "/api/v1/audit?actor=nobody" 200 "audit by actor"
assert_eq 0 "$(json '.audit | length')" "nobody did anything"
req GET "/api/v1/audit?action=group_create" 200 "audit by action"
assert_eq 6 "$(json '.audit | length')" "six groups created"
bad GET "/api/v1/audit?cursor=1.2" "" "cursor"
bad GET "/api/v1/audit?since=2026-13-01" "" "since"
bad GET "/api/v1/audit?limit=x" "" "limit"

step "delete"
req POST "/api/v1/devices/$DEV/move" "{\"group\":\"/Managed devices\"}" 200 \
    "move the device out"
req DELETE "/api/v1/groups/$BAHN" 204 "delete an empty group"
req GET "/api/v1/groups/$BAHN" 404 "gone"
req DELETE "/api/v1/groups/$BAHN" 404 "deleted twice"

step "canopyctl"
ctl_login
out=$(ctl group create "/Managed devices/Köln Süd") || fail "ctl group create: $out"
assert_contains "$out" "/Managed devices/Köln Süd" "ctl create output"
out=$(ctl group list) || fail "ctl group list"
assert_contains "$out" "/Managed devices/Köln Süd" "ctl list"
ctl group rename "/Managed devices/Köln Süd" "Köln Nord" >/dev/null ||
    fail "ctl group rename by path"
KOELN=$(gid "/Managed devices/Köln Nord")
[ -n "$KOELN" ] || fail "renamed group not found"
out=$(ctl group move "$KOELN" "/Managed devices/Berlin Mitte") ||
    fail "ctl group move: $out"
assert_contains "$out" "/Managed devices/Berlin Mitte/Köln Nord" "ctl move output"
if out=$(ctl group move "$BERLIN" "$KOELN" 2>&1); then
	fail "ctl group move into a cycle succeeded"
fi
assert_contains "$out" "cycle" "ctl reports the cycle"
if out=$(ctl group create "/Managed devices/Nope/X" 2>&1); then
	fail "ctl group create under a missing parent succeeded"
fi
assert_contains "$out" "/Managed devices/Nope" "ctl names the missing parent"
out=$(ctl device move "$DEV" "/Managed devices/Berlin Mitte/Köln Nord") ||
    fail "ctl device move: $out"
assert_contains "$out" "Köln Nord" "ctl device move output"
out=$(ctl --json device move "$DEV" "$ROOT") || fail "ctl device move --json"
assert_eq "$ROOT" "$(json .group "$out")" "ctl device move --json"
out=$(ctl event list --device "$DEV" --severity info --limit 2 --all) ||
    fail "ctl event list"
assert_contains "$out" "device_moved" "ctl event list"
assert_contains "$out" "Köln Nord" "ctl event text"
out=$(ctl --json event list --device "$DEV" --all) || fail "ctl event list --json"
assert_eq 10 "$(json '.events | length' "$out")" "ctl --all pages through"
out=$(ctl audit list --action device_move) || fail "ctl audit list"
assert_contains "$out" "device_move" "ctl audit list"
out=$(ctl --json audit list --actor admin --limit 3) || fail "ctl audit --json"
assert_eq 3 "$(json '.audit | length' "$out")" "ctl audit --limit"
if ctl event list --severity loud >/dev/null 2>&1; then
	fail "ctl event list accepted a bad severity"
fi
ctl group delete "$KOELN" >/dev/null || fail "ctl group delete"
[ -z "$(gid "/Managed devices/Berlin Mitte/Köln Nord")" ] ||
    fail "ctl group delete left the group"
out=$(ctl --json group list) || fail "ctl group list --json"
assert_eq true "$(json '.groups | length > 3' "$out")" "ctl list --json"
step "ok"
