/*-------------------------------------------------------------------------
 *
 * kafka.h
 *	  Kafka sources in the catalog (kafka.c): eventkit.kafka_source_config
 *	  and eventkit.kafka_offsets.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_KAFKA_H
#define EK_CATALOG_KAFKA_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* A source's catalog row. */
typedef struct KafkaSource
{
	int32		source_id;
	char	   *name;
	int32		stream_id;
	Oid			relid;			/* the stream; InvalidOid if it was dropped */
	char	   *brokers;
	char	   *topic;
	Jsonb	   *options;
	char	   *owner;			/* role name */
} KafkaSource;

/* A partition's stored next offset. */
typedef struct KafkaOffset
{
	int32		partition;
	int64		next_offset;
} KafkaOffset;

/* What a batch consumed from one partition. */
typedef struct KafkaProgress
{
	int32		partition;
	int64		next_offset;	/* the last offset stored + 1 */
	int64		high_watermark; /* -1: not known */
	int64		messages;
	int64		events;
} KafkaProgress;

extern bool ek_kafka_catalog_installed(void);

/* callers are connected to SPI, in a transaction */
extern List *ek_kafka_source_ids(void);
extern KafkaSource *ek_kafka_read_source(int32 source_id, bool lock);
extern int	ek_kafka_read_offsets(int32 source_id, bool lock, KafkaOffset **out);
extern void ek_kafka_add_partitions(int32 source_id, int n, const KafkaOffset *start);
extern void ek_kafka_store_progress(int32 source_id, int n, const KafkaProgress *p);
extern void ek_kafka_store_watermarks(int32 source_id, int n, const KafkaProgress *p);
extern bool ek_kafka_store_state(int32 source_id, const char *last_error,
								 TimestampTz last_error_at,
								 TimestampTz failing_since);
extern bool ek_kafka_source_exists(const char *name);
extern void ek_kafka_insert_source(const KafkaSource *src);
extern bool ek_kafka_lock_source(const char *name, int32 *source_id, char **owner);
extern void ek_kafka_delete_source(int32 source_id);

#endif							/* EK_CATALOG_KAFKA_H */
