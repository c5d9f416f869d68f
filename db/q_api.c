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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "srv/api_json.h"
#include "util.h"

#include "db.h"
#include "sql.h"
#include "q_api.h"

static const char *
qa_val(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void
qa_copy(char *dst, size_t len, PGresult *res, int row, int col)
{
	const char	*v = qa_val(res, row, col);

	strlcpy(dst, v != NULL ? v : "", len);
}

/* A JSON string or null for a nullable column. */
static json_t *
qa_jstr(PGresult *res, int row, int col)
{
	const char	*v = qa_val(res, row, col);

	return v != NULL ? json_string(v) : json_null();
}

/* A JSON value from a column holding JSON text, or dflt when NULL/bad. */
static json_t *
qa_jparse(PGresult *res, int row, int col, json_t *dflt)
{
	const char	*v = qa_val(res, row, col);
	json_t		*j;

	if (v == NULL || (j = json_loads(v, JSON_DECODE_ANY, NULL)) == NULL)
		return dflt;
	json_decref(dflt);
	return j;
}

int
qa_vs_by_name(PGconn *conn, const char *name, int *vs_id, char *err,
    size_t errlen)
{
	const char	*p[1] = { name };
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT id FROM vservers WHERE name = $1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		*vs_id = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

#define ADMIN_COLS							\
	"a.id, a.vs_id, a.name, v.name, a.principal, a.pw_hash,"	\
	" coalesce(a.locked_until > now(), false), " TS("a.locked_until")

static void
qa_admin_fill(PGresult *res, struct qa_admin *a)
{
	memset(a, 0, sizeof(*a));
	a->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	a->vs_id = atoi(PQgetvalue(res, 0, 1));
	qa_copy(a->name, sizeof(a->name), res, 0, 2);
	qa_copy(a->vs_name, sizeof(a->vs_name), res, 0, 3);
	qa_copy(a->principal, sizeof(a->principal), res, 0, 4);
	qa_copy(a->pw_hash, sizeof(a->pw_hash), res, 0, 5);
	a->locked = PQgetvalue(res, 0, 6)[0] == 't';
	qa_copy(a->locked_until, sizeof(a->locked_until), res, 0, 7);
}

int
qa_admin_by_name(PGconn *conn, int vs_id, const char *name,
    struct qa_admin *a, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, name };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT " ADMIN_COLS " FROM admins a JOIN vservers v"
	    " ON v.id = a.vs_id WHERE a.vs_id = $1 AND a.name = $2",
	    2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		qa_admin_fill(res, a);
	PQclear(res);
	return rc;
}

int
qa_session_get(PGconn *conn, const char *token_hash, struct qa_admin *a,
    int *expired, char *err, size_t errlen)
{
	const char	*p[1] = { token_hash };
	PGresult	*res;
	int		 rc;

	/* The session's vs_id is the admin's: one row names both. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT " ADMIN_COLS ", s.expires <= now(), " TS("s.expires")
	    " FROM sessions s JOIN admins a ON a.id = s.admin_id"
	    " AND a.vs_id = s.vs_id JOIN vservers v ON v.id = s.vs_id"
	    " WHERE s.token_hash = $1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else {
		qa_admin_fill(res, a);
		*expired = PQgetvalue(res, 0, 8)[0] == 't';
		qa_copy(a->expires, sizeof(a->expires), res, 0, 9);
	}
	PQclear(res);
	return rc;
}

int
qa_session_create(PGconn *conn, const char *token_hash,
    const struct qa_admin *a, int ttl_s, const char *addr,
    char expires[QA_TS_LEN], char *err, size_t errlen)
{
	char		 id[24], vs[16], ttl[16];
	const char	*p[5] = { token_hash, id, vs, ttl, addr };
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, a->id);
	snprintf(vs, sizeof(vs), "%d", a->vs_id);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	/* Expired sessions go as new ones come: no sweeper needed. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM sessions WHERE vs_id = $1 AND expires < now()"
	    " - interval '1 day'", 1, p + 2)) == NULL)
		return rc;
	PQclear(res);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO sessions (token_hash, admin_id, vs_id, expires, addr)"
	    " VALUES ($1, $2, $3, now() + make_interval(secs => $4::int), $5)"
	    " RETURNING " TS("expires"), 5, p)) == NULL)
		return rc;
	qa_copy(expires, QA_TS_LEN, res, 0, 0);
	PQclear(res);
	return DB_OK;
}

int
qa_session_delete(PGconn *conn, const char *token_hash, char *err,
    size_t errlen)
{
	const char	*p[1] = { token_hash };
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM sessions WHERE token_hash = $1", 1, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

int
qa_login_failed(PGconn *conn, int64_t admin_id, int max, int lock_s,
    int *count, char locked_until[QA_TS_LEN], char *err, size_t errlen)
{
	char		 id[24], m[16], l[16];
	const char	*p[3] = { id, m, l };
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	snprintf(m, sizeof(m), "%d", max);
	snprintf(l, sizeof(l), "%d", lock_s);
	/*
	 * One statement, so that concurrent failures all count.  A lock that
	 * has run out starts a new series.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE admins SET"
	    " failed_logins = CASE WHEN locked_until IS NOT NULL"
	    "  AND locked_until <= now() THEN 1 ELSE failed_logins + 1 END,"
	    " locked_until = CASE"
	    "  WHEN locked_until IS NOT NULL AND locked_until <= now() THEN NULL"
	    "  WHEN failed_logins + 1 >= $2::int"
	    "  THEN now() + make_interval(secs => $3::int)"
	    "  ELSE locked_until END"
	    " WHERE id = $1 RETURNING failed_logins, " TS("locked_until"),
	    3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else {
		*count = atoi(PQgetvalue(res, 0, 0));
		qa_copy(locked_until, QA_TS_LEN, res, 0, 1);
	}
	PQclear(res);
	return rc;
}

int
qa_login_ok(PGconn *conn, int64_t admin_id, char *err, size_t errlen)
{
	char		 id[24];
	const char	*p[1] = { id };
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE admins SET failed_logins = 0, locked_until = NULL"
	    " WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
	    1, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

int
qa_roles(PGconn *conn, int64_t admin_id, struct qa_role *roles, size_t max,
    size_t *n, char *err, size_t errlen)
{
	char		 id[24];
	const char	*p[1] = { id }, *v;
	PGresult	*res;
	int		 rc, i;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	*n = 0;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT role, scope_group FROM admin_roles WHERE admin_id = $1"
	    " ORDER BY role, scope_group NULLS FIRST", 1, p)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && *n < max; i++) {
		qa_copy(roles[*n].role, sizeof(roles[*n].role), res, i, 0);
		v = qa_val(res, i, 1);
		roles[*n].scope = v != NULL ? strtoll(v, NULL, 10) : 0;
		(*n)++;
	}
	PQclear(res);
	return DB_OK;
}

int
qa_audit(PGconn *conn, int vs_id, const char *actor, const char *addr,
    const char *action, const char *object, const char *detail, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[6] = { vs, actor, addr, action, object, detail };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO audit (vs_id, actor, addr, action, object, detail)"
	    " VALUES ($1, $2, $3, $4, $5, $6::jsonb)", 6, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

int
qa_group_resolve(PGconn *conn, int vs_id, const char *ref, int64_t *id,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, ref };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	switch (api_ref_kind(ref)) {
	case API_REF_ID:
		res = db_exec(conn, &rc, err, errlen,
		    "SELECT id FROM groups WHERE vs_id = $1 AND id = $2::bigint",
		    2, p);
		break;
	case API_REF_PATH:
		/* Walk the path from a root, one name per level. */
		res = db_exec(conn, &rc, err, errlen,
		    "WITH RECURSIVE"
		    " p(parts) AS (SELECT string_to_array(rtrim(substr($2, 2),"
		    "  '/'), '/')),"
		    " w(id, depth) AS ("
		    "  SELECT g.id, 1 FROM groups g, p WHERE g.vs_id = $1"
		    "   AND g.parent IS NULL AND g.name = p.parts[1]"
		    "  UNION ALL"
		    "  SELECT g.id, w.depth + 1 FROM w JOIN groups g"
		    "   ON g.parent = w.id, p WHERE g.vs_id = $1"
		    "   AND g.name = p.parts[w.depth + 1])"
		    " SELECT w.id FROM w, p WHERE w.depth = cardinality(p.parts)",
		    2, p);
		break;
	default:
		return QA_NOTFOUND;
	}
	if (res == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int
qa_group_unassigned(PGconn *conn, int vs_id, int64_t *id, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT id FROM groups WHERE vs_id = $1 AND kind = 'unassigned'"
	    " ORDER BY id LIMIT 1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int
qa_group_in_scope(PGconn *conn, int vs_id, int64_t id, const char *scopes,
    char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[3] = { vs, gid, scopes };
	PGresult	*res;
	int		 rc;

	if (scopes == NULL)
		return DB_OK;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " SCOPE_TREE("$3")
	    " SELECT 1 FROM scope WHERE id = $2::bigint", 3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	PQclear(res);
	return rc;
}

int
qa_groups_list(PGconn *conn, int vs_id, const char *scopes, json_t **out,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, scopes };
	PGresult	*res;
	json_t		*a;
	int		 rc, i;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " GROUP_PATHS ", " SCOPE_TREE("$2")
	    " SELECT gp.id, gp.parent, gp.name, gp.path, g.kind FROM gp"
	    " JOIN groups g ON g.id = gp.id"
	    " WHERE $2::bigint[] IS NULL OR gp.id IN (SELECT id FROM scope)"
	    " ORDER BY gp.path", 2, p)) == NULL)
		return rc;
	a = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a, json_pack("{s:s,s:o,s:s,s:s,s:s}",
		    "id", PQgetvalue(res, i, 0),
		    "parent", qa_jstr(res, i, 1),
		    "name", PQgetvalue(res, i, 2),
		    "path", PQgetvalue(res, i, 3),
		    "kind", PQgetvalue(res, i, 4)));
	PQclear(res);
	*out = a;
	return DB_OK;
}

#define DEVICE_COLS							\
	"d.id, d.name, d.fqdn, array_to_json(d.ip)::text,"		\
	" array_to_json(d.mac)::text, d.os, d.group_id, gp.path, d.status," \
	" " TS("d.last_seen") ", d.source"

/* Why the status is what it is (db/migrations/008_rules.sql), by name:
 * the column comes last in the statements that select it. */
static void
qa_device_reasons(json_t *d, PGresult *res, int i)
{
	json_t	*r;
	int	 c;

	if (d == NULL || (c = PQfnumber(res, "status_reasons")) < 0)
		return;
	r = qa_jparse(res, i, c, json_array());
	if (!json_is_array(r)) {
		json_decref(r);
		r = json_array();
	}
	json_object_set_new(d, "status_reasons", r);
}

static json_t *
qa_device_json(PGresult *res, int i, const struct qa_devq *q)
{
	json_t	*ip, *mac, *d;

	ip = qa_jparse(res, i, 3, json_array());
	mac = qa_jparse(res, i, 4, json_array());
	d = json_pack("{s:s,s:s,s:o,s:O,s:O,s:O,s:O,s:o,s:s,s:o,s:s,"
	    "s:o,s:s,s:s,s:s}",
	    "id", PQgetvalue(res, i, 0),
	    "name", PQgetvalue(res, i, 1),
	    "fqdn", qa_jstr(res, i, 2),
	    "ip", json_array_size(ip) > 0 ? json_array_get(ip, 0) : json_null(),
	    "addresses", ip,
	    "mac", json_array_size(mac) > 0 ? json_array_get(mac, 0) :
	    json_null(),
	    "macs", mac,
	    "os", qa_jstr(res, i, 5),
	    "group", PQgetvalue(res, i, 6),
	    "group_path", qa_jstr(res, i, 7),
	    "status", PQgetvalue(res, i, 8),
	    "last_seen", qa_jstr(res, i, 9),
	    "source", PQgetvalue(res, i, 10),
	    "server", q->server,
	    "vs", q->vs_name);
	json_decref(ip);
	json_decref(mac);
	qa_device_reasons(d, res, i);
	return d;
}

/*
 * GET /devices?hierarchy=1 in main: this server's devices and those
 * mirrored from every server below (hier_devices), one keyset over both.
 * A mirror's sort key is a uuid made of its global id, so the cursor
 * stays (name, uuid).  A group filter or a scope takes the mirrors of the
 * children placed in that subtree.
 */
static int
qa_devices_list_hier(PGconn *conn, const struct qa_devq *q, json_t **devices,
    char **next, char *err, size_t errlen)
{
	char		 vs[16], grp[24], lim[16];
	const char	*p[9];
	PGresult	*res;
	json_t		*a, *d;
	int		 rc, i, n;

	snprintf(vs, sizeof(vs), "%d", q->vs_id);
	snprintf(grp, sizeof(grp), "%" PRId64, q->group);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	p[0] = vs;
	p[1] = q->group > 0 ? grp : NULL;
	p[2] = q->recursive ? "t" : "f";
	p[3] = q->scopes;
	p[4] = q->status;
	p[5] = q->like;
	p[6] = q->after_name;
	p[7] = q->after_id;
	p[8] = lim;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " GROUP_PATHS ", " SCOPE_TREE("$4") ","
	    " sel(id) AS ("
	    "  SELECT id FROM groups WHERE vs_id = $1 AND id = $2::bigint"
	    "  UNION ALL"
	    "  SELECT g.id FROM groups g JOIN sel ON g.parent = sel.id"
	    "   WHERE $3::boolean AND g.vs_id = $1),"
	    " loc AS (SELECT d.id AS k, d.id::text AS id, d.name, d.fqdn,"
	    "  d.ip, d.mac, d.os, d.group_id, d.status, d.last_seen, d.source,"
	    "  d.status_reasons, NULL::text AS server, NULL::text AS vs,"
	    "  NULL::text AS hpath"
	    "  FROM devices d"
	    "  WHERE d.vs_id = $1"
	    "  AND ($2::bigint IS NULL OR d.group_id IN (SELECT id FROM sel))"
	    "  AND ($4::bigint[] IS NULL OR d.group_id IN (SELECT id FROM scope))"
	    "  AND ($5::text IS NULL OR d.status = $5)"
	    "  AND ($6::text IS NULL OR d.name ILIKE $6 OR d.fqdn ILIKE $6"
	    "   OR d.os ILIKE $6 OR d.id::text ILIKE $6"
	    "   OR EXISTS (SELECT 1 FROM unnest(d.ip || d.mac) x"
	    "   WHERE x ILIKE $6))"
	    "  AND ($7::text IS NULL OR (d.name >= $7"
	    "   AND (d.name > $7 OR d.id > $8::uuid)))"
	    "  ORDER BY d.name, d.id LIMIT $9::int),"
	    " mir AS (SELECT md5(h.oid)::uuid AS k, h.oid AS id, h.name,"
	    "  h.fqdn, h.ip, h.mac, h.os, NULL::bigint AS group_id, h.status,"
	    "  h.last_seen, h.source, NULL::jsonb AS status_reasons,"
	    "  coalesce(s.name, h.origin::text) AS server, h.vs,"
	    "  h.group_path AS hpath"
	    "  FROM hier_devices h JOIN hier_links l ON l.id = h.link_id"
	    "  LEFT JOIN hier_servers s ON s.uuid = h.origin"
	    "  WHERE ($2::bigint IS NULL OR l.group_id IN (SELECT id FROM sel))"
	    "  AND ($4::bigint[] IS NULL OR l.group_id IN (SELECT id FROM scope))"
	    "  AND ($5::text IS NULL OR h.status = $5)"
	    "  AND ($6::text IS NULL OR h.name ILIKE $6 OR h.fqdn ILIKE $6"
	    "   OR h.os ILIKE $6 OR h.oid ILIKE $6"
	    "   OR EXISTS (SELECT 1 FROM unnest(h.ip || h.mac) x"
	    "   WHERE x ILIKE $6))"
	    "  AND ($7::text IS NULL OR (h.name >= $7"
	    "   AND (h.name > $7 OR md5(h.oid)::uuid > $8::uuid)))"
	    "  ORDER BY h.name, 1 LIMIT $9::int),"
	    " page AS (SELECT * FROM loc UNION ALL SELECT * FROM mir"
	    "  ORDER BY name, k LIMIT $9::int)"
	    " SELECT d.id, d.name, d.fqdn, array_to_json(d.ip)::text,"
	    " array_to_json(d.mac)::text, d.os, d.group_id,"
	    " coalesce(gp.path, d.hpath), d.status, " TS("d.last_seen") ","
	    " d.source, d.status_reasons::text AS status_reasons, d.server,"
	    " d.vs, d.k"
	    " FROM page d LEFT JOIN gp ON gp.id = d.group_id"
	    " ORDER BY d.name, d.k", 9, p)) == NULL)
		return rc;
	a = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < q->limit; i++) {
		if ((d = qa_device_json(res, i, q)) == NULL)
			continue;
		/* A mirror: its owner, its virtual server, no group here. */
		if (!PQgetisnull(res, i, 12)) {
			json_object_set_new(d, "server",
			    json_string(PQgetvalue(res, i, 12)));
			json_object_set_new(d, "vs",
			    json_string(PQgetvalue(res, i, 13)));
			json_object_set_new(d, "group", json_null());
		}
		json_array_append_new(a, d);
	}
	if (n > q->limit && q->limit > 0)
		*next = api_cursor_encode(PQgetvalue(res, q->limit - 1, 1),
		    PQgetvalue(res, q->limit - 1, 14));
	PQclear(res);
	*devices = a;
	return DB_OK;
}

int
qa_devices_list(PGconn *conn, const struct qa_devq *q, json_t **devices,
    char **next, char *err, size_t errlen)
{
	char		 vs[16], grp[24], lim[16];
	const char	*p[9];
	PGresult	*res;
	json_t		*a;
	int		 rc, i, n;

	*devices = NULL;
	*next = NULL;
	if (q->hierarchy)
		return qa_devices_list_hier(conn, q, devices, next, err,
		    errlen);
	snprintf(vs, sizeof(vs), "%d", q->vs_id);
	snprintf(grp, sizeof(grp), "%" PRId64, q->group);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	p[0] = vs;
	p[1] = q->group > 0 ? grp : NULL;
	p[2] = q->recursive ? "t" : "f";
	p[3] = q->scopes;
	p[4] = q->status;
	p[5] = q->like;
	p[6] = q->after_name;
	p[7] = q->after_id;
	p[8] = lim;
	/* Keyset pagination on (name, id), served by devices_vs_name. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " GROUP_PATHS ", " SCOPE_TREE("$4") ","
	    " sel(id) AS ("
	    "  SELECT id FROM groups WHERE vs_id = $1 AND id = $2::bigint"
	    "  UNION ALL"
	    "  SELECT g.id FROM groups g JOIN sel ON g.parent = sel.id"
	    "   WHERE $3::boolean AND g.vs_id = $1),"
	    /*
	     * The page first, then the paths of its groups: joined the other
	     * way, the path CTE is rescanned for every device.  The keyset
	     * test is spelled out rather than (name, id) > (…): row-level
	     * security lets only leakproof operators reach an index, and
	     * record comparison is not one, text and uuid comparisons are.
	     */
	    " page AS (SELECT d.id, d.name, d.fqdn, d.ip, d.mac, d.os,"
	    "  d.group_id, d.status, d.last_seen, d.source, d.status_reasons"
	    "  FROM devices d"
	    "  WHERE d.vs_id = $1"
	    "  AND ($2::bigint IS NULL OR d.group_id IN (SELECT id FROM sel))"
	    "  AND ($4::bigint[] IS NULL OR d.group_id IN (SELECT id FROM scope))"
	    "  AND ($5::text IS NULL OR d.status = $5)"
	    "  AND ($6::text IS NULL OR d.name ILIKE $6 OR d.fqdn ILIKE $6"
	    "   OR d.os ILIKE $6 OR d.id::text ILIKE $6"
	    "   OR EXISTS (SELECT 1 FROM unnest(d.ip || d.mac) x"
	    "   WHERE x ILIKE $6))"
	    "  AND ($7::text IS NULL OR (d.name >= $7"
	    "   AND (d.name > $7 OR d.id > $8::uuid)))"
	    "  ORDER BY d.name, d.id LIMIT $9::int)"
	    " SELECT " DEVICE_COLS ", d.status_reasons::text AS status_reasons"
	    " FROM page d LEFT JOIN gp ON gp.id = d.group_id"
	    " ORDER BY d.name, d.id", 9, p)) == NULL)
		return rc;
	a = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < q->limit; i++)
		json_array_append_new(a, qa_device_json(res, i, q));
	if (n > q->limit && q->limit > 0)
		*next = api_cursor_encode(PQgetvalue(res, q->limit - 1, 1),
		    PQgetvalue(res, q->limit - 1, 0));
	PQclear(res);
	*devices = a;
	return DB_OK;
}

int
qa_device_get(PGconn *conn, const struct qa_devq *q, const char *id,
    json_t **out, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[3] = { vs, q->scopes, id };
	PGresult	*res;
	json_t		*d, *data, *inv;
	int		 rc;

	*out = NULL;
	snprintf(vs, sizeof(vs), "%d", q->vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " GROUP_PATHS ", " SCOPE_TREE("$2")
	    " SELECT " DEVICE_COLS ", " TS("d.first_seen") ","
	    " " TS("d.enrolled") ", " TS("i.updated") ", i.data::text,"
	    " d.status_reasons::text AS status_reasons,"
	    " d.policy_hash AS policy_applied"
	    " FROM devices d LEFT JOIN gp ON gp.id = d.group_id"
	    " LEFT JOIN inventory i ON i.device_id = d.id"
	    " WHERE d.vs_id = $1 AND d.id = $3::uuid"
	    " AND ($2::bigint[] IS NULL OR d.group_id IN (SELECT id FROM scope))",
	    3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	d = qa_device_json(res, 0, q);
	json_object_set_new(d, "first_seen", qa_jstr(res, 0, 11));
	json_object_set_new(d, "enrolled", qa_jstr(res, 0, 12));
	json_object_set_new(d, "inventory_updated", qa_jstr(res, 0, 13));
	/* The hash of the effective policy the agent acknowledged (006). */
	if (PQfnumber(res, "policy_applied") >= 0)
		json_object_set_new(d, "policy_applied", qa_jstr(res, 0,
		    PQfnumber(res, "policy_applied")));
	data = qa_jparse(res, 0, 14, json_object());
	if (!json_is_object(data)) {
		json_decref(data);
		data = json_object();
	}
	/* The documented shape, whatever the agent left out. */
	inv = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}",
	    "os", json_object_get(data, "os"),
	    "hardware", json_object_get(data, "hardware"),
	    "interfaces", json_object_get(data, "interfaces"),
	    "software", json_object_get(data, "software"),
	    "users", json_object_get(data, "users"));
	if (inv != NULL) {
		if (json_is_null(json_object_get(inv, "os")))
			json_object_set_new(inv, "os", json_object());
		if (json_is_null(json_object_get(inv, "hardware")))
			json_object_set_new(inv, "hardware", json_object());
		if (json_is_null(json_object_get(inv, "interfaces")))
			json_object_set_new(inv, "interfaces", json_array());
		if (json_is_null(json_object_get(inv, "software")))
			json_object_set_new(inv, "software", json_array());
		if (json_is_null(json_object_get(inv, "users")))
			json_object_set_new(inv, "users", json_array());
		/* The rest of what the agent sent, for completeness. */
		json_object_set(inv, "hostname", json_object_get(data,
		    "hostname") ? json_object_get(data, "hostname") :
		    json_null());
		json_object_set(inv, "agent_version", json_object_get(data,
		    "agent_version") ? json_object_get(data,
		    "agent_version") : json_null());
	}
	json_decref(data);
	json_object_set_new(d, "inventory", inv != NULL ? inv : json_object());
	PQclear(res);
	*out = d;
	return DB_OK;
}

int
qa_enroll_token_create(PGconn *conn, int vs_id, const char *token_hash,
    int64_t group, int uses, int ttl_s, const char *created_by,
    char expires[QA_TS_LEN], char *err, size_t errlen)
{
	char		 vs[16], grp[24], u[16], ttl[16];
	const char	*p[6] = { vs, token_hash, grp, u, ttl, created_by };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(grp, sizeof(grp), "%" PRId64, group);
	snprintf(u, sizeof(u), "%d", uses);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO enrollment_tokens (vs_id, token_hash, group_id,"
	    " uses_left, expires, created_by) SELECT $1, $2, id, $4::int,"
	    " now() + make_interval(secs => $5::int), $6 FROM groups"
	    " WHERE vs_id = $1 AND id = $3::bigint"
	    " RETURNING " TS("expires"), 6, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		qa_copy(expires, QA_TS_LEN, res, 0, 0);
	PQclear(res);
	return rc;
}
