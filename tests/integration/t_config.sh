#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# canopyd -n / -nv on good and bad configurations (exit status, messages of
# the form "file:line: ..."), and SIGHUP: a broken file keeps the running
# configuration (and the log says why), a good one is applied.
set -eu
. "$(dirname "$0")/lib.sh"

need_bin canopyd
pg_start
canopyd_conf "api-max-body 4K"
GOOD=$CANOPYD_CONF

# check_conf FILE [-nv]: runs canopyd -n; sets CONF_RC and CONF_OUT.
check_conf() {
	CONF_RC=0
	CONF_OUT=$(timeout 30 "$CANOPY_BUILD/canopyd" "${2:--n}" -c "$1" 2>&1) ||
	    CONF_RC=$?
	echo "canopyd ${2:--n} -c $1 -> $CONF_RC: $CONF_OUT"
}

# expect_bad FILE LINE WHAT: -n fails naming FILE:LINE.
expect_bad() {
	check_conf "$1"
	assert_ne 0 "$CONF_RC" "exit status of canopyd -n on $3"
	assert_contains "$CONF_OUT" "$1:$2:" "canopyd -n output on $3"
}

step "a good configuration passes"
check_conf "$GOOD"
assert_eq 0 "$CONF_RC" "exit status of canopyd -n on a good file"

step "an unknown keyword"
cp "$GOOD" bad1.conf
echo "frobnicate yes" >>bad1.conf
expect_bad "$TEST_DIR/bad1.conf" "$(wc -l <bad1.conf)" "an unknown keyword"
assert_contains "$CONF_OUT" frobnicate "the message about an unknown keyword"

step "a port out of range"
sed "s/^listen api 127.0.0.1:.*/listen api 127.0.0.1:70000/" "$GOOD" >bad2.conf
line=$(grep -n '^listen api' bad2.conf | cut -d: -f1)
expect_bad "$TEST_DIR/bad2.conf" "$line" "port 70000"
sed "s/^listen agents 127.0.0.1:.*/listen agents 127.0.0.1:0x/" "$GOOD" >bad3.conf
line=$(grep -n '^listen agents' bad3.conf | cut -d: -f1)
expect_bad "$TEST_DIR/bad3.conf" "$line" "port 0x"

step "a bad size and an unterminated quote"
cp "$GOOD" bad4.conf
echo "max-frame lots" >>bad4.conf
expect_bad "$TEST_DIR/bad4.conf" "$(wc -l <bad4.conf)" "a size that is not one"
assert_contains "$CONF_OUT" max-frame "the message about a bad size"
sed 's/^server-name .*/server-name "unterminated/' "$GOOD" >bad5.conf
line=$(grep -n '^server-name' bad5.conf | cut -d: -f1)
expect_bad "$TEST_DIR/bad5.conf" "$line" "an unterminated quote"
cp "$GOOD" bad7.conf
echo "log-level loud" >>bad7.conf
expect_bad "$TEST_DIR/bad7.conf" "$(wc -l <bad7.conf)" "an unknown log-level"

step "a missing database"
grep -v '^database' "$GOOD" >bad6.conf
check_conf "$TEST_DIR/bad6.conf"
assert_ne 0 "$CONF_RC" "exit status of canopyd -n without a database"
assert_contains "$CONF_OUT" "$TEST_DIR/bad6.conf" "the message about a missing database"
assert_contains "$CONF_OUT" database "the message about a missing database"

step "a file that does not exist"
check_conf "$TEST_DIR/nonexistent.conf"
assert_ne 0 "$CONF_RC" "exit status of canopyd -n on a missing file"
assert_contains "$CONF_OUT" "$TEST_DIR/nonexistent.conf" "the message about a missing file"

step "-nv prints a normalised configuration that passes -n"
rc=0
"$CANOPY_BUILD/canopyd" -nv -c "$GOOD" >norm1.conf 2>nv.err || rc=$?
assert_eq 0 "$rc" "exit status of canopyd -nv ($(cat nv.err))"
norm=$(cat norm1.conf)
assert_contains "$norm" "$CANOPYD_API_PORT" "canopyd -nv output"
assert_contains "$norm" "$CANOPYD_AGENT_PORT" "canopyd -nv output"
assert_contains "$norm" "$CANOPYD_STATE" "canopyd -nv output"
assert_contains "$norm" "test-$TEST_NAME" "canopyd -nv output"
check_conf "$TEST_DIR/norm1.conf"
assert_eq 0 "$CONF_RC" "exit status of canopyd -n on the -nv output"
# Normalising twice changes nothing.
"$CANOPY_BUILD/canopyd" -nv -c "$TEST_DIR/norm1.conf" >norm2.conf 2>nv.err ||
    fail "canopyd -nv on its own output: $(cat nv.err)"
assert_eq "$(grep -v '^#' norm1.conf)" "$(grep -v '^#' norm2.conf)" \
    "-nv of the -nv output"

step "SIGHUP"
canopyd_start
admin_create admin 'config-test-pw-1'
api_login

# A request of 8 KiB: over the 4K limit now, under 1M later.
pad=$(head -c 8000 /dev/zero | tr '\0' x)
printf '{"uses":1,"comment":"%s"}' "$pad" >big.json
api POST /api/v1/enrollment-tokens "@$TEST_DIR/big.json" >/dev/null
assert_status 413 "an 8000-byte body with api-max-body 4K"

step "SIGHUP with a broken file keeps the old configuration"
cp "$GOOD" "$CANOPYD_CONF.orig"
sed -i 's/^api-max-body .*/api-max-body 1M/' "$CANOPYD_CONF"
echo "frobnicate yes" >>"$CANOPYD_CONF"
badline=$(wc -l <"$CANOPYD_CONF")
kill -HUP "$CANOPYD_PID"
wait_for "the log to name the broken line after SIGHUP" 20 \
    grep -qF "$CANOPYD_CONF:$badline:" "$CANOPYD_LOG"
canopyd_alive || fail "canopyd exited on SIGHUP with a broken configuration"
assert_eq 200 "$(healthz_status)" "/healthz after a failed reload"
api POST /api/v1/enrollment-tokens "@$TEST_DIR/big.json" >/dev/null
assert_status 413 "the old api-max-body after a failed reload"

step "SIGHUP with a good changed file applies it"
sed -e 's/^api-max-body .*/api-max-body 1M/' \
    -e 's/^log-level .*/log-level debug/' "$CANOPYD_CONF.orig" >"$CANOPYD_CONF"
kill -HUP "$CANOPYD_PID"
not_413() {
	api POST /api/v1/enrollment-tokens "@$TEST_DIR/big.json" >/dev/null
	[ "$API_STATUS" != 413 ]
}
wait_for "api-max-body 1M to apply after SIGHUP" 20 not_413
# Accepted, or refused for its content, but not for its size.
assert_match "$API_STATUS" '^(200|201|400)$' "the 8000-byte body after the reload"
canopyd_alive || fail "canopyd exited on SIGHUP with a good configuration"
assert_eq 200 "$(healthz_status)" "/healthz after a reload"

canopyd_stop
