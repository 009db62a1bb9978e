/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The shared memory of eventkit's background processes: one slot per
 *	  database (its state, its scheduler, its restoring flags, the ledger
 *	  job a backend asked to run now) and one per job worker, behind one
 *	  LWLock.  Requested with shmem_request_hook and set up in
 *	  shmem_startup_hook, as contrib/pg_stat_statements does; without
 *	  shared_preload_libraries none of this exists (ek_shared is NULL) and
 *	  every SQL function still works (jobs just do not run by themselves).
 *
 *	  Also what backends ask of the processes through it: ingest wakes a
 *	  stream's ledger job (ek_nudge_ledger_job), and its premake job when
 *	  it commits (ek_nudge_partition_jobs), and
 *	  eventkit.scheduler_status() reads it for health().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "util/guc.h"
#include "worker/worker.h"
#include "worker_int.h"

PG_FUNCTION_INFO_V1(eventkit_scheduler_status);

EkShared   *ek_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
ek_shmem_size(void)
{
	return add_size(offsetof(EkShared, jobs),
					mul_size(sizeof(EkJobSlot), ek_max_job_workers));
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


/* Request the shared memory (from _PG_init, while preloading). */
void
ek_shmem_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ek_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ek_shmem_startup;
}

int
ek_find_db_slot(Oid dboid, bool create)
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

void
ek_wake_launcher(void)
{
	Latch	   *latch;

	LWLockAcquire(ek_shared->lock, LW_SHARED);
	latch = ek_shared->launcher_latch;
	LWLockRelease(ek_shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * Make a job of stream_id due in this database's scheduler (its ledger job,
 * or its premake job) and wake the scheduler: one stream's id, or -1 when
 * two streams asked before the scheduler looked (it then checks them all).
 */
static void
nudge_scheduler(int32 stream_id, bool premake)
{
	pid_t		pid = 0;

	if (ek_shared == NULL)
		return;
	LWLockAcquire(ek_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < EK_MAX_DATABASES; i++)
	{
		EkDbSlot   *slot = &ek_shared->dbs[i];
		int32	   *nudge = premake ? &slot->premake_nudge : &slot->ledger_nudge;

		if (slot->dboid != MyDatabaseId)
			continue;
		*nudge = (*nudge == 0 || *nudge == stream_id) ? stream_id : -1;
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
	nudge_scheduler(stream_id, false);
}

/*
 * Called by ingest when events of a distributed stream wait in quarantine
 * for a partition that its calls do not make (pipeline/partition.c): when
 * this transaction commits (the events are in quarantine then), the
 * scheduler of this database makes the stream's premake job due and is
 * woken; the premake job makes the partition in a transaction of its own
 * and makes the redrive job due (worker/maintenance.c).  Does nothing
 * without shared_preload_libraries.
 */
static int32 premake_nudge_at_commit = 0;

void
ek_nudge_partition_jobs(int32 stream_id)
{
	if (ek_shared == NULL)
		return;
	premake_nudge_at_commit = (premake_nudge_at_commit == 0 ||
							   premake_nudge_at_commit == stream_id) ? stream_id : -1;
}

/* At the end of a transaction (worker/launcher.c's callback). */
void
ek_partition_nudge_at_xact_end(bool commit)
{
	int32		stream_id = premake_nudge_at_commit;

	premake_nudge_at_commit = 0;
	if (stream_id == 0 || !commit)
		return;
	nudge_scheduler(stream_id, true);
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
		i = ek_find_db_slot(MyDatabaseId, false);
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
			else if (slot->scheduler_pid != 0 && slot->read_only)
				values[4] = CStringGetTextDatum("read-only");
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

