/*-------------------------------------------------------------------------
 *
 * delta.h
 *	  A rollup's per-batch deltas (delta.c): ingest writes them, a refresh
 *	  merges them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_DELTA_H
#define EK_ROLLUP_DELTA_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"
#include "rollup/rollup.h"

extern void ek_rollup_write_deltas(const StreamInfo *stream, SegmentEvent **events,
								   int n, int64 batch_id, TimestampTz received_at,
								   const char *local_key);
extern void ek_rollup_no_deltas(const StreamInfo *stream, int n);
extern Oid	ek_rollup_delta_relid(Oid rollup_relid);
extern Oid	ek_rollup_wdelta_relid(Oid rollup_relid);
extern void ek_rollup_make_worker_delta(const RollupDef *def, Oid nsp, const char *rollup_name,
										Oid rollup_relid, Oid owner);
extern void ek_rollup_worker_delta_depends(Oid rollup_relid);
extern bool ek_rollup_wdelta_distributed(Oid wdelta);
extern void ek_rollup_check_no_worker_events(Oid stream, int32 stream_id);
extern int64 ek_rollup_merge_worker_deltas(const RollupDef *def, const char *qtable,
										   const char *keyname, Oid wdelta,
										   int64 max_events, RollupSkips *skips);
extern bool ek_rollup_delta_has_skips(const RollupDef *def, Oid delta);
extern int64 ek_rollup_merge_deltas(const RollupDef *def, const char *qtable,
									const char *keyname, Oid delta, int64 from, int64 to,
									RollupSkips *skips);

#endif							/* EK_ROLLUP_DELTA_H */
