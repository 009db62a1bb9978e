\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.12'" to load this file. \quit

/*
 * eventkit 1.11 -> 1.12.
 *
 * RULE while 1.12 is not released: every object added or changed in 1.12
 * goes into BOTH this file (as the change from 1.11) and eventkit--1.12.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.12.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Rollup costs: a session's first realtime query (issue 19) ====
-- What the realtime views made since 1.12 hash their tail's values with
-- (rollup_hll's argument): the hll library's hll_hash_text(value, 0), computed
-- by eventkit (src/rollup/hll_hash.c), so that a new session's query of a
-- realtime view does not load the hll library (docs/performance.md).
-- Views made before keep hll_hash_text until they are made again.
CREATE FUNCTION eventkit.rollup_hash_text(value text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_rollup_hash_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hash_text(text) IS
'hll_hash_text(value, 0) as a bigint, computed by eventkit: what the realtime views made since 1.12 hash their tail with, so that a query of them loads no code of the hll library';
