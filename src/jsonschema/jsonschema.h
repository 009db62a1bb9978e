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

/*
 * For tests (eventkit.testing_regex_crosscheck): every match the fast
 * pattern matcher answers is checked against PostgreSQL's regex engine.
 */
extern bool ek_testing_regex_crosscheck;

#endif							/* EVENTKIT_JSONSCHEMA_H */
