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
 * policy list|show|create|update|delete, and 'device effective-policy'
 * (called from cmd_device.c): policies with locks per group and product.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define API	"/api/v1"

static const char policy_usage[] =
    "canopyctl policy list [--group G] [--product P]\n"
    "       canopyctl policy show ID\n"
    "       canopyctl policy create --group G --product P --name N "
    "[--set KEY=VALUE[!]]... [--file SETTINGS.json]\n"
    "       canopyctl policy update ID [--name N] [--set KEY=VALUE[!]]... "
    "[--unset KEY]... [--file SETTINGS.json]\n"
    "       canopyctl policy delete ID\n"
    "  --set: VALUE is JSON when it parses as JSON, else a string; a "
    "trailing '!' locks\n"
    "  the setting (groups below cannot change it).  --file: a JSON object "
    "{\"key\": {\"value\": V, \"locked\": B}}.\n"
    "  update starts from the policy's current settings.";

enum { OPT_PRODUCT = OPT_FIRST_LOCAL, OPT_NAME, OPT_SET, OPT_FILE,
    OPT_UNSET, OPT_GROUP };

/* KEY=VALUE[!] into settings. */
static int
policy_set(json_t *settings, const char *arg)
{
	const char	*eq = strchr(arg, '=');
	char		*key, *val;
	size_t		 vl;
	int		 locked = 0;
	json_t		*v;

	if (eq == NULL || eq == arg) {
		ctl_usage_error(policy_usage, "--set %s: KEY=VALUE expected",
		    arg);
		return -1;
	}
	if ((key = strndup(arg, eq - arg)) == NULL ||
	    (val = strdup(eq + 1)) == NULL) {
		free(key);
		ctl_warnx("out of memory");
		return -1;
	}
	vl = strlen(val);
	if (vl > 0 && val[vl - 1] == '!') {
		locked = 1;
		val[--vl] = '\0';
	}
	if ((v = json_loads(val, JSON_DECODE_ANY, NULL)) == NULL)
		v = json_string(val);
	json_object_set_new(settings, key, json_pack("{s:o,s:b}", "value", v,
	    "locked", locked));
	free(key);
	free(val);
	return 0;
}

static json_t *
policy_file(const char *path)
{
	json_error_t	 e;
	json_t		*j;

	if ((j = json_load_file(path, 0, &e)) == NULL) {
		ctl_warnx("%s:%d: %s", path, e.line, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		ctl_warnx("%s: must be a JSON object of settings", path);
		json_decref(j);
		return NULL;
	}
	return j;
}

static void
policy_print_settings(json_t *settings)
{
	struct table	*t = table_new(3, "KEY", "VALUE", "LOCKED");
	const char	*k;
	json_t		*s;
	char		*v;

	json_object_foreach(settings, k, s) {
		v = json_dumps(json_object_get(s, "value"),
		    JSON_COMPACT | JSON_ENCODE_ANY);
		table_row(t, k, v ? v : "?",
		    json_is_true(json_object_get(s, "locked")) ? "yes" : "no");
		free(v);
	}
	table_print(t, stdout);
	table_free(t);
}

static int
policy_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "group",	required_argument, NULL, 'g' },
		{ "product",	required_argument, NULL, OPT_PRODUCT },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t;
	const char	*group = NULL, *product = NULL;
	char		*q = NULL, path[256 + 8192], b1[32], b2[32];
	json_t		*p;
	size_t		 i;
	int		 c;

	while ((c = getopt_long(argc, argv, "g:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case OPT_PRODUCT:
			product = optarg;
			break;
		case OPT_HELP:
			printf("usage: %s\n", policy_usage);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(policy_usage, "bad option"));
		}
	}
	if (optind != argc)
		return (ctl_usage_error(policy_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if ((group != NULL && http_query_add(&q, "group", group) == -1) ||
	    (product != NULL && http_query_add(&q, "product", product) == -1)) {
		free(q);
		ctl_warnx("out of memory");
		return (EXIT_ERR);
	}
	snprintf(path, sizeof(path), API "/policies%s", q ? q : "");
	free(q);
	if (http_call(ctl, "GET", path, NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else {
		t = table_new(6, "ID", "GROUP", "PRODUCT", "NAME", "REVISION",
		    "SETTINGS");
		json_array_foreach(json_object_get(reply.body, "policies"), i,
		    p) {
			snprintf(b2, sizeof(b2), "%zu", json_object_size(
			    json_object_get(p, "settings")));
			table_row(t, out_str(p, "id", b1, sizeof(b1)),
			    json_string_value(json_object_get(p, "group")),
			    json_string_value(json_object_get(p, "product")),
			    json_string_value(json_object_get(p, "name")),
			    out_str(p, "revision", b1 + 16, 16), b2);
		}
		table_print(t, stdout);
		table_free(t);
	}
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
policy_id_arg(int argc, char **argv, const char **id)
{
	if (optind + 1 != argc) {
		ctl_usage_error(policy_usage, optind >= argc ? "policy: which? "
		    "(an ID)" : "unexpected argument: %s", argv[optind + 1]);
		return -1;
	}
	*id = argv[optind];
	if (strspn(*id, "0123456789") != strlen(*id) || **id == '\0') {
		ctl_usage_error(policy_usage, "policy: %s is not an ID", *id);
		return -1;
	}
	return 0;
}

/* show, delete: one ID and the global options. */
static int
policy_one(struct ctl *ctl, int argc, char **argv, int del)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	const char	*id;
	char		 path[128], b[32];
	int		 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", policy_usage);
			return (EXIT_OK);
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(policy_usage, "bad option"));
	}
	if (policy_id_arg(argc, argv, &id) == -1)
		return (EXIT_USAGE);
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	snprintf(path, sizeof(path), API "/policies/%s", id);
	if (http_call(ctl, del ? "DELETE" : "GET", path, NULL, &reply) == -1)
		return (EXIT_ERR);
	if (del) {
		if (!ctl->json)
			printf("policy %s deleted\n", id);
	} else if (ctl->json)
		out_json(reply.body);
	else {
		printf("ID:        %s\n", out_str(reply.body, "id", b,
		    sizeof(b)));
		printf("Name:      %s\n", json_string_value(json_object_get(
		    reply.body, "name")));
		printf("Group:     %s (%s)\n", json_string_value(
		    json_object_get(reply.body, "group_path")),
		    json_string_value(json_object_get(reply.body, "group")));
		printf("Product:   %s\n", json_string_value(json_object_get(
		    reply.body, "product")));
		printf("Revision:  %s\n", out_str(reply.body, "revision", b,
		    sizeof(b)));
		printf("Updated:   %s\n\n", json_string_value(json_object_get(
		    reply.body, "updated")));
		policy_print_settings(json_object_get(reply.body, "settings"));
	}
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* create (id NULL) or update. */
static int
policy_write(struct ctl *ctl, int argc, char **argv, int create)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "group",	required_argument, NULL, 'g' },
		{ "product",	required_argument, NULL, OPT_PRODUCT },
		{ "name",	required_argument, NULL, OPT_NAME },
		{ "set",	required_argument, NULL, OPT_SET },
		{ "unset",	required_argument, NULL, OPT_UNSET },
		{ "file",	required_argument, NULL, OPT_FILE },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	const char	*group = NULL, *product = NULL, *name = NULL, *id = NULL;
	const char	*file = NULL;
	char		 path[128], b[32];
	json_t		*sets, *unsets, *settings = NULL, *req = NULL, *f, *v;
	const char	*k;
	size_t		 i;
	int		 c, rv = EXIT_ERR;

	sets = json_object();
	unsets = json_array();
	while ((c = getopt_long(argc, argv, "g:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case OPT_PRODUCT:
			product = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_SET:
			if (policy_set(sets, optarg) == -1) {
				rv = EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_UNSET:
			json_array_append_new(unsets, json_string(optarg));
			break;
		case OPT_FILE:
			file = optarg;
			break;
		case OPT_HELP:
			printf("usage: %s\n", policy_usage);
			rv = EXIT_OK;
			goto out;
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c != -1)
				rv = ctl_usage_error(policy_usage,
				    "bad option");
			goto out;
		}
	}
	if (create) {
		if (optind != argc) {
			rv = ctl_usage_error(policy_usage, "unexpected "
			    "argument: %s", argv[optind]);
			goto out;
		}
		if (group == NULL || product == NULL || name == NULL) {
			rv = ctl_usage_error(policy_usage, "policy create: "
			    "--group, --product and --name are required");
			goto out;
		}
	} else {
		if (policy_id_arg(argc, argv, &id) == -1) {
			rv = EXIT_USAGE;
			goto out;
		}
		if (group != NULL || product != NULL) {
			rv = ctl_usage_error(policy_usage, "policy update: a "
			    "policy's group and product do not change");
			goto out;
		}
	}
	if (ctl_resolve(ctl, 1) == -1)
		goto out;
	if (!create) {
		/* Start from what is there: --set/--unset change it. */
		snprintf(path, sizeof(path), API "/policies/%s", id);
		if (http_call(ctl, "GET", path, NULL, &reply) == -1)
			goto out;
		settings = json_incref(json_object_get(reply.body,
		    "settings"));
		http_reply_free(&reply);
	}
	if (file != NULL) {
		if ((f = policy_file(file)) == NULL)
			goto out;
		json_decref(settings);
		settings = f;
	}
	if (settings == NULL)
		settings = json_object();
	json_object_update(settings, sets);
	json_array_foreach(unsets, i, v)
		json_object_del(settings, json_string_value(v));
	req = json_pack("{s:O}", "settings", settings);
	if (req == NULL)
		goto out;
	if (name != NULL)
		json_object_set_new(req, "name", json_string(name));
	if (create) {
		json_object_set_new(req, "group", json_string(group));
		json_object_set_new(req, "product", json_string(product));
		snprintf(path, sizeof(path), API "/policies");
	}
	if (http_call(ctl, create ? "POST" : "PUT", path, req, &reply) == -1)
		goto out;
	if (ctl->json)
		out_json(reply.body);
	else
		printf("policy %s %s, revision %s\n", out_str(reply.body, "id",
		    b, sizeof(b)), create ? "created" : "updated",
		    out_str(reply.body, "revision", b + 16, 16));
	http_reply_free(&reply);
	rv = EXIT_OK;
 out:
	(void)k;
	json_decref(req);
	json_decref(settings);
	json_decref(sets);
	json_decref(unsets);
	return (rv);
}

/* canopyctl device effective-policy ID [--product P] */
int
cmd_device_effective_policy(struct ctl *ctl, int argc, char **argv)
{
	static const char usage[] =
	    "canopyctl device effective-policy ID [--product P]";
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "product",	required_argument, NULL, OPT_PRODUCT },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t;
	const char	*product = "canopy-agent", *k;
	char		*q = NULL, path[512], *v;
	json_t		*s, *src;
	int		 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PRODUCT:
			product = optarg;
			break;
		case OPT_HELP:
			printf("usage: %s\n", usage);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(usage, "bad option"));
		}
	}
	if (optind + 1 != argc)
		return (ctl_usage_error(usage, "device effective-policy: which "
		    "device? (one ID)"));
	if (strlen(argv[optind]) > 64 ||
	    http_query_add(&q, "product", product) == -1) {
		free(q);
		return (ctl_usage_error(usage, "bad device ID or product"));
	}
	if ((v = http_escape(argv[optind])) == NULL) {
		free(q);
		return (EXIT_ERR);
	}
	snprintf(path, sizeof(path), API "/devices/%s/effective-policy%s",
	    v, q);
	free(v);
	free(q);
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if (http_call(ctl, "GET", path, NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json)
		out_json(reply.body);
	else {
		t = table_new(5, "KEY", "VALUE", "LOCKED", "POLICY", "GROUP");
		json_object_foreach(json_object_get(reply.body, "settings"), k,
		    s) {
			src = json_object_get(s, "source");
			v = json_dumps(json_object_get(s, "value"),
			    JSON_COMPACT | JSON_ENCODE_ANY);
			table_row(t, k, v ? v : "?", json_is_true(
			    json_object_get(s, "locked")) ? "yes" : "no",
			    json_string_value(json_object_get(src, "policy")),
			    json_string_value(json_object_get(src, "group")));
			free(v);
		}
		table_print(t, stdout);
		table_free(t);
	}
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_policy(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(policy_usage, "policy: what? (list, "
		    "show, create, update, delete)"));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", policy_usage);
		return (EXIT_OK);
	}
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
		return (policy_list(ctl, argc - 1, argv + 1));
	if (strcmp(argv[1], "show") == 0 || strcmp(argv[1], "get") == 0)
		return (policy_one(ctl, argc - 1, argv + 1, 0));
	if (strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "rm") == 0)
		return (policy_one(ctl, argc - 1, argv + 1, 1));
	if (strcmp(argv[1], "create") == 0)
		return (policy_write(ctl, argc - 1, argv + 1, 1));
	if (strcmp(argv[1], "update") == 0)
		return (policy_write(ctl, argc - 1, argv + 1, 0));
	return (ctl_usage_error(policy_usage, "policy: unknown command %s",
	    argv[1]));
}
