-- The C fold of refresh_rollup (src/rollup_fold.c) against SQL's own
-- semantics.  The reference is the realtime view of an identical rollup that
-- is never refreshed: it aggregates every row in SQL (#> and #>> operators,
-- jsonb_typeof, sum/min/max over numeric, hll_add_agg, tdigest).  Covered:
-- JSON paths through objects and arrays (negative and non-numeric
-- subscripts, scalars on the way, JSON null, strings, booleans, objects),
-- non-object properties, NULL properties, dimensions of several types with
-- NULLs, numeric columns, distinct on text and non-text values, many groups,
-- groups merged early (beyond work_mem), and a stream indexed the 1.1 way
-- (BRIN).
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SELECT eventkit.create_stream('fe') IS NOT NULL AS created;
ALTER TABLE fe ADD COLUMN amount numeric(10, 2);
-- creates the day's partition
SELECT accepted FROM eventkit.ingest('fe', '{"type": "track", "messageId": "seed", "userId": "u0",
  "event": "Seed", "timestamp": "2026-01-05T10:00:00Z", "properties": {"v": 1}}');

-- n rows of one new batch written directly (as ingest writes them), so that
-- properties can be any JSON value
CREATE FUNCTION fe_add(n int, seed int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO fe (message_id, type, event, user_id, user_key, ts, received_at, properties,
                  plan_version, amount, batch_id)
  SELECT 'm' || seed || '_' || i, 'track', 'E' || (i % 7),
         CASE WHEN i % 5 <> 0 THEN 'u' || (i % 23) END, 'k',
         '2026-01-05 00:00:00+00'::timestamptz + ((i * 7919 + seed) % 86400) * interval '1 second',
         '2026-01-05 12:00:00+00',
         (ARRAY[
           jsonb_build_object('v', i, 'a', jsonb_build_array(i, i * 2, jsonb_build_object('w', i / 3.0)),
                              'c', 'x' || (i % 3)),
           jsonb_build_object('v', (i * 1.5)::text, 'a', '[]'::jsonb, 'c', i % 2 = 0),
           jsonb_build_object('v', null, 'a', 'scalar', 'c', jsonb_build_object('k', 1)),
           jsonb_build_object('a', jsonb_build_array(-i, jsonb_build_array(1, 2)), 'c', null),
           jsonb_build_object('v', -i * 0.25, 'a', jsonb_build_object('0', 7, '-1', 8, '2', '{"w": 9}'::jsonb)),
           to_jsonb(i),
           jsonb_build_array(i, i),
           'null'::jsonb,
           NULL
         ])[1 + (i * 31 + seed) % 9],
         CASE WHEN i % 4 <> 0 THEN i % 3 END,
         CASE WHEN i % 6 <> 0 THEN i * 1.25 END,
         b.id
    FROM generate_series(1, n) i
   CROSS JOIN (SELECT pg_catalog.nextval('eventkit.batch_id_seq') AS id) b
$$;

SELECT fe_add(400, 1);

-- fr is refreshed (the C fold); fv never is (its view aggregates in SQL)
SELECT eventkit.create_rollup(r, 'fe', '1 hour',
    ARRAY['event', 'plan_version', 'properties.c AS c', 'properties.a.0 AS a0', 'received_at'],
    ARRAY['count', 'sum(properties.v) AS sv', 'min(properties.a.-1) AS mn',
          'max(properties.a.2.w) AS mx', 'avg(properties.a.0) AS av', 'sum(plan_version) AS spv',
          'min(amount) AS mna', 'max(amount) AS mxa', 'avg(amount) AS ava',
          'distinct(user_id) AS du', 'distinct(properties.c) AS dc', 'distinct(plan_version) AS dpv',
          'percentile(properties.v, 0.5) AS p50'],
    backfill => r = 'fr') IS NOT NULL AS created
  FROM unnest(ARRAY['fr', 'fv']) r;
-- the stream's batch_id index, since 1.5 a BRIN (one per stream, shared)
SELECT indexname, indexdef LIKE '%USING brin (batch_id) WITH (pages_per_range=''32'', autosummarize=''on'')' AS brin
  FROM pg_indexes WHERE tablename = 'fe' AND indexdef LIKE '%batch_id%' ORDER BY 1;

-- rows of the realtime views that differ (percentiles within 1e-9)
CREATE FUNCTION fe_diff() RETURNS TABLE (side text, n bigint) LANGUAGE sql AS $$
  WITH r AS (SELECT bucket, event, plan_version, c, a0, received_at, count, sv, mn, mx, av, spv,
                    mna, mxa, ava, du, dc, dpv, skipped_events FROM fr_realtime),
       v AS (SELECT bucket, event, plan_version, c, a0, received_at, count, sv, mn, mx, av, spv,
                    mna, mxa, ava, du, dc, dpv, skipped_events FROM fv_realtime)
  SELECT 'only refreshed', count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM v) x
  UNION ALL
  SELECT 'only computed', count(*) FROM (SELECT * FROM v EXCEPT ALL SELECT * FROM r) x
  UNION ALL
  SELECT 'percentile differs', count(*)
    FROM fr_realtime r JOIN fv_realtime v
      ON (r.bucket, r.event, r.plan_version, r.c, r.a0, r.received_at)
         IS NOT DISTINCT FROM (v.bucket, v.event, v.plan_version, v.c, v.a0, v.received_at)
   WHERE (r.p50 IS NULL) <> (v.p50 IS NULL) OR abs(r.p50 - v.p50) > 1e-9
$$;
SELECT * FROM fe_diff();
SELECT count(*) > 100 AS many_groups, sum(count) AS events, sum(skipped_events) > 0 AS some_skipped,
       count(*) FILTER (WHERE sv IS NULL) > 0 AS some_null_sums,
       count(*) FILTER (WHERE c IS NULL) > 0 AS null_dimension
  FROM fr;
SELECT watermark > 0 AS fr_folded FROM eventkit.rollups WHERE name = 'public.fr';

-- more rows, two batches in one refresh; nothing left after it
SELECT fe_add(300, 2);
SELECT fe_add(300, 3);
SELECT eventkit.refresh_rollup('fr') AS folded;
SELECT * FROM fe_diff();
SELECT eventkit.refresh_rollup('fr') AS nothing_new;

-- groups beyond work_mem are merged early, several times in one refresh:
-- the same result
SET work_mem = '64kB';
SELECT fe_add(900, 5);
SELECT eventkit.refresh_rollup('fr') AS folded_in_parts;
RESET work_mem;
SELECT * FROM fe_diff();

-- a stream indexed as eventkit 1.2 to 1.4 did (a btree): the fold reads through it
DROP INDEX fe_batch_id_brin;
CREATE INDEX fe_batch_id_rollup_idx ON fe USING btree (batch_id);
SELECT fe_add(250, 4);
SELECT eventkit.refresh_rollup('fr') AS folded_with_btree;
SELECT * FROM fe_diff();

-- the merged hll states equal a from-scratch aggregation, group by group
CREATE TEMP TABLE fe_scratch AS
SELECT pg_catalog.date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, event, plan_version,
       properties #>> '{c}' AS c, properties #>> '{a,0}' AS a0, received_at, count(*) AS count,
       hll_cardinality(hll_add_agg(hll_hash_text(user_id, 0))) AS du
  FROM fe GROUP BY 1, 2, 3, 4, 5, 6;
SELECT (SELECT count(*) FROM (SELECT bucket, event, plan_version, c, a0, received_at, count,
                                     hll_cardinality(du) FROM fr
                              EXCEPT ALL SELECT * FROM fe_scratch) x) AS only_rollup,
       (SELECT count(*) FROM (SELECT * FROM fe_scratch
                              EXCEPT ALL SELECT bucket, event, plan_version, c, a0, received_at, count,
                                     hll_cardinality(du) FROM fr) x) AS only_scratch;

-- the hlls are those hll_add_agg makes, byte for byte: a group of few
-- values is written by the fold itself (an EXPLICIT hll), one of many by
-- hll_add_agg (fold.c, init_hll_explicit); also with hll_log2m (8: at most
-- 20 explicit values) and after a refresh merged new values into them
SELECT eventkit.create_rollup(r, 'fe', '1 day', '{}',
    ARRAY['distinct(user_id) AS du', 'distinct(message_id) AS dm', 'distinct(event) AS de'],
    hll_log2m => l) IS NOT NULL AS created
  FROM (VALUES ('fh', NULL), ('fh8', 8)) v(r, l);
SELECT fe_add(30, 6);
SELECT eventkit.refresh_rollup('fh') + eventkit.refresh_rollup('fh8') AS folded_twice;
CREATE FUNCTION fe_hll_diff(log2m int) RETURNS TABLE (groups bigint, explicit bigint, differ bigint)
LANGUAGE sql AS $$
  WITH s AS (SELECT pg_catalog.date_bin('1 day', ts, '2000-01-01 00:00:00+00') AS bucket,
                    CASE WHEN log2m IS NULL THEN hll_add_agg(hll_hash_text(user_id, 0))
                         ELSE hll_add_agg(hll_hash_text(user_id, 0), log2m) END::text AS du,
                    CASE WHEN log2m IS NULL THEN hll_add_agg(hll_hash_text(message_id, 0))
                         ELSE hll_add_agg(hll_hash_text(message_id, 0), log2m) END::text AS dm,
                    CASE WHEN log2m IS NULL THEN hll_add_agg(hll_hash_text(event, 0))
                         ELSE hll_add_agg(hll_hash_text(event, 0), log2m) END::text AS de
               FROM fe GROUP BY 1),
       r AS (SELECT bucket, du::text, dm::text, de::text, hll_type(du) AS tu, hll_type(dm) AS tm,
                    hll_type(de) AS te FROM fh WHERE log2m IS NULL
             UNION ALL
             SELECT bucket, du::text, dm::text, de::text, hll_type(du), hll_type(dm), hll_type(de)
               FROM fh8 WHERE log2m = 8)
  SELECT count(*), count(*) FILTER (WHERE tu = 2) + count(*) FILTER (WHERE tm = 2)
                   + count(*) FILTER (WHERE te = 2),
         count(*) FILTER (WHERE (r.du, r.dm, r.de) IS DISTINCT FROM (s.du, s.dm, s.de))
    FROM r FULL JOIN s USING (bucket)
$$;
SELECT * FROM fe_hll_diff(NULL);
SELECT * FROM fe_hll_diff(8);
SELECT hll_type(dm) AS many_values_type, hll_type(de) AS few_values_type FROM fh;
SELECT fe_add(20, 7);
SELECT eventkit.refresh_rollup('fh') + eventkit.refresh_rollup('fh8') AS folded_again;
SELECT * FROM fe_hll_diff(NULL);
SELECT * FROM fe_hll_diff(8);
SELECT eventkit.drop_rollup(r) FROM unnest(ARRAY['fh', 'fh8']) r;
DROP FUNCTION fe_hll_diff(int);

-- eventkit.rollup_hll (the realtime views' tail) equals hll_add_agg byte for
-- byte: few values (EXPLICIT), many (unions of EXPLICIT pieces), repeated
-- values, NULLs left out, NULLs alone; with hll_log2m 8 and 12
WITH v(g, x) AS (SELECT g, CASE WHEN i % 10 <> 0 THEN 'v' || (i % (CASE g WHEN 1 THEN 5 WHEN 2 THEN 150 WHEN 3 THEN 161 ELSE 3000 END)) END
                   FROM generate_series(1, 4) g, generate_series(1, 6000) i
                 UNION ALL SELECT 5, NULL)
SELECT g, count(*) AS values,
       hll_type(eventkit.rollup_hll(array_agg(hll_hash_text(x, 0)), hll_empty())) AS type,
       eventkit.rollup_hll(array_agg(hll_hash_text(x, 0)), hll_empty())::text
         = hll_add_agg(hll_hash_text(x, 0))::text AS same,
       eventkit.rollup_hll(array_agg(hll_hash_text(x, 0)), hll_empty(8))::text
         = hll_add_agg(hll_hash_text(x, 0), 8)::text AS same_8,
       eventkit.rollup_hll(array_agg(hll_hash_text(x, 0)), hll_empty(12))::text
         = hll_add_agg(hll_hash_text(x, 0), 12)::text AS same_12
  FROM v GROUP BY g ORDER BY g;
SELECT eventkit.rollup_hll(ARRAY[1, 2]::bigint[], 'x'::text);
SELECT eventkit.rollup_hll(ARRAY[1, 2]::int4[], hll_empty());
SELECT eventkit.rollup_hll(1::bigint, hll_empty());
SELECT hll_cardinality(eventkit.rollup_hll(ARRAY[1, 2, 2, NULL]::bigint[], hll_empty())) AS two;

-- dropping the last rollup of the stream drops its batch_id index, either kind
SELECT eventkit.drop_rollup('fr');
SELECT count(*) AS btree FROM pg_indexes WHERE indexname = 'fe_batch_id_rollup_idx';
SELECT eventkit.drop_rollup('fv');
SELECT count(*) AS indexes FROM pg_indexes WHERE indexname IN ('fe_batch_id_brin', 'fe_batch_id_rollup_idx');

SELECT eventkit.drop_stream('fe');
DROP FUNCTION fe_add(int, int);
DROP FUNCTION fe_diff();
DROP EXTENSION tdigest;
DROP EXTENSION hll;
DROP EXTENSION eventkit;
