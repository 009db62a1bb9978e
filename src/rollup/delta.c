/*-------------------------------------------------------------------------
 *
 * delta.c
 *	  Per-batch deltas of a rollup: ingest aggregates each batch it writes
 *	  into the rollup's delta table, in the ingest's transaction, and a refresh
 *	  merges those few rows instead of reading the new events again.
 *
 *	  Why.  A refresh that reads the new events touches every heap page
 *	  that holds one (a 1,250-byte event: six to a page), and a backend that
 *	  touches a shared buffer for the first time pays for mapping it; a
 *	  refresh runs in a new process (a job worker, a new session), so it
 *	  paid that for every page of the delta, more than all the rest of the
 *	  refresh.  A batch's groups (bucket, dimensions) are few: their partial
 *	  states fit in a page or two.
 *
 *	  The delta table "<rollup table>_delta" (made by create_rollup beside
 *	  the rollup table, dropped with it; definition.c) has batch_id,
 *	  ek_events (the events of the group) and the rollup table's columns,
 *	  but the hll hashes (int8[]) of a distinct() and the values (float8[])
 *	  of a percentile() instead of their hll and t-digest: merging many
 *	  small hlls costs far more than building one; and ek_skips, the values
 *	  the group's events had that the fold skipped (rollup.h), by reason, so
 *	  that the refresh counts them in eventkit.rollups.skipped_values
 *	  without ingest ever writing the catalog (a delta table made before
 *	  1.3 has no ek_skips until the rollup's first refresh since: see
 *	  refresh.c).  When the writer's fast path wrote a batch, the ingest
 *	  orchestrator calls this stage with the batch's events: it folds the
 *	  rows just written, read back from the batch's own values (only the
 *	  stream columns the definition reads, recorded when it was parsed)
 *	  with the fold's own SELECT list (so exactly what a scan of the stream
 *	  would read: the columns ingest does not write are NULL in those
 *	  rows), with the C aggregation of fold.c, and inserts one row per
 *	  group.  Both commit or abort together.  For the common definitions
 *	  (no filter; dimensions and measure inputs that are columns ingest
 *	  writes or JSON paths in them; every bucket form) the SELECT's columns
 *	  are evaluated here in C from the batch's values instead (make_direct,
 *	  direct_row: the bucket with the same functions its SQL calls, a path
 *	  with jsonb_get_element as #>> does), with no arrays and no executor;
 *	  the others take the SQL path.  sql/rollup_cdelta.sql compares the two
 *	  (eventkit.testing_rollup_sql_deltas forces the SQL path in a test
 *	  build).  A batch of a stream distributed on Citus gets its deltas
 *	  here too, on the node that ran the ingest, when the distributed
 *	  table stores the values as given (pipeline/writer.c), whichever
 *	  shards the rows went to: on the coordinator into the rollup's delta
 *	  table; on a worker into the rollup's worker delta table
 *	  "<rollup>_wdelta" (made here, ek_rollup_make_worker_delta, for
 *	  create_rollup and distribute_stream, manage.c), the rollups'
 *	  definitions adopted with the stream's catalog (catalog/cluster.c).
 *	  Since 1.17 that table is distributed with the stream (co-located, by
 *	  ek_shard_key): the worker writes the batch's rows into a shard of its
 *	  own node, directly as the writer does (no statement through Citus,
 *	  no other node in its commit): the shard of a user key the writer
 *	  stored here, or, for a batch that stored nothing here, the node's
 *	  first shard (worker_delta_shard); made
 *	  before, it is a Citus local table on the coordinator, written with
 *	  an INSERT through Citus in the call's distributed transaction.  A
 *	  worker refuses a stream with rollups whose batch would get none
 *	  (ek_rollup_no_deltas).  A refresh
 *	  folds all of a Citus local worker delta table that its snapshot
 *	  sees, and deletes exactly those rows in the same statement
 *	  (ek_rollup_merge_worker_deltas); a distributed one's by generations
 *	  (ek_gen, wdelta.c), so that the realtime view stays exact while the
 *	  refresh commits: no order of the workers' batch ids is needed, every
 *	  batch stored on a worker having its deltas.  A batch written some other way (the writer's slow path) has no
 *	  delta.  The rollups of a stream
 *	  come from a per-backend cache (catalog/rollups.c), not a query per
 *	  batch.
 *
 *	  A refresh of (from, to] (refresh.c has waited for the writers of every
 *	  batch up to to) then: finds the batches of that range that have delta
 *	  rows; if none, folds the range from the stream as before; otherwise it
 *	  reads the range's delta rows into the fold (fold.c adds them to
 *	  their groups), adds from the stream only the batches that stored
 *	  events (eventkit.ingest_batches.accepted > 0) and have no delta
 *	  (written by the slow path, or by an ingest that began before the
 *	  rollup existed), merges the groups into the rollup table and deletes
 *	  the range's delta rows.  So every batch is folded exactly once, from
 *	  its delta or from its rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "catalog/batches.h"
#include "catalog/cluster.h"
#include "catalog/rollups.h"
#include "pipeline/columns.h"
#include "rollup/delta.h"
#include "rollup/fold.h"
#include "util/citus.h"
#include "util/citus_shards.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

/*
 * How the C path (direct_row) makes one column of the fold's source
 * SELECT from the batch's values: a stream column's value as the writer
 * stores it, or a JSON path's text (#>>) in a jsonb column.
 */
typedef struct DirectColumn
{
	int			c;				/* the stream column (pipeline/columns.h) */
	int			npath;			/* > 0: #>> with these keys */
	Datum	   *path;			/* text */
} DirectColumn;

typedef enum DirectBucket
{
	DB_BIN,						/* date_bin(width, ts, origin) */
	DB_BIN_ZONE,				/* the same in local time of a time zone */
	DB_TRUNC					/* date_trunc(unit, ts, time zone) */
} DirectBucket;

/* What ingest keeps per rollup (per backend): its definition and plans. */
typedef struct DeltaRollup
{
	int32		rollup_id;		/* hash key */
	bool		valid;			/* fully made */
	bool		usable;			/* false: no delta for this rollup */
	Oid			relid;			/* the rollup table */
	Oid			delta;			/* its delta table */
	int			natts;			/* the stream's attributes when made */
	bool		skips;			/* the delta table has ek_skips */
	bool		citus;			/* it is a Citus table: written by the INSERT,
								 * planned with its values each time (Citus
								 * plans no generic INSERT ... SELECT) */
	bool		distributed;	/* a worker delta table distributed with the
								 * stream: its rows carry ek_shard_key, and
								 * go into this node's shard directly */
	MemoryContext cxt;
	RollupDef  *def;
	char	   *qdelta;
	int			nused;			/* ingest columns the fold reads */
	int		   *used;			/* their indexes in the writer's columns */
	SPIPlanPtr	source;			/* the fold's SELECT over the batch's arrays */
	char	   *source_sql;		/* its SQL, planned at its first use */
	Oid		   *argtypes;		/* its parameters' types */
	SPIPlanPtr	merge;			/* the INSERT into the delta table */
	ArrayType  *measures;		/* the measures it was made for */
	/* the C path (make_direct), when it covers the definition */
	bool		direct;
	DirectBucket bkind;
	Interval	width;			/* DB_BIN*: the bucket's width */
	Datum		origin;			/* DB_BIN: timestamptz; DB_BIN_ZONE: timestamp */
	Datum		zone;			/* DB_BIN_ZONE, DB_TRUNC: the time zone (text) */
	Datum		unit;			/* DB_TRUNC: 'month' or 'year' (text) */
	int			ncols;			/* dimensions and sources */
	DirectColumn *cols;
} DeltaRollup;

/* direct_row's argument: a rollup and the batch's columns */
typedef struct DirectBatch
{
	DeltaRollup *e;
	Datum	  **cols;			/* [c][i]: event i's value of stream column c */
	bool	  **nulls;
} DirectBatch;

static HTAB *delta_rollups = NULL;

/* The table named the rollup table's name and suffix, beside it (or InvalidOid). */
static Oid
rollup_table_with_suffix(Oid rollup_relid, const char *suffix)
{
	char	   *relname = get_rel_name(rollup_relid);

	if (relname == NULL)
		return InvalidOid;
	return get_relname_relid(psprintf("%s%s", relname, suffix),
							 get_rel_namespace(rollup_relid));
}

/* The delta table of a rollup table (InvalidOid if there is none). */
Oid
ek_rollup_delta_relid(Oid rollup_relid)
{
	return rollup_table_with_suffix(rollup_relid, EK_ROLLUP_DELTA_SUFFIX);
}

/*
 * The worker delta table of a rollup table (InvalidOid if there is none):
 * on the coordinator, a rollup of a distributed stream has one, a Citus
 * local table that ingest on the workers writes its batches' deltas into.
 */
Oid
ek_rollup_wdelta_relid(Oid rollup_relid)
{
	return rollup_table_with_suffix(rollup_relid, EK_ROLLUP_WDELTA_SUFFIX);
}

/*
 * Ingest stored n events of a batch without deltas (the stream does not
 * store ingest's values as given).  On a Citus worker, where a rollup is
 * folded only from the deltas (a refresh on the coordinator never reads a
 * worker's batches from the stream), a stream with rollups then fails the
 * call.  Caller: SPI connected.
 */
void
ek_rollup_no_deltas(const StreamInfo *stream, int n)
{
	List	   *rollups;

	if (n == 0 || !ek_cluster_worker_rollups(stream->relid, &rollups) || rollups == NIL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("stream \"%s\" has rollups and can be ingested only on the Citus coordinator",
					get_rel_name(stream->relid)),
			 errdetail("The stream does not store ingest's values as given (row-level security, an INSERT trigger, or a column with a default or a generated value), so a batch stored on a worker would have no rollup deltas, and a rollup folds a worker's batches only from their deltas."),
			 errhint("Ingest through the coordinator, or drop the stream's rollups.")));
}

/*
 * The worker delta table of a rollup is dropped with its table (recorded
 * on the table Citus left under the worker delta table's name: its shell).
 */
void
ek_rollup_worker_delta_depends(Oid rollup_relid)
{
	ObjectAddress table;
	ObjectAddress wdelta;

	ObjectAddressSet(table, RelationRelationId, rollup_relid);
	ObjectAddressSet(wdelta, RelationRelationId, ek_rollup_wdelta_relid(rollup_relid));
	recordDependencyOn(&wdelta, &table, DEPENDENCY_AUTO);
}

/*
 * The worker delta table of a rollup (named rollup_name in schema nsp,
 * definition def; dropped with its table rollup_relid once there is one)
 * of a stream distributed on Citus: "<rollup>_wdelta", with the delta
 * table's columns.  With eventkit.worker_deltas_on_shards (1.17, on by
 * default) it also has ek_shard_key (the stream's user_key type) and
 * ek_gen (its generation, wdelta.c), and is
 * distributed by it, co-located with the stream, so that ingest on a
 * worker writes its batches' deltas into a shard of its own node, in its
 * own transaction, and a refresh on the coordinator marks and folds the
 * rows of every shard (wdelta.c); the caller makes it once the stream is
 * distributed.  Otherwise (as before 1.17) it is a Citus local table on
 * the coordinator (no ek_shard_key), which ingest on a worker writes
 * through Citus; the caller makes it before the stream is distributed (a
 * Citus local table is made with local execution, which a transaction
 * that reached the coordinator's own shards through a connection can no
 * longer use).  Both kinds work.  Dropped with the rollup table.  Made as
 * the current role and, if owner is valid, given to owner.  Caller: SPI
 * connected, on the coordinator.
 */
void
ek_rollup_make_worker_delta(const RollupDef *def, Oid nsp, const char *rollup_name,
							Oid rollup_relid, Oid owner)
{
	char	   *name = psprintf("%s%s", rollup_name, EK_ROLLUP_WDELTA_SUFFIX);
	char	   *qname = quote_qualified_identifier(get_namespace_name(nsp), name);
	Oid			stream = def->stream_relid;
	AttrNumber	keyatt = get_attnum(stream, "user_key");
	Oid			keytype;
	int32		keytypmod;
	Oid			keycoll;

	if (!ek_worker_deltas_on_shards)
	{
		/* a Citus local table (the kind before 1.17) */
		ek_spi_exec(ek_rollup_delta_table_sql(def, qname), SPI_OK_UTILITY);
		CommandCounterIncrement();
		ek_spi_exec(psprintf("SELECT pg_catalog.citus_add_local_table_to_metadata(%s)",
							 quote_literal_cstr(qname)),
					SPI_OK_SELECT);
	}
	else
	{
		if (keyatt == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("stream \"%s\" has no column \"user_key\"", get_rel_name(stream)),
					 errhint("A distributed stream is distributed by its user_key column.")));
		get_atttypetypmodcoll(stream, keyatt, &keytype, &keytypmod, &keycoll);
		ek_spi_exec(ek_rollup_delta_table_sql(def, qname), SPI_OK_UTILITY);
		/* (Citus co-locates only a distribution column of the same type and collation) */
		/* (and its generation: wdelta.c) */
		ek_spi_exec(psprintf("ALTER TABLE %s ADD COLUMN %s %s%s%s NOT NULL, ADD COLUMN %s pg_catalog.int8",
							 qname, EK_ROLLUP_WDELTA_KEY_COLUMN,
							 format_type_with_typemod(keytype, keytypmod),
							 OidIsValid(keycoll) && keycoll != get_typcollation(keytype) ?
							 " COLLATE " : "",
							 OidIsValid(keycoll) && keycoll != get_typcollation(keytype) ?
							 quote_identifier(get_collation_name(keycoll)) : "",
							 EK_ROLLUP_WDELTA_GEN_COLUMN),
					SPI_OK_UTILITY);
		CommandCounterIncrement();
		ek_spi_exec(psprintf("SELECT pg_catalog.create_distributed_table(%s, %s, colocate_with => %s)",
							 quote_literal_cstr(qname),
							 quote_literal_cstr(EK_ROLLUP_WDELTA_KEY_COLUMN),
							 quote_literal_cstr(ek_qualified_relname(stream))),
					SPI_OK_SELECT);
	}
	CommandCounterIncrement();
	if (OidIsValid(owner) && owner != GetUserId())
	{
		/* (through Citus; of a distributed one, as the role that made the shards) */
		ek_spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", qname,
							 quote_identifier(GetUserNameFromId(owner, false))),
					SPI_OK_UTILITY);
		CommandCounterIncrement();
	}
	if (OidIsValid(rollup_relid))
		ek_rollup_worker_delta_depends(rollup_relid);
}

/*
 * Is the worker delta table wdelta distributed with its stream (since
 * 1.17), rather than a Citus local table on the coordinator?
 */
bool
ek_rollup_wdelta_distributed(Oid wdelta)
{
	return OidIsValid(wdelta) && ek_citus_table_kind(wdelta) == EK_CITUS_HASH;
}

/*
 * A new rollup of a distributed stream made without its backfill: the
 * later folds (refresh, backfill_rollup) read from the stream the
 * coordinator's batches, in the order of the coordinator's batch ids,
 * taking them from the coordinator's batch log; the workers number their
 * calls' batches on their own (the same ids as the coordinator's) and log
 * them on their own node.  So the events a worker stored before the
 * rollup existed would be missed by the rollup, or taken for a coordinator
 * batch of the same id: a stream that holds any is refused.  (The backfill
 * of create_rollup folds all the stream's rows: backfill.c.  Once the
 * rollup exists, a worker writes its batches' deltas into the rollup's
 * worker delta table: docs/citus.md.)  Caller: SPI connected, on the
 * coordinator, the stream locked on every node.
 */
void
ek_rollup_check_no_worker_events(Oid stream, int32 stream_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(stream_id)};
	bool		isnull;
	int64		n;

	if (SPI_execute_with_args("SELECT pg_catalog.sum(w.accepted)::pg_catalog.int8"
							  " FROM eventkit.worker_stream_stats() w"
							  " WHERE w.stream_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read the workers' statistics");
	n = DatumGetInt64(ek_spi_value(0, 1, &isnull));
	if (!isnull && n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create a rollup of distributed stream \"%s\" without its backfill: it holds events ingested on the workers",
						get_rel_name(stream)),
				 errdetail("The workers stored " INT64_FORMAT " events. A rollup made without its backfill folds the coordinator's batches later; a worker numbers and logs its calls' batches on its own, so the rollup would miss their events or count them twice.",
						   n),
				 errhint("Create the rollup with backfill => true: its backfill folds all the stream's events, the workers' included.")));
}

/*
 * Does the delta table have the ek_skips column (made since 1.3, or added
 * since), and not as a column of the rollup's own?
 */
bool
ek_rollup_delta_has_skips(const RollupDef *def, Oid delta)
{
	return get_attnum(delta, EK_ROLLUP_DELTA_SKIPS_COLUMN) != InvalidAttrNumber &&
		!ek_rollup_uses_name(def, EK_ROLLUP_DELTA_SKIPS_COLUMN);
}

/* ---------------------------------------------------------------------
 * Refresh: merge the deltas of (from, to]
 * ---------------------------------------------------------------------
 */

/*
 * Fold (from, to] from the deltas: the delta rows of the range and, from
 * the stream, the batches of the range that stored events and have no
 * delta, merged into the rollup table; then delete the range's delta rows
 * (fold.c reads the delta rows once: their batches tell which batches have
 * none, and it deletes the rows it read when the delta table allows).
 * Returns the events folded, or -1 (having done nothing) when the range
 * has no delta rows; adds the values skipped to *skips.  Caller: SPI
 * connected, as the rollup owner (refresh.c's fold()).
 */
int64
ek_rollup_merge_deltas(const RollupDef *def, const char *qtable, const char *keyname,
					   Oid delta, int64 from, int64 to, RollupSkips *skips)
{
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	char	   *qdelta = ek_qualified_relname(delta);
	int64		events;
	bool		deleted;
	int			rc;

	events = ek_rollup_fold_deltas(def, qtable, keyname, delta, qdelta,
								   ek_rollup_delta_has_skips(def, delta), from, to,
								   skips, &deleted);
	if (events < 0 || deleted)
		return events;
	args[0] = Int64GetDatum(from);
	args[1] = Int64GetDatum(to);
	rc = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE batch_id OPERATOR(pg_catalog.>) $1"
										" AND batch_id OPERATOR(pg_catalog.<=) $2", qdelta),
							   2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not delete the rollup's deltas: %s",
			 SPI_result_code_string(rc));
	return events;
}

/*
 * Fold the rows of a rollup's worker delta table (the deltas of the
 * batches stored on the Citus workers): all that the refresh's snapshot
 * sees, deleted in the same statement (fold.c), merged into the rollup
 * table (max_events > 0: the first batches', about that many events).
 * Returns the events folded; adds the values skipped to *skips.  Caller:
 * SPI connected, as the rollup owner (refresh.c's fold()).
 */
int64
ek_rollup_merge_worker_deltas(const RollupDef *def, const char *qtable, const char *keyname,
							  Oid wdelta, int64 max_events, RollupSkips *skips)
{
	return ek_rollup_fold_worker_deltas(def, qtable, keyname,
										ek_rollup_worker_delta_sql(def, ek_qualified_relname(wdelta),
																   max_events),
										0, NULL, NULL, skips);
}

/* ---------------------------------------------------------------------
 * Ingest: write a batch's deltas
 * ---------------------------------------------------------------------
 */

/* Does the definition read the stream column name? */
static bool
reads_column(const RollupDef *def, const char *name)
{
	ListCell   *lc;

	foreach(lc, def->columns)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * A column of the source SELECT read from stream column name (with a JSON
 * path's keys, as #>>): false if the C path does not cover it (a column
 * ingest does not write, or of another type than ingest writes).
 */
static bool
direct_column(DirectColumn *dc, TupleDesc sdesc, const char *name, List *keys)
{
	int			c = ek_stream_column(name);
	ListCell   *lc;

	if (c < 0)
		return false;
	for (int a = 0; a < sdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(sdesc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0 &&
			att->atttypid != ek_stream_columns[c].type)
			return false;
	}
	if (keys != NIL && ek_stream_columns[c].type != JSONBOID)
		return false;
	dc->c = c;
	dc->npath = list_length(keys);
	dc->path = palloc(Max(dc->npath, 1) * sizeof(Datum));
	foreach(lc, keys)
		dc->path[foreach_current_index(lc)] = CStringGetTextDatum((char *) lfirst(lc));
	return true;
}

/*
 * Does the C path cover e's definition?  The bucket in every form (the
 * same functions as ek_rollup_bucket_expr's SQL, called directly); the
 * dimensions that are stream columns ingest writes or JSON paths in them;
 * the sources that read a jsonb column (a numeric measure's path, followed
 * by the fold itself), a text column or a JSON path's text (distinct).  Not
 * a filter, a numeric column (integers cast to numeric), a column of the
 * user's.  Sets e->direct and what direct_row needs; in e->cxt.
 */
static void
make_direct(DeltaRollup *e, TupleDesc sdesc)
{
	const RollupDef *def = e->def;
	const Interval *b = &def->bucket;
	const char *tz = def->opts.time_zone;
	ListCell   *lc;
	int			i = 0;

	e->direct = false;
	if (def->filter_sql != NULL)
		return;
	e->ncols = list_length(def->dims) + list_length(def->sources);
	e->cols = palloc0(Max(e->ncols, 1) * sizeof(DirectColumn));
	foreach(lc, def->dims)
	{
		RollupDim  *d = lfirst(lc);

		if (d->column == NULL || !direct_column(&e->cols[i++], sdesc, d->column, d->keys))
			return;
	}
	foreach(lc, def->sources)
	{
		RollupSource *src = lfirst(lc);

		if (src->column == NULL)
			return;
		switch (src->kind)
		{
			case RS_NUMERIC:
				return;
			case RS_JSON_NUMBER:
				/* the jsonb column: the fold follows the path */
				if (src->coltype != JSONBOID ||
					!direct_column(&e->cols[i++], sdesc, src->column, NIL))
					return;
				break;
			case RS_TEXT:
				if ((src->path == NIL && src->coltype != TEXTOID) ||
					!direct_column(&e->cols[i++], sdesc, src->column, src->path))
					return;
				break;
		}
	}

	if (b->month == 1 || b->month == 12)
	{
		e->bkind = DB_TRUNC;
		e->unit = CStringGetTextDatum(b->month == 1 ? "month" : "year");
		e->zone = CStringGetTextDatum(tz ? tz : "UTC");
	}
	else
	{
		memset(&e->width, 0, sizeof(Interval));
		e->width.time = (int64) b->day * USECS_PER_DAY + b->time;
		if (tz == NULL)
		{
			e->bkind = DB_BIN;
			/* 2000-01-01 00:00:00+00 is 0 */
			e->origin = TimestampTzGetDatum(def->opts.has_origin ? def->opts.origin : 0);
		}
		else
		{
			e->bkind = DB_BIN_ZONE;
			e->zone = CStringGetTextDatum(tz);
			e->origin = def->opts.has_origin ?
				DirectFunctionCall2(timestamptz_zone, e->zone,
									TimestampTzGetDatum(def->opts.origin)) :
				TimestampGetDatum(0);
		}
	}
	e->direct = true;
}

/* The bucket of ts, as ek_rollup_bucket_expr()'s SQL computes it. */
static Datum
direct_bucket(DeltaRollup *e, Datum ts)
{
	switch (e->bkind)
	{
		case DB_BIN:
			return DirectFunctionCall3(timestamptz_bin, IntervalPGetDatum(&e->width), ts,
									   e->origin);
		case DB_BIN_ZONE:
			return DirectFunctionCall2(timestamp_zone, e->zone,
									   DirectFunctionCall3(timestamp_bin,
														   IntervalPGetDatum(&e->width),
														   DirectFunctionCall2(timestamptz_zone,
																			   e->zone, ts),
														   e->origin));
		case DB_TRUNC:
			return DirectFunctionCall3(timestamptz_trunc_zone, e->unit, ts, e->zone);
	}
	return (Datum) 0;			/* keep the compiler quiet */
}

/* Row i of the source SELECT (bucket, dimensions, sources), in C. */
static void
direct_row(void *arg, int i, Datum *values, bool *isnull)
{
	DirectBatch *b = arg;
	DeltaRollup *e = b->e;

	values[0] = direct_bucket(e, b->cols[SC_TS][i]);
	isnull[0] = false;
	for (int k = 0; k < e->ncols; k++)
	{
		DirectColumn *dc = &e->cols[k];
		Datum		v = b->cols[dc->c][i];
		bool		n = b->nulls[dc->c][i];

		if (!n && dc->npath > 0)
			v = jsonb_get_element(DatumGetJsonbP(v), dc->path, dc->npath, &n, true);
		values[1 + k] = v;
		isnull[1 + k] = n;
	}
}

/*
 * Make e: the definition, and the fold's SELECT over arrays of the batch's
 * values, one per stream column the definition reads (recorded when it was
 * parsed; a column of the user's, which ingest does not write, is NULL in
 * a row the fast path writes).  As the rollup owner.
 */
static void
make_delta_rollup(DeltaRollup *e, Relation rel, const StreamInfo *stream,
				  const StreamRollup *sr)
{
	TupleDesc	sdesc = RelationGetDescr(rel);
	MemoryContext old;
	StringInfoData inner;
	Oid		   *argtypes;

	e->cxt = AllocSetContextCreate(TopMemoryContext, "eventkit rollup delta",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(e->cxt);
	e->def = palloc0(sizeof(RollupDef));
	e->def->rollup_id = e->rollup_id;
	e->def->relid = e->relid;
	e->def->stream_relid = stream->relid;
	e->def->stream_id = stream->stream_id;
	e->def->bucket = sr->bucket;
	ek_rollup_parse(e->def, sr->dimensions, sr->measures, false);
	ek_rollup_set_options(e->def, &sr->opts, false);
	e->measures = DatumGetArrayTypePCopy(sr->measures);
	e->qdelta = ek_qualified_relname(e->delta);
	e->natts = sdesc->natts;
	e->skips = ek_rollup_delta_has_skips(e->def, e->delta);
	e->citus = ek_citus_table_kind(e->delta) != EK_CITUS_NONE;
	e->distributed = ek_rollup_wdelta_distributed(e->delta);

	initStringInfo(&inner);
	e->used = palloc(SC_NCOLUMNS * sizeof(int));
	argtypes = palloc(SC_NCOLUMNS * sizeof(Oid));
	e->nused = 0;
	for (int a = 0; a < sdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(sdesc, a);
		const char *name = NameStr(att->attname);
		int			c;

		if (att->attisdropped || !reads_column(e->def, name))
			continue;
		c = ek_stream_column(name);
		appendStringInfoString(&inner, inner.len > 0 ? ", " : "");
		if (c < 0)
		{
			/* a column of the user's: the fast path leaves it NULL */
			appendStringInfo(&inner, "NULL::%s AS %s",
							 format_type_with_typemod(att->atttypid, att->atttypmod),
							 quote_identifier(name));
			continue;
		}
		e->used[e->nused] = c;
		argtypes[e->nused] = get_array_type(ek_stream_columns[c].type);
		e->nused++;
		/* unnest in the select list zips the arrays without a tuplestore */
		appendStringInfo(&inner, "pg_catalog.unnest($%d) AS %s", e->nused,
						 quote_identifier(name));
	}
	e->usable = e->nused > 0;	/* the bucket reads ts: always */
	make_direct(e, sdesc);
	/* the SQL path's plan is made at its first use (source_plan) */
	e->source_sql = ek_rollup_source_sql(e->def, psprintf("(SELECT %s) s", inner.data));
	e->argtypes = argtypes;
	MemoryContextSwitchTo(old);
	e->valid = true;
}

/* byte for byte (add_rollup_measures changes a rollup's measures) */
static bool
same_array(ArrayType *a, ArrayType *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

static void
forget_delta_rollup(DeltaRollup *e)
{
	if (e->source)
		SPI_freeplan(e->source);
	if (e->merge)
		SPI_freeplan(e->merge);
	if (e->cxt)
		MemoryContextDelete(e->cxt);
	e->source = NULL;
	e->merge = NULL;
	e->cxt = NULL;
	e->valid = false;
}

/*
 * Where a worker's call writes a batch's deltas into wdelta, a worker
 * delta table distributed with the stream: a shard of this node, into
 * which the rows go directly, as the stream's rows did (no statement
 * through Citus, no other node).  *key, the ek_shard_key of its rows, is
 * local_key (the user key of an event the writer stored in a shard of
 * this node, whose metadata lock it holds: pipeline/writer.c) when wdelta
 * is co-located with the stream.  A batch that stored none of its events
 * here takes the first shard of wdelta placed on this node, locked as the
 * writer locks its shards (a move of it waits for this transaction), and
 * a key that hashes to it ("0", "1", ...: a few tries for a few shards);
 * through Citus, as the rollup's owner, it would reach a placement that
 * the call modified as the stream's owner, which Citus refuses to another
 * role.  Returns the shard's relation, or InvalidOid when this node holds
 * no shard of wdelta (or a shard's name Citus shortened): then the INSERT
 * through Citus, to the shard of *key, the first event's user key, whose
 * node the call reached already.
 */
static Oid
worker_delta_shard(const StreamInfo *stream, Oid wdelta, SegmentEvent **events, int n,
				   const char *local_key, const char **key)
{
	EkShardMap *map = ek_citus_shard_map(wdelta, EK_ROLLUP_WDELTA_KEY_COLUMN);
	int32		local = ek_citus_local_group();
	bool	   *used;
	int			s;

	if (local_key != NULL && map->colocation != 0 &&
		map->colocation == ek_citus_shard_map(stream->relid, "user_key")->colocation &&
		(s = ek_citus_shard_index(map, local_key)) >= 0)
	{
		*key = local_key;
		return ek_citus_shard_relid(wdelta, map->shardids[s]);
	}

	/* none of the batch's events stored here: a shard of this node */
	ek_citus_shards_read(map);
	for (s = 0; s < map->nshards && map->groups[s] != local; s++)
		;
	if (s < map->nshards)
	{
		used = palloc0(sizeof(bool) * map->nshards);
		used[s] = true;
		ek_citus_shards_place(map, used);
		for (int i = 0; map->groups[s] == local && i < 100000; i++)
		{
			char	   *k = psprintf("%d", i);
			Oid			shard_rel;

			if (ek_citus_shard_index(map, k) != s)
				continue;
			shard_rel = ek_citus_shard_relid(wdelta, map->shardids[s]);
			if (!OidIsValid(shard_rel))
				break;
			*key = k;
			ek_citus_use_2pc();
			return shard_rel;
		}
	}

	*key = NULL;
	for (int i = 0; *key == NULL && i < n; i++)
		*key = ek_event_user_key(events[i]);
	if (*key == NULL)
		*key = "";				/* (no event without a user key is stored) */
	return InvalidOid;
}

/*
 * The ingest stage: after the fast path wrote the n events of batch
 * batch_id into the stream, insert the batch's groups into the delta
 * table of each rollup of the stream that has one, folded from the
 * events' values (on a Citus worker into the worker delta tables:
 * local_key as ek_write_events() gave it).  The values are made only if a
 * rollup needs them; a stream without rollups costs a lookup in a
 * per-backend cache (catalog/rollups.c).  Caller: SPI connected, holding
 * the stream's lock.
 */
void
ek_rollup_write_deltas(const StreamInfo *stream, SegmentEvent **events, int n,
					   int64 batch_id, TimestampTz received_at, const char *local_key)
{
	List	   *rollups;
	Relation	rel;
	Datum	   *arrays = NULL;
	Datum	   *col = NULL;
	bool	   *nulls = NULL;
	Datum	  **cols = NULL;	/* the C path's columns, each made once */
	bool	  **colnulls = NULL;
	int64		worker_batch = 0;
	ListCell   *lc;

	if (n == 0)
		return;
	/* on a Citus worker: the adopted rollups, whose deltas go to their wdelta */
	if (ek_cluster_worker_rollups(stream->relid, &rollups))
		worker_batch = batch_id | ((int64) ek_citus_local_group() << 48);
	else
		rollups = ek_rollups_of_stream(stream->stream_id);
	if (rollups == NIL)
		return;

	if (delta_rollups == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(DeltaRollup);
		delta_rollups = hash_create("eventkit rollup deltas", 16, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}

	rel = table_open(stream->relid, NoLock);	/* locked by the caller */
	foreach(lc, rollups)
	{
		StreamRollup *sr = lfirst(lc);
		Oid			delta = OidIsValid(sr->delta) ? sr->delta : ek_rollup_delta_relid(sr->relid);
		DeltaRollup *e;
		bool		found;
		EkRoleScope as_owner;
		ParamListInfo params;
		Oid			target;		/* insert in C into this relation, if valid */
		const char *key = NULL; /* the rows' ek_shard_key, if set */

		if (!OidIsValid(delta))
			continue;			/* made before deltas existed, or its delta table was dropped */
		/* (a worker delta table is a Citus table: shards, or the coordinator's) */
		Assert(worker_batch == 0 || ek_citus_table_kind(delta) != EK_CITUS_NONE);
		e = hash_search(delta_rollups, &sr->rollup_id, HASH_ENTER, &found);
		if (!found)
		{
			memset(e, 0, sizeof(*e));
			e->rollup_id = sr->rollup_id;
		}
		/* (a refresh adds ek_skips to a delta table made before 1.3) */
		if (e->valid && (e->relid != sr->relid || e->delta != delta ||
						 e->natts != RelationGetDescr(rel)->natts ||
						 e->skips != ek_rollup_delta_has_skips(e->def, delta) ||
						 !same_array(e->measures, DatumGetArrayTypeP(sr->measures))))
			forget_delta_rollup(e);

		ek_as_role_begin(&as_owner, ek_relation_owner(OidIsValid(sr->relid) ? sr->relid : delta), 0);
		if (!e->valid)
		{
			forget_delta_rollup(e);
			e->relid = sr->relid;
			e->delta = delta;
			make_delta_rollup(e, rel, stream, sr);
		}
		target = e->citus ? InvalidOid : e->delta;
		if (e->distributed && worker_batch != 0)
			target = worker_delta_shard(stream, e->delta, events, n, local_key, &key);
		if (e->usable && e->direct && !ek_testing_rollup_sql_deltas)
		{
			DirectBatch db;

			if (cols == NULL)
			{
				cols = palloc0(SC_NCOLUMNS * sizeof(Datum *));
				colnulls = palloc0(SC_NCOLUMNS * sizeof(bool *));
			}
			for (int k = -1; k < e->ncols; k++)
			{
				int			c = k < 0 ? SC_TS : e->cols[k].c;

				if (cols[c] == NULL)
				{
					cols[c] = palloc(n * sizeof(Datum));
					colnulls[c] = palloc(n * sizeof(bool));
					ek_batch_column(events, n, c, batch_id, received_at, cols[c],
									colnulls[c]);
				}
			}
			db.e = e;
			db.cols = cols;
			db.nulls = colnulls;
			ek_rollup_fold_delta_rows(e->def, e->qdelta, target, key,
									  worker_batch != 0 ? worker_batch : batch_id, e->skips, n,
									  direct_row, &db, e->citus ? NULL : &e->merge);
		}
		else if (e->usable)
		{
			if (arrays == NULL)
			{
				/* only the columns the batch's rollups read, each made once */
				arrays = palloc0(SC_NCOLUMNS * sizeof(Datum));
				col = palloc(n * sizeof(Datum));
				nulls = palloc(n * sizeof(bool));
			}
			if (e->source == NULL)
				e->source = ek_keep_generic_plan(e->source_sql, e->nused, e->argtypes);
			params = makeParamList(e->nused);
			for (int u = 0; u < e->nused; u++)
			{
				int			c = e->used[u];
				Oid			type = ek_stream_columns[c].type;

				if (arrays[c] == (Datum) 0)
				{
					ek_batch_column(events, n, c, batch_id, received_at, col, nulls);
					arrays[c] = ek_make_array(col, nulls, n, type);
				}
				params->params[u].value = arrays[c];
				params->params[u].isnull = false;
				params->params[u].pflags = PARAM_FLAG_CONST;
				params->params[u].ptype = get_array_type(type);
			}
			ek_rollup_fold_delta(e->def, e->qdelta, e->citus ? target : InvalidOid, key,
								 worker_batch != 0 ? worker_batch : batch_id,
								 e->skips, e->source, params, e->citus ? NULL : &e->merge);
		}
		ek_as_role_end(&as_owner);
	}
	table_close(rel, NoLock);
}
