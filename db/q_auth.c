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

#include "util.h"

#include "db/db.h"
#include "db/q_auth.h"
#include "db/sql.h"

static void
qk_copy(char *dst, size_t len, PGresult *res, int row, int col)
{
	strlcpy(dst, PQgetisnull(res, row, col) ? "" :
	    PQgetvalue(res, row, col), len);
}

static char *
qk_dup(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

/* A statement whose result is not needed. */
static int
qk_run(PGconn *conn, char *err, size_t errlen, const char *sql, int n,
    const char *const *p, int *affected)
{
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen, sql, n, p)) == NULL)
		return rc;
	if (affected != NULL)
		*affected = atoi(PQcmdTuples(res));
	PQclear(res);
	return DB_OK;
}

int
qk_keytab_get(PGconn *conn, char **sealed, json_t **principals,
    char updated[QA_TS_LEN], char *err, size_t errlen)
{
	PGresult	*res;
	json_t		*a;
	int		 rc;

	*sealed = NULL;
	if (principals != NULL)
		*principals = NULL;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT sealed, array_to_json(principals)::text, "
	    TS("updated") " FROM kerberos_keytab WHERE id = 1", 0,
	    NULL)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	if ((*sealed = qk_dup(res, 0, 0)) == NULL)
		rc = DB_ERR;
	if (principals != NULL) {
		a = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
		*principals = a != NULL ? a : json_array();
	}
	if (updated != NULL)
		qk_copy(updated, QA_TS_LEN, res, 0, 2);
	PQclear(res);
	if (rc != DB_OK)
		snprintf(err, errlen, "out of memory");
	return rc;
}

int
qk_keytab_put(PGconn *conn, const char *sealed, char **principals,
    size_t n, const char *by, char *err, size_t errlen)
{
	json_t		*a = json_array();
	const char	*p[3];
	char		*js;
	size_t		 i;
	int		 rc;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(principals[i]));
	if ((js = json_dumps(a, JSON_COMPACT)) == NULL) {
		json_decref(a);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	json_decref(a);
	p[0] = sealed;
	p[1] = js;
	p[2] = by;
	rc = qk_run(conn, err, errlen,
	    "INSERT INTO kerberos_keytab (id, sealed, principals, updated_by)"
	    " SELECT 1, $1, coalesce(array_agg(x), '{}') , $3"
	    " FROM json_array_elements_text($2::json) x"
	    " ON CONFLICT (id) DO UPDATE SET sealed = EXCLUDED.sealed,"
	    " principals = EXCLUDED.principals, updated = now(),"
	    " updated_by = EXCLUDED.updated_by", 3, p, NULL);
	free(js);
	return rc;
}

int
qk_admin_by_principal(PGconn *conn, const char *principal,
    struct qa_admin *a, char *err, size_t errlen)
{
	const char	*p[1] = { principal };
	PGresult	*res;
	int		 rc;

	/* Exact, realm included: alice@A is never alice@B. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT a.id, a.vs_id, a.name, v.name, a.principal,"
	    " coalesce(a.pw_hash, ''), coalesce(a.locked_until > now(), false),"
	    " " TS("a.locked_until") " FROM admins a JOIN vservers v"
	    " ON v.id = a.vs_id WHERE a.principal = $1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else {
		memset(a, 0, sizeof(*a));
		a->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		a->vs_id = atoi(PQgetvalue(res, 0, 1));
		qk_copy(a->name, sizeof(a->name), res, 0, 2);
		qk_copy(a->vs_name, sizeof(a->vs_name), res, 0, 3);
		qk_copy(a->principal, sizeof(a->principal), res, 0, 4);
		qk_copy(a->pw_hash, sizeof(a->pw_hash), res, 0, 5);
		a->locked = PQgetvalue(res, 0, 6)[0] == 't';
		qk_copy(a->locked_until, sizeof(a->locked_until), res, 0, 7);
	}
	PQclear(res);
	return rc;
}

int
qk_principal_other_realm(PGconn *conn, const char *principal, char *out,
    size_t outlen, char *err, size_t errlen)
{
	const char	*p[1] = { principal };
	PGresult	*res;
	int		 rc;

	out[0] = '\0';
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT principal FROM admins WHERE principal IS NOT NULL AND"
	    " principal <> $1 AND split_part(principal, '@', 1) ="
	    " split_part($1, '@', 1) ORDER BY id LIMIT 1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) > 0)
		qk_copy(out, outlen, res, 0, 0);
	PQclear(res);
	return DB_OK;
}

int
qk_mapped_roles(PGconn *conn, const char *principal, struct qk_mapped *m,
    size_t max, size_t *n, char *err, size_t errlen)
{
	const char	*p[1] = { principal };
	PGresult	*res;
	int		 rc, i;

	*n = 0;
	/* Engineer D's tables may be absent: then no group maps anyone. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT to_regclass('directory_members') IS NOT NULL AND"
	    " to_regclass('directory_objects') IS NOT NULL", 0, NULL)) == NULL)
		return rc;
	i = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!i)
		return DB_OK;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT DISTINCT rm.vs_id, rm.role, coalesce(rm.scope_group, 0)"
	    " FROM role_mappings rm"
	    " JOIN directory_objects g ON g.vs_id = rm.vs_id"
	    "  AND g.type = 'group' AND NOT g.gone"
	    "  AND (lower(g.dn) = lower(rm.directory_group)"
	    "   OR lower(g.name) = lower(rm.directory_group))"
	    " JOIN directory_members dm ON dm.group_id = g.id"
	    " JOIN directory_objects u ON u.id = dm.member_id"
	    "  AND u.type = 'user' AND NOT u.gone AND u.principal = $1"
	    " ORDER BY 1, 2, 3", 1, p)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && (size_t)i < max; i++) {
		m[i].vs_id = atoi(PQgetvalue(res, i, 0));
		qk_copy(m[i].role, sizeof(m[i].role), res, i, 1);
		m[i].scope = strtoll(PQgetvalue(res, i, 2), NULL, 10);
	}
	*n = (size_t)i;
	PQclear(res);
	return DB_OK;
}

int
qk_mapped_admin_create(PGconn *conn, int vs_id, const char *principal,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, principal };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	/*
	 * The account is named by its principal: a local account 'alice'
	 * stays another account.  A name taken already is not overwritten.
	 */
	return qk_run(conn, err, errlen,
	    "INSERT INTO admins (vs_id, name, principal, mapped)"
	    " VALUES ($1, $2, $2, true) ON CONFLICT DO NOTHING", 2, p, NULL);
}

int
qk_mapped_roles_apply(PGconn *conn, int64_t admin_id, int vs_id,
    const struct qk_mapped *m, size_t n, char *err, size_t errlen)
{
	char		 id[24], sc[24];
	const char	*p[3];
	size_t		 i;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	p[0] = id;
	if ((rc = qk_run(conn, err, errlen, "DELETE FROM admin_roles"
	    " WHERE admin_id = $1 AND from_mapping", 1, p, NULL)) != DB_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if (m[i].vs_id != vs_id)
			continue;
		snprintf(sc, sizeof(sc), "%" PRId64, m[i].scope);
		p[1] = m[i].role;
		p[2] = m[i].scope != 0 ? sc : NULL;
		if ((rc = qk_run(conn, err, errlen,
		    "INSERT INTO admin_roles (admin_id, role, scope_group,"
		    " from_mapping) SELECT $1, $2, $3, true WHERE NOT EXISTS"
		    " (SELECT 1 FROM admin_roles WHERE admin_id = $1 AND"
		    " role = $2 AND scope_group IS NOT DISTINCT FROM $3::bigint)",
		    3, p, NULL)) != DB_OK)
			return rc;
	}
	return DB_OK;
}

int
qk_rm_create(PGconn *conn, int vs_id, const char *group, const char *role,
    int64_t scope, int64_t *id, char *err, size_t errlen)
{
	char		 vs[16], sc[24];
	const char	*p[4] = { vs, group, role, NULL };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(sc, sizeof(sc), "%" PRId64, scope);
	if (scope != 0)
		p[3] = sc;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO role_mappings (vs_id, directory_group, role,"
	    " scope_group) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
	    " RETURNING id", 4, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;	/* the same mapping exists */
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int
qk_rm_list(PGconn *conn, int vs_id, json_t **out, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };
	PGresult	*res;
	json_t		*a;
	int		 rc, i;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT id::text, directory_group, role, scope_group::text, "
	    TS("created") " FROM role_mappings WHERE vs_id = $1 ORDER BY id",
	    1, p)) == NULL)
		return rc;
	a = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o,s:s}",
		    "id", PQgetvalue(res, i, 0),
		    "directory_group", PQgetvalue(res, i, 1),
		    "role", PQgetvalue(res, i, 2),
		    "scope", PQgetisnull(res, i, 3) ? json_null() :
		    json_string(PQgetvalue(res, i, 3)),
		    "created", PQgetvalue(res, i, 4)));
	PQclear(res);
	*out = a;
	return DB_OK;
}

int
qk_rm_delete(PGconn *conn, int vs_id, int64_t id, char *err, size_t errlen)
{
	char		 vs[16], ids[24];
	const char	*p[2] = { vs, ids };
	int		 rc, n = 0;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if ((rc = qk_run(conn, err, errlen, "DELETE FROM role_mappings"
	    " WHERE vs_id = $1 AND id = $2", 2, p, &n)) != DB_OK)
		return rc;
	return n == 0 ? QA_NOTFOUND : DB_OK;
}

int
qk_totp_get(PGconn *conn, int64_t admin_id, char **sealed, char **pending,
    int64_t *last_step, char *err, size_t errlen)
{
	char		 id[24];
	const char	*p[1] = { id };
	PGresult	*res;
	int		 rc;

	*sealed = *pending = NULL;
	*last_step = 0;
	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT totp_sealed, totp_pending, totp_last_step FROM admins"
	    " WHERE id = $1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	*sealed = qk_dup(res, 0, 0);
	*pending = qk_dup(res, 0, 1);
	*last_step = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
qk_totp_set_pending(PGconn *conn, int64_t admin_id, const char *sealed,
    char *err, size_t errlen)
{
	char		 id[24];
	const char	*p[2] = { id, sealed };

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	return qk_run(conn, err, errlen, "UPDATE admins SET totp_pending = $2"
	    " WHERE id = $1", 2, p, NULL);
}

int
qk_totp_confirm(PGconn *conn, int64_t admin_id, int64_t step, char *err,
    size_t errlen)
{
	char		 id[24], st[24];
	const char	*p[2] = { id, st };
	int		 rc, n = 0;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	snprintf(st, sizeof(st), "%" PRId64, step);
	if ((rc = qk_run(conn, err, errlen, "UPDATE admins SET"
	    " totp_sealed = totp_pending, totp_pending = NULL,"
	    " totp_last_step = $2 WHERE id = $1 AND totp_pending IS NOT NULL",
	    2, p, &n)) != DB_OK)
		return rc;
	return n == 0 ? QA_NOTFOUND : DB_OK;
}

int
qk_totp_use(PGconn *conn, int64_t admin_id, int64_t step, char *err,
    size_t errlen)
{
	char		 id[24], st[24];
	const char	*p[2] = { id, st };
	int		 rc, n = 0;

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	snprintf(st, sizeof(st), "%" PRId64, step);
	/* Atomic: two logins racing with one code, only one wins. */
	if ((rc = qk_run(conn, err, errlen, "UPDATE admins SET"
	    " totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
	    2, p, &n)) != DB_OK)
		return rc;
	return n == 0 ? QA_NOTFOUND : DB_OK;
}

int
qk_totp_clear(PGconn *conn, int64_t admin_id, char *err, size_t errlen)
{
	char		 id[24];
	const char	*p[1] = { id };

	snprintf(id, sizeof(id), "%" PRId64, admin_id);
	return qk_run(conn, err, errlen, "UPDATE admins SET totp_sealed = NULL,"
	    " totp_pending = NULL WHERE id = $1", 1, p, NULL);
}
