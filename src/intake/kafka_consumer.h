/*-------------------------------------------------------------------------
 *
 * kafka_consumer.h
 *	  Kafka consumers (kafka_consumer.c): one background worker per source
 *	  ("eventkit kafka"), started by the scheduler of the source's
 *	  database, and their configuration parameters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTKIT_KAFKA_CONSUMER_H
#define EVENTKIT_KAFKA_CONSUMER_H

#include "postgres.h"

extern int	ek_kafka_batch_messages;
extern int	ek_kafka_batch_bytes;
extern int	ek_kafka_batch_ms;

extern void ek_kafka_define_gucs(void);

/* Called by the scheduler each pass, in its transaction, connected to SPI. */
extern void ek_kafka_supervise(void);

extern PGDLLEXPORT void ek_kafka_consumer_main(Datum arg);

#endif							/* EVENTKIT_KAFKA_CONSUMER_H */
