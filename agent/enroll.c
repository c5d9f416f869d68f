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
 * Enrolment: over server-authenticated TLS (the pinned CA only), hello,
 * then enroll{token, csr} answered by enrolled{device_id, cert}.  Errors are
 * told in words a person can act on: a wrong token, a server that cannot be
 * reached, a server whose certificate the CA file does not vouch for.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <msgpack.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "agent.h"
#include "conn.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"

#define ENROLL_TIMEOUT_S	30

struct enrollment {
	struct conn	*conn;
	SSL		*ssl;
	char		*ca_file;
	char		*token;
	char		*name;
	char		*key_pem;
	char		*csr_pem;
	int		 ready;		/* TLS handshake done */
	int		 got_hello;
	int		 done;
	enroll_done_cb	 cb;
	void		*arg;
};

static void	enr_on_ready(struct conn *, void *);
static void	enr_on_frame(struct conn *, const uint8_t *, size_t, void *);
static void	enr_on_close(struct conn *, const char *, void *);

static const struct conn_cb enr_cb = {
	enr_on_ready, enr_on_frame, enr_on_close
};

static void
enr_free(struct enrollment *e)
{
	if (e == NULL)
		return;
	free(e->ca_file);
	if (e->token != NULL) {
		explicit_bzero(e->token, strlen(e->token));
		free(e->token);
	}
	free(e->name);
	if (e->key_pem != NULL) {
		explicit_bzero(e->key_pem, strlen(e->key_pem));
		free(e->key_pem);
	}
	free(e->csr_pem);
	free(e);
}

static void
enr_finish(struct enrollment *e, int status, const char *device_id,
    const char *cert_pem, const char *err)
{
	if (e->done)
		return;
	e->done = 1;
	e->cb(e, status, device_id, status == 0 ? e->key_pem : NULL, cert_pem,
	    err, e->arg);
}

static void
enr_send(struct enrollment *e, msgpack_sbuffer *sb)
{
	if (e->conn != NULL)
		(void)conn_send(e->conn, sb->data, sb->size);
}

static void
enr_on_ready(struct conn *c, void *arg)
{
	struct enrollment	*e = arg;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;

	e->ready = 1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HELLO, 6);
	mp_kv_str(&pk, "role", "agent");
	mp_kv_str(&pk, "name", e->name);
	mp_kv_uint(&pk, "proto_min", PROTO_VERSION_MIN);
	mp_kv_uint(&pk, "proto_max", PROTO_VERSION_MAX);
	mp_kv_str(&pk, "version", AGENT_VERSION);
	enr_send(e, &sb);
	msgpack_sbuffer_destroy(&sb);
}

static void
enr_on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct enrollment	*e = arg;
	struct msg		 m;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	char			 reason[256], code[MSG_MAX_NAME + 1];
	char			 text[MSG_MAX_EVENT_TEXT + 1], err[8192];
	char			 id[MSG_MAX_NAME + 1];
	char			*cert;
	const char		*p;
	size_t			 plen;

	if (msg_decode(body, len, &m, reason, sizeof(reason)) == -1) {
		snprintf(err, sizeof(err), "bad answer from the server: %s",
		    reason);
		enr_finish(e, -1, NULL, NULL, err);
		conn_fail(c, "bad_message", "%s", reason);
		return;
	}
	switch (m.type) {
	case MSG_HELLO:
		if (e->got_hello) {
			enr_finish(e, -1, NULL, NULL, "server sent hello twice");
			conn_close(c, "protocol error", 0);
			break;
		}
		e->got_hello = 1;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		mp_begin(&pk, MSG_ENROLL, 3);
		mp_kv_str(&pk, "token", e->token);
		mp_kv_str(&pk, "csr", e->csr_pem);
		enr_send(e, &sb);
		msgpack_sbuffer_destroy(&sb);
		break;
	case MSG_ENROLLED:
		if (msg_str(&m, "device_id", id, sizeof(id)) == -1 ||
		    (p = msg_strp(&m, "cert", &plen)) == NULL ||
		    (cert = strndup(p, plen)) == NULL) {
			enr_finish(e, -1, NULL, NULL,
			    "server's 'enrolled' answer is incomplete");
			conn_close(c, "bad enrolled", 0);
			break;
		}
		enr_finish(e, 0, id, cert, NULL);
		free(cert);
		conn_close(c, "enrolled", 1);
		break;
	case MSG_ERROR:
		if (msg_str(&m, "code", code, sizeof(code)) == -1)
			strlcpy(code, "?", sizeof(code));
		if (msg_str(&m, "message", text, sizeof(text)) == -1)
			text[0] = '\0';
		if (strcmp(code, "bad_token") == 0)
			snprintf(err, sizeof(err), "the server rejected the "
			    "enrolment token: %s", text);
		else
			snprintf(err, sizeof(err), "the server refused "
			    "enrolment: %s: %s", code, text);
		enr_finish(e, -1, NULL, NULL, err);
		break;
	default:
		snprintf(err, sizeof(err), "unexpected %s from the server",
		    msg_type_name(m.type));
		enr_finish(e, -1, NULL, NULL, err);
		conn_close(c, "protocol error", 0);
		break;
	}
	msg_free(&m);
}

static void
enr_on_close(struct conn *c, const char *why, void *arg)
{
	struct enrollment	*e = arg;
	char			 err[2048];
	long			 vr;

	if (e == NULL)
		return;
	e->conn = NULL;
	if (!e->done) {
		vr = e->ssl != NULL ? SSL_get_verify_result(e->ssl) : X509_V_OK;
		if (vr != X509_V_OK)
			snprintf(err, sizeof(err), "server certificate is not "
			    "signed by the CA in %s (%s)", e->ca_file,
			    X509_verify_cert_error_string(vr));
		else if (!e->ready)
			snprintf(err, sizeof(err), "cannot reach the server: %s",
			    why);
		else
			snprintf(err, sizeof(err), "the server closed the "
			    "connection during enrolment: %s", why);
		enr_finish(e, -1, NULL, NULL, err);
	}
	e->ssl = NULL;
	enr_free(e);
}

struct enrollment *
enroll_start(struct event_base *base, SSL_CTX *ctx, const struct sockaddr *sa,
    socklen_t salen, const char *sni, const char *ca_file, const char *token,
    const char *name, enroll_done_cb cb, void *arg)
{
	struct enrollment	*e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->cb = cb;
	e->arg = arg;
	if ((e->ca_file = strdup(ca_file)) == NULL ||
	    (e->token = strdup(token)) == NULL ||
	    (e->name = strdup(name)) == NULL ||
	    pki_make_csr(name, &e->key_pem, &e->csr_pem) == -1) {
		enr_free(e);
		return NULL;
	}
	e->conn = agent_connect(base, ctx, NULL, NULL, sa, salen, sni,
	    &enr_cb, e, &e->ssl);
	if (e->conn == NULL) {
		enr_free(e);
		return NULL;
	}
	conn_set_timeout(e->conn, ENROLL_TIMEOUT_S);
	return e;
}

struct enroll_result {
	int	 status;
	char	*device_id;
	char	*key_pem;
	char	*cert_pem;
	char	 err[2048];
};

static void
enroll_run_done(struct enrollment *e, int status, const char *device_id,
    const char *key_pem, const char *cert_pem, const char *err, void *arg)
{
	struct enroll_result	*r = arg;

	r->status = status;
	if (status == 0) {
		r->device_id = strdup(device_id);
		r->key_pem = strdup(key_pem);
		r->cert_pem = strdup(cert_pem);
		if (r->device_id == NULL || r->key_pem == NULL ||
		    r->cert_pem == NULL) {
			r->status = -1;
			strlcpy(r->err, "out of memory", sizeof(r->err));
		}
	} else
		strlcpy(r->err, err != NULL ? err : "failed", sizeof(r->err));
}

int
enroll_run(const char *server, const char *ca_file, const char *token,
    const char *name, char *device_id, size_t idlen, char **key_pem,
    char **cert_pem, char *err, size_t errlen)
{
	struct event_base	*base = NULL;
	SSL_CTX			*ctx = NULL;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 host[256], e2[1024];
	struct enroll_result	 r;
	int			 rv = -1;

	memset(&r, 0, sizeof(r));
	r.status = -1;
	strlcpy(r.err, "enrolment did not finish", sizeof(r.err));
	*key_pem = *cert_pem = NULL;
	if (agent_resolve(server, &ss, &sslen, host, sizeof(host), err,
	    errlen) != 0)
		return -1;
	if ((ctx = tls_client_ctx(ca_file, NULL, NULL, e2,
	    sizeof(e2))) == NULL) {
		snprintf(err, errlen, "%s", e2);
		return -1;
	}
	if ((base = event_base_new()) == NULL) {
		snprintf(err, errlen, "event_base_new failed");
		goto done;
	}
	if (enroll_start(base, ctx, (struct sockaddr *)&ss, sslen, host,
	    ca_file, token, name, enroll_run_done, &r) == NULL) {
		snprintf(err, errlen, "cannot connect to %s", server);
		goto done;
	}
	event_base_dispatch(base);
	if (r.status == 0) {
		strlcpy(device_id, r.device_id, idlen);
		*key_pem = r.key_pem;
		*cert_pem = r.cert_pem;
		r.key_pem = r.cert_pem = NULL;
		rv = 0;
	} else
		snprintf(err, errlen, "%s", r.err);
done:
	free(r.device_id);
	free(r.key_pem);
	free(r.cert_pem);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(ctx);
	return rv;
}
