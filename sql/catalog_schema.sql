-- The catalog's conventions (eventkit--1.17.sql states them at its top):
-- every catalog table has a primary key; no foreign key between two tables
-- whose data pg_dump dumps (pg_restore -j loads them in parallel); names;
-- roles recorded as names; a COMMENT ON for every object and for every
-- column users read; job kinds are those the C code schedules.  Each query
-- lists what breaks a rule: none expected.
CREATE EXTENSION eventkit;

CREATE TEMP VIEW members AS
SELECT d.classid, d.objid, pg_describe_object(d.classid, d.objid, 0) AS member
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit');
CREATE TEMP VIEW dumped AS
SELECT unnest(extconfig) AS relid FROM pg_extension WHERE extname = 'eventkit';

-- tables without a primary key
SELECT m.member AS no_primary_key
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p');

-- foreign keys: a table whose data is dumped may only refer to a table
-- whose rows are the extension's own (made by the script, not dumped)
SELECT k.conrelid::regclass AS referencing, k.conname, k.confrelid::regclass AS dumped_referenced
  FROM pg_constraint k
 WHERE k.contype = 'f' AND k.conrelid IN (SELECT relid FROM dumped)
   AND k.confrelid IN (SELECT relid FROM dumped);
SELECT k.conrelid::regclass AS referencing, k.conname, k.confrelid::regclass AS referenced
  FROM pg_constraint k
 WHERE k.contype = 'f' AND k.connamespace = 'eventkit'::regnamespace
 ORDER BY 1, 2;

-- constraints named <table>_..._{pkey,key,check,fkey}, indexes that back
-- no constraint <table>_<what they look up> (not PostgreSQL's automatic
-- <table>_<columns>_idx)
SELECT k.conrelid::regclass AS "table", k.conname AS badly_named_constraint
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE k.connamespace = 'eventkit'::regnamespace
   AND (left(k.conname, length(c.relname) + 1) <> c.relname || '_'
        OR k.conname !~ CASE k.contype WHEN 'p' THEN '_pkey$' WHEN 'u' THEN '_key$'
                                      WHEN 'c' THEN '_check$' WHEN 'f' THEN '_fkey$' ELSE '$' END);
SELECT i.indrelid::regclass AS "table", i.indexrelid::regclass AS badly_named_index
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'eventkit'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
   AND (left(i.indexrelid::regclass::text, length(c.oid::regclass::text) + 1) <> c.oid::regclass::text || '_'
        OR i.indexrelid::regclass::text ~ '_idx$');

-- roles are recorded by name (no oid or regrole column)
SELECT a.attrelid::regclass AS "table", a.attname AS role_not_by_name, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = a.attrelid
 WHERE a.attnum > 0 AND NOT a.attisdropped AND a.atttypid IN ('oid'::regtype, 'regrole'::regtype);

-- objects without a comment (members, their policies and triggers, the schema)
SELECT m.member AS no_comment
  FROM members m
 WHERE obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)) IS NULL
UNION ALL
SELECT pg_describe_object('pg_policy'::regclass, p.oid, 0)
  FROM pg_policy p WHERE p.polrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
   AND obj_description(p.oid, 'pg_policy') IS NULL
UNION ALL
SELECT 'schema eventkit' WHERE obj_description('eventkit'::regnamespace, 'pg_namespace') IS NULL
ORDER BY 1;

-- columns without a comment, of the tables, views and types users read
-- (readable by PUBLIC or pg_monitor; a type: usable by everyone)
SELECT format('%s.%s', a.attrelid::regclass, a.attname) AS column_without_comment
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    OR m.classid = 'pg_type'::regclass AND m.objid = c.reltype AND c.relkind = 'c'
 WHERE a.attnum > 0 AND NOT a.attisdropped AND col_description(a.attrelid, a.attnum) IS NULL
   AND (c.relkind = 'c'
        OR EXISTS (SELECT 1 FROM aclexplode(c.relacl) x
                    WHERE x.privilege_type = 'SELECT'
                      AND x.grantee IN (0, 'pg_monitor'::regrole)))
 ORDER BY 1;

-- the job kinds are those the C code schedules: a stream with a retention
-- gets one job of each stream kind, a rollup a refresh_rollup job; and
-- stream_job tells which carry a stream
SELECT eventkit.create_stream('cat_ev', retention => '30 days');
SELECT eventkit.create_rollup('cat_r', 'cat_ev', '1 hour', '{event}', '{count}');
SELECT k.kind, k.stream_job,
       (SELECT array_agg(DISTINCT j.stream_id IS NOT NULL) FROM eventkit.jobs j WHERE j.kind = k.kind) AS scheduled_with_stream
  FROM eventkit.job_kinds k ORDER BY 1;
-- an unknown kind is refused by the foreign key
\set VERBOSITY terse
INSERT INTO eventkit.jobs (kind, target, schedule) VALUES ('vacuum', 'x', '1 minute');
INSERT INTO eventkit.job_runs (job_id, kind, target, started_at, status) VALUES (1, 'vacuum', 'x', now(), 'running');
\set VERBOSITY default

SELECT eventkit.drop_rollup('cat_r');
SELECT eventkit.drop_stream('cat_ev');
DROP EXTENSION eventkit;
