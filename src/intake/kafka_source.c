/*-------------------------------------------------------------------------
 *
 * kafka_source.c
 *	  Kafka sources: eventkit.create_kafka_source() and
 *	  eventkit.drop_kafka_source(), the catalog rows they write
 *	  (eventkit.kafka_source_config) and the stored offsets
 *	  (eventkit.kafka_offsets) that the consumer (kafka_consumer.c) reads
 *	  and writes through the functions here, and the librdkafka
 *	  configuration of a source: its options, checked at creation, with
 *	  the properties eventkit sets itself.
 *
 *	  The catalog tables are the extension owner's: the SQL functions write
 *	  them as that role, the consumer as the role it connects as.  Nothing
 *	  here starts librdkafka threads (only rd_kafka_conf_* is called in a
 *	  backend).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "eventkit.h"
#include "intake/kafka_source.h"

PG_FUNCTION_INFO_V1(eventkit_create_kafka_source);
PG_FUNCTION_INFO_V1(eventkit_drop_kafka_source);

#define MAX_SOURCE_NAME		200
#define MAX_TOPIC_NAME		249
#define DEFAULT_METADATA_REFRESH_MS	300000

/* Properties eventkit sets itself: exactly-once depends on them. */
static const char *const reserved_options[] = {
	"bootstrap.servers", "metadata.broker.list", "enable.auto.commit",
	"enable.auto.offset.store", "enable.partition.eof", "log.queue",
	"allow.auto.create.topics", NULL
};

/* Properties that name files or programs of the server: superusers only. */
static const char *const superuser_options[] = {
	"plugin.library.paths", "sasl.kerberos.kinit.cmd", "sasl.kerberos.keytab",
	NULL
};

/* ---------------------------------------------------------------------
 * librdkafka configuration
 * ---------------------------------------------------------------------
 */

static bool
in_list(const char *const *list, const char *key)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], key) == 0)
			return true;
	return false;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* An option's value as librdkafka takes it; NULL if it is not a scalar. */
static char *
option_value(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/*
 * The value of one option, or NULL if it is not set (or not a scalar).
 */
static char *
source_option(const KafkaSource *src, const char *key)
{
	JsonbValue *v;

	if (src->options == NULL || !JB_ROOT_IS_OBJECT(src->options))
		return NULL;
	v = getKeyJsonValueFromContainer(&src->options->root, key, strlen(key), NULL);
	return v != NULL ? option_value(v) : NULL;
}

/*
 * Set one property; on failure, destroy conf and raise the error.
 */
static void
conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, bool from_user)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return;
	rd_kafka_conf_destroy(conf);
	if (from_user)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka option \"%s\"", key),
				 errdetail("librdkafka: %s", errstr),
				 errhint("Options are librdkafka configuration properties (see its CONFIGURATION.md).")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid Kafka configuration: %s", errstr)));
}

/*
 * The librdkafka configuration of a source's consumer: eventkit's
 * defaults (which options may override), the source's options, and the
 * properties exactly-once depends on (which they may not).  With
 * check_privileges (at creation), options that name server files or
 * programs need a superuser.  The caller destroys it, or gives it to
 * rd_kafka_new().
 */
rd_kafka_conf_t *
ek_kafka_conf(const KafkaSource *src, const char *group_id, bool check_privileges)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	conf_set(conf, "client.id", "eventkit", false);
	conf_set(conf, "group.id", group_id, false);
	conf_set(conf, "auto.offset.reset", "earliest", false);

	it = JsonbIteratorInit(&src->options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		char	   *value;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		if (in_list(reserved_options, key))
		{
			rd_kafka_conf_destroy(conf);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("Kafka option \"%s\" is set by eventkit", key),
					 errdetail("The brokers are an argument of create_kafka_source; offsets are stored by eventkit, never committed to Kafka."),
					 errhint("Leave the option out.")));
		}
		if (check_privileges && !superuser() &&
			(in_list(superuser_options, key) || ends_with(key, ".location")))
		{
			rd_kafka_conf_destroy(conf);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers can set the Kafka option \"%s\"", key),
					 errdetail("It names a file or a program on the database server.")));
		}
		value = option_value(&v);
		if (value == NULL)
		{
			rd_kafka_conf_destroy(conf);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of Kafka option \"%s\" must be a string, a number or a boolean",
							key)));
		}
		conf_set(conf, key, value, true);
	}

	conf_set(conf, "bootstrap.servers", src->brokers, false);
	conf_set(conf, "enable.auto.commit", "false", false);
	conf_set(conf, "enable.auto.offset.store", "false", false);
	conf_set(conf, "enable.partition.eof", "false", false);
	conf_set(conf, "allow.auto.create.topics", "false", false);
	conf_set(conf, "log.queue", "true", false);
	return conf;
}

/*
 * Does a new source start at the end of its partitions (auto.offset.reset
 * latest)?  By default it starts at their beginning.
 */
bool
ek_kafka_starts_at_latest(const KafkaSource *src)
{
	char	   *reset = source_option(src, "auto.offset.reset");

	return reset != NULL && (strcmp(reset, "latest") == 0 ||
							 strcmp(reset, "largest") == 0 ||
							 strcmp(reset, "end") == 0);
}

/*
 * How often the consumer looks for new partitions: librdkafka's
 * topic.metadata.refresh.interval.ms when set to a positive value.
 */
int
ek_kafka_metadata_refresh_ms(const KafkaSource *src)
{
	char	   *s = source_option(src, "topic.metadata.refresh.interval.ms");
	int			ms = s != NULL ? atoi(s) : 0;

	return ms > 0 ? ms : DEFAULT_METADATA_REFRESH_MS;
}

/* ---------------------------------------------------------------------
 * Catalog access
 * ---------------------------------------------------------------------
 */

/* Has this database a 1.3 catalog with Kafka sources?  (syscache only) */
bool
ek_kafka_catalog_installed(void)
{
	Oid			nsp = get_namespace_oid("eventkit", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("kafka_offsets", nsp));
}

static void
check_spi(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "eventkit: %s failed: %s", what, SPI_result_code_string(rc));
}

List *
ek_kafka_source_ids(void)
{
	check_spi(SPI_execute("SELECT source_id FROM eventkit.kafka_source_config ORDER BY source_id",
						  true, 0), SPI_OK_SELECT, "reading Kafka sources");
	return ek_spi_int_list();
}

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *s = SPI_getvalue(tup, desc, col);

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
	static SPIPlanPtr plans[2] = {NULL, NULL};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		args[1] = {Int32GetDatum(source_id)};
	KafkaSource *src;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	if (plans[lock] == NULL)
	{
		Oid			types[1] = {INT4OID};

		plans[lock] = ek_keep_plan(psprintf("SELECT c.name, c.stream_id, s.relid::pg_catalog.oid,"
											" c.brokers, c.topic, c.options, c.owner"
											" FROM eventkit.kafka_source_config c"
											" LEFT JOIN eventkit.streams s"
											" ON s.stream_id OPERATOR(pg_catalog.=) c.stream_id"
											" WHERE c.source_id OPERATOR(pg_catalog.=) $1%s",
											lock ? " FOR KEY SHARE OF c" : ""),
								   1, types);
	}
	check_spi(SPI_execute_plan(plans[lock], args, NULL, false, 1), SPI_OK_SELECT,
			  "reading a Kafka source");
	if (SPI_processed == 0)
		return NULL;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	MemoryContextSwitchTo(cxt);
	src = palloc0(sizeof(KafkaSource));
	src->source_id = source_id;
	src->name = spi_text(tup, desc, 1);
	src->stream_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	src->relid = isnull ? InvalidOid : DatumGetObjectId(d);
	src->brokers = spi_text(tup, desc, 4);
	src->topic = spi_text(tup, desc, 5);
	src->options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 6, &isnull));
	src->owner = spi_text(tup, desc, 7);
	return src;
}

/*
 * A source's stored offsets, by partition, in *out (the current memory
 * context); returns how many.  With lock, FOR UPDATE.
 */
int
ek_kafka_read_offsets(int32 source_id, bool lock, KafkaOffset **out)
{
	static SPIPlanPtr plans[2] = {NULL, NULL};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		args[1] = {Int32GetDatum(source_id)};
	int			n;

	if (plans[lock] == NULL)
	{
		Oid			types[1] = {INT4OID};

		plans[lock] = ek_keep_plan(psprintf("SELECT partition, next_offset FROM eventkit.kafka_offsets"
											" WHERE source_id OPERATOR(pg_catalog.=) $1"
											" ORDER BY partition%s",
											lock ? " FOR UPDATE" : ""),
								   1, types);
	}
	check_spi(SPI_execute_plan(plans[lock], args, NULL, false, 0), SPI_OK_SELECT,
			  "reading Kafka offsets");
	n = SPI_processed;
	*out = MemoryContextAlloc(cxt, sizeof(KafkaOffset) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*out)[i].partition = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));
		(*out)[i].next_offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2, &isnull));
	}
	return n;
}

/* Rows for partitions seen for the first time, at their start offsets. */
void
ek_kafka_add_partitions(int32 source_id, int n, const KafkaOffset *start)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *offsets = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[3];

	if (n == 0)
		return;
	if (plan == NULL)
	{
		Oid			types[3] = {INT4OID, INT4ARRAYOID, INT8ARRAYOID};

		plan = ek_keep_plan("INSERT INTO eventkit.kafka_offsets (source_id, partition, next_offset)"
							" SELECT $1, x.p, x.o"
							" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(p, o)"
							" ON CONFLICT (source_id, partition) DO NOTHING",
							3, types);
	}
	for (int i = 0; i < n; i++)
	{
		parts[i] = Int32GetDatum(start[i].partition);
		offsets[i] = Int64GetDatum(start[i].next_offset);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = ek_make_array(parts, NULL, n, INT4OID);
	args[2] = ek_make_array(offsets, NULL, n, INT8OID);
	check_spi(SPI_execute_plan(plan, args, NULL, false, 0), SPI_OK_INSERT,
			  "adding Kafka partitions");
}

/*
 * Store what a batch consumed: the partitions' next offsets and counts.
 * Runs in the transaction that stored the batch's events.
 */
void
ek_kafka_store_progress(int32 source_id, int n, const KafkaProgress *p)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *next = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *hw = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *hw_nulls = palloc0(sizeof(bool) * Max(n, 1));
	Datum	   *msgs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *events = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[6];

	if (n == 0)
		return;
	if (plan == NULL)
	{
		Oid			types[6] = {INT4OID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID};

		plan = ek_keep_plan("INSERT INTO eventkit.kafka_offsets AS o (source_id, partition,"
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
							6, types);
	}
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
	check_spi(SPI_execute_plan(plan, args, NULL, false, 0), SPI_OK_INSERT,
			  "storing Kafka offsets");
}

/* High watermarks seen while idle (for the lag eventkit.kafka_sources shows). */
void
ek_kafka_store_watermarks(int32 source_id, int n, const KafkaProgress *p)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *hw = palloc(sizeof(Datum) * Max(n, 1));
	Datum		args[3];

	if (n == 0)
		return;
	if (plan == NULL)
	{
		Oid			types[3] = {INT4OID, INT4ARRAYOID, INT8ARRAYOID};

		plan = ek_keep_plan("UPDATE eventkit.kafka_offsets o SET high_watermark = x.h"
							" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(p, h)"
							" WHERE o.source_id OPERATOR(pg_catalog.=) $1"
							" AND o.partition OPERATOR(pg_catalog.=) x.p"
							" AND o.high_watermark IS DISTINCT FROM x.h",
							3, types);
	}
	for (int i = 0; i < n; i++)
	{
		parts[i] = Int32GetDatum(p[i].partition);
		hw[i] = Int64GetDatum(p[i].high_watermark);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = ek_make_array(parts, NULL, n, INT4OID);
	args[2] = ek_make_array(hw, NULL, n, INT8OID);
	check_spi(SPI_execute_plan(plan, args, NULL, false, 0), SPI_OK_UPDATE,
			  "storing Kafka watermarks");
}

/*
 * The consumer's error state (0 timestamps: NULL).  False if the source
 * no longer exists.
 */
bool
ek_kafka_store_state(int32 source_id, const char *last_error,
					 TimestampTz last_error_at, TimestampTz failing_since)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};

		plan = ek_keep_plan("UPDATE eventkit.kafka_source_config"
							" SET last_error = $2, last_error_at = $3, failing_since = $4"
							" WHERE source_id OPERATOR(pg_catalog.=) $1",
							4, types);
	}
	args[0] = Int32GetDatum(source_id);
	args[1] = EK_TEXT_OR_NULL(last_error);
	nulls[1] = last_error == NULL ? 'n' : ' ';
	args[2] = TimestampTzGetDatum(last_error_at);
	nulls[2] = last_error_at == 0 ? 'n' : ' ';
	args[3] = TimestampTzGetDatum(failing_since);
	nulls[3] = failing_since == 0 ? 'n' : ' ';
	check_spi(SPI_execute_plan(plan, args, nulls, false, 0), SPI_OK_UPDATE,
			  "storing a Kafka source's state");
	return SPI_processed > 0;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

static char *
text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	char	   *s;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

static void
check_topic_name(const char *topic)
{
	size_t		len = strlen(topic);

	for (const char *p = topic; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
		{
			len = 0;
			break;
		}
	if (len == 0 || len > MAX_TOPIC_NAME || strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka topic name \"%s\"", topic),
				 errdetail("A topic name has 1 to %d characters among ASCII letters, digits, '.', '_' and '-'.",
						   MAX_TOPIC_NAME)));
}

/*
 * eventkit.create_kafka_source(name text, stream regclass, brokers text,
 *								topic text, options jsonb DEFAULT '{}')
 *
 * Records the source; the scheduler of this database starts its consumer
 * (eventkit kafka), which ingests as the calling role: that role needs
 * INSERT on the stream.  EXECUTE is not granted to PUBLIC.
 */
Datum
eventkit_create_kafka_source(PG_FUNCTION_ARGS)
{
	KafkaSource src;
	StreamInfo	stream;
	Oid			save_userid;
	int			save_sec;
	AclResult	aclresult;
	rd_kafka_conf_t *conf;
	Oid			types[6] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, JSONBOID, NAMEOID};
	Datum		args[6];
	int			rc;

	memset(&src, 0, sizeof(src));
	src.name = text_arg(fcinfo, 0, "name");
	if (strlen(src.name) > MAX_SOURCE_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("Kafka source name is longer than %d bytes", MAX_SOURCE_NAME)));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	src.relid = PG_GETARG_OID(1);
	src.brokers = text_arg(fcinfo, 2, "brokers");
	src.topic = text_arg(fcinfo, 3, "topic");
	check_topic_name(src.topic);
	src.options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	if (src.options == NULL)
		src.options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	if (!JB_ROOT_IS_OBJECT(src.options) || JB_ROOT_IS_SCALAR(src.options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("Pass librdkafka properties, such as '{\"security.protocol\": \"ssl\"}'.")));
	src.owner = GetUserNameFromId(GetUserId(), false);

	/* the consumer will insert as this role */
	LockRelationOid(src.relid, AccessShareLock);
	if (get_rel_name(src.relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", src.relid)));
	aclresult = pg_class_aclcheck(src.relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(src.relid));

	/* every option is known to librdkafka and allowed */
	conf = ek_kafka_conf(&src, "eventkit", true);
	rd_kafka_conf_destroy(conf);

	SPI_connect();
	if (!ek_lookup_stream(src.relid, &stream, true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an eventkit stream", get_rel_name(src.relid)),
				 errhint("Create it with eventkit.create_stream().")));

	ek_switch_to_owner(&save_userid, &save_sec);
	args[0] = CStringGetTextDatum(src.name);
	rc = SPI_execute_with_args("SELECT 1 FROM eventkit.kafka_source_config"
							   " WHERE name OPERATOR(pg_catalog.=) $1",
							   1, types, args, NULL, false, 1);
	check_spi(rc, SPI_OK_SELECT, "reading Kafka sources");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("Kafka source \"%s\" already exists", src.name)));
	args[1] = Int32GetDatum(stream.stream_id);
	args[2] = CStringGetTextDatum(src.brokers);
	args[3] = CStringGetTextDatum(src.topic);
	args[4] = JsonbPGetDatum(src.options);
	args[5] = DirectFunctionCall1(namein, CStringGetDatum(src.owner));
	rc = SPI_execute_with_args("INSERT INTO eventkit.kafka_source_config"
							   " (name, stream_id, brokers, topic, options, owner)"
							   " VALUES ($1, $2, $3, $4, $5, $6)",
							   6, types, args, NULL, false, 0);
	check_spi(rc, SPI_OK_INSERT, "creating a Kafka source");
	ek_restore_user(save_userid, save_sec);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventkit.drop_kafka_source(name text): the source and its stored
 * offsets.  Its owner (a member of the role) or a superuser.  The
 * consumer finds the source gone and exits; a batch it is storing
 * commits first (drop waits for it).
 */
Datum
eventkit_drop_kafka_source(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			save_userid;
	int			save_sec;
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	Oid			itypes[1] = {INT4OID};
	Datum		iargs[1];
	char	   *owner;
	Oid			owner_oid;
	bool		isnull;
	int			rc;

	SPI_connect();
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("SELECT source_id, owner::pg_catalog.text FROM eventkit.kafka_source_config"
							   " WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							   1, types, args, NULL, false, 1);
	check_spi(rc, SPI_OK_SELECT, "reading Kafka sources");
	ek_restore_user(save_userid, save_sec);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("Kafka source \"%s\" does not exist", name)));
	iargs[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	owner = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	owner_oid = get_role_oid(owner, true);
	if (!superuser() && !(OidIsValid(owner_oid) && has_privs_of_role(GetUserId(), owner_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of Kafka source \"%s\"", name),
				 errdetail("The source belongs to role \"%s\".", owner)));

	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("DELETE FROM eventkit.kafka_offsets"
							   " WHERE source_id OPERATOR(pg_catalog.=) $1",
							   1, itypes, iargs, NULL, false, 0);
	check_spi(rc, SPI_OK_DELETE, "dropping a Kafka source");
	rc = SPI_execute_with_args("DELETE FROM eventkit.kafka_source_config"
							   " WHERE source_id OPERATOR(pg_catalog.=) $1",
							   1, itypes, iargs, NULL, false, 0);
	check_spi(rc, SPI_OK_DELETE, "dropping a Kafka source");
	ek_restore_user(save_userid, save_sec);
	SPI_finish();
	PG_RETURN_VOID();
}
