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
 * canopyd: start-up, signals, reload and shutdown.  Everything else runs
 * from the one event loop made here.
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "db/db.h"
#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "srv/canopyd.h"
#include "srv/modules.h"
#include "util.h"

#define CANOPYD_CONF	"/etc/canopy/canopyd.conf"

static struct canopyd	 sd;
static const char	*pidfile;
static int		 pidfile_written;
static int		 log_override = -1;	/* -d/-v: level kept on reload */

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: canopyd [-dnv] [-c file] [-p pidfile]\n"
	    "       canopyd [-c file] admin-add name [--principal P] "
	    "[--role R]\n");
	exit(1);
}

static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE)");
	}
	log_debug("file descriptor limit %llu",
	    (unsigned long long)rl.rlim_cur);
}

/* Gives every entry of a directory we just created to the daemon's user. */
static void
chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[2048];

	if (chown(dir, uid, gid) == -1)
		log_warn("chown %s", dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lchown(path, uid, gid) == -1)
			log_warn("chown %s", path);
	}
	closedir(d);
}

/* The daemon's user must own its keys, or it could not renew them. */
static void
state_dir_check(const struct conf *conf, const struct passwd *pw)
{
	struct stat	 st;

	if (stat(conf->state_dir, &st) == -1)
		fatal("state-dir %s", conf->state_dir);
	if (st.st_uid != pw->pw_uid)
		fatalx("state-dir %s is owned by uid %u, not by user %s: run "
		    "'chown -R %s %s'", conf->state_dir,
		    (unsigned int)st.st_uid, pw->pw_name, pw->pw_name,
		    conf->state_dir);
}

static void
drop_privileges(const struct passwd *pw)
{
	uid_t	 ruid, euid, suid;

	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to user %s", pw->pw_name);
	if (getresuid(&ruid, &euid, &suid) == -1 || ruid != pw->pw_uid ||
	    euid != pw->pw_uid || suid != pw->pw_uid || setuid(0) != -1)
		fatalx("privileges were not dropped to user %s", pw->pw_name);
	log_debug("running as user %s", pw->pw_name);
}

static void
pidfile_write(const char *path)
{
	char	*old;
	char	 buf[32];
	size_t	 len;
	long	 pid;
	int	 fd, n;

	if ((old = file_read(path, 64, &len)) != NULL) {
		pid = strtol(old, NULL, 10);
		free(old);
		if (pid > 0 && pid != (long)getpid() &&
		    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			fatalx("pidfile %s: canopyd is already running as "
			    "pid %ld; stop it first", path, pid);
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		fatal("cannot write pidfile %s (is its directory writable "
		    "by the daemon's user?)", path);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n)
		fatal("pidfile %s", path);
	close(fd);
	pidfile_written = 1;
}

static enum log_level
level_of(const struct conf *conf)
{
	if (log_override >= 0)
		return (enum log_level)log_override;
	return (enum log_level)conf->log_level;
}

static int
listen_equal(const struct conf *a, const struct conf *b)
{
	int	 i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i].kind != b->listen[i].kind ||
		    a->listen[i].port != b->listen[i].port ||
		    strcmp(a->listen[i].host, b->listen[i].host) != 0)
			return 0;
	return 1;
}

/*
 * Settings bound to resources made at start-up stay as they are; the new
 * configuration is made to say so, so that sd.conf always tells the truth.
 */
static void
reload_keep_restart_only(const struct conf *old, struct conf *new)
{
	const char	*db_old = old->database ? old->database : "";
	const char	*db_new = new->database ? new->database : "";

	if (!listen_equal(old, new)) {
		log_warnx("reload: listen changed: needs a restart, "
		    "not applied");
		memcpy(new->listen, old->listen, sizeof(new->listen));
		new->nlisten = old->nlisten;
	}
	if (strcmp(db_old, db_new) != 0 || old->db_workers != new->db_workers) {
		log_warnx("reload: database or db-workers changed: needs a "
		    "restart, not applied");
		free(new->database);
		new->database = old->database ? strdup(old->database) : NULL;
		if (old->database && new->database == NULL)
			fatal("reload");
		new->db_workers = old->db_workers;
	}
	if (strcmp(old->state_dir, new->state_dir) != 0) {
		log_warnx("reload: state-dir changed: needs a restart, "
		    "not applied");
		strlcpy(new->state_dir, old->state_dir,
		    sizeof(new->state_dir));
	}
	if (strcmp(old->user, new->user) != 0) {
		log_warnx("reload: user changed: needs a restart, not applied");
		strlcpy(new->user, old->user, sizeof(new->user));
	}
	if (strcmp(old->server_name, new->server_name) != 0) {
		log_warnx("reload: server-name changed: needs a restart, "
		    "not applied");
		strlcpy(new->server_name, old->server_name,
		    sizeof(new->server_name));
	}
	if (old->log_syslog != new->log_syslog) {
		log_warnx("reload: log changed: needs a restart, not applied");
		new->log_syslog = old->log_syslog;
	}
}

static void
reload(void)
{
	struct conf	*new, *old = sd.conf;
	char		 err[1024];

	log_info("reloading %s", old->path);
	if ((new = calloc(1, sizeof(*new))) == NULL) {
		log_warn("reload failed, keeping the running configuration");
		return;
	}
	if (conf_load(old->path, new, err, sizeof(err)) == -1) {
		log_warnx("reload failed: %s, keeping the running "
		    "configuration", err);
		conf_free(new);
		free(new);
		return;
	}
	reload_keep_restart_only(old, new);

	sd.conf = new;
	log_setlevel(level_of(new));
	if (sd.agents)
		agents_reconf(sd.agents, new);
	if (sd.api)
		api_reconf(sd.api, new);
	conf_free(old);
	free(old);
	log_info("configuration reloaded");
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	switch (sig) {
	case SIGHUP:
		reload();
		break;
	case SIGTERM:
	case SIGINT:
		if (!sd.stopping) {
			log_info("received %s, shutting down",
			    sig == SIGTERM ? "SIGTERM" : "SIGINT");
			sd.stopping = 1;
			event_base_loopbreak(sd.base);
		}
		break;
	}
}

static struct conf *
load_conf(const char *path)
{
	struct conf	*conf;
	char		 err[1024];

	if ((conf = calloc(1, sizeof(*conf))) == NULL) {
		fprintf(stderr, "canopyd: out of memory\n");
		exit(1);
	}
	if (conf_load(path, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "canopyd: %s\n", err);
		conf_free(conf);
		free(conf);
		return NULL;
	}
	return conf;
}

int
main(int argc, char *argv[])
{
	const char	*confpath = CANOPYD_CONF;
	struct passwd	*pw = NULL;
	struct event	*ev_hup, *ev_term, *ev_int;
	struct stat	 st;
	char		 err[1024];
	int		 ch, debug = 0, noaction = 0, verbose = 0;
	int		 made_state_dir = 0, rc;

	/* '+': options stop at the subcommand, whose own follow it. */
	while ((ch = getopt(argc, argv, "+c:dnp:v")) != -1) {
		switch (ch) {
		case 'c':
			confpath = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			noaction = 1;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (noaction) {
		if (argc != 0)
			usage();
		if ((sd.conf = load_conf(confpath)) == NULL)
			return 1;
		if (verbose)
			conf_print(sd.conf, stdout);
		else
			fprintf(stderr, "configuration OK\n");
		conf_free(sd.conf);
		free(sd.conf);
		return 0;
	}

	if (argc > 0) {
		if (strcmp(argv[0], "admin-add") != 0) {
			fprintf(stderr, "canopyd: unknown command '%s'\n",
			    argv[0]);
			usage();
		}
		if ((sd.conf = load_conf(confpath)) == NULL)
			return 1;
		log_init("canopyd", debug ? LOG_LVL_DEBUG :
		    verbose ? LOG_LVL_INFO : LOG_LVL_WARN, 0);
		rc = admin_add_main(sd.conf, argc, argv);
		conf_free(sd.conf);
		free(sd.conf);
		return rc;
	}

	if ((sd.conf = load_conf(confpath)) == NULL) {
		fprintf(stderr, "canopyd: fix the configuration (check it "
		    "with 'canopyd -n -c %s'), or name another with -c\n",
		    confpath);
		return 1;
	}
	if (debug)
		log_override = LOG_LVL_DEBUG;
	else if (verbose)
		log_override = sd.conf->log_level + verbose > LOG_LVL_DEBUG ?
		    LOG_LVL_DEBUG : sd.conf->log_level + verbose;
	/* -d: foreground on stderr, as systemd runs it. */
	log_init("canopyd", level_of(sd.conf), debug ? 0 :
	    sd.conf->log_syslog);

	if (evthread_use_pthreads() == -1)
		fatalx("libevent has no pthreads support");
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);

	if (sd.conf->user[0] != '\0') {
		if ((pw = getpwnam(sd.conf->user)) == NULL)
			fatalx("user %s does not exist: create it (useradd "
			    "--system %s) or remove 'user' from %s",
			    sd.conf->user, sd.conf->user, sd.conf->path);
		if (geteuid() != 0 && geteuid() != pw->pw_uid)
			fatalx("canopyd must start as root to become user %s "
			    "(or run it as %s, or remove 'user' from %s)",
			    sd.conf->user, sd.conf->user, sd.conf->path);
		if (stat(sd.conf->state_dir, &st) == -1 && errno == ENOENT) {
			if (mkdir_p(sd.conf->state_dir, 0700) == -1)
				fatal("cannot create state-dir %s",
				    sd.conf->state_dir);
			made_state_dir = 1;
		} else
			state_dir_check(sd.conf, pw);
	}

	if (pki_init(sd.conf->state_dir, sd.conf->server_name, err,
	    sizeof(err)) == -1)
		fatalx("keys in %s: %s (check that state-dir exists and is "
		    "writable)", sd.conf->state_dir, err);
	if (made_state_dir && geteuid() == 0)
		chown_tree(sd.conf->state_dir, pw->pw_uid, pw->pw_gid);
	if (pw != NULL)
		state_dir_check(sd.conf, pw);
	if (pki_load(sd.conf->state_dir, &sd.pki, err, sizeof(err)) == -1)
		fatalx("keys in %s: %s", sd.conf->state_dir, err);

	if ((sd.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	sd.started_ms = wall_ms();

	if ((sd.db = db_start(sd.base, sd.conf->database,
	    sd.conf->db_workers)) == NULL)
		fatalx("cannot start the database workers");
	if ((sd.agents = agents_start(&sd, err, sizeof(err))) == NULL)
		fatalx("agent listener: %s", err);
	if ((sd.api = api_start(&sd, err, sizeof(err))) == NULL)
		fatalx("API listener: %s", err);
	if (modules_start(&sd, err, sizeof(err)) == -1)
		fatalx("%s", err);

	if (pw != NULL && geteuid() == 0)
		drop_privileges(pw);
	if (pidfile != NULL)
		pidfile_write(pidfile);

	ev_hup = evsignal_new(sd.base, SIGHUP, signal_cb, NULL);
	ev_term = evsignal_new(sd.base, SIGTERM, signal_cb, NULL);
	ev_int = evsignal_new(sd.base, SIGINT, signal_cb, NULL);
	if (ev_hup == NULL || ev_term == NULL || ev_int == NULL ||
	    evsignal_add(ev_hup, NULL) == -1 ||
	    evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1)
		fatalx("cannot install signal handlers");

	log_info("canopyd \"%s\" started (pid %ld)", sd.conf->server_name,
	    (long)getpid());
	if (event_base_dispatch(sd.base) == -1)
		log_warnx("event loop failed");

	/*
	 * Shutdown.  Listeners and sessions go first, so nothing new comes
	 * in; then the queued database writes are finished (their callbacks
	 * run here, on the loop thread) and the connections closed.
	 */
	sd.stopping = 1;
	modules_stop(&sd);
	if (sd.api)
		api_stop(sd.api);
	sd.api = NULL;
	if (sd.agents)
		agents_stop(sd.agents);
	sd.agents = NULL;
	db_stop(sd.db);
	sd.db = NULL;

	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	if (pidfile_written && unlink(pidfile) == -1 && errno != ENOENT)
		log_warn("cannot remove pidfile %s", pidfile);
	pki_free(&sd.pki);
	event_base_free(sd.base);
	log_info("stopped");
	conf_free(sd.conf);
	free(sd.conf);
	return 0;
}
