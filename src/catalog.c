/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Streams: eventkit.create_stream() and eventkit.drop_stream(), the
 *	  eventkit.streams catalog row, and the helpers every subsystem uses to
 *	  read it, to build quoted SQL and to act as the extension owner for
 *	  eventkit's own bookkeeping tables.
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

	/* a 1.0 catalog (before ALTER EXTENSION eventkit UPDATE) has no plans */
	if (OidIsValid(get_relname_relid("plan_versions", get_namespace_oid("eventkit", false))))
		rc = SPI_execute_with_args("SELECT stream_id, partition_interval, premake, retention,"
								   " key_partitions, dedup_window, ledger_gen, plan_id,"
								   " COALESCE(plan_version, (SELECT pg_catalog.max(v.version)"
								   "  FROM eventkit.plan_versions v"
								   "  WHERE v.plan_id OPERATOR(pg_catalog.=) s.plan_id))"
								   " FROM eventkit.streams s"
								   " WHERE relid OPERATOR(pg_catalog.=) $1",
								   1, argtypes, values, NULL, false, 1);
	else
		rc = SPI_execute_with_args("SELECT stream_id, partition_interval, premake, retention,"
								   " key_partitions, dedup_window, ledger_gen, NULL, NULL"
								   " FROM eventkit.streams"
								   " WHERE relid OPERATOR(pg_catalog.=) $1",
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
	if (info->plan_version == 0)
		info->plan_id = 0;
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
 * eventkit.create_stream(stream text, partition_interval interval,
 *						  premake int, retention interval,
 *						  key_partitions int, dedup_window interval)
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
	Interval   *part_iv;
	Interval   *dedup_iv;
	Interval   *retention = NULL;
	StringInfoData sql;
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[7] = {INT4OID, OIDOID, INTERVALOID, INT4OID,
	INTERVALOID, INT4OID, INTERVALOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;
	bool		isnull;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null"),
				 errhint("Pass the name of the table to create, such as 'events' or 'analytics.events'.")));
	name_text = PG_GETARG_TEXT_PP(0);
	part_iv = interval_arg(fcinfo, 1, "partition_interval");
	ek_check_partition_interval(part_iv);
	memset(&stream, 0, sizeof(stream));
	stream.partition_interval = *part_iv;
	stream.premake = int_arg(fcinfo, 2, "premake", 0, MAX_PREMAKE);
	if (!PG_ARGISNULL(3))
	{
		retention = interval_arg(fcinfo, 3, "retention");
		stream.has_retention = true;
		stream.retention = *retention;
	}
	stream.key_partitions = int_arg(fcinfo, 4, "key_partitions", 0, MAX_KEY_PARTITIONS);
	dedup_iv = interval_arg(fcinfo, 5, "dedup_window");
	stream.dedup_window = *dedup_iv;
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

	values[0] = Int32GetDatum(stream.stream_id);
	values[1] = ObjectIdGetDatum(stream.relid);
	values[2] = IntervalPGetDatum(part_iv);
	values[3] = Int32GetDatum(stream.premake);
	values[4] = retention ? IntervalPGetDatum(retention) : (Datum) 0;
	nulls[4] = retention ? ' ' : 'n';
	values[5] = Int32GetDatum(stream.key_partitions);
	values[6] = IntervalPGetDatum(dedup_iv);
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
