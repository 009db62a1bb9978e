/*-------------------------------------------------------------------------
 *
 * derived.h
 *	  Rollups of rollups (derived.c): the recompute of a derived rollup's
 *	  buckets from its source's partial states, for refresh.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_DERIVED_H
#define EK_ROLLUP_DERIVED_H

#include "postgres.h"

#include "catalog/rollups.h"
#include "nodes/pg_list.h"
#include "rollup/rollup.h"
#include "utils/timestamp.h"

extern bool ek_rollup_bucket_divides(const Interval *inner, bool inner_origin,
									 const Interval *outer);
extern void ek_rollup_recompute_derived(const RollupRow *row, RollupTouched *touched);
extern void ek_rollup_refresh_derived(List *derived, RollupTouched *touched, int64 to,
									  int64 events);

#endif							/* EK_ROLLUP_DERIVED_H */
