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
 * libFuzzer target for msg_decode() and mp_validate().  A message that
 * decodes must survive every getter, convert to JSON and back, and the
 * result must validate again; its JSON text (the writer storing inventories)
 * must parse to the same JSON as the tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "msg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const keys[] = {
	"t", "role", "name", "proto_min", "proto_max", "version", "proto",
	"heartbeat_s", "device_id", "code", "message", "token", "csr", "cert",
	"seq", "hash", "inventory", "events", "need_inventory", "after_ms",
	"uuid", "level", "rx", "ca", "snap", "last", "recs", "at_ms", "more",
	"phase", NULL
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg		 m;
	char			 reason[256], buf[128];
	const char *const	*k;
	const msgpack_object	*o;
	json_t			*j, *back, *same;
	char			*tree;
	json_error_t		 jerr;
	struct jbuf		 jb = { NULL, 0, 0, 0 };
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	size_t			 n;
	int			 v;

	v = mp_validate(data, size, MSG_MAX_DEPTH, reason, sizeof(reason));
	if (msg_decode(data, size, &m, reason, sizeof(reason)) == -1) {
		if (memchr(reason, '\0', sizeof(reason)) == NULL)
			abort();
		return 0;
	}
	if (v != 0 || m.type <= 0 || m.type >= MSG_TYPE_MAX)
		abort();
	for (k = keys; *k != NULL; k++) {
		(void)msg_str(&m, *k, buf, sizeof(buf));
		(void)msg_strp(&m, *k, &n);
		(void)msg_uint(&m, *k, 0);
		(void)msg_bool(&m, *k, 0);
	}
	if ((o = msg_get(&m, "events")) != NULL) {
		uint32_t	i;

		for (i = 0; i < o->via.array.size; i++)
			if (mp_map_get(&o->via.array.ptr[i], "id") == NULL)
				abort();
	}

	/* Validated input has string keys and UTF-8 strings: JSON must work. */
	if ((j = mp_to_json(m.map)) == NULL)
		abort();
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (mp_pack_json(&pk, j) == -1)
		abort();
	if (mp_validate(sb.data, sb.size, MSG_MAX_DEPTH, reason,
	    sizeof(reason)) == -1)
		abort();
	msgpack_sbuffer_destroy(&sb);
	/*
	 * Integers past INT64_MAX are exact in the text but doubles in the
	 * tree (a jansson limit): compare both with numbers read as reals.
	 */
	if (mp_to_json_text(&jb, m.map) == -1 ||
	    (tree = json_dumps(j, JSON_COMPACT)) == NULL ||
	    (back = json_loadb(jb.p, jb.len, JSON_DECODE_INT_AS_REAL,
	    &jerr)) == NULL ||
	    (same = json_loads(tree, JSON_DECODE_INT_AS_REAL, &jerr)) == NULL ||
	    !json_equal(back, same))
		abort();
	free(tree);
	json_decref(back);
	json_decref(same);
	jbuf_free(&jb);
	json_decref(j);
	msg_free(&m);
	return 0;
}
