-- jsonb's binary layout is read by hand: the validator's readers
-- (src/jsonschema/jsonschema_int.h: containers, JEntries, offsets every
-- JB_OFFSET_STRIDE entries, lengths between them, aligned numerics) and
-- the content fingerprint's JEntry walk (src/pipeline/event.c).  The write
-- side (src/pipeline/json_parse.c) is checked against jsonb_in by
-- json_parse.sql (eventkit.testing_json_crosscheck).  Here, on hand-picked
-- and random documents (deterministic: setseed):
--   * jsonb_raw_roundtrip: what the readers see, written again by
--     PostgreSQL's jsonb writer, is byte for byte the input, and the
--     validator's binary search over keys finds every value read in order;
--   * fingerprint_walk_check: the fingerprint's walk equals a walk with
--     PostgreSQL's jsonb iterator (the fingerprints are stored: pinned in
--     pinned_formats.sql).
CREATE EXTENSION eventkit;

CREATE TABLE docs (i int PRIMARY KEY, d jsonb NOT NULL);
INSERT INTO docs VALUES
  (1, '{}'), (2, '[]'), (3, 'null'), (4, 'true'), (5, 'false'), (6, '0'), (7, '-1.50'), (8, '""'),
  (9, '"é日🎉"'), (10, '1e300'), (11, '-1e-300'), (12, '123456789012345678901234567890.123456789'),
  (13, '{"": ""}'), (14, '[[], {}, [[]], {"a": {}}]'), (15, '[null, true, false, 0, "", [], {}]'),
  (16, '{"a": 1, "b": [1, 2, {"c": null}], "aa": "x", "": {"": []}}'),
  (17, (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 100) i)),
  (18, (SELECT jsonb_agg(i) FROM generate_series(1, 100) i)),
  (19, (SELECT jsonb_agg(repeat('s', i)) FROM generate_series(0, 70) i)),
  (20, (SELECT jsonb_object_agg(repeat('k', i), repeat('v', 70 - i)) FROM generate_series(1, 70) i)),
  (21, jsonb_build_object('long', repeat('é', 300000), 'n', 1)),
  (22, (SELECT jsonb_agg(x) FROM (SELECT (i * 1.5)::numeric * 10 ^ (i % 40 - 20) AS x FROM generate_series(1, 64) i) s)),
  (23, (SELECT string_agg('[', '') || string_agg(']', '') FROM generate_series(1, 200))::jsonb),
  (24, (SELECT jsonb_object_agg(i, jsonb_build_array(i, i::text, i % 2 = 0, NULL, jsonb_build_object('x', i)))
          FROM generate_series(1, 40) i));

-- random documents: nested objects and arrays (up to 6 deep), some with
-- many members (past JB_OFFSET_STRIDE), long and non-ASCII strings, numbers of every
-- size, empty containers
SELECT setseed(0.5);
CREATE FUNCTION rand_doc(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  k int := floor(random() * CASE WHEN depth > 4 THEN 5 ELSE 11 END)::int;
  n int;
  out jsonb;
  chars text[] := ARRAY['a', 'Z', '0', ' ', 'é', '€', '😀', '"', '\', E'\n', 'x', 'key', '_', '日本'];
  s text := '';
BEGIN
  CASE k
    WHEN 0 THEN RETURN (ARRAY['true', 'false', 'null'])[1 + floor(random() * 3)::int]::jsonb;
    WHEN 1 THEN  -- integers of 1 to 30 digits
      n := 1 + floor(random() * 30)::int;
      FOR i IN 1..n LOOP s := s || floor(random() * 10)::int::text; END LOOP;
      RETURN to_jsonb(CASE WHEN random() < 0.3 THEN -1 ELSE 1 END * s::numeric);
    WHEN 2 THEN  -- decimals, small and large
      RETURN to_jsonb(round((random() - 0.5)::numeric * 10::numeric ^ floor(random() * 60 - 30)::int, floor(random() * 40)::int));
    WHEN 3, 4 THEN  -- strings, a few long
      n := floor(random() * 12)::int;
      FOR i IN 1..n LOOP s := s || chars[1 + floor(random() * array_length(chars, 1))::int]; END LOOP;
      IF random() < 0.05 THEN s := repeat(s, floor(random() * 500)::int); END IF;
      RETURN to_jsonb(s);
    WHEN 5, 6, 7 THEN  -- arrays, a few past 32 elements
      n := CASE WHEN depth < 2 AND random() < 0.1 THEN 30 + floor(random() * 50)::int ELSE floor(random() * 6)::int END;
      out := '[]';
      FOR i IN 1..n LOOP out := out || jsonb_build_array(rand_doc(depth + 1)); END LOOP;
      RETURN out;
    ELSE  -- objects, a few past 16 keys (32 entries)
      n := CASE WHEN depth < 2 AND random() < 0.1 THEN 14 + floor(random() * 40)::int ELSE floor(random() * 7)::int END;
      out := '{}';
      FOR i IN 1..n LOOP
        out := out || jsonb_build_object(
          (ARRAY['a', 'b', 'id', 'name', 'é', '', 'revenue', 'k' || floor(random() * 100)::int,
                 repeat('long', floor(random() * 20)::int)])[1 + floor(random() * 9)::int],
          rand_doc(depth + 1));
      END LOOP;
      RETURN out;
  END CASE;
END $$;
INSERT INTO docs SELECT 100 + i, rand_doc(0) FROM generate_series(1, 600) i;

-- what the documents hold
SELECT jsonb_typeof(v) AS kind, count(*) AS values,
       count(*) FILTER (WHERE jsonb_typeof(v) = 'array' AND jsonb_array_length(v) > 32) AS over_32_elements,
       count(*) FILTER (WHERE jsonb_typeof(v) = 'object' AND (SELECT count(*) FROM jsonb_object_keys(v)) > 16) AS over_16_keys,
       count(*) FILTER (WHERE jsonb_typeof(v) = 'string' AND octet_length(v #>> '{}') > 1000) AS over_1000_bytes,
       count(*) FILTER (WHERE v IN ('[]', '{}')) AS empty
  FROM docs, jsonb_path_query(d, 'strict $.**') v
 GROUP BY 1 ORDER BY 1;

-- every document, read by hand, is exactly itself
SELECT count(*) AS documents,
       count(*) FILTER (WHERE eventkit_internal.jsonb_raw_roundtrip(d)) AS round_trips,
       count(*) FILTER (WHERE eventkit_internal.fingerprint_walk_check(d)) AS walks_agree
  FROM docs;
SELECT i AS differs FROM docs
 WHERE NOT eventkit_internal.jsonb_raw_roundtrip(d) OR NOT eventkit_internal.fingerprint_walk_check(d)
 ORDER BY i;

-- and so is every value inside them (each read from its own, smaller, jsonb)
SELECT count(*) AS values,
       count(*) FILTER (WHERE eventkit_internal.jsonb_raw_roundtrip(v)) AS round_trips,
       count(*) FILTER (WHERE eventkit_internal.fingerprint_walk_check(v)) AS walks_agree
  FROM docs, jsonb_path_query(d, 'strict $.**') v WHERE i < 300;

-- the extra column (an event's pairs that have no column of their own) is
-- written with its values' bytes copied as they are (src/util/jsonb_raw.c:
-- jbvBinary); with the crosscheck on, ingest compares each one with what
-- pushJsonbValue and JsonbValueToJsonb make of the same pairs and fails if
-- they differ.  Every document as such a value, sent as jsonb and as text
-- (the fast JSON parser's containers).
SET eventkit.testing_json_crosscheck = on;
SET eventkit.max_event_bytes = 4000000;
SET eventkit.max_batch_bytes = 4000000;
SELECT eventkit.create_stream('raw_extra');
CREATE FUNCTION extra_doc(i int, d jsonb, via text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'event', 'e', 'userId', 'u', 'messageId', via || i,
                            'custom', d, 'a', i, 'zz', jsonb_build_array(d, d), 'context', jsonb_build_object('d', d))
$$;
SELECT sum(r.accepted) AS accepted, sum(r.quarantined) AS quarantined
  FROM docs, LATERAL eventkit.ingest('raw_extra', extra_doc(i, d, 'j')) r;
SELECT sum(r.accepted) AS accepted, sum(r.quarantined) AS quarantined
  FROM docs, LATERAL eventkit.ingest('raw_extra', extra_doc(i, d, 't')::text) r;
SELECT count(*) AS events,
       count(*) FILTER (WHERE e.extra = jsonb_build_object('custom', d.d, 'a', d.i, 'zz', jsonb_build_array(d.d, d.d))
                          AND e.context = jsonb_build_object('d', d.d)) AS values_equal
  FROM raw_extra e JOIN docs d ON e.message_id IN ('j' || d.i, 't' || d.i);
SELECT eventkit.drop_stream('raw_extra');
DROP FUNCTION extra_doc(int, jsonb, text);
RESET eventkit.max_batch_bytes;
RESET eventkit.max_event_bytes;
RESET eventkit.testing_json_crosscheck;

-- test-only functions: not for PUBLIC
SELECT has_function_privilege('public', 'eventkit_internal.jsonb_raw_roundtrip(jsonb)', 'EXECUTE') AS roundtrip_public,
       has_function_privilege('public', 'eventkit_internal.fingerprint_walk_check(jsonb)', 'EXECUTE') AS walk_public;

DROP TABLE docs;
DROP FUNCTION rand_doc(int);
DROP EXTENSION eventkit;
