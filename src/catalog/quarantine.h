/*-------------------------------------------------------------------------
 *
 * quarantine.h
 *	  eventkit.quarantine and eventkit.conflicts (quarantine.c): the events
 *	  ingest set aside, their replay and discard, and the conflict log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_QUARANTINE_H
#define EK_CATALOG_QUARANTINE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* One event to quarantine. */
typedef struct QuarantineRow
{
	int32		item;			/* its position in the payload */
	const char *message_id;		/* NULL: none */
	Jsonb	   *reasons;
	Jsonb	   *payload;		/* NULL: it did not parse (raw) */
	const char *raw;
	int32		plan_version;	/* 0: not checked against a plan */
	int64		fingerprint;	/* what a retry is recognized by (1.3) */
	const char *origin;			/* JSON text: where an intake worker got it
								 * (1.3), or NULL */
} QuarantineRow;

/* A replayed event that stays in quarantine, with this attempt's outcome. */
typedef struct QuarantineRetry
{
	int64		quarantine_id;
	Jsonb	   *reasons;
	int32		plan_version;
} QuarantineRetry;

/* A quarantined event, read back to be replayed. */
typedef struct QuarantinedEvent
{
	int64		quarantine_id;
	int64		batch_id;
	TimestampTz received_at;
	Jsonb	   *payload;
	Jsonb	   *envelope;		/* NULL: none */
} QuarantinedEvent;

/* One conflict: a message id stored before with other content. */
typedef struct ConflictRow
{
	int32		item;
	const char *message_id;
	Jsonb	   *payload;
} ConflictRow;

extern void ek_quarantine_insert(int32 stream_id, int64 batch_id, TimestampTz received_at,
								 Jsonb *envelope, int32 plan_id,
								 const QuarantineRow *rows, int n);
extern void ek_quarantine_settle(int32 plan_id, const int64 *gone, int ngone,
								 const QuarantineRetry *kept, int nkept);
extern QuarantinedEvent *ek_quarantine_read(int32 stream_id, Datum ids, bool ids_null,
											int *n);
extern QuarantinedEvent *ek_quarantine_read_waiting(int32 stream_id, int limit, int *n);
extern int64 ek_quarantine_discard(int32 stream_id, Datum ids, bool ids_null,
								   Datum reasons, bool reasons_null,
								   Datum older_than, bool older_than_null);
extern void ek_conflicts_insert(int32 stream_id, int64 batch_id, TimestampTz received_at,
								const ConflictRow *rows, int n);
extern int64 ek_quarantine_forget_ids(int32 stream_id, Datum ids);
extern int64 ek_conflicts_forget_ids(int32 stream_id, Datum ids);

#endif							/* EK_CATALOG_QUARANTINE_H */
