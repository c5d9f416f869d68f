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

#ifndef CANOPY_Q_API_H
#define CANOPY_Q_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"

/*
 * The HTTP API's statements.  Run on database worker threads only.  Each
 * returns DB_OK, DB_ERR or DB_EDOWN (db/db.h) with err set, or QA_NOTFOUND
 * where a row may legitimately be missing.  Every statement names the
 * virtual server it acts in.
 */
#define QA_NOTFOUND	1
#define QA_ROLES_MAX	64
#define QA_TS_LEN	32	/* "2026-01-02T03:04:05Z" */

struct qa_admin {
	int64_t	 id;
	int	 vs_id;
	char	 name[API_NAME_MAX + 1];
	char	 vs_name[API_NAME_MAX + 1];
	char	 principal[API_NAME_MAX + 1];	/* "" when none */
	char	 pw_hash[256];			/* "" when Kerberos only */
	int	 locked;			/* locked_until is ahead */
	char	 locked_until[QA_TS_LEN];
	char	 expires[QA_TS_LEN];		/* of the session, if any */
};

struct qa_role {
	char	 role[16];	/* administrator, operator, auditor */
	int64_t	 scope;		/* group id, 0: the whole virtual server */
};

/* Filters of GET /devices. */
struct qa_devq {
	int		 vs_id;
	const char	*vs_name;
	const char	*server;
	int64_t		 group;		/* 0: any */
	int		 recursive;
	const char	*scopes;	/* "{1,2}" or NULL: unrestricted */
	const char	*status;	/* NULL: any */
	const char	*like;		/* NULL: any */
	const char	*after_name;	/* cursor, or NULL */
	const char	*after_id;
	int		 limit;
	/*
	 * With the devices mirrored from the servers below (hier_devices):
	 * main only.  Their id is the global "<origin>/<id>".
	 */
	int		 hierarchy;
};

int	 qa_vs_by_name(PGconn *, const char *name, int *vs_id, char *err,
	    size_t errlen);
int	 qa_admin_by_name(PGconn *, int vs_id, const char *name,
	    struct qa_admin *, char *err, size_t errlen);
/* Looks a bearer token's hash up; *expired set when it is out of date. */
int	 qa_session_get(PGconn *, const char *token_hash, struct qa_admin *,
	    int *expired, char *err, size_t errlen);
int	 qa_session_create(PGconn *, const char *token_hash,
	    const struct qa_admin *, int ttl_s, const char *addr,
	    char expires[QA_TS_LEN], char *err, size_t errlen);
int	 qa_session_delete(PGconn *, const char *token_hash, char *err,
	    size_t errlen);
/* Counts a failure; locks for lock_s once it reaches max in a row. */
int	 qa_login_failed(PGconn *, int64_t admin_id, int max, int lock_s,
	    int *count, char locked_until[QA_TS_LEN], char *err,
	    size_t errlen);
int	 qa_login_ok(PGconn *, int64_t admin_id, char *err, size_t errlen);
int	 qa_roles(PGconn *, int64_t admin_id, struct qa_role *, size_t max,
	    size_t *n, char *err, size_t errlen);
/* detail: JSON text or NULL. */
int	 qa_audit(PGconn *, int vs_id, const char *actor, const char *addr,
	    const char *action, const char *object, const char *detail,
	    char *err, size_t errlen);

/* ref: "12" or "/Managed devices/Berlin". */
int	 qa_group_resolve(PGconn *, int vs_id, const char *ref, int64_t *id,
	    char *err, size_t errlen);
int	 qa_group_unassigned(PGconn *, int vs_id, int64_t *id, char *err,
	    size_t errlen);
/* QA_NOTFOUND unless the group lies in one of the scopes' subtrees. */
int	 qa_group_in_scope(PGconn *, int vs_id, int64_t id, const char *scopes,
	    char *err, size_t errlen);
int	 qa_groups_list(PGconn *, int vs_id, const char *scopes, json_t **out,
	    char *err, size_t errlen);
/* *devices: an array; *next: the cursor for the next page or NULL. */
int	 qa_devices_list(PGconn *, const struct qa_devq *, json_t **devices,
	    char **next, char *err, size_t errlen);
int	 qa_device_get(PGconn *, const struct qa_devq *, const char *id,
	    json_t **out, char *err, size_t errlen);
int	 qa_enroll_token_create(PGconn *, int vs_id, const char *token_hash,
	    int64_t group, int uses, int ttl_s, const char *created_by,
	    char expires[QA_TS_LEN], char *err, size_t errlen);

#endif
