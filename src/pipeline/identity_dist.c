/*-------------------------------------------------------------------------
 *
 * identity_dist.c
 *	  The identity graph of a stream distributed on Citus: one graph, the
 *	  coordinator's, holding the links of every node's calls.
 *
 *	  A call on a worker links its batch's ids in the worker's own graph
 *	  (identity.c, as on one server) and sends the same links, in order,
 *	  to the coordinator: one INSERT, through Citus, in the call's
 *	  distributed transaction, as the stream's owner, into the stream's
 *	  worker links table eventkit_ledgers.worker_links_<stream_id>, a Citus
 *	  local table on the coordinator (made by distribute_stream, or for a
 *	  stream distributed before 1.16 by eventkit.distribute_identity_graph,
 *	  owned by the stream's owner, dropped with the stream).  An AFTER
 *	  INSERT statement trigger on it (Citus puts it on the table's shard,
 *	  the coordinator table the rows go to, and fires it there in the
 *	  call's distributed transaction, as the role Citus connected as:
 *	  measured, docs/citus.md) applies the statement's links to the
 *	  coordinator's graph with the identity stage itself, taking the
 *	  stream's identity lock there, and deletes the rows it applied.  So
 *	  the coordinator's graph has a worker call's links exactly when the
 *	  call commits (a call that rolls back leaves none), merged by the same
 *	  union-find in the same order as one server's, and concurrent calls on
 *	  two workers link one after the other under the coordinator's lock.
 *
 *	  Lock order: a worker's call sends its links to the coordinator (which
 *	  may take the coordinator's identity lock) before it links them in its
 *	  own graph (which may take the worker's), the order in which
 *	  forget_user on the coordinator takes them (its own, then each
 *	  worker's through forget_user_on_worker, a connection of its own that
 *	  no deadlock detector would tie to the call).
 *
 *	  Only a call on a worker pays for this (ingest.c calls
 *	  ek_identity_forward_links only for a distributed stream on a worker);
 *	  a call on one server or on the coordinator is unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "catalog/identity.h"
#include "catalog/streams.h"
#include "pipeline/identity.h"
#include "pipeline/identity_dist.h"
#include "util/citus.h"
#include "util/owner.h"
#include "util/spi.h"

#define LINKS_SCHEMA "eventkit_ledgers"
#define LINKS_PREFIX "worker_links_"

PG_FUNCTION_INFO_V1(eventkit_apply_worker_links);

/* One link of a worker's batch, as the trigger reads it back. */
typedef struct WorkerLink
{
	int64		batch;
	int64		seq;
	char	   *from;
	char	   *to;
	bool		alias;
	TimestampTz ts;
} WorkerLink;

/* The worker links table of a stream (InvalidOid if there is none). */
Oid
ek_identity_worker_links_relid(int32 stream_id)
{
	Oid			nsp = get_namespace_oid(LINKS_SCHEMA, true);
	char		name[NAMEDATALEN];

	if (!OidIsValid(nsp))
		return InvalidOid;
	snprintf(name, sizeof(name), LINKS_PREFIX "%d", stream_id);
	return get_relname_relid(name, nsp);
}

/*
 * Does this database's eventkit catalog have what a worker links table
 * needs (the schema eventkit_ledgers, 1.11, and the trigger function
 * eventkit.apply_worker_links, 1.16)?  A stream distributed on an older
 * catalog (the new library before ALTER EXTENSION eventkit UPDATE) gets
 * none, as before 1.16: its workers' calls link in their own graphs until
 * eventkit.distribute_identity_graph makes it.
 */
bool
ek_identity_worker_links_supported(void)
{
	List	   *name = list_make2(makeString("eventkit"), makeString("apply_worker_links"));

	return OidIsValid(get_namespace_oid(LINKS_SCHEMA, true)) &&
		OidIsValid(LookupFuncName(name, 0, NULL, true));
}

/*
 * Make the worker links table of distributed stream stream_relid (or, on a
 * coordinator, of one being distributed): a Citus local table owned by
 * the stream's owner, its trigger applying the links to this node's graph,
 * dropped with the stream.  Caller: SPI connected, on the coordinator, a
 * superuser (distribute_stream's caller); before the transaction reaches
 * a node over several connections (Citus adds a local table to its
 * metadata only then, as for the rollups' worker delta tables).
 */
void
ek_identity_make_worker_links(int32 stream_id, Oid stream_relid)
{
	char		name[NAMEDATALEN];
	char	   *q;
	Oid			relid;
	ObjectAddress table;
	ObjectAddress links;

	if (!OidIsValid(get_namespace_oid(LINKS_SCHEMA, true)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("eventkit's catalog has no schema %s", LINKS_SCHEMA),
				 errdetail("The identity graph of a distributed stream needs its worker links table there."),
				 errhint("Run ALTER EXTENSION eventkit UPDATE on the coordinator (Citus updates every worker with it), then try again.")));
	snprintf(name, sizeof(name), LINKS_PREFIX "%d", stream_id);
	q = quote_qualified_identifier(LINKS_SCHEMA, name);
	/* one left by a restored dump (the stream is not a Citus table yet) */
	ek_identity_drop_worker_links(stream_id);
	CommandCounterIncrement();
	ek_spi_exec(psprintf("CREATE TABLE %s ("
						 " batch pg_catalog.int8 NOT NULL,"
						 " seq pg_catalog.int8 NOT NULL,"
						 " from_id pg_catalog.text COLLATE \"C\" NOT NULL,"
						 " to_id pg_catalog.text COLLATE \"C\" NOT NULL,"
						 " alias pg_catalog.bool NOT NULL,"
						 " ts pg_catalog.timestamptz NOT NULL)", q),
				SPI_OK_UTILITY);
	ek_spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", q,
						 quote_identifier(GetUserNameFromId(ek_relation_owner(stream_relid), false))),
				SPI_OK_UTILITY);
	CommandCounterIncrement();
	ek_spi_exec(psprintf("SELECT pg_catalog.citus_add_local_table_to_metadata(%s)",
						 quote_literal_cstr(q)),
				SPI_OK_SELECT);
	CommandCounterIncrement();
	ek_spi_exec(psprintf("CREATE TRIGGER apply_links AFTER INSERT ON %s"
						 " REFERENCING NEW TABLE AS links FOR EACH STATEMENT"
						 " EXECUTE FUNCTION eventkit.apply_worker_links('%d')", q, stream_id),
				SPI_OK_UTILITY);
	CommandCounterIncrement();

	/* dropped with the stream (recorded on the table Citus left: its shell) */
	relid = ek_identity_worker_links_relid(stream_id);
	if (!OidIsValid(relid))
		elog(ERROR, "eventkit: the worker links table %s was not made", q);
	ObjectAddressSet(table, RelationRelationId, stream_relid);
	ObjectAddressSet(links, RelationRelationId, relid);
	recordDependencyOn(&links, &table, DEPENDENCY_AUTO);
}

/*
 * Drop the stream's worker links table, if there is one (undistribute_stream
 * of a stream restored from a coordinator's dump, which holds it as a plain
 * table; distribute_stream before it makes the table again).  Caller: SPI
 * connected, the stream not a Citus table.
 */
void
ek_identity_drop_worker_links(int32 stream_id)
{
	Oid			relid = ek_identity_worker_links_relid(stream_id);

	if (OidIsValid(relid))
		ek_spi_exec(psprintf("DROP TABLE %s", ek_qualified_relname(relid)), SPI_OK_UTILITY);
}

/*
 * The stream changed owner (on the coordinator, by a superuser:
 * distribute.c): its worker links table follows (Citus propagates the
 * ALTER TABLE to the table's shard).  Caller: SPI connected.
 */
void
ek_identity_worker_links_follow_owner(int32 stream_id, Oid stream_relid)
{
	Oid			relid = ek_identity_worker_links_relid(stream_id);
	Oid			owner = ek_relation_owner(stream_relid);

	if (!OidIsValid(relid) || ek_relation_owner(relid) == owner)
		return;
	ek_spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", ek_qualified_relname(relid),
						 quote_identifier(GetUserNameFromId(owner, false))),
				SPI_OK_UTILITY);
}

/*
 * On a Citus worker, before the identity stage links the n stored events
 * of batch batch_id of distributed stream in this node's graph: send the
 * same links, in the same order, to the coordinator's graph (the header
 * says how, and why first).  A stream distributed before 1.16 has no
 * worker links table until eventkit.distribute_identity_graph made it:
 * its calls link in this node's graph only, as 1.15 did (ingest goes on
 * after an upgrade; that function then takes in what the workers linked).
 * Caller: SPI connected, as the ingesting role.
 */
void
ek_identity_forward_links(const StreamInfo *stream, SegmentEvent **events, int n,
						  int64 batch_id)
{
	Datum	   *from = NULL;
	Datum	   *to = NULL;
	Datum	   *alias = NULL;
	Datum	   *ts = NULL;
	int			nlinks = 0;
	Oid			relid;
	Oid			argtypes[5] = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
	TIMESTAMPTZARRAYOID};
	Datum		args[5];
	EkRoleScope as_owner;
	int			rc;

	if (n == 0 || !ek_identity_installed())
		return;
	/* the links of identity.c's ek_identity_link_events, in its order */
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = events[i];

		if (ev->user_id == NULL)
			continue;
		for (int k = 0; k < 2; k++)
		{
			const char *f = k == 0 ? ev->anonymous_id : ev->previous_id;

			if (f == NULL || strcmp(f, ev->user_id) == 0 ||
				(k == 1 && strcmp(ev->type, "alias") != 0))
				continue;
			if (from == NULL)
			{
				from = palloc(sizeof(Datum) * 2 * n);
				to = palloc(sizeof(Datum) * 2 * n);
				alias = palloc(sizeof(Datum) * 2 * n);
				ts = palloc(sizeof(Datum) * 2 * n);
			}
			from[nlinks] = CStringGetTextDatum(f);
			to[nlinks] = CStringGetTextDatum(ev->user_id);
			alias[nlinks] = BoolGetDatum(k == 1);
			ts[nlinks] = TimestampTzGetDatum(ev->ts);
			nlinks++;
		}
	}
	if (nlinks == 0)
		return;

	relid = ek_identity_worker_links_relid(stream->stream_id);
	if (!OidIsValid(relid))
		return;

	args[0] = Int64GetDatum(batch_id | ((int64) ek_citus_local_group() << 48));
	args[1] = PointerGetDatum(construct_array(from, nlinks, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(to, nlinks, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(alias, nlinks, BOOLOID, 1, true, TYPALIGN_CHAR));
	args[4] = PointerGetDatum(construct_array(ts, nlinks, TIMESTAMPTZOID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	/* through Citus as the stream's owner, as the call's other writes */
	ek_as_role_begin(&as_owner, ek_relation_owner(stream->relid), 0);
	rc = SPI_execute_with_args(psprintf("INSERT INTO %s (batch, seq, from_id, to_id, alias, ts)"
										" SELECT $1, u.o, u.f, u.t, u.a, u.ts"
										" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
										" pg_catalog.unnest($4), pg_catalog.unnest($5))"
										" WITH ORDINALITY AS u(f, t, a, ts, o)",
										ek_qualified_relname(relid)),
							   5, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not send the batch's identity links to the coordinator: %s",
			 SPI_result_code_string(rc));
	ek_as_role_end(&as_owner);
}

static int
cmp_link(const void *a, const void *b)
{
	const WorkerLink *x = a;
	const WorkerLink *y = b;

	if (x->batch != y->batch)
		return x->batch < y->batch ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/*
 * eventkit.apply_worker_links() RETURNS trigger: the AFTER INSERT
 * statement trigger of a worker links table (its argument: the stream
 * id), fired on the coordinator's shard of it in the worker call's
 * distributed transaction.  Applies the statement's links (in batch and
 * link order) to this node's identity graph with the identity stage, then
 * deletes their rows.
 */
Datum
eventkit_apply_worker_links(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleTableSlot *slot;
	WorkerLink *links;
	int			nlinks = 0;
	int			cap = 64;
	SegmentEvent *evs;
	SegmentEvent **ptrs;
	StreamInfo	stream;
	int32		stream_id;
	Oid			relid;
	Datum	   *batches;
	int			nbatches = 0;
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		args[1];

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || td->tg_newtable == NULL ||
		td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("eventkit.apply_worker_links() must be the AFTER INSERT statement trigger of a worker links table"),
				 errhint("It is made by eventkit.distribute_stream(); do not use it elsewhere.")));
	stream_id = pg_strtoint32(td->tg_trigger->tgargs[0]);

	/*
	 * Only on the stream's own worker links table (or its shard, named
	 * <table>_<shardid>), in eventkit_ledgers, where only a superuser
	 * makes tables: elsewhere the trigger would let a role link ids in any
	 * stream's graph
	 */
	{
		char		prefix[NAMEDATALEN];
		const char *relname = RelationGetRelationName(td->tg_relation);
		size_t		len;
		char	   *nspname = get_namespace_name(RelationGetNamespace(td->tg_relation));

		len = snprintf(prefix, sizeof(prefix), LINKS_PREFIX "%d", stream_id);
		if (nspname == NULL || strcmp(nspname, LINKS_SCHEMA) != 0 ||
			strncmp(relname, prefix, len) != 0 ||
			(relname[len] != '\0' && relname[len] != '_'))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("eventkit.apply_worker_links('%d') fired on table \"%s\", not on stream %d's worker links table",
							stream_id, relname, stream_id),
					 errhint("It is made by eventkit.distribute_stream(); do not use it elsewhere.")));
	}

	links = palloc(sizeof(WorkerLink) * cap);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
	tuplestore_rescan(td->tg_newtable);
	while (tuplestore_gettupleslot(td->tg_newtable, true, false, slot))
	{
		WorkerLink *l;
		bool		isnull[6];

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		for (int a = 0; a < 6; a++)
			isnull[a] = slot->tts_isnull[a];
		if (isnull[0] || isnull[1] || isnull[2] || isnull[3] || isnull[4] || isnull[5])
			continue;			/* NOT NULL columns: never */
		if (nlinks == cap)
		{
			cap *= 2;
			links = repalloc(links, sizeof(WorkerLink) * cap);
		}
		l = &links[nlinks++];
		l->batch = DatumGetInt64(slot->tts_values[0]);
		l->seq = DatumGetInt64(slot->tts_values[1]);
		l->from = TextDatumGetCString(slot->tts_values[2]);
		l->to = TextDatumGetCString(slot->tts_values[3]);
		l->alias = DatumGetBool(slot->tts_values[4]);
		l->ts = DatumGetTimestampTz(slot->tts_values[5]);
	}
	ExecDropSingleTupleTableSlot(slot);
	if (nlinks == 0)
		return PointerGetDatum(NULL);
	qsort(links, nlinks, sizeof(WorkerLink), cmp_link);

	/*
	 * Each link as the one event that makes it (identity.c's rule): an
	 * alias's previousId, or an anonymousId, linked to the userId
	 */
	evs = palloc0(sizeof(SegmentEvent) * nlinks);
	ptrs = palloc(sizeof(SegmentEvent *) * nlinks);
	batches = palloc(sizeof(Datum) * nlinks);
	for (int i = 0; i < nlinks; i++)
	{
		SegmentEvent *ev = &evs[i];

		ev->type = links[i].alias ? "alias" : "identify";
		ev->user_id = links[i].to;
		if (links[i].alias)
			ev->previous_id = links[i].from;
		else
			ev->anonymous_id = links[i].from;
		ev->ts = links[i].ts;
		ptrs[i] = ev;
		if (nbatches == 0 || DatumGetInt64(batches[nbatches - 1]) != links[i].batch)
			batches[nbatches++] = Int64GetDatum(links[i].batch);
	}

	SPI_connect();
	relid = ek_streams_relid(stream_id);
	if (!OidIsValid(relid) || !ek_streams_read(relid, &stream, true))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("eventkit: stream %d of worker links table \"%s\" does not exist",
						stream_id, RelationGetRelationName(td->tg_relation)),
				 errhint("Drop the table: its stream was dropped.")));
	(void) ek_identity_link_events(&stream, ptrs, nlinks);

	/* applied: their rows go (the coordinator's graph has them) */
	args[0] = PointerGetDatum(construct_array(batches, nbatches, INT8OID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args(psprintf("DELETE FROM ONLY %s WHERE batch OPERATOR(pg_catalog.=)"
									   " ANY ($1)",
									   ek_qualified_relname(RelationGetRelid(td->tg_relation))),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not delete the applied worker links");
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * For a stream distributed before 1.16 (distribute_identity_graph, on the
 * coordinator, once its worker links table exists): link in this node's
 * graph the ids of every worker's graph of the stream so far, each id to
 * its canonical id there (at its first_seen and at its last_seen), worker
 * after worker (in the order Citus lists them), by the identity stage.  A
 * set that spans nodes is merged as the stage merges sets linked by an
 * identify (the larger keeps its canonical id), not necessarily as one
 * server would have from the events' own order.  Returns the worker rows
 * read.  Caller: SPI connected, a superuser, holding the stream's lock
 * against ingest.
 */
int64
ek_identity_import_worker_graphs(const StreamInfo *stream)
{
	EkCitusResult *res;
	int			nres;
	int64		nrows = 0;
	Oid			argtypes[1] = {TEXTOID};

	res = ek_citus_run_on_workers(psprintf("SELECT COALESCE(pg_catalog.json_agg("
										   "pg_catalog.json_build_array(l.id, l.canonical_id,"
										   " l.first_seen, l.last_seen) ORDER BY l.id), '[]'::pg_catalog.json)"
										   " FROM eventkit.identity_links l"
										   " WHERE l.stream_id OPERATOR(pg_catalog.=) %d"
										   " AND l.id OPERATOR(pg_catalog.<>) l.canonical_id",
										   stream->stream_id),
								  false, &nres);
	for (int w = 0; w < nres; w++)
	{
		Datum		args[1];
		SegmentEvent *evs;
		SegmentEvent **ptrs;
		uint64		n;

		if (!res[w].ok)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not read the identity graph of worker %s:%d", res[w].node,
							res[w].port),
					 errdetail("%s", res[w].result),
					 errhint("Make every worker reachable, then call eventkit.distribute_identity_graph() again.")));
		args[0] = CStringGetTextDatum(res[w].result);
		if (SPI_execute_with_args("SELECT e OPERATOR(pg_catalog.->>) 0, e OPERATOR(pg_catalog.->>) 1,"
								  " (e OPERATOR(pg_catalog.->>) 2)::pg_catalog.timestamptz,"
								  " (e OPERATOR(pg_catalog.->>) 3)::pg_catalog.timestamptz"
								  " FROM pg_catalog.json_array_elements($1::pg_catalog.json) e",
								  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "eventkit: could not read a worker's identity graph");
		n = SPI_processed;
		if (n == 0)
			continue;
		nrows += n;
		evs = palloc0(sizeof(SegmentEvent) * n * 2);
		ptrs = palloc(sizeof(SegmentEvent *) * n * 2);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			for (int k = 0; k < 2; k++)
			{
				SegmentEvent *ev = &evs[2 * i + k];

				ev->type = "identify";
				ev->anonymous_id = SPI_getvalue(tup, desc, 1);
				ev->user_id = SPI_getvalue(tup, desc, 2);
				ev->ts = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3 + k, &isnull));
				ptrs[2 * i + k] = ev;
			}
		}
		(void) ek_identity_link_events(stream, ptrs, (int) (2 * n));
	}
	return nrows;
}
