-- Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
-- 002: inventories are tens of KiB of JSON rewritten at every change;
-- lz4 compresses them several times faster than the default pglz.  A server
-- built without lz4 keeps pglz.
DO $$
BEGIN
	ALTER TABLE inventory ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	RAISE NOTICE 'lz4 is not available: inventories stay pglz-compressed';
END
$$;
