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
 * canopy-agent: enrol with a server, then run in the foreground (systemd
 * style), syncing the inventory and delivering queued events.
 *
 *   canopy-agent enroll --server HOST:PORT --ca FILE --token T
 *	[--state-dir DIR] [--name NAME] [--force]
 *   canopy-agent run [--state-dir DIR] [-d] [-v] [--pidfile F]
 *   canopy-agent inventory
 *   canopy-agent event [--state-dir DIR] --severity S --type T TEXT...
 *   canopy-agent status [--state-dir DIR]
 */

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>
#include <openssl/ssl.h>

#include "agent.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"

#define PEM_MAX		(64u * 1024)
#define AGENT_NOTIFY_DELAY_MS	50	/* new event files: scan this soon */

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: canopy-agent enroll --server HOST:PORT --ca FILE "
	    "--token T [--state-dir DIR]\n"
	    "                           [--name NAME] [--force]\n"
	    "       canopy-agent run [--state-dir DIR] [-d] [-v] "
	    "[--pidfile FILE]\n"
	    "       canopy-agent inventory\n"
	    "       canopy-agent event [--state-dir DIR] --severity "
	    "info|warning|error|critical\n"
	    "                          --type TYPE TEXT...\n"
	    "       canopy-agent status [--state-dir DIR]\n");
	exit(1);
}

static int
write_in(const char *dir, const char *file, const char *data, mode_t mode)
{
	char	 path[1200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (file_write_atomic(path, data, strlen(data), mode) == -1) {
		fprintf(stderr, "canopy-agent: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
cmd_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'c' },
		{ "token", required_argument, NULL, 't' },
		{ "state-dir", required_argument, NULL, 'D' },
		{ "name", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*server = NULL, *ca = NULL, *token = NULL;
	const char		*dir = AGENT_STATE_DIR;
	char			 name[256], id[MSG_MAX_NAME + 1], err[4096];
	char			*key = NULL, *cert = NULL, *capem;
	struct agent_state	 st;
	size_t			 len;
	int			 ch, force = 0, named = 0;

	if (gethostname(name, sizeof(name)) == -1)
		strlcpy(name, "agent", sizeof(name));
	name[sizeof(name) - 1] = '\0';
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': server = optarg; break;
		case 'c': ca = optarg; break;
		case 't': token = optarg; break;
		case 'D': dir = optarg; break;
		case 'n':
			strlcpy(name, optarg, sizeof(name));
			named = 1;
			break;
		case 'f': force = 1; break;
		default: usage();
		}
	}
	if (server == NULL || ca == NULL || token == NULL || optind != argc)
		usage();
	if (state_enrolled(dir) && !force) {
		fprintf(stderr, "canopy-agent: already enrolled (%s/state.json"
		    " exists); use --force to enrol again\n", dir);
		return 1;
	}
	if ((capem = file_read(ca, PEM_MAX, &len)) == NULL) {
		fprintf(stderr, "canopy-agent: %s: %s\n", ca, strerror(errno));
		return 1;
	}
	if (enroll_run(server, ca, token, name, id, sizeof(id), &key, &cert,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "canopy-agent: enrolment with %s failed: %s\n",
		    server, err);
		free(capem);
		return 1;
	}
	if (mkdir_p(dir, 0700) == -1 || chmod(dir, 0700) == -1) {
		fprintf(stderr, "canopy-agent: %s: %s\n", dir, strerror(errno));
		goto fail;
	}
	memset(&st, 0, sizeof(st));
	strlcpy(st.dir, dir, sizeof(st.dir));
	strlcpy(st.server, server, sizeof(st.server));
	strlcpy(st.device_id, id, sizeof(st.device_id));
	if (named)
		strlcpy(st.name, name, sizeof(st.name));
	if (write_in(dir, "agent.key", key, 0600) == -1 ||
	    write_in(dir, "agent.pem", cert, 0644) == -1 ||
	    write_in(dir, "ca.pem", capem, 0644) == -1)
		goto fail;
	if (state_save(&st) == -1) {
		fprintf(stderr, "canopy-agent: cannot write %s/state.json\n",
		    dir);
		goto fail;
	}
	printf("%s\n", id);
	explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	free(capem);
	return 0;
fail:
	explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	free(capem);
	return 1;
}

/* The running agent. */

struct agent {
	struct event_base	*base;
	struct agent_state	 st;
	struct session		*sess;
	struct evq		*evq;
	msgpack_sbuffer		 inv;
	char			 inv_hash[65];
	struct event		*ev_scan, *ev_inv, *ev_term, *ev_int, *ev_hup;
	struct event		*ev_notify, *ev_soon;
	int			 notify_fd;
	int			 exit_code;
};

static int
hook_inventory(struct session *s, void *arg, const uint8_t **buf,
    size_t *len, const char **hash)
{
	struct agent	*a = arg;

	if (a->inv.size == 0)
		return -1;
	*buf = (const uint8_t *)a->inv.data;
	*len = a->inv.size;
	*hash = a->inv_hash;
	return 0;
}

static void
hook_inventory_acked(struct session *s, void *arg, const char *hash)
{
	struct agent	*a = arg;

	if (strcmp(a->st.inv_hash, hash) == 0)
		return;
	strlcpy(a->st.inv_hash, hash, sizeof(a->st.inv_hash));
	(void)state_save(&a->st);
	log_info("inventory %.12s acknowledged", hash);
}

static size_t
hook_events_take(struct session *s, void *arg, msgpack_sbuffer *sb,
    size_t max)
{
	struct agent	*a = arg;

	return evq_take(a->evq, sb, max);
}

static void
hook_events_acked(struct session *s, void *arg)
{
	struct agent	*a = arg;

	evq_ack(a->evq);
}

static void
hook_events_unflight(struct session *s, void *arg)
{
	struct agent	*a = arg;

	evq_unflight(a->evq);
}

static void
hook_up(struct session *s, void *arg, const char *device_id)
{
	struct agent	*a = arg;

	log_info("connected to %s as %s", a->st.server, device_id);
	if (device_id[0] != '\0' && strcmp(device_id, a->st.device_id) != 0)
		log_warnx("server knows this agent as %s, state says %s",
		    device_id, a->st.device_id);
	agent_tasks_up(s);
}

/* Policies and tasks: their own modules. */
static void
hook_message(struct session *s, void *arg, const struct msg *m)
{
	if (m->type == MSG_POLICY)
		agent_policy_on_msg(s, m);
	else if (m->type == MSG_TASK)
		agent_tasks_on_msg(s, m);
}

static void
hook_other_acked(struct session *s, void *arg, uint64_t seq, int ok,
    uint64_t after_ms)
{
	agent_tasks_acked(s, seq, ok, after_ms);
}

static void
hook_down(struct session *s, void *arg, const char *why)
{
	struct agent	*a = arg;

	log_info("disconnected from %s: %s", a->st.server, why);
}

static void
hook_dead(struct session *s, void *arg, const char *why)
{
	struct agent	*a = arg;

	log_warnx("the server does not know device %s any more (%s): "
	    "enrol again with 'canopy-agent enroll --force'", a->st.device_id,
	    why);
	a->exit_code = 2;
	event_base_loopbreak(a->base);
}

static const struct session_hooks agent_hooks = {
	.message = hook_message,
	.other_acked = hook_other_acked,
	.inventory = hook_inventory,
	.inventory_acked = hook_inventory_acked,
	.events_take = hook_events_take,
	.events_acked = hook_events_acked,
	.events_unflight = hook_events_unflight,
	.up = hook_up,
	.down = hook_down,
	.dead = hook_dead,
};

static void
agent_collect(struct agent *a)
{
	msgpack_sbuffer	 sb;
	char		 hash[65];

	msgpack_sbuffer_init(&sb);
	if (inventory_build(&sb, hash, a->st.name) == -1) {
		log_warnx("inventory collection failed");
		msgpack_sbuffer_destroy(&sb);
		return;
	}
	if (strcmp(hash, a->inv_hash) == 0) {
		msgpack_sbuffer_destroy(&sb);
		return;
	}
	msgpack_sbuffer_destroy(&a->inv);
	a->inv = sb;
	strlcpy(a->inv_hash, hash, sizeof(a->inv_hash));
	log_debug("inventory %.12s, %zu bytes", hash, sb.size);
	if (a->sess != NULL)
		session_sync(a->sess, 0);
}

static void
on_inventory_timer(evutil_socket_t fd, short what, void *arg)
{
	agent_collect(arg);
}

static void
on_scan_timer(evutil_socket_t fd, short what, void *arg)
{
	struct agent	*a = arg;
	int		 n;

	if ((n = evq_scan(a->evq)) > 0) {
		log_debug("%d new event(s) queued", n);
		session_events_kick(a->sess);
	}
}

/* A file renamed into events/: pick it up now rather than at the next scan. */
static void
on_notify(evutil_socket_t fd, short what, void *arg)
{
	char	 buf[4096];

	struct agent	*a = arg;
	struct timeval	 tv = { 0, AGENT_NOTIFY_DELAY_MS * 1000 };

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	/* A burst of new files costs one scan. */
	if (!evtimer_pending(a->ev_soon, NULL))
		evtimer_add(a->ev_soon, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent	*a = arg;

	if (sig == SIGHUP) {
		log_info("SIGHUP: collecting the inventory");
		agent_collect(a);
		return;
	}
	log_info("signal %d: exiting", (int)sig);
	event_base_loopbreak(a->base);
}

static int
cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*dir = AGENT_STATE_DIR, *pidfile = NULL;
	enum log_level		 level = LOG_LVL_WARN;
	struct agent		 a;
	struct session_cfg	 cfg;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	SSL_CTX			*ctx;
	char			 err[2048], host[256], ca[1200], crt[1200];
	char			 key[1200], pid[32], hostname[256];
	struct timeval		 tv;
	uint32_t		 backoff;
	int			 ch, rv;

	while ((ch = getopt_long(argc, argv, "dv", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': level = LOG_LVL_DEBUG; break;
		case 'v': if (level < LOG_LVL_INFO) level = LOG_LVL_INFO; break;
		case 'D': dir = optarg; break;
		case 'p': pidfile = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("canopy-agent", level, 0);
	memset(&a, 0, sizeof(a));
	msgpack_sbuffer_init(&a.inv);
	if (state_load(dir, &a.st, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* Before the loop exists: a name that does not resolve yet (DNS not
	 * up at boot) is waited for, with the same backoff as reconnects. */
	for (backoff = AGENT_BACKOFF_MIN_MS; (rv = agent_resolve(a.st.server,
	    &ss, &sslen, host, sizeof(host), err, sizeof(err))) != 0; ) {
		uint32_t	 ms = AGENT_BACKOFF_MIN_MS +
		    arc4random_uniform(backoff - AGENT_BACKOFF_MIN_MS + 1);

		if (rv == -2)
			fatalx("%s/state.json: %s", dir, err);
		log_warnx("%s; trying again in %u ms", err, ms);
		usleep(ms * 1000);
		if (backoff < AGENT_BACKOFF_MAX_MS / 2)
			backoff *= 2;
		else
			backoff = AGENT_BACKOFF_MAX_MS;
	}
	state_path(&a.st, "ca.pem", ca, sizeof(ca));
	state_path(&a.st, "agent.pem", crt, sizeof(crt));
	state_path(&a.st, "agent.key", key, sizeof(key));
	if ((ctx = tls_client_ctx(ca, crt, key, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if ((a.evq = evq_open(dir, AGENT_QUEUE_MAX_EVENTS, err,
	    sizeof(err))) == NULL)
		fatalx("%s", err);
	if (pidfile != NULL) {
		snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (file_write_atomic(pidfile, pid, strlen(pid), 0644) == -1)
			fatal("%s", pidfile);
	}
	signal(SIGPIPE, SIG_IGN);
	if ((a.base = event_base_new()) == NULL)
		fatalx("event_base_new");

	agent_collect(&a);
	memset(&cfg, 0, sizeof(cfg));
	cfg.base = a.base;
	cfg.ctx = ctx;
	cfg.addr = (struct sockaddr *)&ss;
	cfg.addrlen = sslen;
	cfg.sni = host;
	if (gethostname(hostname, sizeof(hostname)) == -1)
		strlcpy(hostname, a.st.device_id, sizeof(hostname));
	hostname[sizeof(hostname) - 1] = '\0';
	cfg.name = hostname;
	cfg.reconnect = 1;
	if (agent_policy_init(a.st.dir) == -1)
		fatalx("cannot read the stored policy in %s", a.st.dir);
	if (agent_tasks_init(a.base, a.st.dir) == -1)
		fatalx("cannot set up the task runner in %s", a.st.dir);
	if ((a.sess = session_new(&cfg, &agent_hooks, &a)) == NULL)
		fatalx("out of memory");
	session_set_acked_hash(a.sess, a.st.inv_hash);

	a.ev_scan = event_new(a.base, -1, EV_PERSIST, on_scan_timer, &a);
	a.ev_inv = event_new(a.base, -1, EV_PERSIST, on_inventory_timer, &a);
	a.ev_term = evsignal_new(a.base, SIGTERM, on_signal, &a);
	a.ev_int = evsignal_new(a.base, SIGINT, on_signal, &a);
	a.ev_hup = evsignal_new(a.base, SIGHUP, on_signal, &a);
	tv.tv_sec = AGENT_QUEUE_SCAN_MS / 1000;
	tv.tv_usec = (AGENT_QUEUE_SCAN_MS % 1000) * 1000;
	evtimer_add(a.ev_scan, &tv);
	/* The policy's inventory_interval_s, within sane bounds. */
	tv.tv_sec = agent_policy_int("inventory_interval_s", AGENT_INVENTORY_S);
	if (tv.tv_sec < AGENT_INVENTORY_MIN_S || tv.tv_sec > AGENT_INVENTORY_MAX_S)
		tv.tv_sec = AGENT_INVENTORY_S;
	tv.tv_usec = 0;
	evtimer_add(a.ev_inv, &tv);
	evsignal_add(a.ev_term, NULL);
	evsignal_add(a.ev_int, NULL);
	a.notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a.notify_fd != -1) {
		char	 evdir[1200];

		snprintf(evdir, sizeof(evdir), "%s/events", dir);
		if (inotify_add_watch(a.notify_fd, evdir, IN_MOVED_TO) == -1) {
			log_warn("inotify %s (scanning every %d ms instead)",
			    evdir, AGENT_QUEUE_SCAN_MS);
			close(a.notify_fd);
			a.notify_fd = -1;
		} else {
			a.ev_notify = event_new(a.base, a.notify_fd,
			    EV_READ | EV_PERSIST, on_notify, &a);
			a.ev_soon = evtimer_new(a.base, on_scan_timer, &a);
			event_add(a.ev_notify, NULL);
		}
	}
	evsignal_add(a.ev_hup, NULL);

	log_info("device %s, server %s, %zu queued event(s)",
	    a.st.device_id, a.st.server, evq_count(a.evq));
	(void)session_start(a.sess);
	event_base_dispatch(a.base);

	session_free(a.sess);
	/* The connection is freed from its own event: let it run. */
	event_base_loop(a.base, EVLOOP_NONBLOCK);
	event_free(a.ev_scan);
	event_free(a.ev_inv);
	event_free(a.ev_term);
	event_free(a.ev_int);
	event_free(a.ev_hup);
	if (a.ev_notify != NULL) {
		event_free(a.ev_notify);
		event_free(a.ev_soon);
	}
	if (a.notify_fd != -1)
		close(a.notify_fd);
	event_base_free(a.base);
	evq_close(a.evq);
	msgpack_sbuffer_destroy(&a.inv);
	SSL_CTX_free(ctx);
	if (pidfile != NULL)
		unlink(pidfile);
	return a.exit_code;
}

static int
cmd_inventory(int argc, char **argv)
{
	msgpack_sbuffer	 sb;
	msgpack_unpacked up;
	json_t		*j;
	char		 hash[65];

	if (argc > 1)
		usage();
	log_init("canopy-agent", LOG_LVL_WARN, 0);
	msgpack_sbuffer_init(&sb);
	if (inventory_build(&sb, hash, NULL) == -1) {
		fprintf(stderr, "canopy-agent: inventory collection failed\n");
		return 1;
	}
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, sb.data, sb.size, NULL) !=
	    MSGPACK_UNPACK_SUCCESS || (j = mp_to_json(&up.data)) == NULL) {
		fprintf(stderr, "canopy-agent: cannot convert the inventory\n");
		return 1;
	}
	json_dumpf(j, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(j);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

static int
cmd_event(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'D' },
		{ "severity", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*dir = AGENT_STATE_DIR, *sev = NULL, *type = NULL;
	char		 text[MSG_MAX_EVENT_TEXT + 1], err[1024];
	struct evq	*q;
	int		 ch, i;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'D': dir = optarg; break;
		case 's': sev = optarg; break;
		case 't': type = optarg; break;
		default: usage();
		}
	}
	if (sev == NULL || type == NULL || optind >= argc)
		usage();
	log_init("canopy-agent", LOG_LVL_WARN, 0);
	if (!event_severity_ok(sev)) {
		fprintf(stderr, "canopy-agent: severity must be info, warning, "
		    "error or critical\n");
		return 1;
	}
	if (strlen(type) == 0 || strlen(type) > 64) {
		fprintf(stderr, "canopy-agent: type must be 1..64 bytes\n");
		return 1;
	}
	text[0] = '\0';
	for (i = optind; i < argc; i++) {
		if (i > optind)
			strlcat(text, " ", sizeof(text));
		if (strlcat(text, argv[i], sizeof(text)) >= sizeof(text)) {
			fprintf(stderr, "canopy-agent: text is longer than %u "
			    "bytes\n", MSG_MAX_EVENT_TEXT);
			return 1;
		}
	}
	if ((q = evq_open(dir, AGENT_QUEUE_MAX_EVENTS, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "canopy-agent: %s\n", err);
		return 1;
	}
	if (evq_put(q, sev, type, text) == -1) {
		fprintf(stderr, "canopy-agent: cannot queue the event: %s\n",
		    strerror(errno));
		evq_close(q);
		return 1;
	}
	evq_close(q);
	return 0;
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*dir = AGENT_STATE_DIR;
	struct agent_state	 st;
	struct evq		*q;
	char			 err[2048];
	int			 ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'D': dir = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("canopy-agent", LOG_LVL_WARN, 0);
	if (state_load(dir, &st, err, sizeof(err)) == -1) {
		fprintf(stderr, "canopy-agent: %s\n", err);
		return 1;
	}
	printf("device:    %s\n", st.device_id);
	printf("server:    %s\n", st.server);
	printf("inventory: %s\n", st.inv_hash[0] ? st.inv_hash :
	    "(never acknowledged)");
	if ((q = evq_open(dir, AGENT_QUEUE_MAX_EVENTS, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "canopy-agent: %s\n", err);
		return 1;
	}
	printf("queued:    %zu event(s)\n", evq_count(q));
	evq_close(q);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	argc--;
	argv++;
	optind = 1;
	if (strcmp(argv[0], "enroll") == 0)
		return cmd_enroll(argc, argv);
	if (strcmp(argv[0], "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(argv[0], "inventory") == 0)
		return cmd_inventory(argc, argv);
	if (strcmp(argv[0], "event") == 0)
		return cmd_event(argc, argv);
	if (strcmp(argv[0], "status") == 0)
		return cmd_status(argc, argv);
	usage();
}
