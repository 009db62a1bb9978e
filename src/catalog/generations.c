/*-------------------------------------------------------------------------
 *
 * generations.c
 *	  The dedup ledger's generations in the catalog: which generation of a
 *	  stream is current (eventkit.streams.ledger_gen) and, in
 *	  eventkit.ledger_generations, when each started and ended and the
 *	  filter of each sealed one (since 1.2).  The ledger tables themselves
 *	  (eventkit_internal.ledger_<stream>_g<gen>) belong to the dedup stage
 *	  (src/pipeline/dedup/).
 *
 *	  Ingest reads a stream's state with the latest snapshot, after it has
 *	  locked the ledger: a rotation holds ACCESS EXCLUSIVE on the ledger
 *	  until it commits, so what the latest snapshot shows is what every
 *	  concurrent ingest uses.  Filters are read with the latest snapshot
 *	  too, as their sizes were.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/generations.h"
#include "util/owner.h"
#include "util/spi.h"

/* one row per sealed generation (or one with gen NULL), newest first */
#define STATE_SQL(filter) \
	"SELECT s.ledger_gen, g.gen, " filter \
	" FROM eventkit.streams s LEFT JOIN eventkit.ledger_generations g" \
	" ON g.stream_id OPERATOR(pg_catalog.=) s.stream_id" \
	" AND g.gen OPERATOR(pg_catalog.<) s.ledger_gen" \
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 ORDER BY g.gen DESC"

static EkStatement read_state = {
	.sql = STATE_SQL("pg_catalog.octet_length(g.filter)::pg_catalog.int8"),
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_LATEST_SNAPSHOT
};

/* before 1.2: no filters */
static EkStatement read_state_1_1 = {
	.sql = STATE_SQL("NULL::pg_catalog.int8"),
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_LATEST_SNAPSHOT
};

static EkStatement started = {
	.sql = "INSERT INTO eventkit.ledger_generations (stream_id, gen, started_at)"
	" VALUES ($1, $2, pg_catalog.clock_timestamp())",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_INSERT
};

static EkStatement due = {
	.sql = "SELECT started_at OPERATOR(pg_catalog.<=)"
	" (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $3)"
	" FROM eventkit.ledger_generations"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND gen OPERATOR(pg_catalog.=) $2",
	.nargs = 3,.argtypes = {INT4OID, INT4OID, INTERVALOID},.expected = SPI_OK_SELECT
};

static EkStatement current = {
	.sql = "SELECT ledger_gen FROM eventkit.streams WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

static EkStatement ended = {
	.sql = "UPDATE eventkit.ledger_generations SET ended_at = pg_catalog.clock_timestamp()"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND gen OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_UPDATE
};

static EkStatement advance = {
	.sql = "UPDATE eventkit.streams SET ledger_gen = $2 WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_UPDATE
};

static EkStatement expired = {
	.sql = "SELECT gen FROM eventkit.ledger_generations"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND ended_at OPERATOR(pg_catalog.<)"
	" (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $2)"
	" ORDER BY gen",
	.nargs = 2,.argtypes = {INT4OID, INTERVALOID},.expected = SPI_OK_SELECT
};

static EkStatement forget = {
	.sql = "DELETE FROM eventkit.ledger_generations"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND gen OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_DELETE
};

static EkStatement unfiltered = {
	.sql = "SELECT gen FROM eventkit.ledger_generations"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND ended_at IS NOT NULL AND filter IS NULL ORDER BY gen",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_SELECT
};

static EkStatement store_filter = {
	.sql = "UPDATE eventkit.ledger_generations SET filter = $3"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND gen OPERATOR(pg_catalog.=) $2"
	" AND ended_at IS NOT NULL AND filter IS NULL",
	.nargs = 3,.argtypes = {INT4OID, INT4OID, BYTEAOID},.expected = SPI_OK_UPDATE
};

static EkStatement read_filter = {
	.sql = "SELECT filter FROM eventkit.ledger_generations"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND gen OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY | EK_STMT_LATEST_SNAPSHOT
};

/* Is the filter column there (a catalog at 1.2 or later)? */
bool
ek_generations_filters_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_2;
}

/*
 * A stream's current generation and its sealed ones with the size of
 * their filters (arrays in the caller's memory context).  Caller: SPI
 * connected, holding a lock on the stream's ledger.
 */
void
ek_generations_read_state(int32 stream_id, LedgerState *state)
{
	Datum		args[1] = {Int32GetDatum(stream_id)};
	uint64		n;
	bool		isnull;

	n = ek_stmt_run(ek_generations_filters_installed() ? &read_state : &read_state_1_1,
					args, NULL);
	if (n < 1)
		elog(ERROR, "eventkit: could not read the ledger state of stream %d", stream_id);
	state->current = DatumGetInt32(ek_spi_value(0, 1, &isnull));
	state->sealed = palloc(sizeof(int32) * n);
	state->filter_bytes = palloc(sizeof(int64) * n);
	state->nsealed = 0;
	for (uint64 r = 0; r < n; r++)
	{
		Datum		d = ek_spi_value(r, 2, &isnull);

		if (isnull)
			continue;
		state->sealed[state->nsealed] = DatumGetInt32(d);
		d = ek_spi_value(r, 3, &isnull);
		state->filter_bytes[state->nsealed] = isnull ? -1 : DatumGetInt64(d);
		state->nsealed++;
	}
}

/* Record the start of generation gen of a stream's ledger (now). */
void
ek_generations_started(int32 stream_id, int32 gen)
{
	Datum		args[2] = {Int32GetDatum(stream_id), Int32GetDatum(gen)};

	ek_stmt_run(&started, args, NULL);
}

/*
 * Did generation gen start more than window ago (by the server clock)?
 * *found: whether it is in the catalog at all.
 */
bool
ek_generations_due(int32 stream_id, int32 gen, const Interval *window, bool *found)
{
	Datum		args[3] = {Int32GetDatum(stream_id), Int32GetDatum(gen),
	IntervalPGetDatum(window)};
	bool		isnull;

	*found = ek_stmt_run(&due, args, NULL) == 1;
	return *found && DatumGetBool(ek_spi_value(0, 1, &isnull));
}

/* The stream's current generation, as committed (read under the ledger's lock). */
int32
ek_generations_current(int32 stream_id)
{
	Datum		args[1] = {Int32GetDatum(stream_id)};
	bool		isnull;

	ek_stmt_run(&current, args, NULL);
	return DatumGetInt32(ek_spi_value(0, 1, &isnull));
}

/*
 * Seal the current generation gen - 1 (its end: now) and make gen (whose
 * start is recorded) the current one.
 */
void
ek_generations_advance(int32 stream_id, int32 gen)
{
	Datum		args[2] = {Int32GetDatum(stream_id), Int32GetDatum(gen - 1)};

	ek_stmt_run(&ended, args, NULL);
	args[1] = Int32GetDatum(gen);
	ek_stmt_run(&advance, args, NULL);
}

/* The generations that ended more than window ago (a list of int). */
List *
ek_generations_expired(int32 stream_id, const Interval *window)
{
	Datum		args[2] = {Int32GetDatum(stream_id), IntervalPGetDatum(window)};

	ek_stmt_run(&expired, args, NULL);
	return ek_spi_int_list();
}

/* Forget generation gen (its table is dropped). */
void
ek_generations_forget(int32 stream_id, int32 gen)
{
	Datum		args[2] = {Int32GetDatum(stream_id), Int32GetDatum(gen)};

	ek_stmt_run(&forget, args, NULL);
}

/* The sealed generations without a filter (a list of int). */
List *
ek_generations_unfiltered(int32 stream_id)
{
	Datum		args[1] = {Int32GetDatum(stream_id)};

	ek_stmt_run(&unfiltered, args, NULL);
	return ek_spi_int_list();
}

/* Store a sealed generation's filter, unless it has one.  True if stored. */
bool
ek_generations_store_filter(int32 stream_id, int32 gen, bytea *filter)
{
	Datum		args[3] = {Int32GetDatum(stream_id), Int32GetDatum(gen),
	PointerGetDatum(filter)};

	return ek_stmt_run(&store_filter, args, NULL) > 0;
}

/*
 * A sealed generation's filter, detoasted into cxt; NULL if it has none.
 * With the latest snapshot, as the state its size was read from.
 */
bytea *
ek_generations_read_filter(int32 stream_id, int32 gen, MemoryContext cxt)
{
	Datum		args[2] = {Int32GetDatum(stream_id), Int32GetDatum(gen)};
	bool		isnull;
	Datum		d;
	MemoryContext old;
	bytea	   *filter;

	if (ek_stmt_run(&read_filter, args, NULL) != 1)
		return NULL;
	d = ek_spi_value(0, 1, &isnull);
	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	filter = DatumGetByteaPCopy(d);
	MemoryContextSwitchTo(old);
	return filter;
}
