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

#ifndef CANOPY_SQL_H
#define CANOPY_SQL_H

/* SQL fragments shared by the db/q_*.c modules. */

/* Timestamps leave the database as ISO-8601 UTC text. */
#define TS(col)	"to_char(" col " AT TIME ZONE 'UTC', " \
		"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The path of every group of a virtual server ($1), as CTE gp. */
#define GROUP_PATHS							\
	"gp(id, parent, name, path) AS ("				\
	" SELECT id, parent, name, '/' || name FROM groups"		\
	"  WHERE vs_id = $1 AND parent IS NULL"				\
	" UNION ALL"							\
	" SELECT g.id, g.parent, g.name, gp.path || '/' || g.name"	\
	"  FROM groups g JOIN gp ON g.parent = gp.id WHERE g.vs_id = $1)"

/* The subtrees of the scope groups ($N, a bigint[]), as CTE scope. */
#define SCOPE_TREE(n)							\
	"scope(id) AS ("						\
	" SELECT id FROM groups WHERE vs_id = $1 AND id = ANY(" n "::bigint[])" \
	" UNION ALL"							\
	" SELECT g.id FROM groups g JOIN scope s ON g.parent = s.id"	\
	"  WHERE g.vs_id = $1)"

#endif
