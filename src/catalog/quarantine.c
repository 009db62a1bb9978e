/*-------------------------------------------------------------------------
 *
 * quarantine.c
 *	  eventkit.quarantine and eventkit.conflicts.
 *
 *	  Quarantine rows are written once per batch that quarantines (one
 *	  statement for all its events); an event already quarantined (same
 *	  stream, message id and fingerprint: a retry) is not stored again
 *	  (the retry key came with 1.3).  A replay reads a stream's rows locked
 *	  against a concurrent replay, in arrival order; afterwards the events
 *	  that were stored (or found to be duplicates or conflicts) leave, the
 *	  others stay with the reasons of the attempt (ek_quarantine_settle).
 *	  The events waiting for a partition (reason out_of_range) are read for
 *	  the premake job (their times) and the redrive job (to replay them).
 *	  Events an intake worker quarantines keep where they came from (their
 *	  origin: topic, partition, offset).
 *	  A stream's owner discards its events by filters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/quarantine.h"
#include "util/owner.h"
#include "util/spi.h"

#define INSERT_TYPES {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID, TEXTARRAYOID, \
	JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID, JSONBOID, INT4OID, INT4ARRAYOID, \
	INT8ARRAYOID, JSONBARRAYOID}

/* events from an intake worker, with where they came from (1.3) */
static EkStatement insert_with_origin = {
	.sql = "INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
	" message_id, received_at, reasons, payload, raw, envelope,"
	" plan_id, plan_version, fingerprint, origin)"
	" SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
	" CASE WHEN x.v IS NOT NULL THEN $10 END, x.v, x.f, x.o"
	" FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6), pg_catalog.unnest($7),"
	" pg_catalog.unnest($8), pg_catalog.unnest($11),"
	" pg_catalog.unnest($12), pg_catalog.unnest($13))"
	" AS x(i, m, r, p, w, v, f, o)"
	" ON CONFLICT (stream_id, message_id, fingerprint)"
	" WHERE fingerprint IS NOT NULL DO NOTHING",
	.nargs = 13,.argtypes = INSERT_TYPES,.expected = SPI_OK_INSERT
};

/* since 1.3: a retry of an event already quarantined is not stored again */
static EkStatement insert_keyed = {
	.sql = "INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
	" message_id, received_at, reasons, payload, raw, envelope,"
	" plan_id, plan_version, fingerprint)"
	" SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
	" CASE WHEN x.v IS NOT NULL THEN $10 END, x.v, x.f"
	" FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6), pg_catalog.unnest($7),"
	" pg_catalog.unnest($8), pg_catalog.unnest($11),"
	" pg_catalog.unnest($12)) AS x(i, m, r, p, w, v, f)"
	" ON CONFLICT (stream_id, message_id, fingerprint)"
	" WHERE fingerprint IS NOT NULL DO NOTHING",
	.nargs = 12,.argtypes = INSERT_TYPES,.expected = SPI_OK_INSERT
};

static EkStatement insert_1_1 = {
	.sql = "INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
	" message_id, received_at, reasons, payload, raw, envelope,"
	" plan_id, plan_version)"
	" SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
	" CASE WHEN x.v IS NOT NULL THEN $10 END, x.v"
	" FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6), pg_catalog.unnest($7),"
	" pg_catalog.unnest($8), pg_catalog.unnest($11)) AS x(i, m, r, p, w, v)",
	.nargs = 11,.argtypes = INSERT_TYPES,.expected = SPI_OK_INSERT
};

static EkStatement delete_replayed = {
	.sql = "DELETE FROM eventkit.quarantine WHERE quarantine_id OPERATOR(pg_catalog.=) ANY ($1)",
	.nargs = 1,.argtypes = {INT8ARRAYOID},.expected = SPI_OK_DELETE
};

static EkStatement update_replayed = {
	.sql = "UPDATE eventkit.quarantine q SET reasons = x.r,"
	" plan_id = CASE WHEN x.v IS NOT NULL THEN $3 END,"
	" plan_version = x.v, replays = q.replays OPERATOR(pg_catalog.+) 1,"
	" replayed_at = pg_catalog.now()"
	" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
	" pg_catalog.unnest($4)) AS x(id, r, v)"
	" WHERE q.quarantine_id OPERATOR(pg_catalog.=) x.id",
	.nargs = 4,.argtypes = {INT8ARRAYOID, JSONBARRAYOID, INT4OID, INT4ARRAYOID},
	.expected = SPI_OK_UPDATE
};

static EkStatement read_for_replay = {
	.sql = "SELECT quarantine_id, batch_id, received_at, payload, envelope"
	" FROM eventkit.quarantine"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND payload IS NOT NULL"
	" AND ($2 IS NULL OR quarantine_id OPERATOR(pg_catalog.=) ANY ($2))"
	" ORDER BY batch_id, item FOR UPDATE",
	.nargs = 2,.argtypes = {INT4OID, INT8ARRAYOID},.expected = SPI_OK_SELECT
};

#define WAITING \
	" FROM eventkit.quarantine WHERE stream_id OPERATOR(pg_catalog.=) $1" \
	" AND payload IS NOT NULL" \
	" AND reasons OPERATOR(pg_catalog.@>) '[{\"reason\": \"out_of_range\"}]'::pg_catalog.jsonb"

static EkStatement read_waiting = {
	.sql = "SELECT quarantine_id, batch_id, received_at, payload, envelope" WAITING
	" ORDER BY quarantine_id LIMIT $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

/* 1.0: no envelopes */
static EkStatement read_waiting_1_0 = {
	.sql = "SELECT quarantine_id, batch_id, received_at, payload, NULL::pg_catalog.jsonb"
	WAITING " ORDER BY quarantine_id LIMIT $2",
	.nargs = 2,.argtypes = {INT4OID, INT4OID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

static EkStatement discard = {
	.sql = "DELETE FROM eventkit.quarantine q"
	" WHERE q.stream_id OPERATOR(pg_catalog.=) $1"
	" AND ($2 IS NULL OR q.quarantine_id OPERATOR(pg_catalog.=) ANY ($2))"
	" AND ($3 IS NULL OR EXISTS (SELECT 1"
	"  FROM pg_catalog.jsonb_array_elements(q.reasons) r"
	"  WHERE (r.value OPERATOR(pg_catalog.->>) 'reason'::pg_catalog.text)"
	"   OPERATOR(pg_catalog.=) ANY ($3)))"
	" AND ($4 IS NULL OR q.quarantined_at OPERATOR(pg_catalog.<)"
	"  (pg_catalog.now() OPERATOR(pg_catalog.-) $4))",
	.nargs = 4,.argtypes = {INT4OID, INT8ARRAYOID, TEXTARRAYOID, INTERVALOID},
	.expected = SPI_OK_DELETE
};

static EkStatement insert_conflicts = {
	.sql = "INSERT INTO eventkit.conflicts (stream_id, batch_id, item,"
	" message_id, received_at, payload)"
	" SELECT $1, $2, x.i, x.m, $3, x.p"
	" FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
	" pg_catalog.unnest($6)) AS x(i, m, p)",
	.nargs = 6,.argtypes = {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID,
	TEXTARRAYOID, JSONBARRAYOID},.expected = SPI_OK_INSERT
};

/*
 * Quarantine n events of a batch, with the envelope's defaults (NULL:
 * none) and the plan they were checked against.  Caller: SPI connected.
 */
void
ek_quarantine_insert(int32 stream_id, int64 batch_id, TimestampTz received_at,
					 Jsonb *envelope, int32 plan_id, const QuarantineRow *rows, int n)
{
	Datum	   *items = palloc(sizeof(Datum) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *reasons = palloc(sizeof(Datum) * n);
	Datum	   *payloads = palloc(sizeof(Datum) * n);
	Datum	   *raws = palloc(sizeof(Datum) * n);
	Datum	   *versions = palloc(sizeof(Datum) * n);
	Datum	   *fingerprints = palloc(sizeof(Datum) * n);
	bool	   *id_nulls = palloc0(sizeof(bool) * n);
	bool	   *payload_nulls = palloc0(sizeof(bool) * n);
	bool	   *raw_nulls = palloc0(sizeof(bool) * n);
	bool	   *version_nulls = palloc0(sizeof(bool) * n);
	Datum	   *origins = palloc(sizeof(Datum) * n);
	bool	   *origin_nulls = palloc0(sizeof(bool) * n);
	bool		with_origin = false;
	Datum		args[13];
	char		argnulls[13];
	EkStatement *stmt;

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		const QuarantineRow *q = &rows[i];

		items[i] = Int32GetDatum(q->item);
		ids[i] = EK_TEXT_OR_NULL(q->message_id);
		id_nulls[i] = q->message_id == NULL;
		reasons[i] = JsonbPGetDatum(q->reasons);
		payloads[i] = EK_JSONB_OR_NULL(q->payload);
		payload_nulls[i] = q->payload == NULL;
		raws[i] = EK_TEXT_OR_NULL(q->raw);
		raw_nulls[i] = q->raw == NULL;
		versions[i] = Int32GetDatum(q->plan_version);
		version_nulls[i] = q->plan_version == 0;
		fingerprints[i] = Int64GetDatum(q->fingerprint);
		origin_nulls[i] = q->origin == NULL;
		if (q->origin != NULL)
		{
			origins[i] = DirectFunctionCall1(jsonb_in, CStringGetDatum(q->origin));
			with_origin = true;
		}
	}
	memset(argnulls, ' ', sizeof(argnulls));
	args[0] = Int32GetDatum(stream_id);
	args[1] = Int64GetDatum(batch_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = ek_make_array(items, NULL, n, INT4OID);
	args[4] = ek_make_array(ids, id_nulls, n, TEXTOID);
	args[5] = ek_make_array(reasons, NULL, n, JSONBOID);
	args[6] = ek_make_array(payloads, payload_nulls, n, JSONBOID);
	args[7] = ek_make_array(raws, raw_nulls, n, TEXTOID);
	args[8] = EK_JSONB_OR_NULL(envelope);
	argnulls[8] = envelope == NULL ? 'n' : ' ';
	args[9] = Int32GetDatum(plan_id);
	args[10] = ek_make_array(versions, version_nulls, n, INT4OID);
	args[11] = ek_make_array(fingerprints, NULL, n, INT8OID);
	if (with_origin)
	{
		args[12] = ek_make_array(origins, origin_nulls, n, JSONBOID);
		stmt = &insert_with_origin;
	}
	else
		stmt = ek_catalog_version() >= EK_CATALOG_1_3 ? &insert_keyed : &insert_1_1;
	ek_stmt_run(stmt, args, argnulls);
}

/*
 * After a replay: the events in gone leave quarantine; those in kept stay,
 * with the reasons and plan version (of plan plan_id) of this attempt.
 */
void
ek_quarantine_settle(int32 plan_id, const int64 *gone, int ngone,
					 const QuarantineRetry *kept, int nkept)
{
	if (ngone > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * ngone);
		Datum		args[1];

		for (int i = 0; i < ngone; i++)
			ids[i] = Int64GetDatum(gone[i]);
		args[0] = ek_make_array(ids, NULL, ngone, INT8OID);
		ek_stmt_run(&delete_replayed, args, NULL);
	}
	if (nkept > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * nkept);
		Datum	   *reasons = palloc(sizeof(Datum) * nkept);
		Datum	   *versions = palloc(sizeof(Datum) * nkept);
		bool	   *version_nulls = palloc0(sizeof(bool) * nkept);
		Datum		args[4];

		for (int i = 0; i < nkept; i++)
		{
			ids[i] = Int64GetDatum(kept[i].quarantine_id);
			reasons[i] = JsonbPGetDatum(kept[i].reasons);
			versions[i] = Int32GetDatum(kept[i].plan_version);
			version_nulls[i] = kept[i].plan_version == 0;
		}
		args[0] = ek_make_array(ids, NULL, nkept, INT8OID);
		args[1] = ek_make_array(reasons, NULL, nkept, JSONBOID);
		args[2] = Int32GetDatum(plan_id);
		args[3] = ek_make_array(versions, version_nulls, nkept, INT4OID);
		ek_stmt_run(&update_replayed, args, NULL);
	}
}

/* The rows of the last statement, copied into the caller's memory context. */
static QuarantinedEvent *
copy_rows(uint64 nrows, int *n)
{
	QuarantinedEvent *rows = palloc(sizeof(QuarantinedEvent) * Max(nrows, 1));

	for (uint64 r = 0; r < nrows; r++)
	{
		bool		isnull;
		Datum		d;

		rows[r].quarantine_id = DatumGetInt64(ek_spi_value(r, 1, &isnull));
		rows[r].batch_id = DatumGetInt64(ek_spi_value(r, 2, &isnull));
		rows[r].received_at = DatumGetTimestampTz(ek_spi_value(r, 3, &isnull));
		rows[r].payload = DatumGetJsonbPCopy(ek_spi_value(r, 4, &isnull));
		d = ek_spi_value(r, 5, &isnull);
		rows[r].envelope = isnull ? NULL : DatumGetJsonbPCopy(d);
	}
	*n = (int) nrows;
	return rows;
}

/*
 * A stream's quarantined events that have a payload (all of them, or
 * those whose ids are in the int8[] ids), locked against a concurrent
 * replay, in arrival order (batch, item).  Caller: SPI connected.
 */
QuarantinedEvent *
ek_quarantine_read(int32 stream_id, Datum ids, bool ids_null, int *n)
{
	Datum		args[2] = {Int32GetDatum(stream_id), ids};
	char		nulls[2] = {' ', ids_null ? 'n' : ' '};

	return copy_rows(ek_stmt_run(&read_for_replay, args, nulls), n);
}

/*
 * The first limit of a stream's events waiting for a partition (reason
 * out_of_range), oldest first.
 */
QuarantinedEvent *
ek_quarantine_read_waiting(int32 stream_id, int limit, int *n)
{
	Datum		args[2] = {Int32GetDatum(stream_id), Int32GetDatum(limit)};

	return copy_rows(ek_stmt_run(ek_catalog_version() >= EK_CATALOG_1_1 ?
								 &read_waiting : &read_waiting_1_0, args, NULL), n);
}

/*
 * Delete a stream's quarantined events that match every filter given
 * (ids: int8[], reasons: text[], older_than: interval).  Returns how many.
 */
int64
ek_quarantine_discard(int32 stream_id, Datum ids, bool ids_null, Datum reasons,
					  bool reasons_null, Datum older_than, bool older_than_null)
{
	Datum		args[4] = {Int32GetDatum(stream_id), ids, reasons, older_than};
	char		nulls[4] = {' ', ids_null ? 'n' : ' ', reasons_null ? 'n' : ' ',
	older_than_null ? 'n' : ' '};

	return (int64) ek_stmt_run(&discard, args, nulls);
}

/* Log the conflicts of a batch. */
void
ek_conflicts_insert(int32 stream_id, int64 batch_id, TimestampTz received_at,
					const ConflictRow *rows, int n)
{
	Datum	   *items = palloc(sizeof(Datum) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *payloads = palloc(sizeof(Datum) * n);
	Datum		args[6];

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		items[i] = Int32GetDatum(rows[i].item);
		ids[i] = CStringGetTextDatum(rows[i].message_id);
		payloads[i] = JsonbPGetDatum(rows[i].payload);
	}
	args[0] = Int32GetDatum(stream_id);
	args[1] = Int64GetDatum(batch_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = ek_make_array(items, NULL, n, INT4OID);
	args[4] = ek_make_array(ids, NULL, n, TEXTOID);
	args[5] = ek_make_array(payloads, NULL, n, JSONBOID);
	ek_stmt_run(&insert_conflicts, args, NULL);
}

/*
 * forget_user: the ids of an event as sent (userId, anonymousId,
 * previousId), for the rows of eventkit.quarantine and eventkit.conflicts.
 * A quarantined line that is not JSON matches when it contains an id as a
 * JSON string.
 */
#define EVENT_HAS_ID(p) \
	"((" p " OPERATOR(pg_catalog.->>) 'userId'::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($2)" \
	" OR (" p " OPERATOR(pg_catalog.->>) 'anonymousId'::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($2)" \
	" OR (" p " OPERATOR(pg_catalog.->>) 'previousId'::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($2))"

static EkStatement forget_quarantined = {
	.sql = "DELETE FROM eventkit.quarantine q"
	" WHERE q.stream_id OPERATOR(pg_catalog.=) $1"
	" AND (" EVENT_HAS_ID("q.payload")
	" OR (q.raw IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.unnest($2) AS i(id)"
	"  WHERE pg_catalog.strpos(q.raw, pg_catalog.to_json(i.id)::pg_catalog.text)"
	"  OPERATOR(pg_catalog.>) 0)))",
	.nargs = 2,.argtypes = {INT4OID, TEXTARRAYOID},.expected = SPI_OK_DELETE
};

static EkStatement forget_conflicts = {
	.sql = "DELETE FROM eventkit.conflicts c"
	" WHERE c.stream_id OPERATOR(pg_catalog.=) $1 AND " EVENT_HAS_ID("c.payload"),
	.nargs = 2,.argtypes = {INT4OID, TEXTARRAYOID},.expected = SPI_OK_DELETE
};

/* Delete a stream's quarantined events that carry one of the ids (text[]). */
int64
ek_quarantine_forget_ids(int32 stream_id, Datum ids)
{
	Datum		args[2] = {Int32GetDatum(stream_id), ids};

	return (int64) ek_stmt_run(&forget_quarantined, args, NULL);
}

/* Delete a stream's logged conflicts that carry one of the ids (text[]). */
int64
ek_conflicts_forget_ids(int32 stream_id, Datum ids)
{
	Datum		args[2] = {Int32GetDatum(stream_id), ids};

	return (int64) ek_stmt_run(&forget_conflicts, args, NULL);
}
