/*-------------------------------------------------------------------------
 *
 * hll_hash.c
 *	  What a realtime view and a refresh need of the hll library without
 *	  loading it: the library's hash of a text, computed by eventkit
 *	  (eventkit.rollup_hash_text(value) = hll_hash_text(value, 0), as a
 *	  bigint, 1.12); its max_sparse, a per-session setting the
 *	  refresh's merge asks it (ek_hll_max_sparse), known without asking
 *	  while the library is not loaded in this backend (its default, -1:
 *	  ek_hll_session_max_sparse), so that hll.c writes a large tail
 *	  group's hll without loading it; and, likewise, its hll_empty() while
 *	  the library is not loaded (its defaults: ek_hll_session_empty), the
 *	  parameters of the hlls the refresh's merge writes (1.13).
 *
 *	  Why.  A realtime view that calls any function of the hll library
 *	  makes every new session that reads it load that library first
 *	  (dlopen: mmap, relocations, page faults): on the 1M-event bench's
 *	  data, 39 of a session's first realtime query's 1,394 minor faults
 *	  and about 1 ms of its 71 ms of CPU (docs/performance.md, "A
 *	  session's first realtime query and refresh (1.12)").  Its tail
 *	  called two: hll_hash_text on every row and hll_empty() (folded when
 *	  planning).  With this function and the empty hll written into the
 *	  view as a constant (definition_sql.c), hll.c looking up hll_union
 *	  and hll_cardinality only when it needs them and writing a tail group
 *	  of more hashes than an EXPLICIT hll holds in C, the view's common
 *	  path runs no code of the hll library.
 *
 *	  What.  hll_hash_text is the hll library's hll_hash_varlena: the first
 *	  64 bits of MurmurHash3_x64_128 (Austin Appleby's, placed in the
 *	  public domain) of the text's bytes, with the seed.  Written here from
 *	  that algorithm, reading each 8-byte block in the machine's byte order
 *	  as the library does.  sql/rollup_realtime.sql compares it with
 *	  hll_hash_text on texts of every length from 0 to 80 bytes and on
 *	  multibyte ones.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <link.h>

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "rollup/hll.h"
#include "util/compat.h"
#include "util/murmur3.h"

PG_FUNCTION_INFO_V1(eventkit_rollup_hash_text);

#define MURMUR3_C1 UINT64CONST(0x87c37b91114253d5)
#define MURMUR3_C2 UINT64CONST(0x4cf5ad432745937f)

/* MurmurHash3_x64_128's mixing of a block's first and second words */
static inline uint64
mix_k1(uint64 k1)
{
	return ek_rotl64(k1 * MURMUR3_C1, 31) * MURMUR3_C2;
}

static inline uint64
mix_k2(uint64 k2)
{
	return ek_rotl64(k2 * MURMUR3_C2, 33) * MURMUR3_C1;
}

/*
 * The first 64 bits of MurmurHash3_x64_128 of len bytes at data with seed,
 * as the hll library's hll_hash_* functions return them.
 */
int64
ek_hll_hash_bytes(const char *data, int len, uint32 seed)
{
	const unsigned char *tail = (const unsigned char *) data + (len / 16) * 16;
	int			rest = len & 15;
	uint64		h1 = seed;
	uint64		h2 = seed;
	uint64		k1 = 0;
	uint64		k2 = 0;

	for (int i = 0; i < len / 16; i++)
	{
		memcpy(&k1, data + i * 16, 8);
		memcpy(&k2, data + i * 16 + 8, 8);

		h1 ^= mix_k1(k1);
		h1 = ek_rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;

		h2 ^= mix_k2(k2);
		h2 = ek_rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}

	/* the last len % 16 bytes: bytes 9 to 15 into k2, 1 to 8 into k1 */
	k1 = 0;
	k2 = 0;
	for (int i = rest; i > 8; i--)
		k2 ^= ((uint64) tail[i - 1]) << ((i - 9) * 8);
	if (rest > 8)
		h2 ^= mix_k2(k2);
	for (int i = Min(rest, 8); i > 0; i--)
		k1 ^= ((uint64) tail[i - 1]) << ((i - 1) * 8);
	if (rest > 0)
		h1 ^= mix_k1(k1);

	h1 ^= (uint64) len;
	h2 ^= (uint64) len;
	h1 += h2;
	h2 += h1;
	h1 = ek_fmix64(h1);
	h2 = ek_fmix64(h2);
	h1 += h2;
	return (int64) h1;
}

/*
 * eventkit.rollup_hash_text(value text) RETURNS bigint: hll_hash_text(value,
 * 0) as a bigint (what eventkit.rollup_hll takes in its array).
 */
Datum
eventkit_rollup_hash_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_INT64(ek_hll_hash_bytes(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 0));
}

/*
 * dl_iterate_phdr's callback: is this loaded object's file named arg
 * ("/name.so")?
 */
static int
is_loaded_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *suffix = arg;
	size_t		n = info->dlpi_name ? strlen(info->dlpi_name) : 0;
	size_t		m = strlen(suffix);

	return n >= m && strcmp(info->dlpi_name + n - m, suffix) == 0;
}

/*
 * Is the library of C function fn (the hll library's) loaded in this
 * backend?  Looked for among the loaded objects (dl_iterate_phdr, which
 * reads each object's name as the dynamic loader keeps it) by the file
 * name of its "$libdir/name" probin, whatever directory it was loaded
 * from (an object of that name elsewhere counts as loaded: the library
 * is then asked, which is never wrong); nothing is loaded.
 * (dlopen with RTLD_NOLOAD, or dlsym, reads the objects' dynamic sections
 * and symbol tables, which a new backend has not touched: about 45 of the
 * 700 minor page faults of a new session's first refresh at 1M events,
 * docs/performance.md.)  True (loaded, or not known: ask the library) for
 * any other probin.
 */
static bool
hll_library_loaded(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Datum		probin;
	bool		isnull;
	char	   *lib;

	if (!HeapTupleIsValid(tup))
		return true;
	probin = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_probin, &isnull);
	lib = isnull ? NULL : TextDatumGetCString(probin);
	ReleaseSysCache(tup);
	if (lib == NULL || strncmp(lib, "$libdir/", 8) != 0 || strchr(lib + 8, '/') != NULL)
		return true;
	return dl_iterate_phdr(is_loaded_object, psprintf("/%s%s", lib + 8, DLSUFFIX)) != 0;
}

/*
 * The hll extension's max_sparse in this session (hll.c, at ek_hll_union_hashes), asked of
 * nsp.hll_set_max_sparse(integer) and set back; EK_HLL_MAX_SPARSE_UNKNOWN
 * when the function is missing or the user may not execute it.
 */
int
ek_hll_max_sparse(const char *nsp)
{
	Oid			argtypes[1] = {INT4OID};
	Oid			fn;
	int32		old;

	fn = LookupFuncName(list_make2(makeString(pstrdup(nsp)), makeString("hll_set_max_sparse")),
						1, argtypes, true);
	if (!OidIsValid(fn) || get_func_rettype(fn) != INT4OID ||
		ek_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		return EK_HLL_MAX_SPARSE_UNKNOWN;
	old = DatumGetInt32(OidFunctionCall1(fn, Int32GetDatum(-1)));
	if (old != -1)
		(void) OidFunctionCall1(fn, Int32GetDatum(old));
	return old < -1 ? EK_HLL_MAX_SPARSE_UNKNOWN : old;
}

/*
 * The hll library's defaults (its DEFAULT_LOG2M, DEFAULT_REGWIDTH,
 * DEFAULT_EXPTHRESH -1 written as 63, DEFAULT_SPARSEON): what its
 * hll_empty() takes while a session has not changed them with
 * hll_set_defaults, which loads the library.
 */
#define HLL_DEFAULT_LOG2M 11
#define HLL_DEFAULT_REGWIDTH 5
#define HLL_DEFAULT_EXPTHRESH_CODE 63
#define HLL_DEFAULT_SPARSEON 1

/*
 * hll_empty() (log2m > 0: hll_empty(log2m)), the function empty_fn, as it
 * returns in this session: an EMPTY hll (schema version 1: its type, then
 * the register width and log2m, then sparseon and the encoded expthresh)
 * written here from the library's defaults while the library is not loaded
 * in this backend (so that a refresh does not load it), else called.  A
 * log2m outside the rollups' 4 to 17 is left to the function.
 */
Datum
ek_hll_session_empty(Oid empty_fn, int log2m)
{
	if ((log2m == 0 || (log2m >= 4 && log2m <= 17)) && !hll_library_loaded(empty_fn))
	{
		bytea	   *b = palloc(VARHDRSZ + 3);
		uint8	   *h = (uint8 *) VARDATA(b);

		SET_VARSIZE(b, VARHDRSZ + 3);
		h[0] = 0x11;			/* version 1, EMPTY */
		h[1] = (uint8) (((HLL_DEFAULT_REGWIDTH - 1) << 5) |
						(log2m > 0 ? log2m : HLL_DEFAULT_LOG2M));
		h[2] = (uint8) ((HLL_DEFAULT_SPARSEON << 6) | HLL_DEFAULT_EXPTHRESH_CODE);
		return PointerGetDatum(b);
	}
	return log2m > 0 ? OidFunctionCall1(empty_fn, Int32GetDatum(log2m)) :
		OidFunctionCall0(empty_fn);
}

/*
 * The hll library's max_sparse in this session: -1, its default, while the
 * library is not loaded (so that asking does not load it), else asked
 * (ek_hll_max_sparse).
 */
int
ek_hll_session_max_sparse(const char *nsp)
{
	Oid			argtypes[1] = {INT4OID};
	Oid			fn = LookupFuncName(list_make2(makeString(pstrdup(nsp)), makeString("hll_set_max_sparse")),
									1, argtypes, true);

	if (OidIsValid(fn) && !hll_library_loaded(fn))
		return -1;
	return ek_hll_max_sparse(nsp);
}
