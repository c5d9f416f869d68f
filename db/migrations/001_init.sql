-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 001: the foundation.  Released migrations are never edited.

CREATE TABLE vservers (
	id		integer PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	created		timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vservers (id, name) VALUES (0, 'main');

-- Administration groups: a tree per virtual server.  kind 'root' is
-- "Managed devices", 'unassigned' the pool beside it.
CREATE TABLE groups (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	parent		bigint REFERENCES groups ON DELETE RESTRICT,
	name		text NOT NULL,
	kind		text NOT NULL DEFAULT 'normal'
			CHECK (kind IN ('root', 'unassigned', 'normal')),
	created		timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_name ON groups (vs_id, coalesce(parent, 0), name);
INSERT INTO groups (vs_id, parent, name, kind)
	VALUES (0, NULL, 'Managed devices', 'root'),
	       (0, NULL, 'Unassigned devices', 'unassigned');

CREATE TABLE devices (
	id		uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	group_id	bigint NOT NULL REFERENCES groups,
	name		text NOT NULL,
	fqdn		text,
	ip		text[] NOT NULL DEFAULT '{}',
	mac		text[] NOT NULL DEFAULT '{}',
	os		text,
	source		text NOT NULL DEFAULT 'agent',
	status		text NOT NULL DEFAULT 'ok'
			CHECK (status IN ('ok', 'warning', 'critical')),
	cert_fingerprint text UNIQUE,
	inv_hash	text,
	enrolled	timestamptz,
	first_seen	timestamptz NOT NULL DEFAULT now(),
	last_seen	timestamptz,
	sync_count	bigint NOT NULL DEFAULT 0
);
CREATE INDEX devices_vs_group ON devices (vs_id, group_id);
CREATE INDEX devices_vs_name ON devices (vs_id, name, id);

-- The last full inventory an agent sent, as JSON (docs/PROTOCOL.md).
CREATE TABLE inventory (
	device_id	uuid PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
	hash		text NOT NULL,
	data		jsonb NOT NULL,
	updated		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enrollment_tokens (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	token_hash	text NOT NULL UNIQUE,	-- sha256 hex of the token
	group_id	bigint REFERENCES groups,
	uses_left	integer NOT NULL CHECK (uses_left >= 0),
	expires		timestamptz NOT NULL,
	created_by	text,
	created		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admins (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text NOT NULL,
	principal	text UNIQUE,		-- realm-qualified Kerberos name
	pw_hash		text,			-- NULL: Kerberos only
	failed_logins	integer NOT NULL DEFAULT 0,
	locked_until	timestamptz,
	created		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vs_id, name)
);

CREATE TABLE admin_roles (
	admin_id	bigint NOT NULL REFERENCES admins ON DELETE CASCADE,
	role		text NOT NULL
			CHECK (role IN ('administrator', 'operator', 'auditor')),
	scope_group	bigint REFERENCES groups ON DELETE CASCADE,
	UNIQUE (admin_id, role, scope_group)
);

CREATE TABLE sessions (
	token_hash	text PRIMARY KEY,	-- sha256 hex of the bearer token
	admin_id	bigint NOT NULL REFERENCES admins ON DELETE CASCADE,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	created		timestamptz NOT NULL DEFAULT now(),
	expires		timestamptz NOT NULL,
	addr		text
);
CREATE INDEX sessions_expires ON sessions (expires);

-- Agent events are idempotent by (device, the agent's own event id), so a
-- re-delivery after a lost acknowledgement is stored once.
CREATE TABLE events (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	device_id	uuid REFERENCES devices ON DELETE CASCADE,
	agent_event_id	text,
	severity	text NOT NULL
			CHECK (severity IN ('info', 'warning', 'error', 'critical')),
	type		text NOT NULL,
	time		timestamptz NOT NULL,
	text		text NOT NULL DEFAULT '',
	received	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (device_id, agent_event_id)
);
CREATE INDEX events_vs_time ON events (vs_id, time);

CREATE TABLE audit (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL,
	time		timestamptz NOT NULL DEFAULT now(),
	actor		text NOT NULL,
	addr		text,
	action		text NOT NULL,
	object		text,
	detail		jsonb
);
