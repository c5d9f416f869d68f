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

/* IP ranges: CIDR, start-end, one address (common/iprange.h). */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "canopy_limits.h"
#include "iprange.h"

static int
ipr_len(int af)
{
	return af == AF_INET ? 4 : 16;
}

/* One address, exactly: no spaces, no zone, no prefix.  0, or -1. */
static int
ipr_addr(const char *s, int *af, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1) {
		*af = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*af = AF_INET6;
		return 0;
	}
	return -1;
}

/* last - first + 1, or UINT64_MAX when it does not fit. */
static uint64_t
ipr_count(int af, const uint8_t *first, const uint8_t *last)
{
	uint8_t		 d[16];
	int		 i, n = ipr_len(af), borrow = 0, v;
	uint64_t	 c = 0;

	for (i = n - 1; i >= 0; i--) {
		v = last[i] - first[i] - borrow;
		borrow = v < 0;
		d[i] = (uint8_t)(v + (borrow ? 256 : 0));
	}
	for (i = 0; i < n - 8; i++)
		if (d[i] != 0)
			return UINT64_MAX;
	for (i = n > 8 ? n - 8 : 0; i < n; i++)
		c = c << 8 | d[i];
	return c == UINT64_MAX ? c : c + 1;
}

static int
ipr_check_size(const char *text, struct iprange *r, char *err,
    size_t errlen)
{
	r->count = ipr_count(r->af, r->first, r->last);
	if (r->count > IPRANGE_MAX_ADDRS) {
		if (r->count == UINT64_MAX)
			snprintf(err, errlen, "%s: more than 2^64 addresses, "
			    "more than the limit of %d", text,
			    IPRANGE_MAX_ADDRS);
		else
			snprintf(err, errlen, "%s: %llu addresses, more than "
			    "the limit of %d (a /16 or /112)", text,
			    (unsigned long long)r->count, IPRANGE_MAX_ADDRS);
		return -1;
	}
	return 0;
}

static int
ipr_cidr(char *addr, const char *bits, const char *text, struct iprange *r,
    char *err, size_t errlen)
{
	char	 net[INET6_ADDRSTRLEN];
	int	 i, n, max, prefix = 0, host_set = 0;
	size_t	 k;

	if (ipr_addr(addr, &r->af, r->first) == -1) {
		snprintf(err, errlen, "%s: '%s' is not an IPv4 or IPv6 "
		    "address", text, addr);
		return -1;
	}
	max = r->af == AF_INET ? 32 : 128;
	for (k = 0; bits[k] != '\0'; k++) {
		if (bits[k] < '0' || bits[k] > '9' || k >= 3)
			goto badbits;
		prefix = prefix * 10 + (bits[k] - '0');
	}
	if (k == 0 || (k > 1 && bits[0] == '0') || prefix > max)
		goto badbits;
	r->prefix = prefix;
	n = ipr_len(r->af);
	memcpy(r->last, r->first, 16);
	for (i = 0; i < n; i++) {
		int	 keep = prefix - i * 8;
		uint8_t	 mask = keep >= 8 ? 0xff : keep <= 0 ? 0 :
			    (uint8_t)(0xff << (8 - keep));

		if (r->first[i] & ~mask)
			host_set = 1;
		r->first[i] &= mask;
		r->last[i] = r->first[i] | (uint8_t)~mask;
	}
	if (host_set) {
		inet_ntop(r->af, r->first, net, sizeof(net));
		snprintf(err, errlen, "%s: host bits are set (the network is "
		    "%s/%d)", text, net, prefix);
		return -1;
	}
	return ipr_check_size(text, r, err, errlen);
 badbits:
	snprintf(err, errlen, "%s: prefix length '%s' is not a number "
	    "0..%d", text, bits, max);
	return -1;
}

int
iprange_parse_span(const char *start, const char *end, struct iprange *r,
    char *err, size_t errlen)
{
	char	 text[IPRANGE_TEXT_MAX + 1];
	int	 af2;

	memset(r, 0, sizeof(*r));
	r->prefix = -1;
	if (strlen(start) > INET6_ADDRSTRLEN || strlen(end) >
	    INET6_ADDRSTRLEN) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	snprintf(text, sizeof(text), "%s-%s", start, end);
	if (ipr_addr(start, &r->af, r->first) == -1) {
		snprintf(err, errlen, "%s: start '%s' is not an IPv4 or IPv6 "
		    "address", text, start);
		return -1;
	}
	if (ipr_addr(end, &af2, r->last) == -1) {
		snprintf(err, errlen, "%s: end '%s' is not an IPv4 or IPv6 "
		    "address", text, end);
		return -1;
	}
	if (af2 != r->af) {
		snprintf(err, errlen, "%s: start and end are of different "
		    "address families", text);
		return -1;
	}
	if (memcmp(r->first, r->last, 16) > 0) {
		snprintf(err, errlen, "%s: start is after end", text);
		return -1;
	}
	return ipr_check_size(text, r, err, errlen);
}

int
iprange_parse(const char *text, struct iprange *r, char *err, size_t errlen)
{
	char	 buf[IPRANGE_TEXT_MAX + 1], *sep;

	memset(r, 0, sizeof(*r));
	r->prefix = -1;
	if (text[0] == '\0') {
		snprintf(err, errlen, "empty range");
		return -1;
	}
	if (strlen(text) >= sizeof(buf)) {
		snprintf(err, errlen, "%.40s...: longer than %d bytes", text,
		    IPRANGE_TEXT_MAX);
		return -1;
	}
	strcpy(buf, text);
	if ((sep = strchr(buf, '/')) != NULL) {
		*sep++ = '\0';
		return ipr_cidr(buf, sep, text, r, err, errlen);
	}
	if ((sep = strchr(buf, '-')) != NULL) {
		*sep++ = '\0';
		return iprange_parse_span(buf, sep, r, err, errlen);
	}
	if (ipr_addr(buf, &r->af, r->first) == -1) {
		snprintf(err, errlen, "%s: not an IPv4 or IPv6 address, "
		    "network (10.0.0.0/24) or range (10.0.0.1-10.0.0.50)",
		    text);
		return -1;
	}
	memcpy(r->last, r->first, 16);
	r->count = 1;
	return 0;
}

int
iprange_nth(const struct iprange *r, uint64_t i, uint8_t out[16])
{
	int	 k, carry = 0;
	unsigned v;

	if (i >= r->count)
		return -1;
	memcpy(out, r->first, 16);
	for (k = ipr_len(r->af) - 1; k >= 0; k--) {
		v = out[k] + (unsigned)(i & 0xff) + (unsigned)carry;
		out[k] = (uint8_t)v;
		carry = v > 0xff;
		i >>= 8;
	}
	return 0;
}

uint64_t
iprange_hosts(const struct iprange *r, uint64_t *skip)
{
	*skip = 0;
	if (r->af == AF_INET && r->prefix >= 0 && r->prefix <= 30) {
		*skip = 1;
		return r->count - 2;
	}
	return r->count;
}

int
iprange_contains(const struct iprange *r, int af, const uint8_t *addr)
{
	int	 n = ipr_len(r->af);

	if (af != r->af)
		return 0;
	return memcmp(addr, r->first, n) >= 0 && memcmp(addr, r->last, n) <= 0;
}

int
iprange_format(const struct iprange *r, char *buf, size_t len)
{
	char	 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int	 n;

	if (inet_ntop(r->af, r->first, a, sizeof(a)) == NULL ||
	    inet_ntop(r->af, r->last, b, sizeof(b)) == NULL)
		return -1;
	if (r->prefix >= 0)
		n = snprintf(buf, len, "%s/%d", a, r->prefix);
	else if (r->count == 1)
		n = snprintf(buf, len, "%s", a);
	else
		n = snprintf(buf, len, "%s-%s", a, b);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
