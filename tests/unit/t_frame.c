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

#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "canopy_limits.h"
#include "test.h"

static int
hdr(uint32_t n, size_t have, uint32_t max, uint32_t *body, char *reason,
    size_t rlen)
{
	uint8_t	b[8] = { 0 };

	frame_put_header(b, n);
	return frame_header(b, have, max, body, reason, rlen);
}

int
main(void)
{
	uint8_t		b[4];
	uint32_t	body = 0;
	char		reason[128];
	size_t		i;

	/* Big-endian, both ways. */
	frame_put_header(b, 0x01020304);
	CHECK(b[0] == 1 && b[1] == 2 && b[2] == 3 && b[3] == 4);
	frame_put_header(b, 0xffffffffu);
	CHECK(b[0] == 0xff && b[3] == 0xff);

	/* Incomplete header: wait for more, whatever the bytes say. */
	for (i = 0; i < FRAME_HDR_LEN; i++)
		CHECK(hdr(100, i, FRAME_MAX_DEFAULT, &body, reason,
		    sizeof(reason)) == 0);

	CHECK(hdr(100, 4, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == 1);
	CHECK(body == 100);
	CHECK(hdr(1, 4, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == 1 && body == 1);
	/* Extra bytes after the header are the body: still 1. */
	CHECK(hdr(7, 8, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == 1 && body == 7);

	/* Zero length. */
	reason[0] = '\0';
	CHECK(hdr(0, 4, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == -1);
	CHECK_STR(reason, "empty frame");

	/* The limit: max is allowed, max + 1 is not. */
	CHECK(hdr(FRAME_MAX_DEFAULT, 4, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == 1 && body == FRAME_MAX_DEFAULT);
	CHECK(hdr(FRAME_MAX_DEFAULT + 1, 4, FRAME_MAX_DEFAULT, &body, reason,
	    sizeof(reason)) == -1);
	CHECK(strstr(reason, "over limit") != NULL);
	CHECK(hdr(FRAME_MAX_MIN + 1, 4, FRAME_MAX_MIN, &body, reason,
	    sizeof(reason)) == -1);
	CHECK(hdr(0xffffffffu, 4, FRAME_MAX_MAX, &body, reason,
	    sizeof(reason)) == -1);

	/* A NULL or empty reason buffer is allowed. */
	CHECK(hdr(0, 4, FRAME_MAX_DEFAULT, &body, NULL, 0) == -1);

	TEST_DONE();
}
