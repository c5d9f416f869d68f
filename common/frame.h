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

#ifndef CANOPY_FRAME_H
#define CANOPY_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Framing on port 13000: a 4-byte big-endian length, then that many bytes
 * holding one msgpack map.  A zero length is a protocol error.
 */

/*
 * Looks at the first len bytes received.  Returns 1 and sets *body_len when
 * the header is complete (the body may still be incomplete), 0 when fewer
 * than FRAME_HDR_LEN bytes are there, -1 when the announced length is 0 or
 * over max (reason names the problem).  Pure.
 */
int	frame_header(const uint8_t *buf, size_t len, uint32_t max,
	    uint32_t *body_len, char *reason, size_t reasonlen);

void	frame_put_header(uint8_t hdr[4], uint32_t body_len);

#endif
