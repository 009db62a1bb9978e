/*-------------------------------------------------------------------------
 *
 * columns.h
 *	  The columns of a stream table, defined once (columns.c): what
 *	  create_stream creates, what the writer fills and what a rollup's
 *	  deltas read of a batch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_COLUMNS_H
#define EK_PIPELINE_COLUMNS_H

#include "postgres.h"

#include "pipeline/event.h"

/* The columns, in the table's order. */
typedef enum StreamColumn
{
	SC_MESSAGE_ID,
	SC_TYPE,
	SC_EVENT,
	SC_USER_ID,
	SC_ANONYMOUS_ID,
	SC_USER_KEY,
	SC_TS,
	SC_RECEIVED_AT,
	SC_SENT_AT,
	SC_ORIGINAL_TIMESTAMP,
	SC_PROPERTIES,
	SC_TRAITS,
	SC_CONTEXT,
	SC_EXTRA,
	SC_BATCH_ID,
	SC_PLAN_VERSION,
	SC_VIOLATIONS,
	SC_NCOLUMNS
} StreamColumn;

typedef struct StreamColumnDef
{
	const char *name;
	Oid			type;
	const char *sqltype;		/* schema-qualified */
	bool		not_null;
} StreamColumnDef;

extern const StreamColumnDef ek_stream_columns[SC_NCOLUMNS];

extern char *ek_stream_table_sql(const char *qname);
extern int	ek_stream_column(const char *name);
extern void ek_event_values(const SegmentEvent *ev, int64 batch_id,
							TimestampTz received_at, Datum *values, bool *nulls);
extern void ek_batch_values(SegmentEvent **events, int n, int64 batch_id,
							TimestampTz received_at, Datum **cols, bool **nulls);
extern void ek_batch_column(SegmentEvent **events, int n, int c, int64 batch_id,
							TimestampTz received_at, Datum *col, bool *nulls);

#endif							/* EK_PIPELINE_COLUMNS_H */
