/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Streams: eventkit.create_stream(), eventkit.alter_stream() and
 *	  eventkit.drop_stream(), the eventkit.streams catalog row (with the
 *	  stream's clock bounds and its own size limits, which only its owner
 *	  sets, and only a superuser above the settings), and the helpers every
 *	  subsystem uses to read it, to build quoted SQL and to act as the
 *	  extension owner for eventkit's own bookkeeping tables.
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

#include "eventkit.h"

#define MAX_PREMAKE 1000
#define MAX_KEY_PARTITIONS 1024

PG_FUNCTION_INFO_V1(eventkit_create_stream);
PG_FUNCTION_INFO_V1(eventkit_alter_stream);
PG_FUNCTION_INFO_V1(eventkit_drop_stream);
PG_FUNCTION_INFO_V1(eventkit_forget_dropped_streams);

/*
 * Run one SQL statement through SPI and check its result code.
 */
void
ek_spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "eventkit: SPI_execute failed (%s) for: %s",
			 SPI_result_code_string(rc), sql);
}

/* Prepare a statement and keep it for the life of the backend. */
SPIPlanPtr
ek_keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "eventkit: SPI_prepare failed (%s) for: %s",
			 SPI_result_code_string(SPI_result), sql);
	SPI_keepplan(plan);
	return plan;
}

/* The owner of a relation: DDL on a user's objects runs as that role. */
Oid
ek_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* A one-dimensional array of n elements (nulls may be NULL: none). */
Datum
ek_make_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

char *
ek_qualified_relname(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname;

	if (relname == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);
	nspname = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nspname, relname);
}

/*
 * The owner of the eventkit schema, i.e. the role that created the
 * extension.  eventkit's bookkeeping tables (ledger, quarantine, batch log)
 * are owned by it and written as it, so that ingesting needs no privilege
 * on them.
 */
Oid
ek_extension_owner(void)
{
	Oid			nspid = get_namespace_oid("eventkit", false);
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nspid);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

void
ek_switch_to_owner(Oid *save_userid, int *save_sec_context)
{
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(ek_extension_owner(),
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
ek_restore_user(Oid save_userid, int save_sec_context)
{
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Start work done on a user's behalf (DDL on the user's objects, or work a
 * job does on them): act as role under SECURITY_RESTRICTED_OPERATION, as
 * autovacuum and REFRESH MATERIALIZED VIEW act as a table's owner, with a
 * safe search_path and, if asked, eventkit.maintenance_lock_timeout as
 * lock_timeout.  Undone by ek_end_ddl(), which also undoes any setting the
 * role's code (triggers, index expressions, defaults) changed meanwhile.
 */
void
ek_begin_ddl(EkDdlContext *ddl, Oid role, bool with_lock_timeout)
{
	GetUserIdAndSecContext(&ddl->save_userid, &ddl->save_sec_context);
	SetUserIdAndSecContext(role, ddl->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ddl->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (with_lock_timeout)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "%d", ek_maintenance_lock_timeout);
		(void) set_config_option("lock_timeout", buf,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
}

void
ek_end_ddl(EkDdlContext *ddl)
{
	AtEOXact_GUC(false, ddl->nestlevel);
	SetUserIdAndSecContext(ddl->save_userid, ddl->save_sec_context);
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL if it succeeded; if it
 * raised an error, rolls the subtransaction back and returns the error for
 * the caller to inspect (and rethrow with ReThrowError if it must).
 * Callers that are connected to SPI keep their connection.
 */
ErrorData *
ek_run_in_subtransaction(void (*fn) (void *arg), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/* The first column of the last SPI result, as a list of int4. */
List *
ek_spi_int_list(void)
{
	List	   *result = NIL;

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		result = lappend_int(result, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
																 SPI_tuptable->tupdesc,
																 1, &isnull)));
	}
	return result;
}

/*
 * Are the 1.3 columns of eventkit.streams (clock bounds, the stream's own
 * limits) there?  A syscache probe, no query: the library may run against
 * an older catalog until ALTER EXTENSION eventkit UPDATE.
 */
static bool
streams_have_bounds(void)
{
	Oid			nspid = get_namespace_oid("eventkit", false);
	Oid			relid = get_relname_relid("streams", nspid);

	return OidIsValid(relid) && get_attnum(relid, "max_future") != InvalidAttrNumber;
}

/*
 * Read a stream's catalog row.  The caller must be connected to SPI.
 */
bool
ek_lookup_stream(Oid relid, StreamInfo *info, bool missing_ok)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		d;
	int			rc;
	const char *plan_columns;
	const char *bound_columns;

	/* a 1.0 catalog (before ALTER EXTENSION eventkit UPDATE) has no plans */
	if (OidIsValid(get_relname_relid("plan_versions", get_namespace_oid("eventkit", false))))
		plan_columns = " plan_id,"
			" COALESCE(plan_version, (SELECT pg_catalog.max(v.version)"
			"  FROM eventkit.plan_versions v"
			"  WHERE v.plan_id OPERATOR(pg_catalog.=) s.plan_id)),";
	else
		plan_columns = " NULL, NULL,";
	/* nor, before 1.3, clock bounds and limits */
	if (streams_have_bounds())
		bound_columns = " max_past, max_future, max_event_bytes, max_batch_bytes,"
			" max_batch_items";
	else
		bound_columns = " NULL::pg_catalog.interval, NULL::pg_catalog.interval,"
			" NULL::pg_catalog.int4, NULL::pg_catalog.int4, NULL::pg_catalog.int4";
	rc = SPI_execute_with_args(psprintf("SELECT stream_id, partition_interval, premake, retention,"
										" key_partitions, dedup_window, ledger_gen,%s%s"
										" FROM eventkit.streams s"
										" WHERE relid OPERATOR(pg_catalog.=) $1",
										plan_columns, bound_columns),
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.streams: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		if (missing_ok)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s\" is not an eventkit stream",
						get_rel_name(relid) ? get_rel_name(relid) : "?"),
				 errhint("Create streams with eventkit.create_stream().")));
	}

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(info, 0, sizeof(StreamInfo));
	info->relid = relid;
	info->stream_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	info->partition_interval = *DatumGetIntervalP(d);
	info->premake = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	info->has_retention = !isnull;
	if (!isnull)
		info->retention = *DatumGetIntervalP(d);
	info->key_partitions = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	d = SPI_getbinval(tup, desc, 6, &isnull);
	info->dedup_window = *DatumGetIntervalP(d);
	info->ledger_gen = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	d = SPI_getbinval(tup, desc, 8, &isnull);
	info->plan_id = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	info->plan_version = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	info->has_max_past = !isnull;
	if (!isnull)
		info->max_past = *DatumGetIntervalP(d);
	d = SPI_getbinval(tup, desc, 11, &isnull);
	info->has_max_future = !isnull;
	if (!isnull)
		info->max_future = *DatumGetIntervalP(d);
	d = SPI_getbinval(tup, desc, 12, &isnull);
	info->max_event_bytes = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	info->max_batch_bytes = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 14, &isnull);
	info->max_batch_items = isnull ? 0 : DatumGetInt32(d);
	return true;
}

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

/*
 * The settable columns of a stream's catalog row as SPI arguments $1..$12:
 * stream_id, relid, partition_interval, premake, retention, key_partitions,
 * dedup_window, max_past, max_future, max_event_bytes, max_batch_bytes,
 * max_batch_items.
 */
#define STREAM_ROW_ARGS 12

static void
stream_row_args(StreamInfo *st, Oid *types, Datum *values, char *nulls)
{
	static const Oid row_types[STREAM_ROW_ARGS] = {INT4OID, OIDOID, INTERVALOID, INT4OID,
		INTERVALOID, INT4OID, INTERVALOID, INTERVALOID, INTERVALOID, INT4OID, INT4OID,
	INT4OID};

	memcpy(types, row_types, sizeof(row_types));
	memset(nulls, ' ', STREAM_ROW_ARGS);
	values[0] = Int32GetDatum(st->stream_id);
	values[1] = ObjectIdGetDatum(st->relid);
	values[2] = IntervalPGetDatum(&st->partition_interval);
	values[3] = Int32GetDatum(st->premake);
	values[4] = IntervalPGetDatum(&st->retention);
	nulls[4] = st->has_retention ? ' ' : 'n';
	values[5] = Int32GetDatum(st->key_partitions);
	values[6] = IntervalPGetDatum(&st->dedup_window);
	values[7] = IntervalPGetDatum(&st->max_past);
	nulls[7] = st->has_max_past ? ' ' : 'n';
	values[8] = IntervalPGetDatum(&st->max_future);
	nulls[8] = st->has_max_future ? ' ' : 'n';
	values[9] = Int32GetDatum(st->max_event_bytes);
	nulls[9] = st->max_event_bytes > 0 ? ' ' : 'n';
	values[10] = Int32GetDatum(st->max_batch_bytes);
	nulls[10] = st->max_batch_bytes > 0 ? ' ' : 'n';
	values[11] = Int32GetDatum(st->max_batch_items);
	nulls[11] = st->max_batch_items > 0 ? ' ' : 'n';
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
	StringInfoData sql;
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[STREAM_ROW_ARGS];
	Datum		values[STREAM_ROW_ARGS];
	char		nulls[STREAM_ROW_ARGS];
	int			rc;
	bool		isnull;

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

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TABLE %s ("
					 " message_id pg_catalog.text NOT NULL,"
					 " type pg_catalog.text NOT NULL,"
					 " event pg_catalog.text,"
					 " user_id pg_catalog.text,"
					 " anonymous_id pg_catalog.text,"
					 " user_key pg_catalog.text NOT NULL,"
					 " ts pg_catalog.timestamptz NOT NULL,"
					 " received_at pg_catalog.timestamptz NOT NULL,"
					 " sent_at pg_catalog.timestamptz,"
					 " original_timestamp pg_catalog.timestamptz,"
					 " properties pg_catalog.jsonb,"
					 " traits pg_catalog.jsonb,"
					 " context pg_catalog.jsonb,"
					 " extra pg_catalog.jsonb,"
					 " batch_id pg_catalog.int8 NOT NULL,"
					 " plan_version pg_catalog.int4,"
					 " violations pg_catalog.jsonb"
					 ") PARTITION BY RANGE (ts)",
					 qname);
	ek_spi_exec(sql.data, SPI_OK_UTILITY);
	CommandCounterIncrement();
	stream.relid = get_relname_relid(rv->relname, nspid);
	if (!OidIsValid(stream.relid))
		elog(ERROR, "eventkit: created stream \"%s\" not found", qname);

	ek_switch_to_owner(&save_userid, &save_sec);

	rc = SPI_execute("SELECT pg_catalog.nextval('eventkit.streams_stream_id_seq')::pg_catalog.int4",
					 false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not allocate a stream id");
	stream.stream_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));

	stream_row_args(&stream, argtypes, values, nulls);
	if (streams_have_bounds())
		rc = SPI_execute_with_args("INSERT INTO eventkit.streams (stream_id, relid,"
								   " partition_interval, premake, retention, key_partitions,"
								   " dedup_window, max_past, max_future, max_event_bytes,"
								   " max_batch_bytes, max_batch_items)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
								   STREAM_ROW_ARGS, argtypes, values, nulls, false, 0);
	else
		rc = SPI_execute_with_args("INSERT INTO eventkit.streams (stream_id, relid,"
								   " partition_interval, premake, retention, key_partitions,"
								   " dedup_window) VALUES ($1, $2, $3, $4, $5, $6, $7)",
								   7, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not record stream: %s", SPI_result_code_string(rc));

	ek_create_ledger(stream.stream_id);
	ek_restore_user(save_userid, save_sec);

	ek_premake_partitions(&stream, GetCurrentTransactionStartTimestamp());

	/* the background worker's jobs for it (jobs.c) */
	ek_schedule_stream_jobs(&stream);

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
	Oid			argtypes[STREAM_ROW_ARGS];
	Datum		values[STREAM_ROW_ARGS];
	char		nulls[STREAM_ROW_ARGS];
	Oid			save_userid;
	int			save_sec;
	int			rc;

	if (PG_ARGISNULL(ARG_STREAM))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	relid = PG_GETARG_OID(ARG_STREAM);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	/* one alter_stream at a time; ingest (ROW EXCLUSIVE) goes on */
	LockRelationOid(relid, ShareUpdateExclusiveLock);

	SPI_connect();
	ek_lookup_stream(relid, &stream, false);
	stream_options(fcinfo, &stream, true);
	clear_stream_options(fcinfo, &stream);

	stream_row_args(&stream, argtypes, values, nulls);
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("UPDATE eventkit.streams SET premake = $4, retention = $5,"
							   " dedup_window = $7, max_past = $8, max_future = $9,"
							   " max_event_bytes = $10, max_batch_bytes = $11,"
							   " max_batch_items = $12"
							   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							   " AND relid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass"
							   " AND partition_interval OPERATOR(pg_catalog.=) $3"
							   " AND key_partitions OPERATOR(pg_catalog.=) $6",
							   STREAM_ROW_ARGS, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "eventkit: could not update the catalog row of stream %d: %s",
			 stream.stream_id, SPI_result_code_string(rc));
	ek_restore_user(save_userid, save_sec);

	/* a retention job if it now has a retention; a larger premake now */
	ek_schedule_stream_jobs(&stream);
	ek_premake_partitions(&stream, GetCurrentTransactionStartTimestamp());

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Remove everything eventkit recorded about a stream, and its ledger.
 * Caller: SPI connected, acting as the extension owner.
 */
static void
forget_stream(int32 stream_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(stream_id)};
	static const char *const cleanup[] = {
		"DELETE FROM eventkit.quarantine WHERE stream_id OPERATOR(pg_catalog.=) $1",
		"DELETE FROM eventkit.conflicts WHERE stream_id OPERATOR(pg_catalog.=) $1",
		"DELETE FROM eventkit.ingest_batches WHERE stream_id OPERATOR(pg_catalog.=) $1",
		"DELETE FROM eventkit.batch_violations WHERE stream_id OPERATOR(pg_catalog.=) $1",
		"DELETE FROM eventkit.ledger_generations WHERE stream_id OPERATOR(pg_catalog.=) $1",
		"DELETE FROM eventkit.streams WHERE stream_id OPERATOR(pg_catalog.=) $1",
	};

	ek_drop_ledger(stream_id);
	ek_unschedule_stream_jobs(stream_id);
	for (int i = 0; i < lengthof(cleanup); i++)
	{
		int			rc = SPI_execute_with_args(cleanup[i], 1, argtypes, values,
											   NULL, false, 0);

		if (rc != SPI_OK_DELETE)
			elog(ERROR, "eventkit: cleanup failed: %s", SPI_result_code_string(rc));
	}
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
	Oid			save_userid;
	int			save_sec;

	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));

	SPI_connect();
	ek_lookup_stream(relid, &stream, false);
	ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(relid)), SPI_OK_UTILITY);

	/* the sql_drop event trigger has usually done this already */
	ek_switch_to_owner(&save_userid, &save_sec);
	forget_stream(stream.stream_id);
	ek_restore_user(save_userid, save_sec);

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
	int			rc;
	int			forgotten = 0;
	List	   *ids;
	ListCell   *lc;

	SPI_connect();
	rc = SPI_execute("SELECT s.stream_id FROM eventkit.streams s"
					 " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
					 "   WHERE c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid)",
					 false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.streams");
	ids = ek_spi_int_list();
	foreach(lc, ids)
	{
		forget_stream(lfirst_int(lc));
		forgotten++;
	}
	SPI_finish();
	PG_RETURN_INT32(forgotten);
}
