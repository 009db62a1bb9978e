/*-------------------------------------------------------------------------
 *
 * plan_sql.c
 *	  The SQL functions of tracking plans: eventkit.create_plan(),
 *	  attach_plan(), detach_plan() and alter_plan_owner().  A plan is
 *	  compiled (plan.c) before it is stored, so that every error in a spec
 *	  is reported here, not at ingest.
 *
 *	  A plan's owner is stored as a role name, not an OID (see
 *	  check_plan_owner()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "catalog/plans.h"
#include "catalog/streams.h"
#include "plan_int.h"
#include "util/compat.h"

PG_FUNCTION_INFO_V1(eventkit_create_plan);
PG_FUNCTION_INFO_V1(eventkit_attach_plan);
PG_FUNCTION_INFO_V1(eventkit_detach_plan);
PG_FUNCTION_INFO_V1(eventkit_alter_plan_owner);

static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * May userid act as the owner of a plan (be a member of its owning role,
 * or a superuser)?  A plan whose owner role was dropped is left to
 * superusers.
 */
static void
check_plan_owner(Oid userid, const char *plan, const char *owner)
{
	Oid			ownerid = get_role_oid(owner, true);

	if (superuser_arg(userid))
		return;
	if (!OidIsValid(ownerid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of tracking plan \"%s\"", plan),
				 errdetail("Its owner, role \"%s\", does not exist.", owner),
				 errhint("A superuser can give the plan a new owner with eventkit.alter_plan_owner().")));
	if (!has_privs_of_role(userid, ownerid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of tracking plan \"%s\"", plan),
				 errhint("Ask the plan's owner, or a member of its role, to do it.")));
}

/* One WARNING for everything a non-strict create_plan ignored. */
static void
warn_ignored(const char *name, List *ignored)
{
	StringInfoData list;

	if (ignored == NIL)
		return;
	initStringInfo(&list);
	foreach_ptr(char, where, ignored)
		appendStringInfo(&list, "%s%s", list.len ? ", " : "", where);
	ereport(WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg_plural("tracking plan \"%s\": %d unknown keyword ignored",
						   "tracking plan \"%s\": %d unknown keywords ignored",
						   list_length(ignored), name, list_length(ignored)),
			 errdetail("Ignored (they check nothing): %s.", list.data),
			 errhint("Remove them, name your own annotations \"x-...\", or leave strict => true to have them rejected.")));
}

/*
 * eventkit.create_plan(name text, spec jsonb, strict boolean DEFAULT true)
 * RETURNS int
 *
 * Compiles the spec (every error is reported here, not at ingest) and
 * stores it as the plan's next version.  strict => false ignores unknown
 * schema keywords (and formats) with one WARNING listing them.  The 1.3
 * catalog's two-argument function calls this too.
 */
Datum
eventkit_create_plan(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0, "name");
	Jsonb	   *spec;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit plan check",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	CompiledPlan plan = {0};
	int32		plan_id;
	char	   *owner;
	int32		version;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plan name must not be empty")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("spec must not be null")));
	spec = PG_GETARG_JSONB_P(1);

	if (PG_NARGS() > 2 && PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("strict must not be null")));
	old = MemoryContextSwitchTo(cxt);
	plan.plan_name = name;
	plan.lenient = PG_NARGS() > 2 && !PG_GETARG_BOOL(2);
	ek_compile_plan(&plan, spec);
	warn_ignored(name, plan.ignored);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);

	SPI_connect();
	/* one version at a time per plan */
	ek_plans_lock();
	if (ek_plans_find(name, &plan_id, &owner))
		check_plan_owner(GetUserId(), name, owner);
	else
		plan_id = ek_plans_insert(name, GetUserId());
	version = ek_plans_add_version(plan_id, spec, GetUserId());
	SPI_finish();
	PG_RETURN_INT32(version);
}

static void
check_stream_owner(Oid relid)
{
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
}

/* eventkit.attach_plan(stream regclass, plan text, version int DEFAULT NULL) */
Datum
eventkit_attach_plan(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *name;
	int32		plan_id;
	char	   *owner;
	StreamInfo	stream;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null")));
	relid = PG_GETARG_OID(0);
	name = text_arg(fcinfo, 1, "plan");
	check_stream_owner(relid);

	SPI_connect();
	if (!ek_plans_find(name, &plan_id, &owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracking plan \"%s\" does not exist", name),
				 errhint("Create it with eventkit.create_plan().")));
	if (!PG_ARGISNULL(2) && !ek_plans_version_exists(plan_id, PG_GETARG_INT32(2)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracking plan \"%s\" has no version %d", name, PG_GETARG_INT32(2)),
				 errhint("Leave the version out to follow the plan's latest version.")));
	ek_streams_read(relid, &stream, false);
	ek_streams_set_plan(stream.stream_id, plan_id, PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2));
	SPI_finish();
	PG_RETURN_VOID();
}

/* eventkit.detach_plan(stream regclass) */
Datum
eventkit_detach_plan(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	StreamInfo	stream;

	check_stream_owner(relid);
	SPI_connect();
	ek_streams_read(relid, &stream, false);
	ek_streams_set_plan(stream.stream_id, 0, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventkit.alter_plan_owner(plan text, new_owner regrole)
 *
 * As ALTER ... OWNER TO: the plan's owner (a member of its role) or a
 * superuser, who must be a member of the new owner.  Also how a plan whose
 * owner role was dropped gets a new one.
 */
Datum
eventkit_alter_plan_owner(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0, "plan");
	Oid			new_owner = PG_GETARG_OID(1);
	char	   *new_owner_name = GetUserNameFromId(new_owner, false);
	int32		plan_id;
	char	   *owner;

	SPI_connect();
	ek_plans_lock();
	if (!ek_plans_find(name, &plan_id, &owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracking plan \"%s\" does not exist", name)));
	check_plan_owner(GetUserId(), name, owner);
	if (!is_member_of_role(GetUserId(), new_owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be member of role \"%s\"", new_owner_name),
				 errhint("Only a member of the new owning role (or a superuser) can give it a plan.")));
	ek_plans_set_owner(plan_id, new_owner);
	SPI_finish();
	PG_RETURN_VOID();
}
