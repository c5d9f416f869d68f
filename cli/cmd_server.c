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
 * canopyctl server tree | add-child | remove-child, and report status:
 * the server tree (issue 4).  Everything comes from GET /servers and
 * GET /reports/status of the server logged in to, which read their mirrors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"

#define API	"/api/v1"
#define AGENT_PORT_DEFAULT	13000

static const char server_usage[] =
    "canopyctl server tree\n"
    "       canopyctl server add-child NAME [--group G] [--ttl SECONDS]\n"
    "                 [--ca-out FILE] [--parent HOST:PORT]\n"
    "       canopyctl server remove-child NAME";

static const char report_usage[] =
    "canopyctl report status [--hierarchy]";

enum { OPT_GROUP = OPT_FIRST_LOCAL, OPT_TTL, OPT_CA_OUT, OPT_PARENT,
    OPT_HIERARCHY };

/* "connected, lag 0.5s, seen 3s ago" */
static void
srv_state(json_t *n, char *buf, size_t len)
{
	char		 ago[64];
	const char	*st = json_string_value(json_object_get(n, "state"));
	json_t		*lag = json_object_get(n, "lag_s");
	int		 o;

	o = snprintf(buf, len, "%s", st != NULL ? st : "?");
	if (o < 0 || (size_t)o >= len)
		return;
	if (json_is_number(lag))
		o += snprintf(buf + o, len - o, ", lag %.1fs",
		    json_number_value(lag));
	if (o < 0 || (size_t)o >= len)
		return;
	snprintf(buf + o, len - o, ", seen %s",
	    out_time_ago(json_object_get(n, "last_seen"), ago, sizeof(ago)));
}

/* "main 12, shop 3" */
static void
srv_vservers(json_t *n, char *buf, size_t len)
{
	json_t		*v;
	size_t		 i, o = 0;
	int		 w;

	buf[0] = '\0';
	json_array_foreach(json_object_get(n, "vservers"), i, v) {
		w = snprintf(buf + o, len - o, "%s%s %lld", i > 0 ? ", " : "",
		    json_string_value(json_object_get(v, "name")) != NULL ?
		    json_string_value(json_object_get(v, "name")) : "?",
		    (long long)json_integer_value(json_object_get(v,
		    "devices")));
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
}

static void
srv_draw(json_t *n, const char *prefix, int last, int root)
{
	char		 st[256], vss[1024], pre[1024];
	const char	*err = json_string_value(json_object_get(n,
			    "last_error"));
	json_t		*kids, *k;
	size_t		 i, nk;

	srv_vservers(n, vss, sizeof(vss));
	if (root) {
		printf("%s  devices %lld", json_string_value(json_object_get(n,
		    "name")) != NULL ? json_string_value(json_object_get(n,
		    "name")) : "?",
		    (long long)json_integer_value(json_object_get(n,
		    "devices")));
	} else {
		srv_state(n, st, sizeof(st));
		printf("%s%s %s  [%s]  devices %lld", prefix,
		    last ? "`--" : "|--",
		    json_string_value(json_object_get(n, "name")) != NULL ?
		    json_string_value(json_object_get(n, "name")) : "?", st,
		    (long long)json_integer_value(json_object_get(n,
		    "devices")));
	}
	if (vss[0] != '\0')
		printf("  vservers: %s", vss);
	if (err != NULL && *err != '\0')
		printf("  error: %s", err);
	putchar('\n');
	kids = json_object_get(n, "children");
	nk = json_array_size(kids);
	snprintf(pre, sizeof(pre), "%s%s", prefix, root ? "" :
	    last ? "    " : "|   ");
	json_array_foreach(kids, i, k)
		srv_draw(k, pre, i + 1 == nk, 0);
}

/* Global options only, exactly nargs operands; -1: return *rv. */
static int
srv_args(struct ctl *ctl, int argc, char **argv, const char *usage,
    int nargs, int *rv)
{
	*rv = ctl_operands(ctl, argc, argv, usage, argv[0], nargs);
	return *rv == -1 ? 0 : -1;
}

static int
srv_tree(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	json_t		*p;
	char		 st[256];
	int		 rv;

	if (srv_args(ctl, argc, argv, server_usage, 0, &rv) == -1)
		return (rv);
	if (http_call(ctl, "GET", API "/servers", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	if (!json_is_object(reply.body)) {
		ctl_warnx("the server's answer is not a tree");
		http_reply_free(&reply);
		return (EXIT_ERR);
	}
	p = json_object_get(reply.body, "parent");
	if (json_is_object(p)) {
		srv_state(p, st, sizeof(st));
		printf("(parent: %s  [%s])\n",
		    json_string_value(json_object_get(p, "name")) != NULL ?
		    json_string_value(json_object_get(p, "name")) : "?", st);
	}
	srv_draw(reply.body, "", 1, 1);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* The host of the API URL we talk to, for the "parent" line. */
static void
srv_host(const char *url, char *buf, size_t len)
{
	const char	*h, *e;

	snprintf(buf, len, "PARENT-HOST");
	if (url == NULL)
		return;
	h = (h = strstr(url, "://")) != NULL ? h + 3 : url;
	if (*h == '[') {
		if ((e = strchr(h, ']')) != NULL)
			snprintf(buf, len, "%.*s", (int)(e - h + 1), h);
		return;
	}
	e = h + strcspn(h, ":/");
	if (e > h)
		snprintf(buf, len, "%.*s", (int)(e - h), h);
}

static int
srv_add_child(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "group",	required_argument, NULL, OPT_GROUP },
		{ "ttl",	required_argument, NULL, OPT_TTL },
		{ "ca-out",	required_argument, NULL, OPT_CA_OUT },
		{ "parent",	required_argument, NULL, OPT_PARENT },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	const char	*group = NULL, *ca_out = NULL, *parent = NULL;
	const char	*token, *ca_pem, *fp;
	char		 host[300], *end;
	json_t		*req;
	FILE		*f;
	long		 ttl = 0;
	int		 c, rv;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			printf("usage: %s\n", server_usage);
			return (EXIT_OK);
		case OPT_GROUP:
			group = optarg;
			continue;
		case OPT_TTL:
			ttl = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || ttl <= 0)
				return (ctl_usage_error(server_usage, "--ttl: "
				    "a number of seconds"));
			continue;
		case OPT_CA_OUT:
			ca_out = optarg;
			continue;
		case OPT_PARENT:
			parent = optarg;
			continue;
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		return (c == -1 ? EXIT_ERR :
		    ctl_usage_error(server_usage, "bad option"));
	}
	if (argc - optind != 1)
		return (ctl_usage_error(server_usage, argc - optind < 1 ?
		    "add-child: a name is needed" : "add-child: one name"));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	req = json_pack("{s:s}", "name", argv[optind]);
	if (req != NULL && group != NULL)
		json_object_set_new(req, "group", json_string(group));
	if (req != NULL && ttl > 0)
		json_object_set_new(req, "ttl_s", json_integer(ttl));
	if (req == NULL) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	rv = http_call(ctl, "POST", API "/servers/children", req, &reply);
	json_decref(req);
	if (rv == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	token = json_string_value(json_object_get(reply.body, "token"));
	ca_pem = json_string_value(json_object_get(reply.body, "ca_pem"));
	fp = json_string_value(json_object_get(reply.body, "fingerprint"));
	if (token == NULL || ca_pem == NULL) {
		ctl_warnx("the server's answer has no token or CA");
		http_reply_free(&reply);
		return (EXIT_ERR);
	}
	if (ca_out != NULL) {
		if ((f = fopen(ca_out, "w")) == NULL ||
		    fputs(ca_pem, f) == EOF || fclose(f) == EOF) {
			ctl_warnx("%s: cannot write the CA", ca_out);
			http_reply_free(&reply);
			return (EXIT_ERR);
		}
	}
	if (parent == NULL)
		srv_host(ctl->server, host, sizeof(host));
	printf("child server %s added; its one-time token: %s\n",
	    argv[optind], token);
	if (fp != NULL)
		printf("this server's CA fingerprint: %s\n", fp);
	printf("\nin the child's canopyd.conf:\n\n");
	if (parent != NULL)
		printf("parent %s\n", parent);
	else
		printf("parent %s:%d\n", host, AGENT_PORT_DEFAULT);
	printf("parent-token \"%s\"\n", token);
	printf("parent-ca %s\n", ca_out != NULL ? ca_out :
	    "/etc/canopy/parent-ca.pem");
	if (ca_out == NULL)
		printf("\nwith this CA in /etc/canopy/parent-ca.pem:\n%s",
		    ca_pem);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
srv_remove_child(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		*name, *path;
	int		 rv, n;

	if (srv_args(ctl, argc, argv, server_usage, 1, &rv) == -1)
		return (rv);
	if ((name = http_escape(argv[optind])) == NULL) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	n = asprintf(&path, API "/servers/children/%s", name);
	free(name);
	if (n == -1) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	rv = http_call(ctl, "DELETE", path, NULL, &reply);
	free(path);
	if (rv == -1)
		return (EXIT_ERR);
	http_reply_free(&reply);
	if (!ctl->json)
		printf("child server %s removed\n", argv[optind]);
	return (EXIT_OK);
}

int
cmd_server(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char	*name;
		int		(*fn)(struct ctl *, int, char **);
	} subs[] = {
		{ "tree",		srv_tree },
		{ "add-child",		srv_add_child },
		{ "remove-child",	srv_remove_child },
	};
	size_t	 i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		if (argc < 2)
			return (ctl_usage_error(server_usage,
			    "server: a subcommand is needed"));
		printf("usage: %s\n", server_usage);
		return (EXIT_OK);
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return (subs[i].fn(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(server_usage, "server: unknown subcommand "
	    "'%s'", argv[1]));
}

static void
report_row(struct table *t, const char *name, json_t *c)
{
	char	b[4][32];

	table_row(t, name, out_str(c, "total", b[0], sizeof(b[0])),
	    out_str(c, "ok", b[1], sizeof(b[1])),
	    out_str(c, "warning", b[2], sizeof(b[2])),
	    out_str(c, "critical", b[3], sizeof(b[3])));
}

static int
report_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "hierarchy",	no_argument,	NULL, OPT_HIERARCHY },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t;
	const char	*k;
	json_t		*c;
	int		 ch, hierarchy = 0;

	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (ch == OPT_HELP) {
			printf("usage: %s\n", report_usage);
			return (EXIT_OK);
		}
		if (ch == OPT_HIERARCHY) {
			hierarchy = 1;
			continue;
		}
		if ((ch = ctl_global_opt(ctl, ch, optarg)) == 1)
			continue;
		return (ch == -1 ? EXIT_ERR :
		    ctl_usage_error(report_usage, "bad option"));
	}
	if (argc - optind != 0)
		return (ctl_usage_error(report_usage, "unexpected argument: "
		    "%s", argv[optind]));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if (http_call(ctl, "GET", hierarchy ? API "/reports/status?"
	    "hierarchy=1" : API "/reports/status", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(5, "SERVER", "TOTAL", "OK", "WARNING", "CRITICAL");
	json_object_foreach(json_object_get(reply.body, "by_server"), k, c)
		report_row(t, k, c);
	report_row(t, "(all)", reply.body);
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_report(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		if (argc < 2)
			return (ctl_usage_error(report_usage,
			    "report: a subcommand is needed"));
		printf("usage: %s\n", report_usage);
		return (EXIT_OK);
	}
	if (strcmp(argv[1], "status") == 0)
		return (report_status(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(report_usage, "report: unknown subcommand "
	    "'%s'", argv[1]));
}
