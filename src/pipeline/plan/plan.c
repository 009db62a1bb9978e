/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Tracking plans: compiling a plan spec (eventkit's own format or
 *	  Segment's tracking-plan export) into per-event JSON Schema
 *	  validators; the per-backend cache of compiled plans; and name
 *	  normalization.  Checking events against a compiled plan is in
 *	  plan_check.c, the SQL functions that create and attach plans in
 *	  plan_sql.c.
 *
 *	  Plan versions are immutable, so a compiled version never goes stale:
 *	  the cache is keyed by (plan_id, version) and is only flushed when the
 *	  plan_versions table itself is dropped or truncated (e.g. by DROP
 *	  EXTENSION).  Which version a stream uses is read with the stream's
 *	  catalog row, once per batch.  A stream whose plan or version is
 *	  missing quarantines its events (plan_missing).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "catalog/plans.h"
#include "jsonschema/jsonschema.h"
#include "pipeline/plan/plan.h"
#include "plan_int.h"
#include "util/compat.h"

#define MAX_CACHED_PLANS 32

static const char *const policy_names[] = {"allow", "tag", "omit", "quarantine", "reject"};

typedef struct PlanCacheKey
{
	int32		plan_id;
	int32		version;
} PlanCacheKey;

typedef struct PlanCacheEntry
{
	PlanCacheKey key;
	CompiledPlan *plan;
} PlanCacheEntry;

static HTAB *plan_cache = NULL;
static MemoryContext plan_cache_cxt = NULL;
static Oid	plan_versions_relid = InvalidOid;
static bool plan_callback_registered = false;

/* ---------------------------------------------------------------------
 * Name normalization
 * ---------------------------------------------------------------------
 */

/*
 * The key two spellings of one name share: words split at spaces,
 * punctuation and camelCase boundaries, lower-cased, a past-tense "ed"
 * and a final "e" dropped from each word, joined with "_".  So
 * "Order Completed", "OrderComplete", "order_completed" and
 * "order-complete" all become "order_complet".
 */
char *
ek_normalize_name(const char *name)
{
	StringInfoData out;
	StringInfoData word;
	int			len = strlen(name);

	initStringInfo(&out);
	initStringInfo(&word);
	for (int i = 0; i <= len; i++)
	{
		unsigned char c = (unsigned char) name[i];
		bool		alnum = c != '\0' && (isalnum(c) || c >= 0x80);
		bool		boundary = !alnum;

		/* camelCase: "orderComplete", "HTMLPage" (before "Page") */
		if (alnum && word.len > 0 && isupper(c))
		{
			unsigned char prev = (unsigned char) name[i - 1];
			unsigned char next = (unsigned char) name[i + 1];

			if (islower(prev) || isdigit(prev) ||
				(isupper(prev) && next != '\0' && islower(next)))
				boundary = true;
		}
		if (boundary && word.len > 0)
		{
			if (word.len > 3 && strcmp(word.data + word.len - 2, "ed") == 0)
				word.data[--word.len] = '\0';
			if (word.len > 2 && word.data[word.len - 1] == 'e')
				word.data[--word.len] = '\0';
			if (out.len > 0)
				appendStringInfoChar(&out, '_');
			appendBinaryStringInfo(&out, word.data, word.len);
			resetStringInfo(&word);
		}
		if (alnum)
			appendStringInfoChar(&word, c < 0x80 ? tolower(c) : c);
	}
	pfree(word.data);
	return out.data;
}

static int
plan_name_cmp(const void *a, const void *b)
{
	const PlanName *x = a;
	const PlanName *y = b;
	int			r = strcmp(x->key, y->key);

	return r != 0 ? r : strcmp(x->type, y->type);
}

PlannedEvent *
ek_plan_find_name(const PlanName *names, int n, const char *key, const char *type)
{
	PlanName	probe = {key, type, NULL};
	PlanName   *hit;

	if (n == 0)
		return NULL;
	hit = bsearch(&probe, names, n, sizeof(PlanName), plan_name_cmp);
	return hit ? hit->event : NULL;
}

int
ek_cstring_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* ---------------------------------------------------------------------
 * Compiling a spec
 * ---------------------------------------------------------------------
 */

static void
spec_error(const char *where, const char *msg, const char *hint)
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

static const char *
json_kind(const JsonbValue *v)
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

static PlanPolicy
parse_policy(const JsonbValue *v, const char *key, const bool *allowed)
{
	StringInfoData choices;

	initStringInfo(&choices);
	for (int p = 0; p <= POLICY_REJECT; p++)
		if (allowed[p])
			appendStringInfo(&choices, "%s%s", choices.len ? ", " : "", policy_names[p]);
	if (v->type == jbvString)
		for (int p = 0; p <= POLICY_REJECT; p++)
			if (allowed[p] && ek_jbv_key_is(v, policy_names[p]))
				return (PlanPolicy) p;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid tracking plan: \"%s\" must be one of %s", key, choices.data),
			 errdetail("It is %s%s%s.", json_kind(v),
					   v->type == jbvString ? ": " : "",
					   v->type == jbvString ? ek_jbv_cstring(v) : ""),
			 errhint("Leave \"%s\" out to use the default.", key)));
	return POLICY_ALLOW;		/* keep compiler quiet */
}

static Jsonb *
value_jsonb(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

/* Compile one schema of a planned event, with its schemaPath prefix. */
static void
add_schema(PlannedEvent *pe, JsonbValue *v, const char *field, char *path)
{
	PlanSchema *ps = &pe->schemas[pe->nschemas++];

	if (!(v->type == jbvBool || v->type == jbvObject ||
		  (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))))
		spec_error(path, psprintf("a schema must be an object or a boolean, not %s",
								  json_kind(v)),
				   "Give a JSON Schema (draft-07) object.");
	ps->schema = ek_schema_compile(value_jsonb(v));
	ps->schema_path = path;
	ps->field = field;

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

/* {"properties": schema, "traits": schema, "context": schema, "aliases": [...]} */
static PlannedEvent *
compile_native_event(CompiledPlan *plan, List **aliases, JsonbValue *k, JsonbValue *v,
					 int idx)
{
	PlannedEvent *pe = &plan->events[idx];
	char	   *name = ek_jbv_cstring(k);
	char	   *where = psprintf("#/events/%s", name);
	JsonbIterator *it;
	JsonbValue	fk,
				fv;
	JsonbIteratorToken tok;

	pe->name = name;
	pe->type = "track";
	if (k->val.string.len == 0)
		spec_error("#/events", "an event name must not be empty", "Name the event.");
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		spec_error(where, psprintf("a planned event must be an object, not %s", json_kind(v)),
				   "Describe the event as {\"properties\": <schema>, \"traits\": <schema>, \"context\": <schema>, \"aliases\": [...]}.");

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &fk, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &fv, true);
		if (ek_jbv_key_is(&fk, "properties") || ek_jbv_key_is(&fk, "traits") || ek_jbv_key_is(&fk, "context"))
		{
			char	   *field = ek_jbv_cstring(&fk);

			add_schema(pe, &fv, field, psprintf("%s/%s", where, field));
		}
		else if (ek_jbv_key_is(&fk, "aliases"))
		{
			JsonbIterator *ait;
			JsonbValue	av;

			if (fv.type != jbvBinary || !JsonContainerIsArray(fv.val.binary.data))
				spec_error(psprintf("%s/aliases", where), "aliases must be an array of names",
						   "Write \"aliases\": [\"Checkout Finished\"].");
			ait = JsonbIteratorInit(fv.val.binary.data);
			while ((tok = JsonbIteratorNext(&ait, &av, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (av.type != jbvString || av.val.string.len == 0)
					spec_error(psprintf("%s/aliases", where),
							   "aliases must be non-empty strings",
							   "Write \"aliases\": [\"Checkout Finished\"].");
				*aliases = lappend(*aliases, list_make2(ek_jbv_cstring(&av), pe));
			}
		}
		else if (!ek_jbv_key_is(&fk, "description") && !ek_jbv_key_is(&fk, "version"))
			spec_error(where, psprintf("unknown key \"%s\" in a planned event", ek_jbv_cstring(&fk)),
					   "A planned event has \"properties\", \"traits\", \"context\", \"aliases\" and \"description\".");
	}
	return pe;
}

/*
 * One rule of Segment's export: {"type": "TRACK", "key": name, "version": n,
 * "jsonSchema": schema of the whole event}.  The schemas of the event's
 * properties, traits and context are taken out of the whole-event schema so
 * that naming rules apply to them; the rest of it checks the event itself.
 */
static void
compile_segment_rule(CompiledPlan *plan, JsonbValue *rule, int idx, int *versions)
{
	PlannedEvent *pe = &plan->events[idx];
	char	   *where = psprintf("#/rules/%d", idx);
	JsonbValue *type,
			   *key,
			   *version,
			   *schema;
	static const char *const types[][2] = {
		{"TRACK", "track"}, {"IDENTIFY", "identify"}, {"GROUP", "group"},
		{"PAGE", "page"}, {"SCREEN", "screen"}, {"COMMON", "*"}
	};

	if (rule->type != jbvBinary || !JsonContainerIsObject(rule->val.binary.data))
		spec_error(where, "a rule must be an object", "Use Segment's tracking-plan export format.");
	type = getKeyJsonValueFromContainer(rule->val.binary.data, "type", 4, NULL);
	key = getKeyJsonValueFromContainer(rule->val.binary.data, "key", 3, NULL);
	version = getKeyJsonValueFromContainer(rule->val.binary.data, "version", 7, NULL);
	schema = getKeyJsonValueFromContainer(rule->val.binary.data, "jsonSchema", 10, NULL);

	pe->type = NULL;
	if (type != NULL && type->type == jbvString)
		for (int t = 0; t < lengthof(types); t++)
			if (ek_jbv_key_is(type, types[t][0]))
				pe->type = types[t][1];
	if (pe->type == NULL)
		spec_error(where, "a rule's \"type\" must be TRACK, IDENTIFY, GROUP, PAGE, SCREEN or COMMON",
				   "Use Segment's tracking-plan export format.");
	if (key != NULL && key->type == jbvString && key->val.string.len > 0)
		pe->name = ek_jbv_cstring(key);
	else if (key != NULL && key->type != jbvNull)
		spec_error(where, "a rule's \"key\" must be a non-empty string", "Name the event in \"key\".");
	if (strcmp(pe->type, "track") == 0 && pe->name == NULL)
		spec_error(where, "a TRACK rule needs a \"key\" naming the event", "Name the event in \"key\".");
	versions[idx] = 1;
	if (version != NULL && version->type == jbvNumeric)
		versions[idx] = DatumGetInt32(DirectFunctionCall1(numeric_int4,
														  NumericGetDatum(version->val.numeric)));
	if (schema == NULL)
		return;
	if (schema->type == jbvBinary && JsonContainerIsObject(schema->val.binary.data))
	{
		JsonbValue *props = getKeyJsonValueFromContainer(schema->val.binary.data,
														 "properties", 10, NULL);
		static const char *const fields[] = {"properties", "traits", "context"};
		JsonbParseState *state = NULL;
		JsonbIterator *it;
		JsonbValue	k,
					v;
		JsonbIteratorToken tok;
		JsonbValue	whole;

		/* the field schemas */
		if (props != NULL && props->type == jbvBinary &&
			JsonContainerIsObject(props->val.binary.data))
			for (int f = 0; f < lengthof(fields); f++)
			{
				JsonbValue *fs = getKeyJsonValueFromContainer(props->val.binary.data,
															  fields[f], strlen(fields[f]), NULL);

				if (fs != NULL)
					add_schema(pe, fs, fields[f],
							   psprintf("%s/jsonSchema/properties/%s", where, fields[f]));
			}

		/* the rest: the whole-event schema without those three */
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		it = JsonbIteratorInit(schema->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			(void) JsonbIteratorNext(&it, &v, true);
			if (ek_jbv_key_is(&k, "properties") && v.type == jbvBinary &&
				JsonContainerIsObject(v.val.binary.data))
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
		add_schema(pe, &whole, NULL, psprintf("%s/jsonSchema", where));
	}
	else
		add_schema(pe, schema, NULL, psprintf("%s/jsonSchema", where));
}

static void
add_plan_name(PlanName *names, int *n, const char *key, PlannedEvent *pe,
			  const char *spelling, const char **spellings, bool normalized)
{
	CHECK_FOR_INTERRUPTS();
	for (int i = 0; i < *n; i++)
		if (strcmp(names[i].key, key) == 0 && strcmp(names[i].type, pe->type) == 0)
		{
			if (names[i].event == pe)
				return;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid tracking plan: event names \"%s\" and \"%s\" are ambiguous",
							spellings[i], spelling),
					 normalized ?
					 errdetail("Both normalize to \"%s\", so an incoming variant could mean either.", key) :
					 errdetail("Both name a planned event."),
					 errhint("Rename one of them, or set \"normalize_names\": false.")));
		}
	spellings[*n] = spelling;
	names[*n].key = key;
	names[*n].type = pe->type;
	names[*n].event = pe;
	(*n)++;
}

/* Normalized property names of one event must not collide either. */
static void
check_property_names(const PlannedEvent *pe)
{
	char	  **keys = palloc(sizeof(char *) * Max(pe->nprops, 1));

	for (int i = 0; i < pe->nprops; i++)
	{
		CHECK_FOR_INTERRUPTS();
		keys[i] = ek_normalize_name(pe->props[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(keys[i], keys[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid tracking plan: property names \"%s\" and \"%s\" of event \"%s\" are ambiguous",
								pe->props[j], pe->props[i], pe->name ? pe->name : pe->type),
						 errdetail("Both normalize to \"%s\".", keys[i]),
						 errhint("Rename one of them, or set \"normalize_names\": false.")));
	}
}

/*
 * Compile a spec into plan (whose cxt is current).  Every error is an
 * ereport naming the place in the spec.
 */
void
ek_compile_plan(CompiledPlan *plan, Jsonb *spec)
{
	static const bool unplanned_event_policies[] = {true, true, false, true, true};
	static const bool unplanned_property_policies[] = {true, false, true, true, false};
	static const bool violation_policies[] = {true, true, true, true, true};
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	JsonbValue *events = NULL;
	JsonbValue *rules = NULL;
	bool		segment = false;
	List	   *aliases = NIL;
	const char **spellings;
	int		   *versions;
	int			n;

	plan->unplanned_events = POLICY_ALLOW;
	plan->unplanned_properties = POLICY_ALLOW;
	plan->violations = POLICY_QUARANTINE;
	plan->normalize = true;

	if (!JB_ROOT_IS_OBJECT(spec))
		spec_error("#", "a plan spec must be a JSON object",
				   "Write {\"events\": {\"Order Completed\": {\"properties\": {...}}}}.");
	rules = getKeyJsonValueFromContainer(&spec->root, "rules", 5, NULL);
	segment = rules != NULL;

	it = JsonbIteratorInit(&spec->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (ek_jbv_key_is(&k, "events"))
			events = getKeyJsonValueFromContainer(&spec->root, "events", 6, NULL);
		else if (ek_jbv_key_is(&k, "rules"))
			 /* read above */ ;
		else if (ek_jbv_key_is(&k, "unplanned_events"))
			plan->unplanned_events = parse_policy(&v, "unplanned_events", unplanned_event_policies);
		else if (ek_jbv_key_is(&k, "unplanned_properties"))
			plan->unplanned_properties = parse_policy(&v, "unplanned_properties", unplanned_property_policies);
		else if (ek_jbv_key_is(&k, "violations"))
			plan->violations = parse_policy(&v, "violations", violation_policies);
		else if (ek_jbv_key_is(&k, "normalize_names"))
		{
			if (v.type != jbvBool)
				spec_error("#/normalize_names", "\"normalize_names\" must be true or false",
						   "Leave it out to normalize names.");
			plan->normalize = v.val.boolean;
		}
		else if (!segment)
			spec_error("#", psprintf("unknown key \"%s\"", ek_jbv_cstring(&k)),
					   "A plan has \"events\" (or Segment's \"rules\"), \"unplanned_events\", \"unplanned_properties\", \"violations\" and \"normalize_names\".");
		/* Segment's export carries metadata (name, description, ...): not rules */
	}
	if (events != NULL && rules != NULL)
		spec_error("#", "a plan has either \"events\" or Segment's \"rules\", not both",
				   "Convert one form into the other.");

	if (events != NULL)
	{
		if (events->type != jbvBinary || !JsonContainerIsObject(events->val.binary.data))
			spec_error("#/events", "\"events\" must be an object keyed by event name",
					   "Write {\"events\": {\"Order Completed\": {...}}}.");
		n = JsonContainerSize(events->val.binary.data);
		plan->events = palloc0(sizeof(PlannedEvent) * Max(n, 1));
		it = JsonbIteratorInit(events->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			CHECK_FOR_INTERRUPTS();
			(void) JsonbIteratorNext(&it, &v, true);
			compile_native_event(plan, &aliases, &k, &v, plan->nevents++);
		}
	}
	else if (rules != NULL)
	{
		if (rules->type != jbvBinary || !JsonContainerIsArray(rules->val.binary.data))
			spec_error("#/rules", "\"rules\" must be an array",
					   "Use Segment's tracking-plan export format: {\"rules\": [{\"type\": \"TRACK\", \"key\": ..., \"jsonSchema\": ...}]}.");
		n = JsonContainerSize(rules->val.binary.data);
		plan->events = palloc0(sizeof(PlannedEvent) * Max(n, 1));
		versions = palloc0(sizeof(int) * Max(n, 1));
		it = JsonbIteratorInit(rules->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_ELEM)
			{
				int			idx = plan->nevents++;
				PlannedEvent *pe = &plan->events[idx];

				CHECK_FOR_INTERRUPTS();
				compile_segment_rule(plan, &v, idx, versions);
				if (strcmp(pe->type, "*") == 0)
					plan->common = pe;
				/* several versions of one rule: the highest is in force */
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
	}

	/* the name tables */
	n = plan->nevents + list_length(aliases);
	plan->names = palloc(sizeof(PlanName) * Max(n, 1));
	plan->normalized = palloc(sizeof(PlanName) * Max(n, 1));
	spellings = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < plan->nevents; i++)
	{
		PlannedEvent *pe = &plan->events[i];

		if (strcmp(pe->type, "-") == 0 || strcmp(pe->type, "*") == 0)
			continue;
		add_plan_name(plan->names, &plan->nnames, pe->name ? pe->name : "", pe,
					  pe->name ? pe->name : pe->type, spellings, false);
	}
	foreach_ptr(List, alias, aliases)
		add_plan_name(plan->names, &plan->nnames, linitial(alias), lsecond(alias),
					  linitial(alias), spellings, false);
	qsort(plan->names, plan->nnames, sizeof(PlanName), plan_name_cmp);

	if (plan->normalize)
	{
		for (int i = 0; i < plan->nnames; i++)
		{
			PlanName   *pn = &plan->names[i];

			if (pn->key[0] == '\0')
				continue;
			add_plan_name(plan->normalized, &plan->nnormalized, ek_normalize_name(pn->key),
						  pn->event, pn->key, spellings, true);
		}
		qsort(plan->normalized, plan->nnormalized, sizeof(PlanName), plan_name_cmp);
		for (int i = 0; i < plan->nevents; i++)
			check_property_names(&plan->events[i]);
	}
}

/* ---------------------------------------------------------------------
 * The cache of compiled plans
 * ---------------------------------------------------------------------
 */

static void
plan_cache_reset(void)
{
	if (plan_cache_cxt != NULL)
		MemoryContextReset(plan_cache_cxt);
	plan_cache = NULL;
}

static void
plan_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == plan_versions_relid)
		plan_cache_reset();
}

CompiledPlan *
ek_load_plan(int32 plan_id, int32 version)
{
	PlanCacheKey key = {plan_id, version};
	PlanCacheEntry *entry;
	bool		found;
	Jsonb	   *spec;
	char	   *name;
	MemoryContext caller = CurrentMemoryContext;
	CompiledPlan *plan;
	MemoryContext cxt;

	if (plan_cache_cxt == NULL)
		plan_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "eventkit plans",
											   ALLOCSET_DEFAULT_SIZES);
	if (!plan_callback_registered)
	{
		CacheRegisterRelcacheCallback(plan_relcache_callback, (Datum) 0);
		plan_callback_registered = true;
	}
	plan_versions_relid = ek_plans_versions_relid();
	if (plan_cache != NULL)
	{
		entry = hash_search(plan_cache, &key, HASH_FIND, NULL);
		if (entry != NULL)
			return entry->plan;
		if (hash_get_num_entries(plan_cache) >= MAX_CACHED_PLANS)
			plan_cache_reset();
	}

	spec = ek_plans_read_version(plan_id, version, &name, caller);
	if (spec == NULL)
		return NULL;

	cxt = AllocSetContextCreate(plan_cache_cxt, "eventkit plan", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	plan = palloc0(sizeof(CompiledPlan));
	plan->plan_id = plan_id;
	plan->version = version;
	plan->plan_name = pstrdup(name);
	plan->cxt = cxt;
	ek_compile_plan(plan, spec);
	MemoryContextSwitchTo(caller);

	if (plan_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(PlanCacheKey);
		ctl.entrysize = sizeof(PlanCacheEntry);
		ctl.hcxt = plan_cache_cxt;
		plan_cache = hash_create("eventkit plan cache", MAX_CACHED_PLANS, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(plan_cache, &key, HASH_ENTER, &found);
	entry->plan = plan;
	return plan;
}

/*
 * The compiled plan in force for a stream's batch, or NULL when the stream
 * has none.  A stream attached to a plan or version that does not exist
 * (say, after a restore that lost eventkit.plan_versions) is never left
 * unchecked: it gets a plan that quarantines every event (plan_missing),
 * and eventkit.health_plans reports it.  SPI connected.
 */
CompiledPlan *
ek_plan_for_stream(const StreamInfo *stream)
{
	CompiledPlan *plan = NULL;

	if (stream->plan_id == 0)
		return NULL;
	if (stream->plan_version > 0)
		plan = ek_load_plan(stream->plan_id, stream->plan_version);
	if (plan == NULL)
	{
		plan = palloc0(sizeof(CompiledPlan));
		plan->plan_id = stream->plan_id;
		plan->version = stream->plan_version;
		plan->missing = stream->plan_version > 0 ?
			psprintf("version %d of the stream's tracking plan (id %d) is missing",
					 stream->plan_version, stream->plan_id) :
			psprintf("the stream's tracking plan (id %d) has no version",
					 stream->plan_id);
	}
	return plan;
}
