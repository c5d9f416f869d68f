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
 * The tasks API (srv/api.h explains route tables): create, show, list and
 * cancel tasks.  A task's target must lie within the caller's write scopes;
 * tasks and results outside the read scopes are 404 or not listed.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "util.h"

#include "db/db.h"
#include "db/q_api.h"
#include "db/q_tasks.h"

#include "api.h"
#include "api_json.h"

static const char *const at_types[] = {
	"inventory_refresh", "run_command", NULL
};
#define AT_TYPES_TEXT	"inventory_refresh, run_command"

static const char *
at_scopes(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

/* "2026-11-21T07:00:00Z", with optional fraction and offset. */
static int
at_iso8601(const char *s)
{
	struct tm	 tm;
	const char	*p;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) > 40 || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) ==
	    NULL)
		return -1;
	if (tm.tm_year < 70 || tm.tm_year > 8000)
		return -1;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (strcmp(p, "Z") == 0)
		return 0;
	if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && (p[3] == '\0' || (p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) &&
	    p[6] == '\0')))
		return 0;
	return -1;
}

struct at_new {
	json_t		*root;
	json_t		*params;	/* normalised, owned */
	char		*devices;	/* "{...}", malloc'd */
	char		 group[API_PATH_MAX + 1];
	const char	*type;
	const char	*name;
	const char	*schedule;
	const char	*at;
	int		 every_s;
	int		 expires_s;
	int		 recursive;
	int		 has_group;
};

static void
at_new_free(struct at_new *n)
{
	json_decref(n->root);
	json_decref(n->params);
	free(n->devices);
}

static int
at_int(json_t *v, const char *name, long long min, long long max, int *out,
    char *msg, size_t len)
{
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		snprintf(msg, len, "%s: must be an integer between %lld and "
		    "%lld", name, min, max);
		return -1;
	}
	*out = (int)json_integer_value(v);
	return 0;
}

static int
at_params(struct at_new *n, json_t *p, char *msg, size_t len)
{
	const char	*k, *cmd = NULL;
	json_t		*v;
	int		 timeout = TASK_TIMEOUT_DEFAULT_S;

	if (p != NULL && !json_is_object(p)) {
		snprintf(msg, len, "params: must be an object");
		return -1;
	}
	json_object_foreach(p, k, v) {
		if (strcmp(n->type, "run_command") == 0 &&
		    strcmp(k, "command") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > TASK_COMMAND_MAX) {
				snprintf(msg, len, "params.command: must be a "
				    "string of 1 to %d bytes",
				    TASK_COMMAND_MAX);
				return -1;
			}
			cmd = json_string_value(v);
		} else if (strcmp(n->type, "run_command") == 0 &&
		    strcmp(k, "timeout_s") == 0) {
			if (at_int(v, "params.timeout_s", TASK_TIMEOUT_MIN_S,
			    TASK_TIMEOUT_MAX_S, &timeout, msg, len) == -1)
				return -1;
		} else {
			snprintf(msg, len, "params.%.64s: unknown for type %s",
			    k, n->type);
			return -1;
		}
	}
	if (strcmp(n->type, "run_command") == 0) {
		if (cmd == NULL) {
			snprintf(msg, len, "params.command: required for "
			    "run_command");
			return -1;
		}
		n->params = json_pack("{s:s,s:i}", "command", cmd,
		    "timeout_s", timeout);
	} else
		n->params = json_object();
	return 0;
}

static int
at_schedule(struct at_new *n, json_t *s, char *msg, size_t len)
{
	const char	*k;
	json_t		*v;

	n->schedule = "now";
	if (s == NULL || (json_is_string(s) &&
	    strcmp(json_string_value(s), "now") == 0))
		return 0;
	if (!json_is_object(s) || json_object_size(s) != 1) {
		snprintf(msg, len, "schedule: must be \"now\", {\"at\": "
		    "\"<ISO-8601>\"} or {\"every_s\": N}");
		return -1;
	}
	json_object_foreach(s, k, v) {
		if (strcmp(k, "at") == 0) {
			if (!json_is_string(v) ||
			    at_iso8601(json_string_value(v)) == -1) {
				snprintf(msg, len, "schedule.at: must be an "
				    "ISO-8601 time such as "
				    "2026-01-02T03:04:05Z");
				return -1;
			}
			n->schedule = "at";
			n->at = json_string_value(v);
		} else if (strcmp(k, "every_s") == 0) {
			if (at_int(v, "schedule.every_s", TASK_EVERY_MIN_S,
			    TASK_EVERY_MAX_S, &n->every_s, msg, len) == -1)
				return -1;
			n->schedule = "every";
		} else {
			snprintf(msg, len, "schedule.%.64s: unknown; use at "
			    "or every_s", k);
			return -1;
		}
	}
	return 0;
}

static int
at_devices(struct at_new *n, json_t *d, char *msg, size_t len)
{
	size_t	 i, cap;
	json_t	*v;
	char	*p;

	if (!json_is_array(d) || json_array_size(d) == 0 ||
	    json_array_size(d) > TASK_DEVICES_MAX) {
		snprintf(msg, len, "devices: must be an array of 1 to %d "
		    "device ids", TASK_DEVICES_MAX);
		return -1;
	}
	cap = json_array_size(d) * 38 + 3;
	if ((n->devices = malloc(cap)) == NULL) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	p = n->devices;
	*p++ = '{';
	json_array_foreach(d, i, v) {
		if (!json_is_string(v) ||
		    !api_uuid_valid(json_string_value(v))) {
			snprintf(msg, len, "devices[%zu]: must be a device "
			    "id (a UUID)", i);
			return -1;
		}
		p += snprintf(p, cap - (p - n->devices), "%s%s", i ? "," : "",
		    json_string_value(v));
	}
	*p++ = '}';
	*p = '\0';
	return 0;
}

/* Checks the body of POST /tasks; -1 with msg naming the field. */
static int
at_parse(struct api_req *ar, struct at_new *n, char *msg, size_t len)
{
	static const char *const known[] = { "type", "name", "group",
	    "devices", "recursive", "params", "schedule", "expires_s", NULL };
	json_error_t	 je;
	const char	*k;
	json_t		*v;
	size_t		 i;

	memset(n, 0, sizeof(*n));
	n->recursive = 1;
	if (ar->body_text == NULL || ar->body_len == 0) {
		snprintf(msg, len, "body: a JSON object is required");
		return -1;
	}
	if ((n->root = json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, &je)) == NULL) {
		snprintf(msg, len, "body: not valid JSON: %s", je.text);
		return -1;
	}
	if (!json_is_object(n->root)) {
		snprintf(msg, len, "body: must be a JSON object");
		return -1;
	}
	json_object_foreach(n->root, k, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			snprintf(msg, len, "%.64s: unknown field", k);
			return -1;
		}
	}
	v = json_object_get(n->root, "type");
	if (v == NULL) {
		snprintf(msg, len, "type: required, one of " AT_TYPES_TEXT);
		return -1;
	}
	for (i = 0; at_types[i] != NULL; i++)
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), at_types[i]) == 0)
			break;
	if (at_types[i] == NULL) {
		snprintf(msg, len, "type: must be one of " AT_TYPES_TEXT);
		return -1;
	}
	n->type = at_types[i];
	if ((v = json_object_get(n->root, "name")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > TASK_NAME_MAX) {
			snprintf(msg, len, "name: must be a string of 1 to %d "
			    "bytes", TASK_NAME_MAX);
			return -1;
		}
		n->name = json_string_value(v);
	}
	if ((v = json_object_get(n->root, "group")) != NULL) {
		if (json_is_integer(v) && json_integer_value(v) > 0)
			snprintf(n->group, sizeof(n->group), "%lld",
			    (long long)json_integer_value(v));
		else if (json_is_string(v) && json_string_length(v) <=
		    API_PATH_MAX && api_ref_kind(json_string_value(v)) != -1)
			strlcpy(n->group, json_string_value(v),
			    sizeof(n->group));
		else {
			snprintf(msg, len, "group: must be a group id or a "
			    "path starting with '/'");
			return -1;
		}
		n->has_group = 1;
	}
	v = json_object_get(n->root, "devices");
	if (n->has_group == (v != NULL)) {
		snprintf(msg, len, "group: give either group or devices "
		    "(the task's target)%s", n->has_group ? ", not both" : "");
		return -1;
	}
	if (v != NULL && at_devices(n, v, msg, len) == -1)
		return -1;
	if ((v = json_object_get(n->root, "recursive")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(msg, len, "recursive: must be true or false");
			return -1;
		}
		n->recursive = json_is_true(v);
	}
	if (at_params(n, json_object_get(n->root, "params"), msg, len) == -1)
		return -1;
	if (at_schedule(n, json_object_get(n->root, "schedule"), msg,
	    len) == -1)
		return -1;
	if ((v = json_object_get(n->root, "expires_s")) != NULL &&
	    at_int(v, "expires_s", 1, TASK_EXPIRES_MAX_S, &n->expires_s, msg,
	    len) == -1)
		return -1;
	return 0;
}

static int
at_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct at_new	 n;
	struct qt_new	 q;
	char		 msg[512], id[24], bad[64], *ptext = NULL;
	const char	*scopes = at_scopes(au->write_scopes);
	int64_t		 gid = 0;
	int		 rc;

	if (at_parse(ar, &n, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		at_new_free(&n);
		return DB_OK;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out;
	if (n.has_group) {
		rc = qa_group_resolve(conn, au->vs_id, n.group, &gid, err,
		    errlen);
		if (rc == DB_OK)
			rc = qa_group_in_scope(conn, au->vs_id, gid, scopes,
			    err, errlen);
		if (rc == QA_NOTFOUND) {
			api_req_fail(ar, 404, "not_found", "group: no group "
			    "'%.300s'", n.group);
			goto done;
		}
	} else {
		rc = qt_devices_check(conn, au->vs_id, scopes, n.devices, bad,
		    err, errlen);
		if (rc == QA_NOTFOUND) {
			api_req_fail(ar, 404, "not_found", "devices: no device "
			    "'%s'", bad);
			goto done;
		}
	}
	if (rc != DB_OK)
		goto fail;
	if ((ptext = json_dumps(n.params, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = DB_ERR;
		goto fail;
	}
	memset(&q, 0, sizeof(q));
	q.vs_id = au->vs_id;
	q.name = n.name;
	q.type = n.type;
	q.group = gid;
	q.recursive = n.recursive;
	q.devices = n.devices;
	q.params = ptext;
	q.schedule = n.schedule;
	q.at = n.at;
	q.every_s = n.every_s;
	q.expires_s = n.expires_s;
	q.created_by = au->admin.name;
	if ((rc = qt_task_create(conn, &q, id, err, errlen)) != DB_OK)
		goto fail;
	/* The audit keeps what was asked, params included. */
	api_audit(conn, ar, au->vs_id, au->admin.name, "task_create", id,
	    json_deep_copy(n.root));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto fail;
	ar->resp = json_pack("{s:s}", "id", id);
	ar->status = 201;
	goto out;
 done:
	rc = DB_OK;
 fail:
	db_rollback(conn);
 out:
	free(ptext);
	at_new_free(&n);
	return rc;
}

/* A task id is digits; anything else cannot name one. */
static int
at_id_ok(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]) || i >= 18)
			return 0;
	return i > 0;
}

static int
at_show(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*t;
	int	 rc;

	if (!at_id_ok(ar->pp[0])) {
		api_req_fail(ar, 404, "not_found", "no such task");
		return DB_OK;
	}
	rc = qt_task_get(conn, au->vs_id, at_scopes(au->read_scopes),
	    ar->pp[0], 1, &t, err, errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such task");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = t;
	ar->status = 200;
	return DB_OK;
}

static int
at_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const char	*v, *cursor = NULL;
	long long	 limit = API_PAGE_DEFAULT;
	char		 msg[256], *next = NULL;
	json_t		*tasks;
	int		 rc;

	if ((v = api_query(ar, "limit")) != NULL && api_param_int("limit", v,
	    1, API_PAGE_MAX, &limit, msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if ((v = api_query(ar, "cursor")) != NULL && *v != '\0') {
		if (!at_id_ok(v)) {
			api_req_fail(ar, 400, "bad_request", "cursor: not one "
			    "this server gave out; start again without it");
			return DB_OK;
		}
		cursor = v;
	}
	if ((rc = qt_tasks_list(conn, au->vs_id, at_scopes(au->read_scopes),
	    cursor, (int)limit, &tasks, &next, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o,s:o}", "tasks", tasks,
	    "next", next != NULL ? json_string(next) : json_null());
	free(next);
	ar->status = 200;
	return DB_OK;
}

static int
at_cancel(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*t = NULL;
	int	 rc, nruns;

	if (!at_id_ok(ar->pp[0])) {
		api_req_fail(ar, 404, "not_found", "no such task");
		return DB_OK;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qt_task_get(conn, au->vs_id, at_scopes(au->write_scopes),
	    ar->pp[0], 0, &t, err, errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 404, "not_found", "no such task");
		return DB_OK;
	}
	if (rc != DB_OK ||
	    (rc = qt_task_cancel(conn, au->vs_id, ar->pp[0], &nruns, err,
	    errlen)) != DB_OK) {
		json_decref(t);
		db_rollback(conn);
		return rc;
	}
	api_audit(conn, ar, au->vs_id, au->admin.name, "task_cancel",
	    ar->pp[0], json_pack("{s:o,s:i}", "before", t,
	    "runs_cancelled", nruns));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK) {
		db_rollback(conn);
		return rc;
	}
	ar->status = 204;
	return DB_OK;
}

const struct api_endpoint api_endpoints_tasks[] = {
	{ EVHTTP_REQ_POST, "/tasks", API_A_OPERATE, at_create, NULL },
	{ EVHTTP_REQ_GET, "/tasks", API_A_READ, at_list, NULL },
	{ EVHTTP_REQ_GET, "/tasks/{}", API_A_READ, at_show, NULL },
	{ EVHTTP_REQ_DELETE, "/tasks/{}", API_A_OPERATE, at_cancel, NULL },
	{ 0, NULL, 0, NULL, NULL }
};
