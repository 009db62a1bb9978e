\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.7'" to load this file. \quit

/*
 * eventkit 1.6 -> 1.7.
 *
 * RULE while 1.7 is not released: every object added or changed in 1.7 goes
 * into BOTH this file (as the change from 1.6) and eventkit--1.7.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.7.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Rollup costs: the realtime view's distinct counts (issue 19) ====
-- What the realtime views made since 1.7 call for a distinct() column
-- (src/rollup/hll.c): the count of a tail group's hll merged with its rollup
-- row's, without packing the union and unpacking it again.
CREATE FUNCTION eventkit.rollup_hll_count(a anyelement, b anyelement)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll_count'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hll_count(anyelement, anyelement) IS
'round(COALESCE(hll_cardinality(COALESCE(hll_union(a, b), a, b)), 0))::bigint for two hlls of the same parameters, either NULL: a realtime view''s distinct count';
