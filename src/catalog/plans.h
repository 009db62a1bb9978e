/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  Tracking plans in the catalog (plans.c): eventkit.plans and
 *	  eventkit.plan_versions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_PLANS_H
#define EK_CATALOG_PLANS_H

#include "postgres.h"

#include "utils/jsonb.h"

extern Oid	ek_plans_versions_relid(void);
extern Jsonb *ek_plans_read_version(int32 plan_id, int32 version, char **name,
									MemoryContext cxt);
extern void ek_plans_lock(void);
extern bool ek_plans_find(const char *name, int32 *plan_id, char **owner);
extern int32 ek_plans_insert(const char *name, Oid owner);
extern int32 ek_plans_add_version(int32 plan_id, Jsonb *spec, Oid created_by);
extern bool ek_plans_version_exists(int32 plan_id, int32 version);
extern void ek_plans_set_owner(int32 plan_id, Oid owner);

#endif							/* EK_CATALOG_PLANS_H */
