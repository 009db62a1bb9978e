/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  eventkit's background processes and their shared memory:
 *
 *	  - the launcher, a static background worker registered when eventkit
 *		is in shared_preload_libraries.  Every eventkit.naptime (or when
 *		woken) it lists the databases in pg_database and makes sure each one
 *		where eventkit is installed has a scheduler.  A database whose
 *		eventkit is unknown gets a scheduler too, which exits at once if
 *		the extension is absent; the launcher remembers the database as
 *		absent until CREATE/ALTER EXTENSION eventkit commits there (the
 *		ProcessUtility hook wakes the launcher) or a few minutes passed.
 *	  - one scheduler per database, a dynamic worker connected to it
 *		(visible in pg_stat_activity as "eventkit scheduler"), which every
 *		naptime starts a job worker for each due job (jobs.c) and a
 *		consumer for each Kafka source that has none
 *		(intake/kafka_consumer.c).  It is started again by the launcher
 *		if it exits with an error.
 *	  - job workers, dynamic workers running one job each, at most
 *		eventkit.max_job_workers over the whole server.  So that one
 *		database's slow jobs cannot starve the others, a database that
 *		already runs a job leaves a free slot for each other database that
 *		has jobs and runs none (see job_slots_for_me).  A job runs under
 *		eventkit.job_timeout (jobs.c); one still running a grace period
 *		after it (its code caught the cancel) is terminated by its
 *		scheduler.
 *	  - the ProcessUtility hook: DROP DATABASE (and CREATE DATABASE ...
 *		TEMPLATE, ALTER DATABASE RENAME / SET TABLESPACE), which fail while
 *		another process is connected to the database, first stop that
 *		database's scheduler and job workers and keep the launcher from
 *		starting them again until the command's transaction ends.
 *	  - eventkit.pre_restore() / eventkit.post_restore(): while a database
 *		is being restored (eventkit.restoring set at the database level,
 *		which the scheduler reads every pass; pre_restore() also tells the
 *		scheduler at once through shared memory), its scheduler starts no
 *		job there.
 *	  - eventkit.scheduler_status(), what health() shows of the scheduler.
 *
 *	  Shared memory is requested with shmem_request_hook and set up in
 *	  shmem_startup_hook, as contrib/pg_stat_statements does; without
 *	  shared_preload_libraries none of this exists and every SQL function
 *	  still works (jobs just do not run by themselves).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "eventkit.h"
#include "intake/kafka_consumer.h"

PG_FUNCTION_INFO_V1(eventkit_scheduler_status);
PG_FUNCTION_INFO_V1(eventkit_pre_restore);
PG_FUNCTION_INFO_V1(eventkit_post_restore);

#define EK_MAX_DATABASES	256
#define EK_REPROBE_SECS		300		/* re-check a database without eventkit */
#define EK_HOLD_SECS		60		/* longest a command keeps a database held */
#define EK_STOP_WAIT_MS		10000	/* longest a command waits for workers */
#define EK_JOB_GRACE_MS		10000	/* a job past its timeout by this is terminated */

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
	bool		has_jobs;		/* the scheduler saw enabled jobs in its last pass */
	bool		restoring;		/* between pre_restore() and post_restore() */
	bool		restoring_setting;	/* the scheduler saw eventkit.restoring on */
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

static EkShared *ek_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* this backend: databases it holds, and whether to wake the launcher */
static Oid	held_dbs[4];
static int	nheld = 0;
static bool wake_launcher_at_commit = false;

/*
 * this backend's pre_restore() / post_restore() in the current transaction:
 * the database's restoring flag to leave at commit, and the one to put back
 * at abort
 */
static bool restoring_changed = false;
static bool restoring_at_commit = false;
static bool restoring_at_abort = false;

/* a scheduler's own job workers */
typedef struct OwnWorker
{
	int			slot;
	uint32		generation;
	BackgroundWorkerHandle *handle;
	bool		terminated;		/* overran eventkit.job_timeout: terminated */
} OwnWorker;

static OwnWorker *own_workers = NULL;
static int	n_own_workers = 0;
static int	max_own_workers = 0;

PGDLLEXPORT void ek_launcher_main(Datum arg);
PGDLLEXPORT void ek_scheduler_main(Datum arg);
PGDLLEXPORT void ek_job_worker_main(Datum arg);

static void ek_shmem_request(void);
static void ek_shmem_startup(void);
static void ek_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);
static void ek_xact_callback(XactEvent event, void *arg);

/* ---------------------------------------------------------------------
 * Set-up
 * ---------------------------------------------------------------------
 */

static Size
ek_shmem_size(void)
{
	return add_size(offsetof(EkShared, jobs),
					mul_size(sizeof(EkJobSlot), ek_max_job_workers));
}

static void
register_launcher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 10;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "eventkit");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ek_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "eventkit launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "eventkit launcher");
	RegisterBackgroundWorker(&bgw);
}

/*
 * Called from _PG_init.  Only when eventkit is preloaded: shared memory,
 * hooks and the launcher.
 */
void
ek_worker_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ek_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ek_shmem_startup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ek_process_utility;
	RegisterXactCallback(ek_xact_callback, NULL);

	register_launcher();
}

static void
ek_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ek_shmem_size());
	RequestNamedLWLockTranche("eventkit", 1);
}

static void
ek_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ek_shared = ShmemInitStruct("eventkit", ek_shmem_size(), &found);
	if (!found)
	{
		memset(ek_shared, 0, ek_shmem_size());
		ek_shared->lock = &(GetNamedLWLockTranche("eventkit"))->lock;
		ek_shared->njobslots = ek_max_job_workers;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Caller holds the lock.  Returns -1 if not found and !create or full. */
static int
find_db_slot(Oid dboid, bool create)
{
	int			free_slot = -1;

	for (int i = 0; i < EK_MAX_DATABASES; i++)
	{
		if (ek_shared->dbs[i].dboid == dboid)
			return i;
		if (free_slot < 0 && !OidIsValid(ek_shared->dbs[i].dboid))
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return -1;
	memset(&ek_shared->dbs[free_slot], 0, sizeof(EkDbSlot));
	ek_shared->dbs[free_slot].dboid = dboid;
	ek_shared->dbs[free_slot].state = EK_DB_UNKNOWN;
	ek_shared->dbs[free_slot].changed_at = GetCurrentTimestamp();
	return free_slot;
}

static void
wake_launcher(void)
{
	Latch	   *latch;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	latch = ek_shared->launcher_latch;
	LWLockRelease(ek_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* ---------------------------------------------------------------------
 * Launcher
 * ---------------------------------------------------------------------
 */

static BackgroundWorkerHandle *scheduler_handles[EK_MAX_DATABASES];

/* Databases that accept connections (as autovacuum lists them). */
static List *
database_list(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
#ifdef DATCONNLIMIT_INVALID_DB
		if (database_is_invalid_form(db))
			continue;
#endif
		old = MemoryContextSwitchTo(cxt);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

static bool
start_scheduler(int slotno, Oid dboid)
{
	BackgroundWorker bgw;
	MemoryContext old;
	bool		ok;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher restarts it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "eventkit");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ek_scheduler_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "eventkit scheduler for database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "eventkit scheduler");
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(bgw.bgw_extra, &slotno, sizeof(int));
	bgw.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &scheduler_handles[slotno]);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		scheduler_handles[slotno] = NULL;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("eventkit: could not start a scheduler for database %u", dboid),
				 errhint("Raise max_worker_processes.")));
	}
	return ok;
}

/* One pass of the launcher. */
static void
launcher_scan(void)
{
	List	   *dbs = database_list();
	TimestampTz now = GetCurrentTimestamp();
	int			tostart[EK_MAX_DATABASES];
	Oid			startdb[EK_MAX_DATABASES];
	BackgroundWorkerHandle *tostop[EK_MAX_DATABASES];
	int			nstart = 0;
	int			nstop = 0;
	ListCell   *lc;

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < EK_MAX_DATABASES; i++)
	{
		EkDbSlot   *slot = &ek_shared->dbs[i];
		pid_t		pid;

		/* forget the handle of a scheduler that has exited */
		if (scheduler_handles[i] &&
			GetBackgroundWorkerPid(scheduler_handles[i], &pid) == BGWH_STOPPED)
		{
			pfree(scheduler_handles[i]);
			scheduler_handles[i] = NULL;
		}
		/* forget dropped databases */
		if (OidIsValid(slot->dboid) && !list_member_oid(dbs, slot->dboid))
		{
			if (scheduler_handles[i])
				tostop[nstop++] = scheduler_handles[i];
			scheduler_handles[i] = NULL;
			memset(slot, 0, sizeof(EkDbSlot));
		}
	}
	foreach(lc, dbs)
	{
		Oid			dboid = lfirst_oid(lc);
		int			i = find_db_slot(dboid, true);
		EkDbSlot   *slot;

		if (i < 0)
			continue;			/* more databases than slots */
		slot = &ek_shared->dbs[i];
		if (scheduler_handles[i] != NULL || !ek_scheduler_enabled)
			continue;
		/* one this launcher did not start (it was restarted) is still there */
		if (slot->scheduler_pid != 0)
			continue;
		if (slot->state == EK_DB_HOLD)
		{
			if (now < slot->hold_until)
				continue;
			slot->state = EK_DB_UNKNOWN;
		}
		if (slot->state == EK_DB_ABSENT)
		{
			if (!TimestampDifferenceExceeds(slot->changed_at, now, EK_REPROBE_SECS * 1000))
				continue;
			slot->state = EK_DB_UNKNOWN;
		}
		startdb[nstart] = dboid;
		tostart[nstart++] = i;
	}
	LWLockRelease(ek_shared->lock);

	for (int i = 0; i < nstop; i++)
	{
		TerminateBackgroundWorker(tostop[i]);
		pfree(tostop[i]);
	}
	for (int i = 0; i < nstart; i++)
		if (!start_scheduler(tostart[i], startdb[i]))
			break;
}

static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (ek_shared->launcher_pid == MyProcPid)
	{
		ek_shared->launcher_pid = 0;
		ek_shared->launcher_latch = NULL;
	}
	LWLockRelease(ek_shared->lock);
}

void
ek_launcher_main(Datum arg)
{
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	ek_shared->launcher_pid = MyProcPid;
	ek_shared->launcher_latch = MyLatch;
	LWLockRelease(ek_shared->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "eventkit launcher loop",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(loop_cxt);
		old = MemoryContextSwitchTo(loop_cxt);
		launcher_scan();
		MemoryContextSwitchTo(old);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ek_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------------
 * Scheduler
 * ---------------------------------------------------------------------
 */

static int	my_db_slot = -1;

static void
scheduler_detach(int code, Datum arg)
{
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (ek_shared->dbs[my_db_slot].scheduler_pid == MyProcPid)
		ek_shared->dbs[my_db_slot].scheduler_pid = 0;
	LWLockRelease(ek_shared->lock);
	wake_launcher();
}

/* Job ids running in this database, as an int8[]; *nrunning how many. */
static Datum
running_jobs(int *nrunning)
{
	Datum	   *ids = palloc(sizeof(Datum) * (ek_shared->njobslots + 1));
	int			n = 0;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	for (int i = 0; i < ek_shared->njobslots; i++)
		if (ek_shared->jobs[i].in_use && ek_shared->jobs[i].dboid == MyDatabaseId)
			ids[n++] = Int64GetDatum(ek_shared->jobs[i].job_id);
	LWLockRelease(ek_shared->lock);
	*nrunning = n;
	return ek_make_array(ids, NULL, n, INT8OID);
}

/*
 * Fair sharing of the job slots between databases.  A database that runs
 * no job may take any free slot; one that runs jobs already may take
 * another only while a free slot remains for each other database that has
 * jobs and runs none (its scheduler running, not held or restoring).  So a
 * database whose jobs are slow, or many, never keeps another database's
 * jobs waiting for a slot, and an idle server lends every slot to the one
 * busy database.  (Raise eventkit.max_job_workers above the number of
 * databases with eventkit for jobs to run side by side in each.)
 *
 * Returns how many slots this database may take now.  Caller holds the
 * lock.
 */
static int
job_slots_for_me(void)
{
	int			nfree = 0;
	int			mine = 0;
	int			reserved = 0;

	for (int i = 0; i < ek_shared->njobslots; i++)
	{
		if (!ek_shared->jobs[i].in_use)
			nfree++;
		else if (ek_shared->jobs[i].dboid == MyDatabaseId)
			mine++;
	}
	if (nfree == 0)
		return 0;
	for (int d = 0; d < EK_MAX_DATABASES; d++)
	{
		EkDbSlot   *db = &ek_shared->dbs[d];
		bool		running = false;

		if (d == my_db_slot || !OidIsValid(db->dboid) || db->scheduler_pid == 0 ||
			db->state != EK_DB_ACTIVE || !db->has_jobs || db->restoring ||
			db->restoring_setting)
			continue;
		for (int i = 0; i < ek_shared->njobslots && !running; i++)
			running = ek_shared->jobs[i].in_use && ek_shared->jobs[i].dboid == db->dboid;
		if (!running)
			reserved++;
	}
	if (mine == 0)
		return Max(1, nfree - reserved);
	return Max(0, nfree - reserved);
}

static int
free_job_slots(void)
{
	int			n;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	n = job_slots_for_me();
	LWLockRelease(ek_shared->lock);
	return n;
}

/*
 * Forget job workers that have exited; free the slot of one that crashed.
 * Terminate one still running EK_JOB_GRACE_MS after its eventkit.job_timeout
 * (its own timeout cancelled it, and its code went on regardless): its run
 * is then marked crashed.
 */
static void
reap_job_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < n_own_workers;)
	{
		OwnWorker  *w = &own_workers[i];
		pid_t		pid;

		if (GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
		{
			if (ek_job_timeout > 0 && !w->terminated)
			{
				TimestampTz started_at;
				int64		job_id;

				LWLockAcquire(ek_shared->lock, LW_SHARED);
				started_at = ek_shared->jobs[w->slot].started_at;
				job_id = ek_shared->jobs[w->slot].job_id;
				LWLockRelease(ek_shared->lock);
				if (TimestampDifferenceExceeds(started_at, now,
											   ek_job_timeout + EK_JOB_GRACE_MS))
				{
					ereport(LOG,
							(errmsg("eventkit: job %lld still runs %d ms after eventkit.job_timeout; terminating its worker",
									(long long) job_id, EK_JOB_GRACE_MS)));
					TerminateBackgroundWorker(w->handle);
					w->terminated = true;
				}
			}
			i++;
			continue;
		}
		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		if (ek_shared->jobs[w->slot].in_use &&
			ek_shared->jobs[w->slot].generation == w->generation)
			ek_shared->jobs[w->slot].in_use = false;
		LWLockRelease(ek_shared->lock);
		pfree(w->handle);
		own_workers[i] = own_workers[--n_own_workers];
	}
}

/* Start a job worker for job_id.  False when no slot or worker is free. */
static bool
launch_job_worker(int64 job_id)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	int			slotno = -1;
	uint32		generation = 0;
	bool		allowed;
	bool		ok;

	/* workers that exited but are not reaped yet still take an entry */
	if (n_own_workers >= max_own_workers)
		return false;

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	/* (checked again under the lock: other schedulers take slots too) */
	allowed = !ek_shared->dbs[my_db_slot].restoring &&
		!ek_shared->dbs[my_db_slot].restoring_setting && job_slots_for_me() > 0;
	for (int i = 0; allowed && i < ek_shared->njobslots; i++)
	{
		EkJobSlot  *js = &ek_shared->jobs[i];

		if (!js->in_use)
		{
			js->in_use = true;
			js->generation++;
			js->dboid = MyDatabaseId;
			js->job_id = job_id;
			js->pid = 0;
			js->started_at = GetCurrentTimestamp();
			slotno = i;
			generation = js->generation;
			break;
		}
	}
	LWLockRelease(ek_shared->lock);
	if (slotno < 0)
		return false;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "eventkit");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ek_job_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "eventkit job worker for job %lld", (long long) job_id);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "eventkit job worker");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(bgw.bgw_extra, &generation, sizeof(uint32));
	bgw.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		ek_shared->jobs[slotno].in_use = false;
		LWLockRelease(ek_shared->lock);
		ereport(LOG,
				(errmsg("eventkit: no background worker free for job %lld; will retry",
						(long long) job_id),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	own_workers[n_own_workers].slot = slotno;
	own_workers[n_own_workers].generation = generation;
	own_workers[n_own_workers].handle = handle;
	own_workers[n_own_workers].terminated = false;
	n_own_workers++;
	return true;
}

/* Has pre_restore() been called here (and no post_restore() since)? */
static bool
db_restoring(void)
{
	bool		restoring;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	restoring = ek_shared->dbs[my_db_slot].restoring;
	LWLockRelease(ek_shared->lock);
	return restoring;
}

/*
 * Is eventkit.restoring on at the database level (pg_db_role_setting)?
 * Read from the catalog, not from this session's value, so that a change
 * is seen without a new session.  Caller: in a transaction, SPI connected.
 */
static bool
restoring_setting(void)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(MyDatabaseId)};
	const char *name = "eventkit.restoring=";
	bool		on = false;
	int			rc;

	rc = SPI_execute_with_args("SELECT c FROM pg_catalog.pg_db_role_setting d,"
							   " pg_catalog.unnest(d.setconfig) c"
							   " WHERE d.setdatabase OPERATOR(pg_catalog.=) $1"
							   " AND d.setrole OPERATOR(pg_catalog.=) 0::pg_catalog.oid",
							   1, argtypes, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read pg_db_role_setting: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *c = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);

		if (c != NULL && pg_strncasecmp(c, name, strlen(name)) == 0)
			(void) parse_bool(c + strlen(name), &on);
	}
	return on;
}

/*
 * One pass of the scheduler in its own short transaction: check that
 * eventkit is (still) installed, mark orphaned runs, purge old history,
 * pick the due jobs; then start their workers.  False if eventkit is not
 * installed here.  While the database is being restored (pre_restore(), or
 * eventkit.restoring on at the database level), does nothing: the catalog
 * is being loaded.
 */
static bool
scheduler_pass(MemoryContext loop_cxt, TimestampTz *last_purge)
{
	bool		installed;
	bool		restoring;
	int64	   *due = NULL;
	int			ndue = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (db_restoring())
		return true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "eventkit scheduler: checking jobs");

	restoring = restoring_setting();
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	ek_shared->dbs[my_db_slot].restoring_setting = restoring;
	LWLockRelease(ek_shared->lock);

	installed = OidIsValid(get_extension_oid("eventkit", true)) && ek_jobs_installed();
	if (installed && !restoring)
	{
		int			nrunning;
		Datum		running = running_jobs(&nrunning);
		int64		purge_every = Min((int64) ek_job_history_retention, 60) * 1000;
		int32		nudge;
		bool		has_jobs = ek_jobs_any_enabled();

		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		ek_shared->dbs[my_db_slot].has_jobs = has_jobs;
		LWLockRelease(ek_shared->lock);

		ek_jobs_mark_orphans(running);
		if (TimestampDifferenceExceeds(*last_purge, now, (int) purge_every))
		{
			ek_jobs_purge_history();
			*last_purge = now;
		}
		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		nudge = ek_shared->dbs[my_db_slot].ledger_nudge;
		ek_shared->dbs[my_db_slot].ledger_nudge = 0;
		LWLockRelease(ek_shared->lock);
		if (nudge != 0)
			ek_jobs_run_ledger_now(nudge);
		ndue = ek_jobs_due(running, free_job_slots(), &due, loop_cxt);
		ek_kafka_supervise();	/* a consumer for each Kafka source */
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	for (int i = 0; i < ndue; i++)
		if (!launch_job_worker(due[i]))
			break;
	return installed;
}

/*
 * Called by ingest when a stream's current ledger generation is over
 * eventkit.ledger_generation_rows: the scheduler of this database makes
 * the stream's ledger job due and is woken.  Ingest never rotates itself
 * (that takes ACCESS EXCLUSIVE on the ledger).  Does nothing without
 * shared_preload_libraries.
 */
void
ek_nudge_ledger_job(int32 stream_id)
{
	pid_t		pid = 0;

	if (ek_shared == NULL)
		return;
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < EK_MAX_DATABASES; i++)
	{
		EkDbSlot   *slot = &ek_shared->dbs[i];

		if (slot->dboid != MyDatabaseId)
			continue;
		slot->ledger_nudge = (slot->ledger_nudge == 0 || slot->ledger_nudge == stream_id) ?
			stream_id : -1;
		pid = slot->scheduler_pid;
		break;
	}
	LWLockRelease(ek_shared->lock);
	if (pid != 0)
	{
		PGPROC	   *proc = BackendPidGetProc(pid);

		if (proc != NULL)
			SetLatch(&proc->procLatch);
	}
}

static void
set_db_state(EkDbState state)
{
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (ek_shared->dbs[my_db_slot].dboid == MyDatabaseId &&
		ek_shared->dbs[my_db_slot].state != EK_DB_HOLD &&
		ek_shared->dbs[my_db_slot].state != state)
	{
		ek_shared->dbs[my_db_slot].state = state;
		ek_shared->dbs[my_db_slot].changed_at = GetCurrentTimestamp();
	}
	ek_shared->dbs[my_db_slot].last_loop_at = GetCurrentTimestamp();
	LWLockRelease(ek_shared->lock);
}

static uint32
db_wakeups(void)
{
	uint32		n;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	n = ek_shared->dbs[my_db_slot].wakeups;
	LWLockRelease(ek_shared->lock);
	return n;
}

static bool
db_held(void)
{
	bool		held;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	held = ek_shared->dbs[my_db_slot].dboid != MyDatabaseId ||
		ek_shared->dbs[my_db_slot].state == EK_DB_HOLD;
	LWLockRelease(ek_shared->lock);
	return held;
}

void
ek_scheduler_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext loop_cxt;
	TimestampTz last_purge = 0;
	bool		claimed = false;

	memcpy(&my_db_slot, MyBgworkerEntry->bgw_extra, sizeof(int));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* claim the database's slot before connecting; a held one is left alone */
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (my_db_slot >= 0 && my_db_slot < EK_MAX_DATABASES &&
		ek_shared->dbs[my_db_slot].dboid == dboid &&
		ek_shared->dbs[my_db_slot].state != EK_DB_HOLD &&
		ek_shared->dbs[my_db_slot].scheduler_pid == 0)
	{
		ek_shared->dbs[my_db_slot].scheduler_pid = MyProcPid;
		ek_shared->dbs[my_db_slot].started_at = GetCurrentTimestamp();
		claimed = true;
	}
	LWLockRelease(ek_shared->lock);
	if (!claimed)
		proc_exit(0);
	before_shmem_exit(scheduler_detach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("eventkit scheduler");

	max_own_workers = 2 * ek_shared->njobslots;
	own_workers = MemoryContextAlloc(TopMemoryContext,
									 sizeof(OwnWorker) * max_own_workers);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "eventkit scheduler loop",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;
		bool		installed;
		uint32		wakeups = db_wakeups();

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!ek_scheduler_enabled || db_held())
			break;

		MemoryContextReset(loop_cxt);
		old = MemoryContextSwitchTo(loop_cxt);
		reap_job_workers();
		installed = scheduler_pass(loop_cxt, &last_purge);
		MemoryContextSwitchTo(old);
		if (!installed && db_wakeups() != wakeups)
			continue;			/* CREATE EXTENSION committed meanwhile: look again */
		set_db_state(installed ? EK_DB_ACTIVE : EK_DB_ABSENT);
		if (!installed)
			break;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ek_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * Job worker
 * ---------------------------------------------------------------------
 */

static int	my_job_slot = -1;

static void
job_worker_detach(int code, Datum arg)
{
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (ek_shared->jobs[my_job_slot].in_use &&
		ek_shared->jobs[my_job_slot].pid == MyProcPid)
		ek_shared->jobs[my_job_slot].in_use = false;
	LWLockRelease(ek_shared->lock);
}

void
ek_job_worker_main(Datum arg)
{
	uint32		generation;
	Oid			dboid = InvalidOid;
	int64		job_id = 0;
	bool		held = false;

	my_job_slot = DatumGetInt32(arg);
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(uint32));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (my_job_slot >= 0 && my_job_slot < ek_shared->njobslots &&
		ek_shared->jobs[my_job_slot].in_use &&
		ek_shared->jobs[my_job_slot].generation == generation)
	{
		int			i;

		ek_shared->jobs[my_job_slot].pid = MyProcPid;
		dboid = ek_shared->jobs[my_job_slot].dboid;
		job_id = ek_shared->jobs[my_job_slot].job_id;
		i = find_db_slot(dboid, false);
		held = i >= 0 && (ek_shared->dbs[i].state == EK_DB_HOLD ||
						  ek_shared->dbs[i].restoring ||
						  ek_shared->dbs[i].restoring_setting);
	}
	LWLockRelease(ek_shared->lock);
	if (!OidIsValid(dboid))
		proc_exit(0);
	before_shmem_exit(job_worker_detach, (Datum) 0);
	if (held)
		proc_exit(0);			/* a command needs the database to itself */

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("eventkit job worker");
	ek_job_worker_execute(dboid, job_id);
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * Commands that need a database to themselves
 * ---------------------------------------------------------------------
 */

/*
 * Stop the scheduler and job workers of dboid and keep them stopped until
 * this transaction ends (ek_xact_callback), so that DROP DATABASE and the
 * like do not fail with "database is being accessed by other users".
 */
static void
hold_database(Oid dboid)
{
	pid_t		pids[EK_MAX_DATABASES];
	int			npids = 0;
	TimestampTz deadline;
	int			i;

	if (!OidIsValid(dboid) || dboid == MyDatabaseId || nheld >= lengthof(held_dbs))
		return;

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	i = find_db_slot(dboid, true);
	if (i >= 0)
	{
		ek_shared->dbs[i].state = EK_DB_HOLD;
		ek_shared->dbs[i].changed_at = GetCurrentTimestamp();
		ek_shared->dbs[i].hold_until =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), EK_HOLD_SECS * 1000);
		if (ek_shared->dbs[i].scheduler_pid != 0)
			pids[npids++] = ek_shared->dbs[i].scheduler_pid;
	}
	for (int j = 0; j < ek_shared->njobslots && npids < lengthof(pids); j++)
		if (ek_shared->jobs[j].in_use && ek_shared->jobs[j].dboid == dboid &&
			ek_shared->jobs[j].pid != 0)
			pids[npids++] = ek_shared->jobs[j].pid;
	LWLockRelease(ek_shared->lock);
	if (i < 0)
		return;
	held_dbs[nheld++] = dboid;

	for (int j = 0; j < npids; j++)
		(void) kill(pids[j], SIGTERM);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), EK_STOP_WAIT_MS);
	for (;;)
	{
		bool		busy = false;

		LWLockAcquire(ek_shared->lock, LW_SHARED);
		busy = ek_shared->dbs[i].dboid == dboid && ek_shared->dbs[i].scheduler_pid != 0;
		for (int j = 0; j < ek_shared->njobslots; j++)
			if (ek_shared->jobs[j].in_use && ek_shared->jobs[j].dboid == dboid)
				busy = true;
		LWLockRelease(ek_shared->lock);
		if (!busy || GetCurrentTimestamp() >= deadline)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static Oid
database_option_oid(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0 && d->arg != NULL)
			return get_database_oid(defGetString(d), true);
	}
	return InvalidOid;
}

static bool
has_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(lfirst_node(DefElem, lc)->defname, name) == 0)
			return true;
	return false;
}

static void
ek_process_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (ek_shared != NULL)
	{
		switch (nodeTag(stmt))
		{
			case T_CreateExtensionStmt:
				if (strcmp(((CreateExtensionStmt *) stmt)->extname, "eventkit") == 0)
					wake_launcher_at_commit = true;
				break;
			case T_AlterExtensionStmt:
				if (strcmp(((AlterExtensionStmt *) stmt)->extname, "eventkit") == 0)
					wake_launcher_at_commit = true;
				break;
			case T_DropdbStmt:
				hold_database(get_database_oid(((DropdbStmt *) stmt)->dbname, true));
				break;
			case T_CreatedbStmt:
				hold_database(database_option_oid(((CreatedbStmt *) stmt)->options,
												  "template"));
				break;
			case T_AlterDatabaseStmt:
				if (has_option(((AlterDatabaseStmt *) stmt)->options, "tablespace"))
					hold_database(get_database_oid(((AlterDatabaseStmt *) stmt)->dbname,
												   true));
				break;
			case T_RenameStmt:
				if (((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
					hold_database(get_database_oid(((RenameStmt *) stmt)->subname, true));
				break;
			default:
				break;
		}
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * At the end of a transaction: release the databases this backend held
 * (the launcher re-checks them; a dropped one is gone from pg_database by
 * then), and after CREATE/ALTER EXTENSION eventkit tell the launcher to
 * start a scheduler here now.
 */
static void
ek_xact_callback(XactEvent event, void *arg)
{
	bool		wake = false;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT)
		return;
	if (ek_shared == NULL || (nheld == 0 && !wake_launcher_at_commit && !restoring_changed))
		return;

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (restoring_changed)
	{
		int			i = find_db_slot(MyDatabaseId, false);
		bool		restoring = event == XACT_EVENT_COMMIT ?
			restoring_at_commit : restoring_at_abort;

		if (i >= 0)
		{
			ek_shared->dbs[i].restoring = restoring;
			/* post_restore(): the scheduler runs the jobs again now */
			if (!restoring && ek_shared->dbs[i].scheduler_pid != 0)
			{
				PGPROC	   *proc = BackendPidGetProc(ek_shared->dbs[i].scheduler_pid);

				if (proc != NULL)
					SetLatch(&proc->procLatch);
			}
		}
		restoring_changed = false;
		wake = true;
	}
	for (int h = 0; h < nheld; h++)
	{
		int			i = find_db_slot(held_dbs[h], false);

		if (i >= 0 && ek_shared->dbs[i].state == EK_DB_HOLD)
		{
			ek_shared->dbs[i].state = EK_DB_UNKNOWN;
			ek_shared->dbs[i].changed_at = GetCurrentTimestamp();
		}
		wake = true;
	}
	if (wake_launcher_at_commit && event == XACT_EVENT_COMMIT)
	{
		int			i = find_db_slot(MyDatabaseId, true);

		if (i >= 0)
		{
			ek_shared->dbs[i].wakeups++;
			if (ek_shared->dbs[i].state != EK_DB_HOLD)
			{
				ek_shared->dbs[i].state = EK_DB_UNKNOWN;
				ek_shared->dbs[i].changed_at = GetCurrentTimestamp();
			}
		}
		wake = true;
	}
	LWLockRelease(ek_shared->lock);
	nheld = 0;
	wake_launcher_at_commit = false;
	if (wake)
		wake_launcher();
}

/* ---------------------------------------------------------------------
 * eventkit.pre_restore() and eventkit.post_restore()
 * ---------------------------------------------------------------------
 */

/*
 * Set (or reset) eventkit.restoring for this database, at the database
 * level (it holds for new sessions and across restarts, and a scheduler
 * that starts reads it) and in this session.
 */
static void
set_database_restoring(bool on)
{
	char	   *db = get_database_name(MyDatabaseId);

	SPI_connect();
	ek_spi_exec(psprintf("ALTER DATABASE %s %s", quote_identifier(db),
						 on ? "SET eventkit.restoring = on" : "RESET eventkit.restoring"),
				SPI_OK_UTILITY);
	SPI_finish();
	(void) set_config_option("eventkit.restoring", on ? "on" : "off",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
}

/* Remember this transaction's change of the restoring flag (ek_xact_callback). */
static void
change_restoring(int i, bool on)
{
	if (!restoring_changed)
	{
		restoring_at_abort = ek_shared->dbs[i].restoring;
		restoring_changed = true;
	}
	restoring_at_commit = on;
}

/*
 * Cancel the job workers of this database and wait (up to EK_STOP_WAIT_MS)
 * until none is left.  A cancelled job records its run as failed.
 */
static void
stop_job_workers_here(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), EK_STOP_WAIT_MS);

	for (;;)
	{
		pid_t		pids[64];
		int			npids = 0;
		bool		busy = false;

		LWLockAcquire(ek_shared->lock, LW_SHARED);
		for (int j = 0; j < ek_shared->njobslots; j++)
			if (ek_shared->jobs[j].in_use && ek_shared->jobs[j].dboid == MyDatabaseId)
			{
				busy = true;
				if (ek_shared->jobs[j].pid != 0 && npids < lengthof(pids))
					pids[npids++] = ek_shared->jobs[j].pid;
			}
		LWLockRelease(ek_shared->lock);
		if (!busy)
			break;
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("eventkit jobs of this database are still running"),
					 errdetail("They were cancelled %d ms ago; no new job will start.",
							   EK_STOP_WAIT_MS),
					 errhint("Wait for them to end (pg_stat_activity, backend_type \"eventkit job worker\") before restoring.")));
			break;
		}
		for (int j = 0; j < npids; j++)
			(void) kill(pids[j], SIGINT);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * eventkit.pre_restore(): call before restoring a dump into this database
 * (eventkit installed first, then pg_restore without --create).  From now
 * on, and until eventkit.post_restore(), the scheduler starts no job in
 * this database (it would run against a half-loaded catalog); the jobs
 * running here are cancelled and waited for.  Without
 * shared_preload_libraries, only the database-level setting is made.
 */
Datum
eventkit_pre_restore(PG_FUNCTION_ARGS)
{
	set_database_restoring(true);
	if (ek_shared != NULL)
	{
		int			i;

		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		i = find_db_slot(MyDatabaseId, true);
		if (i >= 0)
		{
			change_restoring(i, true);
			ek_shared->dbs[i].restoring = true; /* at once; undone at abort */
		}
		LWLockRelease(ek_shared->lock);
		stop_job_workers_here();
	}
	PG_RETURN_VOID();
}

/*
 * eventkit.post_restore(): the restore is over; once this commits, the
 * scheduler runs this database's jobs again.
 */
Datum
eventkit_post_restore(PG_FUNCTION_ARGS)
{
	set_database_restoring(false);
	if (ek_shared != NULL)
	{
		int			i;

		LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
		i = find_db_slot(MyDatabaseId, true);
		if (i >= 0)
			change_restoring(i, false);
		LWLockRelease(ek_shared->lock);
	}
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * eventkit.scheduler_status()
 * ---------------------------------------------------------------------
 */

/*
 * eventkit.scheduler_status(OUT preloaded bool, OUT enabled bool,
 *	 OUT launcher_pid int, OUT pid int, OUT state text,
 *	 OUT started_at timestamptz, OUT last_loop_at timestamptz,
 *	 OUT running_jobs int): the scheduler of the current database.
 */
Datum
eventkit_scheduler_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8];

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "eventkit: return type must be a row type");
	memset(nulls, true, sizeof(nulls));
	values[0] = BoolGetDatum(ek_shared != NULL);
	nulls[0] = false;
	values[1] = BoolGetDatum(ek_scheduler_enabled);
	nulls[1] = false;
	if (ek_shared != NULL)
	{
		int			i;
		int			running = 0;

		LWLockAcquire(ek_shared->lock, LW_SHARED);
		if (ek_shared->launcher_pid != 0)
		{
			values[2] = Int32GetDatum(ek_shared->launcher_pid);
			nulls[2] = false;
		}
		i = find_db_slot(MyDatabaseId, false);
		if (i >= 0)
		{
			EkDbSlot   *slot = &ek_shared->dbs[i];

			if (slot->scheduler_pid != 0)
			{
				values[3] = Int32GetDatum(slot->scheduler_pid);
				nulls[3] = false;
			}
			if (slot->scheduler_pid != 0 && (slot->restoring || slot->restoring_setting))
				values[4] = CStringGetTextDatum("restoring");
			else if (slot->scheduler_pid != 0)
				values[4] = CStringGetTextDatum(slot->state == EK_DB_ACTIVE ? "running" : "starting");
			else
				values[4] = CStringGetTextDatum(slot->state == EK_DB_HOLD ? "held" :
												slot->state == EK_DB_ABSENT ? "absent" : "stopped");
			nulls[4] = false;
			if (slot->started_at != 0)
			{
				values[5] = TimestampTzGetDatum(slot->started_at);
				nulls[5] = false;
			}
			if (slot->last_loop_at != 0)
			{
				values[6] = TimestampTzGetDatum(slot->last_loop_at);
				nulls[6] = false;
			}
		}
		else
		{
			values[4] = CStringGetTextDatum("stopped");
			nulls[4] = false;
		}
		for (int j = 0; j < ek_shared->njobslots; j++)
			if (ek_shared->jobs[j].in_use && ek_shared->jobs[j].dboid == MyDatabaseId)
				running++;
		LWLockRelease(ek_shared->lock);
		values[7] = Int32GetDatum(running);
		nulls[7] = false;
	}
	else
	{
		values[4] = CStringGetTextDatum("not preloaded");
		nulls[4] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
