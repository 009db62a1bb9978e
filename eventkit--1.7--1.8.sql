\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.8'" to load this file. \quit

/*
 * eventkit 1.7 -> 1.8.
 *
 * RULE while 1.8 is not released: every object added or changed in 1.8 goes
 * into BOTH this file (as the change from 1.7) and eventkit--1.8.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.8.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Identity graph: the canonical index without the canonical rows (issue 18) ====
-- identity_links_canonical finds a set's members by canonical id (a merge's
-- re-pointing, forget_user, the set sizes a merge compares).  A canonical
-- id's own row (its id is its canonical id: about half the rows) is found
-- by the primary key instead, so the index leaves it out, and ingest makes
-- one index insert less for each new user.  Every reader of a set asks
-- for its members with id <> canonical_id and for the canonical row by id.
DROP INDEX eventkit.identity_links_canonical;
CREATE INDEX identity_links_canonical ON eventkit.identity_links (stream_id, canonical_id)
	WHERE id OPERATOR(pg_catalog.<>) canonical_id;

-- ==== Rollup costs: the refresh's hll merge in C (issue 19) ====
-- (src/rollup/hll.c, src/rollup/fold_write.c; sql/rollup_hll_merge.sql)
-- Not an interface: in eventkit_internal, executable by superusers only.
-- What the refresh's merge in C writes for a rollup row's hll and a group's
-- hashes, so that the test compares it with hll_union byte for byte.
CREATE FUNCTION eventkit_internal.rollup_hll_union_hashes(old anyelement, hashes bigint[],
														   empty anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll_union_hashes'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit_internal.rollup_hll_union_hashes(anyelement, bigint[], anyelement) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.rollup_hll_union_hashes(anyelement, bigint[], anyelement) IS
'for tests only: the hll the refresh''s merge in C writes for a rollup row''s hll and a group''s hashes (NULLs left out), with the parameters of empty and the session''s hll max_sparse: hll_union''s bytes; NULL when the merge leaves it to hll_union';
