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

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "totp.h"

uint32_t
hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits)
{
	uint8_t		 msg[8], md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	uint32_t	 bin, mod = 1;
	int		 i, off;

	for (i = 7; i >= 0; i--) {
		msg[i] = counter & 0xff;
		counter >>= 8;
	}
	if (HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), md,
	    &mdlen) == NULL || mdlen < 20)
		return UINT32_MAX;
	/* RFC 4226 5.3: dynamic truncation. */
	off = md[mdlen - 1] & 0x0f;
	bin = ((uint32_t)(md[off] & 0x7f) << 24) |
	    ((uint32_t)md[off + 1] << 16) | ((uint32_t)md[off + 2] << 8) |
	    (uint32_t)md[off + 3];
	for (i = 0; i < digits; i++)
		mod *= 10;
	return bin % mod;
}

int
totp_verify(const uint8_t *key, size_t keylen, const char *code,
    int64_t now, int64_t last_step, int64_t *step)
{
	uint32_t	 want = 0, got;
	int64_t		 t, s;
	int		 i, match = 0;

	if (code == NULL || strlen(code) != TOTP_DIGITS)
		return -1;
	for (i = 0; i < TOTP_DIGITS; i++) {
		if (code[i] < '0' || code[i] > '9')
			return -1;
		want = want * 10 + (uint32_t)(code[i] - '0');
	}
	if (now < 0)
		return 0;
	t = now / TOTP_STEP_S;
	/* Every step is computed: the time taken says nothing. */
	for (s = t - TOTP_WINDOW; s <= t + TOTP_WINDOW; s++) {
		if (s < 0)
			continue;
		got = hotp(key, keylen, (uint64_t)s, TOTP_DIGITS);
		if (got == want && s > last_step && !match) {
			match = 1;
			*step = s;
		}
	}
	return match;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void
base32_encode(const uint8_t *in, size_t len, char *out)
{
	uint32_t	 buf = 0;
	int		 bits = 0;
	size_t		 i, o = 0;

	for (i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(buf << (5 - bits)) & 31];
	out[o] = '\0';
}

int
base32_decode(const char *s, uint8_t *out, size_t outmax, size_t *outlen)
{
	uint32_t	 buf = 0;
	int		 bits = 0, v;
	size_t		 o = 0;
	char		 c;

	for (; *s != '\0'; s++) {
		c = *s;
		if (c == '=' || c == ' ' || c == '-')
			continue;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return -1;
		buf = (buf << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (o >= outmax)
				return -1;
			out[o++] = (buf >> (bits - 8)) & 0xff;
			bits -= 8;
		}
	}
	*outlen = o;
	return 0;
}
