\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.9'" to load this file. \quit

/*
 * eventkit 1.8 -> 1.9.
 *
 * RULE while 1.9 is not released: every object added or changed in 1.9 goes
 * into BOTH this file (as the change from 1.8) and eventkit--1.9.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.9.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Rollups of distributed streams: the realtime view's tail (issue 17) ====
-- What the realtime view of a rollup of a stream distributed on Citus calls
-- beside its delta rows (src/rollup/view.c): the partial states of the
-- stream's rows of the batches newer than the watermark that have no deltas,
-- read through Citus only when there are any.  Not an interface; executable by
-- every reader of a realtime view (it checks the caller may read the rollup).
CREATE FUNCTION eventkit_internal.rollup_stream_tail(rollup regclass)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'eventkit_rollup_stream_tail'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit_internal.rollup_stream_tail(regclass) IS
'the realtime view''s tail of a rollup of a distributed stream from the stream''s rows: the groups'' partial states of the batches newer than the watermark that stored events without rollup deltas (none read when there are none); for callers who may read the rollup or its realtime view';

-- ==== Identity: no row for a canonical id (issue 18) ====
-- Ingest no longer stores a canonical id's own row (src/pipeline/identity.c):
-- an id without a row is its own user already; a canonical id gets a row
-- when a merge re-points it.  Rows stored before stay and are accepted.
-- eventkit.identities lists a canonical id without a row with its set's
-- first and latest times (docs/identity.md).
CREATE OR REPLACE VIEW eventkit.identities WITH (security_barrier) AS
SELECT s.relid AS stream,
	   l.id,
	   l.canonical_id AS canonical_user_id,
	   l.first_seen,
	   l.last_seen
  FROM (SELECT k.stream_id, k.id, k.canonical_id, k.first_seen, k.last_seen
		  FROM eventkit.identity_links k
		UNION ALL
		SELECT m.stream_id, m.canonical_id, m.canonical_id,
			   pg_catalog.min(m.first_seen), pg_catalog.max(m.last_seen)
		  FROM eventkit.identity_links m
		 WHERE m.id OPERATOR(pg_catalog.<>) m.canonical_id
		   AND NOT EXISTS (SELECT FROM eventkit.identity_links c
							WHERE c.stream_id OPERATOR(pg_catalog.=) m.stream_id
							  AND c.id OPERATOR(pg_catalog.=) m.canonical_id)
		 GROUP BY m.stream_id, m.canonical_id) l
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT');
COMMENT ON VIEW eventkit.identities IS
'the identity graph of the streams the user may read: each linked id and its canonical user (a canonical id without a row of its own with its set''s first and latest times)';
COMMENT ON COLUMN eventkit.identity_links.canonical_id IS 'the userId every id of its set resolves to (since 1.9 the canonical user has no row of its own; one stored before names itself)';
