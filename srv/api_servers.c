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
 * The server tree (issue 4): GET /servers, POST /servers/children,
 * DELETE /servers/children/{name}, GET /reports/status.  Everything reads
 * the local mirrors that the links (hierarchy/) keep; nothing here talks to
 * another server.  The tree belongs to main: a tenant's accounts get 404
 * for the tree, as for /vservers, and never see mirrored devices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#include "db/db.h"
#include "db/q_api.h"
#include "db/q_servers.h"
#include "hierarchy/hierarchy.h"

#include "api.h"
#include "canopyd.h"
#include "api_json.h"

static const struct api_field child_schema[] = {
	{ "name",	AF_STRING, 1, 1, HIER_CHILD_NAME_MAX, NULL },
	{ "group",	AF_REF, 0, 1, API_PATH_MAX, NULL },
	{ "ttl_s",	AF_INT, 0, 1, HIER_TOKEN_TTL_MAX_S, NULL },
};
#define CH_NAME		0
#define CH_GROUP	1
#define CH_TTL		2

/* 0 if a caller may read the tree: anyone of main. */
static int
srv_main(struct api_req *ar, const struct api_auth *au)
{
	if (au->admin.vs_id != 0 || au->vs_id != 0) {
		api_req_fail(ar, 404, "not_found", "no such resource");
		return -1;
	}
	return 0;
}

/* 0 if it may change the tree: an administrator of all of main. */
static int
srv_admin(struct api_req *ar, const struct api_auth *au)
{
	size_t	 i;

	if (srv_main(ar, au) == -1)
		return -1;
	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 0;
	api_req_fail(ar, 403, "forbidden", "managing child servers needs "
	    "the administrator role over the whole of main");
	return -1;
}

/* Letters, digits, '.', '_' and '-': names appear in paths and configs. */
static int
srv_name_ok(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > HIER_CHILD_NAME_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

static int
srv_child_add(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[3];
	json_t		*root = NULL;
	const char	*name;
	char		 msg[512], hash[65], expires[32], prefix[9];
	char		 gids[24];
	char		*token = NULL;
	int64_t		 gid = 0, link_id = 0;
	int		 rc, ttl;

	if (srv_admin(ar, au) == -1)
		return DB_OK;
	memset(vals, 0, sizeof(vals));
	if (api_json_validate(ar->body_text, ar->body_len, child_schema, 3,
	    &root, vals, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	name = vals[CH_NAME].s;
	if (!srv_name_ok(name)) {
		api_req_fail(ar, 400, "bad_request", "name: 1..%d characters "
		    "of A-Z, a-z, 0-9, '.', '_' and '-'", HIER_CHILD_NAME_MAX);
		goto out;
	}
	ttl = vals[CH_TTL].present ? (int)vals[CH_TTL].i :
	    HIER_TOKEN_TTL_DEFAULT_S;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out_rc;
	if (vals[CH_GROUP].present) {
		rc = api_group_ref(conn, ar, au, "group", vals[CH_GROUP].s,
		    NULL, &gid, err, errlen);
		if (rc != DB_OK) {
			db_rollback(conn);
			if (rc == QA_NOTFOUND)
				goto out;
			goto out_rc;
		}
	}
	if ((token = token_new(32)) == NULL) {
		db_rollback(conn);
		snprintf(err, errlen, "token_new failed");
		rc = DB_ERR;
		goto out_rc;
	}
	/* Only the hash is stored: the token is shown this once. */
	sha256_hex(token, strlen(token), hash);
	rc = qs_child_create(conn, name, gid, hash, ttl, au->admin.name,
	    &link_id, expires, err, errlen);
	if (rc == QS_EXISTS) {
		db_rollback(conn);
		api_req_fail(ar, 409, "conflict", "name: a child server named "
		    "'%s' exists", name);
		goto out;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		goto out_rc;
	}
	snprintf(gids, sizeof(gids), "%lld", (long long)gid);
	/* Enough to match the row, never enough to use. */
	strlcpy(prefix, hash, sizeof(prefix));
	api_audit(conn, ar, 0, au->admin.name, "server_child_add", name,
	    json_pack("{s:I,s:s?,s:s,s:s}", "link", (json_int_t)link_id,
	    "group", gid > 0 ? gids : NULL, "expires", expires,
	    "hash_prefix", prefix));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto out_rc;
	ar->resp = json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:s?}",
	    "token", token,
	    "ca_pem", ar->cd->pki.ca_pem,
	    "fingerprint", ar->cd->pki.ca_fingerprint,
	    "name", name,
	    "expires", expires,
	    "group", gid > 0 ? gids : NULL);
	ar->status = 201;
 out:
	rc = DB_OK;
 out_rc:
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	json_decref(root);
	return rc;
}

static int
srv_child_remove(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*name = ar->pp[0];
	int64_t		 link_id = 0;
	int		 rc;

	if (srv_admin(ar, au) == -1)
		return DB_OK;
	if (!srv_name_ok(name)) {
		api_req_fail(ar, 404, "not_found", "no child server named "
		    "'%.64s'", name);
		return DB_OK;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	/* Its mirrors cascade; their triggers tell the servers above. */
	rc = qs_child_delete(conn, name, &link_id, err, errlen);
	if (rc == QS_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "no child server named "
		    "'%s'", name);
		return DB_OK;
	}
	if (rc != DB_OK) {
		db_rollback(conn);
		return rc;
	}
	api_audit(conn, ar, 0, au->admin.name, "server_child_remove", name,
	    json_pack("{s:I}", "link", (json_int_t)link_id));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return rc;
	ar->status = 204;
	return DB_OK;
}

/* On the loop, once the row is gone: close the live link, if any. */
static void
srv_child_remove_after(struct api_req *ar)
{
	if (ar->cd != NULL)
		hier_link_drop(ar->cd, ar->pp[0]);
}

static int
srv_tree(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*t;
	int	 rc;

	if (srv_main(ar, au) == -1)
		return DB_OK;
	/* It counts the devices of every virtual server of this one. */
	if (db_system(conn) == -1) {
		snprintf(err, errlen, "cannot leave the tenant: %s",
		    PQerrorMessage(conn));
		return db_errclass(conn);
	}
	if ((rc = qs_tree(conn, ar->server, &t, err, errlen)) != DB_OK)
		return rc;
	ar->resp = t;
	ar->status = 200;
	return DB_OK;
}

static int
srv_report_status(PGconn *conn, struct api_req *ar,
    const struct api_auth *au, char *err, size_t errlen)
{
	const char	*v;
	char		 msg[256];
	json_t		*r;
	int		 rc, hier = 0;

	if ((v = api_query(ar, "hierarchy")) != NULL &&
	    api_param_bool("hierarchy", v, &hier, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	/* Tenants never see the mirrors: their own devices only. */
	if (au->vs_id != 0)
		hier = 0;
	if ((rc = qs_status_report(conn, au->vs_id, hier,
	    au->vs_id != 0 ? au->vs_name : ar->server, &r, err, errlen)) !=
	    DB_OK)
		return rc;
	ar->resp = r;
	ar->status = 200;
	return DB_OK;
}

/*
 * GET /devices/{origin uuid}/{id}: a device mirrored from a server below,
 * by the global id GET /devices?hierarchy=1 gave.  Main's callers with an
 * unrestricted scope only: the mirrors are not in main's group tree.
 */
static int
srv_mirror_device(PGconn *conn, struct api_req *ar,
    const struct api_auth *au, char *err, size_t errlen)
{
	char	 oid[2 * (API_PATH_MAX + 1)];
	json_t	*d;
	int	 rc;

	/*
	 * The pattern also matches the verbs of /devices/{id}/...: a verb
	 * with the wrong method still gets its 405 (only "move" is not GET).
	 */
	if (strcmp(ar->pp[1], "move") == 0) {
		ar->allow = "POST";
		api_req_fail(ar, 405, "method_not_allowed", "use POST");
		return DB_OK;
	}
	/* Device ids are uuids on every server. */
	if (au->vs_id != 0 || au->read_scopes[0] != '\0' ||
	    !api_uuid_valid(ar->pp[0]) || !api_uuid_valid(ar->pp[1])) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	snprintf(oid, sizeof(oid), "%s/%s", ar->pp[0], ar->pp[1]);
	rc = qs_mirror_device(conn, oid, &d, err, errlen);
	if (rc == QS_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = d;
	ar->status = 200;
	return DB_OK;
}

const struct api_endpoint api_endpoints_servers[] = {
	/* API_A_READ: srv_admin decides, so tenants see a plain 404. */
	{ EVHTTP_REQ_GET,	"/servers",		API_A_READ,
	    srv_tree, NULL },
	{ EVHTTP_REQ_POST,	"/servers/children",	API_A_READ,
	    srv_child_add, NULL },
	{ EVHTTP_REQ_DELETE,	"/servers/children/{}",	API_A_READ,
	    srv_child_remove, srv_child_remove_after },
	{ EVHTTP_REQ_GET,	"/reports/status",	API_A_READ,
	    srv_report_status, NULL },
	/* After the modules' /devices/{}/<verb>: those match first. */
	{ EVHTTP_REQ_GET,	"/devices/{}/{}",	API_A_READ,
	    srv_mirror_device, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
