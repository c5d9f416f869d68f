#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Kerberos SSO with a real Active Directory KDC: a Samba AD DC in a network
# namespace of this test's own (prefix ckrb, 10.77.3.0/24); a service
# account with the SPN HTTP/localhost, its keytab exported by samba-tool and
# uploaded through PUT /auth/kerberos; a domain user's ticket (kinit against
# the DC) logs in to the API with curl --negotiate and with canopyctl.
# Skips (77) only when Samba cannot be provisioned or started here.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_samba.sh"
. "$CANOPY_ROOT/tests/integration/lib_krb.sh"

need_bin canopyd
USERPW='Alice-Domain-Pw1!'
samba_dc_start ckrb 3
kdc_up() {
	samba_running
	(exec 3<>"/dev/tcp/$DC_IP/88") 2>/dev/null
}
wait_for "the Samba KDC on $DC_IP:88" 60 kdc_up

step "a domain user, a service account with HTTP/localhost, its keytab"
samba_tool user create alice "$USERPW"
samba_tool user create canopy-http "Svc-$RANDOM-Pw1!" --random-password
samba_tool spn add HTTP/localhost canopy-http
samba_tool domain exportkeytab "$TEST_DIR/http.keytab" --principal=HTTP/localhost
[ -s "$TEST_DIR/http.keytab" ] || fail "no keytab exported"

# The client's krb5.conf: the DC is the realm's KDC.
mkdir -p "$TEST_DIR/krb"
KRB_DIR=$TEST_DIR/krb
export KRB5_CONFIG=$KRB_DIR/krb5.conf
export KRB5RCACHEDIR=$KRB_DIR
cat >"$KRB5_CONFIG" <<EOC
[libdefaults]
	default_realm = CORP.EXAMPLE
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
[realms]
	CORP.EXAMPLE = {
		kdc = $DC_IP:88
	}
EOC

pg_start
canopyd_start
admin_create admin 'krb-samba-pw-1'
"$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" admin-add alice \
    --principal alice@CORP.EXAMPLE --role auditor </dev/null \
    >>"$TEST_DIR/admin-add.log" 2>&1 || fail "admin-add alice"
body=$(jq -cn --arg k "$(base64 -w0 "$TEST_DIR/http.keytab")" '{keytab_b64: $k}')
api PUT /api/v1/auth/kerberos "$body" >/dev/null
assert_status 200 "upload the AD keytab"
assert_contains "$(json '.principals | join(",")')" "HTTP/localhost@CORP.EXAMPLE"

step "alice's domain ticket logs in"
krb_kinit alice@CORP.EXAMPLE "$USERPW"
krb_curl "$CANOPYD_URL/api/v1/whoami"
[ "$KRB_STATUS" = 200 ] || fail "whoami with an AD ticket: $KRB_STATUS $KRB_BODY $(grep -i kerberos "$CANOPYD_LOG" | tail -n 3)"
assert_eq alice@CORP.EXAMPLE "$(json .principal "$KRB_BODY")"
assert_eq auditor "$(json '.roles[0].role' "$KRB_BODY")"
assert_match "$(krb_header WWW-Authenticate)" '^Negotiate [A-Za-z0-9+/=]{20,}' \
    "mutual-authentication token"
out=$("$CANOPY_BUILD/canopyctl" --config-dir "$TEST_DIR/ctl-ad" login \
    --server "$CANOPYD_URL" --ca "$CANOPYD_STATE/ca.pem" </dev/null 2>&1) ||
    fail "canopyctl login with an AD ticket: $out"
assert_contains "$out" "as alice"
canopyd_stop
