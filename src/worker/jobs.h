/*-------------------------------------------------------------------------
 *
 * jobs.h
 *	  Running one job in a job worker (jobs.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_WORKER_JOBS_H
#define EK_WORKER_JOBS_H

#include "postgres.h"

extern void ek_job_worker_execute(Oid dboid, int64 job_id);

#endif							/* EK_WORKER_JOBS_H */
