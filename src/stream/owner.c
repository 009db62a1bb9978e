/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  What follows a stream to its new owner after ALTER TABLE ... OWNER
 *	  TO: its partitions (every level: the time partitions and their hash
 *	  leaves) and its <stream>_resolved view.  PostgreSQL changes the owner
 *	  of the partitioned table alone; eventkit made the partitions and the
 *	  view as the stream's owner and works on them as that role (retention
 *	  drops partitions, the view reads the stream with its owner's rights),
 *	  so left with the old owner they fail the new one: retention with
 *	  "permission denied for table <partition>", the view with "permission
 *	  denied for view".
 *
 *	  From the utility hook (worker/launcher.c), after the statement, in
 *	  its transaction.  Each object follows with the rights of the role
 *	  that ran the ALTER TABLE (ALTER ... OWNER TO's own checks), and only
 *	  an object that role may give away: one it owns (as a member of its
 *	  owner's role) or any, for a superuser.  An object owned by some other
 *	  role stays where it is.  A stream distributed on Citus:
 *	  distribute.c's ek_citus_stream_owner_changed moves its partitions and
 *	  its ledger (through Citus, superusers only); this moves its view.
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

#include "catalog/streams.h"
#include "stream/identity.h"
#include "stream/owner.h"
#include "util/citus.h"
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
 * After a utility statement: when it was ALTER TABLE ... OWNER TO of an
 * eventkit stream, its partitions (on one node) and its resolved view go
 * to the stream's new owner.
 */
void
ek_stream_owner_changed(Node *parsetree)
{
	AlterTableStmt *stmt;
	ListCell   *lc;
	bool		changes_owner = false;
	Oid			relid;
	Oid			owner;
	Oid			view;
	StreamInfo	stream;

	if (parsetree == NULL || !IsA(parsetree, AlterTableStmt))
		return;
	stmt = (AlterTableStmt *) parsetree;
	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL)
		return;
	foreach(lc, stmt->cmds)
		if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ChangeOwner)
			changes_owner = true;
	if (!changes_owner || !OidIsValid(get_extension_oid("eventkit", true)))
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;

	SPI_connect();
	if (ek_streams_read(relid, &stream, true))
	{
		owner = ek_relation_owner(relid);

		/*
		 * On Citus, distribute.c gives a distributed stream's partitions
		 * (and their shards) with its ledger; a worker's copy of it is
		 * Citus's to change.
		 */
		if (!ek_citus_installed() || ek_citus_table_kind(relid) != EK_CITUS_HASH)
		{
			List	   *parts = find_all_inheritors(relid, NoLock, NULL);

			foreach(lc, parts)
				if (lfirst_oid(lc) != relid)
					follow(lfirst_oid(lc), owner, "TABLE");
		}
		view = ek_identity_view_of(relid);
		if (OidIsValid(view))
			follow(view, owner, "VIEW");
	}
	SPI_finish();
}
