# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A real Samba AD DC for a test, sourced after lib.sh: provisioned in a
# network namespace of the test's own, on a bridge with the host side, and
# removed at exit (the trap below keeps the test's status for lib.sh's).
#
#   samba_dc_start PREFIX OCTET [LINE...]
#       namespace PREFIX-$$-dc on 10.77.OCTET.0/24 (the host 10.77.OCTET.1,
#       the DC DC_IP=10.77.OCTET.13); realm CORP.EXAMPLE, domain CORP, the
#       Administrator's password ADMINPW; LINEs go into smb.conf's
#       [global]; Samba is started (SAMBA_PID) but not waited for.  Skips
#       (77) when Samba is missing or cannot be provisioned here.
#   samba_running
#       true while Samba runs; skips the test when it exited at start
#       (for the test's own wait on the service it needs)
#   samba_tool ARGS...
#       samba-tool on the DC's own database (its smb.conf, no network
#       login, so no wait on the DC's authentication services), output
#       to samba-tool.log; fails the test naming the command
#
# Also set: NS (the namespace), SDIR (Samba's directory).

NS=""
SDIR=$TEST_DIR/samba
SAMBA_PID=""
DC_IP=""
ADMINPW='Canopy-Test-Pw1!'
_SAMBA_BR=""
_SAMBA_VH=""

_samba_cleanup() {
	set +e
	[ -n "$SAMBA_PID" ] && kill -TERM "$SAMBA_PID" 2>/dev/null
	[ -n "$NS" ] &&
	    ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
	[ -n "$SAMBA_PID" ] && wait "$SAMBA_PID" 2>/dev/null
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	[ -n "$_SAMBA_VH" ] && ip link del "$_SAMBA_VH" 2>/dev/null
	[ -n "$_SAMBA_BR" ] && ip link del "$_SAMBA_BR" 2>/dev/null
	return 0
}
trap '_samba_rc=$?; _samba_cleanup; (exit $_samba_rc); _lib_cleanup' EXIT

samba_dc_start() {
	local prefix=$1 octet=$2 host_ip l
	shift 2
	command -v samba >/dev/null && command -v samba-tool >/dev/null ||
	    skip "samba / samba-tool are not installed"
	command -v ip >/dev/null || skip "ip (iproute2) is not installed"
	host_ip=10.77.$octet.1
	DC_IP=10.77.$octet.13
	_SAMBA_BR=$prefix$$b
	_SAMBA_VH=$prefix$$h

	step "network namespace $prefix-$$-dc ($DC_IP)"
	ip netns add "$prefix-$$-dc" || skip "cannot create network namespaces here"
	NS=$prefix-$$-dc
	ip link add "$_SAMBA_BR" type bridge
	ip addr add "$host_ip/24" dev "$_SAMBA_BR"
	ip link set "$_SAMBA_BR" up
	ip link add "$_SAMBA_VH" type veth peer name "${_SAMBA_VH}n"
	ip link set "$_SAMBA_VH" master "$_SAMBA_BR" up
	ip link set "${_SAMBA_VH}n" netns "$NS"
	ip netns exec "$NS" ip link set "${_SAMBA_VH}n" name eth0
	ip netns exec "$NS" ip addr add "$DC_IP/24" dev eth0
	ip netns exec "$NS" ip link set eth0 up
	ip netns exec "$NS" ip link set lo up

	step "provisioning a Samba AD DC"
	mkdir -p "$SDIR"
	if ! ip netns exec "$NS" samba-tool domain provision \
	    --targetdir="$SDIR" --realm=CORP.EXAMPLE --domain=CORP \
	    --server-role=dc --dns-backend=SAMBA_INTERNAL \
	    --adminpass="$ADMINPW" --use-rfc2307 --host-ip="$DC_IP" \
	    --option="interfaces=lo eth0" --option="bind interfaces only=yes" \
	    >"$TEST_DIR/provision.log" 2>&1; then
		tail -5 "$TEST_DIR/provision.log"
		skip "Samba cannot be provisioned here (see provision.log)"
	fi
	for l in "$@" "pid directory = $SDIR/run" \
	    "ncalrpc dir = $SDIR/run/ncalrpc" \
	    "winbindd socket directory = $SDIR/run/winbindd" \
	    "ntp signd socket directory = $SDIR/run/ntp_signd"; do
		sed -i "/^\[global\]/a\\
	$l" "$SDIR/etc/smb.conf"
	done
	mkdir -p "$SDIR/run"
	ip netns exec "$NS" samba -s "$SDIR/etc/smb.conf" -F \
	    --no-process-group -M single >"$TEST_DIR/samba.log" 2>&1 &
	SAMBA_PID=$!
}

samba_running() {
	kill -0 "$SAMBA_PID" 2>/dev/null ||
	    skip "Samba exited at start: $(tail -3 "$TEST_DIR/samba.log")"
}

samba_tool() {
	ip netns exec "$NS" samba-tool "$@" -s "$SDIR/etc/smb.conf" \
	    >>"$TEST_DIR/samba-tool.log" 2>&1 ||
	    fail "samba-tool $*: $(tail -3 "$TEST_DIR/samba-tool.log")"
}
