/*-------------------------------------------------------------------------
 *
 * rollup_delta.c
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
 *	  the rollup table, dropped with it; rollup_sql.c) has batch_id,
 *	  ek_events (the events of the group) and the rollup table's columns,
 *	  but the hll hashes (int8[]) of a distinct() and the values (float8[])
 *	  of a percentile() instead of their hll and t-digest: merging many
 *	  small hlls costs far more than building one; and ek_skips, the values
 *	  the group's events had that the fold skipped (rollup.h), by reason, so
 *	  that the refresh counts them in eventkit.rollups.skipped_values
 *	  without ingest ever writing the catalog (a delta table made before
 *	  1.3 has no ek_skips until the rollup's first refresh since: see
 *	  rollup.c).  Ingest's fast path
 *	  (writer.c), after writing a batch, folds the rows it has just written,
 *	  read back from the batch's own values with the fold's own SELECT list
 *	  (so exactly what a scan of the stream would read: the columns ingest
 *	  does not write are NULL in those rows), with the C aggregation of
 *	  rollup_fold.c, and inserts one row per group.  Both commit or abort
 *	  together.  A batch written some other way (the slow path) has no
 *	  delta.
 *
 *	  A refresh of (from, to] (rollup.c has waited for the writers of every
 *	  batch up to to) then: finds the batches of that range that have delta
 *	  rows; if none, folds the range from the stream as before; otherwise it
 *	  reads the range's delta rows into the fold (rollup_fold.c adds them to
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

#include <ctype.h>

#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "eventkit.h"
#include "rollup.h"

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
	MemoryContext cxt;
	RollupDef  *def;
	char	   *qdelta;
	int			nused;			/* ingest columns the fold reads */
	int		   *used;			/* their indexes in the writer's columns */
	SPIPlanPtr	source;			/* the fold's SELECT over the batch's arrays */
	SPIPlanPtr	merge;			/* the INSERT into the delta table */
} DeltaRollup;

static HTAB *delta_rollups = NULL;
static SPIPlanPtr rollups_of_stream = NULL;

/* The delta table of a rollup table (InvalidOid if there is none). */
Oid
ek_rollup_delta_relid(Oid rollup_relid)
{
	char	   *relname = get_rel_name(rollup_relid);

	if (relname == NULL)
		return InvalidOid;
	return get_relname_relid(psprintf("%s%s", relname, EK_ROLLUP_DELTA_SUFFIX),
							 get_rel_namespace(rollup_relid));
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
 * delta, merged into the rollup table; then delete the range's delta rows.
 * Returns the events folded, or -1 (having done nothing) when the range
 * has no delta rows; adds the values skipped to *skips.  Caller: SPI
 * connected, as the rollup owner (rollup.c's fold()).
 */
int64
ek_rollup_merge_deltas(const RollupDef *def, const char *qtable, const char *keyname,
					   Oid delta, int64 from, int64 to, RollupSkips *skips)
{
	Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INT8ARRAYOID};
	Datum		args[4];
	char	   *qdelta = ek_qualified_relname(delta);
	Datum		covered;
	bool		isnull;
	int64		events;
	ArrayType  *uncovered = NULL;
	Oid			save_userid;
	int			save_sec;
	int			rc;

	args[0] = Int64GetDatum(from);
	args[1] = Int64GetDatum(to);

	/* the batches that have deltas */
	rc = SPI_execute_with_args(psprintf("SELECT pg_catalog.array_agg(DISTINCT batch_id) FROM %s"
										" WHERE batch_id OPERATOR(pg_catalog.>) $1"
										" AND batch_id OPERATOR(pg_catalog.<=) $2", qdelta),
							   2, argtypes, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not read the rollup's deltas: %s",
			 SPI_result_code_string(rc));
	covered = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	covered = datumCopy(covered, false, -1);

	/* the batches that stored events and have none (<> ALL: hashed) */
	args[2] = Int32GetDatum(def->stream_id);
	args[3] = covered;
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("SELECT pg_catalog.array_agg(batch_id ORDER BY batch_id)"
							   " FROM eventkit.ingest_batches"
							   " WHERE stream_id OPERATOR(pg_catalog.=) $3"
							   " AND batch_id OPERATOR(pg_catalog.>) $1"
							   " AND batch_id OPERATOR(pg_catalog.<=) $2"
							   " AND accepted OPERATOR(pg_catalog.>) 0"
							   " AND batch_id OPERATOR(pg_catalog.<>) ALL ($4)",
							   4, argtypes, args, NULL, false, 1);
	ek_restore_user(save_userid, save_sec);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not read eventkit.ingest_batches: %s",
			 SPI_result_code_string(rc));
	{
		Datum		u = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			uncovered = DatumGetArrayTypePCopy(u);
	}

	/* fold the deltas and those batches, then forget the deltas */
	events = ek_rollup_fold_deltas(def, qtable, keyname, qdelta,
								   ek_rollup_delta_has_skips(def, delta), from, to,
								   uncovered, skips);
	rc = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE batch_id OPERATOR(pg_catalog.>) $1"
										" AND batch_id OPERATOR(pg_catalog.<=) $2", qdelta),
							   2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not delete the rollup's deltas: %s",
			 SPI_result_code_string(rc));
	return events;
}

/* ---------------------------------------------------------------------
 * Ingest: write a batch's deltas
 * ---------------------------------------------------------------------
 */

/* Does sql read the column s.<name>? */
static bool
reads_column(const char *sql, const char *name)
{
	char	   *ref = psprintf("s.%s", quote_identifier(name));
	size_t		len = strlen(ref);
	const char *p = sql;

	while ((p = strstr(p, ref)) != NULL)
	{
		char		next = p[len];

		if (!(isalnum((unsigned char) next) || next == '_' || next == '$' ||
			  (next & 0x80) || (ref[len - 1] != '"' && next == '"')))
			return true;
		p += len;
	}
	return false;
}

/*
 * Make e: the definition, and the fold's SELECT over arrays of the batch's
 * values (one per ingest column it reads; the stream's other columns are
 * NULL in a row the fast path writes).  As the rollup owner.
 */
static void
make_delta_rollup(DeltaRollup *e, Relation rel, int32 stream_id, HeapTuple tup,
				  TupleDesc desc, const char *const *names, const Oid *types, int ncols)
{
	TupleDesc	sdesc = RelationGetDescr(rel);
	MemoryContext old;
	bool		isnull;
	char	   *select;
	StringInfoData inner;
	Oid		   *argtypes;

	e->cxt = AllocSetContextCreate(TopMemoryContext, "eventkit rollup delta",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(e->cxt);
	e->def = palloc0(sizeof(RollupDef));
	e->def->rollup_id = e->rollup_id;
	e->def->relid = e->relid;
	e->def->stream_relid = RelationGetRelid(rel);
	e->def->stream_id = stream_id;
	e->def->bucket = *DatumGetIntervalP(SPI_getbinval(tup, desc, 3, &isnull));
	ek_rollup_parse(e->def, SPI_getbinval(tup, desc, 4, &isnull),
					SPI_getbinval(tup, desc, 5, &isnull), false);
	e->qdelta = ek_qualified_relname(e->delta);
	e->natts = sdesc->natts;
	e->skips = ek_rollup_delta_has_skips(e->def, e->delta);

	select = ek_rollup_source_sql(e->def, "");
	initStringInfo(&inner);
	e->used = palloc(ncols * sizeof(int));
	argtypes = palloc(ncols * sizeof(Oid));
	e->nused = 0;
	for (int a = 0; a < sdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(sdesc, a);
		const char *name = NameStr(att->attname);
		int			c;

		if (att->attisdropped || !reads_column(select, name))
			continue;
		for (c = 0; c < ncols; c++)
			if (strcmp(names[c], name) == 0)
				break;
		appendStringInfoString(&inner, inner.len > 0 ? ", " : "");
		if (c == ncols)
		{
			/* a column of the user's: the fast path leaves it NULL */
			appendStringInfo(&inner, "NULL::%s AS %s",
							 format_type_with_typemod(att->atttypid, att->atttypmod),
							 quote_identifier(name));
			continue;
		}
		e->used[e->nused] = c;
		argtypes[e->nused] = get_array_type(types[c]);
		e->nused++;
		/* unnest in the select list zips the arrays without a tuplestore */
		appendStringInfo(&inner, "pg_catalog.unnest($%d) AS %s", e->nused,
						 quote_identifier(name));
	}
	e->usable = e->nused > 0;	/* the bucket reads ts: always */
	if (e->usable)
	{
		char	   *from = psprintf("(SELECT %s) s", inner.data);

		e->source = ek_keep_plan(ek_rollup_source_sql(e->def, from), e->nused, argtypes);
	}
	MemoryContextSwitchTo(old);
	e->valid = true;
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
 * After the fast path wrote the n events of batch batch_id into rel (the
 * stream): for each rollup of the stream that has a delta table, insert
 * the batch's groups into it.  columns(columns_arg, cols, nulls) gives the
 * values of the writer's column c (names[c], of type types[c]) for each
 * event; it is called only once a rollup needs them, so that a stream
 * without rollups pays for no more than the catalog lookup.  Caller: SPI
 * connected.
 */
void
ek_rollup_write_deltas(Relation rel, int32 stream_id, const char *const *names,
					   const Oid *types, int ncols, EkBatchColumnsFn columns,
					   void *columns_arg, int n, int64 batch_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(stream_id)};
	Datum	   *arrays = NULL;
	Datum	  **cols = NULL;
	bool	  **nulls = NULL;
	SPITupleTable *tuptable;
	uint64		nrollups;
	int			rc;

	if (n == 0)
		return;
	/* an installation still at 1.0 has no rollups */
	if (!OidIsValid(get_relname_relid("rollups", get_namespace_oid("eventkit", false))))
		return;
	if (rollups_of_stream == NULL)
		rollups_of_stream = ek_keep_plan("SELECT rollup_id, relid::pg_catalog.oid, bucket,"
										 " dimensions, measures FROM eventkit.rollups"
										 " WHERE stream_id OPERATOR(pg_catalog.=) $1"
										 " ORDER BY rollup_id", 1, argtypes);
	rc = SPI_execute_plan(rollups_of_stream, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.rollups: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return;
	tuptable = SPI_tuptable;
	nrollups = SPI_processed;

	if (delta_rollups == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(DeltaRollup);
		delta_rollups = hash_create("eventkit rollup deltas", 16, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}

	for (uint64 i = 0; i < nrollups; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		int32		rollup_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		Oid			delta = ek_rollup_delta_relid(relid);
		DeltaRollup *e;
		bool		found;
		EkDdlContext ddl;
		ParamListInfo params;

		if (!OidIsValid(delta))
			continue;			/* made before deltas existed, or its delta table was dropped */
		e = hash_search(delta_rollups, &rollup_id, HASH_ENTER, &found);
		if (!found)
		{
			memset(e, 0, sizeof(*e));
			e->rollup_id = rollup_id;
		}
		/* (a refresh adds ek_skips to a delta table made before 1.3) */
		if (e->valid && (e->relid != relid || e->delta != delta ||
						 e->natts != RelationGetDescr(rel)->natts ||
						 e->skips != ek_rollup_delta_has_skips(e->def, delta)))
			forget_delta_rollup(e);

		ek_begin_ddl(&ddl, ek_relation_owner(relid), false);
		if (!e->valid)
		{
			forget_delta_rollup(e);
			e->relid = relid;
			e->delta = delta;
			make_delta_rollup(e, rel, stream_id, tup, desc, names, types, ncols);
		}
		if (e->usable)
		{
			if (arrays == NULL)
			{
				arrays = palloc0(ncols * sizeof(Datum));
				cols = palloc(ncols * sizeof(Datum *));
				nulls = palloc(ncols * sizeof(bool *));
				columns(columns_arg, cols, nulls);
			}
			params = makeParamList(e->nused);
			for (int u = 0; u < e->nused; u++)
			{
				int			c = e->used[u];

				if (arrays[c] == (Datum) 0)
					arrays[c] = ek_make_array(cols[c], nulls[c], n, types[c]);
				params->params[u].value = arrays[c];
				params->params[u].isnull = false;
				params->params[u].pflags = PARAM_FLAG_CONST;
				params->params[u].ptype = get_array_type(types[c]);
			}
			ek_rollup_fold_delta(e->def, e->qdelta, batch_id, e->skips, e->source, params,
								 &e->merge);
		}
		ek_end_ddl(&ddl);
	}
}
