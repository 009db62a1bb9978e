/*-------------------------------------------------------------------------
 *
 * worker_int.h
 *	  The shared memory of eventkit's background processes (shmem.c), for
 *	  the files of src/worker/: the launcher (launcher.c), the schedulers
 *	  and job workers (scheduler.c).  Others use worker.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_WORKER_INT_H
#define EK_WORKER_INT_H

#include "postgres.h"

#include <signal.h>

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define EK_MAX_DATABASES	256

typedef enum EkDbState
{
	EK_DB_UNKNOWN = 0,			/* check whether eventkit is installed */
	EK_DB_ACTIVE,				/* installed: keep a scheduler running */
	EK_DB_ABSENT,				/* not installed (as of changed_at) */
	EK_DB_HOLD					/* a command needs the database to itself */
} EkDbState;

typedef struct EkDbSlot
{
	Oid			dboid;			/* InvalidOid: free slot */
	EkDbState	state;
	TimestampTz changed_at;
	TimestampTz hold_until;
	pid_t		scheduler_pid;	/* 0: none */
	TimestampTz started_at;
	TimestampTz last_loop_at;
	uint32		wakeups;		/* bumped when CREATE/ALTER EXTENSION commits */
	int32		ledger_nudge;	/* 0, a stream id, or -1 (several streams) */
	int32		premake_nudge;	/* the same, for premake jobs */
	bool		has_jobs;		/* the scheduler saw enabled jobs in its last pass */
	bool		restoring;		/* between pre_restore() and post_restore() */
	bool		restoring_setting;	/* the scheduler saw eventkit.restoring on */
	bool		read_only;		/* the scheduler saw the database read-only */
} EkDbSlot;

typedef struct EkJobSlot
{
	bool		in_use;
	uint32		generation;		/* tells a reused slot from the old one */
	Oid			dboid;
	int64		job_id;
	pid_t		pid;			/* 0 until the worker has started */
	TimestampTz started_at;		/* when the scheduler claimed the slot */
} EkJobSlot;

typedef struct EkShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	int			njobslots;
	EkDbSlot	dbs[EK_MAX_DATABASES];
	EkJobSlot	jobs[FLEXIBLE_ARRAY_MEMBER];
} EkShared;

extern EkShared *ek_shared;

extern void ek_shmem_install(void);
extern int	ek_find_db_slot(Oid dboid, bool create);
extern void ek_wake_launcher(void);
extern void ek_partition_nudge_at_xact_end(bool commit);

#endif							/* EK_WORKER_INT_H */
