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
 * libFuzzer target for iprange_parse().  A range that parses formats to
 * text that parses back to the same range, within the size limit, and
 * each of its ends lies in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canopy_limits.h"
#include "iprange.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iprange	 r, r2;
	char		 text[256], err[512], buf[128];
	uint8_t		 a[16];
	uint64_t	 skip;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (iprange_parse(text, &r, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || strlen(err) >= sizeof(err) - 1)
			abort();
		return 0;
	}
	if (r.count == 0 || r.count > IPRANGE_MAX_ADDRS)
		abort();
	if (iprange_format(&r, buf, sizeof(buf)) == -1)
		abort();
	if (iprange_parse(buf, &r2, err, sizeof(err)) == -1 ||
	    r2.af != r.af || r2.count != r.count ||
	    memcmp(r2.first, r.first, 16) != 0)
		abort();
	if (iprange_nth(&r, 0, a) == -1 || !iprange_contains(&r, r.af, a))
		abort();
	if (iprange_nth(&r, r.count - 1, a) == -1 ||
	    memcmp(a, r.last, 16) != 0 || !iprange_contains(&r, r.af, a))
		abort();
	if (iprange_nth(&r, r.count, a) != -1)
		abort();
	if (iprange_hosts(&r, &skip) + skip > r.count)
		abort();
	return 0;
}
