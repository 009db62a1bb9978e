-- ingest(text) parses JSON with its own parser (json_parse.c) and falls back
-- to jsonb_in when it declines.  With eventkit.testing_json_crosscheck on,
-- every text the fast parser accepts is parsed again by jsonb_in and the two
-- results must be byte-for-byte equal (an ERROR otherwise), and a valid text
-- it declines raises a NOTICE: so this file shows both that the results are
-- right and which texts take the slow path.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('js');
SET eventkit.testing_json_crosscheck = on;

CREATE FUNCTION ev(id text, props text) RETURNS text LANGUAGE sql AS
$$ SELECT format('{"type":"track","messageId":"%s","userId":"u","event":"E","properties":%s}', id, props) $$;

-- hand-picked cases: every one must be stored, its properties equal jsonb_in's
CREATE TABLE cases (id text PRIMARY KEY, props text);
INSERT INTO cases VALUES
  ('empty_object', '{}'),
  ('empty_array', '{"a": []}'),
  ('nested_empty', '{"a": [[], {}, [{}], {"b": {}}]}'),
  ('whitespace', E'\t{ \r\n "a" :\n 1 , "b"\t: [ 1 ,2 ] }  '),
  ('duplicate_keys_last_wins', '{"a": 1, "b": 2, "a": 3, "a": {"x": 1}}'),
  ('duplicate_nested', '{"a": {"k": 1, "k": 2}, "b": [{"k": 1, "j": 0, "k": 3}]}'),
  ('key_order', '{"bb": 1, "a": 2, "ccc": 3, "b": 4, "": 5, "aa": 6}'),
  ('escapes', '{"s": "q\"b\\s\/n\nr\rt\tb\bf\f"}'),
  ('unicode_escapes', '{"s": "\u00e9\u20ac\ud83d\ude00\u0041", "\u006b": "key escaped"}'),
  ('raw_utf8', '{"s": "é€😀 ünïcödé", "ключ": "значение"}'),
  ('numbers', '{"a": 0, "b": -0, "c": 1, "d": -1, "e": 10, "f": 100000000, "g": 0.5, "h": -0.50, "i": 12.340}'),
  ('int18', '{"a": 999999999999999999, "b": -999999999999999999, "c": 100000000000000000}'),
  ('int19_and_more', '{"a": 1000000000000000000, "b": -9223372036854775808, "c": 123456789012345678901234567890}'),
  ('decimals', '{"a": 0.000000000000000001, "b": 3.14159265358979323846264338327950288, "c": 1.0, "d": 100.000}'),
  ('decimals18', '{"a": 123456789.123456789, "b": -12345678901234567.8, "c": 1234567890123456789.5, "d": -0.0, "e": 0.10, "f": -0.000000000000000009}'),
  ('literals', '{"t": true, "f": false, "n": null, "a": [true, false, null]}'),
  ('long_string', '{"s": "' || repeat('x', 5000) || '"}'),
  ('deep', '{"d": ' || repeat('[', 100) || '1' || repeat(']', 100) || '}'),
  ('deep_objects', '{"d": ' || repeat('{"k":', 100) || 'null' || repeat('}', 100) || '}'),
  -- more than JB_OFFSET_STRIDE (32) keys and elements: offsets every 32nd entry
  ('many_keys', (SELECT '{' || string_agg(format('"k%s": %s', i, i), ', ') || '}' FROM generate_series(1, 100) i)),
  ('many_elems', (SELECT '{"a": [' || string_agg(format('"e%s"', i), ', ') || ']}' FROM generate_series(1, 100) i)),
  ('many_dup_keys', (SELECT '{' || string_agg(format('"k%s": %s', i % 20, i), ', ') || '}' FROM generate_series(1, 100) i)),
  ('aligned', '{"a": "x", "b": 1, "c": "xy", "d": [1, "xyz", 2.5], "e": {"f": "xyzw", "g": 7}}'),
  -- small objects' insertion sort (1.17: it tells of duplicates as it sorts,
  -- and leaves a pair after a smaller key where it is)
  ('dup_in_order', '{"a": 1, "a": 2}'),
  ('dup_triple_unsorted', '{"c": 1, "a": 2, "b": 3, "a": 4, "c": 5, "a": 6}'),
  ('dup_after_larger', '{"bb": 1, "a": 1, "cc": 2, "a": 3, "bb": 4, "": 0, "": 9}'),
  ('sixteen_keys_dups', (SELECT '{' || string_agg(format('"%s": %s', chr(122 - i % 9), i), ', ') || '}' FROM generate_series(1, 16) i)),
  ('seventeen_keys_dups', (SELECT '{' || string_agg(format('"%s": %s', chr(122 - i % 9), i), ', ') || '}' FROM generate_series(1, 17) i)),
  -- the parser's containers come from chunks that grow (1.17): many small
  -- containers across chunks, and one larger than a chunk
  ('arena_chunks', (SELECT '{"a": [' || string_agg(format('{"k%s": [%s, {"x": "%s"}]}', i, i, i), ', ') || ']}' FROM generate_series(1, 400) i)),
  ('arena_big_object', (SELECT '{' || string_agg(format('"k%s": %s', i, i), ', ') || '}' FROM generate_series(1, 1000) i));
SELECT id, r.accepted, r.quarantined
  FROM cases, LATERAL eventkit.ingest('js', ev(id, props)) r ORDER BY id;
SELECT c.id FROM cases c LEFT JOIN js ON js.message_id = c.id
 WHERE js.properties IS DISTINCT FROM c.props::jsonb ORDER BY 1;
SELECT properties FROM js WHERE message_id IN ('duplicate_keys_last_wins', 'key_order', 'numbers', 'escapes')
 ORDER BY message_id;

-- valid JSON the fast parser leaves to jsonb_in (a NOTICE each): exponents,
-- very long numbers, nesting deeper than 512
SELECT * FROM eventkit.ingest('js', ev('exp', '{"a": 1e3, "b": 2.5E-2}'));
SELECT * FROM eventkit.ingest('js', ev('longnum', '{"a": ' || repeat('9', 1001) || '}'));
SELECT * FROM eventkit.ingest('js', ev('deeper', '{"d": ' || repeat('[', 600) || repeat(']', 600) || '}'));
SELECT message_id, properties->'a' AS a, properties->'b' AS b FROM js
 WHERE message_id IN ('exp') ORDER BY 1;
SELECT length(properties->>'a') FROM js WHERE message_id = 'longnum';

-- invalid JSON: declined by the fast parser, and jsonb_in's error message
-- is what the quarantine row keeps
TRUNCATE eventkit.quarantine;
SELECT * FROM eventkit.ingest('js', E'{"a": 01}\n{"a": 1.}\n{"a": .5}\n{"a": -}\n{"a": +1}\n{"a": 1x}\n'
  || E'{"a": tru}\n{"a": nulll}\n{"a" 1}\n{"a": 1,}\n[1,]\n{"a": "\\x"}\n{"a": "\\u12"}\n'
  || E'{"a": "\\ud800"}\n{"a": "\\udc00\\ud800"}\n{"a": "\\u0000"}\n{"a": "tab\there"}\n{"a": 1} x\n'
  || E'{"a": "unterminated}\n{"a": [1, 2}\n{"a": {"b": 1]}\n{\'a\': 1}\n');
SELECT item, raw, reasons->0->>'reason' AS reason, reasons->0->>'message' AS message
  FROM eventkit.quarantine ORDER BY item;

-- top-level shapes: scalars, arrays, envelopes
TRUNCATE eventkit.quarantine;
SELECT * FROM eventkit.ingest('js', '"just a string"'::text);
SELECT * FROM eventkit.ingest('js', '  42  '::text);
SELECT * FROM eventkit.ingest('js', '[]'::text);
SELECT * FROM eventkit.ingest('js', '{"batch": [], "sentAt": "2024-01-01T00:00:00Z"}'::text);
SELECT item, payload, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY quarantine_id;

-- Random documents, deterministic (setseed): objects, arrays, strings with
-- escapes and non-ASCII text, integers and decimals of every length,
-- duplicate keys, whitespace.  Each becomes an event's properties.value;
-- the crosscheck compares every parse with jsonb_in's.
SELECT setseed(0.42);
CREATE FUNCTION rand_json(depth int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  k int := floor(random() * CASE WHEN depth > 4 THEN 6 ELSE 9 END)::int;
  n int;
  out text;
  ws text[] := ARRAY['', ' ', E'\n', E'\t', E' \r\n '];
  chars text[] := ARRAY['a', 'Z', '0', ' ', 'é', '€', '😀', '\"', '\\', '\/', '\n', '\t', '\b', '\f', '\r',
                        '\u00e9', '\u20AC', '\ud83d\ude00', '\u0041', 'x', 'key', '_', '-'];
BEGIN
  CASE k
    WHEN 0 THEN RETURN (ARRAY['true', 'false', 'null'])[1 + floor(random() * 3)::int];
    WHEN 1 THEN  -- integers of 1 to 25 digits, some negative, some zero
      n := 1 + floor(random() * 25)::int;
      out := CASE WHEN random() < 0.3 THEN '-' ELSE '' END;
      IF random() < 0.1 THEN RETURN out || '0'; END IF;
      out := out || (1 + floor(random() * 9)::int)::text;
      FOR i IN 2..n LOOP out := out || floor(random() * 10)::int::text; END LOOP;
      RETURN out;
    WHEN 2 THEN  -- decimals
      out := CASE WHEN random() < 0.3 THEN '-' ELSE '' END || floor(random() * 100000)::int::text || '.';
      n := 1 + floor(random() * 12)::int;
      FOR i IN 1..n LOOP out := out || floor(random() * 10)::int::text; END LOOP;
      RETURN out;
    WHEN 3, 4 THEN  -- strings
      out := '"';
      n := floor(random() * 12)::int;
      FOR i IN 1..n LOOP out := out || chars[1 + floor(random() * array_length(chars, 1))::int]; END LOOP;
      RETURN out || '"';
    WHEN 5, 6 THEN  -- arrays
      n := floor(random() * 6)::int;
      out := '[' || ws[1 + floor(random() * 5)::int];
      FOR i IN 1..n LOOP
        IF i > 1 THEN out := out || ',' || ws[1 + floor(random() * 5)::int]; END IF;
        out := out || rand_json(depth + 1);
      END LOOP;
      RETURN out || ws[1 + floor(random() * 5)::int] || ']';
    ELSE  -- objects, keys drawn from a small set so that some repeat
      n := floor(random() * 8)::int;
      out := '{';
      FOR i IN 1..n LOOP
        IF i > 1 THEN out := out || ','; END IF;
        out := out || ws[1 + floor(random() * 5)::int] || '"'
               || (ARRAY['a', 'b', 'id', 'name', 'é', 'k\"q', '', 'revenue', 'a\u0062'])[1 + floor(random() * 9)::int]
               || '"' || ws[1 + floor(random() * 5)::int] || ':' || rand_json(depth + 1);
      END LOOP;
      RETURN out || '}';
  END CASE;
END $$;
CREATE TABLE corpus AS SELECT i, rand_json(0) AS doc FROM generate_series(1, 3000) i;
-- the corpus has what it is meant to have
SELECT count(*) FILTER (WHERE doc ~ '\\u') > 100 AS escapes,
       count(*) FILTER (WHERE doc ~ '[0-9]{19}') > 20 AS long_ints,
       count(*) FILTER (WHERE doc ~ '^\{') > 500 AS objects,
       count(*) FILTER (WHERE doc::jsonb::text <> doc) > 500 AS normalized
  FROM corpus;

-- one event per document, one call each
SELECT count(*) AS stored FROM corpus c,
       LATERAL eventkit.ingest('js', ev('c' || c.i, '{"value": ' || c.doc || '}')) r
 WHERE r.accepted = 1;
SELECT count(*) AS different FROM corpus c JOIN js ON js.message_id = 'c' || c.i
 WHERE js.properties->'value' IS DISTINCT FROM c.doc::jsonb;

-- the whole corpus in one JSON array, and as NDJSON: every event a duplicate now
SET eventkit.max_batch_bytes = '4MB';
SET eventkit.max_batch_items = 5000;
SELECT * FROM eventkit.ingest('js', (SELECT '[' || string_agg(ev('c' || i, '{"value": ' || doc || '}'), ', ' ORDER BY i) || ']' FROM corpus));
-- (NDJSON: the documents' own line breaks become spaces)
SELECT * FROM eventkit.ingest('js', (SELECT string_agg(ev('c' || i, '{"value": ' || translate(doc, E'\n', ' ') || '}'), E'\n' ORDER BY i) FROM corpus));

-- ingest(text) and ingest(jsonb) store the same rows
SELECT eventkit.create_stream('js2');
SELECT * FROM eventkit.ingest('js2', (SELECT '[' || string_agg(ev('c' || i, '{"value": ' || doc || '}'), ', ' ORDER BY i) || ']' FROM corpus)::jsonb);
SELECT count(*) AS differ FROM js FULL JOIN js2 USING (message_id)
 WHERE js2.message_id LIKE 'c%' AND (js.properties IS DISTINCT FROM js2.properties
    OR js.extra IS DISTINCT FROM js2.extra OR js.context IS DISTINCT FROM js2.context);

-- Mutation fuzz: 3,000 corrupted copies of corpus documents (a byte
-- replaced, deleted or inserted; structural characters, quotes, backslashes,
-- digits and letters favoured), one NDJSON line each.  Whatever the parser
-- makes of them, it must agree with jsonb_in: exactly the lines jsonb_in
-- accepts are stored (byte-identical, by the crosscheck), the others are
-- quarantined as malformed_json, and nothing crashes.  (NOTICEs for valid
-- texts it leaves to jsonb_in are silenced here.)
CREATE FUNCTION mutate(doc text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  alphabet text[] := ARRAY['{', '}', '[', ']', ',', ':', '"', '\', 'u', '0', '9', '-', '.', 'e', 't', 'n', ' ', 'x', 'é'];
  pos int;
  n int := 1 + floor(random() * 3)::int;
BEGIN
  FOR k IN 1..n LOOP
    pos := 1 + floor(random() * greatest(length(doc), 1))::int;
    CASE floor(random() * 3)::int
      WHEN 0 THEN doc := overlay(doc placing alphabet[1 + floor(random() * 19)::int] from pos for 1);
      WHEN 1 THEN doc := overlay(doc placing '' from pos for 1);
      ELSE doc := overlay(doc placing alphabet[1 + floor(random() * 19)::int] from pos for 0);
    END CASE;
  END LOOP;
  RETURN doc;
END $$;
CREATE FUNCTION jsonb_in_accepts(t text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  PERFORM t::jsonb;
  RETURN true;
EXCEPTION WHEN others THEN
  RETURN false;
END $$;
CREATE TABLE mutants AS
  SELECT i, ev('m' || i, '{"value": ' || mutate(translate(doc, E'\n', ' ')) || '}') AS line
    FROM corpus;
SELECT count(*) FILTER (WHERE jsonb_in_accepts(line)) BETWEEN 300 AND 2700 AS mixed FROM mutants;
SET client_min_messages = warning;
TRUNCATE eventkit.quarantine;
CREATE TABLE fuzz_result AS
  SELECT * FROM eventkit.ingest('js', (SELECT string_agg(line, E'\n' ORDER BY i) FROM mutants));
RESET client_min_messages;
SELECT r.accepted + r.duplicates = (SELECT count(*) FROM mutants WHERE jsonb_in_accepts(line)) AS valid_stored,
       r.quarantined = (SELECT count(*) FROM mutants WHERE NOT jsonb_in_accepts(line)) AS invalid_quarantined,
       r.rejected = 0 AS none_rejected
  FROM fuzz_result r;
SELECT reasons->0->>'reason' AS reason, count(*) FROM eventkit.quarantine GROUP BY 1 ORDER BY 1;
-- every stored mutant equals what jsonb_in makes of its line
SELECT count(*) AS different FROM mutants m JOIN js ON js.message_id = 'm' || m.i
 WHERE js.properties IS DISTINCT FROM (m.line::jsonb)->'properties';

-- the crosscheck is for tests: only a superuser may change it
CREATE ROLE js_user;
SET ROLE js_user;
SET eventkit.testing_json_crosscheck = off;
RESET ROLE;
DROP ROLE js_user;

SELECT eventkit.drop_stream('js');
SELECT eventkit.drop_stream('js2');
DROP TABLE cases, corpus, mutants, fuzz_result;
DROP FUNCTION mutate(text);
DROP FUNCTION jsonb_in_accepts(text);
DROP FUNCTION ev(text, text);
DROP FUNCTION rand_json(int);
DROP EXTENSION eventkit;
