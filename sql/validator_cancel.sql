-- The JSON Schema validator answers statement_timeout and cancel in every
-- loop whose length depends on its input (combinators, $ref, items, keys,
-- enum, regular expressions), uniqueItems is O(n log n), and a regular
-- expression interrupted by a timeout reports 57014, not 2201B.
-- Each pathological case runs under statement_timeout = 1s and must end
-- with 57014 well within its deadline; before the fix they ran for minutes.
CREATE EXTENSION IF NOT EXISTS eventkit;

-- {"$ref": d0}, d(i) = {"anyOf": [{"$ref": d(i+1)}, {"$ref": d(i+1)}]}, the
-- last a string: an instance that is not a string makes the validator try
-- all 2^levels paths.
CREATE FUNCTION nested_anyof(levels int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('$ref', '#/definitions/d0', 'definitions',
    jsonb_object_agg('d' || i, CASE WHEN i = levels THEN '{"type": "string"}'::jsonb
      ELSE jsonb_build_object('anyOf', jsonb_build_array(
             jsonb_build_object('$ref', '#/definitions/d' || (i + 1)),
             jsonb_build_object('$ref', '#/definitions/d' || (i + 1)))) END))
  FROM generate_series(0, levels) i $$;

-- Runs query; says how it ended: 'completed', or the SQLSTATE of the
-- cancel and whether it came before the deadline (counted from the start).
CREATE FUNCTION canceled_within(query text, deadline interval) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE query;
  RETURN 'completed';
EXCEPTION WHEN query_canceled THEN
  RETURN SQLSTATE || CASE WHEN clock_timestamp() - t0 < deadline
                          THEN ' within the deadline'
                          ELSE ' only after the deadline' END;
END $$;

-- the schema itself is fine: small depths answer at once
SELECT eventkit.schema_valid(nested_anyof(10), '"x"') AS string_valid,
       eventkit.schema_valid(nested_anyof(10), '1') AS number_valid;

-- 2^34 paths through anyOf and $ref
SET statement_timeout = '1s';
SELECT canceled_within($$SELECT eventkit.schema_valid(nested_anyof(34), '1')$$, '10 s');
-- the same under "not", reached through items and properties
SELECT canceled_within($$SELECT eventkit.schema_valid((nested_anyof(34) - '$ref')
  || '{"items": {"properties": {"p": {"not": {"$ref": "#/definitions/d0"}}}}}',
  '[{"p": 1}, {"p": "x"}]')$$, '10 s');
RESET statement_timeout;

-- the same schema in a tracking plan, during ingest
SELECT eventkit.create_stream('vc_events');
SELECT eventkit.create_plan('vc_deep', jsonb_build_object('events',
  jsonb_build_object('Deep', jsonb_build_object('properties', nested_anyof(34)))));
SELECT eventkit.attach_plan('vc_events', 'vc_deep');
-- an event the plan does not constrain is stored at once
SELECT * FROM eventkit.ingest('vc_events',
  '{"type": "track", "event": "Shallow", "userId": "u1", "messageId": "vc1"}'::jsonb);
SET statement_timeout = '1s';
SELECT canceled_within($$SELECT eventkit.ingest('vc_events',
  '{"type": "track", "event": "Deep", "userId": "u1", "messageId": "vc2",
    "properties": {"a": 1}}'::jsonb)$$, '10 s');
RESET statement_timeout;
SELECT message_id FROM vc_events ORDER BY message_id;
SELECT count(*) AS quarantined FROM eventkit.quarantine;
SELECT eventkit.drop_stream('vc_events');

-- Regular expressions: PostgreSQL's engine stops on a pending timeout
-- (REG_CANCEL); that is the timeout's 57014, not an invalid regex (2201B).
SET statement_timeout = '1s';
SELECT canceled_within($$SELECT eventkit.schema_valid(
  '{"pattern": "^(.*)\\1(.*)\\2(.*)\\3(.*)\\4$"}', to_jsonb(repeat('ab', 2000) || 'x'))$$, '10 s');
SELECT canceled_within($$SELECT eventkit.schema_valid(
  '{"patternProperties": {"^(.*)\\1(.*)\\2(.*)\\3(.*)\\4$": false}}',
  jsonb_build_object(repeat('ab', 2000) || 'x', 1))$$, '10 s');
\set VERBOSITY sqlstate
SELECT eventkit.schema_valid('{"pattern": "^(.*)\\1(.*)\\2(.*)\\3(.*)\\4$"}',
                             to_jsonb(repeat('ab', 2000) || 'x'));
\set VERBOSITY default
RESET statement_timeout;
-- the pattern itself works
SELECT eventkit.schema_valid('{"pattern": "^(.*)\\1(.*)\\2(.*)\\3(.*)\\4$"}', '"aabbccdd"') AS matches,
       eventkit.schema_valid('{"pattern": "^(.*)\\1(.*)\\2(.*)\\3(.*)\\4$"}', '"abcd"') AS no_match;

-- uniqueItems: JSON Schema equality (numbers by value, objects regardless
-- of key order, arrays element by element).  Up to 16 items are compared
-- pairwise, longer arrays are sorted: the same cases, padded with 20
-- distinct strings in front, must report the same pair shifted by 20.
-- The expectation is computed with jsonb's equality, which is the same:
-- the last item with an earlier equal, and its nearest earlier equal (Ajv).
CREATE FUNCTION unique_expected(arr jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('must NOT have duplicate items (items ## %s and %s are identical)', j, i)
    FROM (SELECT b.i - 1 AS i, max(a.i) - 1 AS j
            FROM jsonb_array_elements(arr) WITH ORDINALITY b(v, i)
            JOIN jsonb_array_elements(arr) WITH ORDINALITY a(v, i) ON a.i < b.i AND a.v = b.v
           GROUP BY b.i ORDER BY b.i DESC LIMIT 1) d $$;
CREATE FUNCTION unique_got(arr jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT e->>'message' FROM jsonb_array_elements(
    eventkit.schema_errors('{"uniqueItems": true}', arr)) e $$;
CREATE FUNCTION pad20(arr jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT (SELECT jsonb_agg('pad' || i) FROM generate_series(1, 20) i) || arr $$;

CREATE TABLE unique_cases (id int, arr jsonb);
INSERT INTO unique_cases VALUES
  (1, '[1, 1.0]'),
  (2, '[1, "1"]'),
  (3, '[1e2, 100, 100.5]'),
  (4, '[0, -0, 0.0]'),
  (5, '[true, 1, false, 0, null, "", [], {}]'),
  (6, '[{"a": 1, "b": {"c": [1, 2], "d": null}}, {"b": {"d": null, "c": [1, 2.00]}, "a": 1.0}]'),
  (7, '[{"a": 1}, {"a": 1, "b": 2}, {"b": 1}]'),
  (8, '[[1, 2], [1, 2, 3], [2, 1], [1]]'),
  (9, '[[1, 2], [1.0, 2e0]]'),
  (10, '["a", "a ", "A", "1", 1]'),
  (11, '[1, 2, 1, 2]'),
  (12, '[{"x": 1}, {"y": 1}, {"x": 1.0}, {"y": 1}, 3]'),
  (13, '[[], {}, [[]], [{}], {"": []}, {"": {}}]'),
  (14, '[{"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}]}, {"a": [1.0, {"b": 2.0}]}]');
SELECT id, coalesce(unique_got(arr), 'unique') AS pairwise,
       unique_got(arr) IS NOT DISTINCT FROM unique_expected(arr) AS pairwise_ok,
       unique_got(pad20(arr)) IS NOT DISTINCT FROM unique_expected(pad20(arr)) AS sorted_ok
  FROM unique_cases ORDER BY id;

-- random arrays of tricky values, both paths, against jsonb's equality
SELECT setseed(0.13);
CREATE TABLE unique_random AS
SELECT n, (SELECT coalesce(jsonb_agg((ARRAY['1', '1.0', '1e0', '"1"', '[1]', '[1.0]',
            '{"a": 1, "b": 2}', '{"b": 2, "a": 1.0}', '{"a": 1}', 'null', 'true',
            'false', '[]', '{}', '[1, 2]', '[2, 1]', '"a"', '0', '-0', '0.1',
            '0.10', '[[1]]', '{"a": {"b": [1]}}', '{"a": {"b": [1.00]}}', '2', '3',
            '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16',
            '17']::jsonb[])[1 + floor(random() * 40)::int] ORDER BY k), '[]')
           FROM generate_series(1, len) k) AS arr
  FROM (SELECT n, floor(random() * 40)::int AS len
          FROM generate_series(1, 400) n) s;
SELECT count(*) AS arrays,
       count(*) FILTER (WHERE unique_expected(arr) IS NULL) AS unique_arrays,
       count(*) FILTER (WHERE jsonb_array_length(arr) > 16) AS sorted_path,
       count(*) FILTER (WHERE unique_got(arr) IS DISTINCT FROM unique_expected(arr)) AS mismatches
  FROM unique_random;

-- 100,000 items in well under statement_timeout (pairwise took minutes)
SET statement_timeout = '10s';
SELECT eventkit.schema_valid('{"uniqueItems": true}',
  (SELECT jsonb_agg(i) FROM generate_series(1, 100000) i)) AS distinct_numbers;
SELECT unique_got((SELECT jsonb_agg(i) FROM generate_series(1, 100000) i) || '[5.0, 7]');
SELECT eventkit.schema_valid('{"uniqueItems": true}',
  (SELECT jsonb_agg(jsonb_build_object('k', i, 's', 'item ' || i)) FROM generate_series(1, 100000) i))
  AS distinct_objects;
SELECT unique_got((SELECT jsonb_agg(jsonb_build_object('k', i, 's', 'item ' || i))
                     FROM generate_series(1, 100000) i) || '[{"s": "item 42", "k": 42.0}]');
SELECT unique_got((SELECT jsonb_agg(to_jsonb('s' || i)) FROM generate_series(1, 100000) i)
                  || '["s99999", "s1"]');
SELECT unique_got((SELECT jsonb_agg(1) FROM generate_series(1, 100000) i));
RESET statement_timeout;

DROP TABLE unique_cases, unique_random;
DROP FUNCTION unique_expected(jsonb);
DROP FUNCTION unique_got(jsonb);
DROP FUNCTION pad20(jsonb);
DROP FUNCTION canceled_within(text, interval);
DROP FUNCTION nested_anyof(int);
DROP EXTENSION eventkit CASCADE;
