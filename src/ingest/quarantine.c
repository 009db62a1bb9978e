/*-------------------------------------------------------------------------
 *
 * quarantine.c
 *	  eventkit.discard_quarantine(): a stream's owner deletes quarantined
 *	  events of its stream.  eventkit.redrive_quarantine(): the redrive
 *	  job's work on this node (ek_redrive_waiting, shared with the job):
 *	  the events waiting for a partition (out_of_range) whose partition
 *	  exists now are replayed, as the stream's owner under
 *	  SECURITY_RESTRICTED_OPERATION, and the partitions the others still
 *	  wait for are returned (on a Citus worker, for the coordinator, which
 *	  makes them: stream/distribute.c).  The quarantine is written and
 *	  replayed by ingest.c (replay_quarantine needs the stream's ownership
 *	  too), its
 *	  rows are read and written by catalog/quarantine.c; its
 *	  row-level security policy, in the extension script, lets a stream's
 *	  owner read its stream's rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog/batches.h"
#include "catalog/cluster.h"
#include "catalog/quarantine.h"
#include "catalog/streams.h"
#include "ingest/ingest.h"
#include "pipeline/partition.h"
#include "util/compat.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_discard_quarantine);
PG_FUNCTION_INFO_V1(eventkit_redrive_quarantine);

/* Redrive looks at this many quarantined out_of_range events per run. */
#define EK_REDRIVE_BATCH 10000

static void
check_older_than(Interval *older_than)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	if (DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(older_than),
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errhint("Use an interval such as '30 days', or leave it out to discard events of any age.")));
}

/*
 * The stream argument (the first) of a function that needs the stream's
 * ownership: not null, existing (locked AccessShareLock), owned by the
 * caller.
 */
static Oid
owned_stream_arg(FunctionCallInfo fcinfo)
{
	Oid			relid;

	relid = ek_stream_arg(fcinfo, 0);
	LockRelationOid(relid, AccessShareLock);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	return relid;
}

/*
 * eventkit.discard_quarantine(stream regclass, ids bigint[] DEFAULT NULL,
 *							   reasons text[] DEFAULT NULL,
 *							   older_than interval DEFAULT NULL) RETURNS bigint
 *
 * Deletes the stream's quarantined events that match every filter given:
 * listed in ids, with one of reasons among their reason codes, quarantined
 * more than older_than ago; without filters, all of them.  Needs the
 * stream's ownership.  Returns how many were deleted.
 */
Datum
eventkit_discard_quarantine(PG_FUNCTION_ARGS)
{
	Oid			relid;
	StreamInfo	stream;
	int64		deleted;

	relid = owned_stream_arg(fcinfo);
	if (!PG_ARGISNULL(3))
		check_older_than(PG_GETARG_INTERVAL_P(3));

	SPI_connect();
	ek_streams_read(relid, &stream, false);
	deleted = ek_quarantine_discard(stream.stream_id,
									PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
									PG_ARGISNULL(1),
									PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
									PG_ARGISNULL(2),
									PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
									PG_ARGISNULL(3));
	SPI_finish();
	PG_RETURN_INT64(deleted);
}

static int
compare_timestamps(const void *a, const void *b)
{
	TimestampTz x = *(const TimestampTz *) a;
	TimestampTz y = *(const TimestampTz *) b;

	return x < y ? -1 : x > y;
}

/*
 * The start of each partition that the stream's waiting events (reason
 * out_of_range) on this node need, in order, each once.  Caller: SPI
 * connected.
 */
static TimestampTz *
waiting_partition_starts(const StreamInfo *stream, int *n)
{
	int			ntimes;
	TimestampTz *times = ek_waiting_event_times(stream, &ntimes);

	*n = 0;
	for (int i = 0; i < ntimes; i++)
		times[i] = ek_bucket_start(&stream->partition_interval, times[i]);
	if (ntimes > 1)
		qsort(times, ntimes, sizeof(TimestampTz), compare_timestamps);
	for (int i = 0; i < ntimes; i++)
		if (*n == 0 || times[*n - 1] != times[i])
			times[(*n)++] = times[i];
	return times;
}

/*
 * The redrive job's work on this node: of the first EK_REDRIVE_BATCH
 * events of the stream waiting for a partition, those whose partition
 * exists now are replayed (ek_redrive_quarantine), as the stream's owner
 * under SECURITY_RESTRICTED_OPERATION with a pinned search_path, so that
 * the triggers, defaults, index expressions and policies the owner put on
 * the stream run with the owner's rights, whoever runs this.  Returns how
 * many were replayed and adds their outcome to counts; *waiting: the
 * events looked at.  With starts, also returns the start of each
 * partition the events still waiting need (*nstarts of them).  Caller:
 * SPI connected.
 */
int
ek_redrive_waiting(const StreamInfo *stream, int64 *counts, int *waiting,
				   TimestampTz **starts, int *nstarts)
{
	EkRoleScope as_owner;
	int			replayed;

	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);

	/*
	 * PostgreSQL refuses to queue a deferred trigger past a restricted
	 * operation: fire the stream's deferred triggers at the end of each
	 * statement instead, while still its owner.
	 */
	ek_spi_exec("SET CONSTRAINTS ALL IMMEDIATE", SPI_OK_UTILITY);
	replayed = ek_redrive_quarantine(stream->relid, EK_REDRIVE_BATCH, counts, waiting);
	if (starts != NULL)
	{
		/* what is still waiting, the replay's deletions seen */
		CommandCounterIncrement();
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		*starts = waiting_partition_starts(stream, nstarts);
		PopActiveSnapshot();
	}
	ek_as_role_end(&as_owner);
	return replayed;
}

/*
 * eventkit.redrive_quarantine(stream regclass, OUT replayed bigint,
 *							   OUT waiting_partitions timestamptz[])
 *
 * The redrive job's work, by hand, on this node (on a Citus worker, the
 * coordinator's jobs call it there: stream/distribute.c).  Needs the
 * stream's ownership.  A distributed stream that this worker has not
 * ingested into yet is adopted first (and has nothing waiting).
 */
Datum
eventkit_redrive_quarantine(PG_FUNCTION_ARGS)
{
	int64		counts[BATCH_NOUTCOMES] = {0};
	Oid			relid;
	StreamInfo	stream;
	TupleDesc	tupdesc;
	TimestampTz *starts;
	int			nstarts;
	int			waiting;
	int			replayed;
	Datum	   *elems;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext oldcxt;

	relid = owned_stream_arg(fcinfo);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "eventkit: redrive_quarantine must return a record");

	SPI_connect();
	ek_cluster_sync_local(relid);
	ek_streams_read(relid, &stream, false);
	replayed = ek_redrive_waiting(&stream, counts, &waiting, &starts, &nstarts);

	/*
	 * starts is in SPI's memory, which SPI_finish frees: the array is made
	 * in the caller's first (until 1.17 it was read after SPI_finish, and
	 * a worker crashed once that memory had been given back)
	 */
	oldcxt = MemoryContextSwitchTo(callcxt);
	elems = palloc(sizeof(Datum) * Max(nstarts, 1));
	for (int i = 0; i < nstarts; i++)
		elems[i] = TimestampTzGetDatum(starts[i]);
	values[0] = Int64GetDatum(replayed);
	values[1] = PointerGetDatum(construct_array(elems, nstarts, TIMESTAMPTZOID,
												sizeof(TimestampTz), true,
												TYPALIGN_DOUBLE));
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
