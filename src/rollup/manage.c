/*-------------------------------------------------------------------------
 *
 * manage.c
 *	  A rollup's life apart from its refresh (refresh.c): the SQL entry
 *	  points eventkit.create_rollup() (the rollup table, its delta tables,
 *	  its realtime view, the stream's batch_id index, the catalog row, the
 *	  refresh job, the history folded), create_rollup_of(), drop_rollup(),
 *	  set_rollup_schedule(), forget_dropped_rollups() (for the sql_drop
 *	  event trigger) and add_rollup_measures(); and, for distribute_stream
 *	  and undistribute_stream, the realtime views of a stream's rollups
 *	  made again and their worker delta tables made.
 *
 *	  The SQL of a rollup's objects is definition_sql.c's and view.c's, its
 *	  worker delta table delta.c's, the history of a distributed stream's
 *	  rollup and the measures added to a rollup backfill.c's, a rollup of a
 *	  rollup's buckets derived.c's; the catalog row is catalog/rollups.c's.
 *	  The fold of a new rollup's history (of a stream that is not
 *	  distributed), and of what is committed before measures are added, is
 *	  a refresh (refresh.c's ek_rollup_refresh()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog/batches.h"
#include "catalog/jobs.h"
#include "catalog/rollups.h"
#include "catalog/streams.h"
#include "rollup/backfill.h"
#include "rollup/delta.h"
#include "rollup/derived.h"
#include "rollup/manage.h"
#include "rollup/refresh.h"
#include "rollup/values.h"
#include "util/compat.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/citus.h"
#include "util/spi.h"

/* how often the worker refreshes a new rollup: eventkit.rollups.schedule's default */
#define ROLLUP_DEFAULT_SCHEDULE_USECS USECS_PER_MINUTE

/* events per chunk when create_rollup folds the history */
#define BACKFILL_CHUNK_EVENTS 100000

PG_FUNCTION_INFO_V1(eventkit_create_rollup);
PG_FUNCTION_INFO_V1(eventkit_drop_rollup);
PG_FUNCTION_INFO_V1(eventkit_set_rollup_schedule);
PG_FUNCTION_INFO_V1(eventkit_forget_dropped_rollups);
PG_FUNCTION_INFO_V1(eventkit_create_rollup_of);
PG_FUNCTION_INFO_V1(eventkit_add_rollup_measures);

/* "<stream><suffix>", clipped to NAMEDATALEN - 1 bytes as PostgreSQL would */
static char *
stream_index_name(Oid stream, const char *suffix)
{
	char	   *name = psprintf("%s%s", get_rel_name(stream), suffix);

	name[pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1)] = '\0';
	return name;
}

/* the stream's batch_id index (one per stream, shared by its rollups) */
static char *
batch_index_name(Oid stream)
{
	return stream_index_name(stream, "_batch_id_rollup_idx");
}

/*
 * The BRIN index that create_rollup puts on the stream (eventkit 1.1, and
 * again since 1.5; 1.2 to 1.4 made the btree above).  The writer's fast
 * path appends (TABLE_INSERT_SKIP_FSM: util/bulk_insert.h), so the rows
 * of a batch lie in new pages and each range's batch_id interval stays
 * narrow; a row costs ingest a look at the range map instead of a btree
 * descent and leaf insert (docs/rollups.md).
 */
static char *
brin_index_name(Oid stream)
{
	return stream_index_name(stream, "_batch_id_brin");
}

/* The names of a new rollup's objects, checked to be free. */
typedef struct RollupNames
{
	RangeVar   *rv;
	Oid			nspid;
	char	   *nspname;
	char	   *viewname;
	char	   *deltaname;
	char	   *wdeltaname;
	char	   *qtable;
	char	   *qview;
} RollupNames;

static void
rollup_names(text *name, RollupNames *n)
{
	n->rv = ek_rollup_rangevar(name);
	n->nspid = RangeVarGetCreationNamespace(n->rv);
	if (isAnyTempNamespace(n->nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a rollup cannot be a temporary table")));
	if (strlen(n->rv->relname) > NAMEDATALEN - 1 - strlen("_realtime"))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("rollup name \"%s\" is too long", n->rv->relname),
				 errdetail("The realtime view's name adds \"_realtime\" to it."),
				 errhint("Use a name of at most %d bytes.",
						 (int) (NAMEDATALEN - 1 - strlen("_realtime")))));
	n->viewname = psprintf("%s_realtime", n->rv->relname);
	if (OidIsValid(get_relname_relid(n->rv->relname, n->nspid)) ||
		OidIsValid(get_relname_relid(n->viewname, n->nspid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" or \"%s\" already exists", n->rv->relname, n->viewname),
				 errhint("Choose another rollup name.")));
	n->deltaname = psprintf("%s%s", n->rv->relname, EK_ROLLUP_DELTA_SUFFIX);
	n->wdeltaname = psprintf("%s%s", n->rv->relname, EK_ROLLUP_WDELTA_SUFFIX);
	if (OidIsValid(get_relname_relid(n->wdeltaname, n->nspid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", n->wdeltaname),
				 errdetail("A rollup of a distributed stream keeps the deltas of the events ingested on the Citus workers in a table of that name."),
				 errhint("Choose another rollup name.")));
	if (OidIsValid(get_relname_relid(n->deltaname, n->nspid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", n->deltaname),
				 errdetail("A rollup keeps the deltas of its new events in a table of that name."),
				 errhint("Choose another rollup name.")));
	n->nspname = get_namespace_name(n->nspid);
	n->qtable = quote_qualified_identifier(n->nspname, n->rv->relname);
	n->qview = quote_qualified_identifier(n->nspname, n->viewname);
}

/* its realtime view calls functions of the 1.3 catalog, its options need 1.4's */
static void
check_catalog(bool options)
{
	if (!ek_rollups_have_skips() || (options && !ek_rollups_have_options()))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the eventkit extension must be updated to create %s",
						options ? "rollups with options" : "rollups"),
				 errdetail("Rollups made by this library need objects of eventkit %s.",
						   options ? "1.4" : "1.3"),
				 errhint("Run ALTER EXTENSION eventkit UPDATE.")));
}

/*
 * eventkit.create_rollup(name text, stream regclass, bucket interval,
 *						  dimensions text[], measures text[],
 *						  backfill boolean DEFAULT true, filter text DEFAULT NULL,
 *						  time_zone text DEFAULT NULL, origin timestamptz DEFAULT NULL,
 *						  hll_log2m integer DEFAULT NULL) RETURNS regclass
 *
 * (Called through the 1.3 catalog's six-argument definition too.)
 */
Datum
eventkit_create_rollup(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	Oid			stream;
	Interval   *bucket;
	bool		backfill = PG_ARGISNULL(5) ? true : PG_GETARG_BOOL(5);
	RollupOptions opts;
	RollupNames n;
	StreamInfo	info;
	RollupDef	def;
	RollupRow	row;
	EkRoleScope as_owner;
	bool		distributed;

	memset(&opts, 0, sizeof(opts));
	if (PG_NARGS() >= 10)
	{
		if (!PG_ARGISNULL(6))
			opts.filter = text_to_cstring(PG_GETARG_TEXT_PP(6));
		if (!PG_ARGISNULL(7))
			opts.time_zone = text_to_cstring(PG_GETARG_TEXT_PP(7));
		opts.has_origin = !PG_ARGISNULL(8);
		if (opts.has_origin)
			opts.origin = PG_GETARG_TIMESTAMPTZ(8);
		if (!PG_ARGISNULL(9))
		{
			opts.hll_log2m = PG_GETARG_INT32(9);
			if (opts.hll_log2m == 0)
				opts.hll_log2m = -1;	/* out of range, not "the default" */
		}
	}

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null")));
	stream = PG_GETARG_OID(1);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("bucket must not be null"),
				 errhint("Use e.g. '1 hour'.")));
	bucket = PG_GETARG_INTERVAL_P(2);
	ek_rollup_check_bucket(bucket);
	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dimensions and measures must not be null"),
				 errhint("Use '{}' for a rollup without dimensions.")));

	LockRelationOid(stream, AccessShareLock);
	if (get_rel_name(stream) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", stream)));
	if (!ek_owns_relation(stream))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(stream));

	rollup_names(name, &n);

	SPI_connect();
	ek_streams_read(stream, &info, false);
	distributed = ek_citus_table_kind(stream) == EK_CITUS_HASH;

	memset(&def, 0, sizeof(def));
	def.stream_relid = stream;
	def.stream_id = info.stream_id;
	def.bucket = *bucket;
	ek_rollup_parse(&def, PG_GETARG_DATUM(3), PG_GETARG_DATUM(4), true);
	check_catalog(opts.filter || opts.time_zone || opts.has_origin || opts.hll_log2m);
	/* the filter is parsed as the stream's owner would read it: no role's code runs */
	ek_rollup_set_options(&def, &opts, true);

	def.rollup_id = ek_rollups_next_id();

	if (distributed)
	{
		/*
		 * Its worker delta table first (distributed with the stream, as the
		 * stream's owner, who will own the rollup), before this transaction
		 * reaches the stream's shards as another role (the lock below)
		 */
		ek_as_role_begin(&as_owner, ek_relation_owner(stream), 0);
		ek_rollup_make_worker_delta(&def, n.nspid, n.rv->relname, InvalidOid, InvalidOid);
		ek_as_role_end(&as_owner);

		/*
		 * On every node (Citus propagates the lock): the ingests in flight
		 * end first, so that the backfill below (or, without one, the
		 * check) sees all their events; those that begin now wait until
		 * this commits and then write the rollup's deltas
		 * (catalog/cluster.c reads the catalog after the lock), so that
		 * each batch is folded once, by the backfill or from its deltas
		 */
		ek_spi_exec(psprintf("LOCK TABLE %s IN SHARE MODE", ek_qualified_relname(stream)),
					SPI_OK_UTILITY);
		/* a later backfill_rollup folds the coordinator's batches only */
		if (!backfill)
			ek_rollup_check_no_worker_events(stream, info.stream_id);
	}

	/* the rollup table, its view and the stream's index: the stream owner's */
	ek_as_role_begin(&as_owner, ek_relation_owner(stream), 0);
	ek_spi_exec(ek_rollup_table_sql(&def, n.qtable, psprintf("%s_key", n.rv->relname)),
				SPI_OK_UTILITY);
	/*
	 * The stream's batch_id index, shared by its rollups: BRIN since 1.5
	 * (see brin_index_name); a stream that has the btree of 1.2 to 1.4, or
	 * the BRIN of 1.1, keeps it.
	 */
	if (!OidIsValid(get_relname_relid(batch_index_name(stream), get_rel_namespace(stream))) &&
		!OidIsValid(get_relname_relid(brin_index_name(stream), get_rel_namespace(stream))))
		ek_spi_exec(psprintf("CREATE INDEX %s ON %s USING brin (batch_id)"
							 " WITH (pages_per_range = %d, autosummarize = on)",
							 quote_identifier(brin_index_name(stream)),
							 ek_qualified_relname(stream), EK_ROLLUP_BRIN_PAGES),
					SPI_OK_UTILITY);
	CommandCounterIncrement();
	/* the delta table, dropped with the rollup table */
	{
		ObjectAddress table;
		ObjectAddress delta;

		ek_spi_exec(ek_rollup_delta_table_sql(&def, quote_qualified_identifier(n.nspname,
																			   n.deltaname)),
					SPI_OK_UTILITY);
		CommandCounterIncrement();
		ObjectAddressSet(table, RelationRelationId, get_relname_relid(n.rv->relname, n.nspid));
		ObjectAddressSet(delta, RelationRelationId, get_relname_relid(n.deltaname, n.nspid));
		recordDependencyOn(&delta, &table, DEPENDENCY_AUTO);
	}
	/* a distributed stream's: its worker delta table, made above */
	if (distributed)
		ek_rollup_worker_delta_depends(get_relname_relid(n.rv->relname, n.nspid));
	/* the view (of a distributed stream: over the delta table, made first) */
	{
		RollupDef	vdef = def;

		vdef.relid = get_relname_relid(n.rv->relname, n.nspid);
		ek_spi_exec(ek_rollup_view_sql(&vdef, n.qview, n.qtable), SPI_OK_UTILITY);
	}
	ek_as_role_end(&as_owner);
	CommandCounterIncrement();

	memset(&row, 0, sizeof(row));
	row.rollup_id = def.rollup_id;
	row.relid = get_relname_relid(n.rv->relname, n.nspid);
	row.view = get_relname_relid(n.viewname, n.nspid);
	row.stream = stream;
	row.stream_id = info.stream_id;
	row.bucket = *bucket;
	row.dimensions = PG_GETARG_DATUM(3);
	row.measures = PG_GETARG_DATUM(4);
	row.watermark = 0;
	row.backfill_target = ek_batches_position();
	row.format = EK_ROLLUP_FORMAT;
	row.opts = opts;

	ek_rollups_insert(&row, n.qtable);
	CommandCounterIncrement();

	/* the background worker refreshes it on its schedule (eventkit.rollups.schedule) */
	{
		Interval	schedule;

		memset(&schedule, 0, sizeof(schedule));
		schedule.time = ROLLUP_DEFAULT_SCHEDULE_USECS;
		ek_jobs_schedule(EK_JOB_REFRESH_ROLLUP, 0, n.qtable, &schedule);
	}

	/*
	 * A distributed stream's history: all its rows, the workers' included,
	 * in one GROUP BY through Citus (backfill.c), under the lock taken
	 * above; the coordinator's batches up to backfill_target are all in it
	 */
	if (backfill && distributed)
	{
		int64		total;
		RollupSkips skips;
		Datum		skipped;
		bool		skipped_null;

		if (!ek_rollups_read(row.relid, true, &row))
			elog(ERROR, "eventkit: created rollup not found");
		memset(&skips, 0, sizeof(skips));
		ek_as_role_begin(&as_owner, ek_relation_owner(row.relid), 0);
		total = ek_rollup_backfill_all(&def, n.qtable, &skips);
		ek_as_role_end(&as_owner);
		skipped = ek_rollup_skips_jsonb(&skips, &skipped_null);
		ek_rollups_record_refresh(&row, row.backfill_target, total, skipped, skipped_null,
								  row.format);
		if (total > 0)
			ereport(NOTICE,
					(errmsg("rollup \"%s\": %lld events of history folded",
							n.rv->relname, (long long) total)));
	}
	/* else fold the history in chunks, in this transaction */
	else if (backfill && row.backfill_target > 0)
	{
		int64		total = 0;

		if (!ek_rollups_read(row.relid, true, &row))
			elog(ERROR, "eventkit: created rollup not found");
		while (row.watermark < row.backfill_target)
		{
			int64		nev = ek_rollup_refresh(&row, BACKFILL_CHUNK_EVENTS, false);

			total += nev;
			if (nev > 0)
				ereport(NOTICE,
						(errmsg("rollup \"%s\": %lld events of history folded",
								n.rv->relname, (long long) total)));
		}
	}

	SPI_finish();
	PG_RETURN_OID(row.relid);
}

/*
 * eventkit.create_rollup_of(name text, source text, bucket interval,
 *							 dimensions text[] DEFAULT NULL) RETURNS regclass
 *
 * A rollup computed from another rollup's partial states (e.g. daily from
 * hourly): coarser buckets made of whole buckets of the source, a subset
 * of its dimensions (by name; NULL: all), all its measures, its filter,
 * time zone, origin and hll precision.  It has no delta table and no job
 * of its own: each refresh of the source recomputes, in the same
 * transaction, the buckets of this rollup that hold a source bucket the
 * refresh merged into, and moves this rollup's watermark with the
 * source's.  Its realtime view adds the stream's tail as any rollup's does.
 */
Datum
eventkit_create_rollup_of(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	text	   *source = ek_rollup_text_arg(fcinfo, 1, "source rollup");
	Interval   *bucket;
	RollupNames n;
	RollupRow	src;
	RollupDef	sdef;
	RollupDef	def;
	RollupRow	row;
	Datum	   *sdims;
	int			nsdims;
	Datum	   *dims;
	int			ndims = 0;
	EkRoleScope as_owner;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("bucket must not be null"),
				 errhint("Use e.g. '1 day'.")));
	bucket = PG_GETARG_INTERVAL_P(2);
	ek_rollup_check_bucket(bucket);
	check_catalog(true);

	SPI_connect();
	/* the source's row stays locked: no refresh of it until this commits */
	ek_rollup_find(source, true, &src);
	if (!ek_owns_relation(src.stream))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(src.stream));
	if (OidIsValid(src.source))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rollup \"%s\" is itself a rollup of a rollup", text_to_cstring(source)),
				 errhint("Make the new rollup from \"%s\"'s source.", text_to_cstring(source))));
	ek_rollup_row_def(&src, &sdef);
	if (!ek_rollup_bucket_divides(&src.bucket, src.opts.has_origin, bucket))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bucket %s is not made of whole buckets of rollup \"%s\" (%s)",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(bucket))),
						text_to_cstring(source),
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(&src.bucket)))),
				 errdetail("A rollup of a rollup merges whole buckets of its source."),
				 errhint("Use a multiple of the source's bucket (daily from hourly, hourly from 5 minutes), or '1 month' from buckets that divide a day.")));

	/* the dimensions: the source's specs of the names asked for */
	deconstruct_array(DatumGetArrayTypeP(src.dimensions), TEXTOID, -1, false, TYPALIGN_INT,
					  &sdims, NULL, &nsdims);
	dims = palloc((nsdims + 1) * sizeof(Datum));
	if (PG_ARGISNULL(3))
	{
		memcpy(dims, sdims, nsdims * sizeof(Datum));
		ndims = nsdims;
	}
	else
	{
		Datum	   *names;
		bool	   *nulls;
		int			nnames;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(3), TEXTOID, -1, false, TYPALIGN_INT,
						  &names, &nulls, &nnames);
		for (int i = 0; i < nnames; i++)
		{
			char	   *want;
			int			found = -1;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("dimensions must not contain nulls")));
			want = TextDatumGetCString(names[i]);
			for (int d = 0; d < nsdims; d++)
				if (strcmp(((RollupDim *) list_nth(sdef.dims, d))->name, want) == 0)
					found = d;
			if (found < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("rollup \"%s\" has no dimension \"%s\"", text_to_cstring(source), want),
						 errhint("A rollup of a rollup keeps some of its source's dimensions, named as in the source's table.")));
			for (int j = 0; j < ndims; j++)
				if (dims[j] == sdims[found])
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("dimension \"%s\" is listed more than once", want)));
			dims[ndims++] = sdims[found];
		}
	}

	rollup_names(name, &n);
	memset(&row, 0, sizeof(row));
	row.stream = src.stream;
	row.stream_id = src.stream_id;
	row.bucket = *bucket;
	row.dimensions = PointerGetDatum(construct_array(dims, ndims, TEXTOID, -1, false, TYPALIGN_INT));
	row.measures = src.measures;
	row.opts = src.opts;
	row.source = src.relid;
	row.format = EK_ROLLUP_FORMAT;
	row.backfill_target = 0;
	row.rollup_id = ek_rollups_next_id();
	ek_rollup_row_def(&row, &def);

	ek_as_role_begin(&as_owner, ek_relation_owner(src.stream), 0);
	ek_spi_exec(ek_rollup_table_sql(&def, n.qtable, psprintf("%s_key", n.rv->relname)),
				SPI_OK_UTILITY);
	CommandCounterIncrement();
	/* (of a distributed stream: its tail from its source's deltas, view.c) */
	def.relid = get_relname_relid(n.rv->relname, n.nspid);
	ek_spi_exec(ek_rollup_view_sql(&def, n.qview, n.qtable), SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
	CommandCounterIncrement();

	row.relid = get_relname_relid(n.rv->relname, n.nspid);
	row.view = get_relname_relid(n.viewname, n.nspid);
	ek_rollups_insert(&row, n.qtable);
	CommandCounterIncrement();

	/* everything the source has folded, and the source's watermark */
	ek_rollup_recompute_derived(&row, NULL);
	ek_rollups_record_refresh(&row, src.watermark, 0, (Datum) 0, true, row.format);

	SPI_finish();
	PG_RETURN_OID(row.relid);
}

/*
 * eventkit.drop_rollup(name text): drops the rollup table, its realtime
 * view and its catalog row; and the stream's batch_id index (the BRIN, or
 * the btree of 1.2 to 1.4) when no other rollup reads that stream.
 */
Datum
eventkit_drop_rollup(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	RollupRow	row;
	EkRoleScope as_owner;
	char	   *qname;
	Oid			wdelta;
	bool		last;
	bool		one_role;

	SPI_connect();
	ek_rollup_find(name, true, &row);
	{
		List	   *derived = ek_rollups_derived(row.relid);

		if (derived != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop rollup \"%s\": rollup \"%s\" is computed from it",
							text_to_cstring(name), get_rel_name(linitial_oid(derived))),
					 errhint("Drop the rollups of this rollup first.")));
	}

	/*
	 * Ingest locks the stream, then the delta table: so do we, before the
	 * delta table (and the stream's index, with its last rollup), or an
	 * ingest in between would deadlock with us.
	 */
	if (get_rel_name(row.stream) != NULL)
		LockRelationOid(row.stream, ShareRowExclusiveLock);

	/*
	 * A worker delta table distributed with the stream, of a rollup owned
	 * by another role than the stream, whose batch_id index goes too: both
	 * dropped as one role, the extension's owner (a superuser), since
	 * Citus refuses two roles on co-located placements in one transaction
	 */
	wdelta = ek_rollup_wdelta_relid(row.relid);
	last = get_rel_name(row.stream) != NULL &&
		!ek_rollups_others_on_stream(row.rollup_id, row.stream_id);
	one_role = last && ek_rollup_wdelta_distributed(wdelta) &&
		ek_relation_owner(row.relid) != ek_relation_owner(row.stream) &&
		superuser_arg(ek_extension_owner());

	ek_as_role_begin(&as_owner, ek_relation_owner(row.relid), 0);
	if (get_rel_name(row.view) != NULL)
		ek_spi_exec(psprintf("DROP VIEW %s", ek_qualified_relname(row.view)), SPI_OK_UTILITY);
	{
		/* (the dependency on the rollup table is not in a dump) */
		Oid			delta = ek_rollup_delta_relid(row.relid);

		if (OidIsValid(delta))
			ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(delta)), SPI_OK_UTILITY);
		if (OidIsValid(wdelta) && !one_role)
			ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(wdelta)), SPI_OK_UTILITY);
	}
	if (one_role)
	{
		EkRoleScope as_ext;

		ek_as_owner_begin(&as_ext);
		ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(wdelta)), SPI_OK_UTILITY);
		ek_as_role_end(&as_ext);
	}
	ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(row.relid)), SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);

	/* (the sql_drop trigger has usually removed the row and its job already) */
	qname = ek_rollups_delete(row.rollup_id);
	if (qname != NULL)
		ek_jobs_unschedule(EK_JOB_REFRESH_ROLLUP, qname);
	if (last && get_rel_name(row.stream) != NULL)
	{
		Oid			nspid = get_rel_namespace(row.stream);
		char	   *nsp = get_namespace_name(nspid);
		char	   *idx[2] = {batch_index_name(row.stream), brin_index_name(row.stream)};

		if (one_role)
			ek_as_owner_begin(&as_owner);
		else
			ek_as_role_begin(&as_owner, ek_relation_owner(row.stream), 0);
		for (int i = 0; i < lengthof(idx); i++)
			if (OidIsValid(get_relname_relid(idx[i], nspid)))
				ek_spi_exec(psprintf("DROP INDEX %s", quote_qualified_identifier(nsp, idx[i])),
							SPI_OK_UTILITY);
		ek_as_role_end(&as_owner);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventkit.set_rollup_schedule(name text, schedule interval): how often the
 * background worker refreshes the rollup.
 */
Datum
eventkit_set_rollup_schedule(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	Interval   *schedule;
	RollupRow	row;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule must not be null")));
	schedule = PG_GETARG_INTERVAL_P(1);
	if (schedule->month < 0 || schedule->day < 0 || schedule->time < 0 ||
		(schedule->month == 0 && schedule->day == 0 && schedule->time < USECS_PER_SEC))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schedule must be at least 1 second"),
				 errhint("Use e.g. '1 minute'.")));

	SPI_connect();
	ek_rollup_find(name, true, &row);
	ek_rollups_set_schedule(row.rollup_id, schedule);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventkit.forget_dropped_rollups(): called by the sql_drop event trigger;
 * removes the catalog rows of rollups whose table (or stream) is gone.  A
 * rollup table whose stream was dropped stays, as an ordinary table.
 */
Datum
eventkit_forget_dropped_rollups(PG_FUNCTION_ARGS)
{
	int32		forgotten;

	SPI_connect();
	forgotten = ek_rollups_forget_dropped();
	SPI_finish();
	PG_RETURN_INT32(forgotten);
}

/*
 * How many measures the realtime view has before skipped_events (the
 * others were added after it): from its columns.
 */
static int
view_split(const RollupRow *row, const RollupDef *def)
{
	AttrNumber	att = get_attnum(row->view, EK_ROLLUP_SKIPPED_COLUMN);

	if (att == InvalidAttrNumber)
		return 0;
	return att - 2 - list_length(def->dims);
}

/*
 * Make the realtime view of the rollup relid again, as ek_rollup_view_sql()
 * makes it now.  CREATE OR REPLACE, as the view's owner: the columns are
 * the same, grants and the views on it are kept.  Returns false for a
 * rollup that is gone or has no view.
 */
static bool
remake_view(Oid relid)
{
	RollupRow	row;
	RollupDef	def;
	EkRoleScope as_owner;
	char	   *sql;

	if (!ek_rollups_read(relid, false, &row) ||
		!OidIsValid(row.view) || get_rel_name(row.view) == NULL)
		return false;
	ek_rollup_row_def(&row, &def);
	def.view_split = view_split(&row, &def);
	sql = ek_rollup_view_sql(&def, ek_qualified_relname(row.view),
							 ek_qualified_relname(row.relid));
	Assert(strncmp(sql, "CREATE VIEW ", 12) == 0);
	ek_as_role_begin(&as_owner, ek_relation_owner(row.view), 0);
	ek_spi_exec(psprintf("CREATE OR REPLACE VIEW %s", sql + 12), SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
	return true;
}

/*
 * Make the realtime views of a stream's rollups, and of the rollups of
 * them (1.15), again, as ek_rollup_view_sql() makes them now:
 * distribute_stream calls it once the stream is a Citus table, so that
 * their tails come from the deltas (view.c), and undistribute_stream once
 * it is not, so that they come from the stream's rows.  Caller: SPI
 * connected.
 */
void
ek_rollups_remake_views(int32 stream_id)
{
	ListCell   *lc;

	foreach(lc, ek_rollups_stream_relids(stream_id))
	{
		ListCell   *dc;

		if (!remake_view(lfirst_oid(lc)))
			continue;
		foreach(dc, ek_rollups_derived(lfirst_oid(lc)))
			(void) remake_view(lfirst_oid(dc));
	}
}

/*
 * Make the worker delta tables of a stream's rollups (not of rollups of
 * them) that have none.  With eventkit.worker_deltas_on_shards,
 * distribute_stream calls it once it has distributed the stream (the
 * tables are co-located with it), as the extension owner, which made the
 * stream's shards in this transaction (Citus reaches co-located placements
 * as one role per transaction): each table is made as that role, then
 * given to its rollup's owner.  Without it, before it distributes the
 * stream (Citus local tables: delta.c), each made as its rollup's owner.
 * Then distribute_stream publishes the stream's catalog, with them.
 * Caller: SPI connected, on the coordinator.
 */
void
ek_rollups_make_worker_deltas(int32 stream_id)
{
	ListCell   *lc;

	foreach(lc, ek_rollups_stream_relids(stream_id))
	{
		RollupRow	row;
		RollupDef	def;

		if (!ek_rollups_read(lfirst_oid(lc), false, &row) || OidIsValid(row.source) ||
			OidIsValid(ek_rollup_wdelta_relid(row.relid)))
			continue;
		ek_rollup_row_def(&row, &def);
		if (ek_worker_deltas_on_shards)
			ek_rollup_make_worker_delta(&def, get_rel_namespace(row.relid), get_rel_name(row.relid),
										row.relid, ek_relation_owner(row.relid));
		else
		{
			EkRoleScope as_owner;

			ek_as_role_begin(&as_owner, ek_relation_owner(row.relid), 0);
			ek_rollup_make_worker_delta(&def, get_rel_namespace(row.relid), get_rel_name(row.relid),
										row.relid, InvalidOid);
			ek_as_role_end(&as_owner);
		}
	}
}

/*
 * eventkit.add_rollup_measures(name text, measures text[]): adds measures
 * to a rollup without dropping it.  With the stream locked against ingest
 * (SHARE ROW EXCLUSIVE, as drop_rollup takes it; of a distributed stream,
 * on every node) until it commits: folds what is new, adds the measures'
 * columns to the rollup table and its delta tables, computes them (and
 * skipped_events) from the stream's stored events for every bucket
 * (backfill.c), publishes the measures to the Citus workers, and makes
 * the realtime view again
 * (dropped and created: grants on it are not kept).  Buckets whose events
 * retention dropped keep NULL (count: 0) in the new measures.
 */
Datum
eventkit_add_rollup_measures(PG_FUNCTION_ARGS)
{
	text	   *name = ek_rollup_text_arg(fcinfo, 0, "rollup name");
	ArrayType  *added;
	RollupRow	row;
	RollupDef	full;
	RollupDef	def;
	Datum		measures;
	EkRoleScope as_owner;
	Oid			delta;
	Oid			wdelta;
	StringInfoData sql;
	char	   *qtable;
	char	   *qview;

	if (PG_ARGISNULL(1) || ARR_NDIM(PG_GETARG_ARRAYTYPE_P(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("measures must be a non-empty array"),
				 errhint("For example ARRAY['sum(properties.revenue)'].")));
	added = PG_GETARG_ARRAYTYPE_P(1);
	check_catalog(true);

	SPI_connect();
	ek_rollup_find(name, false, &row);
	if (OidIsValid(row.source))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add measures to rollup \"%s\": it is a rollup of a rollup",
						text_to_cstring(name)),
				 errhint("Add them to its source, then make the rollup of it again.")));
	/* no ingest into the stream until this commits; then the catalog row */
	LockRelationOid(row.stream, ShareRowExclusiveLock);
	/*
	 * A rollup of a distributed stream (it has a worker delta table): on
	 * every node (Citus propagates the lock), since ingest on a worker
	 * writes the rollup's deltas with the measures it adopted.  The calls
	 * in flight end first, their deltas in the worker delta table, which
	 * the refresh below folds whole; those that begin now wait until this
	 * commits, then adopt the measures published below in a new snapshot
	 * (catalog/cluster.c) and write deltas with all of them
	 */
	wdelta = ek_rollup_wdelta_relid(row.relid);
	if (OidIsValid(wdelta))
		ek_spi_exec(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
							 ek_qualified_relname(row.stream)),
					SPI_OK_UTILITY);
	if (!ek_rollups_read(row.relid, true, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rollup \"%s\" was dropped concurrently", text_to_cstring(name))));

	/* the definition with the measures added, checked as create_rollup checks one */
	measures = DirectFunctionCall2(array_cat, row.measures, PointerGetDatum(added));
	ek_rollup_def_of_row(&row, measures, true, &full);
	memset(&def, 0, sizeof(def));
	def = full;
	ek_rollup_parse(&def, row.dimensions, PointerGetDatum(added), false);
	ek_rollup_set_options(&def, &row.opts, false);

	/* everything committed is folded: the rollup is exact up to its watermark */
	(void) ek_rollup_refresh(&row, 0, true);

	qtable = ek_qualified_relname(row.relid);
	ek_as_role_begin(&as_owner, ek_relation_owner(row.relid), 0);
	{
		RollupDef	cols = def;

		cols.dims = NIL;
		/* ", ADD COLUMN ...": without the first ", " */
		initStringInfo(&sql);
		ek_rollup_append_column_defs(&sql, &cols, false, true);
		ek_spi_exec(psprintf("ALTER TABLE %s %s", qtable, sql.data + 2), SPI_OK_UTILITY);
		delta = ek_rollup_delta_relid(row.relid);
		if (OidIsValid(delta))
		{
			char	   *qdelta = ek_qualified_relname(delta);

			resetStringInfo(&sql);
			ek_rollup_append_column_defs(&sql, &cols, true, true);
			/* (folded, and no ingest since: it has no rows to give the new columns) */
			ek_spi_exec(psprintf("DELETE FROM %s", qdelta), SPI_OK_DELETE);
			ek_spi_exec(psprintf("ALTER TABLE %s %s", qdelta, sql.data + 2), SPI_OK_UTILITY);
		}
		/*
		 * (folded whole by the refresh, no ingest since: it is empty, or,
		 * distributed, holds only rows of folded generations, which nothing
		 * reads again: wdelta.c)
		 */
		if (OidIsValid(wdelta))
		{
			resetStringInfo(&sql);
			ek_rollup_append_column_defs(&sql, &cols, true, true);
			ek_spi_exec(psprintf("ALTER TABLE %s %s", ek_qualified_relname(wdelta), sql.data + 2),
						SPI_OK_UTILITY);
		}
	}
	CommandCounterIncrement();

	/*
	 * The new measures and skipped_events of every bucket, from the stored
	 * events: up to the watermark; of a distributed stream, all of them
	 * (the workers' batch ids are not in the watermark's order; every
	 * committed batch was folded by the refresh above, and none can commit
	 * meanwhile on any node)
	 */
	if (OidIsValid(wdelta))
		ek_rollup_compute_measures(&def, &full, qtable, -1);
	else if (row.watermark > 0)
		ek_rollup_compute_measures(&def, &full, qtable, row.watermark);
	ek_as_role_end(&as_owner);

	/*
	 * The realtime view, with the new measures after its last column
	 * (CREATE OR REPLACE: its grants and the views on it are kept).
	 */
	qview = ek_qualified_relname(row.view);
	full.view_split = view_split(&row, &full);
	{
		char	   *vsql = ek_rollup_view_sql(&full, qview, qtable);

		Assert(strncmp(vsql, "CREATE VIEW ", 12) == 0);
		ek_as_role_begin(&as_owner, ek_relation_owner(row.view), 0);
		ek_spi_exec(psprintf("CREATE OR REPLACE VIEW %s", vsql + 12), SPI_OK_UTILITY);
		ek_as_role_end(&as_owner);
	}
	/* (a distributed stream's: published to every node) */
	ek_rollups_set_measures(&row, measures, row.view);
	SPI_finish();
	PG_RETURN_VOID();
}
