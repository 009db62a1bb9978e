/*-------------------------------------------------------------------------
 *
 * fold.h
 *	  The fold (fold.c): rows of a stream, or of a rollup's delta table,
 *	  aggregated in C into the rollup's groups and merged into its table;
 *	  or the rows of given buckets, to rebuild them (forget_user).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_FOLD_H
#define EK_ROLLUP_FOLD_H

#include "postgres.h"

#include "executor/spi.h"
#include "nodes/params.h"
#include "utils/array.h"

#include "rollup/rollup.h"

extern int64 ek_rollup_fold(const RollupDef *def, const char *qtable,
							const char *keyname, int64 from, int64 to,
							ArrayType *batches, RollupSkips *skips);
extern int64 ek_rollup_fold_buckets(const RollupDef *def, const char *qtable,
									const char *keyname, int64 to, Datum buckets,
									TimestampTz lo, TimestampTz hi, RollupSkips *skips);
extern int64 ek_rollup_fold_deltas(const RollupDef *def, const char *qtable,
								   const char *keyname, Oid delta, const char *qdelta,
								   bool delta_skips, int64 from, int64 to,
								   RollupSkips *skips, bool *deleted);
extern int64 ek_rollup_fold_worker_deltas(const RollupDef *def, const char *qtable,
										  const char *keyname, const char *sql, int nargs,
										  Oid *argtypes, Datum *args, RollupSkips *skips);
extern void ek_rollup_fold_delta(const RollupDef *def, const char *qdelta, Oid delta,
								 const char *shard_key, int64 batch_id, bool delta_skips,
								 SPIPlanPtr source, ParamListInfo params,
								 SPIPlanPtr *merge_plan);
/* row i of a batch's source SELECT, made in C (delta.c) */
typedef void (*RollupRowFn) (void *arg, int i, Datum *values, bool *isnull);
extern void ek_rollup_fold_delta_rows(const RollupDef *def, const char *qdelta, Oid delta,
									  const char *shard_key, int64 batch_id, bool delta_skips, int n,
									  RollupRowFn row, void *arg, SPIPlanPtr *merge_plan);

#endif							/* EK_ROLLUP_FOLD_H */
