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
 * pki_sign_csr() with whatever an enrolling agent may send as its CSR.  The
 * CA is made once, in a temporary directory removed at exit.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "pki.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct pki	pki;
static char		dir[] = "/tmp/fuzz_csr.XXXXXX";

static void
cleanup(void)
{
	static const char *files[] = {
		"ca.key", "ca.pem", "server.key", "server.pem", "master.key"
	};
	char	path[64];
	size_t	i;

	pki_free(&pki);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	err[512];

	(void)argc;
	(void)argv;
	log_init("fuzz_csr", LOG_LVL_WARN, 0);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(cleanup);
	if (pki_init(dir, "fuzz", err, sizeof(err)) == -1 ||
	    pki_load(dir, &pki, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_csr: %s\n", err);
		exit(1);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 err[256], *pem;

	err[0] = '\0';
	pem = pki_sign_csr(&pki, (const char *)data, size, "fuzz-device", 1,
	    err, sizeof(err));
	if (pem == NULL && err[0] == '\0')
		abort();		/* every refusal says why */
	free(pem);
	/* Nothing may be left behind for the next caller on this thread. */
	if (ERR_peek_error() != 0)
		abort();
	return 0;
}
