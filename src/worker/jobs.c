/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  eventkit's jobs: the eventkit.jobs table (one row per job, with its
 *	  schedule, last result and consecutive failures), registering and
 *	  removing jobs (ek_schedule_job and friends, called when streams and
 *	  rollups come and go), running one job in a job worker with its run
 *	  recorded in eventkit.job_runs, the exponential backoff of failing
 *	  jobs, and the scheduler's bookkeeping queries (due jobs, runs orphaned
 *	  by a crash, history purge).
 *
 *	  The process side (launcher, schedulers, job workers, shared memory)
 *	  is in worker.c.  The work of the stream jobs is the same code that
 *	  eventkit.run_maintenance() runs (partition.c, dedup.c); jobs call C,
 *	  never SQL functions.  A job worker reads and writes eventkit's
 *	  catalog as the bootstrap superuser it connects as, but does the work
 *	  on a stream or rollup as its owner under SECURITY_RESTRICTED_OPERATION
 *	  (ek_begin_ddl), so that no code the owner attached to it runs with
 *	  more rights than the owner has.  A job runs under eventkit.job_timeout;
 *	  a timeout or a cancel is recorded as an ordinary failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "eventkit.h"

PG_FUNCTION_INFO_V1(eventkit_schedule_stream_jobs);
PG_FUNCTION_INFO_V1(eventkit_schedule_job);
PG_FUNCTION_INFO_V1(eventkit_unschedule_job);

/* Longest retry delay of a failing job. */
#define EK_MAX_BACKOFF_SECS 3600

/* Redrive looks at this many quarantined out_of_range events per run. */
#define EK_REDRIVE_BATCH 10000

/* A job's row, as a job worker needs it. */
typedef struct JobRow
{
	int64		job_id;
	char	   *kind;
	bool		has_stream;
	int32		stream_id;
	char	   *target;
	int32		failures;
} JobRow;

/* Is eventkit (at a version with the job tables) installed here? */
bool
ek_jobs_installed(void)
{
	Oid			nspid = get_namespace_oid("eventkit", true);

	return OidIsValid(nspid) && OidIsValid(get_relname_relid("jobs", nspid)) &&
		OidIsValid(get_relname_relid("job_runs", nspid));
}

/* The job workers' notion of now (see eventkit.testing_clock_offset). */
TimestampTz
ek_job_clock(void)
{
	return GetCurrentTimestamp() + (int64) ek_testing_clock_offset * USECS_PER_SEC;
}

static int64
approx_usecs(const Interval *iv)
{
	return (int64) iv->month * 30 * USECS_PER_DAY + (int64) iv->day * USECS_PER_DAY + iv->time;
}

static Interval
clamped_quarter(const Interval *iv, int64 min_usecs, int64 max_usecs)
{
	Interval	result;
	int64		usecs = approx_usecs(iv) / 4;

	memset(&result, 0, sizeof(result));
	result.time = Max(min_usecs, Min(max_usecs, usecs));
	return result;
}

/*
 * Register a job (idempotent: an existing job of the same kind for the
 * same stream, or of the same kind and target when stream_id is 0, is kept
 * as it is).  Returns its job_id, or 0 when the job tables are not
 * installed (extension still at 1.0).  Runs as the extension owner; may be
 * called with or without an SPI connection.
 */
int64
ek_schedule_job(const char *kind, int32 stream_id, const char *target,
				const Interval *schedule)
{
	Oid			argtypes[4] = {TEXTOID, INT4OID, TEXTOID, INTERVALOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Oid			save_userid;
	int			save_sec;
	int64		job_id = 0;
	bool		isnull;
	int			rc;

	if (!ek_jobs_installed())
		return 0;

	values[0] = CStringGetTextDatum(kind);
	values[1] = Int32GetDatum(stream_id);
	nulls[1] = stream_id > 0 ? ' ' : 'n';
	values[2] = CStringGetTextDatum(target);
	values[3] = IntervalPGetDatum(schedule);

	SPI_connect();
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("INSERT INTO eventkit.jobs (kind, stream_id, target, schedule)"
							   " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
							   " RETURNING job_id",
							   4, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "eventkit: could not register a job: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		rc = SPI_execute_with_args("SELECT job_id FROM eventkit.jobs"
								   " WHERE kind OPERATOR(pg_catalog.=) $1"
								   " AND CASE WHEN $2 IS NULL"
								   "  THEN stream_id IS NULL AND target OPERATOR(pg_catalog.=) $3"
								   "  ELSE stream_id OPERATOR(pg_catalog.=) $2 END",
								   3, argtypes, values, nulls, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read eventkit.jobs: %s", SPI_result_code_string(rc));
	}
	if (SPI_processed > 0)
		job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	ek_restore_user(save_userid, save_sec);
	SPI_finish();
	return job_id;
}

/* Delete the jobs selected by where (with nargs arguments) and their runs. */
static void
delete_jobs(const char *where, int nargs, Oid *argtypes, Datum *values)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;

	if (!ek_jobs_installed())
		return;
	SPI_connect();
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args(psprintf("WITH gone AS (DELETE FROM eventkit.jobs WHERE %s"
										" RETURNING job_id)"
										" DELETE FROM eventkit.job_runs r USING gone"
										" WHERE r.job_id OPERATOR(pg_catalog.=) gone.job_id",
										where),
							   nargs, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not remove jobs: %s", SPI_result_code_string(rc));
	ek_restore_user(save_userid, save_sec);
	SPI_finish();
}

/* Remove a job registered with stream_id 0 (e.g. a rollup's refresh). */
void
ek_unschedule_job(const char *kind, const char *target)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(kind), CStringGetTextDatum(target)};

	delete_jobs("stream_id IS NULL AND kind OPERATOR(pg_catalog.=) $1"
				" AND target OPERATOR(pg_catalog.=) $2",
				2, argtypes, values);
}

/*
 * The jobs every stream has: premake and redrive at a quarter of the
 * partition interval (10 s to 1 h; 1 h for monthly partitions), ledger
 * rotation/pruning at a quarter of the dedup window (1 min to 1 h), and
 * retention like premake when the stream has a retention.
 */
int
ek_schedule_stream_jobs(const StreamInfo *stream)
{
	Interval	part = clamped_quarter(&stream->partition_interval,
									   10 * USECS_PER_SEC, USECS_PER_HOUR);
	Interval	ledger = clamped_quarter(&stream->dedup_window,
										 60 * USECS_PER_SEC, USECS_PER_HOUR);
	char	   *target = ek_qualified_relname(stream->relid);
	int			n = 0;

	if (!ek_jobs_installed())
		return 0;
	if (stream->partition_interval.month > 0)
	{
		memset(&part, 0, sizeof(part));
		part.time = USECS_PER_HOUR;
	}
	n += ek_schedule_job(EK_JOB_PREMAKE, stream->stream_id, target, &part) > 0;
	if (stream->has_retention)
		n += ek_schedule_job(EK_JOB_RETENTION, stream->stream_id, target, &part) > 0;
	n += ek_schedule_job(EK_JOB_LEDGER, stream->stream_id, target, &ledger) > 0;
	n += ek_schedule_job(EK_JOB_REDRIVE, stream->stream_id, target, &part) > 0;
	return n;
}

void
ek_unschedule_stream_jobs(int32 stream_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(stream_id)};

	delete_jobs("stream_id OPERATOR(pg_catalog.=) $1", 1, argtypes, values);
}

/*
 * eventkit.schedule_stream_jobs(stream regclass): (re)creates the default
 * jobs of a stream; existing ones are kept.  Returns how many it has.
 */
Datum
eventkit_schedule_stream_jobs(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StreamInfo	stream;
	int			n;

	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	SPI_connect();
	ek_lookup_stream(relid, &stream, false);
	n = ek_schedule_stream_jobs(&stream);
	SPI_finish();
	PG_RETURN_INT32(n);
}

/*
 * eventkit.schedule_job(kind text, target text, schedule interval): the
 * SQL face of ek_schedule_job() for jobs that are not per stream.
 */
Datum
eventkit_schedule_job(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *target = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *schedule = PG_GETARG_INTERVAL_P(2);

	if (strcmp(kind, EK_JOB_REFRESH_ROLLUP) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported job kind \"%s\"", kind),
				 errdetail("Stream jobs are created with their stream."),
				 errhint("Use kind \"%s\".", EK_JOB_REFRESH_ROLLUP)));
	if (approx_usecs(schedule) < USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job schedule must be at least 1 second"),
				 errhint("Use an interval such as '1 minute'.")));
	PG_RETURN_INT64(ek_schedule_job(kind, 0, target, schedule));
}

/* eventkit.unschedule_job(kind text, target text) */
Datum
eventkit_unschedule_job(PG_FUNCTION_ARGS)
{
	ek_unschedule_job(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					  text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Running jobs
 * ---------------------------------------------------------------------
 */

/*
 * Quarantined out_of_range events of a stream whose partition exists now
 * are replayed (ek_replay_quarantine, the path of
 * eventkit.replay_quarantine()) as the stream's owner, under
 * SECURITY_RESTRICTED_OPERATION with a pinned search_path: the triggers,
 * defaults, index expressions and policies the owner put on the stream run
 * with the owner's rights, never with the worker's.  Returns the events that
 * left the quarantine.  Caller: SPI connected, as the job worker.
 */
static int64
redrive_out_of_range(const StreamInfo *stream, char **message)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(stream->stream_id), Int32GetDatum(EK_REDRIVE_BATCH)};
	Datum	   *ids;
	int			nids = 0;
	int			rc;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	int64		counts[5] = {0, 0, 0, 0, 0};
	EkDdlContext as_owner;

	rc = SPI_execute_with_args("SELECT quarantine_id, payload, received_at FROM eventkit.quarantine"
							   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							   " AND payload IS NOT NULL"
							   " AND reasons OPERATOR(pg_catalog.@>) '[{\"reason\": \"out_of_range\"}]'::pg_catalog.jsonb"
							   " ORDER BY quarantine_id LIMIT $2",
							   2, argtypes, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.quarantine: %s", SPI_result_code_string(rc));
	ids = palloc(sizeof(Datum) * (SPI_processed + 1));
	desc = SPI_tuptable->tupdesc;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		SegmentEvent ev;
		EnvelopeDefaults env;
		Jsonb	   *payload;
		TimestampTz received_at;

		tup = SPI_tuptable->vals[r];
		payload = DatumGetJsonbP(SPI_getbinval(tup, desc, 2, &isnull));
		received_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		memset(&ev, 0, sizeof(ev));
		memset(&env, 0, sizeof(env));
		env.context.type = jbvNull;
		ev.item = 1;
		ev.source.type = jbvBinary;
		ev.source.val.binary.data = &payload->root;
		ev.source.val.binary.len = VARSIZE(payload) - VARHDRSZ;
		ev.payload = payload;
		ek_parse_event(&ev, &env, received_at);
		if (ev.nproblems == 0 && ek_partition_exists_for(stream->relid, ev.ts))
			ids[nids++] = SPI_getbinval(tup, desc, 1, &isnull);
	}
	if (nids == 0)
	{
		*message = psprintf("%d out_of_range events waiting, none has a partition yet",
							(int) SPI_processed);
		return 0;
	}

	ek_begin_ddl(&as_owner, ek_relation_owner(stream->relid), false);

	/*
	 * PostgreSQL refuses to queue a deferred trigger past a restricted
	 * operation: fire the stream's deferred triggers at the end of each
	 * statement instead, while still its owner.
	 */
	ek_spi_exec("SET CONSTRAINTS ALL IMMEDIATE", SPI_OK_UTILITY);
	ek_replay_quarantine(stream->relid, ek_make_array(ids, NULL, nids, INT8OID), false,
						 counts);
	ek_end_ddl(&as_owner);

	*message = psprintf("replayed %d events: %lld accepted, %lld duplicates, %lld conflicts,"
						" %lld quarantined, %lld rejected", nids,
						(long long) counts[0], (long long) counts[1], (long long) counts[2],
						(long long) counts[3], (long long) counts[4]);
	return counts[0] + counts[1] + counts[2];
}

/*
 * The work of one stream job; shared with eventkit.run_maintenance().
 * Returns rows affected (partitions made or dropped, ledger filters built
 * and generations started or dropped).
 *
 * Premake and retention touch the stream: they run as the stream's owner
 * under SECURITY_RESTRICTED_OPERATION with a pinned search_path (as
 * autovacuum and REFRESH MATERIALIZED VIEW do), whoever calls them.  The
 * ledger job touches only eventkit's own ledger tables and catalog rows,
 * where no user code can run: it runs as the extension owner, which also
 * lets a stream's owner run it by hand.  GUC changes made meanwhile are
 * undone.  Caller: SPI connected.
 */
int64
ek_run_stream_job(const char *kind, StreamInfo *stream, TimestampTz now)
{
	EkDdlContext as;
	int64		n;

	if (strcmp(kind, EK_JOB_LEDGER) == 0)
	{
		ek_begin_ddl(&as, ek_extension_owner(), false);
		/* filters of generations sealed earlier; then rotate; then prune */
		n = ek_build_ledger_filters(stream);
		n += ek_rotate_ledger(stream) ? 1 : 0;
		n += ek_prune_ledger(stream);
		ek_end_ddl(&as);
		return n;
	}
	if (strcmp(kind, EK_JOB_PREMAKE) != 0 && strcmp(kind, EK_JOB_RETENTION) != 0)
		elog(ERROR, "eventkit: unknown stream job kind \"%s\"", kind);

	ek_begin_ddl(&as, ek_relation_owner(stream->relid), false);
	if (strcmp(kind, EK_JOB_PREMAKE) == 0)
		n = ek_premake_partitions(stream, now) + ek_make_waiting_partitions(stream, now);
	else
		n = ek_drop_expired_partitions(stream, now);
	ek_end_ddl(&as);
	return n;
}

/*
 * A refresh_rollup job: the rollup named target, refreshed as the rollup
 * table's owner under SECURITY_RESTRICTED_OPERATION.  Returns the events
 * folded.
 */
static int64
refresh_rollup_as_owner(const char *target)
{
	List	   *names = textToQualifiedNameList(cstring_to_text(target));
	Oid			relid;
	EkDdlContext as_owner;
	int64		events;

	/* (an unqualified name is looked up in the job's pinned search_path) */
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" does not exist", target),
				 errhint("Rollups are listed in eventkit.rollups; remove a job left behind with eventkit.unschedule_job().")));
	ek_begin_ddl(&as_owner, ek_relation_owner(relid), false);
	events = ek_refresh_rollup_job(relid);
	ek_end_ddl(&as_owner);
	return events;
}

/*
 * Run a job's work.  Returns its status ("succeeded" or "skipped"); sets
 * *rows and *message.  Errors propagate.  The catalog is read as the job
 * worker; the work on a stream or rollup runs as its owner.
 */
static const char *
run_job(const JobRow *job, int64 *rows, char **message)
{
	*rows = 0;
	*message = NULL;

	if (job->has_stream)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(job->stream_id)};
		bool		isnull;
		Oid			relid;
		StreamInfo	stream;
		int			rc;

		rc = SPI_execute_with_args("SELECT relid::pg_catalog.oid FROM eventkit.streams"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes, values, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read eventkit.streams");
		if (SPI_processed == 0)
		{
			*message = pstrdup("the stream no longer exists");
			return "skipped";
		}
		relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		if (!ek_lookup_stream(relid, &stream, true))
		{
			*message = pstrdup("the stream no longer exists");
			return "skipped";
		}
		if (strcmp(job->kind, EK_JOB_REDRIVE) == 0)
			*rows = redrive_out_of_range(&stream, message);
		else
			*rows = ek_run_stream_job(job->kind, &stream, ek_job_clock());
		return "succeeded";
	}

	if (strcmp(job->kind, EK_JOB_REFRESH_ROLLUP) == 0)
	{
		*rows = refresh_rollup_as_owner(job->target);
		return "succeeded";
	}

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("unknown eventkit job kind \"%s\"", job->kind)));
	return NULL;				/* keep compiler quiet */
}

/* Seconds to wait before retrying a job that has failed n times in a row. */
static int
backoff_secs(int failures)
{
	int64		secs = ek_naptime;

	for (int i = 1; i < failures && secs < EK_MAX_BACKOFF_SECS; i++)
		secs *= 2;
	return (int) Min(secs, EK_MAX_BACKOFF_SECS);
}

/* Record the end of a run, in the run's own transaction. */
static void
record_result(const JobRow *job, int64 run_id, const char *status,
			  const char *message, int64 rows)
{
	Oid			argtypes[6] = {INT8OID, TEXTOID, TEXTOID, INT8OID, BOOLOID, FLOAT8OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		failed = strcmp(status, "failed") == 0;
	int			rc;

	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = EK_TEXT_OR_NULL(message);
	nulls[2] = message ? ' ' : 'n';
	values[3] = Int64GetDatum(rows);
	values[4] = BoolGetDatum(failed);
	values[5] = Float8GetDatum(failed ? backoff_secs(job->failures + 1) : 0);
	rc = SPI_execute_with_args("WITH run AS ("
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
							   6, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "eventkit: could not record a job run: %s", SPI_result_code_string(rc));
}

static void
begin_job_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_job_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Load the job and record the start of its run (committed, so a run that
 * never ends is visible and later marked crashed).  Returns the run id, 0
 * if the job is gone or disabled.
 */
static int64
start_run(int64 job_id, JobRow *job, MemoryContext cxt)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int64		run_id = 0;
	int			rc;

	if (!ek_jobs_installed())
		return 0;
	rc = SPI_execute_with_args("SELECT kind, stream_id, target, failures FROM eventkit.jobs"
							   " WHERE job_id OPERATOR(pg_catalog.=) $1 AND enabled",
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.jobs: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return 0;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	job->job_id = job_id;
	job->kind = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull)));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	job->has_stream = !isnull;
	job->stream_id = isnull ? 0 : DatumGetInt32(d);
	job->target = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull)));
	job->failures = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));

	rc = SPI_execute_with_args("INSERT INTO eventkit.job_runs (job_id, kind, target, started_at,"
							   " status, pid)"
							   " SELECT job_id, kind, target, pg_catalog.clock_timestamp(),"
							   "  'running', pg_catalog.pg_backend_pid()"
							   " FROM eventkit.jobs WHERE job_id OPERATOR(pg_catalog.=) $1"
							   " RETURNING run_id",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "eventkit: could not record a job run: %s", SPI_result_code_string(rc));
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return run_id;
}

/*
 * After a ledger job committed: build the filter of the generation it may
 * just have sealed, in a transaction of its own, so that ingest (which the
 * rotation held up only for the switch) probes that generation through its
 * filter within seconds rather than at the job's next run.  A failure is
 * logged; the next run builds what is missing.
 */
static void
build_filters_after_rotation(const JobRow *job, MemoryContext cxt)
{
	PG_TRY();
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(job->stream_id)};
		bool		isnull;
		int			rc;

		begin_job_xact();
		rc = SPI_execute_with_args("SELECT relid::pg_catalog.oid FROM eventkit.streams"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes, values, NULL, true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1)
		{
			StreamInfo	stream;
			Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 1, &isnull));

			if (ek_lookup_stream(relid, &stream, true))
				(void) ek_build_ledger_filters(&stream);
		}
		end_job_xact();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("eventkit job %lld (%s %s): building ledger filters failed: %s",
						(long long) job->job_id, job->kind, job->target, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * Body of a job worker, connected to its database: run job job_id once.
 * The work and the record of its success commit together; a failure is
 * recorded in a transaction of its own and the job backs off.
 *
 * The whole job runs under eventkit.job_timeout, armed as PostgreSQL arms
 * statement_timeout (SPI in a background worker arms none).  A job that
 * times out or is cancelled (pg_cancel_backend) is an ordinary failure:
 * recorded as failed with its error, and retried after its backoff.
 */
void
ek_job_worker_execute(Oid dboid, int64 job_id)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "eventkit job",
											  ALLOCSET_DEFAULT_SIZES);
	JobRow		job;
	int64		run_id;
	ErrorData  *edata = NULL;
	TimestampTz deadline = 0;

	memset(&job, 0, sizeof(job));
	begin_job_xact();
	run_id = start_run(job_id, &job, cxt);
	end_job_xact();
	if (run_id == 0)
		return;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("eventkit job %lld: %s %s", (long long) job_id,
									job.kind, job.target));

	if (ek_job_timeout > 0)
	{
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ek_job_timeout);
		enable_timeout_after(STATEMENT_TIMEOUT, ek_job_timeout);
	}

	PG_TRY();
	{
		int64		rows;
		char	   *message;
		const char *status;
		int			nestlevel;

		begin_job_xact();
		/* what jobs run sees a safe search_path; GUCs set meanwhile are undone */
		nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		status = run_job(&job, &rows, &message);
		record_result(&job, run_id, status, message, rows);
		AtEOXact_GUC(false, nestlevel);
		end_job_xact();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();

	if (edata == NULL && strcmp(job.kind, EK_JOB_LEDGER) == 0 && job.has_stream)
		build_filters_after_rotation(&job, cxt);

	/*
	 * As PostgresMain does after an error: the timeout is over, and a cancel
	 * that arrives now must not fail the record of the failure (a worker
	 * that dies here leaves its run "crashed", without its error).
	 */
	disable_timeout(STATEMENT_TIMEOUT, false);
	HOLD_CANCEL_INTERRUPTS();
	QueryCancelPending = false;

	if (edata != NULL)
	{
		const char *message = edata->message;

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && deadline != 0 &&
			GetCurrentTimestamp() >= deadline)
			message = psprintf("job ran longer than eventkit.job_timeout (%d ms): %s",
							   ek_job_timeout, edata->message);
		ereport(LOG,
				(errmsg("eventkit job %lld (%s %s) failed: %s", (long long) job_id,
						job.kind, job.target, message),
				 errhint("It will be retried in %d seconds.",
						 backoff_secs(job.failures + 1))));
		begin_job_xact();
		record_result(&job, run_id, "failed", message, 0);
		end_job_xact();
	}
	RESUME_CANCEL_INTERRUPTS();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextDelete(cxt);
}

/* ---------------------------------------------------------------------
 * The scheduler's queries (the scheduler loop is in worker.c)
 * ---------------------------------------------------------------------
 */

/*
 * Runs left 'running' by a job worker that is no longer there (crash,
 * restart, terminated): marked crashed; their jobs count a failure and
 * back off.  running: the job ids whose workers are alive.
 */
void
ek_jobs_mark_orphans(Datum running)
{
	Oid			argtypes[2] = {INT8ARRAYOID, FLOAT8OID};
	Datum		values[2] = {running, Float8GetDatum(ek_naptime)};
	int			rc;

	rc = SPI_execute_with_args("WITH orphan AS ("
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
							   2, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "eventkit: could not mark crashed runs: %s", SPI_result_code_string(rc));
}

/*
 * Make the ledger job of a stream (all streams: stream_id < 0) due now;
 * the scheduler calls this when ingest saw a current ledger generation
 * over eventkit.ledger_generation_rows.
 */
void
ek_jobs_run_ledger_now(int32 stream_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(stream_id)};
	int			rc;

	rc = SPI_execute_with_args("UPDATE eventkit.jobs SET next_run_at = pg_catalog.now()"
							   " WHERE kind OPERATOR(pg_catalog.=) 'ledger' AND enabled"
							   " AND failures OPERATOR(pg_catalog.=) 0"
							   " AND next_run_at OPERATOR(pg_catalog.>) pg_catalog.now()"
							   " AND ($1 OPERATOR(pg_catalog.<) 0"
							   "  OR stream_id OPERATOR(pg_catalog.=) $1)",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "eventkit: could not update eventkit.jobs: %s", SPI_result_code_string(rc));
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
	Oid			argtypes[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3] = {Int32GetDatum(stream_id), CStringGetTextDatum(kind),
	EK_TEXT_OR_NULL(error)};
	Oid			save_userid;
	int			save_sec;
	int			rc;

	if (!ek_jobs_installed())
		return;
	ek_switch_to_owner(&save_userid, &save_sec);
	if (error != NULL)
		rc = SPI_execute_with_args("WITH j AS ("
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
								   3, argtypes, values, NULL, false, 0);
	else
		rc = SPI_execute_with_args("UPDATE eventkit.jobs SET last_run_at = pg_catalog.now(),"
								   "  last_status = 'succeeded', last_error = NULL, failures = 0"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   " AND kind OPERATOR(pg_catalog.=) $2"
								   " AND last_status OPERATOR(pg_catalog.=)"
								   "  ANY ('{failed,crashed}'::pg_catalog.text[])",
								   2, argtypes, values, NULL, false, 0);
	ek_restore_user(save_userid, save_sec);
	if (rc != (error != NULL ? SPI_OK_INSERT : SPI_OK_UPDATE))
		elog(ERROR, "eventkit: could not record a maintenance step: %s",
			 SPI_result_code_string(rc));
}

/* Is any job enabled here?  (The scheduler publishes it for fair sharing.) */
bool
ek_jobs_any_enabled(void)
{
	bool		isnull;
	int			rc;

	rc = SPI_execute("SELECT EXISTS (SELECT 1 FROM eventkit.jobs WHERE enabled)", true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not read eventkit.jobs: %s", SPI_result_code_string(rc));
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Delete finished runs older than eventkit.job_history_retention. */
void
ek_jobs_purge_history(void)
{
	Oid			argtypes[1] = {FLOAT8OID};
	Datum		values[1] = {Float8GetDatum(ek_job_history_retention)};
	int			rc;

	rc = SPI_execute_with_args("DELETE FROM eventkit.job_runs"
							   " WHERE status OPERATOR(pg_catalog.<>) 'running'"
							   " AND ended_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)"
							   "  pg_catalog.make_interval(0, 0, 0, 0, 0, 0, $1))",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not purge eventkit.job_runs: %s", SPI_result_code_string(rc));
}

/*
 * Up to limit enabled jobs that are due and not running, most overdue
 * first.  Returns how many; their ids go into out (palloc'd in cxt).
 */
int
ek_jobs_due(Datum running, int limit, int64 **out, MemoryContext cxt)
{
	Oid			argtypes[2] = {INT8ARRAYOID, INT4OID};
	Datum		values[2] = {running, Int32GetDatum(limit)};
	int			rc;
	bool		isnull;

	*out = NULL;
	if (limit <= 0)
		return 0;
	rc = SPI_execute_with_args("SELECT job_id FROM eventkit.jobs"
							   " WHERE enabled AND next_run_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
							   " AND job_id OPERATOR(pg_catalog.<>) ALL ($1)"
							   " ORDER BY next_run_at, job_id LIMIT $2",
							   2, argtypes, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.jobs: %s", SPI_result_code_string(rc));
	*out = MemoryContextAlloc(cxt, sizeof(int64) * (SPI_processed + 1));
	for (uint64 r = 0; r < SPI_processed; r++)
		(*out)[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
												SPI_tuptable->tupdesc, 1, &isnull));
	return (int) SPI_processed;
}
