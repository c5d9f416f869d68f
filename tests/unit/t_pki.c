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

/* common/pki.c: the CA, the server certificate, CSR signing. */

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "util.h"
#include "test.h"

static const char *files[] = {
	"ca.key", "ca.pem", "server.key", "server.pem", "master.key"
};
#define NFILES	(sizeof(files) / sizeof(files[0]))

struct snap {
	struct stat	 sb;
	char		*data;
	size_t		 len;
};

static void
rm_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[1200];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static X509 *
pem_cert(const char *pem)
{
	BIO	*bio;
	X509	*x;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

static X509 *
file_cert(const char *dir, const char *name)
{
	char	 path[1200], *pem;
	size_t	 len;
	X509	*x;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((pem = file_read(path, 65536, &len)) == NULL)
		return NULL;
	x = pem_cert(pem);
	free(pem);
	return x;
}

/* X509_verify_cert against the CA alone, for the given purpose. */
static int
verify(X509 *ca, X509 *leaf, int purpose)
{
	X509_STORE	*store;
	X509_STORE_CTX	*ctx;
	int		 ok = 0;

	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (store != NULL && ctx != NULL &&
	    X509_STORE_add_cert(store, ca) == 1 &&
	    X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 &&
	    X509_STORE_CTX_set_purpose(ctx, purpose) == 1) {
		ok = X509_verify_cert(ctx) == 1;
		if (!ok && purpose != X509_PURPOSE_SSL_SERVER)
			fprintf(stderr, "verify: %s\n",
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(ctx)));
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

/* A CSR for CN=cn with pub, signed by signer (normally the same key). */
static char *
csr_with(EVP_PKEY *pub, EVP_PKEY *signer, const char *cn)
{
	X509_REQ	*req;
	X509_NAME	*name;
	BIO		*bio;
	char		*data, *s = NULL;
	long		 n;

	req = X509_REQ_new();
	name = X509_NAME_new();
	X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, pub);
	if (X509_REQ_sign(req, signer, EVP_sha256()) <= 0)
		goto done;
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_REQ(bio, req);
	n = BIO_get_mem_data(bio, &data);
	if ((s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(bio);
 done:
	X509_NAME_free(name);
	X509_REQ_free(req);
	return s;
}

static char *
csr_keytype(const char *type, const char *param, size_t bits)
{
	EVP_PKEY	*k;
	char		*s;

	if (param != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, param);
	else if (bits != 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	if (k == NULL)
		return NULL;
	s = csr_with(k, k, "whatever");
	EVP_PKEY_free(k);
	return s;
}

static int
sign_fails_with(const struct pki *pki, const char *csr, size_t len,
    const char *want)
{
	char	 err[256] = "", *pem;

	pem = pki_sign_csr(pki, csr, len, "dev-x", 30, err, sizeof(err));
	if (pem != NULL) {
		free(pem);
		fprintf(stderr, "signed, expected \"%s\"\n", want);
		return 0;
	}
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "error \"%s\", expected \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

static int
fpr_well_formed(const char *f)
{
	int	i;

	if (strncmp(f, "SHA256:", 7) != 0 || strlen(f) != PKI_FPR_LEN - 1)
		return 0;
	for (i = 0; i < 32; i++) {
		const char *p = f + 7 + i * 3;

		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]) ||
		    islower((unsigned char)p[0]) || islower((unsigned char)p[1]))
			return 0;
		if (i < 31 && p[2] != ':')
			return 0;
	}
	return 1;
}

struct signer {
	const struct pki	*pki;
	const char		*csr;
	int			 ok;
};

static void *
sign_thread(void *arg)
{
	struct signer	*s = arg;
	char		 err[256], cn[32], got[64], *pem;
	X509		*x;
	int		 i;

	for (i = 0; i < 25; i++) {
		snprintf(cn, sizeof(cn), "dev-%p-%d", (void *)s, i);
		pem = pki_sign_csr(s->pki, s->csr, strlen(s->csr), cn, 1, err,
		    sizeof(err));
		if (pem == NULL)
			continue;
		if ((x = pem_cert(pem)) != NULL) {
			if (pki_cert_cn(x, got, sizeof(got)) == 0 &&
			    strcmp(got, cn) == 0 &&
			    verify(s->pki->ca_cert, x, X509_PURPOSE_SSL_CLIENT))
				s->ok++;
			X509_free(x);
		}
		free(pem);
	}
	return NULL;
}

static void
test_init(const char *dir)
{
	struct snap	 before[NFILES];
	struct stat	 sb;
	char		 err[512] = "", path[1200];
	size_t		 i;
	int		 same;

	CHECK(pki_init(dir, "test-server", err, sizeof(err)) == 0);
	if (err[0] != '\0')
		fprintf(stderr, "pki_init: %s\n", err);
	CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		CHECK(stat(path, &before[i].sb) == 0);
		CHECK((before[i].sb.st_mode & 0777) == 0600);
		before[i].data = file_read(path, 65536, &before[i].len);
		CHECK(before[i].data != NULL);
	}
	CHECK(before[4].len == 32);

	/* A second start changes nothing. */
	CHECK(pki_init(dir, "another-name", err, sizeof(err)) == 0);
	for (i = 0; i < NFILES; i++) {
		char	*data;
		size_t	 len;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		CHECK(stat(path, &sb) == 0);
		same = sb.st_ino == before[i].sb.st_ino &&
		    sb.st_mtim.tv_sec == before[i].sb.st_mtim.tv_sec &&
		    sb.st_mtim.tv_nsec == before[i].sb.st_mtim.tv_nsec;
		CHECK(same);
		data = file_read(path, 65536, &len);
		CHECK(data != NULL && len == before[i].len &&
		    memcmp(data, before[i].data, len) == 0);
		free(data);
		free(before[i].data);
	}
}

static void
test_certs(const char *dir, const struct pki *pki)
{
	X509		*srv;
	char		 cn[128], fpr[PKI_FPR_LEN];
	uint32_t	 xku;

	/* The CA. */
	CHECK(pki_cert_cn(pki->ca_cert, cn, sizeof(cn)) == 0);
	CHECK_STR(cn, "Canopy CA test-server");
	CHECK(X509_check_ca(pki->ca_cert) >= 1);
	CHECK(X509_get_key_usage(pki->ca_cert) & KU_KEY_CERT_SIGN);
	CHECK(X509_verify(pki->ca_cert, X509_get0_pubkey(pki->ca_cert)) == 1);
	CHECK(EVP_PKEY_is_a(pki->ca_key, "EC"));
	CHECK(EVP_PKEY_get_bits(pki->ca_key) == 256);
	CHECK(X509_cmp_time(X509_get0_notAfter(pki->ca_cert), NULL) > 0);
	{
		time_t	t = time(NULL) + 3649L * 86400;

		CHECK(X509_cmp_time(X509_get0_notAfter(pki->ca_cert), &t) > 0);
	}

	/* Fingerprints. */
	CHECK(fpr_well_formed(pki->ca_fingerprint));
	CHECK(pki_fingerprint_pem(pki->ca_pem, fpr, sizeof(fpr)) == 0);
	CHECK_STR(fpr, pki->ca_fingerprint);
	CHECK(pki_fingerprint(pki->ca_cert, fpr, PKI_FPR_LEN - 1) == -1);
	CHECK(pki_fingerprint_pem("not a certificate", fpr, sizeof(fpr)) == -1);
	CHECK(pki_cert_cn(pki->ca_cert, cn, 5) == -1);

	/* The server certificate. */
	srv = file_cert(dir, "server.pem");
	CHECK(srv != NULL);
	if (srv == NULL)
		return;
	CHECK(verify(pki->ca_cert, srv, X509_PURPOSE_SSL_SERVER));
	CHECK(verify(pki->ca_cert, srv, X509_PURPOSE_SSL_CLIENT));
	CHECK(X509_check_ca(srv) == 0);
	xku = X509_get_extended_key_usage(srv);
	CHECK((xku & XKU_SSL_SERVER) && (xku & XKU_SSL_CLIENT));
	CHECK(X509_check_host(srv, "localhost", 0, 0, NULL) == 1);
	CHECK(X509_check_host(srv, "test-server", 0, 0, NULL) == 1);
	CHECK(X509_check_ip_asc(srv, "127.0.0.1", 0) == 1);
	CHECK(X509_check_ip_asc(srv, "::1", 0) == 1);
	{
		char	host[256];

		if (gethostname(host, sizeof(host)) == 0)
			CHECK(X509_check_host(srv, host, 0, 0, NULL) == 1);
	}
	CHECK(pki_cert_cn(srv, cn, sizeof(cn)) == 0);
	CHECK_STR(cn, "test-server");
	X509_free(srv);
}

static void
test_sign(const struct pki *pki)
{
	X509		*x, *y;
	char		*key_pem, *csr_pem, *pem, *pem2, err[256], cn[128];
	const ASN1_INTEGER *sn;
	BIGNUM		*bn;
	time_t		 t;

	CHECK(pki_make_csr("ignored-name", &key_pem, &csr_pem) == 0);
	CHECK(key_pem != NULL && strstr(key_pem, "PRIVATE KEY") != NULL);
	CHECK(csr_pem != NULL &&
	    strstr(csr_pem, "BEGIN CERTIFICATE REQUEST") != NULL);
	if (csr_pem == NULL)
		return;

	pem = pki_sign_csr(pki, csr_pem, strlen(csr_pem), "dev-123", 365,
	    err, sizeof(err));
	CHECK(pem != NULL);
	if (pem == NULL) {
		fprintf(stderr, "pki_sign_csr: %s\n", err);
		return;
	}
	x = pem_cert(pem);
	CHECK(x != NULL);
	CHECK(verify(pki->ca_cert, x, X509_PURPOSE_SSL_CLIENT));
	/* A client certificate only: not for servers, not a CA. */
	CHECK(!verify(pki->ca_cert, x, X509_PURPOSE_SSL_SERVER));
	CHECK(X509_check_ca(x) == 0);
	CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
	CHECK(X509_get_extended_key_usage(x) == XKU_SSL_CLIENT);
	CHECK(pki_cert_cn(x, cn, sizeof(cn)) == 0);
	CHECK_STR(cn, "dev-123");
	CHECK(X509_get_version(x) == X509_VERSION_3);
	CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
	/* notBefore an hour back, notAfter 365 days on. */
	t = time(NULL) - 3500;
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &t) < 0);
	t = time(NULL) - 3700;
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &t) > 0);
	t = time(NULL) + 364L * 86400;
	CHECK(X509_cmp_time(X509_get0_notAfter(x), &t) > 0);
	t = time(NULL) + 366L * 86400;
	CHECK(X509_cmp_time(X509_get0_notAfter(x), &t) < 0);
	/* The key in the certificate is the CSR's. */
	{
		BIO		*bio = BIO_new_mem_buf(key_pem, -1);
		EVP_PKEY	*k = PEM_read_bio_PrivateKey(bio, NULL, NULL,
				    NULL);

		CHECK(k != NULL && X509_check_private_key(x, k) == 1);
		EVP_PKEY_free(k);
		BIO_free(bio);
	}
	/* Serial: positive, non-zero, at most 128 bits, never repeated. */
	sn = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	CHECK(bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn) &&
	    BN_num_bits(bn) <= 128);
	BN_free(bn);
	pem2 = pki_sign_csr(pki, csr_pem, strlen(csr_pem), "dev-123", 365,
	    err, sizeof(err));
	CHECK(pem2 != NULL);
	if (pem2 != NULL && (y = pem_cert(pem2)) != NULL) {
		CHECK(ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(y)) != 0);
		X509_free(y);
	}
	free(pem2);
	X509_free(x);
	free(pem);

	/* The CSR need not be NUL-terminated: only len bytes are read. */
	{
		size_t	 n = strlen(csr_pem);
		char	*copy = malloc(n);

		memcpy(copy, csr_pem, n);
		pem = pki_sign_csr(pki, copy, n, "dev-124", 1, err,
		    sizeof(err));
		CHECK(pem != NULL);
		free(pem);
		free(copy);
	}

	/* The CSR's extensions are ignored: asking to be a CA gets nothing. */
	{
		EVP_PKEY	*k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		X509_REQ	*req = X509_REQ_new();
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		BIO		*bio = BIO_new(BIO_s_mem());
		char		*data;
		long		 n;

		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL,
		    NID_basic_constraints, "critical,CA:TRUE"));
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL,
		    NID_subject_alt_name, "DNS:evil.example"));
		X509_REQ_add_extensions(req, exts);
		X509_REQ_set_pubkey(req, k);
		X509_REQ_sign(req, k, EVP_sha256());
		PEM_write_bio_X509_REQ(bio, req);
		n = BIO_get_mem_data(bio, &data);
		pem = pki_sign_csr(pki, data, (size_t)n, "dev-125", 1, err,
		    sizeof(err));
		CHECK(pem != NULL);
		if (pem != NULL && (x = pem_cert(pem)) != NULL) {
			CHECK(X509_check_ca(x) == 0);
			CHECK(X509_get_ext_by_NID(x, NID_subject_alt_name,
			    -1) < 0);
			CHECK(X509_check_host(x, "evil.example", 0, 0,
			    NULL) != 1);
			X509_free(x);
		}
		free(pem);
		BIO_free(bio);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		X509_REQ_free(req);
		EVP_PKEY_free(k);
	}

	/* Bad arguments. */
	CHECK(pki_sign_csr(pki, csr_pem, strlen(csr_pem), "", 1, err,
	    sizeof(err)) == NULL);
	CHECK(pki_sign_csr(pki, csr_pem, strlen(csr_pem), "dev", 0, err,
	    sizeof(err)) == NULL);
	{
		char	long_cn[100];

		memset(long_cn, 'a', sizeof(long_cn) - 1);
		long_cn[sizeof(long_cn) - 1] = '\0';
		CHECK(pki_sign_csr(pki, csr_pem, strlen(csr_pem), long_cn, 1,
		    err, sizeof(err)) == NULL);
	}
	free(key_pem);
	free(csr_pem);
}

static void
test_bad_csrs(const struct pki *pki)
{
	EVP_PKEY	*a, *b;
	char		*csr, *big, *trunc;
	size_t		 n;

	CHECK(sign_fails_with(pki, "", 0, "CSR is empty"));
	CHECK(sign_fails_with(pki, "hello", 5, "CSR is not valid PEM"));
	CHECK(sign_fails_with(pki, "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "AAAA\n-----END CERTIFICATE REQUEST-----\n", 69,
	    "CSR is not valid PEM"));

	/* A key pair that is not the one that signed. */
	a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	csr = csr_with(a, b, "x");
	CHECK(csr != NULL);
	if (csr != NULL)
		CHECK(sign_fails_with(pki, csr, strlen(csr),
		    "CSR signature does not verify"));
	free(csr);

	/* Cut short. */
	csr = csr_with(a, a, "x");
	n = strlen(csr);
	trunc = strndup(csr, n / 2);
	CHECK(sign_fails_with(pki, trunc, strlen(trunc),
	    "CSR is not valid PEM"));
	free(trunc);

	/* Over the limit, even if the start is a good CSR. */
	big = calloc(1, MSG_MAX_CSR + 2);
	memcpy(big, csr, n);
	memset(big + n, '\n', MSG_MAX_CSR + 1 - n);
	CHECK(sign_fails_with(pki, big, MSG_MAX_CSR + 1, "exceeds the limit"));
	/* At the limit it is fine: trailing blank lines are ignored. */
	{
		char	err[256], *pem;

		pem = pki_sign_csr(pki, big, MSG_MAX_CSR, "dev-x", 1, err,
		    sizeof(err));
		CHECK(pem != NULL);
		free(pem);
	}
	free(big);
	free(csr);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);

	/* Key types. */
	csr = csr_keytype("RSA", NULL, 1024);
	CHECK(csr != NULL);
	if (csr != NULL)
		CHECK(sign_fails_with(pki, csr, strlen(csr),
		    "CSR key type not accepted: RSA 1024"));
	free(csr);
	csr = csr_keytype("EC", "secp256k1", 0);
	if (csr != NULL)
		CHECK(sign_fails_with(pki, csr, strlen(csr),
		    "CSR key type not accepted: EC secp256k1"));
	free(csr);
	csr = csr_keytype("EC", "P-521", 0);
	if (csr != NULL)
		CHECK(sign_fails_with(pki, csr, strlen(csr),
		    "CSR key type not accepted: EC secp521r1"));
	free(csr);
	{
		/* Ed25519 signs without a digest. */
		EVP_PKEY	*k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		X509_REQ	*req = X509_REQ_new();
		BIO		*bio = BIO_new(BIO_s_mem());
		char		*data;
		long		 len;

		X509_REQ_set_pubkey(req, k);
		CHECK(X509_REQ_sign(req, k, NULL) > 0);
		PEM_write_bio_X509_REQ(bio, req);
		len = BIO_get_mem_data(bio, &data);
		CHECK(sign_fails_with(pki, data, (size_t)len,
		    "CSR key type not accepted: ED25519"));
		BIO_free(bio);
		X509_REQ_free(req);
		EVP_PKEY_free(k);
	}

	/* Accepted types. */
	{
		char	err[256], *pem;

		csr = csr_keytype("RSA", NULL, 2048);
		pem = pki_sign_csr(pki, csr, strlen(csr), "dev-rsa", 1, err,
		    sizeof(err));
		CHECK(pem != NULL);
		free(pem);
		free(csr);
		csr = csr_keytype("EC", "P-384", 0);
		pem = pki_sign_csr(pki, csr, strlen(csr), "dev-384", 1, err,
		    sizeof(err));
		CHECK(pem != NULL);
		free(pem);
		free(csr);
	}
	ERR_clear_error();
}

static void
test_threads(const struct pki *pki)
{
	struct signer	 s[4];
	pthread_t	 t[4];
	char		*key_pem, *csr_pem;
	int		 i, ok = 0;

	CHECK(pki_make_csr("threads", &key_pem, &csr_pem) == 0);
	for (i = 0; i < 4; i++) {
		s[i].pki = pki;
		s[i].csr = csr_pem;
		s[i].ok = 0;
		CHECK(pthread_create(&t[i], NULL, sign_thread, &s[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += s[i].ok;
	}
	CHECK(ok == 100);
	free(key_pem);
	free(csr_pem);
}

/* A handshake over an in-memory BIO pair; 1 if both ends finish. */
static int
handshake(SSL_CTX *sctx, SSL_CTX *cctx, int client_max)
{
	SSL	*s, *c;
	BIO	*sb, *cb;
	int	 i, rs = 0, rc = 0, ok;

	s = SSL_new(sctx);
	c = SSL_new(cctx);
	if (s == NULL || c == NULL || BIO_new_bio_pair(&sb, 0, &cb, 0) != 1)
		return 0;
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	if (client_max != 0)
		SSL_set_max_proto_version(c, client_max);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (i = 0; i < 20 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(c);
		if (rs != 1)
			rs = SSL_do_handshake(s);
	}
	ok = rs == 1 && rc == 1;
	SSL_free(s);
	SSL_free(c);
	ERR_clear_error();
	return ok;
}

static void
test_tls_ctx(const char *dir, const struct pki *pki)
{
	SSL_CTX	*agent, *api, *cli;
	SSL_CTX	*ctx;
	char	 err[512], ca[1200];

	ctx = tls_server_ctx(pki, 1, err, sizeof(err));
	CHECK(ctx != NULL);
	if (ctx != NULL) {
		CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_3_VERSION);
		CHECK(SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_PEER);
		CHECK(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
	}
	SSL_CTX_free(ctx);
	ctx = tls_server_ctx(pki, 0, err, sizeof(err));
	CHECK(ctx != NULL);
	if (ctx != NULL) {
		CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
		CHECK(SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_NONE);
	}
	SSL_CTX_free(ctx);

	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	ctx = tls_client_ctx(ca, NULL, NULL, err, sizeof(err));
	CHECK(ctx != NULL);
	SSL_CTX_free(ctx);
	CHECK(tls_client_ctx(ca, ca, NULL, err, sizeof(err)) == NULL);
	CHECK(tls_client_ctx("/nonexistent/ca.pem", NULL, NULL, err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);

	/* Real handshakes: TLS 1.3 on the agent port, 1.2 also on the API. */
	agent = tls_server_ctx(pki, 1, err, sizeof(err));
	api = tls_server_ctx(pki, 0, err, sizeof(err));
	cli = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(cli, ca, NULL);
	SSL_CTX_set_verify(cli, SSL_VERIFY_PEER, NULL);
	CHECK(handshake(agent, cli, 0));
	CHECK(!handshake(agent, cli, TLS1_2_VERSION));
	CHECK(handshake(api, cli, 0));
	CHECK(handshake(api, cli, TLS1_2_VERSION));
	CHECK(!handshake(api, cli, TLS1_1_VERSION));
	SSL_CTX_free(cli);
	/* The pinned client refuses a server of another CA. */
	cli = tls_client_ctx(ca, NULL, NULL, err, sizeof(err));
	CHECK(handshake(agent, cli, 0));
	SSL_CTX_free(cli);
	{
		struct pki	 o;
		char		 odir[1200], oca[1300];
		SSL_CTX		*oagent;

		snprintf(odir, sizeof(odir), "%s.other", dir);
		snprintf(oca, sizeof(oca), "%s/ca.pem", odir);
		CHECK(pki_init(odir, "o", err, sizeof(err)) == 0);
		CHECK(pki_load(odir, &o, err, sizeof(err)) == 0);
		oagent = tls_server_ctx(&o, 1, err, sizeof(err));
		cli = tls_client_ctx(ca, NULL, NULL, err, sizeof(err));
		CHECK(!handshake(oagent, cli, 0));
		SSL_CTX_free(cli);
		SSL_CTX_free(oagent);
		pki_free(&o);
		rm_dir(odir);
	}
	SSL_CTX_free(agent);
	SSL_CTX_free(api);
}

/* Never a new CA beside an existing server certificate. */
static void
test_missing_ca(const char *base)
{
	char	 dir[1100], path[1200], err[512] = "";

	snprintf(dir, sizeof(dir), "%s/other", base);
	CHECK(pki_init(dir, "x", err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	unlink(path);
	CHECK(pki_init(dir, "x", err, sizeof(err)) == -1);
	CHECK(strstr(err, "missing") != NULL);
	CHECK(access(path, F_OK) == -1);
	rm_dir(dir);

	/* A CA certificate without its key. */
	CHECK(pki_init(dir, "x", err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/server.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	unlink(path);
	CHECK(pki_init(dir, "x", err, sizeof(err)) == -1);
	CHECK(strstr(err, "ca.key") != NULL);
	rm_dir(dir);

	/* A server name that is no DNS name still gives a certificate. */
	CHECK(pki_init(dir, "bad name, with spaces ünd ümlauts that is "
	    "rather long: longer than sixty-four bytes", err,
	    sizeof(err)) == 0);
	rm_dir(dir);
}

int
main(void)
{
	struct pki	 pki;
	char		 base[] = "/tmp/t_pki.XXXXXX", dir[1100], err[512] = "";
	uint8_t		 zero[32];

	log_init("t_pki", LOG_LVL_WARN, 0);
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/state", base);

	test_init(dir);
	CHECK(pki_load(dir, &pki, err, sizeof(err)) == 0);
	if (err[0] != '\0')
		fprintf(stderr, "pki_load: %s\n", err);
	if (pki.ca_cert != NULL) {
		CHECK(strstr(pki.ca_pem, "BEGIN CERTIFICATE") != NULL);
		CHECK_STR(pki.dir, dir);
		test_certs(dir, &pki);
		test_sign(&pki);
		test_bad_csrs(&pki);
		test_threads(&pki);
		test_tls_ctx(dir, &pki);
	}
	memset(zero, 0, sizeof(zero));
	CHECK(memcmp(pki.master_key, zero, sizeof(zero)) != 0);
	pki_free(&pki);
	CHECK(memcmp(pki.master_key, zero, sizeof(zero)) == 0);
	CHECK(pki.ca_cert == NULL && pki.ca_key == NULL && pki.ca_pem == NULL);
	CHECK(pki_load(base, &pki, err, sizeof(err)) == -1);
	CHECK(strstr(err, "ca.pem") != NULL);

	test_missing_ca(base);

	rm_dir(dir);
	rm_dir(base);
	TEST_DONE();
}
