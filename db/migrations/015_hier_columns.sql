-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 015: a batch arrives as columns (docs/HIERARCHY.md, "Cost of a record").
--
-- 014's hier_apply took the batch as jsonb: PostgreSQL parsed every record
-- (about 7 us each), checked its shape in SQL, read each field with ->>
-- and built the json a middle server relays.  Now canopyd parses and
-- checks the records (common/hrec.c) and hands over, for each kind, one
-- text[] per mirror column in the binary format (no quoting to undo), the
-- relayed records as they will go on up, and what only the database can
-- check: the origins, and the server records announcing new ones.  One
-- transaction, in this order (db/q_hier.c):
--
--   hier_apply_link    the link, locked; its cursor and snapshot
--   hier_apply_check   who owns each origin
--   hier_apply_del     deletions, a kind at a time
--   hier_apply_<kind>  upserts, a kind at a time, last version wins
--   hier_apply_end     the relayed rows, the cursor, the lag
--
-- The upserts' casts and defaults are 014's, field for field.

DROP FUNCTION hier_apply(bigint, jsonb, bigint, integer, double precision);

-- The events' mirror, the largest by far, loses its index by link: one
-- index insert less per event applied.  Only a link's removal and the end
-- of a snapshot from it look its rows up by link, and they are rare enough
-- to scan the table instead.
DROP INDEX hier_events_link;

-- Mirrored events age as the server's own do (db/q_rules.c): by when this
-- server stored them, not by the device's clock.  Nothing aged them
-- before; the index by the device's time served no query.  Rows come in
-- the order they are stored, so a BRIN index finds the old ones: a few
-- pages for millions of rows, and nearly nothing to do per row inserted,
-- where a B-tree takes a descent and an entry for every event.
ALTER TABLE hier_events ADD COLUMN received timestamptz NOT NULL
    DEFAULT now();
DROP INDEX hier_events_time;
CREATE INDEX hier_events_received ON hier_events USING brin (received);

CREATE FUNCTION hier_apply_link(p_link bigint, OUT role text,
    OUT rx_seq bigint, OUT rx_snap bigint, OUT relay boolean, OUT me text)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT l.role, l.rx_seq, l.rx_snap INTO role, rx_seq, rx_snap
	FROM hier_links l WHERE l.id = p_link FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the link no longer exists';
	END IF;
	-- a middle server relays what comes from below
	relay := role = 'child' AND hier_has_links('u');
	me := hier_me();
END
$$;

-- Ownership: up, every origin is the child or a server below it (known,
-- or announced in this very batch by a server below it); down, no origin
-- is this server or below it.  p_ids: the first record of each origin,
-- for the message.  p_relay: the mirrors' upward triggers stay quiet for
-- the rest of the transaction (hier_apply_end relays the batch).
CREATE FUNCTION hier_apply_check(p_link bigint, p_relay boolean,
    p_origins text[], p_ids text[], p_srv_o text[], p_srv_parent text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	l	hier_links;
	bad_id	text;
	bad_o	text;
	bad_l	bigint;
BEGIN
	SELECT * INTO l FROM hier_links WHERE id = p_link;
	IF l.role = 'child' THEN
		WITH RECURSIVE ok(u) AS (
			SELECT l.peer_uuid::text
			UNION
			SELECT h.uuid::text FROM hier_servers h
			WHERE h.link_id = p_link
			UNION
			SELECT s.o FROM unnest(p_srv_o, p_srv_parent) s(o, parent)
			JOIN ok ON s.parent = ok.u)
		SELECT x.id, x.o INTO bad_id, bad_o
		FROM unnest(p_origins, p_ids) WITH ORDINALITY x(o, id, i)
		WHERE x.o NOT IN (SELECT u FROM ok WHERE u IS NOT NULL)
		ORDER BY x.i LIMIT 1;
		IF bad_id IS NOT NULL THEN
			RAISE EXCEPTION 'record %: forged origin: server % is not '
			    'below link %', bad_id, bad_o, l.name;
		END IF;
		SELECT x.o, h.link_id INTO bad_o, bad_l
		FROM unnest(p_origins) x(o)
		JOIN hier_servers h ON h.uuid = x.o::uuid
		WHERE h.link_id <> p_link LIMIT 1;
		IF bad_o IS NOT NULL THEN
			RAISE EXCEPTION 'server % already belongs to another link '
			    '(%)', bad_o, bad_l;
		END IF;
	ELSE
		SELECT x.id, x.o INTO bad_id, bad_o
		FROM unnest(p_origins, p_ids) WITH ORDINALITY x(o, id, i)
		WHERE x.o::uuid IN (SELECT uuid FROM hier_servers)
		ORDER BY x.i LIMIT 1;
		IF bad_id IS NOT NULL THEN
			RAISE EXCEPTION 'record %: forged origin: server % is below '
			    'this one, not above', bad_id, bad_o;
		END IF;
	END IF;
	IF p_relay THEN
		PERFORM set_config('canopy.hier_relay', 'on', true);
	END IF;
END
$$;

CREATE FUNCTION hier_apply_del(p_link bigint, p_kind text, p_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DELETE FROM %I h WHERE h.oid = ANY ($1) '
	    'AND h.link_id = $2', hier_mirror(p_kind)) USING p_ids, p_link;
	IF p_kind = 'task' THEN
		-- a task deleted above stops here too
		UPDATE tasks SET cancelled = now(), next_run = NULL
		WHERE hier_oid = ANY (p_ids) AND cancelled IS NULL;
	END IF;
END
$$;

CREATE FUNCTION hier_apply_server(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_name text[], p_parent text[],
    p_level text[], p_status text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	INSERT INTO hier_servers AS h (oid, uuid, origin, version, link_id,
	    snap, name, parent_uuid, level, status)
	SELECT r.id, r.o::uuid, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.name, ''), r.parent::uuid, r.level::integer,
	    coalesce(r.status::jsonb, '{}')
	FROM unnest(p_id, p_o, p_v, p_name, p_parent, p_level, p_status)
	    r(id, o, v, name, parent, level, status)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, name = EXCLUDED.name,
	    parent_uuid = EXCLUDED.parent_uuid, level = EXCLUDED.level,
	    status = EXCLUDED.status
	WHERE h.version <= EXCLUDED.version;
END
$$;

CREATE FUNCTION hier_apply_group(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_vs text[], p_path text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	INSERT INTO hier_groups AS h (oid, origin, version, link_id, snap, vs,
	    path)
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.vs, 'main'), coalesce(r.path, '')
	FROM unnest(p_id, p_o, p_v, p_vs, p_path) r(id, o, v, vs, path)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, vs = EXCLUDED.vs, path = EXCLUDED.path
	WHERE h.version <= EXCLUDED.version;
END
$$;

CREATE FUNCTION hier_apply_device(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_vs text[], p_name text[],
    p_fqdn text[], p_ip text[], p_mac text[], p_os text[], p_group text[],
    p_status text[], p_source text[], p_first text[], p_last text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	INSERT INTO hier_devices AS h (oid, origin, version, link_id, snap,
	    vs, name, fqdn, ip, mac, os, group_path, status, source,
	    first_seen, last_seen)
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.vs, 'main'), coalesce(r.name, ''), r.fqdn,
	    hier_jarr(r.ip::jsonb), hier_jarr(r.mac::jsonb), r.os, r.grp,
	    coalesce(r.status, 'ok'), r.source, r.first::timestamptz,
	    r.last::timestamptz
	FROM unnest(p_id, p_o, p_v, p_vs, p_name, p_fqdn, p_ip, p_mac, p_os,
	    p_group, p_status, p_source, p_first, p_last)
	    r(id, o, v, vs, name, fqdn, ip, mac, os, grp, status, source,
	    first, last)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, vs = EXCLUDED.vs, name = EXCLUDED.name,
	    fqdn = EXCLUDED.fqdn, ip = EXCLUDED.ip, mac = EXCLUDED.mac,
	    os = EXCLUDED.os, group_path = EXCLUDED.group_path,
	    status = EXCLUDED.status, source = EXCLUDED.source,
	    first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen
	WHERE h.version <= EXCLUDED.version;
END
$$;

-- Events are written once at their origin and never change: a stream's
-- are new here but for a snapshot's, or a batch sent again.  So they go in
-- by a plain INSERT, which skips the upsert's probe of the key before each
-- row, and only a batch that meets a row it already has is applied again
-- as an upsert (the subtransaction undoes the plain INSERT's rows).
CREATE FUNCTION hier_event_rows(p_link bigint, p_snap bigint, p_id text[],
    p_o text[], p_v text[], p_vs text[], p_device text[],
    p_severity text[], p_type text[], p_time text[], p_text text[])
RETURNS SETOF hier_events LANGUAGE sql STABLE AS $$
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.vs, 'main'), r.device, coalesce(r.severity, 'info'),
	    coalesce(r.type, ''), coalesce(r.time::timestamptz, now()),
	    coalesce(r.text, ''), now()
	FROM unnest(p_id, p_o, p_v, p_vs, p_device, p_severity, p_type,
	    p_time, p_text) r(id, o, v, vs, device, severity, type, time, text)
$$;

CREATE FUNCTION hier_apply_event(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_vs text[], p_device text[],
    p_severity text[], p_type text[], p_time text[], p_text text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	BEGIN
		INSERT INTO hier_events SELECT * FROM hier_event_rows(p_link,
		    p_snap, p_id, p_o, p_v, p_vs, p_device, p_severity, p_type,
		    p_time, p_text);
		RETURN;
	EXCEPTION WHEN unique_violation THEN
		NULL;
	END;
	INSERT INTO hier_events AS h SELECT * FROM hier_event_rows(p_link,
	    p_snap, p_id, p_o, p_v, p_vs, p_device, p_severity, p_type, p_time,
	    p_text)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, vs = EXCLUDED.vs,
	    device_oid = EXCLUDED.device_oid, severity = EXCLUDED.severity,
	    type = EXCLUDED.type, time = EXCLUDED.time, text = EXCLUDED.text
	WHERE h.version <= EXCLUDED.version;
END
$$;

CREATE FUNCTION hier_apply_task_result(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_task text[], p_device text[],
    p_device_name text[], p_state text[], p_finished text[],
    p_exit_code text[], p_output text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	INSERT INTO hier_task_results AS h (oid, origin, version, link_id,
	    snap, task_oid, device_oid, device_name, state, finished,
	    exit_code, output)
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.task, ''), coalesce(r.device, ''), r.device_name,
	    coalesce(r.state, 'pending'), r.finished::timestamptz,
	    r.exit_code::integer, r.output
	FROM unnest(p_id, p_o, p_v, p_task, p_device, p_device_name, p_state,
	    p_finished, p_exit_code, p_output)
	    r(id, o, v, task, device, device_name, state, finished, exit_code,
	    output)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, task_oid = EXCLUDED.task_oid,
	    device_oid = EXCLUDED.device_oid,
	    device_name = EXCLUDED.device_name, state = EXCLUDED.state,
	    finished = EXCLUDED.finished, exit_code = EXCLUDED.exit_code,
	    output = EXCLUDED.output
	WHERE h.version <= EXCLUDED.version;
END
$$;

CREATE FUNCTION hier_apply_policy(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_server text[], p_level text[],
    p_group text[], p_gdepth text[], p_name text[], p_product text[],
    p_revision text[], p_settings text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	INSERT INTO hier_policies AS h (oid, origin, version, link_id, snap,
	    server, level, group_path, gdepth, name, product, revision,
	    settings)
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.server, ''), coalesce(r.level::integer, 0),
	    coalesce(r.grp, ''), coalesce(r.gdepth::integer, 0),
	    coalesce(r.name, ''), coalesce(r.product, ''),
	    coalesce(r.revision::integer, 1), coalesce(r.settings::jsonb, '{}')
	FROM unnest(p_id, p_o, p_v, p_server, p_level, p_group, p_gdepth,
	    p_name, p_product, p_revision, p_settings)
	    r(id, o, v, server, level, grp, gdepth, name, product, revision,
	    settings)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, server = EXCLUDED.server,
	    level = EXCLUDED.level, group_path = EXCLUDED.group_path,
	    gdepth = EXCLUDED.gdepth, name = EXCLUDED.name,
	    product = EXCLUDED.product, revision = EXCLUDED.revision,
	    settings = EXCLUDED.settings
	WHERE h.version <= EXCLUDED.version;
END
$$;

-- Tasks from above: mirrored, then run here over the whole of main (a
-- cancelled one stops here too).
CREATE FUNCTION hier_apply_task(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_server text[], p_name text[],
    p_type text[], p_params text[], p_schedule text[], p_at text[],
    p_every text[], p_expires text[], p_cancelled text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	UPDATE tasks SET cancelled = now(), next_run = NULL
	WHERE hier_oid IN (SELECT r.id FROM unnest(p_id, p_cancelled)
	    r(id, cancelled) WHERE r.cancelled IS NOT NULL)
	    AND cancelled IS NULL;
	INSERT INTO hier_tasks AS h (oid, origin, version, link_id, snap,
	    server, name, type, params, schedule, at, every_s, expires_s,
	    cancelled)
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.server, ''), r.name, coalesce(r.type, ''),
	    coalesce(r.params::jsonb, '{}'), coalesce(r.schedule, 'now'),
	    r.at::timestamptz, r.every::integer, r.expires::integer,
	    r.cancelled::timestamptz
	FROM unnest(p_id, p_o, p_v, p_server, p_name, p_type, p_params,
	    p_schedule, p_at, p_every, p_expires, p_cancelled)
	    r(id, o, v, server, name, type, params, schedule, at, every,
	    expires, cancelled)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, server = EXCLUDED.server,
	    name = EXCLUDED.name, type = EXCLUDED.type,
	    params = EXCLUDED.params, schedule = EXCLUDED.schedule,
	    at = EXCLUDED.at, every_s = EXCLUDED.every_s,
	    expires_s = EXCLUDED.expires_s, cancelled = EXCLUDED.cancelled
	WHERE h.version <= EXCLUDED.version;
	INSERT INTO tasks (vs_id, name, type, group_id, recursive, params,
	    schedule, at, every_s, next_run, expires_s, created_by, hier_oid)
	SELECT 0, h.name, h.type, (SELECT g.id FROM groups g
	    WHERE g.vs_id = 0 AND g.kind = 'root'), true, h.params,
	    h.schedule, h.at,
	    CASE WHEN h.schedule = 'every' THEN greatest(h.every_s, 60) END,
	    CASE WHEN h.schedule = 'at' THEN coalesce(h.at, now())
		ELSE now() END,
	    h.expires_s, 'server ' || h.server, h.oid
	FROM hier_tasks h
	WHERE h.oid = ANY (p_id) AND h.cancelled IS NULL
	    AND h.type IN ('inventory_refresh', 'run_command')
	    AND h.schedule IN ('now', 'at', 'every')
	ON CONFLICT (hier_oid) DO NOTHING;
END
$$;

-- The end of a batch: the relayed records (p_relay, for a middle server:
-- a range of sequence numbers, one per record, in rows of p_relay_max
-- records at most, each taking the last of its range, under the outbox
-- lock as hier_log), then the cursor and the lag (a stream batch).
CREATE FUNCTION hier_apply_end(p_link bigint, p_last bigint,
    p_lag double precision, p_relay_max integer, p_relay text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	nr	integer := coalesce(cardinality(p_relay), 0);
	first	bigint;
BEGIN
	IF p_relay IS NOT NULL THEN
		PERFORM set_config('canopy.hier_relay', 'off', true);
	END IF;
	IF nr > 0 THEN
		PERFORM pg_advisory_xact_lock(7418930251);
		first := nextval('hier_seq');
		IF nr > 1 THEN
			PERFORM setval('hier_seq', first + nr - 1);
		END IF;
		INSERT INTO hier_changes (seq, dir, kind, op, oid, n, recs)
		SELECT first + least((g + 1) * p_relay_max, nr) - 1, 'u',
		    'relay', 'u', '', least(p_relay_max, nr - g * p_relay_max),
		    p_relay[g * p_relay_max + 1 : (g + 1) * p_relay_max]
		FROM generate_series(0, (nr - 1) / p_relay_max) g;
		PERFORM pg_notify('hier_changes', '');
	END IF;
	IF p_last IS NOT NULL THEN
		UPDATE hier_links SET rx_seq = p_last, last_seen = now(),
		    lag_s = p_lag WHERE id = p_link;
	END IF;
END
$$;

-- Relayed records are stored without their opening brace, which hier_read
-- writes back before the number: 014's substr(t, 2) counted the
-- characters of every record (the database's encoding being multibyte).
-- A server's own events, the bulk of what a leaf sends, are written by
-- concatenation: json_build_object looks up the type of each of its
-- arguments at every call (8 us a record against 5; the same text).
-- hier_read is otherwise 014's: its text is edited, not repeated here.
DO $$
DECLARE
	src	text := pg_get_functiondef(
	    'hier_read(bigint, bigint, integer)'::regprocedure);
	ev	text := $e$json_build_object('s', k.s, 'k', 'event',
			'op', 'u', 'id', k.i, 'o', me, 'v', k.s,
			'd', hier_d_event(e, vs.name, me))::text$e$;
BEGIN
	IF position('substr(x.t, 2)' IN src) = 0 OR
	    position(ev IN src) = 0 THEN
		RAISE EXCEPTION '015: hier_read is not the one 014 made';
	END IF;
	src := replace(src, 'substr(x.t, 2)', 'x.t');
	src := replace(src, ev, $e$'{"s" : ' || k.s
			|| ', "k" : "event", "op" : "u", "id" : '
			|| to_json(k.i) || ', "o" : "' || me || '", "v" : '
			|| k.s || ', "d" : {"vs" : ' || to_json(vs.name)
			|| ', "device" : ' || coalesce(to_json(me || '/'
			|| e.device_id)::text, 'null') || ', "severity" : '
			|| to_json(e.severity) || ', "type" : '
			|| to_json(e.type) || ', "time" : ' || to_json(e.time)
			|| ', "text" : ' || to_json(e.text) || '}}'$e$);
	EXECUTE src;
END
$$;
-- rows relayed before this migration, in 015's form
UPDATE hier_changes SET recs = ARRAY(SELECT substr(t, 2) FROM unnest(recs) t)
WHERE n IS NOT NULL;
