\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 */

-- ==== Rollups: bad values (src/rollup.c, rollup_sql.c, rollup_fold.c, rollup_delta.c) ====
--
-- A value that does not fit a rollup never fails a batch or a refresh: a
-- measure's value that is not a number or is outside the measure's range is
-- skipped, a long text dimension value is bounded (README, Rollups).  The
-- counts, by reason, of the values a rollup's refreshes skipped or bounded;
-- format tells what its realtime view and delta table were made for (1:
-- before 1.3; a refresh makes them again for the current format, 2).
-- Restoring a dump from before 1.3 leaves format at its default, 1.
ALTER TABLE eventkit.rollups
	ADD COLUMN skipped_values jsonb NOT NULL DEFAULT '{}',
	ADD COLUMN last_skipped_at timestamptz,
	ADD COLUMN format integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN eventkit.rollups.skipped_values IS
	'values left out of a measure (not_a_number, out_of_range) and dimension values bounded (dimension_truncated), counted at refresh';
COMMENT ON COLUMN eventkit.rollups.format IS
	'format of the rollup''s realtime view and delta table: 1 before eventkit 1.3, 2 since';

-- What the realtime views call to apply the rules the fold applies in C.
CREATE FUNCTION eventkit.rollup_number(value jsonb, measure text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_rollup_number_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_number(jsonb, text) IS
	'the number a rollup measure (sum, avg, min, max, percentile) takes from a JSON value, NULL if none or skipped';
CREATE FUNCTION eventkit.rollup_number(value numeric, measure text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_rollup_number_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_number(numeric, text) IS
	'the number a rollup measure (sum, avg, min, max, percentile) takes from a column value, NULL if skipped';
CREATE FUNCTION eventkit.rollup_skipped(value jsonb, measure text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_rollup_skipped_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_skipped(jsonb, text) IS
	'whether a rollup measure skips a JSON value (not a number, or out of its range)';
CREATE FUNCTION eventkit.rollup_skipped(value numeric, measure text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_rollup_skipped_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_skipped(numeric, text) IS
	'whether a rollup measure skips a column value (NaN, or out of its range)';
CREATE FUNCTION eventkit.rollup_dimension(value text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_rollup_dimension'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_dimension(text) IS
	'a text dimension value as a rollup key holds it: over 300 bytes, its first 64 characters, ...[sha256:<32 hex digits>]';

CREATE OR REPLACE VIEW eventkit.rollup_status AS
SELECT r.rollup_id, r.name, r.relid AS rollup, r.stream, r.schedule, r.watermark,
	   r.backfill_target,
	   r.watermark OPERATOR(pg_catalog.>=) r.backfill_target AS backfilled,
	   r.events_folded, r.last_refresh_at, r.last_refresh_events,
	   r.skipped_values, r.last_skipped_at
  FROM eventkit.rollups r;

-- health(): a warning per rollup whose refreshes skipped or bounded values
-- (the counts since the rollup was created, by reason).
CREATE VIEW eventkit.health_rollup_values AS
SELECT 'rollup values'::text AS component,
	   r.name AS target,
	   'warning'::text AS status,
	   s.total AS value,
	   pg_catalog.format('%s value(s) skipped or bounded since the rollup was created (%s), the last at %s',
						 s.total, s.reasons, r.last_skipped_at) AS detail
  FROM eventkit.rollups r
 CROSS JOIN LATERAL (
	SELECT pg_catalog.sum(e.value::pg_catalog.int8) AS total,
		   pg_catalog.string_agg(pg_catalog.format('%s %s', e.key, e.value), ', ' ORDER BY e.key) AS reasons
	  FROM pg_catalog.jsonb_each_text(r.skipped_values) e) s
 WHERE r.skipped_values OPERATOR(pg_catalog.<>) '{}'::pg_catalog.jsonb;
GRANT SELECT ON eventkit.health_rollup_values TO pg_monitor;
COMMENT ON VIEW eventkit.health_rollup_values IS
	'health(): a warning per rollup with values skipped or bounded (eventkit.rollups.skipped_values)';
