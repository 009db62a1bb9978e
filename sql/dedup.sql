-- Exact dedup: duplicates, conflicts, derived ids, rollback, ledger generations.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');

SELECT * FROM eventkit.ingest('ev', '[{"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 1}},
                                      {"type": "track", "messageId": "d2", "userId": "u1", "event": "A", "properties": {"n": 2}}]'::jsonb);
-- the same batch again: all duplicates, even with a new sentAt
SELECT * FROM eventkit.ingest('ev', '{"batch": [{"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 1}},
                                      {"type": "track", "messageId": "d2", "userId": "u1", "event": "A", "properties": {"n": 2}}],
                                      "sentAt": "2030-01-01T00:00:00Z"}'::jsonb);
-- same messageId, different content: a conflict; the first copy is kept
SELECT * FROM eventkit.ingest_verbose('ev', '{"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 99}}'::jsonb);
SELECT message_id, properties FROM ev ORDER BY message_id;
SELECT stream_id, item, message_id, payload FROM eventkit.conflicts ORDER BY conflict_id;

-- key order and whitespace do not matter (jsonb is canonical)
SELECT * FROM eventkit.ingest('ev', '{"properties": {"n": 2},  "event": "A", "userId": "u1", "messageId": "d2", "type": "track"}'::jsonb);

-- events without messageId get an id derived from their content
SELECT * FROM eventkit.ingest_verbose('ev', '[{"type": "track", "userId": "u5", "event": "NoId", "timestamp": "2020-05-05T00:00:00Z"},
                                              {"type": "track", "userId": "u5", "event": "NoId", "timestamp": "2020-05-05T00:00:00Z", "sentAt": "2020-05-05T00:00:01Z"},
                                              {"type": "track", "userId": "u5", "event": "NoId", "timestamp": "2020-05-05T00:00:02Z"}]'::jsonb) ORDER BY item;
SELECT count(*) AS derived, count(DISTINCT message_id) AS distinct_ids,
       bool_and(message_id ~ '^ek-[0-9a-f]{32}$') AS id_shape
  FROM ev WHERE user_id = 'u5';
-- derived ids are stable across releases (a retry after an upgrade must still
-- be a duplicate): ids of nested content, pinned
SELECT item, message_id, status FROM eventkit.ingest_verbose('ev', (
  '[{"type": "track", "userId": "u6", "event": "Nested", "timestamp": "2020-05-05T00:00:00Z",'
  || ' "properties": {"a": [1, 2.50, -3, true, false, null, "s", [], {}, [[{"x": {"y": [0]}}]]],'
  || ' "b": {"c": {"d": "é"}}, "n": 12345678901234567890, "e": "", "z": null},'
  || ' "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1"}}},'
  || ' {"type": "identify", "userId": "u6", "timestamp": "2020-05-05T00:00:00Z", "traits": '
  || (SELECT '{' || string_agg(format('"k%s": [%s, "v%s"]', i, i, i), ', ') || '}' FROM generate_series(1, 40) i)
  || '}]')::jsonb) ORDER BY item;

-- a rolled-back ingest leaves no trace in the ledger
BEGIN;
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "r1", "userId": "u1", "event": "A"}'::jsonb);
ROLLBACK;
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "r1", "userId": "u1", "event": "A"}'::jsonb);
-- and so does one in a failed subtransaction
BEGIN;
SAVEPOINT s;
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "r2", "userId": "u1", "event": "A"}'::jsonb);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "r2", "userId": "u1", "event": "A"}'::jsonb);
COMMIT;
SELECT message_id, count(*) FROM ev WHERE message_id LIKE 'r%' GROUP BY 1 ORDER BY 1;

-- many ingest calls in one transaction: past half the subtransaction cache
-- the ids are claimed with INSERT ... ON CONFLICT instead; same results
CREATE TEMP TABLE loop_results (i int, accepted bigint, duplicates bigint);
DO $$
DECLARE r eventkit.ingest_result;
BEGIN
  FOR i IN 1 .. 80 LOOP
    r := eventkit.ingest('ev', jsonb_build_array(
           jsonb_build_object('type', 'track', 'messageId', 'loop' || i, 'userId', 'u', 'event', 'L'),
           jsonb_build_object('type', 'track', 'messageId', 'loop' || (i - 1), 'userId', 'u', 'event', 'L')));
    INSERT INTO loop_results VALUES (i, r.accepted, r.duplicates);
  END LOOP;
END $$;
SELECT accepted, duplicates, count(*) FROM loop_results GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids FROM ev WHERE event = 'L';

-- ledger generations: rotated every dedup_window, dropped whole once
-- they ended more than dedup_window ago.  Time is moved by backdating.
SELECT gen, ended_at IS NULL AS current FROM eventkit.ledger_generations ORDER BY gen;
SELECT eventkit.run_maintenance('ev');
SELECT gen FROM eventkit.ledger_generations ORDER BY gen;   -- not due yet
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days';
SELECT eventkit.run_maintenance('ev');
SELECT gen, ended_at IS NULL AS current FROM eventkit.ledger_generations ORDER BY gen;
SELECT ledger_gen FROM eventkit.streams;
SELECT relname FROM pg_class WHERE relnamespace = 'eventkit_internal'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1;
-- ids of the old generation are still duplicates; new ids go to the new one
SELECT * FROM eventkit.ingest('ev', '[{"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 1}},
                                      {"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 3}},
                                      {"type": "track", "messageId": "g2", "userId": "u1", "event": "A"}]'::jsonb);
SELECT gen, count(*) FROM eventkit_internal.ledger_1 GROUP BY gen ORDER BY gen;
-- generation 1 ended 8 days ago: older than the window, so it is dropped
UPDATE eventkit.ledger_generations SET ended_at = ended_at - interval '8 days' WHERE gen = 1;
SELECT eventkit.run_maintenance('ev');
SELECT gen FROM eventkit.ledger_generations ORDER BY gen;
SELECT relname FROM pg_class WHERE relnamespace = 'eventkit_internal'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1;
-- d1 is past the window now: stored again; g2 is still a duplicate
SELECT * FROM eventkit.ingest('ev', '[{"type": "track", "messageId": "d1", "userId": "u1", "event": "A", "properties": {"n": 1}},
                                      {"type": "track", "messageId": "g2", "userId": "u1", "event": "A"}]'::jsonb);

SELECT stream, accepted, duplicates, conflicts FROM eventkit.stream_stats;
SELECT eventkit.drop_stream('ev');

-- derived ids, pinned (values of 1.16's code): the second half hashes the
-- pairs with the second seed in a pass of its own since 1.17, only for an
-- event without a usable messageId (null or empty counts as a pair; a
-- context, whose key sorts before messageId's, and the volatile keys); the
-- same from jsonb and from text (all five duplicates then)
SELECT eventkit.create_stream('ev_pin');
SELECT item, message_id, status FROM eventkit.ingest_verbose('ev_pin', '[
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "sentAt": "2020-05-05T00:00:02Z", "receivedAt": "2020-05-05T00:00:03Z", "timestamp": "2020-05-05T00:00:00Z"},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z"},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z", "messageId": null},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z", "messageId": ""},
  {"type": "identify", "anonymousId": "a9", "traits": {"email": "x@y", "n": -12.50}, "timestamp": "2020-05-05T00:00:00Z", "integrations": {"All": true}}
]'::jsonb) ORDER BY item;
SELECT * FROM eventkit.ingest('ev_pin', '[
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "sentAt": "2020-05-05T00:00:02Z", "receivedAt": "2020-05-05T00:00:03Z", "timestamp": "2020-05-05T00:00:00Z"},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z"},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z", "messageId": null},
  {"type": "track", "userId": "p1", "event": "Pin", "context": {"ip": "1.2.3.4", "library": {"name": "x", "version": "1.0"}, "list": [1, 2.5, null, true, "s"]}, "properties": {"a": 1, "b": [{"c": "d"}]}, "timestamp": "2020-05-05T00:00:00Z", "messageId": ""},
  {"type": "identify", "anonymousId": "a9", "traits": {"email": "x@y", "n": -12.50}, "timestamp": "2020-05-05T00:00:00Z", "integrations": {"All": true}}
]'::text);
SELECT eventkit.drop_stream('ev_pin');
DROP EXTENSION eventkit;
