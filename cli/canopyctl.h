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

#ifndef CANOPY_CANOPYCTL_H
#define CANOPY_CANOPYCTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Exit statuses. */
#define EXIT_OK		0
#define EXIT_ERR	1	/* the server said no, or we could not ask */
#define EXIT_USAGE	2

/* How a request authenticates. */
enum ctl_auth { CTL_AUTH_NONE, CTL_AUTH_BASIC, CTL_AUTH_BEARER,
    CTL_AUTH_NEGOTIATE };

/* One run of canopyctl: options, then what the config directory holds. */
struct ctl {
	/* Command line. */
	char		*opt_server;
	char		*opt_ca;
	char		*config_dir;	/* malloc'd, resolved */
	int		 json;
	int		 verbose;
	char		*opt_vs;	/* --vs NAME: ?vs= on every request */

	/* The stored session (config dir), NULL when absent. */
	char		*saved_server;
	char		*saved_ca;
	char		*saved_user;
	char		*saved_token;

	/* What requests use. */
	const char	*server;	/* opt_server, else saved_server */
	const char	*ca;		/* opt_ca, else saved_ca */
	const char	*token;		/* saved_token if server matches */
	const char	*basic_user;
	const char	*basic_password;
	int		 negotiate;	/* Kerberos from the credential cache */
	const char	*totp;		/* X-Canopy-TOTP with a password */
	int		 loaded;	/* config_load done */
};

/* An answer: status and parsed JSON body (NULL for an empty body). */
struct ctl_reply {
	long		 status;
	json_t		*body;
};

/*
 * Global options every command also accepts after its name.  Their codes are
 * above the range of single-letter options.
 */
enum {
	OPT_SERVER = 0x1000,
	OPT_CA,
	OPT_JSON,
	OPT_CONFIG_DIR,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_VS,
	OPT_FIRST_LOCAL			/* first code free for a command */
};
#define CTL_GLOBAL_LONGOPTS						\
	{ "server",	required_argument, NULL, OPT_SERVER },		\
	{ "ca",		required_argument, NULL, OPT_CA },		\
	{ "json",	no_argument,	   NULL, OPT_JSON },		\
	{ "config-dir",	required_argument, NULL, OPT_CONFIG_DIR },	\
	{ "verbose",	no_argument,	   NULL, OPT_VERBOSE },		\
	{ "help",	no_argument,	   NULL, OPT_HELP },		\
	{ "vs",		required_argument, NULL, OPT_VS }

/* main.c */
void	 ctl_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
int	 ctl_usage_error(const char *usage, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Handles a global option; 1 if it was one, 0 if not, -1 on error. */
int	 ctl_global_opt(struct ctl *, int c, const char *arg);
/* Resolves server, CA and token; -1 with a message if unusable. */
int	 ctl_resolve(struct ctl *, int need_token);
/*
 * A subcommand with only the global options and nargs operands (-1: any
 * number): parses them and resolves the session.  -1 to go on, with optind
 * at the operands, or else the exit status.
 */
int	 ctl_operands(struct ctl *, int argc, char **argv, const char *usage,
	    const char *what, int nargs);

/* config.c */
/* Resolves the directory if not given and reads it; once. */
int	 config_load(struct ctl *);
/* Stores the session atomically, copying the CA file into the dir. */
int	 config_save(struct ctl *, const char *server, const char *ca_file,
	    const char *user, const char *token);
int	 config_clear_token(struct ctl *);

/* http.c */
int	 http_init(void);
void	 http_cleanup(void);
/*
 * Sends method path (under the server URL, with the query already encoded)
 * and body (NULL: none).  Returns 0 with *reply filled whatever the status,
 * or -1 after printing why the request could not be made.
 */
int	 http_request(struct ctl *, enum ctl_auth, const char *method,
	    const char *path, json_t *body, struct ctl_reply *reply);
/*
 * The usual path: 2xx -> 0 with reply; otherwise prints the API's message
 * (or the session hint on 401) and returns -1.
 */
int	 http_call(struct ctl *, const char *method, const char *path,
	    json_t *body, struct ctl_reply *reply);
void	 http_reply_free(struct ctl_reply *);
/* Appends "name=value" (escaped) to a query string being built. */
int	 http_query_add(char **query, const char *name, const char *value);
char	*http_escape(const char *);

/* output.c */
struct table;
struct table	*table_new(int ncols, ...);	/* column titles */
/* ncols strings; NULL or "" shows as "-". */
void	 table_row(struct table *, ...);
void	 table_print(struct table *, FILE *);
void	 table_free(struct table *);
void	 out_json(json_t *);
/* A JSON value as text for a table cell; buf for numbers. */
const char *out_str(json_t *, const char *key, char *buf, size_t len);
/* "5m ago" from an ISO 8601 string or epoch; buf for the result. */
const char *out_time_ago(json_t *, char *buf, size_t len);
const char *out_bytes(double, char *buf, size_t len);

/* cmd_auth.c */
int	 cmd_login(struct ctl *, int, char **);
int	 cmd_logout(struct ctl *, int, char **);
int	 cmd_whoami(struct ctl *, int, char **);

/* cmd_device.c */
int	 cmd_device(struct ctl *, int, char **);

/* cmd_group.c */
int	 cmd_group(struct ctl *, int, char **);

/* cmd_token.c */
int	 cmd_enroll_token(struct ctl *, int, char **);

/* cmd_policy.c */
int	 cmd_policy(struct ctl *, int, char **);
/* device effective-policy ID [--product P] */
int	 cmd_device_effective_policy(struct ctl *, int, char **);

/* cmd_task.c */
int	 cmd_task(struct ctl *, int, char **);

/* cmd_admin.c */
int	 cmd_event(struct ctl *, int, char **);
int	 cmd_audit(struct ctl *, int, char **);
int	 cmd_admin(struct ctl *, int, char **);

/* cmd_vserver.c */
int	 cmd_vserver(struct ctl *, int, char **);

/* cmd_server.c */
int	 cmd_server(struct ctl *, int, char **);
int	 cmd_report(struct ctl *, int, char **);

/* cmd_directory.c */
int	 cmd_directory(struct ctl *, int, char **);

/* cmd_iprange.c */
int	 cmd_iprange(struct ctl *, int, char **);

/* cmd_kerberos.c */
int	 cmd_kerberos(struct ctl *, int, char **);
int	 cmd_role_mapping(struct ctl *, int, char **);
int	 cmd_totp(struct ctl *, int, char **);

/* cmd_rules.c */
int	 cmd_status_rule(struct ctl *, int, char **);
int	 cmd_moving_rule(struct ctl *, int, char **);

#endif
