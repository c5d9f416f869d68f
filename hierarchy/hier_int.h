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

#ifndef CANOPY_HIER_INT_H
#define CANOPY_HIER_INT_H

/*
 * Private to hierarchy/: the module (hierarchy.c) and the links
 * (link.c).  docs/HIERARCHY.md describes the protocol.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdint.h>

#include <msgpack.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "canopy_limits.h"
#include "msg.h"
#include "db/q_hier.h"

struct canopyd;
struct conn;
struct hlink;

/*
 * The subject of the certificate a parent presents when it dials a child
 * in a DMZ.  Its own CA issues it; the CA gives children "server:NAME" and
 * agents their device id, so no one else holds such a name from that CA.
 */
#define HIER_PARENT_CN	"canopy-parent:"

enum hl_state {
	HL_IDLE,	/* not connected (a dialler waits to reconnect) */
	HL_CONNECTING,	/* TCP and TLS */
	HL_HELLO,	/* hello sent or being answered */
	HL_REGISTER,	/* registration in progress */
	HL_UP,		/* streams flowing both ways */
	HL_CLOSING
};

struct hier {
	struct canopyd	*cd;
	int		 ready;		/* identity loaded */
	char		 uuid[QH_UUID_LEN];
	char		 name[256];
	int		 level;
	int64_t		 root_group;	/* main's two trees, where what */
	int64_t		 pool_group;	/* comes from above applies */
	TAILQ_HEAD(, hlink) links;
	struct hlink	*parent;	/* our link up, if any */
	int		 accept_mode;	/* "parent accept": it dials in */
	int64_t		 parent_id;	/* its hier_links row */
	uint64_t	 parent_rx;	/* our cursor of its stream */
	X509		*parent_ca;	/* accept mode: who may dial in */
	char		 dmz_cert[1100];	/* our client certificate and */
	char		 dmz_key[1100];		/*   key for dialling children */
	SSL_CTX		*client_ctx;	/* dialling the parent */
	struct sockaddr_storage parent_ss;
	socklen_t	 parent_sslen;
	char		 parent_host[300];
	struct event	*ev_tick;	/* status, compaction */
	struct event	*ev_poll;	/* reads without notification */
	struct event	*ev_notify;	/* from the LISTEN thread */
	struct event	*ev_push;	/* HIER_PUSH_DELAY_MS after a notify */
	int		 ticking;
	int		 initing;
	pthread_t	 listener;
	int		 listener_up;
	volatile int	 listener_stop;
	char		*conninfo;
};

/* One record queued to apply, in order. */
struct hl_rx {
	TAILQ_ENTRY(hl_rx) entry;
	struct qh_apply	*job;
};

struct hlink {
	TAILQ_ENTRY(hlink) entry;
	struct hier	*h;		/* only while !gone */
	struct canopyd	*cd;
	int		 parent;	/* this is our link to our parent */
	int		 dialer;	/* we dial it */
	int64_t		 id;		/* hier_links.id, 0 until known */
	char		 name[256];
	char		 peer_uuid[QH_UUID_LEN];
	char		 peer_name[256];
	struct conn	*conn;
	enum hl_state	 state;
	uint32_t	 gen;		/* bumped per connection */
	int		 refs;
	int		 gone;		/* out of the list; freed at refs 0 */
	char		 error[256];
	int		 hello_sent;
	int		 registered;	/* dialled child: it has registered */
	char		 peer_ca[16384];	/* dialled child: its CA, pinned */
	struct sockaddr_storage dial_ss;	/* dialled child: where */
	socklen_t	 dial_sslen;
	char		 dial_host[300];
	struct event	*ev_retry;
	struct event	*ev_beat;
	uint32_t	 attempt;
	uint64_t	 rx_seq;	/* what we applied of the peer's stream */

	/* sending */
	int		 tx_ready;
	uint64_t	 tx_next;	/* last sequence number sent */
	uint64_t	 tx_acked;
	uint64_t	 inflight[HIER_WINDOW];	/* 'last' of each batch sent */
	int		 ninflight;
	int		 reading;
	int		 reread;
	struct qh_snapshot *snap;	/* being sent */
	size_t		 snap_next;
	uint64_t	 snap_id;
	uint64_t	 acked_saved;	/* tx_acked as last written */

	/* receiving */
	uint64_t	 rx_last;	/* last stream 'last' received */
	uint64_t	 rx_snap;	/* the snapshot being received */
	uint64_t	 rx_chunks;
	TAILQ_HEAD(, hl_rx) rxq;
	int		 nrxq;
	int		 applying;
};

/* hierarchy.c */
void	 hier_pump_all(struct hier *);
/* Rebuilds the TLS context for the parent (after registration). */
int	 hier_client_ctx_reload(struct hier *);

/* link.c: connections, registration, hellos. */
struct hlink *hl_new(struct hier *, int parent, int dialer, const char *name);
void	 hl_free_if_done(struct hlink *);
void	 hl_dial(struct hlink *);
int	 hl_accept(struct hier *, struct conn *, const struct msg *hello);
void	 hl_close(struct hlink *, const char *why);
const char *hl_who(struct hlink *);
void	 hl_ref(struct hlink *);
void	 hl_unref(struct hlink *);
/* After a database job: the link, if the job's connection is current. */
struct hlink *hl_job_link(struct hlink *, uint32_t gen);
void	 hl_send(struct hlink *, msgpack_sbuffer *);
void	 hl_fail(struct hlink *, const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* stream.c: the records each way. */
void	 hl_pump(struct hlink *);
void	 hl_snapshot_start(struct hlink *);
void	 hl_ack(struct hlink *, const struct msg *);
void	 hl_batch(struct hlink *, const struct msg *);
void	 hl_snap(struct hlink *, const struct msg *);
void	 hl_stream_reset(struct hlink *);
void	 hl_job_free(int rc, const char *err, void *arg);

#endif
