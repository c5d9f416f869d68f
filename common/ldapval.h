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

#ifndef CANOPY_LDAPVAL_H
#define CANOPY_LDAPVAL_H

/*
 * Pure decoders of LDAP attribute values and DN helpers for directory
 * sources (directory/).  No I/O, no globals: fuzzed by
 * tests/fuzz/fuzz_ldapval.c.  Each returns 0, or -1 when the input is not
 * what it should be (the caller then keeps the attribute absent).
 */
#include <stddef.h>
#include <stdint.h>

/*
 * objectGUID (16 bytes, the first three fields little-endian as AD stores
 * them) or a textual UUID (entryUUID, ipaUniqueID) as canonical lower-case
 * text.
 */
int	 ldapval_guid(const void *, size_t, char out[37]);
/* objectSid, binary, as "S-1-5-21-...".  */
int	 ldapval_sid(const void *, size_t, char *out, size_t outlen);
/* GeneralizedTime "YYYYMMDDHHMMSS[.f]Z" (or +hhmm) as Unix seconds. */
int	 ldapval_gentime(const char *, size_t, int64_t *);
/* AD FILETIME (100 ns ticks since 1601) as Unix seconds; 0 and max: never. */
int	 ldapval_filetime(const char *, size_t, int64_t *);
/* An unsigned decimal (uSNChanged, userAccountControl). */
int	 ldapval_u64(const char *, size_t, uint64_t *);
/* A value escaped for a search filter (RFC 4515). */
int	 ldapval_filter_escape(const char *, char *out, size_t outlen);
/* The DN without its first RDN (escapes and quotes respected); "" at top. */
int	 ldapval_dn_parent(const char *, char *out, size_t outlen);
/* The value of the first RDN, unescaped ("CN=a\,b,OU=x" -> "a,b"). */
int	 ldapval_dn_first_value(const char *, char *out, size_t outlen);
/* The DNS domain of the DC= components, upper-cased: a Kerberos realm. */
int	 ldapval_dn_realm(const char *, char *out, size_t outlen);
/* In place: lower-cased, no spaces around , and = (comparable DNs). */
void	 ldapval_dn_norm(char *);

#endif
