-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 012: IP ranges and what their scans found (directory/scan.c).

-- range: the canonical text of common/iprange.c ("10.0.0.0/24" or
-- "10.0.0.5-10.0.0.80"); interval_s NULL scans only on demand.
-- state: idle, queued (asked for, waiting for a slot), scanning, failed.
CREATE TABLE ip_ranges (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text NOT NULL,
	range		text NOT NULL,
	interval_s	integer CHECK (interval_s > 0),
	tcp_ports	integer[] NOT NULL DEFAULT '{}',
	rate_pps	integer CHECK (rate_pps > 0),	-- NULL: SCAN_RATE_PPS
	concurrency	integer CHECK (concurrency > 0),	-- NULL: SCAN_CONCURRENCY
	state		text NOT NULL DEFAULT 'idle'
			CHECK (state IN ('idle', 'queued', 'scanning', 'failed')),
	last_scan	timestamptz,
	next_scan	timestamptz,
	last_error	text,
	alive		integer NOT NULL DEFAULT 0,
	scanned		integer NOT NULL DEFAULT 0,
	duration_ms	integer,
	created		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vs_id, name)
);
CREATE INDEX ip_ranges_due ON ip_ranges (next_scan)
	WHERE interval_s IS NOT NULL;

-- The hosts the last scan of a range found alive.
CREATE TABLE ip_scan_hosts (
	range_id	bigint NOT NULL REFERENCES ip_ranges ON DELETE CASCADE,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	ip		text NOT NULL,
	dns_name	text,
	icmp		boolean NOT NULL DEFAULT false,
	tcp_ports	integer[] NOT NULL DEFAULT '{}',
	device_id	uuid REFERENCES devices ON DELETE SET NULL,
	seen		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (range_id, ip)
);

ALTER TABLE ip_ranges ENABLE ROW LEVEL SECURITY;
ALTER TABLE ip_ranges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ip_ranges USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
ALTER TABLE ip_scan_hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ip_scan_hosts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ip_scan_hosts USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));

-- Stores one scan's result: hosts is [{"ip","name"?,"icmp","ports":[…]}].
-- Each host merges with the device already known by that address or DNS
-- name (one device, several sources: its source stays, last_visible moves)
-- or becomes a new device in the unassigned pool with source 'ipscan',
-- where the moving rules (srv/rules.c) may place it.  Returns the number
-- of new devices.
CREATE FUNCTION canopy_ipscan_save(vs integer, rid bigint, hosts jsonb,
    scanned integer, ms integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	h	jsonb;
	a	text;
	n	text;
	dev	uuid;
	pool	bigint;
	created	integer := 0;
BEGIN
	-- Deleted while it was being scanned: nothing to keep.
	PERFORM 1 FROM ip_ranges WHERE id = rid AND vs_id = vs FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	SELECT id INTO pool FROM groups WHERE vs_id = vs AND kind = 'unassigned';
	DELETE FROM ip_scan_hosts WHERE range_id = rid;
	FOR h IN SELECT * FROM jsonb_array_elements(hosts) LOOP
		a := h->>'ip';
		n := nullif(lower(rtrim(h->>'name', '.')), '');
		SELECT d.id INTO dev FROM devices d
		 WHERE d.vs_id = vs AND ((n IS NOT NULL AND lower(d.fqdn) = n)
		  OR EXISTS (SELECT 1 FROM unnest(d.ip) x
		   WHERE split_part(x, '/', 1) = a))
		 ORDER BY (n IS NOT NULL AND lower(d.fqdn) = n) AND EXISTS
		   (SELECT 1 FROM unnest(d.ip) x WHERE split_part(x, '/', 1) = a)
		   DESC, (n IS NOT NULL AND lower(d.fqdn) = n) DESC,
		   d.source = 'ipscan', d.first_seen
		 LIMIT 1;
		IF dev IS NULL THEN
			INSERT INTO devices (vs_id, group_id, name, fqdn, ip,
			    source, last_visible)
			VALUES (vs, pool, coalesce(split_part(n, '.', 1), a), n,
			    ARRAY[a], 'ipscan', now())
			RETURNING id INTO dev;
			created := created + 1;
		ELSE
			UPDATE devices SET last_visible = now(),
			    fqdn = coalesce(fqdn, n),
			    ip = CASE WHEN EXISTS (SELECT 1 FROM unnest(ip) x
				WHERE split_part(x, '/', 1) = a) THEN ip
				ELSE ip || a END
			 WHERE id = dev;
		END IF;
		INSERT INTO ip_scan_hosts (range_id, vs_id, ip, dns_name, icmp,
		    tcp_ports, device_id)
		VALUES (rid, vs, a, n, coalesce((h->>'icmp')::boolean, false),
		    ARRAY(SELECT jsonb_array_elements_text(
			coalesce(h->'ports', '[]'))::integer), dev);
	END LOOP;
	UPDATE ip_ranges SET state = 'idle', last_scan = now(),
	    next_scan = CASE WHEN interval_s IS NULL THEN NULL
		ELSE now() + interval '1 second' * interval_s END,
	    last_error = NULL, alive = jsonb_array_length(hosts),
	    scanned = canopy_ipscan_save.scanned, duration_ms = ms
	 WHERE id = rid AND vs_id = vs;
	RETURN created;
END
$$;
