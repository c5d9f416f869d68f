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

#ifndef CANOPY_IPRANGE_H
#define CANOPY_IPRANGE_H

/*
 * IP ranges for scans (directory/scan.c): "10.0.0.0/24", "fd00::/120",
 * "10.0.0.5-10.0.0.80" or one address.  Pure functions, no I/O, no
 * globals, so they are unit-tested and fuzzed (tests/unit/t_iprange.c,
 * tests/fuzz/fuzz_iprange.c).  A range holding more than
 * IPRANGE_MAX_ADDRS addresses (common/canopy_limits.h) is refused.
 */
#include <stddef.h>
#include <stdint.h>

#define IPRANGE_TEXT_MAX	100	/* "start-end" of two IPv6 addresses */

struct iprange {
	int		 af;		/* AF_INET or AF_INET6 */
	uint8_t		 first[16];	/* network byte order; IPv4 in [0..3] */
	uint8_t		 last[16];
	int		 prefix;	/* CIDR prefix length, or -1 */
	uint64_t	 count;		/* addresses, first and last included */
};

/*
 * Parses a CIDR ("10.0.0.0/24"; host bits must be zero), a start-end span
 * or one address.  Returns 0, or -1 with err naming what was wrong, for a
 * person: "10.0.0.1/24: host bits are set (the network is 10.0.0.0/24)".
 */
int	 iprange_parse(const char *text, struct iprange *, char *err,
	    size_t errlen);
/* The same for the two ends given apart. */
int	 iprange_parse_span(const char *start, const char *end,
	    struct iprange *, char *err, size_t errlen);

/* Address i (0 <= i < count) of the range, in network byte order. */
int	 iprange_nth(const struct iprange *, uint64_t i, uint8_t out[16]);
/*
 * The addresses worth probing: in an IPv4 network of /30 or shorter, the
 * network and broadcast addresses are left out.  Sets *skip (addresses
 * left out at the start) and returns how many remain.
 */
uint64_t iprange_hosts(const struct iprange *, uint64_t *skip);
/* 1 if addr (network order, 4 or 16 bytes by af) lies in the range. */
int	 iprange_contains(const struct iprange *, int af, const uint8_t *addr);
/* Canonical text: "10.0.0.0/24" or "10.0.0.5-10.0.0.80".  -1 if short. */
int	 iprange_format(const struct iprange *, char *buf, size_t len);

#endif
