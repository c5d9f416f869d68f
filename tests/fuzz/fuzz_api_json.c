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
 * The API's request checks: a JSON body against a schema, query
 * parameters, cursors and Authorization headers.  Fuzz targets link
 * libcommon only, so the validator is compiled in here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../srv/api_json.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fz_enum[] = { "ok", "warning", "critical", NULL };

static const struct api_field fz_schema[] = {
	{ "user",	AF_STRING, 0, 1, API_NAME_MAX, NULL },
	{ "password",	AF_STRING, 0, 0, PW_MAX_LEN, NULL },
	{ "group",	AF_REF, 0, 1, API_PATH_MAX, NULL },
	{ "uses",	AF_INT, 0, 1, TOKEN_USES_MAX, NULL },
	{ "ttl_s",	AF_INT, 0, 1, TOKEN_TTL_MAX_S, NULL },
	{ "status",	AF_ENUM, 0, 0, 0, fz_enum },
	{ "on",		AF_BOOL, 0, 0, 0, NULL },
};
#define FZ_NF	(sizeof(fz_schema) / sizeof(fz_schema[0]))

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_value v[FZ_NF];
	json_t		*root = NULL;
	char		 err[512], name[API_NAME_MAX + 1], id[37];
	char		*s, *user, *pw, *c;
	const char	*tok;
	long long	 n;
	size_t		 i;
	int		 b;

	if (api_json_validate((const char *)data, size, fz_schema, FZ_NF,
	    &root, v, err, sizeof(err)) == 0) {
		/* Every value found must be readable and within its limits. */
		for (i = 0; i < FZ_NF; i++) {
			if (!v[i].present)
				continue;
			if (fz_schema[i].type == AF_STRING &&
			    (strlen(v[i].s) > (size_t)fz_schema[i].max))
				abort();
			if (fz_schema[i].type == AF_INT &&
			    (v[i].i < fz_schema[i].min ||
			    v[i].i > fz_schema[i].max))
				abort();
			if (fz_schema[i].type == AF_REF &&
			    api_ref_kind(v[i].s) == -1)
				abort();
		}
		json_decref(root);
	} else if (root != NULL || err[0] == '\0')
		abort();

	/* The same bytes as a C string, for the string-taking checks. */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)api_param_int("limit", s, 1, API_PAGE_MAX, &n, err, sizeof(err));
	(void)api_param_bool("recursive", s, &b, err, sizeof(err));
	(void)api_param_enum("status", s, fz_enum, err, sizeof(err));
	(void)api_uuid_valid(s);
	(void)api_ref_kind(s);
	if (api_cursor_decode(s, name, sizeof(name), id) == 0) {
		/* A cursor that decodes must round-trip. */
		if ((c = api_cursor_encode(name, id)) == NULL)
			abort();
		free(c);
	}
	if ((c = api_like_pattern(s)) != NULL)
		free(c);
	if (api_auth_parse(s, &user, &pw, &tok) == API_AUTH_BASIC) {
		if (user == NULL || pw == NULL)
			abort();
		free(user);
		free(pw);
	}
	free(s);
	return 0;
}
