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

#ifndef CANOPY_TOTP_H
#define CANOPY_TOTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 30-second steps, six
 * digits.  Pure functions, no I/O: the server keeps the secret sealed and
 * the last step used, so that a code is accepted once.
 */
#define TOTP_STEP_S		30
#define TOTP_DIGITS		6
#define TOTP_WINDOW		1	/* steps either side of now */
#define TOTP_SECRET_LEN		20	/* bytes, as RFC 4226 recommends */
#define TOTP_B32_MAX		128	/* base32 text of a secret, at most */

/* RFC 4226: the HOTP value of counter, truncated to digits digits. */
uint32_t hotp(const uint8_t *key, size_t keylen, uint64_t counter,
	    int digits);
/*
 * Checks code (exactly TOTP_DIGITS ASCII digits) at unix time now, within
 * ±TOTP_WINDOW steps and only at steps after last_step.  1 and *step set
 * when it matches, 0 when not, -1 when code is malformed.
 */
int	 totp_verify(const uint8_t *key, size_t keylen, const char *code,
	    int64_t now, int64_t last_step, int64_t *step);
/* Base32 (RFC 4648, no padding): out must hold 8*(len+4)/5+1 bytes. */
void	 base32_encode(const uint8_t *, size_t, char *out);
/* Case-insensitive, padding and spaces ignored; -1 if malformed. */
int	 base32_decode(const char *, uint8_t *out, size_t outmax,
	    size_t *outlen);

#endif
