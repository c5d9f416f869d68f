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

/* LDAP attribute decoders and DN helpers (common/ldapval.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "canopy_limits.h"
#include "ldapval.h"
#include "util.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
ldapval_guid(const void *v, size_t n, char out[37])
{
	const uint8_t	*b = v;
	size_t		 i, j;

	if (n == 16) {
		/* Data1..3 little-endian, Data4 as bytes. */
		snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
		    "%02x%02x-%02x%02x%02x%02x%02x%02x", b[3], b[2], b[1],
		    b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
		    b[12], b[13], b[14], b[15]);
		return 0;
	}
	if (n != 36)
		return -1;
	for (i = 0, j = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (b[i] != '-')
				return -1;
			out[j++] = '-';
			continue;
		}
		if (hexval(b[i]) == -1)
			return -1;
		out[j++] = (char)tolower(b[i]);
	}
	out[36] = '\0';
	return 0;
}

int
ldapval_sid(const void *v, size_t n, char *out, size_t outlen)
{
	const uint8_t	*b = v;
	uint64_t	 auth = 0;
	size_t		 i, cnt, off;
	int		 r;

	if (n < 8 || b[0] != 1)
		return -1;
	cnt = b[1];
	if (n != 8 + 4 * cnt)
		return -1;
	for (i = 2; i < 8; i++)
		auth = (auth << 8) | b[i];
	r = snprintf(out, outlen, "S-1-%" PRIu64, auth);
	if (r < 0 || (size_t)r >= outlen)
		return -1;
	off = (size_t)r;
	for (i = 0; i < cnt; i++) {
		const uint8_t	*p = b + 8 + 4 * i;
		uint32_t	 sub = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
			    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

		r = snprintf(out + off, outlen - off, "-%" PRIu32, sub);
		if (r < 0 || (size_t)r >= outlen - off)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int
digits(const char *s, size_t n, int *out)
{
	size_t	 i;

	*out = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*out = *out * 10 + (s[i] - '0');
	}
	return 0;
}

int
ldapval_gentime(const char *s, size_t n, int64_t *out)
{
	int	 y, mo, d, h, mi, sec = 0, oh, om, sign;
	size_t	 i;

	if (n < 11)
		return -1;
	if (digits(s, 4, &y) || digits(s + 4, 2, &mo) ||
	    digits(s + 6, 2, &d) || digits(s + 8, 2, &h))
		return -1;
	i = 10;
	if (i + 2 > n || digits(s + i, 2, &mi))
		return -1;
	i += 2;
	if (i + 2 <= n && isdigit((unsigned char)s[i])) {
		if (digits(s + i, 2, &sec))
			return -1;
		i += 2;
	}
	if (i < n && (s[i] == '.' || s[i] == ',')) {
		i++;
		if (i >= n || !isdigit((unsigned char)s[i]))
			return -1;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	if (i + 1 == n && s[i] == 'Z')
		return 0;
	if (i + 5 != n || (s[i] != '+' && s[i] != '-'))
		return -1;
	sign = s[i] == '+' ? 1 : -1;
	if (digits(s + i + 1, 2, &oh) || digits(s + i + 3, 2, &om) ||
	    oh > 23 || om > 59)
		return -1;
	*out -= sign * (oh * 3600 + om * 60);
	return 0;
}

int
ldapval_u64(const char *s, size_t n, uint64_t *out)
{
	size_t	 i;

	if (n == 0 || n > 20)
		return -1;
	*out = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (*out > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		*out = *out * 10 + (uint64_t)(s[i] - '0');
	}
	return 0;
}

int
ldapval_filetime(const char *s, size_t n, int64_t *out)
{
	uint64_t	 ft;

	if (ldapval_u64(s, n, &ft) == -1)
		return -1;
	/* 0 and 0x7FFFFFFFFFFFFFFF mean "never". */
	if (ft == 0 || ft >= INT64_MAX)
		return -1;
	*out = (int64_t)(ft / 10000000ULL) - 11644473600LL;
	return 0;
}

int
ldapval_filter_escape(const char *in, char *out, size_t outlen)
{
	size_t	 o = 0;

	for (; *in != '\0'; in++) {
		unsigned char	 c = (unsigned char)*in;

		if (c == '*' || c == '(' || c == ')' || c == '\\') {
			if (o + 3 >= outlen)
				return -1;
			snprintf(out + o, 4, "\\%02x", c);
			o += 3;
		} else {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)c;
		}
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/* Where the first RDN ends (the separating comma or the NUL), or -1. */
static long
dn_rdn_end(const char *dn)
{
	size_t	 i, n = strnlen(dn, LDAPVAL_DN_MAX + 1);
	int	 quoted = 0;

	if (n > LDAPVAL_DN_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (dn[i] == '\\') {
			if (i + 1 >= n)
				return -1;
			i++;
		} else if (dn[i] == '"')
			quoted = !quoted;
		else if (!quoted && (dn[i] == ',' || dn[i] == ';'))
			return (long)i;
	}
	return quoted ? -1 : (long)n;
}

int
ldapval_dn_parent(const char *dn, char *out, size_t outlen)
{
	long		 e;
	const char	*p;

	if ((e = dn_rdn_end(dn)) == -1)
		return -1;
	p = dn + e;
	if (*p != '\0')
		p++;
	while (*p == ' ')
		p++;
	if (strlcpy(out, p, outlen) >= outlen)
		return -1;
	return 0;
}

int
ldapval_dn_first_value(const char *dn, char *out, size_t outlen)
{
	long	 e, i;
	size_t	 o = 0;
	const char *eq;
	int	 h1, h2;

	if ((e = dn_rdn_end(dn)) == -1)
		return -1;
	if ((eq = memchr(dn, '=', (size_t)e)) == NULL)
		return -1;
	for (i = eq - dn + 1; i < e; i++) {
		char	 c = dn[i];

		if (c == '"')
			continue;
		if (c == '\\') {
			if (i + 1 >= e)
				return -1;
			if ((h1 = hexval((unsigned char)dn[i + 1])) != -1 &&
			    i + 2 < e &&
			    (h2 = hexval((unsigned char)dn[i + 2])) != -1) {
				c = (char)(h1 << 4 | h2);
				i += 2;
			} else
				c = dn[++i];
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	if (o == 0 || o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

int
ldapval_dn_realm(const char *dn, char *out, size_t outlen)
{
	const char	*p = dn;
	char		 cur[LDAPVAL_DN_MAX + 1], val[256];
	size_t		 o = 0, vl, i;

	if (strlcpy(cur, dn, sizeof(cur)) >= sizeof(cur))
		return -1;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, "dc=", 3) == 0) {
			if (ldapval_dn_first_value(p, val, sizeof(val)) == -1)
				return -1;
			vl = strlen(val);
			if (o + vl + 2 > outlen)
				return -1;
			if (o > 0)
				out[o++] = '.';
			for (i = 0; i < vl; i++)
				out[o++] = (char)toupper((unsigned char)val[i]);
		}
		if (ldapval_dn_parent(p, cur, sizeof(cur)) == -1)
			return -1;
		p += strlen(p) - strlen(cur);
	}
	if (o == 0 || o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/*
 * DN lower-cased, spaces around separators removed, escapes in one form
 * ("\2C" and "\," are the same comma; "\C3\B6" is the byte pair): so
 * that member values and entry DNs as different servers print them
 * compare equal.
 */
void
ldapval_dn_norm(char *s)
{
	char	*r = s, *w = s;
	int	 h1, h2, c;

	for (; *r != '\0'; r++) {
		if (*r == '\\' && r[1] != '\0') {
			if ((h1 = hexval((unsigned char)r[1])) != -1 &&
			    r[2] != '\0' &&
			    (h2 = hexval((unsigned char)r[2])) != -1) {
				c = h1 << 4 | h2;
				r += 2;
			} else
				c = (unsigned char)*++r;
			if (c == '\0')
				c = '?';
			if (strchr(",+\"\\<>;=# ", c) != NULL)
				*w++ = '\\';
			*w++ = (char)tolower(c);
			continue;
		}
		if (*r == ',' || *r == '=' || *r == '+') {
			while (w > s && w[-1] == ' ' && (w - 1 == s ||
			    w[-2] != '\\'))
				w--;
			*w++ = *r;
			while (r[1] == ' ')
				r++;
			continue;
		}
		*w++ = (char)tolower((unsigned char)*r);
	}
	*w = '\0';
}
