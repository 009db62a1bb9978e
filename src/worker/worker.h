/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  eventkit's background processes, as the rest of eventkit sees them:
 *	  their set-up from _PG_init (launcher.c), and waking a stream's
 *	  ledger job, or its premake job at commit (shmem.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_WORKER_WORKER_H
#define EK_WORKER_WORKER_H

#include "postgres.h"

extern void ek_worker_init(void);
extern void ek_nudge_ledger_job(int32 stream_id);
extern void ek_nudge_partition_jobs(int32 stream_id);

#endif							/* EK_WORKER_WORKER_H */
