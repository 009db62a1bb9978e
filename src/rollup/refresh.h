/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refreshing a rollup (refresh.c), for the refresh_rollup job; and
 *	  rebuilding the buckets that held erased rows, for forget_user.  And
 *	  what the rollups' other SQL entry points (manage.c) share with the
 *	  refresh: the refresh of one catalog row, and the helpers of both.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_REFRESH_H
#define EK_ROLLUP_REFRESH_H

#include "postgres.h"

#include "fmgr.h"
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"

#include "catalog/rollups.h"
#include "rollup/rollup.h"

extern int64 ek_refresh_rollup_job(Oid relid);
extern List *ek_rollups_catch_up(int32 stream_id);
extern int64 ek_rollups_rebuild_buckets(List *rows, Datum ts);

/* for manage.c */
extern int64 ek_rollup_refresh(RollupRow *row, int64 max_events, bool complete);
extern text *ek_rollup_text_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern RangeVar *ek_rollup_rangevar(text *name);
extern void ek_rollup_find(text *name, bool for_update, RollupRow *row);
extern void ek_rollup_row_def(const RollupRow *row, RollupDef *def);
extern List *ek_rollups_stream_relids(int32 stream_id);

#endif							/* EK_ROLLUP_REFRESH_H */
