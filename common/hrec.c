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
 * A batch's records, parsed and checked (hrec.h).  The checks and their
 * messages are those hier_apply made in SQL before (009, 014), in the same
 * order: the first bad record is named.
 *
 * The JSON is read in place by a small validating scanner rather than
 * built into a tree: a record's few fields are all we need of it, a
 * middle server relays its text as it came (less its "s"), and building
 * a tree cost more than the rest of applying it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canopy_limits.h"
#include "hrec.h"
#include "util.h"

#define T	HREC_TEXT
const struct hrec_kind hrec_kinds[HK_N] = {
	[HK_SERVER] = { "server", 1, 4,
	    { "name", "parent", "level", "status" }, { T, T, T, HREC_OBJ } },
	[HK_GROUP] = { "group", 1, 2, { "vs", "path" }, { T, T } },
	[HK_DEVICE] = { "device", 1, 11,
	    { "vs", "name", "fqdn", "ip", "mac", "os", "group", "status",
	    "source", "first_seen", "last_seen" },
	    { T, T, T, HREC_ARR, HREC_ARR, T, T, T, T, T, T } },
	[HK_EVENT] = { "event", 1, 6,
	    { "vs", "device", "severity", "type", "time", "text" },
	    { T, T, T, T, HREC_TIME, T } },
	[HK_TASK_RESULT] = { "task_result", 1, 7,
	    { "task", "device", "device_name", "state", "finished",
	    "exit_code", "output" }, { T, T, T, T, T, T, T } },
	[HK_POLICY] = { "policy", 0, 8,
	    { "server", "level", "group", "gdepth", "name", "product",
	    "revision", "settings" }, { T, T, T, T, T, T, T, HREC_OBJ } },
	[HK_TASK] = { "task", 0, 9,
	    { "server", "name", "type", "params", "schedule", "at",
	    "every_s", "expires_s", "cancelled" },
	    { T, T, T, HREC_OBJ, T, T, T, T, T } },
};
#undef T

/*
 * The scanner.  Values are checked as they are passed over; a string's
 * content is kept as the span between its quotes and decoded on demand.
 */
struct jcur {
	const unsigned char *p;
	const unsigned char *end;
	int		 depth;
	const char	*why;		/* set at the first error */
};

/* A value's span and type: one of "oasntfz" (object, array, string,
 * number, true, false, null). */
struct jval {
	const char	*p;		/* string: its content; else the text */
	size_t		 len;
	char		 type;
	int		 esc;		/* string: holds escapes */
};

static int
jfail(struct jcur *c, const char *why)
{
	if (c->why == NULL)
		c->why = why;
	return -1;
}

static void
jws(struct jcur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	    *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
jhex4(const unsigned char *p, unsigned *cp)
{
	int	 i;

	*cp = 0;
	for (i = 0; i < 4; i++) {
		*cp <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			*cp |= p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			*cp |= p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			*cp |= p[i] - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

/* The length of the UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
jutf8(const unsigned char *p, const unsigned char *end)
{
	size_t		 n, i;
	unsigned char	 lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static int
jstring(struct jcur *c, struct jval *v)
{
	const unsigned char *p = c->p + 1;
	unsigned	 cp, lo;
	size_t		 n;

	v->type = 's';
	v->esc = 0;
	for (;;) {
		if (p >= c->end)
			return jfail(c, "a string does not end");
		if (*p == '"')
			break;
		if (*p < 0x20)
			return jfail(c, "a control character in a string");
		if (*p == '\\') {
			v->esc = 1;
			if (p + 1 >= c->end)
				return jfail(c, "a string does not end");
			if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
				p += 2;
				continue;
			}
			if (p[1] != 'u' || c->end - p < 6 || jhex4(p + 2, &cp))
				return jfail(c, "a bad escape in a string");
			p += 6;
			if (cp == 0)
				return jfail(c, "\\u0000 in a string");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return jfail(c, "a lone surrogate in a string");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - p < 6 || p[0] != '\\' ||
				    p[1] != 'u' || jhex4(p + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return jfail(c, "a lone surrogate in a "
					    "string");
				p += 6;
			}
			continue;
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((n = jutf8(p, c->end)) == 0)
			return jfail(c, "a string is not UTF-8");
		p += n;
	}
	v->p = (const char *)c->p + 1;
	v->len = (size_t)(p - c->p) - 1;
	c->p = p + 1;
	return 0;
}

static int
jdigits(struct jcur *c)
{
	const unsigned char *p = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > p ? 0 : jfail(c, "a bad number");
}

static int
jnumber(struct jcur *c)
{
	if (*c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (jdigits(c) == -1)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (jdigits(c) == -1)
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (jdigits(c) == -1)
			return -1;
	}
	return 0;
}

static int	jvalue(struct jcur *, struct jval *);

/* A member of an object, "key" : value, at c->p (after any space). */
static int
jmember(struct jcur *c, struct jval *k, struct jval *v)
{
	if (c->p >= c->end || *c->p != '"')
		return jfail(c, "an object key must be a string");
	if (jstring(c, k) == -1)
		return -1;
	jws(c);
	if (c->p >= c->end || *c->p != ':')
		return jfail(c, "a ':' is missing");
	c->p++;
	return jvalue(c, v);
}

/* An object's or array's members, from after its opening bracket. */
static int
jcontainer(struct jcur *c, int obj)
{
	struct jval	 k, v;

	if (++c->depth > HIER_JSON_DEPTH)
		return jfail(c, "nested too deep");
	jws(c);
	if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
		c->p++;
		c->depth--;
		return 0;
	}
	for (;;) {
		jws(c);
		if ((obj ? jmember(c, &k, &v) : jvalue(c, &v)) == -1)
			return -1;
		jws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
			c->p++;
			c->depth--;
			return 0;
		}
		return jfail(c, obj ? "a ',' or '}' is missing" :
		    "a ',' or ']' is missing");
	}
}

static int
jliteral(struct jcur *c, const char *lit, char type, struct jval *v)
{
	size_t	 n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return jfail(c, "not JSON");
	c->p += n;
	v->type = type;
	return 0;
}

static int
jvalue(struct jcur *c, struct jval *v)
{
	const unsigned char *start;
	int		 rc;

	jws(c);
	if (c->p >= c->end)
		return jfail(c, "a value is missing");
	start = c->p;
	v->esc = 0;
	switch (*c->p) {
	case '"':
		return jstring(c, v);
	case '{':
	case '[':
		v->type = *c->p == '{' ? 'o' : 'a';
		c->p++;
		rc = jcontainer(c, v->type == 'o');
		break;
	case 't':
		rc = jliteral(c, "true", 't', v);
		break;
	case 'f':
		rc = jliteral(c, "false", 'f', v);
		break;
	case 'n':
		rc = jliteral(c, "null", 'z', v);
		break;
	default:
		if (*c->p != '-' && (*c->p < '0' || *c->p > '9'))
			return jfail(c, "not JSON");
		v->type = 'n';
		rc = jnumber(c);
		break;
	}
	v->p = (const char *)start;
	v->len = (size_t)(c->p - start);
	return rc;
}

/* Decodes a string's content (checked by jstring) into out, which has
 * room for v->len bytes; returns the length. */
static size_t
jdecode(const struct jval *v, char *out)
{
	const unsigned char *p = (const unsigned char *)v->p;
	const unsigned char *end = p + v->len;
	unsigned	 cp, lo;
	size_t		 n = 0;

	if (!v->esc) {
		memcpy(out, v->p, v->len);
		return v->len;
	}
	while (p < end) {
		if (*p != '\\') {
			out[n++] = (char)*p++;
			continue;
		}
		switch (p[1]) {
		case 'b': out[n++] = '\b'; p += 2; continue;
		case 'f': out[n++] = '\f'; p += 2; continue;
		case 'n': out[n++] = '\n'; p += 2; continue;
		case 'r': out[n++] = '\r'; p += 2; continue;
		case 't': out[n++] = '\t'; p += 2; continue;
		case 'u': break;
		default: out[n++] = (char)p[1]; p += 2; continue;
		}
		(void)jhex4(p + 2, &cp);
		p += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			(void)jhex4(p + 2, &lo);
			p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		/* Never longer than its escape: 6 bytes give at most 3,
		 * 12 at most 4. */
		if (cp < 0x80)
			out[n++] = (char)cp;
		else if (cp < 0x800) {
			out[n++] = (char)(0xc0 | cp >> 6);
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[n++] = (char)(0xe0 | cp >> 12);
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | cp >> 18);
			out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return n;
}

/* Is the string v the key k?  (Keys with escapes are decoded first.) */
static int
jkey_is(const struct jval *v, const char *k)
{
	char	 buf[32];
	size_t	 n = strlen(k);

	if (!v->esc)
		return v->len == n && memcmp(v->p, k, n) == 0;
	if (v->len > sizeof(buf))
		return 0;
	return jdecode(v, buf) == n && memcmp(buf, k, n) == 0;
}

/* An integer without fraction or exponent, in range. */
static int
jint(const struct jval *v, int64_t *out)
{
	const char	*p = v->p, *end = v->p + v->len;
	int		 neg = 0;
	uint64_t	 x = 0, lim;

	if (v->type != 'n')
		return -1;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (x > (lim - (uint64_t)(*p - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*out = neg ? (int64_t)(0 - x) : (int64_t)x;
	return 0;
}

/*
 * Times.  Only the one form is read here; PostgreSQL reads the rest.
 */

/* n digits at p, or -1. */
static int
hrec_digits(const char *p, int n)
{
	int	 x = 0;

	for (; n > 0; n--, p++) {
		if (*p < '0' || *p > '9')
			return -1;
		x = x * 10 + (*p - '0');
	}
	return x;
}

int
hrec_time(const char *s, size_t len, int64_t *us)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char	*p = s, *end = s + len;
	int		 y, mo, d, h, mi, sec, frac = 0, nf = 0, oh = 0, om = 0;
	int		 os = 0, sign = 0, leap;

	if (len < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' ||
	    p[13] != ':' || p[16] != ':')
		return -1;
	y = hrec_digits(p, 4);
	mo = hrec_digits(p + 5, 2);
	d = hrec_digits(p + 8, 2);
	h = hrec_digits(p + 11, 2);
	mi = hrec_digits(p + 14, 2);
	sec = hrec_digits(p + 17, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] + (mo == 2 && leap))
		return -1;
	p += 19;
	if (p < end && *p == '.') {
		for (p++; p < end && *p >= '0' && *p <= '9' && nf < 7; p++) {
			frac = frac * 10 + (*p - '0');
			nf++;
		}
		if (nf < 1 || nf > 6)
			return -1;
		for (; nf < 6; nf++)
			frac *= 10;
	}
	if (p == end)
		return -1;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (end - p < 5 || p[2] != ':')
			return -1;
		oh = hrec_digits(p, 2);
		om = hrec_digits(p + 3, 2);
		p += 5;
		if (end - p >= 3 && *p == ':') {
			os = hrec_digits(p + 1, 2);
			p += 3;
		}
		/* PostgreSQL's limit on an offset: 15:59:59. */
		if (oh < 0 || oh > 15 || om < 0 || om > 59 || os < 0 ||
		    os > 59)
			return -1;
	} else
		return -1;
	if (p != end)
		return -1;
	/* 10957: the days from 1970 to 2000, PostgreSQL's epoch */
	*us = ((days_from_civil(y, mo, d) - 10957) * 86400 + h * 3600 +
	    mi * 60 + sec - sign * (oh * 3600 + om * 60 + os)) *
	    INT64_C(1000000) + frac;
	return 0;
}

/*
 * The checks.
 */

static int
hrec_is_uuid(const char *s)
{
	int	 i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[36] == '\0';
}

static int
hrec_kind_of(const char *k)
{
	int	 i;

	for (i = 0; i < HK_N; i++)
		if (strcmp(hrec_kinds[i].name, k) == 0)
			return i;
	return -1;
}

/* What is wrong with record r (the first thing), or NULL. */
static const char *
hrec_check(const struct hrec_ctx *ctx, const struct hrec *r, int hs,
    int hv, char *why, size_t len)
{
	const char	*slash;
	size_t		 olen;

	if (r->k == NULL || r->id == NULL || r->o == NULL || !hv ||
	    r->op == 0 || !hs)
		return "a field is missing";
	if (r->op != 'u' && r->op != 'd')
		return "op must be u or d";
	if (!hrec_is_uuid(r->o))
		return "origin is not a server id";
	if (r->v < 0)
		return "negative version";
	if (r->kind == -1 || hrec_kinds[r->kind].up != ctx->up) {
		snprintf(why, len, "kind %s does not flow %s", r->k,
		    ctx->up ? "up" : "down");
		return why;
	}
	slash = strchr(r->id, '/');
	olen = slash ? (size_t)(slash - r->id) : strlen(r->id);
	if (olen != strlen(r->o) || strncmp(r->id, r->o, olen) != 0) {
		snprintf(why, len, "object %s is owned by %.*s, not by %s",
		    r->id, (int)olen, r->id, r->o);
		return why;
	}
	if (r->kind == HK_SERVER && (slash == NULL ||
	    strcmp(slash, "/server") != 0)) {
		snprintf(why, len, "a server record must be %s/server", r->o);
		return why;
	}
	if (ctx->me != NULL && strcmp(r->o, ctx->me) == 0) {
		snprintf(why, len, "forged origin: %s is this server", r->o);
		return why;
	}
	if (r->op == 'u' && !r->dobj)
		return "d must be an object";
	return NULL;
}

/* A string field, decoded into the arena (NUL-terminated). */
static const char *
hrec_str(const struct jval *v, char **arena, const char **why,
    const char *bad)
{
	char	*s = *arena;
	size_t	 n;

	if (v->type == 'z')
		return NULL;
	if (v->type != 's') {
		*why = bad;
		return NULL;
	}
	n = jdecode(v, s);
	s[n] = '\0';
	if (strlen(s) != n) {
		*why = bad;
		return NULL;
	}
	*arena += n + 1;
	return s;
}

/*
 * One record, at c->p (checked to be '{'): its fields, and the span of its
 * "s" member.  *why: what is wrong with a field (the JSON being good).
 */
static int
hrec_fields(struct jcur *c, struct hrec *r, char **arena, int *hs, int *hv,
    const char **why)
{
	static const char *const keys[] = { "s", "k", "op", "id", "o", "v",
	    "d" };
	const unsigned char *rec = c->p, *mstart, *prev_end;
	struct jval	 k, v;
	unsigned	 seen = 0;
	size_t		 i;
	const char	*op;

	memset(r, 0, sizeof(*r));
	*hs = *hv = 0;
	r->kind = -1;
	c->p++;
	if (++c->depth > HIER_JSON_DEPTH)
		return jfail(c, "nested too deep");
	prev_end = c->p;
	jws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		c->depth--;
		goto done;
	}
	for (;;) {
		jws(c);
		mstart = c->p;
		if (jmember(c, &k, &v) == -1)
			return -1;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (jkey_is(&k, keys[i]))
				break;
		if (i < sizeof(keys) / sizeof(keys[0])) {
			if (seen & (1u << i))
				*why = "a field appears twice";
			seen |= 1u << i;
		}
		switch (i) {
		case 0:
			if (v.type != 'z' && jint(&v, &r->s) == -1)
				*why = "s must be an integer";
			*hs = v.type != 'z';
			r->cut_from = (size_t)(mstart - rec);
			r->cut_to = (size_t)(c->p - rec);
			break;
		case 1:
			r->k = hrec_str(&v, arena, why, "k must be a string");
			break;
		case 2:
			op = hrec_str(&v, arena, why, "op must be u or d");
			if (op != NULL)
				r->op = op[0] != '\0' && op[1] == '\0' ?
				    op[0] : '?';
			break;
		case 3:
			r->id = hrec_str(&v, arena, why,
			    "id must be a string");
			break;
		case 4:
			r->o = hrec_str(&v, arena, why, "o must be a string");
			break;
		case 5:
			if (v.type != 'z' && jint(&v, &r->v) == -1)
				*why = "v must be an integer";
			*hv = v.type != 'z';
			break;
		case 6:
			r->d = v.type == 'z' ? NULL : v.p;
			r->dlen = v.type == 'z' ? 0 : v.len;
			r->dobj = v.type == 'o';
			break;
		}
		jws(c);
		if (c->p < c->end && *c->p == ',') {
			/* "s" not last: it goes with the comma after it */
			if (i == 0) {
				c->p++;
				jws(c);
				r->cut_to = (size_t)(c->p - rec);
			} else {
				prev_end = c->p;
				c->p++;
			}
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			/* "s" last: with the comma before it */
			if (i == 0 && prev_end > rec + 1)
				r->cut_from = (size_t)(prev_end - rec);
			c->p++;
			c->depth--;
			break;
		}
		return jfail(c, "a ',' or '}' is missing");
	}
 done:
	r->raw = (const char *)rec;
	r->rawlen = (size_t)(c->p - rec);
	if (r->k != NULL)
		r->kind = hrec_kind_of(r->k);
	return 0;
}

static uint32_t
hrec_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * The last record of each object, in the batch's order: batches applied
 * together may carry an object twice (an upsert, then its deletion).
 */
static int
hrec_last_of_each(struct hrec_batch *b)
{
	size_t		 cap, i, j, n;
	size_t		*slot;
	unsigned char	*keep;

	for (cap = 16; cap < b->n * 2; cap *= 2)
		;
	slot = calloc(cap, sizeof(*slot));
	keep = calloc(b->n ? b->n : 1, 1);
	if (slot == NULL || keep == NULL) {
		free(slot);
		free(keep);
		return -1;
	}
	for (i = b->n; i-- > 0;) {
		for (j = hrec_hash(b->r[i].id) & (cap - 1); slot[j] != 0 &&
		    strcmp(b->r[slot[j] - 1].id, b->r[i].id) != 0;
		    j = (j + 1) & (cap - 1))
			;
		if (slot[j] == 0) {
			slot[j] = i + 1;
			keep[i] = 1;
		}
	}
	for (i = 0, n = 0; i < b->n; i++)
		if (keep[i])
			b->r[n++] = b->r[i];
	b->n = n;
	free(slot);
	free(keep);
	return 0;
}

static int
hrec_add_origin(struct hrec_batch *b, const struct hrec *r)
{
	const char	**o, **ids;
	size_t		 i;

	for (i = 0; i < b->norigins; i++)
		if (strcmp(b->origins[i], r->o) == 0)
			return 0;
	if ((o = reallocarray(b->origins, b->norigins + 1,
	    sizeof(*o))) == NULL)
		return -1;
	b->origins = o;
	if ((ids = reallocarray(b->origin_ids, b->norigins + 1,
	    sizeof(*ids))) == NULL)
		return -1;
	b->origin_ids = ids;
	b->origins[b->norigins] = r->o;
	b->origin_ids[b->norigins++] = r->id;
	return 0;
}

static int
hrec_push(struct hrec_batch *b, size_t *cap, const struct hrec *r)
{
	struct hrec	*n;

	if (b->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((n = reallocarray(b->r, *cap, sizeof(*n))) == NULL)
			return -1;
		b->r = n;
	}
	b->r[b->n++] = *r;
	return 0;
}

int
hrec_parse(const char *text, size_t len, const struct hrec_ctx *ctx,
    struct hrec_batch *b, char *err, size_t errlen)
{
	struct jcur	 c;
	struct hrec	 r;
	const char	*why;
	char		 whybuf[512], *arena;
	int64_t		 prev;
	size_t		 i, cap = 0, nel = 0;
	int		 hs, hv, rbad = 0;

	memset(b, 0, sizeof(*b));
	memset(&c, 0, sizeof(c));
	c.p = (const unsigned char *)text;
	c.end = c.p + len;
	/* Decoded strings are never longer than their text with quotes. */
	if ((b->arena = arena = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -2;
	}
	jws(&c);
	if (c.p >= c.end || *c.p != '[') {
		snprintf(err, errlen, "records: not an array");
		goto fail;
	}
	c.p++;
	jws(&c);
	if (c.p < c.end && *c.p == ']')
		c.p++;
	else
		for (;;) {
			jws(&c);
			nel++;
			if (c.p >= c.end || *c.p != '{') {
				if (!rbad)
					snprintf(err, errlen, "records: element "
					    "%zu is not an object", nel);
				goto fail;
			}
			why = NULL;
			if (hrec_fields(&c, &r, &arena, &hs, &hv, &why) == -1)
				goto bad_json;
			/* A stream's records already applied (the sender
			 * resumed from a cursor older than our commit) are
			 * left out. */
			if (!(ctx->stream && hs && why == NULL &&
			    r.s <= ctx->rx_seq)) {
				if (why == NULL)
					why = hrec_check(ctx, &r, hs, hv,
					    whybuf, sizeof(whybuf));
				/* The first bad record is named, once the
				 * whole is known to be JSON. */
				if (why != NULL && !rbad)
					snprintf(err, errlen, "record %s (%s): "
					    "%s", r.id ? r.id : "?",
					    r.k ? r.k : "?", why);
				rbad |= why != NULL;
				if (!rbad && hrec_push(b, &cap, &r) == -1)
					goto oom;
			}
			jws(&c);
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				continue;
			}
			if (c.p < c.end && *c.p == ']') {
				c.p++;
				break;
			}
			jfail(&c, "a ',' or ']' is missing");
			goto bad_json;
		}
	jws(&c);
	if (c.p != c.end) {
		jfail(&c, "text after the records");
		goto bad_json;
	}
	if (rbad)
		goto fail;
	b->nchecked = b->n;
	/* Order: a stream moves forward only. */
	if (ctx->stream) {
		prev = ctx->rx_seq;
		for (i = 0; i < b->n; i++) {
			if (b->r[i].s <= prev || b->r[i].s > ctx->last) {
				snprintf(err, errlen, "sequence number %" PRId64
				    " does not follow %" PRId64 ": it goes "
				    "backwards", b->r[i].s, prev);
				goto fail;
			}
			prev = b->r[i].s;
		}
	}
	for (i = 0; i < b->n; i++)
		if (hrec_add_origin(b, &b->r[i]) == -1)
			goto oom;
	if (hrec_last_of_each(b) == -1)
		goto oom;
	for (i = 0; i < b->n; i++)
		b->nkind[b->r[i].kind][b->r[i].op == 'd']++;
	return 0;
 bad_json:
	snprintf(err, errlen, "records: not JSON: %s at byte %zu", c.why,
	    (size_t)((const char *)c.p - text));
	goto fail;
 oom:
	snprintf(err, errlen, "out of memory");
	hrec_batch_free(b);
	return -2;
 fail:
	hrec_batch_free(b);
	return -1;
}

void
hrec_batch_free(struct hrec_batch *b)
{
	free(b->arena);
	free(b->r);
	free(b->origins);
	free(b->origin_ids);
	memset(b, 0, sizeof(*b));
}

/*
 * Columns.
 */

/* The values of d's keys (the last of each), type 0 when absent. */
static void
hrec_d_values(const struct hrec *r, const char *const *keys, int nkeys,
    struct jval *vals)
{
	struct jcur	 c;
	struct jval	 k, v;
	int		 i;

	for (i = 0; i < nkeys; i++)
		vals[i].type = 0;
	if (!r->dobj)
		return;
	memset(&c, 0, sizeof(c));
	c.p = (const unsigned char *)r->d + 1;
	c.end = (const unsigned char *)r->d + r->dlen;
	/* Checked already: only the structure is walked. */
	for (;;) {
		jws(&c);
		if (jmember(&c, &k, &v) == -1)
			return;		/* '}' */
		for (i = 0; i < nkeys; i++)
			if (jkey_is(&k, keys[i])) {
				vals[i] = v;
				break;
			}
		jws(&c);
		if (c.p < c.end && *c.p == ',')
			c.p++;
	}
}

static void
hrec_add_value(struct pgarr *a, const struct jval *v, int type)
{
	char	*out;
	int64_t	 us;

	if (type == HREC_TIME) {
		/* Read here when it can be, else by PostgreSQL (a[1]). */
		if (v->type == 's' && hrec_time(v->p, v->len, &us) == 0) {
			pgarr_add_i64(&a[0], us);
			pgarr_add_null(&a[1]);
		} else {
			pgarr_add_null(&a[0]);
			hrec_add_value(&a[1], v, HREC_TEXT);
		}
		return;
	}
	if (v->type == 0 || v->type == 'z' ||
	    (type == HREC_OBJ && v->type != 'o') ||
	    (type == HREC_ARR && v->type != 'a')) {
		pgarr_add_null(a);
		return;
	}
	if (v->type != 's') {
		pgarr_add(a, v->p, v->len);
		return;
	}
	if ((out = pgarr_reserve(a, v->len)) != NULL)
		pgarr_commit(a, jdecode(v, out));
}

int
hrec_cols_init(struct pgarr *a, int kind)
{
	const struct hrec_kind *k = &hrec_kinds[kind];
	int		 i, n;

	for (i = n = 0; i < k->ncols; i++) {
		if (k->types[i] == HREC_TIME)
			pgarr_init_elem(&a[n++], PGARR_TIMESTAMPTZ_OID);
		pgarr_init(&a[n++]);
	}
	return n;
}

void
hrec_add_cols(struct pgarr *a, const struct hrec *r)
{
	const struct hrec_kind *k = &hrec_kinds[r->kind];
	struct jval	 vals[HREC_COLS_MAX];
	int		 i, n;

	hrec_d_values(r, k->cols, k->ncols, vals);
	for (i = n = 0; i < k->ncols; i++) {
		hrec_add_value(&a[n], &vals[i], k->types[i]);
		n += k->types[i] == HREC_TIME ? 2 : 1;
	}
}

void
hrec_add_field(struct pgarr *a, const struct hrec *r, const char *key)
{
	struct jval	 v;

	hrec_d_values(r, &key, 1, &v);
	hrec_add_value(a, &v, HREC_TEXT);
}

void
hrec_add_relay(struct pgarr *a, const struct hrec *r)
{
	size_t	 from = r->cut_to > 0 ? r->cut_from : 1;
	size_t	 to = r->cut_to > 0 ? r->cut_to : 1;

	/* Less the opening brace: hier_read puts '{"s" : N, ' before it. */
	pgarr_add2(a, r->raw + 1, from - 1, r->raw + to, r->rawlen - to);
}
