/*-------------------------------------------------------------------------
 *
 * eventkit.c
 *	  Module entry point: defines the configuration parameters
 *	  (util/guc.c, and the intakes' own: intake/http.c, which also
 *	  registers the HTTP listeners, and intake/kafka_consumer.c) and, when
 *	  eventkit is preloaded, sets up the background processes
 *	  (worker/launcher.c); sets the guard that keeps Citus off eventkit's
 *	  internal tables (stream/distribute.c).  Everything else is reached through SQL
 *	  functions; docs/architecture.md describes the source tree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "intake/http.h"
#include "intake/kafka_consumer.h"
#include "stream/distribute.h"
#include "util/guc.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* the intakes' settings first: ek_define_gucs() reserves the prefix */
	ek_http_init();
	ek_kafka_define_gucs();
	ek_define_gucs();
	ek_worker_init();
	ek_citus_guard_init();
}
