/*-------------------------------------------------------------------------
 *
 * relcache.c
 *	  One relcache invalidation callback for all of eventkit's per-backend
 *	  caches (the catalog's rollups, suppressions and cluster adoption, the
 *	  tracking plans), which each register theirs here.
 *
 *	  Why.  PostgreSQL gives a backend 10 relcache callbacks in all
 *	  (MAX_RELCACHE_CALLBACKS in inval.c) and ends the session with FATAL
 *	  "out of relcache_callback_list slots" past that.  Citus registers
 *	  several of its own in every session where it is loaded; with each of
 *	  eventkit's caches taking a slot too, a Citus worker session that
 *	  adopted a stream and wrote rollup deltas ran out.  eventkit now takes
 *	  one slot, whatever its caches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "util/relcache.h"

#define EK_MAX_RELCACHE_CALLBACKS 16

typedef struct EkRelcacheCallback
{
	RelcacheCallbackFunction func;
	Datum		arg;
} EkRelcacheCallback;

static EkRelcacheCallback callbacks[EK_MAX_RELCACHE_CALLBACKS];
static int	ncallbacks = 0;

/* The one callback PostgreSQL calls: each of eventkit's, in order. */
static void
relcache_callback(Datum arg, Oid relid)
{
	for (int i = 0; i < ncallbacks; i++)
		callbacks[i].func(callbacks[i].arg, relid);
}

/*
 * Have func(arg, relid) called at each relcache invalidation in this
 * backend (relid InvalidOid: all), as CacheRegisterRelcacheCallback does.
 * Each cache registers once per backend.
 */
void
ek_register_relcache_callback(RelcacheCallbackFunction func, Datum arg)
{
	if (ncallbacks >= EK_MAX_RELCACHE_CALLBACKS)
		elog(FATAL, "eventkit: out of relcache callback slots");
	if (ncallbacks == 0)
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	callbacks[ncallbacks].func = func;
	callbacks[ncallbacks].arg = arg;
	ncallbacks++;
}
