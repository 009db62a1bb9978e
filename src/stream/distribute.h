/*-------------------------------------------------------------------------
 *
 * distribute.h
 *	  Streams on Citus (distribute.c): eventkit.distribute_stream() and the
 *	  guard that keeps Citus off eventkit's internal tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_STREAM_DISTRIBUTE_H
#define EK_STREAM_DISTRIBUTE_H

#include "postgres.h"

extern void ek_citus_guard_init(void);

#endif							/* EK_STREAM_DISTRIBUTE_H */
