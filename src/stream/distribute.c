/*-------------------------------------------------------------------------
 *
 * distribute.c
 *	  Streams on Citus, orchestrated.
 *
 *	  eventkit.distribute_stream(stream, shard_count), on the coordinator:
 *	  hash-distributes the stream by user_key (create_distributed_table;
 *	  the partitions attached later are distributed by Citus as they are
 *	  attached) and creates its dedup ledger co-located with it, unique on
 *	  (user_key, message_id) (pipeline/dedup/dist_ledger.c), holding the ids
 *	  of the stream's ledger so far, and publishes the stream's catalog to
 *	  every node (catalog/cluster.c), so that ingest runs on any node.
 *	  eventkit.undistribute_stream(stream) takes a stream that is no longer
 *	  a Citus table (a coordinator's dump restored elsewhere) back to its
 *	  own ledger, and rebuilds its rollups from its rows (docs/citus.md,
 *	  "Backup and restore").
 *	  From then on ingest claims ids in that ledger and writes the rows
 *	  through the executor, both routed by Citus to the nodes that hold
 *	  each shard, in one distributed transaction.
 *
 *	  The waiting events of the workers: a worker quarantines an event whose
 *	  partition is missing there (out_of_range: partitions of a distributed
 *	  stream are made by the coordinator only).  On the coordinator, the
 *	  premake job (and run_maintenance) of a distributed stream calls
 *	  eventkit.redrive_quarantine(stream) on every worker (Citus's
 *	  run_command_on_workers: a new connection to each, as the current
 *	  role, the stream's owner), which replays there what has a partition
 *	  now and says which partitions the rest wait for; the coordinator makes
 *	  those (within the stream's retention and clock bounds, as for its own
 *	  waiting events), and the redrive job calls it again to replay them once
 *	  made.  A worker not reached gives a WARNING (the job's next run tries
 *	  again).
 *
 *	  Roles: Citus reaches co-located placements as one user per
 *	  transaction, so everything a call does through Citus on a
 *	  distributed stream runs as the stream's owner, and its ledger is that
 *	  role's (pipeline/dedup/dist_ledger.c).  distribute_stream runs Citus
 *	  as the extension owner (a superuser: the ledger's shards are made in
 *	  eventkit's schema), so for a stream whose owner is not a superuser
 *	  it needs a superuser caller: Citus copies the stream's rows into the
 *	  shards and builds their indexes, the owner's code, with the caller's
 *	  rights.  ALTER TABLE ... OWNER TO of a distributed stream on the
 *	  coordinator gives its ledger to the new owner too
 *	  (ek_citus_stream_owner_changed, from the utility hook).
 *
 *	  The stream's rollups stay on the coordinator; their realtime views
 *	  are made again once the stream is distributed, so that their tails
 *	  come from the rollups' deltas, not from the shards (rollup/view.c),
 *	  and each gets its worker delta table, where ingest on the workers
 *	  writes its deltas (rollup/manage.c, delta.c).
 *
 *	  The guard: Citus makes every table it takes over (distributed,
 *	  reference or Citus local) a truncate trigger calling
 *	  citus_truncate_trigger(); an object-access hook refuses that trigger
 *	  on eventkit's internal tables (the catalog, the ledgers, the batch
 *	  log: schemas eventkit, eventkit_internal and eventkit_ledgers) and on
 *	  a stream, unless
 *	  distribute_stream itself is distributing it (Citus's connections
 *	  between nodes, which replay on a worker what another node's session
 *	  started and checked, are let through).  A table of those as a
 *	  Citus table would leave eventkit reading and writing the
 *	  coordinator's empty shell.  The hook is set when the library is
 *	  loaded; shared_preload_libraries = 'citus,eventkit' loads it in every
 *	  session.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "catalog/batches.h"
#include "catalog/cluster.h"
#include "catalog/streams.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/identity.h"
#include "pipeline/identity_dist.h"
#include "pipeline/partition.h"
#include "rollup/backfill.h"
#include "rollup/manage.h"
#include "stream/distribute.h"
#include "stream/identity.h"
#include "stream/owner_change.h"
#include "util/citus.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_distribute_stream);
PG_FUNCTION_INFO_V1(eventkit_undistribute_stream);
PG_FUNCTION_INFO_V1(eventkit_distribute_identity_graph);

/* distribute_stream is making Citus tables: the guard lets them be */
static bool distributing = false;

static object_access_hook_type prev_object_access = NULL;

/* ---------------------------------------------------------------------
 * distribute_stream
 * ---------------------------------------------------------------------
 */

/* Run a query that must return one row of one column; its value. */
static Datum
run_one(const char *sql, int nargs, Oid *types, Datum *args, const char *nulls,
		bool *isnull)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/* create_distributed_table(table, 'user_key', colocate_with, shard_count) */
static void
create_distributed_table(const char *qname, const char *colocate_with, Datum shard_count,
						 bool shard_count_null)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', shard_count_null ? 'n' : ' '};
	bool		isnull;

	args[0] = CStringGetTextDatum(qname);
	args[1] = CStringGetTextDatum(colocate_with);
	args[2] = shard_count;
	distributing = true;
	PG_TRY();
	{
		run_one("SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass,"
				" 'user_key', colocate_with => $2, shard_count => $3)::pg_catalog.text",
				3, types, args, nulls, &isnull);
		/* the rows Citus copied into the shards stay in the shell: not any more */
		run_one("SELECT pg_catalog.truncate_local_data_after_distributing_table("
				"$1::pg_catalog.regclass)::pg_catalog.text",
				1, types, args, nulls, &isnull);
	}
	PG_FINALLY();
	{
		distributing = false;
	}
	PG_END_TRY();
}

/* create_reference_table(table) */
static void
create_reference_table(const char *qname)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(qname)};
	bool		isnull;

	distributing = true;
	PG_TRY();
	{
		run_one("SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)::pg_catalog.text",
				1, types, args, NULL, &isnull);
		/* (a table restored from a dump: its rows, copied, leave the shell) */
		run_one("SELECT pg_catalog.truncate_local_data_after_distributing_table("
				"$1::pg_catalog.regclass)::pg_catalog.text",
				1, types, args, NULL, &isnull);
	}
	PG_FINALLY();
	{
		distributing = false;
	}
	PG_END_TRY();
}

/*
 * The stream's worker links table (pipeline/identity_dist.c): a Citus
 * local table in eventkit_ledgers, which the guard lets be only here.
 */
static void
make_worker_links(int32 stream_id, Oid relid)
{
	distributing = true;
	PG_TRY();
	{
		ek_identity_make_worker_links(stream_id, relid);
	}
	PG_FINALLY();
	{
		distributing = false;
	}
	PG_END_TRY();
}

/*
 * eventkit.distribute_stream(stream regclass, shard_count int DEFAULT NULL)
 *
 * On the Citus coordinator, by the stream's owner, a superuser when that
 * owner is not one (see the error): distributes the stream by user_key
 * with shard_count shards (NULL: citus.shard_count) and its dedup ledger,
 * the stream owner's, co-located with it.
 */
Datum
eventkit_distribute_stream(PG_FUNCTION_ARGS)
{
	Oid			relid;
	StreamInfo	stream;
	bool		isnull;
	char	   *qname;
	char	   *ledger;
	const char *restored;
	EkRoleScope as_owner;
	int			citus_nest;

	relid = ek_stream_arg(fcinfo, 0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!PG_ARGISNULL(1) && (PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > 64000))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_count must be between 1 and 64000"),
				 errhint("Pass NULL for Citus's default, citus.shard_count.")));
	if (!ek_citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Citus is not installed in this database"),
				 errdetail("eventkit.distribute_stream() distributes a stream with Citus."),
				 errhint("Add Citus before eventkit to shared_preload_libraries ('citus,eventkit'), restart, and run CREATE EXTENSION citus.")));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	if (!superuser() && !superuser_arg(ek_relation_owner(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser can distribute stream \"%s\"", get_rel_name(relid)),
				 errdetail("eventkit distributes the stream and makes its dedup ledger through Citus as the extension owner, a superuser; Citus then copies the stream's rows and builds its indexes, which run its owner's code, with those rights."),
				 errhint("Ask a superuser to call eventkit.distribute_stream('%s'); afterwards the owner and the roles with INSERT ingest on any node.",
						 ek_qualified_relname(relid))));

	/* ingest waits from here until the stream is distributed */
	LockRelationOid(relid, ExclusiveLock);

	/*
	 * One connection per node for all of it: Citus makes the stream's node
	 * function (a distributed function) only in a transaction that has
	 * not reached a node over several connections
	 */
	citus_nest = NewGUCNestLevel();
	(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	if (!DatumGetBool(run_one("SELECT pg_catalog.citus_is_coordinator()",
							  0, NULL, NULL, NULL, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("eventkit.distribute_stream() must run on the Citus coordinator"),
				 errdetail("This node is a Citus worker."),
				 errhint("Connect to the coordinator and call it there.")));
	ek_streams_read(relid, &stream, false);
	qname = ek_qualified_relname(relid);
	if (stream.key_partitions > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream \"%s\" has key partitions and cannot be distributed",
						get_rel_name(relid)),
				 errdetail("It has key_partitions = %d; Citus does not distribute a table partitioned on two levels, and shards by user key already.",
						   stream.key_partitions),
				 errhint("Create the stream with key_partitions => 0 and distribute that one.")));
	if (ek_citus_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" is already a Citus table", get_rel_name(relid)),
				 errhint("A stream is distributed once, with eventkit.distribute_stream().")));

	/*
	 * its rollups' worker delta tables, unless they go on the shards
	 * (below), and its worker links table (first: Citus local tables, made
	 * with local execution, which this transaction could no longer use once
	 * it reached the coordinator's own shards through a connection); on a
	 * catalog older than 1.16 no links table, as before
	 * (distribute_identity_graph makes it after the update)
	 */
	if (!ek_worker_deltas_on_shards)
	{
		ek_rollups_make_worker_deltas(stream.stream_id);
		CommandCounterIncrement();
	}
	if (ek_identity_worker_links_supported())
		make_worker_links(stream.stream_id, relid);

	/*
	 * The stream, then its ledger co-located with it (the stream owner's
	 * before Citus makes its shards), both as the extension owner: Citus
	 * reaches co-located placements as one user per transaction
	 */
	ek_as_owner_begin(&as_owner);
	create_distributed_table(qname, "default", PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	ledger = ek_dedup_create_dist_ledger(stream.stream_id, relid);
	create_distributed_table(ledger, qname, (Datum) 0, true);
	ek_dedup_create_dist_node_function(stream.stream_id);

	/*
	 * with eventkit.worker_deltas_on_shards, its rollups' worker delta
	 * tables, co-located with it (rollup/manage.c)
	 */
	if (ek_worker_deltas_on_shards)
	{
		ek_rollups_make_worker_deltas(stream.stream_id);
		CommandCounterIncrement();
	}

	/* its catalog, on every node (the first stream makes the table) */
	if (!ek_cluster_table_exists())
		create_reference_table(ek_cluster_create_table());
	else if ((restored = ek_cluster_restored_table()) != NULL)
		create_reference_table(restored);
	ek_cluster_publish_stream(stream.stream_id);
	ek_as_role_end(&as_owner);

	/* its rollups' realtime views: their tails from the deltas now */
	CommandCounterIncrement();
	ek_rollups_remake_views(stream.stream_id);

	/* its resolved view: the query Citus plans (stream/identity.c) */
	ek_identity_distribute_view(relid, stream.stream_id);

	SPI_finish();
	AtEOXact_GUC(true, citus_nest);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * undistribute_stream
 * ---------------------------------------------------------------------
 */
/* The largest batch id of the stream's rows (0: none), read as the caller. */
static int64
stream_max_batch_id(Oid relid)
{
	bool		isnull;
	Datum		max;

	max = run_one(psprintf("SELECT pg_catalog.max(batch_id)::pg_catalog.int8 FROM %s",
						   ek_qualified_relname(relid)),
				  0, NULL, NULL, NULL, &isnull);
	return isnull ? 0 : DatumGetInt64(max);
}

/*
 * eventkit.undistribute_stream(stream regclass) RETURNS bigint
 *
 * By the stream's owner, on a stream that was distributed and no longer
 * is a Citus table: a Citus coordinator's dump restored on another server
 * (pg_dump reads a distributed table's rows through Citus and dumps it,
 * and its ledger, as plain tables).  (Citus's undistribute_table() of a
 * stream makes a new table and drops the stream's: eventkit forgets the
 * stream, as for any DROP TABLE.)  Its distributed ledger's ids go into its
 * own (single-node) ledger, which ingest then claims in; the distributed
 * ledger is dropped and the stream forgotten in the cluster-wide catalog.
 * Until then ingest refuses the stream (pipeline/dedup/dist_ledger.c:
 * its ids would not be seen).  This server's batch ids are moved past
 * those of the stream's rows (every node's), and each of the stream's
 * rollups is rebuilt from all its rows (rollup/backfill.c: their rows,
 * deltas and watermarks held every node's batch numbers), with its
 * realtime view made again for a stream on one server.  Returns the ids
 * moved (docs/citus.md).
 */
Datum
eventkit_undistribute_stream(PG_FUNCTION_ARGS)
{
	Oid			relid;
	StreamInfo	stream;
	int64		n;
	int64		watermark;

	relid = ek_owned_stream_arg(fcinfo, 0);

	/* ingest waits from here until the ids are in the stream's ledger */
	LockRelationOid(relid, ExclusiveLock);

	SPI_connect();
	ek_streams_read(relid, &stream, false);
	if (ek_citus_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" is still distributed on Citus", get_rel_name(relid)),
				 errdetail("eventkit.undistribute_stream() takes over the dedup ledger of a stream restored from a Citus coordinator's dump, where the stream is a plain table."),
				 errhint("To leave Citus, dump the coordinator with pg_dump and restore the dump on a server without Citus; call eventkit.undistribute_stream('%s') there.",
						 ek_qualified_relname(relid))));
	n = ek_dedup_undistribute_ledger(&stream);
	/* its worker links table, restored as a plain table, serves nothing */
	ek_identity_drop_worker_links(stream.stream_id);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" was not distributed", get_rel_name(relid)),
				 errdetail("It has no distributed dedup ledger; its ids are in its own ledger already.")));

	/*
	 * Its rows' batch ids: the coordinator's and each worker's, numbered
	 * by each node from its own sequence.  This server's ids go past them
	 * all, so that a rollup (now or made later) folds each row once: every
	 * row's id is at most its watermark, and later batches are new.
	 */
	watermark = ek_batches_advance_past(stream_max_batch_id(relid));

	/* its rollups, made again from all its rows; their views as on one server */
	if (ek_rollups_rebuild(stream.stream_id, watermark) > 0)
	{
		CommandCounterIncrement();
		ek_rollups_remake_views(stream.stream_id);
	}
	SPI_finish();
	PG_RETURN_INT64(n);
}

/* ---------------------------------------------------------------------
 * The guard
 * ---------------------------------------------------------------------
 */

/*
 * A trigger was created: if it is Citus's truncate trigger on one of
 * eventkit's tables or on a stream, Citus is taking that table over.
 */
static void
check_citus_trigger(Oid trigger_oid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			tgrelid = InvalidOid;
	Oid			tgfoid = InvalidOid;
	char	   *nspname;
	char	   *fname;
	Oid			eventkit_nsp;

	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigger_oid));
	/* the new trigger is visible to SnapshotSelf in a post-create hook */
	scan = systable_beginscan(rel, TriggerOidIndexId, true, SnapshotSelf, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);

		tgrelid = tg->tgrelid;
		tgfoid = tg->tgfoid;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(tgrelid))
		return;

	fname = get_func_name(tgfoid);
	if (fname == NULL || strcmp(fname, "citus_truncate_trigger") != 0 ||
		get_func_namespace(tgfoid) != PG_CATALOG_NAMESPACE)
		return;

	/* eventkit's own tables */
	eventkit_nsp = get_namespace_oid("eventkit", true);
	nspname = get_namespace_name(get_rel_namespace(tgrelid));
	if (get_rel_namespace(tgrelid) == eventkit_nsp ||
		(nspname != NULL && (strcmp(nspname, "eventkit_internal") == 0 ||
							 strcmp(nspname, "eventkit_ledgers") == 0)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot make eventkit's internal table \"%s.%s\" a Citus table",
						nspname, get_rel_name(tgrelid)),
				 errdetail("eventkit reads and writes its catalog, ledgers and batch log on this node; as a Citus table, this node's copy would be an empty shell."),
				 errhint("Distribute a stream with eventkit.distribute_stream(), which distributes its ledger with it.")));

	/* a stream: its ledger must go with it */
	{
		StreamInfo	stream;
		bool		is_stream;

		SPI_connect();
		is_stream = ek_streams_read(tgrelid, &stream, true);
		SPI_finish();
		if (is_stream)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("stream \"%s\" must be distributed with eventkit.distribute_stream()",
							get_rel_name(tgrelid)),
					 errdetail("Its dedup ledger must be distributed with it, co-located by user key."),
					 errhint("Call eventkit.distribute_stream('%s') on the coordinator.",
							 get_rel_name(tgrelid))));
	}
}

static void
ek_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
				 void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access != OAT_POST_CREATE || classId != TriggerRelationId || distributing)
		return;
	if (!IsTransactionState() || !OidIsValid(get_extension_oid("eventkit", true)))
		return;

	/*
	 * Citus's own connections between nodes ("citus_internal gpid=...")
	 * replay what a user's session on another node started, and that node
	 * checked it: metadata sync makes the same trigger on every worker.
	 */
	if (application_name != NULL && strncmp(application_name, "citus_", 6) == 0 &&
		strstr(application_name, " gpid=") != NULL)
		return;
	check_citus_trigger(objectId);
}

/*
 * After a utility statement (the utility hook, worker/launcher.c): when
 * it was ALTER TABLE ... OWNER TO of a stream distributed on Citus, on
 * the coordinator, its dedup ledger follows the stream to its new owner
 * (Citus propagates it to the shards), so that ingest, which reaches Citus
 * as the stream's owner, can still claim ids in the ledger; its
 * partitions follow next (owner_change.c, as on one node).  Only a
 * superuser may (pipeline/dedup/dist_ledger.c says why).  On a worker
 * (Citus replaying the coordinator's command) the coordinator did it.
 */
void
ek_citus_stream_owner_changed(Node *parsetree)
{
	Oid			relid = ek_owner_change_target(parsetree);
	StreamInfo	stream;
	bool		is_stream;

	if (!OidIsValid(relid) || !ek_citus_installed() || ek_citus_on_worker() ||
		ek_citus_table_kind(relid) != EK_CITUS_HASH)
		return;
	SPI_connect();
	is_stream = ek_streams_read(relid, &stream, true);
	if (is_stream)
	{
		ek_dedup_follow_owner(&stream);
		ek_identity_worker_links_follow_owner(stream.stream_id, relid);
	}
	SPI_finish();
}

/*
 * eventkit.distribute_identity_graph(stream regclass) RETURNS bigint
 *
 * On the Citus coordinator, by a superuser, for a stream distributed
 * before 1.16 (it has no worker links table, and its calls with links on
 * a worker are refused: pipeline/identity_dist.c): makes that table, so
 * that the links of the workers' calls go to the coordinator's identity
 * graph from now on, and links there the ids of every worker's graph so
 * far, in one transaction that holds the stream against ingest.  Returns
 * the worker rows read (0 and nothing done when the table exists).
 */
Datum
eventkit_distribute_identity_graph(PG_FUNCTION_ARGS)
{
	Oid			relid = ek_stream_arg(fcinfo, 0);
	StreamInfo	stream;
	int64		n;
	int			citus_nest;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser can call eventkit.distribute_identity_graph()"),
				 errdetail("It makes a Citus local table in schema eventkit_ledgers and reads every worker's identity graph."),
				 errhint("Ask a superuser to call it on the coordinator.")));
	if (!ek_citus_installed() || ek_citus_table_kind(relid) != EK_CITUS_HASH)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" is not distributed on Citus", get_rel_name(relid)),
				 errhint("Only a stream distributed with eventkit.distribute_stream() has an identity graph on several nodes.")));
	if (ek_citus_on_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("eventkit.distribute_identity_graph() must run on the Citus coordinator"),
				 errdetail("This node is a Citus worker."),
				 errhint("Connect to the coordinator and call it there.")));

	/* ingest on the coordinator waits; a worker's call's links wait below */
	LockRelationOid(relid, ExclusiveLock);
	citus_nest = NewGUCNestLevel();
	(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	ek_streams_read(relid, &stream, false);
	if (OidIsValid(ek_identity_worker_links_relid(stream.stream_id)))
	{
		SPI_finish();
		AtEOXact_GUC(true, citus_nest);
		PG_RETURN_INT64(0);
	}
	make_worker_links(stream.stream_id, relid);
	CommandCounterIncrement();
	ek_identity_distribute_view(relid, stream.stream_id);
	/* the graph's lock: a worker's call that links meanwhile waits for it */
	ek_identity_lock(stream.stream_id);
	n = ek_identity_import_worker_graphs(&stream);
	SPI_finish();
	AtEOXact_GUC(true, citus_nest);
	PG_RETURN_INT64(n);
}

/* Called from _PG_init. */
void
ek_citus_guard_init(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = ek_object_access;
}

/*
 * Parse what eventkit.redrive_quarantine() gave on a worker, as the
 * command of ek_redrive_on_workers() prints it: "<replayed>;<start>,..."
 * with each start in microseconds since the Unix epoch.  Returns false
 * when it is not that.
 */
static bool
parse_worker_redrive(const char *result, int64 *replayed, TimestampTz **starts, int *n)
{
	char	   *end;
	const char *p;
	int			cap = 1;

	errno = 0;
	*replayed = strtoll(result, &end, 10);
	if (errno != 0 || end == result || *end != ';')
		return false;
	for (p = end + 1; *p; p++)
		cap += (*p == ',');
	*starts = palloc(sizeof(TimestampTz) * cap);
	*n = 0;
	p = end + 1;
	while (*p)
	{
		int64		usecs = strtoll(p, &end, 10);

		if (errno != 0 || end == p || (*end != ',' && *end != '\0'))
			return false;
		(*starts)[(*n)++] = usecs -
			((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
		p = *end ? end + 1 : end;
	}
	return true;
}

/*
 * For a stream distributed on Citus, on the coordinator: the workers'
 * events waiting for a partition.  Calls eventkit.redrive_quarantine() on
 * every worker (each replays what has its partition now), and with
 * make_partitions makes the partitions the rest wait for (at most
 * eventkit.max_new_partitions).  Does nothing for other streams or on a
 * worker.  Caller: SPI connected, as the stream's owner (a role scope).
 */
void
ek_redrive_on_workers(const StreamInfo *stream, TimestampTz now, bool make_partitions,
					  EkClusterRedrive *out)
{
	char	   *command;
	EkCitusResult *results;
	int			nresults;

	memset(out, 0, sizeof(*out));
	if (ek_citus_table_kind(stream->relid) != EK_CITUS_HASH || ek_citus_on_worker())
		return;

	/*
	 * With make_partitions (the premake job, whose transaction holds what
	 * its partition DDL locked on every worker until it ends), the worker's
	 * replay gives up after eventkit.maintenance_lock_timeout instead of
	 * waiting for a transaction in flight there (its claim of an id, or
	 * its first adoption of the stream): set before the replay starts (its
	 * argument depends on it), for that command's transaction only; else the
	 * worker's own setting.
	 */
	command = psprintf("SELECT r.replayed::pg_catalog.text OPERATOR(pg_catalog.||) ';'"
					   " OPERATOR(pg_catalog.||) pg_catalog.array_to_string(ARRAY("
					   "SELECT (pg_catalog.extract('epoch', t) OPERATOR(pg_catalog.*) 1000000)"
					   "::pg_catalog.int8 FROM pg_catalog.unnest(r.waiting_partitions) t), ',')"
					   " FROM pg_catalog.set_config('lock_timeout', %s, true) s,"
					   " LATERAL eventkit.redrive_quarantine(CASE WHEN s IS NOT NULL"
					   " THEN %s::pg_catalog.regclass END) r",
					   make_partitions && ek_maintenance_lock_timeout > 0 ?
					   psprintf("'%d'", ek_maintenance_lock_timeout) :
					   "pg_catalog.current_setting('lock_timeout')",
					   quote_literal_cstr(ek_qualified_relname(stream->relid)));
	/*
	 * One worker after the other: two workers' replays of the same ids
	 * (each a transaction of one or more batches, in its own quarantine's
	 * order) would each wait for the other's claims (a distributed
	 * deadlock, which Citus cancels both of)
	 */
	results = ek_citus_run_on_workers(command, false, &nresults);
	for (int i = 0; i < nresults; i++)
	{
		int64		replayed;
		TimestampTz *starts;
		int			nstarts;

		CHECK_FOR_INTERRUPTS();
		out->nodes++;
		if (!results[i].ok ||
			!parse_worker_redrive(results[i].result, &replayed, &starts, &nstarts))
		{
			out->failed++;
			ereport(WARNING,
					(errmsg("could not re-drive the quarantine of stream \"%s\" on Citus worker %s:%d",
							get_rel_name(stream->relid), results[i].node, results[i].port),
					 errdetail("%s", results[i].result),
					 errhint("The coordinator's premake and redrive jobs of the stream try again at their next run; "
							 "eventkit.redrive_quarantine() on the worker does the same by hand.")));
			continue;
		}
		out->replayed += replayed;
		if (make_partitions)
			out->created += ek_make_partitions_for(stream, now, starts, nstarts,
												   ek_max_new_partitions - out->created);
		for (int j = 0; j < nstarts; j++)
			if (!ek_partition_exists_for(stream->relid, starts[j]))
				out->missing++;
	}
}
