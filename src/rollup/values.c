/*-------------------------------------------------------------------------
 *
 * values.c
 *	  The rules for bad values in rollups (rollup.h), in one place for the
 *	  fold (fold.c, in C) and the realtime views (definition.c, which
 *	  call the SQL functions below): which numbers a measure takes
 *	  (ek_rollup_number_reason: a number that is NaN or outside the
 *	  measure's range is skipped, with its reason) and how a long text
 *	  dimension value is bounded (ek_rollup_bound_text), and the names of the
 *	  reasons, the keys of eventkit.rollups.skipped_values (and that jsonb
 *	  made of counts by reason: ek_rollup_skips_jsonb).
 *
 *	  A numeric measure's value at a JSON path is read by the fold in C,
 *	  inside the stored jsonb, with the semantics of the #> operator
 *	  (ek_rollup_json_path_value; the views use #> itself).
 *
 *	  eventkit.rollup_number(value, measure), rollup_skipped(value, measure)
 *	  (jsonb: the value at a measure's JSON path; numeric: a column) and
 *	  rollup_dimension(text) are what the views call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/detoast.h"
#include "common/string.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "rollup/values.h"

const char *const ek_rollup_skip_reason_names[RSK_NREASONS] = {
	"not_a_number", "out_of_range", "dimension_truncated"
};

/* the bounds of the ranges, made once per backend */
static Numeric zero_num;
static Numeric sum_max;
static Numeric sum_min;
static Numeric pct_max;
static Numeric pct_min;
static Numeric neg_pct_max;
static Numeric neg_pct_min;

static Numeric
make_numeric(const char *str)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(str),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

static int
num_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/*
 * Is num in numeric's short format?  (numeric.c's NUMERIC_SHORT: the flag
 * bits 10 in the first 16 bits after the varlena header; an on-disk format,
 * stable across versions.)  Its weight is at most 63 base-10000 digits, so
 * |num| < 1e256: within RR_SUM's range, without the two comparisons (the
 * sums of ingest's deltas check every value).
 */
static inline bool
numeric_is_short(Numeric num)
{
	uint16		header;

	memcpy(&header, VARDATA_ANY(num), sizeof(header));
	return (header & 0xC000) == 0x8000;
}

/*
 * The reason a number is skipped by a measure whose numbers must fit in
 * range, or -1 when it is kept.
 */
int
ek_rollup_number_reason(Numeric num, RollupRange range)
{
	if (range == RR_ANY)
		return -1;
	if (zero_num == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		zero_num = make_numeric("0");
		sum_max = make_numeric(EK_ROLLUP_SUM_LIMIT);
		sum_min = make_numeric("-" EK_ROLLUP_SUM_LIMIT);
		pct_max = make_numeric(EK_ROLLUP_PERCENTILE_MAX);
		pct_min = make_numeric(EK_ROLLUP_PERCENTILE_MIN);
		neg_pct_max = make_numeric("-" EK_ROLLUP_PERCENTILE_MAX);
		neg_pct_min = make_numeric("-" EK_ROLLUP_PERCENTILE_MIN);
		MemoryContextSwitchTo(old);
	}
	if (numeric_is_nan(num))
		return RSK_NOT_A_NUMBER;
	if (numeric_is_inf(num))
		return RSK_OUT_OF_RANGE;
	switch (range)
	{
		case RR_ANY:
		case RR_FINITE:
			return -1;
		case RR_SUM:
			if (numeric_is_short(num))
				return -1;
			return num_cmp(num, sum_max) < 0 && num_cmp(num, sum_min) > 0 ? -1 : RSK_OUT_OF_RANGE;
		case RR_PERCENTILE:
			if (num_cmp(num, pct_min) >= 0)
				return num_cmp(num, pct_max) <= 0 ? -1 : RSK_OUT_OF_RANGE;
			if (num_cmp(num, neg_pct_min) <= 0)
				return num_cmp(num, neg_pct_max) >= 0 ? -1 : RSK_OUT_OF_RANGE;
			return num_cmp(num, zero_num) == 0 ? -1 : RSK_OUT_OF_RANGE;
	}
	return -1;
}

/*
 * Values skipped, by reason, as jsonb {"reason": n, ...} (the form of
 * eventkit.rollups.skipped_values); NULL (*isnull) when there are none.
 */
Datum
ek_rollup_skips_jsonb(const RollupSkips *skips, bool *isnull)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int r = 0; r < RSK_NREASONS; r++)
		if (skips->n[r] > 0)
			appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, buf.len > 0 ? ", " : "{",
							 ek_rollup_skip_reason_names[r], skips->n[r]);
	*isnull = buf.len == 0;
	if (*isnull)
		return (Datum) 0;
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/*
 * A text value, bounded: itself when it has at most EK_ROLLUP_DIM_MAX_BYTES
 * bytes; else (*truncated) its first EK_ROLLUP_DIM_PREFIX_CHARS characters
 * (as left() counts them), EK_ROLLUP_DIM_MARKER, the first 32 hex digits of
 * the SHA-256 of its bytes (as sha256() computes it) and "]".  At most
 * EK_ROLLUP_DIM_MAX_BYTES bytes, so a bounded value is its own bound.
 */
Datum
ek_rollup_bound_text(Datum value, bool *truncated)
{
	text	   *t;
	const char *p;
	int			len;
	bytea	   *hash;
	char		hex[33];
	StringInfoData buf;

	*truncated = false;
	if (toast_raw_datum_size(value) - VARHDRSZ <= EK_ROLLUP_DIM_MAX_BYTES)
		return value;
	t = DatumGetTextPP(value);
	p = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	hash = DatumGetByteaPP(DirectFunctionCall1(sha256_bytea, PointerGetDatum(t)));
	hex_encode(VARDATA_ANY(hash), 16, hex);
	hex[32] = '\0';
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, p, pg_mbcharcliplen(p, len, EK_ROLLUP_DIM_PREFIX_CHARS));
	appendStringInfo(&buf, "%s%s]", EK_ROLLUP_DIM_MARKER, hex);
	*truncated = true;
	return PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
}

/* ---------------------------------------------------------------------
 * The same, for the realtime views (definition.c)
 * ---------------------------------------------------------------------
 */

/*
 * The range of the measure named by argument 1 (sum, avg, min, max,
 * percentile), kept in fn_extra when it is a constant, as in the views.
 */
static RollupRange
range_arg(FunctionCallInfo fcinfo)
{
	char	   *measure;
	RollupRange range;

	if (fcinfo->flinfo->fn_extra != NULL)
		return *(RollupRange *) fcinfo->flinfo->fn_extra;
	measure = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(measure, "sum") == 0 || strcmp(measure, "avg") == 0)
		range = RR_SUM;
	else if (strcmp(measure, "min") == 0 || strcmp(measure, "max") == 0)
		range = RR_FINITE;
	else if (strcmp(measure, "percentile") == 0)
		range = RR_PERCENTILE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a numeric rollup measure", measure),
				 errhint("Use sum, avg, min, max or percentile.")));
	if (get_fn_expr_arg_stable(fcinfo->flinfo, 1))
	{
		fcinfo->flinfo->fn_extra = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													  sizeof(RollupRange));
		*(RollupRange *) fcinfo->flinfo->fn_extra = range;
	}
	return range;
}

/* a jsonb scalar number, or NULL */
static Numeric
jsonb_number(Jsonb *jb)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, &v) && v.type == jbvNumeric)
		return v.val.numeric;
	return NULL;
}

/*
 * eventkit.rollup_number(value jsonb, measure text) RETURNS numeric: the
 * number a measure takes from a JSON value (#> of its path), or NULL when
 * it has none (absent, JSON null) or skips it (not a number, out of range).
 */
PG_FUNCTION_INFO_V1(eventkit_rollup_number_jsonb);

Datum
eventkit_rollup_number_jsonb(PG_FUNCTION_ARGS)
{
	Numeric		num = jsonb_number(PG_GETARG_JSONB_P(0));

	if (num == NULL || ek_rollup_number_reason(num, range_arg(fcinfo)) >= 0)
		PG_RETURN_NULL();
	/* (a copy, as the jsonb to numeric cast makes: num points into the jsonb) */
	PG_RETURN_NUMERIC(DatumGetNumericCopy(NumericGetDatum(num)));
}

/* eventkit.rollup_number(value numeric, measure text): the same for a column */
PG_FUNCTION_INFO_V1(eventkit_rollup_number_numeric);

Datum
eventkit_rollup_number_numeric(PG_FUNCTION_ARGS)
{
	Numeric		num = PG_GETARG_NUMERIC(0);

	if (ek_rollup_number_reason(num, range_arg(fcinfo)) >= 0)
		PG_RETURN_NULL();
	PG_RETURN_NUMERIC(num);
}

/*
 * eventkit.rollup_skipped(value jsonb, measure text) RETURNS boolean: does
 * the measure skip the value (present, but not a number or out of range)?
 */
PG_FUNCTION_INFO_V1(eventkit_rollup_skipped_jsonb);

Datum
eventkit_rollup_skipped_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbValue	v;

	if (!JB_ROOT_IS_SCALAR(jb) || !JsonbExtractScalar(&jb->root, &v))
		PG_RETURN_BOOL(true);	/* an array or an object */
	if (v.type == jbvNull)
		PG_RETURN_BOOL(false);	/* no value */
	if (v.type != jbvNumeric)
		PG_RETURN_BOOL(true);	/* a string or a boolean */
	PG_RETURN_BOOL(ek_rollup_number_reason(v.val.numeric, range_arg(fcinfo)) >= 0);
}

/* eventkit.rollup_skipped(value numeric, measure text): the same for a column */
PG_FUNCTION_INFO_V1(eventkit_rollup_skipped_numeric);

Datum
eventkit_rollup_skipped_numeric(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ek_rollup_number_reason(PG_GETARG_NUMERIC(0), range_arg(fcinfo)) >= 0);
}

/*
 * eventkit.rollup_dimension(value text) RETURNS text: a text dimension
 * value as the rollup's key holds it (bounded: rollup.h).
 */
PG_FUNCTION_INFO_V1(eventkit_rollup_dimension);

Datum
eventkit_rollup_dimension(PG_FUNCTION_ARGS)
{
	bool		truncated;

	PG_RETURN_DATUM(ek_rollup_bound_text(PG_GETARG_DATUM(0), &truncated));
}

/*
 * A measure's JSON path (its keys, as definition.c parsed them) as
 * ek_rollup_json_path_value reads it; *n its length.
 */
RollupPathKey *
ek_rollup_path_keys(List *keys, int *n)
{
	RollupPathKey *path = palloc0(Max(list_length(keys), 1) * sizeof(RollupPathKey));
	ListCell   *lc;

	*n = list_length(keys);
	foreach(lc, keys)
	{
		RollupPathKey *k = &path[foreach_current_index(lc)];
		char	   *endptr;

		k->key = lfirst(lc);
		k->len = strlen(k->key);
		errno = 0;
		k->index = strtoint(k->key, &endptr, 10);
		k->is_index = !(endptr == k->key || *endptr != '\0' || errno != 0);
	}
	return path;
}

/*
 * Follow a JSON path in a jsonb value as jsonb_get_element() (the #>
 * operator) does: object keys, array subscripts (negative from the end), a
 * scalar has no members.  False when there is nothing there.
 */
bool
ek_rollup_json_path_value(Jsonb *jb, const RollupPathKey *path, int npath, JsonbValue *out)
{
	JsonbContainer *container = &jb->root;
	JsonbValue *jbvp = NULL;
	bool		have_object = JB_ROOT_IS_OBJECT(jb);
	bool		have_array = JB_ROOT_IS_ARRAY(jb) && !JB_ROOT_IS_SCALAR(jb);

	for (int i = 0; i < npath; i++)
	{
		if (have_object)
			jbvp = getKeyJsonValueFromContainer(container, path[i].key, path[i].len, out);
		else if (have_array)
		{
			uint32		index;

			if (!path[i].is_index)
				return false;
			if (path[i].index >= 0)
				index = (uint32) path[i].index;
			else
			{
				uint32		nelements = JsonContainerSize(container);

				if (path[i].index == INT_MIN || (uint32) -path[i].index > nelements)
					return false;
				index = nelements + path[i].index;
			}
			jbvp = getIthJsonbValueFromContainer(container, index);
		}
		else
			return false;		/* a scalar has no members */

		if (jbvp == NULL)
			return false;
		if (i == npath - 1)
			break;
		if (jbvp->type == jbvBinary)
		{
			container = jbvp->val.binary.data;
			have_object = JsonContainerIsObject(container);
			have_array = JsonContainerIsArray(container);
		}
		else
		{
			have_object = false;
			have_array = false;
		}
	}
	if (jbvp == NULL)
		return false;
	if (jbvp != out)
		*out = *jbvp;
	return true;
}
