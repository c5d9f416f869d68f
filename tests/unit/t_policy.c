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

/* The pure parts of db/q_policy.c: settings checks and changed keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canopy_limits.h"
#include "util.h"

#include "db/q_policy.h"

#include "test.h"

/* Normalises text; returns the error message or the normalised JSON. */
static char *
norm(const char *text, int *ok)
{
	static char	 buf[1024];
	json_t		*in, *out;
	char		*s;

	in = json_loads(text, JSON_DECODE_ANY, NULL);
	*ok = qp_settings_normalize(in, &out, buf, sizeof(buf)) == 0;
	json_decref(in);
	if (*ok) {
		s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
		snprintf(buf, sizeof(buf), "%s", s ? s : "?");
		free(s);
		json_decref(out);
	}
	return buf;
}

static char *
changed(const char *old, const char *new)
{
	static char	 buf[1024];
	json_t		*o = old ? json_loads(old, 0, NULL) : NULL;
	json_t		*n = json_loads(new, 0, NULL);
	json_t		*k = qp_changed_keys(o, n);
	char		*s = json_dumps(k, JSON_COMPACT);

	snprintf(buf, sizeof(buf), "%s", s ? s : "?");
	free(s);
	json_decref(o);
	json_decref(n);
	json_decref(k);
	return buf;
}

int
main(void)
{
	char	 key[POLICY_KEY_MAX + 2], js[512], prod[POLICY_PRODUCT_MAX + 2];
	char	*r;
	int	 ok, i;

	/* Keys. */
	CHECK(qp_key_valid("sync_interval_s"));
	CHECK(qp_key_valid("a.b-c_D9"));
	CHECK(!qp_key_valid(""));
	CHECK(!qp_key_valid("a b"));
	CHECK(!qp_key_valid("a/b"));
	CHECK(!qp_key_valid("ключ"));
	memset(key, 'k', POLICY_KEY_MAX);
	key[POLICY_KEY_MAX] = '\0';
	CHECK(qp_key_valid(key));
	key[POLICY_KEY_MAX] = 'k';
	key[POLICY_KEY_MAX + 1] = '\0';
	CHECK(!qp_key_valid(key));

	/* Products. */
	CHECK(qp_product_valid("canopy-agent"));
	CHECK(!qp_product_valid(""));
	CHECK(!qp_product_valid("a b"));
	CHECK(!qp_product_valid("a/b"));
	memset(prod, 'p', POLICY_PRODUCT_MAX);
	prod[POLICY_PRODUCT_MAX] = '\0';
	CHECK(qp_product_valid(prod));
	prod[POLICY_PRODUCT_MAX] = 'p';
	prod[POLICY_PRODUCT_MAX + 1] = '\0';
	CHECK(!qp_product_valid(prod));

	/* Settings: normalised, or an error naming the field. */
	r = norm("{}", &ok);
	CHECK(ok);
	CHECK_STR(r, "{}");
	r = norm("{\"a\":{\"value\":1}}", &ok);
	CHECK(ok);
	CHECK_STR(r, "{\"a\":{\"locked\":false,\"value\":1}}");
	r = norm("{\"a\":{\"value\":{\"x\":[1,null]},\"locked\":true}}", &ok);
	CHECK(ok);
	CHECK_STR(r, "{\"a\":{\"locked\":true,\"value\":{\"x\":[1,null]}}}");
	r = norm("{\"a\":{\"value\":null}}", &ok);
	CHECK(ok);
	r = norm("[]", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings:", 9) == 0);
	r = norm("{\"a\":1}", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings.a:", 11) == 0);
	r = norm("{\"a\":{}}", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings.a.value:", 17) == 0);
	r = norm("{\"a\":{\"value\":1,\"locked\":1}}", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings.a.locked:", 18) == 0);
	r = norm("{\"a\":{\"value\":1,\"other\":1}}", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings.a.other:", 17) == 0);
	r = norm("{\"a b\":{\"value\":1}}", &ok);
	CHECK(!ok);
	CHECK(strncmp(r, "settings.a b:", 13) == 0);
	/* Nesting inside a value is bounded. */
	js[0] = '\0';
	strlcat(js, "{\"a\":{\"value\":", sizeof(js));
	for (i = 0; i <= POLICY_VALUE_DEPTH + 1; i++)
		strlcat(js, "[", sizeof(js));
	for (i = 0; i <= POLICY_VALUE_DEPTH + 1; i++)
		strlcat(js, "]", sizeof(js));
	strlcat(js, "}}", sizeof(js));
	r = norm(js, &ok);
	CHECK(!ok);
	CHECK(strstr(r, "settings.a.value") != NULL);

	/* Changed keys: set, changed, unset; sorted; unchanged ones not. */
	CHECK_STR(changed(NULL, "{\"b\":1,\"a\":2}"), "[\"a\",\"b\"]");
	CHECK_STR(changed("{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2}"), "[]");
	CHECK_STR(changed("{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}"), "[\"b\"]");
	CHECK_STR(changed("{\"a\":1,\"b\":2}", "{\"a\":1}"), "[\"b\"]");
	CHECK_STR(changed("{\"z\":1}", "{\"a\":1}"), "[\"a\",\"z\"]");
	CHECK_STR(changed("{\"a\":{\"value\":1,\"locked\":false}}",
	    "{\"a\":{\"value\":1,\"locked\":true}}"), "[\"a\"]");

	TEST_DONE();
}
