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
 * One link of the server tree (docs/HIERARCHY.md): to our parent (we dial
 * it) or from a child (it dialled us on the agent port and said hello with
 * the role 'server').  After the hellos each side streams its records to the
 * other: the sender reads them from the outbox after the peer's cursor, a
 * few batches in flight at most; the receiver applies each batch and moves
 * its cursor in one transaction, in order, then acknowledges.  A cursor the
 * outbox no longer covers gets a snapshot first.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <msgpack.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "canopy_limits.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"

#include "db/db.h"
#include "db/q_hier.h"
#include "srv/canopyd.h"
#include "srv/modules.h"

#include "hier_int.h"

static void	hl_on_ready(struct conn *, void *);
static void	hl_on_frame(struct conn *, const uint8_t *, size_t, void *);
static void	hl_on_close(struct conn *, const char *, void *);
static void	hl_apply_next(struct hlink *);

static const struct conn_cb hl_cb = {
	hl_on_ready, hl_on_frame, hl_on_close
};

static const char *
hl_who(struct hlink *l)
{
	if (l->name[0] != '\0')
		return l->name;
	return l->conn != NULL ? conn_peer_addr(l->conn) : "?";
}

static void
hl_ref(struct hlink *l)
{
	l->refs++;
}

static void
hl_unref(struct hlink *l)
{
	if (--l->refs > 0 || !l->gone)
		return;
	hl_free_if_done(l);
}

struct hlink *
hl_new(struct hier *h, int parent, int dialer, const char *name)
{
	struct hlink	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->h = h;
	l->cd = h->cd;
	/* A parent link is named host:port; children by their name. */
	l->parent = parent;
	l->dialer = dialer;
	strlcpy(l->name, name, sizeof(l->name));
	TAILQ_INIT(&l->rxq);
	TAILQ_INSERT_TAIL(&h->links, l, entry);
	l->refs = 1;		/* the list's */
	return l;
}

/* Out of the list; the memory goes with the last reference. */
void
hl_free_if_done(struct hlink *l)
{
	struct hl_rx	*rx;

	if (!l->gone) {
		l->gone = 1;
		TAILQ_REMOVE(&l->h->links, l, entry);
		if (l->h->parent == l)
			l->h->parent = NULL;
		if (l->conn != NULL)
			conn_close(l->conn, "link removed", 0);
		l->refs--;
	}
	if (l->refs > 0)
		return;
	while ((rx = TAILQ_FIRST(&l->rxq)) != NULL) {
		TAILQ_REMOVE(&l->rxq, rx, entry);
		qh_apply_free(rx->job);
		free(rx);
	}
	qh_snapshot_free(l->snap);
	if (l->ev_retry != NULL)
		event_free(l->ev_retry);
	if (l->ev_beat != NULL)
		event_free(l->ev_beat);
	free(l);
}

/*
 * After a database job: drops the job's reference and returns the link if
 * the connection the job was for is still the current one, else NULL.
 */
static struct hlink *
hl_job_link(struct hlink *l, uint32_t gen)
{
	int	ok = !l->gone && l->gen == gen && l->conn != NULL &&
		    l->state != HL_CLOSING;

	if (--l->refs == 0 && l->gone) {
		hl_free_if_done(l);
		return NULL;
	}
	return ok ? l : NULL;
}

static void
hl_send(struct hlink *l, msgpack_sbuffer *sb)
{
	if (l->conn != NULL && l->state != HL_CLOSING &&
	    conn_send(l->conn, sb->data, sb->size) == -1) {
		log_warnx("server link %s: the peer does not read; dropped",
		    hl_who(l));
		l->state = HL_CLOSING;
	}
	msgpack_sbuffer_destroy(sb);
}

static void __attribute__((format(printf, 3, 4)))
hl_fail(struct hlink *l, const char *code, const char *fmt, ...)
{
	char	 buf[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("server link %s: %s: %s", hl_who(l), code, buf);
	snprintf(l->error, sizeof(l->error), "%s: %.200s", code, buf);
	if (l->conn != NULL && l->state != HL_CLOSING) {
		l->state = HL_CLOSING;
		conn_fail(l->conn, code, "%s", buf);
	}
}

void
hl_close(struct hlink *l, const char *why)
{
	if (l->conn == NULL)
		return;
	l->state = HL_CLOSING;
	conn_close(l->conn, why, 1);
}

/*
 * Dialling.
 */

static void
hl_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct hlink	*l = arg;

	if (!l->gone && l->conn == NULL)
		hl_dial(l);
}

/* Full-jitter exponential backoff: a parent back from an outage is not
 * hit by all its children at once. */
static void
hl_backoff(struct hlink *l, int soon)
{
	uint64_t	 cap;
	uint32_t	 ms, lo = HIER_BACKOFF_MIN_MS;
	struct timeval	 tv;

	if (l->ev_retry == NULL && (l->ev_retry = evtimer_new(l->cd->base,
	    hl_retry_cb, l)) == NULL)
		return;
	if (soon)
		ms = 50;
	else {
		cap = (uint64_t)lo << (l->attempt < 16 ? l->attempt : 16);
		if (cap > HIER_BACKOFF_MAX_MS)
			cap = HIER_BACKOFF_MAX_MS;
		ms = arc4random_uniform((uint32_t)cap + 1);
		if (ms < 50)
			ms = 50;
		if (l->attempt < 31)
			l->attempt++;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(l->ev_retry, &tv);
}

static int
hl_have_cert(struct hier *h)
{
	char		 path[1100];
	struct stat	 st;

	snprintf(path, sizeof(path), "%s/parent.pem", h->cd->conf->state_dir);
	return stat(path, &st) == 0;
}

static void
hl_connect(struct hlink *l, SSL_CTX *ctx, const struct sockaddr_storage *ss,
    socklen_t sslen, const char *where)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	bev = bufferevent_openssl_socket_new(l->cd->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	if (bufferevent_socket_connect(bev, (const struct sockaddr *)ss,
	    (int)sslen) == -1) {
		bufferevent_free(bev);
		goto fail;
	}
	if ((l->conn = conn_new(bev, l->cd->conf->max_frame, &hl_cb,
	    l)) == NULL)
		goto fail;
	conn_set_highwater(l->conn, HIER_HIGHWATER);
	conn_set_timeout(l->conn, CONN_HELLO_TIMEOUT_S);
	l->gen++;
	l->hello_sent = 0;
	l->state = HL_CONNECTING;
	hl_ref(l);		/* the connection's */
	return;
 fail:
	log_warnx("server link %s: cannot connect to %s", hl_who(l), where);
	hl_backoff(l, 0);
}

/*
 * A child in a DMZ: this server dials it, with a client certificate of its
 * own CA, and checks the child's certificate against the CA the child
 * registered (none yet: the registration token is what authenticates it).
 */
struct hl_dial_job {
	struct qh_lookup q;		/* first */
	struct hlink	*l;
};

static void
hl_dial_child_done(int rc, const char *err, void *arg)
{
	struct hl_dial_job *dj = arg;
	struct hlink	*l = dj->l;
	SSL_CTX		*ctx = NULL;
	char		 e[256], path[1100];
	BIO		*bio;
	X509		*ca;

	if (--l->refs == 0 && l->gone) {
		hl_free_if_done(l);
		free(dj);
		return;
	}
	if (l->gone || l->conn != NULL) {
		free(dj);
		return;
	}
	if (rc != DB_OK || !dj->q.found) {
		snprintf(l->error, sizeof(l->error), "%s", rc != DB_OK ? err :
		    "no child of this name: add it with POST /servers/children "
		    "first");
		log_warnx("server link %s: %s", hl_who(l), l->error);
		free(dj);
		hl_backoff(l, 0);
		return;
	}
	l->id = dj->q.link.id;
	l->rx_seq = dj->q.link.rx_seq;
	l->registered = dj->q.link.peer_uuid[0] != '\0';
	strlcpy(l->peer_ca, dj->q.link.peer_ca_pem, sizeof(l->peer_ca));
	free(dj);
	snprintf(path, sizeof(path), "%s/ca.pem", l->cd->conf->state_dir);
	if ((ctx = tls_client_ctx(path, l->h->dmz_cert, l->h->dmz_key, e,
	    sizeof(e))) == NULL) {
		log_warnx("server link %s: TLS: %s", hl_who(l), e);
		hl_backoff(l, 0);
		return;
	}
	if (l->peer_ca[0] != '\0') {
		/* Only the CA the child registered. */
		X509_STORE *st = X509_STORE_new();

		bio = BIO_new_mem_buf(l->peer_ca, -1);
		ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		if (st == NULL || ca == NULL || X509_STORE_add_cert(st,
		    ca) != 1) {
			X509_free(ca);
			X509_STORE_free(st);
			SSL_CTX_free(ctx);
			log_warnx("server link %s: the child's CA is unusable",
			    hl_who(l));
			hl_backoff(l, 0);
			return;
		}
		X509_free(ca);
		SSL_CTX_set_cert_store(ctx, st);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	hl_connect(l, ctx, &l->dial_ss, l->dial_sslen, l->dial_host);
	SSL_CTX_free(ctx);	/* the SSL holds a reference */
}

static void
hl_dial_child(struct hlink *l)
{
	struct hl_dial_job *dj;

	if ((dj = calloc(1, sizeof(*dj))) == NULL) {
		hl_backoff(l, 0);
		return;
	}
	strlcpy(dj->q.name, l->name, sizeof(dj->q.name));
	dj->l = l;
	hl_ref(l);
	if (db_submit(l->cd->db, qh_lookup_run, hl_dial_child_done, dj) ==
	    -1) {
		hl_unref(l);
		free(dj);
		hl_backoff(l, 0);
	}
}

void
hl_dial(struct hlink *l)
{
	struct hier	*h = l->h;

	if (l->conn != NULL || l->gone)
		return;
	if (!l->parent) {
		hl_dial_child(l);
		return;
	}
	if (h->client_ctx == NULL || h->parent_sslen == 0)
		return;
	hl_connect(l, h->client_ctx, &h->parent_ss, h->parent_sslen,
	    h->parent_host);
}

static void
hl_send_hello(struct hlink *l, uint64_t rx, int proto)
{
	struct hier	*h = l->h;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HELLO, proto ? 8 : 9);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", h->name);
	mp_kv_str(&pk, "uuid", h->uuid);
	mp_kv_uint(&pk, "level", (uint64_t)h->level);
	mp_kv_uint(&pk, "rx", rx);
	mp_kv_uint(&pk, "heartbeat_s", HIER_HEARTBEAT_S);
	if (proto)
		mp_kv_uint(&pk, "proto", (uint64_t)proto);
	else {
		mp_kv_uint(&pk, "proto_min", PROTO_SERVER_MIN);
		mp_kv_uint(&pk, "proto_max", PROTO_SERVER_MAX);
	}
	hl_send(l, &sb);
	l->hello_sent = 1;
}

static void
hl_send_register(struct hlink *l)
{
	struct hier	*h = l->h;
	const struct conf *c = h->cd->conf;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	char		*key = NULL, *csr = NULL, path[1100];

	if (c->parent_token[0] == '\0') {
		hl_fail(l, "not_registered", "this server has no link "
		    "certificate and %s names no parent-token", c->path);
		return;
	}
	if (pki_make_csr(h->name, &key, &csr) == -1) {
		hl_fail(l, "internal", "cannot make a key and CSR");
		return;
	}
	snprintf(path, sizeof(path), "%s/parent.key.new", c->state_dir);
	if (file_write_atomic(path, key, strlen(key), 0600) == -1) {
		hl_fail(l, "internal", "cannot write %s: %s", path,
		    strerror(errno));
		goto done;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_REGISTER, 5);
	mp_kv_str(&pk, "token", c->parent_token);
	mp_kv_str(&pk, "csr", csr);
	mp_kv_str(&pk, "uuid", h->uuid);
	mp_kv_str(&pk, "ca", h->cd->pki.ca_pem);
	hl_send(l, &sb);
	l->state = HL_REGISTER;
 done:
	if (key != NULL)
		explicit_bzero(key, strlen(key));
	free(key);
	free(csr);
}

static void
hl_registered(struct hlink *l, const struct msg *m)
{
	struct hier	*h = l->h;
	const char	*sd = h->cd->conf->state_dir;
	char		 cert[MSG_MAX_CSR + 1], name[MSG_MAX_NAME + 1];
	char		 from[1100], to[1100];

	if (msg_str(m, "cert", cert, sizeof(cert)) == -1 ||
	    msg_str(m, "name", name, sizeof(name)) == -1) {
		hl_fail(l, "bad_message", "registered: bad fields");
		return;
	}
	snprintf(to, sizeof(to), "%s/parent.pem", sd);
	snprintf(from, sizeof(from), "%s/parent.key.new", sd);
	if (file_write_atomic(to, cert, strlen(cert), 0600) == -1) {
		hl_fail(l, "internal", "cannot write %s", to);
		return;
	}
	snprintf(to, sizeof(to), "%s/parent.key", sd);
	if (rename(from, to) == -1) {
		hl_fail(l, "internal", "cannot rename %s", from);
		return;
	}
	log_info("server link %s: registered with the parent as '%s'",
	    hl_who(l), name);
	if (!h->accept_mode)
		hier_client_ctx_reload(h);
	l->attempt = 0;
	hl_close(l, "registered; reconnecting with the certificate");
}

static void
hl_on_ready(struct conn *c, void *arg)
{
	struct hlink	*l = arg;

	if (!l->dialer)
		return;
	l->state = HL_HELLO;
	hl_send_hello(l, l->rx_seq, 0);
	if (l->parent && !hl_have_cert(l->h))
		hl_send_register(l);
}

/*
 * Up: the hellos are exchanged.  peer_rx is where the peer's copy of our
 * stream ends; the outbox must still cover it, else a snapshot.
 */
static void
hl_beat_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct hlink	*l = arg;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	if (l->state != HL_UP)
		return;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HEARTBEAT, 2);
	mp_kv_uint(&pk, "seq", l->tx_acked);
	hl_send(l, &sb);
}

static void hl_snapshot_start(struct hlink *);

static void
hl_up(struct hlink *l, uint64_t peer_rx, uint64_t compacted, uint64_t top)
{
	struct timeval	 tv = { HIER_HEARTBEAT_S, 0 };

	l->state = HL_UP;
	l->attempt = 0;
	l->error[0] = '\0';
	l->rx_last = l->rx_seq;
	l->ninflight = 0;
	l->reading = 0;
	conn_set_timeout(l->conn, HIER_DEAD_S);
	if (l->ev_beat == NULL)
		l->ev_beat = event_new(l->cd->base, -1, EV_PERSIST,
		    hl_beat_cb, l);
	if (l->ev_beat != NULL)
		event_add(l->ev_beat, &tv);
	log_info("server link %s: up (%s %s), peer at %llu, outbox %llu..%llu",
	    hl_who(l), l->parent ? "parent" : "child", l->peer_name,
	    (unsigned long long)peer_rx, (unsigned long long)compacted,
	    (unsigned long long)top);
	if (peer_rx == 0 || peer_rx < compacted || peer_rx > top) {
		hl_snapshot_start(l);
		return;
	}
	l->tx_next = l->tx_acked = peer_rx;
	l->tx_ready = 1;
	hl_pump(l);
}

/* The state job after the hellos. */
struct hl_state_job {
	struct qh_state	 q;		/* first: the job's argument */
	struct hlink	*l;
	uint32_t	 gen;
	uint64_t	 peer_rx;
};

static void
hl_state_done(int rc, const char *err, void *arg)
{
	struct hl_state_job *sj = arg;
	struct hlink	*l;

	if ((l = hl_job_link(sj->l, sj->gen)) == NULL) {
		free(sj);
		return;
	}
	if (rc != DB_OK) {
		log_warnx("server link %s: %s", hl_who(l), err);
		if (l->conn != NULL && l->state != HL_CLOSING) {
			l->state = HL_CLOSING;
			conn_fail(l->conn, "unavailable", "the server cannot "
			    "take the link now; try again later");
		}
		free(sj);
		return;
	}
	if (sj->q.reset == -1) {
		hl_fail(l, "identity_changed", "server id %s is not the one "
		    "that registered as '%s' (was its database replaced?); "
		    "remove the child and add it again", sj->q.peer_uuid,
		    l->name);
		free(sj);
		return;
	}
	if (l->parent && sj->q.reset) {
		/* A new parent: our cursor meant nothing to it. */
		log_warnx("server link %s: the parent's id changed; "
		    "starting over", hl_who(l));
		l->rx_seq = 0;
		hl_close(l, "parent changed");
		free(sj);
		return;
	}
	if (!l->parent) {
		l->rx_seq = sj->q.rx_seq;
		if (!l->hello_sent)
			hl_send_hello(l, l->rx_seq, sj->q.peer_proto);
	} else if (sj->q.peer_level + 1 != l->h->level) {
		struct hlink	*o, *next;

		/* Our place in the tree changed: the children learn it at
		 * their next hello. */
		l->h->level = sj->q.peer_level + 1;
		for (o = TAILQ_FIRST(&l->h->links); o != NULL; o = next) {
			next = TAILQ_NEXT(o, entry);
			if (!o->parent && o->conn != NULL)
				hl_close(o, "this server's level changed");
		}
	}
	hl_up(l, sj->peer_rx, sj->q.compacted, sj->q.top);
	free(sj);
}

static void
hl_state_submit(struct hlink *l, uint64_t peer_rx, int peer_level,
    int proto)
{
	struct hl_state_job *sj;

	if ((sj = calloc(1, sizeof(*sj))) == NULL) {
		hl_fail(l, "unavailable", "out of memory");
		return;
	}
	sj->l = l;
	sj->gen = l->gen;
	sj->peer_rx = peer_rx;
	sj->q.link = l->id;
	sj->q.up = 1;
	sj->q.parent = l->parent;
	sj->q.peer_level = peer_level;
	sj->q.peer_proto = proto;
	strlcpy(sj->q.peer_uuid, l->peer_uuid, sizeof(sj->q.peer_uuid));
	hl_ref(l);
	if (db_submit(l->cd->db, qh_state_run, hl_state_done, sj) == -1) {
		hl_unref(l);
		free(sj);
		hl_fail(l, "unavailable", "database queue full");
	}
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

static void
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

static void
hl_acked_done(int rc, const char *err, void *arg)
{
	if (rc != DB_OK)
		log_debug("server link: saving an acknowledgement: %s", err);
	free(arg);
}

static void
hl_ack(struct hlink *l, const struct msg *m)
{
	uint64_t	 snap = msg_uint(m, "snap", 0), seq = msg_uint(m, "seq", 0);
	struct qh_acked	*q;
	uint64_t	 now;
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
	now = mono_ms();
	if (snap == 0 && l->tx_acked != l->acked_saved &&
	    now - l->acked_saved_ms >= HIER_ACK_SAVE_MS &&
	    (q = calloc(1, sizeof(*q))) != NULL) {
		q->link = l->id;
		q->acked = l->tx_acked;
		if (db_submit(l->cd->db, qh_acked_run, hl_acked_done,
		    q) == -1)
			free(q);
		else {
			l->acked_saved = l->tx_acked;
			l->acked_saved_ms = now;
		}
	}
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

static void
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

static void
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

/*
 * Hellos and registration.
 */

/* Checks the peer's hello; 0 and the agreed version, or -1 (failed). */
static int
hl_hello_check(struct hlink *l, const struct msg *m, int *proto)
{
	char		 uuid[QH_UUID_LEN + 8], name[MSG_MAX_NAME + 1];
	uint64_t	 lo, hi, pmin, pmax, p;
	size_t		 i;

	if (msg_str(m, "uuid", uuid, sizeof(uuid)) == -1 ||
	    strlen(uuid) != 36) {
		hl_fail(l, "bad_message", "hello: a server's hello needs its "
		    "'uuid'");
		return -1;
	}
	for (i = 0; uuid[i] != '\0'; i++)
		if (!((uuid[i] >= '0' && uuid[i] <= '9') ||
		    (uuid[i] >= 'a' && uuid[i] <= 'f') || uuid[i] == '-')) {
			hl_fail(l, "bad_message", "hello: 'uuid' is not a "
			    "server id");
			return -1;
		}
	if (strcmp(uuid, l->h->uuid) == 0) {
		hl_fail(l, "loop", "hello: the peer is this server itself");
		return -1;
	}
	if (msg_str(m, "name", name, sizeof(name)) == -1)
		name[0] = '\0';
	strlcpy(l->peer_uuid, uuid, sizeof(l->peer_uuid));
	strlcpy(l->peer_name, name, sizeof(l->peer_name));
	if ((p = msg_uint(m, "proto", 0)) != 0) {
		/* An answer: the version the acceptor chose. */
		if (p < PROTO_SERVER_MIN || p > PROTO_SERVER_MAX) {
			hl_fail(l, "unsupported_version", "the parent chose "
			    "server protocol %llu, this server speaks %d..%d",
			    (unsigned long long)p, PROTO_SERVER_MIN,
			    PROTO_SERVER_MAX);
			return -1;
		}
		*proto = (int)p;
		return 0;
	}
	pmin = msg_uint(m, "proto_min", 0);
	pmax = msg_uint(m, "proto_max", 0);
	lo = pmin > PROTO_SERVER_MIN ? pmin : PROTO_SERVER_MIN;
	hi = pmax < PROTO_SERVER_MAX ? pmax : PROTO_SERVER_MAX;
	if (pmin > pmax || lo > hi) {
		hl_fail(l, "unsupported_version", "the server '%s' speaks "
		    "server protocol %llu..%llu, this one %d..%d", name,
		    (unsigned long long)pmin, (unsigned long long)pmax,
		    PROTO_SERVER_MIN, PROTO_SERVER_MAX);
		return -1;
	}
	*proto = (int)hi;
	return 0;
}

/* The dialler (a child) gets its parent's hello. */
static void
hl_parent_hello(struct hlink *l, const struct msg *m)
{
	int	 proto;

	if (hl_hello_check(l, m, &proto) == -1)
		return;
	if (!l->dialer) {
		/* The parent dialled us (we are in a DMZ): answer. */
		hl_send_hello(l, l->rx_seq, proto);
		if (!hl_have_cert(l->h)) {
			hl_send_register(l);
			return;
		}
	}
	hl_state_submit(l, msg_uint(m, "rx", 0), (int)msg_uint(m, "level", 0),
	    proto);
}

/* A child we dialled answers our hello. */
static void
hl_dialed_child_hello(struct hlink *l, const struct msg *m)
{
	int	 proto;

	if (hl_hello_check(l, m, &proto) == -1)
		return;
	if (!l->registered) {
		l->state = HL_REGISTER;	/* its register follows */
		return;
	}
	hl_state_submit(l, msg_uint(m, "rx", 0), 0, proto);
}

struct hl_lookup_job {
	struct qh_lookup q;		/* first */
	struct hlink	*l;
	uint32_t	 gen;
	uint64_t	 peer_rx;
	int		 proto;
};

static void
hl_lookup_done(int rc, const char *err, void *arg)
{
	struct hl_lookup_job *lj = arg;
	struct hlink	*l, *o;

	if ((l = hl_job_link(lj->l, lj->gen)) == NULL) {
		free(lj);
		return;
	}
	if (rc != DB_OK) {
		log_warnx("server link %s: look-up: %s", hl_who(l), err);
		hl_fail(l, "unavailable", "the server cannot take the link "
		    "now; try again later");
		free(lj);
		return;
	}
	if (!lj->q.found) {
		hl_fail(l, "unknown_server", "no child server has this "
		    "certificate (was it removed?)");
		free(lj);
		return;
	}
	l->id = lj->q.link.id;
	strlcpy(l->name, lj->q.link.name, sizeof(l->name));
	/* A reconnection replaces the connection it finds still open. */
	TAILQ_FOREACH(o, &l->h->links, entry)
		if (o != l && o->id == l->id && !o->parent && o->conn != NULL) {
			log_info("server link %s: a new connection replaces "
			    "the old one", hl_who(l));
			hl_close(o, "replaced by a new connection");
		}
	hl_state_submit(l, lj->peer_rx, 0, lj->proto);
	free(lj);
}

/* The acceptor gets a child's hello (handed over by the agent port). */
static void
hl_child_hello(struct hlink *l, const struct msg *m)
{
	struct hl_lookup_job *lj;
	X509		*cert;
	int		 proto;

	if (hl_hello_check(l, m, &proto) == -1)
		return;
	if ((cert = conn_peer_cert(l->conn)) == NULL) {
		/* No certificate: it must register. */
		l->state = HL_REGISTER;
		return;
	}
	if ((lj = calloc(1, sizeof(*lj))) == NULL) {
		hl_close(l, "out of memory");
		return;
	}
	if (pki_fingerprint(cert, lj->q.fingerprint,
	    sizeof(lj->q.fingerprint)) == -1) {
		free(lj);
		hl_fail(l, "bad_certificate", "cannot read the certificate");
		return;
	}
	lj->l = l;
	lj->gen = l->gen;
	lj->peer_rx = msg_uint(m, "rx", 0);
	lj->proto = proto;
	hl_ref(l);
	if (db_submit(l->cd->db, qh_lookup_run, hl_lookup_done, lj) ==
	    -1) {
		hl_unref(l);
		free(lj);
		hl_fail(l, "unavailable", "database queue full");
	}
}

struct hl_register_job {
	struct qh_register q;		/* first */
	struct hlink	*l;
	uint32_t	 gen;
};

static void
hl_register_done(int rc, const char *err, void *arg)
{
	struct hl_register_job *rj = arg;
	struct hlink	*l;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	if ((l = hl_job_link(rj->l, rj->gen)) == NULL) {
		qh_register_free(&rj->q);
		return;
	}
	if (rc != DB_OK) {
		log_warnx("server link %s: registration: %s", hl_who(l), err);
		hl_fail(l, "unavailable", "the server cannot register now; "
		    "try again later");
	} else if (rj->q.why[0] != '\0') {
		hl_fail(l, "bad_token", "%s", rj->q.why);
	} else {
		log_info("server link %s: child '%s' (%s) registered",
		    conn_peer_addr(l->conn), rj->q.name, rj->q.uuid);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		mp_begin(&pk, MSG_REGISTERED, 3);
		mp_kv_str(&pk, "name", rj->q.name);
		mp_kv_str(&pk, "cert", rj->q.cert);
		hl_send(l, &sb);
		if (l->dialer)
			l->attempt = 0;
		hl_close(l, "registered");
	}
	qh_register_free(&rj->q);
}

static void
hl_register(struct hlink *l, const struct msg *m)
{
	struct hl_register_job *rj;
	char		 token[MSG_MAX_TOKEN + 1];
	size_t		 len;
	const char	*p;

	if ((rj = calloc(1, sizeof(*rj))) == NULL) {
		hl_close(l, "out of memory");
		return;
	}
	if (msg_str(m, "token", token, sizeof(token)) == -1 ||
	    msg_str(m, "uuid", rj->q.uuid, sizeof(rj->q.uuid)) == -1 ||
	    strcmp(rj->q.uuid, l->peer_uuid) != 0 ||
	    (p = msg_strp(m, "csr", &len)) == NULL ||
	    (rj->q.csr = strndup(p, len)) == NULL) {
		qh_register_free(&rj->q);
		hl_fail(l, "bad_message", "register: token, csr and the "
		    "hello's uuid are needed");
		return;
	}
	if ((p = msg_strp(m, "ca", &len)) != NULL)
		rj->q.ca = strndup(p, len);
	sha256_hex(token, strlen(token), rj->q.token_hash);
	explicit_bzero(token, sizeof(token));
	rj->q.pki = &l->cd->pki;
	if (l->dialer)
		rj->q.expect_link = l->id;
	rj->l = l;
	rj->gen = l->gen;
	hl_ref(l);
	if (db_submit(l->cd->db, qh_register_run, hl_register_done, rj) ==
	    -1) {
		hl_unref(l);
		qh_register_free(&rj->q);
		hl_fail(l, "unavailable", "database queue full");
	}
}

/*
 * The connection.
 */

static void
hl_unexpected(struct hlink *l, const struct msg *m)
{
	hl_fail(l, "unexpected_message", "'%s' is not expected now",
	    msg_type_name(m->type));
}

static void
hl_on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct hlink	*l = arg;
	struct msg	 m;
	char		 reason[256], code[65], text[512];

	if (l->state == HL_CLOSING || l->conn == NULL)
		return;
	if (msg_decode(body, len, &m, reason, sizeof(reason)) == -1) {
		hl_fail(l, "bad_message", "%s", reason);
		return;
	}
	hl_ref(l);
	if (m.type == MSG_ERROR) {
		if (msg_str(&m, "code", code, sizeof(code)) == -1)
			code[0] = '\0';
		if (msg_str(&m, "message", text, sizeof(text)) == -1)
			text[0] = '\0';
		log_warnx("server link %s: the peer says %s: %s", hl_who(l),
		    code, text);
		snprintf(l->error, sizeof(l->error), "%s: %.180s", code, text);
		hl_close(l, "error from the peer");
		goto out;
	}
	switch (l->state) {
	case HL_HELLO:
		if (m.type == MSG_HELLO && l->parent)
			hl_parent_hello(l, &m);
		else if (m.type == MSG_HELLO && l->dialer)
			hl_dialed_child_hello(l, &m);
		else
			hl_unexpected(l, &m);
		break;
	case HL_REGISTER:
		if (l->parent && m.type == MSG_REGISTERED)
			hl_registered(l, &m);
		else if (l->parent && m.type == MSG_HELLO)
			;	/* the parent's answer to the hello */
		else if (!l->parent && m.type == MSG_REGISTER)
			hl_register(l, &m);
		else
			hl_unexpected(l, &m);
		break;
	case HL_UP:
		switch (m.type) {
		case MSG_HBATCH:
			hl_batch(l, &m);
			break;
		case MSG_HSNAP:
			hl_snap(l, &m);
			break;
		case MSG_HACK:
			hl_ack(l, &m);
			break;
		case MSG_HEARTBEAT:
			break;
		default:
			hl_unexpected(l, &m);
			break;
		}
		break;
	default:
		hl_unexpected(l, &m);
		break;
	}
 out:
	msg_free(&m);
	hl_unref(l);
}

static void
hl_on_close(struct conn *c, const char *why, void *arg)
{
	struct hlink	*l = arg;
	struct qh_state	*q;
	struct hl_rx	*rx;

	log_info("server link %s: closed: %s", hl_who(l), why ? why : "");
	if (l->error[0] == '\0' && why != NULL &&
	    strncmp(why, "sent error ", 11) != 0)
		snprintf(l->error, sizeof(l->error), "%s", why);
	l->conn = NULL;
	l->state = HL_IDLE;
	l->gen++;
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
	if (l->ev_beat != NULL)
		event_del(l->ev_beat);
	if (l->id != 0 && !l->cd->stopping &&
	    (q = calloc(1, sizeof(*q))) != NULL) {
		q->link = l->id;
		strlcpy(q->error, l->error, sizeof(q->error));
		if (db_submit(l->cd->db, qh_state_run, hl_acked_done,
		    q) == -1)
			free(q);
	}
	if (l->dialer) {
		if (!l->cd->stopping && !l->gone)
			hl_backoff(l, why != NULL &&
			    strncmp(why, "registered", 10) == 0);
		hl_unref(l);	/* the connection's */
	} else {
		/* An accepted link lives as long as its connection. */
		hl_free_if_done(l);
		hl_unref(l);	/* the connection's */
	}
}

/* A server said hello on the agent port: the link takes the connection. */
/* In accept mode: is this our parent dialling in? */
static int
hl_is_parent(struct hier *h, struct conn *c)
{
	X509	*cert;
	char	 cn[128];

	if (!h->accept_mode || h->parent_ca == NULL ||
	    (cert = conn_peer_cert(c)) == NULL)
		return 0;
	return X509_check_issued(h->parent_ca, cert) == X509_V_OK &&
	    pki_cert_cn(cert, cn, sizeof(cn)) == 0 &&
	    strncmp(cn, HIER_PARENT_CN, strlen(HIER_PARENT_CN)) == 0;
}

int
hl_accept(struct hier *h, struct conn *c, const struct msg *hello)
{
	struct hlink	*l;

	if (hl_is_parent(h, c)) {
		if (h->parent != NULL)
			hl_free_if_done(h->parent);	/* a new connection */
		if ((l = hl_new(h, 1, 0, "parent")) == NULL)
			return -1;
		l->id = h->parent_id;
		l->rx_seq = h->parent_rx;
		h->parent = l;
		l->conn = c;
		l->gen++;
		l->state = HL_HELLO;
		hl_ref(l);		/* the connection's */
		conn_set_cb(c, &hl_cb, l);
		conn_set_highwater(c, HIER_HIGHWATER);
		hl_parent_hello(l, hello);
		return 0;
	}
	if ((l = hl_new(h, 0, 0, "")) == NULL)
		return -1;
	l->conn = c;
	l->gen++;
	l->state = HL_HELLO;
	hl_ref(l);		/* the connection's */
	conn_set_cb(c, &hl_cb, l);
	conn_set_highwater(c, HIER_HIGHWATER);
	hl_child_hello(l, hello);
	return 0;
}
