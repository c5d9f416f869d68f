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
 * libFuzzer target for hrec_parse(): a server link's batch.  What it
 * accepts turns into columns without NULs, and each record's relayed
 * text, numbered again as hier_read numbers it, parses back to the same
 * record.  And for hrec_time(): a time it reads, written again in UTC by
 * the C library's calendar, reads back to the same microsecond.
 */
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canopy_limits.h"
#include "hrec.h"
#include "pgarr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A finished array of one element, which holds no NUL. */
static void
check_array(struct pgarr *a)
{
	uint32_t	 n;

	if (pgarr_finish(a) == -1 || a->n != 1)
		abort();
	memcpy(&n, a->p + 20, 4);
	n = ntohl(n);
	if (n != UINT32_MAX && (n != a->len - 24 ||
	    (a->elem == PGARR_TEXT_OID && memchr(a->p + 24, '\0', n) !=
	    NULL) || (a->elem != PGARR_TEXT_OID && n != 8)))
		abort();
}

static void
check_time(const char *s, size_t len)
{
	struct tm	 tm;
	time_t		 t;
	int64_t		 us, back;
	char		 buf[64];
	int		 n;

	if (hrec_time(s, len, &us) == -1)
		return;
	t = (time_t)(us / 1000000 - (us % 1000000 < 0)) + 946684800;
	if (gmtime_r(&t, &tm) == NULL)
		abort();
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(((us % 1000000) + 1000000) % 1000000));
	if (hrec_time(buf, (size_t)n, &back) == -1 || back != us)
		abort();
}

static void
check_record(const struct hrec *r)
{
	static const struct hrec_ctx snap = { NULL, 1, 0, 0, 0 };
	struct hrec_ctx	 ctx = snap;
	struct hrec_batch b;
	struct pgarr	 cols[2 * HREC_COLS_MAX], relay;
	char		 err[512], *text;
	int		 i, n;
	size_t		 len;

	n = hrec_cols_init(cols, r->kind);
	hrec_add_cols(cols, r);
	for (i = 0; i < n; i++) {
		check_array(&cols[i]);
		pgarr_free(&cols[i]);
	}
	pgarr_init(&relay);
	hrec_add_relay(&relay, r);
	if (pgarr_finish(&relay) == -1 || relay.n != 1)
		abort();
	/* "[" + '{"s" : 1, ' + the text (no opening brace) + "]" */
	len = relay.len - 24;
	if ((text = malloc(len + 32)) == NULL)
		abort();
	len = (size_t)sprintf(text, "[{\"s\" : 1, %.*s]", (int)len,
	    relay.p + 24);
	ctx.up = hrec_kinds[r->kind].up;
	if (hrec_parse(text, len, &ctx, &b, err, sizeof(err)) != 0 ||
	    b.n != 1 || strcmp(b.r[0].id, r->id) != 0 ||
	    strcmp(b.r[0].o, r->o) != 0 || b.r[0].v != r->v ||
	    b.r[0].kind != r->kind || b.r[0].op != r->op || b.r[0].s != 1)
		abort();
	hrec_batch_free(&b);
	free(text);
	pgarr_free(&relay);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hrec_ctx ctxs[] = {
		{ "11111111-1111-4111-8111-111111111111", 1, 1, 0, 1000 },
		{ NULL, 0, 1, 0, 1000 },
		{ NULL, 1, 0, 0, 0 },
	};
	struct hrec_batch b;
	char		 err[512];
	size_t		 i, k;

	check_time((const char *)data, size);
	for (k = 0; k < sizeof(ctxs) / sizeof(ctxs[0]); k++) {
		if (hrec_parse((const char *)data, size, &ctxs[k], &b, err,
		    sizeof(err)) != 0) {
			if (err[0] == '\0')
				abort();
			continue;
		}
		if (b.n > b.nchecked)
			abort();
		for (i = 0; i < b.n; i++)
			check_record(&b.r[i]);
		hrec_batch_free(&b);
	}
	return 0;
}
