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

#ifndef CANOPY_Q_RULES_H
#define CANOPY_Q_RULES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/*
 * Status rules, moving rules and event retention (db/migrations/
 * 008_rules.sql).  Run on database worker threads only; the caller owns
 * the transaction.  Each returns DB_OK, DB_ERR or DB_EDOWN (db/db.h) with
 * err set, QR_NOTFOUND for a missing row or QR_CONFLICT for a taken name.
 * Every statement names its virtual server.
 */
#define QR_NOTFOUND	1
#define QR_CONFLICT	2

/* What one round did. */
/* Beyond this many groups in one round, agents get theirs at reconnection. */
#define QR_MOVED_GROUPS_MAX	64

struct qr_round {
	long long	 fs_refreshed;	/* devices whose disk usage was read */
	long long	 status_changed;	/* devices whose status changed */
	long long	 reasons_changed;	/* rows written (status or reasons) */
	long long	 evaluated;	/* devices the moving rules looked at */
	long long	 moved;
	long long	 pruned;	/* events deleted */
	int64_t		 event_mark;	/* in/out: events above it are new */
	int		 recent;	/* in: read only inventories written in
					   the last RULES_RECENT_S */
	int		 no_status;	/* in: leave statuses for a later round */
	/* out: groups that received devices by a moving rule (at most). */
	struct {
		int	 vs_id;
		int64_t	 group;
	}		 moved_to[QR_MOVED_GROUPS_MAX];
	size_t		 nmoved_to;
};

/*
 * One round: disk usage from new inventories, every device's status and
 * reasons, moving rules, and (prune set) event retention.  vs_id -1: every
 * virtual server.
 */
int	 qr_round(PGconn *, int vs_id, int prune, struct qr_round *,
	    char *err, size_t errlen);

/* Lists as JSON arrays. */
int	 qr_status_rules_list(PGconn *, int vs_id, json_t **out, char *err,
	    size_t errlen);
int	 qr_status_rule_get(PGconn *, int vs_id, const char *id, json_t **out,
	    char *err, size_t errlen);
/* params: JSON text.  *out: the new rule. */
int	 qr_status_rule_create(PGconn *, int vs_id, const char *name,
	    const char *kind, const char *severity, const char *params,
	    int enabled, int ord, json_t **out, char *err, size_t errlen);
/* NULL / -1: keep. */
int	 qr_status_rule_update(PGconn *, int vs_id, const char *id,
	    const char *name, const char *severity, const char *params,
	    int enabled, const long long *ord, json_t **out, char *err,
	    size_t errlen);
int	 qr_status_rule_delete(PGconn *, int vs_id, const char *id,
	    json_t **old, char *err, size_t errlen);

/* scopes: "{1,2}" or NULL: only rules placing into those subtrees. */
int	 qr_moving_rules_list(PGconn *, int vs_id, const char *scopes,
	    json_t **out, char *err, size_t errlen);
/* match: JSON text. */
int	 qr_moving_rule_create(PGconn *, int vs_id, const char *name, int ord,
	    int64_t group, const char *match, const char *mode, int enabled,
	    json_t **out, char *err, size_t errlen);
int	 qr_moving_rule_delete(PGconn *, int vs_id, const char *id,
	    json_t **old, char *err, size_t errlen);

#endif
