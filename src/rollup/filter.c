/*-------------------------------------------------------------------------
 *
 * filter.c
 *	  A rollup's filter (create_rollup(..., filter => '...')): a condition
 *	  on the event in a small grammar of its own, parsed here and turned
 *	  into SQL over the stream row s, which the fold's scan, ingest's
 *	  deltas and the realtime view add to their WHERE.
 *
 *		condition := term { OR term }
 *		term      := factor { AND factor }
 *		factor    := NOT factor | ( condition ) | path predicate
 *		predicate := = literal | <> literal | != literal
 *		           | [NOT] IN ( literal { , literal } ) | IS [NOT] NULL
 *		path      := column { . key }       (as dimensions write them)
 *		literal   := 'string' (SQL quoting) | number | true | false
 *
 *	  A path's value is compared as text (a column's text form, a JSON
 *	  path's value as #>> gives it), with the operators of pg_catalog, to
 *	  the literal's text.  Nothing else can be written: no function, no
 *	  subquery, no operator of anyone's, no cast: a filter cannot run code,
 *	  nor read anything but the event, whoever folds it (the rollup's owner,
 *	  in the worker, under SECURITY_RESTRICTED_OPERATION).  The SQL is made
 *	  of quoted identifiers, quote_literal'ed literals and fixed text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "rollup/rollup.h"

#define FILTER_HINT \
	"A filter is a condition such as event = 'Order Completed' AND properties.currency IN ('EUR', 'USD'): " \
	"a column or JSON path, then = <> IN (...) or IS [NOT] NULL and a literal ('text', a number, true or false), " \
	"combined with AND, OR, NOT and parentheses."

#define FILTER_MAX_DEPTH 32

typedef struct FilterParser
{
	RollupDef  *def;
	const char *text;			/* the whole filter */
	const char *p;				/* the next character */
	StringInfoData out;
	int			depth;
	RollupPathText path_text;	/* a path's text value over s (definition.c) */
} FilterParser;

static void parse_condition(FilterParser *fp);

static void
filter_error(FilterParser *fp, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid rollup filter"),
			 errdetail("%s at character %d of \"%s\".", problem,
					   (int) (fp->p - fp->text) + 1, fp->text),
			 errhint("%s", FILTER_HINT)));
}

static void
skip_space(FilterParser *fp)
{
	while (*fp->p && isspace((unsigned char) *fp->p))
		fp->p++;
}

/* a character of a word (keyword, column, JSON key): letters, digits, _ $ - and non-ASCII */
static bool
word_char(unsigned char c)
{
	return c >= 0x80 || isalnum(c) || c == '_' || c == '$' || c == '-';
}

/* Is the next word kw (case-insensitive)?  Consumes it if so. */
static bool
accept_word(FilterParser *fp, const char *kw)
{
	size_t		len = strlen(kw);

	skip_space(fp);
	if (pg_strncasecmp(fp->p, kw, len) == 0 && !word_char((unsigned char) fp->p[len]))
	{
		fp->p += len;
		return true;
	}
	return false;
}

static bool
accept_char(FilterParser *fp, char c)
{
	skip_space(fp);
	if (*fp->p == c)
	{
		fp->p++;
		return true;
	}
	return false;
}

/* a literal, appended as a quoted text literal */
static void
parse_literal(FilterParser *fp)
{
	StringInfoData lit;

	skip_space(fp);
	initStringInfo(&lit);
	if (*fp->p == '\'')
	{
		fp->p++;
		for (;;)
		{
			if (*fp->p == '\0')
				filter_error(fp, "An unterminated string");
			if (*fp->p == '\'')
			{
				if (fp->p[1] != '\'')
					break;
				fp->p++;
			}
			appendStringInfoChar(&lit, *fp->p++);
		}
		fp->p++;
	}
	else if (accept_word(fp, "true"))
		appendStringInfoString(&lit, "true");
	else if (accept_word(fp, "false"))
		appendStringInfoString(&lit, "false");
	else
	{
		const char *start = fp->p;

		if (*fp->p == '-' || *fp->p == '+')
			fp->p++;
		while (isdigit((unsigned char) *fp->p) || *fp->p == '.' ||
			   ((*fp->p == 'e' || *fp->p == 'E') && fp->p > start))
		{
			if ((*fp->p == 'e' || *fp->p == 'E') && (fp->p[1] == '-' || fp->p[1] == '+'))
				fp->p++;
			fp->p++;
		}
		if (fp->p == start || strspn(start, "+-") == (size_t) (fp->p - start) ||
			word_char((unsigned char) *fp->p))
		{
			fp->p = start;
			filter_error(fp, "A literal ('text', a number, true or false) is expected");
		}
		appendBinaryStringInfo(&lit, start, fp->p - start);
	}
	appendStringInfo(&fp->out, "%s::pg_catalog.text", quote_literal_cstr(lit.data));
}

/* column { . key }: the path's text value over s (the column recorded as read) */
static void
parse_operand(FilterParser *fp)
{
	StringInfoData path;

	skip_space(fp);
	initStringInfo(&path);
	if (!isalpha((unsigned char) *fp->p) && *fp->p != '_' && (unsigned char) *fp->p < 0x80)
		filter_error(fp, "A column or JSON path is expected");
	for (;;)
	{
		const char *start = fp->p;

		while (word_char((unsigned char) *fp->p))
			fp->p++;
		if (fp->p == start)
			filter_error(fp, "An empty element in a path");
		appendBinaryStringInfo(&path, start, fp->p - start);
		if (*fp->p != '.')
			break;
		appendStringInfoChar(&path, *fp->p++);
	}
	appendStringInfoString(&fp->out, fp->path_text(fp->def, path.data));
}

static void
parse_predicate(FilterParser *fp)
{
	bool		not = false;

	parse_operand(fp);
	skip_space(fp);
	if (accept_word(fp, "IS"))
	{
		not = accept_word(fp, "NOT");
		if (!accept_word(fp, "NULL"))
			filter_error(fp, "NULL is expected after IS");
		appendStringInfoString(&fp->out, not ? " IS NOT NULL" : " IS NULL");
		return;
	}
	if (accept_word(fp, "NOT"))
	{
		if (!accept_word(fp, "IN"))
			filter_error(fp, "IN is expected after NOT");
		not = true;
		goto in_list;
	}
	if (accept_word(fp, "IN"))
	{
in_list:
		if (!accept_char(fp, '('))
			filter_error(fp, "A list in parentheses is expected after IN");
		appendStringInfoString(&fp->out, not ? " OPERATOR(pg_catalog.<>) ALL (ARRAY[" :
							   " OPERATOR(pg_catalog.=) ANY (ARRAY[");
		do
		{
			CHECK_FOR_INTERRUPTS();
			parse_literal(fp);
			if (!accept_char(fp, ','))
				break;
			appendStringInfoString(&fp->out, ", ");
		} while (true);
		if (!accept_char(fp, ')'))
			filter_error(fp, "A comma or a closing parenthesis is expected in the list");
		appendStringInfoString(&fp->out, "])");
		return;
	}
	if (strncmp(fp->p, "<>", 2) == 0 || strncmp(fp->p, "!=", 2) == 0)
	{
		fp->p += 2;
		appendStringInfoString(&fp->out, " OPERATOR(pg_catalog.<>) ");
	}
	else if (*fp->p == '=')
	{
		fp->p++;
		appendStringInfoString(&fp->out, " OPERATOR(pg_catalog.=) ");
	}
	else
		filter_error(fp, "An operator (=, <>, IN, IS NULL) is expected");
	parse_literal(fp);
}

static void
parse_factor(FilterParser *fp)
{
	if (++fp->depth > FILTER_MAX_DEPTH)
		filter_error(fp, "Too deeply nested");
	check_stack_depth();
	if (accept_word(fp, "NOT"))
	{
		appendStringInfoString(&fp->out, "NOT ");
		parse_factor(fp);
	}
	else if (accept_char(fp, '('))
	{
		appendStringInfoChar(&fp->out, '(');
		parse_condition(fp);
		if (!accept_char(fp, ')'))
			filter_error(fp, "A closing parenthesis is expected");
		appendStringInfoChar(&fp->out, ')');
	}
	else
	{
		appendStringInfoChar(&fp->out, '(');
		parse_predicate(fp);
		appendStringInfoChar(&fp->out, ')');
	}
	fp->depth--;
}

static void
parse_term(FilterParser *fp)
{
	parse_factor(fp);
	while (accept_word(fp, "AND"))
	{
		appendStringInfoString(&fp->out, " AND ");
		parse_factor(fp);
	}
}

static void
parse_condition(FilterParser *fp)
{
	appendStringInfoChar(&fp->out, '(');
	parse_term(fp);
	while (accept_word(fp, "OR"))
	{
		appendStringInfoString(&fp->out, " OR ");
		parse_term(fp);
	}
	appendStringInfoChar(&fp->out, ')');
}

/*
 * The SQL of a filter over the stream row s (see the top), the stream
 * columns it reads recorded in def by path_text (definition.c's, passed
 * in: the definition calls the filter, not the other way round); an error
 * if it does not follow the grammar or names what the stream does not have.
 */
char *
ek_rollup_filter_sql(RollupDef *def, const char *filter, RollupPathText path_text)
{
	FilterParser fp;

	memset(&fp, 0, sizeof(fp));
	fp.def = def;
	fp.path_text = path_text;
	fp.text = filter;
	fp.p = filter;
	initStringInfo(&fp.out);
	skip_space(&fp);
	if (*fp.p == '\0')
		filter_error(&fp, "An empty condition");
	parse_condition(&fp);
	skip_space(&fp);
	if (*fp.p != '\0')
		filter_error(&fp, "Unexpected text");
	return fp.out.data;
}
