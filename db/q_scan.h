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

#ifndef CANOPY_Q_SCAN_H
#define CANOPY_Q_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/*
 * IP ranges and scan results (db/migrations/012_ip_ranges.sql).  Run on
 * database worker threads only.  Each returns DB_OK, DB_ERR or DB_EDOWN
 * (db/db.h) with err set, QS_NOTFOUND for a missing range or QS_CONFLICT
 * for a taken name.  Every statement names its virtual server, except the
 * scheduler's, which run as the system for every virtual server.
 */
#define QS_NOTFOUND	1
#define QS_CONFLICT	2

/*
 * interval_s, rate_pps, concurrency 0: on demand only, the defaults;
 * ports: "{22,80}".  *out: the range.
 */
int	 qs_range_create(PGconn *, int vs_id, const char *name,
	    const char *range, int interval_s, const char *ports, int rate_pps,
	    int concurrency, json_t **out, char *err, size_t errlen);
int	 qs_ranges_list(PGconn *, int vs_id, json_t **out, char *err,
	    size_t errlen);
/* With "hosts": what the last scan found. */
int	 qs_range_get(PGconn *, int vs_id, const char *id, json_t **out,
	    char *err, size_t errlen);
int	 qs_range_delete(PGconn *, int vs_id, const char *id, json_t **old,
	    char *err, size_t errlen);
/* Asks for a scan now: queued, unless one is running. */
int	 qs_range_request(PGconn *, int vs_id, const char *id, json_t **out,
	    char *err, size_t errlen);

/*
 * The scheduler.  claim marks at most max due or queued ranges 'scanning'
 * and returns them as [{"id","vs","range","ports":[…],"rate","conc"}]; with reset, first
 * puts back ranges left 'scanning' by a server that stopped.
 */
int	 qs_claim(PGconn *, int reset, int max, json_t **out, char *err,
	    size_t errlen);
/* hosts: JSON text [{"ip","name"?,"icmp","ports"}]; *created: new devices. */
int	 qs_save(PGconn *, int vs_id, int64_t id, const char *hosts,
	    long long scanned, long long ms, int *created, char *err,
	    size_t errlen);
int	 qs_fail(PGconn *, int vs_id, int64_t id, const char *why, char *err,
	    size_t errlen);

#endif
