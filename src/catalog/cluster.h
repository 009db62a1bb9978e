/*-------------------------------------------------------------------------
 *
 * cluster.h
 *	  The cluster-wide catalog of the streams distributed on Citus
 *	  (cluster.c): published by the coordinator, adopted by the workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_CLUSTER_H
#define EK_CATALOG_CLUSTER_H

#include "postgres.h"

#include "nodes/pg_list.h"

extern bool ek_cluster_table_exists(void);
extern const char *ek_cluster_create_table(void);
extern const char *ek_cluster_restored_table(void);
extern void ek_cluster_publish_stream(int32 stream_id);
extern void ek_cluster_stream_changed(int32 stream_id, Oid relid);
extern void ek_cluster_plan_changed(int32 plan_id);
extern void ek_cluster_forget_stream(int32 stream_id);
extern int64 ek_cluster_adopt_stream(Oid relid, List **rollups, MemoryContext cxt);
extern void ek_cluster_sync_local(Oid relid);
extern bool ek_cluster_worker_rollups(Oid relid, List **rollups);

#endif							/* EK_CATALOG_CLUSTER_H */
