/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Which version of eventkit's catalog is installed, read once per
 *	  backend from landmarks each update script adds (syscache lookups,
 *	  no query):
 *		1.4: eventkit.identity_links
 *		1.3: eventkit.streams.max_future
 *		1.2: eventkit.ledger_generations.filter
 *		1.1: eventkit.plan_versions
 *		1.0: eventkit.streams
 *	  The hash values of the syscache entries read are remembered, and the
 *	  cached version is forgotten when any of them is invalidated: a
 *	  CREATE, ALTER or DROP EXTENSION (by this session or another, once it
 *	  commits) creates, alters or drops them.  The per-batch path reads a
 *	  cached int.
 *
 *	  This replaces the catalog probes that the subsystems each made (five
 *	  of them, two on every batch).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog/catalog.h"
#include "util/owner.h"

#define MAX_LANDMARKS 12

static bool version_valid = false;
static EkCatalogVersion cached_version = EK_CATALOG_NONE;
static bool callbacks_registered = false;

/* the syscache entries the cached version was read from */
static struct
{
	int			cacheid;
	uint32		hashvalue;
}			landmarks[MAX_LANDMARKS];
static int	nlandmarks = 0;

static void
forget_version(Datum arg, int cacheid, uint32 hashvalue)
{
	if (!version_valid)
		return;
	for (int i = 0; i < nlandmarks; i++)
		if (hashvalue == 0 ||
			(landmarks[i].cacheid == cacheid && landmarks[i].hashvalue == hashvalue))
		{
			version_valid = false;
			return;
		}
}

static void
remember(int cacheid, uint32 hashvalue)
{
	Assert(nlandmarks < MAX_LANDMARKS);
	landmarks[nlandmarks].cacheid = cacheid;
	landmarks[nlandmarks].hashvalue = hashvalue;
	nlandmarks++;
}

/* Does the relation eventkit.relname exist?  Remembers the lookup. */
static Oid
landmark_relation(Oid nspid, const char *relname)
{
	remember(RELNAMENSP, GetSysCacheHashValue2(RELNAMENSP, CStringGetDatum(relname),
											   ObjectIdGetDatum(nspid)));
	return get_relname_relid(relname, nspid);
}

/* Has eventkit.relname the column attname?  Remembers the lookups. */
static bool
landmark_column(Oid nspid, const char *relname, const char *attname)
{
	Oid			relid = landmark_relation(nspid, relname);

	if (!OidIsValid(relid))
		return false;
	remember(ATTNAME, GetSysCacheHashValue2(ATTNAME, ObjectIdGetDatum(relid),
											CStringGetDatum(attname)));
	return get_attnum(relid, attname) != InvalidAttrNumber;
}

static EkCatalogVersion
read_version(void)
{
	Oid			nspid;

	nlandmarks = 0;
	remember(NAMESPACENAME, GetSysCacheHashValue1(NAMESPACENAME,
												  CStringGetDatum("eventkit")));
	nspid = get_namespace_oid("eventkit", true);
	if (!OidIsValid(nspid) || !OidIsValid(landmark_relation(nspid, "streams")))
		return EK_CATALOG_NONE;
	if (OidIsValid(landmark_relation(nspid, "identity_links")))
		return EK_CATALOG_1_4;
	if (landmark_column(nspid, "streams", "max_future"))
		return EK_CATALOG_1_3;
	if (landmark_column(nspid, "ledger_generations", "filter"))
		return EK_CATALOG_1_2;
	if (OidIsValid(landmark_relation(nspid, "plan_versions")))
		return EK_CATALOG_1_1;
	return EK_CATALOG_1_0;
}

/* The installed catalog's version (EK_CATALOG_NONE: not installed). */
EkCatalogVersion
ek_catalog_version(void)
{
	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACENAME, forget_version, (Datum) 0);
		CacheRegisterSyscacheCallback(RELNAMENSP, forget_version, (Datum) 0);
		CacheRegisterSyscacheCallback(ATTNAME, forget_version, (Datum) 0);
		callbacks_registered = true;
	}
	/* (invalidated while it was read: read again) */
	while (!version_valid)
	{
		version_valid = true;
		cached_version = read_version();
	}
	return cached_version;
}

/* The OID of the catalog table eventkit.relname (InvalidOid: none). */
Oid
ek_catalog_relid(const char *relname)
{
	Oid			nspid = ek_extension_namespace(true);

	return OidIsValid(nspid) ? get_relname_relid(relname, nspid) : InvalidOid;
}
