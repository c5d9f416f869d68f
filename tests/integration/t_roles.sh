#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Roles and scopes: the role x endpoint matrix for an administrator, an
# operator, an auditor, an operator scoped to one subtree and an
# administrator scoped to it; objects outside a scope are 404 and absent
# from lists.  Administrators through the API and canopyctl (bad input
# included), and lock-out: 10 failed logins lock an account for an hour,
# "admin unlock" frees it.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
need_bin canopyctl
pg_start
canopyd_start
admin_create admin 'roles-test-pw-1'
api_login
declare -A TOK
TOK[admin]=$API_TOKEN
PW='a-long-enough-pw'

# as USER: the following api calls act as USER.
as() { API_TOKEN=${TOK[$1]}; }
# expect STATUS WHAT METHOD PATH [BODY]
expect() {
	local st=$1 what=$2
	shift 2
	api "$@" >/dev/null
	assert_status "$st" "$what: $1 $2"
	case $st in 4*) assert_error_body "$what: $1 $2" ;; esac
}
# allowed WHAT METHOD PATH [BODY]: anything but 401/403/404 (the caller
# may; the body may still be wrong).
allowed() {
	local what=$1
	shift
	api "$@" >/dev/null
	case $API_STATUS in
	401|403|404|5*) fail "$what: $1 $2: expected to be allowed, got $API_STATUS: $API_BODY" ;;
	esac
}
gid() {
	as admin
	api GET /api/v1/groups >/dev/null
	printf '%s' "$API_BODY" |
	    jq -r --arg p "$1" '.groups[] | select(.path == $p) | .id'
}

step "the tree: A (with A1), B; a device in each, one unassigned"
as admin
expect 201 "group A" POST /api/v1/groups '{"path":"/Managed devices/A"}'
A=$(json .id)
expect 201 "group A1" POST /api/v1/groups '{"path":"/Managed devices/A/A1"}'
A1=$(json .id)
expect 201 "group B" POST /api/v1/groups '{"path":"/Managed devices/B"}'
B=$(json .id)
POOL=$(gid "/Unassigned devices")
ROOT=$(gid "/Managed devices")
dev() {
	pg_sql "INSERT INTO devices (vs_id, group_id, name) VALUES (0, $1, '$2')
	    RETURNING id" | head -n 1
}
DA=$(dev "$A" dev-a)
DB=$(dev "$B" dev-b)
DP=$(dev "$POOL" dev-pool)
pg_sql "INSERT INTO events (vs_id, device_id, severity, type, time, text)
    VALUES (0, '$DA', 'warning', 't', now(), 'about a'),
	   (0, '$DB', 'warning', 't', now(), 'about b')" >/dev/null

step "administrators through the API"
mk() {	# mk NAME ROLES-JSON
	as admin
	expect 201 "create $1" POST /api/v1/admins "$(jq -cn --arg n "$1" \
	    --arg p "$PW" --argjson r "$2" '{name: $n, password: $p, roles: $r}')"
	assert_eq "$1" "$(json .name)" "created name"
	ID[$1]=$(json .id)
	api_login "$1" "$PW"
	TOK[$1]=$API_TOKEN
}
declare -A ID
mk op '[{"role":"operator"}]'
mk aud '[{"role":"auditor"}]'
mk sop '[{"role":"operator","scope":"/Managed devices/A"}]'
mk sadm "[{\"role\":\"administrator\",\"scope\":\"$A\"}]"
mk both '[{"role":"auditor"},{"role":"operator","scope":"/Managed devices/B"}]'
as admin
expect 200 "admin list" GET /api/v1/admins
assert_eq 6 "$(json '.admins | length')" "six accounts"
assert_not_contains "$API_BODY" '$scrypt$' "no password hashes listed"
assert_not_contains "$API_BODY" "$PW" "no passwords listed"
assert_eq "/Managed devices/A" \
    "$(json '.admins[] | select(.name == "sop") | .roles[0].scope_path')" \
    "the scope by path"
assert_eq "$A" "$(json '.admins[] | select(.name == "sop") | .roles[0].scope')" \
    "the scope by id"
as sop
expect 200 "whoami" GET /api/v1/whoami
assert_eq "$A" "$(json '.roles[0].scope')" "sop's scope"

step "administrator bad input"
as admin
bad() {	# bad BODY FIELD
	expect 400 "admin $1" POST /api/v1/admins "$1"
	assert_match "$(json .error.message)" "^$2" "message for $1"
}
bad '{' body
bad '{"password":"xxxxxxxxxx","roles":[{"role":"operator"}]}' name
bad '{"name":"x","password":"xxxxxxxxxx"}' roles
bad '{"name":"x","password":"xxxxxxxxxx","roles":"operator"}' roles
bad '{"name":"x","password":"xxxxxxxxxx","roles":[]}' roles
bad '{"name":"x","password":"xxxxxxxxxx","roles":["operator"]}' 'roles\[0\]'
bad '{"name":"x","password":"xxxxxxxxxx","roles":[{"role":"king"}]}' 'roles\[0\]\.role'
bad '{"name":"x","password":"xxxxxxxxxx","roles":[{"role":"operator","x":1}]}' 'roles\[0\]\.x'
bad '{"name":"x","password":"xxxxxxxxxx","roles":[{"role":"operator","scope":true}]}' 'roles\[0\]\.scope'
bad '{"name":"x","password":"short","roles":[{"role":"operator"}]}' password
bad '{"name":"x","roles":[{"role":"operator"}]}' password
bad '{"name":"x","principal":"nobody","roles":[{"role":"operator"}]}' principal
bad '{"name":"x","principal":"a b@R","roles":[{"role":"operator"}]}' principal
bad '{"name":"","password":"xxxxxxxxxx","roles":[{"role":"operator"}]}' name
bad '{"name":"t\\x","password":"xxxxxxxxxx","roles":[{"role":"operator"}]}' name
bad "{\"name\":\"$(printf 'n%.0s' $(seq 256))\",\"password\":\"xxxxxxxxxx\",\"roles\":[{\"role\":\"operator\"}]}" name
bad '{"name":"x","password":"xxxxxxxxxx","roles":[{"role":"operator"}],"admin":true}' admin
expect 404 "scope missing" POST /api/v1/admins \
    '{"name":"x","password":"xxxxxxxxxx","roles":[{"role":"operator","scope":"/Managed devices/Nope"}]}'
assert_match "$(json .error.message)" '^roles\[0\]\.scope' "404 names the scope"
expect 409 "duplicate name" POST /api/v1/admins \
    "{\"name\":\"op\",\"password\":\"$PW\",\"roles\":[{\"role\":\"operator\"}]}"
expect 201 "Kerberos-only account" POST /api/v1/admins \
    '{"name":"krb","principal":"krb@EXAMPLE.ORG","roles":[{"role":"auditor"}]}'
KRB=$(json .id)
expect 409 "principal taken" POST /api/v1/admins \
    '{"name":"krb2","principal":"krb@EXAMPLE.ORG","roles":[{"role":"auditor"}]}'
assert_match "$(json .error.message)" '^principal' "409 names the principal"
expect 200 "admins unchanged by bad input" GET /api/v1/admins
assert_eq 7 "$(json '.admins | length')" "seven accounts"

step "the role x endpoint matrix"
# Columns: admin op aud sop sadm
row() {	# row WHAT METHOD PATH BODY S_admin S_op S_aud S_sop S_sadm
	local what=$1 method=$2 path=$3 body=$4 u i=0 st
	shift 4
	for u in admin op aud sop sadm; do
		st=${1:-}
		shift
		as "$u"
		case $st in
		ok)
			if [ -n "$body" ]; then
				allowed "$u $what" "$method" "$path" "$body"
			else
				allowed "$u $what" "$method" "$path"
			fi ;;
		*)
			if [ -n "$body" ]; then
				expect "$st" "$u $what" "$method" "$path" "$body"
			else
				expect "$st" "$u $what" "$method" "$path"
			fi ;;
		esac
	done
}
row "list groups"	GET /api/v1/groups ''			200 200 200 200 200
row "group in B"	GET "/api/v1/groups/$B" ''		200 200 200 404 404
row "group in A"	GET "/api/v1/groups/$A1" ''		200 200 200 200 200
row "create group"	POST /api/v1/groups '{"path":"/Managed devices/B/x"}' \
							201 403 403 403 404
row "create in A"	POST /api/v1/groups "{\"parent\":\"$A\",\"name\":\"y\"}" \
							201 403 403 403 409
row "rename B"		PATCH "/api/v1/groups/$B" '{"name":"B"}' 200 403 403 403 404
row "delete B/x"	DELETE "/api/v1/groups/$(gid "/Managed devices/B/x")" '' \
							204 403 403 403 404
row "list devices"	GET /api/v1/devices ''			200 200 200 200 200
row "device in B"	GET "/api/v1/devices/$DB" ''		200 200 200 404 404
row "device in A"	GET "/api/v1/devices/$DA" ''		200 200 200 200 200
# mrow WHAT DEVICE FROM TO S_admin S_op S_aud S_sop S_sadm: each user
# moves the device from the same place.
mrow() {
	local what=$1 d=$2 from=$3 to=$4 u st
	shift 4
	for u in admin op aud sop sadm; do
		st=$1
		shift
		pg_sql "UPDATE devices SET group_id = $from WHERE id = '$d'" \
		    >/dev/null
		as "$u"
		expect "$st" "$u $what" POST "/api/v1/devices/$d/move" \
		    "{\"group\":\"$to\"}"
	done
}
mrow "move B->A"	"$DB" "$B" "$A"		200 200 403 404 404
mrow "move within B"	"$DB" "$B" "$B"		200 200 403 404 404
mrow "move within A"	"$DA" "$A" "$A1"	200 200 403 200 200
mrow "move A1->A"	"$DA" "$A1" "$A"	200 200 403 200 200
mrow "move out of A"	"$DA" "$A" "$B"		200 200 403 404 404
mrow "move unassigned"	"$DP" "$POOL" "$A"	200 200 403 404 404
pg_sql "UPDATE devices SET group_id = $A WHERE id = '$DA';
    UPDATE devices SET group_id = $B WHERE id = '$DB';
    UPDATE devices SET group_id = $POOL WHERE id = '$DP'" >/dev/null
row "events"		GET /api/v1/events ''			200 200 200 200 200
row "events of B"	GET "/api/v1/events?device=$DB" ''	200 200 200 200 200
row "audit"		GET /api/v1/audit ''			200 403 200 403 403
row "list admins"	GET /api/v1/admins ''			200 403 403 403 403
row "add admin"		POST /api/v1/admins '{}'		400 403 403 403 403
row "unlock admin"	POST "/api/v1/admins/${ID[op]}/unlock" '' 200 403 403 403 403
row "delete admin"	DELETE "/api/v1/admins/999999" ''	404 403 403 403 403
row "token in B"	POST /api/v1/enrollment-tokens "{\"group\":\"$B\"}" \
							201 201 403 404 404
row "token in A"	POST /api/v1/enrollment-tokens "{\"group\":\"$A\"}" \
							201 201 403 201 201
row "whoami"		GET /api/v1/whoami ''			200 200 200 200 200

# Other modules' endpoints, where they exist: reads for every role, the
# administrator's writes refused to others (403 before the body is read).
if [ -f "$CANOPY_ROOT/srv/api_policies.c" ]; then
	row "list policies"	GET /api/v1/policies ''		200 200 200 200 200
	row "create policy"	POST /api/v1/policies '{}'	ok 403 403 403 ok
	row "effective policy of B" GET "/api/v1/devices/$DB/effective-policy?product=canopy-agent" '' \
								200 200 200 404 404
fi
if [ -f "$CANOPY_ROOT/srv/api_tasks.c" ]; then
	row "list tasks"	GET /api/v1/tasks ''		200 200 200 200 200
	row "create task"	POST /api/v1/tasks '{}'		ok ok 403 ok ok
fi
if [ -f "$CANOPY_ROOT/srv/api_rules.c" ]; then
	row "list status rules"	GET /api/v1/status-rules ''	200 200 200 200 200
	row "create status rule" POST /api/v1/status-rules '{}'	ok 403 403 403 403
	row "list moving rules"	GET /api/v1/moving-rules ''	200 200 200 200 200
	row "create moving rule" POST /api/v1/moving-rules '{}'	ok 403 403 403 403
fi
if [ -f "$CANOPY_ROOT/srv/api_vservers.c" ]; then
	row "create vserver"	POST /api/v1/vservers '{}'	ok 403 403 403 403
fi

step "an action needs the write scope, not only the read scope"
# both: auditor everywhere, operator on B.  dev-a is readable, not writable.
as both
expect 200 "both reads dev-a" GET "/api/v1/devices/$DA"
expect 404 "both syncs dev-a (read, not write scope)" POST "/api/v1/devices/$DA/sync"
expect 409 "both syncs dev-b (in write scope; no agent connected)" \
    POST "/api/v1/devices/$DB/sync"

step "out of scope is absent from lists"
as sop
expect 200 "sop groups" GET /api/v1/groups
assert_eq "/Managed devices/A,/Managed devices/A/A1,/Managed devices/A/y" \
    "$(json '[.groups[].path] | sort | join(",")')" "sop sees A's subtree only"
expect 200 "sop devices" GET /api/v1/devices
assert_eq "$DA" "$(json '[.devices[].id] | join(",")')" "sop sees dev-a only"
expect 200 "sop events" GET /api/v1/events
assert_not_contains "$API_BODY" "about b" "no event of B"
assert_contains "$API_BODY" "about a" "the event of A"
expect 200 "sop events of B" GET "/api/v1/events?device=$DB"
assert_eq 0 "$(json '.events | length')" "B's events filtered out"
as both
expect 200 "auditor+scoped operator devices" GET /api/v1/devices
assert_eq 3 "$(json '.devices | length')" "the auditor role reads everything"
expect 404 "auditor+scoped operator moves A" POST "/api/v1/devices/$DA/move" \
    "{\"group\":\"$B\"}"
expect 200 "auditor+scoped operator moves within B" \
    POST "/api/v1/devices/$DB/move" "{\"group\":\"$B\"}"

step "an administrator cannot delete their own account"
as admin
expect 409 "delete self" DELETE "/api/v1/admins/$(pg_sql "SELECT id FROM admins WHERE name = 'admin'")"
expect 404 "bad admin id" DELETE /api/v1/admins/abc
expect 204 "delete krb" DELETE "/api/v1/admins/$KRB"
expect 404 "deleted twice" DELETE "/api/v1/admins/$KRB"

step "lock-out after 10 failed logins"
as admin
expect 201 "create lockme" POST /api/v1/admins \
    "{\"name\":\"lockme\",\"password\":\"$PW\",\"roles\":[{\"role\":\"auditor\"}]}"
LOCK=$(json .id)
for i in $(seq 1 10); do
	api_anon POST /api/v1/login '{"user":"lockme","password":"wrong-wrong"}' \
	    >/dev/null
	assert_status 401 "failed login $i"
done
assert_eq account_locked "$(json .error.code)" "the 10th failure locks"
api_anon POST /api/v1/login "{\"user\":\"lockme\",\"password\":\"$PW\"}" >/dev/null
assert_status 401 "the right password while locked"
assert_eq account_locked "$(json .error.code)" "still locked"
api_basic lockme "$PW" GET /api/v1/whoami >/dev/null
assert_status 401 "Basic while locked"
expect 200 "admin list" GET /api/v1/admins
assert_eq true "$(json '.admins[] | select(.name == "lockme") | .locked')" \
    "listed as locked"
assert_eq 10 "$(json '.admins[] | select(.name == "lockme") | .failed_logins')" \
    "ten failures"
lu=$(json '.admins[] | select(.name == "lockme") | .locked_until')
lu_s=$(date -u -d "$lu" +%s)
now_s=$(date -u +%s)
[ $((lu_s - now_s)) -gt 3500 ] && [ $((lu_s - now_s)) -le 3600 ] ||
    fail "locked for an hour: until $lu, now $(date -u +%FT%TZ)"

step "canopyctl admin"
ctl_login
out=$(ctl admin list) || fail "ctl admin list"
assert_contains "$out" lockme "ctl admin list"
assert_contains "$out" "operator:/Managed devices/A" "ctl shows scopes"
out=$(ctl admin unlock "$LOCK") || fail "ctl admin unlock: $out"
assert_contains "$out" unlocked "ctl admin unlock output"
api_anon POST /api/v1/login "{\"user\":\"lockme\",\"password\":\"$PW\"}" >/dev/null
assert_status 200 "login after unlock"
as admin
expect 200 "audit of the unlock" GET "/api/v1/audit?action=admin_unlock"
assert_eq "$LOCK" "$(json '.audit[0].object')" "unlock audited"
assert_eq 10 "$(json '.audit[0].detail.before.failed_logins')" "with the count"
expect 200 "failed logins audited" GET "/api/v1/audit?action=login_failed&actor=lockme"
assert_eq 12 "$(json '.audit | length')" "every failed login audited (12: 10 + 2 while locked)"
out=$(printf '%s\n' "$PW" | ctl admin add ctluser --role operator \
    --role "auditor:/Managed devices/A" --password-stdin) ||
    fail "ctl admin add: $out"
assert_contains "$out" ctluser "ctl admin add output"
out=$(ctl --json admin list) || fail "ctl admin list --json"
assert_eq "auditor:/Managed devices/A,operator:null" \
    "$(json '[.admins[] | select(.name == "ctluser") | .roles[] | "\(.role):\(.scope_path)"] | sort | join(",")' "$out")" \
    "ctl admin add roles"
CTLID=$(json '.admins[] | select(.name == "ctluser") | .id' "$out")
api_login ctluser "$PW"
as admin
if out=$(printf 'short\n' | ctl admin add short --password-stdin 2>&1); then
	fail "ctl admin add accepted a short password"
fi
assert_contains "$out" password "ctl names the field"
if out=$(ctl admin add bad --role king --principal k@R 2>&1); then
	fail "ctl admin add accepted a bad role"
fi
assert_contains "$out" "role" "ctl names the role"
ctl admin delete "$CTLID" >/dev/null || fail "ctl admin delete"
out=$(ctl --json admin list) || fail "ctl admin list --json"
assert_eq "" "$(json '.admins[] | select(.name == "ctluser") | .id' "$out")" \
    "deleted by ctl"
step "ok"
