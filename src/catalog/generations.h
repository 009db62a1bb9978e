/*-------------------------------------------------------------------------
 *
 * generations.h
 *	  The dedup ledger's generations in the catalog (generations.c):
 *	  eventkit.ledger_generations and eventkit.streams.ledger_gen.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_GENERATIONS_H
#define EK_CATALOG_GENERATIONS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* A stream's generations as ingest sees them (the latest snapshot). */
typedef struct LedgerState
{
	int32		current;		/* the generation ids are claimed in */
	int			nsealed;
	int32	   *sealed;			/* the sealed ones, newest first */
	int64	   *filter_bytes;	/* the size of each one's filter; -1: none */
} LedgerState;

extern bool ek_generations_filters_installed(void);
extern void ek_generations_read_state(int32 stream_id, LedgerState *state);
extern void ek_generations_started(int32 stream_id, int32 gen);
extern bool ek_generations_due(int32 stream_id, int32 gen, const Interval *window,
									 bool *found);
extern int32 ek_generations_current(int32 stream_id);
extern void ek_generations_advance(int32 stream_id, int32 gen);
extern List *ek_generations_expired(int32 stream_id, const Interval *window);
extern void ek_generations_forget(int32 stream_id, int32 gen);
extern List *ek_generations_unfiltered(int32 stream_id);
extern bool ek_generations_store_filter(int32 stream_id, int32 gen, bytea *filter);
extern bytea *ek_generations_read_filter(int32 stream_id, int32 gen, MemoryContext cxt);

#endif							/* EK_CATALOG_GENERATIONS_H */
