/*-------------------------------------------------------------------------
 *
 * wdelta.h
 *	  The refresh's fold of a worker delta table distributed with its
 *	  stream, by generations (wdelta.c), and the generation the realtime
 *	  view counts from.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_WDELTA_H
#define EK_ROLLUP_WDELTA_H

#include "postgres.h"

#include "rollup/rollup.h"

extern int64 ek_rollup_fold_worker_gens(const RollupDef *def, const char *qtable,
										const char *keyname, Oid wdelta,
										int32 rollup_id, int64 max_events, bool complete,
										RollupSkips *skips);
extern bool ek_rollup_wdelta_generational(Oid wdelta);
extern int64 ek_rollup_wdelta_folded(int32 rollup_id);

#endif							/* EK_ROLLUP_WDELTA_H */
