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


/* common/hrec.c and common/pgarr.c: a server link's batch, parsed and
 * checked, turned into columns and relayed. */
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "canopy_limits.h"
#include "hrec.h"
#include "pgarr.h"
#include "test.h"

#define ME	"11111111-1111-4111-8111-111111111111"
#define KID	"22222222-2222-4222-8222-222222222222"

static const struct hrec_ctx up_stream = { ME, 1, 1, 2, 100 };
static const struct hrec_ctx up_snap = { ME, 1, 0, 0, 0 };
static const struct hrec_ctx down_stream = { ME, 0, 1, 0, 100 };

static uint32_t
get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* Element i of a finished array, copied to buf; NULL for a NULL. */
static const char *
elem(const struct pgarr *a, uint32_t i, char *buf, size_t len)
{
	const char	*p = a->p + 20;
	uint32_t	 n, k;

	if (get32(a->p) != 1 || get32(a->p + 8) != a->elem ||
	    i >= get32(a->p + 12))
		return "(out of range)";
	for (k = 0;; k++) {
		n = get32(p);
		if (k == i)
			break;
		p += 4 + (n == UINT32_MAX ? 0 : n);
	}
	if (n == UINT32_MAX)
		return NULL;
	if (n >= len)
		return "(too long)";
	memcpy(buf, p + 4, n);
	buf[n] = '\0';
	return buf;
}

static int
parse(const char *text, const struct hrec_ctx *ctx, struct hrec_batch *b)
{
	char	 err[512];

	if (hrec_parse(text, strlen(text), ctx, b, err, sizeof(err)) == 0)
		return 1;
	fprintf(stderr, "%s: %s\n", text, err);
	return 0;
}

/* Refused, with a message containing want. */
static int
bad(const char *text, const struct hrec_ctx *ctx, const char *want)
{
	struct hrec_batch b;
	char		 err[512];

	if (hrec_parse(text, strlen(text), ctx, &b, err, sizeof(err)) == 0) {
		hrec_batch_free(&b);
		fprintf(stderr, "%s: accepted\n", text);
		return 0;
	}
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "%s: '%s' lacks '%s'\n", text, err, want);
		return 0;
	}
	return 1;
}

/* The relayed text of record i: what it must be, and, with its opening
 * brace, JSON whose members are the record's less "s". */
static int
relay_is(const struct hrec_batch *b, size_t i, const char *want)
{
	struct pgarr	 a;
	char		 buf[1024], whole[1100];
	const char	*t;
	json_t		*orig, *got;
	int		 ok;

	pgarr_init(&a);
	hrec_add_relay(&a, &b->r[i]);
	if (pgarr_finish(&a) == -1)
		return 0;
	t = elem(&a, 0, buf, sizeof(buf));
	ok = t != NULL && strcmp(t, want) == 0;
	if (!ok)
		fprintf(stderr, "relay: '%s' != '%s'\n", t ? t : "", want);
	orig = json_loadb(b->r[i].raw, b->r[i].rawlen, 0, NULL);
	snprintf(whole, sizeof(whole), "{%s", t ? t : "");
	got = json_loads(whole, 0, NULL);
	if (orig != NULL)
		json_object_del(orig, "s");
	ok = ok && orig != NULL && got != NULL && json_equal(orig, got);
	json_decref(orig);
	json_decref(got);
	pgarr_free(&a);
	return ok;
}

static void
t_fields_relay(void)
{
	struct hrec_batch b;

	/* As canopyd's sender writes them: "s" first. */
	CHECK(parse("[{\"s\" : 3, \"k\" : \"event\", \"op\" : \"u\", \"id\" : \""
	    KID "/7\", \"o\" : \"" KID "\", \"v\" : 9, \"d\" : {\"text\" : "
	    "\"e7\"}}]", &up_stream, &b));
	CHECK(b.n == 1 && b.nchecked == 1 && b.r[0].s == 3 &&
	    b.r[0].v == 9 && b.r[0].op == 'u' && b.r[0].kind == HK_EVENT);
	CHECK_STR(b.r[0].id, KID "/7");
	CHECK_STR(b.r[0].o, KID);
	CHECK(b.norigins == 1 && strcmp(b.origin_ids[0], KID "/7") == 0);
	CHECK(b.nkind[HK_EVENT][0] == 1 && b.nkind[HK_EVENT][1] == 0);
	CHECK(relay_is(&b, 0, "\"k\" : \"event\", \"op\" : \"u\", \"id\" : \""
	    KID "/7\", \"o\" : \"" KID "\", \"v\" : 9, \"d\" : {\"text\" : "
	    "\"e7\"}}"));
	hrec_batch_free(&b);

	/* "s" in the middle, and last; no spaces. */
	CHECK(parse("[{\"k\":\"event\",\"s\":3,\"op\":\"d\",\"id\":\"" KID
	    "/1\",\"o\":\"" KID "\",\"v\":1},{\"k\":\"event\",\"op\":\"d\","
	    "\"id\":\"" KID "/2\",\"o\":\"" KID "\",\"v\":1,\"s\":4}]",
	    &up_stream, &b));
	CHECK(b.n == 2 && b.nkind[HK_EVENT][1] == 2);
	CHECK(relay_is(&b, 0, "\"k\":\"event\",\"op\":\"d\",\"id\":\"" KID
	    "/1\",\"o\":\"" KID "\",\"v\":1}"));
	CHECK(relay_is(&b, 1, "\"k\":\"event\",\"op\":\"d\",\"id\":\"" KID
	    "/2\",\"o\":\"" KID "\",\"v\":1}"));
	hrec_batch_free(&b);

	/* Already applied (s <= rx_seq 2): left out, unchecked. */
	CHECK(parse("[{\"s\":2,\"k\":\"nonsense\"},{\"s\":5,\"k\":\"group\","
	    "\"op\":\"u\",\"id\":\"" KID "/g\",\"o\":\"" KID "\",\"v\":0,"
	    "\"d\":{}}]", &up_stream, &b));
	CHECK(b.n == 1 && b.nchecked == 1 && b.r[0].s == 5);
	hrec_batch_free(&b);

	/* The last record of each object, in the batch's order. */
	CHECK(parse("[{\"s\":3,\"k\":\"device\",\"op\":\"u\",\"id\":\"" KID
	    "/a\",\"o\":\"" KID "\",\"v\":1,\"d\":{}},{\"s\":4,\"k\":"
	    "\"device\",\"op\":\"u\",\"id\":\"" KID "/b\",\"o\":\"" KID "\","
	    "\"v\":1,\"d\":{}},{\"s\":5,\"k\":\"device\",\"op\":\"d\",\"id\":"
	    "\"" KID "/a\",\"o\":\"" KID "\",\"v\":2}]", &up_stream, &b));
	CHECK(b.nchecked == 3 && b.n == 2);
	CHECK(b.n == 2 && strcmp(b.r[0].id, KID "/b") == 0 &&
	    b.r[1].op == 'd' && b.r[1].s == 5);
	CHECK(b.nkind[HK_DEVICE][0] == 1 && b.nkind[HK_DEVICE][1] == 1);
	hrec_batch_free(&b);

	/* Snapshots: no order, nothing left out. */
	CHECK(parse("[{\"s\":0,\"k\":\"group\",\"op\":\"u\",\"id\":\"" KID
	    "/g\",\"o\":\"" KID "\",\"v\":0,\"d\":{}}]", &up_snap, &b));
	CHECK(b.n == 1);
	hrec_batch_free(&b);
	CHECK(parse("[]", &up_snap, &b) && b.n == 0);
	hrec_batch_free(&b);
	CHECK(parse(" [ ] ", &up_stream, &b) && b.n == 0);
	hrec_batch_free(&b);
}

static void
t_columns(void)
{
	struct hrec_batch b;
	struct pgarr	 a[HREC_COLS_MAX];
	char		 buf[256];
	int		 i, n = hrec_kinds[HK_DEVICE].ncols;

	CHECK(parse("[{\"s\":3,\"k\":\"device\",\"op\":\"u\",\"id\":\"" KID
	    "/d\\u00e9\",\"o\":\"" KID "\",\"v\":1,\"d\":{\"vs\":null,"
	    "\"name\":\"caf\\u00e9 \\ud83d\\ude00\\n\\\"q\\\"\\/\",\"fqdn\":7,"
	    "\"ip\":[\"10.0.0.1\", \"::1\"],\"mac\":\"not an array\","
	    "\"os\":{\"a\": [1, true]},\"group\":false,\"status\":\"x\","
	    "\"status\":\"ok\",\"junk\":{\"deep\":[[[]]]}}}]", &up_stream, &b));
	CHECK_STR(b.r[0].id, KID "/d\xc3\xa9");
	for (i = 0; i < n; i++)
		pgarr_init(&a[i]);
	hrec_add_cols(a, &b.r[0]);
	for (i = 0; i < n; i++)
		CHECK(pgarr_finish(&a[i]) == 0 && a[i].n == 1);
	CHECK(elem(&a[0], 0, buf, sizeof(buf)) == NULL);	/* vs: null */
	CHECK_STR(elem(&a[1], 0, buf, sizeof(buf)),
	    "caf\xc3\xa9 \xf0\x9f\x98\x80\n\"q\"/");
	CHECK_STR(elem(&a[2], 0, buf, sizeof(buf)), "7");
	CHECK_STR(elem(&a[3], 0, buf, sizeof(buf)), "[\"10.0.0.1\", \"::1\"]");
	CHECK(elem(&a[4], 0, buf, sizeof(buf)) == NULL);	/* not an array */
	CHECK_STR(elem(&a[5], 0, buf, sizeof(buf)), "{\"a\": [1, true]}");
	CHECK_STR(elem(&a[6], 0, buf, sizeof(buf)), "false");
	CHECK_STR(elem(&a[7], 0, buf, sizeof(buf)), "ok");	/* the last */
	CHECK(elem(&a[8], 0, buf, sizeof(buf)) == NULL);	/* absent */
	for (i = 0; i < n; i++)
		pgarr_free(&a[i]);
	pgarr_init(&a[0]);
	hrec_add_field(&a[0], &b.r[0], "fqdn");
	hrec_add_field(&a[0], &b.r[0], "parent");
	CHECK(pgarr_finish(&a[0]) == 0 && a[0].n == 2 && a[0].hasnull);
	CHECK_STR(elem(&a[0], 0, buf, sizeof(buf)), "7");
	CHECK(elem(&a[0], 1, buf, sizeof(buf)) == NULL);
	pgarr_free(&a[0]);
	hrec_batch_free(&b);

	/* An element one byte past PGARR_MAX_BYTES in all fails the array
	 * (before anything is copied). */
	pgarr_init(&a[0]);
	pgarr_add(&a[0], "x", 1);
	pgarr_add(&a[0], buf, PGARR_MAX_BYTES - a[0].len - 4 + 1);
	CHECK(a[0].err && pgarr_finish(&a[0]) == -1);
	pgarr_free(&a[0]);

	/* An empty array has no dimensions. */
	pgarr_init(&a[0]);
	CHECK(pgarr_finish(&a[0]) == 0 && a[0].len == 12 &&
	    get32(a[0].p) == 0);
	pgarr_free(&a[0]);
}

/* One string for hrec_time(): its microseconds since 2000, or -1. */
static int
time_is(const char *s, int64_t want)
{
	int64_t	 us = 0;
	int	 rc = hrec_time(s, strlen(s), &us);

	if (want == -1)
		return rc == -1;
	if (rc != 0 || us != want)
		fprintf(stderr, "time '%s': %d, %lld\n", s, rc, (long long)us);
	return rc == 0 && us == want;
}

static void
t_times(void)
{
	static const char *const refused[] = {
		"", "infinity", "-infinity", "2026-11-21",
		"2026-11-21 17:53:00Z",			/* a space, not T */
		"2026-11-21t17:53:00Z", "2026-11-21T17:53:00z",
		"2026-11-21T17:53:00",			/* no zone: the */
		"2026-11-21T17:53:00.5",		/*   session's */
		"2026-11-21T17:53:00.Z", "2026-11-21T17:53:00.1234567Z",
		"2026-11-21T17:53:00+01", "2026-11-21T17:53:00+0100",
		"2026-11-21T17:53:00+01:00 ", " 2026-11-21T17:53:00Z",
		"2026-11-21T17:53:00+16:00", "2026-11-21T17:53:00+01:60",
		"2026-11-21T17:53:00+01:00:60", "2026-11-21T17:53:00+01:00:5",
		"2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
		"2100-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-11-00T00:00:00Z",
		"2026-11-21T24:00:00Z", "2026-11-21T17:60:00Z",
		"2026-11-21T17:53:60Z", "0000-01-01T00:00:00Z",
		"12026-11-21T17:53:00Z", "2026-1a-21T17:53:00Z",
		"2026-11-21T17:53:00.12a456Z", "-2026-11-21T17:53:00Z",
	};
	struct hrec_batch b;
	struct pgarr	 a[2 * HREC_COLS_MAX];
	char		 buf[64];
	size_t		 i;
	int		 n;

	CHECK(time_is("2000-01-01T00:00:00Z", 0));
	CHECK(time_is("2000-01-01T00:00:00+00:00", 0));
	CHECK(time_is("2000-01-01T00:00:00-00:00", 0));
	CHECK(time_is("2000-01-01T00:00:00.5+01:00", -3599500000));
	CHECK(time_is("1970-01-01T00:00:00Z", INT64_C(-946684800000000)));
	CHECK(time_is("2026-11-21T17:53:00.123456+05:30",
	    INT64_C(848578980123456)));
	CHECK(time_is("2024-02-29T23:59:59.999999-15:59:59",
	    INT64_C(762623998999999)));
	CHECK(time_is("1900-03-01T00:00:00.12+00:17:30",
	    INT64_C(-3150577049880000)));
	CHECK(time_is("0001-01-01T00:00:00Z", INT64_C(-63082281600000000)));
	CHECK(time_is("9999-12-31T23:59:59.999999Z",
	    INT64_C(252455615999999999)));
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		CHECK(time_is(refused[i], -1));

	/* An event's time: a timestamptz when read, else text beside it. */
	CHECK(parse("[{\"s\":3,\"k\":\"event\",\"op\":\"u\",\"id\":\"" KID
	    "/1\",\"o\":\"" KID "\",\"v\":1,\"d\":{\"time\":"
	    "\"2000-01-01T00:00:01Z\"}},{\"s\":4,\"k\":\"event\",\"op\":"
	    "\"u\",\"id\":\"" KID "/2\",\"o\":\"" KID "\",\"v\":1,\"d\":{"
	    "\"time\":\"infinity\"}},{\"s\":5,\"k\":\"event\",\"op\":\"u\","
	    "\"id\":\"" KID "/3\",\"o\":\"" KID "\",\"v\":1,\"d\":{}}]",
	    &up_stream, &b));
	n = hrec_cols_init(a, HK_EVENT);
	CHECK(n == hrec_kinds[HK_EVENT].ncols + 1);
	for (i = 0; i < b.n; i++)
		hrec_add_cols(a, &b.r[i]);
	for (i = 0; i < (size_t)n; i++)
		CHECK(pgarr_finish(&a[i]) == 0 && a[i].n == 3);
	CHECK(pgarr_type(&a[0]) == PGARR_TEXT_ARRAY_OID);
	CHECK(pgarr_type(&a[4]) == PGARR_TIMESTAMPTZ_ARRAY_OID);
	CHECK(get32(a[4].p + 8) == PGARR_TIMESTAMPTZ_OID);
	/* 1 s: the 8 bytes big-endian after the header and a length. */
	CHECK(get32(a[4].p + 20) == 8 && get32(a[4].p + 24) == 0 &&
	    get32(a[4].p + 28) == 1000000);
	CHECK(elem(&a[5], 0, buf, sizeof(buf)) == NULL);
	CHECK(elem(&a[4], 1, buf, sizeof(buf)) == NULL);
	CHECK_STR(elem(&a[5], 1, buf, sizeof(buf)), "infinity");
	CHECK(elem(&a[4], 2, buf, sizeof(buf)) == NULL &&
	    elem(&a[5], 2, buf, sizeof(buf)) == NULL);
	for (i = 0; i < (size_t)n; i++)
		pgarr_free(&a[i]);
	hrec_batch_free(&b);
}

static void
t_refused(void)
{
	char	 deep[HIER_JSON_DEPTH * 2 + 256], *p;
	int	 i, depth;

	/* Not JSON, or not records. */
	CHECK(bad("", &up_stream, "not an array"));
	CHECK(bad("{}", &up_stream, "not an array"));
	CHECK(bad("[1]", &up_stream, "element 1 is not an object"));
	CHECK(bad("[{\"s\":3,}]", &up_stream, "not JSON"));
	CHECK(bad("[{\"s\":3}", &up_stream, "not JSON"));
	CHECK(bad("[{\"s\":3}] x", &up_stream, "text after the records"));
	CHECK(bad("[{\"s\":03}]", &up_stream, "not JSON"));
	CHECK(bad("[{\"s\":-}]", &up_stream, "bad number"));
	CHECK(bad("[{\"s\":1.}]", &up_stream, "bad number"));
	CHECK(bad("[{\"k\":tru}]", &up_stream, "not JSON"));
	CHECK(bad("[{\"k\":\"a\\x\"}]", &up_stream, "bad escape"));
	CHECK(bad("[{\"k\":\"\\u00g0\"}]", &up_stream, "bad escape"));
	CHECK(bad("[{\"k\":\"\\u0000\"}]", &up_stream, "\\u0000"));
	CHECK(bad("[{\"k\":\"\\udc00\"}]", &up_stream, "lone surrogate"));
	CHECK(bad("[{\"k\":\"\\ud800x\"}]", &up_stream, "lone surrogate"));
	CHECK(bad("[{\"k\":\"a\tb\"}]", &up_stream, "control character"));
	CHECK(bad("[{\"k\":\"\xc3\"}]", &up_stream, "not UTF-8"));
	CHECK(bad("[{\"k\":\"\xc0\x80\"}]", &up_stream, "not UTF-8"));
	CHECK(bad("[{\"k\":\"\xed\xa0\x80\"}]", &up_stream, "not UTF-8"));
	CHECK(bad("[{\"k\":\"\xf4\x90\x80\x80\"}]", &up_stream, "not UTF-8"));
	CHECK(bad("[{\"k\" 1}]", &up_stream, "':' is missing"));
	CHECK(bad("[{1:1}]", &up_stream, "key must be a string"));

	/* HIER_JSON_DEPTH levels: the record is one, d another. */
	for (depth = HIER_JSON_DEPTH; depth <= HIER_JSON_DEPTH + 1; depth++) {
		p = deep + sprintf(deep, "[{\"s\":3,\"k\":\"group\",\"op\":\"u\","
		    "\"id\":\"" KID "/g\",\"o\":\"" KID "\",\"v\":0,\"d\":");
		for (i = 0; i < depth - 1; i++)
			*p++ = '[';
		for (i = 0; i < depth - 1; i++)
			*p++ = ']';
		strcpy(p, "}]");
		if (depth == HIER_JSON_DEPTH)
			/* deep enough to be JSON, but d is no object */
			CHECK(bad(deep, &up_stream, "d must be an object"));
		else
			CHECK(bad(deep, &up_stream, "nested too deep"));
	}

	/* Fields, in 014's order of checks. */
#define R(s, k, op, id, o, v, d) "[{\"s\":" s ",\"k\":" k ",\"op\":" op \
	",\"id\":" id ",\"o\":" o ",\"v\":" v ",\"d\":" d "}]"
#define Q(x) "\"" x "\""
	CHECK(bad(R("3", "null", Q("u"), Q(KID "/g"), Q(KID), "1", "{}"),
	    &up_stream, "record " KID "/g (?): a field is missing"));
	CHECK(bad("[{\"s\":3,\"k\":\"group\",\"op\":\"u\",\"id\":\"" KID
	    "/g\",\"o\":\"" KID "\",\"d\":{}}]", &up_stream,
	    "a field is missing"));
	CHECK(bad(R("3", "1", Q("u"), Q(KID "/g"), Q(KID), "1", "{}"),
	    &up_stream, "k must be a string"));
	CHECK(bad(R("3.5", Q("group"), Q("u"), Q(KID "/g"), Q(KID), "1",
	    "{}"), &up_stream, "s must be an integer"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q(KID "/g"), Q(KID),
	    "99999999999999999999", "{}"), &up_stream, "v must be an integer"));
	CHECK(bad("[{\"s\":3,\"s\":4,\"k\":\"group\",\"op\":\"u\",\"id\":\""
	    KID "/g\",\"o\":\"" KID "\",\"v\":1,\"d\":{}}]", &up_stream,
	    "appears twice"));
	CHECK(bad(R("3", Q("group"), Q("x"), Q(KID "/g"), Q(KID), "1", "{}"),
	    &up_stream, "op must be u or d"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q("KID/g"), Q("KID"), "1", "{}"),
	    &up_stream, "origin is not a server id"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q(KID "/g"), Q(KID), "-1", "{}"),
	    &up_stream, "negative version"));
	CHECK(bad(R("3", Q("policy"), Q("u"), Q(KID "/p"), Q(KID), "1", "{}"),
	    &up_stream, "kind policy does not flow up"));
	CHECK(bad(R("3", Q("device"), Q("u"), Q(KID "/p"), Q(KID), "1", "{}"),
	    &down_stream, "kind device does not flow down"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q(ME "/g"), Q(KID), "1", "{}"),
	    &up_stream, "object " ME "/g is owned by " ME ", not by " KID));
	CHECK(bad(R("3", Q("server"), Q("u"), Q(KID "/x"), Q(KID), "1", "{}"),
	    &up_stream, "a server record must be " KID "/server"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q(ME "/g"), Q(ME), "1", "{}"),
	    &up_stream, "forged origin: " ME " is this server"));
	CHECK(bad(R("3", Q("group"), Q("u"), Q(KID "/g"), Q(KID), "1", "[]"),
	    &up_stream, "d must be an object"));
	/* The order: backwards, or past the batch's last. */
	CHECK(bad("[{\"s\":5,\"k\":\"group\",\"op\":\"d\",\"id\":\"" KID
	    "/a\",\"o\":\"" KID "\",\"v\":1},{\"s\":4,\"k\":\"group\",\"op\":"
	    "\"d\",\"id\":\"" KID "/b\",\"o\":\"" KID "\",\"v\":1}]",
	    &up_stream, "sequence number 4 does not follow 5"));
	CHECK(bad(R("101", Q("group"), Q("u"), Q(KID "/g"), Q(KID), "1",
	    "{}"), &up_stream, "sequence number 101 does not follow 2"));
#undef R
#undef Q
}

int
main(void)
{
	t_fields_relay();
	t_columns();
	t_times();
	t_refused();
	TEST_DONE();
}
