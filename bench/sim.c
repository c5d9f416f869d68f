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
 * canopy-sim: thousands of agents, each with its own identity, in one
 * process and one event loop, running the same session code as the real
 * agent.  It enrols them (keys and certificates cached in --dir), connects
 * them all, then makes each sync every --sync-interval-ms, a share of the
 * syncs carrying a changed inventory, and reports throughput and ack
 * latency.  --hold keeps them connected and idle instead, to measure the
 * server's memory per idle agent.
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/agent.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"

#define SIM_ENROLL_CONCURRENCY	64
#define SIM_CONNECT_CONCURRENCY	256
#define SIM_TICK_MS		5
#define SIM_SOFTWARE		300	/* synthetic packages per inventory */
#define SIM_PEM_MAX		(64u * 1024)
#define SIM_LAT_MAX		(8u * 1024 * 1024)	/* samples kept */

enum phase { PH_ENROLL, PH_CONNECT, PH_RUN, PH_DONE };

struct simagent {
	int		 idx;
	struct session	*sess;
	X509		*cert;
	EVP_PKEY	*key;
	uint32_t	 version;	/* bumped for a changed inventory */
	uint32_t	 hash_version;
	uint8_t		 enrolled;
	uint8_t		 up;
	uint8_t		 ever_up;
	uint8_t		 waiting;	/* a measured sync is in flight */
	char		 hash[65];
	char		 policy_hash[65];	/* the last policy received */
};

struct sim {
	struct event_base	*base;
	SSL_CTX			*ctx;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 host[256];
	const char		*server, *ca, *token, *dir;
	int			 n;
	double			 duration;
	uint32_t		 interval_ms;
	double			 changed_pct;
	int			 hold, json, verbose;
	struct simagent		*a;
	enum phase		 phase;

	/* enrolment */
	int			 enroll_next, enroll_active, enroll_done;
	int			 enroll_new, enroll_failed;
	uint64_t		 enroll_start_us, enroll_end_us;
	char			 enroll_err[1024];

	/* connection */
	int			 conn_next, conn_active, connected;
	char			 conn_err[256];	/* the first failure */
	uint64_t		 conn_start_us, conn_end_us;

	/* run */
	uint64_t		 run_start_us, run_end_us;
	uint64_t		 due_done;
	int			 cursor;
	uint64_t		 syncs_unchanged, syncs_changed, skipped;
	uint64_t		 retries, errors, disconnects, heartbeats;
	uint64_t		 policies;	/* 'policy' messages received */
	uint64_t		 policy_last_ms;	/* wall clock of the last */
	uint32_t		*lat;		/* microseconds */
	size_t			 nlat, caplat;
	uint64_t		 lat_max;

	/* the synthetic inventory */
	uint8_t			*tmpl;
	size_t			 tmpl_len;
	size_t			 off_host, off_boot;
	uint8_t			*scratch;

	struct event		*ev_tick, *ev_end, *ev_term, *ev_int;
};

static struct sim	 S;

static uint64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: canopy-sim --server HOST:PORT --ca FILE "
	    "--token T --agents N --dir DIR\n"
	    "                  [--duration S] [--sync-interval-ms MS] "
	    "[--changed PCT] [--hold]\n"
	    "                  [--json] [-v]\n"
	    "--duration 0 runs until SIGTERM or SIGINT.\n");
	exit(1);
}

/* The synthetic inventory. */

static void
pk_kv_u64fixed(msgpack_packer *pk, msgpack_sbuffer *sb, const char *k,
    uint64_t v, size_t *off)
{
	uint8_t	 b[9];
	int	 i;

	mp_key(pk, k);
	*off = sb->size + 1;
	b[0] = 0xcf;
	for (i = 0; i < 8; i++)
		b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	msgpack_sbuffer_write(sb, (const char *)b, sizeof(b));
}

static void
pk_kv_int(msgpack_packer *pk, const char *k, uint64_t v)
{
	mp_kv_uint(pk, k, v);
}

static void
sim_build_template(void)
{
	static const char *words[] = { "lib", "python3", "gnome", "x11",
	    "perl", "golang", "node", "fonts", "texlive", "linux" };
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	char		 name[64], ver[64];
	int		 i;
	const char	*pos;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9);
	/* Fixed widths, patched per agent and per change. */
	mp_kv_str(&pk, "hostname", "sim-XXXXXXX");
	mp_kv_str(&pk, "fqdn", "sim-YYYYYYY.sim.example");
	pk_kv_u64fixed(&pk, &sb, "boot_time", 1700000000000ULL, &S.off_boot);
	mp_kv_str(&pk, "agent_version", AGENT_VERSION);
	mp_key(&pk, "os");
	msgpack_pack_map(&pk, 6);
	mp_kv_str(&pk, "name", "Debian GNU/Linux");
	mp_kv_str(&pk, "version", "12");
	mp_kv_str(&pk, "id", "debian");
	mp_kv_str(&pk, "pretty_name", "Debian GNU/Linux 12 (bookworm)");
	mp_kv_str(&pk, "kernel", "6.1.0-18-amd64");
	mp_kv_str(&pk, "arch", "x86_64");
	mp_key(&pk, "hardware");
	msgpack_pack_map(&pk, 8);
	mp_kv_str(&pk, "cpu_model", "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz");
	pk_kv_int(&pk, "cpu_cores", 8);
	pk_kv_int(&pk, "memory_bytes", 17179869184ULL);
	mp_kv_bool(&pk, "virtual", 1);
	mp_kv_str(&pk, "hypervisor", "kvm");
	mp_kv_str(&pk, "vendor", "QEMU");
	mp_kv_str(&pk, "product", "Standard PC (Q35 + ICH9, 2009)");
	mp_key(&pk, "disks");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 3);
	mp_kv_str(&pk, "name", "vda");
	pk_kv_int(&pk, "size_bytes", 107374182400ULL);
	mp_kv_str(&pk, "model", "QEMU HARDDISK");
	msgpack_pack_map(&pk, 3);
	mp_kv_str(&pk, "name", "vdb");
	pk_kv_int(&pk, "size_bytes", 536870912000ULL);
	mp_kv_str(&pk, "model", "QEMU HARDDISK");
	mp_key(&pk, "interfaces");
	msgpack_pack_array(&pk, 2);
	for (i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 4);
		mp_kv_str(&pk, "name", i == 0 ? "eth0" : "eth1");
		mp_kv_str(&pk, "mac", i == 0 ? "52:54:00:12:34:56" :
		    "52:54:00:12:34:57");
		mp_key(&pk, "ipv4");
		msgpack_pack_array(&pk, 1);
		mp_str(&pk, i == 0 ? "10.20.30.40" : "192.168.100.40");
		mp_key(&pk, "ipv6");
		msgpack_pack_array(&pk, 1);
		mp_str(&pk, i == 0 ? "fe80::5054:ff:fe12:3456" :
		    "fe80::5054:ff:fe12:3457");
	}
	mp_key(&pk, "software");
	msgpack_pack_array(&pk, SIM_SOFTWARE);
	for (i = 0; i < SIM_SOFTWARE; i++) {
		snprintf(name, sizeof(name), "%s-package-%03d",
		    words[i % 10], i);
		snprintf(ver, sizeof(ver), "%d.%d.%d-%ddeb12u1", 1 + i % 7,
		    i % 13, i % 29, 1 + i % 3);
		msgpack_pack_map(&pk, 2);
		mp_kv_str(&pk, "name", name);
		mp_kv_str(&pk, "version", ver);
	}
	mp_key(&pk, "users");
	msgpack_pack_array(&pk, 2);
	for (i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 3);
		mp_kv_str(&pk, "name", i == 0 ? "alice" : "root");
		mp_kv_str(&pk, "tty", i == 0 ? "pts/0" : "tty1");
		pk_kv_int(&pk, "since", 1700000100000ULL + (uint64_t)i);
	}
	S.tmpl_len = sb.size;
	S.tmpl = malloc(sb.size);
	S.scratch = malloc(sb.size);
	if (S.tmpl == NULL || S.scratch == NULL)
		fatal("malloc");
	memcpy(S.tmpl, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	pos = memmem(S.tmpl, S.tmpl_len, "XXXXXXX", 7);
	S.off_host = (size_t)((const uint8_t *)pos - S.tmpl);
}

static void
sim_fill(struct simagent *a)
{
	char		 num[16];
	const uint8_t	*p;
	uint64_t	 bt = 1700000000000ULL + a->version;
	int		 i;

	memcpy(S.scratch, S.tmpl, S.tmpl_len);
	snprintf(num, sizeof(num), "%07d", a->idx % 10000000);
	memcpy(S.scratch + S.off_host, num, 7);
	p = memmem(S.scratch, S.tmpl_len, "YYYYYYY", 7);
	if (p != NULL)
		memcpy(S.scratch + (p - S.scratch), num, 7);
	for (i = 0; i < 8; i++)
		S.scratch[S.off_boot + (size_t)i] = (uint8_t)(bt >> (56 - 8 * i));
}

static int
hook_inventory(struct session *s, void *arg, const uint8_t **buf,
    size_t *len, const char **hash)
{
	struct simagent	*a = arg;

	sim_fill(a);
	if (a->hash[0] == '\0' || a->hash_version != a->version) {
		sha256_hex(S.scratch, S.tmpl_len, a->hash);
		a->hash_version = a->version;
	}
	*buf = S.scratch;
	*len = S.tmpl_len;
	*hash = a->hash;
	return 0;
}

static void	sim_connect_more(void);
static void	sim_start_run(void);
static void	sim_stop(void);

static void
lat_add(uint64_t us)
{
	if (us > S.lat_max)
		S.lat_max = us;
	if (S.nlat == S.caplat) {
		size_t		 ncap = S.caplat ? S.caplat * 2 : 65536;
		uint32_t	*nv;

		if (ncap > SIM_LAT_MAX || (nv = reallocarray(S.lat, ncap,
		    sizeof(*nv))) == NULL)
			return;
		S.lat = nv;
		S.caplat = ncap;
	}
	S.lat[S.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
hook_up(struct session *s, void *arg, const char *device_id)
{
	struct simagent	*a = arg;

	a->up = 1;
	if (!a->ever_up) {
		a->ever_up = 1;
		S.connected++;
		S.conn_active--;
		if (S.phase == PH_CONNECT)
			sim_connect_more();
	}
}

static void
hook_down(struct session *s, void *arg, const char *why)
{
	struct simagent	*a = arg;

	if (S.verbose)
		log_info("agent %d: down: %s", a->idx, why);
	a->waiting = 0;
	if (a->up) {
		a->up = 0;
		if (S.phase == PH_RUN)
			S.disconnects++;
	} else if (!a->ever_up && S.phase == PH_CONNECT) {
		/* Failed before its first hello: count it and move on. */
		a->ever_up = 1;
		S.errors++;
		if (S.conn_err[0] == '\0')
			strlcpy(S.conn_err, why, sizeof(S.conn_err));
		S.conn_active--;
		sim_connect_more();
	}
}

static void
hook_acked(struct session *s, void *arg, enum session_kind k, int inv,
    uint64_t us)
{
	struct simagent	*a = arg;

	if (S.phase != PH_RUN)
		return;
	if (k == SK_HEARTBEAT) {
		S.heartbeats++;
		return;
	}
	if (k != SK_SYNC || !a->waiting)
		return;
	a->waiting = 0;
	if (inv)
		S.syncs_changed++;
	else
		S.syncs_unchanged++;
	lat_add(us);
}

static void
hook_retried(struct session *s, void *arg, enum session_kind k)
{
	if (S.phase == PH_RUN)
		S.retries++;
}

static void
hook_error(struct session *s, void *arg, const char *code, const char *msg)
{
	struct simagent	*a = arg;

	S.errors++;
	if (S.verbose || S.errors <= 5)
		log_warnx("agent %d: server error %s: %s", a->idx, code, msg);
}

static void
hook_dead(struct session *s, void *arg, const char *why)
{
	struct simagent	*a = arg;

	log_warnx("agent %d: unknown to the server; remove %s to enrol again",
	    a->idx, S.dir);
	if (a->up)
		a->up = 0;
	if (!a->ever_up && S.phase == PH_CONNECT) {
		a->ever_up = 1;
		S.conn_active--;
		sim_connect_more();
	}
}

/*
 * A policy: answered with policy_ack like the real agent, and its arrival
 * time recorded, so that a benchmark can measure how long a change takes
 * to reach every simulated agent (bench/policy.sh).
 */
static void
sim_policy(struct session *s, struct simagent *a, const struct msg *m)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	struct timespec	 ts;

	if (msg_str(m, "hash", a->policy_hash, sizeof(a->policy_hash)) == -1)
		a->policy_hash[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	S.policy_last_ms = (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	S.policies++;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_POLICY_ACK, 2);
	mp_kv_str(&pk, "hash", a->policy_hash);
	(void)session_send(s, &sb);
}

/* What the server pushes beyond the session's own protocol. */
static void
hook_message(struct session *s, void *arg, const struct msg *m)
{
	struct simagent	*a = arg;

	if (m->type == MSG_POLICY)
		sim_policy(s, a, m);
}

static const struct session_hooks sim_hooks = {
	.message = hook_message,
	.inventory = hook_inventory,
	.up = hook_up,
	.down = hook_down,
	.acked = hook_acked,
	.retried = hook_retried,
	.error = hook_error,
	.dead = hook_dead,
};

/* Identities. */

static void
agent_path(int i, const char *ext, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/agent-%06d.%s", S.dir, i, ext);
}

static int
load_identity(struct simagent *a)
{
	char	 kp[1200], cp[1200];
	char	*k, *c;
	BIO	*b;
	size_t	 kl, cl;

	agent_path(a->idx, "key", kp, sizeof(kp));
	agent_path(a->idx, "pem", cp, sizeof(cp));
	if ((k = file_read(kp, SIM_PEM_MAX, &kl)) == NULL)
		return -1;
	if ((c = file_read(cp, SIM_PEM_MAX, &cl)) == NULL) {
		free(k);
		return -1;
	}
	if ((b = BIO_new_mem_buf(c, (int)cl)) != NULL) {
		a->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(k, (int)kl)) != NULL) {
		a->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	explicit_bzero(k, kl);
	free(k);
	free(c);
	if (a->cert == NULL || a->key == NULL) {
		X509_free(a->cert);
		EVP_PKEY_free(a->key);
		a->cert = NULL;
		a->key = NULL;
		return -1;
	}
	return 0;
}

static void	sim_enroll_more(void);

static void
enroll_done(struct enrollment *e, int status, const char *device_id,
    const char *key_pem, const char *cert_pem, const char *err, void *arg)
{
	struct simagent	*a = arg;
	char		 p[1200];

	S.enroll_active--;
	S.enroll_done++;
	if (status == 0) {
		agent_path(a->idx, "key", p, sizeof(p));
		if (file_write_atomic(p, key_pem, strlen(key_pem), 0600) == 0) {
			agent_path(a->idx, "pem", p, sizeof(p));
			if (file_write_atomic(p, cert_pem, strlen(cert_pem),
			    0644) == 0 && load_identity(a) == 0) {
				a->enrolled = 1;
				S.enroll_new++;
			}
		}
		if (!a->enrolled)
			log_warn("agent %d: cannot store its identity", a->idx);
	}
	if (!a->enrolled) {
		S.enroll_failed++;
		if (S.enroll_err[0] == '\0' && err != NULL)
			strlcpy(S.enroll_err, err, sizeof(S.enroll_err));
		if (S.verbose || S.enroll_failed <= 3)
			log_warnx("agent %d: enrolment failed: %s", a->idx,
			    err != NULL ? err : "?");
	}
	sim_enroll_more();
}

static void
sim_enroll_more(void)
{
	struct simagent	*a;
	char		 name[64];

	while (S.enroll_active < SIM_ENROLL_CONCURRENCY && S.enroll_next < S.n) {
		a = &S.a[S.enroll_next++];
		if (a->enrolled) {
			S.enroll_done++;
			continue;
		}
		/* A bad token fails every one of them: stop early. */
		if (S.enroll_failed > 0 && S.enroll_new == 0 &&
		    S.enroll_failed >= SIM_ENROLL_CONCURRENCY) {
			S.enroll_done++;
			S.enroll_failed++;
			continue;
		}
		snprintf(name, sizeof(name), "sim-%07d", a->idx);
		S.enroll_active++;
		if (enroll_start(S.base, S.ctx, (struct sockaddr *)&S.ss,
		    S.sslen, S.host, S.ca, S.token, name, enroll_done,
		    a) == NULL) {
			S.enroll_active--;
			S.enroll_done++;
			S.enroll_failed++;
		}
	}
	if (S.enroll_done == S.n && S.enroll_active == 0 &&
	    S.phase == PH_ENROLL) {
		S.enroll_end_us = now_us();
		if (S.verbose || S.enroll_new > 0)
			log_info("enrolled %d new agent(s) in %.2f s (%d failed)",
			    S.enroll_new, (S.enroll_end_us - S.enroll_start_us) /
			    1e6, S.enroll_failed);
		S.phase = PH_CONNECT;
		S.conn_start_us = now_us();
		sim_connect_more();
	}
}

/* Connecting. */

static void
sim_connect_more(void)
{
	struct session_cfg	 cfg;
	struct simagent		*a;
	char			 name[64];

	while (S.conn_active < SIM_CONNECT_CONCURRENCY && S.conn_next < S.n) {
		a = &S.a[S.conn_next++];
		if (!a->enrolled)
			continue;
		memset(&cfg, 0, sizeof(cfg));
		cfg.base = S.base;
		cfg.ctx = S.ctx;
		cfg.cert = a->cert;
		cfg.key = a->key;
		cfg.addr = (struct sockaddr *)&S.ss;
		cfg.addrlen = S.sslen;
		cfg.sni = S.host;
		snprintf(name, sizeof(name), "sim-%07d", a->idx);
		cfg.name = name;	/* copied */
		cfg.reconnect = 1;
		if ((a->sess = session_new(&cfg, &sim_hooks, a)) == NULL)
			fatalx("out of memory at agent %d", a->idx);
		S.conn_active++;
		(void)session_start(a->sess);
	}
	if (S.conn_next == S.n && S.conn_active == 0 && S.phase == PH_CONNECT) {
		S.conn_end_us = now_us();
		if (S.verbose)
			log_info("%d agent(s) connected in %.2f s", S.connected,
			    (S.conn_end_us - S.conn_start_us) / 1e6);
		if (S.connected == 0) {
			log_warnx("no agent could connect%s%s",
			    S.conn_err[0] ? ": " : "", S.conn_err);
			sim_stop();
			return;
		}
		sim_start_run();
	}
}

/* Running. */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	 now = now_us(), due;
	struct simagent	*a;
	struct timeval	 tv = { 0, SIM_TICK_MS * 1000 };

	if (S.phase != PH_RUN)
		return;
	/* Every agent once per interval, spread evenly over it. */
	due = (now - S.run_start_us) * (uint64_t)S.n /
	    ((uint64_t)S.interval_ms * 1000);
	while (S.due_done < due) {
		S.due_done++;
		a = &S.a[S.cursor];
		S.cursor = (S.cursor + 1) % S.n;
		if (a->sess == NULL || !a->up)
			continue;
		if (a->waiting) {
			S.skipped++;
			continue;
		}
		if (S.changed_pct > 0 &&
		    arc4random_uniform(1000000) < S.changed_pct * 10000)
			a->version++;
		a->waiting = 1;
		session_sync(a->sess, 0);
	}
	evtimer_add(S.ev_tick, &tv);
}

static void
sim_stop(void)
{
	if (S.phase == PH_DONE)
		return;
	if (S.phase == PH_RUN)
		S.run_end_us = now_us();
	S.phase = PH_DONE;
	event_base_loopbreak(S.base);
}

static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	sim_stop();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	sim_stop();
}

static void
sim_start_run(void)
{
	struct timeval	 tv;

	S.phase = PH_RUN;
	S.run_start_us = now_us();
	if (S.duration > 0) {
		tv.tv_sec = (time_t)S.duration;
		tv.tv_usec = (suseconds_t)((S.duration - (double)tv.tv_sec) *
		    1e6);
		evtimer_add(S.ev_end, &tv);
	}
	if (!S.hold) {
		tv.tv_sec = 0;
		tv.tv_usec = SIM_TICK_MS * 1000;
		evtimer_add(S.ev_tick, &tv);
	}
	if (S.verbose)
		log_info("running%s", S.hold ? " (holding)" : "");
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	size_t	 i;

	if (S.nlat == 0)
		return 0;
	i = (size_t)(p * (double)(S.nlat - 1) + 0.5);
	return S.lat[i] / 1000.0;
}

/* How many agents hold each policy (by hash) now. */
static json_t *
sim_policy_hashes(void)
{
	json_t	*o = json_object();
	int	 i;

	for (i = 0; o != NULL && i < S.n; i++) {
		const char *h = S.a[i].policy_hash[0] ? S.a[i].policy_hash :
		    "none";
		json_t *c = json_object_get(o, h);

		json_object_set_new(o, h, json_integer(c ?
		    json_integer_value(c) + 1 : 1));
	}
	return o;
}

static void
sim_report(void)
{
	double	 enroll_s, run_s, conn_s;
	json_t	*o;
	int	 connected_now = 0, i;

	for (i = 0; i < S.n; i++)
		connected_now += S.a[i].up;
	if (S.nlat > 0)
		qsort(S.lat, S.nlat, sizeof(*S.lat), u32_cmp);
	enroll_s = (S.enroll_end_us - S.enroll_start_us) / 1e6;
	conn_s = S.conn_end_us > S.conn_start_us ?
	    (S.conn_end_us - S.conn_start_us) / 1e6 : 0;
	run_s = S.run_end_us > S.run_start_us ?
	    (S.run_end_us - S.run_start_us) / 1e6 : 0;
	o = json_object();
	json_object_set_new(o, "agents", json_integer(S.n));
	json_object_set_new(o, "enrolled_new", json_integer(S.enroll_new));
	json_object_set_new(o, "enroll_failed", json_integer(S.enroll_failed));
	json_object_set_new(o, "enroll_s", json_real(enroll_s));
	json_object_set_new(o, "enroll_per_s", json_real(enroll_s > 0 ?
	    S.enroll_new / enroll_s : 0));
	json_object_set_new(o, "connected", json_integer(S.connected));
	json_object_set_new(o, "connected_end", json_integer(connected_now));
	json_object_set_new(o, "connect_s", json_real(conn_s));
	json_object_set_new(o, "duration_s", json_real(run_s));
	json_object_set_new(o, "hold", json_boolean(S.hold));
	json_object_set_new(o, "sync_interval_ms",
	    json_integer(S.interval_ms));
	json_object_set_new(o, "changed_pct", json_real(S.changed_pct));
	json_object_set_new(o, "syncs_unchanged",
	    json_integer((json_int_t)S.syncs_unchanged));
	json_object_set_new(o, "syncs_changed",
	    json_integer((json_int_t)S.syncs_changed));
	json_object_set_new(o, "syncs_unchanged_per_s", json_real(run_s > 0 ?
	    S.syncs_unchanged / run_s : 0));
	json_object_set_new(o, "syncs_changed_per_s", json_real(run_s > 0 ?
	    S.syncs_changed / run_s : 0));
	json_object_set_new(o, "syncs_per_s", json_real(run_s > 0 ?
	    (S.syncs_unchanged + S.syncs_changed) / run_s : 0));
	json_object_set_new(o, "inventory_bytes", json_integer(
	    (json_int_t)S.tmpl_len));
	json_object_set_new(o, "ack_p50_ms", json_real(pct(0.50)));
	json_object_set_new(o, "ack_p99_ms", json_real(pct(0.99)));
	json_object_set_new(o, "ack_max_ms", json_real(S.lat_max / 1000.0));
	json_object_set_new(o, "skipped", json_integer((json_int_t)S.skipped));
	json_object_set_new(o, "retries", json_integer((json_int_t)S.retries));
	json_object_set_new(o, "errors", json_integer((json_int_t)S.errors));
	json_object_set_new(o, "disconnects",
	    json_integer((json_int_t)S.disconnects));
	json_object_set_new(o, "policies",
	    json_integer((json_int_t)S.policies));
	json_object_set_new(o, "policy_last_ms",
	    json_integer((json_int_t)S.policy_last_ms));
	json_object_set_new(o, "policy_hashes", sim_policy_hashes());
	if (S.enroll_err[0] != '\0')
		json_object_set_new(o, "enroll_error",
		    json_string(S.enroll_err));
	if (S.conn_err[0] != '\0')
		json_object_set_new(o, "connect_error",
		    json_string(S.conn_err));
	if (S.json) {
		json_dumpf(o, stdout, JSON_COMPACT);
		printf("\n");
	} else {
		printf("agents            %d (%d newly enrolled, %d failed)\n",
		    S.n, S.enroll_new, S.enroll_failed);
		printf("enrolment         %.2f s, %.1f/s\n", enroll_s,
		    enroll_s > 0 ? S.enroll_new / enroll_s : 0);
		printf("connected         %d in %.2f s (%d at the end)\n",
		    S.connected, conn_s, connected_now);
		printf("run               %.2f s%s, interval %u ms, %.1f%% "
		    "changed\n", run_s, S.hold ? " (hold)" : "",
		    S.interval_ms, S.changed_pct);
		printf("syncs unchanged   %" PRIu64 " (%.1f/s)\n",
		    S.syncs_unchanged, run_s > 0 ? S.syncs_unchanged / run_s :
		    0);
		printf("syncs changed     %" PRIu64 " (%.1f/s, %zu bytes "
		    "each)\n", S.syncs_changed, run_s > 0 ? S.syncs_changed /
		    run_s : 0, S.tmpl_len);
		printf("ack latency       p50 %.2f ms, p99 %.2f ms, max %.2f "
		    "ms\n", pct(0.50), pct(0.99), S.lat_max / 1000.0);
		printf("skipped           %" PRIu64 " (previous sync "
		    "unanswered)\n", S.skipped);
		printf("retries           %" PRIu64 "\n", S.retries);
		printf("errors            %" PRIu64 "\n", S.errors);
		printf("disconnects       %" PRIu64 "\n", S.disconnects);
		printf("policies          %" PRIu64 " received, the last at "
		    "%" PRIu64 " ms (unix)\n", S.policies, S.policy_last_ms);
		if (S.enroll_err[0] != '\0')
			printf("enrolment error   %s\n", S.enroll_err);
	}
	json_decref(o);
}

/* Cached identities belong to one CA: a new server means a new cache. */
static void
sim_check_cache(void)
{
	char	 p[1200];
	char	*want, *have;
	size_t	 wl, hl;
	int	 i;

	snprintf(p, sizeof(p), "%s/ca.pem", S.dir);
	if ((want = file_read(S.ca, SIM_PEM_MAX, &wl)) == NULL)
		fatal("%s", S.ca);
	have = file_read(p, SIM_PEM_MAX, &hl);
	if (have == NULL || hl != wl || memcmp(have, want, wl) != 0) {
		if (have != NULL)
			log_info("%s: another CA, enrolling again", S.dir);
		for (i = 0; i < S.n; i++) {
			char	 f[1200];

			agent_path(i, "key", f, sizeof(f));
			unlink(f);
			agent_path(i, "pem", f, sizeof(f));
			unlink(f);
		}
		if (file_write_atomic(p, want, wl, 0644) == -1)
			fatal("%s", p);
	}
	free(want);
	free(have);
}

static void
raise_nofile(int n)
{
	struct rlimit	 rl;
	rlim_t		 want = (rlim_t)n + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
	    want : rl.rlim_max;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		rl.rlim_max = want;	/* works as root */
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < want)
		log_warnx("open files limited to %llu: not all %d agents can "
		    "connect", (unsigned long long)rl.rlim_cur, n);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'c' },
		{ "token", required_argument, NULL, 't' },
		{ "agents", required_argument, NULL, 'n' },
		{ "dir", required_argument, NULL, 'D' },
		{ "duration", required_argument, NULL, 'T' },
		{ "sync-interval-ms", required_argument, NULL, 'i' },
		{ "changed", required_argument, NULL, 'p' },
		{ "hold", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	char		 err[2048];
	int		 ch, i;
	char		*ep;

	S.duration = 10;
	S.interval_ms = 1000;
	S.token = "";
	while ((ch = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (ch) {
		case 's': S.server = optarg; break;
		case 'c': S.ca = optarg; break;
		case 't': S.token = optarg; break;
		case 'D': S.dir = optarg; break;
		case 'n':
			S.n = (int)strtol(optarg, &ep, 10);
			if (*ep != '\0' || S.n < 1 || S.n > AGENTS_MAX_MAX)
				fatalx("--agents: 1..%d", AGENTS_MAX_MAX);
			break;
		case 'T':
			S.duration = strtod(optarg, &ep);
			if (*ep != '\0' || S.duration < 0)
				fatalx("--duration: seconds >= 0");
			break;
		case 'i':
			S.interval_ms = (uint32_t)strtoul(optarg, &ep, 10);
			if (*ep != '\0' || S.interval_ms < 1)
				fatalx("--sync-interval-ms: >= 1");
			break;
		case 'p':
			S.changed_pct = strtod(optarg, &ep);
			if (*ep != '\0' || S.changed_pct < 0 ||
			    S.changed_pct > 100)
				fatalx("--changed: 0..100");
			break;
		case 'H': S.hold = 1; break;
		case 'j': S.json = 1; break;
		case 'v': S.verbose = 1; break;
		default: usage();
		}
	}
	if (S.server == NULL || S.ca == NULL || S.dir == NULL || S.n == 0 ||
	    optind != argc)
		usage();
	log_init("canopy-sim", S.verbose ? LOG_LVL_INFO : LOG_LVL_WARN, 0);
	signal(SIGPIPE, SIG_IGN);
	if (mkdir_p(S.dir, 0700) == -1)
		fatal("%s", S.dir);
	if (agent_resolve(S.server, &S.ss, &S.sslen, S.host, sizeof(S.host),
	    err, sizeof(err)) != 0)
		fatalx("%s", err);
	if ((S.ctx = tls_client_ctx(S.ca, NULL, NULL, err,
	    sizeof(err))) == NULL)
		fatalx("%s", err);
	raise_nofile(S.n);
	sim_build_template();
	sim_check_cache();
	if ((S.a = calloc((size_t)S.n, sizeof(*S.a))) == NULL)
		fatal("calloc");
	for (i = 0; i < S.n; i++) {
		S.a[i].idx = i;
		if (load_identity(&S.a[i]) == 0)
			S.a[i].enrolled = 1;
	}
	if ((S.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	S.ev_tick = evtimer_new(S.base, on_tick, NULL);
	S.ev_end = evtimer_new(S.base, on_end, NULL);
	S.ev_term = evsignal_new(S.base, SIGTERM, on_signal, NULL);
	S.ev_int = evsignal_new(S.base, SIGINT, on_signal, NULL);
	evsignal_add(S.ev_term, NULL);
	evsignal_add(S.ev_int, NULL);

	S.phase = PH_ENROLL;
	S.enroll_start_us = now_us();
	sim_enroll_more();
	if (S.phase != PH_DONE)
		event_base_dispatch(S.base);
	if (S.run_end_us == 0 && S.run_start_us != 0)
		S.run_end_us = now_us();
	if (S.enroll_end_us == 0)
		S.enroll_end_us = now_us();
	sim_report();

	for (i = 0; i < S.n; i++) {
		session_free(S.a[i].sess);
		X509_free(S.a[i].cert);
		EVP_PKEY_free(S.a[i].key);
	}
	/* Let the closing connections go. */
	event_base_loop(S.base, EVLOOP_NONBLOCK);
	event_free(S.ev_tick);
	event_free(S.ev_end);
	event_free(S.ev_term);
	event_free(S.ev_int);
	event_base_free(S.base);
	SSL_CTX_free(S.ctx);
	free(S.a);
	free(S.lat);
	free(S.tmpl);
	free(S.scratch);
	return S.connected > 0 || S.n == 0 ? 0 : 1;
}
