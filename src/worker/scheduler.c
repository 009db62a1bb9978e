/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The process side of eventkit's jobs:
 *
 *	  - one scheduler per database, a dynamic worker connected to it
 *		(visible in pg_stat_activity as "eventkit scheduler"), which every
 *		naptime starts a job worker for each due job and a consumer for
 *		each Kafka source that has none (intake/kafka_consumer.c).  It is
 *		started again by the launcher (launcher.c) if it exits with an
 *		error.
 *	  - job workers, dynamic workers running one job each (worker/jobs.c
 *		says what a job does), at most eventkit.max_job_workers over the
 *		whole server.  So that one database's slow jobs cannot starve the
 *		others, a database that already runs a job leaves a free slot for
 *		each other database that has jobs and runs none (see
 *		job_slots_for_me).  A job runs under eventkit.job_timeout; one still
 *		running a grace period after it (its code caught the cancel) is
 *		terminated by its scheduler.
 *	  - on a Citus coordinator with distributed streams, the scheduler also
 *		looks at the workers' quarantines every
 *		eventkit.worker_quarantine_poll (worker/quarantine_poll.c) and makes
 *		due the premake job of a stream with new events waiting there.
 *	  - a database made read-only (default_transaction_read_only on, as a
 *		managed service does when its disk fills up) is left alone: its
 *		scheduler starts no job and no consumer, and logs once when it
 *		stops and once when it starts again, instead of failing every pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog/jobs.h"
#include "intake/kafka_consumer.h"
#include "util/guc.h"
#include "util/spi.h"
#include "worker/jobs.h"
#include "worker/quarantine_poll.h"
#include "worker_int.h"

#define EK_JOB_GRACE_MS		10000	/* a job past its timeout by this is terminated */

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

PGDLLEXPORT void ek_scheduler_main(Datum arg);
PGDLLEXPORT void ek_job_worker_main(Datum arg);

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
	ek_wake_launcher();
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
			db->restoring_setting || db->read_only)
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
		!ek_shared->dbs[my_db_slot].restoring_setting &&
		!ek_shared->dbs[my_db_slot].read_only && job_slots_for_me() > 0;
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
 * Is the boolean setting name on at the database level (pg_db_role_setting)?
 * Read from the catalog, not from this session's value, so that a change
 * is seen without a new session.  Caller: in a transaction, SPI connected.
 */
static bool
db_level_setting(const char *name)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(MyDatabaseId)};
	char	   *prefix = psprintf("%s=", name);
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

		if (c != NULL && pg_strncasecmp(c, prefix, strlen(prefix)) == 0)
			(void) parse_bool(c + strlen(prefix), &on);
	}
	return on;
}

/* Is eventkit.restoring on at the database level (set by pre_restore())? */
static bool
restoring_setting(void)
{
	return db_level_setting("eventkit.restoring");
}

/*
 * Is this database read-only for the jobs?  Yes when
 * default_transaction_read_only is on at the database level or in the
 * configuration files (postgresql.conf, ALTER SYSTEM), both read every pass
 * so that a change is seen without a new session; the scheduler's own
 * session is kept writable (ek_scheduler_main).  Logs the change either
 * way, once.  Caller: in a transaction, SPI connected.
 */
static bool
read_only_now(void)
{
	bool		read_only = db_level_setting("default_transaction_read_only");
	bool		was;
	int			rc;

	/* the files' last value for it, if any (pg_file_settings rereads them) */
	rc = SPI_execute("SELECT setting FROM pg_catalog.pg_file_settings"
					 " WHERE name OPERATOR(pg_catalog.=) 'default_transaction_read_only'"
					 " AND error IS NULL ORDER BY seqno DESC LIMIT 1", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read pg_file_settings: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		bool		on = false;

		if (v != NULL && parse_bool(v, &on) && on)
			read_only = true;
	}

	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	was = ek_shared->dbs[my_db_slot].read_only;
	ek_shared->dbs[my_db_slot].read_only = read_only;
	LWLockRelease(ek_shared->lock);
	if (read_only && !was)
		ereport(LOG,
				(errmsg("eventkit scheduler: database \"%s\" is read-only, no job runs until it is writable",
						get_database_name(MyDatabaseId)),
				 errdetail("default_transaction_read_only is on at the database level or in the configuration files.")));
	else if (!read_only && was)
		ereport(LOG,
				(errmsg("eventkit scheduler: database \"%s\" is writable again, jobs run",
						get_database_name(MyDatabaseId))));
	return read_only;
}

/*
 * One pass of the scheduler in its own short transaction: check that
 * eventkit is (still) installed, mark orphaned runs, purge old history,
 * pick the due jobs; then start their workers.  False if eventkit is not
 * installed here.  While the database is being restored (pre_restore(), or
 * eventkit.restoring on at the database level), does nothing: the catalog
 * is being loaded.  Nor while it is read-only (read_only_now()).
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
	if (installed && !restoring && !read_only_now())
	{
		int			nrunning;
		Datum		running = running_jobs(&nrunning);
		int64		purge_every = Min((int64) ek_job_history_retention, 60) * 1000;
		int32		nudge;
		int32		premake_nudge;
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
		premake_nudge = ek_shared->dbs[my_db_slot].premake_nudge;
		ek_shared->dbs[my_db_slot].premake_nudge = 0;
		LWLockRelease(ek_shared->lock);
		if (nudge != 0)
			ek_jobs_run_now(EK_JOB_LEDGER, nudge);
		if (premake_nudge != 0)
			ek_jobs_run_now(EK_JOB_PREMAKE, premake_nudge);
		/* a worker's late events: its call cannot wake this scheduler */
		if (ek_poll_worker_quarantines(now) || nudge != 0 || premake_nudge != 0)
		{
			/*
			 * The due jobs are read with this pass's snapshot (read-only):
			 * it must see the jobs just made due, or they start only at
			 * the next pass, a naptime later
			 */
			CommandCounterIncrement();
			UpdateActiveSnapshotCommandId();
		}
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
	/* whether the database is read-only is decided every pass: read_only_now() */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);

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
						 ek_worker_poll_wait_ms(GetCurrentTimestamp()), PG_WAIT_EXTENSION);
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
		i = ek_find_db_slot(dboid, false);
		held = i >= 0 && (ek_shared->dbs[i].state == EK_DB_HOLD ||
						  ek_shared->dbs[i].restoring ||
						  ek_shared->dbs[i].restoring_setting ||
						  ek_shared->dbs[i].read_only);
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
