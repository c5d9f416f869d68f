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
 * The device's effective policy (agent/agent.h, docs/PROTOCOL.md "policy").
 * The server pushes the whole effective policy, every product's settings,
 * after each session's hello and whenever it changes.  It is stored
 * atomically in DIR/policy.json, the local store other applications read
 * (docs/OPERATIONS.md "Agent policy"):
 *
 *	{"hash": "<sha256 hex>", "received": <unix seconds>,
 *	 "settings": {"<product>": {"<key>": <value>, ...}, ...}}
 *
 * The agent applies the keys of product "canopy-agent" it knows
 * (log_level, event_min_severity; inventory_interval_s and
 * allow_run_command are read where they are used); unknown keys are kept.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include "agent.h"

#define POLICY_FILE		"policy.json"
#define POLICY_FILE_MAX		(4u * 1024 * 1024)
#define POLICY_PRODUCT		"canopy-agent"

static struct {
	char	 path[1100];
	char	 hash[MSG_MAX_HASH + 1];
	json_t	*settings;	/* product -> {key -> value} */
	int	 min_sev;	/* events below this rank are not sent */
} pol;

static const char *const sev_names[] = {
	"info", "warning", "error", "critical", NULL
};

static int
sev_rank(const char *s, size_t len)
{
	int	 i;

	for (i = 0; sev_names[i] != NULL; i++)
		if (strlen(sev_names[i]) == len &&
		    strncmp(sev_names[i], s, len) == 0)
			return i;
	return -1;
}

static json_t *
pol_get(const char *key)
{
	return json_object_get(json_object_get(pol.settings, POLICY_PRODUCT),
	    key);
}

/* Applies what the agent itself does with its settings. */
static void
pol_apply(void)
{
	json_t		*v;
	const char	*s;
	int		 r;

	pol.min_sev = 0;
	if ((v = pol_get("event_min_severity")) != NULL) {
		if (json_is_string(v) && (r = sev_rank(json_string_value(v),
		    json_string_length(v))) != -1)
			pol.min_sev = r;
		else
			log_warnx("policy: event_min_severity: not one of "
			    "info, warning, error, critical; ignored");
	}
	if ((v = pol_get("log_level")) != NULL) {
		s = json_is_string(v) ? json_string_value(v) : "";
		if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
			log_setlevel(LOG_LVL_WARN);
		else if (strcmp(s, "info") == 0)
			log_setlevel(LOG_LVL_INFO);
		else if (strcmp(s, "debug") == 0)
			log_setlevel(LOG_LVL_DEBUG);
		else
			log_warnx("policy: log_level: not one of warn, info, "
			    "debug; ignored");
	}
}

/* Takes a parsed store {"hash","settings"}; 0 or -1 if malformed. */
static int
pol_take(json_t *root)
{
	json_t	*h, *s;

	h = json_object_get(root, "hash");
	s = json_object_get(root, "settings");
	if (!json_is_string(h) || !json_is_object(s) ||
	    json_string_length(h) > MSG_MAX_HASH)
		return -1;
	strlcpy(pol.hash, json_string_value(h), sizeof(pol.hash));
	json_decref(pol.settings);
	pol.settings = json_incref(s);
	pol_apply();
	return 0;
}

int
agent_policy_init(const char *state_dir)
{
	json_t	*root;
	char	*buf;
	size_t	 len;

	json_decref(pol.settings);
	memset(&pol, 0, sizeof(pol));
	if ((size_t)snprintf(pol.path, sizeof(pol.path), "%s/%s", state_dir,
	    POLICY_FILE) >= sizeof(pol.path))
		return -1;
	if ((buf = file_read(pol.path, POLICY_FILE_MAX, &len)) == NULL)
		return errno == ENOENT ? 0 : -1;
	root = json_loadb(buf, len, 0, NULL);
	free(buf);
	/* A damaged store is replaced by the server's next push. */
	if (root == NULL || pol_take(root) == -1)
		log_warnx("%s: not a policy store; ignored", pol.path);
	json_decref(root);
	return 0;
}

static int
pol_store(json_t *root)
{
	char	*js;
	int	 r;

	if ((js = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL)
		return -1;
	/* Readable by local applications: settings are not secrets. */
	r = file_write_atomic(pol.path, js, strlen(js), 0644);
	free(js);
	return r;
}

void
agent_policy_on_msg(struct session *s, const struct msg *m)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	json_t		*settings, *root;
	char		 hash[MSG_MAX_HASH + 1];

	if (msg_str(m, "hash", hash, sizeof(hash)) == -1)
		return;
	settings = mp_to_json(msg_get(m, "settings"));
	if (!json_is_object(settings)) {
		log_warnx("policy %.12s: settings are not a map; ignored",
		    hash);
		json_decref(settings);
		return;
	}
	root = json_pack("{s:s,s:I,s:o}", "hash", hash,
	    "received", (json_int_t)time(NULL), "settings", settings);
	if (root == NULL)
		return;
	if (pol.path[0] != '\0' && pol_store(root) == -1) {
		/* Not acknowledged: the server sends it again next time. */
		log_warn("%s", pol.path);
		json_decref(root);
		return;
	}
	if (strcmp(hash, pol.hash) != 0)
		log_info("policy %.12s applied", hash);
	(void)pol_take(root);
	json_decref(root);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_POLICY_ACK, 2);
	mp_kv_str(&pk, "hash", hash);
	(void)session_send(s, &sb);
}

int64_t
agent_policy_int(const char *key, int64_t def)
{
	json_t	*v = pol_get(key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return def;
}

int
agent_policy_bool(const char *key, int def)
{
	json_t	*v = pol_get(key);

	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	return def;
}

int
agent_policy_event_ok(const char *severity, size_t len)
{
	int	 r = sev_rank(severity, len);

	return r == -1 || r >= pol.min_sev;
}

const char *
agent_policy_hash(void)
{
	return pol.hash;
}
