/*-------------------------------------------------------------------------
 *
 * view.c
 *	  The SQL of a rollup's <name>_realtime view: its rollup's rows, finished,
 *	  and the not yet folded tail's groups (definition.c's partial-state
 *	  SELECT over the stream) merged with them.  Since 1.7 one FULL JOIN
 *	  and eventkit.rollup_hll_count (hll.c) for distinct(); before, and for
 *	  dimension types without a stand-in for NULL, a materialized CTE of
 *	  the tail, an anti join and a LEFT JOIN (docs/rollups.md, "The
 *	  realtime view").
 *
 *	  Everything generated is search_path-safe, as in definition.c:
 *	  identifiers quoted, functions and operators schema-qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "rollup/rollup.h"

static char *
col(const char *name, const char *suffix)
{
	return (char *) quote_identifier(suffix ? psprintf("%s%s", name, suffix) : name);
}

/*
 * Where a finished value of the realtime view comes from: one rollup row r
 * (FIN_ROW); a tail group t merged with its rollup row r, which may be all
 * NULL (FIN_LEFT, from a LEFT JOIN); or either of t and r, the other all
 * NULL or both (FIN_FULL, from a FULL JOIN).
 */
typedef enum FinishFrom
{
	FIN_ROW,
	FIN_LEFT,
	FIN_FULL
} FinishFrom;

/*
 * A measure's finished value in the realtime view, named.  A group has one
 * row of each at most, so two states are merged, never aggregated.  With
 * count_fn, distinct() is eventkit.rollup_hll_count's (hll.c, 1.7), else
 * hll_cardinality of hll_union.
 */
static void
append_finished(StringInfo buf, const RollupDef *def, const RollupMeasure *m,
				FinishFrom from, bool count_fn)
{
	char	   *c = col(m->name, NULL);
	const char *q = m->kind == RM_PERCENTILE ? quote_literal_cstr(float8out_internal(m->q)) : NULL;

	appendStringInfoString(buf, ", ");
	switch (m->kind)
	{
		case RM_COUNT:
			if (from == FIN_FULL)
				appendStringInfo(buf, "COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s)", c, c, c, c);
			else if (from == FIN_LEFT)
				appendStringInfo(buf, "t.%s OPERATOR(pg_catalog.+) COALESCE(r.%s, 0)", c, c);
			else
				appendStringInfo(buf, "r.%s", c);
			break;
		case RM_SUM:
			if (from != FIN_ROW)
				appendStringInfo(buf, "COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s)", c, c, c, c);
			else
				appendStringInfo(buf, "r.%s", c);
			break;
		case RM_MIN:
		case RM_MAX:
			if (from != FIN_ROW)
				appendStringInfo(buf, "%s(t.%s, r.%s)", m->kind == RM_MIN ? "LEAST" : "GREATEST", c, c);
			else
				appendStringInfo(buf, "r.%s", c);
			break;
		case RM_AVG:
			{
				char	   *cs = col(m->name, "_sum");
				char	   *cn = col(m->name, "_count");

				if (from == FIN_FULL)
					appendStringInfo(buf, "COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s)"
									 " OPERATOR(pg_catalog./) NULLIF(COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s), 0)",
									 cs, cs, cs, cs, cn, cn, cn, cn);
				else if (from == FIN_LEFT)
					appendStringInfo(buf, "COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s)"
									 " OPERATOR(pg_catalog./) NULLIF(t.%s OPERATOR(pg_catalog.+) COALESCE(r.%s, 0), 0)",
									 cs, cs, cs, cs, cn, cn);
				else
					appendStringInfo(buf, "r.%s OPERATOR(pg_catalog./) NULLIF(r.%s, 0)", cs, cn);
				break;
			}
		case RM_DISTINCT:
			if (count_fn)
			{
				if (from != FIN_ROW)
					appendStringInfo(buf, "eventkit.rollup_hll_count(t.%s, r.%s)", c, c);
				else
					appendStringInfo(buf, "eventkit.rollup_hll_count(r.%s, NULL)", c);
			}
			else if (from != FIN_ROW)
				appendStringInfo(buf, "pg_catalog.round(COALESCE(%s.hll_cardinality(COALESCE(%s.hll_union(t.%s, r.%s), t.%s, r.%s)), 0))::pg_catalog.int8",
								 def->hll_schema, def->hll_schema, c, c, c, c);
			else
				appendStringInfo(buf, "pg_catalog.round(COALESCE(%s.hll_cardinality(r.%s), 0))::pg_catalog.int8",
								 def->hll_schema, c);
			break;
		case RM_PERCENTILE:
			if (from == FIN_FULL)
				appendStringInfo(buf, "CASE WHEN t.bucket IS NULL"
								 " THEN (SELECT %s.tdigest_percentile(x.d, %s::pg_catalog.float8) FROM (VALUES (r.%s)) x(d))"
								 " ELSE (SELECT %s.tdigest_percentile(x.d, %s::pg_catalog.float8) FROM (VALUES (t.%s), (r.%s)) x(d)) END",
								 def->tdigest_schema, q, c, def->tdigest_schema, q, c, c);
			else if (from == FIN_LEFT)
				appendStringInfo(buf, "(SELECT %s.tdigest_percentile(x.d, %s::pg_catalog.float8)"
								 " FROM (VALUES (t.%s), (r.%s)) x(d))", def->tdigest_schema, q, c, c);
			else
				appendStringInfo(buf, "(SELECT %s.tdigest_percentile(x.d, %s::pg_catalog.float8)"
								 " FROM (VALUES (r.%s)) x(d))", def->tdigest_schema, q, c);
			break;
	}
	appendStringInfo(buf, " AS %s", c);
}

/*
 * The finished columns of the realtime view, in its order: the measures,
 * skipped_events, then the measures added after the view was made
 * (view_split).
 */
static void
append_finished_columns(StringInfo buf, const RollupDef *def, FinishFrom from, bool count_fn)
{
	ListCell   *lc;
	const char *sk = EK_ROLLUP_SKIPPED_COLUMN;

	foreach(lc, def->measures)
		if (def->view_split == 0 || foreach_current_index(lc) < def->view_split)
			append_finished(buf, def, lfirst(lc), from, count_fn);
	if (from == FIN_FULL)
		appendStringInfo(buf, ", COALESCE(t.%s OPERATOR(pg_catalog.+) r.%s, t.%s, r.%s) AS %s",
						 sk, sk, sk, sk, sk);
	else if (from == FIN_LEFT)
		appendStringInfo(buf, ", t.%s OPERATOR(pg_catalog.+) COALESCE(r.%s, 0) AS %s", sk, sk, sk);
	else
		appendStringInfo(buf, ", r.%s AS %s", sk, sk);
	foreach(lc, def->measures)
		if (def->view_split > 0 && foreach_current_index(lc) >= def->view_split)
			append_finished(buf, def, lfirst(lc), from, count_fn);
}

/*
 * Is there eventkit.<name>(argtype, anyelement) (rollup_hll since 1.5,
 * rollup_hll_count since 1.7)?  A view made while the extension's catalog
 * is older calls the hll extension's functions instead.
 */
static bool
has_hll_function(const char *name, Oid argtype)
{
	Oid			argtypes[2] = {argtype, ANYELEMENTOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("eventkit"), makeString(unconstify(char *, name))),
									 2, argtypes, true));
}

/*
 * A constant of a dimension's type that its NULL is compared as, with its
 * IS NULL beside, so that a FULL JOIN can hash the match (it cannot hash
 * IS NOT DISTINCT FROM); NULL for a type without one here.
 */
static const char *
null_stand_in(Oid typid)
{
	switch (typid)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return "''";
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
			return "0";
		case BOOLOID:
			return "false";
		case UUIDOID:
			return "'00000000-0000-0000-0000-000000000000'";
		default:
			return NULL;
	}
}

/*
 * CREATE VIEW <name>_realtime: the rollup's rows, finished, and the groups
 * of the not yet folded tail merged with their rows.  When every dimension
 * has a null_stand_in (1.7):
 *
 *	 SELECT COALESCE(t.bucket, r.bucket), COALESCE(t.d, r.d), ...,
 *			<finished: t merged with r, either may be missing>
 *	   FROM (the tail's partial states per group) t FULL JOIN rollup r
 *		 ON t.bucket = r.bucket AND COALESCE(t.d, '') = COALESCE(r.d, '')
 *			AND (t.d IS NULL) = (r.d IS NULL) ...
 *
 * one hash join that hashes the tail's groups and reads the rollup once.
 * Otherwise (and in views made before 1.7):
 *
 *	 WITH ek_tail AS MATERIALIZED (the tail's partial states per group)
 *	 SELECT <finished r> FROM rollup r WHERE NOT EXISTS (its group in ek_tail)
 *	 UNION ALL
 *	 SELECT <finished t + r> FROM ek_tail t LEFT JOIN rollup r ON <same group>
 *
 * Groups are matched on bucket and their dimensions IS NOT DISTINCT FROM
 * (NULL is a value), a text dimension also with COALESCE(.., '') = (which
 * a hash join can hash).  Either way a group the tail does not touch is
 * read as it is, and one it touches merges two states (eventkit.
 * rollup_hll_count of two hlls, two t-digests), never an aggregate over
 * all groups.  The tail is the stream's rows with batch_id > the watermark
 * (read from eventkit.rollups in the same snapshot) and <= the largest
 * possible id: two bounds the planner cannot know, for which it assumes a
 * range of 0.5% of the stream (DEFAULT_RANGE_INEQ_SEL) rather than a third
 * of it, so that a small tail is read through the batch_id index and the
 * plan stays under jit_above_cost.  The tail's hlls are
 * eventkit.rollup_hll's (hll.c), when the catalog has it.
 */
char *
ek_rollup_view_sql(const RollupDef *def, const char *qview, const char *qtable)
{
	StringInfoData buf;
	StringInfoData where;
	StringInfoData match;
	ListCell   *lc;
	bool		full = true;
	bool		small_hll = has_hll_function("rollup_hll", ANYOID);
	bool		count_fn = has_hll_function("rollup_hll_count", ANYELEMENTOID);

	initStringInfo(&where);
	appendStringInfo(&where,
					 "s.batch_id OPERATOR(pg_catalog.>) (SELECT w.watermark FROM eventkit.rollups w"
					 " WHERE w.rollup_id OPERATOR(pg_catalog.=) %d)"
					 " AND s.batch_id OPERATOR(pg_catalog.<=) (SELECT 9223372036854775807::pg_catalog.int8)",
					 def->rollup_id);
	/* the FULL JOIN with the catalog of 1.7 (views made before keep theirs) */
	foreach(lc, def->dims)
		if (null_stand_in(((RollupDim *) lfirst(lc))->typid) == NULL)
			full = false;
	full = full && count_fn;

	initStringInfo(&match);
	appendStringInfoString(&match, "t.bucket OPERATOR(pg_catalog.=) r.bucket");
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);
		char	   *c = col(d->name, NULL);

		if (full)
			appendStringInfo(&match, " AND COALESCE(t.%s, %s) OPERATOR(pg_catalog.=) COALESCE(r.%s, %s)"
							 " AND (t.%s IS NULL) OPERATOR(pg_catalog.=) (r.%s IS NULL)",
							 c, null_stand_in(d->typid), c, null_stand_in(d->typid), c, c);
		else
		{
			/*
			 * IS NOT DISTINCT FROM cannot be hashed: a text dimension is
			 * also compared with NULL as '', so that the join hashes on it
			 * too
			 */
			if (d->typid == TEXTOID)
				appendStringInfo(&match, " AND COALESCE(t.%s, '') OPERATOR(pg_catalog.=) COALESCE(r.%s, '')",
								 c, c);
			appendStringInfo(&match, " AND t.%s IS NOT DISTINCT FROM r.%s", c, c);
		}
	}

	initStringInfo(&buf);
	if (full)
	{
		appendStringInfo(&buf, "CREATE VIEW %s AS SELECT COALESCE(t.bucket, r.bucket) AS bucket", qview);
		foreach(lc, def->dims)
		{
			char	   *c = col(((RollupDim *) lfirst(lc))->name, NULL);

			appendStringInfo(&buf, ", COALESCE(t.%s, r.%s) AS %s", c, c, c);
		}
		append_finished_columns(&buf, def, FIN_FULL, true);
		appendStringInfoString(&buf, " FROM (");
		ek_rollup_append_partial_select(&buf, def, where.data, small_hll);
		appendStringInfo(&buf, ") t FULL JOIN %s r ON %s", qtable, match.data);
		return buf.data;
	}
	appendStringInfo(&buf, "CREATE VIEW %s AS WITH ek_tail AS MATERIALIZED (", qview);
	ek_rollup_append_partial_select(&buf, def, where.data, small_hll);
	appendStringInfoString(&buf, ") SELECT r.bucket");
	foreach(lc, def->dims)
		appendStringInfo(&buf, ", r.%s", col(((RollupDim *) lfirst(lc))->name, NULL));
	append_finished_columns(&buf, def, FIN_ROW, count_fn);
	appendStringInfo(&buf, " FROM %s r WHERE NOT EXISTS (SELECT FROM ek_tail t WHERE %s)"
					 " UNION ALL SELECT t.bucket", qtable, match.data);
	foreach(lc, def->dims)
		appendStringInfo(&buf, ", t.%s", col(((RollupDim *) lfirst(lc))->name, NULL));
	append_finished_columns(&buf, def, FIN_LEFT, count_fn);
	appendStringInfo(&buf, " FROM ek_tail t LEFT JOIN %s r ON %s", qtable, match.data);
	return buf.data;
}
