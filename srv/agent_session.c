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
 * One agent's conversation (docs/PROTOCOL.md): hello, then enrolment or a
 * session of sync, heartbeat and events.  Frames come whole from
 * common/conn.c; this file never touches a socket.  Writes go to the
 * database in batches, and an 'ack' leaves only after the commit.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "canopyd.h"
#include "conn.h"
#include "db/db.h"
#include "db/q_agents.h"
#include "canopy_limits.h"
#include "log.h"
#include "msg.h"
#include "pki.h"
#include "hierarchy/hierarchy.h"
#include "srv/agents_int.h"
#include "srv/modules.h"
#include "util.h"

/* Kinds of batch items, for the done callback. */
enum { AK_TOUCH_SYNC, AK_TOUCH_HEARTBEAT, AK_INVENTORY, AK_EVENTS, AK_MODULE };

/* Latest representable timestamp we store (9999-12-31), in ms. */
#define AS_TIME_MAX_MS	253402300799999LL
#define AS_MAX_ADDRS	256	/* ip[] and mac[] kept per device */
#define AS_ADDR_MAX	64

static void	as_on_ready(struct conn *, void *);
static void	as_on_frame(struct conn *, const uint8_t *, size_t, void *);
static void	as_on_close(struct conn *, const char *, void *);

static const struct conn_cb as_cb = {
	as_on_ready, as_on_frame, as_on_close
};

static const char *const as_state_names[] = {
	"hello", "enrolment", "enrolment", "device look-up", "session",
	"closing"
};

#define AS_METRIC(s, field, n) do {					\
	atomic_fetch_add(&(s)->cd->metrics.field, (n));			\
} while (0)

static const char *
as_who(struct agent_session *s)
{
	if (s->device_id[0] != '\0')
		return s->device_id;
	return s->conn ? conn_peer_addr(s->conn) : "?";
}

static int
as_alive(struct agent_session *s)
{
	return s->conn != NULL && s->ag != NULL && s->state != AS_CLOSING;
}

void
agent_session_ref(struct agent_session *s)
{
	s->refs++;
}

void
agent_session_unref(struct agent_session *s)
{
	if (--s->refs > 0)
		return;
	free(s->name);
	free(s);
}

struct agent_session *
agent_session_new(struct agents *ag, struct bufferevent *bev)
{
	struct agent_session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("agents: session");
		bufferevent_free(bev);
		return NULL;
	}
	s->ag = ag;
	s->cd = ag->cd;
	s->refs = 1;			/* the connection's */
	s->state = AS_HELLO;
	if ((s->conn = conn_new(bev, ag->max_frame, &as_cb, s)) == NULL) {
		log_warnx("agents: cannot set up a connection");
		free(s);
		return NULL;
	}
	conn_set_timeout(s->conn, CONN_HELLO_TIMEOUT_S);
	TAILQ_INSERT_TAIL(&ag->all, s, link);
	ag->nconns++;
	return s;
}

void
agent_session_close(struct agent_session *s, const char *why)
{
	if (s->conn == NULL)
		return;
	s->state = AS_CLOSING;
	conn_close(s->conn, why, 0);
}

/* Sends one packed message; the connection closes itself on overflow. */
static void
as_send(struct agent_session *s, msgpack_sbuffer *sb)
{
	if (s->conn != NULL && conn_send(s->conn, sb->data, sb->size) == -1) {
		log_info("agent %s: not reading; dropped", as_who(s));
		s->state = AS_CLOSING;
	}
	msgpack_sbuffer_destroy(sb);
}

/* A protocol error: tell the agent what was wrong and close. */
static void __attribute__((format(printf, 3, 4)))
as_fail(struct agent_session *s, const char *code, const char *fmt, ...)
{
	char	 buf[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	AS_METRIC(s, agent_protocol_errors, 1);
	/* conn_fail logs it with the address; add who it was. */
	if (s->device_id[0] != '\0')
		log_info("agent %s: protocol error %s", s->device_id, code);
	if (s->conn != NULL && s->state != AS_CLOSING) {
		s->state = AS_CLOSING;
		conn_fail(s->conn, code, "%s", buf);
	}
}

/* Not the agent's fault: say so and close; it comes back later. */
static void
as_unavailable(struct agent_session *s, const char *what, const char *err)
{
	log_warnx("agent %s: %s: %s", as_who(s), what, err ? err : "failed");
	if (s->conn != NULL && s->state != AS_CLOSING) {
		s->state = AS_CLOSING;
		conn_fail(s->conn, "unavailable",
		    "the server cannot %s now; try again later", what);
	}
}

static void
as_send_hello(struct agent_session *s)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	const struct conf *conf = s->ag->cd->conf;
	int		 with_id = s->device_id[0] != '\0';

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_HELLO, with_id ? 6 : 5);
	mp_kv_str(&pk, "role", "server");
	mp_kv_str(&pk, "name", conf->server_name);
	mp_kv_uint(&pk, "proto", PROTO_VERSION_MAX);
	mp_kv_uint(&pk, "heartbeat_s", conf->heartbeat_s > 0 ?
	    (uint64_t)conf->heartbeat_s : AGENT_HEARTBEAT_S);
	if (with_id)
		mp_kv_str(&pk, "device_id", s->device_id);
	as_send(s, &sb);
}

static void
as_send_ack(struct agent_session *s, uint64_t seq, int need_inventory)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_ACK, need_inventory ? 3 : 2);
	mp_kv_uint(&pk, "seq", seq);
	if (need_inventory)
		mp_kv_bool(&pk, "need_inventory", 1);
	as_send(s, &sb);
}

static void
as_send_retry(struct agent_session *s, uint64_t seq, const char *why)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	AS_METRIC(s, retries, 1);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_RETRY, 4);
	mp_kv_uint(&pk, "seq", seq);
	mp_kv_uint(&pk, "after_ms", DB_RETRY_AFTER_MS);
	mp_kv_str(&pk, "message", why);
	as_send(s, &sb);
}

int
agent_session_send(struct agent_session *s, msgpack_sbuffer *sb)
{
	if (!as_alive(s) || s->state != AS_SESSION) {
		msgpack_sbuffer_destroy(sb);
		return -1;
	}
	as_send(s, sb);
	return 0;
}

void
agent_session_sync_now(struct agent_session *s)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;

	if (!as_alive(s) || s->state != AS_SESSION)
		return;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mp_begin(&pk, MSG_SYNC_NOW, 1);
	as_send(s, &sb);
}

/*
 * Hello.
 */

static void
as_lookup_done(int rc, const char *err, void *arg)
{
	struct qa_lookup	*l = arg;
	struct agent_session	*s = l->arg, *old;
	char			 fpr[PKI_FPR_LEN];
	X509			*cert;
	int			 hb;

	s->inflight--;
	if (!as_alive(s) || s->state != AS_LOOKUP)
		goto out;
	if (rc != DB_OK) {
		as_unavailable(s, "look the device up", err);
		goto out;
	}
	if (!l->found) {
		as_fail(s, "unknown_device", "device %s is not known to this "
		    "server (deleted?); enrol it again", s->device_id);
		goto out;
	}
	/* The certificate the device was enrolled with, and no other. */
	cert = conn_peer_cert(s->conn);
	if (l->fingerprint[0] != '\0' && (cert == NULL ||
	    pki_fingerprint(cert, fpr, sizeof(fpr)) == -1 ||
	    strcasecmp(fpr, l->fingerprint) != 0)) {
		as_fail(s, "unknown_device", "this certificate is not the one "
		    "device %s was enrolled with", s->device_id);
		goto out;
	}
	s->vs_id = l->vs_id;
	s->inv_known = l->has_hash;
	strlcpy(s->inv_hash, l->inv_hash, sizeof(s->inv_hash));

	/* One session per device: the newest connection wins. */
	if ((old = agents_lookup(s->ag, s->device_id)) != NULL && old != s) {
		log_info("agent %s: replaced by a new connection from %s",
		    s->device_id, conn_peer_addr(s->conn));
		agents_unregister(s->ag, old);
		agent_session_close(old, "replaced by a new connection");
	}
	agents_register(s->ag, s);
	s->state = AS_SESSION;
	/* Heartbeats keep a session alive, however long they are apart. */
	hb = s->ag->cd->conf->heartbeat_s;
	conn_set_timeout(s->conn, hb > 0 && 3 * hb > CONN_IDLE_TIMEOUT_S ?
	    3 * hb : CONN_IDLE_TIMEOUT_S);
	log_debug("agent %s: session from %s", s->device_id,
	    conn_peer_addr(s->conn));
	as_send_hello(s);
	/* Policies, pending tasks: what the modules have for it. */
	modules_session_ready(s->cd, s->device_id, s->vs_id);
 out:
	free(l);
	agent_session_unref(s);
}

/*
 * A server of the tree said hello (a child joining or coming back): the
 * connection leaves the agents for hierarchy/.
 */
static void
as_handover(struct agent_session *s, const struct msg *m)
{
	struct canopyd	*cd = s->cd;
	struct agents	*ag = s->ag;
	struct conn	*c = s->conn;

	s->conn = NULL;
	s->state = AS_CLOSING;
	TAILQ_REMOVE(&ag->all, s, link);
	s->ag = NULL;
	agents_conn_gone(ag);
	agent_session_unref(s);		/* the connection's; the caller has one */
	hier_accept(cd, c, m);
}

static void
as_hello(struct agent_session *s, const struct msg *m)
{
	struct qa_lookup *l;
	char		 role[16], name[MSG_MAX_NAME + 1], cn[128];
	uint64_t	 pmin, pmax, lo, hi;
	X509		*cert;
	size_t		 i;

	if (msg_str(m, "role", role, sizeof(role)) == 0 &&
	    strcmp(role, "server") == 0) {
		as_handover(s, m);
		return;
	}
	if (strcmp(role, "agent") != 0) {
		as_fail(s, "unsupported_role", "hello: this port serves the "
		    "roles 'agent' and 'server'");
		return;
	}
	pmin = msg_uint(m, "proto_min", 0);
	pmax = msg_uint(m, "proto_max", 0);
	lo = pmin > PROTO_VERSION_MIN ? pmin : PROTO_VERSION_MIN;
	hi = pmax < PROTO_VERSION_MAX ? pmax : PROTO_VERSION_MAX;
	if (pmin > pmax || lo > hi) {
		as_fail(s, "unsupported_version", "the agent speaks protocol "
		    "versions %llu..%llu, this server %d..%d",
		    (unsigned long long)pmin, (unsigned long long)pmax,
		    PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		return;
	}
	if (msg_str(m, "name", name, sizeof(name)) == -1)
		name[0] = '\0';

	if ((cert = conn_peer_cert(s->conn)) == NULL) {
		/* Enrolment: keep the name for the device row, nothing else. */
		if ((s->name = strdup(name[0] ? name : "unnamed")) == NULL) {
			as_unavailable(s, "enrol", "out of memory");
			return;
		}
		s->state = AS_ENROLL;
		as_send_hello(s);
		return;
	}

	if (pki_cert_cn(cert, cn, sizeof(cn)) == -1 || !qa_uuid_valid(cn)) {
		as_fail(s, "unknown_device", "the certificate's subject is "
		    "not a device id");
		return;
	}
	for (i = 0; cn[i] != '\0'; i++)
		cn[i] = tolower((unsigned char)cn[i]);
	strlcpy(s->device_id, cn, sizeof(s->device_id));

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		as_unavailable(s, "look the device up", "out of memory");
		return;
	}
	l->arg = s;
	strlcpy(l->device_id, s->device_id, sizeof(l->device_id));
	s->state = AS_LOOKUP;
	agent_session_ref(s);
	s->inflight++;
	if (db_submit(s->ag->cd->db, qa_lookup_run, as_lookup_done, l) == -1) {
		s->inflight--;
		agent_session_unref(s);
		free(l);
		as_unavailable(s, "look the device up", "database queue full");
	}
}

/*
 * Enrolment.
 */

static void
as_enroll_done(int rc, const char *err, void *arg)
{
	struct qa_enroll	*e = arg;
	struct agent_session	*s = e->arg;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;

	s->inflight--;
	if (rc == DB_OK && e->result == QA_ENROLLED) {
		/* Committed: counted even if the agent has gone meanwhile. */
		AS_METRIC(s, enrolments, 1);
		log_info("agent: enrolled device %s \"%s\" from %s",
		    e->device_id, e->name, e->addr);
	}
	if (!as_alive(s) || s->state != AS_ENROLLING)
		goto out;
	if (rc != DB_OK) {
		as_unavailable(s, "enrol", err);
		goto out;
	}
	switch (e->result) {
	case QA_BAD_TOKEN:
		as_fail(s, "bad_token", "the enrolment token is not valid "
		    "(unknown, expired or used up); ask for a new one");
		break;
	case QA_BAD_CSR:
		as_fail(s, "bad_csr", "enroll: %s", e->reason);
		break;
	default:
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		mp_begin(&pk, MSG_ENROLLED, 3);
		mp_kv_str(&pk, "device_id", e->device_id);
		mp_kv_str(&pk, "cert", e->cert);
		as_send(s, &sb);
		/* The agent comes back with its certificate. */
		s->state = AS_CLOSING;
		if (s->conn != NULL)
			conn_close(s->conn, "enrolled", 1);
		break;
	}
 out:
	qa_enroll_free(e);
	agent_session_unref(s);
}

static void
as_enroll(struct agent_session *s, const struct msg *m)
{
	struct qa_enroll *e;
	const char	*token, *csr;
	size_t		 tlen, clen;

	token = msg_strp(m, "token", &tlen);
	csr = msg_strp(m, "csr", &clen);
	if (token == NULL || csr == NULL) {
		as_fail(s, "bad_message", "enroll: 'token' and 'csr' are "
		    "required strings");
		return;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->csr = malloc(clen + 1)) == NULL) {
		free(e);
		as_unavailable(s, "enrol", "out of memory");
		return;
	}
	memcpy(e->csr, csr, clen);
	e->csr[clen] = '\0';
	e->csr_len = clen;
	e->arg = s;
	e->pki = &s->ag->cd->pki;
	e->cert_days = AGENT_CERT_DAYS;
	sha256_hex(token, tlen, e->token_hash);
	strlcpy(e->name, s->name ? s->name : "unnamed", sizeof(e->name));
	strlcpy(e->addr, conn_peer_addr(s->conn), sizeof(e->addr));
	free(s->name);
	s->name = NULL;

	s->state = AS_ENROLLING;
	agent_session_ref(s);
	s->inflight++;
	if (db_submit(s->ag->cd->db, qa_enroll_run, as_enroll_done, e) == -1) {
		s->inflight--;
		agent_session_unref(s);
		qa_enroll_free(e);
		as_unavailable(s, "enrol", "database queue full");
	}
}

/*
 * Session: batched writes.
 */

static void
as_write_done(int rc, const char *err, void *arg)
{
	struct qa_item		*it = arg;
	struct agent_session	*s = it->arg;

	s->inflight--;
	if (rc == DB_OK) {
		switch (it->kind) {
		case AK_TOUCH_SYNC:
			AS_METRIC(s, syncs, 1);
			break;
		case AK_TOUCH_HEARTBEAT:
			AS_METRIC(s, heartbeats, 1);
			break;
		case AK_INVENTORY:
			AS_METRIC(s, syncs, 1);
			AS_METRIC(s, syncs_inventory, 1);
			strlcpy(s->inv_hash, it->hash, sizeof(s->inv_hash));
			s->inv_known = 1;
			break;
		case AK_EVENTS:
			AS_METRIC(s, events, it->nevents);
			break;
		}
	} else if (rc == DB_ERR)
		log_warnx("agent %s: write failed: %s", as_who(s),
		    err ? err : "?");
	if (it->noack) {
		if (rc != DB_OK)
			log_info("agent %s: %s not stored: %s", as_who(s),
			    "module message", err ? err : "?");
	} else if (as_alive(s) && s->state == AS_SESSION) {
		if (rc == DB_OK)
			as_send_ack(s, it->seq, it->need_inventory);
		else
			as_send_retry(s, it->seq, "the database is "
			    "unavailable; keep the data and send it again");
	}
	qa_item_free(it);
	agent_session_unref(s);
}

/* Hands one item to its batch class; 'retry' if that is not possible. */
static void
as_submit(struct agent_session *s, const struct db_batch_class *cls,
    struct qa_item *it)
{
	it->arg = s;
	agent_session_ref(s);
	s->inflight++;
	if (db_submit_batch(s->ag->cd->db, cls, it, as_write_done) == -1) {
		s->inflight--;
		agent_session_unref(s);
		as_send_retry(s, it->seq, "the server is busy; send it "
		    "again later");
		qa_item_free(it);
	}
}

/* Refuses a message while too many writes are waiting. */
static int
as_throttled(struct agent_session *s, uint64_t seq)
{
	if (s->inflight < AGENT_MAX_INFLIGHT)
		return 0;
	as_send_retry(s, seq, "too many unacknowledged messages; wait for "
	    "the answers");
	return 1;
}

/* Serialises rec (and drops it) into a new item. */
static struct qa_item *
as_item(uint64_t seq, int kind, json_t *rec)
{
	struct qa_item	*it;

	if (rec == NULL)
		return NULL;
	if ((it = calloc(1, sizeof(*it))) == NULL ||
	    (it->json = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII)) ==
	    NULL) {
		free(it);
		json_decref(rec);
		return NULL;
	}
	json_decref(rec);
	it->len = strlen(it->json);
	it->seq = seq;
	it->kind = kind;
	return it;
}

static void
as_touch(struct agent_session *s, uint64_t seq, int kind, int need_inv)
{
	struct qa_item	*it;

	it = as_item(seq, kind, json_pack("{s:s, s:i}", "id", s->device_id,
	    "n", kind == AK_TOUCH_SYNC ? 1 : 0));
	if (it == NULL) {
		as_send_retry(s, seq, "the server is short of memory");
		return;
	}
	it->need_inventory = need_inv;
	as_submit(s, &qa_touch_class, it);
}

/* A short string member of a map, or NULL. */
static const msgpack_object *
as_mstr(const msgpack_object *map, const char *key, size_t max)
{
	const msgpack_object *v;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP ||
	    (v = mp_map_get(map, key)) == NULL ||
	    v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
	    v->via.str.size > max)
		return NULL;
	return v;
}

/* Addresses for the device row: distinct, bounded, no all-zero MAC. */
struct as_addrs {
	const msgpack_object	*a[AS_MAX_ADDRS];
	size_t			 n;
};

static void
as_addr_add(struct as_addrs *l, const msgpack_object *v)
{
	size_t	 i;

	if (v == NULL || v->type != MSGPACK_OBJECT_STR ||
	    v->via.str.size == 0 || v->via.str.size > AS_ADDR_MAX ||
	    l->n >= AS_MAX_ADDRS || (v->via.str.size == 17 &&
	    memcmp(v->via.str.ptr, "00:00:00:00:00:00", 17) == 0))
		return;
	for (i = 0; i < l->n; i++)
		if (l->a[i]->via.str.size == v->via.str.size &&
		    memcmp(l->a[i]->via.str.ptr, v->via.str.ptr,
		    v->via.str.size) == 0)
			return;
	l->a[l->n++] = v;
}

static void
as_addr_list(const msgpack_object *ifc, const char *key, struct as_addrs *l)
{
	const msgpack_object *list = mp_map_get(ifc, key);
	uint32_t	 i;

	if (list != NULL && list->type == MSGPACK_OBJECT_ARRAY)
		for (i = 0; i < list->via.array.size; i++)
			as_addr_add(l, &list->via.array.ptr[i]);
}

static void
as_jkv(struct jbuf *jb, const char *key, const msgpack_object *v)
{
	if (v == NULL)
		return;
	jbuf_raw(jb, ",", 1);
	jbuf_str(jb, key, strlen(key));
	jbuf_raw(jb, ":", 1);
	jbuf_str(jb, v->via.str.ptr, v->via.str.size);
}

static void
as_jaddrs(struct jbuf *jb, const char *key, const struct as_addrs *l)
{
	size_t	 i;

	jbuf_raw(jb, ",", 1);
	jbuf_str(jb, key, strlen(key));
	jbuf_raw(jb, ":[", 2);
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			jbuf_raw(jb, ",", 1);
		jbuf_str(jb, l->a[i]->via.str.ptr, l->a[i]->via.str.size);
	}
	jbuf_raw(jb, "]", 1);
}

/*
 * The batch record of a full inventory, as JSON text written straight from
 * the msgpack: the device row's columns (types checked, not trusted) and the
 * inventory itself as "data".  No JSON tree: this is the agent hot path.
 */
static int
as_inventory_text(struct agent_session *s, const char *hash, size_t hlen,
    const msgpack_object *inv, struct jbuf *jb)
{
	const msgpack_object *ifs, *ifc, *v;
	struct as_addrs	*ip, *mac;
	uint32_t	 i;

	if ((ip = calloc(2, sizeof(*ip))) == NULL)
		return -1;
	mac = ip + 1;
	ifs = mp_map_get(inv, "interfaces");
	if (ifs != NULL && ifs->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < ifs->via.array.size; i++) {
			ifc = &ifs->via.array.ptr[i];
			if (ifc->type != MSGPACK_OBJECT_MAP)
				continue;
			as_addr_add(mac, as_mstr(ifc, "mac", AS_ADDR_MAX));
			as_addr_list(ifc, "ipv4", ip);
			as_addr_list(ifc, "ipv6", ip);
		}
	}
	jbuf_raw(jb, "{\"id\":", 6);
	jbuf_str(jb, s->device_id, strlen(s->device_id));
	jbuf_raw(jb, ",\"hash\":", 8);
	jbuf_str(jb, hash, hlen);
	/* The name chosen at enrolment, else the host's own. */
	if ((v = as_mstr(inv, "name", MSG_MAX_NAME)) == NULL)
		v = as_mstr(inv, "hostname", MSG_MAX_NAME);
	as_jkv(jb, "name", v);
	as_jkv(jb, "fqdn", as_mstr(inv, "fqdn", MSG_MAX_NAME));
	as_jkv(jb, "os", as_mstr(mp_map_get(inv, "os"), "pretty_name",
	    MSG_MAX_NAME));
	as_jaddrs(jb, "ip", ip);
	as_jaddrs(jb, "mac", mac);
	jbuf_raw(jb, ",\"data\":", 8);
	mp_to_json_text(jb, inv);
	jbuf_raw(jb, "}", 1);
	free(ip);
	return jb->err ? -1 : 0;
}

static void
as_sync(struct agent_session *s, const struct msg *m)
{
	const msgpack_object *invo;
	struct qa_item	*it;
	struct jbuf	 jb = { NULL, 0, 0, 0 };
	const char	*hash;
	size_t		 hlen;
	uint64_t	 seq;
	int		 same;

	seq = msg_uint(m, "seq", 0);
	if ((hash = msg_strp(m, "hash", &hlen)) == NULL ||
	    hlen >= sizeof(s->inv_hash) || memchr(hash, '\0', hlen) != NULL) {
		as_fail(s, "bad_message", "sync: 'hash' must be a string of at "
		    "most %zu bytes", sizeof(s->inv_hash) - 1);
		return;
	}
	if (as_throttled(s, seq))
		return;
	invo = msg_get(m, "inventory");
	if (invo == NULL || invo->type == MSGPACK_OBJECT_NIL) {
		same = s->inv_known && strlen(s->inv_hash) == hlen &&
		    memcmp(s->inv_hash, hash, hlen) == 0;
		as_touch(s, seq, AK_TOUCH_SYNC, !same);
		return;
	}
	if (invo->type != MSGPACK_OBJECT_MAP) {
		as_fail(s, "bad_message", "sync: 'inventory' must be a map");
		return;
	}
	if (as_inventory_text(s, hash, hlen, invo, &jb) == -1) {
		jbuf_free(&jb);
		as_fail(s, "bad_message", "sync: 'inventory' cannot be stored "
		    "as JSON (string keys and UTF-8 strings without NUL only)");
		return;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		jbuf_free(&jb);
		as_send_retry(s, seq, "the server is short of memory");
		return;
	}
	it->json = jb.p;	/* the item owns the text now */
	it->len = jb.len;
	it->seq = seq;
	it->kind = AK_INVENTORY;
	memcpy(it->hash, hash, hlen);	/* hlen < sizeof(it->hash) */
	it->hash[hlen] = '\0';
	as_submit(s, &qa_inventory_class, it);
}

static int
as_severity_ok(const char *sev, size_t len)
{
	static const char *const names[] = {
		"info", "warning", "error", "critical"
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && memcmp(names[i], sev, len) == 0)
			return 1;
	return 0;
}

/* A string member of an event as JSON, or NULL (and why). */
static json_t *
as_event_str(const msgpack_object *ev, const char *key, size_t max,
    const char **why)
{
	const msgpack_object *o = mp_map_get(ev, key);
	json_t		*j;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size > max) {
		*why = "is missing, not a string or too long";
		return NULL;
	}
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
		*why = "holds a NUL byte";
		return NULL;
	}
	if ((j = json_stringn(o->via.str.ptr, o->via.str.size)) == NULL)
		*why = "is not valid UTF-8";
	return j;
}

static void
as_events(struct agent_session *s, const struct msg *m)
{
	static const struct { const char *key; size_t max; } strs[] = {
		{ "id", 64 }, { "severity", 16 }, { "type", 64 },
		{ "text", MSG_MAX_EVENT_TEXT }
	};
	const msgpack_object *arr, *ev, *t;
	struct qa_item	*it;
	json_t		*recs, *rec, *v;
	const char	*why = NULL, *sev;
	uint64_t	 seq;
	int64_t		 ms;
	uint32_t	 i, k;

	seq = msg_uint(m, "seq", 0);
	arr = msg_get(m, "events");
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY ||
	    arr->via.array.size > MSG_MAX_EVENTS) {
		as_fail(s, "bad_message", "events: 'events' must be an array "
		    "of at most %d events", MSG_MAX_EVENTS);
		return;
	}
	if (arr->via.array.size == 0) {
		as_send_ack(s, seq, 0);		/* nothing to commit */
		return;
	}
	if (as_throttled(s, seq))
		return;
	if ((recs = json_array()) == NULL) {
		as_send_retry(s, seq, "the server is short of memory");
		return;
	}
	for (i = 0; i < arr->via.array.size; i++) {
		ev = &arr->via.array.ptr[i];
		if (ev->type != MSGPACK_OBJECT_MAP) {
			json_decref(recs);
			as_fail(s, "bad_message", "events: event %u is not a "
			    "map", i);
			return;
		}
		rec = json_object();
		json_object_set_new(rec, "device", json_string(s->device_id));
		for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
			if ((v = as_event_str(ev, strs[k].key, strs[k].max,
			    &why)) == NULL) {
				json_decref(rec);
				json_decref(recs);
				as_fail(s, "bad_message", "events: event %u: "
				    "'%s' %s", i, strs[k].key, why);
				return;
			}
			json_object_set_new(rec, strs[k].key, v);
		}
		sev = json_string_value(json_object_get(rec, "severity"));
		if (!as_severity_ok(sev, strlen(sev))) {
			json_decref(rec);
			json_decref(recs);
			as_fail(s, "bad_message", "events: event %u: 'severity' "
			    "must be info, warning, error or critical", i);
			return;
		}
		t = mp_map_get(ev, "time");
		if (t != NULL && t->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			ms = t->via.u64 > (uint64_t)AS_TIME_MAX_MS ?
			    AS_TIME_MAX_MS : (int64_t)t->via.u64;
		else {
			json_decref(rec);
			json_decref(recs);
			as_fail(s, "bad_message", "events: event %u: 'time' "
			    "must be an unsigned integer (ms)", i);
			return;
		}
		json_object_set_new(rec, "time", json_integer(ms));
		if (json_array_append_new(recs, rec) == -1) {
			json_decref(recs);
			as_send_retry(s, seq, "the server is short of memory");
			return;
		}
	}
	if ((it = as_item(seq, AK_EVENTS, recs)) == NULL) {
		as_send_retry(s, seq, "the server is short of memory");
		return;
	}
	it->nevents = arr->via.array.size;
	as_submit(s, &qa_events_class, it);
}

/*
 * Connection callbacks.
 */

static void
as_on_ready(struct conn *c, void *arg)
{
	/* The certificate is looked at with the hello. */
}

static void
as_unexpected(struct agent_session *s, const struct msg *m)
{
	as_fail(s, "unexpected_message", "'%s' is not expected in the %s "
	    "state", msg_type_name(m->type), as_state_names[s->state]);
}

/* A message of another module (srv/modules.h): policy acks, task results. */
static void
as_module_msg(struct agent_session *s, const struct msg *m)
{
	const struct agent_msg_handler *h;
	struct qa_item	*it;
	char		 why[256];

	for (h = agent_msg_handlers; h->type != 0; h++)
		if (h->type == m->type)
			break;
	if (h->type == 0) {
		as_unexpected(s, m);
		return;
	}
	if (!h->noack && as_throttled(s, msg_uint(m, "seq", 0)))
		return;
	why[0] = '\0';
	if ((it = h->item(s->device_id, s->vs_id, m, why,
	    sizeof(why))) == NULL) {
		as_fail(s, "bad_message", "%s: %s", msg_type_name(m->type),
		    why[0] ? why : "cannot be stored");
		return;
	}
	it->seq = msg_uint(m, "seq", 0);
	it->kind = AK_MODULE;
	it->noack = h->noack ? 1 : 0;
	as_submit(s, h->cls, it);
}

static void
as_on_frame(struct conn *c, const uint8_t *body, size_t len, void *arg)
{
	struct agent_session	*s = arg;
	struct msg		 m;
	char			 reason[256], code[65], text[512];

	if (!as_alive(s))
		return;
	if (msg_decode(body, len, &m, reason, sizeof(reason)) == -1) {
		as_fail(s, "bad_message", "%s", reason);
		return;
	}
	/* Whatever happens below, s outlives this call. */
	agent_session_ref(s);
	if (m.type == MSG_ERROR) {
		if (msg_str(&m, "code", code, sizeof(code)) == -1)
			code[0] = '\0';
		if (msg_str(&m, "message", text, sizeof(text)) == -1)
			text[0] = '\0';
		log_info("agent %s: says %s: %s", as_who(s), code, text);
		agent_session_close(s, "error from the agent");
		goto out;
	}
	switch (s->state) {
	case AS_HELLO:
		if (m.type == MSG_HELLO)
			as_hello(s, &m);
		else
			as_unexpected(s, &m);
		break;
	case AS_ENROLL:
		if (m.type == MSG_ENROLL)
			as_enroll(s, &m);
		else
			as_unexpected(s, &m);
		break;
	case AS_SESSION:
		switch (m.type) {
		case MSG_SYNC:
			as_sync(s, &m);
			break;
		case MSG_HEARTBEAT:
			if (!as_throttled(s, msg_uint(&m, "seq", 0)))
				as_touch(s, msg_uint(&m, "seq", 0),
				    AK_TOUCH_HEARTBEAT, 0);
			break;
		case MSG_EVENTS:
			as_events(s, &m);
			break;
		default:
			as_module_msg(s, &m);
			break;
		}
		break;
	default:
		/* The agent must wait for our answer (enrolled, hello). */
		as_unexpected(s, &m);
		break;
	}
 out:
	msg_free(&m);
	agent_session_unref(s);
}

static void
as_on_close(struct conn *c, const char *why, void *arg)
{
	struct agent_session	*s = arg;
	struct agents		*ag = s->ag;

	log_debug("agent %s: closed: %s", as_who(s), why ? why : "");
	/* Framing errors are found and answered by conn.c itself. */
	if (s->state != AS_CLOSING && why != NULL &&
	    strncmp(why, "sent error ", 11) == 0)
		AS_METRIC(s, agent_protocol_errors, 1);
	s->conn = NULL;
	s->state = AS_CLOSING;
	if (ag != NULL) {
		if (s->in_registry)
			agents_unregister(ag, s);
		TAILQ_REMOVE(&ag->all, s, link);
		s->ag = NULL;
		agents_conn_gone(ag);
	}
	agent_session_unref(s);
}
