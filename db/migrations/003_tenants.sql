-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 003: virtual servers are isolated by row-level security as well as by
-- the data-access layer.  Each connection says whose rows it may see in
-- the setting canopy.vs_id: a virtual server's id, or 'system' for the
-- server's own work (agent sessions, schedulers, authentication).  Unset or
-- anything else: no rows at all, so a query that forgot its tenant returns
-- nothing of anyone.  FORCE makes it hold for the tables' owner too (a
-- superuser still bypasses it: run canopyd as an ordinary role).
--
-- Every later table with a vs_id column does the same:
--   ALTER TABLE t ENABLE ROW LEVEL SECURITY;
--   ALTER TABLE t FORCE ROW LEVEL SECURITY;
--   CREATE POLICY tenant ON t USING (canopy_tenant_ok(vs_id))
--       WITH CHECK (canopy_tenant_ok(vs_id));

CREATE FUNCTION canopy_tenant_ok(row_vs integer) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT CASE coalesce(current_setting('canopy.vs_id', true), '')
		WHEN 'system' THEN true
		WHEN '' THEN false
		ELSE row_vs::text = current_setting('canopy.vs_id', true)
	END
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['groups', 'devices', 'enrollment_tokens',
	    'admins', 'sessions', 'events', 'audit'] LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY tenant ON %I '
		    'USING (canopy_tenant_ok(vs_id)) '
		    'WITH CHECK (canopy_tenant_ok(vs_id))', t);
	END LOOP;
END
$$;

-- inventory and admin_roles have no vs_id of their own: through their
-- device and administrator.
ALTER TABLE inventory ENABLE ROW LEVEL SECURITY;
ALTER TABLE inventory FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON inventory USING (EXISTS (SELECT 1 FROM devices d
	WHERE d.id = inventory.device_id));
ALTER TABLE admin_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON admin_roles USING (EXISTS (SELECT 1 FROM admins a
	WHERE a.id = admin_roles.admin_id));
