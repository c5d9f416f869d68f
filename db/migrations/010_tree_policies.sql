-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 010: policies across the server tree (issue 4).  The policies that came
-- from the servers above (hier_policies, 009) are merged top-down by
-- (level, gdepth) into the starting point of main's effective settings, so
-- that every group of main, and every device and agent in it, inherits
-- them; a key locked above stays locked all the way down.  Each inherited
-- entry names its owner ('server'); local entries carry no 'server' and
-- the API fills in this server's name.

-- The merge of hier_policies: {product: {key: {"value","locked",
-- "policy_id" (the oid),"policy","group" (the path at the owner),
-- "group_id" (null),"server"}}}.
CREATE FUNCTION canopy_hier_base() RETURNS jsonb LANGUAGE plpgsql STABLE
PARALLEL SAFE AS $$
DECLARE
	eff	jsonb := '{}';
	p	record;
	s	record;
	cur	jsonb;
BEGIN
	FOR p IN SELECT h.oid, h.server, h.level, h.group_path, h.gdepth,
	    h.name, h.product, h.settings FROM hier_policies h
	    ORDER BY h.level, h.gdepth, h.oid LOOP
		cur := coalesce(eff -> p.product, '{}');
		FOR s IN SELECT key, value FROM jsonb_each(p.settings) LOOP
			IF coalesce((cur -> s.key ->> 'locked')::boolean,
			    false) THEN
				CONTINUE;
			END IF;
			cur := cur || jsonb_build_object(s.key,
			    jsonb_build_object(
			    'value', s.value -> 'value',
			    'locked', coalesce((s.value ->> 'locked')::boolean,
			    false),
			    'policy_id', p.oid, 'policy', p.name,
			    'group', p.group_path, 'group_id', NULL,
			    'server', p.server));
		END LOOP;
		eff := eff || jsonb_build_object(p.product, cur);
	END LOOP;
	RETURN eff;
END
$$;

-- As in 006, but main's roots start from what came from above.
CREATE OR REPLACE FUNCTION canopy_policy_groups(p_vs integer)
RETURNS TABLE (group_id bigint, path text, eff jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	WITH RECURSIVE b(eff) AS MATERIALIZED (
		SELECT CASE WHEN p_vs = 0 THEN canopy_hier_base()
		    ELSE '{}'::jsonb END),
	t(id, path, eff) AS (
		SELECT g.id, '/' || g.name,
		    canopy_policy_merge(b.eff, g.id, '/' || g.name)
		FROM groups g, b WHERE g.vs_id = p_vs AND g.parent IS NULL
		UNION ALL
		SELECT g.id, t.path || '/' || g.name,
		    canopy_policy_merge(t.eff, g.id, t.path || '/' || g.name)
		FROM groups g JOIN t ON g.parent = t.id WHERE g.vs_id = p_vs)
	SELECT id, path, eff FROM t
$$;
