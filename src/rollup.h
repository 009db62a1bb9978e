/*-------------------------------------------------------------------------
 *
 * rollup.h
 *	  Declarations shared by src/rollup.c (catalog, watermark, entry points)
 *	  and src/rollup_sql.c (definition parsing and SQL generation).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_ROLLUP_H
#define EVENTKIT_ROLLUP_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "utils/array.h"
#include "utils/relcache.h"

typedef enum RollupMeasureKind
{
	RM_COUNT,
	RM_SUM,
	RM_MIN,
	RM_MAX,
	RM_AVG,
	RM_DISTINCT,
	RM_PERCENTILE
} RollupMeasureKind;

/* One dimension: a stream column or a JSON path into a jsonb column. */
typedef struct RollupDim
{
	char	   *name;			/* output column name (unquoted) */
	char	   *expr;			/* SQL over alias s */
	char	   *typname;		/* SQL type of expr */
	Oid			typid;			/* type of expr (text for a JSON path) */
} RollupDim;

/*
 * What the fold (rollup_fold.c) reads from a stream row for its measures:
 * a column cast to numeric, a jsonb column whose JSON path is followed in C,
 * or a text value (distinct).  Shared by the measures that read the same.
 */
typedef enum RollupSourceKind
{
	RS_NUMERIC,					/* sql is numeric */
	RS_JSON_NUMBER,				/* sql is a jsonb column, keys the path */
	RS_TEXT						/* sql is text */
} RollupSourceKind;

typedef struct RollupSource
{
	RollupSourceKind kind;
	char	   *sql;			/* SQL over alias s */
	List	   *keys;			/* RS_JSON_NUMBER: JSON path keys (char *) */
	char	   *ident;			/* identity, to share a source */
} RollupSource;

/* One measure and the partial state(s) it keeps. */
typedef struct RollupMeasure
{
	RollupMeasureKind kind;
	char	   *name;			/* output column name (unquoted) */
	char	   *value;			/* numeric (or text for distinct) value over s */
	char	   *skip;			/* true when the value is present but not a number */
	double		q;				/* percentile fraction */
	int			source;			/* index into def->sources, -1 for count */
} RollupMeasure;

/* A parsed rollup definition. */
typedef struct RollupDef
{
	int32		rollup_id;
	Oid			relid;			/* the rollup table (InvalidOid while creating) */
	Oid			stream_relid;
	int32		stream_id;
	Interval	bucket;
	List	   *dims;			/* of RollupDim * */
	List	   *measures;		/* of RollupMeasure * */
	List	   *inner_exprs;	/* JSON values extracted once per row (char *) */
	List	   *sources;		/* of RollupSource *: what the fold reads */
	char	   *hll_schema;		/* quoted, NULL if not needed */
	char	   *hll_nsp;		/* unquoted */
	char	   *tdigest_schema; /* quoted, NULL if not needed */
} RollupDef;

#define EK_ROLLUP_SKIPPED_COLUMN "skipped_events"

/* the delta table of a rollup: "<rollup table>_delta", with these columns first */
#define EK_ROLLUP_DELTA_SUFFIX "_delta"
#define EK_ROLLUP_DELTA_EVENTS_COLUMN "ek_events"

/* rollup_sql.c */
extern void ek_rollup_parse(RollupDef *def, Datum dimensions, Datum measures);
extern void ek_rollup_check_bucket(const Interval *bucket);
extern char *ek_rollup_table_sql(const RollupDef *def, const char *qtable,
								 const char *keyname);
extern char *ek_rollup_view_sql(const RollupDef *def, const char *qview,
								const char *qtable);
extern char *ek_rollup_bucket_expr(const Interval *b);
extern void ek_rollup_append_state_columns(StringInfo buf, const RollupDef *def,
										   const char *prefix);
extern void ek_rollup_append_merge(StringInfo buf, const RollupDef *def);
extern char *ek_rollup_delta_table_sql(const RollupDef *def, const char *qdelta);

/* rollup_fold.c */
extern int64 ek_rollup_fold(const RollupDef *def, const char *qtable,
							const char *keyname, int64 from, int64 to,
							ArrayType *batches);
extern char *ek_rollup_source_sql(const RollupDef *def, const char *from);
extern int64 ek_rollup_fold_deltas(const RollupDef *def, const char *qtable,
								   const char *keyname, const char *qdelta,
								   int64 from, int64 to, ArrayType *uncovered);
extern void ek_rollup_fold_delta(const RollupDef *def, const char *qdelta, int64 batch_id,
								 SPIPlanPtr source, ParamListInfo params,
								 SPIPlanPtr *merge_plan);

/* rollup_delta.c */
extern Oid	ek_rollup_delta_relid(Oid rollup_relid);
extern int64 ek_rollup_merge_deltas(const RollupDef *def, const char *qtable,
									const char *keyname, Oid delta, int64 from, int64 to);
/* fills cols[c][i], nulls[c][i] for the writer's columns c and events i */
typedef void (*EkBatchColumnsFn) (void *arg, Datum **cols, bool **nulls);
extern void ek_rollup_write_deltas(Relation rel, int32 stream_id, const char *const *names,
								   const Oid *types, int ncols, EkBatchColumnsFn columns,
								   void *columns_arg, int n, int64 batch_id);

#endif							/* EVENTKIT_ROLLUP_H */
