/*-------------------------------------------------------------------------
 *
 * batches.h
 *	  Ingest batches (batches.c): their ids (eventkit.batch_id_seq), their
 *	  log (eventkit.ingest_batches) and their violation counts
 *	  (eventkit.batch_violations).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_BATCHES_H
#define EK_CATALOG_BATCHES_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/array.h"

/* What one batch did with its items, by outcome (eventkit.ingest_result). */
typedef enum BatchOutcome
{
	BATCH_ACCEPTED,
	BATCH_DUPLICATE,
	BATCH_CONFLICT,
	BATCH_QUARANTINED,
	BATCH_REJECTED,
	BATCH_NOUTCOMES
} BatchOutcome;

/* One row of a batch's violation counts. */
typedef struct ViolationCount
{
	int32		plan_version;
	const char *event;			/* NULL: none */
	const char *keyword;
	char	   *path;
	const char *action;
	int64		n;
} ViolationCount;

extern int64 ek_batches_next_id(void);
extern void ek_batches_log(int64 batch_id, int32 stream_id, TimestampTz received_at,
						   Oid caller, int32 items, const int64 *counts);
extern void ek_batches_log_violations(int64 batch_id, int32 stream_id, int32 plan_id,
									  const ViolationCount *counts, int n);
extern int64 ek_batches_position(void);
extern int64 ek_batches_advance_past(int64 id);
extern int64 ek_batches_chunk_end(int32 stream_id, int64 from, int64 to, int64 max_events);
extern ArrayType *ek_batches_uncovered(int32 stream_id, int64 from, int64 to,
									   Datum covered);

#endif							/* EK_CATALOG_BATCHES_H */
