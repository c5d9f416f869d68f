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
 * The port-13000 listener and the registry of connected agents.  Each
 * accepted socket becomes a TLS bufferevent, a framed connection
 * (common/conn.c) and an agent session (srv/agent_session.c).
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "canopyd.h"
#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "srv/agents_int.h"
#include "srv/modules.h"
#include "db/q_agents.h"
#include "util.h"

#define AGENTS_BUCKETS_MIN	1024

static void	agents_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	agents_accept_error(struct evconnlistener *, void *);
static void	agents_resume(evutil_socket_t, short, void *);
static void	agents_listen_update(struct agents *);

/*
 * Registry: device id -> session, a chained hash table that doubles as it
 * fills (ids are random UUIDs, so FNV-1a spreads them well).
 */
static size_t
agents_hash(const char *id)
{
	uint64_t	 h = 14695981039346656037ULL;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)tolower((unsigned char)*id);
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static void
agents_grow(struct agents *ag)
{
	struct agent_bucket	*nb;
	struct agent_session	*s;
	size_t			 n = ag->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < ag->nbuckets; i++) {
		while ((s = LIST_FIRST(&ag->buckets[i])) != NULL) {
			LIST_REMOVE(s, hlink);
			LIST_INSERT_HEAD(&nb[agents_hash(s->device_id) &
			    (n - 1)], s, hlink);
		}
	}
	free(ag->buckets);
	ag->buckets = nb;
	ag->nbuckets = n;
}

void
agents_register(struct agents *ag, struct agent_session *s)
{
	if (s->in_registry)
		return;
	if (ag->nsessions >= ag->nbuckets * 2)
		agents_grow(ag);
	LIST_INSERT_HEAD(&ag->buckets[agents_hash(s->device_id) &
	    (ag->nbuckets - 1)], s, hlink);
	s->in_registry = 1;
	ag->nsessions++;
}

void
agents_unregister(struct agents *ag, struct agent_session *s)
{
	if (!s->in_registry)
		return;
	LIST_REMOVE(s, hlink);
	s->in_registry = 0;
	ag->nsessions--;
}

struct agent_session *
agents_lookup(struct agents *ag, const char *device_id)
{
	struct agent_session	*s;

	LIST_FOREACH(s, &ag->buckets[agents_hash(device_id) &
	    (ag->nbuckets - 1)], hlink)
		if (strcasecmp(s->device_id, device_id) == 0)
			return s;
	return NULL;
}

/*
 * Listening.
 */

static int
agents_listen(struct agents *ag, const struct conf_listen *l, char *err,
    size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	struct evconnlistener *lev;
	char		 port[8];
	unsigned	 flags;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", l->port);
	if ((e = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints,
	    &res)) != 0) {
		snprintf(err, errlen, "listen agents %s:%u: %s", l->host,
		    l->port, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ag->nlev >= CONF_MAX_LISTEN) {
			snprintf(err, errlen, "listen agents: more than %d "
			    "addresses", CONF_MAX_LISTEN);
			freeaddrinfo(res);
			return -1;
		}
		flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		    LEV_OPT_REUSEABLE;
		/* "::" and "0.0.0.0" may both be listed. */
		if (ai->ai_family == AF_INET6)
			flags |= LEV_OPT_BIND_IPV6ONLY;
		lev = evconnlistener_new_bind(ag->cd->base, agents_accept, ag,
		    flags, AGENTS_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
		if (lev == NULL) {
			snprintf(err, errlen, "listen agents %s:%u: %s",
			    l->host, l->port, strerror(errno));
			freeaddrinfo(res);
			return -1;
		}
		evconnlistener_set_error_cb(lev, agents_accept_error);
		ag->lev[ag->nlev++] = lev;
		log_info("agents: listening on %s:%u", l->host, l->port);
	}
	freeaddrinfo(res);
	return 0;
}

/*
 * Accepts while below max-agents and not out of descriptors; the limit is
 * applied by disabling the listeners, so the kernel's backlog holds the
 * rest instead of our accepting and closing at once.
 */
static void
agents_listen_update(struct agents *ag)
{
	int	 want, i;

	want = !ag->fd_paused && ag->nconns < ag->max_agents;
	/* Once a minute at most: a server at its limit stays there. */
	if (!want && !ag->limit_paused && !ag->fd_paused &&
	    ag->nconns >= ag->max_agents &&
	    (ag->limit_logged == 0 ||
	    (int64_t)mono_ms() - ag->limit_logged >= 60000)) {
		log_warnx("agents: %zu connections (max-agents); not "
		    "accepting more for now", ag->nconns);
		ag->limit_logged = (int64_t)mono_ms();
	}
	ag->limit_paused = ag->nconns >= ag->max_agents;
	for (i = 0; i < ag->nlev; i++) {
		if (want)
			evconnlistener_enable(ag->lev[i]);
		else
			evconnlistener_disable(ag->lev[i]);
	}
}

void
agents_conn_gone(struct agents *ag)
{
	int	 was = ag->limit_paused;

	ag->nconns--;
	if (was && ag->nconns < ag->max_agents)
		agents_listen_update(ag);
}

static void
agents_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct agents		*ag = arg;
	struct bufferevent	*bev;
	SSL			*ssl;

	if (ag->nconns >= ag->max_agents) {
		close(fd);
		agents_listen_update(ag);
		return;
	}
	if ((ssl = SSL_new(ag->ssl_ctx)) == NULL) {
		log_warnx("agents: SSL_new failed");
		close(fd);
		return;
	}
	/* Idle agents should not each hold TLS record buffers. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	bev = bufferevent_openssl_socket_new(ag->cd->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		log_warnx("agents: cannot create a TLS bufferevent");
		SSL_free(ssl);
		close(fd);
		return;
	}
	atomic_fetch_add(&ag->cd->metrics.agent_connections, 1);
	if (agent_session_new(ag, bev) == NULL)
		return;
	if (ag->nconns >= ag->max_agents)
		agents_listen_update(ag);
}

static void
agents_accept_error(struct evconnlistener *lev, void *arg)
{
	struct agents	*ag = arg;
	struct timeval	 tv;
	int		 e = EVUTIL_SOCKET_ERROR();

	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		/* Accepting again at once would spin on the same error. */
		if (!ag->fd_paused)
			log_warnx("agents: accept: %s; pausing for %d ms",
			    strerror(e), AGENTS_ACCEPT_PAUSE_MS);
		ag->fd_paused = 1;
		agents_listen_update(ag);
		tv.tv_sec = AGENTS_ACCEPT_PAUSE_MS / 1000;
		tv.tv_usec = (AGENTS_ACCEPT_PAUSE_MS % 1000) * 1000;
		evtimer_add(ag->resume_ev, &tv);
		return;
	}
	log_warnx("agents: accept: %s", strerror(e));
}

static void
agents_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct agents	*ag = arg;

	ag->fd_paused = 0;
	agents_listen_update(ag);
}

struct agents *
agents_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct agents	*ag;
	char		 e[256];
	int		 i;

	if ((ag = calloc(1, sizeof(*ag))) == NULL) {
		snprintf(err, errlen, "agents: %s", strerror(errno));
		return NULL;
	}
	ag->cd = cd;
	TAILQ_INIT(&ag->all);
	ag->max_frame = cd->conf->max_frame ? cd->conf->max_frame :
	    FRAME_MAX_DEFAULT;
	ag->max_agents = cd->conf->max_agents ? cd->conf->max_agents :
	    AGENTS_MAX_DEFAULT;
	ag->nbuckets = AGENTS_BUCKETS_MIN;
	if ((ag->buckets = calloc(ag->nbuckets, sizeof(*ag->buckets))) ==
	    NULL) {
		snprintf(err, errlen, "agents: %s", strerror(errno));
		goto fail;
	}
	if ((ag->ssl_ctx = tls_server_ctx(&cd->pki, 1, e, sizeof(e))) ==
	    NULL) {
		snprintf(err, errlen, "agents: TLS: %s", e);
		goto fail;
	}
	/*
	 * A server in a DMZ is dialled by its parent, which presents a
	 * certificate of its own CA: trust that CA too (the server tree
	 * checks that only the parent link may use it).
	 */
	if (cd->conf->parent_accept && cd->conf->parent_ca[0] != '\0' &&
	    X509_STORE_load_locations(SSL_CTX_get_cert_store(ag->ssl_ctx),
	    cd->conf->parent_ca, NULL) != 1) {
		snprintf(err, errlen, "agents: cannot load parent-ca %s",
		    cd->conf->parent_ca);
		goto fail;
	}
	/*
	 * Agents do not resume TLS sessions: no tickets, no server-side
	 * cache, so no session (holding the peer's certificate) outlives
	 * its connection or costs memory beside it.
	 */
	SSL_CTX_set_session_cache_mode(ag->ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ag->ssl_ctx, 0);
	if ((ag->resume_ev = evtimer_new(cd->base, agents_resume, ag)) ==
	    NULL) {
		snprintf(err, errlen, "agents: cannot create a timer");
		goto fail;
	}
	for (i = 0; i < cd->conf->nlisten; i++) {
		if (cd->conf->listen[i].kind != LISTEN_AGENTS)
			continue;
		if (agents_listen(ag, &cd->conf->listen[i], err, errlen) == -1)
			goto fail;
	}
	if (ag->nlev == 0)
		log_warnx("agents: no 'listen agents' address configured");
	return ag;
 fail:
	agents_stop(ag);
	return NULL;
}

void
agents_stop(struct agents *ag)
{
	struct agent_session	*s;
	int			 i;

	if (ag == NULL)
		return;
	for (i = 0; i < ag->nlev; i++)
		evconnlistener_free(ag->lev[i]);
	ag->nlev = 0;
	if (ag->resume_ev != NULL)
		event_free(ag->resume_ev);
	/*
	 * Detach every session first: their connections may close later,
	 * and jobs in flight complete later still; neither may reach us.
	 */
	while ((s = TAILQ_FIRST(&ag->all)) != NULL) {
		TAILQ_REMOVE(&ag->all, s, link);
		if (s->in_registry)
			agents_unregister(ag, s);
		s->ag = NULL;
		agent_session_close(s, "server stopping");
	}
	/*
	 * Connections are freed from their own events: let those run now,
	 * or nothing would free them once the loop is gone.
	 */
	if (ag->cd != NULL && ag->cd->base != NULL)
		event_base_loop(ag->cd->base, EVLOOP_NONBLOCK);
	free(ag->buckets);
	if (ag->ssl_ctx != NULL)
		SSL_CTX_free(ag->ssl_ctx);	/* connections hold references */
	free(ag);
}

void
agents_reconf(struct agents *ag, const struct conf *conf)
{
	if (ag == NULL)
		return;
	/* New connections get the new max-frame; open ones keep theirs. */
	if (conf->max_frame)
		ag->max_frame = conf->max_frame;
	if (conf->max_agents)
		ag->max_agents = conf->max_agents;
	agents_listen_update(ag);
}

size_t
agents_connected(struct agents *ag)
{
	return ag ? ag->nsessions : 0;
}

int
agents_push_sync(struct agents *ag, const char *device_id)
{
	struct agent_session	*s;

	if (ag == NULL || device_id == NULL || !qa_uuid_valid(device_id))
		return -1;
	if ((s = agents_lookup(ag, device_id)) == NULL)
		return -1;
	agent_session_sync_now(s);
	return 0;
}

int
agents_send(struct agents *ag, const char *device_id, msgpack_sbuffer *sb)
{
	struct agent_session	*s;

	if (ag == NULL || device_id == NULL ||
	    (s = agents_lookup(ag, device_id)) == NULL) {
		msgpack_sbuffer_destroy(sb);
		return -1;
	}
	return agent_session_send(s, sb);
}

void
agents_foreach(struct agents *ag, void (*fn)(const char *, int, void *),
    void *arg)
{
	struct agent_session	*s, *next;
	size_t			 i;

	if (ag == NULL)
		return;
	for (i = 0; i < ag->nbuckets; i++)
		for (s = LIST_FIRST(&ag->buckets[i]); s != NULL; s = next) {
			next = LIST_NEXT(s, hlink);
			fn(s->device_id, s->vs_id, arg);
		}
}
