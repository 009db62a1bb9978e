/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  The ingest orchestrator's C entry points (ingest.c), for the jobs
 *	  and the intake workers; SQL reaches it through eventkit.ingest() and
 *	  its siblings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_INGEST_INGEST_H
#define EK_INGEST_INGEST_H

#include "postgres.h"

extern void ek_replay_quarantine(Oid relid, Datum ids, bool ids_null, int64 *counts);
extern int	ek_redrive_quarantine(Oid relid, int limit, int64 *counts, int *waiting);

#endif							/* EK_INGEST_INGEST_H */
