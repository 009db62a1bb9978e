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

-- ==== Re-driving waiting events by hand and on Citus workers (issue 17) ====
-- The redrive job's work on this node; on a Citus coordinator, the premake and
-- redrive jobs of a distributed stream call it on every worker.
CREATE FUNCTION eventkit.redrive_quarantine(stream regclass, OUT replayed bigint,
											OUT waiting_partitions timestamptz[])
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_redrive_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.redrive_quarantine(regclass) IS
'replay a stream''s events waiting for a partition (quarantined out_of_range) whose partition exists now, as the redrive job does; returns how many were replayed and the start of each partition the others still wait for; needs the stream''s ownership';
