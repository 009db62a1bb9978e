/*-------------------------------------------------------------------------
 *
 * plan_formats.c
 *	  Segment's tracking-plan formats, compiled into the same planned
 *	  events as eventkit's own spec (plan.c):
 *	  - the tracking-plan export, {"rules": [{"type": "TRACK", "key": name,
 *	    "version": n, "jsonSchema": <schema of the whole event>}, ...]};
 *	  - the Config API's tracking plan, {"rules": {"global": <schema>,
 *	    "events": [{"name", "version", "description", "rules": <schema>}],
 *	    "identify": <schema>, "group": <schema>, "identify_traits": [],
 *	    "group_traits": []}, "name", "display_name", ...}, as it is read
 *	    (or wrapped in {"tracking_plan": ...}, as it is written).
 *	  Both give the schema of a whole event; its "properties", "traits" and
 *	  "context" are split out so that naming rules apply to them.  Every
 *	  schemaPath stays a place in the user's own document.  Segment's
 *	  "labels" are annotations; a "$schema" of the whole event (draft-04
 *	  included) holds for the parts split out of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "plan_int.h"
#include "util/compat.h"

static bool
is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static bool
is_array(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data);
}

static JsonbValue *
get_key(const JsonbValue *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj->val.binary.data, key, strlen(key), NULL);
}

/*
 * The schema of a whole event, at where in the spec.  Its "properties",
 * "traits" and "context" become the event's field schemas; the rest of it
 * (without those three) checks the event itself.
 */
static void
event_schema(CompiledPlan *plan, PlannedEvent *pe, JsonbValue *schema, const char *where)
{
	static const char *const fields[] = {"properties", "traits", "context"};
	JsonbValue *props;
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	JsonbValue	whole;
	int			draft;

	if (!is_object(schema))
	{
		ek_plan_add_schema(plan, pe, schema, NULL, pstrdup(where), 0);
		return;
	}
	draft = ek_schema_declared_draft(JsonbValueToJsonb(schema));
	if (draft < 0)
		draft = 0;				/* the whole schema's compile says what is wrong */

	/* the field schemas */
	props = get_key(schema, "properties");
	if (props != NULL && is_object(props))
		for (int f = 0; f < lengthof(fields); f++)
		{
			JsonbValue *fs = get_key(props, fields[f]);

			if (fs != NULL)
				ek_plan_add_schema(plan, pe, fs, fields[f],
								   psprintf("%s/properties/%s", where, fields[f]), draft);
		}

	/* the rest: the whole-event schema without those three */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(schema->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (ek_jbv_key_is(&k, "properties") && is_object(&v))
		{
			JsonbIterator *pit = JsonbIteratorInit(v.val.binary.data);
			JsonbValue	pk,
						pv;

			pushJsonbValue(&state, WJB_KEY, &k);
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			while ((tok = JsonbIteratorNext(&pit, &pk, true)) != WJB_DONE)
			{
				if (tok != WJB_KEY)
					continue;
				(void) JsonbIteratorNext(&pit, &pv, true);
				if (ek_jbv_key_is(&pk, "properties") || ek_jbv_key_is(&pk, "traits") ||
					ek_jbv_key_is(&pk, "context"))
					continue;
				pushJsonbValue(&state, WJB_KEY, &pk);
				pushJsonbValue(&state, WJB_VALUE, &pv);
			}
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
		else
		{
			pushJsonbValue(&state, WJB_KEY, &k);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
	}
	whole = *pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	ek_plan_add_schema(plan, pe, &whole, NULL, pstrdup(where), draft);
}

/* Several versions of one rule: the highest is in force. */
static void
keep_highest_version(CompiledPlan *plan, int idx, int *versions)
{
	PlannedEvent *pe = &plan->events[idx];

	if (strcmp(pe->type, "*") == 0)
		plan->common = pe;
	for (int j = 0; j < idx; j++)
	{
		PlannedEvent *other = &plan->events[j];

		if (other->type != NULL && strcmp(other->type, pe->type) == 0 &&
			((other->name == NULL && pe->name == NULL) ||
			 (other->name && pe->name && strcmp(other->name, pe->name) == 0)))
		{
			if (versions[j] > versions[idx])
				pe->type = "-";
			else
				other->type = "-";
		}
	}
}

static int
rule_version(const JsonbValue *version, const char *where)
{
	bool		err = false;
	int32		r = 0;

	if (version == NULL || version->type == jbvNull)
		return 1;
	if (version->type == jbvNumeric)
		r = numeric_int4_opt_error(version->val.numeric, &err);
	if (version->type != jbvNumeric || err || r < 1 ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(version->val.numeric),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(r)))))
		ek_plan_spec_error(psprintf("%s/version", where),
						   "a rule's \"version\" must be a positive integer",
						   "Segment numbers the versions of an event's rules 1, 2, ...");
	return r;
}

/*
 * One rule of Segment's tracking-plan export: {"type": "TRACK", "key": name,
 * "version": n, "jsonSchema": schema of the whole event}.
 */
static void
export_rule(CompiledPlan *plan, JsonbValue *rule, int idx, int *versions, const char *at)
{
	PlannedEvent *pe = &plan->events[idx];
	char	   *where = psprintf("%s/%d", at, idx);
	JsonbValue *type,
			   *key,
			   *schema;
	static const char *const types[][2] = {
		{"TRACK", "track"}, {"IDENTIFY", "identify"}, {"GROUP", "group"},
		{"PAGE", "page"}, {"SCREEN", "screen"}, {"COMMON", "*"}
	};

	if (!is_object(rule))
		ek_plan_spec_error(where, "a rule must be an object", "Use Segment's tracking-plan export format.");
	type = get_key(rule, "type");
	key = get_key(rule, "key");
	schema = get_key(rule, "jsonSchema");

	pe->type = NULL;
	if (type != NULL && type->type == jbvString)
		for (int t = 0; t < lengthof(types); t++)
			if (ek_jbv_key_is(type, types[t][0]))
				pe->type = types[t][1];
	if (pe->type == NULL)
		ek_plan_spec_error(where, "a rule's \"type\" must be TRACK, IDENTIFY, GROUP, PAGE, SCREEN or COMMON",
						   "Use Segment's tracking-plan export format.");
	if (key != NULL && key->type == jbvString && key->val.string.len > 0)
		pe->name = ek_jbv_cstring(key);
	else if (key != NULL && key->type != jbvNull)
		ek_plan_spec_error(where, "a rule's \"key\" must be a non-empty string", "Name the event in \"key\".");
	if (strcmp(pe->type, "track") == 0 && pe->name == NULL)
		ek_plan_spec_error(where, "a TRACK rule needs a \"key\" naming the event", "Name the event in \"key\".");
	versions[idx] = rule_version(get_key(rule, "version"), where);
	if (schema != NULL)
		event_schema(plan, pe, schema, psprintf("%s/jsonSchema", where));
}

/* {"rules": [...]}: Segment's tracking-plan export, the rules at at. */
void
ek_plan_compile_export(CompiledPlan *plan, JsonbValue *rules, const char *at)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = JsonContainerSize(rules->val.binary.data);
	int		   *versions = palloc0(sizeof(int) * Max(n, 1));

	plan->events = palloc0(sizeof(PlannedEvent) * Max(n, 1));
	it = JsonbIteratorInit(rules->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
		{
			int			idx = plan->nevents++;

			CHECK_FOR_INTERRUPTS();
			export_rule(plan, &v, idx, versions, at);
			keep_highest_version(plan, idx, versions);
		}
}

/* "global", "identify" or "group" of the Config API: a type-wide rule. */
static void
config_type_rule(CompiledPlan *plan, JsonbValue *schema, const char *type,
				 const char *where, int *versions)
{
	int			idx;
	PlannedEvent *pe;

	if (schema->type == jbvNull)
		return;
	if (!is_object(schema))
		ek_plan_spec_error(where, psprintf("a rule must be a JSON Schema object, not %s",
										   ek_json_kind(schema)),
						   "Give the schema of the whole event, as Segment exports it: {\"type\": \"object\", \"properties\": {\"properties\": {...}, \"traits\": {...}, \"context\": {...}}}.");
	idx = plan->nevents++;
	pe = &plan->events[idx];
	pe->type = type;
	versions[idx] = 1;
	event_schema(plan, pe, schema, where);
	keep_highest_version(plan, idx, versions);
}

/* One entry of the Config API's "events": {"name", "version", "rules", ...}. */
static void
config_event(CompiledPlan *plan, JsonbValue *ev, int i, const char *at, int *versions)
{
	char	   *where = psprintf("%s/events/%d", at, i);
	JsonbValue *name,
			   *rules;
	int			idx;
	PlannedEvent *pe;

	if (!is_object(ev))
		ek_plan_spec_error(where, psprintf("an event must be an object, not %s", ek_json_kind(ev)),
						   "Write {\"name\": \"Order Completed\", \"version\": 1, \"rules\": <JSON Schema of the event>}.");
	name = get_key(ev, "name");
	if (name == NULL || name->type != jbvString || name->val.string.len == 0)
		ek_plan_spec_error(where, "an event needs a non-empty string \"name\"",
						   "Write {\"name\": \"Order Completed\", \"version\": 1, \"rules\": <JSON Schema of the event>}.");
	rules = get_key(ev, "rules");
	if (rules != NULL && rules->type != jbvNull && !is_object(rules))
		ek_plan_spec_error(psprintf("%s/rules", where),
						   psprintf("an event's \"rules\" must be a JSON Schema object, not %s",
									ek_json_kind(rules)),
						   "Give the schema of the whole event, as Segment exports it: {\"type\": \"object\", \"properties\": {\"properties\": {...}}}.");
	idx = plan->nevents++;
	pe = &plan->events[idx];
	pe->type = "track";
	pe->name = ek_jbv_cstring(name);
	versions[idx] = rule_version(get_key(ev, "version"), where);
	if (rules != NULL && rules->type != jbvNull)
		event_schema(plan, pe, rules, psprintf("%s/rules", where));
	keep_highest_version(plan, idx, versions);
	/* other keys ("description", "labels", ...) describe the event */
}

/*
 * {"rules": {"global", "events", "identify", "group", ...}}: the Config
 * API's tracking plan, the rules object at at.
 */
void
ek_plan_compile_config_api(CompiledPlan *plan, JsonbValue *rules, const char *at)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	JsonbValue *events = get_key(rules, "events");
	int			n = 3 + (events != NULL && is_array(events) ?
						 JsonContainerSize(events->val.binary.data) : 0);
	int		   *versions = palloc0(sizeof(int) * n);

	plan->events = palloc0(sizeof(PlannedEvent) * n);
	it = JsonbIteratorInit(rules->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		char	   *where;

		if (tok != WJB_KEY)
			continue;
		CHECK_FOR_INTERRUPTS();
		(void) JsonbIteratorNext(&it, &v, true);
		key = ek_jbv_cstring(&k);
		where = psprintf("%s/%s", at, key);
		if (strcmp(key, "global") == 0)
			config_type_rule(plan, &v, "*", where, versions);
		else if (strcmp(key, "identify") == 0)
			config_type_rule(plan, &v, "identify", where, versions);
		else if (strcmp(key, "group") == 0)
			config_type_rule(plan, &v, "group", where, versions);
		else if (strcmp(key, "events") == 0)
		{
			JsonbIterator *eit;
			JsonbValue	ev;
			int			i = 0;

			if (v.type == jbvNull)
				continue;
			if (!is_array(&v))
				ek_plan_spec_error(where, psprintf("\"events\" must be an array, not %s", ek_json_kind(&v)),
								   "Write \"events\": [{\"name\": \"Order Completed\", \"version\": 1, \"rules\": {...}}].");
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((tok = JsonbIteratorNext(&eit, &ev, true)) != WJB_DONE)
				if (tok == WJB_ELEM)
				{
					CHECK_FOR_INTERRUPTS();
					config_event(plan, &ev, i++, at, versions);
				}
		}
		else if ((strcmp(key, "identify_traits") == 0 || strcmp(key, "group_traits") == 0) &&
				 (v.type == jbvNull || (is_array(&v) && JsonContainerSize(v.val.binary.data) == 0)))
			 /* Segment exports them empty: the traits are in "identify"/"group" */ ;
		else if (plan->lenient)
			plan->ignored = lappend(plan->ignored, where);
		else
			ek_plan_spec_error(where, psprintf("unknown or unsupported key \"%s\" in the tracking plan's rules", key),
							   "The rules of Segment's Config API have \"global\", \"events\", \"identify\" and \"group\" (and empty \"identify_traits\", \"group_traits\"); create_plan(..., strict => false) ignores the others with a warning.");
	}
}
