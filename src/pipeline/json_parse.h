/*-------------------------------------------------------------------------
 *
 * json_parse.h
 *	  The fast path from JSON text to jsonb (json_parse.c), or to a tree
 *	  of JsonbValues whose containers know their jsonb's length.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_JSON_PARSE_H
#define EK_PIPELINE_JSON_PARSE_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * Before the children (pairs or elements) of each container of a tree
 * from ek_json_parse: the bytes of its jsonb (without the varlena header).
 */
#define EK_JSON_TREE_HEAD MAXALIGN(sizeof(uint32))

/* The jsonb length of a container (jbvObject, jbvArray) of such a tree. */
static inline uint32
ek_json_tree_len(const JsonbValue *v)
{
	const char *children = v->type == jbvObject ?
		(const char *) v->val.object.pairs : (const char *) v->val.array.elems;

	return *(const uint32 *) (children - EK_JSON_TREE_HEAD);
}

extern bool ek_json_parse(const char *str, int len, JsonbValue *root);
extern Jsonb *ek_json_tree_jsonb(const JsonbValue *v);
extern Jsonb *ek_json_to_jsonb(const char *str, int len);

#endif							/* EK_PIPELINE_JSON_PARSE_H */
