/*-------------------------------------------------------------------------
 *
 * eventkit.c
 *	  Module entry point: defines the configuration parameters
 *	  (util/guc.c) and, when eventkit is preloaded, sets up the background
 *	  processes (worker/launcher.c).  Everything else is reached through
 *	  SQL functions; docs/architecture.md describes the source tree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "util/guc.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	ek_define_gucs();
	ek_worker_init();
}
