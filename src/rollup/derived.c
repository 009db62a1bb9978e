/*-------------------------------------------------------------------------
 *
 * derived.c
 *	  Rollups of rollups (eventkit.create_rollup_of(), manage.c): which
 *	  buckets can be made of a source's buckets, and the recompute of a
 *	  derived rollup's buckets from its source rollup's partial states (all
 *	  of them when it is made; after each refresh of the source, those that
 *	  hold a source bucket the refresh merged into, in the same transaction,
 *	  with the derived rollup's watermark moved along).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog/rollups.h"
#include "rollup/derived.h"
#include "util/owner.h"
#include "util/spi.h"

/*
 * Can buckets of width outer be made of whole buckets of width inner (same
 * time zone and origin)?
 */
bool
ek_rollup_bucket_divides(const Interval *inner, bool inner_origin, const Interval *outer)
{
	int64		wi = (int64) inner->day * USECS_PER_DAY + inner->time;
	int64		wo = (int64) outer->day * USECS_PER_DAY + outer->time;

	if (inner->month != 0)
		return outer->month == 12;	/* months and years make years */
	if (outer->month != 0)
		return !inner_origin && USECS_PER_DAY % wi == 0;	/* local midnights are edges */
	return wo % wi == 0;
}

/*
 * INSERT INTO the rollup of a rollup (def, table qderived) the buckets
 * recomputed from its source's table qsource, merging the source's partial
 * states: count, sum and avg parts add, min and max, hll_union_agg, the
 * t-digests combined.  With touched: only the buckets that contain a
 * source bucket of the array $1; else all.  A recomputed bucket replaces
 * the row that was there (ON CONFLICT DO UPDATE SET ... = EXCLUDED).
 */
static char *
derived_sql(const RollupDef *def, const char *qsource, const char *qderived,
			const char *keyname, bool touched)
{
	StringInfoData buf;
	ListCell   *lc;
	int			ngroup = 1;

	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s AS r (", qderived);
	ek_rollup_append_state_columns(&buf, def, "");
	appendStringInfo(&buf, ") SELECT %s", ek_rollup_bucket_expr(def, "s.bucket"));
	foreach(lc, def->dims)
	{
		appendStringInfo(&buf, ", s.%s", quote_identifier(((RollupDim *) lfirst(lc))->name));
		ngroup++;
	}
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);
		const char *c = quote_identifier(m->name);

		switch (m->kind)
		{
			case RM_COUNT:
				appendStringInfo(&buf, ", pg_catalog.sum(s.%s)::pg_catalog.int8", c);
				break;
			case RM_SUM:
				appendStringInfo(&buf, ", pg_catalog.sum(s.%s)", c);
				break;
			case RM_MIN:
				appendStringInfo(&buf, ", pg_catalog.min(s.%s)", c);
				break;
			case RM_MAX:
				appendStringInfo(&buf, ", pg_catalog.max(s.%s)", c);
				break;
			case RM_AVG:
				appendStringInfo(&buf, ", pg_catalog.sum(s.%s), pg_catalog.sum(s.%s)::pg_catalog.int8",
								 quote_identifier(psprintf("%s_sum", m->name)),
								 quote_identifier(psprintf("%s_count", m->name)));
				break;
			case RM_DISTINCT:
				appendStringInfo(&buf, ", %s.hll_union_agg(s.%s)", def->hll_schema, c);
				break;
			case RM_PERCENTILE:
				appendStringInfo(&buf, ", %s.tdigest(s.%s)", def->tdigest_schema, c);
				break;
		}
	}
	appendStringInfo(&buf, ", pg_catalog.sum(s.%s)::pg_catalog.int8 FROM %s s",
					 EK_ROLLUP_SKIPPED_COLUMN, qsource);
	if (touched)
		appendStringInfo(&buf, " JOIN (SELECT DISTINCT %s AS lo"
						 " FROM pg_catalog.unnest($1::pg_catalog.timestamptz[]) b(b)) t"
						 " ON s.bucket OPERATOR(pg_catalog.>=) t.lo"
						 " AND s.bucket OPERATOR(pg_catalog.<) %s",
						 ek_rollup_bucket_expr(def, "b.b"),
						 ek_rollup_next_bucket_expr(def, "t.lo"));
	appendStringInfoString(&buf, " GROUP BY ");
	for (int i = 1; i <= ngroup; i++)
		appendStringInfo(&buf, "%s%d", i > 1 ? ", " : "", i);
	appendStringInfo(&buf, " ON CONFLICT ON CONSTRAINT %s DO UPDATE SET bucket = r.bucket",
					 quote_identifier(keyname));
	ek_rollup_append_state_sets(&buf, def, "EXCLUDED");
	return buf.data;
}

/*
 * Recompute a rollup of a rollup (row, its catalog row) from its source:
 * the buckets that hold the source buckets in touched, or (NULL) all.
 * Caller: SPI connected, the source's catalog row locked.
 */
void
ek_rollup_recompute_derived(const RollupRow *row, RollupTouched *touched)
{
	RollupDef	def;
	EkRoleScope as_owner;
	char	   *sql;
	int			rc;

	if (touched != NULL && touched->n == 0)
		return;
	ek_as_role_begin(&as_owner, ek_relation_owner(row->relid), 0);
	ek_rollup_def_of_row(row, row->measures, false, &def);
	sql = derived_sql(&def, ek_qualified_relname(row->source), ek_qualified_relname(row->relid),
					  psprintf("%s_key", get_rel_name(row->relid)), touched != NULL);
	if (touched != NULL)
	{
		Oid			argtypes[1] = {TIMESTAMPTZARRAYOID};
		Datum		args[1];

		args[0] = ek_make_array(touched->buckets, NULL, touched->n, TIMESTAMPTZOID);
		rc = SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0);
	}
	else
		rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not recompute rollup \"%s\": %s",
			 get_rel_name(row->relid), SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
}

/*
 * After a refresh of a rollup folded (.., to]: recompute the rollups of it
 * (derived, their tables) for the buckets its fold touched, and move their
 * watermarks with its own, in the same transaction.
 */
void
ek_rollup_refresh_derived(List *derived, RollupTouched *touched, int64 to, int64 events)
{
	ListCell   *lc;

	foreach(lc, derived)
	{
		RollupRow	row;

		CHECK_FOR_INTERRUPTS();
		if (!ek_rollups_read(lfirst_oid(lc), true, &row))
			continue;			/* dropped meanwhile */
		ek_rollup_recompute_derived(&row, touched);
		ek_rollups_record_refresh(&row, to, events, (Datum) 0, true, row.format);
	}
}
