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
 * proto-probe: speaks raw port-13000 protocol for tests.
 *
 *   proto-probe --ca FILE [--cert FILE --key FILE] [--timeout S]
 *       [--send-json JSON | --send-json-file PATH | --send-frame-hex HEX |
 *        --send-raw-hex HEX | --recv | --wait-file PATH |
 *        --touch-file PATH]... HOST:PORT
 *
 * Actions run in order: --send-json packs JSON as msgpack into one frame
 * (--send-json-file: the JSON in PATH, for messages too big for argv),
 * --send-frame-hex frames the given bytes, --send-raw-hex writes bytes as
 * they are (bad lengths, garbage), --recv waits for one frame, --wait-file
 * waits (within the timeout) until PATH exists, so that a test can change
 * the world in the middle of a conversation, and --touch-file creates PATH
 * (all before it was sent, say).  Then every
 * frame received is printed as one JSON line until the server closes:
 * "CLOSED" and exit 0.  A timeout prints "TIMEOUT" (exit 2), a TLS failure
 * "TLS_ERROR: why" (exit 3), other failures exit 1.
 *
 *   proto-probe --frame-hex JSON
 *
 * prints the frame --send-json would send, in hex, for tests that glue
 * frames together into one write.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "frame.h"
#include "canopy_limits.h"
#include "msg.h"
#include "pki.h"
#include "util.h"

#define PROBE_MAX_FRAME	(64u * 1024 * 1024)

enum { R_FRAME, R_CLOSED, R_TIMEOUT, R_TLS, R_ERR };

static SSL	*ssl;
static int	 sock = -1;
static int64_t	 deadline_ms;
static char	 tls_why[256];

static void
usage(void)
{
	fprintf(stderr, "usage: proto-probe --ca FILE [--cert FILE --key FILE]"
	    " [--timeout S]\n    [--send-json JSON | --send-frame-hex HEX | "
	    "--send-raw-hex HEX | --send-json-file PATH |\n     --recv | "
	    "--wait-file PATH | --touch-file PATH]... HOST:PORT\n");
	exit(1);
}

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
tls_error(void)
{
	unsigned long	 e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, tls_why, sizeof(tls_why));
	else
		snprintf(tls_why, sizeof(tls_why), "%s", strerror(errno));
	ERR_clear_error();
}

static int
tcp_connect(const char *hostport)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256], *port;
	int		 fd = -1, e;

	snprintf(host, sizeof(host), "%s", hostport);
	if ((port = strrchr(host, ':')) == NULL)
		usage();
	*port++ = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "proto-probe: %s: %s\n", hostport,
		    gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		fprintf(stderr, "proto-probe: connect %s: %s\n", hostport,
		    strerror(errno));
	return fd;
}

/* Reads exactly len bytes; R_FRAME when done. */
static int
read_full(uint8_t *buf, size_t len, int eof_ok)
{
	struct pollfd	 pfd;
	size_t		 got = 0;
	int		 n, left, err;

	while (got < len) {
		if (SSL_pending(ssl) == 0) {
			left = (int)(deadline_ms - now_ms());
			if (left <= 0)
				return R_TIMEOUT;
			pfd.fd = sock;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, left) == 0)
				return R_TIMEOUT;
		}
		n = SSL_read(ssl, buf + got, (int)(len - got));
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		err = SSL_get_error(ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			continue;
		if (err == SSL_ERROR_ZERO_RETURN ||
		    (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
		    (errno == 0 || errno == ECONNRESET || errno == EPIPE))) {
			if (got > 0 && !eof_ok)
				fprintf(stderr, "proto-probe: closed in the "
				    "middle of a frame\n");
			return R_CLOSED;
		}
		tls_error();
		return R_TLS;
	}
	return R_FRAME;
}

static void
print_frame(const uint8_t *body, size_t len)
{
	msgpack_unpacked up;
	size_t		 off = 0, i;
	json_t		*j = NULL;
	char		*s;

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)body, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == len)
		j = mp_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	if (j == NULL) {
		printf("{\"raw_hex\":\"");
		for (i = 0; i < len; i++)
			printf("%02x", body[i]);
		printf("\"}\n");
	} else {
		s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "null");
		free(s);
		json_decref(j);
	}
	fflush(stdout);
}

static int
recv_frame(void)
{
	uint8_t		 hdr[FRAME_HDR_LEN], *body;
	uint32_t	 len;
	int		 r;

	if ((r = read_full(hdr, sizeof(hdr), 1)) != R_FRAME)
		return r;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (len > PROBE_MAX_FRAME) {
		fprintf(stderr, "proto-probe: frame of %u bytes\n", len);
		return R_ERR;
	}
	if ((body = malloc(len ? len : 1)) == NULL)
		return R_ERR;
	if ((r = read_full(body, len, 0)) == R_FRAME)
		print_frame(body, len);
	free(body);
	return r;
}

static int
send_bytes(const void *buf, size_t len)
{
	int	 n;

	if (len == 0)
		return 0;
	n = SSL_write(ssl, buf, (int)len);
	if (n <= 0) {
		tls_error();
		fprintf(stderr, "proto-probe: write: %s\n", tls_why);
		return -1;
	}
	return 0;
}

static int
send_frame(const void *body, size_t len)
{
	uint8_t	*buf;
	int	 r;

	if ((buf = malloc(len + FRAME_HDR_LEN)) == NULL)
		return -1;
	frame_put_header(buf, (uint32_t)len);
	memcpy(buf + FRAME_HDR_LEN, body, len);
	r = send_bytes(buf, len + FRAME_HDR_LEN);
	free(buf);
	return r;
}

static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t		 n = strlen(hex), i;
	uint8_t		*out;
	unsigned	 v;

	if (n % 2 != 0 || (out = malloc(n / 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return out;
}

static int
pack_json(const char *text, msgpack_sbuffer *sb)
{
	msgpack_packer	 pk;
	json_error_t	 jerr;
	json_t		*j;

	if ((j = json_loads(text, JSON_DECODE_ANY, &jerr)) == NULL) {
		fprintf(stderr, "proto-probe: JSON: %s\n", jerr.text);
		exit(1);
	}
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (mp_pack_json(&pk, j) == -1) {
		fprintf(stderr, "proto-probe: JSON: cannot pack\n");
		exit(1);
	}
	json_decref(j);
	return 0;
}

static int
frame_hex(const char *text)
{
	msgpack_sbuffer	 sb;
	uint8_t		 hdr[FRAME_HDR_LEN];
	size_t		 i;

	pack_json(text, &sb);
	frame_put_header(hdr, (uint32_t)sb.size);
	for (i = 0; i < sizeof(hdr); i++)
		printf("%02x", hdr[i]);
	for (i = 0; i < sb.size; i++)
		printf("%02x", (uint8_t)sb.data[i]);
	printf("\n");
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

static int
send_json(const char *text)
{
	msgpack_sbuffer	 sb;
	int		 r;

	pack_json(text, &sb);
	r = send_frame(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

static int
wait_file(const char *path)
{
	while (access(path, F_OK) == -1) {
		if (now_ms() >= deadline_ms)
			return -1;
		poll(NULL, 0, 20);
	}
	return 0;
}

static int
finish(int r)
{
	switch (r) {
	case R_CLOSED:
		printf("CLOSED\n");
		return 0;
	case R_TIMEOUT:
		printf("TIMEOUT\n");
		return 2;
	case R_TLS:
		printf("TLS_ERROR: %s\n", tls_why);
		return 3;
	default:
		return 1;
	}
}

int
main(int argc, char **argv)
{
	const char	*ca = NULL, *cert = NULL, *key = NULL, *target = NULL;
	SSL_CTX		*ctx;
	struct timeval	 tv;
	char		 err[256];
	uint8_t		*raw;
	size_t		 rawlen;
	int		 i, r, timeout_s = 10, sent_ok = 1;

	if (argc == 3 && strcmp(argv[1], "--frame-hex") == 0)
		return frame_hex(argv[2]);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* First pass: options and the target; actions run afterwards. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--recv") == 0)
			continue;
		if (argv[i][0] != '-' || argv[i][1] != '-') {
			target = argv[i];
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--ca") == 0)
			ca = argv[i + 1];
		else if (strcmp(argv[i], "--cert") == 0)
			cert = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0)
			key = argv[i + 1];
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout_s = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--send-json") != 0 &&
		    strcmp(argv[i], "--send-json-file") != 0 &&
		    strcmp(argv[i], "--touch-file") != 0 &&
		    strcmp(argv[i], "--send-raw-hex") != 0 &&
		    strcmp(argv[i], "--send-frame-hex") != 0 &&
		    strcmp(argv[i], "--wait-file") != 0)
			usage();
		i++;
	}
	if (ca == NULL || target == NULL || (cert == NULL) != (key == NULL) ||
	    timeout_s <= 0)
		usage();
	deadline_ms = now_ms() + (int64_t)timeout_s * 1000;

	if ((ctx = tls_client_ctx(ca, cert, key, err, sizeof(err))) == NULL) {
		fprintf(stderr, "proto-probe: %s\n", err);
		return 1;
	}
	if ((sock = tcp_connect(target)) == -1)
		return 1;
	/* The handshake blocks: bound it too (a server may not accept). */
	tv.tv_sec = timeout_s;
	tv.tv_usec = 0;
	(void)setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, sock) != 1)
		return 1;
	if (SSL_connect(ssl) != 1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return finish(R_TIMEOUT);
		tls_error();
		return finish(R_TLS);
	}

	for (i = 1; i < argc && sent_ok; i++) {
		if (strcmp(argv[i], "--recv") == 0) {
			if ((r = recv_frame()) != R_FRAME)
				return finish(r);
		} else if (strcmp(argv[i], "--wait-file") == 0) {
			if (wait_file(argv[++i]) == -1)
				return finish(R_TIMEOUT);
		} else if (strcmp(argv[i], "--send-json") == 0) {
			sent_ok = send_json(argv[++i]) == 0;
		} else if (strcmp(argv[i], "--touch-file") == 0) {
			FILE *f = fopen(argv[++i], "w");

			if (f == NULL || fclose(f) != 0) {
				fprintf(stderr, "proto-probe: cannot create %s\n",
				    argv[i]);
				return 1;
			}
		} else if (strcmp(argv[i], "--send-json-file") == 0) {
			char *js;

			if ((js = file_read(argv[++i], FRAME_MAX_DEFAULT,
			    NULL)) == NULL) {
				fprintf(stderr, "proto-probe: cannot read %s: "
				    "%s\n", argv[i], strerror(errno));
				return 1;
			}
			sent_ok = send_json(js) == 0;
			free(js);
		} else if (strcmp(argv[i], "--send-raw-hex") == 0 ||
		    strcmp(argv[i], "--send-frame-hex") == 0) {
			if ((raw = hex_decode(argv[i + 1], &rawlen)) == NULL) {
				fprintf(stderr, "proto-probe: bad hex\n");
				return 1;
			}
			if (argv[i][7] == 'r')
				sent_ok = send_bytes(raw, rawlen) == 0;
			else
				sent_ok = send_frame(raw, rawlen) == 0;
			free(raw);
			i++;
		} else if (strncmp(argv[i], "--", 2) == 0)
			i++;
	}
	/* A write may fail because the server already answered and closed. */
	while ((r = recv_frame()) == R_FRAME)
		;
	r = finish(r);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(sock);
	return r;
}
