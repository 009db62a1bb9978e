\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.11'" to load this file. \quit

/*
 * eventkit 1.10 -> 1.11.
 *
 * RULE while 1.11 is not released: every object added or changed in 1.11
 * goes into BOTH this file (as the change from 1.10) and eventkit--1.11.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.11.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Application roles on Citus: distributed ledgers in their own schema ====
-- A distributed stream's ledger belongs to the stream's owner, who reaches it
-- through Citus on every node: it lives in eventkit_ledgers (USAGE for all,
-- nothing else) instead of eventkit_internal.  Ledgers made by 1.10 stay in
-- eventkit_internal (their stream belongs to the extension owner) until the
-- stream changes owner.
CREATE SCHEMA eventkit_ledgers;
REVOKE ALL ON SCHEMA eventkit_ledgers FROM PUBLIC;
GRANT USAGE ON SCHEMA eventkit_ledgers TO PUBLIC;
COMMENT ON SCHEMA eventkit_ledgers IS
'eventkit''s distributed dedup ledgers (dist_ledger_<stream_id>), each its stream owner''s; written only by eventkit';

-- The realtime view of a rollup of a distributed stream calls the tail
-- function; its owner, any role, must be able to name it when the view is
-- made (USAGE on its schema): eventkit, not eventkit_internal.  Views made
-- before keep calling it (by its OID).
ALTER FUNCTION eventkit_internal.rollup_stream_tail(regclass) SET SCHEMA eventkit;
