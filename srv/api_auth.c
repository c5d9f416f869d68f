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
 * Kerberos SSO, role mappings, TOTP (issue 6): the Negotiate and TOTP
 * steps of authentication (called from srv/api_handlers.c on the worker)
 * and the routes /auth/kerberos, /auth/totp, /role-mappings.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "canopy_limits.h"
#include "config.h"
#include "log.h"
#include "seal.h"
#include "totp.h"
#include "util.h"

#include "auth/auth.h"
#include "db/db.h"
#include "db/q_api.h"
#include "db/q_auth.h"

#include "api.h"
#include "api_json.h"
#include "canopyd.h"

#define SEAL_KEYTAB	"keytab"
#define SEAL_TOTP	"totp"

/* Copied at start: workers must not follow cd->conf, swapped on SIGHUP. */
static char	 aa_state_dir[1024];

void
api_auth_start(struct canopyd *cd)
{
	char	 rc[1100];

	strlcpy(aa_state_dir, cd->conf->state_dir, sizeof(aa_state_dir));
	/* A replay cache of this server's own: replays are refused. */
	snprintf(rc, sizeof(rc), "%s/krb5.rcache", aa_state_dir);
	krb_configure(cd->conf->kerberos_keytab, rc,
	    cd->conf->kerberos_service);
}

/* Loads the uploaded keytab into memory, once (or after a restart). */
static int
aa_keytab_load(PGconn *conn, struct canopyd *cd, char *err, size_t errlen)
{
	char		*sealed = NULL, kerr[256];
	uint8_t		*kt;
	size_t		 len;
	int		 rc;

	if (!krb_need_load())
		return DB_OK;
	rc = qk_keytab_get(conn, &sealed, NULL, NULL, err, errlen);
	if (rc == QA_NOTFOUND)
		return DB_OK;
	if (rc != DB_OK) {
		/* Try again at the next request. */
		krb_retry_load();
		return rc;
	}
	if ((kt = seal_decrypt(cd->pki.master_key, SEAL_KEYTAB, sealed,
	    &len)) == NULL)
		log_warnx("kerberos: the stored keytab cannot be unsealed "
		    "(another master key?); upload it again");
	else {
		if (krb_install_keytab(kt, len, aa_state_dir, kerr,
		    sizeof(kerr)) == -1)
			log_warnx("kerberos: stored keytab: %s", kerr);
		seal_free(kt, len);
	}
	free(sealed);
	return DB_OK;
}

static void
aa_fail_audit(PGconn *conn, struct api_req *ar, const char *principal,
    const char *reason)
{
	api_audit(conn, ar, 0, principal[0] ? principal : "(kerberos)",
	    "login_failed", NULL, json_pack("{s:s,s:s,s:s?}", "method",
	    "kerberos", "reason", reason, "principal", principal[0] ?
	    principal : NULL));
}

int
api_auth_negotiate(PGconn *conn, struct api_req *ar, struct api_auth *au,
    const char *token, char *err, size_t errlen)
{
	struct krb_accept	 ka;
	struct qk_mapped	 m[QK_MAPPED_MAX];
	char			 other[KRB_PRINCIPAL_MAX];
	const char		*at;
	size_t			 nm = 0;
	int			 rc;

	au->method = "kerberos";
	if ((rc = aa_keytab_load(conn, ar->cd, err, errlen)) != DB_OK)
		return rc;
	if (krb_accept_token(token, &ka) == -1) {
		log_warnx("api: %s: Kerberos login refused: %s", ar->addr,
		    ka.log);
		aa_fail_audit(conn, ar, "", ka.log);
		api_req_fail(ar, 401, ka.code == KRB_E_DISABLED ?
		    "unauthenticated" : "kerberos_refused", "%s", ka.msg);
		krb_accept_clear(&ka);
		return DB_OK;
	}
	ar->negotiate_out = ka.out_b64;
	ka.out_b64 = NULL;

	if ((rc = qk_mapped_roles(conn, ka.principal, m, QK_MAPPED_MAX, &nm,
	    err, errlen)) != DB_OK)
		return rc;
	rc = qk_admin_by_principal(conn, ka.principal, &au->admin, err,
	    errlen);
	if (rc == QA_NOTFOUND && nm > 0) {
		/* First login of a mapped group's member: the account. */
		if ((rc = qk_mapped_admin_create(conn, m[0].vs_id,
		    ka.principal, err, errlen)) != DB_OK)
			return rc;
		if ((rc = qk_admin_by_principal(conn, ka.principal,
		    &au->admin, err, errlen)) == DB_OK)
			log_info("api: %s: account created for %s by a role "
			    "mapping", ar->addr, ka.principal);
	}
	if (rc == QA_NOTFOUND) {
		if ((rc = qk_principal_other_realm(conn, ka.principal, other,
		    sizeof(other), err, errlen)) != DB_OK)
			return rc;
		at = strchr(ka.principal, '@');
		if (other[0] != '\0') {
			log_warnx("api: %s: Kerberos login refused: wrong "
			    "realm: %s has no account in realm %s (an account "
			    "exists for %s)", ar->addr,
			    ka.principal, at ? at + 1 : "?", other);
			aa_fail_audit(conn, ar, ka.principal, "wrong realm");
		} else {
			log_warnx("api: %s: Kerberos login refused: unknown "
			    "principal %s: no account names it and no role "
			    "mapping covers it", ar->addr, ka.principal);
			aa_fail_audit(conn, ar, ka.principal,
			    "unknown principal");
		}
		api_req_fail(ar, 401, "unknown_principal", "Kerberos "
		    "principal '%s' is not mapped to any Canopy account",
		    ka.principal);
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	if (au->admin.locked) {
		aa_fail_audit(conn, ar, ka.principal, "locked");
		api_req_fail(ar, 401, "account_locked", "account '%s' is "
		    "locked until %s", au->admin.name,
		    au->admin.locked_until);
		return DB_OK;
	}
	/* Mappings are re-evaluated at every login: group changes count. */
	return qk_mapped_roles_apply(conn, au->admin.id, au->admin.vs_id, m,
	    nm, err, errlen);
}

/* The TOTP secret of an account, unsealed; *len 0 when none. */
static int
aa_totp_secret(PGconn *conn, struct api_req *ar, int64_t admin_id,
    int pending, uint8_t **key, size_t *len, int64_t *last, char *err,
    size_t errlen)
{
	char	*sealed, *pend;
	int	 rc;

	*key = NULL;
	*len = 0;
	if ((rc = qk_totp_get(conn, admin_id, &sealed, &pend, last, err,
	    errlen)) != DB_OK)
		return rc;
	if ((pending ? pend : sealed) != NULL &&
	    (*key = seal_decrypt(ar->cd->pki.master_key, SEAL_TOTP,
	    pending ? pend : sealed, len)) == NULL) {
		snprintf(err, errlen, "TOTP secret of account %" PRId64
		    " cannot be unsealed", admin_id);
		rc = DB_ERR;
	}
	free(sealed);
	free(pend);
	return rc;
}

int
api_totp_login(PGconn *conn, struct api_req *ar, struct api_auth *au,
    const char *code, char *err, size_t errlen)
{
	char	 until[QA_TS_LEN];
	uint8_t	*key;
	size_t	 len;
	int64_t	 last, step = 0;
	int	 rc, ok, count = 0;
	const char *why;

	if ((rc = aa_totp_secret(conn, ar, au->admin.id, 0, &key, &len,
	    &last, err, errlen)) != DB_OK)
		return rc;
	if (len == 0)
		return DB_OK;	/* not enrolled */
	if (code == NULL || *code == '\0') {
		seal_free(key, len);
		api_audit(conn, ar, au->admin.vs_id, au->admin.name,
		    "login_failed", NULL, json_pack("{s:s}", "reason",
		    "TOTP code missing"));
		api_req_fail(ar, 401, "totp_required", "this account needs "
		    "a TOTP code: send {\"user\",\"password\",\"totp\"} to "
		    "/login, or the X-Canopy-TOTP header");
		return DB_OK;
	}
	ok = totp_verify(key, len, code, (int64_t)time(NULL), last, &step);
	seal_free(key, len);
	if (ok == 1) {
		rc = qk_totp_use(conn, au->admin.id, step, err, errlen);
		if (rc == DB_OK)
			return DB_OK;
		if (rc != QA_NOTFOUND)
			return rc;
		ok = 0;		/* used by a racing login */
	}
	why = ok == -1 ? "TOTP code malformed" : "wrong or reused TOTP code";
	until[0] = '\0';
	if ((rc = qa_login_failed(conn, au->admin.id, API_LOGIN_FAIL_MAX,
	    API_LOGIN_LOCK_S, &count, until, err, errlen)) != DB_OK &&
	    rc != QA_NOTFOUND)
		return rc;
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "login_failed",
	    NULL, json_pack("{s:s,s:i}", "reason", why, "failures", count));
	if (until[0] != '\0' && count >= API_LOGIN_FAIL_MAX)
		api_req_fail(ar, 401, "account_locked", "wrong TOTP code; "
		    "after %d failed logins in a row the account is locked "
		    "until %s", API_LOGIN_FAIL_MAX, until);
	else
		api_req_fail(ar, 401, "totp_invalid", "wrong, expired or "
		    "already used TOTP code");
	return DB_OK;
}

/* --- /auth/kerberos ------------------------------------------------ */

static const struct api_field aa_keytab_schema[] = {
	{ "keytab_b64",	AF_STRING, 1, 4, KRB_KEYTAB_MAX * 4 / 3 + 4, NULL },
};

static int
aa_physical_admin(struct api_req *ar, const struct api_auth *au)
{
	if (au->admin.vs_id != 0 || au->vs_id != 0) {
		api_req_fail(ar, 403, "forbidden", "the Kerberos keytab "
		    "belongs to the physical server: only its administrators "
		    "may manage it");
		return -1;
	}
	return 0;
}

static json_t *
aa_list_json(char **l, size_t n)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(l[i]));
	return a;
}

static int
aa_kerberos_get(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	char	**l = NULL, kerr[256], *sealed = NULL;
	size_t	  n = 0;
	int	  rc, uploaded;

	if (aa_physical_admin(ar, au) == -1)
		return DB_OK;
	if ((rc = aa_keytab_load(conn, ar->cd, err, errlen)) != DB_OK)
		return rc;
	rc = qk_keytab_get(conn, &sealed, NULL, NULL, err, errlen);
	free(sealed);
	if (rc != DB_OK && rc != QA_NOTFOUND)
		return rc;
	uploaded = rc == DB_OK;
	if (krb_active_principals(&l, &n, kerr, sizeof(kerr)) == -1)
		log_warnx("kerberos: %s", kerr);
	/* The principals only: never a key. */
	ar->resp = json_pack("{s:o,s:b,s:s?}", "principals",
	    aa_list_json(l, n), "enabled", krb_enabled() && n > 0,
	    "source", uploaded ? "upload" : krb_enabled() ? "config" : NULL);
	krb_principals_free(l, n);
	ar->status = 200;
	return DB_OK;
}

static int
aa_kerberos_put(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value	 v[1];
	json_t			*root = NULL;
	uint8_t			*kt = NULL;
	char			 msg[512], **l = NULL, *sealed = NULL;
	size_t			 len = 0, n = 0;
	int			 rc = DB_OK;

	if (aa_physical_admin(ar, au) == -1)
		return DB_OK;
	memset(v, 0, sizeof(v));
	if (api_json_validate(ar->body_text ? ar->body_text : "",
	    ar->body_len, aa_keytab_schema, 1, &root, v, msg,
	    sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if ((kt = b64_decode(v[0].s, strlen(v[0].s), &len)) == NULL ||
	    len == 0 || len > KRB_KEYTAB_MAX) {
		api_req_fail(ar, 400, "bad_request", "keytab_b64: not base64 "
		    "of a keytab of at most %d bytes", KRB_KEYTAB_MAX);
		goto out;
	}
	if (krb_keytab_principals(kt, len, aa_state_dir, &l, &n, msg,
	    sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "keytab_b64: %s", msg);
		goto out;
	}
	if ((sealed = seal_encrypt(ar->cd->pki.master_key, SEAL_KEYTAB, kt,
	    len)) == NULL) {
		snprintf(err, errlen, "cannot seal the keytab");
		rc = DB_ERR;
		goto out;
	}
	if ((rc = qk_keytab_put(conn, sealed, l, n, au->admin.name, err,
	    errlen)) != DB_OK)
		goto out;
	if (krb_install_keytab(kt, len, aa_state_dir, msg,
	    sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "keytab_b64: %s", msg);
		goto out;
	}
	api_audit(conn, ar, 0, au->admin.name, "kerberos_keytab_set",
	    "keytab", json_pack("{s:o}", "principals", aa_list_json(l, n)));
	log_info("kerberos: keytab uploaded by %s: %zu principal(s)",
	    au->admin.name, n);
	ar->resp = json_pack("{s:o,s:b}", "principals", aa_list_json(l, n),
	    "enabled", 1);
	ar->status = 200;
 out:
	if (kt != NULL)
		seal_free(kt, len);
	free(sealed);
	krb_principals_free(l, n);
	json_decref(root);
	return rc;
}

/* --- /role-mappings ------------------------------------------------ */

static const char *const aa_roles[] = {
	"administrator", "operator", "auditor", NULL
};

static const struct api_field aa_rm_schema[] = {
	{ "directory_group", AF_STRING, 1, 1, LDAPVAL_DN_MAX, NULL },
	{ "role",	AF_ENUM, 1, 0, 0, aa_roles },
	{ "scope",	AF_REF, 0, 1, API_PATH_MAX, NULL },
};

static int
aa_rm_create(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value	 v[3];
	json_t			*root = NULL;
	char			 msg[512], ids[24], scs[24];
	int64_t			 gid = 0, id = 0;
	int			 rc;

	memset(v, 0, sizeof(v));
	if (api_json_validate(ar->body_text ? ar->body_text : "",
	    ar->body_len, aa_rm_schema, 3, &root, v, msg,
	    sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if ((rc = db_begin(conn, err, errlen)) != DB_OK)
		goto out;
	if (v[2].present) {
		rc = api_group_ref(conn, ar, au, "scope", v[2].s,
		    au->write_scopes[0] ? au->write_scopes : NULL, &gid, err,
		    errlen);
		if (rc == QA_NOTFOUND) {
			db_rollback(conn);
			rc = DB_OK;
			goto out;
		}
		if (rc != DB_OK)
			goto out;
	} else if (au->write_scopes[0] != '\0') {
		db_rollback(conn);
		api_req_fail(ar, 403, "forbidden", "scope: required: this "
		    "account may only grant roles within its own scope");
		goto out;
	}
	rc = qk_rm_create(conn, au->vs_id, v[0].s, v[1].s, gid, &id, err,
	    errlen);
	if (rc == QA_NOTFOUND) {
		db_rollback(conn);
		api_req_fail(ar, 409, "conflict", "directory_group: this "
		    "mapping exists already");
		rc = DB_OK;
		goto out;
	}
	if (rc != DB_OK)
		goto out;
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	snprintf(scs, sizeof(scs), "%" PRId64, gid);
	api_audit(conn, ar, au->vs_id, au->admin.name, "role_mapping_create",
	    ids, json_pack("{s:s,s:s,s:s?}", "directory_group", v[0].s,
	    "role", v[1].s, "scope", gid ? scs : NULL));
	if ((rc = db_commit(conn, err, errlen)) != DB_OK)
		goto out;
	ar->resp = json_pack("{s:s,s:s,s:s,s:s?}", "id", ids,
	    "directory_group", v[0].s, "role", v[1].s, "scope",
	    gid ? scs : NULL);
	ar->status = 201;
 out:
	json_decref(root);
	return rc;
}

static int
aa_rm_list(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	json_t	*a;
	int	 rc;

	if ((rc = qk_rm_list(conn, au->vs_id, &a, err, errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:o}", "role_mappings", a);
	ar->status = 200;
	return DB_OK;
}

static int
aa_rm_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	long long	 id;
	char		*end;
	int		 rc;

	id = strtoll(ar->pp[0], &end, 10);
	if (*end != '\0' || id <= 0) {
		api_req_fail(ar, 404, "not_found", "no such role mapping");
		return DB_OK;
	}
	rc = qk_rm_delete(conn, au->vs_id, id, err, errlen);
	if (rc == QA_NOTFOUND) {
		api_req_fail(ar, 404, "not_found", "no such role mapping");
		return DB_OK;
	}
	if (rc != DB_OK)
		return rc;
	api_audit(conn, ar, au->vs_id, au->admin.name, "role_mapping_delete",
	    ar->pp[0], NULL);
	ar->status = 204;
	return DB_OK;
}

/* --- /auth/totp ---------------------------------------------------- */

static const struct api_field aa_totp_schema[] = {
	{ "code",	AF_STRING, 1, 1, TOTP_CODE_MAX, NULL },
};

/* Only a local account (with a password) has a second factor here. */
static int
aa_totp_local(struct api_req *ar, const struct api_auth *au)
{
	if (au->admin.pw_hash[0] == '\0') {
		api_req_fail(ar, 409, "conflict", "account '%s' has no "
		    "password: TOTP is for local accounts (Kerberos has its "
		    "own)", au->admin.name);
		return -1;
	}
	return 0;
}

static int
aa_totp_status(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	char	*s, *p;
	int64_t	 last;
	int	 rc;

	if ((rc = qk_totp_get(conn, au->admin.id, &s, &p, &last, err,
	    errlen)) != DB_OK)
		return rc;
	ar->resp = json_pack("{s:b,s:b}", "enabled", s != NULL, "pending",
	    p != NULL);
	free(s);
	free(p);
	ar->status = 200;
	return DB_OK;
}

static int
aa_totp_enrol(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	uint8_t	 key[TOTP_SECRET_LEN];
	char	 b32[TOTP_B32_MAX], *sealed, *uri = NULL, *e1, *e2;
	int	 rc;

	if (aa_totp_local(ar, au) == -1)
		return DB_OK;
	if (RAND_bytes(key, sizeof(key)) != 1) {
		snprintf(err, errlen, "RAND_bytes failed");
		return DB_ERR;
	}
	base32_encode(key, sizeof(key), b32);
	sealed = seal_encrypt(ar->cd->pki.master_key, SEAL_TOTP, key,
	    sizeof(key));
	explicit_bzero(key, sizeof(key));
	if (sealed == NULL) {
		snprintf(err, errlen, "cannot seal the TOTP secret");
		return DB_ERR;
	}
	rc = qk_totp_set_pending(conn, au->admin.id, sealed, err, errlen);
	free(sealed);
	if (rc != DB_OK)
		return rc;
	e1 = evhttp_encode_uri(au->admin.name);
	e2 = evhttp_encode_uri(ar->server);
	if (e1 != NULL && e2 != NULL && asprintf(&uri, "otpauth://totp/"
	    "Canopy:%s?secret=%s&issuer=Canopy%%20%s&algorithm=SHA1&"
	    "digits=%d&period=%d", e1, b32, e2, TOTP_DIGITS,
	    TOTP_STEP_S) == -1)
		uri = NULL;
	free(e1);
	free(e2);
	if (uri == NULL) {
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "totp_enrol",
	    au->admin.name, NULL);
	/* Shown this once: only the sealed secret is stored. */
	ar->resp = json_pack("{s:s,s:s,s:s}", "secret", b32, "uri", uri,
	    "next", "POST /api/v1/auth/totp/confirm {\"code\"} with a "
	    "first code to turn it on");
	explicit_bzero(b32, sizeof(b32));
	explicit_bzero(uri, strlen(uri));
	free(uri);
	ar->status = 201;
	return DB_OK;
}

static int
aa_totp_confirm(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	struct api_value	 v[1];
	json_t			*root = NULL;
	char			 msg[256];
	uint8_t			*key;
	size_t			 len;
	int64_t			 last, step = 0;
	int			 rc, ok;

	memset(v, 0, sizeof(v));
	if (api_json_validate(ar->body_text ? ar->body_text : "",
	    ar->body_len, aa_totp_schema, 1, &root, v, msg,
	    sizeof(msg)) == -1) {
		api_req_fail(ar, 400, "bad_request", "%s", msg);
		return DB_OK;
	}
	if ((rc = aa_totp_secret(conn, ar, au->admin.id, 1, &key, &len,
	    &last, err, errlen)) != DB_OK)
		goto out;
	if (len == 0) {
		api_req_fail(ar, 409, "conflict", "no TOTP enrolment is "
		    "pending: POST /auth/totp first");
		goto out;
	}
	ok = totp_verify(key, len, v[0].s, (int64_t)time(NULL), 0, &step);
	seal_free(key, len);
	if (ok != 1) {
		api_req_fail(ar, 400, "bad_request", "code: %s",
		    ok == -1 ? "must be 6 digits" : "wrong code; check the "
		    "authenticator's clock and try the current code");
		goto out;
	}
	if ((rc = qk_totp_confirm(conn, au->admin.id, step, err,
	    errlen)) == QA_NOTFOUND) {
		api_req_fail(ar, 409, "conflict", "no TOTP enrolment is "
		    "pending");
		rc = DB_OK;
		goto out;
	}
	if (rc != DB_OK)
		goto out;
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "totp_enabled",
	    au->admin.name, NULL);
	ar->resp = json_pack("{s:b}", "enabled", 1);
	ar->status = 200;
 out:
	json_decref(root);
	return rc;
}

static int
aa_totp_delete(PGconn *conn, struct api_req *ar, const struct api_auth *au,
    char *err, size_t errlen)
{
	int	 rc;

	if ((rc = qk_totp_clear(conn, au->admin.id, err, errlen)) != DB_OK)
		return rc;
	api_audit(conn, ar, au->admin.vs_id, au->admin.name, "totp_disabled",
	    au->admin.name, NULL);
	ar->status = 204;
	return DB_OK;
}

const struct api_endpoint api_endpoints_auth[] = {
	{ EVHTTP_REQ_GET, "/auth/kerberos", API_A_ADMIN, aa_kerberos_get,
	    NULL },
	{ EVHTTP_REQ_PUT, "/auth/kerberos", API_A_ADMIN, aa_kerberos_put,
	    NULL },
	{ EVHTTP_REQ_GET, "/auth/totp", API_A_READ, aa_totp_status, NULL },
	{ EVHTTP_REQ_POST, "/auth/totp", API_A_READ, aa_totp_enrol, NULL },
	{ EVHTTP_REQ_POST, "/auth/totp/confirm", API_A_READ, aa_totp_confirm,
	    NULL },
	{ EVHTTP_REQ_DELETE, "/auth/totp", API_A_READ, aa_totp_delete, NULL },
	{ EVHTTP_REQ_GET, "/role-mappings", API_A_READ, aa_rm_list, NULL },
	{ EVHTTP_REQ_POST, "/role-mappings", API_A_ADMIN, aa_rm_create,
	    NULL },
	{ EVHTTP_REQ_DELETE, "/role-mappings/{}", API_A_ADMIN, aa_rm_delete,
	    NULL },
	{ 0, NULL, 0, NULL, NULL }
};
