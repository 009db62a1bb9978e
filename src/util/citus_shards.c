/*-------------------------------------------------------------------------
 *
 * citus_shards.c
 *	  The shards of a hash-distributed Citus table, for ingest's per-shard
 *	  fast path: which shard a user key hashes to (Citus's own hash of the
 *	  distribution column, the key type's standard hash function with the
 *	  column's collation, and the shard's hash range from pg_dist_shard),
 *	  which node group holds each shard (pg_dist_placement), and the
 *	  node-local relation of a shard (<table>_<shardid>).
 *
 *	  Placements are read only after the shards' metadata locks are held
 *	  (ek_citus_shards_place): the lock Citus itself takes before a
 *	  modification of a shard (LockShardDistributionMetadata, ShareLock, in
 *	  Citus's distributed_execution_locks.c), and that a shard move or
 *	  split takes in ExclusiveLock on the coordinator and on every node
 *	  with metadata before it changes the placement (shard_transfer.c).
 *	  So a placement read here stays where it is until this transaction
 *	  ends: a write into a local shard cannot land in a shard that a
 *	  concurrent move has just left.  The lock tag is Citus's (an advisory
 *	  tag of class 8, by co-location id and shard index, resource_lock.h):
 *	  co-located shards share it, so the stream's and its ledger's shards
 *	  are locked together.
 *
 *	  And whether Citus delegates a function's calls to the node of its
 *	  first argument inside the caller's distributed transaction, as a
 *	  write it prepares with the rest (pg_dist_object: force_delegation,
 *	  the co-location group; and Citus's view of the transaction at the
 *	  call): the node function of a distributed stream's ledger
 *	  (pipeline/dedup/dist_ledger.c).
 *
 *	  And, for routing clients (stream/route.c), a table's distribution
 *	  column (pg_dist_partition.partkey) and the primary node of each group
 *	  (pg_dist_node: the name and port a client connects to).
 *
 *	  Read from Citus's catalog with heap scans (no SPI, no link to Citus,
 *	  Citus 11 to 13), so a call of ingest pays a scan of pg_dist_shard and
 *	  of pg_dist_placement, and nothing where Citus is missing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "nodes/readfuncs.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "util/citus_shards.h"

/* pg_dist_partition's, pg_dist_shard's and pg_dist_placement's columns read */
#define Anum_partition_logicalrelid 1
#define Anum_partition_partkey 3
#define Anum_partition_colocationid 4
#define Anum_shard_logicalrelid 1
#define Anum_shard_shardid 2
#define Anum_shard_minvalue 5
#define Anum_shard_maxvalue 6
#define Anum_placement_shardid 2
#define Anum_placement_groupid 5

/* Citus's advisory lock class of co-located shards' metadata */
#define CITUS_LOCKTAG_COLOCATED_SHARDS_METADATA 8

static Oid
dist_catalog(const char *name)
{
	Oid			relid = get_relname_relid(name, PG_CATALOG_NAMESPACE);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus's catalog table \"%s\" is missing", name),
				 errdetail("A distributed stream needs Citus installed in this database."),
				 errhint("Run CREATE EXTENSION citus.")));
	return relid;
}

/* sorting shards by the start of their hash range */
typedef struct ShardRow
{
	int32		min;
	int32		max;
	int64		shardid;
} ShardRow;

static int
compare_shard_rows(const void *a, const void *b)
{
	int32		x = ((const ShardRow *) a)->min;
	int32		y = ((const ShardRow *) b)->min;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The shards of relid, a hash-distributed Citus table whose distribution
 * column is column (a text-like type), in Citus's shard index order (by
 * hash range).  Placements are not read yet (ek_citus_shards_place).
 */
EkShardMap *
ek_citus_shard_map(Oid relid, const char *column)
{
	EkShardMap *map = palloc0(sizeof(EkShardMap));
	Relation	rel;
	TableScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	ShardRow   *rows = NULL;
	int			nrows = 0,
				cap = 16;
	AttrNumber	attnum = get_attnum(relid, column);
	Oid			typid;
	int32		typmod;
	TypeCacheEntry *tc;

	map->relid = relid;
	map->colocation = 0;

	/* the co-location id */
	ScanKeyInit(&key, Anum_partition_logicalrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	rel = table_open(dist_catalog("pg_dist_partition"), AccessShareLock);
	scan = table_beginscan_catalog(rel, 1, &key);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_partition_colocationid,
									 RelationGetDescr(rel), &isnull);

		map->colocation = isnull ? 0 : DatumGetInt32(d);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	/* the shards and their hash ranges */
	rows = palloc(sizeof(ShardRow) * cap);
	ScanKeyInit(&key, Anum_shard_logicalrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	rel = table_open(dist_catalog("pg_dist_shard"), AccessShareLock);
	scan = table_beginscan_catalog(rel, 1, &key);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		nullmin,
					nullmax,
					isnull;
		Datum		dmin = heap_getattr(tup, Anum_shard_minvalue, desc, &nullmin);
		Datum		dmax = heap_getattr(tup, Anum_shard_maxvalue, desc, &nullmax);
		Datum		did = heap_getattr(tup, Anum_shard_shardid, desc, &isnull);

		CHECK_FOR_INTERRUPTS();
		if (nullmin || nullmax || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("relation \"%s\" is not hash-distributed",
							get_rel_name(relid)),
					 errdetail("A shard of it has no hash range in pg_dist_shard."),
					 errhint("Distribute the stream with eventkit.distribute_stream().")));
		if (nrows == cap)
		{
			cap *= 2;
			rows = repalloc(rows, sizeof(ShardRow) * cap);
		}
		rows[nrows].min = pg_strtoint32(TextDatumGetCString(dmin));
		rows[nrows].max = pg_strtoint32(TextDatumGetCString(dmax));
		rows[nrows].shardid = DatumGetInt64(did);
		nrows++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	qsort(rows, nrows, sizeof(ShardRow), compare_shard_rows);

	map->nshards = nrows;
	map->mins = palloc(sizeof(int32) * Max(nrows, 1));
	map->maxs = palloc(sizeof(int32) * Max(nrows, 1));
	map->shardids = palloc(sizeof(int64) * Max(nrows, 1));
	map->groups = palloc(sizeof(int32) * Max(nrows, 1));
	for (int i = 0; i < nrows; i++)
	{
		map->mins[i] = rows[i].min;
		map->maxs[i] = rows[i].max;
		map->shardids[i] = rows[i].shardid;
		map->groups[i] = -1;
	}

	/* Citus's hash of the column: its type's standard hash, its collation */
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("relation \"%s\" has no column \"%s\"", get_rel_name(relid), column)));
	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &map->collation);
	tc = lookup_type_cache(typid, TYPECACHE_HASH_PROC_FINFO);
	if (!OidIsValid(tc->hash_proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("column \"%s\" of \"%s\" has no hash function", column,
						get_rel_name(relid))));
	fmgr_info_copy(&map->hash, &tc->hash_proc_finfo, CurrentMemoryContext);
	return map;
}

/*
 * The shard index of a key: the shard whose hash range holds Citus's hash
 * of it; -1 when none does (a table being split or a gap in the ranges:
 * the caller leaves such rows to Citus).
 */
int
ek_citus_shard_index(const EkShardMap *map, const char *key)
{
	int32		h = DatumGetInt32(FunctionCall1Coll((FmgrInfo *) &map->hash, map->collation,
													CStringGetTextDatum(key)));
	int			lo = 0,
				hi = map->nshards - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (h < map->mins[mid])
			hi = mid - 1;
		else if (h > map->maxs[mid])
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * Read the group of every shard's placement (pg_dist_placement), for a
 * caller that makes sure they stay put (ek_citus_shards_place, or another
 * node's call holding their locks).
 */
void
ek_citus_shards_read(EkShardMap *map)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	/* what a move committed before we got the locks */
	InvalidateCatalogSnapshot();
	/* (read again: ek_citus_shards_place after a first read) */
	for (int i = 0; i < map->nshards; i++)
		map->groups[i] = -1;
	rel = table_open(dist_catalog("pg_dist_placement"), AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		int64		shardid = DatumGetInt64(heap_getattr(tup, Anum_placement_shardid,
														 RelationGetDescr(rel), &isnull));

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < map->nshards; i++)
			if (map->shardids[i] == shardid)
			{
				Datum		g = heap_getattr(tup, Anum_placement_groupid,
											 RelationGetDescr(rel), &isnull);

				/* more than one placement (replicated): leave it to Citus */
				map->groups[i] = map->groups[i] == -1 && !isnull ?
					DatumGetInt32(g) : -2;
				break;
			}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	map->placed = true;
}

/*
 * Lock the metadata of the shards used[] marks (ShareLock, in shard index
 * order, as Citus does before a write), then read the group of every
 * shard's placement.  Citus's lock tag: co-located shards share one, by
 * co-location id and shard index.  (On the node of another node's call,
 * pipeline/dist_node.c, the caller holds these locks on its node, which a
 * move must take too: ek_citus_shards_read alone, without waiting here
 * on a move that waits for the caller.)
 */
void
ek_citus_shards_place(EkShardMap *map, const bool *used)
{
	for (int i = 0; i < map->nshards; i++)
	{
		LOCKTAG		tag;

		if (!used[i])
			continue;
		if (map->colocation != 0)
			SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) i, (uint32) map->colocation,
								 CITUS_LOCKTAG_COLOCATED_SHARDS_METADATA);
		else
			SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (map->shardids[i] >> 32),
								 (uint32) map->shardids[i], 4);
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
	ek_citus_shards_read(map);
}

/*
 * The node-local relation of relid's shard shardid (<table>_<shardid> in
 * the table's schema), or InvalidOid when this node has none (not placed
 * here, or a name Citus had to shorten).
 */
Oid
ek_citus_shard_relid(Oid relid, int64 shardid)
{
	char	   *name = get_rel_name(relid);
	char	   *shard;

	if (name == NULL)
		return InvalidOid;
	shard = psprintf("%s_" INT64_FORMAT, name, shardid);
	if (strlen(shard) >= NAMEDATALEN)
		return InvalidOid;
	return get_relname_relid(shard, get_rel_namespace(relid));
}

/*
 * Have Citus commit this transaction's remote writes in two phases: it
 * also wrote local shards directly, which Citus's commit does not know of
 * (Citus's own local execution asks the same, local_executor.c).  Citus's
 * Use2PCForCoordinatedTransaction(), looked up in the loaded library.
 */
void
ek_citus_use_2pc(void)
{
	static void (*use_2pc) (void) = NULL;

	if (use_2pc == NULL)
		use_2pc = (void (*) (void))
			load_external_function("$libdir/citus", "Use2PCForCoordinatedTransaction",
								   true, NULL);
	use_2pc();
}

/*
 * Is funcid a function Citus delegates to the node of its distribution
 * argument (its first) inside the caller's distributed transaction: in
 * pg_dist_object with force_delegation, co-located with the tables of
 * co-location group colocation?  A heap scan of pg_dist_object (no SPI).
 */
bool
ek_citus_function_delegated(Oid funcid, int32 colocation)
{
	Oid			relid = get_relname_relid("pg_dist_object", PG_CATALOG_NAMESPACE);
	AttrNumber	classid,
				objid,
				argindex,
				colocationid,
				force;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(relid))
		return false;
	classid = get_attnum(relid, "classid");
	objid = get_attnum(relid, "objid");
	argindex = get_attnum(relid, "distribution_argument_index");
	colocationid = get_attnum(relid, "colocationid");
	force = get_attnum(relid, "force_delegation");
	if (classid == InvalidAttrNumber || objid == InvalidAttrNumber ||
		argindex == InvalidAttrNumber || colocationid == InvalidAttrNumber ||
		force == InvalidAttrNumber)
		return false;
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		n1,
					n2,
					n3,
					n4,
					n5;
		Oid			c = DatumGetObjectId(heap_getattr(tup, classid, desc, &n1));
		Oid			o = DatumGetObjectId(heap_getattr(tup, objid, desc, &n2));

		CHECK_FOR_INTERRUPTS();
		if (n1 || n2 || c != ProcedureRelationId || o != funcid)
			continue;
		found = DatumGetInt32(heap_getattr(tup, argindex, desc, &n3)) == 0 &&
			DatumGetInt32(heap_getattr(tup, colocationid, desc, &n4)) == colocation &&
			DatumGetBool(heap_getattr(tup, force, desc, &n5)) &&
			!n3 && !n4 && !n5;
		break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Would Citus send a call of a delegated function from here inside this
 * transaction, as a write that its two-phase commit covers?  Citus does
 * so for a function distributed with force_delegation when it plans the
 * call in what it takes for a multi-statement transaction
 * (IsMultiStatementTransaction() in its transaction_management.c): a
 * transaction block, or a statement run inside a function call (its
 * executor level at least 1 while it plans our statement) with
 * citus.function_opens_transaction_block on.  Otherwise it would send the
 * call as a read on a connection it does not prepare, and commit what the
 * function wrote there on its own.  Citus's ExecutorLevel, looked up in
 * the loaded library; false when it cannot be found.
 */
bool
ek_citus_delegates_in_transaction(void)
{
	static int *executor_level = NULL;
	const char *opens;

	/*
	 * Not in a session of Citus's own between nodes ("citus_internal
	 * gpid=..."): Citus runs such a session's calls of a delegated
	 * function where it is, and pins the rest of its statement to the
	 * function's distribution argument
	 */
	if (application_name != NULL &&
		strncmp(application_name, "citus_internal gpid=", 20) == 0)
		return false;
	if (IsTransactionBlock())
		return true;
	if (executor_level == NULL)
		executor_level = (int *) load_external_function("$libdir/citus", "ExecutorLevel",
														false, NULL);
	opens = GetConfigOption("citus.function_opens_transaction_block", true, false);
	return executor_level != NULL && *executor_level >= 1 &&
		opens != NULL && strcmp(opens, "on") == 0;
}

/*
 * The attribute number of relid's distribution column (the Var of
 * pg_dist_partition.partkey), or InvalidAttrNumber when relid is not a
 * Citus table distributed by a column.
 */
AttrNumber
ek_citus_distribution_attnum(Oid relid)
{
	Relation	rel;
	TableScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	AttrNumber	attnum = InvalidAttrNumber;

	ScanKeyInit(&key, Anum_partition_logicalrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	rel = table_open(dist_catalog("pg_dist_partition"), AccessShareLock);
	scan = table_beginscan_catalog(rel, 1, &key);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_partition_partkey, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			Node	   *partkey = stringToNode(TextDatumGetCString(d));

			if (partkey != NULL && IsA(partkey, Var))
				attnum = ((Var *) partkey)->varattno;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return attnum;
}

/*
 * The primary node of every group (pg_dist_node: active, role primary),
 * with the name and port clients connect to; *n of them.
 */
EkCitusNode *
ek_citus_primary_nodes(int *n)
{
	Oid			relid = dist_catalog("pg_dist_node");
	AttrNumber	groupid = get_attnum(relid, "groupid");
	AttrNumber	nodename = get_attnum(relid, "nodename");
	AttrNumber	nodeport = get_attnum(relid, "nodeport");
	AttrNumber	isactive = get_attnum(relid, "isactive");
	AttrNumber	noderole = get_attnum(relid, "noderole");
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			cap = 8;
	EkCitusNode *nodes = palloc(sizeof(EkCitusNode) * cap);

	if (groupid == InvalidAttrNumber || nodename == InvalidAttrNumber ||
		nodeport == InvalidAttrNumber || isactive == InvalidAttrNumber ||
		noderole == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus's catalog table \"pg_dist_node\" lacks a column eventkit reads"),
				 errdetail("eventkit reads groupid, nodename, nodeport, isactive and noderole (Citus 11 to 13)."),
				 errhint("Use a Citus release that eventkit supports.")));
	*n = 0;
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		n1,
					n2,
					n3,
					n4,
					n5;
		Datum		g = heap_getattr(tup, groupid, desc, &n1);
		Datum		name = heap_getattr(tup, nodename, desc, &n2);
		Datum		port = heap_getattr(tup, nodeport, desc, &n3);
		Datum		active = heap_getattr(tup, isactive, desc, &n4);
		Datum		role = heap_getattr(tup, noderole, desc, &n5);

		CHECK_FOR_INTERRUPTS();
		if (n1 || n2 || n3 || n4 || n5 || !DatumGetBool(active) ||
			strcmp(DatumGetCString(DirectFunctionCall1(enum_out, role)), "primary") != 0)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			nodes = repalloc(nodes, sizeof(EkCitusNode) * cap);
		}
		nodes[*n].group = DatumGetInt32(g);
		nodes[*n].name = TextDatumGetCString(name);
		nodes[*n].port = DatumGetInt32(port);
		(*n)++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return nodes;
}
