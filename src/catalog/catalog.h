/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The version of eventkit's catalog this library runs against
 *	  (catalog.c).
 *
 *	  The library may run against an older catalog until ALTER EXTENSION
 *	  eventkit UPDATE (the upgrade test ingests at 1.0 and 1.1).  Code that
 *	  needs a newer catalog object asks for the version by its C name, as
 *	  pg_stat_statements names its versions, never with a query:
 *
 *		if (ek_catalog_version() >= EK_CATALOG_1_3)
 *
 *	  The answer is cached per backend and forgotten when the objects it
 *	  was read from change (CREATE, ALTER, DROP EXTENSION).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_CATALOG_H
#define EK_CATALOG_CATALOG_H

#include "postgres.h"

typedef enum EkCatalogVersion
{
	EK_CATALOG_NONE = 0,		/* eventkit is not installed here */
	EK_CATALOG_1_0 = 100,
	EK_CATALOG_1_1 = 101,		/* tracking plans, rollups, jobs, envelopes */
	EK_CATALOG_1_2 = 102,		/* ledger filters */
	EK_CATALOG_1_3 = 103,		/* clock bounds and stream limits, quarantine
								 * retry key, rollup skips, plan owners by name */
	EK_CATALOG_1_4 = 104		/* identity graph, suppressions, erasures */
} EkCatalogVersion;

extern EkCatalogVersion ek_catalog_version(void);
extern Oid	ek_catalog_relid(const char *relname);

#endif							/* EK_CATALOG_CATALOG_H */
