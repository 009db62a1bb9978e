/*-------------------------------------------------------------------------
 *
 * intake_keys.h
 *	  The HTTP intake's write keys in the catalog (intake_keys.c):
 *	  eventkit.intake_keys.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_INTAKE_KEYS_H
#define EK_CATALOG_INTAKE_KEYS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* A key's row, with its stream's table. */
typedef struct IntakeKeyRow
{
	char	   *role;			/* the role events are ingested as (a name) */
	Oid			stream;			/* the stream's relid; InvalidOid: dropped */
	bool		revoked;
	bool		has_last_used;
	TimestampTz last_used_at;
} IntakeKeyRow;

extern bool ek_intake_keys_installed(void);
extern bool ek_intake_keys_lookup(bytea *hash, IntakeKeyRow *row);
extern void ek_intake_keys_touch(bytea *hash, TimestampTz now);
extern bool ek_intake_keys_insert(bytea *hash, const char *prefix, int32 stream_id,
								  const char *role, Datum description,
								  bool description_null);
extern bool ek_intake_keys_lock(bool by_prefix, Datum key, IntakeKeyRow *row);
extern bool ek_intake_keys_revoke(bool by_prefix, Datum key);

#endif							/* EK_CATALOG_INTAKE_KEYS_H */
