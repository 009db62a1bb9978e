\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.1'" to load this file. \quit

/*
 * eventkit 1.0 -> 1.1: JSON Schema validation and tracking plans, rollups,
 * and the background worker's job tables.  A fresh CREATE EXTENSION runs
 * eventkit--1.0.sql and then this file.
 */

-- ==== JSON Schema validation (src/jsonschema*.c) ====

-- Errors of an instance against a JSON Schema (draft-07), in Ajv's shape:
-- [{"keyword", "instancePath", "schemaPath", "message"}, ...]; [] when valid.
CREATE FUNCTION eventkit.schema_errors(schema jsonb, instance jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'eventkit_schema_errors'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION eventkit.schema_errors(jsonb, jsonb) IS
'validation errors of instance against a JSON Schema draft-07 schema, [] when valid';

-- Whether an instance is valid against a JSON Schema (draft-07).
CREATE FUNCTION eventkit.schema_valid(schema jsonb, instance jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_schema_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION eventkit.schema_valid(jsonb, jsonb) IS
'whether instance is valid against a JSON Schema draft-07 schema';

-- ==== Tracking plans (src/plan.c) ====

-- A tracking plan: a name and its versions.  Versions are immutable: every
-- eventkit.create_plan() call stores a new one.
CREATE TABLE eventkit.plans (
	plan_id integer PRIMARY KEY,
	name text NOT NULL UNIQUE,
	owner oid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE SEQUENCE eventkit.plans_plan_id_seq AS integer OWNED BY eventkit.plans.plan_id;

CREATE TABLE eventkit.plan_versions (
	plan_id integer NOT NULL REFERENCES eventkit.plans ON DELETE CASCADE,
	version integer NOT NULL,
	spec jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL DEFAULT CURRENT_USER,
	PRIMARY KEY (plan_id, version),
	CHECK (version >= 1)
);

-- The plan a stream is checked against; plan_version NULL follows the
-- plan's latest version.
ALTER TABLE eventkit.streams ADD COLUMN plan_id integer;
ALTER TABLE eventkit.streams ADD COLUMN plan_version integer;

-- What the batch envelope lent a quarantined event (sentAt, context), so
-- that a replay sees the event as it was first seen; and the plan it was
-- checked against.
ALTER TABLE eventkit.quarantine ADD COLUMN envelope jsonb;
ALTER TABLE eventkit.quarantine ADD COLUMN plan_id integer;
ALTER TABLE eventkit.quarantine ADD COLUMN replayed_at timestamptz;
ALTER TABLE eventkit.quarantine ADD COLUMN replays integer NOT NULL DEFAULT 0;

-- Violations found per batch, aggregated (one row per batch, event,
-- keyword, property path and action; never updated).
CREATE TABLE eventkit.batch_violations (
	batch_id bigint NOT NULL,
	stream_id integer NOT NULL,
	plan_id integer NOT NULL,
	plan_version integer NOT NULL,
	event text,
	keyword text NOT NULL,
	property_path text NOT NULL,
	action text NOT NULL,
	violations bigint NOT NULL
);
CREATE INDEX ON eventkit.batch_violations (stream_id, batch_id);

SELECT pg_catalog.pg_extension_config_dump('eventkit.plans', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.plans_plan_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.plan_versions', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_violations', '');

REVOKE ALL ON eventkit.plans, eventkit.plan_versions, eventkit.batch_violations FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.plans_plan_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.plans, eventkit.plan_versions TO PUBLIC;

CREATE VIEW eventkit.violation_stats AS
SELECT v.stream_id,
	   s.relid AS stream,
	   p.name AS plan,
	   v.event,
	   v.keyword,
	   v.property_path,
	   v.action,
	   pg_catalog.sum(v.violations)::bigint AS violations,
	   pg_catalog.count(DISTINCT v.batch_id) AS batches,
	   pg_catalog.min(v.plan_version) AS first_plan_version,
	   pg_catalog.max(v.plan_version) AS last_plan_version,
	   pg_catalog.max(v.batch_id) AS last_batch_id
  FROM eventkit.batch_violations v
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) v.stream_id
  JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) v.plan_id
 GROUP BY v.stream_id, s.relid, p.name, v.event, v.keyword, v.property_path, v.action;
GRANT SELECT ON eventkit.violation_stats TO PUBLIC;

CREATE FUNCTION eventkit.create_plan(name text, spec jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_create_plan'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION eventkit.attach_plan(stream regclass, plan text, version integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_attach_plan'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.detach_plan(stream regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_detach_plan'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION eventkit.replay_quarantine(stream regclass, ids bigint[] DEFAULT NULL)
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_replay_quarantine'
LANGUAGE C VOLATILE;

-- ==== Rollups (src/rollup.c) ====

-- One row per rollup: its definition, its watermark (every event with a
-- batch_id up to it is folded in) and how often the background worker
-- refreshes it.  Readable by everyone (the realtime views read the
-- watermark), written only through the functions below.
CREATE TABLE eventkit.rollups (
	rollup_id integer PRIMARY KEY,
	name text NOT NULL,
	relid regclass NOT NULL UNIQUE,
	realtime_view regclass NOT NULL,
	stream_id integer NOT NULL,
	stream regclass NOT NULL,
	bucket interval NOT NULL,
	dimensions text[] NOT NULL,
	measures text[] NOT NULL,
	schedule interval NOT NULL DEFAULT '1 minute',
	watermark bigint NOT NULL DEFAULT 0,
	backfill_target bigint NOT NULL DEFAULT 0,
	events_folded bigint NOT NULL DEFAULT 0,
	last_refresh_at timestamptz,
	last_refresh_events bigint,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK (schedule >= interval '1 second'),
	CHECK (watermark >= 0)
);
CREATE INDEX ON eventkit.rollups (stream_id);
CREATE SEQUENCE eventkit.rollups_rollup_id_seq AS integer OWNED BY eventkit.rollups.rollup_id;
SELECT pg_catalog.pg_extension_config_dump('eventkit.rollups', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.rollups_rollup_id_seq', '');
REVOKE ALL ON eventkit.rollups, eventkit.rollups_rollup_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.rollups TO PUBLIC;

-- Backfill progress: how much of the history that existed at creation is folded.
CREATE VIEW eventkit.rollup_status AS
SELECT r.rollup_id, r.name, r.relid AS rollup, r.stream, r.schedule, r.watermark,
	   r.backfill_target,
	   r.watermark OPERATOR(pg_catalog.>=) r.backfill_target AS backfilled,
	   r.events_folded, r.last_refresh_at, r.last_refresh_events
  FROM eventkit.rollups r;
GRANT SELECT ON eventkit.rollup_status TO PUBLIC;

CREATE FUNCTION eventkit.create_rollup(name text, stream regclass, bucket interval,
									   dimensions text[], measures text[],
									   backfill boolean DEFAULT true)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_rollup'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.refresh_rollup(name text, max_events bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_refresh_rollup'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.drop_rollup(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_drop_rollup'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION eventkit.set_rollup_schedule(name text, schedule interval)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_set_rollup_schedule'
LANGUAGE C VOLATILE;

-- Fold the history of a rollup created with backfill => false (or whose
-- backfill was interrupted), committing after each chunk of about
-- chunk_events events: interruptible, and resumable by calling it again.
-- (No SET clause: a procedure with one cannot commit.)
CREATE PROCEDURE eventkit.backfill_rollup(name text, chunk_events bigint DEFAULT 100000)
LANGUAGE plpgsql
AS $$
DECLARE
	r record;
	n bigint;
	total bigint := 0;
BEGIN
	IF backfill_rollup.name IS NULL OR chunk_events IS NULL OR chunk_events OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'name must not be null and chunk_events must be positive'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	LOOP
		SELECT x.watermark, x.backfill_target INTO r
		  FROM eventkit.rollups x
		 WHERE x.relid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(backfill_rollup.name);
		IF NOT FOUND THEN
			RAISE EXCEPTION 'rollup "%" does not exist', backfill_rollup.name
				USING ERRCODE = 'undefined_object';
		END IF;
		EXIT WHEN r.watermark OPERATOR(pg_catalog.>=) r.backfill_target;
		n := eventkit.refresh_rollup(backfill_rollup.name, chunk_events);
		total := total OPERATOR(pg_catalog.+) n;
		RAISE NOTICE 'rollup %: % events of history folded', backfill_rollup.name, total;
		COMMIT;
	END LOOP;
END
$$;

CREATE FUNCTION eventkit.forget_dropped_rollups()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_forget_dropped_rollups'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.forget_dropped_rollups() FROM PUBLIC;

-- The sql_drop event trigger of 1.0 also forgets rollups whose table (or
-- stream) was dropped with a plain DROP TABLE / DROP SCHEMA.
CREATE OR REPLACE FUNCTION eventkit.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- nothing to do while the extension itself is being dropped
	IF pg_catalog.to_regclass('eventkit.streams') IS NULL THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects()
			   WHERE object_type IN ('table', 'schema')) THEN
		PERFORM eventkit.forget_dropped_rollups();
		PERFORM eventkit.forget_dropped_streams();
	END IF;
END
$$;

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====

-- One row per job.  Stream jobs (premake, retention, ledger, redrive) carry
-- the stream's id (target is its name when the job was made, for reading);
-- other jobs (refresh_rollup) are identified by kind and target.
CREATE TABLE eventkit.jobs (
	job_id bigserial PRIMARY KEY,
	kind text NOT NULL,
	stream_id integer,
	target text NOT NULL,
	schedule interval NOT NULL,
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	next_run_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_run_at timestamptz,
	last_status text,
	last_error text,
	failures integer NOT NULL DEFAULT 0,
	CHECK (kind IN ('premake', 'retention', 'ledger', 'redrive', 'refresh_rollup')),
	CHECK (schedule >= interval '1 second'),
	CHECK (last_status IN ('succeeded', 'failed', 'skipped', 'crashed')),
	CHECK (failures >= 0)
);
CREATE UNIQUE INDEX jobs_stream_kind ON eventkit.jobs (stream_id, kind) WHERE stream_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_kind_target ON eventkit.jobs (kind, target) WHERE stream_id IS NULL;
CREATE INDEX jobs_next_run_at ON eventkit.jobs (next_run_at) WHERE enabled;

-- One row per run of a job; finished runs are deleted after
-- eventkit.job_history_retention.
CREATE TABLE eventkit.job_runs (
	run_id bigserial PRIMARY KEY,
	job_id bigint NOT NULL,
	kind text NOT NULL,
	target text NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	status text NOT NULL,
	message text,
	rows_affected bigint,
	pid integer,
	CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'crashed'))
);
CREATE INDEX job_runs_job ON eventkit.job_runs (job_id, run_id);
CREATE INDEX job_runs_running ON eventkit.job_runs (job_id) WHERE status = 'running';
CREATE INDEX job_runs_ended_at ON eventkit.job_runs (ended_at);

SELECT pg_catalog.pg_extension_config_dump('eventkit.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.jobs_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.job_runs_run_id_seq', '');

REVOKE ALL ON eventkit.jobs, eventkit.job_runs FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.jobs_job_id_seq, eventkit.job_runs_run_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.jobs, eventkit.job_runs TO pg_monitor;

-- (Re)creates a stream's default jobs; existing ones are kept.
CREATE FUNCTION eventkit.schedule_stream_jobs(stream regclass)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_schedule_stream_jobs'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.schedule_stream_jobs(regclass) FROM PUBLIC;

-- Jobs that are not per stream (kind 'refresh_rollup', target the rollup's name).
CREATE FUNCTION eventkit.schedule_job(kind text, target text, schedule interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_schedule_job'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.schedule_job(text, text, interval) FROM PUBLIC;

CREATE FUNCTION eventkit.unschedule_job(kind text, target text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_unschedule_job'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.unschedule_job(text, text) FROM PUBLIC;

-- The scheduler of the current database, from shared memory.
CREATE FUNCTION eventkit.scheduler_status(OUT preloaded boolean, OUT enabled boolean,
										  OUT launcher_pid integer, OUT pid integer,
										  OUT state text, OUT started_at timestamptz,
										  OUT last_loop_at timestamptz,
										  OUT running_jobs integer)
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_scheduler_status'
LANGUAGE C VOLATILE;

-- Health checks.  Every view named eventkit.health_<component> has the
-- columns (component, target, status, value, detail), status one of ok,
-- warning, error; eventkit.health() returns the rows of all of them, so a
-- subsystem adds its checks by creating such a view.
CREATE VIEW eventkit.health_scheduler AS
SELECT 'scheduler'::text AS component,
	   pg_catalog.current_database()::text AS target,
	   CASE WHEN NOT s.preloaded OR NOT s.enabled THEN 'warning'
			WHEN s.pid IS NULL THEN 'error'
			WHEN s.last_loop_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 (3 OPERATOR(pg_catalog.*) pg_catalog.current_setting('eventkit.naptime')::pg_catalog.interval
				  OPERATOR(pg_catalog.+) interval '5 seconds')) THEN 'warning'
			ELSE 'ok' END AS status,
	   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 3) AS value,
	   CASE WHEN NOT s.preloaded THEN 'eventkit is not in shared_preload_libraries: jobs run only by hand (eventkit.run_maintenance)'
			WHEN NOT s.enabled THEN 'eventkit.scheduler_enabled is off'
			WHEN s.pid IS NULL THEN pg_catalog.format('no scheduler running (%s)', s.state)
			ELSE pg_catalog.format('scheduler pid %s, %s job(s) running, last check %s s ago', s.pid, s.running_jobs,
								   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 1))
	   END AS detail
  FROM eventkit.scheduler_status() s;

CREATE VIEW eventkit.health_partitions AS
SELECT 'partitions'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN a.ahead OPERATOR(pg_catalog.>=) s.premake THEN 'ok'
			WHEN a.ahead OPERATOR(pg_catalog.=) 0 THEN 'error'
			ELSE 'warning' END AS status,
	   a.ahead::numeric AS value,
	   pg_catalog.format('%s of %s future partitions ready', a.ahead, s.premake) AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS ahead
				  FROM eventkit.partitions(s.relid) p
				 WHERE p.range_start OPERATOR(pg_catalog.>) pg_catalog.now()) a;

CREATE VIEW eventkit.health_quarantine AS
SELECT 'quarantine'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN q.n OPERATOR(pg_catalog.=) 0 THEN 'ok' ELSE 'warning' END AS status,
	   COALESCE(pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) q.oldest), 3), 0) AS value,
	   CASE WHEN q.n OPERATOR(pg_catalog.=) 0 THEN 'no quarantined events'
			ELSE pg_catalog.format('%s quarantined events (%s out_of_range), the oldest since %s',
								   q.n, q.out_of_range, q.oldest) END AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS n,
					   pg_catalog.count(*) FILTER (WHERE qq.reasons OPERATOR(pg_catalog.@>)
												   '[{"reason": "out_of_range"}]'::pg_catalog.jsonb) AS out_of_range,
					   pg_catalog.min(qq.quarantined_at) AS oldest
				  FROM eventkit.quarantine qq
				 WHERE qq.stream_id OPERATOR(pg_catalog.=) s.stream_id) q;

CREATE VIEW eventkit.health_ledger AS
SELECT 'ledger'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN g.current_start OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 (2 OPERATOR(pg_catalog.*) s.dedup_window))
			THEN 'warning' ELSE 'ok' END AS status,
	   COALESCE(z.bytes, 0)::numeric AS value,
	   pg_catalog.format('%s generation(s), %s', g.n, pg_catalog.pg_size_pretty(COALESCE(z.bytes, 0))) AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS n,
					   pg_catalog.max(lg.started_at) FILTER (WHERE lg.ended_at IS NULL) AS current_start
				  FROM eventkit.ledger_generations lg
				 WHERE lg.stream_id OPERATOR(pg_catalog.=) s.stream_id) g,
	   LATERAL (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(i.inhrelid))::bigint AS bytes
				  FROM pg_catalog.pg_inherits i
				 WHERE i.inhparent OPERATOR(pg_catalog.=)
					   pg_catalog.to_regclass(pg_catalog.format('eventkit_internal.ledger_%s', s.stream_id))::pg_catalog.oid) z;

CREATE VIEW eventkit.health_jobs AS
SELECT 'job'::text AS component,
	   pg_catalog.format('%s %s', j.kind, j.target) AS target,
	   CASE WHEN j.last_status IN ('failed', 'crashed') THEN 'error'
			WHEN j.enabled AND j.next_run_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 GREATEST(j.schedule, interval '1 minute')) THEN 'warning'
			ELSE 'ok' END AS status,
	   j.failures::numeric AS value,
	   CASE WHEN j.last_status IN ('failed', 'crashed')
			THEN pg_catalog.format('%s %s time(s) in a row, last: %s', j.last_status, j.failures, j.last_error)
			WHEN NOT j.enabled THEN 'disabled'
			WHEN j.last_status IS NULL THEN 'not run yet'
			ELSE pg_catalog.format('last run %s', j.last_status) END AS detail
  FROM eventkit.jobs j;

-- Rollups: how long since the last refresh, when the stream has events the
-- rollup has not folded yet (the realtime view still shows them).
CREATE VIEW eventkit.health_rollups AS
SELECT 'rollup'::text AS component,
	   r.name AS target,
	   CASE WHEN NOT p.pending THEN 'ok'
			WHEN COALESCE(r.last_refresh_at, r.created_at) OPERATOR(pg_catalog.<)
				 (pg_catalog.now() OPERATOR(pg_catalog.-)
				  (2 OPERATOR(pg_catalog.*) r.schedule OPERATOR(pg_catalog.+) interval '1 minute'))
			THEN 'warning'
			ELSE 'ok' END AS status,
	   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-)
							COALESCE(r.last_refresh_at, r.created_at)), 3) AS value,
	   CASE WHEN p.pending
			THEN pg_catalog.format('events not folded yet; last refresh %s, schedule %s',
								   COALESCE(r.last_refresh_at::text, 'never'), r.schedule)
			ELSE pg_catalog.format('up to date (watermark %s)', r.watermark) END AS detail
  FROM eventkit.rollups r
 CROSS JOIN LATERAL (
	SELECT EXISTS (SELECT 1 FROM eventkit.ingest_batches b
					WHERE b.stream_id OPERATOR(pg_catalog.=) r.stream_id
					  AND b.batch_id OPERATOR(pg_catalog.>) r.watermark
					  AND b.accepted OPERATOR(pg_catalog.>) 0) AS pending) p;

GRANT SELECT ON eventkit.health_scheduler, eventkit.health_partitions, eventkit.health_quarantine,
	eventkit.health_ledger, eventkit.health_jobs, eventkit.health_rollups TO pg_monitor;

CREATE FUNCTION eventkit.health()
RETURNS TABLE(component text, target text, status text, value numeric, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v name;
BEGIN
	FOR v IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'eventkit'::regnamespace AND c.relkind = 'v'
				AND c.relname LIKE 'health\_%'
			  ORDER BY c.relname
	LOOP
		RETURN QUERY EXECUTE format('SELECT component::text, target::text, status::text,'
									' value::numeric, detail::text FROM eventkit.%I', v);
	END LOOP;
END
$$;

-- Jobs for the streams that exist already.
SELECT eventkit.schedule_stream_jobs(s.relid) FROM eventkit.streams s
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid)
 ORDER BY s.stream_id;
