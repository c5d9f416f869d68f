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
 * IP-range scans: the scheduler (directory/scan.h).  Every SCAN_TICK_S,
 * and at once when the API queues a scan, a database job claims the due
 * and queued ranges (marking them 'scanning'), at most SCAN_RUNNING_MAX at
 * a time; each is probed on the loop (scan_probe.c) and its result stored
 * in one transaction that also merges the hosts into devices.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "config.h"
#include "iprange.h"
#include "log.h"
#include "util.h"

#include "db/db.h"
#include "db/q_scan.h"
#include "srv/canopyd.h"

#include "scan.h"
#include "scan_int.h"

struct scan;

/* One range, from its claim until its result is stored. */
struct scan_job {
	TAILQ_ENTRY(scan_job)	 entry;
	struct scan		*s;	/* NULL once the scanner stopped */
	int64_t			 id;
	int			 vs_id;
	char			 range[IPRANGE_TEXT_MAX + 1];
	struct scan_run		*run;
	uint64_t		 start_ms;
	/* For the database. */
	char			*hosts;		/* JSON text */
	char			 why[512];	/* failed: why */
	long long		 scanned, ms, alive;
	int			 created;
};
TAILQ_HEAD(scan_jobs, scan_job);

struct scan_claim {
	struct scan	*s;
	int		 reset;
	int		 max;
	json_t		*got;
};

struct scan {
	struct canopyd		*cd;
	struct event		*tick;
	struct scan_dns		 dns;
	struct scan_jobs	 jobs;
	unsigned int		 njobs;
	struct scan_claim	*claim;		/* in flight */
	int			 again;		/* kicked during a claim */
	int			 reset_done;
};

static void	scan_tick(evutil_socket_t, short, void *);

/* ------------------------------------------------------- storing results */

static int
scan_save_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct scan_job	*j = arg;
	int		 rc;

	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if (j->hosts != NULL)
		rc = qs_save(conn, j->vs_id, j->id, j->hosts, j->scanned,
		    j->ms, &j->created, err, errlen);
	else
		rc = qs_fail(conn, j->vs_id, j->id, j->why, err, errlen);
	if (rc != DB_OK) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

static void
scan_job_free(struct scan_job *j)
{
	scan_run_free(j->run);
	free(j->hosts);
	free(j);
}

static void
scan_save_done(int rc, const char *err, void *arg)
{
	struct scan_job	*j = arg;
	struct scan	*s = j->s;

	if (rc != DB_OK)
		log_warnx("scan: range %" PRId64 " (%s): storing the result "
		    "failed: %s", j->id, j->range, err);
	else if (j->hosts != NULL)
		log_info("scan: range %" PRId64 " (%s): %lld alive of %lld "
		    "in %lld ms, %d new devices", j->id, j->range, j->alive,
		    j->scanned, j->ms, j->created);
	if (s != NULL) {
		TAILQ_REMOVE(&s->jobs, j, entry);
		s->njobs--;
		/* A free slot: more may be waiting. */
		event_active(s->tick, EV_TIMEOUT, 0);
	}
	scan_job_free(j);
}

static void
scan_store(struct scan_job *j)
{
	struct scan	*s = j->s;

	if (db_submit(s->cd->db, scan_save_run, scan_save_done, j) == -1) {
		log_warnx("scan: range %" PRId64 ": the database queue is "
		    "full; result dropped", j->id);
		TAILQ_REMOVE(&s->jobs, j, entry);
		s->njobs--;
		scan_job_free(j);
	}
}

/* On the loop: every probe has had its answer. */
static void
scan_run_done(struct scan_run *run, void *arg)
{
	struct scan_job	*j = arg;
	json_t		*hosts;

	j->ms = (long long)(mono_ms() - j->start_ms);
	j->scanned = (long long)scan_run_scanned(run);
	if ((hosts = scan_run_hosts(run)) == NULL ||
	    (j->hosts = json_dumps(hosts, JSON_COMPACT)) == NULL) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		j->hosts = NULL;
	} else
		j->alive = (long long)json_array_size(hosts);
	json_decref(hosts);
	scan_store(j);
}

/* ------------------------------------------------------------- starting */

static void
scan_begin(struct scan *s, json_t *r)
{
	struct scan_job		*j;
	struct scan_opts	 o;
	struct iprange		 range;
	json_t			*v;
	const char		*text;
	int			 ports[SCAN_PORTS_MAX], nports = 0;
	size_t			 i;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("scan: calloc");
		return;
	}
	j->s = s;
	j->id = strtoll(json_string_value(json_object_get(r, "id")) ?
	    json_string_value(json_object_get(r, "id")) : "0", NULL, 10);
	j->vs_id = (int)json_integer_value(json_object_get(r, "vs"));
	text = json_string_value(json_object_get(r, "range"));
	strlcpy(j->range, text ? text : "", sizeof(j->range));
	json_array_foreach(json_object_get(r, "ports"), i, v)
		if (nports < SCAN_PORTS_MAX)
			ports[nports++] = (int)json_integer_value(v);
	TAILQ_INSERT_TAIL(&s->jobs, j, entry);
	s->njobs++;
	j->start_ms = mono_ms();
	scan_opts_default(&o);
	if (json_integer_value(json_object_get(r, "rate")) > 0)
		o.rate_pps = (unsigned int)json_integer_value(
		    json_object_get(r, "rate"));
	if (json_integer_value(json_object_get(r, "conc")) > 0)
		o.concurrency = (unsigned int)json_integer_value(
		    json_object_get(r, "conc"));
	if (iprange_parse(j->range, &range, j->why, sizeof(j->why)) == -1 ||
	    (j->run = scan_run_start(s->cd->base, &s->dns, &range, ports,
	    nports, &o, scan_run_done, j, j->why, sizeof(j->why))) == NULL) {
		log_warnx("scan: range %" PRId64 " (%s): %s", j->id, j->range,
		    j->why);
		scan_store(j);
		return;
	}
	if (scan_run_note(j->run) != NULL)
		log_warnx("scan: range %" PRId64 " (%s): %s", j->id, j->range,
		    scan_run_note(j->run));
	log_debug("scan: range %" PRId64 " (%s): started, %d ports", j->id,
	    j->range, nports);
}

static int
scan_claim_run(PGconn *conn, void *arg, char *err, size_t errlen)
{
	struct scan_claim	*c = arg;
	int			 rc;

	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		return rc;
	if ((rc = qs_claim(conn, c->reset, c->max, &c->got, err, errlen)) !=
	    DB_OK) {
		db_rollback(conn);
		return rc;
	}
	return db_commit(conn, err, errlen);
}

static void
scan_claim_done(int rc, const char *err, void *arg)
{
	struct scan_claim	*c = arg;
	struct scan		*s = c->s;
	json_t			*r;
	size_t			 i;

	if (rc != DB_OK)
		log_warnx("scan: looking for due ranges failed: %s", err);
	if (s != NULL) {
		s->claim = NULL;
		if (rc == DB_OK) {
			if (c->reset)
				s->reset_done = 1;
			json_array_foreach(c->got, i, r)
				scan_begin(s, r);
		}
		if (s->again) {
			s->again = 0;
			event_active(s->tick, EV_TIMEOUT, 0);
		}
	}
	json_decref(c->got);
	free(c);
}

static void
scan_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct scan		*s = arg;
	struct scan_claim	*c;

	if (s->claim != NULL) {
		s->again = 1;
		return;
	}
	if (s->cd->stopping || !db_ready(s->cd->db) ||
	    s->njobs >= SCAN_RUNNING_MAX)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("scan: calloc");
		return;
	}
	c->s = s;
	c->reset = !s->reset_done;
	c->max = SCAN_RUNNING_MAX - (int)s->njobs;
	if (db_submit(s->cd->db, scan_claim_run, scan_claim_done, c) == -1) {
		free(c);
		return;
	}
	s->claim = c;
}

void
scan_kick(struct canopyd *cd)
{
	if (cd->scan != NULL)
		event_active(cd->scan->tick, EV_TIMEOUT, 0);
}

/* evdns with the configured server, else the system's resolv.conf. */
static void
scan_dns_setup(struct scan *s)
{
	const struct conf	*conf = s->cd->conf;
	char			 ns[300], t[16];
	int			 r;

	if ((s->dns.base = evdns_base_new(s->cd->base, 0)) == NULL) {
		log_warnx("scan: no resolver; hosts found get no names");
		return;
	}
	if (conf->dns_host[0] != '\0') {
		snprintf(ns, sizeof(ns), strchr(conf->dns_host, ':') != NULL ?
		    "[%s]:%u" : "%s:%u", conf->dns_host,
		    conf->dns_port ? conf->dns_port : 53);
		r = evdns_base_nameserver_ip_add(s->dns.base, ns);
	} else
		r = evdns_base_resolv_conf_parse(s->dns.base,
		    DNS_OPTION_NAMESERVERS, "/etc/resolv.conf");
	if (r != 0 || evdns_base_count_nameservers(s->dns.base) == 0) {
		log_warnx("scan: no usable name server (%s); hosts found get "
		    "no names", conf->dns_host[0] ? conf->dns_host :
		    "/etc/resolv.conf");
		evdns_base_free(s->dns.base, 0);
		s->dns.base = NULL;
		return;
	}
	snprintf(t, sizeof(t), "%d", SCAN_DNS_TIMEOUT_S);
	evdns_base_set_option(s->dns.base, "timeout:", t);
	evdns_base_set_option(s->dns.base, "attempts:", "2");
	evdns_base_set_option(s->dns.base, "randomize-case:", "0");
}

int
scan_start(struct canopyd *cd, char *err, size_t errlen)
{
	struct scan	*s;
	struct timeval	 tv = { SCAN_TICK_S, 0 };

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "scan: out of memory");
		return -1;
	}
	s->cd = cd;
	TAILQ_INIT(&s->jobs);
	TAILQ_INIT(&s->dns.inflight);
	if ((s->tick = event_new(cd->base, -1, EV_PERSIST, scan_tick, s)) ==
	    NULL || event_add(s->tick, &tv) == -1) {
		snprintf(err, errlen, "scan: cannot create a timer");
		if (s->tick != NULL)
			event_free(s->tick);
		free(s);
		return -1;
	}
	scan_dns_setup(s);
	cd->scan = s;
	return 0;
}

void
scan_stop(struct canopyd *cd)
{
	struct scan	*s = cd->scan;
	struct scan_job	*j;

	if (s == NULL)
		return;
	event_free(s->tick);
	if (s->claim != NULL)
		s->claim->s = NULL;
	/*
	 * Runs still probing are dropped (their ranges are claimed again at
	 * the next start); results at the database finish without us.
	 */
	while ((j = TAILQ_FIRST(&s->jobs)) != NULL) {
		TAILQ_REMOVE(&s->jobs, j, entry);
		if (j->hosts != NULL || j->why[0] != '\0')
			j->s = NULL;
		else
			scan_job_free(j);
	}
	scan_dns_clear(&s->dns);
	cd->scan = NULL;
	free(s);
}
