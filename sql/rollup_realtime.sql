-- The realtime view of 1.7: the tail's groups in one FULL JOIN with the
-- rollup's rows (when every dimension's type has a stand-in for NULL),
-- distinct() finished by eventkit.rollup_hll_count; exact for late rows in
-- a bucket the rollup already has, for groups only in the tail and for NULL
-- dimensions, with JIT on or off.  And rollup_hll_count against the hll
-- extension's own union and cardinality, for every layout.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';

-- 1. rollup_hll_count(a, b) = round(COALESCE(hll_cardinality(COALESCE(hll_union(a, b), a, b)), 0))
-- hlls of 0 to 5,000 values, overlapping, for several parameters
-- (log2m, register width, explicit threshold, sparse on)
CREATE TABLE hp (p int PRIMARY KEY, log2m int, w int, expthresh bigint, sparse int);
INSERT INTO hp VALUES (1, 11, 5, -1, 1), (2, 4, 5, -1, 1), (3, 14, 5, -1, 1), (4, 11, 5, 0, 1),
  (5, 11, 5, 16, 0), (6, 11, 4, -1, 1), (7, 15, 5, -1, 1), (8, 10, 3, 4, 1);
CREATE TABLE hs (p int, n int, off int, v hll);
INSERT INTO hs
SELECT hp.p, s.n, o.off, (SELECT hll_add_agg(hll_hash_integer(i), hp.log2m, hp.w, hp.expthresh, hp.sparse)
                         FROM generate_series(o.off, o.off + s.n - 1) i)
  FROM hp, (VALUES (1), (3), (40), (159), (160), (161), (300), (1000), (5000)) s(n),
       (VALUES (0), (20)) o(off)
 WHERE hp.p <> 7 OR s.n IN (1, 300, 5000);
INSERT INTO hs SELECT p, 0, 0, hll_empty(log2m, w, expthresh, sparse) FROM hp;
-- every layout is there: EMPTY 1, EXPLICIT 2, SPARSE 3, FULL 4
SELECT hll_type(v) AS type, count(*) FROM hs GROUP BY 1 ORDER BY 1;
-- every pair of the same parameters, and each with NULL
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE eventkit.rollup_hll_count(a.v, b.v) IS DISTINCT FROM
                              round(COALESCE(hll_cardinality(COALESCE(hll_union(a.v, b.v), a.v, b.v)), 0))::bigint) AS differ,
       count(*) FILTER (WHERE eventkit.rollup_hll_count(a.v, b.v) IS DISTINCT FROM eventkit.rollup_hll_count(b.v, a.v)) AS asymmetric
  FROM hs a JOIN hs b USING (p);
SELECT count(*) AS singles,
       count(*) FILTER (WHERE eventkit.rollup_hll_count(v, NULL) IS DISTINCT FROM round(COALESCE(hll_cardinality(v), 0))::bigint
                           OR eventkit.rollup_hll_count(NULL, v) IS DISTINCT FROM round(COALESCE(hll_cardinality(v), 0))::bigint) AS differ
  FROM hs;
SELECT eventkit.rollup_hll_count(NULL::hll, NULL) AS both_null;
-- an undefined hll (the extension's), different parameters, not an hll
SELECT eventkit.rollup_hll_count(E'\\x108b7f'::bytea::hll, NULL) AS undefined,
       round(COALESCE(hll_cardinality(E'\\x108b7f'::bytea::hll), 0))::bigint AS extension;
SELECT eventkit.rollup_hll_count(hll_empty(11), hll_empty(12));
SELECT eventkit.rollup_hll_count(1, 2);

-- 2. the views
SELECT eventkit.create_stream('ev') IS NOT NULL AS created;
CREATE FUNCTION rt_mk(id text, uid text, name text, props jsonb, at text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('type', 'track', 'messageId', id, 'userId', uid,
                                              'event', name, 'properties', props, 'timestamp', at))
$$;
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  rt_mk('h1', 'u1', 'Order', '{"revenue": 10, "currency": "EUR", "ms": 100}', '2026-01-05T10:05:00Z'),
  rt_mk('h2', 'u2', 'Order', '{"revenue": 20.5, "currency": "EUR", "ms": 200}', '2026-01-05T10:10:00Z'),
  rt_mk('h3', 'u1', 'Order', '{"revenue": 5, "currency": "USD", "ms": 300}', '2026-01-05T10:20:00Z'),
  rt_mk('h4', 'u3', 'View', '{"ms": 50}', '2026-01-05T11:00:00Z'),
  rt_mk('h5', 'u4', 'View', '{"ms": 70}', '2026-01-05T12:00:00Z')), '2026-01-05 12:00:00+00');
-- text dimensions (a FULL JOIN), an integer column (a FULL JOIN), a timestamptz
-- column (no stand-in for NULL: the 1.4 shape, WITH ... UNION ALL)
SELECT eventkit.create_rollup('r1', 'ev', '1 hour', '{event,properties.currency}',
  '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo","max(properties.revenue) AS hi",
    "avg(properties.revenue) AS mean","distinct(user_id) AS users","percentile(properties.ms, 0.5) AS p50"}');
SELECT eventkit.create_rollup('r2', 'ev', '1 hour', '{plan_version}', '{count,"distinct(user_id) AS users"}');
SELECT eventkit.create_rollup('r3', 'ev', '1 day', '{received_at}', '{count,"distinct(user_id) AS users"}');
SELECT v AS view, pg_get_viewdef(v::regclass) LIKE '%FULL JOIN%' AS full_join,
       pg_get_viewdef(v::regclass) LIKE '%eventkit.rollup_hll_count(%' AS count_fn,
       pg_get_viewdef(v::regclass) LIKE '%hll_cardinality%' AS extension_count
  FROM unnest(ARRAY['r1_realtime', 'r2_realtime', 'r3_realtime']) v ORDER BY 1;
-- 1.11: the tail collects a group's hashes with eventkit.rollup_hashes, which
-- is array_agg (NULLs kept, in the order given, NULL for no rows) with a
-- transition space the planner can cost (it hashes the tail's groups)
SELECT v AS view, pg_get_viewdef(v::regclass) LIKE '%eventkit.rollup_hashes(%' AS rollup_hashes,
       pg_get_viewdef(v::regclass) LIKE '%array_agg(%' AS array_agg
  FROM unnest(ARRAY['r1_realtime', 'r2_realtime', 'r3_realtime']) v ORDER BY 1;
SELECT eventkit.rollup_hashes(x ORDER BY o) AS hashes, array_agg(x ORDER BY o) AS array_agg,
       (SELECT eventkit.rollup_hashes(1) WHERE false) AS none,
       (SELECT aggtransspace FROM pg_aggregate
         WHERE aggfnoid = 'eventkit.rollup_hashes(anynonarray)'::regprocedure) AS transspace
  FROM (VALUES (1, 30::bigint), (2, NULL), (3, 10), (4, 30)) v(o, x);

-- the tail, not folded: a late event in a group the rollup has (10:00 Order
-- EUR), a late one in a bucket it has but a group it does not (10:00 Order
-- GBP), a group only in the tail (13:00), NULL currency in a group the
-- rollup has (11:00 View) and in one it does not (10:00 Order)
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  rt_mk('t1', 'u9', 'Order', '{"revenue": 1, "currency": "EUR", "ms": 900}', '2026-01-05T10:30:00Z'),
  rt_mk('t2', 'u1', 'Order', '{"revenue": 2, "currency": "GBP", "ms": 10}', '2026-01-05T10:40:00Z'),
  rt_mk('t3', 'u5', 'Click', '{"revenue": 3}', '2026-01-05T13:00:00Z'),
  rt_mk('t4', 'u3', 'View', '{"ms": 60}', '2026-01-05T11:30:00Z'),
  rt_mk('t5', 'u6', 'Order', '{"revenue": 4}', '2026-01-05T10:50:00Z')), '2026-01-06 09:00:00+00');

CREATE FUNCTION rt_from_scratch() RETURNS TABLE(bucket timestamptz, event text, currency text, count bigint,
    rev numeric, lo numeric, hi numeric, mean numeric, users bigint, p50 float8, skipped bigint)
LANGUAGE sql AS $$
  SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), event, properties->>'currency', count(*),
         sum((properties->>'revenue')::numeric), min((properties->>'revenue')::numeric),
         max((properties->>'revenue')::numeric), avg((properties->>'revenue')::numeric),
         round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint,
         tdigest_percentile((properties->'ms')::float8, 100, 0.5), 0::bigint
    FROM ev GROUP BY 1, 2, 3
$$;
-- rows of the view and of the GROUP BY that differ (exact measures exactly,
-- the t-digest's median within 1)
CREATE FUNCTION rt_differences() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM r1_realtime a FULL JOIN rt_from_scratch() b
      ON a.bucket = b.bucket AND a.event IS NOT DISTINCT FROM b.event AND a.currency IS NOT DISTINCT FROM b.currency
   WHERE a.bucket IS NULL OR b.bucket IS NULL
      OR (a.count, a.rev, a.lo, a.hi, a.users, a.skipped_events) IS DISTINCT FROM (b.count, b.rev, b.lo, b.hi, b.users, b.skipped)
      OR a.mean IS DISTINCT FROM b.mean OR abs(a.p50 - b.p50) > 1 OR (a.p50 IS NULL) <> (b.p50 IS NULL)
$$;
CREATE FUNCTION rt_differences_23() RETURNS bigint LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM
           ((SELECT bucket, plan_version, count, users FROM r2_realtime
             EXCEPT ALL
             SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), plan_version, count(*),
                    round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint FROM ev GROUP BY 1, 2)
            UNION ALL
            (SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), plan_version, count(*),
                    round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint FROM ev GROUP BY 1, 2
             EXCEPT ALL
             SELECT bucket, plan_version, count, users FROM r2_realtime)) x)
       + (SELECT count(*) FROM
           ((SELECT bucket, received_at, count, users FROM r3_realtime
             EXCEPT ALL
             SELECT date_bin('1 day', ts, '2000-01-01 00:00:00+00'), received_at, count(*),
                    round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint FROM ev GROUP BY 1, 2)
            UNION ALL
            (SELECT date_bin('1 day', ts, '2000-01-01 00:00:00+00'), received_at, count(*),
                    round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint FROM ev GROUP BY 1, 2
             EXCEPT ALL
             SELECT bucket, received_at, count, users FROM r3_realtime)) x)
$$;

-- t1 to t5 not folded, over the history create_rollup folded
SELECT rt_differences() AS r1, rt_differences_23() AS r2_r3;
SELECT eventkit.refresh_rollup('r1') > 0 AS r1, eventkit.refresh_rollup('r2') > 0 AS r2,
       eventkit.refresh_rollup('r3') > 0 AS r3;
-- a second tail over the refreshed rollups: late rows in groups whose
-- rows now hold folded tail rows (10:00 Order EUR, GBP and NULL currency,
-- 11:00 View NULL), and a group in a new bucket (14:00)
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  rt_mk('t6', 'u7', 'Order', '{"revenue": 7, "currency": "EUR", "ms": 700}', '2026-01-05T10:35:00Z'),
  rt_mk('t7', 'u2', 'Order', '{"revenue": 8, "currency": "GBP", "ms": 20}', '2026-01-05T10:45:00Z'),
  rt_mk('t8', 'u8', 'Click', '{"revenue": 9}', '2026-01-05T14:00:00Z'),
  rt_mk('t9', 'u4', 'View', '{"ms": 80}', '2026-01-05T11:40:00Z'),
  rt_mk('t10', 'u9', 'Order', '{"revenue": 6}', '2026-01-05T10:55:00Z')), '2026-01-07 09:00:00+00');
SELECT bucket, event, currency, count, rev, lo, hi, round(mean, 4) AS mean, users, p50, skipped_events
  FROM r1_realtime ORDER BY 1, 2, 3;
SELECT rt_differences() AS r1, rt_differences_23() AS r2_r3;
-- JIT on for every plan (compiled, not inlined or optimized: that took
-- seconds per query): the same answer
SET jit = on;
SET jit_above_cost = 0;
SELECT rt_differences() AS r1, rt_differences_23() AS r2_r3;
RESET jit_above_cost;
RESET jit;
-- folded: the view is the rollup's rows
SELECT eventkit.refresh_rollup('r1') AS r1, eventkit.refresh_rollup('r2') AS r2, eventkit.refresh_rollup('r3') AS r3;
SELECT rt_differences() AS r1, rt_differences_23() AS r2_r3;

-- 3. 1.12: a realtime view runs no code of the hll library, so that a new
-- session does not load it to read one.  The tail hashes with
-- eventkit.rollup_hash_text, hll_hash_text(value, 0) computed by eventkit:
-- equal on texts of every length from 0 to 80 bytes (each length of the
-- last, partial 16-byte block), multibyte ones included
SELECT count(*) AS texts,
       count(*) FILTER (WHERE eventkit.rollup_hash_text(t) IS DISTINCT FROM hll_hash_text(t, 0)::text::bigint) AS differ,
       count(DISTINCT eventkit.rollup_hash_text(t)) AS distinct_hashes
  FROM (SELECT left(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), n)
               || CASE WHEN i % 4 = 0 THEN 'ü€𝄞' ELSE '' END AS t
          FROM generate_series(1, 12) i, generate_series(0, 80) n) x;
SELECT eventkit.rollup_hash_text(NULL) IS NULL AS strict;
-- the views call it, and their empty hll is a constant (hll_empty() when made)
SELECT v AS view, pg_get_viewdef(v::regclass) LIKE '%eventkit.rollup_hash_text(%' AS own_hash,
       pg_get_viewdef(v::regclass) LIKE '%hll_hash_text(%' AS library_hash,
       pg_get_viewdef(v::regclass) LIKE '%hll_empty(%' AS library_empty
  FROM unnest(ARRAY['r1_realtime', 'r2_realtime', 'r3_realtime']) v ORDER BY 1;
-- hashes for eventkit.rollup_hll of more than an EXPLICIT hll holds (160 with
-- the defaults, 16 with expthresh 16): written in C from the library's
-- default max_sparse while the library is not loaded
CREATE TABLE rt_big AS
  SELECT n, k, e, h
    FROM (SELECT n, array_agg(eventkit.rollup_hash_text(i::text)) AS h
            FROM (VALUES (161), (200), (1000), (5000)) v(n), generate_series(1, n) i GROUP BY n) a,
         (VALUES (1, hll_empty()), (2, hll_empty(11, 5, 16, 1)), (3, hll_empty(10, 4, -1, 0))) p(k, e);
\c
SELECT bucket, event, currency, count, rev, users FROM r1_realtime ORDER BY 1, 2, 3;
CREATE TABLE rt_big_hll AS SELECT n, k, eventkit.rollup_hll(h, e) AS x FROM rt_big;
-- nothing in this session has run code of the hll library
SELECT pg_read_file('/proc/self/maps') LIKE '%/hll.so%' AS hll_library_loaded;
-- the same bytes as hll_add_agg's (SPARSE and FULL both)
SELECT n, k, hll_type(x) AS type,
       x::text = (SELECT hll_add_agg(v::text::hll_hashval, hll_log2m(e), hll_regwidth(e),
                                     (hll_expthresh(e)).specified, hll_sparseon(e))::text
                    FROM unnest(h) v) AS same
  FROM rt_big JOIN rt_big_hll USING (n, k) ORDER BY 1, 2;
DROP TABLE rt_big, rt_big_hll;

-- 1.13: the FULL JOIN's tail groups by its join keys (per dimension N,
-- COALESCE(d, stand-in) AS ek_keyN and d IS NULL AS ek_nullN), which the
-- join compares with the rollup's: the planner sizes a hash of the tail by
-- them and hashes the tail instead of sorting every rollup row (1.4 shape:
-- r3, unchanged)
SELECT v AS view, pg_get_viewdef(v::regclass) LIKE '%t.ek_key1 = COALESCE(r.%' AS keyed_join,
       pg_get_viewdef(v::regclass) LIKE '%t.ek_null1 = (r.%' AS null_key
  FROM unnest(ARRAY['r1_realtime', 'r2_realtime', 'r3_realtime']) v ORDER BY 1;
-- an empty and a missing currency in the same bucket and event, in the rollup
-- and in the tail, and an empty one only in the tail: not merged
SET timezone = 'UTC';
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  rt_mk('e1', 'u1', 'Order', '{"revenue": 1, "currency": ""}', '2026-01-05T10:10:00Z'),
  rt_mk('e2', 'u2', 'Order', '{"revenue": 2}', '2026-01-05T10:15:00Z')), '2026-01-08 09:00:00+00');
SELECT eventkit.refresh_rollup('r1') AS folded;
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  rt_mk('e3', 'u3', 'Order', '{"revenue": 3, "currency": ""}', '2026-01-05T10:20:00Z'),
  rt_mk('e4', 'u4', 'Order', '{"revenue": 4}', '2026-01-05T10:25:00Z'),
  rt_mk('e5', 'u5', 'Order', '{"revenue": 5, "currency": ""}', '2026-01-05T15:00:00Z')), '2026-01-09 09:00:00+00');
SELECT bucket, currency IS NULL AS missing, currency, count, rev, users
  FROM r1_realtime WHERE event = 'Order' AND (currency IS NULL OR currency = '') ORDER BY 1, 2;
SELECT rt_differences() AS r1;
-- the join: the tail hashed, the rollup's rows read as they are (the plan's
-- top, without the condition)
CREATE FUNCTION rt_plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP;
END $$;
SELECT l AS plan FROM rt_plan('SELECT * FROM r1_realtime') WITH ORDINALITY p(l, n)
 WHERE n <= 4 AND l !~ 'Cond:' ORDER BY n;

SELECT eventkit.drop_rollup('r1'), eventkit.drop_rollup('r2'), eventkit.drop_rollup('r3');
SELECT eventkit.drop_stream('ev');
DROP FUNCTION rt_mk(text, text, text, jsonb, text), rt_from_scratch(), rt_differences(), rt_differences_23(), rt_plan(text);
DROP TABLE hp, hs;
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
