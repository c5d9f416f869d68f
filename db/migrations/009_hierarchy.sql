-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 009: the server tree (docs/HIERARCHY.md).
--
-- Every synchronised object is owned by one server and known everywhere by
-- its global id "<origin server uuid>/<local id>" and a version.  A change
-- to one appends a record to hier_changes in the same transaction (the
-- transactional outbox, written by the triggers below), so no code path can
-- change an object without the change reaching the tree.  A record names the
-- object only; the sender reads its current state when it sends it.

CREATE TABLE hier_self (
	one		boolean PRIMARY KEY DEFAULT true CHECK (one),
	uuid		uuid NOT NULL DEFAULT gen_random_uuid(),
	name		text NOT NULL DEFAULT '',
	-- 0 at the top; the parent's level + 1 below it.
	level		integer NOT NULL DEFAULT 0,
	parent_uuid	uuid,
	up_min_severity	text NOT NULL DEFAULT 'warning',
	-- What the parent sees of this server: device counts, vservers, the
	-- state of the links to the children.  Refreshed by canopyd.
	status		jsonb NOT NULL DEFAULT '{}',
	-- the highest sequence number compaction removed, per direction: a
	-- peer whose cursor is below it needs a snapshot
	compacted_u	bigint NOT NULL DEFAULT 0,
	compacted_d	bigint NOT NULL DEFAULT 0
);
INSERT INTO hier_self DEFAULT VALUES;

CREATE FUNCTION hier_me() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT uuid::text FROM hier_self $$;

CREATE FUNCTION hier_sev_rank(s text) RETURNS integer LANGUAGE sql IMMUTABLE
PARALLEL SAFE AS $$
	SELECT CASE s WHEN 'info' THEN 0 WHEN 'warning' THEN 1
	    WHEN 'error' THEN 2 WHEN 'critical' THEN 3 ELSE -1 END
$$;

-- The links: at most one parent, any number of children.
CREATE TABLE hier_links (
	id		bigserial PRIMARY KEY,
	role		text NOT NULL CHECK (role IN ('parent', 'child')),
	name		text NOT NULL,
	peer_uuid	uuid UNIQUE,
	-- child: the client certificate it registered (sha256 hex)
	cert_fingerprint text UNIQUE,
	-- child: its place in main's group tree (NULL: Managed devices)
	group_id	bigint REFERENCES groups ON DELETE SET NULL,
	-- child dialled by this server (DMZ): the child's CA, pinned at
	-- registration
	peer_ca_pem	text,
	state		text NOT NULL DEFAULT 'disconnected',
	last_seen	timestamptz,
	last_error	text,
	lag_s		double precision NOT NULL DEFAULT 0,
	peer_proto	integer,
	-- the peer's records applied here, committed with each batch
	rx_seq		bigint NOT NULL DEFAULT 0,
	-- snapshot generation being received (mirror rows carry it)
	rx_snap		bigint NOT NULL DEFAULT 0,
	-- our records the peer acknowledged (for compaction)
	tx_acked	bigint NOT NULL DEFAULT 0,
	created		timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX hier_links_one_parent ON hier_links (role)
	WHERE role = 'parent';
CREATE UNIQUE INDEX hier_links_child_name ON hier_links (name)
	WHERE role = 'child';

-- Registration tokens for children: hashed, single use, expiring.
CREATE TABLE hier_tokens (
	hash		text PRIMARY KEY,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	expires		timestamptz NOT NULL,
	used		timestamptz,
	created_by	text
);

-- The outbox.  dir 'u' goes to the parent, 'd' to the children; scope_group
-- (down records) is the group the object is attached to here: only children
-- placed in its subtree get it (NULL: every child).
CREATE SEQUENCE hier_seq;
CREATE TABLE hier_changes (
	seq		bigint PRIMARY KEY,
	dir		"char" NOT NULL CHECK (dir IN ('u', 'd')),
	kind		text NOT NULL,
	op		"char" NOT NULL CHECK (op IN ('u', 'd')),
	oid		text NOT NULL,
	scope_group	bigint,
	at		timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX hier_changes_dir ON hier_changes (dir, seq);

-- Appends one record.  The advisory lock, held to the end of the
-- transaction, makes sequence order commit order: a reader that sees seq N
-- has seen every record below N, so a cursor never skips a late commit.
CREATE FUNCTION hier_log(p_dir text, p_kind text, p_op text, p_oid text,
    p_scope bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(7418930251);
	INSERT INTO hier_changes (seq, dir, kind, op, oid, scope_group)
	VALUES (nextval('hier_seq'), p_dir::"char", p_kind, p_op::"char", p_oid,
	    p_scope);
END
$$;

-- Mirrors of what flows up, from every server below (link_id: the child
-- link it came through).  snap: the snapshot generation that last wrote it.
CREATE TABLE hier_servers (
	oid		text PRIMARY KEY,
	uuid		uuid NOT NULL UNIQUE,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	name		text NOT NULL,
	parent_uuid	uuid,
	level		integer,
	status		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX hier_servers_link ON hier_servers (link_id);

CREATE TABLE hier_groups (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	vs		text NOT NULL,
	path		text NOT NULL
);
CREATE INDEX hier_groups_link ON hier_groups (link_id);

CREATE TABLE hier_devices (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	vs		text NOT NULL,
	name		text NOT NULL,
	fqdn		text,
	ip		text[] NOT NULL DEFAULT '{}',
	mac		text[] NOT NULL DEFAULT '{}',
	os		text,
	group_path	text,
	status		text NOT NULL DEFAULT 'ok',
	source		text,
	first_seen	timestamptz,
	last_seen	timestamptz
);
CREATE INDEX hier_devices_link ON hier_devices (link_id);
CREATE INDEX hier_devices_origin ON hier_devices (origin, name);

CREATE TABLE hier_events (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	vs		text NOT NULL,
	device_oid	text,
	severity	text NOT NULL,
	type		text NOT NULL,
	time		timestamptz NOT NULL,
	text		text NOT NULL DEFAULT ''
);
CREATE INDEX hier_events_link ON hier_events (link_id);
CREATE INDEX hier_events_time ON hier_events (time);

CREATE TABLE hier_task_results (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	task_oid	text NOT NULL,
	device_oid	text NOT NULL,
	device_name	text,
	state		text NOT NULL,
	finished	timestamptz,
	exit_code	integer,
	output		text
);
CREATE INDEX hier_task_results_link ON hier_task_results (link_id);
CREATE INDEX hier_task_results_task ON hier_task_results (task_oid);

-- Mirrors of what flows down from the parent: the policies and tasks of
-- every server above that apply to this one.
CREATE TABLE hier_policies (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	server		text NOT NULL,		-- the owner's name
	level		integer NOT NULL,	-- the owner's level
	group_path	text NOT NULL,		-- at the owner
	gdepth		integer NOT NULL,	-- depth of that group there
	name		text NOT NULL,
	product		text NOT NULL,
	revision	integer NOT NULL DEFAULT 1,
	settings	jsonb NOT NULL CHECK (jsonb_typeof(settings) = 'object')
);
CREATE INDEX hier_policies_order ON hier_policies (product, level, gdepth);

CREATE TABLE hier_tasks (
	oid		text PRIMARY KEY,
	origin		uuid NOT NULL,
	version		bigint NOT NULL,
	link_id		bigint NOT NULL REFERENCES hier_links ON DELETE CASCADE,
	snap		bigint NOT NULL DEFAULT 0,
	server		text NOT NULL,
	name		text,
	type		text NOT NULL,
	params		jsonb NOT NULL DEFAULT '{}',
	schedule	text NOT NULL,
	at		timestamptz,
	every_s		integer,
	expires_s	integer,
	cancelled	timestamptz
);

-- A task that came from above runs here as a local task of main's whole
-- tree; hier_oid ties it (and its results) to the original.
ALTER TABLE tasks ADD COLUMN hier_oid text UNIQUE;
-- Coarse "last seen" for the tree: a device's last_seen flows up when it
-- moved by HIER_SEEN_GRAIN (see the trigger), not at every heartbeat.
ALTER TABLE devices ADD COLUMN hier_seen timestamptz;

-- The mirrors belong to main: tenants never see them.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['hier_links', 'hier_tokens', 'hier_servers',
	    'hier_groups', 'hier_devices', 'hier_events', 'hier_task_results',
	    'hier_policies', 'hier_tasks', 'hier_changes', 'hier_self'] LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY tenant ON %I '
		    'USING (canopy_tenant_ok(0)) WITH CHECK (canopy_tenant_ok(0))',
		    t);
	END LOOP;
END
$$;

-- ---------------------------------------------------------------------
-- The outbox triggers.

-- Local objects flowing up.
CREATE FUNCTION hier_trg_up() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	r	record;
BEGIN
	IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
	PERFORM hier_log('u', TG_ARGV[0], CASE TG_OP WHEN 'DELETE' THEN 'd'
	    ELSE 'u' END, hier_me() || '/' || r.id::text, NULL);
	RETURN NULL;
END
$$;

CREATE FUNCTION hier_trg_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.hier_seen := NEW.last_seen;
	RETURN NEW;
END
$$;
-- HIER_SEEN_GRAIN: 5 minutes.
CREATE TRIGGER devices_hier_seen BEFORE UPDATE OF last_seen ON devices
	FOR EACH ROW WHEN (NEW.last_seen IS NOT NULL AND (OLD.hier_seen IS NULL
	    OR NEW.last_seen >= OLD.hier_seen + interval '5 minutes'))
	EXECUTE FUNCTION hier_trg_seen();
CREATE TRIGGER devices_hier_ins AFTER INSERT OR DELETE ON devices
	FOR EACH ROW EXECUTE FUNCTION hier_trg_up('device');
CREATE TRIGGER devices_hier_upd AFTER UPDATE ON devices
	FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
	    OR OLD.fqdn IS DISTINCT FROM NEW.fqdn
	    OR OLD.ip IS DISTINCT FROM NEW.ip
	    OR OLD.mac IS DISTINCT FROM NEW.mac
	    OR OLD.os IS DISTINCT FROM NEW.os
	    OR OLD.status IS DISTINCT FROM NEW.status
	    OR OLD.group_id IS DISTINCT FROM NEW.group_id
	    OR OLD.vs_id IS DISTINCT FROM NEW.vs_id
	    OR OLD.source IS DISTINCT FROM NEW.source
	    OR OLD.hier_seen IS DISTINCT FROM NEW.hier_seen)
	EXECUTE FUNCTION hier_trg_up('device');

-- A group renamed or moved changes the paths below it: those groups and
-- their devices are sent again.
CREATE FUNCTION hier_trg_group() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	me	text := hier_me();
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM hier_log('u', 'group', 'd', me || '/' || OLD.id, NULL);
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		PERFORM hier_log('u', 'group', 'u', me || '/' || NEW.id, NULL);
		RETURN NULL;
	END IF;
	PERFORM hier_log('u', x.kind, 'u', me || '/' || x.id, NULL)
	FROM (WITH RECURSIVE sub(id) AS (
		SELECT NEW.id UNION ALL
		SELECT g.id FROM groups g JOIN sub ON g.parent = sub.id)
	    SELECT 'group' AS kind, id::text AS id FROM sub
	    UNION ALL
	    SELECT 'device', d.id::text FROM devices d
	    WHERE d.group_id IN (SELECT id FROM sub)) x;
	RETURN NULL;
END
$$;
CREATE TRIGGER groups_hier_ins AFTER INSERT OR DELETE ON groups
	FOR EACH ROW EXECUTE FUNCTION hier_trg_group();
CREATE TRIGGER groups_hier_upd AFTER UPDATE ON groups
	FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
	    OR OLD.parent IS DISTINCT FROM NEW.parent)
	EXECUTE FUNCTION hier_trg_group();

CREATE FUNCTION hier_trg_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF hier_sev_rank(NEW.severity) >= (SELECT hier_sev_rank(up_min_severity)
	    FROM hier_self) THEN
		PERFORM hier_log('u', 'event', 'u', hier_me() || '/' || NEW.id,
		    NULL);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER events_hier AFTER INSERT ON events
	FOR EACH ROW EXECUTE FUNCTION hier_trg_event();
-- Deletions by retention are not sent: each server ages its mirrors itself.

-- Results of the tasks that came from above go back up.
CREATE FUNCTION hier_trg_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM tasks t WHERE t.id = NEW.task_id
	    AND t.hier_oid IS NOT NULL) THEN
		PERFORM hier_log('u', 'task_result', 'u',
		    hier_me() || '/' || NEW.id, NULL);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER task_runs_hier AFTER INSERT OR UPDATE OF state ON task_runs
	FOR EACH ROW EXECUTE FUNCTION hier_trg_run();

-- This server's own record.
CREATE FUNCTION hier_trg_self() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hier_log('u', 'server', 'u', NEW.uuid::text || '/server',
	    NULL);
	RETURN NULL;
END
$$;
CREATE TRIGGER hier_self_hier AFTER UPDATE ON hier_self
	FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
	    OR OLD.status IS DISTINCT FROM NEW.status
	    OR OLD.level IS DISTINCT FROM NEW.level
	    OR OLD.parent_uuid IS DISTINCT FROM NEW.parent_uuid)
	EXECUTE FUNCTION hier_trg_self();

-- Local objects flowing down: main's policies and group tasks.
CREATE FUNCTION hier_trg_down() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	r	record;
BEGIN
	IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
	IF r.vs_id <> 0 THEN
		RETURN NULL;
	END IF;
	IF TG_ARGV[0] = 'task' THEN
		IF r.group_id IS NULL OR r.hier_oid IS NOT NULL THEN
			RETURN NULL;
		END IF;
	END IF;
	PERFORM hier_log('d', TG_ARGV[0], CASE TG_OP WHEN 'DELETE' THEN 'd'
	    ELSE 'u' END, hier_me() || '/' || r.id::text, r.group_id);
	RETURN NULL;
END
$$;
CREATE TRIGGER policies_hier AFTER INSERT OR UPDATE OR DELETE ON policies
	FOR EACH ROW EXECUTE FUNCTION hier_trg_down('policy');
CREATE TRIGGER tasks_hier AFTER INSERT OR DELETE ON tasks
	FOR EACH ROW EXECUTE FUNCTION hier_trg_down('task');
CREATE TRIGGER tasks_hier_upd AFTER UPDATE ON tasks
	FOR EACH ROW WHEN (OLD.cancelled IS DISTINCT FROM NEW.cancelled)
	EXECUTE FUNCTION hier_trg_down('task');

-- Mirrors forward what they receive, origin kept: up for what came from
-- below, down (to every child) for what came from above.
CREATE FUNCTION hier_trg_fwd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM hier_log(TG_ARGV[1], TG_ARGV[0], 'd', OLD.oid,
		    NULL);
	ELSE
		PERFORM hier_log(TG_ARGV[1], TG_ARGV[0], 'u', NEW.oid,
		    NULL);
	END IF;
	RETURN NULL;
END
$$;
DO $$
DECLARE
	t text[];
BEGIN
	FOREACH t SLICE 1 IN ARRAY ARRAY[
	    ['hier_servers', 'server', 'u'], ['hier_groups', 'group', 'u'],
	    ['hier_devices', 'device', 'u'], ['hier_events', 'event', 'u'],
	    ['hier_task_results', 'task_result', 'u'],
	    ['hier_policies', 'policy', 'd'], ['hier_tasks', 'task', 'd']] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR DELETE ON %I '
		    'FOR EACH ROW EXECUTE FUNCTION hier_trg_fwd(%L, %L)',
		    t[1] || '_fwd', t[1], t[2], t[3]);
		EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I '
		    'FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version) '
		    'EXECUTE FUNCTION hier_trg_fwd(%L, %L)',
		    t[1] || '_fwd_upd', t[1], t[2], t[3]);
	END LOOP;
END
$$;

-- ---------------------------------------------------------------------
-- What a record carries: the object's state as "d".  One builder per kind,
-- used both by the stream (hier_read) and by snapshots (hier_snapshot).

-- Group paths and depths of every group of every virtual server.
CREATE FUNCTION hier_group_paths() RETURNS TABLE (id bigint, path text,
    depth integer) LANGUAGE sql STABLE AS $$
	WITH RECURSIVE gp(id, path, depth) AS (
		SELECT g.id, '/' || g.name, 0 FROM groups g WHERE g.parent IS NULL
		UNION ALL
		SELECT g.id, gp.path || '/' || g.name, gp.depth + 1
		FROM groups g JOIN gp ON g.parent = gp.id)
	SELECT * FROM gp
$$;

CREATE FUNCTION hier_d_device(dv devices, p_vs text, p_path text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('vs', p_vs, 'name', dv.name, 'fqdn', dv.fqdn,
	    'ip', to_jsonb(dv.ip), 'mac', to_jsonb(dv.mac), 'os', dv.os,
	    'group', p_path, 'status', dv.status, 'source', dv.source,
	    'first_seen', dv.first_seen, 'last_seen', dv.last_seen)
$$;
CREATE FUNCTION hier_d_mdevice(h hier_devices) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('vs', h.vs, 'name', h.name, 'fqdn', h.fqdn,
	    'ip', to_jsonb(h.ip), 'mac', to_jsonb(h.mac), 'os', h.os,
	    'group', h.group_path, 'status', h.status, 'source', h.source,
	    'first_seen', h.first_seen, 'last_seen', h.last_seen)
$$;
CREATE FUNCTION hier_d_event(e events, p_vs text, p_me text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('vs', p_vs, 'device', CASE WHEN e.device_id
	    IS NULL THEN NULL ELSE p_me || '/' || e.device_id END,
	    'severity', e.severity, 'type', e.type, 'time', e.time,
	    'text', e.text)
$$;
CREATE FUNCTION hier_d_mevent(h hier_events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('vs', h.vs, 'device', h.device_oid,
	    'severity', h.severity, 'type', h.type, 'time', h.time,
	    'text', h.text)
$$;
CREATE FUNCTION hier_d_result(r task_runs, p_task text, p_dev text,
    p_me text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('task', p_task, 'device',
	    p_me || '/' || r.device_id, 'device_name', p_dev, 'state', r.state,
	    'finished', r.finished, 'exit_code', r.exit_code, 'output', r.output)
$$;
CREATE FUNCTION hier_d_mresult(h hier_task_results) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('task', h.task_oid, 'device', h.device_oid,
	    'device_name', h.device_name, 'state', h.state,
	    'finished', h.finished, 'exit_code', h.exit_code, 'output', h.output)
$$;
CREATE FUNCTION hier_d_server(s hier_self) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('name', s.name, 'parent', s.parent_uuid,
	    'level', s.level, 'status', s.status)
$$;
CREATE FUNCTION hier_d_mserver(h hier_servers) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('name', h.name, 'parent', h.parent_uuid,
	    'level', h.level, 'status', h.status)
$$;
CREATE FUNCTION hier_d_policy(p policies, s hier_self, p_path text,
    p_depth integer) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('server', s.name, 'level', s.level,
	    'group', p_path, 'gdepth', p_depth, 'name', p.name,
	    'product', p.product, 'revision', p.revision,
	    'settings', p.settings)
$$;
CREATE FUNCTION hier_d_mpolicy(h hier_policies) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('server', h.server, 'level', h.level,
	    'group', h.group_path, 'gdepth', h.gdepth, 'name', h.name,
	    'product', h.product, 'revision', h.revision,
	    'settings', h.settings)
$$;
CREATE FUNCTION hier_d_task(t tasks, s hier_self) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('server', s.name, 'name', t.name,
	    'type', t.type, 'params', t.params, 'schedule', t.schedule,
	    'at', t.at, 'every_s', t.every_s, 'expires_s', t.expires_s,
	    'cancelled', t.cancelled)
$$;
CREATE FUNCTION hier_d_mtask(h hier_tasks) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('server', h.server, 'name', h.name,
	    'type', h.type, 'params', h.params, 'schedule', h.schedule,
	    'at', h.at, 'every_s', h.every_s, 'expires_s', h.expires_s,
	    'cancelled', h.cancelled)
$$;

-- The groups a child placed at group g receives down records for: g and
-- its ancestors (g NULL: Managed devices).
CREATE FUNCTION hier_child_scope(g bigint) RETURNS TABLE (id bigint)
LANGUAGE sql STABLE AS $$
	WITH RECURSIVE anc(id) AS (
		SELECT coalesce(g, (SELECT x.id FROM groups x
		    WHERE x.vs_id = 0 AND x.kind = 'root'))
		UNION ALL
		SELECT x.parent FROM groups x JOIN anc ON x.id = anc.id
		WHERE x.parent IS NOT NULL)
	SELECT id FROM anc
$$;

-- ---------------------------------------------------------------------
-- The stream: the next records for a link after seq p_after, at most
-- p_limit changes, one record per object (its latest state).
CREATE FUNCTION hier_read(p_link bigint, p_after bigint, p_limit integer)
RETURNS TABLE (last_seq bigint, n integer, full_batch boolean,
    last_at timestamptz, recs text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	l	hier_links;
	d	"char";
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hier_read: no link %', p_link;
	END IF;
	d := CASE l.role WHEN 'parent' THEN 'u' ELSE 'd' END;
	RETURN QUERY
	WITH c0 AS (
		SELECT c.seq, c.kind, c.op, c.oid, c.at FROM hier_changes c
		WHERE c.dir = d AND c.seq > p_after AND (d = 'u'
		    OR c.scope_group IS NULL
		    OR c.scope_group IN (SELECT id FROM hier_child_scope(l.group_id)))
		ORDER BY c.seq LIMIT p_limit),
	c AS (
		SELECT DISTINCT ON (c0.oid) c0.seq, c0.kind, c0.op, c0.oid,
		    split_part(c0.oid, '/', 1) AS origin,
		    split_part(c0.oid, '/', 2) AS lid
		FROM c0 ORDER BY c0.oid, c0.seq DESC),
	me AS (SELECT s FROM hier_self s),
	x AS (
		SELECT c.seq, c.kind, c.op, c.oid, c.origin, dd.v, dd.d
		FROM c CROSS JOIN me LEFT JOIN LATERAL (
			SELECT NULL::bigint AS v, hier_d_device(dv, vs.name, gp.path) AS d
			FROM devices dv JOIN vservers vs ON vs.id = dv.vs_id
			LEFT JOIN hier_group_paths() gp ON gp.id = dv.group_id
			WHERE dv.id = CASE WHEN c.kind = 'device' AND
			    c.origin = (me.s).uuid::text THEN c.lid::uuid END
			UNION ALL
			SELECT h.version, hier_d_mdevice(h) FROM hier_devices h
			WHERE c.kind = 'device' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, jsonb_build_object('vs', vs.name, 'path', gp.path)
			FROM groups g JOIN vservers vs ON vs.id = g.vs_id
			JOIN hier_group_paths() gp ON gp.id = g.id
			WHERE g.id = CASE WHEN c.kind = 'group' AND
			    c.origin = (me.s).uuid::text THEN c.lid::bigint END
			UNION ALL
			SELECT h.version, jsonb_build_object('vs', h.vs, 'path', h.path)
			FROM hier_groups h WHERE c.kind = 'group' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, hier_d_event(e, vs.name, (me.s).uuid::text)
			FROM events e JOIN vservers vs ON vs.id = e.vs_id
			WHERE e.id = CASE WHEN c.kind = 'event' AND
			    c.origin = (me.s).uuid::text THEN c.lid::bigint END
			UNION ALL
			SELECT h.version, hier_d_mevent(h) FROM hier_events h
			WHERE c.kind = 'event' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, hier_d_result(r, t.hier_oid, dv.name,
			    (me.s).uuid::text)
			FROM task_runs r JOIN tasks t ON t.id = r.task_id
			JOIN devices dv ON dv.id = r.device_id
			WHERE r.id = CASE WHEN c.kind = 'task_result' AND
			    c.origin = (me.s).uuid::text THEN c.lid::bigint END
			UNION ALL
			SELECT h.version, hier_d_mresult(h) FROM hier_task_results h
			WHERE c.kind = 'task_result' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, hier_d_server(me.s)
			WHERE c.kind = 'server' AND c.origin = (me.s).uuid::text
			UNION ALL
			SELECT h.version, hier_d_mserver(h) FROM hier_servers h
			WHERE c.kind = 'server' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, hier_d_policy(p, me.s, gp.path, gp.depth)
			FROM policies p JOIN hier_group_paths() gp ON gp.id = p.group_id
			WHERE p.id = CASE WHEN c.kind = 'policy' AND
			    c.origin = (me.s).uuid::text THEN c.lid::bigint END
			UNION ALL
			SELECT h.version, hier_d_mpolicy(h) FROM hier_policies h
			WHERE c.kind = 'policy' AND h.oid = c.oid
			UNION ALL
			SELECT NULL, hier_d_task(t, me.s) FROM tasks t
			WHERE t.id = CASE WHEN c.kind = 'task' AND
			    c.origin = (me.s).uuid::text THEN c.lid::bigint END
			UNION ALL
			SELECT h.version, hier_d_mtask(h) FROM hier_tasks h
			WHERE c.kind = 'task' AND h.oid = c.oid
		) dd ON c.op = 'u')
	SELECT (SELECT max(c0.seq) FROM c0),
	    (SELECT count(*) FROM x WHERE x.op = 'd' OR x.d IS NOT NULL)::integer,
	    (SELECT count(*) FROM c0) >= p_limit,
	    (SELECT max(c0.at) FROM c0),
	    coalesce((SELECT jsonb_agg(jsonb_build_object('s', x.seq,
		'k', x.kind, 'op', x.op, 'id', x.oid, 'o', x.origin,
		'v', coalesce(x.v, x.seq), 'd', x.d) ORDER BY x.seq)
		FROM x WHERE x.op = 'd' OR x.d IS NOT NULL), '[]'::jsonb)::text;
END
$$;
