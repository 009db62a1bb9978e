/*-------------------------------------------------------------------------
 *
 * plan_schema.c
 *	  What compiling every plan format shares (plan.c for eventkit's own,
 *	  plan_formats.c for Segment's): a planned event's schema compiled with
 *	  its place in the spec (draft, strictness, what a lenient compile
 *	  ignored, the planned property names), spec errors, and small jsonb
 *	  helpers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "jsonschema/jsonschema.h"
#include "plan_int.h"
#include "util/compat.h"

int
ek_cstring_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

void
ek_plan_spec_error(const char *where, const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid tracking plan: %s", msg),
			 errdetail("At %s.", where),
			 errhint("%s", hint)));
}

bool
ek_jbv_key_is(const JsonbValue *k, const char *s)
{
	return k->val.string.len == strlen(s) && memcmp(k->val.string.val, s, k->val.string.len) == 0;
}

char *
ek_jbv_cstring(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

const char *
ek_json_kind(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvNull:
			return "null";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a value";
	}
}

static Jsonb *
value_jsonb(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

/*
 * Compile one schema of a planned event, with its schemaPath prefix (the
 * schema's place in the spec).  draft: as for EkSchemaOptions (0: the
 * schema's own "$schema").  In a lenient plan, what the compiler ignored
 * is added to plan->ignored, located in the spec.
 */
void
ek_plan_add_schema(CompiledPlan *plan, PlannedEvent *pe, JsonbValue *v,
				   const char *field, char *path, int draft)
{
	static const char *const segment_annotations[] = {"labels", NULL};
	PlanSchema *ps = &pe->schemas[pe->nschemas++];
	EkSchemaOptions opts = {0};

	if (!(v->type == jbvBool || v->type == jbvObject ||
		  (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))))
		ek_plan_spec_error(path, psprintf("a schema must be an object or a boolean, not %s",
										  ek_json_kind(v)),
						   "Give a JSON Schema (draft-07) object.");
	opts.draft = draft;
	opts.lenient = plan->lenient;
	opts.location = path;
	if (plan->segment)
		opts.annotations = segment_annotations;
	ps->source = value_jsonb(v);
	ps->schema = ek_schema_compile_opts(ps->source, &opts);
	ps->schema_path = path;
	ps->field = field;
	foreach_ptr(char, where, opts.ignored)
		plan->ignored = lappend(plan->ignored, psprintf("%s%s", path, where + 1));

	/* the planned property names, for naming rules and unplanned properties */
	if (field != NULL && strcmp(field, "properties") == 0 && v->type == jbvBinary)
	{
		JsonbValue *props = getKeyJsonValueFromContainer(v->val.binary.data,
														 "properties", 10, NULL);

		if (props != NULL && props->type == jbvBinary &&
			JsonContainerIsObject(props->val.binary.data))
		{
			JsonbIterator *it = JsonbIteratorInit(props->val.binary.data);
			JsonbValue	k;
			JsonbIteratorToken tok;
			int			n = JsonContainerSize(props->val.binary.data);

			pe->props = palloc(sizeof(char *) * Max(n, 1));
			while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
				if (tok == WJB_KEY)
					pe->props[pe->nprops++] = ek_jbv_cstring(&k);
			qsort(pe->props, pe->nprops, sizeof(char *), ek_cstring_cmp);
			pe->props_listed = true;
		}
	}
}

