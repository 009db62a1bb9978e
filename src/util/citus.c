/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  Citus detection: whether the citus extension is installed in this
 *	  database, and whether a relation is a Citus table (distributed,
 *	  reference or Citus local).  A Citus table's local relation on the
 *	  coordinator is a shell: its rows live in shards on the nodes, so
 *	  eventkit's fast paths (heap and index calls) must never write there.
 *
 *	  And which node this is: the node's group (pg_dist_local_group), 0 on
 *	  the coordinator (and on a server that is no Citus node), the worker's
 *	  group id on a worker.
 *
 *	  And the local placement of a reference table on this node (its shard
 *	  relation, from pg_dist_shard), for reads that need no executor.
 *
 *	  And running one command on every worker (run_command_on_workers,
 *	  through SPI: the only function here that needs Citus's executor), and
 *	  a lock_timeout that reaches the nodes Citus's executor writes to in
 *	  this transaction (a SET LOCAL that Citus propagates).
 *
 *	  Read straight from pg_dist_partition through its index on logicalrelid
 *	  (a syscache lookup and one index probe, no SPI), so the check costs
 *	  nothing measurable per batch, and nothing at all without Citus (the
 *	  catalog table is then absent).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

/* pg_dist_partition's columns eventkit reads (Citus 11 to 13) */
#define Anum_dist_partition_logicalrelid 1
#define Anum_dist_partition_partmethod 2
/* and pg_dist_shard's */
#define Anum_dist_shard_logicalrelid 1
#define Anum_dist_shard_shardid 2

/* Is the citus extension installed in this database? */
bool
ek_citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/*
 * The kind of Citus table relid is (pg_dist_partition.partmethod), or
 * EK_CITUS_NONE when it is none or Citus is not installed.
 */
char
ek_citus_table_kind(Oid relid)
{
	Oid			dist_relid;
	Oid			index_relid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char		kind = EK_CITUS_NONE;

	dist_relid = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(dist_relid))
		return EK_CITUS_NONE;
	index_relid = get_relname_relid("pg_dist_partition_logical_relid_index",
									PG_CATALOG_NAMESPACE);

	rel = table_open(dist_relid, AccessShareLock);
	ScanKeyInit(&key, Anum_dist_partition_logicalrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, index_relid, OidIsValid(index_relid), NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_dist_partition_partmethod,
									 RelationGetDescr(rel), &isnull);

		kind = isnull ? EK_CITUS_REPLICATED : DatumGetChar(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return kind;
}

/*
 * This node's Citus group (pg_dist_local_group.groupid): 0 on the
 * coordinator, and where Citus is not installed; a worker's group id
 * (> 0) on a worker.  A one-row table read without SPI; not cached, since
 * citus_add_node gives a running worker its group.
 */
int32
ek_citus_local_group(void)
{
	Oid			relid = get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int32		group = 0;

	if (!OidIsValid(relid))
		return 0;
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		if (!isnull)
			group = DatumGetInt32(d);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return group;
}

/*
 * The relation of relid's shard on this node: for a Citus reference table
 * (one shard, placed on every node with metadata), the table that holds
 * its rows here, named <table>_<shardid> in the table's schema.
 * InvalidOid when relid has no shard or this node has no such relation.
 * A scan of pg_dist_shard (no SPI): callers cache the answer.
 */
Oid
ek_citus_local_shard(Oid relid)
{
	Oid			shard_relid = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	Relation	rel;
	TableScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int64		shardid = 0;
	bool		found = false;

	if (!OidIsValid(shard_relid) || get_rel_name(relid) == NULL)
		return InvalidOid;
	ScanKeyInit(&key, Anum_dist_shard_logicalrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	rel = table_open(shard_relid, AccessShareLock);
	scan = table_beginscan_catalog(rel, 1, &key);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_dist_shard_shardid, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			shardid = DatumGetInt64(d);
			found = true;
		}
		/* more than one shard: not a reference table */
		if (heap_getnext(scan, ForwardScanDirection) != NULL)
			found = false;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!found)
		return InvalidOid;
	return get_relname_relid(psprintf("%s_" INT64_FORMAT, get_rel_name(relid), shardid),
							 get_rel_namespace(relid));
}

/*
 * Run command on every active Citus worker with run_command_on_workers():
 * a new connection to each (outside this transaction: what it does there
 * commits there, whatever becomes of this one), as the current user; on
 * all workers at once with parallel, else on one after the other (each
 * committed before the next starts: commands that may take the same locks
 * in different orders cannot deadlock each other).  Returns one result
 * per worker, *n of them; a worker that could not be reached or whose
 * command failed has ok false and the error as its result.  Caller: SPI
 * connected, Citus installed.
 */
EkCitusResult *
ek_citus_run_on_workers(const char *command, bool parallel, int *n)
{
	Oid			argtypes[2] = {TEXTOID, BOOLOID};
	Datum		args[2] = {CStringGetTextDatum(command), BoolGetDatum(parallel)};
	EkCitusResult *results;

	if (SPI_execute_with_args("SELECT nodename, nodeport, success, result"
							  " FROM pg_catalog.run_command_on_workers($1, $2)"
							  " ORDER BY nodename, nodeport",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: run_command_on_workers failed");
	*n = (int) SPI_processed;
	results = palloc0(sizeof(EkCitusResult) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *result = SPI_getvalue(tup, desc, 4);

		results[i].node = SPI_getvalue(tup, desc, 1);
		results[i].port = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		results[i].ok = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)) && !isnull;
		results[i].result = result ? result : pstrdup("");
	}
	return results;
}

/*
 * lock_timeout = timeout_ms on this node and on every node Citus's
 * executor reaches in this transaction from now on (the remote transactions
 * of its connections, those open already and those it opens later), until
 * ek_citus_lock_timeout_end().  Citus sends a SET LOCAL to the nodes only
 * with citus.propagate_set_commands = 'local', and only in what it counts
 * as a multi-statement transaction (a transaction block, a DO block, a
 * procedure: IsMultiStatementTransaction in Citus 13), which neither a
 * job's transaction nor "SELECT eventkit.run_maintenance()" is: hence the
 * DO block.  Citus then begins each remote transaction of this transaction
 * with it.  Both settings are set at the caller's GUC nest level (a role
 * scope's end undoes them here).  Nothing with timeout_ms 0.  Caller: SPI
 * connected, Citus installed, in a role scope.
 */
void
ek_citus_lock_timeout_begin(int timeout_ms)
{
	if (timeout_ms <= 0)
		return;
	(void) set_config_option("citus.propagate_set_commands", "local",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	ek_spi_exec(psprintf("DO $ek$BEGIN SET LOCAL lock_timeout = %d; END$ek$", timeout_ms),
				SPI_OK_UTILITY);
}

/*
 * The end of ek_citus_lock_timeout_begin(timeout_ms): Citus keeps the SET
 * LOCALs it propagated for the rest of the (sub)transaction; a RESET after
 * them gives the remote transactions it begins later their sessions'
 * lock_timeout again.  Caller: still in the role scope of the begin.
 */
void
ek_citus_lock_timeout_end(int timeout_ms)
{
	if (timeout_ms <= 0)
		return;
	ek_spi_exec("DO $ek$BEGIN RESET lock_timeout; END$ek$", SPI_OK_UTILITY);
}
