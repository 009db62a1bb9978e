/*-------------------------------------------------------------------------
 *
 * kafka.c
 *	  Kafka sources in the catalog: a source's row in
 *	  eventkit.kafka_source_config (its stream, brokers, topic, options,
 *	  owner and the consumer's error state) and its partitions' stored
 *	  offsets in eventkit.kafka_offsets, which the consumer
 *	  (intake/kafka_consumer.c) writes in the transaction that stores a
 *	  batch's events: exactly once.  Both came with 1.3.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/kafka.h"
#include "util/owner.h"
#include "util/spi.h"

static EkStatement source_ids = {
	.sql = "SELECT source_id FROM eventkit.kafka_source_config ORDER BY source_id",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

#define READ_SOURCE \
	"SELECT c.name, c.stream_id, s.relid::pg_catalog.oid," \
	" c.brokers, c.topic, c.options, c.owner" \
	" FROM eventkit.kafka_source_config c" \
	" LEFT JOIN eventkit.streams s" \
	" ON s.stream_id OPERATOR(pg_catalog.=) c.stream_id" \
	" WHERE c.source_id OPERATOR(pg_catalog.=) $1"

static EkStatement read_source[2] = {
	{.sql = READ_SOURCE,.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT},
	/* locked against drop_kafka_source */
	{.sql = READ_SOURCE " FOR KEY SHARE OF c",.nargs = 1,.argtypes = {INT4OID},
	.expected = SPI_OK_SELECT},
};

#define READ_OFFSETS \
	"SELECT partition, next_offset FROM eventkit.kafka_offsets" \
	" WHERE source_id OPERATOR(pg_catalog.=) $1 ORDER BY partition"

static EkStatement read_offsets[2] = {
	{.sql = READ_OFFSETS,.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT},
	{.sql = READ_OFFSETS " FOR UPDATE",.nargs = 1,.argtypes = {INT4OID},
	.expected = SPI_OK_SELECT},
};

static EkStatement add_partitions = {
	.sql = "INSERT INTO eventkit.kafka_offsets (source_id, partition, next_offset)"
	" SELECT $1, x.p, x.o"
	" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(p, o)"
	" ON CONFLICT (source_id, partition) DO NOTHING",
	.nargs = 3,.argtypes = {INT4OID, INT4ARRAYOID, INT8ARRAYOID},.expected = SPI_OK_INSERT
};

static EkStatement store_progress = {
	.sql = "INSERT INTO eventkit.kafka_offsets AS o (source_id, partition,"
	" next_offset, high_watermark, messages, events, updated_at)"
	" SELECT $1, x.p, x.n, x.h, x.m, x.e, pg_catalog.now()"
	" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
	" pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6)) AS x(p, n, h, m, e)"
	" ON CONFLICT (source_id, partition) DO UPDATE"
	" SET next_offset = EXCLUDED.next_offset,"
	" high_watermark = COALESCE(EXCLUDED.high_watermark, o.high_watermark),"
	" messages = o.messages OPERATOR(pg_catalog.+) EXCLUDED.messages,"
	" events = o.events OPERATOR(pg_catalog.+) EXCLUDED.events,"
	" updated_at = EXCLUDED.updated_at",
	.nargs = 6,.argtypes = {INT4OID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID},.expected = SPI_OK_INSERT
};

static EkStatement store_watermarks = {
	.sql = "UPDATE eventkit.kafka_offsets o SET high_watermark = x.h"
	" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(p, h)"
	" WHERE o.source_id OPERATOR(pg_catalog.=) $1"
	" AND o.partition OPERATOR(pg_catalog.=) x.p"
	" AND o.high_watermark IS DISTINCT FROM x.h",
	.nargs = 3,.argtypes = {INT4OID, INT4ARRAYOID, INT8ARRAYOID},.expected = SPI_OK_UPDATE
};

static EkStatement store_state = {
	.sql = "UPDATE eventkit.kafka_source_config"
	" SET last_error = $2, last_error_at = $3, failing_since = $4"
	" WHERE source_id OPERATOR(pg_catalog.=) $1",
	.nargs = 4,.argtypes = {INT4OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID},
	.expected = SPI_OK_UPDATE
};

static EkStatement source_by_name = {
	.sql = "SELECT 1 FROM eventkit.kafka_source_config WHERE name OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_SELECT
};

static EkStatement insert_source = {
	.sql = "INSERT INTO eventkit.kafka_source_config"
	" (name, stream_id, brokers, topic, options, owner)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	.nargs = 6,.argtypes = {TEXTOID, INT4OID, TEXTOID, TEXTOID, JSONBOID, NAMEOID},
	.expected = SPI_OK_INSERT
};

static EkStatement lock_source = {
	.sql = "SELECT source_id, owner::pg_catalog.text FROM eventkit.kafka_source_config"
	" WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_SELECT
};

static EkStatement delete_source[] = {
	{.sql = "DELETE FROM eventkit.kafka_offsets WHERE source_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.kafka_source_config WHERE source_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
};

/* Has this database a catalog with Kafka sources (1.3)? */
bool
ek_kafka_catalog_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_3;
}

/* The ids of all sources. */
List *
ek_kafka_source_ids(void)
{
	ek_stmt_run(&source_ids, NULL, NULL);
	return ek_spi_int_list();
}

static char *
text_value(int col)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return s != NULL ? s : pstrdup("");
}

/*
 * A source's row, allocated in the current memory context (not SPI's);
 * NULL if there is none.  With lock, the row is locked against
 * drop_kafka_source (FOR KEY SHARE) until the transaction ends.
 */
KafkaSource *
ek_kafka_read_source(int32 source_id, bool lock)
{
	Datum		args[1] = {Int32GetDatum(source_id)};
	KafkaSource *src;
	bool		isnull;
	Datum		d;

	if (ek_stmt_run(&read_source[lock ? 1 : 0], args, NULL) == 0)
		return NULL;
	src = palloc0(sizeof(KafkaSource));
	src->source_id = source_id;
	src->name = text_value(1);
	src->stream_id = DatumGetInt32(ek_spi_value(0, 2, &isnull));
	d = ek_spi_value(0, 3, &isnull);
	src->relid = isnull ? InvalidOid : DatumGetObjectId(d);
	src->brokers = text_value(4);
	src->topic = text_value(5);
	src->options = DatumGetJsonbPCopy(ek_spi_value(0, 6, &isnull));
	src->owner = text_value(7);
	return src;
}

/*
 * A source's stored offsets, by partition, in *out (the current memory
 * context); returns how many.  With lock, FOR UPDATE.
 */
int
ek_kafka_read_offsets(int32 source_id, bool lock, KafkaOffset **out)
{
	Datum		args[1] = {Int32GetDatum(source_id)};
	int			n = (int) ek_stmt_run(&read_offsets[lock ? 1 : 0], args, NULL);

	*out = palloc(sizeof(KafkaOffset) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*out)[i].partition = DatumGetInt32(ek_spi_value(i, 1, &isnull));
		(*out)[i].next_offset = DatumGetInt64(ek_spi_value(i, 2, &isnull));
	}
	return n;
}

/* Rows for partitions seen for the first time, at their start offsets. */
void
ek_kafka_add_partitions(int32 source_id, int n, const KafkaOffset *start)
{
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *offsets = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[3];

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		parts[i] = Int32GetDatum(start[i].partition);
		offsets[i] = Int64GetDatum(start[i].next_offset);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = ek_make_array(parts, NULL, n, INT4OID);
	args[2] = ek_make_array(offsets, NULL, n, INT8OID);
	ek_stmt_run(&add_partitions, args, NULL);
}

/*
 * Store what a batch consumed: the partitions' next offsets and counts.
 * Runs in the transaction that stored the batch's events.
 */
void
ek_kafka_store_progress(int32 source_id, int n, const KafkaProgress *p)
{
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *next = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *hw = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *hw_nulls = palloc0(sizeof(bool) * Max(n, 1));
	Datum	   *msgs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *events = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[6];

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		parts[i] = Int32GetDatum(p[i].partition);
		next[i] = Int64GetDatum(p[i].next_offset);
		hw[i] = Int64GetDatum(Max(p[i].high_watermark, p[i].next_offset));
		hw_nulls[i] = p[i].high_watermark < 0;
		msgs[i] = Int64GetDatum(p[i].messages);
		events[i] = Int64GetDatum(p[i].events);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = ek_make_array(parts, NULL, n, INT4OID);
	args[2] = ek_make_array(next, NULL, n, INT8OID);
	args[3] = ek_make_array(hw, hw_nulls, n, INT8OID);
	args[4] = ek_make_array(msgs, NULL, n, INT8OID);
	args[5] = ek_make_array(events, NULL, n, INT8OID);
	ek_stmt_run(&store_progress, args, NULL);
}

/* High watermarks seen while idle (for the lag eventkit.kafka_sources shows). */
void
ek_kafka_store_watermarks(int32 source_id, int n, const KafkaProgress *p)
{
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *hw = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[3];

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		parts[i] = Int32GetDatum(p[i].partition);
		hw[i] = Int64GetDatum(p[i].high_watermark);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = ek_make_array(parts, NULL, n, INT4OID);
	args[2] = ek_make_array(hw, NULL, n, INT8OID);
	ek_stmt_run(&store_watermarks, args, NULL);
}

/*
 * The consumer's error state (0 timestamps: NULL).  False if the source
 * no longer exists.
 */
bool
ek_kafka_store_state(int32 source_id, const char *last_error,
					 TimestampTz last_error_at, TimestampTz failing_since)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	args[0] = Int32GetDatum(source_id);
	args[1] = EK_TEXT_OR_NULL(last_error);
	nulls[1] = last_error == NULL ? 'n' : ' ';
	args[2] = TimestampTzGetDatum(last_error_at);
	nulls[2] = last_error_at == 0 ? 'n' : ' ';
	args[3] = TimestampTzGetDatum(failing_since);
	nulls[3] = failing_since == 0 ? 'n' : ' ';
	return ek_stmt_run(&store_state, args, nulls) > 0;
}

/* Is there a source called name? */
bool
ek_kafka_source_exists(const char *name)
{
	Datum		args[1] = {CStringGetTextDatum(name)};

	return ek_stmt_run(&source_by_name, args, NULL) > 0;
}

/* Record a new source (its stream_id, name, brokers, topic, options, owner). */
void
ek_kafka_insert_source(const KafkaSource *src)
{
	Datum		args[6];

	args[0] = CStringGetTextDatum(src->name);
	args[1] = Int32GetDatum(src->stream_id);
	args[2] = CStringGetTextDatum(src->brokers);
	args[3] = CStringGetTextDatum(src->topic);
	args[4] = JsonbPGetDatum(src->options);
	args[5] = DirectFunctionCall1(namein, CStringGetDatum(src->owner));
	ek_stmt_run(&insert_source, args, NULL);
}

/*
 * The source called name, locked until the transaction ends: its id and
 * its owner's role name.  False if there is none.
 */
bool
ek_kafka_lock_source(const char *name, int32 *source_id, char **owner)
{
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull;

	if (ek_stmt_run(&lock_source, args, NULL) == 0)
		return false;
	*source_id = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	*owner = text_value(2);
	return true;
}

/* Remove a source and its stored offsets. */
void
ek_kafka_delete_source(int32 source_id)
{
	Datum		args[1] = {Int32GetDatum(source_id)};

	for (int i = 0; i < lengthof(delete_source); i++)
		ek_stmt_run(&delete_source[i], args, NULL);
}
