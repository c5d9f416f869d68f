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

/* device list, device show, device sync. */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"

#define API	"/api/v1"

static const char device_usage[] =
    "canopyctl device list [--group G] [--recursive] [--status S] "
    "[-q TEXT]\n"
    "                      [--hierarchy] [--limit N] [--all]\n"
    "       canopyctl device show ID\n"
    "       canopyctl device sync ID\n"
    "       canopyctl device move ID GROUP\n"
    "       canopyctl device effective-policy ID [--product P]";

enum { OPT_ALL = OPT_FIRST_LOCAL, OPT_HIERARCHY, OPT_STATUS };

static void
device_row(struct table *t, json_t *d, int hierarchy)
{
	char	b[8][256];

	if (hierarchy)
		table_row(t, out_str(d, "id", b[0], sizeof(b[0])),
		    out_str(d, "name", b[1], sizeof(b[1])),
		    out_str(d, "ip", b[2], sizeof(b[2])),
		    out_str(d, "os", b[3], sizeof(b[3])),
		    out_str(d, json_object_get(d, "group_path") != NULL ?
		    "group_path" : "group", b[4], sizeof(b[4])),
		    out_str(d, "status", b[5], sizeof(b[5])),
		    out_time_ago(json_object_get(d, "last_seen"), b[6],
		    sizeof(b[6])),
		    out_str(d, "server", b[7], sizeof(b[7])));
	else
		table_row(t, out_str(d, "id", b[0], sizeof(b[0])),
		    out_str(d, "name", b[1], sizeof(b[1])),
		    out_str(d, "ip", b[2], sizeof(b[2])),
		    out_str(d, "os", b[3], sizeof(b[3])),
		    out_str(d, json_object_get(d, "group_path") != NULL ?
		    "group_path" : "group", b[4], sizeof(b[4])),
		    out_str(d, "status", b[5], sizeof(b[5])),
		    out_time_ago(json_object_get(d, "last_seen"), b[6],
		    sizeof(b[6])));
}

static int
device_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "group",	required_argument, NULL, 'g' },
		{ "recursive",	no_argument,	   NULL, 'r' },
		{ "status",	required_argument, NULL, OPT_STATUS },
		{ "query",	required_argument, NULL, 'q' },
		{ "limit",	required_argument, NULL, 'l' },
		{ "all",	no_argument,	   NULL, OPT_ALL },
		{ "hierarchy",	no_argument,	   NULL, OPT_HIERARCHY },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t = NULL;
	json_t		*all = NULL, *devs, *d, *next;
	const char	*group = NULL, *status = NULL, *q = NULL;
	char		*query = NULL, *path = NULL, *cursor = NULL, *end;
	char		 lim[32];
	long		 limit = 0;
	size_t		 i, n = 0;
	int		 c, recursive = 0, every = 0, hierarchy = 0;
	int		 rv = EXIT_ERR, more = 0;

	while ((c = getopt_long(argc, argv, "g:rq:l:v", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case 'r':
			recursive = 1;
			break;
		case OPT_STATUS:
			status = optarg;
			break;
		case 'q':
			q = optarg;
			break;
		case 'l':
			errno = 0;
			limit = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || limit < 1 ||
			    limit > API_PAGE_MAX)
				return (ctl_usage_error(device_usage,
				    "--limit: %s is not a number in 1..%d",
				    optarg, API_PAGE_MAX));
			break;
		case OPT_ALL:
			every = 1;
			break;
		case OPT_HIERARCHY:
			hierarchy = 1;
			break;
		case OPT_HELP:
			printf("usage: %s\n", device_usage);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(device_usage, "bad option"));
		}
	}
	if (optind != argc)
		return (ctl_usage_error(device_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);

	if ((group != NULL && http_query_add(&query, "group", group) == -1) ||
	    (recursive && http_query_add(&query, "recursive", "1") == -1) ||
	    (status != NULL &&
	    http_query_add(&query, "status", status) == -1) ||
	    (q != NULL && http_query_add(&query, "q", q) == -1) ||
	    (hierarchy && http_query_add(&query, "hierarchy", "1") == -1))
		goto out;
	if (limit > 0) {
		snprintf(lim, sizeof(lim), "%ld", limit);
		if (http_query_add(&query, "limit", lim) == -1)
			goto out;
	}
	if ((all = json_array()) == NULL)
		goto oom;
	if (!ctl->json) {
		if (hierarchy)
			t = table_new(8, "ID", "NAME", "IP", "OS", "GROUP",
			    "STATUS", "LAST SEEN", "SERVER");
		else
			t = table_new(7, "ID", "NAME", "IP", "OS", "GROUP",
			    "STATUS", "LAST SEEN");
	}

	for (;;) {
		char *full = NULL;
		int r;

		if (query != NULL && (full = strdup(query)) == NULL)
			goto oom;
		if (cursor != NULL &&
		    http_query_add(&full, "cursor", cursor) == -1) {
			free(full);
			goto out;
		}
		free(path);
		r = asprintf(&path, API "/devices%s", full != NULL ? full : "");
		free(full);
		if (r == -1) {
			path = NULL;
			goto oom;
		}
		if (http_call(ctl, "GET", path, NULL, &reply) == -1)
			goto out;
		devs = json_object_get(reply.body, "devices");
		if (!json_is_array(devs)) {
			ctl_warnx("the server's answer has no device list");
			http_reply_free(&reply);
			goto out;
		}
		json_array_foreach(devs, i, d) {
			if (t != NULL)
				device_row(t, d, hierarchy);
			json_array_append(all, d);
			n++;
		}
		next = json_object_get(reply.body, "next");
		free(cursor);
		cursor = NULL;
		if (json_is_string(next) && json_string_length(next) > 0) {
			if ((cursor = strdup(json_string_value(next))) ==
			    NULL) {
				http_reply_free(&reply);
				goto oom;
			}
		}
		if (ctl->json && !every) {
			/* One page: the API's answer as it is. */
			out_json(reply.body);
			http_reply_free(&reply);
			rv = EXIT_OK;
			goto out;
		}
		http_reply_free(&reply);
		if (cursor == NULL || !every)
			break;
	}
	more = cursor != NULL;

	if (ctl->json) {
		json_t *o = json_pack("{s:O,s:n}", "devices", all, "next");

		out_json(o);
		json_decref(o);
	} else if (n == 0)
		printf("No devices.\n");
	else {
		table_print(t, stdout);
		if (more) {
			fflush(stdout);
			fprintf(stderr, "(more devices: use --all, or "
			    "--limit N up to %d)\n", API_PAGE_MAX);
		}
	}
	rv = EXIT_OK;
	goto out;
 oom:
	ctl_warnx("out of memory");
 out:
	table_free(t);
	json_decref(all);
	free(query);
	free(path);
	free(cursor);
	return (rv);
}

static void
kv(const char *k, const char *v)
{
	printf("%-16s %s\n", k, v != NULL && v[0] != '\0' ? v : "-");
}

/* Addresses from ["10.0.0.1/24", ...] or [{"address": ...}, ...]. */
static const char *
addr_list(json_t *iface, char *buf, size_t len)
{
	static const char *keys[] = { "ipv4", "ipv6", "addresses" };
	json_t	*arr, *a;
	size_t	 i, k, off = 0;
	char	 one[256];
	int	 n;

	buf[0] = '\0';
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (!json_is_array(arr = json_object_get(iface, keys[k])))
			continue;
		json_array_foreach(arr, i, a) {
			const char *s = json_is_object(a) ?
			    out_str(a, "address", one, sizeof(one)) :
			    out_str(a, NULL, one, sizeof(one));

			n = snprintf(buf + off, len - off, "%s%s",
			    off ? ", " : "", s);
			if (n < 0 || (size_t)n >= len - off)
				return (buf);
			off += n;
		}
	}
	return (off ? buf : "-");
}

static void
device_print_inventory(json_t *inv)
{
	struct table	*t;
	json_t		*os, *hw, *arr, *e, *v;
	char		 b1[256], b2[256], b3[256], line[512];
	size_t		 i;

	os = json_object_get(inv, "os");
	hw = json_object_get(inv, "hardware");

	printf("\nInventory\n");
	kv("Hostname", out_str(inv, "hostname", b1, sizeof(b1)));
	kv("FQDN", out_str(inv, "fqdn", b1, sizeof(b1)));
	if ((v = json_object_get(os, "pretty_name")) != NULL &&
	    json_is_string(v))
		snprintf(line, sizeof(line), "%s", json_string_value(v));
	else
		snprintf(line, sizeof(line), "%s %s",
		    out_str(os, "name", b1, sizeof(b1)),
		    out_str(os, "version", b2, sizeof(b2)));
	if (json_object_get(os, "arch") != NULL) {
		size_t l = strlen(line);

		snprintf(line + l, sizeof(line) - l, " (%s)",
		    out_str(os, "arch", b1, sizeof(b1)));
	}
	kv("OS", line);
	kv("Kernel", out_str(os, "kernel", b1, sizeof(b1)));
	kv("Agent version", out_str(inv, "agent_version", b1, sizeof(b1)));
	if (json_object_get(inv, "boot_time") != NULL)
		kv("Booted", out_time_ago(json_object_get(inv, "boot_time"),
		    b1, sizeof(b1)));

	snprintf(line, sizeof(line), "%s", out_str(hw, "cpu_model", b1,
	    sizeof(b1)));
	if (json_is_integer(v = json_object_get(hw, "cpu_cores"))) {
		size_t l = strlen(line);

		snprintf(line + l, sizeof(line) - l, " (%lld cores)",
		    (long long)json_integer_value(v));
	}
	kv("CPU", line);
	kv("Memory", json_is_number(v = json_object_get(hw, "memory_bytes")) ?
	    out_bytes(json_number_value(v), b1, sizeof(b1)) : "-");
	if (json_object_get(hw, "virtual") != NULL) {
		snprintf(line, sizeof(line), "%s%s%s%s",
		    json_is_true(json_object_get(hw, "virtual")) ? "yes" : "no",
		    json_is_string(json_object_get(hw, "hypervisor")) ?
		    " (" : "",
		    json_is_string(json_object_get(hw, "hypervisor")) ?
		    json_string_value(json_object_get(hw, "hypervisor")) : "",
		    json_is_string(json_object_get(hw, "hypervisor")) ?
		    ")" : "");
		kv("Virtual", line);
	}
	if (json_object_get(hw, "vendor") != NULL ||
	    json_object_get(hw, "product") != NULL) {
		snprintf(line, sizeof(line), "%s %s",
		    out_str(hw, "vendor", b1, sizeof(b1)),
		    out_str(hw, "product", b2, sizeof(b2)));
		kv("Hardware", line);
	}
	arr = json_object_get(inv, "software");
	snprintf(line, sizeof(line), "%zu packages", json_array_size(arr));
	kv("Software", line);

	if (json_array_size(arr = json_object_get(hw, "disks")) > 0) {
		printf("\nDisks\n");
		t = table_new(3, "NAME", "SIZE", "MODEL");
		json_array_foreach(arr, i, e)
			table_row(t, out_str(e, "name", b1, sizeof(b1)),
			    json_is_number(v = json_object_get(e,
			    "size_bytes")) ? out_bytes(json_number_value(v),
			    b2, sizeof(b2)) : "-",
			    out_str(e, "model", b3, sizeof(b3)));
		table_print(t, stdout);
		table_free(t);
	}
	if (json_array_size(arr = json_object_get(inv, "interfaces")) > 0) {
		char addrs[2048];

		printf("\nInterfaces\n");
		t = table_new(3, "NAME", "MAC", "ADDRESSES");
		json_array_foreach(arr, i, e)
			table_row(t, out_str(e, "name", b1, sizeof(b1)),
			    out_str(e, "mac", b2, sizeof(b2)),
			    addr_list(e, addrs, sizeof(addrs)));
		table_print(t, stdout);
		table_free(t);
	}
	if (json_array_size(arr = json_object_get(inv, "users")) > 0) {
		printf("\nUsers\n");
		t = table_new(3, "NAME", "TTY", "SINCE");
		json_array_foreach(arr, i, e)
			table_row(t, out_str(e, "name", b1, sizeof(b1)),
			    out_str(e, "tty", b2, sizeof(b2)),
			    out_time_ago(json_object_get(e, "since"), b3,
			    sizeof(b3)));
		table_print(t, stdout);
		table_free(t);
	}
}

/*
 * The options and the one device id of "device show|sync ID": the API path
 * of that device (malloc'd) in *path, or an exit status.
 */
static int
device_path_arg(struct ctl *ctl, int argc, char **argv, const char *what,
    const char *suffix, char **path)
{
	char	*id, w[64];
	int	 c;

	snprintf(w, sizeof(w), "device %s", what);
	if ((c = ctl_operands(ctl, argc, argv, device_usage, w, 1)) != -1)
		return (c);
	if ((id = http_escape(argv[optind])) == NULL) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	c = asprintf(path, API "/devices/%s%s", id, suffix);
	free(id);
	if (c == -1) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	return (-1);
}

static int
device_show(struct ctl *ctl, int argc, char **argv)
{
	static const char *fields[][2] = {
		{ "id", "ID" }, { "name", "Name" }, { "fqdn", "FQDN" },
		{ "ip", "IP" }, { "mac", "MAC" }, { "group", "Group" },
		{ "status", "Status" }, { "source", "Source" },
		{ "server", "Server" }, { "vs", "Virtual server" },
	};
	struct ctl_reply reply;
	json_t		*inv;
	char		*path, b[256], ago[64];
	size_t		 i;
	int		 c;

	if ((c = device_path_arg(ctl, argc, argv, "show", "", &path)) != -1)
		return (c);
	c = http_call(ctl, "GET", path, NULL, &reply);
	free(path);
	if (c == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (json_object_get(reply.body, fields[i][0]) == NULL)
			continue;
		/* The group by its path, for people; the id for scripts. */
		if (strcmp(fields[i][0], "group") == 0 &&
		    json_is_string(json_object_get(reply.body, "group_path"))) {
			snprintf(b, sizeof(b), "%s (id %s)",
			    json_string_value(json_object_get(reply.body,
			    "group_path")), out_str(reply.body, "group", ago,
			    sizeof(ago)));
			kv(fields[i][1], b);
			continue;
		}
		kv(fields[i][1], out_str(reply.body, fields[i][0], b,
		    sizeof(b)));
	}
	if (json_object_get(reply.body, "last_seen") != NULL) {
		snprintf(b, sizeof(b), "%s (%s)", out_str(reply.body,
		    "last_seen", ago, sizeof(ago)), out_time_ago(
		    json_object_get(reply.body, "last_seen"), ago,
		    sizeof(ago)));
		kv("Last seen", b);
	}
	inv = json_object_get(reply.body, "inventory");
	if (json_is_object(inv) && json_object_size(inv) > 0)
		device_print_inventory(inv);
	else
		printf("\nNo inventory yet.\n");
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* Asks the server to tell the device's agent to sync now. */
static int
device_sync(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	int		 c;
	char		*path;

	if ((c = device_path_arg(ctl, argc, argv, "sync", "/sync",
	    &path)) != -1)
		return (c);
	c = http_call(ctl, "POST", path, NULL, &reply);
	free(path);
	if (c == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("sync requested from device %s\n", argv[optind]);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* Moves a device to another group (named by id or path). */
static int
device_move(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*body;
	char		*id, *path, b[256];
	int		 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: canopyctl device move ID GROUP\n"
			    "GROUP is a group id or a path such as "
			    "'/Managed devices/Berlin'.\n");
			return (EXIT_OK);
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(device_usage, "bad option"));
	}
	if (argc - optind != 2)
		return (ctl_usage_error(device_usage,
		    "device move takes a device id and a group"));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if ((id = http_escape(argv[optind])) == NULL ||
	    asprintf(&path, API "/devices/%s/move", id) == -1) {
		free(id);
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	free(id);
	body = json_pack("{s:s}", "group", argv[optind + 1]);
	c = http_call(ctl, "POST", path, body, &reply);
	json_decref(body);
	free(path);
	if (c == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("device %s moved to %s\n", argv[optind],
		    json_is_string(json_object_get(reply.body, "group_path")) ?
		    json_string_value(json_object_get(reply.body,
		    "group_path")) : out_str(reply.body, "group", b,
		    sizeof(b)));
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_device(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(device_usage, "device: what? "
		    "(list, show or sync)"));
	/* Sub-command name becomes argv[0] for its getopt. */
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (device_list(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "show") == 0 || strcmp(argv[1], "get") == 0)
		return (device_show(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "sync") == 0)
		return (device_sync(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "move") == 0)
		return (device_move(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "effective-policy") == 0)
		return (cmd_device_effective_policy(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(device_usage, "device: unknown command %s",
	    argv[1]));
}
