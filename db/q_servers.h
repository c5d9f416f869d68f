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

#ifndef CANOPY_Q_SERVERS_H
#define CANOPY_Q_SERVERS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/*
 * The server tree as the API shows it (db/migrations/009_hierarchy.sql):
 * children's links and tokens, the tree of servers below, status counts.
 * Everything reads the local mirrors; nothing asks another server.  The
 * tables belong to main: the caller runs these in main (vs 0) or in
 * db_system mode.  DB_OK, DB_ERR, DB_EDOWN with err set, or QS_*.
 */
#define QS_EXISTS	1	/* a child link of that name exists */
#define QS_NOTFOUND	2

/*
 * Creates the child link 'name' placed at group (0: none, i.e. Managed
 * devices) and its one-time registration token (token_hash: sha256 hex),
 * valid ttl_s.  *expires: ISO-8601 UTC.
 */
int	 qs_child_create(PGconn *, const char *name, int64_t group,
	    const char *token_hash, int ttl_s, const char *created_by,
	    int64_t *link_id, char expires[32], char *err, size_t errlen);
/* Deletes the child link; its mirrors and tokens cascade. */
int	 qs_child_delete(PGconn *, const char *name, int64_t *link_id,
	    char *err, size_t errlen);
/*
 * GET /servers: this server (self_name when hier_self has none), its
 * parent link, and every server below, recursively.  Needs db_system mode
 * (it counts the devices of every virtual server).
 */
int	 qs_tree(PGconn *, const char *self_name, json_t **out, char *err,
	    size_t errlen);
/*
 * GET /devices/{origin}/{id}: the summary of a device mirrored from below
 * (no inventory: that stays on its own server).  QS_NOTFOUND if none.
 */
int	 qs_mirror_device(PGconn *, const char *oid, json_t **out, char *err,
	    size_t errlen);
/*
 * GET /reports/status: {"total","ok","warning","critical","by_server":
 * {name: {...}}}: the devices of vs_id here, and with hierarchy every
 * mirrored device too, by owner server.
 */
int	 qs_status_report(PGconn *, int vs_id, int hierarchy,
	    const char *self_name, json_t **out, char *err, size_t errlen);

#endif
