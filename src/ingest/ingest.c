/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  The ingest orchestrator: eventkit.ingest() and
 *	  eventkit.ingest_verbose() turn a payload (one event, an array, a
 *	  Segment batch envelope, or NDJSON text) into stored rows, duplicates,
 *	  conflicts, quarantine rows (a retried event stored once) or
 *	  rejections, in one transaction-safe pass per call;
 *	  eventkit.replay_quarantine() and the redrive job run quarantined
 *	  events through the same pass, and ek_ingest_jsonb_payload() and
 *	  ek_ingest_text_items() (ingest.h) run the intake workers' payloads
 *	  through it (src/intake/: HTTP, Kafka).
 *
 *	  ingest_batch() is the pass, a straight line of stage calls: parse
 *	  the events (pipeline/event.c), reject those with an erased id
 *	  (pipeline/identity.c), check them against the stream's tracking
 *	  plan (pipeline/plan/), place them in time (partitions,
 *	  pipeline/partition.c), dedup them (pipeline/dedup/), write the new
 *	  ones (pipeline/writer.c), fold them into the rollups' deltas
 *	  (rollup/delta.c), link the ids they carry (identity graph,
 *	  pipeline/identity.c), write the outcome rows, the violation counts and
 *	  the batch log (catalog/), and wake the ledger job if dedup asked.
 *	  Each stage returns what it found; none calls another.
 *
 *	  A call runs in a memory context of its own.  Per batch (not per
 *	  event) it issues one statement each to: claim ids in the ledger,
 *	  insert the accepted rows into the stream (as the caller, with the
 *	  caller's privileges), insert quarantine and conflict rows, and log
 *	  the batch (as the extension owner, catalog/).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog/batches.h"
#include "catalog/cluster.h"
#include "catalog/quarantine.h"
#include "catalog/streams.h"
#include "ingest/ingest.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/identity.h"
#include "pipeline/identity_dist.h"
#include "pipeline/partition.h"
#include "pipeline/payload.h"
#include "pipeline/plan/plan.h"
#include "pipeline/writer.h"
#include "rollup/delta.h"
#include "util/citus.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"
#include "worker/worker.h"

PG_FUNCTION_INFO_V1(eventkit_ingest_jsonb);
PG_FUNCTION_INFO_V1(eventkit_ingest_text);
PG_FUNCTION_INFO_V1(eventkit_ingest_verbose);
PG_FUNCTION_INFO_V1(eventkit_replay_quarantine);

static const char *const status_names[BATCH_NOUTCOMES] = {
	[BATCH_ACCEPTED] = "accepted",
	[BATCH_DUPLICATE] = "duplicate",
	[BATCH_CONFLICT] = "conflict",
	[BATCH_QUARANTINED] = "quarantined",
	[BATCH_REJECTED] = "rejected",
};

/* One pass: the batch's events, and what became of each. */
typedef struct IngestBatch
{
	EventBatch	items;
	BatchOutcome *status;		/* of each item */
	int64		counts[BATCH_NOUTCOMES];
	int64	   *quarantine_ids; /* replay: the quarantine row of each item */
	bool		parsed;			/* the events are parsed already (redrive) */
} IngestBatch;

/* ---------------------------------------------------------------------
 * Outcome rows
 * ---------------------------------------------------------------------
 */

/*
 * Quarantine rows.  An event already quarantined (same stream, message id
 * and fingerprint: a retry) is not stored again; the caller still counts
 * it as quarantined.
 */
static void
write_quarantine(const StreamInfo *stream, IngestBatch *b, SegmentEvent **q, int n,
				 int64 batch_id, TimestampTz received_at)
{
	QuarantineRow *rows;

	if (n == 0)
		return;
	rows = palloc(sizeof(QuarantineRow) * n);
	for (int i = 0; i < n; i++)
	{
		rows[i].item = q[i]->item;
		rows[i].message_id = q[i]->message_id;
		rows[i].reasons = ek_problems_jsonb(&q[i]->problems);
		rows[i].payload = ek_payload_item_jsonb(q[i]);
		rows[i].raw = q[i]->raw;
		rows[i].plan_version = q[i]->plan_version;
		rows[i].fingerprint = ek_payload_fingerprint(q[i]);
		rows[i].origin = q[i]->origin;
	}
	ek_quarantine_insert(stream->stream_id, batch_id, received_at,
						 ek_envelope_jsonb(&b->items.env), stream->plan_id, rows, n);
}

/*
 * After a replay: events that are now stored (or known duplicates or
 * conflicts of stored ones) leave quarantine; the others stay, with the
 * reasons of this attempt.
 */
static void
settle_replayed(const StreamInfo *stream, IngestBatch *b)
{
	int			n = b->items.nevents;
	int64	   *gone = palloc(sizeof(int64) * n);
	QuarantineRetry *kept = palloc(sizeof(QuarantineRetry) * n);
	int			ngone = 0;
	int			nkept = 0;

	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &b->items.events[i];

		if (b->status[i] == BATCH_QUARANTINED || b->status[i] == BATCH_REJECTED)
		{
			kept[nkept].quarantine_id = b->quarantine_ids[i];
			kept[nkept].reasons = ek_problems_jsonb(&ev->problems);
			kept[nkept].plan_version = ev->plan_version;
			nkept++;
		}
		else
			gone[ngone++] = b->quarantine_ids[i];
	}
	ek_quarantine_settle(stream->plan_id, gone, ngone, kept, nkept);
}

static void
write_conflicts(const StreamInfo *stream, SegmentEvent **c, int n, int64 batch_id,
				TimestampTz received_at)
{
	ConflictRow *rows;

	if (n == 0)
		return;
	rows = palloc(sizeof(ConflictRow) * n);
	for (int i = 0; i < n; i++)
	{
		rows[i].item = c[i]->item;
		rows[i].message_id = c[i]->message_id;
		rows[i].payload = ek_payload_item_jsonb(c[i]);
	}
	ek_conflicts_insert(stream->stream_id, batch_id, received_at, rows, n);
}

/* ---------------------------------------------------------------------
 * The pass
 * ---------------------------------------------------------------------
 */

/*
 * Sort the dedup verdicts of valid[] into statuses: new events to acc[],
 * conflicts to conf[] (with their problem); pending ones are left for
 * later.  before: if not NULL, only the events whose verdict there was
 * DEDUP_PENDING (those ek_dedup_settle has just decided).
 */
static void
classify_verdicts(IngestBatch *b, SegmentEvent **valid, int nvalid,
				  const DedupVerdict *verdicts, const DedupVerdict *before,
				  SegmentEvent **acc, int *nacc, SegmentEvent **conf, int *nconf)
{
	for (int i = 0; i < nvalid; i++)
	{
		int			idx = valid[i]->item - 1;

		if (before != NULL && before[i] != DEDUP_PENDING)
			continue;
		switch (verdicts[i])
		{
			case DEDUP_NEW:
				b->status[idx] = BATCH_ACCEPTED;
				acc[(*nacc)++] = valid[i];
				break;
			case DEDUP_DUPLICATE:
				b->status[idx] = BATCH_DUPLICATE;
				break;
			case DEDUP_CONFLICT:
				b->status[idx] = BATCH_CONFLICT;
				ek_add_problem(&valid[i]->problems, EK_REASON_CONFLICT,
							   "messageId \"%s\" was already stored with different content; the first copy is kept",
							   valid[i]->message_id);
				conf[(*nconf)++] = valid[i];
				break;
			case DEDUP_PENDING:
				break;
		}
	}
}


/*
 * The whole ingest of one batch, whose items are in b.  known: the
 * stream's catalog row if the caller has read it in this call, else NULL.
 */
static void
ingest_batch(Oid relid, const StreamInfo *known, IngestBatch *b, TimestampTz received_at)
{
	EventBatch *items = &b->items;
	int			n = items->nevents;
	StreamInfo	stream;
	Oid			caller = GetUserId();
	int64		batch_id;
	SegmentEvent **valid = palloc(sizeof(SegmentEvent *) * (n + 1));
	SegmentEvent **acc = palloc(sizeof(SegmentEvent *) * (n + 1));
	SegmentEvent **quar = palloc(sizeof(SegmentEvent *) * (n + 1));
	SegmentEvent **conf = palloc(sizeof(SegmentEvent *) * (n + 1));
	int			nvalid = 0,
				nacc = 0,
				nquar = 0,
				nconf = 0;
	DedupVerdict *verdicts = palloc(sizeof(DedupVerdict) * (n + 1));
	MemoryContext batch_cxt = CurrentMemoryContext;
	CompiledPlan *plan;
	bool		nudge_ledger;
	DedupPending *pending;
	EkRoleScope as_owner;
	int			citus_nest = 0;
	bool		distributed;
	bool		on_worker;		/* a Citus worker's call, on a distributed stream */
	bool		write_remote;
	const char *local_key;		/* a user key of this node's shards written */

	b->status = palloc0(sizeof(BatchOutcome) * (n + 1));

	/* the events' fields, time and fingerprint */
	if (!b->parsed)
		for (int i = 0; i < n; i++)
		{
			SegmentEvent *ev = &items->events[i];

			CHECK_FOR_INTERRUPTS();
			if (ev->raw == NULL)
				ek_parse_event(ev, &items->env, received_at);
		}

	SPI_connect();
	MemoryContextSwitchTo(batch_cxt);
	if (known != NULL)
		stream = *known;
	else
		ek_streams_read(relid, &stream, false);
	distributed = ek_citus_table_kind(stream.relid) == EK_CITUS_HASH;

	/* events with an id forget_user erased are rejected (suppressed) */
	ek_identity_check_suppressed(&stream, items->events, n);

	/*
	 * The stream's tracking plan.  On a Citus worker, this call may have
	 * just adopted it from the cluster-wide catalog (catalog/cluster.h):
	 * the plan's read-only statement needs a snapshot that sees it.
	 */
	on_worker = distributed && ek_citus_on_worker();
	if (on_worker)
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		plan = ek_plan_for_stream(&stream);
		PopActiveSnapshot();
	}
	else
		plan = ek_plan_for_stream(&stream);
	if (plan != NULL)
		for (int i = 0; i < n; i++)
		{
			SegmentEvent *ev = &items->events[i];

			if (ek_event_ok(ev))
				ek_plan_check_event(plan, ev);
		}

	/*
	 * A call reaches a distributed stream's co-located placements through
	 * Citus as one role, which Citus requires: the stream's owner (the
	 * partitions it makes, the ledger claims, the rows that go through
	 * Citus; pipeline/writer.c), after the caller's INSERT was checked.
	 * The ledger must be that role's.  A stream that is not distributed
	 * must have no distributed ledger beside it (a Citus coordinator's
	 * dump restored here: its ids are there).
	 */
	if (distributed)
		ek_dedup_check_dist_ledger(&stream);
	else
		ek_dedup_check_local_ledger(&stream);

	/*
	 * where in time: partitions made, or too_old, too_new, out_of_range; a
	 * distributed stream's events that wait for a partition wake the
	 * coordinator's premake job when this transaction commits
	 */
	if (ek_place_events(&stream, items->events, n,
						GetCurrentTransactionStartTimestamp()) > 0 &&
		!on_worker)
		ek_nudge_partition_jobs(stream.stream_id);

	/* events with problems are quarantined or rejected */
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &items->events[i];

		if (ek_event_ok(ev))
			valid[nvalid++] = ev;
		else if (ek_problems_reject(&ev->problems,
									ek_invalid_events == INVALID_EVENTS_REJECT))
			b->status[i] = BATCH_REJECTED;
		else
		{
			b->status[i] = BATCH_QUARANTINED;
			quar[nquar++] = ev;
		}
	}

	/*
	 * A stream distributed on Citus: its ledger claim and its rows go to
	 * the shards one shard after another (citus.multi_shard_modify_mode),
	 * so that two calls claiming the same ids on several shards wait for
	 * each other in one order instead of deadlocking across nodes, and a
	 * call holds one connection per node.
	 */
	if (distributed)
	{
		citus_nest = NewGUCNestLevel();
		(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	}

	/*
	 * The others are new, duplicates or conflicts (one owner scope for
	 * both).  A distributed stream's new events of other nodes' shards are
	 * written on their nodes with their claims, one call per node
	 * (pipeline/dedup/dist_ledger.c), when this transaction has written
	 * nothing before (no partition made by this call, no earlier call):
	 * Citus knows only one shard of each such call, and a shard that
	 * this transaction reached through Citus before is best reached the
	 * same way again.
	 */
	write_remote = distributed && !TransactionIdIsValid(GetTopTransactionIdIfAny());
	ek_as_owner_begin(&as_owner);
	batch_id = ek_batches_next_id();
	nudge_ledger = ek_dedup_claim(&stream, valid, nvalid, batch_id, received_at, write_remote,
								  verdicts, &pending);
	ek_as_role_end(&as_owner);
	MemoryContextSwitchTo(batch_cxt);
	classify_verdicts(b, valid, nvalid, verdicts, NULL, acc, &nacc, conf, &nconf);

	/* the new ones into the stream, and the rollups' deltas of them */
	if (ek_write_events(&stream, acc, nacc, batch_id, received_at, &local_key))
		ek_rollup_write_deltas(&stream, acc, nacc, batch_id, received_at, local_key);
	else
		ek_rollup_no_deltas(&stream, nacc);

	/*
	 * Ids other batches' claims held in flight: wait for those batches now
	 * (after our write, so the waits overlap it), then write the events
	 * whose holder aborted, which are ours to store.
	 */
	if (pending != NULL)
	{
		int			nfirst = nacc;
		DedupVerdict *before = palloc(sizeof(DedupVerdict) * (nvalid + 1));

		memcpy(before, verdicts, sizeof(DedupVerdict) * nvalid);
		ek_as_owner_begin(&as_owner);
		ek_dedup_settle(pending, verdicts);
		ek_as_role_end(&as_owner);
		MemoryContextSwitchTo(batch_cxt);
		classify_verdicts(b, valid, nvalid, verdicts, before, acc, &nacc, conf, &nconf);
		if (ek_write_events(&stream, acc + nfirst, nacc - nfirst, batch_id, received_at,
							&local_key))
			ek_rollup_write_deltas(&stream, acc + nfirst, nacc - nfirst, batch_id, received_at,
								   local_key);
		else
			ek_rollup_no_deltas(&stream, nacc - nfirst);
	}
	for (int i = 0; i < n; i++)
		b->counts[b->status[i]]++;
	if (citus_nest > 0)
		AtEOXact_GUC(true, citus_nest);
	MemoryContextSwitchTo(batch_cxt);

	/*
	 * the ids the stored events link (identity graph); on a Citus worker
	 * in the coordinator's graph of the stream first, then in its own (the
	 * coordinator's identity lock before the worker's, as forget_user
	 * takes them: identity_dist.c)
	 */
	if (on_worker)
	{
		ek_identity_forward_links(&stream, acc, nacc, batch_id);
		MemoryContextSwitchTo(batch_cxt);
	}
	(void) ek_identity_link_events(&stream, acc, nacc);
	MemoryContextSwitchTo(batch_cxt);

	/* what became of the others, and of the batch */
	ek_as_owner_begin(&as_owner);
	if (b->quarantine_ids != NULL)
		settle_replayed(&stream, b);
	else
		write_quarantine(&stream, b, quar, nquar, batch_id, received_at);
	write_conflicts(&stream, conf, nconf, batch_id, received_at);
	if (plan != NULL)
	{
		ViolationCount *counts;
		int			ncounts = ek_plan_violation_counts(items->events, n, &counts);

		ek_batches_log_violations(batch_id, stream.stream_id, stream.plan_id,
								  counts, ncounts);
	}
	ek_batches_log(batch_id, stream.stream_id, received_at, caller, n, b->counts);
	ek_as_role_end(&as_owner);

	SPI_finish();
	MemoryContextSwitchTo(batch_cxt);

	/* the current ledger generation is full: the ledger job rotates it */
	if (nudge_ledger)
		ek_nudge_ledger_job(stream.stream_id);
}

/* ---------------------------------------------------------------------
 * SQL-callable entry points
 * ---------------------------------------------------------------------
 */

/*
 * Lock the stream against concurrent DROP, as an INSERT would; check
 * USAGE on its schema (which naming it in an INSERT needs, and a regclass
 * given as an OID skips) and INSERT on it.
 */
static void
lock_stream_for_insert(Oid relid)
{
	LockRelationOid(relid, RowExclusiveLock);
	ek_check_relation_access(relid, ACL_INSERT);
}

/*
 * Common start of every entry point: checks the arguments and the
 * caller's INSERT privilege, and opens the call's memory context.
 */
static MemoryContext
begin_ingest(FunctionCallInfo fcinfo, Oid *relid, TimestampTz *received_at)
{
	ek_apply_memory_retention();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null"),
				 errhint("Send a JSON event, an array of events or a batch envelope.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("received_at must not be null"),
				 errhint("Leave received_at out to use now().")));
	*relid = PG_GETARG_OID(0);
	*received_at = PG_GETARG_TIMESTAMPTZ(2);
	if (TIMESTAMP_NOT_FINITE(*received_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("received_at must be a finite timestamp"),
				 errhint("Leave received_at out to use now().")));
	lock_stream_for_insert(*relid);

	return AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest",
								 ALLOCSET_DEFAULT_SIZES);
}

static Datum
ingest_result_datum(FunctionCallInfo fcinfo, const int64 *counts)
{
	TupleDesc	tupdesc;
	Datum		values[BATCH_NOUTCOMES];
	bool		nulls[BATCH_NOUTCOMES];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "eventkit: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	for (int s = 0; s < BATCH_NOUTCOMES; s++)
	{
		values[s] = Int64GetDatum(counts[s]);
		nulls[s] = false;
	}
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* The stream's catalog row, and an empty batch within its limits. */
static void
init_batch(IngestBatch *b, Oid relid, StreamInfo *stream)
{
	MemoryContext cxt = CurrentMemoryContext;

	SPI_connect();
	ek_cluster_sync_local(relid);
	ek_streams_read(relid, stream, false);
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	memset(b, 0, sizeof(IngestBatch));
	ek_payload_init(&b->items, stream);
}

/*
 * Collect the payload argument's items into b, within the stream's limits,
 * and ingest them.
 */
static void
ingest_payload_argument(FunctionCallInfo fcinfo, bool is_text, Oid relid,
						TimestampTz received_at, IngestBatch *b)
{
	StreamInfo	stream;

	init_batch(b, relid, &stream);
	if (is_text)
	{
		text	   *payload = PG_GETARG_TEXT_PP(1);
		char	   *str;

		ek_payload_check_size(&b->items, VARSIZE_ANY_EXHDR(payload));
		/* JSON the fast parser reads is read where it is, not copied */
		if (!ek_payload_text_direct(&b->items, VARDATA_ANY(payload),
									VARSIZE_ANY_EXHDR(payload)))
		{
			str = text_to_cstring(payload);
			ek_payload_text(&b->items, str, strlen(str));
		}
	}
	else
	{
		Jsonb	   *payload = PG_GETARG_JSONB_P(1);

		ek_payload_check_size(&b->items, VARSIZE_ANY_EXHDR(payload));
		ek_payload_jsonb(&b->items, payload);
	}
	ingest_batch(relid, &stream, b, received_at);
}

static Datum
ingest_returning_counts(FunctionCallInfo fcinfo, bool is_text)
{
	Oid			relid;
	TimestampTz received_at;
	MemoryContext cxt = begin_ingest(fcinfo, &relid, &received_at);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	IngestBatch b;
	Datum		result;

	ingest_payload_argument(fcinfo, is_text, relid, received_at, &b);
	MemoryContextSwitchTo(old);
	result = ingest_result_datum(fcinfo, b.counts);
	MemoryContextDelete(cxt);
	return result;
}

static void
add_to_counts(IngestCounts *out, const IngestBatch *b)
{
	out->accepted += b->counts[BATCH_ACCEPTED];
	out->duplicates += b->counts[BATCH_DUPLICATE];
	out->conflicts += b->counts[BATCH_CONFLICT];
	out->quarantined += b->counts[BATCH_QUARANTINED];
	out->rejected += b->counts[BATCH_REJECTED];
}

/*
 * eventkit.ingest(stream, payload jsonb, received_at) for C callers (the
 * HTTP intake, src/intake/): the same privilege checks (the current user
 * needs USAGE on the stream's schema and INSERT on it), the stream's
 * limits, the same pass, the counts in *out.  Errors are thrown as from
 * the SQL function, nothing half-written.
 */
void
ek_ingest_jsonb_payload(Oid relid, Jsonb *payload, TimestampTz received_at,
						IngestCounts *out)
{
	MemoryContext cxt;
	MemoryContext old;
	StreamInfo	stream;
	IngestBatch b;

	ek_apply_memory_retention();
	lock_stream_for_insert(relid);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	init_batch(&b, relid, &stream);
	ek_payload_check_size(&b.items, VARSIZE_ANY_EXHDR(payload));
	ek_payload_jsonb(&b.items, payload);
	ingest_batch(relid, &stream, &b, received_at);
	MemoryContextSwitchTo(old);
	memset(out, 0, sizeof(IngestCounts));
	add_to_counts(out, &b);
	MemoryContextDelete(cxt);
}

Datum
eventkit_ingest_jsonb(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(ingest_returning_counts(fcinfo, false));
}

Datum
eventkit_ingest_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(ingest_returning_counts(fcinfo, true));
}

Datum
eventkit_ingest_verbose(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	TimestampTz received_at;
	MemoryContext cxt = begin_ingest(fcinfo, &relid, &received_at);
	MemoryContext old;
	IngestBatch b;

	InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(cxt);
	ingest_payload_argument(fcinfo, false, relid, received_at, &b);

	for (int i = 0; i < b.items.nevents; i++)
	{
		SegmentEvent *ev = &b.items.events[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(ev->item);
		values[1] = EK_TEXT_OR_NULL(ev->message_id);
		nulls[1] = ev->message_id == NULL;
		values[2] = PointerGetDatum(cstring_to_text(status_names[b.status[i]]));
		if (!ek_event_ok(ev))
			values[3] = JsonbPGetDatum(ek_problems_jsonb(&ev->problems));
		else if (ev->violations != NULL)
			values[3] = JsonbPGetDatum(ev->violations);
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Several payloads in one call (intake workers)
 * ---------------------------------------------------------------------
 */

typedef struct ItemRange
{
	const EventBatch *proto;
	const IngestItem *items;
	EventBatch *parts;
	int			from;
	int			to;
} ItemRange;

/* Each item's events into a batch of its own. */
static void
collect_item_range(void *arg)
{
	ItemRange  *r = (ItemRange *) arg;

	for (int i = r->from; i < r->to; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ek_payload_init_like(&r->parts[i], r->proto);
		r->parts[i].origin = r->items[i].origin;
		ek_payload_item(&r->parts[i], r->items[i].data, r->items[i].len);
	}
}

/* Errors that are not the payload's fault end the call. */
static void
rethrow_unless_payload_error(ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		ReThrowError(edata);
}

static void
ingest_part(const StreamInfo *stream, IngestBatch *b, TimestampTz received_at,
			IngestCounts *out)
{
	ingest_batch(stream->relid, stream, b, received_at);
	add_to_counts(out, b);
}

/*
 * Ingest several payloads into a stream as the current user, in the
 * caller's transaction, as eventkit.ingest(stream, text) would ingest each
 * of them in turn: the caller needs INSERT on the stream; events are
 * stored, found duplicates or conflicts, quarantined or rejected; the
 * events of an item are quarantined with its origin.  The events of
 * consecutive items are ingested together, in batches within
 * eventkit.max_batch_items and max_batch_bytes (an item with a batch
 * envelope is a batch of its own).  A payload that eventkit.ingest would
 * refuse with an error (over the limits, not text, a bad envelope) is one
 * quarantined item here, so that one bad payload never holds back the
 * others.  items[i].nevents is set.  Must not be called while connected
 * to SPI.
 */
void
ek_ingest_text_items(Oid relid, IngestItem *items, int nitems,
					 TimestampTz received_at, IngestCounts *out)
{
	MemoryContext cxt;
	MemoryContext old;
	StreamInfo	stream;
	IngestBatch proto;
	EventBatch *parts;
	IngestBatch cur;
	int64		cur_bytes = 0;
	int			max_items;
	int			max_bytes;
	ItemRange	all;
	ErrorData  *edata;

	memset(out, 0, sizeof(IngestCounts));
	ek_apply_memory_retention();
	lock_stream_for_insert(relid);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest items",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	init_batch(&proto, relid, &stream);
	max_items = stream.max_batch_items > 0 ? stream.max_batch_items : ek_max_batch_items;
	max_bytes = stream.max_batch_bytes > 0 ? stream.max_batch_bytes : ek_max_batch_bytes;

	/* collecting has no side effects: all at once, or one by one on error */
	parts = palloc0(sizeof(EventBatch) * Max(nitems, 1));
	all.proto = &proto.items;
	all.items = items;
	all.parts = parts;
	all.from = 0;
	all.to = nitems;
	edata = ek_run_in_subtransaction(collect_item_range, &all);
	if (edata != NULL)
	{
		rethrow_unless_payload_error(edata);
		for (int i = 0; i < nitems; i++)
		{
			ItemRange	one = {&proto.items, items, parts, i, i + 1};

			edata = ek_run_in_subtransaction(collect_item_range, &one);
			if (edata == NULL)
				continue;
			rethrow_unless_payload_error(edata);
			ek_payload_init_like(&parts[i], &proto.items);
			parts[i].origin = items[i].origin;
			ek_payload_unusable(&parts[i], items[i].data, items[i].len,
								EK_REASON_UNUSABLE_PAYLOAD, edata->message);
		}
	}

	memset(&cur, 0, sizeof(IngestBatch));
	ek_payload_init_like(&cur.items, &proto.items);
	for (int i = 0; i < nitems; i++)
	{
		EventBatch *p = &parts[i];
		bool		envelope = p->env.has_sent_at || p->env.context.type == jbvBinary;

		items[i].nevents = p->nevents;
		if (p->nevents == 0)
			continue;
		if (cur.items.nevents > 0 &&
			(envelope || cur.items.nevents + p->nevents > max_items ||
			 cur_bytes + items[i].len > max_bytes))
		{
			ingest_part(&stream, &cur, received_at, out);
			memset(&cur, 0, sizeof(IngestBatch));
			ek_payload_init_like(&cur.items, &proto.items);
			cur_bytes = 0;
		}
		if (envelope)
		{
			IngestBatch whole;

			memset(&whole, 0, sizeof(IngestBatch));
			whole.items = *p;
			ingest_part(&stream, &whole, received_at, out);
			continue;
		}
		for (int e = 0; e < p->nevents; e++)
			(void) ek_payload_add_event(&cur.items, &p->events[e]);
		cur_bytes += items[i].len;
	}
	if (cur.items.nevents > 0)
		ingest_part(&stream, &cur, received_at, out);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* ---------------------------------------------------------------------
 * Replaying quarantined events
 * ---------------------------------------------------------------------
 */

/*
 * Replays of a distributed stream's quarantine run one at a time in the
 * whole cluster.  Each node's quarantine may hold copies of the same events
 * (a client's retries through two nodes), each replayed in its own
 * quarantine's order, several batches in one transaction: two replays at
 * once (redrive_quarantine or replay_quarantine by hand on two nodes, or
 * the redrive job and one by hand) claimed the same ids in crossing orders,
 * a distributed deadlock that Citus resolved by cancelling one.  So a
 * replay first takes SHARE UPDATE EXCLUSIVE on the stream's distributed
 * ledger, until its transaction ends: Citus takes a LOCK TABLE of a Citus
 * table on every node with metadata, in one order whichever node asks, and
 * the mode conflicts with itself only among what eventkit takes there
 * (ingest's claims take ROW EXCLUSIVE; the premake job, whose re-drive
 * calls the workers' replays from a connection of its own, takes nothing
 * on the ledger).  The second replay waits for the first.  As the ledger's
 * owner (the stream's), who may lock it.  Caller: SPI connected; the
 * caller's memory context stays current.
 */
static void
serialize_replays(const StreamInfo *stream)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			ledger;
	EkRoleScope as_owner;

	if (ek_citus_table_kind(stream->relid) != EK_CITUS_HASH)
		return;
	ledger = ek_dedup_dist_ledger_relid(stream->stream_id);
	if (!OidIsValid(ledger))
		return;
	ek_as_role_begin(&as_owner, ek_relation_owner(ledger), 0);
	ek_spi_exec(psprintf("LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE",
						 ek_qualified_relname(ledger)),
				SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
	/* (SPI leaves its own context current) */
	MemoryContextSwitchTo(cxt);
}

/*
 * A replay may be run by the current user if it may ingest into the
 * stream, and owns it (the quarantine holds other roles' events: the
 * stream's owner decides).
 */
static void
check_replay(Oid relid)
{
	lock_stream_for_insert(relid);
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	ek_apply_memory_retention();
}

/* A quarantined event as an item of b. */
static SegmentEvent *
add_quarantined(IngestBatch *b, const QuarantinedEvent *row)
{
	Jsonb	   *jb = row->payload;
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
		(void) JsonbExtractScalar(&jb->root, &v);
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
	}
	b->quarantine_ids[b->items.nevents] = row->quarantine_id;
	return ek_payload_add_value(&b->items, &v, VARSIZE_ANY_EXHDR(jb));
}

/*
 * The end of the run of quarantined rows from start that replay as one
 * batch: rows of the same original batch (its envelope), at most
 * eventkit.max_batch_items.
 */
static int
replay_run_end(const QuarantinedEvent *rows, int start, int n)
{
	int			end = start;

	while (end < n && rows[end].batch_id == rows[start].batch_id &&
		   end - start < ek_max_batch_items)
		end++;
	return end;
}

/* Start a batch of replayed events with room for n and their envelope. */
static void
begin_replayed_batch(IngestBatch *b, int n, Jsonb *envelope)
{
	memset(b, 0, sizeof(IngestBatch));
	ek_payload_init(&b->items, NULL);
	b->items.replay = true;
	ek_envelope_read(envelope, &b->items.env);
	b->quarantine_ids = palloc(sizeof(int64) * Max(n, 1));
}

static void
add_counts(int64 *total, const IngestBatch *b)
{
	for (int s = 0; s < BATCH_NOUTCOMES; s++)
		total[s] += b->counts[s];
}

/*
 * Re-run quarantined events of a stream (all of them, or those whose ids
 * are in the int8[] ids) through the normal path, with the plan in force
 * now: those stored (or found to be duplicates or conflicts of stored
 * events) leave quarantine, the others stay with updated reasons.  Events
 * are replayed in groups of their original batch, with that batch's
 * receipt time and envelope.  Runs as the current user, who needs INSERT
 * on the stream, as for ingest, and its ownership.  Adds the outcome to
 * counts[BATCH_NOUTCOMES].
 */
void
ek_replay_quarantine(Oid relid, Datum ids, bool ids_null, int64 *counts)
{
	MemoryContext cxt;
	MemoryContext old;
	StreamInfo	stream;
	QuarantinedEvent *rows;
	int			n;

	check_replay(relid);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit replay",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	SPI_connect();
	MemoryContextSwitchTo(cxt);
	ek_cluster_sync_local(relid);
	ek_streams_read(relid, &stream, false);
	serialize_replays(&stream);
	rows = ek_quarantine_read(stream.stream_id, ids, ids_null, &n);
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	for (int start = 0; start < n;)
	{
		IngestBatch b;
		int			end = replay_run_end(rows, start, n);

		begin_replayed_batch(&b, end - start, rows[start].envelope);
		for (int i = start; i < end; i++)
			(void) add_quarantined(&b, &rows[i]);
		ingest_batch(relid, NULL, &b, rows[start].received_at);
		add_counts(counts, &b);
		start = end;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* A waiting event ready to be re-driven: parsed, its partition made. */
typedef struct ReadyEvent
{
	int64		quarantine_id;
	SegmentEvent ev;
} ReadyEvent;

static int
compare_ready(const void *a, const void *b)
{
	int64		x = ((const ReadyEvent *) a)->quarantine_id;
	int64		y = ((const ReadyEvent *) b)->quarantine_id;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* A quarantined event parsed as ingest parses it (with its envelope). */
static void
parse_quarantined(const QuarantinedEvent *row, SegmentEvent *ev)
{
	EnvelopeDefaults env;

	memset(ev, 0, sizeof(SegmentEvent));
	ek_envelope_read(row->envelope, &env);
	ev->item = 1;
	ev->source.type = jbvNull;
	if (!JB_ROOT_IS_SCALAR(row->payload))
	{
		ev->source.type = jbvBinary;
		ev->source.val.binary.data = &row->payload->root;
		ev->source.val.binary.len = VARSIZE_ANY_EXHDR(row->payload);
		ev->payload = row->payload;
	}
	ek_parse_event(ev, &env, row->received_at);
}

/*
 * The redrive job's replay: of the first limit events of the stream that
 * wait for a partition (quarantined out_of_range), those whose partition
 * exists now are replayed as ek_replay_quarantine() replays them, each
 * parsed once; the others are left as they are.  Sets *waiting to the
 * events looked at; returns how many were replayed, and adds their
 * outcome to counts.  Runs as the current user (the job makes it the
 * stream's owner), who needs what ek_replay_quarantine() needs, once
 * there is something to replay.
 */
int
ek_redrive_quarantine(Oid relid, int limit, int64 *counts, int *waiting)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit redrive",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	StreamInfo	stream;
	QuarantinedEvent *rows;
	ReadyEvent *ready;
	int			n;
	int			nready = 0;
	Datum	   *ids;
	int			replayed = 0;

	SPI_connect();
	MemoryContextSwitchTo(cxt);
	ek_streams_read(relid, &stream, false);
	rows = ek_quarantine_read_waiting(stream.stream_id, limit, &n);
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	*waiting = n;

	/* which ones have their partition now */
	ready = palloc(sizeof(ReadyEvent) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		ReadyEvent *r = &ready[nready];

		CHECK_FOR_INTERRUPTS();
		parse_quarantined(&rows[i], &r->ev);
		if (ek_event_ok(&r->ev) && ek_partition_exists_for(relid, r->ev.ts))
		{
			r->quarantine_id = rows[i].quarantine_id;
			nready++;
		}
	}

	if (nready > 0)
	{
		check_replay(relid);
		qsort(ready, nready, sizeof(ReadyEvent), compare_ready);
		ids = palloc(sizeof(Datum) * nready);
		for (int i = 0; i < nready; i++)
			ids[i] = Int64GetDatum(ready[i].quarantine_id);

		/* locked (a concurrent replay may have taken some), in arrival order */
		SPI_connect();
		MemoryContextSwitchTo(cxt);
		serialize_replays(&stream);
		rows = ek_quarantine_read(stream.stream_id, ek_make_array(ids, NULL, nready, INT8OID),
								  false, &n);
		SPI_finish();
		MemoryContextSwitchTo(cxt);

		for (int start = 0; start < n;)
		{
			IngestBatch b;
			int			end = replay_run_end(rows, start, n);

			begin_replayed_batch(&b, end - start, rows[start].envelope);
			b.parsed = true;
			for (int i = start; i < end; i++)
			{
				ReadyEvent	key = {.quarantine_id = rows[i].quarantine_id};
				ReadyEvent *r = bsearch(&key, ready, nready, sizeof(ReadyEvent), compare_ready);
				SegmentEvent *ev = add_quarantined(&b, &rows[i]);
				int32		item = ev->item;
				int32		size = ev->size;

				Assert(r != NULL);
				*ev = r->ev;
				ev->item = item;
				ev->size = size;
			}
			replayed += b.items.nevents;
			ingest_batch(relid, NULL, &b, rows[start].received_at);
			add_counts(counts, &b);
			start = end;
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return replayed;
}

/*
 * eventkit.replay_quarantine(stream regclass, ids bigint[] DEFAULT NULL):
 * the SQL face of ek_replay_quarantine().
 */
Datum
eventkit_replay_quarantine(PG_FUNCTION_ARGS)
{
	int64		counts[BATCH_NOUTCOMES] = {0};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	ek_replay_quarantine(PG_GETARG_OID(0), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
						 PG_ARGISNULL(1), counts);
	PG_RETURN_DATUM(ingest_result_datum(fcinfo, counts));
}
