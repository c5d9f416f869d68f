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
 * Framed connections over bufferevent_openssl.
 *
 * Life of a conn:
 *   HANDSHAKE -> OPEN          on BEV_EVENT_CONNECTED (both sides), on_ready
 *   OPEN -> FLUSHING           conn_close(flush=1) or conn_fail: no more
 *                              frames are delivered, input is discarded
 *   FLUSHING -> LINGER         output written: close_notify, shutdown(SHUT_WR)
 *   LINGER -> gone             peer EOF, or CONN_CLOSE_LINGER_S after close
 *   any -> DEAD -> gone        conn_close(flush=0), EOF, error, timeout
 *
 * "gone" always happens from the conn's own ev_close event, never inside a
 * call into this file or a callback out of it: protocol code may call
 * conn_close or conn_fail from on_frame or on_ready and go on using the conn
 * until on_close, which is called exactly once, just before the free.
 *
 * Input is read and thrown away while flushing and lingering rather than left
 * in the socket: closing a socket with unread data makes the kernel send a
 * reset, and the peer could lose the error message we just sent.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "conn.h"
#include "frame.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"

#define CONN_ERRMSG_MAX		1024	/* text of an error we send */

enum conn_state {
	CONN_HANDSHAKE,
	CONN_OPEN,
	CONN_FLUSHING,
	CONN_LINGER,
	CONN_DEAD
};

struct conn {
	struct bufferevent	*bev;
	const struct conn_cb	*cb;
	void			*arg;
	struct event		*ev_close;	/* the free, and the linger limit */
	char			*why;		/* first close reason, malloc'd */
	uint32_t		 max_frame;
	size_t			 highwater;	/* pending output limit */
	enum conn_state		 state;
	char			 addr[INET6_ADDRSTRLEN + 8];
};

static void	conn_readcb(struct bufferevent *, void *);
static void	conn_writecb(struct bufferevent *, void *);
static void	conn_eventcb(struct bufferevent *, short, void *);
static void	conn_closecb(evutil_socket_t, short, void *);
static void	conn_linger(struct conn *);
static void	conn_set_why(struct conn *, const char *);

struct conn *
conn_new(struct bufferevent *bev, uint32_t max_frame,
    const struct conn_cb *cb, void *arg)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("%s", __func__);
		bufferevent_free(bev);
		return NULL;
	}
	c->bev = bev;
	c->cb = cb;
	c->arg = arg;
	c->max_frame = max_frame;
	c->highwater = CONN_OUT_HIGHWATER;
	c->state = CONN_HANDSHAKE;
	/* Allocated now so that closing can never fail for lack of memory. */
	if ((c->ev_close = evtimer_new(bufferevent_get_base(bev),
	    conn_closecb, c)) == NULL) {
		log_warnx("%s: evtimer_new", __func__);
		bufferevent_free(bev);
		free(c);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, conn_readcb, conn_writecb, conn_eventcb, c);
	/* Until the caller says otherwise the handshake and hello are due. */
	conn_set_timeout(c, CONN_HELLO_TIMEOUT_S);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) == -1) {
		log_warnx("%s: bufferevent_enable", __func__);
		event_free(c->ev_close);
		bufferevent_free(bev);
		free(c);
		return NULL;
	}
	(void)conn_peer_addr(c);
	return c;
}

/* Runs from the conn's own event: nothing of ours is on the stack. */
static void
conn_closecb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (c->state != CONN_DEAD) {
		/* The linger limit: the peer did not read or did not close. */
		conn_set_why(c, "closing timed out");
		c->state = CONN_DEAD;
	}
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	if (c->cb->on_close != NULL)
		c->cb->on_close(c, c->why != NULL ? c->why : "closed", c->arg);
	/* BEV_OPT_CLOSE_ON_FREE: this also frees the SSL and closes the fd. */
	bufferevent_free(c->bev);
	event_free(c->ev_close);
	free(c->why);
	free(c);
}

static void
conn_set_why(struct conn *c, const char *why)
{
	if (c->why == NULL)
		c->why = strdup(why);
}

static void
conn_free_soon(struct conn *c)
{
	c->state = CONN_DEAD;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	event_del(c->ev_close);
	event_active(c->ev_close, EV_TIMEOUT, 1);
}

void
conn_close(struct conn *c, const char *why, int flush)
{
	struct timeval	 tv = { CONN_CLOSE_LINGER_S, 0 };
	SSL		*ssl;

	if (c->state == CONN_DEAD)
		return;
	conn_set_why(c, why);
	if (!flush) {
		conn_free_soon(c);
		return;
	}
	if (c->state == CONN_FLUSHING || c->state == CONN_LINGER)
		return;
	/*
	 * Before the handshake is done nothing can be flushed yet; the
	 * linger limit below bounds the wait for it.
	 */
	c->state = CONN_FLUSHING;
	evtimer_add(c->ev_close, &tv);
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    ssl != NULL && SSL_is_init_finished(ssl))
		conn_linger(c);
}

/* Everything we had to say is written: say goodbye, wait for the peer's. */
static void
conn_linger(struct conn *c)
{
	SSL		*ssl;
	evutil_socket_t	 fd;

	c->state = CONN_LINGER;
	if ((ssl = bufferevent_openssl_get_ssl(c->bev)) != NULL &&
	    SSL_is_init_finished(ssl)) {
		(void)SSL_shutdown(ssl);	/* sends close_notify */
		ERR_clear_error();
	}
	if ((fd = bufferevent_getfd(c->bev)) != -1)
		(void)shutdown(fd, SHUT_WR);
	bufferevent_disable(c->bev, EV_WRITE);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
conn_ready(struct conn *c)
{
	c->state = CONN_OPEN;
	(void)conn_peer_addr(c);
	if (c->cb->on_ready != NULL)
		c->cb->on_ready(c, c->arg);
}

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint8_t		 hdr[FRAME_HDR_LEN];
	uint8_t		*body;
	uint32_t	 blen;
	size_t		 avail;
	char		 reason[128];
	int		 r;

	/* Data can only come after the handshake; be safe anyway. */
	if (c->state == CONN_HANDSHAKE)
		conn_ready(c);
	while (c->state == CONN_OPEN) {
		avail = evbuffer_get_length(in);
		if (avail < FRAME_HDR_LEN)
			return;
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) != sizeof(hdr))
			return;
		r = frame_header(hdr, sizeof(hdr), c->max_frame, &blen,
		    reason, sizeof(reason));
		if (r != 1) {
			if (be32(hdr) == 0)
				conn_fail(c, "bad_frame", "empty frame");
			else
				conn_fail(c, "bad_frame", "frame of %u bytes "
				    "exceeds the limit of %u", be32(hdr),
				    c->max_frame);
			break;
		}
		if (avail - FRAME_HDR_LEN < blen)
			return;		/* wait for the rest of the body */
		evbuffer_drain(in, FRAME_HDR_LEN);
		if ((body = evbuffer_pullup(in, blen)) == NULL) {
			conn_close(c, "out of memory for a frame", 0);
			break;
		}
		if (c->cb->on_frame != NULL)
			c->cb->on_frame(c, body, blen, c->arg);
		/* The conn is still allocated, even if on_frame closed it. */
		evbuffer_drain(in, blen);
	}
	/* Closing: nobody will look at the rest. */
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state == CONN_FLUSHING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_linger(c);
}

/* "TLS: certificate verify failed (unable to get local issuer ...)" */
static void
conn_error_text(struct conn *c, char *buf, size_t len)
{
	SSL		*ssl;
	unsigned long	 e, first = 0;
	const char	*reason;
	long		 vr;
	int		 serr;

	serr = EVUTIL_SOCKET_ERROR();
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (first != 0) {
		if ((reason = ERR_reason_error_string(first)) == NULL)
			reason = "error";
		ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL &&
		    (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
			snprintf(buf, len, "TLS: %s (%s)", reason,
			    X509_verify_cert_error_string(vr));
		else
			snprintf(buf, len, "TLS: %s", reason);
	} else if (serr != 0)
		snprintf(buf, len, "%s", evutil_socket_error_to_string(serr));
	else
		snprintf(buf, len, "connection error");
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	char		 why[256];
	size_t		 n;
	int		 serr = errno;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CONN_HANDSHAKE)
			conn_ready(c);
		else if (c->state == CONN_FLUSHING &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_linger(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state == CONN_HANDSHAKE) {
		/*
		 * libevent reports a failed connect or a reset during the
		 * handshake as a dirty shutdown, i.e. EOF; errno still says
		 * which.
		 */
		if (serr != 0 && serr != EAGAIN && serr != EINPROGRESS)
			snprintf(why, sizeof(why), "handshake: %s",
			    strerror(serr));
		else
			snprintf(why, sizeof(why), "handshake: connection "
			    "closed by peer");
	} else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by peer");
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "%s timeout%s",
		    (what & BEV_EVENT_WRITING) ? "write" : "read",
		    c->state == CONN_HANDSHAKE ? " in TLS handshake" : "");
	else if (what & BEV_EVENT_ERROR) {
		n = 0;
		if (c->state == CONN_HANDSHAKE)
			n = (size_t)snprintf(why, sizeof(why), "handshake: ");
		conn_error_text(c, why + n, sizeof(why) - n);
	} else
		snprintf(why, sizeof(why), "connection event 0x%x", what);
	/* While flushing or lingering, this is the end we waited for. */
	conn_close(c, why, 0);
}

int
conn_send(struct conn *c, const void *body, size_t len)
{
	struct evbuffer	*out;
	uint8_t		 hdr[FRAME_HDR_LEN];
	size_t		 pending;

	if (c->state != CONN_HANDSHAKE && c->state != CONN_OPEN)
		return -1;
	if (len == 0 || len > UINT32_MAX) {
		log_warnx("%s: %s: frame of %zu bytes", __func__,
		    conn_peer_addr(c), len);
		return -1;
	}
	out = bufferevent_get_output(c->bev);
	pending = evbuffer_get_length(out);
	/*
	 * A peer that does not read is dropped once it has this much
	 * waiting.  One frame bigger than that still goes out alone.
	 */
	if (pending > 0 && pending + FRAME_HDR_LEN + len > c->highwater) {
		log_info("%s: %zu bytes waiting for the peer to read, over the "
		    "limit of %zu: dropping it", conn_peer_addr(c), pending,
		    c->highwater);
		conn_close(c, "output over the high-water mark", 0);
		return -1;
	}
	frame_put_header(hdr, (uint32_t)len);
	if (evbuffer_expand(out, FRAME_HDR_LEN + len) == -1 ||
	    evbuffer_add(out, hdr, sizeof(hdr)) == -1 ||
	    evbuffer_add(out, body, len) == -1) {
		conn_close(c, "out of memory for output", 0);
		return -1;
	}
	return 0;
}

void
conn_fail(struct conn *c, const char *code, const char *fmt, ...)
{
	msgpack_sbuffer	 sb;
	va_list		 ap;
	char		 msg[CONN_ERRMSG_MAX], why[CONN_ERRMSG_MAX + 80];

	if (c->state != CONN_HANDSHAKE && c->state != CONN_OPEN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("%s: %s: %s", conn_peer_addr(c), code, msg);
	snprintf(why, sizeof(why), "sent error %s: %s", code, msg);

	msgpack_sbuffer_init(&sb);
	msg_pack_error(&sb, code, msg);
	if (sb.data == NULL || sb.size == 0 ||
	    conn_send(c, sb.data, sb.size) == -1) {
		msgpack_sbuffer_destroy(&sb);
		conn_close(c, why, 0);
		return;
	}
	msgpack_sbuffer_destroy(&sb);
	conn_close(c, why, 1);
}

void
conn_set_timeout(struct conn *c, int read_timeout_s)
{
	struct timeval	rtv = { read_timeout_s, 0 };
	struct timeval	wtv = { CONN_WRITE_TIMEOUT_S, 0 };

	bufferevent_set_timeouts(c->bev, read_timeout_s > 0 ? &rtv : NULL,
	    &wtv);
}

void
conn_set_highwater(struct conn *c, size_t bytes)
{
	c->highwater = bytes;
}

void
conn_set_cb(struct conn *c, const struct conn_cb *cb, void *arg)
{
	c->cb = cb;
	c->arg = arg;
}

void
conn_set_arg(struct conn *c, void *arg)
{
	c->arg = arg;
}

X509 *
conn_peer_cert(struct conn *c)
{
	SSL	*ssl;
	X509	*x;

	if ((ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL ||
	    !SSL_is_init_finished(ssl))
		return NULL;
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return x;
}

const char *
conn_peer_addr(struct conn *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	evutil_socket_t		 fd;
	char			 ip[INET6_ADDRSTRLEN];

	if (c->addr[0] != '\0')
		return c->addr;
	if ((fd = bufferevent_getfd(c->bev)) == -1 ||
	    getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return "unknown";
	switch (ss.ss_family) {
	case AF_INET:
		sin = (struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
			return "unknown";
		snprintf(c->addr, sizeof(c->addr), "%s:%u", ip,
		    ntohs(sin->sin_port));
		break;
	case AF_INET6:
		sin6 = (struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip,
		    sizeof(ip)) == NULL)
			return "unknown";
		snprintf(c->addr, sizeof(c->addr), "[%s]:%u", ip,
		    ntohs(sin6->sin6_port));
		break;
	case AF_UNIX:
		snprintf(c->addr, sizeof(c->addr), "local");
		break;
	default:
		return "unknown";
	}
	return c->addr;
}

size_t
conn_out_pending(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}
