/*-------------------------------------------------------------------------
 *
 * owner.h
 *	  A stream's objects following it to a new owner (owner.c), from the
 *	  utility hook.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_STREAM_OWNER_H
#define EK_STREAM_OWNER_H

#include "postgres.h"

#include "nodes/nodes.h"

extern void ek_stream_owner_changed(Node *parsetree);

#endif							/* EK_STREAM_OWNER_H */
