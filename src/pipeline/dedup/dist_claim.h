/*-------------------------------------------------------------------------
 *
 * dist_claim.h
 *	  The claim of ids in a local shard of a distributed ledger in C
 *	  (dist_claim.c), for dist_ledger.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_DEDUP_DIST_CLAIM_H
#define EK_DEDUP_DIST_CLAIM_H

#include "postgres.h"

extern bool ek_dist_claim_shard(Oid shard_relid, const int *pos, int m, char **ids,
								int64 *fps, char **keys, int64 token, bool *claimed,
								int64 *stored_fp);

#endif							/* EK_DEDUP_DIST_CLAIM_H */
