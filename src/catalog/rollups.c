/*-------------------------------------------------------------------------
 *
 * rollups.c
 *	  Rollups in the catalog: a rollup's row in eventkit.rollups (its
 *	  definition, its watermark and what its refreshes folded and skipped),
 *	  read FOR UPDATE by a refresh (which serializes refreshes of one
 *	  rollup); the schedule of its refresh job; and forgetting the rollups
 *	  whose table is gone.
 *
 *	  Ingest needs the rollups of a stream for every batch (to leave their
 *	  deltas): ek_rollups_of_stream() answers from a per-backend cache, read
 *	  once per stream and forgotten when eventkit.rollups changes: the
 *	  functions here that add or remove a rollup send a relcache
 *	  invalidation of eventkit.rollups with their transaction, which every
 *	  backend receives when it commits.  A change the cache misses (rows
 *	  written by hand or by a restore into a running server) only costs
 *	  speed: a batch without a rollup's delta is folded from the stream.
 *
 *	  The skipped values and the format came with 1.3; rollups with 1.1;
 *	  the generations of a worker delta table distributed with its stream
 *	  (wdelta_*, read and written by a refresh, read by the realtime view in
 *	  its own snapshot: rollup/wdelta.c) with 1.17.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "catalog/catalog.h"
#include "catalog/cluster.h"
#include "catalog/rollups.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/relcache.h"
#include "util/spi.h"

#define ROW_COLUMNS "SELECT rollup_id, relid::pg_catalog.oid," \
	" realtime_view::pg_catalog.oid, stream::pg_catalog.oid," \
	" stream_id, bucket, dimensions, measures, watermark, backfill_target,"
#define ROW_WHERE " FROM eventkit.rollups WHERE relid OPERATOR(pg_catalog.=) $1"

static EkStatement read_row = {
	.sql = ROW_COLUMNS " format" ROW_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement read_row_locked = {
	.sql = ROW_COLUMNS " format" ROW_WHERE " FOR UPDATE",
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

/* before 1.3: format 1 */
#define ROW_OPTIONS " format, filter, time_zone, origin, hll_log2m, source_rollup::pg_catalog.oid"

static EkStatement read_row_1_4 = {
	.sql = ROW_COLUMNS ROW_OPTIONS ROW_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement read_row_locked_1_4 = {
	.sql = ROW_COLUMNS ROW_OPTIONS ROW_WHERE " FOR UPDATE",
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement read_row_1_1 = {
	.sql = ROW_COLUMNS " 1" ROW_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement read_row_locked_1_1 = {
	.sql = ROW_COLUMNS " 1" ROW_WHERE " FOR UPDATE",
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement next_id = {
	.sql = "SELECT pg_catalog.nextval('eventkit.rollups_rollup_id_seq')::pg_catalog.int4",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

static EkStatement insert_row = {
	.sql = "INSERT INTO eventkit.rollups (rollup_id, name, relid,"
	" realtime_view, stream_id, stream, bucket, dimensions,"
	" measures, backfill_target, format)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	.nargs = 11,.argtypes = {INT4OID, TEXTOID, OIDOID, OIDOID, INT4OID, OIDOID,
	INTERVALOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID, INT4OID},.expected = SPI_OK_INSERT
};

static EkStatement insert_row_1_4 = {
	.sql = "INSERT INTO eventkit.rollups (rollup_id, name, relid,"
	" realtime_view, stream_id, stream, bucket, dimensions,"
	" measures, backfill_target, format, filter, time_zone, origin, hll_log2m,"
	" source_rollup)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
	.nargs = 16,.argtypes = {INT4OID, TEXTOID, OIDOID, OIDOID, INT4OID, OIDOID,
		INTERVALOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID, INT4OID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, INT4OID, OIDOID},.expected = SPI_OK_INSERT
};

static EkStatement derived_of = {
	.sql = "SELECT relid::pg_catalog.oid FROM eventkit.rollups"
	" WHERE source_rollup OPERATOR(pg_catalog.=) $1 ORDER BY rollup_id",
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement set_measures = {
	.sql = "UPDATE eventkit.rollups SET measures = $2, realtime_view = $3"
	" WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 3,.argtypes = {INT4OID, TEXTARRAYOID, OIDOID},
	.expected = SPI_OK_UPDATE,.flags = EK_STMT_ONE_ROW
};

static EkStatement delete_row = {
	.sql = "DELETE FROM eventkit.rollups WHERE rollup_id OPERATOR(pg_catalog.=) $1"
	" RETURNING name, stream_id, stream",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE_RETURNING
};

static EkStatement others_on_stream = {
	.sql = "SELECT 1 FROM eventkit.rollups WHERE stream_id OPERATOR(pg_catalog.=) $2"
	" AND rollup_id OPERATOR(pg_catalog.<>) $1",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT
};

static EkStatement set_schedule = {
	.sql = "UPDATE eventkit.rollups SET schedule = $2 WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 2,.argtypes = {INT4OID, INTERVALOID},.expected = SPI_OK_UPDATE
};

/* and the refresh job's: from its next run on */
static EkStatement set_job_schedule = {
	.sql = "UPDATE eventkit.jobs j SET schedule = $2"
	" FROM eventkit.rollups r"
	" WHERE r.rollup_id OPERATOR(pg_catalog.=) $1"
	" AND j.kind OPERATOR(pg_catalog.=) 'refresh_rollup'"
	" AND j.stream_id IS NULL"
	" AND j.target OPERATOR(pg_catalog.=) r.name",
	.nargs = 2,.argtypes = {INT4OID, INTERVALOID},.expected = SPI_OK_UPDATE
};

static EkStatement record_refresh = {
	.sql = "UPDATE eventkit.rollups SET watermark = $2,"
	" events_folded = events_folded OPERATOR(pg_catalog.+) $3,"
	" last_refresh_at = pg_catalog.clock_timestamp(),"
	" last_refresh_events = $3,"
	" skipped_values = CASE WHEN $4 IS NULL THEN skipped_values"
	"   ELSE (SELECT pg_catalog.jsonb_object_agg(e.key, e.n)"
	"   FROM (SELECT x.key, pg_catalog.sum(x.value::pg_catalog.int8) AS n"
	"     FROM (SELECT * FROM pg_catalog.jsonb_each_text(skipped_values)"
	"       UNION ALL SELECT * FROM pg_catalog.jsonb_each_text($4)) x"
	"     GROUP BY x.key) e) END,"
	" last_skipped_at = CASE WHEN $4 IS NULL THEN last_skipped_at"
	"   ELSE pg_catalog.clock_timestamp() END,"
	" format = $5"
	" WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 5,.argtypes = {INT4OID, INT8OID, INT8OID, JSONBOID, INT4OID},
	.expected = SPI_OK_UPDATE,.flags = EK_STMT_ONE_ROW
};

static EkStatement record_refresh_1_1 = {
	.sql = "UPDATE eventkit.rollups SET watermark = $2,"
	" events_folded = events_folded OPERATOR(pg_catalog.+) $3,"
	" last_refresh_at = pg_catalog.clock_timestamp(),"
	" last_refresh_events = $3"
	" WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 3,.argtypes = {INT4OID, INT8OID, INT8OID},
	.expected = SPI_OK_UPDATE,.flags = EK_STMT_ONE_ROW
};

/* a rollup rebuilt from all its stream's rows: as create_rollup leaves it */
static EkStatement record_rebuild = {
	.sql = "UPDATE eventkit.rollups SET watermark = $2, backfill_target = $2,"
	" events_folded = $3,"
	" last_refresh_at = pg_catalog.clock_timestamp(),"
	" last_refresh_events = $3,"
	" skipped_values = COALESCE($4, '{}'::pg_catalog.jsonb),"
	" last_skipped_at = CASE WHEN $4 IS NULL THEN NULL"
	"   ELSE pg_catalog.clock_timestamp() END"
	" WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 4,.argtypes = {INT4OID, INT8OID, INT8OID, JSONBOID},
	.expected = SPI_OK_UPDATE,.flags = EK_STMT_ONE_ROW
};

static EkStatement forget_dropped = {
	.sql = "DELETE FROM eventkit.rollups r"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	"   WHERE c.oid OPERATOR(pg_catalog.=) r.relid::pg_catalog.oid)"
	" OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	"   WHERE c.oid OPERATOR(pg_catalog.=) r.stream::pg_catalog.oid)"
	" RETURNING r.stream_id, r.stream",
	.expected = SPI_OK_DELETE_RETURNING
};

/* their refresh jobs and the jobs' history */
static EkStatement forget_dropped_jobs = {
	.sql = "WITH gone AS (DELETE FROM eventkit.jobs j"
	" WHERE j.kind OPERATOR(pg_catalog.=) 'refresh_rollup' AND j.stream_id IS NULL"
	" AND NOT EXISTS (SELECT 1 FROM eventkit.rollups r"
	"   WHERE r.name OPERATOR(pg_catalog.=) j.target)"
	" RETURNING j.job_id)"
	" DELETE FROM eventkit.job_runs WHERE job_id IN (SELECT job_id FROM gone)",
	.expected = SPI_OK_DELETE
};

static EkStatement of_stream = {
	.sql = "SELECT rollup_id, relid::pg_catalog.oid, bucket, dimensions, measures"
	" FROM eventkit.rollups WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" ORDER BY rollup_id",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

/* ingest's cache of the rollups of each stream */
static EkStatement of_stream_1_4 = {
	.sql = "SELECT rollup_id, relid::pg_catalog.oid, bucket, dimensions, measures,"
	" filter, time_zone, origin, hll_log2m"
	" FROM eventkit.rollups WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND source_rollup IS NULL ORDER BY rollup_id",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

typedef struct StreamRollups
{
	int32		stream_id;		/* hash key */
	List	   *rollups;		/* of StreamRollup * */
} StreamRollups;

static HTAB *stream_rollups = NULL;
static MemoryContext stream_rollups_cxt = NULL;
static Oid	rollups_relid = InvalidOid;
static bool stale = false;
static bool callback_registered = false;

/* Is there a rollups table (a catalog at 1.1 or later)? */
bool
ek_rollups_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_1;
}

/*
 * Does eventkit.rollups count skipped values and record formats (1.3:
 * also the functions the realtime views call exist)?  Before that, a
 * refresh folds with the rules for bad values but neither counts them in
 * the catalog nor upgrades rollups.
 */
bool
ek_rollups_have_skips(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_3;
}

/* Tell every backend (at commit) that the rollups of streams changed. */
static void
rollups_changed(void)
{
	Oid			relid = ek_catalog_relid("rollups");

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/*
 * Read a rollup's catalog row by the rollup table's oid (FOR UPDATE when
 * asked: that serializes refreshes).  The definition's arrays are copied
 * into the caller's memory context.  Caller: SPI connected.
 */
/*
 * Has the catalog the rollup options of 1.4 (eventkit.rollups.source_rollup)?
 * (A syscache lookup: no catalog version of its own.)
 */
bool
ek_rollups_have_options(void)
{
	Oid			relid;

	if (!ek_rollups_have_skips())
		return false;
	relid = ek_catalog_relid("rollups");
	return OidIsValid(relid) && get_attnum(relid, "source_rollup") != InvalidAttrNumber;
}

/* The options of result row r, from column col on (filter, time_zone, origin, hll_log2m). */
static void
read_options(uint64 r, int col, RollupOptions *opts)
{
	bool		isnull;
	Datum		v;

	memset(opts, 0, sizeof(*opts));
	v = ek_spi_value(r, col, &isnull);
	if (!isnull)
		opts->filter = TextDatumGetCString(v);
	v = ek_spi_value(r, col + 1, &isnull);
	if (!isnull)
		opts->time_zone = TextDatumGetCString(v);
	v = ek_spi_value(r, col + 2, &isnull);
	opts->has_origin = !isnull;
	if (!isnull)
		opts->origin = DatumGetTimestampTz(v);
	v = ek_spi_value(r, col + 3, &isnull);
	if (!isnull)
		opts->hll_log2m = DatumGetInt32(v);
}

/*
 * A refresh's reads and write of eventkit.rollups in C (1.13): its row by
 * the rollup table's oid (read, and again FOR UPDATE), the rollups computed
 * from it, and the record of the refresh.  Each was a statement planned
 * once per backend (ek_stmt_run keeps its plan), so a refresh in a new
 * session (a job, a scheduled call) parsed and planned four statements
 * (about 12% of its CPU after +1% at 1M events: docs/performance.md).
 * Here: the catalog table and its unique index on relid, a new snapshot
 * per read as the statement's (after CommandCounterIncrement), the row
 * locked as SELECT ... FOR UPDATE locks it in READ COMMITTED (its newest
 * version, waited for; a version that no longer has the relid is not the
 * row), and the record an update of that row with its index entries, as
 * UPDATE writes it.  The statements remain where the catalog is not as
 * expected (before 1.4, a column missing or of another type, no such
 * index, a trigger, row-level security), for a record with skipped
 * values (their sum per reason in jsonb), and in a test build with
 * eventkit.testing_rollup_sql_merge on (sql/rollup_cmerge.sql compares).
 */

/* the attribute numbers of eventkit.rollups' columns that a refresh reads and writes */
typedef struct RollupsAtts
{
	AttrNumber	rollup_id,
				relid,
				view,
				stream,
				stream_id,
				bucket,
				dimensions,
				measures,
				watermark,
				backfill_target,
				format,
				filter,
				time_zone,
				origin,
				hll_log2m,
				source,
				events_folded,
				last_refresh_at,
				last_refresh_events;
} RollupsAtts;

/* column name of rel, of type typid: its attribute number, else InvalidAttrNumber */
static AttrNumber
rollups_att(Relation rel, const char *name, Oid typid)
{
	AttrNumber	a = attnameAttNum(rel, name, false);

	if (a <= 0 || TupleDescAttr(RelationGetDescr(rel), a - 1)->atttypid != typid)
		return InvalidAttrNumber;
	return a;
}

/*
 * eventkit.rollups opened (lockmode) for the refresh's access in C, its
 * columns in *a and its unique index on relid in *index (opened); NULL
 * where the statements are needed (see above).
 */
static Relation
rollups_open(LOCKMODE lockmode, RollupsAtts *a, Relation *index)
{
	Oid			relid;
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;

	if (!ek_rollups_have_options() || ek_testing_rollup_sql_merge)
		return NULL;
	relid = ek_catalog_relid("rollups");
	if (!OidIsValid(relid))
		return NULL;
	rel = table_open(relid, lockmode);
	a->rollup_id = rollups_att(rel, "rollup_id", INT4OID);
	a->relid = rollups_att(rel, "relid", REGCLASSOID);
	a->view = rollups_att(rel, "realtime_view", REGCLASSOID);
	a->stream = rollups_att(rel, "stream", REGCLASSOID);
	a->stream_id = rollups_att(rel, "stream_id", INT4OID);
	a->bucket = rollups_att(rel, "bucket", INTERVALOID);
	a->dimensions = rollups_att(rel, "dimensions", TEXTARRAYOID);
	a->measures = rollups_att(rel, "measures", TEXTARRAYOID);
	a->watermark = rollups_att(rel, "watermark", INT8OID);
	a->backfill_target = rollups_att(rel, "backfill_target", INT8OID);
	a->format = rollups_att(rel, "format", INT4OID);
	a->filter = rollups_att(rel, "filter", TEXTOID);
	a->time_zone = rollups_att(rel, "time_zone", TEXTOID);
	a->origin = rollups_att(rel, "origin", TIMESTAMPTZOID);
	a->hll_log2m = rollups_att(rel, "hll_log2m", INT4OID);
	a->source = rollups_att(rel, "source_rollup", REGCLASSOID);
	a->events_folded = rollups_att(rel, "events_folded", INT8OID);
	a->last_refresh_at = rollups_att(rel, "last_refresh_at", TIMESTAMPTZOID);
	a->last_refresh_events = rollups_att(rel, "last_refresh_events", INT8OID);
	*index = NULL;
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rel->relrowsecurity ||
		a->rollup_id == 0 || a->relid == 0 || a->view == 0 || a->stream == 0 ||
		a->stream_id == 0 || a->bucket == 0 || a->dimensions == 0 || a->measures == 0 ||
		a->watermark == 0 || a->backfill_target == 0 || a->format == 0 ||
		a->filter == 0 || a->time_zone == 0 || a->origin == 0 || a->hll_log2m == 0 ||
		a->source == 0 || a->events_folded == 0 || a->last_refresh_at == 0 ||
		a->last_refresh_events == 0)
	{
		table_close(rel, lockmode);
		return NULL;
	}
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	i = index_open(lfirst_oid(lc), lockmode);

		if (i->rd_rel->relam == BTREE_AM_OID && i->rd_index->indisvalid &&
			i->rd_index->indisunique && i->rd_index->indnkeyatts == 1 &&
			i->rd_index->indkey.values[0] == a->relid &&
			i->rd_opcintype[0] == OIDOID && RelationGetIndexPredicate(i) == NIL)
		{
			*index = i;
			break;
		}
		index_close(i, lockmode);
	}
	if (*index == NULL)
	{
		table_close(rel, lockmode);
		return NULL;
	}
	return rel;
}

static void
rollups_close(Relation rel, Relation index, LOCKMODE lockmode)
{
	index_close(index, lockmode);
	table_close(rel, lockmode);
}

/*
 * The row of rollup table relid in slot, read in snapshot through the
 * index (locked FOR UPDATE when asked); false if there is none.
 */
static bool
rollups_fetch(Relation rel, Relation index, const RollupsAtts *a, Snapshot snapshot,
			  Oid relid, bool for_update, TupleTableSlot *slot)
{
	ScanKeyData sk;
	IndexScanDesc scan;
	bool		found;
	bool		isnull;

	ScanKeyInit(&sk, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &sk, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	if (found && for_update)
	{
		TM_FailureData tmfd;
		TM_Result	result;

		/* as ExecLockRows: the newest version in READ COMMITTED, waited for */
		result = table_tuple_lock(rel, &slot->tts_tid, snapshot, slot,
								  GetCurrentCommandId(true), LockTupleExclusive,
								  LockWaitBlock,
								  IsolationUsesXactSnapshot() ? 0 :
								  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		switch (result)
		{
			case TM_Ok:
				break;
			case TM_Deleted:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent delete")));
				found = false;	/* (the statement would skip it) */
				break;
			case TM_SelfModified:
				found = false;
				break;
			case TM_Updated:
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
				break;
			default:
				elog(ERROR, "eventkit: unexpected result %d locking a rollup's catalog row",
					 (int) result);
		}
		/* a newer version must still be the rollup's row (the statement's recheck) */
		if (found && tmfd.traversed &&
			DatumGetObjectId(slot_getattr(slot, a->relid, &isnull)) != relid)
			found = false;
	}
	return found;
}

/* ek_rollups_read in C (see above): false, *done, when the row is not there */
static bool
rollups_read_direct(Oid relid, bool for_update, RollupRow *row, bool *done)
{
	LOCKMODE	lockmode = for_update ? RowShareLock : AccessShareLock;
	RollupsAtts a;
	Relation	index;
	Relation	rel = rollups_open(lockmode, &a, &index);
	Snapshot	snapshot;
	TupleTableSlot *slot;
	bool		found;
	bool		isnull;
	Datum		v;

	*done = rel != NULL;
	if (rel == NULL)
		return false;
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	found = rollups_fetch(rel, index, &a, snapshot, relid, for_update, slot);
	if (found)
	{
		row->rollup_id = DatumGetInt32(slot_getattr(slot, a.rollup_id, &isnull));
		row->relid = DatumGetObjectId(slot_getattr(slot, a.relid, &isnull));
		row->view = DatumGetObjectId(slot_getattr(slot, a.view, &isnull));
		row->stream = DatumGetObjectId(slot_getattr(slot, a.stream, &isnull));
		row->stream_id = DatumGetInt32(slot_getattr(slot, a.stream_id, &isnull));
		row->bucket = *DatumGetIntervalP(slot_getattr(slot, a.bucket, &isnull));
		row->dimensions = PointerGetDatum(DatumGetArrayTypePCopy(slot_getattr(slot, a.dimensions, &isnull)));
		row->measures = PointerGetDatum(DatumGetArrayTypePCopy(slot_getattr(slot, a.measures, &isnull)));
		row->watermark = DatumGetInt64(slot_getattr(slot, a.watermark, &isnull));
		row->backfill_target = DatumGetInt64(slot_getattr(slot, a.backfill_target, &isnull));
		row->format = DatumGetInt32(slot_getattr(slot, a.format, &isnull));
		memset(&row->opts, 0, sizeof(row->opts));
		v = slot_getattr(slot, a.filter, &isnull);
		if (!isnull)
			row->opts.filter = TextDatumGetCString(v);
		v = slot_getattr(slot, a.time_zone, &isnull);
		if (!isnull)
			row->opts.time_zone = TextDatumGetCString(v);
		v = slot_getattr(slot, a.origin, &isnull);
		row->opts.has_origin = !isnull;
		if (!isnull)
			row->opts.origin = DatumGetTimestampTz(v);
		v = slot_getattr(slot, a.hll_log2m, &isnull);
		if (!isnull)
			row->opts.hll_log2m = DatumGetInt32(v);
		v = slot_getattr(slot, a.source, &isnull);
		row->source = isnull ? InvalidOid : DatumGetObjectId(v);
	}
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	/* (a lock on the row is kept until the transaction ends, as the statement's) */
	rollups_close(rel, index, lockmode);
	return found;
}

/* ek_rollups_derived in C (see above): false when the statement is needed */
static bool
rollups_derived_direct(Oid source, List **relids)
{
	RollupsAtts a;
	Relation	index;
	Relation	rel = rollups_open(AccessShareLock, &a, &index);
	Snapshot	snapshot;
	TupleTableSlot *slot;
	TableScanDesc scan;
	int32	   *ids = NULL;
	Oid		   *oids = NULL;
	int			n = 0;
	int			max = 0;

	if (rel == NULL)
		return false;
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		v = slot_getattr(slot, a.source, &isnull);
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (isnull || DatumGetObjectId(v) != source)
			continue;
		if (n == max)
		{
			max = Max(8, max * 2);
			ids = ids ? repalloc(ids, max * sizeof(int32)) : palloc(max * sizeof(int32));
			oids = oids ? repalloc(oids, max * sizeof(Oid)) : palloc(max * sizeof(Oid));
		}
		/* in rollup_id order (few rows: an insertion) */
		for (i = n; i > 0 && ids[i - 1] > DatumGetInt32(slot_getattr(slot, a.rollup_id, &isnull)); i--)
		{
			ids[i] = ids[i - 1];
			oids[i] = oids[i - 1];
		}
		ids[i] = DatumGetInt32(slot_getattr(slot, a.rollup_id, &isnull));
		oids[i] = DatumGetObjectId(slot_getattr(slot, a.relid, &isnull));
		n++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	rollups_close(rel, index, AccessShareLock);
	*relids = NIL;
	for (int i = 0; i < n; i++)
		*relids = lappend_oid(*relids, oids[i]);
	return true;
}

/*
 * ek_rollups_record_refresh in C without skipped values (see above): the
 * row updated as the statement updates it; false when the statement is
 * needed.
 */
static bool
rollups_record_direct(const RollupRow *row, int64 to, int64 events, int32 format)
{
	RollupsAtts a;
	Relation	index;
	Relation	rel = rollups_open(RowExclusiveLock, &a, &index);
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	EState	   *estate;
	Snapshot	snapshot;
	TupleTableSlot *oldslot;
	TupleTableSlot *newslot;
	TupleDesc	desc;
	EkUpdateIndexes update_indexes;
	TM_Result	result;
	int64		folded;
	bool		isnull;

	if (rel == NULL)
		return false;
	desc = RelationGetDescr(rel);
	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	oldslot = table_slot_create(rel, NULL);
	newslot = table_slot_create(rel, NULL);
	if (!rollups_fetch(rel, index, &a, snapshot, row->relid, false, oldslot) ||
		DatumGetInt32(slot_getattr(oldslot, a.rollup_id, &isnull)) != row->rollup_id)
		elog(ERROR, "eventkit: the catalog row of rollup %d is gone", row->rollup_id);
	slot_getallattrs(oldslot);
	memcpy(newslot->tts_values, oldslot->tts_values, desc->natts * sizeof(Datum));
	memcpy(newslot->tts_isnull, oldslot->tts_isnull, desc->natts * sizeof(bool));
	/* watermark, events_folded + events, last_refresh_at, last_refresh_events, format */
	newslot->tts_values[a.watermark - 1] = Int64GetDatum(to);
	newslot->tts_isnull[a.watermark - 1] = false;
	if (oldslot->tts_isnull[a.events_folded - 1] ||
		pg_add_s64_overflow(DatumGetInt64(oldslot->tts_values[a.events_folded - 1]), events,
							&folded))
	{
		if (!oldslot->tts_isnull[a.events_folded - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		newslot->tts_isnull[a.events_folded - 1] = true;	/* NULL + n */
	}
	else
		newslot->tts_values[a.events_folded - 1] = Int64GetDatum(folded);
	newslot->tts_values[a.last_refresh_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	newslot->tts_isnull[a.last_refresh_at - 1] = false;
	newslot->tts_values[a.last_refresh_events - 1] = Int64GetDatum(events);
	newslot->tts_isnull[a.last_refresh_events - 1] = false;
	newslot->tts_values[a.format - 1] = Int32GetDatum(format);
	newslot->tts_isnull[a.format - 1] = false;
	ExecStoreVirtualTuple(newslot);
	if (desc->constr != NULL)
		ExecConstraints(rri, newslot, estate);
	result = ek_tuple_update(rel, &oldslot->tts_tid, newslot, GetCurrentCommandId(true),
							 snapshot, &update_indexes);
	if (result != TM_Ok)
		elog(ERROR, "eventkit: could not record the refresh of rollup %d (%d)",
			 row->rollup_id, (int) result);
	/* (none of the columns written is indexed: a HOT update needs no index opened) */
	if (ek_update_needs_indexes(update_indexes))
	{
		ExecOpenIndices(rri, false);
		ek_update_indexes(rri, newslot, estate, update_indexes);
		ExecCloseIndices(rri);
	}
	ExecDropSingleTupleTableSlot(oldslot);
	ExecDropSingleTupleTableSlot(newslot);
	UnregisterSnapshot(snapshot);
	FreeExecutorState(estate);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}

bool
ek_rollups_read(Oid relid, bool for_update, RollupRow *row)
{
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	bool		isnull;
	EkStatement *stmt;
	bool		done;
	bool		found = rollups_read_direct(relid, for_update, row, &done);

	if (done)
		return found;
	if (ek_rollups_have_options())
		stmt = for_update ? &read_row_locked_1_4 : &read_row_1_4;
	else if (ek_rollups_have_skips())
		stmt = for_update ? &read_row_locked : &read_row;
	else
		stmt = for_update ? &read_row_locked_1_1 : &read_row_1_1;
	if (ek_stmt_run(stmt, args, NULL) == 0)
		return false;
	row->rollup_id = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	row->relid = DatumGetObjectId(ek_spi_value(0, 2, &isnull));
	row->view = DatumGetObjectId(ek_spi_value(0, 3, &isnull));
	row->stream = DatumGetObjectId(ek_spi_value(0, 4, &isnull));
	row->stream_id = DatumGetInt32(ek_spi_value(0, 5, &isnull));
	row->bucket = *DatumGetIntervalP(ek_spi_value(0, 6, &isnull));
	row->dimensions = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(0, 7, &isnull)));
	row->measures = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(0, 8, &isnull)));
	row->watermark = DatumGetInt64(ek_spi_value(0, 9, &isnull));
	row->backfill_target = DatumGetInt64(ek_spi_value(0, 10, &isnull));
	row->format = DatumGetInt32(ek_spi_value(0, 11, &isnull));
	memset(&row->opts, 0, sizeof(row->opts));
	row->source = InvalidOid;
	if (stmt == &read_row_1_4 || stmt == &read_row_locked_1_4)
	{
		read_options(0, 12, &row->opts);
		row->source = DatumGetObjectId(ek_spi_value(0, 16, &isnull));
		if (isnull)
			row->source = InvalidOid;
	}
	return true;
}

/* A new rollup id. */
int32
ek_rollups_next_id(void)
{
	bool		isnull;

	ek_stmt_run(&next_id, NULL, NULL);
	return DatumGetInt32(ek_spi_value(0, 1, &isnull));
}

/* Record a new rollup, named name (its table's qualified name). */
void
ek_rollups_insert(const RollupRow *row, const char *name)
{
	Datum		args[16];
	char		nulls[16];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int32GetDatum(row->rollup_id);
	args[1] = CStringGetTextDatum(name);
	args[2] = ObjectIdGetDatum(row->relid);
	args[3] = ObjectIdGetDatum(row->view);
	args[4] = Int32GetDatum(row->stream_id);
	args[5] = ObjectIdGetDatum(row->stream);
	args[6] = IntervalPGetDatum(&row->bucket);
	args[7] = row->dimensions;
	args[8] = row->measures;
	args[9] = Int64GetDatum(row->backfill_target);
	args[10] = Int32GetDatum(row->format);
	if (!ek_rollups_have_options())
	{
		ek_stmt_run(&insert_row, args, NULL);
		rollups_changed();
		ek_cluster_stream_changed(row->stream_id, row->stream);
		return;
	}
	args[11] = row->opts.filter ? CStringGetTextDatum(row->opts.filter) : (Datum) 0;
	nulls[11] = row->opts.filter ? ' ' : 'n';
	args[12] = row->opts.time_zone ? CStringGetTextDatum(row->opts.time_zone) : (Datum) 0;
	nulls[12] = row->opts.time_zone ? ' ' : 'n';
	args[13] = TimestampTzGetDatum(row->opts.origin);
	nulls[13] = row->opts.has_origin ? ' ' : 'n';
	args[14] = Int32GetDatum(row->opts.hll_log2m);
	nulls[14] = row->opts.hll_log2m > 0 ? ' ' : 'n';
	args[15] = ObjectIdGetDatum(row->source);
	nulls[15] = OidIsValid(row->source) ? ' ' : 'n';
	ek_stmt_run(&insert_row_1_4, args, nulls);
	rollups_changed();
	/* a distributed stream's rollups are in the cluster-wide catalog */
	ek_cluster_stream_changed(row->stream_id, row->stream);
}

/* Remove a rollup's row; returns its name, NULL if it was gone already. */
char *
ek_rollups_delete(int32 rollup_id)
{
	Datum		args[1] = {Int32GetDatum(rollup_id)};
	bool		isnull;

	char	   *name;
	int32		stream_id;
	Oid			stream;

	if (ek_stmt_run(&delete_row, args, NULL) != 1)
		return NULL;
	rollups_changed();
	name = TextDatumGetCString(ek_spi_value(0, 1, &isnull));
	stream_id = DatumGetInt32(ek_spi_value(0, 2, &isnull));
	stream = DatumGetObjectId(ek_spi_value(0, 3, &isnull));
	/* a distributed stream's rollups are in the cluster-wide catalog */
	ek_cluster_stream_changed(stream_id, stream);
	return name;
}

/* Has the stream rollups other than rollup_id? */
bool
ek_rollups_others_on_stream(int32 rollup_id, int32 stream_id)
{
	Datum		args[2] = {Int32GetDatum(rollup_id), Int32GetDatum(stream_id)};

	return ek_stmt_run(&others_on_stream, args, NULL) > 0;
}

/* How often the rollup's refresh job runs (recorded with the rollup too). */
void
ek_rollups_set_schedule(int32 rollup_id, const Interval *schedule)
{
	Datum		args[2] = {Int32GetDatum(rollup_id), IntervalPGetDatum(schedule)};

	ek_stmt_run(&set_schedule, args, NULL);
	ek_stmt_run(&set_job_schedule, args, NULL);
}

/*
 * Record a refresh: the new watermark to, the events folded, the values
 * skipped (jsonb {"reason": n}, added to those counted before) and the
 * rollup's format now.  Skips and format only on a 1.3 catalog.
 */
void
ek_rollups_record_refresh(const RollupRow *row, int64 to, int64 events,
						  Datum skipped, bool skipped_null, int32 format)
{
	Datum		args[5] = {Int32GetDatum(row->rollup_id), Int64GetDatum(to),
	Int64GetDatum(events), skipped, Int32GetDatum(format)};
	char		nulls[5] = {' ', ' ', ' ', skipped_null ? 'n' : ' ', ' '};

	if (skipped_null && rollups_record_direct(row, to, events, format))
		return;
	ek_stmt_run(ek_rollups_have_skips() ? &record_refresh : &record_refresh_1_1,
				args, nulls);
}

/*
 * Record that a rollup was rebuilt from all its stream's rows (backfill.c,
 * for undistribute_stream): its watermark and backfill target to, what it
 * folded and skipped (jsonb {"reason": n}, NULL: none) replacing what
 * its earlier refreshes counted, as create_rollup with its backfill
 * leaves them.  On a 1.3 catalog or later (undistribute_stream came with
 * 1.13).
 */
void
ek_rollups_record_rebuild(const RollupRow *row, int64 to, int64 events, Datum skipped,
						  bool skipped_null)
{
	Datum		args[4] = {Int32GetDatum(row->rollup_id), Int64GetDatum(to),
	Int64GetDatum(events), skipped};
	char		nulls[4] = {' ', ' ', ' ', skipped_null ? 'n' : ' '};

	ek_stmt_run(&record_rebuild, args, nulls);
}

/*
 * Remove the rows of rollups whose table or stream is gone, and their
 * refresh jobs.  Returns how many rollups were forgotten.
 */
int32
ek_rollups_forget_dropped(void)
{
	int32		forgotten = (int32) ek_stmt_run(&forget_dropped, NULL, NULL);
	int32	   *stream_ids = palloc(sizeof(int32) * (forgotten + 1));
	Oid		   *streams = palloc(sizeof(Oid) * (forgotten + 1));

	for (int32 r = 0; r < forgotten; r++)
	{
		bool		isnull;

		stream_ids[r] = DatumGetInt32(ek_spi_value(r, 1, &isnull));
		streams[r] = DatumGetObjectId(ek_spi_value(r, 2, &isnull));
	}
	ek_stmt_run(&forget_dropped_jobs, NULL, NULL);
	if (forgotten > 0)
		rollups_changed();
	/* a distributed stream's rollups are in the cluster-wide catalog */
	for (int32 r = 0; r < forgotten; r++)
		if (get_rel_name(streams[r]) != NULL)
			ek_cluster_stream_changed(stream_ids[r], streams[r]);
	return forgotten;
}

static void
rollups_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == rollups_relid)
		stale = true;
}

/*
 * The rollups of a stream (StreamRollup *, in rollup_id order), from the
 * cache.  The list is valid until the next call (a change seen meanwhile
 * is applied then, never under a caller still reading the list).  Caller:
 * SPI connected.
 */
List *
ek_rollups_of_stream(int32 stream_id)
{
	StreamRollups *e;
	bool		found;
	uint64		n;
	Datum		args[1] = {Int32GetDatum(stream_id)};
	MemoryContext old;
	bool		with_options;

	if (!ek_rollups_installed())
		return NIL;
	if (!callback_registered)
	{
		ek_register_relcache_callback(rollups_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (stale && stream_rollups_cxt != NULL)
	{
		MemoryContextReset(stream_rollups_cxt);
		stream_rollups = NULL;
	}
	stale = false;
	if (stream_rollups == NULL)
	{
		HASHCTL		ctl;

		if (stream_rollups_cxt == NULL)
			stream_rollups_cxt = AllocSetContextCreate(CacheMemoryContext,
													   "eventkit rollups of streams",
													   ALLOCSET_SMALL_SIZES);
		rollups_relid = ek_catalog_relid("rollups");
		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(StreamRollups);
		ctl.hcxt = stream_rollups_cxt;
		stream_rollups = hash_create("eventkit rollups of streams", 16, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(stream_rollups, &stream_id, HASH_FIND, &found);
	if (found)
		return e->rollups;

	/*
	 * (an invalidation while this reads: the next call reads again.)  In a
	 * snapshot taken now, not the statement's: ingest holds the stream's
	 * lock, which add_rollup_measures (and drop_rollup) hold until they
	 * commit, so that a call that waited for it, its statement begun
	 * before, writes the deltas of the measures it added
	 */
	with_options = ek_rollups_have_options();
	PushActiveSnapshot(GetLatestSnapshot());
	n = ek_stmt_run(with_options ? &of_stream_1_4 : &of_stream, args, NULL);
	PopActiveSnapshot();
	e = hash_search(stream_rollups, &stream_id, HASH_ENTER, &found);
	e->rollups = NIL;
	old = MemoryContextSwitchTo(stream_rollups_cxt);
	for (uint64 r = 0; r < n; r++)
	{
		StreamRollup *sr = palloc(sizeof(StreamRollup));
		bool		isnull;

		sr->rollup_id = DatumGetInt32(ek_spi_value(r, 1, &isnull));
		sr->relid = DatumGetObjectId(ek_spi_value(r, 2, &isnull));
		sr->delta = InvalidOid;
		sr->bucket = *DatumGetIntervalP(ek_spi_value(r, 3, &isnull));
		sr->dimensions = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(r, 4, &isnull)));
		sr->measures = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(r, 5, &isnull)));
		memset(&sr->opts, 0, sizeof(sr->opts));
		if (with_options)
			read_options(r, 6, &sr->opts);
		e->rollups = lappend(e->rollups, sr);
	}
	MemoryContextSwitchTo(old);
	return e->rollups;
}

/* The rollup tables of the rollups computed from the rollup table source. */
List *
ek_rollups_derived(Oid source)
{
	Datum		args[1] = {ObjectIdGetDatum(source)};
	uint64		n;
	List	   *relids = NIL;

	if (!ek_rollups_have_options())
		return NIL;
	if (rollups_derived_direct(source, &relids))
		return relids;
	n = ek_stmt_run(&derived_of, args, NULL);
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;

		relids = lappend_oid(relids, DatumGetObjectId(ek_spi_value(r, 1, &isnull)));
	}
	return relids;
}

/* A rollup's measures and realtime view, after add_rollup_measures. */
void
ek_rollups_set_measures(const RollupRow *row, Datum measures, Oid view)
{
	Datum		args[3] = {Int32GetDatum(row->rollup_id), measures, ObjectIdGetDatum(view)};

	ek_stmt_run(&set_measures, args, NULL);
	rollups_changed();
	/* a distributed stream's rollups are in the cluster-wide catalog */
	ek_cluster_stream_changed(row->stream_id, row->stream);
}

/* ---------------------------------------------------------------------
 * The generations of a distributed worker delta table (1.17; rollup/wdelta.c)
 * ---------------------------------------------------------------------
 */

static EkStatement wdelta_gens_read = {
	.sql = "SELECT wdelta_marked, wdelta_folded, wdelta_deleted, wdelta_folded_xid"
	" FROM eventkit.rollups WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

/* the same in the caller's snapshot (the realtime view's) */
static EkStatement wdelta_gens_view = {
	.sql = "SELECT wdelta_marked, wdelta_folded, wdelta_deleted, wdelta_folded_xid"
	" FROM eventkit.rollups WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW | EK_STMT_READ_ONLY
};

static EkStatement wdelta_gens_record = {
	.sql = "UPDATE eventkit.rollups SET wdelta_marked = $2, wdelta_folded = $3,"
	" wdelta_deleted = $4,"
	" wdelta_folded_xid = CASE WHEN $5 THEN pg_catalog.pg_current_xact_id()"
	"   ELSE wdelta_folded_xid END"
	" WHERE rollup_id OPERATOR(pg_catalog.=) $1",
	.nargs = 5,.argtypes = {INT4OID, INT8OID, INT8OID, INT8OID, BOOLOID},
	.expected = SPI_OK_UPDATE,.flags = EK_STMT_ONE_ROW
};

/* Has the catalog the generations of 1.17 (eventkit.rollups.wdelta_marked)? */
bool
ek_rollups_have_wdelta_gens(void)
{
	Oid			relid = ek_catalog_relid("rollups");

	return OidIsValid(relid) && get_attnum(relid, "wdelta_marked") != InvalidAttrNumber;
}

/*
 * A rollup's generations: in a new snapshot (a refresh, which holds the
 * row FOR UPDATE), or, in_view, in the caller's (the realtime view's
 * statement snapshot, the one its rollup table is read in).  Caller: SPI
 * connected.
 */
void
ek_rollups_wdelta_gens(int32 rollup_id, bool in_view, RollupWdeltaGens *gens)
{
	Datum		args[1] = {Int32GetDatum(rollup_id)};
	bool		isnull;
	Datum		v;

	if (!ek_rollups_have_wdelta_gens())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("eventkit's catalog is older than its library: eventkit.rollups has no wdelta_marked"),
				 errdetail("A worker delta table distributed with its stream needs the catalog of eventkit 1.17."),
				 errhint("Run ALTER EXTENSION eventkit UPDATE.")));
	(void) ek_stmt_run(in_view ? &wdelta_gens_view : &wdelta_gens_read, args, NULL);
	gens->marked = DatumGetInt64(ek_spi_value(0, 1, &isnull));
	gens->folded = DatumGetInt64(ek_spi_value(0, 2, &isnull));
	gens->deleted = DatumGetInt64(ek_spi_value(0, 3, &isnull));
	v = ek_spi_value(0, 4, &isnull);
	gens->has_folded_xid = !isnull;
	gens->folded_xid = isnull ? InvalidFullTransactionId : DatumGetFullTransactionId(v);
}

/*
 * Record a refresh's generations (in its transaction); folded_now: it moved
 * folded, whose transaction is then this one.
 */
void
ek_rollups_record_wdelta_gens(int32 rollup_id, const RollupWdeltaGens *gens, bool folded_now)
{
	Datum		args[5] = {Int32GetDatum(rollup_id), Int64GetDatum(gens->marked),
		Int64GetDatum(gens->folded), Int64GetDatum(gens->deleted), BoolGetDatum(folded_now)};

	(void) ek_stmt_run(&wdelta_gens_record, args, NULL);
}
