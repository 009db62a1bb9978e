/*-------------------------------------------------------------------------
 *
 * spi.c
 *	  SPI helpers shared by every layer: a checked run of a statement built
 *	  at run time, kept plans, one-dimensional arrays for array arguments,
 *	  reading a result's values, a subtransaction runner that hands back
 *	  the error instead of raising it, and the quoted name and the owner of
 *	  a relation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "util/compat.h"
#include "util/spi.h"

/*
 * Run one SQL statement through SPI and check its result code.
 */
void
ek_spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "eventkit: SPI_execute failed (%s) for: %s",
			 SPI_result_code_string(rc), sql);
}

/* Prepare a statement and keep it for the life of the backend. */
SPIPlanPtr
ek_keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "eventkit: SPI_prepare failed (%s) for: %s",
			 SPI_result_code_string(SPI_result), sql);
	SPI_keepplan(plan);
	return plan;
}

/*
 * ek_keep_plan for a statement whose plan does not depend on its
 * parameters' values (arrays unnested, no table read by them): always the
 * generic plan, so that its executions neither plan again nor copy the
 * parameters into the plan as constants (a plan cache builds custom plans
 * for the first five executions, and again whenever it judges them
 * cheaper).
 */
SPIPlanPtr
ek_keep_generic_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "eventkit: SPI_prepare failed (%s) for: %s",
			 SPI_result_code_string(SPI_result), sql);
	SPI_keepplan(plan);
	return plan;
}

/* A one-dimensional array of n elements (nulls may be NULL: none). */
Datum
ek_make_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

/* Column col (1-based) of row row of the last SPI result. */
Datum
ek_spi_value(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* The first column of the last SPI result, as a list of int4. */
List *
ek_spi_int_list(void)
{
	List	   *result = NIL;

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		result = lappend_int(result, DatumGetInt32(ek_spi_value(r, 1, &isnull)));
	}
	return result;
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL if it succeeded; if it
 * raised an error, rolls the subtransaction back and returns the error for
 * the caller to inspect (and rethrow with ReThrowError if it must).
 * Callers that are connected to SPI keep their connection.
 */
ErrorData *
ek_run_in_subtransaction(void (*fn) (void *arg), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/* "schema"."name" of a relation, quoted as needed. */
char *
ek_qualified_relname(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname;

	if (relname == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);
	nspname = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nspname, relname);
}

/* The owner of a relation: work on a user's objects runs as that role. */
Oid
ek_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The stream argument argno (regclass) of a SQL-callable function: its
 * OID; NULL is an error that says what to pass.
 */
Oid
ek_stream_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	return PG_GETARG_OID(argno);
}

/*
 * The stream argument argno, which must be a relation the current role
 * owns (or is a member of its owner): its OID, else the error.
 */
Oid
ek_owned_stream_arg(FunctionCallInfo fcinfo, int argno)
{
	Oid			relid = ek_stream_arg(fcinfo, argno);

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	return relid;
}

/*
 * The current user's right to use relation relid as mode needs (ACL_SELECT,
 * ACL_INSERT): the relation exists, and the user has USAGE on its schema
 * (which naming it in a statement needs, and a regclass given as an OID
 * skips) and mode on it; else the error PostgreSQL gives for each.
 */
void
ek_check_relation_access(Oid relid, AclMode mode)
{
	AclResult	aclresult;
	Oid			nspid;

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	nspid = get_rel_namespace(relid);
	aclresult = ek_namespace_aclcheck(nspid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_SCHEMA, get_namespace_name(nspid));
	aclresult = pg_class_aclcheck(relid, GetUserId(), mode);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(relid));
}
