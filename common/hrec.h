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

#ifndef CANOPY_HREC_H
#define CANOPY_HREC_H

/*
 * The records of a server link's batch (docs/HIERARCHY.md): parsed and
 * checked here, in the receiver's database thread, then handed to
 * PostgreSQL as one column array per field of each kind's mirror
 * (db/q_hier.c).  Whatever needs the database (who owns which origin) is
 * checked there.
 */
#include <stddef.h>
#include <stdint.h>

#include "pgarr.h"

enum hrec_kind_id {
	HK_SERVER, HK_GROUP, HK_DEVICE, HK_EVENT, HK_TASK_RESULT,
	HK_POLICY, HK_TASK, HK_N
};

/* How a field of d becomes a column's text. */
enum hrec_type {
	HREC_TEXT,	/* as d ->> 'key': a string decoded, other values */
			/* as their JSON, null or absent: NULL */
	HREC_OBJ,	/* an object as JSON, anything else NULL */
	HREC_ARR,	/* an array as JSON, anything else NULL */
	HREC_TIME	/* a time, as two columns: a timestamptz when the */
			/* string is in hrec_time()'s form, else its text */
			/* as HREC_TEXT in the next (NULL in the other) */
};

#define HREC_COLS_MAX	12

struct hrec_kind {
	const char	*name;
	int		 up;		/* flows up; otherwise down */
	int		 ncols;
	const char	*cols[HREC_COLS_MAX];	/* keys of d */
	unsigned char	 types[HREC_COLS_MAX];	/* enum hrec_type */
};
extern const struct hrec_kind hrec_kinds[HK_N];

/* A record: its fields decoded, d and the record itself as JSON text. */
struct hrec {
	int64_t		 s;
	int		 kind;		/* enum hrec_kind_id */
	char		 op;		/* 'u' or 'd' */
	const char	*k;
	const char	*id;
	const char	*o;
	int64_t		 v;
	const char	*d;		/* d's text; NULL when absent or null */
	size_t		 dlen;
	int		 dobj;		/* d is an object */
	const char	*raw;		/* the record's text */
	size_t		 rawlen;
	size_t		 cut_from;	/* its "s" member: what a relayed */
	size_t		 cut_to;	/*   copy leaves out */
};

/* What the receiver knows of the batch. */
struct hrec_ctx {
	const char	*me;		/* this server's uuid */
	int		 up;		/* from a child: kinds flowing up */
	int		 stream;	/* a stream batch (else a snapshot's) */
	int64_t		 rx_seq;	/* stream: what was applied already */
	int64_t		 last;		/* stream: the batch's last number */
};

struct hrec_batch {
	char		*arena;		/* the decoded strings */
	size_t		 nchecked;	/* records past rx_seq, all checked */
	struct hrec	*r;		/* of those, the last of each object, */
	size_t		 n;		/*   in the batch's order */
	/* The distinct origins, each with the id of its first record. */
	const char	**origins;
	const char	**origin_ids;
	size_t		 norigins;
	size_t		 nkind[HK_N][2];	/* [kind][op == 'd'] */
};

/*
 * Parses text (a JSON array of records; RFC 8259, UTF-8, no \u0000,
 * HIER_JSON_DEPTH levels at most) and checks each record's shape, the
 * stream's order and who may send what; keeps the last record of each
 * object.  The records point into text, which must outlive the batch.  -1
 * with a message naming the first bad record; -2 out of memory.
 */
int	 hrec_parse(const char *text, size_t len, const struct hrec_ctx *,
	    struct hrec_batch *, char *err, size_t errlen);
void	 hrec_batch_free(struct hrec_batch *);

/* The arrays a kind's columns take (an HREC_TIME two), initialised with
 * their element types; hrec_add_cols() then appends a value to each. */
int	 hrec_cols_init(struct pgarr *, int kind);
void	 hrec_add_cols(struct pgarr *, const struct hrec *);
/* The value of d's key as a text column (d ->> key). */
void	 hrec_add_field(struct pgarr *, const struct hrec *, const char *key);

/*
 * A time in the form PostgreSQL's JSON gives a timestamptz, which is RFC
 * 3339's: YYYY-MM-DDTHH:MM:SS, 1 to 6 digits of fraction or none, then Z
 * or an offset +HH:MM (+HH:MM:SS).  *us: microseconds since 2000-01-01
 * UTC, as PostgreSQL reads the same text.  -1 for anything else (another
 * form, a day the month has not, year 0): left to PostgreSQL to read or
 * to refuse, as before.
 */
int	 hrec_time(const char *, size_t, int64_t *us);

/* The record as a middle server relays it: without its sequence number
 * and its opening brace, which hier_read writes back with the number. */
void	 hrec_add_relay(struct pgarr *, const struct hrec *);

#endif
