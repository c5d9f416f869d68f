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

/* Effective policies pushed to agents (srv/modules.h).  Not yet written. */
#include <stddef.h>
#include <stdio.h>

#include "canopyd.h"
#include "modules.h"

static int
policy_ack_run(PGconn *pg, void **items, size_t n, char *err, size_t errlen)
{
	return DB_OK;
}

const struct db_batch_class policy_ack_class = {
	"policy-ack", policy_ack_run, DB_BATCH_MAX
};

void
policy_session_ready(struct canopyd *cd, const char *device_id, int vs_id)
{
}

struct qa_item *
policy_ack_item(const char *device_id, int vs_id, const struct msg *m,
    char *why, size_t whylen)
{
	snprintf(why, whylen, "policy_ack: policies are not served yet");
	return NULL;
}
