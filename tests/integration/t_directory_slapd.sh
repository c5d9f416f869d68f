#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# LDAP directory sources against a real slapd (tests/integration/
# lib_ldap.sh) with an AD-like domain of 3,000+ computers (three pages at
# the 1000-entry cap) and a FreeIPA-like tree: a full import over StartTLS
# with CA verification (OUs, computers, users, nested groups resolved,
# disabled accounts, bad data: no GUID, escaped commas, non-ASCII DNs, a
# 3,000-value member attribute, an unknown object class), computers as
# devices merged with a known device by FQDN and placed by a moving rule
# by OU; then changes, AD-style tombstones and an added computer, and an
# incremental poll that fetches exactly those; a real delete found by a
# full reconcile; bad configurations (wrong password, unreachable, wrong
# base DN, untrusted CA) each a clear last_error; canopyctl.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_ldap.sh"

need_bin canopyd
need_bin canopyctl
command -v slapd >/dev/null || skip "slapd is not installed"

B=dc=corp,dc=example
step "slapd with 3,000 computers"
bash "$CANOPY_ROOT/tests/fixtures/ldap/gen-tree.sh" 3000 50 \
    >"$TEST_DIR/tree.ldif"
ldap_tls
ldap_init dc=example "$TEST_DIR/tree.ldif"
ldap_start
assert_eq 3003 "$(ldap_count '(objectClass=computer)')" "computers in slapd"

pg_start
canopyd_start
admin_create admin 'dir-test-pw-1'
api_login

req() {	# METHOD PATH BODY EXPECTED WHAT
	api "$1" "$2" "$3" >/dev/null
	assert_status "$4" "$5"
}
bad() {	# BODY FIELD
	req POST /api/v1/directory/sources "$1" 400 "POST $1"
	assert_error_body "POST $1"
	assert_match "$(json .error.message)" "^$2" "message for $1"
}
src_field() {	# ID JQ
	api GET "/api/v1/directory/sources/$1" >/dev/null
	assert_status 200 "GET source $1"
	json "$2"
}
POLLS0=0
polled() {	# ID: a poll finished after POLLS0
	api GET "/api/v1/directory/sources/$1" >/dev/null
	[ "$(json .polls)" -gt "$POLLS0" ] && [ "$(json .state)" != polling ]
}
poll_now() {	# ID [BODY]: ask for a poll and wait for it
	POLLS0=$(src_field "$1" .polls)
	req POST "/api/v1/directory/sources/$1/poll" "${2:-}" 202 "poll $1"
	wait_for "source $1 polled" 60 polled "$1"
}
first_poll() {	# ID
	POLLS0=0
	wait_for "source $1 polled" 60 polled "$1"
}

step "bad input"
bad '{"flavor":"ad","url":"ldap://x","base_dn":"dc=x","bind":{"method":"simple","dn":"cn=a","password":"p"}}' name
bad '{"name":"x","flavor":"nds","url":"ldap://x","base_dn":"dc=x","bind":{"method":"simple","dn":"cn=a","password":"p"}}' flavor
bad '{"name":"x","flavor":"ad","url":"http://x","base_dn":"dc=x","bind":{"method":"simple","dn":"cn=a","password":"p"}}' url
bad '{"name":"x","flavor":"ad","url":"ldap://x","base_dn":"nodn","bind":{"method":"simple","dn":"cn=a","password":"p"}}' base_dn
bad '{"name":"x","flavor":"ad","url":"ldap://x","base_dn":"dc=x"}' bind
bad '{"name":"x","flavor":"ad","url":"ldap://x","base_dn":"dc=x","bind":{"method":"simple","dn":"cn=a"}}' bind.password
bad '{"name":"x","flavor":"ad","url":"ldap://x","base_dn":"dc=x","bind":{"method":"gssapi","principal":"a@B","keytab_b64":"!!!!"}}' bind.keytab_b64
bad '{"name":"x","flavor":"ad","url":"ldap://x","base_dn":"dc=x","interval_s":1,"bind":{"method":"simple","dn":"cn=a","password":"p"}}' interval_s

step "a moving rule by OU, and a device an agent already knows"
req POST /api/v1/groups '{"path":"/Managed devices/Servers"}' 201 "group"
req POST /api/v1/moving-rules "{\"name\":\"servers\",\"order\":1,\"group\":\"/Managed devices/Servers\",\"match\":{\"ou_dn\":\"OU=Servers,OU=Berlin,OU=Sites,DC=corp,DC=example\"}}" 201 "moving rule"
pg_sql "INSERT INTO devices (vs_id, group_id, name, fqdn, source)
    SELECT vs_id, id, 'ws00002', 'WS00002.corp.example', 'agent' FROM groups
    WHERE kind = 'unassigned' ORDER BY vs_id LIMIT 1" >/dev/null
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices")" "the agent's device"

step "an AD source over StartTLS"
PW='root-secret-pw'
req POST /api/v1/directory/sources "{\"name\":\"corp\",\"flavor\":\"ad\",\"url\":\"$LDAP_URL\",\"base_dn\":\"$B\",\"starttls\":true,\"ca_file\":\"$LDAP_CA\",\"bind\":{\"method\":\"simple\",\"dn\":\"$LDAP_ROOTDN\",\"password\":\"$PW\"}}" 201 "create AD source"
AD=$(json .id)
assert_not_contains "$API_BODY" "$PW" "the answer holds no password"
assert_eq "" "$(json '.bind.password // empty')" "no password field"
req POST /api/v1/directory/sources "{\"name\":\"corp\",\"flavor\":\"ad\",\"url\":\"$LDAP_URL\",\"base_dn\":\"$B\",\"bind\":{\"method\":\"simple\",\"dn\":\"x\",\"password\":\"y\"}}" 409 "a second 'corp'"
SEALED=$(pg_sql "SELECT bind_secret FROM directory_sources WHERE id = $AD")
assert_match "$SEALED" '^v1:' "the password is sealed"
assert_not_contains "$SEALED" "$PW" "sealed"
first_poll "$AD"
assert_eq ok "$(src_field "$AD" .state)" "state; last_error: $(json .last_error)"
assert_eq full "$(json .last_kind)" "first poll kind"
assert_eq 3003 "$(json .counts.computers)" "computers (paged past 1000)"
assert_eq 60 "$(json .counts.users)" "users"
assert_eq 3 "$(json .counts.groups)" "groups"
assert_eq 7 "$(json .counts.ous)" "OUs"
assert_eq 30 "$(json .counts.disabled)" "disabled computers"

step "objects: bad data survived"
api GET "/api/v1/directory/objects?source=$AD&type=computer&q=J%C3%BCrgen" >/dev/null
assert_status 200 "objects q=Jürgen"
assert_eq 1 "$(json '.objects | length')" "Jürgen-PC"
assert_eq "Jürgen-PC" "$(json '.objects[0].name')" "non-ASCII name"
assert_match "$(json '.objects[0].parent_dn')" '^ou=Köln\\(,|2C) Süd,ou=Sites' \
    "escaped comma in the OU"
api GET "/api/v1/directory/objects?source=$AD&q=Weird" >/dev/null
assert_eq "Weird, PC" "$(json '.objects[0].name')" "escaped comma in the CN"
api GET "/api/v1/directory/objects?source=$AD&q=NOGUID" >/dev/null
assert_match "$(json '.objects[0].guid')" '^dn:' "no GUID: the DN stands in"
api GET "/api/v1/directory/objects?source=$AD&q=printer1" >/dev/null
assert_eq 0 "$(json '.objects | length')" "unknown class skipped"
api GET "/api/v1/directory/objects?source=$AD&type=user&q=User%2051" >/dev/null
assert_eq "user51@CORP.EXAMPLE" "$(json '.objects[0].principal')" "principal"
api GET "/api/v1/directory/objects?source=$AD&type=computer&limit=1000" >/dev/null
assert_eq 1000 "$(json '.objects | length')" "a page of objects"
NEXT=$(json .next)
assert_ne "" "$NEXT" "next cursor"
api GET "/api/v1/directory/objects?source=$AD&type=computer&limit=1000&cursor=$NEXT" >/dev/null
assert_eq 1000 "$(json '.objects | length')" "the second page"
api GET "/api/v1/directory/objects?type=printer" >/dev/null
assert_status 400 "bad type"

step "transitive membership"
members() {	# GROUP-NAME
	pg_sql "SELECT count(*) FROM directory_members m JOIN directory_objects g
	    ON g.id = m.group_id WHERE g.source_id = $AD AND g.name = '$1'"
}
assert_eq 51 "$(members Admins)" "Admins: Staff's 50 + User 51"
assert_eq 50 "$(members Staff)" "Staff"
assert_eq 3000 "$(members 'All Computers')" "a 3,000-value member attribute"

step "computers are devices"
assert_eq 3002 "$(pg_sql "SELECT count(*) FROM devices WHERE source = 'directory'")" \
    "new devices (one merged)"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices WHERE lower(fqdn) = 'ws00002.corp.example'")" \
    "merged by FQDN"
assert_ne "" "$(pg_sql "SELECT directory_guid FROM devices WHERE name = 'ws00002'")" "linked"
assert_eq 300 "$(pg_sql "SELECT count(*) FROM devices d JOIN groups g ON g.id = d.group_id WHERE g.name = 'Servers'")" \
    "placed by the OU moving rule"
assert_eq 30 "$(pg_sql "SELECT count(*) FROM devices WHERE directory_disabled")" "disabled marked"
assert_eq 2702 "$(pg_sql "SELECT count(*) FROM devices d JOIN groups g ON g.id = d.group_id WHERE g.kind = 'unassigned' AND d.source = 'directory'")" \
    "the rest unassigned"

step "no changes: an incremental poll fetches nothing"
poll_now "$AD"
assert_eq incremental "$(src_field "$AD" .last_kind)" "kind"
assert_eq 0 "$(json .last_fetched)" "nothing fetched"
assert_eq 3003 "$(json .counts.computers)" "computers"

step "changes, tombstones, one new computer"
{
	for i in 3 4 5 6 8; do
		printf 'dn: cn=WS%05d,ou=Workstations,ou=Berlin,ou=Sites,%s\nchangetype: modify\n' "$i" "$B"
		printf 'replace: operatingSystem\noperatingSystem: Windows 12\n-\n'
		printf 'replace: uSNChanged\nuSNChanged: %d\n\n' $((90000 + i))
	done
	for i in 12 13; do
		printf 'dn: cn=WS%05d,ou=Workstations,ou=Berlin,ou=Sites,%s\nchangetype: modrdn\n' "$i" "$B"
		printf 'newrdn: cn=WS%05d\ndeleteoldrdn: 1\nnewsuperior: cn=Deleted Objects,%s\n\n' "$i" "$B"
		printf 'dn: cn=WS%05d,cn=Deleted Objects,%s\nchangetype: modify\n' "$i" "$B"
		printf 'add: isDeleted\nisDeleted: TRUE\n-\nreplace: uSNChanged\nuSNChanged: %d\n\n' $((90100 + i))
	done
	printf 'dn: cn=NEW01,ou=Workstations,ou=Berlin,ou=Sites,%s\nchangetype: add\n' "$B"
	printf 'objectClass: top\nobjectClass: user\nobjectClass: computer\ncn: NEW01\n'
	printf 'dNSHostName: new01.corp.example\nobjectGUID: gnew-00000000001\nuSNChanged: 90200\n\n'
} >"$TEST_DIR/changes.ldif"
ldap_modify "$TEST_DIR/changes.ldif"
poll_now "$AD"
assert_eq ok "$(src_field "$AD" .state)" "state: $(json .last_error)"
assert_eq incremental "$(json .last_kind)" "kind"
assert_eq 6 "$(json .last_fetched)" "only the 5 changed and 1 new fetched"
assert_eq 3002 "$(json .counts.computers)" "computers: +1 -2"
assert_eq 2 "$(json .counts.gone)" "tombstones seen"
assert_eq 5 "$(pg_sql "SELECT count(*) FROM devices WHERE os = 'Windows 12'")" "changed OS"
assert_eq 2 "$(pg_sql "SELECT count(*) FROM devices WHERE directory_gone")" "gone devices marked"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices WHERE name = 'NEW01'")" "new device"

step "a real delete: found by a full reconcile"
ldapdelete -x -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" \
    "cn=WS00014,ou=Workstations,ou=Berlin,ou=Sites,$B" || fail ldapdelete
poll_now "$AD" '{"full":true}'
assert_eq full "$(src_field "$AD" .last_kind)" "kind"
assert_eq 3 "$(json .counts.gone)" "the deleted one is gone"
assert_eq 3 "$(pg_sql "SELECT count(*) FROM devices WHERE directory_gone")" "gone devices"

step "a FreeIPA-like source"
req POST /api/v1/directory/sources "{\"name\":\"ipa\",\"flavor\":\"freeipa\",\"url\":\"$LDAPS_URL\",\"base_dn\":\"dc=ipa,dc=example\",\"ca_file\":\"$LDAP_CA\",\"bind\":{\"method\":\"simple\",\"dn\":\"$LDAP_ROOTDN\",\"password\":\"$PW\"}}" 201 "create IPA source"
IPA=$(json .id)
first_poll "$IPA"
assert_eq ok "$(src_field "$IPA" .state)" "state: $(json .last_error)"
assert_eq 50 "$(json .counts.computers)" "IPA hosts"
assert_eq 3 "$(json .counts.users)" "IPA users"
assert_eq 2 "$(json .counts.groups)" "IPA groups"
assert_eq 1 "$(json .counts.disabled)" "nsAccountLock"
api GET "/api/v1/directory/objects?source=$IPA&type=user&q=ipauser3" >/dev/null
assert_eq "ipauser3@IPA.EXAMPLE" "$(json '.objects[0].principal')" "uid@REALM"
api GET "/api/v1/directory/objects?source=$IPA&type=user&q=ipauser1" >/dev/null
assert_eq "ipauser1@IPA.EXAMPLE" "$(json '.objects[0].principal')" "krbPrincipalName"
ipa_members() {
	pg_sql "SELECT count(*) FROM directory_members m JOIN directory_objects g
	    ON g.id = m.group_id WHERE g.source_id = $IPA AND g.name = '$1'"
}
assert_eq 2 "$(ipa_members engineering)" "engineering: devs' user + its own"
{
	printf 'dn: fqdn=host001.ipa.example,cn=computers,cn=accounts,dc=ipa,dc=example\n'
	printf 'changetype: modify\nreplace: nsOsVersion\nnsOsVersion: Astra Linux 1.8\n\n'
	printf 'dn: fqdn=host002.ipa.example,cn=computers,cn=accounts,dc=ipa,dc=example\n'
	printf 'changetype: delete\n\n'
} >"$TEST_DIR/ipa.ldif"
ldap_modify "$TEST_DIR/ipa.ldif"
poll_now "$IPA"
assert_eq incremental "$(src_field "$IPA" .last_kind)" "IPA kind"
assert_eq 1 "$(json .last_fetched)" "IPA: only the changed host"
assert_eq 1 "$(json .counts.gone)" "IPA: the deleted host is gone"
assert_eq "Astra Linux 1.8" "$(pg_sql "SELECT os FROM devices WHERE fqdn = 'host001.ipa.example'")" "IPA change"

step "bad configurations: each a clear error"
bad_src() {	# NAME URL BASE PASSWORD EXTRA EXPECTED-ERROR-REGEX
	req POST /api/v1/directory/sources "{\"name\":\"$1\",\"flavor\":\"openldap\",\"url\":\"$2\",\"base_dn\":\"$3\"$5,\"bind\":{\"method\":\"simple\",\"dn\":\"$LDAP_ROOTDN\",\"password\":\"$4\"}}" 201 "create $1"
	local id
	id=$(json .id)
	first_poll "$id"
	assert_eq error "$(src_field "$id" .state)" "$1: state"
	assert_match "$(json .last_error)" "$6" "$1: last_error"
}
DEAD=$(free_port)
bad_src wrongpw "$LDAP_URL" "$B" nope "" "^wrong credentials"
bad_src unreachable "ldap://127.0.0.1:$DEAD/" "$B" "$PW" "" "^server unreachable"
bad_src wrongbase "$LDAP_URL" "dc=nowhere,dc=example" "$PW" "" "^base DN does not exist"
bad_src untrusted "$LDAP_URL" "$B" "$PW" ",\"starttls\":true,\"ca_file\":\"$LDAP_OTHER_CA\"" "^TLS verification failed"
bad_src untrusted2 "$LDAPS_URL" "$B" "$PW" ",\"ca_file\":\"$LDAP_OTHER_CA\"" "^TLS verification failed"
api GET "/api/v1/directory/sources/$AD" >/dev/null
assert_eq ok "$(json .state)" "the good source is undisturbed"
assert_eq 3001 "$(json .counts.computers)" "its objects too"

step "canopyctl directory"
ctl_login
out=$(ctl directory list) || fail "directory list: $out"
assert_contains "$out" corp "list"
assert_contains "$out" wrongpw "list"
out=$(ctl directory show "$AD") || fail "directory show: $out"
assert_contains "$out" "3001 computers" "show: counts"
out=$(ctl directory objects --source "$AD" --type computer --q Weird) ||
    fail "directory objects: $out"
assert_contains "$out" "Weird, PC" "objects"
POLLS0=$(src_field "$AD" .polls)
out=$(ctl directory poll "$AD") || fail "directory poll: $out"
wait_for "canopyctl's poll" 60 polled "$AD"
out=$(ctl directory add --name ctlsrc --flavor openldap --url "$LDAP_URL" \
    --base-dn "$B" --bind-dn "$LDAP_ROOTDN" --password-stdin <<<"$PW") ||
    fail "directory add: $out"
assert_contains "$out" "ctlsrc" "add"

step "DIR_SOURCES_MAX (100) sources per virtual server"
n=$(pg_sql "SELECT count(*) FROM directory_sources")
while [ "$n" -lt 100 ]; do
	n=$((n + 1))
	req POST /api/v1/directory/sources "{\"name\":\"filler$n\",\"flavor\":\"openldap\",\"url\":\"ldap://127.0.0.1:$DEAD/\",\"base_dn\":\"$B\",\"interval_s\":86400,\"bind\":{\"method\":\"simple\",\"dn\":\"cn=x\",\"password\":\"y\"}}" 201 "source $n"
done
req POST /api/v1/directory/sources "{\"name\":\"one-too-many\",\"flavor\":\"openldap\",\"url\":\"ldap://127.0.0.1:$DEAD/\",\"base_dn\":\"$B\",\"bind\":{\"method\":\"simple\",\"dn\":\"cn=x\",\"password\":\"y\"}}" 409 "source 101"
assert_contains "$(json .error.message)" "at most 100" "the limit named"

step "delete a source"
req DELETE "/api/v1/directory/sources/$IPA" "" 204 "delete"
api GET "/api/v1/directory/sources/$IPA" >/dev/null
assert_status 404 "deleted"
assert_eq 0 "$(pg_sql "SELECT count(*) FROM directory_objects WHERE source_id = $IPA")" \
    "its objects went with it"
api GET "/api/v1/directory/sources/999999" >/dev/null
assert_status 404 "no such source"
canopyd_stop
