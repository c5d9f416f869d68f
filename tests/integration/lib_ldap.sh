# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# OpenLDAP slapd for directory tests (sourced after lib.sh).  Each test gets
# its own slapd (mdb) with the AD/FreeIPA-like test schema of
# tests/fixtures/ldap/, on fresh loopback ports; lib.sh stops it by PID.
#
#   ldap_init SUFFIX [LDIF...]    write slapd.conf, load LDIF with slapadd -q
#                                 (the suffix entry must be in the first one)
#   ldap_tls                      make a CA and a server certificate for
#                                 127.0.0.1 (LDAP_CA, LDAP_OTHER_CA: another
#                                 CA that did not sign it); call before
#                                 ldap_start
#   LDAP_EXTRA_CONF               lines for slapd.conf's global section
#                                 (set before ldap_init), e.g. sasl-host
#   LDAP_ENV                      "NAME=VALUE ..." for slapd's environment
#                                 (e.g. KRB5_KTNAME=FILE:...)
#   LDAP_HOST                     the host in LDAP_URL (default 127.0.0.1)
#   ldap_start                    start slapd; sets LDAP_URL (ldap://),
#                                 LDAPS_URL when ldap_tls ran, LDAP_PID
#   ldap_stop                     stop it
#   ldap_modify LDIF              ldapmodify as the root DN
#   LDAP_ROOTDN / LDAP_ROOTPW     the root DN and its password
#   ldap_count FILTER             entries matching FILTER (ldapsearch)

LDAP_DIR=$TEST_DIR/slapd
LDAP_ROOTPW=root-secret-pw
LDAP_FIX=$CANOPY_ROOT/tests/fixtures/ldap
LDAP_TLS=0

ldap_init() {
	local suffix=$1
	shift
	LDAP_SUFFIX=$suffix
	LDAP_ROOTDN="cn=admin,$suffix"
	mkdir -p "$LDAP_DIR/db"
	local tlsconf=""
	if [ "$LDAP_TLS" = 1 ]; then
		tlsconf="TLSCACertificateFile $LDAP_DIR/ca.pem
TLSCertificateFile $LDAP_DIR/server.pem
TLSCertificateKeyFile $LDAP_DIR/server.key"
	fi
	cat >"$LDAP_DIR/slapd.conf" <<EOC
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include $LDAP_FIX/canopy-test.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $LDAP_DIR/slapd.pid
$tlsconf
${LDAP_EXTRA_CONF:-}
sizelimit size.soft=1000 size.hard=1000 size.prtotal=unlimited
database mdb
maxsize 1073741824
suffix "$suffix"
rootdn "$LDAP_ROOTDN"
rootpw $LDAP_ROOTPW
directory $LDAP_DIR/db
index objectClass eq
index uSNChanged eq
index entryCSN eq
EOC
	local f
	for f in "$@"; do
		slapadd -q -f "$LDAP_DIR/slapd.conf" -l "$f" \
		    >>"$LDAP_DIR/slapadd.log" 2>&1 ||
		    fail "slapadd $f: $(tail -3 "$LDAP_DIR/slapadd.log")"
	done
}

ldap_tls() {
	LDAP_TLS=1
	mkdir -p "$LDAP_DIR"
	(
		cd "$LDAP_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		    -subj "/CN=canopy test LDAP CA" -keyout ca.key \
		    -out ca.pem
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		    -subj "/CN=other CA" -keyout other.key -out other.pem
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		    -keyout server.key -out server.csr
		printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		    -CAcreateserial -days 2 -extfile ext.cnf -out server.pem
		chmod 644 server.key
	) >"$LDAP_DIR/tls.log" 2>&1 || fail "ldap_tls: $(cat "$LDAP_DIR/tls.log")"
	LDAP_CA=$LDAP_DIR/ca.pem
	LDAP_OTHER_CA=$LDAP_DIR/other.pem
}

_ldap_up() {
	ldapsearch -x -H "$LDAP_URL" -b "" -s base "(objectClass=*)" 1.1 \
	    >/dev/null 2>&1
}

ldap_start() {
	local port sport urls
	port=$(free_port)
	LDAP_URL=ldap://${LDAP_HOST:-127.0.0.1}:$port/
	urls=$LDAP_URL
	if [ "$LDAP_TLS" = 1 ]; then
		sport=$(free_port)
		LDAPS_URL=ldaps://127.0.0.1:$sport/
		urls="$urls $LDAPS_URL"
	fi
	# shellcheck disable=SC2086
	env ${LDAP_ENV:-} slapd -d 0 -f "$LDAP_DIR/slapd.conf" -h "$urls" \
	    >"$LDAP_DIR/slapd.log" 2>&1 &
	LDAP_PID=$!
	track_pid "$LDAP_PID"
	wait_for "slapd answers on $LDAP_URL" 10 _ldap_up
}

ldap_stop() {
	stop_pid "$LDAP_PID" 10
}

ldap_modify() {
	ldapmodify -x -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" \
	    -f "$1" >>"$LDAP_DIR/modify.log" 2>&1 ||
	    fail "ldapmodify $1: $(tail -5 "$LDAP_DIR/modify.log")"
}

ldap_count() {
	ldapsearch -x -LLL -H "$LDAP_URL" -D "$LDAP_ROOTDN" -w "$LDAP_ROOTPW" \
	    -E pr=1000/noprompt -b "$LDAP_SUFFIX" "$1" 1.1 2>/dev/null |
	    grep -c '^dn:' || true
}
