/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  eventkit.run_maintenance(): the periodic work of a stream — premaking
 *	  partitions, dropping partitions past retention, starting a new dedup
 *	  ledger generation and dropping expired ones.  Callable by hand or from
 *	  pg_cron; the background worker's jobs run the same code
 *	  (ek_run_stream_job in jobs.c), as the stream's owner.
 *
 *	  Without an argument it maintains every stream the caller owns, each
 *	  step of each stream in a subtransaction of its own: a step that fails
 *	  is reported with a WARNING and recorded as a failed run of the
 *	  stream's job (eventkit.job_runs, eventkit.jobs, health()), and the
 *	  other steps and streams are still maintained.  A step that succeeds
 *	  clears the failure recorded for its job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "eventkit.h"

PG_FUNCTION_INFO_V1(eventkit_run_maintenance);

/* One step of a stream's maintenance, for ek_run_in_subtransaction(). */
typedef struct MaintenanceStep
{
	const char *kind;
	StreamInfo *stream;
	TimestampTz now;
	int64		rows;
} MaintenanceStep;

static void
run_step(void *arg)
{
	MaintenanceStep *step = (MaintenanceStep *) arg;

	step->rows = ek_run_stream_job(step->kind, step->stream, step->now);
}

/*
 * One stream's maintenance.  With isolate, each step runs in a
 * subtransaction and a failure is reported and recorded instead of raised.
 * Caller: SPI connected.
 */
void
ek_maintain_stream(StreamInfo *stream, TimestampTz now, bool isolate)
{
	static const char *const kinds[] = {EK_JOB_PREMAKE, EK_JOB_RETENTION, EK_JOB_LEDGER};
	int64		rows[lengthof(kinds)];

	for (int i = 0; i < lengthof(kinds); i++)
	{
		MaintenanceStep step = {kinds[i], stream, now, 0};
		ErrorData  *edata;

		if (!isolate)
		{
			run_step(&step);
			edata = NULL;
		}
		else
			edata = ek_run_in_subtransaction(run_step, &step);
		rows[i] = step.rows;
		if (edata == NULL)
		{
			ek_jobs_record_manual_run(stream->stream_id, kinds[i], NULL);
			continue;
		}
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);	/* a cancel or timeout stops the whole call */
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("%s of stream %s failed: %s", kinds[i],
						ek_qualified_relname(stream->relid), edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 errhint("The other streams are maintained; the failure is recorded in eventkit.job_runs and shown by eventkit.health().")));
		ek_jobs_record_manual_run(stream->stream_id, kinds[i],
								  psprintf("run_maintenance: %s", edata->message));
		FreeErrorData(edata);
	}

	ereport(DEBUG1,
			(errmsg("eventkit: stream %s: %lld partitions made, %lld dropped, %lld ledger generations started or dropped",
					get_rel_name(stream->relid), (long long) rows[0], (long long) rows[1],
					(long long) rows[2])));
}

Datum
eventkit_run_maintenance(PG_FUNCTION_ARGS)
{
	List	   *relids = NIL;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	SPI_connect();
	if (PG_ARGISNULL(0))
	{
		int			rc = SPI_execute("SELECT relid::pg_catalog.oid FROM eventkit.streams"
									 " ORDER BY stream_id", true, 0);

		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read eventkit.streams");
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r],
															   SPI_tuptable->tupdesc, 1, &isnull));

			/* with no argument: the streams the caller owns */
			if (ek_owns_relation(relid))
				relids = lappend_oid(relids, relid);
		}
	}
	else
	{
		Oid			relid = PG_GETARG_OID(0);

		if (!ek_owns_relation(relid))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
		relids = list_make1_oid(relid);
	}

	foreach(lc, relids)
	{
		StreamInfo	stream;

		if (ek_lookup_stream(lfirst_oid(lc), &stream, !PG_ARGISNULL(0) ? false : true))
			ek_maintain_stream(&stream, now, PG_ARGISNULL(0));
	}
	SPI_finish();
	PG_RETURN_VOID();
}
