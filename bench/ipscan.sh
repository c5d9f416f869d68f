#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The IP-scan benchmark (issue 5), called from bench/run.sh or by hand:
# a /22 (10.78.0.0/22) behind a bridge, BENCH_SCAN_HOSTS (40) live hosts in
# their own network namespaces, the rest absent.  canopyd's scan (ICMP
# echo, no TCP ports, reverse DNS from dnsmasq on the bridge) next to
# `nmap -sn` on the same range in the same run, BENCH_SCAN_ROUNDS (3) times
# each, alternating; medians.  nmap runs with the same probe (ICMP echo,
# one retry, no ARP ping, no DNS) at the same packet rate
# (SCAN_RATE_PPS), and once more with its defaults (ARP ping on a local
# network) for reference.  Both must find the same hosts.
#
# CANOPY_BUILD: the optimised build (./build).  Prints a Markdown table.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CANOPY_ROOT=$ROOT
export CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build}
export CANOPY_TEST_NAME=${CANOPY_TEST_NAME:-bench-ipscan}
export CANOPYD_FLAGS=${CANOPYD_FLAGS:-""}
export CANOPYD_LOG_LEVEL=${CANOPYD_LOG_LEVEL:-info}
NHOSTS=${BENCH_SCAN_HOSTS:-40}
ROUNDS=${BENCH_SCAN_ROUNDS:-3}
RANGE=10.78.0.0/22
RATE=$(awk '$2 == "SCAN_RATE_PPS" { print $3 }' "$ROOT/common/canopy_limits.h")

# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=../tests/integration/lib_netns.sh
. "$ROOT/tests/integration/lib_netns.sh"
command -v nmap >/dev/null || skip "no nmap"
command -v dnsmasq >/dev/null || skip "no dnsmasq"
[ "$NHOSTS" -le 40 ] || fail "BENCH_SCAN_HOSTS: at most 40"

say() { printf '%s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

say "ipscan: $NHOSTS hosts in $RANGE"
netns_bridge 10.78.0.1/22
netns_guard "$RANGE"
EXPECT="10.78.0.1"
RECORDS=()
for i in $(seq 0 $((NHOSTS - 1))); do
	a=10.78.$((i % 4)).$((10 + i * 6))
	netns_host "h$i" "$a/22"
	EXPECT="$EXPECT $a"
	RECORDS+=("--host-record=host$i.bench.test,$a")
done
EXPECT=$(printf '%s\n' $EXPECT | sort -V | tr '\n' ' ')

DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.78.0.1 --port="$DNS_PORT" \
    --pid-file="$TEST_DIR/dnsmasq.pid" --user=root --bogus-priv "${RECORDS[@]}" \
    >>"$TEST_DIR/dnsmasq.log" 2>&1 &
track_pid $!
dns_port_up() { ss -Hlun "sport = :$DNS_PORT" | grep -q 10.78.0.1; }
wait_for "dnsmasq to listen" 10 dns_port_up

pg_start
canopyd_start "dns-server 10.78.0.1:$DNS_PORT"
admin_create bench "bench-password-$$"
api_login
api POST /api/v1/ip-ranges "{\"name\":\"bench\",\"cidr\":\"$RANGE\",\"rate_pps\":$RATE}" >/dev/null
assert_status 201 "POST /ip-ranges"
RID=$(json .id)

scan_over() {
	api GET "/api/v1/ip-ranges/$RID" >/dev/null
	[ "$(json .state)" = failed ] && fail "scan failed: $(json .last_error)"
	[ "$(json .state)" = idle ] && [ "$(json .last_scan)" != "$LAST" ]
}
nmap_hosts() {	# ARGS...: the addresses nmap finds up
	nmap "$@" -oG - "$RANGE" 2>>"$TEST_DIR/nmap.err" |
	    awk '/Status: Up/ { print $2 }' | sort -V | tr '\n' ' '
}

: >"$TEST_DIR/c.ms"; : >"$TEST_DIR/cw.ms"; : >"$TEST_DIR/n.ms"
LAST=null
for r in $(seq "$ROUNDS"); do
	netns_guard "$RANGE"
	T0=$(now_ms)
	api POST "/api/v1/ip-ranges/$RID/scan" >/dev/null
	assert_status 202 "POST /ip-ranges/$RID/scan"
	wait_for "the scan to end" 120 scan_over
	T1=$(now_ms)
	LAST=$(json .last_scan)
	echo "$(json .duration_ms)" >>"$TEST_DIR/c.ms"
	echo $((T1 - T0)) >>"$TEST_DIR/cw.ms"
	GOT=$(json '.hosts[].ip' | sort -V | tr '\n' ' ')
	NAMED=$(json '[.hosts[] | select(.name != null)] | length')
	[ "$GOT" = "$EXPECT" ] ||
	    say "warning: canopy found [$GOT], expected [$EXPECT]"

	netns_guard "$RANGE"
	T0=$(now_ms)
	NGOT=$(nmap_hosts -sn -n -PE --disable-arp-ping --max-retries 1 \
	    --max-rate "$RATE")
	T1=$(now_ms)
	echo $((T1 - T0)) >>"$TEST_DIR/n.ms"
	[ "$NGOT" = "$EXPECT" ] ||
	    say "warning: nmap found [$NGOT], expected [$EXPECT]"
	say "ipscan round $r: canopy $(tail -1 "$TEST_DIR/c.ms") ms" \
	    "(wall $(tail -1 "$TEST_DIR/cw.ms") ms), nmap $(tail -1 "$TEST_DIR/n.ms") ms"
done
netns_guard "$RANGE"
T0=$(now_ms)
DGOT=$(nmap_hosts -sn -n)
T1=$(now_ms)
ND_MS=$((T1 - T0))
[ "$DGOT" = "$EXPECT" ] || say "warning: nmap -sn found [$DGOT]"

C_MS=$(median <"$TEST_DIR/c.ms")
CW_MS=$(median <"$TEST_DIR/cw.ms")
N_MS=$(median <"$TEST_DIR/n.ms")
SAME=no
[ "$GOT" = "$EXPECT" ] && [ "$NGOT" = "$EXPECT" ] && SAME=yes
ALIVE=$(printf '%s\n' $EXPECT | wc -l)

cat <<EOF2

## $(date -u +%Y-%m-%d) — \`bench/ipscan.sh\` ($(nproc) cores)

$RANGE (1022 addresses), $ALIVE alive ($NHOSTS namespaces and the bridge), $RATE packets/s, median of $ROUNDS.

| what | canopy | nmap | ratio nmap/canopy | target |
|---|---|---|---|---|
| scan of the /22: ICMP echo, one retry, same rate (nmap \`-sn -n -PE --disable-arp-ping --max-retries 1 --max-rate $RATE\`) | $C_MS ms (scan), $CW_MS ms (API request to stored result, with reverse DNS of $NAMED hosts) | $N_MS ms | $(awk -v c="$C_MS" -v n="$N_MS" 'BEGIN { printf "%.2f", n / c }') | >= 2 |
| same hosts found | $SAME | | | yes |
| for reference: \`nmap -sn -n\` (ARP ping, its own rate) | | $ND_MS ms | $(awk -v c="$C_MS" -v n="$ND_MS" 'BEGIN { printf "%.2f", n / c }') | |
EOF2
canopyd_stop 60
