/*-------------------------------------------------------------------------
 *
 * cluster_stats.c
 *	  The whole cluster's answers on the Citus coordinator: what the
 *	  workers hold of each distributed stream.  Ingest on a worker logs
 *	  its batches, quarantine and violations in the worker's own tables;
 *	  these functions ask every worker for them (Citus's
 *	  run_command_on_workers: a new connection to each, as the caller, so
 *	  that the worker's privileges and row-level security apply there as
 *	  here) and return them with the worker's name.
 *
 *	  eventkit.worker_stream_stats(): each worker's eventkit.stream_stats
 *	  row of each distributed stream; eventkit.stream_stats adds them up
 *	  with the node's own, so that the coordinator's view answers for the
 *	  cluster; eventkit.worker_violation_stats() and
 *	  eventkit.violation_stats likewise; eventkit.worker_health(): each
 *	  worker reached or not, and what its health() finds wrong, shown by
 *	  the coordinator's health() (eventkit.health_citus).
 *	  eventkit.worker_quarantine(stream), eventkit.worker_conflicts(stream)
 *	  and eventkit.worker_ingest_batches(stream): the rows the workers
 *	  keep in quarantine, the conflicts they logged and their batch log
 *	  for the stream (worker_quarantine and worker_conflicts for the
 *	  stream's owner only, worker_ingest_batches for who may read the
 *	  node's batch log).  On a
 *	  server without Citus, on a worker, or with no distributed stream,
 *	  they return nothing and connect nowhere.  A worker that cannot be
 *	  reached gives a WARNING and no rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog/catalog.h"
#include "catalog/cluster.h"
#include "catalog/streams.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_worker_stream_stats);
PG_FUNCTION_INFO_V1(eventkit_worker_quarantine);
PG_FUNCTION_INFO_V1(eventkit_worker_conflicts);
PG_FUNCTION_INFO_V1(eventkit_worker_ingest_batches);
PG_FUNCTION_INFO_V1(eventkit_worker_violation_stats);
PG_FUNCTION_INFO_V1(eventkit_worker_health);

/* the columns of eventkit.stream_stats a worker sends, as JSON */
#define STATS_COLUMNS \
	"stream_id pg_catalog.int4, batches pg_catalog.int8, accepted pg_catalog.int8," \
	" duplicates pg_catalog.int8, conflicts pg_catalog.int8, quarantined pg_catalog.int8," \
	" rejected pg_catalog.int8, in_quarantine pg_catalog.int8," \
	" last_ingest_at pg_catalog.timestamptz"

/* and of eventkit.violation_stats */
#define VIOLATION_COLUMNS \
	"stream_id pg_catalog.int4, plan pg_catalog.text, event pg_catalog.text," \
	" keyword pg_catalog.text, property_path pg_catalog.text, action pg_catalog.text," \
	" violations pg_catalog.int8, batches pg_catalog.int8," \
	" first_plan_version pg_catalog.int4, last_plan_version pg_catalog.int4," \
	" last_batch_id pg_catalog.int8"

/* and of eventkit.health() */
#define HEALTH_COLUMNS \
	"component pg_catalog.text, target pg_catalog.text, status pg_catalog.text," \
	" value pg_catalog.numeric, detail pg_catalog.text"

/* and of eventkit.quarantine */
#define QUARANTINE_COLUMNS \
	"quarantine_id pg_catalog.int8, batch_id pg_catalog.int8, item pg_catalog.int4," \
	" message_id pg_catalog.text, received_at pg_catalog.timestamptz," \
	" quarantined_at pg_catalog.timestamptz, reasons pg_catalog.jsonb," \
	" payload pg_catalog.jsonb, raw pg_catalog.text, replays pg_catalog.int4"

/* and of eventkit.conflicts */
#define CONFLICT_COLUMNS \
	"conflict_id pg_catalog.int8, batch_id pg_catalog.int8, item pg_catalog.int4," \
	" message_id pg_catalog.text, received_at pg_catalog.timestamptz," \
	" payload pg_catalog.jsonb"

/* and of eventkit.ingest_batches */
#define BATCH_COLUMNS \
	"batch_id pg_catalog.int8, received_at pg_catalog.timestamptz," \
	" ingested_at pg_catalog.timestamptz, ingested_by pg_catalog.name," \
	" items pg_catalog.int4, accepted pg_catalog.int8, duplicates pg_catalog.int8," \
	" conflicts pg_catalog.int8, quarantined pg_catalog.int8, rejected pg_catalog.int8"

/*
 * Is this the coordinator of a Citus cluster that has distributed
 * streams?  (No SPI: a syscache miss without Citus.)
 */
static bool
on_coordinator_with_streams(void)
{
	return ek_citus_present() && !ek_citus_on_worker() && ek_cluster_table_exists();
}

/*
 * The ids of this node's distributed streams, as an int4[] literal
 * ("{1,2}"), or NULL when there are none.  Read as the extension owner
 * (the caller may not read the catalog table).  Caller: SPI connected.
 */
static char *
distributed_stream_ids(void)
{
	EkRoleScope as_owner;
	StringInfoData ids;
	int			n = 0;

	ek_as_owner_begin(&as_owner);
	if (SPI_execute("SELECT stream_id, relid FROM eventkit.streams ORDER BY stream_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read the streams");
	ek_as_role_end(&as_owner);

	initStringInfo(&ids);
	appendStringInfoChar(&ids, '{');
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		stream_id = DatumGetInt32(ek_spi_value(r, 1, &isnull));
		Oid			relid = DatumGetObjectId(ek_spi_value(r, 2, &isnull));

		if (isnull || ek_citus_table_kind(relid) != EK_CITUS_HASH)
			continue;
		appendStringInfo(&ids, "%s%d", n++ > 0 ? "," : "", stream_id);
	}
	appendStringInfoChar(&ids, '}');
	return n > 0 ? ids.data : NULL;
}

/*
 * Run command (which gives one JSON array of objects with the columns
 * coldefs) on every worker, and put its rows into the function's result,
 * each after the worker's name ("host:port").  A worker not reached, or
 * whose command failed, gives a WARNING, or with failure_rows an error row
 * of worker_health().  Caller: SPI connected, the
 * result set up by InitMaterializedSRF.
 */
static void
rows_from_workers(FunctionCallInfo fcinfo, const char *command, const char *coldefs,
				  const char *what, bool failure_rows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc = rsinfo->setDesc;
	int			ncols = desc->natts;
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(command);
	Datum	   *values = palloc(sizeof(Datum) * ncols);
	bool	   *nulls = palloc(sizeof(bool) * ncols);
	char	   *sql;

	sql = psprintf("SELECT w.node, w.success, w.result, x.*"
				   " FROM (SELECT r.nodename OPERATOR(pg_catalog.||) ':'"
				   "         OPERATOR(pg_catalog.||) r.nodeport AS node, r.success, r.result"
				   "        FROM pg_catalog.run_command_on_workers($1) r) w"
				   " LEFT JOIN LATERAL pg_catalog.json_to_recordset("
				   "   CASE WHEN w.success THEN w.result::pg_catalog.json END) AS x(%s) ON true"
				   " ORDER BY 1",
				   coldefs);
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: run_command_on_workers failed");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		char	   *node = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		bool		success = DatumGetBool(ek_spi_value(r, 2, &isnull));

		CHECK_FOR_INTERRUPTS();
		if (!success && failure_rows)
		{
			/* worker_health()'s layout: node, component, target, status, value, detail */
			memset(nulls, false, sizeof(bool) * ncols);
			values[0] = CStringGetTextDatum(node);
			values[1] = CStringGetTextDatum("citus");
			values[2] = CStringGetTextDatum(node);
			values[3] = CStringGetTextDatum("error");
			nulls[4] = true;
			values[5] = CStringGetTextDatum(psprintf("the worker could not be reached or failed: %s",
													 SPI_getvalue(SPI_tuptable->vals[r],
																  SPI_tuptable->tupdesc, 3)));
			tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
			continue;
		}
		if (!success)
		{
			ereport(WARNING,
					(errmsg("could not read the %s of Citus worker %s", what, node),
					 errdetail("%s", SPI_getvalue(SPI_tuptable->vals[r],
												  SPI_tuptable->tupdesc, 3)),
					 errhint("The result leaves that worker out.")));
			continue;
		}
		/* a worker with no rows: the left join's one empty row */
		(void) ek_spi_value(r, 4, &isnull);
		if (isnull)
			continue;
		values[0] = CStringGetTextDatum(node);
		nulls[0] = false;
		for (int c = 1; c < ncols; c++)
			values[c] = ek_spi_value(r, c + 3, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
}

/*
 * The function's result: the columns of the rows of eventkit.<view> that
 * belong to distributed streams, from every worker (in order), each after
 * the worker's name.  Nothing without distributed streams.
 */
static void
view_rows_from_workers(FunctionCallInfo fcinfo, const char *columns, const char *view,
					   const char *order, const char *coldefs, const char *what)
{
	char	   *ids;

	InitMaterializedSRF(fcinfo, 0);
	if (!on_coordinator_with_streams())
		return;
	SPI_connect();
	ids = distributed_stream_ids();
	if (ids != NULL)
		rows_from_workers(fcinfo,
						  psprintf("SELECT COALESCE(pg_catalog.json_agg(v), '[]')"
								   " FROM (SELECT %s FROM eventkit.%s"
								   " WHERE stream_id OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.int4[])"
								   " ORDER BY %s) v",
								   columns, view, quote_literal_cstr(ids), order),
						  coldefs, what, false);
	SPI_finish();
}

/*
 * eventkit.worker_stream_stats() RETURNS TABLE (node text, stream_id int,
 *	 batches bigint, accepted bigint, duplicates bigint, conflicts bigint,
 *	 quarantined bigint, rejected bigint, in_quarantine bigint,
 *	 last_ingest_at timestamptz)
 *
 * On the coordinator: each worker's eventkit.stream_stats row of each
 * distributed stream (a worker that never ingested into a stream has
 * none).  eventkit.stream_stats adds them to the node's own.
 */
Datum
eventkit_worker_stream_stats(PG_FUNCTION_ARGS)
{
	view_rows_from_workers(fcinfo, "stream_id, batches, accepted, duplicates, conflicts,"
						   " quarantined, rejected, in_quarantine, last_ingest_at",
						   "stream_stats", "stream_id", STATS_COLUMNS, "stream statistics");
	return (Datum) 0;
}

/*
 * eventkit.worker_violation_stats() RETURNS TABLE (node text, stream_id
 *	 int, plan text, event text, keyword text, property_path text, action
 *	 text, violations bigint, batches bigint, first_plan_version int,
 *	 last_plan_version int, last_batch_id bigint)
 *
 * On the coordinator: each worker's eventkit.violation_stats rows of the
 * distributed streams (those the caller may read there).
 * eventkit.violation_stats adds them to the node's own.
 */
Datum
eventkit_worker_violation_stats(PG_FUNCTION_ARGS)
{
	view_rows_from_workers(fcinfo, "stream_id, plan, event, keyword, property_path, action,"
						   " violations, batches, first_plan_version, last_plan_version,"
						   " last_batch_id",
						   "violation_stats",
						   "stream_id, plan, event, keyword, property_path, action",
						   VIOLATION_COLUMNS, "violation statistics");
	return (Datum) 0;
}

/*
 * The function's result: the rows of one distributed stream in the
 * eventkit table (its columns, in order), from every worker (in order),
 * each after the worker's name.  Nothing for a stream that is not
 * distributed, or off a coordinator.
 */
static void
stream_rows_from_workers(FunctionCallInfo fcinfo, Oid relid, const char *columns,
						 const char *table, const char *order, const char *coldefs,
						 const char *what)
{
	StreamInfo	stream;

	InitMaterializedSRF(fcinfo, 0);
	if (!on_coordinator_with_streams() || ek_citus_table_kind(relid) != EK_CITUS_HASH)
		return;
	SPI_connect();
	ek_streams_read(relid, &stream, false);
	rows_from_workers(fcinfo,
					  psprintf("SELECT COALESCE(pg_catalog.json_agg(t), '[]')"
							   " FROM (SELECT %s FROM eventkit.%s"
							   " WHERE stream_id OPERATOR(pg_catalog.=) %d"
							   " ORDER BY %s) t",
							   columns, table, stream.stream_id, order),
					  coldefs, what, false);
	SPI_finish();
}

/*
 * eventkit.worker_quarantine(stream regclass) RETURNS TABLE (node text,
 *	 quarantine_id bigint, batch_id bigint, item int, message_id text,
 *	 received_at timestamptz, quarantined_at timestamptz, reasons jsonb,
 *	 payload jsonb, raw text, replays int)
 *
 * On the coordinator: the rows the workers keep in quarantine for a
 * distributed stream.  The stream's owner (or a member of the owning
 * role) only, as worker_conflicts: anyone else is refused here (before
 * 1.16 such a role got no rows, each worker's row-level security hiding
 * them), and each worker's row-level security applies there.  Replay or
 * discard them on that worker (replay_quarantine, discard_quarantine with
 * their ids).
 */
Datum
eventkit_worker_quarantine(PG_FUNCTION_ARGS)
{
	stream_rows_from_workers(fcinfo, ek_owned_stream_arg(fcinfo, 0),
							 "quarantine_id, batch_id, item, message_id, received_at,"
							 " quarantined_at, reasons, payload, raw, replays",
							 "quarantine", "quarantine_id", QUARANTINE_COLUMNS, "quarantine");
	return (Datum) 0;
}

/*
 * eventkit.worker_conflicts(stream regclass) RETURNS TABLE (node text,
 *	 conflict_id bigint, batch_id bigint, item int, message_id text,
 *	 received_at timestamptz, payload jsonb)
 *
 * On the coordinator: the conflicts the workers logged for a distributed
 * stream (ingest on a worker logs them there; the coordinator's own are
 * in its eventkit.conflicts).  The stream's owner (or a member of the
 * owning role) only, as for its quarantine: anyone else is refused here,
 * and each worker's row-level security applies there.
 */
Datum
eventkit_worker_conflicts(PG_FUNCTION_ARGS)
{
	stream_rows_from_workers(fcinfo, ek_owned_stream_arg(fcinfo, 0),
							 "conflict_id, batch_id, item, message_id, received_at, payload",
							 "conflicts", "conflict_id", CONFLICT_COLUMNS, "conflicts");
	return (Datum) 0;
}

/*
 * eventkit.worker_ingest_batches(stream regclass) RETURNS TABLE (node
 *	 text, batch_id bigint, received_at timestamptz, ingested_at
 *	 timestamptz, ingested_by name, items int, accepted bigint, duplicates
 *	 bigint, conflicts bigint, quarantined bigint, rejected bigint)
 *
 * On the coordinator: the workers' batch logs of a distributed stream
 * (their batch ids are each worker's own).  Who may read this node's
 * eventkit.ingest_batches only (superusers, unless granted): anyone else
 * is refused here, and each worker checks its own grant.
 */
Datum
eventkit_worker_ingest_batches(PG_FUNCTION_ARGS)
{
	Oid			relid = ek_stream_arg(fcinfo, 0);
	Oid			batches = ek_catalog_relid("ingest_batches");

	if (pg_class_aclcheck(batches, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(batches));
	stream_rows_from_workers(fcinfo, relid,
							 "batch_id, received_at, ingested_at, ingested_by, items,"
							 " accepted, duplicates, conflicts, quarantined, rejected",
							 "ingest_batches", "batch_id", BATCH_COLUMNS, "batch log");
	return (Datum) 0;
}

/*
 * eventkit.worker_health() RETURNS TABLE (node text, component text,
 *	 target text, status text, value numeric, detail text)
 *
 * On the coordinator of a cluster with distributed streams: a row per
 * worker (component citus: ok when it answered, error when it could not
 * be reached or failed), and the rows of its eventkit.health() that are
 * not ok.  eventkit.health_citus shows them in the coordinator's health().
 */
Datum
eventkit_worker_health(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	if (!on_coordinator_with_streams())
		return (Datum) 0;
	SPI_connect();
	if (distributed_stream_ids() != NULL)
		rows_from_workers(fcinfo,
						  "SELECT COALESCE(pg_catalog.json_agg(h), '[]') FROM ("
						  "SELECT 'citus' AS component, NULL::pg_catalog.text AS target,"
						  " 'ok' AS status, NULL::pg_catalog.numeric AS value,"
						  " 'the worker answered' AS detail"
						  " UNION ALL"
						  " SELECT * FROM (SELECT component, target, status, value, detail"
						  " FROM eventkit.health() WHERE status OPERATOR(pg_catalog.<>) 'ok'"
						  " ORDER BY component, target) p) h",
						  HEALTH_COLUMNS, "health", true);
	SPI_finish();
	return (Datum) 0;
}
