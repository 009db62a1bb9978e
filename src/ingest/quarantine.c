/*-------------------------------------------------------------------------
 *
 * quarantine.c
 *	  eventkit.discard_quarantine(): a stream's owner deletes quarantined
 *	  events of its stream.  The quarantine is written and replayed by
 *	  ingest.c (replay_quarantine needs the stream's ownership too), its
 *	  rows are read and written by catalog/quarantine.c; its
 *	  row-level security policy, in the extension script, lets a stream's
 *	  owner read its stream's rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog/quarantine.h"
#include "catalog/streams.h"
#include "util/compat.h"

PG_FUNCTION_INFO_V1(eventkit_discard_quarantine);

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

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	relid = PG_GETARG_OID(0);
	LockRelationOid(relid, AccessShareLock);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
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
