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
 * Directory sources and objects (db/q_directory.h).  A poll's objects go
 * in by COPY into a temporary table and then a handful of set-based
 * statements: upsert, what is gone, transitive membership, devices.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "ldapval.h"
#include "log.h"

#include "directory/ldap.h"

#include "db.h"
#include "q_directory.h"
#include "q_rules.h"
#include "sql.h"

#define SRC_JSON(t)							\
	"jsonb_build_object('id', " t ".id::text, 'name', " t ".name,"	\
	" 'flavor', " t ".flavor, 'url', " t ".url, 'base_dn', "	\
	t ".base_dn, 'bind', jsonb_strip_nulls(jsonb_build_object("	\
	"'method', " t ".bind_method, 'dn', " t ".bind_dn, 'principal', " \
	t ".principal)), 'starttls', " t ".starttls, 'tls_verify', "	\
	t ".tls_verify, 'ca_file', " t ".ca_file, 'realm', " t ".realm,"	\
	" 'interval_s', " t ".interval_s, 'state', " t ".state,"	\
	" 'last_poll', " TS(t ".last_poll") ", 'last_full', "		\
	TS(t ".last_full") ", 'last_error', " t ".last_error,"		\
	" 'last_kind', " t ".last_kind, 'last_fetched', "		\
	t ".last_fetched, 'last_ms', " t ".last_ms, 'last_ldap_ms', "	\
	t ".last_ldap_ms, 'polls', " t ".polls," \
	" 'counts', (SELECT jsonb_build_object("			\
	"'computers', count(*) FILTER (WHERE o.type = 'computer'),"	\
	" 'users', count(*) FILTER (WHERE o.type = 'user'),"		\
	" 'groups', count(*) FILTER (WHERE o.type = 'group'),"		\
	" 'ous', count(*) FILTER (WHERE o.type = 'ou'),"		\
	" 'disabled', count(*) FILTER (WHERE o.disabled),"		\
	" 'gone', (SELECT count(*) FROM directory_objects g"		\
	"  WHERE g.source_id = " t ".id AND g.gone))"			\
	" FROM directory_objects o WHERE o.source_id = " t ".id"	\
	" AND NOT o.gone))"

static int	 qd_exec(PGconn *, char *, size_t, const char *, int,
		    const char *const *, long long *);

static int
qd_id_ok(const char *id)
{
	size_t	 i;

	for (i = 0; id[i] != '\0'; i++)
		if (id[i] < '0' || id[i] > '9')
			return 0;
	return i > 0 && i < 19;
}

static int
qd_json(PGconn *conn, json_t **out, char *err, size_t errlen,
    const char *sql, int n, const char *const *params)
{
	PGresult	*res;
	json_error_t	 jerr;
	int		 rc;

	*out = NULL;
	if ((res = db_exec(conn, &rc, err, errlen, sql, n, params)) == NULL)
		return rc;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return QD_NOTFOUND;
	}
	*out = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (*out == NULL) {
		snprintf(err, errlen, "directory: bad JSON from the database: "
		    "%s", jerr.text);
		return DB_ERR;
	}
	return DB_OK;
}

int
qd_source_create(PGconn *conn, int vs_id, const struct qd_new_source *ns,
    json_t **out, char *err, size_t errlen)
{
	char		 vs[16], iv[16], max[16];
	const char	*p[16];
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(iv, sizeof(iv), "%d", ns->interval_s);
	snprintf(max, sizeof(max), "%d", DIR_SOURCES_MAX);
	p[0] = vs;
	p[1] = max;
	if ((res = db_exec(conn, &rc, err, errlen, "SELECT count(*) >= $2::int"
	    " FROM directory_sources WHERE vs_id = $1", 2, p)) == NULL)
		return rc;
	rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? QD_TOOMANY : DB_OK;
	PQclear(res);
	if (rc != DB_OK)
		return rc;
	p[1] = ns->name;
	p[2] = ns->flavor;
	p[3] = ns->url;
	p[4] = ns->base_dn;
	p[5] = ns->bind_method;
	p[6] = ns->bind_dn;
	p[7] = ns->bind_secret;
	p[8] = ns->principal;
	p[9] = ns->keytab_sealed;
	p[10] = ns->starttls ? "t" : "f";
	p[11] = ns->tls_verify ? "t" : "f";
	p[12] = ns->ca_file;
	p[13] = ns->realm;
	p[14] = iv;
	rc = qd_json(conn, out, err, errlen,
	    "WITH s AS (INSERT INTO directory_sources (vs_id, name, flavor,"
	    " url, base_dn, bind_method, bind_dn, bind_secret, principal,"
	    " keytab_sealed, starttls, tls_verify, ca_file, realm, interval_s)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::boolean,"
	    " $12::boolean, $13, $14, $15::int)"
	    " ON CONFLICT (vs_id, name) DO NOTHING RETURNING *)"
	    " SELECT " SRC_JSON("s") "::text FROM s", 15, p);
	return rc == QD_NOTFOUND ? QD_CONFLICT : rc;
}

int
qd_source_list(PGconn *conn, int vs_id, json_t **out, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qd_json(conn, out, err, errlen,
	    "SELECT coalesce(jsonb_agg(" SRC_JSON("s") " ORDER BY s.name,"
	    " s.id), '[]')::text FROM directory_sources s WHERE s.vs_id = $1",
	    1, p);
}

int
qd_source_get(PGconn *conn, int vs_id, const char *id, json_t **out,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*out = NULL;
	if (!qd_id_ok(id))
		return QD_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qd_json(conn, out, err, errlen,
	    "SELECT " SRC_JSON("s") "::text FROM directory_sources s"
	    " WHERE s.vs_id = $1 AND s.id = $2::bigint", 2, p);
}

int
qd_source_poll(PGconn *conn, int vs_id, const char *id, int full, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[3] = { vs, id, full ? "t" : "f" };
	PGresult	*res;
	int		 rc;

	if (!qd_id_ok(id))
		return QD_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE directory_sources SET poll_requested = true,"
	    " full_requested = full_requested OR $3::boolean"
	    " WHERE vs_id = $1 AND id = $2::bigint", 3, p)) == NULL)
		return rc;
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : QD_NOTFOUND;
	PQclear(res);
	return rc;
}

int
qd_source_delete(PGconn *conn, int vs_id, const char *id, json_t **old,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };
	PGresult	*res;
	int		 rc;

	*old = NULL;
	if (!qd_id_ok(id))
		return QD_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((rc = qd_source_get(conn, vs_id, id, old, err, errlen)) != DB_OK)
		return rc;
	/* The devices stay (they may have agents); only the link goes. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM directory_sources WHERE vs_id = $1"
	    " AND id = $2::bigint", 2, p)) == NULL) {
		json_decref(*old);
		*old = NULL;
		return rc;
	}
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : QD_NOTFOUND;
	PQclear(res);
	return rc;
}

int
qd_objects_list(PGconn *conn, int vs_id, const char *source,
    const char *type, const char *q, const char *after, int limit,
    json_t **out, char *err, size_t errlen)
{
	char		 vs[16], lim[16];
	const char	*p[6];

	if ((source != NULL && !qd_id_ok(source)) ||
	    (after != NULL && !qd_id_ok(after))) {
		*out = json_pack("{s:[],s:n}", "objects", "next");
		return DB_OK;
	}
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	p[0] = vs;
	p[1] = source;
	p[2] = type;
	p[3] = q;
	p[4] = after;
	p[5] = lim;
	return qd_json(conn, out, err, errlen,
	    "WITH x AS (SELECT o.* FROM directory_objects o"
	    " WHERE o.vs_id = $1"
	    " AND ($2::bigint IS NULL OR o.source_id = $2::bigint)"
	    " AND ($3::text IS NULL OR o.type = $3)"
	    " AND ($4::text IS NULL OR strpos(lower(o.name), lower($4)) > 0"
	    "  OR strpos(o.ndn, lower($4)) > 0"
	    "  OR strpos(lower(coalesce(o.fqdn, '')), lower($4)) > 0"
	    "  OR strpos(lower(coalesce(o.principal, '')), lower($4)) > 0)"
	    " AND ($5::bigint IS NULL OR o.id > $5::bigint)"
	    " ORDER BY o.id LIMIT $6::int + 1),"
	    " y AS (SELECT * FROM x ORDER BY id LIMIT $6::int)"
	    " SELECT jsonb_build_object('objects', coalesce((SELECT"
	    " jsonb_agg(jsonb_build_object('id', y.id::text, 'source',"
	    " y.source_id::text, 'type', y.type, 'dn', y.dn, 'guid', y.guid,"
	    " 'name', y.name, 'principal', y.principal, 'fqdn', y.fqdn,"
	    " 'os', y.os, 'os_version', y.os_version, 'sid', y.sid,"
	    " 'parent_dn', y.parent_dn, 'disabled', y.disabled,"
	    " 'gone', y.gone, 'updated', " TS("y.updated") ","
	    " 'members', CASE WHEN y.type IN ('user', 'computer') THEN NULL"
	    "  ELSE (SELECT count(*) FROM directory_members m"
	    "  WHERE m.group_id = y.id) END,"
	    " 'member_of', CASE WHEN y.type = 'ou' THEN NULL ELSE"
	    "  (SELECT coalesce(jsonb_agg(g.name ORDER BY g.name), '[]')"
	    "  FROM directory_members m JOIN directory_objects g"
	    "  ON g.id = m.group_id WHERE m.member_id = y.id) END)"
	    " ORDER BY y.id) FROM y), '[]'),"
	    " 'next', CASE WHEN (SELECT count(*) FROM x) > $6::int"
	    " THEN (SELECT max(id)::text FROM y) END)::text", 6, p);
}

int
qd_claim(PGconn *conn, const char *owner, json_t **row, char *err,
    size_t errlen)
{
	char		 rec[16];
	const char	*p[2] = { owner, rec };

	snprintf(rec, sizeof(rec), "%d", DIR_RECONCILE_S);
	return qd_json(conn, row, err, errlen,
	    "WITH c AS (SELECT id FROM directory_sources"
	    " WHERE (state <> 'polling' OR poll_owner IS DISTINCT FROM $1)"
	    " AND (poll_requested OR last_poll IS NULL OR"
	    "  last_poll + interval '1 second' * interval_s <= now())"
	    " ORDER BY poll_requested DESC, last_poll NULLS FIRST, id"
	    " LIMIT 1 FOR UPDATE SKIP LOCKED),"
	    " u AS (UPDATE directory_sources s SET state = 'polling',"
	    " poll_owner = $1, poll_requested = false FROM c WHERE s.id = c.id"
	    " RETURNING s.*)"
	    " SELECT jsonb_build_object('id', id, 'vs_id', vs_id, 'flavor',"
	    " flavor, 'url', url, 'base_dn', base_dn, 'bind_method',"
	    " bind_method, 'bind_dn', bind_dn, 'bind_secret', bind_secret,"
	    " 'principal', principal, 'keytab_sealed', keytab_sealed,"
	    " 'starttls', starttls, 'tls_verify', tls_verify, 'ca_file',"
	    " ca_file, 'realm', realm, 'mark', mark, 'full', full_requested"
	    " OR mark IS NULL OR last_full IS NULL"
	    " OR last_full < now() - interval '1 second' * $2::int)::text"
	    " FROM u", 2, p);
}

int
qd_poll_time(PGconn *conn, int64_t source, long long ms, char *err,
    size_t errlen)
{
	char		 id[24], m[24];
	const char	*p[2] = { id, m };

	snprintf(id, sizeof(id), "%" PRId64, source);
	snprintf(m, sizeof(m), "%lld", ms);
	return qd_exec(conn, err, errlen, "UPDATE directory_sources"
	    " SET last_ms = $2::bigint WHERE id = $1::bigint", 2, p, NULL);
}

int
qd_poll_fail(PGconn *conn, int64_t source, const char *error, long long ms,
    char *err, size_t errlen)
{
	char		 id[24], m[24];
	const char	*p[3] = { id, error, m };
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, source);
	snprintf(m, sizeof(m), "%lld", ms);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE directory_sources SET state = 'error', last_poll = now(),"
	    " last_error = left($2, " "400" "), last_ms = $3::bigint,"
	    " poll_owner = NULL, polls = polls + 1 WHERE id = $1::bigint", 3,
	    p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

/* COPY text format: backslash, tab, newline and CR escaped; NULL as \N. */
static int
qd_put(PGconn *conn, char **buf, size_t *len, size_t *cap, const char *s,
    int last)
{
	size_t	 need = (s != NULL ? strlen(s) * 2 : 2) + 2;

	if (*len + need > *cap) {
		size_t	 nc = (*len + need) * 2;
		char	*p = realloc(*buf, nc);

		if (p == NULL)
			return -1;
		*buf = p;
		*cap = nc;
	}
	if (s == NULL) {
		memcpy(*buf + *len, "\\N", 2);
		*len += 2;
	} else
		for (; *s != '\0'; s++) {
			char	 c = *s;

			if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
				(*buf)[(*len)++] = '\\';
				c = c == '\t' ? 't' : c == '\n' ? 'n' :
				    c == '\r' ? 'r' : '\\';
			}
			(*buf)[(*len)++] = c;
		}
	(*buf)[(*len)++] = last ? '\n' : '\t';
	return 0;
}

static const char *const qd_types[] = { "computer", "user", "group", "ou" };

/* Sends rows in chunks; the buffer is flushed past 1 MiB. */
static int
qd_flush(PGconn *conn, char *buf, size_t *len, int force, char *err,
    size_t errlen)
{
	if (*len == 0 || (!force && *len < (1 << 20)))
		return DB_OK;
	if (PQputCopyData(conn, buf, (int)*len) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(conn));
		return db_errclass(conn);
	}
	*len = 0;
	return DB_OK;
}

static int
qd_copy_end(PGconn *conn, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rc = DB_OK;

	if (PQputCopyEnd(conn, NULL) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(conn));
		return db_errclass(conn);
	}
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == DB_OK) {
			snprintf(err, errlen, "COPY: %s",
			    PQresultErrorMessage(res));
			rc = db_errclass(conn);
		}
		PQclear(res);
	}
	return rc;
}

static int
qd_copy_begin(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult	*res;

	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(res));
		PQclear(res);
		return db_errclass(conn);
	}
	PQclear(res);
	return DB_OK;
}

static int
qd_exec(PGconn *conn, char *err, size_t errlen, const char *sql, int n,
    const char *const *p, long long *count)
{
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen, sql, n, p)) == NULL)
		return rc;
	if (count != NULL)
		*count = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return DB_OK;
}

/* The objects of r into dir_in, GUID lists into dir_guid. */
static int
qd_copy_in(PGconn *conn, const struct dir_result *r, char *err,
    size_t errlen)
{
	char	*buf = NULL, *ndn;
	size_t	 len = 0, cap = 0, i;
	int	 rc;

	if ((rc = qd_copy_begin(conn, "COPY dir_in FROM STDIN", err,
	    errlen)) != DB_OK)
		return rc;
	for (i = 0; i < r->n; i++) {
		const struct dir_obj	*o = &r->objs[i];

		if ((ndn = strdup(o->dn)) == NULL)
			goto nomem;
		ldapval_dn_norm(ndn);
		if (qd_put(conn, &buf, &len, &cap, qd_types[o->type], 0) ||
		    qd_put(conn, &buf, &len, &cap, o->dn, 0) ||
		    qd_put(conn, &buf, &len, &cap, ndn, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->guid, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->name, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->principal, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->disabled ? "t" : "f", 0) ||
		    qd_put(conn, &buf, &len, &cap, o->fqdn, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->os, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->os_version, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->sid, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->parent_dn, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->members, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->member_of, 0) ||
		    qd_put(conn, &buf, &len, &cap, o->changed, 1)) {
			free(ndn);
			goto nomem;
		}
		free(ndn);
		if ((rc = qd_flush(conn, buf, &len, 0, err, errlen)) != DB_OK)
			goto fail;
	}
	if ((rc = qd_flush(conn, buf, &len, 1, err, errlen)) != DB_OK)
		goto fail;
	free(buf);
	buf = NULL;
	len = cap = 0;
	if ((rc = qd_copy_end(conn, err, errlen)) != DB_OK)
		return rc;

	if (r->ndeleted == 0 && !r->present_valid)
		return DB_OK;
	if ((rc = qd_copy_begin(conn, "COPY dir_guid FROM STDIN", err,
	    errlen)) != DB_OK)
		return rc;
	for (i = 0; i < r->ndeleted; i++) {
		if (qd_put(conn, &buf, &len, &cap, "d", 0) ||
		    qd_put(conn, &buf, &len, &cap, r->deleted[i], 1))
			goto nomem;
		if ((rc = qd_flush(conn, buf, &len, 0, err, errlen)) != DB_OK)
			goto fail;
	}
	for (i = 0; i < r->npresent; i++) {
		if (qd_put(conn, &buf, &len, &cap, "p", 0) ||
		    qd_put(conn, &buf, &len, &cap, r->present[i], 1))
			goto nomem;
		if ((rc = qd_flush(conn, buf, &len, 0, err, errlen)) != DB_OK)
			goto fail;
	}
	if ((rc = qd_flush(conn, buf, &len, 1, err, errlen)) != DB_OK)
		goto fail;
	free(buf);
	return qd_copy_end(conn, err, errlen);
 nomem:
	snprintf(err, errlen, "directory: out of memory");
	rc = DB_ERR;
 fail:
	free(buf);
	PQputCopyEnd(conn, "failed");
	while (PQgetResult(conn) != NULL)
		;
	return rc;
}

/* Step by step; each a set-based statement over this source. */
static const char sql_temp[] =
	"CREATE TEMP TABLE IF NOT EXISTS dir_in (type text, dn text, ndn text,"
	" guid text, name text, principal text, disabled boolean, fqdn text,"
	" os text, os_version text, sid text, parent_dn text, members text,"
	" member_of text, changed text);"
	" CREATE TEMP TABLE IF NOT EXISTS dir_guid (kind text, guid text);"
	" TRUNCATE dir_in; TRUNCATE dir_guid";

static const char sql_upsert[] =
	"WITH u AS (INSERT INTO directory_objects AS o (vs_id, source_id, type, dn, ndn,"
	" guid, name, principal, disabled, fqdn, os, os_version, sid,"
	" parent_dn, member_dns, member_of, changed)"
	" SELECT DISTINCT ON (guid) $2::int, $1::bigint, type, dn, ndn, guid,"
	" name, principal, disabled, fqdn, os, os_version, sid, parent_dn,"
	" coalesce(string_to_array(members, E'\\x1f'), '{}'),"
	" coalesce(string_to_array(member_of, E'\\x1f'), '{}'), changed"
	" FROM dir_in ORDER BY guid"
	" ON CONFLICT (source_id, guid) DO UPDATE SET type = EXCLUDED.type,"
	" dn = EXCLUDED.dn, ndn = EXCLUDED.ndn, name = EXCLUDED.name,"
	" principal = EXCLUDED.principal, disabled = EXCLUDED.disabled,"
	" fqdn = EXCLUDED.fqdn, os = EXCLUDED.os,"
	" os_version = EXCLUDED.os_version, sid = EXCLUDED.sid,"
	" parent_dn = EXCLUDED.parent_dn, member_dns = EXCLUDED.member_dns,"
	" member_of = EXCLUDED.member_of, changed = EXCLUDED.changed,"
	" gone = false, updated = now()"
	" WHERE (o.type, o.dn, o.name, o.principal, o.disabled, o.fqdn, o.os,"
	" o.os_version, o.sid, o.parent_dn, o.member_dns, o.member_of,"
	" o.changed, o.gone) IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.dn,"
	" EXCLUDED.name, EXCLUDED.principal, EXCLUDED.disabled, EXCLUDED.fqdn,"
	" EXCLUDED.os, EXCLUDED.os_version, EXCLUDED.sid, EXCLUDED.parent_dn,"
	" EXCLUDED.member_dns, EXCLUDED.member_of, EXCLUDED.changed, false)"
	" RETURNING o.type, o.member_of <> '{}' AS has_of)"
	/* Membership is recomputed only when a group or a memberOf moved. */
	" SELECT count(*), count(*) FILTER (WHERE type = 'group' OR has_of)"
	" FROM u";

/* A full read: whatever it did not see is gone. */
static const char sql_gone_full[] =
	"UPDATE directory_objects o SET gone = true, updated = now()"
	" WHERE o.source_id = $1::bigint AND NOT o.gone AND NOT EXISTS"
	" (SELECT 1 FROM dir_in i WHERE i.guid = o.guid)";
static const char sql_gone_present[] =
	"UPDATE directory_objects o SET gone = true, updated = now()"
	" WHERE o.source_id = $1::bigint AND NOT o.gone AND NOT EXISTS"
	" (SELECT 1 FROM dir_guid g WHERE g.kind = 'p' AND g.guid = o.guid)"
	" AND NOT EXISTS (SELECT 1 FROM dir_in i WHERE i.guid = o.guid)";
static const char sql_gone_deleted[] =
	"UPDATE directory_objects o SET gone = true, updated = now()"
	" FROM dir_guid g WHERE g.kind = 'd' AND g.guid = o.guid"
	" AND o.source_id = $1::bigint AND NOT o.gone";

/* Users and computers in groups, nested groups resolved (cycles too). */
static const char sql_members[] =
	"WITH RECURSIVE o AS (SELECT id, type, ndn, member_dns, member_of"
	"  FROM directory_objects WHERE source_id = $1::bigint AND NOT gone),"
	" e AS (SELECT g.id AS gid, m.id AS mid FROM o g"
	"  CROSS JOIN LATERAL unnest(g.member_dns) x(dn)"
	"  JOIN o m ON m.ndn = x.dn WHERE g.type = 'group'"
	"  UNION SELECT g.id, m.id FROM o m"
	"  CROSS JOIN LATERAL unnest(m.member_of) x(dn)"
	"  JOIN o g ON g.ndn = x.dn AND g.type = 'group'),"
	" c(gid, mid) AS (SELECT gid, mid FROM e"
	"  UNION SELECT c.gid, e.mid FROM c JOIN e ON e.gid = c.mid)"
	" INSERT INTO directory_members (vs_id, group_id, member_id)"
	" SELECT DISTINCT $2::int, c.gid, c.mid FROM c JOIN o ON o.id = c.mid"
	" WHERE o.type IN ('user', 'computer') AND c.gid <> c.mid";

static const char sql_members_del[] =
	"DELETE FROM directory_members dm USING directory_objects g"
	" WHERE g.id = dm.group_id AND g.source_id = $1::bigint";

/* Computers and devices: link by FQDN (or a name that is the FQDN). */
static const char sql_dev_link[] =
	"UPDATE devices d SET directory_guid = i.guid,"
	" directory_source = $1::bigint"
	" FROM (SELECT DISTINCT ON (lower(fqdn)) guid, fqdn FROM dir_in"
	"  WHERE type = 'computer' AND fqdn IS NOT NULL) i"
	" WHERE d.vs_id = $2::int AND d.directory_guid IS NULL"
	" AND (lower(d.fqdn) = lower(i.fqdn) OR lower(d.name) = lower(i.fqdn))"
	" AND NOT EXISTS (SELECT 1 FROM devices d2 WHERE d2.vs_id = $2::int"
	"  AND d2.directory_guid = i.guid)";
static const char sql_dev_update[] =
	"UPDATE devices d SET ou_dn = i.parent_dn,"
	" directory_disabled = i.disabled, directory_gone = false,"
	" directory_source = $1::bigint,"
	" fqdn = CASE WHEN d.source = 'directory' THEN i.fqdn"
	"  ELSE coalesce(d.fqdn, i.fqdn) END,"
	" os = CASE WHEN d.source = 'directory' THEN i.os"
	"  ELSE coalesce(d.os, i.os) END,"
	" name = CASE WHEN d.source = 'directory' THEN i.name ELSE d.name END"
	" FROM (SELECT DISTINCT ON (guid) * FROM dir_in"
	"  WHERE type = 'computer') i"
	" WHERE d.vs_id = $2::int AND d.directory_guid = i.guid"
	" AND (d.ou_dn, d.directory_disabled, d.directory_gone, d.fqdn, d.os,"
	" d.name) IS DISTINCT FROM (i.parent_dn, i.disabled, false,"
	" CASE WHEN d.source = 'directory' THEN i.fqdn"
	"  ELSE coalesce(d.fqdn, i.fqdn) END,"
	" CASE WHEN d.source = 'directory' THEN i.os"
	"  ELSE coalesce(d.os, i.os) END,"
	" CASE WHEN d.source = 'directory' THEN i.name ELSE d.name END)";
static const char sql_dev_insert[] =
	"INSERT INTO devices (vs_id, group_id, name, fqdn, os, source,"
	" directory_guid, directory_source, directory_disabled, ou_dn,"
	" first_seen)"
	" SELECT $2::int, (SELECT id FROM groups WHERE vs_id = $2::int"
	"  AND kind = 'unassigned' LIMIT 1), i.name, i.fqdn, i.os, 'directory',"
	" i.guid, $1::bigint, i.disabled, i.parent_dn, now()"
	" FROM (SELECT DISTINCT ON (guid) * FROM dir_in"
	"  WHERE type = 'computer') i"
	" WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.vs_id = $2::int"
	"  AND d.directory_guid = i.guid)";
static const char sql_dev_gone[] =
	"UPDATE devices d SET directory_gone = true FROM directory_objects o"
	" WHERE o.source_id = $1::bigint AND o.gone AND o.type = 'computer'"
	" AND d.vs_id = $2::int AND d.directory_guid = o.guid"
	" AND NOT d.directory_gone";

int
qd_poll_store(PGconn *conn, int64_t source, int vs_id,
    const struct dir_result *r, long long ms, char *err, size_t errlen)
{
	char		 id[24], vs[16], fetched[24], m[24];
	const char	*p[7];
	long long	 changed = 0, groups = 0, gone = 0, n = 0, devs = 0;
	long long	 inserted = 0;
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%" PRId64, source);
	snprintf(vs, sizeof(vs), "%d", vs_id);
	p[0] = id;
	p[1] = vs;
	/* Nothing read and nothing to reconcile: just the bookkeeping. */
	if (r->n > 0 || r->ndeleted > 0 || r->present_valid || r->full) {
		if ((res = PQexec(conn, sql_temp)) == NULL ||
		    PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "directory: %s",
			    PQerrorMessage(conn));
			PQclear(res);
			return db_errclass(conn);
		}
		PQclear(res);
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if (r->n > 0 || r->ndeleted > 0 || r->present_valid)
		if ((rc = qd_copy_in(conn, r, err, errlen)) != DB_OK)
			goto fail;
	if (r->n > 0) {
		if ((res = db_exec(conn, &rc, err, errlen, sql_upsert, 2,
		    p)) == NULL)
			goto fail;
		changed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		groups = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		PQclear(res);
	}
	if (r->full) {
		if ((rc = qd_exec(conn, err, errlen, sql_gone_full, 1, p,
		    &n)) != DB_OK)
			goto fail;
		gone += n;
	} else if (r->present_valid) {
		if ((rc = qd_exec(conn, err, errlen, sql_gone_present, 1, p,
		    &n)) != DB_OK)
			goto fail;
		gone += n;
	}
	if (r->ndeleted > 0) {
		if ((rc = qd_exec(conn, err, errlen, sql_gone_deleted, 1, p,
		    &n)) != DB_OK)
			goto fail;
		gone += n;
	}
	if (groups > 0 || gone > 0) {
		if ((rc = qd_exec(conn, err, errlen, sql_members_del, 1, p,
		    NULL)) != DB_OK)
			goto fail;
		if ((rc = qd_exec(conn, err, errlen, sql_members, 2, p,
		    NULL)) != DB_OK)
			goto fail;
	}
	if (changed > 0 || gone > 0) {
		if ((rc = qd_exec(conn, err, errlen, sql_dev_link, 2, p,
		    NULL)) != DB_OK ||
		    (rc = qd_exec(conn, err, errlen, sql_dev_update, 2, p,
		    &n)) != DB_OK)
			goto fail;
		devs += n;
		if ((rc = qd_exec(conn, err, errlen, sql_dev_insert, 2, p,
		    &n)) != DB_OK)
			goto fail;
		devs += n;
		inserted = n;
		if (gone > 0 && (rc = qd_exec(conn, err, errlen,
		    sql_dev_gone, 2, p, &n)) != DB_OK)
			goto fail;
		if (gone > 0)
			devs += n;
	}
	if (inserted > 0) {
		struct qr_round	 st;

		/*
		 * New devices: moving rules place them now, not at the next
		 * rules tick (srv/rules.c), which looks at changed ones.
		 */
		memset(&st, 0, sizeof(st));
		st.no_status = 1;
		if ((rc = qr_round(conn, vs_id, 0, &st, err, errlen)) != DB_OK)
			goto fail;
	}
	snprintf(fetched, sizeof(fetched), "%" PRIu64, r->fetched);
	snprintf(m, sizeof(m), "%lld", ms);
	p[2] = r->mark;
	p[3] = r->full ? "t" : "f";
	p[4] = fetched;
	p[5] = m;
	p[6] = r->kind;
	if ((rc = qd_exec(conn, err, errlen,
	    "UPDATE directory_sources SET state = 'ok', last_poll = now(),"
	    " last_error = NULL, poll_owner = NULL,"
	    " mark = coalesce($3, mark),"
	    " last_full = CASE WHEN $4::boolean THEN now() ELSE last_full END,"
	    " full_requested = full_requested AND NOT $4::boolean,"
	    " last_fetched = $5::bigint, last_ldap_ms = $6::bigint,"
	    " last_kind = $7, polls = polls + 1 WHERE id = $1::bigint"
	    " AND vs_id = $2::int", 7, p, NULL)) != DB_OK)
		goto fail;
	return db_commit(conn, err, errlen);
 fail:
	db_rollback(conn);
	return rc;
}
