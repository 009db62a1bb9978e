/*-------------------------------------------------------------------------
 *
 * dist_claim.c
 *	  The claim of ids in a ledger shard of a distributed stream that is on
 *	  this node (eventkit_ledgers.dist_ledger_<id>_<shardid>, unique on
 *	  (user_key, message_id)), in C: each id's row inserted as
 *	  INSERT ... ON CONFLICT does it (nodeModifyTable.c's ExecInsert with a
 *	  speculative token), without SPI, parsing, planning, the executor and
 *	  RETURNING.  dist_ledger.c calls it for the ids of this node's shards,
 *	  on the node of an ingest call and in another node's call of the
 *	  stream's node function.
 *
 *	  Per id, in the claims' order (user key, id): the row (user_key,
 *	  message_id, fingerprint, the call's token as batch_id, now()) goes
 *	  into the heap as a speculative insertion, then into the unique index
 *	  with UNIQUE_CHECK_PARTIAL, which neither waits nor raises an error but
 *	  says whether any row, committed or in flight, holds the key already.
 *	  None: the insertion is confirmed and the id is this call's claim (one
 *	  descent of the index per new id).  Some: the insertion is killed
 *	  (heap_abort_speculative: the row is dead to everyone at once, so no
 *	  one waits for this transaction because of it) and the key is looked
 *	  up with a dirty snapshot, as the executor's unique check does: a row
 *	  committed (or this transaction's own) decides the id, a duplicate or
 *	  a conflict by its fingerprint; a row in flight is waited for (its
 *	  speculative token, or its transaction), and the id tried again.  So
 *	  two calls claiming one id on one shard give one winner, the other
 *	  waits and sees the winner's row, or claims the id after the winner
 *	  rolled back; a call that rolls back leaves no claim.  An id stored
 *	  before gets no new row version (the SQL claim updated it to get it
 *	  back through RETURNING).
 *
 *	  Only for a shard the SQL claim would treat the same way, else the
 *	  caller runs the SQL claim: a plain table with eventkit's five
 *	  columns (stored_at's default now()), no triggers, no row-level
 *	  security, no CHECK constraint, one index (the primary key's: a
 *	  btree unique on (user_key, message_id)), READ COMMITTED (the
 *	  executor raises serialization failures under REPEATABLE READ and
 *	  SERIALIZABLE, which this does not reproduce), and a role with
 *	  SELECT, INSERT and UPDATE on the shard (the rights the SQL claim
 *	  needs; without them the SQL claim raises the executor's error).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "dist_claim.h"

/* the distributed ledger's columns (dist_ledger.c makes it) */
#define CLAIM_NCOLUMNS 5

static const struct
{
	const char *name;
	Oid			type;
}			claim_columns[CLAIM_NCOLUMNS] = {
	{"user_key", TEXTOID},
	{"message_id", TEXTOID},
	{"fingerprint", INT8OID},
	{"batch_id", INT8OID},
	{"stored_at", TIMESTAMPTZOID},
};

#define COL_FINGERPRINT 3		/* attribute number */

/* whether a column default (pg_attrdef.adbin) is now() */
static bool
default_is_now(const char *adbin)
{
	Node	   *expr = stringToNode(adbin);

	return IsA(expr, FuncExpr) && ((FuncExpr *) expr)->funcid == F_NOW;
}

/*
 * Whether the shard is the table eventkit made, which the C claim writes as
 * the SQL claim would: see the file's header.
 */
static bool
shard_claimable(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rel->relrowsecurity || desc->natts != CLAIM_NCOLUMNS)
		return false;
	for (int a = 0; a < CLAIM_NCOLUMNS; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (att->attisdropped || att->attgenerated || att->atttypid != claim_columns[a].type ||
			strcmp(NameStr(att->attname), claim_columns[a].name) != 0)
			return false;
	}
	return constr != NULL && constr->num_check == 0 && constr->num_defval == 1 &&
		constr->defval[0].adnum == CLAIM_NCOLUMNS && default_is_now(constr->defval[0].adbin);
}

/*
 * The shard's one index, opened, if it is a btree unique on (user_key,
 * message_id), checked at once, plain columns; else NULL.
 */
static Relation
claim_index(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	Relation	idx;
	Form_pg_index ix;

	if (list_length(indexes) != 1)
		return NULL;
	idx = index_open(linitial_oid(indexes), RowExclusiveLock);
	ix = idx->rd_index;
	if (idx->rd_rel->relam == BTREE_AM_OID && ix->indisunique && ix->indimmediate &&
		ix->indisvalid && ix->indisready && ix->indnatts == 2 && ix->indnkeyatts == 2 &&
		ix->indkey.values[0] == 1 && ix->indkey.values[1] == 2 &&
		heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
		heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
		!ix->indisexclusion)
		return idx;
	index_close(idx, NoLock);
	return NULL;
}

/* what a look-up of a key that a row holds found */
typedef enum
{
	HOLDER_STORED,				/* a row committed, or this transaction's */
	HOLDER_WAITED,				/* a row in flight, waited for: try again */
	HOLDER_GONE,				/* no row any more: try again */
} HolderState;

/* The shard's claim: its relations and what every id's insertion uses. */
typedef struct ShardClaim
{
	Relation	rel;
	Relation	idx;
	IndexInfo  *ii;
	RegProcedure eq[2];			/* the index's equality of each key column */
	TupleTableSlot *ins;		/* the row to insert (virtual) */
	TupleTableSlot *found;		/* a row the look-up found */
	CommandId	cid;
	TransactionId xid;
	TimestampTz now;
	int64		token;
} ShardClaim;

/*
 * Find the row that holds (key, id) with a dirty snapshot, which sees rows
 * in flight and says whose they are, and wait for it if it is in flight
 * (for its speculative insertion only, when that is what it is), as
 * execIndexing.c's check_exclusion_or_unique_constraint does.  The scan is
 * ended before waiting: no buffer pin is held meanwhile.
 */
static HolderState
find_holder(ShardClaim *sc, Datum key, Datum id, int64 *stored_fp)
{
	SnapshotData dirty;
	ScanKeyData skey[2];
	IndexScanDesc scan;
	HolderState state = HOLDER_GONE;
	TransactionId xwait = InvalidTransactionId;
	uint32		spec = 0;
	ItemPointerData tid;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, sc->eq[0], key);
	skey[0].sk_collation = sc->idx->rd_indcollation[0];
	ScanKeyInit(&skey[1], 2, BTEqualStrategyNumber, sc->eq[1], id);
	skey[1].sk_collation = sc->idx->rd_indcollation[1];
	scan = index_beginscan(sc->rel, sc->idx, &dirty, 2, 0);
	index_rescan(scan, skey, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, sc->found))
	{
		bool		isnull;

		/* set by the visibility check of the row just returned */
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		if (TransactionIdIsValid(xwait))
		{
			spec = dirty.speculativeToken;
			tid = sc->found->tts_tid;
			state = HOLDER_WAITED;
			break;
		}
		*stored_fp = DatumGetInt64(slot_getattr(sc->found, COL_FINGERPRINT, &isnull));
		state = HOLDER_STORED;
		break;
	}
	ExecClearTuple(sc->found);
	index_endscan(scan);
	if (state == HOLDER_WAITED)
	{
		if (spec != 0)
			SpeculativeInsertionWait(xwait, spec);
		else
			XactLockTableWait(xwait, sc->rel, &tid, XLTW_InsertIndex);
	}
	return state;
}

/*
 * Claim one id: insert its row speculatively and its index entry with the
 * partial check; confirm it when no row held the key, else kill it and
 * settle the id by the row that holds it.  Returns whether it was claimed;
 * else *stored_fp is the stored row's fingerprint.
 */
static bool
claim_one(ShardClaim *sc, const char *key, const char *id, int64 fp, int64 *stored_fp)
{
	Datum		keyd = CStringGetTextDatum(key);
	Datum		idd = CStringGetTextDatum(id);

	for (;;)
	{
		TupleTableSlot *ins = sc->ins;
		uint32		spec;
		bool		unique;

		CHECK_FOR_INTERRUPTS();
		ExecClearTuple(ins);
		ins->tts_values[0] = keyd;
		ins->tts_values[1] = idd;
		ins->tts_values[2] = Int64GetDatum(fp);
		ins->tts_values[3] = Int64GetDatum(sc->token);
		ins->tts_values[4] = TimestampTzGetDatum(sc->now);
		memset(ins->tts_isnull, false, sizeof(bool) * CLAIM_NCOLUMNS);
		ExecStoreVirtualTuple(ins);

		spec = SpeculativeInsertionLockAcquire(sc->xid);
		table_tuple_insert_speculative(sc->rel, ins, sc->cid, 0, NULL, spec);
		/* the index's columns are the first two (claim_index) */
		unique = index_insert(sc->idx, ins->tts_values, ins->tts_isnull, &ins->tts_tid,
							  sc->rel, UNIQUE_CHECK_PARTIAL, false, sc->ii);
		table_tuple_complete_speculative(sc->rel, ins, spec, unique);
		SpeculativeInsertionLockRelease(sc->xid);
		if (unique)
			return true;
		if (find_holder(sc, keyd, idd, stored_fp) == HOLDER_STORED)
			return false;
	}
}

/*
 * Claim the ids at positions pos[0..m-1] (ids[i] of user keys keys[i],
 * fingerprints fps[i]) in the ledger shard shard_relid of this node, with
 * the call's token as their batch_id, as the current role, in the order of
 * pos: the caller gives them in the claims' order, (user key, id)
 * (dist_ledger.c's claim_order).  Sets claimed[i] of each (new: claimed by
 * this transaction), else stored_fp[i] (the fingerprint stored first).
 * Returns false, having claimed nothing, when the shard or the transaction
 * is not one the C claim handles (see the file's header): the caller runs
 * the SQL claim.
 */
bool
ek_dist_claim_shard(Oid shard_relid, const int *pos, int m, char **ids, int64 *fps,
					char **keys, int64 token, bool *claimed, int64 *stored_fp)
{
	AclMode		rights = ACL_SELECT | ACL_INSERT | ACL_UPDATE;
	ShardClaim	sc;

	if (IsolationUsesXactSnapshot() ||
		pg_class_aclmask(shard_relid, GetUserId(), rights, ACLMASK_ALL) != rights)
		return false;
	sc.rel = table_open(shard_relid, RowExclusiveLock);
	sc.idx = shard_claimable(sc.rel) ? claim_index(sc.rel) : NULL;
	if (sc.idx == NULL)
	{
		table_close(sc.rel, NoLock);
		return false;
	}
	sc.ii = BuildIndexInfo(sc.idx);
	for (int k = 0; k < 2; k++)
	{
		Oid			type = sc.idx->rd_opcintype[k];
		Oid			op = get_opfamily_member(sc.idx->rd_opfamily[k], type, type,
											 BTEqualStrategyNumber);

		if (!OidIsValid(op))
			elog(ERROR, "eventkit: no equality operator for column %d of index \"%s\"",
				 k + 1, RelationGetRelationName(sc.idx));
		sc.eq[k] = get_opcode(op);
	}
	sc.ins = MakeSingleTupleTableSlot(RelationGetDescr(sc.rel), &TTSOpsVirtual);
	sc.found = table_slot_create(sc.rel, NULL);
	sc.cid = GetCurrentCommandId(true);
	sc.xid = GetCurrentTransactionId();
	sc.now = GetCurrentTransactionStartTimestamp();
	sc.token = token;

	for (int r = 0; r < m; r++)
	{
		int			i = pos[r];

		claimed[i] = claim_one(&sc, keys[i], ids[i], fps[i], &stored_fp[i]);
		if (claimed[i])
			stored_fp[i] = fps[i];
	}

	ExecDropSingleTupleTableSlot(sc.ins);
	ExecDropSingleTupleTableSlot(sc.found);
	index_close(sc.idx, NoLock);
	table_close(sc.rel, NoLock);
	/* the claims visible to this transaction's next commands, as after a statement */
	CommandCounterIncrement();
	return true;
}
