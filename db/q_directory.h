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

#ifndef CANOPY_Q_DIRECTORY_H
#define CANOPY_Q_DIRECTORY_H

/*
 * LDAP directory sources and their objects (db/migrations/
 * 011_directory.sql).  The API functions run in an API job's transaction;
 * the poll functions on a poller thread's own connection
 * (directory/directory.c).  DB_OK, DB_ERR or DB_EDOWN (db/db.h) with err
 * set, QD_NOTFOUND or QD_CONFLICT.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#define QD_NOTFOUND	1
#define QD_CONFLICT	2
#define QD_TOOMANY	3

struct dir_result;

/* A new source: every field already checked; secrets already sealed. */
struct qd_new_source {
	const char	*name;
	const char	*flavor;
	const char	*url;
	const char	*base_dn;
	const char	*bind_method;
	const char	*bind_dn;
	const char	*bind_secret;	/* sealed password */
	const char	*principal;
	const char	*keytab_sealed;
	int		 starttls;
	int		 tls_verify;
	const char	*ca_file;
	const char	*realm;
	int		 interval_s;
};

int	 qd_source_create(PGconn *, int vs_id, const struct qd_new_source *,
	    json_t **out, char *err, size_t errlen);
int	 qd_source_list(PGconn *, int vs_id, json_t **out, char *err,
	    size_t errlen);
int	 qd_source_get(PGconn *, int vs_id, const char *id, json_t **out,
	    char *err, size_t errlen);
/* Asks for a poll now (full: read everything and reconcile). */
int	 qd_source_poll(PGconn *, int vs_id, const char *id, int full,
	    char *err, size_t errlen);
int	 qd_source_delete(PGconn *, int vs_id, const char *id, json_t **old,
	    char *err, size_t errlen);
/* source/type/q may be NULL; after: the previous page's last id or NULL. */
int	 qd_objects_list(PGconn *, int vs_id, const char *source,
	    const char *type, const char *q, const char *after, int limit,
	    json_t **out, char *err, size_t errlen);

/*
 * Poller side (system connection).  claim: the next due source, marked
 * polling by owner; QD_NOTFOUND when none is due.  *row: a JSON object of
 * its columns (secrets sealed).
 */
int	 qd_claim(PGconn *, const char *owner, json_t **row, char *err,
	    size_t errlen);
/* Writes a poll's result, merges computers into devices, places them. */
int	 qd_poll_store(PGconn *, int64_t source, int vs_id,
	    const struct dir_result *, long long ms, char *err, size_t errlen);
/* ms: the LDAP part (store); the whole poll, written after (time). */
int	 qd_poll_time(PGconn *, int64_t source, long long ms, char *err,
	    size_t errlen);
int	 qd_poll_fail(PGconn *, int64_t source, const char *error,
	    long long ms, char *err, size_t errlen);

#endif
