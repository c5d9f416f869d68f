-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 006: policies with locks.  A policy belongs to a group and a product and
-- holds settings {"key": {"value": <any JSON>, "locked": bool}}; one per
-- (group, product).  The effective policy of a group merges the policies
-- from its root down: a locked key stops every override below it.  The
-- merge is set-based SQL (canopy_policy_groups) so that one statement
-- serves a whole tree of groups and all their devices at once.

CREATE TABLE policies (
	id		bigserial PRIMARY KEY,
	vs_id		integer NOT NULL REFERENCES vservers ON DELETE CASCADE,
	group_id	bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
	product		text NOT NULL
			CHECK (length(product) BETWEEN 1 AND 64),
	name		text NOT NULL,
	settings	jsonb NOT NULL DEFAULT '{}'
			CHECK (jsonb_typeof(settings) = 'object'),
	revision	integer NOT NULL DEFAULT 1,
	created		timestamptz NOT NULL DEFAULT now(),
	updated		timestamptz NOT NULL DEFAULT now(),
	created_by	text,
	UNIQUE (group_id, product)
);
CREATE INDEX policies_vs_product ON policies (vs_id, product);

ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON policies USING (canopy_tenant_ok(vs_id))
	WITH CHECK (canopy_tenant_ok(vs_id));

-- The hash of the effective policy the agent last acknowledged.
ALTER TABLE devices ADD COLUMN policy_hash text;

-- One group's policies merged over its parent's effective settings.  eff:
-- {product: {key: {"value","locked","policy_id","policy","group"}}}; a key
-- locked in eff is not overridden.
CREATE FUNCTION canopy_policy_merge(eff jsonb, gid bigint, gpath text)
RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT eff || coalesce((SELECT jsonb_object_agg(p.product,
	    coalesce(eff -> p.product, '{}'::jsonb) || coalesce((
		SELECT jsonb_object_agg(s.key, jsonb_build_object(
		    'value', s.value -> 'value',
		    'locked', coalesce((s.value ->> 'locked')::boolean, false),
		    'policy_id', p.id::text, 'policy', p.name,
		    'group', gpath, 'group_id', gid::text))
		FROM jsonb_each(p.settings) s
		WHERE NOT coalesce((eff -> p.product -> s.key ->> 'locked')
		    ::boolean, false)), '{}'::jsonb))
	    FROM policies p WHERE p.group_id = gid), '{}'::jsonb)
$$;

-- The effective settings of every group of a virtual server, root down.
CREATE FUNCTION canopy_policy_groups(p_vs integer)
RETURNS TABLE (group_id bigint, path text, eff jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	WITH RECURSIVE t(id, path, eff) AS (
		SELECT g.id, '/' || g.name,
		    canopy_policy_merge('{}'::jsonb, g.id, '/' || g.name)
		FROM groups g WHERE g.vs_id = p_vs AND g.parent IS NULL
		UNION ALL
		SELECT g.id, t.path || '/' || g.name,
		    canopy_policy_merge(t.eff, g.id, t.path || '/' || g.name)
		FROM groups g JOIN t ON g.parent = t.id WHERE g.vs_id = p_vs)
	SELECT id, path, eff FROM t
$$;

-- What an agent receives: {product: {key: value}}.
CREATE FUNCTION canopy_policy_view(eff jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(jsonb_object_agg(pr.key, (SELECT
	    coalesce(jsonb_object_agg(s.key, s.value -> 'value'), '{}'::jsonb)
	    FROM jsonb_each(pr.value) s)), '{}'::jsonb)
	FROM jsonb_each(eff) pr
$$;

-- Its name: sha256 hex of jsonb's text form, which is canonical (keys
-- sorted, no insignificant space), so equal policies hash the same.
CREATE FUNCTION canopy_policy_hash(v jsonb)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT encode(sha256(convert_to(v::text, 'UTF8')), 'hex')
$$;
