/*-------------------------------------------------------------------------
 *
 * fold_write.c
 *	  Writing a fold's groups (fold_int.h) without a statement, as the
 *	  writer inserts rows:
 *
 *	  - the delta rows ingest makes of a batch (ek_fold_delta_insert), for
 *	    the delta tables that need no INSERT (no trigger, row-level
 *	    security or column default);
 *	  - a refresh's merge of its groups into the rollup table
 *	    (ek_fold_merge_table): the rows of the groups' range of buckets
 *	    read in one index scan, each row's group found in the fold's hash
 *	    table (merge_walk), or per group a lookup in the unique key's index;
 *	    then an update of the row found (HOT: fillfactor 50, the key never
 *	    changes) or an insert, the states merged here (count, sums, min,
 *	    max, avg parts; hlls written as hll.c writes them, a group's hashes
 *	    merged into the row's hll in C (ek_hll_union_hashes: hll_union's
 *	    bytes), the other cases joined with the extension's hll_union).  It replaced the INSERT ... ON CONFLICT
 *	    DO UPDATE, whose speculative insertion, executor and SET expressions
 *	    per group were two thirds of a refresh after a small delta.
 *
 *	  fold.c decides when, and keeps the statements for the other cases
 *	  (t-digests, triggers, row-level security, unknown columns).  The
 *	  groups' hash and equality (ek_fold_group_hash, ek_fold_group_matches)
 *	  are here, for the walk and for fold.c's hash table of groups.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "rollup/fold_int.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/spi.h"

/*
 * A group's distinct() hashes as hll_add_agg needs them: each once (adding
 * a hash twice changes nothing in an hll, nor does the order), and a NULL
 * only when there is nothing else (hll_add_agg of NULLs alone is an empty
 * hll, not NULL).
 */
void
ek_fold_distinct_values(FoldValues *v)
{
	v->n = ek_hll_distinct(v->values, v->n);
	if (v->n == 0 && v->hasnull)
	{
		v->values = palloc(sizeof(Datum));
		v->nulls = palloc(sizeof(bool));
		v->values[0] = (Datum) 0;
		v->nulls[0] = true;
		v->n = 1;
	}
	v->hasnull = false;
}

/* a group key's hash (the fold's hash table is keyed by it) */
uint32
ek_fold_group_hash(Fold *f, Datum *keys, bool *nulls)
{
	uint32		h = 0;

	for (int i = 0; i < f->nkeys; i++)
	{
		FoldKeyType *kt = &f->keytypes[i];
		uint32		k = 0;

		if (!nulls[i] && kt->hash != NULL)
			k = DatumGetUInt32(FunctionCall1Coll(kt->hash, kt->collation, keys[i]));
		else if (nulls[i])
			k = 0x9e3779b9;
		h = hash_combine(h, k);
	}
	return h;
}

/* do keys match group g's? */
bool
ek_fold_group_matches(Fold *f, FoldGroup *g, Datum *keys, bool *nulls)
{
	for (int i = 0; i < f->nkeys; i++)
	{
		FoldKeyType *kt = &f->keytypes[i];

		if (g->keynulls[i] || nulls[i])
		{
			if (g->keynulls[i] != nulls[i])
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&kt->eq, kt->collation, g->keys[i], keys[i])))
			return false;
	}
	return true;
}

/*
 * The group of these keys, or NULL if the fold has none: the merge's walk
 * finds the group of each row it reads (fold.c's find_group finds and
 * makes groups with the same hash and equality).
 */
FoldGroup *
ek_fold_lookup_group(Fold *f, Datum *keys, bool *nulls)
{
	uint32		hash = ek_fold_group_hash(f, keys, nulls);
	FoldHashEntry *e = hash_search(f->groups, &hash, HASH_FIND, NULL);

	if (e == NULL)
		return NULL;
	for (FoldGroup *g = e->first; g != NULL; g = g->next)
		if (ek_fold_group_matches(f, g, keys, nulls))
			return g;
	return NULL;
}

/* the attribute number (0-based) of column name of rel, or -1 */
static int
delta_att(Relation rel, const char *name)
{
	AttrNumber	a = get_attnum(RelationGetRelid(rel), name);

	return a > 0 ? a - 1 : -1;
}

/*
 * An executor state whose range table holds rel, and rel's result
 * relation with its indexes open: what the rows written without a
 * statement (table_multi_insert, table_tuple_update and their index
 * entries) need.  The caller closes the indexes and frees the state.
 */
static ResultRelInfo *
open_result_rel(Relation rel, EState **estate)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	*estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(*estate, list_make1(rte));
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/*
 * Insert the groups into the delta table f->delta_relid in C: the rows
 * ek_fold_merge's INSERT makes (fold_merge.c; the same values; a distinct's
 * or percentile's values as an array of the group's own), with no
 * statement, as the writer inserts (with f->delta_key in every row's
 * ek_shard_key when set: the local shard of a distributed worker delta
 * table, delta.c).  False, having done nothing, when the table needs the
 * INSERT: a trigger, row-level security, a column with a default, no
 * INSERT right, a column missing.
 */
bool
ek_fold_delta_insert(Fold *f)
{
	const RollupDef *def = f->def;
	Relation	rel = table_open(f->delta_relid, RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int		   *att = palloc((f->nkeys + 2 * f->nmeasures + 4) * sizeof(int));
	int			na = 0;
	int			a_batch = delta_att(rel, "batch_id");
	int			a_events = delta_att(rel, EK_ROLLUP_DELTA_EVENTS_COLUMN);
	int			a_skipped = delta_att(rel, EK_ROLLUP_SKIPPED_COLUMN);
	int			a_skips = f->delta_skips ? delta_att(rel, EK_ROLLUP_DELTA_SKIPS_COLUMN) : -1;
	int			a_key = f->delta_key != NULL ? delta_att(rel, EK_ROLLUP_WDELTA_KEY_COLUMN) : -1;
	bool		ok;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	CommandId	cid;
	ListCell   *lc;

	ok = rel->trigdesc == NULL && !rel->rd_rel->relrowsecurity &&
		pg_class_aclcheck(f->delta_relid, GetUserId(), ACL_INSERT) == ACLCHECK_OK &&
		a_batch >= 0 && a_events >= 0 && a_skipped >= 0 && (!f->delta_skips || a_skips >= 0) &&
		(f->delta_key == NULL ||
		 (a_key >= 0 && TupleDescAttr(desc, a_key)->atttypid == TEXTOID));
	for (int a = 0; ok && a < desc->natts; a++)
		if (TupleDescAttr(desc, a)->atthasdef || TupleDescAttr(desc, a)->attgenerated)
			ok = false;
	att[na++] = delta_att(rel, "bucket");
	foreach(lc, def->dims)
		att[na++] = delta_att(rel, ((RollupDim *) lfirst(lc))->name);
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (m->kind == RM_AVG)
		{
			att[na++] = delta_att(rel, psprintf("%s_sum", m->name));
			att[na++] = delta_att(rel, psprintf("%s_count", m->name));
		}
		else
			att[na++] = delta_att(rel, m->name);
	}
	for (int i = 0; i < na; i++)
		if (att[i] < 0)
			ok = false;
	if (!ok)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}

	rri = open_result_rel(rel, &estate);
	slot = table_slot_create(rel, NULL);
	cid = GetCurrentCommandId(true);
	for (int gi = 0; gi < f->ngroups; gi++)
	{
		FoldGroup  *g = f->order[gi];
		Datum	   *v = slot->tts_values;
		bool	   *n = slot->tts_isnull;
		int			k = 0;

		ExecClearTuple(slot);
		memset(n, true, desc->natts * sizeof(bool));
		for (; k < f->nkeys; k++)
		{
			v[att[k]] = g->keys[k];
			n[att[k]] = g->keynulls[k];
		}
		for (int i = 0; i < f->nmeasures; i++)
		{
			RollupMeasure *m = f->measures[i];
			FoldState  *st = &g->states[i];
			int			a = att[k++];

			n[a] = false;
			switch (m->kind)
			{
				case RM_COUNT:
					v[a] = Int64GetDatum(g->events);
					break;
				case RM_SUM:
				case RM_MIN:
				case RM_MAX:
				case RM_AVG:
					v[a] = NumericGetDatum(st->num);
					n[a] = st->num == NULL;
					if (m->kind == RM_AVG)
					{
						a = att[k++];
						v[a] = Int64GetDatum(st->count);
						n[a] = false;
					}
					break;
				case RM_DISTINCT:
				case RM_PERCENTILE:
					if (m->kind == RM_DISTINCT)
						ek_fold_distinct_values(&st->vals);
					/* (as the INSERT's slice of the batch's array) */
					v[a] = st->vals.n == 0 ?
						PointerGetDatum(construct_empty_array(m->kind == RM_DISTINCT ?
															  INT8OID : FLOAT8OID)) :
						ek_make_array(st->vals.values, st->vals.nulls, st->vals.n,
									  m->kind == RM_DISTINCT ? INT8OID : FLOAT8OID);
					break;
			}
		}
		v[a_batch] = Int64GetDatum(f->delta_batch);
		n[a_batch] = false;
		v[a_events] = Int64GetDatum(g->events);
		n[a_events] = false;
		v[a_skipped] = Int64GetDatum(g->skipped);
		n[a_skipped] = false;
		if (a_skips >= 0)
		{
			bool		any = false;
			Datum		sk[RSK_NREASONS];

			for (int r = 0; r < RSK_NREASONS; r++)
			{
				sk[r] = Int64GetDatum(g->skips[r]);
				any |= g->skips[r] != 0;
			}
			n[a_skips] = !any;
			if (any)
				v[a_skips] = ek_make_array(sk, NULL, RSK_NREASONS, INT8OID);
		}
		if (a_key >= 0)
		{
			v[a_key] = CStringGetTextDatum(f->delta_key);
			n[a_key] = false;
		}
		ExecStoreVirtualTuple(slot);
		if (desc->constr != NULL)
			ExecConstraints(rri, slot, estate);
		table_tuple_insert(rel, slot, cid, 0, NULL);
		if (rri->ri_NumIndices > 0)
			list_free(ek_insert_index_tuples(rri, slot, estate));
	}
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}
/*
 * The format of the rollup's hlls as hll_add_agg would make them now (from
 * hll_empty(), with the rollup's hll_log2m and the session's hll defaults):
 * a group with no more hashes than an EXPLICIT hll holds has its hll
 * written here (hll.c), without hll_add_agg's state of 128 kB zeroed per
 * group (the largest cost of a refresh after a small delta).  Other groups
 * use hll_add_agg (or, in the merge in C, unions of EXPLICIT pieces).
 * The empty hll is written without loading the hll library while it is
 * not loaded in this backend (ek_hll_session_empty: its defaults), as a
 * refresh in a new session mostly is (1.13).
 */
void
ek_fold_init_hll(Fold *f)
{
	Oid			argtypes[1] = {INT4OID};
	int			nargs = f->def->opts.hll_log2m > 0 ? 1 : 0;
	Oid			fn;
	MemoryContext old;

	f->hll_ready = true;
	fn = LookupFuncName(list_make2(makeString(f->def->hll_nsp), makeString("hll_empty")),
						nargs, argtypes, false);
	if (ek_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		return;					/* (hll_add_agg then says why) */
	f->hll_empty_fn = fn;
	old = MemoryContextSwitchTo(f->keepcxt);
	f->hll_empty = ek_hll_session_empty(fn, f->def->opts.hll_log2m);
	MemoryContextSwitchTo(old);
	(void) ek_hll_format(f->hll_empty, &f->hll_format);
}

/*
 * The merge in C.  Where each of a group's values goes in the rollup
 * table's rows (0-based attributes), and how its groups are looked up.
 */
typedef struct MergeTarget
{
	Relation	rel;
	Relation	index;			/* the unique key's index */
	int		   *keyatt;			/* per key (bucket, dimensions) */
	int		   *att;			/* per measure (avg: its sum) */
	int		   *att2;			/* avg: its count */
	int			skipped;		/* skipped_events */
	FmgrInfo   *eq;				/* per key: the index's equality */
	bool		walk;			/* the groups may be found by a walk (see below) */
	FmgrInfo	bucket_ge;		/* walk: the bucket's >= and <= */
	FmgrInfo	bucket_le;
	Oid			hll_union_fn;	/* if a measure is distinct() */
	FmgrInfo	hll_union;		/* its call, set up when first needed (hll_union_call) */
	MemoryContext cxt;			/* the merge's: for hll_union */
	int			max_sparse;		/* the hll library's, for ek_hll_union_hashes */
} MergeTarget;

/*
 * The hll library's hll_union(a, b), looked up by merge_target: the
 * library is loaded for it only here, where the merge in C cannot write
 * the union itself (hll.c), so that a refresh whose every hll hll.c
 * writes does not load the library (1.13).
 */
static Datum
hll_union_call(MergeTarget *t, Datum a, Datum b)
{
	if (t->hll_union.fn_addr == NULL)
		fmgr_info_cxt(t->hll_union_fn, &t->hll_union, t->cxt);
	return FunctionCall2(&t->hll_union, a, b);
}

/* The 0-based attribute of column name of t->rel, marked known, or -1. */
static int
merge_att(MergeTarget *t, bool *known, const char *name, Oid typid)
{
	int			a = delta_att(t->rel, name);

	if (a < 0 || (OidIsValid(typid) && TupleDescAttr(RelationGetDescr(t->rel), a)->atttypid != typid))
		return -1;
	known[a] = true;
	return a;
}

/*
 * Whether the C merge can write the rollup table t->rel (open) as the
 * statement would, and if so where everything goes: a plain table without
 * triggers or row-level security, on which the user (the rollup's owner)
 * has the rights the INSERT ... ON CONFLICT DO UPDATE needs; no column but
 * the rollup's (none generated); the unique key a plain btree NULLS NOT
 * DISTINCT on the bucket and dimensions; measures of the kinds merged here
 * (not percentile), an hll whose EXPLICIT format is known and hll_union
 * callable.
 */
static bool
merge_target(Fold *f, MergeTarget *t, ResultRelInfo *rri)
{
	const RollupDef *def = f->def;
	Relation	rel = t->rel;
	TupleDesc	desc = RelationGetDescr(rel);
	bool	   *known = palloc0(desc->natts * sizeof(bool));
	Oid			hlltype = InvalidOid;
	Oid			conoid;
	Oid			indexoid;
	ListCell   *lc;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rel->relrowsecurity ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		return false;

	t->keyatt = palloc(f->nkeys * sizeof(int));
	t->att = palloc(Max(f->nmeasures, 1) * sizeof(int));
	t->att2 = palloc(Max(f->nmeasures, 1) * sizeof(int));
	t->keyatt[0] = merge_att(t, known, "bucket", TIMESTAMPTZOID);
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		t->keyatt[1 + foreach_current_index(lc)] = merge_att(t, known, d->name, d->typid);
	}
	for (int k = 0; k < f->nkeys; k++)
		if (t->keyatt[k] < 0)
			return false;
	for (int i = 0; i < f->nmeasures; i++)
	{
		RollupMeasure *m = f->measures[i];

		t->att2[i] = 0;
		switch (m->kind)
		{
			case RM_COUNT:
				t->att[i] = merge_att(t, known, m->name, INT8OID);
				break;
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
				t->att[i] = merge_att(t, known, m->name, NUMERICOID);
				break;
			case RM_AVG:
				t->att[i] = merge_att(t, known, psprintf("%s_sum", m->name), NUMERICOID);
				t->att2[i] = merge_att(t, known, psprintf("%s_count", m->name), INT8OID);
				break;
			case RM_DISTINCT:
				t->att[i] = merge_att(t, known, m->name, InvalidOid);
				if (t->att[i] < 0)
					return false;
				if (!OidIsValid(hlltype))
					hlltype = TupleDescAttr(desc, t->att[i])->atttypid;
				else if (hlltype != TupleDescAttr(desc, t->att[i])->atttypid)
					return false;
				break;
			case RM_PERCENTILE:
				return false;	/* the statement merges t-digests */
		}
		if (t->att[i] < 0 || t->att2[i] < 0)
			return false;
	}
	t->skipped = merge_att(t, known, EK_ROLLUP_SKIPPED_COLUMN, INT8OID);
	if (t->skipped < 0)
		return false;
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && (!known[a] || att->attgenerated))
			return false;
	}

	if (OidIsValid(hlltype))
	{
		Oid			argtypes[2] = {hlltype, hlltype};
		Oid			fn;

		if (!f->hll_ready)
			ek_fold_init_hll(f);
		if (f->hll_format.explicit_max <= 0 || !OidIsValid(f->hll_empty_fn))
			return false;
		fn = LookupFuncName(list_make2(makeString(def->hll_nsp), makeString("hll_union")),
							2, argtypes, true);
		if (!OidIsValid(fn) || get_func_rettype(fn) != hlltype ||
			ek_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			return false;
		t->hll_union_fn = fn;
		t->cxt = CurrentMemoryContext;
		/* (asked only when it decides: sparseon; its default while the library is not loaded) */
		t->max_sparse = (f->hll_format.header[2] & 0x40) ?
			ek_hll_session_max_sparse(def->hll_nsp) : -1;
	}

	/* the unique key's index, among those ExecOpenIndices opened */
	conoid = get_relation_constraint_oid(RelationGetRelid(rel), f->keyname, true);
	indexoid = OidIsValid(conoid) ? get_constraint_index(conoid) : InvalidOid;
	t->index = NULL;
	for (int i = 0; i < rri->ri_NumIndices; i++)
		if (RelationGetRelid(rri->ri_IndexRelationDescs[i]) == indexoid)
			t->index = rri->ri_IndexRelationDescs[i];
	if (t->index == NULL || t->index->rd_rel->relam != BTREE_AM_OID ||
		!t->index->rd_index->indisunique || !t->index->rd_index->indnullsnotdistinct ||
		!t->index->rd_index->indimmediate ||
		t->index->rd_index->indnkeyatts != f->nkeys ||
		RelationGetIndexPredicate(t->index) != NIL)
		return false;
	t->eq = palloc(f->nkeys * sizeof(FmgrInfo));
	for (int k = 0; k < f->nkeys; k++)
	{
		Oid			opcintype = t->index->rd_opcintype[k];
		Oid			op;

		if (t->index->rd_index->indkey.values[k] != t->keyatt[k] + 1)
			return false;
		op = get_opfamily_member(t->index->rd_opfamily[k], opcintype, opcintype,
								 BTEqualStrategyNumber);
		if (!OidIsValid(op))
			return false;
		fmgr_info(get_opcode(op), &t->eq[k]);
	}

	/* the walk reads a range of buckets: bucket >= lo AND bucket <= hi */
	{
		Oid			opfamily = t->index->rd_opfamily[0];
		Oid			opcintype = t->index->rd_opcintype[0];
		Oid			ge = get_opfamily_member(opfamily, opcintype, opcintype,
											 BTGreaterEqualStrategyNumber);
		Oid			le = get_opfamily_member(opfamily, opcintype, opcintype,
											 BTLessEqualStrategyNumber);

		t->walk = OidIsValid(ge) && OidIsValid(le);
		if (t->walk)
		{
			fmgr_info(get_opcode(ge), &t->bucket_ge);
			fmgr_info(get_opcode(le), &t->bucket_le);
		}
	}
	return true;
}

/*
 * A group's new hll, as the statement makes it (NULL: no values): the
 * EXPLICIT hll of its hashes; hll_empty() when its only value is NULL;
 * when it has more hashes than an EXPLICIT hll holds, the union of
 * EXPLICIT pieces as eventkit.rollup_hll makes it (hll.c: the same bytes as
 * hll_add_agg's).
 */
static Datum
group_hll(Fold *f, MergeTarget *t, FoldValues *v, bool *isnull)
{
	int			chunk = f->hll_format.explicit_max;
	Datum		acc;

	*isnull = false;
	if (v->n == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (v->nulls[0])
		return f->hll_empty;
	acc = ek_hll_explicit(&f->hll_format, v->values, Min(chunk, v->n));
	for (int i = chunk; i < v->n; i += chunk)
		acc = hll_union_call(t, acc, ek_hll_explicit(&f->hll_format, v->values + i,
													 Min(chunk, v->n - i)));
	return acc;
}

static Datum
add_int8(Datum a, int64 b)
{
	int64		r;

	if (pg_add_s64_overflow(DatumGetInt64(a), b, &r))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	return Int64GetDatum(r);
}

/*
 * Set column a of the new row (v, n; the old row's values when found) to
 * the merge of the old value and the new one (new, newnull), as the
 * statement's SET list (definition.c, ek_rollup_append_merge) does:
 * numeric sums add (a NULL side is left out), min and max as LEAST and
 * GREATEST (the old value on a tie), hlls with hll_union.
 */
static void
merge_value(MergeTarget *t, RollupMeasureKind kind, bool found, Datum *v, bool *n, int a,
			Datum new, bool newnull)
{
	if (!found || n[a])
	{
		v[a] = new;
		n[a] = newnull;
		return;
	}
	if (newnull)
		return;					/* the old value */
	switch (kind)
	{
		case RM_SUM:
		case RM_AVG:
			v[a] = DirectFunctionCall2(numeric_add, v[a], new);
			break;
		case RM_MIN:
			if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, new, v[a])) < 0)
				v[a] = new;
			break;
		case RM_MAX:
			if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, new, v[a])) > 0)
				v[a] = new;
			break;
		case RM_DISTINCT:
			v[a] = hll_union_call(t, v[a], new);
			break;
		default:
			elog(ERROR, "eventkit: unexpected measure kind %d", (int) kind);
	}
}

/* Add bucket to the buckets the fold merged into (def->touched). */
static void
add_touched(RollupTouched *t, Datum bucket)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	if (t->n == t->max)
	{
		t->max = Max(64, t->max * 2);
		t->buckets = t->buckets ? repalloc(t->buckets, t->max * sizeof(Datum)) :
			palloc(t->max * sizeof(Datum));
	}
	t->buckets[t->n++] = bucket;	/* timestamptz: by value */
	MemoryContextSwitchTo(old);
}

/* What merging one group needs (ek_fold_merge_table) */
typedef struct MergeRun
{
	Fold	   *f;
	MergeTarget *t;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *oldslot;	/* the row found */
	TupleTableSlot *newslot;
	Snapshot	snapshot;
	CommandId	cid;
	MemoryContext groupcxt;		/* reset per group */
	FoldGroup **retry;			/* the groups left to the statement */
	int			nretry;
} MergeRun;

/*
 * Merge group g into the row in m->oldslot (found) or into a new row:
 * the row updated with the merged states, or inserted with its index
 * entries.  A row changed by another transaction since the snapshot
 * leaves g to the statement (m->retry).
 */
static void
merge_group(MergeRun *m, FoldGroup *g, bool found)
{
	Fold	   *f = m->f;
	const RollupDef *def = f->def;
	MergeTarget *t = m->t;
	Relation	rel = t->rel;
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *oldslot = m->oldslot;
	TupleTableSlot *newslot = m->newslot;
	Datum	   *v = newslot->tts_values;
	bool	   *n = newslot->tts_isnull;
	MemoryContext old;

	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(m->groupcxt);
	old = MemoryContextSwitchTo(m->groupcxt);
	ExecClearTuple(newslot);
	if (found)
	{
		slot_getallattrs(oldslot);
		memcpy(v, oldslot->tts_values, desc->natts * sizeof(Datum));
		memcpy(n, oldslot->tts_isnull, desc->natts * sizeof(bool));
	}
	else
	{
		memset(n, true, desc->natts * sizeof(bool));
		for (int k = 0; k < f->nkeys; k++)
		{
			v[t->keyatt[k]] = g->keys[k];
			n[t->keyatt[k]] = g->keynulls[k];
		}
	}
	for (int i = 0; i < f->nmeasures; i++)
	{
		RollupMeasure *me = f->measures[i];
		FoldState  *st = &g->states[i];
		int			a = t->att[i];
		Datum		hll;
		bool		hllnull;

		switch (me->kind)
		{
			case RM_COUNT:
				v[a] = found && !n[a] ? add_int8(v[a], g->events) : Int64GetDatum(g->events);
				n[a] = false;
				break;
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
			case RM_AVG:
				merge_value(t, me->kind, found, v, n, a, NumericGetDatum(st->num),
							st->num == NULL);
				if (me->kind == RM_AVG)
				{
					a = t->att2[i];
					v[a] = found && !n[a] ? add_int8(v[a], st->count) :
						Int64GetDatum(st->count);
					n[a] = false;
				}
				break;
			case RM_DISTINCT:
				ek_fold_distinct_values(&st->vals);
				/* (a group whose only value is NULL: no hashes, an EMPTY hll) */
				if (found && !n[a] && st->vals.n > 0 &&
					ek_hll_union_hashes(&f->hll_format, v[a], st->vals.values,
										st->vals.nulls[0] ? 0 : st->vals.n,
										t->max_sparse, &hll))
				{
					v[a] = hll;
					break;
				}
				hll = group_hll(f, t, &st->vals, &hllnull);
				merge_value(t, me->kind, found, v, n, a, hll, hllnull);
				break;
			case RM_PERCENTILE:
				elog(ERROR, "eventkit: percentile in the rollup merge in C");
		}
	}
	v[t->skipped] = found && !n[t->skipped] ? add_int8(v[t->skipped], g->skipped) :
		Int64GetDatum(g->skipped);
	n[t->skipped] = false;
	ExecStoreVirtualTuple(newslot);
	if (desc->constr != NULL)
		ExecConstraints(m->rri, newslot, m->estate);

	if (found)
	{
		EkUpdateIndexes update_indexes;
		TM_Result	result;

		result = ek_tuple_update(rel, &oldslot->tts_tid, newslot, m->cid, m->snapshot,
								 &update_indexes);
		switch (result)
		{
			case TM_Ok:
				ek_update_indexes(m->rri, newslot, m->estate, update_indexes);
				break;
			case TM_Updated:
			case TM_Deleted:
				/* changed by another transaction: the statement's work */
				m->retry[m->nretry++] = g;
				break;
			case TM_SelfModified:
				elog(ERROR, "eventkit: rollup group merged twice in one merge");
				break;
			default:
				elog(ERROR, "eventkit: unexpected result %d of a rollup row update",
					 (int) result);
		}
		MemoryContextSwitchTo(old);
		ExecClearTuple(oldslot);
		if (result != TM_Ok)
			return;
	}
	else
	{
		table_tuple_insert(rel, newslot, m->cid, 0, NULL);
		if (m->rri->ri_NumIndices > 0)
			list_free(ek_insert_index_tuples(m->rri, newslot, m->estate));
		MemoryContextSwitchTo(old);
	}
	ResetPerTupleExprContext(m->estate);
	if (def->touched != NULL)
		add_touched(def->touched, g->keys[0]);
}

/*
 * The walk: the rollup rows of the groups' buckets read in one index scan
 * (bucket >= the first AND bucket <= the last), each row's group found in
 * the fold's hash table (ek_fold_lookup_group) and merged.  A refresh after
 * +1% touches most of the recent rows (late events spread its groups over
 * the whole range): a lookup per group (a descent from the index's root)
 * cost ~11,000 instructions, a step to the next row about 1,700 and the
 * hash lookup about 1,100 (1M events after +1%).  The walk gives up after
 * MERGE_WALK_ROWS(ngroups) rows (a few groups in a wide range of buckets:
 * the lookups are cheaper), leaving the groups it has not merged to the
 * lookups.  Merged groups are marked (g->merged).  Returns whether it read
 * the whole range: then a group it did not find has no row.
 *
 * The scan's snapshot was taken before the merge's writes (cid): the row
 * versions the merge writes are not seen, the old ones are; each row is
 * read once.
 */
#define MERGE_WALK_ROWS(ngroups) (2 * (int64) (ngroups) + 64)

static bool
merge_walk(MergeRun *m, Relation index)
{
	Fold	   *f = m->f;
	MergeTarget *t = m->t;
	TimestampTz lo = 0;
	TimestampTz hi = 0;
	ScanKeyData sk[2];
	IndexScanDesc scan;
	Datum	   *keys = palloc(f->nkeys * sizeof(Datum));
	bool	   *nulls = palloc(f->nkeys * sizeof(bool));
	int64		budget = MERGE_WALK_ROWS(f->ngroups);
	int64		nread = 0;
	int			nmerged = 0;
	bool		complete = true;

	for (int gi = 0; gi < f->ngroups; gi++)
	{
		FoldGroup  *g = f->order[gi];
		TimestampTz b;

		if (g->keynulls[0])
			return false;		/* (no bucket: no range to read) */
		b = DatumGetTimestampTz(g->keys[0]);
		if (gi == 0 || b < lo)
			lo = b;
		if (gi == 0 || b > hi)
			hi = b;
	}
	ScanKeyEntryInitializeWithInfo(&sk[0], 0, 1, BTGreaterEqualStrategyNumber, InvalidOid,
								   index->rd_indcollation[0], &t->bucket_ge,
								   TimestampTzGetDatum(lo));
	ScanKeyEntryInitializeWithInfo(&sk[1], 0, 1, BTLessEqualStrategyNumber, InvalidOid,
								   index->rd_indcollation[0], &t->bucket_le,
								   TimestampTzGetDatum(hi));
	scan = index_beginscan(t->rel, index, m->snapshot, 2, 0);
	index_rescan(scan, sk, 2, NULL, 0);
	while (nmerged < f->ngroups)
	{
		FoldGroup  *g;

		CHECK_FOR_INTERRUPTS();
		if (++nread > budget)
		{
			complete = false;
			break;
		}
		if (!index_getnext_slot(scan, ForwardScanDirection, m->oldslot))
			break;
		for (int k = 0; k < f->nkeys; k++)
			keys[k] = slot_getattr(m->oldslot, t->keyatt[k] + 1, &nulls[k]);
		g = ek_fold_lookup_group(f, keys, nulls);
		if (g == NULL || g->merged)
			continue;
		g->merged = true;
		nmerged++;
		merge_group(m, g, true);
	}
	index_endscan(scan);
	ExecClearTuple(m->oldslot);
	return complete;
}

/*
 * Merge the groups into the rollup table def->relid without a statement:
 * the rows of the groups found by the walk (merge_walk) or, for the groups
 * it leaves, a lookup each in the unique key's index (the bucket and the
 * dimensions, a NULL as IS NULL: the key is NULLS NOT DISTINCT); then an
 * update of the row found with the merged states (HOT when it fits in its
 * page: the key never changes and the table has fillfactor 50; the other
 * indexes only when not HOT) or an insert with its index entries — what
 * INSERT ... ON CONFLICT DO UPDATE does, without its executor per row, its
 * speculative insertion and its SET expressions.  The updates take the row
 * lock as UPDATE does; refreshes of one rollup are serialized (refresh.c),
 * readers see either version (MVCC).  A row changed by another transaction
 * since the snapshot (a hand-written UPDATE or DELETE) leaves its group to
 * the statement: those groups stay in f->order (f->ngroups of them) and the
 * result is false.  False with the groups untouched when the table or the
 * measures need the statement (merge_target), or in a test build with
 * eventkit.testing_rollup_sql_merge on.
 */
bool
ek_fold_merge_table(Fold *f)
{
	const RollupDef *def = f->def;
	MergeTarget t;
	MergeRun	m;
	Relation	rel;
	IndexScanDesc scan = NULL;
	ScanKeyData *sk;
	bool		complete = false;

	if (ek_testing_rollup_sql_merge || !OidIsValid(def->relid) || f->keyname == NULL)
		return false;
	memset(&t, 0, sizeof(t));
	memset(&m, 0, sizeof(m));
	rel = t.rel = table_open(def->relid, RowExclusiveLock);
	m.f = f;
	m.t = &t;
	m.rri = open_result_rel(rel, &m.estate);
	if (!merge_target(f, &t, m.rri))
	{
		ExecCloseIndices(m.rri);
		FreeExecutorState(m.estate);
		table_close(rel, RowExclusiveLock);
		return false;
	}

	/* the rows the fold's earlier statements (and merges) wrote are seen */
	CommandCounterIncrement();
	m.snapshot = RegisterSnapshot(GetTransactionSnapshot());
	m.cid = GetCurrentCommandId(true);
	m.oldslot = table_slot_create(rel, NULL);
	m.newslot = table_slot_create(rel, NULL);
	m.retry = palloc(Max(f->ngroups, 1) * sizeof(FoldGroup *));
	m.groupcxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit rollup merge",
									   ALLOCSET_DEFAULT_SIZES);
	for (int gi = 0; gi < f->ngroups; gi++)
		f->order[gi]->merged = false;
	if (t.walk && f->ngroups > 1 && !ek_testing_rollup_merge_lookups)
		complete = merge_walk(&m, t.index);

	/* the groups the walk left: a row for each, found by a lookup or (complete) none */
	sk = palloc(f->nkeys * sizeof(ScanKeyData));
	for (int gi = 0; gi < f->ngroups; gi++)
	{
		FoldGroup  *g = f->order[gi];
		bool		found = false;

		if (g->merged)
			continue;
		if (!complete)
		{
			if (scan == NULL)
				scan = index_beginscan(rel, t.index, m.snapshot, f->nkeys, 0);
			for (int k = 0; k < f->nkeys; k++)
			{
				if (g->keynulls[k])
					ScanKeyEntryInitialize(&sk[k], SK_ISNULL | SK_SEARCHNULL, k + 1,
										   InvalidStrategy, InvalidOid, InvalidOid,
										   InvalidOid, (Datum) 0);
				else
					ScanKeyEntryInitializeWithInfo(&sk[k], 0, k + 1, BTEqualStrategyNumber,
												   InvalidOid, t.index->rd_indcollation[k],
												   &t.eq[k], g->keys[k]);
			}
			/* (the scan allocates what lives as long as it, e.g. btree's killed items) */
			index_rescan(scan, sk, f->nkeys, NULL, 0);
			found = index_getnext_slot(scan, ForwardScanDirection, m.oldslot);
		}
		merge_group(&m, g, found);
	}
	if (scan != NULL)
		index_endscan(scan);
	ExecDropSingleTupleTableSlot(m.oldslot);
	ExecDropSingleTupleTableSlot(m.newslot);
	MemoryContextDelete(m.groupcxt);
	UnregisterSnapshot(m.snapshot);
	ExecCloseIndices(m.rri);
	FreeExecutorState(m.estate);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	memcpy(f->order, m.retry, m.nretry * sizeof(FoldGroup *));
	f->ngroups = m.nretry;
	return m.nretry == 0;
}

/*
 * Delete the n delta rows a refresh read (their ctids) from the delta table
 * relid, as DELETE would (no index entry to remove: VACUUM does).  False,
 * having done nothing, when the table needs the statement: a trigger,
 * row-level security, no DELETE right.  Every delta row of a refresh's
 * range was written by a committed ingest and is deleted only by a refresh
 * (serialized: refresh.c): a row deleted or changed by another transaction
 * meanwhile is an error, and the refresh is rolled back.
 */
bool
ek_fold_delete_deltas(Oid relid, ItemPointerData *tids, int n)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	Snapshot	snapshot;
	CommandId	cid;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rel->relrowsecurity ||
		pg_class_aclcheck(relid, GetUserId(), ACL_DELETE) != ACLCHECK_OK)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	cid = GetCurrentCommandId(true);
	for (int i = 0; i < n; i++)
	{
		TM_FailureData tmfd;
		TM_Result	result;

		CHECK_FOR_INTERRUPTS();
		result = table_tuple_delete(rel, &tids[i], cid, snapshot, InvalidSnapshot, true,
									&tmfd, false);
		if (result != TM_Ok)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not delete a delta row of \"%s\": it was changed meanwhile",
							RelationGetRelationName(rel)),
					 errdetail("Only a refresh deletes the delta rows of its range."),
					 errhint("Refresh the rollup again.")));
	}
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}
