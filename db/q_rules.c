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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "log.h"

#include "db.h"
#include "sql.h"
#include "q_rules.h"

/*
 * The rules' statements.  A round is set-based: each step is one statement
 * over every device, writing only the rows that change, so its cost does
 * not grow with round trips.
 */

/* Disk usage: the fullest filesystem of inventories not yet looked at. */
static const char sql_fs[] =
	"WITH x AS (SELECT i.device_id, i.updated, f.pct, f.mount"
	" FROM inventory i JOIN devices d ON d.id = i.device_id"
	" LEFT JOIN LATERAL (SELECT s.pct, s.mount FROM (SELECT"
	"  CASE WHEN jsonb_typeof(e->'size_bytes') = 'number'"
	"   AND jsonb_typeof(e->'used_bytes') = 'number'"
	"   THEN round(100 * (e->>'used_bytes')::numeric /"
	"    nullif((e->>'size_bytes')::numeric, 0), 1) END AS pct,"
	"  CASE WHEN jsonb_typeof(e) = 'object' THEN e->>'mount' END AS mount"
	"  FROM jsonb_array_elements(CASE WHEN"
	"   jsonb_typeof(i.data->'filesystems') = 'array'"
	"   THEN i.data->'filesystems' ELSE '[]'::jsonb END) AS e) s"
	"  WHERE s.pct IS NOT NULL ORDER BY s.pct DESC LIMIT 1) f ON true"
	" WHERE ($1::int IS NULL OR d.vs_id = $1)"
	" AND ($3::int IS NULL OR i.updated > now() - interval '1 second' * $3)"
	" AND i.updated > coalesce(d.fs_checked, '-infinity')"
	" LIMIT $2::int)"
	" UPDATE devices d SET fs_pct = x.pct, fs_mount = x.mount,"
	" fs_checked = x.updated FROM x WHERE d.id = x.device_id";

/*
 * Status: each device against each enabled rule of its virtual server; the
 * worst severity wins, every rule that holds is a reason.  A status change
 * is a server event.
 */
static const char sql_status[] =
	"WITH r AS (SELECT id, vs_id, name, kind, severity, ord,"
	"  CASE WHEN jsonb_typeof(params->'hours') = 'number'"
	"   THEN (params->>'hours')::numeric END AS hours,"
	"  CASE WHEN jsonb_typeof(params->'percent') = 'number'"
	"   THEN (params->>'percent')::numeric END AS pct,"
	"  canopy_sev_rank(coalesce(params->>'min_severity', 'error')) AS minsev"
	"  FROM status_rules WHERE enabled AND ($1::int IS NULL OR vs_id = $1)),"
	" ev AS (SELECT DISTINCT ON (e.device_id, r.id) e.device_id, r.id AS rid,"
	"  e.severity, e.type, e.text FROM r JOIN events e ON e.vs_id = r.vs_id"
	"  AND e.time > now() - interval '1 hour' * r.hours"
	"  WHERE r.kind = 'agent_event' AND e.agent_event_id IS NOT NULL"
	"  AND canopy_sev_rank(e.severity) >= r.minsev"
	"  ORDER BY e.device_id, r.id, e.time DESC, e.id DESC),"
	/* One branch per kind: plain predicates, no CASE over every pair. */
	" m AS (SELECT d.id, r.id AS rid, r.name, r.severity, r.ord,"
	"  format('not seen by the agent for more than %s hours', r.hours)"
	"  AS text FROM r JOIN devices d ON d.vs_id = r.vs_id"
	"  WHERE r.kind = 'not_seen' AND d.source = 'agent'"
	"  AND coalesce(d.last_seen, d.enrolled, d.first_seen) <"
	"   now() - interval '1 hour' * r.hours"
	"  UNION ALL SELECT d.id, r.id, r.name, r.severity, r.ord,"
	"  format('not seen by the agent or discovery for more than %s hours',"
	"  r.hours) FROM r JOIN devices d ON d.vs_id = r.vs_id"
	"  WHERE r.kind = 'not_visible' AND greatest(d.last_seen,"
	"   d.last_visible, d.first_seen) < now() - interval '1 hour' * r.hours"
	"  UNION ALL SELECT ev.device_id, r.id, r.name, r.severity, r.ord,"
	"  format('the agent reported %s event %s in the last %s hours: %s',"
	"  ev.severity, ev.type, r.hours, left(ev.text, 200))"
	"  FROM ev JOIN r ON r.id = ev.rid"
	"  UNION ALL SELECT d.id, r.id, r.name, r.severity, r.ord,"
	"  format('filesystem %s is %s%% full (limit %s%%)',"
	"  coalesce(d.fs_mount, '?'), d.fs_pct, r.pct)"
	"  FROM r JOIN devices d ON d.vs_id = r.vs_id"
	"  WHERE r.kind = 'disk_full' AND d.fs_pct >= r.pct),"
	" agg AS (SELECT m.id, jsonb_agg(jsonb_build_object('rule', m.name,"
	"  'severity', m.severity, 'text', m.text) ORDER BY"
	"  canopy_sev_rank(m.severity) DESC, m.ord, m.rid) AS reasons,"
	"  CASE max(canopy_sev_rank(m.severity)) WHEN 3 THEN 'critical'"
	"  ELSE 'warning' END AS status FROM m GROUP BY m.id),"
	/* Every device: what the rules say, or ok; only changes written. */
	" x AS (SELECT d.id, d.vs_id, d.status AS old_status,"
	"  coalesce(agg.status, 'ok') AS status,"
	"  coalesce(agg.reasons, '[]'::jsonb) AS reasons"
	"  FROM devices d LEFT JOIN agg ON agg.id = d.id"
	"  WHERE ($1::int IS NULL OR d.vs_id = $1)"
	"  AND (d.status IS DISTINCT FROM coalesce(agg.status, 'ok')"
	"  OR d.status_reasons IS DISTINCT FROM"
	"   coalesce(agg.reasons, '[]'::jsonb))),"
	" up AS (UPDATE devices d SET status = x.status,"
	"  status_reasons = x.reasons FROM x WHERE d.id = x.id"
	"  RETURNING d.id, d.vs_id, x.old_status, x.status, x.reasons),"
	" ins AS (INSERT INTO events (vs_id, device_id, severity, type, time,"
	"  text) SELECT up.vs_id, up.id, CASE up.status WHEN 'ok' THEN 'info'"
	"  ELSE up.status END, 'status_changed', now(),"
	"  format('status %s -> %s', up.old_status, up.status) ||"
	"  coalesce(': ' || (SELECT string_agg(x->>'rule' || ': ' ||"
	"   (x->>'text'), '; ') FROM jsonb_array_elements(up.reasons) x), '')"
	"  FROM up WHERE up.old_status IS DISTINCT FROM up.status RETURNING 1)"
	" SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins)";

/*
 * Moving rules.  A device is looked at when its fingerprint (the attributes
 * rules match on, whether it sits in the unassigned pool, and its virtual
 * server's rule set) differs from the one stored at its last look: new
 * devices, changed attributes, changed rules.  The first matching rule by
 * order wins; 'once' rules take only devices in the pool that no rule has
 * placed yet, 'always' rules any device.
 */
static const char sql_move[] =
	"WITH RECURSIVE rv AS (SELECT vs_id, md5(string_agg(concat_ws('|', id,"
	"  ord, group_id, match::text, mode, enabled), ',' ORDER BY id)) AS h"
	"  FROM moving_rules WHERE ($1::int IS NULL OR vs_id = $1)"
	"  GROUP BY vs_id),"
	" c0 AS (SELECT d.id, d.vs_id, d.group_id, d.placed, d.place_fp,"
	"  g.kind = 'unassigned' AS in_pool,"
	"  md5(concat_ws('|', array_to_string(d.ip, ','), d.fqdn, d.os,"
	"   d.source, d.ou_dn, g.kind = 'unassigned', rv.h)) AS fp"
	"  FROM devices d JOIN rv ON rv.vs_id = d.vs_id"
	"  JOIN groups g ON g.id = d.group_id"
	"  WHERE ($1::int IS NULL OR d.vs_id = $1)),"
	" c AS (SELECT * FROM c0 WHERE place_fp IS DISTINCT FROM fp"
	"  LIMIT $2::int),"
	" hit AS (SELECT DISTINCT ON (c.id) c.id, r.group_id, r.name"
	"  FROM c JOIN devices d ON d.id = c.id"
	"  JOIN moving_rules r ON r.vs_id = c.vs_id AND r.enabled"
	"  WHERE (r.mode = 'always' OR (c.in_pool AND NOT c.placed))"
	"  AND (NOT r.match ? 'ip_cidr'"
	"   OR canopy_ips_in(d.ip, r.match->>'ip_cidr'))"
	"  AND (NOT r.match ? 'dns_suffix' OR"
	"   lower(d.fqdn) = lower(ltrim(r.match->>'dns_suffix', '.')) OR"
	"   right(lower(d.fqdn), length(ltrim(r.match->>'dns_suffix', '.'))"
	"   + 1) = '.' || lower(ltrim(r.match->>'dns_suffix', '.')))"
	"  AND (NOT r.match ? 'ou_dn' OR lower(d.ou_dn) ="
	"   lower(r.match->>'ou_dn') OR right(lower(d.ou_dn),"
	"   length(r.match->>'ou_dn') + 1) = ',' || lower(r.match->>'ou_dn'))"
	"  AND (NOT r.match ? 'os' OR"
	"   strpos(lower(coalesce(d.os, '')), lower(r.match->>'os')) > 0)"
	"  AND (NOT r.match ? 'source' OR d.source = r.match->>'source'"
	"   OR (r.match->>'source' = 'network' AND d.source = 'ipscan'))"
	"  ORDER BY c.id, r.ord, r.id),"
	" gp(start, id, parent, path) AS (SELECT g.id, g.id, g.parent, g.name"
	"  FROM groups g WHERE g.id IN (SELECT group_id FROM hit)"
	"  UNION ALL SELECT gp.start, p.id, p.parent, p.name || '/' || gp.path"
	"  FROM gp JOIN groups p ON p.id = gp.parent),"
	" up AS (UPDATE devices d SET place_fp = c.fp,"
	"  group_id = coalesce(hit.group_id, d.group_id),"
	"  placed = d.placed OR hit.id IS NOT NULL"
	"  FROM c LEFT JOIN hit ON hit.id = c.id WHERE d.id = c.id"
	"  RETURNING d.id, d.vs_id, c.group_id AS old_group,"
	"  hit.group_id AS new_group, hit.name AS rule),"
	" ins AS (INSERT INTO events (vs_id, device_id, severity, type, time,"
	"  text) SELECT up.vs_id, up.id, 'info', 'device_moved', now(),"
	"  format('moved to %s by moving rule %s', coalesce('/' || gp.path,"
	"  up.new_group::text), up.rule) FROM up"
	"  LEFT JOIN gp ON gp.start = up.new_group AND gp.parent IS NULL"
	"  WHERE up.new_group IS NOT NULL AND up.new_group <> up.old_group"
	"  RETURNING 1)"
	" SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins),"
	" (SELECT coalesce(json_agg(DISTINCT jsonb_build_array(vs_id,"
	"  new_group)), '[]') FROM up WHERE new_group IS NOT NULL"
	"  AND new_group <> old_group)";

/*
 * By when the server stored an event, not by the device's clock: a device
 * whose clock is wrong, or that delivers days of queued events late, must
 * not see them vanish on arrival.
 */
static const char sql_prune_age[] =
	"WITH del AS (DELETE FROM events WHERE id IN (SELECT id FROM events"
	" WHERE received < now() - interval '1 day' * $1::int LIMIT $2::int)"
	" RETURNING 1) SELECT count(*) FROM del";

/* The same for events mirrored from the servers below. */
static const char sql_prune_mirror[] =
	"WITH del AS (DELETE FROM hier_events WHERE oid IN (SELECT oid"
	" FROM hier_events WHERE received < now() - interval '1 day' * $1::int"
	" LIMIT $2::int) RETURNING 1) SELECT count(*) FROM del";

/*
 * The count limit looks only at devices with events above the mark (new
 * since the last round), so a round does not count every device's events.
 */
static const char sql_prune_count[] =
	"WITH mx AS (SELECT coalesce(max(id), 0) AS m FROM events),"
	" t AS (SELECT DISTINCT device_id FROM events"
	"  WHERE id > $1::bigint AND device_id IS NOT NULL),"
	" x AS (SELECT e.id FROM t CROSS JOIN LATERAL (SELECT id FROM events e"
	"  WHERE e.device_id = t.device_id ORDER BY e.time DESC, e.id DESC"
	"  OFFSET $2::int) e LIMIT $3::int),"
	" del AS (DELETE FROM events WHERE id IN (SELECT id FROM x) RETURNING 1)"
	" SELECT (SELECT m FROM mx), (SELECT count(*) FROM del)";

/* The groups that received devices: their agents need the new policy. */
static void
qr_moved_groups(PGresult *res, struct qr_round *st)
{
	json_t		*a, *v;
	json_error_t	 jerr;
	size_t		 i;

	st->nmoved_to = 0;
	if (PQntuples(res) < 1 || PQgetisnull(res, 0, 2) ||
	    (a = json_loads(PQgetvalue(res, 0, 2), 0, &jerr)) == NULL)
		return;
	json_array_foreach(a, i, v) {
		if (st->nmoved_to >= QR_MOVED_GROUPS_MAX)
			break;
		st->moved_to[st->nmoved_to].vs_id =
		    (int)json_integer_value(json_array_get(v, 0));
		st->moved_to[st->nmoved_to].group =
		    json_integer_value(json_array_get(v, 1));
		st->nmoved_to++;
	}
	json_decref(a);
}

static long long
qr_ll(PGresult *res, int row, int col)
{
	if (PQntuples(res) <= row || PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int
qr_round(PGconn *conn, int vs_id, int prune, struct qr_round *st,
    char *err, size_t errlen)
{
	char		 vs[16], batch[16], n1[24], n2[16], n3[16];
	const char	*p[3];
	PGresult	*res;
	int		 rc;

	/*
	 * One round at a time (the timer's and POST /rules/run), so that two
	 * never race to write the same rows.  The plans are big but cheap to
	 * run: JIT would cost more than it saves.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT pg_advisory_xact_lock(hashtext('canopy.rules')),"
	    " set_config('jit', 'off', true),"
	    " set_config('work_mem', '64MB', true)", 0, NULL)) == NULL)
		return rc;
	PQclear(res);

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(batch, sizeof(batch), "%d", RULES_BATCH);
	snprintf(n3, sizeof(n3), "%d", RULES_RECENT_S);
	p[0] = vs_id >= 0 ? vs : NULL;
	p[1] = batch;
	p[2] = st->recent ? n3 : NULL;

	if ((res = db_exec(conn, &rc, err, errlen, sql_fs, 3, p)) == NULL)
		return rc;
	st->fs_refreshed = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);

	st->reasons_changed = st->status_changed = 0;
	if (!st->no_status) {
		if ((res = db_exec(conn, &rc, err, errlen, sql_status, 1, p)) ==
		    NULL)
			return rc;
		st->reasons_changed = qr_ll(res, 0, 0);
		st->status_changed = qr_ll(res, 0, 1);
		PQclear(res);
	}

	if ((res = db_exec(conn, &rc, err, errlen, sql_move, 2, p)) == NULL)
		return rc;
	st->evaluated = qr_ll(res, 0, 0);
	st->moved = qr_ll(res, 0, 1);
	qr_moved_groups(res, st);
	PQclear(res);

	st->pruned = 0;
	if (!prune)
		return DB_OK;
	snprintf(n1, sizeof(n1), "%d", EVENTS_MAX_AGE_DAYS);
	snprintf(n2, sizeof(n2), "%d", EVENTS_PRUNE_BATCH);
	p[0] = n1;
	p[1] = n2;
	if ((res = db_exec(conn, &rc, err, errlen, sql_prune_age, 2, p)) ==
	    NULL)
		return rc;
	st->pruned = qr_ll(res, 0, 0);
	PQclear(res);
	if ((res = db_exec(conn, &rc, err, errlen, sql_prune_mirror, 2, p)) ==
	    NULL)
		return rc;
	st->pruned += qr_ll(res, 0, 0);
	PQclear(res);

	snprintf(n1, sizeof(n1), "%" PRId64, st->event_mark);
	snprintf(n2, sizeof(n2), "%d", EVENTS_MAX_PER_DEVICE);
	snprintf(n3, sizeof(n3), "%d", EVENTS_PRUNE_BATCH);
	p[0] = n1;
	p[1] = n2;
	p[2] = n3;
	if ((res = db_exec(conn, &rc, err, errlen, sql_prune_count, 3, p)) ==
	    NULL)
		return rc;
	/* A full batch may have left some: look at them again next round. */
	if (qr_ll(res, 0, 1) < EVENTS_PRUNE_BATCH)
		st->event_mark = qr_ll(res, 0, 0);
	st->pruned += qr_ll(res, 0, 1);
	PQclear(res);
	return DB_OK;
}

/* A statement answering one JSON text (or no row: QR_NOTFOUND). */
static int
qr_json(PGconn *conn, json_t **out, char *err, size_t errlen,
    const char *sql, int n, const char *const *params)
{
	PGresult	*res;
	json_error_t	 jerr;
	int		 rc;

	*out = NULL;
	if ((res = db_exec(conn, &rc, err, errlen, sql, n, params)) == NULL)
		return rc;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return QR_NOTFOUND;
	}
	*out = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (*out == NULL) {
		snprintf(err, errlen, "rules: bad JSON from the database: %s",
		    jerr.text);
		return DB_ERR;
	}
	return DB_OK;
}

#define SR_JSON(t)							\
	"jsonb_build_object('id', " t ".id::text, 'name', " t ".name,"	\
	" 'kind', " t ".kind, 'severity', " t ".severity, 'params', "	\
	t ".params, 'enabled', " t ".enabled, 'order', " t ".ord)"

int
qr_status_rules_list(PGconn *conn, int vs_id, json_t **out, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qr_json(conn, out, err, errlen,
	    "SELECT coalesce(jsonb_agg(" SR_JSON("r") " ORDER BY r.ord, r.id),"
	    " '[]')::text FROM status_rules r WHERE r.vs_id = $1", 1, p);
}

/* Ids are bigints: anything else names no rule. */
static int
qr_id_ok(const char *id)
{
	size_t	 i;

	for (i = 0; id[i] != '\0'; i++)
		if (id[i] < '0' || id[i] > '9')
			return 0;
	return i > 0 && i < 19;
}

int
qr_status_rule_get(PGconn *conn, int vs_id, const char *id, json_t **out,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*out = NULL;
	if (!qr_id_ok(id))
		return QR_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qr_json(conn, out, err, errlen,
	    "SELECT " SR_JSON("r") "::text FROM status_rules r"
	    " WHERE r.vs_id = $1 AND r.id = $2::bigint", 2, p);
}

int
qr_status_rule_create(PGconn *conn, int vs_id, const char *name,
    const char *kind, const char *severity, const char *params, int enabled,
    int ord, json_t **out, char *err, size_t errlen)
{
	char		 vs[16], o[16];
	const char	*p[7] = { vs, name, kind, severity, params,
			    enabled ? "t" : "f", o };
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(o, sizeof(o), "%d", ord);
	rc = qr_json(conn, out, err, errlen,
	    "WITH r AS (INSERT INTO status_rules (vs_id, name, kind, severity,"
	    " params, enabled, ord) VALUES ($1, $2, $3, $4, $5::jsonb,"
	    " $6::boolean, $7::int) ON CONFLICT (vs_id, name) DO NOTHING"
	    " RETURNING *) SELECT " SR_JSON("r") "::text FROM r", 7, p);
	return rc == QR_NOTFOUND ? QR_CONFLICT : rc;
}

int
qr_status_rule_update(PGconn *conn, int vs_id, const char *id,
    const char *name, const char *severity, const char *params, int enabled,
    const long long *ord, json_t **out, char *err, size_t errlen)
{
	char		 vs[16], o[24];
	const char	*p[7];
	PGresult	*res;
	int		 rc;

	*out = NULL;
	if (!qr_id_ok(id))
		return QR_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	if (ord != NULL)
		snprintf(o, sizeof(o), "%lld", *ord);
	p[0] = vs;
	p[1] = id;
	p[2] = name;
	p[3] = severity;
	p[4] = params;
	p[5] = enabled == -1 ? NULL : enabled ? "t" : "f";
	p[6] = ord != NULL ? o : NULL;
	if (name != NULL) {
		const char *q[3] = { vs, id, name };

		if ((res = db_exec(conn, &rc, err, errlen,
		    "SELECT 1 FROM status_rules WHERE vs_id = $1"
		    " AND id <> $2::bigint AND name = $3", 3, q)) == NULL)
			return rc;
		rc = PQntuples(res) > 0;
		PQclear(res);
		if (rc)
			return QR_CONFLICT;
	}
	return qr_json(conn, out, err, errlen,
	    "WITH r AS (UPDATE status_rules SET name = coalesce($3, name),"
	    " severity = coalesce($4, severity),"
	    " params = coalesce($5::jsonb, params),"
	    " enabled = coalesce($6::boolean, enabled),"
	    " ord = coalesce($7::int, ord)"
	    " WHERE vs_id = $1 AND id = $2::bigint RETURNING *)"
	    " SELECT " SR_JSON("r") "::text FROM r", 7, p);
}

int
qr_status_rule_delete(PGconn *conn, int vs_id, const char *id, json_t **old,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*old = NULL;
	if (!qr_id_ok(id))
		return QR_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qr_json(conn, old, err, errlen,
	    "WITH r AS (DELETE FROM status_rules WHERE vs_id = $1"
	    " AND id = $2::bigint RETURNING *)"
	    " SELECT " SR_JSON("r") "::text FROM r", 2, p);
}

/* Group paths and an account's scope, for moving rules' JSON. */
#define MR_PATHS							\
	"WITH RECURSIVE gp(id, path) AS (SELECT id, '/' || name FROM groups" \
	"  WHERE vs_id = $1 AND parent IS NULL"				\
	"  UNION ALL SELECT g.id, gp.path || '/' || g.name FROM groups g"	\
	"  JOIN gp ON g.parent = gp.id WHERE g.vs_id = $1),"		\
	" scope(id) AS (SELECT id FROM groups WHERE vs_id = $1"		\
	"  AND id = ANY($2::bigint[])"					\
	"  UNION ALL SELECT g.id FROM groups g JOIN scope s"		\
	"  ON g.parent = s.id WHERE g.vs_id = $1)"

#define MR_JSON(t)							\
	"jsonb_build_object('id', " t ".id::text, 'name', " t ".name,"	\
	" 'order', " t ".ord, 'group', " t ".group_id::text,"		\
	" 'group_path', (SELECT path FROM gp WHERE gp.id = " t ".group_id)," \
	" 'match', " t ".match, 'mode', " t ".mode,"			\
	" 'enabled', " t ".enabled)"

int
qr_moving_rules_list(PGconn *conn, int vs_id, const char *scopes,
    json_t **out, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, scopes };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qr_json(conn, out, err, errlen,
	    MR_PATHS " SELECT coalesce(jsonb_agg(" MR_JSON("r")
	    " ORDER BY r.ord, r.id), '[]')::text FROM moving_rules r"
	    " WHERE r.vs_id = $1 AND ($2::bigint[] IS NULL"
	    " OR r.group_id IN (SELECT id FROM scope))", 2, p);
}

int
qr_moving_rule_create(PGconn *conn, int vs_id, const char *name, int ord,
    int64_t group, const char *match, const char *mode, int enabled,
    json_t **out, char *err, size_t errlen)
{
	char		 vs[16], o[16], g[24];
	const char	*p[7] = { vs, NULL, name, o, g, match, mode };
	const char	*q[8];
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(o, sizeof(o), "%d", ord);
	snprintf(g, sizeof(g), "%" PRId64, group);
	memcpy(q, p, sizeof(p));
	q[7] = enabled ? "t" : "f";
	rc = qr_json(conn, out, err, errlen,
	    MR_PATHS ", r AS (INSERT INTO moving_rules (vs_id, name, ord,"
	    " group_id, match, mode, enabled) SELECT $1, $3, $4::int, id,"
	    " $6::jsonb, $7, $8::boolean FROM groups WHERE vs_id = $1"
	    " AND id = $5::bigint"
	    " ON CONFLICT (vs_id, name) DO NOTHING RETURNING *)"
	    " SELECT " MR_JSON("r") "::text FROM r", 8, q);
	return rc == QR_NOTFOUND ? QR_CONFLICT : rc;
}

int
qr_moving_rule_delete(PGconn *conn, int vs_id, const char *id, json_t **old,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[3] = { vs, NULL, id };

	*old = NULL;
	if (!qr_id_ok(id))
		return QR_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qr_json(conn, old, err, errlen,
	    MR_PATHS ", r AS (DELETE FROM moving_rules WHERE vs_id = $1"
	    " AND id = $3::bigint RETURNING *)"
	    " SELECT " MR_JSON("r") "::text FROM r", 3, p);
}
