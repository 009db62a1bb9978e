/*-------------------------------------------------------------------------
 *
 * owner.h
 *	  Acting as another role (owner.c): the one executor of catalog
 *	  statements, which runs them as the extension owner, and the scope in
 *	  which work on a user's object runs as that object's owner.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_OWNER_H
#define EK_UTIL_OWNER_H

#include "postgres.h"

#include "executor/spi.h"

/*
 * A role scope: from ek_as_role_begin() to ek_as_role_end(), the current
 * user is role, under SECURITY_RESTRICTED_OPERATION, with search_path
 * pg_catalog, pg_temp; any setting changed meanwhile is undone at the end.
 */
typedef struct EkRoleScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;		/* 0: nothing to undo (already in place) */
} EkRoleScope;

/* ek_as_role_begin() flags */
#define EK_AS_LOCK_TIMEOUT	0x01	/* lock_timeout = maintenance_lock_timeout */

extern void ek_as_role_begin(EkRoleScope *scope, Oid role, int flags);
extern void ek_as_owner_begin(EkRoleScope *scope);
extern void ek_as_role_end(EkRoleScope *scope);

extern Oid	ek_extension_namespace(bool missing_ok);
extern Oid	ek_extension_owner(void);

/*
 * A statement on eventkit's catalog: its SQL (schema-qualified, values as
 * $n parameters of argtypes), the SPI result it must give, and the plan
 * kept after its first run.  Declared static by the catalog module that
 * owns the table, run with ek_stmt_run().
 */
#define EK_STMT_MAX_ARGS 16

typedef struct EkStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[EK_STMT_MAX_ARGS];
	int			expected;		/* SPI_OK_SELECT, SPI_OK_INSERT, ... */
	int			flags;			/* EK_STMT_* */
	SPIPlanPtr	plan;			/* kept after the first run */
} EkStatement;

#define EK_STMT_READ_ONLY		0x01	/* no writes: SPI read_only */
#define EK_STMT_LATEST_SNAPSHOT	0x02	/* run with the latest snapshot */
#define EK_STMT_ONE_ROW			0x04	/* exactly one row, else an error */

extern uint64 ek_stmt_run(EkStatement *stmt, Datum *values, const char *nulls);

#endif							/* EK_UTIL_OWNER_H */
