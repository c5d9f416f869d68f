-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 011: LDAP directory sources (directory/), the objects they hold and the
-- transitive membership of users in groups (read by Kerberos role
-- mappings), and the columns that tie devices to directory computers.

CREATE TABLE directory_sources (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text NOT NULL,
	flavor		text NOT NULL CHECK (flavor IN ('ad', 'samba',
			    'freeipa', 'aldpro', 'openldap')),
	url		text NOT NULL,
	base_dn		text NOT NULL,
	bind_method	text NOT NULL CHECK (bind_method IN ('simple',
			    'gssapi')),
	bind_dn		text,
	-- seal_encrypt(master key, "ldap-bind" | "keytab", ...): never
	-- returned by the API.
	bind_secret	text,
	principal	text,
	keytab_sealed	text,
	starttls	boolean NOT NULL DEFAULT false,
	tls_verify	boolean NOT NULL DEFAULT true,
	ca_file		text,
	realm		text,
	interval_s	integer NOT NULL DEFAULT 3600,
	-- idle | polling | ok | error
	state		text NOT NULL DEFAULT 'idle',
	poll_requested	boolean NOT NULL DEFAULT true,
	-- which canopyd process is polling it (state 'polling')
	poll_owner	text,
	full_requested	boolean NOT NULL DEFAULT true,
	last_poll	timestamptz,
	last_full	timestamptz,
	last_error	text,
	last_fetched	bigint NOT NULL DEFAULT 0,
	-- the whole poll, and its LDAP part (connect, bind, searches)
	last_ms		bigint NOT NULL DEFAULT 0,
	last_ldap_ms	bigint NOT NULL DEFAULT 0,
	last_kind	text,
	-- AD/Samba: highestCommittedUSN; others: newest modifyTimestamp or
	-- entryUSN seen.  Text so that either fits.
	mark		text,
	polls		bigint NOT NULL DEFAULT 0,
	created		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vs_id, name)
);

CREATE TABLE directory_objects (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	source_id	bigint NOT NULL REFERENCES directory_sources
			    ON DELETE CASCADE,
	type		text NOT NULL CHECK (type IN ('computer', 'user',
			    'group', 'ou')),
	dn		text NOT NULL,
	-- dn lower-cased without spaces around separators: what member and
	-- memberOf values are matched against.
	ndn		text NOT NULL,
	guid		text NOT NULL,
	name		text NOT NULL,
	principal	text,
	gone		boolean NOT NULL DEFAULT false,
	disabled	boolean NOT NULL DEFAULT false,
	fqdn		text,
	os		text,
	os_version	text,
	sid		text,
	parent_dn	text,
	-- direct members' and memberOf DNs, lower-cased, as read.
	member_dns	text[] NOT NULL DEFAULT '{}',
	member_of	text[] NOT NULL DEFAULT '{}',
	changed		text,
	first_seen	timestamptz NOT NULL DEFAULT now(),
	updated		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (source_id, guid)
);
CREATE INDEX directory_objects_list ON directory_objects
	(vs_id, source_id, type, name, id);
CREATE INDEX directory_objects_ndn ON directory_objects (source_id, ndn);

CREATE TABLE directory_members (
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	group_id	bigint NOT NULL REFERENCES directory_objects
			    ON DELETE CASCADE,
	member_id	bigint NOT NULL REFERENCES directory_objects
			    ON DELETE CASCADE,
	PRIMARY KEY (group_id, member_id)
);
CREATE INDEX directory_members_member ON directory_members (member_id);

-- A device found in a directory: its computer object's GUID, whether the
-- account is disabled or gone from the directory.
ALTER TABLE devices
	ADD COLUMN directory_guid	text,
	ADD COLUMN directory_source	bigint REFERENCES directory_sources
					    ON DELETE SET NULL,
	ADD COLUMN directory_disabled	boolean NOT NULL DEFAULT false,
	ADD COLUMN directory_gone	boolean NOT NULL DEFAULT false;
CREATE INDEX devices_directory_guid ON devices (vs_id, directory_guid)
	WHERE directory_guid IS NOT NULL;
CREATE INDEX devices_fqdn ON devices (vs_id, lower(fqdn))
	WHERE fqdn IS NOT NULL;

ALTER TABLE directory_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE directory_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON directory_sources USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
ALTER TABLE directory_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE directory_objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON directory_objects USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
ALTER TABLE directory_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE directory_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON directory_members USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
