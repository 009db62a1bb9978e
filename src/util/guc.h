/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  eventkit's configuration parameters (guc.c): their variables, the
 *	  ranges of the size limits, and the memory retention of backends that
 *	  ingest.
 *
 *	  Test builds (make EK_TESTING=1, as test/run_tests.sh builds) add three
 *	  test hooks that a production build does not have at all:
 *	  eventkit.testing_clock_offset (the job workers' clock, clock.c),
 *	  eventkit.testing_json_crosscheck (json_parse.c against jsonb_in) and
 *	  eventkit.testing_regex_crosscheck (jsonschema_regex.c's fast matcher
 *	  against PostgreSQL's regex engine).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_GUC_H
#define EK_UTIL_GUC_H

#include "postgres.h"

#include "utils/memutils.h"

/* eventkit.invalid_events */
typedef enum InvalidEventPolicy
{
	INVALID_EVENTS_QUARANTINE,
	INVALID_EVENTS_REJECT
} InvalidEventPolicy;

extern int	ek_max_event_bytes;
extern int	ek_max_batch_bytes;
extern int	ek_max_batch_items;
extern int	ek_max_new_partitions;
extern int	ek_invalid_events;
extern bool ek_create_partitions_on_ingest;
extern int	ek_maintenance_lock_timeout;
extern int	ek_backend_memory_retention;
extern bool ek_scheduler_enabled;
extern int	ek_naptime;
extern int	ek_worker_quarantine_poll;
extern bool ek_worker_deltas_on_shards;
extern int	ek_max_job_workers;
extern int	ek_job_history_retention;
extern int	ek_job_timeout;
extern int	ek_ledger_generation_rows;
extern int	ek_ledger_filter_cache_size;
extern int	ek_identity_time_step;

#ifdef EK_TESTING
extern int	ek_testing_clock_offset;
extern bool ek_testing_json_crosscheck;
extern bool ek_testing_regex_crosscheck;
extern bool ek_testing_rollup_sql_deltas;
extern bool ek_testing_rollup_sql_merge;
extern bool ek_testing_rollup_merge_lookups;
extern int	ek_testing_identity_key_bits;
#else
#define ek_testing_json_crosscheck false
#define ek_testing_regex_crosscheck false
#define ek_testing_rollup_sql_deltas false
#define ek_testing_rollup_sql_merge false
#define ek_testing_rollup_merge_lookups false
#endif

/* Ranges of the size limits, as settings and as a stream's own values. */
#define EK_MIN_LIMIT_BYTES 64
#define EK_MAX_LIMIT_BYTES ((int) (MaxAllocSize / 2))
#define EK_MAX_LIMIT_ITEMS 1000000

extern void ek_define_gucs(void);
extern void ek_apply_memory_retention(void);

#endif							/* EK_UTIL_GUC_H */
