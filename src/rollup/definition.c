/*-------------------------------------------------------------------------
 *
 * definition.c
 *	  Rollup definitions: parsing the dimension and measure specs given to
 *	  eventkit.create_rollup() ("properties.currency AS cur", "sum(properties.
 *	  revenue)", "percentile(properties.ms, 0.95) AS p95", ...) into what the
 *	  fold reads (RollupSource) and the stream columns it reads (so that
 *	  ingest's deltas pass it exactly those), the bucket expressions and
 *	  the options.  The SQL a definition generates (tables, the merge, the
 *	  fold's and the realtime view's SELECTs) is built in definition_sql.c.
 *
 *	  create_rollup checks each spec against the grammar first (strict
 *	  parse: check_spec), so that a malformed spec is an error rather than a
 *	  strange column name; a definition already in the catalog is parsed as
 *	  it was accepted, so that an older rollup keeps working.
 *
 *	  Bad values (rollup.h): the realtime view applies the fold's rules by
 *	  calling the same C code (values.c) through
 *	  eventkit.rollup_number(), rollup_skipped() and rollup_dimension(): a
 *	  measure's value that is not a number or is out of its range is left
 *	  out (the event counted in skipped_events), a long text dimension value
 *	  is bounded.  create_rollup also checks that the rollup's key fits a
 *	  btree entry whatever the values.
 *
 *	  Everything generated is search_path-safe: identifiers are quoted,
 *	  functions and operators schema-qualified (the hll and tdigest ones via
 *	  the schema their extension lives in), and the only literals are the
 *	  rollup's own definition (JSON path keys, the bucket width, percentile
 *	  fractions, measure names), quoted with quote_literal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "rollup/rollup.h"
#include "util/spi.h"

/* trim leading and trailing white space in place */
static char *
trim(char *s)
{
	char	   *e;

	while (*s && isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The " AS " of "spec AS name" (the last one), or NULL.
 */
static char *
find_as(char *spec)
{
	char	   *best = NULL;

	for (char *p = spec; *p; p++)
	{
		if (isspace((unsigned char) *p) &&
			pg_strncasecmp(p + 1, "as", 2) == 0 &&
			isspace((unsigned char) p[3]))
			best = p;
	}
	return best;
}

/*
 * Split "spec AS name" into spec and name (NULL when there is no AS).  The
 * name may be double-quoted.
 */
static char *
split_alias(char *spec, char **alias)
{
	char	   *best = find_as(spec);

	*alias = NULL;
	if (best == NULL)
		return trim(spec);
	*best = '\0';
	*alias = trim(best + 4);
	if ((*alias)[0] == '"')
	{
		size_t		len = strlen(*alias);

		if (len < 3 || (*alias)[len - 1] != '"')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid rollup column name %s", *alias)));
		(*alias)[len - 1] = '\0';
		(*alias)++;
	}
	if ((*alias)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("empty name after AS"),
				 errhint("Write \"<dimension or measure> AS <name>\".")));
	return trim(spec);
}

static const char *const measure_fn[] = {
	"count", "sum", "min", "max", "avg", "distinct", "percentile"
};

/* ---------------------------------------------------------------------
 * The grammar of a spec, checked by create_rollup (strict parse)
 * ---------------------------------------------------------------------
 */

#define MEASURE_GRAMMAR_HINT \
	"Write count, sum(p), min(p), max(p), avg(p), distinct(p) or percentile(p, q), " \
	"optionally followed by AS name: p is a column or a JSON path such as properties.revenue " \
	"(JSON keys without . ( ) , ; ' \" or \\), q a fraction between 0 and 1, name an identifier " \
	"(letters, digits, _ and $) or a double-quoted name."
#define DIMENSION_GRAMMAR_HINT \
	"Write a column (event) or a JSON path (properties.currency, context.page.path; " \
	"JSON keys without . ( ) , ; ' \" or \\), optionally followed by AS name: an identifier " \
	"(letters, digits, _ and $) or a double-quoted name."

static void
spec_error(bool measure, const char *spec, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid rollup %s", measure ? "measure" : "dimension"),
			 errdetail("The %s \"%s\" %s.", measure ? "measure" : "dimension", spec, problem),
			 errhint("%s", measure ? MEASURE_GRAMMAR_HINT : DIMENSION_GRAMMAR_HINT)));
}

/* a character of an unquoted name: letters (any non-ASCII byte), digits, _, $ */
static bool
ident_char(unsigned char c, bool first)
{
	return c >= 0x80 || isalpha(c) || c == '_' || (!first && (isdigit(c) || c == '$'));
}

static bool
is_identifier(const char *s)
{
	if (*s == '\0')
		return false;
	for (const char *p = s; *p; p++)
		if (!ident_char((unsigned char) *p, p == s))
			return false;
	return true;
}

/* a JSON key or array index: no separator, quote, control character */
static const char *
bad_key_char(const char *key)
{
	for (const char *p = key; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7f || strchr("().,;'\"\\", c) != NULL)
			return p;
	}
	return NULL;
}

/* column { . key }: as parse_path() reads it */
static void
check_path_syntax(bool measure, const char *spec, const char *path)
{
	char	   *copy = pstrdup(path);
	char	   *elem;
	char	   *next;
	bool		first = true;

	if (*trim(copy) == '\0')
		spec_error(measure, spec, "has no column or JSON path");
	for (elem = copy; elem != NULL; elem = next, first = false)
	{
		const char *bad;

		next = strchr(elem, '.');
		if (next)
			*next++ = '\0';
		elem = trim(elem);
		if (elem[0] == '\0')
			spec_error(measure, spec, "has an empty element in its path");
		if (first && !is_identifier(elem))
			spec_error(measure, spec,
					   psprintf("starts with \"%s\", which is not a column name", elem));
		if (!first && (bad = bad_key_char(elem)) != NULL)
			spec_error(measure, spec,
					   psprintf("has the JSON key \"%s\", which contains %s", elem,
								(unsigned char) *bad < 0x20 || *bad == 0x7f ?
								"a control character" : psprintf("\"%c\"", *bad)));
	}
}

/*
 * Check a dimension or measure spec against the grammar (see the hints).
 * What passes is read by the parse below exactly as written.
 */
static void
check_spec(const char *spec, bool measure)
{
	char	   *copy = pstrdup(spec);
	char	   *as = find_as(copy);
	char	   *body;

	if (as != NULL)
	{
		char	   *name = trim(as + 4);

		*as = '\0';
		if (name[0] == '"')
		{
			size_t		len = strlen(name);

			if (len < 3 || name[len - 1] != '"' || strchr(name + 1, '"') != name + len - 1)
				spec_error(measure, spec, "has a malformed quoted name after AS");
			for (const char *p = name; *p; p++)
				if ((unsigned char) *p < 0x20 || *p == 0x7f)
					spec_error(measure, spec, "has a control character in its name");
		}
		else if (!is_identifier(name))
			spec_error(measure, spec,
					   psprintf("is named \"%s\", which is not an identifier (quote it)", name));
	}
	body = trim(copy);
	if (body[0] == '\0')
		spec_error(measure, spec, "is empty");

	if (measure)
	{
		char	   *open = strchr(body, '(');
		char	   *fn;
		char	   *arg;
		int			kind = -1;

		if (open != NULL)
			*open = '\0';
		fn = trim(body);
		for (int i = 0; i < lengthof(measure_fn); i++)
			if (pg_strcasecmp(fn, measure_fn[i]) == 0)
				kind = i;
		if (kind < 0)
			spec_error(measure, spec,
					   is_identifier(fn) ? psprintf("uses the unknown function \"%s\"", fn) :
					   "does not start with a measure function");
		if (open == NULL)
		{
			if (kind != RM_COUNT)
				spec_error(measure, spec, psprintf("needs an argument: %s(p)", measure_fn[kind]));
			return;
		}
		arg = open + 1;
		{
			char	   *close = arg + strlen(arg);

			while (close > arg && isspace((unsigned char) close[-1]))
				close--;
			if (close == arg || close[-1] != ')')
				spec_error(measure, spec, "has no closing parenthesis at its end");
			close[-1] = '\0';
		}
		if (strchr(arg, '(') != NULL || strchr(arg, ')') != NULL)
			spec_error(measure, spec, "has parentheses inside its argument");
		if (kind == RM_COUNT)
		{
			if (*trim(arg) != '\0')
				spec_error(measure, spec, "gives count an argument: count counts events");
			return;
		}
		if (kind == RM_PERCENTILE)
		{
			char	   *comma = strrchr(arg, ',');
			char	   *q;

			if (comma == NULL)
				spec_error(measure, spec, "needs a path and a fraction: percentile(p, 0.95)");
			*comma = '\0';
			q = trim(comma + 1);
			/* (its range is checked by the parse) */
			if (strspn(q, "0123456789.eE+-") != strlen(q) || strpbrk(q, "0123456789") == NULL)
				spec_error(measure, spec,
						   psprintf("has the fraction \"%s\", which is not a number", q));
		}
		else if (strchr(arg, ',') != NULL)
			spec_error(measure, spec, psprintf("gives %s more than one argument", measure_fn[kind]));
		check_path_syntax(measure, spec, arg);
	}
	else
		check_path_syntax(measure, spec, body);
}

/* A path "col.a.b": the column and its JSON keys (possibly none). */
typedef struct RollupPath
{
	char	   *column;
	AttrNumber	attnum;
	Oid			coltype;
	int32		coltypmod;
	List	   *keys;			/* of char * */
	char	   *last;			/* last element: the default name */
} RollupPath;

/* Record that the definition reads the stream column name (once). */
static void
reads_column(RollupDef *def, const char *name)
{
	ListCell   *lc;

	foreach(lc, def->columns)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return;
	def->columns = lappend(def->columns, pstrdup(name));
}

static void
parse_path(RollupDef *def, char *text, RollupPath *path, const char *what)
{
	char	   *elem;
	char	   *save;
	char	   *copy = pstrdup(text);
	Oid			collid;

	memset(path, 0, sizeof(*path));
	if (text[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("empty %s", what),
				 errhint("A %s is a column (event, type, user_id) or a JSON path (properties.currency).", what)));
	for (elem = copy; elem != NULL; elem = save)
	{
		save = strchr(elem, '.');
		if (save)
			*save++ = '\0';
		elem = trim(elem);
		if (elem[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("empty element in %s path \"%s\"", what, text),
					 errhint("Separate JSON keys with single dots, as in context.page.path.")));
		if (path->column == NULL)
			path->column = elem;
		else
			path->keys = lappend(path->keys, elem);
		path->last = elem;
	}

	path->attnum = get_attnum(def->stream_relid, path->column);
	if (path->attnum == InvalidAttrNumber || path->attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of stream \"%s\" does not exist",
						path->column, get_rel_name(def->stream_relid)),
				 errhint("A %s is a column (event, type, user_id) or a JSON path into properties, traits, context or extra (properties.currency).", what)));
	get_atttypetypmodcoll(def->stream_relid, path->attnum, &path->coltype,
						  &path->coltypmod, &collid);
	if (path->keys != NIL && path->coltype != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is not jsonb, so \"%s\" is not a JSON path",
						path->column, text),
				 errhint("JSON paths start with properties, traits, context or extra.")));
	reads_column(def, path->column);
}

/* s.col, or s.col #> ARRAY[...] (jsonb) when the path has keys */
static char *
path_jsonb(const RollupPath *path, const char *op)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "(s.%s OPERATOR(pg_catalog.%s) ARRAY[",
					 quote_identifier(path->column), op);
	foreach(lc, path->keys)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 quote_literal_cstr((char *) lfirst(lc)));
	appendStringInfoString(&buf, "]::pg_catalog.text[])");
	return buf.data;
}

/*
 * A path's value as text over s, for a filter (filter.c): a JSON path's as
 * #>> gives it, a column's text form; only columns whose text form does not
 * depend on settings (DateStyle, extra_float_digits, ...).
 */
static char *
path_text(RollupDef *def, const char *text)
{
	RollupPath	path;

	parse_path(def, pstrdup(text), &path, "filter");
	if (path.keys != NIL)
		return path_jsonb(&path, "#>>");
	switch (path.coltype)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case BOOLOID:
		case UUIDOID:
			return psprintf("s.%s::pg_catalog.text", quote_identifier(path.column));
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a rollup filter cannot compare column \"%s\" of type %s",
							path.column, format_type_be(path.coltype)),
					 errdetail("A filter compares text, integer, numeric, boolean and uuid columns and JSON paths."),
					 errhint("Filter on a JSON path or another column.")));
	}
	return NULL;				/* keep the compiler quiet */
}

static bool
numeric_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == NUMERICOID ||
		t == FLOAT4OID || t == FLOAT8OID;
}

/*
 * A JSON value the measures read is extracted once per row, in an inner
 * projection (see append_partial_select): returns the column that holds it.
 */
static char *
inner_column(RollupDef *def, char *expr)
{
	ListCell   *lc;

	foreach(lc, def->inner_exprs)
		if (strcmp((char *) lfirst(lc), expr) == 0)
			return psprintf("s.ek_j%d", foreach_current_index(lc) + 1);
	def->inner_exprs = lappend(def->inner_exprs, expr);
	return psprintf("s.ek_j%d", list_length(def->inner_exprs));
}

/* The index of the fold's source ident (created when new). */
static int
fold_source(RollupDef *def, RollupSourceKind kind, char *sql, List *keys,
			const RollupPath *from)
{
	char	   *column = from->column;
	Oid			coltype = from->coltype;
	ListCell   *lc;
	char	   *ident = psprintf("%d:%s", (int) kind, sql);
	RollupSource *src;

	foreach(lc, keys)
		ident = psprintf("%s.%s", ident, quote_literal_cstr((char *) lfirst(lc)));
	foreach(lc, def->sources)
		if (strcmp(((RollupSource *) lfirst(lc))->ident, ident) == 0)
			return foreach_current_index(lc);
	src = palloc0(sizeof(RollupSource));
	src->kind = kind;
	src->sql = sql;
	src->keys = keys;
	src->ident = ident;
	src->column = column;
	src->coltype = coltype;
	def->sources = lappend(def->sources, src);
	return list_length(def->sources) - 1;
}

/* What a number of a measure of this kind must fit in (rollup.h). */
static RollupRange
measure_range(RollupMeasureKind kind)
{
	switch (kind)
	{
		case RM_SUM:
		case RM_AVG:
			return RR_SUM;
		case RM_PERCENTILE:
			return RR_PERCENTILE;
		default:
			return RR_FINITE;
	}
}

/*
 * The numeric value of a path and, for the realtime view, its value (NULL
 * when absent or skipped) and skip expression: eventkit.rollup_number() and
 * eventkit.rollup_skipped() apply the rules the fold applies in C; and,
 * for the backfill of a distributed stream (backfill.c), whether a skipped
 * value's reason is not_a_number, as the fold's value_reason() tells it.
 */
static void
numeric_value(RollupDef *def, const RollupPath *path, const char *spec, RollupMeasure *m)
{
	const char *fn = quote_literal_cstr(measure_fn[m->kind]);
	char	   *x;

	m->range = measure_range(m->kind);
	if (path->keys == NIL)
	{
		if (!numeric_type(path->coltype))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is not numeric: \"%s\" needs a number", path->column, spec),
					 errhint("Use a numeric column or a JSON path such as properties.revenue.")));
		x = psprintf("s.%s::pg_catalog.numeric", quote_identifier(path->column));
		m->source = fold_source(def, RS_NUMERIC, x, NIL, path);
		if (path->coltype == INT2OID || path->coltype == INT4OID || path->coltype == INT8OID)
		{
			/* an integer fits every range */
			m->range = RR_ANY;
			m->value = x;
			m->skip = NULL;
			return;
		}
		/* (a NaN; an infinity is out of range) */
		m->skip_nan = psprintf("(%s OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.numeric)", x);
	}
	else
	{
		/* the JSON value, extracted once per row */
		x = inner_column(def, path_jsonb(path, "#>"));
		m->source = fold_source(def, RS_JSON_NUMBER,
								psprintf("s.%s", quote_identifier(path->column)),
								path->keys, path);
		/* (a string, boolean, object or array; a JSON number is never NaN) */
		m->skip_nan = psprintf("(pg_catalog.jsonb_typeof(%s) OPERATOR(pg_catalog.<>) 'number')", x);
	}
	m->value = psprintf("eventkit.rollup_number(%s, %s)", x, fn);
	m->skip = psprintf("eventkit.rollup_skipped(%s, %s)", x, fn);
}

/*
 * The schema (unquoted) an extension is installed in, or an error.  (PG15
 * does not export get_extension_schema; this is what it does.)
 */
static char *
extension_schema(const char *extname, const char *measure)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nspid = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(extname));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nspid = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("measure \"%s\" needs the extension \"%s\"", measure, extname),
				 errhint("CREATE EXTENSION %s;", extname)));
	return get_namespace_name(nspid);
}

static void
parse_measure(RollupDef *def, char *spec, RollupMeasure *m)
{
	char	   *alias;
	char	   *body = split_alias(spec, &alias);
	char	   *open = strchr(body, '(');
	char	   *fn;
	char	   *arg = NULL;
	RollupPath path;
	int			kind = -1;

	memset(m, 0, sizeof(*m));
	m->source = -1;
	if (open)
	{
		char	   *close = body + strlen(body) - 1;

		if (*close != ')')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid measure \"%s\"", spec),
					 errhint("Measures: count, sum(p), min(p), max(p), avg(p), distinct(p), percentile(p, q).")));
		*open = '\0';
		*close = '\0';
		arg = trim(open + 1);
	}
	fn = trim(body);
	for (int i = 0; i < lengthof(measure_fn); i++)
		if (pg_strcasecmp(fn, measure_fn[i]) == 0)
			kind = i;
	if (kind < 0 || (kind == RM_COUNT) != (arg == NULL || arg[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid measure \"%s\"", fn),
				 errhint("Measures: count, sum(p), min(p), max(p), avg(p), distinct(p), percentile(p, q).")));
	m->kind = (RollupMeasureKind) kind;

	if (m->kind == RM_COUNT)
	{
		m->name = alias ? alias : "count";
		return;
	}

	if (m->kind == RM_PERCENTILE)
	{
		char	   *comma = strrchr(arg, ',');
		char	   *end;

		if (comma == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("percentile needs a path and a fraction"),
					 errhint("Write percentile(properties.duration, 0.95).")));
		*comma = '\0';
		errno = 0;
		m->q = strtod(trim(comma + 1), &end);
		if (errno != 0 || *end != '\0' || !(m->q >= 0.0 && m->q <= 1.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("percentile fraction \"%s\" is not a number between 0 and 1",
							trim(comma + 1)),
					 errhint("Write percentile(properties.duration, 0.95).")));
		arg = trim(arg);
	}

	parse_path(def, arg, &path, "measure");
	m->name = alias ? alias : psprintf("%s_%s", measure_fn[m->kind], path.last);

	switch (m->kind)
	{
		case RM_DISTINCT:
			if (def->hll_schema == NULL)
			{
				def->hll_nsp = extension_schema("hll", "distinct");
				def->hll_schema = (char *) quote_identifier(def->hll_nsp);
			}
			if (path.keys != NIL)
				m->value = path_jsonb(&path, "#>>");
			else
				m->value = psprintf("s.%s::pg_catalog.text", quote_identifier(path.column));
			m->source = fold_source(def, RS_TEXT, m->value, NIL, &path);
			{
				RollupSource *src = list_nth(def->sources, m->source);

				src->path = path.keys;
			}
			break;
		case RM_PERCENTILE:
			if (def->tdigest_schema == NULL)
				def->tdigest_schema = (char *) quote_identifier(extension_schema("tdigest",
																				  "percentile"));
			numeric_value(def, &path, arg, m);
			break;
		default:
			numeric_value(def, &path, arg, m);
			break;
	}
}

/* the longest bounded value, in characters */
#define BOUNDED_CHARS (EK_ROLLUP_DIM_PREFIX_CHARS + (int) strlen(EK_ROLLUP_DIM_MARKER) + 32 + 1)

/*
 * The most bytes a dimension's values take in the rollup's key, or -1 if
 * unbounded.
 */
static int
dimension_width(const RollupDim *d, int32 typmod)
{
	int16		typlen = get_typlen(d->typid);

	if (typlen > 0)
		return typlen;
	if (d->bounded)
		return EK_ROLLUP_DIM_MAX_BYTES + VARHDRSZ;
	return type_maximum_size(d->typid, typmod);
}

static void
parse_dimension(RollupDef *def, char *spec, RollupDim *d, int32 *typmod)
{
	char	   *alias;
	char	   *body = split_alias(spec, &alias);
	RollupPath	path;

	parse_path(def, body, &path, "dimension");
	d->name = alias ? alias : path.last;
	d->column = path.column;
	d->keys = path.keys;
	if (path.keys != NIL)
	{
		d->expr = path_jsonb(&path, "#>>");
		d->typname = "pg_catalog.text";
		d->typid = TEXTOID;
		*typmod = -1;
	}
	else
	{
		d->expr = psprintf("s.%s", quote_identifier(path.column));
		d->typid = path.coltype;
		d->typname = format_type_extended(path.coltype, path.coltypmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		*typmod = path.coltypmod;
	}

	/*
	 * Text is bounded, unless its type's length limit keeps it shorter than
	 * a bounded value (which could then not be stored).  (Not char(n): its
	 * padding is not part of its text value, which rollup_dimension() would
	 * bound.)
	 */
	d->bounded = (d->typid == TEXTOID || d->typid == VARCHAROID) &&
		(*typmod < 0 || *typmod - VARHDRSZ >= BOUNDED_CHARS);
	if (!d->bounded)
		d->view_expr = d->expr;
	else if (d->typid == TEXTOID)
		d->view_expr = psprintf("eventkit.rollup_dimension(%s)", d->expr);
	else
		d->view_expr = psprintf("eventkit.rollup_dimension(%s)::%s", d->expr, d->typname);
}

/*
 * A rollup table column name: not too long, not taken, not reserved (the
 * rollup table's bucket and skipped_events; with strict, also what the
 * delta table adds, batch_id and ek_*: a definition already in the catalog
 * is not refused for names that were allowed when it was made).
 */
static void
check_name(List **seen, const char *name, const char *spec, bool strict)
{
	ListCell   *lc;

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("rollup column name \"%s\" is too long", name),
				 errdetail("It is the name of \"%s\".", spec),
				 errhint("Name it with AS, in at most %d bytes.", NAMEDATALEN - 1)));
	if (strcmp(name, "bucket") == 0 || strcmp(name, EK_ROLLUP_SKIPPED_COLUMN) == 0 ||
		(strict && (strcmp(name, "batch_id") == 0 || strncmp(name, "ek_", 3) == 0)))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("rollup column name \"%s\" is reserved", name),
				 errdetail("It is the name of \"%s\".", spec),
				 errhint("Rollup tables have the columns bucket and %s, their delta tables batch_id and ek_*: name it otherwise with AS.",
						 EK_ROLLUP_SKIPPED_COLUMN)));
	foreach(lc, *seen)
		if (strcmp((char *) lfirst(lc), name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("rollup column \"%s\" is defined more than once", name),
					 errdetail("It is the name of \"%s\".", spec),
					 errhint("Give one of them another name with AS.")));
	*seen = lappend(*seen, (char *) name);
}

/* Does the definition have a column of that name (dimension or state)? */
bool
ek_rollup_uses_name(const RollupDef *def, const char *name)
{
	ListCell   *lc;

	foreach(lc, def->dims)
		if (strcmp(((RollupDim *) lfirst(lc))->name, name) == 0)
			return true;
	foreach(lc, def->measures)
	{
		RollupMeasure *m = lfirst(lc);

		if (strcmp(m->name, name) == 0 ||
			(m->kind == RM_AVG && (strcmp(psprintf("%s_sum", m->name), name) == 0 ||
								   strcmp(psprintf("%s_count", m->name), name) == 0)))
			return true;
	}
	return false;
}

/* the largest index tuple a btree takes (PostgreSQL 15's BTMaxItemSize on 8 kB pages) */
#define BTREE_MAX_KEY_BYTES 2704
/* a key's tuple header and null bitmap, and the bucket */
#define KEY_OVERHEAD_BYTES (MAXALIGN(sizeof(IndexTupleData) + sizeof(IndexAttributeBitMapData)) + \
							sizeof(TimestampTz))

/*
 * Parse the text[] dimension and measure specs against the stream
 * (def->stream_relid must be set).  strict (create_rollup): each spec must
 * follow the grammar (check_spec), and the rollup's key must fit in a btree
 * whatever the values.
 */
void
ek_rollup_parse(RollupDef *def, Datum dimensions, Datum measures, bool strict)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *seen = NIL;
	int			keybytes = KEY_OVERHEAD_BYTES;

	def->dims = NIL;
	def->measures = NIL;
	def->inner_exprs = NIL;
	def->sources = NIL;
	def->columns = NIL;
	/* the bucket: ek_rollup_bucket_expr() */
	reads_column(def, "ts");

	deconstruct_array(DatumGetArrayTypeP(dimensions), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		RollupDim  *d = palloc0(sizeof(RollupDim));
		char	   *spec;
		int32		typmod;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("dimensions must not contain nulls")));
		spec = TextDatumGetCString(elems[i]);
		if (strict)
			check_spec(spec, false);
		parse_dimension(def, pstrdup(spec), d, &typmod);
		check_name(&seen, d->name, spec, strict);
		if (strict)
		{
			int			width = dimension_width(d, typmod);

			if (width < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("dimension \"%s\" has type %s, whose values can be too long for the rollup's key",
								spec, format_type_be(d->typid)),
						 errhint("Use a JSON path (stored as text, its long values bounded), a text column or a column of a fixed-size type.")));
			keybytes += MAXALIGN(width);
			if (keybytes > BTREE_MAX_KEY_BYTES)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many dimensions for the rollup's key"),
						 errdetail("With \"%s\", a key (bucket and dimensions) can take more than the %d bytes of a btree index entry; a text dimension takes up to %d.",
								   spec, BTREE_MAX_KEY_BYTES,
								   (int) MAXALIGN(EK_ROLLUP_DIM_MAX_BYTES + VARHDRSZ)),
						 errhint("Use fewer dimensions.")));
		}
		def->dims = lappend(def->dims, d);
	}

	deconstruct_array(DatumGetArrayTypeP(measures), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a rollup needs at least one measure"),
				 errhint("For example ARRAY['count'].")));
	for (int i = 0; i < n; i++)
	{
		RollupMeasure *m = palloc0(sizeof(RollupMeasure));
		char	   *spec;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("measures must not contain nulls")));
		spec = TextDatumGetCString(elems[i]);
		if (strict)
			check_spec(spec, true);
		parse_measure(def, pstrdup(spec), m);
		if (m->kind == RM_AVG)
		{
			check_name(&seen, psprintf("%s_sum", m->name), spec, strict);
			check_name(&seen, psprintf("%s_count", m->name), spec, strict);
		}
		check_name(&seen, m->name, spec, strict);
		def->measures = lappend(def->measures, m);
	}
	list_free(seen);
}

/*
 * Buckets: a fixed width (at least one second; aligned on 2000-01-01 UTC,
 * as partitions are), or exactly one month or one year (calendar, UTC).
 */
void
ek_rollup_check_bucket(const Interval *b)
{
	if (b->month != 0)
	{
		if ((b->month == 1 || b->month == 12) && b->day == 0 && b->time == 0)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bucket must be a fixed interval, '1 month' or '1 year'"),
				 errhint("Use e.g. '1 minute', '1 hour', '1 day', '7 days', '1 month'.")));
	}
	if (b->day < 0 || b->time < 0 || (int64) b->day * USECS_PER_DAY + b->time < USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bucket must be at least 1 second"),
				 errhint("Use e.g. '1 minute', '1 hour', '1 day'.")));
}

/* an interval of the bucket's width in microseconds (a fixed width: days are 24 hours) */
static char *
width_usecs(const Interval *b)
{
	return psprintf("'" INT64_FORMAT " microseconds'::pg_catalog.interval",
					(int64) b->day * USECS_PER_DAY + b->time);
}

/* a timestamptz as SQL that reads the same whatever DateStyle and TimeZone are */
static char *
timestamptz_sql(TimestampTz t)
{
	return psprintf("('2000-01-01 00:00:00+00'::pg_catalog.timestamptz OPERATOR(pg_catalog.+) '"
					INT64_FORMAT " microseconds'::pg_catalog.interval)", (int64) t);
}

/*
 * The bucket of the timestamptz ts: date_bin on the origin (default
 * 2000-01-01 00:00) for a fixed width, date_trunc for a month or a year;
 * with a time zone, in its local time (so that a day is a local day, 23 or
 * 25 hours long across a DST change, as time_bucket(..., timezone) does).
 */
char *
ek_rollup_bucket_expr(const RollupDef *def, const char *ts)
{
	const Interval *b = &def->bucket;
	const char *tz = def->opts.time_zone;

	if (b->month == 1 || b->month == 12)
		return psprintf("pg_catalog.date_trunc('%s', %s, %s)", b->month == 1 ? "month" : "year",
						ts, tz ? quote_literal_cstr(tz) : "'UTC'");
	if (tz == NULL)
		return psprintf("pg_catalog.date_bin(%s, %s, %s)", width_usecs(b), ts,
						def->opts.has_origin ? timestamptz_sql(def->opts.origin) :
						"'2000-01-01 00:00:00+00'::pg_catalog.timestamptz");
	return psprintf("pg_catalog.timezone(%s, pg_catalog.date_bin(%s, pg_catalog.timezone(%s, %s), %s))",
					quote_literal_cstr(tz), width_usecs(b), quote_literal_cstr(tz), ts,
					def->opts.has_origin ?
					psprintf("pg_catalog.timezone(%s, %s)", quote_literal_cstr(tz),
							 timestamptz_sql(def->opts.origin)) :
					"'2000-01-01 00:00:00'::pg_catalog.timestamp");
}

/* The start of the bucket after the bucket that starts at bucket. */
char *
ek_rollup_next_bucket_expr(const RollupDef *def, const char *bucket)
{
	const Interval *b = &def->bucket;
	const char *tz = quote_literal_cstr(def->opts.time_zone ? def->opts.time_zone : "UTC");

	if (b->month == 1 || b->month == 12)
		return psprintf("pg_catalog.timezone(%s, pg_catalog.timezone(%s, %s) OPERATOR(pg_catalog.+) '%s'::pg_catalog.interval)",
						tz, tz, bucket, b->month == 1 ? "1 month" : "1 year");
	if (def->opts.time_zone == NULL)
		return psprintf("(%s OPERATOR(pg_catalog.+) %s)", bucket, width_usecs(b));
	return psprintf("pg_catalog.timezone(%s, pg_catalog.timezone(%s, %s) OPERATOR(pg_catalog.+) %s)",
					tz, tz, bucket, width_usecs(b));
}

/*
 * Set a definition's options (after ek_rollup_parse: the filter's columns
 * are recorded as read).  strict (create_rollup): check them.
 */
void
ek_rollup_set_options(RollupDef *def, const RollupOptions *opts, bool strict)
{
	def->opts = *opts;
	/* (copies: a definition outlives the catalog cache it may come from) */
	if (opts->filter)
		def->opts.filter = pstrdup(opts->filter);
	if (opts->time_zone)
		def->opts.time_zone = pstrdup(opts->time_zone);
	def->filter_sql = NULL;
	if (strict)
	{
		if (opts->time_zone != NULL)
		{
			/* an unknown zone is an error here ("time zone ... not recognized") */
			(void) DirectFunctionCall2(timestamptz_zone, CStringGetTextDatum(opts->time_zone),
									   TimestampTzGetDatum(0));
			if (strlen(opts->time_zone) > 200)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("time zone name is too long")));
		}
		if (opts->has_origin && def->bucket.month != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("an origin works only with buckets of a fixed width"),
					 errdetail("Monthly and yearly buckets start on the first of the month in the rollup's time zone."),
					 errhint("Leave origin out, or use a fixed bucket such as '7 days'.")));
		if (opts->has_origin && (TIMESTAMP_NOT_FINITE(opts->origin)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("origin must be finite")));
		if (opts->hll_log2m != 0 && (opts->hll_log2m < 4 || opts->hll_log2m > 17))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hll_log2m must be between 4 and 17"),
					 errdetail("It is log2 of the number of registers of each hll: 11 (the default) gives about 2%% error in 2 kB per value."),
					 errhint("Leave it NULL for the default.")));
	}
	if (opts->filter != NULL)
		def->filter_sql = ek_rollup_filter_sql(def, opts->filter, path_text);
}

/*
 * The parsed definition of a rollup's catalog row, with the given measures
 * (the row's own, or add_rollup_measures' longer list) checked as
 * create_rollup checks them when strict.
 */
void
ek_rollup_def_of_row(const RollupRow *row, Datum measures, bool strict, RollupDef *def)
{
	memset(def, 0, sizeof(*def));
	def->rollup_id = row->rollup_id;
	def->relid = row->relid;
	def->source = row->source;
	def->stream_relid = row->stream;
	def->stream_id = row->stream_id;
	def->bucket = row->bucket;
	ek_rollup_parse(def, row->dimensions, measures, strict);
	ek_rollup_set_options(def, &row->opts, false);
}
