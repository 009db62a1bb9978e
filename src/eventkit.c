/*-------------------------------------------------------------------------
 *
 * eventkit.c
 *	  Module entry point: loads the configuration parameters and sets up
 *	  the background worker's hooks (worker.c) and the HTTP intake's
 *	  listeners (intake/http.c).  The SQL functions live in the subsystem
 *	  files (catalog.c for streams, ingest.c, maintenance.c, jobs.c,
 *	  intake/write_keys.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "eventkit.h"
#include "intake/http.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* first: ek_define_gucs() reserves the "eventkit" prefix */
	ek_http_init();
	ek_define_gucs();
	ek_worker_init();
}
