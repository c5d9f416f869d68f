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
 * Events, the audit log and administrators: part of the groups API
 * (srv/api_groups.c has the route table and the rules of who may do what).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "util.h"

#include "auth/auth.h"
#include "db/db.h"
#include "db/q_api.h"
#include "db/q_groups.h"

#include "api.h"
#include "api_json.h"
#include "api_groups.h"

#define GA_ACTION_MAX	64	/* ?action= of GET /audit */

static const char *const ga_severities[] = {
	"info", "warning", "error", "critical", NULL
};
static const char *const ga_roles[] = {
	"administrator", "operator", "auditor", NULL
};

static const struct api_field ga_admin_schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "password",	AF_STRING, 0, PW_MIN_LEN, PW_MAX_LEN, NULL },
	{ "principal",	AF_STRING, 0, 3, API_NAME_MAX, NULL },
};
#define GA_A_NAME	0
#define GA_A_PASSWORD	1
#define GA_A_PRINCIPAL	2

static const struct api_field ga_role_schema[] = {
	{ "role",	AF_ENUM, 1, 0, 0, ga_roles },
	{ "scope",	AF_REF, 0, 1, API_PATH_MAX, NULL },
};

/* ---- events and audit ---- */

/* "digits" or "digits.digits" (the second part only when two). */
static int
ga_cursor(const char *s, int two, char *a, size_t alen, char *b,
    size_t blen)
{
	const char	*dot = strchr(s, '.');
	size_t		 i, n;

	if (two != (dot != NULL))
		return -1;
	n = dot != NULL ? (size_t)(dot - s) : strlen(s);
	if (n == 0 || n >= alen || n > 18)
		return -1;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	if (dot == NULL)
		return 0;
	s = dot + 1;
	n = strlen(s);
	if (n == 0 || n >= blen || n > 18)
		return -1;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	memcpy(b, s, n + 1);
	return 0;
}

int
ga_events(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct qg_evq	 q;
	json_t		*ev;
	char		 msg[256], cur_us[24], cur_id[24];
	char		*next = NULL;
	const char	*v;
	int		 rc;

	memset(&q, 0, sizeof(q));
	q.vs_id = au->vs_id;
	q.scopes = ga_scopes(au->read_scopes);
	if (ga_page(ar, &q.limit, &q.since) == -1)
		return DB_OK;
	if ((v = api_query(ar, "device")) != NULL && *v != '\0') {
		if (!api_uuid_valid(v)) {
			api_req_fail(ar, 400, "bad_request", "device: must be "
			    "a device id");
			return DB_OK;
		}
		q.device = v;
	}
	if ((v = api_query(ar, "severity")) != NULL && *v != '\0') {
		if (api_param_enum("severity", v, ga_severities, msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		q.severity = v;
	}
	if ((v = api_query(ar, "type")) != NULL && *v != '\0') {
		if (api_param_str("type", v, 64, msg, sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		q.type = v;
	}
	if ((v = api_query(ar, "cursor")) != NULL && *v != '\0') {
		if (ga_cursor(v, 1, cur_us, sizeof(cur_us), cur_id,
		    sizeof(cur_id)) == -1) {
			api_req_fail(ar, 400, "bad_request", "cursor: not one "
			    "this server gave out; start again without it");
			return DB_OK;
		}
		q.after_us = cur_us;
		q.after_id = cur_id;
	}
	if ((rc = qg_events_list(conn, &q, &ev, &next, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o,s:o}", "events", ev,
	    "next", next != NULL ? json_string(next) : json_null());
	free(next);
	ar->status = 200;
	return DB_OK;
}

int
ga_audit(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct qg_auq	 q;
	json_t		*a;
	char		 msg[256], cur[24], unused[2];
	char		*next = NULL;
	const char	*v;
	int		 rc;

	if (!ga_unscoped(au, "administrator", "auditor")) {
		api_req_fail(ar, 403, "forbidden", "the audit log needs the "
		    "administrator or auditor role over the whole virtual "
		    "server");
		return DB_OK;
	}
	memset(&q, 0, sizeof(q));
	q.vs_id = au->vs_id;
	if (ga_page(ar, &q.limit, &q.since) == -1)
		return DB_OK;
	if ((v = api_query(ar, "actor")) != NULL && *v != '\0') {
		if (api_param_str("actor", v, API_NAME_MAX, msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		q.actor = v;
	}
	if ((v = api_query(ar, "action")) != NULL && *v != '\0') {
		if (api_param_str("action", v, GA_ACTION_MAX, msg,
		    sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		q.action = v;
	}
	if ((v = api_query(ar, "cursor")) != NULL && *v != '\0') {
		if (ga_cursor(v, 0, cur, sizeof(cur), unused,
		    sizeof(unused)) == -1) {
			api_req_fail(ar, 400, "bad_request", "cursor: not one "
			    "this server gave out; start again without it");
			return DB_OK;
		}
		q.after_id = cur;
	}
	if ((rc = qg_audit_list(conn, &q, &a, &next, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o,s:o}", "audit", a,
	    "next", next != NULL ? json_string(next) : json_null());
	free(next);
	ar->status = 200;
	return DB_OK;
}

/* ---- administrators ---- */

/* Only an administrator of the whole virtual server manages accounts. */
static int
ga_admin_guard(struct api_req *ar, const struct api_auth *au)
{
	if (ga_unscoped(au, "administrator", NULL))
		return 0;
	api_req_fail(ar, 403, "forbidden", "managing administrators needs "
	    "the administrator role over the whole virtual server");
	return -1;
}

/* An account name: what login can tell apart ("tenant\name" splits). */
static int
ga_admin_name_ok(const char *s, char *msg, size_t len)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\' ||
		    *s == ':') {
			snprintf(msg, len, "name: may not contain '\\', ':' "
			    "or control characters");
			return -1;
		}
	return 0;
}

/* user@REALM: one '@', something on either side, no blanks. */
static int
ga_principal_ok(const char *s)
{
	const char	*at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return -1;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return -1;
	return 0;
}

/*
 * Checks "roles" (taken out of the body before the schema check): an
 * array of {"role","scope"?}.  0, or -1 with msg.
 */
static int
ga_roles_check(json_t *roles, char *msg, size_t len)
{
	struct api_value vals[2];
	json_t		*r, *root;
	char		*js, m[400];
	size_t		 i;
	int		 rc;

	if (roles == NULL) {
		snprintf(msg, len, "roles: required, e.g. "
		    "[{\"role\":\"operator\"}]");
		return -1;
	}
	if (!json_is_array(roles) || json_array_size(roles) == 0 ||
	    json_array_size(roles) > QA_ROLES_MAX) {
		snprintf(msg, len, "roles: must be an array of 1 to %d "
		    "{\"role\",\"scope\"} objects", QA_ROLES_MAX);
		return -1;
	}
	json_array_foreach(roles, i, r) {
		if (!json_is_object(r)) {
			snprintf(msg, len, "roles[%zu]: must be an object "
			    "{\"role\",\"scope\"?}", i);
			return -1;
		}
		if ((js = json_dumps(r, JSON_COMPACT)) == NULL) {
			snprintf(msg, len, "roles[%zu]: unreadable", i);
			return -1;
		}
		rc = api_json_validate(js, strlen(js), ga_role_schema, 2,
		    &root, vals, m, sizeof(m));
		free(js);
		if (rc == -1) {
			snprintf(msg, len, "roles[%zu].%s", i, m);
			return -1;
		}
		json_decref(root);
	}
	return 0;
}

int
ga_admin_add(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value vals[3];
	json_t		*body = NULL, *roles = NULL, *root = NULL, *r, *jr;
	json_t		*scope;
	char		 hash[PW_HASH_MAX], msg[1024], ids[24], num[24];
	char		*rest = NULL;
	const char	*principal, *sref;
	int64_t		 id = 0, sid;
	size_t		 i;
	int		 rc = DB_OK;

	if (ga_admin_guard(ar, au) == -1)
		return DB_OK;
	hash[0] = '\0';
	/* "roles" is an array the flat schema cannot say: split it off. */
	body = ar->body_text != NULL ? json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (json_is_object(body)) {
		if ((roles = json_object_get(body, "roles")) != NULL)
			json_incref(roles);
		json_object_del(body, "roles");
		if ((rest = json_dumps(body, JSON_COMPACT)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = DB_ERR;
			goto done;
		}
		if (api_json_validate(rest, strlen(rest), ga_admin_schema, 3,
		    &root, vals, msg, sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			goto done;
		}
	} else if (ga_body(ar, ga_admin_schema, 3, &root, vals) == -1)
		goto done;		/* malformed: the usual message */
	if (ga_admin_name_ok(vals[GA_A_NAME].s, msg, sizeof(msg)) == -1 ||
	    ga_roles_check(roles, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		goto done;
	}
	principal = vals[GA_A_PRINCIPAL].present ? vals[GA_A_PRINCIPAL].s :
	    NULL;
	if (principal != NULL && ga_principal_ok(principal) == -1) {
		api_req_fail(ar, 400, "bad_request", "principal: must be a "
		    "realm-qualified Kerberos name, user@REALM");
		goto done;
	}
	if (!vals[GA_A_PASSWORD].present && principal == NULL) {
		api_req_fail(ar, 400, "bad_request", "password: required "
		    "unless a principal is given (a Kerberos-only account)");
		goto done;
	}
	/* Slow by design; before the transaction, which stays short. */
	if (vals[GA_A_PASSWORD].present && pw_hash(vals[GA_A_PASSWORD].s,
	    hash, sizeof(hash)) == -1) {
		snprintf(err, errlen, "pw_hash failed");
		rc = DB_ERR;
		goto done;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qg_admin_create(conn, au->vs_id, vals[GA_A_NAME].s, principal,
	    hash[0] ? hash : NULL, &id, err, errlen);
	if (rc == QG_CONFLICT || rc == QG_PRINCIPAL) {
		if (rc == QG_CONFLICT)
			snprintf(msg, sizeof(msg), "name: an administrator "
			    "named '%.255s' already exists", vals[GA_A_NAME].s);
		else
			snprintf(msg, sizeof(msg), "principal: '%.255s' "
			    "already belongs to an account", principal);
		rc = ga_fail(conn, ar, 409, "conflict", msg);
		goto done;
	}
	if (rc != DB_OK)
		goto dberr;
	jr = json_array();
	json_array_foreach(roles, i, r) {
		scope = json_object_get(r, "scope");
		sid = 0;
		sref = NULL;
		if (json_is_integer(scope)) {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(scope));
			sref = num;
		} else if (json_is_string(scope))
			sref = json_string_value(scope);
		if (sref != NULL) {
			snprintf(msg, sizeof(msg), "roles[%zu].scope", i);
			rc = api_group_ref(conn, ar, au, msg, sref, NULL, &sid,
			    err, errlen);
			if (rc == QA_NOTFOUND) {
				json_decref(jr);
				db_rollback(conn);
				rc = DB_OK;
				goto done;
			}
			if (rc != DB_OK) {
				json_decref(jr);
				goto dberr;
			}
		}
		snprintf(num, sizeof(num), "%" PRId64, sid);
		json_array_append_new(jr, json_pack("{s:s,s:o}", "role",
		    json_string_value(json_object_get(r, "role")),
		    "scope", sid != 0 ? json_string(num) : json_null()));
		if ((rc = qg_admin_role_add(conn, id, json_string_value(
		    json_object_get(r, "role")), sid, err, errlen)) != DB_OK) {
			json_decref(jr);
			goto dberr;
		}
	}
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	/* Never the password or its hash. */
	api_audit(conn, ar, au->vs_id, au->admin.name, "admin_create", ids,
	    json_pack("{s:n,s:{s:s,s:o,s:b,s:o}}", "before", "after",
	    "name", vals[GA_A_NAME].s,
	    "principal", principal ? json_string(principal) : json_null(),
	    "password", hash[0] != '\0',
	    "roles", json_deep_copy(jr)));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK) {
		json_decref(jr);
		goto dberr;
	}
	ar->resp = json_pack("{s:s,s:s,s:o,s:o}", "id", ids,
	    "name", vals[GA_A_NAME].s,
	    "principal", principal ? json_string(principal) : json_null(),
	    "roles", jr);
	ar->status = 201;
	goto done;
 dberr:
	rc = ga_dberr(conn, rc);
 done:
	explicit_bzero(hash, sizeof(hash));
	if (rest != NULL) {
		explicit_bzero(rest, strlen(rest));
		free(rest);
	}
	json_decref(roles);
	json_decref(body);
	json_decref(root);
	return rc;
}

int
ga_admins_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if (ga_admin_guard(ar, au) == -1)
		return DB_OK;
	if ((rc = qg_admins_list(conn, au->vs_id, &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "admins", a);
	ar->status = 200;
	return DB_OK;
}

/* pp[0] as an account of this virtual server, locked for the change. */
static int
ga_admin_pp(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    int64_t *id, char *name, size_t namelen, char *err, size_t errlen)
{
	int	 rc;

	if (ga_id(ar->pp[0], id) == -1)
		rc = QA_NOTFOUND;
	else
		rc = qg_admin_name(conn, au->vs_id, *id, name, namelen, err,
		    errlen);
	if (rc == QA_NOTFOUND)
		api_req_fail(ar, 404, "not_found", "no such administrator");
	return rc;
}

int
ga_admin_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	char	 name[API_NAME_MAX + 1];
	int64_t	 id;
	int	 rc;

	if (ga_admin_guard(ar, au) == -1)
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = ga_admin_pp(conn, ar, au, &id, name, sizeof(name), err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		return DB_OK;
	}
	if (rc != DB_OK)
		return ga_dberr(conn, rc);
	if (id == au->admin.id)
		return ga_fail(conn, ar, 409, "conflict", "an administrator "
		    "cannot delete their own account");
	if ((rc = qg_admin_delete(conn, au->vs_id, id, err, errlen)) != DB_OK)
		return ga_dberr(conn, rc);
	api_audit(conn, ar, au->vs_id, au->admin.name, "admin_delete",
	    ar->pp[0], json_pack("{s:{s:s},s:n}", "before", "name", name,
	    "after"));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return ga_dberr(conn, rc);
	ar->status = 204;
	return DB_OK;
}

int
ga_admin_unlock(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	char	 name[API_NAME_MAX + 1];
	int64_t	 id;
	int	 rc, failed = 0;

	if (ga_admin_guard(ar, au) == -1)
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = ga_admin_pp(conn, ar, au, &id, name, sizeof(name), err, errlen);
	if (rc == DB_OK)
		rc = qg_admin_unlock(conn, au->vs_id, id, &failed, err,
		    errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		if (ar->status == 0)
			api_req_fail(ar, 404, "not_found",
			    "no such administrator");
		return DB_OK;
	}
	if (rc != DB_OK)
		return ga_dberr(conn, rc);
	api_audit(conn, ar, au->vs_id, au->admin.name, "admin_unlock",
	    ar->pp[0], json_pack("{s:s,s:{s:i},s:{s:i}}", "name", name,
	    "before", "failed_logins", failed, "after", "failed_logins", 0));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		return ga_dberr(conn, rc);
	ar->resp = json_pack("{s:s,s:s,s:b}", "id", ar->pp[0], "name", name,
	    "locked", 0);
	ar->status = 200;
	return DB_OK;
}
