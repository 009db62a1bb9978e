/*-------------------------------------------------------------------------
 *
 * ledger_filter.c
 *	  The compact filter of a sealed dedup ledger generation: a blocked
 *	  Bloom filter over a portable 64-bit hash of every message id the
 *	  generation holds, so that ingest probes an old generation's index
 *	  only for the few ids the filter cannot rule out.
 *
 *	  A generation is sealed when a rotation (ledger.c) makes a newer one
 *	  current: the rotation holds ACCESS EXCLUSIVE on the ledger, so once it
 *	  has committed no id is ever added to the sealed generation again.  Its
 *	  filter is then built once, by the ledger job or run_maintenance, and
 *	  stored in eventkit.ledger_generations.filter (bytea, dumped with the
 *	  catalog).  A sealed generation without a filter (just rotated, built
 *	  at 1.1, or its build crashed) is probed for every id: always correct,
 *	  only slower.
 *
 *	  This file owns the filter format (building, testing) and
 *	  the per-backend cache of filters, bounded by
 *	  eventkit.ledger_filter_cache_size; a filter that does not fit is not
 *	  used (its generation is probed for every id).  Filters are immutable
 *	  per (stream, generation, generation table), so the cache needs no
 *	  invalidation beyond forgetting generations that were dropped.
 *
 *	  The hash (ledger_key.c) and the format are stored and dumped, so they
 *	  must never change: sql/pinned_formats.sql pins the hash's answers and a filter's
 *	  bytes, and test/t/017_pinned_formats.pl checks both against an
 *	  independent implementation of the algorithm below (test/pinned/).
 *	  The two SQL functions at the end of this file exist for those tests.
 *
 *	  Format (bytes, independent of the platform's byte order):
 *		0..3	"EKBF"
 *		4		format version (1)
 *		5		bits set per key (k)
 *		6..7	zero
 *		8..15	number of keys, little-endian
 *		16..19	number of 64-byte blocks, little-endian
 *		20..23	zero
 *		24..	the blocks; bit i of block b is bit (i % 8) of byte
 *				24 + 64 * b + i / 8
 *	  A key sets k bits in one block (one cache line), chosen from its hash.
 *	  Filters are built with 32 bits per key and k = 8: about 0.002% false
 *	  positives (16 bits per key, as earlier builds made them, about 0.09%).
 *	  Every false positive costs an index probe of a generation that is
 *	  likely cold, often a disk read, and a batch tests each id against
 *	  every sealed generation.  Readers take the size from the header.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog/generations.h"
#include "ledger.h"
#include "ledger_filter.h"
#include "ledger_key.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

#define FILTER_HEADER	24
#define FILTER_BLOCK	64		/* bytes: one cache line */
#define FILTER_BITS_PER_KEY 32
#define FILTER_K		8
#define FILTER_VERSION	1

struct LedgerFilter
{
	const uint8 *blocks;
	uint32		nblocks;
};

typedef struct FilterKey
{
	int32		stream_id;
	int32		gen;
	Oid			gen_relid;
} FilterKey;

typedef struct FilterEntry
{
	FilterKey	key;
	LedgerFilter filter;
	Size		bytes;			/* stored size, for accounting and checking */
	void	   *mem;
} FilterEntry;

static HTAB *filter_cache = NULL;
static MemoryContext filter_cxt = NULL;
static Size filter_cache_bytes = 0;

/* ---------------------------------------------------------------------
 * A key's place in a filter (from ek_id_hash64 of its id: ledger_key.c)
 * ---------------------------------------------------------------------
 */

/* The block of a key, and its k bit positions within the block. */
static inline uint32
key_block(uint64 h, uint32 nblocks)
{
	return (uint32) (((h >> 32) * (uint64) nblocks) >> 32);
}

static inline void
key_bits(uint64 h, int *bits)
{
	uint64		g = ek_fmix64(h ^ UINT64CONST(0x9e3779b97f4a7c15));

	bits[0] = (int) (h & 511);
	for (int i = 1; i < FILTER_K; i++)
		bits[i] = (int) ((g >> (9 * (i - 1))) & 511);
}

bool
ek_ledger_filter_may_contain(const LedgerFilter *f, uint64 h)
{
	const uint8 *block = f->blocks + (Size) key_block(h, f->nblocks) * FILTER_BLOCK;
	int			bits[FILTER_K];

	key_bits(h, bits);
	for (int i = 0; i < FILTER_K; i++)
		if ((block[bits[i] >> 3] & (1 << (bits[i] & 7))) == 0)
			return false;
	return true;
}

#if defined(__GNUC__) || defined(__clang__)
#define prefetch_block(f, h) \
	__builtin_prefetch((f)->blocks + (Size) key_block((h), (f)->nblocks) * FILTER_BLOCK)
#else
#define prefetch_block(f, h) ((void) 0)
#endif

/* How far ahead the block of a key is prefetched (cache misses overlap). */
#define PREFETCH_DISTANCE 8

/*
 * Which of n hashes the filter may hold: their positions go to out (room
 * for n); returns how many.  Each test is one cache miss at most, so the
 * blocks are prefetched a few keys ahead.
 */
int
ek_ledger_filter_select(const LedgerFilter *f, const uint64 *hashes, int n, int *out)
{
	int			nout = 0;

	for (int i = 0; i < Min(n, PREFETCH_DISTANCE); i++)
		prefetch_block(f, hashes[i]);
	for (int i = 0; i < n; i++)
	{
		if (i + PREFETCH_DISTANCE < n)
			prefetch_block(f, hashes[i + PREFETCH_DISTANCE]);
		if (ek_ledger_filter_may_contain(f, hashes[i]))
			out[nout++] = i;
	}
	return nout;
}

/* Parse a stored filter; false if it is not one this code understands. */
static bool
parse_filter(const uint8 *data, Size len, LedgerFilter *f)
{
	uint32		nblocks;

	if (len < FILTER_HEADER || memcmp(data, "EKBF", 4) != 0 ||
		data[4] != FILTER_VERSION || data[5] != FILTER_K)
		return false;
	nblocks = (uint32) data[16] | ((uint32) data[17] << 8) |
		((uint32) data[18] << 16) | ((uint32) data[19] << 24);
	if (nblocks == 0 || len != FILTER_HEADER + (Size) nblocks * FILTER_BLOCK)
		return false;
	f->blocks = data + FILTER_HEADER;
	f->nblocks = nblocks;
	return true;
}

/* ---------------------------------------------------------------------
 * Building
 * ---------------------------------------------------------------------
 */

/* A filter over n hashes, as a bytea. */
static bytea *
make_filter(const uint64 *hashes, uint64 n)
{
	uint64		nblocks64 = Max((n * FILTER_BITS_PER_KEY + FILTER_BLOCK * 8 - 1) /
								(FILTER_BLOCK * 8), 1);
	uint32		nblocks;
	Size		len;
	bytea	   *result;
	uint8	   *data;
	uint8	   *blocks;

	if (nblocks64 > (MaxAllocHugeSize - FILTER_HEADER - VARHDRSZ) / FILTER_BLOCK ||
		nblocks64 > PG_UINT32_MAX)
		elog(ERROR, "eventkit: ledger generation too large for a filter");
	nblocks = (uint32) nblocks64;
	len = FILTER_HEADER + (Size) nblocks * FILTER_BLOCK;
	if (len + VARHDRSZ > MaxAllocSize)
		elog(ERROR, "eventkit: ledger filter of %zu bytes is over the 1 GB value limit", len);
	result = palloc0(len + VARHDRSZ);
	SET_VARSIZE(result, len + VARHDRSZ);
	data = (uint8 *) VARDATA(result);
	memcpy(data, "EKBF", 4);
	data[4] = FILTER_VERSION;
	data[5] = FILTER_K;
	for (int i = 0; i < 8; i++)
		data[8 + i] = (uint8) (n >> (8 * i));
	for (int i = 0; i < 4; i++)
		data[16 + i] = (uint8) (nblocks >> (8 * i));
	blocks = data + FILTER_HEADER;
	for (uint64 i = 0; i < n; i++)
	{
		uint8	   *block = blocks + (Size) key_block(hashes[i], nblocks) * FILTER_BLOCK;
		int			bits[FILTER_K];

		key_bits(hashes[i], bits);
		for (int b = 0; b < FILTER_K; b++)
			block[bits[b] >> 3] |= (uint8) (1 << (bits[b] & 7));
	}
	return result;
}

/*
 * The filter hash of every message id of a sealed generation table: the
 * first lane of its stored key, which is ek_id_hash64 of the id.  Reads with the
 * latest snapshot: the caller saw the generation sealed (its ended_at), so
 * the rotation, and every ingest that wrote into the generation, committed
 * before that.
 */
static uint64 *
hash_generation_ids(Oid relid, uint64 *n)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot;
	Size		cap = 1024;
	uint64	   *hashes = MemoryContextAllocHuge(CurrentMemoryContext, cap * sizeof(uint64));

	ek_ledger_check_layout(rel);
	slot = table_slot_create(rel, NULL);
	*n = 0;
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, 1, &isnull);

		if (isnull)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			hashes = repalloc_huge(hashes, cap * sizeof(uint64));
		}
		hashes[(*n)++] = ek_ledger_key_hash64(DatumGetUUIDP(d));
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	return hashes;
}

/*
 * Build the filters of the stream's sealed generations that have none.
 * Returns how many were built.  Caller: SPI connected, as any role that
 * may maintain the stream.  Runs as the extension owner, who owns the
 * generation tables (the catalog is read and written by catalog/).
 */
int
ek_build_ledger_filters(const StreamInfo *stream)
{
	List	   *gens;
	ListCell   *lc;
	int			built = 0;
	EkRoleScope as_owner;

	if (!ek_generations_filters_installed())
		return 0;

	/* the generation tables are read as the extension owner, theirs */
	ek_as_owner_begin(&as_owner);
	gens = ek_generations_unfiltered(stream->stream_id);
	foreach(lc, gens)
	{
		int32		gen = lfirst_int(lc);
		Oid			relid = ek_ledger_generation_relid(stream->stream_id, gen);
		uint64		n;
		uint64	   *hashes;
		bytea	   *filter;

		if (!OidIsValid(relid))
			continue;			/* dropped meanwhile */
		LockRelationOid(relid, AccessShareLock);
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		{
			UnlockRelationOid(relid, AccessShareLock);
			continue;
		}
		hashes = hash_generation_ids(relid, &n);
		filter = make_filter(hashes, n);
		pfree(hashes);
		built += ek_generations_store_filter(stream->stream_id, gen, filter) ? 1 : 0;
		pfree(filter);
	}
	ek_as_role_end(&as_owner);
	return built;
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * ---------------------------------------------------------------------
 */

static void
init_cache(void)
{
	HASHCTL		ctl;

	if (filter_cache != NULL)
		return;
	filter_cxt = AllocSetContextCreate(TopMemoryContext, "eventkit ledger filters",
									   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(FilterKey);
	ctl.entrysize = sizeof(FilterEntry);
	ctl.hcxt = filter_cxt;
	filter_cache = hash_create("eventkit ledger filters", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
remove_entry(FilterEntry *e)
{
	filter_cache_bytes -= e->bytes;
	if (e->mem)
		pfree(e->mem);
	hash_search(filter_cache, &e->key, HASH_REMOVE, NULL);
}

/*
 * The filter of a sealed generation, or NULL when it cannot be used: none
 * stored (stored_bytes < 0), over eventkit.ledger_filter_cache_size, or
 * not understood.  stored_bytes is octet_length(filter) as just read from
 * the catalog.  Caller: SPI connected.
 */
const LedgerFilter *
ek_ledger_filter_get(int32 stream_id, int32 gen, Oid gen_relid, int64 stored_bytes)
{
	FilterKey	key;
	FilterEntry *e;
	bool		found;
	bytea	   *b;
	Size		len;

	if (stored_bytes < 0)
		return NULL;
	init_cache();
	memset(&key, 0, sizeof(key));
	key.stream_id = stream_id;
	key.gen = gen;
	key.gen_relid = gen_relid;
	e = hash_search(filter_cache, &key, HASH_FIND, &found);
	if (found && e->bytes == (Size) stored_bytes)
		return e->filter.blocks ? &e->filter : NULL;
	if (found)
		remove_entry(e);		/* not the filter stored now */

	if (filter_cache_bytes + (Size) stored_bytes > (Size) ek_ledger_filter_cache_size * 1024)
		return NULL;

	/* with the latest snapshot, as the caller's read of stored_bytes */
	b = ek_generations_read_filter(stream_id, gen, filter_cxt);
	if (b == NULL)
		return NULL;
	len = VARSIZE(b) - VARHDRSZ;

	e = hash_search(filter_cache, &key, HASH_ENTER, &found);
	e->mem = b;
	e->bytes = len;
	filter_cache_bytes += len;
	if (!parse_filter((const uint8 *) VARDATA(b), len, &e->filter))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger filter of generation %d of stream %d is not readable", gen, stream_id),
				 errdetail("The generation is probed for every id instead."),
				 errhint("Set eventkit.ledger_generations.filter to NULL for it; maintenance builds it again.")));
		e->filter.blocks = NULL;
	}
	return e->filter.blocks ? &e->filter : NULL;
}

/* Forget the cached filters of a stream's generations older than min_gen (all: 0). */
void
ek_ledger_filter_forget(int32 stream_id, int32 min_gen)
{
	HASH_SEQ_STATUS seq;
	FilterEntry *e;

	if (filter_cache == NULL)
		return;
	hash_seq_init(&seq, filter_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.stream_id == stream_id && (min_gen <= 0 || e->key.gen < min_gen))
			remove_entry(e);
}

/* ---------------------------------------------------------------------
 * For the tests that pin the hash and the format
 * (eventkit_internal, revoked from PUBLIC)
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(eventkit_ledger_filter_contains);

/*
 * eventkit_internal.ledger_filter_contains(filter bytea, id text) RETURNS
 * boolean: whether a stored filter may hold an id, as ingest asks it.
 */
Datum
eventkit_ledger_filter_contains(PG_FUNCTION_ARGS)
{
	bytea	   *filter = PG_GETARG_BYTEA_PP(0);
	text	   *id = PG_GETARG_TEXT_PP(1);
	LedgerFilter f;

	if (!parse_filter((const uint8 *) VARDATA_ANY(filter), VARSIZE_ANY_EXHDR(filter), &f))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a ledger filter eventkit can read"),
				 errdetail("A filter starts with \"EKBF\", version %d, %d bits per key, and holds as many 64-byte blocks as its header says.",
						   FILTER_VERSION, FILTER_K)));
	PG_RETURN_BOOL(ek_ledger_filter_may_contain(&f, ek_id_hash64(VARDATA_ANY(id),
																 VARSIZE_ANY_EXHDR(id))));
}
