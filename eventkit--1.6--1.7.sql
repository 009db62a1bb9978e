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

-- ==== The whole cluster's statistics and quarantine on the Citus coordinator (issue 17) ====
-- Ingest on a Citus worker logs its batches and quarantine in the worker's own
-- tables; on the coordinator these functions ask every worker (as the caller)
-- and eventkit.stream_stats adds the workers' rows to the node's own.  Without
-- Citus, on a worker, or without distributed streams they return no rows.
CREATE FUNCTION eventkit.worker_stream_stats()
RETURNS TABLE (node text, stream_id integer, batches bigint, accepted bigint,
			   duplicates bigint, conflicts bigint, quarantined bigint, rejected bigint,
			   in_quarantine bigint, last_ingest_at timestamptz)
AS 'MODULE_PATHNAME', 'eventkit_worker_stream_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_stream_stats() IS
'on a Citus coordinator: each worker''s eventkit.stream_stats row of each distributed stream (node = host:port); no rows elsewhere';

CREATE FUNCTION eventkit.worker_quarantine(stream regclass)
RETURNS TABLE (node text, quarantine_id bigint, batch_id bigint, item integer,
			   message_id text, received_at timestamptz, quarantined_at timestamptz,
			   reasons jsonb, payload jsonb, raw text, replays integer)
AS 'MODULE_PATHNAME', 'eventkit_worker_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_quarantine(regclass) IS
'on a Citus coordinator: the rows the workers keep in quarantine for a distributed stream (node = host:port; each worker''s row-level security applies); no rows elsewhere';

CREATE OR REPLACE VIEW eventkit.stream_stats AS
SELECT s.stream_id,
	   s.relid AS stream,
	   (COALESCE(b.batches, 0) OPERATOR(pg_catalog.+) COALESCE(w.batches, 0))::bigint AS batches,
	   (COALESCE(b.accepted, 0) OPERATOR(pg_catalog.+) COALESCE(w.accepted, 0))::bigint AS accepted,
	   (COALESCE(b.duplicates, 0) OPERATOR(pg_catalog.+) COALESCE(w.duplicates, 0))::bigint AS duplicates,
	   (COALESCE(b.conflicts, 0) OPERATOR(pg_catalog.+) COALESCE(w.conflicts, 0))::bigint AS conflicts,
	   (COALESCE(b.quarantined, 0) OPERATOR(pg_catalog.+) COALESCE(w.quarantined, 0))::bigint AS quarantined,
	   (COALESCE(b.rejected, 0) OPERATOR(pg_catalog.+) COALESCE(w.rejected, 0))::bigint AS rejected,
	   ((SELECT pg_catalog.count(*) FROM eventkit.quarantine q
		  WHERE q.stream_id OPERATOR(pg_catalog.=) s.stream_id)
		OPERATOR(pg_catalog.+) COALESCE(w.in_quarantine, 0))::bigint AS in_quarantine,
	   GREATEST(b.last_ingest_at, w.last_ingest_at) AS last_ingest_at
  FROM eventkit.streams s
  LEFT JOIN (SELECT stream_id,
					pg_catalog.count(*) AS batches,
					pg_catalog.sum(accepted)::bigint AS accepted,
					pg_catalog.sum(duplicates)::bigint AS duplicates,
					pg_catalog.sum(conflicts)::bigint AS conflicts,
					pg_catalog.sum(quarantined)::bigint AS quarantined,
					pg_catalog.sum(rejected)::bigint AS rejected,
					pg_catalog.max(ingested_at) AS last_ingest_at
			   FROM eventkit.ingest_batches
			  GROUP BY stream_id) b ON b.stream_id OPERATOR(pg_catalog.=) s.stream_id
  LEFT JOIN (SELECT ws.stream_id,
					pg_catalog.sum(ws.batches) AS batches,
					pg_catalog.sum(ws.accepted) AS accepted,
					pg_catalog.sum(ws.duplicates) AS duplicates,
					pg_catalog.sum(ws.conflicts) AS conflicts,
					pg_catalog.sum(ws.quarantined) AS quarantined,
					pg_catalog.sum(ws.rejected) AS rejected,
					pg_catalog.sum(ws.in_quarantine) AS in_quarantine,
					pg_catalog.max(ws.last_ingest_at) AS last_ingest_at
			   FROM eventkit.worker_stream_stats() ws
			  GROUP BY ws.stream_id) w ON w.stream_id OPERATOR(pg_catalog.=) s.stream_id;
COMMENT ON VIEW eventkit.stream_stats IS
'per stream: ingest calls and their events by outcome, rows now in quarantine, last ingest; on a Citus coordinator, a distributed stream''s counts include its workers''';
COMMENT ON COLUMN eventkit.stream_stats.in_quarantine IS 'rows in eventkit.quarantine now (on a Citus coordinator, with the workers'' rows)';

CREATE FUNCTION eventkit.worker_violation_stats()
RETURNS TABLE (node text, stream_id integer, plan text, event text, keyword text,
			   property_path text, action text, violations bigint, batches bigint,
			   first_plan_version integer, last_plan_version integer, last_batch_id bigint)
AS 'MODULE_PATHNAME', 'eventkit_worker_violation_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_violation_stats() IS
'on a Citus coordinator: each worker''s eventkit.violation_stats rows of the distributed streams (node = host:port; the streams the caller may read there); no rows elsewhere';

CREATE OR REPLACE VIEW eventkit.violation_stats AS
SELECT x.stream_id,
	   s.relid AS stream,
	   x.plan,
	   x.event,
	   x.keyword,
	   x.property_path,
	   x.action,
	   pg_catalog.sum(x.violations)::bigint AS violations,
	   pg_catalog.sum(x.batches)::bigint AS batches,
	   pg_catalog.min(x.first_plan_version) AS first_plan_version,
	   pg_catalog.max(x.last_plan_version) AS last_plan_version,
	   pg_catalog.max(x.last_batch_id) AS last_batch_id
  FROM (SELECT v.stream_id, p.name AS plan, v.event, v.keyword, v.property_path, v.action,
			   pg_catalog.sum(v.violations)::bigint AS violations,
			   pg_catalog.count(DISTINCT v.batch_id) AS batches,
			   pg_catalog.min(v.plan_version) AS first_plan_version,
			   pg_catalog.max(v.plan_version) AS last_plan_version,
			   pg_catalog.max(v.batch_id) AS last_batch_id
		  FROM eventkit.batch_violations v
		  JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) v.plan_id
		 GROUP BY v.stream_id, p.name, v.event, v.keyword, v.property_path, v.action
		UNION ALL
		SELECT w.stream_id, w.plan, w.event, w.keyword, w.property_path, w.action,
			   w.violations, w.batches, w.first_plan_version, w.last_plan_version,
			   w.last_batch_id
		  FROM eventkit.worker_violation_stats() w) x
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) x.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT')
 GROUP BY x.stream_id, s.relid, x.plan, x.event, x.keyword, x.property_path, x.action;
COMMENT ON VIEW eventkit.violation_stats IS
'tracking-plan findings summed per stream, plan, event, keyword, property path and action (streams the user may read); on a Citus coordinator, a distributed stream''s findings include its workers''';

-- On a Citus coordinator with distributed streams: each worker reached or not,
-- and what its own health() finds wrong (asked as the caller).
CREATE FUNCTION eventkit.worker_health()
RETURNS TABLE (node text, component text, target text, status text, value numeric, detail text)
AS 'MODULE_PATHNAME', 'eventkit_worker_health'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_health() IS
'on a Citus coordinator with distributed streams: a row per worker (component citus: ok when it answered, error when not) and the rows of its health() that are not ok; no rows elsewhere';

CREATE VIEW eventkit.health_citus AS
SELECT 'citus'::text AS component,
	   CASE WHEN w.component OPERATOR(pg_catalog.=) 'citus' THEN w.node
			ELSE w.node OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) w.component
				 OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) COALESCE(w.target, '') END AS target,
	   w.status,
	   w.value,
	   w.detail
  FROM eventkit.worker_health() w;
REVOKE ALL ON TABLE eventkit.health_citus FROM PUBLIC;
GRANT SELECT ON eventkit.health_citus TO pg_monitor;
COMMENT ON VIEW eventkit.health_citus IS
'health(): on a Citus coordinator, each worker (reached or not) and what its own health() finds wrong';
COMMENT ON COLUMN eventkit.health_citus.component IS 'citus';
COMMENT ON COLUMN eventkit.health_citus.target IS 'the worker (host:port), followed by the component and target of its finding';
COMMENT ON COLUMN eventkit.health_citus.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_citus.value IS 'the finding''s value on the worker';
COMMENT ON COLUMN eventkit.health_citus.detail IS 'the finding''s detail, or why the worker could not be asked';

-- ==== Identity graph: re-timing in place (issue 18) ====
-- The identity stage re-times a stored id (last_seen, first_seen: columns no
-- index holds) when a link moves them by more than a day: with room left on
-- the table's pages those updates are HOT, adding no index entries, so the
-- primary-key probe every batch makes for its ids stays short.
ALTER TABLE eventkit.identity_links SET (fillfactor = 70);

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
