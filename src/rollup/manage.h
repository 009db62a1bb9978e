/*-------------------------------------------------------------------------
 *
 * manage.h
 *	  A stream's rollups' realtime views made again and their worker delta
 *	  tables made (manage.c), for distribute_stream and
 *	  undistribute_stream.  (manage.c's SQL entry points are reached
 *	  through pg_proc.)
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_MANAGE_H
#define EK_ROLLUP_MANAGE_H

#include "postgres.h"

extern void ek_rollups_remake_views(int32 stream_id);
extern void ek_rollups_make_worker_deltas(int32 stream_id);

#endif							/* EK_ROLLUP_MANAGE_H */
