/*-------------------------------------------------------------------------
 *
 * spi.h
 *	  Small SPI helpers every layer uses (spi.c): running a statement built
 *	  at run time (DDL on a user's or eventkit's own tables), keeping a
 *	  plan, arrays for SPI arguments, reading a result, running a function
 *	  in a subtransaction, and names and owners of relations.
 *
 *	  Statements on eventkit's catalog (eventkit.*) do not use these
 *	  directly: they are EkStatements run by the owner executor (owner.h),
 *	  in the catalog layer (src/catalog/).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_SPI_H
#define EK_UTIL_SPI_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

extern void ek_spi_exec(const char *sql, int expected);
extern SPIPlanPtr ek_keep_plan(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr ek_keep_generic_plan(const char *sql, int nargs, Oid *argtypes);
extern Datum ek_make_array(Datum *elems, bool *nulls, int n, Oid elemtype);
extern Datum ek_spi_value(uint64 row, int col, bool *isnull);
extern List *ek_spi_int_list(void);
extern ErrorData *ek_run_in_subtransaction(void (*fn) (void *arg), void *arg);
extern char *ek_qualified_relname(Oid relid);
extern Oid	ek_relation_owner(Oid relid);
extern Oid	ek_stream_arg(FunctionCallInfo fcinfo, int argno);
extern Oid	ek_owned_stream_arg(FunctionCallInfo fcinfo, int argno);
extern void ek_check_relation_access(Oid relid, AclMode mode);

#define EK_TEXT_OR_NULL(s) ((s) ? PointerGetDatum(cstring_to_text(s)) : (Datum) 0)
#define EK_JSONB_OR_NULL(j) ((j) ? JsonbPGetDatum(j) : (Datum) 0)

#endif							/* EK_UTIL_SPI_H */
