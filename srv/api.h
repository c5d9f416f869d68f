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

#ifndef CANOPY_API_H
#define CANOPY_API_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>

#include "canopy_limits.h"

#include "api_json.h"
#include "db/q_api.h"

/* Scope lists as PostgreSQL array text: "{1,2}". */
#define API_SCOPES_LEN	(QA_ROLES_MAX * 21 + 3)

/* Private to srv/api*.c: the API server and one request in flight. */

enum api_route {
	API_R_NONE = 0,		/* no such resource: 404 once authenticated */
	API_R_LOGIN,
	API_R_LOGOUT,
	API_R_WHOAMI,
	API_R_ENROLL,
	API_R_DEVICES,
	API_R_DEVICE,
	API_R_DEVICE_SYNC,	/* POST /devices/{id}/sync: push 'sync_now' */
	API_R_METRICS		/* /metrics behind authentication */
};

#define API_VALS_MAX	8
#define API_PATH_PARAMS	3	/* {} segments in one route pattern */

struct api_req;

/*
 * A resource of the table-driven router.  A module (srv/api_groups.c, …)
 * lists its routes in a NULL-pattern-terminated table named in
 * api_endpoint_tables (srv/api_endpoints.c).  The pattern is the path below
 * /api/v1; "{}" matches one non-empty segment, copied to ar->pp[].
 * The router answers 404/405/413 itself; authentication and the access
 * level are checked before run; run sees the request in its worker thread
 * (ar->body_text is the raw JSON body, validated by run with
 * api_json_validate; api_query() reads the query string) and sets
 * ar->status and ar->resp, or calls api_req_fail.  after, if set, runs on
 * the loop once run answered 2xx (to push to agents, say) and may change
 * the answer.
 */
enum api_access {
	API_A_READ = 0,		/* any role: administrator, operator, auditor */
	API_A_OPERATE,		/* operator or administrator */
	API_A_ADMIN		/* administrator */
};

struct api_auth;

struct api_endpoint {
	enum evhttp_cmd_type	 method;
	const char		*pattern;
	enum api_access		 access;
	int			(*run)(PGconn *, struct api_req *,
				    const struct api_auth *, char *err,
				    size_t errlen);
	void			(*after)(struct api_req *);
};

/* srv/api_endpoints.c: every module's table, NULL-terminated. */
extern const struct api_endpoint *const api_endpoint_tables[];

struct api_req;
TAILQ_HEAD(api_reqs, api_req);

struct api {
	struct canopyd		*cd;
	struct evhttp		*http;
	SSL_CTX			*ssl_ctx;
	struct api_reqs		 pending;	/* jobs at the database */
	size_t			 npending;
};

struct api_auth {
	struct qa_admin	 admin;
	struct qa_role	 roles[QA_ROLES_MAX];
	size_t		 nroles;
	int		 session;	/* by Bearer token */
	char		 token_hash[65];
	const char	*method;	/* "password" or "session" */
	/* Where the request acts, and what it may see and change there. */
	int		 vs_id;
	char		 vs_name[API_NAME_MAX + 1];
	char		 read_scopes[API_SCOPES_LEN];	/* "" unrestricted */
	char		 write_scopes[API_SCOPES_LEN];
	int		 can_read;	/* any role */
	int		 can_write;	/* operator or administrator */
	int		 can_admin;	/* administrator */
};

struct api_req {
	TAILQ_ENTRY(api_req)	 entry;
	struct api		*api;	/* NULL after api_stop */
	struct canopyd		*cd;
	/*
	 * NULL once libevent has freed the request (the client went away).
	 * 'orphan': libevent let go of it without freeing it, so it is ours.
	 */
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;
	int			 orphan;
	uint64_t		 start_ms;

	/* Input, copied on the loop; the worker reads only these. */
	enum api_route		 route;
	char			*authz;		/* Authorization header */
	char			 addr[64];	/* the client's address */
	char			 server[MSG_MAX_NAME + 1];
	json_t			*body;
	struct api_value	 vals[API_VALS_MAX];
	char			*group;		/* ?group= */
	char			*status_q;	/* ?status= */
	char			*q;		/* ?q= */
	char			*vs;		/* ?vs= */
	int			 recursive;
	int			 hierarchy;	/* ?hierarchy=1: with mirrors */
	int			 limit;
	int			 has_cursor;
	char			 cursor_name[API_NAME_MAX + 1];
	char			 cursor_id[37];
	char			 id[40];	/* {id} in the path */
	int			 vs_id;	/* where it acted (set after auth) */
	/* Table-driven routes (NULL rt: a legacy route above). */
	const struct api_endpoint	*rt;
	char			 pp[API_PATH_PARAMS][API_PATH_MAX + 1];
	struct evkeyvalq	*query;		/* parsed ?a=b&c=d */
	char			*body_text;	/* NUL-terminated, or NULL */
	size_t			 body_len;
	/* Found wrong before authentication; answered after it. */
	int			 err_status;
	const char		*err_code;
	char			 err_msg[512];
	const char		*allow;		/* for 405 */
	char			 allow_buf[API_ROUTE_ALLOW_MAX];

	/* Output, from the worker. */
	int			 status;
	json_t			*resp;
	int			 challenge;	/* WWW-Authenticate headers */
	/* Kerberos SSO and TOTP (srv/api_auth.c). */
	char			*negotiate_out;	/* mutual-auth token, base64 */
	char			*totp;		/* X-Canopy-TOTP header */
};

/* The value of ?name= (the last one given), or NULL. */
const char *api_query(const struct api_req *, const char *name);
/* Writes an audit row: who (actor), from ar's address, what, on what. */
void	 api_audit(PGconn *, struct api_req *, int vs_id, const char *actor,
	    const char *action, const char *object, json_t *detail);

/* srv/api_handlers.c: runs on a database worker. */
int	 api_job_run(PGconn *, void *arg, char *err, size_t errlen);
/*
 * Resolves a group named by id or path (ref; NULL: the unassigned pool)
 * within scopes ("{1,2}", NULL: unrestricted).  QA_NOTFOUND after a 404
 * naming field; DB_OK with *gid; or a database error.
 */
int	 api_group_ref(PGconn *, struct api_req *, const struct api_auth *,
	    const char *field, const char *ref, const char *scopes,
	    int64_t *gid, char *err, size_t errlen);
/* Sets ar->status and an error body. */
void	 api_req_fail(struct api_req *, int status, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Body schemas, in api_handlers.c; the values land in ar->vals. */
extern const struct api_field api_login_schema[];
extern const size_t api_login_nfields;
extern const struct api_field api_enroll_schema[];
extern const size_t api_enroll_nfields;
/* Indexes into vals[]. */
#define API_LOGIN_USER		0
#define API_LOGIN_PASSWORD	1
#define API_LOGIN_VS		2
#define API_LOGIN_TOTP		3

/*
 * srv/api_auth.c, on the worker.  Negotiate: accepts the SPNEGO token,
 * maps the principal to an account (role mappings re-applied), fills
 * au->admin, or answers 401 itself.  TOTP: after a right password, checks
 * the second factor of an enrolled account, or answers 401 itself (a wrong
 * code counts toward lock-out).  Both return DB_OK unless the database
 * failed.
 */
int	 api_auth_negotiate(PGconn *, struct api_req *, struct api_auth *,
	    const char *token, char *err, size_t errlen);
/* On the loop at start: the keytab file, the replay cache. */
struct canopyd;
void	 api_auth_start(struct canopyd *);
int	 api_totp_login(PGconn *, struct api_req *, struct api_auth *,
	    const char *code, char *err, size_t errlen);
#define API_ENROLL_GROUP	0
#define API_ENROLL_USES		1
#define API_ENROLL_TTL		2

#endif
