/*-------------------------------------------------------------------------
 *
 * identity.h
 *	  A stream's identity objects (identity.c): its <stream>_resolved view,
 *	  made by create_stream, dropped by drop_stream, given to the stream's
 *	  new owner by owner_change.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_STREAM_IDENTITY_H
#define EK_STREAM_IDENTITY_H

#include "postgres.h"

extern void ek_identity_create_view(Oid stream_relid, int32 stream_id);
extern void ek_identity_drop_view(Oid stream_relid);
extern void ek_identity_distribute_view(Oid stream_relid, int32 stream_id);
extern Oid	ek_identity_view_of(Oid stream_relid);

#endif							/* EK_STREAM_IDENTITY_H */
