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

/* The SQL of tasks (db/q_tasks.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "msg.h"
#include "util.h"

#include "db.h"
#include "sql.h"
#include "q_agents.h"
#include "q_api.h"
#include "q_tasks.h"

/* The subtrees of the scope groups ($2, a bigint[] or NULL); vs is $1. */
#define QT_SCOPE							\
	"scope(id) AS ("						\
	" SELECT id FROM groups WHERE vs_id = $1"			\
	"  AND id = ANY($2::bigint[])"					\
	" UNION ALL"							\
	" SELECT g.id FROM groups g JOIN scope s ON g.parent = s.id"	\
	"  WHERE g.vs_id = $1)"

static json_t *
qt_jstr(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() :
	    json_string(PQgetvalue(res, row, col));
}

void
qt_runs_free(struct qt_run *r, size_t n)
{
	size_t	 i;

	if (r == NULL)
		return;
	for (i = 0; i < n; i++)
		free(r[i].params);
	free(r);
}

/* Rows (id, device, type, params, expires_ms) into runs. */
static int
qt_runs_fill(PGresult *res, struct qt_run **out, size_t *n, char *err,
    size_t errlen)
{
	struct qt_run	*r;
	int		 i, nt = PQntuples(res);

	*out = NULL;
	*n = 0;
	if (nt == 0)
		return DB_OK;
	if ((r = calloc(nt, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < nt; i++) {
		r[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		strlcpy(r[i].device_id, PQgetvalue(res, i, 1),
		    sizeof(r[i].device_id));
		strlcpy(r[i].type, PQgetvalue(res, i, 2), sizeof(r[i].type));
		if ((r[i].params = strdup(PQgetvalue(res, i, 3))) == NULL) {
			qt_runs_free(r, i);
			snprintf(err, errlen, "out of memory");
			return DB_ERR;
		}
		r[i].expires_ms = PQgetisnull(res, i, 4) ? 0 :
		    strtoull(PQgetvalue(res, i, 4), NULL, 10);
	}
	*out = r;
	*n = nt;
	return DB_OK;
}

/* "{1,2,3}" of n ids, malloc'd. */
static char *
qt_id_array(const int64_t *ids, size_t n)
{
	char	*s, *p;
	size_t	 i, cap = n * 21 + 3;

	if ((s = malloc(cap)) == NULL)
		return NULL;
	p = s;
	*p++ = '{';
	for (i = 0; i < n; i++)
		p += snprintf(p, cap - (p - s), "%s%" PRId64, i ? "," : "",
		    ids[i]);
	*p++ = '}';
	*p = '\0';
	return s;
}

int
qt_tick_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct qt_tick	*t = arg;
	PGresult	*res;
	char		*ids = NULL, lim[16];
	const char	*p[1];
	int		 rc;

	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if (t->nsent > 0) {
		if ((ids = qt_id_array(t->sent, t->nsent)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = DB_ERR;
			goto fail;
		}
		p[0] = ids;
		/* A result may have come first: final runs stay final. */
		res = db_exec(conn, &rc, err, errlen,
		    "UPDATE task_runs SET state = 'sent', sent = now()"
		    " WHERE id = ANY($1::bigint[]) AND state = 'pending'",
		    1, p);
		free(ids);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	snprintf(lim, sizeof(lim), "%d", TASK_DUE_MAX);
	p[0] = lim;
	/*
	 * Due tasks -> one run per target device of the task's own virtual
	 * server; a periodic task moves to its first slot in the future (slots
	 * missed while the server was down are not made up).  A run expires
	 * expires_s after it was due, or at the next period.
	 */
	res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE due AS ("
	    " SELECT id, vs_id, type, params, group_id, recursive,"
	    "  device_ids, next_run, every_s, expires_s FROM tasks"
	    "  WHERE cancelled IS NULL AND next_run <= now()"
	    "  ORDER BY next_run LIMIT $1::int FOR UPDATE),"
	    "sub(task_id, vs_id, gid, rec) AS ("
	    " SELECT id, vs_id, group_id, recursive FROM due"
	    "  WHERE group_id IS NOT NULL"
	    " UNION ALL"
	    " SELECT s.task_id, s.vs_id, g.id, s.rec FROM sub s"
	    "  JOIN groups g ON g.parent = s.gid AND g.vs_id = s.vs_id"
	    "  WHERE s.rec),"
	    "tgt(task_id, device_id) AS ("
	    " SELECT s.task_id, d.id FROM sub s JOIN devices d"
	    "  ON d.group_id = s.gid AND d.vs_id = s.vs_id"
	    " UNION"
	    " SELECT t.id, d.id FROM due t JOIN devices d"
	    "  ON d.id = ANY(t.device_ids) AND d.vs_id = t.vs_id),"
	    "adv AS ("
	    " UPDATE tasks t SET next_run = CASE WHEN d.every_s IS NULL"
	    "  THEN NULL ELSE d.next_run + make_interval(secs => d.every_s *"
	    "  (floor(extract(epoch FROM now() - d.next_run) / d.every_s)"
	    "  + 1)) END"
	    "  FROM due d WHERE t.id = d.id),"
	    "ins AS ("
	    " INSERT INTO task_runs (task_id, vs_id, device_id, due, expires)"
	    " SELECT t.id, t.vs_id, g.device_id, t.next_run, t.next_run +"
	    "  make_interval(secs => coalesce(t.expires_s, t.every_s))"
	    " FROM tgt g JOIN due t ON t.id = g.task_id"
	    " RETURNING id, task_id, device_id, expires)"
	    "SELECT i.id, i.device_id, t.type, t.params::text,"
	    " (extract(epoch FROM i.expires) * 1000)::bigint"
	    " FROM ins i JOIN due t ON t.id = i.task_id"
	    " WHERE i.expires IS NULL OR i.expires > now()"
	    " ORDER BY i.id", 1, p);
	if (res == NULL)
		goto fail;
	rc = qt_runs_fill(res, &t->runs, &t->nruns, err, errlen);
	PQclear(res);
	if (rc != DB_OK)
		goto fail;
	res = db_exec(conn, &rc, err, errlen,
	    "UPDATE task_runs SET state = 'expired', finished = now()"
	    " WHERE state IN ('pending', 'sent') AND expires IS NOT NULL"
	    " AND expires <= now()", 0, NULL);
	if (res == NULL)
		goto fail;
	t->nexpired = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto fail;
	return DB_OK;
 fail:
	db_rollback(conn);
	qt_runs_free(t->runs, t->nruns);
	t->runs = NULL;
	t->nruns = 0;
	return rc;
}

void
qt_tick_free(struct qt_tick *t)
{
	if (t == NULL)
		return;
	free(t->sent);
	qt_runs_free(t->runs, t->nruns);
	free(t);
}

int
qt_open_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct qt_open	*o = arg;
	char		 vs[16], lim[16];
	const char	*p[3] = { o->device_id, vs, lim };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", o->vs_id);
	snprintf(lim, sizeof(lim), "%d", TASK_DELIVER_MAX);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT r.id, r.device_id, t.type, t.params::text,"
	    " (extract(epoch FROM r.expires) * 1000)::bigint"
	    " FROM task_runs r JOIN tasks t ON t.id = r.task_id"
	    "  AND t.vs_id = r.vs_id"
	    " WHERE r.device_id = $1::uuid AND r.vs_id = $2::int"
	    "  AND r.state IN ('pending', 'sent')"
	    "  AND (r.expires IS NULL OR r.expires > now())"
	    " ORDER BY r.id LIMIT $3::int", 3, p)) == NULL)
		return rc;
	rc = qt_runs_fill(res, &o->runs, &o->nruns, err, errlen);
	PQclear(res);
	return rc;
}

void
qt_open_free(struct qt_open *o)
{
	if (o == NULL)
		return;
	qt_runs_free(o->runs, o->nruns);
	free(o);
}

int
qt_result_run(PGconn *conn, void **items, size_t n, char *err,
    size_t errlen)
{
	struct jbuf	 jb;
	const char	*p[1];
	PGresult	*res;
	size_t		 i;
	int		 rc;

	memset(&jb, 0, sizeof(jb));
	jbuf_raw(&jb, "[", 1);
	for (i = 0; i < n; i++) {
		const struct qa_item *it = items[i];

		if (i > 0)
			jbuf_raw(&jb, ",", 1);
		jbuf_raw(&jb, it->json, it->len);
	}
	jbuf_raw(&jb, "]", 1);
	if (jb.err) {
		jbuf_free(&jb);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	p[0] = jb.p;
	/* Device clocks may be anything: an implausible time is now. */
	res = db_exec(conn, &rc, err, errlen,
	    "UPDATE task_runs r SET state = x.state,"
	    " finished = CASE WHEN x.finished BETWEEN 946684800000"
	    "  AND 4102444800000 THEN to_timestamp(x.finished / 1000.0)"
	    "  ELSE now() END,"
	    " exit_code = x.exit_code, output = x.output"
	    " FROM jsonb_to_recordset($1::jsonb) AS x(device uuid, vs int,"
	    "  run bigint, state text, exit_code int, output text,"
	    "  finished bigint)"
	    " WHERE r.id = x.run AND r.device_id = x.device"
	    "  AND r.vs_id = x.vs AND r.state IN ('pending', 'sent')",
	    1, p);
	jbuf_free(&jb);
	if (res == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}


int
qt_task_create(PGconn *conn, const struct qt_new *t, char id[24], char *err,
    size_t errlen)
{
	char		 vs[16], grp[24], every[16], exp[16];
	const char	*p[12];
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", t->vs_id);
	snprintf(grp, sizeof(grp), "%" PRId64, t->group);
	snprintf(every, sizeof(every), "%d", t->every_s);
	snprintf(exp, sizeof(exp), "%d", t->expires_s);
	p[0] = vs;
	p[1] = t->name;
	p[2] = t->type;
	p[3] = t->group != 0 ? grp : NULL;
	p[4] = t->recursive ? "t" : "f";
	p[5] = t->devices;
	p[6] = t->params;
	p[7] = t->schedule;
	p[8] = t->at;
	p[9] = t->every_s > 0 ? every : NULL;
	p[10] = t->expires_s > 0 ? exp : NULL;
	p[11] = t->created_by;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO tasks (vs_id, name, type, group_id, recursive,"
	    " device_ids, params, schedule, at, every_s, next_run, expires_s,"
	    " created_by) VALUES ($1::int, $2, $3, $4::bigint, $5::boolean,"
	    " $6::uuid[], $7::jsonb, $8, $9::timestamptz, $10::int,"
	    " CASE WHEN $8 = 'at' THEN $9::timestamptz ELSE now() END,"
	    " $11::int, $12) RETURNING id", 12, p)) == NULL)
		return rc;
	strlcpy(id, PQgetvalue(res, 0, 0), 24);
	PQclear(res);
	return DB_OK;
}

int
qt_devices_check(PGconn *conn, int vs_id, const char *scopes,
    const char *devices, char bad[64], char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[3] = { vs, scopes, devices };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " QT_SCOPE
	    " SELECT u::text FROM unnest($3::uuid[]) u"
	    " WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = u"
	    "  AND d.vs_id = $1::int AND ($2::bigint[] IS NULL"
	    "  OR d.group_id IN (SELECT id FROM scope)))"
	    " LIMIT 1", 3, p)) == NULL)
		return rc;
	if (PQntuples(res) > 0) {
		strlcpy(bad, PQgetvalue(res, 0, 0), 64);
		rc = QA_NOTFOUND;
	}
	PQclear(res);
	return rc;
}

#define QT_TASK_COLS							\
	"t.id, t.name, t.type, t.group_id, t.recursive,"		\
	" array_to_json(t.device_ids)::text, t.params::text, t.schedule,"	\
	" " TS("t.at") ", t.every_s, " TS("t.next_run") ", t.expires_s,"	\
	" t.created_by, " TS("t.created") ", " TS("t.cancelled")

/* Visible: the whole server, or the group or a device in scope. */
#define QT_VISIBLE							\
	" ($2::bigint[] IS NULL OR t.group_id IN (SELECT id FROM scope)"	\
	"  OR EXISTS (SELECT 1 FROM devices d WHERE d.vs_id = $1::int"	\
	"  AND d.id = ANY(t.device_ids)"				\
	"  AND d.group_id IN (SELECT id FROM scope)))"

static json_t *
qt_task_json(PGresult *res, int i)
{
	json_t		*t, *sched, *devs = json_null(), *params;
	const char	*s = PQgetvalue(res, i, 7);

	if (!PQgetisnull(res, i, 5) && (devs = json_loads(PQgetvalue(res, i,
	    5), JSON_DECODE_ANY, NULL)) == NULL)
		devs = json_null();
	if ((params = json_loads(PQgetvalue(res, i, 6), 0, NULL)) == NULL)
		params = json_object();
	if (strcmp(s, "at") == 0)
		sched = json_pack("{s:o}", "at", qt_jstr(res, i, 8));
	else if (strcmp(s, "every") == 0)
		sched = json_pack("{s:I}", "every_s",
		    (json_int_t)strtoll(PQgetvalue(res, i, 9), NULL, 10));
	else
		sched = json_string("now");
	t = json_pack("{s:s,s:o,s:s,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
	    "s:o}",
	    "id", PQgetvalue(res, i, 0),
	    "name", qt_jstr(res, i, 1),
	    "type", PQgetvalue(res, i, 2),
	    "group", qt_jstr(res, i, 3),
	    "recursive", PQgetvalue(res, i, 4)[0] == 't',
	    "devices", devs,
	    "params", params,
	    "schedule", sched,
	    "next_run", qt_jstr(res, i, 10),
	    "expires_s", PQgetisnull(res, i, 11) ? json_null() :
	    json_integer(strtoll(PQgetvalue(res, i, 11), NULL, 10)),
	    "created_by", qt_jstr(res, i, 12),
	    "created", qt_jstr(res, i, 13),
	    "cancelled", qt_jstr(res, i, 14));
	if (t != NULL)
		json_object_set_new(t, "state", json_string(
		    !PQgetisnull(res, i, 14) ? "cancelled" :
		    !PQgetisnull(res, i, 10) ? "scheduled" : "finished"));
	return t;
}

int
qt_task_get(PGconn *conn, int vs_id, const char *scopes, const char *id,
    int with_results, json_t **out, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[3] = { vs, scopes, id };
	PGresult	*res;
	json_t		*t, *results, *r;
	int		 rc, i;

	*out = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " QT_SCOPE " SELECT " QT_TASK_COLS
	    " FROM tasks t WHERE t.vs_id = $1::int AND t.id = $3::bigint"
	    " AND" QT_VISIBLE, 3, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QA_NOTFOUND;
	}
	t = qt_task_json(res, 0);
	PQclear(res);
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	if (!with_results) {
		*out = t;
		return DB_OK;
	}
	/* Only the devices within scope. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " QT_SCOPE
	    " SELECT r.id, r.device_id, d.name, r.state, " TS("r.due") ","
	    " " TS("r.sent") ", " TS("r.finished") ", r.exit_code, r.output"
	    " FROM task_runs r JOIN devices d ON d.id = r.device_id"
	    "  AND d.vs_id = r.vs_id"
	    " WHERE r.vs_id = $1::int AND r.task_id = $3::bigint"
	    "  AND ($2::bigint[] IS NULL OR d.group_id IN"
	    "  (SELECT id FROM scope))"
	    " ORDER BY r.due, d.name, r.id", 3, p)) == NULL) {
		json_decref(t);
		return rc;
	}
	results = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		r = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}",
		    "run", PQgetvalue(res, i, 0),
		    "device", PQgetvalue(res, i, 1),
		    "device_name", PQgetvalue(res, i, 2),
		    "state", PQgetvalue(res, i, 3),
		    "due", qt_jstr(res, i, 4),
		    "sent", qt_jstr(res, i, 5),
		    "finished", qt_jstr(res, i, 6));
		if (r == NULL)
			continue;
		if (!PQgetisnull(res, i, 7))
			json_object_set_new(r, "exit_code", json_integer(
			    strtoll(PQgetvalue(res, i, 7), NULL, 10)));
		if (!PQgetisnull(res, i, 8))
			json_object_set_new(r, "output",
			    json_string(PQgetvalue(res, i, 8)));
		json_array_append_new(results, r);
	}
	PQclear(res);
	/*
	 * Main's tasks also run on the servers below (issue 4): their
	 * results come back up as mirrors keyed by this server's task.
	 * Only for main's callers with an unrestricted scope: the scopes are
	 * groups here, the devices are not.
	 */
	if (vs_id == 0 && scopes == NULL) {
		if ((res = db_exec(conn, &rc, err, errlen,
		    "SELECT r.oid, r.device_oid, r.device_name, r.state,"
		    " " TS("r.finished") ", r.exit_code, r.output,"
		    " coalesce(s.name, r.origin::text)"
		    " FROM hier_task_results r LEFT JOIN hier_servers s"
		    "  ON s.uuid = r.origin"
		    " WHERE r.task_oid = hier_me() || '/' || $1"
		    " ORDER BY r.device_name, r.oid", 1, &id)) == NULL) {
			json_decref(results);
			json_decref(t);
			return rc;
		}
		for (i = 0; i < PQntuples(res); i++) {
			r = json_pack("{s:s,s:s,s:s?,s:s,s:o,s:s}",
			    "run", PQgetvalue(res, i, 0),
			    "device", PQgetvalue(res, i, 1),
			    "device_name", PQgetisnull(res, i, 2) ? NULL :
			    PQgetvalue(res, i, 2),
			    "state", PQgetvalue(res, i, 3),
			    "finished", qt_jstr(res, i, 4),
			    "server", PQgetvalue(res, i, 7));
			if (r == NULL)
				continue;
			if (!PQgetisnull(res, i, 5))
				json_object_set_new(r, "exit_code",
				    json_integer(strtoll(PQgetvalue(res, i, 5),
				    NULL, 10)));
			if (!PQgetisnull(res, i, 6))
				json_object_set_new(r, "output",
				    json_string(PQgetvalue(res, i, 6)));
			json_array_append_new(results, r);
		}
		PQclear(res);
	}
	json_object_set_new(t, "results", results);
	*out = t;
	return DB_OK;
}

int
qt_tasks_list(PGconn *conn, int vs_id, const char *scopes, const char *after,
    int limit, json_t **tasks, char **next, char *err, size_t errlen)
{
	char		 vs[16], lim[16];
	const char	*p[4] = { vs, scopes, after, lim };
	PGresult	*res;
	json_t		*a, *t;
	int		 rc, i, n;

	*tasks = NULL;
	*next = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	/* One more than asked: is there a next page? */
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " QT_SCOPE " SELECT " QT_TASK_COLS
	    " FROM tasks t WHERE t.vs_id = $1::int"
	    " AND ($3::bigint IS NULL OR t.id < $3::bigint) AND" QT_VISIBLE
	    " ORDER BY t.id DESC LIMIT $4::int", 4, p)) == NULL)
		return rc;
	a = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		if ((t = qt_task_json(res, i)) != NULL)
			json_array_append_new(a, t);
	if (n > limit)
		*next = strdup(PQgetvalue(res, limit - 1, 0));
	PQclear(res);
	*tasks = a;
	return DB_OK;
}

int
qt_task_cancel(PGconn *conn, int vs_id, const char *id, int *nruns,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };
	PGresult	*res;
	int		 rc;

	*nruns = 0;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE tasks SET cancelled = coalesce(cancelled, now()),"
	    " next_run = NULL WHERE vs_id = $1::int AND id = $2::bigint",
	    2, p)) == NULL)
		return rc;
	PQclear(res);
	/*
	 * Sent runs too: the device may not have it yet (it was offline);
	 * a result that still comes is ignored, the run being final.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE task_runs SET state = 'cancelled', finished = now()"
	    " WHERE vs_id = $1::int AND task_id = $2::bigint"
	    " AND state IN ('pending', 'sent')", 2, p)) == NULL)
		return rc;
	*nruns = atoi(PQcmdTuples(res));
	PQclear(res);
	return DB_OK;
}
