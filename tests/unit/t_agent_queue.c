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
 * The agent's offline event queue: order, the bound with drop-oldest and
 * its events_dropped marker, re-opening, files deleted only on ack, and
 * files written by another process picked up by a scan.
 */

#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "agent/agent.h"
#include "log.h"
#include "msg.h"
#include "util.h"
#include "test.h"

static char	 dir[256];

static size_t
files_in(const char *d)
{
	char		 p[512];
	DIR		*dp;
	struct dirent	*de;
	size_t		 n = 0;

	snprintf(p, sizeof(p), "%s/events", d);
	if ((dp = opendir(p)) == NULL)
		return 0;
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

/* The texts of the packed events in sb, in order, joined by ','. */
static void
texts(msgpack_sbuffer *sb, char *out, size_t outlen)
{
	msgpack_unpacked up;
	size_t		 off = 0;
	const msgpack_object *t;

	out[0] = '\0';
	msgpack_unpacked_init(&up);
	while (msgpack_unpack_next(&up, sb->data, sb->size, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		if ((t = mp_map_get(&up.data, "text")) != NULL &&
		    t->type == MSGPACK_OBJECT_STR) {
			if (out[0] != '\0')
				strlcat(out, ",", outlen);
			strncat(out, t->via.str.ptr, t->via.str.size);
		}
	}
	msgpack_unpacked_destroy(&up);
}

static void
t_order_and_ack(void)
{
	struct evq	*q, *q2;
	msgpack_sbuffer	 sb;
	char		 err[256], buf[4096];
	size_t		 n;

	q = evq_open(dir, 100, err, sizeof(err));
	CHECK(q != NULL);
	if (q == NULL)
		return;
	CHECK(evq_put(q, "info", "test", "one") == 0);
	CHECK(evq_put(q, "warning", "test", "two") == 0);
	CHECK(evq_put(q, "error", "test", "three") == 0);
	CHECK(evq_put(q, "bogus", "test", "x") == -1);
	CHECK(evq_count(q) == 3);
	CHECK(strcmp(evq_id(q, 0), evq_id(q, 1)) < 0);

	msgpack_sbuffer_init(&sb);
	n = evq_take(q, &sb, 2);
	CHECK(n == 2);
	texts(&sb, buf, sizeof(buf));
	CHECK_STR(buf, "one,two");
	msgpack_sbuffer_clear(&sb);
	/* In flight: not taken again; the third one is. */
	n = evq_take(q, &sb, 10);
	CHECK(n == 1);
	texts(&sb, buf, sizeof(buf));
	CHECK_STR(buf, "three");
	/* Not acknowledged: nothing is deleted, all come back in order. */
	evq_unflight(q);
	CHECK(files_in(dir) == 3);
	msgpack_sbuffer_clear(&sb);
	n = evq_take(q, &sb, 2);
	CHECK(n == 2);
	/* Survives re-open (another process, the daemon restarting). */
	q2 = evq_open(dir, 100, err, sizeof(err));
	CHECK(q2 != NULL && evq_count(q2) == 3);
	evq_close(q2);
	evq_ack(q);
	CHECK(evq_count(q) == 1);
	CHECK(files_in(dir) == 1);
	msgpack_sbuffer_clear(&sb);
	n = evq_take(q, &sb, 10);
	texts(&sb, buf, sizeof(buf));
	CHECK_STR(buf, "three");
	evq_ack(q);
	CHECK(evq_count(q) == 0 && files_in(dir) == 0);
	msgpack_sbuffer_destroy(&sb);
	evq_close(q);
}

static void
t_scan(void)
{
	struct evq	*q, *other;
	msgpack_sbuffer	 sb;
	char		 err[256], buf[4096];

	q = evq_open(dir, 100, err, sizeof(err));
	other = evq_open(dir, 100, err, sizeof(err));
	CHECK(q != NULL && other != NULL);
	if (q == NULL || other == NULL)
		return;
	CHECK(evq_put(other, "info", "cli", "from outside") == 0);
	CHECK(evq_count(q) == 0);
	CHECK(evq_scan(q) == 1);
	CHECK(evq_scan(q) == 0);
	msgpack_sbuffer_init(&sb);
	CHECK(evq_take(q, &sb, 10) == 1);
	texts(&sb, buf, sizeof(buf));
	CHECK_STR(buf, "from outside");
	/* A scan while it is in flight keeps it in flight. */
	CHECK(evq_put(other, "info", "cli", "second") == 0);
	CHECK(evq_scan(q) == 1);
	msgpack_sbuffer_clear(&sb);
	CHECK(evq_take(q, &sb, 10) == 1);
	texts(&sb, buf, sizeof(buf));
	CHECK_STR(buf, "second");
	evq_ack(q);
	CHECK(files_in(dir) == 0);
	msgpack_sbuffer_destroy(&sb);
	evq_close(q);
	evq_close(other);
}

static void
t_bound(void)
{
	struct evq	*q;
	msgpack_sbuffer	 sb;
	msgpack_unpacked up;
	const msgpack_object *t;
	char		 err[256], text[32];
	size_t		 off = 0, n;
	int		 i, markers = 0;
	char		 first[64] = "";

	q = evq_open(dir, 10, err, sizeof(err));
	CHECK(q != NULL);
	if (q == NULL)
		return;
	for (i = 0; i < 25; i++) {
		snprintf(text, sizeof(text), "e%02d", i);
		CHECK(evq_put(q, "info", "test", text) == 0);
		CHECK(evq_count(q) <= 10);
	}
	CHECK(evq_count(q) == 10);
	CHECK(files_in(dir) == 10);
	CHECK(evq_dropped(q) > 0);
	msgpack_sbuffer_init(&sb);
	n = evq_take(q, &sb, 100);
	CHECK(n == 10);
	msgpack_unpacked_init(&up);
	while (msgpack_unpack_next(&up, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		t = mp_map_get(&up.data, "type");
		if (t != NULL && t->via.str.size == 14 &&
		    memcmp(t->via.str.ptr, "events_dropped", 14) == 0) {
			markers++;
			t = mp_map_get(&up.data, "text");
			CHECK(t != NULL && strtoull(t->via.str.ptr, NULL,
			    10) == evq_dropped(q));
			continue;
		}
		t = mp_map_get(&up.data, "text");
		if (first[0] == '\0' && t != NULL)
			snprintf(first, sizeof(first), "%.*s",
			    (int)t->via.str.size, t->via.str.ptr);
	}
	msgpack_unpacked_destroy(&up);
	/* One marker counts every drop; the newest events are kept. */
	CHECK(markers == 1);
	CHECK_STR(first, "e16");
	evq_ack(q);
	CHECK(files_in(dir) == 0);
	msgpack_sbuffer_destroy(&sb);
	evq_close(q);
}

int
main(void)
{
	char	 cmd[512];

	log_init("t_agent_queue", LOG_LVL_WARN, 0);
	snprintf(dir, sizeof(dir), "/tmp/t_agent_queue.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	t_order_and_ack();
	t_scan();
	t_bound();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	TEST_DONE();
}
