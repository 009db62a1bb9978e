-- Bad values never fail a batch or a refresh (src/rollup_fold.c): a measure's
-- value that is not a number or is out of the measure's range is skipped and
-- counted, a long dimension value is bounded; the batch's events are stored,
-- and every refresh goes on.  The rollup table, its realtime view and the
-- realtime view of a never-refreshed twin (the rules in SQL) equal a GROUP
-- BY over the stream that applies the rules as the README states them.
-- Definitions are checked against the grammar at create_rollup.  A rollup
-- made before 1.3 is brought to the current format by its next refresh.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('bv') IS NOT NULL AS created;
ALTER TABLE bv ADD COLUMN amount float8;   -- NULL in what ingest writes

CREATE FUNCTION mk(id text, name text, props jsonb, at text DEFAULT '2026-01-05T10:05:00Z')
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('type', 'track', 'messageId', id, 'userId', 'u',
                                              'event', name, 'properties', props, 'timestamp', at))
$$;

-- ==== the spec grammar ====
-- the malicious measure of the issue, and other malformed specs
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}',
                              ARRAY['sum(properties.n)); DROP TABLE bv; --)']);
SELECT to_regclass('bv') IS NOT NULL AS stream_still_there, to_regclass('r_bad') AS no_rollup;
DO $$
BEGIN
  PERFORM eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.n)); --)']);
EXCEPTION WHEN invalid_parameter_value THEN
  RAISE NOTICE 'invalid_parameter_value: %', SQLERRM;
END $$;
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', ARRAY['event; DROP TABLE bv'], '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', ARRAY['properties.a(b)'], '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', ARRAY['"event"'], '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.x) junk']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.x, properties.y)']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['percentile(properties.x, abc)']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.x) AS "a"b"']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.x) AS 1x']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY['sum(properties.x) AS a-b']);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', ARRAY[E'sum(properties.x\ty)']);
-- names: reserved, too long, taken
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{"event AS bucket"}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{"event AS batch_id"}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}', '{"count AS ek_events"}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}',
                              ARRAY['sum(properties.x) AS ' || repeat('n', 64)]);
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{event}',
                              ARRAY['avg(properties.x) AS a', 'sum(properties.y) AS a_count']);
-- keys: what fits the rollup's btree key
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour', '{properties}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'bv', '1 hour',
                              (SELECT array_agg('properties.k' || i) FROM generate_series(1, 9) i), '{count}');
-- what the grammar accepts: quoted names, keys with spaces and signs, count(), 8 text dimensions
SELECT eventkit.create_rollup('r_ok', 'bv', '1 hour',
    ARRAY['event AS "Event Name"', 'properties.Order ID', 'context.page.$path', 'properties.a.-1'],
    ARRAY['count()', 'SUM( properties.x ) as "Total x"', 'percentile(properties.ms, .95) AS p95'],
    backfill => false) IS NOT NULL AS created;
SELECT column_name FROM information_schema.columns WHERE table_name = 'r_ok' ORDER BY ordinal_position;
SELECT eventkit.drop_rollup('r_ok');
SELECT eventkit.create_rollup('r_ok', 'bv', '1 hour',
    (SELECT array_agg('properties.k' || i) FROM generate_series(1, 8) i), '{count}',
    backfill => false) IS NOT NULL AS created;
SELECT eventkit.drop_rollup('r_ok');

-- ==== the issue's three cases, each on its own ====
SELECT eventkit.create_stream('bi') IS NOT NULL AS created;
SELECT eventkit.create_rollup('bi_p', 'bi', '1 hour', '{event}', '{count,"percentile(properties.v, 0.5) AS p"}') IS NOT NULL AS p,
       eventkit.create_rollup('bi_s', 'bi', '1 hour', '{event}', '{count,"sum(properties.w) AS s"}') IS NOT NULL AS s,
       eventkit.create_rollup('bi_d', 'bi', '1 hour', '{properties.page}', '{count}') IS NOT NULL AS d;
-- a percentile of 1e309: the batch's events are stored
SELECT * FROM eventkit.ingest('bi', '[
  {"type": "track", "messageId": "p1", "userId": "u", "event": "E", "properties": {"v": 1, "w": 1}, "timestamp": "2026-01-05T10:00:00Z"},
  {"type": "track", "messageId": "p2", "userId": "u", "event": "E", "properties": {"v": 1e309}, "timestamp": "2026-01-05T10:00:00Z"},
  {"type": "track", "messageId": "p3", "userId": "u", "event": "E", "properties": {"v": 3, "w": 3}, "timestamp": "2026-01-05T10:00:00Z"}]'::text,
  '2026-01-05 12:00:00+00');
-- sums beyond numeric: stored too
SELECT * FROM eventkit.ingest('bi', '[
  {"type": "track", "messageId": "s1", "userId": "u", "event": "E", "properties": {"w": 9e131071}, "timestamp": "2026-01-05T10:00:00Z"},
  {"type": "track", "messageId": "s2", "userId": "u", "event": "E", "properties": {"w": 9e131071}, "timestamp": "2026-01-05T10:00:00Z"}]'::text,
  '2026-01-05 12:00:00+00');
-- a 10 kB dimension value: refreshes go on
SELECT accepted FROM eventkit.ingest('bi', mk('d1', 'E', jsonb_build_object('page', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 320) i))),
                                     '2026-01-05 12:00:00+00');
SELECT eventkit.refresh_rollup(r) AS folded FROM unnest(ARRAY['bi_p', 'bi_s', 'bi_d']) r;
SELECT accepted FROM eventkit.ingest('bi', mk('d2', 'E', jsonb_build_object('page', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 320) i))),
                                     '2026-01-05 12:00:00+00');
SELECT eventkit.refresh_rollup(r) AS folded FROM unnest(ARRAY['bi_p', 'bi_s', 'bi_d', 'bi_d']) r;
SELECT count(*) AS stored FROM bi;
SELECT count, p FROM bi_p_realtime;   -- the median of 1 and 3
SELECT count, s FROM bi_s_realtime;
SELECT left(page, 10) AS page, octet_length(page) AS bytes, count FROM bi_d ORDER BY 1;
SELECT (SELECT array_agg(ROW(page, count) ORDER BY page) FROM bi_d) =
       (SELECT array_agg(ROW(page, count) ORDER BY page) FROM bi_d_realtime) AS realtime_agrees;
SELECT name, skipped_values FROM eventkit.rollup_status WHERE name LIKE 'public.bi_%' ORDER BY 1;
SELECT eventkit.drop_rollup(r) FROM unnest(ARRAY['bi_p', 'bi_s', 'bi_d']) r;
SELECT eventkit.drop_stream('bi');

-- ==== the bound of a dimension value (a pinned format) ====
SELECT eventkit.rollup_dimension(repeat('x', 300)) = repeat('x', 300) AS kept_at_300_bytes,
       eventkit.rollup_dimension(repeat('x', 301)) AS bounded,
       eventkit.rollup_dimension(repeat('é', 200)) AS multibyte,
       octet_length(eventkit.rollup_dimension(repeat('é', 200) || 'x')) AS bytes;
-- as the README defines it, and its own bound
CREATE FUNCTION ref_dim(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN octet_length(t) <= 300 THEN t
              ELSE left(t, 64) || '...[sha256:' || left(encode(sha256(convert_to(t, 'UTF8')), 'hex'), 32) || ']'
         END
$$;
SELECT count(*) AS differ FROM (SELECT repeat(chr(65 + i % 26) || 'é€𝄞', i) AS t FROM generate_series(1, 200) i) v
 WHERE eventkit.rollup_dimension(t) IS DISTINCT FROM ref_dim(t)
    OR eventkit.rollup_dimension(eventkit.rollup_dimension(t)) <> eventkit.rollup_dimension(t)
    OR octet_length(eventkit.rollup_dimension(t)) > 300;

-- ==== the rules, as the realtime views call them ====
SELECT coalesce(v, 'NULL') AS v, eventkit.rollup_number(j, 'sum') IS NOT NULL AS sum_takes,
       eventkit.rollup_skipped(j, 'sum') AS sum_skips,
       eventkit.rollup_number(j, 'max') IS NOT NULL AS max_takes, eventkit.rollup_skipped(j, 'max') AS max_skips,
       eventkit.rollup_number(j, 'percentile') IS NOT NULL AS pct_takes,
       eventkit.rollup_skipped(j, 'percentile') AS pct_skips
  FROM unnest(ARRAY['2.5', '0', '-1e-290', '1e-291', '"3"', 'true', '[1]', '{"a": 1}', 'null', NULL])
       WITH ORDINALITY t(v, i), LATERAL (SELECT v::jsonb AS j) x
 ORDER BY i;
SELECT eventkit.rollup_number('-1e290'::jsonb, 'percentile') = -1e290 AS pct_takes_minus_1e290,
       eventkit.rollup_skipped('1e291'::jsonb, 'percentile') AS pct_skips_1e291,
       eventkit.rollup_number('1e291'::jsonb, 'sum') = 1e291 AS sum_takes_1e291;
SELECT v, eventkit.rollup_number(v, 'avg') AS avg, eventkit.rollup_skipped(v, 'min') AS min_skips,
       eventkit.rollup_skipped(v, 'percentile') AS pct_skips
  FROM (VALUES (1.5), ('NaN'), ('Infinity'), ('-Infinity')) t(v);
SELECT eventkit.rollup_skipped('1e131000'::numeric, 'sum') AS sum_skips_1e131000,
       eventkit.rollup_skipped('9.99e130999'::numeric, 'sum') AS sum_skips_9_99e130999;
SELECT eventkit.rollup_number(1, 'count');

-- ==== bad values ====
-- the history: every kind of value, before the rollups exist
SELECT accepted, quarantined FROM eventkit.ingest('bv', jsonb_build_array(
  mk('h1', 'E', '{"v": 1, "page": "/a"}'),
  mk('h2', 'E', '{"v": 2.5, "page": "/a"}'),
  mk('h3', 'E', '{"v": "12", "page": "/a"}'),
  mk('h4', 'E', '{"v": true, "page": "/a"}'),
  mk('h5', 'E', '{"v": {"x": 1}, "page": "/b"}'),
  mk('h6', 'E', '{"v": [1], "page": "/b"}'),
  mk('h7', 'E', '{"v": null, "page": "/b"}'),
  mk('h8', 'E', '{"page": "/b"}'),
  mk('h9', 'E', '{"v": "NaN", "page": "/b"}'),
  mk('h10', 'E', '{"v": "Infinity", "page": "/c"}'),
  mk('h11', 'E', jsonb_build_object('v', 1e309, 'page', '/c')),
  mk('h12', 'E', jsonb_build_object('v', -1e309, 'page', '/c')),
  mk('h13', 'E', jsonb_build_object('v', 1e290, 'page', '/c')),
  mk('h14', 'E', jsonb_build_object('v', 1.0000001e290, 'page', '/c')),
  mk('h15', 'E', jsonb_build_object('v', 1e-290, 'page', '/d')),
  mk('h16', 'E', jsonb_build_object('v', 9.9e-291, 'page', '/d')),
  mk('h17', 'E', jsonb_build_object('v', -0.0, 'page', '/d')),
  mk('h18', 'E', jsonb_build_object('v', 1e-320, 'page', '/d')),
  mk('h19', 'E', jsonb_build_object('v', '9e131071'::numeric, 'page', '/d')),
  mk('h20', 'E', jsonb_build_object('v', '-9e131071'::numeric, 'page', '/d')),
  mk('h21', 'E', jsonb_build_object('v', '9.99e130999'::numeric, 'page', '/e')),
  mk('h22', 'E', jsonb_build_object('v', '1e131000'::numeric, 'page', '/e')),
  mk('h23', repeat('Long Event ', 40), '{"v": 3}'),
  mk('h24', 'E', jsonb_build_object('v', 4, 'page', repeat('/p', 5000))),
  mk('h25', 'E', jsonb_build_object('v', 5, 'page', repeat('x', 300))),
  mk('h26', 'E', jsonb_build_object('v', 6, 'page', repeat('x', 301))),
  mk('h27', 'E', jsonb_build_object('v', 7, 'page', repeat('x', 400))),
  mk('h28', 'E', jsonb_build_object('v', 8, 'page', repeat('é', 200)))),
  '2026-01-05 12:00:00+00');

-- bv_all is folded (C); bv_twin never is (its realtime view applies the rules in SQL)
SELECT eventkit.create_rollup(r, 'bv', '1 hour', '{event,"properties.page AS page"}',
    '{count,"sum(properties.v) AS s","min(properties.v) AS lo","max(properties.v) AS hi",
      "avg(properties.v) AS a","percentile(properties.v, 0.5) AS p","distinct(properties.v) AS d",
      "sum(amount) AS amt","max(amount) AS hamt","percentile(amount, 0.5) AS pamt"}',
    backfill => r = 'bv_all') IS NOT NULL AS created
  FROM unnest(ARRAY['bv_all', 'bv_twin']) r;

-- the rules of the README, in plain SQL
CREATE FUNCTION ref_num(j jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(j) = 'number' THEN j::numeric END
$$;
CREATE FUNCTION ref_ok(n numeric, measure text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT n <> 'NaN' AND CASE measure
    WHEN 'sum' THEN n > -('1e131000'::numeric) AND n < '1e131000'::numeric
    WHEN 'finite' THEN n > '-Infinity' AND n < 'Infinity'
    WHEN 'percentile' THEN n = 0 OR (abs(n) >= 1e-290 AND abs(n) <= 1e290) END
$$;
CREATE VIEW bv_ref AS
SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, ref_dim(event) AS event,
       ref_dim(properties->>'page') AS page, count(*) AS count,
       sum(n) FILTER (WHERE ref_ok(n, 'sum')) AS s,
       min(n) FILTER (WHERE ref_ok(n, 'finite')) AS lo,
       max(n) FILTER (WHERE ref_ok(n, 'finite')) AS hi,
       avg(n) FILTER (WHERE ref_ok(n, 'sum')) AS a,
       tdigest_percentile(n::float8, 100, 0.5) FILTER (WHERE ref_ok(n, 'percentile')) AS p,
       COALESCE(round(hll_cardinality(hll_add_agg(hll_hash_text(properties->>'v')))), 0)::bigint AS d,
       sum(m) FILTER (WHERE ref_ok(m, 'sum')) AS amt,
       max(m) FILTER (WHERE ref_ok(m, 'finite')) AS hamt,
       tdigest_percentile(m::float8, 100, 0.5) FILTER (WHERE ref_ok(m, 'percentile')) AS pamt,
       count(*) FILTER (WHERE jsonb_typeof(properties->'v') NOT IN ('number', 'null')
                           OR NOT ref_ok(n, 'sum') OR NOT ref_ok(n, 'percentile')
                           OR NOT ref_ok(m, 'sum') OR NOT ref_ok(m, 'finite')
                           OR NOT ref_ok(m, 'percentile')) AS skipped_events
  FROM bv, LATERAL (SELECT ref_num(properties->'v') AS n, amount::numeric AS m) x
 GROUP BY 1, 2, 3;
-- the counts by reason the rules give (5 numeric measures of v, 3 of amount)
CREATE VIEW bv_ref_skips AS
SELECT sum(CASE WHEN jsonb_typeof(properties->'v') NOT IN ('number', 'null') THEN 5 ELSE 0 END
           + CASE WHEN m = 'NaN' THEN 3 ELSE 0 END) AS not_a_number,
       sum(CASE WHEN n IS NULL THEN 0
                ELSE 2 * (NOT ref_ok(n, 'sum'))::int + 2 * (NOT ref_ok(n, 'finite'))::int
                     + (NOT ref_ok(n, 'percentile'))::int END
           + CASE WHEN m IS NULL OR m = 'NaN' THEN 0
                  ELSE (NOT ref_ok(m, 'sum'))::int + (NOT ref_ok(m, 'finite'))::int
                       + (NOT ref_ok(m, 'percentile'))::int END) AS out_of_range,
       count(*) FILTER (WHERE octet_length(event) > 300)
       + count(*) FILTER (WHERE octet_length(properties->>'page') > 300) AS dimension_truncated
  FROM bv, LATERAL (SELECT ref_num(properties->'v') AS n, amount::numeric AS m) x;

-- rows of two relations (view or rollup) that differ: percentiles within 1e-9
CREATE FUNCTION differences(a regclass, b regclass) RETURNS TABLE (side text, n bigint)
LANGUAGE plpgsql AS $$
DECLARE
  cols text := 'bucket, event, page, count, s, lo, hi, a, d, amt, hamt, skipped_events';
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT ''only in %1$s'', count(*) FROM (SELECT %3$s FROM %1$s EXCEPT ALL SELECT %3$s FROM %2$s) x
     UNION ALL
     SELECT ''only in %2$s'', count(*) FROM (SELECT %3$s FROM %2$s EXCEPT ALL SELECT %3$s FROM %1$s) x
     UNION ALL
     SELECT ''percentiles differ'', count(*) FROM %1$s x JOIN %2$s y
         ON (x.bucket, x.event, x.page) IS NOT DISTINCT FROM (y.bucket, y.event, y.page)
      WHERE (x.p IS NULL) <> (y.p IS NULL) OR abs(x.p - y.p) > 1e-9 * abs(y.p)
         OR (x.pamt IS NULL) <> (y.pamt IS NULL) OR abs(x.pamt - y.pamt) > 1e-9 * abs(y.pamt)',
    a, b, cols);
END $$;
CREATE FUNCTION check_views() RETURNS TABLE (pair text, side text, n bigint) LANGUAGE sql AS $$
  SELECT 'refreshed vs rules', * FROM differences('bv_all_realtime', 'bv_ref')
  UNION ALL SELECT 'SQL (twin) vs rules', * FROM differences('bv_twin_realtime', 'bv_ref')
$$;
-- (once everything is folded)
CREATE FUNCTION check_all() RETURNS TABLE (pair text, side text, n bigint) LANGUAGE sql AS $$
  SELECT * FROM check_views()
  UNION ALL SELECT 'skip counts vs rules', 'differ', count(*) FROM bv_ref_skips r, eventkit.rollups k
   WHERE k.name = 'public.bv_all'
     AND k.skipped_values IS DISTINCT FROM jsonb_strip_nulls(jsonb_build_object(
           'not_a_number', NULLIF(r.not_a_number, 0), 'out_of_range', NULLIF(r.out_of_range, 0),
           'dimension_truncated', NULLIF(r.dimension_truncated, 0)))
$$;

-- the history, folded at creation (a scan of the stream)
SELECT * FROM check_all();
SELECT skipped_values FROM eventkit.rollup_status WHERE name = 'public.bv_all';
SELECT count(*) AS rows, sum(count) AS events, sum(skipped_events) AS skipped,
       max(octet_length(page)) AS longest_page, max(octet_length(event)) AS longest_event
  FROM bv_all;
SELECT page, count, s, lo, hi FROM bv_all WHERE page IN ('/a', '/b') ORDER BY page;

-- rows the fast path does not write (amount): a refresh reads them from the stream
INSERT INTO bv (message_id, type, event, user_id, user_key, ts, received_at, properties, batch_id, amount)
SELECT 'c' || i, 'track', 'E', 'u', 'u', '2026-01-05 10:30:00+00', '2026-01-05 12:00:00+00',
       '{"page": "/n"}', b.id, a
  FROM unnest(ARRAY['NaN', 'Infinity', '-Infinity', '1e-310', '1.5', '-2', NULL]::float8[]) WITH ORDINALITY t(a, i)
 CROSS JOIN (SELECT nextval('eventkit.batch_id_seq') AS id) b;
SELECT eventkit.refresh_rollup('bv_all');
SELECT * FROM check_all();
SELECT page, count, round(amt, 6) AS amt, hamt, pamt, skipped_events FROM bv_all_realtime WHERE page = '/n';

-- the issue's batches: a percentile of 1e309, sums beyond numeric; the good
-- events are stored (ingest's deltas)
SELECT * FROM eventkit.ingest('bv', '[
  {"type": "track", "messageId": "b1", "userId": "u", "event": "E", "properties": {"v": 1, "page": "/a"}, "timestamp": "2026-01-05T11:00:00Z"},
  {"type": "track", "messageId": "b2", "userId": "u", "event": "E", "properties": {"v": 1e309, "page": "/a"}, "timestamp": "2026-01-05T11:00:00Z"},
  {"type": "track", "messageId": "b3", "userId": "u", "event": "E", "properties": {"v": 2, "page": "/a"}, "timestamp": "2026-01-05T11:00:00Z"}]'::text,
  '2026-01-05 12:00:00+00');
SELECT accepted FROM eventkit.ingest('bv', jsonb_build_array(
  mk('b4', 'E', jsonb_build_object('v', '9e131071'::numeric, 'page', '/a'), '2026-01-05T11:10:00Z'),
  mk('b5', 'E', jsonb_build_object('v', '9e131071'::numeric, 'page', '/a'), '2026-01-05T11:10:00Z'),
  mk('b6', 'E', '{"v": "oops", "page": "/a"}', '2026-01-05T11:10:00Z'),
  mk('b7', 'E', jsonb_build_object('v', 3, 'page', repeat('/p', 5000)), '2026-01-05T11:10:00Z'),
  mk('b8', 'E', jsonb_build_object('v', 4, 'page', repeat('/p', 5000) || '/q'), '2026-01-05T11:10:00Z')),
  '2026-01-05 12:00:00+00');
SELECT count(*) AS stored FROM bv WHERE message_id LIKE 'b%';
SELECT count(*) AS delta_rows, sum(ek_events) AS events, sum(skipped_events) AS skipped,
       array_agg(ek_skips ORDER BY ek_skips) FILTER (WHERE ek_skips IS NOT NULL) AS skips
  FROM bv_all_delta;
-- the realtime views already have them, without error
SELECT * FROM check_views();
SELECT eventkit.refresh_rollup('bv_all');
SELECT count(*) AS deltas_left FROM bv_all_delta;
SELECT * FROM check_all();
SELECT skipped_values FROM eventkit.rollup_status WHERE name = 'public.bv_all';

-- refreshes go on: the same long values again merge into their rows
SELECT accepted FROM eventkit.ingest('bv', jsonb_build_array(
  mk('l1', 'E', jsonb_build_object('v', 10, 'page', repeat('/p', 5000)), '2026-01-05T11:20:00Z'),
  mk('l2', repeat('Long Event ', 40), '{"v": 11}', '2026-01-05T10:20:00Z')), '2026-01-05 12:00:00+00');
SELECT eventkit.refresh_rollup('bv_all');
SELECT eventkit.refresh_rollup('bv_all');
SELECT bucket, left(event, 12) AS event, left(page, 12) AS page, right(page, 45) AS page_end,
       octet_length(page) AS bytes, count, s
  FROM bv_all WHERE event LIKE '%...[sha256:%' OR page LIKE '%...[sha256:%' ORDER BY 1, 2, 3, 4;
SELECT * FROM check_all();

-- health(): a warning per rollup with skipped or bounded values
SELECT component, target, status, CASE WHEN component = 'rollup values' THEN value END AS value,
       regexp_replace(detail, 'the last at .*', 'the last at ...') AS detail
  FROM eventkit.health() WHERE component LIKE 'rollup%' ORDER BY component, target;

-- ==== a rollup made before 1.3 (format 1) ====
-- as 1.2 left it: no ek_skips in its delta table, a view of its own; a
-- grant and a view that depends on it must survive
SELECT eventkit.create_rollup('old', 'bv', '1 hour', '{event}',
                              '{count,"percentile(properties.v, 0.5) AS p"}') IS NOT NULL AS created;
ALTER TABLE old_delta DROP COLUMN ek_skips;
CREATE OR REPLACE VIEW old_realtime AS
  SELECT bucket, event, count, (SELECT tdigest_percentile(t.x, 0.5) FROM (VALUES (p)) t(x)) AS p,
         skipped_events
    FROM old;
CREATE ROLE ek_bv_reader;
GRANT SELECT ON old_realtime TO ek_bv_reader;
CREATE VIEW old_daily AS SELECT event, sum(count) AS n FROM old_realtime GROUP BY event;
UPDATE eventkit.rollups SET format = 1 WHERE name = 'public.old';
-- ingest writes deltas without ek_skips
SELECT accepted FROM eventkit.ingest('bv', mk('o1', 'E', jsonb_build_object('v', 1e309), '2026-01-05T13:00:00Z'),
                                     '2026-01-05 14:00:00+00');
SELECT count(*) AS delta_rows FROM old_delta;
SELECT eventkit.refresh_rollup('old');
SELECT format, skipped_values FROM eventkit.rollups WHERE name = 'public.old';
SELECT count(*) AS has_ek_skips FROM pg_attribute
 WHERE attrelid = 'old_delta'::regclass AND attname = 'ek_skips' AND NOT attisdropped;
SELECT pg_get_viewdef('old_realtime') LIKE '%eventkit.rollup_number%' AS view_made_again,
       has_table_privilege('ek_bv_reader', 'old_realtime', 'SELECT') AS grant_kept,
       to_regclass('old_daily') IS NOT NULL AS dependent_kept;
-- its deltas have ek_skips again (a backend that cached the old format notices)
SELECT accepted FROM eventkit.ingest('bv', mk('o2', 'E', '{"v": "x"}', '2026-01-05T13:00:00Z'),
                                     '2026-01-05 14:00:00+00');
SELECT ek_skips FROM old_delta;
SELECT eventkit.refresh_rollup('old');
SELECT format, skipped_values FROM eventkit.rollups WHERE name = 'public.old';
-- an idle rollup is upgraded by a refresh that folds nothing
UPDATE eventkit.rollups SET format = 1 WHERE name = 'public.old';
SELECT eventkit.refresh_rollup('old');
SELECT format FROM eventkit.rollups WHERE name = 'public.old';
SELECT bucket, event, count, p, skipped_events FROM old_realtime ORDER BY 1, 2;
DROP VIEW old_daily;

SELECT eventkit.drop_rollup(r) FROM unnest(ARRAY['bv_all', 'bv_twin', 'old']) r;
DROP ROLE ek_bv_reader;
DROP VIEW bv_ref, bv_ref_skips;
SELECT eventkit.drop_stream('bv');
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
