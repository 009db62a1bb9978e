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

-- ==== Rollups (src/rollup.c) ====

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====
