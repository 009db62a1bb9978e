/*-------------------------------------------------------------------------
 *
 * dedup.h
 *	  The dedup stage (dedup.c): each event of a batch is new, a duplicate
 *	  or a conflict of one stored before; and the life of a stream's
 *	  ledger.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_DEDUP_H
#define EK_PIPELINE_DEDUP_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"

typedef enum DedupVerdict
{
	DEDUP_NEW,
	DEDUP_DUPLICATE,
	DEDUP_CONFLICT
} DedupVerdict;

extern bool ek_dedup_claim(const StreamInfo *stream, SegmentEvent **events, int nevents,
						   int64 batch_id, DedupVerdict *verdicts);
extern void ek_dedup_create_ledger(int32 stream_id);
extern void ek_dedup_drop_ledger(int32 stream_id);
extern char *ek_dedup_create_dist_ledger(int32 stream_id, Oid stream_relid);
extern int64 ek_dedup_forget_keys(int32 stream_id, Datum keys);
extern int64 ek_dedup_maintain(StreamInfo *stream);
extern int	ek_dedup_build_filters(const StreamInfo *stream);

#endif							/* EK_PIPELINE_DEDUP_H */
