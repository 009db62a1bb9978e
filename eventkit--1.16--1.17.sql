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
