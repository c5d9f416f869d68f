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

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

int
rand_bytes(void *buf, size_t len)
{
	uint8_t	*p = buf;
	int	 n;

	/* RAND_bytes takes an int; feed it in slices. */
	while (len > 0) {
		n = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(p, n) != 1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *
token_new(size_t nbytes)
{
	uint8_t	*raw;
	char	*s, *p, *q;

	if (nbytes == 0 || nbytes > 1024)
		return NULL;
	if ((raw = malloc(nbytes)) == NULL)
		return NULL;
	if (rand_bytes(raw, nbytes) == -1) {
		free(raw);
		return NULL;
	}
	s = b64_encode(raw, nbytes);
	explicit_bzero(raw, nbytes);
	free(raw);
	if (s == NULL)
		return NULL;
	/* Standard base64 to URL-safe, without padding. */
	for (p = q = s; *p != '\0'; p++) {
		if (*p == '=')
			continue;
		if (*p == '+')
			*q++ = '-';
		else if (*p == '/')
			*q++ = '_';
		else
			*q++ = *p;
	}
	*q = '\0';
	return s;
}

void
hex_encode(const void *buf, size_t len, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	const uint8_t		*p = buf;
	size_t			 i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void
sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned int	n = 32;

	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

void
sha256_hex(const void *buf, size_t len, char out[65])
{
	uint8_t	md[32];

	sha256(buf, len, md);
	hex_encode(md, sizeof(md), out);
}

char *
b64_encode(const void *buf, size_t len)
{
	char	*out;
	size_t	 outlen;

	if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT_MAX)
		return NULL;
	outlen = 4 * ((len + 2) / 3) + 1;
	if ((out = malloc(outlen)) == NULL)
		return NULL;
	/* EVP_EncodeBlock writes no newlines, and the terminating NUL. */
	EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
	return out;
}

uint8_t *
b64_decode(const char *s, size_t len, size_t *outlen)
{
	uint8_t	*out;
	size_t	 i, pad = 0;
	int	 n;
	char	 c;

	*outlen = 0;
	if (len % 4 != 0 || len > INT_MAX)
		return NULL;
	/*
	 * EVP_DecodeBlock is lenient ('=' in the middle, blanks around):
	 * check the alphabet and the padding first.
	 */
	if (len > 0 && s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++) {
		c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return NULL;
	}
	if ((out = malloc(len / 4 * 3 + 1)) == NULL)
		return NULL;
	if (len == 0) {
		out[0] = '\0';
		return out;
	}
	/* It keeps the padding bytes as zeros: take them off. */
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)n - pad;
	out[*outlen] = '\0';
	return out;
}

uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t
wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
file_read(const char *path, size_t max, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0, cap;
	ssize_t		 n;
	int		 fd, saved;

	if (lenp != NULL)
		*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	/*
	 * Read until EOF: the size may change, and pipes have none.  The
	 * buffer holds up to max + 1 bytes, so that one byte too many shows.
	 */
	if (max > SIZE_MAX - 2) {
		errno = EINVAL;
		goto fail;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 2 : 4096;
	if (cap > max + 2)
		cap = max + 2;
	if ((buf = malloc(cap)) == NULL)
		goto fail;
	for (;;) {
		if (cap - len < 2) {
			char	*nb;
			size_t	 ncap;

			ncap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
			if (ncap <= cap) {
				errno = EFBIG;
				goto fail;
			}
			if ((nb = realloc(buf, ncap)) == NULL)
				goto fail;
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

static int
fsync_dir_of(const char *path)
{
	char	 dir[PATH_MAX];
	char	*slash;
	int	 fd, rv = 0;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		strlcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) == -1)
		rv = -1;
	close(fd);
	return rv;
}

/*
 * Write to PATH.tmp.XXXXXX beside the target, fsync it, rename over the
 * target, then fsync the directory so that the rename itself is durable.
 * A crash leaves either the old file or the new one, never a torn one.
 */
int
file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	char		 tmp[PATH_MAX];
	const uint8_t	*p = buf;
	size_t		 off;
	ssize_t		 n;
	int		 fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return -1;
	if (fchmod(fd, mode) == -1)
		goto fail;
	for (off = 0; off < len; off += (size_t)n) {
		n = write(fd, p + off, len - off);
		if (n == -1) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			goto fail;
		}
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	return fsync_dir_of(path);
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char		 buf[PATH_MAX];
	char		*p;
	struct stat	 st;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (*p == '/' && p[-1] == '/')
			continue;
		{
			char	c = *p;

			*p = '\0';
			if (mkdir(buf, mode) == -1) {
				if (errno != EEXIST ||
				    stat(buf, &st) == -1)
					return -1;
				if (!S_ISDIR(st.st_mode)) {
					errno = ENOTDIR;
					return -1;
				}
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

size_t
strlcpy(char *dst, const char *src, size_t dsize)
{
	size_t	slen = strlen(src);

	if (dsize != 0) {
		size_t	n = slen >= dsize ? dsize - 1 : slen;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return slen;
}

size_t
strlcat(char *dst, const char *src, size_t dsize)
{
	size_t	dlen = strnlen(dst, dsize);

	if (dlen == dsize)
		return dlen + strlen(src);
	return dlen + strlcpy(dst + dlen, src, dsize - dlen);
}

/* Howard Hinnant's days_from_civil. */
int64_t
days_from_civil(int y, int m, int d)
{
	int64_t	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}
