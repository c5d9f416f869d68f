#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# IP-range scans of network namespaces on a bridge in 10.77.2.0/24: hosts
# alive by ICMP, by an open port, by a refused port (no ICMP), with and
# without PTR names (dnsmasq on the bridge address, canopyd's dns-server);
# exactly those are found with their names and ports.  Hosts merge with
# known devices by DNS name and by address, else become new 'ipscan'
# devices in the unassigned pool that a moving rule then places; a rescan
# refreshes last_visible without new devices.  Bad ranges are 400s naming
# the field.  netns_guard keeps every scan inside our own namespaces.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_netns.sh"

need_bin canopyd
need_bin canopyctl
command -v dnsmasq >/dev/null || skip "no dnsmasq"

# The network: bridge 10.77.2.1, hosts in the scanned 10.77.2.64/26.
netns_bridge 10.77.2.1/24
netns_host web 10.77.2.70/24	# ICMP, ports 22 and 8080, web1.scan.test
netns_host db 10.77.2.80/24	# no ICMP, port 8080, db1.scan.test
netns_host quiet 10.77.2.90/24	# ICMP only, no name
netns_host prn 10.77.2.100/24	# no ICMP, no port: refuses, printer.scan.test
netns_no_icmp db
netns_no_icmp prn
netns_listen web 22 8080
netns_listen db 8080
netns_wait_listen web 22
netns_wait_listen web 8080
netns_wait_listen db 8080

DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --no-dhcp-interface="*" --bind-interfaces --listen-address=10.77.2.1 \
    --port="$DNS_PORT" --pid-file="$TEST_DIR/dnsmasq.pid" --user=root \
    --log-facility="$TEST_DIR/dnsmasq-queries.txt" --log-queries \
    --host-record=web1.scan.test,10.77.2.70 \
    --host-record=db1.scan.test,10.77.2.80 \
    --host-record=printer.scan.test,10.77.2.100 --bogus-priv \
    --local=/ip6.arpa/ --local=/127.in-addr.arpa/ \
    >>"$TEST_DIR/dnsmasq.log" 2>&1 &
track_pid $!
dns_up() { dig +short +time=1 +tries=1 -p "$DNS_PORT" @10.77.2.1 -x 10.77.2.70 2>/dev/null | grep -q web1; }
if command -v dig >/dev/null; then
	wait_for "dnsmasq to answer" 10 dns_up
else
	dns_port_up() { ss -Hlun "sport = :$DNS_PORT" | grep -q 10.77.2.1; }
	wait_for "dnsmasq to listen" 10 dns_port_up
fi

pg_start
canopyd_start "dns-server 10.77.2.1:$DNS_PORT"
admin_create admin 'ipscan-test-pw-1'
api_login
ctl_login

jqc() { printf '%s' "$API_BODY" | jq -c "$1"; }
bad() {	# BODY FIELD: 400 naming FIELD
	api POST /api/v1/ip-ranges "$1" >/dev/null
	assert_status 400 "POST /ip-ranges $1"
	assert_error_body "POST /ip-ranges $1"
	assert_match "$(json .error.message)" "^$2" "message of POST /ip-ranges $1"
}

step "bad input"
bad '{"name":"x","cidr":"10.0.0.0/8"}' 'cidr: 10.0.0.0/8: 16777216 addresses, more than the limit of 65536'
bad '{"name":"x","cidr":"10.77.2.1/24"}' 'cidr: .*host bits are set'
bad '{"name":"x","cidr":"10.77.2.0/33"}' 'cidr: .*prefix length'
bad '{"name":"x","cidr":"not-a-network"}' 'cidr: '
bad '{"name":"x","cidr":"10.77.2.0/24","start":"10.77.2.1","end":"10.77.2.2"}' 'cidr: give either'
bad '{"name":"x","start":"10.77.2.1"}' 'end: required'
bad '{"name":"x","start":"10.77.2.9","end":"10.77.2.1"}' 'start: .*start is after end'
bad '{"name":"x","start":"10.77.2.1","end":"fd00::1"}' 'start: .*different address families'
bad '{"name":"x","start":"10.77.2.1","end":"bogus"}' "end: .*end 'bogus'"
bad '{"name":"x","start":"10.0.0.0","end":"10.1.0.0"}' 'start: .*65537 addresses'
bad '{"name":"x"}' 'cidr: required'
bad '{"cidr":"10.77.2.0/24"}' 'name'
bad '{"name":"x","cidr":"10.77.2.0/24","tcp_ports":[0]}' 'tcp_ports\[0\]'
bad '{"name":"x","cidr":"10.77.2.0/24","tcp_ports":[22,22]}' 'tcp_ports\[1\]: port 22 is given twice'
bad '{"name":"x","cidr":"10.77.2.0/24","tcp_ports":"22"}' 'tcp_ports: must be an array'
bad '{"name":"x","cidr":"10.77.2.0/24","tcp_ports":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}' 'tcp_ports: at most 16'
bad '{"name":"x","cidr":"10.77.2.0/24","interval_s":5}' 'interval_s'
bad '{"name":"x","cidr":"10.77.2.0/24","rate_pps":0}' 'rate_pps'
bad '{"name":"x","cidr":"10.77.2.0/24","rate_pps":20001}' 'rate_pps'
bad '{"name":"x","cidr":"10.77.2.0/24","concurrency":257}' 'concurrency'
bad '{"name":"x","cidr":"10.77.2.0/24","colour":"red"}' 'colour'
api GET /api/v1/ip-ranges/999999 >/dev/null
assert_status 404 "GET unknown range"
api POST /api/v1/ip-ranges/nope/scan >/dev/null
assert_status 404 "scan unknown range"
out=$(ctl ip-range create --name x --cidr 10.0.0.0/8 2>&1) &&
    fail "canopyctl accepted a /8"
assert_contains "$out" "more than the limit" "canopyctl ip-range create /8"
api GET /api/v1/ip-ranges >/dev/null
assert_eq 0 "$(json '.ip_ranges | length')" "no range was stored by bad input"

step "known devices before the scan"
POOL=$(pg_sql "SELECT id FROM groups WHERE vs_id = 0 AND kind = 'unassigned'")
D_WEB=$(pg_sql "INSERT INTO devices (vs_id, group_id, name, fqdn, ip, source)
    VALUES (0, $POOL, 'web1', 'web1.scan.test', '{192.0.2.7}', 'agent') RETURNING id")
D_QUIET=$(pg_sql "INSERT INTO devices (vs_id, group_id, name, ip, source)
    VALUES (0, $POOL, 'quiet', '{10.77.2.90}', 'directory') RETURNING id")
api POST /api/v1/groups '{"path":"/Managed devices/Printers"}' >/dev/null
assert_status 201 "POST /groups Printers"
api POST /api/v1/moving-rules '{"name":"printers","order":1,"group":"/Managed devices/Printers","match":{"ip_cidr":"10.77.2.96/28"}}' >/dev/null
assert_status 201 "POST /moving-rules"

step "scan 10.77.2.64/26"
RANGE=10.77.2.64/26
netns_guard "$RANGE"
api POST /api/v1/ip-ranges "{\"name\":\"lab\",\"cidr\":\"$RANGE\",\"tcp_ports\":[22,8080,9999]}" >/dev/null
assert_status 201 "POST /ip-ranges"
RID=$(json .id)
assert_eq "$RANGE" "$(json .cidr)" "cidr of the new range"
assert_eq "idle" "$(json .state)" "state of the new range"
assert_eq "[22,8080,9999]" "$(jqc .tcp_ports)" "tcp_ports"
assert_eq 2000/256 "$(json '"\(.rate_pps)/\(.concurrency)"')" "default rate_pps and concurrency"

api POST "/api/v1/ip-ranges/$RID/scan" >/dev/null
assert_status 202 "POST /ip-ranges/$RID/scan"
scan_over() {
	api GET "/api/v1/ip-ranges/$RID" >/dev/null
	[ "$(json .state)" = failed ] && fail "scan failed: $(json .last_error)"
	[ "$(json .state)" = idle ] && [ "$(json .last_scan)" != null ]
}
wait_for "the scan of $RANGE to end" 30 scan_over
step "scan: $(jqc '{state,alive,scanned,duration_ms}')"
assert_eq 4 "$(json .alive)" "alive"
assert_eq 62 "$(json .scanned)" "scanned (a /26 without network and broadcast)"
hosts=$(jqc '[.hosts[] | {ip, name, icmp, tcp_ports}]')
assert_eq '[{"ip":"10.77.2.70","name":"web1.scan.test","icmp":true,"tcp_ports":[22,8080]},{"ip":"10.77.2.80","name":"db1.scan.test","icmp":false,"tcp_ports":[8080]},{"ip":"10.77.2.90","name":null,"icmp":true,"tcp_ports":[]},{"ip":"10.77.2.100","name":"printer.scan.test","icmp":false,"tcp_ports":[]}]' \
    "$hosts" "the hosts found"

step "devices"
assert_eq "$D_WEB" "$(json '.hosts[] | select(.ip == "10.77.2.70") | .device')" "web1 merged by DNS name"
assert_eq "$D_QUIET" "$(json '.hosts[] | select(.ip == "10.77.2.90") | .device')" "quiet merged by address"
assert_eq "agent|{192.0.2.7,10.77.2.70}|t" "$(pg_sql "SELECT source, ip, last_visible IS NOT NULL FROM devices WHERE id = '$D_WEB'")" "web1 device"
assert_eq "directory|{10.77.2.90}|t" "$(pg_sql "SELECT source, ip, last_visible IS NOT NULL FROM devices WHERE id = '$D_QUIET'")" "quiet device"
assert_eq "db1|db1.scan.test|{10.77.2.80}|unassigned" "$(pg_sql "SELECT d.name, d.fqdn, d.ip, g.kind FROM devices d JOIN groups g ON g.id = d.group_id WHERE d.source = 'ipscan' AND d.name = 'db1'")" "new device db1"
assert_eq 2 "$(pg_sql "SELECT count(*) FROM devices WHERE source = 'ipscan'")" "new ipscan devices"
assert_eq 4 "$(pg_sql "SELECT count(*) FROM devices")" "devices in all"
api POST /api/v1/rules/run >/dev/null
assert_status 202 "POST /rules/run"
assert_eq "/Managed devices/Printers" "$(pg_sql "SELECT '/' || p.name || '/' || g.name FROM devices d JOIN groups g ON g.id = d.group_id JOIN groups p ON p.id = g.parent WHERE d.name = 'printer'")" "printer placed by the moving rule"

step "rescan refreshes last_visible, adds nothing"
t0=$(pg_sql "SELECT now()")
out=$(ctl ip-range scan "$RID" --wait) || fail "canopyctl ip-range scan --wait: $out"
assert_contains "$out" "web1.scan.test" "canopyctl ip-range scan --wait"
assert_contains "$out" "22,8080" "canopyctl ip-range scan --wait: ports"
assert_eq 4 "$(pg_sql "SELECT count(*) FROM devices")" "devices after the rescan"
assert_eq 4 "$(pg_sql "SELECT count(*) FROM devices WHERE last_visible > '$t0'")" "last_visible refreshed on every device"

step "a start-end range, and canopyctl"
netns_guard 10.77.2.95-10.77.2.105
out=$(ctl ip-range create --name span --start 10.77.2.95 --end 10.77.2.105 --ports 8080 --rate 300 --concurrency 4) ||
    fail "canopyctl ip-range create: $out"
SID=$(echo "$out" | awk '{print $3}')
out=$(ctl ip-range scan "$SID" --wait) || fail "canopyctl scan span: $out"
api GET "/api/v1/ip-ranges/$SID" >/dev/null
assert_eq 10.77.2.95 "$(json .start)" "start"
assert_eq 10.77.2.105 "$(json .end)" "end"
assert_eq 11 "$(json .scanned)" "scanned of the span"
assert_eq 300/4 "$(json '"\(.rate_pps)/\(.concurrency)"')" "rate_pps and concurrency of the span"
assert_eq '["10.77.2.100"]' "$(jqc '[.hosts[].ip]')" "the span finds the printer only"
out=$(ctl ip-range list) || fail "canopyctl ip-range list"
assert_contains "$out" "10.77.2.95-10.77.2.105" "canopyctl ip-range list"
assert_contains "$out" "$RANGE" "canopyctl ip-range list"
ctl ip-range delete "$SID" >/dev/null || fail "canopyctl ip-range delete"
api GET "/api/v1/ip-ranges/$SID" >/dev/null
assert_status 404 "deleted range"
step "a scheduled range scans by itself"
netns_guard 10.77.2.64/29
api POST /api/v1/ip-ranges '{"name":"sched","cidr":"10.77.2.64/29","interval_s":60,"tcp_ports":[22]}' >/dev/null
assert_status 201 "POST /ip-ranges with interval_s"
TID=$(json .id)
assert_eq 60 "$(json .interval_s)" "interval_s"
sched_over() {
	api GET "/api/v1/ip-ranges/$TID" >/dev/null
	[ "$(json .last_scan)" != null ] && [ "$(json .state)" = idle ]
}
wait_for "the scheduled range to be scanned" 30 sched_over
assert_eq '["10.77.2.70"]' "$(jqc '[.hosts[].ip]')" "the scheduled scan"
assert_ne null "$(json .next_scan)" "next_scan"
api DELETE "/api/v1/ip-ranges/$TID" >/dev/null
assert_status 204 "DELETE /ip-ranges/$TID"
api DELETE "/api/v1/ip-ranges/$RID" >/dev/null
assert_status 204 "DELETE /ip-ranges/$RID"
assert_eq 4 "$(pg_sql "SELECT count(*) FROM devices")" "devices stay when their range goes"
assert_eq 6 "$(pg_sql "SELECT count(*) FROM audit WHERE action IN ('ip_range_create', 'ip_range_delete')")" "audit rows"

step "IPv6 and loopback: canopyd's API port, open on 127.0.0.1, refused on ::1"
lo_scan() {	# RANGE EXPECTED_PORTS
	api POST /api/v1/ip-ranges "{\"name\":\"lo $1\",\"cidr\":\"$1\",\"tcp_ports\":[$CANOPYD_API_PORT]}" >/dev/null
	assert_status 201 "POST /ip-ranges $1"
	LID=$(json .id)
	out=$(ctl ip-range scan "$LID" --wait --json) || fail "scan $1: $out"
	assert_eq "[{\"ip\":\"${1%/*}\",\"icmp\":true,\"tcp_ports\":$2}]" \
	    "$(printf '%s' "$out" | jq -c '[.hosts[] | {ip, icmp, tcp_ports}]')" "scan of $1"
}
lo_scan 127.0.0.1/32 "[$CANOPYD_API_PORT]"
lo_scan ::1/128 "[]"

step "a stop in the middle of a scan; the next start scans again"
netns_guard "$RANGE"
api POST /api/v1/ip-ranges "{\"name\":\"again\",\"cidr\":\"$RANGE\",\"tcp_ports\":[22,8080]}" >/dev/null
assert_status 201 "POST /ip-ranges again"
AID=$(json .id)
api POST "/api/v1/ip-ranges/$AID/scan" >/dev/null
assert_status 202 "POST /ip-ranges/$AID/scan"
is_scanning() { [ "$(pg_sql "SELECT state FROM ip_ranges WHERE id = $AID")" = scanning ]; }
wait_for "the scan to start" 10 is_scanning
canopyd_stop
canopyd_start
RID=$AID
LAST=null
wait_for "the interrupted scan to be done after the restart" 30 scan_over
assert_eq 4 "$(json .alive)" "alive after the restart"

canopyd_stop
