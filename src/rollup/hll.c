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
 *	  The realtime views' finished distinct count (eventkit.rollup_hll_count,
 *	  1.7): round(hll_cardinality(hll_union(t, r))) computed from the two
 *	  hlls' bytes without packing the union and unpacking it again (nor the
 *	  extension's 128 kB multiset per unpack): the union's registers (or
 *	  its EXPLICIT set's size) and the extension's estimator, the same
 *	  double operation by operation.  A rollup row's hll of registers
 *	  (SPARSE or FULL), alone or with a tail group's EXPLICIT hashes, is
 *	  counted from its bytes without a register array: how many registers
 *	  hold each value, moved by the hashes that raise theirs (since 1.8's
 *	  library; the estimator needs only those counts).  Anything but the common layouts
 *	  (schema version 1, the same parameters, consistent sizes, register
 *	  width and count the estimator handles) is handed to the extension's
 *	  own hll_union and hll_cardinality, errors included.
 *	  sql/rollup_realtime.sql compares it with them.
 *
 *	  The refresh's merge of a delta group's hashes into a rollup row's hll
 *	  (ek_hll_union_hashes, for fold_write.c, 1.8's library): the bytes
 *	  hll_union would return, EXPLICIT, SPARSE or FULL, written in C; which
 *	  of SPARSE and FULL depends on the hll library's per-session
 *	  max_sparse, asked once per merge with hll_set_max_sparse and set back
 *	  (why this and not a rule that avoids asking: at ek_hll_union_hashes).
 *	  Anything it cannot write as hll_union would is left to hll_union.
 *	  sql/rollup_hll_merge.sql compares it with hll_union byte for byte.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
PG_FUNCTION_INFO_V1(eventkit_rollup_hll_count);

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

/*
 * sort_hashes(): int8 Datums ascending as signed, the comparison inlined
 * (a refresh sorts each group's hashes: with qsort's call per comparison
 * that was ~4% of a refresh after +1%)
 */
#define ST_SORT sort_hashes
#define ST_ELEMENT_TYPE Datum
#define ST_COMPARE(a, b) \
	((DatumGetInt64(*(a)) > DatumGetInt64(*(b))) - (DatumGetInt64(*(a)) < DatumGetInt64(*(b))))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* the same for uint32 (registers and entries) */
#define ST_SORT sort_uint32
#define ST_ELEMENT_TYPE uint32
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* Sort the hashes (int8 Datums) as signed, each once; returns how many. */
int
ek_hll_distinct(Datum *hashes, int n)
{
	int			k = 0;

	if (n <= 1)
		return n;
	sort_hashes(hashes, n);
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

/*
 * per call site: the hll type, its hll_union and hll_cardinality, each
 * looked up when first called (the common paths call neither, so that a
 * realtime view loads no code of the hll library: hll_hash.c)
 */
typedef struct HllCache
{
	Oid			typid;
	char	   *schema;			/* the hll type's */
	bool		max_sparse_known;
	int			max_sparse;		/* the session's, asked once */
	FmgrInfo	hll_union;
	FmgrInfo	hll_cardinality;
} HllCache;

/* the hll extension's function name(type, ...), checked for EXECUTE */
static void
hll_function(const char *schema, const char *name, int nargs, Oid typid,
			 FmgrInfo *finfo, MemoryContext cxt)
{
	Oid			argtypes[2] = {typid, typid};
	Oid			fn;
	AclResult	aclresult;

	fn = LookupFuncName(list_make2(makeString(pstrdup(schema)), makeString(pstrdup(name))),
						nargs, argtypes, false);
	aclresult = ek_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));
	fmgr_info_cxt(fn, finfo, cxt);
}

/* the cache of the call site; argno: an argument of the hll type */
static HllCache *
hll_cache(FunctionCallInfo fcinfo, int argno, const char *caller)
{
	HllCache   *c = fcinfo->flinfo->fn_extra;
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, argno);
	HeapTuple	tup;
	Form_pg_type typ;
	char	   *schema;

	if (c != NULL && c->typid == typid)
		return c;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (strcmp(NameStr(typ->typname), "hll") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("eventkit.%s needs an hll, not %s", caller, format_type_be(typid)),
				 argno == 1 ? errhint("Pass hll_empty() (with the hll's log2m).") : 0));
	schema = get_namespace_name(typ->typnamespace);
	ReleaseSysCache(tup);
	c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(HllCache));
	c->schema = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, schema);
	c->typid = typid;
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/* the cache's function name (hll_union or hll_cardinality), looked up on its first use */
static FmgrInfo *
hll_cached(FunctionCallInfo fcinfo, HllCache *c, FmgrInfo *f, const char *name, int nargs)
{
	if (!OidIsValid(f->fn_oid))
		hll_function(c->schema, name, nargs, c->typid, f, fcinfo->flinfo->fn_mcxt);
	return f;
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
	HllCache   *c = hll_cache(fcinfo, 1, "rollup_hll");
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

	/* registers, written in C as hll_union would in this session (1.12) */
	if (!c->max_sparse_known)
		c->max_sparse = ek_hll_session_max_sparse(c->schema);
	c->max_sparse_known = true;
	if (ek_hll_union_hashes(&fmt, empty, elems, n, c->max_sparse, &acc))
		PG_RETURN_DATUM(acc);

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
		acc = FunctionCall2Coll(hll_cached(fcinfo, c, &c->hll_union, "hll_union", 2), InvalidOid, acc,
								ek_hll_explicit(&fmt, elems + i, Min(chunk, n - i)));
	}
	PG_RETURN_DATUM(acc);
}

/*
 * An hll's bytes as the count reads them (the hll storage specification,
 * schema version 1): the type, the parameter bytes, the data after the
 * header.
 */
typedef struct HllBytes
{
	int			type;			/* 1 EMPTY, 2 EXPLICIT, 3 SPARSE, 4 FULL */
	uint8		params[2];		/* register width and log2m; sparse, expthresh */
	const uint8 *data;
	Size		size;
} HllBytes;

#define HLL_EMPTY 1
#define HLL_EXPLICIT 2
#define HLL_SPARSE 3
#define HLL_FULL 4

/* bits [off, off + n) of data, the first bit the most significant; n <= 56 */
static inline uint64
hll_bits(const uint8 *data, Size size, uint64 off, int n)
{
	Size		i = off >> 3;
	int			skip = off & 7;
	int			nbytes = (skip + n + 7) >> 3;
	uint64		v = 0;

	for (int k = 0; k < nbytes; k++)
		v = (v << 8) | (i + k < size ? data[i + k] : 0);
	return (v >> (nbytes * 8 - skip - n)) & ((UINT64CONST(1) << n) - 1);
}

/*
 * A SPARSE hll's entries read one after the other (chunk bits each, most
 * significant first, as the extension's bitstream_unpack; chunk <= 25)
 */
typedef struct HllBitReader
{
	const uint8 *p;
	uint64		buf;			/* the bits read and not yet taken: the lowest have */
	int			have;
} HllBitReader;

static inline uint32
hll_get_bits(HllBitReader *r, int chunk)
{
	while (r->have < chunk)
	{
		r->buf = (r->buf << 8) | *r->p++;
		r->have += 8;
	}
	r->have -= chunk;
	return (uint32) (r->buf >> r->have) & ((1U << chunk) - 1);
}

/* the i-th hash of an EXPLICIT hll (8 big-endian bytes) */
static inline int64
hll_hash_at(const HllBytes *h, Size i)
{
	uint64		v;

	memcpy(&v, h->data + i * 8, 8);
	return (int64) pg_ntoh64(v);
}

/*
 * Read an hll's header; false if the count leaves it to the extension (not
 * version 1, undefined, sizes that do not fit its type).
 */
static bool
hll_read(Datum d, HllBytes *h)
{
	bytea	   *b = DatumGetByteaPP(d);
	const uint8 *p = (const uint8 *) VARDATA_ANY(b);
	Size		size = VARSIZE_ANY_EXHDR(b);
	int			nbits;
	int			log2m;

	if (size < 3 || (p[0] >> 4) != 1)
		return false;
	h->type = p[0] & 0xf;
	h->params[0] = p[1];
	h->params[1] = p[2];
	h->data = p + 3;
	h->size = size - 3;
	nbits = (p[1] >> 5) + 1;
	log2m = p[1] & 0x1f;
	switch (h->type)
	{
		case HLL_EMPTY:
			return h->size == 0;
		case HLL_EXPLICIT:
			if (h->size % 8 != 0 || h->size / 8 > EK_HLL_EXPLICIT_LIMIT)
				return false;
			/* ascending, each once (else the extension's error) */
			for (Size i = 1; i < h->size / 8; i++)
				if (hll_hash_at(h, i - 1) >= hll_hash_at(h, i))
					return false;
			return true;
		case HLL_SPARSE:
			return true;
		case HLL_FULL:
			return h->size == (((Size) nbits << log2m) + 7) / 8;
		default:
			return false;
	}
}

/* hll's compressed_add: the register a hash sets (returned) and its value */
static inline uint32
hll_hash_register(uint64 hash, int log2m, int nbits, uint8 *value)
{
	uint64		rest = hash >> log2m;
	int			p = rest == 0 ? 0 : __builtin_ctzll(rest) + 1;
	int			maxval = (1 << nbits) - 1;

	*value = (uint8) (p > maxval ? maxval : p);
	return (uint32) (hash & ((UINT64CONST(1) << log2m) - 1));
}

/* hll's compressed_add: the register of a hash, raised to its value */
static inline void
hll_register_add(uint8 *regs, int log2m, int nbits, uint64 hash)
{
	uint8		p;
	uint32		ndx = hll_hash_register(hash, log2m, nbits, &p);

	if (regs[ndx] < p)
		regs[ndx] = p;
}

/*
 * Raise regs to the registers of h (SPARSE, FULL or EXPLICIT).  A SPARSE
 * hll's registers are set (as the extension's unpack does) in a zeroed
 * copy first, so that the union is the maximum of the two unpacked sets.
 * False if its bytes are not what the extension would accept.
 */
static bool
hll_registers(const HllBytes *h, uint8 *regs, int log2m, int nbits)
{
	Size		nregs = (Size) 1 << log2m;

	if (h->type == HLL_FULL && nbits == 5 && nregs % 8 == 0)
	{
		/* the common width: 8 registers from each 5 bytes */
		const uint8 *p = h->data;

		for (Size i = 0; i < nregs; i += 8, p += 5)
		{
			uint64		x = (uint64) p[0] << 32 | (uint64) p[1] << 24 |
				(uint64) p[2] << 16 | (uint64) p[3] << 8 | p[4];

			for (int k = 0; k < 8; k++)
			{
				uint8		v = (uint8) ((x >> (35 - 5 * k)) & 0x1f);

				if (regs[i + k] < v)
					regs[i + k] = v;
			}
		}
	}
	else if (h->type == HLL_FULL)
	{
		uint64		off = 0;

		for (Size i = 0; i < nregs; i++, off += nbits)
		{
			uint8		v = (uint8) hll_bits(h->data, h->size, off, nbits);

			if (regs[i] < v)
				regs[i] = v;
		}
	}
	else if (h->type == HLL_SPARSE)
	{
		/*
		 * (index, value) chunks, the indexes ascending as the extension
		 * packs them (else it is left to the extension: its unpack sets each
		 * register once, and raising regs here is the same only then)
		 */
		int			chunk = log2m + nbits;
		Size		nfilled = h->size * 8 / chunk;
		HllBitReader r = {h->data, 0, 0};
		int64		last = -1;
		uint32		vmask = (1U << nbits) - 1;

		if (h->size * 8 - nfilled * chunk >= 8)
			return false;
		for (Size i = 0; i < nfilled; i++)
		{
			uint32		v = hll_get_bits(&r, chunk);
			uint32		ndx = v >> nbits;

			if ((int64) ndx <= last)
				return false;
			last = ndx;
			if (regs[ndx] < (v & vmask))
				regs[ndx] = (uint8) (v & vmask);
		}
	}
	else if (h->type == HLL_EXPLICIT)
	{
		for (Size i = 0; i < h->size / 8; i++)
			hll_register_add(regs, log2m, nbits, (uint64) hll_hash_at(h, i));
	}
	return true;
}

/*
 * The extension's multiset_card of compressed registers.  Its sum of
 * 1 / 2^register over the registers in order is exact at every step (each
 * term is a power of two >= 2^-31, with registers of up to 5 bits, and
 * the sum is at most 2^17 registers: 48 significant bits, fewer than a
 * double's 53), so the sum of each value's count times its term is the
 * same double.  The rest is its operations in its order.
 */
static double
hll_estimate_counts(const uint32 *count, int log2m, int nbits)
{
	size_t		nregs = (size_t) 1 << log2m;
	uint64		max_register_value = (UINT64CONST(1) << nbits) - 1;
	uint64		pw_bits = (max_register_value - 1);
	uint64		total_bits = (pw_bits + log2m);
	uint64		two_to_l = (UINT64CONST(1) << total_bits);
	double		large_estimator_cutoff = (double) two_to_l / 30.0;
	double		sum = 0.0;
	int			zero_count;
	double		gamma;
	double		estimator;
	int			n = (int) nregs;

	Assert(nbits <= 5 && log2m <= 17);
	for (int v = 0; v <= (int) max_register_value; v++)
		sum += (double) count[v] * (1.0 / (1L << v));
	zero_count = (int) count[0];
	switch (n)
	{
		case 16:
			gamma = 0.673 * n * n;
			break;
		case 32:
			gamma = 0.697 * n * n;
			break;
		case 64:
			gamma = 0.709 * n * n;
			break;
		default:
			gamma = (0.7213 / (1.0 + 1.079 / n)) * n * n;
			break;
	}
	estimator = gamma / sum;
	if ((zero_count != 0) && (estimator < (5.0 * nregs / 2.0)))
		return nregs * log((double) nregs / zero_count);
	else if (estimator <= large_estimator_cutoff)
		return estimator;
	else
		return (-1 * (int64) two_to_l) * log(1.0 - (estimator / two_to_l));
}

/* the estimate of registers: how many hold each value, then as above */
static double
hll_estimate(const uint8 *regs, int log2m, int nbits)
{
	size_t		nregs = (size_t) 1 << log2m;
	uint32		count[32] = {0};

	for (size_t ii = 0; ii < nregs; ++ii)
		count[regs[ii]]++;
	return hll_estimate_counts(count, log2m, nbits);
}

/*
 * How many registers of a SPARSE or FULL hll hold each value, read from its
 * bytes without unpacking them into registers (a SPARSE hll of a few
 * hundred values lists only those registers).  False for another type, or
 * bytes hll_registers would not take.
 */
static bool
hll_register_counts(const HllBytes *h, uint32 *count, int log2m, int nbits)
{
	Size		nregs = (Size) 1 << log2m;

	memset(count, 0, 32 * sizeof(uint32));
	if (h->type == HLL_FULL && nbits == 5 && nregs % 8 == 0)
	{
		const uint8 *p = h->data;

		for (Size i = 0; i < nregs; i += 8, p += 5)
		{
			uint64		x = (uint64) p[0] << 32 | (uint64) p[1] << 24 |
				(uint64) p[2] << 16 | (uint64) p[3] << 8 | p[4];

			for (int k = 0; k < 8; k++)
				count[(x >> (35 - 5 * k)) & 0x1f]++;
		}
	}
	else if (h->type == HLL_FULL)
	{
		for (Size i = 0; i < nregs; i++)
			count[hll_bits(h->data, h->size, i * nbits, nbits)]++;
	}
	else if (h->type == HLL_SPARSE)
	{
		int			chunk = log2m + nbits;
		Size		nfilled = h->size * 8 / chunk;
		HllBitReader r = {h->data, 0, 0};
		int64		last = -1;
		uint32		vmask = (1U << nbits) - 1;

		/* as hll_registers: indexes ascending, each once */
		if (h->size * 8 - nfilled * chunk >= 8)
			return false;
		if (chunk == 16)
		{
			/*
			 * The default parameters (log2m 11, registers of 5 bits): each
			 * entry is two whole bytes, the first the more significant (what
			 * hll_get_bits reads, without its bit buffer: 1.11)
			 */
			const uint8 *p = h->data;

			for (Size i = 0; i < nfilled; i++, p += 2)
			{
				uint32		v = (uint32) p[0] << 8 | p[1];

				if ((int64) (v >> nbits) <= last)
					return false;
				last = v >> nbits;
				count[v & vmask]++;
			}
		}
		else
			for (Size i = 0; i < nfilled; i++)
			{
				uint32		v = hll_get_bits(&r, chunk);

				if ((int64) (v >> nbits) <= last)
					return false;
				last = v >> nbits;
				count[v & vmask]++;
			}
		count[0] += nregs - nfilled;
	}
	else
		return false;
	return true;
}

/*
 * Register ndx of a SPARSE or FULL hll that hll_register_counts took (a
 * SPARSE hll's indexes ascending: a binary search of its entries).
 */
static uint8
hll_register_at(const HllBytes *h, uint32 ndx, int log2m, int nbits)
{
	if (h->type == HLL_FULL)
		return (uint8) hll_bits(h->data, h->size, (uint64) ndx * nbits, nbits);
	else
	{
		int			chunk = log2m + nbits;
		Size		lo = 0;
		Size		hi = h->size * 8 / chunk;

		while (lo < hi)
		{
			Size		mid = lo + (hi - lo) / 2;
			uint32		v = (uint32) hll_bits(h->data, h->size, (uint64) mid * chunk, chunk);

			if ((v >> nbits) == ndx)
				return (uint8) (v & ((1U << nbits) - 1));
			if ((v >> nbits) < ndx)
				lo = mid + 1;
			else
				hi = mid;
		}
		return 0;
	}
}

/*
 * The estimate of regs (SPARSE or FULL) alone or with the hashes of an
 * EXPLICIT hll, from regs' register counts: each hash that raises its
 * register moves that register from its old count to its new one.  The
 * same registers as hll_registers makes of the two, without the register
 * array.  False if regs' bytes are left to hll_registers.
 */
static bool
hll_estimate_with(const HllBytes *regs, const HllBytes *expl, int log2m, int nbits,
				  double *estimate)
{
	uint32		count[32];

	if (!hll_register_counts(regs, count, log2m, nbits))
		return false;
	if (expl != NULL && expl->size > 0)
	{
		Size		n = expl->size / 8;
		uint32	   *set = palloc(n * sizeof(uint32));

		/* (register << 8 | value), sorted: each register once, its largest value last */
		for (Size i = 0; i < n; i++)
		{
			uint8		p;
			uint32		ndx = hll_hash_register((uint64) hll_hash_at(expl, i), log2m, nbits, &p);

			set[i] = ndx << 8 | p;
		}
		sort_uint32(set, n);
		for (Size i = 0; i < n; i++)
		{
			uint32		ndx = set[i] >> 8;
			uint8		p = set[i] & 0xff;
			uint8		cur;

			if (i + 1 < n && (set[i + 1] >> 8) == ndx)
				continue;
			cur = hll_register_at(regs, ndx, log2m, nbits);
			if (p > cur)
			{
				count[cur]--;
				count[p]++;
			}
		}
		pfree(set);
	}
	*estimate = hll_estimate_counts(count, log2m, nbits);
	return true;
}

/* round(x)::int8 as PostgreSQL computes it (rint, then the range check) */
static int64
hll_round(double x)
{
	x = rint(x);
	if (unlikely(isnan(x) || !FLOAT8_FITS_IN_INT64(x)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	return (int64) x;
}

/*
 * How many distinct hashes two EXPLICIT hlls hold together (each sorted as
 * signed, each once, as the extension keeps them).
 */
static Size
hll_explicit_union_size(const HllBytes *a, const HllBytes *b)
{
	Size		na = a->size / 8;
	Size		nb = b->size / 8;
	Size		i = 0;
	Size		j = 0;
	Size		n = 0;

	while (i < na && j < nb)
	{
		int64		x = hll_hash_at(a, i);
		int64		y = hll_hash_at(b, j);

		i += x <= y;
		j += y <= x;
		n++;
	}
	return n + (na - i) + (nb - j);
}

/*
 * The count of a (b NULL) or of hll_union(a, b), NULL-free; false if it is
 * left to the extension.
 */
static bool
hll_count_fast(Datum a, Datum b, bool b_null, int64 *result)
{
	HllBytes	ha;
	HllBytes	hb;
	int			nbits;
	int			log2m;
	int64		expthresh;
	int			expcode;
	Size		expval;
	uint8	   *regs;

	if (!hll_read(a, &ha) || (!b_null && !hll_read(b, &hb)))
		return false;
	if (!b_null && memcmp(ha.params, hb.params, 2) != 0)
		return false;			/* the extension's error */
	nbits = (ha.params[0] >> 5) + 1;
	log2m = ha.params[0] & 0x1f;
	expcode = ha.params[1] & 0x3f;
	/* the estimator's 2^(2^nbits - 2 + log2m) fits in 64 bits; no tiny sets */
	if (log2m < 4 || log2m > 17 || nbits > 5)
		return false;
	if (!b_null && hb.type == HLL_EMPTY)
		b_null = true;
	if (ha.type == HLL_EMPTY)
	{
		if (b_null)
		{
			*result = 0;
			return true;
		}
		ha = hb;
		b_null = true;
	}
	if (ha.type == HLL_EXPLICIT && (b_null || hb.type == HLL_EXPLICIT))
	{
		Size		na = ha.size / 8;
		Size		n = b_null ? na : hll_explicit_union_size(&ha, &hb);

		/*
		 * The extension's explicit_union adds b's new hashes to a's while it
		 * has fewer than expval, then turns to registers.
		 */
		expthresh = expcode == 63 ? -1 : expcode == 0 ? 0 : INT64CONST(1) << (expcode - 1);
		expval = expthresh != -1 ? (Size) expthresh : ((((Size) nbits << log2m) + 7) / 8) / 8;
		if (n == na || n <= expval)
		{
			*result = hll_round((double) n);
			return true;
		}
	}
	/* registers alone, or with a few hashes (a tail group's): their counts */
	if (ha.type == HLL_EXPLICIT && !b_null && (hb.type == HLL_SPARSE || hb.type == HLL_FULL))
	{
		HllBytes	t = ha;

		ha = hb;
		hb = t;
	}
	if ((ha.type == HLL_SPARSE || ha.type == HLL_FULL) &&
		(b_null || hb.type == HLL_EXPLICIT))
	{
		double		estimate;

		if (hll_estimate_with(&ha, b_null ? NULL : &hb, log2m, nbits, &estimate))
		{
			*result = hll_round(estimate);
			return true;
		}
	}
	regs = palloc0((Size) 1 << log2m);
	if (!hll_registers(&ha, regs, log2m, nbits) ||
		(!b_null && !hll_registers(&hb, regs, log2m, nbits)))
	{
		pfree(regs);
		return false;
	}
	*result = hll_round(hll_estimate(regs, log2m, nbits));
	pfree(regs);
	return true;
}

/*
 * eventkit.rollup_hll_count(a anyelement, b anyelement) RETURNS int8
 *
 * round(COALESCE(hll_cardinality(COALESCE(hll_union(a, b), a, b)), 0))::int8
 * for two hlls of the same parameters, either NULL: the realtime views'
 * finished distinct() of a tail group (a) merged with its rollup row (b),
 * or of a rollup row alone.
 */
Datum
eventkit_rollup_hll_count(PG_FUNCTION_ARGS)
{
	Datum		a = PG_GETARG_DATUM(0);
	Datum		b = PG_GETARG_DATUM(1);
	bool		a_null = PG_ARGISNULL(0);
	bool		b_null = PG_ARGISNULL(1);
	HllCache   *c;
	int64		result;
	Datum		u;

	if (a_null && b_null)
		PG_RETURN_INT64(0);
	c = hll_cache(fcinfo, 0, "rollup_hll_count");
	if (a_null)
	{
		a = b;
		b_null = true;
	}
	if (hll_count_fast(a, b, b_null, &result))
		PG_RETURN_INT64(result);

	/* anything else: the extension's own functions */
	u = b_null ? a : FunctionCall2Coll(hll_cached(fcinfo, c, &c->hll_union, "hll_union", 2), InvalidOid, a, b);
	{
		LOCAL_FCINFO(card, 1);
		Datum		v;

		InitFunctionCallInfoData(*card, hll_cached(fcinfo, c, &c->hll_cardinality, "hll_cardinality", 1),
								 1, InvalidOid, NULL, NULL);
		card->args[0].value = u;
		card->args[0].isnull = false;
		v = FunctionCallInvoke(card);
		if (card->isnull)
			PG_RETURN_INT64(0);
		PG_RETURN_INT64(hll_round(DatumGetFloat8(v)));
	}
}

/*
 * The merge of a delta group's hashes into a rollup row's hll in C
 * (ek_hll_union_hashes, for fold_write.c's merge, 1.8's library): the bytes
 * hll_union(old, <the group's hll>) returns, where the group's hll is the
 * one eventkit.rollup_hll (or hll_add_agg) makes of the hashes, without
 * the extension's unpacking of both into multisets of 128 kB, its copy and
 * its packing (the largest cost of a refresh after a small delta).  As the
 * extension: the union is EXPLICIT (the sorted hashes) while it holds no
 * more than expthresh's number of hashes, else registers (each hash raises
 * its register to its run of zeroes, as compressed_add), packed SPARSE or
 * FULL by multiset_pack's rule: FULL when the hll's sparseon is 0, else
 * SPARSE when the session's max_sparse (hll_set_max_sparse, -1 by default)
 * is -1 and the SPARSE bits are fewer than the FULL ones, or it is not -1
 * and no more registers than it are set.
 *
 * max_sparse is the hll library's per-session state, with no reader: the
 * caller asks it once per merge (ek_hll_max_sparse: hll_set_max_sparse(-1)
 * returns it, and it is set back at once when it was not -1; the rollup's
 * owner needs EXECUTE on it, else EK_HLL_MAX_SPARSE_UNKNOWN).  A rule that
 * avoids the probe (C only while the result is EXPLICIT or sparseon is 0)
 * would leave every register result of a default rollup (sparseon 1) to
 * hll_union, the very groups that cost the most: so the probe, and
 * without it (unknown) a register result of a sparseon hll is left to
 * hll_union.  Anything else hll_union might write differently is left to it
 * too (false): another header than the rollup's format, bytes hll_read
 * or hll_registers do not take, an EXPLICIT threshold above what the
 * format holds, more than 2^17 registers.
 */
#define HLL_MAX_LOG2M 17

/*
 * hll's bitstream_pack: values of nbits (at most 25) written one after the
 * other, most significant bit first, the last byte padded with zeroes
 */
typedef struct HllBitWriter
{
	uint8	   *p;
	uint64		acc;			/* the bits not yet written: the lowest have */
	int			have;
} HllBitWriter;

static inline void
hll_put_bits(HllBitWriter *w, uint32 val, int nbits)
{
	w->acc = (w->acc << nbits) | val;
	w->have += nbits;
	while (w->have >= 8)
	{
		w->have -= 8;
		*w->p++ = (uint8) (w->acc >> w->have);
	}
}

static inline void
hll_put_end(HllBitWriter *w)
{
	if (w->have > 0)
		*w->p++ = (uint8) (w->acc << (8 - w->have));
	w->have = 0;
}

/*
 * multiset_pack's choice for registers of which nfilled are set: SPARSE
 * (*sparse true) or FULL; false when it depends on a max_sparse not known.
 */
static bool
hll_pack_sparse(const uint8 *params, Size nfilled, int log2m, int nbits, int max_sparse,
				bool *sparse)
{
	if (!(params[1] & 0x40))
		*sparse = false;
	else if (max_sparse == EK_HLL_MAX_SPARSE_UNKNOWN)
		return false;
	else if (max_sparse != -1)
		*sparse = nfilled <= (Size) max_sparse;
	else
		*sparse = nfilled * (Size) (log2m + nbits) < ((Size) 1 << log2m) * (Size) nbits;
	return true;
}

/* a new hll of type (SPARSE, FULL) and params with size bytes of data (zeroed) */
static bytea *
hll_new(int type, const uint8 *params, Size size, uint8 **data)
{
	bytea	   *b = palloc0(VARHDRSZ + 3 + size);
	uint8	   *p = (uint8 *) VARDATA(b);

	SET_VARSIZE(b, VARHDRSZ + 3 + size);
	p[0] = 0x10 | type;
	p[1] = params[0];
	p[2] = params[1];
	*data = p + 3;
	return b;
}

/* a SPARSE hll of its entries (register << nbits | value, registers ascending) */
static Datum
hll_pack_entries(const uint8 *params, const uint32 *ent, Size n, int log2m, int nbits)
{
	int			chunk = log2m + nbits;
	HllBitWriter w = {0};
	bytea	   *b = hll_new(HLL_SPARSE, params, (n * chunk + 7) / 8, &w.p);

	for (Size i = 0; i < n; i++)
		hll_put_bits(&w, ent[i], chunk);
	hll_put_end(&w);
	return PointerGetDatum(b);
}

/* a FULL hll of the registers */
static Datum
hll_pack_full(const uint8 *params, const uint8 *regs, int log2m, int nbits)
{
	Size		nregs = (Size) 1 << log2m;
	HllBitWriter w = {0};
	bytea	   *b = hll_new(HLL_FULL, params, (nregs * nbits + 7) / 8, &w.p);

	if (nbits == 5 && nregs % 8 == 0)
	{
		/* the common width: 8 registers into each 5 bytes */
		uint8	   *p = w.p;

		for (Size i = 0; i < nregs; i += 8, p += 5)
		{
			uint64		x = 0;

			for (int k = 0; k < 8; k++)
				x = (x << 5) | regs[i + k];
			p[0] = (uint8) (x >> 32);
			p[1] = (uint8) (x >> 24);
			p[2] = (uint8) (x >> 16);
			p[3] = (uint8) (x >> 8);
			p[4] = (uint8) x;
		}
	}
	else
	{
		for (Size i = 0; i < nregs; i++)
			hll_put_bits(&w, regs[i], nbits);
		hll_put_end(&w);
	}
	return PointerGetDatum(b);
}

/* registers packed as multiset_pack packs them (SPARSE or FULL); false: unknown */
static bool
hll_pack_registers(const uint8 *params, const uint8 *regs, int log2m, int nbits,
				   int max_sparse, Datum *result)
{
	Size		nregs = (Size) 1 << log2m;
	Size		nfilled = 0;
	bool		sparse;
	uint32	   *ent;
	Size		n = 0;

	for (Size i = 0; i < nregs; i++)
		nfilled += regs[i] != 0;
	if (!hll_pack_sparse(params, nfilled, log2m, nbits, max_sparse, &sparse))
		return false;
	if (!sparse)
	{
		*result = hll_pack_full(params, regs, log2m, nbits);
		return true;
	}
	ent = palloc(Max(nfilled, 1) * sizeof(uint32));
	for (Size i = 0; i < nregs; i++)
		if (regs[i] != 0)
			ent[n++] = (uint32) (i << nbits) | regs[i];
	*result = hll_pack_entries(params, ent, n, log2m, nbits);
	pfree(ent);
	return true;
}

/*
 * hll_sparse_union's common case, entries of 16 bits (log2m + register
 * width: 11 + 5, the defaults): each entry two bytes, the runs of entries
 * no hash changes copied as they are, the hashes' registers (add: register
 * << 8 | value, sorted; made one per register here, *na set to how many)
 * put in their places.
 * Only for a SPARSE result, and for entries of ascending registers (each
 * once) with no value 0 (as the extension packs them); false otherwise,
 * and the caller merges them entry by entry.
 */
static bool
hll_sparse16_union(const HllBytes *h, uint32 *add, int *na, int log2m, int nbits,
				   int max_sparse, Datum *result)
{
	const uint8 *d = h->data;
	Size		nold = h->size / 2;
	uint32		vmask = (1U << nbits) - 1;
	Size	   *pos;
	int			nu = 0;
	Size		nfilled;
	Size		from = 0;
	bool		sparse;
	uint8	   *out;
	bytea	   *b;

#define HLL_E16(i) ((uint32) d[2 * (i)] << 8 | d[2 * (i) + 1])
	if (h->size % 2 != 0)
		return false;

	/*
	 * The entries' registers strictly ascending (each register once), no
	 * value 0.  One pass without a branch per entry: this check reads every
	 * entry of the row's hll and was most of a refresh's hll merge.  (prev1:
	 * the register before, plus one.)
	 */
	{
		uint64		prev1 = 0;
		uint64		bad = 0;
		uint64		vmask4 = vmask * UINT64CONST(0x0001000100010001);
		Size		i = 0;

#ifdef __SSE2__

		/*
		 * Eight entries per 16-byte load (SSE2, every x86-64): the bytes of
		 * each 16-bit lane swapped (big-endian entries); each lane's register
		 * (below 0x8000: a signed compare) above the lane before it (the
		 * last of the previous eight for the first, -1 before the first),
		 * its value bits not 0.
		 */
		if (nold >= 8)
		{
			const __m128i shift = _mm_cvtsi32_si128(nbits);
			const __m128i vm = _mm_set1_epi16((short) vmask);
			const __m128i ones = _mm_set1_epi16(-1);
			__m128i		acc = _mm_setzero_si128();
			__m128i		last = ones;

			for (; i + 8 <= nold; i += 8)
			{
				__m128i		raw = _mm_loadu_si128((const __m128i *) (d + 2 * i));
				__m128i		e = _mm_or_si128(_mm_slli_epi16(raw, 8), _mm_srli_epi16(raw, 8));
				__m128i		r = _mm_srl_epi16(e, shift);
				__m128i		before = _mm_or_si128(_mm_slli_si128(r, 2), _mm_srli_si128(last, 14));

				acc = _mm_or_si128(acc, _mm_xor_si128(_mm_cmpgt_epi16(r, before), ones));
				acc = _mm_or_si128(acc, _mm_cmpeq_epi16(_mm_and_si128(e, vm),
														_mm_setzero_si128()));
				last = r;
			}
			bad |= (uint64) (_mm_movemask_epi8(acc) != 0);
			prev1 = (uint64) (uint16) _mm_extract_epi16(last, 7) + 1;
		}
#endif

		/*
		 * Four entries per 8-byte load: each lane's value nonzero (a lane
		 * holds at most vmask there: adding 0x7fff sets its top bit exactly
		 * when it is not 0), each register above the one before.
		 */
		for (; i + 4 <= nold; i += 4)
		{
			uint64		x;
			uint64		r0,
						r1,
						r2,
						r3;

			memcpy(&x, d + 2 * i, 8);
			x = pg_ntoh64(x);
			r0 = (x >> 48) >> nbits;
			r1 = ((x >> 32) & 0xffff) >> nbits;
			r2 = ((x >> 16) & 0xffff) >> nbits;
			r3 = (x & 0xffff) >> nbits;
			bad |= ~((x & vmask4) + UINT64CONST(0x7fff7fff7fff7fff)) &
				UINT64CONST(0x8000800080008000);
			bad |= (uint64) ((r0 < prev1) | (r1 <= r0) | (r2 <= r1) | (r3 <= r2));
			prev1 = r3 + 1;
		}
		for (; i < nold; i++)
		{
			uint16		raw;
			uint64		e;

			memcpy(&raw, d + 2 * i, 2);
			e = pg_ntoh16(raw);
			bad |= (uint64) (((e & vmask) == 0) | ((e >> nbits) < prev1));
			prev1 = (e >> nbits) + 1;
		}
		if (bad != 0)
			return false;
	}
	/* one per register, its largest value; where each goes among the entries */
	for (int j = 0; j < *na; j++)
		if (j + 1 == *na || (add[j + 1] >> 8) != (add[j] >> 8))
			add[nu++] = add[j];
	*na = nu;
	pos = palloc(Max(nu, 1) * sizeof(Size));
	nfilled = nold;
	for (int j = 0; j < nu; j++)
	{
		Size		lo = 0;
		Size		hi = nold;

		while (lo < hi)
		{
			Size		mid = lo + (hi - lo) / 2;

			if ((HLL_E16(mid) >> nbits) < (add[j] >> 8))
				lo = mid + 1;
			else
				hi = mid;
		}
		pos[j] = lo;
		if (lo == nold || (HLL_E16(lo) >> nbits) != (add[j] >> 8))
			nfilled++;
	}
	if (!hll_pack_sparse(h->params, nfilled, log2m, nbits, max_sparse, &sparse) || !sparse)
	{
		pfree(pos);
		return false;
	}
	b = hll_new(HLL_SPARSE, h->params, nfilled * 2, &out);
	for (int j = 0; j < nu; j++)
	{
		uint32		reg = add[j] >> 8;
		uint32		v = add[j] & 0xff;

		memcpy(out, d + 2 * from, 2 * (pos[j] - from));
		out += 2 * (pos[j] - from);
		from = pos[j];
		if (from < nold && (HLL_E16(from) >> nbits) == reg)
		{
			v = Max(v, HLL_E16(from) & vmask);
			from++;
		}
		out[0] = (uint8) ((reg << nbits | v) >> 8);
		out[1] = (uint8) (reg << nbits | v);
		out += 2;
	}
	memcpy(out, d + 2 * from, 2 * (nold - from));
#undef HLL_E16
	pfree(pos);
	*result = PointerGetDatum(b);
	return true;
}

/*
 * The union of a SPARSE hll and hashes without a register array: its
 * entries (read as hll_registers reads them, false for bytes it would not
 * take) merged with the hashes' (register, value), the larger value where
 * both set a register, then packed: SPARSE from the entries, FULL from
 * registers made of them.  False also when the choice is unknown.
 */
static bool
hll_sparse_union(const HllBytes *h, const Datum *hashes, int n, int log2m, int nbits,
				 int max_sparse, Datum *result)
{
	int			chunk = log2m + nbits;
	Size		nold = h->size * 8 / chunk;
	uint32		vmask = (1U << nbits) - 1;
	uint32	   *add = palloc(n * sizeof(uint32));
	uint32	   *ent = palloc((nold + n) * sizeof(uint32));
	int			na = 0;
	int			j = 0;
	Size		ne = 0;
	HllBitReader r = {h->data, 0, 0};
	int64		last = -1;
	bool		sparse;

	if (h->size * 8 - nold * chunk >= 8)
		return false;
	/* the hashes' (register << 8 | value), sorted: a register's largest value last */
	for (int i = 0; i < n; i++)
	{
		uint8		p;
		uint32		ndx = hll_hash_register((uint64) DatumGetInt64(hashes[i]), log2m, nbits, &p);

		if (p != 0)
			add[na++] = ndx << 8 | p;
	}
	if (na > 1)
		sort_uint32(add, na);
	if (chunk == 16 &&
		hll_sparse16_union(h, add, &na, log2m, nbits, max_sparse, result))
		return true;
	for (Size i = 0; i <= nold; i++)
	{
		uint32		ndx = UINT32_MAX;
		uint32		v = 0;

		if (i < nold)
		{
			v = hll_get_bits(&r, chunk);
			ndx = v >> nbits;
			v &= vmask;
			if ((int64) ndx <= last)
				return false;
			last = ndx;
		}
		/* the hashes' registers before this one, then this one's */
		for (; j < na && (add[j] >> 8) <= ndx; j++)
		{
			if (j + 1 < na && (add[j + 1] >> 8) == (add[j] >> 8))
				continue;
			if ((add[j] >> 8) == ndx)
				v = Max(v, add[j] & 0xff);
			else
				ent[ne++] = (add[j] >> 8) << nbits | (add[j] & 0xff);
		}
		if (i < nold && v != 0)
			ent[ne++] = ndx << nbits | v;
	}
	if (!hll_pack_sparse(h->params, ne, log2m, nbits, max_sparse, &sparse))
		return false;
	if (sparse)
		*result = hll_pack_entries(h->params, ent, ne, log2m, nbits);
	else
	{
		uint8	   *regs = palloc0((Size) 1 << log2m);

		for (Size i = 0; i < ne; i++)
			regs[ent[i] >> nbits] = (uint8) (ent[i] & vmask);
		*result = hll_pack_full(h->params, regs, log2m, nbits);
		pfree(regs);
	}
	pfree(add);
	pfree(ent);
	return true;
}

/*
 * hll_union(old, the hll of hashes) in C, byte for byte (see above): hashes
 * (n > 0 int8 Datums) sorted as signed, each once, or none (n = 0: the
 * hll of a group whose only value is NULL, hll_empty()); old an hll of
 * fmt's parameters.  False, *result unset, when it is left to hll_union.
 */
bool
ek_hll_union_hashes(const EkHllFormat *fmt, Datum old, const Datum *hashes, int n,
					int max_sparse, Datum *result)
{
	HllBytes	h;
	int			nbits;
	int			log2m;
	int			expcode;
	int64		expval;
	uint8	   *regs;
	Datum	   *merged = NULL;
	int			k = 0;
	bool		ok;

	if (n < 0 || fmt->explicit_max <= 0 || !hll_read(old, &h) ||
		h.params[0] != fmt->header[1] || h.params[1] != fmt->header[2] ||
		(h.params[1] & 0x80) != 0)
		return false;
	nbits = (h.params[0] >> 5) + 1;
	log2m = h.params[0] & 0x1f;
	expcode = h.params[1] & 0x3f;
	if (log2m > HLL_MAX_LOG2M)
		return false;
	if (expcode == 63)
		expval = (((int64) nbits << log2m) + 7) / 8 / 8;
	else if (expcode == 0)
		expval = 0;
	else
		expval = INT64CONST(1) << Min(expcode - 1, 62);
	if (expval != fmt->explicit_max)
		return false;			/* above what hll.c writes as EXPLICIT */

	if (h.type == HLL_EMPTY && n == 0)
	{
		*result = old;			/* two EMPTY hlls: the same */
		return true;
	}
	if (h.type == HLL_EMPTY && n <= expval)
	{
		*result = ek_hll_explicit(fmt, hashes, n);
		return true;
	}
	if (h.type == HLL_EXPLICIT)
	{
		/* the sorted union of both, EXPLICIT while it holds expval hashes */
		Size		nold = h.size / 8;
		Size		i = 0;
		int			j = 0;

		if (nold > (Size) expval)
			return false;
		merged = palloc((nold + n) * sizeof(Datum));
		while (i < nold || j < n)
		{
			int64		x;

			if (j >= n || (i < nold && hll_hash_at(&h, i) <= DatumGetInt64(hashes[j])))
			{
				x = hll_hash_at(&h, i++);
				if (j < n && x == DatumGetInt64(hashes[j]))
					j++;
			}
			else
				x = DatumGetInt64(hashes[j++]);
			merged[k++] = Int64GetDatum(x);
		}
		if (k <= expval)
		{
			*result = ek_hll_explicit(fmt, merged, k);
			pfree(merged);
			return true;
		}
	}

	if (h.type == HLL_SPARSE)
		return hll_sparse_union(&h, hashes, n, log2m, nbits, max_sparse, result);

	/* registers: old's (FULL; none when EMPTY or EXPLICIT), raised by the hashes */
	regs = palloc0((Size) 1 << log2m);
	if (h.type == HLL_FULL && !hll_registers(&h, regs, log2m, nbits))
	{
		pfree(regs);
		return false;
	}
	if (merged != NULL)
	{
		for (int i = 0; i < k; i++)
			hll_register_add(regs, log2m, nbits, (uint64) DatumGetInt64(merged[i]));
		pfree(merged);
	}
	else
		for (int i = 0; i < n; i++)
			hll_register_add(regs, log2m, nbits, (uint64) DatumGetInt64(hashes[i]));
	ok = hll_pack_registers(h.params, regs, log2m, nbits, max_sparse, result);
	pfree(regs);
	return ok;
}

PG_FUNCTION_INFO_V1(eventkit_rollup_hll_union_hashes);

/*
 * eventkit_internal.rollup_hll_union_hashes(old anyelement, hashes bigint[],
 * empty anyelement) RETURNS anyelement, for tests only (sql/rollup_hll_merge.sql):
 * what the refresh's merge writes for a rollup row's hll old and a group's
 * hashes (NULLs left out: NULLs alone are an EMPTY hll's; none: NULL), with the parameters of empty
 * (hll_empty(...)) and the session's max_sparse; NULL when the merge
 * leaves it to hll_union.
 */
Datum
eventkit_rollup_hll_union_hashes(PG_FUNCTION_ARGS)
{
	Datum		old = PG_GETARG_DATUM(0);
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
	Datum		empty = PG_GETARG_DATUM(2);
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	HeapTuple	tup;
	char	   *nsp;
	EkHllFormat fmt;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			n = 0;
	Datum		result;

	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	nsp = get_namespace_name(((Form_pg_type) GETSTRUCT(tup))->typnamespace);
	ReleaseSysCache(tup);
	if (!ek_hll_format(empty, &fmt))
		PG_RETURN_NULL();
	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
		if (!nulls[i])
			elems[n++] = elems[i];
	n = ek_hll_distinct(elems, n);
	if (nelems == 0 ||
		!ek_hll_union_hashes(&fmt, old, elems, n,
							 ek_hll_max_sparse(nsp),
							 &result))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
