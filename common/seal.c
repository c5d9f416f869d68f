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

/* Sealing stored secrets with the master key (common/seal.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "seal.h"

#define SEAL_PREFIX	"v1:"
#define SEAL_NONCE	12
#define SEAL_TAG	16
#define SEAL_MAX	(64u * 1024 * 1024)

char *
seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const char *purpose,
    const void *plain, size_t len)
{
	EVP_CIPHER_CTX	*ctx = NULL;
	uint8_t		*raw = NULL;
	char		*out = NULL;
	size_t		 rawlen, b64len;
	int		 n, ok = 0;

	if (len > SEAL_MAX)
		return NULL;
	rawlen = SEAL_NONCE + len + SEAL_TAG;
	if ((raw = malloc(rawlen)) == NULL)
		return NULL;
	if (RAND_bytes(raw, SEAL_NONCE) != 1)
		goto done;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)purpose,
	    (int)strlen(purpose)) != 1 ||
	    EVP_EncryptUpdate(ctx, raw + SEAL_NONCE, &n, plain,
	    (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, raw + SEAL_NONCE + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG,
	    raw + SEAL_NONCE + len) != 1)
		goto done;
	b64len = 4 * ((rawlen + 2) / 3);
	if ((out = malloc(sizeof(SEAL_PREFIX) + b64len + 1)) == NULL)
		goto done;
	memcpy(out, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1);
	EVP_EncodeBlock((uint8_t *)out + sizeof(SEAL_PREFIX) - 1, raw,
	    (int)rawlen);
	ok = 1;
done:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

uint8_t *
seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const char *purpose,
    const char *sealed, size_t *lenp)
{
	EVP_CIPHER_CTX	*ctx = NULL;
	uint8_t		*raw = NULL, *plain = NULL;
	size_t		 slen, rawmax, rawlen, len = 0;
	int		 n, pad = 0, ok = 0;

	if (strncmp(sealed, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1) != 0)
		return NULL;
	sealed += sizeof(SEAL_PREFIX) - 1;
	slen = strlen(sealed);
	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > SEAL_MAX)
		return NULL;
	rawmax = slen / 4 * 3;
	if ((raw = malloc(rawmax)) == NULL)
		return NULL;
	if (EVP_DecodeBlock(raw, (const uint8_t *)sealed, (int)slen) < 0)
		goto done;
	if (sealed[slen - 1] == '=')
		pad++;
	if (sealed[slen - 2] == '=')
		pad++;
	rawlen = rawmax - (size_t)pad;
	if (rawlen < SEAL_NONCE + SEAL_TAG)
		goto done;
	len = rawlen - SEAL_NONCE - SEAL_TAG;
	if ((plain = malloc(len + 1)) == NULL)
		goto done;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)purpose,
	    (int)strlen(purpose)) != 1 ||
	    EVP_DecryptUpdate(ctx, plain, &n, raw + SEAL_NONCE,
	    (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
	    raw + SEAL_NONCE + len) != 1 ||
	    EVP_DecryptFinal_ex(ctx, plain + n, &n) != 1)
		goto done;
	plain[len] = '\0';
	*lenp = len;
	ok = 1;
done:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(raw, rawmax);
	free(raw);
	if (!ok) {
		seal_free(plain, len + 1);
		return NULL;
	}
	return plain;
}

void
seal_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}
