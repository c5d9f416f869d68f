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
 * The server's private CA, its TLS certificate and the certificates it issues
 * to enrolled agents.  OpenSSL 3.0 EVP interfaces only.
 *
 * pki_sign_csr() runs on several worker threads at once with the same CA:
 * it only reads the shared X509 and EVP_PKEY (whose lazily computed caches
 * are filled in pki_load() before any thread can see them), and everything it
 * builds is its own.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "canopy_limits.h"
#include "log.h"
#include "pki.h"
#include "util.h"

#define PKI_FILE_MAX		(64 * 1024)	/* any key or certificate file */
#define PKI_CA_DAYS		3650
#define PKI_SERVER_DAYS		730
#define PKI_BACKDATE_S		3600	/* tolerate clocks an hour behind */
#define PKI_CN_MAX		64	/* ub-common-name, RFC 5280 */
#define PKI_DAYS_MAX		(100 * 365)

enum cert_kind { CERT_CA, CERT_SERVER, CERT_CLIENT };

static void	 seterr(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 sslerr(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Like seterr, with OpenSSL's reason appended; empties its error queue. */
static void
sslerr(char *err, size_t errlen, const char *fmt, ...)
{
	char		 msg[512];
	const char	*reason = NULL;
	unsigned long	 e;
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The earliest error is usually the cause. */
	if ((e = ERR_peek_error()) != 0)
		reason = ERR_reason_error_string(e);
	ERR_clear_error();
	if (reason != NULL)
		seterr(err, errlen, "%s: %s", msg, reason);
	else
		seterr(err, errlen, "%s", msg);
}

/* Never prompt for a pass phrase on a terminal: our keys have none. */
static int
nopass_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int
path_join(char *out, size_t outlen, const char *dir, const char *file,
    char *err, size_t errlen)
{
	int	n;

	n = snprintf(out, outlen, "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= outlen) {
		seterr(err, errlen, "%s: path too long", dir);
		return -1;
	}
	return 0;
}

static int
file_exists(const char *path)
{
	struct stat	sb;

	return stat(path, &sb) == 0;
}

/* A malloc'd, NUL-terminated copy of a memory BIO's contents. */
static char *
bio_strdup(BIO *bio, size_t *lenp)
{
	char	*data, *s;
	long	 n;

	if ((n = BIO_get_mem_data(bio, &data)) < 0)
		return NULL;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	if (lenp != NULL)
		*lenp = (size_t)n;
	return s;
}

static EVP_PKEY *
key_new_p256(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static char *
key_to_pem(EVP_PKEY *key, size_t *lenp)
{
	BIO	*bio;
	char	*data, *s = NULL;
	long	 n;

	/* A secure memory BIO is cleansed when freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
		*lenp = (size_t)n;
	}
	BIO_free(bio);
	return s;
}

static void
secret_free(char *s, size_t len)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, len);
	free(s);
}

static char *
cert_to_pem(X509 *x, size_t *lenp)
{
	BIO	*bio;
	char	*s = NULL;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509(bio, x) == 1)
		s = bio_strdup(bio, lenp);
	BIO_free(bio);
	return s;
}

static EVP_PKEY *
key_read(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*key = NULL;
	BIO		*bio;
	char		*buf;
	size_t		 len;

	if ((buf = file_read(path, PKI_FILE_MAX, &len)) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		key = PEM_read_bio_PrivateKey(bio, NULL, nopass_cb, NULL);
		BIO_free(bio);
	}
	secret_free(buf, len);
	if (key == NULL)
		sslerr(err, errlen, "%s: not a PEM private key", path);
	return key;
}

static X509 *
cert_read(const char *path, char **pemp, char *err, size_t errlen)
{
	X509	*x = NULL;
	BIO	*bio;
	char	*buf;
	size_t	 len;

	if ((buf = file_read(path, PKI_FILE_MAX, &len)) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, nopass_cb, NULL);
		BIO_free(bio);
	}
	if (x == NULL) {
		sslerr(err, errlen, "%s: not a PEM certificate", path);
		free(buf);
		return NULL;
	}
	if (pemp != NULL)
		*pemp = buf;
	else
		free(buf);
	return x;
}

static int
key_write(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	char	*pem;
	size_t	 len;
	int	 rv;

	if ((pem = key_to_pem(key, &len)) == NULL) {
		sslerr(err, errlen, "%s: cannot encode the key", path);
		return -1;
	}
	rv = file_write_atomic(path, pem, len, 0600);
	if (rv == -1)
		seterr(err, errlen, "%s: %s", path, strerror(errno));
	secret_free(pem, len);
	return rv;
}

static int
cert_write(const char *path, X509 *x, char *err, size_t errlen)
{
	char	*pem;
	size_t	 len;
	int	 rv;

	if ((pem = cert_to_pem(x, &len)) == NULL) {
		sslerr(err, errlen, "%s: cannot encode the certificate", path);
		return -1;
	}
	rv = file_write_atomic(path, pem, len, 0600);
	if (rv == -1)
		seterr(err, errlen, "%s: %s", path, strerror(errno));
	free(pem);
	return rv;
}

/* A random positive serial of 128 bits (RFC 5280 allows up to 20 octets). */
static int
serial_set(X509 *x)
{
	BIGNUM		*bn;
	ASN1_INTEGER	*ai = NULL;
	int		 rv = -1;

	if ((bn = BN_new()) == NULL)
		return -1;
	do {
		if (BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
			goto done;
	} while (BN_is_zero(bn));
	if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto done;
	if (X509_set_serialNumber(x, ai) != 1)
		goto done;
	rv = 0;
 done:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rv;
}

static int
ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION	*ext;
	int		 rv;

	if ((ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value)) == NULL)
		return -1;
	rv = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rv;
}

/*
 * Builds and signs a certificate for pub.  A CA certificate is self-signed
 * (issuer and issuer_key are then ignored).  The shared issuer and its key are
 * only read.  cn must be valid UTF-8 of at most PKI_CN_MAX bytes.
 */
static X509 *
cert_issue(enum cert_kind kind, X509 *issuer, EVP_PKEY *issuer_key,
    EVP_PKEY *pub, const char *cn, int days, GENERAL_NAMES *sans)
{
	X509		*x;
	X509_NAME	*name = NULL;
	X509V3_CTX	 ctx;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || serial_set(x) == -1)
		goto fail;
	if ((name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, name) != 1)
		goto fail;
	if (kind == CERT_CA) {
		issuer = x;
		issuer_key = pub;
		if (X509_set_issuer_name(x, name) != 1)
			goto fail;
	} else if (X509_set_issuer_name(x,
	    X509_get_subject_name(issuer)) != 1)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
		goto fail;
	if (X509_set_pubkey(x, pub) != 1)
		goto fail;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	switch (kind) {
	case CERT_CA:
		if (ext_add(x, &ctx, NID_basic_constraints,
		    "critical,CA:TRUE") == -1 ||
		    ext_add(x, &ctx, NID_key_usage,
		    "critical,keyCertSign,cRLSign") == -1 ||
		    ext_add(x, &ctx, NID_subject_key_identifier, "hash") == -1)
			goto fail;
		break;
	case CERT_SERVER:
	case CERT_CLIENT:
		if (ext_add(x, &ctx, NID_basic_constraints,
		    "critical,CA:FALSE") == -1 ||
		    ext_add(x, &ctx, NID_key_usage,
		    "critical,digitalSignature") == -1 ||
		    ext_add(x, &ctx, NID_ext_key_usage, kind == CERT_SERVER ?
		    "serverAuth,clientAuth" : "clientAuth") == -1 ||
		    ext_add(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
		    ext_add(x, &ctx, NID_authority_key_identifier,
		    "keyid") == -1)
			goto fail;
		break;
	}
	if (sans != NULL &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0) != 1)
		goto fail;

	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	return x;
 fail:
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

/* Copies s cut to at most max bytes on a UTF-8 character boundary. */
static void
utf8_trunc(char *dst, size_t dstlen, const char *s, size_t max)
{
	size_t	n;

	n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* RFC 1123 host name: dot-separated labels of letters, digits, '-'. */
static int
dns_name_valid(const char *s)
{
	size_t	 len, lab = 0;
	const char *p;

	len = strlen(s);
	if (len == 0 || len > 253)
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (lab == 0 || p[-1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!isascii((unsigned char)*p) ||
		    !(isalnum((unsigned char)*p) || *p == '-'))
			return 0;
		if (lab == 0 && *p == '-')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab != 0 && p[-1] != '-';
}

static int
san_add_dns(GENERAL_NAMES *gens, const char *name)
{
	GENERAL_NAME	*gen;
	ASN1_IA5STRING	*ia5;
	int		 i;

	/* No duplicates: the host name is often "localhost" or the server name. */
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_DNS &&
		    (size_t)ASN1_STRING_length(gen->d.dNSName) == strlen(name) &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(
		    gen->d.dNSName), name, strlen(name)) == 0)
			return 0;
	}
	if ((gen = GENERAL_NAME_new()) == NULL)
		return -1;
	if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, name, -1) != 1) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gen);
		return -1;
	}
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	if (sk_GENERAL_NAME_push(gens, gen) == 0) {
		GENERAL_NAME_free(gen);
		return -1;
	}
	return 0;
}

static int
san_add_ip(GENERAL_NAMES *gens, const char *ip)
{
	GENERAL_NAME	*gen;
	ASN1_OCTET_STRING *os;
	int		 i;

	if ((os = a2i_IPADDRESS(ip)) == NULL)
		return -1;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_IPADD &&
		    ASN1_OCTET_STRING_cmp(gen->d.iPAddress, os) == 0) {
			ASN1_OCTET_STRING_free(os);
			return 0;
		}
	}
	if ((gen = GENERAL_NAME_new()) == NULL) {
		ASN1_OCTET_STRING_free(os);
		return -1;
	}
	GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
	if (sk_GENERAL_NAME_push(gens, gen) == 0) {
		GENERAL_NAME_free(gen);
		return -1;
	}
	return 0;
}

static GENERAL_NAMES *
server_sans(const char *server_name)
{
	GENERAL_NAMES	*gens;
	struct in6_addr	 a6;
	char		 host[256];

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return NULL;
	if (inet_pton(AF_INET, server_name, &a6) == 1 ||
	    inet_pton(AF_INET6, server_name, &a6) == 1) {
		if (san_add_ip(gens, server_name) == -1)
			goto fail;
	} else if (dns_name_valid(server_name) &&
	    san_add_dns(gens, server_name) == -1)
		goto fail;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (dns_name_valid(host) && san_add_dns(gens, host) == -1)
			goto fail;
	}
	if (san_add_dns(gens, "localhost") == -1 ||
	    san_add_ip(gens, "127.0.0.1") == -1 ||
	    san_add_ip(gens, "::1") == -1)
		goto fail;
	return gens;
 fail:
	GENERAL_NAMES_free(gens);
	return NULL;
}

/* Loads path, or creates and writes a new P-256 key there. */
static EVP_PKEY *
key_load_or_create(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*key;

	if (file_exists(path))
		return key_read(path, err, errlen);
	if ((key = key_new_p256()) == NULL) {
		sslerr(err, errlen, "%s: cannot generate a key", path);
		return NULL;
	}
	if (key_write(path, key, err, errlen) == -1) {
		EVP_PKEY_free(key);
		return NULL;
	}
	log_info("created %s", path);
	return key;
}

static int
master_key_init(const char *path, char *err, size_t errlen)
{
	uint8_t	 mk[32];
	char	*buf;
	size_t	 len;
	int	 rv;

	if (file_exists(path)) {
		if ((buf = file_read(path, PKI_FILE_MAX, &len)) == NULL) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		secret_free(buf, len);
		if (len != sizeof(mk)) {
			seterr(err, errlen, "%s: %zu bytes, expected %zu", path,
			    len, sizeof(mk));
			return -1;
		}
		return 0;
	}
	if (RAND_priv_bytes(mk, sizeof(mk)) != 1) {
		sslerr(err, errlen, "%s: no random bytes", path);
		return -1;
	}
	rv = file_write_atomic(path, mk, sizeof(mk), 0600);
	if (rv == -1)
		seterr(err, errlen, "%s: %s", path, strerror(errno));
	else
		log_info("created %s", path);
	OPENSSL_cleanse(mk, sizeof(mk));
	return rv;
}

int
pki_init(const char *dir, const char *server_name, char *err, size_t errlen)
{
	char		 cakey_path[1100], capem_path[1100];
	char		 srvkey_path[1100], srvpem_path[1100], mk_path[1100];
	char		 cn[PKI_CN_MAX + 1], ca_cn[PKI_CN_MAX + 1];
	struct stat	 sb;
	EVP_PKEY	*ca_key = NULL, *srv_key = NULL;
	X509		*ca = NULL, *srv = NULL;
	GENERAL_NAMES	*sans = NULL;
	int		 have_ca, rv = -1;

	if (server_name == NULL || *server_name == '\0')
		server_name = "canopyd";
	if (mkdir_p(dir, 0700) == -1) {
		seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		seterr(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if ((sb.st_mode & 077) != 0)
		log_warnx("%s: mode %03o, should be 0700", dir,
		    (unsigned)(sb.st_mode & 0777));
	if (path_join(cakey_path, sizeof(cakey_path), dir, "ca.key", err,
	    errlen) == -1 ||
	    path_join(capem_path, sizeof(capem_path), dir, "ca.pem", err,
	    errlen) == -1 ||
	    path_join(srvkey_path, sizeof(srvkey_path), dir, "server.key", err,
	    errlen) == -1 ||
	    path_join(srvpem_path, sizeof(srvpem_path), dir, "server.pem", err,
	    errlen) == -1 ||
	    path_join(mk_path, sizeof(mk_path), dir, "master.key", err,
	    errlen) == -1)
		return -1;

	/*
	 * Agents pin this CA: a new one would silently orphan every enrolled
	 * device, so never make one beside an existing server certificate.
	 */
	have_ca = file_exists(cakey_path) && file_exists(capem_path);
	if (!have_ca && (file_exists(srvkey_path) ||
	    file_exists(srvpem_path))) {
		seterr(err, errlen, "%s: the CA (ca.key, ca.pem) is missing but "
		    "a server certificate exists; restore the CA from a backup "
		    "(enrolled agents pin it), or remove server.key and "
		    "server.pem to start a new CA", dir);
		return -1;
	}
	if (!file_exists(cakey_path) && file_exists(capem_path)) {
		seterr(err, errlen, "%s: ca.pem exists without ca.key; restore "
		    "ca.key from a backup", dir);
		return -1;
	}

	if ((ca_key = key_load_or_create(cakey_path, err, errlen)) == NULL)
		goto done;
	if (file_exists(capem_path)) {
		if ((ca = cert_read(capem_path, NULL, err, errlen)) == NULL)
			goto done;
		if (X509_check_private_key(ca, ca_key) != 1) {
			sslerr(err, errlen, "%s does not match %s", capem_path,
			    cakey_path);
			goto done;
		}
	} else {
		snprintf(ca_cn, sizeof(ca_cn), "Canopy CA ");
		utf8_trunc(ca_cn + strlen(ca_cn), sizeof(ca_cn) - strlen(ca_cn),
		    server_name, PKI_CN_MAX - strlen(ca_cn));
		if ((ca = cert_issue(CERT_CA, NULL, NULL, ca_key, ca_cn,
		    PKI_CA_DAYS, NULL)) == NULL) {
			sslerr(err, errlen, "%s: cannot create the CA", dir);
			goto done;
		}
		if (cert_write(capem_path, ca, err, errlen) == -1)
			goto done;
		log_info("created %s", capem_path);
	}

	if ((srv_key = key_load_or_create(srvkey_path, err, errlen)) == NULL)
		goto done;
	if (file_exists(srvpem_path)) {
		if ((srv = cert_read(srvpem_path, NULL, err, errlen)) == NULL)
			goto done;
		if (X509_verify(srv, X509_get0_pubkey(ca)) != 1) {
			sslerr(err, errlen, "%s is not signed by %s",
			    srvpem_path, capem_path);
			goto done;
		}
		if (X509_check_private_key(srv, srv_key) != 1) {
			sslerr(err, errlen, "%s does not match %s",
			    srvpem_path, srvkey_path);
			goto done;
		}
	} else {
		utf8_trunc(cn, sizeof(cn), server_name, PKI_CN_MAX);
		if ((sans = server_sans(server_name)) == NULL ||
		    (srv = cert_issue(CERT_SERVER, ca, ca_key, srv_key, cn,
		    PKI_SERVER_DAYS, sans)) == NULL) {
			sslerr(err, errlen, "%s: cannot create the server "
			    "certificate", dir);
			goto done;
		}
		if (cert_write(srvpem_path, srv, err, errlen) == -1)
			goto done;
		log_info("created %s", srvpem_path);
	}

	if (master_key_init(mk_path, err, errlen) == -1)
		goto done;
	rv = 0;
 done:
	GENERAL_NAMES_free(sans);
	X509_free(srv);
	X509_free(ca);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(ca_key);
	ERR_clear_error();
	return rv;
}

int
pki_load(const char *dir, struct pki *pki, char *err, size_t errlen)
{
	char	 path[1100];
	char	*buf;
	size_t	 len;

	memset(pki, 0, sizeof(*pki));
	if (strlen(dir) >= sizeof(pki->dir)) {
		seterr(err, errlen, "%s: path too long", dir);
		return -1;
	}
	strlcpy(pki->dir, dir, sizeof(pki->dir));

	if (path_join(path, sizeof(path), dir, "ca.pem", err, errlen) == -1 ||
	    (pki->ca_cert = cert_read(path, &pki->ca_pem, err, errlen)) == NULL)
		goto fail;
	if (path_join(path, sizeof(path), dir, "ca.key", err, errlen) == -1 ||
	    (pki->ca_key = key_read(path, err, errlen)) == NULL)
		goto fail;
	if (X509_check_private_key(pki->ca_cert, pki->ca_key) != 1) {
		sslerr(err, errlen, "%s/ca.pem does not match ca.key", dir);
		goto fail;
	}
	/*
	 * Fill the certificate's cached extension data now, single-threaded,
	 * so that signers on worker threads only ever read it.
	 */
	if (X509_check_ca(pki->ca_cert) == 0) {
		seterr(err, errlen, "%s/ca.pem is not a CA certificate", dir);
		goto fail;
	}
	if (pki_fingerprint(pki->ca_cert, pki->ca_fingerprint,
	    sizeof(pki->ca_fingerprint)) == -1) {
		sslerr(err, errlen, "%s/ca.pem: no fingerprint", dir);
		goto fail;
	}

	if (path_join(path, sizeof(path), dir, "master.key", err,
	    errlen) == -1)
		goto fail;
	if ((buf = file_read(path, PKI_FILE_MAX, &len)) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (len != sizeof(pki->master_key)) {
		seterr(err, errlen, "%s: %zu bytes, expected %zu", path, len,
		    sizeof(pki->master_key));
		secret_free(buf, len);
		goto fail;
	}
	memcpy(pki->master_key, buf, len);
	secret_free(buf, len);
	ERR_clear_error();
	return 0;
 fail:
	pki_free(pki);
	ERR_clear_error();
	return -1;
}

void
pki_free(struct pki *pki)
{
	if (pki == NULL)
		return;
	X509_free(pki->ca_cert);
	EVP_PKEY_free(pki->ca_key);
	free(pki->ca_pem);
	pki->ca_cert = NULL;
	pki->ca_key = NULL;
	pki->ca_pem = NULL;
	OPENSSL_cleanse(pki->master_key, sizeof(pki->master_key));
}

/* Names the key for "not accepted" messages: "RSA 1024", "EC secp256k1". */
static void
key_describe(EVP_PKEY *key, char *out, size_t outlen)
{
	char		 group[80];
	const char	*type;

	if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_group_name(key, group, sizeof(group),
		    NULL) != 1)
			snprintf(out, outlen, "EC with explicit parameters");
		else
			snprintf(out, outlen, "EC %s", group);
		return;
	}
	if ((type = EVP_PKEY_get0_type_name(key)) == NULL)
		type = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
	if (type == NULL)
		type = "unknown";
	if (EVP_PKEY_is_a(key, "RSA"))
		snprintf(out, outlen, "%s %d", type, EVP_PKEY_get_bits(key));
	else
		snprintf(out, outlen, "%s", type);
}

static int
key_accepted(EVP_PKEY *key)
{
	char	group[80];
	int	nid;

	if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_group_name(key, group, sizeof(group),
		    NULL) != 1)
			return 0;
		nid = OBJ_txt2nid(group);
		return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1;
	}
	/* Plain RSA only: "RSA-PSS" keys are another type. */
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		return EVP_PKEY_get_bits(key) >= 2048;
	return 0;
}

static int
cn_valid(const char *cn)
{
	size_t	len;

	if (cn == NULL || (len = strlen(cn)) == 0 || len > PKI_CN_MAX)
		return 0;
	return 1;
}

char *
pki_sign_csr(const struct pki *pki, const char *csr_pem, size_t len,
    const char *cn, int days, char *err, size_t errlen)
{
	X509_REQ	*req = NULL;
	X509		*x = NULL;
	EVP_PKEY	*pub;
	BIO		*bio = NULL;
	char		 what[96], *pem = NULL;

	if (pki == NULL || pki->ca_cert == NULL || pki->ca_key == NULL) {
		seterr(err, errlen, "no CA loaded");
		return NULL;
	}
	if (!cn_valid(cn)) {
		seterr(err, errlen, "certificate name must be 1 to %d bytes",
		    PKI_CN_MAX);
		return NULL;
	}
	if (days < 1 || days > PKI_DAYS_MAX) {
		seterr(err, errlen, "validity of %d days out of range 1..%d",
		    days, PKI_DAYS_MAX);
		return NULL;
	}
	if (csr_pem == NULL || len == 0) {
		seterr(err, errlen, "CSR is empty");
		return NULL;
	}
	if (len > MSG_MAX_CSR) {
		seterr(err, errlen, "CSR of %zu bytes exceeds the limit of %u",
		    len, (unsigned)MSG_MAX_CSR);
		return NULL;
	}

	if ((bio = BIO_new_mem_buf(csr_pem, (int)len)) == NULL) {
		sslerr(err, errlen, "out of memory");
		goto done;
	}
	if ((req = PEM_read_bio_X509_REQ(bio, NULL, nopass_cb, NULL)) == NULL) {
		ERR_clear_error();
		seterr(err, errlen, "CSR is not valid PEM");
		goto done;
	}
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL) {
		ERR_clear_error();
		seterr(err, errlen, "CSR has no usable public key");
		goto done;
	}
	if (!key_accepted(pub)) {
		key_describe(pub, what, sizeof(what));
		ERR_clear_error();
		seterr(err, errlen, "CSR key type not accepted: %s (use EC "
		    "P-256, P-384 or RSA of 2048 bits or more)", what);
		goto done;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		seterr(err, errlen, "CSR signature does not verify");
		goto done;
	}

	/* The CSR's subject and extensions are ignored: we decide both. */
	if ((x = cert_issue(CERT_CLIENT, pki->ca_cert, pki->ca_key, pub, cn,
	    days, NULL)) == NULL) {
		sslerr(err, errlen, "cannot issue the certificate");
		goto done;
	}
	if ((pem = cert_to_pem(x, NULL)) == NULL)
		sslerr(err, errlen, "cannot encode the certificate");
 done:
	X509_free(x);
	X509_REQ_free(req);
	BIO_free(bio);
	ERR_clear_error();
	return pem;
}

int
pki_make_csr(const char *cn, char **key_pem, char **csr_pem)
{
	EVP_PKEY	*key = NULL;
	X509_REQ	*req = NULL;
	X509_NAME	*name = NULL;
	BIO		*bio = NULL;
	char		*kp = NULL, *cp = NULL;
	size_t		 klen = 0;
	int		 rv = -1;

	*key_pem = *csr_pem = NULL;
	if (!cn_valid(cn))
		return -1;
	if ((key = key_new_p256()) == NULL)
		goto done;
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1)
		goto done;
	if ((name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1)
		goto done;
	if (X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto done;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1 ||
	    (cp = bio_strdup(bio, NULL)) == NULL)
		goto done;
	if ((kp = key_to_pem(key, &klen)) == NULL)
		goto done;
	*key_pem = kp;
	*csr_pem = cp;
	kp = cp = NULL;
	rv = 0;
 done:
	secret_free(kp, klen);
	free(cp);
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rv;
}

int
pki_fingerprint(X509 *x, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	char		*p;

	if (x == NULL || outlen < PKI_FPR_LEN)
		return -1;
	/* X509_digest hashes the DER encoding. */
	if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
		ERR_clear_error();
		return -1;
	}
	p = out;
	memcpy(p, "SHA256:", 7);
	p += 7;
	for (i = 0; i < mdlen; i++) {
		if (i > 0)
			*p++ = ':';
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 0xf];
	}
	*p = '\0';
	return 0;
}

int
pki_fingerprint_pem(const char *pem, char *out, size_t outlen)
{
	BIO	*bio;
	X509	*x = NULL;
	int	 rv = -1;

	if (pem == NULL)
		return -1;
	if ((bio = BIO_new_mem_buf(pem, -1)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, nopass_cb, NULL);
		BIO_free(bio);
	}
	if (x != NULL) {
		rv = pki_fingerprint(x, out, outlen);
		X509_free(x);
	}
	ERR_clear_error();
	return rv;
}

int
pki_cert_cn(X509 *x, char *out, size_t outlen)
{
	X509_NAME	*name;
	X509_NAME_ENTRY	*ne;
	unsigned char	*utf8 = NULL;
	int		 idx, n;

	if (x == NULL || outlen == 0 ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    (idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (ne = X509_NAME_get_entry(name, idx)) == NULL)
		return -1;
	if ((n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(ne))) < 0) {
		ERR_clear_error();
		return -1;
	}
	/* An embedded NUL would make two certificates look alike. */
	if ((size_t)n >= outlen || memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_free(utf8);
		return -1;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

static int
tls_ctx_common(SSL_CTX *ctx, int min_version)
{
	if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1)
		return -1;
	/*
	 * A peer that drops the TCP connection without close_notify is an
	 * ordinary EOF to us (frames carry their own length, so truncation
	 * is visible anyway); without this OpenSSL 3 reports an error that
	 * libevent's dirty-shutdown handling does not recognise.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/*
	 * Thousands of mostly idle connections: give back the 16+ KiB read
	 * and write buffers whenever they are empty.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, nopass_cb);
	return 0;
}

SSL_CTX *
tls_server_ctx(const struct pki *pki, int agent_port, char *err,
    size_t errlen)
{
	static const unsigned char sid_ctx[] = "canopy";
	SSL_CTX		*ctx;
	X509_STORE	*store;
	char		 cert_path[1100], key_path[1100];

	if (path_join(cert_path, sizeof(cert_path), pki->dir, "server.pem",
	    err, errlen) == -1 ||
	    path_join(key_path, sizeof(key_path), pki->dir, "server.key",
	    err, errlen) == -1)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		sslerr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (tls_ctx_common(ctx, agent_port ? TLS1_3_VERSION :
	    TLS1_2_VERSION) == -1) {
		sslerr(err, errlen, "cannot set the TLS version");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		sslerr(err, errlen, "%s", cert_path);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path,
	    SSL_FILETYPE_PEM) != 1) {
		sslerr(err, errlen, "%s", key_path);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		sslerr(err, errlen, "%s does not match %s", key_path,
		    cert_path);
		goto fail;
	}
	/* No resumption: nothing to cache per client, no tickets to send. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);

	if (agent_port) {
		/*
		 * Our CA is the only trust anchor.  A certificate is asked for
		 * but optional: enrolment connects without one, and the
		 * session code decides what an anonymous peer may do.
		 */
		store = SSL_CTX_get_cert_store(ctx);
		if (X509_STORE_add_cert(store, pki->ca_cert) != 1 ||
		    SSL_CTX_add_client_CA(ctx, pki->ca_cert) != 1) {
			sslerr(err, errlen, "cannot install the CA");
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_verify_depth(ctx, 2);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		/* TLS 1.2: forward secrecy and AEAD only. */
		if (SSL_CTX_set_cipher_list(ctx,
		    "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
			sslerr(err, errlen, "cannot set the TLS 1.2 ciphers");
			goto fail;
		}
	}
	ERR_clear_error();
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const char *ca_pem_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((cert_file == NULL) != (key_file == NULL)) {
		seterr(err, errlen, "a client certificate needs its key");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		sslerr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (tls_ctx_common(ctx, TLS1_3_VERSION) == -1) {
		sslerr(err, errlen, "cannot set the TLS version");
		goto fail;
	}
	/*
	 * Pinned: the server's own CA is the only trust anchor (no system
	 * store).  No host name check: that CA is private to one server, so
	 * a valid chain identifies it whatever name was dialled
	 * (docs/PROTOCOL.md, "Trust").
	 */
	if (SSL_CTX_load_verify_locations(ctx, ca_pem_file, NULL) != 1) {
		sslerr(err, errlen, "%s", ca_pem_file);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	if (cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
			sslerr(err, errlen, "%s", cert_file);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key_file,
		    SSL_FILETYPE_PEM) != 1) {
			sslerr(err, errlen, "%s", key_file);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			sslerr(err, errlen, "%s does not match %s", key_file,
			    cert_file);
			goto fail;
		}
	}
	ERR_clear_error();
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}
