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

#ifndef CANOPY_SCAN_H
#define CANOPY_SCAN_H

/*
 * IP-range scans (issue 5): ICMP echo, TCP connect and reverse DNS on the
 * event loop, rate- and concurrency-limited, scheduled and on demand.
 */
#include <stddef.h>

struct canopyd;

int	 scan_start(struct canopyd *, char *err, size_t errlen);
void	 scan_stop(struct canopyd *);
/* Looks for queued or due ranges now (after POST /ip-ranges/{id}/scan). */
void	 scan_kick(struct canopyd *);

#endif
