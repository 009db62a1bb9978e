/*-------------------------------------------------------------------------
 *
 * json_parse.c
 *	  A fast path from JSON text to jsonb for ingest(text): one pass over
 *	  the bytes into a JsonbValue tree, object keys sorted and de-duplicated
 *	  the way jsonb_in does it, then serialized in jsonb's layout (as
 *	  convertToJsonb does, without its per-value calls: util/jsonb_raw.c).
 *	  The result is byte-for-byte what jsonb_in returns for the same text.
 *
 *	  It accepts strict RFC 8259 JSON and declines (returns NULL) on
 *	  anything else or anything unusual: syntax errors, \u0000, lone
 *	  surrogates, non-ASCII \u escapes in a database that is not UTF-8,
 *	  nesting deeper than EK_JSON_MAX_DEPTH.  The caller then runs jsonb_in,
 *	  so the error messages and every corner case stay PostgreSQL's.
 *
 *	  Strings without escapes point into the input; nothing is copied until
 *	  the serializer writes the result.  The containers' children are cut
 *	  from a few growing chunks rather than palloc'd one container at a
 *	  time.  Integers of up to 18 digits become
 *	  numerics without going through numeric_in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "pipeline/json_parse.h"
#include "util/jsonb_raw.h"
#include "util/guc.h"

#define EK_JSON_MAX_DEPTH 512

/* a container being parsed: its children sit on the value stack */
typedef struct OpenContainer
{
	bool		is_object;
	int			first;			/* index of its first child on the stack */
} OpenContainer;

typedef struct JsonParser
{
	const char *p;
	const char *end;
	/* values of the open containers (keys and values alternate in objects) */
	JsonbValue *stack;
	int			nstack;
	int			stack_cap;
	OpenContainer open[EK_JSON_MAX_DEPTH];
	int			depth;
	bool		utf8;
	/* where the containers' pairs and elements are allocated from */
	char	   *arena;
	Size		arena_left;
	Size		arena_next;		/* the next chunk's size */
} JsonParser;

#define EK_JSON_ARENA_FIRST 1024
#define EK_JSON_ARENA_MAX (64 * 1024)

/*
 * Memory for a container's children, cut from chunks of the current
 * context (freed with it, as the tree is): one palloc per many
 * containers instead of one each.  The chunks double from 1 kB (an
 * NDJSON line's event) up to 64 kB (a batch's).
 */
static inline void *
parser_alloc(JsonParser *ps, Size size)
{
	void	   *result;

	size = MAXALIGN(size);
	if (unlikely(size > ps->arena_left))
	{
		Size		chunk = Max(size, ps->arena_next);

		ps->arena = MemoryContextAllocHuge(CurrentMemoryContext, chunk);
		ps->arena_left = chunk;
		ps->arena_next = Min(ps->arena_next * 2, EK_JSON_ARENA_MAX);
	}
	result = ps->arena;
	ps->arena += size;
	ps->arena_left -= size;
	return result;
}

static inline bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void
skip_ws(JsonParser *ps)
{
	while (ps->p < ps->end && is_ws(*ps->p))
		ps->p++;
}

/* After a number or a literal: only whitespace, structure or the end. */
static inline bool
at_token_end(const JsonParser *ps)
{
	char		c;

	if (ps->p >= ps->end)
		return true;
	c = *ps->p;
	return is_ws(c) || c == ',' || c == ']' || c == '}' || c == ':';
}

static JsonbValue *
push_value(JsonParser *ps)
{
	if (ps->nstack == ps->stack_cap)
	{
		ps->stack_cap *= 2;
		ps->stack = repalloc(ps->stack, sizeof(JsonbValue) * ps->stack_cap);
	}
	return &ps->stack[ps->nstack++];
}

static inline int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(JsonParser *ps, pg_wchar *out)
{
	pg_wchar	c = 0;

	if (ps->end - ps->p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		int			h = hex_value(ps->p[i]);

		if (h < 0)
			return false;
		c = (c << 4) | h;
	}
	ps->p += 4;
	*out = c;
	return true;
}

/*
 * The rest of a string with escapes, from the first backslash: de-escaped
 * into a palloc'd copy.  ps->p is at the backslash; start is the string's
 * first byte.
 */
static pg_noinline bool
read_escaped_string(JsonParser *ps, const char *start, JsonbValue *v)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, start, ps->p - start);
	while (ps->p < ps->end)
	{
		const char *run = ps->p;
		unsigned char c;

		while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' &&
			   (unsigned char) *ps->p >= 0x20)
			ps->p++;
		appendBinaryStringInfo(&buf, run, ps->p - run);
		if (ps->p >= ps->end)
			return false;
		c = (unsigned char) *ps->p;
		if (c == '"')
		{
			if (buf.len > JENTRY_OFFLENMASK)
				return false;
			ps->p++;
			v->type = jbvString;
			v->val.string.val = buf.data;
			v->val.string.len = buf.len;
			return true;
		}
		if (c < 0x20)
			return false;
		/* a backslash */
		if (++ps->p >= ps->end)
			return false;
		c = (unsigned char) *ps->p++;
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				appendStringInfoChar(&buf, c);
				break;
			case 'b':
				appendStringInfoChar(&buf, '\b');
				break;
			case 'f':
				appendStringInfoChar(&buf, '\f');
				break;
			case 'n':
				appendStringInfoChar(&buf, '\n');
				break;
			case 'r':
				appendStringInfoChar(&buf, '\r');
				break;
			case 't':
				appendStringInfoChar(&buf, '\t');
				break;
			case 'u':
				{
					pg_wchar	cp;
					unsigned char utf8[8];

					if (!read_hex4(ps, &cp))
						return false;
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						pg_wchar	lo;

						/* a high surrogate must be followed by a low one */
						if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
							return false;
						ps->p += 2;
						if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF)
							return false;
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					else if (cp >= 0xDC00 && cp <= 0xDFFF)
						return false;
					if (cp == 0)
						return false;	/* jsonb_in rejects \u0000 */
					if (cp < 0x80)
						appendStringInfoChar(&buf, (char) cp);
					else
					{
						if (!ps->utf8)
							return false;
						unicode_to_utf8(cp, utf8);
						appendBinaryStringInfo(&buf, (char *) utf8, pg_utf_mblen(utf8));
					}
					break;
				}
			default:
				return false;
		}
	}
	return false;
}

/*
 * Whether any of the 8 bytes in w is '"', a backslash or a control
 * character (< 0x20): the classic "has a zero byte" bit trick, applied to
 * w ^ '"', w ^ '\\' and to w - 0x20.  Nonzero (the flagged bytes' high
 * bits) exactly when one is.
 */
static inline uint64
word_needs_attention(uint64 w)
{
	const uint64 ones = UINT64CONST(0x0101010101010101);
	const uint64 highs = UINT64CONST(0x8080808080808080);
	uint64		quote = w ^ (ones * '"');
	uint64		backslash = w ^ (ones * '\\');
	uint64		found;

	found = ((quote - ones) & ~quote) |
		((backslash - ones) & ~backslash) |
		((w - ones * 0x20) & ~w);
	return found & highs;
}

/* A string; ps->p is just past the opening quote (inline: most values and every key). */
static pg_attribute_always_inline bool
read_string(JsonParser *ps, JsonbValue *v)
{
	const char *start = ps->p;
	const char *q = start;

	/*
	 * Skip 8 plain bytes at a time, then look byte by byte.  A word's
	 * lowest flagged byte is never past its first byte that needs
	 * attention (the trick's false positives come only after a true one,
	 * from the borrow), so on a little-endian machine the byte loop starts
	 * there.
	 */
	while (ps->end - q >= 8)
	{
		uint64		w;
		uint64		found;

		memcpy(&w, q, 8);
		found = word_needs_attention(w);
		if (found != 0)
		{
#ifndef WORDS_BIGENDIAN
			q += pg_rightmost_one_pos64(found) / 8;
#endif
			break;
		}
		q += 8;
	}
	while (q < ps->end)
	{
		unsigned char c = (unsigned char) *q;

		if (c == '"')
		{
			if (q - start > JENTRY_OFFLENMASK)
				return false;	/* jsonb_in says why */
			v->type = jbvString;
			v->val.string.val = (char *) start;
			v->val.string.len = q - start;
			ps->p = q + 1;
			return true;
		}
		if (c == '\\')
		{
			ps->p = q;
			return read_escaped_string(ps, start, v);
		}
		if (c < 0x20)
			return false;
		q++;
	}
	return false;
}

/*
 * A number, by JSON's grammar; integers and decimals of up to 18 digits
 * skip numeric_in: the digits as an int64 divided by 10^(digits after the
 * point), which is the value and display scale numeric_in gives ("1.50"
 * keeps its scale 2).
 */
static bool
read_number(JsonParser *ps, JsonbValue *v)
{
	const char *start = ps->p;
	const char *q = start;
	bool		negative = false;
	bool		integral = true;
	int			ndigits = 0;
	int			nfrac = 0;
	int64		ival = 0;

	if (*q == '-')
	{
		negative = true;
		q++;
	}
	if (q >= ps->end)
		return false;
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
	{
		while (q < ps->end && *q >= '0' && *q <= '9')
		{
			if (ndigits < 18)
				ival = ival * 10 + (*q - '0');
			ndigits++;
			q++;
		}
	}
	else
		return false;
	if (q < ps->end && *q == '.')
	{
		integral = false;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9')
			return false;
		while (q < ps->end && *q >= '0' && *q <= '9')
		{
			if (ndigits + nfrac < 18)
				ival = ival * 10 + (*q - '0');
			nfrac++;
			q++;
		}
	}
	/*
	 * An exponent can overflow numeric, and so can a very long number:
	 * numeric_in would throw, so leave those to jsonb_in, whose errors the
	 * caller catches.
	 */
	if (q < ps->end && (*q == 'e' || *q == 'E'))
		return false;
	if (q - start > 1000)
		return false;
	ps->p = q;
	if (!at_token_end(ps))
		return false;

	v->type = jbvNumeric;
	if (integral && ndigits > 0 && ndigits <= 18)
		v->val.numeric = int64_to_numeric(negative ? -ival : ival);
	else if (!integral && ndigits + nfrac <= 18)
		v->val.numeric = int64_div_fast_to_numeric(negative ? -ival : ival, nfrac);
	else
	{
		char		small[64];
		int			len = q - start;
		char	   *str = len < (int) sizeof(small) ? small : palloc(len + 1);

		memcpy(str, start, len);
		str[len] = '\0';
		v->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
															 CStringGetDatum(str),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
	}
	return true;
}

static bool
read_literal(JsonParser *ps, const char *word, int len)
{
	if (ps->end - ps->p < len || memcmp(ps->p, word, len) != 0)
		return false;
	ps->p += len;
	return at_token_end(ps);
}

/* An object's key and the colon after it, pushed as the next child. */
static pg_attribute_always_inline bool
read_key(JsonParser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '"')
		return false;
	ps->p++;
	if (!read_string(ps, push_value(ps)))
		return false;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':')
		return false;
	ps->p++;
	return true;
}

/* jsonb_in's key order: shorter first, then bytewise; see jsonb_util.c */
static inline int
compare_keys(const JsonbPair *a, const JsonbPair *b)
{
	if (a->key.val.string.len != b->key.val.string.len)
		return a->key.val.string.len > b->key.val.string.len ? 1 : -1;
	return memcmp(a->key.val.string.val, b->key.val.string.val,
				  a->key.val.string.len);
}

/* equal keys: the later one first, so that de-duplication keeps it */
static int
compare_pairs(const void *a, const void *b)
{
	const JsonbPair *pa = (const JsonbPair *) a;
	const JsonbPair *pb = (const JsonbPair *) b;
	int			res = compare_keys(pa, pb);

	if (res == 0)
		res = (pa->order > pb->order) ? -1 : 1;
	return res;
}

static void
sort_pairs(JsonbValue *object)
{
	JsonbPair  *pairs = object->val.object.pairs;
	int			n = object->val.object.nPairs;
	bool		duplicates = false;

	if (n < 2)
		return;
	if (n <= 16)
	{
		/*
		 * Insertion sort: objects in events are small, and often sent in
		 * jsonb's order already (a pair after a smaller key stays where it
		 * is, not copied).  Two equal keys are compared with each other on
		 * the way, which tells of duplicates.
		 */
		for (int i = 1; i < n; i++)
		{
			JsonbPair	x;
			int			j = i - 1;
			int			res = compare_keys(&pairs[j], &pairs[i]);

			if (res < 0)
				continue;
			x = pairs[i];
			for (;;)
			{
				if (res == 0)
				{
					duplicates = true;
					/* the later one first (see compare_pairs) */
					if (pairs[j].order > x.order)
						break;
				}
				else if (res < 0)
					break;
				pairs[j + 1] = pairs[j];
				if (--j < 0)
					break;
				res = compare_keys(&pairs[j], &x);
			}
			pairs[j + 1] = x;
		}
	}
	else
	{
		qsort(pairs, n, sizeof(JsonbPair), compare_pairs);
		for (int i = 1; i < n && !duplicates; i++)
			duplicates = compare_keys(&pairs[i - 1], &pairs[i]) == 0;
	}
	if (duplicates)
	{
		int			kept = 0;

		for (int i = 1; i < n; i++)
			if (compare_keys(&pairs[kept], &pairs[i]) != 0)
				pairs[++kept] = pairs[i];
		object->val.object.nPairs = kept + 1;
	}
}

/* Close the innermost container: move its children into it. */
static void
close_container(JsonParser *ps)
{
	OpenContainer *oc = &ps->open[--ps->depth];
	int			nchildren = ps->nstack - oc->first;
	JsonbValue *children = &ps->stack[oc->first];
	JsonbValue	result;

	if (oc->is_object)
	{
		int			npairs = nchildren / 2;
		JsonbPair  *pairs = parser_alloc(ps, sizeof(JsonbPair) * Max(npairs, 1));

		for (int i = 0; i < npairs; i++)
		{
			pairs[i].key = children[2 * i];
			pairs[i].value = children[2 * i + 1];
			pairs[i].order = i;
		}
		result.type = jbvObject;
		result.val.object.nPairs = npairs;
		result.val.object.pairs = pairs;
		sort_pairs(&result);
	}
	else
	{
		JsonbValue *elems = parser_alloc(ps, sizeof(JsonbValue) * Max(nchildren, 1));

		memcpy(elems, children, sizeof(JsonbValue) * nchildren);
		result.type = jbvArray;
		result.val.array.nElems = nchildren;
		result.val.array.elems = elems;
		result.val.array.rawScalar = false;
	}
	ps->nstack = oc->first;
	*push_value(ps) = result;
}

/* eventkit.testing_json_crosscheck: the result must equal jsonb_in's */
static void
crosscheck(const char *str, int len, const Jsonb *result)
{
	char	   *cstr = pnstrdup(str, len);
	Jsonb	   *expected;

	expected = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(cstr)));
	if (VARSIZE(expected) != VARSIZE(result) ||
		memcmp(expected, result, VARSIZE(result)) != 0)
		elog(ERROR, "eventkit's JSON parser and jsonb_in disagree on: %s", cstr);
	pfree(expected);
	pfree(cstr);
}

/*
 * Parse one JSON text; NULL if it is not strict JSON or needs jsonb_in's
 * treatment (see the file header).
 */
Jsonb *
ek_json_to_jsonb(const char *str, int len)
{
	JsonParser	ps;
	JsonbValue *root;
	Jsonb	   *result;

	ps.p = str;
	ps.end = str + len;
	ps.stack_cap = 256;
	ps.stack = palloc(sizeof(JsonbValue) * ps.stack_cap);
	ps.nstack = 0;
	ps.depth = 0;
	ps.utf8 = GetDatabaseEncoding() == PG_UTF8;
	ps.arena = NULL;
	ps.arena_left = 0;
	ps.arena_next = EK_JSON_ARENA_FIRST;

	for (;;)
	{
		JsonbValue *v;
		char		c;

		CHECK_FOR_INTERRUPTS();
		/* a value */
		skip_ws(&ps);
		if (ps.p >= ps.end)
			return NULL;
		c = *ps.p;
		if (c == '{' || c == '[')
		{
			if (ps.depth == EK_JSON_MAX_DEPTH)
				return NULL;
			ps.open[ps.depth].is_object = (c == '{');
			ps.open[ps.depth].first = ps.nstack;
			ps.depth++;
			ps.p++;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == (c == '{' ? '}' : ']'))
			{
				ps.p++;
				close_container(&ps);
				goto after_value;
			}
			if (c == '[')
				continue;
			if (!read_key(&ps))
				return NULL;
			continue;
		}
		v = push_value(&ps);
		switch (c)
		{
			case '"':
				ps.p++;
				if (!read_string(&ps, v))
					return NULL;
				break;
			case 't':
				if (!read_literal(&ps, "true", 4))
					return NULL;
				v->type = jbvBool;
				v->val.boolean = true;
				break;
			case 'f':
				if (!read_literal(&ps, "false", 5))
					return NULL;
				v->type = jbvBool;
				v->val.boolean = false;
				break;
			case 'n':
				if (!read_literal(&ps, "null", 4))
					return NULL;
				v->type = jbvNull;
				break;
			default:
				if (c != '-' && (c < '0' || c > '9'))
					return NULL;
				if (!read_number(&ps, v))
					return NULL;
				break;
		}

after_value:
		/* what follows a value: ',' or the end of containers */
		for (;;)
		{
			skip_ws(&ps);
			if (ps.depth == 0)
			{
				if (ps.p != ps.end)
					return NULL;	/* trailing garbage */
				Assert(ps.nstack == 1);
				root = &ps.stack[0];
				if (root->type == jbvArray || root->type == jbvObject)
				{
					result = ek_jsonb_serialize(root, len);
					if (result == NULL)
						return NULL;
				}
				else
					result = JsonbValueToJsonb(root);	/* a raw scalar */
				if (ek_testing_json_crosscheck)
					crosscheck(str, len, result);
				return result;
			}
			if (ps.p >= ps.end)
				return NULL;
			c = *ps.p++;
			if (c == ',')
				break;
			if (c == (ps.open[ps.depth - 1].is_object ? '}' : ']'))
			{
				close_container(&ps);
				continue;
			}
			return NULL;
		}
		if (ps.open[ps.depth - 1].is_object && !read_key(&ps))
			return NULL;
	}
}
