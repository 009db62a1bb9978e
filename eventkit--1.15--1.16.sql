\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.16'" to load this file. \quit

/*
 * eventkit 1.15 -> 1.16.
 *
 * RULE while 1.16 is not released: every object added or changed in 1.16
 * goes into BOTH this file (as the change from 1.15) and eventkit--1.16.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.16.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== worker_quarantine for the stream's owner only ====

-- Its library refuses a role that does not own the stream, as
-- worker_conflicts does (before, such a role got no rows).
COMMENT ON FUNCTION eventkit.worker_quarantine(regclass) IS
'on a Citus coordinator: the rows the workers keep in quarantine for a distributed stream (node = host:port); the stream''s owner only; no rows elsewhere';
