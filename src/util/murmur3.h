/*-------------------------------------------------------------------------
 *
 * murmur3.h
 *	  MurmurHash3's mixing steps (Austin Appleby's, public domain), shared
 *	  by the hashes eventkit owns and pins: the dedup ledger's message id
 *	  keys and filter probes (pipeline/dedup/ledger_key.c, ledger_filter.c)
 *	  and the hll library's text hash computed by eventkit
 *	  (rollup/hll_hash.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_MURMUR3_H
#define EK_UTIL_MURMUR3_H

#include "postgres.h"

/* a 64-bit word rotated left by r bits (0 < r < 64) */
static inline uint64
ek_rotl64(uint64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* murmur3's 64-bit finalizer */
static inline uint64
ek_fmix64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

#endif							/* EK_UTIL_MURMUR3_H */
