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

#ifndef CANOPY_AUTH_H
#define CANOPY_AUTH_H

#include <stddef.h>

/*
 * Local passwords: scrypt (memory-hard) with a random 16-byte salt, stored
 * as "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>".  The parameters are
 * read back from the string, so they can be raised later.  Slow by design:
 * call only on a worker thread, never on the event loop.
 */
#define PW_HASH_MAX	256

int	 pw_hash(const char *password, char *out, size_t outlen);
/* 1: matches, 0: does not, -1: the stored string is malformed. */
int	 pw_verify(const char *password, const char *stored);

/* Constant-time comparison. */
int	 ct_equal(const void *, const void *, size_t);

#endif
