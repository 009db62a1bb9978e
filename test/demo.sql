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

\echo '== a tracking plan: Order Completed must carry a numeric revenue; names are normalized'
SELECT eventkit.create_plan('shop', '{"events": {"Order Completed": {"properties":
  {"type": "object", "required": ["revenue"], "properties": {"revenue": {"type": "number", "minimum": 0}}}}}}');
SELECT eventkit.attach_plan('events', 'shop');
SELECT * FROM eventkit.ingest_verbose('events', '[
  {"type": "track", "messageId": "p-1", "userId": "u7", "event": "order_completed", "properties": {"revenue": 12}},
  {"type": "track", "messageId": "p-2", "userId": "u7", "event": "Order Completed", "properties": {"revenue": "12"}}
]'::jsonb);
SELECT message_id, event, plan_version, extra FROM events WHERE message_id LIKE 'p-%' ORDER BY 1;

\echo '== the plan is fixed (revenue may be a string too) and the quarantine replayed'
SELECT eventkit.create_plan('shop', '{"events": {"Order Completed": {"properties":
  {"type": "object", "required": ["revenue"], "properties": {"revenue": {"type": ["number", "string"]}}}}}}');
SELECT * FROM eventkit.replay_quarantine('events',
  ARRAY(SELECT quarantine_id FROM eventkit.quarantine WHERE message_id = 'p-2'));

\echo '== an hourly rollup per event: count and distinct users (hll)'
CREATE EXTENSION hll;
SELECT eventkit.create_rollup('events_hourly', 'events', '1 hour',
  ARRAY['event'], ARRAY['count', 'distinct(user_id) AS users']);
SELECT * FROM eventkit.ingest('events', '{"type": "track", "messageId": "r-1", "userId": "u8", "event": "Order Completed", "properties": {"revenue": 5}}'::jsonb);
SELECT event, count, users FROM events_hourly_realtime ORDER BY event NULLS FIRST;
SELECT eventkit.refresh_rollup('events_hourly') AS events_folded;

\echo '== health'
SELECT component, target, status, detail FROM eventkit.health() ORDER BY 1, 2;
