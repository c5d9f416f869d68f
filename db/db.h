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

#ifndef CANOPY_DB_H
#define CANOPY_DB_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <libpq-fe.h>

/*
 * The database layer.  The event loop never waits on PostgreSQL: work is
 * handed to a small pool of worker threads, each with its own connection,
 * and each result comes back to the loop as a 'done' callback.
 *
 * Jobs of one batch class (agent syncs, events, …) are drained together and
 * given to one worker as an array, so that many agents' writes become one
 * transaction of multi-row statements.
 *
 * When PostgreSQL is unreachable every job fails at once with DB_EDOWN (the
 * agent is told to retry; nothing is acknowledged), the workers reconnect
 * with backoff, and db_ready() is false (/healthz says 503).
 */
#define DB_OK		0
#define DB_ERR		(-1)	/* the statement failed: bad input, constraint */
#define DB_EDOWN	(-2)	/* no connection, or it broke: retry later */

struct db;

/* Runs on a worker thread.  Returns DB_OK, DB_ERR or DB_EDOWN with err set. */
typedef int	(*db_run_fn)(PGconn *, void *arg, char *err, size_t errlen);
/* Runs on the event loop with the result of run. */
typedef void	(*db_done_fn)(int rc, const char *err, void *arg);

struct db_batch_class {
	const char	*name;
	/* One transaction for n items; all succeed or all fail. */
	int		(*run)(PGconn *, void **items, size_t n, char *err,
			    size_t errlen);
	size_t		 max;		/* at most this many per call */
};

struct db_stats {
	uint64_t	 jobs_done;
	uint64_t	 jobs_failed;
	uint64_t	 batches;
	uint64_t	 batch_items;
	size_t		 queue_depth;
	double		 latency_ms_sum;	/* run time of jobs, summed */
	uint64_t	 latency_count;
	int		 ready;
};

/* Connects lazily: returns at once, even when PostgreSQL is down. */
struct db *db_start(struct event_base *, const char *conninfo, int nworkers);
/* Finishes queued jobs (or fails them with DB_EDOWN after a grace period). */
void	 db_stop(struct db *);

/* -1 if the queue is full (DB_QUEUE_MAX): the caller answers 'retry'. */
int	 db_submit(struct db *, db_run_fn, db_done_fn, void *arg);
int	 db_submit_batch(struct db *, const struct db_batch_class *,
	    void *item, db_done_fn done);

int	 db_ready(struct db *);
void	 db_get_stats(struct db *, struct db_stats *);

/* Applies the embedded migrations not yet applied, in one transaction. */
int	 db_migrate(PGconn *, char *err, size_t errlen);

/*
 * Helpers for run functions.  db_exec runs a parameterised statement and
 * returns its result, or NULL with err set and *rc DB_ERR or DB_EDOWN.
 */
/* db_execb: with parameters' types, lengths and formats (1: binary), as
 * PQexecParams takes them. */
PGresult *db_execb(PGconn *, int *rc, char *err, size_t errlen,
	    const char *sql, int nparams, const Oid *types,
	    const char *const *params, const int *lengths, const int *formats);
/* db_check: the same for a result of the caller's (PQexecPrepared...). */
PGresult *db_check(PGconn *, PGresult *, int *rc, char *err, size_t errlen);
PGresult *db_exec(PGconn *, int *rc, char *err, size_t errlen,
	    const char *sql, int nparams, const char *const *params);
int	 db_begin(PGconn *, char *err, size_t errlen);
int	 db_commit(PGconn *, char *err, size_t errlen);
void	 db_rollback(PGconn *);
/*
 * Row-level security (db/migrations/003_tenants.sql): whose rows this
 * connection sees.  Worker connections start as db_system (every tenant);
 * an API job narrows its connection to the caller's virtual server with
 * db_tenant and must return it with db_system.  -1 on failure.
 */
int	 db_system(PGconn *);
int	 db_tenant(PGconn *, int vs_id);

/* DB_EDOWN if the connection is bad, else DB_ERR. */
int	 db_errclass(PGconn *);

/*
 * Runs fn(conn, arg, err, errlen) inside BEGIN ... COMMIT, again (up to
 * DB_TX_ATTEMPTS times in all) while it fails for a reason that passes with
 * another try and leaves the connection usable: a deadlock, a
 * serialization failure, a lock not available.  For writes nobody would
 * send again: a deadlock with another writer of the same rows must not
 * lose them.  fn must not commit, and must do the same when run again.
 */
int	 db_tx(PGconn *, int (*)(PGconn *, void *, char *, size_t), void *,
	    char *, size_t);

#endif
