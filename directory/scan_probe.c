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
 * One scan of one range, on the event loop (directory/scan_int.h).  A
 * pacing timer sends at most rate_pps probe packets a second (an ICMP echo
 * or a TCP SYN each) with at most 'concurrency' TCP connects in flight, so
 * a scan never floods a network.  Every address gets an echo request and a
 * connect to each port; addresses still silent get the echo again.  A
 * host is alive if it answers the echo or any connect (a refusal is an
 * answer: something is there).  Hosts found get a reverse look-up.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>

#include "canopy_limits.h"
#include "iprange.h"
#include "log.h"
#include "util.h"

#include "scan_int.h"

#define H_ICMP		0x01	/* answered an echo */
#define H_TCP		0x02	/* answered a connect */
#define H_DNS_ASKED	0x04
#define H_DNS_DONE	0x08
#define H_UNREACH	0x10	/* our own kernel says: no such neighbour */
#define H_SETTLED	(H_ICMP | H_TCP | H_UNREACH)

struct scan_host {
	uint8_t		 flags;
	uint32_t	 open;		/* bit i: ports[i] accepted */
	char		*name;
};

struct scan_tcp {
	TAILQ_ENTRY(scan_tcp)	 entry;
	struct scan_run		*run;
	struct event		*ev;
	int			 fd;
	uint32_t		 idx;
	int			 port_i;
};
TAILQ_HEAD(scan_tcps, scan_tcp);

struct scan_dnsq {
	TAILQ_ENTRY(scan_dnsq)	 entry;
	struct scan_run		*run;	/* NULL: the run is gone */
	struct scan_dns		*dns;
	uint32_t		 idx;
};

struct scan_run {
	struct event_base	*base;
	struct scan_dns		*dns;
	struct iprange		 range;
	uint64_t		 skip, nhosts;
	int			 ports[SCAN_PORTS_MAX];
	int			 nports;
	struct scan_opts	 o;
	struct scan_host	*hosts;
	scan_run_done_fn	 done;
	void			*arg;

	int			 icmp_fd;	/* -1: none */
	int			 icmp_raw;	/* raw socket, not ping socket */
	struct event		*icmp_ev;
	uint16_t		 ident;
	uint16_t		 seq;
	char			 note[200];

	struct event		*pace;
	uint64_t		 last_ms;	/* last pacing tick */
	double			 tokens;
	uint64_t		 sent_ms;	/* last probe sent */
	/* The sender's place: pass, address, probe (0 echo, 1.. ports). */
	unsigned int		 pass;
	uint64_t		 cur;
	int			 sub;
	int			 sending_done;

	struct scan_tcps	 tcps;
	unsigned int		 ntcp;
	uint64_t		 dns_cur;	/* next host to look up */
	unsigned int		 ndns;
	int			 finished;
	unsigned int		 send_errors;
	int			 send_errno;	/* of the last failed send */
	int			 send_errno_last;	/* the same, for the log */
	uint64_t		 nsettled;	/* hosts with an answer */
	uint64_t		 start_ms;
	uint64_t		 hold_until;	/* no sending before */
	unsigned int		 hold_ms;
	unsigned int		 stuck;		/* pauses for this address */
};

void
scan_opts_default(struct scan_opts *o)
{
	o->rate_pps = SCAN_RATE_PPS;
	o->concurrency = SCAN_CONCURRENCY;
	o->timeout_ms = SCAN_PROBE_TIMEOUT_MS;
	o->icmp_tries = SCAN_ICMP_TRIES;
}

/* Address idx of the hosts probed, as a sockaddr. */
static socklen_t
scan_sa(const struct scan_run *run, uint64_t idx, int port,
    struct sockaddr_storage *ss)
{
	uint8_t	 a[16];

	memset(ss, 0, sizeof(*ss));
	iprange_nth(&run->range, run->skip + idx, a);
	if (run->range.af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, a, 4);
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, a, 16);
		return sizeof(*sin6);
	}
}

/* The index of addr among the hosts probed, or -1. */
static int64_t
scan_index(const struct scan_run *run, const uint8_t *addr)
{
	uint64_t	 off = 0;
	int		 n = run->range.af == AF_INET ? 4 : 16, i;
	int		 borrow = 0, v;
	uint8_t		 d[16];

	if (!iprange_contains(&run->range, run->range.af, addr))
		return -1;
	/* addr - first: ranges hold at most IPRANGE_MAX_ADDRS, 4 bytes do. */
	for (i = n - 1; i >= 0; i--) {
		v = addr[i] - run->range.first[i] - borrow;
		borrow = v < 0;
		d[i] = (uint8_t)(v + (borrow ? 256 : 0));
	}
	for (i = n - 4; i < n; i++)
		off = off << 8 | d[i];
	if (off < run->skip || off - run->skip >= run->nhosts)
		return -1;
	return (int64_t)(off - run->skip);
}

static void	scan_dns_next(struct scan_run *);

/* how: H_ICMP, H_TCP or H_UNREACH. */
static void
scan_alive(struct scan_run *run, uint64_t idx, uint8_t how)
{
	if (!(run->hosts[idx].flags & H_SETTLED))
		run->nsettled++;
	run->hosts[idx].flags |= how;
}

/*
 * An ICMP error about one of our echo requests (raw sockets only): when
 * the kernel could not resolve the neighbour, it tells itself "host
 * unreachable", and there is no point in asking that address again.
 */
static void
scan_icmp_error(struct scan_run *run, const uint8_t *icmp, size_t len)
{
	const uint8_t	*in, *dst, *echo;
	size_t		 ihl;
	int64_t		 idx;

	if (len < 8)
		return;
	in = icmp + 8;
	len -= 8;
	if (run->range.af == AF_INET) {
		if (icmp[0] != ICMP_DEST_UNREACH || len < 20)
			return;
		ihl = (size_t)(in[0] & 0x0f) * 4;
		if (in[9] != IPPROTO_ICMP || len < ihl + 8)
			return;
		dst = in + 16;
		echo = in + ihl;
	} else {
		if (icmp[0] != ICMP6_DST_UNREACH || len < 48 ||
		    in[6] != IPPROTO_ICMPV6)
			return;
		dst = in + 24;
		echo = in + 40;
	}
	if ((uint16_t)(echo[4] << 8 | echo[5]) != run->ident)
		return;
	if ((idx = scan_index(run, dst)) >= 0 &&
	    !(run->hosts[idx].flags & H_SETTLED))
		scan_alive(run, (uint64_t)idx, H_UNREACH);
}

/* ------------------------------------------------------------------ ICMP */

static uint16_t
scan_cksum(const uint8_t *p, size_t len)
{
	uint32_t	 sum = 0;
	size_t		 i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
scan_icmp_read(evutil_socket_t fd, short ev, void *arg)
{
	struct scan_run		*run = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	uint8_t			 buf[1500];
	const uint8_t		*icmp, *addr;
	ssize_t			 n;
	size_t			 hl;
	int64_t			 idx;
	int			 i;

	for (i = 0; i < 256; i++) {
		sl = sizeof(ss);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss,
		    &sl);
		if (n == -1)
			return;
		icmp = buf;
		hl = 0;
		if (run->range.af == AF_INET) {
			if (ss.ss_family != AF_INET)
				continue;
			addr = (const uint8_t *)
			    &((struct sockaddr_in *)&ss)->sin_addr;
			/* A raw IPv4 socket hands over the IP header too. */
			if (run->icmp_raw) {
				if (n < 20)
					continue;
				hl = (size_t)(buf[0] & 0x0f) * 4;
			}
			if ((size_t)n < hl + 8)
				continue;
			if (run->icmp_raw && icmp[hl] == ICMP_DEST_UNREACH) {
				scan_icmp_error(run, icmp + hl, (size_t)n - hl);
				continue;
			}
			if (icmp[hl] != ICMP_ECHOREPLY)
				continue;
		} else {
			if (ss.ss_family != AF_INET6)
				continue;
			addr = (const uint8_t *)
			    &((struct sockaddr_in6 *)&ss)->sin6_addr;
			if (n < 8)
				continue;
			if (run->icmp_raw && icmp[0] == ICMP6_DST_UNREACH) {
				scan_icmp_error(run, icmp, (size_t)n);
				continue;
			}
			if (icmp[0] != ICMP6_ECHO_REPLY)
				continue;
		}
		icmp += hl;
		/* A ping socket's kernel picks the id and filters for us. */
		if (run->icmp_raw && (uint16_t)(icmp[4] << 8 | icmp[5]) !=
		    run->ident)
			continue;
		if ((idx = scan_index(run, addr)) >= 0)
			scan_alive(run, (uint64_t)idx, H_ICMP);
	}
}

/* An ICMP socket: raw when privileged, else a ping socket, else none. */
static void
scan_icmp_open(struct scan_run *run)
{
	int	 af = run->range.af;
	int	 proto = af == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int	 rbuf = 1 << 20, e1;

	run->icmp_raw = 1;
	run->icmp_fd = socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    proto);
	if (run->icmp_fd == -1) {
		e1 = errno;
		run->icmp_raw = 0;
		run->icmp_fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, proto);
		if (run->icmp_fd == -1) {
			snprintf(run->note, sizeof(run->note), "ICMP echo not "
			    "possible: no raw socket (%s: canopyd is not "
			    "privileged) and no ping socket (%s: see sysctl "
			    "net.ipv4.ping_group_range); TCP probes only",
			    strerror(e1), strerror(errno));
			return;
		}
	}
	setsockopt(run->icmp_fd, SOL_SOCKET, SO_RCVBUF, &rbuf, sizeof(rbuf));
	if (af == AF_INET6 && run->icmp_raw) {
		struct icmp6_filter	 f;

		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
		ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &f);
		setsockopt(run->icmp_fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f,
		    sizeof(f));
	}
	run->icmp_ev = event_new(run->base, run->icmp_fd, EV_READ | EV_PERSIST,
	    scan_icmp_read, run);
	if (run->icmp_ev == NULL || event_add(run->icmp_ev, NULL) == -1) {
		snprintf(run->note, sizeof(run->note), "ICMP echo not "
		    "possible: cannot watch the socket");
		if (run->icmp_ev != NULL)
			event_free(run->icmp_ev);
		run->icmp_ev = NULL;
		close(run->icmp_fd);
		run->icmp_fd = -1;
	}
}

/*
 * 0: sent, or the address is unreachable (it stays silent); -1: the
 * kernel has no room (its neighbour table is full of addresses still being
 * resolved): the same address again after a pause.
 */
static int
scan_icmp_send(struct scan_run *run, uint64_t idx)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	uint8_t			 pkt[16];
	uint16_t		 ck;

	sl = scan_sa(run, idx, 0, &ss);
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = run->range.af == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	pkt[4] = run->ident >> 8;
	pkt[5] = run->ident & 0xff;
	pkt[6] = run->seq >> 8;
	pkt[7] = run->seq & 0xff;
	run->seq++;
	memcpy(pkt + 8, "canopy\0\0", 8);
	/* ICMPv6 checksums cover a pseudo-header: the kernel does them. */
	if (run->range.af == AF_INET) {
		ck = scan_cksum(pkt, sizeof(pkt));
		pkt[2] = ck >> 8;
		pkt[3] = ck & 0xff;
	}
	if (sendto(run->icmp_fd, pkt, sizeof(pkt), 0,
	    (struct sockaddr *)&ss, sl) == -1) {
		run->send_errors++;
		run->send_errno = run->send_errno_last = errno;
		if (errno == ENOBUFS || errno == EAGAIN || errno == ENOMEM)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------- TCP */

static void
scan_tcp_free(struct scan_tcp *t)
{
	struct scan_run	*run = t->run;

	TAILQ_REMOVE(&run->tcps, t, entry);
	run->ntcp--;
	if (t->ev != NULL)
		event_free(t->ev);
	if (t->fd != -1) {
		/* Reset, not FIN: nothing lingers in TIME_WAIT. */
		struct linger	 l = { 1, 0 };

		setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(t->fd);
	}
	free(t);
}

static void
scan_tcp_result(struct scan_tcp *t, int error)
{
	struct scan_run	*run = t->run;

	if (error == 0) {
		run->hosts[t->idx].open |= 1u << t->port_i;
		scan_alive(run, t->idx, H_TCP);
	} else if (error == ECONNREFUSED)
		scan_alive(run, t->idx, H_TCP);
	scan_tcp_free(t);
}

static void
scan_tcp_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct scan_tcp	*t = arg;
	int		 error = ETIMEDOUT;
	socklen_t	 len = sizeof(error);

	if ((ev & EV_WRITE) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	scan_tcp_result(t, error);
}

/* 0: sent (or answered at once); -1: no slot or no descriptor, later. */
static int
scan_tcp_send(struct scan_run *run, uint64_t idx, int port_i)
{
	struct sockaddr_storage	 ss;
	struct scan_tcp		*t;
	struct timeval		 tv;
	socklen_t		 sl;

	if (run->ntcp >= run->o.concurrency)
		return -1;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->fd = socket(run->range.af, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (t->fd == -1) {
		free(t);
		return -1;	/* EMFILE: when a connect ends */
	}
	t->run = run;
	t->idx = (uint32_t)idx;
	t->port_i = port_i;
	TAILQ_INSERT_TAIL(&run->tcps, t, entry);
	run->ntcp++;
	sl = scan_sa(run, idx, run->ports[port_i], &ss);
	if (connect(t->fd, (struct sockaddr *)&ss, sl) == 0) {
		scan_tcp_result(t, 0);
		return 0;
	}
	if (errno != EINPROGRESS) {
		scan_tcp_result(t, errno);
		return 0;
	}
	tv.tv_sec = run->o.timeout_ms / 1000;
	tv.tv_usec = (run->o.timeout_ms % 1000) * 1000;
	if ((t->ev = event_new(run->base, t->fd, EV_WRITE, scan_tcp_cb, t)) ==
	    NULL || event_add(t->ev, &tv) == -1) {
		scan_tcp_result(t, ENOMEM);
		return 0;
	}
	return 0;
}

/* ------------------------------------------------------------------- DNS */

static void
scan_dns_cb(int result, char type, int count, int ttl, void *addrs,
    void *arg)
{
	struct scan_dnsq	*q = arg;
	struct scan_run		*run = q->run;

	TAILQ_REMOVE(&q->dns->inflight, q, entry);
	if (run != NULL) {
		run->ndns--;
		run->hosts[q->idx].flags |= H_DNS_DONE;
		if (result == DNS_ERR_NONE && type == DNS_PTR && count > 0 &&
		    addrs != NULL && *(char **)addrs != NULL &&
		    strlen(*(char **)addrs) <= 253)
			run->hosts[q->idx].name = strdup(*(char **)addrs);
	}
	free(q);
}

/* Looks up the names of hosts found, within SCAN_DNS_CONCURRENCY. */
static void
scan_dns_next(struct scan_run *run)
{
	struct scan_dnsq	*q;
	struct evdns_request	*req;
	uint8_t			 a[16];
	struct scan_host	*h;

	for (; run->dns_cur < run->nhosts; run->dns_cur++) {
		h = &run->hosts[run->dns_cur];
		if (!(h->flags & (H_ICMP | H_TCP)) || (h->flags & H_DNS_ASKED))
			continue;
		if (run->dns->base == NULL) {
			h->flags |= H_DNS_ASKED | H_DNS_DONE;
			continue;
		}
		if (run->ndns >= SCAN_DNS_CONCURRENCY)
			return;
		if ((q = calloc(1, sizeof(*q))) == NULL)
			return;
		q->run = run;
		q->dns = run->dns;
		q->idx = (uint32_t)run->dns_cur;
		h->flags |= H_DNS_ASKED;
		TAILQ_INSERT_TAIL(&run->dns->inflight, q, entry);
		run->ndns++;
		iprange_nth(&run->range, run->skip + run->dns_cur, a);
		if (run->range.af == AF_INET)
			req = evdns_base_resolve_reverse(run->dns->base,
			    (struct in_addr *)a, DNS_QUERY_NO_SEARCH,
			    scan_dns_cb, q);
		else
			req = evdns_base_resolve_reverse_ipv6(run->dns->base,
			    (struct in6_addr *)a, DNS_QUERY_NO_SEARCH,
			    scan_dns_cb, q);
		/* Not even asked: no callback will come. */
		if (req == NULL) {
			TAILQ_REMOVE(&run->dns->inflight, q, entry);
			free(q);
			run->ndns--;
			h->flags |= H_DNS_DONE;
		}
	}
}

/* --------------------------------------------------------------- pacing */

/* Sends the next probe; 0 if one was sent, 1 when blocked, 2 when done. */
static int
scan_next(struct scan_run *run)
{
	for (;;) {
		if (run->cur >= run->nhosts) {
			log_debug("scan: pass %u sent after %llu ms, %llu of "
			    "%llu settled", run->pass, (unsigned long long)
			    (mono_ms() - run->start_ms), (unsigned long long)
			    run->nsettled, (unsigned long long)run->nhosts);
			if (++run->pass >= (run->icmp_fd == -1 ? 1 :
			    run->o.icmp_tries))
				return 2;
			run->cur = 0;
			run->sub = 0;
		}
		if (run->pass > 0) {
			/* Again to the silent ones, echo only. */
			if (!(run->hosts[run->cur].flags & H_SETTLED)) {
				/*
				 * No room in the kernel now means a local
				 * network full of addresses it is still
				 * resolving: it has asked for these three
				 * times already.  No second pause for them.
				 */
				if (scan_icmp_send(run, run->cur) == -1)
					run->send_errno = 0;
				run->cur++;
				return 0;
			}
			run->cur++;
			continue;
		}
		if (run->sub == 0) {
			if (run->icmp_fd != -1) {
				/* Not for ever: past SCAN_HOLD_TRIES, skip it. */
				if (scan_icmp_send(run, run->cur) == -1 &&
				    ++run->stuck < SCAN_HOLD_TRIES)
					return 1;
				run->stuck = 0;
				run->sub = 1;
				return 0;
			}
			run->sub = 1;
		}
		if (run->sub - 1 < run->nports) {
			if (scan_tcp_send(run, run->cur, run->sub - 1) == -1)
				return 1;
			run->sub++;
			return 0;
		}
		run->cur++;
		run->sub = 0;
	}
}

static void
scan_pace(evutil_socket_t fd, short ev, void *arg)
{
	struct scan_run	*run = arg;
	uint64_t	 now = mono_ms();
	double		 burst = run->o.rate_pps / 10.0;
	int		 r;

	run->tokens += (double)(now - run->last_ms) * run->o.rate_pps / 1000.0;
	if (run->tokens > burst)
		run->tokens = burst < 1 ? 1 : burst;
	run->last_ms = now;
	while (!run->sending_done && run->tokens >= 1 &&
	    now >= run->hold_until) {
		if ((r = scan_next(run)) == 2) {
			run->sending_done = 1;
			break;
		}
		if (r == 1) {
			/* The kernel is full: back off, doubling the pause. */
			if (run->send_errno == ENOBUFS ||
			    run->send_errno == EAGAIN ||
			    run->send_errno == ENOMEM) {
				run->hold_ms = run->hold_ms == 0 ?
				    SCAN_HOLD_MIN_MS : run->hold_ms * 2;
				if (run->hold_ms > SCAN_HOLD_MAX_MS)
					run->hold_ms = SCAN_HOLD_MAX_MS;
				run->hold_until = now + run->hold_ms;
				run->send_errno = 0;
			}
			break;
		}
		run->hold_ms = 0;
		run->tokens -= 1;
		run->sent_ms = now;
	}
	scan_dns_next(run);
	/* Done: every address answered or is known absent, or time is up. */
	if (run->sending_done && run->ntcp == 0 && run->ndns == 0 &&
	    run->dns_cur >= run->nhosts && (run->nsettled >= run->nhosts ||
	    now >= run->sent_ms + run->o.timeout_ms)) {
		/* Late echo replies still count until here. */
		if (run->icmp_ev != NULL)
			scan_icmp_read(run->icmp_fd, EV_READ, run);
		/* Hosts the last replies revealed still need a name. */
		run->dns_cur = 0;
		scan_dns_next(run);
		if (run->ndns == 0) {
			log_debug("scan: done after %llu ms, %llu of %llu "
			    "settled", (unsigned long long)(now - run->start_ms),
			    (unsigned long long)run->nsettled,
			    (unsigned long long)run->nhosts);
			if (run->send_errors > 0)
				log_debug("scan: %u echo requests found no room "
				    "(last: %s)", run->send_errors,
				    strerror(run->send_errno_last));
			run->finished = 1;
			event_del(run->pace);
			run->done(run, run->arg);
		}
	}
}

struct scan_run *
scan_run_start(struct event_base *base, struct scan_dns *dns,
    const struct iprange *range, const int *ports, int nports,
    const struct scan_opts *o, scan_run_done_fn done, void *arg, char *err,
    size_t errlen)
{
	struct scan_run	*run;
	struct timeval	 tv = { 0, SCAN_PACE_MS * 1000 };

	if (nports > SCAN_PORTS_MAX || range->count > IPRANGE_MAX_ADDRS) {
		snprintf(err, errlen, "too many ports or addresses");
		return NULL;
	}
	if ((run = calloc(1, sizeof(*run))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	run->base = base;
	run->dns = dns;
	run->range = *range;
	run->nhosts = iprange_hosts(range, &run->skip);
	memcpy(run->ports, ports, sizeof(int) * (size_t)nports);
	run->nports = nports;
	run->o = *o;
	if (run->o.rate_pps == 0)
		run->o.rate_pps = 1;
	run->done = done;
	run->arg = arg;
	TAILQ_INIT(&run->tcps);
	if (rand_bytes(&run->ident, sizeof(run->ident)) == -1)
		run->ident = (uint16_t)getpid();
	if ((run->hosts = calloc(run->nhosts ? run->nhosts : 1,
	    sizeof(*run->hosts))) == NULL) {
		free(run);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	scan_icmp_open(run);
	if (run->icmp_fd == -1 && nports == 0) {
		snprintf(err, errlen, "%s, and the range has no tcp_ports",
		    run->note);
		scan_run_free(run);
		return NULL;
	}
	run->start_ms = run->last_ms = mono_ms();
	run->tokens = 1;
	if ((run->pace = event_new(base, -1, EV_PERSIST, scan_pace, run)) ==
	    NULL || event_add(run->pace, &tv) == -1) {
		snprintf(err, errlen, "cannot create a timer");
		scan_run_free(run);
		return NULL;
	}
	return run;
}

void
scan_run_free(struct scan_run *run)
{
	struct scan_dnsq	*q;
	uint64_t		 i;

	if (run == NULL)
		return;
	while (!TAILQ_EMPTY(&run->tcps))
		scan_tcp_free(TAILQ_FIRST(&run->tcps));
	/* Look-ups in flight outlive the run: they free themselves. */
	if (run->dns != NULL)
		TAILQ_FOREACH(q, &run->dns->inflight, entry)
			if (q->run == run)
				q->run = NULL;
	if (run->pace != NULL)
		event_free(run->pace);
	if (run->icmp_ev != NULL)
		event_free(run->icmp_ev);
	if (run->icmp_fd != -1)
		close(run->icmp_fd);
	for (i = 0; i < run->nhosts; i++)
		free(run->hosts[i].name);
	free(run->hosts);
	free(run);
}

json_t *
scan_run_hosts(const struct scan_run *run)
{
	json_t		*a, *ports;
	char		 ip[INET6_ADDRSTRLEN];
	uint8_t		 addr[16];
	uint64_t	 i;
	int		 k;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < run->nhosts; i++) {
		const struct scan_host *h = &run->hosts[i];

		if (!(h->flags & (H_ICMP | H_TCP)))
			continue;
		iprange_nth(&run->range, run->skip + i, addr);
		inet_ntop(run->range.af, addr, ip, sizeof(ip));
		ports = json_array();
		for (k = 0; k < run->nports; k++)
			if (h->open & (1u << k))
				json_array_append_new(ports,
				    json_integer(run->ports[k]));
		json_array_append_new(a, json_pack("{s:s,s:s?,s:b,s:o}",
		    "ip", ip, "name", h->name, "icmp", (h->flags & H_ICMP) != 0,
		    "ports", ports));
	}
	return a;
}

uint64_t
scan_run_scanned(const struct scan_run *run)
{
	return run->nhosts;
}

const char *
scan_run_note(const struct scan_run *run)
{
	return run->note[0] != '\0' ? run->note : NULL;
}

void
scan_dns_clear(struct scan_dns *dns)
{
	struct scan_dnsq	*q;

	if (dns->base != NULL)
		evdns_base_free(dns->base, 0);
	dns->base = NULL;
	while ((q = TAILQ_FIRST(&dns->inflight)) != NULL) {
		TAILQ_REMOVE(&dns->inflight, q, entry);
		free(q);
	}
}
