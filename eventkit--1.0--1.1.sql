\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.1'" to load this file. \quit

/*
 * eventkit 1.0 -> 1.1: JSON Schema validation and tracking plans, rollups,
 * and the background worker's job tables.  A fresh CREATE EXTENSION runs
 * eventkit--1.0.sql and then this file.
 */

-- ==== JSON Schema validation (src/jsonschema*.c) ====

-- ==== Tracking plans (src/plan.c) ====

-- ==== Rollups (src/rollup.c) ====

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====
