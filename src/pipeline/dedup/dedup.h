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
	DEDUP_CONFLICT,
	DEDUP_PENDING				/* held by a claim in flight: ek_dedup_settle */
} DedupVerdict;

/* a batch's ids held by claims in flight, to settle after its write */
typedef struct DedupPending DedupPending;

extern bool ek_dedup_claim(const StreamInfo *stream, SegmentEvent **events, int nevents,
						   int64 batch_id, DedupVerdict *verdicts, DedupPending **pending);
extern void ek_dedup_settle(DedupPending *pending, DedupVerdict *verdicts);
extern void ek_dedup_create_ledger(int32 stream_id);
extern void ek_dedup_drop_ledger(int32 stream_id);
extern char *ek_dedup_create_dist_ledger(int32 stream_id, Oid stream_relid);
extern void ek_dedup_check_dist_ledger(const StreamInfo *stream);
extern void ek_dedup_check_local_ledger(const StreamInfo *stream);
extern int64 ek_dedup_undistribute_ledger(const StreamInfo *stream);
extern void ek_dedup_follow_owner(const StreamInfo *stream);
extern int64 ek_dedup_forget_keys(int32 stream_id, Datum keys);
extern int64 ek_dedup_maintain(StreamInfo *stream);
extern int	ek_dedup_build_filters(const StreamInfo *stream);

#endif							/* EK_PIPELINE_DEDUP_H */
