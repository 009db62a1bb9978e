/*-------------------------------------------------------------------------
 *
 * jsonb_raw.c
 *	  Writing jsonb's layout by hand (the readers are inline, in
 *	  jsonb_raw.h): a JsonbValue tree serialized byte for byte as
 *	  convertToJsonb() serializes it, without its per-value calls and
 *	  buffer checks.  The JSON parser (pipeline/json_parse.c) builds such
 *	  trees; with eventkit.testing_json_crosscheck (test builds) every
 *	  result is compared with jsonb_in's, which the json_parse regress test
 *	  does for every kind of value.  A tree may hold containers read from
 *	  another jsonb (jbvBinary, an event's values: its extra column,
 *	  pipeline/event.c): their bytes are copied as they are, where
 *	  convertToJsonb would unpack and pack them again into the same bytes
 *	  (checked against it there, with the same setting; the jsonb_raw
 *	  regress test).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/numeric.h"

#include "util/jsonb_raw.h"

/*
 * Serialization: the jsonb layout convertToJsonb (jsonb_util.c) writes,
 * byte for byte, without its per-value function calls and buffer checks:
 * a container's JEntries (lengths, with an offset every JB_OFFSET_STRIDE
 * entries) then its keys and values, numerics and containers aligned to
 * 4 bytes with zero padding counted in their lengths.  Offsets are kept
 * relative to the start of the varlena, as convertToJsonb's buffer is.
 */
typedef struct JsonbWriter
{
	char	   *data;
	uint32		len;
	uint32		cap;
} JsonbWriter;

static void
writer_grow(JsonbWriter *w, uint32 need)
{
	Size		cap = Max((Size) w->cap * 2, (Size) w->len + need);

	w->data = repalloc_huge(w->data, cap);
	w->cap = cap;
}

static inline void
writer_reserve(JsonbWriter *w, uint32 need)
{
	if (unlikely((Size) w->len + need > w->cap))
		writer_grow(w, need);
}

static inline uint32
writer_pad(JsonbWriter *w)
{
	uint32		pad = INTALIGN(w->len) - w->len;

	writer_reserve(w, pad);
	for (uint32 i = 0; i < pad; i++)
		w->data[w->len++] = 0;
	return pad;
}

/*
 * Copy len bytes: most of a document's strings and numerics are short,
 * for which a call of memcpy costs more than the copy (a few moves here).
 */
static inline void
copy_bytes(char *dst, const char *src, uint32 len)
{
	if (len >= 8 && len <= 16)
	{
		uint64		a;
		uint64		b;

		memcpy(&a, src, 8);
		memcpy(&b, src + len - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + len - 8, &b, 8);
	}
	else if (len >= 4 && len < 8)
	{
		uint32		a;
		uint32		b;

		memcpy(&a, src, 4);
		memcpy(&b, src + len - 4, 4);
		memcpy(dst, &a, 4);
		memcpy(dst + len - 4, &b, 4);
	}
	else if (len < 4)
	{
		for (uint32 i = 0; i < len; i++)
			dst[i] = src[i];
	}
	else
		memcpy(dst, src, len);
}

static bool write_value(JsonbWriter *w, const JsonbValue *v, JEntry *header);

/*
 * The JEntries of a container's children at entries (an offset into data).
 * Inline in write_value: a call each (the function's entry and exit) cost
 * more than most children's bytes; only a container is a call.
 */
static pg_attribute_always_inline bool
write_child(JsonbWriter *w, const JsonbValue *v, int index, uint32 *entries,
			uint32 *totallen)
{
	JEntry		meta;

	/* strings, numerics, null and booleans here */
	if (v->type == jbvString)
	{
		writer_reserve(w, v->val.string.len);
		copy_bytes(w->data + w->len, v->val.string.val, v->val.string.len);
		w->len += v->val.string.len;
		meta = v->val.string.len;
	}
	else if (v->type == jbvNumeric)
	{
		uint32		numlen = VARSIZE_ANY(v->val.numeric);
		uint32		pad = writer_pad(w);

		writer_reserve(w, numlen);
		copy_bytes(w->data + w->len, (const char *) v->val.numeric, numlen);
		w->len += numlen;
		meta = JENTRY_ISNUMERIC | (pad + numlen);
	}
	else if (v->type == jbvNull)
		meta = JENTRY_ISNULL;
	else if (v->type == jbvBool)
		meta = v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
	else if (!write_value(w, v, &meta))
		return false;
	*totallen += JBE_OFFLENFLD(meta);
	if (*totallen > JENTRY_OFFLENMASK)
		return false;
	if (index % JB_OFFSET_STRIDE == 0)
		meta = (meta & JENTRY_TYPEMASK) | *totallen | JENTRY_HAS_OFF;
	memcpy(w->data + *entries, &meta, sizeof(JEntry));
	*entries += sizeof(JEntry);
	return true;
}

/*
 * Write one value; false if it exceeds jsonb's size limits (the caller
 * then leaves the text to jsonb_in, which reports them).
 */
static bool
write_value(JsonbWriter *w, const JsonbValue *v, JEntry *header)
{
	switch (v->type)
	{
		case jbvNull:
			*header = JENTRY_ISNULL;
			return true;
		case jbvBool:
			*header = v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
			return true;
		case jbvString:
			writer_reserve(w, v->val.string.len);
			copy_bytes(w->data + w->len, v->val.string.val, v->val.string.len);
			w->len += v->val.string.len;
			*header = v->val.string.len;
			return true;
		case jbvNumeric:
			{
				uint32		numlen = VARSIZE_ANY(v->val.numeric);
				uint32		pad = writer_pad(w);

				writer_reserve(w, numlen);
				copy_bytes(w->data + w->len, (const char *) v->val.numeric, numlen);
				w->len += numlen;
				*header = JENTRY_ISNUMERIC | (pad + numlen);
				return true;
			}
		case jbvArray:
		case jbvObject:
			{
				uint32		base = w->len;
				bool		is_object = v->type == jbvObject;
				int			n = is_object ? v->val.object.nPairs : v->val.array.nElems;
				uint32		head = n | (is_object ? JB_FOBJECT : JB_FARRAY);
				uint32		entries;
				uint32		totallen = 0;

				if (n > JB_CMASK)
					return false;
				writer_pad(w);
				writer_reserve(w, sizeof(uint32) + sizeof(JEntry) * n * (is_object ? 2 : 1));
				memcpy(w->data + w->len, &head, sizeof(uint32));
				w->len += sizeof(uint32);
				entries = w->len;
				w->len += sizeof(JEntry) * n * (is_object ? 2 : 1);
				if (is_object)
				{
					const JsonbPair *pairs = v->val.object.pairs;

					for (int i = 0; i < n; i++)
						if (!write_child(w, &pairs[i].key, i, &entries, &totallen))
							return false;
					for (int i = 0; i < n; i++)
						if (!write_child(w, &pairs[i].value, i + n, &entries, &totallen))
							return false;
				}
				else
				{
					for (int i = 0; i < n; i++)
						if (!write_child(w, &v->val.array.elems[i], i, &entries, &totallen))
							return false;
				}
				totallen = w->len - base;
				if (totallen > JENTRY_OFFLENMASK)
					return false;
				*header = JENTRY_ISCONTAINER | totallen;
				return true;
			}
		case jbvBinary:
			{
				/*
				 * A container read from a jsonb (an event's value): its
				 * bytes as they are.  Its padding inside is the same here,
				 * since it starts INTALIGNed in both places (relative to
				 * the varlena's start, as convertToJsonb pads).
				 */
				uint32		base = w->len;
				uint32		len = v->val.binary.len;

				if (JsonContainerIsScalar(v->val.binary.data))
					return false;
				writer_pad(w);
				writer_reserve(w, len);
				memcpy(w->data + w->len, v->val.binary.data, len);
				w->len += len;
				if (w->len - base > JENTRY_OFFLENMASK)
					return false;
				*header = JENTRY_ISCONTAINER | (w->len - base);
				return true;
			}
		default:
			return false;
	}
}

/*
 * A JsonbValue tree whose root is a container (jbvArray, jbvObject; its
 * objects' pairs sorted and unique, as jsonb keeps them) as jsonb; NULL if
 * it is over jsonb's size limits.  len_hint: about how many bytes it
 * takes (the JSON text's length).
 */
Jsonb *
ek_jsonb_serialize(const JsonbValue *root, int len_hint)
{
	JsonbWriter w;
	JEntry		header;

	w.cap = (uint32) Min((Size) len_hint + (Size) len_hint / 4 + 64, MaxAllocSize);
	w.data = palloc(w.cap);
	w.len = VARHDRSZ;
	if (!write_value(&w, root, &header))
	{
		pfree(w.data);
		return NULL;
	}
	SET_VARSIZE(w.data, w.len);
	return (Jsonb *) w.data;
}

