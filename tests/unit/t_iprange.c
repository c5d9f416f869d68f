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

/* common/iprange.c: CIDR, start-end and single addresses, the size limit. */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "canopy_limits.h"
#include "iprange.h"
#include "test.h"

static int
ok(const char *text, const char *canon, uint64_t count)
{
	struct iprange	 r;
	char		 err[256], buf[128];

	if (iprange_parse(text, &r, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", text, err);
		return 0;
	}
	if (iprange_format(&r, buf, sizeof(buf)) == -1)
		return 0;
	if (strcmp(buf, canon) != 0 || r.count != count) {
		fprintf(stderr, "%s: %s %llu\n", text, buf,
		    (unsigned long long)r.count);
		return 0;
	}
	return 1;
}

/* Fails, with a message containing want. */
static int
bad(const char *text, const char *want)
{
	struct iprange	 r;
	char		 err[256];

	if (iprange_parse(text, &r, err, sizeof(err)) == 0)
		return 0;
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "%s: '%s' lacks '%s'\n", text, err, want);
		return 0;
	}
	return 1;
}

int
main(void)
{
	struct iprange	 r;
	uint8_t		 a[16];
	uint64_t	 skip;
	char		 err[256], big[300];

	CHECK(ok("10.77.2.0/24", "10.77.2.0/24", 256));
	CHECK(ok("10.78.0.0/22", "10.78.0.0/22", 1024));
	CHECK(ok("10.0.0.7/32", "10.0.0.7/32", 1));
	CHECK(ok("10.0.0.7", "10.0.0.7", 1));
	CHECK(ok("10.0.0.5-10.0.0.80", "10.0.0.5-10.0.0.80", 76));
	CHECK(ok("10.0.0.255-10.0.1.1", "10.0.0.255-10.0.1.1", 3));
	CHECK(ok("fd00::/120", "fd00::/120", 256));
	CHECK(ok("fd00::1-fd00::ff", "fd00::1-fd00::ff", 255));
	CHECK(ok("::1", "::1", 1));

	/* The limit: a /16 is the most, one more address is refused. */
	CHECK(ok("10.0.0.0/16", "10.0.0.0/16", IPRANGE_MAX_ADDRS));
	CHECK(bad("10.0.0.0/15", "more than the limit of 65536"));
	CHECK(ok("10.0.0.0-10.0.255.255", "10.0.0.0-10.0.255.255",
	    IPRANGE_MAX_ADDRS));
	CHECK(bad("10.0.0.0-10.1.0.0", "65537 addresses"));
	CHECK(ok("fd00::/112", "fd00::/112", IPRANGE_MAX_ADDRS));
	CHECK(bad("fd00::/64", "more than the limit"));
	CHECK(bad("::/0", "more than 2^64"));
	CHECK(bad("0.0.0.0/0", "4294967296 addresses"));

	CHECK(bad("", "empty"));
	CHECK(bad("10.0.0.1/24", "host bits are set (the network is "
	    "10.0.0.0/24)"));
	CHECK(bad("10.0.0.0/33", "prefix length '33'"));
	CHECK(bad("10.0.0.0/024", "prefix length"));
	CHECK(bad("10.0.0.0/", "prefix length"));
	CHECK(bad("10.0.0.0/2a", "prefix length"));
	CHECK(bad("10.0.0.0/1234", "prefix length"));
	CHECK(bad("10.0.0/24", "not an IPv4 or IPv6"));
	CHECK(bad("300.0.0.0/24", "not an IPv4 or IPv6"));
	CHECK(bad(" 10.0.0.0/24", "not an IPv4 or IPv6"));
	CHECK(bad("10.0.0.9-10.0.0.1", "start is after end"));
	CHECK(bad("10.0.0.1-fd00::1", "different address families"));
	CHECK(bad("10.0.0.1-", "end '' is not"));
	CHECK(bad("-10.0.0.1", "start '' is not"));
	CHECK(bad("10.0.0.1-10.0.0.2-10.0.0.3", "is not"));
	CHECK(bad("host.example.com", "not an IPv4 or IPv6 address, network"));
	CHECK(bad("fe80::1%eth0", "not an IPv4 or IPv6"));
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(bad(big, "longer than"));

	CHECK(iprange_parse_span("10.77.2.10", "10.77.2.20", &r, err,
	    sizeof(err)) == 0 && r.count == 11);
	CHECK(iprange_parse_span("10.77.2.10", "x", &r, err,
	    sizeof(err)) == -1 && strstr(err, "end 'x'") != NULL);

	/* Walking a range, and which addresses a scan probes. */
	CHECK(iprange_parse("10.0.0.254/31", &r, err, sizeof(err)) == 0);
	CHECK(iprange_hosts(&r, &skip) == 2 && skip == 0);
	CHECK(iprange_parse("10.77.2.0/24", &r, err, sizeof(err)) == 0);
	CHECK(iprange_hosts(&r, &skip) == 254 && skip == 1);
	CHECK(iprange_nth(&r, 255, a) == 0 && a[3] == 255 && a[2] == 2);
	CHECK(iprange_nth(&r, 256, a) == -1);
	CHECK(iprange_contains(&r, AF_INET, a));
	a[2] = 3;
	CHECK(!iprange_contains(&r, AF_INET, a));
	CHECK(iprange_parse("10.0.0.250-10.0.1.5", &r, err, sizeof(err)) == 0);
	CHECK(iprange_hosts(&r, &skip) == 12 && skip == 0);
	CHECK(iprange_nth(&r, 7, a) == 0 && a[2] == 1 && a[3] == 1);
	CHECK(iprange_parse("fd00::ff-fd00::1ff", &r, err, sizeof(err)) == 0);
	CHECK(r.count == 257 && iprange_nth(&r, 1, a) == 0 && a[14] == 1 &&
	    a[15] == 0);
	CHECK(!iprange_contains(&r, AF_INET, a));
	CHECK(iprange_format(&r, err, 5) == -1);

	TEST_DONE();
}
