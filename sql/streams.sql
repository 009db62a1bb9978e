-- Streams: create_stream / drop_stream, partition layout, catalog row.
CREATE EXTENSION eventkit;

SELECT eventkit.create_stream('events');
SELECT stream_id, relid, partition_interval, premake, retention, key_partitions,
       dedup_window, ledger_gen
  FROM eventkit.streams ORDER BY stream_id;

-- the stream table: an ordinary range-partitioned table on ts
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT pg_get_partkeydef('events'::regclass);

-- partitions: the day containing now plus premake (4) days, contiguous,
-- aligned on UTC midnight, no DEFAULT partition
SELECT count(*) AS partitions,
       min(range_start) = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS starts_today,
       max(range_end) - min(range_start) AS span,
       bool_and(range_end - range_start = interval '1 day') AS daily
  FROM eventkit.partitions('events');
SELECT count(*) AS default_partitions
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass
   AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
-- partitions carry a CHECK matching their bounds (added before ATTACH)
SELECT count(*) AS partitions_with_check
  FROM eventkit.partitions('events') p
  JOIN pg_constraint k ON k.conrelid = p.partition AND k.contype = 'c';

-- hourly partitions with hash sub-partitions by user key
CREATE SCHEMA app;
SELECT eventkit.create_stream('app.hourly', '1 hour', premake => 2, key_partitions => 4);
SELECT level, isleaf, count(*)
  FROM pg_partition_tree('app.hourly')
 GROUP BY level, isleaf ORDER BY level;
SELECT DISTINCT pg_get_partkeydef(p.partition) FROM eventkit.partitions('app.hourly') p;

-- monthly partitions start on the first of the month
SELECT eventkit.create_stream('monthly', '1 month', premake => 1);
SELECT count(*), bool_and(extract(day FROM range_start AT TIME ZONE 'UTC') = 1) AS first_of_month
  FROM eventkit.partitions('monthly');

-- names that need quoting
SELECT eventkit.create_stream('app."Weird ""Name"""', premake => 0);
SELECT relid FROM eventkit.streams ORDER BY stream_id;
SELECT count(*) FROM eventkit.partitions('app."Weird ""Name"""');

-- bad arguments
SELECT eventkit.create_stream('events');
SELECT eventkit.create_stream(NULL);
SELECT eventkit.create_stream('x', '1 month 1 day');
SELECT eventkit.create_stream('x', '10 seconds');
SELECT eventkit.create_stream('x', '-1 day');
SELECT eventkit.create_stream('x', NULL);
SELECT eventkit.create_stream('x', premake => -1);
SELECT eventkit.create_stream('x', key_partitions => 5000);
SELECT eventkit.create_stream('x', dedup_window => '0');
SELECT eventkit.create_stream('x', retention => '-3 days');
SELECT eventkit.create_stream('nosuchschema.x');
SELECT eventkit.create_stream('otherdb.public.x');
SELECT eventkit.create_stream(repeat('a', 60));
SELECT eventkit.create_stream('pg_temp.x');
SELECT eventkit.create_stream('"unterminated');
SELECT count(*) AS streams FROM eventkit.streams;

-- drop_stream removes the table, partitions, ledger and catalog rows
SELECT eventkit.drop_stream('monthly');
SELECT count(*) FROM pg_class WHERE relname LIKE 'monthly%';
SELECT count(*) FROM eventkit.streams WHERE relid::text = 'monthly';
SELECT eventkit.drop_stream('pg_class');
CREATE TABLE plain (a int);
SELECT eventkit.drop_stream('plain');
SELECT eventkit.drop_stream('app."Weird ""Name"""');
-- a plain DROP TABLE / DROP SCHEMA of a stream: eventkit forgets it (sql_drop trigger)
SELECT * FROM eventkit.ingest('app.hourly', '{"type": "track", "messageId": "x", "userId": "u", "event": "E"}'::jsonb);
SELECT eventkit.create_stream('app.other');
SELECT stream_id AS hourly_id FROM eventkit.streams WHERE relid = 'app.hourly'::regclass \gset
DROP TABLE app.hourly;
SELECT relid FROM eventkit.streams ORDER BY stream_id;
SELECT (SELECT count(*) FROM eventkit.ingest_batches WHERE stream_id = :hourly_id) AS batches,
       (SELECT count(*) FROM eventkit.ledger_generations WHERE stream_id = :hourly_id) AS generations,
       to_regclass('eventkit_internal.ledger_' || :hourly_id) AS ledger;
DROP SCHEMA app CASCADE;
SELECT relid FROM eventkit.streams ORDER BY stream_id;
SELECT eventkit.run_maintenance();
SELECT eventkit.drop_stream('events');
SELECT count(*) AS streams, (SELECT count(*) FROM pg_tables WHERE schemaname = 'eventkit_internal') AS ledgers
  FROM eventkit.streams;
DROP TABLE plain;
DROP EXTENSION eventkit;
