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
 * The SQL of agent sessions.  Every statement is parameterised; a batch is
 * one JSON array parameter unpacked by jsonb_array_elements, so its size
 * does not change the statement text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/q_agents.h"
#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "util.h"

/* Heartbeats and unchanged syncs: many devices, one UPDATE. */
static const char sql_touch[] =
	"UPDATE devices d SET last_seen = now(), "
	"sync_count = d.sync_count + x.n "
	"FROM (SELECT (r->>'id')::uuid AS id, sum((r->>'n')::int) AS n "
	"FROM jsonb_array_elements($1::jsonb) AS r GROUP BY 1) AS x "
	"WHERE d.id = x.id";

/*
 * A full inventory.  The last record of a device wins (an agent may send two
 * in one batch).  Devices deleted meanwhile are skipped: the insert joins
 * the rows the update found, so a deletion cannot fail everyone's batch.
 */
static const char sql_inventory[] =
	"WITH x AS (SELECT DISTINCT ON (r->>'id') "
	"(r->>'id')::uuid AS id, r->>'hash' AS hash, r->'data' AS data, "
	"r->>'name' AS name, r->>'fqdn' AS fqdn, r->>'os' AS os, "
	"ARRAY(SELECT jsonb_array_elements_text(r->'ip')) AS ip, "
	"ARRAY(SELECT jsonb_array_elements_text(r->'mac')) AS mac "
	"FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(r, ord) "
	"ORDER BY r->>'id', ord DESC), "
	"d AS (UPDATE devices SET name = coalesce(x.name, devices.name), "
	"fqdn = x.fqdn, ip = x.ip, mac = x.mac, os = x.os, inv_hash = x.hash, "
	"last_seen = now(), sync_count = devices.sync_count + 1 "
	"FROM x WHERE devices.id = x.id RETURNING devices.id) "
	"INSERT INTO inventory (device_id, hash, data, updated) "
	"SELECT x.id, x.hash, x.data, now() FROM x JOIN d ON d.id = x.id "
	"ON CONFLICT (device_id) DO UPDATE SET hash = excluded.hash, "
	"data = excluded.data, updated = excluded.updated";

/* Idempotent by (device, agent's event id): a redelivery is stored once. */
static const char sql_events[] =
	"INSERT INTO events (vs_id, device_id, agent_event_id, severity, type, "
	"time, text) "
	"SELECT d.vs_id, d.id, r->>'id', r->>'severity', r->>'type', "
	"to_timestamp((r->>'time')::double precision / 1000), r->>'text' "
	"FROM jsonb_array_elements($1::jsonb) AS r "
	"JOIN devices d ON d.id = (r->>'device')::uuid "
	"ON CONFLICT (device_id, agent_event_id) DO NOTHING";

/* Counts one use of a valid token; concurrent enrolments cannot overdraw. */
static const char sql_token_use[] =
	"UPDATE enrollment_tokens SET uses_left = uses_left - 1 "
	"WHERE token_hash = $1 AND uses_left > 0 AND expires > now() "
	"RETURNING vs_id, coalesce(group_id, (SELECT id FROM groups g "
	"WHERE g.vs_id = enrollment_tokens.vs_id AND g.kind = 'unassigned' "
	"ORDER BY id LIMIT 1))";

static const char sql_device_new[] =
	"INSERT INTO devices (id, vs_id, group_id, name, source, "
	"cert_fingerprint, enrolled, first_seen) "
	"VALUES ($1, $2, $3, $4, 'agent', $5, now(), now())";

static const char sql_enrolled_event[] =
	"INSERT INTO events (vs_id, device_id, severity, type, time, text) "
	"VALUES ($1, $2, 'info', 'device_enrolled', now(), $3)";

static const char sql_lookup[] =
	"UPDATE devices SET last_seen = now() WHERE id = $1 "
	"RETURNING vs_id, inv_hash, coalesce(cert_fingerprint, '')";

/*
 * Runs sql with the items' records as one JSON array, joined as text: the
 * records were serialised on the loop, so nothing is parsed again here.
 * With flatten, each record is itself an array whose elements are spliced.
 */
static int
qa_batch_run(PGconn *pg, const char *sql, void **items, size_t n,
    int flatten, char *err, size_t errlen)
{
	const char	*params[1], *p;
	PGresult	*res;
	char		*text;
	size_t		 i, total = 2, off, len, count = 0;
	int		 rc;

	for (i = 0; i < n; i++)
		total += ((struct qa_item *)items[i])->len + 1;
	if ((text = malloc(total + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	off = 0;
	text[off++] = '[';
	for (i = 0; i < n; i++) {
		struct qa_item *it = items[i];

		p = it->json;
		len = it->len;
		if (p == NULL || len == 0)
			continue;
		if (flatten) {
			if (len < 2 || p[0] != '[' || p[len - 1] != ']')
				continue;
			p++;
			len -= 2;
			if (len == 0)
				continue;
		}
		if (count++ > 0)
			text[off++] = ',';
		memcpy(text + off, p, len);
		off += len;
	}
	text[off++] = ']';
	text[off] = '\0';
	if (count == 0) {
		free(text);
		return DB_OK;
	}
	params[0] = text;
	if (db_begin(pg, err, errlen) != DB_OK) {
		free(text);
		return db_errclass(pg);
	}
	res = db_exec(pg, &rc, err, errlen, sql, 1, params);
	free(text);
	if (res == NULL) {
		db_rollback(pg);
		return rc;
	}
	PQclear(res);
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
}

static int
qa_touch_run(PGconn *pg, void **items, size_t n, char *err, size_t errlen)
{
	return qa_batch_run(pg, sql_touch, items, n, 0, err, errlen);
}

static int
qa_inventory_run(PGconn *pg, void **items, size_t n, char *err,
    size_t errlen)
{
	return qa_batch_run(pg, sql_inventory, items, n, 0, err, errlen);
}

static int
qa_events_run(PGconn *pg, void **items, size_t n, char *err, size_t errlen)
{
	return qa_batch_run(pg, sql_events, items, n, 1, err, errlen);
}

const struct db_batch_class qa_touch_class = {
	"agent-touch", qa_touch_run, DB_BATCH_MAX
};
/* Inventories are large (tens of KiB): fewer per transaction. */
const struct db_batch_class qa_inventory_class = {
	"agent-inventory", qa_inventory_run, DB_BATCH_MAX / 10
};
/* Each item may hold up to MSG_MAX_EVENTS events. */
const struct db_batch_class qa_events_class = {
	"agent-events", qa_events_run, DB_BATCH_MAX / 10
};

void
qa_item_free(struct qa_item *it)
{
	if (it == NULL)
		return;
	free(it->json);
	free(it);
}

int
qa_uuid_v4(char out[37])
{
	uint8_t	 b[16];
	char	 hex[33];

	if (rand_bytes(b, sizeof(b)) == -1)
		return -1;
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	hex_encode(b, sizeof(b), hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	    hex + 16, hex + 20);
	return 0;
}

int
qa_uuid_valid(const char *s)
{
	static const char hexd[] = "0123456789abcdefABCDEF";
	int	 i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (s[i] == '\0' || strchr(hexd, s[i]) == NULL)
			return 0;
	}
	return s[36] == '\0';
}

int
qa_enroll_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qa_enroll *e = arg;
	const char	*params[5];
	PGresult	*res;
	char		 vs[16], group[24], fpr[PKI_FPR_LEN], text[512];
	int		 rc;

	e->result = QA_BAD_TOKEN;
	if (db_begin(pg, err, errlen) != DB_OK)
		return db_errclass(pg);

	params[0] = e->token_hash;
	if ((res = db_exec(pg, &rc, err, errlen, sql_token_use, 1,
	    params)) == NULL)
		goto fail;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
		PQclear(res);
		db_rollback(pg);
		return DB_OK;		/* bad_token */
	}
	strlcpy(vs, PQgetvalue(res, 0, 0), sizeof(vs));
	strlcpy(group, PQgetvalue(res, 0, 1), sizeof(group));
	PQclear(res);

	/* After the token check, so bad tokens cost no signatures. */
	if (qa_uuid_v4(e->device_id) == -1) {
		snprintf(err, errlen, "no randomness for a device id");
		rc = DB_ERR;
		goto fail;
	}
	e->cert = pki_sign_csr(e->pki, e->csr, e->csr_len, e->device_id,
	    e->cert_days, e->reason, sizeof(e->reason));
	if (e->cert == NULL) {
		e->result = QA_BAD_CSR;
		db_rollback(pg);	/* the token is not used up */
		return DB_OK;
	}
	if (pki_fingerprint_pem(e->cert, fpr, sizeof(fpr)) == -1) {
		snprintf(err, errlen, "cannot fingerprint the new certificate");
		rc = DB_ERR;
		goto fail;
	}

	params[0] = e->device_id;
	params[1] = vs;
	params[2] = group;
	params[3] = e->name;
	params[4] = fpr;
	if ((res = db_exec(pg, &rc, err, errlen, sql_device_new, 5,
	    params)) == NULL)
		goto fail;
	PQclear(res);

	snprintf(text, sizeof(text), "device \"%s\" enrolled from %s",
	    e->name, e->addr);
	params[0] = vs;
	params[1] = e->device_id;
	params[2] = text;
	if ((res = db_exec(pg, &rc, err, errlen, sql_enrolled_event, 3,
	    params)) == NULL)
		goto fail;
	PQclear(res);

	if (db_commit(pg, err, errlen) != DB_OK) {
		rc = db_errclass(pg);
		goto fail_nocommit;
	}
	e->result = QA_ENROLLED;
	return DB_OK;

 fail:
	db_rollback(pg);
 fail_nocommit:
	free(e->cert);
	e->cert = NULL;
	e->result = QA_BAD_TOKEN;
	return rc;
}

void
qa_enroll_free(struct qa_enroll *e)
{
	if (e == NULL)
		return;
	free(e->csr);
	free(e->cert);
	free(e);
}

int
qa_lookup_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qa_lookup *l = arg;
	const char	*params[1];
	PGresult	*res;
	int		 rc;

	params[0] = l->device_id;
	if ((res = db_exec(pg, &rc, err, errlen, sql_lookup, 1,
	    params)) == NULL)
		return rc;
	l->found = PQntuples(res) == 1;
	if (l->found) {
		l->vs_id = atoi(PQgetvalue(res, 0, 0));
		l->has_hash = !PQgetisnull(res, 0, 1);
		strlcpy(l->inv_hash, PQgetvalue(res, 0, 1),
		    sizeof(l->inv_hash));
		strlcpy(l->fingerprint, PQgetvalue(res, 0, 2),
		    sizeof(l->fingerprint));
	}
	PQclear(res);
	return DB_OK;
}
