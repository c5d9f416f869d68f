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

#ifndef CANOPY_LIMITS_H
#define CANOPY_LIMITS_H

/*
 * Every limit of Canopy, in one place.  Each is enforced in one place and
 * crossed by a test.  Configurable ones are the defaults and bounds of the
 * matching canopyd.conf keyword.
 */

/* Wire protocol (port 13000). */
#define PROTO_VERSION_MIN	1
#define PROTO_VERSION_MAX	1
#define FRAME_HDR_LEN		4
#define FRAME_MAX_DEFAULT	(16u * 1024 * 1024)	/* max-frame */
#define FRAME_MAX_MIN		(4u * 1024)
#define FRAME_MAX_MAX		(256u * 1024 * 1024)
#define MSG_MAX_DEPTH		16	/* nesting of maps and arrays */
#define MSG_MAX_STR		(1u * 1024 * 1024)	/* one string or binary */
#define MSG_MAX_NAME		255	/* names, hostnames, ids */
#define MSG_MAX_TOKEN		128
#define MSG_MAX_CSR		16384
#define MSG_MAX_EVENTS		1000	/* events in one message */
#define MSG_MAX_EVENT_TEXT	4096
#define MSG_MAX_TASK_OUTPUT	(64u * 1024)	/* a task's captured output */
#define MSG_MAX_SHORT		64	/* ids, codes, event types, versions */
#define MSG_MAX_HASH		128
#define MSG_MAX_TEXT		4096	/* error and retry messages */
#define MSG_MAX_HRECS		1000	/* records in one server-link batch */

/* Connections. */
#define CONN_HELLO_TIMEOUT_S	15	/* hello (and TLS handshake) must be done */
#define CONN_IDLE_TIMEOUT_S	300	/* no frame at all for this long */
#define CONN_OUT_HIGHWATER	(1u * 1024 * 1024) /* pending output per peer */
#define CONN_WRITE_TIMEOUT_S	60	/* pending output makes no progress */
#define CONN_CLOSE_LINGER_S	5	/* flushing a last error before closing */
#define AGENTS_MAX_DEFAULT	20000	/* max-agents */
#define AGENTS_MAX_MAX		200000
#define AGENTS_MAX_MIN		1
#define AGENT_MAX_INFLIGHT	16	/* unanswered writes per agent, then 'retry' */
#define AGENT_CERT_DAYS		3650	/* validity of an agent's certificate */
#define AGENTS_ACCEPT_PAUSE_MS	1000	/* after EMFILE/ENFILE */
#define AGENTS_BACKLOG		1024

/* Agent behaviour. */
#define AGENT_HEARTBEAT_S	60
#define AGENT_HEARTBEAT_MIN_S	5	/* heartbeat */
#define AGENT_HEARTBEAT_MAX_S	3600
#define AGENT_BACKOFF_MIN_MS	500
#define AGENT_BACKOFF_MAX_MS	60000
#define AGENT_QUEUE_MAX_EVENTS	10000	/* offline event queue on disk */
#define AGENT_INVENTORY_S	300	/* inventory re-collected this often */
#define AGENT_INVENTORY_MIN_S	10	/* policy inventory_interval_s bounds */
#define AGENT_INVENTORY_MAX_S	86400
#define AGENT_QUEUE_SCAN_MS	1000	/* new event files picked up this often */

/* HTTP API (port 13299). */
#define API_MAX_BODY_DEFAULT	(1u * 1024 * 1024)	/* api-max-body */
#define API_MAX_BODY_MIN	(4u * 1024)
#define API_MAX_BODY_MAX	(64u * 1024 * 1024)
#define API_MAX_HEADERS		8192
#define API_ROUTE_ALLOW_MAX	64	/* the Allow header of a 405 */
#define API_BODY_SLACK		(1u * 1024 * 1024) /* over api-max-body: JSON 413 */
#define API_PAGE_DEFAULT	100
#define API_PAGE_MAX		1000
#define API_NAME_MAX		255
#define API_PATH_MAX		4096	/* a group path, "/Managed devices/..." */
#define API_LOGIN_FAIL_MAX	10	/* failed logins in a row, then locked */
#define API_LOGIN_LOCK_S	3600	/* for this long */
#define API_SESSION_TTL_S	(8 * 3600)
#define API_TIMEOUT_S		30

/* Enrolment tokens. */
#define TOKEN_TTL_DEFAULT_S	(7 * 24 * 3600)
#define TOKEN_TTL_MAX_S		(365 * 24 * 3600)
#define TOKEN_USES_MAX		1000000

/* Database. */
#define DB_WORKERS_DEFAULT	4	/* db-workers */
#define DB_WORKERS_MAX		32
#define DB_WORKERS_MIN		1
#define DB_BATCH_MAX		1000	/* agent writes per transaction */
#define DB_QUEUE_MAX		100000	/* jobs waiting for a worker */
#define DB_RETRY_AFTER_MS	2000	/* what agents are told when it is down */
#define DB_BATCH_WAIT_MS	2	/* a busy worker waits this long to fill a batch */
#define DB_CONNECT_TIMEOUT_S	5	/* libpq connect_timeout */
#define DB_BACKOFF_MIN_MS	250	/* reconnect backoff, doubled with jitter */
#define DB_BACKOFF_MAX_MS	10000
#define DB_TX_ATTEMPTS		3	/* db_tx: a deadlock or serialization failure */
#define DB_STOP_GRACE_MS	5000	/* db_stop lets the queue drain this long */
#define DB_PING_S		5	/* an idle worker checks its connection */

/* Policies (db/migrations/006_policies.sql). */
#define POLICY_PRODUCT_MAX	64	/* a product's name */
#define POLICY_KEY_MAX		128	/* a setting's name: [A-Za-z0-9_.-] */
#define POLICY_KEYS_MAX		1024	/* settings in one policy */
#define POLICY_VALUE_DEPTH	8	/* nesting inside one setting's value */
#define POLICY_PUSH_BATCH	1000	/* sessions whose policy one job computes */

/* Configuration. */
#define CONF_MAX_LINE		4096
#define CONF_MAX_LISTEN		8
#define CONF_MAX_CHILD_DIAL	16	/* child-dial lines */
#define CONF_MAX_SIZE		(1u * 1024 * 1024)

/* Passwords: scrypt, memory-hard (N=2^15, r=8, p=1: 32 MiB per hash). */
#define PW_SCRYPT_LOG2N		15
#define PW_SCRYPT_R		8
#define PW_SCRYPT_P		1
#define PW_MIN_LEN		8
#define PW_MAX_LEN		1024
#define PW_SCRYPT_LOG2N_MIN	10	/* accepted when verifying a stored hash: */
#define PW_SCRYPT_LOG2N_MAX	20	/* bounds keep a forged hash from DoS */
#define PW_SCRYPT_R_MAX		16
#define PW_SCRYPT_P_MAX		16
#define PW_SCRYPT_MAXMEM	(1100u * 1024 * 1024)	/* 128*r*N*p may not exceed */
#define PW_SALT_LEN		16
#define PW_HASH_LEN		32

/* canopyctl (the HTTPS client). */
#define CTL_MAX_RESPONSE	(64u * 1024 * 1024)	/* one API answer */
#define CTL_CONNECT_TIMEOUT_S	10
#define CTL_TIMEOUT_S		120	/* one whole request */
#define CTL_MAX_PASSWORD	PW_MAX_LEN
#define CTL_MAX_CONFIG		(64u * 1024)	/* the stored config file */

/* Tasks (srv/tasks.c, srv/api_tasks.c, agent/tasks.c). */
#define TASK_EVERY_MIN_S	60	/* the shortest period of a task */
#define TASK_EVERY_MAX_S	(366 * 86400)
#define TASK_EXPIRES_MAX_S	(366 * 86400)
#define TASK_COMMAND_MAX	4096	/* run_command's command, bytes */
#define TASK_TIMEOUT_MIN_S	1
#define TASK_TIMEOUT_MAX_S	3600
#define TASK_TIMEOUT_DEFAULT_S	300
#define TASK_DEVICES_MAX	10000	/* devices named in one task */
#define TASK_NAME_MAX		255
#define TASK_SCHED_MS		1000	/* the scheduler's tick */
#define TASK_DUE_MAX		100	/* tasks materialised per tick */
#define TASK_DELIVER_MAX	10000	/* open runs sent at a connection */
#define TASK_SENT_MAX		100000	/* sent runs waiting to be marked */
#define TASK_AGENT_DONE_MAX	1024	/* finished run ids an agent keeps */
#define TASK_AGENT_RUNNING_MAX	16	/* commands running at once */
#define TASK_KILL_GRACE_MS	2000	/* SIGTERM, then SIGKILL after this */

/* Virtual servers (srv/api_vservers.c, db/migrations/004_vservers.sql). */
#define VS_NAME_MAX		63	/* [A-Za-z0-9._-]{1,63} */

/* Status and moving rules, event retention (srv/rules.c, db/q_rules.c). */
#define RULES_INTERVAL_S	10	/* a round of moving rules */
#define RULES_STATUS_EVERY	3	/* rounds: statuses are the costly part */
#define RULES_BATCH		10000	/* devices a round moves or re-reads */
#define RULES_RECENT_S		300	/* rounds this close look at new inventories only */
#define RULES_HOURS_MAX		(10 * 366 * 24)	/* a status rule's hours */
#define RULES_MATCH_MAX		1024	/* one moving-rule condition, bytes */
#define RULES_ORDER_MAX		1000000	/* a rule's order */
#define EVENTS_MAX_AGE_DAYS	30	/* events older than this are pruned */
#define EVENTS_MAX_PER_DEVICE	1000	/* a device keeps its newest this many */
#define EVENTS_PRUNE_BATCH	10000	/* events one round deletes, at most */
#define INV_FS_MAX		64	/* filesystems in an agent's inventory */
#define INV_FS_GRAIN		1000	/* used_bytes rounded to size / this */

/* IP-range scans (common/iprange.c, directory/scan.c, db/q_scan.c). */
#define IPRANGE_MAX_ADDRS	65536	/* addresses in one range: a /16 */
#define SCAN_PORTS_MAX		16	/* TCP ports probed per range */
#define SCAN_INTERVAL_MIN_S	60	/* a range's schedule, at least */
#define SCAN_INTERVAL_MAX_S	(366 * 86400)
#define SCAN_RATE_PPS		2000	/* probe packets a second, per range */
#define SCAN_RATE_PPS_MAX	20000	/* what a range may ask for */
#define SCAN_CONCURRENCY	256	/* TCP connects in flight, per range (and the most a range may ask for) */
#define SCAN_PACE_MS		5	/* the sender's tick: rate / 200 packets */
#define SCAN_HOLD_MIN_MS	10	/* the kernel is full: pause, doubling */
#define SCAN_HOLD_MAX_MS	500
#define SCAN_HOLD_TRIES		30	/* pauses before an address is skipped */
#define SCAN_PROBE_TIMEOUT_MS	1000	/* an address's wait for an answer */
#define SCAN_ICMP_TRIES		2	/* echo requests per address */
#define SCAN_DNS_TIMEOUT_S	2	/* one reverse look-up */
#define SCAN_DNS_CONCURRENCY	64	/* reverse look-ups in flight */
#define SCAN_RUNNING_MAX	2	/* ranges scanning at once (fds) */
#define SCAN_TICK_S		5	/* the scheduler looks for due ranges */

/* LDAP directory sources (common/ldapval.c, directory/, db/q_directory.c). */
#define DIR_SOURCES_MAX		100	/* sources per virtual server */
#define DIR_PAGE_SIZE		1000	/* RFC 2696 page size (AD's cap) */
#define DIR_OP_TIMEOUT_S	30	/* one LDAP operation, at most */
#define DIR_CONNECT_TIMEOUT_S	5	/* TCP connect to the server */
#define DIR_INTERVAL_MIN_S	60	/* a source's schedule, at least */
#define DIR_INTERVAL_MAX_S	(366 * 86400)
#define DIR_INTERVAL_DEFAULT_S	3600
#define DIR_RECONCILE_S		86400	/* a full read at least this often */
#define DIR_THREADS		2	/* sources polled at once */
#define DIR_TICK_MS		1000	/* pollers look for due sources */
#define DIR_OBJECTS_MAX		2000000	/* objects one poll may hold */
#define DIR_VALUES_MAX		100000	/* values of one attribute kept */
#define DIR_VALUE_MAX		4096	/* bytes of one kept value */
#define DIR_ERROR_MAX		400	/* bytes of last_error */
#define DIR_SECRET_MAX		65536	/* bind password or keytab bytes */
#define LDAPVAL_DN_MAX		4096	/* a DN ldapval functions accept */

/* The server tree's API (srv/api_servers.c, db/q_servers.c). */
#define HIER_CHILD_NAME_MAX	63	/* [A-Za-z0-9._-]{1,63} */
#define HIER_TOKEN_TTL_DEFAULT_S 86400	/* a child's registration token */
#define HIER_TOKEN_TTL_MAX_S	(30 * 86400)
#define HIER_TREE_DEPTH_MAX	32	/* levels GET /servers descends */
#define HIER_TREE_SERVERS_MAX	10000	/* servers GET /servers lists */

/* Kerberos SSO and TOTP (auth/spnego.c, common/totp.c, srv/api_auth.c). */
#define KRB_KEYTAB_MAX		65536	/* bytes of an uploaded keytab */
#define TOTP_CODE_MAX		16	/* bytes of a TOTP code field */

/* The server tree (hierarchy/, db/q_hier.c). */
#define HIER_CERT_DAYS		825	/* a child server's link certificate */
#define HIER_BATCH_RECORDS	1000	/* changes read for one batch */
#define HIER_BATCH_BYTES	(512u * 1024)	/* records in one batch, bytes */
#define HIER_SNAP_CHUNK		500	/* records in one snapshot batch */
#define HIER_WINDOW		8	/* batches in flight, unacknowledged */
#define HIER_HIGHWATER		(16u * 1024 * 1024) /* link output, bytes */
#define HIER_PUSH_DELAY_MS	5	/* changes gathered before a read */
#define HIER_POLL_MS		1000	/* reads without a notification */
#define HIER_HEARTBEAT_S	5	/* an idle link says it is alive */
#define HIER_DEAD_S		20	/* silence that closes a link */
#define HIER_BACKOFF_MIN_MS	500	/* reconnection: full-jitter */
#define HIER_BACKOFF_MAX_MS	30000	/*   exponential backoff */
#define HIER_TICK_MS		2000	/* status, acknowledgements, compaction */
#define HIER_LOG_MAX_AGE_S	(7 * 86400) /* changes kept for a lagging link */
#define HIER_COMPACT_MAX	50000	/* changes removed per tick */
#define HIER_RX_QUEUE		(2 * HIER_WINDOW + 4) /* batches held to apply */
#define HIER_JSON_DEPTH		32	/* nesting inside one record */
#define HIER_APPLY_BYTES	(4u * 1024 * 1024) /* queued batches applied together */
#define PROTO_SERVER_MIN	1	/* server-link protocol versions */
#define PROTO_SERVER_MAX	1

#endif
