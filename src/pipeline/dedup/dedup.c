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
 *	  the rest into the current generation straight away: the unique
 *	  index's check reports the ids a row there already holds, and only
 *	  those are looked up.  If such a row is still in flight, the batch's
 *	  direct claims are rolled back and its undecided ids are claimed in
 *	  order with INSERT ... ON CONFLICT, which waits for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
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
#include "storage/lmgr.h"
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

/* Prepared statements for one stream's current generation. */
typedef struct LedgerPlans
{
	int32		stream_id;		/* hash key */
	int32		gen;
	SPIPlanPtr	claim;			/* insert into the current generation */
	SPIPlanPtr	lookup;			/* ids in the current generation */
	int32		min_sealed;		/* oldest sealed generation last seen */
	TimestampTz last_size_check;	/* of the current generation, by ingest */
} LedgerPlans;

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
		p->gen = 0;
		p->claim = NULL;
		p->lookup = NULL;
		p->min_sealed = 0;
		p->last_size_check = 0;
	}
	return p;
}

static void
prepare_generation_plans(LedgerPlans *p, int32 stream_id, int32 gen)
{
	Oid			claim_types[3] = {UUIDARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Oid			lookup_types[1] = {UUIDARRAYOID};
	char	   *qgen = ek_ledger_generation_qname(stream_id, gen);

	if (p->claim)
		SPI_freeplan(p->claim);
	if (p->lookup)
		SPI_freeplan(p->lookup);
	p->claim = NULL;
	p->lookup = NULL;
	p->claim = ek_keep_plan(psprintf("INSERT INTO %s AS l"
									 " (message_key, gen, fingerprint, user_key_hash)"
									 " SELECT x.k, %d, x.f, x.u"
									 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
									 " pg_catalog.unnest($3)) AS x(k, f, u)"
									 " ORDER BY x.k"
									 " ON CONFLICT (message_key) DO NOTHING"
									 " RETURNING l.message_key",
									 qgen, gen),
							3, claim_types);
	p->lookup = ek_keep_plan(psprintf("SELECT message_key, fingerprint FROM %s"
									   " WHERE message_key OPERATOR(pg_catalog.=) ANY ($1)",
									   qgen),
							  1, lookup_types);
	p->gen = gen;
}

/* The 64-bit hash of an event's user key, kept for forget_user. */
static int64
user_key_hash(const SegmentEvent *ev)
{
	const char *k = ev->user_id ? ev->user_id : ev->anonymous_id;

	return k ? (int64) ek_id_hash64(k, strlen(k)) : 0;
}

/*
 * Record verdicts for the rows of a (message_key, fingerprint) result:
 * each names an id already stored.
 */
static void
apply_stored(idmap_hash *ids, SegmentEvent **events, DedupVerdict *verdicts,
			 int64 *kept)
{
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		pg_uuid_t  *key = DatumGetUUIDP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		int64		fp = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		IdEntry    *e = idmap_lookup(ids, *key);

		if (e == NULL || e->verdict != 0)
			continue;
		e->verdict = 's';
		kept[e->first] = fp;
		verdicts[e->first] = events[e->first]->fingerprint == fp ?
			DEDUP_DUPLICATE : DEDUP_CONFLICT;
	}
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
 * other instead of deadlocking.
 */
static int
compare_ids(const void *a, const void *b)
{
	return memcmp((*(IdEntry *const *) a)->key.data, (*(IdEntry *const *) b)->key.data,
				  UUID_LEN);
}

/*
 * Claim cands (sorted) in the current generation: insert their ledger rows
 * with table_multi_insert, and their index entries with
 * UNIQUE_CHECK_PARTIAL, which neither waits nor raises an error: it
 * reports an id that some row, committed or in flight, already holds.
 * Those rows of ours are deleted again (their index entries then point
 * at rows dead once we commit, as after any DELETE) and the ids are left
 * in held[], in order, for the caller to settle.  Returns how many.
 * One descent of the index per id, where probing first and inserting
 * after would take two.  It never waits, so it cannot take part in a
 * deadlock; see claim_directly for what happens when it cannot decide.
 */
static int
insert_generation_rows(Oid gen_relid, int32 gen, IdEntry **cands, int n,
					   SegmentEvent **events, IdEntry **held)
{
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
		/* our rows must be visible to us before we can delete them */
		CommandCounterIncrement();
		for (int i = 0; i < nheld; i++)
			simple_heap_delete(rel, &dead[i]);
		CommandCounterIncrement();
	}
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return nheld;
}

/*
 * Claim cands (sorted) with INSERT ... ON CONFLICT DO NOTHING; those not
 * inserted were claimed by another session meanwhile and are looked up.
 */
static void
claim_with_upsert(LedgerPlans *plans, idmap_hash *ids, SegmentEvent **events,
				  IdEntry **cands, int n, DedupVerdict *verdicts, int64 *kept)
{
	Datum	   *ckey = palloc(sizeof(Datum) * n);
	Datum	   *cfp = palloc(sizeof(Datum) * n);
	Datum	   *cuser = palloc(sizeof(Datum) * n);
	Datum		args[3];
	int			rc;
	bool		isnull;

	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = events[cands[i]->first];

		ckey[i] = UUIDPGetDatum(&cands[i]->key);
		cfp[i] = Int64GetDatum(ev->fingerprint);
		cuser[i] = Int64GetDatum(user_key_hash(ev));
	}
	args[0] = ek_make_array(ckey, NULL, n, UUIDOID);
	args[1] = ek_make_array(cfp, NULL, n, INT8OID);
	args[2] = ek_make_array(cuser, NULL, n, INT8OID);
	rc = SPI_execute_plan(plans->claim, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "eventkit: ledger claim failed: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		pg_uuid_t  *key = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));
		IdEntry    *e = idmap_lookup(ids, *key);

		if (e != NULL)
		{
			e->verdict = 'n';
			kept[e->first] = events[e->first]->fingerprint;
		}
	}
	if (SPI_processed < (uint64) n)
	{
		/* args[0] still holds the keys */
		rc = SPI_execute_snapshot(plans->lookup, args, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, false, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: ledger lookup failed: %s", SPI_result_code_string(rc));
		apply_stored(ids, events, verdicts, kept);
	}
}

/*
 * The common case: claim the undecided ids (sorted) in the current
 * generation without waiting for anybody (insert_generation_rows), then
 * look up the ids a row there already holds.  If one of them is held by
 * a claim that has not committed (still in flight, or just rolled back),
 * deciding it means waiting for that transaction, and waiting while we
 * hold claims out of order could deadlock with it: so the whole attempt
 * is rolled back (a subtransaction) and the caller claims in order with
 * INSERT ... ON CONFLICT instead.  Ids found committed keep their
 * verdicts either way.  Not used once the transaction has many
 * subtransactions, so that a loop of ingest calls in one transaction
 * cannot overflow the subtransaction cache.
 */
typedef struct DirectClaim
{
	Oid			gen_relid;
	int32		gen;
	IdEntry   **cands;
	int			n;
	SegmentEvent **events;
	DedupVerdict *verdicts;
	int64	   *kept;
} DirectClaim;

static void
claim_directly_cb(void *arg)
{
	DirectClaim *c = (DirectClaim *) arg;
	IdEntry   **held = palloc(sizeof(IdEntry *) * c->n);
	int			nheld;

	nheld = insert_generation_rows(c->gen_relid, c->gen, c->cands, c->n, c->events, held);
	if (nheld > 0)
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		int			found = probe_generation(c->gen_relid, snap, held, nheld,
											 c->events, c->verdicts, c->kept);

		UnregisterSnapshot(snap);
		if (found < nheld)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("message id claimed by a transaction still in progress")));
	}
}

static bool
claim_directly(DirectClaim *c)
{
	ErrorData  *edata;

	if (MyProc->subxidStatus.count >= PGPROC_MAX_CACHED_SUBXIDS / 2)
		return false;
	edata = ek_run_in_subtransaction(claim_directly_cb, c);
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(edata);
	FreeErrorData(edata);
	return false;
}

/* In-batch repeats: compared with the copy that is kept. */
static void
settle_repeats(SegmentEvent **events, int nevents, const int *repeat_of,
			   const int64 *kept, DedupVerdict *verdicts)
{
	for (int i = 0; i < nevents; i++)
	{
		if (repeat_of[i] >= 0)
		{
			int			first = repeat_of[i];

			verdicts[i] = events[i]->fingerprint == kept[first] ?
				DEDUP_DUPLICATE : DEDUP_CONFLICT;
		}
	}
}

/*
 * The first occurrences of a batch's ids (firsts[]) claimed in the
 * co-located ledger of a stream distributed on Citus (dist_ledger.c).
 * Caller: as the extension owner.
 */
static void
claim_distributed(int32 stream_id, idmap_hash *ids, SegmentEvent **events,
				  const pg_uuid_t *keys, const int *firsts, int nfirst, int64 batch_id,
				  DedupVerdict *verdicts, int64 *kept)
{
	char	  **cid = palloc(sizeof(char *) * nfirst);
	int64	   *cfp = palloc(sizeof(int64) * nfirst);
	char	  **ckey = palloc(sizeof(char *) * nfirst);
	bool	   *claimed = palloc(sizeof(bool) * nfirst);
	int64	   *stored = palloc(sizeof(int64) * nfirst);

	for (int i = 0; i < nfirst; i++)
	{
		SegmentEvent *ev = events[firsts[i]];

		cid[i] = ev->message_id;
		cfp[i] = ev->fingerprint;
		ckey[i] = ev->user_id ? ev->user_id : ev->anonymous_id;
	}
	ek_dist_ledger_claim(stream_id, cid, cfp, ckey, nfirst, batch_id, claimed, stored);
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
 * and claim the new ones in the ledger.  Returns true when the current
 * generation holds more than eventkit.ledger_generation_rows ids: the
 * caller then asks the ledger job to rotate (ingest never does).  Runs
 * as the extension owner, who owns the ledger; the caller is connected to
 * SPI.
 */
bool
ek_dedup_claim(const StreamInfo *stream, SegmentEvent **events, int nevents,
			   int64 batch_id, DedupVerdict *verdicts)
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
	int32	   *sealed;
	int64	   *filter_bytes;
	int			nsealed;
	bool		nudge = false;
	EkRoleScope as_owner;
	IdEntry   **entries;		/* the batch's distinct ids, in claim order */
	IdEntry   **open;			/* the undecided ones */
	int			nopen;

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
		claim_distributed(stream->stream_id, ids, events, keys, firsts, nfirst, batch_id,
						  verdicts, kept);
		settle_repeats(events, nevents, repeat_of, kept, verdicts);
		return false;
	}

	/*
	 * Lock the ledger before reading the current generation: a rotation
	 * holds ACCESS EXCLUSIVE until it commits, so once we have the lock, the
	 * latest snapshot shows the generation every concurrent ingest uses.
	 */
	ek_as_owner_begin(&as_owner);
	LockRelationOid(ek_ledger_relid(stream->stream_id, false), RowExclusiveLock);
	plans = get_plans(stream->stream_id);
	ek_generations_read_state(stream->stream_id, &state);
	gen = state.current;
	sealed = state.sealed;
	filter_bytes = state.filter_bytes;
	nsealed = state.nsealed;
	if (plans->gen != gen)
		prepare_generation_plans(plans, stream->stream_id, gen);

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
	qsort(entries, nfirst, sizeof(IdEntry *), compare_ids);
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

	/* claim the rest in the current generation */
	cur_relid = current_generation_relid(stream->stream_id, gen);
	if (nopen > 0)
	{
		DirectClaim c = {cur_relid, gen, open, nopen, events, verdicts, kept};

		if (claim_directly(&c))
		{
			for (int i = 0; i < nopen; i++)
			{
				if (open[i]->verdict != 0)
					continue;	/* held by a committed row: looked up */
				open[i]->verdict = 'n';
				kept[open[i]->first] = events[open[i]->first]->fingerprint;
			}
		}
		else
		{
			IdEntry   **cands = palloc(sizeof(IdEntry *) * nopen);
			int			n = 0;

			for (int i = 0; i < nopen; i++)
				if (open[i]->verdict == 0)
					cands[n++] = open[i];
			if (n > 0)
				claim_with_upsert(plans, ids, events, cands, n, verdicts, kept);
		}
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

		if (e->verdict == 0)
			elog(ERROR, "eventkit: message id \"%s\" was neither claimed nor found in the ledger",
				 e->id);
	}

	settle_repeats(events, nevents, repeat_of, kept, verdicts);
	ek_as_role_end(&as_owner);
	return nudge;
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
 * Drop a stream's ledger, and forget this backend's plans and filters of
 * it.  Caller: SPI connected.
 */
void
ek_dedup_drop_ledger(int32 stream_id)
{
	EkRoleScope as_owner;

	if (OidIsValid(ek_dist_ledger_relid(stream_id)))
	{
		ek_as_owner_begin(&as_owner);
		ek_dist_ledger_drop(stream_id);
		ek_as_role_end(&as_owner);
	}
	ek_ledger_drop(stream_id);
	if (ledger_plans != NULL)
	{
		bool		found;
		LedgerPlans *p = hash_search(ledger_plans, &stream_id, HASH_FIND, &found);

		if (found)
		{
			if (p->claim)
				SPI_freeplan(p->claim);
			if (p->lookup)
				SPI_freeplan(p->lookup);
			hash_search(ledger_plans, &stream_id, HASH_REMOVE, NULL);
		}
	}
	ek_ledger_filter_forget(stream_id, 0);
}

/*
 * The ledger job's work: the filters of generations sealed earlier, then
 * a new generation if the current one is due, then dropping the expired
 * ones; for a stream distributed on Citus, deleting its distributed
 * ledger's expired ids.  Returns filters built, generations started or
 * dropped, and ids deleted.
 * Caller: SPI connected, as any role that may maintain the stream.
 */
int64
ek_dedup_maintain(StreamInfo *stream)
{
	int64		n;

	n = ek_build_ledger_filters(stream);
	n += ek_ledger_rotate(stream) ? 1 : 0;
	n += ek_ledger_prune(stream);
	if (OidIsValid(ek_dist_ledger_relid(stream->stream_id)))
	{
		EkRoleScope as_owner;

		ek_as_role_begin(&as_owner, ek_extension_owner(), EK_AS_LOCK_TIMEOUT);
		n += ek_dist_ledger_prune(stream->stream_id, &stream->dedup_window);
		ek_as_role_end(&as_owner);
	}
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
 * keys (text[]); returns how many.  Caller: SPI connected.
 */
int64
ek_dedup_forget_keys(int32 stream_id, Datum keys)
{
	return ek_ledger_forget_keys(stream_id, keys);
}
