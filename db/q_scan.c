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

/* IP ranges and scan results (db/q_scan.h). */
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
#include "q_scan.h"

/* A statement answering one JSON text (or no row: QS_NOTFOUND). */
static int
qs_json(PGconn *conn, json_t **out, char *err, size_t errlen,
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
		return QS_NOTFOUND;
	}
	*out = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (*out == NULL) {
		snprintf(err, errlen, "scan: bad JSON from the database: %s",
		    jerr.text);
		return DB_ERR;
	}
	return DB_OK;
}

/* Ids are bigints: anything else names no range. */
static int
qs_id_ok(const char *id)
{
	size_t	 i;

	for (i = 0; id[i] != '\0'; i++)
		if (id[i] < '0' || id[i] > '9')
			return 0;
	return i > 0 && i < 19;
}

#define STR_(x)	#x
#define STR(x)	STR_(x)

#define IR_JSON(t)							\
	"jsonb_build_object('id', " t ".id::text, 'name', " t ".name,"	\
	" 'range', " t ".range,"					\
	" 'cidr', CASE WHEN strpos(" t ".range, '/') > 0 THEN " t ".range END,"\
	" 'start', CASE WHEN strpos(" t ".range, '/') = 0"		\
	"  THEN split_part(" t ".range, '-', 1) END,"			\
	" 'end', CASE WHEN strpos(" t ".range, '/') = 0"		\
	"  THEN coalesce(nullif(split_part(" t ".range, '-', 2), ''),"	\
	"  " t ".range) END,"						\
	" 'interval_s', " t ".interval_s, 'tcp_ports', to_jsonb("	\
	t ".tcp_ports), 'state', " t ".state,"				\
	" 'last_scan', " TS(t ".last_scan") ","				\
	" 'next_scan', " TS(t ".next_scan") ","				\
	" 'last_error', " t ".last_error, 'alive', " t ".alive,"	\
	" 'scanned', " t ".scanned, 'duration_ms', " t ".duration_ms,"	\
	" 'rate_pps', coalesce(" t ".rate_pps, " STR(SCAN_RATE_PPS) "),"	\
	" 'concurrency', coalesce(" t ".concurrency, "			\
	STR(SCAN_CONCURRENCY) "))"

int
qs_range_create(PGconn *conn, int vs_id, const char *name,
    const char *range, int interval_s, const char *ports, int rate_pps,
    int concurrency, json_t **out, char *err, size_t errlen)
{
	char		 vs[16], iv[16], rt[16], cc[16];
	const char	*p[7] = { vs, name, range, interval_s > 0 ? iv : NULL,
			    ports, rate_pps > 0 ? rt : NULL,
			    concurrency > 0 ? cc : NULL };
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(iv, sizeof(iv), "%d", interval_s);
	snprintf(rt, sizeof(rt), "%d", rate_pps);
	snprintf(cc, sizeof(cc), "%d", concurrency);
	rc = qs_json(conn, out, err, errlen,
	    "WITH r AS (INSERT INTO ip_ranges (vs_id, name, range, interval_s,"
	    " tcp_ports, next_scan, rate_pps, concurrency) VALUES ($1, $2, $3,"
	    " $4::int, $5::int[], CASE WHEN $4::int IS NULL THEN NULL"
	    " ELSE now() END, $6::int, $7::int)"
	    " ON CONFLICT (vs_id, name) DO NOTHING RETURNING *)"
	    " SELECT " IR_JSON("r") "::text FROM r", 7, p);
	return rc == QS_NOTFOUND ? QS_CONFLICT : rc;
}

int
qs_ranges_list(PGconn *conn, int vs_id, json_t **out, char *err,
    size_t errlen)
{
	char		 vs[16];
	const char	*p[1] = { vs };

	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qs_json(conn, out, err, errlen,
	    "SELECT coalesce(jsonb_agg(" IR_JSON("r") " ORDER BY r.name),"
	    " '[]')::text FROM ip_ranges r WHERE r.vs_id = $1", 1, p);
}

int
qs_range_get(PGconn *conn, int vs_id, const char *id, json_t **out,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*out = NULL;
	if (!qs_id_ok(id))
		return QS_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qs_json(conn, out, err, errlen,
	    "SELECT (" IR_JSON("r") " || jsonb_build_object('hosts',"
	    " (SELECT coalesce(jsonb_agg(jsonb_build_object('ip', h.ip,"
	    "  'name', h.dns_name, 'icmp', h.icmp, 'tcp_ports',"
	    "  to_jsonb(h.tcp_ports), 'device', h.device_id::text,"
	    "  'seen', " TS("h.seen") ") ORDER BY inet(h.ip)), '[]')"
	    "  FROM ip_scan_hosts h WHERE h.range_id = r.id"
	    "  AND h.vs_id = $1)))::text"
	    " FROM ip_ranges r WHERE r.vs_id = $1 AND r.id = $2::bigint", 2, p);
}

int
qs_range_delete(PGconn *conn, int vs_id, const char *id, json_t **old,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*old = NULL;
	if (!qs_id_ok(id))
		return QS_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qs_json(conn, old, err, errlen,
	    "WITH r AS (DELETE FROM ip_ranges WHERE vs_id = $1"
	    " AND id = $2::bigint RETURNING *)"
	    " SELECT " IR_JSON("r") "::text FROM r", 2, p);
}

int
qs_range_request(PGconn *conn, int vs_id, const char *id, json_t **out,
    char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, id };

	*out = NULL;
	if (!qs_id_ok(id))
		return QS_NOTFOUND;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	return qs_json(conn, out, err, errlen,
	    "WITH r AS (UPDATE ip_ranges SET state = CASE WHEN state ="
	    " 'scanning' THEN state ELSE 'queued' END"
	    " WHERE vs_id = $1 AND id = $2::bigint RETURNING *)"
	    " SELECT " IR_JSON("r") "::text FROM r", 2, p);
}

int
qs_claim(PGconn *conn, int reset, int max, json_t **out, char *err,
    size_t errlen)
{
	char		 m[16];
	const char	*p[1] = { m };
	PGresult	*res;
	int		 rc;

	if (reset) {
		if ((res = db_exec(conn, &rc, err, errlen,
		    "UPDATE ip_ranges SET state = 'queued'"
		    " WHERE state = 'scanning'", 0, NULL)) == NULL)
			return rc;
		PQclear(res);
	}
	snprintf(m, sizeof(m), "%d", max);
	rc = qs_json(conn, out, err, errlen,
	    "WITH due AS (SELECT id FROM ip_ranges WHERE state = 'queued'"
	    "  OR (state <> 'scanning' AND interval_s IS NOT NULL"
	    "  AND (next_scan IS NULL OR next_scan <= now()))"
	    "  ORDER BY state = 'queued' DESC, next_scan NULLS FIRST, id"
	    "  LIMIT $1::int FOR UPDATE SKIP LOCKED),"
	    " r AS (UPDATE ip_ranges i SET state = 'scanning' FROM due"
	    "  WHERE i.id = due.id RETURNING i.*)"
	    " SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id::text,"
	    "  'vs', r.vs_id, 'range', r.range, 'ports', to_jsonb(r.tcp_ports),"
	    "  'rate', r.rate_pps, 'conc', r.concurrency)"
	    "  ORDER BY r.id), '[]')::text FROM r", 1, p);
	return rc;
}

int
qs_save(PGconn *conn, int vs_id, int64_t id, const char *hosts,
    long long scanned, long long ms, int *created, char *err, size_t errlen)
{
	char		 vs[16], rid[24], n[24], t[24];
	const char	*p[5] = { vs, rid, hosts, n, t };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(rid, sizeof(rid), "%" PRId64, id);
	snprintf(n, sizeof(n), "%lld", scanned);
	snprintf(t, sizeof(t), "%lld", ms);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT canopy_ipscan_save($1::int, $2::bigint, $3::jsonb,"
	    " $4::int, $5::int)", 5, p)) == NULL)
		return rc;
	*created = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return DB_OK;
}

int
qs_fail(PGconn *conn, int vs_id, int64_t id, const char *why, char *err,
    size_t errlen)
{
	char		 vs[16], rid[24];
	const char	*p[3] = { vs, rid, why };
	PGresult	*res;
	int		 rc;

	snprintf(vs, sizeof(vs), "%d", vs_id);
	snprintf(rid, sizeof(rid), "%" PRId64, id);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "UPDATE ip_ranges SET state = 'failed', last_error = $3,"
	    " next_scan = CASE WHEN interval_s IS NULL THEN NULL"
	    "  ELSE now() + interval '1 second' * interval_s END"
	    " WHERE vs_id = $1 AND id = $2::bigint", 3, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}
