/*-------------------------------------------------------------------------
 *
 * view.c
 *	  The SQL of a rollup's <name>_realtime view: its rollup's rows, finished,
 *	  and the not yet folded tail's groups (definition.c's partial-state
 *	  SELECT over the stream) merged with them.  For a rollup of a stream
 *	  distributed on Citus the tail comes from the delta table instead, and
 *	  from the stream only for the batches without deltas
 *	  (eventkit.rollup_stream_tail(), here).  Since 1.7 one FULL JOIN
 *	  (since 1.13 on the tail's grouping columns, so that it hashes the
 *	  tail) and eventkit.rollup_hll_count (hll.c) for distinct(); before, and for
 *	  dimension types without a stand-in for NULL, a materialized CTE of
 *	  the tail, an anti join and a LEFT JOIN (docs/rollups.md, "How the
 *	  realtime view merges").
 *
 *	  Everything generated is search_path-safe, as in definition.c:
 *	  identifiers quoted, functions and operators schema-qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "catalog/rollups.h"
#include "rollup/delta.h"
#include "rollup/rollup.h"
#include "rollup/wdelta.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_rollup_stream_tail);

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
 * The schema of rollup_stream_tail(regclass): eventkit (1.11), where
 * every role may name it, eventkit_internal (1.9, 1.10), or NULL when the
 * catalog has none.
 */
static const char *
stream_tail_schema(void)
{
	Oid			argtypes[1] = {REGCLASSOID};
	static const char *const schemas[2] = {"eventkit", "eventkit_internal"};

	for (int i = 0; i < 2; i++)
		if (OidIsValid(LookupFuncName(list_make2(makeString(unconstify(char *, schemas[i])),
												 makeString("rollup_stream_tail")),
									  1, argtypes, true)))
			return schemas[i];
	return NULL;
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
 * The columns of a tail group, typed, as a column definition list of
 * eventkit.rollup_stream_tail(): bucket, dimensions, partial
 * states, skipped_events.
 */
static void
append_tail_coldefs(StringInfo buf, const RollupDef *def)
{
	ListCell   *lc;

	appendStringInfoString(buf, "bucket pg_catalog.timestamptz");
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		appendStringInfo(buf, ", %s %s", col(d->name, NULL), d->typname);
	}
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);
		char	   *c = col(m->name, NULL);

		switch (m->kind)
		{
			case RM_COUNT:
				appendStringInfo(buf, ", %s pg_catalog.int8", c);
				break;
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
				appendStringInfo(buf, ", %s pg_catalog.numeric", c);
				break;
			case RM_AVG:
				appendStringInfo(buf, ", %s pg_catalog.numeric, %s pg_catalog.int8",
								 col(m->name, "_sum"), col(m->name, "_count"));
				break;
			case RM_DISTINCT:
				appendStringInfo(buf, ", %s %s.hll", c, def->hll_schema);
				break;
			case RM_PERCENTILE:
				appendStringInfo(buf, ", %s %s.tdigest", c, def->tdigest_schema);
				break;
		}
	}
	appendStringInfo(buf, ", %s pg_catalog.int8", EK_ROLLUP_SKIPPED_COLUMN);
}

/*
 * The select list of a delta table's rows (alias d) as the tail's partial
 * states: each row's hashes made an hll and its values a t-digest, then
 * d.skipped_events (not followed by FROM).  For a rollup of a rollup (def
 * its definition, the delta table its source's): each row's source bucket
 * made the bucket that holds it, and def's dimensions only (named as in
 * the source), as derived.c recomputes its rows from its source's; the
 * caller groups them.
 */
static void
append_delta_partials(StringInfo buf, const RollupDef *def)
{
	ListCell   *lc;
	const char *hll_empty = def->hll_schema == NULL ? NULL :
		psprintf("%s.hll_empty(%s)", def->hll_schema,
				 def->opts.hll_log2m > 0 ? psprintf("%d", def->opts.hll_log2m) : "");

	if (OidIsValid(def->source))
		appendStringInfo(buf, "SELECT %s AS bucket", ek_rollup_bucket_expr(def, "d.bucket"));
	else
		appendStringInfoString(buf, "SELECT d.bucket");
	foreach(lc, def->dims)
		appendStringInfo(buf, ", d.%s", col(((RollupDim *) lfirst(lc))->name, NULL));
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);
		char	   *c = col(m->name, NULL);

		switch (m->kind)
		{
			case RM_COUNT:
			case RM_SUM:
			case RM_MIN:
			case RM_MAX:
				appendStringInfo(buf, ", d.%s", c);
				break;
			case RM_AVG:
				appendStringInfo(buf, ", d.%s, d.%s", col(m->name, "_sum"), col(m->name, "_count"));
				break;
			case RM_DISTINCT:
				appendStringInfo(buf, ", eventkit.rollup_hll(d.%s, %s) AS %s", c, hll_empty, c);
				break;
			case RM_PERCENTILE:
				appendStringInfo(buf, ", (SELECT %s.tdigest(v, %d) FROM pg_catalog.unnest(d.%s) v) AS %s",
								 def->tdigest_schema, TDIGEST_COMPRESSION, c, c);
				break;
		}
	}
	appendStringInfo(buf, ", d.%s", EK_ROLLUP_SKIPPED_COLUMN);
}

/*
 * The tail of a rollup of a stream distributed on Citus, with a delta
 * table (ingest on the coordinator writes every batch's deltas there,
 * rollup/delta.c): the groups' partial states of the delta rows newer than
 * the watermark, each row's hashes and values made an hll and a t-digest,
 * and of the rows of the batches that stored events without deltas, which
 * eventkit.rollup_stream_tail() reads from the stream only when
 * there are any, merged per group:
 *
 *	 SELECT u.bucket, u.d, ..., sum(u.count), ..., hll_union_agg(u.h),
 *			tdigest(u.p), sum(u.skipped_events)
 *	   FROM (SELECT d.bucket, d.d, ..., d.count, ...,
 *					eventkit.rollup_hll(d.h, hll_empty()) AS h,
 *					(SELECT tdigest(v, c) FROM unnest(d.p) v) AS p, d.skipped_events
 *			   FROM delta d WHERE d.batch_id > (the watermark)
 *			 UNION ALL
 *			 SELECT * FROM eventkit.rollup_stream_tail(rollup) AS s(...)) u
 *	  GROUP BY bucket, d, ...
 *
 * So the view reads no row of the stream through Citus while every new
 * batch has its deltas.
 *
 * A rollup of a rollup (create_rollup_of) has no deltas of its own: its
 * table is recomputed from its source's in the transaction of each refresh
 * of the source, which moves both watermarks.  So its tail is its source's
 * (qdelta the source's delta table, the watermark the source's,
 * tail_rollup_id), each row's bucket made the coarser one
 * (append_delta_partials) and grouped by the rollup's own dimensions; and
 * rollup_stream_tail() of it reads its source's batches and worker deltas
 * the same way.  The stream's rows by batch id past the watermark (the
 * tail of one node) would be wrong: a worker's rows carry the worker's own
 * batch ids, in no order with the coordinator's watermark (counted again
 * once folded when past it, missed when below it).
 */
static void
append_delta_tail(StringInfo buf, const RollupDef *def, Oid rollup, const char *qdelta,
				  int32 tail_rollup_id)
{
	ListCell   *lc;
	int			ngroup = 1;

	appendStringInfoString(buf, "SELECT u.bucket");
	foreach(lc, def->dims)
	{
		appendStringInfo(buf, ", u.%s", col(((RollupDim *) lfirst(lc))->name, NULL));
		ngroup++;
	}
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);
		char	   *c = col(m->name, NULL);

		switch (m->kind)
		{
			case RM_COUNT:
				appendStringInfo(buf, ", pg_catalog.sum(u.%s)::pg_catalog.int8 AS %s", c, c);
				break;
			case RM_SUM:
				appendStringInfo(buf, ", pg_catalog.sum(u.%s) AS %s", c, c);
				break;
			case RM_MIN:
				appendStringInfo(buf, ", pg_catalog.min(u.%s) AS %s", c, c);
				break;
			case RM_MAX:
				appendStringInfo(buf, ", pg_catalog.max(u.%s) AS %s", c, c);
				break;
			case RM_AVG:
				appendStringInfo(buf, ", pg_catalog.sum(u.%s) AS %s, pg_catalog.sum(u.%s)::pg_catalog.int8 AS %s",
								 col(m->name, "_sum"), col(m->name, "_sum"),
								 col(m->name, "_count"), col(m->name, "_count"));
				break;
			case RM_DISTINCT:
				appendStringInfo(buf, ", %s.hll_union_agg(u.%s) AS %s", def->hll_schema, c, c);
				break;
			case RM_PERCENTILE:
				appendStringInfo(buf, ", %s.tdigest(u.%s) AS %s", def->tdigest_schema, c, c);
				break;
		}
	}
	appendStringInfo(buf, ", pg_catalog.sum(u.%s)::pg_catalog.int8 AS %s FROM (",
					 EK_ROLLUP_SKIPPED_COLUMN, EK_ROLLUP_SKIPPED_COLUMN);
	append_delta_partials(buf, def);
	/*
	 * The stream's regclass constant (always true, folded away) keeps the
	 * view depending on the stream, as the tail over the stream did:
	 * dropping the stream needs the rollups dropped first.  Both OIDs are
	 * quoted literals, regclass constants, which the view's definition
	 * (and so pg_dump) gives as names; an integer cast to regclass would
	 * keep this server's OID, and a restored view would name whatever
	 * relation has that OID there (1.13)
	 */
	appendStringInfo(buf, " FROM %s d"
					 " WHERE d.batch_id OPERATOR(pg_catalog.>) (SELECT w.watermark FROM eventkit.rollups w"
					 " WHERE w.rollup_id OPERATOR(pg_catalog.=) %d)"
					 " AND '%u'::pg_catalog.regclass IS NOT NULL"
					 " UNION ALL SELECT * FROM %s.rollup_stream_tail('%u'::pg_catalog.regclass) AS s(",
					 qdelta, tail_rollup_id, def->stream_relid, stream_tail_schema(), rollup);
	append_tail_coldefs(buf, def);
	appendStringInfoString(buf, ")) u GROUP BY ");
	for (int i = 1; i <= ngroup; i++)
		appendStringInfo(buf, "%s%d", i > 1 ? ", " : "", i);
}

/*
 * The tail's partial states per group: of the stream's rows newer than
 * the watermark (where), or, for a rollup with a delta table of a stream
 * distributed on Citus (delta valid), of its deltas (append_delta_tail).
 * stand_ins: the stream's tail grouped by its join keys (definition_sql.c).
 */
static void
append_tail(StringInfo buf, const RollupDef *def, const char *where, bool small_hll,
			Oid rollup, Oid delta, int32 tail_rollup_id, List *stand_ins)
{
	if (OidIsValid(delta))
		append_delta_tail(buf, def, rollup, ek_qualified_relname(delta), tail_rollup_id);
	else
		ek_rollup_append_partial_select(buf, def, where, small_hll, stand_ins);
}

/*
 * The NULL stand-ins of the dimensions, for a tail grouped by its join keys
 * ek_keyN and ek_nullN (1.13): the FULL JOIN's tail read from the stream
 * (not from a delta table), with dimensions, none of them named like a key
 * column (a definition made before ek_* names were reserved).  NIL
 * otherwise: the join compares expressions of the tail's dimensions.
 */
static List *
tail_key_stand_ins(const RollupDef *def, bool full, Oid delta)
{
	List	   *stand_ins = NIL;
	ListCell   *lc;

	if (!full || OidIsValid(delta))
		return NIL;
	foreach(lc, def->dims)
	{
		int			n = foreach_current_index(lc) + 1;

		if (ek_rollup_uses_name(def, psprintf("ek_key%d", n)) ||
			ek_rollup_uses_name(def, psprintf("ek_null%d", n)))
			return NIL;
		stand_ins = lappend(stand_ins,
							unconstify(char *, null_stand_in(((RollupDim *) lfirst(lc))->typid)));
	}
	return stand_ins;
}

/*
 * CREATE VIEW <name>_realtime: the rollup's rows, finished, and the groups
 * of the not yet folded tail merged with their rows.  When every dimension
 * has a null_stand_in (1.7):
 *
 *	 SELECT COALESCE(t.bucket, r.bucket), COALESCE(t.d, r.d), ...,
 *			<finished: t merged with r, either may be missing>
 *	   FROM (the tail's partial states per group, grouped by bucket,
 *			 COALESCE(d, '') AS ek_key1, d IS NULL AS ek_null1, ...) t
 *	   FULL JOIN rollup r
 *		 ON t.bucket = r.bucket AND t.ek_key1 = COALESCE(r.d, '')
 *			AND t.ek_null1 = (r.d IS NULL) ...
 *
 * one hash join that hashes the tail's groups and reads the rollup once.
 * Since 1.13 the tail's side of the match is its grouping columns
 * (tail_key_stand_ins, definition_sql.c): the planner sizes a hash of the
 * tail by them, and hashes the tail rather than sorting every rollup row
 * for a Merge Full Join, as it did with COALESCE(t.d, '') = ... (1.7 to
 * 1.12, and still for a tail from Citus deltas).
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
	Oid			delta = InvalidOid;
	int32		tail_rollup_id = def->rollup_id;
	List	   *stand_ins;

	/*
	 * A rollup of a stream distributed on Citus: the tail from its deltas
	 * (with the catalog of 1.9, which has the functions); of a rollup of a
	 * rollup, from its source's (since 1.15; append_delta_tail)
	 */
	if (OidIsValid(def->relid) && ek_citus_table_kind(def->stream_relid) == EK_CITUS_HASH &&
		small_hll && count_fn && stream_tail_schema() != NULL)
	{
		RollupRow	src;

		if (!OidIsValid(def->source))
			delta = ek_rollup_delta_relid(def->relid);
		else if (ek_rollups_read(def->source, false, &src))
		{
			delta = ek_rollup_delta_relid(src.relid);
			tail_rollup_id = src.rollup_id;
		}
	}

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

	stand_ins = tail_key_stand_ins(def, full, delta);

	initStringInfo(&match);
	appendStringInfoString(&match, "t.bucket OPERATOR(pg_catalog.=) r.bucket");
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);
		char	   *c = col(d->name, NULL);

		if (stand_ins != NIL)
			appendStringInfo(&match, " AND t.ek_key%d OPERATOR(pg_catalog.=) COALESCE(r.%s, %s)"
							 " AND t.ek_null%d OPERATOR(pg_catalog.=) (r.%s IS NULL)",
							 foreach_current_index(lc) + 1, c, null_stand_in(d->typid),
							 foreach_current_index(lc) + 1, c);
		else if (full)
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
		append_tail(&buf, def, where.data, small_hll, def->relid, delta, tail_rollup_id, stand_ins);
		appendStringInfo(&buf, ") t FULL JOIN %s r ON %s", qtable, match.data);
		return buf.data;
	}
	appendStringInfo(&buf, "CREATE VIEW %s AS WITH ek_tail AS MATERIALIZED (", qview);
	append_tail(&buf, def, where.data, small_hll, def->relid, delta, tail_rollup_id, NIL);
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

/* Does relid (a heap) have a row visible in the active snapshot? */
static bool
has_rows(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, ActiveSnapshotSet() ? GetActiveSnapshot() :
										  GetTransactionSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found = table_scan_getnextslot(scan, ForwardScanDirection, slot);

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The rows of the last SPI query into the tail's tuplestore, checked to
 * have the columns the realtime view expects.
 */
static void
put_tail_rows(ReturnSetInfo *rsinfo, Oid relid)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	TupleDesc	want = rsinfo->setDesc;

	if (desc->natts != want->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the tail of rollup \"%s\" has %d columns, its realtime view expects %d",
						get_rel_name(relid), desc->natts, want->natts),
				 errhint("Drop the rollup and create it again.")));
	for (int a = 0; a < desc->natts; a++)
		if (TupleDescAttr(desc, a)->atttypid != TupleDescAttr(want, a)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of the tail of rollup \"%s\" is of type %s, its realtime view expects %s",
							a + 1, get_rel_name(relid),
							format_type_be(TupleDescAttr(desc, a)->atttypid),
							format_type_be(TupleDescAttr(want, a)->atttypid)),
					 errhint("Drop the rollup and create it again.")));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum	   *values = palloc(desc->natts * sizeof(Datum));
		bool	   *nulls = palloc(desc->natts * sizeof(bool));

		heap_deform_tuple(SPI_tuptable->vals[i], desc, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, want, values, nulls);
	}
}

/*
 * eventkit.rollup_stream_tail(rollup regclass) RETURNS SETOF
 * record, called by the realtime view of a rollup of a distributed stream
 * (append_delta_tail): the partial states per group of the stream's rows
 * of the batches newer than the rollup's watermark that stored events
 * (eventkit.ingest_batches) and have no delta rows (an ingest that began
 * before the rollup existed, a stream that does not store ingest's values
 * as given), read from the stream (through Citus) only when there are such
 * batches; none otherwise.  In the caller's snapshot (the view's); for a
 * caller who may read the rollup's realtime view or its table, as the
 * rollup's owner (who reads the stream, as the view would).  Of a rollup
 * of a rollup (1.15): its source's batches and worker deltas, in its own
 * buckets and dimensions (append_delta_tail).
 */
Datum
eventkit_rollup_stream_tail(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RollupRow	row;
	RollupRow	src;
	const RollupRow *tail = &row;
	RollupDef	def;
	EkRoleScope as_owner;
	Oid			delta;
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		args[2];
	Datum		batches;
	Oid			wdelta;
	Oid			shard;
	bool		distributed;
	int64		folded = 0;
	bool		isnull;
	int			rc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	SPI_connect();
	if (!ek_rollups_read(relid, false, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation with OID %u is not a rollup", relid),
				 errhint("Rollups are listed in eventkit.rollups.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		(!OidIsValid(row.view) ||
		 pg_class_aclcheck(row.view, GetUserId(), ACL_SELECT) != ACLCHECK_OK))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for rollup %s", get_rel_name(relid)),
				 errdetail("The tail of a rollup is read by those who may read its table or its realtime view.")));
	/* a rollup of a rollup: its source's tail (the caller checked on it) */
	if (OidIsValid(row.source))
	{
		if (!ek_rollups_read(row.source, false, &src))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the source of rollup \"%s\" does not exist", get_rel_name(relid)),
					 errhint("Drop the rollup.")));
		tail = &src;
	}
	delta = ek_rollup_delta_relid(tail->relid);
	if (!OidIsValid(delta))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("rollup \"%s\" has no delta table", get_rel_name(tail->relid)),
				 errhint("Drop the rollup and create it again.")));

	/*
	 * The batches newer than the watermark that stored events, from
	 * eventkit's catalog, as the extension owner (the rollup's owner, any
	 * role, may not read it); of those, the ones without delta rows, and
	 * the stream, as the rollup's owner (whose the delta table is: nothing
	 * of the owner's runs with the extension owner's rights)
	 */
	ek_as_owner_begin(&as_owner);
	args[0] = Int32GetDatum(tail->stream_id);
	args[1] = Int32GetDatum(tail->rollup_id);
	rc = SPI_execute_with_args("SELECT pg_catalog.array_agg(b.batch_id) FROM eventkit.ingest_batches b"
							   " WHERE b.stream_id OPERATOR(pg_catalog.=) $1"
							   " AND b.accepted OPERATOR(pg_catalog.>) 0"
							   " AND b.batch_id OPERATOR(pg_catalog.>) (SELECT w.watermark FROM eventkit.rollups w"
							   " WHERE w.rollup_id OPERATOR(pg_catalog.=) $2)",
							   2, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read the rollup's batches: %s", SPI_result_code_string(rc));
	batches = ek_spi_value(0, 1, &isnull);
	if (!isnull)
		batches = PointerGetDatum(DatumGetArrayTypePCopy(batches));
	/* a distributed worker delta table's folded generations, in this snapshot too */
	wdelta = ek_rollup_wdelta_relid(tail->relid);
	distributed = ek_rollup_wdelta_generational(wdelta);
	if (distributed)
		folded = ek_rollup_wdelta_folded(tail->rollup_id);
	ek_as_role_end(&as_owner);
	ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	if (!isnull)
	{
		Oid			batch_type = INT8ARRAYOID;

		rc = SPI_execute_with_args(psprintf("SELECT pg_catalog.array_agg(b) FROM pg_catalog.unnest($1) b"
											" WHERE NOT EXISTS (SELECT FROM %s d"
											" WHERE d.batch_id OPERATOR(pg_catalog.=) b)",
											ek_qualified_relname(delta)),
								   1, &batch_type, &batches, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read the rollup's batches: %s", SPI_result_code_string(rc));
		batches = ek_spi_value(0, 1, &isnull);
	}
	/*
	 * the workers' deltas: a Citus local table's (before 1.17) shard here,
	 * if it has a row in this snapshot; a distributed one's through Citus
	 */
	shard = OidIsValid(wdelta) && !distributed ? ek_citus_local_shard(wdelta) : InvalidOid;
	if (OidIsValid(wdelta) && OidIsValid(shard) && !has_rows(shard))
		wdelta = InvalidOid;
	if (!isnull || OidIsValid(wdelta))
	{
		ek_rollup_def_of_row(&row, row.measures, false, &def);
	}
	if (!isnull)
	{
		StringInfoData sql;
		Oid			batch_type = INT8ARRAYOID;

		initStringInfo(&sql);
		ek_rollup_append_partial_select(&sql, &def,
										"s.batch_id OPERATOR(pg_catalog.=) ANY ($1)", true, NIL);
		batches = PointerGetDatum(DatumGetArrayTypePCopy(batches));
		rc = SPI_execute_with_args(sql.data, 1, &batch_type, &batches, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read the rollup's tail: %s", SPI_result_code_string(rc));
		put_tail_rows(rsinfo, relid);
	}

	/*
	 * The deltas of the batches ingested on the Citus workers, all that
	 * this snapshot sees.  A Citus local table's: a refresh deletes those
	 * it folds in the transaction that merges them into the rollup table;
	 * its rows are the coordinator's, as the rollup table's, so the view
	 * sees each group's delta in one of the two (rollup/delta.c).  A
	 * distributed one's are read on each shard's node in that node's
	 * snapshot (Citus has no cluster-wide snapshot), those of no generation
	 * or of one above the generation folded that this snapshot of the
	 * catalog sees, read with the rollup table in the same snapshot: exact
	 * whatever a refresh commits meanwhile (wdelta.c).
	 */
	if (OidIsValid(wdelta))
	{
		StringInfoData sql;

		/* (a Citus local table's shard is read here, not through Citus) */
		initStringInfo(&sql);
		append_delta_partials(&sql, &def);
		appendStringInfo(&sql, " FROM %s d",
						 ek_qualified_relname(OidIsValid(shard) ? shard : wdelta));
		if (distributed)
		{
			Oid			gen_type = INT8OID;
			Datum		gen = Int64GetDatum(folded);

			/* (the rows of the generations folded are in the rollup table) */
			appendStringInfo(&sql, " WHERE d.%s IS NULL OR d.%s OPERATOR(pg_catalog.>) $1",
							 EK_ROLLUP_WDELTA_GEN_COLUMN, EK_ROLLUP_WDELTA_GEN_COLUMN);
			rc = SPI_execute_with_args(sql.data, 1, &gen_type, &gen, NULL, true, 0);
		}
		else
			rc = SPI_execute(sql.data, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read the rollup's worker deltas: %s",
				 SPI_result_code_string(rc));
		put_tail_rows(rsinfo, relid);
	}
	ek_as_role_end(&as_owner);
	SPI_finish();
	return (Datum) 0;
}
