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
 * The server tree's statements (db/q_servers.h).  GET /servers reads the
 * whole of hier_self, hier_links and hier_servers in one statement and
 * builds the tree here: the tables are small (one row per server), and
 * the recursion is easier to bound in C than in SQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canopy_limits.h"
#include "util.h"

#include "db.h"
#include "sql.h"
#include "q_servers.h"

int
qs_child_create(PGconn *conn, const char *name, int64_t group,
    const char *token_hash, int ttl_s, const char *created_by,
    int64_t *link_id, char expires[32], char *err, size_t errlen)
{
	char		 gid[24], ttl[16], lid[24];
	const char	*p[4] = { name, gid, NULL, NULL };
	PGresult	*res;
	int		 rc;

	*link_id = 0;
	expires[0] = '\0';
	snprintf(gid, sizeof(gid), "%" PRId64, group);
	if (group <= 0)
		p[1] = NULL;
	/* The partial unique index on child names decides a race. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO hier_links (role, name, group_id)"
	    " VALUES ('child', $1, $2::bigint)"
	    " ON CONFLICT (name) WHERE role = 'child' DO NOTHING"
	    " RETURNING id", 2, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QS_EXISTS;
	}
	*link_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	snprintf(lid, sizeof(lid), "%" PRId64, *link_id);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	p[0] = token_hash;
	p[1] = lid;
	p[2] = ttl;
	p[3] = created_by;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "INSERT INTO hier_tokens (hash, link_id, expires, created_by)"
	    " VALUES ($1, $2::bigint, now() + make_interval(secs => $3::int),"
	    " $4) RETURNING " TS("expires"), 4, p)) == NULL)
		return rc;
	if (PQntuples(res) == 1)
		strlcpy(expires, PQgetvalue(res, 0, 0), 32);
	PQclear(res);
	return DB_OK;
}

int
qs_child_delete(PGconn *conn, const char *name, int64_t *link_id,
    char *err, size_t errlen)
{
	const char	*p[1] = { name };
	PGresult	*res;
	int		 rc;

	*link_id = 0;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "DELETE FROM hier_links WHERE role = 'child' AND name = $1"
	    " RETURNING id", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QS_NOTFOUND;
	}
	*link_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
}

/* What the tree statement read, for qs_node. */
struct qs_tree_in {
	json_t	*servers;	/* [{uuid,name,parent_uuid,...}] */
	json_t	*by_uuid;	/* {uuid: server} */
	json_t	*kids;		/* {parent uuid: [server, ...]} */
	json_t	*counts;	/* {origin uuid: {vs: n}} */
	size_t	 nodes;
};

/* Indexes the servers by uuid and by parent: the tree is walked in O(n). */
static int
qs_index(struct qs_tree_in *in)
{
	json_t		*s, *a;
	const char	*u, *pu;
	size_t		 i;

	if ((in->by_uuid = json_object()) == NULL ||
	    (in->kids = json_object()) == NULL)
		return -1;
	json_array_foreach(in->servers, i, s) {
		if ((u = json_string_value(json_object_get(s, "uuid"))) ==
		    NULL)
			continue;
		json_object_set(in->by_uuid, u, s);
		pu = json_string_value(json_object_get(s, "parent_uuid"));
		if (pu == NULL || strcmp(pu, u) == 0)
			continue;
		if ((a = json_object_get(in->kids, pu)) == NULL) {
			a = json_array();
			if (json_object_set_new(in->kids, pu, a) == -1)
				return -1;
		}
		json_array_append(a, s);
	}
	return 0;
}

static json_t *qs_node(struct qs_tree_in *, const char *name,
    const char *uuid, json_t *link, int level, int depth);

/* The devices of one server, and its vservers, from the mirrors. */
static void
qs_counts(struct qs_tree_in *in, json_t *node, const char *uuid,
    json_t *status)
{
	json_t		*c, *vss, *sv, *v;
	const char	*vs;
	json_int_t	 total = 0;
	size_t		 i;

	vss = json_array();
	c = uuid != NULL ? json_object_get(in->counts, uuid) : NULL;
	json_object_foreach(c, vs, v) {
		total += json_integer_value(v);
		json_array_append_new(vss, json_pack("{s:s,s:I}", "name", vs,
		    "devices", json_integer_value(v)));
	}
	/* Virtual servers without devices are known only from its status. */
	json_array_foreach(json_object_get(status, "vservers"), i, sv) {
		if (!json_is_string(json_object_get(sv, "name")))
			continue;
		if (json_object_get(c, json_string_value(json_object_get(sv,
		    "name"))) != NULL)
			continue;
		json_array_append_new(vss, json_pack("{s:O,s:i}", "name",
		    json_object_get(sv, "name"), "devices", 0));
	}
	json_object_set_new(node, "devices", json_integer(total));
	json_object_set_new(node, "vservers", vss);
}

/* The children of the server uuid, as its status tells their links. */
static json_t *
qs_children(struct qs_tree_in *in, const char *uuid, json_t *status,
    int level, int depth)
{
	json_t		*a, *s, *links, *lk, *n;
	const char	*cu;
	size_t		 i;

	a = json_array();
	if (uuid == NULL || depth >= HIER_TREE_DEPTH_MAX)
		return a;
	links = json_object_get(status, "links");
	json_array_foreach(json_object_get(in->kids, uuid), i, s) {
		cu = json_string_value(json_object_get(s, "uuid"));
		if (cu == NULL)
			continue;
		lk = json_object_get(links, cu);
		n = qs_node(in, json_string_value(json_object_get(s, "name")),
		    cu, lk, level + 1, depth + 1);
		if (n != NULL)
			json_array_append_new(a, n);
	}
	return a;
}

/* The server's entry in this server's mirror, or NULL. */
static json_t *
qs_server(struct qs_tree_in *in, const char *uuid)
{
	return uuid != NULL ? json_object_get(in->by_uuid, uuid) : NULL;
}

/* to[key] = from[key], or null. */
static void
qs_copy(json_t *to, json_t *from, const char *key)
{
	json_t	*v = json_object_get(from, key);

	json_object_set(to, key, v != NULL ? v : json_null());
}

/*
 * to[key] = from[key] as the API writes times, "2026-01-02T03:04:05Z":
 * a status written by a server below may say "…05.123456+00:00".
 */
static void
qs_copy_time(json_t *to, json_t *from, const char *key)
{
	const char	*v = json_string_value(json_object_get(from, key));
	char		 buf[32];
	size_t		 n;

	if (v == NULL || (n = strlen(v)) < 20 || v[10] != 'T' ||
	    (strcmp(v + n - 6, "+00:00") != 0 && v[n - 1] != 'Z')) {
		qs_copy(to, from, key);
		return;
	}
	snprintf(buf, sizeof(buf), "%.19sZ", v);
	json_object_set_new(to, key, json_string(buf));
}

/*
 * One server below: link holds {state,last_seen,lag_s,last_error} (a
 * hier_links row for a direct child, its parent's status.links entry
 * deeper down, or NULL when nothing is known yet).
 */
static json_t *
qs_node(struct qs_tree_in *in, const char *name, const char *uuid,
    json_t *link, int level, int depth)
{
	json_t		*n, *srv, *status, *st;

	if (++in->nodes > HIER_TREE_SERVERS_MAX)
		return NULL;
	srv = qs_server(in, uuid);
	status = json_object_get(srv, "status");
	st = json_object_get(link, "state");
	if ((n = json_object()) == NULL)
		return NULL;
	json_object_set_new(n, "name", json_string(name != NULL ? name : ""));
	json_object_set_new(n, "uuid", uuid != NULL ? json_string(uuid) :
	    json_null());
	json_object_set_new(n, "state", json_string(json_is_string(st) ?
	    json_string_value(st) : "disconnected"));
	qs_copy_time(n, link, "last_seen");
	if (json_is_number(json_object_get(link, "lag_s")))
		json_object_set(n, "lag_s", json_object_get(link, "lag_s"));
	else
		json_object_set_new(n, "lag_s", json_integer(0));
	qs_copy(n, link, "last_error");
	json_object_set_new(n, "level", json_is_integer(json_object_get(srv,
	    "level")) ? json_incref(json_object_get(srv, "level")) :
	    json_integer(level));
	if (json_object_get(link, "group") != NULL)
		json_object_set(n, "group", json_object_get(link, "group"));
	qs_counts(in, n, uuid, status);
	json_object_set_new(n, "children", qs_children(in, uuid, status,
	    level, depth));
	return n;
}

int
qs_tree(PGconn *conn, const char *self_name, json_t **out, char *err,
    size_t errlen)
{
	struct qs_tree_in in;
	PGresult	*res;
	json_t		*doc, *self, *root, *kids, *l, *n, *parent;
	json_error_t	 jerr;
	const char	*name;
	size_t		 i;
	int		 rc, level;

	*out = NULL;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "WITH RECURSIVE " "gp(id, parent, name, path) AS ("
	    " SELECT id, parent, name, '/' || name FROM groups"
	    "  WHERE vs_id = 0 AND parent IS NULL"
	    " UNION ALL"
	    " SELECT g.id, g.parent, g.name, gp.path || '/' || g.name"
	    "  FROM groups g JOIN gp ON g.parent = gp.id WHERE g.vs_id = 0)"
	    " SELECT jsonb_build_object("
	    " 'self', (SELECT jsonb_build_object('uuid', uuid, 'name', name,"
	    "  'level', level, 'status', status) FROM hier_self),"
	    " 'parent', (SELECT jsonb_build_object('name', name, 'uuid',"
	    "  peer_uuid, 'state', state, 'last_seen', " TS("last_seen") ","
	    "  'lag_s', lag_s, 'last_error', last_error) FROM hier_links"
	    "  WHERE role = 'parent'),"
	    " 'links', coalesce((SELECT jsonb_agg(jsonb_build_object("
	    "  'name', l.name, 'uuid', l.peer_uuid, 'state', l.state,"
	    "  'last_seen', " TS("l.last_seen") ", 'lag_s', l.lag_s,"
	    "  'last_error', l.last_error, 'group', gp.path)"
	    "  ORDER BY l.name) FROM hier_links l"
	    "  LEFT JOIN gp ON gp.id = l.group_id WHERE l.role = 'child'),"
	    "  '[]'),"
	    " 'servers', coalesce((SELECT jsonb_agg(jsonb_build_object("
	    "  'uuid', s.uuid, 'name', s.name, 'parent_uuid', s.parent_uuid,"
	    "  'level', s.level, 'status', s.status) ORDER BY s.name)"
	    "  FROM hier_servers s), '[]'),"
	    " 'counts', coalesce((SELECT jsonb_object_agg(o, c) FROM"
	    "  (SELECT origin::text AS o, jsonb_object_agg(vs, n) AS c FROM"
	    "  (SELECT origin, vs, count(*) AS n FROM hier_devices"
	    "  GROUP BY origin, vs) x GROUP BY origin) y), '{}'),"
	    " 'vservers', (SELECT jsonb_agg(jsonb_build_object('name', v.name,"
	    "  'devices', (SELECT count(*) FROM devices d"
	    "  WHERE d.vs_id = v.id)) ORDER BY v.id) FROM vservers v)"
	    " )::text", 0, NULL)) == NULL)
		return rc;
	doc = PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0,
	    &jerr) : NULL;
	PQclear(res);
	if (doc == NULL) {
		snprintf(err, errlen, "server tree: bad JSON from the "
		    "database");
		return DB_ERR;
	}
	memset(&in, 0, sizeof(in));
	in.servers = json_object_get(doc, "servers");
	in.counts = json_object_get(doc, "counts");
	if (qs_index(&in) == -1) {
		json_decref(in.by_uuid);
		json_decref(in.kids);
		json_decref(doc);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	self = json_object_get(doc, "self");
	name = json_string_value(json_object_get(self, "name"));
	if (name == NULL || *name == '\0')
		name = self_name;
	level = (int)json_integer_value(json_object_get(self, "level"));
	parent = json_object_get(doc, "parent");
	root = json_pack("{s:s,s:O,s:i,s:o}",
	    "name", name,
	    "uuid", json_object_get(self, "uuid") != NULL ?
	    json_object_get(self, "uuid") : json_null(),
	    "level", level,
	    "parent", json_is_object(parent) ? json_pack("{s:O,s:O,s:O,s:O,"
	    "s:O,s:O}",
	    "name", json_object_get(parent, "name"),
	    "uuid", json_object_get(parent, "uuid"),
	    "state", json_object_get(parent, "state"),
	    "last_seen", json_object_get(parent, "last_seen"),
	    "lag_s", json_object_get(parent, "lag_s"),
	    "last_error", json_object_get(parent, "last_error")) :
	    json_null());
	if (root == NULL) {
		json_decref(in.by_uuid);
		json_decref(in.kids);
		json_decref(doc);
		snprintf(err, errlen, "out of memory");
		return DB_ERR;
	}
	n = json_object_get(doc, "vservers");
	json_object_set_new(root, "devices", json_integer(0));
	json_array_foreach(n, i, l)
		json_object_set_new(root, "devices", json_integer(
		    json_integer_value(json_object_get(root, "devices")) +
		    json_integer_value(json_object_get(l, "devices"))));
	json_object_set_new(root, "vservers", json_is_array(n) ?
	    json_incref(n) : json_array());
	kids = json_array();
	json_array_foreach(json_object_get(doc, "links"), i, l) {
		n = qs_node(&in, json_string_value(json_object_get(l, "name")),
		    json_string_value(json_object_get(l, "uuid")), l,
		    level + 1, 0);
		if (n != NULL)
			json_array_append_new(kids, n);
	}
	json_object_set_new(root, "children", kids);
	/* Told, not silently cut: the API answers what it could. */
	if (in.nodes > HIER_TREE_SERVERS_MAX)
		json_object_set_new(root, "truncated", json_true());
	json_decref(in.by_uuid);
	json_decref(in.kids);
	json_decref(doc);
	*out = root;
	return DB_OK;
}

int
qs_mirror_device(PGconn *conn, const char *oid, json_t **out, char *err,
    size_t errlen)
{
	const char	*p[1] = { oid };
	PGresult	*res;
	json_t		*d;
	json_error_t	 jerr;
	int		 rc;

	*out = NULL;
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT jsonb_build_object('id', h.oid, 'name', h.name,"
	    " 'fqdn', h.fqdn, 'ip', h.ip[1], 'addresses', to_jsonb(h.ip),"
	    " 'mac', h.mac[1], 'macs', to_jsonb(h.mac), 'os', h.os,"
	    " 'group', NULL, 'group_path', h.group_path, 'status', h.status,"
	    " 'last_seen', " TS("h.last_seen") ","
	    " 'first_seen', " TS("h.first_seen") ", 'source', h.source,"
	    " 'server', coalesce(s.name, h.origin::text), 'vs', h.vs,"
	    " 'origin', h.origin, 'version', h.version,"
	    " 'link', l.name, 'mirror', true)::text"
	    " FROM hier_devices h JOIN hier_links l ON l.id = h.link_id"
	    " LEFT JOIN hier_servers s ON s.uuid = h.origin"
	    " WHERE h.oid = $1", 1, p)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return QS_NOTFOUND;
	}
	d = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (d == NULL) {
		snprintf(err, errlen, "mirrored device: bad JSON");
		return DB_ERR;
	}
	*out = d;
	return DB_OK;
}

static json_t *
qs_counter(void)
{
	return json_pack("{s:i,s:i,s:i,s:i}", "total", 0, "ok", 0,
	    "warning", 0, "critical", 0);
}

static void
qs_add(json_t *c, const char *status, json_int_t n)
{
	json_object_set_new(c, "total", json_integer(json_integer_value(
	    json_object_get(c, "total")) + n));
	if (json_object_get(c, status) != NULL)
		json_object_set_new(c, status, json_integer(json_integer_value(
		    json_object_get(c, status)) + n));
}

int
qs_status_report(PGconn *conn, int vs_id, int hierarchy,
    const char *self_name, json_t **out, char *err, size_t errlen)
{
	char		 vs[16];
	const char	*p[2] = { vs, hierarchy && vs_id == 0 ? "t" : "f" };
	const char	*srv, *st;
	PGresult	*res;
	json_t		*tot, *by, *c;
	json_int_t	 n;
	int		 rc, i;

	*out = NULL;
	snprintf(vs, sizeof(vs), "%d", vs_id);
	/* Mirrors by owner: its name as the mirror of its record knows it. */
	if ((res = db_exec(conn, &rc, err, errlen,
	    "SELECT NULL, status, count(*) FROM devices WHERE vs_id = $1::int"
	    " GROUP BY status"
	    " UNION ALL"
	    " SELECT coalesce(s.name, h.origin::text), h.status, count(*)"
	    " FROM hier_devices h LEFT JOIN hier_servers s"
	    "  ON s.uuid = h.origin"
	    " WHERE $2::boolean GROUP BY 1, 2", 2, p)) == NULL)
		return rc;
	tot = qs_counter();
	by = json_object();
	json_object_set_new(by, self_name, qs_counter());
	for (i = 0; i < PQntuples(res); i++) {
		srv = PQgetisnull(res, i, 0) ? self_name :
		    PQgetvalue(res, i, 0);
		st = PQgetvalue(res, i, 1);
		n = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		if ((c = json_object_get(by, srv)) == NULL) {
			c = qs_counter();
			json_object_set_new(by, srv, c);
		}
		qs_add(c, st, n);
		qs_add(tot, st, n);
	}
	PQclear(res);
	json_object_set_new(tot, "by_server", by);
	*out = tot;
	return DB_OK;
}
