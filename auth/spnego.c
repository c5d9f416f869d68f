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

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <com_err.h>

#include "log.h"
#include "util.h"

#include "auth.h"

/*
 * SPNEGO acceptor.  The keytab in use is named by krb_ktname: "FILE:path"
 * from the configuration, or "MEMORY:canopy-N" for an uploaded one, whose
 * entries live in the process (held open by krb_holder).  Each accept
 * acquires an acceptor credential from that keytab with the cred store
 * (gss_acquire_cred_from), the rcache named there too: nothing is set in
 * the environment, and each worker thread uses its own contexts.
 */

static pthread_mutex_t	 krb_mtx = PTHREAD_MUTEX_INITIALIZER;
static char		 krb_ktname[1100];	/* "" when disabled */
static char		 krb_conf_kt[1100];
static char		 krb_rcname[1100];
static char		 krb_service[KRB_PRINCIPAL_MAX];
static krb5_context	 krb_holder_ctx;
static krb5_keytab	 krb_holder;		/* the MEMORY: keytab */
static unsigned		 krb_gen;
static atomic_int	 krb_loaded;

void
krb_configure(const char *conf_keytab, const char *rcache_path,
    const char *service)
{
	pthread_mutex_lock(&krb_mtx);
	if (service != NULL)
		strlcpy(krb_service, service, sizeof(krb_service));
	krb_conf_kt[0] = '\0';
	if (conf_keytab != NULL && *conf_keytab != '\0')
		snprintf(krb_conf_kt, sizeof(krb_conf_kt), "FILE:%s",
		    conf_keytab);
	if (rcache_path != NULL && *rcache_path != '\0')
		snprintf(krb_rcname, sizeof(krb_rcname), "file2:%s",
		    rcache_path);
	/* An uploaded keytab wins over the configured file. */
	if (krb_holder == NULL)
		strlcpy(krb_ktname, krb_conf_kt, sizeof(krb_ktname));
	pthread_mutex_unlock(&krb_mtx);
}

int
krb_need_load(void)
{
	int	 zero = 0;

	return atomic_compare_exchange_strong(&krb_loaded, &zero, 1);
}

void
krb_retry_load(void)
{
	atomic_store(&krb_loaded, 0);
}

int
krb_enabled(void)
{
	int	 on;

	pthread_mutex_lock(&krb_mtx);
	on = krb_ktname[0] != '\0';
	pthread_mutex_unlock(&krb_mtx);
	return on;
}

static void
krb_errmsg(krb5_context ctx, krb5_error_code code, const char *what,
    char *err, size_t errlen)
{
	const char	*m = krb5_get_error_message(ctx, code);

	snprintf(err, errlen, "%s: %s", what, m);
	krb5_free_error_message(ctx, m);
}

/* Writes the bytes to a private temporary file: its path in tmp. */
static int
krb_tmpfile(const void *data, size_t len, const char *tmpdir, char *tmp,
    size_t tmplen, char *err, size_t errlen)
{
	int	 fd;

	snprintf(tmp, tmplen, "%s/.keytab.XXXXXX", tmpdir);
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errlen, "keytab: %s: %s", tmp, strerror(errno));
		return -1;
	}
	(void)fchmod(fd, 0600);
	if (write(fd, data, len) != (ssize_t)len) {
		snprintf(err, errlen, "keytab: write: %s", strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return 0;
}

static int
krb_add_principal(char ***list, size_t *n, const char *p)
{
	char	**nl;
	size_t	 i;

	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i], p) == 0)
			return 0;
	if ((nl = reallocarray(*list, *n + 1, sizeof(*nl))) == NULL)
		return -1;
	*list = nl;
	if ((nl[*n] = strdup(p)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

void
krb_principals_free(char **list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/*
 * Walks the keytab named ktname: lists its principals and, when dst is
 * set, copies every entry into it.  0 with at least one entry, else -1.
 */
static int
krb_walk(krb5_context ctx, const char *ktname, krb5_keytab dst,
    char ***list, size_t *n, char *err, size_t errlen)
{
	krb5_keytab		 kt;
	krb5_kt_cursor		 cur;
	krb5_keytab_entry	 ent;
	krb5_error_code		 code;
	char			*name;
	int			 count = 0, rv = -1;

	if ((code = krb5_kt_resolve(ctx, ktname, &kt)) != 0) {
		krb_errmsg(ctx, code, "keytab", err, errlen);
		return -1;
	}
	if ((code = krb5_kt_start_seq_get(ctx, kt, &cur)) != 0) {
		krb_errmsg(ctx, code, "keytab", err, errlen);
		krb5_kt_close(ctx, kt);
		return -1;
	}
	while ((code = krb5_kt_next_entry(ctx, kt, &ent, &cur)) == 0) {
		if (list != NULL && krb5_unparse_name(ctx, ent.principal,
		    &name) == 0) {
			if (krb_add_principal(list, n, name) == -1)
				code = ENOMEM;
			krb5_free_unparsed_name(ctx, name);
		}
		if (code == 0 && dst != NULL)
			code = krb5_kt_add_entry(ctx, dst, &ent);
		krb5_free_keytab_entry_contents(ctx, &ent);
		if (code != 0) {
			krb_errmsg(ctx, code, "keytab", err, errlen);
			break;
		}
		count++;
	}
	krb5_kt_end_seq_get(ctx, kt, &cur);
	krb5_kt_close(ctx, kt);
	if (code != 0 && code != KRB5_KT_END) {
		if (count == 0 || err[0] == '\0')
			krb_errmsg(ctx, code, "keytab: not a keytab", err,
			    errlen);
		return -1;
	}
	if (count == 0)
		snprintf(err, errlen, "keytab: holds no keys");
	else
		rv = 0;
	return rv;
}

int
krb_keytab_principals(const void *data, size_t len, const char *tmpdir,
    char ***list, size_t *n, char *err, size_t errlen)
{
	krb5_context	 ctx;
	char		 tmp[1100], name[1200];
	int		 rv;

	*list = NULL;
	*n = 0;
	err[0] = '\0';
	if (len < 2 || ((const uint8_t *)data)[0] != 5) {
		snprintf(err, errlen, "keytab_b64: not a keytab (MIT/Heimdal "
		    "format version 5.x expected)");
		return -1;
	}
	if (krb5_init_context(&ctx) != 0) {
		snprintf(err, errlen, "krb5_init_context failed");
		return -1;
	}
	if (krb_tmpfile(data, len, tmpdir, tmp, sizeof(tmp), err,
	    errlen) == -1) {
		krb5_free_context(ctx);
		return -1;
	}
	snprintf(name, sizeof(name), "FILE:%s", tmp);
	rv = krb_walk(ctx, name, NULL, list, n, err, errlen);
	unlink(tmp);
	krb5_free_context(ctx);
	if (rv == -1) {
		krb_principals_free(*list, *n);
		*list = NULL;
		*n = 0;
	}
	return rv;
}

int
krb_install_keytab(const void *data, size_t len, const char *tmpdir,
    char *err, size_t errlen)
{
	krb5_keytab	 mem = NULL;
	krb5_error_code	 code;
	char		 tmp[1100], src[1200], dst[64];
	int		 rv = -1;

	err[0] = '\0';
	pthread_mutex_lock(&krb_mtx);
	if (krb_holder_ctx == NULL && krb5_init_context(&krb_holder_ctx)) {
		snprintf(err, errlen, "krb5_init_context failed");
		goto out;
	}
	if (krb_tmpfile(data, len, tmpdir, tmp, sizeof(tmp), err,
	    errlen) == -1)
		goto out;
	snprintf(src, sizeof(src), "FILE:%s", tmp);
	snprintf(dst, sizeof(dst), "MEMORY:canopy-%u", ++krb_gen);
	if ((code = krb5_kt_resolve(krb_holder_ctx, dst, &mem)) != 0) {
		krb_errmsg(krb_holder_ctx, code, "keytab", err, errlen);
		unlink(tmp);
		goto out;
	}
	rv = krb_walk(krb_holder_ctx, src, mem, NULL, NULL, err, errlen);
	/* The keys stay in memory only. */
	unlink(tmp);
	if (rv == -1) {
		krb5_kt_close(krb_holder_ctx, mem);
		goto out;
	}
	/* A worker mid-accept holds its own reference to the old one. */
	if (krb_holder != NULL)
		krb5_kt_close(krb_holder_ctx, krb_holder);
	krb_holder = mem;
	strlcpy(krb_ktname, dst, sizeof(krb_ktname));
	atomic_store(&krb_loaded, 1);
 out:
	pthread_mutex_unlock(&krb_mtx);
	return rv;
}

int
krb_active_principals(char ***list, size_t *n, char *err, size_t errlen)
{
	krb5_context	 ctx;
	char		 name[sizeof(krb_ktname)];
	int		 rv;

	*list = NULL;
	*n = 0;
	err[0] = '\0';
	pthread_mutex_lock(&krb_mtx);
	strlcpy(name, krb_ktname, sizeof(name));
	pthread_mutex_unlock(&krb_mtx);
	if (name[0] == '\0')
		return 0;
	if (krb5_init_context(&ctx) != 0) {
		snprintf(err, errlen, "krb5_init_context failed");
		return -1;
	}
	rv = krb_walk(ctx, name, NULL, list, n, err, errlen);
	krb5_free_context(ctx);
	return rv;
}

/* The GSS (and mechanism) messages for a status, for the log. */
static void
krb_gss_text(OM_uint32 maj, OM_uint32 min, char *out, size_t outlen)
{
	OM_uint32	 m, ctx = 0;
	gss_buffer_desc	 b;

	out[0] = '\0';
	do {
		if (gss_display_status(&m, maj, GSS_C_GSS_CODE, GSS_C_NO_OID,
		    &ctx, &b) != GSS_S_COMPLETE)
			break;
		strlcat(out, b.value, outlen);
		gss_release_buffer(&m, &b);
	} while (ctx != 0);
	if (min == 0)
		return;
	ctx = 0;
	do {
		if (gss_display_status(&m, min, GSS_C_MECH_CODE, GSS_C_NO_OID,
		    &ctx, &b) != GSS_S_COMPLETE)
			break;
		strlcat(out, ": ", outlen);
		strlcat(out, b.value, outlen);
		gss_release_buffer(&m, &b);
	} while (ctx != 0);
}

/*
 * The mechanism glue hands back its own minor codes, not krb5's: find the
 * krb5 error by its message in the displayed status instead.
 */
static krb5_error_code
krb_unmap(OM_uint32 min, const char *text)
{
	static const krb5_error_code codes[] = {
		KRB5KRB_AP_ERR_SKEW, KRB5KRB_AP_ERR_TKT_EXPIRED,
		KRB5KRB_AP_ERR_TKT_NYV, KRB5KRB_AP_ERR_REPEAT,
		KRB5_KT_NOTFOUND, KRB5KRB_AP_ERR_NOKEY,
		KRB5KRB_AP_WRONG_PRINC, KRB5KRB_AP_ERR_NOT_US,
		KRB5KRB_AP_ERR_BADKEYVER, KRB5KRB_AP_ERR_BAD_INTEGRITY,
		KRB5KRB_AP_ERR_MODIFIED
	};
	const char	*m;
	size_t		 i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if ((OM_uint32)codes[i] == min)
			return codes[i];
		m = error_message(codes[i]);
		if (m != NULL && *m != '\0' && strstr(text, m) != NULL)
			return codes[i];
	}
	/* The extended message of a key missing from the keytab. */
	if (strstr(text, "not found in keytab") != NULL)
		return KRB5_KT_NOTFOUND;
	return (krb5_error_code)min;
}

/* Sorts a failed accept into what the person and the log are told. */
static void
krb_classify(struct krb_accept *ka, OM_uint32 maj, OM_uint32 min,
    const char *ktname)
{
	char	 text[400];

	krb_gss_text(maj, min, text, sizeof(text));
	switch (krb_unmap(min, text)) {
	case KRB5KRB_AP_ERR_SKEW:
		ka->code = KRB_E_SKEW;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the clocks of "
		    "this computer and the server differ too much");
		snprintf(ka->log, sizeof(ka->log), "clock skew too great "
		    "(%s)", text);
		return;
	case KRB5KRB_AP_ERR_TKT_EXPIRED:
	case KRB5KRB_AP_ERR_TKT_NYV:
		ka->code = KRB_E_EXPIRED;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the ticket has "
		    "expired (or is not yet valid); run kinit again");
		snprintf(ka->log, sizeof(ka->log), "ticket expired or not yet "
		    "valid (%s)", text);
		return;
	case KRB5KRB_AP_ERR_REPEAT:
		ka->code = KRB_E_REPLAY;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: this "
		    "authenticator was already used (a replay); send a fresh "
		    "one");
		snprintf(ka->log, sizeof(ka->log), "replayed authenticator "
		    "(%s)", text);
		return;
	case KRB5_KT_NOTFOUND:
	case KRB5KRB_AP_ERR_NOKEY:
	case KRB5KRB_AP_WRONG_PRINC:
	case KRB5KRB_AP_ERR_NOT_US:
		ka->code = KRB_E_NOKEY;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the ticket is "
		    "for a service principal this server has no key for");
		snprintf(ka->log, sizeof(ka->log), "keytab %.200s is missing "
		    "the service principal of the ticket (%.250s)", ktname, text);
		return;
	case KRB5KRB_AP_ERR_BADKEYVER:
	case KRB5KRB_AP_ERR_BAD_INTEGRITY:
	case KRB5KRB_AP_ERR_MODIFIED:
		ka->code = KRB_E_BADKEY;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the server's "
		    "key does not match the ticket (stale keytab)");
		snprintf(ka->log, sizeof(ka->log), "keytab %.200s has another "
		    "key or key version than the KDC (%.250s)", ktname, text);
		return;
	default:
		break;
	}
	if (maj == GSS_S_DEFECTIVE_TOKEN || GSS_ROUTINE_ERROR(maj) ==
	    GSS_S_BAD_MECH) {
		ka->code = KRB_E_MALFORMED;
		snprintf(ka->msg, sizeof(ka->msg), "Negotiate: the token is "
		    "not a valid SPNEGO/Kerberos token");
	} else {
		ka->code = KRB_E_OTHER;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the ticket was "
		    "refused; the server log has details");
	}
	snprintf(ka->log, sizeof(ka->log), "%s", text);
}

/*
 * kerberos-service: only a ticket for that principal (with or without its
 * realm) is taken.  Checked on the accepted context rather than by a
 * desired name at acquire time, which leaks in MIT 1.20 when it misses.
 */
static int
krb_check_target(gss_ctx_id_t gctx, const char *svc, struct krb_accept *ka)
{
	gss_name_t	 targ = GSS_C_NO_NAME;
	gss_buffer_desc	 tb = GSS_C_EMPTY_BUFFER;
	OM_uint32	 min, m;
	char		 t[KRB_PRINCIPAL_MAX];
	size_t		 n;
	int		 ok = 0;

	if (gss_inquire_context(&min, gctx, NULL, &targ, NULL, NULL, NULL,
	    NULL, NULL) == GSS_S_COMPLETE && targ != GSS_C_NO_NAME &&
	    gss_display_name(&min, targ, &tb, NULL) == GSS_S_COMPLETE &&
	    tb.length < sizeof(t)) {
		memcpy(t, tb.value, tb.length);
		t[tb.length] = '\0';
		n = strlen(svc);
		ok = strcmp(t, svc) == 0 || (strchr(svc, '@') == NULL &&
		    strncmp(t, svc, n) == 0 && t[n] == '@');
	} else
		strlcpy(t, "?", sizeof(t));
	gss_release_buffer(&m, &tb);
	gss_release_name(&m, &targ);
	if (ok)
		return 0;
	ka->code = KRB_E_NOKEY;
	snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the ticket is for "
	    "another service principal than this server's");
	snprintf(ka->log, sizeof(ka->log), "the ticket is for %.200s, not "
	    "for kerberos-service %.200s", t, svc);
	return -1;
}

int
krb_accept_token(const char *b64, struct krb_accept *ka)
{
	gss_key_value_element_desc	 el[2];
	gss_key_value_set_desc		 store;
	gss_cred_id_t			 cred = GSS_C_NO_CREDENTIAL;
	gss_ctx_id_t			 gctx = GSS_C_NO_CONTEXT;
	gss_name_t			 src = GSS_C_NO_NAME;
	gss_buffer_desc			 in, out = GSS_C_EMPTY_BUFFER;
	gss_buffer_desc			 nb = GSS_C_EMPTY_BUFFER;
	OM_uint32			 maj, min, m;
	char				 ktname[sizeof(krb_ktname)];
	char				 rcname[sizeof(krb_rcname)];
	char				 svc[sizeof(krb_service)];
	uint8_t				*tok = NULL;
	size_t				 toklen = 0;

	memset(ka, 0, sizeof(*ka));
	pthread_mutex_lock(&krb_mtx);
	strlcpy(ktname, krb_ktname, sizeof(ktname));
	strlcpy(rcname, krb_rcname, sizeof(rcname));
	strlcpy(svc, krb_service, sizeof(svc));
	pthread_mutex_unlock(&krb_mtx);
	if (ktname[0] == '\0') {
		ka->code = KRB_E_DISABLED;
		snprintf(ka->msg, sizeof(ka->msg), "Negotiate (Kerberos) is "
		    "not enabled on this server: no keytab; use Basic or "
		    "Bearer");
		snprintf(ka->log, sizeof(ka->log), "no keytab configured or "
		    "uploaded");
		return -1;
	}
	while (*b64 == ' ')
		b64++;
	if (*b64 == '\0' || (tok = b64_decode(b64, strlen(b64),
	    &toklen)) == NULL || toklen == 0) {
		free(tok);
		ka->code = KRB_E_MALFORMED;
		snprintf(ka->msg, sizeof(ka->msg), "Negotiate: the token is "
		    "not base64");
		snprintf(ka->log, sizeof(ka->log), "token not base64");
		return -1;
	}
	el[0].key = "keytab";
	el[0].value = ktname;
	store.count = 1;
	store.elements = el;
	if (rcname[0] != '\0') {
		el[1].key = "rcache";
		el[1].value = rcname;
		store.count = 2;
	}
	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE,
	    GSS_C_NO_OID_SET, GSS_C_ACCEPT, &store, &cred, NULL, NULL);
	if (GSS_ERROR(maj)) {
		krb_classify(ka, maj, min, ktname);
		if (ka->code == KRB_E_OTHER) {
			char why[sizeof(ka->log)];

			strlcpy(why, ka->log, sizeof(why));
			ka->code = KRB_E_NOKEY;
			snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the "
			    "server's keytab is unusable; the server log has "
			    "details");
			snprintf(ka->log, sizeof(ka->log), "keytab %.200s: "
			    "cannot acquire acceptor credentials: %.250s",
			    ktname, why);
		}
		goto fail;
	}
	in.value = tok;
	in.length = toklen;
	maj = gss_accept_sec_context(&min, &gctx, cred, &in,
	    GSS_C_NO_CHANNEL_BINDINGS, &src, NULL, &out, NULL, NULL, NULL);
	if (GSS_ERROR(maj)) {
		krb_classify(ka, maj, min, ktname);
		goto fail;
	}
	if (maj & GSS_S_CONTINUE_NEEDED) {
		ka->code = KRB_E_CONTINUE;
		snprintf(ka->msg, sizeof(ka->msg), "Negotiate: only Kerberos "
		    "is accepted (NTLM and multi-round SPNEGO are not)");
		snprintf(ka->log, sizeof(ka->log), "SPNEGO needs another "
		    "round (NTLM or a mechanism list without Kerberos)");
		goto fail;
	}
	if (gss_display_name(&min, src, &nb, NULL) != GSS_S_COMPLETE ||
	    nb.length == 0 || nb.length >= sizeof(ka->principal) ||
	    memchr(nb.value, '\0', nb.length) != NULL) {
		ka->code = KRB_E_OTHER;
		snprintf(ka->msg, sizeof(ka->msg), "Kerberos: the client "
		    "principal is unusable");
		snprintf(ka->log, sizeof(ka->log), "client principal name "
		    "missing or too long");
		goto fail;
	}
	memcpy(ka->principal, nb.value, nb.length);
	ka->principal[nb.length] = '\0';
	if (svc[0] != '\0' && krb_check_target(gctx, svc, ka) == -1)
		goto fail;
	if (out.length > 0 && (ka->out_b64 = b64_encode(out.value,
	    out.length)) == NULL) {
		ka->code = KRB_E_OTHER;
		snprintf(ka->msg, sizeof(ka->msg), "out of memory");
		snprintf(ka->log, sizeof(ka->log), "out of memory");
		goto fail;
	}
	ka->code = KRB_OK;
	gss_release_buffer(&m, &nb);
	gss_release_buffer(&m, &out);
	gss_release_name(&m, &src);
	gss_delete_sec_context(&m, &gctx, GSS_C_NO_BUFFER);
	gss_release_cred(&m, &cred);
	free(tok);
	return 0;
 fail:
	gss_release_buffer(&m, &nb);
	gss_release_buffer(&m, &out);
	gss_release_name(&m, &src);
	if (gctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&m, &gctx, GSS_C_NO_BUFFER);
	if (cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&m, &cred);
	free(tok);
	return -1;
}

void
krb_accept_clear(struct krb_accept *ka)
{
	free(ka->out_b64);
	ka->out_b64 = NULL;
}
