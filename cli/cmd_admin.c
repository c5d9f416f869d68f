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

/* event list, audit list, admin add|list|delete|unlock. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define API	"/api/v1"

static const char event_usage[] =
    "canopyctl event list [--device ID] [--severity S] [--type T] "
    "[--since TIME]\n"
    "                     [--limit N] [--all]\n"
    "S is the lowest severity shown: info, warning, error or critical.\n"
    "TIME is ISO-8601, e.g. 2026-01-02T03:04:05Z.";
static const char audit_usage[] =
    "canopyctl audit list [--since TIME] [--actor NAME] [--action A] "
    "[--limit N] [--all]";
static const char admin_usage[] =
    "canopyctl admin add NAME [--role ROLE[:SCOPE]]... [--principal P] "
    "[--password-stdin]\n"
    "       canopyctl admin list\n"
    "       canopyctl admin delete ID\n"
    "       canopyctl admin unlock ID\n"
    "ROLE is administrator, operator or auditor; SCOPE a group id or path "
    "(default:\nthe whole virtual server); without --role the account "
    "is an operator.";

enum {
	OPT_ALL = OPT_FIRST_LOCAL, OPT_SEVERITY, OPT_TYPE, OPT_SINCE,
	OPT_ACTOR, OPT_ACTION, OPT_ROLE, OPT_PRINCIPAL, OPT_PWSTDIN
};

/* One table row from an item of a list answer. */
typedef void (*list_row_fn)(struct table *, json_t *);

/*
 * GET base+query, page after page with --all: the list under key, as a
 * table (made by mk) or as JSON.
 */
static int
list_pages(struct ctl *ctl, const char *base, char *query, const char *key,
    int every, struct table *t, list_row_fn row, const char *none)
{
	struct ctl_reply reply;
	json_t		*all, *items, *it, *next;
	char		*cursor = NULL, *path = NULL, *full;
	size_t		 i, n = 0;
	int		 rv = EXIT_ERR, r, more;

	if ((all = json_array()) == NULL)
		goto oom;
	for (;;) {
		full = NULL;
		if (query != NULL && (full = strdup(query)) == NULL)
			goto oom;
		if (cursor != NULL &&
		    http_query_add(&full, "cursor", cursor) == -1) {
			free(full);
			goto out;
		}
		free(path);
		r = asprintf(&path, "%s%s", base, full != NULL ? full : "");
		free(full);
		if (r == -1) {
			path = NULL;
			goto oom;
		}
		if (http_call(ctl, "GET", path, NULL, &reply) == -1)
			goto out;
		items = json_object_get(reply.body, key);
		if (!json_is_array(items)) {
			ctl_warnx("the server's answer has no %s list", key);
			http_reply_free(&reply);
			goto out;
		}
		json_array_foreach(items, i, it) {
			if (!ctl->json)
				row(t, it);
			json_array_append(all, it);
			n++;
		}
		next = json_object_get(reply.body, "next");
		free(cursor);
		cursor = NULL;
		if (json_is_string(next) && json_string_length(next) > 0 &&
		    (cursor = strdup(json_string_value(next))) == NULL) {
			http_reply_free(&reply);
			goto oom;
		}
		if (ctl->json && !every) {
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
		json_t *o = json_pack("{s:O,s:n}", key, all, "next");

		out_json(o);
		json_decref(o);
	} else if (n == 0)
		printf("%s\n", none);
	else {
		table_print(t, stdout);
		if (more) {
			fflush(stdout);
			fprintf(stderr, "(more: use --all, or --limit N up "
			    "to %d)\n", API_PAGE_MAX);
		}
	}
	rv = EXIT_OK;
	goto out;
 oom:
	ctl_warnx("out of memory");
 out:
	json_decref(all);
	free(path);
	free(cursor);
	return (rv);
}

static int
parse_limit(const char *usage, const char *s, char *buf, size_t len)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > API_PAGE_MAX)
		return (ctl_usage_error(usage, "--limit: %s is not a number "
		    "in 1..%d", s, API_PAGE_MAX));
	snprintf(buf, len, "%ld", n);
	return (-1);
}

static void
event_row(struct table *t, json_t *e)
{
	char	 b[6][256];
	const char *dev;

	dev = out_str(e, "device_name", b[5], sizeof(b[5]));
	if (dev == NULL || *dev == '\0' || strcmp(dev, "-") == 0)
		dev = out_str(e, "device", b[5], sizeof(b[5]));
	table_row(t, out_str(e, "time", b[0], sizeof(b[0])),
	    out_str(e, "severity", b[1], sizeof(b[1])),
	    out_str(e, "type", b[2], sizeof(b[2])), dev,
	    out_str(e, "text", b[3], sizeof(b[3])));
}

static int
event_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "device",	required_argument, NULL, 'd' },
		{ "severity",	required_argument, NULL, OPT_SEVERITY },
		{ "type",	required_argument, NULL, OPT_TYPE },
		{ "since",	required_argument, NULL, OPT_SINCE },
		{ "limit",	required_argument, NULL, 'l' },
		{ "all",	no_argument,	   NULL, OPT_ALL },
		{ NULL, 0, NULL, 0 }
	};
	struct table	*t = NULL;
	char		*query = NULL, lim[32];
	int		 c, every = 0, rv;

	lim[0] = '\0';
	while ((c = getopt_long(argc, argv, "d:l:v", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'd':
			if (http_query_add(&query, "device", optarg) == -1)
				goto oom;
			break;
		case OPT_SEVERITY:
			if (http_query_add(&query, "severity", optarg) == -1)
				goto oom;
			break;
		case OPT_TYPE:
			if (http_query_add(&query, "type", optarg) == -1)
				goto oom;
			break;
		case OPT_SINCE:
			if (http_query_add(&query, "since", optarg) == -1)
				goto oom;
			break;
		case 'l':
			if ((rv = parse_limit(event_usage, optarg, lim,
			    sizeof(lim))) != -1) {
				free(query);
				return (rv);
			}
			break;
		case OPT_ALL:
			every = 1;
			break;
		case OPT_HELP:
			printf("usage: %s\n", event_usage);
			free(query);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			free(query);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(event_usage, "bad option"));
		}
	}
	if (optind != argc) {
		free(query);
		return (ctl_usage_error(event_usage, "unexpected argument: "
		    "%s", argv[optind]));
	}
	if (ctl_resolve(ctl, 1) == -1) {
		free(query);
		return (EXIT_ERR);
	}
	if (lim[0] != '\0' && http_query_add(&query, "limit", lim) == -1)
		goto oom;
	if (!ctl->json)
		t = table_new(5, "TIME", "SEVERITY", "TYPE", "DEVICE", "TEXT");
	rv = list_pages(ctl, API "/events", query, "events", every, t,
	    event_row, "No events.");
	table_free(t);
	free(query);
	return (rv);
 oom:
	ctl_warnx("out of memory");
	free(query);
	return (EXIT_ERR);
}

static void
audit_row(struct table *t, json_t *a)
{
	char	 b[6][256];
	char	*detail = NULL;
	json_t	*d = json_object_get(a, "detail");

	if (d != NULL && !json_is_null(d))
		detail = json_dumps(d, JSON_COMPACT);
	table_row(t, out_str(a, "time", b[0], sizeof(b[0])),
	    out_str(a, "actor", b[1], sizeof(b[1])),
	    out_str(a, "addr", b[2], sizeof(b[2])),
	    out_str(a, "action", b[3], sizeof(b[3])),
	    out_str(a, "object", b[4], sizeof(b[4])), detail);
	free(detail);
}

static int
audit_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "since",	required_argument, NULL, OPT_SINCE },
		{ "actor",	required_argument, NULL, OPT_ACTOR },
		{ "action",	required_argument, NULL, OPT_ACTION },
		{ "limit",	required_argument, NULL, 'l' },
		{ "all",	no_argument,	   NULL, OPT_ALL },
		{ NULL, 0, NULL, 0 }
	};
	struct table	*t = NULL;
	char		*query = NULL, lim[32];
	const char	*name;
	int		 c, every = 0, rv;

	lim[0] = '\0';
	while ((c = getopt_long(argc, argv, "l:v", longopts, NULL)) != -1) {
		name = NULL;
		switch (c) {
		case OPT_SINCE:
			name = "since";
			break;
		case OPT_ACTOR:
			name = "actor";
			break;
		case OPT_ACTION:
			name = "action";
			break;
		case 'l':
			if ((rv = parse_limit(audit_usage, optarg, lim,
			    sizeof(lim))) != -1) {
				free(query);
				return (rv);
			}
			break;
		case OPT_ALL:
			every = 1;
			break;
		case OPT_HELP:
			printf("usage: %s\n", audit_usage);
			free(query);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			free(query);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(audit_usage, "bad option"));
		}
		if (name != NULL && http_query_add(&query, name, optarg) == -1)
			goto oom;
	}
	if (optind != argc) {
		free(query);
		return (ctl_usage_error(audit_usage, "unexpected argument: "
		    "%s", argv[optind]));
	}
	if (ctl_resolve(ctl, 1) == -1) {
		free(query);
		return (EXIT_ERR);
	}
	if (lim[0] != '\0' && http_query_add(&query, "limit", lim) == -1)
		goto oom;
	if (!ctl->json)
		t = table_new(6, "TIME", "ACTOR", "ADDRESS", "ACTION",
		    "OBJECT", "DETAIL");
	rv = list_pages(ctl, API "/audit", query, "audit", every, t,
	    audit_row, "No audit records.");
	table_free(t);
	free(query);
	return (rv);
 oom:
	ctl_warnx("out of memory");
	free(query);
	return (EXIT_ERR);
}

int
cmd_event(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		printf("usage: %s\n", event_usage);
		return (EXIT_OK);
	}
	if (argc < 2)
		return (ctl_usage_error(event_usage, "event: what? (list)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (event_list(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(event_usage, "event: unknown command %s",
	    argv[1]));
}

int
cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		printf("usage: %s\n", audit_usage);
		return (EXIT_OK);
	}
	if (argc < 2)
		return (ctl_usage_error(audit_usage, "audit: what? (list)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (audit_list(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(audit_usage, "audit: unknown command %s",
	    argv[1]));
}

/* Global options only; the remaining operands must number nargs. */
static int
admin_opts(struct ctl *ctl, int argc, char **argv, int nargs,
    const char *what)
{
	char	 w[64];

	snprintf(w, sizeof(w), "admin %s", what);
	return (ctl_operands(ctl, argc, argv, admin_usage, w, nargs));
}

/* "operator" or "operator:/Managed devices/Berlin" as a role object. */
static json_t *
admin_role(const char *s)
{
	const char	*colon = strchr(s, ':');
	char		 role[32];

	if (colon == NULL)
		return (json_pack("{s:s}", "role", s));
	if ((size_t)(colon - s) >= sizeof(role))
		return (json_pack("{s:s}", "role", s));
	memcpy(role, s, colon - s);
	role[colon - s] = '\0';
	return (json_pack("{s:s,s:s}", "role", role, "scope", colon + 1));
}

static int
admin_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "role",		required_argument, NULL, OPT_ROLE },
		{ "principal",		required_argument, NULL,
		    OPT_PRINCIPAL },
		{ "password-stdin",	no_argument,	   NULL, OPT_PWSTDIN },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*body, *roles, *r;
	const char	*principal = NULL;
	char		 pw[CTL_MAX_PASSWORD + 2], b[3][256];
	size_t		 len;
	int		 c, from_stdin = 0, rv = EXIT_ERR;

	if ((roles = json_array()) == NULL)
		return (EXIT_ERR);
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ROLE:
			if ((r = admin_role(optarg)) == NULL) {
				json_decref(roles);
				return (ctl_usage_error(admin_usage,
				    "--role: not UTF-8: %s", optarg));
			}
			json_array_append_new(roles, r);
			break;
		case OPT_PRINCIPAL:
			principal = optarg;
			break;
		case OPT_PWSTDIN:
			from_stdin = 1;
			break;
		case OPT_HELP:
			printf("usage: %s\n", admin_usage);
			json_decref(roles);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			json_decref(roles);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(admin_usage, "bad option"));
		}
	}
	if (argc - optind != 1) {
		json_decref(roles);
		return (ctl_usage_error(admin_usage, "admin add takes one "
		    "name"));
	}
	if (json_array_size(roles) == 0)
		json_array_append_new(roles, json_pack("{s:s}", "role",
		    "operator"));
	if (ctl_resolve(ctl, 1) == -1) {
		json_decref(roles);
		return (EXIT_ERR);
	}
	body = json_pack("{s:s,s:o}", "name", argv[optind], "roles", roles);
	if (body == NULL) {
		ctl_warnx("the name is not UTF-8");
		return (EXIT_ERR);
	}
	if (principal != NULL)
		json_object_set_new(body, "principal", json_string(principal));
	if (from_stdin) {
		if (fgets(pw, sizeof(pw), stdin) == NULL) {
			ctl_warnx("cannot read the password from stdin");
			goto out;
		}
		len = strcspn(pw, "\r\n");
		pw[len] = '\0';
		json_object_set_new(body, "password", json_string(pw));
		explicit_bzero(pw, sizeof(pw));
	}
	if (http_call(ctl, "POST", API "/admins", body, &reply) == -1)
		goto out;
	if (ctl->json)
		out_json(reply.body);
	else
		printf("administrator %s created (id %s)\n",
		    out_str(reply.body, "name", b[0], sizeof(b[0])),
		    out_str(reply.body, "id", b[1], sizeof(b[1])));
	http_reply_free(&reply);
	rv = EXIT_OK;
 out:
	json_decref(body);
	return (rv);
}

static int
admin_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*admins, *a, *r;
	char		 b[6][256], roles[1024], one[300];
	size_t		 i, j;
	int		 c;

	if ((c = admin_opts(ctl, argc, argv, 0, "list")) != -1)
		return (c);
	if (http_call(ctl, "GET", API "/admins", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	admins = json_object_get(reply.body, "admins");
	t = table_new(6, "ID", "NAME", "PRINCIPAL", "ROLES", "LOCKED",
	    "FAILED");
	json_array_foreach(admins, i, a) {
		roles[0] = '\0';
		json_array_foreach(json_object_get(a, "roles"), j, r) {
			const char *sp = json_string_value(json_object_get(r,
			    "scope_path"));

			snprintf(one, sizeof(one), "%s%s%s%s", j ? ", " : "",
			    out_str(r, "role", b[5], sizeof(b[5])),
			    sp != NULL ? ":" : "", sp != NULL ? sp : "");
			strlcat(roles, one, sizeof(roles));
		}
		table_row(t, out_str(a, "id", b[0], sizeof(b[0])),
		    out_str(a, "name", b[1], sizeof(b[1])),
		    out_str(a, "principal", b[2], sizeof(b[2])), roles,
		    json_is_true(json_object_get(a, "locked")) ?
		    out_str(a, "locked_until", b[3], sizeof(b[3])) : "no",
		    out_str(a, "failed_logins", b[4], sizeof(b[4])));
	}
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* delete ID and unlock ID. */
static int
admin_one(struct ctl *ctl, int argc, char **argv, const char *what,
    const char *method, const char *suffix, const char *done)
{
	struct ctl_reply reply;
	char		*id, *path;
	int		 c;

	if ((c = admin_opts(ctl, argc, argv, 1, what)) != -1)
		return (c);
	if ((id = http_escape(argv[optind])) == NULL ||
	    asprintf(&path, API "/admins/%s%s", id, suffix) == -1) {
		free(id);
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	free(id);
	c = http_call(ctl, method, path, NULL, &reply);
	free(path);
	if (c == -1)
		return (EXIT_ERR);
	if (ctl->json && reply.body != NULL)
		out_json(reply.body);
	else if (!ctl->json)
		printf("administrator %s %s\n", argv[optind], done);
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_admin(struct ctl *ctl, int argc, char **argv)
{
	const char	*sub;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		printf("usage: %s\n", admin_usage);
		return (EXIT_OK);
	}
	if (argc < 2)
		return (ctl_usage_error(admin_usage, "admin: what? (add, "
		    "list, delete or unlock)"));
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0 || strcmp(sub, "create") == 0)
		return (admin_add(ctl, argc, argv));
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return (admin_list(ctl, argc, argv));
	if (strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0)
		return (admin_one(ctl, argc, argv, "delete", "DELETE", "",
		    "deleted"));
	if (strcmp(sub, "unlock") == 0)
		return (admin_one(ctl, argc, argv, "unlock", "POST",
		    "/unlock", "unlocked"));
	return (ctl_usage_error(admin_usage, "admin: unknown command %s",
	    sub));
}
