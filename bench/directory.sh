#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# bench/directory.sh: LDAP directory polls against a real slapd, each beside
# ldapsearch on the same server in the same run:
#
#   full import      BENCH_DIR_COMPUTERS (100000) AD-like computers, paged
#                    at 1000, written to PostgreSQL and merged into devices,
#                    next to ldapsearch -E pr=1000 fetching the same entries
#                    and attributes to /dev/null (target ratio <= 1.5)
#   no-change poll   an incremental poll when nothing changed (< 50 ms)
#   1,000 changes    an incremental poll after 1,000 modified computers
#
# Uses the optimised build (CANOPY_BUILD, default ./build).  Prints a
# Markdown table.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CANOPY_ROOT=$ROOT
export CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build}
export CANOPY_TEST_NAME=bench-directory
export CANOPYD_LOG_LEVEL=warn
N=${BENCH_DIR_COMPUTERS:-100000}

# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=../tests/integration/lib_ldap.sh
. "$ROOT/tests/integration/lib_ldap.sh"
need_bin canopyd
command -v slapd >/dev/null || skip "slapd is not installed"

say() { printf '%s\n' "$*" >&2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
now_ms() { date +%s%3N; }
B=dc=corp,dc=example

say "generating $N computers"
bash "$ROOT/tests/fixtures/ldap/gen-tree.sh" "$N" 0 >"$TEST_DIR/tree.ldif"
ldap_init dc=example "$TEST_DIR/tree.ldif"
ldap_start
pg_start
[ -z "${BENCH_DIR_PGLOG:-}" ] || { pg_sql "ALTER SYSTEM SET log_min_duration_statement = 50" >/dev/null; pg_sql "SELECT pg_reload_conf()" >/dev/null; }
canopyd_start
admin_create admin 'bench-dir-pw-1'
api_login

POLLS0=0
polled() {
	api GET "/api/v1/directory/sources/$SRC" >/dev/null
	[ "$(json .polls)" -gt "$POLLS0" ] && [ "$(json .state)" != polling ]
}
poll_now() {
	api GET "/api/v1/directory/sources/$SRC" >/dev/null
	POLLS0=$(json .polls)
	api POST "/api/v1/directory/sources/$SRC/poll" >/dev/null
	assert_status 202 poll
	wait_for "the poll" 600 polled
	[ "$(json .state)" = ok ] || fail "poll: $(json .last_error)"
}

say "ldapsearch: the same entries and attributes"
ATTRS="objectClass cn name ou sAMAccountName dNSHostName operatingSystem operatingSystemVersion objectGUID objectSid userAccountControl lastLogonTimestamp whenChanged uSNChanged member memberOf"
FILTER='(&(!(isDeleted=TRUE))(|(objectClass=computer)(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)))'
t0=$(now_ms)
# shellcheck disable=SC2086
ldapsearch -x -LLL -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" \
    -E pr=1000/noprompt -b "$B" "$FILTER" $ATTRS >"$TEST_DIR/ls.out"
LS_MS=$(( $(now_ms) - t0 ))
LS_N=$(grep -c '^dn:' "$TEST_DIR/ls.out")

say "canopyd: full import"
api POST /api/v1/directory/sources "{\"name\":\"bench\",\"flavor\":\"ad\",\"url\":\"$LDAP_URL\",\"base_dn\":\"$B\",\"bind\":{\"method\":\"simple\",\"dn\":\"$LDAP_ROOTDN\",\"password\":\"$LDAP_ROOTPW\"}}" >/dev/null
assert_status 201 "create source"
SRC=$(json .id)
t0=$(now_ms)
wait_for "the first poll" 900 polled
WALL_MS=$(( $(now_ms) - t0 ))
[ "$(json .state)" = ok ] || fail "import: $(json .last_error)"
FULL_MS=$(json .last_ms)
FULL_LDAP_MS=$(json .last_ldap_ms)
FULL_N=$(json .last_fetched)
DEVS=$(pg_sql "SELECT count(*) FROM devices WHERE source = 'directory'")

say "no-change incremental poll"
poll_now
NOCH_MS=$(json .last_ms)
CH_LDAP_MS=$(json .last_ldap_ms)
NOCH_LDAP_MS=$(json .last_ldap_ms)
NOCH_N=$(json .last_fetched)

say "1,000 changes"
for i in $(seq 2 1001); do
	printf -v n 'WS%05d' "$i"
	if [ $((i % 10)) = 0 ]; then
		printf 'dn: cn=%s,ou=Köln\\, Süd,ou=Sites,%s\n' "$n" "$B"
	elif [ $((i % 10)) = 1 ]; then
		printf 'dn: cn=%s,ou=Servers,ou=Berlin,ou=Sites,%s\n' "$n" "$B"
	else
		printf 'dn: cn=%s,ou=Workstations,ou=Berlin,ou=Sites,%s\n' "$n" "$B"
	fi
	printf 'changetype: modify\nreplace: operatingSystem\noperatingSystem: Windows 12\n-\n'
	printf 'replace: uSNChanged\nuSNChanged: %d\n\n' $((10000000 + i))
done >"$TEST_DIR/changes.ldif"
ldap_modify "$TEST_DIR/changes.ldif"
poll_now
CH_MS=$(json .last_ms)
CH_LDAP_MS=$(json .last_ldap_ms)
CH_N=$(json .last_fetched)
CH_DEV=$(pg_sql "SELECT count(*) FROM devices WHERE os = 'Windows 12'")

cat <<EOT
| Directory benchmark ($N computers, slapd, page size 1000) | Canopy | Peer | Ratio |
|---|---|---|---|
| Full import, LDAP part (connect, bind, paged search, decode): $FULL_N entries | $FULL_LDAP_MS ms | ldapsearch, $LS_N entries: $LS_MS ms | $(ratio "$FULL_LDAP_MS" "$LS_MS") |
| Full import, whole poll incl. PostgreSQL ($DEVS devices created) | $FULL_MS ms (API wall $WALL_MS ms) | ldapsearch: $LS_MS ms | $(ratio "$FULL_MS" "$LS_MS") |
| Incremental poll, no changes ($NOCH_N entries) | $NOCH_MS ms (LDAP $NOCH_LDAP_MS ms) | target < 50 ms | |
| Incremental poll after 1,000 changes ($CH_N entries, $CH_DEV devices updated) | $CH_MS ms (LDAP $CH_LDAP_MS ms) | | |
EOT
canopyd_stop
