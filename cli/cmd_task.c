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

/* task create/list/show/cancel: tasks run on devices. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define API	"/api/v1"

static const char task_usage[] =
    "canopyctl task create --type T (--group G [--recursive|--no-recursive] "
    "| --device ID...)\n"
    "                      [--command CMD] [--timeout S] [--at ISO-8601 | "
    "--every S]\n"
    "                      [--expires S] [--name NAME]\n"
    "       canopyctl task list [--limit N] [--cursor C]\n"
    "       canopyctl task show ID [--output]\n"
    "       canopyctl task cancel ID\n"
    "Types: inventory_refresh, run_command (--command, where the device's "
    "policy\nallows it).  Without --at or --every a task runs now.";

enum {
	OPT_TYPE = OPT_FIRST_LOCAL, OPT_GROUP, OPT_RECURSIVE, OPT_NO_RECURSIVE,
	OPT_DEVICE, OPT_COMMAND, OPT_TIMEOUT, OPT_AT, OPT_EVERY, OPT_EXPIRES,
	OPT_NAME, OPT_LIMIT, OPT_CURSOR, OPT_OUTPUT
};

static int
task_num(const char *opt, const char *s, long long min, long long max,
    long long *out)
{
	char	*end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < min ||
	    *out > max) {
		ctl_usage_error(task_usage, "%s: %s is not a number in "
		    "%lld..%lld", opt, s, min, max);
		return (-1);
	}
	return (0);
}

/* Parses options; fills *operands with what is left.  -1: exit with *rv. */
static int
task_opts(struct ctl *ctl, int argc, char **argv, int *rv,
    const struct option *longopts,
    int (*local)(int, const char *, void *), void *arg)
{
	int	 c, r;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", task_usage);
			*rv = EXIT_OK;
			return (-1);
		}
		if (local != NULL && (r = local(c, optarg, arg)) != 0) {
			if (r == -1) {
				*rv = EXIT_USAGE;
				return (-1);
			}
			continue;
		}
		if ((r = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		*rv = r == -1 ? EXIT_ERR : ctl_usage_error(task_usage,
		    "bad option");
		return (-1);
	}
	return (0);
}

struct create_args {
	json_t		*req;
	json_t		*devices;
	json_t		*params;
	const char	*group;
	int		 recursive;	/* -1: not said */
	int		 err;
};

static int
create_opt(int c, const char *v, void *arg)
{
	struct create_args	*a = arg;
	long long		 n;

	switch (c) {
	case OPT_TYPE:
		json_object_set_new(a->req, "type", json_string(v));
		return (1);
	case OPT_NAME:
		json_object_set_new(a->req, "name", json_string(v));
		return (1);
	case OPT_GROUP:
		a->group = v;
		return (1);
	case OPT_RECURSIVE:
		a->recursive = 1;
		return (1);
	case OPT_NO_RECURSIVE:
		a->recursive = 0;
		return (1);
	case OPT_DEVICE:
		json_array_append_new(a->devices, json_string(v));
		return (1);
	case OPT_COMMAND:
		json_object_set_new(a->params, "command", json_string(v));
		return (1);
	case OPT_TIMEOUT:
		if (task_num("--timeout", v, TASK_TIMEOUT_MIN_S,
		    TASK_TIMEOUT_MAX_S, &n) == -1)
			return (-1);
		json_object_set_new(a->params, "timeout_s", json_integer(n));
		return (1);
	case OPT_AT:
		json_object_set_new(a->req, "schedule", json_pack("{s:s}",
		    "at", v));
		return (1);
	case OPT_EVERY:
		if (task_num("--every", v, TASK_EVERY_MIN_S,
		    TASK_EVERY_MAX_S, &n) == -1)
			return (-1);
		json_object_set_new(a->req, "schedule", json_pack("{s:I}",
		    "every_s", (json_int_t)n));
		return (1);
	case OPT_EXPIRES:
		if (task_num("--expires", v, 1, TASK_EXPIRES_MAX_S, &n) == -1)
			return (-1);
		json_object_set_new(a->req, "expires_s", json_integer(n));
		return (1);
	}
	return (0);
}

static int
task_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "type",	required_argument, NULL, OPT_TYPE },
		{ "name",	required_argument, NULL, OPT_NAME },
		{ "group",	required_argument, NULL, OPT_GROUP },
		{ "recursive",	no_argument,	   NULL, OPT_RECURSIVE },
		{ "no-recursive", no_argument,	   NULL, OPT_NO_RECURSIVE },
		{ "device",	required_argument, NULL, OPT_DEVICE },
		{ "command",	required_argument, NULL, OPT_COMMAND },
		{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
		{ "at",		required_argument, NULL, OPT_AT },
		{ "every",	required_argument, NULL, OPT_EVERY },
		{ "expires",	required_argument, NULL, OPT_EXPIRES },
		{ NULL, 0, NULL, 0 }
	};
	struct create_args a;
	struct ctl_reply reply;
	int		 rv = EXIT_ERR;

	memset(&a, 0, sizeof(a));
	a.recursive = -1;
	a.req = json_object();
	a.devices = json_array();
	a.params = json_object();
	if (a.req == NULL || a.devices == NULL || a.params == NULL) {
		ctl_warnx("out of memory");
		goto out;
	}
	if (task_opts(ctl, argc, argv, &rv, longopts, create_opt, &a) == -1)
		goto out;
	if (optind != argc) {
		rv = ctl_usage_error(task_usage, "unexpected argument: %s",
		    argv[optind]);
		goto out;
	}
	if (json_object_get(a.req, "type") == NULL) {
		rv = ctl_usage_error(task_usage, "task create: --type is "
		    "required");
		goto out;
	}
	if ((a.group != NULL) == (json_array_size(a.devices) > 0)) {
		rv = ctl_usage_error(task_usage, "task create: give --group "
		    "or --device (not both)");
		goto out;
	}
	if (a.group != NULL) {
		json_object_set_new(a.req, "group", json_string(a.group));
		if (a.recursive != -1)
			json_object_set_new(a.req, "recursive",
			    json_boolean(a.recursive));
	} else
		json_object_set(a.req, "devices", a.devices);
	if (json_object_size(a.params) > 0)
		json_object_set(a.req, "params", a.params);
	if (ctl_resolve(ctl, 1) == -1)
		goto out;
	if (http_call(ctl, "POST", API "/tasks", a.req, &reply) == -1)
		goto out;
	if (ctl->json)
		out_json(reply.body);
	else
		printf("task %s created\n", json_string_value(
		    json_object_get(reply.body, "id")) ?: "?");
	http_reply_free(&reply);
	rv = EXIT_OK;
 out:
	json_decref(a.req);
	json_decref(a.devices);
	json_decref(a.params);
	return (rv);
}

static const char *
task_schedule(json_t *t, char *buf, size_t len)
{
	json_t	*s = json_object_get(t, "schedule");

	if (json_is_string(s))
		return (json_string_value(s));
	if (json_object_get(s, "at") != NULL)
		snprintf(buf, len, "at %s",
		    json_string_value(json_object_get(s, "at")) ?: "?");
	else
		snprintf(buf, len, "every %llds", (long long)
		    json_integer_value(json_object_get(s, "every_s")));
	return (buf);
}

struct list_args {
	char		*query;
	int		 err;
};

static int
list_opt(int c, const char *v, void *arg)
{
	struct list_args	*a = arg;
	long long		 n;

	switch (c) {
	case OPT_LIMIT:
		if (task_num("--limit", v, 1, API_PAGE_MAX, &n) == -1)
			return (-1);
		if (http_query_add(&a->query, "limit", v) == -1)
			return (-1);
		return (1);
	case OPT_CURSOR:
		if (http_query_add(&a->query, "cursor", v) == -1)
			return (-1);
		return (1);
	}
	return (0);
}

static int
task_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "limit",	required_argument, NULL, OPT_LIMIT },
		{ "cursor",	required_argument, NULL, OPT_CURSOR },
		{ NULL, 0, NULL, 0 }
	};
	struct list_args a;
	struct ctl_reply reply;
	struct table	*tb;
	json_t		*t, *next;
	char		*path = NULL, b1[32], b2[64], b3[64];
	size_t		 i;
	int		 rv = EXIT_ERR;

	memset(&a, 0, sizeof(a));
	if (task_opts(ctl, argc, argv, &rv, longopts, list_opt, &a) == -1)
		goto out;
	if (optind != argc) {
		rv = ctl_usage_error(task_usage, "unexpected argument: %s",
		    argv[optind]);
		goto out;
	}
	if (ctl_resolve(ctl, 1) == -1)
		goto out;
	if (asprintf(&path, API "/tasks%s%s", a.query ? "?" : "",
	    a.query ? a.query : "") == -1) {
		path = NULL;
		goto out;
	}
	if (http_call(ctl, "GET", path, NULL, &reply) == -1)
		goto out;
	if (ctl->json)
		out_json(reply.body);
	else {
		tb = table_new(6, "ID", "TYPE", "TARGET", "SCHEDULE", "STATE",
		    "CREATED");
		json_array_foreach(json_object_get(reply.body, "tasks"), i,
		    t) {
			json_t *d = json_object_get(t, "devices");

			if (json_is_array(d))
				snprintf(b2, sizeof(b2), "%zu device%s",
				    json_array_size(d),
				    json_array_size(d) == 1 ? "" : "s");
			else
				snprintf(b2, sizeof(b2), "group %s",
				    out_str(t, "group", b1, sizeof(b1)));
			table_row(tb, out_str(t, "id", b1, sizeof(b1)),
			    json_string_value(json_object_get(t, "type")), b2,
			    task_schedule(t, b3, sizeof(b3)),
			    json_string_value(json_object_get(t, "state")),
			    json_string_value(json_object_get(t, "created")));
		}
		table_print(tb, stdout);
		table_free(tb);
		next = json_object_get(reply.body, "next");
		if (json_is_string(next))
			printf("more: --cursor %s\n", json_string_value(next));
	}
	http_reply_free(&reply);
	rv = EXIT_OK;
 out:
	free(path);
	free(a.query);
	return (rv);
}

static int
show_opt(int c, const char *v, void *arg)
{
	if (c != OPT_OUTPUT)
		return (0);
	*(int *)arg = 1;
	return (1);
}

/* /api/v1/tasks/ID, or NULL after a usage message. */
static char *
task_path(const char *id)
{
	char	*esc, *path;

	if ((esc = http_escape(id)) == NULL)
		return (NULL);
	if (asprintf(&path, API "/tasks/%s", esc) == -1)
		path = NULL;
	free(esc);
	return (path);
}

static int
task_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "output",	no_argument,	   NULL, OPT_OUTPUT },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*tb;
	json_t		*t, *r;
	char		*path = NULL, b1[32], b2[32], b3[64];
	const char	*out;
	size_t		 i;
	int		 rv = EXIT_ERR, output = 0;

	if (task_opts(ctl, argc, argv, &rv, longopts, show_opt, &output) ==
	    -1)
		return (rv);
	if (argc - optind != 1)
		return (ctl_usage_error(task_usage, "task show takes a task "
		    "id"));
	if (ctl_resolve(ctl, 1) == -1 || (path = task_path(argv[optind])) ==
	    NULL)
		return (EXIT_ERR);
	if (http_call(ctl, "GET", path, NULL, &reply) == -1)
		goto out;
	t = reply.body;
	if (ctl->json) {
		out_json(t);
		goto ok;
	}
	printf("Task:      %s\n", out_str(t, "id", b1, sizeof(b1)));
	printf("Type:      %s\n", out_str(t, "type", b1, sizeof(b1)));
	if (json_is_string(json_object_get(t, "name")))
		printf("Name:      %s\n", out_str(t, "name", b1, sizeof(b1)));
	if (json_is_array(json_object_get(t, "devices")))
		printf("Target:    %zu device(s)\n", json_array_size(
		    json_object_get(t, "devices")));
	else
		printf("Target:    group %s%s\n", out_str(t, "group", b1,
		    sizeof(b1)), json_is_true(json_object_get(t, "recursive")) ?
		    " (recursively)" : "");
	printf("Schedule:  %s\n", task_schedule(t, b3, sizeof(b3)));
	printf("State:     %s\n", out_str(t, "state", b1, sizeof(b1)));
	printf("Next run:  %s\n", out_str(t, "next_run", b3, sizeof(b3)));
	printf("Created:   %s by %s\n", out_str(t, "created", b3, sizeof(b3)),
	    out_str(t, "created_by", b1, sizeof(b1)));
	printf("\n");
	tb = table_new(5, "DEVICE", "NAME", "STATE", "EXIT", "FINISHED");
	json_array_foreach(json_object_get(t, "results"), i, r) {
		table_row(tb, out_str(r, "device", b3, sizeof(b3)),
		    json_string_value(json_object_get(r, "device_name")),
		    json_string_value(json_object_get(r, "state")),
		    out_str(r, "exit_code", b1, sizeof(b1)),
		    out_str(r, "finished", b2, sizeof(b2)));
	}
	table_print(tb, stdout);
	table_free(tb);
	if (output) {
		json_array_foreach(json_object_get(t, "results"), i, r) {
			if ((out = json_string_value(json_object_get(r,
			    "output"))) == NULL)
				continue;
			printf("\n--- %s (%s)\n%s%s",
			    json_string_value(json_object_get(r,
			    "device_name")) ?: "?",
			    json_string_value(json_object_get(r, "state")) ?:
			    "?", out, out[0] && out[strlen(out) - 1] != '\n' ?
			    "\n" : "");
		}
	}
 ok:
	rv = EXIT_OK;
	http_reply_free(&reply);
 out:
	free(path);
	return (rv);
}

static int
task_cancel(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	char		*path;
	int		 rv = EXIT_ERR;

	if (task_opts(ctl, argc, argv, &rv, longopts, NULL, NULL) == -1)
		return (rv);
	if (argc - optind != 1)
		return (ctl_usage_error(task_usage, "task cancel takes a task "
		    "id"));
	if (ctl_resolve(ctl, 1) == -1 || (path = task_path(argv[optind])) ==
	    NULL)
		return (EXIT_ERR);
	if (http_call(ctl, "DELETE", path, NULL, &reply) == 0) {
		http_reply_free(&reply);
		if (!ctl->json)
			printf("task %s cancelled\n", argv[optind]);
		rv = EXIT_OK;
	}
	free(path);
	return (rv);
}

int
cmd_task(struct ctl *ctl, int argc, char **argv)
{
	const char	*sub;

	if (argc < 2)
		return (ctl_usage_error(task_usage, "task: what? (create, "
		    "list, show or cancel)"));
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "create") == 0)
		return (task_create(ctl, argc, argv));
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return (task_list(ctl, argc, argv));
	if (strcmp(sub, "show") == 0)
		return (task_show(ctl, argc, argv));
	if (strcmp(sub, "cancel") == 0)
		return (task_cancel(ctl, argc, argv));
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		printf("usage: %s\n", task_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(task_usage, "task: unknown command %s", sub));
}
