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
