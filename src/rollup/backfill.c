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
 *	  (ek_rollup_tail_select, the realtime view's tail SELECT without the
 *	  OFFSET 0 that would make Citus gather the rows).
 *
 *	  The values skipped are counted per group (skipped_events) as the
 *	  fold counts them; not by reason in eventkit.rollups.skipped_values
 *	  (the SQL does not tell the reason).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "rollup/backfill.h"
#include "rollup/rollup.h"
#include "util/spi.h"

/*
 * Fill the (empty) table qtable of the rollup def with the partial states
 * of all the stream's rows, grouped on the shards by Citus.  Returns the
 * events folded.  Caller: SPI connected, as the rollup's owner, the stream
 * locked on every node against ingest.
 */
int64
ek_rollup_backfill_all(const RollupDef *def, const char *qtable)
{
	StringInfoData cols;
	bool		isnull;
	Datum		events;
	int			rc;

	initStringInfo(&cols);
	ek_rollup_append_state_columns(&cols, def, "");
	/*
	 * The CTE is run first (the GROUP BY through Citus, its groups kept as
	 * an intermediate result on the coordinator), then the INSERT into the
	 * coordinator's table reads them
	 */
	rc = SPI_execute(psprintf("WITH t AS MATERIALIZED (%s),"
							  " i AS (INSERT INTO %s (%s) SELECT %s FROM t)"
							  " SELECT pg_catalog.sum(t.ek_events)::pg_catalog.int8 FROM t",
							  ek_rollup_tail_select(def, "true", true), qtable,
							  cols.data, cols.data),
					 false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not fold the history of rollup \"%s\": %s",
			 qtable, SPI_result_code_string(rc));
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
