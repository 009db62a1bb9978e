/*-------------------------------------------------------------------------
 *
 * identity_dist.h
 *	  The identity graph of a stream distributed on Citus (identity_dist.c):
 *	  a worker call's links sent to the coordinator's graph, in the call's
 *	  distributed transaction, through the stream's worker links table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_IDENTITY_DIST_H
#define EK_PIPELINE_IDENTITY_DIST_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"

extern Oid	ek_identity_worker_links_relid(int32 stream_id);
extern bool ek_identity_worker_links_supported(void);
extern void ek_identity_make_worker_links(int32 stream_id, Oid stream_relid);
extern void ek_identity_drop_worker_links(int32 stream_id);
extern void ek_identity_worker_links_follow_owner(int32 stream_id, Oid stream_relid);
extern void ek_identity_forward_links(const StreamInfo *stream, SegmentEvent **events,
									  int n, int64 batch_id);
extern int64 ek_identity_import_worker_graphs(const StreamInfo *stream);

#endif							/* EK_PIPELINE_IDENTITY_DIST_H */
