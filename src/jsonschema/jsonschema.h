/*-------------------------------------------------------------------------
 *
 * jsonschema.h
 *	  Interface of eventkit's JSON Schema (draft-07) validator: a schema is
 *	  compiled once into an internal form and then validates jsonb values
 *	  without looking at the schema's JSON again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_JSONSCHEMA_H
#define EVENTKIT_JSONSCHEMA_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* A compiled schema.  Opaque; lives in the memory context it was compiled in. */
typedef struct EkSchema EkSchema;

/* One validation error, in Ajv's shape. */
typedef struct EkSchemaError
{
	const char *keyword;		/* "type", "required", "format", ... */
	char	   *instance_path;	/* JSON Pointer into the instance, "" = root */
	char	   *schema_path;	/* "#/properties/revenue/type" */
	char	   *message;		/* "must be number" */
} EkSchemaError;

/*
 * Compile a draft-07 schema.  Everything the compiled form needs is
 * allocated in CurrentMemoryContext; free it by deleting that context.
 * An invalid schema, or one using a keyword or format the validator cannot
 * honour, is an ereport(ERROR) with errcode ERRCODE_INVALID_PARAMETER_VALUE
 * and a detail naming the schema location; it is never silently ignored.
 */
extern EkSchema *ek_schema_compile(Jsonb *schema);

/*
 * How to read a schema.  draft: 0 = as its root "$schema" says (draft-07
 * when it says nothing); 4 (draft-04: "id", boolean exclusiveMinimum and
 * exclusiveMaximum), 6 or 7 = as that draft, whatever "$schema" says (a
 * schema split out of a larger one keeps the larger one's draft).  lenient:
 * unknown keywords, later drafts' keywords and unknown formats are ignored
 * instead of rejected, and their schema locations ("#/properties/a/x-foo",
 * an unknown format with its name after the location) appended to ignored.
 */
typedef struct EkSchemaOptions
{
	int			draft;
	bool		lenient;
	const char *const *annotations; /* more annotation keywords, NULL-ended
									 * (Segment's "labels"); may be NULL */
	const char *location;		/* where the schema is in the caller's
								 * document ("#/events/A/properties"): compile
								 * errors name places there; may be NULL */
	List	   *ignored;		/* out: char * */
} EkSchemaOptions;

extern EkSchema *ek_schema_compile_opts(Jsonb *schema, EkSchemaOptions *opts);

/* The draft a schema's root "$schema" names: 4, 6 or 7 (7: none); -1: another. */
extern int	ek_schema_declared_draft(Jsonb *schema);

/*
 * Validate an instance.  Returns true when valid.  When errors is NULL,
 * stops at the first failure (fast path); otherwise appends every error
 * (EkSchemaError *, allocated in CurrentMemoryContext) to *errors, as
 * Ajv's allErrors mode does.  path_prefix (may be NULL or "") is put in
 * front of every instancePath, e.g. "/properties".
 */
extern bool ek_schema_validate(const EkSchema *schema, Jsonb *instance,
							   const char *path_prefix, List **errors);

/* The errors as a jsonb array of {keyword, instancePath, schemaPath, message}. */
extern Jsonb *ek_schema_errors_jsonb(List *errors);

#endif							/* EVENTKIT_JSONSCHEMA_H */
