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

/* The modules' hooks, in one place (srv/modules.h). */
#include <stddef.h>

#include "api.h"
#include "canopyd.h"
#include "modules.h"
#include "directory/directory.h"
#include "directory/scan.h"
#include "hierarchy/hierarchy.h"

const struct agent_msg_handler agent_msg_handlers[] = {
	{ MSG_POLICY_ACK, &policy_ack_class, policy_ack_item, 1 },
	{ MSG_TASK_RESULT, &tasks_result_class, tasks_result_item, 0 },
	{ 0, NULL, NULL, 0 }
};

void
modules_session_ready(struct canopyd *cd, const char *device_id, int vs_id)
{
	policy_session_ready(cd, device_id, vs_id);
	tasks_session_ready(cd, device_id, vs_id);
}

int
modules_start(struct canopyd *cd, char *err, size_t errlen)
{
	api_auth_start(cd);
	if (tasks_start(cd, err, errlen) == -1)
		return -1;
	if (rules_start(cd, err, errlen) == -1)
		goto fail_rules;
	if (directory_start(cd, err, errlen) == -1)
		goto fail_directory;
	if (scan_start(cd, err, errlen) == -1)
		goto fail_scan;
	if (hier_start(cd, err, errlen) == -1)
		goto fail_hier;
	return 0;
fail_hier:
	scan_stop(cd);
fail_scan:
	directory_stop(cd);
fail_directory:
	rules_stop(cd);
fail_rules:
	tasks_stop(cd);
	return -1;
}

void
modules_stop(struct canopyd *cd)
{
	hier_stop(cd);
	scan_stop(cd);
	directory_stop(cd);
	rules_stop(cd);
	tasks_stop(cd);
}
