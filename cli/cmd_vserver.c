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

/* vserver create | list | delete: virtual servers (tenants). */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"

#define API	"/api/v1"

static const char vserver_usage[] =
    "canopyctl vserver create NAME\n"
    "       canopyctl vserver list\n"
    "       canopyctl vserver delete NAME [--force]";

enum { OPT_FORCE = OPT_FIRST_LOCAL };

/*
 * Parses the global options and --force (if force is not NULL); leaves
 * exactly nargs arguments after the subcommand or fails.  -1: return *rv.
 */
static int
vs_args(struct ctl *ctl, int argc, char **argv, int nargs, int *force,
    int *rv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "force",	no_argument,	NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 }
	};
	int	 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", vserver_usage);
			*rv = EXIT_OK;
			return (-1);
		}
		if (c == OPT_FORCE && force != NULL) {
			*force = 1;
			continue;
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		*rv = c == -1 ? EXIT_ERR :
		    ctl_usage_error(vserver_usage, "bad option");
		return (-1);
	}
	if (argc - optind != nargs) {
		*rv = argc - optind < nargs ?
		    ctl_usage_error(vserver_usage, "%s: a name is needed",
		    argv[0]) :
		    ctl_usage_error(vserver_usage, "unexpected argument: %s",
		    argv[optind + nargs]);
		return (-1);
	}
	if (ctl_resolve(ctl, 1) == -1) {
		*rv = EXIT_ERR;
		return (-1);
	}
	return (0);
}

static int
vs_create(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	json_t		*req;
	char		 b[32];
	int		 rv;

	if (vs_args(ctl, argc, argv, 1, NULL, &rv) == -1)
		return (rv);
	if ((req = json_pack("{s:s}", "name", argv[optind])) == NULL) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	rv = http_call(ctl, "POST", API "/vservers", req, &reply);
	json_decref(req);
	if (rv == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("virtual server %s created (id %s)\n", argv[optind],
		    out_str(reply.body, "id", b, sizeof(b)));
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
vs_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*list, *v;
	char		 b[4][256], ago[64];
	size_t		 i;
	int		 rv;

	if (vs_args(ctl, argc, argv, 0, NULL, &rv) == -1)
		return (rv);
	if (http_call(ctl, "GET", API "/vservers", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	list = json_object_get(reply.body, "vservers");
	if (!json_is_array(list)) {
		ctl_warnx("the server's answer has no virtual server list");
		http_reply_free(&reply);
		return (EXIT_ERR);
	}
	t = table_new(4, "ID", "NAME", "DEVICES", "CREATED");
	json_array_foreach(list, i, v)
		table_row(t, out_str(v, "id", b[0], sizeof(b[0])),
		    out_str(v, "name", b[1], sizeof(b[1])),
		    out_str(v, "devices", b[2], sizeof(b[2])),
		    out_time_ago(json_object_get(v, "created"), ago,
		    sizeof(ago)));
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
vs_delete(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		*name, *path;
	int		 rv, force = 0, n;

	if (vs_args(ctl, argc, argv, 1, &force, &rv) == -1)
		return (rv);
	if ((name = http_escape(argv[optind])) == NULL) {
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	n = asprintf(&path, API "/vservers/%s%s", name,
	    force ? "?force=1" : "");
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
		printf("virtual server %s deleted\n", argv[optind]);
	return (EXIT_OK);
}

int
cmd_vserver(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char	*name;
		int		(*fn)(struct ctl *, int, char **);
	} subs[] = {
		{ "create",	vs_create },
		{ "list",	vs_list },
		{ "ls",		vs_list },
		{ "delete",	vs_delete },
		{ "rm",		vs_delete },
	};
	size_t	 i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		if (argc < 2)
			return (ctl_usage_error(vserver_usage,
			    "vserver: a subcommand is needed"));
		printf("usage: %s\n", vserver_usage);
		return (EXIT_OK);
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return (subs[i].fn(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(vserver_usage, "vserver: unknown subcommand "
	    "'%s'", argv[1]));
}
