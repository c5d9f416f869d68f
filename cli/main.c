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
 * canopyctl: the administrator's command line, a client of the HTTPS JSON
 * API of canopyd (/api/v1).
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopyctl.h"

static const char usage_text[] =
"usage: canopyctl [global options] command [arguments]\n"
"\n"
"global options (also accepted after the command):\n"
"  --server URL       server API, e.g. https://localhost:13299\n"
"  --ca FILE          the server's CA certificate (pinned; no system CAs)\n"
"  --json             print the API's JSON, for scripts\n"
"  --config-dir DIR   default $XDG_CONFIG_HOME/canopy or ~/.config/canopy\n"
"  -v, --verbose      show requests\n"
"  --vs NAME          act in virtual server NAME (administrators of main)\n"
"\n"
"commands (each has its own --help):\n"
"  login [--user NAME] [--password-stdin]   start a session (password from\n"
"                     the terminal, stdin, or $CANOPY_PASSWORD)\n"
"  logout             end the session\n"
"  whoami             show the session's user, virtual server and roles\n"
"  device             list, show, sync, move devices; effective policy\n"
"  group              list, create, rename, move, delete groups\n"
"  enroll-token       create enrolment tokens for agents\n"
"  policy             create, list, show, update, delete policies\n"
"  task               create, list, show tasks and their results\n"
"  event              list events\n"
"  audit              list the audit log\n"
"  admin              add, list, unlock administrators\n"
"  status-rule        list, create, delete status rules\n"
"  moving-rule        list, create, delete moving rules\n"
"  vserver            create, list, delete virtual servers\n"
"  server             the server tree: tree, add-child, remove-child\n"
"  report             status [--hierarchy]: device counts by status\n"
"  directory          LDAP directory sources, polls and objects\n"
"  ip-range           IP ranges and their scans\n"
"  kerberos           the SSO keytab\n"
"  role-mapping       directory groups mapped to roles\n"
"  totp               second factor for local accounts\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

void
ctl_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("canopyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_usage_error(const char *cmd_usage, const char *fmt, ...)
{
	va_list ap;

	fputs("canopyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd_usage != NULL)
		fprintf(stderr, "usage: %s\n", cmd_usage);
	else
		usage(stderr);
	return (EXIT_USAGE);
}

static int
set_str(char **dst, const char *src)
{
	free(*dst);
	if ((*dst = strdup(src)) == NULL) {
		ctl_warnx("out of memory");
		return (-1);
	}
	return (0);
}

int
ctl_global_opt(struct ctl *ctl, int c, const char *arg)
{
	switch (c) {
	case OPT_SERVER:
		/* "https://h:p/" and "https://h:p" are one server. */
		if (set_str(&ctl->opt_server, arg) == -1)
			return (-1);
		while (strlen(ctl->opt_server) > 0 &&
		    ctl->opt_server[strlen(ctl->opt_server) - 1] == '/')
			ctl->opt_server[strlen(ctl->opt_server) - 1] = '\0';
		return (1);
	case OPT_CA:
		return (set_str(&ctl->opt_ca, arg) == -1 ? -1 : 1);
	case OPT_JSON:
		ctl->json = 1;
		return (1);
	case OPT_CONFIG_DIR:
		return (set_str(&ctl->config_dir, arg) == -1 ? -1 : 1);
	case OPT_VS:
		return (set_str(&ctl->opt_vs, arg) == -1 ? -1 : 1);
	case 'v':
	case OPT_VERBOSE:
		ctl->verbose++;
		return (1);
	}
	return (0);
}

int
ctl_operands(struct ctl *ctl, int argc, char **argv, const char *usage,
    const char *what, int nargs)
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
	if (nargs >= 0 && argc - optind != nargs)
		return (ctl_usage_error(usage, "%s takes %d argument%s", what,
		    nargs, nargs == 1 ? "" : "s"));
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	return (-1);
}

int
ctl_resolve(struct ctl *ctl, int need_token)
{
	/* Loaded here, after every option, since --config-dir may follow. */
	if (config_load(ctl) == -1)
		return (-1);
	ctl->server = ctl->opt_server != NULL ? ctl->opt_server :
	    ctl->saved_server;
	ctl->ca = ctl->opt_ca != NULL ? ctl->opt_ca : ctl->saved_ca;
	/* A stored token is only ever sent to the server that issued it. */
	ctl->token = NULL;
	if (ctl->saved_token != NULL && ctl->saved_server != NULL &&
	    ctl->server != NULL && strcmp(ctl->server, ctl->saved_server) == 0)
		ctl->token = ctl->saved_token;

	if (ctl->server == NULL) {
		ctl_warnx("no server: give --server URL, or run "
		    "canopyctl login --server URL --ca FILE");
		return (-1);
	}
	if (strncmp(ctl->server, "https://", 8) != 0) {
		ctl_warnx("server %s: the API is only spoken over https://",
		    ctl->server);
		return (-1);
	}
	if (ctl->ca == NULL) {
		ctl_warnx("no CA certificate for %s: give --ca FILE (the "
		    "server's ca.pem)", ctl->server);
		return (-1);
	}
	/* No session: Kerberos from the credential cache, if any. */
	if (need_token && ctl->token == NULL)
		ctl->negotiate = 1;
	return (0);
}

static void
ctl_free(struct ctl *ctl)
{
	free(ctl->opt_server);
	free(ctl->opt_ca);
	free(ctl->config_dir);
	free(ctl->opt_vs);
	free(ctl->saved_server);
	free(ctl->saved_ca);
	free(ctl->saved_user);
	if (ctl->saved_token != NULL) {
		explicit_bzero(ctl->saved_token, strlen(ctl->saved_token));
		free(ctl->saved_token);
	}
}

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, int, char **);
} commands[] = {
	{ "login",		cmd_login },
	{ "logout",		cmd_logout },
	{ "whoami",		cmd_whoami },
	{ "device",		cmd_device },
	{ "devices",		cmd_device },
	{ "group",		cmd_group },
	{ "groups",		cmd_group },
	{ "enroll-token",	cmd_enroll_token },
	{ "policy",		cmd_policy },
	{ "policies",		cmd_policy },
	{ "task",		cmd_task },
	{ "tasks",		cmd_task },
	{ "event",		cmd_event },
	{ "events",		cmd_event },
	{ "audit",		cmd_audit },
	{ "admin",		cmd_admin },
	{ "admins",		cmd_admin },
	{ "status-rule",	cmd_status_rule },
	{ "status-rules",	cmd_status_rule },
	{ "moving-rule",	cmd_moving_rule },
	{ "moving-rules",	cmd_moving_rule },
	{ "vserver",		cmd_vserver },
	{ "vservers",		cmd_vserver },
	{ "server",		cmd_server },
	{ "servers",		cmd_server },
	{ "report",		cmd_report },
	{ "reports",		cmd_report },
	{ "directory",		cmd_directory },
	{ "ip-range",		cmd_iprange },
	{ "ip-ranges",		cmd_iprange },
	{ "kerberos",		cmd_kerberos },
	{ "role-mapping",	cmd_role_mapping },
	{ "role-mappings",	cmd_role_mapping },
	{ "totp",		cmd_totp },
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct ctl	 ctl;
	size_t		 i;
	int		 c, r, rv;

	memset(&ctl, 0, sizeof(ctl));
	/* '+': stop at the command; its own options come after it. */
	while ((c = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
		if (c == 'h' || c == OPT_HELP) {
			usage(stdout);
			ctl_free(&ctl);
			return (EXIT_OK);
		}
		if ((r = ctl_global_opt(&ctl, c, optarg)) == 1)
			continue;
		ctl_free(&ctl);
		if (r == -1)
			return (EXIT_ERR);
		usage(stderr);
		return (EXIT_USAGE);
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_free(&ctl);
		return (ctl_usage_error(NULL, "no command given"));
	}
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		ctl_free(&ctl);
		return (EXIT_OK);
	}

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		rv = ctl_usage_error(NULL, "unknown command: %s", argv[0]);
		ctl_free(&ctl);
		return (rv);
	}

	if (http_init() == -1) {
		ctl_free(&ctl);
		return (EXIT_ERR);
	}
	/* Commands parse from argv[0] (their name) with getopt_long. */
	optind = 0;
	rv = commands[i].fn(&ctl, argc, argv);
	http_cleanup();
	ctl_free(&ctl);
	return (rv);
}
