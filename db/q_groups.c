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

/* The groups, events, audit and administrators API's statements. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "util.h"

#include "db.h"
#include "sql.h"
#include "q_api.h"
#include "q_groups.h"

/* Severities in rising order: "at least" compares positions. */
#define SEVERITIES	"ARRAY['info','warning','error','critical']"

static const char *
qg_val(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static json_t *
qg_jstr(PGresult *res, int row, int col)
{
	const char	*v = qg_val(res, row, col);

	return v != NULL ? json_string(v) : json_null();
}

/* Runs a statement whose rows do not matter; *n: rows affected. */
static int
qg_cmd(PGconn *conn, long long *n, char *err, size_t errlen,
    const char *sql, int np, const char *const *params)
{
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen, sql, np, params)) == NULL)
		return rc;
	if (n != NULL)
		*n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
qg_group_get(PGconn *conn, int vs_id, int64_t id, struct qg_group *g,
    char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[2] = { vs, gid };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, id);
	/* Walks up from the group: cheap whatever the tree's size. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE up(id, parent, depth) AS ("
	    " SELECT id, parent, 0 FROM groups WHERE vs_id = $1"
	    "  AND id = $2::bigint"
	    " UNION ALL"
	    " SELECT g.id, g.parent, up.depth + 1 FROM groups g"
	    "  JOIN up ON g.id = up.parent WHERE g.vs_id = $1)"
	    " SELECT g.id, g.parent, g.kind, g.name,"
	    "  (SELECT string_agg('/' || x.name, '' ORDER BY up.depth DESC)"
	    "   FROM up JOIN groups x ON x.id = up.id)"
	    " FROM groups g WHERE g.vs_id = $1 AND g.id = $2::bigint",
	    2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	memset(g, 0, sizeof(*g));
	g->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (!PQgetisnull(res, 0, 1))
		g->parent = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	strlcpy(g->kind, PQgetvalue(res, 0, 2), sizeof(g->kind));
	strlcpy(g->name, PQgetvalue(res, 0, 3), sizeof(g->name));
	strlcpy(g->path, PQgetvalue(res, 0, 4), sizeof(g->path));
	PQclear(res);
	return DB_OK;
}

/* The same fields as GET /groups lists. */
json_t *
qg_group_json(const struct qg_group *g)
{
	char	 id[24], parent[24];

	snprintf(id, sizeof(id), "%" PRId64, g->id);
	snprintf(parent, sizeof(parent), "%" PRId64, g->parent);
	return json_pack("{s:s,s:o,s:s,s:s,s:s}",
	    "id", id,
	    "parent", g->parent != 0 ? json_string(parent) : json_null(),
	    "name", g->name,
	    "path", g->path,
	    "kind", g->kind);
}

/* 1 if a sibling other than id already has the name. */
static int
qg_sibling_taken(PGconn *conn, int vs_id, int64_t parent, const char *name,
    int64_t id, int *taken, char *err, size_t errlen)
{
	char		 vs[16], par[24], self[24];
	const char	*p[4] = { vs, par, name, self };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(par, sizeof(par), "%" PRId64, parent);
	snprintf(self, sizeof(self), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT 1 FROM groups WHERE vs_id = $1"
	    " AND coalesce(parent, 0) = $2::bigint AND name = $3"
	    " AND id <> $4::bigint", 4, p)) == NULL)
		return rc;
	*taken = PQntuples(res) > 0;
	PQclear(res);
	return DB_OK;
}

int
qg_group_create(PGconn *conn, int vs_id, int64_t parent, const char *name,
    int64_t *id, char *err, size_t errlen)
{
	char		 vs[16], par[24];
	const char	*p[3] = { vs, par, name };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(par, sizeof(par), "%" PRId64, parent);
	/* The unique index decides, even against a concurrent create. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO groups (vs_id, parent, name) VALUES ($1, $2, $3)"
	    " ON CONFLICT DO NOTHING RETURNING id", 3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QG_CONFLICT;
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int
qg_group_rename(PGconn *conn, int vs_id, int64_t id, const char *name,
    char *err, size_t errlen)
{
	struct qg_group	 g;
	char		 vs[16], gid[24];
	const char	*p[3] = { vs, gid, name };
	int		 rc, taken;

	if ((rc = qg_group_get(conn, vs_id, id, &g, err, errlen)) != DB_OK)
		return rc;
	if ((rc = qg_sibling_taken(conn, vs_id, g.parent, name, id, &taken,
	    err, errlen)) != DB_OK)
		return rc;
	if (taken)
		return QG_CONFLICT;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, id);
	return qg_cmd(conn, NULL, err, errlen,
	    "UPDATE groups SET name = $3 WHERE vs_id = $1 AND id = $2::bigint",
	    3, p);
}

int
qg_group_move(PGconn *conn, int vs_id, int64_t id, int64_t parent,
    const char *name, char *err, size_t errlen)
{
	struct qg_group	 g;
	char		 vs[16], gid[24], par[24];
	const char	*p[4] = { vs, gid, par, name };
	PGresult	*res;
	int		 rc, taken, cycle;

	if ((rc = qg_group_get(conn, vs_id, id, &g, err, errlen)) != DB_OK)
		return rc;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, id);
	snprintf(par, sizeof(par), "%" PRId64, parent);
	/* The new parent may not be the group or lie below it. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE up(id, parent) AS ("
	    " SELECT id, parent FROM groups WHERE vs_id = $1"
	    "  AND id = $3::bigint"
	    " UNION ALL"
	    " SELECT g.id, g.parent FROM groups g JOIN up ON g.id = up.parent"
	    "  WHERE g.vs_id = $1)"
	    " SELECT 1 FROM up WHERE id = $2::bigint", 3, p)) == NULL)
		return rc;
	cycle = PQntuples(res) > 0;
	PQclear(res);
	if (cycle)
		return QG_CYCLE;
	if ((rc = qg_sibling_taken(conn, vs_id, parent, name != NULL ? name :
	    g.name, id, &taken, err, errlen)) != DB_OK)
		return rc;
	if (taken)
		return QG_CONFLICT;
	return qg_cmd(conn, NULL, err, errlen,
	    "UPDATE groups SET parent = $3::bigint,"
	    " name = coalesce($4::text, name) WHERE vs_id = $1"
	    " AND id = $2::bigint", 4, p);
}

int
qg_group_delete(PGconn *conn, int vs_id, int64_t id, long long *ngroups,
    long long *ndevices, char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[2] = { vs, gid };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, id);
	/* Locks the row so that nothing is added to it in between. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT (SELECT count(*) FROM groups c WHERE c.vs_id = $1"
	    "   AND c.parent = g.id),"
	    "  (SELECT count(*) FROM devices d WHERE d.vs_id = $1"
	    "   AND d.group_id = g.id)"
	    " FROM groups g WHERE g.vs_id = $1 AND g.id = $2::bigint"
	    " FOR UPDATE OF g", 2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	*ngroups = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*ndevices = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (*ngroups > 0 || *ndevices > 0)
		return QG_NOTEMPTY;
	/* Enrolment tokens aimed at it go with it. */
	if ((rc = qg_cmd(conn, NULL, err, errlen,
	    "DELETE FROM enrollment_tokens WHERE vs_id = $1"
	    " AND group_id = $2::bigint", 2, p)) != DB_OK)
		return rc;
	return qg_cmd(conn, NULL, err, errlen,
	    "DELETE FROM groups WHERE vs_id = $1 AND id = $2::bigint", 2, p);
}

int
qg_device_group(PGconn *conn, int vs_id, const char *device, int64_t *group,
    char *name, size_t namelen, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, device };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT group_id, name FROM devices WHERE vs_id = $1"
	    " AND id = $2::uuid FOR UPDATE", 2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else {
		*group = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		strlcpy(name, PQgetvalue(res, 0, 1), namelen);
	}
	PQclear(res);
	return rc;
}

int
qg_device_move(PGconn *conn, int vs_id, const char *device, int64_t group,
    char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[3] = { vs, device, gid };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	return qg_cmd(conn, NULL, err, errlen,
	    "UPDATE devices SET group_id = $3::bigint WHERE vs_id = $1"
	    " AND id = $2::uuid", 3, p);
}

int
qg_event_add(PGconn *conn, int vs_id, const char *device,
    const char *severity, const char *type, const char *text, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[5] = { vs, device, severity, type, text };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qg_cmd(conn, NULL, err, errlen,
	    "INSERT INTO events (vs_id, device_id, severity, type, time, text)"
	    " VALUES ($1, $2::uuid, $3, $4, now(), $5)", 5, p);
}

int
qg_events_list(PGconn *conn, const struct qg_evq *q, json_t **events,
    char **next, char *err, size_t errlen)
{
	char		 vs[16], lim[16];
	const char	*p[9];
	PGresult	*res;
	json_t		*a;
	int		 rc, i, n;

	snprintf(vs, sizeof(vs), "%d", q->vs_id);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	p[0] = vs;
	p[1] = q->scopes;
	p[2] = q->device;
	p[3] = q->severity;
	p[4] = q->type;
	p[5] = q->since;
	p[6] = q->after_us;
	p[7] = q->after_id;
	p[8] = lim;
	/* One more row than asked tells whether there is a next page. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " SCOPE_TREE("$2")
	    " SELECT e.id, e.device_id, d.name, e.severity, e.type,"
	    "  " TS("e.time") ", e.text,"
	    "  ((extract(epoch FROM e.time) * 1000000)::bigint)::text"
	    " FROM events e LEFT JOIN devices d ON d.id = e.device_id"
	    "  AND d.vs_id = $1"
	    " WHERE e.vs_id = $1"
	    "  AND ($2::bigint[] IS NULL"
	    "   OR d.group_id IN (SELECT id FROM scope))"
	    "  AND ($3::uuid IS NULL OR e.device_id = $3::uuid)"
	    "  AND ($4::text IS NULL OR array_position(" SEVERITIES ","
	    "   e.severity) >= array_position(" SEVERITIES ", $4::text))"
	    "  AND ($5::text IS NULL OR e.type = $5::text)"
	    "  AND ($6::timestamptz IS NULL OR e.time >= $6::timestamptz)"
	    "  AND ($7::bigint IS NULL OR (e.time, e.id) <"
	    "   ('epoch'::timestamptz + $7::bigint * interval '1 microsecond',"
	    "   $8::bigint))"
	    " ORDER BY e.time DESC, e.id DESC LIMIT $9::integer", 9, p)) ==
	    NULL)
		return rc;
	a = json_array();
	n = PQntuples(res);
	*next = NULL;
	for (i = 0; i < n && i < q->limit; i++)
		json_array_append_new(a, json_pack("{s:s,s:o,s:o,s:s,s:s,s:s,"
		    "s:s}",
		    "id", PQgetvalue(res, i, 0),
		    "device", qg_jstr(res, i, 1),
		    "device_name", qg_jstr(res, i, 2),
		    "severity", PQgetvalue(res, i, 3),
		    "type", PQgetvalue(res, i, 4),
		    "time", PQgetvalue(res, i, 5),
		    "text", PQgetvalue(res, i, 6)));
	if (n > q->limit && q->limit > 0) {
		i = q->limit - 1;
		if (asprintf(next, "%s.%s", PQgetvalue(res, i, 7),
		    PQgetvalue(res, i, 0)) == -1)
			*next = NULL;
	}
	PQclear(res);
	*events = a;
	return DB_OK;
}

int
qg_audit_list(PGconn *conn, const struct qg_auq *q, json_t **audit,
    char **next, char *err, size_t errlen)
{
	char		 vs[16], lim[16];
	const char	*p[6];
	PGresult	*res;
	json_t		*a, *detail;
	const char	*v;
	int		 rc, i, n;

	snprintf(vs, sizeof(vs), "%d", q->vs_id);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	p[0] = vs;
	p[1] = q->since;
	p[2] = q->actor;
	p[3] = q->action;
	p[4] = q->after_id;
	p[5] = lim;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT id, " TS("time") ", actor, addr, action, object,"
	    "  detail::text FROM audit WHERE vs_id = $1"
	    "  AND ($2::timestamptz IS NULL OR time >= $2::timestamptz)"
	    "  AND ($3::text IS NULL OR actor = $3::text)"
	    "  AND ($4::text IS NULL OR action = $4::text)"
	    "  AND ($5::bigint IS NULL OR id < $5::bigint)"
	    " ORDER BY id DESC LIMIT $6::integer", 6, p)) == NULL)
		return rc;
	a = json_array();
	n = PQntuples(res);
	*next = NULL;
	for (i = 0; i < n && i < q->limit; i++) {
		v = qg_val(res, i, 6);
		if (v == NULL || (detail = json_loads(v, JSON_DECODE_ANY,
		    NULL)) == NULL)
			detail = json_null();
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o,s:s,s:o,"
		    "s:o}",
		    "id", PQgetvalue(res, i, 0),
		    "time", PQgetvalue(res, i, 1),
		    "actor", PQgetvalue(res, i, 2),
		    "addr", qg_jstr(res, i, 3),
		    "action", PQgetvalue(res, i, 4),
		    "object", qg_jstr(res, i, 5),
		    "detail", detail));
	}
	if (n > q->limit && q->limit > 0 &&
	    (*next = strdup(PQgetvalue(res, q->limit - 1, 0))) == NULL)
		rc = DB_ERR;
	PQclear(res);
	if (rc != DB_OK) {
		json_decref(a);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	*audit = a;
	return DB_OK;
}

int
qg_admin_create(PGconn *conn, int vs_id, const char *name,
    const char *principal, const char *pw_hash, int64_t *id, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[4] = { vs, name, principal, pw_hash };
	PGresult	*res;
	int		 rc, taken;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	/* Which of the two unique keys is taken, for the message. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT EXISTS (SELECT 1 FROM admins WHERE vs_id = $1"
	    "  AND name = $2),"
	    " $3::text IS NOT NULL AND EXISTS (SELECT 1 FROM admins"
	    "  WHERE principal = $3::text)", 3, p)) == NULL)
		return rc;
	taken = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? QG_CONFLICT :
	    strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? QG_PRINCIPAL : 0;
	PQclear(res);
	if (taken)
		return taken;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO admins (vs_id, name, principal, pw_hash)"
	    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
	    4, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QG_CONFLICT;
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int
qg_admin_role_add(PGconn *conn, int64_t admin_id, const char *role,
    int64_t scope, char *err, size_t errlen)
{
	char		 aid[24], sc[24];
	const char	*p[3] = { aid, role, scope != 0 ? sc : NULL };

	snprintf(aid, sizeof(aid), "%" PRId64, admin_id);
	snprintf(sc, sizeof(sc), "%" PRId64, scope);
	return qg_cmd(conn, NULL, err, errlen,
	    "INSERT INTO admin_roles (admin_id, role, scope_group)"
	    " VALUES ($1::bigint, $2, $3::bigint) ON CONFLICT DO NOTHING",
	    3, p);
}

int
qg_admins_list(PGconn *conn, int vs_id, json_t **admins, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };
	PGresult	*res;
	json_t		*a, *roles;
	int		 rc, i;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	/* Never the hash: only whether there is one. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " GROUP_PATHS
	    " SELECT a.id, a.name, a.principal, a.pw_hash IS NOT NULL,"
	    "  a.failed_logins, coalesce(a.locked_until > now(), false),"
	    "  " TS("a.locked_until") ", " TS("a.created") ","
	    "  (SELECT coalesce(json_agg(json_build_object('role', r.role,"
	    "    'scope', r.scope_group::text, 'scope_path', gp.path)"
	    "    ORDER BY r.role, r.scope_group NULLS FIRST), '[]')::text"
	    "   FROM admin_roles r LEFT JOIN gp ON gp.id = r.scope_group"
	    "   WHERE r.admin_id = a.id)"
	    " FROM admins a WHERE a.vs_id = $1 ORDER BY a.name, a.id",
	    1, p)) == NULL)
		return rc;
	a = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		if ((roles = json_loads(PQgetvalue(res, i, 8), 0, NULL)) ==
		    NULL)
			roles = json_array();
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:b,s:i,s:b,"
		    "s:o,s:s,s:o}",
		    "id", PQgetvalue(res, i, 0),
		    "name", PQgetvalue(res, i, 1),
		    "principal", qg_jstr(res, i, 2),
		    "password", strcmp(PQgetvalue(res, i, 3), "t") == 0,
		    "failed_logins", atoi(PQgetvalue(res, i, 4)),
		    "locked", strcmp(PQgetvalue(res, i, 5), "t") == 0,
		    "locked_until", qg_jstr(res, i, 6),
		    "created", PQgetvalue(res, i, 7),
		    "roles", roles));
	}
	PQclear(res);
	*admins = a;
	return DB_OK;
}

int
qg_admin_name(PGconn *conn, int vs_id, int64_t id, char *name,
    size_t namelen, char *err, size_t errlen)
{
	char		 vs[16], aid[24];
	const char	*p[2] = { vs, aid };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(aid, sizeof(aid), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT name FROM admins WHERE vs_id = $1 AND id = $2::bigint"
	    " FOR UPDATE", 2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		strlcpy(name, PQgetvalue(res, 0, 0), namelen);
	PQclear(res);
	return rc;
}

int
qg_admin_delete(PGconn *conn, int vs_id, int64_t id, char *err,
    size_t errlen)
{
	char		 vs[16], aid[24];
	const char	*p[2] = { vs, aid };
	long long	 n = 0;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(aid, sizeof(aid), "%" PRId64, id);
	/* Roles and sessions go by ON DELETE CASCADE. */
	if ((rc = qg_cmd(conn, &n, err, errlen,
	    "DELETE FROM admins WHERE vs_id = $1 AND id = $2::bigint", 2,
	    p)) != DB_OK)
		return rc;
	return n == 0 ? QA_NOTFOUND : DB_OK;
}

int
qg_admin_unlock(PGconn *conn, int vs_id, int64_t id, int *failed, char *err,
    size_t errlen)
{
	char		 vs[16], aid[24];
	const char	*p[2] = { vs, aid };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(aid, sizeof(aid), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE admins a SET failed_logins = 0, locked_until = NULL"
	    " FROM (SELECT id, failed_logins FROM admins WHERE vs_id = $1"
	    "  AND id = $2::bigint FOR UPDATE) old"
	    " WHERE a.id = old.id RETURNING old.failed_logins", 2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		*failed = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}
