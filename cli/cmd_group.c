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

/* group list|show|create|rename|move|delete. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"

#define API	"/api/v1"

static const char group_usage[] =
    "canopyctl group list\n"
    "       canopyctl group show GROUP\n"
    "       canopyctl group create PATH\n"
    "       canopyctl group rename GROUP NAME\n"
    "       canopyctl group move GROUP PARENT\n"
    "       canopyctl group delete GROUP\n"
    "GROUP and PARENT are a group id or a path such as "
    "'/Managed devices/Berlin'.";

/* Global options only; the remaining operands must number nargs. */
static int
group_opts(struct ctl *ctl, int argc, char **argv, int nargs,
    const char *what)
{
	char	 w[64];

	snprintf(w, sizeof(w), "group %s", what);
	return (ctl_operands(ctl, argc, argv, group_usage, w, nargs));
}

/*
 * The API path of a group named by id or path: /groups/ID.  A path is
 * looked up in the group list (the API names groups by id in URLs).
 */
static char *
group_url(struct ctl *ctl, const char *ref)
{
	struct ctl_reply reply;
	json_t		*g;
	const char	*id = NULL;
	char		*esc, *url = NULL;
	size_t		 i, len;

	if (ref[0] == '/') {
		if (http_call(ctl, "GET", API "/groups", NULL, &reply) == -1)
			return (NULL);
		len = strlen(ref);
		while (len > 1 && ref[len - 1] == '/')
			len--;
		json_array_foreach(json_object_get(reply.body, "groups"), i,
		    g) {
			const char *p = json_string_value(
			    json_object_get(g, "path"));

			if (p != NULL && strlen(p) == len &&
			    strncmp(p, ref, len) == 0) {
				id = json_string_value(json_object_get(g,
				    "id"));
				break;
			}
		}
		if (id == NULL) {
			ctl_warnx("no group '%s'", ref);
			http_reply_free(&reply);
			return (NULL);
		}
		if (asprintf(&url, API "/groups/%s", id) == -1)
			url = NULL;
		http_reply_free(&reply);
	} else {
		if ((esc = http_escape(ref)) == NULL)
			return (NULL);
		if (asprintf(&url, API "/groups/%s", esc) == -1)
			url = NULL;
		free(esc);
	}
	if (url == NULL)
		ctl_warnx("out of memory");
	return (url);
}

static void
group_print(json_t *g)
{
	char	 b[3][256];

	printf("%s\t%s (parent %s)\n", out_str(g, "id", b[0], sizeof(b[0])),
	    out_str(g, "path", b[1], sizeof(b[1])),
	    out_str(g, "parent", b[2], sizeof(b[2])));
}

/* Sends method url body; prints the group (or --json); an exit status. */
static int
group_send(struct ctl *ctl, const char *method, const char *url,
    json_t *body, const char *done)
{
	struct ctl_reply reply;
	int		 rc;

	rc = http_call(ctl, method, url, body, &reply);
	json_decref(body);
	if (rc == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		if (reply.body != NULL)
			out_json(reply.body);
	} else if (reply.body != NULL) {
		printf("%s: ", done);
		group_print(reply.body);
	} else
		printf("%s\n", done);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
group_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*groups, *g;
	char		 b[4][256];
	size_t		 i;
	int		 c;

	if ((c = group_opts(ctl, argc, argv, 0, "list")) != -1)
		return (c);
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

static int
group_show(struct ctl *ctl, int argc, char **argv)
{
	char	*url;
	int	 c;

	if ((c = group_opts(ctl, argc, argv, 1, "show")) != -1)
		return (c);
	if ((url = group_url(ctl, argv[optind])) == NULL)
		return (EXIT_ERR);
	c = group_send(ctl, "GET", url, NULL, "group");
	free(url);
	return (c);
}

static int
group_create(struct ctl *ctl, int argc, char **argv)
{
	int	 c;

	if ((c = group_opts(ctl, argc, argv, 1, "create")) != -1)
		return (c);
	return (group_send(ctl, "POST", API "/groups",
	    json_pack("{s:s}", "path", argv[optind]), "created"));
}

/* rename GROUP NAME and move GROUP PARENT: a PATCH of one field. */
static int
group_patch(struct ctl *ctl, int argc, char **argv, const char *what,
    const char *field, const char *done)
{
	char	*url;
	int	 c;

	if ((c = group_opts(ctl, argc, argv, 2, what)) != -1)
		return (c);
	if ((url = group_url(ctl, argv[optind])) == NULL)
		return (EXIT_ERR);
	c = group_send(ctl, "PATCH", url, json_pack("{s:s}", field,
	    argv[optind + 1]), done);
	free(url);
	return (c);
}

static int
group_delete(struct ctl *ctl, int argc, char **argv)
{
	char	*url;
	int	 c;

	if ((c = group_opts(ctl, argc, argv, 1, "delete")) != -1)
		return (c);
	if ((url = group_url(ctl, argv[optind])) == NULL)
		return (EXIT_ERR);
	c = group_send(ctl, "DELETE", url, NULL, "deleted");
	free(url);
	return (c);
}

int
cmd_group(struct ctl *ctl, int argc, char **argv)
{
	const char	*sub;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		printf("usage: %s\n", group_usage);
		return (EXIT_OK);
	}
	if (argc < 2)
		return (ctl_usage_error(group_usage, "group: what? (list, "
		    "show, create, rename, move or delete)"));
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return (group_list(ctl, argc, argv));
	if (strcmp(sub, "show") == 0)
		return (group_show(ctl, argc, argv));
	if (strcmp(sub, "create") == 0 || strcmp(sub, "add") == 0)
		return (group_create(ctl, argc, argv));
	if (strcmp(sub, "rename") == 0)
		return (group_patch(ctl, argc, argv, "rename", "name",
		    "renamed"));
	if (strcmp(sub, "move") == 0 || strcmp(sub, "mv") == 0)
		return (group_patch(ctl, argc, argv, "move", "parent",
		    "moved"));
	if (strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0)
		return (group_delete(ctl, argc, argv));
	return (ctl_usage_error(group_usage, "group: unknown command %s",
	    sub));
}
