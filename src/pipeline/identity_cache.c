/*-------------------------------------------------------------------------
 *
 * identity_cache.c
 *	  The identity stage's cache of known links: a backend's table of the
 *	  ids of its recent batches (their canonical id, times and tid), its
 *	  memory, its flushes.  The stage (pipeline/identity.c) decides what a
 *	  link may take from it; this file owns the table.
 *
 *	  The cache of known links: for ids of this backend's recent batches, the
 *	  canonical id and first/last seen times their rows had when this backend
 *	  last read or wrote them.  A link whose two ids the cache puts in one set
 *	  (the same canonical id), at a time within both ids' cached times give or
 *	  take EK_IDENTITY_SEEN_STEP, changes nothing, and is dropped before the
 *	  batch's ids are read: a batch of known visitors reads and writes nothing.
 *	  Each entry also keeps the heap tid of the row's version this backend
 *	  last read or wrote: the read of a cached id's row (a link the cache
 *	  could not answer, e.g. one that re-times it) goes to that tuple first,
 *	  and takes it if it is still the version the read's snapshot sees, with
 *	  the same key (catalog/identity.c); otherwise (updated or re-pointed by
 *	  another session or this one, moved by VACUUM FULL, an aborted write) the
 *	  primary key is probed.  A tid is a hint: a wrong one costs a probe,
 *	  never a wrong answer.
 *
 *	  Exact, because the graph only grows but for three things that the cache
 *	  is flushed for.  Sets only merge: two ids once in one set stay in one set
 *	  whoever merges what later (the canonical id of a set that lost a merge
 *	  names the winner's set from then on, and is in it); first_seen only gets
 *	  earlier and last_seen later, so cached times are within the stored ones
 *	  and a link they do not move would not move the stored ones either.  Links
 *	  are removed only by forget_user (it suppresses the ids, so that their
 *	  later events are rejected before this stage, and takes the identity
 *	  lock), by drop_stream, and by a truncated or dropped identity_links: each
 *	  sends a relcache invalidation that bumps ek_identity_graph_generation()
 *	  in every backend that processes it (forget_user holds the stream against
 *	  ingest, so an ingest after it has processed it), and forget_user flushes
 *	  its own backend's cache through ek_identity_lock().  Rows this backend
 *	  wrote are cached before they commit; an abort (of a subtransaction too)
 *	  flushes the cache.  Rows deleted by hand (DELETE on identity_links by a
 *	  superuser) are outside the contract: a backend's cache does not see them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifndef WIN32
#include <sys/mman.h>
#endif

#include "access/xact.h"
#include "common/hashfn.h"
#include "port/pg_bswap.h"
#include "utils/memutils.h"

#include "catalog/identity.h"
#include "pipeline/identity_cache.h"
#include "util/guc.h"

#define EK_IDENTITY_CACHE_MAX 262144	/* entries; flushed when full */

/*
 * For uuid_bytes: eight hex digits at a time, as the bytes of a 64-bit
 * word (SWAR: the first digit in the lowest byte).  A digit is '0'-'9', or
 * a letter 'a'-'f' or 'A'-'F' (one with bit 0x20 set is lowercase); a
 * byte's comparisons with a bound are subtractions that leave its high
 * bit set for "at or above" (the bytes are taken below 0x80 first, a byte
 * at or above it is not a digit), so that one word's eight bytes are
 * tested at once.  Per UUID, on every cache hit: about a third of the
 * instructions of a table lookup per digit (1.11).
 */
#define EK_BYTES(b) (UINT64CONST(0x0101010101010101) * (b))
#define EK_HIGH_BITS EK_BYTES(0x80)

static inline uint64
load_le64(const char *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
#ifdef WORDS_BIGENDIAN
	v = pg_bswap64(v);
#endif
	return v;
}

static inline uint64
load_le32x2(const char *lo, const char *hi)
{
	uint32		a;
	uint32		b;

	memcpy(&a, lo, sizeof(a));
	memcpy(&b, hi, sizeof(b));
#ifdef WORDS_BIGENDIAN
	a = pg_bswap32(a);
	b = pg_bswap32(b);
#endif
	return (uint64) a | ((uint64) b << 32);
}

/*
 * The 4 bytes of the 8 hex digits in x, first digit first (in out); the
 * high bit of a byte of *bad set for a character that is not a digit, of
 * *upper and *lower for an uppercase or lowercase letter.
 */
static inline void
hex8(uint64 x, char *out, uint64 *bad, uint64 *upper, uint64 *lower)
{
	uint64		x7 = x & ~EK_HIGH_BITS;
	uint64		folded = x7 | EK_BYTES(0x20);	/* 'A'-'F' to 'a'-'f' */
	uint64		digit = ((x7 | EK_HIGH_BITS) - EK_BYTES('0')) &
		(EK_BYTES(0x80 + '9') - x7) & EK_HIGH_BITS;
	uint64		letter = ((folded | EK_HIGH_BITS) - EK_BYTES('a')) &
		(EK_BYTES(0x80 + 'f') - folded) & EK_HIGH_BITS;
	uint64		v;
	uint32		four;

	*bad |= (x & EK_HIGH_BITS) | (~(digit | letter) & EK_HIGH_BITS);
	*upper |= letter & ~(x << 2);	/* bit 0x20 under the high bit */
	*lower |= letter & (x << 2);
	/* each byte's value: its low four bits, and 9 more for a letter */
	v = (x & EK_BYTES(0x0F)) + (letter >> 7) * 9;
	/* two digits a byte, then the four bytes together */
	v = ((v & UINT64CONST(0x000F000F000F000F)) << 4) |
		((v >> 8) & UINT64CONST(0x000F000F000F000F));
	v = (v | (v >> 8)) & UINT64CONST(0x0000FFFF0000FFFF);
	four = (uint32) (v | (v >> 16));
#ifdef WORDS_BIGENDIAN
	four = pg_bswap32(four);
#endif
	memcpy(out, &four, sizeof(four));
}

/*
 * A UUID's 16 bytes and the case of its letters (EK_ID_UUID_LOWER or
 * _UPPER; one without letters is lowercase), if id (36 bytes) is one in
 * its canonical text form; else 0.
 */
static uint8
uuid_bytes(const char *id, char *out)
{
	uint64		bad = 0;
	uint64		upper = 0;
	uint64		lower = 0;

	if (id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-')
		return 0;
	hex8(load_le64(id), out, &bad, &upper, &lower);
	hex8(load_le32x2(id + 9, id + 14), out + 4, &bad, &upper, &lower);
	hex8(load_le32x2(id + 19, id + 24), out + 8, &bad, &upper, &lower);
	hex8(load_le64(id + 28), out + 12, &bad, &upper, &lower);
	if ((bad & EK_HIGH_BITS) ||
		((upper & EK_HIGH_BITS) && (lower & EK_HIGH_BITS)))
		return 0;				/* not hex, or mixed case: kept as text */
	return (upper & EK_HIGH_BITS) ? EK_ID_UUID_UPPER : EK_ID_UUID_LOWER;
}

/* The code of id (len bytes); a long id's pointer is set by the caller. */
static void
id_code(const char *id, size_t len, IdCode *c)
{
	if (len <= EK_ID_INLINE)
	{
		c->tag = (uint8) len;
		memcpy(c->bytes, id, len);
	}
	else
	{
		c->tag = len == 36 ? uuid_bytes(id, c->bytes) : 0;
		if (c->tag == 0)
		{
			memset(c->bytes, 0, sizeof(c->bytes));
			c->tag = EK_ID_LONG;
		}
	}
}

/* Is the entry's id (code a) id, whose code is b? */
static inline bool
id_equal(const IdCode *a, const IdCode *b, const char *id)
{
	const char *copy;

	if (a->tag != b->tag)
		return false;
	if (a->tag != EK_ID_LONG)
		return memcmp(a->bytes, b->bytes,
					  a->tag <= EK_ID_INLINE ? a->tag : 16) == 0;
	memcpy(&copy, a->bytes, sizeof(copy));
	return strcmp(copy, id) == 0;
}
#define SH_PREFIX known
#define SH_ELEMENT_TYPE KnownId
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) ((uint32) (k))	/* a hash already */
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The entries' array, aligned to a cache line (palloc aligns to 8 only),
 * so that an entry is one line.  An array of EK_HUGE_PAGE or more (from
 * 32,768 entries: the table grows to it past 14,746 cached ids) is mapped apart
 * (mmap), aligned to EK_HUGE_PAGE and marked for transparent huge pages
 * (MADV_HUGEPAGE, the system's "madvise" setting; "always" does the same,
 * "never" leaves 4 kB pages), where palloc's 4 kB pages cost the lookups
 * a TLB miss each besides their cache miss (at full size the ingest
 * benchmark's ~100,000 ids fill an 8 MB array: 2,048 pages, more than the
 * TLB holds), and every growth of the table faulted in and zeroed each
 * new page (memset: the array must start zeroed; a fresh mapping is).
 * Where mmap fails, or the system has no MADV_HUGEPAGE, palloc as
 * before.  A mapped array is outside cache_cxt's accounting: its size
 * is the table's, at most 524,288 entries (32 MB: the table grows past
 * 90% full, and is flushed at EK_IDENTITY_CACHE_MAX), per backend that
 * links ids.  What the array came from is kept just before
 * it.
 */
#define EK_HUGE_PAGE ((Size) 2 * 1024 * 1024)

typedef struct KnownArray
{
	void	   *raw;			/* what palloc or mmap returned */
	Size		mapped;			/* the mapping's length; 0: palloc'd */
} KnownArray;

static inline void *
known_allocate(known_hash *tb, Size size)
{
	char	   *raw;
	char	   *data;

#if defined(MADV_HUGEPAGE) && defined(MAP_ANONYMOUS)
	if (size >= EK_HUGE_PAGE)
	{
		Size		len = size + EK_KNOWN_ENTRY_SIZE + EK_HUGE_PAGE;

		raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw != MAP_FAILED)
		{
			char	   *base = (char *) TYPEALIGN(EK_HUGE_PAGE, (uintptr_t) raw);

			/* (advice: where refused, 4 kB pages) */
			(void) madvise(base, TYPEALIGN(EK_HUGE_PAGE, size + EK_KNOWN_ENTRY_SIZE),
						   MADV_HUGEPAGE);
			data = base + EK_KNOWN_ENTRY_SIZE;	/* zeroed: a fresh mapping */
			((KnownArray *) data)[-1].raw = raw;
			((KnownArray *) data)[-1].mapped = len;
			return data;
		}
	}
#endif
	raw = MemoryContextAllocExtended(tb->ctx,
									 size + EK_KNOWN_ENTRY_SIZE + sizeof(KnownArray),
									 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	data = (char *) TYPEALIGN(EK_KNOWN_ENTRY_SIZE,
							  (uintptr_t) (raw + sizeof(KnownArray)));
	((KnownArray *) data)[-1].raw = raw;
	((KnownArray *) data)[-1].mapped = 0;
	return data;
}

static inline void
known_free(known_hash *tb, void *pointer)
{
	KnownArray	a = ((KnownArray *) pointer)[-1];

	if (a.mapped > 0)
	{
		if (munmap(a.raw, a.mapped) != 0)
			elog(WARNING, "eventkit: could not unmap the identity cache's array: %m");
	}
	else
		pfree(a.raw);
}

/* An interned canonical id. */
typedef struct CanonId
{
	const char *str;			/* in cache_cxt */
	uint32		hash;
	char		status;			/* simplehash's */
} CanonId;

#define SH_PREFIX canon
#define SH_ELEMENT_TYPE CanonId
#define SH_KEY_TYPE const char *
#define SH_KEY str
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b) (strcmp(a, b) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static known_hash *known = NULL;
static canon_hash *canons = NULL;
static MemoryContext cache_cxt = NULL;
static uint64 known_generation = 0;
static bool cache_callbacks = false;
static uint64 flushes = 0;		/* how many times it was flushed */
static bool in_speculation = false; /* the stage's speculation is running */

/* Forget every entry (the stage's speculation stops: ek_idcache_flushes). */
void
ek_idcache_flush(void)
{
	if (known != NULL)
		known_destroy(known);	/* (a mapped array is not in cache_cxt) */
	if (cache_cxt != NULL)
		MemoryContextReset(cache_cxt);
	known = NULL;
	canons = NULL;
	flushes++;
}

/*
 * How many times the cache was flushed: the stage speculates only while
 * this has not moved (stored ids are unknown to the cache after a flush).
 */
uint64
ek_idcache_flushes(void)
{
	return flushes;
}

/* The stage's speculation's subtransaction starts (true) or ended. */
void
ek_idcache_in_speculation(bool running)
{
	in_speculation = running;
}

static void
cache_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		ek_idcache_flush();
}

static void
cache_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/*
	 * (a speculation's subtransaction wrote nothing to the cache: it reads
	 * it, the batch caches its rows after it)
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB && !in_speculation)
		ek_idcache_flush();
}

/* One 64-bit hash of (stream id, id): the entry's key. */
uint64
ek_idcache_key(int32 stream_id, const char *id, size_t len)
{
	uint64		key = hash_bytes_extended((const unsigned char *) id, len,
										  (uint64) (uint32) stream_id);

#ifdef EK_TESTING
	/* ids that share a key, for tests (eventkit.testing_identity_key_bits) */
	if (ek_testing_identity_key_bits < 64)
		key &= (UINT64CONST(1) << ek_testing_identity_key_bits) - 1;
#endif
	return key;
}

/* The cache, valid for the graph's current generation (created if need be). */
void
ek_idcache_get(void)
{
	uint64		generation = ek_identity_graph_generation();

	if (!cache_callbacks)
	{
		RegisterXactCallback(cache_xact_callback, NULL);
		RegisterSubXactCallback(cache_subxact_callback, NULL);
		cache_callbacks = true;
	}
	if (generation != known_generation ||
		(known != NULL && known->members >= EK_IDENTITY_CACHE_MAX))
		ek_idcache_flush();
	known_generation = generation;
	if (known == NULL)
	{
		if (cache_cxt == NULL)
			cache_cxt = AllocSetContextCreate(TopMemoryContext,
											  "eventkit identity cache",
											  ALLOCSET_DEFAULT_SIZES);
		known = known_create(cache_cxt, 1024, NULL);
		canons = canon_create(cache_cxt, 256, NULL);
	}
}

/* The interned copy of a canonical id. */
static const char *
canon_intern(const char *canon)
{
	bool		found;
	CanonId    *c = canon_insert(canons, canon, &found);

	if (!found)
		c->str = MemoryContextStrdup(cache_cxt, canon);
	return c->str;
}

/* The entry of id (len bytes, key ek_idcache_key()'s), or NULL. */
KnownId *
ek_idcache_find_keyed(int32 stream_id, const char *id, size_t len, uint64 key)
{
	KnownId    *k = known_lookup(known, key);
	IdCode		c;

	if (k == NULL || k->stream_id != stream_id)
		return NULL;
	id_code(id, len, &c);
	if (!id_equal(&k->id, &c, id))
		return NULL;			/* another id with the same hash */
	return k;
}

KnownId *
ek_idcache_find(int32 stream_id, const char *id)
{
	size_t		len = strlen(id);

	return ek_idcache_find_keyed(stream_id, id, len, ek_idcache_key(stream_id, id, len));
}

/*
 * Start loading the slot where a lookup of key begins into the CPU's
 * cache: the batch's lookups, each a cache miss at full size, then overlap
 * instead of waiting one after the other.
 */
void
ek_idcache_prefetch(uint64 key)
{
#if defined(__GNUC__) || defined(__clang__)
	__builtin_prefetch(&known->data[(uint32) key & known->sizemask]);
#endif
}

void
ek_idcache_put(int32 stream_id, const char *id, const char *canon,
		  TimestampTz first, TimestampTz last, ItemPointer tid, bool norow)
{
	bool		found;
	size_t		len = strlen(id);
	KnownId    *k = known_insert(known, ek_idcache_key(stream_id, id, len), &found);
	IdCode		c;

	id_code(id, len, &c);
	/* new, or another id with the same hash (replaced) */
	if (!found || k->stream_id != stream_id || !id_equal(&k->id, &c, id))
	{
		k->stream_id = stream_id;
		if (c.tag == EK_ID_LONG)
		{
			char	   *copy = MemoryContextStrdup(cache_cxt, id);

			memcpy(c.bytes, &copy, sizeof(copy));
		}
		k->id = c;
		k->canon = NULL;
	}
	if (k->canon == NULL || strcmp(k->canon, canon) != 0)
		k->canon = canon_intern(canon);
	k->first = first;
	k->last = last;
	k->tid = *tid;
	k->norow = norow;
}

/* ek_idcache_put for the entry k of the same id (found by ek_idcache_find). */
void
ek_idcache_put_at(KnownId *k, const char *canon, TimestampTz first, TimestampTz last,
			 ItemPointer tid, bool norow)
{
	if (strcmp(k->canon, canon) != 0)
		k->canon = canon_intern(canon);
	k->first = first;
	k->last = last;
	k->tid = *tid;
	k->norow = norow;
}
