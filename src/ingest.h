/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  The ingest entry point for callers other than SQL (the HTTP intake):
 *	  one payload into one stream, as the current user, the same pass as
 *	  eventkit.ingest() (ingest.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_INGEST_H
#define EK_INGEST_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* What one ingest call did, as eventkit.ingest_result. */
typedef struct IngestCounts
{
	int64		accepted;
	int64		duplicates;
	int64		conflicts;
	int64		quarantined;
	int64		rejected;
} IngestCounts;

extern void ek_ingest_jsonb_payload(Oid relid, Jsonb *payload,
									TimestampTz received_at, IngestCounts *out);

#endif							/* EK_INGEST_H */
