/*-------------------------------------------------------------------------
 *
 * jsonschema_regex.c
 *	  ECMA-262 regular expressions ("pattern", "patternProperties", format
 *	  "regex") for eventkit's JSON Schema validator: simple patterns run on
 *	  a built-in bit-parallel matcher, the others are translated to
 *	  PostgreSQL's ARE flavour and compiled once with pg_regcomp.  Both
 *	  answer cancel and statement_timeout: the matcher checks between
 *	  chunks of a long string, PostgreSQL's engine returns REG_CANCEL,
 *	  which is raised as the cancel it is (57014).
 *
 *	  Every pattern is compiled by PostgreSQL's engine too, so the two can
 *	  be compared: with eventkit.testing_regex_crosscheck on, each match
 *	  the fast matcher answers is run through PostgreSQL's engine as well,
 *	  and a disagreement is an internal error (sql/regex_crosscheck.sql,
 *	  and the conformance suite, test/t/020, run with it on).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "jsonschema_int.h"
#include "util/guc.h"

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_ALNUM(c) (IS_DIGIT(c) || IS_ALPHA(c))
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))

/* ---------------------------------------------------------------------
 * ECMA-262 regular expressions
 * ---------------------------------------------------------------------
 */

#define ECMA_SPACE "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* The number of the capturing group named name (1-based), or 0. */
static int
group_number(const char *src, int len, const char *name, int namelen)
{
	int			i,
				n = 0;
	bool		in_class = false;

	/* once per \k in a pattern: a pattern of many is quadratic */
	CHECK_FOR_INTERRUPTS();
	for (i = 0; i < len; i++)
	{
		if (src[i] == '\\')
			i++;
		else if (in_class)
			in_class = (src[i] != ']');
		else if (src[i] == '[')
			in_class = true;
		else if (src[i] == '(')
		{
			if (i + 1 < len && src[i + 1] == '?')
			{
				if (i + 2 < len && src[i + 2] == '<' && i + 3 < len &&
					src[i + 3] != '=' && src[i + 3] != '!')
				{
					n++;
					if (i + 3 + namelen < len && memcmp(src + i + 3, name, namelen) == 0 &&
						src[i + 3 + namelen] == '>')
						return n;
				}
			}
			else
				n++;
		}
	}
	return 0;
}

/*
 * Inside a character class: one atom (a character, or with is_class_escape
 * \d \w \s) has been read.  *prev: 0 when no atom can start a range here
 * (the class's start, or just after a range), 1 after a character, 2 after
 * a class escape; *range: a range's '-' was just read.  With the "u" flag
 * (Ajv's), ECMA-262 has no range that starts or ends with a class escape.
 */
static bool
class_atom(bool is_class_escape, int *prev, bool *range, char **err)
{
	if (*range)
	{
		if (is_class_escape)
		{
			*err = "a character class escape cannot end a range";
			return false;
		}
		*range = false;
		*prev = 0;
	}
	else
		*prev = is_class_escape ? 2 : 1;
	return true;
}

/*
 * Translate an ECMA-262 pattern to PostgreSQL's ARE syntax: classes
 * (\d, \w, \s, .) get their ECMA meaning, \b becomes \y, \xHH \u00HH.
 * In a character class, a '-' that ECMA-262 reads as a character is
 * written \- (ARE would read "[\w-a]" and "[a-b-c]" as ranges).
 * Returns NULL with *err set for what ARE cannot express.
 */
char *
ek_ecma_regex_translate(const char *src, int len, char **err)
{
	StringInfoData out;
	bool		in_class = false;
	int			class_prev = 0;
	bool		class_range = false;
	int			i;

	initStringInfo(&out);
	for (i = 0; i < len; i++)
	{
		char		c = src[i];

		if (c == '\\')
		{
			char		e;

			if (i + 1 >= len)
			{
				*err = "trailing backslash";
				return NULL;
			}
			e = src[++i];
			switch (e)
			{
				case 'd':
					appendStringInfoString(&out, in_class ? "0-9" : "[0-9]");
					break;
				case 'w':
					appendStringInfoString(&out, in_class ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]");
					break;
				case 's':
					appendStringInfoString(&out, in_class ? ECMA_SPACE : "[" ECMA_SPACE "]");
					break;
				case 'D':
				case 'W':
				case 'S':
					if (in_class)
					{
						*err = "negated class escapes inside [] are not supported";
						return NULL;
					}
					appendStringInfoString(&out, e == 'D' ? "[^0-9]" :
										   e == 'W' ? "[^a-zA-Z0-9_]" :
										   "[^" ECMA_SPACE "]");
					break;
				case 'b':
					appendStringInfoString(&out, in_class ? "\\u0008" : "\\y");
					break;
				case 'B':
					if (in_class)
						appendStringInfoChar(&out, 'B');
					else
						appendStringInfoString(&out, "\\Y");
					break;
				case 'x':
					if (i + 2 < len && IS_HEX(src[i + 1]) && IS_HEX(src[i + 2]))
					{
						appendStringInfo(&out, "\\u00%c%c", src[i + 1], src[i + 2]);
						i += 2;
					}
					else
						appendStringInfoChar(&out, 'x');
					break;
				case 'u':
					if (i + 4 < len && IS_HEX(src[i + 1]) && IS_HEX(src[i + 2]) &&
						IS_HEX(src[i + 3]) && IS_HEX(src[i + 4]))
					{
						appendStringInfoString(&out, "\\u");
						appendBinaryStringInfo(&out, src + i + 1, 4);
						i += 4;
					}
					else
					{
						*err = "\\u must be followed by four hexadecimal digits";
						return NULL;
					}
					break;
				case 'k':
					{
						/* \k<name>: a back reference to a named group */
						const char *close = memchr(src + i, '>', len - i);
						int			g;

						if (i + 1 >= len || src[i + 1] != '<' || close == NULL ||
							(g = group_number(src, len, src + i + 2, close - (src + i + 2))) <= 0)
						{
							*err = "invalid named back reference";
							return NULL;
						}
						appendStringInfo(&out, "\\%d", g);
						i = close - src;
					}
					break;
				case 'p':
				case 'P':
					*err = "Unicode property escapes are not supported";
					return NULL;
				case 'c':
					if (i + 1 < len && IS_ALPHA(src[i + 1]))
					{
						appendStringInfo(&out, "\\u%04x", src[i + 1] % 32);
						i++;
					}
					else
						appendStringInfoString(&out, "\\\\c");
					break;
				case 't':
				case 'n':
				case 'v':
				case 'f':
				case 'r':
				case '0':
				case '1':
				case '2':
				case '3':
				case '4':
				case '5':
				case '6':
				case '7':
				case '8':
				case '9':
					appendStringInfoChar(&out, '\\');
					appendStringInfoChar(&out, e);
					break;
				default:
					/* Ajv compiles with the "u" flag: identity escapes only of syntax characters */
					if (strchr("^$\\.*+?()[]{}|/", e) == NULL &&
						!(in_class && e == '-'))
					{
						*err = psprintf("invalid escape \\%c", e);
						return NULL;
					}
					appendStringInfoChar(&out, '\\');
					appendStringInfoChar(&out, e);
					break;
			}
			if (in_class &&
				!class_atom(e == 'd' || e == 'w' || e == 's', &class_prev, &class_range, err))
				return NULL;
			continue;
		}
		if (in_class)
		{
			if (c == ']')
			{
				in_class = false;
				appendStringInfoChar(&out, c);
				continue;
			}
			if (c == '-' && class_prev != 0 && !class_range && i + 1 < len && src[i + 1] != ']')
			{
				/* a range's '-' */
				if (class_prev == 2)
				{
					*err = "a character class escape cannot start a range";
					return NULL;
				}
				class_range = true;
				appendStringInfoChar(&out, c);
				continue;
			}
			if (c == '[')
				appendStringInfoString(&out, "\\[");
			else if (c == '-')
				appendStringInfoString(&out, "\\-");
			else
				appendStringInfoChar(&out, c);
			/* a multibyte character is one atom: count its first byte */
			if (((unsigned char) c & 0xC0) != 0x80)
				(void) class_atom(false, &class_prev, &class_range, err);
			continue;
		}
		switch (c)
		{
			case '[':
				if (i + 1 < len && src[i + 1] == ']')
				{
					/* [] matches nothing (text never holds U+0000) */
					appendStringInfoString(&out, "[^\\u0001-\\U0010ffff]");
					i++;
					break;
				}
				if (i + 2 < len && src[i + 1] == '^' && src[i + 2] == ']')
				{
					appendStringInfoString(&out, "(?:.|\\n)");
					i += 2;
					break;
				}
				in_class = true;
				class_prev = 0;
				class_range = false;
				appendStringInfoChar(&out, '[');
				if (i + 1 < len && src[i + 1] == '^')
				{
					appendStringInfoChar(&out, '^');
					i++;
				}
				/* a leading ']' in ARE would be literal; in ECMA it closes */
				break;
			case '.':
				appendStringInfoString(&out, "[^\\n\\r\\u2028\\u2029]");
				break;
			case '(':
				if (i + 1 < len && src[i + 1] == '?')
				{
					if (i + 2 < len && (src[i + 2] == ':' || src[i + 2] == '=' || src[i + 2] == '!'))
						appendStringInfoChar(&out, c);
					else if (i + 3 < len && src[i + 2] == '<' && (src[i + 3] == '=' || src[i + 3] == '!'))
						appendStringInfoChar(&out, c);
					else if (i + 2 < len && src[i + 2] == '<')
					{
						/* a named group: an ordinary group in ARE */
						const char *close = memchr(src + i, '>', len - i);

						if (close == NULL || close == src + i + 3)
						{
							*err = "invalid group name";
							return NULL;
						}
						appendStringInfoChar(&out, '(');
						i = close - src;
					}
					else
					{
						/* (?i) and the like are not ECMA-262 */
						*err = "invalid group";
						return NULL;
					}
				}
				else
					appendStringInfoChar(&out, c);
				break;
			case '{':
				{
					/* a quantifier, or a literal brace */
					int			j = i + 1;
					bool		quant;

					while (j < len && IS_DIGIT(src[j]))
						j++;
					quant = j > i + 1;
					if (quant && j < len && src[j] == ',')
					{
						j++;
						while (j < len && IS_DIGIT(src[j]))
							j++;
					}
					quant = quant && j < len && src[j] == '}';
					if (quant)
					{
						appendBinaryStringInfo(&out, src + i, j - i + 1);
						i = j;
					}
					else
						appendStringInfoString(&out, "\\{");
				}
				break;
			case '}':
				appendStringInfoString(&out, "\\}");
				break;
			default:
				appendStringInfoChar(&out, c);
				break;
		}
	}
	if (in_class)
	{
		*err = "unterminated character class";
		return NULL;
	}
	return out.data;
}

/*
 * A fast matcher for the patterns tracking plans use most: a sequence of
 * single-character atoms (literals, ".", classes of ASCII characters, \d,
 * \w and their negations), each with an optional quantifier (*, +, ?,
 * {n,m}; lazy or not, which cannot change whether there is a match), with
 * optional ^ and $ at the ends.  No groups, alternation, assertions or
 * back references: those patterns go to PostgreSQL's regex engine.  It runs
 * as a bit-parallel NFA over code points: linear, no backtracking, no
 * allocation.  Only with the UTF-8 server encoding.
 */
#define SRE_MAX_ATOMS 63

typedef struct SreAtom
{
	uint8		kind;			/* SRE_LIT, SRE_CLASS, SRE_ANY */
	uint8		rep;			/* SRE_ONE, SRE_OPT, SRE_STAR */
	bool		negate;
	pg_wchar	cp;
	uint64		bits[2];		/* ASCII members of a class */
} SreAtom;

#define SRE_LIT 0
#define SRE_CLASS 1
#define SRE_ANY 2
#define SRE_ONE 0
#define SRE_OPT 1
#define SRE_STAR 2

typedef struct EkSimpleRe
{
	int			n;
	bool		anchor_start;
	bool		anchor_end;
	uint64		star;			/* atoms that may repeat */
	uint64		eps;			/* atoms that may be skipped (? and *) */
	uint64		nonascii;		/* atoms any non-ASCII character matches */
	uint64		anydot;			/* "." atoms (not U+2028/U+2029) */
	uint64		ascii[128];		/* atoms each ASCII character matches */
	SreAtom		atoms[FLEXIBLE_ARRAY_MEMBER];
} EkSimpleRe;

static inline void
sre_set(SreAtom *a, int lo, int hi)
{
	int			c;

	for (c = lo; c <= hi; c++)
		a->bits[c >> 6] |= UINT64CONST(1) << (c & 63);
}

/* \d \w (and \D \W outside classes) into a; false if not one of those */
static bool
sre_class_escape(SreAtom *a, char e)
{
	switch (e)
	{
		case 'd':
		case 'D':
			sre_set(a, '0', '9');
			break;
		case 'w':
		case 'W':
			sre_set(a, '0', '9');
			sre_set(a, 'a', 'z');
			sre_set(a, 'A', 'Z');
			sre_set(a, '_', '_');
			break;
		default:
			return false;
	}
	return true;
}

/* the character an escape stands for, or -1 */
static int
sre_char_escape(char e)
{
	switch (e)
	{
		case 't':
			return '\t';
		case 'n':
			return '\n';
		case 'r':
			return '\r';
		case 'f':
			return '\f';
		case 'v':
			return '\v';
		default:
			if ((unsigned char) e < 0x80 && !IS_ALNUM(e))
				return (unsigned char) e;
			return -1;
	}
}

static inline bool sre_atom_matches(const SreAtom *a, pg_wchar c);

static EkSimpleRe *
simple_compile(const char *src, int len)
{
	SreAtom		atoms[SRE_MAX_ATOMS];
	int			n = 0;
	int			i = 0;
	bool		anchor_start = false,
				anchor_end = false;
	EkSimpleRe *re;

	if (GetDatabaseEncoding() != PG_UTF8)
		return NULL;
	if (len > 0 && src[0] == '^')
	{
		anchor_start = true;
		i = 1;
	}
	if (len > i && src[len - 1] == '$')
	{
		int			bs = 0;

		while (len - 2 - bs >= i && src[len - 2 - bs] == '\\')
			bs++;
		if (bs % 2 == 0)
		{
			anchor_end = true;
			len--;
		}
	}

	while (i < len)
	{
		SreAtom		a;
		char		c = src[i];
		int			lo = 1,
					hi = 1;			/* repetitions; -1 = unbounded */
		int			k;

		memset(&a, 0, sizeof(a));
		if (c == '\\')
		{
			int			ch;

			if (i + 1 >= len)
				return NULL;
			if (sre_class_escape(&a, src[i + 1]))
			{
				a.kind = SRE_CLASS;
				a.negate = (src[i + 1] == 'D' || src[i + 1] == 'W');
			}
			else if ((ch = sre_char_escape(src[i + 1])) >= 0)
			{
				a.kind = SRE_LIT;
				a.cp = ch;
			}
			else
				return NULL;
			i += 2;
		}
		else if (c == '[')
		{
			int			nmembers = 0;

			a.kind = SRE_CLASS;
			i++;
			if (i < len && src[i] == '^')
			{
				a.negate = true;
				i++;
			}
			while (i < len && src[i] != ']')
			{
				int			from,
							to;

				if (src[i] == '\\')
				{
					if (i + 1 >= len)
						return NULL;
					if (src[i + 1] != 'D' && src[i + 1] != 'W' &&
						sre_class_escape(&a, src[i + 1]))
					{
						i += 2;
						nmembers++;
						continue;
					}
					if ((from = sre_char_escape(src[i + 1])) < 0 || src[i + 1] == 'b')
						return NULL;
					i += 2;
				}
				else if ((unsigned char) src[i] >= 0x80)
					return NULL;
				else
					from = (unsigned char) src[i++];
				to = from;
				if (i + 1 < len && src[i] == '-' && src[i + 1] != ']')
				{
					if (src[i + 1] == '\\')
					{
						if (i + 2 >= len || (to = sre_char_escape(src[i + 2])) < 0)
							return NULL;
						i += 3;
					}
					else if ((unsigned char) src[i + 1] >= 0x80)
						return NULL;
					else
					{
						to = (unsigned char) src[i + 1];
						i += 2;
					}
					if (to < from)
						return NULL;
				}
				sre_set(&a, from, to);
				nmembers++;
			}
			if (i >= len || nmembers == 0)
				return NULL;
			i++;				/* the ']' */
		}
		else if (c == '.')
		{
			a.kind = SRE_ANY;
			i++;
		}
		else if (strchr("()|^$*+?{}]", c))
			return NULL;
		else
		{
			/* a literal character, maybe multibyte */
			int			l = pg_utf_mblen((const unsigned char *) src + i);

			if (i + l > len)
				return NULL;
			a.kind = SRE_LIT;
			a.cp = utf8_to_unicode((const unsigned char *) src + i);
			i += l;
		}

		/* a quantifier */
		if (i < len && (src[i] == '*' || src[i] == '+' || src[i] == '?'))
		{
			lo = src[i] == '+' ? 1 : 0;
			hi = src[i] == '?' ? 1 : -1;
			i++;
		}
		else if (i < len && src[i] == '{')
		{
			int			j = i + 1;

			lo = 0;
			while (j < len && IS_DIGIT(src[j]) && lo < 100)
				lo = lo * 10 + (src[j++] - '0');
			if (j == i + 1 || j >= len)
				return NULL;
			if (src[j] == '}')
				hi = lo;
			else if (src[j] == ',')
			{
				j++;
				if (j < len && src[j] == '}')
					hi = -1;
				else
				{
					int			d = j;

					hi = 0;
					while (j < len && IS_DIGIT(src[j]) && hi < 100)
						hi = hi * 10 + (src[j++] - '0');
					if (j == d || hi < lo)
						return NULL;
				}
				if (j >= len || src[j] != '}')
					return NULL;
			}
			else
				return NULL;
			i = j + 1;
		}
		if (i < len && src[i] == '?' && !(lo == 1 && hi == 1))
			i++;				/* lazy: same match/no match */
		if (i < len && strchr("*+?{", src[i]))
			return NULL;

		/* expand into atoms that occur once, optionally or any times */
		for (k = 0; k < lo; k++)
		{
			if (n >= SRE_MAX_ATOMS)
				return NULL;
			atoms[n] = a;
			atoms[n++].rep = SRE_ONE;
		}
		if (hi < 0)
		{
			if (n >= SRE_MAX_ATOMS)
				return NULL;
			atoms[n] = a;
			atoms[n++].rep = SRE_STAR;
		}
		else
			for (k = lo; k < hi; k++)
			{
				if (n >= SRE_MAX_ATOMS)
					return NULL;
				atoms[n] = a;
				atoms[n++].rep = SRE_OPT;
			}
	}

	re = palloc0(offsetof(EkSimpleRe, atoms) + sizeof(SreAtom) * Max(n, 1));
	re->n = n;
	re->anchor_start = anchor_start;
	re->anchor_end = anchor_end;
	memcpy(re->atoms, atoms, sizeof(SreAtom) * n);
	/* bit-parallel tables: which atoms a character matches */
	for (i = 0; i < n; i++)
	{
		uint64		bit = UINT64CONST(1) << i;
		int			c;

		if (atoms[i].rep == SRE_STAR)
			re->star |= bit;
		if (atoms[i].rep != SRE_ONE)
			re->eps |= bit;
		for (c = 0; c < 128; c++)
			if (sre_atom_matches(&atoms[i], c))
				re->ascii[c] |= bit;
		if (atoms[i].kind == SRE_ANY)
			re->anydot |= bit;
		if (atoms[i].kind == SRE_ANY || (atoms[i].kind == SRE_CLASS && atoms[i].negate))
			re->nonascii |= bit;
	}
	return re;
}

static inline bool
sre_atom_matches(const SreAtom *a, pg_wchar c)
{
	switch (a->kind)
	{
		case SRE_LIT:
			return a->cp == c;
		case SRE_ANY:
			return !(c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029);
		default:
			if (c < 128)
				return ((a->bits[c >> 6] >> (c & 63)) & 1) != a->negate;
			return a->negate;
	}
}

/* add the states reachable without input (past optional and starred atoms) */
static inline uint64
sre_closure(const EkSimpleRe *re, uint64 s)
{
	uint64		prev;

	do
	{
		prev = s;
		s |= (s & re->eps) << 1;
	} while (s != prev);
	return s;
}

/* The atoms character c matches. */
static inline uint64
sre_matching(const EkSimpleRe *re, pg_wchar c)
{
	uint64		m;
	int			i;

	if (c < 128)
		return re->ascii[c];
	m = re->nonascii;
	if (c == 0x2028 || c == 0x2029)
		m &= ~re->anydot;
	for (i = 0; i < re->n; i++)
		if (re->atoms[i].kind == SRE_LIT && re->atoms[i].cp == c)
			m |= UINT64CONST(1) << i;
	return m;
}

/* simple_match() checks for interrupts every this many bytes */
#define SRE_CHUNK (64 * 1024)

static bool
simple_match(const EkSimpleRe *re, const char *s, int len)
{
	uint64		accept = UINT64CONST(1) << re->n;
	uint64		start = sre_closure(re, 1);
	uint64		cur = start;
	int			p = 0;

	if ((cur & accept) && !re->anchor_end)
		return true;
	while (p < len)
	{
		/* long strings in chunks, answering cancel between them */
		int			stop = len - p > SRE_CHUNK ? p + SRE_CHUNK : len;

		if (p > 0)
			CHECK_FOR_INTERRUPTS();
		while (p < stop)
		{
			unsigned char b = s[p];
			uint64		m;

			if (b < 0x80)
			{
				m = re->ascii[b];
				p++;
			}
			else
			{
				m = sre_matching(re, utf8_to_unicode((const unsigned char *) s + p));
				p += pg_utf_mblen((const unsigned char *) s + p);
			}
			/* a matching atom advances, a matching starred atom may also stay */
			m &= cur;
			cur = sre_closure(re, ((m & ~re->star) << 1) | (m & re->star) | ((m & re->star) << 1));
			if (!re->anchor_start)
				cur |= start;
			if ((cur & accept) && !re->anchor_end)
				return true;
			if (cur == 0)
				return false;
		}
	}
	return (cur & accept) != 0;
}

bool
ek_regex_compile_into(EkRegex *r, const char *src, int len, char **err)
{
	char	   *are = ek_ecma_regex_translate(src, len, err);
	pg_wchar   *wide;
	int			wlen;
	int			rc;

	if (are == NULL)
		return false;
	wide = palloc((strlen(are) + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(are, wide, strlen(are));
	rc = pg_regcomp(&r->re, wide, wlen, REG_ADVANCED, C_COLLATION_OID);
	pfree(wide);
	if (rc != REG_OKAY)
	{
		char		buf[256];

		/*
		 * The engine gives up with REG_CANCEL when a cancel or timeout is
		 * pending: raise that (57014), as PostgreSQL's regexp.c does, rather
		 * than call the pattern invalid.
		 */
		CHECK_FOR_INTERRUPTS();
		pg_regerror(rc, &r->re, buf, sizeof(buf));
		*err = pstrdup(buf);
		return false;
	}
	r->source = pnstrdup(src, len);
	r->simple = simple_compile(src, len);
	return true;
}

/* PostgreSQL's regex engine, on the string widened to pg_wchar */
static pg_noinline bool
regex_match_full(EkRegex *r, const char *s, int len)
{
	pg_wchar	buf[256];
	pg_wchar   *wide = buf;
	int			wlen;
	int			rc;

	if (len >= lengthof(buf))
		wide = palloc((len + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(s, wide, len);
	rc = pg_regexec(&r->re, wide, wlen, 0, NULL, 0, NULL, 0);
	if (wide != buf)
		pfree(wide);
	if (rc == REG_OKAY)
		return true;
	if (rc != REG_NOMATCH)
	{
		char		msg[256];

		/* REG_CANCEL: the pending cancel or timeout is the error (57014) */
		CHECK_FOR_INTERRUPTS();
		pg_regerror(rc, &r->re, msg, sizeof(msg));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("regular expression failed: %s", msg)));
	}
	return false;
}

#ifdef EK_TESTING
/* eventkit.testing_regex_crosscheck (test builds): the fast matcher's answer must be PostgreSQL's */
static pg_noinline void
crosscheck(EkRegex *r, const char *s, int len, bool simple)
{
	bool		full = regex_match_full(r, s, len);

	if (full != simple)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("eventkit's fast regular expression matcher and PostgreSQL's disagree"),
				 errdetail("Pattern \"%s\" on a string of %d bytes (\"%s\"): the fast matcher says %s, PostgreSQL's engine %s.",
						   r->source, len, pnstrdup(s, pg_mbcliplen(s, len, 200)),
						   simple ? "match" : "no match", full ? "match" : "no match"),
				 errhint("Found by eventkit.testing_regex_crosscheck.")));
}
#endif

bool
ek_regex_match(EkRegex *r, const char *s, int len)
{
	if (r->simple)
	{
		bool		m = simple_match(r->simple, s, len);

#ifdef EK_TESTING
		if (unlikely(ek_testing_regex_crosscheck))
			crosscheck(r, s, len, m);
#endif
		return m;
	}
	return regex_match_full(r, s, len);
}

/*
 * eventkit_internal.regex_fast_path(pattern text) RETURNS boolean, for the
 * tests: whether the fast matcher runs the ECMA-262 pattern (NULL: not a
 * valid pattern).
 */
PG_FUNCTION_INFO_V1(eventkit_regex_fast_path);

Datum
eventkit_regex_fast_path(PG_FUNCTION_ARGS)
{
	text	   *pattern = PG_GETARG_TEXT_PP(0);
	EkRegex		r;
	char	   *err = NULL;
	bool		simple;

	if (!ek_regex_compile_into(&r, VARDATA_ANY(pattern), VARSIZE_ANY_EXHDR(pattern), &err))
		PG_RETURN_NULL();
	simple = r.simple != NULL;
	pg_regfree(&r.re);
	PG_RETURN_BOOL(simple);
}
