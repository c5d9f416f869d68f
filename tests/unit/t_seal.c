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

/* common/seal.c: sealing round trip, wrong key, wrong purpose, tampering. */
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "test.h"

int
main(void)
{
	uint8_t		 key[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	char		*s, *s2;
	uint8_t		*p;
	size_t		 len = 0;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	s = seal_encrypt(key, "ldap-bind", "s3cret", 6);
	CHECK(s != NULL);
	CHECK(strncmp(s, "v1:", 3) == 0);
	p = seal_decrypt(key, "ldap-bind", s, &len);
	CHECK(p != NULL && len == 6 && memcmp(p, "s3cret", 6) == 0);
	seal_free(p, len);
	/* A fresh nonce every time. */
	s2 = seal_encrypt(key, "ldap-bind", "s3cret", 6);
	CHECK(s2 != NULL && strcmp(s, s2) != 0);
	free(s2);
	CHECK(seal_decrypt(other, "ldap-bind", s, &len) == NULL);
	CHECK(seal_decrypt(key, "keytab", s, &len) == NULL);
	s[5] = s[5] == 'A' ? 'B' : 'A';
	CHECK(seal_decrypt(key, "ldap-bind", s, &len) == NULL);
	CHECK(seal_decrypt(key, "ldap-bind", "v1:", &len) == NULL);
	CHECK(seal_decrypt(key, "ldap-bind", "v1:AAAA", &len) == NULL);
	CHECK(seal_decrypt(key, "ldap-bind", "plain", &len) == NULL);
	free(s);
	/* Empty secrets round-trip too. */
	s = seal_encrypt(key, "x", "", 0);
	CHECK(s != NULL);
	p = seal_decrypt(key, "x", s, &len);
	CHECK(p != NULL && len == 0);
	seal_free(p, 1);
	free(s);
	TEST_DONE();
}
