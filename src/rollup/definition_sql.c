/*-------------------------------------------------------------------------
 *
 * definition_sql.c
 *	  The SQL a rollup definition (definition.c, rollup.h) generates: the
 *	  CREATE TABLE of a rollup table and of its delta tables, the ON
 *	  CONFLICT DO UPDATE SET list that merges partial states into a rollup
 *	  row (used by the fold, fold.c), the SELECTs the fold reads stream rows
 *	  and delta rows with, the reads of the worker delta table of a
 *	  distributed stream, and the SELECT of the partial states of stream
 *	  rows that the <name>_realtime view (view.c) reads its tail with and
 *	  the backfill of a distributed stream (backfill.c) pushes down to the
 *	  shards.
 *
 *	  Everything generated is search_path-safe: identifiers are quoted,
 *	  functions and operators schema-qualified (the hll and tdigest ones via
 *	  the schema their extension lives in, found when the definition was
 *	  parsed), and the only literals are the rollup's own definition (JSON
 *	  path keys, the bucket width, percentile fractions, measure names),
 *	  quoted with quote_literal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "rollup/rollup.h"
#include "util/compat.h"
#include "util/spi.h"

/* ", log2m" for hll_add_agg, or nothing (the hll default) */
static char *
hll_params(const RollupDef *def)
{
	return def->opts.hll_log2m > 0 ? psprintf(", %d", def->opts.hll_log2m) : "";
}

static char *
col(const char *name, const char *suffix)
{
	return (char *) quote_identifier(suffix ? psprintf("%s%s", name, suffix) : name);
}

/*
 * ", <dimension> <type>, ..., <state column> <type>, ...": the columns of a
 * rollup table, or (delta) of its delta table, where distinct keeps its hll
 * hashes (int8[]) and percentile its values (float8[]).
 */
void
ek_rollup_append_column_defs(StringInfo buf, const RollupDef *def, bool delta, bool add)
{
	ListCell   *lc;
	const char *sep = add ? ", ADD COLUMN" : ",";
	const char *nn = add ? "NOT NULL DEFAULT 0" : "NOT NULL";

	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		appendStringInfo(buf, "%s %s %s", sep, col(d->name, NULL), d->typname);
	}
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		switch (m->kind)
		{
			case RM_COUNT:
				appendStringInfo(buf, "%s %s pg_catalog.int8 %s", sep, col(m->name, NULL), nn);
				break;
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
				appendStringInfo(buf, "%s %s pg_catalog.numeric", sep, col(m->name, NULL));
				break;
			case RM_AVG:
				appendStringInfo(buf, "%s %s pg_catalog.numeric%s %s pg_catalog.int8 %s",
								 sep, col(m->name, "_sum"), sep, col(m->name, "_count"), nn);
				break;
			case RM_DISTINCT:
				if (delta)
					appendStringInfo(buf, "%s %s pg_catalog.int8[]", sep, col(m->name, NULL));
				else
					appendStringInfo(buf, "%s %s %s.hll", sep, col(m->name, NULL), def->hll_schema);
				break;
			case RM_PERCENTILE:
				if (delta)
					appendStringInfo(buf, "%s %s pg_catalog.float8[]", sep, col(m->name, NULL));
				else
					appendStringInfo(buf, "%s %s %s.tdigest", sep, col(m->name, NULL),
									 def->tdigest_schema);
				break;
		}
	}
}

/*
 * CREATE TABLE for the rollup table, with its unique key.  fillfactor 50:
 * a refresh updates most of the groups it touches in place, and a page
 * filled to half keeps room for a new version of each of its rows, so that
 * the update is HOT (same page, no new entry in the key's index: the key
 * columns never change) and the page is pruned when next read.  Full, every
 * update of a row went to another page with a new index entry.
 */
char *
ek_rollup_table_sql(const RollupDef *def, const char *qtable, const char *keyname)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (bucket pg_catalog.timestamptz NOT NULL", qtable);
	ek_rollup_append_column_defs(&buf, def, false, false);
	appendStringInfo(&buf, ", %s pg_catalog.int8 NOT NULL DEFAULT 0"
					 ", CONSTRAINT %s UNIQUE NULLS NOT DISTINCT (bucket",
					 EK_ROLLUP_SKIPPED_COLUMN, quote_identifier(keyname));
	foreach(lc, def->dims)
		appendStringInfo(&buf, ", %s", col(((RollupDim *) lfirst(lc))->name, NULL));
	appendStringInfoString(&buf, ")) WITH (fillfactor = 50)");
	return buf.data;
}

/*
 * The aggregate that collects a group's hashes for eventkit.rollup_hll:
 * eventkit.rollup_hashes (1.11), array_agg with a transition space the
 * planner can cost, so that it hashes the tail's groups rather than sorting
 * the tail's rows (it takes array_agg's state for 8 kB a group: a +1% tail
 * at 1M events did not fit work_mem in its estimate).  pg_catalog.array_agg
 * while the extension's catalog is older.
 */
static const char *
hashes_agg(void)
{
	Oid			argtypes[1] = {ANYNONARRAYOID};

	if (OidIsValid(LookupFuncName(list_make2(makeString("eventkit"), makeString("rollup_hashes")),
								  1, argtypes, true)))
		return "eventkit.rollup_hashes";
	return "pg_catalog.array_agg";
}

/*
 * The tail's hash of a value and its empty hll, as SQL, without the hll
 * library when the catalog allows (1.12): eventkit.rollup_hash_text (the
 * same hash as hll_hash_text(value, 0), hll_hash.c) and hll_empty()
 * evaluated now, with the rollup's hll_log2m and this session's hll
 * defaults, written as a constant; otherwise the library's hll_hash_text
 * and hll_empty(), which a query then loads the library for (95 page
 * faults and 4-5 ms on a new session's first realtime query).  A view
 * made before keeps its calls until it is made again.
 */
static void
tail_hll_sql(const RollupDef *def, const char *value, char **hash, char **empty)
{
	Oid			text_arg[1] = {TEXTOID};
	Oid			int_arg[1] = {INT4OID};
	int			nargs = def->opts.hll_log2m > 0 ? 1 : 0;
	Oid			hash_fn;
	Oid			empty_fn;

	hash_fn = LookupFuncName(list_make2(makeString("eventkit"), makeString("rollup_hash_text")),
							 1, text_arg, true);
	empty_fn = LookupFuncName(list_make2(makeString(def->hll_nsp), makeString("hll_empty")),
							  nargs, int_arg, true);
	if (OidIsValid(hash_fn) && OidIsValid(empty_fn) &&
		ek_proc_aclcheck(empty_fn, GetUserId(), ACL_EXECUTE) == ACLCHECK_OK)
	{
		Datum		e = nargs == 1 ? OidFunctionCall1(empty_fn, Int32GetDatum(def->opts.hll_log2m)) :
			OidFunctionCall0(empty_fn);
		Oid			typoutput;
		bool		varlena;

		getTypeOutputInfo(get_func_rettype(empty_fn), &typoutput, &varlena);
		*hash = psprintf("eventkit.rollup_hash_text(%s)", value);
		*empty = psprintf("%s::%s.hll", quote_literal_cstr(OidOutputFunctionCall(typoutput, e)),
						  def->hll_schema);
		return;
	}
	*hash = psprintf("%s.hll_hash_text(%s, 0)", def->hll_schema, value);
	*empty = psprintf("%s.hll_empty(%s)", def->hll_schema,
					  nargs == 1 ? psprintf("%d", def->opts.hll_log2m) : "");
}

/*
 * The backfill's count of the values skipped (backfill.c): per group, the
 * events that skip a value (skipped_events) and the values skipped by
 * reason (rollup.h), as the fold counts them (fold.c's fold_row): one for
 * each measure that skips its value (not_a_number or out_of_range, as
 * RollupMeasure.skip_nan tells) and one for each bounded text dimension
 * whose value is longer than EK_ROLLUP_DIM_MAX_BYTES bytes
 * (dimension_truncated).  Sums, which Citus merges from the shards'.
 *
 * The measures' are one numeric sum, ek_skipped_values: a row that skips
 * a value adds EK_SKIP_EVENT_UNIT, and per value skipped 1
 * (not_a_number) or EK_SKIP_RANGE_UNIT (out_of_range); skipped_events is
 * that sum divided by EK_SKIP_EVENT_UNIT (the same aggregate: computed
 * once).  So a row evaluates each measure's skip once, as the realtime
 * view's count(*) FILTER (WHERE skip1 OR skip2 ...) does, by a nested
 * CASE: when measure k is the first to skip, the row's value is the event
 * unit, k's reason and the reasons of the measures after k (each a CASE of
 * its own); else the CASE of measure k + 1.  (Each evaluation reads the
 * value's JSON path again: the inner projection is flattened when pushed
 * down.)  A group's not_a_number and out_of_range counts must each stay
 * below EK_SKIP_RANGE_UNIT.
 */
static void
append_backfill_skips(StringInfo buf, const RollupDef *def)
{
	List	   *skipping = NIL;
	StringInfoData code;
	ListCell   *lc;

	foreach(lc, def->measures)
		if (((RollupMeasure *) lfirst(lc))->skip != NULL)
			skipping = lappend(skipping, lfirst(lc));
	initStringInfo(&code);
	for (int k = 0; k < list_length(skipping); k++)
	{
		RollupMeasure *m = list_nth(skipping, k);

		appendStringInfo(&code, "CASE WHEN %s THEN %s::pg_catalog.numeric", m->skip, EK_SKIP_EVENT_UNIT);
		for (int j = k; j < list_length(skipping); j++)
		{
			RollupMeasure *n = list_nth(skipping, j);
			const char *reason = psprintf("(CASE WHEN %s THEN 1 ELSE " INT64_FORMAT " END)",
										  n->skip_nan, EK_SKIP_RANGE_UNIT);

			if (j == k)
				appendStringInfo(&code, " OPERATOR(pg_catalog.+) %s", reason);
			else
				appendStringInfo(&code, " OPERATOR(pg_catalog.+) (CASE WHEN %s THEN %s ELSE 0 END)",
								 n->skip, reason);
		}
		appendStringInfoString(&code, " ELSE ");
	}
	appendStringInfoString(&code, "0");
	for (int k = 0; k < list_length(skipping); k++)
		appendStringInfoString(&code, " END");

	appendStringInfo(buf, ", pg_catalog.div(pg_catalog.sum(%s), %s)::pg_catalog.int8 AS %s"
					 ", pg_catalog.sum(%s) AS ek_skipped_values",
					 code.data, EK_SKIP_EVENT_UNIT, EK_ROLLUP_SKIPPED_COLUMN, code.data);
	appendStringInfoString(buf, ", pg_catalog.sum(0");
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		if (d->bounded)
			appendStringInfo(buf, " OPERATOR(pg_catalog.+) (CASE WHEN pg_catalog.octet_length(%s)"
							 " OPERATOR(pg_catalog.>) %d THEN 1 ELSE 0 END)",
							 d->expr, EK_ROLLUP_DIM_MAX_BYTES);
	}
	appendStringInfoString(buf, ")::pg_catalog.int8 AS ek_truncated_values");
}

/*
 * SELECT bucket, dims, partial states FROM the stream WHERE <where> GROUP BY
 * bucket, dims: the realtime view's tail (the not yet folded rows; view.c).
 * The fold computes the same partial states in C (fold.c); the rollup tests
 * compare both with a from-scratch GROUP BY.  pushdown (a stream
 * distributed on Citus, read whole: backfill.c): no OFFSET 0 (Citus would
 * gather the inner SELECT's rows on the coordinator instead of grouping on
 * the shards) and an ek_events column, the events of the group;
 * skip_reasons (the backfill's): skipped_events and the values it skips
 * by reason from one sum (append_backfill_skips).
 *
 * stand_ins (the FULL JOIN view's tail, 1.13; NIL otherwise): one constant
 * per dimension that its NULL is compared as (view.c).  The tail then
 * groups by bucket and, per dimension N, COALESCE(d, stand-in) and
 * d IS NULL, which it also has as the columns ek_keyN and ek_nullN, and
 * gives d back from them; the same groups as by d.  The view joins the
 * rollup on these grouping columns: the planner sizes a hash of them
 * (the tail's groups) rather than of expressions over the tail, and hashes
 * the small tail instead of sorting the rollup's rows.  Each dimension's
 * value is computed once per row, in the inner SELECT (ek_dN).
 */
static void
append_partial_select(StringInfo buf, const RollupDef *def, const char *where_in,
					  bool small_hll, bool pushdown, bool skip_reasons, List *stand_ins)
{
	ListCell   *lc;
	StringInfoData skip;
	StringInfoData keys;
	int			ngroup = 1;
	const char *where = where_in;

	Assert(stand_ins == NIL || (!pushdown && list_length(stand_ins) == list_length(def->dims)));
	initStringInfo(&skip);
	initStringInfo(&keys);
	if (def->filter_sql != NULL)
		where = psprintf("%s AND %s", where, def->filter_sql);
	appendStringInfo(buf, "SELECT %s AS bucket", ek_rollup_bucket_expr(def, "s.ts"));
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		if (stand_ins != NIL)
		{
			int			n = foreach_current_index(lc) + 1;
			char	   *key = psprintf("COALESCE(s.ek_d%d, %s)", n,
									   (char *) list_nth(stand_ins, n - 1));

			appendStringInfo(buf, ", (CASE WHEN (s.ek_d%d IS NULL) THEN NULL ELSE %s END)::%s AS %s",
							 n, key, d->typname, col(d->name, NULL));
			appendStringInfo(&keys, ", %s, (s.ek_d%d IS NULL)", key, n);
		}
		else
		{
			appendStringInfo(buf, ", %s AS %s", d->view_expr, col(d->name, NULL));
			ngroup++;
		}
	}
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		switch (m->kind)
		{
			case RM_COUNT:
				appendStringInfo(buf, ", pg_catalog.count(*) AS %s", col(m->name, NULL));
				break;
			case RM_SUM:
				appendStringInfo(buf, ", pg_catalog.sum(%s) AS %s", m->value, col(m->name, NULL));
				break;
			case RM_MIN:
				appendStringInfo(buf, ", pg_catalog.min(%s) AS %s", m->value, col(m->name, NULL));
				break;
			case RM_MAX:
				appendStringInfo(buf, ", pg_catalog.max(%s) AS %s", m->value, col(m->name, NULL));
				break;
			case RM_AVG:
				appendStringInfo(buf, ", pg_catalog.sum(%s) AS %s, pg_catalog.count(%s) AS %s",
								 m->value, col(m->name, "_sum"),
								 m->value, col(m->name, "_count"));
				break;
			case RM_DISTINCT:
				if (small_hll)
				{
					char	   *hash;
					char	   *empty;

					/* (hll.c: hll_add_agg's, without its 128 kB state per group) */
					tail_hll_sql(def, m->value, &hash, &empty);
					appendStringInfo(buf, ", eventkit.rollup_hll(%s(%s), %s) AS %s",
									 hashes_agg(), hash, empty, col(m->name, NULL));
				}
				else
					appendStringInfo(buf, ", %s.hll_add_agg(%s.hll_hash_text(%s, 0)%s) AS %s",
									 def->hll_schema, def->hll_schema, m->value,
									 hll_params(def), col(m->name, NULL));
				break;
			case RM_PERCENTILE:
				appendStringInfo(buf, ", %s.tdigest((%s)::pg_catalog.float8, %d) AS %s",
								 def->tdigest_schema, m->value, TDIGEST_COMPRESSION,
								 col(m->name, NULL));
				break;
		}
		if (m->skip)
			appendStringInfo(&skip, " OR %s", m->skip);
	}
	if (skip_reasons)
		append_backfill_skips(buf, def);
	else
		appendStringInfo(buf, ", pg_catalog.count(*) FILTER (WHERE false%s) AS %s",
						 skip.data, EK_ROLLUP_SKIPPED_COLUMN);
	if (pushdown)
		appendStringInfoString(buf, ", pg_catalog.count(*) AS ek_events");
	for (int n = 1; n <= list_length(stand_ins); n++)
		appendStringInfo(buf, ", COALESCE(s.ek_d%d, %s) AS ek_key%d, (s.ek_d%d IS NULL) AS ek_null%d",
						 n, (char *) list_nth(stand_ins, n - 1), n, n, n);
	if (def->inner_exprs == NIL && stand_ins == NIL)
		appendStringInfo(buf, " FROM %s s WHERE %s GROUP BY ",
						 ek_qualified_relname(def->stream_relid), where);
	else
	{
		/*
		 * OFFSET 0 keeps the inner projection: each JSON value and keyed
		 * dimension read once
		 */
		appendStringInfoString(buf, " FROM (SELECT s.*");
		foreach(lc, def->inner_exprs)
			appendStringInfo(buf, ", %s AS ek_j%d", (char *) lfirst(lc),
							 foreach_current_index(lc) + 1);
		if (stand_ins != NIL)
			foreach(lc, def->dims)
				appendStringInfo(buf, ", %s AS ek_d%d", ((RollupDim *) lfirst(lc))->view_expr,
								 foreach_current_index(lc) + 1);
		appendStringInfo(buf, " FROM %s s WHERE %s%s) s GROUP BY ",
						 ek_qualified_relname(def->stream_relid), where,
						 pushdown ? "" : " OFFSET 0");
	}
	for (int i = 1; i <= ngroup; i++)
		appendStringInfo(buf, "%s%d", i > 1 ? ", " : "", i);
	appendStringInfoString(buf, keys.data);
}

void
ek_rollup_append_partial_select(StringInfo buf, const RollupDef *def, const char *where,
								bool small_hll, List *stand_ins)
{
	append_partial_select(buf, def, where, small_hll, false, false, stand_ins);
}

/*
 * The partial states of the stream rows that match where (and the
 * filter), per bucket and dimensions, as the realtime view's tail has them
 * (add_rollup_measures computes new measures with it).  pushdown: of a
 * stream distributed on Citus, grouped on the shards, with ek_events
 * (append_partial_select).
 */
char *
ek_rollup_tail_select(const RollupDef *def, const char *where, bool pushdown)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_partial_select(&buf, def, where, false, pushdown, false, NIL);
	return buf.data;
}

/*
 * The backfill's SELECT of all the stream's rows (backfill.c): the
 * tail SELECT of ek_rollup_tail_select() pushed down, with the values
 * skipped by reason (append_backfill_skips).
 */
char *
ek_rollup_backfill_select(const RollupDef *def)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_partial_select(&buf, def, "true", false, true, true, NIL);
	return buf.data;
}

/* "bucket, d1, ..., state columns, skipped_values" */
void
ek_rollup_append_state_columns(StringInfo buf, const RollupDef *def, const char *prefix)
{
	ListCell   *lc;

	appendStringInfo(buf, "%sbucket", prefix);
	foreach(lc, def->dims)
		appendStringInfo(buf, ", %s%s", prefix, col(((RollupDim *) lfirst(lc))->name, NULL));
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (m->kind == RM_AVG)
			appendStringInfo(buf, ", %s%s, %s%s", prefix, col(m->name, "_sum"),
							 prefix, col(m->name, "_count"));
		else
			appendStringInfo(buf, ", %s%s", prefix, col(m->name, NULL));
	}
	appendStringInfo(buf, ", %s%s", prefix, EK_ROLLUP_SKIPPED_COLUMN);
}

/*
 * ", <state column> = <src>.<state column>, ..., skipped_events =
 * <src>.skipped_events": each measure's state columns (avg: its sum and
 * count) and the skipped count, set from src (an UPDATE's SET list).
 */
void
ek_rollup_append_state_sets(StringInfo buf, const RollupDef *def, const char *src)
{
	ListCell   *lc;

	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (m->kind == RM_AVG)
			appendStringInfo(buf, ", %s = %s.%s, %s = %s.%s",
							 col(m->name, "_sum"), src, col(m->name, "_sum"),
							 col(m->name, "_count"), src, col(m->name, "_count"));
		else
			appendStringInfo(buf, ", %s = %s.%s", col(m->name, NULL), src, col(m->name, NULL));
	}
	appendStringInfo(buf, ", %s = %s.%s", EK_ROLLUP_SKIPPED_COLUMN, src, EK_ROLLUP_SKIPPED_COLUMN);
}

static void
append_add(StringInfo buf, const char *c)
{
	appendStringInfo(buf, ", %s = r.%s OPERATOR(pg_catalog.+) EXCLUDED.%s", c, c, c);
}

static void
append_nullable_add(StringInfo buf, const char *c)
{
	appendStringInfo(buf, ", %s = COALESCE(r.%s OPERATOR(pg_catalog.+) EXCLUDED.%s, r.%s, EXCLUDED.%s)",
					 c, c, c, c, c);
}

/*
 * The SET list of the fold's ON CONFLICT DO UPDATE (r: the rollup row,
 * EXCLUDED: the new partial states): count, sum and avg parts add, min and
 * max with LEAST and GREATEST, hll_union, t-digests merged with the
 * tdigest(tdigest) aggregate.
 */
void
ek_rollup_append_merge(StringInfo buf, const RollupDef *def)
{
	ListCell   *lc;

	appendStringInfoString(buf, "bucket = r.bucket");
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);
		char	   *c = col(m->name, NULL);

		switch (m->kind)
		{
			case RM_COUNT:
				append_add(buf, c);
				break;
			case RM_SUM:
				append_nullable_add(buf, c);
				break;
			case RM_MIN:
				appendStringInfo(buf, ", %s = LEAST(r.%s, EXCLUDED.%s)", c, c, c);
				break;
			case RM_MAX:
				appendStringInfo(buf, ", %s = GREATEST(r.%s, EXCLUDED.%s)", c, c, c);
				break;
			case RM_AVG:
				append_nullable_add(buf, col(m->name, "_sum"));
				append_add(buf, col(m->name, "_count"));
				break;
			case RM_DISTINCT:
				appendStringInfo(buf, ", %s = COALESCE(%s.hll_union(r.%s, EXCLUDED.%s), r.%s, EXCLUDED.%s)",
								 c, def->hll_schema, c, c, c, c);
				break;
			case RM_PERCENTILE:
				appendStringInfo(buf, ", %s = (SELECT %s.tdigest(v.t) FROM (VALUES (r.%s), (EXCLUDED.%s)) v(t))",
								 c, def->tdigest_schema, c, c);
				break;
		}
	}
	append_add(buf, EK_ROLLUP_SKIPPED_COLUMN);
}

/*
 * "SELECT bucket, dimensions, sources": what the fold (fold.c) reads from
 * each row s
 */
void
ek_rollup_append_source_select(StringInfo buf, const RollupDef *def)
{
	ListCell   *lc;

	appendStringInfo(buf, "SELECT %s", ek_rollup_bucket_expr(def, "s.ts"));
	foreach(lc, def->dims)
		appendStringInfo(buf, ", %s", ((RollupDim *) lfirst(lc))->expr);
	foreach(lc, def->sources)
		appendStringInfo(buf, ", %s", ((RollupSource *) lfirst(lc))->sql);
}

/*
 * What the fold reads from the stream: the rows with batch_id in ($1, $2]
 * and, with only_listed, among them those whose batch_id is in $3.
 */
char *
ek_rollup_scan_sql(const RollupDef *def, bool only_listed)
{
	StringInfoData buf;

	initStringInfo(&buf);
	ek_rollup_append_source_select(&buf, def);
	appendStringInfo(&buf, " FROM %s s WHERE s.batch_id OPERATOR(pg_catalog.>) $1"
					 " AND s.batch_id OPERATOR(pg_catalog.<=) $2",
					 ek_qualified_relname(def->stream_relid));
	if (only_listed)
		appendStringInfoString(&buf, " AND s.batch_id OPERATOR(pg_catalog.=) ANY ($3)");
	if (def->filter_sql != NULL)
		appendStringInfo(&buf, " AND %s", def->filter_sql);
	return buf.data;
}

/*
 * The same SELECT over a FROM clause of the caller's (which must name its
 * rows s): how ingest reads the rows it has just written (delta.c).
 */
char *
ek_rollup_source_sql(const RollupDef *def, const char *from)
{
	StringInfoData buf;

	initStringInfo(&buf);
	ek_rollup_append_source_select(&buf, def);
	appendStringInfo(&buf, " FROM %s", from);
	if (def->filter_sql != NULL)
		appendStringInfo(&buf, " WHERE %s", def->filter_sql);
	return buf.data;
}

/*
 * The columns fold.c reads from a delta row, in its order: bucket, the
 * dimensions, ek_events, skipped_events, the measures' partial values,
 * ek_skips (with delta_skips), batch_id and ctid.
 */
static void
append_delta_read_columns(StringInfo buf, const RollupDef *def, bool delta_skips)
{
	ListCell   *lc;

	appendStringInfoString(buf, "bucket");
	foreach(lc, def->dims)
		appendStringInfo(buf, ", %s", quote_identifier(((RollupDim *) lfirst(lc))->name));
	appendStringInfo(buf, ", %s, %s", EK_ROLLUP_DELTA_EVENTS_COLUMN, EK_ROLLUP_SKIPPED_COLUMN);
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (m->kind == RM_AVG)
			appendStringInfo(buf, ", %s, %s",
							 quote_identifier(psprintf("%s_sum", m->name)),
							 quote_identifier(psprintf("%s_count", m->name)));
		else if (m->kind != RM_COUNT)
			appendStringInfo(buf, ", %s", quote_identifier(m->name));
	}
	if (delta_skips)
		appendStringInfo(buf, ", %s", EK_ROLLUP_DELTA_SKIPS_COLUMN);
	appendStringInfoString(buf, ", batch_id, ctid");
}

/*
 * SELECT of a delta table's rows of (from, to], in the order the fold's
 * fold_delta_row() reads them (ek_skips if delta_skips), then each row's
 * batch_id and ctid.
 */
char *
ek_rollup_delta_read_sql(const RollupDef *def, const char *qdelta, bool delta_skips)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	append_delta_read_columns(&buf, def, delta_skips);
	appendStringInfo(&buf, " FROM %s WHERE batch_id OPERATOR(pg_catalog.>) $1"
					 " AND batch_id OPERATOR(pg_catalog.<=) $2", qdelta);
	return buf.data;
}

/*
 * The statement a refresh folds a rollup's worker delta table with
 * (delta.c): every row its snapshot sees, deleted and returned in
 * ek_rollup_delta_read_sql()'s columns, so that the rows folded are
 * exactly the rows deleted, whatever commits meanwhile.  max_events > 0:
 * only the rows of the first batches (in batch_id order: a worker's
 * batches in its order, the workers one after the other) that hold about
 * that many events, whole batches, at least one.
 */
char *
ek_rollup_worker_delta_sql(const RollupDef *def, const char *qwdelta, int64 max_events)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s", qwdelta);
	if (max_events > 0)
		appendStringInfo(&buf, " WHERE batch_id OPERATOR(pg_catalog.=) ANY (ARRAY("
						 "SELECT b.batch_id FROM (SELECT batch_id,"
						 " pg_catalog.sum(pg_catalog.sum(ek_events)) OVER (ORDER BY batch_id)"
						 " OPERATOR(pg_catalog.-) pg_catalog.sum(ek_events) AS before"
						 " FROM %s GROUP BY batch_id) b"
						 " WHERE b.before OPERATOR(pg_catalog.<) " INT64_FORMAT "))",
						 qwdelta, max_events);
	appendStringInfoString(&buf, " RETURNING ");
	append_delta_read_columns(&buf, def, true);
	return buf.data;
}

/*
 * The statement a refresh folds a distributed worker delta table's rows
 * of generations ($1, $2] with (wdelta.c), in ek_rollup_delta_read_sql()'s
 * columns: the rows marked by earlier refreshes, not deleted here.
 */
char *
ek_rollup_worker_gen_sql(const RollupDef *def, const char *qwdelta)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	append_delta_read_columns(&buf, def, true);
	appendStringInfo(&buf, " FROM %s WHERE %s OPERATOR(pg_catalog.>) $1"
					 " AND %s OPERATOR(pg_catalog.<=) $2", qwdelta,
					 EK_ROLLUP_WDELTA_GEN_COLUMN, EK_ROLLUP_WDELTA_GEN_COLUMN);
	return buf.data;
}

/*
 * CREATE TABLE for a rollup's delta table (delta.c), and its index
 * on batch_id (a refresh reads its range through it, never the rows it
 * deleted before): batch_id, ek_events, then the rollup table's columns,
 * but the values of distinct (hll hashes, int8[]) and percentile
 * (float8[]) instead of their hll and t-digest, then ek_skips (the group's
 * RollupSkips, NULL when none).
 */
char *
ek_rollup_delta_table_sql(const RollupDef *def, const char *qdelta)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (batch_id pg_catalog.int8 NOT NULL,"
					 " %s pg_catalog.int8 NOT NULL, bucket pg_catalog.timestamptz NOT NULL",
					 qdelta, EK_ROLLUP_DELTA_EVENTS_COLUMN);
	ek_rollup_append_column_defs(&buf, def, true, false);
	appendStringInfo(&buf, ", %s pg_catalog.int8 NOT NULL, %s pg_catalog.int8[]);"
					 " CREATE INDEX ON %s USING btree (batch_id)",
					 EK_ROLLUP_SKIPPED_COLUMN, EK_ROLLUP_DELTA_SKIPS_COLUMN, qdelta);
	return buf.data;
}
