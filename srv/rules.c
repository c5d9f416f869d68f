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
 * Status rules, moving rules and event retention (srv/modules.h): every
 * RULES_INTERVAL_S one database job runs a round (db/q_rules.c) for every
 * virtual server; every RULES_STATUS_EVERY-th also recomputes statuses.
 * Rounds never overlap; a tick that finds one running is skipped.  New
 * agents are placed within one interval of their enrolment; POST
 * /rules/run does a whole round at once.
 */
#include <sys/time.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "canopy_limits.h"
#include "log.h"

#include "db/db.h"
#include "db/q_rules.h"

#include "canopyd.h"
#include "modules.h"

struct rules;

/* One round in flight.  Outlives rules_stop: then rules is NULL. */
struct rules_job {
	struct rules		*rules;
	struct qr_round		 st;
	uint64_t		 start_ms;
};

struct rules {
	struct canopyd		*cd;
	struct event		*tick;
	struct rules_job	*job;		/* NULL when idle */
	int64_t			 event_mark;
	uint64_t		 last_ok_ms;	/* the last round that worked */
	unsigned int		 rounds;
};

static uint64_t
rules_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
rules_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct rules_job	*job = arg;
	int			 rc;

	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if ((rc = qr_round(conn, -1, 1, &job->st, err, errlen)) != DB_OK) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

static void
rules_done(int rc, const char *err, void *arg)
{
	struct rules_job	*job = arg;
	struct rules		*r = job->rules;
	size_t			 i;

	if (rc != DB_OK)
		log_warnx("rules: round failed: %s", err);
	else if (job->st.status_changed || job->st.moved || job->st.pruned)
		log_info("rules: %lld status changes, %lld devices moved, "
		    "%lld events pruned", job->st.status_changed,
		    job->st.moved, job->st.pruned);
	if (r != NULL) {
		if (rc == DB_OK) {
			r->event_mark = job->st.event_mark;
			r->last_ok_ms = job->start_ms;
			/* Moved devices' agents get their new policy now. */
			for (i = 0; i < job->st.nmoved_to; i++)
				policy_push_group(r->cd,
				    job->st.moved_to[i].vs_id,
				    job->st.moved_to[i].group);
		}
		r->job = NULL;
	}
	free(job);
}

static void
rules_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct rules		*r = arg;
	struct rules_job	*job;

	if (r->job != NULL || r->cd->stopping || !db_ready(r->cd->db))
		return;
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		log_warn("rules: calloc");
		return;
	}
	job->rules = r;
	job->start_ms = rules_now_ms();
	job->st.event_mark = r->event_mark;
	job->st.no_status = r->rounds++ % RULES_STATUS_EVERY != 0;
	/* A full look at inventories first, and after a gap in the rounds. */
	job->st.recent = r->last_ok_ms != 0 &&
	    rules_now_ms() - r->last_ok_ms < (RULES_RECENT_S - 60) * 1000ULL;
	if (db_submit(r->cd->db, rules_run, rules_done, job) == -1) {
		log_warnx("rules: the database queue is full; round skipped");
		free(job);
		return;
	}
	r->job = job;
}

int
rules_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct rules	*r;
	struct timeval	 tv = { RULES_INTERVAL_S, 0 };

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "rules: out of memory");
		return -1;
	}
	r->cd = cd;
	if ((r->tick = event_new(cd->base, -1, EV_PERSIST, rules_tick, r)) ==
	    NULL || event_add(r->tick, &tv) == -1) {
		snprintf(err, errlen, "rules: cannot create a timer");
		if (r->tick != NULL)
			event_free(r->tick);
		free(r);
		return -1;
	}
	cd->rules = r;
	return 0;
}

void
rules_stop(struct canopyd *cd)
{
	struct rules	*r = cd->rules;

	if (r == NULL)
		return;
	event_free(r->tick);
	/* The round still at the database finishes without us. */
	if (r->job != NULL)
		r->job->rules = NULL;
	free(r);
	cd->rules = NULL;
}
