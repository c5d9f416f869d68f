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

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "msg.h"
#include "test.h"

static msgpack_sbuffer	sb;
static msgpack_packer	pk;
static char		reason[256];

static void
start(void)
{
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

/* Decodes what was packed; returns 0/-1 and leaves reason. */
static int
decode(struct msg *m)
{
	reason[0] = '\0';
	return msg_decode(sb.data, sb.size, m, reason, sizeof(reason));
}

static int
decode_fails(const char *want)
{
	struct msg	m;
	int		ok;

	if (decode(&m) == 0) {
		msg_free(&m);
		fprintf(stderr, "decoded, wanted: %s\n", want);
		return 0;
	}
	ok = strcmp(reason, want) == 0;
	if (!ok)
		fprintf(stderr, "reason '%s', wanted '%s'\n", reason, want);
	return ok;
}

static int
validate(const void *buf, size_t len, int depth)
{
	reason[0] = '\0';
	return mp_validate(buf, len, depth, reason, sizeof(reason));
}

static void
pack_str_n(size_t n, char c)
{
	char	*s = malloc(n + 1);

	memset(s, c, n);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
	free(s);
}

static void
pack_event(const char *id, const char *sev)
{
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "id", id);
	mp_kv_uint(&pk, "time", 1700000000000ULL);
	mp_kv_str(&pk, "severity", sev);
	mp_kv_str(&pk, "type", "disk");
	mp_kv_str(&pk, "text", "disk almost full");
}

static void
test_each_type(void)
{
	struct msg	 m;
	char		 buf[64];
	const char	*p;
	size_t		 n;

	start();
	mp_begin(&pk, MSG_HELLO, 6);
	mp_kv_str(&pk, "role", "agent");
	mp_kv_str(&pk, "name", "host1");
	mp_kv_uint(&pk, "proto_min", 1);
	mp_kv_uint(&pk, "proto_max", 1);
	mp_kv_str(&pk, "version", "0.1");
	CHECK(decode(&m) == 0);
	CHECK(m.type == MSG_HELLO);
	CHECK(msg_str(&m, "name", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "host1");
	CHECK(msg_str(&m, "name", buf, 5) == -1);	/* no room for NUL */
	CHECK(msg_str(&m, "name", buf, 6) == 0);
	CHECK(msg_str(&m, "proto_min", buf, sizeof(buf)) == -1);
	CHECK(msg_str(&m, "absent", buf, sizeof(buf)) == -1);
	CHECK((p = msg_strp(&m, "role", &n)) != NULL && n == 5 &&
	    memcmp(p, "agent", 5) == 0);
	CHECK(msg_strp(&m, "proto_max", &n) == NULL);
	CHECK(msg_uint(&m, "proto_max", 9) == 1);
	CHECK(msg_uint(&m, "absent", 9) == 9);
	CHECK(msg_uint(&m, "name", 9) == 9);
	CHECK(msg_bool(&m, "name", -1) == -1);
	CHECK(msg_get(&m, "t") != NULL);
	msg_free(&m);
	msg_free(&m);	/* twice is harmless */

	start();
	mp_begin(&pk, MSG_HELLO, 6);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", "primary");
	mp_kv_uint(&pk, "proto", 1);
	mp_kv_uint(&pk, "heartbeat_s", 60);
	mp_kv_str(&pk, "device_id", "d-123");
	CHECK(decode(&m) == 0 && m.type == MSG_HELLO);
	msg_free(&m);

	start();
	msg_pack_error(&sb, "bad_token", "the token is unknown");
	CHECK(decode(&m) == 0 && m.type == MSG_ERROR);
	CHECK(msg_str(&m, "code", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "bad_token");
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_ENROLL, 3);
	mp_kv_str(&pk, "token", "abc");
	mp_kv_str(&pk, "csr", "-----BEGIN CERTIFICATE REQUEST-----");
	CHECK(decode(&m) == 0 && m.type == MSG_ENROLL);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_ENROLLED, 3);
	mp_kv_str(&pk, "device_id", "d-1");
	mp_kv_str(&pk, "cert", "-----BEGIN CERTIFICATE-----");
	CHECK(decode(&m) == 0 && m.type == MSG_ENROLLED);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_SYNC, 4);
	mp_kv_uint(&pk, "seq", 7);
	mp_kv_str(&pk, "hash", "00ff");
	mp_key(&pk, "inventory");
	msgpack_pack_map(&pk, 2);
	mp_kv_str(&pk, "hostname", "h");
	mp_key(&pk, "os");
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "name", "Debian");
	CHECK(decode(&m) == 0 && m.type == MSG_SYNC);
	CHECK(msg_uint(&m, "seq", 0) == 7);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_ACK, 3);
	mp_kv_uint(&pk, "seq", 7);
	mp_kv_bool(&pk, "need_inventory", 1);
	CHECK(decode(&m) == 0 && m.type == MSG_ACK);
	CHECK(msg_bool(&m, "need_inventory", 0) == 1);
	CHECK(msg_bool(&m, "absent", 0) == 0);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_RETRY, 4);
	mp_kv_uint(&pk, "seq", 7);
	mp_kv_uint(&pk, "after_ms", 2000);
	mp_kv_str(&pk, "message", "database down");
	CHECK(decode(&m) == 0 && m.type == MSG_RETRY);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 8);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, 2);
	pack_event("e1", "info");
	pack_event("e2", "critical");
	CHECK(decode(&m) == 0 && m.type == MSG_EVENTS);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_HEARTBEAT, 2);
	mp_kv_uint(&pk, "seq", 9);
	CHECK(decode(&m) == 0 && m.type == MSG_HEARTBEAT);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_SYNC_NOW, 1);
	CHECK(decode(&m) == 0 && m.type == MSG_SYNC_NOW);
	msg_free(&m);

	CHECK_STR(msg_type_name(MSG_SYNC_NOW), "sync_now");
	CHECK_STR(msg_type_name(MSG_TYPE_MAX), "unknown");
	CHECK_STR(msg_type_name((enum msg_type)0), "unknown");
}

static void
test_structure(void)
{
	uint8_t		 b[64], *big;
	size_t		 i, n;
	struct msg	 m;

	CHECK(validate("", 0, 16) == -1);
	CHECK(validate("\x90", 1, 16) == -1);
	CHECK_STR(reason, "message is not a map");
	CHECK(validate("\xa1x", 2, 16) == -1);
	CHECK_STR(reason, "message is not a map");
	CHECK(validate("\x80", 1, 16) == 0);
	CHECK(validate("\x80\x80", 2, 16) == -1);
	CHECK_STR(reason, "trailing bytes after message");

	/* {"t": "sync", "seq": 5, "hash": "abcdef"} cut short at each byte. */
	start();
	mp_begin(&pk, MSG_SYNC, 3);
	mp_kv_uint(&pk, "seq", 5);
	mp_kv_str(&pk, "hash", "abcdef");
	CHECK(validate(sb.data, sb.size, 16) == 0);
	for (n = 1; n < sb.size; n++)
		CHECK(validate(sb.data, n, 16) == -1);
	/* 1+2+5 (t) +4+1 (seq) = 13: "hash" key at 13, its value at 18. */
	CHECK(validate(sb.data, 17, 16) == -1);
	CHECK_STR(reason, "truncated msgpack at byte 13");
	CHECK(validate(sb.data, 20, 16) == -1);
	CHECK_STR(reason, "truncated msgpack at byte 18");
	CHECK(validate(sb.data, 1, 16) == -1);
	CHECK(strncmp(reason, "truncated msgpack at byte 0", 27) == 0);

	/* Depth: 16 levels of nesting pass, 17 do not. */
	for (i = 0; i < 16; i++) {
		b[2 * i] = 0x81;	/* {"": ...} */
		b[2 * i + 1] = 0xa0;
	}
	b[32] = 0xc0;
	CHECK(validate(b, 33, MSG_MAX_DEPTH) == 0);
	b[32] = 0x80;	/* one more (empty) map */
	CHECK(validate(b, 33, MSG_MAX_DEPTH) == -1);
	CHECK_STR(reason, "nesting deeper than 16");
	b[32] = 0x90;	/* arrays count too */
	CHECK(validate(b, 33, MSG_MAX_DEPTH) == -1);
	CHECK(msg_decode(b, 33, &m, reason, sizeof(reason)) == -1);
	CHECK_STR(reason, "nesting deeper than 16");

	/* Counts larger than the bytes present. */
	memcpy(b, "\x81\xa1x\xdd\xff\xff\xff\xff", 8);	/* array32 */
	CHECK(validate(b, 8, 16) == -1);
	CHECK(strncmp(reason, "truncated msgpack at byte 3", 27) == 0);
	memcpy(b, "\xdf\x7f\xff\xff\xff\xa0\xc0", 7);	/* map32 */
	CHECK(validate(b, 7, 16) == -1);
	/* An array of n needs n bytes: exactly enough passes. */
	memcpy(b, "\x81\xa1x\x93\xc0\xc0\xc0", 7);
	CHECK(validate(b, 7, 16) == 0);
	CHECK(validate(b, 6, 16) == -1);
	memcpy(b, "\x81\xa1x\xdc\x00\x03\xc0\xc0", 8);	/* array16 */
	CHECK(validate(b, 8, 16) == -1);
	/* A map of n needs 2n. */
	memcpy(b, "\x82\xa1x\xc0\xa1y", 6);
	CHECK(validate(b, 6, 16) == -1);

	/* Strings: declared length past the end. */
	memcpy(b, "\x81\xa1x\xdb\x00\x00\x00\x05" "abcd", 12);
	CHECK(validate(b, 12, 16) == -1);
	CHECK_STR(reason, "truncated msgpack at byte 3");
	memcpy(b, "\x81\xa1x\xc4\x05" "abcd", 9);	/* bin8 */
	CHECK(validate(b, 9, 16) == -1);
	memcpy(b, "\x81\xa1x\xc4\x04" "ab\x00\xff", 9);	/* bin is binary */
	CHECK(validate(b, 9, 16) == 0);

	/* Strings: the MSG_MAX_STR limit, with every byte present. */
	n = 8 + MSG_MAX_STR + 1;
	big = malloc(n);
	memcpy(big, "\x81\xa1x\xdb", 4);
	big[4] = (uint8_t)(MSG_MAX_STR >> 24);
	big[5] = (uint8_t)(MSG_MAX_STR >> 16);
	big[6] = (uint8_t)(MSG_MAX_STR >> 8);
	big[7] = (uint8_t)MSG_MAX_STR;
	memset(big + 8, 'a', MSG_MAX_STR + 1);
	CHECK(validate(big, 8 + MSG_MAX_STR, 16) == 0);
	big[7] = (uint8_t)(MSG_MAX_STR + 1);
	CHECK(validate(big, n, 16) == -1);
	CHECK(strstr(reason, "over limit") != NULL);
	big[3] = 0xc6;	/* bin32 */
	CHECK(validate(big, n, 16) == -1);
	CHECK(strstr(reason, "over limit") != NULL);
	free(big);

	/* Extension types, the unused byte, non-string keys. */
	memcpy(b, "\x81\xa1x\xd4\x01\x02", 6);	/* fixext1 */
	CHECK(validate(b, 6, 16) == -1);
	CHECK(strstr(reason, "extension") != NULL);
	memcpy(b, "\x81\xa1x\xc7\x01\x01\x02", 7);	/* ext8 */
	CHECK(validate(b, 7, 16) == -1);
	memcpy(b, "\x81\xa1x\xc1", 4);
	CHECK(validate(b, 4, 16) == -1);
	memcpy(b, "\x81\x01\xc0", 3);
	CHECK(validate(b, 3, 16) == -1);
	CHECK_STR(reason, "map key at byte 1 is not a string");

	/* Every scalar form is accepted. */
	{
		static const uint8_t sc[] = "\x81\xa1x\xdc\x00\x11"
		    "\x00\xff\xc0\xc2\xc3"
		    "\xca\x00\x00\x00\x00"
		    "\xcb\x00\x00\x00\x00\x00\x00\x00\x00"
		    "\xcc\x01\xcd\x00\x01\xce\x00\x00\x00\x01"
		    "\xcf\x00\x00\x00\x00\x00\x00\x00\x01"
		    "\xd0\xff\xd1\xff\xff\xd2\xff\xff\xff\xff"
		    "\xd3\xff\xff\xff\xff\xff\xff\xff\xff"
		    "\xd9\x00\xda\x00\x00";

		CHECK(validate(sc, sizeof(sc) - 1, 16) == 0);
		for (n = 4; n < sizeof(sc) - 1; n++)
			CHECK(validate(sc, n, 16) == -1);
	}

	/* UTF-8: strings must be valid and free of NUL. */
	memcpy(b, "\x81\xa1x\xa2\xc3\xa9", 6);	/* é */
	CHECK(validate(b, 6, 16) == 0);
	memcpy(b, "\x81\xa1x\xa2\xc3\x28", 6);
	CHECK(validate(b, 6, 16) == -1);
	CHECK_STR(reason, "invalid UTF-8 in string at byte 4");
	memcpy(b, "\x81\xa1x\xa2\xc0\xaf", 6);	/* overlong '/' */
	CHECK(validate(b, 6, 16) == -1);
	memcpy(b, "\x81\xa1x\xa3\xed\xa0\x80", 7);	/* surrogate */
	CHECK(validate(b, 7, 16) == -1);
	memcpy(b, "\x81\xa1x\xa1\xe2", 5);	/* cut sequence */
	CHECK(validate(b, 5, 16) == -1);
	memcpy(b, "\x81\xa1x\xa2" "a\x00", 6);
	CHECK(validate(b, 6, 16) == -1);
	CHECK_STR(reason, "NUL byte in string at byte 5");
}

static void
test_schema(void)
{
	struct msg	m;

	start();
	mp_begin(&pk, MSG_SYNC, 2);
	mp_kv_str(&pk, "hash", "x");
	CHECK(decode_fails("sync: missing 'seq'"));

	start();
	mp_begin(&pk, MSG_SYNC, 3);
	mp_kv_str(&pk, "seq", "1");
	mp_kv_str(&pk, "hash", "x");
	CHECK(decode_fails("sync: 'seq' must be an unsigned integer"));

	start();
	mp_begin(&pk, MSG_SYNC, 3);
	mp_key(&pk, "seq");
	msgpack_pack_int64(&pk, -1);
	mp_kv_str(&pk, "hash", "x");
	CHECK(decode_fails("sync: 'seq' must be an unsigned integer"));

	/* A non-negative signed integer is a uint. */
	start();
	mp_begin(&pk, MSG_HEARTBEAT, 2);
	mp_key(&pk, "seq");
	msgpack_pack_int8(&pk, 5);
	CHECK(decode(&m) == 0 && msg_uint(&m, "seq", 0) == 5);
	msg_free(&m);
	{
		/* By hand: int64 (0xd3), which msgpack-c would shrink. */
		static const uint8_t hb[] = "\x82\xa1t\xa9heartbeat\xa3seq"
		    "\xd3\x00\x00\x00\x00\x00\x00\x00\x2a";
		CHECK(msg_decode(hb, sizeof(hb) - 1, &m, reason,
		    sizeof(reason)) == 0);
		CHECK(msg_uint(&m, "seq", 0) == 42);
		msg_free(&m);
	}

	start();
	mp_begin(&pk, MSG_SYNC, 4);
	mp_kv_uint(&pk, "seq", 1);
	mp_kv_str(&pk, "hash", "x");
	mp_kv_str(&pk, "inventory", "not a map");
	CHECK(decode_fails("sync: 'inventory' must be a map"));

	start();
	mp_begin(&pk, MSG_ACK, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_kv_uint(&pk, "need_inventory", 1);
	CHECK(decode_fails("ack: 'need_inventory' must be a boolean"));

	/* String lengths: the limit passes, one more fails. */
	start();
	mp_begin(&pk, MSG_ENROLL, 3);
	mp_key(&pk, "token");
	pack_str_n(MSG_MAX_TOKEN, 'a');
	mp_kv_str(&pk, "csr", "x");
	CHECK(decode(&m) == 0);
	msg_free(&m);
	start();
	mp_begin(&pk, MSG_ENROLL, 3);
	mp_key(&pk, "token");
	pack_str_n(MSG_MAX_TOKEN + 1, 'a');
	mp_kv_str(&pk, "csr", "x");
	CHECK(decode_fails("enroll: 'token' longer than 128 bytes"));
	start();
	mp_begin(&pk, MSG_ENROLL, 3);
	mp_kv_str(&pk, "token", "x");
	mp_key(&pk, "csr");
	pack_str_n(MSG_MAX_CSR + 1, 'a');
	CHECK(decode_fails("enroll: 'csr' longer than 16384 bytes"));
	start();
	mp_begin(&pk, MSG_HELLO, 5);
	mp_kv_str(&pk, "role", "agent");
	mp_key(&pk, "name");
	pack_str_n(MSG_MAX_NAME + 1, 'n');
	mp_kv_uint(&pk, "proto_min", 1);
	mp_kv_uint(&pk, "proto_max", 1);
	CHECK(decode_fails("hello: 'name' longer than 255 bytes"));

	/* hello: role decides what is required. */
	start();
	mp_begin(&pk, MSG_HELLO, 4);
	mp_kv_str(&pk, "role", "agent");
	mp_kv_str(&pk, "name", "a");
	mp_kv_uint(&pk, "proto_max", 1);
	CHECK(decode_fails("hello: missing 'proto_min'"));
	start();
	mp_begin(&pk, MSG_HELLO, 4);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", "a");
	mp_kv_uint(&pk, "proto", 1);
	CHECK(decode_fails("hello: missing 'heartbeat_s'"));
	start();
	mp_begin(&pk, MSG_HELLO, 3);
	mp_kv_str(&pk, "role", "child");
	mp_kv_str(&pk, "name", "a");
	CHECK(decode_fails("hello: 'role' has an unknown value"));

	/* 't' itself. */
	start();
	msgpack_pack_map(&pk, 1);
	mp_kv_uint(&pk, "seq", 1);
	CHECK(decode_fails("message has no 't'"));
	start();
	msgpack_pack_map(&pk, 1);
	mp_kv_uint(&pk, "t", 1);
	CHECK(decode_fails("'t' must be a string"));
	start();
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "t", "foo");
	CHECK(decode_fails("unknown message type 'foo'"));
	start();
	msgpack_pack_map(&pk, 0);
	CHECK(decode_fails("message has no 't'"));

	/* Unknown keys are ignored. */
	start();
	mp_begin(&pk, MSG_HEARTBEAT, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "future");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_double(&pk, 1.5);
	CHECK(decode(&m) == 0);
	msg_free(&m);
}

static void
test_events(void)
{
	struct msg	m;
	char		id[16];
	int		i;

	/* MSG_MAX_EVENTS pass, one more does not. */
	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, MSG_MAX_EVENTS);
	for (i = 0; i < MSG_MAX_EVENTS; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		pack_event(id, "warning");
	}
	CHECK(decode(&m) == 0);
	CHECK(msg_get(&m, "events")->via.array.size == MSG_MAX_EVENTS);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, MSG_MAX_EVENTS + 1);
	for (i = 0; i < MSG_MAX_EVENTS + 1; i++)
		pack_event("e", "error");
	CHECK(decode_fails(
	    "events: 'events' has 1001 elements, over limit of 1000"));

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, 2);
	pack_event("e1", "info");
	msgpack_pack_uint8(&pk, 1);
	CHECK(decode_fails("events: events[1] must be a map"));

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, 2);
	pack_event("e1", "info");
	pack_event("e2", "fatal");
	CHECK(decode_fails("events: events[1]: 'severity' has an unknown "
	    "value"));

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "id", "x");
	CHECK(decode_fails("events: events[0]: missing 'time'"));

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "events");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "id", "x");
	mp_kv_uint(&pk, "time", 1);
	mp_kv_str(&pk, "severity", "info");
	mp_kv_str(&pk, "type", "t");
	mp_key(&pk, "text");
	pack_str_n(MSG_MAX_EVENT_TEXT + 1, 'x');
	CHECK(decode_fails("events: events[0]: 'text' longer than 4096 "
	    "bytes"));

	start();
	mp_begin(&pk, MSG_EVENTS, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_kv_str(&pk, "events", "none");
	CHECK(decode_fails("events: 'events' must be an array"));
}

static void
test_lifetime(void)
{
	struct msg	 m;
	char		*copy, buf[32];

	/* The message must not point into the caller's buffer. */
	start();
	mp_begin(&pk, MSG_SYNC, 3);
	mp_kv_uint(&pk, "seq", 3);
	mp_kv_str(&pk, "hash", "deadbeef");
	copy = malloc(sb.size);
	memcpy(copy, sb.data, sb.size);
	CHECK(msg_decode(copy, sb.size, &m, reason, sizeof(reason)) == 0);
	memset(copy, 0, sb.size);
	free(copy);
	CHECK(msg_str(&m, "hash", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "deadbeef");
	msg_free(&m);
}

static void
test_json(void)
{
	json_t			*j, *j2;
	json_error_t		 jerr;
	msgpack_unpacked	 up;
	msgpack_sbuffer		 s2;
	msgpack_packer		 p2;
	char			*txt;
	size_t			 off = 0;

	j = json_loads("{\"a\": 1, \"b\": -2, \"c\": \"x\", \"d\": [true, "
	    "false, null, 1.5], \"e\": {\"f\": {}}, \"g\": []}", 0, &jerr);
	CHECK(j != NULL);
	start();
	CHECK(mp_pack_json(&pk, j) == 0);
	CHECK(validate(sb.data, sb.size, 16) == 0);
	msgpack_unpacked_init(&up);
	CHECK(msgpack_unpack_next(&up, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	j2 = mp_to_json(&up.data);
	CHECK(j2 != NULL && json_equal(j, j2));
	json_decref(j2);
	json_decref(j);
	msgpack_unpacked_destroy(&up);
	CHECK(mp_pack_json(&pk, NULL) == -1);
	CHECK(mp_to_json(NULL) == NULL);

	/* bin becomes base64; non-string keys are refused. */
	msgpack_sbuffer_init(&s2);
	msgpack_packer_init(&p2, &s2, msgpack_sbuffer_write);
	msgpack_pack_map(&p2, 1);
	mp_str(&p2, "k");
	msgpack_pack_bin(&p2, 3);
	msgpack_pack_bin_body(&p2, "foo", 3);
	msgpack_unpacked_init(&up);
	off = 0;
	CHECK(msgpack_unpack_next(&up, s2.data, s2.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	j = mp_to_json(&up.data);
	txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	CHECK_STR(txt, "{\"k\":\"Zm9v\"}");
	free(txt);
	json_decref(j);
	msgpack_unpacked_destroy(&up);

	msgpack_sbuffer_clear(&s2);
	msgpack_pack_map(&p2, 1);
	msgpack_pack_uint8(&p2, 1);
	msgpack_pack_nil(&p2);
	msgpack_unpacked_init(&up);
	off = 0;
	CHECK(msgpack_unpack_next(&up, s2.data, s2.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	CHECK(mp_to_json(&up.data) == NULL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&s2);
}

/* Packs raw msgpack bytes' single object into a fresh unpacked. */
static int
unpack_one(const char *buf, size_t len, msgpack_unpacked *up)
{
	size_t	 off = 0;

	msgpack_unpacked_init(up);
	return msgpack_unpack_next(up, buf, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

/* The text writer says what the tree writer says, as JSON values. */
static void
json_text_same(const char *json)
{
	json_t			*j, *tree, *back;
	json_error_t		 jerr;
	msgpack_unpacked	 up;
	struct jbuf		 jb = { NULL, 0, 0, 0 };

	j = json_loads(json, JSON_ALLOW_NUL, &jerr);
	CHECK(j != NULL);
	start();
	CHECK(mp_pack_json(&pk, j) == 0);
	CHECK(unpack_one(sb.data, sb.size, &up) == 0);
	tree = mp_to_json(&up.data);
	CHECK(mp_to_json_text(&jb, &up.data) == 0);
	back = jb.p ? json_loadb(jb.p, jb.len, 0, &jerr) : NULL;
	if (back == NULL)
		fprintf(stderr, "json text of %s: %s\n", json,
		    jb.p ? jb.p : "(none)");
	CHECK(back != NULL && tree != NULL && json_equal(back, tree));
	CHECK(jb.p != NULL && strlen(jb.p) == jb.len);
	json_decref(back);
	json_decref(tree);
	json_decref(j);
	jbuf_free(&jb);
	msgpack_unpacked_destroy(&up);
}

/* One string value through the text writer: 0, or -1 if refused. */
static int
json_text_str(const char *s, size_t n, char *out, size_t outlen)
{
	msgpack_unpacked	 up;
	struct jbuf		 jb = { NULL, 0, 0, 0 };
	int			 rc;

	start();
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
	if (unpack_one(sb.data, sb.size, &up) == -1)
		return -1;
	rc = mp_to_json_text(&jb, &up.data);
	if (rc == 0)
		snprintf(out, outlen, "%s", jb.p);
	jbuf_free(&jb);
	msgpack_unpacked_destroy(&up);
	return rc;
}

#define DEEP	(MSG_MAX_DEPTH + 40)

static void
test_json_text(void)
{
	msgpack_object		 deep[DEEP + 1];
	msgpack_unpacked	 up;
	struct jbuf		 jb = { NULL, 0, 0, 0 };
	char			 out[256];
	int			 i;

	json_text_same("{\"a\": 1, \"b\": -2, \"c\": \"x\", \"d\": [true, "
	    "false, null, 1.5, -0.25, 1e300], \"e\": {\"f\": {}}, \"g\": []}");
	json_text_same("{\"max\": 9223372036854775807, "
	    "\"min\": -9223372036854775808, \"zero\": 0}");
	json_text_same("{\"quote\": \"a\\\"b\", \"bs\": \"c\\\\d\", "
	    "\"ctl\": \"\\t\\n\\r\\u0001\\u001f\", \"slash\": \"/\"}");
	json_text_same("{\"utf8\": \"Zürich Ελλάδα 東京 \\ud83c\\udf33\", "
	    "\"k\\u00e9y\": [\"\", \"a\"]}");
	json_text_same("[[[[[[[[1]]]]]]]]");

	/* Exactly the escapes JSON needs, nothing more. */
	CHECK(json_text_str("a\"b\\c\n\x01/", 8, out, sizeof(out)) == 0);
	CHECK_STR(out, "\"a\\\"b\\\\c\\u000a\\u0001/\"");
	CHECK(json_text_str("\xc3\xa9", 2, out, sizeof(out)) == 0);
	CHECK_STR(out, "\"\xc3\xa9\"");
	/* What jsonb would refuse is refused here, before it fails a batch. */
	CHECK(json_text_str("a\0b", 3, out, sizeof(out)) == -1);
	CHECK(json_text_str("\xff", 1, out, sizeof(out)) == -1);
	CHECK(json_text_str("\xc3", 1, out, sizeof(out)) == -1);	/* cut */
	CHECK(json_text_str("\xc0\xaf", 2, out, sizeof(out)) == -1); /* overlong */
	CHECK(json_text_str("\xed\xa0\x80", 3, out, sizeof(out)) == -1); /* surrogate */

	/* Non-string keys, and nesting past the limit, are refused. */
	start();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_nil(&pk);
	CHECK(unpack_one(sb.data, sb.size, &up) == 0);
	CHECK(mp_to_json_text(&jb, &up.data) == -1 && jb.err);
	jbuf_free(&jb);
	msgpack_unpacked_destroy(&up);
	/* msgpack-c unpacks at most 32 levels: build a deeper one by hand. */
	for (i = 0; i < DEEP; i++) {
		deep[i].type = MSGPACK_OBJECT_ARRAY;
		deep[i].via.array.size = 1;
		deep[i].via.array.ptr = &deep[i + 1];
	}
	deep[DEEP].type = MSGPACK_OBJECT_NIL;
	CHECK(mp_to_json_text(&jb, &deep[DEEP - 20]) == 0);
	jbuf_free(&jb);
	CHECK(mp_to_json_text(&jb, &deep[0]) == -1);
	jbuf_free(&jb);
	CHECK(mp_to_json_text(&jb, NULL) == -1);
	jbuf_free(&jb);

	/* An error sticks: nothing more is appended after it. */
	jbuf_raw(&jb, "x", 1);
	jb.err = 1;
	jbuf_raw(&jb, "y", 1);
	CHECK(jb.len == 1);
	jbuf_free(&jb);
}

static void
test_pack_error(void)
{
	struct msg	 m;
	char		*longmsg;
	size_t		 n;

	/* Over-long texts are cut to the limits, at a character boundary. */
	longmsg = malloc(MSG_MAX_TEXT + 100);
	memset(longmsg, 'a', MSG_MAX_TEXT + 99);
	memcpy(longmsg + MSG_MAX_TEXT - 1, "\xc3\xa9", 2);
	longmsg[MSG_MAX_TEXT + 99] = '\0';
	start();
	msg_pack_error(&sb, "some_code_that_is_far_too_long_to_be_a_code_"
	    "in_the_protocol_really", longmsg);
	CHECK(decode(&m) == 0);
	CHECK(msg_strp(&m, "message", &n) != NULL && n == MSG_MAX_TEXT - 1);
	CHECK(msg_strp(&m, "code", &n) != NULL && n == MSG_MAX_SHORT);
	msg_free(&m);
	free(longmsg);
}

static void
test_str_clean(void)
{
	struct msg	 m;
	const char	*p;
	size_t		 n;

	start();
	mp_begin(&pk, MSG_HEARTBEAT, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "x");
	mp_str_clean(&pk, "a\xff\xc3\xa9" "b\xed\xa0\x80", 100);
	CHECK(decode(&m) == 0);
	CHECK((p = msg_strp(&m, "x", &n)) != NULL && n == 8 &&
	    memcmp(p, "a?\xc3\xa9" "b???", 8) == 0);
	msg_free(&m);

	/* Cut at max, never inside a character. */
	start();
	mp_begin(&pk, MSG_HEARTBEAT, 3);
	mp_kv_uint(&pk, "seq", 1);
	mp_key(&pk, "x");
	mp_str_clean(&pk, "ab\xc3\xa9", 3);
	CHECK(decode(&m) == 0);
	CHECK((p = msg_strp(&m, "x", &n)) != NULL && n == 2);
	msg_free(&m);
}

/* The server tree's messages (docs/HIERARCHY.md). */
static void
test_server_link(void)
{
	struct msg	 m;

	/* A joining server offers a range; the acceptor answers one. */
	start();
	mp_begin(&pk, MSG_HELLO, 7);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", "berlin");
	mp_kv_str(&pk, "uuid", "2ee89cb9-4dd7-47f2-975d-a640a0eab850");
	mp_kv_uint(&pk, "rx", 42);
	mp_kv_uint(&pk, "heartbeat_s", 5);
	mp_kv_uint(&pk, "proto_min", 1);
	CHECK(decode_fails("hello: missing 'proto'"));
	start();
	mp_begin(&pk, MSG_HELLO, 5);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", "top");
	mp_kv_uint(&pk, "heartbeat_s", 5);
	mp_kv_uint(&pk, "proto", 1);
	CHECK(decode(&m) == 0);
	CHECK(m.type == MSG_HELLO);
	msg_free(&m);

	start();
	mp_begin(&pk, MSG_HBATCH, 4);
	mp_kv_uint(&pk, "snap", 0);
	mp_kv_uint(&pk, "last", 12);
	mp_key(&pk, "recs");
	msgpack_pack_array(&pk, 1);
	mp_str(&pk, "{}");
	CHECK(decode(&m) == 0);
	CHECK(m.type == MSG_HBATCH);
	CHECK(msg_uint(&m, "last", 0) == 12);
	msg_free(&m);
	start();
	mp_begin(&pk, MSG_HBATCH, 3);
	mp_kv_uint(&pk, "snap", 0);
	mp_kv_uint(&pk, "last", 12);
	CHECK(decode_fails("h_batch: missing 'recs'"));
	/* MSG_MAX_HRECS is the most records in one batch. */
	start();
	mp_begin(&pk, MSG_HBATCH, 4);
	mp_kv_uint(&pk, "snap", 0);
	mp_kv_uint(&pk, "last", 12);
	mp_key(&pk, "recs");
	msgpack_pack_array(&pk, MSG_MAX_HRECS + 1);
	for (size_t i = 0; i < MSG_MAX_HRECS + 1; i++)
		msgpack_pack_nil(&pk);
	CHECK(decode(&m) == -1);
	CHECK(strstr(reason, "over limit") != NULL);

	start();
	mp_begin(&pk, MSG_HSNAP, 4);
	mp_kv_str(&pk, "phase", "middle");
	mp_kv_uint(&pk, "snap", 1);
	mp_kv_uint(&pk, "seq", 1);
	CHECK(decode(&m) == -1);
	start();
	mp_begin(&pk, MSG_HACK, 3);
	mp_kv_uint(&pk, "snap", 0);
	mp_kv_uint(&pk, "seq", 9);
	CHECK(decode(&m) == 0);
	CHECK(m.type == MSG_HACK);
	msg_free(&m);
	start();
	mp_begin(&pk, MSG_REGISTER, 3);
	mp_kv_str(&pk, "token", "t");
	mp_kv_str(&pk, "csr", "c");
	CHECK(decode_fails("register: missing 'uuid'"));
}

int
main(void)
{
	msgpack_sbuffer_init(&sb);
	test_str_clean();
	test_each_type();
	test_structure();
	test_schema();
	test_events();
	test_lifetime();
	test_json();
	test_json_text();
	test_pack_error();
	test_server_link();
	msgpack_sbuffer_destroy(&sb);
	TEST_DONE();
}
