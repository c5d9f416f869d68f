#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A directory source bound by SASL/GSSAPI with a keytab: a real MIT KDC
# (tests/integration/lib_krb.sh), slapd configured for GSSAPI with its own
# service keytab, and canopyd given only the client's keytab through the
# API (sealed, its own MEMORY credential cache: no KRB5CCNAME, nothing
# process-wide).  A keytab for the wrong principal is a clear error.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_ldap.sh"
. "$CANOPY_ROOT/tests/integration/lib_krb.sh"

need_bin canopyd
command -v slapd >/dev/null || skip "slapd is not installed"
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libgssapiv2.so ] ||
    ls /usr/lib/*/sasl2/libgssapiv2.so >/dev/null 2>&1 ||
    skip "libsasl2-modules-gssapi-mit is not installed"

REALM=CORP.EXAMPLE
krb_start "$REALM"
krb_addprinc "ldap/localhost@$REALM"
krb_addprinc "canopy-dir@$REALM"
krb_addprinc "someone-else@$REALM"
krb_ktadd "$TEST_DIR/slapd.keytab" "ldap/localhost@$REALM"
krb_ktadd "$TEST_DIR/client.keytab" "canopy-dir@$REALM"
krb_ktadd "$TEST_DIR/other.keytab" "someone-else@$REALM"
chmod 644 "$TEST_DIR/slapd.keytab"

step "slapd with SASL/GSSAPI"
bash "$CANOPY_ROOT/tests/fixtures/ldap/gen-tree.sh" 20 5 >"$TEST_DIR/tree.ldif"
LDAP_EXTRA_CONF="sasl-host localhost
sasl-realm $REALM
authz-regexp uid=([^,]*),cn=corp.example,cn=gssapi,cn=auth cn=admin,dc=example"
LDAP_ENV="KRB5_KTNAME=FILE:$TEST_DIR/slapd.keytab KRB5_CONFIG=$KRB5_CONFIG"
LDAP_HOST=localhost
ldap_init dc=example "$TEST_DIR/tree.ldif"
ldap_start

pg_start
canopyd_start
admin_create admin 'dir-gss-pw-1'
api_login

POLLS0=0
polled() {
	api GET "/api/v1/directory/sources/$1" >/dev/null
	[ "$(json .polls)" -gt "$POLLS0" ] && [ "$(json .state)" != polling ]
}
KT=$(base64 -w0 "$TEST_DIR/client.keytab")
api POST /api/v1/directory/sources "{\"name\":\"gss\",\"flavor\":\"ad\",\"url\":\"$LDAP_URL\",\"base_dn\":\"dc=corp,dc=example\",\"bind\":{\"method\":\"gssapi\",\"principal\":\"canopy-dir@$REALM\",\"keytab_b64\":\"$KT\"}}" >/dev/null
assert_status 201 "create a GSSAPI source"
ID=$(json .id)
assert_not_contains "$API_BODY" "$KT" "the keytab is not returned"
assert_match "$(pg_sql "SELECT keytab_sealed FROM directory_sources WHERE id = $ID")" '^v1:' "sealed keytab"
wait_for "the GSSAPI poll" 60 polled "$ID"
assert_eq ok "$(json .state)" "GSSAPI poll: $(json .last_error)"
assert_eq 23 "$(json .counts.computers)" "computers over GSSAPI"
grep -q 'canopy-dir@' "$KRB_DIR/kdc.log" 2>/dev/null ||
    step "(the KDC log does not name the client; not checked)"

step "a keytab of another principal"
KT2=$(base64 -w0 "$TEST_DIR/other.keytab")
api POST /api/v1/directory/sources "{\"name\":\"gss-bad\",\"flavor\":\"ad\",\"url\":\"$LDAP_URL\",\"base_dn\":\"dc=corp,dc=example\",\"bind\":{\"method\":\"gssapi\",\"principal\":\"canopy-dir@$REALM\",\"keytab_b64\":\"$KT2\"}}" >/dev/null
assert_status 201 "create"
BAD=$(json .id)
wait_for "the bad poll" 60 polled "$BAD"
assert_eq error "$(json .state)" "state"
assert_match "$(json .last_error)" "^GSSAPI" "last_error"
canopyd_stop
