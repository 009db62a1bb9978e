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

-- ==== Rollup options, rollups of rollups, added measures (issue 19) ====
-- (src/rollup/refresh.c, src/rollup/options.c, src/rollup/definition.c;
-- sql/rollup_options.sql, sql/rollup_of.sql, test/isolation/specs/rollup_options.spec)
--
-- A rollup's options: a filter (only the events that match are folded), a
-- time zone and an origin for its buckets, the hll precision; a rollup over
-- another rollup (source_rollup) is refreshed by its source's refresh, from
-- the source's partial states.  NULL: the option is not used (the defaults
-- of before 1.4).
ALTER TABLE eventkit.rollups
	ADD COLUMN filter text,
	ADD COLUMN time_zone text,
	ADD COLUMN origin timestamptz,
	ADD COLUMN hll_log2m integer,
	ADD COLUMN source_rollup regclass,
	ADD CONSTRAINT rollups_hll_log2m_check CHECK (hll_log2m BETWEEN 4 AND 17);
COMMENT ON COLUMN eventkit.rollups.filter IS
	'only the events matching this condition are folded (create_rollup''s filter; NULL: all)';
COMMENT ON COLUMN eventkit.rollups.time_zone IS
	'the time zone its buckets are aligned in (NULL: UTC)';
COMMENT ON COLUMN eventkit.rollups.origin IS
	'the origin its fixed-width buckets are aligned on (NULL: 2000-01-01 00:00 in its time zone)';
COMMENT ON COLUMN eventkit.rollups.hll_log2m IS
	'log2 of the number of registers of its distinct() measures'' hll (NULL: the hll default, 11)';
COMMENT ON COLUMN eventkit.rollups.source_rollup IS
	'for a rollup of a rollup (create_rollup_of): the rollup table it is computed from; NULL: it folds the stream';

DROP FUNCTION eventkit.create_rollup(text, regclass, interval, text[], text[], boolean);
CREATE FUNCTION eventkit.create_rollup(name text, stream regclass, bucket interval,
									   dimensions text[], measures text[],
									   backfill boolean DEFAULT true,
									   filter text DEFAULT NULL,
									   time_zone text DEFAULT NULL,
									   origin timestamptz DEFAULT NULL,
									   hll_log2m integer DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_rollup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_rollup(text, regclass, interval, text[], text[], boolean, text, text, timestamptz, integer) IS
'create a rollup of a stream (its table, its <name>_realtime view and its refresh job), folding the history unless backfill is false; optionally only the events matching filter, buckets in a time zone and from an origin, an hll precision';

CREATE FUNCTION eventkit.create_rollup_of(name text, source text, bucket interval,
										  dimensions text[] DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_rollup_of'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_rollup_of(text, text, interval, text[]) IS
'create a rollup of a rollup (e.g. daily from hourly): coarser buckets, a subset of its dimensions (NULL: all), its measures merged from its partial states; refreshed with its source';

CREATE FUNCTION eventkit.add_rollup_measures(name text, measures text[])
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_add_rollup_measures'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.add_rollup_measures(text, text[]) IS
'add measures to a rollup without dropping it: folds what is new, adds the columns, computes them from the stream''s stored events and makes its realtime view again';
-- ==== Scale-out on Citus (issue 17) ====
-- distribute_stream: on the Citus coordinator, hash-distributes a stream by
-- user_key with a co-located dedup ledger eventkit_internal.dist_ledger_<id>
-- unique on (user_key, message_id); not STRICT, shard_count NULL is Citus's
-- default.
CREATE FUNCTION eventkit.distribute_stream(stream regclass, shard_count int DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_distribute_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.distribute_stream(regclass, int) IS
'on the Citus coordinator: hash-distribute a stream by user_key (shard_count NULL: citus.shard_count) with its dedup ledger co-located, unique on (user_key, message_id) (owner only)';
