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
 * One agent's conversation with its server (docs/PROTOCOL.md), over a conn:
 * hello, then sync, heartbeat and events, each acknowledged by seq.  The
 * session never touches the socket or SSL beyond creating them; it is
 * driven by the caller's event loop, so canopy-sim runs thousands of them
 * in one process.  Data stays with its owner (hooks) until the server's ack.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <msgpack.h>
#include <openssl/ssl.h>

#include "agent.h"
#include "conn.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

enum sess_state { SS_IDLE, SS_CONNECTING, SS_HELLO, SS_UP, SS_DEAD };

struct session {
	struct session_cfg		 cfg;
	const struct session_hooks	*hooks;
	void				*arg;
	struct conn			*conn;
	enum sess_state			 state;
	int				 stopping;
	uint32_t			 attempt;	/* reconnects since up */
	uint64_t			 seq;
	uint16_t			 heartbeat_s;
	struct event			*ev_timer;	/* reconnect and retry */
	struct event			*ev_heartbeat;

	/* sync */
	uint64_t			 sync_seq;	/* in flight, 0: none */
	uint64_t			 sync_sent_us;
	uint64_t			 sync_hold_ms;	/* retry after */
	uint8_t				 sync_wanted;
	uint8_t				 sync_full;
	uint8_t				 sync_inv;	/* in flight carries it */
	uint8_t				 need_inv;
	char				 sync_hash[65];
	char				 acked_hash[65];

	/* events */
	uint64_t			 ev_seq;
	uint64_t			 ev_sent_us;
	uint64_t			 ev_hold_ms;

	/* heartbeat */
	uint64_t			 hb_seq;
	uint64_t			 hb_sent_us;

	char				*name;
	char				 device_id[MSG_MAX_NAME + 1];
};

static void	session_pump(struct session *);
static void	session_schedule(struct session *, uint32_t ms);

static uint64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int
agent_resolve(const char *hostport, struct sockaddr_storage *ss,
    socklen_t *sslen, char *host, size_t hostlen, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res;
	char		 h[256];
	const char	*port, *colon;
	size_t		 hl;
	int		 rv;

	if (hostport[0] == '[') {
		if ((colon = strstr(hostport, "]:")) == NULL)
			goto bad;
		hl = (size_t)(colon - hostport - 1);
		if (hl == 0 || hl >= sizeof(h))
			goto bad;
		memcpy(h, hostport + 1, hl);
		port = colon + 2;
	} else {
		if ((colon = strrchr(hostport, ':')) == NULL)
			goto bad;
		hl = (size_t)(colon - hostport);
		if (hl == 0 || hl >= sizeof(h))
			goto bad;
		memcpy(h, hostport, hl);
		port = colon + 1;
	}
	h[hl] = '\0';
	if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) < 1 || atoi(port) > 65535)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rv = getaddrinfo(h, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", h, gai_strerror(rv));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	if (host != NULL)
		strlcpy(host, h, hostlen);
	return 0;
bad:
	snprintf(err, errlen, "%s: expected HOST:PORT", hostport);
	return -2;
}

static int
is_ip_literal(const char *s)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;

	return inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1;
}

struct conn *
agent_connect(struct event_base *base, SSL_CTX *ctx, X509 *cert,
    EVP_PKEY *key, const struct sockaddr *sa, socklen_t salen,
    const char *sni, const struct conn_cb *cb, void *arg, SSL **sslp)
{
	struct bufferevent	*bev;
	struct conn		*c;
	SSL			*ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (cert != NULL && key != NULL && (SSL_use_certificate(ssl,
	    cert) != 1 || SSL_use_PrivateKey(ssl, key) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	if (sni != NULL && sni[0] != '\0' && !is_ip_literal(sni))
		SSL_set_tlsext_host_name(ssl, sni);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	if (bufferevent_socket_connect(bev, sa, (int)salen) == -1) {
		bufferevent_free(bev);
		return NULL;
	}
	if ((c = conn_new(bev, FRAME_MAX_DEFAULT, cb, arg)) == NULL)
		return NULL;
	if (sslp != NULL)
		*sslp = ssl;
	return c;
}

static void	sess_on_ready(struct conn *, void *);
static void	sess_on_frame(struct conn *, const uint8_t *, size_t, void *);
static void	sess_on_close(struct conn *, const char *, void *);

static const struct conn_cb sess_cb = {
	sess_on_ready, sess_on_frame, sess_on_close
};

static void
sess_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	if (s->state == SS_IDLE && !s->stopping)
		(void)session_start(s);
	else if (s->state == SS_UP)
		session_pump(s);
}

static int
sess_send(struct session *s, msgpack_sbuffer *sb)
{
	if (s->conn == NULL)
		return -1;
	return conn_send(s->conn, sb->data, sb->size);
}

static void
sess_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	struct timeval	 tv = { s->heartbeat_s, 0 };

	if (s->state != SS_UP)
		return;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HEARTBEAT, 2);
	s->hb_seq = ++s->seq;
	mp_kv_uint(&pk, "seq", s->hb_seq);
	s->hb_sent_us = now_us();
	(void)sess_send(s, &sb);
	msgpack_sbuffer_destroy(&sb);
	/* The send may have closed the connection. */
	if (s->state == SS_UP)
		evtimer_add(s->ev_heartbeat, &tv);
}

struct session *
session_new(const struct session_cfg *cfg, const struct session_hooks *hooks,
    void *arg)
{
	struct session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->cfg = *cfg;
	/* The name is the caller's; keep a copy for every hello. */
	if ((s->name = strdup(cfg->name != NULL ? cfg->name : "agent")) ==
	    NULL) {
		free(s);
		return NULL;
	}
	s->cfg.name = s->name;
	if (s->cfg.backoff_min_ms == 0)
		s->cfg.backoff_min_ms = AGENT_BACKOFF_MIN_MS;
	if (s->cfg.backoff_max_ms < s->cfg.backoff_min_ms)
		s->cfg.backoff_max_ms = AGENT_BACKOFF_MAX_MS;
	s->hooks = hooks;
	s->arg = arg;
	s->ev_timer = evtimer_new(cfg->base, sess_timer, s);
	s->ev_heartbeat = evtimer_new(cfg->base, sess_heartbeat, s);
	if (s->ev_timer == NULL || s->ev_heartbeat == NULL) {
		session_free(s);
		return NULL;
	}
	return s;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	s->stopping = 1;
	if (s->conn != NULL) {
		conn_set_arg(s->conn, NULL);
		conn_close(s->conn, "session freed", 0);
		s->conn = NULL;
	}
	if (s->ev_timer != NULL)
		event_free(s->ev_timer);
	if (s->ev_heartbeat != NULL)
		event_free(s->ev_heartbeat);
	free(s->name);
	free(s);
}

void
session_set_arg(struct session *s, void *arg)
{
	s->arg = arg;
}

int
session_is_up(const struct session *s)
{
	return s->state == SS_UP;
}

const char *
session_device_id(const struct session *s)
{
	return s->device_id;
}

/* Reconnects after full-jitter exponential backoff. */
static void
session_backoff(struct session *s)
{
	uint64_t	 cap;
	uint32_t	 ms, lo = s->cfg.backoff_min_ms;

	cap = (uint64_t)lo << (s->attempt < 16 ? s->attempt : 16);
	if (cap > s->cfg.backoff_max_ms)
		cap = s->cfg.backoff_max_ms;
	ms = lo + arc4random_uniform((uint32_t)(cap - lo) + 1);
	if (s->attempt < 31)
		s->attempt++;
	log_debug("reconnecting in %u ms", ms);
	session_schedule(s, ms);
}

static void
session_schedule(struct session *s, uint32_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->ev_timer, &tv);
}

int
session_start(struct session *s)
{
	if (s->state == SS_DEAD)
		return -1;
	if (s->conn != NULL)
		return 0;
	s->stopping = 0;
	s->state = SS_CONNECTING;
	s->conn = agent_connect(s->cfg.base, s->cfg.ctx, s->cfg.cert,
	    s->cfg.key, s->cfg.addr, s->cfg.addrlen, s->cfg.sni, &sess_cb, s,
	    NULL);
	if (s->conn == NULL) {
		s->state = SS_IDLE;
		if (s->hooks->down != NULL)
			s->hooks->down(s, s->arg, "cannot connect");
		if (s->cfg.reconnect)
			session_backoff(s);
		return -1;
	}
	conn_set_timeout(s->conn, CONN_HELLO_TIMEOUT_S);
	return 0;
}

void
session_stop(struct session *s)
{
	s->stopping = 1;
	evtimer_del(s->ev_timer);
	evtimer_del(s->ev_heartbeat);
	if (s->conn != NULL)
		conn_close(s->conn, "stopping", 1);
}

void
session_sync(struct session *s, int full)
{
	s->sync_wanted = 1;
	if (full)
		s->sync_full = 1;
	if (s->state == SS_UP)
		session_pump(s);
}

void
session_events_kick(struct session *s)
{
	if (s->state == SS_UP)
		session_pump(s);
}

static void
sess_on_ready(struct conn *c, void *arg)
{
	struct session	*s = arg;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	if (s == NULL)
		return;
	s->state = SS_HELLO;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HELLO, 6);
	mp_kv_str(&pk, "role", "agent");
	mp_kv_str(&pk, "name", s->name);
	mp_kv_uint(&pk, "proto_min", PROTO_VERSION_MIN);
	mp_kv_uint(&pk, "proto_max", PROTO_VERSION_MAX);
	mp_kv_str(&pk, "version", AGENT_VERSION);
	(void)sess_send(s, &sb);
	msgpack_sbuffer_destroy(&sb);
}

static void
send_sync(struct session *s)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	const uint8_t	*inv = NULL;
	const char	*hash = NULL;
	size_t		 len = 0;
	int		 full;

	if (s->hooks->inventory(s, s->arg, &inv, &len, &hash) == -1 ||
	    hash == NULL) {
		log_warnx("no inventory to sync");
		s->sync_wanted = 0;
		return;
	}
	full = s->sync_full || s->need_inv ||
	    strcmp(hash, s->acked_hash) != 0;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_SYNC, full ? 4 : 3);
	s->sync_seq = ++s->seq;
	mp_kv_uint(&pk, "seq", s->sync_seq);
	mp_kv_str(&pk, "hash", hash);
	if (full) {
		mp_key(&pk, "inventory");
		msgpack_sbuffer_write(&sb, (const char *)inv, len);
	}
	strlcpy(s->sync_hash, hash, sizeof(s->sync_hash));
	s->sync_inv = full;
	s->sync_wanted = s->sync_full = s->need_inv = 0;
	s->sync_sent_us = now_us();
	(void)sess_send(s, &sb);
	msgpack_sbuffer_destroy(&sb);
}

static void
send_events(struct session *s)
{
	msgpack_sbuffer	 items, sb;
	msgpack_packer	 pk;
	size_t		 n;

	msgpack_sbuffer_init(&items);
	n = s->hooks->events_take(s, s->arg, &items, MSG_MAX_EVENTS);
	if (n == 0) {
		msgpack_sbuffer_destroy(&items);
		return;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_EVENTS, 3);
	s->ev_seq = ++s->seq;
	mp_kv_uint(&pk, "seq", s->ev_seq);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, n);
	msgpack_sbuffer_write(&sb, items.data, items.size);
	msgpack_sbuffer_destroy(&items);
	s->ev_sent_us = now_us();
	log_debug("sending %zu event(s), seq %" PRIu64, n, s->ev_seq);
	(void)sess_send(s, &sb);
	msgpack_sbuffer_destroy(&sb);
}

/* Sends whatever is wanted and not held back by a retry. */
static void
session_pump(struct session *s)
{
	uint64_t	 now = mono_ms(), wait = 0;

	if (s->state != SS_UP)
		return;
	if (s->sync_wanted && s->sync_seq == 0) {
		if (now >= s->sync_hold_ms)
			send_sync(s);
		else
			wait = s->sync_hold_ms - now;
	}
	if (s->state == SS_UP && s->ev_seq == 0 &&
	    s->hooks->events_take != NULL) {
		if (now >= s->ev_hold_ms)
			send_events(s);
		else if (wait == 0 || s->ev_hold_ms - now < wait)
			wait = s->ev_hold_ms - now;
	}
	if (wait > 0 && s->state == SS_UP)
		session_schedule(s, (uint32_t)wait);
}

static void
handle_hello(struct session *s, struct msg *m)
{
	uint64_t	 proto = msg_uint(m, "proto", 0);
	uint64_t	 hb = msg_uint(m, "heartbeat_s", AGENT_HEARTBEAT_S);
	struct timeval	 tv;

	if (proto < PROTO_VERSION_MIN || proto > PROTO_VERSION_MAX) {
		conn_fail(s->conn, "unsupported_version", "server chose "
		    "version %" PRIu64 ", agent supports %d..%d", proto,
		    PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		return;
	}
	if (hb == 0 || hb > 86400)
		hb = AGENT_HEARTBEAT_S;
	s->heartbeat_s = (uint16_t)hb;
	if (msg_str(m, "device_id", s->device_id, sizeof(s->device_id)) == -1)
		s->device_id[0] = '\0';
	s->state = SS_UP;
	s->attempt = 0;
	/* The server answers every heartbeat, so silence means trouble. */
	conn_set_timeout(s->conn, 3 * s->heartbeat_s + CONN_HELLO_TIMEOUT_S);
	tv.tv_sec = s->heartbeat_s;
	tv.tv_usec = 0;
	evtimer_add(s->ev_heartbeat, &tv);
	log_debug("session up, device %s, heartbeat %us", s->device_id,
	    s->heartbeat_s);
	if (s->hooks->up != NULL)
		s->hooks->up(s, s->arg, s->device_id);
	s->sync_wanted = 1;
	session_pump(s);
}

static void
handle_ack(struct session *s, struct msg *m)
{
	uint64_t	 seq = msg_uint(m, "seq", 0), now = now_us();
	int		 need = msg_bool(m, "need_inventory", 0);

	if (seq != 0 && seq == s->sync_seq) {
		s->sync_seq = 0;
		if (s->sync_inv) {
			strlcpy(s->acked_hash, s->sync_hash,
			    sizeof(s->acked_hash));
			if (s->hooks->inventory_acked != NULL)
				s->hooks->inventory_acked(s, s->arg,
				    s->sync_hash);
		} else if (need) {
			s->need_inv = 1;
			s->sync_wanted = 1;
		}
		if (s->hooks->acked != NULL)
			s->hooks->acked(s, s->arg, SK_SYNC, s->sync_inv,
			    now - s->sync_sent_us);
	} else if (seq != 0 && seq == s->ev_seq) {
		s->ev_seq = 0;
		if (s->hooks->events_acked != NULL)
			s->hooks->events_acked(s, s->arg);
		if (s->hooks->acked != NULL)
			s->hooks->acked(s, s->arg, SK_EVENTS, 0,
			    now - s->ev_sent_us);
	} else if (seq != 0 && seq == s->hb_seq) {
		s->hb_seq = 0;
		if (s->hooks->acked != NULL)
			s->hooks->acked(s, s->arg, SK_HEARTBEAT, 0,
			    now - s->hb_sent_us);
	} else {
		if (seq != 0 && s->hooks->other_acked != NULL)
			s->hooks->other_acked(s, s->arg, seq, 1, 0);
		else
			log_debug("ack for unknown seq %" PRIu64, seq);
		return;
	}
	session_pump(s);
}

static void
handle_retry(struct session *s, struct msg *m)
{
	uint64_t	 seq = msg_uint(m, "seq", 0);
	uint64_t	 after = msg_uint(m, "after_ms", DB_RETRY_AFTER_MS);
	char		 text[256];

	if (after > AGENT_BACKOFF_MAX_MS)
		after = AGENT_BACKOFF_MAX_MS;
	if (msg_str(m, "message", text, sizeof(text)) == -1)
		text[0] = '\0';
	log_info("server asks to retry seq %" PRIu64 " in %" PRIu64 " ms%s%s",
	    seq, after, text[0] ? ": " : "", text);
	if (seq != 0 && seq == s->sync_seq) {
		s->sync_seq = 0;
		s->sync_wanted = 1;
		if (s->sync_inv)
			s->sync_full = 1;
		s->sync_hold_ms = mono_ms() + after;
		if (s->hooks->retried != NULL)
			s->hooks->retried(s, s->arg, SK_SYNC);
	} else if (seq != 0 && seq == s->ev_seq) {
		s->ev_seq = 0;
		if (s->hooks->events_unflight != NULL)
			s->hooks->events_unflight(s, s->arg);
		s->ev_hold_ms = mono_ms() + after;
		if (s->hooks->retried != NULL)
			s->hooks->retried(s, s->arg, SK_EVENTS);
	} else if (seq != 0 && seq == s->hb_seq) {
		/* The next heartbeat says the same. */
		s->hb_seq = 0;
		if (s->hooks->retried != NULL)
			s->hooks->retried(s, s->arg, SK_HEARTBEAT);
		return;
	} else {
		if (seq != 0 && s->hooks->other_acked != NULL)
			s->hooks->other_acked(s, s->arg, seq, 0, after);
		return;
	}
	session_pump(s);
}

static void
sess_on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct session	*s = arg;
	struct msg	 m;
	char		 reason[256], code[MSG_MAX_NAME + 1], text[1024];

	if (s == NULL)
		return;
	if (msg_decode(body, len, &m, reason, sizeof(reason)) == -1) {
		log_warnx("from server: %s", reason);
		conn_fail(c, "bad_message", "%s", reason);
		return;
	}
	if (s->state == SS_HELLO && m.type != MSG_HELLO &&
	    m.type != MSG_ERROR) {
		conn_fail(c, "unexpected", "expected hello, got %s",
		    msg_type_name(m.type));
		msg_free(&m);
		return;
	}
	switch (m.type) {
	case MSG_HELLO:
		if (s->state != SS_HELLO)
			conn_fail(c, "unexpected", "second hello");
		else
			handle_hello(s, &m);
		break;
	case MSG_ACK:
		handle_ack(s, &m);
		break;
	case MSG_RETRY:
		handle_retry(s, &m);
		break;
	case MSG_SYNC_NOW:
		log_info("server asks for the inventory");
		session_sync(s, 1);
		break;
	case MSG_ERROR:
		if (msg_str(&m, "code", code, sizeof(code)) == -1)
			strlcpy(code, "?", sizeof(code));
		if (msg_str(&m, "message", text, sizeof(text)) == -1)
			text[0] = '\0';
		log_warnx("server error %s: %s", code, text);
		if (strcmp(code, "unknown_device") == 0) {
			log_warnx("this device is unknown to the server (deleted?): "
			    "it must be enrolled again");
			s->state = SS_DEAD;
		}
		if (s->hooks->error != NULL)
			s->hooks->error(s, s->arg, code, text);
		break;
	default:
		if (s->hooks->message != NULL && s->state == SS_UP &&
		    (m.type == MSG_POLICY || m.type == MSG_TASK)) {
			s->hooks->message(s, s->arg, &m);
			break;
		}
		conn_fail(c, "unexpected", "agents do not accept %s",
		    msg_type_name(m.type));
		break;
	}
	msg_free(&m);
}

int
session_send(struct session *s, msgpack_sbuffer *sb)
{
	int	 rv = -1;

	if (s->state == SS_UP && s->conn != NULL &&
	    conn_send(s->conn, sb->data, sb->size) == 0)
		rv = 0;
	msgpack_sbuffer_destroy(sb);
	return rv;
}

uint64_t
session_next_seq(struct session *s)
{
	return ++s->seq;
}

static void
sess_on_close(struct conn *c, const char *why, void *arg)
{
	struct session	*s = arg;
	int		 dead;

	if (s == NULL)
		return;
	dead = s->state == SS_DEAD;
	s->conn = NULL;
	evtimer_del(s->ev_heartbeat);
	if (s->sync_seq != 0) {
		s->sync_seq = 0;
		s->sync_wanted = 1;
	}
	if (s->ev_seq != 0) {
		s->ev_seq = 0;
		if (s->hooks->events_unflight != NULL)
			s->hooks->events_unflight(s, s->arg);
	}
	s->hb_seq = 0;
	s->sync_hold_ms = s->ev_hold_ms = 0;
	log_debug("connection closed: %s", why);
	if (dead) {
		if (s->hooks->dead != NULL)
			s->hooks->dead(s, s->arg, "unknown_device");
		return;
	}
	s->state = SS_IDLE;
	if (s->hooks->down != NULL)
		s->hooks->down(s, s->arg, why);
	if (s->cfg.reconnect && !s->stopping)
		session_backoff(s);
}

void
session_set_acked_hash(struct session *s, const char *hash)
{
	strlcpy(s->acked_hash, hash != NULL ? hash : "",
	    sizeof(s->acked_hash));
}
