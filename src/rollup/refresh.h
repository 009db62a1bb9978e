/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refreshing a rollup (refresh.c), for the refresh_rollup job; and
 *	  rebuilding the buckets that held erased rows, for forget_user.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_REFRESH_H
#define EK_ROLLUP_REFRESH_H

#include "postgres.h"

#include "nodes/pg_list.h"

extern int64 ek_refresh_rollup_job(Oid relid);
extern List *ek_rollups_catch_up(int32 stream_id);
extern int64 ek_rollups_rebuild_buckets(List *rows, Datum ts);
extern void ek_rollups_remake_views(int32 stream_id);
extern void ek_rollups_make_worker_deltas(int32 stream_id);

#endif							/* EK_ROLLUP_REFRESH_H */
