/*-------------------------------------------------------------------------
 *
 * citus.h
 *	  Is Citus here, and is a relation a Citus table (citus.c)?  Read from
 *	  Citus's own catalog (pg_dist_partition) without linking to Citus, so
 *	  that eventkit loads and runs the same with or without it.  And a
 *	  command run on every worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_CITUS_H
#define EK_UTIL_CITUS_H

#include "postgres.h"

#include "catalog/pg_namespace.h"
#include "utils/lsyscache.h"

/* pg_dist_partition.partmethod of a relation; EK_CITUS_NONE: not a Citus table */
#define EK_CITUS_NONE		'\0'
#define EK_CITUS_HASH		'h'		/* hash-distributed */
#define EK_CITUS_REPLICATED	'n'		/* reference table or Citus local table */

/* What a command run on one worker gave (ek_citus_run_on_workers) */
typedef struct EkCitusResult
{
	char	   *node;			/* the worker's host name */
	int			port;
	bool		ok;				/* false: not reached, or the command failed */
	char	   *result;			/* its first value, or the error */
} EkCitusResult;

extern bool ek_citus_installed(void);
extern char ek_citus_table_kind(Oid relid);
extern int32 ek_citus_local_group(void);
extern Oid	ek_citus_local_shard(Oid relid);
extern EkCitusResult *ek_citus_run_on_workers(const char *command, bool parallel, int *n);
extern void ek_citus_lock_timeout_begin(int timeout_ms);
extern void ek_citus_lock_timeout_end(int timeout_ms);

/* Citus's catalog is in this database (a syscache lookup) */
#define ek_citus_present() \
	OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE))

/* a Citus worker (metadata synced): group > 0; the coordinator is group 0 */
#define ek_citus_on_worker() (ek_citus_local_group() > 0)

#define ek_citus_table(relid) (ek_citus_table_kind(relid) != EK_CITUS_NONE)

#endif							/* EK_UTIL_CITUS_H */
