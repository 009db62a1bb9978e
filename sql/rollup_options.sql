-- Rollup options (issue 19): a filter, buckets in a time zone and from an
-- origin, the hll precision, and measures added to an existing rollup.
-- Each rollup (its table and its realtime view) is compared with a
-- GROUP BY over the stream, before and after refreshes, with late events.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('ev') IS NOT NULL AS created;

-- event i: spread over 96 hours around the end of summer time in Berlin
-- (2026-10-25 01:00 UTC), so that late events come with random order
CREATE FUNCTION ro_ev_json(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'type', 'track', 'messageId', 'm' || i, 'userId', 'u' || (i * 7) % 41,
    'event', (ARRAY['Order Completed', 'View', 'Click'])[1 + i % 3],
    'properties', jsonb_build_object(
        'currency', CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'EUR' WHEN 2 THEN 'USD' ELSE 'GBP' END,
        'revenue', (i % 97) + 0.5, 'ms', (i * 37) % 1000),
    'timestamp', to_char(timestamptz '2026-10-23 00:00:00+00' + ((i * 13) % 96) * interval '1 hour'
                         + (i % 60) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
$$;
CREATE FUNCTION ro_ingest_range(a int, b int) RETURNS bigint LANGUAGE sql AS $$
  SELECT accepted FROM eventkit.ingest('ev', (SELECT jsonb_agg(ro_ev_json(i)) FROM generate_series(a, b) i),
                                       '2026-10-27 00:00:00+00')
$$;
SELECT ro_ingest_range(1, 150);
SELECT ro_ingest_range(151, 300);

-- the rows two queries differ in (both ways)
CREATE FUNCTION ro_differences(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL TABLE %s) UNION ALL (TABLE %s EXCEPT ALL TABLE %s)) x', a, b, b, a) INTO n;
  RETURN n;
END $$;

-- ---------------------------------------------------------------------
-- filters: the grammar, and nothing but it
-- ---------------------------------------------------------------------
\set VERBOSITY default
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event = ');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'lower(event) = ''x''');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event = (SELECT 1)');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event = ''x''; DROP TABLE ev');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event = ''x'' OR pg_sleep(1) IS NULL');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event::int = 1');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'nope = ''x''');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'ts = ''2026-01-01''');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event = ''unterminated');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => 'event IN (''a'', )');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', filter => '');
\set VERBOSITY terse
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count}', time_zone => 'Mars/Olympus');
SELECT eventkit.create_rollup('x', 'ev', '1 month', '{}', '{count}', origin => '2026-01-01 00:00:00+00');
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count,"distinct(user_id)"}', hll_log2m => 3);
SELECT eventkit.create_rollup('x', 'ev', '1 hour', '{}', '{count,"distinct(user_id)"}', hll_log2m => 18);
SELECT to_regclass('x') IS NULL AS nothing_made;

-- a filtered rollup: only orders, in three of four currencies (or none)
SELECT eventkit.create_rollup('f', 'ev', '1 hour', '{properties.currency}',
  '{count,"sum(properties.revenue) AS rev","distinct(user_id) AS users"}',
  filter => $$event = 'Order Completed' AND (properties.currency IN ('EUR', 'USD') OR properties.currency IS NULL)$$) IS NOT NULL AS created;
SELECT filter FROM eventkit.rollups WHERE relid = 'f'::regclass;
CREATE VIEW f_scratch AS
  SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, properties->>'currency' AS currency,
         count(*) AS count, sum((properties->>'revenue')::numeric) AS rev,
         round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint AS users
    FROM ev WHERE event = 'Order Completed' AND (properties->>'currency' IN ('EUR', 'USD') OR properties->>'currency' IS NULL)
   GROUP BY 1, 2;
CREATE VIEW f_table AS
  SELECT bucket, currency, count, rev, round(hll_cardinality(users))::bigint AS users FROM f;
CREATE VIEW f_rt AS SELECT bucket, currency, count, rev, users FROM f_realtime;

-- a daily rollup in Berlin time: local days, 25 hours long on 2026-10-25
SELECT eventkit.create_rollup('d', 'ev', '1 day', '{event}', '{count,"sum(properties.revenue) AS rev"}',
  time_zone => 'Europe/Berlin') IS NOT NULL AS created;
CREATE VIEW d_scratch AS
  SELECT date_trunc('day', ts, 'Europe/Berlin') AS bucket, event, count(*) AS count,
         sum((properties->>'revenue')::numeric) AS rev FROM ev GROUP BY 1, 2;
CREATE VIEW d_table AS SELECT bucket, event, count, rev FROM d;
CREATE VIEW d_rt AS SELECT bucket, event, count, rev FROM d_realtime;

-- 6-hour buckets from an origin, and an hll of 2^14 registers
SELECT eventkit.create_rollup('w', 'ev', '6 hours', '{}', '{count}',
  origin => '2026-10-23 02:00:00+00') IS NOT NULL AS created;
CREATE VIEW w_scratch AS
  SELECT date_bin('6 hours', ts, '2026-10-23 02:00:00+00') AS bucket, count(*) AS count FROM ev GROUP BY 1;
CREATE VIEW w_table AS SELECT bucket, count FROM w;
CREATE VIEW w_rt AS SELECT bucket, count FROM w_realtime;
SELECT eventkit.create_rollup('p', 'ev', '1 day', '{}', '{count,"distinct(user_id) AS users"}',
  hll_log2m => 14) IS NOT NULL AS created;
CREATE VIEW p_scratch AS
  SELECT date_bin('1 day', ts, '2000-01-01 00:00:00+00') AS bucket, count(*) AS count,
         round(hll_cardinality(hll_add_agg(hll_hash_text(user_id), 14)))::bigint AS users FROM ev GROUP BY 1;
CREATE VIEW p_table AS SELECT bucket, count, round(hll_cardinality(users))::bigint AS users FROM p;
CREATE VIEW p_rt AS SELECT bucket, count, users FROM p_realtime;

CREATE FUNCTION ro_check_all() RETURNS TABLE(rollup text, table_diff bigint, realtime_diff bigint, rows bigint)
LANGUAGE sql AS $$
  SELECT r, ro_differences(r || '_table', r || '_scratch'), ro_differences(r || '_rt', r || '_scratch'),
         (SELECT count(*) FROM ev) FROM unnest(ARRAY['f', 'd', 'w', 'p']) r ORDER BY 1
$$;
-- after the backfill (table_diff: the table without the tail; realtime_diff: the view)
SELECT * FROM ro_check_all();

-- new and late events: in the tail, then folded (ingest's deltas)
SELECT ro_ingest_range(301, 420);
SELECT * FROM ro_check_all();
SELECT eventkit.refresh_rollup(r) FROM unnest(ARRAY['f', 'd', 'w', 'p']) r;
SELECT ro_ingest_range(421, 500);
SELECT * FROM ro_check_all();
SELECT eventkit.refresh_rollup(r) FROM unnest(ARRAY['f', 'd', 'w', 'p']) r;
SELECT * FROM ro_check_all();

-- what the options made: local days (the 25-hour one), the origin, the hll precision
SELECT bucket AT TIME ZONE 'Europe/Berlin' AS local_day,
       lead(bucket) OVER (ORDER BY bucket) - bucket AS length, sum(count) AS events
  FROM d GROUP BY bucket ORDER BY bucket;
SELECT min(bucket) AS first_bucket FROM w;
SELECT DISTINCT hll_log2m(users) FROM p;
SELECT count(*) AS rows, sum(count) AS orders FROM f;

-- ---------------------------------------------------------------------
-- add_rollup_measures: new measures, computed from the stored events
-- ---------------------------------------------------------------------
SELECT ro_ingest_range(501, 560);		-- in the tail when the measures are added
SELECT eventkit.add_rollup_measures('f', '{"max(properties.revenue) AS hi","avg(properties.ms) AS ms_avg","count AS rev"}');
SELECT eventkit.add_rollup_measures('f', '{"median(properties.ms)"}');
SELECT eventkit.add_rollup_measures('f', '{}');
SELECT eventkit.add_rollup_measures('f', '{"max(properties.revenue) AS hi","avg(properties.ms) AS ms_avg","percentile(properties.ms, 0.5) AS p50"}');
SELECT measures FROM eventkit.rollups WHERE relid = 'f'::regclass;
SELECT watermark = (SELECT max(batch_id) FROM ev) AS all_folded FROM eventkit.rollups WHERE relid = 'f'::regclass;
CREATE VIEW f2_scratch AS
  SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, properties->>'currency' AS currency,
         count(*) AS count, sum((properties->>'revenue')::numeric) AS rev,
         max((properties->>'revenue')::numeric) AS hi, avg((properties->>'ms')::numeric) AS ms_avg
    FROM ev WHERE event = 'Order Completed' AND (properties->>'currency' IN ('EUR', 'USD') OR properties->>'currency' IS NULL)
   GROUP BY 1, 2;
CREATE VIEW f2_table AS SELECT bucket, currency, count, rev, hi, ms_avg_sum / ms_avg_count AS ms_avg FROM f;
CREATE VIEW f2_rt AS SELECT bucket, currency, count, rev, hi, ms_avg FROM f_realtime;
SELECT ro_differences('f2_table', 'f2_scratch') AS table_diff, ro_differences('f2_rt', 'f2_scratch') AS realtime_diff;
-- the percentile's t-digest holds every order's value
SELECT sum(tdigest_count(p50))::bigint = (SELECT sum(count) FROM f) AS p50_complete FROM f;
-- later events get the new measures through ingest's deltas
SELECT ro_ingest_range(561, 700);
SELECT ro_differences('f2_rt', 'f2_scratch') AS realtime_diff;
SELECT eventkit.refresh_rollup('f') > 0 AS folded;
SELECT ro_differences('f2_table', 'f2_scratch') AS table_diff, ro_differences('f2_rt', 'f2_scratch') AS realtime_diff;
-- (f_rt, a view on the realtime view, was kept)
SELECT eventkit.refresh_rollup(r) >= 0 AS refreshed FROM unnest(ARRAY['d', 'w', 'p']) r;
SELECT * FROM ro_check_all();

DROP VIEW f_scratch, f_table, f_rt, f2_scratch, f2_table, f2_rt, d_scratch, d_table, d_rt,
  w_scratch, w_table, w_rt, p_scratch, p_table, p_rt;
SELECT eventkit.drop_rollup(r) FROM unnest(ARRAY['f', 'd', 'w', 'p']) r;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
DROP FUNCTION ro_ev_json(int), ro_ingest_range(int, int), ro_differences(text, text), ro_check_all();
