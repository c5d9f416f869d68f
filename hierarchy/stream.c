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
 * A link's two streams (docs/HIERARCHY.md), once the hellos are done.  The
 * sender reads records from the outbox after the peer's cursor, a few
 * batches in flight at most (the window), or first a snapshot when the
 * outbox no longer covers that cursor; the receiver applies each batch and
 * moves its cursor in one transaction, in order, then acknowledges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include "db/db.h"
#include "db/q_hier.h"
#include "srv/canopyd.h"
#include "srv/modules.h"

#include "hier_int.h"

static void	hl_apply_next(struct hlink *);

/* A job's done callback that only frees the job (logging a failure). */
void
hl_job_free(int rc, const char *err, void *arg)
{
	if (rc != DB_OK)
		log_debug("server link: %s", err);
	free(arg);
}

/* Forgets what was in flight: the connection is gone (or the link). */
void
hl_stream_reset(struct hlink *l)
{
	struct hl_rx	*rx;

	l->tx_ready = 0;
	l->reading = 0;
	l->applying = 0;
	l->ninflight = 0;
	qh_snapshot_free(l->snap);
	l->snap = NULL;
	while ((rx = TAILQ_FIRST(&l->rxq)) != NULL) {
		TAILQ_REMOVE(&l->rxq, rx, entry);
		qh_apply_free(rx->job);
		free(rx);
	}
	l->nrxq = 0;
}

/*
 * Sending.
 */

static void
hl_send_batch(struct hlink *l, uint64_t snap, uint64_t last, char **recs,
    size_t nrecs, const char *array, int64_t at_ms, int more)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	size_t		 i;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HBATCH, 6);
	mp_kv_uint(&pk, "snap", snap);
	mp_kv_uint(&pk, "last", last);
	mp_kv_uint(&pk, "at_ms", at_ms > 0 ? (uint64_t)at_ms : 0);
	mp_kv_bool(&pk, "more", more);
	mp_key(&pk, "recs");
	if (array != NULL) {
		/* A snapshot chunk: one JSON array, sent as one record list. */
		msgpack_pack_array(&pk, 1);
		mp_str(&pk, array);
	} else {
		msgpack_pack_array(&pk, (uint32_t)nrecs);
		for (i = 0; i < nrecs; i++)
			mp_str(&pk, recs[i]);
	}
	hl_send(l, &sb);
	if (l->ninflight < HIER_WINDOW)
		l->inflight[l->ninflight++] = last;
}

static void
hl_send_snap(struct hlink *l, const char *phase, uint64_t seq)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HSNAP, 4);
	mp_kv_str(&pk, "phase", phase);
	mp_kv_uint(&pk, "snap", l->snap_id);
	mp_kv_uint(&pk, "seq", seq);
	hl_send(l, &sb);
}

struct hl_snap_job {
	struct qh_snapshot q;		/* first */
	struct hlink	*l;
	uint32_t	 gen;
};

static void
hl_snapshot_done(int rc, const char *err, void *arg)
{
	struct hl_snap_job *sj = arg;
	struct qh_snapshot *q;
	struct hlink	*l;

	/* The job is its qh_snapshot: freeing that frees it. */
	if ((l = hl_job_link(sj->l, sj->gen)) == NULL) {
		qh_snapshot_free(&sj->q);
		return;
	}
	if (rc != DB_OK) {
		log_warnx("server link %s: snapshot: %s", hl_who(l), err);
		qh_snapshot_free(&sj->q);
		hl_close(l, "cannot read a snapshot");
		return;
	}
	q = &sj->q;
	l->snap = q;
	l->snap_next = 0;
	l->snap_id = wall_ms() > 0 ? (uint64_t)wall_ms() : 1;
	log_info("server link %s: sending a snapshot at %llu, %zu chunks",
	    hl_who(l), (unsigned long long)q->seq, q->nchunks);
	hl_send_snap(l, "begin", q->seq);
	l->tx_ready = 1;
	hl_pump(l);
}

void
hl_snapshot_start(struct hlink *l)
{
	struct hl_snap_job *sj;

	if ((sj = calloc(1, sizeof(*sj))) == NULL) {
		hl_close(l, "out of memory");
		return;
	}
	sj->q.link = l->id;
	sj->q.chunk = HIER_SNAP_CHUNK;
	sj->l = l;
	sj->gen = l->gen;
	hl_ref(l);
	l->tx_ready = 0;
	if (db_submit(l->cd->db, qh_snapshot_run, hl_snapshot_done,
	    sj) == -1) {
		hl_unref(l);
		free(sj);
		hl_close(l, "database queue full");
	}
}

struct hl_read_job {
	struct qh_read	 q;		/* first */
	struct hlink	*l;
	uint32_t	 gen;
};

static void
hl_read_done(int rc, const char *err, void *arg)
{
	struct hl_read_job *rj = arg;
	struct qh_read	*q = &rj->q;
	struct hlink	*l;

	if ((l = hl_job_link(rj->l, rj->gen)) == NULL) {
		qh_read_free(q);
		return;
	}
	l->reading = 0;
	if (rc != DB_OK) {
		log_warnx("server link %s: reading the outbox: %s", hl_who(l),
		    err);
		qh_read_free(q);
		return;	/* the poll timer tries again */
	}
	if (q->nrecs > 0 || q->last != q->after)	/* not every idle poll */
		log_debug("server link %s: read after %llu: %zu records up "
		    "to %llu%s", hl_who(l), (unsigned long long)q->after,
		    q->nrecs, (unsigned long long)q->last,
		    q->more ? ", more" : "");
	if (q->nrecs > 0)
		hl_send_batch(l, 0, q->last, q->recs, q->nrecs, NULL,
		    q->last_at_ms, q->more);
	if (q->last > l->tx_next)
		l->tx_next = q->last;
	if (q->more || l->reread) {
		l->reread = 0;
		qh_read_free(q);
		hl_pump(l);
		return;
	}
	qh_read_free(q);
}

/* Sends what may be sent: snapshot chunks, then the stream. */
void
hl_pump(struct hlink *l)
{
	struct hl_read_job *rj;
	struct qh_snapshot *q;

	if (l->state != HL_UP || !l->tx_ready || l->conn == NULL)
		return;
	if ((q = l->snap) != NULL) {
		while (l->snap_next < q->nchunks && l->ninflight < HIER_WINDOW) {
			hl_send_batch(l, l->snap_id, l->snap_next + 1, NULL, 0,
			    q->chunks[l->snap_next], 0, 1);
			free(q->chunks[l->snap_next]);
			q->chunks[l->snap_next] = NULL;
			l->snap_next++;
		}
		if (l->snap_next < q->nchunks || l->ninflight >= HIER_WINDOW)
			return;
		/* All sent: the end, then the stream from its point. */
		hl_send_snap(l, "end", q->seq);
		l->inflight[l->ninflight++] = q->seq;
		l->tx_next = q->seq;
		qh_snapshot_free(q);
		l->snap = NULL;
	}
	if (l->reading) {
		l->reread = 1;
		return;
	}
	if (l->ninflight >= HIER_WINDOW)
		return;
	if ((rj = calloc(1, sizeof(*rj))) == NULL)
		return;
	rj->q.link = l->id;
	rj->q.after = l->tx_next;
	rj->q.limit = HIER_BATCH_RECORDS;
	rj->q.max_bytes = HIER_BATCH_BYTES;
	rj->l = l;
	rj->gen = l->gen;
	hl_ref(l);
	l->reading = 1;
	if (db_submit(l->cd->db, qh_read_run, hl_read_done, rj) == -1) {
		l->reading = 0;
		hl_unref(l);
		free(rj);
	}
}

void
hl_ack(struct hlink *l, const struct msg *m)
{
	uint64_t	 snap = msg_uint(m, "snap", 0), seq = msg_uint(m, "seq", 0);
	int		 i, k;

	if (l->ninflight == 0) {
		hl_fail(l, "bad_ack", "acknowledgement of %llu with nothing "
		    "in flight", (unsigned long long)seq);
		return;
	}
	if (snap != 0 && (snap != l->snap_id || seq != l->inflight[0])) {
		hl_fail(l, "bad_ack", "snapshot acknowledgement out of order");
		return;
	}
	if (snap == 0) {
		if (seq < l->tx_acked) {
			hl_fail(l, "bad_ack", "acknowledgement %llu goes "
			    "backwards", (unsigned long long)seq);
			return;
		}
		l->tx_acked = seq;
	}
	/* Everything up to the acknowledged batch is done. */
	for (i = 0; i < l->ninflight && l->inflight[i] != seq; i++)
		;
	if (i == l->ninflight) {
		hl_fail(l, "bad_ack", "acknowledgement of %llu, which was "
		    "not sent", (unsigned long long)seq);
		return;
	}
	for (k = 0; i + 1 + k < l->ninflight; k++)
		l->inflight[k] = l->inflight[i + 1 + k];
	l->ninflight = k;
	/* hier_save_acks writes it down at the next tick. */
	hl_pump(l);
}

/*
 * Receiving: applied in order, one job at a time.
 */

static void
hl_send_ack(struct hlink *l, uint64_t snap, uint64_t seq)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HACK, 3);
	mp_kv_uint(&pk, "snap", snap);
	mp_kv_uint(&pk, "seq", seq);
	hl_send(l, &sb);
}

/* PostgreSQL's message for a person: no "ERROR:", no CONTEXT. */
static const char *
hl_pgmsg(const char *err, char *buf, size_t len)
{
	char	*p;
	size_t	 n;

	if (strncmp(err, "ERROR:", 6) == 0)
		err += 6;
	err += strspn(err, " ");
	strlcpy(buf, err, len);
	if ((p = strstr(buf, "CONTEXT:")) != NULL)
		*p = '\0';
	for (n = strlen(buf); n > 0 && (buf[n - 1] == '\n' ||
	    buf[n - 1] == ' '); n--)
		buf[n - 1] = '\0';
	return buf;
}

static void
hl_apply_done(int rc, const char *err, void *arg)
{
	char		 msg[512];
	struct qh_apply	*q = arg;
	struct hlink	*l = q->arg;
	struct canopyd	*cd = l->cd;
	uint32_t	 gen = q->gen;

	/*
	 * What committed counts whatever became of the connection: the
	 * cursor for the next hello, and the agents' new policy.
	 */
	if (rc == DB_OK && !l->gone) {
		if (q->kind == QH_BATCH || q->kind == QH_SNAP_END) {
			l->rx_seq = q->kind == QH_BATCH ? q->last : q->seq;
			if (l->parent)
				l->h->parent_rx = l->rx_seq;
		}
		if ((q->kinds & QH_K_POLICY || (q->kind == QH_SNAP_END &&
		    l->parent)) && !cd->stopping) {
			/* What came from above applies to the whole of main. */
			if (l->h->root_group != 0)
				policy_push_group(cd, 0, l->h->root_group);
			if (l->h->pool_group != 0)
				policy_push_group(cd, 0, l->h->pool_group);
		}
	}
	if ((l = hl_job_link(l, gen)) == NULL) {
		qh_apply_free(q);
		return;
	}
	l->applying = 0;
	if (rc != DB_OK) {
		if (q->bad)
			hl_fail(l, "bad_batch", "%s", hl_pgmsg(err, msg,
			    sizeof(msg)));
		else {
			log_warnx("server link %s: applying: %s", hl_who(l),
			    err);
			hl_close(l, "cannot apply now");
		}
		qh_apply_free(q);
		return;
	}
	switch (q->kind) {
	case QH_BATCH:
		log_debug("server link %s: applied up to %llu: %d records",
		    hl_who(l), (unsigned long long)q->last, q->n);
		hl_send_ack(l, 0, q->last);
		break;
	case QH_SNAP_CHUNK:
		hl_send_ack(l, q->snap, q->ack);
		break;
	case QH_SNAP_END:
		hl_send_ack(l, 0, q->seq);
		log_info("server link %s: snapshot applied up to %llu",
		    hl_who(l), (unsigned long long)q->seq);
		break;
	case QH_SNAP_BEGIN:
		break;
	}
	qh_apply_free(q);
	hl_apply_next(l);
}

/*
 * The stream batches queued behind q join it, up to HIER_APPLY_BYTES: a
 * receiver that fell behind catches up in fewer, larger transactions, and
 * acknowledges the last (acknowledgements are cumulative).
 */
static void
hl_coalesce(struct hlink *l, struct qh_apply *q)
{
	struct hl_rx	*rx;
	struct qh_apply	*n;
	size_t		 a, b;
	char		*t;

	a = strlen(q->recs);
	while ((rx = TAILQ_FIRST(&l->rxq)) != NULL &&
	    rx->job->kind == QH_BATCH) {
		n = rx->job;
		b = strlen(n->recs);
		if (a + b > HIER_APPLY_BYTES)
			break;
		/* Both are JSON arrays, "[...]". */
		if (b > 2 && a > 2) {
			if ((t = malloc(a + b)) == NULL)
				break;
			memcpy(t, q->recs, a - 1);
			t[a - 1] = ',';
			memcpy(t + a, n->recs + 1, b);	/* with the NUL */
			free(q->recs);
			q->recs = t;
			a += b - 1;
		} else if (b > 2) {
			free(q->recs);
			q->recs = n->recs;
			n->recs = NULL;
			a = b;
		}
		q->last = n->last;
		q->more = n->more;
		q->at_ms = n->at_ms;
		q->lag_s = n->lag_s;
		TAILQ_REMOVE(&l->rxq, rx, entry);
		l->nrxq--;
		free(rx);
		qh_apply_free(n);
	}
}

static void
hl_apply_next(struct hlink *l)
{
	struct hl_rx	*rx;
	struct qh_apply	*q;

	if (l->applying || (rx = TAILQ_FIRST(&l->rxq)) == NULL)
		return;
	TAILQ_REMOVE(&l->rxq, rx, entry);
	l->nrxq--;
	q = rx->job;
	free(rx);
	if (q->kind == QH_BATCH && q->recs != NULL)
		hl_coalesce(l, q);
	q->arg = l;
	q->gen = l->gen;
	hl_ref(l);
	l->applying = 1;
	if (db_submit(l->cd->db, qh_apply_run, hl_apply_done, q) == -1) {
		l->applying = 0;
		hl_unref(l);
		qh_apply_free(q);
		hl_close(l, "database queue full");
	}
}

static void
hl_enqueue(struct hlink *l, struct qh_apply *q)
{
	struct hl_rx	*rx;

	if (l->nrxq >= HIER_RX_QUEUE) {
		qh_apply_free(q);
		hl_fail(l, "window_exceeded", "more than %d batches sent "
		    "without acknowledgement", HIER_RX_QUEUE);
		return;
	}
	if ((rx = calloc(1, sizeof(*rx))) == NULL) {
		qh_apply_free(q);
		hl_close(l, "out of memory");
		return;
	}
	q->link = l->id;
	q->from_parent = l->parent;
	rx->job = q;
	TAILQ_INSERT_TAIL(&l->rxq, rx, entry);
	l->nrxq++;
	hl_apply_next(l);
}

/* The records of a batch as one JSON array text, for the database. */
static char *
hl_join(const msgpack_object *arr, int *err)
{
	struct jbuf	 jb = { NULL, 0, 0, 0 };
	uint32_t	 i;

	jbuf_raw(&jb, "[", 1);
	for (i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *o = &arr->via.array.ptr[i];

		if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
		    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			jbuf_free(&jb);
			*err = (int)i + 1;
			return NULL;
		}
		if (i > 0)
			jbuf_raw(&jb, ",", 1);
		jbuf_raw(&jb, o->via.str.ptr, o->via.str.size);
	}
	jbuf_raw(&jb, "]", 1);
	if (jb.err) {
		jbuf_free(&jb);
		*err = -1;
		return NULL;
	}
	return jb.p;
}

void
hl_batch(struct hlink *l, const struct msg *m)
{
	const msgpack_object *recs = msg_get(m, "recs");
	uint64_t	 snap = msg_uint(m, "snap", 0);
	uint64_t	 last = msg_uint(m, "last", 0);
	struct qh_apply	*q;
	int		 bad = 0;
	char		*text;

	if (snap == 0 && last <= l->rx_last) {
		hl_fail(l, "bad_sequence", "batch up to %llu after %llu: the "
		    "sequence goes backwards", (unsigned long long)last,
		    (unsigned long long)l->rx_last);
		return;
	}
	if (snap != 0 && (snap != l->rx_snap || last != l->rx_chunks + 1)) {
		hl_fail(l, "bad_sequence", "snapshot batch %llu of %llu out "
		    "of order", (unsigned long long)last,
		    (unsigned long long)snap);
		return;
	}
	if (snap != 0 && recs->via.array.size != 1) {
		hl_fail(l, "bad_message", "a snapshot batch carries one "
		    "record list");
		return;
	}
	if (snap != 0) {
		const msgpack_object *o = &recs->via.array.ptr[0];

		if (o->type != MSGPACK_OBJECT_STR) {
			hl_fail(l, "bad_message", "h_batch: recs[0] must be a "
			    "string");
			return;
		}
		if ((text = malloc(o->via.str.size + 1)) != NULL) {
			memcpy(text, o->via.str.ptr, o->via.str.size);
			text[o->via.str.size] = '\0';
			if (strlen(text) != o->via.str.size) {
				free(text);
				hl_fail(l, "bad_message", "h_batch: NUL in "
				    "recs[0]");
				return;
			}
		}
	} else
		text = hl_join(recs, &bad);
	if (text == NULL) {
		if (bad > 0)
			hl_fail(l, "bad_message", "h_batch: recs[%d] must be "
			    "a non-empty string", bad - 1);
		else
			hl_close(l, "out of memory");
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		free(text);
		hl_close(l, "out of memory");
		return;
	}
	q->recs = text;
	q->more = msg_bool(m, "more", 0);
	q->at_ms = (int64_t)msg_uint(m, "at_ms", 0);
	if (snap == 0) {
		q->kind = QH_BATCH;
		q->last = last;
		l->rx_last = last;
		q->lag_s = q->more && q->at_ms > 0 ?
		    (double)(wall_ms() - q->at_ms) / 1000.0 : 0;
		if (q->lag_s < 0)
			q->lag_s = 0;
	} else {
		q->kind = QH_SNAP_CHUNK;
		q->snap = snap;
		q->ack = last;
		l->rx_chunks = last;
	}
	hl_enqueue(l, q);
}

void
hl_snap(struct hlink *l, const struct msg *m)
{
	char		 phase[16];
	uint64_t	 snap = msg_uint(m, "snap", 0), seq = msg_uint(m, "seq", 0);
	struct qh_apply	*q;

	if (msg_str(m, "phase", phase, sizeof(phase)) == -1 || snap == 0) {
		hl_fail(l, "bad_message", "h_snap: bad phase or snapshot id");
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		hl_close(l, "out of memory");
		return;
	}
	if (strcmp(phase, "begin") == 0) {
		l->rx_snap = snap;
		l->rx_chunks = 0;
		q->kind = QH_SNAP_BEGIN;
	} else {
		if (snap != l->rx_snap) {
			free(q);
			hl_fail(l, "bad_sequence", "end of snapshot %llu, "
			    "which did not begin", (unsigned long long)snap);
			return;
		}
		q->kind = QH_SNAP_END;
		q->seq = seq;
		l->rx_snap = 0;
		l->rx_last = seq;
	}
	hl_enqueue(l, q);
}
