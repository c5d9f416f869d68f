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
 * common/conn.c over real TLS on loopback: one event base, a listener on
 * 127.0.0.1 port 0, server-side and client-side conns in this process.
 * Every wait runs the loop until a condition holds or a deadline passes.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "frame.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "util.h"
#include "test.h"

#define SRV_MAX_FRAME	4096
#define WAIT_MS		5000

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN	1
#endif
#endif

enum mode {
	M_NONE,
	M_ECHO,
	M_CLOSE_IN_FRAME,
	M_FAIL_IN_FRAME,
	M_FAIL_IN_READY,
	M_FLOOD
};

struct side {
	struct conn	*c;
	enum mode	 mode;
	int		 ready;
	int		 closed;
	int		 nframes;
	int		 close_called;
	int		 frame_after_close;
	int		 send_after_close_ok;
	int		 nerrors;
	int		 peer_cert;
	size_t		 bytes;
	char		 why[512];
	char		 err_code[64];
	char		 err_msg[512];
	char		 peer_cn[128];
	char		 peer_addr[64];
	uint8_t		 last[64];
	size_t		 lastlen;
	/* M_FLOOD */
	struct event	*flood;
	size_t		 max_pending;
	int		 flood_failed;
};

struct raw {
	struct bufferevent *bev;
	struct evbuffer	*got;
	int		 connected, eof, error;
};

static struct event_base	*base;
static SSL_CTX			*srv_ctx, *cli_anon, *cli_cert, *cli_other;
static struct sockaddr_in	 srv_addr;
static struct side		 srv, cli;
static struct side		*many;		/* server sides, memory test */
static int			 nmany, accepted, timed_out;
static int			 srv_timeout_s;

static void	on_ready(struct conn *, void *);
static void	on_frame(struct conn *, const uint8_t *, size_t, void *);
static void	on_close(struct conn *, const char *, void *);

static const struct conn_cb cbs = { on_ready, on_frame, on_close };

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	timed_out = 1;
	event_base_loopbreak(base);
}

/* Runs the loop until cond holds or ms pass. */
#define WAIT(cond, ms) do {						\
	struct timeval	 _tv = { (ms) / 1000, ((ms) % 1000) * 1000 };	\
	struct event	*_ev = evtimer_new(base, deadline_cb, NULL);	\
									\
	timed_out = 0;							\
	evtimer_add(_ev, &_tv);						\
	while (!(cond) && !timed_out)					\
		event_base_loop(base, EVLOOP_ONCE);			\
	event_free(_ev);						\
} while (0)

static void
side_reset(struct side *s, enum mode m)
{
	if (s->flood != NULL)
		event_free(s->flood);
	memset(s, 0, sizeof(*s));
	s->mode = m;
}

static void
flood_cb(evutil_socket_t fd, short what, void *arg)
{
	struct side	*s = arg;
	struct timeval	 tv = { 0, 1000 };
	static uint8_t	 chunk[64 * 1024];
	size_t		 pending;

	if (s->c == NULL || s->closed)
		return;
	pending = conn_out_pending(s->c);
	if (pending > s->max_pending)
		s->max_pending = pending;
	if (conn_send(s->c, chunk, sizeof(chunk)) == -1) {
		s->flood_failed = 1;
		/* Stays refused while closing. */
		s->send_after_close_ok = conn_send(s->c, chunk, 10) == 0;
		return;
	}
	evtimer_add(s->flood, &tv);
}

static void
on_ready(struct conn *c, void *arg)
{
	struct side	*s = arg;
	X509		*x;

	s->ready++;
	snprintf(s->peer_addr, sizeof(s->peer_addr), "%s", conn_peer_addr(c));
	if ((x = conn_peer_cert(c)) != NULL) {
		s->peer_cert = 1;
		if (pki_cert_cn(x, s->peer_cn, sizeof(s->peer_cn)) == -1)
			snprintf(s->peer_cn, sizeof(s->peer_cn), "?");
	}
	switch (s->mode) {
	case M_FAIL_IN_READY:
		conn_fail(c, "go_away", "not today");
		s->close_called = 1;
		break;
	case M_FLOOD:
		s->flood = evtimer_new(base, flood_cb, s);
		event_active(s->flood, EV_TIMEOUT, 1);
		break;
	default:
		break;
	}
}

static void
on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct side	*s = arg;
	struct msg	 m;
	char		 reason[256];

	s->nframes++;
	s->bytes += len;
	if (s->close_called || s->closed)
		s->frame_after_close++;
	s->lastlen = len < sizeof(s->last) ? len : sizeof(s->last);
	memcpy(s->last, body, s->lastlen);
	if (msg_decode(body, len, &m, reason, sizeof(reason)) == 0) {
		if (m.type == MSG_ERROR) {
			s->nerrors++;
			msg_str(&m, "code", s->err_code, sizeof(s->err_code));
			msg_str(&m, "message", s->err_msg, sizeof(s->err_msg));
		}
		msg_free(&m);
	}
	switch (s->mode) {
	case M_ECHO:
		conn_send(c, body, len);
		break;
	case M_CLOSE_IN_FRAME:
		conn_close(c, "closed in on_frame", 0);
		s->close_called = 1;
		s->send_after_close_ok = conn_send(c, "x", 1) == 0;
		/* Twice is harmless. */
		conn_close(c, "again", 1);
		break;
	case M_FAIL_IN_FRAME:
		conn_fail(c, "bad_msg", "nope %d", 42);
		s->close_called = 1;
		s->send_after_close_ok = conn_send(c, "x", 1) == 0;
		conn_fail(c, "bad_msg", "twice");
		break;
	default:
		break;
	}
}

static void
on_close(struct conn *c, const char *why, void *arg)
{
	struct side	*s = arg;

	s->closed++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	/* Still usable for logging until we return. */
	(void)conn_peer_addr(c);
	CHECK(conn_send(c, "x", 1) == -1);
	s->c = NULL;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bufferevent	*bev;
	struct side		*s;
	SSL			*ssl;

	accepted++;
	s = many != NULL ? &many[nmany++] : &srv;
	ssl = SSL_new(srv_ctx);
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		fprintf(stderr, "bufferevent_openssl_socket_new failed\n");
		SSL_free(ssl);
		close(fd);
		return;
	}
	s->c = conn_new(bev, SRV_MAX_FRAME, &cbs, s);
	if (s->c != NULL && srv_timeout_s > 0)
		conn_set_timeout(s->c, srv_timeout_s);
}

static struct conn *
client_connect(SSL_CTX *ctx, struct side *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	ssl = SSL_new(ctx);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&srv_addr,
	    sizeof(srv_addr)) == -1) {
		bufferevent_free(bev);
		return NULL;
	}
	s->c = conn_new(bev, FRAME_MAX_DEFAULT, &cbs, s);
	return s->c;
}

static void
raw_readcb(struct bufferevent *bev, void *arg)
{
	struct raw	*r = arg;

	evbuffer_add_buffer(r->got, bufferevent_get_input(bev));
}

static void
raw_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct raw	*r = arg;

	if (what & BEV_EVENT_CONNECTED)
		r->connected = 1;
	if (what & BEV_EVENT_EOF)
		r->eof = 1;
	if (what & BEV_EVENT_ERROR)
		r->error = 1;
}

/* A peer that does not use conn.c: over TLS or plain TCP. */
static int
raw_connect(struct raw *r, int tls)
{
	memset(r, 0, sizeof(*r));
	r->got = evbuffer_new();
	if (tls) {
		r->bev = bufferevent_openssl_socket_new(base, -1,
		    SSL_new(cli_anon), BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
	} else
		r->bev = bufferevent_socket_new(base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(r->bev, raw_readcb, NULL, raw_eventcb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	return bufferevent_socket_connect(r->bev,
	    (struct sockaddr *)&srv_addr, sizeof(srv_addr));
}

static void
raw_free(struct raw *r)
{
	bufferevent_free(r->bev);
	evbuffer_free(r->got);
}

/* The first frame the raw peer got, decoded as an error message. */
static int
raw_error(struct raw *r, char *code, size_t codelen)
{
	uint8_t		*p;
	uint32_t	 n;
	size_t		 len = evbuffer_get_length(r->got);
	struct msg	 m;
	char		 reason[128];
	int		 rv = -1;

	if (len < 4)
		return -1;
	p = evbuffer_pullup(r->got, -1);
	n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (len < 4 + (size_t)n)
		return -1;
	if (msg_decode(p + 4, n, &m, reason, sizeof(reason)) == 0) {
		if (m.type == MSG_ERROR &&
		    msg_str(&m, "code", code, codelen) == 0)
			rv = 0;
		msg_free(&m);
	}
	return rv;
}

static void
test_exchange(void)
{
	uint8_t	*big;
	size_t	 i;

	side_reset(&srv, M_ECHO);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_anon, &cli) != NULL);
	WAIT(srv.ready && cli.ready, WAIT_MS);
	/* The accepting side gets on_ready too. */
	CHECK(srv.ready == 1 && cli.ready == 1);
	CHECK(strncmp(srv.peer_addr, "127.0.0.1:", 10) == 0);
	CHECK(strcmp(cli.peer_addr, "127.0.0.1:") > 0);
	CHECK(srv.peer_cert == 0);		/* enrolment: no certificate */
	CHECK(cli.peer_cert == 1);
	CHECK_STR(cli.peer_cn, "test-server");

	/* Both ways: the server echoes. */
	CHECK(conn_send(cli.c, "ping", 4) == 0);
	WAIT(cli.nframes == 1, WAIT_MS);
	CHECK(srv.nframes == 1 && cli.nframes == 1);
	CHECK(cli.lastlen == 4 && memcmp(cli.last, "ping", 4) == 0);

	/* Many frames in one write, and frames over several reads. */
	for (i = 0; i < 100; i++)
		CHECK(conn_send(cli.c, &i, sizeof(i)) == 0);
	big = malloc(SRV_MAX_FRAME);
	memset(big, 'b', SRV_MAX_FRAME);
	CHECK(conn_send(cli.c, big, SRV_MAX_FRAME) == 0);	/* at the limit */
	WAIT(cli.nframes == 102, WAIT_MS);
	CHECK(srv.nframes == 102 && cli.nframes == 102);
	CHECK(cli.bytes == 4 + 100 * sizeof(i) + SRV_MAX_FRAME);
	CHECK(cli.lastlen == sizeof(cli.last) && cli.last[0] == 'b');
	free(big);
	CHECK(conn_send(cli.c, "", 0) == -1);

	/* An orderly close: flushed, close_notify, the peer sees EOF. */
	conn_close(cli.c, "bye", 1);
	CHECK(cli.c != NULL);		/* freed later, from the loop */
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.closed == 1 && cli.closed == 1);
	CHECK_STR(cli.why, "bye");
	CHECK_STR(srv.why, "connection closed by peer");
	WAIT(0, 100);			/* nothing more may come */
	CHECK(srv.closed == 1 && cli.closed == 1);
	CHECK(srv.frame_after_close == 0 && cli.frame_after_close == 0);
}

static void
test_close_in_callbacks(void)
{
	/* conn_close inside on_frame: no more frames, one on_close. */
	side_reset(&srv, M_CLOSE_IN_FRAME);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_anon, &cli) != NULL);
	WAIT(cli.ready, WAIT_MS);
	CHECK(conn_send(cli.c, "one", 3) == 0);
	CHECK(conn_send(cli.c, "two", 3) == 0);
	CHECK(conn_send(cli.c, "three", 5) == 0);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.nframes == 1 && srv.frame_after_close == 0);
	CHECK(srv.send_after_close_ok == 0);
	CHECK(srv.closed == 1 && cli.closed == 1);
	CHECK_STR(srv.why, "closed in on_frame");

	/* conn_fail inside on_frame: the peer gets the error, then EOF. */
	side_reset(&srv, M_FAIL_IN_FRAME);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_anon, &cli) != NULL);
	WAIT(cli.ready, WAIT_MS);
	CHECK(conn_send(cli.c, "one", 3) == 0);
	CHECK(conn_send(cli.c, "two", 3) == 0);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.nframes == 1 && srv.frame_after_close == 0);
	CHECK(srv.send_after_close_ok == 0);
	CHECK(cli.nerrors == 1 && cli.frame_after_close == 0);
	CHECK_STR(cli.err_code, "bad_msg");
	CHECK_STR(cli.err_msg, "nope 42");
	CHECK_STR(cli.why, "connection closed by peer");
	CHECK(strstr(srv.why, "bad_msg") != NULL);

	/* conn_fail inside on_ready. */
	side_reset(&srv, M_FAIL_IN_READY);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_anon, &cli) != NULL);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.closed == 1 && cli.closed == 1 && srv.nframes == 0);
	CHECK_STR(cli.err_code, "go_away");
	WAIT(0, 50);
	CHECK(srv.closed == 1 && cli.closed == 1);
}

static void
test_bad_frames(void)
{
	struct raw	 r;
	uint8_t		*big;
	char		 code[64] = "";
	static const uint8_t zero[4];

	/* Over the receiver's limit: error, then EOF. */
	side_reset(&srv, M_NONE);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_anon, &cli) != NULL);
	WAIT(cli.ready, WAIT_MS);
	big = calloc(1, SRV_MAX_FRAME + 1);
	CHECK(conn_send(cli.c, big, SRV_MAX_FRAME + 1) == 0);
	free(big);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.nframes == 0 && srv.closed == 1);
	CHECK(cli.nerrors == 1 && cli.closed == 1);
	CHECK(cli.frame_after_close == 0);	/* the error came first */
	CHECK_STR(cli.err_code, "bad_frame");
	CHECK_STR(cli.err_msg, "frame of 4097 bytes exceeds the limit of "
	    "4096");
	CHECK_STR(cli.why, "connection closed by peer");
	CHECK(strstr(srv.why, "bad_frame") != NULL);

	/* A zero length. */
	side_reset(&srv, M_NONE);
	CHECK(raw_connect(&r, 1) == 0);
	WAIT(r.connected, WAIT_MS);
	bufferevent_write(r.bev, zero, sizeof(zero));
	WAIT(r.eof || r.error, WAIT_MS);
	CHECK(r.eof == 1 && r.error == 0);
	CHECK(raw_error(&r, code, sizeof(code)) == 0);
	CHECK_STR(code, "bad_frame");
	/* The server lingers until we close (or CONN_CLOSE_LINGER_S). */
	raw_free(&r);
	WAIT(srv.closed, WAIT_MS);
	CHECK(srv.closed == 1 && srv.nframes == 0);

	/* Garbage inside TLS: "GET " is a length of 1195725856. */
	side_reset(&srv, M_NONE);
	CHECK(raw_connect(&r, 1) == 0);
	WAIT(r.connected, WAIT_MS);
	bufferevent_write(r.bev, "GET / HTTP/1.0\r\n\r\n", 18);
	WAIT(r.eof || r.error, WAIT_MS);
	CHECK(r.eof == 1);
	code[0] = '\0';
	CHECK(raw_error(&r, code, sizeof(code)) == 0);
	CHECK_STR(code, "bad_frame");
	raw_free(&r);
	WAIT(srv.closed, WAIT_MS);
	CHECK(srv.closed == 1 && srv.nframes == 0);
	CHECK(strstr(srv.why, "1195725856") != NULL);

	/* Garbage instead of TLS: the handshake fails, no on_ready. */
	side_reset(&srv, M_NONE);
	CHECK(raw_connect(&r, 0) == 0);
	WAIT(r.connected, WAIT_MS);
	bufferevent_write(r.bev, "GET / HTTP/1.0\r\n\r\n", 18);
	WAIT((r.eof || r.error) && srv.closed, WAIT_MS);
	CHECK(r.eof || r.error);
	CHECK(srv.closed == 1 && srv.ready == 0);
	CHECK(strncmp(srv.why, "handshake: ", 11) == 0);
	raw_free(&r);

	/* Silence: the handshake times out. */
	side_reset(&srv, M_NONE);
	srv_timeout_s = 1;
	CHECK(raw_connect(&r, 0) == 0);
	WAIT(srv.closed, WAIT_MS);
	CHECK(srv.closed == 1 && srv.ready == 0);
	CHECK(strstr(srv.why, "timeout") != NULL);
	srv_timeout_s = 0;
	WAIT(r.eof || r.error, WAIT_MS);
	CHECK(r.eof || r.error);
	raw_free(&r);
}

static void
test_refused(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct bufferevent	*bev;
	int			 fd;

	/* A port nobody listens on: bound, never listening. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
	side_reset(&cli, M_NONE);
	bev = bufferevent_openssl_socket_new(base, -1, SSL_new(cli_anon),
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	CHECK(bufferevent_socket_connect(bev, (struct sockaddr *)&sin,
	    sizeof(sin)) == 0);
	cli.c = conn_new(bev, FRAME_MAX_DEFAULT, &cbs, &cli);
	WAIT(cli.closed, WAIT_MS);
	CHECK(cli.closed == 1 && cli.ready == 0);
	CHECK(strstr(cli.why, "refused") != NULL);
	if (strstr(cli.why, "refused") == NULL)
		fprintf(stderr, "refused: %s\n", cli.why);
	close(fd);
}

static void
test_client_certs(void)
{
	/* Signed by another CA: the handshake fails. */
	side_reset(&srv, M_NONE);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_other, &cli) != NULL);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.closed == 1 && srv.ready == 0 && cli.closed == 1);
	CHECK(strstr(srv.why, "certificate verify failed") != NULL);
	if (strstr(srv.why, "certificate verify failed") == NULL)
		fprintf(stderr, "server: %s\n", srv.why);

	/* Signed by ours: the peer certificate is there, with its CN. */
	side_reset(&srv, M_ECHO);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_cert, &cli) != NULL);
	WAIT(srv.ready && cli.ready, WAIT_MS);
	CHECK(srv.ready == 1 && srv.peer_cert == 1);
	CHECK_STR(srv.peer_cn, "dev-1");
	CHECK(conn_send(cli.c, "hi", 2) == 0);
	WAIT(cli.nframes == 1, WAIT_MS);
	CHECK(cli.nframes == 1);
	/* Gone without close_notify: an ordinary EOF for the server. */
	conn_close(cli.c, "done", 0);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.closed == 1 && cli.closed == 1);
	CHECK_STR(srv.why, "connection closed by peer");

	/* Idle past the read timeout. */
	side_reset(&srv, M_NONE);
	side_reset(&cli, M_NONE);
	CHECK(client_connect(cli_cert, &cli) != NULL);
	WAIT(srv.ready && cli.ready, WAIT_MS);
	CHECK(srv.c != NULL);
	if (srv.c != NULL)
		conn_set_timeout(srv.c, 1);
	WAIT(srv.closed && cli.closed, WAIT_MS);
	CHECK(srv.closed == 1 && cli.closed == 1);
	CHECK_STR(srv.why, "read timeout");
	CHECK_STR(cli.why, "connection closed by peer");
}

static void
test_highwater(void)
{
	struct raw	r;

	/* A peer that never reads: the server drops it at high water. */
	side_reset(&srv, M_FLOOD);
	CHECK(raw_connect(&r, 1) == 0);
	WAIT(r.connected, WAIT_MS);
	bufferevent_disable(r.bev, EV_READ);
	WAIT(srv.closed, 20000);
	CHECK(srv.flood_failed == 1 && srv.closed == 1);
	CHECK(srv.send_after_close_ok == 0);
	CHECK(srv.max_pending <= CONN_OUT_HIGHWATER);
	CHECK(srv.max_pending + 64 * 1024 + 4 > CONN_OUT_HIGHWATER);
	CHECK(strstr(srv.why, "high-water") != NULL);
	raw_free(&r);
	side_reset(&srv, M_NONE);
}

static int
count_frames(struct side *s, int n)
{
	int	i, k = 0;

	for (i = 0; i < n; i++)
		k += s[i].nframes == 1;
	return k;
}

static int
count_closed(struct side *s, int n)
{
	int	i, k = 0;

	for (i = 0; i < n; i++)
		k += (s[i].closed == 1) + (many[i].closed == 1);
	return k;
}

/* Rough heap use of an idle mutual-TLS connection, both ends counted. */
static void
test_memory(void)
{
	enum { N = 200 };
	struct side	*clis;
	struct mallinfo2 a, b;
	size_t		 per_pair;
	int		 i, nready;

	clis = calloc(N, sizeof(*clis));
	many = calloc(N, sizeof(*many));
	nmany = 0;
	malloc_trim(0);
	a = mallinfo2();
	for (i = 0; i < N; i++) {
		clis[i].mode = M_NONE;
		many[i].mode = M_ECHO;
		CHECK(client_connect(cli_cert, &clis[i]) != NULL);
	}
	WAIT(nmany == N, WAIT_MS * 2);
	for (i = 0; i < N; i++)
		conn_send(clis[i].c, "hello", 5);
	WAIT(count_frames(clis, N) == N, WAIT_MS * 2);
	nready = count_frames(clis, N);
	malloc_trim(0);
	b = mallinfo2();
	CHECK(nready == N);
	per_pair = (b.uordblks + b.hblkhd - a.uordblks - a.hblkhd) / N;
#ifndef UNDER_ASAN
	printf("t_conn: about %zu bytes per idle connection (half of %zu "
	    "per client/server pair)\n", per_pair / 2, per_pair);
	CHECK(per_pair / 2 <= 32 * 1024);
#else
	(void)per_pair;
#endif
	for (i = 0; i < N; i++) {
		if (clis[i].c != NULL)
			conn_close(clis[i].c, "done", 0);
	}
	WAIT(count_closed(clis, N) == 2 * N, WAIT_MS);
	CHECK(count_closed(clis, N) == 2 * N);
	free(clis);
	free(many);
	many = NULL;
}

static int
write_client_cert(const struct pki *pki, const char *dir, const char *cn,
    char *cert_path, char *key_path, size_t pathlen)
{
	char	*key_pem, *csr_pem, *cert, err[256];
	int	 rv = -1;

	if (pki_make_csr(cn, &key_pem, &csr_pem) == -1)
		return -1;
	cert = pki_sign_csr(pki, csr_pem, strlen(csr_pem), cn, 1, err,
	    sizeof(err));
	snprintf(cert_path, pathlen, "%s/%s.pem", dir, cn);
	snprintf(key_path, pathlen, "%s/%s.key", dir, cn);
	if (cert != NULL &&
	    file_write_atomic(cert_path, cert, strlen(cert), 0600) == 0 &&
	    file_write_atomic(key_path, key_pem, strlen(key_pem), 0600) == 0)
		rv = 0;
	free(cert);
	free(key_pem);
	free(csr_pem);
	return rv;
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
	struct pki		 pki, other;
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(srv_addr);
	char			 base_dir[] = "/tmp/t_conn.XXXXXX";
	char			 dir[1100], odir[1100], ca[1200];
	char			 cert[1200], key[1200], err[512] = "";

	signal(SIGPIPE, SIG_IGN);
	log_init("t_conn", LOG_LVL_WARN, 0);
	if (mkdtemp(base_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/srv", base_dir);
	snprintf(odir, sizeof(odir), "%s/other", base_dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	if (pki_init(dir, "test-server", err, sizeof(err)) == -1 ||
	    pki_load(dir, &pki, err, sizeof(err)) == -1 ||
	    pki_init(odir, "other", err, sizeof(err)) == -1 ||
	    pki_load(odir, &other, err, sizeof(err)) == -1) {
		fprintf(stderr, "pki: %s\n", err);
		return 1;
	}
	srv_ctx = tls_server_ctx(&pki, 1, err, sizeof(err));
	cli_anon = tls_client_ctx(ca, NULL, NULL, err, sizeof(err));
	CHECK(write_client_cert(&pki, base_dir, "dev-1", cert, key,
	    sizeof(cert)) == 0);
	cli_cert = tls_client_ctx(ca, cert, key, err, sizeof(err));
	CHECK(write_client_cert(&other, base_dir, "dev-2", cert, key,
	    sizeof(cert)) == 0);
	cli_other = tls_client_ctx(ca, cert, key, err, sizeof(err));
	if (srv_ctx == NULL || cli_anon == NULL || cli_cert == NULL ||
	    cli_other == NULL) {
		fprintf(stderr, "tls: %s\n", err);
		return 1;
	}

	base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lst = evconnlistener_new_bind(base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (lst == NULL ||
	    getsockname(evconnlistener_get_fd(lst),
	    (struct sockaddr *)&srv_addr, &slen) == -1) {
		perror("listen");
		return 1;
	}

	test_exchange();
	test_close_in_callbacks();
	test_bad_frames();
	test_refused();
	test_client_certs();
	test_highwater();
	test_memory();
	CHECK(accepted > 0);

	evconnlistener_free(lst);
	event_base_free(base);
	SSL_CTX_free(srv_ctx);
	SSL_CTX_free(cli_anon);
	SSL_CTX_free(cli_cert);
	SSL_CTX_free(cli_other);
	pki_free(&pki);
	pki_free(&other);
	rm_dir(base_dir);
	TEST_DONE();
}
