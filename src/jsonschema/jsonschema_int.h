/*-------------------------------------------------------------------------
 *
 * jsonschema_int.h
 *	  Internals shared by the JSON Schema validator's files: the compiled
 *	  node, the view of a jsonb value the validator walks, the format
 *	  checkers and the ECMA-262 regular expression support.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_JSONSCHEMA_INT_H
#define EVENTKIT_JSONSCHEMA_INT_H

#include "postgres.h"

#include "jsonschema.h"
#include "port/pg_bswap.h"
#include "regex/regex.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "util/jsonb_raw.h"

/* Kinds of JSON values (also the bits of a "type" keyword's mask). */
#define EKT_NULL		0x01
#define EKT_BOOLEAN		0x02
#define EKT_NUMBER		0x04
#define EKT_INTEGER		0x08	/* only in type masks */
#define EKT_STRING		0x10
#define EKT_ARRAY		0x20
#define EKT_OBJECT		0x40

/* A JSON value inside a jsonb, as the validator sees it.  No copies. */
typedef struct EkVal
{
	uint8		kind;			/* EKT_* (never EKT_INTEGER) */
	bool		b;				/* boolean value */
	int32		len;			/* string length in bytes */
	const char *str;			/* string bytes (not NUL-terminated) */
	Numeric		num;			/* number */
	JsonbContainer *cont;		/* array or object */
} EkVal;

/* A compiled ECMA-262 regular expression. */
typedef struct EkRegex
{
	regex_t		re;
	char	   *source;			/* the ECMA-262 source, for messages */
	/* a literal-prefix fast matcher, when the pattern allows one */
	struct EkSimpleRe *simple;	/* a fast matcher, when the pattern allows */
	struct EkRegex *next;		/* all regexes of a schema, for freeing */
} EkRegex;

/* Format checkers (jsonschema_format.c). */
typedef bool (*EkFormatCheck) (const char *s, int len);

/* ---------------------------------------------------------------------
 * Compiled form
 * ---------------------------------------------------------------------
 */

typedef struct EkNode EkNode;

typedef struct EkProp
{
	const char *name;
	int			len;
	EkNode	   *node;
	bool		required;		/* in "properties": also in "required" */
	uint8		pass;			/* kinds of value (EKT_*) that pass node on
								 * "type" alone, nothing else to check */
} EkProp;

typedef struct EkPatProp
{
	EkRegex    *re;
	EkNode	   *node;
} EkPatProp;

typedef struct EkDep
{
	const char *name;			/* the trigger property */
	int			len;
	EkNode	   *node;			/* schema form, or NULL */
	int			nreq;			/* array form */
	EkProp	   *req;
	char	   *req_list;		/* "bar, baz" for messages */
} EkDep;

/* Which keyword groups a node has (bits of EkNode.has). */
#define HAS_NUM		0x0001
#define HAS_STR		0x0002
#define HAS_ARR		0x0004
#define HAS_OBJ		0x0008
#define HAS_ANY		0x0010		/* enum, const, combinators, if, not */

/* EkNode.draft04_excl: a draft-04 "minimum"/"maximum" made exclusive */
#define EK_D4_EXMIN	0x01
#define EK_D4_EXMAX	0x02

typedef struct EkNum
{
	int			sign;			/* -1, 0, 1 */
	int			weight;
	int			ndigits;
	const char *digits;			/* NBASE digits, int16, maybe unaligned */
} EkNum;

struct EkNode
{
	const char *path;			/* schema location, "#/properties/x" */
	int8		boolean;		/* -1: not a boolean schema; else its value */
	uint16		has;			/* HAS_* */
	uint8		work;			/* kinds of instance (EKT_*) with work beyond "type" */
	uint8		types;			/* "type" mask (EKT_*), 0 = absent */
	const char *type_msg;

	EkNode	   *ref;			/* "$ref": everything else is ignored */
	const char *ref_uri;		/* absolute, for cycle messages */

	/* numbers */
	Numeric		minimum,
				maximum,
				exmin,
				exmax,
				multiple;
	EkNum		minimum_n,		/* the same, decoded */
				maximum_n,
				exmin_n,
				exmax_n;
	uint8		draft04_excl;	/* EK_D4_*: draft-04 boolean exclusive bounds */
	const char *minimum_s,
			   *maximum_s,
			   *exmin_s,
			   *exmax_s,
			   *multiple_s;

	/* strings */
	int32		min_len,
				max_len;		/* -1 = absent */
	EkRegex    *pattern;
	EkFormatCheck format;
	const char *format_name;

	/* arrays */
	EkNode	   *items;			/* single schema form */
	EkNode	  **items_arr;		/* array form */
	int			nitems_arr;
	EkNode	   *add_items;
	int32		min_items,
				max_items;
	bool		unique_items;
	EkNode	   *contains;

	/* objects */
	EkProp	   *props;			/* sorted as jsonb sorts object keys */
	int			nprops;
	EkPatProp  *patprops;
	int			npatprops;
	EkNode	   *add_props;
	EkProp	   *required;		/* sorted; node field unused */
	int		   *required_order; /* schema order -> index in required */
	int			nrequired;
	int			nreq_props;		/* every required name is in props: how
								 * many props are required; else -1 */
	int32		min_props,
				max_props;
	EkDep	   *deps;
	int			ndeps;
	EkNode	   *prop_names;

	/* any type */
	EkVal	   *enum_vals;
	int			nenum;
	bool		has_const;
	EkVal		const_val;
	EkNode	  **all_of,
			  **any_of,
			  **one_of;
	int			nall,
				nany,
				none;
	EkNode	   *not;
	EkNode	   *if_,
			   *then_,
			   *else_;

	/* cycle detection */
	uint8		visit;
};

struct EkSchema
{
	EkNode	   *root;
	EkRegex    *regexes;
};

/* ---------------------------------------------------------------------
 * Reading jsonb without copies (the layout: util/jsonb_raw.h)
 * ---------------------------------------------------------------------
 */

static inline int
container_nentries(const JsonbContainer *c)
{
	return ek_jsonb_nentries(c);
}

static inline const char *
container_base(const JsonbContainer *c)
{
	return ek_jsonb_base(c);
}

/*
 * Read child i of container c, whose data starts at *off; advance *off to
 * the start of child i+1.
 */
static inline void
read_child(const JsonbContainer *c, const char *base, int i, uint32 *off,
		   EkVal *v)
{
	EkJsonbChild child;

	ek_jsonb_child(c, base, i, off, &child);
	v->str = NULL;
	v->len = 0;
	if (JBE_ISSTRING(child.entry))
	{
		v->kind = EKT_STRING;
		v->str = child.data;
		v->len = child.len;
	}
	else if (JBE_ISNUMERIC(child.entry))
	{
		v->kind = EKT_NUMBER;
		v->num = (Numeric) child.data;
	}
	else if (JBE_ISCONTAINER(child.entry))
	{
		v->cont = (JsonbContainer *) child.data;
		v->kind = JsonContainerIsObject(v->cont) ? EKT_OBJECT : EKT_ARRAY;
	}
	else if (JBE_ISNULL(child.entry))
		v->kind = EKT_NULL;
	else
	{
		v->kind = EKT_BOOLEAN;
		v->b = JBE_ISBOOL_TRUE(child.entry);
	}
}

static inline void
root_value(Jsonb *jb, EkVal *v)
{
	JsonbContainer *c = &jb->root;

	if (JsonContainerIsScalar(c))
	{
		uint32		off = 0;

		read_child(c, container_base(c), 0, &off, v);
	}
	else
	{
		v->cont = c;
		v->kind = JsonContainerIsObject(c) ? EKT_OBJECT : EKT_ARRAY;
	}
}

/* The offset of child i's data in container c: getJsonbOffset(), inline. */
static inline uint32
child_offset(const JsonbContainer *c, int i)
{
	return ek_jsonb_offset(c, i);
}

/*
 * Read key i of object c (keys are strings), whose data starts at *off;
 * advance *off to the start of key i+1.
 */
static inline void
read_key(const JsonbContainer *c, const char *base, int i, uint32 *off,
		 const char **str, int *len)
{
	EkJsonbChild child;

	ek_jsonb_child(c, base, i, off, &child);
	*str = child.data;
	*len = child.len;
}

/* The first 2, 4, 8 bytes at p as a big-endian number (compares like memcmp) */
static inline uint16
load_be16(const char *p)
{
	uint16		x;

	memcpy(&x, p, 2);
	return pg_ntoh16(x);
}

static inline uint32
load_be32(const char *p)
{
	uint32		x;

	memcpy(&x, p, 4);
	return pg_ntoh32(x);
}

static inline uint64
load_be64(const char *p)
{
	uint64		x;

	memcpy(&x, p, 8);
	return pg_ntoh64(x);
}

/*
 * jsonb's order of object keys: shorter first, then bytewise.
 *
 * Strings of equal length are compared a word at a time, the last word
 * overlapping the one before it: the bytes they share are equal by then,
 * so the first difference still decides.  Never reads outside a string.
 */
static pg_attribute_always_inline int
key_cmp(const char *a, int alen, const char *b, int blen)
{
	uint64		x,
				y;

	if (alen != blen)
		return alen < blen ? -1 : 1;
	if (alen > 16)
	{
		int			i;

		for (i = 0; i + 8 < alen; i += 8)
		{
			x = load_be64(a + i);
			y = load_be64(b + i);
			if (x != y)
				return x < y ? -1 : 1;
		}
		x = load_be64(a + alen - 8);
		y = load_be64(b + alen - 8);
	}
	else if (alen >= 8)
	{
		x = load_be64(a);
		y = load_be64(b);
		if (x == y)
		{
			x = load_be64(a + alen - 8);
			y = load_be64(b + alen - 8);
		}
	}
	else if (alen >= 4)
	{
		x = ((uint64) load_be32(a) << 32) | load_be32(a + alen - 4);
		y = ((uint64) load_be32(b) << 32) | load_be32(b + alen - 4);
	}
	else if (alen >= 2)
	{
		x = ((uint32) load_be16(a) << 16) | load_be16(a + alen - 2);
		y = ((uint32) load_be16(b) << 16) | load_be16(b + alen - 2);
	}
	else if (alen == 1)
	{
		x = (unsigned char) *a;
		y = (unsigned char) *b;
	}
	else
		return 0;
	return x == y ? 0 : (x < y ? -1 : 1);
}

/* ---------------------------------------------------------------------
 * Exact numbers: read numeric's (stable, on-disk) representation
 * ---------------------------------------------------------------------
 */


static inline void
num_decode(Numeric n, EkNum *d)
{
	const char *p = VARDATA_ANY(n);
	int			len = VARSIZE_ANY_EXHDR(n);
	uint16		hdr;

	memcpy(&hdr, p, sizeof(uint16));
	if ((hdr & 0xC000) == 0x8000)
	{
		/* short format */
		d->sign = (hdr & 0x2000) ? -1 : 1;
		d->weight = ((hdr & 0x0040) ? ~0x003F : 0) | (hdr & 0x003F);
		d->digits = p + sizeof(uint16);
		d->ndigits = (len - sizeof(uint16)) / sizeof(int16);
	}
	else
	{
		int16		w;

		/* jsonb never holds NaN or infinity (0xC000) */
		d->sign = (hdr & 0x4000) ? -1 : 1;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		d->weight = w;
		d->digits = p + 2 * sizeof(uint16);
		d->ndigits = (len - 2 * sizeof(uint16)) / sizeof(int16);
	}
	if (d->ndigits == 0)
		d->sign = 0;
}

/* The sign of a jsonb number (-1, 0, 1), from its header alone. */
static inline int
num_sign(Numeric n)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(n);
	int			len = VARSIZE_ANY_EXHDR(n);
	uint16		hdr;

	/* as memcpy() would, but no local whose address is taken */
#ifdef WORDS_BIGENDIAN
	hdr = (uint16) (p[0] << 8 | p[1]);
#else
	hdr = (uint16) (p[1] << 8 | p[0]);
#endif
	if ((hdr & 0xC000) == 0x8000)
		return len < (int) (2 * sizeof(int16)) ? 0 : ((hdr & 0x2000) ? -1 : 1);
	return len < (int) (3 * sizeof(int16)) ? 0 : ((hdr & 0x4000) ? -1 : 1);
}

static inline int16
num_digit(const EkNum *d, int i)
{
	int16		v;

	memcpy(&v, d->digits + i * sizeof(int16), sizeof(int16));
	return v;
}

/* jsonschema.c */
extern bool ek_object_lookup(const JsonbContainer *c, const char *key, int len,
							 EkVal *out);
extern int	ek_num_cmp(Numeric x, Numeric y);
extern bool ek_num_is_integer(Numeric x);
extern bool ek_equal(const EkVal *a, const EkVal *b);

/* jsonschema_meta.c */
extern const char *const ek_draft07_metaschema;

/* jsonschema_dialect.c */
extern int	ek_draft_of_uri(const char *uri, int len);
extern bool ek_kw_is_annotation(const char *kw);
extern bool ek_kw_is_later_draft(const char *kw);
extern uint16 ek_kw_group(const char *kw);
extern const char *ek_draft04_exclusive(EkNode *node);

/* jsonschema_format.c */
extern EkFormatCheck ek_format_lookup(const char *name, bool *unavailable);

/* jsonschema_idn.c (only with ICU) */
extern bool ek_idn_hostname_valid(const char *s, int len);

/* jsonschema_regex.c */
extern char *ek_ecma_regex_translate(const char *src, int len, char **err);
extern bool ek_regex_compile_into(EkRegex *r, const char *src, int len,
								  char **err);
extern bool ek_regex_match(EkRegex *r, const char *s, int len);

#endif							/* EVENTKIT_JSONSCHEMA_INT_H */
