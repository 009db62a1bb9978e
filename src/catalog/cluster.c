/*-------------------------------------------------------------------------
 *
 * cluster.c
 *	  The cluster-wide catalog of the streams distributed on Citus.
 *
 *	  eventkit_internal.cluster_streams is a Citus reference table: every
 *	  node holds a copy, written in the distributed transaction of the
 *	  statement that changes it (two-phase commit).  One row per
 *	  distributed stream, keyed by the cluster-wide stream id (the
 *	  coordinator's stream_id) and the stream's qualified name, never by a
 *	  node-local OID: the stream's eventkit.streams row without its relid,
 *	  its tracking plan (the plans row and all its versions) and how many
 *	  rollups it has, with a version counted up at each change.  The
 *	  stream's JSON also holds its rollups' definitions (key ek_rollups:
 *	  bucket, dimensions, measures, options and the name of each one's
 *	  worker delta table), which ingest on a worker needs to write the
 *	  batches' rollup deltas (rollup/delta.c); adoption leaves the key out
 *	  of eventkit.streams.
 *
 *	  On the coordinator the row is published by distribute_stream and
 *	  again whenever the stream's row, its plan (or a new version of it)
 *	  or its rollups change (ek_cluster_stream_changed,
 *	  ek_cluster_plan_changed, called by the catalog modules that write
 *	  them).  On a worker, ingest adopts it (ek_cluster_adopt_stream): the
 *	  row goes into the worker's own eventkit.streams with the cluster id
 *	  and the worker's relid of the stream (found by its name), the plan
 *	  into plans and plan_versions, and the worker's stream id sequence is
 *	  moved past the id.  The rows are rewritten only when they differ.
 *	  Each backend remembers the version it adopted (once committed): a
 *	  call that finds that version in the node's copy of the reference
 *	  table (a heap scan of its shard relation) does nothing more.
 *
 *	  The table is made by distribute_stream (the first one in the
 *	  database) and is not a member of the extension: Citus does not
 *	  distribute an extension's tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"

#include "catalog/catalog.h"
#include "catalog/cluster.h"
#include "catalog/rollups.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/relcache.h"
#include "util/spi.h"

#define CLUSTER_SCHEMA "eventkit_internal"
#define CLUSTER_TABLE "cluster_streams"
#define CLUSTER_QNAME CLUSTER_SCHEMA "." CLUSTER_TABLE
/*
 * The key of the published stream row that holds its rollups' definitions
 * (not a column of eventkit.streams: adoption leaves it out)
 */
#define CLUSTER_ROLLUPS_KEY "ek_rollups"

static void local_catalog_changed(void);

/* Does this node have the table (a Citus reference table once made)? */
bool
ek_cluster_table_exists(void)
{
	Oid			nsp = get_namespace_oid(CLUSTER_SCHEMA, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(CLUSTER_TABLE, nsp));
}

/*
 * The table as a plain table (a Citus coordinator's dump restored on this
 * coordinator, where pg_dump's table is local): its rows of streams that
 * are not Citus tables here are deleted (they are the old cluster's:
 * undistribute_stream and distribute_stream publish them again) and its
 * qualified name returned, for the caller to make it a reference table;
 * NULL when it is missing or a Citus table already.  Caller: SPI
 * connected, as the extension owner, on the coordinator.
 */
const char *
ek_cluster_restored_table(void)
{
	Oid			nsp = get_namespace_oid(CLUSTER_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(CLUSTER_TABLE, nsp) : InvalidOid;

	if (!OidIsValid(relid) || ek_citus_table(relid))
		return NULL;
	ek_spi_exec("DELETE FROM " CLUSTER_QNAME " c"
				" WHERE pg_catalog.to_regclass(c.relname) IS NULL"
				" OR NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p"
				" WHERE p.logicalrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(c.relname))",
				SPI_OK_DELETE);
	return CLUSTER_QNAME;
}

/*
 * Create the table (as a local table: the caller makes it a reference
 * table) and return its qualified name.  Caller: SPI connected, as the
 * extension owner, on the coordinator.
 */
const char *
ek_cluster_create_table(void)
{
	ek_spi_exec("CREATE TABLE " CLUSTER_QNAME " ("
				" stream_id pg_catalog.int4 NOT NULL PRIMARY KEY,"
				" relname pg_catalog.text NOT NULL UNIQUE,"
				" version pg_catalog.int8 NOT NULL,"
				" stream pg_catalog.jsonb NOT NULL,"
				" plan pg_catalog.jsonb,"
				" rollups pg_catalog.int4 NOT NULL)",
				SPI_OK_UTILITY);
	ek_spi_exec("COMMENT ON TABLE " CLUSTER_QNAME " IS 'the catalog of the streams"
				" distributed on Citus, on every node (a Citus reference table): each"
				" stream''s eventkit.streams row without its relid, its tracking plan and"
				" how many rollups it has, keyed by the coordinator''s stream_id and the"
				" stream''s qualified name'",
				SPI_OK_UTILITY);
	ek_spi_exec("REVOKE ALL ON TABLE " CLUSTER_QNAME " FROM PUBLIC", SPI_OK_UTILITY);
	return CLUSTER_QNAME;
}

/*
 * Publish (or publish again) the catalog of a distributed stream to every
 * node, in the caller's transaction.  Caller: SPI connected, on the
 * coordinator.
 */
void
ek_cluster_publish_stream(int32 stream_id)
{
	EkRoleScope as_owner;
	Oid			types[6] = {INT4OID, TEXTOID, JSONBOID, JSONBOID, INT4OID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int			rc;

	ek_as_owner_begin(&as_owner);
	args[0] = Int32GetDatum(stream_id);
	rc = SPI_execute_with_args("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),"
							   " (pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.-) 'relid'::pg_catalog.text)"
							   " OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('" CLUSTER_ROLLUPS_KEY "',"
							   "   (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
							   "      'rollup_id', r.rollup_id, 'bucket', r.bucket, 'dimensions', r.dimensions,"
							   "      'measures', r.measures, 'filter', r.filter, 'time_zone', r.time_zone,"
							   "      'origin', r.origin, 'hll_log2m', r.hll_log2m,"
							   "      'wdelta', (SELECT pg_catalog.format('%I.%I', wn.nspname, w.relname)"
							   "        FROM pg_catalog.pg_class w"
							   "        JOIN pg_catalog.pg_namespace wn ON wn.oid OPERATOR(pg_catalog.=) w.relnamespace"
							   "        WHERE w.relnamespace OPERATOR(pg_catalog.=) rc.relnamespace"
							   "        AND w.relname OPERATOR(pg_catalog.=) (rc.relname OPERATOR(pg_catalog.||) '" EK_ROLLUP_WDELTA_SUFFIX "')::pg_catalog.name))"
							   "      ORDER BY r.rollup_id), '[]'::pg_catalog.jsonb)"
							   "    FROM eventkit.rollups r"
							   "    JOIN pg_catalog.pg_class rc ON rc.oid OPERATOR(pg_catalog.=) r.relid::pg_catalog.oid"
							   "    WHERE r.stream_id OPERATOR(pg_catalog.=) s.stream_id AND r.source_rollup IS NULL)),"
							   " (SELECT pg_catalog.jsonb_build_object('plan', pg_catalog.to_jsonb(p),"
							   "   'versions', (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(v) ORDER BY v.version)"
							   "     FROM eventkit.plan_versions v WHERE v.plan_id OPERATOR(pg_catalog.=) p.plan_id))"
							   "   FROM eventkit.plans p WHERE p.plan_id OPERATOR(pg_catalog.=) s.plan_id),"
							   " (SELECT pg_catalog.count(*)::pg_catalog.int4 FROM eventkit.rollups r"
							   "   WHERE r.stream_id OPERATOR(pg_catalog.=) s.stream_id)"
							   " FROM eventkit.streams s"
							   " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid"
							   " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							   " WHERE s.stream_id OPERATOR(pg_catalog.=) $1",
							   1, types, args, NULL, false, 0);	/* sees the change just made */
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not read the catalog of stream %d to publish it", stream_id);
	args[1] = ek_spi_value(0, 1, &isnull);
	args[2] = ek_spi_value(0, 2, &isnull);
	args[3] = ek_spi_value(0, 3, &isnull);
	nulls[3] = isnull ? 'n' : ' ';
	args[4] = ek_spi_value(0, 4, &isnull);
	rc = SPI_execute_with_args("INSERT INTO " CLUSTER_QNAME " AS c"
							   " (stream_id, relname, version, stream, plan, rollups)"
							   " VALUES ($1, $2, 1, $3, $4, $5)"
							   " ON CONFLICT (stream_id) DO UPDATE SET relname = excluded.relname,"
							   " version = c.version OPERATOR(pg_catalog.+) 1,"
							   " stream = excluded.stream, plan = excluded.plan,"
							   " rollups = excluded.rollups",
							   5, types, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not publish the catalog of stream %d: %s", stream_id,
			 SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
}

/*
 * The catalog row, plan or rollups of a stream changed on this node: if
 * it is a distributed stream, publish them again.  Costs a syscache miss
 * where Citus is not installed.  Caller: SPI connected.
 */
void
ek_cluster_stream_changed(int32 stream_id, Oid relid)
{
	if (!OidIsValid(relid) || ek_citus_table_kind(relid) != EK_CITUS_HASH ||
		!ek_cluster_table_exists())
		return;
	if (ek_citus_on_worker())
	{
		local_catalog_changed();
		return;
	}
	ek_cluster_publish_stream(stream_id);
}

/*
 * A plan has a new version: publish again the distributed streams that
 * have it attached (their workers need the version).  Nothing where Citus
 * is not installed or no stream is distributed.  Caller: SPI connected.
 */
void
ek_cluster_plan_changed(int32 plan_id)
{
	EkRoleScope as_owner;
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(plan_id)};
	int32	   *ids;
	uint64		n;

	if (!ek_citus_present() || !ek_cluster_table_exists())
		return;
	if (ek_citus_on_worker())
	{
		local_catalog_changed();
		return;
	}
	ek_as_owner_begin(&as_owner);
	if (SPI_execute_with_args("SELECT stream_id FROM " CLUSTER_QNAME
							  " WHERE (stream OPERATOR(pg_catalog.->>) 'plan_id')::pg_catalog.int4"
							  " OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read " CLUSTER_QNAME);
	n = SPI_processed;
	ids = palloc(sizeof(int32) * (n + 1));
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;

		ids[r] = DatumGetInt32(ek_spi_value(r, 1, &isnull));
	}
	for (uint64 r = 0; r < n; r++)
		ek_cluster_publish_stream(ids[r]);
	ek_as_role_end(&as_owner);
}

/*
 * Forget a dropped stream, if it was distributed (drop_stream, or the
 * sql_drop trigger after DROP TABLE or DROP OWNED, on the coordinator).
 * A stream that has no row here is not written to every node: the
 * reference table is read first.
 */
void
ek_cluster_forget_stream(int32 stream_id)
{
	EkRoleScope as_owner;
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(stream_id)};

	if (!ek_cluster_table_exists() || ek_citus_on_worker())
		return;
	ek_as_owner_begin(&as_owner);
	if (SPI_execute_with_args("SELECT 1 FROM " CLUSTER_QNAME
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read " CLUSTER_QNAME);
	if (SPI_processed > 0 &&
		SPI_execute_with_args("DELETE FROM " CLUSTER_QNAME
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not forget stream %d in " CLUSTER_QNAME, stream_id);
	ek_as_role_end(&as_owner);
}

/* how many versions a published plan has */
static int64
plan_versions(Datum plan)
{
	Jsonb	   *j = DatumGetJsonbP(plan);
	JsonbValue	key;
	JsonbValue *v;

	key.type = jbvString;
	key.val.string.val = "versions";
	key.val.string.len = 8;
	v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return 0;
	return JsonContainerSize(v->val.binary.data);
}

/*
 * The rollups of a published stream row (CLUSTER_ROLLUPS_KEY), as ingest's
 * deltas need them (StreamRollup, in rollup_id order, allocated in cxt),
 * each with this node's relation of its worker delta table.  Errors when a
 * rollup has none (made before this library), or the row came from a
 * library that does not publish them while the stream has rollups.
 * Caller: SPI connected.
 */
static bool
has_rollups_key(Datum stream)
{
	Jsonb	   *j = DatumGetJsonbP(stream);
	JsonbValue	key;

	key.type = jbvString;
	key.val.string.val = CLUSTER_ROLLUPS_KEY;
	key.val.string.len = strlen(CLUSTER_ROLLUPS_KEY);
	return findJsonbValueFromContainer(&j->root, JB_FOBJECT, &key) != NULL;
}

static List *
adopt_rollups(Oid relid, Datum stream, int32 nrollups, MemoryContext cxt)
{
	Oid			types[1] = {JSONBOID};
	Datum		args[1] = {stream};
	List	   *rollups = NIL;
	uint64		n;
	int			rc;

	rc = SPI_execute_with_args("SELECT (e OPERATOR(pg_catalog.->>) 'rollup_id')::pg_catalog.int4,"
							   " pg_catalog.to_regclass(e OPERATOR(pg_catalog.->>) 'wdelta')::pg_catalog.oid,"
							   " (e OPERATOR(pg_catalog.->>) 'bucket')::pg_catalog.interval,"
							   " ARRAY(SELECT pg_catalog.jsonb_array_elements_text(e OPERATOR(pg_catalog.->) 'dimensions')),"
							   " ARRAY(SELECT pg_catalog.jsonb_array_elements_text(e OPERATOR(pg_catalog.->) 'measures')),"
							   " e OPERATOR(pg_catalog.->>) 'filter', e OPERATOR(pg_catalog.->>) 'time_zone',"
							   " (e OPERATOR(pg_catalog.->>) 'origin')::pg_catalog.timestamptz,"
							   " (e OPERATOR(pg_catalog.->>) 'hll_log2m')::pg_catalog.int4"
							   " FROM pg_catalog.jsonb_array_elements(COALESCE("
							   "   $1 OPERATOR(pg_catalog.->) '" CLUSTER_ROLLUPS_KEY "',"
							   "   '[]'::pg_catalog.jsonb)) e"
							   " ORDER BY 1",
							   1, types, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read the rollups of stream \"%s\": %s",
			 get_rel_name(relid), SPI_result_code_string(rc));
	n = SPI_processed;
	if (n == 0 && nrollups > 0 && !has_rollups_key(stream))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream \"%s\" has rollups and can be ingested only on the Citus coordinator",
						get_rel_name(relid)),
				 errdetail("The coordinator published the stream without its rollups' definitions (an older eventkit library)."),
				 errhint("Update eventkit on the coordinator, or ingest through the coordinator.")));
	for (uint64 r = 0; r < n; r++)
	{
		StreamRollup *sr;
		MemoryContext old;
		bool		isnull;
		Datum		v;

		v = ek_spi_value(r, 2, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("stream \"%s\" has a rollup that can be ingested only on the Citus coordinator",
							get_rel_name(relid)),
					 errdetail("Rollup %d of the stream has no worker delta table (it was made by an eventkit library before 1.10), where ingest on a worker writes its deltas.",
							   DatumGetInt32(ek_spi_value(r, 1, &isnull))),
					 errhint("Ingest through the coordinator, or drop the rollup and create it again.")));
		old = MemoryContextSwitchTo(cxt);
		sr = palloc0(sizeof(StreamRollup));
		sr->rollup_id = DatumGetInt32(ek_spi_value(r, 1, &isnull));
		sr->relid = InvalidOid;
		sr->delta = DatumGetObjectId(v);
		sr->bucket = *DatumGetIntervalP(ek_spi_value(r, 3, &isnull));
		sr->dimensions = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(r, 4, &isnull)));
		sr->measures = PointerGetDatum(DatumGetArrayTypePCopy(ek_spi_value(r, 5, &isnull)));
		v = ek_spi_value(r, 6, &isnull);
		if (!isnull)
			sr->opts.filter = TextDatumGetCString(v);
		v = ek_spi_value(r, 7, &isnull);
		if (!isnull)
			sr->opts.time_zone = TextDatumGetCString(v);
		v = ek_spi_value(r, 8, &isnull);
		sr->opts.has_origin = !isnull;
		if (!isnull)
			sr->opts.origin = DatumGetTimestampTz(v);
		v = ek_spi_value(r, 9, &isnull);
		if (!isnull)
			sr->opts.hll_log2m = DatumGetInt32(v);
		rollups = lappend(rollups, sr);
		MemoryContextSwitchTo(old);
	}
	return rollups;
}

/*
 * On a Citus worker, relid is a distributed stream's table: make this
 * node's catalog hold the stream as the coordinator published it (its row
 * in eventkit.streams under the cluster-wide id, its plan), so that ingest
 * here reads it as on the coordinator, and set *rollups to its rollups'
 * definitions (allocated in cxt: adopt_rollups).  Errors when the stream
 * was not distributed with distribute_stream, when its id is taken here by
 * another stream, or when a rollup of it has no worker delta table.
 * Returns the version of the cluster-wide row it adopted.  Caller: SPI
 * connected.
 */
int64
ek_cluster_adopt_stream(Oid relid, List **rollups, MemoryContext cxt)
{
	EkRoleScope as_owner;
	Oid			types[3] = {TEXTOID, JSONBOID, INT4OID};
	Datum		args[3];
	char	   *relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													 get_rel_name(relid));
	int32		stream_id;
	Datum		stream;
	Datum		plan;
	bool		has_plan;
	int32		rollups_count;
	int64		version;
	bool		isnull;
	int			rc;

	ek_as_owner_begin(&as_owner);
	if (!ek_cluster_table_exists())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation \"%s\" is not an eventkit stream", get_rel_name(relid)),
				 errdetail("It is a Citus table, and no stream was distributed with eventkit.distribute_stream() in this database."),
				 errhint("Distribute streams with eventkit.distribute_stream() on the coordinator.")));
	args[0] = CStringGetTextDatum(relname);
	rc = SPI_execute_with_args("SELECT stream_id, stream, plan, rollups, version FROM " CLUSTER_QNAME
							   " WHERE relname OPERATOR(pg_catalog.=) $1",
							   1, types, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read " CLUSTER_QNAME ": %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s\" is not an eventkit stream", get_rel_name(relid)),
				 errdetail("It is a Citus table that was not distributed with eventkit.distribute_stream()."),
				 errhint("Create streams with eventkit.create_stream() and distribute them with eventkit.distribute_stream() on the coordinator.")));
	stream_id = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	stream = ek_spi_value(0, 2, &isnull);
	plan = ek_spi_value(0, 3, &has_plan);
	has_plan = !has_plan;
	rollups_count = DatumGetInt32(ek_spi_value(0, 4, &isnull));
	version = DatumGetInt64(ek_spi_value(0, 5, &isnull));
	/* the rollups whose deltas ingest here writes (to the coordinator) */
	*rollups = adopt_rollups(relid, stream, rollups_count, cxt);

	/* is this node's copy the same?  (created_at and all, relid aside) */
	args[1] = stream;
	args[2] = Int32GetDatum(stream_id);
	rc = SPI_execute_with_args("SELECT s.relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass,"
							   " (pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.-) 'relid'::pg_catalog.text)"
							   "   OPERATOR(pg_catalog.=) ($2 OPERATOR(pg_catalog.-) '" CLUSTER_ROLLUPS_KEY "'::pg_catalog.text),"
							   " (SELECT pg_catalog.count(*) FROM eventkit.plan_versions v"
							   "   WHERE v.plan_id OPERATOR(pg_catalog.=) s.plan_id)"
							   " FROM eventkit.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $3",
							   3, types, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.streams: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		int64		nversions = DatumGetInt64(ek_spi_value(0, 3, &isnull));

		if (!DatumGetBool(ek_spi_value(0, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("stream id %d of distributed stream \"%s\" is taken on this node by another stream",
							stream_id, relname),
					 errdetail("Stream ids of distributed streams are the coordinator's; this worker has a stream of its own with that id."),
					 errhint("Drop this worker's own stream, or ingest through the coordinator.")));
		if (DatumGetBool(ek_spi_value(0, 2, &isnull)) &&
			(!has_plan || nversions == plan_versions(plan)))
		{
			ek_as_role_end(&as_owner);
			return version;
		}
	}

	/* the plan first: the stream's row refers to it */
	if (has_plan)
	{
		Oid			ptypes[1] = {JSONBOID};
		Datum		pargs[1] = {plan};

		rc = SPI_execute_with_args("INSERT INTO eventkit.plans"
								   " SELECT (pg_catalog.jsonb_populate_record(NULL::eventkit.plans, $1 OPERATOR(pg_catalog.->) 'plan')).*"
								   " ON CONFLICT (plan_id) DO UPDATE SET name = excluded.name, owner = excluded.owner"
								   " WHERE (plans.name, plans.owner) IS DISTINCT FROM (excluded.name, excluded.owner)",
								   1, ptypes, pargs, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "eventkit: could not adopt the plan of stream %d: %s", stream_id,
				 SPI_result_code_string(rc));
		rc = SPI_execute_with_args("INSERT INTO eventkit.plan_versions"
								   " SELECT (pg_catalog.jsonb_populate_record(NULL::eventkit.plan_versions, v)).*"
								   " FROM pg_catalog.jsonb_array_elements($1 OPERATOR(pg_catalog.->) 'versions') v"
								   " ON CONFLICT DO NOTHING",
								   1, ptypes, pargs, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "eventkit: could not adopt the plan versions of stream %d: %s", stream_id,
				 SPI_result_code_string(rc));
	}

	rc = SPI_execute_with_args("INSERT INTO eventkit.streams"
							   " SELECT (pg_catalog.jsonb_populate_record(NULL::eventkit.streams,"
							   "   $2 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('relid',"
							   "   $1::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int8))).*"
							   " ON CONFLICT (stream_id) DO UPDATE SET"
							   " (partition_interval, premake, retention, key_partitions, dedup_window,"
							   "  ledger_gen, created_at, plan_id, plan_version, max_past, max_future,"
							   "  max_event_bytes, max_batch_bytes, max_batch_items)"
							   " = (excluded.partition_interval, excluded.premake, excluded.retention,"
							   "  excluded.key_partitions, excluded.dedup_window, excluded.ledger_gen,"
							   "  excluded.created_at, excluded.plan_id, excluded.plan_version,"
							   "  excluded.max_past, excluded.max_future, excluded.max_event_bytes,"
							   "  excluded.max_batch_bytes, excluded.max_batch_items)"
							   " WHERE streams.relid OPERATOR(pg_catalog.=) excluded.relid",
							   3, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not adopt the catalog of stream %d: %s", stream_id,
			 SPI_result_code_string(rc));

	/* this node's own streams get ids after it */
	rc = SPI_execute_with_args("SELECT pg_catalog.setval('eventkit.streams_stream_id_seq', $3)"
							   " FROM eventkit.streams_stream_id_seq"
							   " WHERE last_value OPERATOR(pg_catalog.<) $3",
							   3, types, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not move the stream id sequence: %s",
			 SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
	/* the catalog's read-only statements (the plan's) see the rows now */
	CommandCounterIncrement();
	return version;
}

/*
 * What this backend adopted, so that a call need not compare the catalog
 * rows again: (stream relid, version of its cluster-wide row).  An entry
 * counts once its transaction committed (nest_level 0); until then it is
 * pending at the (sub)transaction level that adopted, and dropped if that
 * aborts (the adopted rows are gone with it).  Forgotten when this node's
 * copy of the stream's row may have changed under it: a relcache
 * invalidation of eventkit.streams (sent by this node's writers of a
 * distributed stream's catalog, ek_cluster_stream_changed and
 * ek_cluster_plan_changed), of the stream's table or of the cluster table
 * (or a reset of all).  The cluster-wide row's version is read on every
 * call from this node's copy of the reference table (its shard relation,
 * by a heap scan: no SPI, no executor), so a change published by the
 * coordinator is adopted by the next call, as before.
 */
#define MAX_SYNCED 32

typedef struct SyncedStream
{
	Oid			relid;
	int64		version;
	int			nest_level;		/* 0: committed */
	MemoryContext cxt;			/* holds rollups */
	List	   *rollups;		/* StreamRollup *: what ingest's deltas need */
} SyncedStream;

static SyncedStream synced[MAX_SYNCED];
static int	nsynced = 0;
static Oid	cluster_shell = InvalidOid; /* the cluster table here */
static Oid	cluster_shard = InvalidOid; /* and its shard relation */
static Oid	streams_relid = InvalidOid;
static bool sync_callbacks = false;

/* the memory of an entry that is forgotten */
static void
drop_synced(SyncedStream *e)
{
	if (e->cxt != NULL)
		MemoryContextDelete(e->cxt);
	e->cxt = NULL;
	e->rollups = NIL;
}

/* forget the entries of relid (all: InvalidOid) */
static void
forget_synced(Oid relid)
{
	int			keep = 0;

	for (int i = 0; i < nsynced; i++)
		if (OidIsValid(relid) && synced[i].relid != relid)
			synced[keep++] = synced[i];
		else
			drop_synced(&synced[i]);
	nsynced = keep;
}

static void
sync_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cluster_shell || relid == cluster_shard)
	{
		cluster_shell = InvalidOid;
		cluster_shard = InvalidOid;
		forget_synced(InvalidOid);
	}
	else if (relid == streams_relid)
		forget_synced(InvalidOid);
	else
		forget_synced(relid);
}

static void
sync_xact_callback(XactEvent event, void *arg)
{
	int			keep = 0;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	for (int i = 0; i < nsynced; i++)
	{
		if (synced[i].nest_level == 0)
			synced[keep++] = synced[i];
		else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		{
			synced[i].nest_level = 0;
			synced[keep++] = synced[i];
		}
		else
			drop_synced(&synced[i]);	/* abort, prepare (the outcome is not
										 * ours to know): forgotten */
	}
	nsynced = keep;
}

static void
sync_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			keep = 0;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (int i = 0; i < nsynced; i++)
	{
		if (synced[i].nest_level >= level)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
			{
				drop_synced(&synced[i]);
				continue;
			}
			synced[i].nest_level = level - 1;
		}
		synced[keep++] = synced[i];
	}
	nsynced = keep;
}

/*
 * The version of relid's row in this node's copy of the cluster table, or
 * -1 when it cannot be read here without the executor (no local shard
 * relation, no row).
 */
static int64
local_cluster_version(Oid relid)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	char	   *relname;
	int64		version = -1;

	if (!OidIsValid(cluster_shard))
	{
		Oid			nsp = get_namespace_oid(CLUSTER_SCHEMA, true);

		cluster_shell = OidIsValid(nsp) ? get_relname_relid(CLUSTER_TABLE, nsp) : InvalidOid;
		if (!OidIsValid(cluster_shell))
			return -1;
		cluster_shard = ek_citus_local_shard(cluster_shell);
		if (!OidIsValid(cluster_shard))
			return -1;
	}
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	rel = table_open(cluster_shard, AccessShareLock);
	scan = table_beginscan(rel, ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(),
						   0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		name = heap_getattr(tup, 2, desc, &isnull);

		if (isnull || strcmp(TextDatumGetCString(name), relname) != 0)
			continue;
		version = DatumGetInt64(heap_getattr(tup, 3, desc, &isnull));
		if (isnull)
			version = -1;
		break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Before ingest reads a stream's catalog row: on a Citus worker, a
 * distributed stream's row is adopted from the cluster-wide catalog (or
 * brought up to date).  A call that finds the version this backend
 * adopted (and committed) before reads one row of this node's copy of
 * the cluster table and nothing else.  Nothing elsewhere (a syscache miss
 * without Citus).  Caller: SPI connected.
 */
void
ek_cluster_sync_local(Oid relid)
{
	int64		version;
	int64		adopted = 0;
	List	   *rollups = NIL;
	MemoryContext cxt;

	if (ek_citus_table_kind(relid) != EK_CITUS_HASH || !ek_citus_on_worker())
		return;

	/*
	 * Citus's local execution stays on: ingest claims and writes this
	 * node's shards itself (the per-shard fast path, dist_ledger.c and
	 * writer.c), so what it sends through Citus is only other nodes'
	 * shards, in one order on every node; switching local execution off
	 * (as before the fast path) is not needed to keep that order.
	 */
	if (!sync_callbacks)
	{
		ek_register_relcache_callback(sync_relcache_callback, (Datum) 0);
		RegisterXactCallback(sync_xact_callback, NULL);
		RegisterSubXactCallback(sync_subxact_callback, NULL);
		sync_callbacks = true;
	}
	streams_relid = ek_catalog_relid("streams");

	/*
	 * Read in a snapshot taken now, not the statement's: the caller holds
	 * the stream's lock, which create_rollup takes on every node (in SHARE
	 * mode, until it commits), so that a call that waited for it sees the
	 * rollup it made, and writes its deltas
	 */
	PushActiveSnapshot(GetLatestSnapshot());
	version = local_cluster_version(relid);
	if (version >= 0)
		for (int i = 0; i < nsynced; i++)
			if (synced[i].relid == relid && synced[i].version == version)
			{
				PopActiveSnapshot();
				return;
			}

	cxt = AllocSetContextCreate(TopMemoryContext, "eventkit adopted rollups",
								ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		adopted = ek_cluster_adopt_stream(relid, &rollups, cxt);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PopActiveSnapshot();
	forget_synced(relid);
	if (nsynced == MAX_SYNCED)
		forget_synced(InvalidOid);
	synced[nsynced].relid = relid;
	synced[nsynced].version = adopted;
	synced[nsynced].nest_level = GetCurrentTransactionNestLevel();
	synced[nsynced].cxt = cxt;
	synced[nsynced].rollups = rollups;
	nsynced++;
}

/* a copy of a StreamRollup, in the current memory context */
static StreamRollup *
copy_rollup(const StreamRollup *sr)
{
	StreamRollup *c = palloc(sizeof(StreamRollup));

	*c = *sr;
	c->dimensions = PointerGetDatum(DatumGetArrayTypePCopy(sr->dimensions));
	c->measures = PointerGetDatum(DatumGetArrayTypePCopy(sr->measures));
	if (sr->opts.filter != NULL)
		c->opts.filter = pstrdup(sr->opts.filter);
	if (sr->opts.time_zone != NULL)
		c->opts.time_zone = pstrdup(sr->opts.time_zone);
	return c;
}

/*
 * On a Citus worker, relid a distributed stream: the rollups whose deltas
 * ingest here writes (StreamRollup *, each with its worker delta table,
 * copied into the current memory context), as adopted with the stream's
 * catalog (adopted again if this backend forgot it meanwhile); returns
 * true.  Elsewhere false: the node's own catalog has the stream's rollups
 * (catalog/rollups.c).  Caller: SPI connected.
 */
bool
ek_cluster_worker_rollups(Oid relid, List **rollups)
{
	*rollups = NIL;
	if (ek_citus_table_kind(relid) != EK_CITUS_HASH || !ek_citus_on_worker())
		return false;
	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < nsynced; i++)
			if (synced[i].relid == relid)
			{
				ListCell   *lc;

				foreach(lc, synced[i].rollups)
					*rollups = lappend(*rollups, copy_rollup(lfirst(lc)));
				return true;
			}
		ek_cluster_sync_local(relid);
	}
	elog(ERROR, "eventkit: the catalog of distributed stream \"%s\" was not adopted",
		 get_rel_name(relid));
	return true;				/* keep the compiler quiet */
}

/*
 * This node's catalog of a distributed stream changed (on a worker: a
 * local change to an adopted stream's row or plan): every backend's
 * adopted streams are checked again (the invalidation is sent with the
 * transaction).
 */
static void
local_catalog_changed(void)
{
	CacheInvalidateRelcacheByRelid(ek_catalog_relid("streams"));
}
