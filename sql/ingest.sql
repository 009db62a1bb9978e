-- Ingest: payload shapes, statuses, stored columns, stream_stats.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');

-- one event
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "m1", "userId": "u1",
  "event": "Order Completed", "properties": {"revenue": 10.5, "currency": "EUR"},
  "context": {"library": {"name": "analytics.js"}}}'::jsonb);

-- an array
SELECT * FROM eventkit.ingest('ev', '[
  {"type": "identify", "messageId": "m2", "userId": "u1", "traits": {"plan": "pro"}},
  {"type": "page", "messageId": "m3", "anonymousId": "a1", "name": "Home", "properties": {"path": "/"}},
  {"type": "screen", "messageId": "m4", "userId": "u2", "name": "Settings"},
  {"type": "group", "messageId": "m5", "userId": "u2", "groupId": "g1", "traits": {"size": 10}},
  {"type": "alias", "messageId": "m6", "userId": "u3", "previousId": "a1"}
]'::jsonb);

-- a Segment batch envelope: sentAt and context apply to every event
SELECT * FROM eventkit.ingest('ev', '{"batch": [
  {"type": "track", "messageId": "m7", "userId": "u1", "event": "Signed Up", "context": {"ip": "10.0.0.1"}},
  {"type": "track", "messageId": "m8", "anonymousId": "a2", "event": "Clicked", "integrations": {"All": false}}
 ], "sentAt": "2020-01-01T00:00:00Z", "context": {"library": {"name": "analytics-node"}, "ip": "0.0.0.0"}}'::jsonb);

SELECT message_id, type, event, user_id, anonymous_id, user_key, properties, traits, context, extra,
       sent_at IS NOT NULL AS has_sent_at, batch_id IS NOT NULL AS has_batch,
       plan_version, violations
  FROM ev ORDER BY message_id;

-- numbers are accepted as ids and stored as text
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": 42, "userId": 7, "event": "N"}'::jsonb);
SELECT message_id, user_id FROM ev WHERE message_id = '42';

-- ingest_verbose: one row per item, with reasons
SELECT * FROM eventkit.ingest_verbose('ev', '[
  {"type": "track", "messageId": "m9", "userId": "u1", "event": "Viewed"},
  {"type": "track", "messageId": "m9", "userId": "u1", "event": "Viewed"},
  {"type": "track", "messageId": "m9", "userId": "u1", "event": "Viewed Other"},
  {"type": "track", "messageId": "m10", "event": "Viewed"},
  {"type": "teleport", "messageId": "m11", "userId": "u1"},
  {"messageId": "m12", "userId": "u1"},
  {"type": "track", "messageId": "m13", "userId": "u1"},
  {"type": "group", "messageId": "m14", "userId": "u1"},
  {"type": "alias", "messageId": "m15", "userId": "u1"},
  "just a string",
  null,
  [1, 2]
]'::jsonb) ORDER BY item;

-- the quarantine keeps the original payload and reasons
SELECT item, message_id, payload, raw, reasons->0->>'reason' AS reason
  FROM eventkit.quarantine ORDER BY quarantine_id;

-- invalid events can be rejected by policy instead: reported, not stored
SET eventkit.invalid_events = 'reject';
SELECT * FROM eventkit.ingest_verbose('ev', '[{"type": "track", "userId": "u1"},
  {"type": "track", "messageId": "m16", "userId": "u1", "event": "Ok"}]'::jsonb) ORDER BY item;
RESET eventkit.invalid_events;
SELECT count(*) AS quarantined FROM eventkit.quarantine;

-- received_at is the server's receipt time
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "m17", "userId": "u1", "event": "R"}'::jsonb,
                              received_at => date_trunc('hour', now()));
SELECT received_at = date_trunc('hour', now()) AS given_received_at, ts = received_at AS ts_defaults_to_received
  FROM ev WHERE message_id = 'm17';

-- per-stream counters, and the batch log they come from
SELECT stream, batches, accepted, duplicates, conflicts, quarantined, rejected, in_quarantine
  FROM eventkit.stream_stats ORDER BY stream_id;
SELECT sum(items) = sum(accepted + duplicates + conflicts + quarantined + rejected) AS balanced,
       count(DISTINCT batch_id) AS batches, min(ingested_by) AS ingested_by
  FROM eventkit.ingest_batches;
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids FROM ev;
SELECT b.batch_id = e.batch_id AS rows_carry_batch_id
  FROM ev e JOIN eventkit.ingest_batches b USING (batch_id) WHERE e.message_id = 'm1';

-- argument errors
SELECT * FROM eventkit.ingest(NULL, '{}'::jsonb);
SELECT * FROM eventkit.ingest('ev', NULL::jsonb);
SELECT * FROM eventkit.ingest('ev', '{}'::jsonb, NULL);
SELECT * FROM eventkit.ingest('ev', '{}'::jsonb, 'infinity');
CREATE TABLE not_a_stream (a int);
SELECT * FROM eventkit.ingest('not_a_stream', '{}'::jsonb);
SELECT * FROM eventkit.ingest(0, '{}'::jsonb);
SELECT * FROM eventkit.ingest('ev', '{"batch": {"type": "track"}}'::jsonb);
SELECT * FROM eventkit.ingest('ev', '{"batch": [], "sentAt": "yesterday"}'::jsonb);
SELECT * FROM eventkit.ingest('ev', '{"batch": [], "context": [1]}'::jsonb);
-- an empty batch is fine
SELECT * FROM eventkit.ingest('ev', '{"batch": []}'::jsonb);
SELECT * FROM eventkit.ingest('ev', '[]'::jsonb);

DROP TABLE not_a_stream;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
