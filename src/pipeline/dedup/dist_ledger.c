/*-------------------------------------------------------------------------
 *
 * dist_ledger.c
 *	  The dedup ledger of a stream distributed on Citus:
 *	  eventkit_ledgers.dist_ledger_<stream_id>, unique on
 *	  (user_key, message_id), hash-distributed by user_key and co-located
 *	  with the stream, so each shard's dedup state lives on the node that
 *	  holds the shard's events and moves with them (shard moves, rebalance).
 *
 *	  Claims are made per node, in the same distributed transaction as the
 *	  write of the stream's rows (claim_per_node): the ids of the shards
 *	  this node holds in each local ledger shard directly (the fast path:
 *	  no Citus executor, no connection), those of each other node's shards
 *	  with one call of the stream's node function on that node, which
 *	  claims them there and writes their new events (pipeline/dist_node.c;
 *	  claim_on_node), or else with one statement through Citus per node,
 *	  all in one order (node group, shard id, user key, id) on every node.
 *	  Each claim is a multi-row
 *	  INSERT ... ON CONFLICT DO UPDATE ... RETURNING (through Citus: one
 *	  INSERT per shard of that node), so that one statement claims the new
 *	  ids and returns every id with its batch id and fingerprint: a row
 *	  with this batch's id is a new claim, any other an id stored before.  A claim held by a
 *	  transaction in flight makes the insert wait on the worker, as on one
 *	  node.  (A node's run of more than MAX_VALUES_ROWS ids is claimed in
 *	  consecutive pieces of the same order.)  The node-local heap and
 *	  index calls of dedup.c never touch this table: on the coordinator it
 *	  is a shell without rows.
 *
 *	  The key is (user_key, message_id): the same messageId under two users
 *	  lands on two shards and is two events (on one node it is a conflict).
 *	  Ids are still settled within a batch by messageId alone, as on one
 *	  node.  The single-node ledger of the stream stays (empty of new
 *	  claims): distribute_stream copies its ids here.
 *
 *	  Ingest runs on any node (catalog/cluster.c): a claim's batch_id is
 *	  the node's batch id with the node's Citus group in its top 16 bits,
 *	  so that "claimed by this call" stays exact across nodes whose batch
 *	  id sequences overlap.  The ledger job
 *	  deletes the ids stored more than dedup_window ago (stored_at);
 *	  forget_user deletes an erased user's (ek_dist_ledger_forget_keys).
 *
 *	  The table lives in schema eventkit_ledgers (USAGE for every role,
 *	  nothing else) and belongs to the stream's owner: Citus reaches
 *	  co-located placements as one user per transaction, and a call's
 *	  claims and its rows through Citus all go as that role (it makes no
 *	  partition: pipeline/partition.c).  The claims, the pruning and the
 *	  drop here run as the ledger's owner (a role scope: restricted,
 *	  search_path pinned; the values are parameters); ingest checks first
 *	  that the ledger's owner is the stream's and that this role has the
 *	  rights the call uses through Citus (ek_dist_ledger_check_owner:
 *	  USAGE on both schemas, INSERT on the stream, SELECT, INSERT and
 *	  UPDATE on the ledger), each missing one an error with the GRANT
 *	  that mends it.  A ledger made by
 *	  eventkit 1.10 is in eventkit_internal, the extension owner's, as its
 *	  stream was: it is found there too, and moved here when its stream
 *	  changes owner (ek_dist_ledger_follow_owner).  In a catalog not yet
 *	  updated to 1.11 (no eventkit_ledgers) a new ledger goes there too,
 *	  for a superuser's stream only (an ordinary role's is refused until
 *	  the update).  REASSIGN OWNED needs nothing here: the stream, its
 *	  ledger and partitions are one role's, and Citus runs it on every node.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "partitioning/partdesc.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "dist_claim.h"
#include "ledger.h"
#include "ledger_key.h"
#include "catalog/cluster.h"
#include "pipeline/columns.h"
#include "catalog/generations.h"
#include "util/citus.h"
#include "util/citus_shards.h"
#include "util/owner.h"
#include "util/spi.h"

#define LEDGER_SCHEMA "eventkit_ledgers"
#define OLD_LEDGER_SCHEMA "eventkit_internal"	/* eventkit 1.10's ledgers */

static char *
dist_ledger_name(int32 stream_id)
{
	return psprintf("dist_ledger_%d", stream_id);
}

/* The distributed ledger's relation, or InvalidOid when it has none. */
Oid
ek_dist_ledger_relid(int32 stream_id)
{
	const char *schemas[2] = {LEDGER_SCHEMA, OLD_LEDGER_SCHEMA};

	for (int i = 0; i < 2; i++)
	{
		Oid			nsp = get_namespace_oid(schemas[i], true);
		Oid			relid;

		if (!OidIsValid(nsp))
			continue;
		relid = get_relname_relid(dist_ledger_name(stream_id), nsp);
		if (OidIsValid(relid))
			return relid;
	}
	return InvalidOid;
}

/*
 * Whether eventkit_ledgers exists: not in a catalog before 1.11 (the new
 * library on a catalog not updated yet), where new ledgers go where 1.10
 * put them.
 */
static bool
ledger_schema_exists(void)
{
	return OidIsValid(get_namespace_oid(LEDGER_SCHEMA, true));
}

/*
 * The quoted, qualified name of a stream's distributed ledger: where it
 * is (a 1.10 ledger: eventkit_internal), or where a new one goes
 * (eventkit_internal too in a catalog before 1.11, which has no
 * eventkit_ledgers: ek_dist_ledger_create allows that only for a
 * superuser's stream, as 1.10 did for the extension owner's).
 */
char *
ek_dist_ledger_qname(int32 stream_id)
{
	Oid			relid = ek_dist_ledger_relid(stream_id);

	if (OidIsValid(relid))
		return ek_qualified_relname(relid);
	return quote_qualified_identifier(ledger_schema_exists() ? LEDGER_SCHEMA : OLD_LEDGER_SCHEMA,
									  dist_ledger_name(stream_id));
}

/*
 * The node function of a stream's distributed ledger:
 * eventkit_ledgers.dist_node_<stream_id>, a C function
 * (eventkit_dist_node_ingest, pipeline/dist_node.c) distributed by Citus
 * co-located with the ledger, its first argument a user key, with
 * force_delegation: a call of it from another node's ingest runs on the
 * node that holds that key's shard, inside the call's distributed
 * transaction, as a write that Citus's two-phase commit covers.  One per
 * stream, since a distributed function has one co-location group.
 */
static char *
node_function_name(int32 stream_id)
{
	return psprintf("dist_node_%d", stream_id);
}

/*
 * The SQL type of column c's array argument: times as int8 microseconds,
 * jsonb as its text (the node parses it with ingest's fast JSON parser:
 * jsonb's own input function was the largest part of a node call's work)
 */
static Oid
node_column_type(int c)
{
	switch (ek_stream_columns[c].type)
	{
		case TIMESTAMPTZOID:
			return INT8OID;
		case JSONBOID:
			return TEXTOID;
		default:
			return ek_stream_columns[c].type;
	}
}

/* its argument types: NODE_FIXED_ARGS, then an array per column but the batch id's */
#define NODE_FIXED_ARGS 8
#define NODE_NARGS (NODE_FIXED_ARGS + SC_NCOLUMNS - 1)

static const Oid node_fixed_types[NODE_FIXED_ARGS] = {
	TEXTOID,					/* a user key of the node's shards (routing) */
	TEXTOID,					/* the stream, its qualified name */
	INT4OID,					/* the stream's id */
	INT4OID,					/* the Citus group of the node of the call */
	INT8OID,					/* the claims' token */
	INT8OID,					/* the batch id of the rows */
	INT4OID,					/* partitions of the stream there (-1: none) */
	INT8ARRAYOID,				/* the fingerprints */
};

/* "name(types)" of the node function */
static char *
node_function_signature(int32 stream_id)
{
	StringInfoData sig;

	initStringInfo(&sig);
	appendStringInfo(&sig, "%s(", quote_qualified_identifier(LEDGER_SCHEMA,
															 node_function_name(stream_id)));
	for (int a = 0; a < NODE_FIXED_ARGS; a++)
		appendStringInfo(&sig, "%s%s", a > 0 ? ", " : "",
						 format_type_be_qualified(node_fixed_types[a]));
	for (int c = 0; c < SC_NCOLUMNS; c++)
		if (c != SC_BATCH_ID)
			appendStringInfo(&sig, ", %s[]", format_type_be_qualified(node_column_type(c)));
	appendStringInfoChar(&sig, ')');
	return sig.data;
}

/*
 * Make the stream's node function and have Citus distribute it (every
 * node gets it), co-located with the ledger q.  Only where eventkit_ledgers
 * exists (1.11 and later): a stream without one claims and writes other
 * nodes' shards through Citus.  Caller: SPI connected, as the extension
 * owner (a superuser: a C function), after the ledger is distributed.
 */
void
ek_dist_ledger_create_node_function(int32 stream_id, const char *q)
{
	char	   *sig = node_function_signature(stream_id);
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];

	if (!ledger_schema_exists())
		return;
	ek_spi_exec(psprintf("CREATE OR REPLACE FUNCTION %s RETURNS TABLE (pos pg_catalog.int4,"
						 " fingerprint pg_catalog.int8, claimed pg_catalog.bool,"
						 " written pg_catalog.bool)"
						 " LANGUAGE c VOLATILE AS '$libdir/eventkit', 'eventkit_dist_node_ingest'",
						 sig),
				SPI_OK_UTILITY);
	ek_spi_exec(psprintf("COMMENT ON FUNCTION %s IS %s", sig,
						 quote_literal_cstr("eventkit: claims and writes the rows of this node's shards for an ingest call on another node (internal)")),
				SPI_OK_UTILITY);
	args[0] = CStringGetTextDatum(sig);
	args[1] = CStringGetTextDatum("$1");
	args[2] = CStringGetTextDatum(q);
	if (SPI_execute_with_args("SELECT pg_catalog.create_distributed_function($1::pg_catalog.regprocedure,"
							  " $2, colocate_with => $3, force_delegation => true)",
							  3, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: create_distributed_function failed");
}

/* The stream's node function, or InvalidOid (a stream distributed before 1.13) */
static Oid
node_function_oid(int32 stream_id)
{
	Oid			argtypes[NODE_NARGS];
	int			nargs = 0;

	if (!ledger_schema_exists())
		return InvalidOid;
	for (int a = 0; a < NODE_FIXED_ARGS; a++)
		argtypes[nargs++] = node_fixed_types[a];
	for (int c = 0; c < SC_NCOLUMNS; c++)
		if (c != SC_BATCH_ID)
			argtypes[nargs++] = get_array_type(node_column_type(c));
	return LookupFuncName(list_make2(makeString(LEDGER_SCHEMA),
									 makeString(node_function_name(stream_id))),
						  nargs, argtypes, true);
}

/*
 * The stream's node function, or InvalidOid when it has none or Citus
 * would not delegate its calls to the nodes of the ledger's shards (not
 * co-located with the ledger, co-location group colocation).
 */
static Oid
node_function(int32 stream_id, int32 colocation)
{
	Oid			fn = node_function_oid(stream_id);

	if (!OidIsValid(fn) || !ek_citus_function_delegated(fn, colocation))
		return InvalidOid;
	return fn;
}

/*
 * Drop the stream's node function, if it has one (Citus drops it on
 * every node), as the extension owner, whose it is.  Caller: SPI
 * connected, on the coordinator.
 */
static void
drop_node_function(int32 stream_id)
{
	EkRoleScope as_ext_owner;

	if (!OidIsValid(node_function_oid(stream_id)))
		return;
	ek_as_owner_begin(&as_ext_owner);
	ek_spi_exec(psprintf("DROP FUNCTION %s", node_function_signature(stream_id)),
				SPI_OK_UTILITY);
	ek_as_role_end(&as_ext_owner);
}

/* " COLLATE <name>" of a text column of relid (which must exist) */
static char *
column_collation(Oid relid, const char *column)
{
	AttrNumber	attnum = get_attnum(relid, column);
	Oid			typid;
	int32		typmod;
	Oid			collid;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("stream \"%s\" has no column \"%s\"", get_rel_name(relid), column)));
	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	if (!OidIsValid(collid))
		return "";
	return psprintf(" COLLATE %s", generate_collation_name(collid));
}

/*
 * Create the distributed ledger of a stream as a local table, with the
 * collations of the stream's user_key and message_id (Citus co-locates
 * only tables whose distribution columns have the same type and
 * collation), filled with the ids of the stream's single-node ledger,
 * then given to the stream's owner (before Citus makes its shards, which
 * then belong to that role too).  The caller distributes it.  Caller: SPI
 * connected, as the extension owner (who may create tables in
 * eventkit_ledgers).
 */
void
ek_dist_ledger_create(int32 stream_id, Oid stream_relid)
{
	char	   *q = ek_dist_ledger_qname(stream_id);
	Oid			ledger = ek_ledger_relid(stream_id, true);
	Oid			owner = ek_relation_owner(stream_relid);

	/*
	 * A catalog before 1.11 has no eventkit_ledgers: the ledger goes to
	 * eventkit_internal, where only a superuser reaches it
	 */
	if (!ledger_schema_exists() && !superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot distribute stream \"%s\" of role \"%s\" before eventkit's catalog is updated to 1.11",
						get_rel_name(stream_relid), GetUserNameFromId(owner, false)),
				 errdetail("This database's eventkit catalog has no schema %s, where the dedup ledger of a stream whose owner is not a superuser goes.",
						   LEDGER_SCHEMA),
				 errhint("Run ALTER EXTENSION eventkit UPDATE on the coordinator (Citus updates every worker with it), then distribute the stream again.")));

	ek_spi_exec(psprintf("CREATE TABLE %s ("
						 " user_key pg_catalog.text%s NOT NULL,"
						 " message_id pg_catalog.text%s NOT NULL,"
						 " fingerprint pg_catalog.int8 NOT NULL,"
						 " batch_id pg_catalog.int8 NOT NULL,"
						 " stored_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),"
						 " PRIMARY KEY (user_key, message_id))",
						 q, column_collation(stream_relid, "user_key"),
						 column_collation(stream_relid, "message_id")),
				SPI_OK_UTILITY);
	/*
	 * The single-node ledger keeps only keys (ek_ledger_key of each id) and
	 * fingerprints: the ids and user keys come from the stream's rows that
	 * hold them
	 */
	if (OidIsValid(ledger))
		ek_spi_exec(psprintf("INSERT INTO %s (user_key, message_id, fingerprint, batch_id)"
							 " SELECT s.user_key, s.message_id, l.fingerprint, s.batch_id"
							 " FROM %s s JOIN %s l"
							 " ON l.message_key OPERATOR(pg_catalog.=)"
							 " eventkit_internal.ledger_key(s.message_id)"
							 " WHERE s.message_id IS NOT NULL AND s.user_key IS NOT NULL"
							 " ON CONFLICT DO NOTHING",
							 q, quote_qualified_identifier(get_namespace_name(get_rel_namespace(stream_relid)),
														   get_rel_name(stream_relid)),
							 ek_ledger_qname(stream_id)),
					SPI_OK_INSERT);
	ek_spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", q,
						 quote_identifier(GetUserNameFromId(owner, false))),
				SPI_OK_UTILITY);
}

/*
 * Forget the ids stored more than dedup_window ago (by the coordinator's
 * clock at their claim): dedup is exact within the window, as on one
 * node.  A DELETE on every shard, in parallel: unlike the single-node
 * ledger's generations, this leaves dead rows for vacuum.  Returns how
 * many.  Runs as the ledger's owner, with
 * eventkit.maintenance_lock_timeout.  Caller: SPI connected.
 */
int64
ek_dist_ledger_prune(int32 stream_id, const Interval *dedup_window)
{
	Oid			types[1] = {INTERVALOID};
	Datum		args[1] = {IntervalPGetDatum(dedup_window)};
	Oid			relid = ek_dist_ledger_relid(stream_id);
	EkRoleScope as_owner;
	int			rc;

	if (!OidIsValid(relid))
		return 0;
	ek_as_role_begin(&as_owner, ek_relation_owner(relid), EK_AS_LOCK_TIMEOUT);
	rc = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE stored_at OPERATOR(pg_catalog.<)"
										" (pg_catalog.now() OPERATOR(pg_catalog.-) $1)",
										ek_qualified_relname(relid)),
							   1, types, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: distributed ledger pruning failed: %s",
			 SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
	return (int64) SPI_processed;
}

/*
 * forget_user: delete the ids of the user keys in keys (text[]) from the
 * distributed ledger, through Citus (each key's shard, in the caller's
 * distributed transaction); returns how many.  Runs as the ledger's owner.
 * Caller: SPI connected.
 */
int64
ek_dist_ledger_forget_keys(int32 stream_id, Datum keys)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		args[1] = {keys};
	Oid			relid = ek_dist_ledger_relid(stream_id);
	EkRoleScope as_owner;
	int			rc;

	if (!OidIsValid(relid))
		return 0;
	ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	rc = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE user_key OPERATOR(pg_catalog.=) ANY ($1)",
										ek_qualified_relname(relid)),
							   1, types, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not delete distributed ledger entries: %s",
			 SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
	return (int64) SPI_processed;
}

/* the node function's making, for ek_run_in_subtransaction() */
typedef struct NodeFunctionMaking
{
	int32		stream_id;
	Oid			ledger_relid;
} NodeFunctionMaking;

static void
make_node_function(void *arg)
{
	NodeFunctionMaking *m = (NodeFunctionMaking *) arg;
	EkRoleScope as_ext_owner;

	/* the extension owner's, a C function, as distribute_stream makes it */
	ek_as_owner_begin(&as_ext_owner);
	ek_dist_ledger_create_node_function(m->stream_id, ek_qualified_relname(m->ledger_relid));
	ek_as_role_end(&as_ext_owner);
}

/*
 * On the Citus coordinator, the node function of a distributed stream that
 * has none (distributed by a library before 1.13, or on a catalog before
 * 1.11, which had no eventkit_ledgers for it): made now, as
 * distribute_stream makes it, so that its calls reach each other node with
 * one call.  Returns whether it made one.  The ledger job's work, first in
 * it: Citus refuses to distribute a function in a transaction that has
 * run a parallel command on a distributed table (the ledger's pruning, a
 * partition made by run_maintenance's premake before it).  When it
 * cannot (that, or a worker down), it says so in the server log and
 * leaves it to the next run of the job, which runs in a transaction of its
 * own.  Caller: SPI connected.
 */
int
ek_dist_ledger_ensure_node_function(int32 stream_id)
{
	NodeFunctionMaking m = {stream_id, ek_dist_ledger_relid(stream_id)};
	ErrorData  *edata;

	if (!OidIsValid(m.ledger_relid) || !ledger_schema_exists() || !ek_citus_installed() ||
		ek_citus_on_worker() || ek_citus_table_kind(m.ledger_relid) != EK_CITUS_HASH ||
		OidIsValid(node_function_oid(stream_id)))
		return 0;
	edata = ek_run_in_subtransaction(make_node_function, &m);
	if (edata == NULL)
		return 1;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	ereport(LOG,
			(errmsg("eventkit: could not make the node function of the distributed ledger \"%s\" yet: %s",
					get_rel_name(m.ledger_relid), edata->message),
			 errhint("The coordinator's ledger job of the stream makes it at its next run; until then its calls reach other nodes through Citus.")));
	FreeErrorData(edata);
	return 0;
}

/*
 * Forget a dropped stream in the cluster-wide catalog (if it was
 * distributed: also when its ledger is gone already, dropped by DROP
 * OWNED with the stream) and drop its distributed ledger, if it has one,
 * as its owner (the stream's owner, which dropped the stream's shards in
 * this transaction: one user for Citus).  Caller: SPI connected.
 */
void
ek_dist_ledger_drop(int32 stream_id)
{
	Oid			relid;
	EkRoleScope as_owner;

	/*
	 * On a worker, the sql_drop trigger forgets a stream whose table the
	 * coordinator's drop_stream dropped: the coordinator drops the ledger
	 * (and Citus its shards and this node's shell).
	 */
	if (ek_citus_on_worker())
		return;
	ek_cluster_forget_stream(stream_id);
	drop_node_function(stream_id);
	relid = ek_dist_ledger_relid(stream_id);
	if (!OidIsValid(relid))
		return;
	ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(relid)), SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
}

/* ids read from the distributed ledger per INSERT into the single-node one */
#define UNDISTRIBUTE_CHUNK 10000

/*
 * undistribute_stream: the ids of the stream's distributed ledger go into
 * its single-node ledger, in the current generation (kept a whole
 * dedup_window from now: at least as long as the distributed ledger
 * would have kept them), as a claim there writes them: the key of each
 * messageId, the fingerprint, the hash of the user key (for forget_user).
 * Two users' ids with one messageId (two events on a distributed stream)
 * are one key here, as on one node.  Then the distributed ledger is
 * dropped and the stream forgotten in the cluster-wide catalog.  Returns
 * the ids read, -1 when there is no distributed ledger.  A row with a
 * NULL (its owner may have changed the table) is an error, not skipped:
 * its id would no longer be a duplicate.  Caller: SPI connected, the
 * stream (not a Citus table) locked against ingest.
 */
int64
ek_dist_ledger_undistribute(int32 stream_id)
{
	Oid			relid = ek_dist_ledger_relid(stream_id);
	Oid			argtypes[3] = {UUIDARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum	   *keys = palloc(sizeof(Datum) * UNDISTRIBUTE_CHUNK);
	Datum	   *fps = palloc(sizeof(Datum) * UNDISTRIBUTE_CHUNK);
	Datum	   *hashes = palloc(sizeof(Datum) * UNDISTRIBUTE_CHUNK);
	pg_uuid_t  *keybuf = palloc(sizeof(pg_uuid_t) * UNDISTRIBUTE_CHUNK);
	MemoryContext chunk_cxt;
	char	   *insert;
	Portal		portal;
	EkRoleScope as_owner;
	int32		gen;
	int64		n = 0;

	if (!OidIsValid(relid))
		return -1;
	if (!OidIsValid(ek_ledger_relid(stream_id, true)))
		ek_ledger_create(stream_id);
	gen = ek_generations_current(stream_id);
	insert = psprintf("INSERT INTO %s (message_key, gen, fingerprint, user_key_hash)"
					  " SELECT k.key, %d, k.fp, k.hash"
					  " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
					  " AS k(key, fp, hash)"
					  " ON CONFLICT DO NOTHING",
					  ek_ledger_generation_qname(stream_id, gen), gen);
	chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit undistribute",
									  ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT user_key::pg_catalog.text, message_id::pg_catalog.text,"
												" fingerprint::pg_catalog.int8 FROM %s",
												ek_qualified_relname(relid)),
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		uint64		rows;
		MemoryContext old;
		Datum		args[3];

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, UNDISTRIBUTE_CHUNK);
		rows = SPI_processed;
		if (rows == 0)
			break;
		old = MemoryContextSwitchTo(chunk_cxt);
		for (uint64 i = 0; i < rows; i++)
		{
			bool		isnull[3];
			text	   *user_key;
			text	   *id;

			for (int c = 0; c < 3; c++)
				(void) ek_spi_value(i, c + 1, &isnull[c]);
			if (isnull[0] || isnull[1] || isnull[2])
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("the dedup ledger %s has a row with a NULL user_key, message_id or fingerprint",
								ek_qualified_relname(relid)),
						 errdetail("eventkit made its columns NOT NULL; each row is an id the stream stored."),
						 errhint("Restore the row's values from the dump, or delete it if its event is not in the stream, then call eventkit.undistribute_stream() again.")));
			user_key = DatumGetTextPP(ek_spi_value(i, 1, &isnull[0]));
			id = DatumGetTextPP(ek_spi_value(i, 2, &isnull[1]));

			ek_ledger_key(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id), &keybuf[i]);
			keys[i] = UUIDPGetDatum(&keybuf[i]);
			fps[i] = ek_spi_value(i, 3, &isnull[2]);
			hashes[i] = Int64GetDatum((int64) ek_id_hash64(VARDATA_ANY(user_key),
														   VARSIZE_ANY_EXHDR(user_key)));
		}
		args[0] = ek_make_array(keys, NULL, (int) rows, UUIDOID);
		args[1] = ek_make_array(fps, NULL, (int) rows, INT8OID);
		args[2] = ek_make_array(hashes, NULL, (int) rows, INT8OID);
		MemoryContextSwitchTo(old);
		/* the single-node ledger is the extension owner's */
		ek_as_owner_begin(&as_owner);
		if (SPI_execute_with_args(insert, 3, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "eventkit: could not copy the distributed ledger's ids");
		ek_as_role_end(&as_owner);
		n += (int64) rows;
		MemoryContextReset(chunk_cxt);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(chunk_cxt);
	ek_dist_ledger_drop(stream_id);
	return n;
}

/*
 * The stream's owner may do what a call does through Citus as that role:
 * USAGE on the stream's schema and INSERT on the stream (the rows of
 * other nodes' shards), USAGE on the ledger's schema and SELECT, INSERT
 * and UPDATE on the ledger (the claims: INSERT ... ON CONFLICT DO UPDATE
 * ... RETURNING); else an error that names the stream, the role and the
 * GRANT that mends it, instead of "permission denied" from some node deep
 * in Citus.  Grants on the stream's schema and the stream reach every
 * node through Citus; eventkit_ledgers is each node's own (not a Citus
 * object): its USAGE is checked on the node of the call.  Syscache only.
 */
static void
check_owner_rights(Oid stream_relid, Oid ledger_relid, Oid owner)
{
	const char *role = GetUserNameFromId(owner, false);
	const char *stream = get_rel_name(stream_relid);
	Oid			stream_nsp = get_rel_namespace(stream_relid);
	Oid			ledger_nsp = get_rel_namespace(ledger_relid);
	AclMode		ledger_rights = ACL_SELECT | ACL_INSERT | ACL_UPDATE;

	if (superuser_arg(owner))
		return;
	if (pg_namespace_aclcheck(stream_nsp, owner, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot ingest into distributed stream \"%s\": its owner \"%s\" has no USAGE on schema \"%s\"",
						stream, role, get_namespace_name(stream_nsp)),
				 errdetail("eventkit claims ids in the stream's dedup ledger and writes the rows of other nodes' shards through Citus as the stream's owner."),
				 errhint("On the coordinator (Citus gives the grant to every node): GRANT USAGE ON SCHEMA %s TO %s;",
						 quote_identifier(get_namespace_name(stream_nsp)), quote_identifier(role))));
	if (pg_class_aclcheck(stream_relid, owner, ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot ingest into distributed stream \"%s\": its owner \"%s\" has no INSERT privilege on it",
						stream, role),
				 errdetail("eventkit writes the rows of other nodes' shards through Citus as the stream's owner."),
				 errhint("On the coordinator (Citus gives the grant to every node): GRANT INSERT ON %s TO %s;",
						 ek_qualified_relname(stream_relid), quote_identifier(role))));
	if (pg_namespace_aclcheck(ledger_nsp, owner, ACL_USAGE) != ACLCHECK_OK)
	{
		bool		in_ledgers = strcmp(get_namespace_name(ledger_nsp), LEDGER_SCHEMA) == 0;

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot ingest into distributed stream \"%s\": its owner \"%s\" has no USAGE on schema \"%s\"",
						stream, role, get_namespace_name(ledger_nsp)),
				 errdetail("eventkit claims ids in the stream's dedup ledger %s through Citus as the stream's owner.",
						   ek_qualified_relname(ledger_relid)),
				 in_ledgers ?
				 errhint("On every node where it was revoked (eventkit grants it to PUBLIC; a grant on this schema is each node's own): GRANT USAGE ON SCHEMA %s TO %s;",
						 LEDGER_SCHEMA, quote_identifier(role)) :
				 errhint("On the coordinator, as a superuser, move the ledger where every role may reach it: ALTER TABLE %s SET SCHEMA %s;",
						 ek_qualified_relname(ledger_relid), LEDGER_SCHEMA)));
	}
	if (pg_class_aclmask(ledger_relid, owner, ledger_rights, ACLMASK_ALL) != ledger_rights)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot ingest into distributed stream \"%s\": its owner \"%s\" lacks SELECT, INSERT or UPDATE on its dedup ledger",
						stream, role),
				 errdetail("eventkit claims ids in %s (INSERT ... ON CONFLICT DO UPDATE ... RETURNING) through Citus as the stream's owner.",
						   ek_qualified_relname(ledger_relid)),
				 errhint("On the coordinator (Citus gives the grant to every node): GRANT SELECT, INSERT, UPDATE ON %s TO %s;",
						 ek_qualified_relname(ledger_relid), quote_identifier(role))));
}

/*
 * Before a call on a stream that is not a Citus table: a distributed
 * ledger of its id beside it means that its ids are there, not in the
 * single-node ledger this call would claim them in (a Citus coordinator's
 * dump restored on another server, where the stream and its ledger are
 * plain tables): a re-sent event would be stored again, so the
 * call is refused.  Cheap: syscache lookups, once per call.
 */
void
ek_dist_ledger_check_absent(int32 stream_id, Oid stream_relid)
{
	Oid			relid = ek_dist_ledger_relid(stream_id);

	if (OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" has the dedup ledger of a distributed stream but is not distributed",
						get_rel_name(stream_relid)),
				 errdetail("The ids it stored while distributed on Citus are in %s, which ingest on a stream that is not a Citus table does not read: re-sent events would be stored again.  This happens when a Citus coordinator's dump is restored on another server.",
						   ek_qualified_relname(relid)),
				 errhint("Call eventkit.undistribute_stream('%s') to move those ids into the stream's own ledger.",
						 ek_qualified_relname(stream_relid))));
}

/*
 * Before a call on a distributed stream: its ledger must exist and belong
 * to the stream's owner, the one role the call reaches Citus as (the
 * claims here, its rows through Citus), and
 * that role must have the rights those need (check_owner_rights), else
 * an error that says how to mend it.  Cheap: syscache lookups, once per
 * call.
 */
void
ek_dist_ledger_check_owner(int32 stream_id, Oid stream_relid)
{
	Oid			relid = ek_dist_ledger_relid(stream_id);
	Oid			owner = ek_relation_owner(stream_relid);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" is distributed but has no distributed dedup ledger",
						get_rel_name(stream_relid)),
				 errdetail("The stream was distributed with create_distributed_table(), not with eventkit.distribute_stream()."),
				 errhint("Distribute streams with eventkit.distribute_stream() only: make a new stream (key_partitions => 0), distribute it so, and ingest into it; Citus's undistribute_table() of this one would drop it for eventkit.")));
	if (ek_relation_owner(relid) != owner)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the dedup ledger of distributed stream \"%s\" does not belong to the stream's owner",
						get_rel_name(stream_relid)),
				 errdetail("Citus reaches co-located tables as one user per transaction: eventkit claims ids in %s and writes the stream through Citus as the stream's owner, \"%s\"; the ledger belongs to \"%s\".",
						   ek_qualified_relname(relid), GetUserNameFromId(owner, false),
						   GetUserNameFromId(ek_relation_owner(relid), false)),
				 errhint("On the coordinator, as a superuser: ALTER TABLE %s OWNER TO %s (eventkit gives the ledger to the stream's new owner).",
						 ek_qualified_relname(stream_relid),
						 quote_identifier(GetUserNameFromId(owner, false)))));
	check_owner_rights(stream_relid, relid, owner);
}

/*
 * After ALTER TABLE ... OWNER TO of a distributed stream, on the
 * coordinator: give its ledger to the stream's new owner too (Citus
 * propagates ALTER TABLE ... OWNER TO to the shards), moving a ledger of
 * eventkit 1.10 out of eventkit_internal first (its new owner has no
 * USAGE there).  Only a superuser may (the new owner has no CREATE on
 * eventkit_ledgers, which ALTER ... OWNER TO wants of anyone else); it
 * runs as that role, the one that changed the stream's owner (one user
 * for Citus), restricted, the names quoted here.  Caller: SPI connected.
 */
void
ek_dist_ledger_follow_owner(int32 stream_id, Oid stream_relid)
{
	Oid			relid = ek_dist_ledger_relid(stream_id);
	Oid			owner = ek_relation_owner(stream_relid);
	EkRoleScope as_owner;

	if (!OidIsValid(relid) || ek_relation_owner(relid) == owner)
		return;
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser can give distributed stream \"%s\" another owner",
						get_rel_name(stream_relid)),
				 errdetail("Its dedup ledger %s must belong to the stream's owner too, and only a superuser may give it to a role without CREATE on schema %s.",
						   ek_qualified_relname(relid), LEDGER_SCHEMA),
				 errhint("Ask a superuser to run the ALTER TABLE ... OWNER TO.")));
	if (!ledger_schema_exists() && !superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot give distributed stream \"%s\" to role \"%s\" before eventkit's catalog is updated to 1.11",
						get_rel_name(stream_relid), GetUserNameFromId(owner, false)),
				 errdetail("Its dedup ledger %s must follow it to schema %s, which this database's eventkit catalog does not have yet.",
						   ek_qualified_relname(relid), LEDGER_SCHEMA),
				 errhint("Run ALTER EXTENSION eventkit UPDATE on the coordinator (Citus updates every worker with it), then change the owner again.")));
	ek_as_role_begin(&as_owner, GetUserId(), 0);
	if (ledger_schema_exists() &&
		strcmp(get_namespace_name(get_rel_namespace(relid)), LEDGER_SCHEMA) != 0)
	{
		ek_spi_exec(psprintf("ALTER TABLE %s SET SCHEMA %s", ek_qualified_relname(relid),
							 quote_identifier(LEDGER_SCHEMA)),
					SPI_OK_UTILITY);
		CommandCounterIncrement();
	}
	ek_spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", ek_qualified_relname(relid),
						 quote_identifier(GetUserNameFromId(owner, false))),
				SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
}

/* sorting positions by (message id) to find a result row's claim */
static char **sort_ids;

static int
compare_pos(const void *a, const void *b)
{
	return strcmp(sort_ids[*(const int *) a], sort_ids[*(const int *) b]);
}

static int
find_pos(char **ids, const int *order, int n, const char *id)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(id, ids[order[mid]]);

		if (c == 0)
			return order[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

/* sorting positions by (user key, message id): the order of the claims */
static char **sort_keys;

static int
compare_key_pos(const void *a, const void *b)
{
	int			pa = *(const int *) a;
	int			pb = *(const int *) b;
	int			c = strcmp(sort_keys[pa], sort_keys[pb]);

	return c != 0 ? c : strcmp(sort_ids[pa], sort_ids[pb]);
}

/*
 * Read the claim's rows from SPI_tuptable: (message_id, user_key,
 * fingerprint, claimed by this call).  Rows of other (user key, id) pairs
 * are skipped; every id of the batch must be there.  by_id orders the
 * positions by id (find_pos).
 */
static void
read_claims(char **ids, char **keys, const int *by_id, int n,
			bool *found, bool *claimed, int64 *stored_fp)
{
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *id = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *key = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		int			pos = find_pos(ids, by_id, n, id);

		CHECK_FOR_INTERRUPTS();
		if (pos < 0 || found[pos] || strcmp(keys[pos], key) != 0)
			continue;
		found[pos] = true;
		claimed[pos] = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		stored_fp[pos] = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	}
	for (int i = 0; i < n; i++)
		if (!found[i])
			elog(ERROR, "eventkit: message id \"%s\" was neither claimed nor found in the distributed ledger",
				 ids[i]);
}

/*
 * Most rows claimed in one statement (3 parameters a row, within the
 * protocol's 65535); a larger batch takes the two statements below.
 */
#define MAX_VALUES_ROWS 16000

/*
 * The claim in one statement: a multi-row INSERT, which Citus splits by
 * shard into one INSERT per shard (no intermediate results), with ON
 * CONFLICT DO UPDATE of nothing that matters (batch_id kept) so that
 * RETURNING gives every id of the batch: the new ones with this call's
 * token, those stored before (or meanwhile, by a claim it waited for) with
 * theirs and the stored fingerprint.  An id stored before gets a new row
 * version (the update), which vacuum reclaims.  The rows go in (user key,
 * id) order, so each shard takes its locks in that order; Citus visits
 * the shards one after another (the ingest orchestrator's setting).
 */
static void
claim_values(const char *q, char **ids, int64 *fps, char **keys, int n, int64 token,
			 const int *by_id, bool *found, bool *claimed, int64 *stored_fp)
{
	int			nargs = 3 * n + 1;
	Oid		   *types = palloc(sizeof(Oid) * nargs);
	Datum	   *args = palloc(sizeof(Datum) * nargs);
	int		   *order = palloc(sizeof(int) * n);
	StringInfoData sql;
	int			rc;

	for (int i = 0; i < n; i++)
		order[i] = i;
	sort_keys = keys;
	sort_ids = ids;
	qsort(order, n, sizeof(int), compare_key_pos);
	sort_keys = NULL;
	sort_ids = NULL;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS l (user_key, message_id, fingerprint, batch_id)"
					 " VALUES ", q);
	for (int r = 0; r < n; r++)
	{
		int			i = order[r];

		CHECK_FOR_INTERRUPTS();
		types[3 * r] = TEXTOID;
		args[3 * r] = PointerGetDatum(cstring_to_text(keys[i]));
		types[3 * r + 1] = TEXTOID;
		args[3 * r + 1] = PointerGetDatum(cstring_to_text(ids[i]));
		types[3 * r + 2] = INT8OID;
		args[3 * r + 2] = Int64GetDatum(fps[i]);
		appendStringInfo(&sql, "%s($%d, $%d, $%d, $%d)", r > 0 ? ", " : "",
						 3 * r + 1, 3 * r + 2, 3 * r + 3, nargs);
	}
	types[nargs - 1] = INT8OID;
	args[nargs - 1] = Int64GetDatum(token);
	appendStringInfo(&sql, " ON CONFLICT (user_key, message_id) DO UPDATE"
					 " SET batch_id = l.batch_id"
					 " RETURNING l.message_id, l.user_key, l.fingerprint,"
					 " l.batch_id OPERATOR(pg_catalog.=) $%d", nargs);
	rc = SPI_execute_with_args(sql.data, nargs, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "eventkit: distributed ledger claim failed: %s",
			 SPI_result_code_string(rc));
	read_claims(ids, keys, by_id, n, found, claimed, stored_fp);
}

/*
 * Claim the ids at positions pos[0..m-1] with one claim_values statement
 * on the relation q names (the distributed ledger, or a local shard of it)
 * and put the answers back at those positions.
 */
static void
claim_subset(const char *q, const int *pos, int m, char **ids, int64 *fps, char **keys,
			 int64 token, bool *claimed, int64 *stored_fp)
{
	char	  **sids = palloc(sizeof(char *) * m);
	char	  **skeys = palloc(sizeof(char *) * m);
	int64	   *sfps = palloc(sizeof(int64) * m);
	int		   *by_id = palloc(sizeof(int) * m);
	bool	   *found = palloc0(sizeof(bool) * m);
	bool	   *sclaimed = palloc(sizeof(bool) * m);
	int64	   *sstored = palloc(sizeof(int64) * m);

	for (int r = 0; r < m; r++)
	{
		sids[r] = ids[pos[r]];
		skeys[r] = keys[pos[r]];
		sfps[r] = fps[pos[r]];
		by_id[r] = r;
		sclaimed[r] = false;
	}
	sort_ids = sids;
	qsort(by_id, m, sizeof(int), compare_pos);
	sort_ids = NULL;
	claim_values(q, sids, sfps, skeys, m, token, by_id, found, sclaimed, sstored);
	for (int r = 0; r < m; r++)
	{
		claimed[pos[r]] = sclaimed[r];
		stored_fp[pos[r]] = sstored[r];
	}
}

/* sorting positions by (group, shard id, user key, id): the claims' order */
static int *sort_group;
static int64 *sort_shard;

static int
compare_node_pos(const void *a, const void *b)
{
	int			pa = *(const int *) a;
	int			pb = *(const int *) b;

	if (sort_group[pa] != sort_group[pb])
		return sort_group[pa] < sort_group[pb] ? -1 : 1;
	if (sort_shard[pa] != sort_shard[pb])
		return sort_shard[pa] < sort_shard[pb] ? -1 : 1;
	return compare_key_pos(a, b);
}

/* a group after every node's: shards left to Citus to find */
#define CITUS_ROUTED_GROUP PG_INT32_MAX

/*
 * What a claim needs to write the new events of another node's shards on
 * that node with their claims (the node function): the ids' events, the
 * stream and the rows' batch values.
 */
typedef struct NodeWrite
{
	SegmentEvent **events;		/* the event of each id */
	Oid			stream_relid;
	int32		stream_id;
	int64		batch_id;
	TimestampTz received_at;
	int			nparts;			/* the stream's partitions here (-1: none) */
	char	   *function;		/* the node function's qualified name */
} NodeWrite;

/*
 * Claim the ids at pos[0..m-1] of a local ledger shard (shardid) directly:
 * no Citus executor, no connection; in C (dist_claim.c), or, where the
 * shard or the transaction is not one that handles, with one
 * INSERT ... ON CONFLICT on the shard's relation.  Returns false, having claimed nothing, when this node has
 * no relation of that shard.
 */
static bool
claim_local_shard(Oid ledger_relid, int64 shardid, const int *pos, int m, char **ids,
				  int64 *fps, char **keys, int64 token, bool *claimed, int64 *stored_fp)
{
	Oid			shard_rel = ek_citus_shard_relid(ledger_relid, shardid);
	int			nest;

	if (!OidIsValid(shard_rel))
		return false;
	/* in C where the shard allows it (dist_claim.c), else the SQL claim */
	if (ek_dist_claim_shard(shard_rel, pos, m, ids, fps, keys, token, claimed, stored_fp))
		return true;
	nest = NewGUCNestLevel();
	/* Citus refuses writes to a shard by name unless told */
	(void) set_config_option("citus.enable_manual_changes_to_shards", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	claim_subset(ek_qualified_relname(shard_rel), pos, m, ids, fps, keys, token,
				 claimed, stored_fp);
	AtEOXact_GUC(true, nest);
	return true;
}

/*
 * Claim the ids at pos[0..m-1], all of the shards of one other node, and
 * write the new ones' events there, with one call of the stream's node
 * function (pipeline/dist_node.c), which Citus runs on that node (the
 * node of the first id's key) inside this distributed transaction and
 * prepares with it.  Sets the events it wrote stored.  Returns false when
 * the function did nothing there (Citus ran it here, or the shards are
 * not all on the node it ran on): the caller claims through Citus instead.
 */
static bool
claim_on_node(const NodeWrite *nw, const int *pos, int m, char **keys, int64 *fps,
			  int64 token, bool *claimed, int64 *stored_fp)
{
	Oid			types[NODE_NARGS];
	Datum		args[NODE_NARGS];
	SegmentEvent **evs = palloc(sizeof(SegmentEvent *) * m);
	int64	   *mfps = palloc(sizeof(int64) * m);
	Datum	   *col = palloc(sizeof(Datum) * m);
	bool	   *nulls = palloc(sizeof(bool) * m);
	StringInfoData sql;
	int			nargs = 0;
	int			rc;

	for (int r = 0; r < m; r++)
	{
		evs[r] = nw->events[pos[r]];
		mfps[r] = fps[pos[r]];
		col[r] = Int64GetDatum(mfps[r]);
		nulls[r] = false;
	}
	types[nargs] = TEXTOID;
	args[nargs++] = CStringGetTextDatum(keys[pos[0]]);
	types[nargs] = TEXTOID;
	args[nargs++] = CStringGetTextDatum(ek_qualified_relname(nw->stream_relid));
	types[nargs] = INT4OID;
	args[nargs++] = Int32GetDatum(nw->stream_id);
	types[nargs] = INT4OID;
	args[nargs++] = Int32GetDatum(ek_citus_local_group());
	types[nargs] = INT8OID;
	args[nargs++] = Int64GetDatum(token);
	types[nargs] = INT8OID;
	args[nargs++] = Int64GetDatum(nw->batch_id);
	types[nargs] = INT4OID;
	args[nargs++] = Int32GetDatum(nw->nparts);
	types[nargs] = INT8ARRAYOID;
	args[nargs++] = ek_make_array(col, nulls, m, INT8OID);
	for (int c = 0; c < SC_NCOLUMNS; c++)
	{
		if (c == SC_BATCH_ID)
			continue;
		CHECK_FOR_INTERRUPTS();
		/* (a time's Datum is its int8 microseconds) */
		ek_batch_column(evs, m, c, nw->batch_id, nw->received_at, col, nulls);
		if (ek_stream_columns[c].type == JSONBOID)
			for (int r = 0; r < m; r++)
				if (!nulls[r])
				{
					Jsonb	   *jb = DatumGetJsonbP(col[r]);

					col[r] = CStringGetTextDatum(JsonbToCString(NULL, &jb->root, VARSIZE(jb)));
				}
		types[nargs] = get_array_type(node_column_type(c));
		args[nargs++] = ek_make_array(col, nulls, m, node_column_type(c));
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT pos, fingerprint, claimed, written FROM %s(", nw->function);
	for (int a = 1; a <= nargs; a++)
		appendStringInfo(&sql, "%s$%d", a > 1 ? ", " : "", a);
	appendStringInfoChar(&sql, ')');
	rc = SPI_execute_with_args(sql.data, nargs, types, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: distributed ledger claim on a node failed: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	if (SPI_processed != (uint64) m)
		elog(ERROR, "eventkit: the node function of the distributed ledger answered " UINT64_FORMAT " of %d ids",
			 SPI_processed, m);
	for (uint64 t = 0; t < SPI_processed; t++)
	{
		bool		isnull;
		int			r = DatumGetInt32(ek_spi_value(t, 1, &isnull));

		if (isnull || r < 0 || r >= m)
			elog(ERROR, "eventkit: the node function of the distributed ledger answered for no id it was given");
		stored_fp[pos[r]] = DatumGetInt64(ek_spi_value(t, 2, &isnull));
		claimed[pos[r]] = DatumGetBool(ek_spi_value(t, 3, &isnull));
		evs[r]->stored = DatumGetBool(ek_spi_value(t, 4, &isnull));
	}
	ek_citus_use_2pc();
	return true;
}

/*
 * The ids of keys[] sorted in the claims' order, (node group, shard id,
 * user key, id), into order[]; group[] and shardid[] of each (a shard
 * Citus finds: CITUS_ROUTED_GROUP, 0).  The shards' placements are read
 * under their metadata locks (util/citus_shards.h), so a concurrent shard
 * move waits for this transaction (or this one for the move).
 */
static void
claim_order(EkShardMap *map, char **ids, char **keys, int n, bool lock, int *group,
			int64 *shardid, int *order)
{
	int		   *shard = palloc(sizeof(int) * n);
	bool	   *used = palloc0(sizeof(bool) * Max(map->nshards, 1));

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		shard[i] = ek_citus_shard_index(map, keys[i]);
		if (shard[i] >= 0)
			used[shard[i]] = true;
	}
	if (lock)
		ek_citus_shards_place(map, used);
	else
		ek_citus_shards_read(map);
	for (int i = 0; i < n; i++)
	{
		order[i] = i;
		if (shard[i] < 0 || map->groups[shard[i]] < 0)
		{
			group[i] = CITUS_ROUTED_GROUP;
			shardid[i] = 0;
		}
		else
		{
			group[i] = map->groups[shard[i]];
			shardid[i] = map->shardids[shard[i]];
		}
	}
	sort_group = group;
	sort_shard = shardid;
	sort_keys = keys;
	sort_ids = ids;
	qsort(order, n, sizeof(int), compare_node_pos);
	sort_group = NULL;
	sort_shard = NULL;
	sort_keys = NULL;
	sort_ids = NULL;
}

/*
 * The claim, per node: the ids of this node's shards claimed in each
 * local ledger shard directly (claim_local_shard), those of each other
 * node's shards with one call of the stream's node function on that node
 * that claims them and writes the new ones' events there (claim_on_node,
 * when nw is given), else with one statement through Citus per node.  All
 * in one order, (node group, shard id, user key, id), on every node, so
 * that two calls on two nodes claiming the same ids wait for each other
 * instead of deadlocking.
 */
static void
claim_per_node(Oid ledger_relid, const char *q, char **ids, int64 *fps, char **keys,
			   int n, int64 token, const NodeWrite *nw, bool *claimed, int64 *stored_fp)
{
	EkShardMap *map = ek_citus_shard_map(ledger_relid, "user_key");
	int		   *group = palloc(sizeof(int) * n);
	int64	   *shardid = palloc(sizeof(int64) * n);
	int		   *order = palloc(sizeof(int) * n);
	int32		local = ek_citus_local_group();

	claim_order(map, ids, keys, n, true, group, shardid, order);
	for (int r = 0; r < n;)
	{
		int			g = group[order[r]];
		int			end = r;

		/* another node's ids, all of them in one call of its node function */
		if (nw != NULL && g != local && g != CITUS_ROUTED_GROUP)
		{
			while (end < n && group[order[end]] == g)
				end++;
			if (claim_on_node(nw, order + r, end - r, keys, fps, token, claimed, stored_fp))
			{
				r = end;
				continue;
			}
			end = r;
		}

		/*
		 * The run of one node's ids, or of one local shard's, at most
		 * MAX_VALUES_ROWS of them: a longer run is claimed in consecutive
		 * pieces, which keeps the one order
		 */
		while (end < n && end - r < MAX_VALUES_ROWS && group[order[end]] == g &&
			   (g != local || shardid[order[end]] == shardid[order[r]]))
			end++;
		if (g == local &&
			claim_local_shard(ledger_relid, shardid[order[r]], order + r, end - r,
							  ids, fps, keys, token, claimed, stored_fp))
			ek_citus_use_2pc();
		else
			claim_subset(q, order + r, end - r, ids, fps, keys, token, claimed, stored_fp);
		r = end;
	}
}

/*
 * Claim n distinct message ids (ids[i] of user keys[i], fingerprints
 * fps[i], events[i]) in the stream's distributed ledger.  On return
 * claimed[i] says whether the id was new (now claimed by this
 * transaction); for the others stored_fp[i] is the fingerprint of the copy
 * stored first.  With write_remote, the ids of each other node's shards
 * are claimed by a call on that node that also writes the new ones'
 * events there (rows of batch_id, received_at), which are then set
 * stored; else, or where the stream has no node function, or Citus would
 * not send its call inside this transaction as a write (util/citus_shards.h),
 * the writer writes them.  Runs as the ledger's owner, the stream's
 * (ek_dist_ledger_check_owner): through Citus the call reaches every
 * co-located placement as that one role.  Caller: SPI connected.
 */
void
ek_dist_ledger_claim(int32 stream_id, Oid stream_relid, SegmentEvent **events, char **ids,
					 int64 *fps, char **keys, int n, int64 batch_id,
					 TimestampTz received_at, bool write_remote, bool *claimed,
					 int64 *stored_fp)
{
	Oid			ledger_relid = ek_dist_ledger_relid(stream_id);
	int64		token;
	EkRoleScope as_owner;
	NodeWrite	nw;
	bool		use_nodes = false;

	if (!OidIsValid(ledger_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream is distributed but has no distributed dedup ledger"),
				 errdetail("The stream was distributed with create_distributed_table(), not with eventkit.distribute_stream()."),
				 errhint("Distribute streams with eventkit.distribute_stream() only: make a new stream (key_partitions => 0), distribute it so, and ingest into it; Citus's undistribute_table() of this one would drop it for eventkit.")));
	for (int i = 0; i < n; i++)
	{
		claimed[i] = false;
		events[i]->stored = false;
	}

	/*
	 * The claim's token: the batch id, unique on this node; on a worker
	 * (ingest on any node) with the node's Citus group in its top 16 bits,
	 * so that it is unique in the cluster (the coordinator is group 0:
	 * its tokens are its batch ids).
	 */
	token = batch_id | ((int64) ek_citus_local_group() << 48);

	if (write_remote && ek_citus_delegates_in_transaction())
	{
		Oid			fn = node_function(stream_id, ek_citus_shard_map(ledger_relid, "user_key")->colocation);

		if (OidIsValid(fn))
		{
			Relation	shell = table_open(stream_relid, AccessShareLock);

			nw.events = events;
			nw.stream_relid = stream_relid;
			nw.stream_id = stream_id;
			nw.batch_id = batch_id;
			nw.received_at = received_at;
			nw.nparts = shell->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ?
				RelationGetPartitionDesc(shell, true)->nparts : -1;
			nw.function = quote_qualified_identifier(LEDGER_SCHEMA, get_func_name(fn));
			table_close(shell, NoLock);
			use_nodes = true;
		}
	}
	ek_as_role_begin(&as_owner, ek_relation_owner(ledger_relid), 0);
	claim_per_node(ledger_relid, ek_qualified_relname(ledger_relid), ids, fps, keys, n, token,
				   use_nodes ? &nw : NULL, claimed, stored_fp);
	ek_as_role_end(&as_owner);
}

/*
 * On the node of another node's call (pipeline/dist_node.c, through
 * dedup.h): claim n ids (ids[i] of keys[i], fingerprints fps[i]) with the
 * caller's token, in the ledger shards of this node, in the claims' order
 * (shard id, user key, id), as the current role, without the shards'
 * metadata locks, which the caller holds on its node.  Returns false, having
 * claimed nothing, when a key's shard is not on this node (Citus ran the
 * call elsewhere, or a shard moved): the caller then claims through Citus.
 */
bool
ek_dist_ledger_claim_here(Oid ledger_relid, char **ids, int64 *fps, char **keys, int n,
						  int64 token, bool *claimed, int64 *stored_fp)
{
	EkShardMap *map = ek_citus_shard_map(ledger_relid, "user_key");
	int		   *group = palloc(sizeof(int) * n);
	int64	   *shardid = palloc(sizeof(int64) * n);
	int		   *order = palloc(sizeof(int) * n);
	int32		local = ek_citus_local_group();

	claim_order(map, ids, keys, n, false, group, shardid, order);
	for (int r = 0; r < n; r++)
		if (group[order[r]] != local ||
			((r == 0 || shardid[order[r]] != shardid[order[r - 1]]) &&
			 !OidIsValid(ek_citus_shard_relid(ledger_relid, shardid[order[r]]))))
			return false;
	for (int r = 0; r < n;)
	{
		int			end = r;

		while (end < n && end - r < MAX_VALUES_ROWS && shardid[order[end]] == shardid[order[r]])
			end++;
		if (!claim_local_shard(ledger_relid, shardid[order[r]], order + r, end - r,
							   ids, fps, keys, token, claimed, stored_fp))
			elog(ERROR, "eventkit: a shard of the distributed ledger is gone");
		r = end;
	}
	return true;
}
