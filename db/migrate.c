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
 * Schema migrations.  Every migration this binary carries that the database
 * has not seen is applied in one transaction, so a failure leaves the schema
 * as it was.  A transaction-scoped advisory lock serialises servers (and
 * workers) that start at the same time against one database.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/migrations.h"
#include "log.h"

/* 'canopy' in ASCII: the advisory lock key of schema migrations. */
#define DB_MIGRATE_LOCK	"109270115774585"

static int
migrate_exec(PGconn *conn, const char *what, const char *sql, char *err,
    size_t errlen)
{
	PGresult	*res;
	int		 st;

	res = PQexec(conn, sql);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = res && *PQresultErrorMessage(res) ?
		    PQresultErrorMessage(res) : PQerrorMessage(conn);
		size_t n;

		snprintf(err, errlen, "%s: %s", what, msg);
		n = strlen(err);
		while (n > 0 && err[n - 1] == '\n')
			err[--n] = '\0';
		for (; n > 0; n--)
			if (err[n - 1] == '\n' || err[n - 1] == '\t')
				err[n - 1] = ' ';
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
db_migrate(PGconn *conn, char *err, size_t errlen)
{
	PGresult	*res;
	const char	*params[2];
	char		 vbuf[16], what[128];
	long		 have;
	int		 known = 0, rc, applied = 0;
	size_t		 i;

	for (i = 0; i < migrations_count; i++)
		if (migrations[i].version > known)
			known = migrations[i].version;

	if (migrate_exec(conn, "BEGIN", "BEGIN", err, errlen) == -1)
		return -1;
	/* Quiet "already exists, skipping" notices on every start. */
	if (migrate_exec(conn, "client_min_messages",
	    "SET LOCAL client_min_messages = warning", err, errlen) == -1 ||
	    migrate_exec(conn, "migration lock",
	    "SELECT pg_advisory_xact_lock(" DB_MIGRATE_LOCK ")",
	    err, errlen) == -1 ||
	    migrate_exec(conn, "schema_migrations",
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " version integer PRIMARY KEY,"
	    " name text NOT NULL,"
	    " applied timestamptz NOT NULL DEFAULT now())",
	    err, errlen) == -1)
		goto fail;

	res = db_exec(conn, &rc, err, errlen,
	    "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
	if (res == NULL)
		goto fail;
	have = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	if (have > known) {
		snprintf(err, errlen, "the database schema is version %ld but "
		    "this canopyd knows only up to %d: run a newer canopyd "
		    "(or restore the matching database)", have, known);
		goto fail;
	}

	for (i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];

		if (m->version <= have)
			continue;
		snprintf(what, sizeof(what), "migration %s", m->name);
		if (migrate_exec(conn, what, m->sql, err, errlen) == -1)
			goto fail;
		snprintf(vbuf, sizeof(vbuf), "%d", m->version);
		params[0] = vbuf;
		params[1] = m->name;
		res = db_exec(conn, &rc, err, errlen,
		    "INSERT INTO schema_migrations (version, name) "
		    "VALUES ($1::integer, $2)", 2, params);
		if (res == NULL)
			goto fail;
		PQclear(res);
		applied++;
	}

	if (db_commit(conn, err, errlen) != DB_OK)
		goto fail;
	if (applied > 0)
		log_info("db: schema migrated from version %ld to %d "
		    "(%d migrations)", have, known, applied);
	else
		log_debug("db: schema is at version %ld", have);
	return 0;

fail:
	db_rollback(conn);
	return -1;
}
