/*-------------------------------------------------------------------------
 *
 * eventkit.c
 *	  Module entry point: loads the configuration parameters and sets up
 *	  the background worker's hooks (worker.c).  The SQL functions live in
 *	  the subsystem files (catalog.c for streams, ingest.c, maintenance.c,
 *	  jobs.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "eventkit.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	ek_define_gucs();
	ek_worker_init();
}
