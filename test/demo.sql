\echo '== CREATE EXTENSION and a stream (daily partitions, 2 premade ahead)'
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('events', premake => 2);
SELECT partition, range_start, range_end FROM eventkit.partitions('events');

\echo '== a Segment batch: 3 good events, one retried copy, one bad event'
SELECT * FROM eventkit.ingest('events', '{
  "batch": [
    {"type": "track", "messageId": "ajs-1", "userId": "u42", "event": "Order Completed",
     "properties": {"revenue": 39.90, "currency": "EUR"},
     "originalTimestamp": "2030-01-01T12:00:00Z"},
    {"type": "identify", "messageId": "ajs-2", "userId": "u42", "traits": {"plan": "pro"}},
    {"type": "page", "messageId": "ajs-3", "anonymousId": "a-7", "name": "Pricing"},
    {"type": "track", "messageId": "ajs-1", "userId": "u42", "event": "Order Completed",
     "properties": {"revenue": 39.90, "currency": "EUR"},
     "originalTimestamp": "2030-01-01T12:00:00Z"},
    {"type": "track", "messageId": "ajs-4", "event": "Signed Up"}
  ],
  "sentAt": "2030-01-01T12:00:05Z"}'::jsonb);

\echo '== the client retries the whole batch, with one event changed: nothing is stored twice'
SELECT * FROM eventkit.ingest_verbose('events', '[
    {"type": "track", "messageId": "ajs-1", "userId": "u42", "event": "Order Completed",
     "properties": {"revenue": 39.90, "currency": "EUR"},
     "originalTimestamp": "2030-01-01T12:00:00Z", "sentAt": "2030-01-01T12:01:00Z"},
    {"type": "identify", "messageId": "ajs-2", "userId": "u42", "traits": {"plan": "enterprise"}}
  ]'::jsonb);

\echo '== NDJSON text with a malformed line'
SELECT * FROM eventkit.ingest('events', E'{"type": "track", "messageId": "n-1", "userId": "u1", "event": "Clicked"}\n{"type": "track", "messageId": \n');

\echo '== what was stored (ts: the clock-skew-corrected event time)'
SELECT message_id, type, event, user_id, anonymous_id, properties, traits,
       ts - received_at AS ts_minus_received
  FROM events ORDER BY message_id;

\echo '== counts per stream'
SELECT stream, batches, accepted, duplicates, conflicts, quarantined, rejected FROM eventkit.stream_stats;

\echo '== quarantine: kept with reasons, nothing lost'
SELECT quarantine_id, item, message_id, reasons, coalesce(payload::text, raw) AS original
  FROM eventkit.quarantine ORDER BY quarantine_id;
