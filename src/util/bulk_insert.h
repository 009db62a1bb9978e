/*-------------------------------------------------------------------------
 *
 * bulk_insert.h
 *	  Appending rows with table_multi_insert (bulk_insert.c): the options
 *	  and the backend's bulk-write buffer ring, shared by the writer (stream
 *	  rows) and the dedup ledger (ledger rows); the index entries of the
 *	  rows written.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_BULK_INSERT_H
#define EK_UTIL_BULK_INSERT_H

#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "nodes/execnodes.h"

/*
 * Options for table_multi_insert of stream and ledger rows: append, never
 * look in the free space map.  Both tables are append-only; after VACUUM
 * the map lists every old page with a few hundred bytes free, and filling
 * those means reading cold pages and logging a full-page image for each,
 * a cost that grows with the table.  Space freed by deletes is left to
 * VACUUM FULL or to the retention that drops whole partitions.
 */
#define EK_APPEND_INSERT_OPTIONS TABLE_INSERT_SKIP_FSM

extern BulkInsertState ek_begin_bulk_insert(void);
extern BulkInsertState ek_bulk_insert_for(BulkInsertState bistate, Relation rel);
extern void ek_end_bulk_insert(BulkInsertState bistate);
/*
 * The values of the key columns of a relation's plain BRIN indexes (by
 * value only) for the rows of one table_multi_insert, taken while each
 * row's values are at hand (a virtual slot): after the insert a slot holds
 * the formed tuple, and reading a late column from it deforms every column
 * before it (about 800 instructions a stream row for batch_id).
 */
typedef struct EkBrinKeys
{
	int			natts;			/* columns kept per row (0: none) */
	AttrNumber	attnums[INDEX_MAX_KEYS];
	int			nrows;
	int			maxrows;
	Datum	   *values;			/* [row * natts + k] */
	bool	   *isnull;
} EkBrinKeys;

extern void ek_brin_keys_init(EkBrinKeys *keys, ResultRelInfo *rri, int maxrows);
extern void ek_brin_keys_add(EkBrinKeys *keys, TupleTableSlot *slot);
extern void ek_insert_index_entries(ResultRelInfo *rri, TupleTableSlot **slots, int n,
									EState *estate, const EkBrinKeys *keys);

#endif							/* EK_UTIL_BULK_INSERT_H */
