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

/* status-rule and moving-rule: list, create, enable, disable, delete. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"

#define API	"/api/v1"

static const char sr_usage[] =
    "canopyctl status-rule list\n"
    "       canopyctl status-rule create --name N --kind K --severity S\n"
    "                 [--hours H] [--percent P] [--min-severity S]\n"
    "                 [--order K] [--disabled]\n"
    "           kinds: not_seen --hours H, not_visible --hours H,\n"
    "                  agent_event [--min-severity error] [--hours 24],\n"
    "                  disk_full --percent P; severities: warning, critical\n"
    "       canopyctl status-rule enable|disable|delete ID\n"
    "       canopyctl status-rule run      (evaluate every rule now)";

static const char mr_usage[] =
    "canopyctl moving-rule list\n"
    "       canopyctl moving-rule create --name N --order K --group G\n"
    "                 [--ip-cidr C] [--dns-suffix S] [--ou-dn DN] [--os TEXT]\n"
    "                 [--source agent|directory|network] [--always]\n"
    "       canopyctl moving-rule delete ID";

enum {
	OPT_NAME = OPT_FIRST_LOCAL, OPT_KIND, OPT_SEVERITY, OPT_HOURS,
	OPT_PERCENT, OPT_MINSEV, OPT_ORDER, OPT_DISABLED, OPT_GROUP,
	OPT_CIDR, OPT_DNS, OPT_OU, OPT_OS, OPT_SOURCE, OPT_ALWAYS
};

/* Only the global options; leaves optind at the first operand. */
static int
rules_plain_opts(struct ctl *ctl, int argc, char **argv, const char *usage)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int	 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", usage);
			return (EXIT_OK);
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(usage, "bad option"));
	}
	return (-1);
}

static int
rules_number(const char *opt, const char *s, long min, long max, long *out,
    const char *usage)
{
	char	*end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || *out < min ||
	    *out > max) {
		ctl_usage_error(usage, "--%s: %s is not a number in %ld..%ld",
		    opt, s, min, max);
		return (-1);
	}
	return (0);
}

static int
sr_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*rules, *r;
	char		 b[6][256], params[256];
	size_t		 i;
	int		 c;

	if ((c = rules_plain_opts(ctl, argc, argv, sr_usage)) != -1)
		return (c);
	if (optind != argc)
		return (ctl_usage_error(sr_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "GET", API "/status-rules", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(7, "ID", "NAME", "KIND", "SEVERITY", "PARAMS", "ENABLED",
	    "ORDER");
	rules = json_object_get(reply.body, "rules");
	json_array_foreach(rules, i, r) {
		char *p = json_dumps(json_object_get(r, "params"),
		    JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(params, sizeof(params), "%s", p ? p : "-");
		free(p);
		table_row(t, out_str(r, "id", b[0], sizeof(b[0])),
		    out_str(r, "name", b[1], sizeof(b[1])),
		    out_str(r, "kind", b[2], sizeof(b[2])),
		    out_str(r, "severity", b[3], sizeof(b[3])), params,
		    out_str(r, "enabled", b[4], sizeof(b[4])),
		    out_str(r, "order", b[5], sizeof(b[5])));
	}
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* POSTs a new rule (body consumed) and says what was created. */
static int
rules_post(struct ctl *ctl, const char *path, json_t *body, const char *what)
{
	struct ctl_reply reply;

	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "POST", path, body, &reply) == -1) {
		json_decref(body);
		return (EXIT_ERR);
	}
	json_decref(body);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("%s %s created\n", what, json_string_value(
		    json_object_get(reply.body, "id")));
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
sr_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "name",	  required_argument, NULL, OPT_NAME },
		{ "kind",	  required_argument, NULL, OPT_KIND },
		{ "severity",	  required_argument, NULL, OPT_SEVERITY },
		{ "hours",	  required_argument, NULL, OPT_HOURS },
		{ "percent",	  required_argument, NULL, OPT_PERCENT },
		{ "min-severity", required_argument, NULL, OPT_MINSEV },
		{ "order",	  required_argument, NULL, OPT_ORDER },
		{ "disabled",	  no_argument,	     NULL, OPT_DISABLED },
		{ NULL, 0, NULL, 0 }
	};
	json_t		*body, *params;
	const char	*name = NULL, *kind = NULL, *sev = NULL;
	long		 n;
	int		 c;

	body = json_object();
	params = json_object();
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_KIND:
			kind = optarg;
			break;
		case OPT_SEVERITY:
			sev = optarg;
			break;
		case OPT_HOURS:
			if (rules_number("hours", optarg, 1, RULES_HOURS_MAX,
			    &n, sr_usage) == -1)
				goto usage;
			json_object_set_new(params, "hours", json_integer(n));
			break;
		case OPT_PERCENT:
			if (rules_number("percent", optarg, 1, 100, &n,
			    sr_usage) == -1)
				goto usage;
			json_object_set_new(params, "percent",
			    json_integer(n));
			break;
		case OPT_MINSEV:
			json_object_set_new(params, "min_severity",
			    json_string(optarg));
			break;
		case OPT_ORDER:
			if (rules_number("order", optarg, 0, RULES_ORDER_MAX,
			    &n, sr_usage) == -1)
				goto usage;
			json_object_set_new(body, "order", json_integer(n));
			break;
		case OPT_DISABLED:
			json_object_set_new(body, "enabled", json_false());
			break;
		case OPT_HELP:
			printf("usage: %s\n", sr_usage);
			json_decref(body);
			json_decref(params);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			json_decref(body);
			json_decref(params);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(sr_usage, "bad option"));
		}
	}
	if (optind != argc) {
		ctl_usage_error(sr_usage, "unexpected argument: %s",
		    argv[optind]);
		goto usage;
	}
	if (name == NULL || kind == NULL || sev == NULL) {
		ctl_usage_error(sr_usage, "status-rule create needs --name, "
		    "--kind and --severity");
		goto usage;
	}
	json_object_set_new(body, "name", json_string(name));
	json_object_set_new(body, "kind", json_string(kind));
	json_object_set_new(body, "severity", json_string(sev));
	json_object_set_new(body, "params", params);
	params = NULL;
	return (rules_post(ctl, API "/status-rules", body, "status rule"));
 usage:
	json_decref(body);
	json_decref(params);
	return (EXIT_USAGE);
}

/* enable, disable, delete: one rule id. */
static int
rules_one(struct ctl *ctl, int argc, char **argv, const char *usage,
    const char *what, const char *method, json_t *body)
{
	struct ctl_reply reply;
	char		*id, *path;
	int		 c;

	if ((c = rules_plain_opts(ctl, argc, argv, usage)) != -1)
		goto out;
	if (argc - optind != 1) {
		c = ctl_usage_error(usage, "%s %s takes one rule id", what,
		    argv[0]);
		goto out;
	}
	c = EXIT_ERR;
	if (ctl_resolve(ctl, 1) == -1)
		goto out;
	if ((id = http_escape(argv[optind])) == NULL ||
	    asprintf(&path, API "/%ss/%s", what, id) == -1) {
		free(id);
		ctl_warnx("out of memory");
		goto out;
	}
	free(id);
	if (http_call(ctl, method, path, body, &reply) == 0) {
		if (ctl->json && reply.body != NULL)
			out_json(reply.body);
		else if (!ctl->json)
			printf("%s %s: %s\n", what, argv[optind],
			    strcmp(argv[0], "delete") == 0 ? "deleted" :
			    strcmp(argv[0], "enable") == 0 ? "enabled" :
			    "disabled");
		http_reply_free(&reply);
		c = EXIT_OK;
	}
	free(path);
 out:
	json_decref(body);
	return (c);
}

static int
sr_run(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		 b[2][32];
	int		 c;

	if ((c = rules_plain_opts(ctl, argc, argv, sr_usage)) != -1)
		return (c);
	if (optind != argc)
		return (ctl_usage_error(sr_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "POST", API "/rules/run", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else
		printf("rules evaluated: %s status changes, %s devices "
		    "moved\n", out_str(reply.body, "status_changed", b[0],
		    sizeof(b[0])), out_str(reply.body, "moved", b[1],
		    sizeof(b[1])));
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_status_rule(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(sr_usage, "status-rule: what? (list, "
		    "create, enable, disable, delete, run)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (sr_list(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "create") == 0)
		return (sr_create(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "enable") == 0)
		return (rules_one(ctl, argc - 1, argv + 1, sr_usage,
		    "status-rule", "PATCH", json_pack("{s:b}", "enabled", 1)));
	if (strcmp(argv[1], "disable") == 0)
		return (rules_one(ctl, argc - 1, argv + 1, sr_usage,
		    "status-rule", "PATCH", json_pack("{s:b}", "enabled", 0)));
	if (strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "rm") == 0)
		return (rules_one(ctl, argc - 1, argv + 1, sr_usage,
		    "status-rule", "DELETE", NULL));
	if (strcmp(argv[1], "run") == 0)
		return (sr_run(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", sr_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(sr_usage, "status-rule: unknown command %s",
	    argv[1]));
}

static int
mr_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*rules, *r;
	char		 b[6][256], match[512];
	size_t		 i;
	int		 c;

	if ((c = rules_plain_opts(ctl, argc, argv, mr_usage)) != -1)
		return (c);
	if (optind != argc)
		return (ctl_usage_error(mr_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "GET", API "/moving-rules", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(6, "ID", "ORDER", "NAME", "GROUP", "MATCH", "MODE");
	rules = json_object_get(reply.body, "rules");
	json_array_foreach(rules, i, r) {
		char *m = json_dumps(json_object_get(r, "match"),
		    JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(match, sizeof(match), "%s", m ? m : "-");
		free(m);
		table_row(t, out_str(r, "id", b[0], sizeof(b[0])),
		    out_str(r, "order", b[1], sizeof(b[1])),
		    out_str(r, "name", b[2], sizeof(b[2])),
		    out_str(r, "group_path", b[3], sizeof(b[3])), match,
		    out_str(r, "mode", b[4], sizeof(b[4])));
	}
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
mr_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "name",	required_argument, NULL, OPT_NAME },
		{ "order",	required_argument, NULL, OPT_ORDER },
		{ "group",	required_argument, NULL, OPT_GROUP },
		{ "ip-cidr",	required_argument, NULL, OPT_CIDR },
		{ "dns-suffix",	required_argument, NULL, OPT_DNS },
		{ "ou-dn",	required_argument, NULL, OPT_OU },
		{ "os",		required_argument, NULL, OPT_OS },
		{ "source",	required_argument, NULL, OPT_SOURCE },
		{ "always",	no_argument,	   NULL, OPT_ALWAYS },
		{ "disabled",	no_argument,	   NULL, OPT_DISABLED },
		{ NULL, 0, NULL, 0 }
	};
	json_t		*body, *match;
	const char	*name = NULL, *group = NULL, *key;
	long		 n, order = -1;
	int		 c;

	body = json_object();
	match = json_object();
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		key = NULL;
		switch (c) {
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_GROUP:
			group = optarg;
			break;
		case OPT_ORDER:
			if (rules_number("order", optarg, 0, RULES_ORDER_MAX,
			    &n, mr_usage) == -1)
				goto usage;
			order = n;
			break;
		case OPT_CIDR:
			key = "ip_cidr";
			break;
		case OPT_DNS:
			key = "dns_suffix";
			break;
		case OPT_OU:
			key = "ou_dn";
			break;
		case OPT_OS:
			key = "os";
			break;
		case OPT_SOURCE:
			key = "source";
			break;
		case OPT_ALWAYS:
			json_object_set_new(body, "mode", json_string("always"));
			break;
		case OPT_DISABLED:
			json_object_set_new(body, "enabled", json_false());
			break;
		case OPT_HELP:
			printf("usage: %s\n", mr_usage);
			json_decref(body);
			json_decref(match);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			json_decref(body);
			json_decref(match);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(mr_usage, "bad option"));
		}
		if (key != NULL)
			json_object_set_new(match, key, json_string(optarg));
	}
	if (optind != argc) {
		ctl_usage_error(mr_usage, "unexpected argument: %s",
		    argv[optind]);
		goto usage;
	}
	if (name == NULL || group == NULL || order < 0) {
		ctl_usage_error(mr_usage, "moving-rule create needs --name, "
		    "--order and --group");
		goto usage;
	}
	json_object_set_new(body, "name", json_string(name));
	json_object_set_new(body, "order", json_integer(order));
	json_object_set_new(body, "group", json_string(group));
	json_object_set_new(body, "match", match);
	match = NULL;
	return (rules_post(ctl, API "/moving-rules", body, "moving rule"));
 usage:
	json_decref(body);
	json_decref(match);
	return (EXIT_USAGE);
}

int
cmd_moving_rule(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(mr_usage, "moving-rule: what? (list, "
		    "create, delete)"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (mr_list(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "create") == 0)
		return (mr_create(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "rm") == 0)
		return (rules_one(ctl, argc - 1, argv + 1, mr_usage,
		    "moving-rule", "DELETE", NULL));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", mr_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(mr_usage, "moving-rule: unknown command %s",
	    argv[1]));
}
