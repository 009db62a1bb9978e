/*-------------------------------------------------------------------------
 *
 * writer.c
 *	  Writing accepted events into a stream table.
 *
 *	  The fast path works as COPY FROM does: it routes each row to its leaf
 *	  partition with the executor's tuple routing (a run of rows whose times
 *	  fall within the bounds of the time partition the run's first row went
 *	  to goes to that leaf without routing again), checks the leaf's
 *	  constraints on the row's values, buffers the rows per leaf, and writes
 *	  each buffer with table_multi_insert() plus index insertion.  It runs as the caller, after ingest checked the
 *	  caller's INSERT privilege on the stream.  Heap leaves are filled through
 *	  a bulk-write buffer ring, as COPY does, kept for the backend's life: a
 *	  backend that ingests reuses the same few shared buffers for new pages
 *	  instead of sweeping (and first-touching) the whole buffer pool
 *	  (util/bulk_insert.c).  The writer says which path wrote the batch: the
 *	  ingest orchestrator then has the rows of a fast-path batch folded into
 *	  the deltas of the stream's rollups (rollup/delta.c), from the same
 *	  values.
 *
 *	  When the stream table uses something the fast path does not reproduce
 *	  (row-level security, triggers, extra columns with defaults or
 *	  generated values, a non-heap leaf), or is a Citus table (whose local
 *	  relation is a shell: util/citus.h), the batch goes through a prepared
 *	  INSERT ... SELECT over unnested arrays instead, which PostgreSQL (or
 *	  Citus, routing the rows to their shards) executes with all of those.
 *	  A stream hash-distributed on Citus takes the fast path into the shard
 *	  tables this node holds (the per-shard fast path, util/citus_shards.h),
 *	  the statement for the other nodes' shards (those their nodes' calls
 *	  did not write already: pipeline/dist_node.c writes another node's call's
 *	  rows into its node's shards with ek_write_shard_rows); when the
 *	  distributed table stores the values as given, the batch's rollup
 *	  deltas are folded from them as after the fast path, whichever nodes
 *	  the rows went to.
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
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "partitioning/partdesc.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "pipeline/columns.h"
#include "pipeline/partition.h"
#include "pipeline/writer.h"
#include "util/bulk_insert.h"
#include "util/citus.h"
#include "util/citus_shards.h"
#include "util/compat.h"
#include "util/owner.h"
#include "util/spi.h"

/* Cached INSERT plan for one stream table (the slow path). */
typedef struct StreamPlan
{
	Oid			relid;			/* hash key */
	char	   *qname;			/* the name the plan was prepared for */
	SPIPlanPtr	insert;
} StreamPlan;

static HTAB *stream_plans = NULL;

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
		Oid			argtypes[SC_NCOLUMNS];
		StringInfoData sql;
		int			nargs = 0;

		/* the columns' arrays, unnested together; the batch id last */
		initStringInfo(&sql);
		appendStringInfo(&sql, "INSERT INTO %s (", qname);
		for (int c = 0; c < SC_NCOLUMNS; c++)
			if (c != SC_BATCH_ID)
			{
				appendStringInfo(&sql, "%s, ", ek_stream_columns[c].name);
				argtypes[nargs++] = get_array_type(ek_stream_columns[c].type);
			}
		argtypes[nargs++] = INT8OID;
		appendStringInfo(&sql, "%s) SELECT x.*, $%d FROM ROWS FROM (",
						 ek_stream_columns[SC_BATCH_ID].name, nargs);
		for (int a = 1; a < nargs; a++)
			appendStringInfo(&sql, "%spg_catalog.unnest($%d)", a > 1 ? ", " : "", a);
		appendStringInfoString(&sql, ") AS x");
		sp->insert = NULL;
		sp->qname = MemoryContextStrdup(TopMemoryContext, qname);
		sp->insert = ek_keep_plan(sql.data, nargs, argtypes);
	}
	return sp->insert;
}

/* Insert the events with one prepared statement.  Caller: SPI connected. */
static void
write_with_spi(const StreamInfo *stream, SegmentEvent **events, int n,
			   int64 batch_id, TimestampTz received_at)
{
	Datum	   *cols[SC_NCOLUMNS];
	bool	   *nulls[SC_NCOLUMNS];
	Datum		args[SC_NCOLUMNS];
	int			nargs = 0;
	int			rc;

	ek_batch_values(events, n, batch_id, received_at, cols, nulls);
	for (int c = 0; c < SC_NCOLUMNS; c++)
		if (c != SC_BATCH_ID)
			args[nargs++] = ek_make_array(cols[c], nulls[c], n, ek_stream_columns[c].type);
	args[nargs++] = Int64GetDatum(batch_id);

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
	EkBrinKeys	brin;			/* the rows' BRIN keys (bulk_insert.c) */
} LeafBuffer;

static bool stores_values_as_given(Relation rel, AttrNumber *attnums);

/*
 * Can the stream table take the fast path?  Finds the attribute number of
 * each column ingest writes.
 */
static bool
fast_path_allowed(Relation rel, AttrNumber *attnums)
{
	if (rel->trigdesc != NULL)
		return false;
	return stores_values_as_given(rel, attnums);
}

/*
 * Does an INSERT of ingest's columns into rel store exactly the values
 * given (the table's other columns NULL)?  Not with row-level security, a
 * column of the user's that has a default or a generated value, or a
 * column of ingest's of another type; triggers are the caller's to check.
 * Finds the attribute number of each column ingest writes.
 */
static bool
stores_values_as_given(Relation rel, AttrNumber *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			matched = 0;

	if (rel->rd_rel->relrowsecurity)
		return false;
	for (int c = 0; c < SC_NCOLUMNS; c++)
		attnums[c] = InvalidAttrNumber;
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < SC_NCOLUMNS; c++)
			if (strcmp(NameStr(att->attname), ek_stream_columns[c].name) == 0)
				break;
		if (c == SC_NCOLUMNS)
		{
			/* a column of the user's: fine unless it needs a value computed */
			if (att->atthasdef || att->attgenerated)
				return false;
			continue;
		}
		if (att->atttypid != ek_stream_columns[c].type || att->atthasdef || att->attgenerated)
			return false;
		attnums[c] = att->attnum;
		matched++;
	}
	return matched == SC_NCOLUMNS;
}

/* Does the table have a trigger that an INSERT fires? */
static bool
has_insert_triggers(const TriggerDesc *trigdesc)
{
	return trigdesc->trig_insert_before_row || trigdesc->trig_insert_after_row ||
		trigdesc->trig_insert_instead_row || trigdesc->trig_insert_before_statement ||
		trigdesc->trig_insert_after_statement || trigdesc->trig_insert_new_table;
}

static bool
leaf_is_plain(ResultRelInfo *leaf)
{
	Relation	rel = leaf->ri_RelationDesc;

	return rel->rd_rel->relkind == RELKIND_RELATION && leaf->ri_TrigDesc == NULL &&
		!rel->rd_rel->relrowsecurity;
}

/*
 * Where the writer's rows come from: a batch's events (their values made
 * here, ek_event_values), or the rows[] of column arrays (cols[c][row]),
 * given by another node's call (pipeline/dist_node.c).
 */
typedef struct RowSource
{
	SegmentEvent **events;		/* or NULL: cols, nulls, rows */
	int64		batch_id;
	TimestampTz received_at;
	Datum	  **cols;
	bool	  **nulls;
	const int  *rows;
} RowSource;

/* The values of the source's i-th row, in column order. */
static pg_attribute_always_inline void
row_values(const RowSource *src, int i, Datum *values, bool *isnull)
{
	if (src->events != NULL)
	{
		ek_event_values(src->events[i], src->batch_id, src->received_at, values, isnull);
		return;
	}
	for (int c = 0; c < SC_NCOLUMNS; c++)
	{
		values[c] = src->cols[c][src->rows[i]];
		isnull[c] = src->nulls[c][src->rows[i]];
	}
}

/*
 * Route and insert n rows of src.  Returns false, having written nothing,
 * when a leaf needs the slow path.
 */
static bool
write_with_routing(Relation rel, const AttrNumber *attnums, const RowSource *src, int n)
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
	ResultRelInfo *run_leaf = NULL;
	TimestampTz run_lo = 0;
	TimestampTz run_hi = 0;

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
		Datum		values[SC_NCOLUMNS];
		bool		isnull[SC_NCOLUMNS];
		ResultRelInfo *leaf;
		TupleTableSlot *slot;
		LeafBuffer *buf = NULL;
		TimestampTz ts;

		ResetPerTupleExprContext(estate);
		row_values(src, i, values, isnull);
		ts = DatumGetTimestampTz(values[SC_TS]);
		ExecClearTuple(rootslot);
		memset(rootslot->tts_isnull, true, sizeof(bool) * desc->natts);
		for (int c = 0; c < SC_NCOLUMNS; c++)
		{
			rootslot->tts_values[attnums[c] - 1] = values[c];
			rootslot->tts_isnull[attnums[c] - 1] = isnull[c];
		}
		ExecStoreVirtualTuple(rootslot);

		/*
		 * A run of rows whose times fall within the bounds of the leaf the
		 * run's first row went to goes to that leaf: its time partition,
		 * when that is a table (not hash-partitioned by key) and the
		 * stream is not itself a partition (whose constraint
		 * ExecFindPartition checks for every row).
		 */
		if (run_leaf != NULL && run_lo <= ts && ts < run_hi)
			leaf = run_leaf;
		else
		{
			leaf = ExecFindPartition(mtstate, root, proute, rootslot, estate);
			run_leaf = NULL;
			if (!rel->rd_rel->relispartition &&
				ek_partition_range_of(rel, ts, &run_lo, &run_hi) ==
				RelationGetRelid(leaf->ri_RelationDesc))
				run_leaf = leaf;
		}
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
			{
				plain = false;
				break;
			}
			ek_brin_keys_init(&buf->brin, leaf, n);
		}

		/*
		 * The leaf's constraints are checked on the row's values while they
		 * are at hand (a virtual slot), not on the formed tuple, which each
		 * NOT NULL check would deform again.  Without a map the root's
		 * slot has the leaf's layout.
		 */
		slot = MakeTupleTableSlot(buf->desc, &TTSOpsHeapTuple);
		if (leaf->ri_RootToPartitionMap != NULL)
		{
			execute_attr_map_slot(leaf->ri_RootToPartitionMap->attrMap, rootslot, slot);
			if (leaf->ri_RelationDesc->rd_att->constr != NULL)
				ExecConstraints(leaf, slot, estate);
			ek_brin_keys_add(&buf->brin, slot);
		}
		else
		{
			if (leaf->ri_RelationDesc->rd_att->constr != NULL)
				ExecConstraints(leaf, rootslot, estate);
			ek_brin_keys_add(&buf->brin, rootslot);
			ExecCopySlot(slot, rootslot);
		}
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

			/* constraints checked above, row by row */
			table_multi_insert(leafrel, buf->slots, buf->nslots, cid,
							   EK_APPEND_INSERT_OPTIONS,
							   ek_bulk_insert_for(bistate, leafrel));
			if (leaf->ri_NumIndices > 0)
				ek_insert_index_entries(leaf, buf->slots, buf->nslots, estate, &buf->brin);
		}
		ek_end_bulk_insert(bistate);
	}

	ExecCleanupTupleRouting(mtstate, proute);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	return plain;
}

/*
 * The events of a distributed stream that go through Citus (other nodes'
 * shards, or what the fast path does not write), as the stream's owner:
 * Citus reaches co-located placements as one user per transaction, and
 * the call's claims in the co-located ledger and the partitions it made
 * went through Citus as that role (pipeline/dedup/dist_ledger.c,
 * pipeline/partition.c).  Ingest checked the caller's INSERT privilege;
 * the rows are the statement's parameters, and the owner's scope is
 * restricted with search_path pinned (util/owner.h), so the caller's
 * settings and objects do not reach the owner's code (defaults, checks).
 * Row-level security that applies to the caller would not apply to the
 * owner: such a call is refused instead.
 */
static void
write_through_citus(const StreamInfo *stream, SegmentEvent **events, int n,
					int64 batch_id, TimestampTz received_at)
{
	EkRoleScope as_owner;

	if (check_enable_rls(stream->relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot ingest into distributed stream \"%s\" as role \"%s\": row-level security applies",
						get_rel_name(stream->relid), GetUserNameFromId(GetUserId(), false)),
				 errdetail("%d events of this call go to shards on other nodes (or to a partition it made); eventkit writes those through Citus as the stream's owner, to whom the caller's row-level security policies do not apply.",
						   n),
				 errhint("Ingest as the stream's owner, or disable row-level security on the stream.")));
	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);
	write_with_spi(stream, events, n, batch_id, received_at);
	ek_as_role_end(&as_owner);
}

/*
 * Write n rows of src into the local shard relation shard_rel of a
 * distributed stream with the fast path, routed to the shard's partitions
 * as on one node.  nparts: how many partitions the stream has on the node
 * of the call (-1: not partitioned).  A partition made in this
 * transaction is distributed by Citus over its own connections, to this
 * node too: until the commit this session does not see the shard's new
 * partition, which Citus writes over the connection that made it.  So a
 * shard that has fewer partitions here than the stream is left alone, as
 * is one the fast path does not reproduce: returns false, having written
 * nothing, and the caller sends those rows through Citus.
 */
static bool
write_shard(Oid shard_rel, int nparts, const RowSource *src, int n)
{
	Relation	rel = table_open(shard_rel, RowExclusiveLock);
	AttrNumber	attnums[SC_NCOLUMNS];
	bool		done = false;

	if ((nparts < 0 || (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE &&
						RelationGetPartitionDesc(rel, true)->nparts == nparts)) &&
		fast_path_allowed(rel, attnums))
		done = write_with_routing(rel, attnums, src, n);
	table_close(rel, NoLock);
	return done;
}

/*
 * For another node's call on a distributed stream (pipeline/dist_node.c):
 * write rows[0..n-1] of the column arrays cols/nulls (every column of
 * ek_stream_columns, the batch id's too) into shard_rel, a shard relation
 * of the stream on this node, with the fast path.  Returns false, having
 * written nothing, where write_shard would send them through Citus (the
 * caller leaves them to the node of the call).  The caller checked the
 * role's INSERT privilege on the stream.
 */
bool
ek_write_shard_rows(Oid shard_rel, int nparts, Datum **cols, bool **nulls,
					const int *rows, int n)
{
	RowSource	src = {NULL, 0, 0, cols, nulls, rows};

	return n == 0 || write_shard(shard_rel, nparts, &src, n);
}

/*
 * A stream distributed on Citus: the events of the shards this node holds
 * written into the local shard relations with the fast path (routed to
 * the shard's partitions, as on one node), the others with one statement
 * through Citus.  The shards' placements are read under their metadata
 * locks (util/citus_shards.h; the ledger claim took them already).
 * Returns true when every row stored holds exactly the values of
 * ek_event_values(), whichever way it went: the distributed table (the
 * node's shell, whose definition its shards share) stores the values as
 * given and has no INSERT trigger (Citus's own TRUNCATE trigger is not
 * one), so that the batch's rollup deltas may be folded from the values
 * on this node, as after the single-node fast path.
 */
static bool
write_distributed(const StreamInfo *stream, SegmentEvent **events, int n,
				  int64 batch_id, TimestampTz received_at, const char **local_key)
{
	EkShardMap *map = ek_citus_shard_map(stream->relid, "user_key");
	int			nshards = map->nshards;
	int		   *shard = palloc(sizeof(int) * n);
	bool	   *used = palloc0(sizeof(bool) * Max(nshards, 1));
	bool	   *written = palloc0(sizeof(bool) * Max(nshards, 1));
	int		   *start = palloc0(sizeof(int) * (nshards + 1));
	int		   *next = palloc(sizeof(int) * Max(nshards, 1));
	SegmentEvent **rest = palloc(sizeof(SegmentEvent *) * n);
	SegmentEvent **by_shard = palloc(sizeof(SegmentEvent *) * n);
	int			nrest = 0;
	int32		local = ek_citus_local_group();
	Relation	shell;
	AttrNumber	shell_attnums[SC_NCOLUMNS];
	bool		exact;
	int			nparts = -1;

	shell = table_open(stream->relid, RowExclusiveLock);
	exact = stores_values_as_given(shell, shell_attnums) &&
		(shell->trigdesc == NULL || !has_insert_triggers(shell->trigdesc));
	if (shell->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		nparts = RelationGetPartitionDesc(shell, true)->nparts;
	table_close(shell, NoLock);

	for (int i = 0; i < n; i++)
	{
		const char *key = ek_event_user_key(events[i]);

		CHECK_FOR_INTERRUPTS();
		if (events[i]->stored)
		{
			/* written on its node by its claim (dist_ledger.c) */
			shard[i] = -1;
			continue;
		}
		shard[i] = key != NULL ? ek_citus_shard_index(map, key) : -1;
		if (shard[i] >= 0)
		{
			used[shard[i]] = true;
			start[shard[i] + 1]++;
		}
	}

	/*
	 * The events grouped by shard in one pass (a counting sort over the
	 * shard indexes, stable: a shard's events keep the batch's order):
	 * shard s's are by_shard[start[s] .. start[s + 1] - 1].
	 */
	for (int s = 0; s < nshards; s++)
	{
		start[s + 1] += start[s];
		next[s] = start[s];
	}
	for (int i = 0; i < n; i++)
		if (shard[i] >= 0)
			by_shard[next[shard[i]]++] = events[i];

	ek_citus_shards_place(map, used);
	for (int s = 0; s < nshards; s++)
	{
		Oid			shard_rel;
		RowSource	src = {by_shard + start[s], batch_id, received_at};

		if (!used[s] || map->groups[s] != local)
			continue;
		shard_rel = ek_citus_shard_relid(stream->relid, map->shardids[s]);
		if (OidIsValid(shard_rel) &&
			write_shard(shard_rel, nparts, &src, start[s + 1] - start[s]))
		{
			ek_citus_use_2pc();
			written[s] = true;
			if (*local_key == NULL)
			{
				SegmentEvent *ev = by_shard[start[s]];

				*local_key = ek_event_user_key(ev);
			}
		}
	}
	for (int i = 0; i < n; i++)
		if (!events[i]->stored && (shard[i] < 0 || !written[shard[i]]))
			rest[nrest++] = events[i];
	if (nrest > 0)
		write_through_citus(stream, rest, nrest, batch_id, received_at);
	return exact;
}

/*
 * Store the accepted events of a batch in the stream table, as the caller.
 * Returns true when the fast path wrote them, or (a distributed stream)
 * the per-shard write did into a table that stores the values as given:
 * the rows then hold exactly the values of ek_event_values() (the stream's
 * other columns NULL), and a rollup's deltas may be folded from those
 * values.  *local_key (a distributed stream): the user key of an event
 * written into a shard of this node, whose placement here holds until
 * this transaction ends (its metadata lock, which co-located shards
 * share), else NULL: a worker's rollup deltas go to the same node
 * (rollup/delta.c).  Caller: SPI connected (for the slow path).
 */
bool
ek_write_events(const StreamInfo *stream, SegmentEvent **events, int n,
				int64 batch_id, TimestampTz received_at, const char **local_key)
{
	Relation	rel;
	AttrNumber	attnums[SC_NCOLUMNS];
	bool		done = false;
	char		citus_kind;

	*local_key = NULL;
	if (n == 0)
		return false;

	/*
	 * A Citus table's relation here is a shell (its rows live in shards on
	 * the nodes): a hash-distributed stream's rows go to the shards (the
	 * local ones directly), any other Citus table's through the executor,
	 * which Citus routes.
	 */
	citus_kind = ek_citus_table_kind(stream->relid);
	if (citus_kind == EK_CITUS_HASH)
		return write_distributed(stream, events, n, batch_id, received_at, local_key);
	rel = table_open(stream->relid, RowExclusiveLock);
	if (citus_kind == EK_CITUS_NONE && fast_path_allowed(rel, attnums))
	{
		RowSource	src = {events, batch_id, received_at};

		done = write_with_routing(rel, attnums, &src, n);
	}
	table_close(rel, NoLock);
	if (!done)
		write_with_spi(stream, events, n, batch_id, received_at);
	return done;
}
