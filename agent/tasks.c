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
 * Tasks run on the device (agent/agent.h, docs/PROTOCOL.md "task").
 * inventory_refresh asks the session for a full sync; run_command, where
 * the policy allows it, runs "/bin/sh -c COMMAND" in a child whose output
 * is read on the event loop, never blocking it.  Each result is written to
 * DIR/results/<run>.json and sent as task_result until the server
 * acknowledges it; the ids of finished runs are remembered so that a run
 * delivered again is answered, not run twice.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include "agent.h"

#define TRUNC_NOTE	"\n[output truncated]"

/* A result kept until the server acknowledged it. */
struct result {
	TAILQ_ENTRY(result)	 entry;
	char			 run[MSG_MAX_SHORT + 1];
	char			 state[16];
	int			 has_code;
	int			 exit_code;
	char			*output;	/* clean UTF-8, or NULL */
	uint64_t		 finished;
	uint64_t		 seq;		/* in flight with; 0: not */
	struct event		*retry;
};
TAILQ_HEAD(results, result);

/* A command running. */
struct job {
	LIST_ENTRY(job)		 entry;
	char			 run[MSG_MAX_SHORT + 1];
	pid_t			 pid;
	int			 fd;		/* -1 at EOF */
	int			 exited, status, timed_out, timeout_s;
	struct event		*rd, *timer;
	char			*buf;
	size_t			 len;
	int			 truncated;
};
LIST_HEAD(jobs, job);

static struct {
	struct event_base	*base;
	char			 dir[1024];	/* DIR/results */
	struct session		*s;		/* the last session seen */
	struct results		 results;
	struct jobs		 jobs;
	size_t			 njobs;
	struct event		*sigchld;
	/* Ring of finished run ids. */
	char			 done[TASK_AGENT_DONE_MAX][MSG_MAX_SHORT + 1];
	size_t			 ndone, donepos;
	int			 ready;
} T;

static uint64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Valid UTF-8 without NUL (what the server stores); malloc'd. */
static char *
clean_text(const char *s, size_t len)
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
		n = (p[i] & 0xe0) == 0xc0 ? 2 : (p[i] & 0xf0) == 0xe0 ? 3 :
		    (p[i] & 0xf8) == 0xf0 ? 4 : 0;
		cp = n == 2 ? p[i] & 0x1f : n == 3 ? p[i] & 0x0f : p[i] & 0x07;
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

static int
run_id_ok(const char *run)
{
	size_t	 i;

	/* It names a file: digits, letters, '-' and '_' only. */
	for (i = 0; run[i] != '\0'; i++)
		if (!(run[i] >= '0' && run[i] <= '9') &&
		    !(run[i] >= 'a' && run[i] <= 'z') &&
		    !(run[i] >= 'A' && run[i] <= 'Z') &&
		    run[i] != '-' && run[i] != '_')
			return 0;
	return i > 0;
}

static int
done_has(const char *run)
{
	size_t	 i;

	for (i = 0; i < T.ndone; i++)
		if (strcmp(T.done[i], run) == 0)
			return 1;
	return 0;
}

/* DIR/results/done: the ring, oldest first, so a restart remembers. */
static void
done_save(void)
{
	char	 path[1200], *buf;
	size_t	 i, len = 0, at;

	if ((buf = malloc(T.ndone * (MSG_MAX_SHORT + 2) + 1)) == NULL)
		return;
	for (i = 0; i < T.ndone; i++) {
		at = (T.donepos + TASK_AGENT_DONE_MAX - T.ndone + i) %
		    TASK_AGENT_DONE_MAX;
		len += snprintf(buf + len, MSG_MAX_SHORT + 2, "%s\n",
		    T.done[at]);
	}
	snprintf(path, sizeof(path), "%s/done", T.dir);
	if (file_write_atomic(path, buf, len, 0600) == -1)
		log_warn("tasks: %s", path);
	free(buf);
}

static void
done_put(const char *run)
{
	if (done_has(run))
		return;
	strlcpy(T.done[T.donepos], run, sizeof(T.done[0]));
	T.donepos = (T.donepos + 1) % TASK_AGENT_DONE_MAX;
	if (T.ndone < TASK_AGENT_DONE_MAX)
		T.ndone++;
}

static void
done_add(const char *run)
{
	if (done_has(run))
		return;
	done_put(run);
	done_save();
}

static void
done_load(void)
{
	char	 path[1200], *buf, *line, *p;
	size_t	 len;

	snprintf(path, sizeof(path), "%s/done", T.dir);
	if ((buf = file_read(path, TASK_AGENT_DONE_MAX * (MSG_MAX_SHORT + 2),
	    &len)) == NULL)
		return;
	for (p = buf; (line = strsep(&p, "\n")) != NULL; )
		if (strlen(line) <= MSG_MAX_SHORT && run_id_ok(line))
			done_put(line);
	free(buf);
}

static void
result_path(const char *run, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.json%s", T.dir, run, suffix);
}

static void
result_free(struct result *r)
{
	if (r == NULL)
		return;
	if (r->retry != NULL)
		event_free(r->retry);
	free(r->output);
	free(r);
}

/* Written atomically: a crash leaves the old file or the new one. */
static int
result_store(const struct result *r)
{
	char	 path[1200], tmp[1200];
	json_t	*j;
	int	 rv;

	j = json_pack("{s:s,s:s,s:I}", "run", r->run, "state", r->state,
	    "finished", (json_int_t)r->finished);
	if (j == NULL)
		return -1;
	if (r->has_code)
		json_object_set_new(j, "exit_code", json_integer(r->exit_code));
	if (r->output != NULL)
		json_object_set_new(j, "output", json_string(r->output));
	result_path(r->run, "", path, sizeof(path));
	result_path(r->run, ".tmp", tmp, sizeof(tmp));
	rv = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	if (rv == -1 || rename(tmp, path) == -1) {
		log_warn("tasks: cannot write %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void result_send(struct result *);

static void
result_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	result_send(arg);
}

static void
result_send(struct result *r)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	size_t		 n = 5;

	if (T.s == NULL || !session_is_up(T.s))
		return;		/* at agent_tasks_up */
	r->seq = session_next_seq(T.s);
	n += r->has_code + (r->output != NULL);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_TASK_RESULT, n);
	mp_kv_uint(&pk, "seq", r->seq);
	mp_kv_str(&pk, "run", r->run);
	mp_kv_str(&pk, "state", r->state);
	if (r->has_code)
		mp_kv_uint(&pk, "exit_code", (uint64_t)r->exit_code);
	if (r->output != NULL) {
		mp_key(&pk, "output");
		mp_str_clean(&pk, r->output, MSG_MAX_TASK_OUTPUT);
	}
	mp_kv_uint(&pk, "finished", r->finished);
	if (session_send(T.s, &sb) == -1)
		r->seq = 0;
}

/* A run finished: remember it, keep the result on disk, send it. */
static void
result_new(const char *run, const char *state, int has_code, int code,
    const char *output, size_t olen)
{
	struct result	*r;

	done_add(run);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return;
	strlcpy(r->run, run, sizeof(r->run));
	strlcpy(r->state, state, sizeof(r->state));
	r->has_code = has_code;
	r->exit_code = code;
	r->finished = now_ms();
	if (output != NULL && (r->output = clean_text(output, olen)) ==
	    NULL) {
		free(r);
		return;
	}
	if ((r->retry = evtimer_new(T.base, result_retry_cb, r)) == NULL) {
		result_free(r);
		return;
	}
	(void)result_store(r);
	TAILQ_INSERT_TAIL(&T.results, r, entry);
	log_info("tasks: run %s %s%s", run, state, has_code ? "" : "");
	result_send(r);
}

/* Results left by an earlier process: sent again once up. */
static void
results_load(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[1200], run[MSG_MAX_SHORT + 1];
	struct result	*r;
	json_t		*j, *v;
	size_t		 n;

	if ((d = opendir(T.dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n <= 5 || n - 5 > MSG_MAX_SHORT ||
		    strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		memcpy(run, de->d_name, n - 5);
		run[n - 5] = '\0';
		if (!run_id_ok(run))
			continue;
		result_path(run, "", path, sizeof(path));
		if ((j = json_load_file(path, 0, NULL)) == NULL ||
		    (r = calloc(1, sizeof(*r))) == NULL) {
			json_decref(j);
			continue;
		}
		strlcpy(r->run, run, sizeof(r->run));
		v = json_object_get(j, "state");
		strlcpy(r->state, json_is_string(v) ? json_string_value(v) :
		    "failed", sizeof(r->state));
		if ((v = json_object_get(j, "exit_code")) != NULL &&
		    json_is_integer(v)) {
			r->has_code = 1;
			r->exit_code = (int)json_integer_value(v);
		}
		if ((v = json_object_get(j, "output")) != NULL &&
		    json_is_string(v))
			r->output = strdup(json_string_value(v));
		v = json_object_get(j, "finished");
		r->finished = json_is_integer(v) ?
		    (uint64_t)json_integer_value(v) : now_ms();
		json_decref(j);
		if ((r->retry = evtimer_new(T.base, result_retry_cb, r)) ==
		    NULL) {
			result_free(r);
			continue;
		}
		done_add(r->run);
		TAILQ_INSERT_TAIL(&T.results, r, entry);
	}
	closedir(d);
}

/*
 * Commands.
 */

static void
job_free(struct job *j)
{
	if (j->rd != NULL)
		event_free(j->rd);
	if (j->timer != NULL)
		event_free(j->timer);
	if (j->fd != -1)
		close(j->fd);
	free(j->buf);
	free(j);
}

/* Done once the child is reaped and its output read to the end. */
static void
job_finish(struct job *j)
{
	char		 note[64];
	const char	*state;
	int		 code = 0, has_code = 0;
	size_t		 room;

	if (!j->exited || j->fd != -1)
		return;
	if (j->timed_out) {
		state = "failed";
		snprintf(note, sizeof(note), "\ntimed out after %d s",
		    j->timeout_s);
	} else {
		note[0] = '\0';
		has_code = 1;
		if (WIFEXITED(j->status))
			code = WEXITSTATUS(j->status);
		else if (WIFSIGNALED(j->status)) {
			code = 128 + WTERMSIG(j->status);
			snprintf(note, sizeof(note), "\nkilled by signal %d",
			    WTERMSIG(j->status));
		}
		state = code == 0 ? "done" : "failed";
	}
	/* Notes fit within the limit: the output gives way. */
	room = MSG_MAX_TASK_OUTPUT - strlen(note) -
	    (j->truncated ? strlen(TRUNC_NOTE) : 0);
	if (j->len > room)
		j->len = room;
	if (j->truncated) {
		memcpy(j->buf + j->len, TRUNC_NOTE, strlen(TRUNC_NOTE));
		j->len += strlen(TRUNC_NOTE);
	}
	memcpy(j->buf + j->len, note, strlen(note));
	j->len += strlen(note);
	result_new(j->run, state, has_code, code, j->buf, j->len);
	LIST_REMOVE(j, entry);
	T.njobs--;
	job_free(j);
}

static void
job_read(evutil_socket_t fd, short ev, void *arg)
{
	struct job	*j = arg;
	char		 tmp[16384];
	ssize_t		 n;
	size_t		 take;

	n = read(j->fd, tmp, sizeof(tmp));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		event_del(j->rd);
		close(j->fd);
		j->fd = -1;
		job_finish(j);
		return;
	}
	take = MSG_MAX_TASK_OUTPUT - j->len;
	if ((size_t)n > take)
		j->truncated = 1;
	else
		take = n;
	/* Past the limit the output is read and dropped. */
	memcpy(j->buf + j->len, tmp, take);
	j->len += take;
}

static void
job_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct job	*j = arg;

	if (j->exited)
		return;
	j->timed_out = 1;
	/* Its own process group: whatever it started goes too. */
	kill(-j->pid, SIGKILL);
	kill(j->pid, SIGKILL);
}

static void
on_sigchld(evutil_socket_t fd, short ev, void *arg)
{
	struct job	*j, *next;
	int		 status;
	pid_t		 pid;

	/* Only our own children: others (popen) are reaped by their owner. */
	for (j = LIST_FIRST(&T.jobs); j != NULL; j = next) {
		next = LIST_NEXT(j, entry);
		if (j->exited)
			continue;
		pid = waitpid(j->pid, &status, WNOHANG);
		if (pid != j->pid)
			continue;
		j->exited = 1;
		j->status = status;
		evtimer_del(j->timer);
		/* Grandchildren may hold the pipe: not waited for. */
		kill(-j->pid, SIGKILL);
		job_finish(j);
	}
}

static void
run_command(const char *run, const struct msg *m)
{
	const msgpack_object *params = msg_get(m, "params");
	const msgpack_object *cmd = NULL, *to = NULL;
	struct job	*j;
	struct timeval	 tv;
	char		*command;
	int		 p[2], devnull;
	pid_t		 pid;

	if (!agent_policy_bool("allow_run_command", 0)) {
		const char *why = "run_command is not allowed here: the "
		    "policy setting allow_run_command is off";
		result_new(run, "refused", 0, 0, why, strlen(why));
		return;
	}
	if (params != NULL && params->type == MSGPACK_OBJECT_MAP) {
		cmd = mp_map_get(params, "command");
		to = mp_map_get(params, "timeout_s");
	}
	if (cmd == NULL || cmd->type != MSGPACK_OBJECT_STR ||
	    cmd->via.str.size == 0 || cmd->via.str.size > TASK_COMMAND_MAX ||
	    memchr(cmd->via.str.ptr, '\0', cmd->via.str.size) != NULL) {
		const char *why = "params.command: missing or not a command";
		result_new(run, "failed", 0, 0, why, strlen(why));
		return;
	}
	if (T.njobs >= TASK_AGENT_RUNNING_MAX) {
		const char *why = "too many commands running; try later";
		result_new(run, "failed", 0, 0, why, strlen(why));
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->buf = malloc(MSG_MAX_TASK_OUTPUT)) == NULL) {
		free(j);
		return;
	}
	j->fd = -1;
	strlcpy(j->run, run, sizeof(j->run));
	j->timeout_s = TASK_TIMEOUT_DEFAULT_S;
	if (to != NULL && to->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    to->via.u64 >= TASK_TIMEOUT_MIN_S &&
	    to->via.u64 <= TASK_TIMEOUT_MAX_S)
		j->timeout_s = (int)to->via.u64;
	if ((command = strndup(cmd->via.str.ptr, cmd->via.str.size)) ==
	    NULL) {
		job_free(j);
		return;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("tasks: pipe");
		free(command);
		job_free(j);
		return;
	}
	switch ((pid = fork())) {
	case -1:
		log_warn("tasks: fork");
		close(p[0]);
		close(p[1]);
		free(command);
		job_free(j);
		result_new(run, "failed", 0, 0, "cannot start a process", 22);
		return;
	case 0:
		setsid();
		if ((devnull = open("/dev/null", O_RDONLY)) != -1)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		closefrom(3);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	free(command);
	close(p[1]);
	j->pid = pid;
	j->fd = p[0];
	(void)fcntl(j->fd, F_SETFL, fcntl(j->fd, F_GETFL) | O_NONBLOCK);
	j->rd = event_new(T.base, j->fd, EV_READ | EV_PERSIST, job_read, j);
	j->timer = evtimer_new(T.base, job_timeout, j);
	LIST_INSERT_HEAD(&T.jobs, j, entry);
	T.njobs++;
	tv.tv_sec = j->timeout_s;
	tv.tv_usec = 0;
	if (j->rd != NULL)
		event_add(j->rd, NULL);
	if (j->timer != NULL)
		evtimer_add(j->timer, &tv);
	log_info("tasks: run %s: started pid %d", run, (int)pid);
	/* It may have ended before the handler was there. */
	on_sigchld(-1, 0, NULL);
}

int
agent_tasks_init(struct event_base *base, const char *state_dir)
{
	memset(&T, 0, sizeof(T));
	T.base = base;
	TAILQ_INIT(&T.results);
	LIST_INIT(&T.jobs);
	if ((size_t)snprintf(T.dir, sizeof(T.dir), "%s/results", state_dir) >=
	    sizeof(T.dir))
		return -1;
	if (mkdir(T.dir, 0700) == -1 && errno != EEXIST) {
		log_warn("tasks: %s", T.dir);
		return -1;
	}
	if ((T.sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL)) ==
	    NULL || evsignal_add(T.sigchld, NULL) == -1) {
		log_warnx("tasks: cannot watch SIGCHLD");
		return -1;
	}
	done_load();
	results_load();
	T.ready = 1;
	return 0;
}

void
agent_tasks_on_msg(struct session *s, const struct msg *m)
{
	struct result	*r;
	char		 run[MSG_MAX_SHORT + 1], type[MSG_MAX_SHORT + 1];
	uint64_t	 expires;

	T.s = s;
	if (!T.ready || msg_str(m, "run", run, sizeof(run)) == -1 ||
	    msg_str(m, "type", type, sizeof(type)) == -1)
		return;
	if (!run_id_ok(run)) {
		log_warnx("tasks: run id '%s' refused", run);
		return;
	}
	if (done_has(run)) {
		/* Delivered again: answer what is kept, never rerun. */
		log_info("tasks: run %s: already finished, not run again",
		    run);
		TAILQ_FOREACH(r, &T.results, entry)
			if (strcmp(r->run, run) == 0 && r->seq == 0)
				result_send(r);
		return;
	}
	{
		struct job *j;

		LIST_FOREACH(j, &T.jobs, entry)
			if (strcmp(j->run, run) == 0)
				return;		/* still running */
	}
	expires = msg_uint(m, "expires", 0);
	if (expires != 0 && expires <= now_ms()) {
		log_info("tasks: run %s expired before it could start", run);
		return;
	}
	log_info("tasks: run %s: %s", run, type);
	if (strcmp(type, "inventory_refresh") == 0) {
		session_sync(s, 1);
		result_new(run, "done", 0, 0, NULL, 0);
	} else if (strcmp(type, "run_command") == 0)
		run_command(run, m);
	else {
		const char *why = "unknown task type";
		result_new(run, "failed", 0, 0, why, strlen(why));
	}
}

void
agent_tasks_acked(struct session *s, uint64_t seq, int ok, uint64_t after_ms)
{
	struct result	*r;
	struct timeval	 tv;
	char		 path[1200];

	TAILQ_FOREACH(r, &T.results, entry)
		if (r->seq == seq)
			break;
	if (r == NULL)
		return;
	if (!ok) {
		r->seq = 0;
		tv.tv_sec = after_ms / 1000;
		tv.tv_usec = (after_ms % 1000) * 1000;
		evtimer_add(r->retry, &tv);
		return;
	}
	result_path(r->run, "", path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("tasks: %s", path);
	TAILQ_REMOVE(&T.results, r, entry);
	result_free(r);
}

void
agent_tasks_up(struct session *s)
{
	struct result	*r;

	T.s = s;
	if (!T.ready)
		return;
	/* Whatever was in flight on the old connection is lost. */
	TAILQ_FOREACH(r, &T.results, entry) {
		r->seq = 0;
		evtimer_del(r->retry);
		result_send(r);
	}
}
