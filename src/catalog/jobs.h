/*-------------------------------------------------------------------------
 *
 * jobs.h
 *	  eventkit.jobs and eventkit.job_runs (jobs.c): registering and
 *	  removing jobs, a run's start and end, and the scheduler's queries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_JOBS_H
#define EK_CATALOG_JOBS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/*
 * Job kinds.  Stream jobs (premake, retention, ledger, redrive) carry the
 * stream's id; refresh_rollup jobs carry the rollup's name as target.
 */
#define EK_JOB_PREMAKE			"premake"
#define EK_JOB_RETENTION		"retention"
#define EK_JOB_LEDGER			"ledger"
#define EK_JOB_REDRIVE			"redrive"
#define EK_JOB_REFRESH_ROLLUP	"refresh_rollup"

/* A job's row, as a job worker needs it. */
typedef struct JobRow
{
	int64		job_id;
	char	   *kind;
	bool		has_stream;
	int32		stream_id;
	char	   *target;
	int32		failures;
} JobRow;

extern bool ek_jobs_installed(void);
extern int64 ek_jobs_schedule(const char *kind, int32 stream_id, const char *target,
							  const Interval *schedule);
extern void ek_jobs_unschedule(const char *kind, const char *target);
extern void ek_jobs_unschedule_stream(int32 stream_id);
extern int64 ek_jobs_start_run(int64 job_id, JobRow *job, MemoryContext cxt);
extern void ek_jobs_end_run(int64 run_id, const char *status, const char *message,
							int64 rows, int retry_secs);
extern void ek_jobs_record_manual_run(int32 stream_id, const char *kind,
									  const char *error);
extern void ek_jobs_mark_orphans(Datum running);
extern void ek_jobs_run_now(const char *kind, int32 stream_id);
extern bool ek_jobs_any_enabled(void);
extern void ek_jobs_purge_history(void);
extern int	ek_jobs_due(Datum running, int limit, int64 **out, MemoryContext cxt);

#endif							/* EK_CATALOG_JOBS_H */
