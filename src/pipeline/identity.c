/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  The identity stage: the identity graph kept at ingest, and the
 *	  suppression check.
 *
 *	  Links.  An event stored with both anonymousId and userId links the
 *	  two; an alias links previousId to userId.  Linked ids form sets, one
 *	  per user (union-find), kept flat in eventkit.identity_links: every id
 *	  names its set's canonical id, which is always a userId; since 1.9 the
 *	  canonical id itself has no row (an id without one is its own user),
 *	  until a merge re-points it (rows stored before, naming themselves,
 *	  are accepted: read, re-timed and re-pointed as any row).  A link
 *	  between two sets merges them: an alias gives the merged set the
 *	  canonical id of its userId's set (its previousId, and everything
 *	  linked to it, now resolve to that user); a link by an event carrying
 *	  both ids keeps the canonical id of the larger set (the userId's on a
 *	  tie), so that a merge re-points the smaller set.
 *
 *	  Per batch with links: first the backend's cache of known links (below)
 *	  drops the links it says change nothing; then one read of the rows of
 *	  the remaining links' ids; when
 *	  they already say what the batch says (a known visitor identifying
 *	  again within a day of the times recorded), nothing is
 *	  written and no lock is taken.  Otherwise the stream's identity lock
 *	  (a transaction-level advisory lock, eventkit_lock_key below) is taken,
 *	  the rows are read again with the latest snapshot (what the previous
 *	  holder committed; speculating, the ids the cache does not know are
 *	  taken for new instead, below), the batch's links are applied in order, and at
 *	  most three steps write: the batch's changed ids (updated in place,
 *	  in C, at the tids the read under the lock found; HOT when only the
 *	  times move), the sets a merge re-points, the rows of the batch's new
 *	  ids (inserted in C: the lock says they are absent).  Concurrent
 *	  ingests that link the same ids thus
 *	  apply their links one after the other, never from a stale read.  A
 *	  batch without links costs a pass over its events and no statement.
 *
 *	  Suppressions.  Events carrying an id that forget_user erased
 *	  (userId, anonymousId or previousId) get the problem "suppressed", so
 *	  the orchestrator rejects them before dedup: they are never stored,
 *	  quarantined or entered in the ledger.  A stream without
 *	  suppressions pays one cached lookup per batch (catalog/identity.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog/identity.h"
#include "pipeline/identity.h"
#include "util/guc.h"
#include "util/spi.h"

/*
 * The identity lock of a stream: an advisory lock tag that SQL's
 * pg_advisory_lock() cannot take (field4 3; SQL uses 1 and 2), keyed by
 * the stream id and this constant ("ekid").
 */
#define EK_IDENTITY_LOCK_KEY 0x656b6964
#define EK_IDENTITY_LOCK_FIELD4 3

/*
 * first_seen and last_seen move only by more than eventkit.identity_time_step
 * (a day by default; read per batch: cached times are within the stored
 * ones, so the cache stays exact whatever the step), a known visitor's link
 * within it writes nothing (re-timings cost ingest more than new links).
 */
#define EK_IDENTITY_SEEN_STEP ((int64) ek_identity_time_step * USECS_PER_SEC)

/*
 * Did this backend's last batch with links write some (and for which
 * stream)?  Then the next batch of that stream takes the identity lock if
 * it is free (never waiting for it) and reads once, under it, instead of
 * reading a first time without the lock and, finding new links as its
 * predecessor did, again with it: a stream that is learning its audience
 * (most links new) pays one read a batch.  A batch whose links are known
 * still never waits (isolation spec identity_merge); one that took the
 * lock this way and writes nothing holds it to its commit all the same.
 * Only which path is taken depends on this; both are correct.
 */
static int32 last_stream_id = 0;
static bool last_wrote = false;

/*
 * Speculation: were the ids this backend's cache did not know absent from
 * the graph, the last time it read them?  A long-lived session ingesting
 * a stream from its start (pgbench's, an intake worker's) knows every
 * stored id of it, all it wrote and read: an id it does not know is new,
 * and the probe of the primary key that says so (about 7,000 instructions)
 * was a seventh of the stage's cost over the ingest benchmark's run.  Then
 * the next batch with new links, under the identity lock, does not read
 * those ids but takes them for absent, in a subtransaction (only from ids:
 * a userId taken for absent would get no row of its own, since 1.9, so no
 * insert would check it): each is inserted as new, and the primary key's unique check (which the insert
 * does anyway) says if one was stored after all (by another session, or
 * before a flush of the cache); the subtransaction is then rolled back and
 * the batch read and written again the ordinary way, and speculation stops
 * until EK_SPECULATE_AFTER_MISS reads in a row find the unknown ids absent
 * (EK_SPECULATE_AFTER at first, and after a flush of the cache).  Exact
 * either way: an id taken for absent is always inserted (it is linked), so
 * a wrong guess never commits.  (Only the path taken depends on this, as
 * for last_wrote.)  One stream at a time (that of the reads).  Isolation
 * spec identity_speculate.
 */
#define EK_SPECULATE_AFTER 2		/* reads finding the unknown ids absent */
#define EK_SPECULATE_AFTER_MISS 16	/* the same, after a wrong guess */
static bool speculate = false;	/* for the stream spec_stream_id */
static int32 spec_stream_id = 0;
static int	clean_reads = 0;	/* such reads in a row (negative: owed) */
static bool in_speculation = false;	/* its subtransaction is running */

/* One id of a batch's links, or a canonical id they lead to. */
typedef struct IdNode
{
	const char *id;
	struct IdNode *parent;		/* NULL: unknown so far; a root: itself */
	bool		stored;			/* has a row */
	bool		is_canon;		/* the canonical id of stored members */
	bool		read;			/* its row was read (times known) */
	const char *stored_canon;	/* its row's canonical id */
	TimestampTz stored_first;	/* its row's first_seen and last_seen */
	TimestampTz stored_last;
	ItemPointerData tid;		/* where its row was read, or written */
	struct KnownId *known;		/* its cache entry, found by the read */
	bool		linked;			/* one of the batch's links names it */
	TimestampTz first;			/* event times of its links in the batch */
	TimestampTz last;
	int64		added;			/* a root: members added by the batch */
	int64		stored_size;	/* a stored root: its rows, -1 unknown */
} IdNode;

typedef struct Link
{
	const char *from;			/* anonymousId or previousId */
	const char *to;				/* userId */
	bool		alias;
	TimestampTz ts;
	uint64		from_key;		/* known_key() of each, for the cache */
	uint64		to_key;
	size_t		from_len;
	size_t		to_len;
} Link;

typedef struct Graph
{
	IdNode	   *nodes;			/* sorted by id */
	int			n;
	int32		stream_id;
	const bool *is_from;		/* per id of the batch: a link's from id */
	const bool *is_to;			/* per id of the batch: a link's userId */
} Graph;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int
cmp_node(const void *a, const void *b)
{
	return strcmp(((const IdNode *) a)->id, ((const IdNode *) b)->id);
}

/*
 * An id of a batch's links, and whether the link names it as its from id
 * (else as its userId): sorted by the id (sort_batch_ids, the comparison
 * inlined), they give the batch's ids in order and, where one is repeated,
 * what the links name it as, without a search per link.
 */
typedef struct BatchId
{
	const char *id;
	bool		from;
} BatchId;

#define ST_SORT sort_batch_ids
#define ST_ELEMENT_TYPE BatchId
#define ST_COMPARE(a, b) strcmp((a)->id, (b)->id)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static IdNode *
node_of(Graph *g, const char *id)
{
	IdNode		key = {.id = id};

	return bsearch(&key, g->nodes, g->n, sizeof(IdNode), cmp_node);
}

static IdNode *
root_of(IdNode *x)
{
	IdNode	   *r = x;

	while (r->parent != r)
		r = r->parent;
	while (x->parent != r)
	{
		IdNode	   *next = x->parent;

		x->parent = r;
		x = next;
	}
	return r;
}

/* Do the batch's links move a stored id's first or last seen time enough? */
static bool
seen_moved(const IdNode *x)
{
	return x->stored &&
		(x->last > x->stored_last + EK_IDENTITY_SEEN_STEP ||
		 x->first < x->stored_first - EK_IDENTITY_SEEN_STEP);
}

/*
 * The size of a root's set: its stored members and itself (with a row or,
 * since 1.9, without), and the members the batch added.  Tells whether the
 * root is the canonical id of stored members (a userId the read did not
 * probe for that: a merge may re-point them).
 */
static int64
set_size(Graph *g, IdNode *root)
{
	if (root->stored_size < 0)
	{
		root->stored_size = ek_identity_set_size(g->stream_id, root->id);
		if (root->stored_size > 1)
			root->is_canon = true;
	}
	return root->stored_size + root->added;
}

/*
 * The cache of known links: for ids of this backend's recent batches, the
 * canonical id and first/last seen times their rows had when this backend
 * last read or wrote them.  A link whose two ids the cache puts in one set
 * (the same canonical id), at a time within both ids' cached times give or
 * take EK_IDENTITY_SEEN_STEP, changes nothing, and is dropped before the
 * batch's ids are read: a batch of known visitors reads and writes nothing.
 * Each entry also keeps the heap tid of the row's version this backend
 * last read or wrote: the read of a cached id's row (a link the cache
 * could not answer, e.g. one that re-times it) goes to that tuple first,
 * and takes it if it is still the version the read's snapshot sees, with
 * the same key (catalog/identity.c); otherwise (updated or re-pointed by
 * another session or this one, moved by VACUUM FULL, an aborted write) the
 * primary key is probed.  A tid is a hint: a wrong one costs a probe,
 * never a wrong answer.
 *
 * Exact, because the graph only grows but for three things that the cache
 * is flushed for.  Sets only merge: two ids once in one set stay in one set
 * whoever merges what later (the canonical id of a set that lost a merge
 * names the winner's set from then on, and is in it); first_seen only gets
 * earlier and last_seen later, so cached times are within the stored ones
 * and a link they do not move would not move the stored ones either.  Links
 * are removed only by forget_user (it suppresses the ids, so that their
 * later events are rejected before this stage, and takes the identity
 * lock), by drop_stream, and by a truncated or dropped identity_links: each
 * sends a relcache invalidation that bumps ek_identity_graph_generation()
 * in every backend that processes it (forget_user holds the stream against
 * ingest, so an ingest after it has processed it), and forget_user flushes
 * its own backend's cache through ek_identity_lock().  Rows this backend
 * wrote are cached before they commit; an abort (of a subtransaction too)
 * flushes the cache.  Rows deleted by hand (DELETE on identity_links by a
 * superuser) are outside the contract: a backend's cache does not see them.
 */
#define EK_IDENTITY_CACHE_MAX 262144	/* entries; flushed when full */

/*
 * An id as a cache entry keeps it, in the entry's own cache line so that a
 * lookup that finds its key compares the id there: up to EK_ID_INLINE
 * bytes as they are (tag: the length), a UUID in its canonical text form
 * (36 characters, lowercase or uppercase hex: analytics.js, Android and
 * iOS anonymousIds) as its 16 bytes, anything else by a pointer to a copy
 * in cache_cxt (EK_ID_LONG; compared with strcmp).  Two ids are equal if
 * and only if their codes are: a text has one code.
 */
#define EK_KNOWN_ENTRY_SIZE 64		/* a CPU cache line */
#define EK_ID_INLINE 19
#define EK_ID_UUID_LOWER 0xFD
#define EK_ID_UUID_UPPER 0xFE
#define EK_ID_LONG 0xFF

typedef struct IdCode
{
	uint8		tag;			/* a length, or EK_ID_UUID_*, EK_ID_LONG */
	char		bytes[EK_ID_INLINE];	/* the bytes, or a pointer (memcpy) */
} IdCode;

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

/*
 * The layout (1.10): an open-addressing table (lib/simplehash.h) of
 * entries keyed by the 64-bit hash of (stream id, id), with the fixed
 * fields inline, so that a lookup touches the entry's slot and, on a key
 * match, compares the id's bytes, so that two ids with the same hash are
 * never taken for one.  Since 1.11 an entry is one CPU cache line (64
 * bytes, the array aligned to it) holding the id too (IdCode: short ids
 * and UUIDs inline, others by pointer): a lookup that finds its id reads
 * one line, where the id's separate copy cost a second miss.  Canonical
 * ids are interned (one copy per string, in a second table), so that two
 * entries' canonical ids compare by pointer.  Entries move when another
 * is inserted (robin hood hashing, or a resize): a pointer to one
 * (IdNode.known) holds only until the next insert, and cache_graph updates
 * the entries the read found before it inserts any.  The dynahash table
 * before it cost a bucket, an element and two strings per lookup, each a
 * CPU cache miss once ~100,000 ids outgrow the CPU's caches.
 */
typedef struct KnownId
{
	uint64		key;			/* hash of (stream id, id): the hash key */
	const char *canon;			/* interned (canon_intern) */
	TimestampTz first;
	TimestampTz last;
	int32		stream_id;
	ItemPointerData tid;		/* where its row was read or written */
	bool		norow;			/* a canonical id without a row: no times */
	char		status;			/* simplehash's */
	IdCode		id;				/* the id, inline (or where it is) */
} KnownId;

StaticAssertDecl(sizeof(KnownId) == EK_KNOWN_ENTRY_SIZE,
				 "a cache entry is one CPU cache line");

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
 * so that an entry is one line; the pointer palloc returned is kept just
 * before the array.
 */
static inline void *
known_allocate(known_hash *tb, Size size)
{
	char	   *raw = MemoryContextAllocExtended(tb->ctx,
												 size + EK_KNOWN_ENTRY_SIZE + sizeof(void *),
												 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	char	   *data = (char *) TYPEALIGN(EK_KNOWN_ENTRY_SIZE,
										  (uintptr_t) (raw + sizeof(void *)));

	((void **) data)[-1] = raw;
	return data;
}

static inline void
known_free(known_hash *tb, void *pointer)
{
	pfree(((void **) pointer)[-1]);
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

static void
cache_flush(void)
{
	if (cache_cxt != NULL)
		MemoryContextReset(cache_cxt);
	known = NULL;
	canons = NULL;
	speculate = false;			/* stored ids are unknown to it now */
	clean_reads = Min(clean_reads, 0);
}

static void
cache_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		cache_flush();
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
		cache_flush();
}

/* One 64-bit hash of (stream id, id): the entry's key. */
static uint64
known_key(int32 stream_id, const char *id, size_t len)
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
static void
cache_get(void)
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
		cache_flush();
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

/* The entry of id (len bytes, key known_key()'s), or NULL. */
static inline KnownId *
cache_find_keyed(int32 stream_id, const char *id, size_t len, uint64 key)
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

static KnownId *
cache_find(int32 stream_id, const char *id)
{
	size_t		len = strlen(id);

	return cache_find_keyed(stream_id, id, len, known_key(stream_id, id, len));
}

/*
 * Start loading the slot where a lookup of key begins into the CPU's
 * cache: the batch's lookups, each a cache miss at full size, then overlap
 * instead of waiting one after the other.
 */
static inline void
cache_prefetch(uint64 key)
{
#if defined(__GNUC__) || defined(__clang__)
	__builtin_prefetch(&known->data[(uint32) key & known->sizemask]);
#endif
}

static void
cache_put(int32 stream_id, const char *id, const char *canon,
		  TimestampTz first, TimestampTz last, ItemPointer tid, bool norow)
{
	bool		found;
	size_t		len = strlen(id);
	KnownId    *k = known_insert(known, known_key(stream_id, id, len), &found);
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

/* cache_put for the entry k of the same id (found by cache_find). */
static void
cache_put_at(KnownId *k, const char *canon, TimestampTz first, TimestampTz last,
			 ItemPointer tid, bool norow)
{
	if (strcmp(k->canon, canon) != 0)
		k->canon = canon_intern(canon);
	k->first = first;
	k->last = last;
	k->tid = *tid;
	k->norow = norow;
}

/* Does the cache say the link changes nothing? */
static bool
link_known(int32 stream_id, const Link *l)
{
	KnownId    *a = cache_find_keyed(stream_id, l->from, l->from_len, l->from_key);
	KnownId    *u;

	if (a == NULL ||
		(u = cache_find_keyed(stream_id, l->to, l->to_len, l->to_key)) == NULL)
		return false;
	if (a->canon != u->canon)
		return false;			/* interned: one pointer per canonical id */
	for (int e = 0; e < 2; e++)
	{
		KnownId    *x = e == 0 ? a : u;

		if (x->norow)
			continue;			/* a canonical id without a row: no times */
		if (l->ts > x->last + EK_IDENTITY_SEEN_STEP ||
			l->ts < x->first - EK_IDENTITY_SEEN_STEP)
			return false;
	}
	return true;
}

/*
 * Remember the rows of the graph's linked ids as they are now: written
 * (wrote) or as read.  First the entries the read found (IdNode.known),
 * updated in place, then the new ones: an insert may move entries.
 */
static void
cache_graph(Graph *g, bool wrote)
{
	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < g->n; i++)
		{
			IdNode	   *x = &g->nodes[i];
			TimestampTz first;
			TimestampTz last;
			bool		norow = false;

			if (x->parent == NULL || !x->linked)
				continue;
			if ((x->known != NULL) != (pass == 0))
				continue;
			if (!x->read && root_of(x) == x)
			{
				/* a canonical id without a row (since 1.9): nothing to time */
				if (!wrote && !x->is_canon)
					continue;
				first = last = 0;
				norow = true;
				ItemPointerSetInvalid(&x->tid);
			}
			else if (!x->read)
			{
				if (!wrote)
					continue;
				first = x->first;	/* a new row */
				last = x->last;
			}
			else if (wrote &&
					 (strcmp(x->stored_canon, root_of(x)->id) != 0 || seen_moved(x)))
			{
				first = Min(x->stored_first, x->first);	/* as the update wrote */
				last = Max(x->stored_last, x->last);
			}
			else
			{
				first = x->stored_first;
				last = x->stored_last;
			}
			if (pass == 0)
				cache_put_at(x->known, root_of(x)->id, first, last, &x->tid,
							 norow);
			else
				cache_put(g->stream_id, x->id, root_of(x)->id, first, last,
						  &x->tid, norow);
		}
	}
	/* the entries may have moved */
	for (int i = 0; i < g->n; i++)
		g->nodes[i].known = NULL;
}

/* Does the cache not know one of the ids that speculation would not read? */
static bool
some_uncached(Graph *g, const char **ids, int nids)
{
	for (int i = 0; i < nids; i++)
		if (g->is_from[i] && !g->is_to[i] && cache_find(g->stream_id, ids[i]) == NULL)
			return true;
	return false;
}

/*
 * The graph of the ids (sorted, unique) as stored: their rows, and nodes
 * for the canonical ids those rows name.  Speculating, the ids the cache
 * does not know are not read: they are taken for absent (see speculate).
 * Otherwise, the read tells whether to speculate next time.
 */
static void
read_graph(Graph *g, const char **ids, int nids, bool locked, bool speculating)
{
	IdentityLink *rows;
	int			nrows;
	ItemPointerData *hints;
	bool	   *uncached;
	KnownId   **knowns;
	bool	   *skip;
	int			nskipped = 0;
	bool	   *probe;
	bool	   *canonical;
	int			nprobe = 0;
	int			nuncached = 0;
	const char **extra;
	int			nextra = 0;

	/* where the cache says the ids' rows were: read there if still live */
	hints = palloc(sizeof(ItemPointerData) * Max(nids, 1));
	uncached = palloc(sizeof(bool) * Max(nids, 1));
	skip = palloc(sizeof(bool) * Max(nids, 1));
	knowns = palloc(sizeof(KnownId *) * Max(nids, 1));
	for (int i = 0; i < nids; i++)
	{
		KnownId    *k = knowns[i] = cache_find(g->stream_id, ids[i]);

		if (k != NULL)
			hints[i] = k->tid;
		else
			ItemPointerSetInvalid(&hints[i]);
		uncached[i] = k == NULL;
		nuncached += k == NULL;

		/*
		 * (only a from id: it is inserted, and the primary key says if it
		 * had a row; a userId without a row is not, since 1.9)
		 */
		skip[i] = speculating && k == NULL && g->is_from[i] && !g->is_to[i];
		/* a canonical id without a row, as cached: see below */
		skip[i] |= k != NULL && k->norow && strcmp(k->canon, ids[i]) == 0;
		nskipped += skip[i];
	}
	/* speculating: the from ids the cache does not know are taken for absent */
	nrows = ek_identity_links_read(g->stream_id, ids, nids, hints,
								   nskipped > 0 ? skip : NULL, &rows);

	/*
	 * A canonical id the cache knows without a row (it had none when
	 * cached) has none still if a row just read names it: sets only merge,
	 * and a merge that re-points it re-points its members with it.  Only
	 * the others are read (one re-pointed since has a row again).
	 */
	if (nskipped > 0)
	{
		bool	   *done = palloc(sizeof(bool) * nids);
		int			nleft_ids = 0;

		for (int i = 0; i < nids; i++)
			done[i] = !(skip[i] && knowns[i] != NULL && knowns[i]->norow);
		for (int r = 0; r < nrows; r++)
		{
			const char **at = bsearch(&rows[r].canonical_id, ids, nids, sizeof(char *), cmp_str);

			if (at != NULL)
				done[at - ids] = true;	/* confirmed: not read */
		}
		for (int i = 0; i < nids; i++)
			nleft_ids += !done[i];
		if (nleft_ids > 0)
		{
			IdentityLink *more;
			int			nmore = ek_identity_links_read(g->stream_id, ids, nids, hints,
													   done, &more);

			if (nmore > 0)
			{
				IdentityLink *all = palloc(sizeof(IdentityLink) * (nrows + nmore));

				memcpy(all, rows, sizeof(IdentityLink) * nrows);
				memcpy(all + nrows, more, sizeof(IdentityLink) * nmore);
				rows = all;
				nrows += nmore;
			}
		}
	}
	if (!speculating && nuncached > 0)
	{
		/* were the ids the cache does not know absent?  Then speculate. */
		int			found = 0;

		for (int r = 0; r < nrows; r++)
		{
			const char **at = bsearch(&rows[r].id, ids, nids, sizeof(char *), cmp_str);

			found += at != NULL && uncached[at - ids];
		}
		if (g->stream_id != spec_stream_id)
		{
			/* one stream at a time: another's ids are not this one's */
			spec_stream_id = g->stream_id;
			clean_reads = Min(clean_reads, 0);
		}
		clean_reads = found == 0 ? clean_reads + 1 : Min(clean_reads, 0);
		speculate = clean_reads >= EK_SPECULATE_AFTER;
	}

	/*
	 * The ids, and the canonical ids their rows name: those that are not
	 * among the ids (mostly none: a set's canonical id links with its
	 * members) sorted apart and merged in, rather than sorting them all.
	 */
	extra = palloc(sizeof(char *) * Max(nrows, 1));
	for (int r = 0; r < nrows; r++)
		if (bsearch(&rows[r].canonical_id, ids, nids, sizeof(char *), cmp_str) == NULL)
			extra[nextra++] = rows[r].canonical_id;
	if (nextra > 1)
		qsort(extra, nextra, sizeof(char *), cmp_str);
	g->nodes = palloc0(sizeof(IdNode) * Max(nids + nextra, 1));
	g->n = 0;
	for (int i = 0, j = 0; i < nids || j < nextra;)
	{
		const char *next;
		KnownId    *known = NULL;

		if (j == nextra || (i < nids && strcmp(ids[i], extra[j]) <= 0))
		{
			known = knowns[i];
			next = ids[i++];
		}
		else
			next = extra[j++];
		if (g->n == 0 || strcmp(g->nodes[g->n - 1].id, next) != 0)
		{
			g->nodes[g->n].id = next;
			g->nodes[g->n].known = known;
			g->nodes[g->n].stored_size = -1;
			g->n++;
		}
	}

	/* a canonical id's row names itself: stored roots */
	for (int r = 0, xi = 0; r < nrows; r++)
	{
		IdNode	   *x;
		IdNode	   *c = node_of(g, rows[r].canonical_id);

		/* the rows come in the ids' order, as the nodes */
		while (xi < g->n && strcmp(g->nodes[xi].id, rows[r].id) < 0)
			xi++;
		x = xi < g->n && strcmp(g->nodes[xi].id, rows[r].id) == 0 ?
			&g->nodes[xi] : node_of(g, rows[r].id);

		x->stored = true;
		x->read = true;
		x->stored_canon = rows[r].canonical_id;
		x->stored_first = rows[r].first_seen;
		x->stored_last = rows[r].last_seen;
		x->tid = rows[r].tid;
		x->parent = c;
		c->is_canon = true;
		c->parent = c;
	}

	/*
	 * Since 1.9 a canonical id has no row: an id without one is new, or the
	 * canonical id of stored members.  The cache knows it for the canonical
	 * ids it saw (sets only merge; a re-pointed one has a row again).
	 * Otherwise, under the lock, a from id is probed (identity_links_canonical):
	 * linking it to another set is a merge.  A userId's stored members
	 * matter only to a merge, which asks for its set's size (set_size).
	 */
	probe = palloc(sizeof(bool) * Max(nids, 1));
	canonical = palloc(sizeof(bool) * Max(nids, 1));
	for (int i = 0, xi = 0; i < nids; i++)
	{
		IdNode	   *x;

		probe[i] = false;
		while (strcmp(g->nodes[xi].id, ids[i]) < 0)
			xi++;
		x = &g->nodes[xi];
		if (x->stored || x->is_canon)
			continue;
		if (knowns[i] != NULL && knowns[i]->norow &&
			strcmp(knowns[i]->canon, ids[i]) == 0)
		{
			x->is_canon = true;
			x->parent = x;
		}
		else if (locked && g->is_from[i])
		{
			probe[i] = true;
			nprobe++;
		}
	}
	if (nprobe > 0)
	{
		ek_identity_links_canonical(g->stream_id, ids, nids, probe, canonical);
		for (int i = 0; i < nids; i++)
			if (probe[i] && canonical[i])
			{
				IdNode	   *x = node_of(g, ids[i]);

				x->is_canon = true;
				x->parent = x;
			}
	}
}

/*
 * Apply the links to the graph, in order.  Without sizes (first, unlocked
 * pass) it stops at the first merge of two sets and returns true, a write
 * being certain; otherwise returns whether anything must be written.
 */
static bool
apply_links(Graph *g, const Link *links, int nlinks, bool with_sizes)
{
	for (int i = 0; i < nlinks; i++)
	{
		const Link *l = &links[i];
		IdNode	   *u = node_of(g, l->to);
		IdNode	   *a = node_of(g, l->from);
		IdNode	   *ru;
		IdNode	   *ra;

		CHECK_FOR_INTERRUPTS();
		for (int e = 0; e < 2; e++)
		{
			IdNode	   *x = e == 0 ? u : a;

			if (!x->linked)
				x->first = x->last = l->ts;
			x->linked = true;
			x->first = Min(x->first, l->ts);
			x->last = Max(x->last, l->ts);
		}
		if (u->parent == NULL)
		{
			/*
			 * a new user, or (not probed) the canonical id of stored members:
			 * its own canonical id (set_size counts it)
			 */
			u->parent = u;
		}
		ru = root_of(u);
		if (a->parent == NULL)
		{
			a->parent = ru;
			ru->added++;
			continue;
		}
		ra = root_of(a);
		if (ra == ru)
			continue;
		if (!with_sizes)
			return true;
		/*
		 * a merge: the alias's user wins, else the larger set (both sizes
		 * asked for: they tell whether the loser has stored members)
		 */
		{
			int64		su = set_size(g, ru);
			int64		sa = set_size(g, ra);

			if (l->alias || su >= sa)
			{
				ra->parent = ru;
				ru->added += sa;
			}
			else
			{
				ru->parent = ra;
				ra->added += su;
			}
		}
	}

	for (int i = 0; i < g->n; i++)
	{
		IdNode	   *x = &g->nodes[i];
		IdNode	   *r;

		if (x->parent == NULL)
			continue;
		r = root_of(x);
		/* a new member, or a rowless canonical id losing a merge */
		if (!x->stored && (x->linked || x->is_canon) && r != x)
			return true;
		if (x->stored && strcmp(r->id, x->stored_canon) != 0)
			return true;
		if (x->linked && seen_moved(x))
			return true;
	}
	return false;
}

/*
 * Write what the graph changed: the batch's changed ids first (updated in
 * place in C, where the read under the lock found their rows), then the
 * re-pointed sets (after the in-place updates: a changed row names its new
 * canonical id, which no set is re-pointed from, so the re-pointing does
 * not touch a row updated here), then the batch's new ids (inserted in C,
 * catalog/identity.c).  Caller: holds the identity lock, and the graph was
 * read under it.
 */
static int
write_graph(Graph *g)
{
	Datum	   *olds = palloc(sizeof(Datum) * g->n);
	Datum	   *news = palloc(sizeof(Datum) * g->n);
	IdentityLink *added = palloc(sizeof(IdentityLink) * g->n);
	IdentityLink *changed = palloc(sizeof(IdentityLink) * g->n);
	IdNode	  **added_nodes = palloc(sizeof(IdNode *) * g->n);
	IdNode	  **changed_nodes = palloc(sizeof(IdNode *) * g->n);
	Datum	   *rowless_olds = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_news = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_firsts = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_lasts = palloc(sizeof(Datum) * g->n);
	bool	   *rowless_nulls = palloc(sizeof(bool) * g->n);
	int			nadded = 0;
	int			nchanged = 0;
	int			nleft;
	int			nrepoint = 0;
	int			nrowless = 0;

	for (int i = 0; i < g->n; i++)
	{
		IdNode	   *x = &g->nodes[i];
		IdNode	   *r;

		if (x->parent == NULL)
			continue;
		r = root_of(x);
		/* a stored set whose canonical id lost a merge */
		if (x->is_canon && r != x)
		{
			olds[nrepoint] = CStringGetTextDatum(x->id);
			news[nrepoint] = CStringGetTextDatum(r->id);
			nrepoint++;
			if (!x->stored)
			{
				/* no row (since 1.9): one now, naming the winner */
				rowless_olds[nrowless] = olds[nrepoint - 1];
				rowless_news[nrowless] = news[nrepoint - 1];
				rowless_firsts[nrowless] = TimestampTzGetDatum(x->first);
				rowless_lasts[nrowless] = TimestampTzGetDatum(x->last);
				rowless_nulls[nrowless] = !x->linked;
				ItemPointerSetInvalid(&x->tid);
				nrowless++;
				continue;
			}
		}
		if (!x->linked)
			continue;
		if (!x->stored)
		{
			if (r == x)
				continue;		/* a canonical id: no row (since 1.9) */
			added[nadded].id = (char *) x->id;
			added[nadded].canonical_id = (char *) r->id;
			added[nadded].first_seen = x->first;
			added[nadded].last_seen = x->last;
			added_nodes[nadded] = x;
			nadded++;
		}
		else if (strcmp(x->stored_canon, r->id) != 0 || seen_moved(x))
		{
			/* read under the lock: its tid and times are current */
			changed[nchanged].id = (char *) x->id;
			changed[nchanged].canonical_id = (char *) r->id;
			changed[nchanged].first_seen = Min(x->stored_first, x->first);
			changed[nchanged].last_seen = Max(x->stored_last, x->last);
			changed[nchanged].tid = x->tid;
			changed_nodes[nchanged] = x;
			nchanged++;
		}
	}
	/* rowless canonical ids re-pointed: from their members, before these change */
	if (nrowless > 0)
		ek_identity_links_add_canonical(g->stream_id,
										ek_make_array(rowless_olds, NULL, nrowless, TEXTOID),
										ek_make_array(rowless_news, NULL, nrowless, TEXTOID),
										ek_make_array(rowless_firsts, rowless_nulls, nrowless,
													  TIMESTAMPTZOID),
										ek_make_array(rowless_lasts, rowless_nulls, nrowless,
													  TIMESTAMPTZOID));
	nleft = ek_identity_links_update_in_place(g->stream_id, changed, nchanged);
	for (int i = 0; i < nchanged; i++)	/* new versions */
		(nleft == 0 ? changed_nodes[i] : node_of(g, changed[i].id))->tid = changed[i].tid;
	if (nleft > 0)
	{
		/* rows not where the read found them (changed by hand): the upsert */
		Datum	   *ids = palloc(sizeof(Datum) * nleft);
		Datum	   *canons = palloc(sizeof(Datum) * nleft);
		Datum	   *firsts = palloc(sizeof(Datum) * nleft);
		Datum	   *lasts = palloc(sizeof(Datum) * nleft);

		for (int i = 0; i < nleft; i++)
		{
			/* (the upsert's version: where, this backend does not know) */
			ItemPointerSetInvalid(&node_of(g, changed[i].id)->tid);
			ids[i] = CStringGetTextDatum(changed[i].id);
			canons[i] = CStringGetTextDatum(changed[i].canonical_id);
			firsts[i] = TimestampTzGetDatum(changed[i].first_seen);
			lasts[i] = TimestampTzGetDatum(changed[i].last_seen);
		}
		ek_identity_links_update(g->stream_id,
								 ek_make_array(ids, NULL, nleft, TEXTOID),
								 ek_make_array(canons, NULL, nleft, TEXTOID),
								 ek_make_array(firsts, NULL, nleft, TIMESTAMPTZOID),
								 ek_make_array(lasts, NULL, nleft, TIMESTAMPTZOID));
	}
	if (nrepoint > 0)
		ek_identity_links_repoint(g->stream_id,
								  ek_make_array(olds, NULL, nrepoint, TEXTOID),
								  ek_make_array(news, NULL, nrepoint, TEXTOID));
	ek_identity_links_insert(g->stream_id, added, nadded);
	for (int i = 0; i < nadded; i++)
		added_nodes[i]->tid = added[i].tid;
	return nrepoint + nadded + nchanged;
}

typedef struct Speculation
{
	Graph	   *g;
	const char **ids;
	int			nids;
	const Link *links;
	int			nlinks;
	int			nwritten;
} Speculation;

static void
speculate_write(void *arg)
{
	Speculation *sp = arg;

	read_graph(sp->g, sp->ids, sp->nids, true, true);
	sp->nwritten = apply_links(sp->g, sp->links, sp->nlinks, true) ? write_graph(sp->g) : 0;
}

/*
 * Read and write the batch's links speculating (see speculate), in a
 * subtransaction; false if it must be done again the ordinary way (an id
 * taken for absent was stored, or there was nothing to speculate on).
 * Caller: holds the identity lock.
 */
static bool
write_speculatively(Graph *g, const char **ids, int nids,
					const Link *links, int nlinks, int *nwritten)
{
	Speculation sp = {g, ids, nids, links, nlinks, 0};
	ErrorData  *edata;

	if (!some_uncached(g, ids, nids))
		return false;			/* no probe to save */
	in_speculation = true;
	edata = ek_run_in_subtransaction(speculate_write, &sp);
	in_speculation = false;
	if (edata == NULL)
	{
		*nwritten = sp.nwritten;
		return true;
	}
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(edata);
	FreeErrorData(edata);
	speculate = false;
	clean_reads = EK_SPECULATE_AFTER - EK_SPECULATE_AFTER_MISS;
	return false;
}

/*
 * Take the stream's identity lock until the end of the transaction, waiting
 * for it unless dont_wait; returns whether it was taken.
 */
static bool
acquire_identity_lock(int32 stream_id, bool dont_wait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) stream_id,
						 EK_IDENTITY_LOCK_KEY, EK_IDENTITY_LOCK_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, dont_wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Take the stream's identity lock until the end of the transaction (also
 * forget_user's, so that no ingest links the ids it erases meanwhile).
 */
void
ek_identity_lock(int32 stream_id)
{
	(void) acquire_identity_lock(stream_id, false);
	/* forget_user removes links: this backend's cache forgets them all */
	cache_flush();
}

/* Take the stream's identity lock if no one holds it; never waits. */
static bool
try_identity_lock(int32 stream_id)
{
	return acquire_identity_lock(stream_id, true);
}

/*
 * Keep the identity graph of the events a batch stored (in item order).
 * Returns the rows written (0 when the graph already said it all).
 * Caller: SPI connected, as the ingesting role (the catalog statements
 * run as the extension owner).
 */
int
ek_identity_link_events(const StreamInfo *stream, SegmentEvent **events, int n)
{
	Link	   *links = NULL;
	int			nlinks = 0;
	const char **ids;
	int			nids = 0;
	int			nunique = 0;
	int			nwritten;
	Graph		g;

	if (n == 0 || !ek_identity_installed())
		return 0;
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = events[i];

		if (ev->user_id == NULL)
			continue;
		for (int k = 0; k < 2; k++)
		{
			const char *from = k == 0 ? ev->anonymous_id : ev->previous_id;

			if (from == NULL || strcmp(from, ev->user_id) == 0 ||
				(k == 1 && strcmp(ev->type, "alias") != 0))
				continue;
			if (links == NULL)
				links = palloc(sizeof(Link) * 2 * n);
			links[nlinks].from = from;
			links[nlinks].to = ev->user_id;
			links[nlinks].alias = k == 1;
			links[nlinks].ts = ev->ts;
			nlinks++;
		}
	}
	if (nlinks == 0)
		return 0;

	/* drop the links the cache says change nothing */
	cache_get();
	for (int i = 0; i < nlinks; i++)
	{
		Link	   *l = &links[i];

		l->from_len = strlen(l->from);
		l->from_key = known_key(stream->stream_id, l->from, l->from_len);
		cache_prefetch(l->from_key);
		l->to_len = strlen(l->to);
		l->to_key = known_key(stream->stream_id, l->to, l->to_len);
		cache_prefetch(l->to_key);
	}
	{
		int			nkept = 0;

		for (int i = 0; i < nlinks; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (!link_known(stream->stream_id, &links[i]))
				links[nkept++] = links[i];
		}
		nlinks = nkept;
	}
	if (nlinks == 0)
	{
		last_stream_id = stream->stream_id;
		last_wrote = false;
		return 0;
	}

	/* the batch's ids, sorted and unique, and what the links name each as */
	{
		BatchId    *all = palloc(sizeof(BatchId) * 2 * nlinks);
		bool	   *is_from = palloc0(sizeof(bool) * 2 * nlinks);
		bool	   *is_to = palloc0(sizeof(bool) * 2 * nlinks);

		for (int i = 0; i < nlinks; i++)
		{
			all[nids].id = links[i].from;
			all[nids++].from = true;
			all[nids].id = links[i].to;
			all[nids++].from = false;
		}
		sort_batch_ids(all, nids);
		ids = palloc(sizeof(char *) * nids);
		for (int i = 0; i < nids; i++)
		{
			if (nunique == 0 || strcmp(ids[nunique - 1], all[i].id) != 0)
				ids[nunique++] = all[i].id;
			if (all[i].from)
				is_from[nunique - 1] = true;
			else
				is_to[nunique - 1] = true;
		}
		g.is_from = is_from;
		g.is_to = is_to;
	}

	g.stream_id = stream->stream_id;
	if (!(last_wrote && last_stream_id == stream->stream_id &&
		  try_identity_lock(stream->stream_id)))
	{
		/*
		 * A read without the lock: most batches of a known audience stop
		 * here (it never speculates: a batch whose links are known never
		 * waits for the lock, whatever this backend's cache knows).
		 */
		read_graph(&g, ids, nunique, false, false);
		if (!apply_links(&g, links, nlinks, false))
		{
			cache_graph(&g, false);
			last_stream_id = stream->stream_id;
			last_wrote = false;
			return 0;
		}
	}

	/* something to write: one batch at a time per stream, from fresh rows */
	(void) acquire_identity_lock(stream->stream_id, false);
	if (!(speculate && spec_stream_id == stream->stream_id &&
		  write_speculatively(&g, ids, nunique, links, nlinks, &nwritten)))
	{
		read_graph(&g, ids, nunique, true, false);
		nwritten = apply_links(&g, links, nlinks, true) ? write_graph(&g) : 0;
	}
	cache_graph(&g, nwritten > 0);
	last_stream_id = stream->stream_id;
	last_wrote = nwritten > 0;
	return nwritten;
}

/*
 * Give the events (those without problems so far) that carry a
 * suppressed id the problem "suppressed".  Caller: SPI connected.
 */
void
ek_identity_check_suppressed(const StreamInfo *stream, SegmentEvent *events, int n)
{
	Datum	   *elems;
	int			nelems = 0;
	List	   *matched;
	const char **hits;
	int			nhits = 0;
	ListCell   *lc;

	if (n == 0 || !ek_suppressions_exist(stream->stream_id))
		return;
	elems = palloc(sizeof(Datum) * 3 * n);
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &events[i];

		if (!ek_event_ok(ev))
			continue;
		if (ev->user_id)
			elems[nelems++] = CStringGetTextDatum(ev->user_id);
		if (ev->anonymous_id)
			elems[nelems++] = CStringGetTextDatum(ev->anonymous_id);
		if (ev->previous_id)
			elems[nelems++] = CStringGetTextDatum(ev->previous_id);
	}
	if (nelems == 0)
		return;
	matched = ek_suppressions_match(stream->stream_id,
									ek_make_array(elems, NULL, nelems, TEXTOID));
	if (matched == NIL)
		return;
	hits = palloc(sizeof(char *) * list_length(matched));
	foreach(lc, matched)
		hits[nhits++] = lfirst(lc);
	qsort(hits, nhits, sizeof(char *), cmp_str);

	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &events[i];
		const char *fields[3] = {"userId", "anonymousId", "previousId"};
		const char *values[3] = {ev->user_id, ev->anonymous_id, ev->previous_id};

		CHECK_FOR_INTERRUPTS();
		if (!ek_event_ok(ev))
			continue;
		for (int k = 0; k < 3; k++)
			if (values[k] != NULL &&
				bsearch(&values[k], hits, nhits, sizeof(char *), cmp_str) != NULL)
			{
				ek_add_problem(&ev->problems, EK_REASON_SUPPRESSED,
							   "the event's %s was erased by eventkit.forget_user() and is suppressed",
							   fields[k]);
				break;
			}
	}
}
