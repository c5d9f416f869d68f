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
 * The database layer against a PostgreSQL of its own: migrations, plain
 * jobs, batching, fail-fast while the server is down, reconnection and the
 * draining db_stop.  Skipped (exit 0) where PostgreSQL cannot be started.
 * CANOPY_PG_TEMPLATE, if set, is an initdb'd directory to copy.
 */

#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "canopy_limits.h"
#include "db/db.h"
#include "db/migrations.h"
#include "db/q_hier.h"
#include "log.h"
#include "test.h"
#include "util.h"

#define PG_BIN	"/usr/lib/postgresql/15/bin"

static char	 dir[64], asuser[64], conninfo[256];
static int	 port;
static struct event_base *base;
static struct db *db;
static int	 pending, nok, nerr, nedown;

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char	 cmd[2048];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
pg_ctl_start(void)
{
	return sh("cd / && %s %s/pg_ctl -D %s/data -w -t 30 -l %s/pg.log "
	    "-o '-k %s -h 127.0.0.1 -p %d -c fsync=off' start >/dev/null",
	    asuser, PG_BIN, dir, dir, dir, port);
}

static int
pg_ctl_stop(void)
{
	return sh("cd / && %s %s/pg_ctl -D %s/data -w -t 30 -m fast stop "
	    ">/dev/null 2>&1", asuser, PG_BIN, dir);
}

/* A loopback port nobody listens on now. */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 s, p = -1;

	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(s, (struct sockaddr *)&sin, &len) == 0)
		p = ntohs(sin.sin_port);
	close(s);
	return p;
}

static int
pg_setup(void)
{
	const char	*tmpl = getenv("CANOPY_PG_TEMPLATE");
	struct passwd	*pw = NULL;
	char		 path[128];

	if (access(PG_BIN "/initdb", X_OK) != 0)
		return -1;
	if (geteuid() == 0) {
		if ((pw = getpwnam("postgres")) == NULL)
			return -1;
		snprintf(asuser, sizeof(asuser), "runuser -u postgres --");
	}
	strlcpy(dir, "/tmp/t_db.XXXXXX", sizeof(dir));
	if (mkdtemp(dir) == NULL)
		return -1;
	if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/PG_VERSION", tmpl ? tmpl : "");
	if (tmpl != NULL && access(path, R_OK) == 0) {
		if (sh("cp -a %s %s/data", tmpl, dir) != 0)
			return -1;
	} else if (sh("cd / && %s %s/initdb -D %s/data -U postgres -A trust "
	    "-E UTF8 --locale=C.UTF-8 --no-sync >%s/initdb.log 2>&1",
	    asuser, PG_BIN, dir, dir) != 0)
		return -1;
	if ((port = free_port()) == -1)
		return -1;
	if (pg_ctl_start() != 0)
		return -1;
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d "
	    "dbname=postgres user=postgres", port);
	return 0;
}

static void
pg_teardown(void)
{
	if (dir[0] == '\0')
		return;
	pg_ctl_stop();
	sh("rm -rf %s", dir);
}

static void
done_cb(int rc, const char *err, void *arg)
{
	pending--;
	if (rc == DB_OK)
		nok++;
	else if (rc == DB_EDOWN)
		nedown++;
	else
		nerr++;
}

/* Runs the loop until cond() holds, or the deadline passes. */
static int
wait_for(int (*cond)(void), int ms)
{
	uint64_t	 end = mono_ms() + (uint64_t)ms;

	while (!cond()) {
		if (mono_ms() > end)
			return -1;
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
	return 0;
}

static int c_ready(void) { return db_ready(db); }
static int c_notready(void) { return !db_ready(db); }
static int c_idle(void) { return pending == 0; }

static int
run_count(PGconn *c, void *arg, char *err, size_t errlen)
{
	PGresult	*r;
	int		 rc;

	r = db_exec(c, &rc, err, errlen, "SELECT count(*) FROM vservers",
	    0, NULL);
	if (r == NULL)
		return rc;
	*(long *)arg = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	return DB_OK;
}

static int
run_setup(PGconn *c, void *arg, char *err, size_t errlen)
{
	PGresult	*r;
	int		 rc;

	r = db_exec(c, &rc, err, errlen, "CREATE TABLE t_batch (v int)",
	    0, NULL);
	if (r == NULL)
		return rc;
	PQclear(r);
	return DB_OK;
}

static int
run_bad(PGconn *c, void *arg, char *err, size_t errlen)
{
	PGresult	*r;
	int		 rc;

	r = db_exec(c, &rc, err, errlen, "SELECT * FROM no_such_table",
	    0, NULL);
	PQclear(r);
	return r ? DB_OK : rc;
}

static int
run_sleep(PGconn *c, void *arg, char *err, size_t errlen)
{
	PGresult	*r;
	int		 rc;

	r = db_exec(c, &rc, err, errlen, "SELECT pg_sleep(0.1)", 0, NULL);
	if (r == NULL)
		return rc;
	PQclear(r);
	return DB_OK;
}

static size_t	 batch_largest;

static int
batch_run(PGconn *c, void **items, size_t n, char *err, size_t errlen)
{
	PGresult	*r;
	const char	*params[1];
	char		*buf, *p;
	size_t		 i;
	int		 rc;

	if (n > batch_largest)
		batch_largest = n;
	if ((buf = malloc(n * 12 + 3)) == NULL)
		return DB_ERR;
	p = buf;
	*p++ = '{';
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%d", i ? "," : "", *(int *)items[i]);
	*p++ = '}';
	*p = '\0';
	params[0] = buf;
	if ((rc = db_begin(c, err, errlen)) != DB_OK) {
		free(buf);
		return rc;
	}
	r = db_exec(c, &rc, err, errlen,
	    "INSERT INTO t_batch SELECT unnest($1::int[])", 1, params);
	free(buf);
	if (r == NULL) {
		db_rollback(c);
		return rc;
	}
	PQclear(r);
	return db_commit(c, err, errlen);
}

static const struct db_batch_class batch_cls = { "t_batch", batch_run, 100 };

static void
t_migrate(void)
{
	PGconn		*c;
	PGresult	*r;
	char		 err[512];

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	CHECK(db_migrate(c, err, sizeof(err)) == 0);
	/* Again: nothing to do, still fine. */
	CHECK(db_migrate(c, err, sizeof(err)) == 0);
	r = PQexec(c, "SELECT count(*), max(version) FROM schema_migrations");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
	CHECK(atol(PQgetvalue(r, 0, 0)) == (long)migrations_count);
	PQclear(r);

	/* A schema newer than this binary is refused, and left alone. */
	PQclear(PQexec(c, "INSERT INTO schema_migrations (version, name) "
	    "VALUES (9999, '9999_future')"));
	CHECK(db_migrate(c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "9999") != NULL);
	CHECK(PQtransactionStatus(c) == PQTRANS_IDLE);
	PQclear(PQexec(c, "DELETE FROM schema_migrations WHERE "
	    "version = 9999"));
	PQfinish(c);
}

/* A statement on c whose result is not wanted, only its success. */
static void
ok_exec(PGconn *c, const char *sql)
{
	PGresult	*r = PQexec(c, sql);
	int		 st = PQresultStatus(r);

	CHECK(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

static long
count_of(const char *sql)
{
	PGconn		*c = PQconnectdb(conninfo);
	PGresult	*r = PQexec(c, sql);
	long		 n = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return n;
}

/* A child link to the server peer, named name: its id. */
static int64_t
child_link(PGconn *c, const char *name, const char *peer)
{
	char	 sql[256];

	snprintf(sql, sizeof(sql), "INSERT INTO hier_links (role, name, "
	    "peer_uuid) VALUES ('child', '%s', '%s')", name, peer);
	ok_exec(c, sql);
	snprintf(sql, sizeof(sql), "SELECT id FROM hier_links WHERE name = "
	    "'%s'", name);
	return count_of(sql);
}

/*
 * A COMMIT that fails because the connection went (PostgreSQL stopping)
 * did not commit, and the job must not say it did: a server link that
 * took it for applied acknowledged a batch that was rolled back, and its
 * sender compacted the batch away.  A deferred trigger that ends its own
 * backend makes COMMIT fail just so.
 */
static void
t_commit_lost(void)
{
	static const char peer[] = "1b2c3d4e-0000-4000-8000-00000000c0de";
	struct qh_apply	 q;
	PGconn		*c;
	char		 err[512], recs[512];

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	ok_exec(c, "CREATE FUNCTION t_die() RETURNS trigger LANGUAGE plpgsql "
	    "AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); "
	    "RETURN NULL; END $$");
	ok_exec(c, "CREATE CONSTRAINT TRIGGER t_die AFTER INSERT ON "
	    "hier_servers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
	    "EXECUTE FUNCTION t_die()");

	memset(&q, 0, sizeof(q));
	q.kind = QH_BATCH;
	q.link = child_link(c, "t-lost", peer);
	q.last = 7;
	snprintf(recs, sizeof(recs), "[{\"s\":7,\"k\":\"server\","
	    "\"op\":\"u\",\"id\":\"%s/server\",\"o\":\"%s\",\"v\":7,"
	    "\"d\":{\"name\":\"t-lost\",\"level\":1}}]", peer, peer);
	q.recs = recs;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_EDOWN);
	q.recs = NULL;
	PQfinish(c);
	/* Nothing of it is there, and the cursor did not move. */
	CHECK(count_of("SELECT count(*) FROM hier_servers") == 0);
	CHECK(count_of("SELECT rx_seq FROM hier_links "
	    "WHERE name = 't-lost'") == 0);

	c = PQconnectdb(conninfo);
	ok_exec(c, "DROP TRIGGER t_die ON hier_servers");
	ok_exec(c, "DROP FUNCTION t_die()");
	ok_exec(c, "DELETE FROM hier_links WHERE name = 't-lost'");
	PQfinish(c);
}

/* Frees what a read returned, for the next. */
static void
read_reset(struct qh_read *r)
{
	size_t	i;

	for (i = 0; i < r->nrecs; i++)
		free(r->recs[i]);
	free(r->recs);
	r->recs = NULL;
	r->nrecs = 0;
}

/* The "s" and "id" of a record read back. */
static void
rec_fields(const char *rec, long long *s, char *id, size_t idlen)
{
	json_error_t	 je;
	json_t		*o = json_loads(rec, 0, &je);

	CHECK(o != NULL);
	*s = json_integer_value(json_object_get(o, "s"));
	snprintf(id, idlen, "%s",
	    json_string_value(json_object_get(o, "id")) ?: "");
	json_decref(o);
}

/*
 * A middle server relays a child's stream batch as one outbox row: the
 * mirrors' triggers write nothing for it, the row owns one sequence number
 * per record, and a read may stop inside it (the batch limit) and go on
 * from there.  Changes of its own go in batches of their own.
 */
/*
 * Appends an event record of origin peer to the JSON array being built in
 * buf (off: its length so far, 1 after the "["); returns the new length.
 */
static size_t
add_event(char *buf, size_t len, size_t off, const char *peer, size_t s,
    size_t id, size_t v, const char *d)
{
	return off + (size_t)snprintf(buf + off, len - off, "%s{\"s\":%zu,"
	    "\"k\":\"event\",\"op\":\"u\",\"id\":\"%s/event/%zu\","
	    "\"o\":\"%s\",\"v\":%zu,\"d\":%s}", off > 1 ? "," : "", s, peer,
	    id, peer, v, d);
}

static void
t_relay(void)
{
	static const char peer[] = "1b2c3d4e-0000-4000-8000-0000000be1a7";
	struct qh_apply	 q;
	struct qh_read	 r;
	PGconn		*c;
	char		 err[512], sql[2048], recs[2048], id[128], want[128];
	char		 d[64];
	long		 first, end, parent;
	long long	 s;
	size_t		 i, off, bigsz;
	char		*big;

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	ok_exec(c, "INSERT INTO hier_links (role, name) VALUES ('parent', "
	    "'t-up')");
	/* One change of this server's own before the batch. */
	ok_exec(c, "SELECT hier_log('u', 'server', 'u', hier_me() || "
	    "'/server', NULL)");
	parent = count_of("SELECT id FROM hier_links WHERE role = 'parent'");

	memset(&q, 0, sizeof(q));
	q.kind = QH_BATCH;
	q.link = child_link(c, "t-relay", peer);
	q.last = 15;
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	for (i = 0; i < 5; i++) {
		snprintf(d, sizeof(d), "{\"severity\":\"warning\","
		    "\"text\":\"e%zu\"}", i + 1);
		off = add_event(recs, sizeof(recs), off, peer, 11 + i, i + 1,
		    11 + i, d);
	}
	snprintf(recs + off, sizeof(recs) - off, "]");
	q.recs = recs;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	q.recs = NULL;
	CHECK(q.n == 5);
	CHECK(count_of("SELECT count(*) FROM hier_events") == 5);
	/* One row for the five records, none written by the triggers. */
	CHECK(count_of("SELECT count(*) FROM hier_changes WHERE dir = 'u' "
	    "AND kind = 'event'") == 0);
	CHECK(count_of("SELECT n FROM hier_changes WHERE kind = 'relay'")
	    == 5);
	end = count_of("SELECT seq FROM hier_changes WHERE kind = 'relay'");
	first = end - 4;
	/* The next number is past the row's range. */
	ok_exec(c, "SELECT hier_log('u', 'server', 'u', hier_me() || "
	    "'/server', NULL)");
	CHECK(count_of("SELECT max(seq) FROM hier_changes") == end + 1);

	/* The change before the batch comes alone. */
	memset(&r, 0, sizeof(r));
	r.link = parent;
	r.after = 0;
	r.limit = 3;
	r.max_bytes = 1 << 20;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 1 && r.last == (uint64_t)first - 1 && r.more);
	read_reset(&r);

	/* The batch, cut at the limit: the cursor stops inside it. */
	r.after = r.last;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 3 && r.last == (uint64_t)first + 2 && r.more);
	for (i = 0; i < r.nrecs; i++) {
		rec_fields(r.recs[i], &s, id, sizeof(id));
		snprintf(want, sizeof(want), "%s/event/%zu", peer, i + 1);
		CHECK(s == first + (long long)i && strcmp(id, want) == 0);
	}
	read_reset(&r);
	/* ... and goes on from there, up to the end of its range. */
	r.after = r.last;
	r.limit = 1000;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 2 && r.last == (uint64_t)end && r.more);
	rec_fields(r.recs[1], &s, id, sizeof(id));
	snprintf(want, sizeof(want), "%s/event/5", peer);
	CHECK(s == end && strcmp(id, want) == 0);
	read_reset(&r);
	/* The change after it, alone again; then nothing more. */
	r.after = r.last;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 1 && r.last == (uint64_t)end + 1 && !r.more);
	read_reset(&r);

	/* Batches applied together are relayed in rows: 5 records, 2 at most
	 * a row, make rows of 2, 2 and 1, one range.  A read takes rows one
	 * after another up to its limit, from inside one if it must. */
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	for (i = 0; i < 5; i++)
		off = add_event(recs, sizeof(recs), off, peer, 21 + i, 21 + i,
		    21 + i, "{}");
	snprintf(recs + off, sizeof(recs) - off, "]");
	q.recs = recs;
	q.last = 25;
	q.relay_max = 2;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	q.recs = NULL;
	q.relay_max = 0;
	CHECK(count_of("SELECT count(*) FROM hier_events") == 10);
	CHECK(count_of("SELECT (array_agg(n ORDER BY seq))[1] * 100 + "
	    "(array_agg(n ORDER BY seq))[2] * 10 + (array_agg(n ORDER BY "
	    "seq))[3] FROM hier_changes WHERE kind = 'relay' AND seq > "
	    "(SELECT max(seq) FROM hier_changes WHERE kind = 'server')")
	    == 221);
	r.after = r.last;
	r.limit = 3;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 3 && r.last == (uint64_t)end + 4 && r.more);
	for (i = 0; i < r.nrecs; i++) {
		rec_fields(r.recs[i], &s, id, sizeof(id));
		snprintf(want, sizeof(want), "%s/event/%zu", peer, 21 + i);
		CHECK(s == end + 2 + (long long)i && strcmp(id, want) == 0);
	}
	read_reset(&r);
	r.after = r.last;
	r.limit = 1000;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 2 && r.last == (uint64_t)end + 6 && !r.more);
	for (i = 0; i < r.nrecs; i++) {
		rec_fields(r.recs[i], &s, id, sizeof(id));
		snprintf(want, sizeof(want), "%s/event/%zu", peer, 24 + i);
		CHECK(s == end + 5 + (long long)i && strcmp(id, want) == 0);
	}
	read_reset(&r);

	/* Events met again (a snapshot's): the plain INSERT fails on the
	 * first, and the upsert applies the newer versions, the older not. */
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	for (i = 0; i < 3; i++)
		off = add_event(recs, sizeof(recs), off, peer, 0, i + 1,
		    i < 2 ? 100 + i : 0, "{\"text\":\"again\"}");
	snprintf(recs + off, sizeof(recs) - off, "]");
	q.kind = QH_SNAP_CHUNK;
	q.recs = recs;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	q.recs = NULL;
	q.kind = QH_BATCH;
	CHECK(count_of("SELECT count(*) FROM hier_events") == 10);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM hier_events WHERE "
	    "text = 'again' AND version >= 100 AND oid IN ('%s/event/1', "
	    "'%s/event/2')", peer, peer);
	CHECK(count_of(sql) == 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM hier_events WHERE "
	    "text = 'e3' AND oid = '%s/event/3'", peer);
	CHECK(count_of(sql) == 1);

	/* Through qh_apply_run: one record past HIER_BATCH_RECORDS makes a
	 * full row and a row of one. */
	bigsz = (HIER_BATCH_RECORDS + 1) * 256 + 2;
	big = malloc(bigsz);
	CHECK(big != NULL);
	off = (size_t)snprintf(big, bigsz, "[");
	for (i = 0; i <= HIER_BATCH_RECORDS; i++)
		off = add_event(big, bigsz, off, peer, 31 + i, 31 + i, 31 + i,
		    "{}");
	snprintf(big + off, bigsz - off, "]");
	q.last = 31 + HIER_BATCH_RECORDS;
	q.recs = big;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	q.recs = NULL;
	free(big);
	CHECK(q.n == HIER_BATCH_RECORDS + 1);
	CHECK(count_of("SELECT (array_agg(n ORDER BY seq))[1] * 10 + "
	    "(array_agg(n ORDER BY seq))[2] FROM (SELECT seq, n FROM "
	    "hier_changes WHERE kind = 'relay' ORDER BY seq DESC LIMIT 2) x")
	    == HIER_BATCH_RECORDS * 10 + 1);
	PQfinish(c);
	c = PQconnectdb(conninfo);
	ok_exec(c, "DELETE FROM hier_links WHERE name IN ('t-relay', "
	    "'t-up')");
	ok_exec(c, "DELETE FROM hier_changes");
	PQfinish(c);
}

/*
 * Events' times: those canopyd reads itself (common/hrec.c, hrec_time)
 * must be the times PostgreSQL reads from the same text, and the others
 * are still PostgreSQL's to read, or to refuse.
 */
static void
t_event_times(void)
{
	static const char peer[] = "1b2c3d4e-0000-4000-8000-00000000717e";
	static const char *const times[] = {
		"2026-11-21T17:53:00.123456+00:00", "2026-11-21T17:53:00Z",
		"2026-11-21T17:53:00.5-09:30", "1900-03-01T00:00:00+00:17:30",
		"2024-02-29T23:59:59.999999+15:59:59", "0099-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999Z",
		/* read by PostgreSQL */
		"2026-11-21T17:53:00.1234567Z", "2026-11-21 17:53:00+02",
		"2026-11-21T17:53:00", "infinity", "-infinity",
		"20261121T175300Z", "2026-11-21T17:53:00 Europe/Amsterdam",
	};
	const size_t	 nt = sizeof(times) / sizeof(times[0]);
	struct qh_apply	 q;
	PGconn		*c;
	char		 err[512], sql[512], recs[8192], d[128];
	long		 got;
	size_t		 i, off;

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	memset(&q, 0, sizeof(q));
	q.kind = QH_SNAP_CHUNK;
	q.link = child_link(c, "t-times", peer);
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	for (i = 0; i < nt; i++) {
		snprintf(d, sizeof(d), "{\"time\":\"%s\"}", times[i]);
		off = add_event(recs, sizeof(recs), off, peer, 0, i, 1, d);
	}
	off = add_event(recs, sizeof(recs), off, peer, 0, nt, 1, "{}");
	snprintf(recs + off, sizeof(recs) - off, "]");
	q.recs = recs;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	for (i = 0; i < nt; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM hier_events "
		    "WHERE oid = '%s/event/%zu' AND time = '%s'::timestamptz",
		    peer, i, times[i]);
		got = count_of(sql);
		CHECK(got == 1);
		if (got != 1)
			fprintf(stderr, "time %s: not as PostgreSQL reads it\n",
			    times[i]);
	}
	/* No time: the time it arrived. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM hier_events WHERE "
	    "oid = '%s/event/%zu' AND time > now() - interval '1 hour'",
	    peer, nt);
	CHECK(count_of(sql) == 1);

	/* A day February 2023 has not: refused as before, nothing applied. */
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	off = add_event(recs, sizeof(recs), off, peer, 0, 100, 1,
	    "{\"time\":\"2026-11-21T17:53:00Z\"}");
	off = add_event(recs, sizeof(recs), off, peer, 0, 101, 1,
	    "{\"time\":\"2023-02-29T00:00:00Z\"}");
	snprintf(recs + off, sizeof(recs) - off, "]");
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_ERR && q.bad);
	CHECK(strstr(err, "out of range") != NULL);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM hier_events WHERE "
	    "oid IN ('%s/event/100', '%s/event/101')", peer, peer);
	CHECK(count_of(sql) == 0);
	q.recs = NULL;
	ok_exec(c, "DELETE FROM hier_links WHERE name = 't-times'");
	PQfinish(c);
}

/*
 * A read's records come in the order of their numbers whatever order
 * hier_read gives them in (deletions first, then kind by kind), and a
 * read stops at max_bytes after its first record, on both paths (a
 * relayed row's, hier_read_relay).
 */
static void
t_read_order(void)
{
	static const char peer[] = "1b2c3d4e-0000-4000-8000-0000000041de";
	struct qh_apply	 q;
	struct qh_read	 r;
	PGconn		*c;
	char		 err[512], recs[2048], id[128];
	long		 first;
	long long	 s, s0;
	size_t		 off, i;

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	ok_exec(c, "INSERT INTO hier_links (role, name) VALUES ('parent', "
	    "'t-up')");
	memset(&r, 0, sizeof(r));
	r.link = count_of("SELECT id FROM hier_links WHERE role = 'parent'");
	/* An update, then a deletion: hier_read gives the deletion first. */
	ok_exec(c, "SELECT hier_log('u', 'server', 'u', hier_me() || "
	    "'/server', NULL)");
	ok_exec(c, "SELECT hier_log('u', 'group', 'd', hier_me() || "
	    "'/group/999', NULL)");
	first = count_of("SELECT min(seq) FROM hier_changes WHERE dir = 'u'");
	r.after = (uint64_t)first - 1;
	r.limit = 1000;
	r.max_bytes = 1 << 20;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 2 && r.last == (uint64_t)first + 1 && !r.more);
	for (i = 0; i < r.nrecs && i < 2; i++) {
		rec_fields(r.recs[i], &s, id, sizeof(id));
		CHECK(s == first + (long long)i);
	}
	read_reset(&r);
	/* One byte at most: the first record alone, and more to come. */
	r.max_bytes = 1;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 1 && r.last == (uint64_t)first && r.more);
	read_reset(&r);

	/* The same on a relayed row. */
	memset(&q, 0, sizeof(q));
	q.kind = QH_BATCH;
	q.link = child_link(c, "t-order", peer);
	q.last = 3;
	off = (size_t)snprintf(recs, sizeof(recs), "[");
	for (i = 0; i < 3; i++)
		off = add_event(recs, sizeof(recs), off, peer, 1 + i, 1 + i,
		    1, "{}");
	snprintf(recs + off, sizeof(recs) - off, "]");
	q.recs = recs;
	CHECK(qh_apply_run(c, &q, err, sizeof(err)) == DB_OK);
	r.after = (uint64_t)first + 1;
	r.max_bytes = 1;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 1 && r.last == (uint64_t)first + 2 && r.more);
	rec_fields(r.recs[0], &s0, id, sizeof(id));
	CHECK(s0 == first + 2 && strstr(id, "/event/1") != NULL);
	read_reset(&r);
	r.after = r.last;
	r.max_bytes = 1 << 20;
	CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
	CHECK(r.nrecs == 2 && r.last == (uint64_t)first + 4 && !r.more);
	for (i = 0; i < r.nrecs && i < 2; i++) {
		rec_fields(r.recs[i], &s, id, sizeof(id));
		CHECK(s == s0 + 1 + (long long)i);
	}
	read_reset(&r);
	PQfinish(c);
	c = PQconnectdb(conninfo);
	ok_exec(c, "DELETE FROM hier_links WHERE name IN ('t-order', "
	    "'t-up')");
	ok_exec(c, "DELETE FROM hier_changes");
	PQfinish(c);
}

/*
 * A server's own events go into the outbox as their records, in rows of
 * HIER_BATCH_RECORDS (016): read back numbered, each one's version its
 * number, in the order of the events' ids, the fields escaped; those
 * below the severity sent up stay out.
 */
static void
t_local_events(void)
{
	struct qh_read	 r;
	PGconn		*c;
	PGresult	*res;
	json_t		*o, *d;
	char		 err[512], me[64], want[128];
	const char	*k;
	long		 id0;
	size_t		 i, got = 0;
	int		 ok = 1;

	CHECK(count_of("SELECT hier_batch_records()") == HIER_BATCH_RECORDS);
	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	ok_exec(c, "INSERT INTO hier_links (role, name) VALUES ('parent', "
	    "'t-up')");
	ok_exec(c, "SET canopy.vs_id = 'system'");
	ok_exec(c, "SET TimeZone = 'UTC'");
	/* One row and a record past it; then two events, one sent. */
	ok_exec(c, "INSERT INTO events (vs_id, severity, type, time, text) "
	    "SELECT 0, 'warning', 't\"q', '2026-11-21T17:53:00Z', "
	    "E'line\\n' || g FROM generate_series(1, 1001) g");
	ok_exec(c, "INSERT INTO events (vs_id, severity, type, time, text) "
	    "VALUES (0, 'info', 'low', now(), 'below'), (0, 'error', 'high', "
	    "now(), 'sent')");
	CHECK(count_of("SELECT count(*) FROM hier_changes WHERE kind = "
	    "'event'") == 3);
	CHECK(count_of("SELECT sum(n) FROM hier_changes WHERE kind = "
	    "'event'") == HIER_BATCH_RECORDS + 2);
	id0 = count_of("SELECT min(id) FROM events");
	res = PQexec(c, "SELECT hier_me()");
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
	snprintf(me, sizeof(me), "%s", PQresultStatus(res) ==
	    PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	memset(&r, 0, sizeof(r));
	r.link = count_of("SELECT id FROM hier_links WHERE role = 'parent'");
	r.after = (uint64_t)count_of("SELECT min(seq - n) FROM hier_changes "
	    "WHERE kind = 'event'");
	r.limit = HIER_BATCH_RECORDS;
	r.max_bytes = 1 << 24;
	for (;;) {
		CHECK(qh_read_run(c, &r, err, sizeof(err)) == DB_OK);
		for (i = 0; i < r.nrecs; i++, got++) {
			o = json_loads(r.recs[i], 0, NULL);
			d = json_object_get(o, "d");
			snprintf(want, sizeof(want), "%s/%ld", me,
			    id0 + (long)got + (got == HIER_BATCH_RECORDS + 1));
			k = json_string_value(json_object_get(o, "id"));
			ok = ok && o != NULL && k != NULL &&
			    strcmp(k, want) == 0 &&
			    json_integer_value(json_object_get(o, "s")) ==
			    json_integer_value(json_object_get(o, "v")) &&
			    json_integer_value(json_object_get(o, "s")) ==
			    (json_int_t)(r.after + 1 + i);
			if (got < HIER_BATCH_RECORDS + 1)
				ok = ok && strcmp(json_string_value(
				    json_object_get(d, "type")) ?: "",
				    "t\"q") == 0 && strncmp(json_string_value(
				    json_object_get(d, "text")) ?: "", "line\n",
				    5) == 0 && json_is_null(json_object_get(d,
				    "device")) && strcmp(json_string_value(
				    json_object_get(d, "time")) ?: "",
				    "2026-11-21T17:53:00+00:00") == 0;
			else
				ok = ok && strcmp(json_string_value(
				    json_object_get(d, "severity")) ?: "",
				    "error") == 0;
			json_decref(o);
		}
		read_reset(&r);
		if (!r.more)
			break;
		r.after = r.last;
	}
	CHECK(ok);
	CHECK(got == HIER_BATCH_RECORDS + 2);
	PQfinish(c);
	c = PQconnectdb(conninfo);
	ok_exec(c, "DELETE FROM hier_links WHERE name = 't-up'");
	ok_exec(c, "DELETE FROM hier_changes");
	ok_exec(c, "SET canopy.vs_id = 'system'");
	ok_exec(c, "DELETE FROM events");
	PQfinish(c);
}

/* db_tx's body: a row, then a function that fails while told to. */
static int
flaky_tx(PGconn *c, void *arg, char *err, size_t errlen)
{
	const char	*p[1] = { arg };
	PGresult	*res;
	int		 rc;

	if ((res = db_exec(c, &rc, err, errlen, "INSERT INTO t_flaky_done "
	    "VALUES (1)", 0, NULL)) == NULL)
		return rc;
	PQclear(res);
	if ((res = db_exec(c, &rc, err, errlen, "SELECT t_flaky($1)", 1,
	    p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}

/*
 * db_tx tries a transaction again after a deadlock (or the like), up to
 * DB_TX_ATTEMPTS times in all, and not after an error of the statement.
 */
static void
t_tx_retry(void)
{
	PGconn	*c;
	char	 err[512], fails[32];

	c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	ok_exec(c, "CREATE SEQUENCE t_flaky_n");
	ok_exec(c, "CREATE TABLE t_flaky_done (x int)");
	ok_exec(c, "CREATE FUNCTION t_flaky(how text) RETURNS void "
	    "LANGUAGE plpgsql AS $$ BEGIN IF how = 'bad' THEN RAISE "
	    "EXCEPTION 'bad input' USING ERRCODE = '22023'; END IF; "
	    "IF nextval('t_flaky_n') <= how::int THEN RAISE EXCEPTION "
	    "'deadlock, made up' USING ERRCODE = '40P01'; END IF; END $$");

	/* Fails on all but the last attempt: done, once. */
	snprintf(fails, sizeof(fails), "%d", DB_TX_ATTEMPTS - 1);
	CHECK(db_tx(c, flaky_tx, fails, err, sizeof(err)) == DB_OK);
	CHECK(count_of("SELECT count(*) FROM t_flaky_done") == 1);
	CHECK(count_of("SELECT last_value FROM t_flaky_n") == DB_TX_ATTEMPTS);

	/* Fails every time: transient, nothing written, no more attempts. */
	ok_exec(c, "SELECT setval('t_flaky_n', 1, false)");
	snprintf(fails, sizeof(fails), "%d", DB_TX_ATTEMPTS);
	CHECK(db_tx(c, flaky_tx, fails, err, sizeof(err)) == DB_EDOWN);
	CHECK(strstr(err, "deadlock, made up") != NULL);
	CHECK(count_of("SELECT count(*) FROM t_flaky_done") == 1);
	CHECK(count_of("SELECT last_value FROM t_flaky_n") == DB_TX_ATTEMPTS);
	CHECK(PQtransactionStatus(c) == PQTRANS_IDLE);

	/* Bad input is not tried again. */
	ok_exec(c, "SELECT setval('t_flaky_n', 1, false)");
	CHECK(db_tx(c, flaky_tx, "bad", err, sizeof(err)) == DB_ERR);
	CHECK(count_of("SELECT count(*) FROM t_flaky_done") == 1);
	CHECK(count_of("SELECT count(*) FROM t_flaky_n WHERE is_called")
	    == 0);

	ok_exec(c, "DROP FUNCTION t_flaky(text)");
	ok_exec(c, "DROP TABLE t_flaky_done");
	ok_exec(c, "DROP SEQUENCE t_flaky_n");
	PQfinish(c);
}

int
main(void)
{
	static int	 vals[5000];
	struct db_stats	 st;
	long		 cnt = 0;
	int		 i;

	log_init("t_db", LOG_LVL_WARN, 0);
	if (pg_setup() == -1) {
		printf("t_db.c: skipped (cannot start PostgreSQL)\n");
		pg_teardown();
		return 0;
	}
	t_migrate();
	t_commit_lost();
	t_relay();
	t_event_times();
	t_read_order();
	t_local_events();
	t_tx_retry();

	evthread_use_pthreads();
	base = event_base_new();
	db = db_start(base, conninfo, 3);
	CHECK(db != NULL);
	CHECK(wait_for(c_ready, 15000) == 0);

	pending = 2;
	CHECK(db_submit(db, run_count, done_cb, &cnt) == 0);
	CHECK(db_submit(db, run_setup, done_cb, NULL) == 0);
	CHECK(wait_for(c_idle, 10000) == 0);
	CHECK(cnt == 1 && nok == 2 && nerr == 0);

	/* A statement error is DB_ERR, and the connection stays usable. */
	nok = nerr = 0;
	pending = 2;
	CHECK(db_submit(db, run_bad, done_cb, NULL) == 0);
	CHECK(db_submit(db, run_count, done_cb, &cnt) == 0);
	CHECK(wait_for(c_idle, 10000) == 0);
	CHECK(nok == 1 && nerr == 1 && nedown == 0);
	nerr = 0;

	/* Thousands of items become far fewer transactions. */
	nok = 0;
	for (i = 0; i < 5000; i++) {
		vals[i] = i;
		pending++;
		if (db_submit_batch(db, &batch_cls, &vals[i], done_cb) == -1)
			pending--;
	}
	CHECK(wait_for(c_idle, 30000) == 0);
	CHECK(nok == 5000);
	db_get_stats(db, &st);
	CHECK(st.batch_items == 5000);
	CHECK(st.batches < 1000);
	CHECK(batch_largest <= 100);

	/* PostgreSQL goes away: jobs fail with DB_EDOWN, quickly. */
	CHECK(pg_ctl_stop() == 0);
	nok = nedown = 0;
	pending = 5;
	for (i = 0; i < 5; i++)
		CHECK(db_submit(db, run_count, done_cb, &cnt) == 0);
	CHECK(wait_for(c_idle, 10000) == 0);
	CHECK(nedown == 5 && nok == 0);
	CHECK(wait_for(c_notready, 15000) == 0);
	nedown = 0;
	pending = 1;
	CHECK(db_submit(db, run_count, done_cb, &cnt) == 0);
	CHECK(wait_for(c_idle, 1000) == 0);
	CHECK(nedown == 1);

	/* And comes back: the workers reconnect on their own. */
	CHECK(pg_ctl_start() == 0);
	CHECK(wait_for(c_ready, 30000) == 0);
	nok = nedown = 0;
	pending = 1;
	CHECK(db_submit(db, run_count, done_cb, &cnt) == 0);
	CHECK(wait_for(c_idle, 10000) == 0);
	CHECK(nok == 1);

	/* db_stop finishes what is queued and delivers it on this thread. */
	nok = 0;
	pending = 6;
	for (i = 0; i < 6; i++)
		CHECK(db_submit(db, run_sleep, done_cb, NULL) == 0);
	db_stop(db);
	CHECK(pending == 0 && nok == 6);

	event_base_free(base);
	pg_teardown();
	TEST_DONE();
}
