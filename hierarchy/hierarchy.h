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

#ifndef CANOPY_HIERARCHY_H
#define CANOPY_HIERARCHY_H

/*
 * The server tree (issue 4): the link to the parent and the links to the
 * children, their change streams, registration.
 */
#include <stddef.h>

struct canopyd;
struct conn;
struct msg;

int	 hier_start(struct canopyd *, char *err, size_t errlen);
void	 hier_stop(struct canopyd *);
/* A server said hello on the agent port: the tree takes the connection. */
void	 hier_accept(struct canopyd *, struct conn *, const struct msg *);
/* DELETE /servers/children/{name}: drops that child's live link, if any. */
void	 hier_link_drop(struct canopyd *, const char *name);

#endif
