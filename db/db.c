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
 * The database worker pool.  One mutex guards the job queue, the completion
 * queue, the counters and the connection state; workers hold it only to
 * take or hand back work, never while talking to PostgreSQL.  Completions go
 * back to the loop through one event made active from the worker thread
 * (libevent is set up for pthreads by main before the base exists).
 */

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "db/db.h"
#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#define DB_ERRLEN	512

struct db_job {
	TAILQ_ENTRY(db_job)	 entry;
	const struct db_batch_class *cls;	/* NULL: a plain job */
	db_run_fn		 run;
	db_done_fn		 done;
	void			*arg;
	int			 rc;
	char			 err[DB_ERRLEN];
};
TAILQ_HEAD(db_jobq, db_job);

struct db_worker {
	struct db		*db;
	pthread_t		 thread;
	int			 id;
	int			 started;
	PGconn			*conn;
	PGcancel		*cancel;	/* guarded by db->mtx */
	int			 busy;		/* running a job */
	int			 up;		/* counted in db->nconnected */
	unsigned int		 seed;
};

struct db {
	struct event_base	*base;
	char			*conninfo;
	int			 nworkers;
	struct db_worker	*workers;

	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;		/* work queued, or quit */
	pthread_cond_t		 idle;		/* a job finished (db_stop) */
	pthread_cond_t		 backoff;	/* quit, for reconnecting ones */
	struct db_jobq		 queue;
	size_t			 qlen;
	struct db_jobq		 done;
	struct event		*done_ev;
	int			 stopping;	/* no new jobs */
	int			 quit;		/* workers exit */
	int			 nconnected;	/* workers with a migrated conn */
	int			 migrated;
	char			 migrate_err[DB_ERRLEN];	/* last logged */
	char			 connect_err[DB_ERRLEN];	/* last logged */
	int			 nbusy;

	uint64_t		 jobs_done;
	uint64_t		 jobs_failed;
	uint64_t		 batches;
	uint64_t		 batch_items;
	double			 latency_ms_sum;
	uint64_t		 latency_count;
};

static void	*db_worker_main(void *);
static void	 db_done_cb(evutil_socket_t, short, void *);
static void	 db_deliver(struct db *);

static void
db_deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Copies a libpq message without its trailing newline. */
static void
db_seterr(char *err, size_t errlen, const char *what, const char *msg)
{
	size_t	 n;

	if (err == NULL || errlen == 0)
		return;
	if (msg == NULL || *msg == '\0')
		msg = "unknown error";
	snprintf(err, errlen, "%s%s%s", what ? what : "", what ? ": " : "",
	    msg);
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	/* libpq's messages span lines; a log line must not. */
	for (; n > 0; n--)
		if (err[n - 1] == '\n' || err[n - 1] == '\t')
			err[n - 1] = ' ';
}

/* Server notices (e.g. "already exists, skipping") are for debugging. */
static void
db_notice(void *arg, const char *msg)
{
	log_debug("db: %.*s", (int)strcspn(msg, "\n"), msg);
}

struct db *
db_start(struct event_base *base, const char *conninfo, int nworkers)
{
	struct db		*db;
	pthread_condattr_t	 ca;
	sigset_t		 all, old;
	int			 i;

	if (nworkers < 1)
		nworkers = DB_WORKERS_DEFAULT;
	if (nworkers > DB_WORKERS_MAX)
		nworkers = DB_WORKERS_MAX;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->base = base;
	db->nworkers = nworkers;
	TAILQ_INIT(&db->queue);
	TAILQ_INIT(&db->done);
	if ((db->conninfo = strdup(conninfo ? conninfo : "")) == NULL ||
	    (db->workers = calloc(nworkers, sizeof(*db->workers))) == NULL) {
		free(db->conninfo);
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&db->cond, &ca);
	pthread_cond_init(&db->idle, &ca);
	pthread_cond_init(&db->backoff, &ca);
	pthread_condattr_destroy(&ca);

	if ((db->done_ev = event_new(base, -1, 0, db_done_cb, db)) == NULL) {
		log_warnx("db: cannot create the completion event");
		goto fail;
	}

	/* Signals belong to the loop thread (evsignal), not to workers. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nworkers; i++) {
		struct db_worker *w = &db->workers[i];

		w->db = db;
		w->id = i;
		w->seed = (unsigned int)(mono_ms() ^ ((uint64_t)i << 16) ^
		    (uint64_t)(uintptr_t)db);
		if ((errno = pthread_create(&w->thread, NULL, db_worker_main,
		    w)) != 0) {
			log_warn("db: pthread_create");
			break;
		}
		w->started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i == 0)
		goto fail;
	log_debug("db: %d workers started", i);
	return db;

fail:
	if (db->done_ev)
		event_free(db->done_ev);
	pthread_cond_destroy(&db->cond);
	pthread_cond_destroy(&db->idle);
	pthread_cond_destroy(&db->backoff);
	pthread_mutex_destroy(&db->mtx);
	free(db->workers);
	free(db->conninfo);
	free(db);
	return NULL;
}

/* Hands a finished job to the loop.  Called with the mutex held. */
static void
db_complete_locked(struct db *db, struct db_job *job, int rc, const char *err)
{
	job->rc = rc;
	if (rc == DB_OK) {
		job->err[0] = '\0';
		db->jobs_done++;
	} else {
		if (err != job->err)
			strlcpy(job->err, err && *err ? err :
			    (rc == DB_EDOWN ? "database unavailable" :
			    "database error"), sizeof(job->err));
		db->jobs_failed++;
	}
	TAILQ_INSERT_TAIL(&db->done, job, entry);
}

static void
db_wake_loop(struct db *db)
{
	event_active(db->done_ev, EV_READ, 0);
}

/* Fails every queued job at once: no worker can run them.  Mutex held. */
static int
db_fail_queue_locked(struct db *db, const char *why)
{
	struct db_job	*job;
	int		 n = 0;

	while ((job = TAILQ_FIRST(&db->queue)) != NULL) {
		TAILQ_REMOVE(&db->queue, job, entry);
		db->qlen--;
		db_complete_locked(db, job, DB_EDOWN, why);
		n++;
	}
	return n;
}

static int
db_enqueue(struct db *db, struct db_job *job)
{
	int	 now_down = 0;

	pthread_mutex_lock(&db->mtx);
	if (db->stopping || db->qlen >= DB_QUEUE_MAX) {
		pthread_mutex_unlock(&db->mtx);
		free(job);
		return -1;
	}
	if (db->nconnected == 0) {
		/* Fail fast: the caller tells its peer to retry later. */
		db_complete_locked(db, job, DB_EDOWN, "database unavailable");
		now_down = 1;
	} else {
		TAILQ_INSERT_TAIL(&db->queue, job, entry);
		db->qlen++;
		pthread_cond_signal(&db->cond);
	}
	pthread_mutex_unlock(&db->mtx);
	if (now_down)
		db_wake_loop(db);
	return 0;
}

int
db_submit(struct db *db, db_run_fn run, db_done_fn done, void *arg)
{
	struct db_job	*job;

	if (db == NULL || run == NULL)
		return -1;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return -1;
	job->run = run;
	job->done = done;
	job->arg = arg;
	return db_enqueue(db, job);
}

int
db_submit_batch(struct db *db, const struct db_batch_class *cls, void *item,
    db_done_fn done)
{
	struct db_job	*job;

	if (db == NULL || cls == NULL || cls->run == NULL)
		return -1;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return -1;
	job->cls = cls;
	job->done = done;
	job->arg = item;
	return db_enqueue(db, job);
}

int
db_ready(struct db *db)
{
	int	 r;

	if (db == NULL)
		return 0;
	pthread_mutex_lock(&db->mtx);
	r = db->nconnected > 0 && db->migrated && !db->stopping;
	pthread_mutex_unlock(&db->mtx);
	return r;
}

void
db_get_stats(struct db *db, struct db_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (db == NULL)
		return;
	pthread_mutex_lock(&db->mtx);
	st->jobs_done = db->jobs_done;
	st->jobs_failed = db->jobs_failed;
	st->batches = db->batches;
	st->batch_items = db->batch_items;
	st->queue_depth = db->qlen;
	st->latency_ms_sum = db->latency_ms_sum;
	st->latency_count = db->latency_count;
	st->ready = db->nconnected > 0 && db->migrated && !db->stopping;
	pthread_mutex_unlock(&db->mtx);
}

/* Runs the done callbacks; on the loop thread only. */
static void
db_deliver(struct db *db)
{
	struct db_jobq	 list;
	struct db_job	*job;

	TAILQ_INIT(&list);
	pthread_mutex_lock(&db->mtx);
	TAILQ_CONCAT(&list, &db->done, entry);
	pthread_mutex_unlock(&db->mtx);

	while ((job = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, job, entry);
		if (job->done)
			job->done(job->rc, job->rc == DB_OK ? NULL : job->err,
			    job->arg);
		free(job);
	}
}

static void
db_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	db_deliver(arg);
}

void
db_stop(struct db *db)
{
	struct timespec	 ts;
	int		 i, n;

	if (db == NULL)
		return;

	pthread_mutex_lock(&db->mtx);
	db->stopping = 1;
	db_deadline(&ts, DB_STOP_GRACE_MS);
	while ((db->qlen > 0 || db->nbusy > 0) && db->nconnected > 0) {
		if (pthread_cond_timedwait(&db->idle, &db->mtx, &ts) ==
		    ETIMEDOUT)
			break;
	}
	if ((n = db_fail_queue_locked(db, "server shutting down")) > 0)
		log_warnx("db: %d queued jobs dropped at shutdown", n);
	/* Whatever still runs past the grace period is cancelled. */
	for (i = 0; i < db->nworkers; i++) {
		struct db_worker *w = &db->workers[i];
		char	 buf[256];

		if (w->busy && w->cancel)
			PQcancel(w->cancel, buf, sizeof(buf));
	}
	db->quit = 1;
	pthread_cond_broadcast(&db->cond);
	pthread_cond_broadcast(&db->backoff);
	pthread_mutex_unlock(&db->mtx);

	for (i = 0; i < db->nworkers; i++)
		if (db->workers[i].started)
			pthread_join(db->workers[i].thread, NULL);

	/* We are on the loop thread: the callbacks may run here. */
	db_deliver(db);

	for (i = 0; i < db->nworkers; i++) {
		if (db->workers[i].cancel)
			PQfreeCancel(db->workers[i].cancel);
		if (db->workers[i].conn)
			PQfinish(db->workers[i].conn);
	}
	event_free(db->done_ev);
	pthread_cond_destroy(&db->cond);
	pthread_cond_destroy(&db->idle);
	pthread_cond_destroy(&db->backoff);
	pthread_mutex_destroy(&db->mtx);
	free(db->workers);
	free(db->conninfo);
	free(db);
}

/*
 * Worker side.
 */

/*
 * Row-level security (migration 003) does not hold for a superuser or a
 * BYPASSRLS role: say so once, loudly, rather than isolate nothing quietly.
 */
static void
db_check_role(PGconn *conn)
{
	PGresult	*res;

	res = PQexec(conn, "SELECT rolsuper OR rolbypassrls FROM pg_roles "
	    "WHERE rolname = current_user");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		log_warnx("db: connected as %s, a superuser or BYPASSRLS role: "
		    "row-level security does not isolate virtual servers; "
		    "use an ordinary role that owns the database",
		    PQuser(conn));
	PQclear(res);
}

static PGconn *
db_connect(const char *conninfo, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"application_name", "connect_timeout", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"dbname", NULL
	};
	char		 timeout[16];
	const char	*vals[8];
	PGconn		*conn;

	snprintf(timeout, sizeof(timeout), "%d", DB_CONNECT_TIMEOUT_S);
	/* Ours come first: the configured conninfo may override them. */
	vals[0] = "canopyd";
	vals[1] = timeout;
	vals[2] = "1";
	vals[3] = "30";
	vals[4] = "10";
	vals[5] = "3";
	vals[6] = conninfo;
	vals[7] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		db_seterr(err, errlen, NULL, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		db_seterr(err, errlen, NULL, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, db_notice, NULL);
	/* The server's own work sees every tenant; API jobs narrow it. */
	if (db_system(conn) == -1) {
		db_seterr(err, errlen, NULL, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int
db_set_tenant(PGconn *conn, const char *value)
{
	const char	*params[1] = { value };
	PGresult	*res;
	int		 ok;

	res = PQexecParams(conn, "SELECT set_config('canopy.vs_id', $1, false)",
	    1, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	return ok ? 0 : -1;
}

int
db_system(PGconn *conn)
{
	return db_set_tenant(conn, "system");
}

int
db_tenant(PGconn *conn, int vs_id)
{
	char	 v[16];

	snprintf(v, sizeof(v), "%d", vs_id);
	return db_set_tenant(conn, v);
}

static void
db_worker_disconnect(struct db_worker *w)
{
	struct db	*db = w->db;
	PGcancel	*cancel;

	pthread_mutex_lock(&db->mtx);
	cancel = w->cancel;
	w->cancel = NULL;
	if (w->up) {
		w->up = 0;
		db->nconnected--;
		if (db->nconnected == 0) {
			log_warnx("db: lost every connection to PostgreSQL");
			if (db_fail_queue_locked(db, "database unavailable"))
				db_wake_loop(db);
			pthread_cond_broadcast(&db->idle);
		}
	}
	pthread_mutex_unlock(&db->mtx);
	if (cancel)
		PQfreeCancel(cancel);
	if (w->conn)
		PQfinish(w->conn);
	w->conn = NULL;
}

/* Is this connection still usable?  A cheap round trip decides. */
static int
db_ping(PGconn *conn)
{
	PGresult	*res;
	int		 ok;

	if (PQstatus(conn) != CONNECTION_OK)
		return 0;
	res = PQexec(conn, "SELECT 1");
	ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	return ok && PQstatus(conn) == CONNECTION_OK;
}

/*
 * Connects, migrates if nobody has yet, and counts the worker as up.
 * Returns 0, or -1 after waiting out the backoff (or on quit).
 */
static int
db_worker_connect(struct db_worker *w, uint64_t *backoff)
{
	struct db	*db = w->db;
	struct timespec	 ts;
	char		 err[DB_ERRLEN];
	PGconn		*conn;
	PGcancel	*cancel;
	uint64_t	 wait;
	int		 migrated;

	err[0] = '\0';
	conn = db_connect(db->conninfo, err, sizeof(err));
	if (conn != NULL) {
		pthread_mutex_lock(&db->mtx);
		migrated = db->migrated;
		pthread_mutex_unlock(&db->mtx);
		if (!migrated) {
			if (db_migrate(conn, err, sizeof(err)) == 0) {
				db_check_role(conn);
				pthread_mutex_lock(&db->mtx);
				db->migrated = 1;
				db->migrate_err[0] = '\0';
				pthread_mutex_unlock(&db->mtx);
			} else {
				/* Each worker retries: say it once per cause. */
				pthread_mutex_lock(&db->mtx);
				if (strcmp(db->migrate_err, err) != 0) {
					strlcpy(db->migrate_err, err,
					    sizeof(db->migrate_err));
					log_warnx("db: schema migration failed: "
					    "%s; not serving until it succeeds "
					    "(retrying)", err);
				} else
					log_debug("db: schema migration failed "
					    "again: %s", err);
				pthread_mutex_unlock(&db->mtx);
				PQfinish(conn);
				conn = NULL;
				err[0] = '\0';
			}
		}
	}
	if (conn != NULL) {
		cancel = PQgetCancel(conn);
		pthread_mutex_lock(&db->mtx);
		w->conn = conn;
		w->cancel = cancel;
		w->up = 1;
		if (db->nconnected++ == 0)
			log_info("db: connected to PostgreSQL");
		db->connect_err[0] = '\0';
		pthread_mutex_unlock(&db->mtx);
		log_debug("db: worker %d connected", w->id);
		*backoff = 0;
		return 0;
	}

	if (err[0] != '\0') {
		/* Every worker fails alike: say it once per cause. */
		pthread_mutex_lock(&db->mtx);
		if (strcmp(db->connect_err, err) != 0) {
			strlcpy(db->connect_err, err, sizeof(db->connect_err));
			log_warnx("db: cannot connect: %s (retrying)", err);
		} else
			log_debug("db: worker %d: cannot connect: %s", w->id,
			    err);
		pthread_mutex_unlock(&db->mtx);
	}
	if (*backoff == 0)
		*backoff = DB_BACKOFF_MIN_MS;
	else if ((*backoff *= 2) > DB_BACKOFF_MAX_MS)
		*backoff = DB_BACKOFF_MAX_MS;
	/* Jitter in [backoff/2, backoff] so workers and servers spread. */
	wait = *backoff / 2 + (uint64_t)rand_r(&w->seed) % (*backoff / 2 + 1);
	db_deadline(&ts, wait);

	pthread_mutex_lock(&db->mtx);
	while (!db->quit) {
		if (db->nconnected == 0 &&
		    db_fail_queue_locked(db, "database unavailable") > 0)
			db_wake_loop(db);
		/* Not db->cond: its wake-ups are for connected workers. */
		if (pthread_cond_timedwait(&db->backoff, &db->mtx, &ts) ==
		    ETIMEDOUT)
			break;
	}
	if (db->nconnected == 0 && db_fail_queue_locked(db,
	    "database unavailable") > 0)
		db_wake_loop(db);
	pthread_mutex_unlock(&db->mtx);
	return -1;
}

/*
 * Takes the next job, and for a batch class every other queued item of the
 * same class, up to the class maximum.  Mutex held.
 */
static size_t
db_take_locked(struct db *db, struct db_job **jobs, size_t max,
    const struct db_batch_class *cls, size_t have)
{
	struct db_job	*job, *next;

	for (job = TAILQ_FIRST(&db->queue); job != NULL && have < max;
	    job = next) {
		next = TAILQ_NEXT(job, entry);
		if (job->cls != cls)
			continue;
		TAILQ_REMOVE(&db->queue, job, entry);
		db->qlen--;
		jobs[have++] = job;
	}
	return have;
}

static void
db_run_jobs(struct db_worker *w, struct db_job **jobs, size_t n)
{
	struct db			*db = w->db;
	const struct db_batch_class	*cls = jobs[0]->cls;
	char				 err[DB_ERRLEN];
	void				**items = NULL;
	uint64_t			 t0, t1;
	size_t				 i;
	int				 rc, broken = 0;

	err[0] = '\0';
	t0 = mono_ms();
	if (PQstatus(w->conn) != CONNECTION_OK) {
		rc = DB_EDOWN;
		db_seterr(err, sizeof(err), NULL, "connection lost");
	} else if (cls == NULL) {
		rc = jobs[0]->run(w->conn, jobs[0]->arg, err, sizeof(err));
	} else if ((items = calloc(n, sizeof(*items))) == NULL) {
		rc = DB_ERR;
		db_seterr(err, sizeof(err), NULL, "out of memory");
	} else {
		for (i = 0; i < n; i++)
			items[i] = jobs[i]->arg;
		rc = cls->run(w->conn, items, n, err, sizeof(err));
		free(items);
	}
	t1 = mono_ms();

	/*
	 * A run function must not leave a transaction open: the next job
	 * would run inside it.  What it did is undone, so it did not succeed.
	 */
	if (PQstatus(w->conn) == CONNECTION_OK &&
	    PQtransactionStatus(w->conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(w->conn, "ROLLBACK");
		PQclear(res);
		if (rc == DB_OK) {
			log_warnx("db: %s left a transaction open; rolled "
			    "back", cls ? cls->name : "a job");
			rc = DB_ERR;
			db_seterr(err, sizeof(err), NULL,
			    "transaction left open and rolled back");
		}
	}
	if (PQstatus(w->conn) != CONNECTION_OK) {
		broken = 1;
		/* DB_OK stands: it committed before the connection broke. */
		if (rc != DB_OK)
			rc = DB_EDOWN;
	} else if (rc == DB_EDOWN && !db_ping(w->conn))
		broken = 1;

	pthread_mutex_lock(&db->mtx);
	db->latency_ms_sum += (double)(t1 - t0);
	db->latency_count++;
	if (cls != NULL) {
		db->batches++;
		db->batch_items += n;
	}
	for (i = 0; i < n; i++)
		db_complete_locked(db, jobs[i], rc, err);
	w->busy = 0;
	db->nbusy--;
	pthread_cond_broadcast(&db->idle);
	pthread_mutex_unlock(&db->mtx);
	db_wake_loop(db);

	if (broken) {
		log_warnx("db: worker %d: connection to PostgreSQL broken%s%s",
		    w->id, err[0] ? ": " : "", err);
		db_worker_disconnect(w);
	}
}

static void *
db_worker_main(void *arg)
{
	struct db_worker	*w = arg;
	struct db		*db = w->db;
	struct db_job		**jobs;
	struct timespec		 ts;
	const struct db_batch_class *cls;
	uint64_t		 backoff = 0;
	size_t			 n, max;
	int			 quit, ping;

	if ((jobs = calloc(DB_BATCH_MAX, sizeof(*jobs))) == NULL) {
		log_warnx("db: worker %d: out of memory", w->id);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&db->mtx);
		quit = db->quit;
		pthread_mutex_unlock(&db->mtx);
		if (quit)
			break;

		if (w->conn == NULL) {
			(void)db_worker_connect(w, &backoff);
			continue;
		}

		pthread_mutex_lock(&db->mtx);
		ping = 0;
		while (TAILQ_EMPTY(&db->queue) && !db->quit) {
			db_deadline(&ts, DB_PING_S * 1000);
			if (pthread_cond_timedwait(&db->cond, &db->mtx, &ts) ==
			    ETIMEDOUT && TAILQ_EMPTY(&db->queue)) {
				ping = 1;
				break;
			}
		}
		if (ping || (db->quit && TAILQ_EMPTY(&db->queue))) {
			pthread_mutex_unlock(&db->mtx);
			/* Idle: notice a dead server before a job does. */
			if (ping && !db_ping(w->conn)) {
				log_warnx("db: worker %d: connection to "
				    "PostgreSQL lost", w->id);
				db_worker_disconnect(w);
			}
			continue;
		}

		cls = TAILQ_FIRST(&db->queue)->cls;
		if (cls == NULL) {
			jobs[0] = TAILQ_FIRST(&db->queue);
			TAILQ_REMOVE(&db->queue, jobs[0], entry);
			db->qlen--;
			n = 1;
		} else {
			max = cls->max ? cls->max : DB_BATCH_MAX;
			if (max > DB_BATCH_MAX)
				max = DB_BATCH_MAX;
			n = db_take_locked(db, jobs, max, cls, 0);
			/*
			 * Items are arriving together: give the burst a moment
			 * to gather into one transaction.  A lone item runs at
			 * once, so an idle server stays fast.
			 */
			if (n > 1 && n < max && !db->quit) {
				db_deadline(&ts, DB_BATCH_WAIT_MS);
				while (pthread_cond_timedwait(&db->cond,
				    &db->mtx, &ts) != ETIMEDOUT && !db->quit)
					;
				n = db_take_locked(db, jobs, max, cls, n);
			}
		}
		w->busy = 1;
		db->nbusy++;
		/* We may have swallowed a wake-up meant for an idle worker. */
		if (!TAILQ_EMPTY(&db->queue))
			pthread_cond_signal(&db->cond);
		pthread_mutex_unlock(&db->mtx);

		db_run_jobs(w, jobs, n);
	}
	free(jobs);
	return NULL;
}

/*
 * Helpers for run functions.
 */

/* Errors that mean "try again later" rather than "this input is wrong". */
static int
db_state_is_transient(const char *state)
{
	if (state == NULL)
		return 0;
	return strncmp(state, "08", 2) == 0 ||	/* connection exception */
	    strncmp(state, "57P", 3) == 0 ||	/* shutdown, cannot connect */
	    strcmp(state, "40001") == 0 ||	/* serialization failure */
	    strcmp(state, "40P01") == 0 ||	/* deadlock detected */
	    strcmp(state, "55P03") == 0 ||	/* lock not available */
	    strcmp(state, "53300") == 0;	/* too many connections */
}

int
db_errclass(PGconn *conn)
{
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return DB_EDOWN;
	return DB_ERR;
}

PGresult *
db_exec(PGconn *conn, int *rc, char *err, size_t errlen, const char *sql,
    int nparams, const char *const *params)
{
	return db_execb(conn, rc, err, errlen, sql, nparams, NULL, params,
	    NULL, NULL);
}

PGresult *
db_execb(PGconn *conn, int *rc, char *err, size_t errlen, const char *sql,
    int nparams, const Oid *types, const char *const *params,
    const int *lengths, const int *formats)
{
	return db_check(conn, PQexecParams(conn, sql, nparams, types, params,
	    lengths, formats, 0), rc, err, errlen);
}

PGresult *
db_check(PGconn *conn, PGresult *res, int *rc, char *err, size_t errlen)
{
	int		 st, r;

	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (rc)
			*rc = DB_OK;
		return res;
	}
	r = db_errclass(conn);
	if (r == DB_ERR && res != NULL &&
	    db_state_is_transient(PQresultErrorField(res, PG_DIAG_SQLSTATE)))
		r = DB_EDOWN;
	db_seterr(err, errlen, NULL, res && *PQresultErrorMessage(res) ?
	    PQresultErrorMessage(res) : PQerrorMessage(conn));
	PQclear(res);
	if (rc)
		*rc = r;
	return NULL;
}

int
db_begin(PGconn *conn, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen, "BEGIN", 0, NULL)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

int
db_commit(PGconn *conn, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(conn, &rc, err, errlen, "COMMIT", 0, NULL)) == NULL)
		return rc;
	/* COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
	if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		PQclear(res);
		db_seterr(err, errlen, NULL,
		    "transaction was aborted and rolled back");
		return DB_ERR;
	}
	PQclear(res);
	return DB_OK;
}

int
db_tx(PGconn *conn, int (*fn)(PGconn *, void *, char *, size_t), void *arg,
    char *err, size_t errlen)
{
	int	attempt, rc = DB_ERR;

	for (attempt = 1; attempt <= DB_TX_ATTEMPTS; attempt++) {
		if ((rc = db_begin(conn, err, errlen)) == DB_OK &&
		    (rc = fn(conn, arg, err, errlen)) == DB_OK &&
		    (rc = db_commit(conn, err, errlen)) == DB_OK)
			return DB_OK;
		db_rollback(conn);
		/* Transient (db_exec), with the connection still good. */
		if (rc != DB_EDOWN || PQstatus(conn) != CONNECTION_OK ||
		    !db_ping(conn))
			break;
		if (attempt < DB_TX_ATTEMPTS)
			log_info("db: %s; trying again (%d of %d)", err,
			    attempt + 1, DB_TX_ATTEMPTS);
	}
	return rc;
}

void
db_rollback(PGconn *conn)
{
	PGresult	*res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
	    PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	res = PQexec(conn, "ROLLBACK");
	PQclear(res);
}
