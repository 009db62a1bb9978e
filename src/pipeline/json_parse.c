/*-------------------------------------------------------------------------
 *
 * json_parse.c
 *	  A fast path from JSON text to jsonb for ingest(text): one pass over
 *	  the bytes into a JsonbValue tree, object keys sorted and de-duplicated
 *	  the way jsonb_in does it, then serialized in jsonb's layout (as
 *	  convertToJsonb does, without its per-value calls: util/jsonb_raw.c).
 *	  The result is byte-for-byte what jsonb_in returns for the same text.
 *	  ingest(text) takes the tree itself (ek_json_parse): each event's
 *	  columns are then serialized from it, not the whole batch
 *	  (pipeline/payload.c, pipeline/event.c); every container of such a
 *	  tree carries the length its jsonb takes (ek_json_tree_len), which the
 *	  parser checks against jsonb's limits as it closes the container, so a
 *	  tree is returned exactly when its serialization would succeed.
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
 *	  time.  Numbers without exponent that fit numeric's short format (up
 *	  to 63 digits after the point, 256 before it) are written as numerics
 *	  here, in the chunks: the bytes make_result() writes for them (checked
 *	  against jsonb_in by the crosscheck, see below), without numeric_in or
 *	  a palloc each.
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
#define EK_JSON_MAX_NUMBER 1000	/* longer: numeric_in, through jsonb_in */

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

/* Whitespace is below '!', every structural character above it. */
static inline void
skip_ws(JsonParser *ps)
{
	while (ps->p < ps->end && (unsigned char) *ps->p <= ' ' && is_ws(*ps->p))
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
 * The numeric a JSON number without exponent means (integer part's nint
 * digits at ip, nfrac fraction digits at fp), written as make_result()
 * writes what numeric_in reads from the same text: base-10000 digits
 * aligned on the decimal point, without leading or trailing zero digits,
 * the display scale the number of fraction digits; zero positive, of
 * weight 0.  In the parser's chunks, numeric's short format
 * (util/jsonb_raw.h); NULL when the number does not fit it (numeric_in
 * then).  The crosscheck (test builds) compares every document with
 * jsonb_in's.
 */
static Numeric
make_numeric(JsonParser *ps, bool negative, const char *ip, int nint,
			 const char *fp, int nfrac)
{
	int16		digits[64 + 16];
	int			nint_groups = (nint + 3) / 4;
	int			n = 0;
	int			weight = nint_groups - 1;
	int			first = 0;
	int			lead = nint - (nint_groups - 1) * 4;	/* digits of the first group */
	Size		len;
	char	   *result;
	uint16		header;

	/* a weight or display scale past the short format's */
	if (nfrac > EK_NUMERIC_SHORT_DSCALE_MAX || nint_groups > EK_NUMERIC_SHORT_WEIGHT_MAX + 1)
		return NULL;
	/* the integer part, in groups of 4 from the right */
	for (int g = 0; g < nint_groups; g++)
	{
		int			width = g == 0 ? lead : 4;
		int			d = 0;

		for (int i = 0; i < width; i++)
			d = d * 10 + (*ip++ - '0');
		digits[n++] = d;
	}
	/* the fraction, in groups of 4 from the left, the last one padded */
	for (int i = 0; i < nfrac; i += 4)
	{
		int			d = 0;

		for (int j = 0; j < 4; j++)
			d = d * 10 + (i + j < nfrac ? fp[i + j] - '0' : 0);
		digits[n++] = d;
	}
	while (first < n && digits[first] == 0)
	{
		first++;
		weight--;
	}
	while (n > first && digits[n - 1] == 0)
		n--;
	n -= first;
	if (n == 0)
	{
		weight = 0;
		negative = false;
	}
	if (weight > EK_NUMERIC_SHORT_WEIGHT_MAX || weight < EK_NUMERIC_SHORT_WEIGHT_MIN)
		return NULL;
	header = EK_NUMERIC_SHORT |
		(negative ? EK_NUMERIC_SHORT_SIGN_MASK : 0) |
		(nfrac << EK_NUMERIC_SHORT_DSCALE_SHIFT) |
		(weight < 0 ? EK_NUMERIC_SHORT_WEIGHT_SIGN_MASK : 0) |
		(weight & EK_NUMERIC_SHORT_WEIGHT_MASK);
	len = EK_NUMERIC_HDRSZ_SHORT + n * sizeof(int16);
	result = parser_alloc(ps, len);
	SET_VARSIZE(result, len);
	memcpy(result + VARHDRSZ, &header, sizeof(uint16));
	memcpy(result + EK_NUMERIC_HDRSZ_SHORT, &digits[first], n * sizeof(int16));
	return (Numeric) result;
}

/*
 * A number, by JSON's grammar.  Those that fit numeric's short format
 * (every one of up to 63 fraction digits and 256 integer digits) are
 * written here (make_numeric), the others read by numeric_in.
 */
static bool
read_number(JsonParser *ps, JsonbValue *v)
{
	const char *start = ps->p;
	const char *q = start;
	bool		negative = false;
	const char *ip;
	const char *fp = NULL;
	int			nint;
	int			nfrac = 0;

	if (*q == '-')
	{
		negative = true;
		q++;
	}
	if (q >= ps->end)
		return false;
	ip = q;
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
	{
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	else
		return false;
	nint = q - ip;
	if (q < ps->end && *q == '.')
	{
		q++;
		fp = q;
		if (q >= ps->end || *q < '0' || *q > '9')
			return false;
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
		nfrac = q - fp;
	}
	/*
	 * An exponent can overflow numeric, and so can a very long number:
	 * numeric_in would throw, so leave those to jsonb_in, whose errors the
	 * caller catches.
	 */
	if (q < ps->end && (*q == 'e' || *q == 'E'))
		return false;
	if (q - start > EK_JSON_MAX_NUMBER)
		return false;
	ps->p = q;
	if (!at_token_end(ps))
		return false;

	v->type = jbvNumeric;
	v->val.numeric = make_numeric(ps, negative, ip, nint, fp, nfrac);
	if (v->val.numeric == NULL)
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

/*
 * jsonb_in's key order: shorter first, then bytewise; see jsonb_util.c.
 * Keys of the same length mostly differ early: a loop, not memcmp's call.
 */
static inline int
compare_key_values(const JsonbValue *a, const JsonbValue *b)
{
	const unsigned char *x = (const unsigned char *) a->val.string.val;
	const unsigned char *y = (const unsigned char *) b->val.string.val;
	int			len = a->val.string.len;

	if (len != b->val.string.len)
		return len > b->val.string.len ? 1 : -1;
	for (int i = 0; i < len; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

static inline int
compare_keys(const JsonbPair *a, const JsonbPair *b)
{
	return compare_key_values(&a->key, &b->key);
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

#define EK_JSON_SMALL_OBJECT 16

/*
 * The pairs of an object of at most EK_JSON_SMALL_OBJECT pairs (its keys
 * and values alternate in children) into pairs, in jsonb's order and
 * unique (the last of equal keys kept, as jsonb_in keeps it); returns how
 * many.  Objects in events are small, and often sent in jsonb's order
 * already: an insertion sort of their indexes (a key after a smaller one
 * costs one comparison), then each pair copied once, to its place.  Two
 * equal keys are compared with each other on the way, which tells of
 * duplicates.
 */
static int
sort_small_object(const JsonbValue *children, int npairs, JsonbPair *pairs)
{
	uint8		idx[EK_JSON_SMALL_OBJECT];
	bool		duplicates = false;
	int			n = 0;

	Assert(npairs <= EK_JSON_SMALL_OBJECT);
	for (int i = 0; i < npairs; i++)
	{
		const JsonbValue *key = &children[2 * i];
		int			j = i - 1;

		/* i is the latest: it goes before the keys equal to it */
		while (j >= 0)
		{
			int			res = compare_key_values(&children[2 * idx[j]], key);

			if (res < 0)
				break;
			if (res == 0)
				duplicates = true;
			idx[j + 1] = idx[j];
			j--;
		}
		idx[j + 1] = i;
	}
	for (int k = 0; k < npairs; k++)
	{
		int			i = idx[k];

		if (duplicates && n > 0 &&
			compare_key_values(&pairs[n - 1].key, &children[2 * i]) == 0)
			continue;
		pairs[n].key = children[2 * i];
		pairs[n].value = children[2 * i + 1];
		pairs[n].order = i;
		n++;
	}
	return n;
}

/* The same for a larger object, whose pairs are in place already. */
static int
sort_large_object(JsonbPair *pairs, int n)
{
	bool		duplicates = false;
	int			kept = 0;

	qsort(pairs, n, sizeof(JsonbPair), compare_pairs);
	for (int i = 1; i < n && !duplicates; i++)
		duplicates = compare_keys(&pairs[i - 1], &pairs[i]) == 0;
	if (!duplicates)
		return n;
	for (int i = 1; i < n; i++)
		if (compare_keys(&pairs[kept], &pairs[i]) != 0)
			pairs[++kept] = pairs[i];
	return kept + 1;
}

/* The bytes a container's data takes after len bytes, with child v. */
static inline uint64
add_child_len(uint64 len, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return len + v->val.string.len;
		case jbvNumeric:
			return INTALIGN(len) + VARSIZE_ANY(v->val.numeric);
		case jbvObject:
		case jbvArray:
			return INTALIGN(len) + ek_json_tree_len(v);
		default:
			return len;
	}
}

/*
 * Close the innermost container: move its children into it, and note the
 * bytes its jsonb takes before them (ek_json_tree_len): its header, its
 * JEntries, its children with the padding before numerics and containers
 * (which starts aligned: its padding inside is the same wherever it is
 * written).  False when that is past what a jsonb container can hold (the
 * serializer would fail: jsonb_in then says why).
 */
static bool
close_container(JsonParser *ps)
{
	OpenContainer *oc = &ps->open[--ps->depth];
	int			nchildren = ps->nstack - oc->first;
	JsonbValue *children = &ps->stack[oc->first];
	JsonbValue	result;
	char	   *head;
	uint64		len;
	int			n;

	if (oc->is_object)
	{
		int			npairs = nchildren / 2;
		JsonbPair  *pairs;

		head = parser_alloc(ps, EK_JSON_TREE_HEAD + sizeof(JsonbPair) * Max(npairs, 1));
		pairs = (JsonbPair *) (head + EK_JSON_TREE_HEAD);
		if (npairs <= EK_JSON_SMALL_OBJECT)
			n = sort_small_object(children, npairs, pairs);
		else
		{
			for (int i = 0; i < npairs; i++)
			{
				pairs[i].key = children[2 * i];
				pairs[i].value = children[2 * i + 1];
				pairs[i].order = i;
			}
			n = sort_large_object(pairs, npairs);
		}
		result.type = jbvObject;
		result.val.object.nPairs = n;
		result.val.object.pairs = pairs;
		len = sizeof(uint32) + sizeof(JEntry) * 2 * (uint64) n;
		for (int i = 0; i < n; i++)
			len += pairs[i].key.val.string.len;
		for (int i = 0; i < n; i++)
			len = add_child_len(len, &pairs[i].value);
	}
	else
	{
		JsonbValue *elems;

		head = parser_alloc(ps, EK_JSON_TREE_HEAD + sizeof(JsonbValue) * Max(nchildren, 1));
		elems = (JsonbValue *) (head + EK_JSON_TREE_HEAD);
		memcpy(elems, children, sizeof(JsonbValue) * nchildren);
		result.type = jbvArray;
		result.val.array.nElems = nchildren;
		result.val.array.elems = elems;
		result.val.array.rawScalar = false;
		n = nchildren;
		len = sizeof(uint32) + sizeof(JEntry) * (uint64) n;
		for (int i = 0; i < n; i++)
			len = add_child_len(len, &elems[i]);
	}
	if (n > JB_CMASK || len > JENTRY_OFFLENMASK)
		return false;
	*(uint32 *) head = (uint32) len;
	ps->nstack = oc->first;
	*push_value(ps) = result;
	return true;
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
 * A value of a tree from ek_json_parse as jsonb: its containers' lengths
 * are known (and within jsonb's limits), a scalar is a raw scalar.
 */
Jsonb *
ek_json_tree_jsonb(const JsonbValue *v)
{
	Jsonb	   *result;

	if (v->type != jbvObject && v->type != jbvArray)
		return JsonbValueToJsonb((JsonbValue *) v);
	result = ek_jsonb_serialize(v, ek_json_tree_len(v) + VARHDRSZ);
	if (result == NULL || VARSIZE(result) != ek_json_tree_len(v) + VARHDRSZ)
		elog(ERROR, "eventkit: a parsed JSON container's length is not its jsonb's");
	return result;
}

/*
 * Parse one JSON text into a tree of JsonbValues (*root): objects' pairs
 * sorted and unique as in jsonb, strings pointing into str (or copied
 * when they had escapes), every container's jsonb length noted
 * (ek_json_tree_len).  False if it is not strict JSON or needs jsonb_in's
 * treatment (see the file header).  The tree lives in the current memory
 * context, and as long as str.
 */
bool
ek_json_parse(const char *str, int len, JsonbValue *root)
{
	JsonParser	ps;

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
			return false;
		c = *ps.p;
		if (c == '{' || c == '[')
		{
			if (ps.depth == EK_JSON_MAX_DEPTH)
				return false;
			ps.open[ps.depth].is_object = (c == '{');
			ps.open[ps.depth].first = ps.nstack;
			ps.depth++;
			ps.p++;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == (c == '{' ? '}' : ']'))
			{
				ps.p++;
				if (!close_container(&ps))
					return false;
				goto after_value;
			}
			if (c == '[')
				continue;
			if (!read_key(&ps))
				return false;
			continue;
		}
		v = push_value(&ps);
		switch (c)
		{
			case '"':
				ps.p++;
				if (!read_string(&ps, v))
					return false;
				break;
			case 't':
				if (!read_literal(&ps, "true", 4))
					return false;
				v->type = jbvBool;
				v->val.boolean = true;
				break;
			case 'f':
				if (!read_literal(&ps, "false", 5))
					return false;
				v->type = jbvBool;
				v->val.boolean = false;
				break;
			case 'n':
				if (!read_literal(&ps, "null", 4))
					return false;
				v->type = jbvNull;
				break;
			default:
				if (c != '-' && (c < '0' || c > '9'))
					return false;
				if (!read_number(&ps, v))
					return false;
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
					return false;	/* trailing garbage */
				Assert(ps.nstack == 1);
				*root = ps.stack[0];
				pfree(ps.stack);
				if (ek_testing_json_crosscheck)
					crosscheck(str, len, ek_json_tree_jsonb(root));
				return true;
			}
			if (ps.p >= ps.end)
				return false;
			c = *ps.p++;
			if (c == ',')
				break;
			if (c == (ps.open[ps.depth - 1].is_object ? '}' : ']'))
			{
				if (!close_container(&ps))
					return false;
				continue;
			}
			return false;
		}
		if (ps.open[ps.depth - 1].is_object && !read_key(&ps))
			return false;
	}
}

/*
 * Parse one JSON text into jsonb; NULL if it is not strict JSON or needs
 * jsonb_in's treatment (see the file header).
 */
Jsonb *
ek_json_to_jsonb(const char *str, int len)
{
	JsonbValue	root;

	if (!ek_json_parse(str, len, &root))
		return NULL;
	return ek_json_tree_jsonb(&root);
}
