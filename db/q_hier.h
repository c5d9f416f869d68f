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

#ifndef CANOPY_Q_HIER_H
#define CANOPY_Q_HIER_H

/*
 * The server tree's statements (db/migrations/009_hierarchy.sql does the
 * heavy lifting in SQL: the outbox triggers, hier_read, hier_snapshot,
 * hier_apply).  Every function runs on a database worker.
 */
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define QH_UUID_LEN	37

/* Start-up: this server's identity; the parent link row when configured. */
struct qh_init {
	char		 name[256];		/* in: server-name */
	char		 up_min_severity[16];	/* in */
	int		 has_parent;		/* in */
	char		 parent_name[300];	/* in: parent host:port */
	char		 uuid[QH_UUID_LEN];	/* out */
	int		 level;			/* out */
	int64_t		 parent_link;		/* out: 0 when none */
	uint64_t	 parent_rx;		/* out: its cursor */
	int64_t		 root_group;		/* out: main's Managed devices */
	int64_t		 pool_group;		/* out: main's Unassigned devices */
	void		*arg;
};
int	 qh_init_run(PGconn *, void *, char *, size_t);

/* A link as the protocol needs it. */
struct qh_link {
	int64_t		 id;
	char		 name[256];
	char		 peer_uuid[QH_UUID_LEN];	/* "" if unknown */
	uint64_t	 rx_seq;
	uint64_t	 tx_acked;
	char		 peer_ca_pem[16384];
};

/* An incoming server: its link, by certificate fingerprint or, for a
 * dialled (DMZ) child, by name. */
struct qh_lookup {
	int64_t		 id;			/* in, or 0 */
	char		 fingerprint[128];	/* in, or "" */
	char		 name[256];		/* in, or "" */
	int		 found;
	struct qh_link	 link;
	void		*arg;
};
int	 qh_lookup_run(PGconn *, void *, char *, size_t);

/* A child registers: token, CSR, its uuid and (DMZ) its CA. */
struct qh_register {
	const struct pki *pki;			/* in: signs the CSR */
	char		 token_hash[65];
	char		 uuid[QH_UUID_LEN];
	char		*csr;			/* malloc'd */
	char		*ca;			/* malloc'd or NULL */
	int64_t		 expect_link;		/* dialled child: its link */
	char		 name[256];		/* out */
	char		*cert;			/* out, malloc'd */
	char		 why[256];		/* out: refused, for the peer */
	void		*arg;
};
int	 qh_register_run(PGconn *, void *, char *, size_t);
void	 qh_register_free(struct qh_register *);

/* The link is up (hello exchanged) or down. */
struct qh_state {
	int64_t		 link;
	int		 up;
	char		 peer_uuid[QH_UUID_LEN];	/* up: the peer said */
	int		 peer_level;		/* up, parent link: its level */
	int		 peer_proto;
	int		 parent;		/* the link is to our parent */
	char		 error[256];		/* down: why, or "" */
	/* out (up): where the peer's stream resumes; our compaction marks */
	uint64_t	 rx_seq;
	uint64_t	 compacted;		/* of our direction toward it */
	uint64_t	 top;			/* our newest sequence number */
	int		 reset;			/* the peer's identity changed */
	void		*arg;
};
int	 qh_state_run(PGconn *, void *, char *, size_t);

/* The next stream records for a link. */
struct qh_read {
	int64_t		 link;
	uint64_t	 after;
	int		 limit;
	size_t		 max_bytes;
	char		**recs;			/* out: JSON texts */
	size_t		 nrecs;
	uint64_t	 last;			/* out: the cursor after them */
	int64_t		 last_at_ms;
	int		 more;
	void		*arg;
};
int	 qh_read_run(PGconn *, void *, char *, size_t);
void	 qh_read_free(struct qh_read *);

/* A consistent snapshot for a link, in chunks of JSON arrays. */
struct qh_snapshot {
	int64_t		 link;
	int		 chunk;
	uint64_t	 seq;			/* out */
	char		**chunks;		/* out: JSON array texts */
	size_t		 nchunks;
	void		*arg;
};
int	 qh_snapshot_run(PGconn *, void *, char *, size_t);
void	 qh_snapshot_free(struct qh_snapshot *);

/* Applying what a peer sent: a batch, a snapshot's beginning or end. */
enum qh_apply_kind { QH_BATCH, QH_SNAP_BEGIN, QH_SNAP_CHUNK, QH_SNAP_END };
struct qh_apply {
	enum qh_apply_kind kind;
	int64_t		 link;
	char		*recs;			/* JSON array text, malloc'd */
	uint64_t	 last;			/* QH_BATCH: the cursor */
	uint64_t	 seq;			/* QH_SNAP_END */
	uint64_t	 ack;			/* what to acknowledge */
	uint64_t	 snap;			/* the sender's snapshot id */
	int		 n;			/* out: records applied */
	int		 kinds;			/* out: QH_K_* present */
	int		 bad;			/* out: the peer's fault */
	int		 from_parent;		/* policies and tasks come down */
	int64_t		 at_ms;			/* the sender's newest record */
	int		 more;
	double		 lag_s;			/* the receiver's lag */
	int		 relay_max;		/* records a relayed row holds */
						/* (0: HIER_BATCH_RECORDS) */
	uint32_t	 gen;			/* the caller's */
	void		*arg;
};
#define QH_K_POLICY	0x1
#define QH_K_TASK	0x2
int	 qh_apply_run(PGconn *, void *, char *, size_t);
void	 qh_apply_free(struct qh_apply *);

/* Acknowledgements (for compaction).  The link's lag is the receiver's:
 * qh_apply_run writes it. */
struct qh_acked {
	int64_t		 link;
	uint64_t	 acked;
};
int	 qh_acked_run(PGconn *, void *, char *, size_t);

/* The periodic work: status, compaction, state of links without a
 * connection. */
struct qh_tick {
	int		 max_age_s;
	int		 limit;
	int		 status_changed;	/* out */
	int		 compacted;		/* out */
	void		*arg;
};
int	 qh_tick_run(PGconn *, void *, char *, size_t);

#endif
