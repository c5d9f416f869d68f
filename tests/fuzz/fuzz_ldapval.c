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
 * libFuzzer target for common/ldapval.c: every decoder on arbitrary bytes
 * must neither crash nor write past its output, and a DN's parent must be
 * a suffix of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canopy_limits.h"
#include "ldapval.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 g[37], out[256], *s, big[LDAPVAL_DN_MAX + 1];
	int64_t	 t;
	uint64_t u;

	(void)ldapval_guid(data, size, g);
	(void)ldapval_sid(data, size, out, sizeof(out));
	(void)ldapval_gentime((const char *)data, size, &t);
	(void)ldapval_filetime((const char *)data, size, &t);
	(void)ldapval_u64((const char *)data, size, &u);
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)ldapval_filter_escape(s, out, sizeof(out));
	if (ldapval_dn_parent(s, big, sizeof(big)) == 0) {
		size_t	 n = strlen(s), m = strlen(big);

		if (m > n || strcmp(s + n - m, big) != 0)
			abort();
	}
	(void)ldapval_dn_first_value(s, out, sizeof(out));
	(void)ldapval_dn_realm(s, out, sizeof(out));
	ldapval_dn_norm(s);
	free(s);
	return 0;
}
