/*-------------------------------------------------------------------------
 *
 * dedup.c
 *	  The dedup ledger: exact, transactional "have we stored this messageId"
 *	  for a stream.
 *
 *	  Each stream has a ledger eventkit_internal.ledger_<stream_id>,
 *	  list-partitioned into generations ledger_<stream_id>_g<gen>, each with a
 *	  unique index on message_key, the 128-bit key of the message id
 *	  (ledger_key.c).  Ingest claims ids in the current
 *	  generation, so two sessions claiming the same id serialize on the
 *	  unique index (the second waits for the first to commit or abort) and a
 *	  rolled-back ingest leaves no row behind.  Ids are claimed in one global
 *	  order (bytewise by key), so two batches that share ids in different orders
 *	  cannot deadlock.
 *
 *	  Maintenance starts new generations and drops old ones (ledger.c).
 *	  Ingest never rotates; when a claim sees the current generation over
 *	  eventkit.ledger_generation_rows it says so, and the ingest
 *	  orchestrator wakes the ledger job.
 *
 *	  A batch probes each sealed generation only for the ids that
 *	  generation's filter (ledger_filter.c) cannot rule out (a sealed
 *	  generation without a filter is probed for all of them), then inserts
 *	  the rest into the current generation straight away, never waiting:
 *	  the unique index's check reports the ids a row there already holds,
 *	  and only those are looked up.  An id whose row is still in flight
 *	  (another batch's claim, not yet committed) is left pending: the
 *	  caller writes the batch's new events first and then settles the
 *	  pending ids (ek_dedup_settle), waiting for each holder's transaction
 *	  to end, so that the wait overlaps the write instead of serializing
 *	  the batches.  A holder that committed makes the id a duplicate (or a
 *	  conflict); one that aborted leaves the id to be claimed again, and
 *	  the caller writes those events too.
 *
 *	  No deadlock between batches: the index entries of a batch's claims
 *	  are inserted under the ledger's claim lock (claim_lock), so the claim
 *	  sections of two batches never interleave: whoever claims first holds
 *	  every id the two share, and a batch only ever waits for batches that
 *	  claimed before it, which never wait for it.  (Only a second claim,
 *	  of ids whose holder aborted, may find an id held by a later batch;
 *	  should that later batch also wait for it, PostgreSQL's deadlock
 *	  detector ends one of the two.  That needs an aborted batch and two
 *	  more sharing its ids; it is not the normal path.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "catalog/index.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "catalog/generations.h"
#include "ledger.h"
#include "ledger_filter.h"
#include "ledger_key.h"
#include "pipeline/dedup/dedup.h"
#include "util/bulk_insert.h"
#include "util/citus.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

/* ledger key -> position in the batch, for this batch's lookups */
typedef struct IdEntry
{
	pg_uuid_t	key;			/* ek_ledger_key of the message id */
	const char *id;
	int			first;			/* index of its first occurrence */
	uint32		hash;
	char		status;			/* used by simplehash */
	char		verdict;		/* 0 undecided, 's' stored, 'n' new */
} IdEntry;

/* keys are hashes already: a slice of the second lane serves simplehash */
static inline uint32
key_hash32(const pg_uuid_t *k)
{
	uint32		h;

	memcpy(&h, k->data + 8, sizeof(h));
	return h;
}

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE pg_uuid_t
#define SH_KEY key
#define SH_HASH_KEY(tb, key) key_hash32(&(key))
#define SH_EQUAL(tb, a, b) (memcmp((a).data, (b).data, UUID_LEN) == 0)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) (a)->hash
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

/* What this backend remembers of one stream's ledger between batches. */
typedef struct LedgerPlans
{
	int32		stream_id;		/* hash key */
	int32		min_sealed;		/* oldest sealed generation last seen */
	TimestampTz last_size_check;	/* of the current generation, by ingest */
} LedgerPlans;

/*
 * A batch's ids held by claims in flight when it claimed (ek_dedup_claim),
 * settled after the batch's new events are written (ek_dedup_settle).
 */
struct DedupPending
{
	Oid			ledger_relid;
	Oid			gen_relid;		/* the current generation (kept current by
								 * our lock on the ledger) */
	int32		gen;
	SegmentEvent **events;
	int			nevents;
	int		   *repeat_of;
	int64	   *kept;
	IdEntry   **ids;			/* the pending ids, in claim order */
	int			n;
};

/* Ingest looks at the current generation's size at most this often. */
#define SIZE_CHECK_INTERVAL_MS 1000

static HTAB *ledger_plans = NULL;

/* A generation's table, which must exist. */
static Oid
current_generation_relid(int32 stream_id, int32 gen)
{
	Oid			relid = ek_ledger_generation_relid(stream_id, gen);

	if (!OidIsValid(relid))
		elog(ERROR, "eventkit: ledger generation %d of stream %d is missing", gen, stream_id);
	return relid;
}

static LedgerPlans *
get_plans(int32 stream_id)
{
	LedgerPlans *p;
	bool		found;

	if (ledger_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(LedgerPlans);
		ledger_plans = hash_create("eventkit ledger plans", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS);
	}
	p = hash_search(ledger_plans, &stream_id, HASH_ENTER, &found);
	if (!found)
	{
		p->min_sealed = 0;
		p->last_size_check = 0;
	}
	return p;
}

/*
 * The claim lock of a stream's ledger (an object lock on the ledger's
 * pg_class row, which nothing else takes): held only while a batch inserts
 * its claims' index entries, never while waiting for another transaction,
 * so the claim sections of batches are totally ordered (see the file's
 * header).  Taken with LockAcquire rather than LockDatabaseObject, which
 * would also accept invalidation messages with the generation open.
 */
static void
claim_locktag(LOCKTAG *tag, Oid ledger_relid)
{
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, RelationRelationId, ledger_relid, 1);
}

/* The 64-bit hash of an event's user key, kept for forget_user. */
static int64
user_key_hash(const SegmentEvent *ev)
{
	const char *k = ek_event_user_key(ev);

	return k ? (int64) ek_id_hash64(k, strlen(k)) : 0;
}

/*
 * Look ids up in a generation with direct scans of its unique index (snap:
 * the latest snapshot, taken after the ledger lock), in the order given
 * (bytewise by key, for the current generation, so that neighbouring keys share
 * index pages).  A claim of the current generation still in flight is not
 * seen here; claiming that id later waits for it.  Sealed generations
 * never change.  Returns how many were found.
 */
static int
probe_generation(Oid relid, Snapshot snap, IdEntry **cands, int n,
				 SegmentEvent **events, DedupVerdict *verdicts, int64 *kept)
{
	int			found = 0;
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	Relation	idx;
	TupleTableSlot *slot;
	IndexScanDesc scan;

	if (list_length(indexes) != 1)
		elog(ERROR, "eventkit: ledger generation \"%s\" must have exactly one index",
			 RelationGetRelationName(rel));
	ek_ledger_check_layout(rel);
	idx = index_open(linitial_oid(indexes), AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snap, 1, 0);
	for (int i = 0; i < n; i++)
	{
		IdEntry    *e = cands[i];
		ScanKeyData key;

		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
					UUIDPGetDatum(&e->key));
		key.sk_collation = idx->rd_indcollation[0];
		index_rescan(scan, &key, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			int64		fp = DatumGetInt64(slot_getattr(slot, 3, &isnull));

			e->verdict = 's';
			kept[e->first] = fp;
			verdicts[e->first] = events[e->first]->fingerprint == fp ?
				DEDUP_DUPLICATE : DEDUP_CONFLICT;
			found++;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return found;
}

/*
 * Drop the decided ids from open (and their hashes, if given), keeping the
 * order; returns how many are left.
 */
static int
keep_undecided(IdEntry **open, uint64 *hashes, int nopen)
{
	int			n = 0;

	for (int i = 0; i < nopen; i++)
	{
		if (open[i]->verdict != 0)
			continue;
		if (hashes != NULL)
			hashes[n] = hashes[i];
		open[n++] = open[i];
	}
	return n;
}

/*
 * Order candidates bytewise by ledger key (uuid's order): every session
 * claims ids in the same order, so overlapping batches wait for each
 * other instead of deadlocking.  Bytewise order is the order of the two
 * halves read as big-endian integers; the sort is specialized for it
 * (lib/sort_template.h: the comparison inline, not through qsort's
 * function pointer and memcmp).
 */
static inline uint64
key_half(const pg_uuid_t *k, int half)
{
	uint64		w;

	memcpy(&w, k->data + 8 * half, sizeof(w));
	return pg_ntoh64(w);
}

static inline int
compare_ids(IdEntry *const *a, IdEntry *const *b)
{
	uint64		x = key_half(&(*a)->key, 0);
	uint64		y = key_half(&(*b)->key, 0);

	if (x == y)
	{
		x = key_half(&(*a)->key, 1);
		y = key_half(&(*b)->key, 1);
	}
	return x < y ? -1 : x > y ? 1 : 0;
}

typedef IdEntry *IdEntryPtr;	/* one token, for the template's declarations */

#define ST_SORT sort_ids
#define ST_ELEMENT_TYPE IdEntryPtr
#define ST_COMPARE(a, b) compare_ids(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Claim cands (sorted) in the current generation: insert their ledger rows
 * with table_multi_insert, and their index entries with
 * UNIQUE_CHECK_PARTIAL, which neither waits nor raises an error: it
 * reports an id that some row, committed or in flight, already holds.
 * Those rows of ours are deleted again (their index entries then point
 * at rows dead once we commit, as after any DELETE) and the ids are left
 * in held[], in order, for the caller to settle.  Returns how many.
 * One descent of the index per id, where probing first and inserting
 * after would take two.  The index entries and those deletions are made
 * under the ledger's claim lock (see the file's header); it never waits
 * for another transaction, so it cannot take part in a deadlock.
 */
static int
insert_generation_rows(Oid ledger_relid, Oid gen_relid, int32 gen, IdEntry **cands, int n,
					   SegmentEvent **events, IdEntry **held)
{
	LOCKTAG		claim_tag;
	Relation	rel = table_open(gen_relid, RowExclusiveLock);
	List	   *indexes = RelationGetIndexList(rel);
	Relation	idx;
	IndexInfo  *ii;
	TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * n);
	CommandId	cid = GetCurrentCommandId(true);
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));	/* unpinned */
	Datum	   *keys = palloc(sizeof(Datum) * n);
	ItemPointerData *dead = palloc(sizeof(ItemPointerData) * n);
	int			nheld = 0;
	BulkInsertState bistate;

	if (list_length(indexes) != 1)
		elog(ERROR, "eventkit: ledger generation \"%s\" must have exactly one index",
			 RelationGetRelationName(rel));
	ek_ledger_check_layout(rel);
	idx = index_open(linitial_oid(indexes), RowExclusiveLock);
	ii = BuildIndexInfo(idx);

	/*
	 * (message_key, gen, fingerprint, user_key_hash), as checked above; a
	 * generation of a ledger converted by the 1.5 update has a dropped
	 * column after them, left null
	 */
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = events[cands[i]->first];
		TupleTableSlot *slot = MakeTupleTableSlot(desc, &TTSOpsHeapTuple);

		ExecClearTuple(slot);
		keys[i] = UUIDPGetDatum(&cands[i]->key);
		memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
		slot->tts_values[0] = keys[i];
		slot->tts_values[1] = Int32GetDatum(gen);
		slot->tts_values[2] = Int64GetDatum(ev->fingerprint);
		slot->tts_values[3] = Int64GetDatum(user_key_hash(ev));
		memset(slot->tts_isnull, false, sizeof(bool) * 4);
		ExecStoreVirtualTuple(slot);
		slots[i] = slot;
	}
	/* the bulk-write ring, like the stream's rows */
	bistate = ek_begin_bulk_insert();
	table_multi_insert(rel, slots, n, cid, EK_APPEND_INSERT_OPTIONS,
					   ek_bulk_insert_for(bistate, rel));
	ek_end_bulk_insert(bistate);

	/* the claim section: index entries only, under the claim lock */
	claim_locktag(&claim_tag, ledger_relid);
	(void) LockAcquire(&claim_tag, ExclusiveLock, false, false);
	for (int i = 0; i < n; i++)
	{
		bool		isnull = false;

		if (!index_insert(idx, &keys[i], &isnull, &slots[i]->tts_tid,
						  rel, UNIQUE_CHECK_PARTIAL, false, ii))
		{
			dead[nheld] = slots[i]->tts_tid;
			held[nheld++] = cands[i];
		}
	}
	if (nheld > 0)
	{
		/*
		 * Our rows must be visible to us before we can delete them.  Still
		 * under the claim lock: a reader (wait_for_holders, under the lock
		 * in share mode) never sees such a row before it is deleted, when
		 * it would look like a live claim of ours.
		 */
		CommandCounterIncrement();
		for (int i = 0; i < nheld; i++)
			simple_heap_delete(rel, &dead[i]);
		CommandCounterIncrement();
	}
	LockRelease(&claim_tag, ExclusiveLock, false);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return nheld;
}

/*
 * Claim open[] (sorted, undecided) in the current generation without
 * waiting for anybody (insert_generation_rows), then look up the ids a row
 * there already holds, with the latest snapshot: a committed row decides
 * the id (duplicate or conflict).  The claimed ids are new.  Those held by
 * a row not committed (a claim still in flight, or one that has just
 * ended) are left undecided, with the verdict DEDUP_PENDING, at the front
 * of open[] in order; returns how many.
 */
static int
claim_current(Oid ledger_relid, Oid gen_relid, int32 gen, IdEntry **open, int nopen,
			  SegmentEvent **events, DedupVerdict *verdicts, int64 *kept)
{
	IdEntry   **held = palloc(sizeof(IdEntry *) * nopen);
	int			nheld;
	int			nleft = 0;

	nheld = insert_generation_rows(ledger_relid, gen_relid, gen, open, nopen, events, held);
	for (int i = 0; i < nopen; i++)
		open[i]->verdict = 'n';
	for (int i = 0; i < nheld; i++)
		held[i]->verdict = 0;
	if (nheld > 0)
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

		(void) probe_generation(gen_relid, snap, held, nheld, events, verdicts, kept);
		UnregisterSnapshot(snap);
	}
	for (int i = 0; i < nopen; i++)
	{
		IdEntry    *e = open[i];

		if (e->verdict == 'n')
		{
			kept[e->first] = events[e->first]->fingerprint;
			verdicts[e->first] = DEDUP_NEW;
		}
		else if (e->verdict == 0)
		{
			verdicts[e->first] = DEDUP_PENDING;
			open[nleft++] = e;
		}
	}
	pfree(held);
	return nleft;
}

/*
 * Whether the row in slot (just returned by a dirty scan, in flight) was
 * inserted and deleted by the same transaction: another batch's claim row
 * for an id it found held (insert_generation_rows), which can never
 * become live.  The dirty snapshot shows such a row as "in insertion".
 */
static bool
deleted_by_inserter(TupleTableSlot *slot)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
	HeapTupleHeader t;
	bool		result;

	LockBuffer(bslot->buffer, BUFFER_LOCK_SHARE);
	t = bslot->base.tuple->t_data;
	result = !(t->t_infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI)) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) &&
		TransactionIdEquals(HeapTupleHeaderGetRawXmax(t), HeapTupleHeaderGetRawXmin(t));
	LockBuffer(bslot->buffer, BUFFER_LOCK_UNLOCK);
	return result;
}

/*
 * Wait for the transactions holding the pending ids open[] (in order), and
 * decide those whose holder committed.  An id's rows are read with a dirty
 * snapshot, which also sees rows in flight and says whose they are (as
 * the unique index's own check does); after each wait the id is read
 * again.  A committed row decides the id; else a claim row in flight is
 * waited for: that is the holder, which claimed before us.  Rows that
 * other batches inserted and deleted again (they found the id held too:
 * they may be later batches, waiting for us) are waited for only when
 * nothing else holds the id, which takes an aborted holder.  Ids left
 * undecided have no row any more (their holder aborted, or a deletion
 * committed): the caller claims them.  Waits only; holds no claim lock.
 */
static void
wait_for_holders(Oid ledger_relid, Oid gen_relid, IdEntry **open, int nopen,
				 SegmentEvent **events, DedupVerdict *verdicts, int64 *kept)
{
	LOCKTAG		claim_tag;
	Relation	rel = table_open(gen_relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	Relation	idx;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	SnapshotData dirty;

	if (list_length(indexes) != 1)
		elog(ERROR, "eventkit: ledger generation \"%s\" must have exactly one index",
			 RelationGetRelationName(rel));
	idx = index_open(linitial_oid(indexes), AccessShareLock);
	slot = table_slot_create(rel, NULL);
	InitDirtySnapshot(dirty);
	scan = index_beginscan(rel, idx, &dirty, 1, 0);
	claim_locktag(&claim_tag, ledger_relid);
	for (int i = 0; i < nopen; i++)
	{
		IdEntry    *e = open[i];

		for (;;)
		{
			ScanKeyData key;
			TransactionId xwait = InvalidTransactionId;
			TransactionId xdead = InvalidTransactionId;
			ItemPointerData tid;
			ItemPointerData dead_tid;
			bool		stored = false;
			int64		fp = 0;

			CHECK_FOR_INTERRUPTS();
			ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
						UUIDPGetDatum(&e->key));
			key.sk_collation = idx->rd_indcollation[0];
			/* no claim section half done meanwhile (released before waiting) */
			(void) LockAcquire(&claim_tag, ShareLock, false, false);
			index_rescan(scan, &key, 1, NULL, 0);
			while (!stored && index_getnext_slot(scan, ForwardScanDirection, slot))
			{
				bool		isnull;
				TransactionId x;

				/* set by the visibility check of the row just returned */
				x = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
				if (!TransactionIdIsValid(x))
				{
					stored = true;
					fp = DatumGetInt64(slot_getattr(slot, 3, &isnull));
				}
				else if (TransactionIdIsValid(xwait))
					continue;
				else if (TransactionIdIsValid(dirty.xmin) && deleted_by_inserter(slot))
				{
					if (!TransactionIdIsValid(xdead))
					{
						xdead = x;
						dead_tid = slot->tts_tid;
					}
				}
				else
				{
					xwait = x;
					tid = slot->tts_tid;
				}
			}
			LockRelease(&claim_tag, ShareLock, false);
			if (!stored && !TransactionIdIsValid(xwait) && TransactionIdIsValid(xdead))
			{
				xwait = xdead;
				tid = dead_tid;
			}
			if (!stored && TransactionIdIsValid(xwait))
			{
				/* the holder (or a deleter) is in flight: wait, then look again */
				XactLockTableWait(xwait, rel, &tid, XLTW_InsertIndexUnique);
				continue;
			}
			if (stored)
			{
				e->verdict = 's';
				kept[e->first] = fp;
				verdicts[e->first] = events[e->first]->fingerprint == fp ?
					DEDUP_DUPLICATE : DEDUP_CONFLICT;
			}
			break;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
}

/*
 * In-batch repeats: compared with the copy that is kept; pending while
 * their first occurrence is.
 */
static void
settle_repeats(SegmentEvent **events, int nevents, const int *repeat_of,
			   const int64 *kept, DedupVerdict *verdicts)
{
	for (int i = 0; i < nevents; i++)
	{
		if (repeat_of[i] >= 0)
		{
			int			first = repeat_of[i];

			if (verdicts[first] == DEDUP_PENDING)
				verdicts[i] = DEDUP_PENDING;
			else
				verdicts[i] = events[i]->fingerprint == kept[first] ?
					DEDUP_DUPLICATE : DEDUP_CONFLICT;
		}
	}
}

/*
 * The first occurrences of a batch's ids (firsts[]) claimed in the
 * co-located ledger of a stream distributed on Citus (dist_ledger.c), as
 * the ledger's owner, the stream's; with write_remote, each other node's
 * new events are written there with their claims (rows of batch_id and
 * received_at), and set stored.
 */
static void
claim_distributed(const StreamInfo *stream, idmap_hash *ids, SegmentEvent **events,
				  const pg_uuid_t *keys, const int *firsts, int nfirst, int64 batch_id,
				  TimestampTz received_at, bool write_remote, DedupVerdict *verdicts,
				  int64 *kept)
{
	char	  **cid = palloc(sizeof(char *) * nfirst);
	int64	   *cfp = palloc(sizeof(int64) * nfirst);
	char	  **ckey = palloc(sizeof(char *) * nfirst);
	SegmentEvent **cev = palloc(sizeof(SegmentEvent *) * nfirst);
	bool	   *claimed = palloc(sizeof(bool) * nfirst);
	int64	   *stored = palloc(sizeof(int64) * nfirst);

	for (int i = 0; i < nfirst; i++)
	{
		SegmentEvent *ev = events[firsts[i]];

		cev[i] = ev;
		cid[i] = ev->message_id;
		cfp[i] = ev->fingerprint;
		ckey[i] = ev->user_id ? ev->user_id : ev->anonymous_id;	/* ek_event_user_key()'s rule; the ledger takes char * */
	}
	ek_dist_ledger_claim(stream->stream_id, stream->relid, cev, cid, cfp, ckey, nfirst,
						 batch_id, received_at, write_remote, claimed, stored);
	for (int i = 0; i < nfirst; i++)
	{
		int			f = firsts[i];
		IdEntry    *e = idmap_lookup(ids, keys[f]);

		e->verdict = claimed[i] ? 'n' : 's';
		kept[f] = claimed[i] ? events[f]->fingerprint : stored[i];
		verdicts[f] = claimed[i] ? DEDUP_NEW :
			events[f]->fingerprint == stored[i] ? DEDUP_DUPLICATE : DEDUP_CONFLICT;
	}
}

/*
 * Decide, for each event, whether it is new, a duplicate or a conflict,
 * and claim the new ones in the ledger, without waiting for other
 * transactions.  An event whose id a claim still in flight holds gets
 * DEDUP_PENDING, and *pending is set: the caller writes the new events,
 * then calls ek_dedup_settle(*pending, verdicts); else *pending is NULL.
 * Returns true when the current generation holds more than
 * eventkit.ledger_generation_rows ids: the caller then asks the ledger job
 * to rotate (ingest never does).  Runs as the extension owner, who owns
 * the ledger; the caller is connected to SPI.  What *pending refers to is
 * allocated in the caller's memory context.  A stream distributed on
 * Citus: with write_remote, the new events of other nodes' shards are
 * written on their nodes with their claims, as rows of batch_id and
 * received_at (one call per node, dist_ledger.c), and set stored; the
 * caller writes the others.
 */
bool
ek_dedup_claim(const StreamInfo *stream, SegmentEvent **events, int nevents,
			   int64 batch_id, TimestampTz received_at, bool write_remote,
			   DedupVerdict *verdicts, DedupPending **pending)
{
	idmap_hash *ids;
	int64	   *kept = palloc(sizeof(int64) * nevents);
	pg_uuid_t  *keys = palloc(sizeof(pg_uuid_t) * nevents);
	int		   *firsts = palloc(sizeof(int) * nevents);
	int		   *repeat_of = palloc(sizeof(int) * nevents);
	int			nfirst = 0;
	LedgerPlans *plans;
	LedgerState state;
	int32		gen;
	Oid			cur_relid;
	Oid			ledger_relid;
	int32	   *sealed;
	int64	   *filter_bytes;
	int			nsealed;
	bool		nudge = false;
	EkRoleScope as_owner;
	IdEntry   **entries;		/* the batch's distinct ids, in claim order */
	IdEntry   **open;			/* the undecided ones */
	int			nopen;

	*pending = NULL;
	if (nevents == 0)
		return false;

	/* in-batch repeats are settled against their first occurrence */
	ids = idmap_create(CurrentMemoryContext, nevents * 2, NULL);
	for (int i = 0; i < nevents; i++)
	{
		bool		found;
		IdEntry    *e;

		ek_ledger_key(events[i]->message_id, strlen(events[i]->message_id), &keys[i]);
		e = idmap_insert(ids, keys[i], &found);
		if (!found)
		{
			e->id = events[i]->message_id;
			e->first = i;
			e->verdict = 0;
			firsts[nfirst++] = i;
			verdicts[i] = DEDUP_NEW;
			repeat_of[i] = -1;
		}
		else
			repeat_of[i] = e->first;	/* resolved below */
	}

	/* a stream distributed on Citus: its co-located ledger, through Citus */
	if (ek_citus_table_kind(stream->relid) == EK_CITUS_HASH)
	{
		claim_distributed(stream, ids, events, keys, firsts, nfirst, batch_id, received_at,
						  write_remote, verdicts, kept);
		settle_repeats(events, nevents, repeat_of, kept, verdicts);
		return false;
	}

	/*
	 * Lock the ledger before reading the current generation: a rotation
	 * holds ACCESS EXCLUSIVE until it commits, so once we have the lock, the
	 * latest snapshot shows the generation every concurrent ingest uses.
	 */
	ek_as_owner_begin(&as_owner);
	ledger_relid = ek_ledger_relid(stream->stream_id, false);
	LockRelationOid(ledger_relid, RowExclusiveLock);
	plans = get_plans(stream->stream_id);
	ek_generations_read_state(stream->stream_id, &state);
	gen = state.current;
	sealed = state.sealed;
	filter_bytes = state.filter_bytes;
	nsealed = state.nsealed;

	/* generations dropped since the last batch: forget their filters */
	if (nsealed > 0 && sealed[nsealed - 1] != plans->min_sealed)
	{
		ek_ledger_filter_forget(stream->stream_id, sealed[nsealed - 1]);
		plans->min_sealed = sealed[nsealed - 1];
	}

	/* first occurrences in claim order (bytewise by key) */
	entries = palloc(sizeof(IdEntry *) * nfirst);
	for (int i = 0; i < nfirst; i++)
		entries[i] = idmap_lookup(ids, keys[firsts[i]]);
	sort_ids(entries, nfirst);
	open = palloc(sizeof(IdEntry *) * nfirst);
	memcpy(open, entries, sizeof(IdEntry *) * nfirst);
	nopen = nfirst;

	/* the sealed generations, newest first: only the ids their filters let through */
	if (nsealed > 0)
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		uint64	   *hashes = NULL;
		IdEntry   **cands = palloc(sizeof(IdEntry *) * nfirst);
		int		   *hits = palloc(sizeof(int) * nfirst);

		for (int g = 0; g < nsealed && nopen > 0; g++)
		{
			Oid			relid = current_generation_relid(stream->stream_id, sealed[g]);
			const LedgerFilter *filter = NULL;
			int			ncand = 0;

			if (ek_ledger_filter_cache_size > 0)
				filter = ek_ledger_filter_get(stream->stream_id, sealed[g], relid,
											  filter_bytes[g]);
			if (filter != NULL)
			{
				int			nhits;

				if (hashes == NULL)
				{
					hashes = palloc(sizeof(uint64) * nfirst);
					for (int i = 0; i < nopen; i++)
						hashes[i] = ek_ledger_key_hash64(&open[i]->key);
				}
				nhits = ek_ledger_filter_select(filter, hashes, nopen, hits);
				for (int i = 0; i < nhits; i++)
					cands[ncand++] = open[hits[i]];
			}
			else
			{
				memcpy(cands, open, sizeof(IdEntry *) * nopen);
				ncand = nopen;
			}
			if (ncand > 0 &&
				probe_generation(relid, snap, cands, ncand, events, verdicts, kept) > 0)
				nopen = keep_undecided(open, hashes, nopen);
		}
		UnregisterSnapshot(snap);
	}

	/* claim the rest in the current generation; what is in flight waits */
	cur_relid = current_generation_relid(stream->stream_id, gen);
	if (nopen > 0)
		nopen = claim_current(ledger_relid, cur_relid, gen, open, nopen,
							  events, verdicts, kept);
	if (nopen > 0)
	{
		DedupPending *p = palloc(sizeof(DedupPending));

		p->ledger_relid = ledger_relid;
		p->gen_relid = cur_relid;
		p->gen = gen;
		p->events = events;
		p->nevents = nevents;
		p->repeat_of = repeat_of;
		p->kept = kept;
		p->ids = open;
		p->n = nopen;
		*pending = p;
	}

	/* over the size limit: ask the ledger job to rotate (ingest never does) */
	if (TimestampDifferenceExceeds(plans->last_size_check, GetCurrentTimestamp(),
								   SIZE_CHECK_INTERVAL_MS))
	{
		plans->last_size_check = GetCurrentTimestamp();
		nudge = ek_ledger_estimate_rows(cur_relid) > (double) ek_ledger_generation_rows;
	}

	for (int i = 0; i < nfirst; i++)
	{
		IdEntry    *e = entries[i];

		if (e->verdict == 0 && verdicts[e->first] != DEDUP_PENDING)
			elog(ERROR, "eventkit: message id \"%s\" was neither claimed nor found in the ledger",
				 e->id);
	}

	settle_repeats(events, nevents, repeat_of, kept, verdicts);
	ek_as_role_end(&as_owner);
	return nudge;
}

/*
 * Settle the ids ek_dedup_claim left pending: wait for the transactions
 * that held them, in the ids' order; an id whose holder committed is a
 * duplicate or a conflict, one whose holder aborted is claimed now
 * (without waiting, as before; what is held again is waited for in turn).
 * Each DEDUP_PENDING verdict becomes DEDUP_NEW (claimed now: the caller
 * writes those events), DEDUP_DUPLICATE or DEDUP_CONFLICT.  Called after
 * the batch's new events are written, so that the waits overlap that
 * work.  Runs as the extension owner; the caller is connected to SPI.
 */
void
ek_dedup_settle(DedupPending *p, DedupVerdict *verdicts)
{
	IdEntry   **open = p->ids;
	int			nopen = p->n;
	EkRoleScope as_owner;

	ek_as_owner_begin(&as_owner);
	while (nopen > 0)
	{
		wait_for_holders(p->ledger_relid, p->gen_relid, open, nopen, p->events, verdicts,
						 p->kept);
		nopen = keep_undecided(open, NULL, nopen);
		if (nopen > 0)
			nopen = claim_current(p->ledger_relid, p->gen_relid, p->gen, open, nopen,
								  p->events, verdicts, p->kept);
	}
	for (int i = 0; i < p->n; i++)
	{
		IdEntry    *e = p->ids[i];

		if (verdicts[e->first] == DEDUP_PENDING)
			elog(ERROR, "eventkit: message id \"%s\" was neither claimed nor found in the ledger",
				 e->id);
	}
	settle_repeats(p->events, p->nevents, p->repeat_of, p->kept, verdicts);
	ek_as_role_end(&as_owner);
}

/* ---------------------------------------------------------------------
 * The ledger's life: made and dropped with its stream, maintained by the
 * ledger job
 * ---------------------------------------------------------------------
 */

/* Create a stream's ledger.  Caller: SPI connected. */
void
ek_dedup_create_ledger(int32 stream_id)
{
	ek_ledger_create(stream_id);
}

/*
 * Create the co-located ledger of a stream about to be distributed on
 * Citus, holding the ids of its ledger; returns its quoted name, for the
 * caller to distribute it.  Caller: SPI connected, as the extension owner.
 */
char *
ek_dedup_create_dist_ledger(int32 stream_id, Oid stream_relid)
{
	ek_dist_ledger_create(stream_id, stream_relid);
	return ek_dist_ledger_qname(stream_id);
}

/*
 * The node function of a distributed stream's ledger (after the ledger is
 * distributed; dist_ledger.c).
 */
void
ek_dedup_create_dist_node_function(int32 stream_id)
{
	ek_dist_ledger_create_node_function(stream_id, ek_dist_ledger_qname(stream_id));
}

/* The distributed ledger of a stream, or InvalidOid */
Oid
ek_dedup_dist_ledger_relid(int32 stream_id)
{
	return ek_dist_ledger_relid(stream_id);
}

/*
 * On the node of another node's call: claim ids in this node's shards of
 * a distributed ledger (dist_ledger.c, ek_dist_ledger_claim_here).
 */
bool
ek_dedup_claim_here(Oid ledger_relid, char **ids, int64 *fps, char **keys, int n,
					int64 token, bool *claimed, int64 *stored_fp)
{
	return ek_dist_ledger_claim_here(ledger_relid, ids, fps, keys, n, token, claimed,
									 stored_fp);
}

/*
 * A call on a distributed stream: its ledger exists and belongs to the
 * stream's owner (the one role the call reaches Citus as), else an error
 * that says how to mend it.
 */
void
ek_dedup_check_dist_ledger(const StreamInfo *stream)
{
	ek_dist_ledger_check_owner(stream->stream_id, stream->relid);
}

/*
 * A call on a stream that is not distributed: no distributed ledger may
 * hold its ids (a Citus coordinator's dump restored here), else an error
 * that says how to mend it.
 */
void
ek_dedup_check_local_ledger(const StreamInfo *stream)
{
	ek_dist_ledger_check_absent(stream->stream_id, stream->relid);
}

/*
 * undistribute_stream: the ids of the stream's distributed ledger go into
 * its single-node ledger, then the distributed ledger is dropped; returns
 * how many ids, -1 when it has no distributed ledger.  Caller: SPI
 * connected, the stream (not a Citus table) locked against ingest.
 */
int64
ek_dedup_undistribute_ledger(const StreamInfo *stream)
{
	return ek_dist_ledger_undistribute(stream->stream_id);
}

/*
 * The stream changed owner (ALTER TABLE ... OWNER TO, on the Citus
 * coordinator): its distributed ledger, if any, follows.  Caller: SPI
 * connected.
 */
void
ek_dedup_follow_owner(const StreamInfo *stream)
{
	ek_dist_ledger_follow_owner(stream->stream_id, stream->relid);
}

/*
 * Drop a stream's ledger, and forget this backend's plans and filters of
 * it.  Caller: SPI connected.
 */
void
ek_dedup_drop_ledger(int32 stream_id)
{
	/*
	 * Also when the distributed ledger is gone already (DROP OWNED BY the
	 * stream's owner dropped it with the stream): the stream's row in the
	 * cluster-wide catalog goes with it
	 */
	ek_dist_ledger_drop(stream_id);
	ek_ledger_drop(stream_id);
	if (ledger_plans != NULL)
		(void) hash_search(ledger_plans, &stream_id, HASH_REMOVE, NULL);
	ek_ledger_filter_forget(stream_id, 0);
}

/*
 * The ledger job's work: the filters of generations sealed earlier, then
 * a new generation if the current one is due, then dropping the expired
 * ones; for a stream distributed on Citus, deleting its distributed
 * ledger's expired ids and, on the coordinator, making its node function
 * if it has none (a stream distributed before 1.13).  Returns filters
 * built, generations started or dropped, ids deleted and node functions
 * made.
 * Caller: SPI connected, as any role that may maintain the stream.
 */
int64
ek_dedup_maintain(StreamInfo *stream)
{
	int64		n;

	/* first: Citus distributes no function after the prune's parallel DELETE */
	n = ek_dist_ledger_ensure_node_function(stream->stream_id);
	n += ek_build_ledger_filters(stream);
	n += ek_ledger_rotate(stream) ? 1 : 0;
	n += ek_ledger_prune(stream);
	n += ek_dist_ledger_prune(stream->stream_id, &stream->dedup_window);
	return n;
}

/* Build the filters of the stream's sealed generations that have none. */
int
ek_dedup_build_filters(const StreamInfo *stream)
{
	return ek_build_ledger_filters(stream);
}

/*
 * forget_user: delete the stream's ledger entries of the user keys in
 * keys (text[]), in its single-node ledger and, for a stream distributed
 * on Citus, in its distributed ledger (before 1.15 the latter kept them);
 * returns how many.  Caller: SPI connected.
 */
int64
ek_dedup_forget_keys(int32 stream_id, Datum keys)
{
	return ek_ledger_forget_keys(stream_id, keys) + ek_dist_ledger_forget_keys(stream_id, keys);
}
