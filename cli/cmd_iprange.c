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

/* canopyctl ip-range: IP ranges and scans (issue 5). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canopyctl.h"
#include "canopy_limits.h"

#define API	"/api/v1"

static const char ir_usage[] =
    "canopyctl ip-range list\n"
    "       canopyctl ip-range create --name N (--cidr C | --start A --end B)\n"
    "                 [--interval SECONDS] [--ports P[,P...]]\n"
    "                 [--rate PACKETS_PER_S] [--concurrency N]\n"
    "       canopyctl ip-range show ID      (with the hosts found)\n"
    "       canopyctl ip-range scan ID [--wait]\n"
    "       canopyctl ip-range delete ID";

enum {
	OPT_NAME = OPT_FIRST_LOCAL, OPT_CIDR, OPT_START, OPT_END,
	OPT_INTERVAL, OPT_PORTS, OPT_WAIT, OPT_RATE, OPT_CONC
};

/* --opt N within min..max into body[key]; -1 after a usage error. */
static int
ir_int(json_t *body, const char *opt, const char *key, const char *s,
    long min, long max)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || n < min || n > max) {
		ctl_usage_error(ir_usage, "--%s: %s is not a number in "
		    "%ld..%ld", opt, s, min, max);
		return (-1);
	}
	json_object_set_new(body, key, json_integer(n));
	return (0);
}

/* Global options, and --wait for scan; optind at the first operand. */
static int
ir_opts(struct ctl *ctl, int argc, char **argv, int *wait)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "wait",	no_argument,	NULL, OPT_WAIT },
		{ NULL, 0, NULL, 0 }
	};
	int	 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", ir_usage);
			return (EXIT_OK);
		}
		if (c == OPT_WAIT && wait != NULL) {
			*wait = 1;
			continue;
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(ir_usage, "bad option"));
	}
	return (-1);
}

/* "22,80,443" as a JSON array; NULL after a usage error. */
static json_t *
ir_ports(const char *s)
{
	json_t	*a = json_array();
	char	*end;
	long	 p;

	for (;;) {
		errno = 0;
		p = strtol(s, &end, 10);
		if (errno != 0 || end == s || p < 1 || p > 65535 ||
		    (*end != ',' && *end != '\0')) {
			ctl_usage_error(ir_usage, "--ports: '%s' is not a list "
			    "of port numbers 1..65535 (22,80,443)", s);
			json_decref(a);
			return (NULL);
		}
		json_array_append_new(a, json_integer(p));
		if (*end == '\0')
			return (a);
		s = end + 1;
	}
}

static void
ir_ports_text(json_t *a, char *buf, size_t len)
{
	json_t	*v;
	size_t	 i, off = 0;

	buf[0] = '\0';
	json_array_foreach(a, i, v) {
		if (off >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off, "%s%lld",
		    i ? "," : "", (long long)json_integer_value(v));
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
}

static int
ir_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*r;
	char		 b[8][256], ports[128];
	size_t		 i;
	int		 c;

	if ((c = ir_opts(ctl, argc, argv, NULL)) != -1)
		return (c);
	if (optind != argc)
		return (ctl_usage_error(ir_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "GET", API "/ip-ranges", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(8, "ID", "NAME", "RANGE", "PORTS", "INTERVAL", "STATE",
	    "ALIVE", "LAST SCAN");
	json_array_foreach(json_object_get(reply.body, "ip_ranges"), i, r) {
		ir_ports_text(json_object_get(r, "tcp_ports"), ports,
		    sizeof(ports));
		table_row(t, out_str(r, "id", b[0], sizeof(b[0])),
		    out_str(r, "name", b[1], sizeof(b[1])),
		    out_str(r, "range", b[2], sizeof(b[2])), ports,
		    out_str(r, "interval_s", b[3], sizeof(b[3])),
		    out_str(r, "state", b[4], sizeof(b[4])),
		    out_str(r, "alive", b[5], sizeof(b[5])),
		    out_str(r, "last_scan", b[6], sizeof(b[6])));
	}
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
ir_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "name",	required_argument, NULL, OPT_NAME },
		{ "cidr",	required_argument, NULL, OPT_CIDR },
		{ "start",	required_argument, NULL, OPT_START },
		{ "end",	required_argument, NULL, OPT_END },
		{ "interval",	required_argument, NULL, OPT_INTERVAL },
		{ "ports",	required_argument, NULL, OPT_PORTS },
		{ "rate",	required_argument, NULL, OPT_RATE },
		{ "concurrency", required_argument, NULL, OPT_CONC },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*body, *ports;
	int		 c;

	body = json_object();
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case OPT_CIDR:
			json_object_set_new(body, "cidr", json_string(optarg));
			break;
		case OPT_START:
			json_object_set_new(body, "start", json_string(optarg));
			break;
		case OPT_END:
			json_object_set_new(body, "end", json_string(optarg));
			break;
		case OPT_INTERVAL:
			if (ir_int(body, "interval", "interval_s", optarg,
			    SCAN_INTERVAL_MIN_S, SCAN_INTERVAL_MAX_S) == -1)
				goto usage;
			break;
		case OPT_RATE:
			if (ir_int(body, "rate", "rate_pps", optarg, 1,
			    SCAN_RATE_PPS_MAX) == -1)
				goto usage;
			break;
		case OPT_CONC:
			if (ir_int(body, "concurrency", "concurrency", optarg,
			    1, SCAN_CONCURRENCY) == -1)
				goto usage;
			break;
		case OPT_PORTS:
			if ((ports = ir_ports(optarg)) == NULL)
				goto usage;
			json_object_set_new(body, "tcp_ports", ports);
			break;
		case OPT_HELP:
			printf("usage: %s\n", ir_usage);
			json_decref(body);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			json_decref(body);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(ir_usage, "bad option"));
		}
	}
	if (optind != argc) {
		ctl_usage_error(ir_usage, "unexpected argument: %s",
		    argv[optind]);
		goto usage;
	}
	if (json_object_get(body, "name") == NULL) {
		ctl_usage_error(ir_usage, "ip-range create needs --name");
		goto usage;
	}
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "POST", API "/ip-ranges", body, &reply) == -1) {
		json_decref(body);
		return (EXIT_ERR);
	}
	json_decref(body);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("ip range %s created\n", json_string_value(
		    json_object_get(reply.body, "id")));
	http_reply_free(&reply);
	return (EXIT_OK);
 usage:
	json_decref(body);
	return (EXIT_USAGE);
}

/* GET /ip-ranges/ID into reply; -1 after a message. */
static int
ir_get(struct ctl *ctl, const char *id, struct ctl_reply *reply)
{
	char	*e, *path;
	int	 r;

	if ((e = http_escape(id)) == NULL ||
	    asprintf(&path, API "/ip-ranges/%s", e) == -1) {
		free(e);
		ctl_warnx("out of memory");
		return (-1);
	}
	free(e);
	r = http_call(ctl, "GET", path, NULL, reply);
	free(path);
	return (r);
}

static void
ir_print(json_t *r)
{
	struct table	*t;
	json_t		*h;
	char		 b[8][256], ports[128];
	size_t		 i;

	ir_ports_text(json_object_get(r, "tcp_ports"), ports, sizeof(ports));
	printf("ip range %s: %s\n", out_str(r, "id", b[0], sizeof(b[0])),
	    out_str(r, "name", b[1], sizeof(b[1])));
	printf("  range      %s\n", out_str(r, "range", b[0], sizeof(b[0])));
	printf("  tcp ports  %s\n", ports);
	printf("  rate       %s packets/s, %s connects at once\n",
	    out_str(r, "rate_pps", b[0], sizeof(b[0])), out_str(r,
	    "concurrency", b[1], sizeof(b[1])));
	printf("  interval   %s\n", out_str(r, "interval_s", b[0],
	    sizeof(b[0])));
	printf("  state      %s\n", out_str(r, "state", b[0], sizeof(b[0])));
	printf("  last scan  %s (%s ms)\n", out_str(r, "last_scan", b[0],
	    sizeof(b[0])), out_str(r, "duration_ms", b[1], sizeof(b[1])));
	printf("  alive      %s of %s\n", out_str(r, "alive", b[0],
	    sizeof(b[0])), out_str(r, "scanned", b[1], sizeof(b[1])));
	if (json_string_value(json_object_get(r, "last_error")) != NULL)
		printf("  last error %s\n", json_string_value(
		    json_object_get(r, "last_error")));
	t = table_new(5, "ADDRESS", "NAME", "ICMP", "OPEN PORTS", "DEVICE");
	json_array_foreach(json_object_get(r, "hosts"), i, h) {
		ir_ports_text(json_object_get(h, "tcp_ports"), ports,
		    sizeof(ports));
		table_row(t, out_str(h, "ip", b[0], sizeof(b[0])),
		    out_str(h, "name", b[1], sizeof(b[1])),
		    out_str(h, "icmp", b[2], sizeof(b[2])), ports,
		    out_str(h, "device", b[3], sizeof(b[3])));
	}
	table_print(t, stdout);
	table_free(t);
}

static int
ir_show(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	int		 c;

	if ((c = ir_opts(ctl, argc, argv, NULL)) != -1)
		return (c);
	if (argc - optind != 1)
		return (ctl_usage_error(ir_usage, "ip-range show takes one "
		    "range id"));
	if (ctl_resolve(ctl, 1) == -1 || ir_get(ctl, argv[optind], &reply) ==
	    -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else
		ir_print(reply.body);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* 1 while the range is queued or scanning. */
static int
ir_busy(json_t *r)
{
	const char	*s = json_string_value(json_object_get(r, "state"));

	return s != NULL && (strcmp(s, "queued") == 0 ||
	    strcmp(s, "scanning") == 0);
}

static int
ir_scan(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct timespec	 ts = { 0, 200 * 1000 * 1000 };
	char		*e, *path;
	int		 c, wait = 0, r;

	if ((c = ir_opts(ctl, argc, argv, &wait)) != -1)
		return (c);
	if (argc - optind != 1)
		return (ctl_usage_error(ir_usage, "ip-range scan takes one "
		    "range id"));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if ((e = http_escape(argv[optind])) == NULL ||
	    asprintf(&path, API "/ip-ranges/%s/scan", e) == -1) {
		free(e);
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	free(e);
	r = http_call(ctl, "POST", path, NULL, &reply);
	free(path);
	if (r == -1)
		return (EXIT_ERR);
	if (!wait) {
		if (ctl->json)
			out_json(reply.body);
		else
			printf("ip range %s: scan queued\n", argv[optind]);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	/* Until the scan is over (each scan ends within minutes). */
	for (;;) {
		http_reply_free(&reply);
		if (ir_get(ctl, argv[optind], &reply) == -1)
			return (EXIT_ERR);
		if (!ir_busy(reply.body))
			break;
		nanosleep(&ts, NULL);
	}
	if (ctl->json)
		out_json(reply.body);
	else
		ir_print(reply.body);
	r = strcmp(json_string_value(json_object_get(reply.body, "state")) ?
	    json_string_value(json_object_get(reply.body, "state")) : "",
	    "failed") == 0 ? EXIT_ERR : EXIT_OK;
	http_reply_free(&reply);
	return (r);
}

static int
ir_delete(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		*e, *path;
	int		 c, r;

	if ((c = ir_opts(ctl, argc, argv, NULL)) != -1)
		return (c);
	if (argc - optind != 1)
		return (ctl_usage_error(ir_usage, "ip-range delete takes one "
		    "range id"));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if ((e = http_escape(argv[optind])) == NULL ||
	    asprintf(&path, API "/ip-ranges/%s", e) == -1) {
		free(e);
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	free(e);
	r = http_call(ctl, "DELETE", path, NULL, &reply);
	free(path);
	if (r == -1)
		return (EXIT_ERR);
	if (!ctl->json)
		printf("ip range %s: deleted\n", argv[optind]);
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_iprange(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(ir_usage, "ip-range: what? (list, "
		    "create, show, scan, delete)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (ir_list(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "create") == 0)
		return (ir_create(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "show") == 0)
		return (ir_show(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "scan") == 0)
		return (ir_scan(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "rm") == 0)
		return (ir_delete(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", ir_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(ir_usage, "ip-range: unknown command %s",
	    argv[1]));
}
