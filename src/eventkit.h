/*-------------------------------------------------------------------------
 *
 * eventkit.h
 *	  Declarations shared between eventkit's subsystems.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_H
#define EVENTKIT_H

#include "postgres.h"

#include "access/heapam.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* Does the current user own the relation?  (object_ownercheck from 16 on) */
#if PG_VERSION_NUM >= 160000
#define ek_owns_relation(relid) \
	object_ownercheck(RelationRelationId, (relid), GetUserId())
#else
#define ek_owns_relation(relid) pg_class_ownercheck((relid), GetUserId())
#endif

/* A privilege on a schema (object_aclcheck from 16 on) */
#if PG_VERSION_NUM >= 160000
#define ek_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define ek_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/* PostgreSQL 17's foreach_ptr(), for older servers */
#ifndef foreach_ptr
#define foreach_ptr(type, var, lst) \
	for (type *var = 0, *var##__outerloop = (type *) 1; \
		 var##__outerloop; \
		 var##__outerloop = 0) \
		for (ForEachState var##__state = {(lst), 0}; \
			 (var##__state.l != NIL && \
			  var##__state.i < var##__state.l->length && \
			  (var = (type *) lfirst(&var##__state.l->elements[var##__state.i]), true)); \
			 var##__state.i++)
#endif

/* ---- guc.c ---- */

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
extern int	ek_max_job_workers;
extern int	ek_job_history_retention;
extern int	ek_job_timeout;
extern int	ek_testing_clock_offset;
extern int	ek_ledger_generation_rows;
extern int	ek_ledger_filter_cache_size;
extern bool ek_testing_json_crosscheck;

/* Ranges of the size limits, as settings and as a stream's own values. */
#define EK_MIN_LIMIT_BYTES 64
#define EK_MAX_LIMIT_BYTES ((int) (MaxAllocSize / 2))
#define EK_MAX_LIMIT_ITEMS 1000000

extern void ek_define_gucs(void);
extern void ek_apply_memory_retention(void);

/* ---- catalog.c ---- */

/* A stream's catalog row, as ingest and maintenance need it. */
typedef struct StreamInfo
{
	int32		stream_id;
	Oid			relid;
	Interval	partition_interval;
	int32		premake;
	bool		has_retention;
	Interval	retention;
	int32		key_partitions;
	Interval	dedup_window;
	int32		ledger_gen;
	int32		plan_id;		/* attached tracking plan, 0: none */
	int32		plan_version;	/* its version in force (pinned or latest);
								 * 0 with a plan_id: the plan has none */
	/* clock bounds (1.3): events outside are quarantined too_old/too_new */
	bool		has_max_past;
	Interval	max_past;
	bool		has_max_future;
	Interval	max_future;
	/* the stream's own size limits (1.3); 0: the setting's value */
	int32		max_event_bytes;
	int32		max_batch_bytes;
	int32		max_batch_items;
} StreamInfo;

extern bool ek_lookup_stream(Oid relid, StreamInfo *info, bool missing_ok);
extern Oid	ek_extension_owner(void);
extern Oid	ek_relation_owner(Oid relid);
extern void ek_switch_to_owner(Oid *save_userid, int *save_sec_context);
extern void ek_restore_user(Oid save_userid, int save_sec_context);

/* Saved state of DDL run on a user's behalf (ek_begin_ddl/ek_end_ddl). */
typedef struct EkDdlContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
} EkDdlContext;

extern void ek_begin_ddl(EkDdlContext *ddl, Oid role, bool with_lock_timeout);
extern void ek_end_ddl(EkDdlContext *ddl);
extern List *ek_spi_int_list(void);
extern ErrorData *ek_run_in_subtransaction(void (*fn) (void *arg), void *arg);
extern char *ek_qualified_relname(Oid relid);
extern void ek_spi_exec(const char *sql, int expected);
extern SPIPlanPtr ek_keep_plan(const char *sql, int nargs, Oid *argtypes);
extern Datum ek_make_array(Datum *elems, bool *nulls, int n, Oid elemtype);

#define EK_TEXT_OR_NULL(s) ((s) ? PointerGetDatum(cstring_to_text(s)) : (Datum) 0)
#define EK_JSONB_OR_NULL(j) ((j) ? JsonbPGetDatum(j) : (Datum) 0)

/* ---- partition.c ---- */

extern void ek_check_partition_interval(const Interval *interval);
extern TimestampTz ek_bucket_start(const Interval *interval, TimestampTz ts);
extern TimestampTz ek_bucket_add(const Interval *interval, TimestampTz start,
								 int n);
extern char *ek_timestamp_iso(TimestampTz ts);
extern bool ek_partition_exists_for(Oid parent, TimestampTz ts);
extern bool ek_partition_exists_in(Relation rel, TimestampTz ts);
extern void ek_create_partition(const StreamInfo *stream, TimestampTz start);
extern int	ek_premake_partitions(const StreamInfo *stream, TimestampTz now);
extern int	ek_make_waiting_partitions(const StreamInfo *stream, TimestampTz now);

/* Where events may go at a given time (ek_time_bounds). */
typedef struct EkTimeBounds
{
	TimestampTz too_old;		/* max_past: older events are too_old */
	TimestampTz too_new;		/* max_future: newer events are too_new */
	TimestampTz oldest;			/* retention: older events get no partition */
	TimestampTz horizon;		/* premake: partitions from here on are made later */
} EkTimeBounds;

extern void ek_time_bounds(const StreamInfo *stream, TimestampTz now,
						   EkTimeBounds *bounds);
extern int	ek_drop_expired_partitions(const StreamInfo *stream,
									   TimestampTz now);

/* ---- event.c ---- */

/* Why an event cannot be stored normally. */
typedef struct EventProblem
{
	const char *reason;			/* machine-readable code */
	char	   *message;		/* human-readable explanation */
} EventProblem;

#define EK_MAX_PROBLEMS 8

/* What a tracking plan found in one event (see plan.c). */
typedef struct PlanFinding
{
	const char *reason;			/* violation, unplanned_event, ... */
	const char *keyword;		/* JSON Schema keyword, or the reason */
	char	   *instance_path;	/* "/properties/revenue" */
	char	   *schema_path;	/* "#/events/.../properties/revenue/type" */
	char	   *message;
	const char *action;			/* allowed, tagged, omitted, quarantined, rejected */
} PlanFinding;

/* One event, as extracted from its JSON form. */
typedef struct SegmentEvent
{
	int32		item;			/* 1-based position in the payload */
	JsonbValue	source;			/* the event (jbvBinary) or NULL-typed */
	Jsonb	   *payload;		/* the event as a standalone jsonb */
	char	   *raw;			/* raw text when the item did not parse */
	int32		size;			/* bytes of the item */
	const char *origin;			/* JSON text: where an intake worker got it
								 * (ingest.h), kept if quarantined; or NULL */

	char	   *message_id;
	bool		derived_id;		/* message_id computed from content */
	char	   *type;
	char	   *event;
	char	   *user_id;
	char	   *anonymous_id;
	TimestampTz ts;
	bool		has_sent_at;
	TimestampTz sent_at;
	bool		has_original_timestamp;
	TimestampTz original_timestamp;
	bool		has_timestamp;
	TimestampTz timestamp;
	Jsonb	   *properties;
	Jsonb	   *traits;
	Jsonb	   *context;
	Jsonb	   *extra;
	int64		fingerprint;

	int			nproblems;
	EventProblem problems[EK_MAX_PROBLEMS];

	/* tracking plan (plan.c) */
	int32		plan_version;	/* 0: not checked against a plan */
	List	   *findings;		/* PlanFinding *, in the order found */
	bool		reject;			/* the plan's policy rejects the event */
	Jsonb	   *violations;		/* tagged/omitted findings, stored on the row */
} SegmentEvent;

/* json_parse.c */
extern Jsonb *ek_json_to_jsonb(const char *str, int len);

/* Values the batch envelope lends to the events in it. */
typedef struct EnvelopeDefaults
{
	bool		has_sent_at;
	TimestampTz sent_at;
	JsonbValue	context;		/* batch-level context (jbvBinary), or jbvNull */
} EnvelopeDefaults;

extern void ek_parse_event(SegmentEvent *ev, const EnvelopeDefaults *env,
						   TimestampTz received_at);
extern void ek_add_problem(SegmentEvent *ev, const char *reason,
						   const char *fmt,...) pg_attribute_printf(3, 4);
extern bool ek_parse_iso8601(const char *str, int len, TimestampTz *result);
extern bool ek_stored_event_time(Jsonb *payload, Jsonb *envelope,
								 TimestampTz received_at, TimestampTz *ts);
extern Jsonb *ek_problems_jsonb(const SegmentEvent *ev);

/* ---- plan.c ---- */

/* The plan a batch is checked against, resolved once per batch. */
typedef struct CompiledPlan CompiledPlan;

extern CompiledPlan *ek_plan_for_stream(const StreamInfo *stream);
extern void ek_plan_check_event(CompiledPlan *plan, SegmentEvent *ev);
extern void ek_push_findings(JsonbParseState **state, const SegmentEvent *ev);
extern void ek_log_batch_violations(const StreamInfo *stream, SegmentEvent *events,
									int nevents, int64 batch_id);

/* ---- dedup.c ---- */

typedef enum DedupVerdict
{
	DEDUP_NEW,
	DEDUP_DUPLICATE,
	DEDUP_CONFLICT
} DedupVerdict;

extern Oid	ek_ledger_relid(int32 stream_id, bool missing_ok);
extern void ek_create_ledger(int32 stream_id);
extern void ek_create_ledger_generation(int32 stream_id, int32 gen);
extern void ek_dedup_claim(const StreamInfo *stream, SegmentEvent **events,
						   int nevents, int64 batch_id, DedupVerdict *verdicts);
extern bool ek_rotate_ledger(StreamInfo *stream);
extern int	ek_prune_ledger(const StreamInfo *stream);
extern void ek_drop_ledger(int32 stream_id);
extern Oid	ek_ledger_generation_relid(int32 stream_id, int32 gen);

/* ---- ledger_filter.c ---- */

typedef struct LedgerFilter LedgerFilter;

extern uint64 ek_id_hash64(const char *id, size_t len);
extern bool ek_ledger_filter_may_contain(const LedgerFilter *f, uint64 h);
extern int	ek_ledger_filter_select(const LedgerFilter *f, const uint64 *hashes,
									int n, int *out);
extern bool ek_ledger_filters_installed(void);
extern int	ek_build_ledger_filters(const StreamInfo *stream);
extern const LedgerFilter *ek_ledger_filter_get(int32 stream_id, int32 gen,
												Oid gen_relid, int64 stored_bytes);
extern void ek_ledger_filter_forget(int32 stream_id, int32 min_gen);

/* ---- writer.c ---- */

/*
 * Options for table_multi_insert of stream and ledger rows: append, never
 * look in the free space map.  Both tables are append-only; after VACUUM
 * the map lists every old page with a few hundred bytes free, and filling
 * those means reading cold pages and logging a full-page image for each,
 * a cost that grows with the table.  Space freed by deletes is left to
 * VACUUM FULL or to the retention that drops whole partitions.
 */
#define EK_APPEND_INSERT_OPTIONS TABLE_INSERT_SKIP_FSM

extern BulkInsertState ek_begin_bulk_insert(void);
extern BulkInsertState ek_bulk_insert_for(BulkInsertState bistate, Relation rel);
extern void ek_end_bulk_insert(BulkInsertState bistate);
extern void ek_write_events(const StreamInfo *stream, SegmentEvent **events,
							int n, int64 batch_id, TimestampTz received_at);

/* ---- ingest.c ---- */

extern void ek_replay_quarantine(Oid relid, Datum ids, bool ids_null,
								 int64 *counts);

/* ---- rollup.c ---- */

extern int64 ek_refresh_rollup_job(Oid relid);

/* ---- maintenance.c ---- */

extern void ek_maintain_stream(StreamInfo *stream, TimestampTz now, bool isolate);

/* ---- jobs.c ---- */

/*
 * Job kinds.  Stream jobs (premake, retention, ledger, redrive) carry the
 * stream's id; refresh_rollup jobs carry the rollup's name as target.
 */
#define EK_JOB_PREMAKE			"premake"
#define EK_JOB_RETENTION		"retention"
#define EK_JOB_LEDGER			"ledger"
#define EK_JOB_REDRIVE			"redrive"
#define EK_JOB_REFRESH_ROLLUP	"refresh_rollup"

extern bool ek_jobs_installed(void);
extern int64 ek_schedule_job(const char *kind, int32 stream_id,
							 const char *target, const Interval *schedule);
extern void ek_unschedule_job(const char *kind, const char *target);
extern int	ek_schedule_stream_jobs(const StreamInfo *stream);
extern void ek_unschedule_stream_jobs(int32 stream_id);
extern TimestampTz ek_job_clock(void);
extern int64 ek_run_stream_job(const char *kind, StreamInfo *stream,
							   TimestampTz now);
extern void ek_job_worker_execute(Oid dboid, int64 job_id);
extern void ek_jobs_mark_orphans(Datum running);
extern void ek_jobs_purge_history(void);
extern int	ek_jobs_due(Datum running, int limit, int64 **out,
						MemoryContext cxt);
extern void ek_jobs_run_ledger_now(int32 stream_id);
extern bool ek_jobs_any_enabled(void);
extern void ek_jobs_record_manual_run(int32 stream_id, const char *kind,
									  const char *error);

/* ---- worker.c ---- */

extern void ek_worker_init(void);
extern void ek_nudge_ledger_job(int32 stream_id);

#endif							/* EVENTKIT_H */
