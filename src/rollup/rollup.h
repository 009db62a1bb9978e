/*-------------------------------------------------------------------------
 *
 * rollup.h
 *	  Rollup definitions (definition.c): what a parsed definition holds,
 *	  the rules for bad values that every part of a rollup applies alike,
 *	  and the SQL a definition generates.  Shared by the rollup stages
 *	  (fold.c, delta.c, values.c) and the rollup orchestrators (refresh.c,
 *	  manage.c), which have headers of their own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_ROLLUP_H
#define EVENTKIT_ROLLUP_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "datatype/timestamp.h"
#include "utils/array.h"

#include "catalog/rollups.h"

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

/*
 * Bad values.  A measure's value that is present but unusable is skipped
 * (left out of that measure, the event still counts) and counted by reason;
 * a text dimension value longer than EK_ROLLUP_DIM_MAX_BYTES is replaced by
 * its first EK_ROLLUP_DIM_PREFIX_CHARS characters, EK_ROLLUP_DIM_MARKER and
 * the first 32 hex digits of its SHA-256, then "]" (at most
 * EK_ROLLUP_DIM_MAX_BYTES bytes: bounding a bounded value changes nothing),
 * so that no value can make the rollup's unique key too long.  The names
 * below are the keys of eventkit.rollups.skipped_values, and the order of
 * the delta table's ek_skips array.
 */
typedef enum RollupSkipReason
{
	RSK_NOT_A_NUMBER,			/* not a JSON number (string, boolean, ...), NaN */
	RSK_OUT_OF_RANGE,			/* a number outside the measure's range */
	RSK_DIMENSION_TRUNCATED,	/* a dimension value bounded (not skipped) */
	RSK_NREASONS
} RollupSkipReason;

extern const char *const ek_rollup_skip_reason_names[RSK_NREASONS];

/* counts by reason: values skipped, dimension values truncated */
typedef struct RollupSkips
{
	int64		n[RSK_NREASONS];
} RollupSkips;

#define EK_ROLLUP_DIM_MAX_BYTES 300
#define EK_ROLLUP_DIM_PREFIX_CHARS 64
#define EK_ROLLUP_DIM_MARKER "...[sha256:"

/*
 * In the backfill's SELECT (definition_sql.c), ek_skipped_values counts an
 * event that skips a value EK_SKIP_EVENT_UNIT (2^80, numeric), a value
 * skipped as out_of_range EK_SKIP_RANGE_UNIT (2^40), one skipped as
 * not_a_number 1
 */
#define EK_SKIP_RANGE_UNIT INT64CONST(1099511627776)
#define EK_SKIP_EVENT_UNIT "1208925819614629174706176"

/*
 * The ranges of numeric measures, beyond which a number is skipped as
 * out_of_range.  sum and avg: so that no sum of fewer than 10^72 values can
 * overflow numeric (10^131072); percentile: so that the t-digest's sums of
 * value times count stay finite float8s (for fewer than 10^18 values) and
 * no value is a float8 underflow; min and max: finite.
 */
typedef enum RollupRange
{
	RR_ANY,						/* no check: an integer column */
	RR_FINITE,					/* min, max */
	RR_SUM,						/* sum, avg: |v| < 1e131000 */
	RR_PERCENTILE				/* 0, or 1e-290 <= |v| <= 1e290 */
} RollupRange;

#define EK_ROLLUP_SUM_LIMIT "1e131000"
#define EK_ROLLUP_PERCENTILE_MIN "1e-290"
#define EK_ROLLUP_PERCENTILE_MAX "1e290"

/* One dimension: a stream column or a JSON path into a jsonb column. */
typedef struct RollupDim
{
	char	   *name;			/* output column name (unquoted) */
	char	   *expr;			/* SQL over alias s */
	char	   *typname;		/* SQL type of expr */
	Oid			typid;			/* type of expr (text for a JSON path) */
	bool		bounded;		/* a text value, bounded (see above) */
	char	   *view_expr;		/* in the realtime view: expr, bounded */
	char	   *column;			/* the stream column it reads */
	List	   *keys;			/* its JSON path keys (char *), NIL: the column */
} RollupDim;

/*
 * What the fold (fold.c) reads from a stream row for its measures:
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
	char	   *column;			/* the stream column it reads */
	Oid			coltype;		/* its type */
	List	   *path;			/* RS_TEXT: JSON path keys (char *) of #>>, NIL:
								 * the column cast to text */
} RollupSource;

/* One measure and the partial state(s) it keeps. */
typedef struct RollupMeasure
{
	RollupMeasureKind kind;
	char	   *name;			/* output column name (unquoted) */
	char	   *value;			/* numeric (or text for distinct) value over s,
								 * NULL when skipped */
	char	   *skip;			/* true when the value is present but skipped */
	char	   *skip_nan;		/* with skip: true when its reason is
								 * not_a_number (else out_of_range) */
	RollupRange range;			/* what a number must fit in */
	double		q;				/* percentile fraction */
	int			source;			/* index into def->sources, -1 for count */
} RollupMeasure;

/* A parsed rollup definition. */
typedef struct RollupDef
{
	int32		rollup_id;
	Oid			relid;			/* the rollup table (InvalidOid while creating) */
	Oid			source;			/* a rollup of a rollup: its source's table;
								 * InvalidOid for a rollup of the stream */
	Oid			stream_relid;
	int32		stream_id;
	Interval	bucket;
	List	   *dims;			/* of RollupDim * */
	List	   *measures;		/* of RollupMeasure * */
	List	   *inner_exprs;	/* JSON values extracted once per row (char *) */
	List	   *sources;		/* of RollupSource *: what the fold reads */
	List	   *columns;		/* the stream columns it reads (char *): ts,
								 * and those its dimensions and measures name */
	char	   *hll_schema;		/* quoted, NULL if not needed */
	char	   *hll_nsp;		/* unquoted */
	char	   *tdigest_schema; /* quoted, NULL if not needed */
	RollupOptions opts;			/* filter, time zone, origin, hll precision */
	char	   *filter_sql;		/* opts.filter over s (filter.c), NULL: none */
	int			view_split;		/* > 0: the realtime view has the measures from
								 * this one on after skipped_events (they were
								 * added by add_rollup_measures) */

	/*
	 * Set by a refresh whose rollup has rollups over it: the fold collects
	 * the buckets it merged into (fold_merge.c, fold_write.c), for the
	 * rollups of the rollup.
	 */
	struct RollupTouched *touched;
} RollupDef;

/* the buckets a fold merged into (each once per merge, not sorted) */
typedef struct RollupTouched
{
	int			n;
	int			max;
	Datum	   *buckets;		/* timestamptz */
	MemoryContext cxt;			/* where buckets is allocated */
} RollupTouched;

#define EK_ROLLUP_SKIPPED_COLUMN "skipped_events"

/* the compression of a percentile()'s t-digests (fold, realtime view) */
#define TDIGEST_COMPRESSION 100

/* the delta table of a rollup: "<rollup table>_delta", with these columns first */
#define EK_ROLLUP_DELTA_SUFFIX "_delta"
#define EK_ROLLUP_DELTA_EVENTS_COLUMN "ek_events"
/* int8[]: the group's RollupSkips (since 1.3; NULL: none) */
#define EK_ROLLUP_DELTA_SKIPS_COLUMN "ek_skips"
/*
 * the distribution column of a worker delta table distributed with its
 * stream (since 1.17; the stream's user_key type): a user key of the
 * shards the row was written in (delta.c)
 */
#define EK_ROLLUP_WDELTA_KEY_COLUMN "ek_shard_key"
/*
 * and its generation (since 1.17): NULL until a refresh marks the row with
 * one, folded once eventkit.rollups.wdelta_folded reaches it (wdelta.c)
 */
#define EK_ROLLUP_WDELTA_GEN_COLUMN "ek_gen"

/*
 * The pages_per_range of the BRIN index "<stream>_batch_id_brin" that
 * create_rollup puts on a stream (1.1 and again since 1.5; manage.c).
 */
#define EK_ROLLUP_BRIN_PAGES 32

/*
 * eventkit.rollups.format: the format of the objects a rollup's definition
 * made (its realtime view, its delta table).  1: eventkit 1.1 and 1.2; 2:
 * since 1.3 (bad values skipped, dimensions bounded, ek_skips).  A refresh
 * brings an older rollup up to date (refresh.c).
 */
#define EK_ROLLUP_FORMAT 2

extern void ek_rollup_parse(RollupDef *def, Datum dimensions, Datum measures,
							bool strict);
extern void ek_rollup_check_bucket(const Interval *bucket);
extern void ek_rollup_set_options(RollupDef *def, const RollupOptions *opts, bool strict);
extern void ek_rollup_def_of_row(const RollupRow *row, Datum measures, bool strict,
								 RollupDef *def);
typedef char *(*RollupPathText) (RollupDef *def, const char *path);
extern char *ek_rollup_filter_sql(RollupDef *def, const char *filter, RollupPathText path_text);
extern char *ek_rollup_next_bucket_expr(const RollupDef *def, const char *bucket);
extern char *ek_rollup_tail_select(const RollupDef *def, const char *where, bool pushdown);
extern char *ek_rollup_backfill_select(const RollupDef *def);
extern void ek_rollup_append_partial_select(StringInfo buf, const RollupDef *def,
											const char *where, bool small_hll,
											List *stand_ins);
extern void ek_rollup_append_column_defs(StringInfo buf, const RollupDef *def, bool delta,
										 bool add);
extern char *ek_rollup_table_sql(const RollupDef *def, const char *qtable,
								 const char *keyname);
extern char *ek_rollup_view_sql(const RollupDef *def, const char *qview,
								const char *qtable);
extern char *ek_rollup_bucket_expr(const RollupDef *def, const char *ts);
extern void ek_rollup_append_state_columns(StringInfo buf, const RollupDef *def,
										   const char *prefix);
extern void ek_rollup_append_state_sets(StringInfo buf, const RollupDef *def,
										const char *src);
extern void ek_rollup_append_merge(StringInfo buf, const RollupDef *def);
extern char *ek_rollup_delta_table_sql(const RollupDef *def, const char *qdelta);
extern void ek_rollup_append_source_select(StringInfo buf, const RollupDef *def);
extern char *ek_rollup_scan_sql(const RollupDef *def, bool only_listed);
extern char *ek_rollup_source_sql(const RollupDef *def, const char *from);
extern char *ek_rollup_delta_read_sql(const RollupDef *def, const char *qdelta,
									  bool delta_skips);
extern char *ek_rollup_worker_delta_sql(const RollupDef *def, const char *qwdelta,
										int64 max_events);
extern char *ek_rollup_worker_gen_sql(const RollupDef *def, const char *qwdelta);
extern bool ek_rollup_uses_name(const RollupDef *def, const char *name);

#endif							/* EVENTKIT_ROLLUP_H */
