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

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====
