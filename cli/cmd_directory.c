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
 * canopyctl directory: LDAP sources and objects (issue 5).
 *   list | show ID | add ... | poll ID [--full] | delete ID
 *   objects [--source ID] [--type T] [--q TEXT] [--limit N]
 * The bind password is read from stdin (never the command line, which
 * other users see in ps); a keytab from a file.
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

static const char dir_usage[] =
    "canopyctl directory list\n"
    "       canopyctl directory show ID\n"
    "       canopyctl directory add --name N --flavor ad|samba|freeipa|aldpro|openldap\n"
    "                 --url ldap[s]://HOST[:PORT] --base-dn DN\n"
    "                 (--bind-dn DN --password-stdin | --principal P --keytab FILE)\n"
    "                 [--starttls] [--ca-file FILE] [--no-verify] [--realm R]\n"
    "                 [--interval SECONDS]\n"
    "       canopyctl directory poll ID [--full]\n"
    "       canopyctl directory delete ID\n"
    "       canopyctl directory objects [--source ID] [--type computer|user|group|ou]\n"
    "                 [--q TEXT] [--limit N] [--cursor C]";

enum {
	OPT_NAME = OPT_FIRST_LOCAL, OPT_FLAVOR, OPT_URL, OPT_BASE, OPT_BINDDN,
	OPT_PWSTDIN, OPT_PRINCIPAL, OPT_KEYTAB, OPT_STARTTLS, OPT_CAFILE,
	OPT_NOVERIFY, OPT_REALM, OPT_INTERVAL, OPT_FULL, OPT_SOURCE, OPT_TYPE,
	OPT_Q, OPT_LIMIT, OPT_CURSOR
};

/* Only the global options (and --full for poll). */
static int
dir_opts(struct ctl *ctl, int argc, char **argv, int *full)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "full",	no_argument,	NULL, OPT_FULL },
		{ NULL, 0, NULL, 0 }
	};
	int	 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			printf("usage: %s\n", dir_usage);
			return (EXIT_OK);
		}
		if (c == OPT_FULL && full != NULL) {
			*full = 1;
			continue;
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(dir_usage, "bad option"));
	}
	return (-1);
}

static void
dir_print_source(json_t *s)
{
	char	 b[16][256];
	json_t	*c = json_object_get(s, "counts");

	printf("id:          %s\n", out_str(s, "id", b[0], sizeof(b[0])));
	printf("name:        %s\n", out_str(s, "name", b[1], sizeof(b[1])));
	printf("flavor:      %s\n", out_str(s, "flavor", b[2], sizeof(b[2])));
	printf("url:         %s\n", out_str(s, "url", b[3], sizeof(b[3])));
	printf("base DN:     %s\n", out_str(s, "base_dn", b[4], sizeof(b[4])));
	printf("bind:        %s %s\n", out_str(json_object_get(s, "bind"),
	    "method", b[5], sizeof(b[5])), json_object_get(json_object_get(s,
	    "bind"), "dn") ? out_str(json_object_get(s, "bind"), "dn", b[6],
	    sizeof(b[6])) : out_str(json_object_get(s, "bind"), "principal",
	    b[6], sizeof(b[6])));
	printf("interval:    %ss\n", out_str(s, "interval_s", b[7],
	    sizeof(b[7])));
	printf("state:       %s\n", out_str(s, "state", b[8], sizeof(b[8])));
	printf("last poll:   %s (%s, %s entries, %s ms)\n", out_str(s,
	    "last_poll", b[9], sizeof(b[9])), out_str(s, "last_kind", b[10],
	    sizeof(b[10])), out_str(s, "last_fetched", b[11], sizeof(b[11])),
	    out_str(s, "last_ms", b[12], sizeof(b[12])));
	printf("last error:  %s\n", out_str(s, "last_error", b[13],
	    sizeof(b[13])));
	printf("objects:     %s computers, ", out_str(c, "computers", b[14],
	    sizeof(b[14])));
	printf("%s users, ", out_str(c, "users", b[14], sizeof(b[14])));
	printf("%s groups, ", out_str(c, "groups", b[14], sizeof(b[14])));
	printf("%s OUs, ", out_str(c, "ous", b[14], sizeof(b[14])));
	printf("%s disabled, ", out_str(c, "disabled", b[14], sizeof(b[14])));
	printf("%s gone\n", out_str(c, "gone", b[14], sizeof(b[14])));
}

static int
dir_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*s, *c;
	char		 b[9][256];
	size_t		 i;
	int		 r;

	if ((r = dir_opts(ctl, argc, argv, NULL)) != -1)
		return (r);
	if (optind != argc)
		return (ctl_usage_error(dir_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "GET", API "/directory/sources", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(8, "ID", "NAME", "FLAVOR", "STATE", "LAST POLL",
	    "COMPUTERS", "USERS", "LAST ERROR");
	json_array_foreach(json_object_get(reply.body, "sources"), i, s) {
		c = json_object_get(s, "counts");
		table_row(t, out_str(s, "id", b[0], sizeof(b[0])),
		    out_str(s, "name", b[1], sizeof(b[1])),
		    out_str(s, "flavor", b[2], sizeof(b[2])),
		    out_str(s, "state", b[3], sizeof(b[3])),
		    out_str(s, "last_poll", b[4], sizeof(b[4])),
		    out_str(c, "computers", b[5], sizeof(b[5])),
		    out_str(c, "users", b[6], sizeof(b[6])),
		    out_str(s, "last_error", b[7], sizeof(b[7])));
	}
	table_print(t, stdout);
	table_free(t);
	http_reply_free(&reply);
	return (EXIT_OK);
}

/* show, poll, delete: one ID operand. */
static int
dir_one(struct ctl *ctl, int argc, char **argv, const char *method,
    const char *suffix)
{
	struct ctl_reply reply;
	json_t		*body = NULL;
	char		 path[256], *id;
	int		 r, full = 0;

	if ((r = dir_opts(ctl, argc, argv, strcmp(suffix, "/poll") == 0 ?
	    &full : NULL)) != -1)
		return (r);
	if (argc - optind != 1)
		return (ctl_usage_error(dir_usage, "%s: give one source ID",
		    argv[0]));
	if ((id = http_escape(argv[optind])) == NULL)
		return (EXIT_ERR);
	snprintf(path, sizeof(path), API "/directory/sources/%s%s", id,
	    suffix);
	free(id);
	if (strcmp(suffix, "/poll") == 0)
		body = json_pack("{s:b}", "full", full);
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, method, path, body, &reply) == -1) {
		json_decref(body);
		return (EXIT_ERR);
	}
	json_decref(body);
	if (ctl->json && reply.body != NULL)
		out_json(reply.body);
	else if (strcmp(method, "GET") == 0)
		dir_print_source(reply.body);
	else if (strcmp(method, "DELETE") == 0)
		printf("directory source %s deleted\n", argv[optind]);
	else
		printf("poll of directory source %s requested%s\n",
		    argv[optind], full ? " (full)" : "");
	http_reply_free(&reply);
	return (EXIT_OK);
}

static char *
dir_read_stdin_line(void)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if ((n = getline(&line, &cap, stdin)) <= 0) {
		free(line);
		return (NULL);
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return (line);
}

static char *
dir_read_file_b64(const char *path)
{
	FILE	*fp;
	char	 buf[DIR_SECRET_MAX + 1], *s;
	size_t	 n;

	if ((fp = fopen(path, "rb")) == NULL) {
		ctl_warnx("%s: %s", path, strerror(errno));
		return (NULL);
	}
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	if (n == 0 || n > DIR_SECRET_MAX) {
		ctl_warnx("%s: empty or larger than %d bytes", path,
		    DIR_SECRET_MAX);
		return (NULL);
	}
	s = b64_encode(buf, n);
	explicit_bzero(buf, sizeof(buf));
	return (s);
}

static int
dir_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "name",	    required_argument, NULL, OPT_NAME },
		{ "flavor",	    required_argument, NULL, OPT_FLAVOR },
		{ "url",	    required_argument, NULL, OPT_URL },
		{ "base-dn",	    required_argument, NULL, OPT_BASE },
		{ "bind-dn",	    required_argument, NULL, OPT_BINDDN },
		{ "password-stdin", no_argument,       NULL, OPT_PWSTDIN },
		{ "principal",	    required_argument, NULL, OPT_PRINCIPAL },
		{ "keytab",	    required_argument, NULL, OPT_KEYTAB },
		{ "starttls",	    no_argument,       NULL, OPT_STARTTLS },
		{ "ca-file",	    required_argument, NULL, OPT_CAFILE },
		{ "no-verify",	    no_argument,       NULL, OPT_NOVERIFY },
		{ "realm",	    required_argument, NULL, OPT_REALM },
		{ "interval",	    required_argument, NULL, OPT_INTERVAL },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*body, *bind;
	char		*pw = NULL, *kt = NULL, *end;
	const char	*binddn = NULL, *principal = NULL, *keytab = NULL;
	long		 iv;
	int		 c, pwstdin = 0, rc = EXIT_ERR;

	body = json_object();
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			printf("usage: %s\n", dir_usage);
			json_decref(body);
			return (EXIT_OK);
		case OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case OPT_FLAVOR:
			json_object_set_new(body, "flavor",
			    json_string(optarg));
			break;
		case OPT_URL:
			json_object_set_new(body, "url", json_string(optarg));
			break;
		case OPT_BASE:
			json_object_set_new(body, "base_dn",
			    json_string(optarg));
			break;
		case OPT_BINDDN:
			binddn = optarg;
			break;
		case OPT_PWSTDIN:
			pwstdin = 1;
			break;
		case OPT_PRINCIPAL:
			principal = optarg;
			break;
		case OPT_KEYTAB:
			keytab = optarg;
			break;
		case OPT_STARTTLS:
			json_object_set_new(body, "starttls", json_true());
			break;
		case OPT_CAFILE:
			json_object_set_new(body, "ca_file",
			    json_string(optarg));
			break;
		case OPT_NOVERIFY:
			json_object_set_new(body, "tls_verify", json_false());
			break;
		case OPT_REALM:
			json_object_set_new(body, "realm", json_string(optarg));
			break;
		case OPT_INTERVAL:
			errno = 0;
			iv = strtol(optarg, &end, 10);
			if (errno || *end != '\0' || iv < DIR_INTERVAL_MIN_S ||
			    iv > DIR_INTERVAL_MAX_S) {
				json_decref(body);
				return (ctl_usage_error(dir_usage, "--interval: "
				    "%d..%d seconds", DIR_INTERVAL_MIN_S,
				    DIR_INTERVAL_MAX_S));
			}
			json_object_set_new(body, "interval_s",
			    json_integer(iv));
			break;
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			json_decref(body);
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(dir_usage, "bad option"));
		}
	}
	if (optind != argc) {
		json_decref(body);
		return (ctl_usage_error(dir_usage, "unexpected argument: %s",
		    argv[optind]));
	}
	if (keytab != NULL || principal != NULL) {
		if (keytab == NULL || principal == NULL) {
			json_decref(body);
			return (ctl_usage_error(dir_usage, "a GSSAPI bind "
			    "needs --principal and --keytab"));
		}
		if ((kt = dir_read_file_b64(keytab)) == NULL)
			goto out;
		bind = json_pack("{s:s,s:s,s:s}", "method", "gssapi",
		    "principal", principal, "keytab_b64", kt);
	} else {
		if (binddn == NULL || !pwstdin) {
			json_decref(body);
			return (ctl_usage_error(dir_usage, "a simple bind needs "
			    "--bind-dn and --password-stdin"));
		}
		if ((pw = dir_read_stdin_line()) == NULL) {
			ctl_warnx("no password on stdin");
			goto out;
		}
		bind = json_pack("{s:s,s:s,s:s}", "method", "simple", "dn",
		    binddn, "password", pw);
	}
	json_object_set_new(body, "bind", bind);
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "POST", API "/directory/sources", body, &reply) ==
	    -1)
		goto out;
	if (ctl->json)
		out_json(reply.body);
	else
		printf("directory source %s (%s) created; the first poll "
		    "starts now\n", json_string_value(json_object_get(
		    reply.body, "id")), json_string_value(json_object_get(
		    reply.body, "name")));
	http_reply_free(&reply);
	rc = EXIT_OK;
 out:
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	free(kt);
	json_decref(body);
	return (rc);
}

static int
dir_objects(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "source",	required_argument, NULL, OPT_SOURCE },
		{ "type",	required_argument, NULL, OPT_TYPE },
		{ "q",		required_argument, NULL, OPT_Q },
		{ "limit",	required_argument, NULL, OPT_LIMIT },
		{ "cursor",	required_argument, NULL, OPT_CURSOR },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	struct table	*t;
	json_t		*o;
	char		*query = NULL, path[2048], b[8][512];
	const char	*name;
	size_t		 i;
	int		 c;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		name = c == OPT_SOURCE ? "source" : c == OPT_TYPE ? "type" :
		    c == OPT_Q ? "q" : c == OPT_LIMIT ? "limit" :
		    c == OPT_CURSOR ? "cursor" : NULL;
		if (name != NULL) {
			if (http_query_add(&query, name, optarg) == -1) {
				free(query);
				return (EXIT_ERR);
			}
			continue;
		}
		if (c == OPT_HELP) {
			printf("usage: %s\n", dir_usage);
			free(query);
			return (EXIT_OK);
		}
		if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
			continue;
		free(query);
		if (c == -1)
			return (EXIT_ERR);
		return (ctl_usage_error(dir_usage, "bad option"));
	}
	snprintf(path, sizeof(path), API "/directory/objects%s%s",
	    query ? "?" : "", query ? query : "");
	free(query);
	if (ctl_resolve(ctl, 1) == -1 ||
	    http_call(ctl, "GET", path, NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	t = table_new(7, "ID", "TYPE", "NAME", "FQDN / PRINCIPAL", "DISABLED",
	    "GONE", "DN");
	json_array_foreach(json_object_get(reply.body, "objects"), i, o) {
		table_row(t, out_str(o, "id", b[0], sizeof(b[0])),
		    out_str(o, "type", b[1], sizeof(b[1])),
		    out_str(o, "name", b[2], sizeof(b[2])),
		    json_string_value(json_object_get(o, "fqdn")) ?
		    out_str(o, "fqdn", b[3], sizeof(b[3])) :
		    out_str(o, "principal", b[3], sizeof(b[3])),
		    out_str(o, "disabled", b[4], sizeof(b[4])),
		    out_str(o, "gone", b[5], sizeof(b[5])),
		    out_str(o, "dn", b[6], sizeof(b[6])));
	}
	table_print(t, stdout);
	table_free(t);
	if (json_string_value(json_object_get(reply.body, "next")) != NULL)
		printf("more: --cursor %s\n", json_string_value(
		    json_object_get(reply.body, "next")));
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_directory(struct ctl *ctl, int argc, char **argv)
{
	const char	*c;

	if (argc < 2)
		return (ctl_usage_error(dir_usage, "directory: what? (list, "
		    "show, add, poll, delete, objects)"));
	c = argv[1];
	if (strcmp(c, "list") == 0 || strcmp(c, "ls") == 0)
		return (dir_list(ctl, argc - 1, argv + 1));
	if (strcmp(c, "show") == 0)
		return (dir_one(ctl, argc - 1, argv + 1, "GET", ""));
	if (strcmp(c, "poll") == 0)
		return (dir_one(ctl, argc - 1, argv + 1, "POST", "/poll"));
	if (strcmp(c, "delete") == 0 || strcmp(c, "rm") == 0)
		return (dir_one(ctl, argc - 1, argv + 1, "DELETE", ""));
	if (strcmp(c, "add") == 0)
		return (dir_add(ctl, argc - 1, argv + 1));
	if (strcmp(c, "objects") == 0)
		return (dir_objects(ctl, argc - 1, argv + 1));
	if (strcmp(c, "--help") == 0 || strcmp(c, "help") == 0) {
		printf("usage: %s\n", dir_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(dir_usage, "directory: unknown command %s",
	    c));
}
