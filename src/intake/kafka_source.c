/*-------------------------------------------------------------------------
 *
 * kafka_source.c
 *	  Kafka sources: eventkit.create_kafka_source() and
 *	  eventkit.drop_kafka_source(), and the librdkafka configuration of a
 *	  source: its options, checked at creation, with the properties
 *	  eventkit sets itself.  A source's catalog rows (its config and its
 *	  stored offsets, which the consumer, kafka_consumer.c, reads and
 *	  writes) are catalog/kafka.c's, written as the extension owner.
 *	  Nothing here starts librdkafka threads (only rd_kafka_conf_* is
 *	  called in a backend).
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

#include "catalog/streams.h"
#include "intake/kafka_source.h"
#include "util/spi.h"

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
	AclResult	aclresult;
	rd_kafka_conf_t *conf;

	memset(&src, 0, sizeof(src));
	src.name = text_arg(fcinfo, 0, "name");
	if (strlen(src.name) > MAX_SOURCE_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("Kafka source name is longer than %d bytes", MAX_SOURCE_NAME)));
	src.relid = ek_stream_arg(fcinfo, 1);
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
	if (!ek_streams_read(src.relid, &stream, true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an eventkit stream", get_rel_name(src.relid)),
				 errhint("Create it with eventkit.create_stream().")));
	if (ek_kafka_source_exists(src.name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("Kafka source \"%s\" already exists", src.name)));
	src.stream_id = stream.stream_id;
	ek_kafka_insert_source(&src);
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
	int32		source_id;
	char	   *owner;
	Oid			owner_oid;

	SPI_connect();
	if (!ek_kafka_lock_source(name, &source_id, &owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("Kafka source \"%s\" does not exist", name)));
	owner_oid = get_role_oid(owner, true);
	if (!superuser() && !(OidIsValid(owner_oid) && has_privs_of_role(GetUserId(), owner_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of Kafka source \"%s\"", name),
				 errdetail("The source belongs to role \"%s\".", owner)));
	ek_kafka_delete_source(source_id);
	SPI_finish();
	PG_RETURN_VOID();
}
