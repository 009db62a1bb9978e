/*-------------------------------------------------------------------------
 *
 * btree_probe.h
 *	  Equality probes of a btree index for keys in ascending order
 *	  (btree_probe.c): one descent for the keys that fall on the same leaf
 *	  page, and the heap tids of their entries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_BTREE_PROBE_H
#define EK_UTIL_BTREE_PROBE_H

#include "postgres.h"

#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/*
 * What ek_btree_probe_sorted() found for one key: the heap tids of its
 * entries (tids[start] to tids[start + count - 1], in the index's order),
 * or, when its entries may go on past the leaf page it searched (equal
 * keys on the next page too), nothing and fallback set: the caller probes
 * that key with an ordinary index scan.
 */
typedef struct EkProbeResult
{
	int			start;
	int			count;
	bool		fallback;
} EkProbeResult;

extern int	ek_btree_probe_sorted(Relation index, Snapshot snapshot, Datum first,
								  const Datum *seconds, int n, EkProbeResult *results,
								  ItemPointerData **tids);

#endif							/* EK_UTIL_BTREE_PROBE_H */
