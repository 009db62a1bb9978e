/*-------------------------------------------------------------------------
 *
 * plan_int.h
 *	  The compiled form of a tracking plan, shared by plan.c (which builds
 *	  and caches it, with plan_formats.c and plan_schema.c), plan_check.c
 *	  (which checks events against it) and
 *	  plan_sql.c (which compiles a spec before storing it).  Others use
 *	  plan.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_PLAN_INT_H
#define EVENTKIT_PLAN_INT_H

#include "jsonschema/jsonschema.h"
#include "pipeline/plan/plan.h"

typedef enum PlanPolicy
{
	POLICY_ALLOW,
	POLICY_TAG,
	POLICY_OMIT,
	POLICY_QUARANTINE,
	POLICY_REJECT
} PlanPolicy;


/* A schema with the path its errors' schemaPath is relative to. */
typedef struct PlanSchema
{
	EkSchema   *schema;
	char	   *schema_path;	/* "#/events/Order Completed/properties" */
	const char *field;			/* properties, traits, context, or NULL: whole event */
	Jsonb	   *source;			/* the schema as written (plan_columns.c reads
								 * the planned properties' types from it) */
} PlanSchema;

/* One planned event (or, for Segment's IDENTIFY/GROUP rules, event type). */
typedef struct PlannedEvent
{
	char	   *name;			/* planned spelling; NULL for a type-wide rule */
	const char *type;			/* the Segment type it applies to */
	PlanSchema	schemas[4];
	int			nschemas;
	char	  **props;			/* planned top-level property names, sorted */
	int			nprops;
	bool		props_listed;	/* the properties schema lists its properties */
} PlannedEvent;

/* A name (planned, alias or normalized) leading to a planned event. */
typedef struct PlanName
{
	const char *key;
	const char *type;
	PlannedEvent *event;
} PlanName;

struct CompiledPlan
{
	int32		plan_id;		/* hash key, with version */
	int32		version;
	char	   *plan_name;
	MemoryContext cxt;
	PlanPolicy	unplanned_events;
	PlanPolicy	unplanned_properties;
	PlanPolicy	violations;
	bool		normalize;
	PlannedEvent *events;
	int			nevents;
	PlanName   *names;			/* exact names and aliases, sorted */
	int			nnames;
	PlanName   *normalized;		/* normalized names, sorted */
	int			nnormalized;
	PlannedEvent *common;		/* Segment COMMON rule: every event */
	char	   *missing;		/* not NULL: the stream's plan or version does
								 * not exist (why); every event is quarantined */

	/* while compiling */
	bool		segment;		/* one of Segment's formats (plan_formats.c) */
	bool		lenient;		/* unknown keywords ignored (strict => false) */
	List	   *ignored;		/* lenient: where they are in the spec */
};

extern char *ek_normalize_name(const char *name);
extern PlannedEvent *ek_plan_find_name(const PlanName *names, int n, const char *key,
							   const char *type);
extern int	ek_cstring_cmp(const void *a, const void *b);
extern bool ek_jbv_key_is(const JsonbValue *k, const char *s);
extern char *ek_jbv_cstring(const JsonbValue *v);
extern CompiledPlan *ek_load_plan(int32 plan_id, int32 version);
extern void ek_compile_plan(CompiledPlan *plan, Jsonb *spec);
extern void ek_plan_spec_error(const char *where, const char *msg, const char *hint)
			pg_attribute_noreturn();
extern const char *ek_json_kind(const JsonbValue *v);
extern void ek_plan_add_schema(CompiledPlan *plan, PlannedEvent *pe, JsonbValue *v,
							   const char *field, char *path, int draft);

/* plan_formats.c: Segment's formats */
extern void ek_plan_compile_export(CompiledPlan *plan, JsonbValue *rules, const char *at);
extern void ek_plan_compile_config_api(CompiledPlan *plan, JsonbValue *rules, const char *at);

#endif							/* EVENTKIT_PLAN_INT_H */
