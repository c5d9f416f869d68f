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

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canopy_limits.h"
#include "util.h"

#include "srv/api_json.h"

#include "test.h"

static const char *const colours[] = { "red", "green", NULL };

static const struct api_field schema[] = {
	{ "name",	AF_STRING, 1, 1, API_NAME_MAX, NULL },
	{ "uses",	AF_INT, 0, 1, TOKEN_USES_MAX, NULL },
	{ "on",		AF_BOOL, 0, 0, 0, NULL },
	{ "colour",	AF_ENUM, 0, 0, 0, colours },
	{ "group",	AF_REF, 0, 1, API_PATH_MAX, NULL },
};
#define NF	(sizeof(schema) / sizeof(schema[0]))

static int
validate(const char *body, struct api_value *v, char *err, size_t errlen)
{
	json_t	*root = NULL;
	int	 rc;

	err[0] = '\0';
	rc = api_json_validate(body, strlen(body), schema, NF, &root, v, err,
	    errlen);
	if (rc == 0)
		CHECK(root != NULL);
	else
		CHECK(root == NULL);
	json_decref(root);
	return rc;
}

static void
test_validate(void)
{
	struct api_value v[NF];
	char		 err[256], big[API_NAME_MAX + 40];
	const char	*body;
	json_t		*root;

	CHECK(validate("{\"name\":\"a\"}", v, err, sizeof(err)) == 0);
	CHECK(v[0].present && !v[1].present);

	/* Values are used while the root lives. */
	body = "{\"name\":\"pc\",\"uses\":5,\"on\":true,"
	    "\"colour\":\"green\",\"group\":\"/Managed devices/Berlin\"}";
	CHECK(api_json_validate(body, strlen(body), schema, NF, &root, v, err,
	    sizeof(err)) == 0);
	CHECK_STR(v[0].s, "pc");
	CHECK(v[1].i == 5);
	CHECK(v[2].b == 1);
	CHECK_STR(v[3].s, "green");
	CHECK_STR(v[4].s, "/Managed devices/Berlin");
	json_decref(root);

	CHECK(validate("{\"name\":\"a\",\"group\":12}", v, err,
	    sizeof(err)) == 0);
	CHECK_STR(v[4].s, "12");
	CHECK(validate("{\"name\":\"a\",\"group\":\"12\"}", v, err,
	    sizeof(err)) == 0);
	/* null means absent for optional fields. */
	CHECK(validate("{\"name\":\"a\",\"uses\":null}", v, err,
	    sizeof(err)) == 0);
	CHECK(!v[1].present);

	CHECK(validate("{\"name\":\"a\",\"uses\":0}", v, err, sizeof(err)) ==
	    -1);
	CHECK_STR(err, "uses: must be an integer between 1 and 1000000");
	CHECK(validate("{\"name\":\"a\",\"uses\":1000001}", v, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "uses: must be an integer between 1 and 1000000");
	CHECK(validate("{\"name\":\"a\",\"uses\":1.5}", v, err,
	    sizeof(err)) == -1);
	CHECK(strncmp(err, "uses:", 5) == 0);
	CHECK(validate("{\"name\":\"a\",\"uses\":\"3\"}", v, err,
	    sizeof(err)) == -1);
	CHECK(strncmp(err, "uses:", 5) == 0);
	CHECK(validate("{\"name\":\"a\",\"on\":1}", v, err, sizeof(err)) == -1);
	CHECK_STR(err, "on: must be true or false");
	CHECK(validate("{\"name\":\"a\",\"colour\":\"blue\"}", v, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "colour: must be one of red, green");
	CHECK(validate("{\"name\":\"a\",\"group\":\"Berlin\"}", v, err,
	    sizeof(err)) == -1);
	CHECK(strncmp(err, "group:", 6) == 0);
	CHECK(validate("{\"name\":\"a\",\"group\":-1}", v, err,
	    sizeof(err)) == -1);
	CHECK(validate("{\"name\":\"a\",\"group\":\"/\"}", v, err,
	    sizeof(err)) == -1);

	CHECK(validate("{}", v, err, sizeof(err)) == -1);
	CHECK_STR(err, "name: required");
	CHECK(validate("{\"name\":\"\"}", v, err, sizeof(err)) == -1);
	CHECK(strncmp(err, "name:", 5) == 0);
	CHECK(validate("{\"name\":5}", v, err, sizeof(err)) == -1);
	CHECK_STR(err, "name: must be a string");
	CHECK(validate("{\"name\":\"a\",\"extra\":1}", v, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "extra: unknown field");
	CHECK(validate("{\"name\":\"a\",\"name\":\"b\"}", v, err,
	    sizeof(err)) == -1);
	CHECK(validate("[1]", v, err, sizeof(err)) == -1);
	CHECK_STR(err, "body: must be a JSON object");
	CHECK(validate("{\"name\":", v, err, sizeof(err)) == -1);
	CHECK(strncmp(err, "body: malformed JSON", 20) == 0);
	CHECK(validate("{\"name\":\"a\\u0000b\"}", v, err, sizeof(err)) ==
	    -1);

	/* The length limit, crossed by one. */
	memset(big, 0, sizeof(big));
	strlcpy(big, "{\"name\":\"", sizeof(big));
	memset(big + 9, 'x', API_NAME_MAX);
	strlcat(big, "\"}", sizeof(big));
	CHECK(validate(big, v, err, sizeof(err)) == 0);
	memset(big, 0, sizeof(big));
	strlcpy(big, "{\"name\":\"", sizeof(big));
	memset(big + 9, 'x', API_NAME_MAX + 1);
	strlcat(big, "\"}", sizeof(big));
	CHECK(validate(big, v, err, sizeof(err)) == -1);
	CHECK_STR(err, "name: must be 1 to 255 bytes long");

	/* An empty body is an empty object. */
	CHECK(api_json_validate("", 0, schema + 1, NF - 1, &root, v, err,
	    sizeof(err)) == 0);
	json_decref(root);
	CHECK(api_json_validate(" \n", 2, schema + 1, NF - 1, &root, v, err,
	    sizeof(err)) == 0);
	json_decref(root);
	/* Not NUL-terminated. */
	CHECK(api_json_validate("{\"name\":\"a\"}xyz", 12, schema, NF, &root,
	    v, err, sizeof(err)) == 0);
	json_decref(root);
}

static void
test_params(void)
{
	static const char *const st[] = { "ok", "warning", "critical", NULL };
	char		 err[256];
	long long	 n;
	int		 b;

	CHECK(api_param_int("limit", "10", 1, 1000, &n, err, sizeof(err)) ==
	    0 && n == 10);
	CHECK(api_param_int("limit", "1000", 1, 1000, &n, err,
	    sizeof(err)) == 0);
	CHECK(api_param_int("limit", "1001", 1, 1000, &n, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "limit: must be an integer between 1 and 1000");
	CHECK(api_param_int("limit", "0", 1, 1000, &n, err, sizeof(err)) ==
	    -1);
	CHECK(api_param_int("limit", "", 1, 1000, &n, err, sizeof(err)) ==
	    -1);
	CHECK(api_param_int("limit", " 5", 1, 1000, &n, err, sizeof(err)) ==
	    -1);
	CHECK(api_param_int("limit", "5x", 1, 1000, &n, err, sizeof(err)) ==
	    -1);
	CHECK(api_param_int("limit", "99999999999999999999999", 1, 1000, &n,
	    err, sizeof(err)) == -1);
	CHECK(api_param_bool("recursive", "1", &b, err, sizeof(err)) == 0 &&
	    b == 1);
	CHECK(api_param_bool("recursive", "false", &b, err, sizeof(err)) ==
	    0 && b == 0);
	CHECK(api_param_bool("recursive", "2", &b, err, sizeof(err)) == -1);
	CHECK_STR(err, "recursive: must be 1 or 0");
	CHECK(api_param_enum("status", "ok", st, err, sizeof(err)) == 0);
	CHECK(api_param_enum("status", "OK", st, err, sizeof(err)) == -1);
	CHECK_STR(err, "status: must be one of ok, warning, critical");
	CHECK(api_param_str("q", "abc", 3, err, sizeof(err)) == 0);
	CHECK(api_param_str("q", "abcd", 3, err, sizeof(err)) == -1);

	CHECK(api_ref_kind("12") == API_REF_ID);
	CHECK(api_ref_kind("/Managed devices") == API_REF_PATH);
	CHECK(api_ref_kind("/") == -1);
	CHECK(api_ref_kind("") == -1);
	CHECK(api_ref_kind("12a") == -1);
	CHECK(api_ref_kind("1234567890123456789") == -1);

	CHECK(api_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
	CHECK(api_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
	CHECK(!api_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
	CHECK(!api_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e0"));
	CHECK(!api_uuid_valid("0f8fad5bxd9cb-469f-a165-70867728950e"));
	CHECK(!api_uuid_valid("not-a-uuid"));
	CHECK(!api_uuid_valid(""));
}

static void
test_cursor(void)
{
	char	 name[API_NAME_MAX + 1], id[37];
	char	*c;

	c = api_cursor_encode("pc \"7\"/ü", "0f8fad5b-d9cb-469f-a165-70867728950e");
	CHECK(c != NULL);
	CHECK(api_cursor_decode(c, name, sizeof(name), id) == 0);
	CHECK_STR(name, "pc \"7\"/ü");
	CHECK_STR(id, "0f8fad5b-d9cb-469f-a165-70867728950e");
	/* Any change makes it invalid, never a crash. */
	c[0] = 'z';
	CHECK(api_cursor_decode(c, name, sizeof(name), id) == -1);
	free(c);
	c = api_cursor_encode("a", "not-a-uuid");
	CHECK(api_cursor_decode(c, name, sizeof(name), id) == -1);
	free(c);
	CHECK(api_cursor_decode("", name, sizeof(name), id) == -1);
	CHECK(api_cursor_decode("abc", name, sizeof(name), id) == -1);
	CHECK(api_cursor_decode("5b5d", name, sizeof(name), id) == -1);
}

static void
test_misc(void)
{
	char		*p, *user, *pw;
	const char	*tok;
	json_t		*e;
	char		*js;

	p = api_like_pattern("50%_a\\b");
	CHECK_STR(p, "%50\\%\\_a\\\\b%");
	free(p);

	e = api_error_body("bad_request", "uses: must be an integer");
	js = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(js, "{\"error\":{\"code\":\"bad_request\",\"message\":"
	    "\"uses: must be an integer\"}}");
	free(js);
	json_decref(e);

	/* "alice:pa:ss" */
	CHECK(api_auth_parse("Basic YWxpY2U6cGE6c3M=", &user, &pw, &tok) ==
	    API_AUTH_BASIC);
	CHECK_STR(user, "alice");
	CHECK_STR(pw, "pa:ss");
	free(user);
	free(pw);
	CHECK(api_auth_parse("basic YWxpY2U6", &user, &pw, &tok) ==
	    API_AUTH_BASIC);
	CHECK_STR(pw, "");
	free(user);
	free(pw);
	/* No colon; empty user; not base64. */
	CHECK(api_auth_parse("Basic YWxpY2U=", &user, &pw, &tok) == -1);
	CHECK(api_auth_parse("Basic OnB3", &user, &pw, &tok) == -1);
	CHECK(api_auth_parse("Basic !!!!", &user, &pw, &tok) == -1);
	CHECK(user == NULL && pw == NULL);
	CHECK(api_auth_parse("Bearer abc", &user, &pw, &tok) ==
	    API_AUTH_BEARER);
	CHECK_STR(tok, "abc");
	CHECK(api_auth_parse("Bearer ", &user, &pw, &tok) == -1);
	CHECK(api_auth_parse("Negotiate YII=", &user, &pw, &tok) ==
	    API_AUTH_NEGOTIATE);
	CHECK(api_auth_parse("Digest x", &user, &pw, &tok) == -1);
	CHECK(api_auth_parse(NULL, &user, &pw, &tok) == -1);
}

int
main(void)
{
	test_validate();
	test_params();
	test_cursor();
	test_misc();
	TEST_DONE();
}
