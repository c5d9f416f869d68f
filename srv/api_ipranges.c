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
 * IP ranges and scans: /ip-ranges/... (issue 5; srv/api.h explains route
 * tables).  A scan is long work: POST /ip-ranges/{id}/scan marks the range
 * queued and answers 202; the scanner (directory/scan.c) picks it up on the
 * loop at once.  Ranges act on the whole virtual server, so creating and
 * deleting them needs its administrator; operators may ask for a scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "iprange.h"
#include "log.h"

#include "db/db.h"
#include "db/q_scan.h"
#include "directory/scan.h"

#include "api.h"
#include "api_json.h"

static const struct api_field ir_schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "cidr",	AF_STRING, 0, 1, IPRANGE_TEXT_MAX, NULL },
	{ "start",	AF_STRING, 0, 1, IPRANGE_TEXT_MAX, NULL },
	{ "end",	AF_STRING, 0, 1, IPRANGE_TEXT_MAX, NULL },
	{ "interval_s",	AF_INT, 0, SCAN_INTERVAL_MIN_S, SCAN_INTERVAL_MAX_S,
	    NULL },
	{ "rate_pps",	AF_INT, 0, 1, SCAN_RATE_PPS_MAX, NULL },
	{ "concurrency", AF_INT, 0, 1, SCAN_CONCURRENCY, NULL },
};
#define IR_NAME		0
#define IR_CIDR		1
#define IR_START	2
#define IR_END		3
#define IR_INTERVAL	4
#define IR_RATE		5
#define IR_CONC		6

#define NF(s)	(sizeof(s) / sizeof((s)[0]))

/*
 * The body without "tcp_ports" checked against the schema (api_json has no
 * arrays), then the ports: distinct integers 1..65535, at most
 * SCAN_PORTS_MAX, as PostgreSQL array text.  -1 with msg naming the field.
 */
static int
ir_body(struct api_req *ar, json_t **root, char *ports, size_t plen,
    char *msg, size_t msglen)
{
	json_t	*obj, *a = NULL, *v;
	char	*rest;
	size_t	 i, j, off;
	int	 r, seen[SCAN_PORTS_MAX];

	*root = NULL;
	snprintf(ports, plen, "{}");
	obj = ar->body_text != NULL ? json_loadb(ar->body_text, ar->body_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return api_json_validate(ar->body_text ? ar->body_text : "",
		    ar->body_text ? ar->body_len : 0, ir_schema,
		    NF(ir_schema), root, ar->vals, msg, msglen);
	}
	if ((a = json_object_get(obj, "tcp_ports")) != NULL &&
	    !json_is_null(a)) {
		if (!json_is_array(a)) {
			snprintf(msg, msglen, "tcp_ports: must be an array of "
			    "port numbers");
			goto fail;
		}
		if (json_array_size(a) > SCAN_PORTS_MAX) {
			snprintf(msg, msglen, "tcp_ports: at most %d ports",
			    SCAN_PORTS_MAX);
			goto fail;
		}
		off = 1;
		json_array_foreach(a, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 65535) {
				snprintf(msg, msglen, "tcp_ports[%zu]: must be "
				    "an integer between 1 and 65535", i);
				goto fail;
			}
			seen[i] = (int)json_integer_value(v);
			for (j = 0; j < i; j++)
				if (seen[j] == seen[i]) {
					snprintf(msg, msglen, "tcp_ports[%zu]: "
					    "port %d is given twice", i,
					    seen[i]);
					goto fail;
				}
			off += snprintf(ports + off, plen - off, "%s%d",
			    i ? "," : "", seen[i]);
		}
		snprintf(ports + off, plen - off, "}");
	}
	json_object_del(obj, "tcp_ports");
	if ((rest = json_dumps(obj, JSON_COMPACT)) == NULL) {
		snprintf(msg, msglen, "body: out of memory");
		goto fail;
	}
	json_decref(obj);
	r = api_json_validate(rest, strlen(rest), ir_schema, NF(ir_schema),
	    root, ar->vals, msg, msglen);
	free(rest);
	return r;
 fail:
	json_decref(obj);
	return -1;
}

/* The range from cidr, or from start and end: canonical text. */
static int
ir_range(const struct api_value *v, char *out, size_t outlen, char *msg,
    size_t msglen)
{
	struct iprange	 r;
	char		 e[300];

	if (v[IR_CIDR].present && (v[IR_START].present || v[IR_END].present)) {
		snprintf(msg, msglen, "cidr: give either cidr or start and "
		    "end, not both");
		return -1;
	}
	if (v[IR_CIDR].present) {
		if (iprange_parse(v[IR_CIDR].s, &r, e, sizeof(e)) == -1) {
			snprintf(msg, msglen, "cidr: %s", e);
			return -1;
		}
	} else if (v[IR_START].present && v[IR_END].present) {
		if (iprange_parse_span(v[IR_START].s, v[IR_END].s, &r, e,
		    sizeof(e)) == -1) {
			snprintf(msg, msglen, "%s: %s", strstr(e, "end '") ?
			    "end" : "start", e);
			return -1;
		}
	} else {
		snprintf(msg, msglen, "%s: required (or give cidr)",
		    v[IR_START].present ? "end" : v[IR_END].present ?
		    "start" : "cidr");
		return -1;
	}
	if (iprange_format(&r, out, outlen) == -1) {
		snprintf(msg, msglen, "cidr: cannot be written back");
		return -1;
	}
	return 0;
}

/* Ranges act on the whole virtual server: its unscoped administrator. */
static int
ir_may_write(struct api_req *ar, const struct api_auth *au)
{
	size_t	 i;

	for (i = 0; i < au->nroles; i++)
		if (strcmp(au->roles[i].role, "administrator") == 0 &&
		    au->roles[i].scope == 0)
			return 1;
	api_req_fail(ar, 403, "forbidden", "IP ranges act on the whole "
	    "virtual server: this needs the administrator role without a "
	    "group scope");
	return 0;
}

static int
ir_end(PGconn *conn, struct api_req *ar, int rc, char *err, size_t errlen)
{
	if (rc != DB_OK || ar->status < 200 || ar->status > 299) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

static int
ir_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if ((rc = qs_ranges_list(conn, au->vs_id, &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "ip_ranges", a);
	ar->status = 200;
	return DB_OK;
}

static int
ir_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	const struct api_value *v = ar->vals;
	json_t	*root = NULL, *range = NULL;
	char	 msg[512], ports[SCAN_PORTS_MAX * 6 + 3], text[128];
	int	 rc;

	if (!ir_may_write(ar, au))
		return DB_OK;
	if (ir_body(ar, &root, ports, sizeof(ports), msg, sizeof(msg)) == -1 ||
	    ir_range(v, text, sizeof(text), msg, sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		json_decref(root);
		return DB_OK;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto done;
	rc = qs_range_create(conn, au->vs_id, v[IR_NAME].s, text,
	    v[IR_INTERVAL].present ? (int)v[IR_INTERVAL].i : 0, ports,
	    v[IR_RATE].present ? (int)v[IR_RATE].i : 0,
	    v[IR_CONC].present ? (int)v[IR_CONC].i : 0, &range, err, errlen);
	if (rc == QS_CONFLICT) {
		api_req_fail(ar, 409, "conflict", "name: an IP range named "
		    "'%.64s' exists", v[IR_NAME].s);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "ip_range_create", json_string_value(json_object_get(range,
		    "id")), json_pack("{s:O}", "after", range));
		ar->resp = range;
		ar->status = 201;
	}
	rc = ir_end(conn, ar, rc, err, errlen);
 done:
	json_decref(root);
	return rc;
}

static int
ir_get(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*range;
	int	 rc;

	rc = qs_range_get(conn, au->vs_id, ar->pp[0], &range, err, errlen);
	if (rc == QS_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no IP range '%.32s'",
		    ar->pp[0]);
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	ar->resp = range;
	ar->status = 200;
	return DB_OK;
}

static int
ir_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*old = NULL;
	int	 rc;

	if (!ir_may_write(ar, au))
		return DB_OK;
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qs_range_delete(conn, au->vs_id, ar->pp[0], &old, err, errlen);
	if (rc == QS_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no IP range '%.32s'",
		    ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name,
		    "ip_range_delete", ar->pp[0], json_pack("{s:O}", "before",
		    old));
		ar->status = 204;
	}
	json_decref(old);
	return ir_end(conn, ar, rc, err, errlen);
}

static int
ir_scan(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*range = NULL, *root;
	char	 msg[256];
	int	 rc;

	if (ar->body_len > 0) {
		if (api_json_validate(ar->body_text, ar->body_len, NULL, 0,
		    &root, ar->vals, msg, sizeof(msg)) == -1) {
			api_req_fail(ar, 400, "bad_request", "%s", msg);
			return DB_OK;
		}
		json_decref(root);
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	rc = qs_range_request(conn, au->vs_id, ar->pp[0], &range, err, errlen);
	if (rc == QS_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no IP range '%.32s'",
		    ar->pp[0]);
		rc = DB_OK;
	} else if (rc == DB_OK) {
		api_audit(conn, ar, au->vs_id, au->admin.name, "ip_range_scan",
		    ar->pp[0], NULL);
		ar->resp = range;
		ar->status = 202;
	}
	return ir_end(conn, ar, rc, err, errlen);
}

/* On the loop: the scanner looks for queued ranges now. */
static void
ir_kick(struct api_req *ar)
{
	scan_kick(ar->cd);
}

const struct api_endpoint api_endpoints_ipranges[] = {
	{ EVHTTP_REQ_GET, "/ip-ranges", API_A_READ, ir_list, NULL },
	{ EVHTTP_REQ_POST, "/ip-ranges", API_A_ADMIN, ir_create, ir_kick },
	{ EVHTTP_REQ_GET, "/ip-ranges/{}", API_A_READ, ir_get, NULL },
	{ EVHTTP_REQ_DELETE, "/ip-ranges/{}", API_A_ADMIN, ir_delete, NULL },
	{ EVHTTP_REQ_POST, "/ip-ranges/{}/scan", API_A_OPERATE, ir_scan,
	    ir_kick },
	{ 0, NULL, 0, NULL, NULL }
};
