/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  eventkit.run_maintenance(): the periodic work of a stream — premaking
 *	  partitions (and those that waiting events need, a distributed
 *	  stream's workers' included), dropping partitions past retention,
 *	  starting a new dedup ledger generation and dropping expired ones.
 *	  A distributed stream's premake runs under
 *	  eventkit.maintenance_lock_timeout on every Citus node it reaches.
 *	  Callable by hand or from
 *	  pg_cron; the background worker's jobs run the same code
 *	  (ek_run_stream_job, called by jobs.c), as the stream's owner.
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

#include "catalog/jobs.h"
#include "catalog/streams.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/partition.h"
#include "stream/distribute.h"
#include "util/citus.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"
#include "worker/maintenance.h"

PG_FUNCTION_INFO_V1(eventkit_run_maintenance);

/*
 * The premake job's work: the partitions ahead of now, those the events in
 * quarantine wait for (of every node, for a distributed stream), and the
 * redrive job made due when events wait for a partition it made.
 */
static int64
premake_work(StreamInfo *stream, TimestampTz now)
{
	EkClusterRedrive workers;
	int64		n;
	int			for_waiting;

	n = ek_premake_partitions(stream, now);
	for_waiting = ek_make_waiting_partitions(stream, now);
	/* a distributed stream: the partitions its workers' events wait for */
	ek_redrive_on_workers(stream, now, true, &workers);
	n += for_waiting + workers.created;

	/*
	 * Events wait for the partitions made: the redrive job stores them as
	 * soon as this transaction has committed, not at its next interval
	 */
	if (for_waiting + workers.created > 0)
		ek_jobs_run_now(EK_JOB_REDRIVE, stream->stream_id);
	return n;
}

/*
 * Premake, in the stream owner's role scope.
 *
 * A distributed stream's partition DDL runs under
 * eventkit.maintenance_lock_timeout on every node, not only here: Citus's
 * ATTACH PARTITION locks index shards of the stream's existing partitions
 * on all workers at once (SHARE ROW EXCLUSIVE, until the transaction ends),
 * so that waiting on one worker for an ingest transaction's rows it would
 * hold the others' and block every write there, or close a cycle with a
 * call that goes on to write on another node (a distributed deadlock that
 * Citus resolves by cancelling one of the two, maybe the call).  It gives
 * up instead, with this error, and the next run makes the partitions.
 */
static int64
premake(StreamInfo *stream, TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			timeout_ms = ek_maintenance_lock_timeout;
	char	   *name;
	int64		n = 0;

	if (ek_citus_table_kind(stream->relid) != EK_CITUS_HASH)
		return premake_work(stream, now);

	name = ek_qualified_relname(stream->relid);
	PG_TRY();
	{
		ek_citus_lock_timeout_begin(timeout_ms);
		n = premake_work(stream, now);
		ek_citus_lock_timeout_end(timeout_ms);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("partitions of distributed stream %s not made: a lock was not granted within eventkit.maintenance_lock_timeout (%d ms)",
						name, timeout_ms),
				 errdetail("%s", edata->message),
				 errhint("The next run of maintenance makes them.  A transaction that holds rows of the stream on a node (an open transaction that ingested) keeps maintenance waiting there.")));
	}
	PG_END_TRY();
	return n;
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
 * where no user code can run: it runs as the extension owner (the dedup
 * stage does), which also lets a stream's owner run it by hand.  GUC
 * changes made meanwhile are undone.  Caller: SPI connected.
 */
int64
ek_run_stream_job(const char *kind, StreamInfo *stream, TimestampTz now)
{
	EkRoleScope as_owner;
	int64		n;

	if (strcmp(kind, EK_JOB_LEDGER) == 0)
		return ek_dedup_maintain(stream);
	if (strcmp(kind, EK_JOB_PREMAKE) != 0 && strcmp(kind, EK_JOB_RETENTION) != 0)
		elog(ERROR, "eventkit: unknown stream job kind \"%s\"", kind);

	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);
	if (strcmp(kind, EK_JOB_PREMAKE) == 0)
		n = premake(stream, now);
	else
		n = ek_drop_expired_partitions(stream, now);
	ek_as_role_end(&as_owner);
	return n;
}

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
		/* with no argument: the streams the caller owns */
		foreach(lc, ek_streams_relids())
			if (ek_owns_relation(lfirst_oid(lc)))
				relids = lappend_oid(relids, lfirst_oid(lc));
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

		if (ek_streams_read(lfirst_oid(lc), &stream, !PG_ARGISNULL(0) ? false : true))
			ek_maintain_stream(&stream, now, PG_ARGISNULL(0));
	}
	SPI_finish();
	PG_RETURN_VOID();
}
