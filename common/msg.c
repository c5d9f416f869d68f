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

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "msg.h"
#include "util.h"

/* mp_to_json and mp_pack_json recurse; their input is bounded, but say so. */
#define MP_JSON_MAX_DEPTH	(MSG_MAX_DEPTH + 16)
/* The walker recurses once per level: bound the stack whatever is asked. */
#define MP_WALK_MAX_DEPTH	64

static int	fail(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static int
fail(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list	ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * The structural walker.  It trusts nothing in the buffer: every length is
 * checked against the bytes left before it is used, so that msgpack-c, which
 * allocates an array of objects as soon as it reads a count, only ever sees
 * counts that the message can actually hold.
 */
struct mp_walk {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	int		 maxdepth;
	char		*reason;
	size_t		 reasonlen;
};

enum mp_kind { K_SCALAR, K_STR, K_BIN, K_ARRAY, K_MAP };

static uint64_t
be_read(const uint8_t *p, size_t n)
{
	uint64_t	v = 0;
	size_t		i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Length of the strict UTF-8 character at s (no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 if there is none.
 */
static size_t
utf8_char(const uint8_t *s, size_t n)
{
	size_t		k, need;
	uint32_t	cp, min;
	uint8_t		c = s[0];

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		need = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		need = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		need = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n <= need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* 0, -1 for invalid UTF-8 or -2 for a NUL, with *bad its offset. */
static int
utf8_check(const uint8_t *s, size_t n, size_t *bad)
{
	size_t	i = 0, l;

	while (i < n) {
		/* Most text is ASCII: skip it a byte at a time, no decoding. */
		if (s[i] > 0 && s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] == 0) {
			*bad = i;
			return -2;
		}
		if ((l = utf8_char(s + i, n - i)) == 0) {
			*bad = i;
			return -1;
		}
		i += l;
	}
	return 0;
}

static int
walk_obj(struct mp_walk *w, int depth, int iskey)
{
	size_t		start = w->off, hl = 1, szlen = 0, left, bad, i;
	uint64_t	n = 0;
	enum mp_kind	kind = K_SCALAR;
	uint8_t		b;
	int		r;

	if (start >= w->len)
		return fail(w->reason, w->reasonlen,
		    "truncated msgpack at byte %zu", start);
	b = w->p[start];
	if (b <= 0x7f || b >= 0xe0)
		hl = 1;
	else if ((b & 0xf0) == 0x80) {
		kind = K_MAP;
		n = b & 0x0f;
	} else if ((b & 0xf0) == 0x90) {
		kind = K_ARRAY;
		n = b & 0x0f;
	} else if ((b & 0xe0) == 0xa0) {
		kind = K_STR;
		n = b & 0x1f;
	} else {
		switch (b) {
		case 0xc0:	/* nil */
		case 0xc2:	/* false */
		case 0xc3:	/* true */
			break;
		case 0xc1:
			return fail(w->reason, w->reasonlen,
			    "invalid msgpack byte 0xc1 at byte %zu", start);
		case 0xc4: case 0xc5: case 0xc6:
			kind = K_BIN;
			szlen = (size_t)1 << (b - 0xc4);
			break;
		case 0xc7: case 0xc8: case 0xc9:
		case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
			return fail(w->reason, w->reasonlen,
			    "msgpack extension type at byte %zu not allowed",
			    start);
		case 0xca:
			hl = 5;
			break;
		case 0xcb:
			hl = 9;
			break;
		case 0xcc: case 0xcd: case 0xce: case 0xcf:
			hl = 1 + ((size_t)1 << (b - 0xcc));
			break;
		case 0xd0: case 0xd1: case 0xd2: case 0xd3:
			hl = 1 + ((size_t)1 << (b - 0xd0));
			break;
		case 0xd9: case 0xda: case 0xdb:
			kind = K_STR;
			szlen = (size_t)1 << (b - 0xd9);
			break;
		case 0xdc: case 0xdd:
			kind = K_ARRAY;
			szlen = (size_t)2 << (b - 0xdc);
			break;
		case 0xde: case 0xdf:
			kind = K_MAP;
			szlen = (size_t)2 << (b - 0xde);
			break;
		default:
			return fail(w->reason, w->reasonlen,
			    "invalid msgpack byte 0x%02x at byte %zu", b,
			    start);
		}
	}
	if (iskey && kind != K_STR)
		return fail(w->reason, w->reasonlen,
		    "map key at byte %zu is not a string", start);
	if (kind != K_SCALAR)
		hl = 1 + szlen;
	if (w->len - start < hl)
		return fail(w->reason, w->reasonlen,
		    "truncated msgpack at byte %zu", start);
	if (szlen > 0)
		n = be_read(w->p + start + 1, szlen);
	w->off = start + hl;
	left = w->len - w->off;

	switch (kind) {
	case K_SCALAR:
		return 0;
	case K_STR:
	case K_BIN:
		if (n > MSG_MAX_STR)
			return fail(w->reason, w->reasonlen,
			    "string of %llu bytes at byte %zu over limit of %u",
			    (unsigned long long)n, start, MSG_MAX_STR);
		if (n > left)
			return fail(w->reason, w->reasonlen,
			    "truncated msgpack at byte %zu", start);
		if (kind == K_STR) {
			r = utf8_check(w->p + w->off, (size_t)n, &bad);
			if (r == -2)
				return fail(w->reason, w->reasonlen,
				    "NUL byte in string at byte %zu",
				    w->off + bad);
			if (r == -1)
				return fail(w->reason, w->reasonlen,
				    "invalid UTF-8 in string at byte %zu",
				    w->off + bad);
		}
		w->off += (size_t)n;
		return 0;
	case K_ARRAY:
	case K_MAP:
		if (depth + 1 > w->maxdepth)
			return fail(w->reason, w->reasonlen,
			    "nesting deeper than %d", w->maxdepth);
		/* Each element takes at least one byte. */
		if (n > left || (kind == K_MAP && n > left / 2))
			return fail(w->reason, w->reasonlen,
			    "truncated msgpack at byte %zu: %s of %llu "
			    "entries in %zu bytes", start,
			    kind == K_MAP ? "map" : "array",
			    (unsigned long long)n, left);
		for (i = 0; i < (size_t)n; i++) {
			if (kind == K_MAP &&
			    walk_obj(w, depth + 1, 1) == -1)
				return -1;
			if (walk_obj(w, depth + 1, 0) == -1)
				return -1;
		}
		return 0;
	}
	return -1;
}

int
mp_validate(const void *buf, size_t len, int maxdepth, char *reason,
    size_t reasonlen)
{
	struct mp_walk	 w;
	const uint8_t	*p = buf;

	if (len == 0)
		return fail(reason, reasonlen, "empty message");
	if ((p[0] & 0xf0) != 0x80 && p[0] != 0xde && p[0] != 0xdf)
		return fail(reason, reasonlen, "message is not a map");
	if (maxdepth > MP_WALK_MAX_DEPTH)
		maxdepth = MP_WALK_MAX_DEPTH;
	memset(&w, 0, sizeof(w));
	w.p = p;
	w.len = len;
	w.maxdepth = maxdepth;
	w.reason = reason;
	w.reasonlen = reasonlen;
	if (walk_obj(&w, 0, 0) == -1)
		return -1;
	if (w.off != len)
		return fail(reason, reasonlen, "trailing bytes after message");
	return 0;
}

/*
 * Schemas (docs/PROTOCOL.md).  Unknown keys are ignored so that later
 * versions may add fields.
 */
enum field_kind { F_STR, F_UINT, F_BOOL, F_MAP, F_ARRAY };

struct field {
	const char		*key;
	enum field_kind		 kind;
	int			 required;
	size_t			 max;	/* string bytes, array elements */
	const char *const	*values; /* a string's allowed values */
	const struct field	*elem;	/* each array element's map */
};

static const char *const roles[] = { "agent", "server", NULL };
static const char *const severities[] = {
	"info", "warning", "error", "critical", NULL
};

static const struct field f_hello[] = {
	{ "role", F_STR, 1, 16, roles, NULL },
	{ "name", F_STR, 1, MSG_MAX_NAME, NULL, NULL },
	{ "proto_min", F_UINT, 0, 0, NULL, NULL },
	{ "proto_max", F_UINT, 0, 0, NULL, NULL },
	{ "version", F_STR, 0, MSG_MAX_SHORT, NULL, NULL },
	{ "proto", F_UINT, 0, 0, NULL, NULL },
	{ "heartbeat_s", F_UINT, 0, 0, NULL, NULL },
	{ "device_id", F_STR, 0, MSG_MAX_SHORT, NULL, NULL },
	/* role server */
	{ "uuid", F_STR, 0, MSG_MAX_SHORT, NULL, NULL },
	{ "level", F_UINT, 0, 0, NULL, NULL },
	{ "rx", F_UINT, 0, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_register[] = {
	{ "token", F_STR, 1, MSG_MAX_TOKEN, NULL, NULL },
	{ "csr", F_STR, 1, MSG_MAX_CSR, NULL, NULL },
	{ "uuid", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "ca", F_STR, 0, MSG_MAX_CSR, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_registered[] = {
	{ "name", F_STR, 1, MSG_MAX_NAME, NULL, NULL },
	{ "cert", F_STR, 1, MSG_MAX_CSR, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_hbatch[] = {
	{ "snap", F_UINT, 1, 0, NULL, NULL },
	{ "last", F_UINT, 1, 0, NULL, NULL },
	/* each a JSON object as a string; checked by the receiver */
	{ "recs", F_ARRAY, 1, MSG_MAX_HRECS, NULL, NULL },
	{ "at_ms", F_UINT, 0, 0, NULL, NULL },
	{ "more", F_BOOL, 0, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_hack[] = {
	{ "snap", F_UINT, 1, 0, NULL, NULL },
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const char *const snap_phases[] = { "begin", "end", NULL };
static const struct field f_hsnap[] = {
	{ "phase", F_STR, 1, 16, snap_phases, NULL },
	{ "snap", F_UINT, 1, 0, NULL, NULL },
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_error[] = {
	{ "code", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "message", F_STR, 1, MSG_MAX_TEXT, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_enroll[] = {
	{ "token", F_STR, 1, MSG_MAX_TOKEN, NULL, NULL },
	{ "csr", F_STR, 1, MSG_MAX_CSR, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_enrolled[] = {
	{ "device_id", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "cert", F_STR, 1, MSG_MAX_CSR, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_sync[] = {
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ "hash", F_STR, 1, MSG_MAX_HASH, NULL, NULL },
	{ "inventory", F_MAP, 0, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_seq[] = {	/* heartbeat */
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_event[] = {
	{ "id", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "time", F_UINT, 1, 0, NULL, NULL },
	{ "severity", F_STR, 1, 16, severities, NULL },
	{ "type", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "text", F_STR, 1, MSG_MAX_EVENT_TEXT, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_events[] = {
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ "events", F_ARRAY, 1, MSG_MAX_EVENTS, NULL, f_event },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_ack[] = {
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ "need_inventory", F_BOOL, 0, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_retry[] = {
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ "after_ms", F_UINT, 1, 0, NULL, NULL },
	{ "message", F_STR, 0, MSG_MAX_TEXT, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const char *const task_states[] = {
	"done", "failed", "refused", NULL
};
static const struct field f_policy[] = {
	{ "hash", F_STR, 1, MSG_MAX_HASH, NULL, NULL },
	{ "settings", F_MAP, 1, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_policy_ack[] = {
	{ "hash", F_STR, 1, MSG_MAX_HASH, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_task[] = {
	{ "run", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "type", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "params", F_MAP, 0, 0, NULL, NULL },
	{ "expires", F_UINT, 0, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_task_result[] = {
	{ "seq", F_UINT, 1, 0, NULL, NULL },
	{ "run", F_STR, 1, MSG_MAX_SHORT, NULL, NULL },
	{ "state", F_STR, 1, 16, task_states, NULL },
	{ "exit_code", F_UINT, 0, 0, NULL, NULL },
	{ "output", F_STR, 0, MSG_MAX_TASK_OUTPUT, NULL, NULL },
	{ "finished", F_UINT, 1, 0, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL }
};
static const struct field f_none[] = {
	{ NULL, 0, 0, 0, NULL, NULL }
};

static const struct {
	const char		*name;
	const struct field	*fields;
} msg_types[MSG_TYPE_MAX] = {
	[MSG_HELLO] = { "hello", f_hello },
	[MSG_ERROR] = { "error", f_error },
	[MSG_ENROLL] = { "enroll", f_enroll },
	[MSG_ENROLLED] = { "enrolled", f_enrolled },
	[MSG_SYNC] = { "sync", f_sync },
	[MSG_ACK] = { "ack", f_ack },
	[MSG_RETRY] = { "retry", f_retry },
	[MSG_EVENTS] = { "events", f_events },
	[MSG_HEARTBEAT] = { "heartbeat", f_seq },
	[MSG_SYNC_NOW] = { "sync_now", f_none },
	[MSG_POLICY] = { "policy", f_policy },
	[MSG_POLICY_ACK] = { "policy_ack", f_policy_ack },
	[MSG_TASK] = { "task", f_task },
	[MSG_TASK_RESULT] = { "task_result", f_task_result },
	[MSG_REGISTER] = { "register", f_register },
	[MSG_REGISTERED] = { "registered", f_registered },
	[MSG_HBATCH] = { "h_batch", f_hbatch },
	[MSG_HACK] = { "h_ack", f_hack },
	[MSG_HSNAP] = { "h_snap", f_hsnap },
};

const char *
msg_type_name(enum msg_type t)
{
	if ((int)t <= 0 || t >= MSG_TYPE_MAX || msg_types[t].name == NULL)
		return "unknown";
	return msg_types[t].name;
}

static int
str_is(const msgpack_object *o, const char *s)
{
	size_t	n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

/* Copies at most 32 bytes of untrusted text for an error message. */
static void
sanitize(const char *s, size_t n, char *out, size_t outlen)
{
	size_t	i, j = 0;

	for (i = 0; i < n && j + 4 < outlen && i < 32; i++)
		out[j++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ?
		    s[i] : '?';
	if (i < n && j + 4 < outlen) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static int
check_fields(const char *tname, const char *where, const msgpack_object *map,
    const struct field *fields, char *reason, size_t reasonlen)
{
	const struct field	*f;
	const msgpack_object	*o;
	const char *const	*v;
	char			 elwhere[64];
	uint32_t		 i;

	for (f = fields; f->key != NULL; f++) {
		if ((o = mp_map_get(map, f->key)) == NULL) {
			if (f->required)
				return fail(reason, reasonlen,
				    "%s: %smissing '%s'", tname, where, f->key);
			continue;
		}
		switch (f->kind) {
		case F_STR:
			if (o->type != MSGPACK_OBJECT_STR)
				return fail(reason, reasonlen,
				    "%s: %s'%s' must be a string", tname,
				    where, f->key);
			if (f->max > 0 && o->via.str.size > f->max)
				return fail(reason, reasonlen,
				    "%s: %s'%s' longer than %zu bytes", tname,
				    where, f->key, f->max);
			if (f->values == NULL)
				break;
			for (v = f->values; *v != NULL; v++)
				if (str_is(o, *v))
					break;
			if (*v == NULL)
				return fail(reason, reasonlen,
				    "%s: %s'%s' has an unknown value", tname,
				    where, f->key);
			break;
		case F_UINT:
			/* msgpack-c turns a non-negative int positive. */
			if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				return fail(reason, reasonlen,
				    "%s: %s'%s' must be an unsigned integer",
				    tname, where, f->key);
			break;
		case F_BOOL:
			if (o->type != MSGPACK_OBJECT_BOOLEAN)
				return fail(reason, reasonlen,
				    "%s: %s'%s' must be a boolean", tname,
				    where, f->key);
			break;
		case F_MAP:
			if (o->type != MSGPACK_OBJECT_MAP)
				return fail(reason, reasonlen,
				    "%s: %s'%s' must be a map", tname, where,
				    f->key);
			break;
		case F_ARRAY:
			if (o->type != MSGPACK_OBJECT_ARRAY)
				return fail(reason, reasonlen,
				    "%s: %s'%s' must be an array", tname,
				    where, f->key);
			if (f->max > 0 && o->via.array.size > f->max)
				return fail(reason, reasonlen,
				    "%s: %s'%s' has %u elements, over limit "
				    "of %zu", tname, where, f->key,
				    o->via.array.size, f->max);
			if (f->elem == NULL)
				break;
			for (i = 0; i < o->via.array.size; i++) {
				const msgpack_object *e = &o->via.array.ptr[i];

				snprintf(elwhere, sizeof(elwhere),
				    "%s[%u]: ", f->key, i);
				if (e->type != MSGPACK_OBJECT_MAP)
					return fail(reason, reasonlen,
					    "%s: %s%s[%u] must be a map", tname,
					    where, f->key, i);
				if (check_fields(tname, elwhere, e, f->elem,
				    reason, reasonlen) == -1)
					return -1;
			}
			break;
		}
	}
	return 0;
}

/* hello's required fields depend on who says it. */
static int
check_hello(const msgpack_object *map, char *reason, size_t reasonlen)
{
	static const char *const agent_keys[] = { "proto_min", "proto_max",
	    NULL };
	static const char *const server_keys[] = { "heartbeat_s", NULL };
	const char *const	*k;
	int			 agent;

	agent = str_is(mp_map_get(map, "role"), "agent");
	for (k = agent ? agent_keys : server_keys; *k != NULL; k++)
		if (mp_map_get(map, *k) == NULL)
			return fail(reason, reasonlen,
			    "hello: missing '%s'", *k);
	/* A server answers with the version it chose, or (a server joining
	 * its parent) offers a range as agents do. */
	if (!agent && mp_map_get(map, "proto") == NULL &&
	    (mp_map_get(map, "proto_min") == NULL ||
	    mp_map_get(map, "proto_max") == NULL))
		return fail(reason, reasonlen, "hello: missing 'proto'");
	return 0;
}

static void
free_copy(void *p)
{
	free(p);
}

int
msg_decode(const void *buf, size_t len, struct msg *out, char *reason,
    size_t reasonlen)
{
	const msgpack_object	*t;
	char			*copy, name[48];
	size_t			 off = 0;
	int			 i;

	memset(out, 0, sizeof(*out));
	msgpack_unpacked_init(&out->up);
	if (mp_validate(buf, len, MSG_MAX_DEPTH, reason, reasonlen) == -1)
		return -1;

	/*
	 * msgpack-c's strings point into the input: decode a private copy
	 * owned by the zone, so the message outlives the caller's buffer.
	 */
	if ((copy = malloc(len)) == NULL)
		return fail(reason, reasonlen, "out of memory");
	memcpy(copy, buf, len);
	if (msgpack_unpack_next(&out->up, copy, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != len ||
	    out->up.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&out->up);
		free(copy);
		return fail(reason, reasonlen, "malformed msgpack");
	}
	if (out->up.zone == NULL)
		free(copy);	/* an empty map: nothing points into it */
	else if (!msgpack_zone_push_finalizer(out->up.zone, free_copy, copy)) {
		msgpack_unpacked_destroy(&out->up);
		free(copy);
		return fail(reason, reasonlen, "out of memory");
	}
	out->map = &out->up.data;

	if ((t = mp_map_get(out->map, "t")) == NULL) {
		fail(reason, reasonlen, "message has no 't'");
		goto bad;
	}
	if (t->type != MSGPACK_OBJECT_STR) {
		fail(reason, reasonlen, "'t' must be a string");
		goto bad;
	}
	for (i = 1; i < MSG_TYPE_MAX; i++)
		if (str_is(t, msg_types[i].name))
			break;
	if (i == MSG_TYPE_MAX) {
		sanitize(t->via.str.ptr, t->via.str.size, name, sizeof(name));
		fail(reason, reasonlen, "unknown message type '%s'", name);
		goto bad;
	}
	out->type = (enum msg_type)i;
	if (check_fields(msg_types[i].name, "", out->map, msg_types[i].fields,
	    reason, reasonlen) == -1)
		goto bad;
	if (out->type == MSG_HELLO &&
	    check_hello(out->map, reason, reasonlen) == -1)
		goto bad;
	return 0;
bad:
	msg_free(out);
	return -1;
}

void
msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	msgpack_unpacked_destroy(&m->up);
	m->map = NULL;
}

const msgpack_object *
mp_map_get(const msgpack_object *map, const char *key)
{
	uint32_t	i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++)
		if (str_is(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

const msgpack_object *
msg_get(const struct msg *m, const char *key)
{
	return mp_map_get(m->map, key);
}

int
msg_str(const struct msg *m, const char *key, char *dst, size_t dstlen)
{
	const char	*p;
	size_t		 n;

	if ((p = msg_strp(m, key, &n)) == NULL || n >= dstlen)
		return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

const char *
msg_strp(const struct msg *m, const char *key, size_t *len)
{
	const msgpack_object	*o = msg_get(m, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	if (len != NULL)
		*len = o->via.str.size;
	/* A zero-length string may have a NULL pointer; never return that. */
	return o->via.str.ptr != NULL ? o->via.str.ptr : "";
}

uint64_t
msg_uint(const struct msg *m, const char *key, uint64_t def)
{
	const msgpack_object	*o = msg_get(m, key);

	if (o == NULL)
		return def;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= 0)
		return (uint64_t)o->via.i64;
	return def;
}

int
msg_bool(const struct msg *m, const char *key, int def)
{
	const msgpack_object	*o = msg_get(m, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_BOOLEAN)
		return def;
	return o->via.boolean ? 1 : 0;
}

static json_t *
to_json(const msgpack_object *o, int depth)
{
	json_t		*j, *v;
	char		*b64;
	uint32_t	 i;

	if (depth > MP_JSON_MAX_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			return json_null();
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_stringn(o->via.str.size ? o->via.str.ptr : "",
		    o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		if ((b64 = b64_encode(o->via.bin.size ? o->via.bin.ptr : "",
		    o->via.bin.size)) == NULL)
			return NULL;
		j = json_string(b64);
		free(b64);
		return j;
	case MSGPACK_OBJECT_ARRAY:
		if ((j = json_array()) == NULL)
			return NULL;
		for (i = 0; i < o->via.array.size; i++) {
			if ((v = to_json(&o->via.array.ptr[i], depth + 1)) ==
			    NULL || json_array_append_new(j, v) == -1) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		if ((j = json_object()) == NULL)
			return NULL;
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			if (kv->key.type != MSGPACK_OBJECT_STR ||
			    (v = to_json(&kv->val, depth + 1)) == NULL) {
				json_decref(j);
				return NULL;
			}
			if (json_object_setn_new(j, kv->key.via.str.size ?
			    kv->key.via.str.ptr : "", kv->key.via.str.size,
			    v) == -1) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	default:
		return NULL;
	}
}

json_t *
mp_to_json(const msgpack_object *o)
{
	if (o == NULL)
		return NULL;
	return to_json(o, 0);
}

/* ---------------------------------------------------------- JSON text */

void
jbuf_free(struct jbuf *jb)
{
	free(jb->p);
	memset(jb, 0, sizeof(*jb));
}

static int
jbuf_reserve(struct jbuf *jb, size_t n)
{
	size_t	 cap;
	char	*p;

	if (jb->err)
		return -1;
	if (jb->len + n + 1 <= jb->cap)
		return 0;
	cap = jb->cap ? jb->cap : 256;
	while (cap < jb->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			jb->err = 1;
			return -1;
		}
		cap *= 2;
	}
	if ((p = realloc(jb->p, cap)) == NULL) {
		jb->err = 1;
		return -1;
	}
	jb->p = p;
	jb->cap = cap;
	return 0;
}

void
jbuf_raw(struct jbuf *jb, const char *s, size_t n)
{
	if (jbuf_reserve(jb, n) == -1)
		return;
	memcpy(jb->p + jb->len, s, n);
	jb->len += n;
	jb->p[jb->len] = '\0';
}

void
jbuf_str(struct jbuf *jb, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t		 i, run, k;
	char		 esc[6];

	/* Worst case \u00XX for every byte. */
	if (jbuf_reserve(jb, n * 6 + 2) == -1)
		return;
	jb->p[jb->len++] = '"';
	for (i = 0; i < n; i += run) {
		/* A run of plain ASCII is copied as it is. */
		for (run = 0; i + run < n && s[i + run] >= 0x20 &&
		    s[i + run] < 0x80 && s[i + run] != '"' &&
		    s[i + run] != '\\'; run++)
			;
		if (run > 0) {
			memcpy(jb->p + jb->len, s + i, run);
			jb->len += run;
			continue;
		}
		if (s[i] == '\0' || (run = utf8_char(s + i, n - i)) == 0) {
			jb->err = 1;
			return;
		}
		if (s[i] == '"' || s[i] == '\\') {
			jb->p[jb->len++] = '\\';
			jb->p[jb->len++] = (char)s[i];
		} else if (s[i] < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[s[i] >> 4];
			esc[5] = hex[s[i] & 0xf];
			memcpy(jb->p + jb->len, esc, 6);
			jb->len += 6;
		} else
			for (k = 0; k < run; k++)
				jb->p[jb->len++] = (char)s[i + k];
	}
	jb->p[jb->len++] = '"';
	jb->p[jb->len] = '\0';
}

static void
to_json_text(struct jbuf *jb, const msgpack_object *o, int depth)
{
	char		 num[40], *b64;
	uint32_t	 i;
	int		 n;

	if (depth > MP_JSON_MAX_DEPTH) {
		jb->err = 1;
		return;
	}
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		jbuf_raw(jb, "null", 4);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		if (o->via.boolean)
			jbuf_raw(jb, "true", 4);
		else
			jbuf_raw(jb, "false", 5);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		n = snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
		jbuf_raw(jb, num, (size_t)n);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(num, sizeof(num), "%" PRId64, o->via.i64);
		jbuf_raw(jb, num, (size_t)n);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64)) {
			jbuf_raw(jb, "null", 4);
			break;
		}
		n = snprintf(num, sizeof(num), "%.17g", o->via.f64);
		jbuf_raw(jb, num, (size_t)n);
		break;
	case MSGPACK_OBJECT_STR:
		jbuf_str(jb, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		if ((b64 = b64_encode(o->via.bin.size ? o->via.bin.ptr : "",
		    o->via.bin.size)) == NULL) {
			jb->err = 1;
			break;
		}
		jbuf_str(jb, b64, strlen(b64));
		free(b64);
		break;
	case MSGPACK_OBJECT_ARRAY:
		jbuf_raw(jb, "[", 1);
		for (i = 0; i < o->via.array.size && !jb->err; i++) {
			if (i > 0)
				jbuf_raw(jb, ",", 1);
			to_json_text(jb, &o->via.array.ptr[i], depth + 1);
		}
		jbuf_raw(jb, "]", 1);
		break;
	case MSGPACK_OBJECT_MAP:
		jbuf_raw(jb, "{", 1);
		for (i = 0; i < o->via.map.size && !jb->err; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			if (kv->key.type != MSGPACK_OBJECT_STR) {
				jb->err = 1;
				break;
			}
			if (i > 0)
				jbuf_raw(jb, ",", 1);
			jbuf_str(jb, kv->key.via.str.ptr, kv->key.via.str.size);
			jbuf_raw(jb, ":", 1);
			to_json_text(jb, &kv->val, depth + 1);
		}
		jbuf_raw(jb, "}", 1);
		break;
	default:
		jb->err = 1;
		break;
	}
}

int
mp_to_json_text(struct jbuf *jb, const msgpack_object *o)
{
	if (o == NULL) {
		jb->err = 1;
		return -1;
	}
	to_json_text(jb, o, 0);
	return jb->err ? -1 : 0;
}

static int
pack_json(msgpack_packer *pk, const json_t *j, int depth)
{
	json_t		*jj;
	const char	*k;
	void		*it;
	size_t		 i, n;
	json_int_t	 iv;

	if (depth > MP_JSON_MAX_DEPTH)
		return -1;
	jj = (json_t *)(uintptr_t)j;	/* jansson's iterators take no const */
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (msgpack_pack_map(pk, json_object_size(j)) != 0)
			return -1;
		for (it = json_object_iter(jj); it != NULL;
		    it = json_object_iter_next(jj, it)) {
			k = json_object_iter_key(it);
			n = json_object_iter_key_len(it);
			if (msgpack_pack_str(pk, n) != 0 ||
			    msgpack_pack_str_body(pk, k, n) != 0 ||
			    pack_json(pk, json_object_iter_value(it),
			    depth + 1) == -1)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		n = json_array_size(j);
		if (msgpack_pack_array(pk, n) != 0)
			return -1;
		for (i = 0; i < n; i++)
			if (pack_json(pk, json_array_get(j, i), depth + 1) ==
			    -1)
				return -1;
		return 0;
	case JSON_STRING:
		n = json_string_length(j);
		if (msgpack_pack_str(pk, n) != 0 ||
		    msgpack_pack_str_body(pk, json_string_value(j), n) != 0)
			return -1;
		return 0;
	case JSON_INTEGER:
		iv = json_integer_value(j);
		if (iv >= 0)
			return msgpack_pack_uint64(pk, (uint64_t)iv) == 0 ?
			    0 : -1;
		return msgpack_pack_int64(pk, (int64_t)iv) == 0 ? 0 : -1;
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(j)) == 0 ?
		    0 : -1;
	case JSON_TRUE:
		return msgpack_pack_true(pk) == 0 ? 0 : -1;
	case JSON_FALSE:
		return msgpack_pack_false(pk) == 0 ? 0 : -1;
	case JSON_NULL:
		return msgpack_pack_nil(pk) == 0 ? 0 : -1;
	}
	return -1;
}

int
mp_pack_json(msgpack_packer *pk, const json_t *j)
{
	if (j == NULL)
		return -1;
	return pack_json(pk, j, 0);
}

void
mp_str(msgpack_packer *pk, const char *s)
{
	size_t	n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void
mp_str_clean(msgpack_packer *pk, const char *s, size_t max)
{
	const uint8_t	*p = (const uint8_t *)s;
	size_t		 n = strlen(s), i = 0, o = 0, l;
	char		*buf;

	if ((buf = malloc(n + 1)) == NULL) {
		msgpack_pack_str(pk, 0);	/* keep the map well-formed */
		return;
	}
	while (i < n) {
		if ((l = utf8_char(p + i, n - i)) == 0) {
			l = 1;		/* one '?' per bad byte */
			if (o + 1 > max)
				break;
			buf[o++] = '?';
		} else {
			if (o + l > max)
				break;
			memcpy(buf + o, p + i, l);
			o += l;
		}
		i += l;
	}
	msgpack_pack_str(pk, o);
	msgpack_pack_str_body(pk, buf, o);
	free(buf);
}

void
mp_key(msgpack_packer *pk, const char *k)
{
	mp_str(pk, k);
}

void
mp_begin(msgpack_packer *pk, enum msg_type t, size_t nfields)
{
	msgpack_pack_map(pk, nfields);
	mp_kv_str(pk, "t", msg_type_name(t));
}

void
mp_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	mp_str(pk, k);
	mp_str(pk, v);
}

void
mp_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	mp_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

void
mp_kv_bool(msgpack_packer *pk, const char *k, int v)
{
	mp_str(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

/* At most max bytes of s, cut at a UTF-8 character boundary. */
static size_t
utf8_prefix(const char *s, size_t max)
{
	size_t	n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
msg_pack_error(msgpack_sbuffer *sb, const char *code, const char *message)
{
	msgpack_packer	pk;
	size_t		n;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_ERROR, 3);
	mp_str(&pk, "code");
	n = utf8_prefix(code, MSG_MAX_SHORT);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, code, n);
	mp_str(&pk, "message");
	n = utf8_prefix(message, MSG_MAX_TEXT);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, message, n);
}
