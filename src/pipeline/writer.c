/*-------------------------------------------------------------------------
 *
 * writer.c
 *	  Writing accepted events into a stream table.
 *
 *	  The fast path works as COPY FROM does: it routes each row to its leaf
 *	  partition with the executor's tuple routing, buffers the rows per leaf,
 *	  and writes each buffer with table_multi_insert() plus index insertion
 *	  and constraint checks.  It runs as the caller, after ingest checked the
 *	  caller's INSERT privilege on the stream.  Heap leaves are filled through
 *	  a bulk-write buffer ring, as COPY does, kept for the backend's life: a
 *	  backend that ingests reuses the same few shared buffers for new pages
 *	  instead of sweeping (and first-touching) the whole buffer pool.  After
 *	  a batch, the fast path hands its values to rollup_delta.c, which folds
 *	  them into the deltas of the stream's rollups.
 *
 *	  When the stream table uses something the fast path does not reproduce
 *	  (row-level security, triggers, extra columns with defaults or
 *	  generated values, a non-heap leaf), the batch goes through a prepared
 *	  INSERT ... SELECT over unnested arrays instead, which PostgreSQL
 *	  executes with all of those.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/hio.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/execPartition.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "eventkit.h"
#include "rollup/rollup.h"

#define STREAM_COLS 17

/*
 * The columns ingest writes, in the order of the values it builds; the
 * batch id, the same for every row, comes last.
 */
static const char *const stream_columns[STREAM_COLS] = {
	"message_id", "type", "event", "user_id", "anonymous_id", "user_key",
	"ts", "received_at", "sent_at", "original_timestamp", "properties",
	"traits", "context", "extra", "plan_version", "violations", "batch_id"
};

static const Oid stream_column_types[STREAM_COLS] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	JSONBOID, JSONBOID, JSONBOID, JSONBOID, INT4OID, JSONBOID, INT8OID
};

/* Cached INSERT plan for one stream table (the slow path). */
typedef struct StreamPlan
{
	Oid			relid;			/* hash key */
	char	   *qname;			/* the name the plan was prepared for */
	SPIPlanPtr	insert;
} StreamPlan;

static HTAB *stream_plans = NULL;

/*
 * The backend's bulk-write ring (BAS_BULKWRITE), shared by every call (and
 * by the ledger's inserts).  A strategy holds no pins or locks, so it
 * survives errors; each call wraps it in a BulkInsertState of its own, for
 * heap relations only, and releases the state's pin before switching to
 * another relation.
 */
static BufferAccessStrategy write_ring = NULL;

BulkInsertState
ek_begin_bulk_insert(void)
{
	BulkInsertState bistate;

	if (write_ring == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		write_ring = GetAccessStrategy(BAS_BULKWRITE);
		MemoryContextSwitchTo(old);
	}
	bistate = GetBulkInsertState();
	FreeAccessStrategy(bistate->strategy);
	bistate->strategy = write_ring;
	return bistate;
}

/*
 * What to pass table_multi_insert() for rel: bistate if rel is a heap (a
 * bulk-insert state is heap's notion), with its pin released first, since
 * the page it holds may belong to another relation; NULL otherwise.
 */
BulkInsertState
ek_bulk_insert_for(BulkInsertState bistate, Relation rel)
{
	if (rel->rd_tableam != GetHeapamTableAmRoutine())
		return NULL;
	ReleaseBulkInsertStatePin(bistate);
	return bistate;
}

void
ek_end_bulk_insert(BulkInsertState bistate)
{
	ReleaseBulkInsertStatePin(bistate);
	pfree(bistate);
}

/* The values of one event, in stream_columns order. */
static void
event_values(const SegmentEvent *ev, int64 batch_id, TimestampTz received_at,
			 Datum *values, bool *nulls)
{
	const char *user_key = ev->user_id ? ev->user_id : ev->anonymous_id;

	values[0] = EK_TEXT_OR_NULL(ev->message_id);
	values[1] = EK_TEXT_OR_NULL(ev->type);
	values[2] = EK_TEXT_OR_NULL(ev->event);
	values[3] = EK_TEXT_OR_NULL(ev->user_id);
	values[4] = EK_TEXT_OR_NULL(ev->anonymous_id);
	values[5] = EK_TEXT_OR_NULL(user_key);
	values[6] = TimestampTzGetDatum(ev->ts);
	values[7] = TimestampTzGetDatum(received_at);
	values[8] = TimestampTzGetDatum(ev->sent_at);
	values[9] = TimestampTzGetDatum(ev->original_timestamp);
	values[10] = EK_JSONB_OR_NULL(ev->properties);
	values[11] = EK_JSONB_OR_NULL(ev->traits);
	values[12] = EK_JSONB_OR_NULL(ev->context);
	values[13] = EK_JSONB_OR_NULL(ev->extra);
	values[14] = Int32GetDatum(ev->plan_version);
	values[15] = EK_JSONB_OR_NULL(ev->violations);
	values[16] = Int64GetDatum(batch_id);

	nulls[0] = ev->message_id == NULL;
	nulls[1] = ev->type == NULL;
	nulls[2] = ev->event == NULL;
	nulls[3] = ev->user_id == NULL;
	nulls[4] = ev->anonymous_id == NULL;
	nulls[5] = user_key == NULL;
	nulls[6] = false;
	nulls[7] = false;
	nulls[8] = !ev->has_sent_at;
	nulls[9] = !ev->has_original_timestamp;
	nulls[10] = ev->properties == NULL;
	nulls[11] = ev->traits == NULL;
	nulls[12] = ev->context == NULL;
	nulls[13] = ev->extra == NULL;
	nulls[14] = ev->plan_version == 0;
	nulls[15] = ev->violations == NULL;
	nulls[16] = false;
}

/* The values of the events, column by column (cols[c][i]: event i's). */
static void
column_values(SegmentEvent **events, int n, int64 batch_id, TimestampTz received_at,
			  Datum **cols, bool **nulls)
{
	for (int c = 0; c < STREAM_COLS; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		Datum		values[STREAM_COLS];
		bool		isnull[STREAM_COLS];

		event_values(events[i], batch_id, received_at, values, isnull);
		for (int c = 0; c < STREAM_COLS; c++)
		{
			cols[c][i] = values[c];
			nulls[c][i] = isnull[c];
		}
	}
}

/* ---------------------------------------------------------------------
 * Slow path: INSERT ... SELECT FROM ROWS FROM (unnest(...), ...)
 * ---------------------------------------------------------------------
 */

static SPIPlanPtr
stream_insert_plan(Oid relid)
{
	StreamPlan *sp;
	bool		found;
	char	   *qname = ek_qualified_relname(relid);

	if (stream_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(StreamPlan);
		stream_plans = hash_create("eventkit stream plans", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS);
	}
	sp = hash_search(stream_plans, &relid, HASH_ENTER, &found);
	if (found && strcmp(sp->qname, qname) != 0)
	{
		SPI_freeplan(sp->insert);
		pfree(sp->qname);
		found = false;
	}
	if (!found)
	{
		Oid			argtypes[STREAM_COLS];
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfo(&sql, "INSERT INTO %s (", qname);
		for (int c = 0; c < STREAM_COLS; c++)
			appendStringInfo(&sql, "%s%s", c ? ", " : "", stream_columns[c]);
		appendStringInfo(&sql, ") SELECT x.*, $%d FROM ROWS FROM (", STREAM_COLS);
		for (int c = 0; c < STREAM_COLS - 1; c++)
			appendStringInfo(&sql, "%spg_catalog.unnest($%d)", c ? ", " : "", c + 1);
		appendStringInfoString(&sql, ") AS x");

		for (int c = 0; c < STREAM_COLS - 1; c++)
			argtypes[c] = get_array_type(stream_column_types[c]);
		argtypes[STREAM_COLS - 1] = INT8OID;
		sp->insert = NULL;
		sp->qname = MemoryContextStrdup(TopMemoryContext, qname);
		sp->insert = ek_keep_plan(sql.data, STREAM_COLS, argtypes);
	}
	return sp->insert;
}

/* Insert the events with one prepared statement.  Caller: SPI connected. */
static void
write_with_spi(const StreamInfo *stream, SegmentEvent **events, int n,
			   int64 batch_id, TimestampTz received_at)
{
	Datum	   *cols[STREAM_COLS];
	bool	   *nulls[STREAM_COLS];
	Datum		args[STREAM_COLS];
	int			rc;

	column_values(events, n, batch_id, received_at, cols, nulls);
	for (int c = 0; c < STREAM_COLS - 1; c++)
		args[c] = ek_make_array(cols[c], nulls[c], n, stream_column_types[c]);
	args[STREAM_COLS - 1] = Int64GetDatum(batch_id);

	rc = SPI_execute_plan(stream_insert_plan(stream->relid), args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: insert into stream failed: %s", SPI_result_code_string(rc));
}

/* ---------------------------------------------------------------------
 * Fast path: tuple routing and table_multi_insert, as COPY FROM does
 * ---------------------------------------------------------------------
 */

/* Rows routed to one leaf partition. */
typedef struct LeafBuffer
{
	ResultRelInfo *leaf;
	TupleDesc	desc;			/* unpinned copy: slots need no resource owner */
	TupleTableSlot **slots;
	int			nslots;
} LeafBuffer;

/*
 * Can the stream table take the fast path?  Finds the attribute number of
 * each column ingest writes.
 */
static bool
fast_path_allowed(Relation rel, AttrNumber *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			matched = 0;

	if (rel->rd_rel->relrowsecurity || rel->trigdesc != NULL)
		return false;
	for (int c = 0; c < STREAM_COLS; c++)
		attnums[c] = InvalidAttrNumber;
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < STREAM_COLS; c++)
			if (strcmp(NameStr(att->attname), stream_columns[c]) == 0)
				break;
		if (c == STREAM_COLS)
		{
			/* a column of the user's: fine unless it needs a value computed */
			if (att->atthasdef || att->attgenerated)
				return false;
			continue;
		}
		if (att->atttypid != stream_column_types[c] || att->atthasdef || att->attgenerated)
			return false;
		attnums[c] = att->attnum;
		matched++;
	}
	return matched == STREAM_COLS;
}

static bool
leaf_is_plain(ResultRelInfo *leaf)
{
	Relation	rel = leaf->ri_RelationDesc;

	return rel->rd_rel->relkind == RELKIND_RELATION && leaf->ri_TrigDesc == NULL &&
		!rel->rd_rel->relrowsecurity;
}

/*
 * Route and insert.  Returns false, having written nothing, when a leaf
 * needs the slow path.
 */
static bool
write_with_routing(Relation rel, const AttrNumber *attnums, SegmentEvent **events,
				   int n, int64 batch_id, TimestampTz received_at)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *root = makeNode(ResultRelInfo);
	ModifyTableState *mtstate = makeNode(ModifyTableState);
	PartitionTupleRouting *proute;
	TupleTableSlot *rootslot;
	TupleDesc	desc = RelationGetDescr(rel);
	LeafBuffer *buffers = palloc0(sizeof(LeafBuffer) * n);
	int			nbuffers = 0;
	bool		plain = true;
	CommandId	cid = GetCurrentCommandId(true);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	InitResultRelInfo(root, rel, 1, NULL, 0);
	mtstate->ps.plan = NULL;
	mtstate->ps.state = estate;
	mtstate->operation = CMD_INSERT;
	mtstate->mt_nrels = 1;
	mtstate->resultRelInfo = root;
	mtstate->rootResultRelInfo = root;
	proute = ExecSetupPartitionTupleRouting(estate, rel);
	rootslot = table_slot_create(rel, &estate->es_tupleTable);

	for (int i = 0; i < n && plain; i++)
	{
		Datum		values[STREAM_COLS];
		bool		isnull[STREAM_COLS];
		ResultRelInfo *leaf;
		TupleTableSlot *slot;
		LeafBuffer *buf = NULL;

		ResetPerTupleExprContext(estate);
		event_values(events[i], batch_id, received_at, values, isnull);
		ExecClearTuple(rootslot);
		memset(rootslot->tts_isnull, true, sizeof(bool) * desc->natts);
		for (int c = 0; c < STREAM_COLS; c++)
		{
			rootslot->tts_values[attnums[c] - 1] = values[c];
			rootslot->tts_isnull[attnums[c] - 1] = isnull[c];
		}
		ExecStoreVirtualTuple(rootslot);

		leaf = ExecFindPartition(mtstate, root, proute, rootslot, estate);
		for (int b = nbuffers - 1; b >= 0; b--)
			if (buffers[b].leaf == leaf)
			{
				buf = &buffers[b];
				break;
			}
		if (buf == NULL)
		{
			buf = &buffers[nbuffers++];
			buf->leaf = leaf;
			buf->desc = CreateTupleDescCopy(RelationGetDescr(leaf->ri_RelationDesc));
			buf->slots = palloc(sizeof(TupleTableSlot *) * n);
			buf->nslots = 0;
			if (!leaf_is_plain(leaf))
				plain = false;
		}

		slot = MakeTupleTableSlot(buf->desc, &TTSOpsHeapTuple);
		if (leaf->ri_RootToPartitionMap != NULL)
			execute_attr_map_slot(leaf->ri_RootToPartitionMap->attrMap, rootslot, slot);
		else
			ExecCopySlot(slot, rootslot);
		buf->slots[buf->nslots++] = slot;
	}

	if (plain)
	{
		BulkInsertState bistate = ek_begin_bulk_insert();

		for (int b = 0; b < nbuffers; b++)
		{
			LeafBuffer *buf = &buffers[b];
			ResultRelInfo *leaf = buf->leaf;
			Relation	leafrel = leaf->ri_RelationDesc;

			if (leafrel->rd_att->constr != NULL)
				for (int s = 0; s < buf->nslots; s++)
					ExecConstraints(leaf, buf->slots[s], estate);
			table_multi_insert(leafrel, buf->slots, buf->nslots, cid,
							   EK_APPEND_INSERT_OPTIONS,
							   ek_bulk_insert_for(bistate, leafrel));
			if (leaf->ri_NumIndices > 0)
				for (int s = 0; s < buf->nslots; s++)
#if PG_VERSION_NUM >= 160000
					list_free(ExecInsertIndexTuples(leaf, buf->slots[s], estate,
													false, false, NULL, NIL, false));
#else
					list_free(ExecInsertIndexTuples(leaf, buf->slots[s], estate,
													false, false, NULL, NIL));
#endif
		}
		ek_end_bulk_insert(bistate);
	}

	ExecCleanupTupleRouting(mtstate, proute);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	return plain;
}

/*
 * The fast path wrote the batch: write its rollup deltas (rollup_delta.c)
 * from the same values, made only if the stream has a rollup to fold them.
 */
typedef struct BatchColumns
{
	SegmentEvent **events;
	int			n;
	int64		batch_id;
	TimestampTz received_at;
} BatchColumns;

static void
batch_columns(void *arg, Datum **cols, bool **nulls)
{
	BatchColumns *b = (BatchColumns *) arg;

	column_values(b->events, b->n, b->batch_id, b->received_at, cols, nulls);
}

static void
write_rollup_deltas(const StreamInfo *stream, Relation rel, SegmentEvent **events,
					int n, int64 batch_id, TimestampTz received_at)
{
	BatchColumns b = {events, n, batch_id, received_at};

	ek_rollup_write_deltas(rel, stream->stream_id, stream_columns, stream_column_types,
						   STREAM_COLS, batch_columns, &b, n, batch_id);
}

/*
 * Store the accepted events of a batch in the stream table, as the caller.
 * Caller: SPI connected (for the slow path).
 */
void
ek_write_events(const StreamInfo *stream, SegmentEvent **events, int n,
				int64 batch_id, TimestampTz received_at)
{
	Relation	rel;
	AttrNumber	attnums[STREAM_COLS];
	bool		done = false;

	if (n == 0)
		return;
	rel = table_open(stream->relid, RowExclusiveLock);
	if (fast_path_allowed(rel, attnums))
		done = write_with_routing(rel, attnums, events, n, batch_id, received_at);
	if (done)
		write_rollup_deltas(stream, rel, events, n, batch_id, received_at);
	table_close(rel, NoLock);
	if (!done)
		write_with_spi(stream, events, n, batch_id, received_at);
}
