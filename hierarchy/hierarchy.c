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
 * The server tree (hierarchy/hierarchy.h): this server's identity, the link
 * to its parent, the links from its children, and the periodic work —
 * status for the parent, compaction of the outbox.  A thread LISTENs for
 * the outbox's notifications so that changes are pushed as they commit.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "canopy_limits.h"
#include "conn.h"
#include "log.h"
#include "pki.h"
#include "util.h"

#include "db/db.h"
#include "db/q_hier.h"
#include "srv/canopyd.h"

#include "hier_int.h"
#include "hierarchy.h"

int
hier_client_ctx_reload(struct hier *h)
{
	const struct conf *c = h->cd->conf;
	char		 cert[1100], key[1100], err[256];
	struct stat	 st;
	SSL_CTX		*ctx;
	int		 have;

	snprintf(cert, sizeof(cert), "%s/parent.pem", c->state_dir);
	snprintf(key, sizeof(key), "%s/parent.key", c->state_dir);
	have = stat(cert, &st) == 0 && stat(key, &st) == 0;
	if ((ctx = tls_client_ctx(c->parent_ca, have ? cert : NULL,
	    have ? key : NULL, err, sizeof(err))) == NULL) {
		log_warnx("server tree: parent TLS: %s", err);
		return -1;
	}
	if (h->client_ctx != NULL)
		SSL_CTX_free(h->client_ctx);
	h->client_ctx = ctx;
	return 0;
}

/* The parent's address; a name is resolved once, at start. */
static int
hier_resolve(struct hier *h, char *err, size_t errlen)
{
	const struct conf *c = h->cd->conf;
	struct addrinfo	 hints, *res;
	char		 port[8];
	int		 rv;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", c->parent_port);
	if ((rv = getaddrinfo(c->parent_host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: parent %s: %s", c->path,
		    c->parent_host, gai_strerror(rv));
		return -1;
	}
	memcpy(&h->parent_ss, res->ai_addr, res->ai_addrlen);
	h->parent_sslen = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(h->parent_host, sizeof(h->parent_host), "%s:%u",
	    c->parent_host, c->parent_port);
	return 0;
}

void
hier_pump_all(struct hier *h)
{
	struct hlink	*l, *next;

	for (l = TAILQ_FIRST(&h->links); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		hl_pump(l);
	}
}

static void
hier_push_cb(evutil_socket_t fd, short ev, void *arg)
{
	hier_pump_all(arg);
}

/* A notification: read a few milliseconds later, so that one read takes
 * what several transactions committed. */
static void
hier_notify_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct hier	*h = arg;
	struct timeval	 tv = { 0, HIER_PUSH_DELAY_MS * 1000 };

	if (!evtimer_pending(h->ev_push, NULL))
		evtimer_add(h->ev_push, &tv);
}

static void *
hier_listen_main(void *arg)
{
	struct hier	*h = arg;
	PGconn		*pg = NULL;
	PGresult	*res;
	PGnotify	*n;
	struct pollfd	 pfd;
	int		 got;

	while (!h->listener_stop) {
		if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
			if (pg != NULL)
				PQfinish(pg);
			pg = PQconnectdb(h->conninfo);
			if (PQstatus(pg) != CONNECTION_OK) {
				PQfinish(pg);
				pg = NULL;
				poll(NULL, 0, 1000);
				continue;
			}
			res = PQexec(pg, "LISTEN hier_changes");
			PQclear(res);
			/* Anything may have committed while we were away. */
			event_active(h->ev_notify, EV_READ, 0);
		}
		pfd.fd = PQsocket(pg);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		if (PQconsumeInput(pg) != 1) {
			PQfinish(pg);
			pg = NULL;
			continue;
		}
		got = 0;
		while ((n = PQnotifies(pg)) != NULL) {
			got = 1;
			PQfreemem(n);
		}
		if (got)
			event_active(h->ev_notify, EV_READ, 0);
	}
	if (pg != NULL)
		PQfinish(pg);
	return NULL;
}

static void	hier_init_done(int, const char *, void *);

/* The children this server dials (child-dial: they sit in a DMZ). */
static void
hier_dial_children(struct hier *h)
{
	const struct conf *c = h->cd->conf;
	struct addrinfo	 hints, *res;
	struct hlink	*l;
	char		 port[8];
	int		 i, rv;

	for (i = 0; i < c->nchild_dial; i++) {
		if ((l = hl_new(h, 0, 1, c->child_dial[i].name)) == NULL)
			continue;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof(port), "%u", c->child_dial[i].port);
		snprintf(l->dial_host, sizeof(l->dial_host), "%s:%u",
		    c->child_dial[i].host, c->child_dial[i].port);
		if ((rv = getaddrinfo(c->child_dial[i].host, port, &hints,
		    &res)) != 0) {
			log_warnx("server tree: child-dial %s: %s: %s",
			    l->name, l->dial_host, gai_strerror(rv));
			continue;
		}
		memcpy(&l->dial_ss, res->ai_addr, res->ai_addrlen);
		l->dial_sslen = res->ai_addrlen;
		freeaddrinfo(res);
		hl_dial(l);
	}
}

/* The certificate this server presents to the children it dials. */
static int
hier_dmz_cert(struct hier *h, char *err, size_t errlen)
{
	const char	*sd = h->cd->conf->state_dir;
	struct stat	 st;
	char		*key = NULL, *csr = NULL, *cert = NULL, e[256];
	char		 cn[300];
	int		 rv = -1;

	snprintf(h->dmz_cert, sizeof(h->dmz_cert), "%s/dmz-client.pem", sd);
	snprintf(h->dmz_key, sizeof(h->dmz_key), "%s/dmz-client.key", sd);
	if (stat(h->dmz_cert, &st) == 0 && stat(h->dmz_key, &st) == 0)
		return 0;
	snprintf(cn, sizeof(cn), "%s%s", HIER_PARENT_CN, h->name);
	if (pki_make_csr(cn, &key, &csr) == -1 ||
	    (cert = pki_sign_csr(&h->cd->pki, csr, strlen(csr), cn,
	    HIER_CERT_DAYS, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "server tree: cannot make the client "
		    "certificate for child-dial");
		goto done;
	}
	if (file_write_atomic(h->dmz_key, key, strlen(key), 0600) == -1 ||
	    file_write_atomic(h->dmz_cert, cert, strlen(cert), 0600) == -1) {
		snprintf(err, errlen, "server tree: cannot write %s",
		    h->dmz_cert);
		goto done;
	}
	rv = 0;
 done:
	if (key != NULL)
		explicit_bzero(key, strlen(key));
	free(key);
	free(csr);
	free(cert);
	return rv;
}

static void
hier_init(struct hier *h)
{
	const struct conf *c = h->cd->conf;
	struct qh_init	*q;

	if (h->initing || (q = calloc(1, sizeof(*q))) == NULL)
		return;
	strlcpy(q->name, h->name, sizeof(q->name));
	strlcpy(q->up_min_severity, c->up_min_severity,
	    sizeof(q->up_min_severity));
	q->has_parent = c->parent_host[0] != '\0' || c->parent_accept;
	strlcpy(q->parent_name, h->parent_host, sizeof(q->parent_name));
	q->arg = h->cd;
	h->initing = 1;
	if (db_submit(h->cd->db, qh_init_run, hier_init_done, q) == -1) {
		h->initing = 0;
		free(q);
	}
}

static void
hier_tick_done(int rc, const char *err, void *arg)
{
	struct qh_tick	*q = arg;
	struct canopyd	*cd = q->arg;
	struct hier	*h = cd->hier;

	if (rc != DB_OK)
		log_debug("server tree: tick: %s", err);
	else if (q->compacted > 0)
		log_debug("server tree: %d changes compacted", q->compacted);
	free(q);
	if (h != NULL)
		h->ticking = 0;
}

/* Acknowledgements not yet written (the last of a burst): compaction
 * goes by what is written. */
static void
hier_save_acks(struct hier *h)
{
	struct hlink	*l;
	struct qh_acked	*q;

	TAILQ_FOREACH(l, &h->links, entry) {
		if (l->id == 0 || l->tx_acked == l->acked_saved ||
		    (q = calloc(1, sizeof(*q))) == NULL)
			continue;
		q->link = l->id;
		q->acked = l->tx_acked;
		if (db_submit(h->cd->db, qh_acked_run, hl_job_free,
		    q) == -1) {
			free(q);
			continue;
		}
		l->acked_saved = l->tx_acked;
	}
}

static void
hier_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct hier	*h = arg;
	struct qh_tick	*q;

	if (h->cd->stopping)
		return;
	if (!h->ready) {
		hier_init(h);
		return;
	}
	hier_save_acks(h);
	if (h->ticking)
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return;
	q->max_age_s = HIER_LOG_MAX_AGE_S;
	q->limit = HIER_COMPACT_MAX;
	q->arg = h->cd;
	h->ticking = 1;
	if (db_submit(h->cd->db, qh_tick_run, hier_tick_done, q) == -1) {
		h->ticking = 0;
		free(q);
	}
}

static void
hier_poll_cb(evutil_socket_t fd, short ev, void *arg)
{
	hier_pump_all(arg);
}

static void
hier_init_done(int rc, const char *err, void *arg)
{
	struct qh_init	*q = arg;
	struct canopyd	*cd = q->arg;
	struct hier	*h = cd->hier;
	struct hlink	*l;

	if (h == NULL || cd->stopping) {
		free(q);
		return;
	}
	h->initing = 0;
	if (rc != DB_OK) {
		/* The database is not there yet: the tick tries again. */
		log_debug("server tree: start: %s", err);
		free(q);
		return;
	}
	strlcpy(h->uuid, q->uuid, sizeof(h->uuid));
	h->level = q->level;
	h->root_group = q->root_group;
	h->pool_group = q->pool_group;
	h->ready = 1;
	log_info("server tree: this server is %s (%s), level %d", h->name,
	    h->uuid, h->level);
	h->parent_id = q->parent_link;
	h->parent_rx = q->parent_rx;
	if (q->parent_link != 0 && !h->accept_mode &&
	    (l = hl_new(h, 1, 1, h->parent_host)) != NULL) {
		l->id = q->parent_link;
		l->rx_seq = q->parent_rx;
		h->parent = l;
		hl_dial(l);
	}
	free(q);
	hier_dial_children(h);
}

int
hier_start(struct canopyd *cd, char *err, size_t errlen)
{
	const struct conf *c = cd->conf;
	struct hier	*h;
	struct timeval	 tick = { HIER_TICK_MS / 1000,
			    (HIER_TICK_MS % 1000) * 1000 };
	struct timeval	 poll_tv = { HIER_POLL_MS / 1000,
			    (HIER_POLL_MS % 1000) * 1000 };

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "server tree: out of memory");
		return -1;
	}
	h->cd = cd;
	TAILQ_INIT(&h->links);
	strlcpy(h->name, c->server_name, sizeof(h->name));
	if (c->parent_accept && c->parent_host[0] != '\0') {
		snprintf(err, errlen, "%s: 'parent accept' and 'parent "
		    "HOST:PORT' exclude each other", c->path);
		goto fail;
	}
	if (c->parent_accept) {
		FILE	*fp;

		h->accept_mode = 1;
		if (c->parent_ca[0] == '\0') {
			snprintf(err, errlen, "%s: 'parent accept' needs "
			    "'parent-ca' (the parent's CA certificate)",
			    c->path);
			goto fail;
		}
		if ((fp = fopen(c->parent_ca, "r")) == NULL ||
		    (h->parent_ca = PEM_read_X509(fp, NULL, NULL,
		    NULL)) == NULL) {
			if (fp != NULL)
				fclose(fp);
			snprintf(err, errlen, "%s: parent-ca %s: cannot read a "
			    "certificate", c->path, c->parent_ca);
			goto fail;
		}
		fclose(fp);
		strlcpy(h->parent_host, "(the parent dials in)",
		    sizeof(h->parent_host));
	}
	if (c->nchild_dial > 0 && hier_dmz_cert(h, err, errlen) == -1)
		goto fail;
	if (c->parent_host[0] != '\0') {
		if (c->parent_ca[0] == '\0') {
			snprintf(err, errlen, "%s: 'parent' needs 'parent-ca' "
			    "(the parent's CA certificate)", c->path);
			goto fail;
		}
		if (hier_resolve(h, err, errlen) == -1)
			goto fail;
		if (hier_client_ctx_reload(h) == -1) {
			snprintf(err, errlen, "%s: parent-ca %s: cannot load "
			    "it", c->path, c->parent_ca);
			goto fail;
		}
	}
	if ((h->conninfo = strdup(c->database ? c->database : "")) == NULL)
		goto oom;
	if ((h->ev_tick = event_new(cd->base, -1, EV_PERSIST, hier_tick_cb,
	    h)) == NULL || event_add(h->ev_tick, &tick) == -1 ||
	    (h->ev_poll = event_new(cd->base, -1, EV_PERSIST, hier_poll_cb,
	    h)) == NULL || event_add(h->ev_poll, &poll_tv) == -1 ||
	    (h->ev_notify = event_new(cd->base, -1, 0, hier_notify_cb,
	    h)) == NULL ||
	    (h->ev_push = evtimer_new(cd->base, hier_push_cb, h)) == NULL)
		goto oom;
	if (pthread_create(&h->listener, NULL, hier_listen_main, h) != 0) {
		snprintf(err, errlen, "server tree: cannot start a thread");
		goto fail;
	}
	h->listener_up = 1;
	cd->hier = h;
	hier_init(h);
	return 0;
 oom:
	snprintf(err, errlen, "server tree: out of memory");
 fail:
	cd->hier = h;
	hier_stop(cd);
	return -1;
}

void
hier_stop(struct canopyd *cd)
{
	struct hier	*h = cd->hier;
	struct hlink	*l;

	if (h == NULL)
		return;
	cd->hier = NULL;
	if (h->listener_up) {
		h->listener_stop = 1;
		pthread_join(h->listener, NULL);
	}
	/* Out of the list (closing its connection); freed by the last
	 * reference, jobs in flight included. */
	while ((l = TAILQ_FIRST(&h->links)) != NULL)
		hl_free_if_done(l);
	if (h->ev_tick != NULL)
		event_free(h->ev_tick);
	if (h->ev_poll != NULL)
		event_free(h->ev_poll);
	if (h->ev_notify != NULL)
		event_free(h->ev_notify);
	if (h->ev_push != NULL)
		event_free(h->ev_push);
	if (h->client_ctx != NULL)
		SSL_CTX_free(h->client_ctx);
	X509_free(h->parent_ca);
	free(h->conninfo);
	/* Jobs still in flight hold their links (gone now, they no longer
	 * look at h) or find cd->hier NULL. */
	free(h);
}

/* A connection refused before any link owns it: nobody to call back. */
static const struct conn_cb hier_refused_cb = { NULL, NULL, NULL };

void
hier_accept(struct canopyd *cd, struct conn *c, const struct msg *hello)
{
	if (cd->hier == NULL || !cd->hier->ready ||
	    hl_accept(cd->hier, c, hello) == -1) {
		conn_set_cb(c, &hier_refused_cb, NULL);
		conn_fail(c, "unavailable", "this server is starting or "
		    "stopping; try again later");
	}
}

void
hier_link_drop(struct canopyd *cd, const char *name)
{
	struct hlink	*l, *next;

	if (cd->hier == NULL)
		return;
	for (l = TAILQ_FIRST(&cd->hier->links); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (!l->parent && strcmp(l->name, name) == 0 &&
		    l->conn != NULL) {
			log_info("server link %s: removed by an administrator",
			    name);
			conn_fail(l->conn, "removed", "this server was removed "
			    "from its parent's tree");
		}
	}
}
