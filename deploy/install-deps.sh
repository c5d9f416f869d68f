#!/bin/sh
# Copyright (c) 2026 The Canopy Authors
#
# Permission to use, copy, modify, and distribute this software for any
# purpose with or without fee is hereby granted, provided that the above
# copyright notice and this permission notice appear in all copies.
#
# THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
# WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
# MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
# ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
# WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
# ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
# OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.

# Installs the Debian packages that building, testing, benchmarking and the
# demo need.  Idempotent, and silent when everything is already there.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev libssl-dev openssl
libevent-dev libmsgpack-dev libpq-dev libldap-dev libkrb5-dev libjansson-dev
postgresql postgresql-contrib ldap-utils curl ca-certificates
procps iproute2 pciutils jq libcurl4-openssl-dev
slapd krb5-kdc krb5-admin-server krb5-user libsasl2-modules-gssapi-mit
libsasl2-modules samba samba-ad-dc samba-ad-provision winbind nmap
dnsmasq-base iputils-ping"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root (or with sudo) to install them" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# slapd, the KDC and Samba are started by the tests, in their own
# directories: the packages must create no default database and start no
# service.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
printf 'krb5-config krb5-config/default_realm string CANOPY.TEST\n' |
    debconf-set-selections
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
