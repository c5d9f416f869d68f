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
 * canopyctl kerberos (the SSO keytab), role-mapping (directory group to
 * role), totp (the second factor of the caller's own local account).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define API	"/api/v1"

static const char kerberos_usage[] =
    "canopyctl kerberos show\n"
    "       canopyctl kerberos set-keytab FILE";
static const char rm_usage[] =
    "canopyctl role-mapping list\n"
    "       canopyctl role-mapping add GROUP ROLE [SCOPE]\n"
    "       canopyctl role-mapping delete ID";
static const char totp_usage[] =
    "canopyctl totp status\n"
    "       canopyctl totp enrol\n"
    "       canopyctl totp confirm CODE\n"
    "       canopyctl totp disable";

/* Runs method path with body; prints the JSON answer with --json. */
static int
kr_call(struct ctl *ctl, const char *method, const char *path, json_t *body,
    struct ctl_reply *reply)
{
	int	 rv;

	rv = http_call(ctl, method, path, body, reply);
	json_decref(body);
	if (rv == -1)
		return (-1);
	if (ctl->json && reply->body != NULL)
		out_json(reply->body);
	return (0);
}

static void
kr_principals(json_t *body)
{
	json_t	*p;
	size_t	 i;

	printf("Kerberos SSO:  %s\n", json_is_true(json_object_get(body,
	    "enabled")) ? "enabled" : "disabled");
	if (json_is_string(json_object_get(body, "source")))
		printf("Keytab:        %s\n", json_string_value(
		    json_object_get(body, "source")));
	json_array_foreach(json_object_get(body, "principals"), i, p)
		printf("Principal:     %s\n", json_string_value(p));
}

static int
kr_read_file(const char *path, char **b64)
{
	FILE	*f;
	uint8_t	*buf;
	size_t	 n;

	if ((f = fopen(path, "rb")) == NULL) {
		ctl_warnx("%s: %s", path, strerror(errno));
		return (-1);
	}
	if ((buf = malloc(KRB_KEYTAB_MAX + 1)) == NULL) {
		fclose(f);
		ctl_warnx("out of memory");
		return (-1);
	}
	n = fread(buf, 1, KRB_KEYTAB_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > KRB_KEYTAB_MAX) {
		ctl_warnx("%s: a keytab of 1 to %d bytes is needed", path,
		    KRB_KEYTAB_MAX);
		free(buf);
		return (-1);
	}
	*b64 = b64_encode(buf, n);
	explicit_bzero(buf, n);
	free(buf);
	if (*b64 == NULL) {
		ctl_warnx("out of memory");
		return (-1);
	}
	return (0);
}

int
cmd_kerberos(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		*b64;
	json_t		*body;
	int		 rv;

	if (argc < 2)
		return (ctl_usage_error(kerberos_usage, "kerberos: a "
		    "subcommand is needed"));
	if (strcmp(argv[1], "show") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1,
		    kerberos_usage, "show", 0)) != -1)
			return (rv);
		if (kr_call(ctl, "GET", API "/auth/kerberos", NULL,
		    &reply) == -1)
			return (EXIT_ERR);
	} else if (strcmp(argv[1], "set-keytab") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1,
		    kerberos_usage, "set-keytab", 1)) != -1)
			return (rv);
		if (kr_read_file(argv[optind + 1], &b64) == -1)
			return (EXIT_ERR);
		body = json_pack("{s:s}", "keytab_b64", b64);
		explicit_bzero(b64, strlen(b64));
		free(b64);
		if (kr_call(ctl, "PUT", API "/auth/kerberos", body,
		    &reply) == -1)
			return (EXIT_ERR);
	} else if (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", kerberos_usage);
		return (EXIT_OK);
	} else
		return (ctl_usage_error(kerberos_usage, "kerberos: unknown "
		    "subcommand '%s'", argv[1]));
	if (!ctl->json)
		kr_principals(reply.body);
	http_reply_free(&reply);
	return (EXIT_OK);
}

static int
rm_list(struct ctl *ctl)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*m;
	char		 b[4][256];
	size_t		 i;

	if (kr_call(ctl, "GET", API "/role-mappings", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (!ctl->json) {
		t = table_new(4, "ID", "DIRECTORY GROUP", "ROLE", "SCOPE");
		json_array_foreach(json_object_get(reply.body,
		    "role_mappings"), i, m)
			table_row(t, out_str(m, "id", b[0], sizeof(b[0])),
			    out_str(m, "directory_group", b[1], sizeof(b[1])),
			    out_str(m, "role", b[2], sizeof(b[2])),
			    out_str(m, "scope", b[3], sizeof(b[3])));
		table_print(t, stdout);
		table_free(t);
	}
	http_reply_free(&reply);
	return (EXIT_OK);
}

int
cmd_role_mapping(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	json_t		*body;
	char		*id, *path, b[32];
	int		 rv, n;

	if (argc < 2)
		return (ctl_usage_error(rm_usage, "role-mapping: a subcommand "
		    "is needed"));
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, rm_usage,
		    "list", 0)) != -1)
			return (rv);
		return (rm_list(ctl));
	}
	if (strcmp(argv[1], "add") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, rm_usage,
		    "add", -1)) != -1)
			return (rv);
		n = argc - 1 - optind;
		if (n < 2 || n > 3)
			return (ctl_usage_error(rm_usage, "add: GROUP ROLE "
			    "[SCOPE]"));
		body = json_pack("{s:s,s:s}", "directory_group",
		    argv[optind + 1], "role", argv[optind + 2]);
		if (body != NULL && n == 3)
			json_object_set_new(body, "scope",
			    json_string(argv[optind + 3]));
		if (kr_call(ctl, "POST", API "/role-mappings", body,
		    &reply) == -1)
			return (EXIT_ERR);
		if (!ctl->json)
			printf("role mapping %s: members of %s get %s\n",
			    out_str(reply.body, "id", b, sizeof(b)),
			    argv[optind + 1], argv[optind + 2]);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	if (strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "rm") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, rm_usage,
		    "delete", 1)) != -1)
			return (rv);
		if ((id = http_escape(argv[optind + 1])) == NULL ||
		    asprintf(&path, API "/role-mappings/%s", id) == -1) {
			free(id);
			ctl_warnx("out of memory");
			return (EXIT_ERR);
		}
		free(id);
		rv = http_call(ctl, "DELETE", path, NULL, &reply);
		free(path);
		if (rv == -1)
			return (EXIT_ERR);
		http_reply_free(&reply);
		if (!ctl->json)
			printf("role mapping %s deleted\n", argv[optind + 1]);
		return (EXIT_OK);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", rm_usage);
		return (EXIT_OK);
	}
	return (ctl_usage_error(rm_usage, "role-mapping: unknown subcommand "
	    "'%s'", argv[1]));
}

int
cmd_totp(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	char		 b[600];
	int		 rv;

	if (argc < 2)
		return (ctl_usage_error(totp_usage, "totp: a subcommand is "
		    "needed"));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", totp_usage);
		return (EXIT_OK);
	}
	if (strcmp(argv[1], "status") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, totp_usage,
		    "status", 0)) != -1)
			return (rv);
		if (kr_call(ctl, "GET", API "/auth/totp", NULL, &reply) == -1)
			return (EXIT_ERR);
		if (!ctl->json)
			printf("TOTP: %s%s\n", json_is_true(json_object_get(
			    reply.body, "enabled")) ? "enabled" : "disabled",
			    json_is_true(json_object_get(reply.body,
			    "pending")) ? " (an enrolment awaits its first "
			    "code)" : "");
	} else if (strcmp(argv[1], "enrol") == 0 ||
	    strcmp(argv[1], "enroll") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, totp_usage,
		    "enrol", 0)) != -1)
			return (rv);
		if (kr_call(ctl, "POST", API "/auth/totp", NULL, &reply) == -1)
			return (EXIT_ERR);
		if (!ctl->json) {
			printf("Secret (shown once): %s\n", out_str(reply.body,
			    "secret", b, sizeof(b)));
			printf("URI: %s\n", out_str(reply.body, "uri", b,
			    sizeof(b)));
			printf("Add it to an authenticator app, then run: "
			    "canopyctl totp confirm CODE\n");
		}
	} else if (strcmp(argv[1], "confirm") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, totp_usage,
		    "confirm", 1)) != -1)
			return (rv);
		if (kr_call(ctl, "POST", API "/auth/totp/confirm",
		    json_pack("{s:s}", "code", argv[optind + 1]),
		    &reply) == -1)
			return (EXIT_ERR);
		if (!ctl->json)
			printf("TOTP enabled: logins now need a code "
			    "(canopyctl login --totp CODE)\n");
	} else if (strcmp(argv[1], "disable") == 0) {
		if ((rv = ctl_operands(ctl, argc - 1, argv + 1, totp_usage,
		    "disable", 0)) != -1)
			return (rv);
		if (http_call(ctl, "DELETE", API "/auth/totp", NULL,
		    &reply) == -1)
			return (EXIT_ERR);
		if (!ctl->json)
			printf("TOTP disabled\n");
	} else
		return (ctl_usage_error(totp_usage, "totp: unknown "
		    "subcommand '%s'", argv[1]));
	http_reply_free(&reply);
	return (EXIT_OK);
}
