-- run_maintenance() without an argument isolates streams: a step that fails
-- for one stream is reported with a WARNING and recorded (job_runs, jobs,
-- health()), and the other streams are still maintained.  A stream owner
-- who is not a superuser can run it (the ledger work, on eventkit's own
-- tables, is done as the extension owner).
CREATE EXTENSION eventkit;
CREATE ROLE ek_mi_owner;
CREATE SCHEMA mi_bad;
GRANT USAGE, CREATE ON SCHEMA mi_bad TO ek_mi_owner;
GRANT CREATE ON SCHEMA public TO ek_mi_owner;
SET ROLE ek_mi_owner;
SELECT eventkit.create_stream('mi_bad.ev', premake => 2);
SELECT eventkit.create_stream('mi_good', premake => 2);
RESET ROLE;
-- the owner of mi_bad.ev may no longer create tables in its schema: premake
-- (which runs as the stream's owner) fails there
REVOKE CREATE ON SCHEMA mi_bad FROM ek_mi_owner;

-- each stream loses its last future partition
CREATE FUNCTION mi_drop_last(s regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  p regclass;
BEGIN
  SELECT partition INTO p FROM eventkit.partitions(s) ORDER BY range_start DESC LIMIT 1;
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s, p);
  EXECUTE format('DROP TABLE %s', p);
END $$;
CREATE VIEW mi_partitions AS
SELECT s::text AS stream, (SELECT count(*) FROM eventkit.partitions(s)) AS partitions
  FROM unnest('{mi_bad.ev, mi_good}'::regclass[]) s;
SELECT mi_drop_last('mi_bad.ev'), mi_drop_last('mi_good');
SELECT * FROM mi_partitions ORDER BY 1;

-- mi_bad.ev (the first stream) fails; mi_good still gets its partition
SELECT eventkit.run_maintenance();
SELECT * FROM mi_partitions ORDER BY 1;
SELECT kind, target, status, message, rows_affected FROM eventkit.job_runs ORDER BY run_id;
SELECT kind, target, last_status, last_error, failures
  FROM eventkit.jobs WHERE last_status IS NOT NULL ORDER BY job_id;
SELECT target, status, detail FROM eventkit.health()
 WHERE component = 'job' AND status <> 'ok' ORDER BY target;

-- the same, run by the streams' owner
SET ROLE ek_mi_owner;
SELECT mi_drop_last('mi_good');
SELECT eventkit.run_maintenance();
RESET ROLE;
SELECT * FROM mi_partitions ORDER BY 1;
SELECT kind, target, last_status, failures FROM eventkit.jobs WHERE last_status IS NOT NULL ORDER BY job_id;

-- named explicitly, the stream's failure is the call's error
\set VERBOSITY terse
SELECT eventkit.run_maintenance('mi_bad.ev');
\set VERBOSITY default

-- once the cause is gone, it is maintained, and the failure is over
GRANT CREATE ON SCHEMA mi_bad TO ek_mi_owner;
SELECT eventkit.run_maintenance();
SELECT * FROM mi_partitions ORDER BY 1;
SELECT kind, target, last_status, last_error, failures
  FROM eventkit.jobs WHERE last_status IS NOT NULL ORDER BY job_id;
SELECT count(*) AS jobs_in_error FROM eventkit.health() WHERE component = 'job' AND status = 'error';

SELECT eventkit.drop_stream('mi_bad.ev');
SELECT eventkit.drop_stream('mi_good');
DROP VIEW mi_partitions;
DROP FUNCTION mi_drop_last;
DROP SCHEMA mi_bad;
REVOKE CREATE ON SCHEMA public FROM ek_mi_owner;
DROP ROLE ek_mi_owner;
DROP EXTENSION eventkit;
