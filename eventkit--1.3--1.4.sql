\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.4'" to load this file. \quit

/*
 * eventkit 1.3 -> 1.4.
 *
 * RULE while 1.4 is not released: every object added or changed in 1.4 goes
 * into BOTH this file (as the change from 1.3) and eventkit--1.4.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.4.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Pinned formats and cross-checks: functions for the tests only ====
-- (src/pipeline/dedup/ledger_filter.c, src/pipeline/event.c,
-- src/jsonschema/jsonschema_regex.c, src/jsonschema/jsonschema_sql.c;
-- sql/pinned_formats.sql, sql/regex_crosscheck.sql, sql/jsonb_raw.sql,
-- test/t/017_pinned_formats.pl)
--
-- Not an interface: in eventkit_internal, executable by superusers only.
-- The id hash behind the ledger filters, and a filter's answer for an id,
-- as ingest computes them: the filters are stored and dumped, so the tests
-- pin both against known answers.
CREATE FUNCTION eventkit_internal.id_hash64(id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_id_hash64'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.id_hash64(text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.id_hash64(text) IS
'for tests only: the 64-bit hash of a message id behind the ledger filters (pinned by known answers)';

CREATE FUNCTION eventkit_internal.ledger_filter_contains(filter bytea, id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_ledger_filter_contains'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.ledger_filter_contains(bytea, text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.ledger_filter_contains(bytea, text) IS
'for tests only: whether a stored ledger filter may hold an id, as ingest asks it';

-- whether the validator's fast matcher runs a "pattern" (NULL: invalid)
CREATE FUNCTION eventkit_internal.regex_fast_path(pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_regex_fast_path'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.regex_fast_path(text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.regex_fast_path(text) IS
'for tests only: whether the validator''s fast matcher runs an ECMA-262 pattern (NULL: not a valid pattern)';

-- whether the raw jsonb readers see a value exactly as it is: rebuilt from
-- what they read, it is byte for byte the input
CREATE FUNCTION eventkit_internal.jsonb_raw_roundtrip(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_jsonb_raw_roundtrip'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.jsonb_raw_roundtrip(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.jsonb_raw_roundtrip(jsonb) IS
'for tests only: whether a value rebuilt from what the raw jsonb readers see is byte for byte the value';

-- whether the fingerprint's walk over the JEntries equals the iterator's
CREATE FUNCTION eventkit_internal.fingerprint_walk_check(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_fingerprint_walk_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.fingerprint_walk_check(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.fingerprint_walk_check(jsonb) IS
'for tests only: whether the content fingerprint''s walk over a value''s JEntries equals a walk with the jsonb iterator';

-- ---------------------------------------------------------------------
-- The scheduler in a read-only database: scheduler_status() says
-- 'read-only' (default_transaction_read_only on) and health() warns.
-- ---------------------------------------------------------------------
CREATE OR REPLACE VIEW eventkit.health_scheduler AS
SELECT 'scheduler'::text AS component,
	   pg_catalog.current_database()::text AS target,
	   CASE WHEN NOT s.preloaded OR NOT s.enabled THEN 'warning'
			WHEN s.pid IS NULL THEN 'error'
			WHEN s.state OPERATOR(pg_catalog.=) 'read-only' THEN 'warning'
			WHEN s.last_loop_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 (3 OPERATOR(pg_catalog.*) pg_catalog.current_setting('eventkit.naptime')::pg_catalog.interval
				  OPERATOR(pg_catalog.+) interval '5 seconds')) THEN 'warning'
			ELSE 'ok' END AS status,
	   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 3) AS value,
	   CASE WHEN NOT s.preloaded THEN 'eventkit is not in shared_preload_libraries: jobs run only by hand (eventkit.run_maintenance)'
			WHEN NOT s.enabled THEN 'eventkit.scheduler_enabled is off'
			WHEN s.pid IS NULL THEN pg_catalog.format('no scheduler running (%s)', s.state)
			WHEN s.state OPERATOR(pg_catalog.=) 'read-only' THEN 'the database is read-only (default_transaction_read_only): no job runs until it is writable'
			ELSE pg_catalog.format('scheduler pid %s, %s job(s) running, last check %s s ago', s.pid, s.running_jobs,
								   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 1))
	   END AS detail
  FROM eventkit.scheduler_status() s;

-- ==== Tracking-plan formats: create_plan(..., strict) (issue 18) ====
-- (src/pipeline/plan/plan_formats.c, src/jsonschema/jsonschema_dialect.c;
-- sql/plan_formats.sql)
--
-- Segment's Config API plans and draft-04 schemas need no SQL change;
-- create_plan gains strict (DEFAULT true, so two-argument calls keep
-- working).  The library's create_plan also serves the 1.3 signature.
DROP FUNCTION eventkit.create_plan(text, jsonb);
CREATE FUNCTION eventkit.create_plan(name text, spec jsonb, strict boolean DEFAULT true)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_create_plan'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.create_plan(text, jsonb, boolean) IS
'store a new version of a tracking plan (eventkit''s format, Segment''s tracking-plan export or Config API plan; a new plan owned by the caller, or a plan the caller owns); strict => false ignores unknown schema keywords with a warning; returns the version';
