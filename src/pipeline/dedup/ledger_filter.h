/*-------------------------------------------------------------------------
 *
 * ledger_filter.h
 *	  The filters of sealed ledger generations (ledger_filter.c), for the
 *	  files of the dedup stage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_DEDUP_LEDGER_FILTER_H
#define EK_DEDUP_LEDGER_FILTER_H

#include "postgres.h"

#include "catalog/streams.h"

typedef struct LedgerFilter LedgerFilter;

extern bool ek_ledger_filter_may_contain(const LedgerFilter *f, uint64 h);
extern int	ek_ledger_filter_select(const LedgerFilter *f, const uint64 *hashes,
									int n, int *out);
extern int	ek_build_ledger_filters(const StreamInfo *stream);
extern const LedgerFilter *ek_ledger_filter_get(int32 stream_id, int32 gen,
												Oid gen_relid, int64 stored_bytes);
extern void ek_ledger_filter_forget(int32 stream_id, int32 min_gen);

#endif							/* EK_DEDUP_LEDGER_FILTER_H */
