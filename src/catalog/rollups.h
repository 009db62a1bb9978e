/*-------------------------------------------------------------------------
 *
 * rollups.h
 *	  Rollups in the catalog (rollups.c): eventkit.rollups, and the jobs
 *	  that refresh them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_ROLLUPS_H
#define EK_CATALOG_ROLLUPS_H

#include "postgres.h"

#include "access/transam.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/*
 * A rollup's options (since 1.4; all unset in older catalogs): a filter
 * (NULL: every event), a time zone (NULL: UTC), an origin, the hll
 * precision (0: the hll default).
 */
typedef struct RollupOptions
{
	char	   *filter;
	char	   *time_zone;
	bool		has_origin;
	TimestampTz origin;
	int32		hll_log2m;
} RollupOptions;

/* A rollup's catalog row (what a refresh needs). */
typedef struct RollupRow
{
	int32		rollup_id;
	Oid			relid;
	Oid			view;
	Oid			stream;
	int32		stream_id;
	Interval	bucket;
	Datum		dimensions;		/* text[] */
	Datum		measures;		/* text[] */
	int64		watermark;
	int64		backfill_target;
	int32		format;			/* eventkit.rollups.format (rollup/rollup.h) */
	RollupOptions opts;
	Oid			source;			/* a rollup of a rollup: the source's table */
} RollupRow;

/*
 * the worker delta table of a rollup of a distributed stream:
 * "<rollup table>_wdelta", the delta table's columns, that ingest on the
 * workers writes (delta.c): since 1.17 distributed with the stream (and
 * ek_shard_key), before a Citus local table on the coordinator
 */
#define EK_ROLLUP_WDELTA_SUFFIX "_wdelta"

/*
 * The generations of a rollup's distributed worker delta table (1.17,
 * eventkit.rollups.wdelta_*; rollup/wdelta.c): the last one a refresh
 * marked rows with, the last one folded into the rollup table, the last
 * one whose rows were deleted, and the transaction that last moved folded
 */
typedef struct RollupWdeltaGens
{
	int64		marked;
	int64		folded;
	int64		deleted;
	bool		has_folded_xid;
	FullTransactionId folded_xid;
} RollupWdeltaGens;

/* A rollup of a stream, as ingest's deltas need it. */
typedef struct StreamRollup
{
	int32		rollup_id;
	Oid			relid;			/* the rollup table; InvalidOid on a Citus worker */
	Oid			delta;			/* InvalidOid: the rollup table's delta table; on a
								 * Citus worker, the rollup's worker delta table
								 * (distributed with the stream; before 1.17 a
								 * Citus local table on the coordinator) */
	Interval	bucket;
	Datum		dimensions;
	Datum		measures;
	RollupOptions opts;
} StreamRollup;

extern bool ek_rollups_installed(void);
extern bool ek_rollups_have_skips(void);
extern bool ek_rollups_read(Oid relid, bool for_update, RollupRow *row);
extern int32 ek_rollups_next_id(void);
extern void ek_rollups_insert(const RollupRow *row, const char *name);
extern char *ek_rollups_delete(int32 rollup_id);
extern bool ek_rollups_others_on_stream(int32 rollup_id, int32 stream_id);
extern void ek_rollups_set_schedule(int32 rollup_id, const Interval *schedule);
extern void ek_rollups_record_refresh(const RollupRow *row, int64 to, int64 events,
									  Datum skipped, bool skipped_null, int32 format);
extern void ek_rollups_record_rebuild(const RollupRow *row, int64 to, int64 events,
									  Datum skipped, bool skipped_null);
extern int32 ek_rollups_forget_dropped(void);
extern List *ek_rollups_of_stream(int32 stream_id);
extern bool ek_rollups_have_options(void);
extern List *ek_rollups_derived(Oid source);
extern bool ek_rollups_have_wdelta_gens(void);
extern void ek_rollups_wdelta_gens(int32 rollup_id, bool in_view, RollupWdeltaGens *gens);
extern void ek_rollups_record_wdelta_gens(int32 rollup_id, const RollupWdeltaGens *gens,
										  bool folded_now);
extern void ek_rollups_set_measures(const RollupRow *row, Datum measures, Oid view);

#endif							/* EK_CATALOG_ROLLUPS_H */
