/*-------------------------------------------------------------------------
 *
 * problem.c
 *	  The problems of an event: the reasons and their SQL names (one
 *	  table), recording a problem, the quarantine-or-reject decision, and
 *	  the reasons as jsonb ([{"reason", "message"}, ...], then the plan
 *	  findings that quarantined or rejected the event, each as
 *	  {"reason", "keyword", "instancePath", "schemaPath", "message"}).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "pipeline/problem.h"

static const struct
{
	const char *name;
	bool		not_its_fault;	/* quarantined even when invalid events are
								 * rejected: to be re-driven or replayed */
	bool		always_reject;	/* rejected whatever the policy: never kept */
}			reasons[EK_NREASONS] = {
	[EK_REASON_MALFORMED_JSON] = {"malformed_json", false},
	[EK_REASON_UNUSABLE_PAYLOAD] = {"unusable_payload", false},
	[EK_REASON_NOT_AN_OBJECT] = {"not_an_object", false},
	[EK_REASON_MISSING_TYPE] = {"missing_type", false},
	[EK_REASON_INVALID_TYPE] = {"invalid_type", false},
	[EK_REASON_INVALID_MESSAGE_ID] = {"invalid_message_id", false},
	[EK_REASON_INVALID_USER_ID] = {"invalid_user_id", false},
	[EK_REASON_MISSING_USER_ID] = {"missing_user_id", false},
	[EK_REASON_INVALID_EVENT] = {"invalid_event", false},
	[EK_REASON_MISSING_EVENT] = {"missing_event", false},
	[EK_REASON_MISSING_GROUP_ID] = {"missing_group_id", false},
	[EK_REASON_MISSING_PREVIOUS_ID] = {"missing_previous_id", false},
	[EK_REASON_INVALID_TIMESTAMP] = {"invalid_timestamp", false},
	[EK_REASON_INVALID_FIELD] = {"invalid_field", false},
	[EK_REASON_TOO_OLD] = {"too_old", true},
	[EK_REASON_TOO_NEW] = {"too_new", true},
	[EK_REASON_OUT_OF_RANGE] = {"out_of_range", true},
	[EK_REASON_PLAN_MISSING] = {"plan_missing", true},
	[EK_REASON_PLAN] = {"plan", false},
	[EK_REASON_VIOLATION] = {"violation", false},
	[EK_REASON_UNPLANNED_EVENT] = {"unplanned_event", false},
	[EK_REASON_UNPLANNED_PROPERTY] = {"unplanned_property", false},
	[EK_REASON_CONFLICT] = {"conflict", false},
	[EK_REASON_SUPPRESSED] = {"suppressed", false, true},
};

static const char *const action_names[] = {
	[FINDING_ALLOWED] = "allowed",
	[FINDING_TAGGED] = "tagged",
	[FINDING_OMITTED] = "omitted",
	[FINDING_QUARANTINED] = "quarantined",
	[FINDING_REJECTED] = "rejected",
};

const char *
ek_reason_name(EkReason reason)
{
	Assert(reason >= 0 && reason < EK_NREASONS);
	return reasons[reason].name;
}

const char *
ek_finding_action_name(FindingAction action)
{
	return action_names[action];
}

static EventProblem *
new_problem(EkProblems *problems)
{
	if (problems->n == problems->cap)
	{
		problems->cap = problems->cap ? problems->cap * 2 : 4;
		problems->items = problems->items ?
			repalloc(problems->items, sizeof(EventProblem) * problems->cap) :
			palloc(sizeof(EventProblem) * problems->cap);
	}
	return &problems->items[problems->n++];
}

/* Record a problem (beyond EK_MAX_PROBLEMS of its own, an event's are dropped). */
void
ek_add_problem(EkProblems *problems, EkReason reason, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;
	EventProblem *p;

	if (problems->nown >= EK_MAX_PROBLEMS)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	p = new_problem(problems);
	p->reason = reason;
	p->message = buf.data;
	p->finding = NULL;
	problems->nown++;
}

/* Record a plan finding that quarantines or rejects the event. */
void
ek_add_finding_problem(EkProblems *problems, const PlanFinding *finding)
{
	EventProblem *p = new_problem(problems);

	p->reason = finding->reason;
	p->message = NULL;
	p->finding = finding;
}

/*
 * Is an event with these problems rejected (rather than quarantined)?
 * When its plan rejects it, or one of its ids is suppressed; or when reject_invalid
 * (eventkit.invalid_events = reject) and its first problem is its own
 * fault, not where it falls in time or a missing plan, which a later
 * replay or re-drive may settle.
 */
bool
ek_problems_reject(const EkProblems *problems, bool reject_invalid)
{
	Assert(problems->n > 0);
	for (int i = 0; i < problems->n; i++)
		if ((problems->items[i].finding != NULL &&
			 problems->items[i].finding->action == FINDING_REJECTED) ||
			reasons[problems->items[i].reason].always_reject)
			return true;
	return reject_invalid && !reasons[problems->items[0].reason].not_its_fault;
}

static void
push_pair(JsonbParseState **state, const char *key, const char *value)
{
	JsonbValue	k;
	JsonbValue	v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* The problems as the reasons array of quarantine and ingest_verbose. */
Jsonb *
ek_problems_jsonb(const EkProblems *problems)
{
	JsonbParseState *state = NULL;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	/* the event's own problems, then the findings */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < problems->n; i++)
		{
			const EventProblem *p = &problems->items[i];
			const PlanFinding *f = p->finding;

			if ((f != NULL) != (pass == 1))
				continue;
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			push_pair(&state, "reason", ek_reason_name(p->reason));
			if (f != NULL)
			{
				push_pair(&state, "keyword", f->keyword);
				push_pair(&state, "instancePath", f->instance_path);
				push_pair(&state, "schemaPath", f->schema_path);
				push_pair(&state, "message", f->message);
			}
			else
				push_pair(&state, "message", p->message);
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
}
