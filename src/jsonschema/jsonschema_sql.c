/*-------------------------------------------------------------------------
 *
 * jsonschema_sql.c
 *	  SQL entry points of the JSON Schema validator
 *	  (eventkit.schema_valid, eventkit.schema_errors) and the per-backend
 *	  cache of compiled schemas they share, keyed by the schema's bytes.
 *	  Also, for the tests, a round trip through the validator's raw jsonb
 *	  readers (eventkit_internal.jsonb_raw_roundtrip).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "jsonschema.h"
#include "jsonschema_int.h"

/*
 * The cache: a few slots, each a compiled schema in its own memory
 * context under CacheMemoryContext, with a copy of the schema's bytes.
 * When full, the least recently used slot is replaced.
 */
#define EK_SCHEMA_CACHE_SLOTS 64
#define EK_SCHEMA_CACHE_MAX_BYTES (1024 * 1024)	/* larger: not kept */

typedef struct SchemaSlot
{
	uint64		id;				/* 0 = empty; changes when reused */
	uint32		hash;
	Size		len;
	char	   *bytes;			/* the schema's varlena, copied */
	EkSchema   *schema;
	MemoryContext cxt;
	uint64		last_used;
} SchemaSlot;

static SchemaSlot slots[EK_SCHEMA_CACHE_SLOTS];
static uint64 slot_ids = 0;
static uint64 use_clock = 0;

/* What a call site (fn_extra) remembers of its last schema. */
typedef struct CallCache
{
	int			slot;
	uint64		id;
	Datum		raw;			/* the argument as passed, before detoasting */
	bool		stable;			/* the argument is a Const */
} CallCache;

static EkSchema *
compile_into_slot(Jsonb *schema, uint32 hash, int *slotno)
{
	int			i,
				victim = -1;
	SchemaSlot *s;
	MemoryContext cxt;
	MemoryContext old;
	EkSchema   *compiled;
	Size		len = VARSIZE(schema);

	cxt = AllocSetContextCreate(CacheMemoryContext, "eventkit compiled schema",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		compiled = ek_schema_compile(schema);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	for (i = 0; i < EK_SCHEMA_CACHE_SLOTS; i++)
	{
		if (slots[i].id == 0)
		{
			victim = i;
			break;
		}
		if (victim < 0 || slots[i].last_used < slots[victim].last_used)
			victim = i;
	}
	s = &slots[victim];
	if (s->id != 0)
		MemoryContextDelete(s->cxt);
	s->id = ++slot_ids;
	s->hash = hash;
	s->len = len;
	s->bytes = MemoryContextAlloc(cxt, len);
	memcpy(s->bytes, schema, len);
	s->schema = compiled;
	s->cxt = cxt;
	s->last_used = ++use_clock;
	*slotno = victim;
	return compiled;
}

/*
 * Whether argument argnum of the call is a Const: then the Datum passed is
 * the same pointer, with the same bytes, on every call through this
 * FmgrInfo.  (A Param is not enough: PL/pgSQL re-evaluates one expression
 * state with different values.)
 */
static bool
arg_is_const(FmgrInfo *flinfo, int argnum)
{
	Node	   *expr = flinfo->fn_expr;
	List	   *args;

	if (expr == NULL)
		return false;
	if (IsA(expr, FuncExpr))
		args = ((FuncExpr *) expr)->args;
	else if (IsA(expr, OpExpr))
		args = ((OpExpr *) expr)->args;
	else
		return false;
	if (argnum >= list_length(args))
		return false;
	return IsA(list_nth(args, argnum), Const);
}

/* The compiled form of the schema argument (argument 0). */
static pg_noinline const EkSchema *
schema_from_arg_slow(FunctionCallInfo fcinfo)
{
	CallCache  *cc = fcinfo->flinfo->fn_extra;
	Datum		raw = PG_GETARG_DATUM(0);
	Jsonb	   *schema;
	uint32		hash;
	Size		len;
	int			i;

	if (cc == NULL)
	{
		cc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallCache));
		cc->slot = -1;
		cc->stable = arg_is_const(fcinfo->flinfo, 0);
		fcinfo->flinfo->fn_extra = cc;
	}

	/* the same constant as last time */
	if (cc->slot >= 0 && cc->stable && cc->raw == raw &&
		slots[cc->slot].id == cc->id)
	{
		slots[cc->slot].last_used = ++use_clock;
		return slots[cc->slot].schema;
	}

	schema = PG_GETARG_JSONB_P(0);
	len = VARSIZE(schema);

	/* the same bytes as last time */
	if (cc->slot >= 0 && slots[cc->slot].id == cc->id &&
		slots[cc->slot].len == len &&
		memcmp(slots[cc->slot].bytes, schema, len) == 0)
	{
		cc->raw = raw;
		slots[cc->slot].last_used = ++use_clock;
		return slots[cc->slot].schema;
	}

	hash = hash_bytes((const unsigned char *) schema, len);
	for (i = 0; i < EK_SCHEMA_CACHE_SLOTS; i++)
	{
		SchemaSlot *s = &slots[i];

		if (s->id != 0 && s->hash == hash && s->len == len &&
			memcmp(s->bytes, schema, len) == 0)
		{
			s->last_used = ++use_clock;
			cc->slot = i;
			cc->id = s->id;
			cc->raw = raw;
			return s->schema;
		}
	}

	if (len > EK_SCHEMA_CACHE_MAX_BYTES)
	{
		/* too big to keep: compile for this call site only */
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		EkSchema   *compiled = ek_schema_compile(schema);

		MemoryContextSwitchTo(old);
		cc->slot = -1;
		return compiled;
	}

	{
		int			slotno;
		EkSchema   *compiled = compile_into_slot(schema, hash, &slotno);

		cc->slot = slotno;
		cc->id = slots[slotno].id;
		cc->raw = raw;
		return compiled;
	}
}

/* The same, with the common case (the same constant again) inline. */
static inline const EkSchema *
schema_from_arg(FunctionCallInfo fcinfo)
{
	CallCache  *cc = fcinfo->flinfo->fn_extra;

	if (likely(cc != NULL) && cc->slot >= 0 && cc->stable &&
		cc->raw == PG_GETARG_DATUM(0) && slots[cc->slot].id == cc->id)
	{
		slots[cc->slot].last_used = ++use_clock;
		return slots[cc->slot].schema;
	}
	return schema_from_arg_slow(fcinfo);
}

PG_FUNCTION_INFO_V1(eventkit_schema_valid);

/* eventkit.schema_valid(schema jsonb, instance jsonb) RETURNS boolean */
Datum
eventkit_schema_valid(PG_FUNCTION_ARGS)
{
	const EkSchema *schema = schema_from_arg(fcinfo);
	Jsonb	   *instance = PG_GETARG_JSONB_P(1);

	PG_RETURN_BOOL(ek_schema_validate(schema, instance, NULL, NULL));
}

PG_FUNCTION_INFO_V1(eventkit_schema_errors);

/* eventkit.schema_errors(schema jsonb, instance jsonb) RETURNS jsonb */
Datum
eventkit_schema_errors(PG_FUNCTION_ARGS)
{
	const EkSchema *schema = schema_from_arg(fcinfo);
	Jsonb	   *instance = PG_GETARG_JSONB_P(1);
	List	   *errors = NIL;

	ek_schema_validate(schema, instance, NULL, &errors);
	PG_RETURN_JSONB_P(ek_schema_errors_jsonb(errors));
}

/* ---------------------------------------------------------------------
 * For the tests: the raw jsonb readers, round trip
 * ---------------------------------------------------------------------
 */

static JsonbValue *roundtrip_container(JsonbParseState **st, JsonbContainer *c, bool *same);

/* A scalar read by the raw readers, as a JsonbValue. */
static void
roundtrip_scalar(const EkVal *v, JsonbValue *jv)
{
	switch (v->kind)
	{
		case EKT_STRING:
			jv->type = jbvString;
			jv->val.string.val = (char *) v->str;
			jv->val.string.len = v->len;
			break;
		case EKT_NUMBER:
			jv->type = jbvNumeric;
			jv->val.numeric = v->num;
			break;
		case EKT_BOOLEAN:
			jv->type = jbvBool;
			jv->val.boolean = v->b;
			break;
		default:
			jv->type = jbvNull;
			break;
	}
}

/* A value read by the raw readers, pushed as tok (WJB_VALUE or WJB_ELEM). */
static void
roundtrip_value(JsonbParseState **st, const EkVal *v, JsonbIteratorToken tok, bool *same)
{
	JsonbValue	jv;

	if (v->kind == EKT_OBJECT || v->kind == EKT_ARRAY)
		(void) roundtrip_container(st, v->cont, same);
	else
	{
		roundtrip_scalar(v, &jv);
		pushJsonbValue(st, tok, &jv);
	}
}

/*
 * Push container c as the raw readers (jsonschema_int.h) read it: keys in
 * order with read_key, values and elements with read_child; every object
 * value is also looked up with ek_object_lookup (the validator's binary
 * search), which must find the very same bytes (else *same is cleared).
 * Returns what pushJsonbValue returns for the container's end.
 */
static JsonbValue *
roundtrip_container(JsonbParseState **st, JsonbContainer *c, bool *same)
{
	int			n = JsonContainerSize(c);
	const char *base = container_base(c);
	uint32		off = 0;
	int			i;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (!JsonContainerIsObject(c))
	{
		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
		{
			EkVal		v;

			memset(&v, 0, sizeof(v));
			read_child(c, base, i, &off, &v);
			roundtrip_value(st, &v, WJB_ELEM, same);
		}
		return pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	else
	{
		uint32		voff = child_offset(c, n);

		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i < n; i++)
		{
			JsonbValue	k;
			const char *kstr;
			int			klen;
			EkVal		v,
						found;

			memset(&v, 0, sizeof(v));
			memset(&found, 0, sizeof(found));
			read_key(c, base, i, &off, &kstr, &klen);
			read_child(c, base, n + i, &voff, &v);
			if (!ek_object_lookup(c, kstr, klen, &found) || found.kind != v.kind ||
				found.str != v.str || found.len != v.len ||
				(v.kind == EKT_BOOLEAN && found.b != v.b) ||
				(v.kind == EKT_NUMBER && found.num != v.num) ||
				((v.kind == EKT_OBJECT || v.kind == EKT_ARRAY) && found.cont != v.cont))
				*same = false;
			k.type = jbvString;
			k.val.string.val = (char *) kstr;
			k.val.string.len = klen;
			pushJsonbValue(st, WJB_KEY, &k);
			roundtrip_value(st, &v, WJB_VALUE, same);
		}
		return pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
}

PG_FUNCTION_INFO_V1(eventkit_jsonb_raw_roundtrip);

/*
 * eventkit_internal.jsonb_raw_roundtrip(jsonb) RETURNS boolean: whether
 * the value the raw readers see, written again by PostgreSQL's jsonb
 * writer, is byte for byte the input (and every object value the binary
 * search finds is the one read in order).
 */
Datum
eventkit_jsonb_raw_roundtrip(PG_FUNCTION_ARGS)
{
	Jsonb	   *in = PG_GETARG_JSONB_P(0);
	EkVal		root;
	bool		same = true;
	Jsonb	   *out;

	memset(&root, 0, sizeof(root));
	root_value(in, &root);
	if (root.kind == EKT_OBJECT || root.kind == EKT_ARRAY)
	{
		JsonbParseState *st = NULL;

		out = JsonbValueToJsonb(roundtrip_container(&st, root.cont, &same));
	}
	else
	{
		JsonbValue	jv;

		/* PostgreSQL writes a scalar as a one-element raw scalar array */
		roundtrip_scalar(&root, &jv);
		out = JsonbValueToJsonb(&jv);
	}
	PG_RETURN_BOOL(same && VARSIZE(out) == VARSIZE(in) &&
				   memcmp(out, in, VARSIZE(in)) == 0);
}
