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
 * The config directory: config.json holds the server URL, the CA path, the
 * user and the session token; ca.pem is a copy of the server's CA, so the
 * session survives the original file moving.  The directory is 0700 and
 * the files 0600, written atomically.
 */

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canopyctl.h"
#include "canopy_limits.h"
#include "util.h"

#define CONFIG_FILE	"config.json"
#define CONFIG_CA	"ca.pem"
#define CA_MAX_SIZE	(1u * 1024 * 1024)

static int
config_dir_default(struct ctl *ctl)
{
	const char	*xdg, *home;
	int		 n;

	if ((xdg = getenv("XDG_CONFIG_HOME")) != NULL && xdg[0] == '/')
		n = asprintf(&ctl->config_dir, "%s/canopy", xdg);
	else if ((home = getenv("HOME")) != NULL && home[0] != '\0')
		n = asprintf(&ctl->config_dir, "%s/.config/canopy", home);
	else {
		ctl_warnx("neither XDG_CONFIG_HOME nor HOME is set: "
		    "give --config-dir DIR");
		return (-1);
	}
	if (n == -1) {
		ctl->config_dir = NULL;
		ctl_warnx("out of memory");
		return (-1);
	}
	return (0);
}

static char *
config_path(struct ctl *ctl, const char *name)
{
	char	*p;

	if (asprintf(&p, "%s/%s", ctl->config_dir, name) == -1)
		return (NULL);
	return (p);
}

static char *
dup_field(json_t *o, const char *key)
{
	json_t	*v;

	if ((v = json_object_get(o, key)) == NULL || !json_is_string(v) ||
	    json_string_length(v) == 0)
		return (NULL);
	return (strdup(json_string_value(v)));
}

int
config_load(struct ctl *ctl)
{
	json_error_t	 jerr;
	json_t		*o;
	char		*path, *text;
	size_t		 len;

	if (ctl->loaded)
		return (0);
	if (ctl->config_dir == NULL && config_dir_default(ctl) == -1)
		return (-1);
	ctl->loaded = 1;
	if ((path = config_path(ctl, CONFIG_FILE)) == NULL) {
		ctl_warnx("out of memory");
		return (-1);
	}
	if ((text = file_read(path, CTL_MAX_CONFIG, &len)) == NULL) {
		/* No session yet is normal. */
		if (errno != ENOENT) {
			ctl_warnx("%s: %s", path, strerror(errno));
			free(path);
			return (-1);
		}
		free(path);
		return (0);
	}
	o = json_loadb(text, len, 0, &jerr);
	explicit_bzero(text, len);
	free(text);
	if (o == NULL || !json_is_object(o)) {
		ctl_warnx("%s:%d: %s (remove it and run canopyctl login)",
		    path, jerr.line, o == NULL ? jerr.text : "not an object");
		json_decref(o);
		free(path);
		return (-1);
	}
	ctl->saved_server = dup_field(o, "server");
	ctl->saved_ca = dup_field(o, "ca");
	ctl->saved_user = dup_field(o, "user");
	ctl->saved_token = dup_field(o, "token");
	json_decref(o);
	free(path);
	return (0);
}

static int
config_mkdir(struct ctl *ctl)
{
	if (mkdir_p(ctl->config_dir, 0700) == -1) {
		ctl_warnx("%s: %s", ctl->config_dir, strerror(errno));
		return (-1);
	}
	/* It holds a bearer token: nobody else may even list it. */
	if (chmod(ctl->config_dir, 0700) == -1) {
		ctl_warnx("chmod %s: %s", ctl->config_dir, strerror(errno));
		return (-1);
	}
	return (0);
}

static int
config_write(struct ctl *ctl, const char *server, const char *ca,
    const char *user, const char *token)
{
	json_t	*o;
	char	*path, *text;
	int	 rv = -1;

	o = json_object();
	if (o == NULL)
		goto oom;
	if (server != NULL)
		json_object_set_new(o, "server", json_string(server));
	if (ca != NULL)
		json_object_set_new(o, "ca", json_string(ca));
	if (user != NULL)
		json_object_set_new(o, "user", json_string(user));
	if (token != NULL)
		json_object_set_new(o, "token", json_string(token));
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (text == NULL)
		goto oom;
	if ((path = config_path(ctl, CONFIG_FILE)) == NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
		goto oom;
	}
	if (file_write_atomic(path, text, strlen(text), 0600) == -1)
		ctl_warnx("cannot write %s: %s", path, strerror(errno));
	else
		rv = 0;
	explicit_bzero(text, strlen(text));
	free(text);
	free(path);
	return (rv);
 oom:
	ctl_warnx("out of memory");
	return (-1);
}

int
config_save(struct ctl *ctl, const char *server, const char *ca_file,
    const char *user, const char *token)
{
	char	*pem, *ca_copy;
	size_t	 len;
	int	 rv;

	if (config_load(ctl) == -1 || config_mkdir(ctl) == -1)
		return (-1);
	if ((ca_copy = config_path(ctl, CONFIG_CA)) == NULL) {
		ctl_warnx("out of memory");
		return (-1);
	}
	/* Copy unless it already is our copy (a second login). */
	if (strcmp(ca_file, ca_copy) != 0) {
		if ((pem = file_read(ca_file, CA_MAX_SIZE, &len)) == NULL) {
			ctl_warnx("%s: %s", ca_file, strerror(errno));
			free(ca_copy);
			return (-1);
		}
		rv = file_write_atomic(ca_copy, pem, len, 0600);
		free(pem);
		if (rv == -1) {
			ctl_warnx("cannot write %s: %s", ca_copy,
			    strerror(errno));
			free(ca_copy);
			return (-1);
		}
	}
	rv = config_write(ctl, server, ca_copy, user, token);
	free(ca_copy);
	return (rv);
}

int
config_clear_token(struct ctl *ctl)
{
	if (config_load(ctl) == -1)
		return (-1);
	if (ctl->saved_server == NULL && ctl->saved_token == NULL)
		return (0);
	/* Keep server and CA so that 'login' alone logs in again. */
	return (config_write(ctl, ctl->saved_server, ctl->saved_ca,
	    ctl->saved_user, NULL));
}
