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
 * Output for people: tables with columns as wide as their content (like
 * kubectl get), relative times, sizes; and --json for scripts.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canopyctl.h"

#define TABLE_GAP	3	/* blanks between columns */

struct table {
	int	  ncols;
	size_t	  nrows;	/* the titles are row 0 */
	size_t	  cap;
	char	**cells;	/* nrows * ncols */
};

static void
table_add(struct table *t, const char **cols)
{
	char	**p;
	size_t	  ncap;
	int	  i;

	if (t->nrows == t->cap) {
		ncap = t->cap ? t->cap * 2 : 16;
		p = reallocarray(t->cells, ncap * t->ncols, sizeof(*p));
		if (p == NULL) {
			ctl_warnx("out of memory");
			exit(EXIT_ERR);
		}
		t->cells = p;
		t->cap = ncap;
	}
	for (i = 0; i < t->ncols; i++) {
		p = &t->cells[t->nrows * t->ncols + i];
		*p = strdup(cols[i] != NULL && cols[i][0] != '\0' ?
		    cols[i] : "-");
		if (*p == NULL) {
			ctl_warnx("out of memory");
			exit(EXIT_ERR);
		}
		/* One line per row, whatever the data holds. */
		for (char *c = *p; *c != '\0'; c++)
			if (*c == '\n' || *c == '\t' || *c == '\r')
				*c = ' ';
	}
	t->nrows++;
}

struct table *
table_new(int ncols, ...)
{
	struct table	*t;
	const char	*cols[16];
	va_list		 ap;
	int		 i;

	if (ncols < 1 || ncols > 16 || (t = calloc(1, sizeof(*t))) == NULL) {
		ctl_warnx("out of memory");
		exit(EXIT_ERR);
	}
	t->ncols = ncols;
	va_start(ap, ncols);
	for (i = 0; i < ncols; i++)
		cols[i] = va_arg(ap, const char *);
	va_end(ap);
	table_add(t, cols);
	return (t);
}

void
table_row(struct table *t, ...)
{
	const char	*cols[16];
	va_list		 ap;
	int		 i;

	va_start(ap, t);
	for (i = 0; i < t->ncols; i++)
		cols[i] = va_arg(ap, const char *);
	va_end(ap);
	table_add(t, cols);
}

/* Display width: count UTF-8 lead bytes, not bytes. */
static size_t
u8_width(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return (n);
}

void
table_print(struct table *t, FILE *f)
{
	size_t	 w[16], r, n;
	int	 i;

	for (i = 0; i < t->ncols; i++) {
		w[i] = 0;
		for (r = 0; r < t->nrows; r++)
			if ((n = u8_width(t->cells[r * t->ncols + i])) > w[i])
				w[i] = n;
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];

			fputs(c, f);
			if (i == t->ncols - 1)
				break;
			for (n = u8_width(c); n < w[i] + TABLE_GAP; n++)
				fputc(' ', f);
		}
		fputc('\n', f);
	}
}

void
table_free(struct table *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
out_json(json_t *j)
{
	if (j == NULL)
		return;
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

const char *
out_str(json_t *o, const char *key, char *buf, size_t len)
{
	json_t	*v, *sub;

	v = key != NULL ? json_object_get(o, key) : o;
	if (v == NULL || json_is_null(v))
		return ("-");
	if (json_is_string(v))
		return (json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return (buf);
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return (buf);
	}
	if (json_is_boolean(v))
		return (json_is_true(v) ? "yes" : "no");
	/* An embedded object: its most human name. */
	if (json_is_object(v)) {
		if ((sub = json_object_get(v, "path")) != NULL ||
		    (sub = json_object_get(v, "pretty_name")) != NULL ||
		    (sub = json_object_get(v, "name")) != NULL ||
		    (sub = json_object_get(v, "id")) != NULL)
			return (out_str(sub, NULL, buf, len));
	}
	if (json_is_array(v)) {
		size_t	 i, off = 0;
		json_t	*e;
		char	 one[128];

		buf[0] = '\0';
		json_array_foreach(v, i, e) {
			const char *s = out_str(e, NULL, one, sizeof(one));
			int n = snprintf(buf + off, len - off, "%s%s",
			    i ? "," : "", s);

			if (n < 0 || (size_t)n >= len - off)
				break;
			off += n;
		}
		return (buf[0] ? buf : "-");
	}
	return ("?");
}

/* Seconds since the epoch from ISO 8601 ("2026-11-21T05:39:09.123Z"). */
static int
parse_iso(const char *s, time_t *out)
{
	struct tm	 tm;
	const char	*p;
	long		 off = 0;
	int		 sign, hh, mm;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL &&
	    (p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm)) == NULL)
		return (-1);
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		hh = mm = 0;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) < 1 &&
		    sscanf(p + 1, "%2d%2d", &hh, &mm) < 1)
			return (-1);
		off = sign * (hh * 3600L + mm * 60L);
	} else if (*p != 'Z' && *p != '\0')
		return (-1);
	*out = timegm(&tm) - off;
	return (0);
}

const char *
out_time_ago(json_t *v, char *buf, size_t len)
{
	time_t	 t, now = time(NULL);
	double	 d;
	long	 ago;

	if (v == NULL || json_is_null(v))
		return ("never");
	if (json_is_string(v)) {
		if (parse_iso(json_string_value(v), &t) == -1)
			return (json_string_value(v));
	} else if (json_is_number(v)) {
		d = json_number_value(v);
		/* Milliseconds, as the agent protocol counts them. */
		t = (time_t)(d > 1e11 ? d / 1000 : d);
	} else
		return ("?");

	ago = (long)(now - t);
	if (ago < 0)
		snprintf(buf, len, "just now");
	else if (ago < 120)
		snprintf(buf, len, "%lds ago", ago);
	else if (ago < 2 * 3600)
		snprintf(buf, len, "%ldm ago", ago / 60);
	else if (ago < 2 * 86400)
		snprintf(buf, len, "%ldh ago", ago / 3600);
	else
		snprintf(buf, len, "%ldd ago", ago / 86400);
	return (buf);
}

const char *
out_bytes(double n, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	size_t	u = 0;

	while (n >= 1024 && u < sizeof(units) / sizeof(units[0]) - 1) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
	return (buf);
}
