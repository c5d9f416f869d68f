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

#ifndef CANOPY_Q_GROUPS_H
#define CANOPY_Q_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"

/*
 * Statements of the groups, device-move, events, audit and administrators
 * API (srv/api_groups.c).  Worker threads only.  Each returns DB_OK, DB_ERR
 * or DB_EDOWN (db/db.h) with err set, QA_NOTFOUND (db/q_api.h) where a row
 * may be missing, or one of the codes below.  Every statement names its
 * virtual server.
 */
#define QG_CONFLICT	2	/* a sibling or account of that name exists */
#define QG_CYCLE	3	/* the new parent lies in the group's subtree */
#define QG_NOTEMPTY	4	/* the group holds groups or devices */
#define QG_PRINCIPAL	5	/* the principal belongs to another account */

struct qg_group {
	int64_t	 id;
	int64_t	 parent;		/* 0: a root */
	char	 kind[16];		/* root, unassigned, normal */
	char	 name[API_NAME_MAX + 1];
	char	 path[API_PATH_MAX + 1];
};

/* Filters of GET /events; NULL: any. */
struct qg_evq {
	int		 vs_id;
	const char	*scopes;	/* "{1,2}" or NULL: unrestricted */
	const char	*device;	/* uuid */
	const char	*severity;	/* at least this */
	const char	*type;
	const char	*since;		/* ISO-8601 */
	const char	*after_us;	/* cursor: time in µs since the epoch */
	const char	*after_id;
	int		 limit;
};

/* Filters of GET /audit; NULL: any. */
struct qg_auq {
	int		 vs_id;
	const char	*since;
	const char	*actor;
	const char	*action;
	const char	*after_id;	/* cursor */
	int		 limit;
};

int	 qg_group_get(PGconn *, int vs_id, int64_t id, struct qg_group *,
	    char *err, size_t errlen);
json_t	*qg_group_json(const struct qg_group *);
int	 qg_group_create(PGconn *, int vs_id, int64_t parent,
	    const char *name, int64_t *id, char *err, size_t errlen);
int	 qg_group_rename(PGconn *, int vs_id, int64_t id, const char *name,
	    char *err, size_t errlen);
/* name: the group's new name as well, or NULL to keep it. */
int	 qg_group_move(PGconn *, int vs_id, int64_t id, int64_t parent,
	    const char *name, char *err, size_t errlen);
/* QG_NOTEMPTY with the counts when it holds anything. */
int	 qg_group_delete(PGconn *, int vs_id, int64_t id, long long *ngroups,
	    long long *ndevices, char *err, size_t errlen);

/* The device's group and name. */
int	 qg_device_group(PGconn *, int vs_id, const char *device,
	    int64_t *group, char *name, size_t namelen, char *err,
	    size_t errlen);
int	 qg_device_move(PGconn *, int vs_id, const char *device,
	    int64_t group, char *err, size_t errlen);
/* A server event; device may be NULL. */
int	 qg_event_add(PGconn *, int vs_id, const char *device,
	    const char *severity, const char *type, const char *text,
	    char *err, size_t errlen);
/* *next: the cursor of the next page (malloc'd) or NULL. */
int	 qg_events_list(PGconn *, const struct qg_evq *, json_t **events,
	    char **next, char *err, size_t errlen);
int	 qg_audit_list(PGconn *, const struct qg_auq *, json_t **audit,
	    char **next, char *err, size_t errlen);

/* QG_CONFLICT (name) or QG_PRINCIPAL when taken. */
int	 qg_admin_create(PGconn *, int vs_id, const char *name,
	    const char *principal, const char *pw_hash, int64_t *id,
	    char *err, size_t errlen);
/* scope 0: the whole virtual server. */
int	 qg_admin_role_add(PGconn *, int64_t admin_id, const char *role,
	    int64_t scope, char *err, size_t errlen);
int	 qg_admins_list(PGconn *, int vs_id, json_t **admins, char *err,
	    size_t errlen);
int	 qg_admin_name(PGconn *, int vs_id, int64_t id, char *name,
	    size_t namelen, char *err, size_t errlen);
int	 qg_admin_delete(PGconn *, int vs_id, int64_t id, char *err,
	    size_t errlen);
int	 qg_admin_unlock(PGconn *, int vs_id, int64_t id, int *failed,
	    char *err, size_t errlen);

#endif
