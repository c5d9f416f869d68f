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
 * libFuzzer target for frame_header(): any bytes, any limit.  Checks the
 * contract, not just the absence of crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "canopy_limits.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		hdr[FRAME_HDR_LEN];
	uint32_t	max = FRAME_MAX_DEFAULT, body = 0, n;
	char		reason[128];
	int		r;

	/* The first four bytes, when there are eight, choose the limit. */
	if (size >= 8) {
		max = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
		    (uint32_t)data[2] << 8 | data[3];
		data += 4;
		size -= 4;
	}
	r = frame_header(data, size, max, &body, reason, sizeof(reason));
	if (size < FRAME_HDR_LEN) {
		if (r != 0)
			abort();
		return 0;
	}
	n = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
	    (uint32_t)data[2] << 8 | data[3];
	if (r == 1) {
		if (body != n || n == 0 || n > max)
			abort();
		frame_put_header(hdr, body);
		if (memcmp(hdr, data, FRAME_HDR_LEN) != 0)
			abort();
	} else if (r == -1) {
		if (n != 0 && n <= max)
			abort();
		if (memchr(reason, '\0', sizeof(reason)) == NULL)
			abort();
	} else
		abort();
	return 0;
}
