/*-------------------------------------------------------------------------
 *
 * ledger_key.c
 *	  The hashes of message ids the dedup ledger stores: ek_id_hash64, behind
 *	  the sealed generations' filters (ledger_filter.c), and the 128-bit
 *	  ledger key every generation is keyed by (dedup.c, ledger.c).
 *
 *	  Ledger key, format 1: 16 bytes, stored as uuid.  Bytes 0..7 are
 *	  ek_id_hash64(id) little-endian, so a sealed generation's filter is
 *	  built from its keys alone and filters built from the ids before 1.5
 *	  stay valid; bytes 8..15 are a second lane (lane_b),
 *	  little-endian: the same kind of word loop with murmur3's other
 *	  constants, rotations and seed (C1 = 0x87c37b91114253d5,
 *	  C2 = 0x4cf5ad432745937f, arithmetic modulo 2^64):
 *		h = 0x2545f4914f6cdd1d xor (length * 0xc2b2ae3d27d4eb4f)
 *		each whole 8-byte word w: h ^= rotl(w * C2, 33) * C1;
 *								  h = rotl(h, 31) * 5 + 0x38495ab5
 *		the last 0..7 bytes as one zero-extended word t:
 *								  h ^= rotl(t * C2, 33) * C1
 *		h ^= h >> 29; the lane is fmix64(h) (murmur3's finalizer).
 *	  test/pinned/EkReference.pm implements both from this description
 *	  (test/t/017_pinned_formats.pl compares).  Both read the id's bytes as
 *	  little-endian words, so a key is the same on every platform (ledgers
 *	  are dumped and restored elsewhere).  The user key of an event is kept
 *	  as ek_id_hash64 of it (forget_user).
 *
 *	  Keys are stored and dumped, so neither hash may ever change:
 *	  sql/pinned_formats.sql pins their answers.  Why 128 bits are enough,
 *	  and what a collision would do: docs/architecture.md, "The dedup
 *	  ledger".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "ledger_key.h"

/*
 * What tells the two lanes apart: seed, length multiplier, the two word
 * multipliers (in the order they are applied), the word and state
 * rotations, the per-word addend, and the shift of an extra mix before the
 * finalizer (0: none).
 */
typedef struct IdHashLane
{
	uint64		seed;
	uint64		len_mult;
	uint64		m1;
	uint64		m2;
	int			word_rot;
	int			state_rot;
	uint64		addend;
	int			final_shift;
} IdHashLane;

/* ek_id_hash64: murmur3's x64 constants */
static const IdHashLane lane_a = {
	UINT64CONST(0x6b8b4567327b23c6), UINT64CONST(0x9e3779b97f4a7c15),
	UINT64CONST(0x87c37b91114253d5), UINT64CONST(0x4cf5ad432745937f),
	31, 27, 0x52dce729, 0
};

/* the ledger key's second lane: the other constants, rotations and seed */
static const IdHashLane lane_b = {
	UINT64CONST(0x2545f4914f6cdd1d), UINT64CONST(0xc2b2ae3d27d4eb4f),
	UINT64CONST(0x4cf5ad432745937f), UINT64CONST(0x87c37b91114253d5),
	33, 31, 0x38495ab5, 29
};

/*
 * One lane over a message id's bytes (murmur3-style mixing, input read as
 * little-endian words, so the same on every platform: keys and filters are
 * stored and may be restored elsewhere).  Inlined with a constant lane, so
 * each caller compiles to its own loop.
 */
static pg_attribute_always_inline uint64
id_hash_lane(const char *id, size_t len, const IdHashLane *lane)
{
	const unsigned char *p = (const unsigned char *) id;
	uint64		h = lane->seed ^ ((uint64) len * lane->len_mult);
	uint64		k;

	while (len >= 8)
	{
		memcpy(&k, p, 8);
#ifdef WORDS_BIGENDIAN
		k = pg_bswap64(k);
#endif
		k *= lane->m1;
		k = ek_rotl64(k, lane->word_rot);
		k *= lane->m2;
		h ^= k;
		h = ek_rotl64(h, lane->state_rot) * 5 + lane->addend;
		p += 8;
		len -= 8;
	}
	k = 0;
	for (size_t i = 0; i < len; i++)
		k |= (uint64) p[i] << (8 * i);
	k *= lane->m1;
	k = ek_rotl64(k, lane->word_rot);
	k *= lane->m2;
	h ^= k;
	if (lane->final_shift > 0)
		h ^= h >> lane->final_shift;
	return ek_fmix64(h);
}

/* 64-bit hash of a message id's bytes: the filters' hash, a key's first lane */
uint64
ek_id_hash64(const char *id, size_t len)
{
	return id_hash_lane(id, len, &lane_a);
}

static inline void
put_le64(uint8 *out, uint64 v)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8) (v >> (8 * i));
}

/*
 * The ledger key of a message id (format 1, stored in every ledger
 * generation, so it must never change; sql/pinned_formats.sql pins it):
 * 16 bytes, the first 8 ek_id_hash64(id) little-endian (so a generation's
 * filter is built from its keys alone), the last 8 the second lane
 * lane_b of the id, little-endian.  Keys compare bytewise (uuid's order).
 */
void
ek_ledger_key(const char *id, size_t len, pg_uuid_t *out)
{
	put_le64(out->data, ek_id_hash64(id, len));
	put_le64(out->data + 8, id_hash_lane(id, len, &lane_b));
}

/* The filter hash of a ledger key: its first lane, ek_id_hash64 of the id. */
uint64
ek_ledger_key_hash64(const pg_uuid_t *key)
{
	uint64		h = 0;

	for (int i = 0; i < 8; i++)
		h |= (uint64) key->data[i] << (8 * i);
	return h;
}

/* ---------------------------------------------------------------------
 * For the tests that pin the hashes (eventkit_internal, revoked from
 * PUBLIC); ledger_key also seeds a Citus ledger (dist_ledger.c) and
 * converts ledgers in the 1.4 -> 1.5 update
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(eventkit_id_hash64);
PG_FUNCTION_INFO_V1(eventkit_ledger_key);

/* eventkit_internal.id_hash64(text) RETURNS bigint */
Datum
eventkit_id_hash64(PG_FUNCTION_ARGS)
{
	text	   *id = PG_GETARG_TEXT_PP(0);

	PG_RETURN_INT64((int64) ek_id_hash64(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id)));
}

/* eventkit_internal.ledger_key(text) RETURNS uuid: a message id's ledger key */
Datum
eventkit_ledger_key(PG_FUNCTION_ARGS)
{
	text	   *id = PG_GETARG_TEXT_PP(0);
	pg_uuid_t  *key = palloc(sizeof(pg_uuid_t));

	ek_ledger_key(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id), key);
	PG_RETURN_UUID_P(key);
}
