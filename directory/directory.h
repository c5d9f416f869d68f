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

#ifndef CANOPY_DIRECTORY_H
#define CANOPY_DIRECTORY_H

/*
 * LDAP directory sources (issue 5): scheduled and on-demand polls on worker
 * threads, results written to directory_* tables, computers merged into
 * devices.
 */
#include <stddef.h>

struct canopyd;

int	 directory_start(struct canopyd *, char *err, size_t errlen);
void	 directory_stop(struct canopyd *);
/* On the loop: pollers look for due sources now (after POST .../poll). */
void	 directory_wake(struct canopyd *);

#endif
