/*-------------------------------------------------------------------------
 *
 * partition.c
 *	  Time partitions of a stream: aligning timestamps to the partition
 *	  interval, finding whether a partition covers a timestamp, creating
 *	  partitions (optionally hash sub-partitioned by user key) that carry
 *	  the stream's defaults, constraints and generated columns, without
 *	  taking ACCESS EXCLUSIVE on the stream, premaking future partitions,
 *	  making the past partitions that quarantined out_of_range events wait
 *	  for (a few per run), a stream's time bounds (clock bounds, retention,
 *	  premake horizon), where each event of a batch goes (placement: stored,
 *	  or quarantined too_old, too_new or out_of_range) and dropping
 *	  partitions past the retention period.  DDL runs as the stream's
 *	  owner (a role scope, util/owner.c).
 *
 *	  Partition bounds are aligned in UTC on 2000-01-01 00:00:00+00 (for
 *	  fixed intervals) or on month starts (for intervals in months), so that
 *	  every session and the worker compute the same bounds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "catalog/quarantine.h"
#include "pipeline/event.h"
#include "pipeline/partition.h"
#include "util/citus.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

#define MIN_FIXED_INTERVAL_USECS (60 * USECS_PER_SEC)

static bool
interval_in_months(const Interval *iv)
{
	return iv->month > 0;
}

static int64
interval_usecs(const Interval *iv)
{
	return iv->day * USECS_PER_DAY + iv->time;
}

/*
 * Partition intervals are either whole months (and years) or a fixed length
 * of at least one minute, where a day counts as 24 hours.
 */
void
ek_check_partition_interval(const Interval *iv)
{
	if (interval_in_months(iv) && (iv->day != 0 || iv->time != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition_interval cannot mix months with days or time"),
				 errhint("Use whole months (e.g. '1 month') or a fixed length (e.g. '1 day', '6 hours').")));
	if (!interval_in_months(iv) && interval_usecs(iv) < MIN_FIXED_INTERVAL_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition_interval must be at least 1 minute"),
				 errhint("Use a longer interval, such as '1 hour' or '1 day'.")));
}

static TimestampTz
month_start(int year, int month)
{
	struct pg_tm tm;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year;
	tm.tm_mon = month;
	tm.tm_mday = 1;
	if (tm2timestamp(&tm, 0, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

static void
ts_to_utc_tm(TimestampTz ts, struct pg_tm *tm)
{
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

/* Start of the partition interval that contains ts. */
TimestampTz
ek_bucket_start(const Interval *iv, TimestampTz ts)
{
	if (interval_in_months(iv))
	{
		struct pg_tm tm;
		int64		months;
		int64		bucket;

		ts_to_utc_tm(ts, &tm);
		months = (int64) (tm.tm_year - 2000) * 12 + (tm.tm_mon - 1);
		bucket = months >= 0 ? months / iv->month :
			-((-months + iv->month - 1) / iv->month);
		months = bucket * iv->month;
		return month_start(2000 + (int) (months >= 0 ? months / 12 : -((-months + 11) / 12)),
						   (int) (((months % 12) + 12) % 12) + 1);
	}
	else
	{
		int64		width = interval_usecs(iv);
		int64		bucket = ts >= 0 ? ts / width : -((-ts + width - 1) / width);

		return bucket * width;
	}
}

/* start advanced by n partition intervals. */
TimestampTz
ek_bucket_add(const Interval *iv, TimestampTz start, int n)
{
	if (interval_in_months(iv))
	{
		struct pg_tm tm;
		int64		months;

		ts_to_utc_tm(start, &tm);
		months = (int64) (tm.tm_year) * 12 + (tm.tm_mon - 1) + (int64) n * iv->month;
		return month_start((int) (months / 12), (int) (months % 12) + 1);
	}
	return start + (int64) n * interval_usecs(iv);
}

/* A timestamp as an unambiguous SQL literal body, in UTC. */
static char *
ts_literal(TimestampTz ts)
{
	struct pg_tm tm;

	ts_to_utc_tm(ts, &tm);
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d+00",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *
partition_name(const Interval *iv, const char *relname, TimestampTz start)
{
	struct pg_tm tm;

	ts_to_utc_tm(start, &tm);
	if (interval_in_months(iv))
		return psprintf("%s_p%04d%02d", relname, tm.tm_year, tm.tm_mon);
	if (interval_usecs(iv) % USECS_PER_DAY == 0)
		return psprintf("%s_p%04d%02d%02d", relname, tm.tm_year, tm.tm_mon, tm.tm_mday);
	return psprintf("%s_p%04d%02d%02d_%02d%02d", relname,
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/*
 * Does a partition of the (range-partitioned on ts) relation cover ts?
 * Uses the relcache's partition descriptor: no catalog access per event.
 */
bool
ek_partition_exists_for(Oid parent, TimestampTz ts)
{
	Relation	rel = table_open(parent, NoLock);
	bool		found = ek_partition_exists_in(rel, ts);

	table_close(rel, NoLock);
	return found;
}

/*
 * Whether a partition of rel (open) covers ts; if so, *part is its index
 * in rel's partition descriptor, and if its bounds are finite, [*lo, *hi)
 * are set to them and *bounded to true.
 */
static bool
partition_range_at(Relation rel, TimestampTz ts, TimestampTz *lo, TimestampTz *hi,
				   bool *bounded, int *part)
{
	PartitionKey key = RelationGetPartitionKey(rel);
	PartitionDesc desc = RelationGetPartitionDesc(rel, true);
	PartitionBoundInfo bi = desc->boundinfo;
	Datum		value = TimestampTzGetDatum(ts);
	bool		equal;
	int			offset;

	*bounded = false;
	if (bi == NULL || bi->ndatums == 0)
		return false;
	offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
										   bi, 1, &value, &equal);
	*part = bi->indexes[offset + 1];
	if (*part < 0)
		return false;
	/* the partition between bounds offset and offset + 1 (partbounds.h) */
	if (offset >= 0 && offset + 1 < bi->ndatums && bi->kind != NULL &&
		bi->kind[offset][0] == PARTITION_RANGE_DATUM_VALUE &&
		bi->kind[offset + 1][0] == PARTITION_RANGE_DATUM_VALUE)
	{
		*lo = DatumGetTimestampTz(bi->datums[offset][0]);
		*hi = DatumGetTimestampTz(bi->datums[offset + 1][0]);
		*bounded = *lo <= ts && ts < *hi;
	}
	return true;
}

/*
 * The partition of rel (open) that covers ts, when it has finite bounds:
 * its OID and [*lo, *hi).  InvalidOid otherwise (none, or a bound that is
 * MINVALUE or MAXVALUE).  For the writer, which routes the rows of a run
 * of times within one partition's bounds to the leaf routed to first.
 */
Oid
ek_partition_range_of(Relation rel, TimestampTz ts, TimestampTz *lo, TimestampTz *hi)
{
	bool		bounded;
	int			part;

	if (!partition_range_at(rel, ts, lo, hi, &bounded, &part) || !bounded)
		return InvalidOid;
	return RelationGetPartitionDesc(rel, true)->oids[part];
}

/* The same, for a stream the caller has open. */
bool
ek_partition_exists_in(Relation rel, TimestampTz ts)
{
	TimestampTz lo;
	TimestampTz hi;
	bool		bounded;
	int			part;

	return partition_range_at(rel, ts, &lo, &hi, &bounded, &part);
}

/*
 * Create the partition starting at start (aligned) and attach it.  Locks
 * the stream in SHARE UPDATE EXCLUSIVE mode first, then re-checks: another
 * session may have created it meanwhile.  The caller must be connected to
 * SPI.
 */
void
ek_create_partition(const StreamInfo *stream, TimestampTz start)
{
	TimestampTz end = ek_bucket_add(&stream->partition_interval, start, 1);
	char	   *nspname;
	char	   *relname;
	char	   *partname;
	char	   *qparent;
	char	   *qpart;
	char	   *lo;
	char	   *hi;
	StringInfoData sql;
	EkRoleScope as_owner;

	LockRelationOid(stream->relid, ShareUpdateExclusiveLock);
	if (ek_partition_exists_for(stream->relid, start))
		return;

	nspname = get_namespace_name(get_rel_namespace(stream->relid));
	relname = get_rel_name(stream->relid);
	partname = partition_name(&stream->partition_interval, relname, start);
	qparent = quote_qualified_identifier(nspname, relname);
	qpart = quote_qualified_identifier(nspname, partname);
	lo = ts_literal(start);
	hi = ts_literal(end);

	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);

	/*
	 * The partition carries what a user may have added to the stream:
	 * defaults, CHECK constraints and generated columns (ATTACH requires a
	 * generated column to be generated in the partition too, with the same
	 * expression).  Not identity: PostgreSQL 15 and 16 refuse identity
	 * columns on a partitioned table that has partitions, and from 17 on an
	 * attached partition takes the stream's identity and may have none of
	 * its own.  Indexes are attached by ATTACH PARTITION.
	 */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
					 " INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS,"
					 " CONSTRAINT %s CHECK (ts OPERATOR(pg_catalog.>=) %s::pg_catalog.timestamptz"
					 " AND ts OPERATOR(pg_catalog.<) %s::pg_catalog.timestamptz))",
					 qpart, qparent,
					 quote_identifier(psprintf("%s_ts_range", partname)),
					 quote_literal_cstr(lo), quote_literal_cstr(hi));
	if (stream->key_partitions > 0)
		appendStringInfoString(&sql, " PARTITION BY HASH (user_key)");
	ek_spi_exec(sql.data, SPI_OK_UTILITY);

	for (int i = 0; i < stream->key_partitions; i++)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "CREATE TABLE %s PARTITION OF %s"
						 " FOR VALUES WITH (MODULUS %d, REMAINDER %d)",
						 quote_qualified_identifier(nspname,
													psprintf("%s_h%d", partname, i)),
						 qpart, stream->key_partitions, i);
		ek_spi_exec(sql.data, SPI_OK_UTILITY);
	}

	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
					 qparent, qpart, quote_literal_cstr(lo), quote_literal_cstr(hi));
	ek_spi_exec(sql.data, SPI_OK_UTILITY);

	ek_as_role_end(&as_owner);
	CommandCounterIncrement();
}

/*
 * Make sure partitions exist for the interval containing now and premake
 * intervals after it.  Returns how many were created.
 */
int
ek_premake_partitions(const StreamInfo *stream, TimestampTz now)
{
	TimestampTz start = ek_bucket_start(&stream->partition_interval, now);
	int			created = 0;

	for (int i = 0; i <= stream->premake; i++)
	{
		TimestampTz s = ek_bucket_add(&stream->partition_interval, start, i);

		if (!ek_partition_exists_for(stream->relid, s))
		{
			ek_create_partition(stream, s);
			created++;
		}
	}
	return created;
}

/* now + iv, or now - iv */
static TimestampTz
shifted(TimestampTz now, const Interval *iv, bool later)
{
	return DatumGetTimestampTz(DirectFunctionCall2(later ? timestamptz_pl_interval :
												   timestamptz_mi_interval,
												   TimestampTzGetDatum(now),
												   IntervalPGetDatum(iv)));
}

/*
 * The stream's bounds at now: its clock bounds (max_past, max_future),
 * its retention and the end of the partitions premake keeps ready.
 */
void
ek_time_bounds(const StreamInfo *stream, TimestampTz now, EkTimeBounds *bounds)
{
	const Interval *iv = &stream->partition_interval;

	bounds->too_old = stream->has_max_past ? shifted(now, &stream->max_past, false) : DT_NOBEGIN;
	bounds->too_new = stream->has_max_future ? shifted(now, &stream->max_future, true) : DT_NOEND;
	bounds->oldest = stream->has_retention ? shifted(now, &stream->retention, false) : DT_NOBEGIN;
	bounds->horizon = ek_bucket_add(iv, ek_bucket_start(iv, now), stream->premake + 1);
}

/*
 * A distributed stream: no call makes its partitions, on the coordinator
 * as on a worker.  They are made by the coordinator's maintenance (the
 * premake job, eventkit.run_maintenance()), each run in a transaction of
 * its own that claims nothing; an event without one waits in quarantine,
 * out_of_range, and the redrive job stores it.  A call that made one would
 * hold, until it commits, what Citus's ATTACH PARTITION locks on the
 * workers (SHARE ROW EXCLUSIVE on the index shards of partitions that
 * exist, when the stream has indexes: a rollup's BRIN on batch_id), and
 * then claim ids that a call in flight on a worker may hold while it waits
 * to write under that lock: a distributed deadlock.
 */
static bool
distributed_stream(const StreamInfo *stream)
{
	return ek_citus_table_kind(stream->relid) == EK_CITUS_HASH;
}

/*
 * The transaction (by its local id) that last wrote what an ingest may
 * wait for: every call of ek_place_events goes on to claim its events'
 * ids, write its batch and its identity links (ek_placement_note_ingest_writes).
 */
static LocalTransactionId placed_in_lxid = InvalidLocalTransactionId;

/*
 * May this call create a partition now?  Creating one takes SHARE UPDATE
 * EXCLUSIVE on the stream until the transaction ends.
 * A transaction that has ingested already (an earlier ingest call in it,
 * or an earlier part of this one: its ledger claims, identity links,
 * quarantine rows, its batch; or a forget_user's deletes) may hold what the session creating a
 * partition waits for; waiting for that session's lock would close a
 * cycle (PostgreSQL's deadlock).  Such a transaction takes the lock
 * only if it is free; a transaction that has ingested nothing waits for
 * it, whatever else it wrote before (a sequence's nextval, a row of the
 * application's own), since no ingest waits for those.  (A distributed
 * stream's calls make no partition at all: distributed_stream().)
 * Returns false when the lock is busy: the event waits in quarantine,
 * out_of_range, for maintenance to make its partition and re-drive it.
 */
static bool
may_create_partition_now(const StreamInfo *stream)
{
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return true;
	if (placed_in_lxid != MyProc->lxid)
		return true;
	return ConditionalLockRelationOid(stream->relid, ShareUpdateExclusiveLock);
}

/*
 * Where each event goes (placement, for ingest): outside the stream's
 * clock bounds, quarantined too_old or too_new.  Then, for events whose
 * time no partition covers: create the partition (past events within
 * retention, future ones within premake), at most
 * eventkit.max_new_partitions per call, or quarantine them with reason
 * out_of_range (the worker makes their partitions and re-drives them;
 * so does a transaction that has written already and would have to wait
 * for another session's partition; so does every event of a distributed
 * stream whose partition is missing: distributed_stream()).
 * Events with problems already are left alone.  Returns how many events
 * wait for a partition of a distributed stream (the orchestrator wakes the
 * coordinator's premake job).  Caller: SPI connected, holding a lock on
 * the stream.
 */
int
ek_place_events(const StreamInfo *stream, SegmentEvent *events, int n, TimestampTz now)
{
	EkTimeBounds bounds;
	int			created = 0;
	int			for_maintenance = 0;
	int			distributed = -1;	/* -1: not asked yet */
	MemoryContext cxt = CurrentMemoryContext;
	Relation	rel = table_open(stream->relid, NoLock);	/* locked by the caller */

	/* the range of the last partition found: a batch's times cluster */
	TimestampTz seen_lo = 0;
	TimestampTz seen_hi = 0;
	bool		seen = false;

	ek_time_bounds(stream, now, &bounds);
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &events[i];
		EkProblems *p = &ev->problems;
		bool		bounded;
		int			part;

		if (!ek_event_ok(ev))
			continue;
		if (ev->ts > bounds.too_new)
			ek_add_problem(p, EK_REASON_TOO_NEW,
						   "event time %s is further ahead of the server's clock than the stream's max_future",
						   ek_timestamp_iso(ev->ts));
		else if (ev->ts < bounds.too_old)
			ek_add_problem(p, EK_REASON_TOO_OLD,
						   "event time %s is further behind the server's clock than the stream's max_past",
						   ek_timestamp_iso(ev->ts));
		else if (seen && seen_lo <= ev->ts && ev->ts < seen_hi)
			continue;
		else if (partition_range_at(rel, ev->ts, &seen_lo, &seen_hi, &bounded, &part))
		{
			seen = bounded;
			continue;
		}
		else if (ev->ts >= bounds.horizon)
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "event time %s is after the partitions the stream keeps ready",
						   ek_timestamp_iso(ev->ts));
		else if (ev->ts < bounds.oldest)
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "event time %s is older than the stream's retention",
						   ek_timestamp_iso(ev->ts));
		else if (!ek_create_partitions_on_ingest)
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "no partition covers event time %s and eventkit.create_partitions_on_ingest is off",
						   ek_timestamp_iso(ev->ts));
		else if (distributed < 0 ? (distributed = distributed_stream(stream)) : distributed)
		{
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "no partition covers event time %s; the partitions of a distributed stream are made by maintenance on the Citus coordinator, in a transaction of their own, and the event is re-driven then",
						   ek_timestamp_iso(ev->ts));
			for_maintenance++;
		}
		else if (created >= ek_max_new_partitions)
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "no partition covers event time %s and this call has created eventkit.max_new_partitions (%d) partitions; maintenance creates it",
						   ek_timestamp_iso(ev->ts), ek_max_new_partitions);
		else if (!may_create_partition_now(stream))
			ek_add_problem(p, EK_REASON_OUT_OF_RANGE,
						   "no partition covers event time %s; another session is creating a partition of the stream and this transaction has written already, so waiting for it could deadlock; maintenance creates it",
						   ek_timestamp_iso(ev->ts));
		else
		{
			/* the stream's partition descriptor changes: reopen it after */
			table_close(rel, NoLock);
			ek_create_partition(stream, ek_bucket_start(&stream->partition_interval, ev->ts));
			created++;
			/* SPI leaves its own context current; problems must outlive it */
			MemoryContextSwitchTo(cxt);
			rel = table_open(stream->relid, NoLock);
		}
	}
	table_close(rel, NoLock);
	/* the caller goes on to claim and write: later placements must not wait */
	ek_placement_note_ingest_writes();
	return for_maintenance;
}

/*
 * This transaction writes what an ingest may wait for (ledger rows,
 * identity links, quarantine rows): from now on its placements take a
 * busy partition lock only if it is free (may_create_partition_now).
 * Placement says so itself; forget_user, whose deletes an ingest may wait
 * for, says so too.
 */
void
ek_placement_note_ingest_writes(void)
{
	placed_in_lxid = MyProc->lxid;
}

/*
 * The times of the stream's quarantined out_of_range events on this node
 * (the first EK_WAITING_SCAN, oldest first).  Caller: SPI connected.
 */
#define EK_WAITING_SCAN 10000

TimestampTz *
ek_waiting_event_times(const StreamInfo *stream, int *n)
{
	int			nrows;
	QuarantinedEvent *rows = ek_quarantine_read_waiting(stream->stream_id, EK_WAITING_SCAN,
														&nrows);
	TimestampTz *times = palloc(sizeof(TimestampTz) * (nrows + 1));

	*n = 0;
	for (int r = 0; r < nrows; r++)
	{
		if (ek_stored_event_time(rows[r].payload, rows[r].envelope, rows[r].received_at,
								 &times[*n]))
			(*n)++;
		CHECK_FOR_INTERRUPTS();
	}
	return times;
}

/*
 * Create the past partitions that events at these times wait for: those
 * within the stream's retention and clock bounds, at most limit.  Future
 * partitions are premake's.  Returns how many were created.  Caller: SPI
 * connected.
 */
int
ek_make_partitions_for(const StreamInfo *stream, TimestampTz now,
					   const TimestampTz *times, int n, int limit)
{
	EkTimeBounds bounds;
	int			created = 0;

	ek_time_bounds(stream, now, &bounds);
	for (int i = 0; i < n && created < limit; i++)
	{
		TimestampTz ts = times[i];

		CHECK_FOR_INTERRUPTS();
		if (ts < bounds.oldest || ts < bounds.too_old || ts > bounds.too_new ||
			ts >= bounds.horizon || ek_partition_exists_for(stream->relid, ts))
			continue;
		ek_create_partition(stream, ek_bucket_start(&stream->partition_interval, ts));
		created++;
	}
	return created;
}

/*
 * Create the past partitions that quarantined out_of_range events wait
 * for (ingest created eventkit.max_new_partitions for its call and left
 * the others, or was told not to create any), at most
 * eventkit.max_new_partitions per run, so that maintenance too holds the
 * locks of only so many new partitions.  The redrive job then stores the
 * events.  Returns how many were created.  Caller: SPI connected.
 */
int
ek_make_waiting_partitions(const StreamInfo *stream, TimestampTz now)
{
	int			n;
	TimestampTz *times = ek_waiting_event_times(stream, &n);
	int			created = ek_make_partitions_for(stream, now, times, n,
												 ek_max_new_partitions);

	pfree(times);
	return created;
}

/*
 * Detach and drop the partitions whose whole range is older than
 * now - retention.  Returns how many were dropped.
 */
int
ek_drop_expired_partitions(const StreamInfo *stream, TimestampTz now)
{
	TimestampTz cutoff;
	Relation	rel;
	PartitionDesc desc;
	PartitionBoundInfo bi;
	List	   *expired = NIL;
	ListCell   *lc;
	EkRoleScope as_owner;
	char	   *qparent;

	if (!stream->has_retention)
		return 0;
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(now),
													 IntervalPGetDatum(&stream->retention)));

	rel = table_open(stream->relid, AccessShareLock);
	desc = RelationGetPartitionDesc(rel, true);
	bi = desc->boundinfo;
	for (int i = 0; bi != NULL && i + 1 < bi->ndatums; i++)
	{
		int			idx = bi->indexes[i + 1];

		if (idx < 0 || bi->kind[i + 1][0] != PARTITION_RANGE_DATUM_VALUE)
			continue;
		if (DatumGetTimestampTz(bi->datums[i + 1][0]) <= cutoff)
			expired = lappend_oid(expired, desc->oids[idx]);
	}
	qparent = ek_qualified_relname(stream->relid);
	table_close(rel, NoLock);

	if (expired == NIL)
		return 0;

	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), EK_AS_LOCK_TIMEOUT);

	/*
	 * Lock the expired partitions first: a long transaction reading one of
	 * them then makes this time out before the stream itself is locked, so
	 * ingest into the other partitions never queues behind the DETACH.
	 */
	foreach(lc, expired)
		ek_spi_exec(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
							 ek_qualified_relname(lfirst_oid(lc))),
					SPI_OK_UTILITY);
	foreach(lc, expired)
	{
		char	   *qpart = ek_qualified_relname(lfirst_oid(lc));

		ek_spi_exec(psprintf("ALTER TABLE %s DETACH PARTITION %s", qparent, qpart),
					SPI_OK_UTILITY);
		ek_spi_exec(psprintf("DROP TABLE %s", qpart), SPI_OK_UTILITY);
	}
	ek_as_role_end(&as_owner);
	return list_length(expired);
}
