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

#ifndef CANOPY_AGENT_H
#define CANOPY_AGENT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>
#include <openssl/ssl.h>

/*
 * The agent library: inventory collection, the state directory with its
 * offline event queue, enrolment, and one protocol session.  Linked into
 * canopy-agent and canopy-sim (which runs thousands of sessions in one loop).
 */

#define AGENT_VERSION		"0.1.0"
#define AGENT_STATE_DIR		"/var/lib/canopy-agent"

/* inventory.c */

/* Parsed /etc/os-release: the fields the inventory carries. */
struct os_release {
	char	name[128];
	char	version[128];
	char	id[64];
	char	pretty_name[256];
};

struct sw_entry {
	char	*name;
	char	*version;
};

struct sw_list {
	struct sw_entry	*v;
	size_t		 n, cap;
};

/* Pure parsers of given text; they never fail on odd input, they skip it. */
void	 inv_parse_os_release(const char *text, size_t len,
	    struct os_release *);
/* MemTotal in bytes, 0 when absent. */
uint64_t inv_parse_meminfo(const char *text, size_t len);
/* Appends the installed packages (Status: ... installed) of a dpkg status. */
int	 inv_parse_dpkg_status(const char *text, size_t len, struct sw_list *);
/* Appends "name\tversion\n" lines (rpm -qa output). */
int	 inv_parse_rpm_qa(const char *text, size_t len, struct sw_list *);
int	 sw_list_add(struct sw_list *, const char *name, size_t nlen,
	    const char *version, size_t vlen);
/* Sorts by name, then version; drops exact duplicates. */
void	 sw_list_sort(struct sw_list *);
void	 sw_list_free(struct sw_list *);

/* The inventory of this machine as a JSON object, in a fixed key order. */
json_t	*inventory_collect(void);
/*
 * Packs a JSON value as msgpack, keys in the object's order, so the bytes
 * (and their hash) are the same whenever the content is.
 */
int	 inventory_pack(msgpack_packer *, const json_t *);
/*
 * Collects, packs into sb and hashes (sha256 hex of the packed bytes).  A
 * non-empty name is added as the inventory's "name": the display name the
 * device was enrolled with, which the server prefers to its host name.
 */
int	 inventory_build(msgpack_sbuffer *sb, char hash[65], const char *name);

/* state.c */

struct agent_state {
	char	 dir[1024];
	char	 server[512];		/* host:port */
	char	 device_id[128];
	char	 inv_hash[129];		/* last acknowledged inventory hash */
	char	 name[256];		/* display name from --name, or "" */
};

/* Reads DIR/state.json; -1 (with err) when missing or unreadable. */
int	 state_load(const char *dir, struct agent_state *, char *err,
	    size_t errlen);
int	 state_save(const struct agent_state *);
int	 state_path(const struct agent_state *, const char *file, char *out,
	    size_t outlen);
int	 state_enrolled(const char *dir);

/*
 * The offline event queue: DIR/events/, one msgpack map per file named by
 * its event id ("<ms>-<counter>-<random>", so names sort by time).  Files
 * are written atomically and deleted only when the server acknowledged them.
 */
struct evq;

struct evq *evq_open(const char *dir, size_t max, char *err, size_t errlen);
void	 evq_close(struct evq *);
/* Picks up files written by other processes; returns how many are new. */
int	 evq_scan(struct evq *);
/* Queues one event; when the queue is full drops the oldest (counted). */
int	 evq_put(struct evq *, const char *severity, const char *type,
	    const char *text);
size_t	 evq_count(const struct evq *);
uint64_t evq_dropped(const struct evq *);
/*
 * Appends up to max queued events not yet in flight, oldest first, as packed
 * maps to sb and marks them in flight; returns how many.
 */
size_t	 evq_take(struct evq *, msgpack_sbuffer *sb, size_t max);
/* The server acknowledged everything in flight: delete those files. */
void	 evq_ack(struct evq *);
/* What was in flight was not acknowledged: it will be taken again. */
void	 evq_unflight(struct evq *);
/* Id of the i-th queued event, oldest first (tests and status). */
const char *evq_id(const struct evq *, size_t i);
int	 event_severity_ok(const char *);

/* session.c */

struct session;

struct msg;

enum session_kind { SK_SYNC, SK_EVENTS, SK_HEARTBEAT };

struct session_hooks {
	/* The current inventory: packed map and its hash.  Required. */
	int	(*inventory)(struct session *, void *arg, const uint8_t **buf,
		    size_t *len, const char **hash);
	/* The server committed the inventory with this hash. */
	void	(*inventory_acked)(struct session *, void *arg,
		    const char *hash);
	/* Events to send (see evq_take); NULL when there are none. */
	size_t	(*events_take)(struct session *, void *arg,
		    msgpack_sbuffer *, size_t max);
	void	(*events_acked)(struct session *, void *arg);
	void	(*events_unflight)(struct session *, void *arg);
	/* Hello answered: the session is up. */
	void	(*up)(struct session *, void *arg, const char *device_id);
	/* An ack: what it was for, whether it carried inventory, latency. */
	void	(*acked)(struct session *, void *arg, enum session_kind,
		    int with_inventory, uint64_t latency_us);
	void	(*retried)(struct session *, void *arg, enum session_kind);
	void	(*error)(struct session *, void *arg, const char *code,
		    const char *message);
	/* Connection lost (or failed to come up). */
	void	(*down)(struct session *, void *arg, const char *why);
	/* The session stopped for good (unknown_device). */
	void	(*dead)(struct session *, void *arg, const char *why);
	/*
	 * A message the session does not handle itself (policy, task); NULL:
	 * such messages are a protocol error.
	 */
	void	(*message)(struct session *, void *arg, const struct msg *);
	/*
	 * ack (ok 1) or retry (ok 0, after after_ms) of a seq the session did
	 * not send itself: one from session_send_seq.
	 */
	void	(*other_acked)(struct session *, void *arg, uint64_t seq,
		    int ok, uint64_t after_ms);
};

struct session_cfg {
	struct event_base	*base;
	SSL_CTX			*ctx;		/* shared, borrowed */
	X509			*cert;		/* per-session identity, or NULL */
	EVP_PKEY		*key;		/*  when ctx carries it */
	const struct sockaddr	*addr;		/* resolved server */
	socklen_t		 addrlen;
	const char		*sni;		/* server name, may be NULL */
	const char		*name;		/* hello name */
	int			 reconnect;	/* back off and reconnect */
	uint32_t		 backoff_min_ms, backoff_max_ms;
};

struct session *session_new(const struct session_cfg *,
	    const struct session_hooks *, void *arg);
void	 session_free(struct session *);
int	 session_start(struct session *);
void	 session_stop(struct session *);
/* Sends a sync now (or after the one in flight). */
void	 session_sync(struct session *, int full);
/* New events were queued. */
void	 session_events_kick(struct session *);
int	 session_is_up(const struct session *);
const char *session_device_id(const struct session *);
void	 session_set_arg(struct session *, void *);
/* Sends a message while up (sb consumed); -1 if the session is not up. */
int	 session_send(struct session *, msgpack_sbuffer *);
/* A fresh seq for a message the caller sends and tracks (other_acked). */
uint64_t session_next_seq(struct session *);
/* The hash the server last acknowledged (from the state directory). */
void	 session_set_acked_hash(struct session *, const char *);

struct conn;
struct conn_cb;
/*
 * A TLS connection to sa through conn: cert/key (may be NULL) are set on
 * this SSL only, so one SSL_CTX serves many identities.  *sslp borrows the
 * SSL for as long as the conn lives.
 */
struct conn *agent_connect(struct event_base *, SSL_CTX *, X509 *cert,
	    EVP_PKEY *key, const struct sockaddr *, socklen_t, const char *sni,
	    const struct conn_cb *, void *arg, SSL **sslp);

/*
 * Resolves "host:port" (or "[v6]:port") to the first address; blocking.
 * -1 when the name does not resolve, -2 when the text is malformed.
 */
int	 agent_resolve(const char *hostport, struct sockaddr_storage *,
	    socklen_t *, char *host, size_t hostlen, char *err, size_t errlen);

/* enroll.c */

/*
 * Enrols with server (host:port) using the CA file and token, on its own
 * event loop (blocking for the caller).  On success *key_pem, *cert_pem are
 * malloc'd and device_id is filled.  err says what went wrong, for a person.
 */
int	 enroll_run(const char *server, const char *ca_file, const char *token,
	    const char *name, char *device_id, size_t idlen, char **key_pem,
	    char **cert_pem, char *err, size_t errlen);

/*
 * The same on a caller's loop, for many at once (canopy-sim): done is called
 * once with status 0 or -1.
 */
struct enrollment;
typedef void (*enroll_done_cb)(struct enrollment *, int status,
	    const char *device_id, const char *key_pem, const char *cert_pem,
	    const char *err, void *arg);
struct enrollment *enroll_start(struct event_base *, SSL_CTX *ctx,
	    const struct sockaddr *, socklen_t, const char *sni,
	    const char *ca_file, const char *token, const char *name,
	    enroll_done_cb, void *arg);

/*
 * agent/policy.c: the device's effective policy (docs/PROTOCOL.md "policy").
 * Settings of product "canopy-agent" are applied by the agent; every
 * product's settings are stored in DIR/policy.json for local applications.
 */
int	 agent_policy_init(const char *state_dir);
/* A policy message: apply, store, answer policy_ack. */
void	 agent_policy_on_msg(struct session *, const struct msg *);
/* One canopy-agent setting, or def when the policy does not set it. */
int64_t	 agent_policy_int(const char *key, int64_t def);
int	 agent_policy_bool(const char *key, int def);
/* 0 if events of this severity are below the policy's event_min_severity. */
int	 agent_policy_event_ok(const char *severity, size_t len);
/* The hash of the policy in force ("" when none). */
const char *agent_policy_hash(void);

/*
 * agent/tasks.c: runs tasks (docs/PROTOCOL.md "task"): inventory_refresh,
 * run_command (only where the policy allows it), and reports the results,
 * kept on disk until the server acknowledges them.
 */
int	 agent_tasks_init(struct event_base *, const char *state_dir);
void	 agent_tasks_on_msg(struct session *, const struct msg *);
void	 agent_tasks_acked(struct session *, uint64_t seq, int ok,
	    uint64_t after_ms);
/* The session is up: resend results not yet acknowledged. */
void	 agent_tasks_up(struct session *);

#endif
