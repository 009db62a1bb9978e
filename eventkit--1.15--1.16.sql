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

-- ==== The identity graph of a distributed stream (issues 17, 18) ====
-- distribute_identity_graph, apply_worker_links (1.16): the identity graph of
-- a distributed stream is the coordinator's, holding every node's links: a
-- call on a worker sends its batch's links, in its distributed transaction,
-- into the stream's worker links table eventkit_ledgers.worker_links_<id> (a
-- Citus local table on the coordinator, made by distribute_stream), whose
-- statement trigger apply_worker_links applies them to the coordinator's
-- graph (src/pipeline/identity_dist.c; docs/citus.md).  A stream distributed
-- before 1.16 gets that table, and the links its workers made so far, from
-- distribute_identity_graph; until then its calls on a worker link in that
-- worker's graph only, as 1.15 did.  Not STRICT: a NULL stream gets
-- eventkit's error.
CREATE FUNCTION eventkit.apply_worker_links()
RETURNS trigger
AS 'MODULE_PATHNAME', 'eventkit_apply_worker_links'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.apply_worker_links() IS
'the statement trigger of a distributed stream''s worker links table, on the Citus coordinator: applies the links of a worker''s call to the coordinator''s identity graph (internal)';
CREATE FUNCTION eventkit.distribute_identity_graph(stream regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_distribute_identity_graph'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.distribute_identity_graph(regclass) IS
'on the Citus coordinator, for a stream distributed before 1.16: make its worker links table, so that the links of calls on the workers go to the coordinator''s identity graph, and link there the ids of the workers'' graphs so far; returns how many worker rows it read (superuser only)';
