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

/*
 * libFuzzer target for the TOTP input parsers: base32_decode (secrets) and
 * totp_verify's code parsing.  Checks the contract: a decoded secret
 * encodes back to the canonical text, and only six digits are a code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "totp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 s[TOTP_B32_MAX * 2 + 1], enc[TOTP_B32_MAX * 2 + 8];
	uint8_t	 dec[TOTP_B32_MAX], dec2[TOTP_B32_MAX];
	size_t	 n = 0, n2 = 0, i;
	int64_t	 step = 0;
	int	 r, digits = 1;

	if (size > TOTP_B32_MAX * 2)
		size = TOTP_B32_MAX * 2;
	memcpy(s, data, size);
	s[size] = '\0';
	if (base32_decode(s, dec, sizeof(dec), &n) == 0) {
		if (n > sizeof(dec))
			abort();
		base32_encode(dec, n, enc);
		if (base32_decode(enc, dec2, sizeof(dec2), &n2) != 0 ||
		    n2 != n || memcmp(dec, dec2, n) != 0)
			abort();
	}
	r = totp_verify((const uint8_t *)"12345678901234567890", 20, s,
	    1111111111, 0, &step);
	for (i = 0; i < strlen(s); i++)
		if (s[i] < '0' || s[i] > '9')
			digits = 0;
	if ((r == -1) != !(strlen(s) == TOTP_DIGITS && digits))
		abort();
	return 0;
}
