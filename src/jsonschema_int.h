/*-------------------------------------------------------------------------
 *
 * jsonschema_int.h
 *	  Internals shared by the JSON Schema validator's files: the compiled
 *	  node, the view of a jsonb value the validator walks, the format
 *	  checkers and the ECMA-262 regular expression support.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_JSONSCHEMA_INT_H
#define EVENTKIT_JSONSCHEMA_INT_H

#include "postgres.h"

#include "jsonschema.h"
#include "regex/regex.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Kinds of JSON values (also the bits of a "type" keyword's mask). */
#define EKT_NULL		0x01
#define EKT_BOOLEAN		0x02
#define EKT_NUMBER		0x04
#define EKT_INTEGER		0x08	/* only in type masks */
#define EKT_STRING		0x10
#define EKT_ARRAY		0x20
#define EKT_OBJECT		0x40

/* A JSON value inside a jsonb, as the validator sees it.  No copies. */
typedef struct EkVal
{
	uint8		kind;			/* EKT_* (never EKT_INTEGER) */
	bool		b;				/* boolean value */
	int32		len;			/* string length in bytes */
	const char *str;			/* string bytes (not NUL-terminated) */
	Numeric		num;			/* number */
	JsonbContainer *cont;		/* array or object */
} EkVal;

/* A compiled ECMA-262 regular expression. */
typedef struct EkRegex
{
	regex_t		re;
	char	   *source;			/* the ECMA-262 source, for messages */
	/* a literal-prefix fast matcher, when the pattern allows one */
	int			kind;			/* EKRE_* */
	char	   *lit;			/* literal for EKRE_LITERAL_* */
	int			litlen;
	struct EkRegex *next;		/* all regexes of a schema, for freeing */
} EkRegex;

#define EKRE_GENERAL	0

/* Format checkers (jsonschema_format.c). */
typedef bool (*EkFormatCheck) (const char *s, int len);

extern const char *const ek_draft07_metaschema;

extern EkFormatCheck ek_format_lookup(const char *name);
extern char *ek_ecma_regex_translate(const char *src, int len, char **err);
extern bool ek_regex_compile_into(EkRegex *r, const char *src, int len,
								  char **err);
extern bool ek_regex_match(EkRegex *r, const char *s, int len);

#endif							/* EVENTKIT_JSONSCHEMA_INT_H */
