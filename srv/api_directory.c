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
 * LDAP directory sources and objects: /directory/... (issue 5).  Sources
 * act on the whole virtual server: changing them needs an administrator
 * without a group scope.  Bind passwords and keytabs are sealed with the
 * master key (common/seal.h) before they reach the database and are never
 * returned.  A poll is asked for here (202) and done by the pollers
 * (directory/directory.c), woken by the after hook on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "log.h"
#include "seal.h"
#include "util.h"

#include "db/db.h"
#include "db/q_directory.h"
#include "directory/directory.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"

static const char *const ds_flavors[] = {
	"ad", "samba", "freeipa", "aldpro", "openldap", NULL
};
static const char *const ds_methods[] = { "simple", "gssapi", NULL };
static const char *const ds_types[] = {
	"computer", "user", "group", "ou", NULL
};

static const struct api_field ds_schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "flavor",	AF_ENUM, 1, 0, 0, ds_flavors },
	{ "url",	AF_STRING, 1, 8, 1024, NULL },
	{ "base_dn",	AF_STRING, 1, 3, LDAPVAL_DN_MAX, NULL },
	{ "starttls",	AF_BOOL, 0, 0, 0, NULL },
	{ "tls_verify",	AF_BOOL, 0, 0, 0, NULL },
	{ "ca_file",	AF_STRING, 0, 1, 1024, NULL },
	{ "realm",	AF_STRING, 0, 1, 255, NULL },
	{ "interval_s",	AF_INT, 0, DIR_INTERVAL_MIN_S, DIR_INTERVAL_MAX_S,
	    NULL },
};
#define DS_NAME		0
#define DS_FLAVOR	1
#define DS_URL		2
#define DS_BASE		3
#define DS_STARTTLS	4
#define DS_VERIFY	5
#define DS_CA		6
#define DS_REALM	7
#define DS_INTERVAL	8

static const struct api_field ds_bind_schema[] = {
	{ "method",	AF_ENUM, 1, 0, 0, ds_methods },
	{ "dn",		AF_STRING, 0, 1, LDAPVAL_DN_MAX, NULL },
	{ "password",	AF_STRING, 0, 1, 1024, NULL },
	{ "principal",	AF_STRING, 0, 3, 512, NULL },
	{ "keytab_b64",	AF_STRING, 0, 4, DIR_SECRET_MAX * 4 / 3 + 4, NULL },
};
#define DB_METHOD	0
#define DB_DN		1
#define DB_PASSWORD	2
#define DB_PRINCIPAL	3
#define DB_KEYTAB	4

static const struct api_field ds_poll_schema[] = {
	{ "full",	AF_BOOL, 0, 0, 0, NULL },
};

#define NF(s)	(sizeof(s) / sizeof((s)[0]))

static int
ds_may_write(struct api_req *ar, const struct api_auth *au)
{
	size_t	 i;

	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 1;
	api_req_fail(ar, 403, "forbidden", "directory sources act on the "
	    "whole virtual server: this needs the administrator role "
	    "without a group scope");
	return 0;
}

static int
ds_end(PGconn *conn, struct api_req *ar, int rc, char *err, size_t errlen)
{
	if (rc != DB_OK || ar->status < 200 || ar->status > 299) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

/*
 * The body without "bind" checked against ds_schema into v, the
 * bind object into bv.  -1 with msg set.
 */
static int
ds_body(struct api_req *ar, struct api_value *v, struct api_value *bv,
    json_t **root, json_t **broot, char *msg, size_t msglen)
{
	json_t	*obj, *b = NULL;
	char	*rest, *btext, m[400];
	int	 r;

	*root = *broot = NULL;
	obj = ar->body_text != NULL ? json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return api_json_validate(ar->body_text ? ar->body_text : "",
		    ar->body_text ? ar->body_len : 0, ds_schema, NF(ds_schema),
		    root, v, msg, msglen);
	}
	if ((b = json_object_get(obj, "bind")) == NULL || json_is_null(b)) {
		json_decref(obj);
		snprintf(msg, msglen, "bind: required");
		return -1;
	}
	if (!json_is_object(b)) {
		json_decref(obj);
		snprintf(msg, msglen, "bind: must be an object");
		return -1;
	}
	btext = json_dumps(b, JSON_COMPACT);
	json_object_del(obj, "bind");
	rest = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (btext == NULL || rest == NULL) {
		free(btext);
		free(rest);
		snprintf(msg, msglen, "body: out of memory");
		return -1;
	}
	r = api_json_validate(rest, strlen(rest), ds_schema, NF(ds_schema),
	    root, v, msg, msglen);
	free(rest);
	if (r == 0 && api_json_validate(btext, strlen(btext), ds_bind_schema,
	    NF(ds_bind_schema), broot, bv, m, sizeof(m)) == -1) {
		snprintf(msg, msglen, "bind.%s", m);
		json_decref(*root);
		*root = NULL;
		r = -1;
	}
	free(btext);
	return r;
}

static int
ds_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	/* More fields than ar->vals (API_VALS_MAX) holds: our own arrays. */
	struct api_value	 v[NF(ds_schema)];
	struct api_value	 bv[NF(ds_bind_schema)];
	struct qd_new_source	 ns;
	json_t			*root = NULL, *broot = NULL, *src = NULL;
	char			 msg[512], *pw = NULL, *kt = NULL;
	uint8_t			*ktraw = NULL;
	size_t			 ktlen = 0;
	int			 rc = DB_OK, gss;

	if (!ds_may_write(ar, au))
		return DB_OK;
	memset(v, 0, sizeof(v));
	memset(bv, 0, sizeof(bv));
	if (ds_body(ar, v, bv, &root, &broot, msg, sizeof(msg)) == -1)
		goto bad;
	if (strncasecmp(v[DS_URL].s, "ldap://", 7) != 0 &&
	    strncasecmp(v[DS_URL].s, "ldaps://", 8) != 0) {
		snprintf(msg, sizeof(msg), "url: must start with ldap:// or "
		    "ldaps://");
		goto bad;
	}
	if (strchr(v[DS_BASE].s, '=') == NULL) {
		snprintf(msg, sizeof(msg), "base_dn: not a distinguished name "
		    "(\"DC=corp,DC=example,DC=com\")");
		goto bad;
	}
	gss = strcmp(bv[DB_METHOD].s, "gssapi") == 0;
	if (!gss && (!bv[DB_DN].present || !bv[DB_PASSWORD].present)) {
		snprintf(msg, sizeof(msg), "bind.%s: required for a simple "
		    "bind", bv[DB_DN].present ? "password" : "dn");
		goto bad;
	}
	if (gss && (!bv[DB_PRINCIPAL].present || !bv[DB_KEYTAB].present)) {
		snprintf(msg, sizeof(msg), "bind.%s: required for a GSSAPI "
		    "bind", bv[DB_PRINCIPAL].present ? "keytab_b64" :
		    "principal");
		goto bad;
	}
	if (gss && ((ktraw = b64_decode(bv[DB_KEYTAB].s,
	    strlen(bv[DB_KEYTAB].s), &ktlen)) == NULL || ktlen == 0 ||
	    ktlen > DIR_SECRET_MAX || ktraw[0] != 5)) {
		snprintf(msg, sizeof(msg), "bind.keytab_b64: not a base64 "
		    "Kerberos keytab of at most %d bytes", DIR_SECRET_MAX);
		goto bad;
	}
	if (!gss && (pw = seal_encrypt(ar->cd->pki.master_key, "ldap-bind",
	    bv[DB_PASSWORD].s, strlen(bv[DB_PASSWORD].s))) == NULL) {
		snprintf(err, errlen, "directory: cannot seal the password");
		rc = DB_ERR;
		goto done;
	}
	if (gss && (kt = seal_encrypt(ar->cd->pki.master_key, "keytab",
	    ktraw, ktlen)) == NULL) {
		snprintf(err, errlen, "directory: cannot seal the keytab");
		rc = DB_ERR;
		goto done;
	}
	memset(&ns, 0, sizeof(ns));
	ns.name = v[DS_NAME].s;
	ns.flavor = v[DS_FLAVOR].s;
	ns.url = v[DS_URL].s;
	ns.base_dn = v[DS_BASE].s;
	ns.bind_method = bv[DB_METHOD].s;
	ns.bind_dn = !gss ? bv[DB_DN].s : NULL;
	ns.bind_secret = pw;
	ns.principal = gss ? bv[DB_PRINCIPAL].s : NULL;
	ns.keytab_sealed = kt;
	ns.starttls = v[DS_STARTTLS].present ? v[DS_STARTTLS].b : 0;
	ns.tls_verify = v[DS_VERIFY].present ? v[DS_VERIFY].b : 1;
	ns.ca_file = v[DS_CA].present ? v[DS_CA].s : NULL;
	ns.realm = v[DS_REALM].present ? v[DS_REALM].s : NULL;
	ns.interval_s = v[DS_INTERVAL].present ? (int)v[DS_INTERVAL].i :
	    DIR_INTERVAL_DEFAULT_S;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qd_source_create(conn, au->vs_id, &ns, &src, err, errlen);
	if (rc == QD_CONFLICT) {
		api_req_fail(ar, 409, "conflict", "name: a directory source "
		    "named '%.64s' exists", v[DS_NAME].s);
		rc = DB_OK;
	} else if (rc == QD_TOOMANY) {
		api_req_fail(ar, 409, "conflict", "name: at most %d directory "
		    "sources per virtual server", DIR_SOURCES_MAX);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "directory_source_create", json_string_value(
		    json_object_get(src, "id")), json_pack("{s:O}", "after",
		    src));
		ar->resp = src;
		ar->status = 201;
	}
	rc = ds_end(conn, ar, rc, err, errlen);
	goto done;
 bad:
	api_req_fail(ar, 400, "bad_request", "%s", msg);
	rc = DB_OK;
 done:
	if (ktraw != NULL) {
		explicit_bzero(ktraw, ktlen);
		free(ktraw);
	}
	free(pw);
	free(kt);
	json_decref(broot);
	json_decref(root);
	return rc;
}

static int
ds_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if ((rc = qd_source_list(conn, au->vs_id, &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "sources", a);
	ar->status = 200;
	return DB_OK;
}

static int
ds_get(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*s;
	int	 rc;

	rc = qd_source_get(conn, au->vs_id, ar->pp[0], &s, err, errlen);
	if (rc == QD_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no directory source "
		    "'%.32s'", ar->pp[0]);
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = s;
	ar->status = 200;
	return DB_OK;
}

static int
ds_poll(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*root = NULL;
	char	 msg[256];
	int	 rc, full;

	if (api_json_validate(ar->body_text ? ar->body_text : "",
	    ar->body_text ? ar->body_len : 0, ds_poll_schema,
	    NF(ds_poll_schema), &root, ar->vals, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	full = ar->vals[0].present && ar->vals[0].b;
	json_decref(root);
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qd_source_poll(conn, au->vs_id, ar->pp[0], full, err, errlen);
	if (rc == QD_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no directory source "
		    "'%.32s'", ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "directory_source_poll", ar->pp[0], json_pack("{s:b}",
		    "full", full));
		ar->resp = json_pack("{s:s,s:b}", "id", ar->pp[0], "full",
		    full);
		ar->status = 202;
	}
	return ds_end(conn, ar, rc, err, errlen);
}

/* On the loop: the pollers look now rather than at their next tick. */
static void
ds_poll_after(struct api_req *ar)
{
	directory_wake(ar->cd);
}

static int
ds_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*old = NULL;
	int	 rc;

	if (!ds_may_write(ar, au))
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qd_source_delete(conn, au->vs_id, ar->pp[0], &old, err, errlen);
	if (rc == QD_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no directory source "
		    "'%.32s'", ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "directory_source_delete", ar->pp[0], json_pack("{s:O}",
		    "before", old));
		ar->status = 204;
	}
	json_decref(old);
	return ds_end(conn, ar, rc, err, errlen);
}

static int
do_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*source = api_query(ar, "source");
	const char	*type = api_query(ar, "type");
	const char	*q = api_query(ar, "q");
	const char	*cursor = api_query(ar, "cursor");
	const char	*lim = api_query(ar, "limit");
	long long	 limit = 100;
	char		 msg[256];

	if (source != NULL && *source == '\0')
		source = NULL;
	if (type != NULL && *type == '\0')
		type = NULL;
	if (q != NULL && *q == '\0')
		q = NULL;
	if (cursor != NULL && *cursor == '\0')
		cursor = NULL;
	if ((lim != NULL && api_param_int("limit", lim, 1, 1000, &limit, msg,
	    sizeof(msg)) == -1) ||
	    (type != NULL && api_param_enum("type", type, ds_types, msg,
	    sizeof(msg)) == -1) ||
	    (q != NULL && api_param_str("q", q, 256, msg, sizeof(msg)) ==
	    -1) ||
	    (source != NULL && api_param_str("source", source, 18, msg,
	    sizeof(msg)) == -1) ||
	    (cursor != NULL && api_param_str("cursor", cursor, 18, msg,
	    sizeof(msg)) == -1)) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if (cursor != NULL && strspn(cursor, "0123456789") !=
	    strlen(cursor)) {
		api_req_fail(ar, 400, "bad_request", "cursor: not a cursor "
		    "from a previous answer's \"next\"");
		return DB_OK;
	}
	ar->status = 200;
	return qd_objects_list(conn, au->vs_id, source, type, q, cursor,
	    (int)limit, &ar->resp, err, errlen);
}

const struct api_endpoint api_endpoints_directory[] = {
	{ EVHTTP_REQ_GET, "/directory/sources", API_A_READ, ds_list, NULL },
	{ EVHTTP_REQ_POST, "/directory/sources", API_A_ADMIN, ds_create,
	    NULL },
	{ EVHTTP_REQ_GET, "/directory/sources/{}", API_A_READ, ds_get, NULL },
	{ EVHTTP_REQ_DELETE, "/directory/sources/{}", API_A_ADMIN, ds_delete,
	    NULL },
	{ EVHTTP_REQ_POST, "/directory/sources/{}/poll", API_A_OPERATE,
	    ds_poll, ds_poll_after },
	{ EVHTTP_REQ_GET, "/directory/objects", API_A_READ, do_list, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
