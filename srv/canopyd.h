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

#ifndef CANOPY_CANOPYD_H
#define CANOPY_CANOPYD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "pki.h"

struct db;
struct agents;
struct api;
struct tasks;
struct rules;

/*
 * Counters shown by /metrics.  Written on the loop and by db workers, so
 * atomic.
 */
struct metrics {
	atomic_uint_fast64_t	agent_connections;	/* accepted, total */
	atomic_uint_fast64_t	agent_protocol_errors;
	atomic_uint_fast64_t	enrolments;
	atomic_uint_fast64_t	syncs;
	atomic_uint_fast64_t	syncs_inventory;	/* with a full inventory */
	atomic_uint_fast64_t	heartbeats;
	atomic_uint_fast64_t	events;
	atomic_uint_fast64_t	retries;		/* 'retry' answers */
	atomic_uint_fast64_t	api_requests;
	atomic_uint_fast64_t	api_errors;		/* 4xx and 5xx */
};

/* The server: one per process, owned by main.c. */
struct canopyd {
	struct event_base	*base;
	struct conf		*conf;		/* swapped on SIGHUP */
	struct pki		 pki;
	struct db		*db;
	struct agents		*agents;
	struct api		*api;
	struct tasks		*tasks;		/* srv/tasks.c */
	struct rules		*rules;		/* srv/rules.c */
	struct directory	*directory;	/* directory/directory.c */
	struct scan		*scan;		/* directory/scan.c */
	struct hier		*hier;		/* hierarchy/ */
	struct krb		*krb;		/* auth/ Kerberos SSO */
	struct metrics		 metrics;
	int64_t			 started_ms;
	volatile int		 stopping;
};

/* srv/agents.c: the port-13000 listener and agent sessions. */
struct agents *agents_start(struct canopyd *, char *err, size_t errlen);
void	 agents_stop(struct agents *);
/* Applies a reloaded configuration's limits (max-frame, max-agents). */
void	 agents_reconf(struct agents *, const struct conf *);
size_t	 agents_connected(struct agents *);
/* Tells a connected agent to sync now; -1 if it is not connected. */
int	 agents_push_sync(struct agents *, const char *device_id);

/* srv/api.c: the HTTPS API on port 13299. */
struct api *api_start(struct canopyd *, char *err, size_t errlen);
void	 api_stop(struct api *);
void	 api_reconf(struct api *, const struct conf *);

/* srv/admin.c: 'canopyd admin-add'. Returns the exit status. */
int	 admin_add_main(struct conf *, int argc, char **argv);

#endif
