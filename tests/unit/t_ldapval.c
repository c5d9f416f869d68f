/*
 * Copyright (c) 2026 The Canopy Authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/* common/ldapval.c: attribute decoders and DN helpers. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "canopy_limits.h"
#include "ldapval.h"
#include "test.h"

int
main(void)
{
	static const uint8_t guid[16] = {
		0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff
	};
	static const uint8_t sid[] = {
		1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
		3, 0, 0, 0, 0xe8, 3, 0, 0
	};
	char		 g[37], out[512], dn[64], big[LDAPVAL_DN_MAX + 2];
	int64_t		 t;
	uint64_t	 u;

	CHECK(ldapval_guid(guid, 16, g) == 0);
	CHECK_STR(g, "00112233-4455-6677-8899-aabbccddeeff");
	CHECK(ldapval_guid("0A1B2C3D-0000-4000-8000-00000000000F", 36,
	    g) == 0);
	CHECK_STR(g, "0a1b2c3d-0000-4000-8000-00000000000f");
	CHECK(ldapval_guid("0A1B2C3D-0000-4000-8000+00000000000F", 36,
	    g) == -1);
	CHECK(ldapval_guid(guid, 15, g) == -1);

	CHECK(ldapval_sid(sid, sizeof(sid), out, sizeof(out)) == 0);
	CHECK_STR(out, "S-1-5-21-1-2-3-1000");
	CHECK(ldapval_sid(sid, sizeof(sid) - 1, out, sizeof(out)) == -1);
	CHECK(ldapval_sid(sid, sizeof(sid), out, 10) == -1);

	CHECK(ldapval_gentime("20260121101500.0Z", 17, &t) == 0);
	CHECK(t == 1768990500);
	CHECK(ldapval_gentime("20260121101500Z", 15, &t) == 0);
	CHECK(t == 1768990500);
	CHECK(ldapval_gentime("20260121121500+0200", 19, &t) == 0);
	CHECK(t == 1768990500);
	CHECK(ldapval_gentime("20261321101500Z", 15, &t) == -1);
	CHECK(ldapval_gentime("2026012110", 10, &t) == -1);

	CHECK(ldapval_filetime("134134641000000000", 18, &t) == 0);
	CHECK(t == 1768990500);
	CHECK(ldapval_filetime("0", 1, &t) == -1);
	CHECK(ldapval_filetime("9223372036854775807", 19, &t) == -1);
	CHECK(ldapval_u64("18446744073709551615", 20, &u) == 0);
	CHECK(ldapval_u64("18446744073709551616", 20, &u) == -1);

	CHECK(ldapval_filter_escape("a*(b)\\", out, sizeof(out)) == 0);
	CHECK_STR(out, "a\\2a\\28b\\29\\5c");
	CHECK(ldapval_filter_escape("((((", out, 12) == -1);

	CHECK(ldapval_dn_parent("CN=a\\,b,OU=x,DC=c", out, sizeof(out)) == 0);
	CHECK_STR(out, "OU=x,DC=c");
	CHECK(ldapval_dn_parent("cn=\"a,b\",dc=c", out, sizeof(out)) == 0);
	CHECK_STR(out, "dc=c");
	CHECK(ldapval_dn_parent("dc=c", out, sizeof(out)) == 0);
	CHECK_STR(out, "");
	CHECK(ldapval_dn_parent("cn=\"open,dc=c", out, sizeof(out)) == -1);
	CHECK(ldapval_dn_first_value("CN=a\\,b,OU=x", out, sizeof(out)) == 0);
	CHECK_STR(out, "a,b");
	CHECK(ldapval_dn_first_value("ou=K\\C3\\B6ln\\2C S,dc=x", out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "K\xc3\xb6ln, S");
	CHECK(ldapval_dn_realm("CN=x,OU=y,DC=corp,DC=Example", out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "CORP.EXAMPLE");
	CHECK(ldapval_dn_realm("CN=x,OU=y", out, sizeof(out)) == -1);

	snprintf(dn, sizeof(dn), "OU=K\\C3\\B6ln\\2C S\xc3\xbc" "d , DC=X");
	ldapval_dn_norm(dn);
	CHECK_STR(dn, "ou=k\xc3\xb6ln\\, s\xc3\xbc" "d,dc=x");
	snprintf(dn, sizeof(dn), "ou=k\xc3\xb6ln\\, s\xc3\xbc" "d,dc=x");
	ldapval_dn_norm(dn);
	CHECK_STR(dn, "ou=k\xc3\xb6ln\\, s\xc3\xbc" "d,dc=x");

	/* LDAPVAL_DN_MAX: a DN one byte longer is refused. */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "cn=", 3);
	big[LDAPVAL_DN_MAX] = '\0';
	CHECK(ldapval_dn_parent(big, out, sizeof(out)) == 0);
	big[LDAPVAL_DN_MAX] = 'a';
	big[LDAPVAL_DN_MAX + 1] = '\0';
	CHECK(ldapval_dn_parent(big, out, sizeof(out)) == -1);
	TEST_DONE();
}
