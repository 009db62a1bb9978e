/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  Tracking plans in the catalog: eventkit.plans (a plan's name and
 *	  owner) and eventkit.plan_versions (its immutable versions, each with
 *	  its spec).  A plan's owner is a role name from 1.3 on (a name
 *	  survives a dump into another cluster, an OID does not); an OID in an
 *	  older catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog/catalog.h"
#include "catalog/cluster.h"
#include "catalog/plans.h"
#include "util/owner.h"
#include "util/spi.h"

static EkStatement read_version = {
	.sql = "SELECT v.spec, p.name FROM eventkit.plan_versions v"
	" JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) v.plan_id"
	" WHERE v.plan_id OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

static EkStatement lock_plans = {
	.sql = "LOCK TABLE eventkit.plans IN SHARE ROW EXCLUSIVE MODE",
	.expected = SPI_OK_UTILITY
};

static EkStatement find_by_name = {
	.sql = "SELECT plan_id, owner::pg_catalog.text FROM eventkit.plans"
	" WHERE name OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_SELECT
};

/* before 1.3: the owner is an OID */
static EkStatement find_by_name_1_1 = {
	.sql = "SELECT plan_id, pg_catalog.pg_get_userbyid(owner)::pg_catalog.text"
	" FROM eventkit.plans WHERE name OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_SELECT
};

#define INSERT_PLAN \
	"INSERT INTO eventkit.plans (plan_id, name, owner)" \
	" VALUES (pg_catalog.nextval('eventkit.plans_plan_id_seq'), $1, $2)" \
	" RETURNING plan_id"

static EkStatement insert_plan = {
	.sql = INSERT_PLAN,.nargs = 2,.argtypes = {TEXTOID, NAMEOID},
	.expected = SPI_OK_INSERT_RETURNING,.flags = EK_STMT_ONE_ROW
};

static EkStatement insert_plan_1_1 = {
	.sql = INSERT_PLAN,.nargs = 2,.argtypes = {TEXTOID, OIDOID},
	.expected = SPI_OK_INSERT_RETURNING,.flags = EK_STMT_ONE_ROW
};

static EkStatement insert_version = {
	.sql = "INSERT INTO eventkit.plan_versions (plan_id, version, spec, created_by)"
	" SELECT $1, COALESCE(pg_catalog.max(version), 0) OPERATOR(pg_catalog.+) 1, $2, $3"
	" FROM eventkit.plan_versions WHERE plan_id OPERATOR(pg_catalog.=) $1"
	" RETURNING version",
	.nargs = 3,.argtypes = {INT4OID, JSONBOID, NAMEOID},
	.expected = SPI_OK_INSERT_RETURNING,.flags = EK_STMT_ONE_ROW
};

static EkStatement version_exists = {
	.sql = "SELECT 1 FROM eventkit.plan_versions"
	" WHERE plan_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT
};

static EkStatement set_owner = {
	.sql = "UPDATE eventkit.plans SET owner = $2 WHERE plan_id OPERATOR(pg_catalog.=) $1",
	.nargs = 2,.argtypes = {INT4OID, NAMEOID},.expected = SPI_OK_UPDATE
};

static bool
owner_is_name(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_3;
}

static Datum
role_name(Oid roleid)
{
	return DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(roleid, false)));
}

/* eventkit.plan_versions, whose changes the compiled plans' cache watches. */
Oid
ek_plans_versions_relid(void)
{
	return ek_catalog_relid("plan_versions");
}

/*
 * The spec of a plan's version (and in *name the plan's name), copied
 * into cxt; NULL if there is no such version.  Caller: SPI connected.
 */
Jsonb *
ek_plans_read_version(int32 plan_id, int32 version, char **name, MemoryContext cxt)
{
	Datum		args[2] = {Int32GetDatum(plan_id), Int32GetDatum(version)};
	bool		isnull;
	MemoryContext old;
	Jsonb	   *spec;

	if (ek_stmt_run(&read_version, args, NULL) == 0)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	spec = DatumGetJsonbPCopy(ek_spi_value(0, 1, &isnull));
	*name = TextDatumGetCString(ek_spi_value(0, 2, &isnull));
	MemoryContextSwitchTo(old);
	return spec;
}

/* Lock eventkit.plans: one plan change at a time, until commit. */
void
ek_plans_lock(void)
{
	ek_stmt_run(&lock_plans, NULL, NULL);
}

/*
 * The plan_id and owner's role name of the plan called name; false when
 * there is none.
 */
bool
ek_plans_find(const char *name, int32 *plan_id, char **owner)
{
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull;

	if (ek_stmt_run(owner_is_name() ? &find_by_name : &find_by_name_1_1, args, NULL) == 0)
		return false;
	*plan_id = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	*owner = TextDatumGetCString(ek_spi_value(0, 2, &isnull));
	return true;
}

/* Record a new plan owned by owner; returns its plan_id. */
int32
ek_plans_insert(const char *name, Oid owner)
{
	Datum		args[2] = {CStringGetTextDatum(name),
	owner_is_name() ? role_name(owner) : ObjectIdGetDatum(owner)};
	bool		isnull;

	ek_stmt_run(owner_is_name() ? &insert_plan : &insert_plan_1_1, args, NULL);
	return DatumGetInt32(ek_spi_value(0, 1, &isnull));
}

/* Store spec as the plan's next version, made by created_by; returns it. */
int32
ek_plans_add_version(int32 plan_id, Jsonb *spec, Oid created_by)
{
	Datum		args[3] = {Int32GetDatum(plan_id), JsonbPGetDatum(spec),
	role_name(created_by)};
	bool		isnull;

	int32		version;

	ek_stmt_run(&insert_version, args, NULL);
	version = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	/* the distributed streams following the plan: their workers need it */
	ek_cluster_plan_changed(plan_id);
	return version;
}

/* Has the plan that version? */
bool
ek_plans_version_exists(int32 plan_id, int32 version)
{
	Datum		args[2] = {Int32GetDatum(plan_id), Int32GetDatum(version)};

	return ek_stmt_run(&version_exists, args, NULL) > 0;
}

/* Give a plan to another owner (a 1.3 catalog). */
void
ek_plans_set_owner(int32 plan_id, Oid owner)
{
	Datum		args[2] = {Int32GetDatum(plan_id), role_name(owner)};

	ek_stmt_run(&set_owner, args, NULL);
}
