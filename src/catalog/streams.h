/*-------------------------------------------------------------------------
 *
 * streams.h
 *	  A stream's row in eventkit.streams (streams.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_STREAMS_H
#define EK_CATALOG_STREAMS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* A stream's catalog row, as ingest and maintenance need it. */
typedef struct StreamInfo
{
	int32		stream_id;
	Oid			relid;
	Interval	partition_interval;
	int32		premake;
	bool		has_retention;
	Interval	retention;
	int32		key_partitions;
	Interval	dedup_window;
	int32		ledger_gen;
	int32		plan_id;		/* attached tracking plan, 0: none */
	int32		plan_version;	/* its version in force (pinned or latest);
								 * 0 with a plan_id: the plan has none */
	/* clock bounds (1.3): events outside are quarantined too_old/too_new */
	bool		has_max_past;
	Interval	max_past;
	bool		has_max_future;
	Interval	max_future;
	/* the stream's own size limits (1.3); 0: the setting's value */
	int32		max_event_bytes;
	int32		max_batch_bytes;
	int32		max_batch_items;
} StreamInfo;

extern bool ek_streams_read(Oid relid, StreamInfo *info, bool missing_ok);
extern void ek_streams_insert(StreamInfo *stream);
extern void ek_streams_update(const StreamInfo *stream);
extern void ek_streams_set_plan(int32 stream_id, int32 plan_id, int32 version);
extern void ek_streams_forget(int32 stream_id);
extern List *ek_streams_relids(void);
extern Oid	ek_streams_relid(int32 stream_id);
extern List *ek_streams_dropped(void);

#endif							/* EK_CATALOG_STREAMS_H */
