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

-- ==== Typed event views (issue 18) ====
-- (src/pipeline/plan/plan_columns.c; sql/event_views.sql, sql/analytics.sql;
-- docs/analytics.md)
--
-- The typed columns a tracking plan implies, and the views built from them
-- as Segment's warehouses lay data out.  The views belong to the caller
-- and read the stream with the caller's rights.

CREATE FUNCTION eventkit.warehouse_name(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_warehouse_name'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.warehouse_name(text) IS
'a name as Segment''s warehouses spell tables and columns: snake case (Order Completed -> order_completed)';

CREATE FUNCTION eventkit.plan_properties(plan text, version integer)
RETURNS TABLE(event_type text, event text, field text, property text, json_type text, column_type text)
AS 'MODULE_PATHNAME', 'eventkit_plan_properties'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.plan_properties(text, integer) IS
'the planned properties (and traits) of every planned event of a tracking plan version, with the SQL type a typed event view gives each';

CREATE FUNCTION eventkit.jsonb_to_text(value jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_text(jsonb) IS
'a property value as text: a string as it is, a number or boolean as written; NULL for null, objects and arrays (never an error)';

CREATE FUNCTION eventkit.jsonb_to_bigint(value jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_bigint'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_bigint(jsonb) IS
'a property value as bigint: a whole number in range (or a string holding one); NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_numeric(value jsonb)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_numeric(jsonb) IS
'a property value as numeric: a number (or a string holding a JSON number); NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_boolean(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_boolean'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_boolean(jsonb) IS
'a property value as boolean: true, false, "true" or "false"; NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_timestamptz(value jsonb)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_timestamptz'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_timestamptz(jsonb) IS
'a property value as timestamptz: an ISO 8601 string read as ingest reads event times (no zone: UTC); NULL for anything else (never an error)';

-- What the typed views read: the stream's <stream>_resolved view (the
-- stream plus resolved_user_id, from the identity graph) when it exists,
-- else the stream with resolved_user_id = coalesce(user_id, anonymous_id).
-- The one place that decides.
CREATE FUNCTION eventkit.event_views_source(stream regclass)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	nsp name;
	rel name;
BEGIN
	SELECT n.nspname, c.relname INTO nsp, rel
	  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) stream;
	IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', nsp, rel OPERATOR(pg_catalog.||) '_resolved')) IS NOT NULL THEN
		RETURN pg_catalog.format('%I.%I', nsp, rel OPERATOR(pg_catalog.||) '_resolved');
	END IF;
	RETURN pg_catalog.format('(SELECT e.*, COALESCE(e.user_id, e.anonymous_id) AS resolved_user_id FROM %I.%I e)',
							 nsp, rel);
END
$fn$;
COMMENT ON FUNCTION eventkit.event_views_source(regclass) IS
'what the typed event views of a stream read: <stream>_resolved when it exists, else the stream with resolved_user_id = coalesce(user_id, anonymous_id)';

-- create_event_views: one view per planned track event, and tracks, pages,
-- identifies and users.  Re-running it after a new plan version replaces
-- the views in place: new properties become new columns at the end; a
-- property the plan no longer has keeps its column (and its type), so
-- nothing built on the views breaks; a property whose type changed makes
-- its view dropped and re-created, or, when other objects depend on the
-- view, an error that names them.
CREATE FUNCTION eventkit.create_event_views(stream regclass, target_schema name DEFAULT NULL)
RETURNS SETOF regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	st record;
	ver integer;
	nsp name;
	src text;
	v record;
	prop record;
	oldcol record;
	names text[];
	types text[];
	exprs text[];
	fnames text[];
	ftypes text[];
	fexprs text[];
	i integer;
	cname text;
	expr text;
	changed text;
	deps text;
	vid regclass;
	ncommon integer;
	kept text[];
	keys text[];
	fkeys text[];
	note text;
	key text;
	allprops jsonb;
	clash record;
	reserved constant text[] := ARRAY['tracks', 'pages', 'screens', 'identifies', 'users'];
	common constant text[] := ARRAY['message_id', 'ts', 'received_at', 'event', 'user_id',
									'anonymous_id', 'resolved_user_id', 'context'];
BEGIN
	SELECT s.plan_id, s.plan_version, p.name AS plan_name, n.nspname AS stream_schema
	  INTO st
	  FROM eventkit.streams s
	  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	  LEFT JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) s.plan_id
	 WHERE s.relid OPERATOR(pg_catalog.=) stream;
	IF NOT FOUND THEN
		RAISE EXCEPTION '"%" is not an eventkit stream', stream
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create streams with eventkit.create_stream().';
	END IF;
	IF st.plan_id IS NULL OR st.plan_name IS NULL THEN
		RAISE EXCEPTION 'stream "%" has no tracking plan', stream
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'The typed views take their columns from the planned properties.',
				  HINT = 'Attach one with eventkit.attach_plan().';
	END IF;
	IF NOT pg_catalog.has_table_privilege(stream, 'SELECT') THEN
		RAISE EXCEPTION 'permission denied for table %', stream
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The views read the stream with the rights of their owner, the caller.';
	END IF;
	ver := COALESCE(NULLIF(st.plan_version, 0),
					(SELECT pg_catalog.max(pv.version) FROM eventkit.plan_versions pv
					  WHERE pv.plan_id OPERATOR(pg_catalog.=) st.plan_id));
	nsp := COALESCE(target_schema, st.stream_schema);
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) nsp) THEN
		RAISE EXCEPTION 'schema "%" does not exist', nsp USING ERRCODE = 'invalid_schema_name';
	END IF;
	-- not among eventkit's objects or the system's (DROP EXTENSION, pg_dump)
	IF nsp OPERATOR(pg_catalog.=) ANY (ARRAY['eventkit', 'eventkit_internal', 'rollups', 'information_schema'])
	   OR nsp OPERATOR(pg_catalog.~) '^pg_' THEN
		RAISE EXCEPTION 'cannot create event views in schema "%"', nsp
			USING ERRCODE = 'invalid_schema_name',
				  HINT = 'Give the views a schema of their own.';
	END IF;
	src := eventkit.event_views_source(stream) OPERATOR(pg_catalog.||) ' s';

	-- the plan's properties, read once (per view, a plan of 10,000 events
	-- made this quadratic): per event type, field and event, in the order
	-- they claim columns
	allprops := (SELECT pg_catalog.jsonb_object_agg(x.k, x.a) FROM (
		SELECT pg_catalog.concat_ws(E'\x01', pp.event_type, pp.field, pp.event) AS k,
			   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('property', pp.property, 'column_type', pp.column_type)
									ORDER BY eventkit.warehouse_name(pp.property) OPERATOR(pg_catalog.<>) pp.property, pp.property) AS a
		  FROM eventkit.plan_properties(st.plan_name, ver) pp
		 WHERE pp.property IS NOT NULL
		 GROUP BY 1) x);
	-- two planned events that would be one view
	SELECT w.view_name INTO clash FROM (
		SELECT eventkit.warehouse_name(e.event) AS view_name, pg_catalog.count(*) AS n
		  FROM (SELECT DISTINCT pp.event FROM eventkit.plan_properties(st.plan_name, ver) pp
				 WHERE pp.event_type OPERATOR(pg_catalog.=) 'track' AND pp.event IS NOT NULL) e
		 GROUP BY 1) w
	 WHERE w.n OPERATOR(pg_catalog.>) 1 ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'two planned events would both be view "%"', clash.view_name
			USING ERRCODE = 'duplicate_table',
				  HINT = 'Rename one of them in the tracking plan.';
	END IF;

	-- the views: planned track events, then the standard ones
	FOR v IN
		WITH ev AS (
			SELECT DISTINCT pp.event FROM eventkit.plan_properties(st.plan_name, ver) pp
			 WHERE pp.event_type OPERATOR(pg_catalog.=) 'track' AND pp.event IS NOT NULL)
		SELECT eventkit.warehouse_name(ev.event) AS view_name, 'event' AS kind, ev.event,
			   'track' AS event_type, 'properties' AS field, 1 AS ord
		  FROM ev
		UNION ALL
		SELECT x.view_name, x.view_name, NULL, x.event_type, x.field, x.ord
		  FROM (VALUES ('tracks', 'track', NULL, 2), ('pages', 'page', NULL, 3), ('screens', 'screen', NULL, 4),
					   ('identifies', 'identify', 'traits', 5), ('users', NULL, NULL, 6)) x(view_name, event_type, field, ord)
		ORDER BY ord, view_name, event
	LOOP
		IF v.kind OPERATOR(pg_catalog.=) 'event' THEN
			IF v.view_name OPERATOR(pg_catalog.=) ANY (reserved) THEN
				RAISE EXCEPTION 'event "%" would be view "%", which is one of the standard views', v.event, v.view_name
					USING ERRCODE = 'duplicate_table',
						  HINT = 'Rename the event in the tracking plan, or give the views a schema of their own.';
			END IF;
		END IF;

		-- the columns it should have: the common ones, then the typed ones
		keys := NULL;
		IF v.kind OPERATOR(pg_catalog.=) 'users' THEN
			names := ARRAY['user_id', 'traits', 'first_seen', 'last_seen'];
			types := ARRAY['text', 'jsonb', 'timestamp with time zone', 'timestamp with time zone'];
			exprs := ARRAY['u.resolved_user_id', 'COALESCE(t.traits, ''{}''::jsonb)', 'u.first_seen', 'u.last_seen'];
		ELSE
			names := ARRAY['message_id', 'ts', 'received_at'];
			types := ARRAY['text', 'timestamp with time zone', 'timestamp with time zone'];
			exprs := ARRAY['s.message_id', 's.ts', 's.received_at'];
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['event', 'tracks']) THEN
				names := names OPERATOR(pg_catalog.||) 'event'::text;
				types := types OPERATOR(pg_catalog.||) 'text'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.event'::text;
			ELSIF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['pages', 'screens']) THEN
				names := names OPERATOR(pg_catalog.||) 'name'::text;
				types := types OPERATOR(pg_catalog.||) 'text'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.event'::text;
			END IF;
			names := names OPERATOR(pg_catalog.||) ARRAY['user_id', 'anonymous_id', 'resolved_user_id', 'context'];
			types := types OPERATOR(pg_catalog.||) ARRAY['text', 'text', 'text', 'jsonb'];
			exprs := exprs OPERATOR(pg_catalog.||) ARRAY['s.user_id', 's.anonymous_id', 's.resolved_user_id', 's.context'];
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['tracks', 'pages', 'screens']) THEN
				names := names OPERATOR(pg_catalog.||) 'properties'::text;
				types := types OPERATOR(pg_catalog.||) 'jsonb'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.properties'::text;
			ELSIF v.kind OPERATOR(pg_catalog.=) 'identifies' THEN
				names := names OPERATOR(pg_catalog.||) 'traits'::text;
				types := types OPERATOR(pg_catalog.||) 'jsonb'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.traits'::text;
			END IF;
			IF v.kind OPERATOR(pg_catalog.=) 'pages' THEN
				-- as Segment's pages table: the page properties every SDK sends
				FOREACH cname IN ARRAY ARRAY['path', 'referrer', 'search', 'title', 'url'] LOOP
					names := names OPERATOR(pg_catalog.||) cname;
					types := types OPERATOR(pg_catalog.||) 'text'::text;
					exprs := exprs OPERATOR(pg_catalog.||)
						pg_catalog.format('eventkit.jsonb_to_text(s.properties OPERATOR(pg_catalog.->) %L)', cname);
				END LOOP;
			END IF;
			IF v.kind OPERATOR(pg_catalog.=) 'pages' THEN
				-- as Segment's warehouses: the page context every web SDK sends
				FOREACH cname IN ARRAY ARRAY['path', 'referrer', 'search', 'title', 'url'] LOOP
					names := names OPERATOR(pg_catalog.||) ('context_page_' OPERATOR(pg_catalog.||) cname);
					types := types OPERATOR(pg_catalog.||) 'text'::text;
					exprs := exprs OPERATOR(pg_catalog.||)
						pg_catalog.format('eventkit.jsonb_to_text(s.context OPERATOR(pg_catalog.->) ''page'' OPERATOR(pg_catalog.->) %L)', cname);
				END LOOP;
			END IF;
			-- the planned properties (traits for identifies)
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['event', 'identifies']) THEN
				ncommon := pg_catalog.array_length(names, 1);
				keys := pg_catalog.array_fill(NULL::text, ARRAY[ncommon]);
				-- a property already spelled as its column claims it first
				FOR prop IN
					SELECT x.e OPERATOR(pg_catalog.->>) 'property' AS property,
						   x.e OPERATOR(pg_catalog.->>) 'column_type' AS column_type
					  FROM pg_catalog.jsonb_array_elements(COALESCE(allprops OPERATOR(pg_catalog.->)
								pg_catalog.concat_ws(E'\x01', v.event_type, v.field, v.event), '[]'))
						   WITH ORDINALITY AS x(e, ord)
					 ORDER BY x.ord
				LOOP
					-- (warehouse_name clips to 63 bytes, as PostgreSQL would
					-- truncate; a prefix or a suffix clips what it extends)
					cname := eventkit.warehouse_name(prop.property);
					IF cname OPERATOR(pg_catalog.=) ANY (names[1:ncommon]) THEN
						cname := eventkit.warehouse_name(v.field OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) cname);
					END IF;
					i := 2;
					WHILE cname OPERATOR(pg_catalog.=) ANY (names) LOOP
						cname := pg_catalog.regexp_replace(cname, '_[0-9]+$', '');
						WHILE pg_catalog.octet_length(cname) OPERATOR(pg_catalog.+) pg_catalog.octet_length('_' OPERATOR(pg_catalog.||) i) OPERATOR(pg_catalog.>) 63 LOOP
							cname := pg_catalog.left(cname, -1);
						END LOOP;
						cname := cname OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) i;
						i := i OPERATOR(pg_catalog.+) 1;
					END LOOP;
					names := names OPERATOR(pg_catalog.||) cname;
					keys := keys OPERATOR(pg_catalog.||) prop.property;
					types := types OPERATOR(pg_catalog.||) (CASE prop.column_type WHEN 'timestamptz' THEN 'timestamp with time zone'
															 ELSE prop.column_type END);
					exprs := exprs OPERATOR(pg_catalog.||) (CASE prop.column_type
						WHEN 'jsonb' THEN pg_catalog.format('(s.%I OPERATOR(pg_catalog.->) %L)', v.field, prop.property)
						ELSE pg_catalog.format('eventkit.jsonb_to_%s(s.%I OPERATOR(pg_catalog.->) %L)',
											   prop.column_type, v.field, prop.property) END);
				END LOOP;
			END IF;
		END IF;

		-- an existing view keeps its columns, in their order; new ones go at the end
		vid := pg_catalog.to_regclass(pg_catalog.format('%I.%I', nsp, v.view_name));
		fnames := '{}';
		ftypes := '{}';
		fexprs := '{}';
		changed := NULL;
		kept := '{}';
		fkeys := '{}';
		IF vid IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) vid) OPERATOR(pg_catalog.=) 'v' THEN
			FOR oldcol IN
				SELECT a.attnum, a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
				  FROM pg_catalog.pg_attribute a
				 WHERE a.attrelid OPERATOR(pg_catalog.=) vid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
				 ORDER BY a.attnum
			LOOP
				i := pg_catalog.array_position(names, oldcol.name);
				IF i IS NOT NULL THEN
					IF types[i] OPERATOR(pg_catalog.<>) oldcol.type THEN
						changed := pg_catalog.format('column %I is %s, plan version %s makes it %s', oldcol.name, oldcol.type, ver, types[i]);
					END IF;
					fnames := fnames OPERATOR(pg_catalog.||) oldcol.name;
					ftypes := ftypes OPERATOR(pg_catalog.||) types[i];
					fexprs := fexprs OPERATOR(pg_catalog.||) exprs[i];
					fkeys := fkeys OPERATOR(pg_catalog.||) keys[i];
					CONTINUE;
				END IF;
				-- a property the plan no longer has: keep it, read as the
				-- earlier version did (its column comment names the property)
				expr := NULL;
				note := pg_catalog.col_description(vid, oldcol.attnum);
				IF v.field IS NOT NULL AND note LIKE v.field OPERATOR(pg_catalog.||) ' "%' THEN
					BEGIN
						key := (pg_catalog.substr(note, pg_catalog.length(v.field) OPERATOR(pg_catalog.+) 2))::jsonb
							OPERATOR(pg_catalog.#>>) '{}';
						expr := pg_catalog.format('(s.%I OPERATOR(pg_catalog.->) %L)', v.field, key);
					EXCEPTION WHEN invalid_text_representation THEN
						key := NULL;
					END;
				END IF;
				IF expr IS NULL THEN
					expr := 'NULL';
					RAISE WARNING 'column % of view % was never planned: it stays, always NULL', oldcol.name,
						pg_catalog.format('%I.%I', nsp, v.view_name);
				END IF;
				kept := kept OPERATOR(pg_catalog.||) oldcol.name;
				fkeys := fkeys OPERATOR(pg_catalog.||) key;
				fnames := fnames OPERATOR(pg_catalog.||) oldcol.name;
				ftypes := ftypes OPERATOR(pg_catalog.||) oldcol.type;
				-- the old type, through the cast the old plan chose
				fexprs := fexprs OPERATOR(pg_catalog.||) (CASE
					WHEN oldcol.type OPERATOR(pg_catalog.=) 'jsonb' OR expr OPERATOR(pg_catalog.=) 'NULL'
						THEN expr OPERATOR(pg_catalog.||) '::' OPERATOR(pg_catalog.||) oldcol.type
					WHEN oldcol.type OPERATOR(pg_catalog.=) 'timestamp with time zone'
						THEN 'eventkit.jsonb_to_timestamptz' OPERATOR(pg_catalog.||) expr
					ELSE 'eventkit.jsonb_to_' OPERATOR(pg_catalog.||) oldcol.type OPERATOR(pg_catalog.||) expr END);
			END LOOP;
			IF kept OPERATOR(pg_catalog.<>) '{}' THEN
				RAISE NOTICE 'view % keeps columns that plan version % no longer has: %',
					pg_catalog.format('%I.%I', nsp, v.view_name), ver, pg_catalog.array_to_string(kept, ', ')
					USING HINT = 'They read the properties as the earlier version typed them; drop the view and run create_event_views again to lose them.';
			END IF;
			FOR i IN 1 .. pg_catalog.array_length(names, 1) LOOP
				IF NOT names[i] OPERATOR(pg_catalog.=) ANY (fnames) THEN
					fnames := fnames OPERATOR(pg_catalog.||) names[i];
					ftypes := ftypes OPERATOR(pg_catalog.||) types[i];
					fexprs := fexprs OPERATOR(pg_catalog.||) exprs[i];
					fkeys := fkeys OPERATOR(pg_catalog.||) keys[i];
				END IF;
			END LOOP;
		ELSE
			fnames := names;
			ftypes := types;
			fexprs := exprs;
			fkeys := keys;
		END IF;

		IF changed IS NOT NULL THEN
			SELECT pg_catalog.string_agg(DISTINCT r.ev_class::pg_catalog.regclass::text, ', ') INTO deps
			  FROM pg_catalog.pg_depend d
			  JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
			 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
			   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND d.refobjid OPERATOR(pg_catalog.=) vid
			   AND r.ev_class OPERATOR(pg_catalog.<>) vid;
			IF deps IS NOT NULL THEN
				RAISE EXCEPTION 'cannot change view % for plan version %: %', pg_catalog.format('%I.%I', nsp, v.view_name), ver, changed
					USING ERRCODE = 'dependent_objects_still_exist',
						  DETAIL = pg_catalog.format('Objects that depend on the view: %s.', deps),
						  HINT = 'Drop or change those objects and run create_event_views again, or keep the stream on the earlier plan version.';
			END IF;
			RAISE NOTICE 'view % is re-created: %', pg_catalog.format('%I.%I', nsp, v.view_name), changed;
			EXECUTE pg_catalog.format('DROP VIEW %I.%I', nsp, v.view_name);
		END IF;

		EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %I.%I AS SELECT %s %s',
			nsp, v.view_name,
			(SELECT pg_catalog.string_agg(pg_catalog.format('%s::%s AS %I', e, t, c), ', ' ORDER BY o)
			   FROM unnest(fexprs, ftypes, fnames) WITH ORDINALITY x(e, t, c, o)),  -- ROWS FROM: not qualified
			CASE v.kind
				WHEN 'event' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''track'' AND s.event OPERATOR(pg_catalog.=) %L', src, v.event)
				WHEN 'tracks' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''track''', src)
				WHEN 'pages' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''page''', src)
				WHEN 'screens' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''screen''', src)
				WHEN 'identifies' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''identify''', src)
				ELSE pg_catalog.format(
					'FROM (SELECT s.resolved_user_id, pg_catalog.min(s.ts) AS first_seen, pg_catalog.max(s.ts) AS last_seen'
					' FROM %1$s WHERE s.resolved_user_id IS NOT NULL GROUP BY s.resolved_user_id) u'
					' LEFT JOIN (SELECT s.resolved_user_id, pg_catalog.jsonb_object_agg(k.key, k.value ORDER BY s.ts, s.message_id) AS traits'
					' FROM %1$s CROSS JOIN LATERAL pg_catalog.jsonb_each(s.traits) k'
					' WHERE s.type OPERATOR(pg_catalog.=) ''identify'' GROUP BY s.resolved_user_id) t'
					' ON t.resolved_user_id OPERATOR(pg_catalog.=) u.resolved_user_id', src)
			END);
		EXECUTE pg_catalog.format('COMMENT ON VIEW %I.%I IS %L', nsp, v.view_name,
			CASE v.kind
				WHEN 'event' THEN pg_catalog.format('eventkit: "%s" events of stream %s, typed by tracking plan "%s" version %s', v.event, stream, st.plan_name, ver)
				WHEN 'users' THEN pg_catalog.format('eventkit: the users of stream %s, one row per resolved user, latest traits merged', stream)
				ELSE pg_catalog.format('eventkit: the %s of stream %s (tracking plan "%s" version %s)', v.view_name, stream, st.plan_name, ver)
			END);
		-- each property column says which property it reads
		FOR i IN 1 .. COALESCE(pg_catalog.array_length(fkeys, 1), 0) LOOP
			IF fkeys[i] IS NOT NULL THEN
				EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', nsp, v.view_name, fnames[i],
										  v.field OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) pg_catalog.to_jsonb(fkeys[i])::text);
			END IF;
		END LOOP;
		RETURN NEXT pg_catalog.format('%I.%I', nsp, v.view_name)::pg_catalog.regclass;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION eventkit.create_event_views(regclass, name) IS
'create or update typed views of a stream from its tracking plan: one per planned event, and tracks, pages, screens, identifies and users; owned by the caller';
-- ==== Identity graph and erasure (issue 18) ====
-- (src/pipeline/identity.c, src/catalog/identity.c, src/stream/identity.c;
-- sql/identity.sql, sql/forget_user.sql, test/specs/identity_merge.spec;
-- docs/identity.md)

-- The identity graph of each stream, kept flat by ingest: every id an event
-- linked (anonymousId with userId; an alias's previousId to its userId)
-- names its canonical user, a userId; the canonical user's own row names
-- itself.  Readable through eventkit.identities and <stream>_resolved.
-- The ids compare bytewise (COLLATE "C"): ingest probes and inserts a
-- batch's ids in both indexes, and a comparison under the database's
-- collation cost several times as much (test/bench/instructions.sh); for
-- equality, which is all identity needs, every deterministic collation
-- agrees, and a comparison with a column of the database's default
-- collation takes "C" (a non-default implicit collation wins).
CREATE TABLE eventkit.identity_links (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	id text COLLATE "C" NOT NULL,
	canonical_id text COLLATE "C" NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen timestamptz NOT NULL,
	CONSTRAINT identity_links_pkey PRIMARY KEY (stream_id, id)
);
CREATE INDEX identity_links_canonical ON eventkit.identity_links (stream_id, canonical_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.identity_links', '');
REVOKE ALL ON TABLE eventkit.identity_links FROM PUBLIC;

-- Who reads a stream's links: its owner (a member of the owning role), a
-- role that may SELECT the stream, or one that may SELECT the stream's
-- <stream>_resolved view (which reads the links with its owner's rights,
-- while this policy sees the role that queries the view).  eventkit's own
-- code reads them as the table's owner, which the policy does not restrict.
ALTER TABLE eventkit.identity_links ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_reader ON eventkit.identity_links FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) identity_links.stream_id
					  AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
						   OR pg_catalog.has_table_privilege(c.oid, 'SELECT')
						   OR EXISTS (SELECT 1 FROM pg_catalog.pg_class v
									   WHERE v.relnamespace OPERATOR(pg_catalog.=) c.relnamespace
										 AND v.relname OPERATOR(pg_catalog.=) (c.relname::pg_catalog.text
											 OPERATOR(pg_catalog.||) '_resolved')::pg_catalog.name
										 AND pg_catalog.has_table_privilege(v.oid, 'SELECT')))));
GRANT SELECT ON eventkit.identity_links TO PUBLIC;
COMMENT ON POLICY stream_reader ON eventkit.identity_links IS
'a stream''s links are read by its owner and by the roles that may read the stream or its <stream>_resolved view';

COMMENT ON TABLE eventkit.identity_links IS
'the identity graph of each stream, kept at ingest: every linked id and its canonical user (a userId)';
COMMENT ON COLUMN eventkit.identity_links.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.identity_links.id IS 'an anonymousId, previousId or userId that an event linked';
COMMENT ON COLUMN eventkit.identity_links.canonical_id IS 'the userId every id of its set resolves to (the row of the canonical user names itself)';
COMMENT ON COLUMN eventkit.identity_links.first_seen IS 'the event time of the first link that named the id';
COMMENT ON COLUMN eventkit.identity_links.last_seen IS 'the event time of the latest link that named the id';

-- The audit log of eventkit.forget_user(): who erased which ids of a
-- stream, when, and how many rows of each kind; never the erased data.
-- Kept when the stream is dropped.
CREATE TABLE eventkit.erasures (
	erasure_id bigserial NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: kept after drop_stream)
	stream text NOT NULL,
	user_id text NOT NULL,
	ids text[] NOT NULL,
	erased_by name NOT NULL,
	erased_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	events bigint NOT NULL,
	quarantined bigint NOT NULL,
	conflicts bigint NOT NULL,
	ledger_rows bigint NOT NULL,
	rollup_buckets bigint NOT NULL,
	CONSTRAINT erasures_pkey PRIMARY KEY (erasure_id)
);
CREATE INDEX erasures_stream ON eventkit.erasures (stream_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.erasures', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.erasures_erasure_id_seq', '');
REVOKE ALL ON TABLE eventkit.erasures FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.erasures_erasure_id_seq FROM PUBLIC;
ALTER TABLE eventkit.erasures ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.erasures FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) erasures.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.erasures TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.erasures IS
'a stream''s owner (or a member of the owning role) reads the stream''s erasures';

COMMENT ON TABLE eventkit.erasures IS
'the audit log of eventkit.forget_user: who erased which ids of a stream, when, and how many rows; readable by the stream''s owner';
COMMENT ON COLUMN eventkit.erasures.erasure_id IS 'the erasure''s id';
COMMENT ON COLUMN eventkit.erasures.stream_id IS 'the stream (eventkit.streams; the row stays after drop_stream)';
COMMENT ON COLUMN eventkit.erasures.stream IS 'the stream''s qualified name at the time';
COMMENT ON COLUMN eventkit.erasures.user_id IS 'the id forget_user was called with';
COMMENT ON COLUMN eventkit.erasures.ids IS 'every id erased and suppressed: the user''s whole identity set';
COMMENT ON COLUMN eventkit.erasures.erased_by IS 'the session user that called forget_user';
COMMENT ON COLUMN eventkit.erasures.erased_at IS 'when (the transaction''s time)';
COMMENT ON COLUMN eventkit.erasures.events IS 'events deleted from the stream';
COMMENT ON COLUMN eventkit.erasures.quarantined IS 'events deleted from eventkit.quarantine';
COMMENT ON COLUMN eventkit.erasures.conflicts IS 'events deleted from eventkit.conflicts';
COMMENT ON COLUMN eventkit.erasures.ledger_rows IS 'dedup ledger entries deleted';
COMMENT ON COLUMN eventkit.erasures.rollup_buckets IS 'rollup buckets rebuilt from the remaining events (summed over the stream''s rollups)';
COMMENT ON SEQUENCE eventkit.erasures_erasure_id_seq IS 'ids of eventkit.erasures';

-- Ids erased by forget_user: a later event carrying one (userId,
-- anonymousId or previousId) is rejected with reason "suppressed".
CREATE TABLE eventkit.suppressions (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	id text NOT NULL,
	erasure_id bigint NOT NULL,		-- eventkit.erasures (no foreign key: parallel restore order)
	suppressed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT suppressions_pkey PRIMARY KEY (stream_id, id)
);
SELECT pg_catalog.pg_extension_config_dump('eventkit.suppressions', '');
REVOKE ALL ON TABLE eventkit.suppressions FROM PUBLIC;
ALTER TABLE eventkit.suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.suppressions FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) suppressions.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.suppressions TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.suppressions IS
'a stream''s owner (or a member of the owning role) reads the stream''s suppressed ids';

COMMENT ON TABLE eventkit.suppressions IS
'ids erased by eventkit.forget_user: later events carrying one are rejected (reason suppressed); readable by the stream''s owner';
COMMENT ON COLUMN eventkit.suppressions.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.suppressions.id IS 'a userId, anonymousId or previousId of an erased user';
COMMENT ON COLUMN eventkit.suppressions.erasure_id IS 'the erasure that suppressed it (eventkit.erasures)';
COMMENT ON COLUMN eventkit.suppressions.suppressed_at IS 'when it was suppressed';

-- The identity graph, as pg_stats shows statistics: only the streams the
-- user may SELECT from.
CREATE VIEW eventkit.identities WITH (security_barrier) AS
SELECT s.relid AS stream,
	   l.id,
	   l.canonical_id AS canonical_user_id,
	   l.first_seen,
	   l.last_seen
  FROM eventkit.identity_links l
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT');
REVOKE ALL ON TABLE eventkit.identities FROM PUBLIC;
GRANT SELECT ON eventkit.identities TO PUBLIC;

COMMENT ON VIEW eventkit.identities IS
'the identity graph of the streams the user may read: each linked id and its canonical user';
COMMENT ON COLUMN eventkit.identities.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.identities.id IS 'an id that an event linked (anonymousId, previousId or userId)';
COMMENT ON COLUMN eventkit.identities.canonical_user_id IS 'the userId it resolves to';
COMMENT ON COLUMN eventkit.identities.first_seen IS 'the event time of the first link that named it';
COMMENT ON COLUMN eventkit.identities.last_seen IS 'the event time of the latest link that named it';

CREATE FUNCTION eventkit.resolve_user(stream regclass, id text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_resolve_user'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.resolve_user(regclass, text) IS
'the canonical user of an id in a stream''s identity graph; the id itself when no event linked it (needs SELECT on the stream)';

CREATE FUNCTION eventkit.forget_user(stream regclass, user_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.forget_user(regclass, text) IS
'erase a user (every id linked to it) from a stream, its quarantine, conflicts, ledger and rollups, and suppress its ids; returns the events deleted (owner only)';

-- Gives every stream without one its <stream>_resolved view, owned by the
-- stream's owner (the 1.3 -> 1.4 update calls it; create_stream makes the
-- view of a new stream).  Not an interface: superusers only.
CREATE FUNCTION eventkit_internal.create_resolved_views()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_create_resolved_views'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit_internal.create_resolved_views() FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.create_resolved_views() IS
'make the <stream>_resolved view of every stream that has none (owned by the stream''s owner, not by the extension); returns how many';

-- the streams made before 1.4 get their resolved view
SELECT eventkit_internal.create_resolved_views();
