/*-------------------------------------------------------------------------
 *
 * backfill.h
 *	  A rollup's history from all the stream's rows in one GROUP BY
 *	  (backfill.c): the backfill of a rollup of a distributed stream, and
 *	  the new measures of add_rollup_measures.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_BACKFILL_H
#define EK_ROLLUP_BACKFILL_H

#include "postgres.h"

#include "rollup/rollup.h"

extern int64 ek_rollup_backfill_all(const RollupDef *def, const char *qtable);
extern void ek_rollup_compute_measures(const RollupDef *added, const RollupDef *full,
									   const char *qtable, int64 watermark);

#endif							/* EK_ROLLUP_BACKFILL_H */
