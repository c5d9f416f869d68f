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

/* login, logout, whoami. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "canopyctl.h"
#include "canopy_limits.h"

#define API	"/api/v1"

static const char login_usage[] =
    "canopyctl login [--server URL] [--ca FILE] [--user NAME] "
    "[--password | --password-stdin] [--totp CODE]\n"
    "  (without --user or a password option: Kerberos from the "
    "credential cache)";

static volatile sig_atomic_t prompt_signo;

static void
prompt_signal(int signo)
{
	prompt_signo = signo;
}

/* Reads one line from fd into buf, without its newline. */
static int
read_line(int fd, char *buf, size_t len)
{
	size_t	n = 0;
	ssize_t	r;
	char	c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR && prompt_signo == 0)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (n + 1 >= len) {
			errno = EMSGSIZE;
			return (-1);
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (r == -1 ? -1 : 0);
}

/*
 * Prompts on the terminal itself, so that redirections do not matter.  A
 * signal while echo is off restores the terminal before it takes effect.
 */
static int
prompt_tty(const char *prompt, int echo, char *buf, size_t len)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGQUIT, SIGTSTP,
	    SIGHUP };
	struct sigaction sa, oldsa[sizeof(sigs) / sizeof(sigs[0])];
	struct termios	 old, quiet;
	size_t		 i;
	int		 fd, rv, saved;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1)
		return (-1);
	if (write(fd, prompt, strlen(prompt)) == -1) {
		close(fd);
		return (-1);
	}
	if (!echo) {
		if (tcgetattr(fd, &old) == -1) {
			close(fd);
			return (-1);
		}
		/* No SA_RESTART: the read must end on a signal. */
		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = prompt_signal;
		prompt_signo = 0;
		for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &sa, &oldsa[i]);
		quiet = old;
		quiet.c_lflag &= ~(ECHO | ECHONL);
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	rv = read_line(fd, buf, len);
	saved = errno;
	if (!echo) {
		tcsetattr(fd, TCSAFLUSH, &old);
		/* The answer is read; the newline is cosmetic. */
		if (write(fd, "\n", 1) == -1)
			saved = saved != 0 ? saved : errno;
		for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &oldsa[i], NULL);
		if (prompt_signo != 0) {
			explicit_bzero(buf, len);
			close(fd);
			raise(prompt_signo);
			errno = EINTR;
			return (-1);
		}
	}
	close(fd);
	errno = saved;
	return (rv);
}

/* Prints the login answer (never the token) and saves the session. */
static int
login_finish(struct ctl *ctl, struct ctl_reply *reply, const char *user)
{
	const char	*token;
	char		 tbuf[64];

	token = json_string_value(json_object_get(reply->body, "token"));
	if (token == NULL || token[0] == '\0') {
		ctl_warnx("the server's login answer has no token");
		return (EXIT_ERR);
	}
	if (config_save(ctl, ctl->server, ctl->ca, user, token) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		json_object_del(reply->body, "token");
		out_json(reply->body);
		return (EXIT_OK);
	}
	printf("Logged in to %s as %s by Kerberos", ctl->server,
	    out_str(reply->body, "user", tbuf, sizeof(tbuf)));
	if (json_is_string(json_object_get(reply->body, "vs")))
		printf(" (virtual server %s)", json_string_value(
		    json_object_get(reply->body, "vs")));
	printf(".\n");
	return (EXIT_OK);
}

/* Kerberos: the ticket from the credential cache (kinit), no password. */
static int
login_negotiate(struct ctl *ctl)
{
	struct ctl_reply reply;
	char		 user[API_NAME_MAX + 1];
	int		 rv;

	ctl->token = NULL;
	ctl->negotiate = 1;
	if (http_call(ctl, "POST", API "/login", NULL, &reply) == -1)
		return (EXIT_ERR);
	snprintf(user, sizeof(user), "%s", json_string_value(
	    json_object_get(reply.body, "user")) != NULL ?
	    json_string_value(json_object_get(reply.body, "user")) : "");
	rv = login_finish(ctl, &reply, user);
	http_reply_free(&reply);
	return (rv);
}

int
cmd_login(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ "user",		required_argument, NULL, 'u' },
		{ "password-stdin",	no_argument,	   NULL, 'p' },
		{ "password",		no_argument,	   NULL, 'P' },
		{ "totp",		required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_reply reply;
	json_t		*roles, *r;
	char		 user[API_NAME_MAX + 1], pw[CTL_MAX_PASSWORD + 2];
	char		 tbuf[64];
	const char	*env, *token;
	size_t		 i;
	int		 c, from_stdin = 0, ask = 0, rv = EXIT_ERR;

	user[0] = '\0';
	while ((c = getopt_long(argc, argv, "u:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (strlen(optarg) > API_NAME_MAX)
				return (ctl_usage_error(login_usage,
				    "user name longer than %d bytes",
				    API_NAME_MAX));
			snprintf(user, sizeof(user), "%s", optarg);
			break;
		case 'p':
			from_stdin = 1;
			break;
		case 'P':
			ask = 1;
			break;
		case 'T':
			ctl->totp = optarg;
			ask = 1;
			break;
		case OPT_HELP:
			printf("usage: %s\n", login_usage);
			return (EXIT_OK);
		default:
			if ((c = ctl_global_opt(ctl, c, optarg)) == 1)
				break;
			if (c == -1)
				return (EXIT_ERR);
			return (ctl_usage_error(login_usage, "bad option"));
		}
	}
	if (optind != argc)
		return (ctl_usage_error(login_usage, "unexpected argument: %s",
		    argv[optind]));
	if (ctl_resolve(ctl, 0) == -1)
		return (EXIT_ERR);

	/* Single sign-on unless a password is asked for. */
	if (!ask && !from_stdin && user[0] == '\0' &&
	    getenv("CANOPY_PASSWORD") == NULL)
		return (login_negotiate(ctl));

	if (user[0] == '\0') {
		if ((env = getenv("CANOPY_USER")) != NULL && env[0] != '\0')
			snprintf(user, sizeof(user), "%s", env);
		else if (ctl->saved_user != NULL)
			snprintf(user, sizeof(user), "%s", ctl->saved_user);
		else if (from_stdin || prompt_tty("User: ", 1, user,
		    sizeof(user)) == -1 || user[0] == '\0')
			return (ctl_usage_error(login_usage,
			    "no user: give --user NAME"));
	}

	if (from_stdin) {
		if (read_line(STDIN_FILENO, pw, sizeof(pw)) == -1) {
			ctl_warnx("cannot read the password from stdin: %s",
			    strerror(errno));
			return (EXIT_ERR);
		}
	} else if ((env = getenv("CANOPY_PASSWORD")) != NULL) {
		if (strlen(env) >= sizeof(pw)) {
			ctl_warnx("CANOPY_PASSWORD is too long");
			return (EXIT_ERR);
		}
		snprintf(pw, sizeof(pw), "%s", env);
	} else {
		char prompt[API_NAME_MAX + 64];

		snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
		if (prompt_tty(prompt, 0, pw, sizeof(pw)) == -1) {
			ctl_warnx("cannot read a password from the terminal "
			    "(%s): use --password-stdin or CANOPY_PASSWORD",
			    strerror(errno));
			return (EXIT_ERR);
		}
	}
	if (strchr(user, ':') != NULL) {
		ctl_warnx("a user name cannot contain ':'");
		goto out;
	}

	ctl->token = NULL;	/* a fresh session, not the old one */
	ctl->basic_user = user;
	ctl->basic_password = pw;
	if (http_call(ctl, "POST", API "/login", NULL, &reply) == -1)
		goto out;
	token = json_string_value(json_object_get(reply.body, "token"));
	if (token == NULL || token[0] == '\0') {
		ctl_warnx("the server's login answer has no token");
		http_reply_free(&reply);
		goto out;
	}
	if (config_save(ctl, ctl->server, ctl->ca, user, token) == -1) {
		http_reply_free(&reply);
		goto out;
	}
	if (ctl->json) {
		/* Scripts get the answer, but never the token on stdout. */
		json_object_del(reply.body, "token");
		out_json(reply.body);
	} else {
		printf("Logged in to %s as %s", ctl->server,
		    out_str(reply.body, "user", tbuf, sizeof(tbuf)));
		if (json_is_string(json_object_get(reply.body, "vs")))
			printf(" (virtual server %s)", json_string_value(
			    json_object_get(reply.body, "vs")));
		printf(".\n");
		roles = json_object_get(reply.body, "roles");
		if (json_array_size(roles) > 0) {
			printf("Roles:");
			json_array_foreach(roles, i, r) {
				const char *role = json_is_string(r) ?
				    json_string_value(r) :
				    out_str(r, "role", tbuf, sizeof(tbuf));
				printf("%s %s", i ? "," : "", role);
			}
			printf("\n");
		}
		if (json_object_get(reply.body, "expires") != NULL)
			printf("Session expires: %s\n", out_str(reply.body,
			    "expires", tbuf, sizeof(tbuf)));
		printf("Session stored in %s\n", ctl->config_dir);
	}
	http_reply_free(&reply);
	rv = EXIT_OK;
 out:
	explicit_bzero(pw, sizeof(pw));
	return (rv);
}

/*
 * Parses a command with no options of its own but the global ones.
 * Returns -1 to go on, or the exit status (after --help or a usage error).
 */
static int
simple_args(struct ctl *ctl, int argc, char **argv, const char *usage)
{
	static const struct option longopts[] = {
		CTL_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int	c;

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
	if (optind != argc)
		return (ctl_usage_error(usage, "unexpected argument: %s",
		    argv[optind]));
	return (-1);
}

int
cmd_logout(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	int		 rv;

	if ((rv = simple_args(ctl, argc, argv, "canopyctl logout")) != -1)
		return (rv);
	if (config_load(ctl) == -1)
		return (EXIT_ERR);
	if (ctl->saved_token == NULL) {
		if (!ctl->json)
			printf("Not logged in.\n");
		return (EXIT_OK);
	}
	/*
	 * Revoke on the server when it offers it; the token is forgotten
	 * here whatever happens, so an unreachable server cannot keep us
	 * logged in.
	 */
	if (ctl_resolve(ctl, 1) == 0 &&
	    http_request(ctl, CTL_AUTH_BEARER, "POST", API "/logout", NULL,
	    &reply) == 0) {
		if (reply.status >= 300 && reply.status != 401 &&
		    reply.status != 404 && reply.status != 405)
			ctl_warnx("the server did not revoke the session "
			    "(HTTP %ld); it expires on its own", reply.status);
		http_reply_free(&reply);
	}
	if (config_clear_token(ctl) == -1)
		return (EXIT_ERR);
	if (!ctl->json)
		printf("Logged out of %s.\n", ctl->saved_server != NULL ?
		    ctl->saved_server : "the server");
	return (EXIT_OK);
}

int
cmd_whoami(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply reply;
	struct table	*t;
	json_t		*roles, *r;
	char		 b1[64], b2[64];
	size_t		 i;
	int		 rv;

	if ((rv = simple_args(ctl, argc, argv, "canopyctl whoami")) != -1)
		return (rv);
	if (ctl_resolve(ctl, 1) == -1)
		return (EXIT_ERR);
	if (http_call(ctl, "GET", API "/whoami", NULL, &reply) == -1)
		return (EXIT_ERR);
	if (ctl->json) {
		out_json(reply.body);
		http_reply_free(&reply);
		return (EXIT_OK);
	}
	printf("User:            %s\n", out_str(reply.body, "user", b1,
	    sizeof(b1)));
	printf("Principal:       %s\n", out_str(reply.body, "principal", b1,
	    sizeof(b1)));
	printf("Virtual server:  %s\n", out_str(reply.body, "vs", b1,
	    sizeof(b1)));
	printf("Server:          %s\n", ctl->server);
	roles = json_object_get(reply.body, "roles");
	if (json_array_size(roles) > 0) {
		printf("\n");
		t = table_new(2, "ROLE", "SCOPE");
		json_array_foreach(roles, i, r) {
			if (json_is_string(r))
				table_row(t, json_string_value(r), "-");
			else
				table_row(t, out_str(r, "role", b1,
				    sizeof(b1)), out_str(r, "scope", b2,
				    sizeof(b2)));
		}
		table_print(t, stdout);
		table_free(t);
	}
	http_reply_free(&reply);
	return (EXIT_OK);
}
