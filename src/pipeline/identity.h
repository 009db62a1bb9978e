/*-------------------------------------------------------------------------
 *
 * identity.h
 *	  The identity stage of ingest (identity.c): the identity graph kept
 *	  from the events a batch stored, and the check that rejects events
 *	  whose ids forget_user erased.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_IDENTITY_H
#define EK_PIPELINE_IDENTITY_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"

extern void ek_identity_check_suppressed(const StreamInfo *stream,
										 SegmentEvent *events, int n);
extern int	ek_identity_link_events(const StreamInfo *stream,
									SegmentEvent **events, int n);
extern void ek_identity_lock(int32 stream_id);

#endif							/* EK_PIPELINE_IDENTITY_H */
