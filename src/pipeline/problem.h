/*-------------------------------------------------------------------------
 *
 * problem.h
 *	  What is wrong with an event (problem.c): one model for every stage.
 *
 *	  A problem has a reason (an enum; its SQL name, the "reason" of
 *	  eventkit.quarantine.reasons and of ingest_verbose, comes from one
 *	  table), a message, and, when a tracking plan quarantined or rejected
 *	  the event, the plan finding it stands for.  An event with a problem
 *	  is not stored: it is quarantined, or rejected when its plan rejects
 *	  it, when one of its ids is suppressed (erased by forget_user: such an
 *	  event is never kept), or when eventkit.invalid_events = reject and
 *	  the problem is its own fault (ek_problems_reject).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_PROBLEM_H
#define EK_PIPELINE_PROBLEM_H

#include "postgres.h"

#include "utils/jsonb.h"

typedef enum EkReason
{
	/* the item */
	EK_REASON_MALFORMED_JSON,
	EK_REASON_UNUSABLE_PAYLOAD, /* an intake's payload that cannot be read */
	EK_REASON_NOT_AN_OBJECT,
	/* the Segment spec */
	EK_REASON_MISSING_TYPE,
	EK_REASON_INVALID_TYPE,
	EK_REASON_INVALID_MESSAGE_ID,
	EK_REASON_INVALID_USER_ID,
	EK_REASON_MISSING_USER_ID,
	EK_REASON_INVALID_EVENT,
	EK_REASON_MISSING_EVENT,
	EK_REASON_MISSING_GROUP_ID,
	EK_REASON_MISSING_PREVIOUS_ID,
	EK_REASON_INVALID_TIMESTAMP,
	EK_REASON_INVALID_FIELD,
	/* where it falls in time (not its fault) */
	EK_REASON_TOO_OLD,
	EK_REASON_TOO_NEW,
	EK_REASON_OUT_OF_RANGE,
	/* its tracking plan */
	EK_REASON_PLAN_MISSING,		/* not its fault either */
	EK_REASON_PLAN,
	EK_REASON_VIOLATION,		/* a plan's findings */
	EK_REASON_UNPLANNED_EVENT,
	EK_REASON_UNPLANNED_PROPERTY,
	/* the ledger */
	EK_REASON_CONFLICT,
	/* erasure: an id forget_user erased (always rejected, never kept) */
	EK_REASON_SUPPRESSED,
	EK_NREASONS
} EkReason;

/* What a tracking plan's policy does with a finding. */
typedef enum FindingAction
{
	FINDING_ALLOWED,
	FINDING_TAGGED,
	FINDING_OMITTED,
	FINDING_QUARANTINED,
	FINDING_REJECTED
} FindingAction;

/* What a tracking plan found in one event (pipeline/plan/). */
typedef struct PlanFinding
{
	EkReason	reason;			/* violation, unplanned_event, unplanned_property */
	const char *keyword;		/* JSON Schema keyword, or the reason's name */
	char	   *instance_path;	/* "/properties/revenue" */
	char	   *schema_path;	/* "#/events/.../properties/revenue/type" */
	char	   *message;
	FindingAction action;
} PlanFinding;

/* Why an event cannot be stored normally. */
typedef struct EventProblem
{
	EkReason	reason;
	char	   *message;		/* NULL when finding is set */
	const PlanFinding *finding; /* the plan finding it stands for, or NULL */
} EventProblem;

/* An event's problems: at most EK_MAX_PROBLEMS of its own, and findings. */
#define EK_MAX_PROBLEMS 8

typedef struct EkProblems
{
	EventProblem *items;
	int			n;
	int			nown;			/* those without a finding */
	int			cap;
} EkProblems;

extern const char *ek_reason_name(EkReason reason);
extern const char *ek_finding_action_name(FindingAction action);
extern void ek_add_problem(EkProblems *problems, EkReason reason, const char *fmt,...)
			pg_attribute_printf(3, 4);
extern void ek_add_finding_problem(EkProblems *problems, const PlanFinding *finding);
extern bool ek_problems_reject(const EkProblems *problems, bool reject_invalid);
extern Jsonb *ek_problems_jsonb(const EkProblems *problems);

#endif							/* EK_PIPELINE_PROBLEM_H */
