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

#ifndef CANOPY_AUTH_H
#define CANOPY_AUTH_H

#include <stddef.h>

/*
 * Local passwords: scrypt (memory-hard) with a random 16-byte salt, stored
 * as "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>".  The parameters are
 * read back from the string, so they can be raised later.  Slow by design:
 * call only on a worker thread, never on the event loop.
 */
#define PW_HASH_MAX	256

int	 pw_hash(const char *password, char *out, size_t outlen);
/* 1: matches, 0: does not, -1: the stored string is malformed. */
int	 pw_verify(const char *password, const char *stored);

/* Constant-time comparison. */
int	 ct_equal(const void *, const void *, size_t);

/*
 * Kerberos SSO (auth/spnego.c): SPNEGO accepted with the server's keytab,
 * named in the configuration or uploaded (then held in a MEMORY: keytab,
 * never on disk), so no process-global KRB5_KTNAME is needed.  The replay
 * cache is a file of this server's own in its state directory.  Accepting
 * is CPU work: call it on a worker thread, never on the event loop.
 */
#define KRB_PRINCIPAL_MAX	256

enum krb_err {
	KRB_OK = 0,
	KRB_E_DISABLED,		/* no keytab configured or uploaded */
	KRB_E_MALFORMED,	/* not base64, not a GSS token */
	KRB_E_SKEW,		/* clock skew too great */
	KRB_E_EXPIRED,		/* ticket expired (or not yet valid) */
	KRB_E_REPLAY,		/* authenticator seen before */
	KRB_E_NOKEY,		/* keytab lacks the service principal */
	KRB_E_BADKEY,		/* keytab key or version does not match */
	KRB_E_CONTINUE,		/* needs another round: not supported */
	KRB_E_OTHER
};

struct krb_accept {
	enum krb_err	 code;
	char		 principal[KRB_PRINCIPAL_MAX];	/* alice@REALM */
	char		*out_b64;	/* mutual-auth token, or NULL */
	char		 msg[256];	/* for the person */
	char		 log[512];	/* for the log, precise */
};

/*
 * The keytab file from the configuration ("" none), the rcache file, and
 * the service principal to accept for ("" or NULL: any in the keytab).
 */
void	 krb_configure(const char *conf_keytab, const char *rcache_path,
	    const char *service);
/* Installs an uploaded keytab (its bytes) in place of the current one. */
int	 krb_install_keytab(const void *, size_t, const char *tmpdir,
	    char *err, size_t errlen);
/* The principals in keytab bytes (malloc'd array of malloc'd strings). */
int	 krb_keytab_principals(const void *, size_t, const char *tmpdir,
	    char ***list, size_t *n, char *err, size_t errlen);
/* The principals of the keytab in use (uploaded, else configured). */
int	 krb_active_principals(char ***list, size_t *n, char *err,
	    size_t errlen);
void	 krb_principals_free(char **, size_t);
int	 krb_enabled(void);
/* 1 the first time it is called: the uploaded keytab should be loaded. */
int	 krb_need_load(void);
/* The load failed (database down): krb_need_load says 1 again. */
void	 krb_retry_load(void);
int	 krb_accept_token(const char *b64, struct krb_accept *);
void	 krb_accept_clear(struct krb_accept *);

#endif
