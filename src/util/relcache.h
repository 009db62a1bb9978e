/*-------------------------------------------------------------------------
 *
 * relcache.h
 *	  One relcache invalidation callback for all of eventkit's caches
 *	  (relcache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_RELCACHE_H
#define EK_UTIL_RELCACHE_H

#include "postgres.h"

#include "utils/inval.h"

extern void ek_register_relcache_callback(RelcacheCallbackFunction func, Datum arg);

#endif							/* EK_UTIL_RELCACHE_H */
