/*-------------------------------------------------------------------------
 *
 * owner_change.c
 *	  What follows a stream or a rollup to its new owner after ALTER TABLE
 *	  ... OWNER TO.  A stream: its partitions (every level: the time
 *	  partitions and their hash leaves) and its <stream>_resolved view.  A
 *	  rollup table: its delta table, its worker delta table (a rollup of a
 *	  distributed stream) and its realtime view.  PostgreSQL changes the
 *	  owner of the table named alone; eventkit made the others as the same
 *	  owner and works on them as that role (retention drops partitions, a
 *	  refresh reads and deletes delta rows, a view reads with its owner's
 *	  rights), so left with the old owner they fail the new one: retention
 *	  with "permission denied for table <partition>", the views with
 *	  "permission denied for view".
 *
 *	  From the utility hook (worker/launcher.c), after the statement, in
 *	  its transaction.  Each object follows with the rights of the role
 *	  that ran the ALTER TABLE (ALTER ... OWNER TO's own checks), and only
 *	  an object that role may give away: one it owns (as a member of its
 *	  owner's role) or any, for a superuser.  An object owned by some other
 *	  role stays where it is.  A stream distributed on Citus: distribute.c's
 *	  ek_citus_stream_owner_changed gives its ledger first (superusers
 *	  only), then its partitions follow here, through Citus, on the
 *	  coordinator.  Restricted and with search_path pinned (a role scope
 *	  as the current role).
 *	  The rollups of a stream are objects of their own and keep their
 *	  owners.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog/rollups.h"
#include "catalog/streams.h"
#include "rollup/delta.h"
#include "stream/identity.h"
#include "stream/owner_change.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

/* Give relid to owner when it has another and the current role may. */
static void
follow(Oid relid, Oid owner, const char *kind)
{
	if (ek_relation_owner(relid) == owner || !pg_class_ownercheck(relid, GetUserId()))
		return;
	ek_spi_exec(psprintf("ALTER %s %s OWNER TO %s", kind, ek_qualified_relname(relid),
						 quote_identifier(GetUserNameFromId(owner, false))),
				SPI_OK_UTILITY);
}

/*
 * The table whose owner a utility statement changed, when it was ALTER
 * TABLE ... OWNER TO in a database with eventkit; else InvalidOid.
 */
Oid
ek_owner_change_target(Node *parsetree)
{
	AlterTableStmt *stmt;
	ListCell   *lc;
	bool		changes_owner = false;

	if (parsetree == NULL || !IsA(parsetree, AlterTableStmt))
		return InvalidOid;
	stmt = (AlterTableStmt *) parsetree;
	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL)
		return InvalidOid;
	foreach(lc, stmt->cmds)
		if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ChangeOwner)
			changes_owner = true;
	if (!changes_owner || !OidIsValid(get_extension_oid("eventkit", true)))
		return InvalidOid;
	return RangeVarGetRelid(stmt->relation, NoLock, true);
}

/* A rollup table's delta tables and realtime view go to its owner. */
static void
follow_rollup(Oid relid, const RollupRow *rollup)
{
	Oid			owner = ek_relation_owner(relid);
	Oid			delta = ek_rollup_delta_relid(relid);
	Oid			wdelta = ek_rollup_wdelta_relid(relid);

	if (OidIsValid(delta))
		follow(delta, owner, "TABLE");
	if (OidIsValid(wdelta))
		follow(wdelta, owner, "TABLE");
	if (OidIsValid(rollup->view) && get_rel_relkind(rollup->view) == RELKIND_VIEW)
		follow(rollup->view, owner, "VIEW");
}

/*
 * After a utility statement: when it was ALTER TABLE ... OWNER TO of an
 * eventkit stream, its partitions and its resolved view go
 * to the stream's new owner; of a rollup table, its delta tables and
 * realtime view.
 */
void
ek_stream_owner_changed(Node *parsetree)
{
	Oid			relid = ek_owner_change_target(parsetree);
	Oid			owner;
	Oid			view;
	StreamInfo	stream;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;
	if (get_rel_relkind(relid) == RELKIND_RELATION)
	{
		RollupRow	rollup;

		SPI_connect();
		if (ek_rollups_installed() && ek_rollups_read(relid, false, &rollup))
		{
			EkRoleScope as_caller;

			ek_as_role_begin(&as_caller, GetUserId(), 0);
			follow_rollup(relid, &rollup);
			ek_as_role_end(&as_caller);
		}
		SPI_finish();
		return;
	}
	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;

	SPI_connect();
	if (ek_streams_read(relid, &stream, true))
	{
		EkRoleScope as_caller;

		owner = ek_relation_owner(relid);
		ek_as_role_begin(&as_caller, GetUserId(), 0);

		/*
		 * A distributed stream's partitions through Citus (each ALTER goes
		 * to the shards), after distribute.c gave its ledger; on a worker
		 * Citus replays the coordinator's ALTERs
		 */
		if (!ek_citus_installed() || ek_citus_table_kind(relid) != EK_CITUS_HASH ||
			!ek_citus_on_worker())
		{
			List	   *parts = find_all_inheritors(relid, NoLock, NULL);

			foreach(lc, parts)
				if (lfirst_oid(lc) != relid)
					follow(lfirst_oid(lc), owner, "TABLE");
		}
		view = ek_identity_view_of(relid);
		if (OidIsValid(view))
			follow(view, owner, "VIEW");
		ek_as_role_end(&as_caller);
	}
	SPI_finish();
}
