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
 * SASL/GSSAPI binds (directory/ldap_gss.h).  The keytab (sealed in the
 * database) is written to a private file only for the time it takes to get
 * a ticket; the ticket lives in a MEMORY ccache of this poll alone,
 * selected for this thread only (gss_krb5_ccache_name).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <ldap.h>

#include "log.h"
#include "util.h"

#include "ldap.h"
#include "ldap_gss.h"

/*
 * Cyrus SASL's sasl_interact_t (sasl/sasl.h is not installed; the layout
 * is part of its stable ABI).  GSSAPI asks at most for an authorisation
 * identity: we give none.
 */
struct gss_sasl_interact {
	unsigned long	 id;
	const char	*challenge;
	const char	*prompt;
	const char	*defresult;
	const void	*result;
	unsigned	 len;
};
#define GSS_SASL_CB_LIST_END	0

static int
gss_interact(LDAP *ld, unsigned flags, void *defaults, void *in)
{
	struct gss_sasl_interact	*i;

	for (i = in; i->id != GSS_SASL_CB_LIST_END; i++) {
		i->result = "";
		i->len = 0;
	}
	return LDAP_SUCCESS;
}

static void
gss_krberr(krb5_context ctx, krb5_error_code kc, const char *what, char *err,
    size_t errlen)
{
	const char	*m = krb5_get_error_message(ctx, kc);

	snprintf(err, errlen, "GSSAPI: %s: %s", what, m);
	krb5_free_error_message(ctx, m);
}

int
dir_gss_bind(LDAP *ld, const struct dir_source *s, char *err, size_t errlen)
{
	krb5_context		 ctx = NULL;
	krb5_keytab		 kt = NULL;
	krb5_ccache		 cc = NULL;
	krb5_principal		 me = NULL;
	krb5_creds		 creds;
	krb5_error_code		 kc;
	OM_uint32		 minor;
	const char		*prev = NULL;
	char			*ccname = NULL, *prevcopy = NULL;
	int			 swapped = 0;
	char			 path[] = "/tmp/canopy-ktXXXXXX", ktname[64];
	int			 fd = -1, rc, ret = -1, have_creds = 0;

	memset(&creds, 0, sizeof(creds));
	if (s->principal == NULL || s->keytab == NULL || s->keytab_len == 0) {
		snprintf(err, errlen, "GSSAPI: a principal and a keytab are "
		    "needed");
		return -1;
	}
	if ((kc = krb5_init_context(&ctx)) != 0) {
		snprintf(err, errlen, "GSSAPI: cannot initialise Kerberos");
		return -1;
	}
	if ((fd = mkstemp(path)) == -1 || fchmod(fd, 0600) == -1 ||
	    write(fd, s->keytab, s->keytab_len) != (ssize_t)s->keytab_len) {
		snprintf(err, errlen, "GSSAPI: cannot write the keytab: %s",
		    strerror(errno));
		goto out;
	}
	snprintf(ktname, sizeof(ktname), "FILE:%s", path);
	if ((kc = krb5_kt_resolve(ctx, ktname, &kt)) != 0) {
		gss_krberr(ctx, kc, "keytab", err, errlen);
		goto out;
	}
	if ((kc = krb5_parse_name(ctx, s->principal, &me)) != 0) {
		gss_krberr(ctx, kc, s->principal, err, errlen);
		goto out;
	}
	if ((kc = krb5_get_init_creds_keytab(ctx, &creds, me, kt, 0, NULL,
	    NULL)) != 0) {
		gss_krberr(ctx, kc, "wrong credentials or KDC unreachable "
		    "(getting a ticket)", err, errlen);
		goto out;
	}
	have_creds = 1;
	if ((kc = krb5_cc_new_unique(ctx, "MEMORY", NULL, &cc)) != 0 ||
	    (kc = krb5_cc_initialize(ctx, cc, me)) != 0 ||
	    (kc = krb5_cc_store_cred(ctx, cc, &creds)) != 0) {
		gss_krberr(ctx, kc, "credential cache", err, errlen);
		goto out;
	}
	/*
	 * libldap takes a GSS credential (LDAP_OPT_X_SASL_GSS_CREDS) only
	 * once its SASL context exists, inside the bind.  So the SASL
	 * GSSAPI plugin's default credential is pointed at our MEMORY cache
	 * by gss_krb5_ccache_name, which MIT keeps per thread (not the
	 * process-wide KRB5CCNAME), and put back after the bind.
	 */
	if ((kc = krb5_cc_get_full_name(ctx, cc, &ccname)) != 0) {
		gss_krberr(ctx, kc, "credential cache name", err, errlen);
		goto out;
	}
	if (gss_krb5_ccache_name(&minor, ccname, &prev) != GSS_S_COMPLETE) {
		snprintf(err, errlen, "GSSAPI: cannot select the credential "
		    "cache");
		goto out;
	}
	prevcopy = prev != NULL ? strdup(prev) : NULL;
	swapped = 1;
	if (ldap_set_option(ld, LDAP_OPT_X_SASL_NOCANON, LDAP_OPT_ON)) {
		snprintf(err, errlen, "GSSAPI: cannot set SASL options");
		goto out;
	}
	rc = ldap_sasl_interactive_bind_s(ld, NULL, "GSSAPI", NULL, NULL,
	    LDAP_SASL_QUIET, gss_interact, NULL);
	if (rc != LDAP_SUCCESS) {
		char	*m = NULL;

		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &m);
		snprintf(err, errlen, "%s: GSSAPI bind as %s: %s%s%s",
		    rc == LDAP_INVALID_CREDENTIALS ? "wrong credentials" :
		    rc == LDAP_SERVER_DOWN ? "server unreachable" :
		    "bind failed", s->principal, ldap_err2string(rc),
		    m ? ": " : "", m ? m : "");
		ldap_memfree(m);
		goto out;
	}
	ret = 0;
 out:
	if (swapped)
		gss_krb5_ccache_name(&minor, prevcopy, NULL);
	free(prevcopy);
	if (ccname != NULL)
		krb5_free_string(ctx, ccname);
	if (have_creds)
		krb5_free_cred_contents(ctx, &creds);
	if (cc != NULL)
		krb5_cc_destroy(ctx, cc);
	if (me != NULL)
		krb5_free_principal(ctx, me);
	if (kt != NULL)
		krb5_kt_close(ctx, kt);
	if (fd != -1) {
		unlink(path);
		close(fd);
	}
	krb5_free_context(ctx);
	return ret;
}
