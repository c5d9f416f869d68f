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

/* Policies and effective policies (db/q_policy.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "util.h"

#include "db.h"
#include "sql.h"
#include "q_api.h"
#include "q_policy.h"

int
qp_key_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= POLICY_KEY_MAX)
			return 0;
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '.' && s[i] != '-')
			return 0;
	}
	return i > 0;
}

int
qp_product_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= POLICY_PRODUCT_MAX)
			return 0;
		/* Shown in paths, tables and file names: printable ASCII. */
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '/')
			return 0;
	}
	return i > 0;
}

static int
qp_depth_ok(json_t *v, int depth)
{
	json_t		*e;
	const char	*k;
	size_t		 i;

	if (depth > POLICY_VALUE_DEPTH)
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (!qp_depth_ok(e, depth + 1))
				return 0;
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, e)
			if (!qp_depth_ok(e, depth + 1))
				return 0;
	}
	return 1;
}

int
qp_settings_normalize(json_t *in, json_t **out, char *err,
    size_t errlen)
{
	const char	*key, *f;
	json_t		*s, *o, *v, *l, *x;

	*out = NULL;
	if (!json_is_object(in)) {
		snprintf(err, errlen, "settings: must be an object of "
		    "{\"value\", \"locked\"?} objects");
		return -1;
	}
	if (json_object_size(in) > POLICY_KEYS_MAX) {
		snprintf(err, errlen, "settings: at most %d keys",
		    POLICY_KEYS_MAX);
		return -1;
	}
	if ((o = json_object()) == NULL) {
		snprintf(err, errlen, "settings: out of memory");
		return -1;
	}
	json_object_foreach(in, key, s) {
		if (!qp_key_valid(key)) {
			snprintf(err, errlen, "settings.%.*s: a key is 1..%d "
			    "characters of A-Z a-z 0-9 _ . -",
			    POLICY_KEY_MAX, key, POLICY_KEY_MAX);
			goto fail;
		}
		if (!json_is_object(s)) {
			snprintf(err, errlen, "settings.%s: must be an object "
			    "{\"value\", \"locked\"?}", key);
			goto fail;
		}
		json_object_foreach(s, f, x) {
			if (strcmp(f, "value") != 0 &&
			    strcmp(f, "locked") != 0) {
				snprintf(err, errlen, "settings.%s.%.64s: "
				    "unknown field (allowed: value, locked)",
				    key, f);
				goto fail;
			}
		}
		if ((v = json_object_get(s, "value")) == NULL) {
			snprintf(err, errlen, "settings.%s.value: required",
			    key);
			goto fail;
		}
		if (!qp_depth_ok(v, 0)) {
			snprintf(err, errlen, "settings.%s.value: nested "
			    "deeper than %d", key, POLICY_VALUE_DEPTH);
			goto fail;
		}
		l = json_object_get(s, "locked");
		if (l != NULL && !json_is_boolean(l)) {
			snprintf(err, errlen, "settings.%s.locked: must be a "
			    "boolean", key);
			goto fail;
		}
		if (json_object_set_new(o, key, json_pack("{s:O,s:b}",
		    "value", v, "locked", l != NULL && json_is_true(l))) ==
		    -1) {
			snprintf(err, errlen, "settings: out of memory");
			goto fail;
		}
	}
	*out = o;
	return 0;
 fail:
	json_decref(o);
	return -1;
}

static int
qp_strcmp(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	    json_string_value(*(json_t *const *)b));
}

json_t *
qp_changed_keys(json_t *old, json_t *new)
{
	json_t		*a, *v, **sv;
	const char	*k;
	size_t		 i, n;

	if ((a = json_array()) == NULL)
		return NULL;
	json_object_foreach(new, k, v) {
		json_t *o = old != NULL ? json_object_get(old, k) : NULL;

		if (o == NULL || !json_equal(o, v))
			json_array_append_new(a, json_string(k));
	}
	if (old != NULL)
		json_object_foreach(old, k, v)
			if (json_object_get(new, k) == NULL)
				json_array_append_new(a, json_string(k));
	/* Sorted, so the 409 names the same key whatever the order. */
	n = json_array_size(a);
	if (n > 1 && (sv = calloc(n, sizeof(*sv))) != NULL) {
		json_t *b = json_array();

		for (i = 0; i < n; i++)
			sv[i] = json_array_get(a, i);
		qsort(sv, n, sizeof(*sv), qp_strcmp);
		for (i = 0; b != NULL && i < n; i++)
			json_array_append(b, sv[i]);
		free(sv);
		if (b != NULL) {
			json_decref(a);
			a = b;
		}
	}
	return a;
}

static json_t *
qp_jparse(const char *s)
{
	json_t	*j;

	if ((j = json_loads(s, JSON_DECODE_ANY, NULL)) == NULL)
		j = json_null();
	return j;
}

#define POLICY_COLS							\
	"p.id::text, p.group_id::text, p.product, p.name, p.settings::text," \
	" p.revision, " TS("p.created") ", " TS("p.updated") ","	\
	" p.created_by"

static json_t *
qp_policy_json(PGresult *res, int i)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:s,s:s,s:s?}",
	    "id", PQgetvalue(res, i, 0),
	    "group", PQgetvalue(res, i, 1),
	    "product", PQgetvalue(res, i, 2),
	    "name", PQgetvalue(res, i, 3),
	    "settings", qp_jparse(PQgetvalue(res, i, 4)),
	    "revision", atoi(PQgetvalue(res, i, 5)),
	    "created", PQgetvalue(res, i, 6),
	    "updated", PQgetvalue(res, i, 7),
	    "created_by", PQgetisnull(res, i, 8) ? NULL :
	    PQgetvalue(res, i, 8));
}

int
qp_policy_get(PGconn *conn, int vs_id, int64_t id, const char *scopes,
    json_t **out, int64_t *group, char *err, size_t errlen)
{
	char		 vs[16], ids[24];
	const char	*p[3] = { vs, scopes, ids };
	PGresult	*res;
	int		 rc;

	*out = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " SCOPE_TREE("$2")
	    " SELECT " POLICY_COLS ", gp.path FROM policies p"
	    " LEFT JOIN canopy_policy_groups($1) gp ON gp.group_id = p.group_id"
	    " WHERE p.vs_id = $1 AND p.id = $3::bigint"
	    " AND ($2::bigint[] IS NULL OR p.group_id IN (SELECT id FROM scope))",
	    3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	*out = qp_policy_json(res, 0);
	if (*out != NULL)
		json_object_set_new(*out, "group_path",
		    json_string(PQgetvalue(res, 0, 9)));
	if (group != NULL)
		*group = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return *out != NULL ? DB_OK : DB_ERR;
}

int
qp_policies_list(PGconn *conn, int vs_id, int64_t group, const char *product,
    const char *scopes, json_t **out, char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[4] = { vs, scopes, group ? gid : NULL, product };
	PGresult	*res;
	json_t		*a, *o;
	int		 rc, i;

	*out = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " SCOPE_TREE("$2")
	    " SELECT " POLICY_COLS " FROM policies p"
	    " WHERE p.vs_id = $1"
	    " AND ($2::bigint[] IS NULL OR p.group_id IN (SELECT id FROM scope))"
	    " AND ($3::bigint IS NULL OR p.group_id = $3::bigint)"
	    " AND ($4::text IS NULL OR p.product = $4)"
	    " ORDER BY p.group_id, p.product, p.id", 4, p)) == NULL)
		return rc;
	if ((a = json_array()) == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < PQntuples(res); i++)
		if ((o = qp_policy_json(res, i)) != NULL)
			json_array_append_new(a, o);
	PQclear(res);
	*out = a;
	return DB_OK;
}

int
qp_lock_check(PGconn *conn, int vs_id, int64_t group, const char *product,
    const char *keys_json, struct qp_lock *lk, char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[4] = { vs, gid, product, keys_json };
	PGresult	*res;
	int		 rc;

	memset(lk, 0, sizeof(*lk));
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	/*
	 * The parent's effective settings carry, for a locked key, the
	 * topmost policy that locks it: the one that wins.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT k, e.eff -> $3 -> k ->> 'policy',"
	    " e.eff -> $3 -> k ->> 'policy_id', e.eff -> $3 -> k ->> 'group',"
	    " coalesce(e.eff -> $3 -> k ->> 'server', '')"
	    /*
	     * A root group of main inherits what came from the servers
	     * above (010_tree_policies.sql): its "parent" is that merge.
	     */
	    " FROM (SELECT coalesce((SELECT x.eff"
	    "  FROM canopy_policy_groups($1) x"
	    "  WHERE x.group_id = (SELECT parent FROM groups"
	    "  WHERE vs_id = $1 AND id = $2::bigint)),"
	    "  CASE WHEN $1::int = 0 THEN canopy_hier_base()"
	    "  ELSE '{}'::jsonb END) AS eff) e,"
	    " jsonb_array_elements_text($4::jsonb) k"
	    " WHERE coalesce((e.eff -> $3 -> k ->> 'locked')::boolean, false)"
	    " ORDER BY k LIMIT 1", 4, p)) == NULL)
		return rc;
	if (PQntuples(res) > 0) {
		strlcpy(lk->key, PQgetvalue(res, 0, 0), sizeof(lk->key));
		strlcpy(lk->policy, PQgetvalue(res, 0, 1), sizeof(lk->policy));
		strlcpy(lk->policy_id, PQgetvalue(res, 0, 2),
		    sizeof(lk->policy_id));
		strlcpy(lk->group, PQgetvalue(res, 0, 3), sizeof(lk->group));
		strlcpy(lk->server, PQgetvalue(res, 0, 4), sizeof(lk->server));
		rc = QP_LOCKED;
	}
	PQclear(res);
	return rc;
}

int
qp_policy_create(PGconn *conn, int vs_id, int64_t group, const char *product,
    const char *name, const char *settings_json, const char *created_by,
    int64_t *id, int *revision, char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[6] = { vs, gid, product, name, settings_json,
			    created_by };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO policies (vs_id, group_id, product, name, settings,"
	    " created_by) VALUES ($1, $2::bigint, $3, $4, $5::jsonb, $6)"
	    " ON CONFLICT (group_id, product) DO NOTHING"
	    " RETURNING id, revision", 6, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QP_EXISTS;
	else {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*revision = atoi(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

int
qp_policy_update(PGconn *conn, int vs_id, int64_t id, const char *name,
    const char *settings_json, int *revision, char *err, size_t errlen)
{
	char		 vs[16], ids[24];
	const char	*p[4] = { vs, ids, name, settings_json };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE policies SET name = coalesce($3, name),"
	    " settings = $4::jsonb, revision = revision + 1, updated = now()"
	    " WHERE vs_id = $1 AND id = $2::bigint RETURNING revision",
	    4, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QA_NOTFOUND;
	else
		*revision = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int
qp_policy_delete(PGconn *conn, int vs_id, int64_t id, char *err,
    size_t errlen)
{
	char		 vs[16], ids[24];
	const char	*p[2] = { vs, ids };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM policies WHERE vs_id = $1 AND id = $2::bigint", 2,
	    p)) == NULL)
		return rc;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		rc = QA_NOTFOUND;
	PQclear(res);
	return rc;
}

int
qp_effective_device(PGconn *conn, int vs_id, const char *device_id,
    const char *scopes, const char *product, json_t **settings, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[4] = { vs, scopes, device_id, product };
	PGresult	*res;
	json_t		*eff, *o, *e;
	const char	*k;
	int		 rc;

	*settings = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " SCOPE_TREE("$2") ","
	    " d AS (SELECT group_id FROM devices WHERE vs_id = $1"
	    "  AND id = $3::uuid"
	    "  AND ($2::bigint[] IS NULL OR group_id IN (SELECT id FROM scope)))"
	    " SELECT coalesce(e.eff -> $4, '{}')::text FROM d"
	    " LEFT JOIN canopy_policy_groups($1) e ON e.group_id = d.group_id",
	    4, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	eff = qp_jparse(PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((o = json_object()) == NULL || !json_is_object(eff)) {
		json_decref(o);
		json_decref(eff);
		snprintf(err, errlen, "effective policy: bad JSON");
		return DB_ERR;
	}
	json_object_foreach(eff, k, e)
		json_object_set_new(o, k, json_pack("{s:O,s:O,s:{s:O,s:O,s:O,"
		    "s:O,s:O?}}",
		    "value", json_object_get(e, "value"),
		    "locked", json_object_get(e, "locked"),
		    "source",
		    "group", json_object_get(e, "group"),
		    "group_id", json_object_get(e, "group_id"),
		    "policy", json_object_get(e, "policy"),
		    "policy_id", json_object_get(e, "policy_id"),
		    /* Inherited from a server above (010); else the API's. */
		    "server", json_object_get(e, "server")));
	json_decref(eff);
	*settings = o;
	return DB_OK;
}

void
qp_delivery_free(struct qp_delivery *d)
{
	size_t	 i;

	if (d == NULL)
		return;
	for (i = 0; i < d->ngroups; i++)
		free(d->groups[i].view);
	free(d->groups);
	free(d->targets);
	memset(d, 0, sizeof(*d));
}

static int
qp_gcmp(const void *a, const void *b)
{
	const struct qp_gpolicy *x = a, *y = b;

	return x->group < y->group ? -1 : x->group > y->group;
}

int
qp_delivery_subtree(PGconn *conn, int vs_id, int64_t group,
    struct qp_delivery *d, char *err, size_t errlen)
{
	char		 vs[16], gid[24];
	const char	*p[2] = { vs, gid };
	PGresult	*res;
	struct qp_gpolicy key, *g;
	size_t		 ng = 0, nt = 0;
	int		 rc, i, n;

	memset(d, 0, sizeof(*d));
	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	/*
	 * One statement: the groups' policies (device NULL) and, for each
	 * device whose acknowledged hash differs, one row naming its group.
	 * The hash is computed once per group, never per device.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE sub(id) AS ("
	    /* Group 0: every root (policies from above reach them all). */
	    "  SELECT id FROM groups WHERE vs_id = $1 AND (id = $2::bigint"
	    "   OR ($2::bigint = 0 AND parent IS NULL))"
	    "  UNION ALL"
	    "  SELECT g.id FROM groups g JOIN sub ON g.parent = sub.id"
	    "   WHERE g.vs_id = $1),"
	    " v AS MATERIALIZED (SELECT e.group_id,"
	    "  canopy_policy_view(e.eff) AS v FROM canopy_policy_groups($1) e"
	    "  WHERE e.group_id IN (SELECT id FROM sub)),"
	    " h AS MATERIALIZED (SELECT group_id, v, canopy_policy_hash(v) AS hash"
	    "  FROM v)"
	    " SELECT h.group_id, h.hash, h.v::text, NULL FROM h"
	    " UNION ALL"
	    " SELECT d.group_id, NULL, NULL, d.id::text FROM devices d"
	    "  JOIN h ON h.group_id = d.group_id WHERE d.vs_id = $1"
	    "  AND d.policy_hash IS DISTINCT FROM h.hash"
	    /* No policy, and never had one: nothing to tell it. */
	    "  AND NOT (h.v = '{}'::jsonb AND d.policy_hash IS NULL)", 2, p))
	    == NULL)
		return rc;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		if (PQgetisnull(res, i, 3))
			ng++;
		else
			nt++;
	d->groups = calloc(ng ? ng : 1, sizeof(*d->groups));
	d->targets = calloc(nt ? nt : 1, sizeof(*d->targets));
	if (d->groups == NULL || d->targets == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		if (!PQgetisnull(res, i, 3))
			continue;
		g = &d->groups[d->ngroups];
		g->group = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		strlcpy(g->hash, PQgetvalue(res, i, 1), sizeof(g->hash));
		if ((g->view = strdup(PQgetvalue(res, i, 2))) == NULL)
			goto oom;
		d->ngroups++;
	}
	qsort(d->groups, d->ngroups, sizeof(*d->groups), qp_gcmp);
	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 3))
			continue;
		key.group = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if ((g = bsearch(&key, d->groups, d->ngroups,
		    sizeof(*d->groups), qp_gcmp)) == NULL)
			continue;
		strlcpy(d->targets[d->ntargets].device, PQgetvalue(res, i, 3),
		    sizeof(d->targets[0].device));
		d->targets[d->ntargets++].gi = g - d->groups;
	}
	PQclear(res);
	return DB_OK;
 oom:
	PQclear(res);
	qp_delivery_free(d);
	snprintf(err, errlen, "out of memory");
	return DB_ERR;
}

int
qp_delivery_devices(PGconn *conn, const char *const *devices, size_t n,
    struct qp_delivery *d, char *err, size_t errlen)
{
	json_t		*a;
	char		*ids;
	const char	*p[1];
	PGresult	*res;
	size_t		 i;
	int		 rc, r, nr;

	memset(d, 0, sizeof(*d));
	if ((a = json_array()) == NULL)
		goto oom0;
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(devices[i]));
	ids = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (ids == NULL)
		goto oom0;
	p[0] = ids;
	/* Each virtual server's tree once, whatever the number of devices. */
	res = db_exec(conn, &rc, err, errlen,
	    "WITH d AS MATERIALIZED (SELECT id, vs_id, group_id, policy_hash"
	    "  FROM devices"
	    "  WHERE id IN (SELECT x::uuid FROM"
	    "  jsonb_array_elements_text($1::jsonb) x)),"
	    " v AS MATERIALIZED (SELECT e.group_id, canopy_policy_view(e.eff) AS v"
	    "  FROM (SELECT DISTINCT vs_id FROM d) s"
	    "  CROSS JOIN LATERAL canopy_policy_groups(s.vs_id) e"
	    "  WHERE e.group_id IN (SELECT group_id FROM d)),"
	    " h AS MATERIALIZED (SELECT group_id, v, canopy_policy_hash(v) AS hash"
	    "  FROM v)"
	    " SELECT d.id::text, d.group_id, h.hash, h.v::text FROM d"
	    " JOIN h ON h.group_id = d.group_id"
	    /* No policy, and never had one: nothing to tell it. */
	    " WHERE NOT (h.v = '{}'::jsonb AND d.policy_hash IS NULL)", 1, p);
	free(ids);
	if (res == NULL)
		return rc;
	nr = PQntuples(res);
	d->groups = calloc(nr ? nr : 1, sizeof(*d->groups));
	d->targets = calloc(nr ? nr : 1, sizeof(*d->targets));
	if (d->groups == NULL || d->targets == NULL) {
		PQclear(res);
		qp_delivery_free(d);
		goto oom0;
	}
	for (r = 0; r < nr; r++) {
		struct qp_gpolicy *g = &d->groups[r];

		g->group = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		strlcpy(g->hash, PQgetvalue(res, r, 2), sizeof(g->hash));
		if ((g->view = strdup(PQgetvalue(res, r, 3))) == NULL) {
			PQclear(res);
			qp_delivery_free(d);
			goto oom0;
		}
		d->ngroups++;
		strlcpy(d->targets[r].device, PQgetvalue(res, r, 0),
		    sizeof(d->targets[r].device));
		d->targets[r].gi = r;
		d->ntargets++;
	}
	PQclear(res);
	return DB_OK;
 oom0:
	snprintf(err, errlen, "out of memory");
	return DB_ERR;
}

int
qp_ack(PGconn *conn, const char *acks_json, char *err, size_t errlen)
{
	const char	*p[1] = { acks_json };
	PGresult	*res;
	int		 rc;

	/* The last of a device's acks in the batch wins. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE devices d SET policy_hash = x.hash FROM ("
	    " SELECT DISTINCT ON (id) id, hash FROM"
	    " ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id uuid, hash text))"
	    "  WITH ORDINALITY AS r(id, hash, n)"
	    " ORDER BY id, n DESC) x WHERE d.id = x.id", 1, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}
