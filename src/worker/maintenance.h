/*-------------------------------------------------------------------------
 *
 * maintenance.h
 *	  A stream's periodic work (maintenance.c): what its premake, retention
 *	  and ledger jobs do, and eventkit.run_maintenance().
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_WORKER_MAINTENANCE_H
#define EK_WORKER_MAINTENANCE_H

#include "postgres.h"

#include "catalog/streams.h"

extern int64 ek_run_stream_job(const char *kind, StreamInfo *stream, TimestampTz now);
extern void ek_maintain_stream(StreamInfo *stream, TimestampTz now, bool isolate);

#endif							/* EK_WORKER_MAINTENANCE_H */
