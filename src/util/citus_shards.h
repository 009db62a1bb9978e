/*-------------------------------------------------------------------------
 *
 * citus_shards.h
 *	  The shards of a hash-distributed Citus table, read from Citus's own
 *	  catalog without linking to Citus: which shard a user key hashes to,
 *	  which shards this node holds, and which node a client reaches a
 *	  group's shards on (citus_shards.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_CITUS_SHARDS_H
#define EK_UTIL_CITUS_SHARDS_H

#include "postgres.h"

#include "access/attnum.h"
#include "fmgr.h"

/* The shards of one hash-distributed table, in Citus's shard index order */
typedef struct EkShardMap
{
	Oid			relid;			/* the distributed table */
	int32		colocation;		/* pg_dist_partition.colocationid */
	int			nshards;
	int32	   *mins;			/* hash range of each shard (sorted) */
	int32	   *maxs;
	int64	   *shardids;
	int32	   *groups;			/* group of each shard's placement, once read */
	bool		placed;			/* groups read (ek_citus_shards_place) */
	FmgrInfo	hash;			/* the key type's hash function */
	Oid			collation;		/* of the distribution column */
} EkShardMap;

/* A group's primary node, as clients reach it (pg_dist_node) */
typedef struct EkCitusNode
{
	int32		group;
	char	   *name;
	int32		port;
} EkCitusNode;

extern EkShardMap *ek_citus_shard_map(Oid relid, const char *column);
extern int	ek_citus_shard_index(const EkShardMap *map, const char *key);
extern void ek_citus_shards_place(EkShardMap *map, const bool *used);
extern void ek_citus_shards_read(EkShardMap *map);
extern Oid	ek_citus_shard_relid(Oid relid, int64 shardid);
extern void ek_citus_use_2pc(void);
extern bool ek_citus_function_delegated(Oid funcid, int32 colocation);
extern bool ek_citus_delegates_in_transaction(void);
extern AttrNumber ek_citus_distribution_attnum(Oid relid);
extern EkCitusNode *ek_citus_primary_nodes(int *n);

#endif							/* EK_UTIL_CITUS_SHARDS_H */
