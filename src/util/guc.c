/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  eventkit's configuration parameters: their variables, ranges, units
 *	  and defaults.  Segment's limits are the defaults for the size limits.
 *	  The limits that bound what one ingest call may cost (sizes, items,
 *	  partitions created) are superuser-only: an ingesting role cannot raise
 *	  them (a stream's owner can set tighter ones per stream, stream/stream.c).
 *	  Also applies eventkit.backend_memory_retention to glibc's allocator in
 *	  backends that ingest.  The test hooks (eventkit.testing_*) exist in
 *	  test builds only (guc.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "util/guc.h"

int			ek_max_event_bytes = 32 * 1024;
int			ek_max_batch_bytes = 500 * 1024;
int			ek_max_batch_items = 2500;
int			ek_max_new_partitions = 8;
int			ek_invalid_events = INVALID_EVENTS_QUARANTINE;
bool		ek_create_partitions_on_ingest = true;
int			ek_maintenance_lock_timeout = 5000;
int			ek_backend_memory_retention = 64;	/* MB */
bool		ek_scheduler_enabled = true;
int			ek_naptime = 10;	/* s */
int			ek_worker_quarantine_poll = 2000;	/* ms */
bool		ek_worker_deltas_on_shards = true;
int			ek_max_job_workers = 2;
int			ek_job_history_retention = 7 * 24 * 3600;	/* s */
int			ek_job_timeout = 5 * 60 * 1000; /* ms */
int			ek_ledger_generation_rows = 1000000;
int			ek_ledger_filter_cache_size = 64 * 1024;	/* kB */
int			ek_identity_time_step = 24 * 3600;	/* s */

#ifdef EK_TESTING
int			ek_testing_clock_offset = 0;	/* s */
bool		ek_testing_json_crosscheck = false;
bool		ek_testing_regex_crosscheck = false;
bool		ek_testing_rollup_sql_deltas = false;
bool		ek_testing_rollup_sql_merge = false;
bool		ek_testing_rollup_merge_lookups = false;
int			ek_testing_identity_key_bits = 64;
#endif

/* set at the database level by pre_restore(); the scheduler reads the catalog */
static bool ek_restoring = false;

/* the value last given to malloc in this backend; -1: never */
static int	applied_retention = -1;

static const struct config_enum_entry invalid_event_options[] = {
	{"quarantine", INVALID_EVENTS_QUARANTINE, false},
	{"reject", INVALID_EVENTS_REJECT, false},
	{NULL, 0, false}
};

void
ek_define_gucs(void)
{
	DefineCustomIntVariable("eventkit.max_event_bytes",
							"Largest event accepted by ingest.",
							"Measured on the event's JSON; a larger event fails the whole call. "
							"A stream may have its own value (eventkit.alter_stream).",
							&ek_max_event_bytes,
							32 * 1024, EK_MIN_LIMIT_BYTES, EK_MAX_LIMIT_BYTES,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.max_batch_bytes",
							"Largest payload accepted by one ingest call.",
							"A stream may have its own value (eventkit.alter_stream).",
							&ek_max_batch_bytes,
							500 * 1024, EK_MIN_LIMIT_BYTES, EK_MAX_LIMIT_BYTES,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.max_batch_items",
							"Most events accepted by one ingest call.",
							"A stream may have its own value (eventkit.alter_stream).",
							&ek_max_batch_items,
							2500, 1, EK_MAX_LIMIT_ITEMS,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.max_new_partitions",
							"Most partitions one ingest call creates.",
							"Each partition created holds locks until the transaction ends. Events "
							"that need more wait in quarantine (out_of_range); each maintenance run "
							"creates at most as many of their partitions, and the redrive job "
							"stores them.",
							&ek_max_new_partitions,
							8, 0, 10000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("eventkit.invalid_events",
							 "What ingest does with an event that breaks the Segment spec.",
							 "quarantine keeps it aside with its reasons; reject drops it and reports why.",
							 &ek_invalid_events,
							 INVALID_EVENTS_QUARANTINE,
							 invalid_event_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.create_partitions_on_ingest",
							 "Whether ingest creates a missing past partition for a late event.",
							 "When off, such events are quarantined with reason out_of_range.",
							 &ek_create_partitions_on_ingest,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.maintenance_lock_timeout",
							"lock_timeout used by maintenance when it attaches or drops partitions.",
							NULL,
							&ek_maintenance_lock_timeout,
							5000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.backend_memory_retention",
							"Freed memory a backend that ingests keeps instead of returning it to the kernel.",
							"Each batch allocates and frees a few megabytes; glibc returns such memory "
							"to the kernel, and the next batch pays page faults to get it back. "
							"0 leaves glibc's settings alone.",
							&ek_backend_memory_retention,
							64, 0, 1024,
							PGC_USERSET, GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.scheduler_enabled",
							 "Whether the background worker runs eventkit's jobs.",
							 "Needs shared_preload_libraries = 'eventkit'. When off, the "
							 "launcher stops every scheduler and starts none.",
							 &ek_scheduler_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.naptime",
							"Time the launcher and the schedulers sleep between checks.",
							"Also the base of the retry delay of a failing job.",
							&ek_naptime,
							10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.worker_quarantine_poll",
							"How often a Citus coordinator's scheduler looks for the workers' events waiting for a partition.",
							"Only while distributed streams exist; 0 turns it off (they then wait for the premake job's next run).",
							&ek_worker_quarantine_poll,
							2000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.worker_deltas_on_shards",
							 "Whether a new rollup of a distributed stream keeps the workers' deltas on their own nodes.",
							 "When on, create_rollup and distribute_stream make the rollup's worker delta table "
							 "a table distributed with the stream, so that a worker's call writes its deltas on its "
							 "own node; when off, a Citus local table on the coordinator, a participant in every "
							 "worker call's commit. Read when the table is made.",
							 &ek_worker_deltas_on_shards,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	/* a PGC_POSTMASTER setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("eventkit.max_job_workers",
								"Most eventkit job workers running at once, over all databases.",
								"Each job worker is a background worker: keep max_worker_processes "
								"above 1 (launcher) + databases with eventkit (schedulers) + this.",
								&ek_max_job_workers,
								2, 1, 64,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.job_history_retention",
							"How long finished runs are kept in eventkit.job_runs.",
							NULL,
							&ek_job_history_retention,
							7 * 24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.identity_time_step",
							"How far a link must move an id's first or last seen time before the identity graph records it.",
							"A stored id's first_seen and last_seen in eventkit.identity_links are "
							"rewritten only when a link moves them by more than this: last_seen may be "
							"up to this much early, first_seen up to this much late. Larger: fewer "
							"rewrites at ingest. 0 records every move.",
							&ek_identity_time_step,
							24 * 3600, 0, 366 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.job_timeout",
							"Longest a background job may run before it is cancelled.",
							"A job that runs longer is cancelled like a statement past "
							"statement_timeout, recorded as failed and retried after its backoff. "
							"0 means no limit.",
							&ek_job_timeout,
							5 * 60 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.restoring",
							 "Whether the database is being restored (set by eventkit.pre_restore()).",
							 "While it is on at the database level, the scheduler starts no job "
							 "in the database. eventkit.post_restore() turns it off.",
							 &ek_restoring,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.ledger_generation_rows",
							"Message ids the current dedup ledger generation may hold before a new one is started.",
							"Checked (estimated from the generation's heap pages) by the ledger job "
							"and eventkit.run_maintenance(); ingest wakes the ledger job when it sees "
							"the current generation over it. Set it server- or database-wide so that "
							"ingest and the worker agree.",
							&ek_ledger_generation_rows,
							1000000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.ledger_filter_cache_size",
							"Memory a backend may use to cache the filters of sealed dedup ledger generations.",
							"A sealed generation whose filter does not fit is probed for every id "
							"(correct, slower). 0 disables the filters.",
							&ek_ledger_filter_cache_size,
							64 * 1024, 0, 1024 * 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

#ifdef EK_TESTING
	/* test builds only (guc.h, clock.c) */
	DefineCustomIntVariable("eventkit.testing_clock_offset",
							"For tests only: shifts the job workers' notion of now.",
							"Added to the current time when jobs premake partitions and apply "
							"retention, so tests can make time pass. Leave at 0.",
							&ek_testing_clock_offset,
							0, -INT_MAX, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.testing_json_crosscheck",
							 "For tests only: checks ingest's JSON parser against jsonb_in.",
							 "Every payload the fast parser accepts is parsed again by jsonb_in "
							 "and the two results compared; a difference is an internal error.",
							 &ek_testing_json_crosscheck,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.testing_regex_crosscheck",
							 "For tests only: checks the validator's fast pattern matcher against PostgreSQL's regex engine.",
							 "Every match the fast matcher answers (simple \"pattern\" and "
							 "\"patternProperties\" regexes) is run by PostgreSQL's engine too; "
							 "a difference is an internal error.",
							 &ek_testing_regex_crosscheck,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.testing_rollup_sql_deltas",
							 "For tests only: ingest folds every rollup delta with its SQL SELECT.",
							 "Ingest evaluates the bucket, dimensions and measure inputs of the "
							 "common rollup definitions in C (rollup/delta.c); on, it runs the "
							 "SQL path for all, so that tests compare the two.",
							 &ek_testing_rollup_sql_deltas,
							 false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.testing_rollup_sql_merge",
							 "For tests only: a refresh merges its groups into the rollup table with its SQL statement.",
							 "A refresh merges the groups it folded into the rollup table in C (an index "
							 "lookup, then an insert or an update: rollup/fold_write.c) when the table and "
							 "its measures allow; on, it runs the INSERT ... ON CONFLICT DO UPDATE for all, "
							 "reads the delta rows with a SELECT rather than an index scan in C, "
							 "and reads and records the rollup's catalog row with statements "
							 "(catalog/rollups.c), so that tests compare the two.",
							 &ek_testing_rollup_sql_merge,
							 false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("eventkit.testing_rollup_merge_lookups",
							 "For tests only: a refresh's merge in C finds each group's row by an index lookup.",
							 "The merge in C finds the rows of its groups by reading their range of "
							 "buckets in one index scan when that is cheaper (rollup/fold_write.c); on, "
							 "it looks each group up, so that tests compare the two.",
							 &ek_testing_rollup_merge_lookups,
							 false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.testing_identity_key_bits",
							"For tests only: how many bits of the identity cache's 64-bit keys are kept.",
							"The cache of known links (pipeline/identity.c) keys its entries by a "
							"hash of the id; below 64, ids share keys, so that tests see it compare "
							"the ids' bytes (0: every id has the same key).",
							&ek_testing_identity_key_bits,
							64, 0, 64,
							PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);
#endif

	MarkGUCPrefixReserved("eventkit");
}

/*
 * Called at the start of every ingest: raise glibc's trim and mmap
 * thresholds so the memory a batch frees stays mapped for the next one.
 * Only backends that ingest are affected, and only once per setting.
 */
void
ek_apply_memory_retention(void)
{
#ifdef __GLIBC__
	int			mb = ek_backend_memory_retention;

	if (mb == applied_retention)
		return;
	if (mb > 0)
	{
		/* glibc caps the mmap threshold at 32 MB on 64-bit systems */
		mallopt(M_MMAP_THRESHOLD, Min(mb, 32) * 1024 * 1024);
		mallopt(M_TRIM_THRESHOLD, mb * 1024 * 1024);
	}
	else if (applied_retention > 0)
	{
		/* back to glibc's defaults */
		mallopt(M_MMAP_THRESHOLD, 128 * 1024);
		mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	}
	applied_retention = mb;
#endif
}
