/*-------------------------------------------------------------------------
 *
 * eventkit.c
 *	  Module entry point: loads the configuration parameters.  The SQL
 *	  functions live in the subsystem files (catalog.c for streams,
 *	  ingest.c, maintenance.c).
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
}
