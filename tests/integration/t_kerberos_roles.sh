#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# (groupOfNames needs a member: the emptied group keeps a placeholder.)
# Role mappings: a directory group imported from a real slapd (engineer D's
# poller, FreeIPA-like tree with a nested group) mapped to a role; its
# members who log in by Kerberos (a real MIT KDC) get the role, their
# account created at the first login; removed from the group and re-polled,
# they lose it at their next login.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_krb.sh"
. "$CANOPY_ROOT/tests/integration/lib_ldap.sh"

need_bin canopyd
command -v slapd >/dev/null || skip "slapd is not installed"

krb_start CORP.EXAMPLE
krb_addprinc alice@CORP.EXAMPLE alice-pw
krb_addprinc dave@CORP.EXAMPLE dave-pw
krb_addprinc erin@CORP.EXAMPLE erin-pw
krb_addprinc HTTP/localhost@CORP.EXAMPLE
krb_ktadd "$KRB_DIR/http.keytab" HTTP/localhost@CORP.EXAMPLE

ldap_tls
ldap_init dc=example "$CANOPY_ROOT/tests/fixtures/krb/roles.ldif"
ldap_start

pg_start
canopyd_start "kerberos-keytab $KRB_DIR/http.keytab"
admin_create admin 'roles-test-pw-1'
api_login

step "an IPA-like directory source, polled"
api POST /api/v1/directory/sources "{\"name\":\"ipa\",\"flavor\":\"freeipa\",\"url\":\"$LDAPS_URL\",\"base_dn\":\"dc=ipa,dc=example\",\"ca_file\":\"$LDAP_CA\",\"bind\":{\"method\":\"simple\",\"dn\":\"$LDAP_ROOTDN\",\"password\":\"$LDAP_ROOTPW\"}}" >/dev/null
assert_status 201 "create the source"
SRC=$(json .id)
POLLS0=0
polled() {
	api GET "/api/v1/directory/sources/$SRC" >/dev/null
	[ "$(json .polls)" -gt "$POLLS0" ] && [ "$(json .state)" != polling ]
}
wait_for "the first poll" 60 polled
api GET "/api/v1/directory/sources/$SRC" >/dev/null
assert_eq ok "$(json .state)" "poll state: $(json .last_error)"

step "POST /role-mappings: bad input, then two mappings"
api POST /api/v1/role-mappings '{"role":"operator"}' >/dev/null
assert_status 400
assert_contains "$(json .error.message)" directory_group
api POST /api/v1/role-mappings '{"directory_group":"canopy-ops","role":"king"}' >/dev/null
assert_status 400
assert_contains "$(json .error.message)" role
api POST /api/v1/role-mappings '{"directory_group":"canopy-ops","role":"operator","scope":"/no/such"}' >/dev/null
assert_status 404 "unknown scope group"
api POST /api/v1/role-mappings '{"directory_group":"canopy-ops","role":"operator"}' >/dev/null
assert_status 201
OPS=$(json .id)
api POST /api/v1/role-mappings '{"directory_group":"canopy-ops","role":"operator"}' >/dev/null
assert_status 409 "the same mapping twice"
api POST /api/v1/role-mappings '{"directory_group":"cn=auditors,cn=groups,cn=accounts,dc=ipa,dc=example","role":"auditor"}' >/dev/null
assert_status 201 "a mapping by DN"
api GET /api/v1/role-mappings >/dev/null
assert_eq 2 "$(json '.role_mappings | length')"
ctl_login
out=$(ctl role-mapping list 2>&1) || fail "canopyctl role-mapping list: $out"
assert_contains "$out" canopy-ops
assert_contains "$out" auditor
out=$(ctl role-mapping add staff operator 2>&1) || fail "canopyctl role-mapping add: $out"
id=$(printf '%s' "$out" | sed -n 's/^role mapping \([0-9]*\):.*/\1/p')
out=$(ctl role-mapping delete "$id" 2>&1) || fail "canopyctl role-mapping delete: $out"

roles_of() {	# the roles whoami shows, comma-separated
	json '[.roles[].role] | join(",")' "$KRB_BODY"
}

step "alice (member through a nested group): operator, account created"
krb_kinit alice@CORP.EXAMPLE alice-pw
krb_curl "$CANOPYD_URL/api/v1/whoami"
[ "$KRB_STATUS" = 200 ] || fail "alice whoami: $KRB_STATUS $KRB_BODY"
assert_eq operator "$(roles_of)" "alice's roles"
assert_eq alice@CORP.EXAMPLE "$(json .principal "$KRB_BODY")"
assert_eq t "$(pg_sql "SELECT mapped FROM admins WHERE principal = 'alice@CORP.EXAMPLE'")" \
    "account created by the mapping"
krb_curl "$CANOPYD_URL/api/v1/devices"
assert_eq 200 "$KRB_STATUS" "an operator lists devices"

step "dave (auditors, mapped by DN): auditor"
krb_kinit dave@CORP.EXAMPLE dave-pw
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 200 "$KRB_STATUS"
assert_eq auditor "$(roles_of)" "dave's roles"
krb_curl -X POST -H 'Content-Type: application/json' \
    -d '{"directory_group":"x","role":"administrator"}' \
    "$CANOPYD_URL/api/v1/role-mappings"
assert_eq 403 "$KRB_STATUS" "an auditor cannot map roles"

step "erin (in no mapped group): refused"
krb_kinit erin@CORP.EXAMPLE erin-pw
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 401 "$KRB_STATUS" "erin"
assert_eq unknown_principal "$(json .error.code "$KRB_BODY")"

step "alice removed from the group and re-polled: no role at her next login"
cat >"$TEST_DIR/remove.ldif" <<EOL
dn: cn=team,cn=groups,cn=accounts,dc=ipa,dc=example
changetype: modify
replace: member
member: cn=nobody,dc=ipa,dc=example
EOL
ldap_modify "$TEST_DIR/remove.ldif"
api GET "/api/v1/directory/sources/$SRC" >/dev/null
POLLS0=$(json .polls)
api POST "/api/v1/directory/sources/$SRC/poll" '{"full":true}' >/dev/null
assert_status 202 "poll now"
wait_for "the re-poll" 60 polled
no_member() {
	[ "$(pg_sql "SELECT count(*) FROM directory_members m
	    JOIN directory_objects u ON u.id = m.member_id
	    WHERE u.principal = 'alice@CORP.EXAMPLE'")" = 0 ]
}
wait_for "alice out of every group in the database" 10 no_member
krb_kinit alice@CORP.EXAMPLE alice-pw
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 200 "$KRB_STATUS"
assert_eq "" "$(roles_of)" "alice's roles after removal"
krb_curl "$CANOPYD_URL/api/v1/devices"
assert_eq 403 "$KRB_STATUS" "no role: no devices"

step "DELETE /role-mappings/{id}"
api DELETE "/api/v1/role-mappings/$OPS" >/dev/null
assert_status 204
api DELETE "/api/v1/role-mappings/$OPS" >/dev/null
assert_status 404
api GET /api/v1/role-mappings >/dev/null
assert_eq 1 "$(json '.role_mappings | length')"
n=$(pg_sql "SELECT count(*) FROM audit WHERE action IN
    ('role_mapping_create', 'role_mapping_delete')")
assert_eq 5 "$n" "mapping changes audited"
