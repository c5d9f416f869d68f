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

#ifndef CANOPY_Q_VSERVERS_H
#define CANOPY_Q_VSERVERS_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/*
 * Virtual servers (db/migrations/004_vservers.sql).  These statements span
 * tenants: the caller runs them with the connection in db_system mode,
 * inside its own transaction.  DB_OK, DB_ERR or DB_EDOWN with err set, or
 * QV_EXISTS / QV_NOTFOUND / QV_BUSY.
 */
#define QV_EXISTS	1	/* create: the name is taken */
#define QV_NOTFOUND	2
#define QV_BUSY		3	/* delete: it still has devices */

/* Creates it (and, by trigger, its root group and unassigned pool). */
int	 qv_create(PGconn *, const char *name, int *id, char *err,
	    size_t errlen);
/* {"vservers":[{"id","name","devices","created"}]} by name; main first. */
int	 qv_list(PGconn *, json_t **out, char *err, size_t errlen);
/*
 * Deletes it with everything of it, unless it has devices and !force
 * (QV_BUSY, *ndevices set).  "main" is never found here.
 */
int	 qv_delete(PGconn *, const char *name, int force, int *id,
	    long long *ndevices, char *err, size_t errlen);

#endif
