\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.1'" to load this file. \quit

/*
 * eventkit 1.0 -> 1.1: JSON Schema validation and tracking plans, rollups,
 * and the background worker's job tables.  A fresh CREATE EXTENSION runs
 * eventkit--1.0.sql and then this file.
 */

-- ==== JSON Schema validation (src/jsonschema*.c) ====

-- ==== Tracking plans (src/plan.c) ====

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

CREATE FUNCTION eventkit.on_sql_drop_rollups()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regclass('eventkit.rollups') IS NULL THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects()
			   WHERE object_type IN ('table', 'schema')) THEN
		PERFORM eventkit.forget_dropped_rollups();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION eventkit.on_sql_drop_rollups() FROM PUBLIC;

CREATE EVENT TRIGGER eventkit_forget_dropped_rollups ON sql_drop
	EXECUTE FUNCTION eventkit.on_sql_drop_rollups();

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====
