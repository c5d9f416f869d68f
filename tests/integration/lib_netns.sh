# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Network namespaces for the IP-scan test and benchmark, sourced after
# lib.sh.  Everything is named with the prefix 'cscan' and lives in the
# ranges 10.77.2.0/24 (tests) and 10.78.0.0/22 (bench) only; netns_guard
# refuses to let a scan target anything else.  The namespaces have no
# default route, so a stray packet dies at once.  Everything made here is
# removed at exit (the trap below runs before lib.sh's own).
#
#   netns_bridge ADDR/PREFIX      make the bridge (host side, with ADDR);
#                                 sets NETNS_BR
#   netns_host NAME ADDR/PREFIX   a namespace cscan-$$-NAME with one veth in
#                                 the bridge; prints nothing
#   netns_exec NAME CMD...        run CMD inside NAME
#   netns_listen NAME PORT...     a TCP listener on PORTs inside NAME
#                                 (accept and close), tracked for cleanup
#   netns_no_icmp NAME            NAME ignores ICMP echo requests
#   netns_guard RANGE             fail unless every address of RANGE
#                                 ("a.b.c.d/n" or "a-b") is inside the
#                                 allowed ranges and routed into NETNS_BR
#   netns_wait_listen NAME PORT   wait until NAME listens on PORT

NETNS_ALLOWED="10.77.2.0/24 10.78.0.0/22"
NETNS_BR=""
_NETNS_LIST=""
_NETNS_PIDS=""
_NETNS_N=0
NETNS_PY=/usr/bin/python3

_netns_cleanup() {
	local ns pid
	set +e
	for pid in $_NETNS_PIDS; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in $_NETNS_LIST; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$NETNS_BR" ] && ip link del "$NETNS_BR" 2>/dev/null
	return 0
}
trap '_netns_rc=$?; _netns_cleanup; (exit $_netns_rc); _lib_cleanup' EXIT

netns_bridge() {
	NETNS_BR=cscanb$(($$ % 10000000))
	ip link add "$NETNS_BR" type bridge ||
	    fail "netns: cannot make bridge $NETNS_BR"
	ip addr add "$1" dev "$NETNS_BR" || fail "netns: address $1"
	ip link set "$NETNS_BR" up || fail "netns: bridge up"
}

netns_host() {
	local name=$1 addr=$2 ns=cscan-$$-$1 vh vn
	_NETNS_N=$((_NETNS_N + 1))
	vh=cscan$(($$ % 100000))h$_NETNS_N
	vn=cscan$(($$ % 100000))n$_NETNS_N
	ip netns add "$ns" || fail "netns: cannot add $ns"
	_NETNS_LIST="$_NETNS_LIST $ns"
	ip link add "$vh" type veth peer name "$vn" || fail "netns: veth $vh"
	ip link set "$vn" netns "$ns" || fail "netns: move $vn"
	ip link set "$vh" master "$NETNS_BR" || fail "netns: $vh into bridge"
	ip link set "$vh" up || fail "netns: $vh up"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$addr" dev "$vn" || fail "netns: address $addr"
	ip -n "$ns" link set "$vn" up || fail "netns: $vn up"
}

netns_exec() {
	local name=$1
	shift
	ip netns exec "cscan-$$-$name" "$@"
}

netns_no_icmp() {
	netns_exec "$1" sysctl -q -w net.ipv4.icmp_echo_ignore_all=1 ||
	    fail "netns: $1: cannot turn off ICMP echo"
}

netns_listen() {
	local name=$1
	shift
	ip netns exec "cscan-$$-$name" "$NETNS_PY" -c '
import select, socket, sys
ss = []
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    s.listen(128)
    ss.append(s)
while True:
    r, _, _ = select.select(ss, [], [])
    for s in r:
        c, _ = s.accept()
        c.close()
' "$@" >>"$TEST_DIR/netns-$name.log" 2>&1 &
	_NETNS_PIDS="$_NETNS_PIDS $!"
}

_netns_listening() {
	netns_exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN
}

netns_wait_listen() {
	wait_for "$1 listening on $2" 10 _netns_listening "$1" "$2"
}

# Every address of the range inside NETNS_ALLOWED, and the first and last
# routed into our bridge: a typo never scans someone else's network.
netns_guard() {
	local range=$1 ends
	[ -n "$NETNS_BR" ] || fail "netns_guard: no bridge"
	ends=$("$NETNS_PY" - "$range" $NETNS_ALLOWED <<'PY'
import ipaddress, sys
r = sys.argv[1]
if "-" in r:
    a, b = (ipaddress.ip_address(x) for x in r.split("-"))
else:
    n = ipaddress.ip_network(r, strict=True)
    a, b = n[0], n[-1]
ok = [ipaddress.ip_network(x) for x in sys.argv[2:]]
if not any(a in n and b in n for n in ok):
    sys.exit(1)
print(a, b)
PY
) || fail "netns_guard: $range is not inside $NETNS_ALLOWED: refusing to scan it"
	for a in $ends; do
		ip route get "$a" | grep -q " dev $NETNS_BR " ||
		    fail "netns_guard: $a is not routed into $NETNS_BR: $(ip route get "$a")"
	done
}
