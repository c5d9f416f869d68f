#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# End to end: PostgreSQL, canopyd, an administrator, one enrolment token for
# three uses, three real canopy-agent processes; the devices and their
# inventories through the API and canopyctl; whoami, /healthz, /metrics.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopy-agent
need_bin canopyctl
pg_start
canopyd_start
admin_create admin 'e2e-password-1'
api_login

step "an enrolment token for three uses"
token_create 3 >/dev/null
token=$ENROLL_TOKEN
assert_match "$token" '^[A-Za-z0-9_.~+/=-]{16,128}$' "the enrolment token"
assert_match "$(json .fingerprint)" '^SHA256:' "the token answer's fingerprint"
ca_fpr=$(openssl x509 -in "$CANOPYD_STATE/ca.pem" -noout -fingerprint -sha256 |
    sed 's/.*=//')
assert_eq "SHA256:$ca_fpr" "$(json .fingerprint)" "the token answer's fingerprint"
tok_fpr=$(openssl x509 -in enroll-ca.pem -noout -fingerprint -sha256 |
    sed 's/.*=//') || fail "the token answer's ca_pem is not a certificate"
assert_eq "$ca_fpr" "$tok_fpr" "the token answer's ca_pem (fingerprint)"
tokens_in_db=$(pg_sql "SELECT count(*) FROM enrollment_tokens WHERE token_hash = encode(sha256('$token'::bytea), 'hex')")
assert_eq 1 "$tokens_in_db" "the token stored hashed (sha256 hex)"

step "enrol and start three agents"
for a in a1 a2 a3; do
	agent_enroll "$a" "$token"
	agent_start "$a"
done

devices_are() {
	api GET /api/v1/devices >/dev/null
	[ "$API_STATUS" = 200 ] || fail "GET /devices: $API_STATUS $API_BODY"
	[ "$(json '.devices | length')" = "$1" ]
}
wait_for "3 devices in GET /api/v1/devices" 60 devices_are 3
ids=$(json '.devices[].id' | sort)
assert_eq 3 "$(printf '%s\n' "$ids" | sort -u | wc -l)" "distinct device ids"
wait_for "$AGENTS_METRIC to be 3" 60 metric_is "$AGENTS_METRIC" 3

step "paging"
api GET "/api/v1/devices?limit=2" >/dev/null
assert_status 200 "GET /devices?limit=2"
assert_eq 2 "$(json '.devices | length')" "devices on the first page of 2"
page1=$(json '.devices[].id')
next=$(json '.next // empty')
[ -n "$next" ] || fail "GET /devices?limit=2 of 3 has no next cursor: $API_BODY"
api GET "/api/v1/devices?limit=2&cursor=$(printf %s "$next" | jq -sRr @uri)" >/dev/null
assert_status 200 "GET /devices?cursor="
assert_eq 1 "$(json '.devices | length')" "devices on the second page"
assert_eq "$ids" "$(printf '%s\n%s\n' "$page1" "$(json '.devices[].id')" | sort)" \
    "the two pages together"

step "the token's three uses are spent"
rc=0
timeout -k 5 60 "$CANOPY_BUILD/canopy-agent" enroll \
    --server "127.0.0.1:$CANOPYD_AGENT_PORT" --ca enroll-ca.pem \
    --token "$token" --state-dir "$TEST_DIR/agent-a4" >agent-a4.log 2>&1 || rc=$?
assert_ne 0 "$rc" "exit status of a fourth enrolment with a 3-use token"
assert_ne 124 "$rc" "a fourth enrolment (it hung instead of failing)"
devices_are 3 || fail "a fourth device appeared: $API_BODY"

step "each device has its inventory"
has_inventory() {
	api GET "/api/v1/devices/$1" >/dev/null
	[ "$API_STATUS" = 200 ] || fail "GET /devices/$1: $API_STATUS $API_BODY"
	printf '%s' "$API_BODY" | jq -e '.inventory.software | length > 0'
}
for id in $ids; do
	wait_for "device $id to have an inventory" 60 has_inventory "$id"
	assert_eq "$id" "$(json .id)" "GET /devices/$id .id"
	printf '%s' "$API_BODY" | jq -e '
	    (.name | type == "string" and length > 0) and
	    (.inventory.os | type == "object") and
	    (.inventory.os.name | type == "string" and length > 0) and
	    (.inventory.os.kernel | type == "string" and length > 0) and
	    (.inventory.hardware | type == "object") and
	    (.inventory.hardware.cpu_cores | type == "number" and . > 0) and
	    (.inventory.hardware.memory_bytes | type == "number" and . > 0) and
	    (.inventory.interfaces | type == "array" and length > 0) and
	    (.inventory.interfaces[0].name | type == "string") and
	    (.inventory.software | type == "array" and length > 0) and
	    (all(.inventory.software[]; (.name | type == "string") and
		(.version | type == "string")))' >/dev/null ||
	    fail "device $id: incomplete inventory: $(printf %s "$API_BODY" | head -c 1500)"
	# The agent reports this machine: compare with what we know.
	if [ -r /etc/os-release ]; then
		os_id=$(. /etc/os-release && echo "$ID")
		assert_eq "$os_id" "$(json .inventory.os.id)" "inventory os.id of $id"
	fi
	if command -v dpkg-query >/dev/null; then
		printf '%s' "$API_BODY" | jq -e '.inventory.software |
		    any(.name == "bash")' >/dev/null ||
		    fail "device $id: bash is not in the software inventory"
	fi
	assert_eq "$(uname -r)" "$(json .inventory.os.kernel)" "inventory os.kernel of $id"
done

step "devices carry the names they were enrolled with"
names_are() {
	api GET /api/v1/devices >/dev/null
	[ "$(json '[.devices[].name] | sort | join(" ")')" = "$1" ]
}
wait_for "device names a1 a2 a3 (canopy-agent enroll --name)" 30 \
    names_are "a1 a2 a3"

step "canopyctl sees the same"
ctl_login
ctl_out=$(ctl device list --json) || fail "canopyctl device list --json failed"
ctl_ids=$(printf '%s' "$ctl_out" | jq -r '(.devices // .)[].id' | sort) ||
    fail "canopyctl device list --json is not the device list: $ctl_out"
assert_eq "$ids" "$ctl_ids" "device ids from canopyctl device list --json"
first=$(printf '%s\n' "$ids" | head -n 1)
show=$(ctl device show "$first") || fail "canopyctl device show $first failed"
assert_contains "$show" "$first" "canopyctl device show"
show_json=$(ctl --json device show "$first") ||
    fail "canopyctl --json device show $first failed"
assert_eq "$first" "$(json .id "$show_json")" "canopyctl --json device show .id"
rc=0
ctl device show 00000000-0000-4000-8000-000000000000 >ctl-missing.out 2>&1 || rc=$?
assert_ne 0 "$rc" "exit status of canopyctl device show on an unknown id"

tok_out=$(ctl --json enroll-token create --uses 1 --ca-out "$TEST_DIR/ctl-ca.pem") ||
    fail "canopyctl enroll-token create failed"
ctl_tok=$(json .token "$tok_out")
assert_eq 1 "$(pg_sql "SELECT uses_left FROM enrollment_tokens WHERE token_hash = encode(sha256('$ctl_tok'::bytea), 'hex')")" \
    "the token from canopyctl enroll-token create, in the database"
ctl_fpr=$(openssl x509 -in ctl-ca.pem -noout -fingerprint -sha256 | sed 's/.*=//') ||
    fail "canopyctl enroll-token create --ca-out wrote no certificate"
assert_eq "$ca_fpr" "$ctl_fpr" "the CA written by canopyctl enroll-token create --ca-out"

step "whoami"
api GET /api/v1/whoami >/dev/null
assert_status 200 "GET /whoami"
assert_eq admin "$(json .user)" "whoami .user"
assert_eq main "$(json .vs)" "whoami .vs"
assert_eq true "$(json '[.roles[].role] | index("administrator") != null')" \
    "whoami has the administrator role"
who=$(ctl whoami) || fail "canopyctl whoami failed"
assert_contains "$who" admin "canopyctl whoami"
who=$(ctl --json whoami) || fail "canopyctl --json whoami failed"
assert_eq admin "$(json .user "$who")" "canopyctl --json whoami .user"

step "/healthz and /metrics"
api_anon GET /healthz >/dev/null
assert_status 200 "/healthz"
assert_eq ok "$(json .status)" "/healthz .status"
api_anon GET /metrics >/dev/null
assert_status 200 "/metrics"
assert_eq 3 "$(metric "$AGENTS_METRIC")" "$AGENTS_METRIC"

step "push: the server tells a connected agent to sync now"
inv_syncs_above() { [ "$(metric canopy_syncs_inventory_total)" -gt "$1" ]; }
n=$(metric canopy_syncs_inventory_total)
api POST "/api/v1/devices/$first/sync" >/dev/null
assert_status 202 "POST /devices/{id}/sync"
assert_eq true "$(json .pushed)" "POST /devices/{id}/sync .pushed"
wait_for "a full-inventory sync after the push" 30 inv_syncs_above "$n"
n=$(metric canopy_syncs_inventory_total)
out=$(ctl device sync "$first") || fail "canopyctl device sync failed"
assert_contains "$out" "sync requested" "canopyctl device sync"
wait_for "a full-inventory sync after canopyctl device sync" 30 inv_syncs_above "$n"
api GET "/api/v1/devices/$first/sync" >/dev/null
assert_status 405 "GET /devices/{id}/sync"
api POST /api/v1/devices/00000000-0000-4000-8000-000000000000/sync >/dev/null
assert_status 404 "POST /devices/{unknown}/sync"

step "clean shutdown"
for a in a1 a2 a3; do
	agent_stop "$a"
done
wait_for "$AGENTS_METRIC to be 0 after the agents stopped" 30 \
    metric_is "$AGENTS_METRIC" 0
api POST "/api/v1/devices/$first/sync" >/dev/null
assert_status 409 "POST /devices/{id}/sync while its agent is stopped"
assert_eq not_connected "$(json .error.code)" "the push error code"
canopyd_stop
