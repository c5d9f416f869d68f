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

/* The server tree's statements (db/q_hier.h). */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "canopy_limits.h"
#include "hrec.h"
#include "log.h"
#include "pgarr.h"
#include "pki.h"
#include "util.h"

#include "db.h"
#include "q_hier.h"

int
qh_init_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_init	*q = arg;
	const char	*p[2];
	PGresult	*res;
	int		 rc;

	if (db_begin(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	p[0] = q->name;
	p[1] = q->up_min_severity;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_self SET name = $1, up_min_severity = $2"
	    " RETURNING uuid, level", 2, p)) == NULL)
		goto fail;
	strlcpy(q->uuid, PQgetvalue(res, 0, 0), sizeof(q->uuid));
	q->level = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (q->has_parent) {
		p[0] = q->parent_name;
		if ((res = db_exec(pg, &rc, err, errlen,
		    "INSERT INTO hier_links (role, name) VALUES ('parent', $1)"
		    " ON CONFLICT (role) WHERE role = 'parent'"
		    " DO UPDATE SET name = EXCLUDED.name RETURNING id, rx_seq",
		    1, p)) == NULL)
			goto fail;
		q->parent_link = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		q->parent_rx = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		PQclear(res);
	} else {
		/* No parent any more: what came from above goes too. */
		if ((res = db_exec(pg, &rc, err, errlen,
		    "WITH d AS (DELETE FROM hier_links WHERE role = 'parent')"
		    " UPDATE hier_self SET level = 0, parent_uuid = NULL"
		    " WHERE level <> 0 OR parent_uuid IS NOT NULL", 0,
		    NULL)) == NULL)
			goto fail;
		PQclear(res);
		q->level = 0;
	}
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT (SELECT id FROM groups WHERE vs_id = 0 AND kind = 'root'),"
	    " (SELECT id FROM groups WHERE vs_id = 0 AND kind = 'unassigned')",
	    0, NULL)) == NULL)
		goto fail;
	q->root_group = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	q->pool_group = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	/* Whatever was connected before a crash is not connected now. */
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_links SET state = 'disconnected'"
	    " WHERE state <> 'disconnected'", 0, NULL)) == NULL)
		goto fail;
	PQclear(res);
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
 fail:
	db_rollback(pg);
	return rc;
}

static void
qh_link_fill(PGresult *res, struct qh_link *l)
{
	l->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	strlcpy(l->name, PQgetvalue(res, 0, 1), sizeof(l->name));
	strlcpy(l->peer_uuid, PQgetvalue(res, 0, 2), sizeof(l->peer_uuid));
	l->rx_seq = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
	l->tx_acked = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
	strlcpy(l->peer_ca_pem, PQgetvalue(res, 0, 5), sizeof(l->peer_ca_pem));
}

#define QH_LINK_COLS							\
	"id, name, coalesce(peer_uuid::text, ''), rx_seq, tx_acked,"	\
	" coalesce(peer_ca_pem, '')"

int
qh_lookup_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_lookup *q = arg;
	const char	*p[1];
	PGresult	*res;
	int		 rc;

	if (q->id != 0) {
		char	id[24];

		snprintf(id, sizeof(id), "%lld", (long long)q->id);
		p[0] = id;
		res = db_exec(pg, &rc, err, errlen, "SELECT " QH_LINK_COLS
		    " FROM hier_links WHERE id = $1::bigint", 1, p);
	} else if (q->fingerprint[0] != '\0') {
		p[0] = q->fingerprint;
		res = db_exec(pg, &rc, err, errlen, "SELECT " QH_LINK_COLS
		    " FROM hier_links WHERE role = 'child'"
		    " AND cert_fingerprint = $1", 1, p);
	} else {
		p[0] = q->name;
		res = db_exec(pg, &rc, err, errlen, "SELECT " QH_LINK_COLS
		    " FROM hier_links WHERE role = 'child' AND name = $1", 1, p);
	}
	if (res == NULL)
		return rc;
	q->found = PQntuples(res) == 1;
	if (q->found)
		qh_link_fill(res, &q->link);
	PQclear(res);
	return DB_OK;
}

void
qh_register_free(struct qh_register *q)
{
	if (q == NULL)
		return;
	free(q->csr);
	free(q->ca);
	free(q->cert);
	free(q);
}

int
qh_register_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_register *q = arg;
	const char	*p[4];
	char		 id[24], cn[300], fp[PKI_FPR_LEN], e[256];
	PGresult	*res;
	int		 rc;

	if (db_begin(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	p[0] = q->token_hash;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_tokens SET used = now() WHERE hash = $1"
	    " AND used IS NULL AND expires > now()"
	    " RETURNING link_id, (SELECT name FROM hier_links l"
	    "  WHERE l.id = link_id)", 1, p)) == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		db_rollback(pg);
		snprintf(q->why, sizeof(q->why), "the registration token is "
		    "unknown, already used or expired");
		return DB_OK;
	}
	strlcpy(id, PQgetvalue(res, 0, 0), sizeof(id));
	strlcpy(q->name, PQgetvalue(res, 0, 1), sizeof(q->name));
	PQclear(res);
	if (q->expect_link != 0 && strtoll(id, NULL, 10) != q->expect_link) {
		db_rollback(pg);
		snprintf(q->why, sizeof(q->why), "this token is for another "
		    "child server");
		return DB_OK;
	}
	p[0] = q->uuid;
	p[1] = id;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT (SELECT uuid::text FROM hier_self) = $1"
	    " OR EXISTS (SELECT 1 FROM hier_links WHERE peer_uuid = $1::uuid"
	    "  AND id <> $2::bigint)"
	    " OR EXISTS (SELECT 1 FROM hier_servers WHERE uuid = $1::uuid)",
	    2, p)) == NULL)
		goto fail;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		db_rollback(pg);
		snprintf(q->why, sizeof(q->why), "server id %s is already in "
		    "the tree", q->uuid);
		return DB_OK;
	}
	PQclear(res);
	snprintf(cn, sizeof(cn), "server:%s", q->name);
	if ((q->cert = pki_sign_csr(q->pki, q->csr, strlen(q->csr), cn,
	    HIER_CERT_DAYS, e, sizeof(e))) == NULL) {
		db_rollback(pg);
		snprintf(q->why, sizeof(q->why), "bad CSR: %.200s", e);
		return DB_OK;
	}
	if (pki_fingerprint_pem(q->cert, fp, sizeof(fp)) == -1) {
		db_rollback(pg);
		snprintf(err, errlen, "cannot fingerprint the certificate");
		return DB_ERR;
	}
	p[0] = id;
	p[1] = q->uuid;
	p[2] = fp;
	p[3] = q->ca;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_links SET peer_uuid = $2::uuid, cert_fingerprint = $3,"
	    " peer_ca_pem = coalesce($4, peer_ca_pem), rx_seq = 0,"
	    " tx_acked = 0, last_error = NULL WHERE id = $1::bigint", 4,
	    p)) == NULL)
		goto fail;
	PQclear(res);
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
 fail:
	db_rollback(pg);
	return rc;
}

int
qh_state_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_state	*q = arg;
	const char	*p[4];
	char		 id[24], proto[16], level[16];
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	if (!q->up) {
		p[0] = id;
		p[1] = q->error;
		if ((res = db_exec(pg, &rc, err, errlen,
		    "UPDATE hier_links SET state = 'disconnected',"
		    " last_error = coalesce(nullif($2, ''), last_error)"
		    " WHERE id = $1::bigint", 2, p)) == NULL)
			return rc;
		PQclear(res);
		return DB_OK;
	}
	if (db_begin(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	p[0] = id;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT coalesce(peer_uuid::text, '') FROM hier_links"
	    " WHERE id = $1::bigint FOR UPDATE", 1, p)) == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		db_rollback(pg);
		snprintf(err, errlen, "the link was removed");
		return DB_ERR;
	}
	q->reset = PQgetvalue(res, 0, 0)[0] != '\0' &&
	    strcmp(PQgetvalue(res, 0, 0), q->peer_uuid) != 0;
	PQclear(res);
	if (q->reset && !q->parent) {
		db_rollback(pg);
		q->reset = -1;
		return DB_OK;
	}
	snprintf(proto, sizeof(proto), "%d", q->peer_proto);
	p[1] = q->peer_uuid;
	p[2] = proto;
	p[3] = q->reset ? "t" : "f";
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_links SET state = 'connected', peer_uuid = $2::uuid,"
	    " peer_proto = $3::int, last_error = NULL, last_seen = now(),"
	    " rx_seq = CASE WHEN $4::boolean THEN 0 ELSE rx_seq END,"
	    " tx_acked = CASE WHEN $4::boolean THEN 0 ELSE tx_acked END"
	    " WHERE id = $1::bigint RETURNING rx_seq", 4, p)) == NULL)
		goto fail;
	q->rx_seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (q->parent) {
		snprintf(level, sizeof(level), "%d", q->peer_level + 1);
		p[0] = level;
		p[1] = q->peer_uuid;
		if ((res = db_exec(pg, &rc, err, errlen,
		    "UPDATE hier_self SET level = $1::int,"
		    " parent_uuid = $2::uuid WHERE level <> $1::int"
		    " OR parent_uuid IS DISTINCT FROM $2::uuid", 2,
		    p)) == NULL)
			goto fail;
		PQclear(res);
	}
	if ((res = db_exec(pg, &rc, err, errlen, q->parent ?
	    "SELECT compacted_u, coalesce((SELECT max(seq) FROM hier_changes),"
	    " 0) FROM hier_self" :
	    "SELECT compacted_d, coalesce((SELECT max(seq) FROM hier_changes),"
	    " 0) FROM hier_self", 0, NULL)) == NULL)
		goto fail;
	q->compacted = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	q->top = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
 fail:
	db_rollback(pg);
	return rc;
}

/* Frees n malloc'd strings and their array. */
static void
qh_strv_free(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
qh_read_free(struct qh_read *q)
{
	if (q == NULL)
		return;
	qh_strv_free(q->recs, q->nrecs);
	free(q);
}

/* An int8 or a timestamptz of a binary result (0 for a NULL). */
static int64_t
qh_bin_i64(const PGresult *res, int row, int col)
{
	uint64_t	 v;

	if (PQgetlength(res, row, col) != 8)
		return 0;
	memcpy(&v, PQgetvalue(res, row, col), 8);
	return (int64_t)be64toh(v);
}

/* Appends '{"s" : N, ' and a record as stored (less its brace). */
static int
qh_read_add(struct qh_read *q, uint64_t s, const char *e, size_t len)
{
	char	 num[32];
	size_t	 nl;

	nl = (size_t)snprintf(num, sizeof(num), "{\"s\" : %llu, ",
	    (unsigned long long)s);
	if ((q->recs[q->nrecs] = malloc(nl + len + 1)) == NULL)
		return -1;
	memcpy(q->recs[q->nrecs], num, nl);
	memcpy(q->recs[q->nrecs] + nl, e, len);
	q->recs[q->nrecs++][nl + len] = '\0';
	return 0;
}

/*
 * Rows of records stored whole (hier_read_relay, 016): each row's records
 * come in one binary text[], and get their numbers back here.  1 when the
 * next change was in such a row, 0 when not (hier_read then), or the
 * error.
 */
static int
qh_read_relay(PGconn *pg, struct qh_read *q, const char *const *p,
    char *err, size_t errlen)
{
	struct pgarr_rd	 rd;
	PGresult	*res;
	const char	*e, *why = NULL;
	size_t		 bytes = 0, total = 0;
	uint64_t	 s, top;
	int32_t		 len;
	int		 rc, i, n, r, cut = 0;

	if ((res = db_check(pg, PQexecParams(pg, "SELECT first, top, at_ms, "
	    "more, recs FROM hier_read_relay($1::bigint, $2::bigint, $3::int)",
	    3, NULL, p, NULL, NULL, 1), &rc, err, errlen)) == NULL)
		return rc;
	if ((n = PQntuples(res)) == 0) {
		PQclear(res);
		return 0;
	}
	for (i = 0; i < n; i++) {
		s = (uint64_t)qh_bin_i64(res, i, 0);
		top = (uint64_t)qh_bin_i64(res, i, 1);
		if (top < s || pgarr_rd_init(&rd, PQgetvalue(res, i, 4),
		    (size_t)PQgetlength(res, i, 4)) == -1 ||
		    rd.n != top - s + 1) {
			why = "records and numbers disagree";
			goto fail;
		}
		total += rd.n;
	}
	if ((q->recs = calloc(total, sizeof(char *))) == NULL) {
		why = "out of memory";
		goto fail;
	}
	for (i = 0; i < n && !cut; i++) {
		s = (uint64_t)qh_bin_i64(res, i, 0);
		(void)pgarr_rd_init(&rd, PQgetvalue(res, i, 4),
		    (size_t)PQgetlength(res, i, 4));
		while ((r = pgarr_rd_next(&rd, &e, &len)) == 1) {
			if (len < 0) {
				why = "a record is missing";
				goto fail;
			}
			if (q->nrecs > 0 && bytes + (size_t)len > q->max_bytes) {
				q->more = 1;
				cut = 1;
				break;
			}
			if (qh_read_add(q, s, e, (size_t)len) == -1) {
				why = "out of memory";
				goto fail;
			}
			bytes += (size_t)len;
			q->last = s++;
		}
		if (rd.i > 0)
			q->last_at_ms = qh_bin_i64(res, i, 2);
		if (r == -1) {
			why = "a record is cut short";
			goto fail;
		}
		if (!cut)
			q->more = PQgetvalue(res, i, 3)[0] != 0;
	}
	PQclear(res);
	return 1;
 fail:
	PQclear(res);
	snprintf(err, errlen, "hier_read_relay: %s", why);
	return DB_ERR;
}

/* A record of hier_read's result: its number and its row. */
struct qh_row {
	uint64_t	 seq;
	int		 row;
};

static int
qh_row_cmp(const void *a, const void *b)
{
	const struct qh_row *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
qh_read_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_read	*q = arg;
	struct qh_row	*rows = NULL;
	const char	*p[3];
	char		 id[24], after[24], limit[16];
	PGresult	*res;
	size_t		 bytes = 0, len, nr = 0, k;
	int		 rc, i, n, end = -1;

	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	snprintf(after, sizeof(after), "%llu", (unsigned long long)q->after);
	snprintf(limit, sizeof(limit), "%d", q->limit);
	p[0] = id;
	p[1] = after;
	p[2] = limit;
	if ((rc = qh_read_relay(pg, q, p, err, errlen)) != 0)
		return rc == 1 ? DB_OK : rc;
	/*
	 * In binary: nothing to print or to parse.  hier_read gives the
	 * records kind by kind, then the end (no record): their order, by
	 * number, is made here; sorting in the query cost more than building
	 * them.
	 */
	if ((res = db_check(pg, PQexecParams(pg, "SELECT seq, at, rec, "
	    "full_batch FROM hier_read($1::bigint, $2::bigint, $3::int)", 3,
	    NULL, p, NULL, NULL, 1), &rc, err, errlen)) == NULL)
		return rc;
	n = PQntuples(res);
	q->last = q->after;
	q->more = 0;
	if (n > 0 && ((q->recs = calloc((size_t)n, sizeof(char *))) == NULL ||
	    (rows = calloc((size_t)n, sizeof(*rows))) == NULL)) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 2)) {
			end = i;
			continue;
		}
		rows[nr].seq = (uint64_t)qh_bin_i64(res, i, 0);
		rows[nr++].row = i;
	}
	if (nr > 1)
		qsort(rows, nr, sizeof(*rows), qh_row_cmp);
	for (k = 0; k < nr; k++) {
		i = rows[k].row;
		len = (size_t)PQgetlength(res, i, 2);
		if (q->nrecs > 0 && bytes + len > q->max_bytes) {
			q->more = 1;
			break;
		}
		if ((q->recs[q->nrecs] = strndup(PQgetvalue(res, i, 2), len)) ==
		    NULL) {
			PQclear(res);
			free(rows);
			snprintf(err, errlen, "out of memory");
			return DB_ERR;
		}
		bytes += len;
		q->nrecs++;
		q->last = rows[k].seq;
		/* microseconds since 2000 to milliseconds since 1970 */
		q->last_at_ms = qh_bin_i64(res, i, 1) / 1000 +
		    INT64_C(946684800000);
	}
	if (k == nr && end >= 0) {
		/* The end: the highest sequence number read. */
		q->last = (uint64_t)qh_bin_i64(res, end, 0);
		q->more = PQgetvalue(res, end, 3)[0] != 0;
	}
	free(rows);
	PQclear(res);
	return DB_OK;
}

void
qh_snapshot_free(struct qh_snapshot *q)
{
	if (q == NULL)
		return;
	qh_strv_free(q->chunks, q->nchunks);
	free(q);
}

int
qh_snapshot_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_snapshot *q = arg;
	const char	*p[2];
	char		 id[24], chunk[16];
	PGresult	*res;
	int		 rc, i, n;

	if ((res = db_exec(pg, &rc, err, errlen, "BEGIN ISOLATION LEVEL "
	    "REPEATABLE READ READ ONLY", 0, NULL)) == NULL)
		return rc;
	PQclear(res);
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT coalesce(max(seq), 0) FROM hier_changes", 0,
	    NULL)) == NULL)
		goto fail;
	q->seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	snprintf(chunk, sizeof(chunk), "%d", q->chunk);
	p[0] = id;
	p[1] = chunk;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT recs FROM hier_snapshot($1::bigint, $2::int)", 2,
	    p)) == NULL)
		goto fail;
	n = PQntuples(res);
	if (n > 0 && (q->chunks = calloc((size_t)n, sizeof(char *))) == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		if ((q->chunks[i] = strdup(PQgetvalue(res, i, 0))) == NULL)
			goto oom;
		q->nchunks++;
	}
	PQclear(res);
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
 oom:
	PQclear(res);
	snprintf(err, errlen, "out of memory");
	rc = DB_ERR;
 fail:
	db_rollback(pg);
	return rc;
}

void
qh_apply_free(struct qh_apply *q)
{
	if (q == NULL)
		return;
	free(q->recs);
	free(q);
}

/*
 * Applying a batch's records (015): parsed and checked here
 * (common/hrec.c), handed over as one binary text[] per column.
 */

/* The arrays of one statement: the link and snapshot, then columns. */
#define QH_COLS_MAX	(3 + 2 * HREC_COLS_MAX)	/* HREC_TIME: two */
struct qh_cols {
	struct pgarr	 a[QH_COLS_MAX];
	int		 n;
};

static void
qh_cols_init(struct qh_cols *c, int n)
{
	int	 i;

	c->n = n;
	for (i = 0; i < n; i++)
		pgarr_init(&c->a[i]);
}

static void
qh_cols_free(struct qh_cols *c)
{
	int	 i;

	for (i = 0; i < c->n; i++)
		pgarr_free(&c->a[i]);
	c->n = 0;
}

/*
 * A connection's statements prepared for applying (named "qh_<function>_<n
 * parameters>"): prepared, their plans are kept and their parameters are
 * not copied into the plan as constants (an unnamed statement planned the
 * column arrays, hundreds of KiB, as constants at every call).  The list
 * is read with the link, in the same round trip.
 */
struct qh_conn {
	PGconn		*pg;
	char		 prepared[1024];	/* " name name ... " */
};

/*
 * Runs "SELECT fn(scalars..., arrays...)": ns scalars as text (NULL: a
 * NULL), their types as the function has them, then the arrays in binary.
 */
static int
qh_call(struct qh_conn *qc, const char *fn, int ns, const char *const *sv,
    struct qh_cols *c, char *err, size_t errlen)
{
	char		 sql[256], name[80], word[84];
	const char	*vals[4 + QH_COLS_MAX];
	Oid		 types[4 + QH_COLS_MAX];
	int		 lens[4 + QH_COLS_MAX], fmts[4 + QH_COLS_MAX];
	int		 i, n, off, rc;
	PGresult	*res;

	off = snprintf(sql, sizeof(sql), "SELECT %s(", fn);
	for (n = 0; n < ns + c->n; n++) {
		if (n < ns) {
			vals[n] = sv[n];
			types[n] = 0;
			lens[n] = 0;
			fmts[n] = 0;
		} else {
			i = n - ns;
			if (pgarr_finish(&c->a[i]) == -1) {
				/* not the peer's fault: tried again later */
				snprintf(err, errlen, "%s: out of memory", fn);
				return DB_EDOWN;
			}
			vals[n] = c->a[i].p;
			types[n] = pgarr_type(&c->a[i]);
			lens[n] = (int)c->a[i].len;
			fmts[n] = 1;
		}
		off += snprintf(sql + off, sizeof(sql) - (size_t)off, "%s$%d",
		    n > 0 ? ", " : "", n + 1);
	}
	snprintf(sql + off, sizeof(sql) - (size_t)off, ")");
	snprintf(name, sizeof(name), "qh_%s_%d", fn, n);
	snprintf(word, sizeof(word), " %s ", name);
	if (strstr(qc->prepared, word) == NULL) {
		if ((res = db_check(qc->pg, PQprepare(qc->pg, name, sql, n,
		    types), &rc, err, errlen)) == NULL)
			return rc;
		PQclear(res);
		strlcat(qc->prepared, word + 1, sizeof(qc->prepared));
	}
	if ((res = db_check(qc->pg, PQexecPrepared(qc->pg, name, n, vals,
	    lens, fmts, 0), &rc, err, errlen)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

/* Ownership of the batch's origins; relaying quiets the triggers. */
static int
qh_apply_check(struct qh_conn *qc, const struct hrec_batch *b, const char *id,
    int relay, char *err, size_t errlen)
{
	struct qh_cols	 c;
	const struct hrec *r;
	const char	*sv[2] = { id, relay ? "t" : "f" };
	size_t		 i;
	int		 rc;

	qh_cols_init(&c, 4);
	for (i = 0; i < b->norigins; i++) {
		pgarr_add_str(&c.a[0], b->origins[i]);
		pgarr_add_str(&c.a[1], b->origin_ids[i]);
	}
	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind != HK_SERVER || r->op != 'u')
			continue;
		pgarr_add_str(&c.a[2], r->o);
		hrec_add_field(&c.a[3], r, "parent");
	}
	rc = qh_call(qc, "hier_apply_check", 2, sv, &c, err, errlen);
	qh_cols_free(&c);
	return rc;
}

/* Deletions of one kind. */
static int
qh_apply_del(struct qh_conn *qc, const struct hrec_batch *b, int kind,
    const char *id, char *err, size_t errlen)
{
	struct qh_cols	 c;
	const char	*sv[2] = { id, hrec_kinds[kind].name };
	size_t		 i;
	int		 rc;

	qh_cols_init(&c, 1);
	for (i = 0; i < b->n; i++)
		if (b->r[i].kind == kind && b->r[i].op == 'd')
			pgarr_add_str(&c.a[0], b->r[i].id);
	rc = qh_call(qc, "hier_apply_del", 2, sv, &c, err, errlen);
	qh_cols_free(&c);
	return rc;
}

/* Upserts of one kind: id, origin, version, then the kind's columns. */
static int
qh_apply_kind(struct qh_conn *qc, const struct hrec_batch *b, int kind,
    const char *id, const char *snap, char *err, size_t errlen)
{
	const struct hrec_kind *k = &hrec_kinds[kind];
	struct qh_cols	 c;
	const struct hrec *r;
	const char	*sv[2] = { id, snap };
	char		 fn[64], v[32];
	size_t		 i;
	int		 rc;

	qh_cols_init(&c, 3);
	c.n += hrec_cols_init(&c.a[3], kind);
	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind != kind || r->op != 'u')
			continue;
		pgarr_add_str(&c.a[0], r->id);
		pgarr_add_str(&c.a[1], r->o);
		snprintf(v, sizeof(v), "%lld", (long long)r->v);
		pgarr_add_str(&c.a[2], v);
		hrec_add_cols(&c.a[3], r);
	}
	snprintf(fn, sizeof(fn), "hier_apply_%s", k->name);
	rc = qh_call(qc, fn, 2, sv, &c, err, errlen);
	qh_cols_free(&c);
	return rc;
}

/* The end: relayed records, the cursor, the lag. */
static int
qh_apply_end(struct qh_conn *qc, const struct qh_apply *q, const char *id,
    const struct hrec_batch *b, int relay, char *err, size_t errlen)
{
	struct qh_cols	 c;
	const char	*sv[4];
	char		 last[24], lag[32], max[16];
	size_t		 i;
	int		 rc;

	snprintf(last, sizeof(last), "%llu", (unsigned long long)q->last);
	snprintf(lag, sizeof(lag), "%.3f", q->lag_s);
	snprintf(max, sizeof(max), "%d", q->relay_max > 0 ? q->relay_max :
	    HIER_BATCH_RECORDS);
	sv[0] = id;
	sv[1] = q->kind == QH_BATCH ? last : NULL;
	sv[2] = q->kind == QH_BATCH ? lag : NULL;
	sv[3] = max;
	qh_cols_init(&c, relay ? 1 : 0);
	for (i = 0; relay && i < b->n; i++)
		hrec_add_relay(&c.a[0], &b->r[i]);
	rc = qh_call(qc, "hier_apply_end", 4, sv, &c, err, errlen);
	qh_cols_free(&c);
	return rc;
}

static int
qh_apply_recs(PGconn *pg, struct qh_apply *q, char *err, size_t errlen)
{
	struct hrec_ctx	 ctx;
	struct hrec_batch b;
	struct qh_conn	 qc;
	const char	*p[2];
	char		 id[24], me[QH_UUID_LEN], snap[24], lag[32];
	PGresult	*res;
	int		 rc, relay, kind;

	memset(&b, 0, sizeof(b));
	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	p[0] = id;
	if (db_begin(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	if ((res = db_exec(pg, &rc, err, errlen, "SELECT role, rx_seq, "
	    "rx_snap, relay, me, (SELECT ' ' || string_agg(name, ' ') || ' ' "
	    "FROM pg_prepared_statements WHERE name LIKE 'qh\\_%') "
	    "FROM hier_apply_link($1)", 1, p)) == NULL)
		goto fail;
	memset(&ctx, 0, sizeof(ctx));
	ctx.up = strcmp(PQgetvalue(res, 0, 0), "child") == 0;
	ctx.rx_seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	strlcpy(snap, PQgetvalue(res, 0, 2), sizeof(snap));
	relay = q->kind == QH_BATCH && PQgetvalue(res, 0, 3)[0] == 't';
	strlcpy(me, PQgetvalue(res, 0, 4), sizeof(me));
	qc.pg = pg;
	strlcpy(qc.prepared, PQgetvalue(res, 0, 5), sizeof(qc.prepared));
	PQclear(res);
	ctx.me = me;
	ctx.stream = q->kind == QH_BATCH;
	ctx.last = (int64_t)q->last;

	/* A batch this link already applied (its acknowledgement was lost,
	 * or the sender resumed from a cursor read before our last commit):
	 * nothing to do again.  Going backwards within a connection is
	 * refused by the receiver before it gets here. */
	if (ctx.stream && ctx.last <= ctx.rx_seq) {
		snprintf(lag, sizeof(lag), "%.3f", q->lag_s);
		p[1] = lag;
		if ((res = db_exec(pg, &rc, err, errlen, "UPDATE hier_links "
		    "SET lag_s = $2 WHERE id = $1 AND lag_s <> $2", 2,
		    p)) == NULL)
			goto fail;
		PQclear(res);
		goto commit;
	}
	switch (hrec_parse(q->recs, strlen(q->recs), &ctx, &b, err, errlen)) {
	case 0:
		break;
	case -1:
		rc = DB_ERR;
		goto fail;
	default:
		rc = DB_EDOWN;	/* out of memory: not the peer's fault */
		goto fail;
	}
	if (b.nchecked > 0 &&
	    (rc = qh_apply_check(&qc, &b, id, relay, err, errlen)) != DB_OK)
		goto fail;
	for (kind = 0; kind < HK_N; kind++)
		if (b.nkind[kind][1] > 0 && (rc = qh_apply_del(&qc, &b, kind,
		    id, err, errlen)) != DB_OK)
			goto fail;
	for (kind = 0; kind < HK_N; kind++)
		if (b.nkind[kind][0] > 0 && (rc = qh_apply_kind(&qc, &b, kind,
		    id, snap, err, errlen)) != DB_OK)
			goto fail;
	if ((ctx.stream || relay) && (rc = qh_apply_end(&qc, q, id, &b,
	    relay && b.n > 0, err, errlen)) != DB_OK)
		goto fail;
	/* What the caller pushes to its own agents and children. */
	q->n = (int)b.nchecked;
	if (q->from_parent && b.nkind[HK_POLICY][0] + b.nkind[HK_POLICY][1])
		q->kinds |= QH_K_POLICY;
	if (q->from_parent && b.nkind[HK_TASK][0] + b.nkind[HK_TASK][1])
		q->kinds |= QH_K_TASK;
	hrec_batch_free(&b);
 commit:
	if (db_commit(pg, err, errlen) != DB_OK)
		return db_errclass(pg);
	return DB_OK;
 fail:
	hrec_batch_free(&b);
	db_rollback(pg);
	/* A statement that failed on what the peer sent. */
	q->bad = rc == DB_ERR;
	return rc;
}

int
qh_apply_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_apply	*q = arg;
	const char	*p[2];
	char		 id[24], last[24];
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	p[0] = id;
	switch (q->kind) {
	case QH_SNAP_BEGIN:
		if ((res = db_exec(pg, &rc, err, errlen,
		    "SELECT hier_snap_begin($1::bigint)", 1, p)) == NULL)
			return rc;
		PQclear(res);
		return DB_OK;
	case QH_SNAP_END:
		snprintf(last, sizeof(last), "%llu",
		    (unsigned long long)q->seq);
		p[1] = last;
		if ((res = db_exec(pg, &rc, err, errlen,
		    "SELECT hier_snap_end($1::bigint, $2::bigint)", 2,
		    p)) == NULL)
			return rc;
		PQclear(res);
		return DB_OK;
	case QH_BATCH:
	case QH_SNAP_CHUNK:
		break;
	}
	return qh_apply_recs(pg, q, err, errlen);
}

int
qh_acked_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_acked	*q = arg;
	const char	*p[2];
	char		 id[24], acked[24];
	PGresult	*res;
	int		 rc;

	snprintf(id, sizeof(id), "%lld", (long long)q->link);
	snprintf(acked, sizeof(acked), "%llu", (unsigned long long)q->acked);
	p[0] = id;
	p[1] = acked;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "UPDATE hier_links SET tx_acked = greatest(tx_acked, $2::bigint),"
	    " last_seen = now() WHERE id = $1::bigint", 2,
	    p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

int
qh_tick_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct qh_tick	*q = arg;
	const char	*p[2];
	char		 age[16], limit[16];
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT hier_status_refresh()", 0, NULL)) == NULL)
		return rc;
	q->status_changed = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	snprintf(age, sizeof(age), "%d", q->max_age_s);
	snprintf(limit, sizeof(limit), "%d", q->limit);
	p[0] = age;
	p[1] = limit;
	if ((res = db_exec(pg, &rc, err, errlen,
	    "SELECT hier_compact(make_interval(secs => $1::int), $2::int)", 2,
	    p)) == NULL)
		return rc;
	q->compacted = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return DB_OK;
}
