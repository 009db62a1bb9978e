/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher, and what needs a database without its workers:
 *
 *	  - the launcher, a static background worker registered when eventkit
 *		is in shared_preload_libraries.  Every eventkit.naptime (or when
 *		woken) it lists the databases in pg_database and makes sure each one
 *		where eventkit is installed has a scheduler (scheduler.c).  A
 *		database whose eventkit is unknown gets a scheduler too, which exits
 *		at once if the extension is absent; the launcher remembers the
 *		database as absent until CREATE/ALTER EXTENSION eventkit commits
 *		there (the ProcessUtility hook wakes the launcher) or a few minutes
 *		passed.
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
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "fmgr.h"
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
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "stream/distribute.h"
#include "stream/owner_change.h"
#include "util/guc.h"
#include "util/spi.h"
#include "worker/worker.h"
#include "worker_int.h"

PG_FUNCTION_INFO_V1(eventkit_pre_restore);
PG_FUNCTION_INFO_V1(eventkit_post_restore);

#define EK_REPROBE_SECS		300		/* re-check a database without eventkit */
#define EK_HOLD_SECS		60		/* longest a command keeps a database held */
#define EK_STOP_WAIT_MS		10000	/* longest a command waits for workers */

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

PGDLLEXPORT void ek_launcher_main(Datum arg);

static void ek_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);
static void ek_xact_callback(XactEvent event, void *arg);

/* ---------------------------------------------------------------------
 * Set-up
 * ---------------------------------------------------------------------
 */

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

	ek_shmem_install();
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ek_process_utility;
	RegisterXactCallback(ek_xact_callback, NULL);

	register_launcher();
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
		int			i = ek_find_db_slot(dboid, true);
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
	i = ek_find_db_slot(dboid, true);
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

	/*
	 * a stream's partitions and resolved view follow it to a new owner, and
	 * a distributed stream's ledger
	 */
	if (IsA(stmt, AlterTableStmt))
	{
		ek_citus_stream_owner_changed(stmt);
		ek_stream_owner_changed(stmt);
	}
}

/*
 * At the end of a transaction: release the databases this backend held
 * (the launcher re-checks them; a dropped one is gone from pg_database by
 * then), and after CREATE/ALTER EXTENSION eventkit tell the launcher to
 * start a scheduler here now.  Also wake a stream's premake job that
 * ingest asked for (ek_nudge_partition_jobs).
 */
static void
ek_xact_callback(XactEvent event, void *arg)
{
	bool		wake = false;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT)
		return;
	ek_partition_nudge_at_xact_end(event == XACT_EVENT_COMMIT);
	if (ek_shared == NULL || (nheld == 0 && !wake_launcher_at_commit && !restoring_changed))
		return;

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	if (restoring_changed)
	{
		int			i = ek_find_db_slot(MyDatabaseId, false);
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
		int			i = ek_find_db_slot(held_dbs[h], false);

		if (i >= 0 && ek_shared->dbs[i].state == EK_DB_HOLD)
		{
			ek_shared->dbs[i].state = EK_DB_UNKNOWN;
			ek_shared->dbs[i].changed_at = GetCurrentTimestamp();
		}
		wake = true;
	}
	if (wake_launcher_at_commit && event == XACT_EVENT_COMMIT)
	{
		int			i = ek_find_db_slot(MyDatabaseId, true);

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
		ek_wake_launcher();
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
		i = ek_find_db_slot(MyDatabaseId, true);
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
		i = ek_find_db_slot(MyDatabaseId, true);
		if (i >= 0)
			change_restoring(i, false);
		LWLockRelease(ek_shared->lock);
	}
	PG_RETURN_VOID();
}
