/*-------------------------------------------------------------------------
 *
 * hll.h
 *	  hll values made without the hll extension's aggregates (hll.c): the
 *	  fold's and the realtime view's hll of a group's hashes.
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

#endif							/* EK_ROLLUP_HLL_H */
