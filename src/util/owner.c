/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  Acting as another role, in one place.
 *
 *	  A role scope (ek_as_role_begin/ek_as_role_end) is how eventkit does
 *	  work on a user's behalf: DDL on a stream's partitions, a rollup's
 *	  tables, a job's work.  It acts as the role under
 *	  SECURITY_RESTRICTED_OPERATION, as autovacuum and REFRESH MATERIALIZED
 *	  VIEW act as a table's owner, with search_path pinned to
 *	  "pg_catalog, pg_temp" and, if asked, eventkit.maintenance_lock_timeout
 *	  as lock_timeout; its end undoes any setting the role's code
 *	  (triggers, index expressions, defaults) changed meanwhile.
 *
 *	  The owner executor (ek_stmt_run) is how every statement on eventkit's
 *	  catalog runs: in a role scope of the extension owner (the owner of
 *	  schema eventkit, who owns the catalog tables, so that a caller needs
 *	  no privilege on them), with the statement's plan kept, its SPI result
 *	  checked, and the caller's memory context left current.  A statement
 *	  run inside an extension-owner scope already in place runs as it is.
 *
 *	  The extension's schema and owner are cached per backend and
 *	  forgotten when pg_namespace changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "util/guc.h"
#include "util/owner.h"

#define EK_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

static Oid	cached_namespace = InvalidOid;
static Oid	cached_owner = InvalidOid;
static bool callbacks_registered = false;

static void
forget_namespace(Datum arg, int cacheid, uint32 hashvalue)
{
	cached_namespace = InvalidOid;
	cached_owner = InvalidOid;
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	CacheRegisterSyscacheCallback(NAMESPACEOID, forget_namespace, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACENAME, forget_namespace, (Datum) 0);
	callbacks_registered = true;
}

/* The schema eventkit (InvalidOid if missing and missing_ok). */
Oid
ek_extension_namespace(bool missing_ok)
{
	if (!OidIsValid(cached_namespace))
	{
		register_callbacks();
		cached_namespace = get_namespace_oid("eventkit", missing_ok);
	}
	return cached_namespace;
}

/*
 * The owner of the eventkit schema, i.e. the role that created the
 * extension.  eventkit's catalog and bookkeeping tables (ledger,
 * quarantine, batch log) are owned by it and written as it, so that
 * ingesting needs no privilege on them.
 */
Oid
ek_extension_owner(void)
{
	if (!OidIsValid(cached_owner))
	{
		Oid			nspid = ek_extension_namespace(false);
		HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for namespace %u", nspid);
		cached_owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	return cached_owner;
}

/*
 * Act as role (see the file header) until ek_as_role_end(scope).  Scopes
 * nest; each must end in the (sub)transaction it began in, or that
 * (sub)transaction's abort undoes it.
 */
void
ek_as_role_begin(EkRoleScope *scope, Oid role, int flags)
{
	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	SetUserIdAndSecContext(role, scope->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	scope->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", EK_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (flags & EK_AS_LOCK_TIMEOUT)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "%d", ek_maintenance_lock_timeout);
		(void) set_config_option("lock_timeout", buf,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
}

/*
 * Act as the extension owner; nothing to do when that scope is already in
 * place (the owner, restricted, search_path pinned).
 */
void
ek_as_owner_begin(EkRoleScope *scope)
{
	Oid			owner = ek_extension_owner();
	Oid			userid;
	int			sec;

	GetUserIdAndSecContext(&userid, &sec);
	if (userid == owner && (sec & SECURITY_RESTRICTED_OPERATION) != 0 &&
		namespace_search_path != NULL &&
		strcmp(namespace_search_path, EK_SAFE_SEARCH_PATH) == 0)
	{
		scope->nestlevel = 0;
		return;
	}
	ek_as_role_begin(scope, owner, 0);
}

void
ek_as_role_end(EkRoleScope *scope)
{
	if (scope->nestlevel == 0)
		return;
	AtEOXact_GUC(false, scope->nestlevel);
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
	scope->nestlevel = 0;
}

/*
 * Run a catalog statement as the extension owner with values (and nulls,
 * as SPI_execute_plan takes them; NULL: none) for its parameters; check
 * its result.  Returns the rows processed; rows returned are in
 * SPI_tuptable until the next SPI call.  Caller: SPI connected.
 */
uint64
ek_stmt_run(EkStatement *stmt, Datum *values, const char *nulls)
{
	MemoryContext cxt = CurrentMemoryContext;
	EkRoleScope scope;
	bool		read_only = (stmt->flags & EK_STMT_READ_ONLY) != 0;
	int			rc;

	ek_as_owner_begin(&scope);
	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

		if (plan == NULL)
			elog(ERROR, "eventkit: could not prepare a catalog statement (%s): %s",
				 SPI_result_code_string(SPI_result), stmt->sql);
		SPI_keepplan(plan);
		stmt->plan = plan;
	}
	if (stmt->flags & EK_STMT_LATEST_SNAPSHOT)
		rc = SPI_execute_snapshot(stmt->plan, values, nulls, GetLatestSnapshot(),
								  InvalidSnapshot, read_only, false, 0);
	else
		rc = SPI_execute_plan(stmt->plan, values, nulls, read_only, 0);
	ek_as_role_end(&scope);
	MemoryContextSwitchTo(cxt);
	if (rc != stmt->expected)
		elog(ERROR, "eventkit: catalog statement failed (%s): %s",
			 SPI_result_code_string(rc), stmt->sql);
	if ((stmt->flags & EK_STMT_ONE_ROW) && SPI_processed != 1)
		elog(ERROR, "eventkit: catalog statement gave %llu rows instead of one: %s",
			 (unsigned long long) SPI_processed, stmt->sql);
	return SPI_processed;
}
