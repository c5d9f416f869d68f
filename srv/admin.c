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
 * 'canopyd -c FILE admin-add NAME [--principal P] [--role R]': how the first
 * administrator is made.  A command-line tool, not the daemon, so it talks
 * to PostgreSQL synchronously.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "config.h"
#include "db/db.h"
#include "canopy_limits.h"
#include "srv/canopyd.h"
#include "util.h"

#define ADMIN_ACTOR	"canopyd admin-add"

static int
admin_usage(void)
{
	fprintf(stderr, "usage: canopyd [-c file] admin-add name "
	    "[--principal P] [--role administrator|operator|auditor] "
	    "[--vs NAME]\n"
	    "The password is read from standard input (an empty one makes "
	    "a Kerberos-only account).\n");
	return 1;
}

/* Printable and without control characters: names end up in logs. */
static int
admin_text_ok(const char *s, size_t max)
{
	size_t	 n = strlen(s);
	size_t	 i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * One line from stdin into buf; no echo when it is a terminal.  Returns
 * the length, or -1 if it does not fit (the line is too long).
 */
static int
admin_read_password(char *buf, size_t size)
{
	struct termios	 old, noecho;
	int		 tty, c;
	size_t		 n = 0, len = 0;

	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "Password (empty for Kerberos only): ");
		fflush(stderr);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 < size)
			buf[n++] = (char)c;
		len++;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\r') {
		buf[--n] = '\0';
		len--;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	return len >= size ? -1 : (int)len;
}

static PGresult *
admin_exec(PGconn *conn, const char *sql, int n, const char *const *p,
    char *err, size_t errlen, char *state, size_t statelen)
{
	PGresult	*res;
	const char	*s;
	int		 st;

	state[0] = '\0';
	res = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (res && (s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) != NULL)
		strlcpy(state, s, statelen);
	if (res && (s = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)) !=
	    NULL && strstr(s, "principal") != NULL)
		strlcat(state, ":principal", statelen);
	snprintf(err, errlen, "%s", res && *PQresultErrorMessage(res) ?
	    PQresultErrorMessage(res) : PQerrorMessage(conn));
	err[strcspn(err, "\n")] = '\0';
	PQclear(res);
	return NULL;
}

static int
admin_insert(PGconn *conn, const char *name, const char *principal,
    const char *hash, const char *role, const char *vs)
{
	PGresult	*res;
	const char	*p[5];
	char		 err[1024], state[64], id[32], vs_id[16];
	int		 ret = 1;

	if (db_begin(conn, err, sizeof(err)) != DB_OK) {
		fprintf(stderr, "canopyd: database: %s\n", err);
		return 1;
	}

	/* --vs: an administrator of a virtual server (a tenant). */
	p[0] = vs;
	res = admin_exec(conn, "SELECT id FROM vservers WHERE name = $1", 1,
	    p, err, sizeof(err), state, sizeof(state));
	if (res == NULL) {
		fprintf(stderr, "canopyd: database: %s\n", err);
		goto fail;
	}
	if (PQntuples(res) == 0) {
		fprintf(stderr, "canopyd: no virtual server named '%s'\n", vs);
		PQclear(res);
		goto fail;
	}
	strlcpy(vs_id, PQgetvalue(res, 0, 0), sizeof(vs_id));
	PQclear(res);

	p[0] = name;
	p[1] = principal;
	p[2] = hash;
	p[3] = vs_id;
	res = admin_exec(conn,
	    "INSERT INTO admins (vs_id, name, principal, pw_hash) "
	    "VALUES ($4::integer, $1, $2, $3) RETURNING id", 4, p,
	    err, sizeof(err), state, sizeof(state));
	if (res == NULL) {
		if (strcmp(state, "23505:principal") == 0)
			fprintf(stderr, "canopyd: principal '%s' already "
			    "belongs to another administrator\n", principal);
		else if (strncmp(state, "23505", 5) == 0)
			fprintf(stderr, "canopyd: administrator '%s' already "
			    "exists in %s\n", name, vs);
		else
			fprintf(stderr, "canopyd: cannot create administrator "
			    "'%s': %s\n", name, err);
		goto fail;
	}
	strlcpy(id, PQgetvalue(res, 0, 0), sizeof(id));
	PQclear(res);

	/* No scope: the whole of the virtual server. */
	p[0] = id;
	p[1] = role;
	res = admin_exec(conn,
	    "INSERT INTO admin_roles (admin_id, role, scope_group) "
	    "VALUES ($1::bigint, $2, NULL)", 2, p,
	    err, sizeof(err), state, sizeof(state));
	if (res == NULL) {
		fprintf(stderr, "canopyd: cannot give role %s: %s\n", role,
		    err);
		goto fail;
	}
	PQclear(res);

	p[0] = ADMIN_ACTOR;
	p[1] = name;
	p[2] = role;
	p[3] = principal;
	p[4] = vs_id;
	res = admin_exec(conn,
	    "INSERT INTO audit (vs_id, actor, action, object, detail) "
	    "VALUES ($5::integer, $1, 'admin_create', $2, jsonb_build_object("
	    "'role', $3::text, 'principal', $4::text))", 5, p,
	    err, sizeof(err), state, sizeof(state));
	if (res == NULL) {
		fprintf(stderr, "canopyd: audit: %s\n", err);
		goto fail;
	}
	PQclear(res);

	if (db_commit(conn, err, sizeof(err)) != DB_OK) {
		fprintf(stderr, "canopyd: database: %s\n", err);
		goto fail;
	}
	return 0;
fail:
	db_rollback(conn);
	return ret;
}

int
admin_add_main(struct conf *conf, int argc, char **argv)
{
	static const char *const keys[] = {
		"application_name", "connect_timeout", "dbname", NULL
	};
	const char	*vals[4];
	const char	*name, *principal = NULL, *role = "administrator";
	const char	*vs = "main";
	char		 pw[PW_MAX_LEN + 2], hash[PW_HASH_MAX], err[1024];
	char		 timeout[16];
	PGconn		*conn;
	int		 i, len, rc;

	/* argv[0] is "admin-add". */
	if (argc < 2 || argv[1][0] == '-')
		return admin_usage();
	name = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--principal") == 0 && i + 1 < argc)
			principal = argv[++i];
		else if (strncmp(argv[i], "--principal=", 12) == 0)
			principal = argv[i] + 12;
		else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strncmp(argv[i], "--role=", 7) == 0)
			role = argv[i] + 7;
		else if (strcmp(argv[i], "--vs") == 0 && i + 1 < argc)
			vs = argv[++i];
		else if (strncmp(argv[i], "--vs=", 5) == 0)
			vs = argv[i] + 5;
		else {
			fprintf(stderr, "canopyd: admin-add: unexpected "
			    "argument '%s'\n", argv[i]);
			return admin_usage();
		}
	}
	if (!admin_text_ok(name, API_NAME_MAX)) {
		fprintf(stderr, "canopyd: admin-add: the name must be 1..%d "
		    "printable characters\n", API_NAME_MAX);
		return 1;
	}
	if (strcmp(role, "administrator") != 0 &&
	    strcmp(role, "operator") != 0 && strcmp(role, "auditor") != 0) {
		fprintf(stderr, "canopyd: admin-add: unknown role '%s' (use "
		    "administrator, operator or auditor)\n", role);
		return 1;
	}
	if (principal != NULL && (!admin_text_ok(principal, API_NAME_MAX) ||
	    strchr(principal, '@') == NULL || strchr(principal, ' '))) {
		fprintf(stderr, "canopyd: admin-add: the principal must be a "
		    "realm-qualified Kerberos name such as "
		    "alice@CORP.EXAMPLE\n");
		return 1;
	}

	len = admin_read_password(pw, sizeof(pw));
	if (len < 0 || len > PW_MAX_LEN) {
		OPENSSL_cleanse(pw, sizeof(pw));
		fprintf(stderr, "canopyd: admin-add: the password is longer "
		    "than %d characters\n", PW_MAX_LEN);
		return 1;
	}
	if (len == 0 && principal == NULL) {
		fprintf(stderr, "canopyd: admin-add: no password given: a "
		    "Kerberos-only account needs --principal\n");
		return 1;
	}
	if (len > 0 && len < PW_MIN_LEN) {
		OPENSSL_cleanse(pw, sizeof(pw));
		fprintf(stderr, "canopyd: admin-add: the password must have "
		    "at least %d characters\n", PW_MIN_LEN);
		return 1;
	}
	if (len > 0) {
		rc = pw_hash(pw, hash, sizeof(hash));
		OPENSSL_cleanse(pw, sizeof(pw));
		if (rc == -1) {
			fprintf(stderr, "canopyd: admin-add: cannot hash the "
			    "password\n");
			return 1;
		}
	}

	snprintf(timeout, sizeof(timeout), "%d", DB_CONNECT_TIMEOUT_S);
	vals[0] = "canopyd admin-add";
	vals[1] = timeout;
	vals[2] = conf->database ? conf->database : "";
	vals[3] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "canopyd: cannot connect to the database "
		    "(check 'database' in %s): %s", conf->path,
		    conn ? PQerrorMessage(conn) : "out of memory\n");
		PQfinish(conn);
		return 1;
	}
	if (db_migrate(conn, err, sizeof(err)) == -1) {
		fprintf(stderr, "canopyd: database schema: %s\n", err);
		PQfinish(conn);
		return 1;
	}
	if (db_system(conn) == -1) {
		fprintf(stderr, "canopyd: database: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	rc = admin_insert(conn, name, principal, len > 0 ? hash : NULL, role,
	    vs);
	OPENSSL_cleanse(hash, sizeof(hash));
	PQfinish(conn);
	if (rc == 0)
		printf("administrator %s created in %s\n", name, vs);
	return rc;
}
