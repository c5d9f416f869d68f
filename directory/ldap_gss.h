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

#ifndef CANOPY_DIRECTORY_LDAP_GSS_H
#define CANOPY_DIRECTORY_LDAP_GSS_H

/*
 * SASL/GSSAPI bind with the source's keytab: its own MEMORY credential
 * cache, selected for the calling thread only, so that no process-global
 * state (KRB5CCNAME, KRB5_KTNAME) is touched by a poller thread.
 */
#include <stddef.h>

#include <ldap.h>

struct dir_source;

int	 dir_gss_bind(LDAP *, const struct dir_source *, char *err,
	    size_t errlen);

#endif
