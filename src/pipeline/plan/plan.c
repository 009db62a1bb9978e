/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Tracking plans: compiling a plan spec into per-event JSON Schema
 *	  validators (eventkit's own format here, Segment's tracking-plan
 *	  export and Config API plan in plan_formats.c, what they share in
 *	  plan_schema.c); the per-backend cache of compiled plans; and name
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
#include "util/relcache.h"

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

/* ---------------------------------------------------------------------
 * Compiling a spec
 * ---------------------------------------------------------------------
 */

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
			 errdetail("It is %s%s%s.", ek_json_kind(v),
					   v->type == jbvString ? ": " : "",
					   v->type == jbvString ? ek_jbv_cstring(v) : ""),
			 errhint("Leave \"%s\" out to use the default.", key)));
	return POLICY_ALLOW;		/* keep compiler quiet */
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
		ek_plan_spec_error("#/events", "an event name must not be empty", "Name the event.");
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ek_plan_spec_error(where, psprintf("a planned event must be an object, not %s", ek_json_kind(v)),
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

			ek_plan_add_schema(plan, pe, &fv, field, psprintf("%s/%s", where, field), 0);
		}
		else if (ek_jbv_key_is(&fk, "aliases"))
		{
			JsonbIterator *ait;
			JsonbValue	av;

			if (fv.type != jbvBinary || !JsonContainerIsArray(fv.val.binary.data))
				ek_plan_spec_error(psprintf("%s/aliases", where), "aliases must be an array of names",
						   "Write \"aliases\": [\"Checkout Finished\"].");
			ait = JsonbIteratorInit(fv.val.binary.data);
			while ((tok = JsonbIteratorNext(&ait, &av, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (av.type != jbvString || av.val.string.len == 0)
					ek_plan_spec_error(psprintf("%s/aliases", where),
							   "aliases must be non-empty strings",
							   "Write \"aliases\": [\"Checkout Finished\"].");
				*aliases = lappend(*aliases, list_make2(ek_jbv_cstring(&av), pe));
			}
		}
		else if (!ek_jbv_key_is(&fk, "description") && !ek_jbv_key_is(&fk, "version"))
			ek_plan_spec_error(where, psprintf("unknown key \"%s\" in a planned event", ek_jbv_cstring(&fk)),
					   "A planned event has \"properties\", \"traits\", \"context\", \"aliases\" and \"description\".");
	}
	return pe;
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
/*
 * The keys of a spec's object at where (the spec, or the object wrapped in
 * "tracking_plan"): the policies; "events", "rules" and "tracking_plan" are
 * read by the caller.  Other keys are an error unless metadata_ok (Segment's
 * exports carry a name, a description, times, ...).
 */
static void
read_plan_keys(CompiledPlan *plan, JsonbContainer *obj, const char *where, bool metadata_ok)
{
	static const bool unplanned_event_policies[] = {true, true, false, true, true};
	static const bool unplanned_property_policies[] = {true, false, true, true, false};
	static const bool violation_policies[] = {true, true, true, true, true};
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (ek_jbv_key_is(&k, "events") || ek_jbv_key_is(&k, "rules") ||
			ek_jbv_key_is(&k, "tracking_plan"))
			 /* read by the caller */ ;
		else if (ek_jbv_key_is(&k, "unplanned_events"))
			plan->unplanned_events = parse_policy(&v, "unplanned_events", unplanned_event_policies);
		else if (ek_jbv_key_is(&k, "unplanned_properties"))
			plan->unplanned_properties = parse_policy(&v, "unplanned_properties", unplanned_property_policies);
		else if (ek_jbv_key_is(&k, "violations"))
			plan->violations = parse_policy(&v, "violations", violation_policies);
		else if (ek_jbv_key_is(&k, "normalize_names"))
		{
			if (v.type != jbvBool)
				ek_plan_spec_error(psprintf("%s/normalize_names", where),
								   "\"normalize_names\" must be true or false",
								   "Leave it out to normalize names.");
			plan->normalize = v.val.boolean;
		}
		else if (!metadata_ok)
			ek_plan_spec_error(where, psprintf("unknown key \"%s\"", ek_jbv_cstring(&k)),
							   "A plan has \"events\" (or Segment's \"rules\", or \"tracking_plan\"), \"unplanned_events\", \"unplanned_properties\", \"violations\" and \"normalize_names\".");
		/* Segment's export carries metadata (name, description, ...): not rules */
	}
}

/*
 * Compile a spec into plan (whose cxt is current).  Every error is an
 * ereport naming the place in the spec.  With plan->lenient, unknown
 * schema keywords are ignored and listed in plan->ignored.
 */
void
ek_compile_plan(CompiledPlan *plan, Jsonb *spec)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	JsonbValue *events = NULL;
	JsonbValue *rules = NULL;
	JsonbValue *wrapped = NULL;
	const char *rules_at = "#/rules";
	List	   *aliases = NIL;
	const char **spellings;
	int			n;

	plan->unplanned_events = POLICY_ALLOW;
	plan->unplanned_properties = POLICY_ALLOW;
	plan->violations = POLICY_QUARANTINE;
	plan->normalize = true;

	if (!JB_ROOT_IS_OBJECT(spec))
		ek_plan_spec_error("#", "a plan spec must be a JSON object",
						   "Write {\"events\": {\"Order Completed\": {\"properties\": {...}}}}.");
	events = getKeyJsonValueFromContainer(&spec->root, "events", 6, NULL);
	rules = getKeyJsonValueFromContainer(&spec->root, "rules", 5, NULL);
	wrapped = getKeyJsonValueFromContainer(&spec->root, "tracking_plan", 13, NULL);
	if ((events != NULL) + (rules != NULL) + (wrapped != NULL) > 1)
		ek_plan_spec_error("#", "a plan has one of \"events\", Segment's \"rules\" or Segment's \"tracking_plan\"",
						   "Convert one form into the other.");
	if (wrapped != NULL)
	{
		/* the Config API's {"tracking_plan": {"rules": {...}, ...}} */
		if (wrapped->type != jbvBinary || !JsonContainerIsObject(wrapped->val.binary.data))
			ek_plan_spec_error("#/tracking_plan", psprintf("\"tracking_plan\" must be an object, not %s",
														  ek_json_kind(wrapped)),
							   "Give the tracking plan as Segment's Config API has it: {\"tracking_plan\": {\"display_name\": ..., \"rules\": {...}}}.");
		rules = getKeyJsonValueFromContainer(wrapped->val.binary.data, "rules", 5, NULL);
		if (rules == NULL)
			ek_plan_spec_error("#/tracking_plan", "\"tracking_plan\" has no \"rules\"",
							   "Give the tracking plan as Segment's Config API has it: {\"tracking_plan\": {\"display_name\": ..., \"rules\": {...}}}.");
		rules_at = "#/tracking_plan/rules";
		read_plan_keys(plan, wrapped->val.binary.data, "#/tracking_plan", true);
	}
	plan->segment = rules != NULL;
	read_plan_keys(plan, &spec->root, "#", rules != NULL && wrapped == NULL);

	if (events != NULL)
	{
		if (events->type != jbvBinary || !JsonContainerIsObject(events->val.binary.data))
			ek_plan_spec_error("#/events", "\"events\" must be an object keyed by event name",
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
	else if (rules != NULL && rules->type == jbvBinary && JsonContainerIsArray(rules->val.binary.data))
		ek_plan_compile_export(plan, rules, rules_at);
	else if (rules != NULL && rules->type == jbvBinary && JsonContainerIsObject(rules->val.binary.data))
		ek_plan_compile_config_api(plan, rules, rules_at);
	else if (rules != NULL)
		ek_plan_spec_error(rules_at, psprintf("\"rules\" must be an array (Segment's tracking-plan export) or an object (Segment's Config API), not %s",
											  ek_json_kind(rules)),
						   "Use Segment's tracking-plan export format, {\"rules\": [{\"type\": \"TRACK\", \"key\": ..., \"jsonSchema\": ...}]}, or the Config API's, {\"rules\": {\"global\": ..., \"events\": [...]}}.");

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
		ek_register_relcache_callback(plan_relcache_callback, (Datum) 0);
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
	/*
	 * A stored version passed create_plan: in a strict plan there is nothing
	 * to ignore, in a plan created with strict => false create_plan warned.
	 */
	plan->lenient = true;
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
