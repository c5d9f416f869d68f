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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "canopy_limits.h"
#include "test.h"

/* scrypt("password", "NaCl", N=1024, r=8, p=16, 64): RFC 7914 section 12. */
static const char rfc7914[] =
    "$scrypt$ln=10,r=8,p=16$TmFDbA==$"
    "/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDa"
    "xyevuUqD7m2DYMvfoswGQA==";

static void
t_roundtrip(void)
{
	char	 h1[PW_HASH_MAX], h2[PW_HASH_MAX];

	CHECK(pw_hash("correct horse battery", h1, sizeof(h1)) == 0);
	CHECK(strncmp(h1, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
	CHECK(strlen(h1) < PW_HASH_MAX);
	CHECK(pw_verify("correct horse battery", h1) == 1);
	CHECK(pw_verify("correct horse batterz", h1) == 0);
	CHECK(pw_verify("", h1) == 0);
	CHECK(pw_verify("correct horse battery ", h1) == 0);

	/* A fresh salt each time. */
	CHECK(pw_hash("correct horse battery", h2, sizeof(h2)) == 0);
	CHECK(strcmp(h1, h2) != 0);
	CHECK(pw_verify("correct horse battery", h2) == 1);

	/* Too small an output buffer is an error, not a truncation. */
	CHECK(pw_hash("x", h2, 20) == -1);
}

static void
t_known_answer(void)
{
	CHECK(pw_verify("password", rfc7914) == 1);
	CHECK(pw_verify("Password", rfc7914) == 0);
}

static void
t_malformed(void)
{
	static const char *bad[] = {
		"",
		"plain",
		"$2b$12$abcdefghijklmnopqrstuv",
		"$scrypt$",
		"$scrypt$ln=15,r=8,p=1",
		"$scrypt$ln=15,r=8,p=1$",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$",
		"$scrypt$ln=15,r=8,p=1$$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$r=8,ln=15,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=015,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=-1,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$scrypt$ln=15,r=8,p=1$c2Fsd*NhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFz=A==",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFz aGhhc2hoYXNoaGFzaA=",
		/* salt too short (2 bytes), hash too short (4 bytes) */
		"$scrypt$ln=15,r=8,p=1$c2E=$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==",
		"$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==$",
		"$scrypt$ln=15,r=8,p=1,x=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		NULL
	};
	char	 huge[PW_HASH_MAX + 10];
	int	 i;

	for (i = 0; bad[i] != NULL; i++) {
		if (pw_verify("password", bad[i]) != -1) {
			fprintf(stderr, "accepted malformed: %s\n", bad[i]);
			CHECK(0);
		} else
			CHECK(1);
	}
	CHECK(pw_verify("password", NULL) == -1);

	memset(huge, 'A', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	memcpy(huge, "$scrypt$ln=15,r=8,p=1$", 22);
	CHECK(pw_verify("password", huge) == -1);
}

/* Out-of-bounds cost parameters are refused before any work is done. */
static void
t_bounds(void)
{
	static const char *absurd[] = {
		"$scrypt$ln=9,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=21,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=99,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=0,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=99,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=15,r=8,p=99$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=123,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		/* each bound alone is fine, together 128*r*N*p is too much */
		"$scrypt$ln=20,r=16,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		"$scrypt$ln=20,r=8,p=16$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
		NULL
	};
	int	 i;

	for (i = 0; absurd[i] != NULL; i++) {
		if (pw_verify("password", absurd[i]) != -1) {
			fprintf(stderr, "accepted parameters: %s\n", absurd[i]);
			CHECK(0);
		} else
			CHECK(1);
	}
	/* The lowest accepted cost parses and simply does not match. */
	CHECK(pw_verify("password",
	    "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==")
	    == 0);
}

static void
t_ct_equal(void)
{
	CHECK(ct_equal("abc", "abc", 3) == 1);
	CHECK(ct_equal("abc", "abd", 3) == 0);
	CHECK(ct_equal("", "", 0) == 1);
}

int
main(void)
{
	t_ct_equal();
	t_known_answer();
	t_malformed();
	t_bounds();
	t_roundtrip();
	TEST_DONE();
}
