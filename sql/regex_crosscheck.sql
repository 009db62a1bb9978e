-- The validator runs simple "pattern"s (literals, ".", classes, \d \w and
-- their negations, quantifiers, ^ and $ at the ends) on its own
-- bit-parallel matcher and the others on PostgreSQL's regex engine
-- (src/jsonschema/jsonschema_regex.c).  With
-- eventkit.testing_regex_crosscheck on, every
-- answer of the fast matcher is checked against PostgreSQL's engine: here
-- for hand-picked and random patterns, on hand-picked and random strings
-- (deterministic: setseed).  A disagreement is an error.  The conformance
-- suite (test/t/020) runs with the cross-check on as well.
CREATE EXTENSION eventkit;

-- a superuser-only setting
CREATE ROLE ek_rx_user;
SET ROLE ek_rx_user;
SET eventkit.testing_regex_crosscheck = on;
RESET ROLE;
DROP ROLE ek_rx_user;
SET eventkit.testing_regex_crosscheck = on;
SHOW eventkit.testing_regex_crosscheck;

CREATE TEMP TABLE patterns (p text PRIMARY KEY, origin text NOT NULL);
INSERT INTO patterns
SELECT p, 'listed' FROM unnest(ARRAY[
  '', 'a', 'abc', '^abc$', '^$', '^', '$', 'é', '日本', '🎉', '^é+$', '.', '^.$', '^.*$', '^.+$', 'a.c',
  '\d', '^\d+$', '\D', '^\D*$', '\w', '^\w+$', '\W', '^\W+$', '^[0-9]{3}-[0-9]{4}$',
  '[abc]', '[^abc]', '^[^abc]*$', '[a-z]', '^[a-zA-Z_][a-zA-Z0-9_]*$', '[-a]', '[a-]', '^[\w-]+$',
  '[\w.]', '[\d\s]', '[^\d]', '^[^\w]+$', '[\-]', '[\]]', '[\\]', '[[]', '[\^]', '^[+--]+$', '[.]',
  '\.', '\\', '\/', '\-', '\t', '\n', '\r', '\f', '\v', '^\t*$', '[\t\n]', '\$', '\^', '\(', '\*',
  'a*', 'a+', 'a?', '^a*$', '^a+$', '^a?$', 'a{2}', '^a{2}$', '^a{2,}$', '^a{0,2}$', '^a{1,3}$',
  'a{0}', '^a{0}b$', 'a*?', 'a+?', 'a??', '^a{1,3}?$', '^a{2}?$', 'ab*c', '^ab*c$', '^a.*b$',
  '^.{3}$', '^.{2,4}$', '^\d{1,3}\.\d{1,3}$', 'x$', '^x', 'x\$', '^[a-f0-9]{8}-[a-f0-9]{4}$',
  '^[A-Z]{2}$', '^\w+@\w+\.\w+$', '^[a-z]+(-[a-z]+)*$', '^(a|b)$', '\bword\b', 'a{', 'a{,2}', 'a}',
  '^ +$', ' ', '^[ ]*$', '\u00e9', '\x41', '[\w-a]', '[\d-z]', '[a-\d]', '[0-\d]', '^[\w-z]+$',
  '[\D]', '[\W]', '^[\D\d]+$', '.*', '.+', '.?', '^.*.*.*$', 'a{63}', 'a{64}', '^a{20}b{20}c{20}$',
  '^a*a*a*a*a*a*a*a*b$', '^(?:ab)+$', '[^]', '[]', '^[^]*$', '^[a-c-x]+$', '^[--/]+$', '^[^-a]+$',
  '^[a\-z]+$', '^[a-b-]+$', '[-]'
]) p;

-- random numbers, drawn in a fixed order so the same ones go to the same
-- places whatever plan the queries below get
SELECT setseed(0.14);
CREATE TEMP TABLE rnd AS SELECT array_agg(random() ORDER BY i) AS r FROM generate_series(1, 30000) i;

-- random patterns of 1 to 6 atoms, each with a quantifier or none,
-- anchored or not
INSERT INTO patterns
SELECT DISTINCT ON (p) p, 'random'
  FROM (SELECT CASE WHEN r[20 * n + 1] < 0.3 THEN '^' ELSE '' END
               || (SELECT string_agg(
                     (ARRAY['a', 'b', '0', '_', '-', ' ', 'é', '日', '🎉', '.', '\.', '\d', '\D', '\w', '\W',
                            '[ab]', '[^ab]', '[a-c0-2]', '[^\d]', '[\w-]', '[-a]', '[^-a]', '\t', '\n', '\/',
                            '[a-zé]', '[^\n]', '[\d.]', 'x'])[1 + floor(r[20 * n + 2 + k] * 29)::int]
                     || (ARRAY['', '', '', '', '*', '+', '?', '{2}', '{0,2}', '{1,}', '{2,3}', '*?', '+?', '??',
                               '{1,3}?'])[1 + floor(r[20 * n + 10 + k] * 15)::int], '' ORDER BY k)
                     FROM generate_series(1, 1 + floor(r[20 * n + 2] * 6)::int) k)
               || CASE WHEN r[20 * n + 20] < 0.3 THEN '$' ELSE '' END AS p
          FROM rnd, generate_series(0, 599) n) g
 ORDER BY p
ON CONFLICT DO NOTHING;

-- the strings: hand-picked ones and random ones over an alphabet the
-- patterns care about (line terminators, U+2028/U+2029, non-ASCII)
CREATE TEMP TABLE subjects (s text);
INSERT INTO subjects SELECT unnest(ARRAY[
  '', 'a', 'abc', 'xabcx', 'ABC', 'aa', 'aaa', 'aaaa', 'ab', 'abbbc', 'ac', 'b', 'x', 'x$', 'word',
  '0', '123', '123-4567', '1.2', '12.345', '_', '-', '--', '+-', 'a-b-c', 'a_b', 'é', 'éé', '日本',
  '🎉', ' ', '   ', E'\t', E'\n', E'\r', E'a\nb', E'a\rb', E'\n\n', E'\f', chr(11), '.', '\', '/', '[', ']',
  '^', '$', '(', '*', 'user@example.com', 'foo-bar', 'Foo', 'deadbeef-0123', 'AB', 'Ab',
  U&'\2028', U&'\2029', U&'a\2028b', U&'\00a0', U&'\feff', U&'\0085', repeat('a', 63), repeat('a', 64),
  repeat('a', 20) || repeat('b', 20) || repeat('c', 20), repeat('a', 30) || 'b', '`', 'z', '{', '}', 'a{', 'a{,2}'
]);
INSERT INTO subjects
SELECT (SELECT coalesce(string_agg(
                 (ARRAY['a', 'b', 'c', 'x', 'A', '0', '1', '9', '_', '-', '.', ' ', E'\t', E'\n', E'\r', 'é', '日',
                        '🎉', U&'\2028', U&'\2029', '/', '`', 'z', '$'])[1 + floor(r[12000 + 16 * n + 1 + k] * 24)::int],
                 '' ORDER BY k), '')
          FROM generate_series(1, floor(r[12000 + 16 * n + 1] * 13)::int) k)
  FROM rnd, generate_series(0, 399) n;

-- most patterns take the fast path (the others, and invalid ones, are not
-- cross-checked)
SELECT origin, count(*) AS patterns,
       count(*) FILTER (WHERE eventkit_internal.regex_fast_path(p)) AS fast_path,
       count(*) FILTER (WHERE NOT eventkit_internal.regex_fast_path(p)) AS regex_engine,
       count(*) FILTER (WHERE eventkit_internal.regex_fast_path(p) IS NULL) AS invalid
  FROM patterns GROUP BY origin ORDER BY origin;
SELECT to_jsonb(p) AS listed_but_not_fast FROM patterns
 WHERE origin = 'listed' AND NOT eventkit_internal.regex_fast_path(p) ORDER BY p;
SELECT to_jsonb(p) AS invalid FROM patterns WHERE eventkit_internal.regex_fast_path(p) IS NULL ORDER BY p;

-- every valid pattern on every string, through the validator: "items"
-- with every error reported, so each string is matched (and each fast
-- answer cross-checked).  How many strings each pattern matches.
CREATE FUNCTION matched(p text, strs jsonb) RETURNS int LANGUAGE sql AS $$
  SELECT jsonb_array_length(strs)
         - jsonb_array_length(eventkit.schema_errors(jsonb_build_object('items', jsonb_build_object('pattern', p)), strs))
$$;
CREATE TEMP TABLE results AS
SELECT p, origin, eventkit_internal.regex_fast_path(p) AS fast,
       matched(p, (SELECT jsonb_agg(s) FROM subjects)) AS n
  FROM patterns WHERE eventkit_internal.regex_fast_path(p) IS NOT NULL;
SELECT origin, fast, count(*) AS patterns, count(*) * (SELECT count(*) FROM subjects) AS pairs,
       sum(n) AS matches
  FROM results GROUP BY origin, fast ORDER BY origin, fast;
-- the listed patterns' counts, pinned
SELECT to_jsonb(p) AS pattern, n FROM results WHERE origin = 'listed' ORDER BY p COLLATE "C";

-- through "patternProperties" too (object keys)
SELECT count(*) AS patterns,
       sum(jsonb_array_length(eventkit.schema_errors(
             jsonb_build_object('patternProperties', jsonb_build_object(p, false)),
             (SELECT jsonb_object_agg(s, 1) FROM subjects)))) AS keys_matched
  FROM results WHERE fast;

-- long strings, matched in chunks (the fast matcher answers cancel between
-- them): a few patterns on 200 kB
SELECT p, eventkit_internal.regex_fast_path(p) AS fast, matched(p, jsonb_build_array(repeat('ab', 100000), repeat('ab', 100000) || 'c',
                                       repeat('é', 100000) || 'a')) AS n
  FROM unnest(ARRAY['^[ab]*$', 'c$', '^a', 'ba', '^[^c]*$', '[^ab]', '^\w+$', 'é{3}a$', '^.*$']) p
 ORDER BY p;

RESET eventkit.testing_regex_crosscheck;
DROP FUNCTION matched(text, jsonb);
DROP EXTENSION eventkit;
