-- Kafka sources: creating, checking, showing and dropping them (the
-- consumers need the scheduler: test/t/04x_kafka*.pl).
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('kev');
SELECT eventkit.create_stream('kev_closed');
CREATE TABLE plain_table (x int);
CREATE ROLE kafka_owner;
CREATE ROLE kafka_other;
GRANT INSERT, SELECT ON kev, plain_table TO kafka_owner;

-- EXECUTE is not granted to PUBLIC
SET ROLE kafka_owner;
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events');
RESET ROLE;
GRANT EXECUTE ON FUNCTION eventkit.create_kafka_source(text, regclass, text, text, jsonb)
	TO kafka_owner, kafka_other;

SET ROLE kafka_owner;
-- arguments
SELECT eventkit.create_kafka_source(NULL, 'kev', 'localhost:9092', 'events');
SELECT eventkit.create_kafka_source('', 'kev', 'localhost:9092', 'events');
SELECT eventkit.create_kafka_source('k', NULL, 'localhost:9092', 'events');
SELECT eventkit.create_kafka_source('k', 'kev', '', 'events');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'a/b');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', repeat('t', 250));
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '[]');
SELECT eventkit.create_kafka_source('k', 'plain_table', 'localhost:9092', 'events');
SELECT eventkit.create_kafka_source('k', 'kev_closed', 'localhost:9092', 'events');
-- options: librdkafka properties, checked by librdkafka
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"no.such.thing": "x"}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"auto.offset.reset": "sideways"}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"client.id": null}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"bootstrap.servers": "elsewhere:9092"}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"enable.auto.offset.store": false}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"sasl.kerberos.kinit.cmd": "touch /tmp/x"}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events', '{"ssl.key.location": "/etc/ssl/private/k.pem"}');
-- a good one: numbers and booleans are passed as text
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092,localhost:9093', 'events',
	'{"security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN",
	  "sasl.username": "alice", "sasl.password": "hunter2",
	  "fetch.wait.max.ms": 50, "check.crcs": true, "auto.offset.reset": "latest"}');
SELECT eventkit.create_kafka_source('k', 'kev', 'localhost:9092', 'events');
-- the raw options are the extension owner's
SELECT options FROM eventkit.kafka_source_config;
SELECT next_offset FROM eventkit.kafka_offsets;
-- the view: a source without partitions yet has one row; secrets masked
SELECT name, stream, topic, partition, next_offset, lag, status, consumer_pid,
	   brokers, options, owner = 'kafka_owner' AS owned
  FROM eventkit.kafka_sources;
RESET ROLE;
SET ROLE kafka_other;
SELECT count(*) AS other_sees FROM eventkit.kafka_sources;
SELECT eventkit.drop_kafka_source('k');
RESET ROLE;
-- no consumer: the scheduler is off in this test
SELECT component, target, status, value, detail FROM eventkit.health() WHERE component = 'kafka';

-- what the mask hides
SELECT eventkit.kafka_mask_options('{"sasl.password": "p", "ssl.key.password": "p", "ssl.key.pem": "k",
	"sasl.oauthbearer.client.secret": "s", "sasl.oauthbearer.config": "c", "sasl.jaas.config": "j",
	"sasl.username": "u", "client.id": "c", "fetch.wait.max.ms": 50}');

-- dropping
SELECT eventkit.drop_kafka_source('nope');
SET ROLE kafka_owner;
SELECT eventkit.drop_kafka_source('k');
RESET ROLE;
SELECT count(*) AS sources, (SELECT count(*) FROM eventkit.kafka_offsets) AS offsets
  FROM eventkit.kafka_source_config;

-- a superuser may name server files
SELECT eventkit.create_kafka_source('k2', 'kev', 'localhost:9092', 'events',
	'{"ssl.ca.location": "/etc/ssl/certs"}');
SELECT name, owner = current_user AS mine, options FROM eventkit.kafka_sources;
SELECT eventkit.drop_kafka_source('k2');

SELECT eventkit.drop_stream('kev');
SELECT eventkit.drop_stream('kev_closed');
DROP TABLE plain_table;
DROP EXTENSION eventkit;
DROP ROLE kafka_owner;
DROP ROLE kafka_other;
