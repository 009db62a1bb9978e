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

-- the limits are superuser-only settings: an ingesting role cannot raise them
SELECT name, context FROM pg_settings
 WHERE name IN ('eventkit.max_event_bytes', 'eventkit.max_batch_bytes',
                'eventkit.max_batch_items', 'eventkit.max_new_partitions')
 ORDER BY name;
CREATE ROLE ek_lim_owner;
CREATE ROLE ek_lim_writer;
GRANT CREATE ON SCHEMA public TO ek_lim_owner;
GRANT INSERT ON ev TO ek_lim_writer;
SET ROLE ek_lim_writer;
SET eventkit.max_batch_bytes = '100MB';
SET eventkit.max_event_bytes = '100MB';
SET eventkit.max_batch_items = 1000000;
SET eventkit.max_new_partitions = 10000;
SELECT set_config('eventkit.max_batch_items', '1000000', true);
ALTER ROLE ek_lim_writer SET eventkit.max_batch_bytes = '100MB';
SHOW eventkit.max_batch_items;
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'w' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 2501) i));
RESET ROLE;

-- a stream's own limits: its owner sets them, up to the settings
SET ROLE ek_lim_owner;
SELECT eventkit.create_stream('own', max_batch_items => 2, max_event_bytes => 200);
SELECT max_event_bytes, max_batch_bytes, max_batch_items FROM eventkit.streams WHERE relid = 'own'::regclass;
GRANT INSERT ON own TO ek_lim_writer;
SELECT eventkit.alter_stream('own', max_batch_items => 2501);
SELECT eventkit.alter_stream('own', max_batch_bytes => 512001);
SELECT eventkit.create_stream('own_big', max_event_bytes => 1000000);
SELECT eventkit.alter_stream('own', max_batch_items => 0);
RESET ROLE;
-- ... and they replace the settings for that stream only (json, text, verbose)
SET ROLE ek_lim_writer;
SELECT * FROM eventkit.ingest('own', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'o' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 3) i));
SELECT * FROM eventkit.ingest('own', (SELECT string_agg(jsonb_build_object('type', 'track', 'messageId', 'o' || i,
  'userId', 'u', 'event', 'E')::text, E'\n') FROM generate_series(1, 3) i));
SELECT * FROM eventkit.ingest_verbose('own', jsonb_build_object('type', 'track', 'messageId', 'big',
  'userId', 'u', 'event', repeat('E', 300)));
SELECT * FROM eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'big',
  'userId', 'u', 'event', repeat('E', 300)));
SELECT * FROM eventkit.ingest('own', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'o' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 2) i));
-- a role that does not own the stream cannot change them
SELECT eventkit.alter_stream('own', max_batch_items => 2500);
SELECT eventkit.alter_stream('own', clear => '{max_batch_items}');
RESET ROLE;
-- a superuser may set a stream's limit above the setting
SELECT eventkit.alter_stream('own', max_batch_items => 3000, clear => '{max_event_bytes}');
SET ROLE ek_lim_writer;
SELECT * FROM eventkit.ingest('own', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 2600) i));
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 2600) i));
RESET ROLE;
-- the owner may lower it again, or clear it (back to the setting)
SET ROLE ek_lim_owner;
SELECT eventkit.alter_stream('own', max_batch_bytes => 100000, clear => '{max_batch_items}');
SELECT max_event_bytes, max_batch_bytes, max_batch_items FROM eventkit.streams WHERE relid = 'own'::regclass;
RESET ROLE;
SET ROLE ek_lim_writer;
SELECT * FROM eventkit.ingest('own', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'n' || i,
  'userId', 'u', 'event', 'E')) FROM generate_series(1, 2600) i));
RESET ROLE;
SELECT count(*) AS own_rows FROM own;
SELECT eventkit.drop_stream('own');

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
REVOKE CREATE ON SCHEMA public FROM ek_lim_owner;
DROP ROLE ek_lim_owner;
DROP ROLE ek_lim_writer;
