/*-------------------------------------------------------------------------
 *
 * dist_node.c
 *	  The node side of an ingest call on a stream distributed on Citus:
 *	  eventkit_dist_node_ingest, the C function of each distributed
 *	  stream's node function eventkit_ledgers.dist_node_<stream_id>
 *	  (pipeline/dedup/dist_ledger.c makes it, distributed by Citus
 *	  co-located with the stream's ledger, with force_delegation).  The
 *	  node of a call sends each other node that holds shards of its batch
 *	  one call of it, with that node's ids and their events' rows (column
 *	  arrays: times as int8, jsonb as text, parsed here with ingest's fast
 *	  JSON parser); Citus
 *	  runs it on that node inside the call's distributed transaction, as a
 *	  write its two-phase commit covers.  There it claims the ids in the
 *	  node's ledger shards (in the claims' order: shard id, user key, id)
 *	  and writes the rows of the new ones into the node's stream shards
 *	  with the writer's fast path, then answers, for each id, whether it
 *	  was claimed (else the fingerprint stored first) and whether its row
 *	  was written: one round trip per node instead of a claim statement
 *	  and a write statement through Citus.
 *
 *	  It does nothing and answers no rows where it must not act, and the
 *	  node of the call then claims and writes through Citus as before: run
 *	  on the node of the call itself (Citus ran it locally), outside a
 *	  transaction block (not inside the call's distributed transaction), or
 *	  where a key's shard is not on this node.  A row the fast path does not
 *	  write here (a partition this node does not see yet, a shard with
 *	  triggers or row-level security) is answered not written: the node of
 *	  the call writes it through Citus.
 *
 *	  Runs as the role Citus connected as, the stream's owner (ingest
 *	  reaches Citus as that role), which must have INSERT on the stream
 *	  and SELECT, INSERT and UPDATE on its ledger (checked here: the fast
 *	  path writes without the executor's checks).
 *
 *	  A call's work (the rows parsed, the claims, the writes) is allocated
 *	  in a memory context the backend keeps from call to call, reset after
 *	  each, whose first block (CALL_MEMORY bytes) is never freed: the
 *	  backends that serve these calls are Citus's cached connections, and
 *	  memory freed at the end of each call went back to the kernel (glibc
 *	  trims its heap, and unmaps large blocks) only to be faulted in again
 *	  by the next call, which under perf was half of a call's CPU.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "utils/tuplestore.h"

#include "pipeline/columns.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/json_parse.h"
#include "pipeline/writer.h"
#include "util/citus.h"
#include "util/citus_shards.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_dist_node_ingest);

/* a call's memory: kept by the backend, reset after each call */
#define CALL_MEMORY (8 * 1024 * 1024)
static MemoryContext call_context = NULL;

/* the node function's arguments (dist_ledger.c makes it) */
#define ARG_STREAM 1
#define ARG_STREAM_ID 2
#define ARG_CALLER_GROUP 3
#define ARG_TOKEN 4
#define ARG_BATCH_ID 5
#define ARG_NPARTS 6
#define ARG_FPS 7
#define ARG_COLUMNS 8			/* an array per column but the batch id's */

/* The elements of array argument a, which must have n of them (n < 0: any). */
static int
array_arg(FunctionCallInfo fcinfo, int a, Oid elemtype, Datum **elems, bool **nulls, int n)
{
	ArrayType  *arr;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			count;

	if (PG_ARGISNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument %d of a node function must not be null", a + 1)));
	arr = PG_GETARG_ARRAYTYPE_P(a);
	if (ARR_ELEMTYPE(arr) != elemtype)
		elog(ERROR, "eventkit: argument %d of a node function has the wrong type", a + 1);
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, elems, nulls, &count);
	if (n >= 0 && count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the arrays given to a node function differ in length")));
	return count;
}

/* jsonb of JSON text, with ingest's fast parser (jsonb_in where it declines) */
static Datum
text_to_jsonb(text *t)
{
	Jsonb	   *jb = ek_json_to_jsonb(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	if (jb != NULL)
		return JsonbPGetDatum(jb);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(t)));
}

/*
 * Write the claimed rows (claimed[i]) into this node's stream shards with
 * the fast path, shard by shard (shard index order); written[i] says
 * which were (a shard the fast path does not take, or not here: none of
 * its rows).
 */
static void
write_claimed(Oid stream_relid, int nparts, Datum **cols, bool **nulls, char **keys,
			  const bool *claimed, int n, bool *written)
{
	EkShardMap *map = ek_citus_shard_map(stream_relid, "user_key");
	int		   *shard = palloc(sizeof(int) * n);
	bool	   *used = palloc0(sizeof(bool) * Max(map->nshards, 1));
	int		   *rows = palloc(sizeof(int) * Max(n, 1));
	int32		local = ek_citus_local_group();

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		written[i] = false;
		shard[i] = claimed[i] ? ek_citus_shard_index(map, keys[i]) : -1;
		if (shard[i] >= 0)
			used[shard[i]] = true;
	}
	ek_citus_shards_read(map);	/* (the caller holds their locks) */
	for (int s = 0; s < map->nshards; s++)
	{
		Oid			shard_rel;
		int			m = 0;

		if (!used[s] || map->groups[s] != local)
			continue;
		shard_rel = ek_citus_shard_relid(stream_relid, map->shardids[s]);
		if (!OidIsValid(shard_rel))
			continue;
		for (int i = 0; i < n; i++)
			if (shard[i] == s)
				rows[m++] = i;
		if (ek_write_shard_rows(shard_rel, nparts, cols, nulls, rows, m))
			for (int r = 0; r < m; r++)
				written[rows[r]] = true;
	}
}

/*
 * eventkit_ledgers.dist_node_<id>(key, stream, stream_id, caller_group,
 * token, batch_id, nparts, fingerprints, <a column array each>) RETURNS
 * TABLE (pos, fingerprint, claimed, written): one row per id given (pos:
 * 0-based), or none when it did nothing (see the file's header).
 */
Datum
eventkit_dist_node_ingest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			stream_relid;
	Oid			ledger_relid;
	Oid			role = GetUserId();
	int32		stream_id;
	int64		token;
	int64		batch_id;
	int			nparts;
	Datum	   *fps_d;
	bool	   *fps_null;
	Datum	   *cols[SC_NCOLUMNS];
	bool	   *nulls[SC_NCOLUMNS];
	char	  **ids;
	char	  **keys;
	int64	   *fps;
	bool	   *claimed;
	int64	   *stored_fp;
	bool	   *written;
	int			n;
	int			a = ARG_COLUMNS;
	EkRoleScope as_role;
	MemoryContext caller_context;
	bool		done;
	AclMode		ledger_rights = ACL_SELECT | ACL_INSERT | ACL_UPDATE;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = ARG_STREAM; i < ARG_FPS; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of a node function must not be null", i + 1)));

	/*
	 * Not on the node of the call, and inside its transaction: else
	 * nothing, and the caller claims and writes through Citus
	 */
	if (!ek_citus_present() || ek_citus_local_group() == PG_GETARG_INT32(ARG_CALLER_GROUP) ||
		!IsTransactionBlock())
		PG_RETURN_NULL();

	/*
	 * No lock on the stream's table here (a shell on this node): the node
	 * of the call holds its own, and a remote write of Citus's takes only
	 * the shards' (create_rollup's LOCK TABLE on every node waits for the
	 * calls running on each node, not for their remote parts: locking the
	 * shell here closed a cycle with it, TAP 057)
	 */
	stream_relid = RangeVarGetRelid(makeRangeVarFromNameList(textToQualifiedNameList(PG_GETARG_TEXT_PP(ARG_STREAM))),
									NoLock, false);
	stream_id = PG_GETARG_INT32(ARG_STREAM_ID);
	token = PG_GETARG_INT64(ARG_TOKEN);
	batch_id = PG_GETARG_INT64(ARG_BATCH_ID);
	nparts = PG_GETARG_INT32(ARG_NPARTS);
	ledger_relid = ek_dedup_dist_ledger_relid(stream_id);
	if (ek_citus_table_kind(stream_relid) != EK_CITUS_HASH || !OidIsValid(ledger_relid) ||
		ek_relation_owner(ledger_relid) != ek_relation_owner(stream_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" is not a stream distributed by eventkit.distribute_stream() with ledger %d",
						get_rel_name(stream_relid), stream_id)));
	if (pg_class_aclcheck(stream_relid, role, ACL_INSERT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(stream_relid));
	if (pg_class_aclmask(ledger_relid, role, ledger_rights, ACLMASK_ALL) != ledger_rights)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(ledger_relid));

	/* the ids, their fingerprints and rows, in the call's memory */
	if (call_context == NULL)
		call_context = AllocSetContextCreate(TopMemoryContext, "eventkit node call",
											 CALL_MEMORY, 1024 * 1024, CALL_MEMORY);
	MemoryContextReset(call_context);	/* (after an error in the last call) */
	caller_context = MemoryContextSwitchTo(call_context);
	n = array_arg(fcinfo, ARG_FPS, INT8OID, &fps_d, &fps_null, -1);
	for (int c = 0; c < SC_NCOLUMNS; c++)
	{
		Oid			type = ek_stream_columns[c].type == TIMESTAMPTZOID ? INT8OID :
			ek_stream_columns[c].type == JSONBOID ? TEXTOID : ek_stream_columns[c].type;

		if (c == SC_BATCH_ID)
		{
			cols[c] = palloc(sizeof(Datum) * Max(n, 1));
			nulls[c] = palloc0(sizeof(bool) * Max(n, 1));
			for (int i = 0; i < n; i++)
				cols[c][i] = Int64GetDatum(batch_id);
			continue;
		}
		(void) array_arg(fcinfo, a++, type, &cols[c], &nulls[c], n);
		if (ek_stream_columns[c].type == JSONBOID)
			for (int i = 0; i < n; i++)
				if (!nulls[c][i])
					cols[c][i] = text_to_jsonb(DatumGetTextPP(cols[c][i]));
	}
	ids = palloc(sizeof(char *) * Max(n, 1));
	keys = palloc(sizeof(char *) * Max(n, 1));
	fps = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (fps_null[i] || nulls[SC_MESSAGE_ID][i] || nulls[SC_USER_KEY][i] || nulls[SC_TS][i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a row given to a node function has no id, user key, time or fingerprint")));
		ids[i] = TextDatumGetCString(cols[SC_MESSAGE_ID][i]);
		keys[i] = TextDatumGetCString(cols[SC_USER_KEY][i]);
		fps[i] = DatumGetInt64(fps_d[i]);
	}
	claimed = palloc0(sizeof(bool) * Max(n, 1));
	stored_fp = palloc0(sizeof(int64) * Max(n, 1));
	written = palloc0(sizeof(bool) * Max(n, 1));

	/* the claims here, then the new ones' rows (restricted, search_path pinned) */
	SPI_connect();
	MemoryContextSwitchTo(call_context);
	ek_as_role_begin(&as_role, role, 0);
	done = n > 0 && ek_dedup_claim_here(ledger_relid, ids, fps, keys, n, token, claimed,
										stored_fp);
	if (done)
		write_claimed(stream_relid, nparts, cols, nulls, keys, claimed, n, written);
	ek_as_role_end(&as_role);
	SPI_finish();				/* (back in call_context) */
	MemoryContextSwitchTo(caller_context);
	if (!done)
	{
		MemoryContextReset(call_context);
		PG_RETURN_NULL();
	}

	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		isnull[4] = {false, false, false, false};

		values[0] = Int32GetDatum(i);
		values[1] = Int64GetDatum(claimed[i] ? fps[i] : stored_fp[i]);
		values[2] = BoolGetDatum(claimed[i]);
		values[3] = BoolGetDatum(written[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	MemoryContextReset(call_context);
	PG_RETURN_NULL();
}
