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
#include <unistd.h>

#include "config.h"
#include "canopy_limits.h"
#include "log.h"
#include "util.h"
#include "test.h"

static char	err[512];

static int
parse(const char *text, struct conf *c)
{
	err[0] = '\0';
	return conf_parse("canopyd.conf", text, strlen(text), c, err,
	    sizeof(err));
}

/* Parses text that must fail with exactly want. */
static int
fails(const char *text, const char *want)
{
	struct conf	c;
	int		r = parse(text, &c);

	conf_free(&c);
	if (r == 0) {
		fprintf(stderr, "parsed, wanted: %s\n", want);
		return 0;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "error '%s', wanted '%s'\n", err, want);
		return 0;
	}
	return 1;
}

static int
ok(const char *text)
{
	struct conf	c;
	int		r = parse(text, &c);

	if (r != 0)
		fprintf(stderr, "'%s': %s\n", text, err);
	conf_free(&c);
	return r == 0;
}

static char *
printed(const struct conf *c)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&buf, &len);

	conf_print(c, fp);
	fclose(fp);
	return buf;
}

static void
test_defaults(void)
{
	struct conf	c;
	char		host[256];

	CHECK(parse("database \"dbname=canopy\"\n", &c) == 0);
	CHECK_STR(c.database, "dbname=canopy");
	CHECK(c.nlisten == 2);
	CHECK(c.listen[0].kind == LISTEN_AGENTS && c.listen[0].port == 13000);
	CHECK_STR(c.listen[0].host, "0.0.0.0");
	CHECK(c.listen[1].kind == LISTEN_API && c.listen[1].port == 13299);
	CHECK_STR(c.state_dir, "/var/lib/canopy");
	CHECK(c.log_syslog == 0 && c.log_level == LOG_LVL_INFO);
	CHECK(c.max_frame == FRAME_MAX_DEFAULT);
	CHECK(c.max_agents == AGENTS_MAX_DEFAULT);
	CHECK(c.api_max_body == API_MAX_BODY_DEFAULT);
	CHECK(c.db_workers == DB_WORKERS_DEFAULT);
	CHECK(c.heartbeat_s == AGENT_HEARTBEAT_S);
	CHECK(c.metrics_public == 1);
	CHECK(c.user[0] == '\0');
	CHECK_STR(c.path, "canopyd.conf");
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		CHECK_STR(c.server_name, host);
	}
	conf_free(&c);
	conf_free(&c);

	/* One listen line replaces both defaults. */
	CHECK(parse("database x\nlisten agents 127.0.0.1:14000\n", &c) == 0);
	CHECK(c.nlisten == 1 && c.listen[0].port == 14000);
	conf_free(&c);

	CHECK(fails("", "canopyd.conf: database is required"));
	CHECK(fails("# nothing\n\n", "canopyd.conf: database is required"));
}

static const char full[] =
    "# a full configuration\n"
    "server-name \"primary one\"   # trailing comment\n"
    "\n"
    "listen agents 0.0.0.0:13000\n"
    "listen api 127.0.0.1:13299\n"
    "listen agents [::1]:13001\n"
    "listen api [::]:13300\n"
    "\tdatabase \"host=127.0.0.1 port=5432 dbname=canopy user=canopy\"\r\n"
    "state-dir /srv/canopy\n"
    "user canopy\n"
    "log syslog\n"
    "log-level debug\n"
    "max-frame 32M\n"
    "max-agents 50000\n"
    "api-max-body 512K\n"
    "db-workers 8\n"
    "heartbeat 2m\n"
    "metrics authenticated";	/* no final newline */

static void
test_full(void)
{
	struct conf	 c, c2;
	char		*p1, *p2;

	CHECK(parse(full, &c) == 0);
	CHECK_STR(c.server_name, "primary one");
	CHECK(c.nlisten == 4);
	CHECK_STR(c.listen[1].host, "127.0.0.1");
	CHECK(c.listen[1].kind == LISTEN_API && c.listen[1].port == 13299);
	CHECK_STR(c.listen[2].host, "::1");
	CHECK(c.listen[2].kind == LISTEN_AGENTS && c.listen[2].port == 13001);
	CHECK_STR(c.listen[3].host, "::");
	CHECK_STR(c.database,
	    "host=127.0.0.1 port=5432 dbname=canopy user=canopy");
	CHECK_STR(c.state_dir, "/srv/canopy");
	CHECK_STR(c.user, "canopy");
	CHECK(c.log_syslog == 1 && c.log_level == LOG_LVL_DEBUG);
	CHECK(c.max_frame == 32u * 1024 * 1024);
	CHECK(c.max_agents == 50000);
	CHECK(c.api_max_body == 512u * 1024);
	CHECK(c.db_workers == 8);
	CHECK(c.heartbeat_s == 120);
	CHECK(c.metrics_public == 0);

	/* Round trip: print, parse, print gives the same text and values. */
	p1 = printed(&c);
	CHECK(conf_parse("printed", p1, strlen(p1), &c2, err,
	    sizeof(err)) == 0);
	p2 = printed(&c2);
	CHECK_STR(p1, p2);
	CHECK_STR(c2.server_name, c.server_name);
	CHECK(c2.nlisten == c.nlisten);
	CHECK(memcmp(c2.listen, c.listen, sizeof(c.listen)) == 0);
	CHECK_STR(c2.database, c.database);
	CHECK(c2.max_frame == c.max_frame && c2.heartbeat_s == c.heartbeat_s);
	CHECK(c2.api_max_body == c.api_max_body);
	free(p1);
	free(p2);
	conf_free(&c2);
	conf_free(&c);

	/* Round trip of quotes, backslashes and odd sizes. */
	CHECK(parse("database \"password='a\\\"b\\\\c' x\"\n"
	    "server-name \"tab\there\"\nmax-frame 5000\n"
	    "api-max-body 1G\nheartbeat 3601s\n", &c) != 0 ||
	    c.database != NULL);
	conf_free(&c);
	CHECK(parse("database \"password='a\\\"b\\\\c' x\"\n"
	    "server-name \"tab\there\"\nmax-frame 5000\nheartbeat 61\n",
	    &c) == 0);
	CHECK_STR(c.database, "password='a\"b\\c' x");
	CHECK_STR(c.server_name, "tab\there");
	p1 = printed(&c);
	CHECK(conf_parse("printed", p1, strlen(p1), &c2, err,
	    sizeof(err)) == 0);
	p2 = printed(&c2);
	CHECK_STR(p1, p2);
	CHECK_STR(c2.database, c.database);
	CHECK(c2.max_frame == 5000 && c2.heartbeat_s == 61);
	free(p1);
	free(p2);
	conf_free(&c2);
	conf_free(&c);

	/* Defaults round-trip too. */
	CHECK(parse("database x\n", &c) == 0);
	p1 = printed(&c);
	CHECK(conf_parse("printed", p1, strlen(p1), &c2, err,
	    sizeof(err)) == 0);
	p2 = printed(&c2);
	CHECK_STR(p1, p2);
	CHECK(c2.nlisten == 2);
	free(p1);
	free(p2);
	conf_free(&c2);
	conf_free(&c);
}

static void
test_errors(void)
{
	char	*line;
	size_t	 n;

	CHECK(fails("database x\n\n\n\n\n\n\n\n\n\n\n"
	    "listen agents 0.0.0.0:99999\n",
	    "canopyd.conf:12: listen: port 99999 out of range 1..65535"));
	CHECK(fails("database x\n\nfoo bar\n",
	    "canopyd.conf:3: unknown keyword 'foo'"));
	CHECK(fails("database x\n\n\nmax-frame 1\n",
	    "canopyd.conf:4: max-frame: 1 out of range 4K..256M"));
	CHECK(fails("database \"abc\n",
	    "canopyd.conf:1: unterminated quote"));
	CHECK(fails("database\n",
	    "canopyd.conf:1: database: missing argument"));
	CHECK(fails("database a b\n",
	    "canopyd.conf:1: database: too many arguments"));
	CHECK(fails("listen agents\n",
	    "canopyd.conf:1: listen: missing argument"));
	CHECK(fails("database a\ndatabase b\n",
	    "canopyd.conf:2: database: given twice (first on line 1)"));
	CHECK(fails("database x\nlisten web 0.0.0.0:80\n",
	    "canopyd.conf:2: listen: unknown kind 'web' (agents or api)"));
	CHECK(fails("database x\nlisten api 0.0.0.0:0\n",
	    "canopyd.conf:2: listen: port 0 out of range 1..65535"));
	CHECK(fails("database x\nlisten api 0.0.0.0\n",
	    "canopyd.conf:2: listen: '0.0.0.0' is not HOST:PORT"));
	CHECK(fails("database x\nlisten api ::1:13000\n",
	    "canopyd.conf:2: listen: IPv6 address '::1:13000' needs "
	    "brackets, as in [::1]:13000"));
	CHECK(fails("database x\nlisten api [::1]13000\n",
	    "canopyd.conf:2: listen: '[::1]13000' is not [ADDRESS]:PORT"));
	CHECK(fails("database x\nlisten api :13000\n",
	    "canopyd.conf:2: listen: ':13000' has no host"));
	CHECK(fails("database x\nlisten api \"a b:1\"\n",
	    "canopyd.conf:2: listen: 'a b' is not a host name or address"));
	CHECK(fails("database x\nlisten api h:http\n",
	    "canopyd.conf:2: listen: 'http' is not a port"));
	CHECK(fails("database x\nlog file\n",
	    "canopyd.conf:2: log: 'file' is neither stderr nor syslog"));
	CHECK(fails("database x\nlog-level trace\n",
	    "canopyd.conf:2: log-level: 'trace' is not warn, info or debug"));
	CHECK(fails("database x\nmetrics none\n",
	    "canopyd.conf:2: metrics: 'none' is neither public nor "
	    "authenticated"));
	CHECK(fails("database x\nstate-dir var\n",
	    "canopyd.conf:2: state-dir: 'var' is not an absolute path"));
	CHECK(fails("database x\nmax-frame 16X\n",
	    "canopyd.conf:2: max-frame: '16X' is not a size (like 64K, 16M)"));
	CHECK(fails("database x\nmax-frame -1\n",
	    "canopyd.conf:2: max-frame: '-1' is not a size (like 64K, 16M)"));
	CHECK(fails("database x\nmax-agents 10K\n",
	    "canopyd.conf:2: max-agents: '10K' is not a number"));
	CHECK(fails("database x\nheartbeat 1M\n",
	    "canopyd.conf:2: heartbeat: '1M' is not a duration "
	    "(like 30s, 5m)"));
	CHECK(fails("database \"\"\n",
	    "canopyd.conf:1: database: empty argument"));
	CHECK(fails("server-name \"\"\ndatabase x\n",
	    "canopyd.conf:1: server-name: empty argument"));
	CHECK(fails("database x\nmax-agents 99999999999999999999999\n",
	    "canopyd.conf:2: max-agents: 99999999999999999999999 out of "
	    "range 1..200000"));
	CHECK(fails("database x\nmax-frame 99999999999999G\n",
	    "canopyd.conf:2: max-frame: 99999999999999G out of range "
	    "4K..256M"));

	/* Line length: CONF_MAX_LINE passes, one more byte does not. */
	n = CONF_MAX_LINE + 64;
	line = malloc(n);
	memcpy(line, "database ", 9);
	memset(line + 9, 'a', CONF_MAX_LINE - 9);
	line[CONF_MAX_LINE] = '\n';
	line[CONF_MAX_LINE + 1] = '\0';
	CHECK(ok(line));
	memset(line + 9, 'a', CONF_MAX_LINE - 8);
	line[CONF_MAX_LINE + 1] = '\n';
	line[CONF_MAX_LINE + 2] = '\0';
	CHECK(fails(line, "canopyd.conf:1: line longer than 4096 bytes"));
	free(line);

	/* A NUL byte inside the text. */
	{
		struct conf	c;

		CHECK(conf_parse("n", "database x\0y\n", 13, &c, err,
		    sizeof(err)) == -1);
		CHECK_STR(err, "n:1: NUL byte in line");
		conf_free(&c);
	}

	/* Too many listen lines. */
	{
		char	buf[1024];
		int	i;

		strlcpy(buf, "database x\n", sizeof(buf));
		for (i = 0; i < CONF_MAX_LISTEN; i++) {
			char	l[64];

			snprintf(l, sizeof(l), "listen api 127.0.0.1:%d\n",
			    20000 + i);
			strlcat(buf, l, sizeof(buf));
		}
		CHECK(ok(buf));
		strlcat(buf, "listen api 127.0.0.1:1\n", sizeof(buf));
		CHECK(fails(buf, "canopyd.conf:10: listen: more than 8"));
	}
}

static void
test_bounds(void)
{
	/* Every number at its bounds and one past. */
	CHECK(ok("database x\nmax-frame 4K\n"));
	CHECK(ok("database x\nmax-frame 256M\n"));
	CHECK(ok("database x\nmax-frame 4096\n"));
	CHECK(fails("database x\nmax-frame 4095\n",
	    "canopyd.conf:2: max-frame: 4095 out of range 4K..256M"));
	CHECK(fails("database x\nmax-frame 268435457\n",
	    "canopyd.conf:2: max-frame: 268435457 out of range 4K..256M"));
	CHECK(fails("database x\nmax-frame 1G\n",
	    "canopyd.conf:2: max-frame: 1G out of range 4K..256M"));

	CHECK(ok("database x\nmax-agents 1\n"));
	CHECK(ok("database x\nmax-agents 200000\n"));
	CHECK(fails("database x\nmax-agents 0\n",
	    "canopyd.conf:2: max-agents: 0 out of range 1..200000"));
	CHECK(fails("database x\nmax-agents 200001\n",
	    "canopyd.conf:2: max-agents: 200001 out of range 1..200000"));

	CHECK(ok("database x\napi-max-body 4k\n"));
	CHECK(ok("database x\napi-max-body 64M\n"));
	CHECK(fails("database x\napi-max-body 4095\n",
	    "canopyd.conf:2: api-max-body: 4095 out of range 4K..64M"));
	CHECK(fails("database x\napi-max-body 67108865\n",
	    "canopyd.conf:2: api-max-body: 67108865 out of range 4K..64M"));

	CHECK(ok("database x\ndb-workers 1\n"));
	CHECK(ok("database x\ndb-workers 32\n"));
	CHECK(fails("database x\ndb-workers 0\n",
	    "canopyd.conf:2: db-workers: 0 out of range 1..32"));
	CHECK(fails("database x\ndb-workers 33\n",
	    "canopyd.conf:2: db-workers: 33 out of range 1..32"));

	CHECK(ok("database x\nheartbeat 5s\n"));
	CHECK(ok("database x\nheartbeat 5\n"));
	CHECK(ok("database x\nheartbeat 1h\n"));
	CHECK(ok("database x\nheartbeat 60m\n"));
	CHECK(fails("database x\nheartbeat 4s\n",
	    "canopyd.conf:2: heartbeat: 4s out of range 5s..1h"));
	CHECK(fails("database x\nheartbeat 3601\n",
	    "canopyd.conf:2: heartbeat: 3601 out of range 5s..1h"));
	CHECK(fails("database x\nheartbeat 1d\n",
	    "canopyd.conf:2: heartbeat: 1d out of range 5s..1h"));

	CHECK(ok("database x\nlisten api h:1\n"));
	CHECK(ok("database x\nlisten api h:65535\n"));
	CHECK(fails("database x\nlisten api h:65536\n",
	    "canopyd.conf:2: listen: port 65536 out of range 1..65535"));

	CHECK(fails("database x\nserver-name "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\n", "canopyd.conf:2: server-name: longer than 255 bytes"));
}

static void
test_load(void)
{
	struct conf	c;
	char		path[] = "/tmp/t_config.XXXXXX";
	int		fd;

	CHECK((fd = mkstemp(path)) != -1);
	CHECK(write(fd, "database x\nmax-agents 7\n", 24) == 24);
	close(fd);
	CHECK(conf_load(path, &c, err, sizeof(err)) == 0);
	CHECK(c.max_agents == 7);
	CHECK_STR(c.path, path);
	conf_free(&c);
	unlink(path);
	CHECK(conf_load(path, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "No such file") != NULL);
	conf_free(&c);
}

int
main(void)
{
	test_defaults();
	test_full();
	test_errors();
	test_bounds();
	test_load();
	TEST_DONE();
}
