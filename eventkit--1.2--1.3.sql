\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 */

-- ==== Jobs and the worker: restore (src/worker.c) ====

-- Keep the scheduler out of a database while a dump is restored into it:
-- pre_restore() sets eventkit.restoring at the database level and stops the
-- jobs running there; post_restore() resets it and the jobs run again.
CREATE FUNCTION eventkit.pre_restore()
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_pre_restore'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.pre_restore() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.pre_restore() IS
	'Before restoring a dump into this database: the scheduler starts no job here until eventkit.post_restore()';

CREATE FUNCTION eventkit.post_restore()
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_post_restore'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.post_restore() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.post_restore() IS
	'After restoring a dump into this database: the scheduler runs its jobs again';
