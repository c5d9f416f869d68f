-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 005: groups, device moves, events, audit and administrators through the
-- API.  No new tables: only what the API's lists page through.

-- GET /audit pages newest first by id within a virtual server.
CREATE INDEX audit_vs_id ON audit (vs_id, id);
-- GET /events pages newest first by (time, id); by device too.
CREATE INDEX events_vs_time_id ON events (vs_id, time, id);
CREATE INDEX events_device_time ON events (device_id, time, id);
-- Deleting a group checks for children.
CREATE INDEX groups_parent ON groups (parent);
