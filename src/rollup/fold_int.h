/*-------------------------------------------------------------------------
 *
 * fold_int.h
 *	  The fold's internals, shared by fold.c (reading and aggregating rows),
 *	  fold_merge.c (writing a fold's groups: the merge statement) and
 *	  fold_write.c (writing a fold's groups without a statement).  Private
 *	  to the fold: other files include fold.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_FOLD_INT_H
#define EK_ROLLUP_FOLD_INT_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/dest.h"
#include "utils/hsearch.h"
#include "utils/numeric.h"

#include "rollup/hll.h"
#include "rollup/rollup.h"
#include "rollup/values.h"

/* A growing array of values: hll hashes (int8) or percentile values (float8). */
typedef struct FoldValues
{
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			cap;
	bool		hasnull;		/* distinct: a NULL value was seen (not kept) */
} FoldValues;

/* One measure's partial state in one group. */
typedef struct FoldState
{
	Numeric		num;			/* sum, avg: the sum; min, max: the extreme */
	int64		count;			/* avg: the values summed */
	FoldValues	vals;			/* distinct, percentile */
} FoldState;

typedef struct FoldGroup
{
	struct FoldGroup *next;		/* next group with the same hash */
	int64		events;
	int64		skipped;		/* events with a skipped value */
	int64		skips[RSK_NREASONS];	/* values skipped, dimensions bounded */
	Datum	   *keys;			/* [0] the bucket, [1 + i] dimension i */
	bool	   *keynulls;
	bool		merged;			/* fold_write.c's merge: done */
	FoldState	states[FLEXIBLE_ARRAY_MEMBER];	/* one per measure */
} FoldGroup;

typedef struct FoldHashEntry
{
	uint32		hash;			/* hash key */
	FoldGroup  *first;
} FoldHashEntry;

/* A group key column's type. */
typedef struct FoldKeyType
{
	int16		typlen;
	bool		typbyval;
	Oid			collation;
	FmgrInfo   *hash;			/* NULL: none, groups found by equality alone */
	FmgrInfo	eq;
} FoldKeyType;

/* A source's value in the current row. */
typedef struct FoldInput
{
	bool		isnull;			/* no number: NULL, JSON null, missing, skip */
	bool		skip;			/* present but not a JSON number */
	Datum		value;			/* numeric or text */
} FoldInput;

typedef struct Fold
{
	DestReceiver pub;			/* first: what the executor calls */
	const RollupDef *def;
	int			nkeys;			/* 1 + dimensions */
	int			nmeasures;
	int			nsources;
	RollupMeasure **measures;
	RollupSource **sources;
	FoldKeyType *keytypes;
	bool	   *bounded;		/* per key: a bounded text dimension */
	Datum	   *keybuf;			/* a row's keys, when one is bounded */
	RollupPathKey **paths;		/* per source: its JSON path (RS_JSON_NUMBER) */
	int		   *npaths;
	bool		hll_ready;		/* hll_format is set (ek_fold_init_hll) */
	EkHllFormat hll_format;		/* the rollup's EXPLICIT hlls (hll.c) */
	Oid			hll_empty_fn;	/* hll_empty() as the format was read */
	Datum		hll_empty;		/* what it returns in this session (in keepcxt) */
	FoldInput  *inputs;			/* per source, in the current row */
	HTAB	   *groups;
	FoldGroup **order;			/* groups in creation order */
	int			ngroups;
	int			maxgroups;
	int64		events;
	RollupSkips skips;			/* values skipped, dimensions bounded */
	const char *qtable;			/* the rollup table */
	const char *keyname;		/* its unique key */
	int64		delta_batch;	/* > 0: insert the groups into a delta table */
	bool		reading_deltas; /* the rows are delta rows (delta.c) */
	bool		delta_skips;	/* the delta table has ek_skips */
	SPIPlanPtr *merge_plan;		/* if set: the merge's kept plan (made once) */
	Oid			delta_relid;	/* valid: insert delta rows in C (fold_write.c) */
	const char *delta_key;		/* set: the rows' ek_shard_key (a distributed
								 * worker delta table, delta.c) */
	Size		flush_bytes;	/* merge the groups when they take more */
	/* a refresh reading deltas: their batches and rows (in keepcxt) */
	MemoryContext keepcxt;		/* the caller's: lives as long as the fold */
	int64	   *delta_batches;	/* batch_id of each delta row read, in order */
	ItemPointerData *delta_tids;	/* and its ctid */
	int			ndelta;
	int			maxdelta;
	MemoryContext cxt;			/* groups and their states; reset by a merge */
	MemoryContext rowcxt;		/* reset after each row */
} Fold;
/* fold_merge.c */
extern void ek_fold_merge(Fold *f);

/* fold_write.c */
extern uint32 ek_fold_group_hash(Fold *f, Datum *keys, bool *nulls);
extern bool ek_fold_group_matches(Fold *f, FoldGroup *g, Datum *keys, bool *nulls);
extern FoldGroup *ek_fold_lookup_group(Fold *f, Datum *keys, bool *nulls);
extern void ek_fold_distinct_values(FoldValues *v);
extern void ek_fold_init_hll(Fold *f);
extern bool ek_fold_merge_table(Fold *f);
extern bool ek_fold_delta_insert(Fold *f);
extern bool ek_fold_delete_deltas(Oid relid, ItemPointerData *tids, int n);

#endif							/* EK_ROLLUP_FOLD_INT_H */
