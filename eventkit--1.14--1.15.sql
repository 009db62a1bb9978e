\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.15'" to load this file. \quit

/*
 * eventkit 1.14 -> 1.15.
 *
 * RULE while 1.15 is not released: every object added or changed in 1.15
 * goes into BOTH this file (as the change from 1.14) and eventkit--1.15.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.15.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Cluster-wide conflicts, batch log and erasure on Citus ====

-- A stream's owner (a member of the owning role) reads its stream's logged
-- conflicts, as its quarantine: so that eventkit.worker_conflicts, which
-- reads each worker's as the caller, answers the owner on every node.
ALTER TABLE eventkit.conflicts ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.conflicts FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) conflicts.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.conflicts TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.conflicts IS
'a stream''s owner (or a member of the owning role) reads the stream''s logged conflicts';
COMMENT ON TABLE eventkit.conflicts IS
'events whose messageId was already stored with different content: the stored copy is kept, the new one is logged here; readable by the stream''s owner';

CREATE FUNCTION eventkit.worker_conflicts(stream regclass)
RETURNS TABLE (node text, conflict_id bigint, batch_id bigint, item integer,
			   message_id text, received_at timestamptz, payload jsonb)
AS 'MODULE_PATHNAME', 'eventkit_worker_conflicts'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_conflicts(regclass) IS
'on a Citus coordinator: the conflicts the workers logged for a distributed stream (node = host:port); the stream''s owner only; no rows elsewhere';

CREATE FUNCTION eventkit.worker_ingest_batches(stream regclass)
RETURNS TABLE (node text, batch_id bigint, received_at timestamptz, ingested_at timestamptz,
			   ingested_by name, items integer, accepted bigint, duplicates bigint,
			   conflicts bigint, quarantined bigint, rejected bigint)
AS 'MODULE_PATHNAME', 'eventkit_worker_ingest_batches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_ingest_batches(regclass) IS
'on a Citus coordinator: the workers'' eventkit.ingest_batches rows of a distributed stream (node = host:port); who may read ingest_batches only; no rows elsewhere';

CREATE FUNCTION eventkit.forget_user_on_worker(stream regclass, ids text[], erasure_id bigint,
											   OUT quarantined bigint, OUT conflicts bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_forget_user_on_worker'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.forget_user_on_worker(regclass, text[], bigint) IS
'on a Citus worker, called by forget_user on the coordinator: deletes the ids'' quarantine and conflicts rows and identity links of a distributed stream kept on this node and suppresses the ids here; the stream''s owner only';

-- ==== Routing clients of a distributed stream (issue 17) ====
-- route_events, route_user (1.15): which node holds the shard of an event's
-- user key, for clients that send each node only its own shards' events
-- (src/stream/route.c; docs/citus.md, "Routing clients").  Read-only, with
-- the caller's rights (SELECT on the stream); any node.
CREATE FUNCTION eventkit.route_events(stream regclass, payload jsonb)
RETURNS TABLE (item integer, message_id text, user_key text, shard bigint,
			   nodename text, nodeport integer)
AS 'MODULE_PATHNAME', 'eventkit_route_events'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.route_events(regclass, jsonb) IS
'for each event of a payload (as ingest takes it) into a stream distributed on Citus: its item, messageId, user key (userId, else anonymousId), the key''s shard and the node that holds it (needs SELECT on the stream)';
CREATE FUNCTION eventkit.route_user(stream regclass, user_id text, anonymous_id text DEFAULT NULL)
RETURNS TABLE (user_key text, shard bigint, nodename text, nodeport integer)
AS 'MODULE_PATHNAME', 'eventkit_route_user'
LANGUAGE C STABLE;
COMMENT ON FUNCTION eventkit.route_user(regclass, text, text) IS
'the user key of an event with these ids (user_id, else anonymous_id) in a stream distributed on Citus, its shard and the node that holds it (needs SELECT on the stream)';
