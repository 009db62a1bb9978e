/*-------------------------------------------------------------------------
 *
 * jsonschema_dialect.c
 *	  Which JSON Schema the compiler reads: the drafts a "$schema" may name
 *	  (draft-07, draft-06 as its subset, and draft-04, translated), the
 *	  keyword tables (annotations, later drafts' keywords, which instances
 *	  each validation keyword applies to), draft-04's boolean
 *	  exclusiveMinimum/exclusiveMaximum turned into draft-07's bounds, and
 *	  the list of what a lenient compile ignored.  jsonschema_compile.c
 *	  walks the schema and asks here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "jsonschema_int.h"

/*
 * The draft a "$schema" URI names: 4, 6 or 7; 0 when it names none of
 * them.  The fragment ("#") and the scheme (http or https) do not matter.
 */
int
ek_draft_of_uri(const char *uri, int len)
{
	static const struct
	{
		const char *uri;
		int			draft;
	}			drafts[] = {
		{"json-schema.org/draft-07/schema", 7},
		{"json-schema.org/draft-06/schema", 6},
		{"json-schema.org/draft-04/schema", 4}
	};
	char	   *s = pnstrdup(uri, len);
	char	   *hash = strchr(s, '#');
	char	   *rest = s;

	if (hash != NULL && hash[1] == '\0')
		*hash = '\0';
	if (strncmp(rest, "http://", 7) == 0)
		rest += 7;
	else if (strncmp(rest, "https://", 8) == 0)
		rest += 8;
	else
		return 0;
	for (int i = 0; i < lengthof(drafts); i++)
		if (strcmp(rest, drafts[i].uri) == 0)
			return drafts[i].draft;
	return 0;
}

/*
 * The draft a schema declares with "$schema" at its root: 4, 6 or 7
 * (7 when it declares none); -1 when it names another one.
 */
int
ek_schema_declared_draft(Jsonb *schema)
{
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(schema))
		return 7;
	v = getKeyJsonValueFromContainer(&schema->root, "$schema", 7, NULL);
	if (v == NULL || v->type != jbvString)
		return 7;
	return ek_draft_of_uri(v->val.string.val, v->val.string.len) > 0 ?
		ek_draft_of_uri(v->val.string.val, v->val.string.len) : -1;
}

/* Keywords that are annotations only: accepted, never validate. */
bool
ek_kw_is_annotation(const char *kw)
{
	static const char *const names[] = {
		"$schema", "$id", "$comment", "title", "description", "default",
		"examples", "readOnly", "writeOnly", "contentMediaType",
		"contentEncoding", "definitions"
	};

	for (int i = 0; i < lengthof(names); i++)
		if (strcmp(kw, names[i]) == 0)
			return true;
	return false;
}

/* Keywords of later drafts: rejected, because they would be ignored. */
bool
ek_kw_is_later_draft(const char *kw)
{
	static const char *const names[] = {
		"$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
		"$recursiveAnchor", "$vocabulary", "unevaluatedProperties",
		"unevaluatedItems", "dependentRequired", "dependentSchemas",
		"prefixItems", "minContains", "maxContains", "contentSchema"
	};

	for (int i = 0; i < lengthof(names); i++)
		if (strcmp(kw, names[i]) == 0)
			return true;
	return false;
}

/* Which instances a validation keyword applies to (EkNode.has). */
uint16
ek_kw_group(const char *kw)
{
	static const struct
	{
		const char *kw;
		uint16		group;
	}			groups[] = {
		{"minimum", HAS_NUM}, {"maximum", HAS_NUM}, {"exclusiveMinimum", HAS_NUM},
		{"exclusiveMaximum", HAS_NUM}, {"multipleOf", HAS_NUM},
		{"minLength", HAS_STR}, {"maxLength", HAS_STR}, {"pattern", HAS_STR},
		{"format", HAS_STR},
		{"items", HAS_ARR}, {"additionalItems", HAS_ARR}, {"minItems", HAS_ARR},
		{"maxItems", HAS_ARR}, {"uniqueItems", HAS_ARR}, {"contains", HAS_ARR},
		{"properties", HAS_OBJ}, {"patternProperties", HAS_OBJ},
		{"additionalProperties", HAS_OBJ}, {"required", HAS_OBJ},
		{"minProperties", HAS_OBJ}, {"maxProperties", HAS_OBJ},
		{"dependencies", HAS_OBJ}, {"propertyNames", HAS_OBJ},
		{"enum", HAS_ANY}, {"const", HAS_ANY}, {"allOf", HAS_ANY}, {"anyOf", HAS_ANY},
		{"oneOf", HAS_ANY}, {"not", HAS_ANY}, {"if", HAS_ANY}
	};

	for (int i = 0; i < lengthof(groups); i++)
		if (strcmp(kw, groups[i].kw) == 0)
			return groups[i].group;
	return 0;
}

/*
 * Draft-04's exclusive bounds: "exclusiveMinimum": true makes "minimum"
 * exclusive (draft-07 writes the bound into "exclusiveMinimum" instead).
 * Called once a node's keywords are compiled; moves the bound over.  A
 * failure still names "minimum" (keyword and schemaPath), which is where
 * the bound is in the user's schema.  Returns NULL, or what is wrong.
 */
const char *
ek_draft04_exclusive(EkNode *node)
{
	if (node->draft04_excl & EK_D4_EXMIN)
	{
		if (node->minimum == NULL)
			return "\"exclusiveMinimum\": true needs \"minimum\"";
		node->exmin = node->minimum;
		node->exmin_n = node->minimum_n;
		node->exmin_s = node->minimum_s;
		node->minimum = NULL;
	}
	if (node->draft04_excl & EK_D4_EXMAX)
	{
		if (node->maximum == NULL)
			return "\"exclusiveMaximum\": true needs \"maximum\"";
		node->exmax = node->maximum;
		node->exmax_n = node->maximum_n;
		node->exmax_s = node->maximum_s;
		node->maximum = NULL;
	}
	return NULL;
}
