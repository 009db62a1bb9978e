/*-------------------------------------------------------------------------
 *
 * fold.c
 *	  The fold of a rollup refresh: the stream rows with batch_id in
 *	  (from, to] aggregated into the rollup's partial states and merged into
 *	  the rollup table.  refresh.c decides the range (the safe watermark).
 *
 *	  Reading.  One plain SELECT of what the rollup needs (its bucket, the
 *	  dimensions, the measures' inputs) WHERE batch_id > $1 AND batch_id <=
 *	  $2, planned with the actual range, so that each partition is read
 *	  through its batch_id index (a BRIN since 1.5, as in 1.1; the btree
 *	  of a stream whose first rollup 1.2 to 1.4 made works too).  Its rows
 *	  are not returned: the executor hands each one to a DestReceiver
 *	  (SPI_execute_plan_extended with a dest), which aggregates it at once.
 *	  Nothing is copied, sorted or materialized per row.
 *
 *	  Aggregating, in C: groups (bucket, dimensions) in a hash table keyed
 *	  with each key type's hash and equality functions; per group the number
 *	  of events and of skipped ones and, per measure, the numeric sum, min,
 *	  max or avg parts (numeric arithmetic, exact, as sum(numeric) is), the
 *	  hll hash of each distinct() value (the hll extension's
 *	  hll_hash_text(value, 0), computed in C by hll_hash.c without the
 *	  library or a lookup of its function) or each percentile() value.  A JSON
 *	  path of a numeric measure is followed in C inside the stored jsonb, with
 *	  the semantics of the #> operator and no copy of the value; a JSON null
 *	  or a missing key is a NULL.  When the groups take more than work_mem
 *	  (a refresh after a long pause, a backfill), they are merged at once
 *	  and the scan goes on with none.
 *
 *	  Bad values (the rules are in rollup.h and values.c, whose SQL
 *	  functions apply the same in the realtime view): a measure's value
 *	  that is present but not a number, or a number outside the measure's
 *	  range (ek_rollup_number_reason), is left out of that measure as a NULL
 *	  would be, and counted, per group in skipped_events (the events with
 *	  such a value) and per reason in the fold's RollupSkips (the values); a
 *	  long text dimension value is bounded (ek_rollup_bound_text) before its
 *	  group is looked up, and counted.  So no value can fail a fold: not at
 *	  ingest (the batch's events are stored), not at refresh.
 *
 *	  Merging (ek_fold_merge, fold_merge.c): in C when the rollup table and
 *	  the measures allow (fold_write.c: per group a lookup in the unique
 *	  key's index, then an update of the row found or an insert, states
 *	  merged in C, hlls by the extension's hll_union), else one INSERT ...
 *	  SELECT ... FROM ROWS FROM (unnest(<an array with one element per
 *	  group>), ...) ON CONFLICT DO UPDATE, with the SET list of
 *	  definition.c: for t-digests, tables with triggers or row-level
 *	  security, and the groups whose row another transaction changed
 *	  meanwhile.  A group's t-digest (and an hll of
 *	  many hashes) is built in that statement by the extensions' own
 *	  aggregates (tdigest, hll_add_agg) over the group's slice of one array
 *	  of values (hashes), so their format is theirs.
 *
 *	  Deltas (delta.c): ingest uses the same aggregation over the
 *	  batch's values and inserts the groups into the rollup's delta table
 *	  (their hashes and values as arrays) instead of merging them
 *	  (ek_rollup_fold_delta); a refresh reads those delta rows back into the
 *	  groups (fold_delta_row), adds the batches that have none from the
 *	  stream, and merges once (ek_rollup_fold_deltas).  When delta.c
 *	  evaluated the batch's rows in C (ek_rollup_fold_delta_rows), the
 *	  groups go into the delta table in C as well (fold_write.c: the
 *	  INSERT's values, no statement), unless the table needs the INSERT.
 *
 *	  The realtime view computes the same partial states in SQL
 *	  (definition.c); the rollup tests compare both with a from-scratch
 *	  GROUP BY.
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
#include "catalog/pg_collation.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/params.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "catalog/batches.h"
#include "rollup/fold.h"
#include "rollup/fold_int.h"
#include "rollup/hll.h"
#include "rollup/values.h"
#include "util/citus.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/spi.h"


static void reset_groups(Fold *f);

static void
fold_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
fold_shutdown(DestReceiver *self)
{
}

static void
fold_destroy(DestReceiver *self)
{
}

static void
read_input(Fold *f, int s, Datum value, bool isnull, FoldInput *in)
{
	RollupSource *src = f->sources[s];
	JsonbValue	jv;

	in->skip = false;
	in->isnull = isnull;
	in->value = value;
	if (isnull || src->kind != RS_JSON_NUMBER)
		return;

	in->isnull = true;
	if (!ek_rollup_json_path_value(DatumGetJsonbP(value), f->paths[s], f->npaths[s], &jv) ||
		jv.type == jbvNull)
		return;
	if (jv.type == jbvNumeric)
	{
		in->isnull = false;
		in->value = NumericGetDatum(jv.val.numeric);
	}
	else
		in->skip = true;		/* a string, boolean, object or array */
}

static FoldGroup *
find_group(Fold *f, Datum *keys, bool *nulls)
{
	uint32		hash = ek_fold_group_hash(f, keys, nulls);
	FoldHashEntry *e;
	FoldGroup  *g;
	bool		found;
	MemoryContext old;
	Size		size;

	e = hash_search(f->groups, &hash, HASH_ENTER, &found);
	if (!found)
		e->first = NULL;
	for (g = e->first; g != NULL; g = g->next)
		if (ek_fold_group_matches(f, g, keys, nulls))
			return g;

	old = MemoryContextSwitchTo(f->cxt);
	/* the group, its keys and their nulls in one chunk (a new process faults on each page) */
	size = MAXALIGN(offsetof(FoldGroup, states) + f->nmeasures * sizeof(FoldState));
	g = palloc0(size + f->nkeys * (sizeof(Datum) + sizeof(bool)));
	g->keys = (Datum *) ((char *) g + size);
	g->keynulls = (bool *) (g->keys + f->nkeys);
	for (int i = 0; i < f->nkeys; i++)
	{
		FoldKeyType *kt = &f->keytypes[i];

		g->keynulls[i] = nulls[i];
		if (nulls[i])
			g->keys[i] = (Datum) 0;
		else if (kt->typlen == -1)
			g->keys[i] = PointerGetDatum(PG_DETOAST_DATUM_COPY(keys[i]));
		else
			g->keys[i] = datumCopy(keys[i], kt->typbyval, kt->typlen);
	}
	g->next = e->first;
	e->first = g;
	if (f->ngroups == f->maxgroups)
	{
		f->maxgroups *= 2;
		f->order = repalloc(f->order, f->maxgroups * sizeof(FoldGroup *));
	}
	f->order[f->ngroups++] = g;
	MemoryContextSwitchTo(old);
	return g;
}

/* Append a value (or a NULL) to a group's values, in cxt. */
static void
append_value(MemoryContext cxt, FoldValues *v, Datum value, bool isnull)
{
	if (v->n == v->cap)
	{
		v->cap = v->cap ? v->cap * 2 : 16;
		if (v->values == NULL)
		{
			v->values = MemoryContextAlloc(cxt, v->cap * sizeof(Datum));
			v->nulls = MemoryContextAlloc(cxt, v->cap * sizeof(bool));
		}
		else
		{
			v->values = repalloc(v->values, v->cap * sizeof(Datum));
			v->nulls = repalloc(v->nulls, v->cap * sizeof(bool));
		}
	}
	v->values[v->n] = value;
	v->nulls[v->n] = isnull;
	v->n++;
}

/* st->num becomes a copy of num, in cxt; the old one is freed. */
static void
set_num(MemoryContext cxt, FoldState *st, Numeric num)
{
	Numeric		old = st->num;
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

	st->num = DatumGetNumeric(datumCopy(NumericGetDatum(num), false, -1));
	MemoryContextSwitchTo(oldcxt);
	if (old)
		pfree(old);
}

/*
 * Fold one row's input into a measure's state.  Runs in the row context;
 * what stays goes to f->cxt.
 */
static void
accumulate(Fold *f, RollupMeasure *m, FoldState *st, FoldInput *in)
{
	Numeric		num;
	MemoryContext old;

	switch (m->kind)
	{
		case RM_COUNT:
			break;
		case RM_SUM:
		case RM_AVG:
			if (in->isnull)
				break;
			num = DatumGetNumeric(in->value);	/* detoasted here, if need be */
			if (st->num == NULL)
				set_num(f->cxt, st, num);
			else
			{
				Numeric		prev = st->num;

				old = MemoryContextSwitchTo(f->cxt);
				st->num = DatumGetNumeric(DirectFunctionCall2(numeric_add,
															  NumericGetDatum(prev),
															  NumericGetDatum(num)));
				MemoryContextSwitchTo(old);
				pfree(prev);
			}
			st->count++;
			break;
		case RM_MIN:
		case RM_MAX:
			if (in->isnull)
				break;
			num = DatumGetNumeric(in->value);
			/* as numeric_smaller / numeric_larger: an equal new value wins */
			if (st->num == NULL)
				set_num(f->cxt, st, num);
			else
			{
				int			c = DatumGetInt32(DirectFunctionCall2(numeric_cmp,
																  NumericGetDatum(st->num),
																  NumericGetDatum(num)));

				if (m->kind == RM_MIN ? c >= 0 : c <= 0)
					set_num(f->cxt, st, num);
			}
			break;
		case RM_DISTINCT:
			if (in->isnull)
				st->vals.hasnull = true;	/* see ek_fold_distinct_values() */
			else
			{
				struct varlena *t = PG_DETOAST_DATUM_PACKED(in->value);
				int64		h;

				/* hll_hash_text(value, 0), computed in C (hll_hash.c) */
				h = ek_hll_hash_bytes(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 0);

				old = MemoryContextSwitchTo(f->cxt);
				append_value(f->cxt, &st->vals, Int64GetDatum(h), false);
				MemoryContextSwitchTo(old);
			}
			break;
		case RM_PERCENTILE:
			if (in->isnull)
				append_value(f->cxt, &st->vals, (Datum) 0, true);
			else
			{
				/* in range (value_reason): fits a float8 */
				float8		v = DatumGetFloat8(DirectFunctionCall1(numeric_float8, in->value));

				old = MemoryContextSwitchTo(f->cxt);
				append_value(f->cxt, &st->vals, Float8GetDatum(v), false);
				MemoryContextSwitchTo(old);
			}
			break;
	}
}

/*
 * The reason a measure skips its input, or -1 if it takes it (a NULL is
 * taken: it is no value).
 */
static int
value_reason(RollupMeasure *m, FoldInput *in)
{
	if (in == NULL || m->kind == RM_DISTINCT)
		return -1;
	if (in->skip)
		return RSK_NOT_A_NUMBER;
	if (in->isnull || m->range == RR_ANY)
		return -1;
	return ek_rollup_number_reason(DatumGetNumeric(in->value), m->range);
}

/*
 * A row's group keys, its bounded text dimensions bounded (in f->keybuf
 * when one is): *ntruncated tells how many were.
 */
static Datum *
bound_keys(Fold *f, Datum *values, bool *nulls, int *ntruncated)
{
	Datum	   *keys = values;

	*ntruncated = 0;
	for (int k = 1; k < f->nkeys; k++)
	{
		bool		truncated;
		Datum		b;

		if (!f->bounded[k] || nulls[k])
			continue;
		b = ek_rollup_bound_text(values[k], &truncated);
		if (!truncated)
			continue;
		if (keys == values)
		{
			memcpy(f->keybuf, values, f->nkeys * sizeof(Datum));
			keys = f->keybuf;
		}
		keys[k] = b;
		(*ntruncated)++;
	}
	return keys;
}

/* Count n of reason in group g and in the fold. */
static inline void
count_skips(Fold *f, FoldGroup *g, int reason, int64 n)
{
	g->skips[reason] += n;
	f->skips.n[reason] += n;
}

/*
 * A delta row (bucket, dimensions, ek_events, skipped_events, then per
 * measure its columns, count aside, then ek_skips if the delta table has
 * it: see ek_rollup_delta_read_sql()): a group's partial state, added to its group here.
 * Its dimensions are bounded already, unless eventkit 1.2 wrote it:
 * bound_keys() bounds those (and counts them; a bounded value is its own
 * bound).  Runs in the row context.
 */
static void
fold_delta_row(Fold *f, Datum *values, bool *nulls)
{
	int			ntruncated;
	FoldGroup  *g = find_group(f, bound_keys(f, values, nulls, &ntruncated), nulls);
	int			a = f->nkeys;

	if (ntruncated > 0)
		count_skips(f, g, RSK_DIMENSION_TRUNCATED, ntruncated * DatumGetInt64(values[a]));
	g->events += DatumGetInt64(values[a]);
	f->events += DatumGetInt64(values[a]);
	g->skipped += DatumGetInt64(values[a + 1]);
	a += 2;
	for (int i = 0; i < f->nmeasures; i++)
	{
		RollupMeasure *m = f->measures[i];
		FoldState  *st = &g->states[i];
		FoldInput	in = {nulls[a], false, values[a]};

		switch (m->kind)
		{
			case RM_COUNT:
				continue;		/* the group's events */
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
				accumulate(f, m, st, &in);
				break;
			case RM_AVG:
				{
					int64		n = DatumGetInt64(values[a + 1]);

					accumulate(f, m, st, &in);	/* adds one to count when not null */
					st->count += n - (in.isnull ? 0 : 1);
					a++;
					break;
				}
			case RM_DISTINCT:
			case RM_PERCENTILE:
				if (!in.isnull)
				{
					ArrayType  *arr = DatumGetArrayTypeP(in.value);
					Oid			elemtype = m->kind == RM_DISTINCT ? INT8OID : FLOAT8OID;
					Datum	   *elems;
					bool	   *elemnulls;
					int			nelems;

					/* (as ingest writes them: no NULL, read in place) */
					if (!ARR_HASNULL(arr) && ARR_ELEMTYPE(arr) == elemtype && ARR_NDIM(arr) <= 1)
					{
						const char *p = ARR_DATA_PTR(arr);

						nelems = ARR_NDIM(arr) == 0 ? 0 : ARR_DIMS(arr)[0];
						for (int e = 0; e < nelems; e++, p += 8)
						{
							int64		x;
							float8		y;

							if (elemtype == INT8OID)
							{
								memcpy(&x, p, 8);
								append_value(f->cxt, &st->vals, Int64GetDatum(x), false);
							}
							else
							{
								memcpy(&y, p, 8);
								append_value(f->cxt, &st->vals, Float8GetDatum(y), false);
							}
						}
						break;
					}
					deconstruct_array(arr,
									  m->kind == RM_DISTINCT ? INT8OID : FLOAT8OID,
									  8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
									  &elems, &elemnulls, &nelems);
					for (int e = 0; e < nelems; e++)
						if (elemnulls[e] && m->kind == RM_DISTINCT)
							st->vals.hasnull = true;
						else
							append_value(f->cxt, &st->vals, elemnulls[e] ? (Datum) 0 : elems[e],
										 elemnulls[e]);
				}
				break;
		}
		a++;
	}
	if (f->delta_skips && !nulls[a])
	{
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;

		deconstruct_array(DatumGetArrayTypeP(values[a]), INT8OID, 8, FLOAT8PASSBYVAL,
						  TYPALIGN_DOUBLE, &elems, &elemnulls, &nelems);
		for (int r = 0; r < Min(nelems, RSK_NREASONS); r++)
			if (!elemnulls[r])
				count_skips(f, g, r, DatumGetInt64(elems[r]));
	}
	if (f->delta_skips)
		a++;
	/* its batch and where it is, to find the batches without and delete it */
	if (f->ndelta == f->maxdelta)
	{
		f->maxdelta = Max(256, f->maxdelta * 2);
		f->delta_batches = f->delta_batches ?
			repalloc(f->delta_batches, f->maxdelta * sizeof(int64)) :
			MemoryContextAlloc(f->keepcxt, f->maxdelta * sizeof(int64));
		f->delta_tids = f->delta_tids ?
			repalloc(f->delta_tids, f->maxdelta * sizeof(ItemPointerData)) :
			MemoryContextAlloc(f->keepcxt, f->maxdelta * sizeof(ItemPointerData));
	}
	f->delta_batches[f->ndelta] = DatumGetInt64(values[a]);
	ItemPointerCopy((ItemPointer) DatumGetPointer(values[a + 1]), &f->delta_tids[f->ndelta]);
	f->ndelta++;
}

/*
 * A row of the source SELECT (bucket, dimensions, sources): fold it into
 * its group.  Runs in the row context.
 */
static void
fold_row(Fold *f, Datum *values, bool *isnull)
{
	bool		skipped = false;
	FoldGroup  *g;
	int			ntruncated;

	/* (here, not in the block below: it is read after that block) */
	FoldInput	none = {true, false, (Datum) 0};

	for (int s = 0; s < f->nsources; s++)
		read_input(f, s, values[f->nkeys + s], isnull[f->nkeys + s], &f->inputs[s]);
	g = find_group(f, bound_keys(f, values, isnull, &ntruncated), isnull);
	g->events++;
	if (ntruncated > 0)
		count_skips(f, g, RSK_DIMENSION_TRUNCATED, ntruncated);

	for (int i = 0; i < f->nmeasures; i++)
	{
		RollupMeasure *m = f->measures[i];
		FoldInput  *in = m->source >= 0 ? &f->inputs[m->source] : NULL;
		int			reason = value_reason(m, in);

		if (reason >= 0)
		{
			/* left out, as a NULL is */
			count_skips(f, g, reason, 1);
			skipped = true;
			in = &none;
		}
		accumulate(f, m, &g->states[i], in);
	}
	if (skipped)
		g->skipped++;
	f->events++;
}

/* The executor's row: fold it into its group. */
static bool
fold_receive(TupleTableSlot *slot, DestReceiver *self)
{
	Fold	   *f = (Fold *) self;
	MemoryContext old = MemoryContextSwitchTo(f->rowcxt);

	slot_getallattrs(slot);
	if (f->reading_deltas)
		fold_delta_row(f, slot->tts_values, slot->tts_isnull);
	else
		fold_row(f, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	MemoryContextReset(f->rowcxt);

	/*
	 * Groups beyond work_mem (a refresh after a long pause, a backfill): merge
	 * them into the rollup table now and go on with none.  The merge is
	 * associative, so the result is the same.
	 */
	if (MemoryContextMemAllocated(f->cxt, true) > f->flush_bytes)
	{
		SPI_connect();
		ek_fold_merge(f);
		SPI_finish();
		reset_groups(f);
	}
	return true;
}

/*
 * The bucket (timestamptz) and a text dimension, the keys of nearly every
 * rollup, without the type cache: their default operator classes' equality
 * and hash functions are pinned built-ins (timestamptz_eq and
 * timestamp_hash; texteq and hashtext, with text's default collation),
 * called directly.  A new backend's first fold found them through
 * lookup_type_cache, which reads the btree and hash operator classes from
 * the catalog: 1.3M of a first refresh's 45M instructions at 1M events
 * (docs/performance.md).  False for any other type.  Test builds check
 * the pair against the type cache's.
 */
static bool
builtin_key_type(FoldKeyType *kt, Oid typid)
{
	Oid			eq;
	Oid			hash;

	switch (typid)
	{
		case TIMESTAMPTZOID:
			eq = F_TIMESTAMPTZ_EQ;
			hash = F_TIMESTAMP_HASH;
			kt->typlen = sizeof(TimestampTz);
			kt->typbyval = FLOAT8PASSBYVAL;
			kt->collation = InvalidOid;
			break;
		case TEXTOID:
			eq = F_TEXTEQ;
			hash = F_HASHTEXT;
			kt->typlen = -1;
			kt->typbyval = false;
			kt->collation = DEFAULT_COLLATION_OID;
			break;
		default:
			return false;
	}
#ifdef EK_TESTING
	{
		TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_EQ_OPR_FINFO |
											   TYPECACHE_HASH_PROC_FINFO);

		if (tc->eq_opr_finfo.fn_oid != eq || tc->hash_proc_finfo.fn_oid != hash ||
			tc->typlen != kt->typlen || tc->typbyval != kt->typbyval ||
			tc->typcollation != kt->collation)
			elog(ERROR, "eventkit: the built-in key type %u is not as the type cache has it", typid);
	}
#endif
	fmgr_info_cxt(eq, &kt->eq, CurrentMemoryContext);
	kt->hash = palloc(sizeof(FmgrInfo));
	fmgr_info_cxt(hash, kt->hash, CurrentMemoryContext);
	return true;
}

static void
init_key_type(FoldKeyType *kt, Oid typid)
{
	TypeCacheEntry *tc;

	if (builtin_key_type(kt, typid))
		return;
	tc = lookup_type_cache(typid, TYPECACHE_EQ_OPR_FINFO | TYPECACHE_HASH_PROC_FINFO);
	if (!OidIsValid(tc->eq_opr_finfo.fn_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s",
						format_type_be(typid)),
				 errhint("A rollup dimension needs a type with a btree or hash operator class.")));
	kt->typlen = tc->typlen;
	kt->typbyval = tc->typbyval;
	kt->collation = tc->typcollation;
	fmgr_info_copy(&kt->eq, &tc->eq_opr_finfo, CurrentMemoryContext);
	kt->hash = NULL;
	if (OidIsValid(tc->hash_proc_finfo.fn_oid))
	{
		kt->hash = palloc(sizeof(FmgrInfo));
		fmgr_info_copy(kt->hash, &tc->hash_proc_finfo, CurrentMemoryContext);
	}
}

static void
init_fold(Fold *f, const RollupDef *def, const char *qtable, const char *keyname)
{
	ListCell   *lc;

	memset(f, 0, sizeof(*f));
	f->pub.receiveSlot = fold_receive;
	f->pub.rStartup = fold_startup;
	f->pub.rShutdown = fold_shutdown;
	f->pub.rDestroy = fold_destroy;
	f->pub.mydest = DestNone;
	f->def = def;
	f->qtable = qtable;
	f->keyname = keyname;
	f->cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit rollup fold",
								   ALLOCSET_DEFAULT_SIZES);
	f->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit rollup fold row",
									  ALLOCSET_SMALL_SIZES);
	f->flush_bytes = (Size) work_mem * 1024;
	f->keepcxt = CurrentMemoryContext;

	f->nkeys = 1 + list_length(def->dims);
	f->keytypes = palloc0(f->nkeys * sizeof(FoldKeyType));
	f->bounded = palloc0(f->nkeys * sizeof(bool));
	f->keybuf = palloc(f->nkeys * sizeof(Datum));
	init_key_type(&f->keytypes[0], TIMESTAMPTZOID);
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		init_key_type(&f->keytypes[1 + foreach_current_index(lc)], d->typid);
		f->bounded[1 + foreach_current_index(lc)] = d->bounded;
	}

	f->nmeasures = list_length(def->measures);
	f->measures = palloc(f->nmeasures * sizeof(RollupMeasure *));
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		f->measures[foreach_current_index(lc)] = m;
	}

	f->nsources = list_length(def->sources);
	f->sources = palloc(Max(f->nsources, 1) * sizeof(RollupSource *));
	f->paths = palloc0(Max(f->nsources, 1) * sizeof(RollupPathKey *));
	f->npaths = palloc0(Max(f->nsources, 1) * sizeof(int));
	f->inputs = palloc0(Max(f->nsources, 1) * sizeof(FoldInput));
	foreach(lc, def->sources)
	{
		int			s = foreach_current_index(lc);

		f->sources[s] = lfirst(lc);
		if (f->sources[s]->kind == RS_JSON_NUMBER)
			f->paths[s] = ek_rollup_path_keys(f->sources[s]->keys, &f->npaths[s]);
	}

	reset_groups(f);
}

/* No groups (again), in a fresh f->cxt. */
static void
reset_groups(Fold *f)
{
	HASHCTL		ctl;

	MemoryContextReset(f->cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(FoldHashEntry);
	ctl.hcxt = f->cxt;
	f->groups = hash_create("eventkit rollup fold groups", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	f->maxgroups = 64;
	f->ngroups = 0;
	f->order = MemoryContextAlloc(f->cxt, f->maxgroups * sizeof(FoldGroup *));
}

/* Run plan (its rows go to the fold) with params.  Caller: SPI connected. */
static void
fold_run(Fold *f, SPIPlanPtr plan, ParamListInfo params)
{
	SPIExecuteOptions options;
	int			rc;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;	/* a new snapshot: after WaitForLockers */
	options.dest = &f->pub;
	rc = SPI_execute_plan_extended(plan, &options);
	if (rc < 0)
		elog(ERROR, "eventkit: rollup scan failed: %s", SPI_result_code_string(rc));
}

/*
 * Read the rows of (from, to] (only those of the batches in batches, if
 * not NULL) and aggregate them.  Caller: SPI connected.
 */
static void
fold_scan(Fold *f, int64 from, int64 to, ArrayType *batches)
{
	Oid			argtypes[3] = {INT8OID, INT8OID, INT8ARRAYOID};
	int			nargs = batches ? 3 : 2;
	SPIPlanPtr	plan;
	ParamListInfo params;

	plan = SPI_prepare(ek_rollup_scan_sql(f->def, batches != NULL), nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "eventkit: could not prepare the rollup scan: %s",
			 SPI_result_code_string(SPI_result));
	params = makeParamList(nargs);
	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = i == 0 ? Int64GetDatum(from) :
			i == 1 ? Int64GetDatum(to) : PointerGetDatum(batches);
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = argtypes[i];
	}
	fold_run(f, plan, params);
	SPI_freeplan(plan);
}

/*
 * Merge what is left of the groups; free the fold.  Returns its events, and
 * adds its skips to *skips.
 */
static int64
finish_fold(Fold *f, RollupSkips *skips)
{
	int64		events = f->events;

	for (int r = 0; r < RSK_NREASONS; r++)
		skips->n[r] += f->skips.n[r];
	if (f->ngroups > 0)
		ek_fold_merge(f);
	MemoryContextDelete(f->cxt);
	MemoryContextDelete(f->rowcxt);
	return events;
}

/*
 * Fold the stream rows with batch_id in (from, to] (with batches: only
 * those of the listed batches) into the rollup table qtable (unique key
 * keyname); returns the number of events folded, and adds the values it
 * skipped to *skips.  Runs as the caller has set up (refresh.c: the rollup
 * owner, a pinned search_path).  Caller: SPI connected.
 */
int64
ek_rollup_fold(const RollupDef *def, const char *qtable, const char *keyname,
			   int64 from, int64 to, ArrayType *batches, RollupSkips *skips)
{
	Fold		f;

	init_fold(&f, def, qtable, keyname);
	fold_scan(&f, from, to, batches);
	return finish_fold(&f, skips);
}

/*
 * forget_user: fold the stream rows with batch_id <= to whose bucket is
 * one of buckets (timestamptz[]), within [lo, hi) (their span, so that
 * partitions outside it are pruned), and merge the groups into the rollup
 * table, whose rows of those buckets the caller has deleted.  Returns the
 * events folded.  Caller: SPI connected, as the rollup owner.
 */
int64
ek_rollup_fold_buckets(const RollupDef *def, const char *qtable, const char *keyname,
					   int64 to, Datum buckets, TimestampTz lo, TimestampTz hi,
					   RollupSkips *skips)
{
	Fold		f;
	StringInfoData sql;
	Oid			argtypes[4] = {INT8OID, TIMESTAMPTZARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	SPIPlanPtr	plan;
	ParamListInfo params;
	Datum		values[4] = {Int64GetDatum(to), buckets, TimestampTzGetDatum(lo),
	TimestampTzGetDatum(hi)};

	init_fold(&f, def, qtable, keyname);
	initStringInfo(&sql);
	ek_rollup_append_source_select(&sql, def);
	appendStringInfo(&sql, " FROM %s s WHERE s.batch_id OPERATOR(pg_catalog.<=) $1"
					 " AND s.ts OPERATOR(pg_catalog.>=) $3 AND s.ts OPERATOR(pg_catalog.<) $4"
					 " AND %s OPERATOR(pg_catalog.=) ANY ($2)",
					 ek_qualified_relname(def->stream_relid), ek_rollup_bucket_expr(def, "s.ts"));
	plan = SPI_prepare(sql.data, 4, argtypes);
	if (plan == NULL)
		elog(ERROR, "eventkit: could not prepare the rollup scan: %s",
			 SPI_result_code_string(SPI_result));
	params = makeParamList(4);
	for (int i = 0; i < 4; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = argtypes[i];
	}
	fold_run(&f, plan, params);
	SPI_freeplan(plan);
	return finish_fold(&f, skips);
}

/*
 * The delta rows of (from, to] read in C: the delta table's btree on
 * batch_id scanned over the range in a new snapshot (as the statement
 * would be), each row's columns given to fold_delta_row in ek_rollup_delta_read_sql()'s
 * order.  (The statement's plan and executor, in the new backend a
 * refresh runs in, cost more than the rows' fold.)  False, having read
 * nothing, when the table needs the statement: row-level security, no
 * SELECT right, no plain btree on batch_id, a column missing.  Caller: as
 * ek_rollup_fold_deltas's.
 */
static bool
fold_read_deltas(Fold *f, Oid delta, bool delta_skips, int64 from, int64 to)
{
	const RollupDef *def = f->def;
	Relation	rel = table_open(delta, AccessShareLock);
	Relation	index = NULL;
	AttrNumber *att;
	int			natt = 0;
	int			maxatt = f->nkeys + 2 * f->nmeasures + 4;
	AttrNumber	a_batch = get_attnum(delta, "batch_id");
	List	   *indexes;
	ListCell   *lc;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	ScanKeyData sk[2];
	IndexScanDesc scan;
	Datum	   *values;
	bool	   *nulls;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relrowsecurity ||
		pg_class_aclcheck(delta, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		a_batch == InvalidAttrNumber ||
		TupleDescAttr(RelationGetDescr(rel), a_batch - 1)->atttypid != INT8OID)
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	att = palloc(maxatt * sizeof(AttrNumber));
	att[natt++] = get_attnum(delta, "bucket");
	foreach(lc, def->dims)
		att[natt++] = get_attnum(delta, ((RollupDim *) lfirst(lc))->name);
	att[natt++] = get_attnum(delta, EK_ROLLUP_DELTA_EVENTS_COLUMN);
	att[natt++] = get_attnum(delta, EK_ROLLUP_SKIPPED_COLUMN);
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (m->kind == RM_AVG)
		{
			att[natt++] = get_attnum(delta, psprintf("%s_sum", m->name));
			att[natt++] = get_attnum(delta, psprintf("%s_count", m->name));
		}
		else if (m->kind != RM_COUNT)
			att[natt++] = get_attnum(delta, m->name);
	}
	if (delta_skips)
		att[natt++] = get_attnum(delta, EK_ROLLUP_DELTA_SKIPS_COLUMN);
	for (int i = 0; i < natt; i++)
		if (att[i] == InvalidAttrNumber)
		{
			table_close(rel, AccessShareLock);
			return false;
		}
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	i = index_open(lfirst_oid(lc), AccessShareLock);

		if (i->rd_rel->relam == BTREE_AM_OID && i->rd_index->indisvalid &&
			i->rd_index->indkey.values[0] == a_batch && i->rd_indoption[0] == 0 &&
			RelationGetIndexPredicate(i) == NIL)
		{
			index = i;
			break;
		}
		index_close(i, AccessShareLock);
	}
	if (index == NULL)
	{
		table_close(rel, AccessShareLock);
		return false;
	}

	/* a new snapshot, as the statement's: the batches waited for are seen */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	values = palloc((natt + 2) * sizeof(Datum));
	nulls = palloc((natt + 2) * sizeof(bool));
	ScanKeyInit(&sk[0], 1, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(from));
	ScanKeyInit(&sk[1], 1, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(to));
	scan = index_beginscan(rel, index, snapshot, 2, 0);
	index_rescan(scan, sk, 2, NULL, 0);
	f->reading_deltas = true;
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(f->rowcxt);
		slot_getallattrs(slot);
		for (int i = 0; i < natt; i++)
		{
			values[i] = slot->tts_values[att[i] - 1];
			nulls[i] = slot->tts_isnull[att[i] - 1];
		}
		values[natt] = slot->tts_values[a_batch - 1];
		nulls[natt] = slot->tts_isnull[a_batch - 1];
		values[natt + 1] = PointerGetDatum(&slot->tts_tid);
		nulls[natt + 1] = false;
		fold_delta_row(f, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(f->rowcxt);
		/* (as fold_receive: groups beyond work_mem merged now) */
		if (MemoryContextMemAllocated(f->cxt, true) > f->flush_bytes)
		{
			ek_fold_merge(f);
			reset_groups(f);
		}
	}
	f->reading_deltas = false;
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * A refresh with deltas (delta.c): fold the delta rows of (from, to] of
 * qdelta (with their skips if delta_skips) and, when there are any, the
 * stream rows of the batches of the range that stored events and have no
 * delta (written by ingest's slow path, or by an ingest that began before
 * the rollup existed), merge the groups into the rollup table and delete
 * the delta rows read: in C (fold_write.c), or by the caller (*deleted
 * false: a trigger, row-level security or no DELETE right on the delta
 * table).  Returns the events, and adds the skips to *skips; -1, having
 * done nothing, when the range has no delta rows.  Caller: SPI connected,
 * as the rollup owner.
 */
int64
ek_rollup_fold_deltas(const RollupDef *def, const char *qtable, const char *keyname,
					  Oid delta, const char *qdelta, bool delta_skips, int64 from,
					  int64 to, RollupSkips *skips, bool *deleted)
{
	Fold		f;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	SPIPlanPtr	plan;
	ParamListInfo params;
	Datum	   *covered;
	int			ncovered = 0;
	ArrayType  *uncovered;
	int64		events;

	*deleted = false;
	init_fold(&f, def, qtable, keyname);
	f.delta_skips = delta_skips;
	if (ek_testing_rollup_sql_merge || !fold_read_deltas(&f, delta, delta_skips, from, to))
	{
		plan = SPI_prepare(ek_rollup_delta_read_sql(def, qdelta, delta_skips), 2, argtypes);
		if (plan == NULL)
			elog(ERROR, "eventkit: could not prepare the rollup's delta scan: %s",
				 SPI_result_code_string(SPI_result));
		params = makeParamList(2);
		for (int i = 0; i < 2; i++)
		{
			params->params[i].value = Int64GetDatum(i == 0 ? from : to);
			params->params[i].isnull = false;
			params->params[i].pflags = PARAM_FLAG_CONST;
			params->params[i].ptype = INT8OID;
		}
		f.reading_deltas = true;
		fold_run(&f, plan, params);
		f.reading_deltas = false;
		SPI_freeplan(plan);
	}

	/*
	 * No delta rows: fold the range from the stream, but not a stream
	 * distributed on Citus (whose every batch written by ingest on this
	 * node has its deltas when the stream stores the values as given:
	 * pipeline/writer.c): its range is scanned only for the batches that
	 * stored events without deltas, if any, not through Citus every time.
	 */
	if (f.ndelta == 0 && ek_citus_table_kind(def->stream_relid) != EK_CITUS_HASH)
	{
		MemoryContextDelete(f.cxt);
		MemoryContextDelete(f.rowcxt);
		return -1;
	}

	/* the batches that have deltas (each once), then those that stored events and have none */
	covered = palloc(Max(f.ndelta, 1) * sizeof(Datum));
	for (int i = 0; i < f.ndelta; i++)
		covered[i] = Int64GetDatum(f.delta_batches[i]);
	ncovered = ek_hll_distinct(covered, f.ndelta);	/* (sorts int8s, each once) */
	uncovered = ek_batches_uncovered(def->stream_id, from, to,
									 ek_make_array(covered, NULL, ncovered, INT8OID));
	if (uncovered != NULL)
		fold_scan(&f, from, to, uncovered);
	events = finish_fold(&f, skips);

	/* forget the deltas folded */
	*deleted = ek_fold_delete_deltas(delta, f.delta_tids, f.ndelta);
	return events;
}

/*
 * A refresh's fold of a rollup's worker delta table (delta.c, wdelta.c):
 * the rows that sql (with its nargs parameters args of argtypes) returns
 * in ek_rollup_delta_read_sql()'s columns, through Citus: a Citus local
 * table's DELETE ... RETURNING (ek_rollup_worker_delta_sql), a
 * distributed one's rows of the generations marked before
 * (ek_rollup_worker_gen_sql), each shard in its node's snapshot,
 * aggregated and merged into the rollup table.  Their batch ids (the
 * workers', with the node's group in the top 16 bits) play no part:
 * every batch stored on a worker has its deltas.  Returns the events
 * folded, and adds the skips to *skips.  Caller: SPI connected, as the
 * rollup owner.
 */
int64
ek_rollup_fold_worker_deltas(const RollupDef *def, const char *qtable, const char *keyname,
							 const char *sql, int nargs, Oid *argtypes, Datum *args,
							 RollupSkips *skips)
{
	Fold		f;
	SPIPlanPtr	plan;
	ParamListInfo params = nargs > 0 ? makeParamList(nargs) : NULL;

	init_fold(&f, def, qtable, keyname);
	f.delta_skips = true;
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "eventkit: could not prepare the rollup's worker delta scan: %s",
			 SPI_result_code_string(SPI_result));
	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = args[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = argtypes[i];
	}
	f.reading_deltas = true;
	fold_run(&f, plan, params);
	f.reading_deltas = false;
	SPI_freeplan(plan);
	return finish_fold(&f, skips);
}

/*
 * Ingest's side (delta.c): aggregate the rows that source (a kept
 * plan of ek_rollup_source_sql(), run with params) returns and insert the
 * groups into the delta table qdelta as batch batch_id (with their skips
 * if delta_skips), with merge_plan the kept plan of that INSERT (made at
 * the first call).  Caller: SPI connected, as the rollup owner with a
 * pinned search_path.
 */
void
ek_rollup_fold_delta(const RollupDef *def, const char *qdelta, Oid delta,
					 const char *shard_key, int64 batch_id, bool delta_skips,
					 SPIPlanPtr source, ParamListInfo params, SPIPlanPtr *merge_plan)
{
	Fold		f;

	init_fold(&f, def, qdelta, NULL);
	f.delta_batch = batch_id;
	f.delta_skips = delta_skips;
	f.merge_plan = merge_plan;
	f.delta_relid = delta;
	f.delta_key = shard_key;
	fold_run(&f, source, params);
	if (f.ngroups > 0)
		ek_fold_merge(&f);
	MemoryContextDelete(f.cxt);
	MemoryContextDelete(f.rowcxt);
}

/*
 * The same as ek_rollup_fold_delta, with the n rows made by the caller
 * (delta.c evaluates the source SELECT's columns of row i in C, row(arg,
 * i, values, isnull), in a context reset after each row) rather than by a
 * plan.  Caller: as ek_rollup_fold_delta's.
 */
void
ek_rollup_fold_delta_rows(const RollupDef *def, const char *qdelta, Oid delta,
						  const char *shard_key, int64 batch_id, bool delta_skips, int n,
						  RollupRowFn row, void *arg, SPIPlanPtr *merge_plan)
{
	Fold		f;
	int			ncols;
	Datum	   *values;
	bool	   *isnull;

	init_fold(&f, def, qdelta, NULL);
	f.delta_batch = batch_id;
	f.delta_skips = delta_skips;
	f.merge_plan = merge_plan;
	f.delta_relid = delta;
	f.delta_key = shard_key;
	ncols = f.nkeys + f.nsources;
	values = palloc(ncols * sizeof(Datum));
	isnull = palloc(ncols * sizeof(bool));
	for (int i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(f.rowcxt);

		CHECK_FOR_INTERRUPTS();
		row(arg, i, values, isnull);
		fold_row(&f, values, isnull);
		MemoryContextSwitchTo(old);
		MemoryContextReset(f.rowcxt);
		/* (as fold_receive: a huge batch's groups beyond work_mem) */
		if (MemoryContextMemAllocated(f.cxt, true) > f.flush_bytes)
		{
			ek_fold_merge(&f);
			reset_groups(&f);
		}
	}
	if (f.ngroups > 0)
		ek_fold_merge(&f);
	MemoryContextDelete(f.cxt);
	MemoryContextDelete(f.rowcxt);
}
