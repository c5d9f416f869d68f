-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 016: events, the bulk of what flows up, for less at every server
-- (docs/HIERARCHY.md, "Cost of a record").
--
-- At their own server, events go into the outbox as their records, once,
-- in rows of HIER_BATCH_RECORDS: the form in which a middle server relays
-- a batch.  Before, each event had an outbox row of its own, and every
-- read joined the rows back to the events to write the records.  A read
-- takes such a row (and a relayed one) whole, in binary, and canopyd
-- numbers its records (hier_read_relay).
--
-- Applying them: an event's time comes as a timestamptz that canopyd read
-- (common/hrec.c, hrec_time: the form every server's JSON gives it), in
-- binary, where timestamptz_in was about a twelfth of a receiver's time.
-- A time in another form comes as text beside it (p_time_text), read here
-- as before, and refused as before when it is no time at all.  And the
-- columns are unnested in the select list, a row after another
-- (ProjectSet), where unnest() in FROM first copied each array into a
-- tuple store of its own; arrays of one length give the same rows.

DROP FUNCTION hier_apply_event(bigint, bigint, text[], text[], text[],
    text[], text[], text[], text[], text[], text[]);
DROP FUNCTION hier_event_rows(bigint, bigint, text[], text[], text[],
    text[], text[], text[], text[], text[], text[]);

CREATE FUNCTION hier_event_rows(p_link bigint, p_snap bigint, p_id text[],
    p_o text[], p_v text[], p_vs text[], p_device text[],
    p_severity text[], p_type text[], p_time timestamptz[],
    p_time_text text[], p_text text[])
RETURNS SETOF hier_events LANGUAGE sql STABLE AS $$
	SELECT r.id, r.o::uuid, r.v::bigint, p_link, p_snap,
	    coalesce(r.vs, 'main'), r.device, coalesce(r.severity, 'info'),
	    coalesce(r.type, ''),
	    coalesce(r.time, r.time_text::timestamptz, now()),
	    coalesce(r.text, ''), now()
	FROM (SELECT unnest(p_id) AS id, unnest(p_o) AS o, unnest(p_v) AS v,
	    unnest(p_vs) AS vs, unnest(p_device) AS device,
	    unnest(p_severity) AS severity, unnest(p_type) AS type,
	    unnest(p_time) AS time, unnest(p_time_text) AS time_text,
	    unnest(p_text) AS text) r
$$;

-- As 015's: a plain INSERT, and the upsert only for a batch that meets a
-- row this server has already.
CREATE FUNCTION hier_apply_event(p_link bigint, p_snap bigint,
    p_id text[], p_o text[], p_v text[], p_vs text[], p_device text[],
    p_severity text[], p_type text[], p_time timestamptz[],
    p_time_text text[], p_text text[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	BEGIN
		INSERT INTO hier_events SELECT * FROM hier_event_rows(p_link,
		    p_snap, p_id, p_o, p_v, p_vs, p_device, p_severity, p_type,
		    p_time, p_time_text, p_text);
		RETURN;
	EXCEPTION WHEN unique_violation THEN
		NULL;
	END;
	INSERT INTO hier_events AS h SELECT * FROM hier_event_rows(p_link,
	    p_snap, p_id, p_o, p_v, p_vs, p_device, p_severity, p_type, p_time,
	    p_time_text, p_text)
	ON CONFLICT (oid) DO UPDATE SET version = EXCLUDED.version,
	    snap = EXCLUDED.snap, vs = EXCLUDED.vs,
	    device_oid = EXCLUDED.device_oid, severity = EXCLUDED.severity,
	    type = EXCLUDED.type, time = EXCLUDED.time, text = EXCLUDED.text
	WHERE h.version <= EXCLUDED.version;
END
$$;

-- Rows of records written whole (relayed; a server's own events, below)
-- are read as they are stored: each row's records in one text[], sent in
-- binary, and canopyd writes each one's sequence number back
-- (db/q_hier.c).  hier_read cut a row into a row per record and wrote the
-- numbers in SQL.  One read takes consecutive such rows, up to p_limit
-- records (the first maybe from inside: the cursor may stop there), so
-- that small rows, a record or two, do not make batches of their own.
-- Nothing when the next change is not in such a row: then hier_read, as
-- before (it still reads them, a row at a time).  more: is there anything
-- after the row; each row is returned once the next one is known, so only
-- the last needs to look.
CREATE FUNCTION hier_read_relay(p_link bigint, p_after bigint,
    p_limit integer, OUT first bigint, OUT top bigint, OUT at_ms bigint,
    OUT more boolean, OUT recs text[])
RETURNS SETOF record LANGUAGE plpgsql STABLE AS $$
DECLARE
	d	"char";
	c	record;
	base	bigint;
	room	integer := p_limit;
	held	boolean := false;
BEGIN
	SELECT CASE l.role WHEN 'parent' THEN 'u' ELSE 'd' END INTO d
	FROM hier_links l WHERE l.id = p_link;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hier_read: no link %', p_link;
	END IF;
	IF p_limit < 1 THEN
		RETURN;
	END IF;
	FOR c IN SELECT h.seq, h.n, h.at, h.recs FROM hier_changes h
	    WHERE h.dir = d AND h.seq > p_after ORDER BY h.dir, h.seq LOOP
		EXIT WHEN c.n IS NULL;
		IF held THEN
			RETURN NEXT;	-- the row before: this one follows it
		END IF;
		-- the row owns the numbers base + 1 .. c.seq, one per record
		base := c.seq - c.n;
		first := greatest(p_after + 1, base + 1);
		top := least(c.seq, first + room - 1);
		recs := c.recs[first - base : top - base];
		at_ms := (extract(epoch FROM c.at) * 1000)::bigint;
		more := true;
		held := true;
		room := room - (top - first + 1)::integer;
		-- before the next row is fetched (and its records detoasted)
		EXIT WHEN room <= 0;
	END LOOP;
	IF held THEN
		more := EXISTS (SELECT 1 FROM hier_changes h WHERE h.dir = d
		    AND h.seq > top);
		RETURN NEXT;
	END IF;
END
$$;

-- HIER_BATCH_RECORDS (common/canopy_limits.h): the records of an outbox
-- row written here.  t_db checks that the two agree.
CREATE FUNCTION hier_batch_records() RETURNS integer LANGUAGE sql IMMUTABLE
PARALLEL SAFE AS 'SELECT 1000';

-- A statement's events, at or above the severity sent up, as records in
-- rows of hier_batch_records() (relayed rows' form: no "s", no opening
-- brace), numbered in the order of their ids as 009 numbered them, each
-- record's version its number.  The numbers are taken under the outbox
-- lock, as hier_log takes one.  The id, the device and the severity need
-- no escaping (a uuid, digits, one of four words); the rest is to_json's.
CREATE OR REPLACE FUNCTION hier_trg_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	lim	integer := (SELECT hier_sev_rank(up_min_severity) FROM hier_self);
	me	text;
	nr	bigint;
	first	bigint;
BEGIN
	IF NOT hier_has_links('u') OR NOT EXISTS (SELECT 1 FROM new_rows n
	    WHERE hier_sev_rank(n.severity) >= lim) THEN
		RETURN NULL;
	END IF;
	me := hier_me();
	PERFORM pg_advisory_xact_lock(7418930251);
	first := nextval('hier_seq');
	-- a row per hier_batch_records() events: no array of them all
	WITH e AS (
		SELECT n.id, n.device_id, n.severity, n.type, n.time, n.text,
		    vs.name AS vs, row_number() OVER (ORDER BY n.id) AS i
		FROM new_rows n JOIN vservers vs ON vs.id = n.vs_id
		WHERE hier_sev_rank(n.severity) >= lim),
	ins AS (
		INSERT INTO hier_changes (seq, dir, kind, op, oid, n, recs)
		SELECT first + max(e.i) - 1, 'u', 'event', 'u', '', count(*),
		    array_agg('"k" : "event", "op" : "u", "id" : "' || me
		    || '/' || e.id || '", "o" : "' || me || '", "v" : '
		    || (first + e.i - 1) || ', "d" : {"vs" : ' || to_json(e.vs)
		    || ', "device" : ' || coalesce('"' || me || '/'
		    || e.device_id || '"', 'null') || ', "severity" : "'
		    || e.severity || '", "type" : ' || to_json(e.type)
		    || ', "time" : ' || to_json(e.time) || ', "text" : '
		    || to_json(e.text) || '}}' ORDER BY e.i)
		FROM e GROUP BY (e.i - 1) / hier_batch_records()
		RETURNING n)
	SELECT sum(ins.n) INTO nr FROM ins;
	IF nr > 1 THEN
		PERFORM setval('hier_seq', first + nr - 1);
	END IF;
	PERFORM pg_notify('hier_changes', '');
	RETURN NULL;
END
$$;
