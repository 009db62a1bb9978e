/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The tables of a stream's dedup ledger: eventkit_internal.ledger_<id>,
 *	  list-partitioned into generations ledger_<id>_g<gen>, each with a
 *	  unique index on message_key (dedup.c claims ids in the current one).
 *	  A row is (message_key uuid, gen, fingerprint, user_key_hash): the
 *	  128-bit key and 64-bit hash of ledger_key.c, fixed width (1.5; the
 *	  update converts older ledgers, which are refused until then).
 *
 *	  Maintenance starts a new generation when the current one is
 *	  dedup_window old or holds more than eventkit.ledger_generation_rows
 *	  ids (under ACCESS EXCLUSIVE on the ledger, which waits for in-flight
 *	  ingests, so no id can be claimed in two generations and a sealed
 *	  generation never changes again), and drops whole generations that
 *	  ended more than dedup_window ago: no DELETE, no vacuum debt.  Which
 *	  generation is current, and when each started and ended, is in the
 *	  catalog (catalog/generations.c).
 *
 *	  The ledger tables belong to the extension owner: the work here runs
 *	  as that role (a role scope, util/owner.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "catalog/generations.h"
#include "ledger.h"
#include "ledger_key.h"
#include "util/guc.h"
#include "util/owner.h"
#include "util/spi.h"

/*
 * Created by the install script, so it is a member of the extension and
 * DROP EXTENSION ... CASCADE takes the ledgers with it.
 */
#define LEDGER_SCHEMA "eventkit_internal"

static char *
ledger_name(int32 stream_id)
{
	return psprintf("ledger_%d", stream_id);
}

static char *
generation_name(int32 stream_id, int32 gen)
{
	return psprintf("ledger_%d_g%d", stream_id, gen);
}

static char *
qualified(const char *relname)
{
	return quote_qualified_identifier(LEDGER_SCHEMA, relname);
}

/* The quoted name of a generation table. */
char *
ek_ledger_generation_qname(int32 stream_id, int32 gen)
{
	return qualified(generation_name(stream_id, gen));
}

/* The quoted name of a stream's (single-node) ledger. */
char *
ek_ledger_qname(int32 stream_id)
{
	return qualified(ledger_name(stream_id));
}

/* Looked up each time: cached plans survive a drop and re-create, OIDs do not. */
Oid
ek_ledger_generation_relid(int32 stream_id, int32 gen)
{
	return get_relname_relid(generation_name(stream_id, gen),
							 get_namespace_oid(LEDGER_SCHEMA, false));
}

Oid
ek_ledger_relid(int32 stream_id, bool missing_ok)
{
	Oid			relid = get_relname_relid(ledger_name(stream_id),
										  get_namespace_oid(LEDGER_SCHEMA, false));

	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("dedup ledger of stream %d is missing", stream_id),
				 errhint("Recreate the stream with eventkit.drop_stream() and eventkit.create_stream().")));
	return relid;
}

/*
 * A generation table must have the 1.5 layout (message_key uuid first): a
 * ledger made before 1.5 is converted by ALTER EXTENSION eventkit UPDATE,
 * and until then is not used (reading a text id as a key would be wrong,
 * not just slow).
 */
void
ek_ledger_check_layout(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (desc->natts < 4 || TupleDescAttr(desc, 0)->atttypid != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dedup ledger table \"%s\" has the layout of eventkit before 1.5",
						RelationGetRelationName(rel)),
				 errdetail("This eventkit library keeps 128-bit message keys in the ledger; the extension's catalog has not been updated yet."),
				 errhint("Run ALTER EXTENSION eventkit UPDATE, which converts the ledgers.")));
}

/*
 * Ids a generation table holds, estimated cheaply: its heap blocks times
 * the line pointers of its first block (ledger rows are of similar size;
 * rows of rolled-back claims count too).
 */
double
ek_ledger_estimate_rows(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	double		est = 0;

	if (nblocks > 0)
	{
		Buffer		buf = ReadBuffer(rel, 0);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		est = (double) PageGetMaxOffsetNumber(BufferGetPage(buf)) * nblocks;
		UnlockReleaseBuffer(buf);
	}
	table_close(rel, NoLock);
	return est;
}

/* Create generation gen's table and record its start.  Caller: as the owner. */
static void
create_generation(int32 stream_id, int32 gen)
{
	char	   *qgen = qualified(generation_name(stream_id, gen));

	ek_spi_exec(psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES IN (%d)",
						 qgen, qualified(ledger_name(stream_id)), gen),
				SPI_OK_UTILITY);
	ek_spi_exec(psprintf("CREATE UNIQUE INDEX ON %s (message_key)", qgen),
				SPI_OK_UTILITY);
	ek_generations_started(stream_id, gen);
}

/* Create a stream's ledger with its first generation.  Caller: SPI connected. */
void
ek_ledger_create(int32 stream_id)
{
	EkRoleScope as_owner;

	ek_as_owner_begin(&as_owner);
	ek_spi_exec(psprintf("CREATE TABLE %s ("
						 " message_key pg_catalog.uuid NOT NULL,"
						 " gen pg_catalog.int4 NOT NULL,"
						 " fingerprint pg_catalog.int8 NOT NULL,"
						 " user_key_hash pg_catalog.int8 NOT NULL"
						 ") PARTITION BY LIST (gen)",
						 qualified(ledger_name(stream_id))),
				SPI_OK_UTILITY);
	create_generation(stream_id, 1);
	ek_as_role_end(&as_owner);
}

/* Drop a stream's ledger, if it has one.  Caller: SPI connected. */
void
ek_ledger_drop(int32 stream_id)
{
	EkRoleScope as_owner;

	if (!OidIsValid(ek_ledger_relid(stream_id, true)))
		return;
	ek_as_owner_begin(&as_owner);
	ek_spi_exec(psprintf("DROP TABLE %s", qualified(ledger_name(stream_id))),
				SPI_OK_UTILITY);
	ek_as_role_end(&as_owner);
}

/*
 * Start a new ledger generation when the current one is older than the
 * dedup window (by the server clock) or holds more than
 * eventkit.ledger_generation_rows ids (estimated).  Returns true if it
 * rotated.  The sealed generation's filter is built later, in another
 * transaction (ledger_filter.c), so that ingest does not wait for it.
 * Caller: SPI connected, as any role that may maintain the stream: this
 * runs as the extension owner, with eventkit.maintenance_lock_timeout.
 */
bool
ek_ledger_rotate(StreamInfo *stream)
{
	bool		due;
	bool		found;
	EkRoleScope as_owner;

	ek_as_role_begin(&as_owner, ek_extension_owner(), EK_AS_LOCK_TIMEOUT);
	due = ek_generations_due(stream->stream_id, stream->ledger_gen, &stream->dedup_window,
							 &found);
	if (!due && found)
	{
		Oid			relid = ek_ledger_generation_relid(stream->stream_id, stream->ledger_gen);

		due = OidIsValid(relid) &&
			ek_ledger_estimate_rows(relid) > (double) ek_ledger_generation_rows;
	}
	if (!due)
	{
		ek_as_role_end(&as_owner);
		return false;
	}

	/* waits for in-flight ingests, holds new ones until we commit */
	ek_spi_exec(psprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
						 qualified(ledger_name(stream->stream_id))),
				SPI_OK_UTILITY);

	/* someone else (the worker, run_maintenance) rotated meanwhile? */
	if (ek_generations_current(stream->stream_id) != stream->ledger_gen)
	{
		ek_as_role_end(&as_owner);
		return false;
	}
	create_generation(stream->stream_id, stream->ledger_gen + 1);
	ek_generations_advance(stream->stream_id, stream->ledger_gen + 1);
	stream->ledger_gen++;

	ek_as_role_end(&as_owner);
	return true;
}

/*
 * Drop the generations that ended more than dedup_window ago: every id in
 * them was first stored before now - dedup_window.  Returns how many.
 * As the extension owner, like ek_ledger_rotate.
 */
int
ek_ledger_prune(const StreamInfo *stream)
{
	int			dropped = 0;
	List	   *gens;
	ListCell   *lc;
	EkRoleScope as_owner;

	ek_as_role_begin(&as_owner, ek_extension_owner(), EK_AS_LOCK_TIMEOUT);
	gens = ek_generations_expired(stream->stream_id, &stream->dedup_window);
	foreach(lc, gens)
	{
		int32		gen = lfirst_int(lc);

		ek_spi_exec(psprintf("DROP TABLE %s",
							 qualified(generation_name(stream->stream_id, gen))),
					SPI_OK_UTILITY);
		ek_generations_forget(stream->stream_id, gen);
		dropped++;
	}
	ek_as_role_end(&as_owner);
	return dropped;
}

/*
 * forget_user: delete a stream's ledger entries of the user keys in keys
 * (text[]), in every generation; returns how many.  A re-sent message id
 * of theirs is rejected before dedup (suppressed), so the entries are not
 * needed; sealed generations' filters may still answer "maybe" for them,
 * which only costs a probe.  Caller: SPI connected.
 */
int64
ek_ledger_forget_keys(int32 stream_id, Datum keys)
{
	EkRoleScope as_owner;
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		args[1];
	ArrayType  *arr = DatumGetArrayTypeP(keys);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			nhashes = 0;
	int64		n;

	if (!OidIsValid(ek_ledger_relid(stream_id, true)))
		return 0;
	/* the ledger keeps ek_id_hash64 of each user key, not the key */
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		text	   *t;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		elems[nhashes++] = Int64GetDatum((int64) ek_id_hash64(VARDATA_ANY(t),
															   VARSIZE_ANY_EXHDR(t)));
	}
	args[0] = ek_make_array(elems, NULL, nhashes, INT8OID);
	ek_as_owner_begin(&as_owner);
	if (SPI_execute_with_args(psprintf("DELETE FROM %s WHERE user_key_hash OPERATOR(pg_catalog.=) ANY ($1)",
									   qualified(ledger_name(stream_id))),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "eventkit: could not delete ledger entries");
	n = (int64) SPI_processed;
	ek_as_role_end(&as_owner);
	return n;
}
