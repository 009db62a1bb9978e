/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  eventkit.run_maintenance(): the periodic work of a stream — premaking
 *	  partitions, dropping partitions past retention, starting a new dedup
 *	  ledger generation and dropping expired ones.  Callable by hand or from
 *	  pg_cron; the background worker's jobs run the same code
 *	  (ek_run_stream_job in jobs.c).
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

/* One stream's maintenance.  Caller: SPI connected. */
void
ek_maintain_stream(StreamInfo *stream, TimestampTz now)
{
	int64		made = ek_run_stream_job(EK_JOB_PREMAKE, stream, now);
	int64		dropped = ek_run_stream_job(EK_JOB_RETENTION, stream, now);
	int64		ledger = ek_run_stream_job(EK_JOB_LEDGER, stream, now);

	ereport(DEBUG1,
			(errmsg("eventkit: stream %s: %lld partitions made, %lld dropped, %lld ledger generations started or dropped",
					get_rel_name(stream->relid), (long long) made, (long long) dropped,
					(long long) ledger)));
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
			ek_maintain_stream(&stream, now);
	}
	SPI_finish();
	PG_RETURN_VOID();
}
