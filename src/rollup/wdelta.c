/*-------------------------------------------------------------------------
 *
 * wdelta.c
 *	  The refresh's fold of a rollup's worker delta table distributed with
 *	  its stream (1.17, eventkit.worker_deltas_on_shards; delta.c writes
 *	  it), by generations, so that the realtime view stays exact while a
 *	  refresh commits although Citus has no cluster-wide snapshot.
 *
 *	  Each row has ek_gen, NULL when a worker's call writes it.  A refresh,
 *	  holding the rollup's catalog row FOR UPDATE (refreshes of one rollup
 *	  take turns), with the generations of the catalog row (marked M,
 *	  folded F, deleted D; eventkit.rollups.wdelta_*):
 *
 *	  0. marks every unmarked row with M + 1 in a transaction of its own,
 *	     committed on every node before the refresh goes on: Citus's
 *	     run_command_on_coordinator runs the UPDATE through a new
 *	     connection to the coordinator (a function cannot commit in its
 *	     middle); only when the refresh's transaction holds no lock on the
 *	     table but ACCESS SHARE (else that UPDATE could wait for a lock of
 *	     this very transaction, a wait no deadlock detector sees: the table
 *	     written or locked before in the transaction, by a refresh of the
 *	     same rollup or DDL), and as if an earlier refresh had done it: M
 *	     becomes M + 1;
 *	  1. marks every row still unmarked with M + 1 (one UPDATE through
 *	     Citus, in the refresh's transaction);
 *	  2. deletes the rows of generations <= F once no snapshot of the
 *	     coordinator can still see a value of wdelta_folded below F (step 4);
 *	  3. folds the rows of generations (F, M] (one SELECT through Citus):
 *	     marked by earlier refreshes or step 0, never by step 1;
 *	  4. records M + 1 and F = M (with max_events: fewer generations,
 *	     whole ones, at least one) and this transaction's id, committed on
 *	     the coordinator with the merge into the rollup table.
 *
 *	  The realtime view (view.c) counts a row when its generation is NULL
 *	  or above the wdelta_folded its own statement's snapshot of the
 *	  catalog sees, the snapshot it reads the rollup table in.  Why that is
 *	  exact: the rows the refresh R folds were marked by an earlier refresh
 *	  or R's step 0, P, committed on the coordinator before R's step 1.
 *	  P's marks are committed on a worker before R's step 1 there ends: a
 *	  row P marked whose COMMIT PREPARED has not reached the worker is still
 *	  unmarked and locked by P's prepared transaction, and R's UPDATE of
 *	  the unmarked rows waits for it.  R's step 3 then sees them (a new
 *	  statement, a new snapshot: a refresh runs in READ COMMITTED).  A view
 *	  whose coordinator snapshot sees R's commit reads each worker later
 *	  (Citus opens a worker's snapshot when it sends it the statement, after
 *	  the coordinator's was taken), after R's step 1 ended there: it sees
 *	  P's marks, below its wdelta_folded: not counted, and counted in the
 *	  rollup table.  A view that does not see R's commit counts them from
 *	  the worker delta table (marked or not, they are above its
 *	  wdelta_folded) and not in the rollup table.  The marks of step 1
 *	  are above every wdelta_folded until a later refresh, so their commit
 *	  order does not matter.  A refresh that fails after step 0 leaves its
 *	  rows marked, above wdelta_folded (a later step 0 may give rows the
 *	  same generation again: only above or not above matters); one that
 *	  fails later rolls back the rest: the next refresh folds them.  Step 2
 *	  deletes only rows that every snapshot of the coordinator counts as
 *	  folded: the transaction that made F the folded generation is older
 *	  than the xmin of every backend of the database with a snapshot
 *	  (GetCurrentVirtualXIDs, as CREATE INDEX CONCURRENTLY finds the
 *	  snapshots to wait for; here the refresh does not wait, it leaves
 *	  them to a later refresh).
 *
 *	  Without step 0 (a refresh in a transaction that wrote or locked the
 *	  table before it, a coordinator not in Citus's metadata, a connection
 *	  refused, no Citus) a refresh folds the rows the refresh before it
 *	  marked: a worker's batch reaches the rollup table at the second
 *	  refresh after its commit (the realtime view counts it from its
 *	  commit).  A refresh that must fold everything
 *	  committed (complete: add_rollup_measures, the catch-up before a
 *	  deletion of a stream's rows, both with ingest held off on every node,
 *	  in transactions that wrote) also folds the rows it marks itself in
 *	  step 1; while it commits, the view can count those twice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/lsyscache.h"

#include "catalog/rollups.h"
#include "rollup/fold.h"
#include "rollup/wdelta.h"
#include "util/citus.h"
#include "util/spi.h"

/*
 * Does every snapshot of this database's backends see the transaction
 * xid (committed) as committed: is it older than each of their xmins?
 * (This backend's own snapshots aside.)
 */
static bool
seen_by_every_snapshot(FullTransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	VirtualTransactionId *vxids;
	int			n;

	/* (older than any xmin can be) */
	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(xid) > (uint64) (MaxTransactionId >> 1))
		return true;
	vxids = GetCurrentVirtualXIDs(XidFromFullTransactionId(xid), true, false,
								  PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &n);
	pfree(vxids);
	return n == 0;
}

/* Run sql on the worker delta table with one int8 parameter; rows processed. */
static uint64
run(const char *sql, int64 arg, int expected)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(arg)};
	int			rc = SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "eventkit: a statement on the rollup's worker delta table failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * With max_events > 0: the last generation of (folded, marked] to fold,
 * whole generations in order while the events before them are fewer than
 * max_events (at least one).
 */
static int64
generations_for(const char *qwdelta, int64 folded, int64 marked, int64 max_events)
{
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(folded), Int64GetDatum(marked)};
	int64		before = 0;
	int64		to = folded;
	int			rc;

	rc = SPI_execute_with_args(psprintf("SELECT %s, pg_catalog.sum(%s)::pg_catalog.int8 FROM %s"
										" WHERE %s OPERATOR(pg_catalog.>) $1 AND %s OPERATOR(pg_catalog.<=) $2"
										" GROUP BY 1 ORDER BY 1",
										EK_ROLLUP_WDELTA_GEN_COLUMN, EK_ROLLUP_DELTA_EVENTS_COLUMN,
										qwdelta, EK_ROLLUP_WDELTA_GEN_COLUMN,
										EK_ROLLUP_WDELTA_GEN_COLUMN),
							   2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read the generations of the rollup's worker delta table: %s",
			 SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed && (r == 0 || before < max_events); r++)
	{
		bool		isnull;

		to = DatumGetInt64(ek_spi_value(r, 1, &isnull));
		before += DatumGetInt64(ek_spi_value(r, 2, &isnull));
	}
	/* no rows: the empty generations are folded all the same */
	return SPI_processed == 0 ? marked : to;
}

/* Does this transaction hold a lock on relid stronger than ACCESS SHARE? */
static bool
locked_by_me(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		locked = CheckRelationLockedByMe(rel, RowShareLock, true);

	relation_close(rel, NoLock);
	return locked;
}

/* The marking of step 0 (premark_run) */
typedef struct Premark
{
	const char *qwdelta;
	int64		gen;
	bool		done;
} Premark;

/*
 * Step 0: mark the unmarked rows with p->gen in a transaction of its own,
 * committed on every node when this returns (p->done): through Citus's
 * run_command_on_coordinator, a new connection to the coordinator, as the
 * current role, which runs the UPDATE as a distributed statement and
 * commits it.
 */
static void
premark_run(void *arg)
{
	Premark    *p = arg;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	Datum		v;
	int			rc;

	args[0] = CStringGetTextDatum(psprintf("UPDATE %s SET %s = " INT64_FORMAT " WHERE %s IS NULL",
										   p->qwdelta, EK_ROLLUP_WDELTA_GEN_COLUMN, p->gen,
										   EK_ROLLUP_WDELTA_GEN_COLUMN));
	rc = SPI_execute_with_args("SELECT pg_catalog.bool_and(r.success)"
							   " FROM pg_catalog.run_command_on_coordinator($1) r",
							   1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		return;
	v = ek_spi_value(0, 1, &isnull);
	p->done = !isnull && DatumGetBool(v);
}

/*
 * The refresh's fold of the distributed worker delta table wdelta of the
 * rollup rollup_id (see the top): returns the events folded, adds the
 * values skipped to *skips.  complete: also the rows marked now.  Caller:
 * SPI connected, as the rollup owner, the rollup's catalog row FOR UPDATE.
 */
int64
ek_rollup_fold_worker_gens(const RollupDef *def, const char *qtable, const char *keyname,
						   Oid wdelta, int32 rollup_id, int64 max_events,
						   bool complete, RollupSkips *skips)
{
	RollupWdeltaGens gens;
	RollupWdeltaGens was;		/* (marked: what earlier marks reach) */
	RollupWdeltaGens orig;
	int64		to;
	int64		events = 0;

	const char *qwdelta = ek_qualified_relname(wdelta);

	ek_rollups_wdelta_gens(rollup_id, false, &gens);
	was = orig = gens;

	/*
	 * 0. mark in a transaction of its own, what this refresh then folds:
	 * unless this transaction holds a lock on the table that its UPDATE
	 * would wait for (it wrote or locked the table: a refresh of the rollup
	 * before, in this transaction, or DDL), a wait that no deadlock detector
	 * would see; or Citus is not there (a restored copy)
	 */
	if (!complete && ek_citus_installed() && !locked_by_me(wdelta))
	{
		Premark		p = {qwdelta, gens.marked + 1, false};
		ErrorData  *edata = ek_run_in_subtransaction(premark_run, &p);

		if (edata != NULL)
		{
			ereport(DEBUG1,
					(errmsg("eventkit: the worker delta table's rows not marked beforehand: %s",
							edata->message)));
			FreeErrorData(edata);
		}
		else if (p.done)
		{
			/* (as if the refresh before had marked them) */
			gens.marked++;
			was.marked = gens.marked;
		}
	}

	/* 1. mark (waits for the marks of a refresh still being committed here) */
	if (run(psprintf("UPDATE %s SET %s = $1 WHERE %s IS NULL", qwdelta,
					 EK_ROLLUP_WDELTA_GEN_COLUMN, EK_ROLLUP_WDELTA_GEN_COLUMN),
			gens.marked + 1, SPI_OK_UPDATE) > 0)
		gens.marked++;

	/* 2. forget what every snapshot counts in the rollup table */
	if (gens.folded > gens.deleted && gens.has_folded_xid &&
		seen_by_every_snapshot(gens.folded_xid))
	{
		(void) run(psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.<=) $1", qwdelta,
							EK_ROLLUP_WDELTA_GEN_COLUMN),
				   gens.folded, SPI_OK_DELETE);
		gens.deleted = gens.folded;
	}

	/* 3. fold what earlier refreshes marked */
	to = complete ? gens.marked : was.marked;
	if (to > gens.folded && max_events > 0 && !complete)
		to = generations_for(qwdelta, gens.folded, to, max_events);
	if (to > gens.folded)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};
		Datum		args[2] = {Int64GetDatum(gens.folded), Int64GetDatum(to)};

		events = ek_rollup_fold_worker_deltas(def, qtable, keyname,
											  ek_rollup_worker_gen_sql(def, qwdelta),
											  2, argtypes, args, skips);
		gens.folded = to;
	}

	/* 4. with the merge */
	if (gens.marked != orig.marked || gens.folded != orig.folded || gens.deleted != orig.deleted)
		ek_rollups_record_wdelta_gens(rollup_id, &gens, gens.folded != orig.folded);
	return events;
}

/*
 * Is the worker delta table wdelta folded by generations: has it ek_gen
 * (made distributed with its stream since 1.17; still so once restored on a
 * server without Citus)?
 */
bool
ek_rollup_wdelta_generational(Oid wdelta)
{
	return OidIsValid(wdelta) &&
		get_attnum(wdelta, EK_ROLLUP_WDELTA_GEN_COLUMN) != InvalidAttrNumber;
}

/*
 * The generation up to which the rollup rollup_id's distributed worker
 * delta table is folded, in the caller's snapshot (the realtime view's).
 * Caller: SPI connected.
 */
int64
ek_rollup_wdelta_folded(int32 rollup_id)
{
	RollupWdeltaGens gens;

	ek_rollups_wdelta_gens(rollup_id, true, &gens);
	return gens.folded;
}
