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

#ifndef CANOPY_API_JSON_H
#define CANOPY_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Checking what API clients send, before anything else looks at it.  Every
 * function here is pure (no I/O, no globals), so it is unit-tested and
 * fuzzed (tests/unit/t_api_json.c, tests/fuzz/fuzz_api_json.c).  A failure
 * fills err with a message for a person that starts with the field's name:
 * "uses: must be an integer between 1 and 1000000".
 */

enum api_ftype {
	AF_STRING,	/* a string of min..max bytes */
	AF_INT,		/* an integer min..max */
	AF_BOOL,
	AF_ENUM,	/* a string, one of enums[] */
	AF_REF		/* an id (integer or digit string) or a "/path" */
};

struct api_field {
	const char		*name;
	enum api_ftype		 type;
	int			 required;
	long long		 min;	/* AF_INT: value; AF_STRING: length */
	long long		 max;
	const char *const	*enums;	/* AF_ENUM: NULL-terminated */
};

/* What was found for each field of the schema, in the schema's order. */
struct api_value {
	int			 present;
	const char		*s;	/* AF_STRING, AF_ENUM, AF_REF; in root */
	long long		 i;	/* AF_INT */
	int			 b;	/* AF_BOOL */
	char			 num[24];	/* AF_REF given as an integer */
};

/*
 * Parses body (len bytes, need not be NUL-terminated; empty means {}) as a
 * JSON object and checks it against the schema: no unknown fields, the
 * right types, lengths and ranges, the required fields present.  On success
 * returns 0 with *root the parsed object (the caller json_decref()s it; the
 * strings in vals point into it).  On failure returns -1 with err set and
 * *root NULL.
 */
int	 api_json_validate(const char *body, size_t len,
	    const struct api_field *schema, size_t nfields, json_t **root,
	    struct api_value *vals, char *err, size_t errlen);

/* Query parameters.  Each returns 0 or -1 with err naming the parameter. */
int	 api_param_int(const char *name, const char *s, long long min,
	    long long max, long long *out, char *err, size_t errlen);
int	 api_param_bool(const char *name, const char *s, int *out, char *err,
	    size_t errlen);
int	 api_param_enum(const char *name, const char *s,
	    const char *const *enums, char *err, size_t errlen);
int	 api_param_str(const char *name, const char *s, size_t max, char *err,
	    size_t errlen);

/* A group named by id ("12") or by path ("/Managed devices/Berlin"). */
#define API_REF_ID	1
#define API_REF_PATH	2
int	 api_ref_kind(const char *s);	/* API_REF_ID, API_REF_PATH or -1 */

/* 1 if s is a UUID in its canonical text form, else 0. */
int	 api_uuid_valid(const char *s);

/*
 * Keyset-pagination cursors: an opaque string for the position after
 * (name, id).  encode returns a malloc'd string; decode fills name (at most
 * namelen - 1 bytes) and id (a canonical UUID) or returns -1.
 */
char	*api_cursor_encode(const char *name, const char *id);
int	 api_cursor_decode(const char *cursor, char *name, size_t namelen,
	    char id[37]);

/* A LIKE pattern matching s anywhere, with %, _ and \ escaped; malloc'd. */
char	*api_like_pattern(const char *s);

/* The error body: {"error":{"code":code,"message":message}}. */
json_t	*api_error_body(const char *code, const char *message);

/*
 * Splits an Authorization header into its scheme and credentials.  For
 * Basic, decodes user and password (malloc'd, caller frees).  Returns
 * API_AUTH_BASIC, API_AUTH_BEARER, API_AUTH_NEGOTIATE, or -1.
 */
#define API_AUTH_BASIC		1
#define API_AUTH_BEARER		2
#define API_AUTH_NEGOTIATE	3
int	 api_auth_parse(const char *header, char **user, char **password,
	    const char **token);

#endif
