/*-------------------------------------------------------------------------
 *
 * distribute.h
 *	  Streams on Citus (distribute.c): eventkit.distribute_stream(), the
 *	  workers' waiting events re-driven from the coordinator, and the guard
 *	  that keeps Citus off eventkit's internal tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_STREAM_DISTRIBUTE_H
#define EK_STREAM_DISTRIBUTE_H

#include "postgres.h"

#include "catalog/streams.h"

/* What ek_redrive_on_workers() did */
typedef struct EkClusterRedrive
{
	int			nodes;			/* workers asked */
	int			failed;			/* of those, not reached or failing (a WARNING
								 * each) */
	int64		replayed;		/* events they replayed */
	int			created;		/* partitions made here for their events */
	int			missing;		/* partitions their events still wait for */
} EkClusterRedrive;

extern void ek_citus_guard_init(void);
extern void ek_citus_stream_owner_changed(Node *parsetree);
extern void ek_redrive_on_workers(const StreamInfo *stream, TimestampTz now,
								  bool make_partitions, EkClusterRedrive *out);

#endif							/* EK_STREAM_DISTRIBUTE_H */
