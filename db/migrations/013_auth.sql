-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- Kerberos SSO, role mappings and TOTP (issue 6).

-- The uploaded keytab, sealed with the master key (purpose "keytab").  One
-- per physical server: the service principal is the server's own.
CREATE TABLE kerberos_keytab (
	id		integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
	sealed		text NOT NULL,
	principals	text[] NOT NULL,
	updated		timestamptz NOT NULL DEFAULT now(),
	updated_by	text
);

-- A directory group (engineer D's directory_objects, matched by DN or
-- name at login, so a re-imported group keeps its mappings) to a role.
CREATE TABLE role_mappings (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	directory_group	text NOT NULL,
	role		text NOT NULL
			CHECK (role IN ('administrator', 'operator', 'auditor')),
	scope_group	bigint REFERENCES groups ON DELETE CASCADE,
	created		timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX role_mappings_uniq ON role_mappings (vs_id,
	lower(directory_group), role, coalesce(scope_group, 0));
ALTER TABLE role_mappings ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_mappings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON role_mappings USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));

-- Roles a mapping granted are replaced at every Kerberos login.
ALTER TABLE admin_roles ADD COLUMN from_mapping boolean NOT NULL
	DEFAULT false;
ALTER TABLE admins ADD COLUMN mapped boolean NOT NULL DEFAULT false;

-- TOTP (RFC 6238): the confirmed secret and the one being enrolled, both
-- sealed (purpose "totp"); the last time step used, so no code works twice.
ALTER TABLE admins ADD COLUMN totp_sealed text;
ALTER TABLE admins ADD COLUMN totp_pending text;
ALTER TABLE admins ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;
