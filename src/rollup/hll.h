/*-------------------------------------------------------------------------
 *
 * hll.h
 *	  hll values made without the hll extension's aggregates (hll.c): the
 *	  fold's and the realtime view's hll of a group's hashes, and the
 *	  refresh's merge of a group's hashes into a rollup row's hll; the
 *	  library's hash of a text (hll_hash.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_HLL_H
#define EK_ROLLUP_HLL_H

#include "postgres.h"

/* the parameters of an hll, from an EMPTY one (see ek_hll_format) */
typedef struct EkHllFormat
{
	uint8		header[3];		/* an EXPLICIT hll's header */
	int			explicit_max;	/* most hashes an EXPLICIT hll holds; 0: none */
} EkHllFormat;

extern bool ek_hll_format(Datum empty, EkHllFormat *fmt);
extern int	ek_hll_distinct(Datum *hashes, int n);
extern Datum ek_hll_explicit(const EkHllFormat *fmt, const Datum *hashes, int n);

/*
 * hll_hash_text's hash of len bytes; the library's max_sparse and
 * hll_empty() in this session (hll_hash.c)
 */
extern int64 ek_hll_hash_bytes(const char *data, int len, uint32 seed);
extern int	ek_hll_session_max_sparse(const char *nsp);
extern Datum ek_hll_session_empty(Oid empty_fn, int log2m);

/* the hll library's max_sparse could not be asked (ek_hll_max_sparse) */
#define EK_HLL_MAX_SPARSE_UNKNOWN (-2)

extern int	ek_hll_max_sparse(const char *nsp);
extern bool ek_hll_union_hashes(const EkHllFormat *fmt, Datum old, const Datum *hashes,
								int n, int max_sparse, Datum *result);

#endif							/* EK_ROLLUP_HLL_H */
