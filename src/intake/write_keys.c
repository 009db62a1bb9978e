/*-------------------------------------------------------------------------
 *
 * write_keys.c
 *	  Write keys of the HTTP intake: eventkit.create_write_key() and
 *	  eventkit.revoke_write_key(), and the lookup the listener does for
 *	  every request (src/intake/http_api.c).
 *
 *	  A key is "ek_" and 32 base32 characters: 160 bits from
 *	  pg_strong_random().  It belongs to one stream and to the role that
 *	  created it; the listener ingests with that role's rights.  Only the
 *	  key's SHA-256 is stored, in eventkit.intake_keys, with its first 11
 *	  characters as a public prefix (catalog/intake_keys.c):
 *	  eventkit.write_keys shows the prefix,
 *	  never the secret, and revoke_write_key() takes either.
 *
 *	  The listener looks a key up for every request (a kept plan on the
 *	  table's primary key; nothing is cached), so a revocation applies to
 *	  every request that starts after it committed.  last_used_at is
 *	  written at most once a minute per key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog/intake_keys.h"
#include "catalog/streams.h"
#include "intake/write_keys.h"
#include "util/compat.h"
#include "util/spi.h"

PG_FUNCTION_INFO_V1(eventkit_create_write_key);
PG_FUNCTION_INFO_V1(eventkit_revoke_write_key);

#define EK_KEY_RANDOM_BYTES		20	/* 160 bits, 32 base32 characters */

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static bool
is_base32(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

/* Does the text look like a write key ("ek_" and 32 base32 characters)? */
bool
ek_write_key_well_formed(const char *key, size_t len)
{
	if (len != EK_WRITE_KEY_LEN || strncmp(key, "ek_", 3) != 0)
		return false;
	for (size_t i = 3; i < len; i++)
		if (!is_base32(key[i]))
			return false;
	return true;
}

/* Does the text look like a key prefix ("ek_" and 8 base32 characters)? */
static bool
prefix_well_formed(const char *key, size_t len)
{
	if (len != EK_WRITE_KEY_PREFIX_LEN || strncmp(key, "ek_", 3) != 0)
		return false;
	for (size_t i = 3; i < len; i++)
		if (!is_base32(key[i]))
			return false;
	return true;
}

/* The stored form of a key: its SHA-256, as a bytea. */
static bytea *
key_hash(const char *key, size_t len)
{
	bytea	   *result = palloc(VARHDRSZ + EK_WRITE_KEY_HASH_LEN);
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) key, len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), EK_WRITE_KEY_HASH_LEN) < 0)
		elog(ERROR, "eventkit: could not compute SHA-256: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + EK_WRITE_KEY_HASH_LEN);
	return result;
}

/* A new key: "ek_" and 160 random bits in base32. */
static void
generate_key(char *key)
{
	uint8		random[EK_KEY_RANDOM_BYTES];
	int			out = 3;

	if (!pg_strong_random(random, sizeof(random)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random write key")));
	memcpy(key, "ek_", 3);
	/* 5 bytes make 8 characters */
	for (int i = 0; i < EK_KEY_RANDOM_BYTES; i += 5)
	{
		uint64		bits = 0;

		for (int j = 0; j < 5; j++)
			bits = (bits << 8) | random[i + j];
		for (int j = 7; j >= 0; j--)
			key[out++] = base32_alphabet[(bits >> (j * 5)) & 31];
	}
	key[out] = '\0';
	Assert(out == EK_WRITE_KEY_LEN);
}

/*
 * Is eventkit.intake_keys there?  Not in a catalog before 1.3 (the listener
 * then answers 503).  No query.
 */
bool
ek_write_keys_installed(void)
{
	return ek_intake_keys_installed();
}

/* ---------------------------------------------------------------------
 * The listener's lookup
 * ---------------------------------------------------------------------
 */

/*
 * Look a key up, in the caller's transaction.  info->status says whether
 * it can be used; with WRITE_KEY_OK, stream and role are set.
 */
void
ek_write_key_lookup(const char *key, size_t len, WriteKeyInfo *info)
{
	IntakeKeyRow row;

	memset(info, 0, sizeof(WriteKeyInfo));
	info->status = WRITE_KEY_UNKNOWN;
	if (!ek_write_key_well_formed(key, len))
		return;

	SPI_connect();
	if (ek_intake_keys_lookup(key_hash(key, len), &row))
	{
		strlcpy(info->prefix, key, sizeof(info->prefix));
		info->role = get_role_oid(row.role, true);
		info->stream = row.stream;
		info->has_last_used = row.has_last_used;
		info->last_used_at = row.last_used_at;
		if (row.revoked)
			info->status = WRITE_KEY_REVOKED;
		else if (!OidIsValid(info->stream))
			info->status = WRITE_KEY_NO_STREAM;
		else if (!OidIsValid(info->role))
			info->status = WRITE_KEY_NO_ROLE;
		else
			info->status = WRITE_KEY_OK;
	}
	SPI_finish();
}

/*
 * Record that a key was used now, in the caller's transaction (which
 * should be near its end: the row stays locked until it ends).  The
 * caller does this at most once a minute per key.
 */
void
ek_write_key_touch(const char *key, size_t len, TimestampTz now)
{
	SPI_connect();
	ek_intake_keys_touch(key_hash(key, len), now);
	SPI_finish();
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/*
 * eventkit.create_write_key(stream regclass, description text DEFAULT NULL)
 * RETURNS text
 *
 * A new key for the stream, owned by the current user, who needs INSERT
 * on the stream (and keeps needing it: the listener checks the privilege
 * at every request).  The key is shown this once.
 */
Datum
eventkit_create_write_key(PG_FUNCTION_ARGS)
{
	Oid			relid;
	StreamInfo	stream;
	AclResult	aclresult;
	char		key[EK_WRITE_KEY_LEN + 1];
	Oid			role = GetUserId();
	char	   *role_name;
	int			attempt;

	relid = ek_stream_arg(fcinfo, 0);
	if (!ek_write_keys_installed())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("eventkit's catalog has no write keys"),
				 errhint("Run ALTER EXTENSION eventkit UPDATE.")));

	SPI_connect();
	ek_streams_read(relid, &stream, false);
	aclresult = pg_class_aclcheck(relid, role, ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(relid));
	role_name = GetUserNameFromId(role, false);
	if (superuser_arg(role))
		ereport(WARNING,
				(errmsg("events sent with this write key are ingested as superuser \"%s\"",
						role_name),
				 errdetail("The stream's triggers, defaults and constraints then run with superuser rights."),
				 errhint("Create write keys as a role that has only INSERT on the stream.")));

	/* a new prefix collides once in about a trillion keys: draw again */
	for (attempt = 0;; attempt++)
	{
		char		prefix[EK_WRITE_KEY_PREFIX_LEN + 1];

		generate_key(key);
		strlcpy(prefix, key, sizeof(prefix));
		if (ek_intake_keys_insert(key_hash(key, EK_WRITE_KEY_LEN), prefix, stream.stream_id,
								  role_name, PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
								  PG_ARGISNULL(1)))
			break;
		if (attempt == 4)
			elog(ERROR, "eventkit: could not draw a write key with a new prefix");
	}
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/*
 * eventkit.revoke_write_key(key text) RETURNS void
 *
 * The key, or its prefix as eventkit.write_keys shows it, stops working
 * for every request that starts after this commits.  Its role (a member
 * of it), the stream's owner or a superuser may revoke it.  The row stays,
 * with revoked_at, so that write_keys shows what was revoked.
 */
Datum
eventkit_revoke_write_key(PG_FUNCTION_ARGS)
{
	text	   *arg;
	char	   *key;
	size_t		len;
	bool		by_prefix;
	char		prefix[EK_WRITE_KEY_PREFIX_LEN + 1];
	Datum		lookup;
	IntakeKeyRow row;
	Oid			role;
	bool		allowed;

	/* STRICT */
	if (!ek_write_keys_installed())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("eventkit's catalog has no write keys"),
				 errhint("Run ALTER EXTENSION eventkit UPDATE.")));
	arg = PG_GETARG_TEXT_PP(0);
	key = text_to_cstring(arg);
	len = strlen(key);
	if (ek_write_key_well_formed(key, len))
		by_prefix = false;
	else if (prefix_well_formed(key, len))
		by_prefix = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is neither a write key nor a write key prefix",
						len > EK_WRITE_KEY_PREFIX_LEN ? psprintf("%.*s...", EK_WRITE_KEY_PREFIX_LEN, key) : key),
				 errhint("Pass the key that eventkit.create_write_key returned, or its prefix (ek_ and 8 characters) as eventkit.write_keys shows it.")));
	strlcpy(prefix, key, sizeof(prefix));
	lookup = by_prefix ? PointerGetDatum(cstring_to_text(prefix)) :
		PointerGetDatum(key_hash(key, len));

	SPI_connect();
	if (!ek_intake_keys_lock(by_prefix, lookup, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("write key %s does not exist", prefix),
				 errhint("eventkit.write_keys lists the keys you may see.")));

	role = get_role_oid(row.role, true);
	allowed = superuser() ||
		(OidIsValid(role) && has_privs_of_role(GetUserId(), role)) ||
		(OidIsValid(row.stream) && ek_owns_relation(row.stream));
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revoke write key %s", prefix),
				 errdetail("A key can be revoked by its role, the owner of its stream or a superuser.")));

	if (row.revoked)
		ereport(NOTICE,
				(errmsg("write key %s was already revoked", prefix)));
	else if (!ek_intake_keys_revoke(by_prefix, lookup))
		elog(ERROR, "eventkit: could not revoke write key %s", prefix);
	SPI_finish();
	PG_RETURN_VOID();
}
