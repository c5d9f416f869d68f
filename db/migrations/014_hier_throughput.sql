-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 014: the server tree's streams, cheaper per record (docs/HIERARCHY.md,
-- "Cost of a record"; docs/BENCHMARKS.md has the figures).
--
-- 009 read a batch with one statement: a union over every kind, planned
-- afresh for each batch (17 ms), whose first step sorted every pending
-- change of the direction, not just the batch's (a read cost in proportion
-- to the backlog), and built jsonb, whose keys are sorted, through builder
-- functions called once per record.  Applying ran some twenty statements
-- per batch, most of them for kinds the batch did not hold, matched a
-- regular expression per record and checked a foreign key per mirrored
-- row.  Compaction deleted through a semi-join with the oldest records.
--
-- Here each step is its own small statement whose plan is kept for the
-- session, every step for a kind the batch does not hold is skipped, json
-- is built by inlined builders, origins are matched once each, the
-- mirrors' link is enforced by a trigger on the links, and compaction
-- deletes ranges of the outbox index.  A middle server relays a child's
-- batch as outbox rows holding its records, where 009 wrote one row per
-- record from the mirrors' triggers and rebuilt each record from its
-- mirror to send it on.

-- ---------------------------------------------------------------------
-- The mirrors lose their foreign key to hier_links (a lookup per row
-- applied); removing a link removes its mirrors here instead.

ALTER TABLE hier_servers DROP CONSTRAINT hier_servers_link_id_fkey;
ALTER TABLE hier_groups DROP CONSTRAINT hier_groups_link_id_fkey;
ALTER TABLE hier_devices DROP CONSTRAINT hier_devices_link_id_fkey;
ALTER TABLE hier_events DROP CONSTRAINT hier_events_link_id_fkey;
ALTER TABLE hier_task_results DROP CONSTRAINT hier_task_results_link_id_fkey;
ALTER TABLE hier_policies DROP CONSTRAINT hier_policies_link_id_fkey;
ALTER TABLE hier_tasks DROP CONSTRAINT hier_tasks_link_id_fkey;

CREATE FUNCTION hier_trg_link_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM hier_task_results WHERE link_id = OLD.id;
	DELETE FROM hier_events WHERE link_id = OLD.id;
	DELETE FROM hier_devices WHERE link_id = OLD.id;
	DELETE FROM hier_groups WHERE link_id = OLD.id;
	DELETE FROM hier_servers WHERE link_id = OLD.id;
	DELETE FROM hier_policies WHERE link_id = OLD.id;
	DELETE FROM hier_tasks WHERE link_id = OLD.id;
	RETURN OLD;
END
$$;
CREATE TRIGGER hier_links_gone BEFORE DELETE ON hier_links
	FOR EACH ROW EXECUTE FUNCTION hier_trg_link_gone();

-- ---------------------------------------------------------------------
-- Relaying.  A middle server forwards a child's stream batch as outbox
-- rows of kind 'relay' (at most a batch each): recs holds the records as
-- checked and applied, as json without their sequence numbers; the row
-- owns the n numbers up to its seq, one per record, so that a cursor may
-- stop inside it.  The mirrors' triggers stay quiet while hier_apply
-- writes such a batch (canopy.hier_relay), and forward as before
-- everything else (snapshots, a link's removal, what comes down).  recs
-- is not compressed: that would cost more than it saves for a row that
-- lives until it is acknowledged.
ALTER TABLE hier_changes ADD COLUMN n integer CHECK (n > 0),
    ADD COLUMN recs text[];
ALTER TABLE hier_changes ALTER COLUMN recs SET STORAGE EXTERNAL;
-- where a read of other changes stops
CREATE INDEX hier_changes_relay ON hier_changes (dir, seq)
	WHERE n IS NOT NULL;

CREATE OR REPLACE FUNCTION hier_trg_fwd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT hier_has_links(TG_ARGV[1]) OR (TG_ARGV[1] = 'u' AND
	    current_setting('canopy.hier_relay', true) = 'on') THEN
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

-- hier_changes (dir, seq) is the only path a read takes: a range scan
-- that stops after the batch.  With statistics of a queue table just
-- filled the planner may prefer a bitmap scan and a sort of the whole
-- backlog; hier_read turns that off for itself.

-- ---------------------------------------------------------------------
-- What a record carries, as json: the records are text on the wire, and
-- json is built by appending, where jsonb sorts and deduplicates keys
-- first (a third of a batch read went there).  STABLE, as what they call
-- is (a timestamp's text depends on the time zone): the planner inlines
-- them, where an IMMUTABLE one ran as a function call per record.
DROP FUNCTION hier_d_device(devices, text, text);
DROP FUNCTION hier_d_mdevice(hier_devices);
DROP FUNCTION hier_d_event(events, text, text);
DROP FUNCTION hier_d_mevent(hier_events);
DROP FUNCTION hier_d_result(task_runs, text, text, text);
DROP FUNCTION hier_d_mresult(hier_task_results);
DROP FUNCTION hier_d_server(hier_self);
DROP FUNCTION hier_d_mserver(hier_servers);
DROP FUNCTION hier_d_policy(policies, hier_self, text, integer);
DROP FUNCTION hier_d_mpolicy(hier_policies);
DROP FUNCTION hier_d_task(tasks, hier_self);
DROP FUNCTION hier_d_mtask(hier_tasks);

CREATE FUNCTION hier_d_device(dv devices, p_vs text, p_path text)
RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('vs', p_vs, 'name', dv.name, 'fqdn', dv.fqdn,
	    'ip', to_json(dv.ip), 'mac', to_json(dv.mac), 'os', dv.os,
	    'group', p_path, 'status', dv.status, 'source', dv.source,
	    'first_seen', dv.first_seen, 'last_seen', dv.last_seen)
$$;
CREATE FUNCTION hier_d_mdevice(h hier_devices) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('vs', h.vs, 'name', h.name, 'fqdn', h.fqdn,
	    'ip', to_json(h.ip), 'mac', to_json(h.mac), 'os', h.os,
	    'group', h.group_path, 'status', h.status, 'source', h.source,
	    'first_seen', h.first_seen, 'last_seen', h.last_seen)
$$;
CREATE FUNCTION hier_d_event(e events, p_vs text, p_me text) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('vs', p_vs, 'device', CASE WHEN e.device_id
	    IS NULL THEN NULL ELSE p_me || '/' || e.device_id END,
	    'severity', e.severity, 'type', e.type, 'time', e.time,
	    'text', e.text)
$$;
CREATE FUNCTION hier_d_mevent(h hier_events) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('vs', h.vs, 'device', h.device_oid,
	    'severity', h.severity, 'type', h.type, 'time', h.time,
	    'text', h.text)
$$;
CREATE FUNCTION hier_d_result(r task_runs, p_task text, p_dev text,
    p_me text) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('task', p_task, 'device',
	    p_me || '/' || r.device_id, 'device_name', p_dev, 'state', r.state,
	    'finished', r.finished, 'exit_code', r.exit_code, 'output', r.output)
$$;
CREATE FUNCTION hier_d_mresult(h hier_task_results) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('task', h.task_oid, 'device', h.device_oid,
	    'device_name', h.device_name, 'state', h.state,
	    'finished', h.finished, 'exit_code', h.exit_code, 'output', h.output)
$$;
CREATE FUNCTION hier_d_server(s hier_self) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('name', s.name, 'parent', s.parent_uuid,
	    'level', s.level, 'status', s.status)
$$;
CREATE FUNCTION hier_d_mserver(h hier_servers) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('name', h.name, 'parent', h.parent_uuid,
	    'level', h.level, 'status', h.status)
$$;
CREATE FUNCTION hier_d_policy(p policies, s hier_self, p_path text,
    p_depth integer) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('server', s.name, 'level', s.level,
	    'group', p_path, 'gdepth', p_depth, 'name', p.name,
	    'product', p.product, 'revision', p.revision,
	    'settings', p.settings)
$$;
CREATE FUNCTION hier_d_mpolicy(h hier_policies) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('server', h.server, 'level', h.level,
	    'group', h.group_path, 'gdepth', h.gdepth, 'name', h.name,
	    'product', h.product, 'revision', h.revision,
	    'settings', h.settings)
$$;
CREATE FUNCTION hier_d_task(t tasks, s hier_self) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('server', s.name, 'name', t.name,
	    'type', t.type, 'params', t.params, 'schedule', t.schedule,
	    'at', t.at, 'every_s', t.every_s, 'expires_s', t.expires_s,
	    'cancelled', t.cancelled)
$$;
CREATE FUNCTION hier_d_mtask(h hier_tasks) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('server', h.server, 'name', h.name,
	    'type', h.type, 'params', h.params, 'schedule', h.schedule,
	    'at', h.at, 'every_s', h.every_s, 'expires_s', h.expires_s,
	    'cancelled', h.cancelled)
$$;

-- The snapshot: 009's, with the json builders.
CREATE OR REPLACE FUNCTION hier_snapshot(p_link bigint, p_chunk integer)
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
			    json_build_object('vs', vs.name, 'path', gp.path)
			FROM groups g JOIN vservers vs ON vs.id = g.vs_id
			JOIN hier_group_paths() gp ON gp.id = g.id
			UNION ALL
			SELECT 2, 'group', h.oid, h.version,
			    json_build_object('vs', h.vs, 'path', h.path)
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
		SELECT sq, count(*)::integer, json_agg(json_build_object(
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
		SELECT sq, count(*)::integer, json_agg(json_build_object(
		    's', 0, 'k', x.k, 'op', 'u', 'id', x.id,
		    'o', split_part(x.id, '/', 1), 'v', x.v, 'd', x.d)
		    ORDER BY x.ord, x.id)::text
		FROM numbered x GROUP BY x.chunk ORDER BY x.chunk;
	END IF;
END
$$;

-- ---------------------------------------------------------------------
-- The stream: 009's hier_read, except that the rows come in no order
-- (each kind is returned as it is read, without gathering them first): the
-- caller orders them by seq, the end row (rec NULL) after a record of the
-- same number.  A relayed batch is read alone; full_batch says whether
-- more is waiting.
CREATE OR REPLACE FUNCTION hier_read(p_link bigint, p_after bigint,
    p_limit integer)
RETURNS TABLE (seq bigint, at timestamptz, rec text, full_batch boolean)
LANGUAGE plpgsql STABLE SET enable_bitmapscan = off AS $$
DECLARE
	l	hier_links;
	srv	hier_self;
	me	text;
	d	"char";
	scope	bigint[];
	n	integer;
	top	bigint;
	top_at	timestamptz;
	-- one entry per object: its latest change in the batch
	c_seq	bigint[];
	c_at	timestamptz[];
	c_kind	text[];
	c_op	"char"[];
	c_oid	text[];
	kinds	text[];		-- '<kind>:l' (local) or ':m' (mirror), updates
	relay_at bigint;	-- a relayed batch: its row
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hier_read: no link %', p_link;
	END IF;
	SELECT * INTO srv FROM hier_self;
	me := srv.uuid::text;
	d := CASE l.role WHEN 'parent' THEN 'u' ELSE 'd' END;
	IF d = 'd' THEN
		scope := ARRAY(SELECT x.id FROM hier_child_scope(l.group_id) x);
	END IF;

	-- A relayed batch (hier_apply) goes alone, cut at p_limit records
	-- (the cursor may stop inside it); other changes go up to the next
	-- relayed batch.
	SELECT c.seq, c.n, c.at INTO relay_at, n, top_at FROM hier_changes c
	WHERE c.dir = d AND c.seq > p_after ORDER BY c.dir, c.seq LIMIT 1;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF n IS NOT NULL THEN
		top := least(relay_at, greatest(p_after, relay_at - n) + p_limit);
		RETURN QUERY SELECT x.s, h.at,
		    '{"s" : ' || x.s || ', ' || substr(x.t, 2), NULL::boolean
		FROM hier_changes h CROSS JOIN LATERAL (SELECT h.seq - h.n + u.i
		    AS s, u.t FROM unnest(h.recs) WITH ORDINALITY u(t, i)) x
		WHERE h.dir = d AND h.seq = relay_at
		    AND x.s > p_after AND x.s <= top;
		RETURN QUERY SELECT top, top_at, NULL::text, EXISTS (SELECT 1
		    FROM hier_changes c WHERE c.dir = d AND c.seq > top);
		RETURN;
	END IF;

	-- One entry per object, its latest change (COLLATE "C": a byte
	-- comparison, where the database's collation may go through strcoll).
	relay_at := coalesce((SELECT c.seq FROM hier_changes c WHERE c.dir = d
	    AND c.seq > p_after AND c.n IS NOT NULL ORDER BY c.dir, c.seq
	    LIMIT 1), 9223372036854775807);
	WITH c1 AS MATERIALIZED (
		SELECT c.seq, c.at, c.kind, c.op, c.oid, c.scope_group
		FROM hier_changes c WHERE c.dir = d AND c.seq > p_after
		    AND c.seq < relay_at
		ORDER BY c.dir, c.seq LIMIT p_limit),
	c AS (
		SELECT DISTINCT ON (c1.oid COLLATE "C") c1.seq, c1.at, c1.kind,
		    c1.op, c1.oid
		FROM c1 WHERE d = 'u' OR c1.scope_group IS NULL
		    OR c1.scope_group = ANY (scope)
		ORDER BY c1.oid COLLATE "C", c1.seq DESC)
	SELECT (SELECT count(*) FROM c1), (SELECT max(c1.seq) FROM c1),
	    (SELECT max(c1.at) FROM c1),
	    array_agg(c.seq), array_agg(c.at), array_agg(c.kind),
	    array_agg(c.op), array_agg(c.oid),
	    array_agg(DISTINCT c.kind || CASE WHEN split_part(c.oid, '/', 1)
		= me THEN ':l' ELSE ':m' END) FILTER (WHERE c.op = 'u')
	INTO n, top, top_at, c_seq, c_at, c_kind, c_op, c_oid, kinds
	FROM c;
	kinds := coalesce(kinds, '{}');

	-- Deletions carry no state.
	RETURN QUERY SELECT k.s, k.a,
	    json_build_object('s', k.s, 'k', k.kd,
		'op', 'd', 'id', k.i, 'o', split_part(k.i, '/', 1),
		'v', k.s)::text,
	    NULL::boolean
	FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
	WHERE k.op = 'd';

	-- Updates, kind by kind, each object looked up by its key (LATERAL
	-- ... OFFSET 0: an index probe whatever the statistics of a table just
	-- filled say).  Objects gone since have no record: their deletion
	-- follows in the log.
	IF 'device:l' = ANY (kinds) THEN
		RETURN QUERY WITH gp AS MATERIALIZED (
		    SELECT * FROM hier_group_paths())
		SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'device',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_device(dv, vs.name, gp.path))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM devices x0
		    WHERE x0.id = split_part(k.i, '/', 2)::uuid OFFSET 0) dv
		JOIN vservers vs ON vs.id = dv.vs_id
		LEFT JOIN gp ON gp.id = dv.group_id
		WHERE k.kd = 'device' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'group:l' = ANY (kinds) THEN
		RETURN QUERY WITH gp AS MATERIALIZED (
		    SELECT * FROM hier_group_paths())
		SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'group',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', json_build_object('vs', vs.name,
			'path', gp.path))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM groups x0
		    WHERE x0.id = split_part(k.i, '/', 2)::bigint OFFSET 0) g
		JOIN vservers vs ON vs.id = g.vs_id
		JOIN gp ON gp.id = g.id
		WHERE k.kd = 'group' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'event:l' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'event',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_event(e, vs.name, me))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM events x0
		    WHERE x0.id = split_part(k.i, '/', 2)::bigint OFFSET 0) e
		JOIN vservers vs ON vs.id = e.vs_id
		WHERE k.kd = 'event' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'task_result:l' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s,
			'k', 'task_result', 'op', 'u', 'id', k.i, 'o', me,
			'v', k.s, 'd', hier_d_result(r, t.hier_oid, dv.name,
			me))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM task_runs x0
		    WHERE x0.id = split_part(k.i, '/', 2)::bigint OFFSET 0) r
		JOIN tasks t ON t.id = r.task_id
		JOIN devices dv ON dv.id = r.device_id
		WHERE k.kd = 'task_result' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'server:l' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'server',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_server(srv))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		WHERE k.kd = 'server' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'policy:l' = ANY (kinds) THEN
		RETURN QUERY WITH gp AS MATERIALIZED (
		    SELECT * FROM hier_group_paths())
		SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'policy',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_policy(p, srv, gp.path, gp.depth))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM policies x0
		    WHERE x0.id = split_part(k.i, '/', 2)::bigint OFFSET 0) p
		JOIN gp ON gp.id = p.group_id
		WHERE k.kd = 'policy' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;
	IF 'task:l' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'task',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_task(t, srv))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM tasks x0
		    WHERE x0.id = split_part(k.i, '/', 2)::bigint OFFSET 0) t
		WHERE k.kd = 'task' AND k.op = 'u'
		    AND split_part(k.i, '/', 1) = me;
	END IF;

	-- Mirrors forwarded: their own origin and version.
	IF 'device:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'device',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', hier_d_mdevice(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_devices h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'device' AND k.op = 'u';
	END IF;
	IF 'group:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'group',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', json_build_object('vs', h.vs, 'path', h.path))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_groups h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'group' AND k.op = 'u';
	END IF;
	IF 'event:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'event',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', hier_d_mevent(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_events h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'event' AND k.op = 'u';
	END IF;
	IF 'task_result:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s,
			'k', 'task_result', 'op', 'u', 'id', k.i, 'o', h.origin,
			'v', h.version, 'd', hier_d_mresult(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_task_results h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'task_result' AND k.op = 'u';
	END IF;
	IF 'server:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'server',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', hier_d_mserver(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_servers h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'server' AND k.op = 'u';
	END IF;
	IF 'policy:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'policy',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', hier_d_mpolicy(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_policies h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'policy' AND k.op = 'u';
	END IF;
	IF 'task:m' = ANY (kinds) THEN
		RETURN QUERY SELECT k.s, k.a,
		    json_build_object('s', k.s, 'k', 'task',
			'op', 'u', 'id', k.i, 'o', h.origin, 'v', h.version,
			'd', hier_d_mtask(h))::text,
		    NULL::boolean
		FROM unnest(c_seq, c_at, c_kind, c_op, c_oid) k(s, a, kd, op, i)
		CROSS JOIN LATERAL (SELECT * FROM hier_tasks h0
		    WHERE h0.oid = k.i OFFSET 0) h
		WHERE k.kd = 'task' AND k.op = 'u';
	END IF;

	-- The end: the highest sequence number read (the cursor moves there
	-- even when the last changes were of objects gone since).
	RETURN QUERY SELECT top, top_at, NULL::text, n >= p_limit OR EXISTS (
	    SELECT 1 FROM hier_changes c WHERE c.dir = d AND c.seq > top);
END
$$;

-- ---------------------------------------------------------------------
-- The mirror of each kind of record.
CREATE FUNCTION hier_mirror(p_kind text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$
	SELECT CASE p_kind WHEN 'server' THEN 'hier_servers'
	    WHEN 'group' THEN 'hier_groups' WHEN 'device' THEN 'hier_devices'
	    WHEN 'event' THEN 'hier_events'
	    WHEN 'task_result' THEN 'hier_task_results'
	    WHEN 'policy' THEN 'hier_policies' WHEN 'task' THEN 'hier_tasks' END
$$;

-- Applying a batch: same contract and checks as 009's hier_apply.  Only
-- the last record of each object is applied (batches applied together may
-- carry one twice); deletions go by key lists to each kind's mirror, and
-- the upserts run only for the kinds the batch holds.  It also stores the
-- link's lag (p_lag, for a stream batch) in the update that moves the
-- cursor, and says whether policies or tasks came, for the caller to push.
DROP FUNCTION hier_apply(bigint, jsonb, bigint);
CREATE FUNCTION hier_apply(p_link bigint, p_recs jsonb, p_last bigint,
    p_relay_max integer, p_lag double precision, OUT applied integer,
    OUT policies boolean, OUT tasks boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	l	hier_links;
	me	text := hier_me();
	recs	hier_rec[];
	bad	hier_rec;
	why	text;
	n	integer;
	up	boolean;
	has	text[];		-- '<kind>:<op>' present
	origins	text[];		-- the well-formed ones
	kd	text;
	relay	text[];		-- the records going on up
	nr	integer;
	first	bigint;
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the link no longer exists';
	END IF;
	IF jsonb_typeof(p_recs) <> 'array' THEN
		RAISE EXCEPTION 'records: not an array';
	END IF;
	up := l.role = 'child';	-- records from a child flow up
	-- A batch this link already applied (its acknowledgement was lost, or
	-- the sender resumed from a cursor read before our last commit):
	-- nothing to do again.  Going backwards within a connection is
	-- refused by the receiver before it gets here.
	applied := 0;
	policies := false;
	tasks := false;
	IF p_last IS NOT NULL AND p_last <= l.rx_seq THEN
		UPDATE hier_links SET lag_s = p_lag
		WHERE id = p_link AND lag_s <> p_lag;
		RETURN;
	END IF;
	-- Records it already has (the same race, inside a batch) are left
	-- out.
	recs := ARRAY(SELECT x FROM jsonb_populate_recordset(NULL::hier_rec,
	    p_recs) x WHERE p_last IS NULL OR x.s IS NULL OR x.s > l.rx_seq);
	n := coalesce(array_length(recs, 1), 0);
	IF n = 0 THEN
		IF p_last IS NOT NULL THEN
			UPDATE hier_links SET rx_seq = p_last, last_seen = now(),
			    lag_s = p_lag WHERE id = p_link;
		END IF;
		RETURN;
	END IF;

	-- Shape: the first bad record is named.  A batch has few origins:
	-- each is matched once.
	origins := ARRAY(SELECT DISTINCT r.o FROM unnest(recs) r);
	origins := ARRAY(SELECT x FROM unnest(origins) x
	    WHERE x ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
	SELECT x.s, x.k, x.op, x.id, x.o, x.v, x.d, x.why
	INTO bad.s, bad.k, bad.op, bad.id, bad.o, bad.v, bad.d, why
	FROM (SELECT r.*, CASE
	    WHEN r.k IS NULL OR r.id IS NULL OR r.o IS NULL OR r.v IS NULL
		OR r.op IS NULL OR r.s IS NULL THEN 'a field is missing'
	    WHEN r.op NOT IN ('u', 'd') THEN 'op must be u or d'
	    WHEN r.o <> ALL (origins) THEN 'origin is not a server id'
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
	    END AS why
	    FROM unnest(recs) WITH ORDINALITY AS r(s, k, op, id, o, v, d, i)) x
	WHERE x.why IS NOT NULL ORDER BY x.i LIMIT 1;
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
		SELECT x.o, h.link_id INTO bad.o, bad.v
		FROM (SELECT DISTINCT r.o FROM unnest(recs) r) x
		JOIN hier_servers h ON h.uuid = x.o::uuid
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

	-- One record per object, the last: batches applied together may carry
	-- an object twice (an upsert, then its deletion).
	recs := ARRAY(SELECT ROW(x.s, x.k, x.op, x.id, x.o, x.v, x.d)::hier_rec
	    FROM (SELECT DISTINCT ON (y.id) y.* FROM unnest(recs)
	    WITH ORDINALITY AS y(s, k, op, id, o, v, d, i)
	    ORDER BY y.id, y.i DESC) x ORDER BY x.i);
	has := ARRAY(SELECT DISTINCT r.k || ':' || r.op FROM unnest(recs) r);

	-- Relayed: a stream batch from a child goes on up as one outbox row
	-- holding its records (without their sequence numbers, which hier_read
	-- gives from the row's range), instead of one row per record written
	-- by the mirrors' triggers and each record rebuilt from its mirror.
	IF up AND p_last IS NOT NULL AND hier_has_links('u') THEN
		relay := ARRAY(SELECT json_build_object('k', r.k, 'op', r.op,
		    'id', r.id, 'o', r.o, 'v', r.v, 'd', r.d)::text
		    FROM unnest(recs) r);
		PERFORM set_config('canopy.hier_relay', 'on', true);
	END IF;

	-- Deletions, from the mirror of each kind.
	FOR kd IN SELECT DISTINCT r.k FROM unnest(recs) r WHERE r.op = 'd' LOOP
		EXECUTE format('DELETE FROM %I h WHERE h.oid = ANY ($1) '
		    'AND h.link_id = $2', hier_mirror(kd))
		USING ARRAY(SELECT r.id FROM unnest(recs) r
		    WHERE r.k = kd AND r.op = 'd'), p_link;
	END LOOP;

	IF 'server:u' = ANY (has) THEN
		INSERT INTO hier_servers AS h (oid, uuid, origin, version,
		    link_id, snap, name, parent_uuid, level, status)
		SELECT r.id, r.o::uuid, r.o::uuid, r.v,
		    p_link, l.rx_snap, coalesce(r.d ->> 'name', ''),
		    (r.d ->> 'parent')::uuid, (r.d ->> 'level')::integer,
		    coalesce(r.d -> 'status', '{}')
		FROM unnest(recs) r WHERE r.k = 'server' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, name = EXCLUDED.name,
		    parent_uuid = EXCLUDED.parent_uuid, level = EXCLUDED.level,
		    status = EXCLUDED.status
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'group:u' = ANY (has) THEN
		INSERT INTO hier_groups AS h (oid, origin, version, link_id,
		    snap, vs, path)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'),
		    coalesce(r.d ->> 'path', '')
		FROM unnest(recs) r WHERE r.k = 'group' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs, path = EXCLUDED.path
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'device:u' = ANY (has) THEN
		INSERT INTO hier_devices AS h (oid, origin, version, link_id,
		    snap, vs, name, fqdn, ip, mac, os, group_path, status, source,
		    first_seen, last_seen)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'),
		    coalesce(r.d ->> 'name', ''), r.d ->> 'fqdn',
		    hier_jarr(r.d -> 'ip'), hier_jarr(r.d -> 'mac'), r.d ->> 'os',
		    r.d ->> 'group', coalesce(r.d ->> 'status', 'ok'),
		    r.d ->> 'source', (r.d ->> 'first_seen')::timestamptz,
		    (r.d ->> 'last_seen')::timestamptz
		FROM unnest(recs) r WHERE r.k = 'device' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs, name = EXCLUDED.name,
		    fqdn = EXCLUDED.fqdn, ip = EXCLUDED.ip, mac = EXCLUDED.mac,
		    os = EXCLUDED.os, group_path = EXCLUDED.group_path,
		    status = EXCLUDED.status, source = EXCLUDED.source,
		    first_seen = EXCLUDED.first_seen,
		    last_seen = EXCLUDED.last_seen
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'event:u' = ANY (has) THEN
		INSERT INTO hier_events AS h (oid, origin, version, link_id,
		    snap, vs, device_oid, severity, type, time, text)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'vs', 'main'), r.d ->> 'device',
		    coalesce(r.d ->> 'severity', 'info'),
		    coalesce(r.d ->> 'type', ''),
		    coalesce((r.d ->> 'time')::timestamptz, now()),
		    coalesce(r.d ->> 'text', '')
		FROM unnest(recs) r WHERE r.k = 'event' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, vs = EXCLUDED.vs,
		    device_oid = EXCLUDED.device_oid,
		    severity = EXCLUDED.severity, type = EXCLUDED.type,
		    time = EXCLUDED.time, text = EXCLUDED.text
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'task_result:u' = ANY (has) THEN
		INSERT INTO hier_task_results AS h (oid, origin, version,
		    link_id, snap, task_oid, device_oid, device_name, state,
		    finished, exit_code, output)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'task', ''),
		    coalesce(r.d ->> 'device', ''), r.d ->> 'device_name',
		    coalesce(r.d ->> 'state', 'pending'),
		    (r.d ->> 'finished')::timestamptz,
		    (r.d ->> 'exit_code')::integer, r.d ->> 'output'
		FROM unnest(recs) r WHERE r.k = 'task_result' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, task_oid = EXCLUDED.task_oid,
		    device_oid = EXCLUDED.device_oid,
		    device_name = EXCLUDED.device_name, state = EXCLUDED.state,
		    finished = EXCLUDED.finished, exit_code = EXCLUDED.exit_code,
		    output = EXCLUDED.output
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'policy:u' = ANY (has) THEN
		INSERT INTO hier_policies AS h (oid, origin, version, link_id,
		    snap, server, level, group_path, gdepth, name, product,
		    revision, settings)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'server', ''),
		    coalesce((r.d ->> 'level')::integer, 0),
		    coalesce(r.d ->> 'group', ''),
		    coalesce((r.d ->> 'gdepth')::integer, 0),
		    coalesce(r.d ->> 'name', ''), coalesce(r.d ->> 'product', ''),
		    coalesce((r.d ->> 'revision')::integer, 1),
		    CASE WHEN jsonb_typeof(r.d -> 'settings') = 'object' THEN
			r.d -> 'settings' ELSE '{}' END
		FROM unnest(recs) r WHERE r.k = 'policy' AND r.op = 'u'
		ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
		    snap = EXCLUDED.snap, server = EXCLUDED.server,
		    level = EXCLUDED.level, group_path = EXCLUDED.group_path,
		    gdepth = EXCLUDED.gdepth, name = EXCLUDED.name,
		    product = EXCLUDED.product, revision = EXCLUDED.revision,
		    settings = EXCLUDED.settings
		WHERE h.version <= EXCLUDED.version;
	END IF;

	IF 'task:u' = ANY (has) OR 'task:d' = ANY (has) THEN
		-- Tasks from above: mirrored, then run here over the whole of
		-- main (a deleted or cancelled one stops here too).
		UPDATE tasks SET cancelled = now(), next_run = NULL
		WHERE hier_oid IN (SELECT r.id FROM unnest(recs) r
		    WHERE r.k = 'task' AND (r.op = 'd' OR
		    r.d ->> 'cancelled' IS NOT NULL)) AND cancelled IS NULL;
		INSERT INTO hier_tasks AS h (oid, origin, version, link_id, snap,
		    server, name, type, params, schedule, at, every_s, expires_s,
		    cancelled)
		SELECT r.id, r.o::uuid, r.v, p_link,
		    l.rx_snap, coalesce(r.d ->> 'server', ''), r.d ->> 'name',
		    coalesce(r.d ->> 'type', ''),
		    CASE WHEN jsonb_typeof(r.d -> 'params') = 'object' THEN
			r.d -> 'params' ELSE '{}' END,
		    coalesce(r.d ->> 'schedule', 'now'),
		    (r.d ->> 'at')::timestamptz, (r.d ->> 'every_s')::integer,
		    (r.d ->> 'expires_s')::integer,
		    (r.d ->> 'cancelled')::timestamptz
		FROM unnest(recs) r WHERE r.k = 'task' AND r.op = 'u'
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

	IF relay IS NOT NULL THEN
		PERFORM set_config('canopy.hier_relay', 'off', true);
		-- A range of sequence numbers, one per record, in rows of
		-- p_relay_max records at most (a read of a row takes all of
		-- it, batches applied together may hold many more); each row
		-- takes the last of its range.  Under the outbox lock, as
		-- hier_log.
		nr := cardinality(relay);
		PERFORM pg_advisory_xact_lock(7418930251);
		first := nextval('hier_seq');
		IF nr > 1 THEN
			PERFORM setval('hier_seq', first + nr - 1);
		END IF;
		INSERT INTO hier_changes (seq, dir, kind, op, oid, n, recs)
		SELECT first + least((g + 1) * p_relay_max, nr) - 1, 'u', 'relay',
		    'u', '', least(p_relay_max, nr - g * p_relay_max),
		    relay[g * p_relay_max + 1 : (g + 1) * p_relay_max]
		FROM generate_series(0, (nr - 1) / p_relay_max) g;
		PERFORM pg_notify('hier_changes', '');
	END IF;

	IF p_last IS NOT NULL THEN
		UPDATE hier_links SET rx_seq = p_last, last_seen = now(),
		    lag_s = p_lag WHERE id = p_link;
	END IF;
	-- What the caller pushes to its own agents and children.
	applied := n;
	policies := 'policy:u' = ANY (has) OR 'policy:d' = ANY (has);
	tasks := 'task:u' = ANY (has) OR 'task:d' = ANY (has);
END
$$;

-- ---------------------------------------------------------------------
-- Compaction by ranges of the (dir, seq) index: what every link has
-- acknowledged, at most p_limit sequence numbers past what was removed
-- before (so at most p_limit rows a call), instead of a semi-join against
-- the list of the oldest p_limit records.
CREATE OR REPLACE FUNCTION hier_compact(p_max_age interval, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	me	hier_self;
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
	SELECT * INTO me FROM hier_self;
	upto_u := coalesce((SELECT tx_acked FROM hier_links
	    WHERE role = 'parent'), top);
	upto_d := coalesce((SELECT min(tx_acked) FROM hier_links
	    WHERE role = 'child'), top);
	upto_u := greatest(upto_u, coalesce((SELECT max(seq) FROM hier_changes
	    WHERE dir = 'u' AND at < now() - p_max_age), 0));
	upto_d := greatest(upto_d, coalesce((SELECT max(seq) FROM hier_changes
	    WHERE dir = 'd' AND at < now() - p_max_age), 0));
	-- The newest record always stays: snapshots take their number from it.
	upto_u := least(upto_u, top - 1, me.compacted_u + p_limit);
	upto_d := least(upto_d, top - 1, me.compacted_d + p_limit);
	DELETE FROM hier_changes
	WHERE dir = 'u' AND seq > me.compacted_u AND seq <= upto_u;
	GET DIAGNOSTICS n1 = ROW_COUNT;
	DELETE FROM hier_changes
	WHERE dir = 'd' AND seq > me.compacted_d AND seq <= upto_d;
	GET DIAGNOSTICS n2 = ROW_COUNT;
	UPDATE hier_self SET
	    compacted_u = greatest(compacted_u, upto_u),
	    compacted_d = greatest(compacted_d, upto_d)
	WHERE compacted_u < upto_u OR compacted_d < upto_d;
	RETURN n1 + n2;
END
$$;
