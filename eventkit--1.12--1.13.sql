\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.13'" to load this file. \quit

/*
 * eventkit 1.12 -> 1.13.
 *
 * RULE while 1.13 is not released: every object added or changed in 1.13
 * goes into BOTH this file (as the change from 1.12) and eventkit--1.13.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.13.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Scale-out on Citus: a coordinator's dump restored elsewhere (issue 17) ====
-- undistribute_stream (1.13): a stream that was distributed and is no longer a
-- Citus table (a coordinator's dump restored elsewhere, or undistribute_table)
-- takes its distributed ledger's ids into its own ledger; until then ingest
-- refuses it.  Not STRICT: a NULL stream gets eventkit's error.
CREATE FUNCTION eventkit.undistribute_stream(stream regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_undistribute_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.undistribute_stream(regclass) IS
'a stream restored from a Citus coordinator''s dump (or undistributed with undistribute_table): move the ids of its distributed dedup ledger into its own ledger and drop that one, so that ingest on this server sees them; returns how many (owner only)';
