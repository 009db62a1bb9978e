-- Hostile and malformed events: a clear error or a quarantine row, never a crash.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');

-- wrong types for every field
SELECT item, status, reasons->0->>'reason' AS reason, reasons->0->>'message' AS message
  FROM eventkit.ingest_verbose('ev', '[
  {"type": 1, "userId": "u", "event": "E"},
  {"type": "track", "messageId": {"a": 1}, "userId": "u", "event": "E"},
  {"type": "track", "messageId": "b3", "userId": ["u"], "event": "E"},
  {"type": "track", "messageId": "b4", "anonymousId": true, "event": "E"},
  {"type": "track", "messageId": "b5", "userId": "u", "event": 5},
  {"type": "track", "messageId": "b6", "userId": "u", "event": ""},
  {"type": "track", "messageId": "b7", "userId": "u", "event": "E", "properties": [1, 2]},
  {"type": "identify", "messageId": "b8", "userId": "u", "traits": "vip"},
  {"type": "track", "messageId": "b9", "userId": "u", "event": "E", "context": 3},
  {"type": "track", "messageId": "b10", "userId": "", "anonymousId": null, "event": "E"},
  {"type": "TRACK", "messageId": "b11", "userId": "u", "event": "E"},
  {"type": "track", "messageId": "b12", "userId": "u", "event": "E", "properties": null, "context": null}
]'::jsonb) ORDER BY item;
-- several problems are all reported
SELECT jsonb_array_length(reasons) AS problems, reasons
  FROM eventkit.ingest_verbose('ev', '{"type": "track", "messageId": 1.5e0, "properties": 1, "timestamp": "x"}'::jsonb);

-- huge strings: ids longer than 256 bytes are refused, large values are fine
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('ev', jsonb_build_array(
    jsonb_build_object('type', 'track', 'messageId', repeat('m', 300), 'userId', 'u', 'event', 'E'),
    jsonb_build_object('type', 'track', 'messageId', 'big', 'userId', repeat('u', 300), 'event', 'E'),
    jsonb_build_object('type', 'track', 'messageId', 'bigval', 'userId', 'u', 'event', repeat('e', 20000),
                       'properties', jsonb_build_object('text', repeat('x', 10000))))) ORDER BY item;
SELECT message_id, length(event), length(properties->>'text') FROM ev WHERE message_id = 'bigval';

-- deep nesting: stored as-is inside properties (jsonb has no depth limit we rely on)
SET eventkit.max_event_bytes = '1MB';
SET eventkit.max_batch_bytes = '1MB';
SELECT * FROM eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'deep', 'userId', 'u', 'event', 'E',
  'properties', (repeat('{"a":', 3000) || '1' || repeat('}', 3000))::jsonb));
SELECT message_id, jsonb_typeof(properties) FROM ev WHERE message_id = 'deep';
-- deep nesting in text input: the parser's stack check turns it into a quarantined item
SET max_stack_depth = '100kB';
SELECT * FROM eventkit.ingest('ev', repeat('[', 200000) || repeat(']', 200000));
RESET max_stack_depth;
RESET eventkit.max_event_bytes;
RESET eventkit.max_batch_bytes;
SELECT reasons->0->>'reason' AS reason, reasons->0->>'message' AS message, length(raw) AS raw_length
  FROM eventkit.quarantine WHERE raw LIKE '[[[%';

-- 10,000 keys: over the 32 kB event limit by default (an error, nothing stored) ...
SELECT count(*) AS before FROM ev \gset
SELECT * FROM eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'keys', 'userId', 'u', 'event', 'E',
  'properties', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 10000) i)));
SELECT count(*) = :before AS nothing_stored FROM ev;
-- ... and stored when the limit allows it
SET eventkit.max_event_bytes = '1MB';
SET eventkit.max_batch_bytes = '1MB';
SELECT * FROM eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'keys', 'userId', 'u', 'event', 'E',
  'properties', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 10000) i)));
SELECT (SELECT count(*) FROM jsonb_object_keys(properties)) AS keys FROM ev WHERE message_id = 'keys';
RESET eventkit.max_event_bytes;
RESET eventkit.max_batch_bytes;

-- invalid UTF-8 cannot reach us: PostgreSQL rejects it at the text boundary
SELECT * FROM eventkit.ingest('ev', convert_from('\xc3283a'::bytea, 'UTF8'));

-- fuzz: truncations and byte flips of a valid batch, each as text input.
-- Every call either errors cleanly or accounts for all its items.
CREATE TEMP TABLE fuzz_results (i int, items bigint, err text);
DO $$
DECLARE
  base text := '{"batch": [{"type": "track", "messageId": "z1", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, "x"], "b": {"c": null}}, "timestamp": "2024-01-01T00:00:00Z"}, {"type": "identify", "anonymousId": "a", "traits": {"t": true}}], "sentAt": "2024-01-01T00:00:01Z"}';
  payload text;
  r eventkit.ingest_result;
  flips text := '{}[]":,\ 0aZ-.eE';
BEGIN
  FOR i IN 1 .. 400 LOOP
    IF i % 2 = 0 THEN
      payload := left(base, (i * 7919) % length(base));
    ELSE
      payload := overlay(base placing substr(flips, 1 + (i * 31) % length(flips), 1)
                         from 1 + (i * 104729) % length(base) for 1);
    END IF;
    BEGIN
      r := eventkit.ingest('ev', payload);
      INSERT INTO fuzz_results VALUES (i, r.accepted + r.duplicates + r.conflicts + r.quarantined + r.rejected, NULL);
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO fuzz_results VALUES (i, NULL, SQLSTATE);
    END;
  END LOOP;
END $$;
SELECT count(*) AS calls, count(*) FILTER (WHERE items >= 1) AS accounted,
       count(*) FILTER (WHERE err IS NOT NULL) AS errors,
       count(*) FILTER (WHERE items = 0) AS empty_results
  FROM fuzz_results;
SELECT err, count(*) FROM fuzz_results WHERE err IS NOT NULL GROUP BY err ORDER BY err;
-- every stored event appears once
SELECT count(*) = count(DISTINCT message_id) AS no_doubles FROM ev;

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
