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
