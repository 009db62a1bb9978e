/*-------------------------------------------------------------------------
 *
 * kafka_source.h
 *	  Kafka sources: their catalog rows (eventkit.kafka_source_config,
 *	  eventkit.kafka_offsets), their librdkafka configuration, and the lock
 *	  a source's consumer holds (kafka_source.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_KAFKA_SOURCE_H
#define EVENTKIT_KAFKA_SOURCE_H

#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "storage/lock.h"
#include "utils/jsonb.h"

/*
 * The lock a source's consumer holds for its life: an advisory lock
 * (database, EK_KAFKA_LOCK_CLASSID, source_id, 3).  pg_advisory_lock()
 * only makes locks with 1 or 2 in the last field, so no user lock is the
 * same; eventkit.kafka_sources finds the consumer's pid by it in pg_locks.
 */
#define EK_KAFKA_LOCK_CLASSID	25963
#define EK_KAFKA_LOCK_SUBID		3

#define EK_KAFKA_SET_LOCKTAG(tag, dboid, source_id) \
	SET_LOCKTAG_ADVISORY((tag), (dboid), EK_KAFKA_LOCK_CLASSID, \
						 (uint32) (source_id), EK_KAFKA_LOCK_SUBID)

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

/* Catalog access; callers are connected to SPI, in a transaction. */
extern List *ek_kafka_source_ids(void);
extern KafkaSource *ek_kafka_read_source(int32 source_id, bool lock);
extern int	ek_kafka_read_offsets(int32 source_id, bool lock, KafkaOffset **out);
extern void ek_kafka_add_partitions(int32 source_id, int n, const KafkaOffset *start);
extern void ek_kafka_store_progress(int32 source_id, int n, const KafkaProgress *p);
extern void ek_kafka_store_watermarks(int32 source_id, int n, const KafkaProgress *p);
extern bool ek_kafka_store_state(int32 source_id, const char *last_error,
								 TimestampTz last_error_at,
								 TimestampTz failing_since);

/* librdkafka configuration */
extern rd_kafka_conf_t *ek_kafka_conf(const KafkaSource *src, const char *group_id,
									  bool check_privileges);
extern bool ek_kafka_starts_at_latest(const KafkaSource *src);
extern int	ek_kafka_metadata_refresh_ms(const KafkaSource *src);

#endif							/* EVENTKIT_KAFKA_SOURCE_H */
