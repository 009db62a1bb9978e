/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The dedup ledger's tables (ledger.c), for the files of the dedup
 *	  stage (dedup.c, ledger_filter.c); others use dedup.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_DEDUP_LEDGER_H
#define EK_DEDUP_LEDGER_H

#include "postgres.h"

#include "catalog/streams.h"
#include "datatype/timestamp.h"
#include "pipeline/event.h"
#include "utils/relcache.h"

extern Oid	ek_ledger_relid(int32 stream_id, bool missing_ok);
extern Oid	ek_ledger_generation_relid(int32 stream_id, int32 gen);
extern char *ek_ledger_generation_qname(int32 stream_id, int32 gen);
extern char *ek_ledger_qname(int32 stream_id);
extern double ek_ledger_estimate_rows(Oid relid);
extern void ek_ledger_check_layout(Relation rel);
extern void ek_ledger_create(int32 stream_id);
extern void ek_ledger_drop(int32 stream_id);
extern int64 ek_ledger_forget_keys(int32 stream_id, Datum keys);
extern bool ek_ledger_rotate(StreamInfo *stream);
extern int	ek_ledger_prune(const StreamInfo *stream);

/* the ledger of a stream distributed on Citus (dist_ledger.c) */
extern char *ek_dist_ledger_qname(int32 stream_id);
extern Oid	ek_dist_ledger_relid(int32 stream_id);
extern void ek_dist_ledger_create(int32 stream_id, Oid stream_relid);
extern void ek_dist_ledger_drop(int32 stream_id);
extern void ek_dist_ledger_check_owner(int32 stream_id, Oid stream_relid);
extern void ek_dist_ledger_check_absent(int32 stream_id, Oid stream_relid);
extern int64 ek_dist_ledger_undistribute(int32 stream_id);
extern void ek_dist_ledger_follow_owner(int32 stream_id, Oid stream_relid);
extern int64 ek_dist_ledger_prune(int32 stream_id, const Interval *dedup_window);
extern int64 ek_dist_ledger_forget_keys(int32 stream_id, Datum keys);
extern void ek_dist_ledger_claim(int32 stream_id, Oid stream_relid, SegmentEvent **events,
								 char **ids, int64 *fps, char **keys, int n, int64 batch_id,
								 TimestampTz received_at, bool write_remote, bool *claimed,
								 int64 *stored_fp);
extern bool ek_dist_ledger_claim_here(Oid ledger_relid, char **ids, int64 *fps, char **keys,
									  int n, int64 token, bool *claimed, int64 *stored_fp);
extern void ek_dist_ledger_create_node_function(int32 stream_id, const char *q);
extern int	ek_dist_ledger_ensure_node_function(int32 stream_id);

#endif							/* EK_DEDUP_LEDGER_H */
