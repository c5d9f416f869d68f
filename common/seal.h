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

#ifndef CANOPY_SEAL_H
#define CANOPY_SEAL_H

/*
 * Secrets stored at rest (LDAP bind passwords, keytabs) sealed with the
 * server's master key: AES-256-GCM, a random 96-bit nonce per seal, and the
 * purpose as associated data so a sealed bind password cannot be passed off
 * as a keytab.  The sealed form is "v1:" + base64(nonce || ciphertext || tag).
 */
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN	32

/* Returns a malloc'd NUL-terminated string, or NULL. */
char	*seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const char *purpose,
	    const void *plain, size_t len);
/*
 * Returns malloc'd plaintext (NUL-terminated beyond *lenp) or NULL when the
 * text is malformed, the key is wrong or it was sealed for another purpose.
 * The caller zeroes and frees it (seal_free).
 */
uint8_t	*seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const char *purpose,
	    const char *sealed, size_t *lenp);
void	 seal_free(void *, size_t);

#endif
