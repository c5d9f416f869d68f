#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# Kerberos SSO against a real MIT KDC: SPNEGO on the API with mutual
# authentication, principal -> account (realm-qualified), the refusals
# (unmapped, other realm, replay, clock skew, expired ticket, keytab without
# the service principal, kerberos-service) with a clear answer and a precise
# log line, the keytab uploaded through the API (sealed, never returned),
# sessions from a Negotiate login, canopyctl from the credential cache.
set -eu
. "$(dirname "$0")/lib.sh"
. "$CANOPY_ROOT/tests/integration/lib_krb.sh"

# Small, so the skew and expiry cases take seconds, not minutes.
KRB_CLOCKSKEW=3
krb_start CORP.EXAMPLE OTHER.EXAMPLE
krb_addprinc alice@CORP.EXAMPLE alicepw
krb_addprinc alice@OTHER.EXAMPLE alicepw2
krb_addprinc bob@CORP.EXAMPLE bobpw
krb_addprinc HTTP/localhost@CORP.EXAMPLE
krb_addprinc HTTP/localhost@OTHER.EXAMPLE
krb_addprinc HTTP/elsewhere@CORP.EXAMPLE
KT=$KRB_DIR/http.keytab
krb_ktadd "$KT" HTTP/localhost@CORP.EXAMPLE HTTP/localhost@OTHER.EXAMPLE
krb_ktadd "$KRB_DIR/wrong.keytab" HTTP/elsewhere@CORP.EXAMPLE

pg_start
canopyd_start "kerberos-keytab $KT"
admin_create admin admin-pw-123
# alice: Kerberos only.  bob: a local account of the same user name as the
# principal bob@CORP.EXAMPLE, which must never match it.
"$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" admin-add alice \
    --principal alice@CORP.EXAMPLE </dev/null >>"$TEST_DIR/admin-add.log" 2>&1 ||
    fail "admin-add alice: $(tail -n 5 "$TEST_DIR/admin-add.log")"
printf "bobpw-local\n" | "$CANOPY_BUILD/canopyd" -c "$CANOPYD_CONF" \
    admin-add bob --role auditor >>"$TEST_DIR/admin-add.log" 2>&1 || fail "admin-add bob"

step "no credentials: both challenges"
api_anon GET /api/v1/whoami >/dev/null
assert_status 401
assert_error_body
hdrs=$(api_header WWW-Authenticate)
assert_contains "$hdrs" Negotiate "challenge"
assert_contains "$hdrs" 'Basic realm="canopy"' "challenge"

step "GET /auth/kerberos: the configured keytab"
api GET /api/v1/auth/kerberos >/dev/null
assert_status 200
assert_eq true "$(json .enabled)" "enabled"
assert_eq config "$(json .source)" "source"
assert_contains "$(json '.principals | join(",")')" HTTP/localhost@CORP.EXAMPLE

step "alice@CORP.EXAMPLE: SPNEGO whoami with mutual authentication"
krb_kinit alice@CORP.EXAMPLE alicepw
krb_curl "$CANOPYD_URL/api/v1/whoami"
[ "$KRB_STATUS" = 200 ] || fail "whoami by Negotiate: $KRB_STATUS $KRB_BODY $(tail -n 5 "$CANOPYD_LOG")"
assert_eq alice "$(json .user "$KRB_BODY")" "user"
assert_eq alice@CORP.EXAMPLE "$(json .principal "$KRB_BODY")" "principal"
assert_eq kerberos "$(json .method "$KRB_BODY")" "method"
assert_match "$(krb_header WWW-Authenticate)" '^Negotiate [A-Za-z0-9+/=]{20,}' \
    "mutual-authentication token"

step "POST /login with Negotiate: a session"
krb_curl -X POST "$CANOPYD_URL/api/v1/login"
[ "$KRB_STATUS" = 200 ] || fail "login by Negotiate: $KRB_STATUS $KRB_BODY"
tok=$(json .token "$KRB_BODY")
assert_eq alice "$(json .user "$KRB_BODY")"
saved=$API_TOKEN
API_TOKEN=$tok
api GET /api/v1/whoami >/dev/null
assert_status 200
assert_eq session "$(json .method)"
assert_eq alice@CORP.EXAMPLE "$(json .principal)"
api POST /api/v1/logout >/dev/null
assert_status 204
api GET /api/v1/whoami >/dev/null
assert_status 401 "a revoked session"
API_TOKEN=$saved
n=$(pg_sql "SELECT count(*) FROM audit WHERE action = 'login'
    AND detail::jsonb->>'principal' = 'alice@CORP.EXAMPLE' AND addr IS NOT NULL")
assert_eq 1 "$n" "audited Kerberos login with principal and address"

step "replayed token: refused"
curl -s --max-time 30 --negotiate -u : --cacert "$CANOPYD_STATE/ca.pem" \
    -v -o /dev/null "$CANOPYD_URL/api/v1/whoami" 2>"$TEST_DIR/.trace"
tok=$(tr -d '\r' <"$TEST_DIR/.trace" |
    sed -n 's/^> Authorization: Negotiate \([A-Za-z0-9+/=]*\)$/\1/p' | head -n 1)
[ -n "$tok" ] || fail "no Negotiate token in curl's trace"
rc=$(curl -s --max-time 30 --cacert "$CANOPYD_STATE/ca.pem" \
    -H "Authorization: Negotiate $tok" -o "$TEST_DIR/.replay" \
    -w '%{http_code}' "$CANOPYD_URL/api/v1/whoami")
assert_eq 401 "$rc" "replayed token"
assert_contains "$(cat "$TEST_DIR/.replay")" "replay"
wait_for "the replay in the log" 10 grep -q 'replayed authenticator' "$CANOPYD_LOG"

step "unmapped principal bob@CORP.EXAMPLE (a local 'bob' exists): refused"
krb_kinit bob@CORP.EXAMPLE bobpw
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 401 "$KRB_STATUS" "unmapped principal"
assert_eq unknown_principal "$(json .error.code "$KRB_BODY")"
assert_contains "$KRB_BODY" "bob@CORP.EXAMPLE"
wait_for "unknown principal in the log" 10 grep -q 'unknown principal bob@CORP.EXAMPLE' "$CANOPYD_LOG"

step "alice@OTHER.EXAMPLE (same user, other realm): refused"
krb_kinit alice@OTHER.EXAMPLE alicepw2
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 401 "$KRB_STATUS" "other realm"
assert_contains "$KRB_BODY" "alice@OTHER.EXAMPLE"
wait_for "wrong realm in the log" 10 grep -q 'wrong realm: alice@OTHER.EXAMPLE' "$CANOPYD_LOG"

step "clock skew: a token older than the allowed skew"
krb_kinit alice@CORP.EXAMPLE alicepw
tok=$(krb_capture_token)
t_end=$(( $(date +%s) + KRB_CLOCKSKEW + 2 ))
_past() { [ "$(date +%s)" -ge "$t_end" ]; }
wait_for "the skew to pass" 20 _past
rc=$(curl -s --max-time 30 --cacert "$CANOPYD_STATE/ca.pem" \
    -H "Authorization: Negotiate $tok" -o "$TEST_DIR/.skew" \
    -w '%{http_code}' "$CANOPYD_URL/api/v1/whoami")
assert_eq 401 "$rc" "skewed token"
assert_contains "$(cat "$TEST_DIR/.skew")" "clocks"
wait_for "clock skew in the log" 10 grep -q 'clock skew too great' "$CANOPYD_LOG"

step "expired ticket: refused"
# Five seconds of life: enough to make the token even on a loaded machine.
t0=$(date +%s)
krb_kinit alice@CORP.EXAMPLE alicepw 5s
tok=$(krb_capture_token)
t_end=$(( t0 + 5 + KRB_CLOCKSKEW + 2 ))
wait_for "the ticket to expire" 20 _past
rc=$(curl -s --max-time 30 --cacert "$CANOPYD_STATE/ca.pem" \
    -H "Authorization: Negotiate $tok" -o "$TEST_DIR/.expired" \
    -w '%{http_code}' "$CANOPYD_URL/api/v1/whoami")
assert_eq 401 "$rc" "expired ticket"
assert_contains "$(cat "$TEST_DIR/.expired")" "expired"
wait_for "expiry in the log" 10 grep -q 'ticket expired' "$CANOPYD_LOG"

step "PUT /auth/kerberos: bad input"
api PUT /api/v1/auth/kerberos '{"keytab_b64":"bm90IGEga2V5dGFi"}' >/dev/null
assert_status 400 "not a keytab"
assert_match "$(json .error.message)" '^keytab_b64' "message names the field"
# One byte over KRB_KEYTAB_MAX (65536), and exactly at it (not a keytab).
big=$(head -c 65537 /dev/zero | base64 -w0)
api PUT /api/v1/auth/kerberos "{\"keytab_b64\":\"$big\"}" >/dev/null
assert_status 400 "a keytab over the limit"
assert_match "$(json .error.message)" '^keytab_b64' "over the limit"
api PUT /api/v1/auth/kerberos '{}' >/dev/null
assert_status 400 "no keytab_b64"
api GET /api/v1/auth/kerberos >/dev/null
assert_eq config "$(json .source)" "still the configured keytab"

step "PUT /auth/kerberos: a keytab without HTTP/localhost"
body=$(jq -cn --arg k "$(base64 -w0 "$KRB_DIR/wrong.keytab")" '{keytab_b64: $k}')
api PUT /api/v1/auth/kerberos "$body" >/dev/null
assert_status 200
assert_eq HTTP/elsewhere@CORP.EXAMPLE "$(json '.principals | join(",")')"
assert_not_contains "$API_BODY" keytab_b64
krb_kinit alice@CORP.EXAMPLE alicepw
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 401 "$KRB_STATUS" "keytab without the service principal"
wait_for "missing service principal in the log" 10 \
    grep -q 'is missing the service principal' "$CANOPYD_LOG"

step "PUT /auth/kerberos: the right keytab, stored sealed"
body=$(jq -cn --arg k "$(base64 -w0 "$KT")" '{keytab_b64: $k}')
api PUT /api/v1/auth/kerberos "$body" >/dev/null
assert_status 200
api GET /api/v1/auth/kerberos >/dev/null
assert_eq upload "$(json .source)"
assert_contains "$(json '.principals | join(",")')" HTTP/localhost@CORP.EXAMPLE
assert_not_contains "$API_BODY" "$(base64 -w0 "$KT" | head -c 40)"
sealed=$(pg_sql "SELECT sealed FROM kerberos_keytab")
assert_not_contains "$sealed" "$(base64 -w0 "$KT" | head -c 40)" "sealed keytab"
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 200 "$KRB_STATUS" "after the upload"
api_basic bob bobpw-local GET /api/v1/auth/kerberos >/dev/null
assert_status 403 "a non-administrator reads the keytab state"

ctl_login
out=$(ctl kerberos show 2>&1) || fail "canopyctl kerberos show: $out"
assert_contains "$out" "HTTP/localhost@CORP.EXAMPLE" "canopyctl kerberos show"
out=$(ctl kerberos set-keytab "$KT" 2>&1) || fail "canopyctl kerberos set-keytab: $out"
assert_contains "$out" enabled

step "after a restart without the keytab file: the uploaded one is used"
canopyd_stop
canopyd_conf
canopyd_start
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 200 "$KRB_STATUS" "uploaded keytab after restart"

step "kerberos-service: only tickets for that principal are accepted"
canopyd_stop
canopyd_conf "kerberos-service HTTP/elsewhere@CORP.EXAMPLE"
canopyd_start
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 401 "$KRB_STATUS" "a ticket for another service principal"
wait_for "the service mismatch in the log" 10 \
    grep -q 'not for kerberos-service HTTP/elsewhere@CORP.EXAMPLE' "$CANOPYD_LOG"
canopyd_stop
canopyd_conf "kerberos-service HTTP/localhost@CORP.EXAMPLE"
canopyd_start
krb_curl "$CANOPYD_URL/api/v1/whoami"
assert_eq 200 "$KRB_STATUS" "a ticket for kerberos-service"

step "Basic and Bearer still work"
api_basic admin admin-pw-123 GET /api/v1/whoami >/dev/null
assert_status 200

step "canopyctl: whoami and login from the credential cache, no password"
# A configuration directory of its own: no saved session at first.
kctl() {
	"$CANOPY_BUILD/canopyctl" --config-dir "$TEST_DIR/ctl-krb" "$@"
}
krb_kinit alice@CORP.EXAMPLE alicepw
out=$(kctl whoami --server "$CANOPYD_URL" --ca "$CANOPYD_STATE/ca.pem" \
    </dev/null 2>&1) || fail "canopyctl whoami by Kerberos: $out"
assert_contains "$out" alice@CORP.EXAMPLE "canopyctl whoami"
out=$(kctl login --server "$CANOPYD_URL" --ca "$CANOPYD_STATE/ca.pem" \
    </dev/null 2>&1) || fail "canopyctl login by Kerberos: $out"
assert_contains "$out" "as alice" "canopyctl login"
kdestroy >/dev/null 2>&1 || true
out=$(kctl whoami </dev/null 2>&1) || fail "canopyctl whoami with the session: $out"
assert_contains "$out" alice@CORP.EXAMPLE "whoami with the saved session"
# Without a ticket and without a session: a clear refusal, no prompt.
rc=0
out=$("$CANOPY_BUILD/canopyctl" --config-dir "$TEST_DIR/ctl-empty" whoami \
    --server "$CANOPYD_URL" --ca "$CANOPYD_STATE/ca.pem" </dev/null 2>&1) || rc=$?
assert_ne 0 "$rc" "canopyctl whoami without a ticket"
assert_contains "$out" "Kerberos login" "canopyctl without a ticket"
# A password only when asked for.
out=$(printf 'admin-pw-123\n' | kctl login --user admin --password-stdin 2>&1) ||
    fail "canopyctl login --password-stdin: $out"
out=$(kctl whoami </dev/null 2>&1) || fail "whoami as admin: $out"
assert_contains "$out" admin
