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
 * Virtual servers (tenants): POST/GET /vservers, DELETE /vservers/{name}.
 * Only an administrator of main with an unrestricted scope manages them.
 * Main's other accounts get 403; a tenant's accounts get 404, as if there
 * were no such resource: they must not learn that other tenants exist.
 * These statements span tenants, so they run in db_system mode (the job
 * path puts the connection back in system mode afterwards anyway).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"

#include "db/db.h"
#include "db/q_vservers.h"

#include "api.h"
#include "api_json.h"

static const struct api_field vs_create_schema[] = {
	{ "name",	AF_STRING, 1, 1, VS_NAME_MAX, NULL },
};
#define VS_CREATE_NAME	0

/* 0 if it may go on; else the answer is set. */
static int
vs_allowed(struct api_req *ar, const struct api_auth *au)
{
	size_t	 i;

	if (au->admin.vs_id != 0) {
		api_req_fail(ar, 404, "not_found", "no such resource");
		return -1;
	}
	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 0;
	api_req_fail(ar, 403, "forbidden", "managing virtual servers needs "
	    "the administrator role over the whole of main");
	return -1;
}

/* Letters, digits, '.', '_' and '-': names appear in paths and logins. */
static int
vs_name_ok(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > VS_NAME_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

static int
vs_system(PGconn *conn, char *err, size_t errlen)
{
	if (db_system(conn) == -1) {
		snprintf(err, errlen, "cannot leave the tenant: %s",
		    PQerrorMessage(conn));
		return db_errclass(conn);
	}
	return DB_OK;
}

static int
vs_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[1];
	json_t		*root = NULL;
	const char	*name;
	char		 msg[512];
	int		 rc, id = 0;

	if (vs_allowed(ar, au) == -1)
		return DB_OK;
	memset(vals, 0, sizeof(vals));
	if (api_json_validate(ar->body_text, ar->body_len, vs_create_schema,
	    1, &root, vals, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	name = vals[VS_CREATE_NAME].s;
	if (!vs_name_ok(name)) {
		api_req_fail(ar, 400, "bad_request", "name: 1..%d characters "
		    "of A-Z, a-z, 0-9, '.', '_' and '-'", VS_NAME_MAX);
		goto out;
	}
	if (strcmp(name, "main") == 0) {
		api_req_fail(ar, 409, "conflict", "name: 'main' is the "
		    "physical server's own space");
		goto out;
	}
	if ((rc = vs_system(conn, err, errlen)) != DB_OK ||
	    (rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out_rc;
	rc = qv_create(conn, name, &id, err, errlen);
	if (rc == QV_EXISTS) {
		db_rollback(conn);
		api_req_fail(ar, 409, "conflict", "name: a virtual server "
		    "named '%s' exists", name);
		goto out;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		goto out_rc;
	}
	api_audit(conn, ar, 0, au->admin.name, "vserver_create", name,
	    json_pack("{s:i,s:s}", "id", id, "name", name));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto out_rc;
	ar->resp = json_pack("{s:i,s:s}", "id", id, "name", name);
	ar->status = 201;
 out:
	rc = DB_OK;
 out_rc:
	json_decref(root);
	return rc;
}

static int
vs_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if (vs_allowed(ar, au) == -1)
		return DB_OK;
	if ((rc = vs_system(conn, err, errlen)) != DB_OK)
		return rc;
	if ((rc = qv_list(conn, &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "vservers", a);
	ar->status = 200;
	return DB_OK;
}

static int
vs_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*name = ar->pp[0], *f;
	char		 msg[256];
	long long	 ndev = 0;
	int		 rc, id = 0, force = 0;

	if (vs_allowed(ar, au) == -1)
		return DB_OK;
	if ((f = api_query(ar, "force")) != NULL &&
	    api_param_bool("force", f, &force, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if (strcmp(name, "main") == 0) {
		api_req_fail(ar, 409, "conflict", "'main' is the physical "
		    "server's own space and cannot be deleted");
		return DB_OK;
	}
	if (!vs_name_ok(name)) {
		api_req_fail(ar, 404, "not_found", "no virtual server named "
		    "'%.64s'", name);
		return DB_OK;
	}
	if ((rc = vs_system(conn, err, errlen)) != DB_OK ||
	    (rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qv_delete(conn, name, force, &id, &ndev, err, errlen);
	if (rc == QV_NOTFOUND || rc == QV_BUSY) {
		db_rollback(conn);
		if (rc == QV_NOTFOUND)
			api_req_fail(ar, 404, "not_found", "no virtual server "
			    "named '%s'", name);
		else
			api_req_fail(ar, 409, "conflict", "virtual server '%s' "
			    "still has %lld device(s); delete with ?force=1 to "
			    "remove it with everything in it", name, ndev);
		return DB_OK;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		return rc;
	}
	api_audit(conn, ar, 0, au->admin.name, "vserver_delete", name,
	    json_pack("{s:i,s:s,s:I,s:b}", "id", id, "name", name,
	    "devices", (json_int_t)ndev, "force", force));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return rc;
	ar->status = 204;
	return DB_OK;
}

const struct api_endpoint api_endpoints_vservers[] = {
	/* API_A_READ: vs_allowed decides, so tenants see a plain 404. */
	{ EVHTTP_REQ_POST,	"/vservers",	API_A_READ,
	    vs_create, NULL },
	{ EVHTTP_REQ_GET,	"/vservers",	API_A_READ,
	    vs_list, NULL },
	{ EVHTTP_REQ_DELETE,	"/vservers/{}",	API_A_READ,
	    vs_delete, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
