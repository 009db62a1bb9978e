-- Background worker jobs: the job tables, jobs made and removed with streams,
-- health() shape, GUC ranges.  The scheduler is off in this suite
-- (test/eventkit.conf): nothing here runs jobs by itself.
CREATE EXTENSION eventkit;

-- GUCs: ranges and contexts
SELECT name, setting, unit, min_val, max_val, context
  FROM pg_settings
 WHERE name IN ('eventkit.scheduler_enabled', 'eventkit.naptime', 'eventkit.max_job_workers',
				'eventkit.job_history_retention', 'eventkit.testing_clock_offset',
				'eventkit.job_timeout', 'eventkit.restoring')
 ORDER BY name;
ALTER SYSTEM SET eventkit.naptime = 0;
ALTER SYSTEM SET eventkit.max_job_workers = 65;
ALTER SYSTEM SET eventkit.job_history_retention = 0;
SET eventkit.naptime = 5;
SET eventkit.scheduler_enabled = on;
SET eventkit.max_job_workers = 3;
SET eventkit.no_such_setting = 1;

-- the tables: columns, not writable by PUBLIC
SELECT attrelid::regclass AS tab, attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid IN ('eventkit.jobs'::regclass, 'eventkit.job_runs'::regclass)
   AND attnum > 0 AND NOT attisdropped
 ORDER BY attrelid::regclass::text, attnum;
SELECT c.relname, a.privilege_type, a.grantee::regrole
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid IN ('eventkit.jobs'::regclass, 'eventkit.job_runs'::regclass)
   AND a.grantee <> c.relowner
 ORDER BY 1, 2, 3;
CREATE ROLE ek_jobs_nobody;
SET ROLE ek_jobs_nobody;
SELECT count(*) FROM eventkit.jobs;
INSERT INTO eventkit.jobs (kind, target, schedule) VALUES ('refresh_rollup', 'x', '1 minute');
SELECT eventkit.schedule_job('refresh_rollup', 'x', '1 minute');
RESET ROLE;

-- jobs appear with their streams, with schedules derived from the stream
SELECT eventkit.create_stream('ev_min', partition_interval => '1 minute', retention => '1 hour',
							  dedup_window => '2 minutes');
SELECT eventkit.create_stream('ev_day');
SELECT eventkit.create_stream('ev_month', partition_interval => '1 month', retention => '1 year');
SELECT kind, target, stream_id IS NOT NULL AS per_stream, schedule, enabled,
	   last_run_at, last_status, last_error, failures, next_run_at <= now() AS due
  FROM eventkit.jobs ORDER BY stream_id, kind;

-- registering is idempotent; rollup jobs are by kind and target
SELECT eventkit.schedule_stream_jobs('ev_day');
SELECT count(*) FROM eventkit.jobs;
SELECT eventkit.schedule_job('refresh_rollup', 'daily_orders', '5 minutes') =
	   eventkit.schedule_job('refresh_rollup', 'daily_orders', '1 minute') AS same_job;
SELECT kind, target, stream_id, schedule FROM eventkit.jobs WHERE kind = 'refresh_rollup';
SELECT eventkit.schedule_job('premake', 'ev_day', '1 minute');
SELECT eventkit.schedule_job('refresh_rollup', 'r', '0.5 seconds');
\set VERBOSITY terse
INSERT INTO eventkit.jobs (kind, target, schedule) VALUES ('vacuum', 'x', '1 minute');
\set VERBOSITY default
SELECT eventkit.unschedule_job('refresh_rollup', 'daily_orders');
SELECT count(*) FROM eventkit.jobs WHERE kind = 'refresh_rollup';

-- run_maintenance does the jobs' work by hand, and still works
SELECT eventkit.run_maintenance('ev_min');
SELECT count(*) >= 5 AS premade FROM eventkit.partitions('ev_min');

-- health(): one row per check, status ok|warning|error
SELECT component, CASE component WHEN 'scheduler' THEN '(this database)' ELSE target END AS target,
	   status, detail IS NOT NULL AS has_detail
  FROM eventkit.health() ORDER BY component, target;
SELECT detail FROM eventkit.health() WHERE component = 'scheduler';
SELECT preloaded, enabled, state FROM eventkit.scheduler_status();
SELECT * FROM eventkit.health() WHERE status NOT IN ('ok', 'warning', 'error');

-- a member of pg_monitor (not a superuser) reads every check
CREATE ROLE ek_monitor IN ROLE pg_monitor;
SET ROLE ek_monitor;
SELECT component, count(*) AS checks FROM eventkit.health() GROUP BY 1 ORDER BY 1;
RESET ROLE;
DROP ROLE ek_monitor;

-- a failed job shows as an error in health()
UPDATE eventkit.jobs SET last_status = 'failed', last_error = 'canceling statement due to lock timeout',
	   failures = 3 WHERE kind = 'retention' AND target = 'public.ev_min';
SELECT component, target, status, value, detail FROM eventkit.health()
 WHERE component = 'job' AND status <> 'ok';

-- jobs (and their history) go with the stream: drop_stream, DROP TABLE
INSERT INTO eventkit.job_runs (job_id, kind, target, started_at, ended_at, status)
SELECT job_id, kind, target, now(), now(), 'succeeded' FROM eventkit.jobs;
SELECT eventkit.drop_stream('ev_min');
DROP TABLE ev_month;
SELECT kind, target FROM eventkit.jobs ORDER BY stream_id, kind;
SELECT r.kind, r.target FROM eventkit.job_runs r ORDER BY r.run_id;

-- streams made at 1.0 get their jobs from the upgrade to 1.1
DROP EXTENSION eventkit CASCADE;
DROP TABLE ev_day;
CREATE EXTENSION eventkit VERSION '1.0';
SELECT eventkit.create_stream('ev_old', retention => '30 days');
ALTER EXTENSION eventkit UPDATE TO '1.1';
SELECT kind, target, schedule, enabled FROM eventkit.jobs ORDER BY kind;

DROP EXTENSION eventkit CASCADE;
DROP TABLE ev_old;
DROP ROLE ek_jobs_nobody;
