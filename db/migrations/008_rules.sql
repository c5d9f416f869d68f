-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 008: device status from status rules, moving rules, event retention.

-- Why a device is not ok: [{rule, severity, text}], written by srv/rules.c.
-- last_visible: when discovery (not the agent) last saw the device.
-- placed: a moving rule has put the device into a group.  place_fp: the
-- fingerprint of the attributes and rule set the rules last looked at, so
-- a device is evaluated again only when one of them changes.
-- fs_*: the fullest filesystem of the last inventory, kept here so that a
-- round reads no inventory that has not changed.
ALTER TABLE devices
	ADD COLUMN status_reasons jsonb NOT NULL DEFAULT '[]',
	ADD COLUMN last_visible	timestamptz,
	ADD COLUMN ou_dn	text,
	ADD COLUMN placed	boolean NOT NULL DEFAULT false,
	ADD COLUMN place_fp	text,
	ADD COLUMN fs_pct	numeric,
	ADD COLUMN fs_mount	text,
	ADD COLUMN fs_checked	timestamptz;

-- Retention prunes by age.
CREATE INDEX events_time ON events (time);

CREATE TABLE status_rules (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text NOT NULL,
	-- not_seen {hours}: the agent has not been heard from;
	-- not_visible {hours}: neither the agent nor discovery saw it;
	-- agent_event {min_severity, hours}: the agent reported such an event;
	-- disk_full {percent}: a filesystem is at least this full.
	kind		text NOT NULL CHECK (kind IN ('not_seen', 'not_visible',
			    'agent_event', 'disk_full')),
	severity	text NOT NULL CHECK (severity IN ('warning', 'critical')),
	params		jsonb NOT NULL DEFAULT '{}',
	enabled		boolean NOT NULL DEFAULT true,
	ord		integer NOT NULL DEFAULT 0,
	created		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vs_id, name)
);

CREATE TABLE moving_rules (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text NOT NULL,
	ord		integer NOT NULL,
	group_id	bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
	-- {ip_cidr?, dns_suffix?, ou_dn?, os?, source?}: all given must hold.
	match		jsonb NOT NULL DEFAULT '{}',
	mode		text NOT NULL DEFAULT 'once'
			CHECK (mode IN ('once', 'always')),
	enabled		boolean NOT NULL DEFAULT true,
	created		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vs_id, name)
);
CREATE INDEX moving_rules_vs ON moving_rules (vs_id, ord, id);

ALTER TABLE status_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON status_rules USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
ALTER TABLE moving_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE moving_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON moving_rules USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));

CREATE FUNCTION canopy_sev_rank(s text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE s WHEN 'info' THEN 0 WHEN 'warning' THEN 1
	    WHEN 'error' THEN 2 WHEN 'critical' THEN 3 ELSE 0 END
$$;

-- Whether any of the addresses lies in cidr.  Addresses are what agents
-- sent: one that does not parse matches nothing rather than failing the
-- round for everyone.
CREATE FUNCTION canopy_ips_in(ips text[], cidr text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	x	text;
	net	inet;
BEGIN
	BEGIN
		net := cidr::inet;
	EXCEPTION WHEN others THEN
		RETURN false;
	END;
	FOREACH x IN ARRAY coalesce(ips, '{}'::text[]) LOOP
		BEGIN
			IF x::inet <<= net THEN
				RETURN true;
			END IF;
		EXCEPTION WHEN others THEN
			NULL;
		END;
	END LOOP;
	RETURN false;
END
$$;

-- Kaspersky Security Center's defaults.  Runs as 'system' so that whoever
-- creates a virtual server (in their own tenant) also seeds the new one.
CREATE FUNCTION canopy_status_rules_seed(vs integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	old	text := current_setting('canopy.vs_id', true);
BEGIN
	-- As 'system' for this statement only (set_config, not a SET clause,
	-- which would need GRANT SET ON PARAMETER for canopyd's role).
	PERFORM set_config('canopy.vs_id', 'system', true);
	INSERT INTO status_rules (vs_id, name, kind, severity, params, ord)
	VALUES
	(vs, 'Not seen for 1 day', 'not_seen', 'warning', '{"hours":24}', 10),
	(vs, 'Not seen for 7 days', 'not_seen', 'critical', '{"hours":168}', 20),
	(vs, 'Not visible for 7 days', 'not_visible', 'critical',
	    '{"hours":168}', 30),
	(vs, 'Agent error event', 'agent_event', 'warning',
	    '{"min_severity":"error","hours":24}', 40),
	(vs, 'Agent critical event', 'agent_event', 'critical',
	    '{"min_severity":"critical","hours":24}', 50),
	(vs, 'Disk nearly full', 'disk_full', 'warning', '{"percent":90}', 60),
	(vs, 'Disk full', 'disk_full', 'critical', '{"percent":97}', 70)
	ON CONFLICT (vs_id, name) DO NOTHING;
	PERFORM set_config('canopy.vs_id', coalesce(old, ''), true);
END
$$;

CREATE FUNCTION canopy_status_rules_seed_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM canopy_status_rules_seed(NEW.id);
	RETURN NULL;
END
$$;
CREATE TRIGGER status_rules_seed AFTER INSERT ON vservers
	FOR EACH ROW EXECUTE FUNCTION canopy_status_rules_seed_trigger();

DO $$
DECLARE
	old	text := current_setting('canopy.vs_id', true);
BEGIN
	PERFORM set_config('canopy.vs_id', 'system', true);
	PERFORM canopy_status_rules_seed(id) FROM vservers;
	PERFORM set_config('canopy.vs_id', coalesce(old, ''), true);
END
$$;
