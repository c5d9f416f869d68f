# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A private MIT Kerberos KDC for tests (source after lib.sh).
#
#   krb_start [REALM...]        krb5kdc for the realms (default CORP.EXAMPLE
#                               and OTHER.EXAMPLE) on a free loopback port;
#                               exports KRB5_CONFIG, KRB5_KDC_PROFILE (so
#                               canopyd started later uses them too); sets
#                               KRB_DIR, KRB_PORT.  KRB_CLOCKSKEW (seconds,
#                               default 300) goes in krb5.conf.
#   krb_addprinc PRINC [PASS]   a principal (random key without PASS)
#   krb_ktadd KEYTAB PRINC...   export keys of PRINCs into KEYTAB
#   krb_kinit PRINC PASS [LIFE] a fresh ccache for PRINC: sets KRB5CCNAME
#   krb_curl ARGS...            curl --negotiate -u : with the canopyd CA,
#                               status in KRB_STATUS, body in KRB_BODY,
#                               headers in $TEST_DIR/.krb-headers
#   krb_capture_token           print a fresh SPNEGO token for
#                               HTTP/localhost from the current ccache, one
#                               never sent to canopyd (a one-shot HTTP
#                               server of our own takes it)

krb_start() {
	local realms=("$@") r
	[ ${#realms[@]} -gt 0 ] || realms=(CORP.EXAMPLE OTHER.EXAMPLE)
	command -v krb5kdc >/dev/null || skip "krb5kdc is not installed"
	KRB_DIR=$TEST_DIR/krb
	mkdir -p "$KRB_DIR"
	KRB_PORT=$(free_port)
	export KRB5_CONFIG=$KRB_DIR/krb5.conf
	export KRB5_KDC_PROFILE=$KRB_DIR/kdc.conf
	# No replay cache of the client's own in /var/tmp.
	export KRB5RCACHEDIR=$KRB_DIR
	{
		echo "[libdefaults]"
		echo "	default_realm = ${realms[0]}"
		echo "	dns_lookup_kdc = false"
		echo "	dns_lookup_realm = false"
		echo "	dns_canonicalize_hostname = false"
		echo "	rdns = false"
		echo "	clockskew = ${KRB_CLOCKSKEW:-300}"
		echo "	udp_preference_limit = 1"
		echo "[realms]"
		for r in "${realms[@]}"; do
			echo "	$r = {"
			echo "		kdc = 127.0.0.1:$KRB_PORT"
			echo "	}"
		done
	} >"$KRB5_CONFIG"
	{
		echo "[kdcdefaults]"
		echo "	kdc_listen = 127.0.0.1:$KRB_PORT"
		echo "	kdc_tcp_listen = 127.0.0.1:$KRB_PORT"
		echo "[realms]"
		for r in "${realms[@]}"; do
			echo "	$r = {"
			echo "		database_name = $KRB_DIR/$r.db"
			echo "		key_stash_file = $KRB_DIR/$r.stash"
			echo "		acl_file = $KRB_DIR/kadm5.acl"
			echo "		max_life = 10h"
			echo "		max_renewable_life = 0"
			echo "	}"
		done
		echo "[logging]"
		echo "	kdc = FILE:$KRB_DIR/kdc.log"
	} >"$KRB5_KDC_PROFILE"
	: >"$KRB_DIR/kadm5.acl"
	for r in "${realms[@]}"; do
		kdb5_util -r "$r" create -s -P "master-$RANDOM$RANDOM" \
		    >>"$KRB_DIR/setup.log" 2>&1 ||
		    fail "kdb5_util create $r: $(tail -n 5 "$KRB_DIR/setup.log")"
	done
	local rargs=()
	for r in "${realms[@]}"; do
		rargs+=(-r "$r")
	done
	krb5kdc -n "${rargs[@]}" >>"$KRB_DIR/krb5kdc.out" 2>&1 &
	KRB_PID=$!
	track_pid "$KRB_PID"
	wait_for "krb5kdc on port $KRB_PORT" 20 _krb_listening
	step "krb5kdc $KRB_PID on 127.0.0.1:$KRB_PORT for ${realms[*]}"
}

_krb_listening() {
	_pid_running "$KRB_PID" ||
	    fail "krb5kdc exited: $(tail -n 20 "$KRB_DIR/krb5kdc.out" "$KRB_DIR/kdc.log" 2>/dev/null)"
	(exec 3<>"/dev/tcp/127.0.0.1/$KRB_PORT") 2>/dev/null
}

_krb_realm_of() {
	case $1 in *@*) echo "${1##*@}" ;; *) sed -n 's/^\tdefault_realm = //p' "$KRB5_CONFIG" ;; esac
}

krb_addprinc() {
	local p=$1 realm
	realm=$(_krb_realm_of "$p")
	if [ $# -gt 1 ]; then
		kadmin.local -r "$realm" -q "addprinc -pw $2 $p" \
		    >>"$KRB_DIR/setup.log" 2>&1
	else
		kadmin.local -r "$realm" -q "addprinc -randkey $p" \
		    >>"$KRB_DIR/setup.log" 2>&1
	fi || fail "addprinc $p: $(tail -n 5 "$KRB_DIR/setup.log")"
}

krb_ktadd() {
	local kt=$1 p realm
	shift
	for p in "$@"; do
		realm=$(_krb_realm_of "$p")
		kadmin.local -r "$realm" -q "ktadd -k $kt -norandkey $p" \
		    >>"$KRB_DIR/setup.log" 2>&1 ||
		    fail "ktadd $p: $(tail -n 5 "$KRB_DIR/setup.log")"
	done
}

krb_kinit() {
	local p=$1 pw=$2 life=${3:-}
	export KRB5CCNAME=FILE:$KRB_DIR/cc.$(printf %s "$p" | tr -c 'A-Za-z0-9' _).$RANDOM
	local args=()
	[ -z "$life" ] || args=(-l "$life")
	printf '%s\n' "$pw" | kinit "${args[@]}" "$p" >>"$KRB_DIR/kinit.log" 2>&1 ||
	    fail "kinit $p: $(tail -n 5 "$KRB_DIR/kinit.log")"
}

krb_curl() {
	local rc=0
	KRB_STATUS=$(curl -s -S --max-time 30 --negotiate -u : \
	    --cacert "$CANOPYD_STATE/ca.pem" -D "$TEST_DIR/.krb-headers" \
	    -o "$TEST_DIR/.krb-body" -w '%{http_code}' "$@" \
	    2>"$TEST_DIR/.krb-err") || rc=$?
	[ "$rc" = 0 ] || fail "curl --negotiate $*: ($rc) $(cat "$TEST_DIR/.krb-err")"
	KRB_BODY=$(cat "$TEST_DIR/.krb-body")
	echo "krb_curl: $* -> $KRB_STATUS $(head -c 300 "$TEST_DIR/.krb-body")" \
	    >>"$TEST_DIR/api.log"
}

# Every value of header NAME of the last krb_curl.
krb_header() {
	tr -d '\r' <"$TEST_DIR/.krb-headers" | awk -v h="$1" '
	    { i = index($0, ":"); if (i == 0) next
	      if (tolower(substr($0, 1, i - 1)) == tolower(h)) {
		v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v } }'
}

krb_capture_token() {
	local port out
	port=$(free_port)
	out=$KRB_DIR/captured.$RANDOM
	python3 - "$port" "$out" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        a = self.headers.get("Authorization", "")
        if a.startswith("Negotiate "):
            open(out, "w").write(a[len("Negotiate "):])
            self.send_response(200)
            self.end_headers()
            self.server.done = True
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", port), H)
s.done = False
s.timeout = 20
while not s.done:
    s.handle_request()
PY
	local pid=$!
	track_pid "$pid"
	_krb_port=$port
	wait_for "token capture server on $port" 10 _krb_capture_up
	curl -s --max-time 20 --negotiate -u : -o /dev/null \
	    "http://localhost:$port/" || true
	wait "$pid" 2>/dev/null || true
	[ -s "$out" ] || fail "krb_capture_token: no token was sent"
	cat "$out"
}

_krb_capture_up() {
	(exec 3<>"/dev/tcp/127.0.0.1/$_krb_port") 2>/dev/null
}
