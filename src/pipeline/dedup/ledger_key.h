/*-------------------------------------------------------------------------
 *
 * ledger_key.h
 *	  The message id hashes the dedup ledger stores (ledger_key.c), for the
 *	  files of the dedup stage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_DEDUP_LEDGER_KEY_H
#define EK_DEDUP_LEDGER_KEY_H

#include "postgres.h"

#include "utils/uuid.h"

#include "util/murmur3.h"		/* ek_fmix64: the lanes and the filters' probes */

extern uint64 ek_id_hash64(const char *id, size_t len);
extern void ek_ledger_key(const char *id, size_t len, pg_uuid_t *out);
extern uint64 ek_ledger_key_hash64(const pg_uuid_t *key);

#endif							/* EK_DEDUP_LEDGER_KEY_H */
