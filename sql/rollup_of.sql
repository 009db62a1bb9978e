-- Rollups of rollups (issue 19): daily and monthly rollups made from an
-- hourly rollup's partial states, in Berlin time (across the end of summer
-- time), refreshed with their source, compared (table and realtime view)
-- with a GROUP BY over the stream, with late events.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('ev') IS NOT NULL AS created;

CREATE FUNCTION rf_ev_json(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'type', 'track', 'messageId', 'm' || i, 'userId', 'u' || (i * 7) % 41,
    'event', (ARRAY['Order Completed', 'View', 'Click'])[1 + i % 3],
    'properties', jsonb_build_object(
        'currency', CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'EUR' WHEN 2 THEN 'USD' ELSE 'GBP' END,
        'revenue', CASE WHEN i % 13 = 0 THEN to_jsonb('n/a'::text) ELSE to_jsonb((i % 97) + 0.5) END,
        'ms', (i * 37) % 1000),
    'timestamp', to_char(timestamptz '2026-10-23 00:00:00+00' + ((i * 13) % 240) * interval '1 hour'
                         + (i % 60) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
$$;
CREATE FUNCTION rf_ingest_range(a int, b int) RETURNS bigint LANGUAGE sql AS $$
  SELECT accepted FROM eventkit.ingest('ev', (SELECT jsonb_agg(rf_ev_json(i)) FROM generate_series(a, b) i),
                                       '2026-11-03 00:00:00+00')
$$;
SELECT rf_ingest_range(1, 200);
SELECT rf_ingest_range(201, 400);

SELECT eventkit.create_rollup('h', 'ev', '1 hour', '{event,properties.currency}',
  '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo","max(properties.revenue) AS hi",
    "avg(properties.revenue) AS mean","distinct(user_id) AS users","percentile(properties.ms, 0.9) AS p90"}',
  time_zone => 'Europe/Berlin') IS NOT NULL AS created;

-- errors
\set VERBOSITY terse
SELECT eventkit.create_rollup_of('x', 'h', '90 minutes');
SELECT eventkit.create_rollup_of('x', 'h', '1 day', '{nope}');
SELECT eventkit.create_rollup_of('x', 'h', '1 day', '{event,event}');
SELECT eventkit.create_rollup_of('x', 'nope', '1 day');
SELECT eventkit.create_rollup_of('h', 'h', '1 day');

-- daily by event, and monthly over everything
SELECT eventkit.create_rollup_of('dd', 'h', '1 day', '{event}') IS NOT NULL AS created;
SELECT eventkit.create_rollup_of('mm', 'h', '1 month', '{}') IS NOT NULL AS created;
SELECT eventkit.create_rollup_of('x', 'dd', '7 days');
SELECT eventkit.add_rollup_measures('dd', '{"max(properties.ms)"}');
SELECT eventkit.drop_rollup('h');
SELECT r.dimensions, r.measures = h.measures AS same_measures, r.time_zone, r.source_rollup
  FROM eventkit.rollups r, eventkit.rollups h
 WHERE h.relid = 'h'::regclass AND r.relid IN ('dd'::regclass, 'mm'::regclass) ORDER BY r.rollup_id;
-- no delta table, no job of its own: its source's refresh refreshes it
SELECT to_regclass('dd_delta') IS NULL AS no_delta,
       (SELECT count(*) FROM eventkit.jobs WHERE kind = 'refresh_rollup' AND target LIKE '%dd') AS jobs;

CREATE FUNCTION rf_differences(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL TABLE %s) UNION ALL (TABLE %s EXCEPT ALL TABLE %s)) x', a, b, b, a) INTO n;
  RETURN n;
END $$;
CREATE VIEW vals AS
  SELECT *, CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END AS v FROM ev;
-- exact measures (the hll estimate of a union is the estimate of the whole)
CREATE VIEW dd_scratch AS
  SELECT date_trunc('day', ts, 'Europe/Berlin') AS bucket, event, count(*) AS count, sum(v) AS rev, min(v) AS lo,
         max(v) AS hi, avg(v) AS mean, round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint AS users,
         count(*) FILTER (WHERE jsonb_typeof(properties->'revenue') NOT IN ('number', 'null')) AS skipped
    FROM vals GROUP BY 1, 2;
CREATE VIEW dd_table AS
  SELECT bucket, event, count, rev, lo, hi, mean_sum / NULLIF(mean_count, 0) AS mean,
         round(hll_cardinality(users))::bigint AS users, skipped_events AS skipped FROM dd;
CREATE VIEW dd_rt AS SELECT bucket, event, count, rev, lo, hi, mean, users, skipped_events AS skipped FROM dd_realtime;
CREATE VIEW mm_scratch AS
  SELECT date_trunc('month', ts, 'Europe/Berlin') AS bucket, count(*) AS count, sum(v) AS rev, min(v) AS lo,
         max(v) AS hi, avg(v) AS mean, round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint AS users,
         count(*) FILTER (WHERE jsonb_typeof(properties->'revenue') NOT IN ('number', 'null')) AS skipped
    FROM vals GROUP BY 1;
CREATE VIEW mm_table AS
  SELECT bucket, count, rev, lo, hi, mean_sum / NULLIF(mean_count, 0) AS mean,
         round(hll_cardinality(users))::bigint AS users, skipped_events AS skipped FROM mm;
CREATE VIEW mm_rt AS SELECT bucket, count, rev, lo, hi, mean, users, skipped_events AS skipped FROM mm_realtime;
-- the t-digest: every value in it, its 0.9 quantile within 2% of the value range of a
-- t-digest of the day's values (t-digests merged from hours are a t-digest of the day)
CREATE VIEW dd_p90 AS
  SELECT count(*) FILTER (WHERE abs(a.p90 - b.p90) > 20 OR a.n <> b.n) AS off
    FROM (SELECT bucket, event, (SELECT tdigest_percentile(x, 0.9) FROM (VALUES (p90)) v(x)) AS p90,
                 tdigest_count(p90) AS n FROM dd) a
    JOIN (SELECT date_trunc('day', ts, 'Europe/Berlin') AS bucket, event,
                 tdigest_percentile((properties->>'ms')::float8, 100, 0.9) AS p90, count(*) AS n
            FROM ev GROUP BY 1, 2) b USING (bucket, event);

CREATE FUNCTION rf_check_all() RETURNS TABLE(rollup text, table_diff bigint, realtime_diff bigint, p90_off bigint, events bigint)
LANGUAGE sql AS $$
  SELECT r, rf_differences(r || '_table', r || '_scratch'), rf_differences(r || '_rt', r || '_scratch'),
         (SELECT off FROM dd_p90), (SELECT count(*) FROM ev) FROM unnest(ARRAY['dd', 'mm']) r ORDER BY 1
$$;
SELECT * FROM rf_check_all();
SELECT bucket AT TIME ZONE 'Europe/Berlin' AS local_day, sum(count) AS events FROM dd
 WHERE bucket < '2026-10-27' GROUP BY bucket ORDER BY bucket;

-- new and late events: exact in the realtime views at once, in the tables after the source's refresh
SELECT rf_ingest_range(401, 520);
SELECT rf_ingest_range(521, 600);
SELECT rollup, realtime_diff, events FROM rf_check_all();
SELECT eventkit.refresh_rollup('h');
SELECT * FROM rf_check_all();
SELECT r.watermark = h.watermark AS same_watermark, r.last_refresh_events
  FROM eventkit.rollups r, eventkit.rollups h
 WHERE h.relid = 'h'::regclass AND r.relid IN ('dd'::regclass, 'mm'::regclass) ORDER BY r.rollup_id;
-- refreshing a rollup of a rollup refreshes its source (in chunks too)
SELECT rf_ingest_range(601, 700);
SELECT rf_ingest_range(701, 800);
SELECT eventkit.refresh_rollup('dd', 50);
SELECT eventkit.refresh_rollup('mm');
SELECT * FROM rf_check_all();

DROP VIEW dd_p90, dd_scratch, dd_table, dd_rt, mm_scratch, mm_table, mm_rt, vals;
SELECT eventkit.drop_rollup('dd');
SELECT eventkit.drop_rollup('mm');
SELECT eventkit.drop_rollup('h');
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
DROP FUNCTION rf_ev_json(int), rf_ingest_range(int, int), rf_differences(text, text), rf_check_all();
