/*-------------------------------------------------------------------------
 *
 * jsonschema.c
 *	  eventkit's JSON Schema draft-07 validator: validates jsonb instances
 *	  against a compiled schema (jsonschema_compile.c) by walking their
 *	  JsonbContainer in place, with exact numeric comparisons, and reports
 *	  Ajv-shaped errors.
 *
 *	  Also here: reading jsonb without copies, numbers, JSON equality and
 *	  a total order agreeing with it (uniqueItems sorts), shared with the
 *	  compiler.  Every recursion and every loop over an instance's items or
 *	  keys checks for interrupts.  Formats live in jsonschema_format.c,
 *	  ECMA-262 regular expressions in jsonschema_regex.c, the metaschema
 *	  text in jsonschema_meta.c,
 *	  the SQL entry points and the per-backend cache in jsonschema_sql.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "jsonschema_int.h"

/* Look a key up in an object container (binary search). */
bool
ek_object_lookup(const JsonbContainer *c, const char *key, int len, EkVal *out)
{
	int			n = JsonContainerSize(c);
	const char *base = container_base(c);
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		uint32		off = getJsonbOffset(c, mid);
		EkVal		k;
		int			cmp;

		read_child(c, base, mid, &off, &k);
		cmp = key_cmp(k.str, k.len, key, len);
		if (cmp == 0)
		{
			if (out)
			{
				off = getJsonbOffset(c, mid + n);
				read_child(c, base, mid + n, &off, out);
			}
			return true;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
num_cmp_abs(const EkNum *a, const EkNum *b)
{
	int			w1 = a->weight,
				w2 = b->weight,
				i1 = 0,
				i2 = 0;

	while (w1 > w2 && i1 < a->ndigits)
	{
		if (num_digit(a, i1++) != 0)
			return 1;
		w1--;
	}
	while (w2 > w1 && i2 < b->ndigits)
	{
		if (num_digit(b, i2++) != 0)
			return -1;
		w2--;
	}
	if (w1 == w2)
	{
		while (i1 < a->ndigits && i2 < b->ndigits)
		{
			int			diff = num_digit(a, i1++) - num_digit(b, i2++);

			if (diff != 0)
				return diff > 0 ? 1 : -1;
		}
	}
	while (i1 < a->ndigits)
		if (num_digit(a, i1++) != 0)
			return 1;
	while (i2 < b->ndigits)
		if (num_digit(b, i2++) != 0)
			return -1;
	return 0;
}

int
ek_num_cmp(Numeric x, Numeric y)
{
	EkNum		a,
				b;
	int			c;

	num_decode(x, &a);
	num_decode(y, &b);
	if (a.sign != b.sign)
		return a.sign < b.sign ? -1 : 1;
	if (a.sign == 0)
		return 0;
	c = num_cmp_abs(&a, &b);
	return a.sign > 0 ? c : -c;
}

bool
ek_num_is_integer(Numeric x)
{
	EkNum		a;
	int			i;

	num_decode(x, &a);
	for (i = Max(a.weight + 1, 0); i < a.ndigits; i++)
		if (num_digit(&a, i) != 0)
			return false;
	return true;
}

/* (out of line: its locals would put a stack protector on validate_number) */
static pg_noinline bool
num_is_multiple(Numeric x, Numeric m)
{
	bool		err = false;
	Numeric		r;
	EkNum		d;

	/* an integer is a multiple of 1; avoids the division */
	r = numeric_mod_opt_error(x, m, &err);
	if (err)
		return false;
	num_decode(r, &d);
	return d.sign == 0;
}
/* ---------------------------------------------------------------------
 * JSON equality (enum, const, uniqueItems): numbers by value
 * ---------------------------------------------------------------------
 */

bool
ek_equal(const EkVal *a, const EkVal *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind)
	{
		case EKT_NULL:
			return true;
		case EKT_BOOLEAN:
			return a->b == b->b;
		case EKT_STRING:
			return key_cmp(a->str, a->len, b->str, b->len) == 0;
		case EKT_NUMBER:
			return ek_num_cmp(a->num, b->num) == 0;
		default:
			{
				int			n = JsonContainerSize(a->cont);
				int			ne,
							i;
				const char *ba,
						   *bb;
				uint32		oa = 0,
							ob = 0;

				if (n != (int) JsonContainerSize(b->cont))
					return false;
				check_stack_depth();
				ne = container_nentries(a->cont);
				ba = container_base(a->cont);
				bb = container_base(b->cont);
				/* object keys are sorted the same way in both */
				for (i = 0; i < ne; i++)
				{
					EkVal		x,
								y;

					CHECK_FOR_INTERRUPTS();
					read_child(a->cont, ba, i, &oa, &x);
					read_child(b->cont, bb, i, &ob, &y);
					if (!ek_equal(&x, &y))
						return false;
				}
				return true;
			}
	}
}

/*
 * A total order of JSON values that agrees with ek_equal(): 0 exactly when
 * the values are equal.  Kinds first; numbers by value (1 and 1.0 are
 * equal), strings as jsonb orders keys; arrays and objects by size, then
 * child by child (jsonb keeps an object's keys sorted, so the same pairs
 * written in any order compare equal).
 */
static int
json_cmp(const EkVal *a, const EkVal *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	switch (a->kind)
	{
		case EKT_NULL:
			return 0;
		case EKT_BOOLEAN:
			return (int) a->b - (int) b->b;
		case EKT_STRING:
			return key_cmp(a->str, a->len, b->str, b->len);
		case EKT_NUMBER:
			return ek_num_cmp(a->num, b->num);
		default:
			{
				int			na = JsonContainerSize(a->cont);
				int			nb = JsonContainerSize(b->cont);
				int			ne,
							i;
				const char *ba,
						   *bb;
				uint32		oa = 0,
							ob = 0;

				if (na != nb)
					return na < nb ? -1 : 1;
				check_stack_depth();
				ne = container_nentries(a->cont);
				ba = container_base(a->cont);
				bb = container_base(b->cont);
				for (i = 0; i < ne; i++)
				{
					EkVal		x,
								y;
					int			c;

					CHECK_FOR_INTERRUPTS();
					read_child(a->cont, ba, i, &oa, &x);
					read_child(b->cont, bb, i, &ob, &y);
					c = json_cmp(&x, &y);
					if (c != 0)
						return c;
				}
				return 0;
			}
	}
}

/* qsort comparator of EkVal pointers into one array: by value, then position */
static int
json_ptr_cmp(const void *a, const void *b)
{
	const EkVal *x = *(const EkVal *const *) a;
	const EkVal *y = *(const EkVal *const *) b;
	int			c;

	CHECK_FOR_INTERRUPTS();
	c = json_cmp(x, y);
	if (c != 0)
		return c;
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* ---------------------------------------------------------------------
 * Validation
 * ---------------------------------------------------------------------
 */

typedef struct VCtx
{
	List	  **errors;			/* NULL: stop at the first failure */
	StringInfoData ipath;		/* instance path (only with errors) */
} VCtx;

static bool validate(const EkNode *n, const EkVal *v, VCtx *cx);

static void
add_error(VCtx *cx, const EkNode *n, const char *kw, const char *kwpath,
		  char *msg)
{
	EkSchemaError *e = palloc(sizeof(EkSchemaError));

	e->keyword = kw;
	e->instance_path = pstrdup(cx->ipath.data);
	e->schema_path = kwpath ? psprintf("%s/%s", n->path, kwpath) : pstrdup(n->path);
	e->message = msg;
	*cx->errors = lappend(*cx->errors, e);
}

#define FAIL(kw, kwpath, msg) \
	do { \
		if (cx->errors == NULL) \
			return false; \
		add_error(cx, n, kw, kwpath, msg); \
		ok = false; \
	} while (0)

static inline int
push_key(VCtx *cx, const char *key, int len)
{
	int			save;
	int			i;

	if (cx->errors == NULL)
		return 0;
	save = cx->ipath.len;
	appendStringInfoChar(&cx->ipath, '/');
	for (i = 0; i < len; i++)
	{
		if (key[i] == '~')
			appendStringInfoString(&cx->ipath, "~0");
		else if (key[i] == '/')
			appendStringInfoString(&cx->ipath, "~1");
		else
			appendStringInfoChar(&cx->ipath, key[i]);
	}
	return save;
}

static inline int
push_index(VCtx *cx, int i)
{
	int			save;

	if (cx->errors == NULL)
		return 0;
	save = cx->ipath.len;
	appendStringInfo(&cx->ipath, "/%d", i);
	return save;
}

static inline void
pop_path(VCtx *cx, int save)
{
	if (cx->errors)
	{
		cx->ipath.len = save;
		cx->ipath.data[save] = '\0';
	}
}

/* Validate quietly (for not, if, contains, oneOf counting, ...). */
static bool
validate_quiet(const EkNode *n, const EkVal *v, VCtx *cx)
{
	VCtx		q;

	q.errors = NULL;
	q.ipath = cx->ipath;		/* unused without errors */
	return validate(n, v, &q);
}

static int
string_length(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] >= 0x80)
			return pg_mbstrlen_with_len(s, len);
	return len;
}

/* |x| compared with |b|, x decoded here (out of line: no EkNum on the caller's stack) */
static pg_noinline int
num_cmp_abs_bound(Numeric num, const EkNum *b)
{
	EkNum		x;

	num_decode(num, &x);
	return num_cmp_abs(&x, b);
}

/*
 * x (of sign xsign, read from its header alone) compared with bound b:
 * the digits are looked at only when the signs agree.
 */
static inline int
num_cmp_bound(Numeric num, int xsign, const EkNum *b)
{
	int			c;

	if (xsign != b->sign)
		return xsign < b->sign ? -1 : 1;
	if (xsign == 0)
		return 0;
	c = num_cmp_abs_bound(num, b);
	return xsign > 0 ? c : -c;
}

/* The number keywords, reporting errors (validate_number's slow path). */
static pg_noinline bool
validate_number_full(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;
	int			xsign = num_sign(v->num);

	if (n->maximum && num_cmp_bound(v->num, xsign, &n->maximum_n) > 0)
		FAIL("maximum", "maximum", psprintf("must be <= %s", n->maximum_s));
	if (n->minimum && num_cmp_bound(v->num, xsign, &n->minimum_n) < 0)
		FAIL("minimum", "minimum", psprintf("must be >= %s", n->minimum_s));
	if (n->exmax && num_cmp_bound(v->num, xsign, &n->exmax_n) >= 0)
	{
		/* draft-04 states an exclusive bound in "maximum" */
		const char *kw = (n->draft04_excl & EK_D4_EXMAX) ? "maximum" : "exclusiveMaximum";

		FAIL(kw, kw, psprintf("must be < %s", n->exmax_s));
	}
	if (n->exmin && num_cmp_bound(v->num, xsign, &n->exmin_n) <= 0)
	{
		const char *kw = (n->draft04_excl & EK_D4_EXMIN) ? "minimum" : "exclusiveMinimum";

		FAIL(kw, kw, psprintf("must be > %s", n->exmin_s));
	}
	if (n->multiple && !num_is_multiple(v->num, n->multiple))
		FAIL("multipleOf", "multipleOf", psprintf("must be multiple of %s", n->multiple_s));
	return ok;
}

/* The number keywords: passes quietly, or on to validate_number_full(). */
static pg_noinline bool
validate_number(const EkNode *n, const EkVal *v, VCtx *cx)
{
	int			xsign = num_sign(v->num);

	if ((n->maximum == NULL || num_cmp_bound(v->num, xsign, &n->maximum_n) <= 0) &&
		(n->minimum == NULL || num_cmp_bound(v->num, xsign, &n->minimum_n) >= 0) &&
		(n->exmax == NULL || num_cmp_bound(v->num, xsign, &n->exmax_n) < 0) &&
		(n->exmin == NULL || num_cmp_bound(v->num, xsign, &n->exmin_n) > 0) &&
		(n->multiple == NULL || num_is_multiple(v->num, n->multiple)))
		return true;
	return validate_number_full(n, v, cx);
}

/* The string keywords, reporting errors (validate_string's slow path). */
static pg_noinline bool
validate_string_full(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;

	if (n->max_len >= 0 || n->min_len >= 0)
	{
		/* in code points, as JavaScript counts them (surrogates aside) */
		int			clen = string_length(v->str, v->len);

		if (n->max_len >= 0 && clen > n->max_len)
			FAIL("maxLength", "maxLength",
				 psprintf("must NOT have more than %d characters", n->max_len));
		if (n->min_len >= 0 && clen < n->min_len)
			FAIL("minLength", "minLength",
				 psprintf("must NOT have fewer than %d characters", n->min_len));
	}
	if (n->pattern && !ek_regex_match(n->pattern, v->str, v->len))
		FAIL("pattern", "pattern",
			 psprintf("must match pattern \"%s\"", n->pattern->source));
	if (n->format && !n->format(v->str, v->len))
		FAIL("format", "format",
			 psprintf("must match format \"%s\"", n->format_name));
	return ok;
}

/* The string keywords: passes quietly, or on to validate_string_full(). */
static pg_noinline bool
validate_string(const EkNode *n, const EkVal *v, VCtx *cx)
{
	if (n->max_len >= 0 || n->min_len >= 0)
	{
		int			clen = string_length(v->str, v->len);

		if ((n->max_len >= 0 && clen > n->max_len) ||
			(n->min_len >= 0 && clen < n->min_len))
			return validate_string_full(n, v, cx);
	}
	if ((n->pattern == NULL || ek_regex_match(n->pattern, v->str, v->len)) &&
		(n->format == NULL || n->format(v->str, v->len)))
		return true;
	return validate_string_full(n, v, cx);
}

/* Arrays up to this size are checked pairwise; longer ones are sorted. */
#define UNIQUE_PAIRWISE_MAX 16

/*
 * uniqueItems (out of line: keeps validate_array's frame small).
 *
 * Reports what Ajv reports: the last item that has an earlier equal, with
 * its nearest earlier equal.  Short arrays compare every pair; longer ones
 * sort the items by json_cmp() and then by position, in O(n log n): equal
 * items end up next to each other in order of position, so each item's
 * predecessor in its run of equals is its nearest earlier equal.
 */
static pg_noinline bool
check_unique(const EkNode *n, const EkVal *v, VCtx *cx)
{
	int			size = JsonContainerSize(v->cont);
	const char *base = container_base(v->cont);
	uint32		off = 0;
	EkVal	   *vals;
	EkVal		stackvals[UNIQUE_PAIRWISE_MAX];
	int			i,
				j = -1,
				last = -1;

	vals = size <= UNIQUE_PAIRWISE_MAX ? stackvals : palloc(sizeof(EkVal) * size);
	for (i = 0; i < size; i++)
		read_child(v->cont, base, i, &off, &vals[i]);
	if (size <= UNIQUE_PAIRWISE_MAX)
	{
		for (i = size - 1; i > 0 && last < 0; i--)
			for (j = i - 1; j >= 0; j--)
				if (ek_equal(&vals[i], &vals[j]))
				{
					last = i;
					break;
				}
	}
	else
	{
		EkVal	  **order = palloc(sizeof(EkVal *) * size);
		int			k;

		for (i = 0; i < size; i++)
			order[i] = &vals[i];
		qsort(order, size, sizeof(EkVal *), json_ptr_cmp);
		for (k = 1; k < size; k++)
		{
			int			cur = order[k] - vals;

			if (cur > last && json_cmp(order[k - 1], order[k]) == 0)
			{
				last = cur;
				j = order[k - 1] - vals;
			}
		}
		pfree(order);
		pfree(vals);
	}
	if (last < 0)
		return true;
	if (cx->errors)
		add_error(cx, n, "uniqueItems", "uniqueItems",
				  psprintf("must NOT have duplicate items (items ## %d and %d are identical)", j, last));
	return false;
}

static bool
validate_array(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;
	int			size = JsonContainerSize(v->cont);
	const char *base = container_base(v->cont);
	uint32		off = 0;
	int			i;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	if (n->max_items >= 0 && size > n->max_items)
		FAIL("maxItems", "maxItems",
			 psprintf("must NOT have more than %d items", n->max_items));
	if (n->min_items >= 0 && size < n->min_items)
		FAIL("minItems", "minItems",
			 psprintf("must NOT have fewer than %d items", n->min_items));

	if (n->items || n->items_arr || n->contains)
	{
		bool		found = false;

		for (i = 0; i < size; i++)
		{
			EkVal		x;
			const EkNode *s = NULL;

			CHECK_FOR_INTERRUPTS();
			read_child(v->cont, base, i, &off, &x);
			if (n->items)
				s = n->items;
			else if (n->items_arr)
			{
				if (i < n->nitems_arr)
					s = n->items_arr[i];
				else if (n->add_items)
				{
					if (n->add_items->boolean == 0)
					{
						FAIL("additionalItems", "additionalItems",
							 psprintf("must NOT have more than %d items", n->nitems_arr));
						break;
					}
					s = n->add_items;
				}
			}
			if (s)
			{
				int			save = push_index(cx, i);

				if (!validate(s, &x, cx))
				{
					pop_path(cx, save);
					if (cx->errors == NULL)
						return false;
					ok = false;
				}
				pop_path(cx, save);
			}
			if (n->contains && !found)
				found = validate_quiet(n->contains, &x, cx);
		}
		if (n->contains && !found)
			FAIL("contains", "contains", pstrdup("must contain at least 1 valid item(s)"));
	}

	if (n->unique_items && size > 1 && !check_unique(n, v, cx))
	{
		if (cx->errors == NULL)
			return false;
		ok = false;
	}
	return ok;
}

static bool
validate_object(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;
	int			size = JsonContainerSize(v->cont);
	const char *base = container_base(v->cont);
	uint32		ko = 0,
				vo;
	int			i,
				p = 0,
				r = 0,
				reqseen = 0;
	const int	nprops = n->nprops;
	const EkProp *props = n->props;
	const bool	collect = cx->errors != NULL;

	/* "required" walked beside the keys, unless counted in props */
	const bool	walk_required = !collect && n->nreq_props < 0;
	const bool	key_rules = n->npatprops > 0 || n->add_props || n->prop_names;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	if (n->max_props >= 0 && size > n->max_props)
		FAIL("maxProperties", "maxProperties",
			 psprintf("must NOT have more than %d properties", n->max_props));
	if (n->min_props >= 0 && size < n->min_props)
		FAIL("minProperties", "minProperties",
			 psprintf("must NOT have fewer than %d properties", n->min_props));

	if (n->nrequired > 0 && cx->errors)
	{
		/* collecting errors: report missing properties first, as Ajv does */
		for (i = 0; i < n->nrequired; i++)
		{
			const EkProp *rq = &n->required[n->required_order[i]];

			if (!ek_object_lookup(v->cont, rq->name, rq->len, NULL))
			{
				add_error(cx, n, "required", "required",
						  psprintf("must have required property '%s'", rq->name));
				ok = false;
			}
		}
	}

	vo = child_offset(v->cont, size);
	/* one merge walk over the keys: required, properties, the rest */
	for (i = 0; i < size; i++)
	{
		EkVal		x;
		const char *kstr;
		int			klen;
		bool		matched = false;
		int			c;
		int			j;

		CHECK_FOR_INTERRUPTS();
		read_key(v->cont, base, i, &ko, &kstr, &klen);
		read_child(v->cont, base, i + size, &vo, &x);

		while (walk_required && r < n->nrequired &&
			   (c = key_cmp(n->required[r].name, n->required[r].len, kstr, klen)) <= 0)
		{
			if (c < 0)
				return false;	/* required[r] is missing */
			r++;
		}

		while (p < nprops &&
			   (c = key_cmp(props[p].name, props[p].len, kstr, klen)) <= 0)
		{
			if (c == 0)
			{
				const EkProp *pr = &props[p];

				matched = true;
				reqseen += pr->required;
				if (!collect)
				{
					if ((pr->pass & x.kind) == 0 &&
						!validate(pr->node, &x, cx))
						return false;
				}
				else
				{
					int			save = push_key(cx, kstr, klen);

					if (!validate(pr->node, &x, cx))
						ok = false;
					pop_path(cx, save);
				}
			}
			p++;
			if (matched)
				break;
		}
		if (!key_rules)
			continue;

		for (j = 0; j < n->npatprops; j++)
		{
			if (ek_regex_match(n->patprops[j].re, kstr, klen))
			{
				int			save = push_key(cx, kstr, klen);

				matched = true;
				if (!validate(n->patprops[j].node, &x, cx))
				{
					if (cx->errors == NULL)
						return false;
					ok = false;
				}
				pop_path(cx, save);
			}
		}

		if (!matched && n->add_props)
		{
			if (n->add_props->boolean == 0)
				FAIL("additionalProperties", "additionalProperties",
					 pstrdup("must NOT have additional properties"));
			else
			{
				int			save = push_key(cx, kstr, klen);

				if (!validate(n->add_props, &x, cx))
				{
					if (cx->errors == NULL)
						return false;
					ok = false;
				}
				pop_path(cx, save);
			}
		}

		if (n->prop_names)
		{
			EkVal		name;

			memset(&name, 0, sizeof(name));
			name.kind = EKT_STRING;
			name.str = kstr;
			name.len = klen;

			if (!validate_quiet(n->prop_names, &name, cx))
				FAIL("propertyNames", "propertyNames",
					 pstrdup("property name must be valid"));
		}
	}
	if (cx->errors == NULL &&
		(n->nreq_props < 0 ? r < n->nrequired : reqseen < n->nreq_props))
		return false;			/* a required property is missing */

	for (i = 0; i < n->ndeps; i++)
	{
		const EkDep *d = &n->deps[i];

		if (!ek_object_lookup(v->cont, d->name, d->len, NULL))
			continue;
		if (d->node)
		{
			if (!validate(d->node, v, cx))
			{
				if (cx->errors == NULL)
					return false;
				ok = false;
			}
		}
		else
		{
			int			j;

			for (j = 0; j < d->nreq; j++)
				if (!ek_object_lookup(v->cont, d->req[j].name, d->req[j].len, NULL))
				{
					FAIL("dependencies", psprintf("dependencies/%s", d->name),
						 psprintf("must have %s %s when property %s is present",
								  d->nreq == 1 ? "property" : "properties",
								  d->req_list, d->name));
					break;
				}
		}
	}
	return ok;
}

static bool
validate_any(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;
	int			i;

	if (n->nenum > 0 || (n->enum_vals && n->nenum == 0))
	{
		bool		found = false;

		for (i = 0; i < n->nenum && !found; i++)
		{
			const EkVal *e = &n->enum_vals[i];

			CHECK_FOR_INTERRUPTS();
			if (e->kind != v->kind)
				continue;
			if (v->kind == EKT_STRING)
				found = e->len == v->len && memcmp(e->str, v->str, v->len) == 0;
			else
				found = ek_equal(v, e);
		}
		if (!found)
			FAIL("enum", "enum", pstrdup("must be equal to one of the allowed values"));
	}
	if (n->has_const && !ek_equal(v, &n->const_val))
		FAIL("const", "const", pstrdup("must be equal to constant"));

	/* enum and const do not recurse; the rest may */
	if (n->nall == 0 && n->nany == 0 && n->none == 0 && n->not == NULL &&
		n->if_ == NULL)
		return ok;
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	for (i = 0; i < n->nall; i++)
	{
		if (!validate(n->all_of[i], v, cx))
		{
			if (cx->errors == NULL)
				return false;
			ok = false;
		}
	}
	if (n->nany > 0)
	{
		int			before = cx->errors ? list_length(*cx->errors) : 0;
		bool		found = false;

		for (i = 0; i < n->nany && !found; i++)
			found = validate(n->any_of[i], v, cx);
		if (found)
		{
			if (cx->errors)
				*cx->errors = list_truncate(*cx->errors, before);
		}
		else
			FAIL("anyOf", "anyOf", pstrdup("must match a schema in anyOf"));
	}
	if (n->none > 0)
	{
		int			before = cx->errors ? list_length(*cx->errors) : 0;
		int			count = 0;

		for (i = 0; i < n->none && count < 2; i++)
			if (validate(n->one_of[i], v, cx))
				count++;
		if (count == 1)
		{
			if (cx->errors)
				*cx->errors = list_truncate(*cx->errors, before);
		}
		else
		{
			if (count > 1 && cx->errors)
				*cx->errors = list_truncate(*cx->errors, before);
			FAIL("oneOf", "oneOf", pstrdup("must match exactly one schema in oneOf"));
		}
	}
	if (n->not && validate_quiet(n->not, v, cx))
		FAIL("not", "not", pstrdup("must NOT be valid"));
	if (n->if_)
	{
		if (validate_quiet(n->if_, v, cx))
		{
			if (n->then_ && !validate(n->then_, v, cx))
				FAIL("if", "if", pstrdup("must match \"then\" schema"));
		}
		else if (n->else_ && !validate(n->else_, v, cx))
			FAIL("if", "if", pstrdup("must match \"else\" schema"));
	}
	return ok;
}

/* The keywords beyond "type" (out of line: keeps validate() small). */
static pg_noinline bool
validate_keywords(const EkNode *n, const EkVal *v, VCtx *cx)
{
	bool		ok = true;

	switch (v->kind)
	{
		case EKT_NUMBER:
			if ((n->has & HAS_NUM) && !validate_number(n, v, cx))
			{
				if (cx->errors == NULL)
					return false;
				ok = false;
			}
			break;
		case EKT_STRING:
			if ((n->has & HAS_STR) && !validate_string(n, v, cx))
			{
				if (cx->errors == NULL)
					return false;
				ok = false;
			}
			break;
		case EKT_ARRAY:
			if ((n->has & HAS_ARR) && !validate_array(n, v, cx))
			{
				if (cx->errors == NULL)
					return false;
				ok = false;
			}
			break;
		case EKT_OBJECT:
			if ((n->has & HAS_OBJ) && !validate_object(n, v, cx))
			{
				if (cx->errors == NULL)
					return false;
				ok = false;
			}
			break;
		default:
			break;
	}
	if ((n->has & HAS_ANY) && !validate_any(n, v, cx))
		ok = false;
	return ok;
}

/* What follows a passed (or reported) "type": the other keywords. */
static inline bool
validate_rest(const EkNode *n, const EkVal *v, VCtx *cx)
{
	if ((n->work & v->kind) == 0)
		return true;
	/* leaves with only string or number keywords: no detour */
	if (!(n->has & HAS_ANY))
	{
		if (v->kind == EKT_STRING)
			return validate_string(n, v, cx);
		if (v->kind == EKT_NUMBER)
			return validate_number(n, v, cx);
	}
	return validate_keywords(n, v, cx);
}

/* v fails n's "type" (or n is the false schema): out of the hot path. */
static pg_noinline bool
validate_failed(const EkNode *n, const EkVal *v, VCtx *cx)
{
	if (cx->errors == NULL)
		return false;
	if (n->boolean == 0)
		add_error(cx, n, "false schema", NULL, pstrdup("boolean schema is false"));
	else
	{
		add_error(cx, n, "type", "type", pstrdup(n->type_msg));
		(void) validate_rest(n, v, cx);
	}
	return false;
}

/*
 * Validate v against n.  Recursion goes through validate_array,
 * validate_object and validate_any, which check the stack depth and
 * interrupts (as do their loops over items, keys and enum values), so
 * that statement_timeout and pg_cancel_backend() stop any schema,
 * however many paths its combinators make it try.
 * Small, so that the common cases end in a tail call.
 */
static bool
validate(const EkNode *n, const EkVal *v, VCtx *cx)
{
	while (n->ref)
		n = n->ref;
	if (unlikely(n->boolean >= 0))
		return n->boolean ? true : validate_failed(n, v, cx);
	if (n->types && (n->types & v->kind) == 0 &&
		!(v->kind == EKT_NUMBER && (n->types & EKT_INTEGER) &&
		  ek_num_is_integer(v->num)))
		return validate_failed(n, v, cx);
	return validate_rest(n, v, cx);
}

bool
ek_schema_validate(const EkSchema *schema, Jsonb *instance,
				   const char *path_prefix, List **errors)
{
	VCtx		cx;
	EkVal		v;

	root_value(instance, &v);
	cx.errors = errors;
	if (errors)
	{
		initStringInfo(&cx.ipath);
		if (path_prefix)
			appendStringInfoString(&cx.ipath, path_prefix);
	}
	else
		memset(&cx.ipath, 0, sizeof(cx.ipath));
	return validate(schema->root, &v, &cx);
}

Jsonb *
ek_schema_errors_jsonb(List *errors)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	ListCell   *lc;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, errors)
	{
		EkSchemaError *e = lfirst(lc);
		const char *keys[] = {"keyword", "instancePath", "schemaPath", "message"};
		const char *vals[4];
		int			i;

		vals[0] = e->keyword;
		vals[1] = e->instance_path;
		vals[2] = e->schema_path;
		vals[3] = e->message;
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i < 4; i++)
		{
			JsonbValue	k,
						v;

			k.type = jbvString;
			k.val.string.val = (char *) keys[i];
			k.val.string.len = strlen(keys[i]);
			v.type = jbvString;
			v.val.string.val = (char *) vals[i];
			v.val.string.len = strlen(vals[i]);
			pushJsonbValue(&state, WJB_KEY, &k);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	return JsonbValueToJsonb(res);
}
