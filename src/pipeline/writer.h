/*-------------------------------------------------------------------------
 *
 * writer.h
 *	  Writing a batch's accepted events into the stream table (writer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_WRITER_H
#define EK_PIPELINE_WRITER_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"

extern bool ek_write_events(const StreamInfo *stream, SegmentEvent **events, int n,
							int64 batch_id, TimestampTz received_at,
							const char **local_key);
extern bool ek_write_shard_rows(Oid shard_rel, int nparts, Datum **cols, bool **nulls,
								const int *rows, int n);

#endif							/* EK_PIPELINE_WRITER_H */
