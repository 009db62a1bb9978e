/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refreshing a rollup (refresh.c), for the refresh_rollup job.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_REFRESH_H
#define EK_ROLLUP_REFRESH_H

#include "postgres.h"

extern int64 ek_refresh_rollup_job(Oid relid);

#endif							/* EK_ROLLUP_REFRESH_H */
