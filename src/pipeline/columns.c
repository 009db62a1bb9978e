/*-------------------------------------------------------------------------
 *
 * columns.c
 *	  The columns of a stream table: their names, types and NOT NULL
 *	  constraints (the CREATE TABLE of create_stream), and the values of
 *	  an event for each, as the writer stores them and as a rollup's
 *	  deltas read them back.  A stream's owner may add columns of its own;
 *	  ingest leaves them to their defaults (or NULL).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pipeline/columns.h"
#include "util/spi.h"

const StreamColumnDef ek_stream_columns[SC_NCOLUMNS] = {
	[SC_MESSAGE_ID] = {"message_id", TEXTOID, "pg_catalog.text", true},
	[SC_TYPE] = {"type", TEXTOID, "pg_catalog.text", true},
	[SC_EVENT] = {"event", TEXTOID, "pg_catalog.text", false},
	[SC_USER_ID] = {"user_id", TEXTOID, "pg_catalog.text", false},
	[SC_ANONYMOUS_ID] = {"anonymous_id", TEXTOID, "pg_catalog.text", false},
	[SC_USER_KEY] = {"user_key", TEXTOID, "pg_catalog.text", true},
	[SC_TS] = {"ts", TIMESTAMPTZOID, "pg_catalog.timestamptz", true},
	[SC_RECEIVED_AT] = {"received_at", TIMESTAMPTZOID, "pg_catalog.timestamptz", true},
	[SC_SENT_AT] = {"sent_at", TIMESTAMPTZOID, "pg_catalog.timestamptz", false},
	[SC_ORIGINAL_TIMESTAMP] = {"original_timestamp", TIMESTAMPTZOID, "pg_catalog.timestamptz", false},
	[SC_PROPERTIES] = {"properties", JSONBOID, "pg_catalog.jsonb", false},
	[SC_TRAITS] = {"traits", JSONBOID, "pg_catalog.jsonb", false},
	[SC_CONTEXT] = {"context", JSONBOID, "pg_catalog.jsonb", false},
	[SC_EXTRA] = {"extra", JSONBOID, "pg_catalog.jsonb", false},
	[SC_BATCH_ID] = {"batch_id", INT8OID, "pg_catalog.int8", true},
	[SC_PLAN_VERSION] = {"plan_version", INT4OID, "pg_catalog.int4", false},
	[SC_VIOLATIONS] = {"violations", JSONBOID, "pg_catalog.jsonb", false},
};

/* CREATE TABLE of a stream table qname (quoted), partitioned on ts. */
char *
ek_stream_table_sql(const char *qname)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", qname);
	for (int c = 0; c < SC_NCOLUMNS; c++)
		appendStringInfo(&sql, "%s %s %s%s", c > 0 ? "," : "",
						 ek_stream_columns[c].name, ek_stream_columns[c].sqltype,
						 ek_stream_columns[c].not_null ? " NOT NULL" : "");
	appendStringInfoString(&sql, ") PARTITION BY RANGE (ts)");
	return sql.data;
}

/* The column called name, or -1. */
int
ek_stream_column(const char *name)
{
	for (int c = 0; c < SC_NCOLUMNS; c++)
		if (strcmp(ek_stream_columns[c].name, name) == 0)
			return c;
	return -1;
}

/* The values of one event, in column order. */
void
ek_event_values(const SegmentEvent *ev, int64 batch_id, TimestampTz received_at,
				Datum *values, bool *nulls)
{
	const char *user_key = ev->user_id ? ev->user_id : ev->anonymous_id;

	values[SC_MESSAGE_ID] = EK_TEXT_OR_NULL(ev->message_id);
	values[SC_TYPE] = EK_TEXT_OR_NULL(ev->type);
	values[SC_EVENT] = EK_TEXT_OR_NULL(ev->event);
	values[SC_USER_ID] = EK_TEXT_OR_NULL(ev->user_id);
	values[SC_ANONYMOUS_ID] = EK_TEXT_OR_NULL(ev->anonymous_id);
	values[SC_USER_KEY] = EK_TEXT_OR_NULL(user_key);
	values[SC_TS] = TimestampTzGetDatum(ev->ts);
	values[SC_RECEIVED_AT] = TimestampTzGetDatum(received_at);
	values[SC_SENT_AT] = TimestampTzGetDatum(ev->sent_at);
	values[SC_ORIGINAL_TIMESTAMP] = TimestampTzGetDatum(ev->original_timestamp);
	values[SC_PROPERTIES] = EK_JSONB_OR_NULL(ev->properties);
	values[SC_TRAITS] = EK_JSONB_OR_NULL(ev->traits);
	values[SC_CONTEXT] = EK_JSONB_OR_NULL(ev->context);
	values[SC_EXTRA] = EK_JSONB_OR_NULL(ev->extra);
	values[SC_BATCH_ID] = Int64GetDatum(batch_id);
	values[SC_PLAN_VERSION] = Int32GetDatum(ev->plan_version);
	values[SC_VIOLATIONS] = EK_JSONB_OR_NULL(ev->violations);

	nulls[SC_MESSAGE_ID] = ev->message_id == NULL;
	nulls[SC_TYPE] = ev->type == NULL;
	nulls[SC_EVENT] = ev->event == NULL;
	nulls[SC_USER_ID] = ev->user_id == NULL;
	nulls[SC_ANONYMOUS_ID] = ev->anonymous_id == NULL;
	nulls[SC_USER_KEY] = user_key == NULL;
	nulls[SC_TS] = false;
	nulls[SC_RECEIVED_AT] = false;
	nulls[SC_SENT_AT] = !ev->has_sent_at;
	nulls[SC_ORIGINAL_TIMESTAMP] = !ev->has_original_timestamp;
	nulls[SC_PROPERTIES] = ev->properties == NULL;
	nulls[SC_TRAITS] = ev->traits == NULL;
	nulls[SC_CONTEXT] = ev->context == NULL;
	nulls[SC_EXTRA] = ev->extra == NULL;
	nulls[SC_BATCH_ID] = false;
	nulls[SC_PLAN_VERSION] = ev->plan_version == 0;
	nulls[SC_VIOLATIONS] = ev->violations == NULL;
}

/* The values of n events, column by column (cols[c][i]: event i's). */
void
ek_batch_values(SegmentEvent **events, int n, int64 batch_id, TimestampTz received_at,
				Datum **cols, bool **nulls)
{
	for (int c = 0; c < SC_NCOLUMNS; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		Datum		values[SC_NCOLUMNS];
		bool		isnull[SC_NCOLUMNS];

		ek_event_values(events[i], batch_id, received_at, values, isnull);
		for (int c = 0; c < SC_NCOLUMNS; c++)
		{
			cols[c][i] = values[c];
			nulls[c][i] = isnull[c];
		}
	}
}
