#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# A directory source against a real Samba AD DC in a network namespace of
# this test's own (prefix cdir, 10.77.1.0/24): computers created with
# samba-tool, a first (full) poll, then a change and a delete, and an
# incremental poll by uSNChanged above the last highestCommittedUSN that
# fetches only the change and sees the delete as a tombstone in the
# Deleted Objects container.  Skips (77) only when Samba cannot be
# provisioned or started here.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_samba.sh"

need_bin canopyd
samba_dc_start cdir 1 "ldap server require strong auth = no"
BIND="CN=Administrator,CN=Users,DC=corp,DC=example"
# Ready when a login works, not only the anonymous root DSE: the source
# binds as the Administrator.
samba_up() {
	samba_running
	ldapsearch -x -H "ldap://$DC_IP/" -D "$BIND" -w "$ADMINPW" \
	    -b "DC=corp,DC=example" -s base "(objectClass=*)" dn >/dev/null 2>&1
}
wait_for "Samba accepts an LDAP login on $DC_IP" 60 samba_up

step "computers"
samba_tool ou add "OU=Berlin,DC=corp,DC=example"
for n in WS1 WS2 WS3; do
	samba_tool computer create "$n" --computerou="OU=Berlin"
done

pg_start
canopyd_start
admin_create admin 'dir-samba-pw-1'
api_login
POLLS0=0
polled() {
	api GET "/api/v1/directory/sources/$ID" >/dev/null
	[ "$(json .polls)" -gt "$POLLS0" ] && [ "$(json .state)" != polling ]
}
api POST /api/v1/directory/sources "{\"name\":\"samba\",\"flavor\":\"samba\",\"url\":\"ldap://$DC_IP/\",\"base_dn\":\"DC=corp,DC=example\",\"bind\":{\"method\":\"simple\",\"dn\":\"$BIND\",\"password\":\"$ADMINPW\"}}" >/dev/null
assert_status 201 "create the Samba source"
ID=$(json .id)
wait_for "the first poll" 60 polled
assert_eq ok "$(json .state)" "first poll: $(json .last_error)"
assert_eq full "$(json .last_kind)" "kind"
C0=$(json .counts.computers)
[ "$C0" -ge 4 ] || fail "computers: $C0 (WS1-3 and the DC)"
assert_ne 0 "$(json .counts.users)" "users (Administrator, krbtgt, Guest)"
assert_ne 0 "$(json .counts.groups)" "groups"
api GET "/api/v1/directory/objects?source=$ID&type=user&q=Administrator" >/dev/null
assert_eq "Administrator@CORP.EXAMPLE" "$(json '.objects[0].principal')" "principal"
assert_match "$(json '.objects[0].sid')" '^S-1-5-21-' "objectSid"
api GET "/api/v1/directory/objects?source=$ID&type=computer&q=WS1" >/dev/null
assert_match "$(json '.objects[0].guid')" '^[0-9a-f]{8}-' "objectGUID"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM devices WHERE name = 'WS1'")" "WS1 is a device"

step "a change, a delete; an incremental poll"
cat >"$TEST_DIR/mod.ldif" <<EOL
dn: CN=WS1,OU=Berlin,DC=corp,DC=example
changetype: modify
replace: operatingSystem
operatingSystem: Windows Server 2025
EOL
ldapmodify -x -H "ldap://$DC_IP/" -D "$BIND" -w "$ADMINPW" \
    -f "$TEST_DIR/mod.ldif" >/dev/null || fail "ldapmodify"
samba_tool computer delete WS2
api GET "/api/v1/directory/sources/$ID" >/dev/null
POLLS0=$(json .polls)
api POST "/api/v1/directory/sources/$ID/poll" >/dev/null
assert_status 202 "poll"
wait_for "the incremental poll" 60 polled
assert_eq ok "$(json .state)" "incremental: $(json .last_error)"
assert_eq incremental "$(json .last_kind)" "kind"
F=$(json .last_fetched)
[ "$F" -ge 1 ] && [ "$F" -le 3 ] || fail "fetched $F entries: only the change"
assert_eq 1 "$(json .counts.gone)" "WS2 is gone (tombstone)"
assert_eq "Windows Server 2025" "$(pg_sql "SELECT os FROM devices WHERE name = 'WS1'")" "the change"
assert_eq t "$(pg_sql "SELECT directory_gone FROM devices WHERE name = 'WS2'")" "WS2's device marked"
canopyd_stop
