#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# TOTP (RFC 6238) for local accounts: enrolment (secret shown once,
# confirmed by a first code), login with the code (JSON body or the
# X-Canopy-TOTP header with Basic), wrong and reused codes refused and
# counted toward lock-out; sessions expire and are revoked by /logout;
# every login, failure and logout audited with the address.
set -eu
. "$(dirname "$0")/lib.sh"

# The code of base32 secret $1 at time step $2.
totp_code() {
	python3 - "$1" "$2" <<'PY'
import base64, hmac, hashlib, struct, sys
s = sys.argv[1].upper()
key = base64.b32decode(s + "=" * (-len(s) % 8))
h = hmac.new(key, struct.pack(">Q", int(sys.argv[2])), hashlib.sha1).digest()
o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}

login_body() {
	jq -cn --arg u "$1" --arg p "$2" --arg t "$3" \
	    '{user: $u, password: $p} + (if $t == "" then {} else {totp: $t} end)'
}

pg_start
canopyd_start
admin_create admin admin-pw-123
printf 'carol-pw-123\n' | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
    admin-add carol --role operator >>"$TEST_DIR/admin-add.log" 2>&1 ||
    fail "admin-add carol"

step "enrol: the secret is shown once, as an otpauth:// URI"
api_login carol carol-pw-123
api GET /api/v1/auth/totp >/dev/null
assert_status 200
assert_eq false "$(json .enabled)"
api POST /api/v1/auth/totp >/dev/null
assert_status 201
secret=$(json .secret)
uri=$(json .uri)
assert_match "$secret" '^[A-Z2-7]{32}$' "secret"
assert_match "$uri" "^otpauth://totp/Canopy:carol\\?secret=$secret&" "uri"
assert_contains "$uri" "period=30"
assert_not_contains "$(pg_sql "SELECT totp_pending FROM admins WHERE name = 'carol'")" \
    "$secret" "the stored secret is sealed"
api GET /api/v1/auth/totp >/dev/null
assert_eq true "$(json .pending)"
assert_eq false "$(json .enabled)"

step "confirm: a wrong code is refused, the right one turns TOTP on"
s_now=$(( $(date +%s) / 30 ))
bad=$(totp_code "$secret" $((s_now + 5)))
api POST /api/v1/auth/totp/confirm "{\"code\":\"$bad\"}" >/dev/null
assert_status 400
assert_error_body
api POST /api/v1/auth/totp/confirm "{\"code\":\"$(totp_code "$secret" "$s_now")\"}" >/dev/null
assert_status 200
api GET /api/v1/auth/totp >/dev/null
assert_eq true "$(json .enabled)"

step "login now needs the code"
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 "")" >/dev/null
assert_status 401
assert_eq totp_required "$(json .error.code)"
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 "$bad")" >/dev/null
assert_status 401
assert_eq totp_invalid "$(json .error.code)"
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 12ab56)" >/dev/null
assert_status 401 "malformed code"
# TOTP_CODE_MAX (16): at the limit a wrong code, over it a bad request.
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 1234567890123456)" >/dev/null
assert_status 401 "a 16-byte code"
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 12345678901234567)" >/dev/null
assert_status 400 "a 17-byte code"
assert_match "$(json .error.message)" '^totp' "the message names the field"
good=$(totp_code "$secret" $((s_now + 1)))
step "canopyctl login --password-stdin --totp CODE"
out=$(printf 'carol-pw-123\n' | ctl login --server "$CANOPYD_URL" \
    --ca "$CANOPYD_STATE/ca.pem" --user carol --password-stdin \
    --totp "$good" 2>&1) || fail "canopyctl login with TOTP: $out"
out=$(ctl whoami 2>&1) || fail "canopyctl whoami: $out"
assert_contains "$out" carol
out=$(ctl totp status 2>&1) || fail "canopyctl totp status: $out"
assert_contains "$out" enabled
step "the same code twice: refused"
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 "$good")" >/dev/null
assert_status 401 "reused code"
assert_eq totp_invalid "$(json .error.code)"
step "Basic without X-Canopy-TOTP: refused; with a wrong one: refused"
api_basic carol carol-pw-123 GET /api/v1/whoami >/dev/null
assert_status 401
assert_eq totp_required "$(json .error.code)"
rc=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CANOPYD_STATE/ca.pem" \
    -u carol:carol-pw-123 -H "X-Canopy-TOTP: $bad" "$CANOPYD_URL/api/v1/whoami")
assert_eq 401 "$rc" "Basic with a wrong code"
out=$(ctl logout 2>&1) || fail "canopyctl logout: $out"

step "sessions: work, are revoked by logout, expire"
api_login admin admin-pw-123
api GET /api/v1/whoami >/dev/null
assert_status 200
api POST /api/v1/logout >/dev/null
assert_status 204
api GET /api/v1/whoami >/dev/null
assert_status 401 "after logout"
api_login admin admin-pw-123
pg_sql "UPDATE sessions SET expires = now() - interval '1 second'
    WHERE admin_id = (SELECT id FROM admins WHERE name = 'admin')" >/dev/null
api GET /api/v1/whoami >/dev/null
assert_status 401 "an expired session"
assert_eq session_expired "$(json .error.code)"
api_login admin admin-pw-123

step "audit: logins, failures and logouts with the address"
n=$(pg_sql "SELECT count(*) FROM audit WHERE actor = 'carol'
    AND action = 'login_failed' AND addr = '127.0.0.1'")
[ "$n" -ge 5 ] || fail "expected at least 5 failed logins audited, got $n"
assert_eq 1 "$(pg_sql "SELECT count(*) FROM audit WHERE actor = 'carol'
    AND action = 'logout' AND addr = '127.0.0.1'")" "logout audited"
# Before the enrolment and with the code.
assert_eq 2 "$(pg_sql "SELECT count(*) FROM audit WHERE actor = 'carol'
    AND action = 'login' AND addr = '127.0.0.1'")" "logins audited"
assert_contains "$(pg_sql "SELECT detail FROM audit WHERE actor = 'carol'
    AND action = 'login_failed' ORDER BY id DESC LIMIT 3")" "TOTP"

step "wrong codes count toward lock-out"
for i in $(seq 12); do
	api_anon POST /api/v1/login "$(login_body carol carol-pw-123 "$bad")" >/dev/null
	assert_status 401
	[ "$(json .error.code)" != account_locked ] || break
done
assert_eq account_locked "$(json .error.code)" "locked after wrong codes"
s_now=$(( $(date +%s) / 30 ))
api_anon POST /api/v1/login "$(login_body carol carol-pw-123 \
    "$(totp_code "$secret" $((s_now + 1)))")" >/dev/null
assert_status 401 "locked: even the right code"
assert_eq account_locked "$(json .error.code)"

step "an account without TOTP logs in with the password alone"
api_anon POST /api/v1/login "$(login_body admin admin-pw-123 "")" >/dev/null
assert_status 200
