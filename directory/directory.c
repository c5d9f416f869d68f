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
 * LDAP directory sources: the pollers (directory/directory.h).  DIR_THREADS
 * threads of their own, each with its own database connection, never the
 * event loop nor the API's database workers: a poll can take minutes.  A
 * poller claims the next due source in the database (FOR UPDATE SKIP
 * LOCKED, so pollers never take the same one), reads it over LDAP
 * (directory/ldap.c) and writes the result in one transaction
 * (db/q_directory.c).  It wakes every DIR_TICK_MS, or at once when the API
 * asks for a poll (directory_wake).
 */
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "canopy_limits.h"
#include "config.h"
#include "log.h"
#include "seal.h"
#include "util.h"

#include "db/db.h"
#include "db/q_directory.h"
#include "srv/canopyd.h"

#include "directory.h"
#include "ldap.h"

struct directory {
	pthread_t		 threads[DIR_THREADS];
	size_t			 nthreads;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	unsigned int		 wakes;
	volatile int		 stopping;
	char			*conninfo;
	uint8_t			 key[SEAL_KEY_LEN];
	/* Which process holds a 'polling' claim: stale ones are retaken. */
	char			 owner[33];
};

static uint64_t
dir_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static PGconn *
dir_connect(struct directory *dir)
{
	static const char *const keys[] = {
		"application_name", "connect_timeout", "dbname", NULL
	};
	char		 t[16];
	const char	*vals[4];
	PGconn		*conn;

	snprintf(t, sizeof(t), "%d", DB_CONNECT_TIMEOUT_S);
	vals[0] = "canopyd-directory";
	vals[1] = t;
	vals[2] = dir->conninfo;
	vals[3] = NULL;
	if ((conn = PQconnectdbParams(keys, vals, 1)) == NULL)
		return NULL;
	if (PQstatus(conn) != CONNECTION_OK || db_system(conn) == -1) {
		log_warnx("directory: database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static char *
dir_jstr(json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	return s != NULL ? strdup(s) : NULL;
}

/* The claimed row as a source, secrets opened.  NULL with err set. */
static struct dir_source *
dir_source_from(struct directory *dir, json_t *row, char *err,
    size_t errlen)
{
	struct dir_source	*s;
	const char		*sealed;
	size_t			 len;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->id = json_integer_value(json_object_get(row, "id"));
	s->vs_id = (int)json_integer_value(json_object_get(row, "vs_id"));
	strlcpy(s->flavor, json_string_value(json_object_get(row, "flavor")) ?
	    json_string_value(json_object_get(row, "flavor")) : "",
	    sizeof(s->flavor));
	s->url = dir_jstr(row, "url");
	s->base_dn = dir_jstr(row, "base_dn");
	s->bind_method = dir_jstr(row, "bind_method");
	s->bind_dn = dir_jstr(row, "bind_dn");
	s->principal = dir_jstr(row, "principal");
	s->ca_file = dir_jstr(row, "ca_file");
	s->realm = dir_jstr(row, "realm");
	s->mark = dir_jstr(row, "mark");
	s->starttls = json_is_true(json_object_get(row, "starttls"));
	s->tls_verify = json_is_true(json_object_get(row, "tls_verify"));
	s->full = json_is_true(json_object_get(row, "full"));
	if (s->url == NULL || s->base_dn == NULL || s->bind_method == NULL) {
		snprintf(err, errlen, "the source is incomplete");
		goto fail;
	}
	if ((sealed = json_string_value(json_object_get(row,
	    "bind_secret"))) != NULL) {
		if ((s->password = (char *)seal_decrypt(dir->key, "ldap-bind",
		    sealed, &len)) == NULL) {
			snprintf(err, errlen, "the stored bind password cannot "
			    "be opened with this server's master key");
			goto fail;
		}
		s->password_len = len;
	}
	if ((sealed = json_string_value(json_object_get(row,
	    "keytab_sealed"))) != NULL) {
		if ((s->keytab = seal_decrypt(dir->key, "keytab", sealed,
		    &len)) == NULL) {
			snprintf(err, errlen, "the stored keytab cannot be "
			    "opened with this server's master key");
			goto fail;
		}
		s->keytab_len = len;
	}
	return s;
 fail:
	dir_source_free(s);
	return NULL;
}

/* One due source, if any: 1 if one was polled, 0 if none, -1 on error. */
static int
dir_poll_one(struct directory *dir, PGconn *conn, uint64_t *warned)
{
	struct dir_source	*s;
	struct dir_result	 r;
	json_t			*row = NULL;
	char			 err[768], dberr[512];
	uint64_t		 t0;
	int64_t			 id;
	int			 rc, vs;

	rc = qd_claim(conn, dir->owner, &row, dberr, sizeof(dberr));
	if (rc == QD_NOTFOUND)
		return 0;
	if (rc != DB_OK) {
		/*
		 * Once a minute, and not the first time: at start the
		 * migrations may still be running.
		 */
		if (*warned == 0)
			log_debug("directory: %s", dberr);
		else if (dir_now_ms() - *warned >= 60000)
			log_warnx("directory: %s", dberr);
		if (*warned == 0 || dir_now_ms() - *warned >= 60000)
			*warned = dir_now_ms();
		return -1;
	}
	t0 = dir_now_ms();
	id = json_integer_value(json_object_get(row, "id"));
	vs = (int)json_integer_value(json_object_get(row, "vs_id"));
	memset(&r, 0, sizeof(r));
	if ((s = dir_source_from(dir, row, err, sizeof(err))) == NULL ||
	    dir_ldap_poll(s, &dir->stopping, &r, err, sizeof(err)) == -1) {
		log_warnx("directory: source %lld: %s", (long long)id, err);
		rc = qd_poll_fail(conn, id, err, (long long)(dir_now_ms() - t0),
		    dberr, sizeof(dberr));
	} else {
		rc = qd_poll_store(conn, id, vs, &r,
		    (long long)(dir_now_ms() - t0), dberr, sizeof(dberr));
		if (rc == DB_OK)
			rc = qd_poll_time(conn, id, (long long)(dir_now_ms() -
			    t0), dberr, sizeof(dberr));
		if (rc == DB_OK)
			log_info("directory: source %lld: %s poll, %llu "
			    "entries, %zu objects, %llu skipped, %lld ms",
			    (long long)id, r.kind,
			    (unsigned long long)r.fetched, r.n,
			    (unsigned long long)r.skipped,
			    (long long)(dir_now_ms() - t0));
		else {
			snprintf(err, sizeof(err), "storing the poll: %s",
			    dberr);
			if (rc != DB_EDOWN)
				rc = qd_poll_fail(conn, id, err, (long long)(
				    dir_now_ms() - t0), dberr, sizeof(dberr));
		}
	}
	if (rc != DB_OK)
		log_warnx("directory: source %lld: %s", (long long)id, dberr);
	dir_result_free(&r);
	dir_source_free(s);
	json_decref(row);
	return rc == DB_OK ? 1 : -1;
}

/* Until canopyd's migrations have run, there is nothing to poll. */
static int
dir_schema_ready(PGconn *conn)
{
	PGresult	*res;
	int		 ok;

	res = PQexec(conn, "SELECT to_regclass('directory_sources')"
	    " IS NOT NULL");
	ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return ok;
}

static void *
dir_thread(void *arg)
{
	struct directory	*dir = arg;
	PGconn			*conn = NULL;
	struct timespec		 ts;
	unsigned int		 seen;
	uint64_t		 warned = 0;
	int			 r, schema = 0;

	pthread_mutex_lock(&dir->mtx);
	seen = dir->wakes;
	pthread_mutex_unlock(&dir->mtx);
	while (!dir->stopping) {
		r = 0;
		if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
			PQfinish(conn);
			conn = NULL;
		}
		if (conn == NULL)
			conn = dir_connect(dir);
		if (conn != NULL && !schema)
			schema = dir_schema_ready(conn);
		if (conn != NULL && schema)
			r = dir_poll_one(dir, conn, &warned);
		if (r == 1)
			continue;	/* another may be due */
		pthread_mutex_lock(&dir->mtx);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)DIR_TICK_MS % 1000 * 1000000L;
		ts.tv_sec += DIR_TICK_MS / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!dir->stopping && dir->wakes == seen)
			if (pthread_cond_timedwait(&dir->cond, &dir->mtx,
			    &ts) == ETIMEDOUT)
				break;
		seen = dir->wakes;
		pthread_mutex_unlock(&dir->mtx);
	}
	if (conn != NULL)
		PQfinish(conn);
	return NULL;
}

int
directory_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct directory	*dir;
	uint8_t			 rnd[16];
	size_t			 i;

	if ((dir = calloc(1, sizeof(*dir))) == NULL ||
	    (dir->conninfo = strdup(cd->conf->database)) == NULL) {
		free(dir);
		snprintf(err, errlen, "directory: out of memory");
		return -1;
	}
	memcpy(dir->key, cd->pki.master_key, sizeof(dir->key));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "directory: no random bytes");
		goto fail;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(dir->owner + 2 * i, 3, "%02x", rnd[i]);
	pthread_mutex_init(&dir->mtx, NULL);
	pthread_cond_init(&dir->cond, NULL);
	for (i = 0; i < DIR_THREADS; i++) {
		if (pthread_create(&dir->threads[i], NULL, dir_thread, dir) !=
		    0) {
			snprintf(err, errlen, "directory: cannot start a "
			    "poller thread");
			cd->directory = dir;
			directory_stop(cd);
			return -1;
		}
		dir->nthreads++;
	}
	cd->directory = dir;
	return 0;
 fail:
	free(dir->conninfo);
	free(dir);
	return -1;
}

void
directory_wake(struct canopyd *cd)
{
	struct directory	*dir = cd->directory;

	if (dir == NULL)
		return;
	pthread_mutex_lock(&dir->mtx);
	dir->wakes++;
	pthread_cond_broadcast(&dir->cond);
	pthread_mutex_unlock(&dir->mtx);
}

void
directory_stop(struct canopyd *cd)
{
	struct directory	*dir = cd->directory;
	size_t			 i;

	if (dir == NULL)
		return;
	pthread_mutex_lock(&dir->mtx);
	dir->stopping = 1;
	pthread_cond_broadcast(&dir->cond);
	pthread_mutex_unlock(&dir->mtx);
	/* A poll in progress stops at its next page (DIR_OP_TIMEOUT_S). */
	for (i = 0; i < dir->nthreads; i++)
		pthread_join(dir->threads[i], NULL);
	pthread_mutex_destroy(&dir->mtx);
	pthread_cond_destroy(&dir->cond);
	explicit_bzero(dir->key, sizeof(dir->key));
	free(dir->conninfo);
	free(dir);
	cd->directory = NULL;
}
