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

-- Is there a link for records of direction dir ('u': a parent, 'd': a
-- child)?  Without one nothing is logged: a link made later starts with a
-- snapshot, which holds everything committed before it.
CREATE FUNCTION hier_has_links(dir text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (SELECT 1 FROM hier_links
	    WHERE role = CASE dir WHEN 'u' THEN 'parent' ELSE 'child' END)
$$;

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
	IF NOT hier_has_links(p_dir) THEN
		RETURN;
	END IF;
	PERFORM pg_advisory_xact_lock(7418930251);
	INSERT INTO hier_changes (seq, dir, kind, op, oid, scope_group)
	VALUES (nextval('hier_seq'), p_dir::"char", p_kind, p_op::"char", p_oid,
	    p_scope);
	-- Wakes the senders at commit (one notification per transaction).
	PERFORM pg_notify('hier_changes', '');
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

-- A tenant's own changes go to the outbox too (its groups, devices and
-- events flow up inside the physical server's stream): the triggers, which
-- run as the tenant, may read this server's identity and append.
CREATE POLICY tenant_read ON hier_self FOR SELECT USING (true);
CREATE POLICY tenant_append ON hier_changes FOR INSERT WITH CHECK (true);

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
-- Many rows at once (a directory import, an agents' batch): one statement
-- appends all their records.
CREATE FUNCTION hier_trg_up_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT hier_has_links('u') THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(7418930251);
	IF TG_OP = 'DELETE' THEN
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), 'u', TG_ARGV[0], 'd',
		    hier_me() || '/' || o.id FROM old_rows o ORDER BY o.id;
	ELSE
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), 'u', TG_ARGV[0], 'u',
		    hier_me() || '/' || n.id FROM new_rows n ORDER BY n.id;
	END IF;
	PERFORM pg_notify('hier_changes', '');
	RETURN NULL;
END
$$;
CREATE TRIGGER devices_hier_ins AFTER INSERT ON devices
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION hier_trg_up_rows('device');
CREATE TRIGGER devices_hier_del AFTER DELETE ON devices
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION hier_trg_up_rows('device');
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
DECLARE
	lim	integer := (SELECT hier_sev_rank(up_min_severity) FROM hier_self);
BEGIN
	IF hier_has_links('u') AND EXISTS (SELECT 1 FROM new_rows n
	    WHERE hier_sev_rank(n.severity) >= lim) THEN
		PERFORM pg_advisory_xact_lock(7418930251);
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), 'u', 'event', 'u',
		    hier_me() || '/' || n.id FROM new_rows n
		WHERE hier_sev_rank(n.severity) >= lim ORDER BY n.id;
		PERFORM pg_notify('hier_changes', '');
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER events_hier AFTER INSERT ON events
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION hier_trg_event();
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
-- below, down (to every child) for what came from above.  One statement
-- per applied batch.
CREATE FUNCTION hier_trg_fwd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT hier_has_links(TG_ARGV[1]) THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(7418930251);
	IF TG_OP = 'INSERT' THEN
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), TG_ARGV[1]::"char", TG_ARGV[0], 'u',
		    n.oid FROM new_rows n ORDER BY n.oid;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), TG_ARGV[1]::"char", TG_ARGV[0], 'd',
		    o.oid FROM old_rows o ORDER BY o.oid;
	ELSE
		INSERT INTO hier_changes (seq, dir, kind, op, oid)
		SELECT nextval('hier_seq'), TG_ARGV[1]::"char", TG_ARGV[0], 'u',
		    n.oid FROM new_rows n JOIN old_rows o ON o.oid = n.oid
		WHERE o.version IS DISTINCT FROM n.version ORDER BY n.oid;
	END IF;
	PERFORM pg_notify('hier_changes', '');
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
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I '
		    'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
		    'EXECUTE FUNCTION hier_trg_fwd(%L, %L)',
		    t[1] || '_fwd_ins', t[1], t[2], t[3]);
		EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I '
		    'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT '
		    'EXECUTE FUNCTION hier_trg_fwd(%L, %L)',
		    t[1] || '_fwd_del', t[1], t[2], t[3]);
		EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I '
		    'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
		    'FOR EACH STATEMENT EXECUTE FUNCTION hier_trg_fwd(%L, %L)',
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
-- p_limit changes, one record per object (its latest state), in sequence
-- order, then one row with rec NULL: the highest sequence number read (the
-- cursor moves there even when the last changes were of objects gone
-- since).  full: there may be more.
CREATE FUNCTION hier_read(p_link bigint, p_after bigint, p_limit integer)
RETURNS TABLE (seq bigint, at timestamptz, rec text, full_batch boolean)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	l	hier_links;
	s	hier_self;
	d	"char";
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hier_read: no link %', p_link;
	END IF;
	SELECT * INTO s FROM hier_self;
	d := CASE l.role WHEN 'parent' THEN 'u' ELSE 'd' END;
	-- One query over the batch, kind by kind; every object is looked up
	-- by its key (LATERAL ... OFFSET 0: an index probe, whatever the
	-- statistics of a table just filled say).
	RETURN QUERY
	WITH c0 AS MATERIALIZED (
		SELECT c.seq, c.kind, c.op, c.oid, c.at FROM hier_changes c
		WHERE c.dir = d AND c.seq > p_after AND (d = 'u'
		    OR c.scope_group IS NULL
		    OR c.scope_group IN (SELECT id FROM hier_child_scope(l.group_id)))
		ORDER BY c.seq LIMIT p_limit),
	c AS MATERIALIZED (
		SELECT DISTINCT ON (c0.oid) c0.seq, c0.at, c0.kind, c0.op, c0.oid,
		    split_part(c0.oid, '/', 1) AS origin,
		    split_part(c0.oid, '/', 2) AS lid,
		    split_part(c0.oid, '/', 1) = s.uuid::text AS mine
		FROM c0 ORDER BY c0.oid, c0.seq DESC),
	cl AS MATERIALIZED (SELECT * FROM c WHERE c.op = 'u' AND c.mine),
	cm AS MATERIALIZED (SELECT * FROM c WHERE c.op = 'u' AND NOT c.mine),
	gp AS MATERIALIZED (SELECT * FROM hier_group_paths()),
	x(seq, v, d) AS MATERIALIZED (
		SELECT k.seq, NULL::bigint, hier_d_device(dv, vs.name, gp.path)
		FROM (SELECT cl.seq, cl.lid::uuid AS id FROM cl
		    WHERE cl.kind = 'device') k
		CROSS JOIN LATERAL (SELECT * FROM devices x0
		    WHERE x0.id = k.id OFFSET 0) dv
		JOIN vservers vs ON vs.id = dv.vs_id
		LEFT JOIN gp ON gp.id = dv.group_id
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mdevice(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_devices h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'device'
		UNION ALL
		SELECT k.seq, NULL, jsonb_build_object('vs', vs.name,
		    'path', gp.path)
		FROM (SELECT cl.seq, cl.lid::bigint AS id FROM cl
		    WHERE cl.kind = 'group') k
		CROSS JOIN LATERAL (SELECT * FROM groups x0
		    WHERE x0.id = k.id OFFSET 0) g
		JOIN vservers vs ON vs.id = g.vs_id
		JOIN gp ON gp.id = g.id
		UNION ALL
		SELECT cm.seq, h.version, jsonb_build_object('vs', h.vs,
		    'path', h.path)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_groups h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'group'
		UNION ALL
		SELECT k.seq, NULL, hier_d_event(e, vs.name, s.uuid::text)
		FROM (SELECT cl.seq, cl.lid::bigint AS id FROM cl
		    WHERE cl.kind = 'event') k
		CROSS JOIN LATERAL (SELECT * FROM events x0
		    WHERE x0.id = k.id OFFSET 0) e
		JOIN vservers vs ON vs.id = e.vs_id
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mevent(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_events h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'event'
		UNION ALL
		SELECT k.seq, NULL, hier_d_result(r, t.hier_oid, dv.name,
		    s.uuid::text)
		FROM (SELECT cl.seq, cl.lid::bigint AS id FROM cl
		    WHERE cl.kind = 'task_result') k
		CROSS JOIN LATERAL (SELECT * FROM task_runs x0
		    WHERE x0.id = k.id OFFSET 0) r
		JOIN tasks t ON t.id = r.task_id
		JOIN devices dv ON dv.id = r.device_id
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mresult(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_task_results h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'task_result'
		UNION ALL
		SELECT cl.seq, NULL, hier_d_server(s)
		FROM cl WHERE cl.kind = 'server'
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mserver(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_servers h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'server'
		UNION ALL
		SELECT k.seq, NULL, hier_d_policy(p, s, gp.path, gp.depth)
		FROM (SELECT cl.seq, cl.lid::bigint AS id FROM cl
		    WHERE cl.kind = 'policy') k
		CROSS JOIN LATERAL (SELECT * FROM policies x0
		    WHERE x0.id = k.id OFFSET 0) p
		JOIN gp ON gp.id = p.group_id
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mpolicy(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_policies h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'policy'
		UNION ALL
		SELECT k.seq, NULL, hier_d_task(t, s)
		FROM (SELECT cl.seq, cl.lid::bigint AS id FROM cl
		    WHERE cl.kind = 'task') k
		CROSS JOIN LATERAL (SELECT * FROM tasks x0
		    WHERE x0.id = k.id OFFSET 0) t
		UNION ALL
		SELECT cm.seq, h.version, hier_d_mtask(h)
		FROM cm CROSS JOIN LATERAL (SELECT * FROM hier_tasks h0
		    WHERE h0.oid = cm.oid OFFSET 0) h
		WHERE cm.kind = 'task'),
	y AS (
		SELECT c.seq, c.at, jsonb_build_object('s', c.seq, 'k', c.kind,
		    'op', c.op, 'id', c.oid, 'o', c.origin,
		    'v', coalesce(x.v, c.seq), 'd', x.d)::text AS rec
		FROM c LEFT JOIN x ON x.seq = c.seq
		WHERE c.op = 'd' OR x.d IS NOT NULL
		UNION ALL
		SELECT max(c0.seq), max(c0.at), NULL FROM c0
		HAVING count(*) > 0)
	SELECT y.seq, y.at, y.rec, (SELECT count(*) FROM c0) >= p_limit
	FROM y ORDER BY y.seq, y.rec NULLS LAST;
END
$$;

-- ---------------------------------------------------------------------
-- A snapshot for a link: every object the link carries, as records of
-- version S (local objects) or their own version (mirrors), in chunks of
-- p_chunk records, parents before what hangs below them.  Run it in a
-- REPEATABLE READ transaction: S is the highest sequence number that
-- snapshot sees (compaction always keeps the newest record), so the stream
-- goes on from S with nothing skipped.
CREATE FUNCTION hier_snapshot(p_link bigint, p_chunk integer)
RETURNS TABLE (snap_seq bigint, n integer, recs text)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	l	hier_links;
	s	hier_self;
	sq	bigint;
	me	text;
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hier_snapshot: no link %', p_link;
	END IF;
	SELECT * INTO s FROM hier_self;
	me := s.uuid::text;
	sq := coalesce((SELECT max(c.seq) FROM hier_changes c), 0);
	IF l.role = 'parent' THEN
		RETURN QUERY
		WITH o(ord, k, id, v, d) AS (
			SELECT 0, 'server', me || '/server', sq, hier_d_server(s)
			UNION ALL
			SELECT 1, 'server', h.oid, h.version, hier_d_mserver(h)
			FROM hier_servers h
			UNION ALL
			SELECT 2, 'group', me || '/' || g.id, sq,
			    jsonb_build_object('vs', vs.name, 'path', gp.path)
			FROM groups g JOIN vservers vs ON vs.id = g.vs_id
			JOIN hier_group_paths() gp ON gp.id = g.id
			UNION ALL
			SELECT 2, 'group', h.oid, h.version,
			    jsonb_build_object('vs', h.vs, 'path', h.path)
			FROM hier_groups h
			UNION ALL
			SELECT 3, 'device', me || '/' || dv.id, sq,
			    hier_d_device(dv, vs.name, gp.path)
			FROM devices dv JOIN vservers vs ON vs.id = dv.vs_id
			LEFT JOIN hier_group_paths() gp ON gp.id = dv.group_id
			UNION ALL
			SELECT 3, 'device', h.oid, h.version, hier_d_mdevice(h)
			FROM hier_devices h
			UNION ALL
			SELECT 4, 'event', me || '/' || e.id, sq,
			    hier_d_event(e, vs.name, me)
			FROM events e JOIN vservers vs ON vs.id = e.vs_id
			WHERE hier_sev_rank(e.severity) >=
			    hier_sev_rank(s.up_min_severity)
			UNION ALL
			SELECT 4, 'event', h.oid, h.version, hier_d_mevent(h)
			FROM hier_events h
			UNION ALL
			SELECT 5, 'task_result', me || '/' || r.id, sq,
			    hier_d_result(r, t.hier_oid, dv.name, me)
			FROM task_runs r JOIN tasks t ON t.id = r.task_id
			JOIN devices dv ON dv.id = r.device_id
			WHERE t.hier_oid IS NOT NULL
			UNION ALL
			SELECT 5, 'task_result', h.oid, h.version, hier_d_mresult(h)
			FROM hier_task_results h),
		numbered AS (
			SELECT o.*, (row_number() OVER (ORDER BY o.ord, o.id) - 1)
			    / p_chunk AS chunk FROM o)
		SELECT sq, count(*)::integer, jsonb_agg(jsonb_build_object(
		    's', 0, 'k', x.k, 'op', 'u', 'id', x.id,
		    'o', split_part(x.id, '/', 1), 'v', x.v, 'd', x.d)
		    ORDER BY x.ord, x.id)::text
		FROM numbered x GROUP BY x.chunk ORDER BY x.chunk;
	ELSE
		RETURN QUERY
		WITH o(ord, k, id, v, d) AS (
			SELECT 0, 'policy', h.oid, h.version, hier_d_mpolicy(h)
			FROM hier_policies h
			UNION ALL
			SELECT 1, 'policy', me || '/' || p.id, sq,
			    hier_d_policy(p, s, gp.path, gp.depth)
			FROM policies p JOIN hier_group_paths() gp ON gp.id = p.group_id
			WHERE p.vs_id = 0 AND p.group_id IN
			    (SELECT id FROM hier_child_scope(l.group_id))
			UNION ALL
			SELECT 2, 'task', h.oid, h.version, hier_d_mtask(h)
			FROM hier_tasks h WHERE h.cancelled IS NULL
			UNION ALL
			SELECT 3, 'task', me || '/' || t.id, sq, hier_d_task(t, s)
			FROM tasks t
			WHERE t.vs_id = 0 AND t.hier_oid IS NULL
			    AND t.cancelled IS NULL AND t.next_run IS NOT NULL
			    AND t.group_id IN
			    (SELECT id FROM hier_child_scope(l.group_id))),
		numbered AS (
			SELECT o.*, (row_number() OVER (ORDER BY o.ord, o.id) - 1)
			    / p_chunk AS chunk FROM o)
		SELECT sq, count(*)::integer, jsonb_agg(jsonb_build_object(
		    's', 0, 'k', x.k, 'op', 'u', 'id', x.id,
		    'o', split_part(x.id, '/', 1), 'v', x.v, 'd', x.d)
		    ORDER BY x.ord, x.id)::text
		FROM numbered x GROUP BY x.chunk ORDER BY x.chunk;
	END IF;
END
$$;

-- ---------------------------------------------------------------------
-- The receiving side.  hier_apply applies one batch from link p_link in
-- the caller's transaction, or raises an error naming the first bad record
-- (nothing of the batch is applied then): a record whose origin is not
-- below that link (up) or is this server or below it (down), an object id
-- that does not belong to the record's origin, an unknown kind, a sequence
-- number that does not move forward.  Stream batches (p_last not NULL) also
-- move the link's cursor to p_last, in the same transaction.

CREATE TYPE hier_rec AS (s bigint, k text, op text, id text, o text,
    v bigint, d jsonb);

CREATE FUNCTION hier_snap_begin(p_link bigint) RETURNS bigint
LANGUAGE sql AS $$
	UPDATE hier_links SET rx_snap = rx_snap + 1 WHERE id = p_link
	RETURNING rx_snap
$$;

-- The snapshot is complete: what it did not mention is gone.
CREATE FUNCTION hier_snap_end(p_link bigint, p_seq bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	g	bigint;
BEGIN
	SELECT rx_snap INTO g FROM hier_links WHERE id = p_link FOR UPDATE;
	DELETE FROM hier_task_results WHERE link_id = p_link AND snap < g;
	DELETE FROM hier_events WHERE link_id = p_link AND snap < g;
	DELETE FROM hier_devices WHERE link_id = p_link AND snap < g;
	DELETE FROM hier_groups WHERE link_id = p_link AND snap < g;
	DELETE FROM hier_servers WHERE link_id = p_link AND snap < g;
	DELETE FROM hier_policies WHERE link_id = p_link AND snap < g;
	UPDATE tasks SET cancelled = now(), next_run = NULL
	WHERE hier_oid IN (SELECT oid FROM hier_tasks
	    WHERE link_id = p_link AND snap < g) AND cancelled IS NULL;
	DELETE FROM hier_tasks WHERE link_id = p_link AND snap < g;
	UPDATE hier_links SET rx_seq = p_seq, last_seen = now()
	WHERE id = p_link;
END
$$;

CREATE FUNCTION hier_jarr(j jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN jsonb_typeof(j) = 'array' THEN
	    ARRAY(SELECT jsonb_array_elements_text(j)) ELSE '{}'::text[] END
$$;

CREATE FUNCTION hier_apply(p_link bigint, p_recs jsonb, p_last bigint)
RETURNS integer LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	l	hier_links;
	me	text := hier_me();
	recs	hier_rec[];
	bad	hier_rec;
	why	text;
	n	integer;
	up	boolean;
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the link no longer exists';
	END IF;
	IF jsonb_typeof(p_recs) <> 'array' THEN
		RAISE EXCEPTION 'records: not an array';
	END IF;
	up := l.role = 'child';	-- records from a child flow up
	SELECT array_agg(r) INTO recs FROM jsonb_populate_recordset(
	    NULL::hier_rec, p_recs) r;
	-- A batch this link already applied (its acknowledgement was lost, or
	-- the sender resumed from a cursor read before our last commit):
	-- nothing to do again.  Going backwards within a connection is
	-- refused by the receiver before it gets here.
	IF p_last IS NOT NULL AND p_last <= l.rx_seq THEN
		RETURN 0;
	END IF;
	IF p_last IS NOT NULL THEN
		-- Records it already has: the same race, inside a batch.
		recs := ARRAY(SELECT ROW(o.s, o.k, o.op, o.id, o.oo, o.v,
		    o.d)::hier_rec FROM unnest(recs) WITH ORDINALITY
		    AS o(s, k, op, id, oo, v, d, i)
		    WHERE o.s IS NULL OR o.s > l.rx_seq ORDER BY o.i);
	END IF;
	n := coalesce(array_length(recs, 1), 0);
	IF n = 0 THEN
		IF p_last IS NOT NULL THEN
			UPDATE hier_links SET rx_seq = p_last, last_seen = now()
			WHERE id = p_link;
		END IF;
		RETURN 0;
	END IF;

	-- Shape.
	SELECT r.*, CASE
	    WHEN r.k IS NULL OR r.id IS NULL OR r.o IS NULL OR r.v IS NULL
		OR r.op IS NULL OR r.s IS NULL THEN 'a field is missing'
	    WHEN r.op NOT IN ('u', 'd') THEN 'op must be u or d'
	    WHEN r.o !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
		THEN 'origin is not a server id'
	    WHEN r.v < 0 THEN 'negative version'
	    WHEN up AND r.k NOT IN ('server', 'group', 'device', 'event',
		'task_result') THEN 'kind ' || r.k || ' does not flow up'
	    WHEN NOT up AND r.k NOT IN ('policy', 'task') THEN
		'kind ' || r.k || ' does not flow down'
	    WHEN split_part(r.id, '/', 1) <> r.o THEN
		'object ' || r.id || ' is owned by ' || split_part(r.id, '/', 1)
		|| ', not by ' || r.o
	    WHEN r.k = 'server' AND r.id <> r.o || '/server' THEN
		'a server record must be ' || r.o || '/server'
	    WHEN r.o = me THEN 'forged origin: ' || r.o || ' is this server'
	    WHEN r.op = 'u' AND jsonb_typeof(r.d) IS DISTINCT FROM 'object'
		THEN 'd must be an object'
	    END
	INTO bad.s, bad.k, bad.op, bad.id, bad.o, bad.v, bad.d, why
	FROM unnest(recs) r WHERE CASE
	    WHEN r.k IS NULL OR r.id IS NULL OR r.o IS NULL OR r.v IS NULL
		OR r.op IS NULL OR r.s IS NULL THEN true
	    WHEN r.op NOT IN ('u', 'd') THEN true
	    WHEN r.o !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN true
	    WHEN r.v < 0 THEN true
	    WHEN up AND r.k NOT IN ('server', 'group', 'device', 'event',
		'task_result') THEN true
	    WHEN NOT up AND r.k NOT IN ('policy', 'task') THEN true
	    WHEN split_part(r.id, '/', 1) <> r.o THEN true
	    WHEN r.k = 'server' AND r.id <> r.o || '/server' THEN true
	    WHEN r.o = me THEN true
	    WHEN r.op = 'u' AND jsonb_typeof(r.d) IS DISTINCT FROM 'object'
		THEN true
	    ELSE false END
	LIMIT 1;
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'record % (%): %', coalesce(bad.id, '?'),
		    coalesce(bad.k, '?'), why;
	END IF;

	-- Order: a stream moves forward only.
	IF p_last IS NOT NULL THEN
		SELECT x.s, x.prev INTO bad.s, bad.v FROM (
			SELECT o.s, lag(o.s, 1, l.rx_seq) OVER (ORDER BY o.i) prev
			FROM unnest(recs) WITH ORDINALITY AS o(s, k, op, id, oo,
			    v, d, i)) x
		WHERE x.s <= x.prev OR x.s > p_last LIMIT 1;
		IF bad.s IS NOT NULL THEN
			RAISE EXCEPTION 'sequence number % does not follow %: '
			    'it goes backwards', bad.s, bad.v;
		END IF;
	END IF;

	-- Ownership: up, every origin is the child or a server below it
	-- (known, or announced in this very batch by a server below it);
	-- down, no origin is this server or below it.
	IF up THEN
		WITH RECURSIVE ok(u) AS (
			SELECT l.peer_uuid::text
			UNION
			SELECT h.uuid::text FROM hier_servers h
			WHERE h.link_id = p_link
			UNION
			SELECT r.o FROM unnest(recs) r JOIN ok
			    ON r.d ->> 'parent' = ok.u
			WHERE r.k = 'server' AND r.op = 'u')
		SELECT r.id, r.o INTO bad.id, bad.o FROM unnest(recs) r
		WHERE r.o NOT IN (SELECT u FROM ok WHERE u IS NOT NULL) LIMIT 1;
		IF bad.id IS NOT NULL THEN
			RAISE EXCEPTION 'record %: forged origin: server % is not '
			    'below link %', bad.id, bad.o, l.name;
		END IF;
		SELECT r.o, h.link_id INTO bad.o, bad.v FROM unnest(recs) r
		JOIN hier_servers h ON h.uuid = r.o::uuid
		WHERE h.link_id <> p_link LIMIT 1;
		IF bad.o IS NOT NULL THEN
			RAISE EXCEPTION 'server % already belongs to another link '
			    '(%)', bad.o, bad.v;
		END IF;
	ELSE
		SELECT r.id, r.o INTO bad.id, bad.o FROM unnest(recs) r
		WHERE r.o::uuid IN (SELECT uuid FROM hier_servers) LIMIT 1;
		IF bad.id IS NOT NULL THEN
			RAISE EXCEPTION 'record %: forged origin: server % is below '
			    'this one, not above', bad.id, bad.o;
		END IF;
	END IF;

	IF up THEN
		DELETE FROM hier_servers h USING unnest(recs) r
		WHERE r.k = 'server' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_servers AS h (oid, uuid, origin, version,
		    link_id, snap, name, parent_uuid, level, status)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.o::uuid, r.v,
		    p_link, l.rx_snap, coalesce(r.d ->> 'name', ''),
		    (r.d ->> 'parent')::uuid, (r.d ->> 'level')::integer,
		    coalesce(r.d -> 'status', '{}')
		FROM unnest(recs) r WHERE r.k = 'server' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, name = EXCLUDED.name,
		    parent_uuid = EXCLUDED.parent_uuid, level = EXCLUDED.level,
		    status = EXCLUDED.status
		WHERE h.version <= EXCLUDED.version;

		DELETE FROM hier_groups h USING unnest(recs) r
		WHERE r.k = 'group' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_groups AS h (oid, origin, version, link_id,
		    snap, vs, path)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'),
		    coalesce(r.d ->> 'path', '')
		FROM unnest(recs) r WHERE r.k = 'group' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs, path = EXCLUDED.path
		WHERE h.version <= EXCLUDED.version;

		DELETE FROM hier_devices h USING unnest(recs) r
		WHERE r.k = 'device' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_devices AS h (oid, origin, version, link_id,
		    snap, vs, name, fqdn, ip, mac, os, group_path, status, source,
		    first_seen, last_seen)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'),
		    coalesce(r.d ->> 'name', ''), r.d ->> 'fqdn',
		    hier_jarr(r.d -> 'ip'), hier_jarr(r.d -> 'mac'), r.d ->> 'os',
		    r.d ->> 'group', coalesce(r.d ->> 'status', 'ok'),
		    r.d ->> 'source', (r.d ->> 'first_seen')::timestamptz,
		    (r.d ->> 'last_seen')::timestamptz
		FROM unnest(recs) r WHERE r.k = 'device' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs, name = EXCLUDED.name,
		    fqdn = EXCLUDED.fqdn, ip = EXCLUDED.ip, mac = EXCLUDED.mac,
		    os = EXCLUDED.os, group_path = EXCLUDED.group_path,
		    status = EXCLUDED.status, source = EXCLUDED.source,
		    first_seen = EXCLUDED.first_seen,
		    last_seen = EXCLUDED.last_seen
		WHERE h.version <= EXCLUDED.version;

		DELETE FROM hier_events h USING unnest(recs) r
		WHERE r.k = 'event' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_events AS h (oid, origin, version, link_id,
		    snap, vs, device_oid, severity, type, time, text)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'), r.d ->> 'device',
		    coalesce(r.d ->> 'severity', 'info'),
		    coalesce(r.d ->> 'type', ''),
		    coalesce((r.d ->> 'time')::timestamptz, now()),
		    coalesce(r.d ->> 'text', '')
		FROM unnest(recs) r WHERE r.k = 'event' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs,
		    device_oid = EXCLUDED.device_oid,
		    severity = EXCLUDED.severity, type = EXCLUDED.type,
		    time = EXCLUDED.time, text = EXCLUDED.text
		WHERE h.version <= EXCLUDED.version;

		DELETE FROM hier_task_results h USING unnest(recs) r
		WHERE r.k = 'task_result' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_task_results AS h (oid, origin, version,
		    link_id, snap, task_oid, device_oid, device_name, state,
		    finished, exit_code, output)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'task', ''),
		    coalesce(r.d ->> 'device', ''), r.d ->> 'device_name',
		    coalesce(r.d ->> 'state', 'pending'),
		    (r.d ->> 'finished')::timestamptz,
		    (r.d ->> 'exit_code')::integer, r.d ->> 'output'
		FROM unnest(recs) r WHERE r.k = 'task_result' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, task_oid = EXCLUDED.task_oid,
		    device_oid = EXCLUDED.device_oid,
		    device_name = EXCLUDED.device_name, state = EXCLUDED.state,
		    finished = EXCLUDED.finished, exit_code = EXCLUDED.exit_code,
		    output = EXCLUDED.output
		WHERE h.version <= EXCLUDED.version;
	ELSE
		DELETE FROM hier_policies h USING unnest(recs) r
		WHERE r.k = 'policy' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_policies AS h (oid, origin, version, link_id,
		    snap, server, level, group_path, gdepth, name, product,
		    revision, settings)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'server', ''),
		    coalesce((r.d ->> 'level')::integer, 0),
		    coalesce(r.d ->> 'group', ''),
		    coalesce((r.d ->> 'gdepth')::integer, 0),
		    coalesce(r.d ->> 'name', ''), coalesce(r.d ->> 'product', ''),
		    coalesce((r.d ->> 'revision')::integer, 1),
		    CASE WHEN jsonb_typeof(r.d -> 'settings') = 'object' THEN
			r.d -> 'settings' ELSE '{}' END
		FROM unnest(recs) r WHERE r.k = 'policy' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, server = EXCLUDED.server,
		    level = EXCLUDED.level, group_path = EXCLUDED.group_path,
		    gdepth = EXCLUDED.gdepth, name = EXCLUDED.name,
		    product = EXCLUDED.product, revision = EXCLUDED.revision,
		    settings = EXCLUDED.settings
		WHERE h.version <= EXCLUDED.version;

		-- Tasks from above: mirrored, then run here over the whole of
		-- main (a deleted or cancelled one stops here too).
		UPDATE tasks SET cancelled = now(), next_run = NULL
		WHERE hier_oid IN (SELECT r.id FROM unnest(recs) r
		    WHERE r.k = 'task' AND (r.op = 'd' OR
		    r.d ->> 'cancelled' IS NOT NULL)) AND cancelled IS NULL;
		DELETE FROM hier_tasks h USING unnest(recs) r
		WHERE r.k = 'task' AND r.op = 'd' AND h.oid = r.id
		    AND h.link_id = p_link;
		INSERT INTO hier_tasks AS h (oid, origin, version, link_id, snap,
		    server, name, type, params, schedule, at, every_s, expires_s,
		    cancelled)
		SELECT DISTINCT ON (r.id) r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'server', ''), r.d ->> 'name',
		    coalesce(r.d ->> 'type', ''),
		    CASE WHEN jsonb_typeof(r.d -> 'params') = 'object' THEN
			r.d -> 'params' ELSE '{}' END,
		    coalesce(r.d ->> 'schedule', 'now'),
		    (r.d ->> 'at')::timestamptz, (r.d ->> 'every_s')::integer,
		    (r.d ->> 'expires_s')::integer,
		    (r.d ->> 'cancelled')::timestamptz
		FROM unnest(recs) r WHERE r.k = 'task' AND r.op = 'u'
		ORDER BY r.id, r.v DESC
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, server = EXCLUDED.server,
		    name = EXCLUDED.name, type = EXCLUDED.type,
		    params = EXCLUDED.params, schedule = EXCLUDED.schedule,
		    at = EXCLUDED.at, every_s = EXCLUDED.every_s,
		    expires_s = EXCLUDED.expires_s, cancelled = EXCLUDED.cancelled
		WHERE h.version <= EXCLUDED.version;
		INSERT INTO tasks (vs_id, name, type, group_id, recursive, params,
		    schedule, at, every_s, next_run, expires_s, created_by,
		    hier_oid)
		SELECT 0, h.name, h.type, (SELECT g.id FROM groups g
		    WHERE g.vs_id = 0 AND g.kind = 'root'), true, h.params,
		    h.schedule, h.at,
		    CASE WHEN h.schedule = 'every' THEN greatest(h.every_s, 60) END,
		    CASE WHEN h.schedule = 'at' THEN coalesce(h.at, now())
			ELSE now() END,
		    h.expires_s, 'server ' || h.server, h.oid
		FROM hier_tasks h
		WHERE h.oid IN (SELECT r.id FROM unnest(recs) r
		    WHERE r.k = 'task' AND r.op = 'u')
		    AND h.cancelled IS NULL
		    AND h.type IN ('inventory_refresh', 'run_command')
		    AND h.schedule IN ('now', 'at', 'every')
		ON CONFLICT (hier_oid) DO NOTHING;
	END IF;

	IF p_last IS NOT NULL THEN
		UPDATE hier_links SET rx_seq = p_last, last_seen = now()
		WHERE id = p_link;
	END IF;
	RETURN n;
END
$$;

-- Compaction: what every link has acknowledged goes (the newest record
-- always stays: snapshots take their sequence number from it); so does
-- what is older than p_max_age, a lagging link then gets a snapshot.
CREATE FUNCTION hier_compact(p_max_age interval, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	top	bigint;
	upto_u	bigint;
	upto_d	bigint;
	n1	integer;
	n2	integer;
BEGIN
	top := (SELECT max(seq) FROM hier_changes);
	IF top IS NULL THEN
		RETURN 0;
	END IF;
	upto_u := coalesce((SELECT tx_acked FROM hier_links
	    WHERE role = 'parent'), top);
	upto_d := coalesce((SELECT min(tx_acked) FROM hier_links
	    WHERE role = 'child'), top);
	upto_u := greatest(upto_u, coalesce((SELECT max(seq) FROM hier_changes
	    WHERE dir = 'u' AND at < now() - p_max_age), 0));
	upto_d := greatest(upto_d, coalesce((SELECT max(seq) FROM hier_changes
	    WHERE dir = 'd' AND at < now() - p_max_age), 0));
	upto_u := least(upto_u, top - 1);
	upto_d := least(upto_d, top - 1);
	WITH x AS (DELETE FROM hier_changes WHERE seq IN (
		SELECT seq FROM hier_changes WHERE dir = 'u' AND seq <= upto_u
		ORDER BY seq LIMIT p_limit) RETURNING seq)
	SELECT count(*), max(seq) INTO n1, upto_u FROM x;
	WITH x AS (DELETE FROM hier_changes WHERE seq IN (
		SELECT seq FROM hier_changes WHERE dir = 'd' AND seq <= upto_d
		ORDER BY seq LIMIT p_limit) RETURNING seq)
	SELECT count(*), max(seq) INTO n2, upto_d FROM x;
	UPDATE hier_self SET
	    compacted_u = greatest(compacted_u, coalesce(upto_u, 0)),
	    compacted_d = greatest(compacted_d, coalesce(upto_d, 0));
	RETURN n1 + n2;
END
$$;

-- What the parent sees of this server.  Returns true when it changed.
CREATE FUNCTION hier_status_refresh() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	st	jsonb;
BEGIN
	SELECT jsonb_build_object(
	    'devices', (SELECT count(*) FROM devices),
	    'vservers', coalesce((SELECT jsonb_agg(jsonb_build_object(
		'name', v.name, 'devices', (SELECT count(*) FROM devices d
		WHERE d.vs_id = v.id)) ORDER BY v.name) FROM vservers v
		WHERE v.id <> 0), '[]'),
	    'links', coalesce((SELECT jsonb_object_agg(l.peer_uuid::text,
		jsonb_build_object('name', l.name, 'state', l.state,
		'last_seen', l.last_seen, 'lag_s', round(l.lag_s::numeric)))
		FROM hier_links l WHERE l.role = 'child'
		AND l.peer_uuid IS NOT NULL), '{}'))
	INTO st;
	UPDATE hier_self SET status = st WHERE status IS DISTINCT FROM st;
	RETURN FOUND;
END
$$;
