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
 * Effective policies pushed to agents (srv/modules.h).  After a policy
 * changes, one database job computes the effective policy of every group
 * of the changed subtree and lists the devices whose acknowledged policy
 * differs; the job also packs each group's 'policy' message once, so the
 * loop only copies bytes to the connected sessions.  When sessions come
 * up, their devices' policies are computed in batches (one statement for
 * up to POLICY_PUSH_BATCH devices), never one job per device.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include "db/db.h"
#include "db/q_agents.h"
#include "db/q_policy.h"

#include "canopyd.h"
#include "modules.h"

/* A packed 'policy' message. */
struct policy_msg {
	char	*buf;
	size_t	 len;
};

struct policy_push {
	struct canopyd		*cd;
	int			 vs_id;
	int64_t			 group;
	uint64_t		 start_ms;
	struct qp_delivery	 d;
	struct policy_msg	*msgs;		/* one per d.groups[] */
};

/* One session that came up, in a batch of policy_ready_class. */
struct policy_ready {
	struct canopyd		*cd;
	char			 device[37];
	int			 vs_id;
	uint64_t		 gen;		/* policy_gen when submitted */
	struct policy_msg	 msg;
};

/*
 * Bumped on the loop by every change.  A session's policy computed while
 * a change was committing may be older than the change's push and arrive
 * after it: such a session is computed again.
 */
static uint64_t	 policy_gen;

static int
policy_pack(const struct qp_gpolicy *g, struct policy_msg *m, char *err,
    size_t errlen)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	json_t		*view;
	int		 r;

	memset(m, 0, sizeof(*m));
	if ((view = json_loads(g->view, 0, NULL)) == NULL ||
	    !json_is_object(view)) {
		json_decref(view);
		snprintf(err, errlen, "policy of group %lld: bad JSON",
		    (long long)g->group);
		return -1;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_POLICY, 3);
	mp_kv_str(&pk, "hash", g->hash);
	mp_key(&pk, "settings");
	r = mp_pack_json(&pk, view);
	json_decref(view);
	if (r == -1 || sb.data == NULL) {
		msgpack_sbuffer_destroy(&sb);
		snprintf(err, errlen, "policy of group %lld: cannot pack",
		    (long long)g->group);
		return -1;
	}
	/* The sbuffer's bytes become ours. */
	m->len = sb.size;
	m->buf = msgpack_sbuffer_release(&sb);
	return 0;
}

/* Sends a copy of m to device; 0 if it is connected. */
static int
policy_send(struct canopyd *cd, const char *device, const struct policy_msg *m)
{
	msgpack_sbuffer	 sb;

	if (m->buf == NULL)
		return -1;
	msgpack_sbuffer_init(&sb);
	if (msgpack_sbuffer_write(&sb, m->buf, m->len) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	return agents_send(cd->agents, device, &sb);
}

static void
policy_push_free(struct policy_push *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	if (p->msgs != NULL)
		for (i = 0; i < p->d.ngroups; i++)
			free(p->msgs[i].buf);
	free(p->msgs);
	qp_delivery_free(&p->d);
	free(p);
}

static int
policy_push_run(PGconn *pg, void *arg, char *err, size_t errlen)
{
	struct policy_push	*p = arg;
	size_t			 i;
	int			 rc;

	if ((rc = qp_delivery_subtree(pg, p->vs_id, p->group, &p->d, err,
	    errlen)) != DB_OK)
		return rc;
	if ((p->msgs = calloc(p->d.ngroups ? p->d.ngroups : 1,
	    sizeof(*p->msgs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < p->d.ngroups; i++)
		if (policy_pack(&p->d.groups[i], &p->msgs[i], err, errlen) == -1)
			return DB_ERR;
	return DB_OK;
}

static void
policy_push_done(int rc, const char *err, void *arg)
{
	struct policy_push	*p = arg;
	size_t			 i, sent = 0;

	if (rc != DB_OK) {
		/* Agents get it when they next connect. */
		log_warnx("policy: push for group %lld: %s",
		    (long long)p->group, err ? err : "failed");
		policy_push_free(p);
		return;
	}
	if (!p->cd->stopping)
		for (i = 0; i < p->d.ntargets; i++)
			if (policy_send(p->cd, p->d.targets[i].device,
			    &p->msgs[p->d.targets[i].gi]) == 0)
				sent++;
	log_debug("policy: group %lld: %zu groups, %zu devices to update, "
	    "%zu connected, %llu ms", (long long)p->group, p->d.ngroups,
	    p->d.ntargets, sent,
	    (unsigned long long)(mono_ms() - p->start_ms));
	policy_push_free(p);
}

void
policy_push_group(struct canopyd *cd, int vs_id, int64_t group)
{
	struct policy_push	*p;

	if (cd == NULL || cd->db == NULL)
		return;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warn("policy: calloc");
		return;
	}
	p->cd = cd;
	p->vs_id = vs_id;
	p->group = group;
	p->start_ms = mono_ms();
	policy_gen++;
	if (db_submit(cd->db, policy_push_run, policy_push_done, p) == -1) {
		log_warnx("policy: push for group %lld: database queue full",
		    (long long)group);
		free(p);
	}
}

static int
policy_tcmp(const void *a, const void *b)
{
	return strcmp(((const struct qp_target *)a)->device,
	    ((const struct qp_target *)b)->device);
}

static int
policy_ready_run(PGconn *pg, void **items, size_t n, char *err,
    size_t errlen)
{
	struct qp_delivery	 d;
	struct qp_target	 key, *t;
	const char		**ids;
	size_t			 i;
	int			 rc;

	if ((ids = calloc(n ? n : 1, sizeof(*ids))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < n; i++)
		ids[i] = ((struct policy_ready *)items[i])->device;
	rc = qp_delivery_devices(pg, ids, n, &d, err, errlen);
	free(ids);
	if (rc != DB_OK)
		return rc;
	qsort(d.targets, d.ntargets, sizeof(*d.targets), policy_tcmp);
	for (i = 0; i < n; i++) {
		struct policy_ready *r = items[i];

		memset(&key, 0, sizeof(key));
		strlcpy(key.device, r->device, sizeof(key.device));
		if ((t = bsearch(&key, d.targets, d.ntargets,
		    sizeof(*d.targets), policy_tcmp)) == NULL)
			continue;
		free(r->msg.buf);
		if (policy_pack(&d.groups[t->gi], &r->msg, err, errlen) == -1) {
			qp_delivery_free(&d);
			return DB_ERR;
		}
	}
	qp_delivery_free(&d);
	return DB_OK;
}

static const struct db_batch_class policy_ready_class = {
	"policy-ready", policy_ready_run, POLICY_PUSH_BATCH
};

static void
policy_ready_done(int rc, const char *err, void *arg)
{
	struct policy_ready	*r = arg;

	if (rc != DB_OK)
		log_debug("policy: device %s: %s", r->device,
		    err ? err : "failed");
	else if (!r->cd->stopping) {
		(void)policy_send(r->cd, r->device, &r->msg);
		if (r->gen != policy_gen && r->msg.buf != NULL)
			policy_session_ready(r->cd, r->device, r->vs_id);
	}
	free(r->msg.buf);
	free(r);
}

void
policy_session_ready(struct canopyd *cd, const char *device_id, int vs_id)
{
	struct policy_ready	*r;

	if (cd == NULL || cd->db == NULL || device_id == NULL)
		return;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("policy: calloc");
		return;
	}
	r->cd = cd;
	r->vs_id = vs_id;
	r->gen = policy_gen;
	strlcpy(r->device, device_id, sizeof(r->device));
	if (db_submit_batch(cd->db, &policy_ready_class, r,
	    policy_ready_done) == -1) {
		log_warnx("policy: device %s: database queue full", device_id);
		free(r);
	}
}

static int
policy_ack_tx(PGconn *pg, void *js, char *err, size_t errlen)
{
	return qp_ack(pg, js, err, errlen);
}

/*
 * The agents do not send an acknowledgement again: one lost to a deadlock
 * with another writer of the devices (the rules' round) would leave the
 * device's policy unconfirmed until its next session.
 */
static int
policy_ack_run(PGconn *pg, void **items, size_t n, char *err, size_t errlen)
{
	json_t	*a;
	char	*js;
	size_t	 i;
	int	 rc;

	if ((a = json_array()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	for (i = 0; i < n; i++) {
		struct qa_item *it = items[i];
		json_t *o;

		if (it->json != NULL && (o = json_loads(it->json, 0,
		    NULL)) != NULL)
			json_array_append_new(a, o);
	}
	js = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (js == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	rc = db_tx(pg, policy_ack_tx, js, err, errlen);
	free(js);
	return rc;
}

const struct db_batch_class policy_ack_class = {
	"policy-ack", policy_ack_run, DB_BATCH_MAX
};

struct qa_item *
policy_ack_item(const char *device_id, int vs_id, const struct msg *m,
    char *why, size_t whylen)
{
	struct qa_item	*it;
	char		 hash[MSG_MAX_HASH + 1];
	json_t		*o;

	if (msg_str(m, "hash", hash, sizeof(hash)) == -1) {
		snprintf(why, whylen, "'hash' must be a string of at most %d "
		    "bytes", MSG_MAX_HASH);
		return NULL;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	o = json_pack("{s:s,s:s}", "id", device_id, "hash", hash);
	it->json = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (it->json == NULL) {
		free(it);
		snprintf(why, whylen, "'hash' cannot be stored");
		return NULL;
	}
	it->len = strlen(it->json);
	return it;
}
