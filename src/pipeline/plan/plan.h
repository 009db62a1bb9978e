/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  The tracking-plan stage: the plan a stream's batch is checked against
 *	  (plan.c), checking one event (plan_check.c) and the batch's
 *	  violation counts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_PLAN_H
#define EK_PIPELINE_PLAN_H

#include "postgres.h"

#include "catalog/batches.h"
#include "catalog/streams.h"
#include "pipeline/event.h"

/* The plan a batch is checked against, resolved once per batch. */
typedef struct CompiledPlan CompiledPlan;

extern CompiledPlan *ek_plan_for_stream(const StreamInfo *stream);
extern void ek_plan_check_event(CompiledPlan *plan, SegmentEvent *ev);
extern int	ek_plan_violation_counts(const SegmentEvent *events, int nevents,
									 ViolationCount **counts);

#endif							/* EK_PIPELINE_PLAN_H */
