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
 * The agent's session against a scripted server on loopback: hello, a sync
 * answered by retry (resent after after_ms, still with the inventory), ack,
 * events acknowledged, sync_now (full inventory), heartbeat, need_inventory
 * (the next sync carries it), and unknown_device (the session stops for
 * good).  The client certificate is set per SSL, as canopy-sim does.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <msgpack.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/agent.h"
#include "conn.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"
#include "test.h"

#define RETRY_MS	100

static struct event_base	*base;
static SSL_CTX			*srv_ctx;
static struct conn		*srv_conn;
static struct session		*sess;

/* What the server saw. */
static int	 got_hello, nsync, sync_inv[16], nevents, nhb, hellos_ok;
static uint64_t	 retry_sent_ms, resend_gap_ms;
static int	 sent_sync_now, sent_need;

/* What the agent saw. */
static int	 up, inv_acked, ev_taken, ev_acked, ev_unflight, retried;
static int	 dead, hb_acked, sync_acked;
static char	 dev_id[64], acked_hash[65];

static void
srv_send(msgpack_sbuffer *sb)
{
	if (srv_conn != NULL)
		(void)conn_send(srv_conn, sb->data, sb->size);
	msgpack_sbuffer_destroy(sb);
}

static void
srv_ack(uint64_t seq, int need)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_ACK, need ? 3 : 2);
	mp_kv_uint(&pk, "seq", seq);
	if (need)
		mp_kv_bool(&pk, "need_inventory", 1);
	srv_send(&sb);
}

static void
srv_on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct msg	 m;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	char		 reason[256], role[32];
	uint64_t	 seq;
	const msgpack_object *ev;

	if (msg_decode(body, len, &m, reason, sizeof(reason)) == -1) {
		fprintf(stderr, "server: %s\n", reason);
		CHECK(0);
		conn_close(c, "bad", 0);
		return;
	}
	seq = msg_uint(&m, "seq", 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	switch (m.type) {
	case MSG_HELLO:
		got_hello++;
		if (msg_str(&m, "role", role, sizeof(role)) == 0 &&
		    strcmp(role, "agent") == 0 &&
		    msg_uint(&m, "proto_min", 0) == PROTO_VERSION_MIN &&
		    msg_uint(&m, "proto_max", 0) == PROTO_VERSION_MAX)
			hellos_ok++;
		mp_begin(&pk, MSG_HELLO, 6);
		mp_kv_str(&pk, "role", "server");
		mp_kv_str(&pk, "name", "test");
		mp_kv_uint(&pk, "proto", 1);
		mp_kv_uint(&pk, "heartbeat_s", 1);
		mp_kv_str(&pk, "device_id", "dev-1");
		srv_send(&sb);
		break;
	case MSG_SYNC:
		if (nsync < 16)
			sync_inv[nsync] = msg_get(&m, "inventory") != NULL;
		nsync++;
		if (nsync == 1) {
			/* Not committed: the agent must keep it and resend. */
			mp_begin(&pk, MSG_RETRY, 3);
			mp_kv_uint(&pk, "seq", seq);
			mp_kv_uint(&pk, "after_ms", RETRY_MS);
			retry_sent_ms = mono_ms();
			srv_send(&sb);
			break;
		}
		if (nsync == 2)
			resend_gap_ms = mono_ms() - retry_sent_ms;
		if (nsync == 4 && !sent_need) {
			/* Only a hash, and we have none stored: ask for it. */
			sent_need = 1;
			srv_ack(seq, 1);
			msgpack_sbuffer_destroy(&sb);
			break;
		}
		srv_ack(seq, 0);
		if (nsync == 2) {
			sent_sync_now = 1;
			mp_begin(&pk, MSG_SYNC_NOW, 1);
			srv_send(&sb);
		} else if (nsync == 5) {
			/* The device is deleted. */
			conn_fail(c, "unknown_device", "device dev-1 is gone");
			msgpack_sbuffer_destroy(&sb);
		} else
			msgpack_sbuffer_destroy(&sb);
		break;
	case MSG_EVENTS:
		ev = msg_get(&m, "events");
		if (ev != NULL && ev->type == MSGPACK_OBJECT_ARRAY)
			nevents += (int)ev->via.array.size;
		srv_ack(seq, 0);
		msgpack_sbuffer_destroy(&sb);
		break;
	case MSG_HEARTBEAT:
		nhb++;
		srv_ack(seq, 0);
		msgpack_sbuffer_destroy(&sb);
		break;
	default:
		CHECK(0);
		msgpack_sbuffer_destroy(&sb);
		break;
	}
	msg_free(&m);
}

static void
srv_on_close(struct conn *c, const char *why, void *arg)
{
	srv_conn = NULL;
}

static const struct conn_cb srv_cb = { NULL, srv_on_frame, srv_on_close };

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	ssl = SSL_new(srv_ctx);
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	CHECK(srv_conn == NULL);
	srv_conn = conn_new(bev, FRAME_MAX_DEFAULT, &srv_cb, NULL);
}

/* The agent's side. */

static const uint8_t	 inv_bytes[] = { 0x81, 0xa1, 'a', 0x01 };	/* {a:1} */

static int
h_inventory(struct session *s, void *arg, const uint8_t **buf, size_t *len,
    const char **hash)
{
	*buf = inv_bytes;
	*len = sizeof(inv_bytes);
	*hash = "hash-1";
	return 0;
}

static void
h_inventory_acked(struct session *s, void *arg, const char *hash)
{
	inv_acked++;
	strlcpy(acked_hash, hash, sizeof(acked_hash));
}

static size_t
h_events_take(struct session *s, void *arg, msgpack_sbuffer *sb, size_t max)
{
	msgpack_packer	 pk;
	int		 i;

	if (ev_taken > 0)
		return 0;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	for (i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 5);
		mp_kv_str(&pk, "id", i == 0 ? "e1" : "e2");
		mp_kv_uint(&pk, "time", 1700000000000ULL);
		mp_kv_str(&pk, "severity", "info");
		mp_kv_str(&pk, "type", "test");
		mp_kv_str(&pk, "text", "hello");
	}
	ev_taken = 2;
	return 2;
}

static void
h_events_acked(struct session *s, void *arg)
{
	ev_acked++;
}

static void
h_events_unflight(struct session *s, void *arg)
{
	ev_unflight++;
}

static void
h_up(struct session *s, void *arg, const char *device_id)
{
	up++;
	strlcpy(dev_id, device_id, sizeof(dev_id));
}

static void
h_acked(struct session *s, void *arg, enum session_kind k, int inv,
    uint64_t us)
{
	if (k == SK_SYNC)
		sync_acked++;
	if (k == SK_HEARTBEAT && ++hb_acked == 1) {
		/* Nothing changed: this sync carries only the hash. */
		session_sync(s, 0);
	}
}

static void
h_retried(struct session *s, void *arg, enum session_kind k)
{
	retried++;
}

static void
h_dead(struct session *s, void *arg, const char *why)
{
	dead++;
	event_base_loopbreak(base);
}

static const struct session_hooks hooks = {
	.inventory = h_inventory,
	.inventory_acked = h_inventory_acked,
	.events_take = h_events_take,
	.events_acked = h_events_acked,
	.events_unflight = h_events_unflight,
	.up = h_up,
	.acked = h_acked,
	.retried = h_retried,
	.dead = h_dead,
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "deadline reached\n");
	event_base_loopbreak(base);
}

static void
rm_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[1200];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == -1)
			rm_dir(path);
	}
	closedir(d);
	rmdir(dir);
}

int
main(void)
{
	struct evconnlistener	*lst;
	struct pki		 pki;
	struct sockaddr_in	 sin;
	struct sockaddr_storage	 ss;
	socklen_t		 slen = sizeof(ss);
	struct session_cfg	 cfg;
	struct event		*deadline;
	struct timeval		 tv = { 15, 0 };
	char			 dir[] = "/tmp/t_agent_session.XXXXXX";
	char			 ca[1200], err[512] = "";
	char			*key_pem, *csr_pem, *cert_pem;
	SSL_CTX			*cli_ctx;
	X509			*cert;
	EVP_PKEY		*key;
	BIO			*b;

	signal(SIGPIPE, SIG_IGN);
	log_init("t_agent_session", LOG_LVL_WARN, 0);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	if (pki_init(dir, "test-server", err, sizeof(err)) == -1 ||
	    pki_load(dir, &pki, err, sizeof(err)) == -1) {
		fprintf(stderr, "pki: %s\n", err);
		return 1;
	}
	srv_ctx = tls_server_ctx(&pki, 1, err, sizeof(err));
	cli_ctx = tls_client_ctx(ca, NULL, NULL, err, sizeof(err));
	if (srv_ctx == NULL || cli_ctx == NULL ||
	    pki_make_csr("dev-1", &key_pem, &csr_pem) == -1 ||
	    (cert_pem = pki_sign_csr(&pki, csr_pem, strlen(csr_pem), "dev-1",
	    1, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tls: %s\n", err);
		return 1;
	}
	b = BIO_new_mem_buf(cert_pem, -1);
	cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(key_pem, -1);
	key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	CHECK(cert != NULL && key != NULL);

	base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lst = evconnlistener_new_bind(base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (lst == NULL || getsockname(evconnlistener_get_fd(lst),
	    (struct sockaddr *)&ss, &slen) == -1) {
		perror("listen");
		return 1;
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.base = base;
	cfg.ctx = cli_ctx;
	cfg.cert = cert;
	cfg.key = key;
	cfg.addr = (struct sockaddr *)&ss;
	cfg.addrlen = slen;
	cfg.sni = "127.0.0.1";
	cfg.name = "t-agent";
	cfg.reconnect = 1;
	sess = session_new(&cfg, &hooks, NULL);
	CHECK(sess != NULL);
	deadline = evtimer_new(base, on_deadline, NULL);
	evtimer_add(deadline, &tv);
	CHECK(session_start(sess) == 0);
	event_base_dispatch(base);

	CHECK(got_hello == 1 && hellos_ok == 1);
	CHECK(up == 1);
	CHECK_STR(dev_id, "dev-1");
	CHECK_STR(session_device_id(sess), "dev-1");
	/* 1: retried, 2: resent with the inventory, 3: sync_now, 4: hash
	 * only, answered need_inventory, 5: with it. */
	CHECK(nsync == 5);
	CHECK(sync_inv[0] == 1 && sync_inv[1] == 1 && sync_inv[2] == 1);
	CHECK(sync_inv[3] == 0 && sync_inv[4] == 1);
	CHECK(retried == 1);
	CHECK(resend_gap_ms >= RETRY_MS - 5);
	CHECK(sent_sync_now == 1 && sent_need == 1);
	CHECK(inv_acked >= 2);
	CHECK_STR(acked_hash, "hash-1");
	CHECK(nevents == 2 && ev_acked == 1);
	CHECK(nhb >= 1 && hb_acked >= 1);
	CHECK(sync_acked >= 3);
	CHECK(dead == 1);
	/* Dead means dead: no reconnect. */
	CHECK(session_start(sess) == -1);
	CHECK(got_hello == 1);

	session_free(sess);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_free(deadline);
	evconnlistener_free(lst);
	event_base_free(base);
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_free(srv_ctx);
	SSL_CTX_free(cli_ctx);
	free(key_pem);
	free(csr_pem);
	free(cert_pem);
	pki_free(&pki);
	rm_dir(dir);
	TEST_DONE();
}
