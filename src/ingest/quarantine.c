/*-------------------------------------------------------------------------
 *
 * quarantine.c
 *	  eventkit.discard_quarantine(): a stream's owner deletes quarantined
 *	  events of its stream.  The quarantine is written and replayed by
 *	  ingest.c (replay_quarantine needs the stream's ownership too); its
 *	  row-level security policy, in the extension script, lets a stream's
 *	  owner read its stream's rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "eventkit.h"

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
	Oid			argtypes[4] = {INT4OID, INT8ARRAYOID, TEXTARRAYOID, INTERVALOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Oid			save_userid;
	int			save_sec;
	int			rc;
	uint64		deleted;

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
	ek_lookup_stream(relid, &stream, false);
	args[0] = Int32GetDatum(stream.stream_id);
	for (int i = 1; i < 4; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("DELETE FROM eventkit.quarantine q"
							   " WHERE q.stream_id OPERATOR(pg_catalog.=) $1"
							   " AND ($2 IS NULL OR q.quarantine_id OPERATOR(pg_catalog.=) ANY ($2))"
							   " AND ($3 IS NULL OR EXISTS (SELECT 1"
							   "  FROM pg_catalog.jsonb_array_elements(q.reasons) r"
							   "  WHERE (r.value OPERATOR(pg_catalog.->>) 'reason'::pg_catalog.text)"
							   "   OPERATOR(pg_catalog.=) ANY ($3)))"
							   " AND ($4 IS NULL OR q.quarantined_at OPERATOR(pg_catalog.<)"
							   "  (pg_catalog.now() OPERATOR(pg_catalog.-) $4))",
							   4, argtypes, args, nulls, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: delete from quarantine failed: %s", SPI_result_code_string(rc));
	deleted = SPI_processed;
	ek_restore_user(save_userid, save_sec);
	SPI_finish();
	PG_RETURN_INT64((int64) deleted);
}
