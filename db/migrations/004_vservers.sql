-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 004: virtual servers are created and deleted through the API.  Ids come
-- from a sequence starting at 1 (0 stays "main"); a new virtual server gets
-- its own "Managed devices" root and "Unassigned devices" pool at once, by
-- a trigger, so no path can make a tenant without them.  Deleting one takes
-- everything of it along (ON DELETE CASCADE from every vs_id).

CREATE SEQUENCE vservers_id_seq AS integer START 1 OWNED BY vservers.id;
ALTER TABLE vservers ALTER COLUMN id SET DEFAULT nextval('vservers_id_seq');
ALTER TABLE vservers ADD CONSTRAINT vservers_name_ok
	CHECK (name ~ '^[A-Za-z0-9._-]{1,63}$');

CREATE FUNCTION canopy_vserver_groups() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO groups (vs_id, parent, name, kind)
		VALUES (NEW.id, NULL, 'Managed devices', 'root'),
		       (NEW.id, NULL, 'Unassigned devices', 'unassigned');
	RETURN NEW;
END
$$;
CREATE TRIGGER vservers_groups AFTER INSERT ON vservers
	FOR EACH ROW EXECUTE FUNCTION canopy_vserver_groups();

-- A tenant sees its own virtual server only: other tenants never appear,
-- not even by name.  Foreign-key checks and cascades bypass this.
ALTER TABLE vservers ENABLE ROW LEVEL SECURITY;
ALTER TABLE vservers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON vservers USING (canopy_tenant_ok(id))
	WITH CHECK (canopy_tenant_ok(id));
