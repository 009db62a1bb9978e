/*-------------------------------------------------------------------------
 *
 * streams.c
 *	  eventkit.streams: reading a stream's row into a StreamInfo (once per
 *	  ingest call), recording a new stream, changing its options or its
 *	  tracking plan, listing streams, and forgetting everything eventkit
 *	  recorded about a dropped stream.
 *
 *	  The row's layout depends on the catalog's version: a 1.0 catalog has
 *	  no plans, one before 1.3 no clock bounds or limits; each version has
 *	  its statement, chosen by ek_catalog_version().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/cluster.h"
#include "catalog/streams.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

#define STREAM_COLUMNS \
	"SELECT stream_id, partition_interval, premake, retention, key_partitions," \
	" dedup_window, ledger_gen,"
#define STREAM_WHERE " FROM eventkit.streams s WHERE relid OPERATOR(pg_catalog.=) $1"

static EkStatement read_1_3 = {
	.sql = STREAM_COLUMNS
	" plan_id, COALESCE(plan_version, (SELECT pg_catalog.max(v.version)"
	"  FROM eventkit.plan_versions v WHERE v.plan_id OPERATOR(pg_catalog.=) s.plan_id)),"
	" max_past, max_future, max_event_bytes, max_batch_bytes, max_batch_items"
	STREAM_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

/* before 1.3: no clock bounds, no limits */
static EkStatement read_1_1 = {
	.sql = STREAM_COLUMNS
	" plan_id, COALESCE(plan_version, (SELECT pg_catalog.max(v.version)"
	"  FROM eventkit.plan_versions v WHERE v.plan_id OPERATOR(pg_catalog.=) s.plan_id)),"
	" NULL::pg_catalog.interval, NULL::pg_catalog.interval,"
	" NULL::pg_catalog.int4, NULL::pg_catalog.int4, NULL::pg_catalog.int4"
	STREAM_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

/* 1.0: no plans either */
static EkStatement read_1_0 = {
	.sql = STREAM_COLUMNS
	" NULL::pg_catalog.int4, NULL::pg_catalog.int4,"
	" NULL::pg_catalog.interval, NULL::pg_catalog.interval,"
	" NULL::pg_catalog.int4, NULL::pg_catalog.int4, NULL::pg_catalog.int4"
	STREAM_WHERE,
	.nargs = 1,.argtypes = {OIDOID},.expected = SPI_OK_SELECT
};

static EkStatement next_id = {
	.sql = "SELECT pg_catalog.nextval('eventkit.streams_stream_id_seq')::pg_catalog.int4",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

/* $1..$12: stream_row_args() */
#define ROW_ARGS 12
#define ROW_TYPES {INT4OID, OIDOID, INTERVALOID, INT4OID, INTERVALOID, INT4OID, \
	INTERVALOID, INTERVALOID, INTERVALOID, INT4OID, INT4OID, INT4OID}

static EkStatement insert_1_3 = {
	.sql = "INSERT INTO eventkit.streams (stream_id, relid, partition_interval, premake,"
	" retention, key_partitions, dedup_window, max_past, max_future, max_event_bytes,"
	" max_batch_bytes, max_batch_items)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
	.nargs = ROW_ARGS,.argtypes = ROW_TYPES,.expected = SPI_OK_INSERT
};

static EkStatement insert_1_0 = {
	.sql = "INSERT INTO eventkit.streams (stream_id, relid, partition_interval, premake,"
	" retention, key_partitions, dedup_window) VALUES ($1, $2, $3, $4, $5, $6, $7)",
	.nargs = 7,.argtypes = ROW_TYPES,.expected = SPI_OK_INSERT
};

static EkStatement update_options = {
	.sql = "UPDATE eventkit.streams SET premake = $4, retention = $5,"
	" dedup_window = $7, max_past = $8, max_future = $9,"
	" max_event_bytes = $10, max_batch_bytes = $11, max_batch_items = $12"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND relid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass"
	" AND partition_interval OPERATOR(pg_catalog.=) $3"
	" AND key_partitions OPERATOR(pg_catalog.=) $6",
	.nargs = ROW_ARGS,.argtypes = ROW_TYPES,.expected = SPI_OK_UPDATE,
	.flags = EK_STMT_ONE_ROW
};

static EkStatement set_plan = {
	.sql = "UPDATE eventkit.streams SET plan_id = $2, plan_version = $3"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 3,.argtypes = {INT4OID, INT4OID, INT4OID},.expected = SPI_OK_UPDATE
};

/* what forgetting a stream deletes, in this order */
static EkStatement forget[] = {
	{.sql = "DELETE FROM eventkit.quarantine WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.conflicts WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.ingest_batches WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.batch_violations WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.ledger_generations WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.streams WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
};

static EkStatement all_relids = {
	.sql = "SELECT relid::pg_catalog.oid FROM eventkit.streams ORDER BY stream_id",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

static EkStatement relid_of = {
	.sql = "SELECT relid::pg_catalog.oid FROM eventkit.streams"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

/*
 * (Only the tables this command dropped: on a Citus coordinator that holds
 * shards, Citus drops the stream's local shards from its own sql_drop
 * trigger, and each of those drops fires eventkit's trigger again, where
 * no distributed query may run; the stream is among the objects of the
 * DROP of the stream itself, whose trigger forgets it.)
 */
static EkStatement dropped = {
	.sql = "SELECT s.stream_id FROM eventkit.streams s"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	"   WHERE c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid)"
	" AND s.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY("
	"   SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d"
	"   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass))",
	.expected = SPI_OK_SELECT
};

static Interval
interval_value(int col, bool *isnull)
{
	Datum		d = ek_spi_value(0, col, isnull);
	Interval	iv;

	memset(&iv, 0, sizeof(iv));
	if (!*isnull)
		iv = *DatumGetIntervalP(d);
	return iv;
}

static int32
int_value(int col)
{
	bool		isnull;
	Datum		d = ek_spi_value(0, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * Read a stream's catalog row.  False if relid is not a stream and
 * missing_ok, else an error.  Caller: SPI connected.
 */
bool
ek_streams_read(Oid relid, StreamInfo *info, bool missing_ok)
{
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	EkCatalogVersion version = ek_catalog_version();
	bool		isnull;

	if (ek_stmt_run(version >= EK_CATALOG_1_3 ? &read_1_3 :
					version >= EK_CATALOG_1_1 ? &read_1_1 : &read_1_0,
					values, NULL) == 0)
	{
		if (missing_ok)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s\" is not an eventkit stream",
						get_rel_name(relid) ? get_rel_name(relid) : "?"),
				 errhint("Create streams with eventkit.create_stream().")));
	}
	memset(info, 0, sizeof(StreamInfo));
	info->relid = relid;
	info->stream_id = int_value(1);
	info->partition_interval = interval_value(2, &isnull);
	info->premake = int_value(3);
	info->retention = interval_value(4, &isnull);
	info->has_retention = !isnull;
	info->key_partitions = int_value(5);
	info->dedup_window = interval_value(6, &isnull);
	info->ledger_gen = int_value(7);
	info->plan_id = int_value(8);
	info->plan_version = int_value(9);
	info->max_past = interval_value(10, &isnull);
	info->has_max_past = !isnull;
	info->max_future = interval_value(11, &isnull);
	info->has_max_future = !isnull;
	info->max_event_bytes = int_value(12);
	info->max_batch_bytes = int_value(13);
	info->max_batch_items = int_value(14);
	return true;
}

/*
 * The settable columns of a stream's row as arguments $1..$12: stream_id,
 * relid, partition_interval, premake, retention, key_partitions,
 * dedup_window, max_past, max_future, max_event_bytes, max_batch_bytes,
 * max_batch_items.
 */
static void
stream_row_args(const StreamInfo *st, Datum *values, char *nulls)
{
	memset(nulls, ' ', ROW_ARGS);
	values[0] = Int32GetDatum(st->stream_id);
	values[1] = ObjectIdGetDatum(st->relid);
	values[2] = IntervalPGetDatum(&st->partition_interval);
	values[3] = Int32GetDatum(st->premake);
	values[4] = IntervalPGetDatum(&st->retention);
	nulls[4] = st->has_retention ? ' ' : 'n';
	values[5] = Int32GetDatum(st->key_partitions);
	values[6] = IntervalPGetDatum(&st->dedup_window);
	values[7] = IntervalPGetDatum(&st->max_past);
	nulls[7] = st->has_max_past ? ' ' : 'n';
	values[8] = IntervalPGetDatum(&st->max_future);
	nulls[8] = st->has_max_future ? ' ' : 'n';
	values[9] = Int32GetDatum(st->max_event_bytes);
	nulls[9] = st->max_event_bytes > 0 ? ' ' : 'n';
	values[10] = Int32GetDatum(st->max_batch_bytes);
	nulls[10] = st->max_batch_bytes > 0 ? ' ' : 'n';
	values[11] = Int32GetDatum(st->max_batch_items);
	nulls[11] = st->max_batch_items > 0 ? ' ' : 'n';
}

/* Record a new stream; sets stream->stream_id.  Caller: SPI connected. */
void
ek_streams_insert(StreamInfo *stream)
{
	Datum		values[ROW_ARGS];
	char		nulls[ROW_ARGS];
	bool		isnull;

	ek_stmt_run(&next_id, NULL, NULL);
	stream->stream_id = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	stream_row_args(stream, values, nulls);
	ek_stmt_run(ek_catalog_version() >= EK_CATALOG_1_3 ? &insert_1_3 : &insert_1_0,
				values, nulls);
}

/*
 * Store a stream's options (those alter_stream may change; its row must
 * still have its partition_interval and key_partitions).
 */
void
ek_streams_update(const StreamInfo *stream)
{
	Datum		values[ROW_ARGS];
	char		nulls[ROW_ARGS];

	stream_row_args(stream, values, nulls);
	ek_stmt_run(&update_options, values, nulls);
	/* a distributed stream's row is in the cluster-wide catalog */
	ek_cluster_stream_changed(stream->stream_id, stream->relid);
}

/* Attach a plan (plan_id 0: detach); version 0: follow its latest. */
void
ek_streams_set_plan(int32 stream_id, int32 plan_id, int32 version)
{
	Datum		values[3] = {Int32GetDatum(stream_id), Int32GetDatum(plan_id),
	Int32GetDatum(version)};
	char		nulls[3] = {' ', plan_id > 0 ? ' ' : 'n', version > 0 ? ' ' : 'n'};

	ek_stmt_run(&set_plan, values, nulls);
	/* a distributed stream's plan is in the cluster-wide catalog */
	if (ek_citus_present())
		ek_cluster_stream_changed(stream_id, ek_streams_relid(stream_id));
}

/*
 * Remove a stream's rows from the catalog: its quarantine, conflicts,
 * batch log, violation counts, ledger generations and its own row.
 */
void
ek_streams_forget(int32 stream_id)
{
	Datum		values[1] = {Int32GetDatum(stream_id)};

	for (int i = 0; i < lengthof(forget); i++)
		ek_stmt_run(&forget[i], values, NULL);
}

/* The tables of all streams, in stream_id order (a list of Oid). */
List *
ek_streams_relids(void)
{
	List	   *relids = NIL;
	uint64		n = ek_stmt_run(&all_relids, NULL, NULL);

	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;

		relids = lappend_oid(relids, DatumGetObjectId(ek_spi_value(r, 1, &isnull)));
	}
	return relids;
}

/* The table of stream stream_id; InvalidOid if there is none. */
Oid
ek_streams_relid(int32 stream_id)
{
	Datum		values[1] = {Int32GetDatum(stream_id)};
	bool		isnull;

	if (ek_stmt_run(&relid_of, values, NULL) == 0)
		return InvalidOid;
	return DatumGetObjectId(ek_spi_value(0, 1, &isnull));
}

/*
 * The ids of the streams whose table the current command dropped (a list
 * of int).  Only in a sql_drop event trigger.
 */
List *
ek_streams_dropped(void)
{
	ek_stmt_run(&dropped, NULL, NULL);
	return ek_spi_int_list();
}
