/*-------------------------------------------------------------------------
 *
 * backfill.c
 *	  A rollup's history computed from all the stream's rows in one GROUP
 *	  BY: the backfill of a new rollup of a stream distributed on Citus
 *	  (create_rollup), and the new measures of a rollup (add_rollup_measures:
 *	  of every row up to the watermark on one node, of all rows of a
 *	  distributed stream).
 *
 *	  Why a GROUP BY of all rows for a distributed stream.  A rollup's
 *	  ordinary backfill folds the coordinator's batches in the order of the
 *	  coordinator's batch ids (refresh.c); the workers number and log their
 *	  calls' batches on their own node, so their events are not in that
 *	  order and not in the coordinator's batch log.  Instead, with the
 *	  stream locked on every node (the caller's LOCK TABLE, which Citus
 *	  takes on each node: no ingest call of the stream is in flight on any
 *	  node, and one that starts waits until the caller commits), every row
 *	  the stream holds is committed and no other row can be: one SELECT of
 *	  the partial states per bucket and dimensions (count, sum, min, max,
 *	  avg's sum and count, hll_add_agg, tdigest, the values skipped), which
 *	  Citus runs on each shard and merges on the coordinator (all are
 *	  mergeable), reads each row exactly once.  A call on a worker commits
 *	  the other nodes' shards (COMMIT PREPARED) before it releases its own
 *	  node's lock (Citus does it in the commit callback, before PostgreSQL
 *	  releases the locks), so the lock also waits for those rows.
 *	  Definition parsing and the SELECT itself are definition.c's
 *	  (ek_rollup_backfill_select, the realtime view's tail SELECT without the
 *	  OFFSET 0 that would make Citus gather the rows).
 *
 *	  The rebuild of a stream's rollups by undistribute_stream (a stream
 *	  restored from a Citus coordinator's dump, on a server where it is not
 *	  distributed): their rows, deltas and watermarks hold the batch ids
 *	  of every node of the old cluster, which this server's batch log does
 *	  not know; each rollup is made again from all the stream's rows by the
 *	  same GROUP BY, as create_rollup with its backfill would make it here.
 *
 *	  The values skipped are counted per group (skipped_events) and by
 *	  reason (for eventkit.rollups.skipped_values) as the fold counts them:
 *	  the SELECT sums them per group on the shards, skipped_events and the
 *	  measures' two reasons in one sum (definition_sql.c's
 *	  append_backfill_skips), split per group here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog/rollups.h"
#include "rollup/backfill.h"
#include "rollup/delta.h"
#include "rollup/derived.h"
#include "rollup/rollup.h"
#include "rollup/values.h"
#include "util/owner.h"
#include "util/spi.h"

/*
 * Fill the (empty) table qtable of the rollup def with the partial states
 * of all the stream's rows, grouped on the shards by Citus (or, for a
 * stream that is not a Citus table, by this server).  Returns the events
 * folded; adds the values skipped, by reason, to *skips.  Caller: SPI
 * connected, as the rollup's owner, the stream locked on every node
 * against ingest.
 */
int64
ek_rollup_backfill_all(const RollupDef *def, const char *qtable, RollupSkips *skips)
{
	StringInfoData cols;
	StringInfoData sums;
	bool		isnull;
	Datum		events;
	int			rc;

	initStringInfo(&cols);
	ek_rollup_append_state_columns(&cols, def, "");
	/* the skipped values by reason: each group's ek_skipped_values split */
	initStringInfo(&sums);
	appendStringInfo(&sums, ", pg_catalog.sum(pg_catalog.mod(t.ek_skipped_values, " INT64_FORMAT "))::pg_catalog.int8"
					 ", pg_catalog.sum(pg_catalog.mod(pg_catalog.div(t.ek_skipped_values, " INT64_FORMAT "), "
					 INT64_FORMAT "))::pg_catalog.int8"
					 ", pg_catalog.sum(t.ek_truncated_values)::pg_catalog.int8",
					 EK_SKIP_RANGE_UNIT, EK_SKIP_RANGE_UNIT, EK_SKIP_RANGE_UNIT);
	/*
	 * The CTE is run first (the GROUP BY through Citus, its groups kept as
	 * an intermediate result on the coordinator), then the INSERT into the
	 * coordinator's table reads them
	 */
	rc = SPI_execute(psprintf("WITH t AS MATERIALIZED (%s),"
							  " i AS (INSERT INTO %s (%s) SELECT %s FROM t)"
							  " SELECT pg_catalog.sum(t.ek_events)::pg_catalog.int8%s FROM t",
							  ek_rollup_backfill_select(def), qtable,
							  cols.data, cols.data, sums.data),
					 false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not fold the history of rollup \"%s\": %s",
			 qtable, SPI_result_code_string(rc));
	{
		const int	reasons[3] = {RSK_NOT_A_NUMBER, RSK_OUT_OF_RANGE, RSK_DIMENSION_TRUNCATED};

		for (int c = 0; c < lengthof(reasons); c++)
		{
			Datum		n = ek_spi_value(0, c + 2, &isnull);

			if (!isnull)
				skips->n[reasons[c]] += DatumGetInt64(n);
		}
	}
	events = ek_spi_value(0, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(events);
}

/*
 * Compute the measures of added (the measures add_rollup_measures adds;
 * full: the rollup's whole definition, with its dimensions) and
 * skipped_events of every bucket of qtable from the stream's rows: those
 * with batch_id <= watermark, or (watermark < 0: a distributed stream,
 * locked on every node, every row folded) all rows, grouped on the
 * shards.  A bucket that has no row left keeps NULL (count: 0) in them.
 * Caller: SPI connected, as the rollup's owner.
 */
void
ek_rollup_compute_measures(const RollupDef *added, const RollupDef *full, const char *qtable,
						   int64 watermark)
{
	StringInfoData set;
	StringInfoData on;
	ListCell   *lc;
	bool		all = watermark < 0;
	int			rc;

	initStringInfo(&set);
	initStringInfo(&on);
	ek_rollup_append_state_sets(&set, added, "t");
	appendStringInfoString(&on, "r.bucket OPERATOR(pg_catalog.=) t.bucket");
	foreach(lc, full->dims)
	{
		const char *c = quote_identifier(((RollupDim *) lfirst(lc))->name);

		appendStringInfo(&on, " AND r.%s IS NOT DISTINCT FROM t.%s", c, c);
	}
	/* (a distributed stream's: a CTE, run through Citus first, as above) */
	if (all)
		rc = SPI_execute(psprintf("WITH t AS MATERIALIZED (%s) UPDATE %s r SET %s FROM t WHERE %s",
								  ek_rollup_tail_select(full, "true", true),
								  qtable, set.data + 2 /* without ", " */, on.data),
						 false, 0);
	else
		rc = SPI_execute(psprintf("UPDATE %s r SET %s FROM (%s) t WHERE %s", qtable, set.data + 2,
								  ek_rollup_tail_select(full, psprintf("s.batch_id OPERATOR(pg_catalog.<=) " INT64_FORMAT,
																	   watermark), false),
								  on.data),
						 false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "eventkit: could not compute the new measures: %s",
			 SPI_result_code_string(rc));
}

/* DELETE FROM a table (as the current role) */
static void
delete_all(Oid relid)
{
	ek_spi_exec(psprintf("DELETE FROM %s", ek_qualified_relname(relid)), SPI_OK_DELETE);
}

/*
 * undistribute_stream of a stream (stream_id) with rollups: rebuild each
 * rollup of the stream from all the stream's rows, as create_rollup with
 * its backfill would make it on this server: its rows deleted and made
 * again by the GROUP BY above (its skipped values counted by reason), its
 * deltas deleted, its worker delta table (the Citus workers' deltas)
 * dropped (a rollup of a stream that is not distributed has none;
 * distribute_stream makes it again), its watermark and backfill target
 * watermark, its counts those of the rebuild; and the rollups of it
 * recomputed from it, their watermarks moved along.  Its definition, name,
 * owner, grants, schedule and realtime view stay (the caller makes the
 * view again for a stream that is not distributed).  watermark: this
 * server's batch position, at least the largest batch id of the stream's
 * rows (catalog/batches.c's ek_batches_advance_past), so that every row
 * is folded and later batches are new.  Returns the rollups rebuilt (the
 * rollups of them not counted); a NOTICE for each.  Caller: SPI
 * connected, the stream locked against ingest.
 */
int
ek_rollups_rebuild(int32 stream_id, int64 watermark)
{
	List	   *relids = NIL;
	ListCell   *lc;
	int			rebuilt = 0;

	/* (a copy: the catalog cache's list is valid until its next use) */
	foreach(lc, ek_rollups_of_stream(stream_id))
		relids = lappend_oid(relids, ((StreamRollup *) lfirst(lc))->relid);
	foreach(lc, relids)
	{
		RollupRow	row;
		RollupDef	def;
		RollupSkips skips;
		EkRoleScope as_owner;
		Oid			delta;
		Oid			wdelta;
		int64		events;
		Datum		skipped;
		bool		skipped_null;
		ListCell   *dc;

		CHECK_FOR_INTERRUPTS();
		/* (no refresh until this commits) */
		if (!ek_rollups_read(lfirst_oid(lc), true, &row) || OidIsValid(row.source))
			continue;
		ek_rollup_def_of_row(&row, row.measures, false, &def);
		delta = ek_rollup_delta_relid(row.relid);
		wdelta = ek_rollup_wdelta_relid(row.relid);
		if (OidIsValid(wdelta))
		{
			ek_as_role_begin(&as_owner, ek_relation_owner(wdelta), 0);
			ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(wdelta)), SPI_OK_UTILITY);
			ek_as_role_end(&as_owner);
		}
		memset(&skips, 0, sizeof(skips));
		ek_as_role_begin(&as_owner, ek_relation_owner(row.relid), 0);
		delete_all(row.relid);
		if (OidIsValid(delta))
			delete_all(delta);
		events = ek_rollup_backfill_all(&def, ek_qualified_relname(row.relid), &skips);
		ek_as_role_end(&as_owner);
		skipped = ek_rollup_skips_jsonb(&skips, &skipped_null);
		ek_rollups_record_rebuild(&row, watermark, events, skipped, skipped_null);

		/* the rollups of it: from its new rows, as create_rollup_of makes them */
		foreach(dc, ek_rollups_derived(row.relid))
		{
			RollupRow	drow;

			if (!ek_rollups_read(lfirst_oid(dc), true, &drow))
				continue;
			ek_as_role_begin(&as_owner, ek_relation_owner(drow.relid), 0);
			delete_all(drow.relid);
			ek_as_role_end(&as_owner);
			ek_rollup_recompute_derived(&drow, NULL);
			ek_rollups_record_rebuild(&drow, watermark, 0, (Datum) 0, true);
		}
		ereport(NOTICE,
				(errmsg("rollup \"%s\" rebuilt from the %lld events of stream \"%s\"",
						get_rel_name(row.relid), (long long) events, get_rel_name(row.stream)),
				 errdetail("Its rows were made again from all the stream's rows, its deltas deleted%s; its watermark is this server's batch position, " INT64_FORMAT ".",
						   OidIsValid(wdelta) ? " and its worker delta table dropped" : "",
						   watermark)));
		rebuilt++;
	}
	return rebuilt;
}
