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
 * libFuzzer target for conf_parse().  A configuration that parses must
 * print (conf_print) to text that parses back to the same printout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *
printed(const struct conf *c, size_t *len)
{
	char	*buf = NULL;
	FILE	*fp;

	if ((fp = open_memstream(&buf, len)) == NULL)
		abort();
	conf_print(c, fp);
	fclose(fp);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	 c, c2;
	char		 err[512], *p1, *p2;
	size_t		 l1, l2;

	if (conf_parse("fuzz.conf", (const char *)data, size, &c, err,
	    sizeof(err)) == -1) {
		if (strncmp(err, "fuzz.conf", 9) != 0)
			abort();
		conf_free(&c);
		return 0;
	}
	p1 = printed(&c, &l1);
	if (conf_parse("printed", p1, l1, &c2, err, sizeof(err)) == -1)
		abort();
	p2 = printed(&c2, &l2);
	if (l1 != l2 || memcmp(p1, p2, l1) != 0)
		abort();
	free(p1);
	free(p2);
	conf_free(&c2);
	conf_free(&c);
	return 0;
}
