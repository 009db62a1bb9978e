-- Owned formats, pinned: what eventkit stores or dumps in a layout of its
-- own must never change silently.
--   * the 64-bit id hash behind the ledger filters
--     (src/pipeline/dedup/ledger_filter.c): known answers;
--   * a ledger filter's bytes, built by maintenance from a fixed set of ids,
--     and its answers for ids in and out;
--   * the content fingerprints stored in the ledger (src/pipeline/event.c);
--     the ids derived from them for events without messageId are pinned
--     in dedup.sql ("derived ids are stable across releases").
-- test/t/017_pinned_formats.pl recomputes the hashes and the filter below
-- from this file's expected output with an independent implementation
-- (test/pinned/EkReference.pm), so the answers pinned here are the
-- documented algorithm's, not merely what the code says today.
CREATE EXTENSION eventkit;

-- test-only functions: not for PUBLIC
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'eventkit_internal'::regnamespace
   AND p.proname IN ('id_hash64', 'ledger_filter_contains', 'regex_fast_path')
 ORDER BY 1::text;

-- The id hash: known answers.  Inputs are message ids (text, at most 256
-- bytes): empty, every length around the 8-byte words (1..17), ASCII,
-- UTF-8, control characters, 255 and 256 bytes.  input is the id's UTF-8
-- bytes in hex; hash the 64 bits in hex.
CREATE TEMP TABLE vectors (label text PRIMARY KEY, id text NOT NULL);
INSERT INTO vectors
SELECT 'len' || lpad(n::text, 2, '0'), left('0123456789abcdefgh', n) FROM generate_series(0, 17) n;
INSERT INTO vectors VALUES
  ('uuid', '3f2504e0-4f89-11d3-9a0c-0305e82c3301'),
  ('segment', 'ajs-next-1690000000000-6e9a1c8d-1a2b-4c3d-9e8f-0a1b2c3d4e5f'),
  ('space', ' '),
  ('utf8-2', 'événement'),
  ('utf8-3', '日本語のID'),
  ('utf8-4', '🎉🎉'),
  ('utf8-mix', 'ключ-é-日-🎉-x'),
  ('controls', chr(1) || chr(2) || chr(9) || chr(10) || chr(31) || chr(127)),
  ('high', chr(128) || chr(255) || chr(65535) || chr(1114111)),
  ('len255', repeat('x', 255)),
  ('len256', repeat('x', 256)),
  ('len256-mix', left(repeat('0123456789abcdefé', 20), 242));
\pset format unaligned
SELECT label, octet_length(id) AS bytes, lpad(to_hex(eventkit_internal.id_hash64(id)), 16, '0') AS hash,
       encode(convert_to(id, 'UTF8'), 'hex') AS input
  FROM vectors ORDER BY label;
\pset format aligned
-- the hash is of the bytes: equal texts hash equally, whatever their storage
SELECT eventkit_internal.id_hash64(repeat('x', 3000)) = eventkit_internal.id_hash64(
         (SELECT string_agg('x', '') FROM generate_series(1, 3000))) AS detoasted_alike;

-- A ledger filter, built by maintenance (the production path) over the
-- 100 ids pinned-id-001 .. pinned-id-100 (13 bytes: a whole word and a
-- tail): 100 ids x 32 bits = 7 blocks of 64 bytes after the 24-byte
-- header.  Its bytes, 64 to a row.
SELECT eventkit.create_stream('pins') IS NOT NULL AS created;
SET eventkit.ledger_generation_rows = 50;
SELECT accepted FROM eventkit.ingest('pins', (
  SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', format('pinned-id-%s', lpad(i::text, 3, '0')),
                                      'userId', 'u', 'event', 'E') ORDER BY i)
    FROM generate_series(1, 100) i));
SELECT eventkit.run_maintenance('pins');	-- seals generation 1
SELECT eventkit.run_maintenance('pins');	-- builds its filter
RESET eventkit.ledger_generation_rows;
CREATE TEMP TABLE pinned_filter AS
  SELECT filter FROM eventkit.ledger_generations WHERE gen = 1;
SELECT octet_length(filter) AS bytes, encode(sha256(filter), 'hex') AS sha256 FROM pinned_filter;
SELECT r AS row, encode(substr(filter, 64 * r + 1, 64), 'hex') AS bytes
  FROM pinned_filter, generate_series(0, (octet_length(filter) - 1) / 64) r ORDER BY r;
-- its answers: every id it was built from (no false negatives) ...
SELECT count(*) FILTER (WHERE eventkit_internal.ledger_filter_contains(filter, format('pinned-id-%s', lpad(i::text, 3, '0')))) AS members_found
  FROM pinned_filter, generate_series(1, 100) i;
-- ... and none of 2000 others (about 0.002% false positives)
SELECT count(*) FILTER (WHERE eventkit_internal.ledger_filter_contains(filter, format('other-id-%s', i))) AS false_positives
  FROM pinned_filter, generate_series(1, 2000) i;
-- ingest agrees: members are duplicates, others new
SELECT accepted, duplicates FROM eventkit.ingest('pins', '[{"type": "track", "messageId": "pinned-id-007", "userId": "u", "event": "E"},
                                                         {"type": "track", "messageId": "pinned-id-new", "userId": "u", "event": "E"}]'::jsonb);
-- Which block an id's bits are in, and which bits: pinned with made-up
-- filters.  In the first, of 4 blocks only block 2 has its bits set: the
-- ids it answers for are those whose hash picks block 2.  In the second,
-- one block with every even bit set: it answers for the ids whose 8 bits
-- are all even.
CREATE TEMP TABLE made_up (name text, filter bytea);
INSERT INTO made_up VALUES
  ('block2', decode('454b4246010800000000000000000000' || '04000000' || '00000000'
                    || repeat('00', 128) || repeat('ff', 64) || repeat('00', 64), 'hex')),
  ('even', decode('454b4246010800000000000000000000' || '01000000' || '00000000'
                  || repeat('55', 64), 'hex'));
SELECT name, count(*) FILTER (WHERE eventkit_internal.ledger_filter_contains(filter, format('other-id-%s', i))) AS answers_yes
  FROM made_up, generate_series(1, 2000) i GROUP BY name ORDER BY name;
\pset format unaligned
SELECT name, string_agg(format('other-id-%s', i), ' ' ORDER BY i) AS yes_for
  FROM made_up, generate_series(1, 2000) i
 WHERE eventkit_internal.ledger_filter_contains(filter, format('other-id-%s', i))
   AND (name = 'even' OR i <= 200)
 GROUP BY name ORDER BY name;
\pset format aligned

-- what is not a filter is refused
SELECT eventkit_internal.ledger_filter_contains('\x454b4246'::bytea, 'x');
SELECT eventkit_internal.ledger_filter_contains(overlay(filter placing '\x02'::bytea from 5), 'x') FROM pinned_filter;

-- Content fingerprints as the ledger stores them: pinned.
SELECT accepted FROM eventkit.ingest('pins', '[
  {"type": "track", "messageId": "fp-1", "userId": "u", "event": "E"},
  {"type": "track", "messageId": "fp-2", "userId": "u", "event": "E", "sentAt": "2020-01-01T00:00:00Z"},
  {"type": "track", "messageId": "fp-3", "userId": "u", "event": "E", "properties": {"n": 1.50, "s": "é", "a": [1, [2, {}], null, true, false], "o": {}}},
  {"type": "identify", "messageId": "fp-4", "userId": "u", "traits": {"k": "v", "long": "0123456789012345678901234567890123456789"}},
  {"userId": "u", "type": "track", "event": "E", "messageId": "fp-5", "receivedAt": "2021-01-01T00:00:00Z"}]'::jsonb);
SELECT e.message_id, lpad(to_hex(l.fingerprint), 16, '0') AS fingerprint
  FROM pins e JOIN eventkit_internal.ledger_1 l ON l.message_key = eventkit_internal.ledger_key(e.message_id)
 WHERE e.message_id LIKE 'fp-%' ORDER BY e.message_id;

-- The ledger key (format 1, stored in every generation): 16 bytes, the
-- first 8 id_hash64 little-endian (the filters are built from them), the
-- last 8 a second lane.  Known answers, and the first lane is id_hash64.
SELECT id, eventkit_internal.ledger_key(id) AS ledger_key
  FROM (VALUES (''), ('a'), ('abcdefgh'), ('abcdefghi'), ('message-1'), ('message-2'),
               ('0f8fad5b-d9cb-469f-a165-70867728950e'), ('é')) v(id) ORDER BY id;
SELECT count(*) FILTER (WHERE substr(k, 1, 16) = (SELECT string_agg(lpad(to_hex(get_byte(int8send(eventkit_internal.id_hash64(id)), 7 - b)), 2, '0'), '' ORDER BY b) FROM generate_series(0, 7) b)) AS first_lane_is_id_hash64,
       count(*) AS ids, count(DISTINCT k) AS distinct_keys
  FROM (SELECT format('pinned-id-%s', i) AS id,
               replace(eventkit_internal.ledger_key(format('pinned-id-%s', i))::text, '-', '') AS k
          FROM generate_series(1, 1000) i) v;
-- the rows ingested above are stored under their keys
SELECT count(*) AS keyed_rows FROM eventkit_internal.ledger_1 l
 WHERE EXISTS (SELECT FROM pins e WHERE eventkit_internal.ledger_key(e.message_id) = l.message_key);

SELECT eventkit.drop_stream('pins');
DROP EXTENSION eventkit;
