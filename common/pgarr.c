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
 * PostgreSQL's binary array format (array_recv): int32 ndim, int32 flags
 * (1: has NULLs), uint32 element type, then per dimension int32 size and
 * int32 lower bound, then per element int32 length (-1: NULL) and the
 * bytes; all big-endian.
 */
#include <arpa/inet.h>
#include <endian.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pgarr.h"

#define PGARR_HDR	20	/* one dimension */

static void
pgarr_put32(char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t
pgarr_get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static int
pgarr_grow(struct pgarr *a, size_t more)
{
	size_t	 cap;
	char	*p;

	if (a->err)
		return -1;
	if (a->len + more <= a->cap)
		return 0;
	/* An element's length is an int32; the whole, a varlena. */
	if (more > (size_t)INT32_MAX || a->len + more > PGARR_MAX_BYTES) {
		a->err = 1;
		return -1;
	}
	for (cap = a->cap ? a->cap : 1024; cap < a->len + more; cap *= 2)
		;
	if ((p = realloc(a->p, cap)) == NULL) {
		a->err = 1;
		return -1;
	}
	a->p = p;
	a->cap = cap;
	return 0;
}

void
pgarr_init(struct pgarr *a)
{
	pgarr_init_elem(a, PGARR_TEXT_OID);
}

void
pgarr_init_elem(struct pgarr *a, uint32_t elem)
{
	memset(a, 0, sizeof(*a));
	a->elem = elem;
	if (pgarr_grow(a, PGARR_HDR) == 0)
		a->len = PGARR_HDR;
}

uint32_t
pgarr_type(const struct pgarr *a)
{
	return a->elem == PGARR_TIMESTAMPTZ_OID ?
	    PGARR_TIMESTAMPTZ_ARRAY_OID : PGARR_TEXT_ARRAY_OID;
}

void
pgarr_add(struct pgarr *a, const char *s, size_t len)
{
	pgarr_add2(a, s, len, "", 0);
}

void
pgarr_add2(struct pgarr *a, const char *s1, size_t l1, const char *s2,
    size_t l2)
{
	if (l1 > (size_t)INT32_MAX || pgarr_grow(a, 4 + l1 + l2) == -1)
		return;
	pgarr_put32(a->p + a->len, (uint32_t)(l1 + l2));
	memcpy(a->p + a->len + 4, s1, l1);
	memcpy(a->p + a->len + 4 + l1, s2, l2);
	a->len += 4 + l1 + l2;
	a->n++;
}

char *
pgarr_reserve(struct pgarr *a, size_t max)
{
	if (pgarr_grow(a, 4 + max) == -1)
		return NULL;
	return a->p + a->len + 4;
}

void
pgarr_commit(struct pgarr *a, size_t len)
{
	pgarr_put32(a->p + a->len, (uint32_t)len);
	a->len += 4 + len;
	a->n++;
}

void
pgarr_add_null(struct pgarr *a)
{
	if (pgarr_grow(a, 4) == -1)
		return;
	pgarr_put32(a->p + a->len, UINT32_MAX);	/* -1 */
	a->len += 4;
	a->n++;
	a->hasnull = 1;
}

void
pgarr_add_i64(struct pgarr *a, int64_t v)
{
	uint64_t u = htobe64((uint64_t)v);

	if (pgarr_grow(a, 12) == -1)
		return;
	pgarr_put32(a->p + a->len, 8);
	memcpy(a->p + a->len + 4, &u, 8);
	a->len += 12;
	a->n++;
}

void
pgarr_add_str(struct pgarr *a, const char *s)
{
	if (s == NULL)
		pgarr_add_null(a);
	else
		pgarr_add(a, s, strlen(s));
}

int
pgarr_finish(struct pgarr *a)
{
	if (a->err || a->p == NULL)
		return -1;
	if (a->n == 0) {
		/* No dimensions: an empty array. */
		pgarr_put32(a->p, 0);
		pgarr_put32(a->p + 4, 0);
		pgarr_put32(a->p + 8, a->elem);
		a->len = 12;
		return 0;
	}
	pgarr_put32(a->p, 1);
	pgarr_put32(a->p + 4, a->hasnull ? 1 : 0);
	pgarr_put32(a->p + 8, a->elem);
	pgarr_put32(a->p + 12, a->n);
	pgarr_put32(a->p + 16, 1);
	return 0;
}

void
pgarr_free(struct pgarr *a)
{
	free(a->p);
	memset(a, 0, sizeof(*a));
}

int
pgarr_rd_init(struct pgarr_rd *r, const char *p, size_t len)
{
	memset(r, 0, sizeof(*r));
	if (len < 12)
		return -1;
	r->end = p + len;
	switch (pgarr_get32(p)) {
	case 0:
		r->p = p + 12;
		return 0;
	case 1:
		if (len < PGARR_HDR)
			return -1;
		r->n = pgarr_get32(p + 12);
		r->p = p + PGARR_HDR;
		return 0;
	default:
		return -1;
	}
}

int
pgarr_rd_next(struct pgarr_rd *r, const char **elem, int32_t *len)
{
	uint32_t	 l;

	if (r->i == r->n)
		return 0;
	if (r->end - r->p < 4)
		return -1;
	l = pgarr_get32(r->p);
	r->p += 4;
	if (l == UINT32_MAX) {
		*elem = NULL;
		*len = -1;
	} else {
		if (l > (size_t)(r->end - r->p))
			return -1;
		*elem = r->p;
		*len = (int32_t)l;
		r->p += l;
	}
	r->i++;
	return 1;
}
