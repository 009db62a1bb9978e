/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  A stream's life, orchestrated: eventkit.create_stream() (its table,
 *	  defined once in pipeline/columns.c, its catalog row, its dedup ledger,
 *	  its first partitions, its jobs, its resolved view: stream/identity.c),
 *	  eventkit.alter_stream() (its options:
 *	  clock bounds and its own size limits, which only its owner sets, and
 *	  only a superuser above the settings), eventkit.drop_stream() and the
 *	  sql_drop trigger's eventkit.forget_dropped_streams(), and
 *	  eventkit.schedule_stream_jobs().  The catalog row is catalog/streams.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog/identity.h"
#include "catalog/jobs.h"
#include "catalog/streams.h"
#include "pipeline/columns.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/partition.h"
#include "stream/identity.h"
#include "util/citus.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

#define MAX_PREMAKE 1000
#define MAX_KEY_PARTITIONS 1024

PG_FUNCTION_INFO_V1(eventkit_create_stream);
PG_FUNCTION_INFO_V1(eventkit_alter_stream);
PG_FUNCTION_INFO_V1(eventkit_drop_stream);
PG_FUNCTION_INFO_V1(eventkit_forget_dropped_streams);
PG_FUNCTION_INFO_V1(eventkit_schedule_stream_jobs);

static bool
interval_is_positive(const Interval *iv)
{
	return iv->month > 0 || iv->day > 0 || iv->time > 0;
}

static Interval *
interval_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Interval   *iv;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("Leave the argument out to use its default.")));
	iv = PG_GETARG_INTERVAL_P(argno);
	if (!interval_is_positive(iv) || iv->month < 0 || iv->day < 0 || iv->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive interval", name),
				 errhint("Use a value such as '1 day' or '7 days'.")));
	return iv;
}

static int32
int_arg(FunctionCallInfo fcinfo, int argno, const char *name, int32 min, int32 max)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("Leave the argument out to use its default.")));
	v = PG_GETARG_INT32(argno);
	if (v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d", name, min, max),
				 errdetail("The value given was %d.", v),
				 errhint("Pass a value in that range.")));
	return v;
}

/*
 * The arguments of create_stream and alter_stream, by position: the same
 * names in both.  A 1.0 to 1.2 catalog calls create_stream with the first
 * six only.
 */
enum
{
	ARG_STREAM,
	ARG_PARTITION_INTERVAL,
	ARG_PREMAKE,
	ARG_RETENTION,
	ARG_KEY_PARTITIONS,
	ARG_DEDUP_WINDOW,
	ARG_MAX_PAST,
	ARG_MAX_FUTURE,
	ARG_MAX_EVENT_BYTES,
	ARG_MAX_BATCH_BYTES,
	ARG_MAX_BATCH_ITEMS,
	ARG_CLEAR					/* alter_stream only */
};

#define ARG_GIVEN(n) (PG_NARGS() > (n) && !PG_ARGISNULL(n))

/*
 * A stream's own size limit.  Its owner may set any value up to the
 * setting in force (the stream's value then replaces the setting for
 * it); only a superuser may set one above, as only a superuser may raise
 * the setting: the limits bound what an ingesting role can make a backend
 * allocate.
 */
static int32
limit_arg(FunctionCallInfo fcinfo, int argno, const char *name, int32 min, int32 max,
		  int setting)
{
	int32		v = int_arg(fcinfo, argno, name, min, max);

	if (v > setting && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set %s of a stream above eventkit.%s",
						name, name),
				 errdetail("eventkit.%s is %d; the value given is %d.", name, setting, v),
				 errhint("Ask a superuser to set it, or to raise eventkit.%s for your role or database.",
						 name)));
	return v;
}

/*
 * The stream's options from the arguments.  Creating, every argument is
 * read (NULL: no bound, or the setting's limit).  Altering, st holds the
 * catalog row and a NULL argument leaves its value alone; partition_interval
 * and key_partitions cannot change.
 */
static void
stream_options(FunctionCallInfo fcinfo, StreamInfo *st, bool altering)
{
	if (!altering)
	{
		Interval   *iv = interval_arg(fcinfo, ARG_PARTITION_INTERVAL, "partition_interval");

		ek_check_partition_interval(iv);
		st->partition_interval = *iv;
		st->key_partitions = int_arg(fcinfo, ARG_KEY_PARTITIONS, "key_partitions",
									 0, MAX_KEY_PARTITIONS);
	}
	else
	{
		if (ARG_GIVEN(ARG_PARTITION_INTERVAL) &&
			!DatumGetBool(DirectFunctionCall2(interval_eq,
											  PG_GETARG_DATUM(ARG_PARTITION_INTERVAL),
											  IntervalPGetDatum(&st->partition_interval))))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the partition_interval of an existing stream cannot be changed"),
					 errdetail("The partitions of stream \"%s\" are %s wide.",
							   get_rel_name(st->relid),
							   DatumGetCString(DirectFunctionCall1(interval_out,
																   IntervalPGetDatum(&st->partition_interval)))),
					 errhint("Create a new stream with the interval you want and move the events into it.")));
		if (ARG_GIVEN(ARG_KEY_PARTITIONS) &&
			PG_GETARG_INT32(ARG_KEY_PARTITIONS) != st->key_partitions)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the key_partitions of an existing stream cannot be changed"),
					 errdetail("Stream \"%s\" has %d key partitions.",
							   get_rel_name(st->relid), st->key_partitions),
					 errhint("Create a new stream with the key partitions you want and move the events into it.")));
	}
	if (!altering || ARG_GIVEN(ARG_PREMAKE))
		st->premake = int_arg(fcinfo, ARG_PREMAKE, "premake", 0, MAX_PREMAKE);
	if (!altering || ARG_GIVEN(ARG_DEDUP_WINDOW))
		st->dedup_window = *interval_arg(fcinfo, ARG_DEDUP_WINDOW, "dedup_window");
	if (ARG_GIVEN(ARG_RETENTION))
	{
		st->retention = *interval_arg(fcinfo, ARG_RETENTION, "retention");
		st->has_retention = true;
	}
	if (ARG_GIVEN(ARG_MAX_PAST))
	{
		st->max_past = *interval_arg(fcinfo, ARG_MAX_PAST, "max_past");
		st->has_max_past = true;
	}
	if (ARG_GIVEN(ARG_MAX_FUTURE))
	{
		st->max_future = *interval_arg(fcinfo, ARG_MAX_FUTURE, "max_future");
		st->has_max_future = true;
	}
	if (ARG_GIVEN(ARG_MAX_EVENT_BYTES))
		st->max_event_bytes = limit_arg(fcinfo, ARG_MAX_EVENT_BYTES, "max_event_bytes",
										EK_MIN_LIMIT_BYTES, EK_MAX_LIMIT_BYTES,
										ek_max_event_bytes);
	if (ARG_GIVEN(ARG_MAX_BATCH_BYTES))
		st->max_batch_bytes = limit_arg(fcinfo, ARG_MAX_BATCH_BYTES, "max_batch_bytes",
										EK_MIN_LIMIT_BYTES, EK_MAX_LIMIT_BYTES,
										ek_max_batch_bytes);
	if (ARG_GIVEN(ARG_MAX_BATCH_ITEMS))
		st->max_batch_items = limit_arg(fcinfo, ARG_MAX_BATCH_ITEMS, "max_batch_items",
										1, EK_MAX_LIMIT_ITEMS, ek_max_batch_items);
}

/*
 * alter_stream's clear argument: the options to remove (no bound, or the
 * setting's limit again).
 */
static void
clear_stream_options(FunctionCallInfo fcinfo, StreamInfo *st)
{
	static const struct
	{
		const char *name;
		int			argno;
	}			clearable[] = {
		{"retention", ARG_RETENTION},
		{"max_past", ARG_MAX_PAST},
		{"max_future", ARG_MAX_FUTURE},
		{"max_event_bytes", ARG_MAX_EVENT_BYTES},
		{"max_batch_bytes", ARG_MAX_BATCH_BYTES},
		{"max_batch_items", ARG_MAX_BATCH_ITEMS},
	};
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;

	if (!ARG_GIVEN(ARG_CLEAR))
		return;
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(ARG_CLEAR), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elem_nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name = elem_nulls[i] ? NULL : TextDatumGetCString(elems[i]);
		int			c;

		for (c = 0; c < lengthof(clearable); c++)
			if (name != NULL && strcmp(name, clearable[c].name) == 0)
				break;
		if (c == lengthof(clearable))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot clear \"%s\"", name ? name : "NULL"),
					 errdetail("Only retention, max_past, max_future, max_event_bytes, "
							   "max_batch_bytes and max_batch_items can be cleared."),
					 errhint("Set the other options to a new value instead.")));
		if (ARG_GIVEN(clearable[c].argno))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s cannot be both set and cleared", name),
					 errhint("Pass either %s => <value> or clear => '{%s}'.", name, name)));
		switch (clearable[c].argno)
		{
			case ARG_RETENTION:
				st->has_retention = false;
				break;
			case ARG_MAX_PAST:
				st->has_max_past = false;
				break;
			case ARG_MAX_FUTURE:
				st->has_max_future = false;
				break;
			case ARG_MAX_EVENT_BYTES:
				st->max_event_bytes = 0;
				break;
			case ARG_MAX_BATCH_BYTES:
				st->max_batch_bytes = 0;
				break;
			case ARG_MAX_BATCH_ITEMS:
				st->max_batch_items = 0;
				break;
		}
	}
}

static int64
approx_usecs(const Interval *iv)
{
	return (int64) iv->month * 30 * USECS_PER_DAY + (int64) iv->day * USECS_PER_DAY + iv->time;
}

static Interval
clamped_quarter(const Interval *iv, int64 min_usecs, int64 max_usecs)
{
	Interval	result;
	int64		usecs = approx_usecs(iv) / 4;

	memset(&result, 0, sizeof(result));
	result.time = Max(min_usecs, Min(max_usecs, usecs));
	return result;
}

/*
 * The jobs every stream has: premake and redrive at a quarter of the
 * partition interval (10 s to 1 h; 1 h for monthly partitions), ledger
 * rotation/pruning at a quarter of the dedup window (1 min to 1 h), and
 * retention like premake when the stream has a retention.  Returns how
 * many the stream has (none while the job tables are not installed).
 */
static int
schedule_stream_jobs(const StreamInfo *stream)
{
	Interval	part = clamped_quarter(&stream->partition_interval,
									   10 * USECS_PER_SEC, USECS_PER_HOUR);
	Interval	ledger = clamped_quarter(&stream->dedup_window,
										 60 * USECS_PER_SEC, USECS_PER_HOUR);
	char	   *target = ek_qualified_relname(stream->relid);
	int			n = 0;

	if (!ek_jobs_installed())
		return 0;
	if (stream->partition_interval.month > 0)
	{
		memset(&part, 0, sizeof(part));
		part.time = USECS_PER_HOUR;
	}
	n += ek_jobs_schedule(EK_JOB_PREMAKE, stream->stream_id, target, &part) > 0;
	if (stream->has_retention)
		n += ek_jobs_schedule(EK_JOB_RETENTION, stream->stream_id, target, &part) > 0;
	n += ek_jobs_schedule(EK_JOB_LEDGER, stream->stream_id, target, &ledger) > 0;
	n += ek_jobs_schedule(EK_JOB_REDRIVE, stream->stream_id, target, &part) > 0;
	return n;
}

/*
 * eventkit.create_stream(stream text, partition_interval interval,
 *						  premake int, retention interval,
 *						  key_partitions int, dedup_window interval,
 *						  max_past interval, max_future interval,
 *						  max_event_bytes int, max_batch_bytes int,
 *						  max_batch_items int)
 *
 * Creates the stream's range-partitioned table (owned by the caller), its
 * partitions covering now and premake intervals ahead, its dedup ledger and
 * its catalog row.
 */
Datum
eventkit_create_stream(PG_FUNCTION_ARGS)
{
	text	   *name_text;
	List	   *names;
	RangeVar   *rv;
	Oid			nspid;
	char	   *qname;
	StreamInfo	stream;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null"),
				 errhint("Pass the name of the table to create, such as 'events' or 'analytics.events'.")));
	name_text = PG_GETARG_TEXT_PP(0);
	memset(&stream, 0, sizeof(stream));
	stream_options(fcinfo, &stream, false);
	stream.ledger_gen = 1;

	names = textToQualifiedNameList(name_text);
	rv = makeRangeVarFromNameList(names);
	if (rv->catalogname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: \"%s\"",
						text_to_cstring(name_text))));
	nspid = RangeVarGetCreationNamespace(rv);
	if (isAnyTempNamespace(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a stream cannot be a temporary table"),
				 errhint("Give a schema-qualified name in a permanent schema.")));
	if (strlen(rv->relname) > NAMEDATALEN - 20)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("stream name \"%s\" is too long", rv->relname),
				 errdetail("Partition names add a suffix to the stream name."),
				 errhint("Use a name of at most %d bytes.", NAMEDATALEN - 20)));
	if (OidIsValid(get_relname_relid(rv->relname, nspid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", rv->relname),
				 errhint("Choose another name, or drop the existing stream with eventkit.drop_stream().")));

	qname = quote_qualified_identifier(get_namespace_name(nspid), rv->relname);

	SPI_connect();

	ek_spi_exec(ek_stream_table_sql(qname), SPI_OK_UTILITY);
	CommandCounterIncrement();
	stream.relid = get_relname_relid(rv->relname, nspid);
	if (!OidIsValid(stream.relid))
		elog(ERROR, "eventkit: created stream \"%s\" not found", qname);

	/* its catalog row, its ledger, its partitions, its jobs, its resolved view */
	ek_streams_insert(&stream);
	ek_dedup_create_ledger(stream.stream_id);
	ek_premake_partitions(&stream, GetCurrentTransactionStartTimestamp());
	schedule_stream_jobs(&stream);
	if (ek_identity_installed())
		ek_identity_create_view(stream.relid, stream.stream_id);

	SPI_finish();

	PG_RETURN_OID(stream.relid);
}

/*
 * eventkit.alter_stream(stream regclass, <create_stream's options>,
 *						 clear text[])
 *
 * Changes a stream's options; an argument left NULL keeps its value, and
 * clear names the bounds and limits to remove.  Owner only.  Takes effect
 * for the ingests that start after this transaction commits (each ingest
 * reads the catalog row); a larger premake is applied at once.
 */
Datum
eventkit_alter_stream(PG_FUNCTION_ARGS)
{
	Oid			relid;
	StreamInfo	stream;

	relid = ek_owned_stream_arg(fcinfo, ARG_STREAM);
	/* one alter_stream at a time; ingest (ROW EXCLUSIVE) goes on */
	LockRelationOid(relid, ShareUpdateExclusiveLock);

	SPI_connect();
	ek_streams_read(relid, &stream, false);
	stream_options(fcinfo, &stream, true);
	clear_stream_options(fcinfo, &stream);
	ek_streams_update(&stream);

	/* a retention job if it now has a retention; a larger premake now */
	schedule_stream_jobs(&stream);
	ek_premake_partitions(&stream, GetCurrentTransactionStartTimestamp());

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Remove everything eventkit recorded about a stream: its ledger, its
 * jobs and its catalog rows.  Caller: SPI connected.
 */
static void
forget_stream(int32 stream_id)
{
	ek_dedup_drop_ledger(stream_id);
	ek_jobs_unschedule_stream(stream_id);
	ek_identity_forget_stream(stream_id);
	ek_streams_forget(stream_id);
}

/*
 * eventkit.drop_stream(stream regclass)
 *
 * Drops the stream table with its partitions, its ledger, and everything
 * eventkit recorded about it.
 */
Datum
eventkit_drop_stream(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StreamInfo	stream;
	bool		distributed;
	EkRoleScope as_owner;

	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));

	SPI_connect();
	ek_streams_read(relid, &stream, false);
	distributed = ek_citus_table_kind(relid) == EK_CITUS_HASH;
	ek_identity_drop_view(relid);
	/*
	 * A distributed stream is dropped as its owner, which owns its ledger
	 * and drops it next: Citus reaches co-located placements as one user
	 * per transaction (pipeline/dedup/dist_ledger.c)
	 */
	if (distributed)
		ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(relid)), SPI_OK_UTILITY);
	if (distributed)
		ek_as_role_end(&as_owner);

	/* the sql_drop event trigger has usually done this already */
	forget_stream(stream.stream_id);

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventkit.forget_dropped_streams(): called by the sql_drop event trigger.
 * Returns how many streams were forgotten.
 */
Datum
eventkit_forget_dropped_streams(PG_FUNCTION_ARGS)
{
	int			forgotten = 0;
	List	   *ids;
	ListCell   *lc;

	SPI_connect();
	ids = ek_streams_dropped();
	foreach(lc, ids)
	{
		forget_stream(lfirst_int(lc));
		forgotten++;
	}
	SPI_finish();
	PG_RETURN_INT32(forgotten);
}

/*
 * eventkit.schedule_stream_jobs(stream regclass): (re)creates the default
 * jobs of a stream; existing ones are kept.  Returns how many it has.
 */
Datum
eventkit_schedule_stream_jobs(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StreamInfo	stream;
	int			n;

	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	SPI_connect();
	ek_streams_read(relid, &stream, false);
	n = schedule_stream_jobs(&stream);
	SPI_finish();
	PG_RETURN_INT32(n);
}
