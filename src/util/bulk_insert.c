/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *	  The backend's bulk-write buffer ring (BAS_BULKWRITE), as COPY uses
 *	  one, kept for the backend's life and shared by every insert of stream
 *	  and ledger rows: a backend that ingests reuses the same few shared
 *	  buffers for new pages instead of sweeping (and first-touching) the
 *	  whole buffer pool.  A strategy holds no pins or locks, so it survives
 *	  errors; each call wraps it in a BulkInsertState of its own, for heap
 *	  relations only, and releases the state's pin before switching to
 *	  another relation.
 *
 *	  Also the index entries of the rows one table_multi_insert wrote
 *	  (ek_insert_index_entries): the executor's, but a BRIN index without
 *	  expressions or predicate gets one entry per block range and value
 *	  instead of one per row (why that is exact: at the function).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/brin.h"
#include "access/genam.h"
#include "access/hio.h"
#include "catalog/pg_am_d.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "util/compat.h"

#include "util/bulk_insert.h"

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

/*
 * A BRIN index whose entries ek_insert_index_entries makes itself: keys
 * that are plain columns, no predicate.
 */
static bool
is_plain_brin(Relation index, IndexInfo *info)
{
	if (index->rd_rel->relam != BRIN_AM_OID || info->ii_Predicate != NIL ||
		info->ii_Expressions != NIL)
		return false;
	for (int k = 0; k < info->ii_NumIndexAttrs; k++)
		if (info->ii_IndexAttrNumbers[k] <= 0)
			return false;
	return true;
}

/*
 * Which columns' values ek_brin_keys_add keeps for rri's rows: the key
 * columns of its plain BRIN indexes whose type is passed by value (the
 * others are read from the formed tuples).  rri's indexes are open.
 */
void
ek_brin_keys_init(EkBrinKeys *keys, ResultRelInfo *rri, int maxrows)
{
	TupleDesc	desc = RelationGetDescr(rri->ri_RelationDesc);

	keys->natts = 0;
	keys->nrows = 0;
	keys->maxrows = maxrows;
	keys->values = NULL;
	keys->isnull = NULL;
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];

		if (!is_plain_brin(rri->ri_IndexRelationDescs[i], info))
			continue;
		for (int k = 0; k < info->ii_NumIndexAttrs; k++)
		{
			AttrNumber	attnum = info->ii_IndexAttrNumbers[k];
			bool		kept = false;

			if (!TupleDescAttr(desc, attnum - 1)->attbyval)
				continue;
			for (int j = 0; j < keys->natts; j++)
				kept |= keys->attnums[j] == attnum;
			if (!kept && keys->natts < INDEX_MAX_KEYS)
				keys->attnums[keys->natts++] = attnum;
		}
	}
	if (keys->natts > 0)
	{
		keys->values = palloc(sizeof(Datum) * keys->natts * maxrows);
		keys->isnull = palloc(sizeof(bool) * keys->natts * maxrows);
	}
}

/*
 * Keep the next row's values of the kept columns: slot is that row, in
 * the relation's layout, its values at hand (a virtual slot, before
 * table_multi_insert forms its tuple).
 */
void
ek_brin_keys_add(EkBrinKeys *keys, TupleTableSlot *slot)
{
	int			base = keys->nrows * keys->natts;

	if (keys->natts == 0)
		return;
	Assert(keys->nrows < keys->maxrows);
	for (int j = 0; j < keys->natts; j++)
		keys->values[base + j] = slot_getattr(slot, keys->attnums[j], &keys->isnull[base + j]);
	keys->nrows++;
}

/* Where ek_brin_keys_add kept attnum's values, or -1. */
static int
brin_key_position(const EkBrinKeys *keys, AttrNumber attnum)
{
	if (keys != NULL)
		for (int j = 0; j < keys->natts; j++)
			if (keys->attnums[j] == attnum)
				return j;
	return -1;
}

/*
 * The index entries of n rows that table_multi_insert just wrote into
 * rri's relation (its indexes open; constraints checked by the caller).
 *
 * Every index gets the executor's entries (ExecInsertIndexTuples), except
 * a plain BRIN index: its entry for a row only widens the summary of the
 * row's block range to take in the row's values, so a row whose range
 * and values (binary equal) are those of the row before it adds nothing
 * and is skipped.  The rows of a batch share their batch_id and fill
 * consecutive pages, so the stream's BRIN on batch_id (rollups) gets one
 * entry per range a batch touches instead of one per row, each of which
 * read the range map anew (PostgreSQL 15 keeps no state between
 * brininsert calls).  Exact under concurrent summarization as well: every
 * row is in the heap before the first entry, so a summarization that
 * starts later reads it, and one under way has a placeholder that the
 * first entry of the range and value widens.
 */
void
ek_insert_index_entries(ResultRelInfo *rri, TupleTableSlot **slots, int n,
						EState *estate, const EkBrinKeys *keys)
{
	int			nindexes = rri->ri_NumIndices;
	RelationPtr descs = rri->ri_IndexRelationDescs;
	IndexInfo **infos = rri->ri_IndexRelationInfo;
	TupleDesc	heapdesc = RelationGetDescr(rri->ri_RelationDesc);
	bool	   *brin = palloc(sizeof(bool) * nindexes);
	RelationPtr others = palloc(sizeof(Relation) * nindexes);
	IndexInfo **other_infos = palloc(sizeof(IndexInfo *) * nindexes);
	int			nothers = 0;

	for (int i = 0; i < nindexes; i++)
	{
		brin[i] = is_plain_brin(descs[i], infos[i]);
		if (!brin[i])
		{
			others[nothers] = descs[i];
			other_infos[nothers++] = infos[i];
		}
	}

	/* the other indexes, through the executor, with rri showing only them */
	if (nothers == nindexes)
	{
		for (int s = 0; s < n; s++)
			list_free(ek_insert_index_tuples(rri, slots[s], estate));
	}
	else if (nothers > 0)
	{
		rri->ri_NumIndices = nothers;
		rri->ri_IndexRelationDescs = others;
		rri->ri_IndexRelationInfo = other_infos;
		PG_TRY();
		{
			for (int s = 0; s < n; s++)
				list_free(ek_insert_index_tuples(rri, slots[s], estate));
		}
		PG_FINALLY();
		{
			rri->ri_NumIndices = nindexes;
			rri->ri_IndexRelationDescs = descs;
			rri->ri_IndexRelationInfo = infos;
		}
		PG_END_TRY();
	}

	for (int i = 0; i < nindexes; i++)
	{
		Relation	index = descs[i];
		IndexInfo  *info = infos[i];
		int			nkeys = info->ii_NumIndexAttrs;
		BlockNumber pages;
		BlockNumber last_range = InvalidBlockNumber;
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];
		Datum		last_values[INDEX_MAX_KEYS];
		bool		last_isnull[INDEX_MAX_KEYS];
		int			kept[INDEX_MAX_KEYS];

		if (!brin[i])
			continue;
		pages = BrinGetPagesPerRange(index);	/* a BRIN index's option only */
		Assert(keys == NULL || keys->natts == 0 || keys->nrows == n);
		for (int k = 0; k < nkeys; k++)
			kept[k] = brin_key_position(keys, info->ii_IndexAttrNumbers[k]);
		for (int s = 0; s < n; s++)
		{
			TupleTableSlot *slot = slots[s];
			BlockNumber range = ItemPointerGetBlockNumber(&slot->tts_tid) / pages;
			bool		same = (range == last_range);

			for (int k = 0; k < nkeys; k++)
			{
				AttrNumber	attnum = info->ii_IndexAttrNumbers[k];
				Form_pg_attribute att = TupleDescAttr(heapdesc, attnum - 1);

				if (kept[k] >= 0)
				{
					values[k] = keys->values[s * keys->natts + kept[k]];
					isnull[k] = keys->isnull[s * keys->natts + kept[k]];
				}
				else
					values[k] = slot_getattr(slot, attnum, &isnull[k]);
				if (same && (isnull[k] != last_isnull[k] ||
							 (!isnull[k] && !datumIsEqual(values[k], last_values[k],
														  att->attbyval, att->attlen))))
					same = false;
			}
			if (same)
				continue;
			index_insert(index, values, isnull, &slot->tts_tid, rri->ri_RelationDesc,
						 UNIQUE_CHECK_NO, false, info);
			last_range = range;
			memcpy(last_values, values, sizeof(Datum) * nkeys);
			memcpy(last_isnull, isnull, sizeof(bool) * nkeys);
		}
	}
	pfree(brin);
	pfree(others);
	pfree(other_infos);
}
