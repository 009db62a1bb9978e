/*-------------------------------------------------------------------------
 *
 * write_keys.h
 *	  Write keys of the HTTP intake (write_keys.c): their format, their
 *	  hash, and the lookup the listener does for every request.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_WRITE_KEYS_H
#define EK_WRITE_KEYS_H

#include "datatype/timestamp.h"

/* "ek_" and 32 base32 characters: 160 random bits */
#define EK_WRITE_KEY_LEN		35
/* what eventkit.write_keys shows of a key: "ek_" and 8 characters */
#define EK_WRITE_KEY_PREFIX_LEN	11
#define EK_WRITE_KEY_HASH_LEN	32	/* SHA-256 */

typedef enum WriteKeyStatus
{
	WRITE_KEY_OK,
	WRITE_KEY_UNKNOWN,			/* no such key */
	WRITE_KEY_REVOKED,
	WRITE_KEY_NO_STREAM,		/* its stream was dropped */
	WRITE_KEY_NO_ROLE			/* its role was dropped */
} WriteKeyStatus;

/* A key as the listener needs it. */
typedef struct WriteKeyInfo
{
	WriteKeyStatus status;
	char		prefix[EK_WRITE_KEY_PREFIX_LEN + 1];
	Oid			stream;			/* the stream's relid */
	Oid			role;			/* events are ingested as this role */
	bool		has_last_used;
	TimestampTz last_used_at;
} WriteKeyInfo;

extern bool ek_write_key_well_formed(const char *key, size_t len);
extern bool ek_write_keys_installed(void);
extern void ek_write_key_lookup(const char *key, size_t len, WriteKeyInfo *info);
extern void ek_write_key_touch(const char *key, size_t len, TimestampTz now);

#endif							/* EK_WRITE_KEYS_H */
