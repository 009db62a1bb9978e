-- ingest(stream, text): JSON text or NDJSON; a malformed item is reported, not fatal.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');

-- JSON text: one event, an array, an envelope
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "t1", "userId": "u", "event": "E"}'::text);
SELECT * FROM eventkit.ingest('ev', '[{"type": "track", "messageId": "t2", "userId": "u", "event": "E"},
  {"type": "track", "messageId": "t3", "userId": "u", "event": "E"}]'::text);
SELECT * FROM eventkit.ingest('ev', '{"batch": [{"type": "track", "messageId": "t4", "userId": "u", "event": "E"}]}'::text);
-- a pretty-printed single event spans lines but is still one JSON document
SELECT * FROM eventkit.ingest('ev', E'{\n  "type": "track",\n  "messageId": "t5",\n  "userId": "u",\n  "event": "E"\n}'::text);

-- NDJSON: the malformed line and the bad event are quarantined, the rest stored
SELECT * FROM eventkit.ingest('ev', E'{"type": "track", "messageId": "n1", "userId": "u", "event": "E"}\n'
                                 || E'{"type": "track", "messageId": "n2", "userId": \n'
                                 || E'\n'
                                 || E'   \r\n'
                                 || E'{"type": "track", "messageId": "n3", "userId": "u", "event": "E"}\r\n'
                                 || E'{"type": "track", "messageId": "n4", "event": "E"}\n'
                                 || E'17\n'
                                 || E'{"type": "track", "messageId": "n1", "userId": "u", "event": "E"}');
SELECT item, message_id, raw, payload, reasons->0->>'reason' AS reason, reasons->0->>'message' AS message
  FROM eventkit.quarantine ORDER BY quarantine_id;

-- a malformed single document is kept whole as raw text
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "x1",'::text);
SELECT * FROM eventkit.ingest('ev', '[{"type": "track"}, {]'::text);
-- escapes JSON allows but PostgreSQL cannot store: lone surrogates, \u0000
SELECT * FROM eventkit.ingest('ev', E'{"type": "track", "messageId": "x2", "userId": "u", "event": "\\ud800"}\n{"type": "track", "messageId": "x3", "userId": "u", "event": "a\\u0000b"}'::text);
-- valid escapes are decoded
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "x4", "userId": "u", "event": "caf\u00e9 \ud83d\ude00"}'::text);
SELECT event FROM ev WHERE message_id = 'x4';
SELECT item, raw, reasons->0->>'reason' AS reason, reasons->0->>'message' AS message
  FROM eventkit.quarantine WHERE message_id IS NULL ORDER BY quarantine_id;

-- empty payloads are an error
SELECT * FROM eventkit.ingest('ev', ''::text);
SELECT * FROM eventkit.ingest('ev', E' \n\t '::text);
SELECT * FROM eventkit.ingest('ev', NULL::text);

SELECT message_id FROM ev ORDER BY message_id;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
