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
 * The groups API (srv/api.h explains route tables): the group tree, moving
 * devices between groups, events, the audit log and administrators.
 *
 * Who may do what:
 *   GET /groups, /groups/{id}, /events        any role, within its read scope
 *   POST/PATCH/DELETE /groups                 administrator, within the
 *                                             scopes of its administrator
 *                                             roles (group and new parent)
 *   POST /devices/{id}/move                   operator or administrator; the
 *                                             device's group and the target
 *                                             both within the write scope
 *   GET /audit                                administrator or auditor of the
 *                                             whole virtual server; an
 *                                             operator (or a role scoped to a
 *                                             subtree) gets 403: the log
 *                                             speaks of every group
 *   /admins                                   administrator of the whole
 *                                             virtual server (a scoped one
 *                                             could otherwise grant itself
 *                                             more)
 * Anything outside the caller's scope is 404, as if it did not exist.
 * Each request is one transaction.  Events, audit and administrators
 * are in srv/api_admins.c; this file holds the one route table.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#include "auth/auth.h"
#include "db/db.h"
#include "db/q_api.h"
#include "db/q_groups.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"
#include "modules.h"
#include "api_groups.h"

static const struct api_field ga_create_schema[] = {
	{ "path",	AF_STRING, 0, 1, API_PATH_MAX, NULL },
	{ "parent",	AF_REF, 0, 1, API_PATH_MAX, NULL },
	{ "name",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
};
#define GA_C_PATH	0
#define GA_C_PARENT	1
#define GA_C_NAME	2

static const struct api_field ga_patch_schema[] = {
	{ "name",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "parent",	AF_REF, 0, 1, API_PATH_MAX, NULL },
};
#define GA_P_NAME	0
#define GA_P_PARENT	1

static const struct api_field ga_move_schema[] = {
	{ "group",	AF_REF, 1, 1, API_PATH_MAX, NULL },
};


const char *
ga_scopes(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

/*
 * Effective policies change when a device or a group moves: the run
 * notes where (in ar->id, unused by table routes) and ga_after, on the
 * loop, has the policies of that subtree pushed to its agents.
 */
static void
ga_mark(struct api_req *ar, int vs_id, int64_t group)
{
	snprintf(ar->id, sizeof(ar->id), "%d:%" PRId64, vs_id, group);
}

static void
ga_after(struct api_req *ar)
{
	int		 vs_id;
	long long	 group;

	if (sscanf(ar->id, "%d:%lld", &vs_id, &group) == 2 && group > 0)
		policy_push_group(ar->cd, vs_id, group);
}

/*
 * The scopes of the caller's administrator roles as array text, NULL when
 * one of them covers the whole virtual server.
 */
static const char *
ga_admin_scopes(const struct api_auth *au, char *buf, size_t len)
{
	char	 num[24];
	size_t	 i;

	strlcpy(buf, "{", len);
	for (i = 0; i < au->nroles; i++) {
		if (strcmp(au->roles[i].role, "administrator") != 0)
			continue;
		if (au->roles[i].scope == 0)
			return NULL;
		snprintf(num, sizeof(num), "%s%" PRId64, buf[1] ? "," : "",
		    au->roles[i].scope);
		strlcat(buf, num, len);
	}
	strlcat(buf, "}", len);
	return buf;
}

/* A role over the whole virtual server, of one of the given kinds. */
int
ga_unscoped(const struct api_auth *au, const char *r1, const char *r2)
{
	size_t	 i;

	for (i = 0; i < au->nroles; i++)
		if (au->roles[i].scope == 0 &&
		    (strcmp(au->roles[i].role, r1) == 0 ||
		    (r2 != NULL && strcmp(au->roles[i].role, r2) == 0)))
			return 1;
	return 0;
}

/* Answers a 4xx: nothing of the request stays. */
int
ga_fail(PGconn *conn, struct api_req *ar, int status, const char *code,
    const char *msg)
{
	db_rollback(conn);
	api_req_fail(ar, status, code, "%s", msg);
	return DB_OK;
}

/* A database error: the transaction goes, the job fails with rc. */
int
ga_dberr(PGconn *conn, int rc)
{
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		db_rollback(conn);
	return rc;
}

/* Validates the body; 0, or -1 after a 400. */
int
ga_body(struct api_req *ar, const struct api_field *schema, size_t n,
    json_t **root, struct api_value *vals)
{
	char	 msg[1024];

	if (api_json_validate(ar->body_text != NULL ? ar->body_text : "",
	    ar->body_len, schema, n, root, vals, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return -1;
	}
	return 0;
}

/* A group's own name: no '/', no control characters. */
static int
ga_name_ok(const char *field, const char *s, size_t len, char *msg,
    size_t msglen)
{
	size_t	 i;

	if (len == 0 || len > API_NAME_MAX) {
		snprintf(msg, msglen, "%s: must be 1 to %d bytes", field,
		    API_NAME_MAX);
		return -1;
	}
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' &&
	    s[1] == '.')) {
		snprintf(msg, msglen, "%s: may not be '.' or '..'", field);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '/') {
			snprintf(msg, msglen, "%s: may not contain '/'",
			    field);
			return -1;
		}
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(msg, msglen, "%s: may not contain control "
			    "characters", field);
			return -1;
		}
	}
	return 0;
}

/* An id from the path: digits only, else it names nothing. */
int
ga_id(const char *s, int64_t *id)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	*id = strtoll(s, NULL, 10);
	return *id > 0 ? 0 : -1;
}

/*
 * ISO-8601: 2026-01-02, 2026-01-02T03:04[:05[.123]] with Z or ±hh:mm.
 * Checked here so that PostgreSQL never sees a date it would refuse.
 */
static int
ga_time_ok(const char *s)
{
	struct tm	 tm, back;
	const char	*p;
	char		*end;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%d", &tm)) == NULL || p - s != 10)
		return -1;
	if (*p == 'T' || *p == ' ') {
		if ((end = strptime(p + 1, "%H:%M", &tm)) == NULL ||
		    end - p != 6)
			return -1;
		p = end;
		if (*p == ':') {
			if (!isdigit((unsigned char)p[1]) ||
			    !isdigit((unsigned char)p[2]))
				return -1;
			tm.tm_sec = (p[1] - '0') * 10 + (p[2] - '0');
			if (tm.tm_sec > 59)
				return -1;
			p += 3;
			if (*p == '.') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p))
					p++;
			}
		}
		if (*p == 'Z')
			p++;
		else if (*p == '+' || *p == '-') {
			if (!isdigit((unsigned char)p[1]) ||
			    !isdigit((unsigned char)p[2]) || p[3] != ':' ||
			    !isdigit((unsigned char)p[4]) ||
			    !isdigit((unsigned char)p[5]))
				return -1;
			p += 6;
		}
	}
	if (*p != '\0')
		return -1;
	/* 2026-02-30 comes back as March: refused. */
	back = tm;
	if ((t = timegm(&back)) == (time_t)-1 || back.tm_mday != tm.tm_mday ||
	    back.tm_mon != tm.tm_mon || tm.tm_year < 0 || tm.tm_year > 8000)
		return -1;
	return 0;
}

/* The common query parameters of the lists; 0, or -1 after a 400. */
int
ga_page(struct api_req *ar, int *limit, const char **since)
{
	const char	*v;
	char		 msg[256];
	long long	 n;

	*limit = API_PAGE_DEFAULT;
	if ((v = api_query(ar, "limit")) != NULL) {
		if (api_param_int("limit", v, 1, API_PAGE_MAX, &n, msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return -1;
		}
		*limit = (int)n;
	}
	*since = NULL;
	if ((v = api_query(ar, "since")) != NULL && *v != '\0') {
		if (strlen(v) > 64 || ga_time_ok(v) == -1) {
			api_req_fail(ar, 400, "bad_request", "since: must be "
			    "an ISO-8601 time such as 2026-01-02T03:04:05Z");
			return -1;
		}
		*since = v;
	}
	return 0;
}

/* ---- groups ---- */

static int
ga_groups_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*g;
	int	 rc;

	if ((rc = qa_groups_list(conn, au->vs_id, ga_scopes(au->read_scopes),
	    &g, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "groups", g);
	ar->status = 200;
	return DB_OK;
}

/* Resolves pp[0] as a group the caller may see (scopes); 404 if not. */
static int
ga_group_pp(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    const char *scopes, struct qg_group *g, char *err, size_t errlen)
{
	int64_t	 id;
	int	 rc;

	if (ga_id(ar->pp[0], &id) == -1) {
		api_req_fail(ar, 404, "not_found", "no such group");
		return QA_NOTFOUND;
	}
	rc = qa_group_in_scope(conn, au->vs_id, id, scopes, err, errlen);
	if (rc == DB_OK)
		rc = qg_group_get(conn, au->vs_id, id, g, err, errlen);
	if (rc == QA_NOTFOUND)
		api_req_fail(ar, 404, "not_found", "no such group");
	return rc;
}

static int
ga_group_show(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct qg_group	 g;
	int		 rc;

	rc = ga_group_pp(conn, ar, au, ga_scopes(au->read_scopes), &g, err,
	    errlen);
	if (rc == QA_NOTFOUND)
		return DB_OK;
	if (rc != DB_OK)
		return rc;
	ar->resp = qg_group_json(&g);
	ar->status = 200;
	return DB_OK;
}

/* The fixed groups keep their place and name. */
static int
ga_fixed(const struct qg_group *g, const char *what, char *msg, size_t len)
{
	if (strcmp(g->kind, "normal") == 0)
		return 0;
	snprintf(msg, len, "'%.300s' is %s and cannot be %s", g->path,
	    strcmp(g->kind, "root") == 0 ? "the root of the group tree" :
	    "the pool of unassigned devices", what);
	return -1;
}

static int
ga_group_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[3];
	struct qg_group	 pg, g;
	json_t		*root;
	char		 sbuf[API_SCOPES_LEN], msg[1024];
	char		*ppath = NULL, *slash;
	const char	*scopes, *name, *pref, *pfield;
	int64_t		 parent = 0, id = 0;
	size_t		 len;
	int		 rc;

	if (ga_body(ar, ga_create_schema, 3, &root, vals) == -1)
		return DB_OK;
	scopes = ga_admin_scopes(au, sbuf, sizeof(sbuf));
	if (vals[GA_C_PATH].present) {
		if (vals[GA_C_PARENT].present || vals[GA_C_NAME].present) {
			api_req_fail(ar, 400, "bad_request", "path: give "
			    "either path or parent and name, not both");
			goto out;
		}
		if ((ppath = strdup(vals[GA_C_PATH].s)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = DB_ERR;
			goto done;
		}
		len = strlen(ppath);
		while (len > 1 && ppath[len - 1] == '/')
			ppath[--len] = '\0';
		if (ppath[0] != '/' || strstr(ppath, "//") != NULL) {
			api_req_fail(ar, 400, "bad_request", "path: must start "
			    "with '/' and have no empty names, as in "
			    "'/Managed devices/Berlin'");
			goto out;
		}
		slash = strrchr(ppath, '/');
		if (slash == ppath) {
			api_req_fail(ar, 400, "bad_request", "path: new groups "
			    "go below an existing group, as in "
			    "'/Managed devices/Berlin'");
			goto out;
		}
		*slash = '\0';
		name = slash + 1;
		pref = ppath;
		pfield = "path";
		if (ga_name_ok("path", name, strlen(name), msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			goto out;
		}
	} else {
		if (!vals[GA_C_PARENT].present || !vals[GA_C_NAME].present) {
			api_req_fail(ar, 400, "bad_request", "%s: required "
			    "(or give path)", vals[GA_C_PARENT].present ?
			    "name" : "parent");
			goto out;
		}
		name = vals[GA_C_NAME].s;
		pref = vals[GA_C_PARENT].s;
		pfield = "parent";
		if (ga_name_ok("name", name, strlen(name), msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			goto out;
		}
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = api_group_ref(conn, ar, au, pfield, pref, scopes, &parent, err,
	    errlen);
	if (rc == DB_OK)
		rc = qg_group_get(conn, au->vs_id, parent, &pg, err, errlen);
	if (rc == QA_NOTFOUND) {
		if (ar->status == 0)
			api_req_fail(ar, 404, "not_found", "%s: no group "
			    "'%.300s'", pfield, pref);
		db_rollback(conn);
		rc = DB_OK;
		goto done;
	}
	if (rc != DB_OK)
		goto dberr;
	if (strcmp(pg.kind, "unassigned") == 0) {
		snprintf(msg, sizeof(msg), "%s: '%.300s' is the pool of "
		    "unassigned devices and holds no groups", pfield, pg.path);
		rc = ga_fail(conn, ar, 409, "conflict", msg);
		goto done;
	}
	rc = qg_group_create(conn, au->vs_id, parent, name, &id, err, errlen);
	if (rc == QG_CONFLICT) {
		snprintf(msg, sizeof(msg), "%s: '%.300s' already has a group "
		    "named '%.255s'", pfield, pg.path, name);
		rc = ga_fail(conn, ar, 409, "conflict", msg);
		goto done;
	}
	if (rc == DB_OK)
		rc = qg_group_get(conn, au->vs_id, id, &g, err, errlen);
	if (rc != DB_OK)
		goto dberr;
	snprintf(msg, sizeof(msg), "%" PRId64, g.id);
	api_audit(conn, ar, au->vs_id, au->admin.name, "group_create", msg,
	    json_pack("{s:{s:n},s:{s:s,s:s}}", "before", "group", "after",
	    "path", g.path, "parent", pg.path));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto dberr;
	ar->resp = qg_group_json(&g);
	ar->status = 201;
	goto done;
 out:
	rc = DB_OK;
	goto done;
 dberr:
	rc = ga_dberr(conn, rc);
 done:
	free(ppath);
	json_decref(root);
	return rc;
}

static int
ga_group_patch(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[2];
	struct qg_group	 g, pg, after;
	json_t		*root;
	char		 sbuf[API_SCOPES_LEN], msg[1024], ids[24];
	const char	*scopes;
	int64_t		 parent = 0;
	int		 rc;

	if (ga_body(ar, ga_patch_schema, 2, &root, vals) == -1)
		return DB_OK;
	if (!vals[GA_P_NAME].present && !vals[GA_P_PARENT].present) {
		api_req_fail(ar, 400, "bad_request", "body: give name, parent "
		    "or both");
		rc = DB_OK;
		goto done;
	}
	if (vals[GA_P_NAME].present && ga_name_ok("name", vals[GA_P_NAME].s,
	    strlen(vals[GA_P_NAME].s), msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		rc = DB_OK;
		goto done;
	}
	scopes = ga_admin_scopes(au, sbuf, sizeof(sbuf));
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = ga_group_pp(conn, ar, au, scopes, &g, err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		rc = DB_OK;
		goto done;
	}
	if (rc != DB_OK)
		goto dberr;
	if (ga_fixed(&g, vals[GA_P_PARENT].present ? "moved" : "renamed",
	    msg, sizeof(msg)) == -1) {
		rc = ga_fail(conn, ar, 409, "conflict", msg);
		goto done;
	}
	if (vals[GA_P_PARENT].present) {
		rc = api_group_ref(conn, ar, au, "parent",
		    vals[GA_P_PARENT].s, scopes, &parent, err, errlen);
		if (rc == DB_OK)
			rc = qg_group_get(conn, au->vs_id, parent, &pg, err,
			    errlen);
		if (rc == QA_NOTFOUND) {
			if (ar->status == 0)
				api_req_fail(ar, 404, "not_found", "parent: "
				    "no group '%.300s'", vals[GA_P_PARENT].s);
			db_rollback(conn);
			rc = DB_OK;
			goto done;
		}
		if (rc != DB_OK)
			goto dberr;
		if (strcmp(pg.kind, "unassigned") == 0) {
			snprintf(msg, sizeof(msg), "parent: '%.300s' is the "
			    "pool of unassigned devices and holds no groups",
			    pg.path);
			rc = ga_fail(conn, ar, 409, "conflict", msg);
			goto done;
		}
		if (parent != g.parent) {
			ga_mark(ar, au->vs_id, g.id);
			rc = qg_group_move(conn, au->vs_id, g.id, parent,
			    vals[GA_P_NAME].present ? vals[GA_P_NAME].s : NULL,
			    err, errlen);
			if (rc == QG_CYCLE) {
				rc = ga_fail(conn, ar, 400, "bad_request",
				    "parent: would create a cycle (it is the "
				    "group itself or lies below it)");
				goto done;
			}
			if (rc == QG_CONFLICT) {
				snprintf(msg, sizeof(msg), "parent: '%.300s' "
				    "already has a group named '%.255s'",
				    pg.path, vals[GA_P_NAME].present ?
				    vals[GA_P_NAME].s : g.name);
				rc = ga_fail(conn, ar, 409, "conflict", msg);
				goto done;
			}
			if (rc != DB_OK)
				goto dberr;
		}
	}
	/* A move renamed it already. */
	if (vals[GA_P_NAME].present && strcmp(vals[GA_P_NAME].s, g.name) != 0 &&
	    !(vals[GA_P_PARENT].present && parent != g.parent)) {
		rc = qg_group_rename(conn, au->vs_id, g.id, vals[GA_P_NAME].s,
		    err, errlen);
		if (rc == QG_CONFLICT) {
			snprintf(msg, sizeof(msg), "name: a sibling is "
			    "already named '%.255s'", vals[GA_P_NAME].s);
			rc = ga_fail(conn, ar, 409, "conflict", msg);
			goto done;
		}
		if (rc != DB_OK)
			goto dberr;
	}
	if ((rc = qg_group_get(conn, au->vs_id, g.id, &after, err, errlen)) !=
	    DB_OK)
		goto dberr;
	snprintf(ids, sizeof(ids), "%" PRId64, g.id);
	api_audit(conn, ar, au->vs_id, au->admin.name, "group_update", ids,
	    json_pack("{s:{s:s,s:s},s:{s:s,s:s}}",
	    "before", "name", g.name, "path", g.path,
	    "after", "name", after.name, "path", after.path));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto dberr;
	ar->resp = qg_group_json(&after);
	ar->status = 200;
	goto done;
 dberr:
	rc = ga_dberr(conn, rc);
 done:
	json_decref(root);
	return rc;
}

static int
ga_group_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct qg_group	 g;
	char		 sbuf[API_SCOPES_LEN], msg[1024], ids[24];
	long long	 ngroups = 0, ndevices = 0;
	int		 rc;

	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = ga_group_pp(conn, ar, au, ga_admin_scopes(au, sbuf, sizeof(sbuf)),
	    &g, err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		return DB_OK;
	}
	if (rc != DB_OK)
		return ga_dberr(conn, rc);
	if (ga_fixed(&g, "deleted", msg, sizeof(msg)) == -1)
		return ga_fail(conn, ar, 409, "conflict", msg);
	rc = qg_group_delete(conn, au->vs_id, g.id, &ngroups, &ndevices, err,
	    errlen);
	if (rc == QG_NOTEMPTY) {
		snprintf(msg, sizeof(msg), "'%.300s' is not empty: it holds "
		    "%lld group%s and %lld device%s; move or delete them "
		    "first", g.path, ngroups, ngroups == 1 ? "" : "s",
		    ndevices, ndevices == 1 ? "" : "s");
		return ga_fail(conn, ar, 409, "not_empty", msg);
	}
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "no such group");
		return DB_OK;
	}
	if (rc != DB_OK)
		return ga_dberr(conn, rc);
	snprintf(ids, sizeof(ids), "%" PRId64, g.id);
	api_audit(conn, ar, au->vs_id, au->admin.name, "group_delete", ids,
	    json_pack("{s:{s:s},s:n}", "before", "path", g.path, "after"));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return ga_dberr(conn, rc);
	ar->status = 204;
	return DB_OK;
}

/* ---- devices ---- */

static int
ga_device_move(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[1];
	struct qa_devq	 q;
	struct qg_group	 from, to;
	json_t		*root, *d = NULL;
	char		 name[API_NAME_MAX + 1], text[2 * API_PATH_MAX + 512];
	const char	*wscopes = ga_scopes(au->write_scopes);
	const char	*dev = ar->pp[0];
	int64_t		 src = 0, dst = 0;
	int		 rc;

	if (!api_uuid_valid(dev)) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	if (ga_body(ar, ga_move_schema, 1, &root, vals) == -1)
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	/* Out of the write scope, at either end, it does not exist. */
	rc = qg_device_group(conn, au->vs_id, dev, &src, name, sizeof(name),
	    err, errlen);
	if (rc == DB_OK)
		rc = qa_group_in_scope(conn, au->vs_id, src, wscopes, err,
		    errlen);
	if (rc == QA_NOTFOUND) {
		rc = ga_fail(conn, ar, 404, "not_found", "no such device");
		goto done;
	}
	if (rc != DB_OK)
		goto dberr;
	rc = api_group_ref(conn, ar, au, "group", vals[0].s, wscopes, &dst,
	    err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		rc = DB_OK;
		goto done;
	}
	if (rc == DB_OK)
		rc = qg_group_get(conn, au->vs_id, src, &from, err, errlen);
	if (rc == DB_OK)
		rc = qg_group_get(conn, au->vs_id, dst, &to, err, errlen);
	if (rc != DB_OK)
		goto dberr;
	if (src != dst) {
		ga_mark(ar, au->vs_id, dst);
		if ((rc = qg_device_move(conn, au->vs_id, dev, dst, err,
		    errlen)) != DB_OK)
			goto dberr;
		snprintf(text, sizeof(text), "moved from %s to %s by %s",
		    from.path, to.path, au->admin.name);
		if ((rc = qg_event_add(conn, au->vs_id, dev, "info",
		    "device_moved", text, err, errlen)) != DB_OK)
			goto dberr;
		api_audit(conn, ar, au->vs_id, au->admin.name, "device_move",
		    dev, json_pack("{s:s,s:{s:s},s:{s:s}}", "device", name,
		    "before", "group", from.path, "after", "group", to.path));
	}
	memset(&q, 0, sizeof(q));
	q.vs_id = au->vs_id;
	q.vs_name = au->vs_name;
	q.server = ar->server;
	q.scopes = ga_scopes(au->read_scopes);
	if ((rc = qa_device_get(conn, &q, dev, &d, err, errlen)) != DB_OK)
		goto dberr;
	if ((rc = db_commit(conn, err, errlen)) != DB_OK) {
		json_decref(d);
		goto dberr;
	}
	ar->resp = d;
	ar->status = 200;
	goto done;
 dberr:
	rc = ga_dberr(conn, rc);
 done:
	json_decref(root);
	return rc;
}

const struct api_endpoint api_endpoints_groups[] = {
	{ EVHTTP_REQ_GET,	"/groups",		API_A_READ,
	    ga_groups_list, NULL },
	{ EVHTTP_REQ_POST,	"/groups",		API_A_ADMIN,
	    ga_group_create, NULL },
	{ EVHTTP_REQ_GET,	"/groups/{}",		API_A_READ,
	    ga_group_show, NULL },
	{ EVHTTP_REQ_PATCH,	"/groups/{}",		API_A_ADMIN,
	    ga_group_patch, ga_after },
	{ EVHTTP_REQ_DELETE,	"/groups/{}",		API_A_ADMIN,
	    ga_group_delete, NULL },
	{ EVHTTP_REQ_POST,	"/devices/{}/move",	API_A_OPERATE,
	    ga_device_move, ga_after },
	{ EVHTTP_REQ_GET,	"/events",		API_A_READ,
	    ga_events, NULL },
	{ EVHTTP_REQ_GET,	"/audit",		API_A_READ,
	    ga_audit, NULL },
	{ EVHTTP_REQ_POST,	"/admins",		API_A_ADMIN,
	    ga_admin_add, NULL },
	{ EVHTTP_REQ_GET,	"/admins",		API_A_ADMIN,
	    ga_admins_list, NULL },
	{ EVHTTP_REQ_DELETE,	"/admins/{}",		API_A_ADMIN,
	    ga_admin_delete, NULL },
	{ EVHTTP_REQ_POST,	"/admins/{}/unlock",	API_A_ADMIN,
	    ga_admin_unlock, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
