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

#ifndef CANOPY_UTIL_H
#define CANOPY_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int	 rand_bytes(void *, size_t);
/* A token of nbytes random bytes, URL-safe base64 without padding. */
char	*token_new(size_t nbytes);
void	 hex_encode(const void *, size_t, char *out);	/* out: 2n+1 */
void	 sha256_hex(const void *, size_t, char out[65]);
void	 sha256(const void *, size_t, uint8_t out[32]);
char	*b64_encode(const void *, size_t);		/* malloc'd */
/* Decodes standard base64; malloc'd or NULL; *outlen set. */
uint8_t	*b64_decode(const char *, size_t, size_t *outlen);

uint64_t mono_ms(void);		/* CLOCK_MONOTONIC */
int64_t	 wall_ms(void);		/* CLOCK_REALTIME */
/* Days since 1970-01-01 of a date of the proleptic Gregorian calendar. */
int64_t	 days_from_civil(int y, int m, int d);

/* Reads a whole file of at most max bytes, NUL-terminated; malloc'd. */
char	*file_read(const char *path, size_t max, size_t *len);
/* Writes via a temporary file, fsync and rename(2). */
int	 file_write_atomic(const char *path, const void *, size_t, mode_t);
int	 mkdir_p(const char *path, mode_t);

/* strlcpy/strlcat semantics. */
size_t	 strlcpy(char *, const char *, size_t);
size_t	 strlcat(char *, const char *, size_t);

#endif
