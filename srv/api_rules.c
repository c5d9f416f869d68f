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
 * The rules API (srv/api.h explains route tables): status rules, moving
 * rules, and running a round now.  Rules act on the whole virtual server,
 * so changing them needs an administrator of all of it; everyone reads.
 */
#include <arpa/inet.h>

#include <ctype.h>
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
#include "db/q_rules.h"

#include "api.h"
#include "api_json.h"
#include "modules.h"

static const char *const sr_kinds[] = {
	"not_seen", "not_visible", "agent_event", "disk_full", NULL
};
static const char *const sr_severities[] = { "warning", "critical", NULL };
static const char *const ev_severities[] = {
	"info", "warning", "error", "critical", NULL
};
static const char *const mr_modes[] = { "once", "always", NULL };
/* "network" and "ipscan" both name devices found by IP-range scans. */
static const char *const mr_sources[] = {
	"agent", "directory", "network", "ipscan", NULL
};

static const struct api_field sr_create_schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "kind",	AF_ENUM, 1, 0, 0, sr_kinds },
	{ "severity",	AF_ENUM, 1, 0, 0, sr_severities },
	{ "enabled",	AF_BOOL, 0, 0, 0, NULL },
	{ "order",	AF_INT, 0, 0, RULES_ORDER_MAX, NULL },
};
#define SR_NAME		0
#define SR_KIND		1
#define SR_SEVERITY	2
#define SR_ENABLED	3
#define SR_ORDER	4

static const struct api_field sr_patch_schema[] = {
	{ "name",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "severity",	AF_ENUM, 0, 0, 0, sr_severities },
	{ "enabled",	AF_BOOL, 0, 0, 0, NULL },
	{ "order",	AF_INT, 0, 0, RULES_ORDER_MAX, NULL },
};
#define SRP_NAME	0
#define SRP_SEVERITY	1
#define SRP_ENABLED	2
#define SRP_ORDER	3

/* params, by kind. */
static const struct api_field sr_hours_schema[] = {
	{ "hours",	AF_INT, 1, 1, RULES_HOURS_MAX, NULL },
};
static const struct api_field sr_event_schema[] = {
	{ "min_severity", AF_ENUM, 0, 0, 0, ev_severities },
	{ "hours",	AF_INT, 0, 1, RULES_HOURS_MAX, NULL },
};
static const struct api_field sr_disk_schema[] = {
	{ "percent",	AF_INT, 1, 1, 100, NULL },
};

static const struct api_field mr_schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "order",	AF_INT, 0, 0, RULES_ORDER_MAX, NULL },
	{ "group",	AF_REF, 1, 1, API_PATH_MAX, NULL },
	{ "mode",	AF_ENUM, 0, 0, 0, mr_modes },
	{ "enabled",	AF_BOOL, 0, 0, 0, NULL },
};
#define MR_NAME		0
#define MR_ORDER	1
#define MR_GROUP	2
#define MR_MODE		3
#define MR_ENABLED	4

static const struct api_field mr_match_schema[] = {
	{ "ip_cidr",	AF_STRING, 0, 1, 64, NULL },
	{ "dns_suffix",	AF_STRING, 0, 1, 253, NULL },
	{ "ou_dn",	AF_STRING, 0, 1, RULES_MATCH_MAX, NULL },
	{ "os",		AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "source",	AF_ENUM, 0, 0, 0, mr_sources },
};
#define MM_CIDR		0
#define MM_DNS		1
#define MM_OU		2
#define MM_OS		3
#define MM_SOURCE	4

#define NF(s)	(sizeof(s) / sizeof((s)[0]))

/* "10.0.0.0/8", "fd00::/8" or a single address. */
static int
rules_cidr_ok(const char *s)
{
	char		 addr[64], *slash, *end;
	unsigned char	 buf[16];
	long		 bits, max;

	if (strlcpy(addr, s, sizeof(addr)) >= sizeof(addr))
		return 0;
	if ((slash = strchr(addr, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		max = 128;
	else
		return 0;
	if (slash == NULL)
		return 1;
	if (!isdigit((unsigned char)*slash) || strlen(slash) > 3)
		return 0;
	bits = strtol(slash, &end, 10);
	return *end == '\0' && bits >= 0 && bits <= max;
}

/* "example.com" or ".corp.example.com": DNS labels. */
static int
rules_dns_suffix_ok(const char *s)
{
	size_t	 label = 0;
	char	 prev = '.';

	if (*s == '.')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; prev = *s++) {
		if (*s == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-')
			return 0;
		if (*s == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && prev != '-';
}

/*
 * Takes the object field key (params, match) out of the body and validates
 * the rest against schema.  *sub: the object, or NULL when absent.
 * Returns -1 with msg set.
 */
static int
rules_body(struct api_req *ar, const char *key,
    const struct api_field *schema, size_t n, json_t **root, json_t **sub,
    char *msg, size_t msglen)
{
	json_t	*obj, *v;
	char	*rest;
	int	 r;

	*sub = NULL;
	*root = NULL;
	obj = ar->body_text != NULL ? json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (obj == NULL || !json_is_object(obj)) {
		/* Its own words for malformed or empty bodies. */
		json_decref(obj);
		return api_json_validate(ar->body_text ? ar->body_text : "",
		    ar->body_text ? ar->body_len : 0, schema, n, root, ar->vals,
		    msg, msglen);
	}
	if ((v = json_object_get(obj, key)) != NULL && !json_is_null(v)) {
		if (!json_is_object(v)) {
			snprintf(msg, msglen, "%s: must be an object", key);
			json_decref(obj);
			return -1;
		}
		*sub = json_incref(v);
	}
	json_object_del(obj, key);
	if ((rest = json_dumps(obj, JSON_COMPACT)) == NULL) {
		snprintf(msg, msglen, "body: out of memory");
		json_decref(obj);
		json_decref(*sub);
		*sub = NULL;
		return -1;
	}
	json_decref(obj);
	r = api_json_validate(rest, strlen(rest), schema, n, root, ar->vals,
	    msg, msglen);
	free(rest);
	if (r == -1) {
		json_decref(*sub);
		*sub = NULL;
	}
	return r;
}

/* Validates an object field's members; messages name "key.field". */
static int
rules_sub(json_t *sub, const char *key, const struct api_field *schema,
    size_t n, struct api_value *vals, json_t **root, char *msg,
    size_t msglen)
{
	char	*text, m[400];
	int	 r;

	*root = NULL;
	if ((text = sub != NULL ? json_dumps(sub, JSON_COMPACT) :
	    strdup("{}")) == NULL) {
		snprintf(msg, msglen, "%s: out of memory", key);
		return -1;
	}
	r = api_json_validate(text, strlen(text), schema, n, root, vals, m,
	    sizeof(m));
	free(text);
	if (r == -1)
		snprintf(msg, msglen, "%s.%s", key, m);
	return r;
}

/*
 * A kind's params, checked, with defaults filled in: *out is JSON text
 * (malloc'd).
 */
static int
rules_params(const char *kind, json_t *params, char **out, char *msg,
    size_t msglen)
{
	struct api_value	 v[2];
	json_t			*root, *o;

	*out = NULL;
	if (strcmp(kind, "agent_event") == 0) {
		if (rules_sub(params, "params", sr_event_schema,
		    NF(sr_event_schema), v, &root, msg, msglen) == -1)
			return -1;
		o = json_pack("{s:s,s:I}", "min_severity", v[0].present ?
		    v[0].s : "error", "hours", (json_int_t)(v[1].present ?
		    v[1].i : 24));
	} else if (strcmp(kind, "disk_full") == 0) {
		if (rules_sub(params, "params", sr_disk_schema,
		    NF(sr_disk_schema), v, &root, msg, msglen) == -1)
			return -1;
		o = json_pack("{s:I}", "percent", (json_int_t)v[0].i);
	} else {
		if (rules_sub(params, "params", sr_hours_schema,
		    NF(sr_hours_schema), v, &root, msg, msglen) == -1)
			return -1;
		o = json_pack("{s:I}", "hours", (json_int_t)v[0].i);
	}
	json_decref(root);
	if (o != NULL)
		*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (*out == NULL) {
		snprintf(msg, msglen, "params: out of memory");
		return -1;
	}
	return 0;
}

/* Rules change what happens to every device: the whole server's admin. */
static int
rules_may_write(struct api_req *ar, const struct api_auth *au)
{
	size_t	 i;

	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 1;
	api_req_fail(ar, 403, "forbidden", "rules act on the whole virtual "
	    "server: this needs the administrator role without a group "
	    "scope");
	return 0;
}

/* Ends a request's transaction: commit if it answered 2xx. */
static int
rules_end(PGconn *conn, struct api_req *ar, int rc, char *err,
    size_t errlen)
{
	if (rc != DB_OK || ar->status < 200 || ar->status > 299) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

static int
sr_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if ((rc = qr_status_rules_list(conn, au->vs_id, &a, err, errlen)) !=
	    DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "rules", a);
	ar->status = 200;
	return DB_OK;
}

static int
sr_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const struct api_value *v = ar->vals;
	json_t	*root = NULL, *params = NULL, *rule = NULL;
	char	 msg[512], *ptext = NULL;
	int	 rc;

	if (!rules_may_write(ar, au))
		return DB_OK;
	if (rules_body(ar, "params", sr_create_schema, NF(sr_create_schema),
	    &root, &params, msg, sizeof(msg)) == -1 ||
	    rules_params(v[SR_KIND].s, params, &ptext, msg, sizeof(msg)) ==
	    -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		rc = DB_OK;
		goto done;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qr_status_rule_create(conn, au->vs_id, v[SR_NAME].s,
	    v[SR_KIND].s, v[SR_SEVERITY].s, ptext, v[SR_ENABLED].present ?
	    v[SR_ENABLED].b : 1, v[SR_ORDER].present ? (int)v[SR_ORDER].i : 100,
	    &rule, err, errlen);
	if (rc == QR_CONFLICT) {
		api_req_fail(ar, 409, "conflict", "name: a status rule named "
		    "'%.64s' exists", v[SR_NAME].s);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "status_rule_create", json_string_value(json_object_get(
		    rule, "id")), json_pack("{s:O}", "after", rule));
		ar->resp = rule;
		ar->status = 201;
	}
	rc = rules_end(conn, ar, rc, err, errlen);
 done:
	free(ptext);
	json_decref(params);
	json_decref(root);
	return rc;
}

static int
sr_patch(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const struct api_value *v = ar->vals;
	json_t	*root = NULL, *params = NULL, *old = NULL, *rule = NULL;
	char	 msg[512], *ptext = NULL;
	int	 rc;

	if (!rules_may_write(ar, au))
		return DB_OK;
	if (rules_body(ar, "params", sr_patch_schema, NF(sr_patch_schema),
	    &root, &params, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		rc = DB_OK;
		goto done;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qr_status_rule_get(conn, au->vs_id, ar->pp[0], &old, err, errlen);
	if (rc == QR_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no status rule '%.32s'",
		    ar->pp[0]);
		rc = DB_OK;
		goto end;
	}
	if (rc != DB_OK)
		goto end;
	if (params != NULL && rules_params(json_string_value(json_object_get(
	    old, "kind")), params, &ptext, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		goto end;
	}
	rc = qr_status_rule_update(conn, au->vs_id, ar->pp[0],
	    v[SRP_NAME].present ? v[SRP_NAME].s : NULL,
	    v[SRP_SEVERITY].present ? v[SRP_SEVERITY].s : NULL, ptext,
	    v[SRP_ENABLED].present ? v[SRP_ENABLED].b : -1,
	    v[SRP_ORDER].present ? &v[SRP_ORDER].i : NULL, &rule, err,
	    errlen);
	if (rc == QR_CONFLICT) {
		api_req_fail(ar, 409, "conflict", "name: a status rule named "
		    "'%.64s' exists", v[SRP_NAME].s);
		rc = DB_OK;
	} else if (rc == QR_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no status rule '%.32s'",
		    ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "status_rule_update", ar->pp[0], json_pack("{s:O,s:O}",
		    "before", old, "after", rule));
		ar->resp = rule;
		ar->status = 200;
	}
 end:
	rc = rules_end(conn, ar, rc, err, errlen);
 done:
	free(ptext);
	json_decref(old);
	json_decref(params);
	json_decref(root);
	return rc;
}

/* DELETE of a status or moving rule: the row, its audit, 204 or 404. */
static int
rules_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    int (*del)(PGconn *, int, const char *, json_t **, char *, size_t),
    const char *what, const char *action, char *err, size_t errlen)
{
	json_t	*old = NULL;
	int	 rc;

	if (!rules_may_write(ar, au))
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = del(conn, au->vs_id, ar->pp[0], &old, err, errlen);
	if (rc == QR_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no %s '%.32s'", what,
		    ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name, action,
		    ar->pp[0], json_pack("{s:O}", "before", old));
		ar->status = 204;
	}
	json_decref(old);
	return rules_end(conn, ar, rc, err, errlen);
}

static int
sr_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	return rules_delete(conn, ar, au, qr_status_rule_delete,
	    "status rule", "status_rule_delete", err, errlen);
}

static const char *
rules_scopes(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

static int
mr_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if ((rc = qr_moving_rules_list(conn, au->vs_id,
	    rules_scopes(au->read_scopes), &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "rules", a);
	ar->status = 200;
	return DB_OK;
}

/* The match object, checked; *out its canonical JSON text (malloc'd). */
static int
mr_match(json_t *match, char **out, char *msg, size_t msglen)
{
	struct api_value	 v[NF(mr_match_schema)];
	json_t			*root, *o;
	size_t			 i;
	int			 any = 0;

	*out = NULL;
	if (match == NULL) {
		snprintf(msg, msglen, "match: required");
		return -1;
	}
	if (rules_sub(match, "match", mr_match_schema, NF(mr_match_schema),
	    v, &root, msg, msglen) == -1)
		return -1;
	if (v[MM_CIDR].present && !rules_cidr_ok(v[MM_CIDR].s)) {
		snprintf(msg, msglen, "match.ip_cidr: not an IPv4 or IPv6 "
		    "address or network (\"10.0.0.0/8\", \"fd00::/8\")");
		goto fail;
	}
	if (v[MM_DNS].present && !rules_dns_suffix_ok(v[MM_DNS].s)) {
		snprintf(msg, msglen, "match.dns_suffix: not a DNS name "
		    "(\"corp.example.com\")");
		goto fail;
	}
	if (v[MM_OU].present && strchr(v[MM_OU].s, '=') == NULL) {
		snprintf(msg, msglen, "match.ou_dn: not a distinguished name "
		    "(\"OU=Berlin,DC=corp,DC=example,DC=com\")");
		goto fail;
	}
	o = json_object();
	for (i = 0; i < NF(mr_match_schema); i++) {
		if (!v[i].present)
			continue;
		any = 1;
		json_object_set_new(o, mr_match_schema[i].name,
		    json_string(v[i].s));
	}
	if (!any) {
		json_decref(o);
		snprintf(msg, msglen, "match: give at least one of ip_cidr, "
		    "dns_suffix, ou_dn, os, source");
		goto fail;
	}
	*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	json_decref(root);
	if (*out == NULL) {
		snprintf(msg, msglen, "match: out of memory");
		return -1;
	}
	return 0;
 fail:
	json_decref(root);
	return -1;
}

static int
mr_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const struct api_value *v = ar->vals;
	json_t	*root = NULL, *match = NULL, *rule = NULL;
	char	 msg[512], *mtext = NULL;
	int64_t	 gid;
	int	 rc;

	if (!rules_may_write(ar, au))
		return DB_OK;
	if (rules_body(ar, "match", mr_schema, NF(mr_schema), &root, &match,
	    msg, sizeof(msg)) == -1 ||
	    mr_match(match, &mtext, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		rc = DB_OK;
		goto done;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qa_group_resolve(conn, au->vs_id, v[MR_GROUP].s, &gid, err,
	    errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "group: no group '%.300s'",
		    v[MR_GROUP].s);
		rc = DB_OK;
		goto end;
	}
	if (rc != DB_OK)
		goto end;
	rc = qr_moving_rule_create(conn, au->vs_id, v[MR_NAME].s,
	    v[MR_ORDER].present ? (int)v[MR_ORDER].i : 100, gid, mtext,
	    v[MR_MODE].present ? v[MR_MODE].s : "once",
	    v[MR_ENABLED].present ? v[MR_ENABLED].b : 1, &rule, err, errlen);
	if (rc == QR_CONFLICT) {
		api_req_fail(ar, 409, "conflict", "name: a moving rule named "
		    "'%.64s' exists", v[MR_NAME].s);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "moving_rule_create", json_string_value(json_object_get(
		    rule, "id")), json_pack("{s:O}", "after", rule));
		ar->resp = rule;
		ar->status = 201;
	}
 end:
	rc = rules_end(conn, ar, rc, err, errlen);
 done:
	free(mtext);
	json_decref(match);
	json_decref(root);
	return rc;
}

static int
mr_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	return rules_delete(conn, ar, au, qr_moving_rule_delete,
	    "moving rule", "moving_rule_delete", err, errlen);
}

/* A round for this virtual server now, in this request's transaction. */
static int
rules_run_now(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct qr_round	 st;
	int		 rc;

	if (ar->body_len > 0) {
		json_t			*root;
		char			 msg[256];

		if (api_json_validate(ar->body_text, ar->body_len, NULL, 0,
		    &root, ar->vals, msg, sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		json_decref(root);
	}
	memset(&st, 0, sizeof(st));
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if ((rc = qr_round(conn, au->vs_id, 0, &st, err, errlen)) == DB_OK) {
		json_t	*groups = json_array();
		char	 id[24];
		size_t	 i;

		for (i = 0; i < st.nmoved_to; i++) {
			snprintf(id, sizeof(id), "%lld",
			    (long long)st.moved_to[i].group);
			json_array_append_new(groups, json_string(id));
		}
		ar->resp = json_pack("{s:I,s:I,s:I,s:o}",
		    "status_changed", (json_int_t)st.status_changed,
		    "evaluated", (json_int_t)st.evaluated,
		    "moved", (json_int_t)st.moved,
		    "moved_to_groups", groups);
		ar->status = 202;
	}
	return rules_end(conn, ar, rc, err, errlen);
}

/* On the loop: the moved devices' agents get their new group's policy. */
static void
rules_run_after(struct api_req *ar)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(json_object_get(ar->resp, "moved_to_groups"), i, v)
		policy_push_group(ar->cd, ar->vs_id,
		    strtoll(json_string_value(v), NULL, 10));
}

const struct api_endpoint api_endpoints_rules[] = {
	{ EVHTTP_REQ_GET, "/status-rules", API_A_READ, sr_list, NULL },
	{ EVHTTP_REQ_POST, "/status-rules", API_A_ADMIN, sr_create, NULL },
	{ EVHTTP_REQ_PATCH, "/status-rules/{}", API_A_ADMIN, sr_patch, NULL },
	{ EVHTTP_REQ_DELETE, "/status-rules/{}", API_A_ADMIN, sr_delete,
	    NULL },
	{ EVHTTP_REQ_GET, "/moving-rules", API_A_READ, mr_list, NULL },
	{ EVHTTP_REQ_POST, "/moving-rules", API_A_ADMIN, mr_create, NULL },
	{ EVHTTP_REQ_DELETE, "/moving-rules/{}", API_A_ADMIN, mr_delete,
	    NULL },
	{ EVHTTP_REQ_POST, "/rules/run", API_A_ADMIN, rules_run_now,
	    rules_run_after },
	{ 0, NULL, 0, NULL, NULL }
};
