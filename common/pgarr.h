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

#ifndef CANOPY_PGARR_H
#define CANOPY_PGARR_H

/*
 * A one-dimensional array in PostgreSQL's binary wire format, for a
 * parameter of format 1 and the array type pgarr_type() names: text[]
 * (the server takes the elements as they are, with no quoting to undo) or
 * timestamptz[] (microseconds since 2000-01-01 UTC, nothing to parse).
 */
#include <stddef.h>
#include <stdint.h>

#define PGARR_TEXT_OID		25
#define PGARR_TEXT_ARRAY_OID	1009
#define PGARR_TIMESTAMPTZ_OID	1184
#define PGARR_TIMESTAMPTZ_ARRAY_OID 1185
/* The largest array, header included: a varlena of PostgreSQL's. */
#define PGARR_MAX_BYTES		(1u << 30)

struct pgarr {
	char		*p;
	size_t		 len;
	size_t		 cap;
	uint32_t	 n;		/* elements */
	uint32_t	 elem;		/* their type: PGARR_*_OID */
	int		 hasnull;
	int		 err;		/* out of memory, or too large */
};

void	 pgarr_init(struct pgarr *);			/* of text */
void	 pgarr_init_elem(struct pgarr *, uint32_t elem);
/* The array's type, for the parameter's. */
uint32_t pgarr_type(const struct pgarr *);
/* An element of len bytes (no NUL inside: the caller's to check). */
void	 pgarr_add(struct pgarr *, const char *, size_t len);
/* An element of two pieces, one after the other. */
void	 pgarr_add2(struct pgarr *, const char *, size_t, const char *,
	    size_t);
/* Room for an element of up to max bytes: the caller writes them at the
 * pointer returned (NULL after an error), then pgarr_commit says how many. */
char	*pgarr_reserve(struct pgarr *, size_t max);
void	 pgarr_commit(struct pgarr *, size_t len);
void	 pgarr_add_str(struct pgarr *, const char *);	/* NULL: a NULL */
void	 pgarr_add_null(struct pgarr *);
/* An 8-byte integer element (timestamptz: microseconds since 2000). */
void	 pgarr_add_i64(struct pgarr *, int64_t);
/* Writes the header: the array is p[0 .. len).  -1 after an error. */
int	 pgarr_finish(struct pgarr *);
void	 pgarr_free(struct pgarr *);

/* An array received in the binary format (a result column of format 1),
 * read an element at a time. */
struct pgarr_rd {
	const char	*p;
	const char	*end;
	uint32_t	 n;		/* elements */
	uint32_t	 i;
};
/* -1: not an array of at most one dimension. */
int	 pgarr_rd_init(struct pgarr_rd *, const char *, size_t);
/* 1: an element at *elem, *len bytes (-1: a NULL); 0: no more; -1: the
 * array is cut short. */
int	 pgarr_rd_next(struct pgarr_rd *, const char **elem, int32_t *len);

#endif
