/*-------------------------------------------------------------------------
 *
 * kafka_source.h
 *	  Kafka sources: their librdkafka configuration, and the lock a
 *	  source's consumer holds (kafka_source.c); their catalog rows are
 *	  catalog/kafka.c's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_KAFKA_SOURCE_H
#define EVENTKIT_KAFKA_SOURCE_H

#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "storage/lock.h"
#include "utils/jsonb.h"

#include "catalog/kafka.h"

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

/* librdkafka configuration */
extern rd_kafka_conf_t *ek_kafka_conf(const KafkaSource *src, const char *group_id,
									  bool check_privileges);
extern bool ek_kafka_starts_at_latest(const KafkaSource *src);
extern int	ek_kafka_metadata_refresh_ms(const KafkaSource *src);

#endif							/* EVENTKIT_KAFKA_SOURCE_H */
