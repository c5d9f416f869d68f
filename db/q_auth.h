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

#ifndef CANOPY_Q_AUTH_H
#define CANOPY_Q_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db/q_api.h"

/* Kerberos keytab, role mappings, TOTP (issue 6).  QA_NOTFOUND as q_api. */

#define QK_MAPPED_MAX	QA_ROLES_MAX

struct qk_mapped {
	int	 vs_id;
	char	 role[16];
	int64_t	 scope;		/* 0: the whole virtual server */
};

/* *sealed malloc'd; QA_NOTFOUND when none was uploaded. */
int	 qk_keytab_get(PGconn *, char **sealed, json_t **principals,
	    char updated[QA_TS_LEN], char *err, size_t errlen);
int	 qk_keytab_put(PGconn *, const char *sealed, char **principals,
	    size_t n, const char *by, char *err, size_t errlen);

int	 qk_admin_by_principal(PGconn *, const char *principal,
	    struct qa_admin *, char *err, size_t errlen);
/* Another realm's principal with the same user part, for the log. */
int	 qk_principal_other_realm(PGconn *, const char *principal,
	    char *out, size_t outlen, char *err, size_t errlen);
/* The roles role mappings give principal now (0 of them if no directory). */
int	 qk_mapped_roles(PGconn *, const char *principal, struct qk_mapped *,
	    size_t max, size_t *n, char *err, size_t errlen);
/* Creates the account of a mapped principal in vs_id (Kerberos only). */
int	 qk_mapped_admin_create(PGconn *, int vs_id, const char *principal,
	    char *err, size_t errlen);
/* Replaces the mapping-given roles of admin_id by those of vs_id in m. */
int	 qk_mapped_roles_apply(PGconn *, int64_t admin_id, int vs_id,
	    const struct qk_mapped *, size_t n, char *err, size_t errlen);

int	 qk_rm_create(PGconn *, int vs_id, const char *group, const char *role,
	    int64_t scope, int64_t *id, char *err, size_t errlen);
int	 qk_rm_list(PGconn *, int vs_id, json_t **out, char *err,
	    size_t errlen);
int	 qk_rm_delete(PGconn *, int vs_id, int64_t id, char *err,
	    size_t errlen);

/* TOTP: sealed secrets (malloc'd, NULL when none) and the last step. */
int	 qk_totp_get(PGconn *, int64_t admin_id, char **sealed, char **pending,
	    int64_t *last_step, char *err, size_t errlen);
int	 qk_totp_set_pending(PGconn *, int64_t admin_id, const char *sealed,
	    char *err, size_t errlen);
/* Pending becomes the secret; step is the first code's. */
int	 qk_totp_confirm(PGconn *, int64_t admin_id, int64_t step, char *err,
	    size_t errlen);
/* Marks step used: QA_NOTFOUND if it (or a later one) already was. */
int	 qk_totp_use(PGconn *, int64_t admin_id, int64_t step, char *err,
	    size_t errlen);
int	 qk_totp_clear(PGconn *, int64_t admin_id, char *err, size_t errlen);

#endif
