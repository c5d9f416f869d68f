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

#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#define CONF_MAX_ARGS	8	/* more than any keyword takes */
#define CONF_PORT_MIN	1
#define CONF_PORT_MAX	65535

#define DEFAULT_STATE_DIR	"/var/lib/canopy"
#define DEFAULT_AGENTS_HOST	"0.0.0.0"
#define DEFAULT_AGENTS_PORT	13000
#define DEFAULT_API_HOST	"0.0.0.0"
#define DEFAULT_API_PORT	13299

struct pstate {
	const char	*name;
	int		 line;
	struct conf	*conf;
	char		*err;
	size_t		 errlen;
	int		 seen_listen;
};

static int	perr(struct pstate *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
perr(struct pstate *ps, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (ps->err == NULL || ps->errlen == 0)
		return -1;
	n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->name, ps->line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

void
conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->server_name, sizeof(c->server_name)) == -1 ||
	    c->server_name[0] == '\0')
		strlcpy(c->server_name, "canopy", sizeof(c->server_name));
	c->server_name[sizeof(c->server_name) - 1] = '\0';
	strlcpy(c->state_dir, DEFAULT_STATE_DIR, sizeof(c->state_dir));
	c->log_syslog = 0;
	c->log_level = LOG_LVL_INFO;
	c->max_frame = FRAME_MAX_DEFAULT;
	c->max_agents = AGENTS_MAX_DEFAULT;
	c->api_max_body = API_MAX_BODY_DEFAULT;
	c->db_workers = DB_WORKERS_DEFAULT;
	c->heartbeat_s = AGENT_HEARTBEAT_S;
	c->metrics_public = 1;
	strlcpy(c->up_min_severity, "warning", sizeof(c->up_min_severity));
}

static void
listen_default(struct conf *c)
{
	c->nlisten = 2;
	c->listen[0].kind = LISTEN_AGENTS;
	strlcpy(c->listen[0].host, DEFAULT_AGENTS_HOST,
	    sizeof(c->listen[0].host));
	c->listen[0].port = DEFAULT_AGENTS_PORT;
	c->listen[1].kind = LISTEN_API;
	strlcpy(c->listen[1].host, DEFAULT_API_HOST,
	    sizeof(c->listen[1].host));
	c->listen[1].port = DEFAULT_API_PORT;
}

/* Sizes and durations, both ways. */
static const struct unit {
	char		c;
	uint64_t	mult;
} size_units[] = {
	{ 'G', 1024ull * 1024 * 1024 }, { 'M', 1024ull * 1024 },
	{ 'K', 1024 }, { 0, 1 }
}, dur_units[] = {
	{ 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 }, { 0, 1 }
};

static void
fmt_unit(uint64_t v, const struct unit *u, char *buf, size_t len)
{
	for (; u->c != 0; u++)
		if (v != 0 && v % u->mult == 0)
			break;
	if (u->c != 0)
		snprintf(buf, len, "%llu%c", (unsigned long long)(v / u->mult),
		    u->c);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void
fmt_size(uint64_t v, char *buf, size_t len)
{
	fmt_unit(v, size_units, buf, len);
}

static void
fmt_dur(uint64_t v, char *buf, size_t len)
{
	const struct unit	*u;

	for (u = dur_units; u->c != 0; u++)
		if (v != 0 && v % u->mult == 0)
			break;
	if (u->c == 0)
		u = &dur_units[3];
	snprintf(buf, len, "%llu%c", (unsigned long long)(v / u->mult), u->c);
}

/*
 * Decimal digits with an optional unit letter.  Returns 0, -1 when it is
 * not a number of that kind, -2 when it does not fit in 64 bits.
 */
static int
parse_num(const char *s, const struct unit *units, int upper_ok,
    int lower_ok, uint64_t *out)
{
	uint64_t		 v = 0, mult = 1;
	const struct unit	*u;
	int			 big = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			big = 1;
		else
			v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0') {
		for (u = units; u->c != 0; u++)
			if ((upper_ok && *s == u->c) ||
			    (lower_ok && *s == (u->c | 0x20)) ||
			    (lower_ok && *s == u->c))
				break;
		if (u->c == 0 || s[1] != '\0')
			return -1;
		mult = u->mult;
	}
	if (big || v > UINT64_MAX / mult)
		return -2;
	*out = v * mult;
	return 0;
}

static int
arg_size(struct pstate *ps, const char *kw, const char *arg, uint64_t min,
    uint64_t max, uint32_t *out)
{
	char		a[32], b[32];
	uint64_t	v = 0;
	int		r;

	if ((r = parse_num(arg, size_units, 1, 1, &v)) == -1)
		return perr(ps, "%s: '%s' is not a size (like 64K, 16M)", kw,
		    arg);
	if (r == -2 || v < min || v > max) {
		fmt_size(min, a, sizeof(a));
		fmt_size(max, b, sizeof(b));
		return perr(ps, "%s: %s out of range %s..%s", kw, arg, a, b);
	}
	*out = (uint32_t)v;
	return 0;
}

static int
arg_uint(struct pstate *ps, const char *kw, const char *arg, uint64_t min,
    uint64_t max, uint64_t *out)
{
	uint64_t	v = 0;
	int		r;

	if ((r = parse_num(arg, size_units, 0, 0, &v)) == -1)
		return perr(ps, "%s: '%s' is not a number", kw, arg);
	if (r == -2 || v < min || v > max)
		return perr(ps, "%s: %s out of range %llu..%llu", kw, arg,
		    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

static int
arg_dur(struct pstate *ps, const char *kw, const char *arg, uint64_t min,
    uint64_t max, uint64_t *out)
{
	char		a[32], b[32];
	uint64_t	v = 0;
	int		r;

	/* Lower-case units only: 'M' would read as a size. */
	if ((r = parse_num(arg, dur_units, 1, 0, &v)) == -1)
		return perr(ps, "%s: '%s' is not a duration (like 30s, 5m)",
		    kw, arg);
	if (r == -2 || v < min || v > max) {
		fmt_dur(min, a, sizeof(a));
		fmt_dur(max, b, sizeof(b));
		return perr(ps, "%s: %s out of range %s..%s", kw, arg, a, b);
	}
	*out = v;
	return 0;
}

static int
arg_str(struct pstate *ps, const char *kw, const char *arg, char *dst,
    size_t dstlen, int empty_ok)
{
	if (!empty_ok && *arg == '\0')
		return perr(ps, "%s: empty argument", kw);
	if (strlcpy(dst, arg, dstlen) >= dstlen)
		return perr(ps, "%s: longer than %zu bytes", kw, dstlen - 1);
	return 0;
}

static int
kw_server_name(struct pstate *ps, char **av)
{
	return arg_str(ps, av[0], av[1], ps->conf->server_name,
	    sizeof(ps->conf->server_name), 0);
}

/*
 * Parses "HOST:PORT" or "[V6]:PORT" for keyword 'what' into host (a name or
 * an address; characters that conf_print can write unquoted) and port.
 */
static int
parse_hostport(struct pstate *ps, const char *what, const char *addr,
    char *host, size_t hostlen, uint16_t *portp)
{
	const char	*colon, *hs, *he;
	uint64_t	 port;

	if (addr[0] == '[') {
		hs = addr + 1;
		if ((he = strchr(hs, ']')) == NULL || he[1] != ':')
			return perr(ps, "%s: '%s' is not [ADDRESS]:PORT",
			    what, addr);
		colon = he + 1;
	} else {
		hs = addr;
		if ((colon = strrchr(addr, ':')) == NULL)
			return perr(ps, "%s: '%s' is not HOST:PORT", what,
			    addr);
		he = colon;
		if (memchr(hs, ':', (size_t)(he - hs)) != NULL)
			return perr(ps, "%s: IPv6 address '%s' needs "
			    "brackets, as in [::1]:13000", what, addr);
	}
	if (he == hs)
		return perr(ps, "%s: '%s' has no host", what, addr);
	if ((size_t)(he - hs) >= hostlen)
		return perr(ps, "%s: host longer than %zu bytes", what,
		    hostlen - 1);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	/* Names and addresses only, so that conf_print needs no quoting. */
	if (strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-_:%") != strlen(host))
		return perr(ps, "%s: '%s' is not a host name or address",
		    what, host);
	if (parse_num(colon + 1, size_units, 0, 0, &port) == -1)
		return perr(ps, "%s: '%s' is not a port", what, colon + 1);
	if (port < CONF_PORT_MIN || port > CONF_PORT_MAX)
		return perr(ps, "%s: port %s out of range %d..%d", what,
		    colon + 1, CONF_PORT_MIN, CONF_PORT_MAX);
	*portp = (uint16_t)port;
	return 0;
}

static int
kw_listen(struct pstate *ps, char **av)
{
	struct conf		*c = ps->conf;
	struct conf_listen	*l;
	enum listen_kind	 kind;
	char			 host[sizeof(l->host)];
	uint16_t		 port;

	if (strcmp(av[1], "agents") == 0)
		kind = LISTEN_AGENTS;
	else if (strcmp(av[1], "api") == 0)
		kind = LISTEN_API;
	else
		return perr(ps, "listen: unknown kind '%s' (agents or api)",
		    av[1]);
	if (parse_hostport(ps, "listen", av[2], host, sizeof(host),
	    &port) == -1)
		return -1;
	if (c->nlisten >= CONF_MAX_LISTEN)
		return perr(ps, "listen: more than %d", CONF_MAX_LISTEN);
	l = &c->listen[c->nlisten++];
	l->kind = kind;
	strlcpy(l->host, host, sizeof(l->host));
	l->port = port;
	ps->seen_listen = 1;
	return 0;
}

static int
kw_database(struct pstate *ps, char **av)
{
	if (av[1][0] == '\0')
		return perr(ps, "database: empty argument");
	free(ps->conf->database);
	if ((ps->conf->database = strdup(av[1])) == NULL)
		return perr(ps, "database: out of memory");
	return 0;
}

static int
kw_state_dir(struct pstate *ps, char **av)
{
	if (av[1][0] != '/')
		return perr(ps, "state-dir: '%s' is not an absolute path",
		    av[1]);
	return arg_str(ps, av[0], av[1], ps->conf->state_dir,
	    sizeof(ps->conf->state_dir), 0);
}

static int
kw_user(struct pstate *ps, char **av)
{
	return arg_str(ps, av[0], av[1], ps->conf->user,
	    sizeof(ps->conf->user), 1);
}

static int
kw_log(struct pstate *ps, char **av)
{
	if (strcmp(av[1], "stderr") == 0)
		ps->conf->log_syslog = 0;
	else if (strcmp(av[1], "syslog") == 0)
		ps->conf->log_syslog = 1;
	else
		return perr(ps, "log: '%s' is neither stderr nor syslog",
		    av[1]);
	return 0;
}

static const char *const level_names[] = { "warn", "info", "debug" };

static int
kw_log_level(struct pstate *ps, char **av)
{
	int	i;

	for (i = 0; i < 3; i++)
		if (strcmp(av[1], level_names[i]) == 0) {
			ps->conf->log_level = i;
			return 0;
		}
	return perr(ps, "log-level: '%s' is not warn, info or debug", av[1]);
}

static int
kw_max_frame(struct pstate *ps, char **av)
{
	return arg_size(ps, av[0], av[1], FRAME_MAX_MIN, FRAME_MAX_MAX,
	    &ps->conf->max_frame);
}

static int
kw_max_agents(struct pstate *ps, char **av)
{
	uint64_t	v = 0;

	if (arg_uint(ps, av[0], av[1], AGENTS_MAX_MIN, AGENTS_MAX_MAX,
	    &v) == -1)
		return -1;
	ps->conf->max_agents = (uint32_t)v;
	return 0;
}

static int
kw_api_max_body(struct pstate *ps, char **av)
{
	return arg_size(ps, av[0], av[1], API_MAX_BODY_MIN, API_MAX_BODY_MAX,
	    &ps->conf->api_max_body);
}

static int
kw_db_workers(struct pstate *ps, char **av)
{
	uint64_t	v = 0;

	if (arg_uint(ps, av[0], av[1], DB_WORKERS_MIN, DB_WORKERS_MAX,
	    &v) == -1)
		return -1;
	ps->conf->db_workers = (int)v;
	return 0;
}

static int
kw_heartbeat(struct pstate *ps, char **av)
{
	uint64_t	v = 0;

	if (arg_dur(ps, av[0], av[1], AGENT_HEARTBEAT_MIN_S,
	    AGENT_HEARTBEAT_MAX_S, &v) == -1)
		return -1;
	ps->conf->heartbeat_s = (int)v;
	return 0;
}

static int
kw_metrics(struct pstate *ps, char **av)
{
	if (strcmp(av[1], "public") == 0)
		ps->conf->metrics_public = 1;
	else if (strcmp(av[1], "authenticated") == 0)
		ps->conf->metrics_public = 0;
	else
		return perr(ps, "metrics: '%s' is neither public nor "
		    "authenticated", av[1]);
	return 0;
}

/* The server tree (hierarchy/): where this server's parent is. */
static int
kw_parent(struct pstate *ps, char **av)
{
	/* "accept": the parent dials this server (it sits in a DMZ). */
	if (strcmp(av[1], "accept") == 0) {
		ps->conf->parent_accept = 1;
		return 0;
	}
	return parse_hostport(ps, "parent", av[1], ps->conf->parent_host,
	    sizeof(ps->conf->parent_host), &ps->conf->parent_port);
}

static int
kw_parent_token(struct pstate *ps, char **av)
{
	return arg_str(ps, av[0], av[1], ps->conf->parent_token,
	    sizeof(ps->conf->parent_token), 0);
}

static int
kw_parent_ca(struct pstate *ps, char **av)
{
	if (av[1][0] != '/')
		return perr(ps, "parent-ca: '%s' is not an absolute path",
		    av[1]);
	return arg_str(ps, av[0], av[1], ps->conf->parent_ca,
	    sizeof(ps->conf->parent_ca), 0);
}

/* A child this server dials because the child cannot reach it (DMZ). */
static int
kw_child_dial(struct pstate *ps, char **av)
{
	struct conf		*c = ps->conf;
	struct conf_child_dial	*d;
	int			 i;

	if (c->nchild_dial >= CONF_MAX_CHILD_DIAL)
		return perr(ps, "child-dial: more than %d",
		    CONF_MAX_CHILD_DIAL);
	d = &c->child_dial[c->nchild_dial];
	if (arg_str(ps, av[0], av[1], d->name, sizeof(d->name), 0) == -1)
		return -1;
	for (i = 0; i < c->nchild_dial; i++)
		if (strcmp(c->child_dial[i].name, d->name) == 0)
			return perr(ps, "child-dial: '%s' named twice",
			    d->name);
	if (parse_hostport(ps, "child-dial", av[2], d->host,
	    sizeof(d->host), &d->port) == -1)
		return -1;
	c->nchild_dial++;
	return 0;
}

static const char *const severity_names[] = {
	"info", "warning", "error", "critical"
};

static int
kw_up_min_severity(struct pstate *ps, char **av)
{
	int	i;

	for (i = 0; i < 4; i++)
		if (strcmp(av[1], severity_names[i]) == 0) {
			strlcpy(ps->conf->up_min_severity, av[1],
			    sizeof(ps->conf->up_min_severity));
			return 0;
		}
	return perr(ps, "up-min-severity: '%s' is not info, warning, error "
	    "or critical", av[1]);
}

/* Kerberos SSO (auth/): the keytab and, optionally, the one principal. */
static int
kw_kerberos_keytab(struct pstate *ps, char **av)
{
	if (av[1][0] != '/')
		return perr(ps, "kerberos-keytab: '%s' is not an absolute path",
		    av[1]);
	return arg_str(ps, av[0], av[1], ps->conf->kerberos_keytab,
	    sizeof(ps->conf->kerberos_keytab), 0);
}

static int
kw_kerberos_service(struct pstate *ps, char **av)
{
	return arg_str(ps, av[0], av[1], ps->conf->kerberos_service,
	    sizeof(ps->conf->kerberos_service), 0);
}

/* IP-range scans (directory/): the DNS server for reverse look-ups. */
static int
kw_dns_server(struct pstate *ps, char **av)
{
	char	tmp[300];

	/* A bare IPv4 address or name means port 53. */
	if (strchr(av[1], ':') == NULL) {
		if (snprintf(tmp, sizeof(tmp), "%s:53", av[1]) >=
		    (int)sizeof(tmp))
			return perr(ps, "dns-server: '%s' is too long", av[1]);
		return parse_hostport(ps, "dns-server", tmp,
		    ps->conf->dns_host, sizeof(ps->conf->dns_host),
		    &ps->conf->dns_port);
	}
	return parse_hostport(ps, "dns-server", av[1], ps->conf->dns_host,
	    sizeof(ps->conf->dns_host), &ps->conf->dns_port);
}

static const struct keyword {
	const char	*name;
	int		 nargs;
	int		 repeat;
	int		(*fn)(struct pstate *, char **);
} keywords[] = {
	{ "server-name", 1, 0, kw_server_name },
	{ "listen", 2, 1, kw_listen },
	{ "database", 1, 0, kw_database },
	{ "state-dir", 1, 0, kw_state_dir },
	{ "user", 1, 0, kw_user },
	{ "log", 1, 0, kw_log },
	{ "log-level", 1, 0, kw_log_level },
	{ "max-frame", 1, 0, kw_max_frame },
	{ "max-agents", 1, 0, kw_max_agents },
	{ "api-max-body", 1, 0, kw_api_max_body },
	{ "db-workers", 1, 0, kw_db_workers },
	{ "heartbeat", 1, 0, kw_heartbeat },
	{ "metrics", 1, 0, kw_metrics },
	{ "parent", 1, 0, kw_parent },
	{ "parent-token", 1, 0, kw_parent_token },
	{ "parent-ca", 1, 0, kw_parent_ca },
	{ "child-dial", 2, 1, kw_child_dial },
	{ "up-min-severity", 1, 0, kw_up_min_severity },
	{ "kerberos-keytab", 1, 0, kw_kerberos_keytab },
	{ "kerberos-service", 1, 0, kw_kerberos_service },
	{ "dns-server", 1, 0, kw_dns_server },
};
#define NKEYWORDS	(sizeof(keywords) / sizeof(keywords[0]))

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Splits one line into arguments in tb (unquoted, unescaped).  Inside
 * double quotes a backslash takes the next '"' or '\' literally.
 */
static int
tokenize(struct pstate *ps, const char *s, size_t n, char *tb, char **av,
    int *acp)
{
	size_t	i = 0, pos = 0;
	int	ac = 0;

	for (;;) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n || s[i] == '#')
			break;
		if (ac == CONF_MAX_ARGS)
			return perr(ps, "%s: too many arguments", av[0]);
		av[ac++] = tb + pos;
		while (i < n && !is_blank(s[i]) && s[i] != '#') {
			if (s[i] != '"') {
				tb[pos++] = s[i++];
				continue;
			}
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < n &&
				    (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				tb[pos++] = s[i];
			}
			if (i == n)
				return perr(ps, "unterminated quote");
			i++;
		}
		tb[pos++] = '\0';
	}
	*acp = ac;
	return 0;
}

int
conf_parse(const char *name, const char *text, size_t len, struct conf *out,
    char *err, size_t errlen)
{
	struct pstate		 ps;
	const struct keyword	*kw;
	char			*av[CONF_MAX_ARGS];
	char			*tb = NULL;
	int			 firstline[NKEYWORDS];
	const char		*p, *nl, *end = text + len;
	size_t			 n, k;
	int			 ac = 0;

	conf_defaults(out);
	strlcpy(out->path, name, sizeof(out->path));
	memset(&ps, 0, sizeof(ps));
	memset(firstline, 0, sizeof(firstline));
	ps.name = name;
	ps.conf = out;
	ps.err = err;
	ps.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if (len > CONF_MAX_SIZE) {
		snprintf(err, errlen, "%s: larger than %u bytes", name,
		    CONF_MAX_SIZE);
		return -1;
	}
	if ((tb = malloc(CONF_MAX_LINE + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	for (p = text; p < end; p = nl + 1) {
		ps.line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > CONF_MAX_LINE) {
			perr(&ps, "line longer than %d bytes", CONF_MAX_LINE);
			goto fail;
		}
		if (memchr(p, '\0', n) != NULL) {
			perr(&ps, "NUL byte in line");
			goto fail;
		}
		if (tokenize(&ps, p, n, tb, av, &ac) == -1)
			goto fail;
		if (ac == 0)
			continue;
		for (k = 0; k < NKEYWORDS; k++)
			if (strcmp(av[0], keywords[k].name) == 0)
				break;
		if (k == NKEYWORDS) {
			char	kwbuf[64];

			strlcpy(kwbuf, av[0], sizeof(kwbuf));
			perr(&ps, "unknown keyword '%s'", kwbuf);
			goto fail;
		}
		kw = &keywords[k];
		if (ac - 1 < kw->nargs) {
			perr(&ps, "%s: missing argument", kw->name);
			goto fail;
		}
		if (ac - 1 > kw->nargs) {
			perr(&ps, "%s: too many arguments", kw->name);
			goto fail;
		}
		if (!kw->repeat && firstline[k] != 0) {
			perr(&ps, "%s: given twice (first on line %d)",
			    kw->name, firstline[k]);
			goto fail;
		}
		if (firstline[k] == 0)
			firstline[k] = ps.line;
		if (kw->fn(&ps, av) == -1)
			goto fail;
	}
	free(tb);
	if (out->database == NULL) {
		snprintf(err, errlen, "%s: database is required", name);
		return -1;
	}
	if (!ps.seen_listen)
		listen_default(out);
	return 0;
fail:
	free(tb);
	return -1;
}

int
conf_load(const char *path, struct conf *out, char *err, size_t errlen)
{
	char	*text;
	size_t	 len;
	int	 rv;

	if ((text = file_read(path, CONF_MAX_SIZE, &len)) == NULL) {
		conf_defaults(out);
		snprintf(err, errlen, "%s: %s", path, errno == EFBIG ?
		    "file too large" : strerror(errno));
		return -1;
	}
	rv = conf_parse(path, text, len, out, err, errlen);
	free(text);
	return rv;
}

static void
print_quoted(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

void
conf_print(const struct conf *c, FILE *fp)
{
	const struct conf_listen	*l;
	char				 buf[32];
	int				 i;

	fputs("server-name ", fp);
	print_quoted(fp, c->server_name);
	fputc('\n', fp);
	for (i = 0; i < c->nlisten; i++) {
		l = &c->listen[i];
		fprintf(fp, strchr(l->host, ':') != NULL ?
		    "listen %s [%s]:%u\n" : "listen %s %s:%u\n",
		    l->kind == LISTEN_AGENTS ? "agents" : "api", l->host,
		    l->port);
	}
	if (c->database != NULL) {
		fputs("database ", fp);
		print_quoted(fp, c->database);
		fputc('\n', fp);
	}
	fputs("state-dir ", fp);
	print_quoted(fp, c->state_dir);
	fputc('\n', fp);
	if (c->user[0] != '\0') {
		fputs("user ", fp);
		print_quoted(fp, c->user);
		fputc('\n', fp);
	}
	fprintf(fp, "log %s\n", c->log_syslog ? "syslog" : "stderr");
	fprintf(fp, "log-level %s\n", c->log_level >= 0 && c->log_level < 3 ?
	    level_names[c->log_level] : "info");
	fmt_size(c->max_frame, buf, sizeof(buf));
	fprintf(fp, "max-frame %s\n", buf);
	fprintf(fp, "max-agents %u\n", c->max_agents);
	fmt_size(c->api_max_body, buf, sizeof(buf));
	fprintf(fp, "api-max-body %s\n", buf);
	fprintf(fp, "db-workers %d\n", c->db_workers);
	fmt_dur((uint64_t)c->heartbeat_s, buf, sizeof(buf));
	fprintf(fp, "heartbeat %s\n", buf);
	fprintf(fp, "metrics %s\n", c->metrics_public ? "public" :
	    "authenticated");
	if (c->parent_accept)
		fputs("parent accept\n", fp);
	if (c->parent_host[0] != '\0')
		fprintf(fp, strchr(c->parent_host, ':') != NULL ?
		    "parent [%s]:%u\n" : "parent %s:%u\n", c->parent_host,
		    c->parent_port);
	if (c->parent_token[0] != '\0')
		fputs("parent-token \"(set)\"\n", fp);
	if (c->parent_ca[0] != '\0') {
		fputs("parent-ca ", fp);
		print_quoted(fp, c->parent_ca);
		fputc('\n', fp);
	}
	for (i = 0; i < c->nchild_dial; i++) {
		fputs("child-dial ", fp);
		print_quoted(fp, c->child_dial[i].name);
		fprintf(fp, strchr(c->child_dial[i].host, ':') != NULL ?
		    " [%s]:%u\n" : " %s:%u\n", c->child_dial[i].host,
		    c->child_dial[i].port);
	}
	fprintf(fp, "up-min-severity %s\n", c->up_min_severity);
	if (c->kerberos_keytab[0] != '\0') {
		fputs("kerberos-keytab ", fp);
		print_quoted(fp, c->kerberos_keytab);
		fputc('\n', fp);
	}
	if (c->kerberos_service[0] != '\0') {
		fputs("kerberos-service ", fp);
		print_quoted(fp, c->kerberos_service);
		fputc('\n', fp);
	}
	if (c->dns_host[0] != '\0')
		fprintf(fp, strchr(c->dns_host, ':') != NULL ?
		    "dns-server [%s]:%u\n" : "dns-server %s:%u\n",
		    c->dns_host, c->dns_port);
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->database);
	c->database = NULL;
}
