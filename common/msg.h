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

#ifndef CANOPY_MSG_H
#define CANOPY_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

/*
 * Messages of the port-13000 protocol (docs/PROTOCOL.md).  Each is a msgpack
 * map whose key "t" names its type.  msg_decode() checks the structure
 * (depth <= MSG_MAX_DEPTH, every count and length within the bytes present)
 * and the type's schema (required keys, their types and length limits) before
 * anything else looks at it, so protocol code can use the getters freely.
 */
enum msg_type {
	MSG_HELLO = 1,
	MSG_ERROR,
	MSG_ENROLL,
	MSG_ENROLLED,
	MSG_SYNC,
	MSG_ACK,
	MSG_RETRY,
	MSG_EVENTS,
	MSG_HEARTBEAT,
	MSG_SYNC_NOW,
	MSG_POLICY,		/* server: the device's effective policy */
	MSG_POLICY_ACK,		/* agent: that policy is applied */
	MSG_TASK,		/* server: run this */
	MSG_TASK_RESULT,	/* agent: how it went */
	MSG_REGISTER,		/* child server: join with a token and a CSR */
	MSG_REGISTERED,		/* parent: the child's certificate */
	MSG_HBATCH,		/* server link: records of a stream */
	MSG_HACK,		/* server link: records applied up to here */
	MSG_HSNAP,		/* server link: a snapshot begins or ends */
	MSG_TYPE_MAX
};

struct msg {
	enum msg_type		 type;
	const msgpack_object	*map;	/* the root map; valid until msg_free */
	msgpack_unpacked	 up;
};

/* Returns 0, or -1 with reason, e.g. "sync: 'seq' must be an unsigned integer". */
int	 msg_decode(const void *buf, size_t len, struct msg *out,
	    char *reason, size_t reasonlen);
void	 msg_free(struct msg *);
const char *msg_type_name(enum msg_type);

/* Checks structure only: depth and that counts fit in len.  Pure. */
int	 mp_validate(const void *buf, size_t len, int maxdepth,
	    char *reason, size_t reasonlen);

/* Map look-ups on a decoded message or any map object. */
const msgpack_object *mp_map_get(const msgpack_object *map, const char *key);
const msgpack_object *msg_get(const struct msg *, const char *key);
/* Copies a string field NUL-terminated; -1 if absent, not a string or too long. */
int	 msg_str(const struct msg *, const char *key, char *dst, size_t dstlen);
/* Pointer into the message (not NUL-terminated) or NULL. */
const char *msg_strp(const struct msg *, const char *key, size_t *len);
uint64_t msg_uint(const struct msg *, const char *key, uint64_t def);
int	 msg_bool(const struct msg *, const char *key, int def);

/* msgpack -> JSON (maps with string keys only; bin becomes base64). */
json_t	*mp_to_json(const msgpack_object *);
/*
 * msgpack -> compact JSON text, written straight into a growable buffer with
 * no JSON tree in between (the agent hot path: an inventory is thousands of
 * values).  Same rules as mp_to_json, and what PostgreSQL's jsonb accepts:
 * maps with string keys, UTF-8 strings without NUL, bin as base64, non-finite
 * floats as null.  Appends; on any failure jb->err is set and stays set.
 */
struct jbuf {
	char	*p;		/* malloc'd, NUL-terminated while !err */
	size_t	 len;
	size_t	 cap;
	int	 err;
};
void	 jbuf_raw(struct jbuf *, const char *, size_t);
void	 jbuf_str(struct jbuf *, const char *, size_t);	/* quoted */
void	 jbuf_free(struct jbuf *);
int	 mp_to_json_text(struct jbuf *, const msgpack_object *);

/* JSON -> msgpack, appended to the packer. */
int	 mp_pack_json(msgpack_packer *, const json_t *);

/* Packing helpers: start a message map of n entries including "t". */
void	 mp_begin(msgpack_packer *, enum msg_type, size_t nfields);
void	 mp_str(msgpack_packer *, const char *s);
void	 mp_kv_str(msgpack_packer *, const char *k, const char *v);
void	 mp_kv_uint(msgpack_packer *, const char *k, uint64_t v);
void	 mp_kv_bool(msgpack_packer *, const char *k, int v);
void	 mp_key(msgpack_packer *, const char *k);
/*
 * Packs text from the system (files, sysfs, utmp) as a string the peer will
 * accept: invalid UTF-8 and NUL bytes become '?', and it is cut to at most
 * max bytes at a character boundary.
 */
void	 mp_str_clean(msgpack_packer *, const char *s, size_t max);

/* Whole messages used by both sides. */
void	 msg_pack_error(msgpack_sbuffer *, const char *code, const char *message);

#endif
