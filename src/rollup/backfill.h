/*-------------------------------------------------------------------------
 *
 * backfill.h
 *	  A rollup's history from all the stream's rows in one GROUP BY
 *	  (backfill.c): the backfill of a rollup of a distributed stream, the
 *	  new measures of add_rollup_measures, and the rebuild of a stream's
 *	  rollups by undistribute_stream.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_BACKFILL_H
#define EK_ROLLUP_BACKFILL_H

#include "postgres.h"

#include "rollup/rollup.h"

extern int64 ek_rollup_backfill_all(const RollupDef *def, const char *qtable,
									 RollupSkips *skips);
extern int	ek_rollups_rebuild(int32 stream_id, int64 watermark);
extern void ek_rollup_compute_measures(const RollupDef *added, const RollupDef *full,
									   const char *qtable, int64 watermark);

#endif							/* EK_ROLLUP_BACKFILL_H */
