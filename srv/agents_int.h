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

#ifndef CANOPY_AGENTS_INT_H
#define CANOPY_AGENTS_INT_H

/*
 * Private to srv/agents.c (listener, registry) and srv/agent_session.c (one
 * agent's protocol state machine).
 */
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/listener.h>
#include <msgpack.h>
#include <openssl/ssl.h>

#include "canopyd.h"

struct bufferevent;
struct conn;

enum agent_state {
	AS_HELLO,	/* waiting for the agent's hello */
	AS_ENROLL,	/* hello done, no certificate: only enroll */
	AS_ENROLLING,	/* enrolment job running */
	AS_LOOKUP,	/* certificate presented, device look-up running */
	AS_SESSION,	/* known device: sync, heartbeat, events */
	AS_CLOSING	/* an error or the end was sent; ignore input */
};

/*
 * One connection.  Kept small (a few hundred bytes): with tens of thousands
 * of idle agents the TLS state dominates, and nothing else should.
 *
 * Lifetime: the connection holds one reference, every database job in
 * flight holds one.  When the connection goes, conn becomes NULL and the
 * session leaves the registry; the last reference frees it.  Done callbacks
 * of jobs therefore always find a valid session and check conn first.
 */
struct agent_session {
	struct agents		*ag;		/* NULL once closed or stopped */
	struct canopyd		*cd;		/* for metrics, outlives all */
	struct conn		*conn;		/* NULL once closed */
	LIST_ENTRY(agent_session) hlink;	/* registry bucket */
	TAILQ_ENTRY(agent_session) link;	/* all connections */
	uint32_t		 refs;
	uint16_t		 inflight;	/* jobs waiting for an answer */
	uint8_t			 state;		/* enum agent_state */
	uint8_t			 in_registry;
	int32_t			 vs_id;
	uint8_t			 inv_known;	/* inv_hash holds a value */
	char			 device_id[37];	/* UUID, lower case */
	char			 inv_hash[129];	/* the stored inventory hash */
	char			*name;		/* hello's, until enrolment */
};

LIST_HEAD(agent_bucket, agent_session);

struct agents {
	struct canopyd		*cd;
	SSL_CTX			*ssl_ctx;
	struct evconnlistener	*lev[CONF_MAX_LISTEN];
	int			 nlev;
	struct event		*resume_ev;	/* accept paused on EMFILE */
	int			 fd_paused;
	int			 limit_paused;
	int64_t			 limit_logged;	/* mono ms of the last warning */
	uint32_t		 max_frame;
	uint32_t		 max_agents;
	size_t			 nconns;	/* every open connection */
	size_t			 nsessions;	/* known devices (registry) */
	TAILQ_HEAD(, agent_session) all;
	struct agent_bucket	*buckets;
	size_t			 nbuckets;	/* a power of two */
};

/* agents.c: the registry. */
void	 agents_register(struct agents *, struct agent_session *);
void	 agents_unregister(struct agents *, struct agent_session *);
struct agent_session *agents_lookup(struct agents *, const char *device_id);
void	 agents_conn_gone(struct agents *);

/* agent_session.c */
struct agent_session *agent_session_new(struct agents *,
	    struct bufferevent *);
void	 agent_session_close(struct agent_session *, const char *why);
void	 agent_session_sync_now(struct agent_session *);
/* Sends in an established session (sb consumed); -1 if there is none. */
int	 agent_session_send(struct agent_session *, msgpack_sbuffer *);
void	 agent_session_ref(struct agent_session *);
void	 agent_session_unref(struct agent_session *);

#endif
