\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.17'" to load this file. \quit

/*
 * eventkit 1.16 -> 1.17.
 *
 * RULE while 1.17 is not released: every object added or changed in 1.17
 * goes into BOTH this file (as the change from 1.16) and eventkit--1.17.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.17.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- The events waiting for a partition: the redrive job reads a stream's in
-- id order, and a Citus coordinator's scheduler asks each worker for the
-- highest one per stream every eventkit.worker_quarantine_poll; neither
-- scans the rest of the quarantine (plan violations, which stay).
CREATE INDEX quarantine_out_of_range ON eventkit.quarantine (stream_id, quarantine_id)
	WHERE payload IS NOT NULL
	  AND reasons OPERATOR(pg_catalog.@>) '[{"reason": "out_of_range"}]'::pg_catalog.jsonb;

-- ==== The generations of a worker delta table distributed with its stream ====
-- (src/rollup/wdelta.c, src/rollup/view.c; TAP 068_citus_wdelta.pl)
--
-- A refresh marks the rows of a rollup's distributed worker delta table
-- with a generation (<rollup>_wdelta.ek_gen), folds the generations earlier
-- refreshes marked, and records here, with the merge into the rollup table,
-- the generation folded: the realtime view counts the rows above it, in the
-- same snapshot as the rollup table, so it stays exact while a refresh
-- commits on the coordinator before the workers.
ALTER TABLE eventkit.rollups
	ADD COLUMN wdelta_marked bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_folded bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_deleted bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_folded_xid xid8;
COMMENT ON COLUMN eventkit.rollups.wdelta_marked IS
	'the last generation a refresh marked the rows of its distributed worker delta table with (0: none)';
COMMENT ON COLUMN eventkit.rollups.wdelta_folded IS
	'the rows of its distributed worker delta table up to this generation are folded into the rollup table';
COMMENT ON COLUMN eventkit.rollups.wdelta_deleted IS
	'the rows of its distributed worker delta table up to this generation are deleted';
COMMENT ON COLUMN eventkit.rollups.wdelta_folded_xid IS
	'the transaction that last moved wdelta_folded (its rows are deleted once every snapshot sees it)';
