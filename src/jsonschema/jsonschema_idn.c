/*-------------------------------------------------------------------------
 *
 * jsonschema_idn.c
 *	  Internationalized host names for the "idn-hostname" and "idn-email"
 *	  formats, and the A-labels ("xn--...") of "hostname": checked by
 *	  libraries that carry Unicode's tables, not by hand.
 *
 *	  A name is valid when both accept it:
 *	  - libidn2 (IDNA2008 lookup, RFC 5891, with UTS #46 non-transitional
 *		mapping): code points IDNA2008 disallows, leading combining marks,
 *		the CONTEXTJ rules (zero-width joiners), the Bidi rule within a
 *		label, Punycode that decodes and re-encodes to itself;
 *	  - ICU's UTS #46 (the library PostgreSQL's ICU collations use), with
 *		the STD3 rules, the Bidi rule across labels and the CONTEXTO rules
 *		(middle dots, Greek keraia, Hebrew geresh, Arabic digits), which
 *		libidn2 does not apply, and the lengths: no empty label, labels of
 *		at most 63 and names of at most 253 octets in their ASCII form.
 *	  Labels are separated by ".", U+3002, U+FF0E or U+FF61; a name may not
 *	  end with a separator.
 *
 *	  Needs PostgreSQL built with ICU (USE_ICU); without it the two formats
 *	  are refused when a schema is compiled (jsonschema_format.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "jsonschema_int.h"

#ifdef USE_ICU

#include <idn2.h>
#include <unicode/uidna.h>

#define MAX_NAME_OCTETS 253

static UIDNA *uts46 = NULL;

/* "." or one of the ideographic full stops UTS #46 maps to it */
static bool
ends_with_separator(const char *s, int len)
{
	const unsigned char *e = (const unsigned char *) s + len;

	if (len >= 1 && e[-1] == '.')
		return true;
	return len >= 3 &&
		((e[-3] == 0xE3 && e[-2] == 0x80 && e[-1] == 0x82) ||	/* U+3002 */
		 (e[-3] == 0xEF && e[-2] == 0xBC && e[-1] == 0x8E) ||	/* U+FF0E */
		 (e[-3] == 0xEF && e[-2] == 0xBD && e[-1] == 0xA1));	/* U+FF61 */
}

static bool
icu_accepts(const char *s, int len)
{
	char		ascii[MAX_NAME_OCTETS + 3];
	UIDNAInfo	info = UIDNA_INFO_INITIALIZER;
	UErrorCode	status = U_ZERO_ERROR;
	int32_t		n;

	if (uts46 == NULL)
	{
		uts46 = uidna_openUTS46(UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI |
								UIDNA_CHECK_CONTEXTJ | UIDNA_CHECK_CONTEXTO |
								UIDNA_NONTRANSITIONAL_TO_ASCII, &status);
		if (U_FAILURE(status))
		{
			uts46 = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not open ICU's UTS #46 processing: %s", u_errorName(status))));
		}
	}
	n = uidna_nameToASCII_UTF8(uts46, s, len, ascii, sizeof(ascii), &info, &status);
	if (status == U_MEMORY_ALLOCATION_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* U_BUFFER_OVERFLOW_ERROR: over 253 octets as ASCII */
	return U_SUCCESS(status) && info.errors == 0 && n <= MAX_NAME_OCTETS;
}

static bool
idn2_accepts(const char *s, int len)
{
	char	   *name = pnstrdup(s, len);
	uint8_t    *ascii = NULL;
	int			rc;

	rc = idn2_lookup_u8((const uint8_t *) name,
						&ascii, IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES);
	idn2_free(ascii);
	pfree(name);
	if (rc == IDN2_MALLOC)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return rc == IDN2_OK;
}

/* Whether s (len bytes, server encoding) is an internationalized host name. */
bool
ek_idn_hostname_valid(const char *s, int len)
{
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		/* both libraries read UTF-8 */
		char	   *utf8 = pg_server_to_any(s, len, PG_UTF8);

		if (utf8 != s)
			len = strlen(utf8);
		s = utf8;
	}
	if (len == 0 || ends_with_separator(s, len))
		return false;
	return icu_accepts(s, len) && idn2_accepts(s, len);
}

#endif							/* USE_ICU */
