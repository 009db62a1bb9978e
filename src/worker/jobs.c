/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  What each job does, and running one job in a job worker: its run
 *	  recorded in eventkit.job_runs (catalog/jobs.c), the exponential
 *	  backoff of failing jobs, eventkit.job_timeout; and the SQL functions
 *	  that register and remove jobs that are not per stream
 *	  (schedule_job, unschedule_job; a stream's jobs come with the stream,
 *	  stream/stream.c).
 *
 *	  Jobs call C, never SQL functions: the stream jobs run the code of
 *	  eventkit.run_maintenance() (maintenance.c), the redrive job replays
 *	  through the ingest orchestrator (ek_redrive_quarantine, each event
 *	  parsed once), the refresh_rollup job refreshes through the rollup
 *	  orchestrator (rollup/refresh.c).  A job worker connects as the
 *	  bootstrap superuser, but does the work on a stream or rollup as its
 *	  owner under SECURITY_RESTRICTED_OPERATION (a role scope,
 *	  util/owner.c), so that no code the owner attached to it runs with
 *	  more rights than the owner has; the catalog is read and written as
 *	  the extension owner (catalog/).  A job runs under
 *	  eventkit.job_timeout; a timeout or a cancel is recorded as an ordinary
 *	  failure.  The process side (launcher, schedulers, job workers, shared
 *	  memory) is in scheduler.c, launcher.c and shmem.c.
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

#include "catalog/batches.h"
#include "catalog/jobs.h"
#include "catalog/streams.h"
#include "ingest/ingest.h"
#include "pipeline/dedup/dedup.h"
#include "rollup/refresh.h"
#include "stream/distribute.h"
#include "util/clock.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"
#include "worker/jobs.h"
#include "worker/maintenance.h"

PG_FUNCTION_INFO_V1(eventkit_schedule_job);
PG_FUNCTION_INFO_V1(eventkit_unschedule_job);

/* Longest retry delay of a failing job. */
#define EK_MAX_BACKOFF_SECS 3600

static int64
approx_usecs(const Interval *iv)
{
	return (int64) iv->month * 30 * USECS_PER_DAY + (int64) iv->day * USECS_PER_DAY + iv->time;
}

/*
 * eventkit.schedule_job(kind text, target text, schedule interval): the
 * SQL face of ek_jobs_schedule() for jobs that are not per stream.
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
	PG_RETURN_INT64(ek_jobs_schedule(kind, 0, target, schedule));
}

/* eventkit.unschedule_job(kind text, target text) */
Datum
eventkit_unschedule_job(PG_FUNCTION_ARGS)
{
	ek_jobs_unschedule(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					   text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Running jobs
 * ---------------------------------------------------------------------
 */

/*
 * Quarantined out_of_range events of a stream whose partition exists now
 * are replayed (ek_redrive_waiting: the path of
 * eventkit.replay_quarantine(), as the stream's owner under
 * SECURITY_RESTRICTED_OPERATION): for a stream distributed on Citus on
 * every worker first, one after the other (the coordinator made their
 * partitions), then here.
 * Returns the events that left the quarantine.  Caller: SPI connected, as
 * the job worker.
 */
static int64
redrive_out_of_range(const StreamInfo *stream, char **message)
{
	int64		counts[BATCH_NOUTCOMES] = {0};
	int			waiting;
	int			replayed;
	EkClusterRedrive workers;
	EkRoleScope as_owner;

	/*
	 * The workers first, as the stream's owner, never as the job worker.
	 * Each replays in a transaction of its own, which must not wait for
	 * this one: replayed first here, this transaction's claims of ids a
	 * worker also waits with would hold that worker's replay while this
	 * one waits for its answer, a wait that no deadlock detector sees.
	 */
	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);
	ek_redrive_on_workers(stream, ek_job_clock(), false, &workers);
	ek_as_role_end(&as_owner);
	replayed = ek_redrive_waiting(stream, counts, &waiting, NULL, NULL);

	if (replayed == 0)
		*message = psprintf("%d out_of_range events waiting, none has a partition yet",
							waiting);
	else
		*message = psprintf("replayed %d events: %lld accepted, %lld duplicates, %lld conflicts,"
							" %lld quarantined, %lld rejected", replayed,
							(long long) counts[BATCH_ACCEPTED], (long long) counts[BATCH_DUPLICATE],
							(long long) counts[BATCH_CONFLICT], (long long) counts[BATCH_QUARANTINED],
							(long long) counts[BATCH_REJECTED]);
	if (workers.nodes > 0)
		*message = psprintf("%s; on %d workers: replayed %lld events, %d partitions still missing%s",
							*message, workers.nodes, (long long) workers.replayed,
							workers.missing,
							workers.failed > 0 ? psprintf(", %d not reached", workers.failed) : "");
	return counts[BATCH_ACCEPTED] + counts[BATCH_DUPLICATE] + counts[BATCH_CONFLICT] +
		workers.replayed;
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
	EkRoleScope as_owner;
	int64		events;

	/* (an unqualified name is looked up in the job's pinned search_path) */
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" does not exist", target),
				 errhint("Rollups are listed in eventkit.rollups; remove a job left behind with eventkit.unschedule_job().")));
	ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	events = ek_refresh_rollup_job(relid);
	ek_as_role_end(&as_owner);
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
		Oid			relid = ek_streams_relid(job->stream_id);
		StreamInfo	stream;

		if (!OidIsValid(relid) || !ek_streams_read(relid, &stream, true))
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
	ek_jobs_end_run(run_id, status, message, rows, backoff_secs(job->failures + 1));
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
		Oid			relid;
		StreamInfo	stream;

		begin_job_xact();
		relid = ek_streams_relid(job->stream_id);
		if (OidIsValid(relid) && ek_streams_read(relid, &stream, true))
			(void) ek_dedup_build_filters(&stream);
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
	/* (committed, so that a run that never ends is seen and marked crashed) */
	run_id = ek_jobs_start_run(job_id, &job, cxt);
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
