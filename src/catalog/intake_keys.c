/*-------------------------------------------------------------------------
 *
 * intake_keys.c
 *	  The HTTP intake's write keys in the catalog: eventkit.intake_keys
 *	  holds each key's SHA-256 (never the key), its public prefix, its
 *	  stream, the role its events are ingested as, when it was last used
 *	  and whether it was revoked.  The listener looks a key up for every
 *	  request (a kept plan by hash) and records its use at most once a
 *	  minute.  Came with 1.3.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/intake_keys.h"
#include "util/owner.h"
#include "util/spi.h"

#define KEY_ROW "SELECT k.role, s.relid::pg_catalog.oid, k.revoked_at IS NOT NULL," \
	" k.last_used_at FROM eventkit.intake_keys k LEFT JOIN eventkit.streams s" \
	" ON s.stream_id OPERATOR(pg_catalog.=) k.stream_id"

static EkStatement lookup = {
	.sql = KEY_ROW " WHERE k.key_hash OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {BYTEAOID},.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

static EkStatement touch = {
	.sql = "UPDATE eventkit.intake_keys SET last_used_at = $2"
	" WHERE key_hash OPERATOR(pg_catalog.=) $1"
	" AND (last_used_at IS NULL OR last_used_at OPERATOR(pg_catalog.<) $2)",
	.nargs = 2,.argtypes = {BYTEAOID, TIMESTAMPTZOID},.expected = SPI_OK_UPDATE
};

static EkStatement insert_key = {
	.sql = "INSERT INTO eventkit.intake_keys (key_hash, key_prefix, stream_id, role, description)"
	" VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
	.nargs = 5,.argtypes = {BYTEAOID, TEXTOID, INT4OID, NAMEOID, TEXTOID},
	.expected = SPI_OK_INSERT
};

static EkStatement lock_by_prefix = {
	.sql = KEY_ROW " WHERE k.key_prefix OPERATOR(pg_catalog.=) $1 FOR UPDATE OF k",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_SELECT
};

static EkStatement lock_by_hash = {
	.sql = KEY_ROW " WHERE k.key_hash OPERATOR(pg_catalog.=) $1 FOR UPDATE OF k",
	.nargs = 1,.argtypes = {BYTEAOID},.expected = SPI_OK_SELECT
};

static EkStatement revoke_by_prefix = {
	.sql = "UPDATE eventkit.intake_keys SET revoked_at = pg_catalog.now()"
	" WHERE key_prefix OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {TEXTOID},.expected = SPI_OK_UPDATE
};

static EkStatement revoke_by_hash = {
	.sql = "UPDATE eventkit.intake_keys SET revoked_at = pg_catalog.now()"
	" WHERE key_hash OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {BYTEAOID},.expected = SPI_OK_UPDATE
};

/* Is eventkit.intake_keys there (a 1.3 catalog)? */
bool
ek_intake_keys_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_3;
}

static void
read_row(IntakeKeyRow *row)
{
	bool		isnull;
	Datum		d;

	row->role = pstrdup(NameStr(*DatumGetName(ek_spi_value(0, 1, &isnull))));
	d = ek_spi_value(0, 2, &isnull);
	row->stream = isnull ? InvalidOid : DatumGetObjectId(d);
	row->revoked = DatumGetBool(ek_spi_value(0, 3, &isnull));
	d = ek_spi_value(0, 4, &isnull);
	row->has_last_used = !isnull;
	row->last_used_at = isnull ? 0 : DatumGetTimestampTz(d);
}

/* The key whose SHA-256 is hash; false if there is none.  Caller: SPI connected. */
bool
ek_intake_keys_lookup(bytea *hash, IntakeKeyRow *row)
{
	Datum		args[1] = {PointerGetDatum(hash)};

	if (ek_stmt_run(&lookup, args, NULL) != 1)
		return false;
	read_row(row);
	return true;
}

/* Record that the key was used at now (unless a later use is recorded). */
void
ek_intake_keys_touch(bytea *hash, TimestampTz now)
{
	Datum		args[2] = {PointerGetDatum(hash), TimestampTzGetDatum(now)};

	ek_stmt_run(&touch, args, NULL);
}

/*
 * Record a new key; false (nothing written) if a key with that hash or
 * prefix exists already.
 */
bool
ek_intake_keys_insert(bytea *hash, const char *prefix, int32 stream_id, const char *role,
					  Datum description, bool description_null)
{
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', description_null ? 'n' : ' '};

	args[0] = PointerGetDatum(hash);
	args[1] = CStringGetTextDatum(prefix);
	args[2] = Int32GetDatum(stream_id);
	args[3] = DirectFunctionCall1(namein, CStringGetDatum(role));
	args[4] = description;
	return ek_stmt_run(&insert_key, args, nulls) == 1;
}

/*
 * The key by its prefix (text) or its hash (bytea), locked until the
 * transaction ends; false if there is none.
 */
bool
ek_intake_keys_lock(bool by_prefix, Datum key, IntakeKeyRow *row)
{
	Datum		args[1] = {key};

	if (ek_stmt_run(by_prefix ? &lock_by_prefix : &lock_by_hash, args, NULL) == 0)
		return false;
	read_row(row);
	return true;
}

/* Revoke the key by its prefix or hash; false if no row was revoked. */
bool
ek_intake_keys_revoke(bool by_prefix, Datum key)
{
	Datum		args[1] = {key};

	return ek_stmt_run(by_prefix ? &revoke_by_prefix : &revoke_by_hash, args, NULL) == 1;
}
