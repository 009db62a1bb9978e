/*-------------------------------------------------------------------------
 *
 * fold_write.c
 *	  Writing a fold's groups (fold_int.h) without a statement, as the
 *	  writer inserts rows: the delta rows ingest makes of a batch
 *	  (ek_fold_delta_insert), for the delta tables that need no INSERT
 *	  (no trigger, row-level security or column default).  fold.c decides
 *	  when, and keeps the statements for the other cases.
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

/* the attribute number (0-based) of column name of rel, or -1 */
static int
delta_att(Relation rel, const char *name)
{
	AttrNumber	a = get_attnum(RelationGetRelid(rel), name);

	return a > 0 ? a - 1 : -1;
}

/*
 * Insert the groups into the delta table f->delta_relid in C: the rows
 * fold_merge's INSERT makes (the same values; a distinct's or percentile's
 * values as an array of the group's own), with no statement, as the
 * writer inserts.  False, having done nothing, when the table needs the
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
	bool		ok;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	CommandId	cid;
	ListCell   *lc;

	ok = rel->trigdesc == NULL && !rel->rd_rel->relrowsecurity &&
		pg_class_aclcheck(f->delta_relid, GetUserId(), ACL_INSERT) == ACLCHECK_OK &&
		a_batch >= 0 && a_events >= 0 && a_skipped >= 0 && (!f->delta_skips || a_skips >= 0);
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

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = f->delta_relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
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
