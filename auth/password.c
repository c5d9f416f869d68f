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
 * Local passwords: "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>".
 * The parameters of a stored string are bounded before any work is done, so
 * a forged row cannot make a login cost gigabytes or minutes.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth.h"
#include "canopy_limits.h"
#include "util.h"

#define PW_PREFIX	"$scrypt$"
#define PW_SALT_MIN	4	/* RFC 7914's test vector has "NaCl" */
#define PW_SALT_MAX	64
#define PW_OUT_MIN	16
#define PW_OUT_MAX	64

int
ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* Is ln, r, p within what we are willing to compute? */
static int
pw_params_ok(unsigned int ln, unsigned int r, unsigned int p)
{
	uint64_t	 mem;

	if (ln < PW_SCRYPT_LOG2N_MIN || ln > PW_SCRYPT_LOG2N_MAX)
		return 0;
	if (r < 1 || r > PW_SCRYPT_R_MAX || p < 1 || p > PW_SCRYPT_P_MAX)
		return 0;
	mem = 128ull * r * ((uint64_t)1 << ln) * p;
	return mem <= PW_SCRYPT_MAXMEM;
}

static int
pw_kdf(const char *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
    unsigned int ln, unsigned int r, unsigned int p, uint8_t *out,
    size_t outlen)
{
	uint64_t	 maxmem;

	/* scrypt needs 128*r*N for V plus 128*r*p for B; OpenSSL's default
	 * cap of 32 MiB is exactly too small for N=2^15, r=8. */
	maxmem = 128ull * r * ((uint64_t)1 << ln) + 128ull * r * p +
	    1024 * 1024;
	if (EVP_PBE_scrypt(pw, pwlen, salt, saltlen, (uint64_t)1 << ln, r, p,
	    maxmem, out, outlen) != 1)
		return -1;
	return 0;
}

int
pw_hash(const char *password, char *out, size_t outlen)
{
	uint8_t		 salt[PW_SALT_LEN], hash[PW_HASH_LEN];
	char		*s = NULL, *h = NULL;
	size_t		 pwlen;
	int		 n, ret = -1;

	if (password == NULL || out == NULL)
		return -1;
	pwlen = strlen(password);
	if (pwlen > PW_MAX_LEN)
		return -1;
	if (rand_bytes(salt, sizeof(salt)) == -1)
		goto done;
	if (pw_kdf(password, pwlen, salt, sizeof(salt), PW_SCRYPT_LOG2N,
	    PW_SCRYPT_R, PW_SCRYPT_P, hash, sizeof(hash)) == -1)
		goto done;
	if ((s = b64_encode(salt, sizeof(salt))) == NULL ||
	    (h = b64_encode(hash, sizeof(hash))) == NULL)
		goto done;
	n = snprintf(out, outlen, PW_PREFIX "ln=%d,r=%d,p=%d$%s$%s",
	    PW_SCRYPT_LOG2N, PW_SCRYPT_R, PW_SCRYPT_P, s, h);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= PW_HASH_MAX) {
		OPENSSL_cleanse(out, outlen);
		goto done;
	}
	ret = 0;
done:
	OPENSSL_cleanse(hash, sizeof(hash));
	if (h) {
		OPENSSL_cleanse(h, strlen(h));
		free(h);
	}
	free(s);
	return ret;
}

/* A decimal number of at most 2 digits, no sign, no leading zero. */
static const char *
pw_number(const char *s, const char *key, unsigned int *v)
{
	size_t	 klen = strlen(key);

	if (strncmp(s, key, klen) != 0)
		return NULL;
	s += klen;
	if (s[0] < '1' || s[0] > '9')
		return NULL;
	*v = (unsigned int)(s[0] - '0');
	s++;
	if (s[0] >= '0' && s[0] <= '9') {
		*v = *v * 10 + (unsigned int)(s[0] - '0');
		s++;
	}
	if (s[0] >= '0' && s[0] <= '9')
		return NULL;
	return s;
}

static int
pw_b64_chars(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len % 4 != 0)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			continue;
		/* Padding only at the end. */
		if (c == '=' && i >= len - 2 &&
		    (i == len - 1 || s[len - 1] == '='))
			continue;
		return 0;
	}
	return 1;
}

int
pw_verify(const char *password, const char *stored)
{
	const char	*p, *salt_s, *hash_s;
	uint8_t		*salt = NULL, *want = NULL;
	uint8_t		 got[PW_OUT_MAX];
	size_t		 saltlen, wantlen, slen, hlen;
	unsigned int	 ln, r, par;
	int		 ret = -1;

	if (stored == NULL || strnlen(stored, PW_HASH_MAX) >= PW_HASH_MAX)
		return -1;
	if (strncmp(stored, PW_PREFIX, strlen(PW_PREFIX)) != 0)
		return -1;
	p = stored + strlen(PW_PREFIX);
	if ((p = pw_number(p, "ln=", &ln)) == NULL || *p++ != ',' ||
	    (p = pw_number(p, "r=", &r)) == NULL || *p++ != ',' ||
	    (p = pw_number(p, "p=", &par)) == NULL || *p++ != '$')
		return -1;
	if (!pw_params_ok(ln, r, par))
		return -1;
	salt_s = p;
	if ((p = strchr(salt_s, '$')) == NULL)
		return -1;
	slen = (size_t)(p - salt_s);
	hash_s = p + 1;
	hlen = strlen(hash_s);
	if (!pw_b64_chars(salt_s, slen) || !pw_b64_chars(hash_s, hlen))
		return -1;
	if ((salt = b64_decode(salt_s, slen, &saltlen)) == NULL ||
	    (want = b64_decode(hash_s, hlen, &wantlen)) == NULL)
		goto done;
	if (saltlen < PW_SALT_MIN || saltlen > PW_SALT_MAX ||
	    wantlen < PW_OUT_MIN || wantlen > PW_OUT_MAX)
		goto done;

	/* A well-formed string: from here on the answer is 0 or 1. */
	if (password == NULL || strlen(password) > PW_MAX_LEN) {
		/* Still no early exit on length alone for valid lengths. */
		ret = 0;
		goto done;
	}
	if (pw_kdf(password, strlen(password), salt, saltlen, ln, r, par,
	    got, wantlen) == -1)
		goto done;
	ret = ct_equal(got, want, wantlen) ? 1 : 0;
done:
	OPENSSL_cleanse(got, sizeof(got));
	if (want) {
		OPENSSL_cleanse(want, wantlen);
		free(want);
	}
	free(salt);
	return ret;
}
