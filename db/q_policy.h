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

#ifndef CANOPY_Q_POLICY_H
#define CANOPY_Q_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"

/*
 * Policies and effective policies (db/migrations/006_policies.sql).  The
 * statements run on database worker threads and return DB_OK, DB_ERR,
 * DB_EDOWN or QA_NOTFOUND (db/q_api.h).  Every statement names the
 * virtual server.  The first functions are pure (tests/unit/t_policy.c).
 */

/*
 * Checks a settings object {"key":{"value":any,"locked":bool?}} and returns
 * a new normalised one in *out (every entry {"value","locked"}).  On error
 * -1 with err naming the field: "settings.x: 'locked' must be a boolean".
 */
int	 qp_settings_normalize(json_t *in, json_t **out, char *err,
	    size_t errlen);
/* 1 if s is a valid setting key (1..POLICY_KEY_MAX of [A-Za-z0-9_.-]). */
int	 qp_key_valid(const char *s);
/* 1 if s is a valid product name (1..POLICY_PRODUCT_MAX printable). */
int	 qp_product_valid(const char *s);
/*
 * The keys a write changes: set (in new, absent or different in old) or
 * unset (in old, absent in new), sorted, as a new JSON array of strings.
 * old may be NULL (a new policy).
 */
json_t	*qp_changed_keys(json_t *old, json_t *new);

/* CRUD.  scopes: "{1,2}" or NULL (unrestricted), as in db/q_api.h. */
#define QP_EXISTS	2	/* (group, product) has a policy already */
#define QP_LOCKED	3	/* a key is locked above: see struct qp_lock */

struct qp_lock {
	char	 key[POLICY_KEY_MAX + 1];
	char	 policy[256];
	char	 policy_id[24];
	char	 group[4096];
	char	 server[256];	/* the owner, when it came from above; else "" */
};

/* One policy as the API shows it; *group its group id. */
int	 qp_policy_get(PGconn *, int vs_id, int64_t id, const char *scopes,
	    json_t **out, int64_t *group, char *err, size_t errlen);
int	 qp_policies_list(PGconn *, int vs_id, int64_t group,
	    const char *product, const char *scopes, json_t **out, char *err,
	    size_t errlen);
/*
 * The lock check of a write to group's policy of product: QP_LOCKED (with
 * *lk) when an ancestor's policy locks one of keys (a JSON array text).
 */
int	 qp_lock_check(PGconn *, int vs_id, int64_t group, const char *product,
	    const char *keys_json, struct qp_lock *lk, char *err,
	    size_t errlen);
int	 qp_policy_create(PGconn *, int vs_id, int64_t group,
	    const char *product, const char *name, const char *settings_json,
	    const char *created_by, int64_t *id, int *revision, char *err,
	    size_t errlen);
/* name may be NULL (kept).  *revision: the new one. */
int	 qp_policy_update(PGconn *, int vs_id, int64_t id, const char *name,
	    const char *settings_json, int *revision, char *err,
	    size_t errlen);
int	 qp_policy_delete(PGconn *, int vs_id, int64_t id, char *err,
	    size_t errlen);

/*
 * A device's effective settings of product: {"key":{"value","locked",
 * "source":{"group","policy","policy_id","group_id"}}}.  QA_NOTFOUND when
 * the device is not there or out of scope.
 */
int	 qp_effective_device(PGconn *, int vs_id, const char *device_id,
	    const char *scopes, const char *product, json_t **settings,
	    char *err, size_t errlen);

/*
 * Delivery: the effective policy of groups ({product:{key:value}} as JSON
 * text and its hash) and the devices that should receive them.
 */
struct qp_gpolicy {
	int64_t	 group;
	char	 hash[65];
	char	*view;		/* JSON text, malloc'd */
};
struct qp_target {
	char	 device[37];
	size_t	 gi;		/* index into groups */
};
struct qp_delivery {
	struct qp_gpolicy *groups;
	size_t		 ngroups;
	struct qp_target *targets;
	size_t		 ntargets;
};
/*
 * Every group in group's subtree and their devices whose acknowledged
 * policy differs from it.  Group 0: every group of the virtual server
 * (after policies from the servers above changed, 010_tree_policies.sql).
 */
int	 qp_delivery_subtree(PGconn *, int vs_id, int64_t group,
	    struct qp_delivery *, char *err, size_t errlen);
/* The effective policy of each of the n devices (each its own group). */
int	 qp_delivery_devices(PGconn *, const char *const *devices, size_t n,
	    struct qp_delivery *, char *err, size_t errlen);
void	 qp_delivery_free(struct qp_delivery *);
/* Stores acknowledged hashes: acks is a JSON array [{"id","hash"}]. */
int	 qp_ack(PGconn *, const char *acks_json, char *err, size_t errlen);

#endif
