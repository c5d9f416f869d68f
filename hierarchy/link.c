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
 * it, or it dials us in a DMZ) or from a child (it dialled us on the agent
 * port and said hello with the role 'server', or we dial it): connecting,
 * registration, the hellos, the connection's life.  What flows once the
 * hellos are done is in stream.c.
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

static const struct conn_cb hl_cb = {
	hl_on_ready, hl_on_frame, hl_on_close
};

const char *
hl_who(struct hlink *l)
{
	if (l->name[0] != '\0')
		return l->name;
	return l->conn != NULL ? conn_peer_addr(l->conn) : "?";
}

void
hl_ref(struct hlink *l)
{
	l->refs++;
}

void
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
	hl_stream_reset(l);
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
struct hlink *
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

void
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

void
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

	log_info("server link %s: closed: %s", hl_who(l), why ? why : "");
	if (l->error[0] == '\0' && why != NULL &&
	    strncmp(why, "sent error ", 11) != 0)
		snprintf(l->error, sizeof(l->error), "%s", why);
	l->conn = NULL;
	l->state = HL_IDLE;
	l->gen++;
	hl_stream_reset(l);
	if (l->ev_beat != NULL)
		event_del(l->ev_beat);
	if (l->id != 0 && !l->cd->stopping &&
	    (q = calloc(1, sizeof(*q))) != NULL) {
		q->link = l->id;
		strlcpy(q->error, l->error, sizeof(q->error));
		if (db_submit(l->cd->db, qh_state_run, hl_job_free,
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
