/*-------------------------------------------------------------------------
 *
 * hll.c
 *	  A group's hll made from its hashes without the hll extension's
 *	  aggregate, for the fold (fold.c) and the realtime views
 *	  (eventkit.rollup_hll, which definition.c's views call on their tail).
 *
 *	  Why.  hll_add_agg allocates and zeroes a state of 128 kB per group
 *	  (its multiset holds the registers of the largest hll there can be);
 *	  after a +1% delta almost every group has a few values, and that was
 *	  three quarters of a refresh's CPU and a good part of a realtime query.
 *
 *	  What.  The hll extension keeps a set of few values as the sorted list
 *	  of their hashes (an EXPLICIT hll, in the hll storage specification,
 *	  schema version 1: a header of 3 bytes, then each hash as 8 big-endian
 *	  bytes, sorted as signed 64-bit integers, each once) until it has more
 *	  than its expthresh (-1, auto: as many hashes as fit in the bytes of
 *	  the registers, 160 with the defaults), then switches to registers.
 *	  Such a set is written here, byte for byte as hll_add_agg writes it:
 *	  the header is that of an EMPTY hll of the same parameters (hll_empty(),
 *	  which the caller supplies, so that the extension's defaults and the
 *	  rollup's hll_log2m apply) with the type EXPLICIT.  A larger set is made
 *	  by the extension's own hll_union from EXPLICIT pieces (the union
 *	  switches to registers as hll_add_agg does, so the result is the same
 *	  multiset, packed the same way), or by hll_add_agg in the fold's
 *	  statement.  sql/rollup_fold.sql compares the bytes with hll_add_agg's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "rollup/hll.h"
#include "util/compat.h"

PG_FUNCTION_INFO_V1(eventkit_rollup_hll);

/* the hll extension's limit on the hashes of an EXPLICIT hll is 16,383 */
#define EK_HLL_EXPLICIT_LIMIT 8192

/*
 * The parameters of the hll empty (an EMPTY hll, as hll_empty() makes it):
 * the header of an EXPLICIT hll of the same parameters and the most
 * hashes it holds.  False (and no EXPLICIT hlls: explicit_max 0) for an
 * unknown layout.
 */
bool
ek_hll_format(Datum empty, EkHllFormat *fmt)
{
	bytea	   *b = DatumGetByteaPP(empty);
	const uint8 *h = (const uint8 *) VARDATA_ANY(b);
	int			nbits;
	int			log2m;
	int			expcode;
	int64		expval;

	memset(fmt, 0, sizeof(*fmt));
	if (VARSIZE_ANY_EXHDR(b) != 3 || h[0] != 0x11)
		return false;			/* not a version 1 EMPTY hll */
	nbits = (h[1] >> 5) + 1;
	log2m = h[1] & 0x1f;
	expcode = h[2] & 0x3f;
	if (log2m > 31)
		return false;
	if (expcode == 63)			/* auto: the hashes fit in the registers' bytes */
		expval = (((int64) nbits << log2m) + 7) / 8 / 8;
	else if (expcode == 0)
		expval = 0;
	else
		expval = INT64CONST(1) << Min(expcode - 1, 62);
	fmt->explicit_max = (int) Min(expval, EK_HLL_EXPLICIT_LIMIT);
	fmt->header[0] = 0x12;		/* version 1, EXPLICIT */
	fmt->header[1] = h[1];
	fmt->header[2] = h[2];
	return true;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return (x > y) - (x < y);
}

/* Sort the hashes (int8 Datums) as signed, each once; returns how many. */
int
ek_hll_distinct(Datum *hashes, int n)
{
	int			k = 0;

	if (n <= 1)
		return n;
	qsort(hashes, n, sizeof(Datum), cmp_int64);
	for (int i = 0; i < n; i++)
		if (k == 0 || DatumGetInt64(hashes[i]) != DatumGetInt64(hashes[k - 1]))
			hashes[k++] = hashes[i];
	return k;
}

/* The EXPLICIT hll (a bytea) of n hashes, sorted and each once. */
Datum
ek_hll_explicit(const EkHllFormat *fmt, const Datum *hashes, int n)
{
	bytea	   *b = palloc(VARHDRSZ + 3 + 8 * (Size) n);
	uint8	   *p = (uint8 *) VARDATA(b);

	SET_VARSIZE(b, VARHDRSZ + 3 + 8 * (Size) n);
	memcpy(p, fmt->header, 3);
	p += 3;
	for (int i = 0; i < n; i++)
	{
		uint64		x = pg_hton64((uint64) DatumGetInt64(hashes[i]));

		memcpy(p, &x, 8);		/* big-endian */
		p += 8;
	}
	return PointerGetDatum(b);
}

/* per call site: the hll type and its hll_union */
typedef struct HllCache
{
	Oid			typid;
	FmgrInfo	hll_union;
} HllCache;

static HllCache *
hll_cache(FunctionCallInfo fcinfo)
{
	HllCache   *c = fcinfo->flinfo->fn_extra;
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 1);
	HeapTuple	tup;
	Form_pg_type typ;
	Oid			argtypes[2];
	Oid			fn;
	AclResult	aclresult;

	if (c != NULL && c->typid == typid)
		return c;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (strcmp(NameStr(typ->typname), "hll") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("eventkit.rollup_hll needs an hll, not %s", format_type_be(typid)),
				 errhint("Pass hll_empty() (with the hll's log2m).")));
	argtypes[0] = argtypes[1] = typid;
	fn = LookupFuncName(list_make2(makeString(get_namespace_name(typ->typnamespace)),
								   makeString("hll_union")), 2, argtypes, false);
	ReleaseSysCache(tup);
	aclresult = ek_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));
	c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(HllCache));
	fmgr_info_cxt(fn, &c->hll_union, fcinfo->flinfo->fn_mcxt);
	c->typid = typid;
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/*
 * eventkit.rollup_hll(hashes "any", empty anyelement) RETURNS anyelement
 *
 * hashes: an array of hll_hashval (hll_hash_text's) or bigint.
 *
 * The hll of the hashes (NULL elements are left out) with the parameters of
 * empty (an EMPTY hll: hll_empty(...)), equal to hll_add_agg(hash, ...)
 * over them: empty itself when there are none.  The realtime views'
 * distinct() of the tail: pg_catalog.array_agg(hll_hash_text(value, 0)).
 */
Datum
eventkit_rollup_hll(PG_FUNCTION_ARGS)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	ArrayType  *a;
	Datum		empty = PG_GETARG_DATUM(1);
	HllCache   *c = hll_cache(fcinfo);
	EkHllFormat fmt;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int16		typlen;
	bool		typbyval = false;
	char		typalign = TYPALIGN_DOUBLE;
	int			n = 0;
	int			chunk;
	Datum		acc;

	if (!ek_hll_format(empty, &fmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("eventkit.rollup_hll needs an empty hll of schema version 1"),
				 errhint("Pass hll_empty().")));
	if (!OidIsValid(get_element_type(argtype)))
		typlen = 0;
	else
		get_typlenbyvalalign(get_element_type(argtype), &typlen, &typbyval, &typalign);
	if (typlen != 8 || !typbyval)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("eventkit.rollup_hll needs an array of hll_hashval or bigint, not %s",
						format_type_be(argtype)),
				 errhint("Pass array_agg(hll_hash_text(value, 0)).")));
	a = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(a, ARR_ELEMTYPE(a), typlen, typbyval, typalign,
					  &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
		if (!nulls[i])
			elems[n++] = elems[i];
	n = ek_hll_distinct(elems, n);
	if (n == 0)
		PG_RETURN_DATUM(PointerGetDatum(PG_DETOAST_DATUM_COPY(empty)));
	if (n <= fmt.explicit_max)
		PG_RETURN_DATUM(ek_hll_explicit(&fmt, elems, n));

	/*
	 * More than an EXPLICIT hll holds: unions of EXPLICIT pieces, as full
	 * as allowed, the first switching to registers when it is joined (with
	 * expthresh 0, pieces of one hash).
	 */
	chunk = Max(fmt.explicit_max, 1);
	acc = ek_hll_explicit(&fmt, elems, Min(chunk, n));
	for (int i = chunk; i < n; i += chunk)
	{
		CHECK_FOR_INTERRUPTS();
		acc = FunctionCall2Coll(&c->hll_union, InvalidOid, acc,
								ek_hll_explicit(&fmt, elems + i, Min(chunk, n - i)));
	}
	PG_RETURN_DATUM(acc);
}
