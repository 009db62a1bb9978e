/*-------------------------------------------------------------------------
 *
 * jsonschema_format.c
 *	  The "format" checkers of eventkit's JSON Schema validator, hand
 *	  written, no regular expressions: date-time, date, time, email,
 *	  hostname, ip addresses, URIs and IRIs, uuid, JSON pointers, ...
 *	  ("regex" uses jsonschema_regex.c; internationalized host names,
 *	  and the A-labels of "hostname", jsonschema_idn.c).
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

/* Character classes by table, for the per-character loops of e-mail */
#define CC_ALNUM	0x01		/* letters and digits */
#define CC_ATEXT	0x02		/* RFC 5322 atext: alnum and !#$%&'*+/=?^_`{|}~- */

static uint8 char_class[256];
static bool char_class_ready = false;

static inline const uint8 *
char_classes(void)
{
	if (unlikely(!char_class_ready))
	{
		const char *p;
		int			c;

		for (c = 0; c < 256; c++)
			char_class[c] = IS_ALNUM(c) ? CC_ALNUM | CC_ATEXT : 0;
		for (p = "!#$%&'*+/=?^_`{|}~-"; *p; p++)
			char_class[(unsigned char) *p] |= CC_ATEXT;
		char_class_ready = true;
	}
	return char_class;
}
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

/*
 * Labels of ASCII letters, digits and hyphens, in one pass; "--" in a
 * label's 3rd and 4th positions only after "xn" (an A-label).  Counts the
 * final label's end as a character, so at most 252 bytes.
 */
static bool
check_hostname_ascii(const char *s, int len)
{
	const uint8 *cc = char_classes();
	int			i,
				lab = 0;

	if (len == 0 || len > 252)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (cc[c] & CC_ALNUM)
			lab++;
		else if (c == '.')
		{
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return false;
			lab = 0;
		}
		else if (c == '-' && lab > 0)
		{
			lab++;
			/* "--" in the 3rd and 4th positions is reserved for IDNA (xn--) */
			if (lab == 4 && s[i - 1] == '-' &&
				!(tolower((unsigned char) s[i - 3]) == 'x' &&
				  tolower((unsigned char) s[i - 2]) == 'n'))
				return false;
		}
		else
			return false;
	}
	return lab > 0 && lab <= 63 && s[len - 1] != '-';
}

#ifdef USE_ICU
/* Whether a label starts with "xn--" (any case): an A-label, Punycode. */
static bool
has_a_label(const char *s, int len)
{
	int			i;

	for (i = 0; i + 4 <= len; i++)
		if ((i == 0 || s[i - 1] == '.') &&
			(s[i] == 'x' || s[i] == 'X') && (s[i + 1] == 'n' || s[i + 1] == 'N') &&
			s[i + 2] == '-' && s[i + 3] == '-')
			return true;
	return false;
}
#endif

static bool
fmt_hostname(const char *s, int len)
{
	if (!check_hostname_ascii(s, len))
		return false;
#ifdef USE_ICU
	/* an A-label must be an IDNA2008 label's Punycode (jsonschema_idn.c) */
	if (has_a_label(s, len))
		return ek_idn_hostname_valid(s, len);
#endif
	return true;
}

#ifdef USE_ICU
static bool
fmt_idn_hostname(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] >= 0x80)
			return ek_idn_hostname_valid(s, len);
	return fmt_hostname(s, len);
}
#endif

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

/*
 * cc: char_classes().  (NUL, which strchr() used to match here too, is
 * never in a jsonb string.)
 */
static inline bool
is_atext(const uint8 *cc, unsigned char c, bool idn)
{
	return (cc[c] & CC_ATEXT) || (idn && c >= 0x80);
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
		const uint8 *cc = char_classes();
		bool		prev_dot = true;

		for (i = 0; i < len && s[i] != '@'; i++)
		{
			if (s[i] == '.')
			{
				if (prev_dot)
					return false;
				prev_dot = true;
			}
			else if (is_atext(cc, (unsigned char) s[i], idn))
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
#ifdef USE_ICU
	if (idn)
		return fmt_idn_hostname(s, len);
#endif
	return check_hostname_ascii(s, len);
}

static bool
fmt_email(const char *s, int len)
{
	return check_email(s, len, false);
}

#ifdef USE_ICU
static bool
fmt_idn_email(const char *s, int len)
{
	return check_email(s, len, true);
}
#endif

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
	{"hostname", fmt_hostname},
#ifdef USE_ICU
	{"idn-email", fmt_idn_email},
	{"idn-hostname", fmt_idn_hostname},
#endif
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

/*
 * The checker of a format; NULL if unknown, or (*unavailable set) if this
 * build cannot check it honestly: the IDN formats without ICU.
 */
EkFormatCheck
ek_format_lookup(const char *name, bool *unavailable)
{
	int			i;

	for (i = 0; i < lengthof(formats); i++)
		if (strcmp(formats[i].name, name) == 0)
			return formats[i].check;
	*unavailable = (strcmp(name, "idn-hostname") == 0 || strcmp(name, "idn-email") == 0);
	return NULL;
}
