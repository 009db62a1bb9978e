-- ingest(text) collects its events from the JSON parser's tree (1.17:
-- src/pipeline/json_parse.c, payload.c, event.c): each event's columns are
-- serialized from the tree, its content fingerprint walks the tree, its
-- size is its jsonb's length noted by the parser; ingest(jsonb) reads the
-- same events from jsonb.  The same payload sent both ways must give the
-- same rows, fingerprints, derived ids, quarantine rows and errors.  With
-- eventkit.testing_json_crosscheck on, every text the parser reads is
-- compared with jsonb_in's, and every extra column with PostgreSQL's writer.
CREATE EXTENSION eventkit;
SET eventkit.testing_json_crosscheck = on;
SELECT eventkit.create_stream('pt_text'), eventkit.create_stream('pt_jsonb');
SELECT stream_id, relid FROM eventkit.streams ORDER BY stream_id;

-- the pinned fingerprints (pinned_formats.sql sends them as jsonb), as text
SELECT accepted FROM eventkit.ingest('pt_text', '[
  {"type": "track", "messageId": "fp-1", "userId": "u", "event": "E"},
  {"type": "track", "messageId": "fp-2", "userId": "u", "event": "E", "sentAt": "2020-01-01T00:00:00Z"},
  {"type": "track", "messageId": "fp-3", "userId": "u", "event": "E", "properties": {"n": 1.50, "s": "é", "a": [1, [2, {}], null, true, false], "o": {}}},
  {"type": "identify", "messageId": "fp-4", "userId": "u", "traits": {"k": "v", "long": "0123456789012345678901234567890123456789"}},
  {"userId": "u", "type": "track", "event": "E", "messageId": "fp-5", "receivedAt": "2021-01-01T00:00:00Z"}]'::text);
SELECT e.message_id, lpad(to_hex(l.fingerprint), 16, '0') AS fingerprint
  FROM pt_text e JOIN eventkit_internal.ledger_1 l ON l.message_key = eventkit_internal.ledger_key(e.message_id)
 WHERE e.message_id LIKE 'fp-%' ORDER BY e.message_id;
TRUNCATE pt_text;
TRUNCATE eventkit_internal.ledger_1;

-- one payload, both ways: an envelope (its sentAt and context lent to the
-- events), events with and without messageId, numbers of every shape,
-- nested and empty containers, duplicate keys, escapes, extra keys, bad
-- events (quarantined)
CREATE TABLE payload (t text);
INSERT INTO payload VALUES ('{"sentAt": "2024-05-01T12:00:01Z", "context": {"library": {"name": "sdk"}, "ip": "1.2.3.4"}, "batch": [
  {"type": "track", "messageId": "m1", "userId": "u1", "event": "Order", "originalTimestamp": "2024-05-01T12:00:00Z",
   "properties": {"revenue": 12.50, "tax": 0, "neg": -0.0, "big": 123456789012345678901234567890, "tiny": 0.000000000000000000001,
                  "wide": 1.0000000000000000000000000000000000000000000000000000000000000000001,
                  "ints": [0, -1, 10, 10000, 99990000, 999999999999999999, -1000000000000000000],
                  "dec": [0.5, 0.0001, 12.340, 1234.5678, 10000.0001, -99.99, 100.000],
                  "dup": 1, "dup": {"x": [1, {"y": null}]}, "esc": "q\"b\\s\/\n\u00e9\ud83d\ude00", "": {}},
   "context": {"page": {"path": "/a"}, "library": {"name": "own"}}, "integrations": {}, "zz": [[], {}, [{}]]},
  {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"n": 7}, "timestamp": "2024-05-01T11:00:00Z"},
  {"type": "identify", "userId": "u2", "traits": {"plan": "pro", "seats": 25, "k": [1.5, "2", true]}},
  {"type": "alias", "userId": "u3", "previousId": 42},
  {"type": "group", "userId": "u4", "groupId": "g", "traits": {"a": {"b": {"c": {"d": 1}}}}},
  {"type": "track", "userId": "u5", "event": "NoId", "properties": {"p": 3.25}, "receivedAt": "2000-01-01T00:00:00Z"},
  {"type": "track", "userId": "u5", "event": "NoId", "properties": {"p": 3.25}},
  {"type": "track", "userId": "u6", "event": "E", "properties": [1, 2]},
  {"type": "wrong", "userId": "u7", "event": "E"},
  {"type": "track", "event": "E"},
  {"type": "track", "userId": ["x"], "event": "E", "context": "c"},
  {"type": "track", "messageId": 17, "userId": 18.50, "event": "E", "timestamp": "yesterday"},
  "not an event", 12, null, [1, {"a": 2}]]}');
SELECT * FROM eventkit.ingest('pt_text', (SELECT t FROM payload), '2024-05-01T12:00:02Z');
SELECT * FROM eventkit.ingest('pt_jsonb', (SELECT t::jsonb FROM payload), '2024-05-01T12:00:02Z');

-- the same rows (every column but the stream's own ingest bookkeeping)
CREATE VIEW both_rows AS
  SELECT 'text' AS via, message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra
    FROM pt_text
  UNION ALL
  SELECT 'jsonb', message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra
    FROM pt_jsonb;
SELECT count(*) FILTER (WHERE via = 'text') AS text_rows, count(*) FILTER (WHERE via = 'jsonb') AS jsonb_rows
  FROM both_rows;
(SELECT message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra FROM pt_text
 EXCEPT ALL
 SELECT message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra FROM pt_jsonb)
UNION ALL
(SELECT message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra FROM pt_jsonb
 EXCEPT ALL
 SELECT message_id, type, event, user_id, anonymous_id, ts, received_at, properties, traits, context, extra FROM pt_text);
SELECT message_id, event, properties, context, extra FROM pt_text ORDER BY message_id;

-- the same fingerprints
SELECT t.message_id, t.fingerprint = j.fingerprint AS same_fingerprint
  FROM (SELECT e.message_id, l.fingerprint FROM pt_text e
          JOIN eventkit_internal.ledger_1 l ON l.message_key = eventkit_internal.ledger_key(e.message_id)) t
  FULL JOIN (SELECT e.message_id, l.fingerprint FROM pt_jsonb e
          JOIN eventkit_internal.ledger_2 l ON l.message_key = eventkit_internal.ledger_key(e.message_id)) j
    USING (message_id)
 ORDER BY 1;

-- the same quarantine rows
SELECT q.item, s.relid, q.message_id, q.reasons, q.payload, q.envelope
  FROM eventkit.quarantine q JOIN eventkit.streams s USING (stream_id)
 ORDER BY q.item, s.relid::text;
SELECT count(*) AS differing_items
  FROM eventkit.quarantine a JOIN eventkit.quarantine b USING (item)
 WHERE a.stream_id = 1 AND b.stream_id = 2
   AND (a.message_id, a.reasons, a.payload, a.envelope, a.fingerprint)
       IS DISTINCT FROM (b.message_id, b.reasons, b.payload, b.envelope, b.fingerprint);

-- sent again, both ways: duplicates, the same on either side
SELECT * FROM eventkit.ingest('pt_jsonb', (SELECT t FROM payload), '2024-05-01T12:00:03Z');
SELECT * FROM eventkit.ingest('pt_text', (SELECT t::jsonb FROM payload), '2024-05-01T12:00:03Z');

-- an event's size is its jsonb's: the same limit errors both ways
SET eventkit.max_event_bytes = 100;
SELECT * FROM eventkit.ingest('pt_text', '[{"type": "track", "userId": "u", "event": "E"}, {"type": "track", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, "x"]}}]');
SELECT * FROM eventkit.ingest('pt_jsonb', '[{"type": "track", "userId": "u", "event": "E"}, {"type": "track", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, "x"]}}]'::jsonb);
SELECT * FROM eventkit.ingest('pt_text', '{"type": "track", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, "xxxxxxxxxx"]}}');
SELECT * FROM eventkit.ingest('pt_jsonb', '{"type": "track", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, "xxxxxxxxxx"]}}'::jsonb);
RESET eventkit.max_event_bytes;

-- a bad envelope: the same errors
SELECT * FROM eventkit.ingest('pt_text', '{"batch": {}}');
SELECT * FROM eventkit.ingest('pt_jsonb', '{"batch": {}}'::jsonb);
SELECT * FROM eventkit.ingest('pt_text', '{"batch": [], "context": [1]}');
SELECT * FROM eventkit.ingest('pt_jsonb', '{"batch": [], "context": [1]}'::jsonb);
SELECT * FROM eventkit.ingest('pt_text', '{"batch": [], "sentAt": 5}');
SELECT * FROM eventkit.ingest('pt_jsonb', '{"batch": [], "sentAt": 5}'::jsonb);

-- numbers at the edges of numeric's short format, which the parser writes
-- itself (63 digits after the point, 256 before it), and one past them
-- (numeric_in): stored as jsonb_in stores them (the crosscheck compares the
-- bytes), with the fingerprint of the same event sent as jsonb
CREATE TABLE edges (t text);
INSERT INTO edges SELECT format('{"type": "track", "messageId": "edges", "userId": "u", "event": "E", "properties": '
  '{"f63": 0.%s1, "f64": 0.%s1, "i256": %s, "i257": %s, "n256": -%s.%s5, "z": -0.%s}}',
  repeat('0', 62), repeat('0', 63), '1' || repeat('0', 255), '1' || repeat('0', 256),
  repeat('9', 256), repeat('0', 62), repeat('0', 63));
SELECT accepted FROM eventkit.ingest('pt_text', (SELECT t FROM edges));
SELECT accepted FROM eventkit.ingest('pt_jsonb', (SELECT t::jsonb FROM edges));
SELECT k, length(t.properties->>k) AS text_length, t.properties->k = j.properties->k AS same_value
  FROM pt_text t JOIN pt_jsonb j USING (message_id), unnest(ARRAY['f63', 'f64', 'i256', 'i257', 'n256', 'z']) k
 WHERE message_id = 'edges' ORDER BY k;
SELECT a.fingerprint = b.fingerprint AS same_fingerprint
  FROM eventkit_internal.ledger_1 a, eventkit_internal.ledger_2 b
 WHERE a.message_key = eventkit_internal.ledger_key('edges') AND b.message_key = a.message_key;
DROP TABLE edges;

DROP VIEW both_rows;
DROP TABLE payload;
SELECT eventkit.drop_stream('pt_text'), eventkit.drop_stream('pt_jsonb');
RESET eventkit.testing_json_crosscheck;
DROP EXTENSION eventkit;
