/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  The rollup refresh: eventkit.refresh_rollup(), the refresh_rollup
 *	  job's refresh, the safe watermark that makes a refresh read exactly
 *	  the events committed since the previous one, and, for forget_user,
 *	  the catch-up of a stream's rollups and the rebuild of the buckets
 *	  that held erased rows.  The other SQL entry points of rollups
 *	  (create_rollup, create_rollup_of, drop_rollup, set_rollup_schedule,
 *	  forget_dropped_rollups, add_rollup_measures) and the remaking of a
 *	  stream's realtime views and worker delta tables are manage.c's, which
 *	  calls the refresh here (ek_rollup_refresh()) and shares the helpers
 *	  declared in refresh.h (an SQL argument, a rollup found by name, a
 *	  catalog row's definition, a stream's rollups).  The rollup's catalog
 *	  row is catalog/rollups.c's.
 *
 *	  Watermark.  Every stored row carries the batch_id of the ingest call
 *	  that stored it, from the sequence eventkit.batch_id_seq (CACHE 1), and
 *	  ingest allocates it only after it holds RowExclusiveLock on the stream.
 *	  A refresh (holding the rollup's catalog row FOR UPDATE, so refreshes of
 *	  one rollup serialize) reads the sequence's position S, then waits with
 *	  WaitForLockers() for every transaction that holds a lock conflicting
 *	  with ShareLock on the stream.  Any ingest that got a batch id <= S was
 *	  already holding its lock when S was read, so once the wait is over it
 *	  has committed or aborted; the fold then runs with a new snapshot and
 *	  sees all of (watermark, S].  New writers are not blocked (nothing is
 *	  locked, only waited for); their ids are > S and wait for the next
 *	  refresh.  The fold and the new watermark commit together, so a row is
 *	  folded exactly once.
 *
 *	  Finding the rows: create_rollup (manage.c) puts a BRIN index on
 *	  batch_id on the stream (one per stream, shared by its rollups; since
 *	  1.5, and in 1.1): a refresh reads the heap pages of the ranges that
 *	  hold new rows.
 *	  (Streams whose first rollup was created by 1.2 to 1.4 have a btree
 *	  instead; the fold reads through whichever is there.)
 *
 *	  Most batches are not read back at all: ingest leaves their groups in
 *	  the rollup's delta table (delta.c), and a refresh merges those
 *	  and reads from the stream only the batches that have none.
 *
 *	  Bad values (rollup.h) never fail a fold; a refresh adds the values its
 *	  fold skipped to eventkit.rollups.skipped_values (one catalog write per
 *	  refresh, the one that moves the watermark), and brings a rollup made
 *	  before 1.3 (eventkit.rollups.format 1) to the current format once:
 *	  its realtime view made again with the rules for bad values, ek_skips
 *	  added to its delta table (upgrade_rollup).
 *
 *	  refresh_rollup() in a transaction of its own commits without waiting
 *	  for the flush of its WAL (async_commit_*: a lost refresh is folded
 *	  again).  (The refresh_rollup job records its run in the same
 *	  transaction: its commit waits as before.)
 *
 *	  Definition parsing and SQL generation live in definition.c, the fold
 *	  itself (scan, aggregation in C, merge) in fold.c, the deltas in
 *	  delta.c, the fold of a worker delta table distributed with its
 *	  stream by generations in wdelta.c, the recompute of rollups of
 *	  rollups in derived.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog/batches.h"
#include "catalog/rollups.h"
#include "rollup/delta.h"
#include "rollup/derived.h"
#include "rollup/fold.h"
#include "rollup/refresh.h"
#include "rollup/wdelta.h"
#include "rollup/values.h"
#include "util/compat.h"
#include "util/owner.h"
#include "util/citus.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_refresh_rollup);

/* ---------------------------------------------------------------------
 * Helpers shared with manage.c
 * ---------------------------------------------------------------------
 */

/* Argument argno of an SQL function, a text that must not be null (what). */
text *
ek_rollup_text_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return PG_GETARG_TEXT_PP(argno);
}

/* A rollup's name (text, possibly qualified), as a RangeVar of this database. */
RangeVar *
ek_rollup_rangevar(text *name)
{
	RangeVar   *rv = makeRangeVarFromNameList(textToQualifiedNameList(name));

	if (rv->catalogname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: \"%s\"",
						text_to_cstring(name))));
	return rv;
}

/*
 * The rollup named name (a possibly qualified table name), checked to be
 * one and owned by the caller.  Caller: SPI connected.
 */
void
ek_rollup_find(text *name, bool for_update, RollupRow *row)
{
	Oid			relid = RangeVarGetRelid(ek_rollup_rangevar(name), NoLock, true);

	if (!OidIsValid(relid) || !ek_rollups_read(relid, false, row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" does not exist", text_to_cstring(name)),
				 errhint("Rollups are listed in eventkit.rollups; create one with eventkit.create_rollup().")));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	if (for_update && !ek_rollups_read(relid, true, row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" was dropped concurrently", text_to_cstring(name))));
}

/* The parsed definition of a rollup's catalog row (its measures as stored). */
void
ek_rollup_row_def(const RollupRow *row, RollupDef *def)
{
	ek_rollup_def_of_row(row, row->measures, false, def);
}

/*
 * The relids of a stream's rollups (not of rollups of them), copied: the
 * rollup cache's list is valid only until its next use.  (For the
 * catch-up of an erasure, below, and manage.c's remaking of views and
 * worker delta tables.)
 */
List *
ek_rollups_stream_relids(int32 stream_id)
{
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, ek_rollups_of_stream(stream_id))
		relids = lappend_oid(relids, ((StreamRollup *) lfirst(lc))->relid);
	return relids;
}

/* ---------------------------------------------------------------------
 * The refresh
 * ---------------------------------------------------------------------
 */

/*
 * The safe watermark of a stream, given pos, the sequence position read
 * before: every ingest that stored rows with batch_id <= pos has ended once
 * this returns.  Waits for the in-flight writers of the stream (not for
 * writers that start meanwhile): any ingest with a batch id <= pos already
 * held its lock when pos was read.
 */
static int64
safe_watermark(Oid stream, int64 pos)
{
	LOCKTAG		tag;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, stream);
	WaitForLockers(tag, ShareLock, false);
	return pos;
}

static char *
key_name(Oid relid)
{
	return psprintf("%s_key", get_rel_name(relid));
}

/*
 * Fold the rows with batch_id in (from, to] into the rollup, as the rollup
 * table's owner.  Returns the number of events folded; adds the values
 * skipped to *skips.
 */
static int64
fold(const RollupRow *row, int64 from, int64 to, RollupSkips *skips, RollupTouched *touched)
{
	RollupDef	def;
	EkRoleScope as_owner;
	int64		events = -1;
	char	   *qtable;
	char	   *keyname;
	Oid			delta;

	ek_as_role_begin(&as_owner, ek_relation_owner(row->relid), 0);
	ek_rollup_row_def(row, &def);
	def.touched = touched;
	/* read the new rows through the batch_id index, never by a whole scan */
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	qtable = ek_qualified_relname(row->relid);
	keyname = key_name(row->relid);
	/* the batches ingest left deltas for are folded from those (delta.c) */
	delta = ek_rollup_delta_relid(row->relid);
	if (OidIsValid(delta))
		events = ek_rollup_merge_deltas(&def, qtable, keyname, delta, from, to, skips);
	if (events < 0)
		events = ek_rollup_fold(&def, qtable, keyname, from, to, NULL, skips);
	ek_as_role_end(&as_owner);
	return events;
}

/*
 * Fold the rollup's worker delta table wdelta (the deltas of the batches
 * ingested on the Citus workers, delta.c) into the rollup, as the rollup
 * table's owner (max_events > 0: about that many events, whole batches;
 * of a distributed one, whole generations, and what the refreshes before
 * marked unless complete: wdelta.c).
 * Returns the number of events folded; adds the values skipped to *skips.
 */
static int64
fold_workers(const RollupRow *row, Oid wdelta, int64 max_events, bool complete,
			 RollupSkips *skips, RollupTouched *touched)
{
	RollupDef	def;
	EkRoleScope as_owner;
	int64		events;

	ek_as_role_begin(&as_owner, ek_relation_owner(row->relid), 0);
	ek_rollup_row_def(row, &def);
	def.touched = touched;
	/* distributed with the stream (1.17): by generations (wdelta.c) */
	if (ek_rollup_wdelta_generational(wdelta))
		events = ek_rollup_fold_worker_gens(&def, ek_qualified_relname(row->relid),
											key_name(row->relid), wdelta,
											row->rollup_id, max_events, complete, skips);
	else
		events = ek_rollup_merge_worker_deltas(&def, ek_qualified_relname(row->relid),
											   key_name(row->relid), wdelta, max_events, skips);
	ek_as_role_end(&as_owner);
	return events;
}

/*
 * Bring a rollup made before 1.3 to the current format (rollup.h): add
 * ek_skips to its delta table, and make its realtime view again, so that
 * the view skips bad values and bounds dimensions as the fold does.  The
 * view keeps its columns (CREATE OR REPLACE), its grants and what depends
 * on it.  The stream is locked first (as ingest does, then the delta
 * table) until the refresh commits: only once, at the end of the refresh.
 */
static void
upgrade_rollup(void *arg)
{
	const RollupRow *row = arg;
	RollupDef	def;
	EkRoleScope as_owner;
	Oid			delta;

	LockRelationOid(row->stream, ShareRowExclusiveLock);
	ek_as_role_begin(&as_owner, ek_relation_owner(row->relid), 0);
	ek_rollup_row_def(row, &def);
	delta = ek_rollup_delta_relid(row->relid);
	if (OidIsValid(delta) && get_attnum(delta, EK_ROLLUP_DELTA_SKIPS_COLUMN) == InvalidAttrNumber)
		ek_spi_exec(psprintf("ALTER TABLE %s ADD COLUMN %s pg_catalog.int8[]",
							 ek_qualified_relname(delta), EK_ROLLUP_DELTA_SKIPS_COLUMN),
					SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
	if (get_rel_name(row->view) != NULL)
	{
		char	   *qview = ek_qualified_relname(row->view);
		char	   *sql = ek_rollup_view_sql(&def, qview, ek_qualified_relname(row->relid));

		/* CREATE VIEW ... AS: CREATE OR REPLACE VIEW ... AS */
		Assert(strncmp(sql, "CREATE VIEW ", 12) == 0);
		ek_as_role_begin(&as_owner, ek_relation_owner(row->view), 0);
		ek_spi_exec(psprintf("CREATE OR REPLACE VIEW %s", sql + 12), SPI_OK_UTILITY);
		ek_as_role_end(&as_owner);
	}
}

/*
 * The refresh's commit.  refresh_rollup() is its own transaction most of
 * the time (called alone: from a client, from cron), and what it
 * writes (the rollup's rows, the deletes of the delta rows it merged, the
 * watermark in the catalog row) is derived from the stream and its deltas,
 * which are durable: the commit need not wait for the flush of its WAL
 * (synchronous_commit = off for that commit alone).  A crash that loses
 * the commit loses the whole refresh (WAL is replayed in order, so nothing
 * written after it survives either): the watermark and the delta rows are
 * as before it, the next refresh folds the same events again, and the
 * realtime view is exact meanwhile.  Any later commit that waits for its
 * flush flushes the refresh's WAL too; the WAL writer does within
 * 3 x wal_writer_delay.  After +1% at 1M events, waiting for the flush
 * was 10 to 45 ms of a refresh's wall time on the 2-core machine
 * (docs/performance.md).
 *
 * Only when nothing else in the transaction needs the flush: the refresh
 * started before the transaction had an xid (it wrote nothing before, or
 * only other such refreshes), and the transaction wrote no WAL after the
 * refresh (XactLastRecEnd is
 * where the refresh left it); and not where Citus is installed (its
 * two-phase commit needs the coordinator's commit record flushed before
 * the workers commit).
 */
static XLogRecPtr async_commit_at = InvalidXLogRecPtr;
static bool async_commit_callback_set = false;

static void
async_commit_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT && !XLogRecPtrIsInvalid(async_commit_at) &&
		XactLastRecEnd == async_commit_at && synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
	{
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		elog(DEBUG1, "eventkit: the refresh commits without waiting for its WAL flush");
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		async_commit_at = InvalidXLogRecPtr;
}

/* Before a refresh: may its commit skip the flush?  (see above) */
static bool
async_commit_allowed(void)
{
	/* nothing written yet, or only by refreshes that allowed it */
	return (!TransactionIdIsValid(GetTopTransactionIdIfAny()) ||
			(!XLogRecPtrIsInvalid(async_commit_at) && XactLastRecEnd == async_commit_at)) &&
		!ek_citus_installed();
}

/* After a refresh that wrote (allowed: async_commit_allowed() before it) */
static void
async_commit_arm(bool allowed)
{
	if (!allowed || XactLastRecEnd == InvalidXLogRecPtr)
		return;
	if (!async_commit_callback_set)
	{
		RegisterXactCallback(async_commit_callback, NULL);
		async_commit_callback_set = true;
	}
	async_commit_at = XactLastRecEnd;
}

/*
 * One refresh: under the catalog row lock, fold (watermark, safe] or, with
 * max_events > 0, about that many events of it, and record the new
 * watermark and the values skipped.  complete: everything committed in a
 * distributed worker delta table too (wdelta.c; the caller holds ingest
 * off on every node).  Returns the events folded.  Called by refresh_rollup,
 * the refresh_rollup job and the catch-up here, and by create_rollup (the
 * history, in chunks) and add_rollup_measures (manage.c).  Caller: SPI
 * connected, row read FOR UPDATE.
 */
int64
ek_rollup_refresh(RollupRow *row, int64 max_events, bool complete)
{
	int64		to;
	int64		events = 0;
	RollupSkips skips;
	Oid			wdelta;
	bool		with_skips = ek_rollups_have_skips();
	int32		format = row->format;
	Datum		skipped;
	bool		skipped_null;

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("a rollup cannot be refreshed in a %s transaction",
						XactIsoLevel == XACT_SERIALIZABLE ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errdetail("The refresh must see the events committed while it waits for in-flight ingests."),
				 errhint("Refresh rollups in a READ COMMITTED transaction.")));

	memset(&skips, 0, sizeof(skips));
	to = ek_batches_position();
	/* a rollup of a distributed stream: the deltas of the workers' batches */
	wdelta = ek_rollup_wdelta_relid(row->relid);
	if (to > row->watermark || OidIsValid(wdelta))
	{
		List	   *derived = ek_rollups_derived(row->relid);
		RollupTouched touched;
		bool		moved = to > row->watermark;

		memset(&touched, 0, sizeof(touched));
		touched.cxt = CurrentMemoryContext;
		if (moved)
		{
			to = safe_watermark(row->stream, to);
			if (max_events > 0)
				to = ek_batches_chunk_end(row->stream_id, row->watermark, to, max_events);
			events = fold(row, row->watermark, to, &skips, derived != NIL ? &touched : NULL);
		}
		else
			to = row->watermark;
		/* with max_events: what the coordinator's batches left of it */
		if (OidIsValid(wdelta) && (max_events <= 0 || events < max_events))
		{
			int64		wevents = fold_workers(row, wdelta,
											   max_events > 0 ? max_events - events : 0,
											   complete, &skips,
											   derived != NIL ? &touched : NULL);

			if (!moved && wevents == 0 && !(with_skips && row->format < EK_ROLLUP_FORMAT))
				return 0;
			events += wevents;
		}
		if (derived != NIL)
			ek_rollup_refresh_derived(derived, &touched, to, events);
	}
	else if (with_skips && row->format < EK_ROLLUP_FORMAT)
		to = row->watermark;	/* nothing new, but an upgrade to do */
	else
		return 0;

	skipped = ek_rollup_skips_jsonb(&skips, &skipped_null);
	if (with_skips && row->format < EK_ROLLUP_FORMAT)
	{
		ErrorData  *edata = ek_run_in_subtransaction(upgrade_rollup, row);

		if (edata == NULL)
			format = EK_ROLLUP_FORMAT;
		else
			ereport(WARNING,
					(errmsg("could not upgrade rollup \"%s\" to eventkit %d's format: %s",
							get_rel_name(row->relid), EK_ROLLUP_FORMAT, edata->message),
					 errdetail("Its realtime view may fail on a bad value; the refresh went on."),
					 errhint("Drop and re-create the rollup if this persists.")));
	}
	ek_rollups_record_refresh(row, to, events, skipped, skipped_null, format);
	row->watermark = to;
	row->format = format;
	return events;
}

/*
 * eventkit.refresh_rollup(name text, max_events bigint DEFAULT NULL)
 *		RETURNS bigint
 *
 * Folds the events committed since the last refresh (with max_events,
 * about that many of them: whole ingest batches) and returns how many.
 */
Datum
eventkit_refresh_rollup(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	int64		max_events = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	RollupRow	row;
	int64		events;
	bool		async;

	if (!PG_ARGISNULL(1) && max_events <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be positive"),
				 errhint("Leave it out (NULL) to fold everything.")));

	async = async_commit_allowed();
	SPI_connect();
	ek_rollup_find(name, false, &row);
	/* a rollup of a rollup: refreshed by its source's refresh (which locks both, in that order) */
	if (OidIsValid(row.source) && !ek_rollups_read(row.source, true, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the source of rollup \"%s\" does not exist", text_to_cstring(name)),
				 errhint("Drop the rollup.")));
	if (!OidIsValid(row.source) && !ek_rollups_read(row.relid, true, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" was dropped concurrently", text_to_cstring(name))));
	events = ek_rollup_refresh(&row, max_events, false);
	SPI_finish();
	async_commit_arm(async);
	PG_RETURN_INT64(events);
}

/*
 * The refresh_rollup job (worker/jobs.c): refresh the rollup whose table is relid,
 * as the current user, whom the job worker has made the rollup's owner.
 * Returns the events folded.
 */
int64
ek_refresh_rollup_job(Oid relid)
{
	RollupRow	row;
	int64		events;

	SPI_connect();
	if (!ek_rollups_read(relid, true, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup with table OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	events = ek_rollup_refresh(&row, 0, false);
	SPI_finish();
	return events;
}

/* ---------------------------------------------------------------------
 * Erasure (forget_user, stream/identity.c)
 * ---------------------------------------------------------------------
 */

/*
 * Before a stream's rows are deleted: every rollup of the stream folds
 * what is committed (its deltas included), so that afterwards no delta
 * and no unfolded tail holds the rows.  Returns the rollups' rows
 * (RollupRow *), read FOR UPDATE: no refresh runs until the caller's
 * transaction ends.  The caller holds a lock on the stream that keeps
 * ingest out.  Caller: SPI connected.
 */
List *
ek_rollups_catch_up(int32 stream_id)
{
	List	   *rows = NIL;
	ListCell   *lc;

	foreach(lc, ek_rollups_stream_relids(stream_id))
	{
		RollupRow  *row = palloc(sizeof(RollupRow));

		if (!ek_rollups_read(lfirst_oid(lc), true, row))
			continue;
		(void) ek_rollup_refresh(row, 0, true);
		rows = lappend(rows, row);
	}
	return rows;
}

/*
 * After a stream's rows were deleted: in each rollup (rows, from
 * ek_rollups_catch_up), the buckets that held the deleted rows' times
 * (ts, a timestamptz[]) are deleted and rebuilt from the rows that
 * remain, as the rollup's owner: hll and t-digest states cannot forget
 * a value, so nothing is subtracted.  Returns the buckets rebuilt.
 * Caller: SPI connected.
 */
int64
ek_rollups_rebuild_buckets(List *rows, Datum ts)
{
	int64		rebuilt = 0;
	ListCell   *lc;

	foreach(lc, rows)
	{
		RollupRow  *row = lfirst(lc);
		RollupDef	def;
		EkRoleScope as_owner;
		RollupSkips skips;
		char	   *qtable = ek_qualified_relname(row->relid);
		Oid			argtypes[2] = {TIMESTAMPTZARRAYOID, INTERVALOID};
		Datum		args[2] = {ts, IntervalPGetDatum(&row->bucket)};
		bool		isnull;
		Datum		buckets;
		TimestampTz lo;
		TimestampTz hi;

		CHECK_FOR_INTERRUPTS();
		memset(&skips, 0, sizeof(skips));
		ek_as_role_begin(&as_owner, ek_relation_owner(row->relid), 0);
		ek_rollup_row_def(row, &def);
		if (SPI_execute_with_args(psprintf("SELECT pg_catalog.array_agg(DISTINCT b),"
										   " pg_catalog.min(b), pg_catalog.max(b) OPERATOR(pg_catalog.+) $2"
										   " FROM (SELECT %s AS b FROM pg_catalog.unnest($1) AS s(ts)) x",
										   ek_rollup_bucket_expr(&def, "s.ts")),
								  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not compute the buckets to rebuild");
		buckets = ek_spi_value(0, 1, &isnull);
		if (!isnull)
		{
			Datum		del[1];
			Oid			del_types[1] = {TIMESTAMPTZARRAYOID};

			buckets = PointerGetDatum(DatumGetArrayTypePCopy(buckets));
			lo = DatumGetTimestampTz(ek_spi_value(0, 2, &isnull));
			hi = DatumGetTimestampTz(ek_spi_value(0, 3, &isnull));
			del[0] = buckets;
			if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE bucket OPERATOR(pg_catalog.=) ANY ($1)",
											   qtable),
									  1, del_types, del, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "eventkit: could not delete the buckets to rebuild");
			rebuilt += ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(buckets)),
									  ARR_DIMS(DatumGetArrayTypeP(buckets)));
			/*
			 * From the rows up to the watermark; with a worker delta table
			 * (a distributed stream, ingest held off on every node, the
			 * workers' deltas folded by the catch-up) from all rows: the
			 * workers' batch ids are not in the watermark's order
			 */
			(void) ek_rollup_fold_buckets(&def, qtable, key_name(row->relid),
										  OidIsValid(ek_rollup_wdelta_relid(row->relid)) ?
										  PG_INT64_MAX : row->watermark,
										  buckets, lo, hi, &skips);
		}
		ek_as_role_end(&as_owner);
	}
	return rebuilt;
}
