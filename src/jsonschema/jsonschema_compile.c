/*-------------------------------------------------------------------------
 *
 * jsonschema_compile.c
 *	  Compiles a JSON Schema (draft-07, as jsonb) into the EkNode tree the
 *	  validator walks: checks every keyword (unknown ones, later drafts'
 *	  ones and unknown formats are errors), resolves "$ref" against "$id"
 *	  base URIs, anchors and the built-in draft-07 metaschema, and rejects
 *	  reference cycles that would make no progress.  Every walk over the
 *	  schema checks for interrupts: a huge schema compiles under
 *	  statement_timeout and pg_cancel_backend() like any query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "jsonschema_int.h"

/* ---------------------------------------------------------------------
 * Compile-time errors
 * ---------------------------------------------------------------------
 */

static void schema_error(const char *path, const char *hint,
						 const char *fmt,...) pg_attribute_printf(3, 4) pg_attribute_noreturn();

/*
 * Where the schema being compiled is in the caller's document (a tracking
 * plan): errors name that place.  Set by each compile.
 */
static const char *error_location = NULL;

static void
schema_error(const char *path, const char *hint, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid JSON Schema: %s", buf.data),
			 errdetail("At schema location \"%s%s\".",
					   error_location ? error_location : "",
					   error_location && path[0] == '#' ? path + 1 : path),
			 hint ? errhint("%s", hint) : 0));
}

/* ---------------------------------------------------------------------
 * Compilation
 * ---------------------------------------------------------------------
 */

/* What the pre-pass knows of a schema position (keyed by container). */
typedef struct LocEntry
{
	const JsonbContainer *key;
	const char *base;			/* base URI in effect */
	const char *path;
	EkNode	   *node;
} LocEntry;

/* A named document or anchor: absolute URI -> value */
typedef struct UriEntry
{
	const char *uri;
	EkVal		val;
	const char *base;
	const char *path;
} UriEntry;

typedef struct PendingRef
{
	EkNode	   *node;
	const char *uri;			/* absolute */
} PendingRef;

typedef struct Compiler
{
	HTAB	   *locs;
	List	   *uris;			/* UriEntry * */
	List	   *pending;		/* PendingRef * */
	bool		meta_loaded;
	EkSchema   *schema;
	List	   *nodes;			/* every EkNode compiled */
	int			draft;			/* 4, 6 or 7 (jsonschema_dialect.c) */
	EkSchemaOptions *opts;		/* lenient, and what it ignored */
} Compiler;

#define DRAFT07_URI "http://json-schema.org/draft-07/schema"

static EkNode *compile_value(Compiler *cc, const EkVal *v, const char *base,
							 const char *path);

static char *
path_join(const char *path, const char *seg)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, path);
	appendStringInfoChar(&buf, '/');
	for (; *seg; seg++)
	{
		if (*seg == '~')
			appendStringInfoString(&buf, "~0");
		else if (*seg == '/')
			appendStringInfoString(&buf, "~1");
		else
			appendStringInfoChar(&buf, *seg);
	}
	return buf.data;
}

static char *
path_index(const char *path, int i)
{
	return psprintf("%s/%d", path, i);
}

static char *
val_cstring(const EkVal *v)
{
	return pnstrdup(v->str, v->len);
}

/* --- URIs (RFC 3986 reference resolution, enough for schema ids) --- */

static int
uri_scheme_len(const char *u)
{
	int			i = 0;

	if (!isalpha((unsigned char) u[0]))
		return 0;
	while (u[i] && (isalnum((unsigned char) u[i]) || u[i] == '+' ||
					u[i] == '-' || u[i] == '.'))
		i++;
	return u[i] == ':' ? i : 0;
}

static char *
uri_strip_fragment(const char *u)
{
	const char *h = strchr(u, '#');

	return h ? pnstrdup(u, h - u) : pstrdup(u);
}

static char *
remove_dot_segments(const char *prefix, const char *path)
{
	List	   *segs = NIL;
	char	   *copy = pstrdup(path);
	char	   *p = copy;
	StringInfoData buf;
	ListCell   *lc;
	bool		lead = (*p == '/');
	bool		trail = false;

	if (lead)
		p++;
	while (p)
	{
		char	   *slash = strchr(p, '/');

		if (slash)
			*slash = '\0';
		trail = false;
		if (strcmp(p, "..") == 0)
		{
			if (segs)
				segs = list_delete_last(segs);
			trail = true;
		}
		else if (strcmp(p, ".") == 0)
			trail = true;
		else
			segs = lappend(segs, p);
		p = slash ? slash + 1 : NULL;
	}
	initStringInfo(&buf);
	appendStringInfoString(&buf, prefix);
	if (lead)
		appendStringInfoChar(&buf, '/');
	foreach(lc, segs)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&buf, '/');
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	if (trail)
		appendStringInfoChar(&buf, '/');
	return buf.data;
}

static char *
uri_resolve(const char *base, const char *ref)
{
	int			sl;
	char	   *b;
	const char *q;

	if (uri_scheme_len(ref) > 0)
		return pstrdup(ref);
	b = uri_strip_fragment(base);
	if (ref[0] == '#' || ref[0] == '\0')
		return psprintf("%s%s", b, ref);
	sl = uri_scheme_len(b);
	if (ref[0] == '/' && ref[1] == '/')
		return sl ? psprintf("%.*s%s", sl + 1, b, ref) : pstrdup(ref);
	{
		/* split the base into scheme://authority and path */
		const char *auth_end = b + (sl ? sl + 1 : 0);
		const char *frag;
		char	   *prefix;
		char	   *path;
		char	   *refpath;
		char	   *res;

		if (auth_end[0] == '/' && auth_end[1] == '/')
		{
			const char *s = strchr(auth_end + 2, '/');

			auth_end = s ? s : auth_end + strlen(auth_end);
		}
		prefix = pnstrdup(b, auth_end - b);
		path = pstrdup(auth_end);
		q = strchr(path, '?');
		if (q)
			path[q - path] = '\0';
		frag = strchr(ref, '#');
		if (frag)
			refpath = pnstrdup(ref, frag - ref);
		else
			refpath = pstrdup(ref);
		if (ref[0] != '/')
		{
			char	   *slash = strrchr(path, '/');

			if (slash)
				refpath = psprintf("%.*s/%s", (int) (slash - path), path, refpath);
			else if (prefix[0] && strstr(prefix, "//"))
				refpath = psprintf("/%s", refpath);
		}
		res = remove_dot_segments(prefix, refpath);
		if (frag)
			res = psprintf("%s%s", res, frag);
		return res;
	}
}

/* --- the pre-pass: base URIs, ids and anchors of every schema position --- */

static LocEntry *
loc_lookup(Compiler *cc, const JsonbContainer *c, bool create)
{
	bool		found;
	LocEntry   *e = hash_search(cc->locs, &c, create ? HASH_ENTER : HASH_FIND,
								&found);

	if (create && !found)
	{
		e->base = NULL;
		e->path = NULL;
		e->node = NULL;
	}
	return e;
}

static void
add_uri(Compiler *cc, const char *uri, const EkVal *v, const char *base,
		const char *path)
{
	UriEntry   *u = palloc(sizeof(UriEntry));
	ListCell   *lc;

	CHECK_FOR_INTERRUPTS();
	foreach(lc, cc->uris)
	{
		UriEntry   *o = lfirst(lc);

		if (strcmp(o->uri, uri) == 0)
		{
			if (o->val.kind == EKT_OBJECT && v->kind == EKT_OBJECT &&
				o->val.cont == v->cont)
				return;
			schema_error(path, NULL, "duplicate schema id \"%s\"", uri);
		}
	}
	u->uri = pstrdup(uri);
	u->val = *v;
	u->base = base;
	u->path = path;
	cc->uris = lappend(cc->uris, u);
}

static void prepass(Compiler *cc, const EkVal *v, const char *base,
					const char *path);

static void
prepass_object_of(Compiler *cc, const EkVal *v, const char *base,
				  const char *path)
{
	int			n,
				i;
	const char *b;
	uint32		ko = 0,
				vo;

	if (v->kind != EKT_OBJECT)
		return;
	n = JsonContainerSize(v->cont);
	b = container_base(v->cont);
	vo = getJsonbOffset(v->cont, n);
	for (i = 0; i < n; i++)
	{
		EkVal		k,
					x;

		read_child(v->cont, b, i, &ko, &k);
		read_child(v->cont, b, i + n, &vo, &x);
		prepass(cc, &x, base, path_join(path, val_cstring(&k)));
	}
}

static void
prepass_array_of(Compiler *cc, const EkVal *v, const char *base,
				 const char *path)
{
	int			n,
				i;
	const char *b;
	uint32		off = 0;

	if (v->kind != EKT_ARRAY)
		return;
	n = JsonContainerSize(v->cont);
	b = container_base(v->cont);
	for (i = 0; i < n; i++)
	{
		EkVal		x;

		read_child(v->cont, b, i, &off, &x);
		prepass(cc, &x, base, path_index(path, i));
	}
}

static void
prepass(Compiler *cc, const EkVal *v, const char *base, const char *path)
{
	int			n,
				i;
	const char *b;
	uint32		ko = 0,
				vo;
	EkVal		idv;
	LocEntry   *loc;

	if (v->kind != EKT_OBJECT)
		return;
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	loc = loc_lookup(cc, v->cont, true);
	if (loc->path)
		return;					/* already seen */

	/* draft-04 names a schema's base URI "id" */
	if (ek_object_lookup(v->cont, cc->draft == 4 ? "id" : "$id", cc->draft == 4 ? 2 : 3,
						 &idv) && idv.kind == EKT_STRING &&
		!ek_object_lookup(v->cont, "$ref", 4, NULL))
	{
		char	   *id = val_cstring(&idv);
		char	   *abs = uri_resolve(base, id);

		if (id[0] == '#')
		{
			/* a plain-name fragment: a location-independent identifier */
			add_uri(cc, abs, v, base, path);
		}
		else
		{
			base = uri_strip_fragment(abs);
			add_uri(cc, base, v, base, path);
		}
	}
	loc->base = base;
	loc->path = path;

	n = JsonContainerSize(v->cont);
	b = container_base(v->cont);
	vo = getJsonbOffset(v->cont, n);
	for (i = 0; i < n; i++)
	{
		EkVal		k,
					x;
		char	   *kw;
		char	   *p;

		read_child(v->cont, b, i, &ko, &k);
		read_child(v->cont, b, i + n, &vo, &x);
		kw = val_cstring(&k);
		p = path_join(path, kw);
		if (strcmp(kw, "properties") == 0 ||
			strcmp(kw, "patternProperties") == 0 ||
			strcmp(kw, "definitions") == 0 ||
			strcmp(kw, "dependencies") == 0)
			prepass_object_of(cc, &x, base, p);
		else if (strcmp(kw, "allOf") == 0 || strcmp(kw, "anyOf") == 0 ||
				 strcmp(kw, "oneOf") == 0)
			prepass_array_of(cc, &x, base, p);
		else if (strcmp(kw, "items") == 0)
		{
			if (x.kind == EKT_ARRAY)
				prepass_array_of(cc, &x, base, p);
			else
				prepass(cc, &x, base, p);
		}
		else if (strcmp(kw, "additionalItems") == 0 ||
				 strcmp(kw, "additionalProperties") == 0 ||
				 strcmp(kw, "contains") == 0 ||
				 strcmp(kw, "propertyNames") == 0 ||
				 strcmp(kw, "if") == 0 || strcmp(kw, "then") == 0 ||
				 strcmp(kw, "else") == 0 || strcmp(kw, "not") == 0)
			prepass(cc, &x, base, p);
	}
}

/* --- resolving a reference --- */

static void
load_metaschema(Compiler *cc)
{
	Jsonb	   *meta;
	EkVal		v;

	if (cc->meta_loaded)
		return;
	cc->meta_loaded = true;
	meta = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(ek_draft07_metaschema)));
	root_value(meta, &v);
	prepass(cc, &v, DRAFT07_URI, DRAFT07_URI "#");
}

static char *
percent_decode(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	while (*s)
	{
		if (s[0] == '%' && isxdigit((unsigned char) s[1]) &&
			isxdigit((unsigned char) s[2]))
		{
			char		hex[3] = {s[1], s[2], 0};

			appendStringInfoChar(&buf, (char) strtol(hex, NULL, 16));
			s += 3;
		}
		else
			appendStringInfoChar(&buf, *s++);
	}
	return buf.data;
}

/* Follow a JSON pointer from v; false if it leads nowhere. */
static bool
follow_pointer(const char *ptr, EkVal *v, const char **path)
{
	char	   *p = percent_decode(ptr);

	if (*p == '\0')
		return true;
	if (*p != '/')
		return false;
	p++;
	for (;;)
	{
		char	   *slash = strchr(p, '/');
		StringInfoData tok;
		char	   *s;

		if (slash)
			*slash = '\0';
		initStringInfo(&tok);
		for (s = p; *s; s++)
		{
			if (s[0] == '~' && s[1] == '0')
				appendStringInfoChar(&tok, '~'), s++;
			else if (s[0] == '~' && s[1] == '1')
				appendStringInfoChar(&tok, '/'), s++;
			else
				appendStringInfoChar(&tok, *s);
		}
		if (v->kind == EKT_OBJECT)
		{
			if (!ek_object_lookup(v->cont, tok.data, tok.len, v))
				return false;
			*path = path_join(*path, tok.data);
		}
		else if (v->kind == EKT_ARRAY)
		{
			char	   *end;
			long		idx = strtol(tok.data, &end, 10);
			uint32		off;

			if (*end || tok.len == 0 || idx < 0 ||
				idx >= (long) JsonContainerSize(v->cont))
				return false;
			off = getJsonbOffset(v->cont, idx);
			read_child(v->cont, container_base(v->cont), idx, &off, v);
			*path = path_index(*path, (int) idx);
		}
		else
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static EkNode *
resolve_ref(Compiler *cc, const char *uri, const char *refpath)
{
	char	   *doc = uri_strip_fragment(uri);
	const char *hash = strchr(uri, '#');
	const char *frag = hash ? hash + 1 : "";
	ListCell   *lc;
	EkVal		v;
	const char *base;
	const char *path;
	bool		found = false;

	if (strcmp(doc, DRAFT07_URI) == 0)
		load_metaschema(cc);

	if (frag[0] != '\0' && frag[0] != '/')
	{
		/* a plain-name fragment: look the anchor up */
		foreach(lc, cc->uris)
		{
			UriEntry   *u = lfirst(lc);

			if (strcmp(u->uri, uri) == 0)
			{
				v = u->val;
				base = u->base;
				path = u->path;
				found = true;
				break;
			}
		}
	}
	else
	{
		foreach(lc, cc->uris)
		{
			UriEntry   *u = lfirst(lc);

			if (strcmp(u->uri, doc) == 0)
			{
				v = u->val;
				base = u->base;
				path = u->path;
				found = follow_pointer(frag, &v, &path);
				if (!found)
					schema_error(refpath, NULL,
								 "$ref \"%s\" points to nothing in its document",
								 uri);
				break;
			}
		}
	}
	if (!found)
		schema_error(refpath,
					 "Only references within the schema and to the draft-07 metaschema (http://json-schema.org/draft-07/schema#) are supported; remote references are not fetched.",
					 "cannot resolve $ref \"%s\"", uri);

	/* a schema position seen by the pre-pass knows its own base URI */
	if (v.kind == EKT_OBJECT)
	{
		LocEntry   *loc = loc_lookup(cc, v.cont, false);

		if (loc && loc->path)
		{
			base = loc->base;
			path = loc->path;
		}
		else
			prepass(cc, &v, base, path);
	}
	return compile_value(cc, &v, base, path);
}

/* --- keywords --- */

static Numeric
kw_number(const EkVal *v, const char *path, const char *kw, const char **text)
{
	if (v->kind != EKT_NUMBER)
		schema_error(path, NULL, "keyword \"%s\" must be a number", kw);
	*text = numeric_normalize(v->num);
	return v->num;
}

static int32
kw_count(const EkVal *v, const char *path, const char *kw)
{
	bool		err = false;
	int32		r;

	if (v->kind != EKT_NUMBER || !ek_num_is_integer(v->num))
		schema_error(path, NULL, "keyword \"%s\" must be a non-negative integer", kw);
	r = numeric_int4_opt_error(v->num, &err);
	if (err || r < 0)
	{
		EkNum		d;

		num_decode(v->num, &d);
		if (d.sign > 0)
			return PG_INT32_MAX;	/* larger than anything we can hold */
		schema_error(path, NULL, "keyword \"%s\" must be a non-negative integer", kw);
	}
	return r;
}

static EkNode **
kw_schema_array(Compiler *cc, const EkVal *v, const char *base,
				const char *path, const char *kw, int *count, bool nonempty)
{
	int			n,
				i;
	EkNode	  **arr;
	uint32		off = 0;
	const char *b;

	if (v->kind != EKT_ARRAY || (nonempty && JsonContainerSize(v->cont) == 0))
		schema_error(path, NULL, "keyword \"%s\" must be a %sarray of schemas",
					 kw, nonempty ? "non-empty " : "");
	n = JsonContainerSize(v->cont);
	arr = palloc0(sizeof(EkNode *) * Max(n, 1));
	b = container_base(v->cont);
	for (i = 0; i < n; i++)
	{
		EkVal		x;

		read_child(v->cont, b, i, &off, &x);
		arr[i] = compile_value(cc, &x, base, path_index(path, i));
	}
	*count = n;
	return arr;
}

static int
prop_cmp(const void *a, const void *b)
{
	const EkProp *x = a;
	const EkProp *y = b;

	return key_cmp(x->name, x->len, y->name, y->len);
}

static uint8
type_bit(const EkVal *v, const char *path)
{
	static const struct
	{
		const char *name;
		uint8		bit;
	}			types[] = {
		{"null", EKT_NULL}, {"boolean", EKT_BOOLEAN}, {"number", EKT_NUMBER},
		{"integer", EKT_INTEGER}, {"string", EKT_STRING}, {"array", EKT_ARRAY},
		{"object", EKT_OBJECT}
	};
	int			i;

	if (v->kind == EKT_STRING)
		for (i = 0; i < lengthof(types); i++)
			if (strlen(types[i].name) == v->len &&
				memcmp(types[i].name, v->str, v->len) == 0)
				return types[i].bit;
	schema_error(path, "The types are null, boolean, number, integer, string, array and object.",
				 "keyword \"type\" must be a type name or an array of distinct type names");
}

static void
kw_type(EkNode *node, const EkVal *v, const char *path)
{
	StringInfoData msg;

	initStringInfo(&msg);
	appendStringInfoString(&msg, "must be ");
	if (v->kind == EKT_ARRAY)
	{
		int			n = JsonContainerSize(v->cont),
					i;
		uint32		off = 0;

		if (n == 0)
			schema_error(path, NULL, "keyword \"type\" must not be an empty array");
		for (i = 0; i < n; i++)
		{
			EkVal		x;
			uint8		bit;

			read_child(v->cont, container_base(v->cont), i, &off, &x);
			bit = type_bit(&x, path);
			if (node->types & bit)
				schema_error(path, NULL, "keyword \"type\" lists \"%.*s\" twice",
							 x.len, x.str);
			node->types |= bit;
			if (i > 0)
				appendStringInfoChar(&msg, ',');
			appendBinaryStringInfo(&msg, x.str, x.len);
		}
	}
	else
	{
		node->types = type_bit(v, path);
		appendBinaryStringInfo(&msg, v->str, v->len);
	}
	node->type_msg = msg.data;
}

static EkProp *
kw_string_array(const EkVal *v, const char *path, const char *kw, int *count)
{
	int			n,
				i,
				j;
	EkProp	   *arr;
	uint32		off = 0;

	if (v->kind != EKT_ARRAY)
		schema_error(path, NULL, "keyword \"%s\" must be an array of strings", kw);
	n = JsonContainerSize(v->cont);
	arr = palloc0(sizeof(EkProp) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		EkVal		x;

		CHECK_FOR_INTERRUPTS();
		read_child(v->cont, container_base(v->cont), i, &off, &x);
		if (x.kind != EKT_STRING)
			schema_error(path, NULL, "keyword \"%s\" must be an array of strings", kw);
		arr[i].name = val_cstring(&x);
		arr[i].len = x.len;
		for (j = 0; j < i; j++)
			if (arr[j].len == x.len && memcmp(arr[j].name, x.str, x.len) == 0)
				schema_error(path, NULL, "keyword \"%s\" lists \"%s\" twice",
							 kw, arr[i].name);
	}
	*count = n;
	return arr;
}

static EkRegex *
kw_regex(Compiler *cc, const EkVal *v, const char *path, const char *kw)
{
	EkRegex    *r;
	char	   *err = NULL;

	if (v->kind != EKT_STRING)
		schema_error(path, NULL, "keyword \"%s\" must be a string", kw);
	r = palloc0(sizeof(EkRegex));
	if (!ek_regex_compile_into(r, v->str, v->len, &err))
		schema_error(path, "Patterns are ECMA-262 regular expressions.",
					 "invalid regular expression \"%.*s\": %s",
					 v->len, v->str, err);
	r->next = cc->schema->regexes;
	cc->schema->regexes = r;
	return r;
}

/* An annotation keyword of the caller's (Segment's "labels")? */
static bool
is_extra_annotation(Compiler *cc, const char *kw)
{
	if (cc->opts->annotations != NULL)
		for (const char *const *a = cc->opts->annotations; *a; a++)
			if (strcmp(kw, *a) == 0)
				return true;
	return false;
}

static void
compile_keyword(Compiler *cc, EkNode *node, const char *kw, const EkVal *v,
				const char *base, const char *npath)
{
	const char *path = path_join(npath, kw);

	if (strcmp(kw, "type") == 0)
		kw_type(node, v, path);
	else if (strcmp(kw, "minimum") == 0)
	{
		node->minimum = kw_number(v, path, kw, &node->minimum_s);
		num_decode(node->minimum, &node->minimum_n);
	}
	else if (strcmp(kw, "maximum") == 0)
	{
		node->maximum = kw_number(v, path, kw, &node->maximum_s);
		num_decode(node->maximum, &node->maximum_n);
	}
	else if ((strcmp(kw, "exclusiveMinimum") == 0 || strcmp(kw, "exclusiveMaximum") == 0) &&
			 cc->draft == 4 && v->kind == EKT_BOOLEAN)
	{
		/* draft-04: a flag on "minimum"/"maximum", applied by compile_value */
		if (v->b)
			node->draft04_excl |= strcmp(kw, "exclusiveMinimum") == 0 ? EK_D4_EXMIN : EK_D4_EXMAX;
	}
	else if (strcmp(kw, "exclusiveMinimum") == 0)
	{
		node->exmin = kw_number(v, path, kw, &node->exmin_s);
		num_decode(node->exmin, &node->exmin_n);
	}
	else if (strcmp(kw, "exclusiveMaximum") == 0)
	{
		node->exmax = kw_number(v, path, kw, &node->exmax_s);
		num_decode(node->exmax, &node->exmax_n);
	}
	else if (strcmp(kw, "multipleOf") == 0)
	{
		EkNum		d;

		node->multiple = kw_number(v, path, kw, &node->multiple_s);
		num_decode(node->multiple, &d);
		if (d.sign <= 0)
			schema_error(path, NULL, "keyword \"multipleOf\" must be greater than 0");
	}
	else if (strcmp(kw, "minLength") == 0)
		node->min_len = kw_count(v, path, kw);
	else if (strcmp(kw, "maxLength") == 0)
		node->max_len = kw_count(v, path, kw);
	else if (strcmp(kw, "pattern") == 0)
		node->pattern = kw_regex(cc, v, path, kw);
	else if (strcmp(kw, "format") == 0)
	{
		bool		unavailable = false;

		if (v->kind != EKT_STRING)
			schema_error(path, NULL, "keyword \"format\" must be a string");
		node->format_name = val_cstring(v);
		node->format = ek_format_lookup(node->format_name, &unavailable);
		if (node->format == NULL && unavailable)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("format \"%s\" is not supported by this build of eventkit",
							node->format_name),
					 errdetail("At schema location \"%s\".", path),
					 errhint("The idn-hostname and idn-email formats need PostgreSQL built with ICU (--with-icu).")));
		if (node->format == NULL && cc->opts->lenient)
		{
			cc->opts->ignored = lappend(cc->opts->ignored,
										psprintf("%s (\"%s\")", path, node->format_name));
			node->format_name = NULL;
			return;
		}
		if (node->format == NULL)
			schema_error(path, "Supported formats: date-time, date, time, email, idn-email, hostname, idn-hostname, ipv4, ipv6, uri, uri-reference, iri, iri-reference, uri-template, uuid, json-pointer, relative-json-pointer, regex.",
						 "unknown format \"%s\"", node->format_name);
	}
	else if (strcmp(kw, "items") == 0)
	{
		if (v->kind == EKT_ARRAY)
			node->items_arr = kw_schema_array(cc, v, base, path, kw,
											  &node->nitems_arr, false);
		else
			node->items = compile_value(cc, v, base, path);
	}
	else if (strcmp(kw, "additionalItems") == 0)
		node->add_items = compile_value(cc, v, base, path);
	else if (strcmp(kw, "minItems") == 0)
		node->min_items = kw_count(v, path, kw);
	else if (strcmp(kw, "maxItems") == 0)
		node->max_items = kw_count(v, path, kw);
	else if (strcmp(kw, "uniqueItems") == 0)
	{
		if (v->kind != EKT_BOOLEAN)
			schema_error(path, NULL, "keyword \"uniqueItems\" must be a boolean");
		node->unique_items = v->b;
	}
	else if (strcmp(kw, "contains") == 0)
		node->contains = compile_value(cc, v, base, path);
	else if (strcmp(kw, "properties") == 0)
	{
		int			n,
					i;
		uint32		ko = 0,
					vo;

		if (v->kind != EKT_OBJECT)
			schema_error(path, NULL, "keyword \"properties\" must be an object of schemas");
		n = JsonContainerSize(v->cont);
		node->props = palloc0(sizeof(EkProp) * Max(n, 1));
		node->nprops = n;
		vo = getJsonbOffset(v->cont, n);
		/* jsonb keeps the keys sorted as we need them */
		for (i = 0; i < n; i++)
		{
			EkVal		k,
						x;

			read_child(v->cont, container_base(v->cont), i, &ko, &k);
			read_child(v->cont, container_base(v->cont), i + n, &vo, &x);
			node->props[i].name = val_cstring(&k);
			node->props[i].len = k.len;
			node->props[i].node = compile_value(cc, &x, base,
												path_join(path, node->props[i].name));
		}
	}
	else if (strcmp(kw, "patternProperties") == 0)
	{
		int			n,
					i;
		uint32		ko = 0,
					vo;

		if (v->kind != EKT_OBJECT)
			schema_error(path, NULL, "keyword \"patternProperties\" must be an object of schemas");
		n = JsonContainerSize(v->cont);
		node->patprops = palloc0(sizeof(EkPatProp) * Max(n, 1));
		node->npatprops = n;
		vo = getJsonbOffset(v->cont, n);
		for (i = 0; i < n; i++)
		{
			EkVal		k,
						x;
			char	   *name;

			read_child(v->cont, container_base(v->cont), i, &ko, &k);
			read_child(v->cont, container_base(v->cont), i + n, &vo, &x);
			name = val_cstring(&k);
			node->patprops[i].re = kw_regex(cc, &k, path_join(path, name), kw);
			node->patprops[i].node = compile_value(cc, &x, base,
												   path_join(path, name));
		}
	}
	else if (strcmp(kw, "additionalProperties") == 0)
		node->add_props = compile_value(cc, v, base, path);
	else if (strcmp(kw, "required") == 0)
	{
		int			i,
					j;

		node->required = kw_string_array(v, path, kw, &node->nrequired);
		/* sort for the merge walk, remember the schema order for errors */
		node->required_order = palloc(sizeof(int) * Max(node->nrequired, 1));
		{
			EkProp	   *orig = palloc(sizeof(EkProp) * Max(node->nrequired, 1));

			memcpy(orig, node->required, sizeof(EkProp) * node->nrequired);
			qsort(node->required, node->nrequired, sizeof(EkProp), prop_cmp);
			for (i = 0; i < node->nrequired; i++)
			{
				CHECK_FOR_INTERRUPTS();
				for (j = 0; j < node->nrequired; j++)
					if (strcmp(orig[i].name, node->required[j].name) == 0)
						node->required_order[i] = j;
			}
		}
	}
	else if (strcmp(kw, "minProperties") == 0)
		node->min_props = kw_count(v, path, kw);
	else if (strcmp(kw, "maxProperties") == 0)
		node->max_props = kw_count(v, path, kw);
	else if (strcmp(kw, "dependencies") == 0)
	{
		int			n,
					i;
		uint32		ko = 0,
					vo;

		if (v->kind != EKT_OBJECT)
			schema_error(path, NULL, "keyword \"dependencies\" must be an object");
		n = JsonContainerSize(v->cont);
		node->deps = palloc0(sizeof(EkDep) * Max(n, 1));
		node->ndeps = n;
		vo = getJsonbOffset(v->cont, n);
		for (i = 0; i < n; i++)
		{
			EkVal		k,
						x;
			EkDep	   *d = &node->deps[i];
			char	   *p;

			read_child(v->cont, container_base(v->cont), i, &ko, &k);
			read_child(v->cont, container_base(v->cont), i + n, &vo, &x);
			d->name = val_cstring(&k);
			d->len = k.len;
			p = path_join(path, d->name);
			if (x.kind == EKT_ARRAY)
			{
				StringInfoData l;
				int			j;

				d->req = kw_string_array(&x, p, kw, &d->nreq);
				initStringInfo(&l);
				for (j = 0; j < d->nreq; j++)
					appendStringInfo(&l, "%s%s", j ? ", " : "", d->req[j].name);
				d->req_list = l.data;
			}
			else
				d->node = compile_value(cc, &x, base, p);
		}
	}
	else if (strcmp(kw, "propertyNames") == 0)
		node->prop_names = compile_value(cc, v, base, path);
	else if (strcmp(kw, "enum") == 0)
	{
		int			n,
					i;
		uint32		off = 0;

		if (v->kind != EKT_ARRAY)
			schema_error(path, NULL, "keyword \"enum\" must be an array");
		n = JsonContainerSize(v->cont);
		node->enum_vals = palloc0(sizeof(EkVal) * Max(n, 1));
		node->nenum = n;
		for (i = 0; i < n; i++)
			read_child(v->cont, container_base(v->cont), i, &off,
					   &node->enum_vals[i]);
	}
	else if (strcmp(kw, "const") == 0)
	{
		node->has_const = true;
		node->const_val = *v;
	}
	else if (strcmp(kw, "allOf") == 0)
		node->all_of = kw_schema_array(cc, v, base, path, kw, &node->nall, true);
	else if (strcmp(kw, "anyOf") == 0)
		node->any_of = kw_schema_array(cc, v, base, path, kw, &node->nany, true);
	else if (strcmp(kw, "oneOf") == 0)
		node->one_of = kw_schema_array(cc, v, base, path, kw, &node->none, true);
	else if (strcmp(kw, "not") == 0)
		node->not = compile_value(cc, v, base, path);
	else if (strcmp(kw, "if") == 0)
		node->if_ = compile_value(cc, v, base, path);
	else if (strcmp(kw, "then") == 0)
		node->then_ = compile_value(cc, v, base, path);
	else if (strcmp(kw, "else") == 0)
		node->else_ = compile_value(cc, v, base, path);
	else if (strcmp(kw, "$schema") == 0)
	{
		if (v->kind != EKT_STRING)
			schema_error(path, NULL, "keyword \"$schema\" must be a string");
		if (ek_draft_of_uri(v->str, v->len) == 0)
			schema_error(path, "JSON Schema draft-07, draft-06 and draft-04 are supported.",
						 "unsupported $schema \"%.*s\"", v->len, v->str);
	}
	else if (strcmp(kw, "$id") == 0 || (strcmp(kw, "id") == 0 && cc->draft == 4))
	{
		if (v->kind != EKT_STRING)
			schema_error(path, NULL, "keyword \"%s\" must be a string", kw);
	}
	else if (strcmp(kw, "definitions") == 0)
	{
		if (v->kind != EKT_OBJECT)
			schema_error(path, NULL, "keyword \"definitions\" must be an object of schemas");
		/* compiled when referenced */
	}
	else if (ek_kw_is_annotation(kw) || is_extra_annotation(cc, kw))
		 /* annotation: nothing to check */ ;
	else if (strncmp(kw, "x-", 2) == 0)
		 /* extension annotation */ ;
	else if (cc->opts->lenient)
	{
		cc->opts->ignored = lappend(cc->opts->ignored, (char *) path);
		return;
	}
	else if (ek_kw_is_later_draft(kw))
		schema_error(path, "The validator implements JSON Schema draft-07, which does not have this keyword.",
					 "unsupported keyword \"%s\"", kw);
	else
		schema_error(path, "Unknown keywords are rejected rather than ignored; annotations of your own may be named \"x-...\".",
					 "unknown keyword \"%s\"", kw);

	node->has |= ek_kw_group(kw);
}

static EkNode *
new_node(const char *path)
{
	EkNode	   *node = palloc0(sizeof(EkNode));

	node->path = path;
	node->boolean = -1;
	node->min_len = node->max_len = -1;
	node->min_items = node->max_items = -1;
	node->min_props = node->max_props = -1;
	return node;
}

/*
 * When every name in "required" is also in "properties", flag those
 * properties: the validator's merge walk over the instance's keys then
 * counts the required ones it meets instead of walking "required" too.
 */
static void
mark_required_props(EkNode *node)
{
	int			i,
				p = 0,
				count = 0;

	node->nreq_props = -1;
	if (node->nrequired == 0)
		return;
	/* both sorted in jsonb key order; "required" may repeat a name */
	for (i = 0; i < node->nrequired; i++)
	{
		const EkProp *rq = &node->required[i];
		int			c = 1;

		while (p < node->nprops &&
			   (c = key_cmp(node->props[p].name, node->props[p].len,
							rq->name, rq->len)) < 0)
			p++;
		if (p >= node->nprops || c != 0)
		{
			for (p = 0; p < node->nprops; p++)
				node->props[p].required = false;
			return;
		}
		if (!node->props[p].required)
		{
			node->props[p].required = true;
			count++;
		}
	}
	node->nreq_props = count;
}

/*
 * For each of node's properties, the kinds of value that pass its schema
 * on "type" alone, with nothing else to check (references resolved):
 * the validator then need not call validate() for them.
 */
static void
set_prop_pass(EkNode *node)
{
	static const uint8 kinds[] = {EKT_NULL, EKT_BOOLEAN, EKT_NUMBER,
	EKT_STRING, EKT_ARRAY, EKT_OBJECT};
	int			i,
				k;

	for (i = 0; i < node->nprops; i++)
	{
		const EkNode *pn = node->props[i].node;

		node->props[i].pass = 0;
		if (pn->ref != NULL || pn->boolean >= 0)
			continue;
		for (k = 0; k < lengthof(kinds); k++)
			if ((pn->work & kinds[k]) == 0 &&
				(pn->types == 0 || (pn->types & kinds[k]) != 0))
				node->props[i].pass |= kinds[k];
	}
}

static EkNode *
compile_value(Compiler *cc, const EkVal *v, const char *base, const char *path)
{
	EkNode	   *node;
	LocEntry   *loc;
	EkVal		refv;
	int			n,
				i;
	uint32		ko = 0,
				vo;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (v->kind == EKT_BOOLEAN)
	{
		node = new_node(path);
		node->boolean = v->b ? 1 : 0;
		return node;
	}
	if (v->kind != EKT_OBJECT)
		schema_error(path, NULL, "a schema must be an object or a boolean");

	loc = loc_lookup(cc, v->cont, true);
	if (loc->node)
		return loc->node;
	if (loc->path)
	{
		base = loc->base;
		path = loc->path;
	}
	node = new_node(path);
	loc->node = node;
	cc->nodes = lappend(cc->nodes, node);

	if (ek_object_lookup(v->cont, "$ref", 4, &refv))
	{
		PendingRef *pr = palloc(sizeof(PendingRef));
		char	   *ref;

		if (refv.kind != EKT_STRING)
			schema_error(path_join(path, "$ref"), NULL, "keyword \"$ref\" must be a string");
		ref = val_cstring(&refv);
		pr->node = node;
		pr->uri = uri_resolve(base, ref);
		node->ref_uri = pr->uri;
		cc->pending = lappend(cc->pending, pr);
		/* draft-07: every other keyword beside "$ref" is ignored */
		return node;
	}

	n = JsonContainerSize(v->cont);
	vo = getJsonbOffset(v->cont, n);
	for (i = 0; i < n; i++)
	{
		EkVal		k,
					x;

		read_child(v->cont, container_base(v->cont), i, &ko, &k);
		read_child(v->cont, container_base(v->cont), i + n, &vo, &x);
		compile_keyword(cc, node, val_cstring(&k), &x, base, path);
	}
	if (node->draft04_excl)
	{
		const char *problem = ek_draft04_exclusive(node);

		if (problem)
			schema_error(path, "In draft-04 the boolean makes the bound beside it exclusive.",
						 "%s", problem);
	}
	mark_required_props(node);
	if (node->has & HAS_NUM)
		node->work |= EKT_NUMBER;
	if (node->has & HAS_STR)
		node->work |= EKT_STRING;
	if (node->has & HAS_ARR)
		node->work |= EKT_ARRAY;
	if (node->has & HAS_OBJ)
		node->work |= EKT_OBJECT;
	if (node->has & HAS_ANY)
		node->work = EKT_NULL | EKT_BOOLEAN | EKT_NUMBER | EKT_STRING |
			EKT_ARRAY | EKT_OBJECT;
	return node;
}

/*
 * A cycle of schemas applied to the same instance location ($ref, allOf,
 * anyOf, oneOf, not, if/then/else, dependencies) would never terminate.
 */
static void
check_cycles(EkNode *node)
{
	int			i;

	if (node == NULL || node->boolean >= 0)
		return;
	if (node->visit == 2)
		return;
	if (node->visit == 1)
		schema_error(node->path,
					 "A \"$ref\" (or allOf/anyOf/oneOf/not/if) must not lead back to the same schema without moving into a property or item.",
					 "schema references itself without progress");
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	node->visit = 1;
	check_cycles(node->ref);
	for (i = 0; i < node->nall; i++)
		check_cycles(node->all_of[i]);
	for (i = 0; i < node->nany; i++)
		check_cycles(node->any_of[i]);
	for (i = 0; i < node->none; i++)
		check_cycles(node->one_of[i]);
	check_cycles(node->not);
	check_cycles(node->if_);
	check_cycles(node->then_);
	check_cycles(node->else_);
	for (i = 0; i < node->ndeps; i++)
		check_cycles(node->deps[i].node);
	node->visit = 2;
}

static void
free_regexes(void *arg)
{
	EkSchema   *s = arg;
	EkRegex    *r;

	for (r = s->regexes; r; r = r->next)
		pg_regfree(&r->re);
	s->regexes = NULL;
}

EkSchema *
ek_schema_compile(Jsonb *schema)
{
	EkSchemaOptions opts = {0};

	return ek_schema_compile_opts(schema, &opts);
}

EkSchema *
ek_schema_compile_opts(Jsonb *schema, EkSchemaOptions *opts)
{
	Compiler	cc;
	HASHCTL		ctl;
	EkVal		root;
	EkSchema   *result;
	MemoryContextCallback *cb;
	Jsonb	   *copy;

	/* keep our own copy: compiled nodes point into it */
	copy = palloc(VARSIZE(schema));
	memcpy(copy, schema, VARSIZE(schema));

	result = palloc0(sizeof(EkSchema));
	cb = palloc0(sizeof(MemoryContextCallback));
	cb->func = free_regexes;
	cb->arg = result;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);

	memset(&cc, 0, sizeof(cc));
	cc.schema = result;
	cc.opts = opts;
	error_location = opts->location;
	cc.draft = opts->draft;
	if (cc.draft == 0)
		cc.draft = ek_schema_declared_draft(copy) > 0 ? ek_schema_declared_draft(copy) : 7;
	ctl.keysize = sizeof(JsonbContainer *);
	ctl.entrysize = sizeof(LocEntry);
	ctl.hcxt = CurrentMemoryContext;
	cc.locs = hash_create("eventkit schema locations", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	root_value(copy, &root);
	if (root.kind != EKT_OBJECT && root.kind != EKT_BOOLEAN)
		schema_error("#", NULL, "a schema must be an object or a boolean");
	add_uri(&cc, "", &root, "", "#");
	prepass(&cc, &root, "", "#");
	result->root = compile_value(&cc, &root, "", "#");

	/* resolve references, compiling what they point to */
	while (cc.pending != NIL)
	{
		PendingRef *pr = linitial(cc.pending);

		CHECK_FOR_INTERRUPTS();
		cc.pending = list_delete_first(cc.pending);
		pr->node->ref = resolve_ref(&cc, pr->uri, path_join(pr->node->path, "$ref"));
	}
	{
		ListCell   *lc;

		foreach(lc, cc.nodes)
			check_cycles(lfirst(lc));
		foreach(lc, cc.nodes)
			set_prop_pass(lfirst(lc));
	}
	hash_destroy(cc.locs);
	return result;
}

