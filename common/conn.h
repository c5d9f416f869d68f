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

#ifndef CANOPY_CONN_H
#define CANOPY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/x509.h>

/*
 * A framed connection over a TLS bufferevent: the only place that touches
 * sockets and SSL on port 13000 (OpenSMTPD's ioev.c).  Protocol code gets
 * whole frame bodies through on_frame and sends with conn_send.
 *
 * Limits enforced here: the frame size (max_frame), pending output
 * (CONN_OUT_HIGHWATER: a peer that does not read is dropped), a read timeout.
 * A protocol error sends an error message to the peer, flushes it, closes.
 */
struct conn;

struct conn_cb {
	/* TLS handshake done; the peer certificate, if any, is available. */
	void	(*on_ready)(struct conn *, void *arg);
	/* One whole frame body; valid only during the call. */
	void	(*on_frame)(struct conn *, const uint8_t *body, size_t len,
		    void *arg);
	/* The connection is gone (why is for the log); conn is freed after. */
	void	(*on_close)(struct conn *, const char *why, void *arg);
};

/* Takes ownership of bev (a bufferevent_openssl, connecting or accepting). */
struct conn *conn_new(struct bufferevent *bev, uint32_t max_frame,
	    const struct conn_cb *cb, void *arg);

/* Queues one frame; -1 (and the connection is being closed) past high water. */
int	 conn_send(struct conn *, const void *body, size_t len);
/* Sends an error message, then closes once it is flushed. */
void	 conn_fail(struct conn *, const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Closes after pending output is flushed (or at once if flush is 0). */
void	 conn_close(struct conn *, const char *why, int flush);

void	 conn_set_timeout(struct conn *, int read_timeout_s);
void	 conn_set_arg(struct conn *, void *arg);
/* Pending output past which the peer is dropped (CONN_OUT_HIGHWATER). */
void	 conn_set_highwater(struct conn *, size_t bytes);
/* Hands the connection to another protocol (agent port -> server link). */
void	 conn_set_cb(struct conn *, const struct conn_cb *cb, void *arg);
/* The verified peer certificate (borrowed) or NULL. */
X509	*conn_peer_cert(struct conn *);
/* "ip:port" of the peer. */
const char *conn_peer_addr(struct conn *);
size_t	 conn_out_pending(struct conn *);

#endif
