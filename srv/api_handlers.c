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

#include <sys/socket.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#include "auth/auth.h"
#include "db/db.h"
#include "db/q_api.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"

/*
 * The API's work on a database worker thread: authenticate, then act.
 * One function per resource; each fills ar->status and ar->resp.  They
 * return DB_OK once an answer is made (errors included), and DB_ERR or
 * DB_EDOWN only when the database failed.
 */

const struct api_field api_login_schema[] = {
	{ "user",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "password",	AF_STRING, 0, 0, PW_MAX_LEN, NULL },
	{ "vs",		AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "totp",	AF_STRING, 0, 1, TOTP_CODE_MAX, NULL },
};
const size_t api_login_nfields =
    sizeof(api_login_schema) / sizeof(api_login_schema[0]);

const struct api_field api_enroll_schema[] = {
	{ "group",	AF_REF, 0, 1, API_PATH_MAX, NULL },
	{ "uses",	AF_INT, 0, 1, TOKEN_USES_MAX, NULL },
	{ "ttl_s",	AF_INT, 0, 1, TOKEN_TTL_MAX_S, NULL },
};
const size_t api_enroll_nfields =
    sizeof(api_enroll_schema) / sizeof(api_enroll_schema[0]);



/* A hash to check unknown users' passwords against: same time either way. */
static char		 api_dummy_hash[PW_HASH_MAX];
static pthread_once_t	 api_dummy_once = PTHREAD_ONCE_INIT;

static void
api_dummy_init(void)
{
	if (pw_hash("canopy: no such user", api_dummy_hash,
	    sizeof(api_dummy_hash)) == -1)
		api_dummy_hash[0] = '\0';
}

static json_t *
api_roles_json(const struct api_auth *au)
{
	json_t	*a = json_array();
	char	 scope[24];
	size_t	 i;

	for (i = 0; i < au->nroles; i++) {
		snprintf(scope, sizeof(scope), "%lld",
		    (long long)au->roles[i].scope);
		json_array_append_new(a, json_pack("{s:s,s:o}",
		    "role", au->roles[i].role,
		    "scope", au->roles[i].scope != 0 ? json_string(scope) :
		    json_null()));
	}
	return a;
}

void
api_audit(PGconn *conn, struct api_req *ar, int vs_id, const char *actor,
    const char *action, const char *object, json_t *detail)
{
	char	 err[256];
	char	*js = NULL;

	if (detail != NULL)
		js = json_dumps(detail, JSON_COMPACT);
	/* The audit row must not be lost silently. */
	if (qa_audit(conn, vs_id, actor, ar->addr[0] ? ar->addr : NULL,
	    action, object, js, err, sizeof(err)) != DB_OK)
		log_warnx("api: audit %s by %s: %s", action, actor, err);
	free(js);
	json_decref(detail);
}

/* Fills the roles and what they allow in the admin's own server. */
static int
api_load_roles(PGconn *conn, struct api_auth *au, char *err, size_t errlen)
{
	size_t	 i;
	int	 rc, read_all = 0, write_all = 0;
	char	 num[24];

	if ((rc = qa_roles(conn, au->admin.id, au->roles, QA_ROLES_MAX,
	    &au->nroles, err, errlen)) != DB_OK)
		return rc;
	au->vs_id = au->admin.vs_id;
	strlcpy(au->vs_name, au->admin.vs_name, sizeof(au->vs_name));
	strlcpy(au->read_scopes, "{", sizeof(au->read_scopes));
	strlcpy(au->write_scopes, "{", sizeof(au->write_scopes));
	for (i = 0; i < au->nroles; i++) {
		int w = strcmp(au->roles[i].role, "auditor") != 0;

		au->can_read = 1;
		if (w)
			au->can_write = 1;
		if (strcmp(au->roles[i].role, "administrator") == 0)
			au->can_admin = 1;
		if (au->roles[i].scope == 0) {
			read_all = 1;
			if (w)
				write_all = 1;
			continue;
		}
		snprintf(num, sizeof(num), "%s%lld",
		    au->read_scopes[1] ? "," : "",
		    (long long)au->roles[i].scope);
		strlcat(au->read_scopes, num, sizeof(au->read_scopes));
		if (w) {
			snprintf(num, sizeof(num), "%s%lld",
			    au->write_scopes[1] ? "," : "",
			    (long long)au->roles[i].scope);
			strlcat(au->write_scopes, num,
			    sizeof(au->write_scopes));
		}
	}
	strlcat(au->read_scopes, "}", sizeof(au->read_scopes));
	strlcat(au->write_scopes, "}", sizeof(au->write_scopes));
	if (read_all)
		au->read_scopes[0] = '\0';
	if (write_all)
		au->write_scopes[0] = '\0';
	return DB_OK;
}

/* A password login (Basic or a JSON body).  Answers 401 itself. */
static int
api_auth_password(PGconn *conn, struct api_req *ar, struct api_auth *au,
    const char *user, const char *password, const char *vsname, char *err,
    size_t errlen)
{
	char	 until[QA_TS_LEN], vsbuf[API_NAME_MAX + 1];
	const char *bs;
	int	 rc, vs_id = 0, count = 0, ok;

	au->method = "password";
	/* tenant\alice names an account of a virtual server. */
	if ((bs = strchr(user, '\\')) != NULL && bs != user &&
	    (size_t)(bs - user) < sizeof(vsbuf) && bs[1] != '\0') {
		memcpy(vsbuf, user, bs - user);
		vsbuf[bs - user] = '\0';
		vsname = vsbuf;
		user = bs + 1;
	}
	rc = qa_vs_by_name(conn, vsname, &vs_id, err, errlen);
	if (rc == DB_OK)
		rc = qa_admin_by_name(conn, vs_id, user, &au->admin, err,
		    errlen);
	if (rc != DB_OK && rc != QA_NOTFOUND)
		return rc;
	if (rc == QA_NOTFOUND) {
		pthread_once(&api_dummy_once, api_dummy_init);
		if (api_dummy_hash[0] != '\0')
			(void)pw_verify(password, api_dummy_hash);
		api_audit(conn, ar, vs_id, user, "login_failed", NULL,
		    json_pack("{s:s}", "reason", "unknown user"));
		api_req_fail(ar, 401, "unauthenticated",
		    "wrong user name or password");
		return DB_OK;
	}
	if (au->admin.locked) {
		/* Not even checked: a locked account cannot be guessed at. */
		api_audit(conn, ar, vs_id, user, "login_failed", NULL,
		    json_pack("{s:s}", "reason", "locked"));
		api_req_fail(ar, 401, "account_locked", "account '%s' is "
		    "locked until %s after %d failed logins in a row", user,
		    au->admin.locked_until, API_LOGIN_FAIL_MAX);
		return DB_OK;
	}
	ok = au->admin.pw_hash[0] != '\0' &&
	    pw_verify(password, au->admin.pw_hash) == 1;
	if (!ok) {
		if ((rc = qa_login_failed(conn, au->admin.id,
		    API_LOGIN_FAIL_MAX, API_LOGIN_LOCK_S, &count, until, err,
		    errlen)) != DB_OK && rc != QA_NOTFOUND)
			return rc;
		api_audit(conn, ar, vs_id, user, "login_failed", NULL,
		    json_pack("{s:s,s:i}", "reason", au->admin.pw_hash[0] ?
		    "wrong password" : "no password set", "failures", count));
		if (until[0] != '\0' && count >= API_LOGIN_FAIL_MAX)
			api_req_fail(ar, 401, "account_locked", "wrong user "
			    "name or password; after %d failed logins in a "
			    "row the account is locked until %s",
			    API_LOGIN_FAIL_MAX, until);
		else
			api_req_fail(ar, 401, "unauthenticated",
			    "wrong user name or password");
		return DB_OK;
	}
	/* The second factor, if enrolled; a wrong one counts as a failure. */
	if ((rc = api_totp_login(conn, ar, au, ar->route == API_R_LOGIN &&
	    ar->vals[API_LOGIN_TOTP].present ? ar->vals[API_LOGIN_TOTP].s :
	    ar->totp, err, errlen)) != DB_OK || ar->status != 0)
		return rc;
	if ((rc = qa_login_ok(conn, au->admin.id, err, errlen)) != DB_OK)
		return rc;
	return DB_OK;
}

static int
api_authenticate(PGconn *conn, struct api_req *ar, struct api_auth *au,
    char *err, size_t errlen)
{
	char		*user = NULL, *password = NULL;
	const char	*token, *vsname;
	int		 kind, expired = 0, rc;

	memset(au, 0, sizeof(*au));
	if (ar->authz == NULL) {
		/* Only POST /login gets here without the header. */
		vsname = ar->vals[API_LOGIN_VS].present ?
		    ar->vals[API_LOGIN_VS].s : "main";
		rc = api_auth_password(conn, ar, au,
		    ar->vals[API_LOGIN_USER].s,
		    ar->vals[API_LOGIN_PASSWORD].present ?
		    ar->vals[API_LOGIN_PASSWORD].s : "", vsname, err, errlen);
		goto roles;
	}
	kind = api_auth_parse(ar->authz, &user, &password, &token);
	switch (kind) {
	case API_AUTH_BASIC:
		vsname = ar->route == API_R_LOGIN &&
		    ar->vals[API_LOGIN_VS].present ?
		    ar->vals[API_LOGIN_VS].s : "main";
		rc = api_auth_password(conn, ar, au, user, password, vsname,
		    err, errlen);
		explicit_bzero(password, strlen(password));
		free(user);
		free(password);
		goto roles;
	case API_AUTH_BEARER:
		au->method = "session";
		au->session = 1;
		sha256_hex(token, strlen(token), au->token_hash);
		rc = qa_session_get(conn, au->token_hash, &au->admin,
		    &expired, err, errlen);
		if (rc == QA_NOTFOUND) {
			api_req_fail(ar, 401, "unauthenticated",
			    "unknown or revoked session token; log in again");
			return DB_OK;
		}
		if (rc != DB_OK)
			return rc;
		if (expired) {
			api_req_fail(ar, 401, "session_expired",
			    "the session expired at %s; log in again",
			    au->admin.expires);
			return DB_OK;
		}
		goto roles;
	case API_AUTH_NEGOTIATE:
		rc = api_auth_negotiate(conn, ar, au, token, err, errlen);
		goto roles;
	default:
		api_req_fail(ar, 401, "unauthenticated", "Authorization: "
		    "malformed or unsupported; use Negotiate, Basic or "
		    "Bearer");
		return DB_OK;
	}
 roles:
	if (rc != DB_OK || ar->status != 0)
		return rc;
	return api_load_roles(conn, au, err, errlen);
}

/* An administrator of the whole virtual server, not of a subtree. */
static int
api_is_administrator(const struct api_auth *au)
{
	size_t	 i;

	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 1;
	return 0;
}

/* ?vs=NAME: an administrator of the physical server acts in a tenant. */
static int
api_switch_vs(PGconn *conn, struct api_req *ar, struct api_auth *au,
    char *err, size_t errlen)
{
	int	 rc, vs_id;

	if (ar->vs == NULL || strcmp(ar->vs, au->vs_name) == 0)
		return DB_OK;
	if (au->admin.vs_id != 0 || !api_is_administrator(au)) {
		api_req_fail(ar, 403, "forbidden", "vs: only an "
		    "administrator of the whole physical server may act in "
		    "another virtual server");
		return DB_OK;
	}
	if ((rc = qa_vs_by_name(conn, ar->vs, &vs_id, err, errlen)) ==
	    QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "vs: no virtual server "
		    "named '%.64s'", ar->vs);
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	au->vs_id = vs_id;
	strlcpy(au->vs_name, ar->vs, sizeof(au->vs_name));
	return DB_OK;
}

static const char *
api_scopes(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

static int
api_login(PGconn *conn, struct api_req *ar, struct api_auth *au, char *err,
    size_t errlen)
{
	char	 hash[65], expires[QA_TS_LEN];
	char	*token;
	int	 rc;

	if ((token = token_new(32)) == NULL) {
		snprintf(err, errlen, "token_new failed");
		return DB_ERR;
	}
	sha256_hex(token, strlen(token), hash);
	if ((rc = qa_session_create(conn, hash, &au->admin, API_SESSION_TTL_S,
	    ar->addr[0] ? ar->addr : NULL, expires, err, errlen)) != DB_OK) {
		free(token);
		return rc;
	}
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "login",
	    "session", json_pack("{s:s,s:s,s:s?}", "method", au->method,
	    "expires", expires, "principal", au->admin.principal[0] ?
	    au->admin.principal : NULL));
	ar->resp = json_pack("{s:s,s:s,s:s,s:o,s:s}",
	    "token", token,
	    "user", au->admin.name,
	    "vs", au->admin.vs_name,
	    "roles", api_roles_json(au),
	    "expires", expires);
	ar->status = 200;
	explicit_bzero(token, strlen(token));
	free(token);
	return DB_OK;
}

static int
api_logout(PGconn *conn, struct api_req *ar, struct api_auth *au, char *err,
    size_t errlen)
{
	int	 rc;

	if (!au->session) {
		api_req_fail(ar, 400, "bad_request", "Authorization: logout "
		    "ends a session: send its token as Bearer");
		return DB_OK;
	}
	if ((rc = qa_session_delete(conn, au->token_hash, err, errlen)) !=
	    DB_OK)
		return rc;
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "logout",
	    "session", au->admin.principal[0] ? json_pack("{s:s}",
	    "principal", au->admin.principal) : NULL);
	ar->status = 204;
	return DB_OK;
}

static int
api_whoami(struct api_req *ar, struct api_auth *au)
{
	ar->resp = json_pack("{s:s,s:o,s:s,s:o,s:s}",
	    "user", au->admin.name,
	    "principal", au->admin.principal[0] ?
	    json_string(au->admin.principal) : json_null(),
	    "vs", au->admin.vs_name,
	    "roles", api_roles_json(au),
	    "method", au->method);
	if (ar->resp != NULL && au->session)
		json_object_set_new(ar->resp, "expires",
		    json_string(au->admin.expires));
	ar->status = 200;
	return DB_OK;
}

/* Resolves a group reference within the given scopes; 404 if not. */
int
api_group_ref(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    const char *field, const char *ref, const char *scopes, int64_t *gid,
    char *err, size_t errlen)
{
	int	 rc;

	if (ref != NULL)
		rc = qa_group_resolve(conn, au->vs_id, ref, gid, err, errlen);
	else
		rc = qa_group_unassigned(conn, au->vs_id, gid, err, errlen);
	if (rc == DB_OK)
		rc = qa_group_in_scope(conn, au->vs_id, *gid, scopes, err,
		    errlen);
	if (rc == QA_NOTFOUND) {
		if (ref != NULL)
			api_req_fail(ar, 404, "not_found",
			    "%s: no group '%.300s'", field, ref);
		else
			api_req_fail(ar, 404, "not_found", "%s: required "
			    "here: the unassigned pool is not within this "
			    "account's scope", field);
	}
	return rc;
}

static int
api_group(PGconn *conn, struct api_req *ar, struct api_auth *au,
    const char *ref, const char *scopes, int64_t *gid, char *err,
    size_t errlen)
{
	return api_group_ref(conn, ar, au, "group", ref, scopes, gid, err,
	    errlen);
}

static int
api_enroll(PGconn *conn, struct api_req *ar, struct api_auth *au, char *err,
    size_t errlen)
{
	const struct api_value *v = ar->vals;
	char	 hash[65], expires[QA_TS_LEN], gids[24], prefix[9];
	char	*token;
	int64_t	 gid = 0;
	int	 rc, uses, ttl;

	if (!au->can_write) {
		api_req_fail(ar, 403, "forbidden", "creating enrolment tokens "
		    "needs the administrator or operator role");
		return DB_OK;
	}
	rc = api_group(conn, ar, au, v[API_ENROLL_GROUP].present ?
	    v[API_ENROLL_GROUP].s : NULL, api_scopes(au->write_scopes), &gid,
	    err, errlen);
	if (rc == QA_NOTFOUND)
		return DB_OK;
	if (rc != DB_OK)
		return rc;
	uses = v[API_ENROLL_USES].present ? (int)v[API_ENROLL_USES].i : 1;
	ttl = v[API_ENROLL_TTL].present ? (int)v[API_ENROLL_TTL].i :
	    TOKEN_TTL_DEFAULT_S;
	if ((token = token_new(32)) == NULL) {
		snprintf(err, errlen, "token_new failed");
		return DB_ERR;
	}
	/* Only the hash is stored: the token is shown this once. */
	sha256_hex(token, strlen(token), hash);
	rc = qa_enroll_token_create(conn, au->vs_id, hash, gid, uses, ttl,
	    au->admin.name, expires, err, errlen);
	if (rc == QA_NOTFOUND) {
		/* The group went away in between. */
		api_req_fail(ar, 404, "not_found", "group: no such group");
		rc = DB_OK;
		goto done;
	}
	if (rc != DB_OK)
		goto done;
	snprintf(gids, sizeof(gids), "%lld", (long long)gid);
	/* Enough to match the row, never enough to use. */
	strlcpy(prefix, hash, sizeof(prefix));
	api_audit(conn, ar, au->vs_id, au->admin.name,
	    "enrollment_token_create", gids, json_pack("{s:s,s:i,s:s,s:s}",
	    "group", gids, "uses", uses, "expires", expires,
	    "hash_prefix", prefix));
	ar->resp = json_pack("{s:s,s:s?,s:s,s:s,s:i,s:s}",
	    "token", token,
	    "ca_pem", ar->cd->pki.ca_pem,
	    "fingerprint", ar->cd->pki.ca_fingerprint,
	    "expires", expires,
	    "uses", uses,
	    "group", gids);
	ar->status = 201;
 done:
	explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}

static void
api_devq(struct api_req *ar, struct api_auth *au, struct qa_devq *q)
{
	memset(q, 0, sizeof(*q));
	q->vs_id = au->vs_id;
	q->vs_name = au->vs_name;
	q->server = ar->server;
	q->scopes = api_scopes(au->read_scopes);
}

static int
api_devices(PGconn *conn, struct api_req *ar, struct api_auth *au,
    char *err, size_t errlen)
{
	struct qa_devq	 q;
	json_t		*devs;
	char		*next = NULL, *like = NULL;
	int64_t		 gid = 0;
	int		 rc;

	api_devq(ar, au, &q);
	if (ar->group != NULL) {
		rc = api_group(conn, ar, au, ar->group, q.scopes, &gid, err,
		    errlen);
		if (rc == QA_NOTFOUND)
			return DB_OK;
		if (rc != DB_OK)
			return rc;
	}
	if (ar->q != NULL && (like = api_like_pattern(ar->q)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	q.group = gid;
	q.recursive = ar->recursive;
	q.status = ar->status_q;
	q.like = like;
	if (ar->has_cursor) {
		q.after_name = ar->cursor_name;
		q.after_id = ar->cursor_id;
	}
	q.limit = ar->limit;
	/* Tenants never see the mirrors: they belong to main. */
	q.hierarchy = ar->hierarchy && au->vs_id == 0;
	rc = qa_devices_list(conn, &q, &devs, &next, err, errlen);
	free(like);
	if (rc != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o,s:o}", "devices", devs,
	    "next", next != NULL ? json_string(next) : json_null());
	free(next);
	ar->status = 200;
	return DB_OK;
}

static int	 api_device_in(PGconn *, struct api_req *, struct api_auth *,
		    const char *, char *, size_t);

static int
api_device(PGconn *conn, struct api_req *ar, struct api_auth *au, char *err,
    size_t errlen)
{
	return api_device_in(conn, ar, au, au->read_scopes, err, errlen);
}

/* The device in the given scopes ("" unrestricted), or 404. */
static int
api_device_in(PGconn *conn, struct api_req *ar, struct api_auth *au,
    const char *scopes, char *err, size_t errlen)
{
	struct qa_devq	 q;
	json_t		*d;
	int		 rc;

	api_devq(ar, au, &q);
	q.scopes = api_scopes(scopes);
	rc = qa_device_get(conn, &q, ar->id, &d, err, errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such device");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = d;
	ar->status = 200;
	return DB_OK;
}

/* The route itself, with the connection in the caller's tenant. */
static int
api_route_run(PGconn *conn, struct api_req *ar, struct api_auth *au,
    char *err, size_t errlen)
{
	switch (ar->route) {
	case API_R_LOGIN:
		return api_login(conn, ar, au, err, errlen);
	case API_R_LOGOUT:
		return api_logout(conn, ar, au, err, errlen);
	case API_R_WHOAMI:
		return api_whoami(ar, au);
	case API_R_METRICS:
		ar->resp = json_object();
		ar->status = 200;
		return DB_OK;
	default:
		break;
	}
	if (!au->can_read) {
		api_req_fail(ar, 403, "forbidden", "this account has no role "
		    "in virtual server '%s'", au->vs_name);
		return DB_OK;
	}
	ar->vs_id = au->vs_id;
	if (ar->rt != NULL) {
		if ((ar->rt->access == API_A_OPERATE && !au->can_write) ||
		    (ar->rt->access == API_A_ADMIN && !au->can_admin)) {
			api_req_fail(ar, 403, "forbidden", "this needs the %s "
			    "role", ar->rt->access == API_A_ADMIN ?
			    "administrator" : "operator or administrator");
			return DB_OK;
		}
		return ar->rt->run(conn, ar, au, err, errlen);
	}
	switch (ar->route) {
	case API_R_ENROLL:
		return api_enroll(conn, ar, au, err, errlen);
	case API_R_DEVICES:
		return api_devices(conn, ar, au, err, errlen);
	case API_R_DEVICE:
		return api_device(conn, ar, au, err, errlen);
	case API_R_DEVICE_SYNC:
		/* Pushing changes nothing stored, but it is an action. */
		if (!au->can_write) {
			api_req_fail(ar, 403, "forbidden", "this account may "
			    "not act on devices");
			return DB_OK;
		}
		/* The look-up proves the device is there and in WRITE scope. */
		return api_device_in(conn, ar, au, au->write_scopes, err,
		    errlen);
	default:
		api_req_fail(ar, 404, "not_found", "no such resource");
		return DB_OK;
	}
}

/*
 * Puts a worker connection back in system mode after an API job.  A
 * transaction left open is rolled back first: a SET inside it would be
 * undone with it.  If even that fails the session is started anew, so that
 * no tenant's narrowing outlives its request.
 */
static int
api_leave_tenant(PGconn *conn, int rc, char *err, size_t errlen)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return rc == DB_OK ? DB_OK : DB_EDOWN;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		db_rollback(conn);
		if (rc == DB_OK) {
			log_warnx("api: a handler left a transaction open; "
			    "rolled back");
			snprintf(err, errlen, "transaction left open and "
			    "rolled back");
			rc = DB_ERR;
		}
	}
	if (db_system(conn) == 0)
		return rc;
	/*
	 * Never hand a narrowed connection to the next job: break it, and
	 * the worker connects anew (in system mode) when its ping fails.
	 */
	log_warnx("api: cannot put the connection back in system mode: %s; "
	    "dropping it", PQerrorMessage(conn));
	if (PQsocket(conn) != -1)
		(void)shutdown(PQsocket(conn), SHUT_RDWR);
	snprintf(err, errlen, "database connection reset");
	return DB_EDOWN;
}

int
api_job_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct api_req	*ar = arg;
	struct api_auth	 au;
	int		 rc, vs_id;

	/* Authentication spans tenants: it runs in system mode. */
	if ((rc = api_authenticate(conn, ar, &au, err, errlen)) != DB_OK ||
	    ar->status != 0)
		return rc;
	/* Found wrong on the loop; told only to those who may know. */
	if (ar->err_status != 0) {
		api_req_fail(ar, ar->err_status, ar->err_code, "%s",
		    ar->err_msg);
		return DB_OK;
	}
	if ((rc = api_switch_vs(conn, ar, &au, err, errlen)) != DB_OK ||
	    ar->status != 0)
		return rc;
	/*
	 * Row-level security narrows the connection to the caller's tenant,
	 * so a handler that forgot vs_id still sees nothing of another.  A
	 * session and its audit rows belong to the account's own server.
	 */
	vs_id = ar->route == API_R_LOGIN || ar->route == API_R_LOGOUT ?
	    au.admin.vs_id : au.vs_id;
	if (db_tenant(conn, vs_id) == -1) {
		snprintf(err, errlen, "cannot enter virtual server %d: %s",
		    vs_id, PQerrorMessage(conn));
		return api_leave_tenant(conn, db_errclass(conn), err, errlen);
	}
	rc = api_route_run(conn, ar, &au, err, errlen);
	return api_leave_tenant(conn, rc, err, errlen);
}
