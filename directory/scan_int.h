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

#ifndef CANOPY_SCAN_INT_H
#define CANOPY_SCAN_INT_H

/*
 * Private to directory/scan*.c: one scan of one range on the event loop
 * (scan_probe.c), driven by the scheduler (scan.c).
 */
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>

#include "iprange.h"

struct scan_run;

/* Reverse look-ups in flight, of every run: freed at scan_stop. */
struct scan_dnsq;
TAILQ_HEAD(scan_dnsqs, scan_dnsq);

struct scan_dns {
	struct evdns_base	*base;		/* NULL: no look-ups */
	struct scan_dnsqs	 inflight;
};

/* Probe limits of one run; the defaults are the SCAN_* constants. */
struct scan_opts {
	unsigned int	 rate_pps;
	unsigned int	 concurrency;
	unsigned int	 timeout_ms;
	unsigned int	 icmp_tries;
};

typedef void	(*scan_run_done_fn)(struct scan_run *, void *arg);

/*
 * Starts probing range: ICMP echo (raw socket, else ping socket) and TCP
 * connects to ports, paced by opts; names of the hosts found through dns.
 * done runs on the loop when every probe has had its answer or timeout.
 * NULL with err set if nothing could be probed.
 */
struct scan_run	*scan_run_start(struct event_base *, struct scan_dns *,
		    const struct iprange *, const int *ports, int nports,
		    const struct scan_opts *, scan_run_done_fn, void *arg,
		    char *err, size_t errlen);
void		 scan_run_free(struct scan_run *);
/* [{"ip","name","icmp","ports"}] of the hosts found alive. */
json_t		*scan_run_hosts(const struct scan_run *);
uint64_t	 scan_run_scanned(const struct scan_run *);
/* Why ICMP was not used, or NULL. */
const char	*scan_run_note(const struct scan_run *);

void		 scan_opts_default(struct scan_opts *);
void		 scan_dns_clear(struct scan_dns *);

#endif
