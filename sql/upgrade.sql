-- Upgrade from the oldest version: a 1.0 install with data, updated to the
-- current version, must keep its data and end up with exactly the objects
-- (and column definitions) of a fresh install.
CREATE EXTENSION eventkit VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventkit';
SELECT eventkit.create_stream('up_ev');
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u1", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u2", "userId": "a", "event": "Before Upgrade"}]');

-- 1.1 (no ledger filters in the catalog) with this library: a ledger
-- generation sealed there (by age) is probed without a filter
ALTER EXTENSION eventkit UPDATE TO '1.1';
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days';
SELECT eventkit.run_maintenance('up_ev');
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u1", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u0", "userId": "a", "event": "At 1.1"}]');
-- a tracking plan (its owner an OID at 1.1) and a quarantined event (no
-- retry key at 1.1)
SELECT eventkit.create_plan('up_plan', '{"events": {}}');
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');

-- rollups need the 1.3 catalog (their realtime views call its functions)
SELECT eventkit.create_rollup('up_r', 'up_ev', '1 hour', '{event}', '{count}');

ALTER EXTENSION eventkit UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'eventkit')
       AS at_default_version
  FROM pg_extension WHERE extname = 'eventkit';

-- 1.2: the generation sealed at 1.1 gets its filter at the next maintenance
SELECT gen, ended_at IS NULL AS current, filter IS NOT NULL AS has_filter
  FROM eventkit.ledger_generations ORDER BY gen;
SELECT eventkit.run_maintenance('up_ev');
SELECT gen, ended_at IS NULL AS current, filter IS NOT NULL AS has_filter
  FROM eventkit.ledger_generations ORDER BY gen;

-- 1.3: the plan's owner is a role name; the event quarantined at 1.1 has no
-- fingerprint, so its first retry is stored once more, and later ones not
SELECT name, owner = current_user AS owner_is_me FROM eventkit.plans;
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');
SELECT message_id, fingerprint IS NOT NULL AS keyed FROM eventkit.quarantine ORDER BY quarantine_id;

-- the data and the ledger survive: re-sending is a duplicate
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u2", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u3", "userId": "a", "event": "After Upgrade"}]');
SELECT message_id, event FROM up_ev ORDER BY 1;
SELECT stream::text, accepted, duplicates FROM eventkit.stream_stats;

-- what the upgraded extension consists of
CREATE TEMP TABLE upgraded_members AS
SELECT pg_describe_object(classid, objid, objsubid) AS member
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit');
CREATE TEMP TABLE upgraded_columns AS
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_expr
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'eventkit'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relkind IN ('r', 'v', 'p');
CREATE TEMP TABLE upgraded_functions AS
SELECT p.oid::regprocedure::text AS function, pg_get_function_result(p.oid) AS result,
       p.provolatile, p.proisstrict, p.prosecdef, p.proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'eventkit';

SELECT eventkit.drop_stream('up_ev');
DROP EXTENSION eventkit CASCADE;
CREATE EXTENSION eventkit;

-- differences from a fresh install (none expected)
SELECT 'only after upgrade' AS side, member FROM (
  SELECT member FROM upgraded_members
  EXCEPT
  SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit')) x
UNION ALL
SELECT 'only when fresh', member FROM (
  SELECT pg_describe_object(classid, objid, objsubid) AS member FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit')
  EXCEPT
  SELECT member FROM upgraded_members) y
ORDER BY 1, 2;

(SELECT 'only after upgrade' AS side, * FROM upgraded_columns
 EXCEPT
 SELECT 'only after upgrade', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
        a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
   FROM pg_class c
   JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'eventkit'
   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
  WHERE c.relkind IN ('r', 'v', 'p'))
UNION ALL
(SELECT 'only when fresh', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
        a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
   FROM pg_class c
   JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'eventkit'
   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
  WHERE c.relkind IN ('r', 'v', 'p')
 EXCEPT
 SELECT 'only when fresh', relname, attnum, attname, type, attnotnull, default_expr
   FROM upgraded_columns)
ORDER BY 1, 2, 3;

(SELECT 'only after upgrade' AS side, * FROM upgraded_functions
 EXCEPT
 SELECT 'only after upgrade', p.oid::regprocedure::text, pg_get_function_result(p.oid),
        p.provolatile, p.proisstrict, p.prosecdef, p.proconfig
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'eventkit')
UNION ALL
(SELECT 'only when fresh', p.oid::regprocedure::text, pg_get_function_result(p.oid),
        p.provolatile, p.proisstrict, p.prosecdef, p.proconfig
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'eventkit'
 EXCEPT
 SELECT 'only when fresh', * FROM upgraded_functions)
ORDER BY 1, 2;

-- the fresh install has the same number of members as the upgraded one
SELECT (SELECT count(*) FROM upgraded_members) =
       (SELECT count(*) FROM pg_depend
         WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
           AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit'))
       AS same_member_count,
       (SELECT count(*) FROM upgraded_members) > 20 AS has_members;
DROP EXTENSION eventkit;
