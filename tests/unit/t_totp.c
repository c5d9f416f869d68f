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

/* RFC 6238 / RFC 4226 test vectors, the window, reuse, base32. */
#include <stdint.h>
#include <string.h>

#include "totp.h"
#include "test.h"

static const uint8_t	 key[] = "12345678901234567890";	/* RFC 6238 */
#define KEYLEN	20

static void
code6(int64_t t, char out[7])
{
	snprintf(out, 7, "%06u", hotp(key, KEYLEN, (uint64_t)(t / 30), 6));
}

int
main(void)
{
	/* RFC 6238 appendix B, SHA-1, 8 digits. */
	static const struct { int64_t t; uint32_t v; } vec[] = {
		{ 59, 94287082 }, { 1111111109, 7081804 },
		{ 1111111111, 14050471 }, { 1234567890, 89005924 },
		{ 2000000000, 69279037 }, { 20000000000LL, 65353130 },
	};
	/* RFC 4226 appendix D: HOTP, 6 digits, counters 0..9. */
	static const uint32_t hv[] = { 755224, 287082, 359152, 969429,
	    338314, 254676, 287922, 162583, 399871, 520489 };
	char		 c[7], b32[64];
	uint8_t		 dec[64];
	size_t		 i, n;
	int64_t		 step = 0, t;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++)
		CHECK(hotp(key, KEYLEN, (uint64_t)(vec[i].t / 30), 8) ==
		    vec[i].v);
	for (i = 0; i < 10; i++)
		CHECK(hotp(key, KEYLEN, i, 6) == hv[i]);

	/* The current step and one either side; not two away. */
	t = 1111111111;
	code6(t, c);
	CHECK(totp_verify(key, KEYLEN, c, t, 0, &step) == 1);
	CHECK(step == t / 30);
	CHECK(totp_verify(key, KEYLEN, c, t + 30, 0, &step) == 1);
	CHECK(totp_verify(key, KEYLEN, c, t - 30, 0, &step) == 1);
	CHECK(totp_verify(key, KEYLEN, c, t + 60, 0, &step) == 0);
	CHECK(totp_verify(key, KEYLEN, c, t - 60, 0, &step) == 0);
	/* No reuse: a step at or before the last one used is refused. */
	CHECK(totp_verify(key, KEYLEN, c, t, t / 30, &step) == 0);
	CHECK(totp_verify(key, KEYLEN, c, t, t / 30 - 1, &step) == 1);
	/* Malformed codes. */
	CHECK(totp_verify(key, KEYLEN, "12345", t, 0, &step) == -1);
	CHECK(totp_verify(key, KEYLEN, "1234567", t, 0, &step) == -1);
	CHECK(totp_verify(key, KEYLEN, "12a456", t, 0, &step) == -1);
	CHECK(totp_verify(key, KEYLEN, "", t, 0, &step) == -1);
	CHECK(totp_verify(key, KEYLEN, NULL, t, 0, &step) == -1);

	/* Base32 (RFC 4648 test vectors, unpadded). */
	base32_encode((const uint8_t *)"foobar", 6, b32);
	CHECK_STR(b32, "MZXW6YTBOI");
	base32_encode((const uint8_t *)"f", 1, b32);
	CHECK_STR(b32, "MY");
	base32_encode(key, KEYLEN, b32);
	CHECK_STR(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	CHECK(base32_decode("gezdgnbvgy3tqojq GEZDGNBVGY3TQOJQ====", dec,
	    sizeof(dec), &n) == 0);
	CHECK(n == KEYLEN && memcmp(dec, key, KEYLEN) == 0);
	CHECK(base32_decode("MZXW1", dec, sizeof(dec), &n) == -1);
	CHECK(base32_decode("MZXW6YTBOI", dec, 3, &n) == -1);
	TEST_DONE();
}
