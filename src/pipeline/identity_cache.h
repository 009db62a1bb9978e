/*-------------------------------------------------------------------------
 *
 * identity_cache.h
 *	  The identity stage's cache of known links (identity_cache.c): per
 *	  backend, the ids of its recent batches with their canonical id, the
 *	  first/last seen times and the heap tid their rows had when it last
 *	  read or wrote them.  What a link may take from it, and why that is
 *	  exact, is pipeline/identity.c's (link_known, read_graph, cache_graph).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_IDENTITY_CACHE_H
#define EK_PIPELINE_IDENTITY_CACHE_H

#include "postgres.h"

#include "storage/itemptr.h"
#include "utils/timestamp.h"

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


extern void ek_idcache_get(void);
extern void ek_idcache_flush(void);
extern uint64 ek_idcache_flushes(void);
extern void ek_idcache_in_speculation(bool running);
extern uint64 ek_idcache_key(int32 stream_id, const char *id, size_t len);
extern void ek_idcache_prefetch(uint64 key);
extern KnownId *ek_idcache_find_keyed(int32 stream_id, const char *id,
									  size_t len, uint64 key);
extern KnownId *ek_idcache_find(int32 stream_id, const char *id);
extern void ek_idcache_put(int32 stream_id, const char *id, const char *canon,
						   TimestampTz first, TimestampTz last, ItemPointer tid,
						   bool norow);
extern void ek_idcache_put_at(KnownId *k, const char *canon, TimestampTz first,
							  TimestampTz last, ItemPointer tid, bool norow);

#endif							/* EK_PIPELINE_IDENTITY_CACHE_H */
