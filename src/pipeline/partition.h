/*-------------------------------------------------------------------------
 *
 * partition.h
 *	  A stream's time partitions (partition.c): alignment, placement of a
 *	  batch's events, creation, premake, retention.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_PARTITION_H
#define EK_PIPELINE_PARTITION_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"
#include "utils/relcache.h"

/* Where events may go at a given time (ek_time_bounds). */
typedef struct EkTimeBounds
{
	TimestampTz too_old;		/* max_past: older events are too_old */
	TimestampTz too_new;		/* max_future: newer events are too_new */
	TimestampTz oldest;			/* retention: older events get no partition */
	TimestampTz horizon;		/* premake: partitions from here on are made later */
} EkTimeBounds;

extern void ek_check_partition_interval(const Interval *interval);
extern TimestampTz ek_bucket_start(const Interval *interval, TimestampTz ts);
extern TimestampTz ek_bucket_add(const Interval *interval, TimestampTz start, int n);
extern void ek_time_bounds(const StreamInfo *stream, TimestampTz now,
						   EkTimeBounds *bounds);
extern bool ek_partition_exists_for(Oid parent, TimestampTz ts);
extern bool ek_partition_exists_in(Relation rel, TimestampTz ts);
extern Oid	ek_partition_range_of(Relation rel, TimestampTz ts, TimestampTz *lo,
								  TimestampTz *hi);
extern int	ek_place_events(const StreamInfo *stream, SegmentEvent *events, int n,
							TimestampTz now);
extern void ek_placement_note_ingest_writes(void);
extern void ek_create_partition(const StreamInfo *stream, TimestampTz start);
extern int	ek_premake_partitions(const StreamInfo *stream, TimestampTz now);
extern TimestampTz *ek_waiting_event_times(const StreamInfo *stream, int *n);
extern int	ek_make_partitions_for(const StreamInfo *stream, TimestampTz now,
								   const TimestampTz *times, int n, int limit);
extern int	ek_make_waiting_partitions(const StreamInfo *stream, TimestampTz now);
extern int	ek_drop_expired_partitions(const StreamInfo *stream, TimestampTz now);

#endif							/* EK_PIPELINE_PARTITION_H */
