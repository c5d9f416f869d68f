#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# The API refuses bad requests with the right status and an error body
# {"error":{"code","message"}} (docs: shared/design/API.md): no or wrong
# credentials, malformed JSON, wrong types, out-of-range numbers, bodies over
# api-max-body, unknown ids, and locks an account out after 10 failed logins.
set -eu
. "$(dirname "$0")/lib.sh"

pg_start
canopyd_start "api-max-body 4K"
admin_create admin 'bad-input-pw-1'
admin_create victim 'victim-pw-123'
admin_create other 'other-pw-1234'
admin_create admin2 'bad-input-pw-2'

step "no credentials: 401 with both challenges"
for path in /api/v1/devices /api/v1/whoami /api/v1/enrollment-tokens; do
	api_anon GET "$path" >/dev/null
	assert_status 401 "GET $path without credentials"
	assert_error_body "GET $path without credentials"
	hdrs=$(api_header WWW-Authenticate)
	assert_match "$hdrs" '^Negotiate$' "WWW-Authenticate of GET $path"
	assert_match "$hdrs" '^Basic realm="canopy"$' "WWW-Authenticate of GET $path"
done
api_anon POST /api/v1/enrollment-tokens '{"uses":1}' >/dev/null
assert_status 401 "POST /enrollment-tokens without credentials"
assert_error_body "POST /enrollment-tokens without credentials"

step "a bearer token that does not exist"
API_TOKEN=not-a-real-token-0123456789abcdef
_api_curl bearer GET /api/v1/whoami >/dev/null
assert_status 401 "a made-up bearer token"
assert_error_body "a made-up bearer token"
API_TOKEN=""

step "wrong passwords"
api_anon POST /api/v1/login '{"user":"admin2","password":"wrong-password"}' >/dev/null
assert_status 401 "login with a wrong password"
assert_error_body "login with a wrong password"
api_anon POST /api/v1/login '{"user":"nobody-here","password":"whatever-pw"}' >/dev/null
assert_status 401 "login as an unknown user"
assert_error_body "login as an unknown user"
api_basic admin2 wrong-password GET /api/v1/whoami >/dev/null
assert_status 401 "Basic with a wrong password"
assert_error_body "Basic with a wrong password"
api_basic admin2 'bad-input-pw-2' GET /api/v1/whoami >/dev/null
assert_status 200 "Basic with the right password"
assert_eq admin2 "$(json .user)" "whoami .user with Basic"

api_login
step "malformed JSON"
for body in '{"uses":' 'not json at all' '[1,2,3' '{"uses":1}}' '{"uses":1,}'; do
	api POST /api/v1/enrollment-tokens "$body" >/dev/null
	assert_status 400 "malformed JSON '$body'"
	assert_error_body "malformed JSON '$body'"
done
api POST /api/v1/login 'garbage' >/dev/null
assert_status 400 "malformed JSON to /login"
assert_error_body "malformed JSON to /login"

step "wrong types name the field"
for body in '{"uses":"three"}' '{"uses":true}' '{"uses":[1]}' '{"uses":1.5}' \
    '{"ttl_s":"soon"}' '{"group":["x"]}' '{"group":{}}'; do
	api POST /api/v1/enrollment-tokens "$body" >/dev/null
	assert_status 400 "wrong type in $body"
	assert_error_body "wrong type in $body"
	field=$(printf %s "$body" | jq -r 'keys[0]')
	assert_contains "$(json .error.message)" "$field" "the error message for $body"
done
api POST /api/v1/enrollment-tokens '[1]' >/dev/null
assert_status 400 "a JSON array instead of an object"
assert_error_body "a JSON array instead of an object"

step "out-of-range numbers name the field"
for body in '{"uses":-1}' '{"uses":1000001}' '{"uses":2147483648}' \
    '{"ttl_s":-5}' '{"ttl_s":31536001}'; do
	api POST /api/v1/enrollment-tokens "$body" >/dev/null
	assert_status 400 "out of range: $body"
	assert_error_body "out of range: $body"
	field=$(printf %s "$body" | jq -r 'keys[0]')
	assert_contains "$(json .error.message)" "$field" "the error message for $body"
done
api POST /api/v1/enrollment-tokens '{"uses":99999999999999999999}' >/dev/null
assert_status 400 "a number too big for any integer"
assert_error_body "a number too big for any integer"
# The limits themselves are fine.
api POST /api/v1/enrollment-tokens '{"uses":1000000,"ttl_s":31536000}' >/dev/null
assert_match "$API_STATUS" '^20[01]$' "uses and ttl_s at their maximum"
api POST /api/v1/enrollment-tokens '{"group":"/No such group"}' >/dev/null
assert_match "$API_STATUS" '^(400|404)$' "an enrolment token for a missing group"
assert_error_body "an enrolment token for a missing group"

step "bad query parameters name the parameter"
for q in limit=abc limit=-1 limit=0 limit=1001 limit=99999999999999999999; do
	api GET "/api/v1/devices?$q" >/dev/null
	assert_status 400 "GET /devices?$q"
	assert_error_body "GET /devices?$q"
	assert_contains "$(json .error.message)" limit "the error message for ?$q"
done
api GET "/api/v1/devices?limit=1000" >/dev/null
assert_status 200 "GET /devices?limit=1000"

step "a body over api-max-body: 413"
pad=$(head -c 6000 /dev/zero | tr '\0' x)
printf '{"uses":1,"comment":"%s"}' "$pad" >big.json
api POST /api/v1/enrollment-tokens "@$TEST_DIR/big.json" >/dev/null
assert_status 413 "a 6000-byte body with api-max-body 4K"
assert_error_body "a body over api-max-body"
head -c 100000 /dev/zero | tr '\0' '{' >huge.json
api POST /api/v1/login "@$TEST_DIR/huge.json" >/dev/null
assert_status 413 "a 100000-byte body to /login"
assert_error_body "a 100000-byte body to /login"
assert_contains "$(json .error.message)" "api-max-body" "the 413 names the limit"
# Past API_BODY_SLACK (1 MiB over the limit) libevent refuses the body
# itself, before reading it: still 413 (with its own page), nothing read.
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' '{' >past-cap.json
api POST /api/v1/login "@$TEST_DIR/past-cap.json" >/dev/null
assert_status 413 "a 2 MiB body, past libevent's cap"
canopyd_alive || fail "canopyd died on a large body"
api GET /api/v1/whoami >/dev/null
assert_status 200 "the next request after the refused bodies"

step "unknown ids: 404"
api GET /api/v1/devices/00000000-0000-4000-8000-000000000000 >/dev/null
assert_status 404 "an unknown device id"
assert_error_body "an unknown device id"
api GET /api/v1/devices/not-a-uuid >/dev/null
assert_match "$API_STATUS" '^(400|404)$' "a malformed device id"
assert_error_body "a malformed device id"
api GET /api/v1/no-such-resource >/dev/null
assert_status 404 "an unknown resource"
assert_error_body "an unknown resource"

step "lock-out after 10 failed logins"
login_as() {
	api_anon POST /api/v1/login \
	    "$(jq -cn --arg u "$1" --arg p "$2" '{user: $u, password: $p}')" \
	    >/dev/null
}
# Nine failures do not lock...
for i in $(seq 9); do
	login_as other "wrong-$i-password"
	assert_status 401 "failed login $i of other"
done
login_as other 'other-pw-1234'
assert_status 200 "the right password after nine failures"
# ...ten do, even for the right password, and only that account.
for i in $(seq 10); do
	login_as victim "wrong-$i-password"
	assert_status 401 "failed login $i of victim"
	assert_error_body "failed login $i of victim"
done
login_as victim 'victim-pw-123'
assert_ne 200 "$API_STATUS" "login after 10 failures (locked out)"
assert_match "$API_STATUS" '^(401|403|429)$' "login of a locked-out account"
assert_error_body "login of a locked-out account"
api_basic victim 'victim-pw-123' GET /api/v1/whoami >/dev/null
assert_ne 200 "$API_STATUS" "Basic after 10 failures (locked out)"
locked=$(pg_sql "SELECT count(*) FROM admins WHERE name = 'victim' AND locked_until > now()")
assert_eq 1 "$locked" "admins.locked_until of the locked-out account"
login_as admin 'bad-input-pw-1'
assert_status 200 "another account during a lock-out"

step "the server survived all of it"
canopyd_alive || fail "canopyd exited"
assert_eq 200 "$(healthz_status)" "/healthz at the end"
canopyd_stop
