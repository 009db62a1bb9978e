/*-------------------------------------------------------------------------
 *
 * batches.c
 *	  Ingest batches in the catalog: a batch's id, from
 *	  eventkit.batch_id_seq (CACHE 1: ids are handed out in order, which
 *	  the rollups' watermark relies on); its log row in
 *	  eventkit.ingest_batches, written once per ingest batch; its violation
 *	  counts in eventkit.batch_violations; and what a rollup refresh reads
 *	  of the log (the sequence's position, a chunk's end, the batches that
 *	  stored events and left no delta); and moving the sequence past the
 *	  ids of a stream restored from a Citus coordinator's dump.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "catalog/batches.h"
#include "catalog/catalog.h"
#include "util/owner.h"
#include "util/spi.h"

static EkStatement next_id = {
	.sql = "SELECT pg_catalog.nextval('eventkit.batch_id_seq')",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

static EkStatement log_batch = {
	.sql = "INSERT INTO eventkit.ingest_batches (batch_id, stream_id,"
	" received_at, ingested_by, items, accepted, duplicates,"
	" conflicts, quarantined, rejected)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	.nargs = 10,.argtypes = {INT8OID, INT4OID, TIMESTAMPTZOID, NAMEOID, INT4OID,
	INT8OID, INT8OID, INT8OID, INT8OID, INT8OID},.expected = SPI_OK_INSERT
};

static EkStatement log_violations = {
	.sql = "INSERT INTO eventkit.batch_violations (batch_id, stream_id, plan_id,"
	" plan_version, event, keyword, property_path, action, violations)"
	" SELECT $1, $2, $3, x.v, x.e, x.k, x.p, x.a, x.n"
	" FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6), pg_catalog.unnest($7),"
	" pg_catalog.unnest($8), pg_catalog.unnest($9)) AS x(v, e, k, p, a, n)",
	.nargs = 9,.argtypes = {INT8OID, INT4OID, INT4OID, INT4ARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID},.expected = SPI_OK_INSERT
};

/* not called since created or setval(..., false): last_value - 1 */
static EkStatement sequence_position = {
	.sql = "SELECT CASE WHEN is_called THEN last_value ELSE last_value OPERATOR(pg_catalog.-) 1 END"
	" FROM eventkit.batch_id_seq",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY | EK_STMT_ONE_ROW
};

static EkStatement chunk_end = {
	.sql = "SELECT b.batch_id FROM (SELECT batch_id,"
	" pg_catalog.sum(accepted) OVER (ORDER BY batch_id) AS n"
	" FROM eventkit.ingest_batches"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND batch_id OPERATOR(pg_catalog.>) $2"
	" AND batch_id OPERATOR(pg_catalog.<=) $3) b"
	" WHERE b.n OPERATOR(pg_catalog.>=) $4"
	" ORDER BY b.batch_id LIMIT 1",
	.nargs = 4,.argtypes = {INT4OID, INT8OID, INT8OID, INT8OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

/* (<> ALL: hashed) */
static EkStatement uncovered = {
	.sql = "SELECT pg_catalog.array_agg(batch_id ORDER BY batch_id)"
	" FROM eventkit.ingest_batches"
	" WHERE stream_id OPERATOR(pg_catalog.=) $3"
	" AND batch_id OPERATOR(pg_catalog.>) $1"
	" AND batch_id OPERATOR(pg_catalog.<=) $2"
	" AND accepted OPERATOR(pg_catalog.>) 0"
	" AND batch_id OPERATOR(pg_catalog.<>) ALL ($4)",
	.nargs = 4,.argtypes = {INT8OID, INT8OID, INT4OID, INT8ARRAYOID},
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

/* A new batch id.  Caller: SPI connected. */
int64
ek_batches_next_id(void)
{
	bool		isnull;

	ek_stmt_run(&next_id, NULL, NULL);
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/*
 * Log a batch: its items and their outcomes (counts[BATCH_NOUTCOMES]),
 * ingested by caller.
 */
void
ek_batches_log(int64 batch_id, int32 stream_id, TimestampTz received_at, Oid caller,
			   int32 items, const int64 *counts)
{
	Datum		args[10];

	args[0] = Int64GetDatum(batch_id);
	args[1] = Int32GetDatum(stream_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(caller, false)));
	args[4] = Int32GetDatum(items);
	for (int s = 0; s < BATCH_NOUTCOMES; s++)
		args[5 + s] = Int64GetDatum(counts[s]);
	ek_stmt_run(&log_batch, args, NULL);
}

/* Log the n violation counts of a batch checked against plan plan_id. */
void
ek_batches_log_violations(int64 batch_id, int32 stream_id, int32 plan_id,
						  const ViolationCount *counts, int n)
{
	Datum	   *cols[6];
	bool	   *event_nulls;
	Datum		args[9];

	if (n == 0)
		return;
	for (int c = 0; c < 6; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	event_nulls = palloc0(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		cols[0][i] = Int32GetDatum(counts[i].plan_version);
		cols[1][i] = EK_TEXT_OR_NULL(counts[i].event);
		event_nulls[i] = counts[i].event == NULL;
		cols[2][i] = CStringGetTextDatum(counts[i].keyword);
		cols[3][i] = CStringGetTextDatum(counts[i].path);
		cols[4][i] = CStringGetTextDatum(counts[i].action);
		cols[5][i] = Int64GetDatum(counts[i].n);
	}
	args[0] = Int64GetDatum(batch_id);
	args[1] = Int32GetDatum(stream_id);
	args[2] = Int32GetDatum(plan_id);
	args[3] = ek_make_array(cols[0], NULL, n, INT4OID);
	args[4] = ek_make_array(cols[1], event_nulls, n, TEXTOID);
	args[5] = ek_make_array(cols[2], NULL, n, TEXTOID);
	args[6] = ek_make_array(cols[3], NULL, n, TEXTOID);
	args[7] = ek_make_array(cols[4], NULL, n, TEXTOID);
	args[8] = ek_make_array(cols[5], NULL, n, INT8OID);
	ek_stmt_run(&log_violations, args, NULL);
}

/*
 * The last batch id handed out (0 if none yet).  Caller: SPI connected.
 */
int64
ek_batches_position(void)
{
	Oid			seq = ek_catalog_relid("batch_id_seq");
	EkRoleScope scope;
	int64		pos;
	bool		isnull;
	LOCAL_FCINFO(fcinfo, 1);

	if (!OidIsValid(seq))
		elog(ERROR, "eventkit: eventkit.batch_id_seq is missing");
	/* its last value, if nextval() has been called (no query to plan) */
	ek_as_owner_begin(&scope);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seq);
	fcinfo->args[0].isnull = false;
	pos = DatumGetInt64(pg_sequence_last_value(fcinfo));
	ek_as_role_end(&scope);
	if (!fcinfo->isnull)
		return pos;
	ek_stmt_run(&sequence_position, NULL, NULL);
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/*
 * Make the batch ids handed out from now on greater than id (rows that
 * carry batch ids this server did not hand out: a stream restored from a
 * Citus coordinator's dump holds the workers' own, which their nodes
 * numbered each from its own sequence).  setval() under a lock that keeps
 * nextval() out (it takes RowExclusiveLock on the sequence until its
 * transaction ends): it waits for the transactions that took ids, and
 * none is taken between the read and the setval; released at once, since
 * setval() is not transactional (a rollback leaves a gap in the ids, as a
 * rolled-back ingest does).  Returns the position: the last id handed
 * out, at least id.  Caller: SPI connected.
 */
int64
ek_batches_advance_past(int64 id)
{
	Oid			seq = ek_catalog_relid("batch_id_seq");
	int64		pos = ek_batches_position();
	EkRoleScope scope;

	if (pos >= id)
		return pos;
	LockRelationOid(seq, ShareLock);
	pos = ek_batches_position();
	if (pos < id)
	{
		/* as the extension owner: the sequence is its own */
		ek_as_owner_begin(&scope);
		(void) DirectFunctionCall2(setval_oid, ObjectIdGetDatum(seq), Int64GetDatum(id));
		ek_as_role_end(&scope);
		pos = id;
	}
	UnlockRelationOid(seq, ShareLock);
	return pos;
}

/*
 * The end of a chunk of about max_events events after from (at most to),
 * from the ingest log.
 */
int64
ek_batches_chunk_end(int32 stream_id, int64 from, int64 to, int64 max_events)
{
	Datum		args[4] = {Int32GetDatum(stream_id), Int64GetDatum(from),
	Int64GetDatum(to), Int64GetDatum(max_events)};
	bool		isnull;

	if (ek_stmt_run(&chunk_end, args, NULL) == 0)
		return to;
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/*
 * The batches of (from, to] of a stream that stored events and are not
 * in covered (int8[], ascending, each once), as an int8[] in batch order
 * (NULL: none).
 */
ArrayType *
ek_batches_uncovered(int32 stream_id, int64 from, int64 to, Datum covered)
{
	Oid			relid = ek_catalog_relid("ingest_batches");
	Relation	rel;
	Oid			pkey;
	AttrNumber	a_batch;
	AttrNumber	a_stream;
	AttrNumber	a_accepted;

	/*
	 * In C: the log's rows of (from, to] by its primary key, in a new
	 * snapshot as the statement's, those of the stream with accepted > 0
	 * and not in covered.  (The statement planned in a new backend, as a
	 * refresh's is, cost more than the rest of it for a small delta.)  The
	 * statement where the catalog is not as expected.
	 */
	rel = OidIsValid(relid) ? table_open(relid, AccessShareLock) : NULL;
	pkey = rel ? RelationGetPrimaryKeyIndex(rel) : InvalidOid;
	a_batch = rel ? attnameAttNum(rel, "batch_id", false) : InvalidAttrNumber;
	a_stream = rel ? attnameAttNum(rel, "stream_id", false) : InvalidAttrNumber;
	a_accepted = rel ? attnameAttNum(rel, "accepted", false) : InvalidAttrNumber;
	if (rel != NULL && OidIsValid(pkey) && a_batch == 1 && a_stream > 0 && a_accepted > 0 &&
		TupleDescAttr(RelationGetDescr(rel), a_stream - 1)->atttypid == INT4OID &&
		TupleDescAttr(RelationGetDescr(rel), a_accepted - 1)->atttypid == INT8OID)
	{
		Relation	index = index_open(pkey, AccessShareLock);
		Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		ScanKeyData sk[2];
		IndexScanDesc scan;
		Datum	   *cov;
		int			ncov;
		Datum	   *out = NULL;
		int			nout = 0;
		int			maxout = 0;
		ArrayType  *result;

		deconstruct_array(DatumGetArrayTypeP(covered), INT8OID, 8, FLOAT8PASSBYVAL,
						  TYPALIGN_DOUBLE, &cov, NULL, &ncov);
		ScanKeyInit(&sk[0], 1, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(from));
		ScanKeyInit(&sk[1], 1, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(to));
		scan = index_beginscan(rel, index, snapshot, 2, 0);
		index_rescan(scan, sk, 2, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			int64		b;
			int			lo = 0;
			int			hi = ncov;

			CHECK_FOR_INTERRUPTS();
			if (DatumGetInt32(slot_getattr(slot, a_stream, &isnull)) != stream_id || isnull ||
				DatumGetInt64(slot_getattr(slot, a_accepted, &isnull)) <= 0 || isnull)
				continue;
			b = DatumGetInt64(slot_getattr(slot, a_batch, &isnull));
			/* covered is sorted (the caller's ek_hll_distinct) */
			while (lo < hi)
			{
				int			mid = lo + (hi - lo) / 2;

				if (DatumGetInt64(cov[mid]) < b)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < ncov && DatumGetInt64(cov[lo]) == b)
				continue;
			if (nout == maxout)
			{
				maxout = Max(16, maxout * 2);
				out = out ? repalloc(out, maxout * sizeof(Datum)) : palloc(maxout * sizeof(Datum));
			}
			out[nout++] = Int64GetDatum(b);
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		UnregisterSnapshot(snapshot);
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		if (nout == 0)
			return NULL;
		result = construct_array(out, nout, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		return result;
	}
	if (rel != NULL)
		table_close(rel, AccessShareLock);
	{
		Datum		args[4] = {Int64GetDatum(from), Int64GetDatum(to),
		Int32GetDatum(stream_id), covered};
		bool		isnull;
		Datum		d;

		ek_stmt_run(&uncovered, args, NULL);
		d = ek_spi_value(0, 1, &isnull);
		return isnull ? NULL : DatumGetArrayTypePCopy(d);
	}
}
