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

/* Column c of one event (the one mapping of an event to its row). */
static pg_attribute_always_inline Datum
event_value(const SegmentEvent *ev, int c, int64 batch_id, TimestampTz received_at,
			bool *isnull)
{
	const char *user_key;

	switch (c)
	{
		case SC_MESSAGE_ID:
			*isnull = ev->message_id == NULL;
			return EK_TEXT_OR_NULL(ev->message_id);
		case SC_TYPE:
			*isnull = ev->type == NULL;
			return EK_TEXT_OR_NULL(ev->type);
		case SC_EVENT:
			*isnull = ev->event == NULL;
			return EK_TEXT_OR_NULL(ev->event);
		case SC_USER_ID:
			*isnull = ev->user_id == NULL;
			return EK_TEXT_OR_NULL(ev->user_id);
		case SC_ANONYMOUS_ID:
			*isnull = ev->anonymous_id == NULL;
			return EK_TEXT_OR_NULL(ev->anonymous_id);
		case SC_USER_KEY:
			user_key = ek_event_user_key(ev);
			*isnull = user_key == NULL;
			return EK_TEXT_OR_NULL(user_key);
		case SC_TS:
			*isnull = false;
			return TimestampTzGetDatum(ev->ts);
		case SC_RECEIVED_AT:
			*isnull = false;
			return TimestampTzGetDatum(received_at);
		case SC_SENT_AT:
			*isnull = !ev->has_sent_at;
			return TimestampTzGetDatum(ev->sent_at);
		case SC_ORIGINAL_TIMESTAMP:
			*isnull = !ev->has_original_timestamp;
			return TimestampTzGetDatum(ev->original_timestamp);
		case SC_PROPERTIES:
			*isnull = ev->properties == NULL;
			return EK_JSONB_OR_NULL(ev->properties);
		case SC_TRAITS:
			*isnull = ev->traits == NULL;
			return EK_JSONB_OR_NULL(ev->traits);
		case SC_CONTEXT:
			*isnull = ev->context == NULL;
			return EK_JSONB_OR_NULL(ev->context);
		case SC_EXTRA:
			*isnull = ev->extra == NULL;
			return EK_JSONB_OR_NULL(ev->extra);
		case SC_BATCH_ID:
			*isnull = false;
			return Int64GetDatum(batch_id);
		case SC_PLAN_VERSION:
			*isnull = ev->plan_version == 0;
			return Int32GetDatum(ev->plan_version);
		case SC_VIOLATIONS:
			*isnull = ev->violations == NULL;
			return EK_JSONB_OR_NULL(ev->violations);
	}
	elog(ERROR, "eventkit: no stream column %d", c);
	return (Datum) 0;
}

/* The values of one event, in column order. */
void
ek_event_values(const SegmentEvent *ev, int64 batch_id, TimestampTz received_at,
				Datum *values, bool *nulls)
{
	/* (unrolled: c is a constant in each copy, the switch folds away) */
#if defined(__GNUC__)
#pragma GCC unroll 32
#endif
	for (int c = 0; c < SC_NCOLUMNS; c++)
		if (c != SC_USER_KEY)
			values[c] = event_value(ev, c, batch_id, received_at, &nulls[c]);
	/* user_key: the text of user_id or anonymous_id, made once */
	if (ev->user_id != NULL)
	{
		values[SC_USER_KEY] = values[SC_USER_ID];
		nulls[SC_USER_KEY] = nulls[SC_USER_ID];
	}
	else
	{
		values[SC_USER_KEY] = values[SC_ANONYMOUS_ID];
		nulls[SC_USER_KEY] = nulls[SC_ANONYMOUS_ID];
	}
}

/* Column c of n events (col[i], nulls[i]: event i's). */
void
ek_batch_column(SegmentEvent **events, int n, int c, int64 batch_id,
				TimestampTz received_at, Datum *col, bool *nulls)
{
	for (int i = 0; i < n; i++)
		col[i] = event_value(events[i], c, batch_id, received_at, &nulls[i]);
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
		ek_batch_column(events, n, c, batch_id, received_at, cols[c], nulls[c]);
	}
}
