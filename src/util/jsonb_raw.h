/*-------------------------------------------------------------------------
 *
 * jsonb_raw.h
 *	  Reading and writing jsonb's binary layout by hand, in one place
 *	  (jsonb_raw.c; the readers are inline, they run for every value the
 *	  validator checks and every event fingerprinted).
 *
 *	  The layout (PostgreSQL's utils/jsonb.h, jsonb_util.c): a container is
 *	  a uint32 header (count and kind) and one JEntry per child (an
 *	  object's keys first, then its values), then the children's data.
 *	  A JEntry holds the child's type and either its length or, every
 *	  JB_OFFSET_STRIDE'th one, its end offset; numerics and containers are
 *	  INTALIGNed, the padding counted in the previous child's length.
 *	  Readers here walk the JEntries directly instead of using
 *	  JsonbIterator (much cheaper); the writer produces, byte for byte,
 *	  what convertToJsonb() produces.  Used by the JSON parser's serializer
 *	  (pipeline/json_parse.c), the content fingerprint (pipeline/event.c)
 *	  and the JSON Schema validator (jsonschema/jsonschema_int.h); a
 *	  change of jsonb's layout in PostgreSQL is a change here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_JSONB_RAW_H
#define EK_UTIL_JSONB_RAW_H

#include "postgres.h"

#include "common/hashfn.h"
#include "utils/jsonb.h"

/* One child of a container: its JEntry and where its data is. */
typedef struct EkJsonbChild
{
	JEntry		entry;
	const char *data;			/* strings: the bytes; numerics and
								 * containers: their aligned start */
	uint32		len;			/* bytes (with padding, for numerics and
								 * containers) */
} EkJsonbChild;

/* JEntries of a container: 2 per pair of an object, 1 per element. */
static inline int
ek_jsonb_nentries(const JsonbContainer *c)
{
	int			n = JsonContainerSize(c);

	return JsonContainerIsObject(c) ? n * 2 : n;
}

/* Where the children's data starts. */
static inline const char *
ek_jsonb_base(const JsonbContainer *c)
{
	return (const char *) &c->children[ek_jsonb_nentries(c)];
}

/*
 * Child i of c (base: ek_jsonb_base(c)), whose data starts at offset *off;
 * advances *off to where child i+1's data starts.
 */
static inline void
ek_jsonb_child(const JsonbContainer *c, const char *base, int i, uint32 *off,
			   EkJsonbChild *child)
{
	JEntry		e = c->children[i];
	uint32		start = *off;
	uint32		end = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : start + JBE_OFFLENFLD(e);

	*off = end;
	child->entry = e;
	child->len = end - start;
	if (JBE_ISNUMERIC(e) || JBE_ISCONTAINER(e))
		child->data = base + INTALIGN(start);
	else
		child->data = base + start;
}

/*
 * The offset of child i's data (getJsonbOffset(), inline): the lengths
 * summed back to the nearest JEntry that holds an offset.
 */
static inline uint32
ek_jsonb_offset(const JsonbContainer *c, int i)
{
	uint32		off = 0;

	for (int j = i - 1; j >= 0; j--)
	{
		JEntry		e = c->children[j];

		off += JBE_OFFLENFLD(e);
		if (JBE_HAS_OFF(e))
			break;
	}
	return off;
}

/* A scalar child as a JsonbValue (strings and numerics point into c). */
static inline void
ek_jsonb_child_scalar(const EkJsonbChild *child, JsonbValue *v)
{
	if (JBE_ISSTRING(child->entry))
	{
		v->type = jbvString;
		v->val.string.val = (char *) child->data;
		v->val.string.len = child->len;
	}
	else if (JBE_ISNUMERIC(child->entry))
	{
		v->type = jbvNumeric;
		v->val.numeric = (Numeric) child->data;
	}
	else if (JBE_ISNULL(child->entry))
		v->type = jbvNull;
	else
	{
		v->type = jbvBool;
		v->val.boolean = JBE_ISBOOL_TRUE(child->entry);
	}
}

/*
 * numeric's short format, as stored (PostgreSQL's numeric.c; on disk, so
 * pg_upgrade keeps it): a 4-byte varlena header, a uint16 header (the
 * short flag, sign, display scale, weight), then base-10000 digits
 * (int16).  The JSON parser writes numbers in it (pipeline/json_parse.c,
 * checked against jsonb_in by its crosscheck), the fingerprint hashes them
 * (ek_numeric_hash).
 */
#define EK_NUMERIC_SIGN_MASK				0xC000
#define EK_NUMERIC_SHORT					0x8000
#define EK_NUMERIC_SHORT_SIGN_MASK			0x2000
#define EK_NUMERIC_SHORT_DSCALE_SHIFT		7
#define EK_NUMERIC_SHORT_DSCALE_MAX			0x3F
#define EK_NUMERIC_SHORT_WEIGHT_SIGN_MASK	0x0040
#define EK_NUMERIC_SHORT_WEIGHT_MASK		0x003F
#define EK_NUMERIC_SHORT_WEIGHT_MAX			EK_NUMERIC_SHORT_WEIGHT_MASK
#define EK_NUMERIC_SHORT_WEIGHT_MIN			(-(EK_NUMERIC_SHORT_WEIGHT_MASK + 1))
#define EK_NUMERIC_HDRSZ_SHORT				(VARHDRSZ + sizeof(uint16))

/*
 * hash_numeric_extended(num, seed) for a numeric in the short format with
 * a 4-byte header (false for any other: the caller asks PostgreSQL):
 * the digits without leading and trailing zero digits hashed, the weight
 * (less the leading zero digits) mixed in by XOR; zero is seed - 1.  The
 * jsonb_raw regress test compares it with PostgreSQL's
 * (fingerprint_walk_check).
 */
static inline bool
ek_numeric_hash(const void *num, uint64 seed, uint64 *hash)
{
	const char *p = (const char *) num;
	uint16		header;
	const int16 *digits;
	int			n;
	int			weight;

	if (!VARATT_IS_4B_U(p))
		return false;
	memcpy(&header, p + VARHDRSZ, sizeof(uint16));
	if ((header & EK_NUMERIC_SIGN_MASK) != EK_NUMERIC_SHORT)
		return false;
	n = (VARSIZE(p) - EK_NUMERIC_HDRSZ_SHORT) / sizeof(int16);
	digits = (const int16 *) (p + EK_NUMERIC_HDRSZ_SHORT);
	weight = (header & EK_NUMERIC_SHORT_WEIGHT_SIGN_MASK) ?
		(~EK_NUMERIC_SHORT_WEIGHT_MASK | (header & EK_NUMERIC_SHORT_WEIGHT_MASK)) :
		(header & EK_NUMERIC_SHORT_WEIGHT_MASK);
	while (n > 0 && digits[0] == 0)
	{
		digits++;
		n--;
		weight--;
	}
	if (n == 0)
	{
		*hash = seed - 1;
		return true;
	}
	while (digits[n - 1] == 0)
		n--;
	*hash = hash_bytes_extended((const unsigned char *) digits, n * sizeof(int16), seed) ^
		(uint64) (int64) weight;
	return true;
}

extern Jsonb *ek_jsonb_serialize(const JsonbValue *root, int len_hint);

#endif							/* EK_UTIL_JSONB_RAW_H */
