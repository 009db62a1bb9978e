/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  Identity and erasure, orchestrated: each stream's <stream>_resolved
 *	  view, eventkit.resolve_user() and eventkit.forget_user().  The
 *	  identity graph itself is kept at ingest (pipeline/identity.c); its
 *	  rows, the suppressions and the erasure log are catalog/identity.c's.
 *
 *	  <stream>_resolved is the stream plus resolved_user_id, the canonical
 *	  user of the row's user_key (userId, else anonymousId), or user_key
 *	  itself when no event linked it: a LEFT JOIN on
 *	  eventkit.identity_links, so that a link stored after the events it
 *	  resolves applies to them at once.  It goes with the stream, as an
 *	  index does (its dependencies are automatic).  It belongs to the stream's owner,
 *	  who grants it like the stream; it reads identity_links with the
 *	  owner's rights, and the rows' policy lets whoever may read the stream
 *	  or the view see the stream's links (eventkit--1.4.sql).
 *
 *	  forget_user erases a user from a stream: with the stream locked
 *	  against ingest and the stream's identity lock held, it brings the
 *	  stream's rollups up to date (so that no delta still holds the
 *	  user's events), deletes the events of every id linked to the user
 *	  from the stream (as its owner), quarantine and conflicts, their ledger
 *	  entries and their links, rebuilds the rollup buckets the deleted
 *	  events were in, suppresses the ids (later events with them are
 *	  rejected, reason "suppressed") and logs the erasure.  On a Citus
 *	  coordinator, a distributed stream's workers erase their own copies
 *	  (quarantine, conflicts, links) and suppress the ids there too:
 *	  eventkit.forget_user_on_worker(), called on each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "rewrite/rewriteSupport.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/rel.h"

#include "catalog/cluster.h"
#include "catalog/identity.h"
#include "catalog/quarantine.h"
#include "catalog/streams.h"
#include "pipeline/dedup/dedup.h"
#include "pipeline/identity.h"
#include "pipeline/partition.h"
#include "rollup/refresh.h"
#include "stream/identity.h"
#include "util/compat.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_resolve_user);
PG_FUNCTION_INFO_V1(eventkit_forget_user);
PG_FUNCTION_INFO_V1(eventkit_forget_user_on_worker);
PG_FUNCTION_INFO_V1(eventkit_create_resolved_views);

#define RESOLVED_SUFFIX "_resolved"

/* "<stream>_resolved" (stream names leave room for the suffix) */
static char *
view_name(Oid stream_relid)
{
	return psprintf("%s" RESOLVED_SUFFIX, get_rel_name(stream_relid));
}

/*
 * The stream's resolved view, if there is one that reads the stream: its
 * rule depends on the stream (a restored dump's view) or, with automatic,
 * the view itself does (create_stream's: make_dependency_automatic below;
 * DROP TABLE of the stream drops that one).
 */
static Oid
resolved_view(Oid stream_relid, bool automatic)
{
	Oid			view = get_relname_relid(view_name(stream_relid),
										 get_rel_namespace(stream_relid));
	Oid			argtypes[3] = {OIDOID, OIDOID, BOOLOID};
	Datum		args[3];

	if (!OidIsValid(view) || get_rel_relkind(view) != RELKIND_VIEW)
		return InvalidOid;
	args[0] = ObjectIdGetDatum(view);
	args[1] = ObjectIdGetDatum(stream_relid);
	args[2] = BoolGetDatum(automatic);
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_depend d"
							  " WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
							  " AND d.refobjid OPERATOR(pg_catalog.=) $2"
							  " AND (($3 AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
							  " AND d.objid OPERATOR(pg_catalog.=) $1)"
							  " OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  " AND d.objid IN (SELECT r.oid FROM pg_catalog.pg_rewrite r"
							  " WHERE r.ev_class OPERATOR(pg_catalog.=) $1))) LIMIT 1",
							  3, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read a view's dependencies");
	return SPI_processed > 0 ? view : InvalidOid;
}

/*
 * Make the view's dependency on the stream automatic, as an index's on its
 * table (the view's, not its rule's, since the rule is internal to the
 * view): a plain DROP TABLE of the stream takes the view with it instead
 * of asking for CASCADE, as before streams had views.  Its dependency on
 * eventkit.identity_links stays ordinary: the view is the stream owner's
 * object, not the extension's (DROP EXTENSION ... CASCADE names it).  A
 * restored dump re-creates the view with ordinary dependencies:
 * drop_stream still drops it, a plain DROP TABLE then needs CASCADE.
 */
static void
make_dependency_automatic(Oid view, Oid stream_relid)
{
	Oid			rule = get_rewrite_oid(view, "_RETURN", false);
	Relation	depend = table_open(DependRelationId, RowExclusiveLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *refs = NIL;
	ListCell   *lc;
	ObjectAddress depender = {RelationRelationId, view, 0};

	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RewriteRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(rule));
	scan = systable_beginscan(depend, DependDependerIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->refclassid == RelationRelationId && d->deptype == DEPENDENCY_NORMAL &&
			d->refobjid == stream_relid)
		{
			ObjectAddress *ref = palloc(sizeof(ObjectAddress));

			ref->classId = RelationRelationId;
			ref->objectId = d->refobjid;
			ref->objectSubId = d->refobjsubid;
			refs = lappend(refs, ref);
		}
	}
	systable_endscan(scan);
	table_close(depend, RowExclusiveLock);

	deleteDependencyRecordsForSpecific(RewriteRelationId, rule, DEPENDENCY_NORMAL,
									   RelationRelationId, stream_relid);
	foreach(lc, refs)
		recordDependencyOn(&depender, (ObjectAddress *) lfirst(lc), DEPENDENCY_AUTO);
	CommandCounterIncrement();
}

/*
 * The query of the resolved view of a stream distributed on Citus: the
 * stream's links in a subquery.  (Citus's planner of a join between a
 * distributed table and a local one crashed the coordinator's backend,
 * segmentation fault in deconstruct_jointree, planning the view's LEFT JOIN
 * whose ON clause has the link table's stream_id; with the stream's links
 * in a subquery it sends them to the workers as an intermediate result and
 * joins there.  On one server the subquery is pulled up: the same plan.)
 */
static char *
distributed_view_sql(const char *columns, const char *qstream, int32 stream_id)
{
	return psprintf("SELECT %s,"
					" COALESCE(l.canonical_id, s.user_key) COLLATE pg_catalog.\"default\""
					" AS resolved_user_id"
					" FROM %s s LEFT JOIN (SELECT k.id, k.canonical_id"
					" FROM eventkit.identity_links k"
					" WHERE k.stream_id OPERATOR(pg_catalog.=) %d) l"
					" ON l.id OPERATOR(pg_catalog.=) s.user_key",
					columns, qstream, stream_id);
}

/*
 * A stream was distributed on Citus (distribute_stream, or
 * distribute_identity_graph for one distributed before 1.16): its resolved
 * view, if it has one, is made again with the query a distributed stream
 * needs (distributed_view_sql), the same columns, on this node only (the
 * coordinator's graph is the stream's: a worker has no resolved view), as
 * the stream's owner.  Caller: SPI connected, on the coordinator.
 */
void
ek_identity_distribute_view(Oid stream_relid, int32 stream_id)
{
	Oid			view = ek_identity_view_of(stream_relid);
	Relation	rel;
	TupleDesc	desc;
	StringInfoData cols;
	EkRoleScope as_owner;
	int			nest;

	if (!OidIsValid(view))
		return;
	/* the view's columns but the last (resolved_user_id), as they are */
	initStringInfo(&cols);
	rel = relation_open(view, AccessShareLock);
	desc = RelationGetDescr(rel);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (att->attisdropped || strcmp(NameStr(att->attname), "resolved_user_id") == 0)
			continue;
		appendStringInfo(&cols, "%ss.%s", cols.len > 0 ? ", " : "",
						 quote_identifier(NameStr(att->attname)));
	}
	relation_close(rel, AccessShareLock);

	ek_as_role_begin(&as_owner, ek_relation_owner(stream_relid), 0);
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.enable_ddl_propagation", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	ek_spi_exec(psprintf("CREATE OR REPLACE VIEW %s AS %s", ek_qualified_relname(view),
						 distributed_view_sql(cols.data, ek_qualified_relname(stream_relid),
											  stream_id)),
				SPI_OK_UTILITY);
	AtEOXact_GUC(true, nest);
	ek_as_role_end(&as_owner);
	CommandCounterIncrement();
}

/*
 * Create the stream's <stream>_resolved view as the stream's owner (who
 * owns it then).  A relation of that name that is already there is left
 * alone, with a warning.  Caller: SPI connected.
 */
void
ek_identity_create_view(Oid stream_relid, int32 stream_id)
{
	char	   *name = view_name(stream_relid);
	Oid			nspid = get_rel_namespace(stream_relid);
	char	   *qview = quote_qualified_identifier(get_namespace_name(nspid), name);
	char	   *qstream = ek_qualified_relname(stream_relid);
	EkRoleScope as_owner;

	if (OidIsValid(get_relname_relid(name, nspid)))
	{
		ereport(WARNING,
				(errmsg("stream \"%s\" has no resolved view: relation \"%s\" already exists",
						get_rel_name(stream_relid), name),
				 errhint("Rename that relation and run eventkit.create_resolved_views().")));
		return;
	}
	ek_as_role_begin(&as_owner, ek_relation_owner(stream_relid), 0);
	if (ek_citus_table_kind(stream_relid) == EK_CITUS_HASH)
		ek_spi_exec(psprintf("CREATE VIEW %s AS %s", qview,
							 distributed_view_sql("s.*", qstream, stream_id)),
					SPI_OK_UTILITY);
	else
		ek_spi_exec(psprintf("CREATE VIEW %s AS SELECT s.*,"
							 " COALESCE(l.canonical_id, s.user_key) COLLATE pg_catalog.\"default\""
							 " AS resolved_user_id"
							 " FROM %s s LEFT JOIN eventkit.identity_links l"
							 " ON l.stream_id OPERATOR(pg_catalog.=) %d"
							 " AND l.id OPERATOR(pg_catalog.=) s.user_key",
							 qview, qstream, stream_id),
					SPI_OK_UTILITY);
	CommandCounterIncrement();
	make_dependency_automatic(get_relname_relid(name, nspid), stream_relid);
	ek_spi_exec(psprintf("COMMENT ON VIEW %s IS %s", qview,
						 quote_literal_cstr(psprintf("the stream %s with resolved_user_id, the canonical user of each event (eventkit identity graph)",
													 qstream))),
				SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
}

/*
 * The stream's resolved view, or InvalidOid (owner_change.c gives it to the
 * stream's new owner): by its name, or, the stream or the view renamed
 * since, as the view that create_stream made automatically dependent on
 * the stream (make_dependency_automatic: no other view is).  Caller: SPI
 * connected.
 */
Oid
ek_identity_view_of(Oid stream_relid)
{
	Oid			view = resolved_view(stream_relid, true);
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(stream_relid)};
	bool		isnull;

	if (OidIsValid(view))
		return view;
	if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_depend d"
							  " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid"
							  " WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
							  " AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
							  " AND d.refobjid OPERATOR(pg_catalog.=) $1"
							  " AND d.deptype OPERATOR(pg_catalog.=) 'a'"
							  " AND c.relkind OPERATOR(pg_catalog.=) 'v' ORDER BY c.oid LIMIT 1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read a stream's dependencies");
	if (SPI_processed == 0)
		return InvalidOid;
	return DatumGetObjectId(ek_spi_value(0, 1, &isnull));
}

/*
 * Drop the stream's resolved view, if it has one that DROP TABLE of the
 * stream would not drop (a restored dump's).  Caller: SPI connected.
 */
void
ek_identity_drop_view(Oid stream_relid)
{
	Oid			view = resolved_view(stream_relid, false);

	if (OidIsValid(view))
		ek_spi_exec(psprintf("DROP VIEW %s", ek_qualified_relname(view)), SPI_OK_UTILITY);
}

static void
check_installed(void)
{
	if (!ek_identity_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the identity graph needs eventkit 1.4's catalog"),
				 errhint("Run ALTER EXTENSION eventkit UPDATE.")));
}

/* The stream's catalog row; the relation must be a stream. */
static void
read_stream(Oid relid, StreamInfo *stream)
{
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_streams_read(relid, stream, true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an eventkit stream", get_rel_name(relid)),
				 errhint("Streams are listed in eventkit.streams.")));
}

/*
 * eventkit.resolve_user(stream regclass, id text) RETURNS text
 *
 * The canonical user of id in the stream; id itself when no event linked
 * it (an unknown id is its own user, as in <stream>_resolved).  The caller
 * needs SELECT on the stream.
 */
Datum
eventkit_resolve_user(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	text	   *id = PG_GETARG_TEXT_PP(1);
	StreamInfo	stream;
	char	   *canonical;
	AclResult	aclresult;

	check_installed();
	SPI_connect();
	read_stream(relid, &stream);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(relid));
	canonical = ek_identity_resolve(stream.stream_id, text_to_cstring(id));
	SPI_finish();
	if (canonical == NULL)
		PG_RETURN_TEXT_P(id);
	PG_RETURN_TEXT_P(cstring_to_text(canonical));
}

/* Delete the events carrying one of ids from the stream, as its owner. */
static int64
delete_events(Oid relid, Datum ids, Datum *ts, bool *ts_null)
{
	EkRoleScope as_owner;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {ids};
	int64		n;

	ek_as_role_begin(&as_owner, ek_relation_owner(relid), 0);
	if (SPI_execute_with_args(psprintf("WITH d AS (DELETE FROM %s s"
									   " WHERE s.user_id OPERATOR(pg_catalog.=) ANY ($1)"
									   " OR s.anonymous_id OPERATOR(pg_catalog.=) ANY ($1)"
									   " RETURNING s.ts)"
									   " SELECT pg_catalog.count(*), pg_catalog.array_agg(DISTINCT d.ts) FROM d",
									   ek_qualified_relname(relid)),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not delete a user's events");
	n = DatumGetInt64(ek_spi_value(0, 1, ts_null));
	*ts = ek_spi_value(0, 2, ts_null);
	if (!*ts_null)
		*ts = PointerGetDatum(DatumGetArrayTypePCopy(*ts));
	ek_as_role_end(&as_owner);
	return n;
}

/*
 * forget_user of a distributed stream, on the coordinator: the workers'
 * part.  Each worker keeps its own quarantine, conflicts, identity links
 * and suppressions of the stream (ingest there writes them), so every
 * worker runs eventkit.forget_user_on_worker() with the ids, as the caller
 * (Citus's run_command_on_workers: a connection of its own to each, one
 * after the other), and its counts are added to the log.  Each worker's
 * part commits on its own, before this transaction: run last, just before
 * the log, so that what fails after it is little.  A worker not reached,
 * or whose part failed, fails the erasure (an erasure that left a worker's
 * copies would say it was done): run it again when the worker is back.
 * Caller: SPI connected, as the caller.
 */
static void
forget_on_workers(Oid relid, Datum ids, ErasureLog *log)
{
	char	   *command;
	EkCitusResult *results;
	int			nresults;

	command = psprintf("SELECT f.quarantined::pg_catalog.text OPERATOR(pg_catalog.||) ','"
					   " OPERATOR(pg_catalog.||) f.conflicts::pg_catalog.text"
					   " FROM eventkit.forget_user_on_worker(%s::pg_catalog.regclass,"
					   " %s::pg_catalog.text[], %lld) f",
					   quote_literal_cstr(ek_qualified_relname(relid)),
					   quote_literal_cstr(OidOutputFunctionCall(F_ARRAY_OUT, ids)),
					   (long long) log->erasure_id);
	results = ek_citus_run_on_workers(command, false, &nresults);
	for (int i = 0; i < nresults; i++)
	{
		long long	quarantined;
		long long	conflicts;

		CHECK_FOR_INTERRUPTS();
		if (!results[i].ok ||
			sscanf(results[i].result, "%lld,%lld", &quarantined, &conflicts) != 2)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not erase the user on Citus worker %s:%d",
							results[i].node, results[i].port),
					 errdetail("%s", results[i].result),
					 errhint("Each worker keeps its own quarantine, conflicts, identity links and suppressions of the stream: "
							 "call eventkit.forget_user again when every worker can be reached.")));
		log->quarantined += quarantined;
		log->conflicts += conflicts;
	}
}

/*
 * eventkit.forget_user_on_worker(stream regclass, ids text[], erasure_id
 *	 bigint, OUT quarantined bigint, OUT conflicts bigint) RETURNS record
 *
 * On a Citus worker, forget_user's part there (forget_on_workers calls it
 * from the coordinator): deletes the rows of this node's quarantine and
 * conflicts of the distributed stream that carry one of the ids, and the
 * ids' identity links here, and suppresses the ids here (ingest on this
 * worker checks this node's suppressions), recorded with the
 * coordinator's erasure id.  Returns the rows deleted.  The stream's
 * owner (or a superuser) only; the stream and its rows stay locked by
 * the coordinator's forget_user meanwhile, which this does not wait for
 * (it takes no lock on the stream).
 */
Datum
eventkit_forget_user_on_worker(PG_FUNCTION_ARGS)
{
	Oid			relid = ek_owned_stream_arg(fcinfo, 0);
	StreamInfo	stream;
	Datum		ids;
	int64		erasure_id;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ids and erasure_id must not be null"),
				 errhint("eventkit.forget_user on the coordinator passes them: call it there.")));
	ids = PG_GETARG_DATUM(1);
	erasure_id = PG_GETARG_INT64(2);
	check_installed();
	if (ek_citus_table_kind(relid) != EK_CITUS_HASH || !ek_citus_on_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forget_user_on_worker runs on a Citus worker, for a distributed stream"),
				 errdetail("It is forget_user's part on each worker; \"%s\" is not a distributed stream here, or this is not a Citus worker.",
						   get_rel_name(relid)),
				 errhint("Call eventkit.forget_user on the coordinator.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "eventkit: forget_user_on_worker must return a record");

	SPI_connect();
	/* the worker's catalog row of the stream, under the cluster-wide id */
	ek_cluster_sync_local(relid);
	read_stream(relid, &stream);
	ek_identity_lock(stream.stream_id);
	values[0] = Int64GetDatum(ek_quarantine_forget_ids(stream.stream_id, ids));
	values[1] = Int64GetDatum(ek_conflicts_forget_ids(stream.stream_id, ids));
	(void) ek_identity_links_forget(stream.stream_id, ids);
	ek_suppressions_add(stream.stream_id, ids, erasure_id);
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * eventkit.forget_user(stream regclass, user_id text) RETURNS bigint
 *
 * Erase a user (every id linked to user_id) from a stream; returns the
 * events deleted (stream, quarantine and conflicts together).  The stream's
 * owner (or a superuser) only.
 */
Datum
eventkit_forget_user(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *user_id;
	StreamInfo	stream;
	char	   *canonical;
	List	   *members;
	Datum	   *elems;
	int			nids = 0;
	Datum		ids;
	List	   *rollups;
	Datum		ts;
	bool		ts_null;
	ErasureLog	log;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null"),
				 errhint("Pass the userId (or any id linked to it) of the user to erase.")));
	relid = PG_GETARG_OID(0);
	user_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_installed();
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!ek_owns_relation(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of stream \"%s\" to erase a user", get_rel_name(relid)),
				 errdetail("forget_user deletes every role's events of the user from the stream, its quarantine and its rollups."),
				 errhint("Ask the stream's owner or a superuser.")));

	/* no ingest until this commits; in-flight ones end first */
	LockRelationOid(relid, ShareRowExclusiveLock);
	SPI_connect();
	/*
	 * A distributed stream: on every node (Citus propagates the lock), so
	 * that no worker's batch commits between the rollups' catch-up and the
	 * rebuild of their buckets (rollup/refresh.c)
	 */
	if (ek_citus_table_kind(relid) == EK_CITUS_HASH && !ek_citus_on_worker())
		ek_spi_exec(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
							 ek_qualified_relname(relid)),
					SPI_OK_UTILITY);
	read_stream(relid, &stream);
	ek_identity_lock(stream.stream_id);

	/*
	 * Read from here on with a snapshot taken now: an ingest that was in
	 * flight ended while this waited for the locks (on one server, or on a
	 * worker of a distributed stream), and its links, events and quarantine
	 * rows are then committed.  The statement's snapshot, older, missed
	 * them: the set's ids that such a call linked were left out (TAP
	 * 067_citus_forget_inflight.pl: its anonymous id not suppressed).
	 */
	PushActiveSnapshot(GetTransactionSnapshot());

	/* the user's ids: every id of its set, and the id asked for */
	canonical = ek_identity_resolve(stream.stream_id, user_id);
	if (canonical == NULL)
		canonical = user_id;
	members = ek_identity_members(stream.stream_id, canonical);
	elems = palloc(sizeof(Datum) * (list_length(members) + 2));
	elems[nids++] = CStringGetTextDatum(user_id);
	if (strcmp(canonical, user_id) != 0)
		elems[nids++] = CStringGetTextDatum(canonical);
	foreach(lc, members)
	{
		char	   *m = lfirst(lc);

		if (strcmp(m, user_id) != 0 && strcmp(m, canonical) != 0)
			elems[nids++] = CStringGetTextDatum(m);
	}
	ids = ek_make_array(elems, NULL, nids, TEXTOID);

	/* rollups up to date, so that only stream rows hold the events */
	rollups = ek_rollups_catch_up(stream.stream_id);

	/* an ingest may wait for the rows deleted below (pipeline/partition.c) */
	ek_placement_note_ingest_writes();
	memset(&log, 0, sizeof(log));
	log.stream_id = stream.stream_id;
	log.stream_name = ek_qualified_relname(relid);
	log.user_id = user_id;
	log.ids = ids;
	log.events = delete_events(relid, ids, &ts, &ts_null);
	log.quarantined = ek_quarantine_forget_ids(stream.stream_id, ids);
	log.conflicts = ek_conflicts_forget_ids(stream.stream_id, ids);
	log.ledger_rows = ek_dedup_forget_keys(stream.stream_id, ids);
	if (!ts_null)
		log.rollup_buckets = ek_rollups_rebuild_buckets(rollups, ts);
	(void) ek_identity_links_forget(stream.stream_id, ids);

	log.erasure_id = ek_erasures_next_id();
	if (ek_citus_table_kind(relid) == EK_CITUS_HASH && !ek_citus_on_worker())
		forget_on_workers(relid, ids, &log);
	ek_erasures_log(&log);
	ek_suppressions_add(stream.stream_id, ids, log.erasure_id);
	PopActiveSnapshot();
	SPI_finish();

	PG_RETURN_INT64(log.events + log.quarantined + log.conflicts);
}

/*
 * eventkit_internal.create_resolved_views(): the 1.3 -> 1.4 update gives
 * every stream its resolved view.  The views are the streams' owners'
 * objects, not the extension's: they are made outside the extension's
 * membership, as create_stream makes them.  Returns how many were made.
 */
Datum
eventkit_create_resolved_views(PG_FUNCTION_ARGS)
{
	bool		save_creating = creating_extension;
	int			made = 0;

	SPI_connect();
	PG_TRY();
	{
		ListCell   *lc;

		creating_extension = false;
		foreach(lc, ek_streams_relids())
		{
			Oid			relid = lfirst_oid(lc);
			StreamInfo	stream;

			if (get_rel_name(relid) == NULL || OidIsValid(resolved_view(relid, true)) ||
				!ek_streams_read(relid, &stream, true))
				continue;
			ek_identity_create_view(relid, stream.stream_id);
			made++;
		}
	}
	PG_FINALLY();
	{
		creating_extension = save_creating;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT32(made);
}
