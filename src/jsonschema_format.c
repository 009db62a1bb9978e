/*-------------------------------------------------------------------------
 *
 * jsonschema_format.c
 *	  The "format" checkers of eventkit's JSON Schema validator (hand
 *	  written, no regular expressions: date-time, date, time, email,
 *	  hostname, ip addresses, URIs and IRIs, uuid, JSON pointers, ...) and
 *	  its ECMA-262 regular expressions, translated to PostgreSQL's ARE
 *	  flavour and compiled once with pg_regcomp.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "jsonschema_int.h"

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_ALNUM(c) (IS_DIGIT(c) || IS_ALPHA(c))
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))

/* ---------------------------------------------------------------------
 * Dates and times (RFC 3339)
 * ---------------------------------------------------------------------
 */

static bool
digits(const char *s, int n, int *val)
{
	int			i,
				v = 0;

	for (i = 0; i < n; i++)
	{
		if (!IS_DIGIT(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*val = v;
	return true;
}

static bool
check_date_part(const char *s, int len)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				m,
				d;

	if (len != 10 || s[4] != '-' || s[7] != '-' ||
		!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
		return false;
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

static bool
check_time_part(const char *s, int len)
{
	int			h,
				mi,
				sec,
				i = 8,
				oh = 0,
				om = 0,
				sign = 0;

	if (len < 9 || s[2] != ':' || s[5] != ':' ||
		!digits(s, 2, &h) || !digits(s + 3, 2, &mi) || !digits(s + 6, 2, &sec))
		return false;
	if (s[i] == '.')
	{
		i++;
		if (i >= len || !IS_DIGIT(s[i]))
			return false;
		while (i < len && IS_DIGIT(s[i]))
			i++;
	}
	if (i >= len)
		return false;
	if (s[i] == 'Z' || s[i] == 'z')
		i++;
	else if (s[i] == '+' || s[i] == '-')
	{
		sign = s[i] == '+' ? 1 : -1;
		if (len - i != 6 || s[i + 3] != ':' ||
			!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) ||
			oh > 23 || om > 59)
			return false;
		i += 6;
	}
	else
		return false;
	if (i != len || h > 23 || mi > 59 || sec > 60)
		return false;
	if (sec == 60)
	{
		/* a leap second happens at 23:59:60 UTC */
		int			utc = h * 60 + mi - sign * (oh * 60 + om);

		utc = ((utc % 1440) + 1440) % 1440;
		if (utc != 23 * 60 + 59)
			return false;
	}
	return true;
}

static bool
fmt_date(const char *s, int len)
{
	return check_date_part(s, len);
}

static bool
fmt_time(const char *s, int len)
{
	return check_time_part(s, len);
}

static bool
fmt_date_time(const char *s, int len)
{
	if (len < 20 || !(s[10] == 'T' || s[10] == 't'))
		return false;
	return check_date_part(s, 10) && check_time_part(s + 11, len - 11);
}

/* ---------------------------------------------------------------------
 * Host names, addresses, e-mail
 * ---------------------------------------------------------------------
 */

/* labels of letters, digits and hyphens (or any non-ASCII when idn) */
static bool
check_hostname(const char *s, int len, bool idn)
{
	int			i,
				lab = 0;
	int			chars = 0;

	if (len == 0 || len > (idn ? 1024 : 253))
		return false;
	for (i = 0; i <= len; i++)
	{
		unsigned char c = i < len ? (unsigned char) s[i] : '.';

		int			seplen = 0;

		if (c == '.')
			seplen = 1;
		else if (idn && i + 2 < len &&
				 ((c == 0xE3 && (unsigned char) s[i + 1] == 0x80 && (unsigned char) s[i + 2] == 0x82) ||
				  (c == 0xEF && (unsigned char) s[i + 1] == 0xBC && (unsigned char) s[i + 2] == 0x8E) ||
				  (c == 0xEF && (unsigned char) s[i + 1] == 0xBD && (unsigned char) s[i + 2] == 0xA1)))
			seplen = 3;			/* U+3002, U+FF0E, U+FF61: label separators */
		if (seplen)
		{
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return false;
			lab = 0;
			chars++;
			i += seplen - 1;
			continue;
		}
		if (lab == 0 && c == '-')
			return false;
		if (c >= 0x80)
		{
			if (!idn)
				return false;
		}
		else if (!(IS_ALNUM(c) || c == '-'))
			return false;
		if ((c & 0xC0) != 0x80)
		{
			chars++;
			lab++;				/* in code points */
		}
		/* "--" in the 3rd and 4th positions is reserved for IDNA (xn--) */
		if (lab == 4 && s[i] == '-' && s[i - 1] == '-' &&
			!(tolower((unsigned char) s[i - 3]) == 'x' &&
			  tolower((unsigned char) s[i - 2]) == 'n'))
			return false;
	}
	return chars > 0 && chars <= 253;
}

static bool
fmt_hostname(const char *s, int len)
{
	return check_hostname(s, len, false);
}

static bool
fmt_idn_hostname(const char *s, int len)
{
	return check_hostname(s, len, true);
}

static bool
fmt_ipv4(const char *s, int len)
{
	int			part = 0,
				i = 0;

	for (part = 0; part < 4; part++)
	{
		int			v = 0,
					nd = 0;

		if (part > 0)
		{
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		while (i < len && IS_DIGIT(s[i]) && nd < 4)
		{
			v = v * 10 + (s[i] - '0');
			i++;
			nd++;
		}
		if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && s[i - nd] == '0'))
			return false;
	}
	return i == len;
}

static bool
fmt_ipv6(const char *s, int len)
{
	int			groups = 0,
				i = 0;
	bool		dcolon = false;

	if (len < 2)
		return false;
	if (s[0] == ':')
	{
		if (s[1] != ':')
			return false;
		dcolon = true;
		i = 2;
		if (i == len)
			return true;
	}
	while (i < len)
	{
		int			nh = 0,
					j = i;

		while (j < len && IS_HEX(s[j]))
			j++;
		nh = j - i;
		if (j < len && s[j] == '.')
		{
			/* embedded IPv4 at the end */
			if (!fmt_ipv4(s + i, len - i))
				return false;
			groups += 2;
			i = len;
			break;
		}
		if (nh == 0 || nh > 4)
			return false;
		groups++;
		i = j;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':')
		{
			if (dcolon)
				return false;
			dcolon = true;
			i++;
			if (i == len)
				break;
		}
		else if (i == len)
			return false;
	}
	return dcolon ? groups < 8 : groups == 8;
}

static bool
is_atext(unsigned char c, bool idn)
{
	return IS_ALNUM(c) || strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL ||
		(idn && c >= 0x80);
}

static bool
check_email(const char *s, int len, bool idn)
{
	int			at = -1,
				i;

	if (len > 0 && s[0] == '"')
	{
		/* quoted local part */
		for (i = 1; i < len; i++)
		{
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				break;
		}
		if (i + 1 >= len || s[i] != '"' || s[i + 1] != '@' || i == 1)
			return false;
		at = i + 1;
	}
	else
	{
		bool		prev_dot = true;

		for (i = 0; i < len && s[i] != '@'; i++)
		{
			if (s[i] == '.')
			{
				if (prev_dot)
					return false;
				prev_dot = true;
			}
			else if (is_atext((unsigned char) s[i], idn))
				prev_dot = false;
			else
				return false;
		}
		if (i == 0 || i >= len || prev_dot)
			return false;
		at = i;
	}
	s += at + 1;
	len -= at + 1;
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
	{
		if (len > 7 && strncmp(s + 1, "IPv6:", 5) == 0)
			return fmt_ipv6(s + 6, len - 7);
		return fmt_ipv4(s + 1, len - 2);
	}
	return check_hostname(s, len, idn);
}

static bool
fmt_email(const char *s, int len)
{
	return check_email(s, len, false);
}

static bool
fmt_idn_email(const char *s, int len)
{
	return check_email(s, len, true);
}

/* ---------------------------------------------------------------------
 * URIs and IRIs (RFC 3986 / 3987)
 * ---------------------------------------------------------------------
 */

#define URI_UNRESERVED(c) (IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define URI_SUBDELIM(c) ((c) != '\0' && strchr("!$&'()*+,;=", (c)) != NULL)

/* one character of a component; extra: further allowed ASCII chars */
static bool
uri_chars(const char *s, int len, const char *extra, bool iri)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if (c == '%')
		{
			if (i + 2 >= len)
				return false;
			if (!IS_HEX(s[i + 1]) || !IS_HEX(s[i + 2]))
				return false;
			i += 2;
		}
		else if (c >= 0x80)
		{
			if (!iri)
				return false;
		}
		else if (!(URI_UNRESERVED(c) || URI_SUBDELIM(c) ||
				   (c != '\0' && strchr(extra, c) != NULL)))
			return false;
	}
	return true;
}

static bool
check_authority(const char *s, int len, bool iri)
{
	const char *at = memchr(s, '@', len);
	const char *host;
	int			hlen;
	int			i;

	if (at)
	{
		if (!uri_chars(s, at - s, ":", iri))
			return false;
		host = at + 1;
		hlen = len - (at + 1 - s);
	}
	else
	{
		host = s;
		hlen = len;
	}
	if (hlen > 0 && host[0] == '[')
	{
		const char *close = memchr(host, ']', hlen);

		if (!close)
			return false;
		if (!fmt_ipv6(host + 1, close - host - 1))
			return false;
		i = close + 1 - host;
	}
	else
	{
		for (i = 0; i < hlen && host[i] != ':'; i++)
			;
		if (!uri_chars(host, i, "", iri))
			return false;
	}
	if (i < hlen)
	{
		int			j;

		if (host[i] != ':')
			return false;
		for (j = i + 1; j < hlen; j++)
			if (!IS_DIGIT(host[j]))
				return false;
	}
	return true;
}

/* scheme ":" hier-part, or a relative reference; then ?query #fragment */
static bool
check_uri(const char *s, int len, bool absolute, bool iri)
{
	int			i = 0,
				end;
	const char *q;
	int			plen;

	/* scheme */
	if (len > 0 && IS_ALPHA(s[0]))
	{
		for (i = 1; i < len && (IS_ALNUM(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'); i++)
			;
		if (i < len && s[i] == ':')
			i++;
		else
			i = 0;
	}
	if (i == 0 && absolute)
		return false;
	/* fragment */
	q = memchr(s + i, '#', len - i);
	if (q)
	{
		if (!uri_chars(q + 1, len - (q + 1 - s), ":@/?", iri))
			return false;
		len = q - s;
	}
	/* query */
	q = memchr(s + i, '?', len - i);
	if (q)
	{
		if (!uri_chars(q + 1, len - (q + 1 - s), ":@/?", iri))
			return false;
		len = q - s;
	}
	/* authority */
	if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/')
	{
		for (end = i + 2; end < len && s[end] != '/'; end++)
			;
		if (!check_authority(s + i + 2, end - i - 2, iri))
			return false;
		i = end;
	}
	else if (i == 0)
	{
		/* relative path: no ':' in the first segment */
		for (end = 0; end < len && s[end] != '/'; end++)
			if (s[end] == ':')
				return false;
	}
	plen = len - i;
	return uri_chars(s + i, plen, ":@/", iri);
}

static bool
fmt_uri(const char *s, int len)
{
	return check_uri(s, len, true, false);
}

static bool
fmt_uri_reference(const char *s, int len)
{
	return check_uri(s, len, false, false);
}

static bool
fmt_iri(const char *s, int len)
{
	return check_uri(s, len, true, true);
}

static bool
fmt_iri_reference(const char *s, int len)
{
	return check_uri(s, len, false, true);
}

/* RFC 6570, level 4 */
static bool
fmt_uri_template(const char *s, int len)
{
	int			i = 0;

	while (i < len)
	{
		unsigned char c = s[i];

		if (c == '{')
		{
			i++;
			if (i < len && strchr("+#./;?&=,!@|", s[i]))
				i++;
			for (;;)
			{
				/* varspec: varname [":" max-length | "*"] */
				bool		dot_ok = false;
				int			start = i;

				while (i < len)
				{
					if (IS_ALNUM(s[i]) || s[i] == '_')
						dot_ok = true, i++;
					else if (s[i] == '%' && i + 2 < len && IS_HEX(s[i + 1]) && IS_HEX(s[i + 2]))
						dot_ok = true, i += 3;
					else if (s[i] == '.' && dot_ok && i + 1 < len &&
							 (IS_ALNUM(s[i + 1]) || s[i + 1] == '_' || s[i + 1] == '%'))
						dot_ok = false, i++;
					else
						break;
				}
				if (i == start || i >= len)
					return false;
				if (s[i] == ':')
				{
					int			d = ++i;

					if (i >= len || s[i] < '1' || s[i] > '9')
						return false;
					while (i < len && IS_DIGIT(s[i]))
						i++;
					if (i - d > 4)
						return false;
				}
				else if (s[i] == '*')
					i++;
				if (i >= len)
					return false;
				if (s[i] == '}')
				{
					i++;
					break;
				}
				if (s[i] != ',')
					return false;
				i++;
			}
		}
		else if (c == '%')
		{
			if (i + 2 >= len || !IS_HEX(s[i + 1]) || !IS_HEX(s[i + 2]))
				return false;
			i += 3;
		}
		else if (c < 0x21 || c == 0x7F || strchr("\"<>\\^`|}", c))
			return false;
		else
			i++;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Others
 * ---------------------------------------------------------------------
 */

static bool
fmt_uuid(const char *s, int len)
{
	int			i;

	if (len != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!IS_HEX(s[i]))
			return false;
	}
	return true;
}

static bool
fmt_json_pointer(const char *s, int len)
{
	int			i;

	if (len > 0 && s[0] != '/')
		return false;
	for (i = 0; i < len; i++)
		if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
			return false;
	return true;
}

static bool
fmt_relative_json_pointer(const char *s, int len)
{
	int			i = 0;

	while (i < len && IS_DIGIT(s[i]))
		i++;
	if (i == 0 || (i > 1 && s[0] == '0'))
		return false;
	if (i == len)
		return true;
	if (s[i] == '#')
		return i + 1 == len;
	return fmt_json_pointer(s + i, len - i);
}

static bool
fmt_regex(const char *s, int len)
{
	EkRegex		r;
	char	   *err;

	memset(&r, 0, sizeof(r));
	if (!ek_regex_compile_into(&r, s, len, &err))
		return false;
	pg_regfree(&r.re);
	return true;
}

static const struct
{
	const char *name;
	EkFormatCheck check;
}			formats[] = {
	{"date-time", fmt_date_time},
	{"date", fmt_date},
	{"time", fmt_time},
	{"email", fmt_email},
	{"idn-email", fmt_idn_email},
	{"hostname", fmt_hostname},
	{"idn-hostname", fmt_idn_hostname},
	{"ipv4", fmt_ipv4},
	{"ipv6", fmt_ipv6},
	{"uri", fmt_uri},
	{"uri-reference", fmt_uri_reference},
	{"iri", fmt_iri},
	{"iri-reference", fmt_iri_reference},
	{"uri-template", fmt_uri_template},
	{"uuid", fmt_uuid},
	{"json-pointer", fmt_json_pointer},
	{"relative-json-pointer", fmt_relative_json_pointer},
	{"regex", fmt_regex},
};

EkFormatCheck
ek_format_lookup(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(formats); i++)
		if (strcmp(formats[i].name, name) == 0)
			return formats[i].check;
	return NULL;
}

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
 * Translate an ECMA-262 pattern to PostgreSQL's ARE syntax: classes
 * (\d, \w, \s, .) get their ECMA meaning, \b becomes \y, \xHH \u00HH.
 * Returns NULL with *err set for what ARE cannot express.
 */
char *
ek_ecma_regex_translate(const char *src, int len, char **err)
{
	StringInfoData out;
	bool		in_class = false;
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
			continue;
		}
		if (in_class)
		{
			if (c == ']')
				in_class = false;
			else if (c == '[')
			{
				appendStringInfoString(&out, "\\[");
				continue;
			}
			appendStringInfoChar(&out, c);
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

		pg_regerror(rc, &r->re, buf, sizeof(buf));
		*err = pstrdup(buf);
		return false;
	}
	r->source = pnstrdup(src, len);
	r->simple = simple_compile(src, len);
	return true;
}

bool
ek_regex_match(EkRegex *r, const char *s, int len)
{
	pg_wchar	buf[256];
	pg_wchar   *wide = buf;
	int			wlen;
	int			rc;

	if (r->simple)
		return simple_match(r->simple, s, len);
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

		pg_regerror(rc, &r->re, msg, sizeof(msg));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("regular expression failed: %s", msg)));
	}
	return false;
}
