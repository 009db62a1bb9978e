/*-------------------------------------------------------------------------
 *
 * owner_change.h
 *	  A stream's (a rollup's) objects following it to a new owner
 *	  (owner_change.c), from the utility hook.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_STREAM_OWNER_CHANGE_H
#define EK_STREAM_OWNER_CHANGE_H

#include "postgres.h"

#include "nodes/nodes.h"

extern Oid	ek_owner_change_target(Node *parsetree);
extern void ek_stream_owner_changed(Node *parsetree);

#endif							/* EK_STREAM_OWNER_CHANGE_H */
