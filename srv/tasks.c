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
 * The task scheduler and delivery (srv/modules.h).  A timer on the loop
 * submits one tick job at a time (db/q_tasks.h): it turns due tasks into
 * runs, expires old ones and hands back the new runs, which go at once to
 * the devices that are connected.  The others get theirs when their session
 * comes up (tasks_session_ready).  Runs sent are marked 'sent' by the next
 * tick, in one statement for all of them.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include "db/q_tasks.h"

#include "canopyd.h"
#include "modules.h"

struct tasks {
	struct canopyd	*cd;
	struct event	*tick;
	int		 busy;		/* a tick job is at the database */
	int64_t		*sent;		/* delivered, not yet marked */
	size_t		 nsent, capsent;
};

/* Remembers a delivered run for the next tick to mark. */
static void
tasks_sent(struct tasks *t, int64_t id)
{
	int64_t	*v;
	size_t	 cap;

	if (t->nsent == t->capsent) {
		/* Unmarked runs are only resent at reconnection: harmless. */
		if (t->capsent >= TASK_SENT_MAX)
			return;
		cap = t->capsent ? t->capsent * 2 : 256;
		if ((v = reallocarray(t->sent, cap, sizeof(*v))) == NULL)
			return;
		t->sent = v;
		t->capsent = cap;
	}
	t->sent[t->nsent++] = id;
}

/* Sends one run as a 'task' message; -1 if the device is not connected. */
static int
tasks_deliver(struct canopyd *cd, const struct qt_run *r)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	json_t		*params;
	char		 run[24];

	if ((params = json_loads(r->params, 0, NULL)) == NULL ||
	    !json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	snprintf(run, sizeof(run), "%" PRId64, r->id);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_TASK, r->expires_ms ? 5 : 4);
	mp_kv_str(&pk, "run", run);
	mp_kv_str(&pk, "type", r->type);
	mp_key(&pk, "params");
	if (mp_pack_json(&pk, params) == -1) {
		json_decref(params);
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	json_decref(params);
	if (r->expires_ms)
		mp_kv_uint(&pk, "expires", r->expires_ms);
	if (agents_send(cd->agents, r->device_id, &sb) == -1)
		return -1;
	if (cd->tasks != NULL)
		tasks_sent(cd->tasks, r->id);
	return 0;
}

static void
tasks_tick_done(int rc, const char *err, void *arg)
{
	struct qt_tick	*q = arg;
	struct canopyd	*cd = q->arg;
	struct tasks	*t = cd->tasks;
	size_t		 i, n = 0;

	if (t == NULL || cd->stopping) {
		qt_tick_free(q);
		return;
	}
	t->busy = 0;
	if (rc != DB_OK) {
		if (rc == DB_ERR)
			log_warnx("tasks: scheduler: %s", err ? err : "?");
		/* Not marked: put them back for the next tick. */
		for (i = 0; i < q->nsent; i++)
			tasks_sent(t, q->sent[i]);
		qt_tick_free(q);
		return;
	}
	for (i = 0; i < q->nruns; i++)
		if (tasks_deliver(cd, &q->runs[i]) == 0)
			n++;
	if (q->nruns > 0 || q->nexpired > 0)
		log_info("tasks: %zu new runs, %zu delivered now, %zu expired",
		    q->nruns, n, q->nexpired);
	qt_tick_free(q);
}

static void
tasks_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct tasks	*t = arg;
	struct qt_tick	*q;

	if (t->busy || t->cd->stopping)
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return;
	q->arg = t->cd;
	/* The job takes the list of sent runs; new ones start afresh. */
	q->sent = t->sent;
	q->nsent = t->nsent;
	t->sent = NULL;
	t->nsent = t->capsent = 0;
	if (db_submit(t->cd->db, qt_tick_run, tasks_tick_done, q) == -1) {
		t->sent = q->sent;
		t->nsent = t->capsent = q->nsent;
		q->sent = NULL;
		qt_tick_free(q);
		return;
	}
	t->busy = 1;
}

int
tasks_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct tasks	*t;
	struct timeval	 tv = { TASK_SCHED_MS / 1000,
			    (TASK_SCHED_MS % 1000) * 1000 };

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "tasks: out of memory");
		return -1;
	}
	t->cd = cd;
	if ((t->tick = event_new(cd->base, -1, EV_PERSIST, tasks_tick,
	    t)) == NULL || event_add(t->tick, &tv) == -1) {
		if (t->tick != NULL)
			event_free(t->tick);
		free(t);
		snprintf(err, errlen, "tasks: cannot arm the scheduler");
		return -1;
	}
	cd->tasks = t;
	return 0;
}

void
tasks_stop(struct canopyd *cd)
{
	struct tasks	*t = cd->tasks;

	if (t == NULL)
		return;
	/* Jobs still at the database see cd->tasks NULL and just free. */
	cd->tasks = NULL;
	event_free(t->tick);
	free(t->sent);
	free(t);
}

static void
tasks_open_done(int rc, const char *err, void *arg)
{
	struct qt_open	*o = arg;
	struct canopyd	*cd = o->arg;
	size_t		 i;

	if (rc == DB_OK && cd->tasks != NULL && !cd->stopping) {
		for (i = 0; i < o->nruns; i++)
			if (tasks_deliver(cd, &o->runs[i]) == -1)
				break;	/* gone again: next time */
	} else if (rc == DB_ERR)
		log_warnx("tasks: open runs of %s: %s", o->device_id,
		    err ? err : "?");
	qt_open_free(o);
}

void
tasks_session_ready(struct canopyd *cd, const char *device_id, int vs_id)
{
	struct qt_open	*o;

	if (cd->tasks == NULL || (o = calloc(1, sizeof(*o))) == NULL)
		return;
	o->arg = cd;
	strlcpy(o->device_id, device_id, sizeof(o->device_id));
	o->vs_id = vs_id;
	/* Queue full: the device gets its runs at its next connection. */
	if (db_submit(cd->db, qt_open_run, tasks_open_done, o) == -1)
		qt_open_free(o);
}

/*
 * Text the database accepts: valid UTF-8 without NUL; anything else becomes
 * '?'.  malloc'd, NUL-terminated.
 */
static char *
tasks_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char		*out;
	size_t		 i = 0, o = 0, n, k;
	uint32_t	 cp;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	while (i < len) {
		if (p[i] >= 0x01 && p[i] < 0x80) {
			out[o++] = p[i++];
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 2;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 3;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 4;
			cp = p[i] & 0x07;
		} else
			n = 0;
		if (n == 0 || i + n > len)
			goto bad;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
		    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
		continue;
 bad:
		out[o++] = '?';
		i++;
	}
	out[o] = '\0';
	return out;
}

struct qa_item *
tasks_result_item(const char *device_id, int vs_id, const struct msg *m,
    char *why, size_t whylen)
{
	struct qa_item	*it;
	json_t		*rec;
	const char	*out;
	char		 run[MSG_MAX_SHORT + 1], state[17], *clean, *end;
	long long	 rid;
	uint64_t	 code;
	size_t		 olen;

	if (msg_str(m, "run", run, sizeof(run)) == -1 ||
	    msg_str(m, "state", state, sizeof(state)) == -1) {
		snprintf(why, whylen, "'run' and 'state' are required");
		return NULL;
	}
	/* Not one of ours: matches no run, so it is stored nowhere. */
	rid = strtoll(run, &end, 10);
	if (run[0] == '\0' || *end != '\0' || rid <= 0)
		rid = 0;
	rec = json_pack("{s:s,s:i,s:I,s:s,s:I}", "device", device_id,
	    "vs", vs_id, "run", (json_int_t)rid, "state", state,
	    "finished", (json_int_t)(msg_uint(m, "finished", 0) &
	    INT64_MAX));
	if (rec == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if (msg_get(m, "exit_code") != NULL) {
		code = msg_uint(m, "exit_code", 0);
		json_object_set_new(rec, "exit_code",
		    json_integer(code > INT32_MAX ? INT32_MAX : (int)code));
	}
	if ((out = msg_strp(m, "output", &olen)) != NULL) {
		if (olen > MSG_MAX_TASK_OUTPUT)
			olen = MSG_MAX_TASK_OUTPUT;
		if ((clean = tasks_clean(out, olen)) == NULL) {
			json_decref(rec);
			snprintf(why, whylen, "out of memory");
			return NULL;
		}
		json_object_set_new(rec, "output", json_string(clean));
		free(clean);
	}
	if ((it = calloc(1, sizeof(*it))) == NULL ||
	    (it->json = json_dumps(rec, JSON_COMPACT)) == NULL) {
		free(it);
		json_decref(rec);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	json_decref(rec);
	it->len = strlen(it->json);
	return it;
}

const struct db_batch_class tasks_result_class = {
	"task-result", qt_result_run, DB_BATCH_MAX
};
