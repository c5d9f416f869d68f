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

#ifndef CANOPY_MODULES_H
#define CANOPY_MODULES_H

/*
 * The server modules that talk to agents beyond the sessions' own protocol
 * (policies, tasks) and the periodic ones (status and moving rules), and
 * what they use of agent sessions.  srv/agent_session.c calls the hooks;
 * each module owns its file.
 */
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "msg.h"
#include "db/db.h"
#include "db/q_agents.h"

struct canopyd;
struct agents;

/* srv/agents.c: to connected agents. */

/* Sends one message to a connected device; -1 if it is not connected.
 * sb is consumed either way. */
int	 agents_send(struct agents *, const char *device_id,
	    msgpack_sbuffer *sb);
/* Calls fn for every device with an established session. */
void	 agents_foreach(struct agents *,
	    void (*fn)(const char *device_id, int vs_id, void *arg), void *arg);

/*
 * A message a module handles in an established session: item() turns it
 * into one batch item of cls (its record in it->json, malloc'd), or returns
 * NULL with why (the agent gets bad_message naming it).  The session
 * answers ack or retry for it once cls has run, unless noack.
 */
struct agent_msg_handler {
	enum msg_type		 type;
	const struct db_batch_class *cls;
	struct qa_item		*(*item)(const char *device_id, int vs_id,
				    const struct msg *, char *why,
				    size_t whylen);
	int			 noack;
};
/* srv/modules.c: terminated by type 0. */
extern const struct agent_msg_handler agent_msg_handlers[];
/* srv/modules.c: a device's session is established (after hello). */
void	 modules_session_ready(struct canopyd *, const char *device_id,
	    int vs_id);
/* srv/modules.c: start and stop the modules with timers. */
int	 modules_start(struct canopyd *, char *err, size_t errlen);
void	 modules_stop(struct canopyd *);

/* srv/policy.c: effective policies, pushed to agents. */
void	 policy_session_ready(struct canopyd *, const char *device_id,
	    int vs_id);
struct qa_item *policy_ack_item(const char *device_id, int vs_id,
	    const struct msg *, char *why, size_t whylen);
extern const struct db_batch_class policy_ack_class;
/*
 * The policies of group's subtree changed (or a device moved into it):
 * computes them at the database and pushes them to the connected agents.
 */
void	 policy_push_group(struct canopyd *, int vs_id, int64_t group);

/* srv/tasks.c: the task scheduler and delivery. */
int	 tasks_start(struct canopyd *, char *err, size_t errlen);
void	 tasks_stop(struct canopyd *);
void	 tasks_session_ready(struct canopyd *, const char *device_id,
	    int vs_id);
struct qa_item *tasks_result_item(const char *device_id, int vs_id,
	    const struct msg *, char *why, size_t whylen);
extern const struct db_batch_class tasks_result_class;

/* srv/rules.c: status rules and moving rules, evaluated periodically. */
int	 rules_start(struct canopyd *, char *err, size_t errlen);
void	 rules_stop(struct canopyd *);

#endif
