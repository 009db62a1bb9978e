/*-------------------------------------------------------------------------
 *
 * plan_columns.c
 *	  The typed columns a tracking plan implies, for the typed event views
 *	  (eventkit.create_event_views, in the 1.4 script): which planned
 *	  properties an event has and the SQL type of each
 *	  (eventkit.plan_properties), the warehouse spelling of a name
 *	  (eventkit.warehouse_name: "Order Completed" -> order_completed), and
 *	  the casts the views apply to a property's jsonb value, which give
 *	  NULL for a value that does not cast and never raise an error
 *	  (eventkit.jsonb_to_text, _bigint, _numeric, _boolean, _timestamptz).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "catalog/plans.h"
#include "pipeline/event.h"
#include "plan_int.h"
#include "util/compat.h"

PG_FUNCTION_INFO_V1(eventkit_plan_properties);
PG_FUNCTION_INFO_V1(eventkit_warehouse_name);
PG_FUNCTION_INFO_V1(eventkit_jsonb_to_text);
PG_FUNCTION_INFO_V1(eventkit_jsonb_to_bigint);
PG_FUNCTION_INFO_V1(eventkit_jsonb_to_numeric);
PG_FUNCTION_INFO_V1(eventkit_jsonb_to_boolean);
PG_FUNCTION_INFO_V1(eventkit_jsonb_to_timestamptz);

/* ---------------------------------------------------------------------
 * Warehouse names
 * ---------------------------------------------------------------------
 */

/*
 * Is the UTF-8 character at s (of len bytes) punctuation or a symbol, not
 * a letter: Latin-1's punctuation and signs, general punctuation (dashes,
 * quotes), arrows, mathematical and other symbols, CJK punctuation.
 * Other non-ASCII characters count as letters.
 */
static bool
utf8_separator(const unsigned char *s, int len, int *clen)
{
	uint32		cp;

	*clen = 1;
	if (GetDatabaseEncoding() != PG_UTF8)
		return false;
	if ((s[0] & 0xE0) == 0xC0 && len >= 2)
	{
		cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
		*clen = 2;
	}
	else if ((s[0] & 0xF0) == 0xE0 && len >= 3)
	{
		cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
		*clen = 3;
	}
	else if ((s[0] & 0xF8) == 0xF0 && len >= 4)
	{
		*clen = 4;
		return false;
	}
	else
		return false;
	return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 ||
		(cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x2190 && cp <= 0x2BFF) ||
		(cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF00 && cp <= 0xFF0F);
}

/*
 * As Segment's warehouses name tables and columns: camelCase split, every
 * run of characters other than letters and digits one "_", ASCII letters
 * in lower case, no "_" at either end; a leading digit gets a "_" in
 * front; an empty result is "_".  Non-ASCII letters are kept as they are.
 * Clipped to NAMEDATALEN - 1 bytes (whole characters), as PostgreSQL
 * truncates identifiers: two names that agree in their first 63 bytes are
 * the same view or column, and create_event_views says so.
 */
static char *
warehouse_name(const char *name)
{
	StringInfoData out;
	int			len = strlen(name);
	bool		pending = false;

	initStringInfo(&out);
	for (int i = 0; i < len;)
	{
		unsigned char c = (unsigned char) name[i];
		int			clen = 1;

		if (c >= 0x80)
		{
			if (utf8_separator((const unsigned char *) name + i, len - i, &clen))
				pending = out.len > 0;
			else
			{
				if (pending)
					appendStringInfoChar(&out, '_');
				pending = false;
				appendBinaryStringInfo(&out, name + i, clen);
			}
			i += clen;
			continue;
		}
		if (!isalnum(c))
		{
			pending = out.len > 0;
			i++;
			continue;
		}
		/* camelCase: "orderId", "HTMLPage" (before "Page") */
		if (i > 0 && isupper(c) && out.len > 0)
		{
			unsigned char prev = (unsigned char) name[i - 1];
			unsigned char next = (unsigned char) name[i + 1];

			if (islower(prev) || isdigit(prev) ||
				(isupper(prev) && next != '\0' && islower(next)))
				pending = true;
		}
		if (pending)
			appendStringInfoChar(&out, '_');
		pending = false;
		if (out.len == 0 && isdigit(c))
			appendStringInfoChar(&out, '_');
		appendStringInfoChar(&out, tolower(c));
		i++;
	}
	if (out.len == 0)
		appendStringInfoChar(&out, '_');
	/* as PostgreSQL truncates an identifier, so that names compare as stored */
	if (out.len >= NAMEDATALEN)
		out.data[pg_mbcliplen(out.data, out.len, NAMEDATALEN - 1)] = '\0';
	return out.data;
}

/* eventkit.warehouse_name(name text) RETURNS text */
Datum
eventkit_warehouse_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(warehouse_name(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/* ---------------------------------------------------------------------
 * The SQL type of a planned property
 * ---------------------------------------------------------------------
 */

/*
 * From a property's schema: "type" (its non-null types; "format":
 * "date-time" for strings), or an "enum"/"const" of strings.  Anything
 * else (several types, a "$ref", no type) is jsonb.  json_type says what
 * was read.
 */
static const char *
property_sql_type(JsonbValue *schema, char **json_type)
{
	JsonbValue *type,
			   *format,
			   *en;
	const char *t = NULL;
	int			ntypes = 0;
	bool		has_integer = false,
				has_number = false;

	*json_type = "";
	if (schema->type != jbvBinary || !JsonContainerIsObject(schema->val.binary.data))
		return "jsonb";
	type = getKeyJsonValueFromContainer(schema->val.binary.data, "type", 4, NULL);
	format = getKeyJsonValueFromContainer(schema->val.binary.data, "format", 6, NULL);
	if (type != NULL && type->type == jbvString)
	{
		t = ek_jbv_cstring(type);
		ntypes = 1;
	}
	else if (type != NULL && type->type == jbvBinary && JsonContainerIsArray(type->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(type->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_ELEM && v.type == jbvString && !ek_jbv_key_is(&v, "null"))
			{
				t = ek_jbv_cstring(&v);
				ntypes++;
				has_integer |= strcmp(t, "integer") == 0;
				has_number |= strcmp(t, "number") == 0;
			}
		if (ntypes == 2 && has_integer && has_number)
		{
			t = "number";
			ntypes = 1;
		}
	}
	else
	{
		/* no type: an enum or const of strings is text */
		bool		strings = false;

		en = getKeyJsonValueFromContainer(schema->val.binary.data, "enum", 4, NULL);
		if (en != NULL && en->type == jbvBinary && JsonContainerIsArray(en->val.binary.data))
		{
			JsonbIterator *it = JsonbIteratorInit(en->val.binary.data);
			JsonbValue	v;
			JsonbIteratorToken tok;

			strings = JsonContainerSize(en->val.binary.data) > 0;
			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
				if (tok == WJB_ELEM && v.type != jbvString && v.type != jbvNull)
					strings = false;
			*json_type = "enum";
		}
		en = getKeyJsonValueFromContainer(schema->val.binary.data, "const", 5, NULL);
		if (en != NULL)
		{
			strings = en->type == jbvString;
			*json_type = "const";
		}
		return strings ? "text" : "jsonb";
	}
	if (ntypes != 1)
	{
		*json_type = ntypes == 0 ? "null" : "several types";
		return "jsonb";
	}
	*json_type = (char *) t;
	if (strcmp(t, "string") == 0)
	{
		if (format != NULL && format->type == jbvString && ek_jbv_key_is(format, "date-time"))
		{
			*json_type = "string (date-time)";
			return "timestamptz";
		}
		return "text";
	}
	if (strcmp(t, "integer") == 0)
		return "bigint";
	if (strcmp(t, "number") == 0)
		return "numeric";
	if (strcmp(t, "boolean") == 0)
		return "boolean";
	return "jsonb";
}

/*
 * eventkit.plan_properties(plan text, version int)
 *	RETURNS TABLE(event_type text, event text, field text, property text,
 *				  json_type text, column_type text)
 *
 * Every planned property (of "properties" and "traits") of every planned
 * event of a plan version, with the SQL type a typed view gives it.  A
 * type-wide rule (Segment's identify, group) has event NULL; an event
 * without planned properties has one row with property NULL; Segment's
 * global rule is left out, and so are superseded rule versions.
 */
Datum
eventkit_plan_properties(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		version = PG_GETARG_INT32(1);
	int32		plan_id;
	char	   *owner;
	CompiledPlan *plan;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (!ek_plans_find(name, &plan_id, &owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracking plan \"%s\" does not exist", name)));
	plan = ek_load_plan(plan_id, version);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracking plan \"%s\" has no version %d", name, version)));
	for (int e = 0; e < plan->nevents; e++)
	{
		PlannedEvent *pe = &plan->events[e];

		int			rows = 0;

		if (strcmp(pe->type, "-") == 0 || strcmp(pe->type, "*") == 0)
			continue;
		for (int s = 0; s < pe->nschemas; s++)
		{
			PlanSchema *ps = &pe->schemas[s];
			JsonbValue *props;
			JsonbIterator *it;
			JsonbValue	k,
						v;
			JsonbIteratorToken tok;

			if (ps->field == NULL || strcmp(ps->field, "context") == 0 ||
				!JB_ROOT_IS_OBJECT(ps->source))
				continue;
			props = getKeyJsonValueFromContainer(&ps->source->root, "properties", 10, NULL);
			if (props == NULL || props->type != jbvBinary ||
				!JsonContainerIsObject(props->val.binary.data))
				continue;
			it = JsonbIteratorInit(props->val.binary.data);
			while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
			{
				Datum		values[6];
				bool		nulls[6] = {0};
				char	   *json_type;
				const char *sql_type;

				if (tok != WJB_KEY)
					continue;
				CHECK_FOR_INTERRUPTS();
				(void) JsonbIteratorNext(&it, &v, true);
				sql_type = property_sql_type(&v, &json_type);
				values[0] = CStringGetTextDatum(pe->type);
				if (pe->name)
					values[1] = CStringGetTextDatum(pe->name);
				else
					nulls[1] = true;
				values[2] = CStringGetTextDatum(ps->field);
				values[3] = CStringGetTextDatum(ek_jbv_cstring(&k));
				values[4] = CStringGetTextDatum(json_type);
				values[5] = CStringGetTextDatum(sql_type);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				rows++;
			}
		}
		/* an event without planned properties: one row, property NULL */
		if (rows == 0)
		{
			Datum		values[6] = {0};
			bool		nulls[6] = {false, true, true, true, true, true};

			values[0] = CStringGetTextDatum(pe->type);
			if (pe->name)
			{
				values[1] = CStringGetTextDatum(pe->name);
				nulls[1] = false;
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Safe casts: a property's jsonb value to a column's type, NULL when it
 * does not cast.  STRICT, IMMUTABLE, PARALLEL SAFE; they never raise.
 * ---------------------------------------------------------------------
 */

/* The scalar inside a jsonb value, or false (objects and arrays). */
static bool
scalar_of(Jsonb *jb, JsonbValue *v)
{
	return JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, v);
}

/* eventkit.jsonb_to_text(value jsonb): strings as they are, numbers and booleans as written */
Datum
eventkit_jsonb_to_text(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbValue	v;

	if (!scalar_of(jb, &v))
		PG_RETURN_NULL();
	switch (v.type)
	{
		case jbvString:
			PG_RETURN_TEXT_P(cstring_to_text_with_len(v.val.string.val, v.val.string.len));
		case jbvNumeric:
			PG_RETURN_TEXT_P(cstring_to_text(DatumGetCString(DirectFunctionCall1(numeric_out,
																				 NumericGetDatum(v.val.numeric)))));
		case jbvBool:
			PG_RETURN_TEXT_P(cstring_to_text(v.val.boolean ? "true" : "false"));
		default:
			PG_RETURN_NULL();
	}
}

/*
 * Whether s is a JSON number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
 * whose exponent numeric_in takes without an error (PostgreSQL 15 has no
 * soft input errors, so the check comes first).
 */
static bool
json_number_syntax(const char *s, int len)
{
	int			i = 0;
	int			exp = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len || !isdigit((unsigned char) s[i]))
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < len && isdigit((unsigned char) s[i]))
			i++;
	if (i < len && s[i] == '.')
	{
		i++;
		if (i >= len || !isdigit((unsigned char) s[i]))
			return false;
		while (i < len && isdigit((unsigned char) s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !isdigit((unsigned char) s[i]))
			return false;
		while (i < len && isdigit((unsigned char) s[i]))
		{
			exp = exp * 10 + (s[i] - '0');
			if (exp > 1000)
				return false;
			i++;
		}
	}
	return i == len;
}

/*
 * The number in a jsonb value: a JSON number, or a string that reads as a
 * finite number (Segment's libraries send numbers as strings too).
 */
static Numeric
number_of(Jsonb *jb)
{
	JsonbValue	v;

	if (!scalar_of(jb, &v))
		return NULL;
	if (v.type == jbvNumeric)
		return v.val.numeric;
	if (v.type == jbvString && v.val.string.len > 0 && v.val.string.len < 1000 &&
		json_number_syntax(v.val.string.val, v.val.string.len))
		return DatumGetNumeric(DirectFunctionCall3(numeric_in,
												   CStringGetDatum(pnstrdup(v.val.string.val,
																			v.val.string.len)),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	return NULL;
}

/* eventkit.jsonb_to_numeric(value jsonb) */
Datum
eventkit_jsonb_to_numeric(PG_FUNCTION_ARGS)
{
	Numeric		n = number_of(PG_GETARG_JSONB_P(0));

	if (n == NULL)
		PG_RETURN_NULL();
	PG_RETURN_NUMERIC(n);
}

/* eventkit.jsonb_to_bigint(value jsonb): whole numbers in range only */
Datum
eventkit_jsonb_to_bigint(PG_FUNCTION_ARGS)
{
	Numeric		n = number_of(PG_GETARG_JSONB_P(0));
	Datum		d;

	if (n == NULL)
		PG_RETURN_NULL();
	d = NumericGetDatum(n);
	/* in range, and whole (numeric_int8 would round 1.5) */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, d,
										  DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MIN)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, d,
										  DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX)))) > 0 ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, d,
										  DirectFunctionCall2(numeric_trunc, d, Int32GetDatum(0)))))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(numeric_int8, d));
}

/* eventkit.jsonb_to_boolean(value jsonb): true, false, "true", "false" */
Datum
eventkit_jsonb_to_boolean(PG_FUNCTION_ARGS)
{
	JsonbValue	v;

	if (!scalar_of(PG_GETARG_JSONB_P(0), &v))
		PG_RETURN_NULL();
	if (v.type == jbvBool)
		PG_RETURN_BOOL(v.val.boolean);
	if (v.type == jbvString && v.val.string.len == 4 && memcmp(v.val.string.val, "true", 4) == 0)
		PG_RETURN_BOOL(true);
	if (v.type == jbvString && v.val.string.len == 5 && memcmp(v.val.string.val, "false", 5) == 0)
		PG_RETURN_BOOL(false);
	PG_RETURN_NULL();
}

/*
 * eventkit.jsonb_to_timestamptz(value jsonb): an ISO 8601 / RFC 3339
 * string, read as ingest reads event times (no zone is UTC, whatever the
 * session's TimeZone: so the cast is immutable).
 */
Datum
eventkit_jsonb_to_timestamptz(PG_FUNCTION_ARGS)
{
	JsonbValue	v;
	TimestampTz ts;

	if (!scalar_of(PG_GETARG_JSONB_P(0), &v) || v.type != jbvString ||
		!ek_parse_iso8601(v.val.string.val, v.val.string.len, &ts))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(ts);
}
