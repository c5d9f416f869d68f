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

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "canopy_limits.h"
#include "util.h"

#include "api_json.h"

static const char *
api_type_name(const struct api_field *f)
{
	switch (f->type) {
	case AF_STRING:
	case AF_ENUM:
		return "a string";
	case AF_INT:
		return "an integer";
	case AF_BOOL:
		return "true or false";
	case AF_REF:
		return "a group id or a path";
	}
	return "?";
}

static void
api_enum_list(const char *const *enums, char *buf, size_t len)
{
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; enums != NULL && enums[i] != NULL; i++) {
		if (i > 0)
			strlcat(buf, ", ", len);
		strlcat(buf, enums[i], len);
	}
}

static int
api_enum_find(const char *const *enums, const char *s)
{
	size_t	 i;

	for (i = 0; enums != NULL && enums[i] != NULL; i++)
		if (strcmp(enums[i], s) == 0)
			return 0;
	return -1;
}

static int
api_check_field(const struct api_field *f, json_t *v, struct api_value *out,
    char *err, size_t errlen)
{
	char		 list[512];
	const char	*s;
	size_t		 len;
	long long	 n;

	switch (f->type) {
	case AF_STRING:
	case AF_ENUM:
		if (!json_is_string(v))
			goto badtype;
		s = json_string_value(v);
		len = json_string_length(v);
		if (strlen(s) != len) {
			snprintf(err, errlen, "%s: must not contain NUL",
			    f->name);
			return -1;
		}
		if (f->type == AF_ENUM) {
			if (api_enum_find(f->enums, s) == -1) {
				api_enum_list(f->enums, list, sizeof(list));
				snprintf(err, errlen, "%s: must be one of %s",
				    f->name, list);
				return -1;
			}
		} else if ((long long)len < f->min || (long long)len > f->max) {
			if (f->min > 0)
				snprintf(err, errlen, "%s: must be %lld to "
				    "%lld bytes long", f->name, f->min, f->max);
			else
				snprintf(err, errlen, "%s: must be at most "
				    "%lld bytes long", f->name, f->max);
			return -1;
		}
		out->s = s;
		break;
	case AF_INT:
		if (!json_is_integer(v))
			goto badrange;
		n = json_integer_value(v);
		if (n < f->min || n > f->max)
			goto badrange;
		out->i = n;
		break;
	case AF_BOOL:
		if (!json_is_boolean(v))
			goto badtype;
		out->b = json_is_true(v);
		break;
	case AF_REF:
		if (json_is_integer(v)) {
			n = json_integer_value(v);
			if (n < 0)
				goto badref;
			snprintf(out->num, sizeof(out->num), "%lld", n);
			out->s = out->num;
			break;
		}
		if (!json_is_string(v))
			goto badtype;
		s = json_string_value(v);
		if (strlen(s) != json_string_length(v) ||
		    json_string_length(v) > (size_t)f->max ||
		    api_ref_kind(s) == -1)
			goto badref;
		out->s = s;
		break;
	}
	out->present = 1;
	return 0;

 badtype:
	snprintf(err, errlen, "%s: must be %s", f->name, api_type_name(f));
	return -1;
 badrange:
	snprintf(err, errlen, "%s: must be an integer between %lld and %lld",
	    f->name, f->min, f->max);
	return -1;
 badref:
	snprintf(err, errlen, "%s: must be a group id or a path starting "
	    "with '/' of at most %lld bytes", f->name, f->max);
	return -1;
}

int
api_json_validate(const char *body, size_t len,
    const struct api_field *schema, size_t nfields, json_t **root,
    struct api_value *vals, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*obj, *v;
	const char	*key;
	size_t		 i, blank;

	*root = NULL;
	memset(vals, 0, nfields * sizeof(*vals));

	for (blank = 0; blank < len; blank++)
		if (!isspace((unsigned char)body[blank]))
			break;
	if (blank == len)
		obj = json_object();
	else
		obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		snprintf(err, errlen, "body: malformed JSON at line %d column "
		    "%d: %s", jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "body: must be a JSON object");
		goto fail;
	}

	json_object_foreach(obj, key, v) {
		for (i = 0; i < nfields; i++)
			if (strcmp(schema[i].name, key) == 0)
				break;
		if (i == nfields) {
			/* Names are client data: quote a bounded part. */
			snprintf(err, errlen, "%.64s: unknown field", key);
			goto fail;
		}
		if (json_is_null(v) && !schema[i].required)
			continue;
		if (api_check_field(&schema[i], v, &vals[i], err, errlen) == -1)
			goto fail;
	}
	for (i = 0; i < nfields; i++) {
		if (schema[i].required && !vals[i].present) {
			snprintf(err, errlen, "%s: required", schema[i].name);
			goto fail;
		}
	}
	*root = obj;
	return 0;

 fail:
	json_decref(obj);
	memset(vals, 0, nfields * sizeof(*vals));
	return -1;
}

int
api_param_int(const char *name, const char *s, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	char		*end;
	long long	 n;

	if (s == NULL || *s == '\0' || !(isdigit((unsigned char)*s) ||
	    (*s == '-' && isdigit((unsigned char)s[1]))))
		goto bad;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		goto bad;
	*out = n;
	return 0;
 bad:
	snprintf(err, errlen, "%s: must be an integer between %lld and %lld",
	    name, min, max);
	return -1;
}

int
api_param_bool(const char *name, const char *s, int *out, char *err,
    size_t errlen)
{
	if (s != NULL && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "yes") == 0)) {
		*out = 1;
		return 0;
	}
	if (s != NULL && (strcmp(s, "0") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "no") == 0)) {
		*out = 0;
		return 0;
	}
	snprintf(err, errlen, "%s: must be 1 or 0", name);
	return -1;
}

int
api_param_enum(const char *name, const char *s, const char *const *enums,
    char *err, size_t errlen)
{
	char	 list[512];

	if (s != NULL && api_enum_find(enums, s) == 0)
		return 0;
	api_enum_list(enums, list, sizeof(list));
	snprintf(err, errlen, "%s: must be one of %s", name, list);
	return -1;
}

int
api_param_str(const char *name, const char *s, size_t max, char *err,
    size_t errlen)
{
	if (s != NULL && strlen(s) <= max)
		return 0;
	snprintf(err, errlen, "%s: must be at most %zu bytes long", name, max);
	return -1;
}

int
api_ref_kind(const char *s)
{
	size_t	 i;

	if (s == NULL || *s == '\0')
		return -1;
	if (*s == '/')
		return s[1] == '\0' ? -1 : API_REF_PATH;
	/* bigint: at most 18 digits always fits. */
	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]) || i >= 18)
			return -1;
	return API_REF_ID;
}

int
api_uuid_valid(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]))
			return 0;
	}
	return s[36] == '\0';
}

/*
 * A cursor is the hex of a JSON array [name, id]: opaque to clients, and
 * safe in a query string without escaping.
 */
char *
api_cursor_encode(const char *name, const char *id)
{
	json_t	*a;
	char	*js, *hex;
	size_t	 len;

	if ((a = json_pack("[ss]", name, id)) == NULL)
		return NULL;
	js = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (js == NULL)
		return NULL;
	len = strlen(js);
	if ((hex = malloc(2 * len + 1)) != NULL)
		hex_encode(js, len, hex);
	free(js);
	return hex;
}

static int
api_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
api_cursor_decode(const char *cursor, char *name, size_t namelen,
    char id[37])
{
	json_error_t	 jerr;
	json_t		*a = NULL;
	char		*buf;
	const char	*n, *i;
	size_t		 len, k;
	int		 hi, lo, rc = -1;

	len = strlen(cursor);
	if (len == 0 || len % 2 != 0 || len > 4 * (API_NAME_MAX + 64))
		return -1;
	if ((buf = malloc(len / 2)) == NULL)
		return -1;
	for (k = 0; k < len / 2; k++) {
		if ((hi = api_hexval(cursor[2 * k])) == -1 ||
		    (lo = api_hexval(cursor[2 * k + 1])) == -1)
			goto done;
		buf[k] = (char)(hi << 4 | lo);
	}
	if ((a = json_loadb(buf, len / 2, 0, &jerr)) == NULL ||
	    !json_is_array(a) || json_array_size(a) != 2 ||
	    !json_is_string(json_array_get(a, 0)) ||
	    !json_is_string(json_array_get(a, 1)))
		goto done;
	n = json_string_value(json_array_get(a, 0));
	i = json_string_value(json_array_get(a, 1));
	if (strlen(n) != json_string_length(json_array_get(a, 0)) ||
	    strlen(n) >= namelen || !api_uuid_valid(i))
		goto done;
	strlcpy(name, n, namelen);
	strlcpy(id, i, 37);
	rc = 0;
 done:
	json_decref(a);
	free(buf);
	return rc;
}

char *
api_like_pattern(const char *s)
{
	char	*p, *o;

	if ((p = malloc(2 * strlen(s) + 3)) == NULL)
		return NULL;
	o = p;
	*o++ = '%';
	for (; *s != '\0'; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = '\0';
	return p;
}

json_t *
api_error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s,s:s}}", "error", "code", code,
	    "message", message);
}

int
api_auth_parse(const char *header, char **user, char **password,
    const char **token)
{
	const char	*p;
	uint8_t		*dec;
	char		*colon;
	size_t		 declen;

	*user = *password = NULL;
	*token = NULL;
	if (header == NULL)
		return -1;
	if (strncasecmp(header, "Bearer ", 7) == 0) {
		for (p = header + 7; *p == ' '; p++)
			;
		if (*p == '\0' || strlen(p) > MSG_MAX_TOKEN)
			return -1;
		*token = p;
		return API_AUTH_BEARER;
	}
	if (strncasecmp(header, "Negotiate ", 10) == 0) {
		for (p = header + 10; *p == ' '; p++)
			;
		*token = p;
		return API_AUTH_NEGOTIATE;
	}
	if (strncasecmp(header, "Basic ", 6) != 0)
		return -1;
	for (p = header + 6; *p == ' '; p++)
		;
	if (*p == '\0' || strlen(p) > 4 * (API_NAME_MAX + PW_MAX_LEN + 2) / 3 + 4)
		return -1;
	if ((dec = b64_decode(p, strlen(p), &declen)) == NULL)
		return -1;
	/* NUL-terminate a copy: the decoded bytes are not a C string. */
	if ((*user = malloc(declen + 1)) == NULL) {
		free(dec);
		return -1;
	}
	memcpy(*user, dec, declen);
	(*user)[declen] = '\0';
	free(dec);
	if (strlen(*user) != declen || (colon = strchr(*user, ':')) == NULL ||
	    colon == *user || colon - *user > API_NAME_MAX ||
	    strlen(colon + 1) > PW_MAX_LEN) {
		free(*user);
		*user = NULL;
		return -1;
	}
	*colon = '\0';
	if ((*password = strdup(colon + 1)) == NULL) {
		free(*user);
		*user = NULL;
		return -1;
	}
	return API_AUTH_BASIC;
}
