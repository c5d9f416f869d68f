-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 007: tasks (run now, at a time, or every N seconds, for a group subtree
-- or a list of devices) and their per-device runs.  The scheduler
-- (srv/tasks.c) turns a due task into one task_runs row per target device;
-- a run stays 'pending' until it is sent to the device, 'sent' until the
-- agent's result is stored, and then it is final (done, failed, refused,
-- expired or cancelled) and never changes again.

CREATE TABLE tasks (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	name		text,
	type		text NOT NULL
			CHECK (type IN ('inventory_refresh', 'run_command')),
	-- The target: a group (its subtree when recursive) or devices.
	group_id	bigint REFERENCES groups ON DELETE CASCADE,
	recursive	boolean NOT NULL DEFAULT true,
	device_ids	uuid[],
	params		jsonb NOT NULL DEFAULT '{}',
	schedule	text NOT NULL CHECK (schedule IN ('now', 'at', 'every')),
	at		timestamptz,
	every_s		integer CHECK (every_s > 0),
	-- NULL: nothing more to run (done, or cancelled).
	next_run	timestamptz,
	-- A run not finished this long after it was due expires.
	expires_s	integer CHECK (expires_s > 0),
	created_by	text,
	created		timestamptz NOT NULL DEFAULT now(),
	cancelled	timestamptz,
	CHECK ((group_id IS NULL) <> (device_ids IS NULL))
);
CREATE INDEX tasks_due ON tasks (next_run)
	WHERE next_run IS NOT NULL AND cancelled IS NULL;
CREATE INDEX tasks_vs ON tasks (vs_id, id);

CREATE TABLE task_runs (
	id		bigserial PRIMARY KEY,
	task_id		bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	device_id	uuid NOT NULL REFERENCES devices ON DELETE CASCADE,
	due		timestamptz NOT NULL,
	expires		timestamptz,		-- NULL: never
	state		text NOT NULL DEFAULT 'pending'
			CHECK (state IN ('pending', 'sent', 'done', 'failed',
			    'refused', 'expired', 'cancelled')),
	sent		timestamptz,
	finished	timestamptz,
	exit_code	integer,
	output		text
);
-- "The open runs of device X", read when its session comes up.
CREATE INDEX task_runs_device_open ON task_runs (device_id)
	WHERE state IN ('pending', 'sent');
-- Runs to expire.
CREATE INDEX task_runs_expiring ON task_runs (expires)
	WHERE state IN ('pending', 'sent') AND expires IS NOT NULL;
CREATE INDEX task_runs_task ON task_runs (task_id, device_id);

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tasks USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
ALTER TABLE task_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON task_runs USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));
