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

#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "log.h"
#include "util.h"
#include "test.h"

static void
test_strl(void)
{
	char	buf[8];

	CHECK(strlcpy(buf, "abc", sizeof(buf)) == 3);
	CHECK_STR(buf, "abc");
	CHECK(strlcpy(buf, "abcdefghij", sizeof(buf)) == 10);
	CHECK_STR(buf, "abcdefg");
	CHECK(strlcpy(buf, "x", 0) == 1);
	CHECK_STR(buf, "abcdefg");
	CHECK(strlcpy(buf, "", sizeof(buf)) == 0 && buf[0] == '\0');

	strlcpy(buf, "ab", sizeof(buf));
	CHECK(strlcat(buf, "cd", sizeof(buf)) == 4);
	CHECK_STR(buf, "abcd");
	CHECK(strlcat(buf, "efghij", sizeof(buf)) == 10);
	CHECK_STR(buf, "abcdefg");
	/* dst not terminated within dsize: dsize + strlen(src). */
	memset(buf, 'z', sizeof(buf));
	CHECK(strlcat(buf, "abc", 4) == 7);
}

static void
test_codec(void)
{
	char		 hex[65], *s, *t;
	uint8_t		 md[32], *d, raw[256];
	size_t		 n, i;

	hex_encode("\x00\xff\x10", 3, hex);
	CHECK_STR(hex, "00ff10");
	sha256_hex("abc", 3, hex);
	CHECK_STR(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, hex);
	CHECK_STR(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256("abc", 3, md);
	CHECK(md[0] == 0xba && md[31] == 0xad);

	s = b64_encode("foobar", 6);
	CHECK_STR(s, "Zm9vYmFy");
	free(s);
	s = b64_encode("fo", 2);
	CHECK_STR(s, "Zm8=");
	free(s);
	s = b64_encode("", 0);
	CHECK_STR(s, "");
	free(s);

	d = b64_decode("Zm8=", 4, &n);
	CHECK(d != NULL && n == 2 && memcmp(d, "fo", 2) == 0);
	free(d);
	d = b64_decode("Zg==", 4, &n);
	CHECK(d != NULL && n == 1 && d[0] == 'f');
	free(d);
	d = b64_decode("Zm9vYmFy", 8, &n);
	CHECK(d != NULL && n == 6 && memcmp(d, "foobar", 6) == 0);
	free(d);
	d = b64_decode("", 0, &n);
	CHECK(d != NULL && n == 0);
	free(d);
	CHECK(b64_decode("Zm9", 3, &n) == NULL);	/* not 4n long */
	CHECK(b64_decode("Zm9!", 4, &n) == NULL);	/* not base64 */
	CHECK(b64_decode("Zg==Zg==", 8, &n) == NULL);	/* padding inside */
	CHECK(b64_decode("====", 4, &n) == NULL);
	CHECK(b64_decode("Z===", 4, &n) == NULL);
	CHECK(b64_decode(" Zg=", 4, &n) == NULL);
	CHECK(b64_decode("Zm9v\n", 5, &n) == NULL);

	/* Round trip over every byte value and length. */
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < 40; i++) {
		s = b64_encode(raw, i);
		d = b64_decode(s, strlen(s), &n);
		CHECK(d != NULL && n == i && memcmp(d, raw, i) == 0);
		free(s);
		free(d);
	}

	/* Tokens: URL-safe, no padding, different each time. */
	s = token_new(32);
	t = token_new(32);
	CHECK(s != NULL && t != NULL);
	CHECK(strlen(s) == 43);
	CHECK(strcmp(s, t) != 0);
	CHECK(strpbrk(s, "+/=") == NULL);
	free(s);
	free(t);
	CHECK(token_new(0) == NULL);

	CHECK(rand_bytes(raw, sizeof(raw)) == 0);
	CHECK(rand_bytes(raw, 0) == 0);
}

static void
test_time(void)
{
	uint64_t	a = mono_ms(), b = mono_ms();

	CHECK(b >= a);
	CHECK(wall_ms() > 1600000000000LL);
}

static void
test_files(void)
{
	char		 dir[] = "/tmp/t_util.XXXXXX", path[256], sub[256];
	char		*buf;
	size_t		 n;
	struct stat	 st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/f", dir);

	CHECK(file_write_atomic(path, "hello", 5, 0600) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	buf = file_read(path, 100, &n);
	CHECK(buf != NULL && n == 5 && strcmp(buf, "hello") == 0);
	free(buf);
	/* Replace: never a torn file, and no temporary left behind. */
	CHECK(file_write_atomic(path, "bye", 3, 0640) == 0);
	buf = file_read(path, 100, &n);
	CHECK(buf != NULL && n == 3 && strcmp(buf, "bye") == 0);
	free(buf);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);

	/* The size limit: max is allowed, one less is not. */
	buf = file_read(path, 3, &n);
	CHECK(buf != NULL && n == 3);
	free(buf);
	errno = 0;
	CHECK(file_read(path, 2, &n) == NULL && errno == EFBIG);
	CHECK(file_read(dir, 100, &n) == NULL);
	snprintf(sub, sizeof(sub), "%s/missing", dir);
	CHECK(file_read(sub, 100, &n) == NULL && errno == ENOENT);
	/* Empty file. */
	CHECK(file_write_atomic(path, "", 0, 0600) == 0);
	buf = file_read(path, 0, &n);
	CHECK(buf != NULL && n == 0 && buf[0] == '\0');
	free(buf);

	/* mkdir_p: nested, existing, and a file in the way. */
	snprintf(sub, sizeof(sub), "%s/a/b//c/", dir);
	CHECK(mkdir_p(sub, 0700) == 0);
	CHECK(mkdir_p(sub, 0700) == 0);
	snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
	snprintf(sub, sizeof(sub), "%s/f/x", dir);
	CHECK(mkdir_p(sub, 0700) == -1);

	/* A missing directory fails cleanly. */
	snprintf(sub, sizeof(sub), "%s/nodir/f", dir);
	CHECK(file_write_atomic(sub, "x", 1, 0600) == -1);

	snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
	CHECK(system(sub) == 0);
}

static void
test_log(void)
{
	char	 path[] = "/tmp/t_util_log.XXXXXX", *buf;
	int	 fd, saved, status;
	size_t	 n;
	pid_t	 pid;

	CHECK((fd = mkstemp(path)) != -1);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);

	log_init("/usr/sbin/canopyd", LOG_LVL_INFO, 0);
	CHECK(log_getlevel() == LOG_LVL_INFO);
	log_warnx("plain %d", 1);
	errno = ENOENT;
	log_warn("open %s", "f");
	CHECK(errno == ENOENT);		/* logging keeps errno */
	log_info("info");
	log_debug("hidden");
	log_setlevel(LOG_LVL_DEBUG);
	log_debug("shown");
	log_setlevel(LOG_LVL_WARN);
	log_info("hidden");
	if ((pid = fork()) == 0)
		fatalx("bye");
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	buf = file_read(path, 4096, &n);
	CHECK_STR(buf, "canopyd: warning: plain 1\n"
	    "canopyd: warning: open f: No such file or directory\n"
	    "canopyd: info: info\n"
	    "canopyd: debug: shown\n"
	    "canopyd: fatal: bye\n");
	free(buf);
	unlink(path);
}

int
main(void)
{
	test_log();
	test_strl();
	test_codec();
	test_time();
	test_files();
	TEST_DONE();
}
