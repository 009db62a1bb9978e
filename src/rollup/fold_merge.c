/*-------------------------------------------------------------------------
 *
 * fold_merge.c
 *	  Writing a fold's groups (fold.c): ek_fold_merge, called when the
 *	  groups take more than work_mem and at the end of a fold.  A batch's
 *	  groups go into the rollup's delta table, a refresh's are merged into
 *	  the rollup table; in C where fold_write.c can write them (ek_fold_
 *	  delta_insert, ek_fold_merge_table), else here by one statement:
 *	  INSERT ... SELECT ... FROM ROWS FROM (unnest(<an array with one element
 *	  per group>), ...), with ON CONFLICT DO UPDATE and the SET list of
 *	  definition.c for a merge.  A group's t-digest (and an hll of many
 *	  hashes) is built in that statement by the extensions' own aggregates
 *	  (tdigest, hll_add_agg) over the group's slice of one array of values
 *	  (hashes), so their format is theirs; an hll of few hashes is written
 *	  here (hll.c's EXPLICIT hll).  A refresh records the buckets it merged
 *	  into for the rollups of the rollup (derived.c) from the statement's
 *	  RETURNING.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "rollup/fold_int.h"
#include "rollup/hll.h"
#include "util/spi.h"

/* The groups' slices of an array of values: 1-based starts, then the end + 1. */
static Datum
slices(Fold *f, int mi, Datum *values, bool *nulls)
{
	Datum	   *starts = palloc((f->ngroups + 1) * sizeof(Datum));
	int			pos = 0;

	for (int g = 0; g < f->ngroups; g++)
	{
		FoldValues *v = &f->order[g]->states[mi].vals;

		starts[g] = Int32GetDatum(pos + 1);
		memcpy(values + pos, v->values, v->n * sizeof(Datum));
		memcpy(nulls + pos, v->nulls, v->n * sizeof(bool));
		pos += v->n;
	}
	starts[f->ngroups] = Int32GetDatum(pos + 1);
	return ek_make_array(starts, NULL, f->ngroups + 1, INT4OID);
}

/*
 * Merge the groups into the rollup table: INSERT ... SELECT FROM ROWS FROM
 * (unnest($1), ...)
 * ON CONFLICT DO UPDATE.  Caller: SPI connected.
 */
void
ek_fold_merge(Fold *f)
{
	const RollupDef *def = f->def;
	/* keys, measures, skipped_events; a delta's ek_events, batch_id, ek_skips */
	int			maxparams = f->nkeys + 3 * f->nmeasures + 4 + RSK_NREASONS;
	Oid		   *argtypes = palloc(maxparams * sizeof(Oid));
	Datum	   *args = palloc(maxparams * sizeof(Datum));
	int			np = 0;
	int			ng = f->ngroups;
	Datum	   *col = palloc(ng * sizeof(Datum));
	bool	   *colnulls = palloc(ng * sizeof(bool));
	StringInfoData sql;
	StringInfoData unnest;
	StringInfoData names;
	StringInfoData select;
	int			rc;

	if (OidIsValid(f->delta_relid) && ek_fold_delta_insert(f))
		return;
	/* a refresh's groups: in C when the table allows (fold_write.c) */
	if (f->delta_batch <= 0 && ek_fold_merge_table(f))
		return;
	ng = f->ngroups;
	initStringInfo(&sql);
	initStringInfo(&unnest);
	initStringInfo(&names);
	initStringInfo(&select);

	/* the group keys */
	for (int k = 0; k < f->nkeys; k++)
	{
		Oid			typid = k == 0 ? TIMESTAMPTZOID :
			((RollupDim *) list_nth(def->dims, k - 1))->typid;
		Oid			arraytype = get_array_type(typid);

		if (!OidIsValid(arraytype))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("type %s has no array type", format_type_be(typid)),
					 errhint("Use a dimension of another type.")));
		for (int g = 0; g < ng; g++)
		{
			col[g] = f->order[g]->keys[k];
			colnulls[g] = f->order[g]->keynulls[k];
		}
		argtypes[np] = arraytype;
		args[np++] = ek_make_array(col, colnulls, ng, typid);
		appendStringInfo(&unnest, "%spg_catalog.unnest($%d)", k > 0 ? ", " : "", np);
		appendStringInfo(&names, "%sk%d", k > 0 ? ", " : "", k);
		appendStringInfo(&select, "%sg.k%d", k > 0 ? ", " : "", k);
	}

	/* the measures */
	for (int i = 0; i < f->nmeasures; i++)
	{
		RollupMeasure *m = f->measures[i];

		switch (m->kind)
		{
			case RM_COUNT:
				for (int g = 0; g < ng; g++)
					col[g] = Int64GetDatum(f->order[g]->events);
				argtypes[np] = INT8ARRAYOID;
				args[np++] = ek_make_array(col, NULL, ng, INT8OID);
				appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
				appendStringInfo(&names, ", m%d", i);
				appendStringInfo(&select, ", g.m%d", i);
				break;
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
			case RM_AVG:
				for (int g = 0; g < ng; g++)
				{
					Numeric		num = f->order[g]->states[i].num;

					col[g] = NumericGetDatum(num);
					colnulls[g] = (num == NULL);
				}
				argtypes[np] = NUMERICARRAYOID;
				args[np++] = ek_make_array(col, colnulls, ng, NUMERICOID);
				appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
				appendStringInfo(&names, ", m%d", i);
				appendStringInfo(&select, ", g.m%d", i);
				if (m->kind == RM_AVG)
				{
					for (int g = 0; g < ng; g++)
						col[g] = Int64GetDatum(f->order[g]->states[i].count);
					argtypes[np] = INT8ARRAYOID;
					args[np++] = ek_make_array(col, NULL, ng, INT8OID);
					appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
					appendStringInfo(&names, ", m%dn", i);
					appendStringInfo(&select, ", g.m%dn", i);
				}
				break;
			case RM_DISTINCT:
			case RM_PERCENTILE:
				{
					int64		total = 0;
					Datum	   *values;
					bool	   *nulls;
					Oid			elemtype = m->kind == RM_DISTINCT ? INT8OID : FLOAT8OID;

					for (int g = 0; g < ng; g++)
					{
						if (m->kind == RM_DISTINCT)
							ek_fold_distinct_values(&f->order[g]->states[i].vals);
						total += f->order[g]->states[i].vals.n;
					}
					if (total >= (int64) (MaxAllocSize / sizeof(Datum)))
						ereport(ERROR,
								(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								 errmsg("too many events to fold at once: %lld",
										(long long) total),
								 errhint("Refresh in chunks with refresh_rollup(name, max_events).")));
					values = palloc(Max(total, 1) * sizeof(Datum));
					nulls = palloc(Max(total, 1) * sizeof(bool));
					args[np + 1] = slices(f, i, values, nulls);
					argtypes[np + 1] = INT4ARRAYOID;
					args[np] = ek_make_array(values, nulls, (int) total, elemtype);
					argtypes[np] = elemtype == INT8OID ? INT8ARRAYOID : FLOAT8ARRAYOID;
					np += 2;
					/* the group's slice of the values: $v[$s[n] : $s[n + 1] - 1] */
					if (f->delta_batch > 0)
						appendStringInfo(&select,
										 ", $%d[$%d[g.n] : $%d[g.n OPERATOR(pg_catalog.+) 1]"
										 " OPERATOR(pg_catalog.-) 1]", np - 1, np, np);
					else if (m->kind == RM_DISTINCT)
					{
						/*
						 * the hll made here when it is EXPLICIT, else (NULL)
						 * by hll_add_agg (see ek_fold_init_hll)
						 */
						if (!f->hll_ready)
							ek_fold_init_hll(f);
						for (int g = 0; g < ng; g++)
						{
							FoldValues *v = &f->order[g]->states[i].vals;

							colnulls[g] = !(v->n > 0 && v->n <= f->hll_format.explicit_max &&
											!v->nulls[0]);
							col[g] = colnulls[g] ? (Datum) 0 :
								ek_hll_explicit(&f->hll_format, v->values, v->n);
						}
						argtypes[np] = BYTEAARRAYOID;
						args[np++] = ek_make_array(col, colnulls, ng, BYTEAOID);
						appendStringInfo(&select,
										 ", COALESCE($%d[g.n]::%s.hll, (SELECT %s.hll_add_agg(v.x::%s.hll_hashval%s)"
										 " FROM pg_catalog.unnest($%d[$%d[g.n]"
										 " : $%d[g.n OPERATOR(pg_catalog.+) 1] OPERATOR(pg_catalog.-) 1]) v(x)))",
										 np, def->hll_schema, def->hll_schema, def->hll_schema,
										 def->opts.hll_log2m > 0 ?
										 psprintf(", %d", def->opts.hll_log2m) : "",
										 np - 2, np - 1, np - 1);
					}
					else
						appendStringInfo(&select,
										 ", (SELECT %s.tdigest(v.x, %d)"
										 " FROM pg_catalog.unnest($%d[$%d[g.n]"
										 " : $%d[g.n OPERATOR(pg_catalog.+) 1] OPERATOR(pg_catalog.-) 1]) v(x))",
										 def->tdigest_schema, TDIGEST_COMPRESSION, np - 1, np, np);
					break;
				}
		}
	}

	/* skipped_events */
	for (int g = 0; g < ng; g++)
		col[g] = Int64GetDatum(f->order[g]->skipped);
	argtypes[np] = INT8ARRAYOID;
	args[np++] = ek_make_array(col, NULL, ng, INT8OID);
	appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
	appendStringInfoString(&names, ", sk");
	appendStringInfoString(&select, ", g.sk");

	if (f->delta_batch > 0)
	{
		/* a delta row per group, with its batch and number of events */
		for (int g = 0; g < ng; g++)
			col[g] = Int64GetDatum(f->order[g]->events);
		argtypes[np] = INT8ARRAYOID;
		args[np++] = ek_make_array(col, NULL, ng, INT8OID);
		appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
		appendStringInfoString(&names, ", ev");
		if (f->delta_skips)
		{
			/* ek_skips: ARRAY[s0, s1, ...], NULL when all are 0 */
			StringInfoData zero;
			StringInfoData array;

			initStringInfo(&zero);
			initStringInfo(&array);
			for (int r = 0; r < RSK_NREASONS; r++)
			{
				for (int g = 0; g < ng; g++)
					col[g] = Int64GetDatum(f->order[g]->skips[r]);
				argtypes[np] = INT8ARRAYOID;
				args[np++] = ek_make_array(col, NULL, ng, INT8OID);
				appendStringInfo(&unnest, ", pg_catalog.unnest($%d)", np);
				appendStringInfo(&names, ", s%d", r);
				appendStringInfo(&zero, "%sg.s%d OPERATOR(pg_catalog.=) 0", r > 0 ? " AND " : "", r);
				appendStringInfo(&array, "%sg.s%d", r > 0 ? ", " : "", r);
			}
			appendStringInfo(&select, ", CASE WHEN %s THEN NULL ELSE ARRAY[%s] END",
							 zero.data, array.data);
		}
		argtypes[np] = INT8OID;
		args[np++] = Int64GetDatum(f->delta_batch);
		appendStringInfo(&sql, "INSERT INTO %s AS r (batch_id, %s, ", f->qtable,
						 EK_ROLLUP_DELTA_EVENTS_COLUMN);
		ek_rollup_append_state_columns(&sql, def, "");
		if (f->delta_skips)
			appendStringInfo(&sql, ", %s", EK_ROLLUP_DELTA_SKIPS_COLUMN);
		if (f->delta_key != NULL)
		{
			/* every row's shard key: one shard (and node) for the batch's rows */
			appendStringInfo(&sql, ", %s", EK_ROLLUP_WDELTA_KEY_COLUMN);
			argtypes[np] = TEXTOID;
			args[np] = CStringGetTextDatum(f->delta_key);
			appendStringInfo(&select, ", $%d", np + 1);
		}
		appendStringInfo(&sql, ") SELECT $%d, g.ev, %s FROM ROWS FROM (%s)"
						 " WITH ORDINALITY AS g(%s, n)",
						 np, select.data, unnest.data, names.data);
		if (f->delta_key != NULL)
			np++;
	}
	else
	{
		appendStringInfo(&sql, "INSERT INTO %s AS r (", f->qtable);
		ek_rollup_append_state_columns(&sql, def, "");
		appendStringInfo(&sql, ") SELECT %s FROM ROWS FROM (%s)"
						 " WITH ORDINALITY AS g(%s, n) ON CONFLICT ON CONSTRAINT %s DO UPDATE SET ",
						 select.data, unnest.data, names.data, quote_identifier(f->keyname));
		ek_rollup_append_merge(&sql, def);
		/* the buckets merged into, for the rollups of this rollup */
		if (def->touched != NULL)
			appendStringInfoString(&sql, " RETURNING r.bucket");
	}

	if (f->merge_plan == NULL)
		rc = SPI_execute_with_args(sql.data, np, argtypes, args, NULL, false, 0);
	else
	{
		/* the statement depends only on the definition: planned once */
		if (*f->merge_plan == NULL)
			*f->merge_plan = ek_keep_generic_plan(sql.data, np, argtypes);
		rc = SPI_execute_plan(*f->merge_plan, args, NULL, false, 0);
	}
	if (rc != SPI_OK_INSERT && rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "eventkit: rollup merge failed: %s", SPI_result_code_string(rc));
	if (rc == SPI_OK_INSERT_RETURNING && f->delta_batch <= 0 && def->touched != NULL)
	{
		RollupTouched *t = def->touched;
		MemoryContext old = MemoryContextSwitchTo(t->cxt);

		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			Datum		b = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1,
										  &isnull);

			if (t->n == t->max)
			{
				t->max = Max(64, t->max * 2);
				t->buckets = t->buckets ? repalloc(t->buckets, t->max * sizeof(Datum)) :
					palloc(t->max * sizeof(Datum));
			}
			t->buckets[t->n++] = b; /* timestamptz: by value */
		}
		MemoryContextSwitchTo(old);
	}
}
