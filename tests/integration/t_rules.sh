#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Status rules and moving rules through the API and canopyctl: the default
# rules (not seen, agent error event, disk full) turn devices warning or
# critical with their reasons and a status_changed event, and back to ok
# when the cause goes; moving rules by IP range, DNS suffix, OS and source
# place new agents and devices, once or always, first by order; every bad
# input is a 400 naming the field.  POST /rules/run evaluates at once, so
# nothing waits for the timer.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopyctl
need_bin canopy-agent
pg_start
canopyd_start
admin_create admin 'rules-test-pw-1'
api_login

req() {	# METHOD PATH [BODY] EXPECTED WHAT
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
bad() {	# METHOD PATH BODY FIELD: 400 naming FIELD
	req "$1" "$2" "$3" 400 "$1 $2 $3"
	assert_match "$(json .error.message)" "^$4" "message of $1 $2 $3"
}
run_rules() {
	api POST /api/v1/rules/run >/dev/null
	assert_status 202 "POST /rules/run"
}
dev_id() {
	api GET "/api/v1/devices?q=$1" >/dev/null
	json ".devices[] | select(.name == \"$1\") | .id"
}
dev_field() {	# ID JQ
	api GET "/api/v1/devices/$1" >/dev/null
	assert_status 200 "GET /devices/$1"
	json "$2"
}
status_is() {	# ID STATUS
	run_rules
	[ "$(dev_field "$1" .status)" = "$2" ]
}
gid() {
	api GET /api/v1/groups >/dev/null
	json ".groups[] | select(.path == \"$1\") | .id"
}
group_of() { dev_field "$1" .group; }
has_event() {	# ID TYPE
	[ -n "$(pg_sql "SELECT 1 FROM events WHERE device_id = '$1'
	    AND type = '$2' LIMIT 1")" ]
}
listed() { [ -n "$(dev_id "$1")" ]; }
has_inventory() { [ -n "$(dev_field "$1" '.inventory_updated // empty')" ]; }
events_of() {	# ID TYPE: the texts of the device's server events of TYPE
	pg_sql "SELECT text FROM events WHERE device_id = '$1'
	    AND type = '$2' ORDER BY id"
}

step "the default status rules"
api GET /api/v1/status-rules >/dev/null
assert_status 200 "GET /status-rules"
assert_eq 7 "$(json '.rules | length')" "default rules"
for k in not_seen not_visible agent_event disk_full; do
	assert_ne 0 "$(json "[.rules[] | select(.kind == \"$k\")] | length")" \
	    "a default $k rule"
done
R_ERR=$(json '.rules[] | select(.name == "Agent error event") | .id')
assert_eq 24 "$(json '.rules[] | select(.name == "Not seen for 1 day") | .params.hours')" \
    "not seen for 1 day: hours"

step "an agent, its inventory with filesystems"
token_create 10 >/dev/null
agent_enroll s1
agent_start s1
wait_for "device s1 listed" 30 listed s1
S1=$(dev_id s1)
wait_for "s1's inventory" 30 has_inventory "$S1"
inv=$(pg_sql "SELECT data->'filesystems' FROM inventory WHERE device_id = '$S1'")
assert_eq true "$(json 'type == "array" and length > 0 and
    (.[0] | has("mount") and has("fstype") and has("size_bytes") and
    has("used_bytes"))' "$inv")" "filesystems in the inventory: $inv"
assert_eq true "$(json '[.[] | select(.mount == "/")] | length == 1' "$inv")" \
    "the root filesystem: $inv"
run_rules
assert_eq ok "$(dev_field "$S1" .status)" "a fresh agent's status"
assert_eq '[]' "$(dev_field "$S1" '.status_reasons | tojson')" "no reasons"

step "an agent error event: warning, with the reason"
agent_event s1 error disk_error "the disk is on fire"
wait_for "the error event stored" 30 has_event "$S1" disk_error
wait_for "s1 warning" 20 status_is "$S1" warning
assert_eq "Agent error event" "$(dev_field "$S1" '.status_reasons[0].rule')" "reason rule"
assert_contains "$(dev_field "$S1" '.status_reasons[0].text')" "disk_error" "reason text"
assert_eq warning "$(dev_field "$S1" '.status_reasons[0].severity')" "reason severity"
assert_contains "$(events_of "$S1" status_changed)" "ok -> warning" "status_changed event"
# The list shows the reasons too.
api GET "/api/v1/devices?q=s1" >/dev/null
assert_eq "Agent error event" "$(json ".devices[] | select(.id == \"$S1\") | .status_reasons[0].rule")" \
    "reasons in GET /devices"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$S1'
    AND type = 'status_changed'")" "one status_changed event"
run_rules
assert_eq 1 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$S1'
    AND type = 'status_changed'")" "no event when nothing changed"

step "disabling the rule: back to ok; enabling: warning again"
ctl_login
ctl status-rule disable "$R_ERR" >/dev/null || fail "status-rule disable"
wait_for "s1 ok with the rule disabled" 20 status_is "$S1" ok
assert_contains "$(events_of "$S1" status_changed)" "warning -> ok" "back-to-ok event"
ctl status-rule enable "$R_ERR" >/dev/null || fail "status-rule enable"
wait_for "s1 warning again" 20 status_is "$S1" warning

step "the cause goes (the event ages out of the 24 hours): ok"
pg_sql "UPDATE events SET time = now() - interval '2 days'
    WHERE device_id = '$S1' AND type = 'disk_error'" >/dev/null
wait_for "s1 ok once the event is old" 20 status_is "$S1" ok

step "a critical agent event: critical"
agent_event s1 critical kernel_panic "oops"
wait_for "the critical event stored" 30 has_event "$S1" kernel_panic
wait_for "s1 critical" 20 status_is "$S1" critical
assert_eq critical "$(dev_field "$S1" '.status_reasons[0].severity')" "worst reason first"
pg_sql "UPDATE events SET time = now() - interval '2 days'
    WHERE device_id = '$S1' AND type = 'kernel_panic'" >/dev/null
wait_for "s1 ok again" 20 status_is "$S1" ok

step "a filesystem 95 % full: warning; 98 %: critical"
fs_full() {	# PERCENT
	pg_sql "UPDATE inventory SET data = jsonb_set(data, '{filesystems}',
	    '[{\"mount\":\"/data\",\"fstype\":\"ext4\",\"size_bytes\":1000,
	    \"used_bytes\":$(( $1 * 10 ))}]'), updated = now()
	    WHERE device_id = '$S1'" >/dev/null
}
fs_full 95
wait_for "s1 warning for the disk" 20 status_is "$S1" warning
assert_eq "Disk nearly full" "$(dev_field "$S1" '.status_reasons[0].rule')" "disk reason"
assert_contains "$(dev_field "$S1" '.status_reasons[0].text')" "/data" "disk reason text"
tick_past() { [ "$(date +%s)" != "$1" ]; }
sleep_until_next_second() { wait_for "the clock to tick" 3 tick_past "$1"; }
t0=$(date +%s); sleep_until_next_second "$t0"
fs_full 98
wait_for "s1 critical for the disk" 20 status_is "$S1" critical
assert_eq 2 "$(dev_field "$S1" '.status_reasons | length')" "both disk rules hold"
t0=$(date +%s); sleep_until_next_second "$t0"
fs_full 10
wait_for "s1 ok with space" 20 status_is "$S1" ok

step "not seen for two days: warning, with the reason and an event"
agent_stop s1
pg_sql "UPDATE devices SET last_seen = now() - interval '2 days'
    WHERE id = '$S1'" >/dev/null
wait_for "s1 warning when not seen" 20 status_is "$S1" warning
assert_eq "Not seen for 1 day" "$(dev_field "$S1" '.status_reasons[0].rule')" "not-seen reason"
assert_contains "$(events_of "$S1" status_changed | tail -n 1)" "Not seen for 1 day" \
    "the event names the reason"
pg_sql "UPDATE devices SET last_seen = now() - interval '8 days'
    WHERE id = '$S1'" >/dev/null
wait_for "s1 critical after 8 days" 20 status_is "$S1" critical
agent_start s1
wait_for "s1 ok when it is back" 30 status_is "$S1" ok

step "the timer evaluates by itself too"
pg_sql "UPDATE devices SET last_seen = now() - interval '2 days'
    WHERE id = '$S1'" >/dev/null
agent_stop s1
pg_sql "UPDATE devices SET last_seen = now() - interval '2 days'
    WHERE id = '$S1'" >/dev/null
tick_warning() { [ "$(dev_field "$S1" .status)" = warning ]; }
wait_for "the timer's round" 60 tick_warning

step "status rules: create, change, delete, and bad input"
req POST /api/v1/status-rules '{"name":"Not seen for 2 hours","kind":"not_seen","severity":"warning","params":{"hours":2}}' \
    201 "create a status rule"
R_NEW=$(json .id)
assert_eq 2 "$(json .params.hours)" "params stored"
req POST /api/v1/status-rules '{"name":"Not seen for 2 hours","kind":"not_seen","severity":"warning","params":{"hours":2}}' \
    409 "a taken name"
req PATCH "/api/v1/status-rules/$R_NEW" '{"severity":"critical","params":{"hours":3}}' 200 "PATCH"
assert_eq critical "$(json .severity)" "severity changed"
assert_eq 3 "$(json .params.hours)" "params changed"
bad POST /api/v1/status-rules '{"name":"x","kind":"cpu_hot","severity":"warning"}' kind
bad POST /api/v1/status-rules '{"name":"x","kind":"not_seen","severity":"fatal","params":{"hours":1}}' severity
bad POST /api/v1/status-rules '{"name":"x","kind":"not_seen","severity":"warning"}' params.hours
bad POST /api/v1/status-rules '{"name":"x","kind":"not_seen","severity":"warning","params":{"hours":0}}' params.hours
bad POST /api/v1/status-rules '{"name":"x","kind":"not_seen","severity":"warning","params":{"hours":"1"}}' params.hours
bad POST /api/v1/status-rules '{"name":"x","kind":"disk_full","severity":"warning","params":{"percent":101}}' params.percent
bad POST /api/v1/status-rules '{"name":"x","kind":"agent_event","severity":"warning","params":{"min_severity":"bad"}}' params.min_severity
bad POST /api/v1/status-rules '{"name":"x","kind":"disk_full","severity":"warning","params":{"percent":90,"x":1}}' params.x
bad POST /api/v1/status-rules '{"name":"x","kind":"disk_full","severity":"warning","params":[1]}' params
bad POST /api/v1/status-rules '{"kind":"disk_full","severity":"warning","params":{"percent":90}}' name
bad POST /api/v1/status-rules '{"name":"","kind":"disk_full","severity":"warning","params":{"percent":90}}' name
bad POST /api/v1/status-rules '{"name":"x","kind":"disk_full","severity":"warning","params":{"percent":90},"zzz":1}' zzz
bad POST /api/v1/status-rules '{"name":' body
bad PATCH "/api/v1/status-rules/$R_NEW" '{"enabled":"yes"}' enabled
bad PATCH "/api/v1/status-rules/$R_NEW" '{"params":{"percent":5}}' params.percent
req PATCH /api/v1/status-rules/999999 '{"enabled":false}' 404 "PATCH a missing rule"
req PATCH /api/v1/status-rules/abc '{"enabled":false}' 404 "PATCH a non-id"
req DELETE "/api/v1/status-rules/$R_NEW" 204 "DELETE"
req DELETE "/api/v1/status-rules/$R_NEW" 404 "DELETE again"
out=$(ctl status-rule create --name "Disk 80" --kind disk_full --severity warning --percent 80) ||
    fail "canopyctl status-rule create: $out"
out=$(ctl status-rule list) || fail "canopyctl status-rule list"
assert_contains "$out" "Disk 80" "canopyctl status-rule list"
R_D80=$(ctl --json status-rule list | jq -r '.rules[] | select(.name == "Disk 80") | .id')
ctl status-rule delete "$R_D80" >/dev/null || fail "canopyctl status-rule delete"
ctl status-rule create --name y --kind bogus --severity warning >/dev/null 2>&1 &&
    fail "canopyctl status-rule create accepted a bad kind"

step "groups for the moving rules"
for g in ByIP ByDNS ByOS BySource First Second Always1 Always2; do
	req POST /api/v1/groups "{\"path\":\"/Managed devices/$g\"}" 201 "group $g"
done
POOL=$(gid "/Unassigned devices")

step "moving rules: bad input"
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"ip_cidr":"10.0.0.0/33"}}' match.ip_cidr
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"ip_cidr":"10.0.0/8"}}' match.ip_cidr
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"ip_cidr":"fd00::/129"}}' match.ip_cidr
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"dns_suffix":"bad..example"}}' match.dns_suffix
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"dns_suffix":"a_b.example"}}' match.dns_suffix
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"source":"carrier-pigeon"}}' match.source
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"ou_dn":"no equals"}}' match.ou_dn
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{}}' match
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP"}' match
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"colour":"red"}}' match.colour
bad POST /api/v1/moving-rules '{"name":"x","order":-1,"group":"/Managed devices/ByIP","match":{"os":"Linux"}}' order
bad POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/ByIP","match":{"os":"Linux"},"mode":"sometimes"}' mode
bad POST /api/v1/moving-rules '{"order":1,"group":"/Managed devices/ByIP","match":{"os":"Linux"}}' name
bad POST /api/v1/moving-rules '{"name":"x","order":1,"match":{"os":"Linux"}}' group
req POST /api/v1/moving-rules '{"name":"x","order":1,"group":"/Managed devices/Nowhere","match":{"os":"Linux"}}' 404 "a missing group"
req DELETE /api/v1/moving-rules/999999 404 "DELETE a missing moving rule"

step "a moving rule by IP range places a new agent"
# The agent's address as the server saw it in its inventory.
S1_IP=$(dev_field "$S1" '.addresses | map(select(test("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$"))) | .[0] // empty')
[ -n "$S1_IP" ] || fail "s1 has no IPv4 address: $(dev_field "$S1" .addresses)"
NET=$(printf '%s' "$S1_IP" | awk -F. '{ print $1 "." $2 "." $3 ".0/24" }')
req POST /api/v1/moving-rules "{\"name\":\"by ip\",\"order\":10,\"group\":\"/Managed devices/ByIP\",\"match\":{\"ip_cidr\":\"$NET\"}}" \
    201 "moving rule by IP"
M_IP=$(json .id)
assert_eq once "$(json .mode)" "default mode"
assert_eq "/Managed devices/ByIP" "$(json .group_path)" "group_path"
# A policy on the target group: a placed agent must get it (pushed).
req POST /api/v1/policies '{"group":"/Managed devices/ByIP","product":"canopy-agent","name":"by ip","settings":{"placed_by":{"value":"by ip"}}}' \
    201 "a policy on ByIP"
agent_enroll s2
agent_start s2
wait_for "device s2 listed" 30 listed s2
S2=$(dev_id s2)
BYIP=$(gid "/Managed devices/ByIP")
placed_in() { run_rules; [ "$(group_of "$1")" = "$2" ]; }
wait_for "s2 placed by IP" 30 placed_in "$S2" "$BYIP"
has_group_policy() {
	[ "$(jq -r '.settings["canopy-agent"].placed_by // empty' \
	    "$(agent_dir s2)/policy.json" 2>/dev/null)" = "by ip" ]
}
wait_for "s2's agent to get ByIP's policy once placed" 15 has_group_policy
assert_contains "$(events_of "$S2" device_moved)" \
    "moved to /Managed devices/ByIP by moving rule by ip" "device_moved event"
# s1 was enrolled into the pool before the rule: it is placed too.
wait_for "s1 placed by IP" 10 placed_in "$S1" "$BYIP"
req DELETE "/api/v1/moving-rules/$M_IP" 204 "delete the IP rule"

step "moving rules by DNS suffix, OS and source (canopyctl)"
# Devices as discovery would report them, in the pool.
mkdev() {	# NAME FQDN IP OS SOURCE
	pg_sql "INSERT INTO devices (vs_id, group_id, name, fqdn, ip, os, source)
	    VALUES (0, $POOL, '$1', '$2', '{$3}', '$4', '$5') RETURNING id"
}
D_DNS=$(mkdev d-dns pc1.berlin.corp.example 10.20.0.5 'Windows 11' directory)
D_OS=$(mkdev d-os srv.other.example 10.30.0.5 'Debian GNU/Linux 12 (bookworm)' directory)
D_SRC=$(mkdev d-src nas.other.example 10.40.0.5 'FreeBSD' network)
ctl moving-rule create --name "by dns" --order 20 --group "/Managed devices/ByDNS" \
    --dns-suffix corp.example >/dev/null || fail "moving-rule create --dns-suffix"
ctl moving-rule create --name "by os" --order 30 --group "/Managed devices/ByOS" \
    --os debian >/dev/null || fail "moving-rule create --os"
ctl moving-rule create --name "by source" --order 40 --group "/Managed devices/BySource" \
    --source network >/dev/null || fail "moving-rule create --source"
out=$(ctl moving-rule list) || fail "moving-rule list"
assert_contains "$out" "by dns" "canopyctl moving-rule list"
run_rules
assert_eq "$(gid "/Managed devices/ByDNS")" "$(group_of "$D_DNS")" "placed by DNS suffix"
assert_eq "$(gid "/Managed devices/ByOS")" "$(group_of "$D_OS")" "placed by OS"
assert_eq "$(gid "/Managed devices/BySource")" "$(group_of "$D_SRC")" "placed by source"
for id in $(ctl --json moving-rule list | jq -r '.rules[].id'); do
	ctl moving-rule delete "$id" >/dev/null || fail "moving-rule delete $id"
done
api GET /api/v1/moving-rules >/dev/null
assert_eq 0 "$(json '.rules | length')" "all moving rules deleted"

step "rule order: the first match wins"
D_ORD=$(mkdev d-ord o.example 10.50.0.5 Linux directory)
req POST /api/v1/moving-rules '{"name":"second","order":20,"group":"/Managed devices/Second","match":{"ip_cidr":"10.50.0.0/16"}}' 201 "second"
req POST /api/v1/moving-rules '{"name":"first","order":10,"group":"/Managed devices/First","match":{"ip_cidr":"10.50.0.0/24"}}' 201 "first"
run_rules
assert_eq "$(gid "/Managed devices/First")" "$(group_of "$D_ORD")" "the lower order won"

step "once: a placed device stays when its attributes change"
pg_sql "UPDATE devices SET ip = '{10.50.9.9}' WHERE id = '$D_ORD'" >/dev/null
run_rules
assert_eq "$(gid "/Managed devices/First")" "$(group_of "$D_ORD")" "once: not moved again"
# Nor is a device outside the pool taken by a once rule.
D_OUT=$(pg_sql "INSERT INTO devices (vs_id, group_id, name, ip, source)
    VALUES (0, $(gid "/Managed devices/ByOS"), 'd-out', '{10.50.0.7}', 'directory') RETURNING id")
run_rules
assert_eq "$(gid "/Managed devices/ByOS")" "$(group_of "$D_OUT")" "once: only the pool"

step "always: moved again when the attributes change"
req POST /api/v1/moving-rules '{"name":"always1","order":5,"group":"/Managed devices/Always1","match":{"ip_cidr":"10.61.0.0/16"},"mode":"always"}' 201 "always1"
req POST /api/v1/moving-rules '{"name":"always2","order":6,"group":"/Managed devices/Always2","match":{"ip_cidr":"10.62.0.0/16"},"mode":"always"}' 201 "always2"
pg_sql "UPDATE devices SET ip = '{10.61.0.1}' WHERE id = '$D_OUT'" >/dev/null
run_rules
assert_eq "$(gid "/Managed devices/Always1")" "$(group_of "$D_OUT")" "always: outside the pool too"
pg_sql "UPDATE devices SET ip = '{10.62.0.1}' WHERE id = '$D_OUT'" >/dev/null
run_rules
assert_eq "$(gid "/Managed devices/Always2")" "$(group_of "$D_OUT")" "always: again on change"
assert_eq 2 "$(events_of "$D_OUT" device_moved | wc -l)" "two device_moved events"
run_rules
assert_eq 2 "$(events_of "$D_OUT" device_moved | wc -l)" "no move without a change"

step "rules need an administrator; everyone reads"
pw='rules-auditor-pw-1'
printf '%s\n' "$pw" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" admin-add aud --role auditor \
    >>"$TEST_DIR/admin-add.log" 2>&1 || fail "admin-add aud: $(tail -n 5 "$TEST_DIR/admin-add.log")"
api_basic aud "$pw" GET /api/v1/moving-rules >/dev/null
assert_status 200 "an auditor reads moving rules"
api_basic aud "$pw" GET /api/v1/status-rules >/dev/null
assert_status 200 "an auditor reads status rules"
api_basic aud "$pw" POST /api/v1/rules/run >/dev/null
assert_status 403 "an auditor may not run rules"
api_basic aud "$pw" POST /api/v1/status-rules '{"name":"a","kind":"disk_full","severity":"warning","params":{"percent":50}}' >/dev/null
assert_status 403 "an auditor may not create status rules"
api_basic aud "$pw" DELETE "/api/v1/status-rules/$R_ERR" >/dev/null
assert_status 403 "an auditor may not delete status rules"

step "event retention by count"
pg_sql "INSERT INTO events (vs_id, device_id, agent_event_id, severity, type, time, text)
    SELECT 0, '$D_ORD', 'x' || g, 'info', 'flood', now() - g * interval '1 second', ''
    FROM generate_series(1, 1010) g" >/dev/null
pruned() { [ "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$D_ORD'")" -le 1000 ]; }
wait_for "events pruned to 1000 by the timer" 40 pruned
assert_eq 0 "$(pg_sql "SELECT count(*) FROM events WHERE device_id = '$D_ORD'
    AND agent_event_id IN ('x1001', 'x1010')")" "the oldest went first"

step "event retention by age"
# Stored long ago (received), whatever the device's clock said (time).
pg_sql "INSERT INTO events (vs_id, device_id, severity, type, time, text, received)
    VALUES (0, '$D_DNS', 'info', 'ancient', now() - interval '400 days', '',
    now() - interval '400 days'),
    (0, '$D_DNS', 'info', 'late-clock', now() - interval '400 days', '', now())" >/dev/null
# The same for events mirrored from a server below.
M=5b1c0000-0000-4000-8000-00000000a9e5
pg_sql "INSERT INTO hier_events (oid, origin, version, link_id, vs, severity,
    type, time, received) VALUES
    ('$M/1', '$M', 1, 0, 'main', 'info', 'ancient', now() - interval '400 days',
    now() - interval '400 days'),
    ('$M/2', '$M', 1, 0, 'main', 'info', 'late-clock',
    now() - interval '400 days', now())" >/dev/null
gone() {
	[ "$(pg_sql "SELECT count(*) FROM events WHERE type = 'ancient'")" = 0 ] &&
	[ "$(pg_sql "SELECT count(*) FROM hier_events WHERE type = 'ancient'")" = 0 ]
}
wait_for "an old event pruned, and an old mirrored one" 40 gone
assert_eq 1 "$(pg_sql "SELECT count(*) FROM events WHERE type = 'late-clock'")" \
    "an event stored now but dated 400 days ago by its device is kept"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM hier_events WHERE type = 'late-clock'")" \
    "a mirrored event stored now but dated 400 days ago is kept"

agent_stop s2
canopyd_stop
