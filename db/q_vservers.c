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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "sql.h"
#include "q_vservers.h"

int
qv_create(PGconn *conn, const char *name, int *id, char *err, size_t errlen)
{
	const char	*p[1] = { name };
	PGresult	*res;
	int		 rc;

	/* A taken name is an answer (409), not a failed transaction. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO vservers (name) VALUES ($1) "
	    "ON CONFLICT (name) DO NOTHING RETURNING id", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0)
		rc = QV_EXISTS;
	else
		*id = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int
qv_list(PGconn *conn, json_t **out, char *err, size_t errlen)
{
	PGresult	*res;
	json_t		*a;
	int		 rc, i, n;

	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT v.id, v.name, (SELECT count(*) FROM devices d "
	    "WHERE d.vs_id = v.id), " TS("v.created") " FROM vservers v "
	    "ORDER BY v.id <> 0, v.name", 0, NULL)) == NULL)
		return rc;
	if ((a = json_array()) == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:i,s:s,s:I,s:s}",
		    "id", atoi(PQgetvalue(res, i, 0)),
		    "name", PQgetvalue(res, i, 1),
		    "devices", (json_int_t)strtoll(PQgetvalue(res, i, 2),
		    NULL, 10),
		    "created", PQgetvalue(res, i, 3)));
	PQclear(res);
	*out = a;
	return DB_OK;
}

int
qv_delete(PGconn *conn, const char *name, int force, int *id,
    long long *ndevices, char *err, size_t errlen)
{
	const char	*p[1] = { name };
	char		 ids[16];
	PGresult	*res;
	int		 rc;

	/* The row lock keeps enrolments into it from racing the count. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT v.id, (SELECT count(*) FROM devices d "
	    "WHERE d.vs_id = v.id) FROM vservers v "
	    "WHERE v.name = $1 AND v.id <> 0 FOR UPDATE", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QV_NOTFOUND;
	}
	*id = atoi(PQgetvalue(res, 0, 0));
	*ndevices = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (*ndevices > 0 && !force)
		return QV_BUSY;
	snprintf(ids, sizeof(ids), "%d", *id);
	p[0] = ids;
	/*
	 * Devices first (they reference groups without a cascade), then
	 * everything else of it cascades from the vservers row.
	 */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM devices WHERE vs_id = $1::integer", 1, p)) == NULL)
		return rc;
	PQclear(res);
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM vservers WHERE id = $1::integer", 1, p)) == NULL)
		return rc;
	PQclear(res);
	return DB_OK;
}
