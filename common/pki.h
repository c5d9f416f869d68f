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

#ifndef CANOPY_PKI_H
#define CANOPY_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/*
 * A server's keys, in its state directory (mode 0700, files 0600):
 *   ca.key ca.pem          its own CA (ECDSA P-256, 10 years)
 *   server.key server.pem  its TLS certificate, signed by the CA, with SANs
 *                          for its name, the host name, localhost, 127.0.0.1
 *                          and ::1
 *   master.key             32 random bytes that encrypt stored secrets
 * Created on first start if absent; never overwritten.
 */
#define PKI_FPR_LEN	(7 + 32 * 3)	/* "SHA256:" + "AB:" * 32, NUL incl. */

struct pki {
	char		 dir[1024];
	X509		*ca_cert;
	EVP_PKEY	*ca_key;
	char		*ca_pem;			/* malloc'd */
	char		 ca_fingerprint[PKI_FPR_LEN];	/* "SHA256:AB:CD:…" */
	uint8_t		 master_key[32];
};

int	 pki_init(const char *dir, const char *server_name, char *err,
	    size_t errlen);
int	 pki_load(const char *dir, struct pki *, char *err, size_t errlen);
void	 pki_free(struct pki *);		/* zeroes the keys */

/*
 * Verifies the CSR's signature and key (EC P-256/P-384 or RSA >= 2048) and
 * issues a client certificate with subject CN=cn, valid for days, with
 * clientAuth extended key usage.  Returns malloc'd PEM or NULL with err.
 * Pure apart from the CA it is given: a fuzzable decoder of csr_pem.
 */
char	*pki_sign_csr(const struct pki *, const char *csr_pem, size_t len,
	    const char *cn, int days, char *err, size_t errlen);

/* A new P-256 key and a CSR for CN=cn, both malloc'd PEM. */
int	 pki_make_csr(const char *cn, char **key_pem, char **csr_pem);

int	 pki_fingerprint(X509 *, char *out, size_t outlen);
int	 pki_fingerprint_pem(const char *pem, char *out, size_t outlen);
/* Subject CN of a certificate, NUL-terminated. */
int	 pki_cert_cn(X509 *, char *out, size_t outlen);

/*
 * TLS contexts.  The agent port is TLS 1.3 only and asks for (but does not
 * require) a client certificate, verified against the CA; the API port
 * accepts TLS 1.2 and 1.3.  Clients pin the CA file they are given.
 */
SSL_CTX	*tls_server_ctx(const struct pki *, int agent_port, char *err,
	    size_t errlen);
SSL_CTX	*tls_client_ctx(const char *ca_pem_file, const char *cert_file,
	    const char *key_file, char *err, size_t errlen);

#endif
