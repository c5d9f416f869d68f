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

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "config.h"
#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "util.h"

#include "db/db.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"

/*
 * The HTTPS API on port 13299.  The loop parses and checks each request
 * (cheap, pure), then hands it to the database as ONE job that
 * authenticates and answers it on a worker thread (srv/api_handlers.c);
 * the done callback sends the answer.  The loop never waits on the
 * database or on a password hash.
 */

#define API_PREFIX	"/api/v1"

static const char *const api_status_enum[] = {
	"ok", "warning", "critical", NULL
};

static void	 api_send(struct evhttp_request *, struct canopyd *, int,
		    json_t *, int);
static void	 api_req_free(struct api_req *);
static void	 api_prefail(struct api_req *, int, const char *,
		    const char *);
static int	 api_endpoint_find(struct api_req *, enum evhttp_cmd_type,
		    const char *, size_t);

void
api_req_fail(struct api_req *ar, int status, const char *code,
    const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(ar->resp);
	ar->resp = api_error_body(code, msg);
	ar->status = status;
	if (status == 401)
		ar->challenge = 1;
}

static void
api_send(struct evhttp_request *req, struct canopyd *cd, int status,
    json_t *body, int challenge)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf;
	char			*js;

	if (status >= 400)
		atomic_fetch_add(&cd->metrics.api_errors, 1);
	if (challenge) {
		/* Negotiate first: clients try the schemes in this order. */
		evhttp_add_header(h, "WWW-Authenticate", "Negotiate");
		evhttp_add_header(h, "WWW-Authenticate",
		    "Basic realm=\"canopy\"");
	}
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (status == 503)
		evhttp_add_header(h, "Retry-After", "2");
	if (status == 204 || body == NULL) {
		evhttp_send_reply(req, status, NULL, NULL);
		return;
	}
	if ((buf = evbuffer_new()) == NULL ||
	    (js = json_dumps(body, JSON_COMPACT)) == NULL) {
		evbuffer_free(buf);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(buf, js, strlen(js));
	evbuffer_add(buf, "\n", 1);
	free(js);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

/* Answers at once, on the loop, with an error body. */
static void
api_send_error(struct evhttp_request *req, struct canopyd *cd, int status,
    const char *code, const char *msg)
{
	json_t	*b = api_error_body(code, msg);

	api_send(req, cd, status, b, status == 401);
	json_decref(b);
}

static void
api_req_free(struct api_req *ar)
{
	if (ar == NULL)
		return;
	if (ar->authz != NULL) {
		explicit_bzero(ar->authz, strlen(ar->authz));
		free(ar->authz);
	}
	json_decref(ar->body);
	json_decref(ar->resp);
	free(ar->group);
	free(ar->status_q);
	free(ar->q);
	free(ar->vs);
	if (ar->query != NULL) {
		evhttp_clear_headers(ar->query);
		free(ar->query);
	}
	free(ar->body_text);
	free(ar->negotiate_out);
	if (ar->totp != NULL) {
		explicit_bzero(ar->totp, strlen(ar->totp));
		free(ar->totp);
	}
	free(ar);
}

/*
 * The client went away.  A request still on the connection is freed by
 * libevent right after this; one it detached (EOF while we were busy) is
 * now ours to free.  Either way nothing touches it again except us.
 */
static void
api_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct api	*api = arg;
	struct api_req	*ar;

	TAILQ_FOREACH(ar, &api->pending, entry) {
		if (ar->evcon != evcon || ar->req == NULL || ar->orphan)
			continue;
		if (evhttp_request_get_connection(ar->req) == NULL)
			ar->orphan = 1;
		else
			ar->req = NULL;
	}
}

static void
api_metrics_line(struct evbuffer *b, const char *name, const char *type,
    const char *help, double v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
	    name, help, name, type, name, v);
}

static void
api_send_metrics(struct evhttp_request *req, struct api *api)
{
	struct canopyd	*cd = api->cd;
	struct metrics	*m = &cd->metrics;
	struct db_stats	 st;
	struct evbuffer	*b;

	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	memset(&st, 0, sizeof(st));
	if (cd->db != NULL)
		db_get_stats(cd->db, &st);
	api_metrics_line(b, "canopy_agents_connected", "gauge",
	    "Agents connected now.", cd->agents != NULL ?
	    (double)agents_connected(cd->agents) : 0);
	api_metrics_line(b, "canopy_agent_connections_total", "counter",
	    "Agent connections accepted.", (double)m->agent_connections);
	api_metrics_line(b, "canopy_agent_protocol_errors_total", "counter",
	    "Agent connections closed for a protocol error.",
	    (double)m->agent_protocol_errors);
	api_metrics_line(b, "canopy_enrolments_total", "counter",
	    "Agents enrolled.", (double)m->enrolments);
	api_metrics_line(b, "canopy_syncs_total", "counter",
	    "Agent syncs committed.", (double)m->syncs);
	api_metrics_line(b, "canopy_syncs_inventory_total", "counter",
	    "Agent syncs with a full inventory.", (double)m->syncs_inventory);
	api_metrics_line(b, "canopy_heartbeats_total", "counter",
	    "Agent heartbeats.", (double)m->heartbeats);
	api_metrics_line(b, "canopy_events_total", "counter",
	    "Agent events stored.", (double)m->events);
	api_metrics_line(b, "canopy_retries_total", "counter",
	    "Retry answers sent to agents.", (double)m->retries);
	api_metrics_line(b, "canopy_api_requests_total", "counter",
	    "HTTP API requests.", (double)m->api_requests);
	api_metrics_line(b, "canopy_api_errors_total", "counter",
	    "HTTP API answers with status 400 or above.",
	    (double)m->api_errors);
	api_metrics_line(b, "canopy_api_requests_pending", "gauge",
	    "HTTP API requests waiting for the database.",
	    (double)api->npending);
	api_metrics_line(b, "canopy_db_ready", "gauge",
	    "1 when the database is reachable.", (double)st.ready);
	api_metrics_line(b, "canopy_db_queue_depth", "gauge",
	    "Database jobs waiting for a worker.", (double)st.queue_depth);
	api_metrics_line(b, "canopy_db_jobs_total", "counter",
	    "Database jobs done.", (double)st.jobs_done);
	api_metrics_line(b, "canopy_db_jobs_failed_total", "counter",
	    "Database jobs failed.", (double)st.jobs_failed);
	api_metrics_line(b, "canopy_db_batches_total", "counter",
	    "Database batches run.", (double)st.batches);
	api_metrics_line(b, "canopy_db_batch_items_total", "counter",
	    "Items written in batches.", (double)st.batch_items);
	api_metrics_line(b, "canopy_db_latency_ms_mean", "gauge",
	    "Mean run time of database jobs, in milliseconds.",
	    st.latency_count > 0 ? st.latency_ms_sum /
	    (double)st.latency_count : 0);
	api_metrics_line(b, "canopy_uptime_seconds", "gauge",
	    "Seconds since the server started.",
	    (double)(wall_ms() - cd->started_ms) / 1000.0);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

/*
 * The device exists and the caller may act on it (the worker checked):
 * tell its agent, if connected, to sync now.  On the loop, where the
 * agent sessions live.
 */
static void
api_push_sync(struct api_req *ar)
{
	json_decref(ar->resp);
	ar->resp = NULL;
	if (agents_push_sync(ar->cd->agents, ar->id) == -1) {
		api_req_fail(ar, 409, "not_connected", "device %s is not "
		    "connected; its agent syncs when it next connects", ar->id);
		return;
	}
	ar->status = 202;
	ar->resp = json_pack("{s:s, s:b}", "device", ar->id, "pushed", 1);
	if (ar->resp == NULL)
		api_req_fail(ar, 500, "internal", "out of memory");
}

static void
api_job_done(int rc, const char *err, void *arg)
{
	struct api_req	*ar = arg;
	struct evhttp_request *req = ar->req;

	if (ar->api != NULL) {
		TAILQ_REMOVE(&ar->api->pending, ar, entry);
		ar->api->npending--;
	}
	if (req == NULL) {
		api_req_free(ar);
		return;
	}
	if (ar->orphan) {
		evhttp_request_free(req);
		api_req_free(ar);
		return;
	}
	if (rc == DB_EDOWN) {
		log_debug("api: %s: database: %s", ar->addr, err ? err : "down");
		api_req_fail(ar, 503, "unavailable",
		    "the database is not reachable; try again shortly");
	} else if (rc != DB_OK || ar->status == 0 ||
	    (ar->resp == NULL && ar->status != 204)) {
		log_warnx("api: %s %s: %s", ar->addr,
		    evhttp_request_get_uri(req), err && *err ? err :
		    "no answer");
		api_req_fail(ar, 500, "internal",
		    "internal error; the server log has details");
	}
	if (ar->route == API_R_DEVICE_SYNC && ar->status == 200)
		api_push_sync(ar);
	if (ar->rt != NULL && ar->rt->after != NULL && ar->status >= 200 &&
	    ar->status < 300)
		ar->rt->after(ar);
	/* Kerberos mutual authentication: the acceptor's answer token. */
	if (ar->negotiate_out != NULL && ar->status < 400) {
		char	*h;

		if (asprintf(&h, "Negotiate %s", ar->negotiate_out) != -1) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "WWW-Authenticate", h);
			free(h);
		}
	}
	if (ar->route == API_R_METRICS && ar->status == 200 && ar->api) {
		api_send_metrics(req, ar->api);
	} else {
		if (ar->status == 405 && ar->allow != NULL)
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", ar->allow);
		api_send(req, ar->cd, ar->status, ar->resp, ar->challenge);
	}
	log_debug("api: %s %s -> %d (%llu ms)", ar->addr,
	    evhttp_request_get_uri(req), ar->status,
	    (unsigned long long)(mono_ms() - ar->start_ms));
	api_req_free(ar);
}

/*
 * Matches path (len bytes) against a route pattern: literal segments, and
 * "{}" for one non-empty segment, copied (unescaped) into pp[].
 */
static int
api_pattern_match(const char *pat, const char *path, size_t len,
    char pp[API_PATH_PARAMS][API_PATH_MAX + 1])
{
	const char	*p = path, *end = path + len, *seg;
	char		*dec;
	size_t		 n, np = 0;

	while (*pat != '\0') {
		if (p >= end || *pat != '/' || *p != '/')
			return -1;
		pat++;
		p++;
		for (seg = p; p < end && *p != '/'; p++)
			;
		n = (size_t)(p - seg);
		if (strncmp(pat, "{}", 2) == 0 && (pat[2] == '/' ||
		    pat[2] == '\0')) {
			if (n == 0 || np >= API_PATH_PARAMS ||
			    n > API_PATH_MAX)
				return -1;
			memcpy(pp[np], seg, n);
			pp[np][n] = '\0';
			if ((dec = evhttp_uridecode(pp[np], 0, NULL)) == NULL)
				return -1;
			strlcpy(pp[np], dec, API_PATH_MAX + 1);
			free(dec);
			np++;
			pat += 2;
			continue;
		}
		if (strncmp(pat, seg, n) != 0 || (pat[n] != '/' &&
		    pat[n] != '\0'))
			return -1;
		pat += n;
	}
	return p == end ? 0 : -1;
}

static const char *
api_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:	return "GET";
	case EVHTTP_REQ_POST:	return "POST";
	case EVHTTP_REQ_PUT:	return "PUT";
	case EVHTTP_REQ_DELETE:	return "DELETE";
	case EVHTTP_REQ_PATCH:	return "PATCH";
	default:		return "?";
	}
}

/* The modules' routes: 0 when one matched (or a 405 was set), else -1. */
static int
api_endpoint_find(struct api_req *ar, enum evhttp_cmd_type cmd,
    const char *path, size_t len)
{
	const struct api_endpoint *const *t, *r, *other = NULL;
	char		*allow = ar->allow_buf, msg[128];

	for (t = api_endpoint_tables; *t != NULL; t++) {
		for (r = *t; r->pattern != NULL; r++) {
			if (api_pattern_match(r->pattern, path, len,
			    ar->pp) == -1)
				continue;
			if (r->method == cmd || (cmd == EVHTTP_REQ_HEAD &&
			    r->method == EVHTTP_REQ_GET)) {
				ar->rt = r;
				return 0;
			}
			other = r;
		}
	}
	if (other == NULL)
		return -1;
	/* The path exists with other methods: say which. */
	allow[0] = '\0';
	for (t = api_endpoint_tables; *t != NULL; t++)
		for (r = *t; r->pattern != NULL; r++)
			if (api_pattern_match(r->pattern, path, len,
			    ar->pp) == 0) {
				if (allow[0] != '\0')
					strlcat(allow, ", ",
					    sizeof(ar->allow_buf));
				strlcat(allow, api_method_name(r->method),
				    sizeof(ar->allow_buf));
			}
	ar->allow = allow;
	snprintf(msg, sizeof(msg), "use %s", allow);
	api_prefail(ar, 405, "method_not_allowed", msg);
	return 0;
}

/* The pre-authentication error: answered after the credentials check. */
static void
api_prefail(struct api_req *ar, int status, const char *code,
    const char *msg)
{
	if (ar->err_status != 0)
		return;
	ar->err_status = status;
	ar->err_code = code;
	strlcpy(ar->err_msg, msg, sizeof(ar->err_msg));
}

static int
api_dup(char **dst, const char *src)
{
	if (src == NULL)
		return 0;
	return (*dst = strdup(src)) == NULL ? -1 : 0;
}

/* A table route: the query parsed, the body copied (checked by run). */
static int
api_prepare_table(struct api_req *ar, struct evhttp_request *req,
    const char *query)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);
	char		 msg[160];

	if ((ar->query = calloc(1, sizeof(*ar->query))) == NULL)
		return -1;
	TAILQ_INIT(ar->query);
	if (query != NULL && evhttp_parse_query_str(query, ar->query) == -1) {
		api_prefail(ar, 400, "bad_request",
		    "query: malformed query string");
		return 0;
	}
	if (len > ar->cd->conf->api_max_body) {
		snprintf(msg, sizeof(msg), "body: %zu bytes exceeds the limit "
		    "of %u (api-max-body)", len, ar->cd->conf->api_max_body);
		api_prefail(ar, 413, "too_large", msg);
		return 0;
	}
	if (len == 0)
		return 0;
	if ((ar->body_text = malloc(len + 1)) == NULL)
		return -1;
	if (evbuffer_copyout(in, ar->body_text, len) != (ev_ssize_t)len)
		return -1;
	ar->body_text[len] = '\0';
	ar->body_len = len;
	return 0;
}

const char *
api_query(const struct api_req *ar, const char *name)
{
	const struct evkeyval	*kv;
	const char		*v = NULL;

	if (ar->query == NULL)
		return NULL;
	TAILQ_FOREACH(kv, ar->query, next)
		if (strcmp(kv->key, name) == 0)
			v = kv->value;
	return v;
}

/* Parses the query and body of the request for its route. */
static int
api_prepare(struct api_req *ar, struct evhttp_request *req, const char *query)
{
	struct evkeyvalq	 params;
	struct evbuffer		*in;
	const char		*v;
	char			 msg[512];
	long long		 n;
	size_t			 len;
	int			 b, rc = 0;

	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == -1) {
		api_prefail(ar, 400, "bad_request",
		    "query: malformed query string");
		return 0;
	}
	if ((v = evhttp_find_header(&params, "vs")) != NULL) {
		if (api_param_str("vs", v, API_NAME_MAX, msg, sizeof(msg)) == -1)
			api_prefail(ar, 400, "bad_request", msg);
		else if (api_dup(&ar->vs, v) == -1)
			rc = -1;
	}
	if (ar->rt != NULL) {
		/* params must be freed here too (leaked before). */
		if (rc == 0)
			rc = api_prepare_table(ar, req, query);
		evhttp_clear_headers(&params);
		return rc;
	}
	switch (ar->route) {
	case API_R_LOGIN:
	case API_R_ENROLL:
		in = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(in);
		if (len > ar->cd->conf->api_max_body) {
			snprintf(msg, sizeof(msg), "body: %zu bytes exceeds the "
			    "limit of %u (api-max-body)", len,
			    ar->cd->conf->api_max_body);
			api_prefail(ar, 413, "too_large", msg);
			break;
		}
		v = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
		if (v == NULL) {
			rc = -1;
			break;
		}
		if (ar->route == API_R_LOGIN ?
		    api_json_validate(v, len, api_login_schema,
		    api_login_nfields, &ar->body, ar->vals, msg,
		    sizeof(msg)) == -1 :
		    api_json_validate(v, len, api_enroll_schema,
		    api_enroll_nfields, &ar->body, ar->vals, msg,
		    sizeof(msg)) == -1)
			api_prefail(ar, 400, "bad_request", msg);
		break;
	case API_R_DEVICES:
		ar->limit = API_PAGE_DEFAULT;
		if ((v = evhttp_find_header(&params, "limit")) != NULL) {
			if (api_param_int("limit", v, 1, API_PAGE_MAX, &n, msg,
			    sizeof(msg)) == -1)
				api_prefail(ar, 400, "bad_request", msg);
			else
				ar->limit = (int)n;
		}
		if ((v = evhttp_find_header(&params, "recursive")) != NULL) {
			if (api_param_bool("recursive", v, &b, msg,
			    sizeof(msg)) == -1)
				api_prefail(ar, 400, "bad_request", msg);
			else
				ar->recursive = b;
		}
		/* The devices of the servers below, from the mirrors. */
		if ((v = evhttp_find_header(&params, "hierarchy")) != NULL) {
			if (api_param_bool("hierarchy", v, &b, msg,
			    sizeof(msg)) == -1)
				api_prefail(ar, 400, "bad_request", msg);
			else
				ar->hierarchy = b;
		}
		if ((v = evhttp_find_header(&params, "status")) != NULL &&
		    *v != '\0') {
			if (api_param_enum("status", v, api_status_enum, msg,
			    sizeof(msg)) == -1)
				api_prefail(ar, 400, "bad_request", msg);
			else if (api_dup(&ar->status_q, v) == -1)
				rc = -1;
		}
		if ((v = evhttp_find_header(&params, "q")) != NULL &&
		    *v != '\0') {
			if (api_param_str("q", v, API_NAME_MAX, msg,
			    sizeof(msg)) == -1)
				api_prefail(ar, 400, "bad_request", msg);
			else if (api_dup(&ar->q, v) == -1)
				rc = -1;
		}
		if ((v = evhttp_find_header(&params, "group")) != NULL &&
		    *v != '\0') {
			if (strlen(v) > API_PATH_MAX || api_ref_kind(v) == -1)
				api_prefail(ar, 400, "bad_request", "group: "
				    "must be a group id or a path starting "
				    "with '/'");
			else if (api_dup(&ar->group, v) == -1)
				rc = -1;
		}
		if ((v = evhttp_find_header(&params, "cursor")) != NULL &&
		    *v != '\0') {
			if (api_cursor_decode(v, ar->cursor_name,
			    sizeof(ar->cursor_name), ar->cursor_id) == -1)
				api_prefail(ar, 400, "bad_request", "cursor: "
				    "not one this server gave out; start "
				    "again without it");
			else
				ar->has_cursor = 1;
		}
		break;
	default:
		break;
	}
	evhttp_clear_headers(&params);
	return rc;
}

/* Which route a path under /api/v1 is, and whether the method fits. */
static void
api_route(struct api_req *ar, enum evhttp_cmd_type cmd, const char *path)
{
	static const struct {
		const char	*path;
		enum api_route	 route;
		int		 post;		/* else GET */
	} routes[] = {
		{ "/login",		API_R_LOGIN,	1 },
		{ "/logout",		API_R_LOGOUT,	1 },
		{ "/whoami",		API_R_WHOAMI,	0 },
		{ "/enrollment-tokens",	API_R_ENROLL,	1 },
		{ "/devices",		API_R_DEVICES,	0 },
	};
	size_t	 i, len;
	int	 get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

	len = strlen(path);
	if (len > 1 && path[len - 1] == '/')
		len--;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strlen(routes[i].path) != len ||
		    strncmp(routes[i].path, path, len) != 0)
			continue;
		if (routes[i].post ? cmd != EVHTTP_REQ_POST : !get) {
			/* A module may serve the other methods of it. */
			if (api_endpoint_find(ar, cmd, path, len) == 0 &&
			    ar->rt != NULL)
				return;
			ar->allow = routes[i].post ? "POST" : "GET, HEAD";
			api_prefail(ar, 405, "method_not_allowed",
			    routes[i].post ? "use POST" : "use GET");
		}
		ar->route = routes[i].route;
		return;
	}
	/* /devices/{id} and /devices/{id}/sync */
	if (strncmp(path, "/devices/", 9) == 0 && len > 9) {
		int sync = len > 14 &&
		    strncmp(path + len - 5, "/sync", 5) == 0;

		if (sync)
			len -= 5;
		if (memchr(path + 9, '/', len - 9) != NULL)
			goto none;
		ar->route = sync ? API_R_DEVICE_SYNC : API_R_DEVICE;
		if (sync && cmd != EVHTTP_REQ_POST) {
			ar->allow = "POST";
			api_prefail(ar, 405, "method_not_allowed", "use POST");
		} else if (!sync && !get) {
			ar->allow = "GET, HEAD";
			api_prefail(ar, 405, "method_not_allowed", "use GET");
		}
		/* A malformed id names no device: 404, never a 500. */
		if (len - 9 >= sizeof(ar->id))
			api_prefail(ar, 404, "not_found", "no such device");
		else {
			memcpy(ar->id, path + 9, len - 9);
			ar->id[len - 9] = '\0';
			if (!api_uuid_valid(ar->id))
				api_prefail(ar, 404, "not_found",
				    "no such device");
		}
		return;
	}
none:
	ar->route = API_R_NONE;
	if (api_endpoint_find(ar, cmd, path, len) == 0)
		return;
	api_prefail(ar, 404, "not_found", "no such resource");
}

/* Copies what the worker needs and queues the job. */
static void
api_submit(struct api *api, struct evhttp_request *req, enum api_route route,
    const char *path, const char *query)
{
	struct canopyd		*cd = api->cd;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct api_req		*ar;
	const char		*authz;
	char			*host = NULL;
	ev_uint16_t		 port = 0;

	if ((ar = calloc(1, sizeof(*ar))) == NULL) {
		log_warn("api: calloc");
		api_send_error(req, cd, 503, "unavailable", "out of memory");
		return;
	}
	ar->api = api;
	ar->cd = cd;
	ar->req = req;
	ar->evcon = evcon;
	ar->start_ms = mono_ms();
	strlcpy(ar->server, cd->conf->server_name, sizeof(ar->server));
	if (evcon != NULL) {
		evhttp_connection_get_peer(evcon, &host, &port);
		if (host != NULL)
			strlcpy(ar->addr, host, sizeof(ar->addr));
	}
	ar->route = route;
	if (route == API_R_NONE)
		api_route(ar, evhttp_request_get_command(req), path);
	if (api_prepare(ar, req, query) == -1)
		goto oom;

	authz = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (authz == NULL && ar->route == API_R_LOGIN && ar->err_status != 0) {
		/* The body is the credentials: say what is wrong with it. */
		api_send_error(req, cd, ar->err_status, ar->err_code,
		    ar->err_msg);
		api_req_free(ar);
		return;
	}
	if (authz == NULL && !(ar->route == API_R_LOGIN &&
	    ar->vals[API_LOGIN_USER].present)) {
		api_send_error(req, cd, 401, "unauthenticated",
		    "credentials required: Basic, Bearer or Negotiate");
		api_req_free(ar);
		return;
	}
	/* Negotiate is accepted on the worker (CPU work, srv/api_auth.c). */
	if (api_dup(&ar->authz, authz) == -1)
		goto oom;
	if (api_dup(&ar->totp, evhttp_find_header(
	    evhttp_request_get_input_headers(req), "X-Canopy-TOTP")) == -1)
		goto oom;

	if (db_submit(cd->db, api_job_run, api_job_done, ar) == -1) {
		api_send_error(req, cd, 503, "unavailable",
		    "the server is busy; try again shortly");
		api_req_free(ar);
		return;
	}
	TAILQ_INSERT_TAIL(&api->pending, ar, entry);
	api->npending++;
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, api_conn_closed, api);
	return;
 oom:
	log_warnx("api: out of memory");
	api_send_error(req, cd, 503, "unavailable", "out of memory");
	api_req_free(ar);
}

static void
api_handle(struct evhttp_request *req, void *arg)
{
	struct api		*api = arg;
	struct canopyd		*cd = api->cd;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	const char		*path, *query;
	json_t			*b;
	int			 get = cmd == EVHTTP_REQ_GET ||
				    cmd == EVHTTP_REQ_HEAD;

	atomic_fetch_add(&cd->metrics.api_requests, 1);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	if (path == NULL || *path == '\0')
		path = "/";

	if (strcmp(path, "/healthz") == 0) {
		if (!get) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			api_send_error(req, cd, 405, "method_not_allowed",
			    "use GET");
		} else if (cd->db != NULL && db_ready(cd->db)) {
			b = json_pack("{s:s}", "status", "ok");
			api_send(req, cd, 200, b, 0);
			json_decref(b);
		} else {
			b = json_pack("{s:s,s:s}", "status", "unavailable",
			    "reason", "database not reachable");
			api_send(req, cd, 503, b, 0);
			json_decref(b);
		}
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		if (!get) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			api_send_error(req, cd, 405, "method_not_allowed",
			    "use GET");
		} else if (cd->conf->metrics_public)
			api_send_metrics(req, api);
		else
			api_submit(api, req, API_R_METRICS, path, query);
		return;
	}
	if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) == 0 &&
	    (path[strlen(API_PREFIX)] == '/' ||
	    path[strlen(API_PREFIX)] == '\0')) {
		api_submit(api, req, API_R_NONE, path + strlen(API_PREFIX),
		    query);
		return;
	}
	api_send_error(req, cd, 404, "not_found", "no such resource; the API "
	    "is under " API_PREFIX);
}

/* Each accepted connection gets its own TLS session. */
static struct bufferevent *
api_bevcb(struct event_base *base, void *arg)
{
	struct api		*api = arg;
	struct bufferevent	*bev;
	SSL			*ssl;

	/*
	 * Returning NULL would make libevent serve plain HTTP on this
	 * connection: never.
	 */
	if ((ssl = SSL_new(api->ssl_ctx)) == NULL)
		fatalx("api: SSL_new failed");
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("api: bufferevent_openssl_socket_new failed");
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/*
 * libevent 2.1 answers a body over its own limit with a fixed HTML page and
 * offers no hook to change it.  So its limit sits above api-max-body, and
 * the handlers enforce api-max-body with the API's JSON 413; only a body far
 * over the limit (past this cap) still gets libevent's page, also a 413.
 */
static ev_ssize_t
api_body_cap(const struct conf *conf)
{
	uint64_t cap = (uint64_t)conf->api_max_body * 2;

	if (cap < (uint64_t)conf->api_max_body + API_BODY_SLACK)
		cap = (uint64_t)conf->api_max_body + API_BODY_SLACK;
	return (ev_ssize_t)cap;
}

struct api *
api_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct api	*api;
	const struct conf_listen *l;
	struct evhttp_bound_socket *bound;
	char		 tlserr[256];
	int		 i, n = 0, one;

	if ((api = calloc(1, sizeof(*api))) == NULL) {
		snprintf(err, errlen, "api: %s", strerror(errno));
		return NULL;
	}
	api->cd = cd;
	TAILQ_INIT(&api->pending);
	tlserr[0] = '\0';
	if ((api->ssl_ctx = tls_server_ctx(&cd->pki, 0, tlserr,
	    sizeof(tlserr))) == NULL) {
		snprintf(err, errlen, "api: TLS: %s", tlserr);
		goto fail;
	}
	if ((api->http = evhttp_new(cd->base)) == NULL) {
		snprintf(err, errlen, "api: evhttp_new failed");
		goto fail;
	}
	evhttp_set_bevcb(api->http, api_bevcb, api);
	evhttp_set_gencb(api->http, api_handle, api);
	evhttp_set_max_body_size(api->http, api_body_cap(cd->conf));
	evhttp_set_max_headers_size(api->http, API_MAX_HEADERS);
	evhttp_set_timeout(api->http, API_TIMEOUT_S);
	/* All of them: a wrong method is our 405 with a JSON body. */
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);

	for (i = 0; i < cd->conf->nlisten; i++) {
		l = &cd->conf->listen[i];
		if (l->kind != LISTEN_API)
			continue;
		if ((bound = evhttp_bind_socket_with_handle(api->http,
		    l->host, l->port)) == NULL) {
			snprintf(err, errlen, "listen api %s:%u: %s", l->host,
			    l->port, strerror(errno));
			goto fail;
		}
		/*
		 * Answers are written in pieces (TLS records): without this,
		 * Nagle holds the last one for the peer's delayed ACK, 40 ms a
		 * request.  Accepted sockets inherit it.
		 */
		one = 1;
		(void)setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof(one));
		log_info("api: listening on %s:%u", l->host, l->port);
		n++;
	}
	if (n == 0)
		log_info("api: no 'listen api' address: the API is off");
	return api;
 fail:
	api_stop(api);
	return NULL;
}

void
api_stop(struct api *api)
{
	struct api_req	*ar;

	if (api == NULL)
		return;
	/* Closes every connection; api_conn_closed marks their requests. */
	if (api->http != NULL)
		evhttp_free(api->http);
	/* Jobs still at the database finish on their own, touching nothing. */
	while ((ar = TAILQ_FIRST(&api->pending)) != NULL) {
		TAILQ_REMOVE(&api->pending, ar, entry);
		if (ar->orphan && ar->req != NULL)
			evhttp_request_free(ar->req);
		ar->req = NULL;
		ar->api = NULL;
	}
	if (api->ssl_ctx != NULL)
		SSL_CTX_free(api->ssl_ctx);
	free(api);
}

void
api_reconf(struct api *api, const struct conf *conf)
{
	/* Listen addresses need a restart; main.c says so. */
	evhttp_set_max_body_size(api->http, api_body_cap(conf));
}
