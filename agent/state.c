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
 * The agent's state directory and its offline event queue.
 *
 * DIR/ (0700): agent.key (0600), agent.pem, ca.pem, state.json (server,
 * device id, last acknowledged inventory hash) and events/, one file per
 * queued event.  Event files are written to a dot-file and renamed, so a
 * reader (the running agent scans the directory every second) never sees a
 * half-written one; they are deleted only after the server's ack.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "agent.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#define STATE_FILE	"state.json"
#define STATE_MAX_SIZE	(64u * 1024)
#define EVQ_DIR		"events"
#define EVQ_ID_MAX	64
#define EVQ_FILE_MAX	(MSG_MAX_EVENT_TEXT + 1024)
#define EVQ_DROP_SUFFIX	"-drop"

int
state_path(const struct agent_state *st, const char *file, char *out,
    size_t outlen)
{
	int	 n;

	n = snprintf(out, outlen, "%s/%s", st->dir, file);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

static int
copy_field(json_t *o, const char *key, char *dst, size_t dstlen)
{
	const char	*s;

	dst[0] = '\0';
	if ((s = json_string_value(json_object_get(o, key))) == NULL)
		return -1;
	if (strlcpy(dst, s, dstlen) >= dstlen)
		return -1;
	return 0;
}

int
state_load(const char *dir, struct agent_state *st, char *err, size_t errlen)
{
	char		 path[1200];
	char		*text;
	size_t		 len;
	json_t		*o;
	json_error_t	 jerr;

	memset(st, 0, sizeof(*st));
	if (strlcpy(st->dir, dir, sizeof(st->dir)) >= sizeof(st->dir)) {
		snprintf(err, errlen, "%s: state directory name too long", dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	if ((text = file_read(path, STATE_MAX_SIZE, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s (not enrolled? run "
		    "'canopy-agent enroll' first)", path, strerror(errno));
		return -1;
	}
	o = json_loadb(text, len, 0, &jerr);
	free(text);
	if (o == NULL || !json_is_object(o)) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line,
		    o == NULL ? jerr.text : "not a JSON object");
		json_decref(o);
		return -1;
	}
	if (copy_field(o, "server", st->server, sizeof(st->server)) == -1 ||
	    copy_field(o, "device_id", st->device_id,
	    sizeof(st->device_id)) == -1) {
		snprintf(err, errlen, "%s: 'server' and 'device_id' are "
		    "required", path);
		json_decref(o);
		return -1;
	}
	(void)copy_field(o, "inventory_hash", st->inv_hash,
	    sizeof(st->inv_hash));
	(void)copy_field(o, "name", st->name, sizeof(st->name));
	json_decref(o);
	return 0;
}

int
state_save(const struct agent_state *st)
{
	char	 path[1200];
	char	*text;
	json_t	*o;
	int	 rv;

	o = json_pack("{s:s, s:s, s:s}", "server", st->server,
	    "device_id", st->device_id, "inventory_hash", st->inv_hash);
	if (o == NULL)
		return -1;
	if (st->name[0] != '\0' &&
	    json_object_set_new(o, "name", json_string(st->name)) == -1) {
		json_decref(o);
		return -1;
	}
	text = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (text == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", st->dir, STATE_FILE);
	rv = file_write_atomic(path, text, strlen(text), 0600);
	if (rv == -1)
		log_warn("%s", path);
	free(text);
	return rv;
}

int
state_enrolled(const char *dir)
{
	char		 path[1200];
	struct stat	 sb;

	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	return stat(path, &sb) == 0;
}

/* The event queue. */

struct evq_ent {
	char	 name[EVQ_ID_MAX + 1];
	int	 inflight;
};

struct evq {
	char		 dir[1100];
	size_t		 max;
	struct evq_ent	*v;
	size_t		 n, cap;
	uint64_t	 dropped;
	uint32_t	 counter;
};

static int
evq_name_ok(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > EVQ_ID_MAX || s[0] < '0' || s[0] > '9')
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
			return 0;
	return 1;
}

static int
ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct evq_ent *)a)->name,
	    ((const struct evq_ent *)b)->name);
}

static struct evq_ent *
evq_find(struct evq *q, const char *name)
{
	struct evq_ent	 key;

	if (q->n == 0)
		return NULL;
	strlcpy(key.name, name, sizeof(key.name));
	return bsearch(&key, q->v, q->n, sizeof(*q->v), ent_cmp);
}

static int
evq_grow(struct evq *q, size_t want)
{
	struct evq_ent	*nv;
	size_t		 ncap;

	if (want <= q->cap)
		return 0;
	ncap = q->cap ? q->cap : 64;
	while (ncap < want)
		ncap *= 2;
	if ((nv = reallocarray(q->v, ncap, sizeof(*nv))) == NULL)
		return -1;
	q->v = nv;
	q->cap = ncap;
	return 0;
}

struct evq *
evq_open(const char *dir, size_t max, char *err, size_t errlen)
{
	struct evq	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(q->dir, sizeof(q->dir), "%s/%s", dir, EVQ_DIR);
	q->max = max < 2 ? 2 : max;
	if (mkdir_p(q->dir, 0700) == -1) {
		snprintf(err, errlen, "%s: %s", q->dir, strerror(errno));
		free(q);
		return NULL;
	}
	if (evq_scan(q) == -1) {
		snprintf(err, errlen, "%s: %s", q->dir, strerror(errno));
		evq_close(q);
		return NULL;
	}
	return q;
}

void
evq_close(struct evq *q)
{
	if (q == NULL)
		return;
	free(q->v);
	free(q);
}

int
evq_scan(struct evq *q)
{
	DIR		*d;
	struct dirent	*de;
	struct evq_ent	*nv = NULL, *old;
	size_t		 n = 0, cap = 0, i;
	int		 added = 0;

	if ((d = opendir(q->dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!evq_name_ok(de->d_name))
			continue;
		if (n == cap) {
			struct evq_ent	*t;

			cap = cap ? cap * 2 : 64;
			if ((t = reallocarray(nv, cap, sizeof(*nv))) == NULL) {
				free(nv);
				closedir(d);
				return -1;
			}
			nv = t;
		}
		strlcpy(nv[n].name, de->d_name, sizeof(nv[n].name));
		nv[n].inflight = 0;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(nv, n, sizeof(*nv), ent_cmp);
	for (i = 0; i < n; i++) {
		if ((old = evq_find(q, nv[i].name)) != NULL)
			nv[i].inflight = old->inflight;
		else
			added++;
	}
	/* Files in flight that vanished stay until their ack. */
	for (i = 0; i < q->n; i++) {
		struct evq_ent	 key = q->v[i];

		if (!key.inflight || (n > 0 && bsearch(&key, nv, n,
		    sizeof(*nv), ent_cmp) != NULL))
			continue;
		if (n == cap) {
			struct evq_ent	*t;

			cap = cap ? cap * 2 : 64;
			if ((t = reallocarray(nv, cap, sizeof(*nv))) == NULL) {
				free(nv);
				return -1;
			}
			nv = t;
		}
		nv[n++] = key;
		qsort(nv, n, sizeof(*nv), ent_cmp);
	}
	free(q->v);
	q->v = nv;
	q->n = n;
	q->cap = cap;
	return added;
}

size_t
evq_count(const struct evq *q)
{
	return q->n;
}

uint64_t
evq_dropped(const struct evq *q)
{
	return q->dropped;
}

const char *
evq_id(const struct evq *q, size_t i)
{
	return i < q->n ? q->v[i].name : NULL;
}

int
event_severity_ok(const char *s)
{
	return strcmp(s, "info") == 0 || strcmp(s, "warning") == 0 ||
	    strcmp(s, "error") == 0 || strcmp(s, "critical") == 0;
}

static int
evq_write(struct evq *q, const char *name, const void *buf, size_t len)
{
	char	 tmp[1300], path[1300];
	int	 fd;

	snprintf(tmp, sizeof(tmp), "%s/.tmp.%ld.%s", q->dir, (long)getpid(),
	    name);
	snprintf(path, sizeof(path), "%s/%s", q->dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) == -1) {
		int	 saved = errno;

		close(fd);
		unlink(tmp);
		errno = saved ? saved : EIO;
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
evq_remove_at(struct evq *q, size_t i)
{
	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(*q->v));
	q->n--;
}

/* Inserts name in order; it must not be there yet. */
static int
evq_insert(struct evq *q, const char *name)
{
	size_t	 lo = 0, hi = q->n, mid;

	if (evq_grow(q, q->n + 1) == -1)
		return -1;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (strcmp(q->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&q->v[lo + 1], &q->v[lo], (q->n - lo) * sizeof(*q->v));
	strlcpy(q->v[lo].name, name, sizeof(q->v[lo].name));
	q->v[lo].inflight = 0;
	q->n++;
	return 0;
}

static void
evq_new_id(struct evq *q, int64_t now, const char *suffix, char *id,
    size_t idlen)
{
	uint32_t	 r = 0;

	(void)rand_bytes(&r, sizeof(r));
	snprintf(id, idlen, "%013" PRId64 "-%06" PRIu32 "-%08" PRIx32 "%s",
	    now, q->counter++ % 1000000, r, suffix);
}

static int
evq_write_event(struct evq *q, const char *id, int64_t time,
    const char *severity, const char *type, const char *text)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	int		 rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "id", id);
	mp_kv_uint(&pk, "time", (uint64_t)time);
	mp_kv_str(&pk, "severity", severity);
	mp_kv_str(&pk, "type", type);
	mp_kv_str(&pk, "text", text);
	rv = evq_write(q, id, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

/* Drops the oldest event not in flight; -1 when there is none. */
static int
evq_drop_oldest(struct evq *q)
{
	char	 path[1300];
	size_t	 i, sl = strlen(EVQ_DROP_SUFFIX);
	int	 pass;

	/* Markers go last: they carry the count of what was lost. */
	for (pass = 0; pass < 2; pass++)
	for (i = 0; i < q->n; i++) {
		size_t	 nl = strlen(q->v[i].name);

		if (q->v[i].inflight || (pass == 0 && nl > sl &&
		    strcmp(q->v[i].name + nl - sl, EVQ_DROP_SUFFIX) == 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", q->dir, q->v[i].name);
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("%s", path);
		evq_remove_at(q, i);
		q->dropped++;
		return 0;
	}
	return -1;
}

static int
evq_drop_text(char *buf, size_t len, uint64_t n)
{
	return snprintf(buf, len, "%" PRIu64 " event(s) dropped: the offline "
	    "queue is full (%d events)", n, AGENT_QUEUE_MAX_EVENTS);
}

/*
 * Counts n more dropped events in the newest events_dropped marker that is
 * not in flight, or says there is none.
 */
static int
evq_bump_marker(struct evq *q, uint64_t n)
{
	char		 path[1300], text[256];
	char		*buf;
	size_t		 len, i;
	msgpack_unpacked up;
	const msgpack_object *t, *tm;
	uint64_t	 had;
	int64_t		 when;
	int		 rv = -1;

	for (i = q->n; i-- > 0; ) {
		size_t	 nl = strlen(q->v[i].name), sl;

		sl = strlen(EVQ_DROP_SUFFIX);
		if (nl > sl && strcmp(q->v[i].name + nl - sl,
		    EVQ_DROP_SUFFIX) == 0)
			break;
	}
	if (i == (size_t)-1 || q->v[i].inflight)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", q->dir, q->v[i].name);
	if ((buf = file_read(path, EVQ_FILE_MAX, &len)) == NULL)
		return -1;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, buf, len, NULL) ==
	    MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_MAP &&
	    (t = mp_map_get(&up.data, "text")) != NULL &&
	    t->type == MSGPACK_OBJECT_STR &&
	    (tm = mp_map_get(&up.data, "time")) != NULL &&
	    tm->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		char	 num[32];
		size_t	 k = t->via.str.size < sizeof(num) - 1 ?
		    t->via.str.size : sizeof(num) - 1;

		memcpy(num, t->via.str.ptr, k);
		num[k] = '\0';
		had = strtoull(num, NULL, 10);
		when = (int64_t)tm->via.u64;
		evq_drop_text(text, sizeof(text), had + n);
		rv = evq_write_event(q, q->v[i].name, when, "warning",
		    "events_dropped", text);
	}
	msgpack_unpacked_destroy(&up);
	free(buf);
	return rv;
}

int
evq_put(struct evq *q, const char *severity, const char *type,
    const char *text)
{
	char		 id[EVQ_ID_MAX + 1], mid[EVQ_ID_MAX + 1], mtext[256];
	uint64_t	 before = q->dropped;
	int64_t		 now = wall_ms();

	if (!event_severity_ok(severity) || strlen(type) == 0 ||
	    strlen(type) > 64 || strlen(text) > MSG_MAX_EVENT_TEXT) {
		errno = EINVAL;
		return -1;
	}
	(void)evq_scan(q);
	while (q->n >= q->max)
		if (evq_drop_oldest(q) == -1)
			break;
	if (q->dropped > before &&
	    evq_bump_marker(q, q->dropped - before) == -1) {
		/* Room for the marker too. */
		while (q->n + 1 >= q->max)
			if (evq_drop_oldest(q) == -1)
				break;
		evq_new_id(q, now, EVQ_DROP_SUFFIX, mid, sizeof(mid));
		evq_drop_text(mtext, sizeof(mtext), q->dropped - before);
		if (evq_write_event(q, mid, now, "warning", "events_dropped",
		    mtext) == 0)
			(void)evq_insert(q, mid);
		log_warnx("event queue full: %" PRIu64 " event(s) dropped",
		    q->dropped - before);
	}
	evq_new_id(q, now, "", id, sizeof(id));
	if (evq_write_event(q, id, now, severity, type, text) == -1)
		return -1;
	return evq_insert(q, id);
}

size_t
evq_take(struct evq *q, msgpack_sbuffer *sb, size_t max)
{
	char		 path[1300];
	char		*buf;
	size_t		 len, i, taken = 0;
	msgpack_unpacked up;
	const msgpack_object *sev;
	int		 ok;

	for (i = 0; i < q->n && taken < max; ) {
		if (q->v[i].inflight) {
			i++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", q->dir, q->v[i].name);
		if ((buf = file_read(path, EVQ_FILE_MAX, &len)) == NULL) {
			if (errno != ENOENT)
				log_warn("%s", path);
			evq_remove_at(q, i);
			continue;
		}
		msgpack_unpacked_init(&up);
		ok = msgpack_unpack_next(&up, buf, len, NULL) ==
		    MSGPACK_UNPACK_SUCCESS &&
		    up.data.type == MSGPACK_OBJECT_MAP &&
		    mp_map_get(&up.data, "id") != NULL;
		/* Below the policy's event_min_severity: never sent. */
		if (ok && (sev = mp_map_get(&up.data, "severity")) != NULL &&
		    sev->type == MSGPACK_OBJECT_STR &&
		    !agent_policy_event_ok(sev->via.str.ptr, sev->via.str.size)) {
			msgpack_unpacked_destroy(&up);
			unlink(path);
			free(buf);
			evq_remove_at(q, i);
			continue;
		}
		msgpack_unpacked_destroy(&up);
		if (!ok) {
			log_warnx("%s: not an event, removed", path);
			unlink(path);
			free(buf);
			evq_remove_at(q, i);
			continue;
		}
		msgpack_sbuffer_write(sb, buf, len);
		free(buf);
		q->v[i].inflight = 1;
		taken++;
		i++;
	}
	return taken;
}

void
evq_ack(struct evq *q)
{
	char	 path[1300];
	size_t	 i;

	for (i = 0; i < q->n; ) {
		if (!q->v[i].inflight) {
			i++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", q->dir, q->v[i].name);
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("%s", path);
		evq_remove_at(q, i);
	}
}

void
evq_unflight(struct evq *q)
{
	size_t	 i;

	for (i = 0; i < q->n; i++)
		q->v[i].inflight = 0;
}
