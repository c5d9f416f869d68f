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

/* enroll-token create: what a new device needs to join. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define API	"/api/v1"

static const char token_usage[] =
    "canopyctl enroll-token create [--group G] [--uses N] [--ttl SECONDS] "
    "[--ca-out FILE]\n"
    "                              [--agent-address HOST:PORT]";

enum { OPT_USES = OPT_FIRST_LOCAL, OPT_TTL, OPT_CA_OUT, OPT_AGENT_ADDR };

static int
parse_num(const char *opt, const char *s, long long max, long long *out)
{
	char	*end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < 1 || *out > max) {
		ctl_usage_error(token_usage, "%s: %s is not a number in "
		    "1..%lld", opt, s, max);
		return (-1);
	}
	return (0);
}

/* Quotes an argument for a POSIX shell when it needs it. */
static void
print_shell_arg(const char *s)
{
	const char	*p;

	if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_./:=@%+,") == strlen(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('\'');
	for (p = s; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	putchar('\'');
}

/* "https://localhost:13299" -> "localhost:13000": the agents' port. */
static void
agent_address(const char *server, char *buf, size_t len)
{
	const char	*host = server, *end;

	if (strncmp(host, "https://", 8) == 0)
		host += 8;
	if (host[0] == '[') {
		end = strchr(host, ']');
		end = end != NULL ? end + 1 : host + strlen(host);
	} else
		end = host + strcspn(host, ":/");
	snprintf(buf, len, "%.*s:13000", (int)(end - host), host);
}

static int
token_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "group",	required_argument, NULL, 'g' },
		{ "uses",	required_argument, NULL, OPT_USES },
		{ "ttl",	required_argument, NULL, OPT_TTL },
		{ "ca-out",	required_argument, NULL, OPT_CA_OUT },
		{ "agent-address", required_argument, NULL, OPT_AGENT_ADDR },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*req;
	const char	*group = NULL, *ca_out = NULL, *token, *pem, *fp;
	const char	*agent_addr = NULL;
	char		 addr[300];
	long long	 uses = 0, ttl = 0;
	int		 c, rv = EXIT_ERR;

	while ((c = getopt_long(argc, argv, "g:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			group = optarg;
			break;
		case OPT_USES:
			if (parse_num("--uses", optarg, TOKEN_USES_MAX,
			    &uses) == -1)
				return (EXIT_USAGE);
			break;
		case OPT_TTL:
			if (parse_num("--ttl", optarg, TOKEN_TTL_MAX_S,
			    &ttl) == -1)
				return (EXIT_USAGE);
			break;
		case OPT_CA_OUT:
			ca_out = optarg;
			break;
		case OPT_AGENT_ADDR:
			agent_addr = optarg;
			break;
		case OPT_HELP:
			printf("usage: %s\n", token_usage);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(token_usage, "bad option"));
		}
	}
	if (optind != argc)
		return (ctl_usage_error(token_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);

	if ((req = json_object()) == NULL)
		goto oom;
	if ((group != NULL && json_object_set_new(req, "group",
	    json_string(group)) == -1) ||
	    (uses > 0 && json_object_set_new(req, "uses",
	    json_integer(uses)) == -1) ||
	    (ttl > 0 && json_object_set_new(req, "ttl_s",
	    json_integer(ttl)) == -1)) {
		json_decref(req);
		goto oom;
	}
	c = http_call(ctl, "POST", API "/enrollment-tokens", req, &reply);
	json_decref(req);
	if (c == -1)
		return (EXIT_ERR);

	token = json_string_value(json_object_get(reply.body, "token"));
	pem = json_string_value(json_object_get(reply.body, "ca_pem"));
	fp = json_string_value(json_object_get(reply.body, "fingerprint"));
	if (token == NULL) {
		ctl_warnx("the server's answer has no token");
		goto out;
	}
	if (ca_out != NULL) {
		if (pem == NULL) {
			ctl_warnx("the server's answer has no ca_pem");
			goto out;
		}
		if (file_write_atomic(ca_out, pem, strlen(pem), 0644) == -1) {
			ctl_warnx("cannot write %s: %s", ca_out,
			    strerror(errno));
			goto out;
		}
	}
	if (ctl->json) {
		out_json(reply.body);
		rv = EXIT_OK;
		goto out;
	}
	printf("Token:        %s\n", token);
	printf("Fingerprint:  %s\n", fp != NULL ? fp : "-");
	if (ca_out != NULL)
		printf("CA written:   %s\n", ca_out);
	/* The API does not know how agents reach it: guess unless told. */
	if (agent_addr != NULL)
		snprintf(addr, sizeof(addr), "%s", agent_addr);
	else
		agent_address(ctl->server, addr, sizeof(addr));
	printf("\nOn the new device, run:\n\n  canopy-agent enroll --server ");
	print_shell_arg(addr);
	printf(" --ca ");
	print_shell_arg(ca_out != NULL ? ca_out : "ca.pem");
	printf(" --token ");
	print_shell_arg(token);
	printf("\n\nthen start it: canopy-agent run (or systemctl enable --now "
	    "canopy-agent)\n\n");
	if (agent_addr == NULL)
		printf("(%s: the API's host and the default agent port; "
		    "give --agent-address HOST:PORT\n if devices reach the "
		    "server otherwise)\n", addr);
	if (ca_out == NULL)
		printf("(ca.pem: the server's CA certificate; write it with "
		    "--ca-out FILE)\n");
	printf("Check the fingerprint against the server's CA before "
	    "trusting it.\n");
	rv = EXIT_OK;
 out:
	http_reply_free(&reply);
	return (rv);
 oom:
	ctl_warnx("out of memory");
	return (EXIT_ERR);
}

int
cmd_enroll_token(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return (ctl_usage_error(token_usage,
		    "enroll-token: what? (create)"));
	if (strcmp(argv[1], "create") == 0)
		return (token_create(ctl, argc - 1, argv + 1));
	return (ctl_usage_error(token_usage,
	    "enroll-token: unknown command %s", argv[1]));
}
