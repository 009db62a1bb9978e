/*-------------------------------------------------------------------------
 *
 * event.c
 *	  One Segment event: extracting its fields in a single pass over its
 *	  top-level keys, from jsonb or from the JSON parser's tree (ingest's
 *	  text: json_parse.h; its object columns are then serialized from the
 *	  tree), checking it against the Segment spec,
 *	  correcting its time for client clock skew, fingerprinting its content
 *	  (for conflict detection and for ids of events sent without messageId)
 *	  and recording what is wrong with it (problem.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "pipeline/event.h"
#include "pipeline/json_parse.h"
#include "util/guc.h"
#include "util/jsonb_raw.h"

#define MAX_ID_BYTES 256

/* Event times are kept within years 1 to 9999. */
#define MIN_EVENT_TIME INT64CONST(-63082281600000000)	/* 0001-01-01 */
#define END_EVENT_TIME INT64CONST(252455616000000000)	/* 10000-01-01 */

/* Keys excluded from the content fingerprint: they change between retries. */
#define KEY_IS(v, lit) \
	((v)->val.string.len == sizeof(lit) - 1 && \
	 memcmp((v)->val.string.val, (lit), sizeof(lit) - 1) == 0)

/* ---------------------------------------------------------------------
 * ISO 8601 timestamps
 * ---------------------------------------------------------------------
 */

static bool
read_digits(const char **p, const char *end, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (*p >= end || (*p)[0] < '0' || (*p)[0] > '9')
			return false;
		v = v * 10 + ((*p)[0] - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

/*
 * Parse YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]]][Z|z|(+|-)HH[[:]MM]].
 * No zone means UTC.  Returns false for anything else, never throws.
 */
bool
ek_parse_iso8601(const char *str, int len, TimestampTz *result)
{
	const char *p = str;
	const char *end = str + len;
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	Timestamp	ts;

	memset(&tm, 0, sizeof(tm));
	if (!read_digits(&p, end, 4, &tm.tm_year) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &tm.tm_mon) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &tm.tm_mday))
		return false;
	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (!read_digits(&p, end, 2, &tm.tm_hour) || p >= end || *p++ != ':' ||
			!read_digits(&p, end, 2, &tm.tm_min))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (!read_digits(&p, end, 2, &tm.tm_sec))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				int			scale = 100000;
				int			ndigits = 0;

				p++;
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (scale > 0)
						fsec += (*p - '0') * scale;
					scale /= 10;
					p++;
					ndigits++;
				}
				if (ndigits == 0)
					return false;
			}
		}
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			int			sign = (*p == '-') ? -1 : 1;
			int			hh;
			int			mm = 0;

			p++;
			if (!read_digits(&p, end, 2, &hh))
				return false;
			if (p < end && *p == ':')
				p++;
			if (p < end && !read_digits(&p, end, 2, &mm))
				return false;
			if (hh > 15 || mm > 59)
				return false;
			tz = sign * (hh * SECS_PER_HOUR + mm * SECS_PER_MINUTE);
		}
	}
	if (p != end)
		return false;
	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	if (tm.tm_sec == 60)
	{
		/* leap second: fold onto the next second, as PostgreSQL does */
		tm.tm_sec = 59;
		fsec += USECS_PER_SEC;
	}
	if (tm2timestamp(&tm, 0, NULL, &ts) != 0)
		return false;
	ts += fsec;
	/* the fields were local to offset tz (seconds east of UTC) */
	ts -= (int64) tz * USECS_PER_SEC;
	if (!IS_VALID_TIMESTAMP(ts))
		return false;
	*result = ts;
	return true;
}

/* A timestamp in ISO 8601 form, in UTC, for messages and envelopes. */
char *
ek_timestamp_iso(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("(out of range)");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/* ---------------------------------------------------------------------
 * Content fingerprint
 * ---------------------------------------------------------------------
 */

static inline uint64
mix(uint64 h, uint64 v)
{
	return ((h << 1) | (h >> 63)) ^ v;
}

/*
 * JsonbHashScalarValueExtended(v) from a zero hash.  A string's is
 * hash_bytes_extended of its bytes (jsonb_util.c), called directly: most
 * of the fingerprint's scalars are strings; a numeric's is
 * hash_numeric_extended's, computed here for the short format
 * (util/jsonb_raw.h).
 */
static inline uint64
hash_scalar(const JsonbValue *v, uint64 seed)
{
	uint64		h = 0;

	if (v->type == jbvString)
		return hash_bytes_extended((const unsigned char *) v->val.string.val,
								   v->val.string.len, seed);
	if (v->type == jbvNumeric && ek_numeric_hash(v->val.numeric, seed, &h))
		return h;
	JsonbHashScalarValueExtended(v, &h, seed);
	return h;
}

/* what hash_scalar must return: PostgreSQL's function, for the tests */
static uint64
hash_scalar_reference(const JsonbValue *v, uint64 seed)
{
	uint64		h = 0;

	JsonbHashScalarValueExtended(v, &h, seed);
	return h;
}

#define TOKEN_HASH(tok) ((uint64) (tok) * 0x9E3779B97F4A7C15ULL)

static uint64 hash_walk(const JsonbContainer *c, uint64 h, uint64 seed);

/*
 * One child of a container: a scalar is mixed in with its token; a
 * container is walked.
 */
static inline uint64
hash_child(const EkJsonbChild *child, JsonbIteratorToken tok, uint64 h, uint64 seed)
{
	JsonbValue	v;

	if (JBE_ISCONTAINER(child->entry))
		return hash_walk((const JsonbContainer *) child->data, h, seed);
	ek_jsonb_child_scalar(child, &v);
	return mix(h, hash_scalar(&v, seed) + tok);
}

/*
 * Mix a container's tokens into h in the order JsonbIteratorNext (without
 * skipping nested containers) returns them: begin, then each key and value
 * (or element), nested containers in place, then end.  Reads the JEntries
 * directly (util/jsonb_raw.h), which is much cheaper than the iterator;
 * the result is the same, and must stay the same: stored fingerprints and
 * derived ids depend on it.
 */
static uint64
hash_walk(const JsonbContainer *c, uint64 h, uint64 seed)
{
	uint32		count = JsonContainerSize(c);
	bool		is_object = JsonContainerIsObject(c);
	const char *base = ek_jsonb_base(c);
	uint32		offset = 0;
	/* an object's values are stored after all its keys */
	uint32		value_offset = is_object ? ek_jsonb_offset(c, count) : 0;

	check_stack_depth();
	h = mix(h, TOKEN_HASH(is_object ? WJB_BEGIN_OBJECT : WJB_BEGIN_ARRAY));
	for (uint32 i = 0; i < count; i++)
	{
		EkJsonbChild child;

		ek_jsonb_child(c, base, i, &offset, &child);
		h = hash_child(&child, is_object ? WJB_KEY : WJB_ELEM, h, seed);
		if (is_object)
		{
			ek_jsonb_child(c, base, count + i, &value_offset, &child);
			h = hash_child(&child, WJB_VALUE, h, seed);
		}
	}
	return mix(h, TOKEN_HASH(is_object ? WJB_END_OBJECT : WJB_END_ARRAY));
}

static uint64
hash_container(const JsonbContainer *c, uint64 seed)
{
	return hash_walk(c, seed, seed);
}

/*
 * hash_walk over a container of the JSON parser's tree (json_parse.h):
 * the same tokens in the same order (its objects' pairs are sorted and
 * unique as jsonb's), so the same value (fingerprint_walk_check compares
 * them).  The parser's depth is bounded (EK_JSON_MAX_DEPTH), so is this
 * recursion.
 */
static uint64
hash_tree(const JsonbValue *c, uint64 h, uint64 seed)
{
	if (c->type == jbvObject)
	{
		const JsonbPair *pairs = c->val.object.pairs;

		h = mix(h, TOKEN_HASH(WJB_BEGIN_OBJECT));
		for (int i = 0; i < c->val.object.nPairs; i++)
		{
			const JsonbValue *v = &pairs[i].value;

			h = mix(h, hash_scalar(&pairs[i].key, seed) + WJB_KEY);
			if (v->type == jbvObject || v->type == jbvArray)
				h = hash_tree(v, h, seed);
			else
				h = mix(h, hash_scalar(v, seed) + WJB_VALUE);
		}
		return mix(h, TOKEN_HASH(WJB_END_OBJECT));
	}
	h = mix(h, TOKEN_HASH(WJB_BEGIN_ARRAY));
	for (int i = 0; i < c->val.array.nElems; i++)
	{
		const JsonbValue *v = &c->val.array.elems[i];

		if (v->type == jbvObject || v->type == jbvArray)
			h = hash_tree(v, h, seed);
		else
			h = mix(h, hash_scalar(v, seed) + WJB_ELEM);
	}
	return mix(h, TOKEN_HASH(WJB_END_ARRAY));
}

/* A value's hash: a container's walk from the seed, a scalar's own. */
static uint64
hash_value(const JsonbValue *v, uint64 seed)
{
	if (v->type == jbvBinary)
		return hash_container(v->val.binary.data, seed);
	if (v->type == jbvObject || v->type == jbvArray)
		return hash_tree(v, seed, seed);
	return hash_scalar(v, seed);
}

/* ---------------------------------------------------------------------
 * Field extraction
 * ---------------------------------------------------------------------
 */

static char *
scalar_text(const JsonbValue *v)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	return NULL;
}

static const char *
json_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "array" : "object";
		case jbvArray:
			return "array";
		case jbvObject:
			return "object";
		default:
			return "value";
	}
}

/* An id field: a non-empty string or a number, at most MAX_ID_BYTES. */
static char *
id_field(SegmentEvent *ev, const JsonbValue *v, const char *field,
		 EkReason reason)
{
	char	   *s;

	if (v->type == jbvNull)
		return NULL;
	s = scalar_text(v);
	if (s == NULL)
	{
		ek_add_problem(&ev->problems, reason, "%s must be a string, not %s",
					   field, json_type_name(v));
		return NULL;
	}
	if (s[0] == '\0')
		return NULL;
	if (strlen(s) > MAX_ID_BYTES)
	{
		ek_add_problem(&ev->problems, reason, "%s is longer than %d bytes", field, MAX_ID_BYTES);
		return NULL;
	}
	return s;
}

static bool
time_field(SegmentEvent *ev, const JsonbValue *v, const char *field,
		   TimestampTz *out)
{
	if (v->type == jbvNull)
		return false;
	if (v->type != jbvString)
	{
		ek_add_problem(&ev->problems, EK_REASON_INVALID_TIMESTAMP, "%s must be an ISO 8601 string, not %s",
					   field, json_type_name(v));
		return false;
	}
	if (!ek_parse_iso8601(v->val.string.val, v->val.string.len, out))
	{
		ek_add_problem(&ev->problems, EK_REASON_INVALID_TIMESTAMP, "%s is not an ISO 8601 timestamp: \"%.*s\"",
					   field, Min(v->val.string.len, 64), v->val.string.val);
		return false;
	}
	return true;
}

static Jsonb *
object_field(SegmentEvent *ev, const JsonbValue *v, const char *field)
{
	if (v->type == jbvNull)
		return NULL;
	if (v->type == jbvObject)
		return ek_json_tree_jsonb(v);	/* from the parser's tree */
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
	{
		ek_add_problem(&ev->problems, EK_REASON_INVALID_FIELD, "%s must be an object, not %s",
					   field, json_type_name(v));
		return NULL;
	}
	return JsonbValueToJsonb((JsonbValue *) v);
}

/* Shallow merge: the batch envelope's context under the event's own. */
static Jsonb *
merge_context(const JsonbValue *outer_value, Jsonb *inner)
{
	JsonbContainer *outer = outer_value->val.binary.data;
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *res;

	if (inner == NULL)
		return JsonbValueToJsonb((JsonbValue *) outer_value);

	/* concatenating two objects keeps the last value of a repeated key */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int pass = 0; pass < 2; pass++)
	{
		JsonbContainer *c = pass == 0 ? outer : &inner->root;

		it = JsonbIteratorInit(c);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY || tok == WJB_VALUE)
				pushJsonbValue(&state, tok, &v);
		}
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Pair i of object c (base: ek_jsonb_base(c)) as JsonbIteratorNext returns
 * it, nested containers as jbvBinary, read from the JEntries directly
 * (util/jsonb_raw.h).  *key_offset and *value_offset: where key i's and
 * value i's data start (0 and ek_jsonb_offset(c, npairs) for pair 0);
 * advanced to pair i + 1's.
 */
static inline void
raw_pair(const JsonbContainer *c, const char *base, uint32 i, uint32 npairs,
		 uint32 *key_offset, uint32 *value_offset, JsonbValue *k, JsonbValue *v)
{
	EkJsonbChild child;
	uint32		start = *value_offset;

	ek_jsonb_child(c, base, i, key_offset, &child);
	ek_jsonb_child_scalar(&child, k);
	ek_jsonb_child(c, base, npairs + i, value_offset, &child);
	if (JBE_ISCONTAINER(child.entry))
	{
		/* the length without the alignment padding before it, as fillJsonbValue */
		v->type = jbvBinary;
		v->val.binary.data = (JsonbContainer *) child.data;
		v->val.binary.len = *value_offset - INTALIGN(start);
	}
	else
		ek_jsonb_child_scalar(&child, v);
}

/*
 * The pairs of an event's object, in order: read from a jsonb's JEntries
 * (raw_pair) or, from the JSON parser's tree, as they are.
 */
typedef struct PairReader
{
	const JsonbPair *pairs;		/* the tree's, or NULL */
	const JsonbContainer *obj;	/* else: the jsonb's object */
	const char *base;
	uint32		npairs;
	uint32		key_offset;
	uint32		value_offset;
} PairReader;

/* A reader of the object v (jbvBinary or jbvObject); false if it is none. */
static bool
pair_reader_init(PairReader *r, const JsonbValue *v)
{
	memset(r, 0, sizeof(PairReader));
	if (v->type == jbvObject)
	{
		r->pairs = v->val.object.pairs;
		r->npairs = v->val.object.nPairs;
		return true;
	}
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return false;
	r->obj = v->val.binary.data;
	r->npairs = JsonContainerSize(r->obj);
	r->base = ek_jsonb_base(r->obj);
	r->value_offset = ek_jsonb_offset(r->obj, r->npairs);
	return true;
}

/* Pair i (each in turn, from 0): *k and *v point to it. */
static inline void
pair_read(PairReader *r, uint32 i, const JsonbValue **k, const JsonbValue **v,
		  JsonbValue *kbuf, JsonbValue *vbuf)
{
	if (r->pairs != NULL)
	{
		*k = &r->pairs[i].key;
		*v = &r->pairs[i].value;
		return;
	}
	raw_pair(r->obj, r->base, i, r->npairs, &r->key_offset, &r->value_offset, kbuf, vbuf);
	*k = kbuf;
	*v = vbuf;
}

/* The keys the content fingerprint leaves out: they change between retries. */
static inline bool
is_volatile_key(const JsonbValue *k)
{
	return KEY_IS(k, "sentAt") || KEY_IS(k, "receivedAt");
}

/*
 * The derived id's second half: the pairs of the event's object (but the
 * volatile keys) hashed with seed 1, from 1, as the first half is with
 * seed 0 from 0.  Only an event without a usable messageId needs it, so it
 * is a pass of its own (until 1.17 it was mixed in the first pass for the
 * pairs before a messageId, whose key sorts after most of an event's: the
 * same value, as the pairs are hashed in the same order either way).
 */
static uint64
fingerprint_seed1(const JsonbValue *source)
{
	PairReader	r;
	uint64		h1 = 1;

	(void) pair_reader_init(&r, source);
	for (uint32 i = 0; i < r.npairs; i++)
	{
		JsonbValue	kbuf;
		JsonbValue	vbuf;
		const JsonbValue *k;
		const JsonbValue *v;

		pair_read(&r, i, &k, &v, &kbuf, &vbuf);
		if (!is_volatile_key(k))
			h1 = mix(h1, hash_scalar(k, 1) ^ hash_value(v, 1));
	}
	return h1;
}

/*
 * The extra column: the event's other pairs, in the order of its object
 * (jsonb's: sorted, unique), nested containers copied as they are
 * (ek_jsonb_serialize).  The bytes are what pushJsonbValue and
 * JsonbValueToJsonb make of the same pairs (checked in test builds with
 * eventkit.testing_json_crosscheck), without unpacking and packing the
 * containers again.
 */
static Jsonb *
extra_jsonb(JsonbPair *pairs, int n)
{
	JsonbValue	obj;
	Jsonb	   *result;

	obj.type = jbvObject;
	obj.val.object.nPairs = n;
	obj.val.object.pairs = pairs;
	result = ek_jsonb_serialize(&obj, 64 * n);
	if (result == NULL || ek_testing_json_crosscheck)
	{
		JsonbParseState *state = NULL;
		Jsonb	   *expected;

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < n; i++)
		{
			JsonbValue	value = pairs[i].value;

			if (value.type == jbvObject || value.type == jbvArray)
			{
				/* the parser's tree: pushed as PostgreSQL's writer makes it */
				Jsonb	   *jb = JsonbValueToJsonb(&value);

				value.type = jbvBinary;
				value.val.binary.data = &jb->root;
				value.val.binary.len = VARSIZE_ANY_EXHDR(jb);
			}
			pushJsonbValue(&state, WJB_KEY, &pairs[i].key);
			pushJsonbValue(&state, WJB_VALUE, &value);
		}
		expected = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
		if (result == NULL)
			return expected;
		if (VARSIZE(expected) != VARSIZE(result) ||
			memcmp(expected, result, VARSIZE(result)) != 0)
			elog(ERROR, "eventkit: the extra column's two writers disagree on: %s",
				 JsonbToCString(NULL, &expected->root, VARSIZE(expected)));
	}
	return result;
}

static const char *const segment_types[] = {
	"track", "identify", "page", "screen", "group", "alias"
};

/*
 * Extract and check the event in ev->source (already set by the caller).
 * Problems are recorded in ev; nothing here throws for bad input.
 */
void
ek_parse_event(SegmentEvent *ev, const EnvelopeDefaults *env,
			   TimestampTz received_at)
{
	PairReader	r;
	JsonbPair  *extra_pairs = NULL;
	int			nextra = 0;
	char	   *name = NULL;
	bool		has_group_id = false;
	bool		has_previous_id = false;
	uint64		h0 = 0;
	bool		type_ok = false;
	bool		type_seen = false;

	if (!pair_reader_init(&r, &ev->source))
	{
		ek_add_problem(&ev->problems, EK_REASON_NOT_AN_OBJECT, "an event must be a JSON object, not %s",
					   json_type_name(&ev->source));
		return;
	}

	for (uint32 i = 0; i < r.npairs; i++)
	{
		bool		volatile_key = false;
		JsonbValue	kbuf;
		JsonbValue	vbuf;
		const JsonbValue *k;
		const JsonbValue *v;

		pair_read(&r, i, &k, &v, &kbuf, &vbuf);

		if (KEY_IS(k, "type"))
		{
			type_seen = true;
			if (v->type == jbvString)
			{
				for (int i = 0; i < lengthof(segment_types); i++)
					if (v->val.string.len == strlen(segment_types[i]) &&
						memcmp(v->val.string.val, segment_types[i], v->val.string.len) == 0)
					{
						ev->type = (char *) segment_types[i];
						type_ok = true;
					}
			}
			if (!type_ok)
				ek_add_problem(&ev->problems, EK_REASON_INVALID_TYPE,
							   "type must be one of track, identify, page, screen, group, alias");
		}
		else if (KEY_IS(k, "messageId"))
			ev->message_id = id_field(ev, v, "messageId", EK_REASON_INVALID_MESSAGE_ID);
		else if (KEY_IS(k, "userId"))
			ev->user_id = id_field(ev, v, "userId", EK_REASON_INVALID_USER_ID);
		else if (KEY_IS(k, "anonymousId"))
			ev->anonymous_id = id_field(ev, v, "anonymousId", EK_REASON_INVALID_USER_ID);
		else if (KEY_IS(k, "event"))
		{
			if (v->type == jbvString && v->val.string.len > 0)
				ev->event = pnstrdup(v->val.string.val, v->val.string.len);
			else if (v->type == jbvString)
				ek_add_problem(&ev->problems, EK_REASON_INVALID_EVENT, "event must not be empty");
			else if (v->type != jbvNull)
				ek_add_problem(&ev->problems, EK_REASON_INVALID_EVENT, "event must be a string, not %s",
							   json_type_name(v));
		}
		else if (KEY_IS(k, "properties"))
			ev->properties = object_field(ev, v, "properties");
		else if (KEY_IS(k, "traits"))
			ev->traits = object_field(ev, v, "traits");
		else if (KEY_IS(k, "context"))
			ev->context = object_field(ev, v, "context");
		else if (KEY_IS(k, "timestamp"))
			ev->has_timestamp = time_field(ev, v, "timestamp", &ev->timestamp);
		else if (KEY_IS(k, "originalTimestamp"))
			ev->has_original_timestamp = time_field(ev, v, "originalTimestamp",
													&ev->original_timestamp);
		else if (KEY_IS(k, "sentAt"))
		{
			ev->has_sent_at = time_field(ev, v, "sentAt", &ev->sent_at);
			volatile_key = true;
		}
		else
		{
			if (KEY_IS(k, "receivedAt"))
				volatile_key = true;
			else if (KEY_IS(k, "name") && v->type == jbvString)
				name = pnstrdup(v->val.string.val, v->val.string.len);
			else if (KEY_IS(k, "groupId") && v->type != jbvNull)
				has_group_id = true;
			else if (KEY_IS(k, "previousId") && v->type != jbvNull)
			{
				/* kept in extra as sent; as an id for the identity graph */
				char	   *prev = scalar_text(v);

				has_previous_id = true;
				if (prev != NULL && prev[0] != '\0' && strlen(prev) <= MAX_ID_BYTES)
					ev->previous_id = prev;
			}
			if (extra_pairs == NULL)
				extra_pairs = palloc(sizeof(JsonbPair) * (r.npairs - i));
			extra_pairs[nextra].key = *k;
			extra_pairs[nextra].value = *v;
			extra_pairs[nextra].order = nextra;
			nextra++;
		}

		/* the second seed's hash is for a derived id only: see below */
		if (!volatile_key)
			h0 = mix(h0, hash_scalar(k, 0) ^ hash_value(v, 0));
	}
	if (nextra > 0)
		ev->extra = extra_jsonb(extra_pairs, nextra);
	ev->fingerprint = (int64) h0;

	if (!type_seen)
		ek_add_problem(&ev->problems, EK_REASON_MISSING_TYPE, "the event has no type");
	if (ev->user_id == NULL && ev->anonymous_id == NULL)
		ek_add_problem(&ev->problems, EK_REASON_MISSING_USER_ID, "the event has neither userId nor anonymousId");
	if (ev->type != NULL)
	{
		if (strcmp(ev->type, "track") == 0 && ev->event == NULL)
			ek_add_problem(&ev->problems, EK_REASON_MISSING_EVENT, "a track event needs a non-empty event name");
		else if (strcmp(ev->type, "group") == 0 && !has_group_id)
			ek_add_problem(&ev->problems, EK_REASON_MISSING_GROUP_ID, "a group event needs a groupId");
		else if (strcmp(ev->type, "alias") == 0 && !has_previous_id)
			ek_add_problem(&ev->problems, EK_REASON_MISSING_PREVIOUS_ID, "an alias event needs a previousId");
		if ((strcmp(ev->type, "page") == 0 || strcmp(ev->type, "screen") == 0) &&
			ev->event == NULL)
			ev->event = name;
	}

	if (ev->message_id == NULL)
	{
		uint64		h1 = fingerprint_seed1(&ev->source);

		ev->message_id = psprintf("ek-%016llx%016llx",
								  (unsigned long long) h0, (unsigned long long) h1);
		ev->derived_id = true;
	}

	if (!ev->has_sent_at && env->has_sent_at)
	{
		ev->has_sent_at = true;
		ev->sent_at = env->sent_at;
	}
	if (env->context.type == jbvBinary)
		ev->context = merge_context(&env->context, ev->context);

	/* Segment's clock-skew correction */
	if (ev->has_sent_at && ev->has_original_timestamp)
	{
		/* all three are valid timestamps, so this cannot overflow int64 */
		int64		t = received_at - (ev->sent_at - ev->original_timestamp);

		if (t < MIN_EVENT_TIME || t >= END_EVENT_TIME)
			ek_add_problem(&ev->problems, EK_REASON_INVALID_TIMESTAMP,
						   "the corrected event time is out of range");
		else
			ev->ts = (TimestampTz) t;
	}
	else if (ev->has_timestamp)
		ev->ts = ev->timestamp;
	else
		ev->ts = received_at;
}

/*
 * The event as sent, as jsonb (built once, kept: a quarantined or
 * conflicting event's payload, a plan's whole-event schema); NULL for an
 * item that did not parse.  From the parser's tree, it is serialized here
 * (json_parse.h).
 */
Jsonb *
ek_event_jsonb(SegmentEvent *ev)
{
	if (ev->payload == NULL && ev->raw == NULL)
	{
		if (ev->source.type == jbvObject || ev->source.type == jbvArray)
			ev->payload = ek_json_tree_jsonb(&ev->source);
		else
			ev->payload = JsonbValueToJsonb(&ev->source);
	}
	return ev->payload;
}

/*
 * The time of an event kept in quarantine (its payload, the envelope's
 * defaults and its receipt time), computed as ingest computed it.  False
 * when the event has problems of its own.
 */
bool
ek_stored_event_time(Jsonb *payload, Jsonb *envelope, TimestampTz received_at,
					 TimestampTz *ts)
{
	SegmentEvent ev;
	EnvelopeDefaults env;

	memset(&ev, 0, sizeof(ev));
	memset(&env, 0, sizeof(env));
	env.context.type = jbvNull;
	if (envelope != NULL && JB_ROOT_IS_OBJECT(envelope))
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&envelope->root, "sentAt", 6, NULL);

		if (v != NULL && v->type == jbvString)
			env.has_sent_at = ek_parse_iso8601(v->val.string.val, v->val.string.len,
											   &env.sent_at);
	}
	if (JB_ROOT_IS_SCALAR(payload))
		return false;
	ev.item = 1;
	ev.source.type = jbvBinary;
	ev.source.val.binary.data = &payload->root;
	ev.source.val.binary.len = VARSIZE_ANY_EXHDR(payload);
	ev.payload = payload;
	ek_parse_event(&ev, &env, received_at);
	*ts = ev.ts;
	return ek_event_ok(&ev);
}

/* ---------------------------------------------------------------------
 * For the tests: the fingerprint's JEntry walk against the iterator
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(eventkit_fingerprint_walk_check);

/*
 * eventkit_internal.fingerprint_walk_check(jsonb) RETURNS boolean: whether
 * hash_walk(), which reads the JEntries directly and hashes strings
 * itself, gives what mixing the tokens of
 * JsonbIteratorNext (nested containers in place), each hashed by
 * PostgreSQL's JsonbHashScalarValueExtended, gives, for both seeds: the
 * equivalence its comment promises.  And, when the JSON parser reads the
 * document's text (json_parse.h), that its tree's jsonb is the document,
 * byte for byte, and that hash_tree over the tree gives the same values
 * (hash_scalar for a scalar): the walk of ingest(text)'s events.
 */
Datum
eventkit_fingerprint_walk_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	char	   *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	JsonbValue	tree;
	bool		parsed = ek_json_parse(text, strlen(text), &tree);

	if (parsed)
	{
		Jsonb	   *again = ek_json_tree_jsonb(&tree);

		if (VARSIZE(again) != VARSIZE(jb) || memcmp(again, jb, VARSIZE(jb)) != 0)
			PG_RETURN_BOOL(false);
	}

	for (uint64 seed = 0; seed <= 1; seed++)
	{
		JsonbIterator *it = JsonbIteratorInit(&jb->root);
		JsonbIteratorToken tok;
		JsonbValue	v;
		uint64		h = seed;

		while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		{
			if (tok == WJB_KEY || tok == WJB_VALUE || tok == WJB_ELEM)
				h = mix(h, hash_scalar_reference(&v, seed) + tok);
			else
				h = mix(h, TOKEN_HASH(tok));
		}
		if (h != hash_container(&jb->root, seed))
			PG_RETURN_BOOL(false);
		if (parsed && (tree.type == jbvObject || tree.type == jbvArray) &&
			hash_tree(&tree, seed, seed) != h)
			PG_RETURN_BOOL(false);
		if (parsed && tree.type != jbvObject && tree.type != jbvArray &&
			hash_scalar(&tree, seed) != hash_scalar_reference(&tree, seed))
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}
