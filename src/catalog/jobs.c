/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  eventkit.jobs (one row per job: its schedule, last result and
 *	  consecutive failures) and eventkit.job_runs (one row per run):
 *	  registering and removing jobs, recording a run's start (committed on
 *	  its own, so that a run that never ends is seen) and its end with the
 *	  job's exponential backoff, recording maintenance run by hand, and the
 *	  scheduler's queries (due jobs, runs orphaned by a crash, history
 *	  purge, ledger jobs made due now).
 *
 *	  The job tables came with 1.1: on a 1.0 catalog nothing is scheduled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "catalog/catalog.h"
#include "catalog/jobs.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

static EkStatement insert_job = {
	.sql = "INSERT INTO eventkit.jobs (kind, stream_id, target, schedule)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING job_id",
	.nargs = 4,.argtypes = {TEXTOID, INT4OID, TEXTOID, INTERVALOID},
	.expected = SPI_OK_INSERT_RETURNING
};

static EkStatement find_job = {
	.sql = "SELECT job_id FROM eventkit.jobs WHERE kind OPERATOR(pg_catalog.=) $1"
	" AND CASE WHEN $2 IS NULL"
	"  THEN stream_id IS NULL AND target OPERATOR(pg_catalog.=) $3"
	"  ELSE stream_id OPERATOR(pg_catalog.=) $2 END",
	.nargs = 3,.argtypes = {TEXTOID, INT4OID, TEXTOID},.expected = SPI_OK_SELECT
};

static EkStatement delete_target_jobs = {
	.sql = "WITH gone AS (DELETE FROM eventkit.jobs"
	" WHERE stream_id IS NULL AND kind OPERATOR(pg_catalog.=) $1"
	" AND target OPERATOR(pg_catalog.=) $2 RETURNING job_id)"
	" DELETE FROM eventkit.job_runs r USING gone"
	" WHERE r.job_id OPERATOR(pg_catalog.=) gone.job_id",
	.nargs = 2,.argtypes = {TEXTOID, TEXTOID},.expected = SPI_OK_DELETE
};

static EkStatement delete_stream_jobs = {
	.sql = "WITH gone AS (DELETE FROM eventkit.jobs"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 RETURNING job_id)"
	" DELETE FROM eventkit.job_runs r USING gone"
	" WHERE r.job_id OPERATOR(pg_catalog.=) gone.job_id",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE
};

static EkStatement read_job = {
	.sql = "SELECT kind, stream_id, target, failures FROM eventkit.jobs"
	" WHERE job_id OPERATOR(pg_catalog.=) $1 AND enabled",
	.nargs = 1,.argtypes = {INT8OID},.expected = SPI_OK_SELECT
};

static EkStatement insert_run = {
	.sql = "INSERT INTO eventkit.job_runs (job_id, kind, target, started_at, status, pid)"
	" SELECT job_id, kind, target, pg_catalog.clock_timestamp(),"
	"  'running', pg_catalog.pg_backend_pid()"
	" FROM eventkit.jobs WHERE job_id OPERATOR(pg_catalog.=) $1"
	" RETURNING run_id",
	.nargs = 1,.argtypes = {INT8OID},.expected = SPI_OK_INSERT_RETURNING,
	.flags = EK_STMT_ONE_ROW
};

static EkStatement end_run = {
	.sql = "WITH run AS ("
	" UPDATE eventkit.job_runs SET ended_at = pg_catalog.clock_timestamp(),"
	"  status = $2, message = $3, rows_affected = $4"
	" WHERE run_id OPERATOR(pg_catalog.=) $1"
	" RETURNING job_id, started_at)"
	" UPDATE eventkit.jobs j SET last_run_at = run.started_at,"
	"  last_status = $2,"
	"  last_error = CASE WHEN $5 THEN $3 END,"
	"  failures = CASE WHEN $5 THEN j.failures OPERATOR(pg_catalog.+) 1 ELSE 0 END,"
	"  next_run_at = CASE WHEN $5"
	"   THEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)"
	"        pg_catalog.make_interval(0, 0, 0, 0, 0, 0, $6)"
	"   ELSE run.started_at OPERATOR(pg_catalog.+) j.schedule END"
	" FROM run WHERE j.job_id OPERATOR(pg_catalog.=) run.job_id",
	.nargs = 6,.argtypes = {INT8OID, TEXTOID, TEXTOID, INT8OID, BOOLOID, FLOAT8OID},
	.expected = SPI_OK_UPDATE
};

static EkStatement manual_failure = {
	.sql = "WITH j AS ("
	" UPDATE eventkit.jobs SET last_run_at = pg_catalog.now(),"
	"  last_status = 'failed', last_error = $3,"
	"  failures = failures OPERATOR(pg_catalog.+) 1"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND kind OPERATOR(pg_catalog.=) $2"
	" RETURNING job_id, kind, target)"
	" INSERT INTO eventkit.job_runs (job_id, kind, target, started_at,"
	"  ended_at, status, message, rows_affected, pid)"
	" SELECT job_id, kind, target, pg_catalog.now(),"
	"  pg_catalog.clock_timestamp(), 'failed', $3, 0,"
	"  pg_catalog.pg_backend_pid() FROM j",
	.nargs = 3,.argtypes = {INT4OID, TEXTOID, TEXTOID},.expected = SPI_OK_INSERT
};

static EkStatement manual_success = {
	.sql = "UPDATE eventkit.jobs SET last_run_at = pg_catalog.now(),"
	"  last_status = 'succeeded', last_error = NULL, failures = 0"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND kind OPERATOR(pg_catalog.=) $2"
	" AND last_status OPERATOR(pg_catalog.=) ANY ('{failed,crashed}'::pg_catalog.text[])",
	.nargs = 2,.argtypes = {INT4OID, TEXTOID},.expected = SPI_OK_UPDATE
};

static EkStatement mark_orphans = {
	.sql = "WITH orphan AS ("
	" UPDATE eventkit.job_runs SET status = 'crashed',"
	"  ended_at = pg_catalog.now(),"
	"  message = 'the job worker exited without recording a result'"
	" WHERE status OPERATOR(pg_catalog.=) 'running'"
	"  AND job_id OPERATOR(pg_catalog.<>) ALL ($1)"
	" RETURNING job_id)"
	" UPDATE eventkit.jobs j SET last_status = 'crashed',"
	"  last_error = 'the job worker exited without recording a result',"
	"  failures = j.failures OPERATOR(pg_catalog.+) 1,"
	"  next_run_at = pg_catalog.now() OPERATOR(pg_catalog.+)"
	"   pg_catalog.make_interval(0, 0, 0, 0, 0, 0,"
	"    LEAST($2 OPERATOR(pg_catalog.*) pg_catalog.power(2::pg_catalog.float8,"
	"     LEAST(j.failures, 20)::pg_catalog.float8), 3600))"
	" WHERE j.job_id IN (SELECT job_id FROM orphan)",
	.nargs = 2,.argtypes = {INT8ARRAYOID, FLOAT8OID},.expected = SPI_OK_UPDATE
};

static EkStatement run_now = {
	.sql = "UPDATE eventkit.jobs SET next_run_at = pg_catalog.now()"
	" WHERE kind OPERATOR(pg_catalog.=) $2 AND enabled"
	" AND failures OPERATOR(pg_catalog.=) 0"
	" AND next_run_at OPERATOR(pg_catalog.>) pg_catalog.now()"
	" AND ($1 OPERATOR(pg_catalog.<) 0 OR stream_id OPERATOR(pg_catalog.=) $1)",
	.nargs = 2,.argtypes = {INT4OID, TEXTOID},.expected = SPI_OK_UPDATE
};

static EkStatement any_enabled = {
	.sql = "SELECT EXISTS (SELECT 1 FROM eventkit.jobs WHERE enabled)",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY | EK_STMT_ONE_ROW
};

static EkStatement purge_history = {
	.sql = "DELETE FROM eventkit.job_runs WHERE status OPERATOR(pg_catalog.<>) 'running'"
	" AND ended_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)"
	"  pg_catalog.make_interval(0, 0, 0, 0, 0, 0, $1))",
	.nargs = 1,.argtypes = {FLOAT8OID},.expected = SPI_OK_DELETE
};

static EkStatement due_jobs = {
	.sql = "SELECT job_id FROM eventkit.jobs"
	" WHERE enabled AND next_run_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
	" AND job_id OPERATOR(pg_catalog.<>) ALL ($1)"
	" ORDER BY next_run_at, job_id LIMIT $2",
	.nargs = 2,.argtypes = {INT8ARRAYOID, INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

/* Are the job tables there (a catalog at 1.1 or later)? */
bool
ek_jobs_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_1;
}

/*
 * Register a job (idempotent: an existing job of the same kind for the
 * same stream, or of the same kind and target when stream_id is 0, is kept
 * as it is).  Returns its job_id, or 0 when the job tables are not
 * installed (extension still at 1.0).  May be called with or without an
 * SPI connection.
 */
int64
ek_jobs_schedule(const char *kind, int32 stream_id, const char *target,
				 const Interval *schedule)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		job_id = 0;
	bool		isnull;

	if (!ek_jobs_installed())
		return 0;
	values[0] = CStringGetTextDatum(kind);
	values[1] = Int32GetDatum(stream_id);
	nulls[1] = stream_id > 0 ? ' ' : 'n';
	values[2] = CStringGetTextDatum(target);
	values[3] = IntervalPGetDatum(schedule);

	SPI_connect();
	if (ek_stmt_run(&insert_job, values, nulls) == 0)
		(void) ek_stmt_run(&find_job, values, nulls);
	if (SPI_processed > 0)
		job_id = DatumGetInt64(ek_spi_value(0, 1, &isnull));
	SPI_finish();
	return job_id;
}

/* Remove a job registered without a stream (a rollup's refresh), and its runs. */
void
ek_jobs_unschedule(const char *kind, const char *target)
{
	Datum		values[2] = {CStringGetTextDatum(kind), CStringGetTextDatum(target)};

	if (!ek_jobs_installed())
		return;
	SPI_connect();
	ek_stmt_run(&delete_target_jobs, values, NULL);
	SPI_finish();
}

/* Remove a stream's jobs and their runs. */
void
ek_jobs_unschedule_stream(int32 stream_id)
{
	Datum		values[1] = {Int32GetDatum(stream_id)};

	if (!ek_jobs_installed())
		return;
	SPI_connect();
	ek_stmt_run(&delete_stream_jobs, values, NULL);
	SPI_finish();
}

/*
 * Load an enabled job into *job (strings in cxt) and record the start of
 * its run.  Returns the run id, 0 if the job is gone or disabled.  Caller:
 * SPI connected.
 */
int64
ek_jobs_start_run(int64 job_id, JobRow *job, MemoryContext cxt)
{
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	Datum		d;

	if (!ek_jobs_installed() || ek_stmt_run(&read_job, values, NULL) == 0)
		return 0;
	job->job_id = job_id;
	job->kind = MemoryContextStrdup(cxt, TextDatumGetCString(ek_spi_value(0, 1, &isnull)));
	d = ek_spi_value(0, 2, &isnull);
	job->has_stream = !isnull;
	job->stream_id = isnull ? 0 : DatumGetInt32(d);
	job->target = MemoryContextStrdup(cxt, TextDatumGetCString(ek_spi_value(0, 3, &isnull)));
	job->failures = DatumGetInt32(ek_spi_value(0, 4, &isnull));

	ek_stmt_run(&insert_run, values, NULL);
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/*
 * Record the end of a run and the job's next run: its schedule after the
 * run's start, or, for a run with status "failed", retry_secs from now.
 */
void
ek_jobs_end_run(int64 run_id, const char *status, const char *message, int64 rows,
				int retry_secs)
{
	bool		failed = strcmp(status, "failed") == 0;
	Datum		values[6] = {Int64GetDatum(run_id), CStringGetTextDatum(status),
		EK_TEXT_OR_NULL(message), Int64GetDatum(rows), BoolGetDatum(failed),
	Float8GetDatum(failed ? retry_secs : 0)};
	char		nulls[6] = {' ', ' ', message ? ' ' : 'n', ' ', ' ', ' '};

	ek_stmt_run(&end_run, values, nulls);
}

/*
 * Record the outcome of a stream job's work run by hand (run_maintenance()):
 * with error, a failed run in eventkit.job_runs and the job's last error,
 * as when the worker runs it; without, the end of a failure recorded for
 * the job (by the worker or by hand).  The job's next run is left where it
 * is.  Nothing when the stream has no such job (or the job tables are not
 * installed).  Caller: SPI connected.
 */
void
ek_jobs_record_manual_run(int32 stream_id, const char *kind, const char *error)
{
	Datum		values[3] = {Int32GetDatum(stream_id), CStringGetTextDatum(kind),
	EK_TEXT_OR_NULL(error)};

	if (!ek_jobs_installed())
		return;
	ek_stmt_run(error != NULL ? &manual_failure : &manual_success, values, NULL);
}

/*
 * Runs left 'running' by a job worker that is no longer there (crash,
 * restart, terminated): marked crashed; their jobs count a failure and
 * back off.  running: the job ids whose workers are alive (int8[]).
 */
void
ek_jobs_mark_orphans(Datum running)
{
	Datum		values[2] = {running, Float8GetDatum(ek_naptime)};

	ek_stmt_run(&mark_orphans, values, NULL);
}

/*
 * Make a stream's job of this kind (of all streams: stream_id < 0) due
 * now, unless it is failing (it keeps its back-off): the scheduler's
 * ledger job when ingest saw a current ledger generation over
 * eventkit.ledger_generation_rows, its premake job when a distributed
 * stream's events wait for a partition; the premake job's redrive job
 * when it made partitions that quarantined events wait for.
 */
void
ek_jobs_run_now(const char *kind, int32 stream_id)
{
	Datum		values[2] = {Int32GetDatum(stream_id), CStringGetTextDatum(kind)};

	ek_stmt_run(&run_now, values, NULL);
}

/* Is any job enabled here?  (The scheduler publishes it for fair sharing.) */
bool
ek_jobs_any_enabled(void)
{
	bool		isnull;

	ek_stmt_run(&any_enabled, NULL, NULL);
	return DatumGetBool(ek_spi_value(0, 1, &isnull));
}

/* Delete finished runs older than eventkit.job_history_retention. */
void
ek_jobs_purge_history(void)
{
	Datum		values[1] = {Float8GetDatum(ek_job_history_retention)};

	ek_stmt_run(&purge_history, values, NULL);
}

/*
 * Up to limit enabled jobs that are due and not running (running: int8[]),
 * most overdue first.  Returns how many; their ids go into out (palloc'd
 * in cxt).
 */
int
ek_jobs_due(Datum running, int limit, int64 **out, MemoryContext cxt)
{
	Datum		values[2] = {running, Int32GetDatum(limit)};
	uint64		n;

	*out = NULL;
	if (limit <= 0)
		return 0;
	n = ek_stmt_run(&due_jobs, values, NULL);
	*out = MemoryContextAlloc(cxt, sizeof(int64) * (n + 1));
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;

		(*out)[r] = DatumGetInt64(ek_spi_value(r, 1, &isnull));
	}
	return (int) n;
}
