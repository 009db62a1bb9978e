/*-------------------------------------------------------------------------
 *
 * plan_check.c
 *	  Checking one event against its tracking plan: which planned event it
 *	  is (with naming rules and aliases), renaming and leaving out
 *	  properties, JSON Schema validation, and what the plan's policies
 *	  (allow, tag, omit, quarantine, reject) make of what was found (a
 *	  finding that quarantines or rejects the event is one of its problems,
 *	  problem.c); plus the per-batch violation counts behind
 *	  eventkit.violation_stats (logged by the ingest orchestrator).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "plan_int.h"
#include "util/compat.h"

/* what each policy does with a finding */
static const FindingAction policy_actions[] = {
	[POLICY_ALLOW] = FINDING_ALLOWED,
	[POLICY_TAG] = FINDING_TAGGED,
	[POLICY_OMIT] = FINDING_OMITTED,
	[POLICY_QUARANTINE] = FINDING_QUARANTINED,
	[POLICY_REJECT] = FINDING_REJECTED,
};

/* ---------------------------------------------------------------------
 * Checking an event
 * ---------------------------------------------------------------------
 */

static void
add_finding(SegmentEvent *ev, EkReason reason, const char *keyword,
			char *instance_path, char *schema_path, char *message, PlanPolicy policy)
{
	PlanFinding *f = palloc(sizeof(PlanFinding));

	f->reason = reason;
	f->keyword = keyword;
	f->instance_path = instance_path;
	f->schema_path = schema_path;
	f->message = message;
	f->action = policy_actions[policy];
	ev->findings = lappend(ev->findings, f);
}

/* context.protocols.event_version, if the event pins one. */
static bool
pinned_version(const SegmentEvent *ev, int32 *version)
{
	JsonbValue *protocols;
	JsonbValue *v;

	if (ev->context == NULL)
		return false;
	protocols = getKeyJsonValueFromContainer(&ev->context->root, "protocols", 9, NULL);
	if (protocols == NULL || protocols->type != jbvBinary ||
		!JsonContainerIsObject(protocols->val.binary.data))
		return false;
	v = getKeyJsonValueFromContainer(protocols->val.binary.data, "event_version", 13, NULL);
	if (v == NULL)
		return false;
	if (v->type == jbvNumeric || v->type == jbvString)
	{
		char	   *s = v->type == jbvString ? ek_jbv_cstring(v) :
			DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
		char	   *end;
		long		l = strtol(s, &end, 10);

		if (*s != '\0' && *end == '\0' && l > 0 && l <= PG_INT32_MAX)
		{
			*version = (int32) l;
			return true;
		}
	}
	*version = -1;
	return true;
}

/* A copy of obj with keys renamed (renames: pairs from, to) and others dropped. */
static Jsonb *
rebuild_object(Jsonb *obj, List *renames, List *drops)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it = JsonbIteratorInit(&obj->root);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		bool		dropped = false;

		if (tok != WJB_KEY)
			continue;
		CHECK_FOR_INTERRUPTS();
		(void) JsonbIteratorNext(&it, &v, true);
		foreach_ptr(char, d, drops)
			if (ek_jbv_key_is(&k, d))
				dropped = true;
		if (dropped)
			continue;
		for (int i = 0; i < list_length(renames); i += 2)
			if (ek_jbv_key_is(&k, list_nth(renames, i)))
			{
				char	   *to = list_nth(renames, i + 1);

				k.val.string.val = to;
				k.val.string.len = strlen(to);
				break;
			}
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static bool
is_planned_property(const PlannedEvent *pe, const char *name)
{
	return bsearch(&name, pe->props, pe->nprops, sizeof(char *), ek_cstring_cmp) != NULL;
}

/*
 * Naming rules and the unplanned-properties policy on the event's
 * top-level properties.  Renames are recorded in *renamed (from, to pairs).
 */
static void
check_properties(CompiledPlan *plan, PlannedEvent *pe, SegmentEvent *ev, List **renamed)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	List	   *renames = NIL;
	List	   *drops = NIL;
	char	  **norm = NULL;

	if (!pe->props_listed || ev->properties == NULL)
		return;
	it = JsonbIteratorInit(&ev->properties->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *name;
		char	   *target = NULL;

		if (tok != WJB_KEY)
			continue;
		CHECK_FOR_INTERRUPTS();
		(void) JsonbIteratorNext(&it, &v, true);
		name = ek_jbv_cstring(&k);
		if (is_planned_property(pe, name))
			continue;
		if (plan->normalize)
		{
			char	   *key = ek_normalize_name(name);

			if (norm == NULL)
			{
				norm = palloc(sizeof(char *) * Max(pe->nprops, 1));
				for (int i = 0; i < pe->nprops; i++)
					norm[i] = ek_normalize_name(pe->props[i]);
			}
			for (int i = 0; i < pe->nprops; i++)
				if (strcmp(norm[i], key) == 0)
					target = pe->props[i];
			/* the planned spelling is there too: this one stays unplanned */
			if (target != NULL &&
				getKeyJsonValueFromContainer(&ev->properties->root, target,
											 strlen(target), NULL) != NULL)
				target = NULL;
		}
		if (target != NULL)
		{
			renames = lappend(lappend(renames, name), target);
			continue;
		}
		if (plan->unplanned_properties == POLICY_ALLOW)
			continue;
		add_finding(ev, EK_REASON_UNPLANNED_PROPERTY, "unplanned_property",
					psprintf("/properties/%s", name),
					psprintf("#/events/%s/properties", pe->name ? pe->name : pe->type),
					psprintf("property \"%s\" is not in the tracking plan", name),
					plan->unplanned_properties);
		if (plan->unplanned_properties == POLICY_OMIT)
			drops = lappend(drops, name);
	}
	if (renames != NIL || drops != NIL)
		ev->properties = rebuild_object(ev->properties, renames, drops);
	*renamed = renames;
}

/* The top-level property an error is about ("/properties/x/..."), or NULL. */
static char *
error_property(const char *instance_path)
{
	const char *p;
	const char *end;

	if (strncmp(instance_path, "/properties/", 12) != 0)
		return NULL;
	p = instance_path + 12;
	end = strchr(p, '/');
	return end ? pnstrdup(p, end - p) : pstrdup(p);
}

static void
validate_event(CompiledPlan *plan, PlannedEvent *pe, SegmentEvent *ev)
{
	List	   *drops = NIL;

	for (int s = 0; s < pe->nschemas; s++)
	{
		PlanSchema *ps = &pe->schemas[s];
		Jsonb	   *instance;
		List	   *errors = NIL;
		char	   *prefix;

		if (ps->field == NULL)
		{
			/* the whole event, as sent (built once, kept for quarantine) */
			instance = ek_event_jsonb(ev);
			prefix = "";
		}
		else
		{
			instance = strcmp(ps->field, "properties") == 0 ? ev->properties :
				strcmp(ps->field, "traits") == 0 ? ev->traits : ev->context;
			prefix = psprintf("/%s", ps->field);
			if (instance == NULL)
				instance = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
		}
		if (ek_schema_validate(ps->schema, instance, NULL, NULL))
			continue;
		(void) ek_schema_validate(ps->schema, instance, prefix, &errors);
		foreach_ptr(EkSchemaError, e, errors)
		{
			PlanPolicy	policy = plan->violations;
			char	   *prop = NULL;

			if (policy == POLICY_OMIT)
			{
				prop = error_property(e->instance_path);
				if (prop == NULL)
					policy = POLICY_TAG;	/* nothing to leave out: keep it, tagged */
				else
					drops = lappend(drops, prop);
			}
			add_finding(ev, EK_REASON_VIOLATION, e->keyword, e->instance_path,
						psprintf("%s%s", ps->schema_path,
								 e->schema_path[0] == '#' ? e->schema_path + 1 : e->schema_path),
						e->message, policy);
		}
	}
	if (drops != NIL && ev->properties != NULL)
		ev->properties = rebuild_object(ev->properties, NIL, drops);
}

/* Record the original names in the row's extra column, under "$original". */
static void
record_original_names(SegmentEvent *ev, const char *original_event, List *renamed)
{
	JsonbParseState *state = NULL;
	JsonbValue	k,
				v;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (ev->extra != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&ev->extra->root);
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
			if (tok == WJB_KEY || tok == WJB_VALUE)
				pushJsonbValue(&state, tok, &k);
	}
	k.type = jbvString;
	k.val.string.val = "$original";
	k.val.string.len = 9;
	pushJsonbValue(&state, WJB_KEY, &k);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (original_event != NULL)
	{
		k.val.string.val = "event";
		k.val.string.len = 5;
		v.type = jbvString;
		v.val.string.val = (char *) original_event;
		v.val.string.len = strlen(original_event);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	if (renamed != NIL)
	{
		k.val.string.val = "properties";
		k.val.string.len = 10;
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < list_length(renamed); i += 2)
		{
			char	   *from = list_nth(renamed, i);
			char	   *to = list_nth(renamed, i + 1);

			k.val.string.val = to;
			k.val.string.len = strlen(to);
			v.type = jbvString;
			v.val.string.val = from;
			v.val.string.len = strlen(from);
			pushJsonbValue(&state, WJB_KEY, &k);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	ev->extra = JsonbValueToJsonb(res);
}

/* Push {key: value, ...} made of n (key, value) string pairs. */
static void
push_string_object(JsonbParseState **state, const char *const pairs[][2], int n)
{
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (int p = 0; p < n; p++)
	{
		JsonbValue	k,
					v;

		k.type = jbvString;
		k.val.string.val = (char *) pairs[p][0];
		k.val.string.len = strlen(pairs[p][0]);
		v.type = jbvString;
		v.val.string.val = (char *) pairs[p][1];
		v.val.string.len = strlen(pairs[p][1]);
		pushJsonbValue(state, WJB_KEY, &k);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* The findings stored on the row (tagged and omitted ones). */
static Jsonb *
row_violations(const SegmentEvent *ev)
{
	JsonbParseState *state = NULL;
	int			n = 0;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach_ptr(PlanFinding, f, ev->findings)
	{
		const char *pairs[5][2] = {
			{"keyword", f->keyword}, {"instancePath", f->instance_path},
			{"schemaPath", f->schema_path}, {"message", f->message}, {"action", ek_finding_action_name(f->action)}
		};

		if (f->action != FINDING_TAGGED && f->action != FINDING_OMITTED)
			continue;
		n++;
		push_string_object(&state, pairs, lengthof(pairs));
	}
	if (n == 0)
		return NULL;
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
}

/*
 * Check one well-formed event against the plan in force for its batch (or
 * the version the event pins).  Renames and omissions are applied to ev;
 * the outcome is left in ev->findings, a problem (which sends
 * the event to quarantine) and ev->violations.  SPI connected.
 */
void
ek_plan_check_event(CompiledPlan *plan, SegmentEvent *ev)
{
	int32		pinned;
	PlannedEvent *pe = NULL;
	const char *original_event = NULL;
	List	   *renamed = NIL;
	bool		quarantine = false;

	CHECK_FOR_INTERRUPTS();
	if (plan->missing != NULL)
	{
		ek_add_problem(&ev->problems, EK_REASON_PLAN_MISSING, "%s", plan->missing);
		return;
	}
	if (pinned_version(ev, &pinned) && pinned != plan->version)
	{
		CompiledPlan *other = pinned > 0 ? ek_load_plan(plan->plan_id, pinned) : NULL;

		if (other == NULL)
		{
			add_finding(ev, EK_REASON_VIOLATION, "event_version", "/context/protocols/event_version",
						"#", psprintf("plan \"%s\" has no version matching context.protocols.event_version",
									  plan->plan_name),
						plan->violations == POLICY_OMIT ? POLICY_TAG : plan->violations);
			ev->plan_version = plan->version;
			goto outcome;
		}
		plan = other;
	}
	ev->plan_version = plan->version;

	/* which planned event is it? */
	if (ev->event != NULL &&
		(strcmp(ev->type, "track") == 0 || strcmp(ev->type, "page") == 0 ||
		 strcmp(ev->type, "screen") == 0))
	{
		pe = ek_plan_find_name(plan->names, plan->nnames, ev->event, ev->type);
		if (pe == NULL && plan->normalize)
		{
			pe = ek_plan_find_name(plan->normalized, plan->nnormalized,
						   ek_normalize_name(ev->event), ev->type);
			if (pe != NULL && pe->name != NULL)
			{
				original_event = ev->event;
				ev->event = pe->name;
			}
		}
		else if (pe != NULL && pe->name != NULL && strcmp(pe->name, ev->event) != 0)
		{
			/* an alias */
			original_event = ev->event;
			ev->event = pe->name;
		}
	}
	if (pe == NULL)
		pe = ek_plan_find_name(plan->names, plan->nnames, "", ev->type);

	if (pe == NULL && strcmp(ev->type, "track") == 0 &&
		plan->unplanned_events != POLICY_ALLOW)
		add_finding(ev, EK_REASON_UNPLANNED_EVENT, "unplanned_event", "/event", "#/events",
					psprintf("event \"%s\" is not in tracking plan \"%s\"",
							 ev->event, plan->plan_name),
					plan->unplanned_events);
	if (pe != NULL)
	{
		check_properties(plan, pe, ev, &renamed);
		validate_event(plan, pe, ev);
	}
	if (plan->common != NULL)
		validate_event(plan, plan->common, ev);
	if (original_event != NULL || renamed != NIL)
		record_original_names(ev, original_event, renamed);

outcome:
	foreach_ptr(PlanFinding, f, ev->findings)
		if (f->action == FINDING_QUARANTINED || f->action == FINDING_REJECTED)
			quarantine = true;
	if (quarantine)
	{
		/* the event does not follow its plan; then each finding that says so */
		ek_add_problem(&ev->problems, EK_REASON_PLAN,
					   "the event does not follow version %d of tracking plan \"%s\"",
					   ev->plan_version, plan->plan_name);
		foreach_ptr(PlanFinding, f, ev->findings)
			if (f->action == FINDING_QUARANTINED || f->action == FINDING_REJECTED)
				ek_add_finding_problem(&ev->problems, f);
	}
	else
		ev->violations = row_violations(ev);
}

/* ---------------------------------------------------------------------
 * Violation statistics: one row per batch, event, keyword, path, action
 * ---------------------------------------------------------------------
 */

/* "/properties/products/3/price" counts as "/properties/products/[*]/price" */
static char *
generic_path(const char *path)
{
	StringInfoData out;
	const char *p = path;

	initStringInfo(&out);
	while (*p)
	{
		const char *seg = p + 1;
		const char *end = strchr(seg, '/');
		int			len = end ? end - seg : strlen(seg);
		bool		digits = len > 0;

		for (int i = 0; i < len; i++)
			if (!isdigit((unsigned char) seg[i]))
				digits = false;
		appendStringInfoChar(&out, '/');
		if (digits)
			appendStringInfoChar(&out, '*');
		else
			appendBinaryStringInfo(&out, seg, len);
		p = seg + len;
	}
	return out.data;
}

/*
 * The batch's findings counted by plan version, event, keyword, generic
 * path and action, for eventkit.batch_violations; returns how many rows
 * (*out palloc'd).
 */
int
ek_plan_violation_counts(const SegmentEvent *events, int nevents, ViolationCount **out)
{
	ViolationCount *counts = NULL;
	int			ncounts = 0;
	int			cap = 0;

	for (int i = 0; i < nevents; i++)
		foreach_ptr(PlanFinding, f, events[i].findings)
		{
			char	   *path = generic_path(f->instance_path);
			const char *action = ek_finding_action_name(f->action);
			int			c;

			CHECK_FOR_INTERRUPTS();
			for (c = 0; c < ncounts; c++)
				if (counts[c].plan_version == events[i].plan_version &&
					strcmp(counts[c].keyword, f->keyword) == 0 &&
					strcmp(counts[c].path, path) == 0 &&
					counts[c].action == action &&
					((counts[c].event == NULL && events[i].event == NULL) ||
					 (counts[c].event && events[i].event &&
					  strcmp(counts[c].event, events[i].event) == 0)))
					break;
			if (c == ncounts)
			{
				if (ncounts == cap)
				{
					cap = cap ? cap * 2 : 16;
					counts = counts ? repalloc(counts, sizeof(ViolationCount) * cap) :
						palloc(sizeof(ViolationCount) * cap);
				}
				counts[c].plan_version = events[i].plan_version;
				counts[c].event = events[i].event;
				counts[c].keyword = f->keyword;
				counts[c].path = path;
				counts[c].action = action;
				counts[c].n = 0;
				ncounts++;
			}
			counts[c].n++;
		}
	*out = counts;
	return ncounts;
}
