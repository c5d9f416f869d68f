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

/* group list. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"

#define API	"/api/v1"

static const char group_usage[] = "canopyctl group list";

static int
group_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t;
	json_t		*groups, *g;
	char		 b[4][256];
	size_t		 i;
	int		 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", group_usage);
			return (EXIT_OK);
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(group_usage, "bad option"));
	}
	if (optind != argc)
		return (ctl_usage_error(group_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if (http_call(ctl, "GET", API "/groups", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	groups = json_object_get(reply.body, "groups");
	if (!json_is_array(groups)) {
		ctl_warnx("the server's answer has no group list");
		http_reply_free(&reply);
		return (EXIT_ERR);
	}
	t = table_new(4, "ID", "PATH", "NAME", "PARENT");
	json_array_foreach(groups, i, g)
		table_row(t, out_str(g, "id", b[0], sizeof(b[0])),
		    out_str(g, "path", b[1], sizeof(b[1])),
		    out_str(g, "name", b[2], sizeof(b[2])),
		    out_str(g, "parent", b[3], sizeof(b[3])));
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_group(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(group_usage, "group: what? (list)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (group_list(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(group_usage, "group: unknown command %s",
	    argv[1]));
}
