/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  The ingest orchestrator's C entry points (ingest.c): for eventkit's
 *	  intake workers (HTTP, Kafka), which ingest payloads that did not come
 *	  through a SQL call (the same pass as eventkit.ingest(), as the current
 *	  user), and for the jobs (replaying quarantined events).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_INGEST_INGEST_H
#define EK_INGEST_INGEST_H

#include "postgres.h"

#include "catalog/streams.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* What one call did, as eventkit.ingest_result. */
typedef struct IngestCounts
{
	int64		accepted;
	int64		duplicates;
	int64		conflicts;
	int64		quarantined;
	int64		rejected;
} IngestCounts;

/* One payload (one event, an array or a batch envelope) into one stream. */
extern void ek_ingest_jsonb_payload(Oid relid, Jsonb *payload,
									TimestampTz received_at, IngestCounts *out);

/*
 * One payload among several ingested in one call (ek_ingest_text_items):
 * JSON text as eventkit.ingest(stream, text) takes it (one event, an
 * array, a batch envelope or NDJSON), and where it came from.
 */
typedef struct IngestItem
{
	const char *data;			/* not NUL-terminated; any bytes */
	int			len;
	const char *origin;			/* JSON object text stored with the item's
								 * quarantined events (eventkit.quarantine
								 * .origin), or NULL */
	int32		nevents;		/* out: events (or unusable items) it held */
} IngestItem;

extern void ek_ingest_text_items(Oid relid, IngestItem *items, int nitems,
								 TimestampTz received_at, IngestCounts *out);

/* Replaying quarantined events (counts: BATCH_NOUTCOMES, catalog/batches.h) */
extern void ek_replay_quarantine(Oid relid, Datum ids, bool ids_null, int64 *counts);
extern int	ek_redrive_quarantine(Oid relid, int limit, int64 *counts, int *waiting);
/* quarantine.c: the redrive job's work on this node, as the stream's owner */
extern int	ek_redrive_waiting(const StreamInfo *stream, int64 *counts, int *waiting,
							   TimestampTz **starts, int *nstarts);

#endif							/* EK_INGEST_INGEST_H */
