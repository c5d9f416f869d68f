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
 * The policies API (srv/api.h explains route tables): policies with locks
 * per group and product, and a device's effective policy.  Writes check
 * the locks of the groups above and, once committed, push the new
 * effective policies to the connected agents of the group's subtree
 * (srv/policy.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"

#include "db/db.h"
#include "db/q_api.h"
#include "db/q_policy.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"
#include "modules.h"

#define POLICY_PRODUCT_DEFAULT	"canopy-agent"

static const struct api_field pol_create_schema[] = {
	{ "group",	AF_REF,    1, 1, API_PATH_MAX, NULL },
	{ "product",	AF_STRING, 1, 1, POLICY_PRODUCT_MAX, NULL },
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
};
#define PC_GROUP	0
#define PC_PRODUCT	1
#define PC_NAME		2

static const struct api_field pol_update_schema[] = {
	{ "name",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
};
#define PU_NAME		0

static const char *
pol_scopes(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

/*
 * Parses the body: "settings" (required) is checked and normalised here,
 * the other fields against schema.  0, or -1 with the 400 answered.
 */
static int
pol_body(struct api_req *ar, const struct api_field *schema, size_t n,
    struct api_value *vals, json_t **rest, json_t **settings)
{
	json_t		*root, *s;
	char		 msg[512], *js;
	int		 r;

	*rest = *settings = NULL;
	root = ar->body_text != NULL ? json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		/* Its message for what is wrong with the body as a whole. */
		if (api_json_validate(ar->body_text ? ar->body_text : "",
		    ar->body_text ? ar->body_len : 0, schema, n, rest, vals,
		    msg, sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return -1;
		}
		json_decref(*rest);
		*rest = NULL;
		api_req_fail(ar, 400, "bad_request", "settings: required");
		return -1;
	}
	if ((s = json_object_get(root, "settings")) == NULL) {
		json_decref(root);
		api_req_fail(ar, 400, "bad_request", "settings: required");
		return -1;
	}
	if (qp_settings_normalize(s, settings, msg, sizeof(msg)) == -1) {
		json_decref(root);
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return -1;
	}
	json_object_del(root, "settings");
	js = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	r = js != NULL ? api_json_validate(js, strlen(js), schema, n, rest,
	    vals, msg, sizeof(msg)) : -1;
	free(js);
	if (r == -1) {
		json_decref(*settings);
		*settings = NULL;
		api_req_fail(ar, 400, "bad_request", "%s", js ? msg :
		    "body: out of memory");
		return -1;
	}
	return 0;
}

/* The policy id of the path: a positive integer, else no such policy. */
static int
pol_id(struct api_req *ar, int64_t *id)
{
	char	*end;
	long long v;

	v = strtoll(ar->pp[0], &end, 10);
	if (ar->pp[0][0] < '0' || ar->pp[0][0] > '9' || *end != '\0' ||
	    v <= 0) {
		api_req_fail(ar, 404, "not_found", "no such policy");
		return -1;
	}
	*id = v;
	return 0;
}

/* Remembers where the change was, for pol_after on the loop. */
static void
pol_mark(struct api_req *ar, int vs_id, int64_t group)
{
	snprintf(ar->id, sizeof(ar->id), "%d:%" PRId64, vs_id, group);
}

static void
pol_after(struct api_req *ar)
{
	int		 vs_id;
	long long	 group;

	if (sscanf(ar->id, "%d:%lld", &vs_id, &group) == 2 && group > 0)
		policy_push_group(ar->cd, vs_id, group);
}

/* The answer to a write of keys locked above. */
static void
pol_locked(struct api_req *ar, const struct qp_lock *lk)
{
	api_req_fail(ar, 409, "locked", "settings.%s: locked by policy "
	    "'%.255s' on %.1024s of server '%.255s'", lk->key, lk->policy,
	    lk->group, lk->server[0] != '\0' ? lk->server : ar->server);
}

static int
pol_lock_check(PGconn *conn, struct api_req *ar, int vs_id, int64_t group,
    const char *product, json_t *old, json_t *new, char *err, size_t errlen)
{
	struct qp_lock	 lk;
	json_t		*keys;
	char		*kj;
	int		 rc;

	if ((keys = qp_changed_keys(old, new)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	if (json_array_size(keys) == 0) {
		json_decref(keys);
		return DB_OK;
	}
	kj = json_dumps(keys, JSON_COMPACT);
	json_decref(keys);
	if (kj == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	rc = qp_lock_check(conn, vs_id, group, product, kj, &lk, err, errlen);
	free(kj);
	if (rc == QP_LOCKED)
		pol_locked(ar, &lk);
	return rc;
}

static int
pol_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[3];
	json_t		*rest = NULL, *settings = NULL;
	const char	*product, *name;
	char		*sj = NULL, ids[24];
	int64_t		 gid = 0, id = 0;
	int		 rc, rev = 0;

	if (pol_body(ar, pol_create_schema, 3, vals, &rest, &settings) == -1)
		return DB_OK;
	product = vals[PC_PRODUCT].s;
	name = vals[PC_NAME].s;
	if (!qp_product_valid(product)) {
		api_req_fail(ar, 400, "bad_request", "product: 1..%d printable "
		    "characters without spaces or '/'", POLICY_PRODUCT_MAX);
		goto out;
	}
	if ((sj = json_dumps(settings, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = DB_ERR;
		goto out_rc;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out_rc;
	rc = qa_group_resolve(conn, au->vs_id, vals[PC_GROUP].s, &gid, err,
	    errlen);
	if (rc == DB_OK)
		rc = qa_group_in_scope(conn, au->vs_id, gid,
		    pol_scopes(au->write_scopes), err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "group: no group '%.300s'",
		    vals[PC_GROUP].s);
		goto out;
	}
	if (rc == DB_OK)
		rc = pol_lock_check(conn, ar, au->vs_id, gid, product, NULL,
		    settings, err, errlen);
	if (rc == QP_LOCKED) {
		db_rollback(conn);
		goto out;
	}
	if (rc == DB_OK)
		rc = qp_policy_create(conn, au->vs_id, gid, product, name, sj,
		    au->admin.name, &id, &rev, err, errlen);
	if (rc == QP_EXISTS) {
		db_rollback(conn);
		api_req_fail(ar, 409, "conflict", "group: it has a policy for "
		    "product '%s' already; change that one", product);
		goto out;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		goto out_rc;
	}
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	api_audit(conn, ar, au->vs_id, au->admin.name, "policy_create", ids,
	    json_pack("{s:n,s:{s:s,s:I,s:s,s:s,s:O,s:i}}", "before", "after",
	    "id", ids, "group", (json_int_t)gid, "product", product,
	    "name", name, "settings", settings, "revision", rev));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto out_rc;
	pol_mark(ar, au->vs_id, gid);
	ar->resp = json_pack("{s:s,s:i}", "id", ids, "revision", rev);
	ar->status = 201;
 out:
	rc = DB_OK;
 out_rc:
	free(sj);
	json_decref(rest);
	json_decref(settings);
	return rc;
}

static int
pol_update(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[1];
	json_t		*rest = NULL, *settings = NULL, *old = NULL, *after;
	const char	*product;
	char		*sj = NULL, ids[24];
	int64_t		 id, gid = 0;
	int		 rc, rev = 0;

	if (pol_id(ar, &id) == -1)
		return DB_OK;
	if (pol_body(ar, pol_update_schema, 1, vals, &rest, &settings) == -1)
		return DB_OK;
	if ((sj = json_dumps(settings, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = DB_ERR;
		goto out_rc;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out_rc;
	rc = qp_policy_get(conn, au->vs_id, id, pol_scopes(au->write_scopes),
	    &old, &gid, err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "no such policy");
		goto out;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		goto out_rc;
	}
	product = json_string_value(json_object_get(old, "product"));
	rc = pol_lock_check(conn, ar, au->vs_id, gid, product ? product : "",
	    json_object_get(old, "settings"), settings, err, errlen);
	if (rc == QP_LOCKED) {
		db_rollback(conn);
		goto out;
	}
	if (rc == DB_OK)
		rc = qp_policy_update(conn, au->vs_id, id,
		    vals[PU_NAME].present ? vals[PU_NAME].s : NULL, sj, &rev,
		    err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "no such policy");
		goto out;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		goto out_rc;
	}
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	after = json_deep_copy(old);
	if (after != NULL) {
		json_object_set(after, "settings", settings);
		json_object_set_new(after, "revision", json_integer(rev));
		if (vals[PU_NAME].present)
			json_object_set_new(after, "name",
			    json_string(vals[PU_NAME].s));
		json_object_del(after, "updated");
	}
	json_object_del(old, "updated");
	api_audit(conn, ar, au->vs_id, au->admin.name, "policy_update", ids,
	    json_pack("{s:O,s:o?}", "before", old, "after", after));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto out_rc;
	pol_mark(ar, au->vs_id, gid);
	ar->resp = json_pack("{s:s,s:i}", "id", ids, "revision", rev);
	ar->status = 200;
 out:
	rc = DB_OK;
 out_rc:
	free(sj);
	json_decref(old);
	json_decref(rest);
	json_decref(settings);
	return rc;
}

static int
pol_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t		*old = NULL;
	char		 ids[24];
	int64_t		 id, gid = 0;
	int		 rc;

	if (pol_id(ar, &id) == -1)
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qp_policy_get(conn, au->vs_id, id, pol_scopes(au->write_scopes),
	    &old, &gid, err, errlen);
	if (rc == DB_OK)
		rc = qp_policy_delete(conn, au->vs_id, id, err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		json_decref(old);
		api_req_fail(ar, 404, "not_found", "no such policy");
		return DB_OK;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		json_decref(old);
		return rc;
	}
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	api_audit(conn, ar, au->vs_id, au->admin.name, "policy_delete", ids,
	    json_pack("{s:o,s:n}", "before", old, "after"));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return rc;
	pol_mark(ar, au->vs_id, gid);
	ar->status = 204;
	return DB_OK;
}

static int
pol_get(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t		*p;
	int64_t		 id;
	int		 rc;

	if (pol_id(ar, &id) == -1)
		return DB_OK;
	rc = qp_policy_get(conn, au->vs_id, id, pol_scopes(au->read_scopes),
	    &p, NULL, err, errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such policy");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = p;
	ar->status = 200;
	return DB_OK;
}

static int
pol_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*group = api_query(ar, "group");
	const char	*product = api_query(ar, "product");
	const char	*scopes = pol_scopes(au->read_scopes);
	json_t		*a;
	int64_t		 gid = 0;
	int		 rc;

	if (product != NULL && !qp_product_valid(product)) {
		api_req_fail(ar, 400, "bad_request", "product: 1..%d printable "
		    "characters without spaces or '/'", POLICY_PRODUCT_MAX);
		return DB_OK;
	}
	if (group != NULL) {
		if (strlen(group) > API_PATH_MAX) {
			api_req_fail(ar, 400, "bad_request", "group: at most "
			    "%d bytes", API_PATH_MAX);
			return DB_OK;
		}
		rc = qa_group_resolve(conn, au->vs_id, group, &gid, err,
		    errlen);
		if (rc == DB_OK)
			rc = qa_group_in_scope(conn, au->vs_id, gid, scopes,
			    err, errlen);
		if (rc == QA_NOTFOUND) {
			api_req_fail(ar, 404, "not_found", "group: no group "
			    "'%.300s'", group);
			return DB_OK;
		}
		if (rc != DB_OK)
			return rc;
	}
	if ((rc = qp_policies_list(conn, au->vs_id, gid, product, scopes, &a,
	    err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "policies", a);
	ar->status = 200;
	return DB_OK;
}

static int
pol_effective(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*product = api_query(ar, "product");
	const char	*k;
	json_t		*s, *e;
	int		 rc;

	if (product == NULL)
		product = POLICY_PRODUCT_DEFAULT;
	if (!qp_product_valid(product)) {
		api_req_fail(ar, 400, "bad_request", "product: 1..%d printable "
		    "characters without spaces or '/'", POLICY_PRODUCT_MAX);
		return DB_OK;
	}
	if (!api_uuid_valid(ar->pp[0])) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	rc = qp_effective_device(conn, au->vs_id, ar->pp[0],
	    pol_scopes(au->read_scopes), product, &s, err, errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	/* Local settings are this server's; inherited ones name theirs. */
	json_object_foreach(s, k, e)
		if (!json_is_string(json_object_get(json_object_get(e,
		    "source"), "server")))
			json_object_set_new(json_object_get(e, "source"),
			    "server", json_string(ar->server));
	ar->resp = json_pack("{s:s,s:s,s:o}", "device", ar->pp[0],
	    "product", product, "settings", s);
	ar->status = 200;
	return DB_OK;
}

const struct api_endpoint api_endpoints_policies[] = {
	{ EVHTTP_REQ_GET, "/policies", API_A_READ, pol_list, NULL },
	{ EVHTTP_REQ_POST, "/policies", API_A_ADMIN, pol_create, pol_after },
	{ EVHTTP_REQ_GET, "/policies/{}", API_A_READ, pol_get, NULL },
	{ EVHTTP_REQ_PUT, "/policies/{}", API_A_ADMIN, pol_update,
	    pol_after },
	{ EVHTTP_REQ_DELETE, "/policies/{}", API_A_ADMIN, pol_delete,
	    pol_after },
	{ EVHTTP_REQ_GET, "/devices/{}/effective-policy", API_A_READ,
	    pol_effective, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
