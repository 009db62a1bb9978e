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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/hio.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

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
