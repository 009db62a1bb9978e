-- Ingest folds a batch's delta in C (src/rollup/delta.c: the bucket, the
-- dimensions and the measure inputs evaluated from the batch's values) for
-- the common definitions, and with the fold's SQL SELECT otherwise.  Both
-- must give the same delta rows: the same batches go into two streams with
-- the same rollups, one with the C path, one with the SQL path forced
-- (eventkit.testing_rollup_sql_deltas, test builds only), and the delta
-- tables, then the rollups, are compared value for value (NULLs, skipped
-- values by reason, numeric sums as stored, hll hashes in order, hll bytes).
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('ca') IS NOT NULL AS c_stream,
       eventkit.create_stream('cb') IS NOT NULL AS sql_stream;

-- events with every kind of value: numbers, numeric strings, objects,
-- booleans, JSON null, missing keys, huge numbers, long dimension values
CREATE FUNCTION batch(first int, n int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
    'type', CASE WHEN i % 11 = 0 THEN 'page' ELSE 'track' END,
    'messageId', 'm' || i,
    'userId', CASE WHEN i % 6 <> 0 THEN 'u' || i % 7 END,
    'anonymousId', 'a' || i % 3,
    'event', CASE WHEN i % 11 <> 0 THEN (ARRAY['Order', 'View', 'Ünïcode'])[1 + i % 3] END,
    'properties', jsonb_build_object(
        'revenue', CASE i % 9 WHEN 0 THEN to_jsonb('n/a'::text) WHEN 1 THEN 'null'::jsonb
                              WHEN 2 THEN to_jsonb(true) WHEN 3 THEN '1e131001'::jsonb
                              WHEN 4 THEN to_jsonb(i * 1.25) WHEN 5 THEN '{"a": 1}'::jsonb
                              ELSE to_jsonb(i - 40) END,
        'code', CASE i % 5 WHEN 0 THEN to_jsonb(i % 4) WHEN 1 THEN to_jsonb((i % 4)::text)
                           WHEN 2 THEN '[1, "x"]'::jsonb WHEN 3 THEN 'null'::jsonb END,
        'currency', CASE WHEN i % 13 = 0 THEN repeat('long-currency-', 40) || i % 2
                         ELSE (ARRAY['EUR', 'USD', 'JPY'])[1 + i % 3] END,
        'nested', jsonb_build_object('sku', 's' || i % 4, 'ms', i % 17 * 0.5)),
    'context', CASE WHEN i % 4 <> 0 THEN jsonb_build_object('page', jsonb_build_object('path', '/p' || i % 2)) END,
    'timestamp', to_char(timestamptz '2026-03-28 20:00:00+00' + (i % 50) * interval '47 minutes',
                         'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
    FROM generate_series(first, first + n - 1) i
$$;

-- the same rollups on both streams: C-path definitions (buckets of every
-- form, column and JSON path dimensions, every measure), and a filtered one
-- (the SQL path on both)
CREATE FUNCTION rollups(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM eventkit.create_rollup(s || '_h', s, '1 hour', '{event,properties.currency,properties.code}',
    '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo",
      "max(properties.revenue) AS hi","avg(properties.revenue) AS mean",
      "distinct(user_id) AS users","distinct(properties.code) AS codes",
      "percentile(properties.nested.ms, 0.5) AS p50"}');
  PERFORM eventkit.create_rollup(s || '_m', s, '1 month', '{type,user_id,context.page.path}',
    '{count,"distinct(anonymous_id) AS anons","sum(properties.nested.ms) AS ms"}',
    time_zone => 'Europe/Berlin');
  PERFORM eventkit.create_rollup(s || '_q', s, '90 minutes', '{properties.nested}',
    '{count,"avg(properties.nested.ms) AS ms","distinct(properties.nested.sku) AS skus"}',
    time_zone => 'America/New_York', origin => '2026-01-01 00:10:00+00', hll_log2m => 12);
  PERFORM eventkit.create_rollup(s || '_d', s, '1 day', '{user_key}',
    '{count,"max(properties.revenue) AS hi"}', origin => '2026-03-01 06:00:00+00');
  PERFORM eventkit.create_rollup(s || '_y', s, '1 year', '{}', '{count,"sum(properties.revenue) AS rev"}');
  PERFORM eventkit.create_rollup(s || '_f', s, '1 hour', '{event}',
    '{count,"sum(properties.revenue) AS rev"}', filter => 'event = ''Order''');
END $$;
SELECT rollups('ca'), rollups('cb');

-- the same batches into both
SELECT accepted FROM eventkit.ingest('ca', batch(1, 200));
SET eventkit.testing_rollup_sql_deltas = on;
SELECT accepted FROM eventkit.ingest('cb', batch(1, 200));
SET eventkit.testing_rollup_sql_deltas = off;
SELECT accepted FROM eventkit.ingest('ca', batch(201, 150));
SET eventkit.testing_rollup_sql_deltas = on;
SELECT accepted FROM eventkit.ingest('cb', batch(201, 150));
SET eventkit.testing_rollup_sql_deltas = off;
SELECT accepted FROM eventkit.ingest('ca', batch(340, 60));   -- with 11 duplicates
SET eventkit.testing_rollup_sql_deltas = on;
SELECT accepted FROM eventkit.ingest('cb', batch(340, 60));
RESET eventkit.testing_rollup_sql_deltas;

-- a delta table's rows, the batch numbered by its rank, as jsonb (numeric
-- text as stored, hashes in order), compared both ways
CREATE FUNCTION delta_rows(t regclass) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT to_jsonb(d) - ''batch_id''
      || jsonb_build_object(''batch'', dense_rank() OVER (ORDER BY batch_id)) FROM %s d', t);
END $$;
CREATE FUNCTION rollup_rows(t regclass) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT to_jsonb(d) FROM %s d', t);
END $$;
SELECT r, (SELECT count(*) FROM delta_rows(('ca_' || r || '_delta')::regclass)) AS rows,
       (SELECT count(*) FROM (SELECT * FROM delta_rows(('ca_' || r || '_delta')::regclass)
                              EXCEPT ALL SELECT * FROM delta_rows(('cb_' || r || '_delta')::regclass)) x)
     + (SELECT count(*) FROM (SELECT * FROM delta_rows(('cb_' || r || '_delta')::regclass)
                              EXCEPT ALL SELECT * FROM delta_rows(('ca_' || r || '_delta')::regclass)) x)
         AS differences
  FROM unnest(ARRAY['h', 'm', 'q', 'd', 'y', 'f']) r ORDER BY r;
-- what the deltas hold: skips by reason, NULL keys, bounded dimensions
SELECT sum(ek_events) AS events, sum(skipped_events) AS skipped,
       sum(ek_skips[1]) AS not_a_number, sum(ek_skips[2]) AS out_of_range,
       sum(ek_skips[3]) AS truncated, count(*) FILTER (WHERE event IS NULL) AS null_event,
       count(*) FILTER (WHERE code IS NULL) AS null_code,
       count(*) FILTER (WHERE length(currency) > 200) AS long_currency
  FROM ca_h_delta;
SELECT DISTINCT code FROM ca_h_delta ORDER BY 1;

-- then the rollups
SELECT eventkit.refresh_rollup('ca_' || r), eventkit.refresh_rollup('cb_' || r)
  FROM unnest(ARRAY['h', 'm', 'q', 'd', 'y', 'f']) r;
SELECT r, (SELECT count(*) FROM rollup_rows(('ca_' || r)::regclass)) AS rows,
       (SELECT count(*) FROM (SELECT * FROM rollup_rows(('ca_' || r)::regclass)
                              EXCEPT ALL SELECT * FROM rollup_rows(('cb_' || r)::regclass)) x)
     + (SELECT count(*) FROM (SELECT * FROM rollup_rows(('cb_' || r)::regclass)
                              EXCEPT ALL SELECT * FROM rollup_rows(('ca_' || r)::regclass)) x)
         AS differences
  FROM unnest(ARRAY['h', 'm', 'q', 'd', 'y', 'f']) r ORDER BY r;
SELECT relid, skipped_values FROM eventkit.rollups WHERE relid IN ('ca_h'::regclass, 'cb_h'::regclass) ORDER BY relid::text;
-- and the C path's rollup equals a from-scratch GROUP BY of the stream
SELECT count(*) AS differences_from_group_by FROM ca_q r FULL JOIN (
    SELECT timezone('America/New_York', date_bin('90 minutes', timezone('America/New_York', ts),
                    timezone('America/New_York', timestamptz '2026-01-01 00:10:00+00'))) AS bucket,
           properties->>'nested' AS nested, count(*) AS count,
           hll_add_agg(hll_hash_text(properties#>>'{nested,sku}'), 12) AS skus
      FROM ca GROUP BY 1, 2) f ON r.bucket = f.bucket AND r.nested = f.nested
 WHERE r.bucket IS NULL OR f.bucket IS NULL OR r.count <> f.count OR r.skus::text <> f.skus::text;

SELECT count(eventkit.drop_rollup(s || '_' || r)) AS dropped
  FROM unnest(ARRAY['ca', 'cb']) s, unnest(ARRAY['h', 'm', 'q', 'd', 'y', 'f']) r;
SELECT eventkit.drop_stream('ca'), eventkit.drop_stream('cb');
DROP FUNCTION rollups(text);
DROP FUNCTION delta_rows(regclass);
DROP FUNCTION rollup_rows(regclass);
DROP FUNCTION batch(int, int);
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
