-- Size limits (GUCs with Segment's defaults): past them, a clear error and nothing half-written.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');

SELECT name, setting, unit, min_val, max_val, boot_val
  FROM pg_settings WHERE name LIKE 'eventkit.%' ORDER BY name;
SHOW eventkit.max_event_bytes;
SHOW eventkit.max_batch_bytes;

-- too many items: error, and the valid events of the batch are not stored either
SET eventkit.max_batch_items = 3;
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'i' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 4) i));
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'i' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 3) i));
SELECT * FROM eventkit.ingest('ev', (SELECT string_agg(jsonb_build_object('type', 'track', 'messageId', 'j' || i,
  'userId', 'u', 'event', 'E')::text, E'\n') FROM generate_series(1, 4) i));
RESET eventkit.max_batch_items;

-- one event too large
SET eventkit.max_event_bytes = 200;
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(
  jsonb_build_object('type', 'track', 'messageId', 'small', 'userId', 'u', 'event', 'E'),
  jsonb_build_object('type', 'track', 'messageId', 'large', 'userId', 'u', 'event', repeat('E', 300))));
SELECT * FROM eventkit.ingest('ev', E'{"type": "track", "messageId": "small", "userId": "u", "event": "E"}\n'
                                    || jsonb_build_object('type', 'track', 'messageId', 'large', 'userId', 'u', 'event', repeat('E', 300))::text);
RESET eventkit.max_event_bytes;

-- the payload too large
SET eventkit.max_batch_bytes = 1000;
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'p' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 20) i));
SELECT * FROM eventkit.ingest('ev', repeat(' ', 1001) || '{}');
RESET eventkit.max_batch_bytes;

-- nothing was stored or logged by the failed calls
SELECT message_id FROM ev ORDER BY message_id;
SELECT count(*) AS batches FROM eventkit.ingest_batches;
SELECT count(*) AS ledger_rows FROM eventkit_internal.ledger_1;

-- parameter ranges
SET eventkit.max_batch_items = 0;
SET eventkit.max_event_bytes = 10;
SET eventkit.invalid_events = 'drop';
SET eventkit.no_such_setting = 1;

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
