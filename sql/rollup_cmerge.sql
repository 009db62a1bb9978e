-- A refresh merges the groups it folded into the rollup table in C
-- (src/rollup/fold_write.c: the rows of the groups' buckets read in one
-- index scan, or a lookup in the unique key's index per group, then an
-- update of the row found or an insert) when the table and the
-- measures allow, and with INSERT ... ON CONFLICT DO UPDATE otherwise (a
-- percentile, a trigger on the table, or eventkit.testing_rollup_sql_merge
-- in a test build).  Both must write the same rows: pairs of rollups with
-- the same definition over one stream, one refreshed each way after the
-- same ingests (new groups, updated groups, late events, re-sends), are
-- compared value for value (NULL keys, skipped values, numeric sums as
-- stored, hll bytes: EXPLICIT, registers, empty), and with a from-scratch
-- GROUP BY of the stream.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('mg') IS NOT NULL AS stream;

CREATE FUNCTION cm_batch(first int, n int, hours int DEFAULT 60) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
    'type', CASE WHEN i % 11 = 0 THEN 'page' ELSE 'track' END,
    'messageId', 'm' || i,
    'userId', CASE WHEN i % 6 <> 0 THEN 'u' || i % 500 END,
    'anonymousId', 'a' || i % 3,
    'event', CASE WHEN i % 7 <> 0 THEN (ARRAY['Order', 'View', 'Ünïcode'])[1 + i % 3] END,
    'properties', jsonb_build_object(
        'revenue', CASE i % 9 WHEN 0 THEN to_jsonb('n/a'::text) WHEN 1 THEN 'null'::jsonb
                              WHEN 3 THEN '1e131001'::jsonb WHEN 4 THEN to_jsonb(i * 1.25)
                              WHEN 5 THEN to_jsonb(i * 0.10) ELSE to_jsonb(i - 400) END,
        'currency', CASE WHEN i % 13 = 0 THEN repeat('long-currency-', 40) || i % 2
                         ELSE (ARRAY['EUR', 'USD', 'JPY'])[1 + i % 3] END),
    'timestamp', to_char(timestamptz '2026-03-28 20:00:00+00' + (i % hours) * interval '47 minutes',
                         'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
    FROM generate_series(first, first + n - 1) i
$$;

-- pairs: mc_* merged in C, ms_* by the statement; h: every numeric measure
-- and an hll of few values per group (EXPLICIT), NULL and bounded
-- dimensions; d: daily groups of up to 500 users with hll_log2m 10 (80
-- hashes at most in an EXPLICIT hll: registers); n: a group whose distinct
-- values are all NULL (an empty hll); p: a percentile (the statement for
-- both)
CREATE FUNCTION cm_rollups(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM eventkit.create_rollup(s || '_h', 'mg', '1 hour', '{event,properties.currency}',
    '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo",
      "max(properties.revenue) AS hi","avg(properties.revenue) AS mean",
      "distinct(user_id) AS users"}');
  PERFORM eventkit.create_rollup(s || '_d', 'mg', '1 day', '{type}',
    '{count,"distinct(user_id) AS users","distinct(anonymous_id) AS anons"}', hll_log2m => 10);
  PERFORM eventkit.create_rollup(s || '_n', 'mg', '1 day', '{user_id}',
    '{count,"distinct(user_id) AS users"}');
  PERFORM eventkit.create_rollup(s || '_p', 'mg', '1 day', '{event}',
    '{count,"percentile(properties.revenue, 0.5) AS p50","distinct(user_id) AS users"}');
END $$;
SELECT cm_rollups('mc'), cm_rollups('ms');
-- and mt_h, as mc_h, whose table has a trigger: the statement
SELECT eventkit.create_rollup('mt_h', 'mg', '1 hour', '{event,properties.currency}',
    '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo",
      "max(properties.revenue) AS hi","avg(properties.revenue) AS mean",
      "distinct(user_id) AS users"}') IS NOT NULL AS mt_h;
CREATE TABLE mt_log (op text);
CREATE FUNCTION mt_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.mt_log VALUES (TG_OP);
  RETURN NEW;
END $$;
CREATE TRIGGER mt_log AFTER INSERT OR UPDATE ON mt_h FOR EACH ROW EXECUTE FUNCTION mt_log();
-- and ml_h, as mc_h, merged in C with a lookup per group
-- (eventkit.testing_rollup_merge_lookups) where mc_h's merge walks the index
SELECT eventkit.create_rollup('ml_h', 'mg', '1 hour', '{event,properties.currency}',
    '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo",
      "max(properties.revenue) AS hi","avg(properties.revenue) AS mean",
      "distinct(user_id) AS users"}') IS NOT NULL AS ml_h;

CREATE FUNCTION cm_refresh_all() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
  out text := '';
BEGIN
  FOREACH r IN ARRAY ARRAY['h', 'd', 'n', 'p'] LOOP
    out := out || r || ':' || eventkit.refresh_rollup('mc_' || r);
    PERFORM set_config('eventkit.testing_rollup_sql_merge', 'on', true);
    out := out || '/' || eventkit.refresh_rollup('ms_' || r) || ' ';
    PERFORM set_config('eventkit.testing_rollup_sql_merge', 'off', true);
  END LOOP;
  PERFORM set_config('eventkit.testing_rollup_merge_lookups', 'on', true);
  out := out || 'l:' || eventkit.refresh_rollup('ml_h') || ' ';
  PERFORM set_config('eventkit.testing_rollup_merge_lookups', 'off', true);
  RETURN out || 't:' || eventkit.refresh_rollup('mt_h');
END $$;
CREATE FUNCTION cm_rows(t regclass) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT to_jsonb(d) FROM %s d', t);
END $$;
CREATE FUNCTION cm_differences(a regclass, b regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM (SELECT * FROM cm_rows(a) EXCEPT ALL SELECT * FROM cm_rows(b)) x)
       + (SELECT count(*) FROM (SELECT * FROM cm_rows(b) EXCEPT ALL SELECT * FROM cm_rows(a)) x)
$$;
CREATE FUNCTION cm_compare() RETURNS TABLE (r text, rows bigint, differences bigint) LANGUAGE sql AS $$
  SELECT r, (SELECT count(*) FROM cm_rows(('mc_' || r)::regclass)),
         cm_differences(('mc_' || r)::regclass, ('ms_' || r)::regclass)
    FROM unnest(ARRAY['h', 'd', 'n', 'p']) r
  UNION ALL
  SELECT 't', (SELECT count(*) FROM mt_h), cm_differences('mc_h', 'mt_h')
  UNION ALL
  SELECT 'l', (SELECT count(*) FROM ml_h), cm_differences('mc_h', 'ml_h')
  ORDER BY 1
$$;

-- round 1: new groups only (inserts)
SELECT accepted FROM eventkit.ingest('mg', cm_batch(1, 400));
SELECT cm_refresh_all();
SELECT * FROM cm_compare();
-- round 2: new and existing groups (updates); the C merge inserts and
-- updates as many rows as the statement, at least as many of them HOT (a row
-- whose new version does not fit in its page, its hll grown, is not; the C
-- merge updates in the key's order, which leaves more of them room here)
SELECT accepted FROM eventkit.ingest('mg', cm_batch(401, 600));
-- (the xact counters read below are this backend's stats not yet reported:
-- reported first, they count this transaction's alone)
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT eventkit.refresh_rollup('mc_h') AS mc_h;
SET LOCAL eventkit.testing_rollup_sql_merge = on;
SELECT eventkit.refresh_rollup('ms_h') AS ms_h;
SET LOCAL eventkit.testing_rollup_sql_merge = off;
SET LOCAL eventkit.testing_rollup_merge_lookups = on;
SELECT eventkit.refresh_rollup('ml_h') AS ml_h;
-- mc_h's merge read its range of buckets in one index scan; ml_h's looked
-- each of its groups up (an index scan each)
SELECT pg_stat_get_xact_numscans('mc_h_key'::regclass) AS mc_h_key_scans,
       pg_stat_get_xact_numscans('ml_h_key'::regclass)
         = pg_stat_get_xact_tuples_updated('ml_h'::regclass)
           + pg_stat_get_xact_tuples_inserted('ml_h'::regclass) AS ml_h_lookup_per_group,
       pg_stat_get_xact_tuples_updated('ml_h'::regclass) > 0 AS ml_h_updated,
       pg_stat_get_xact_tuples_updated('mc_h'::regclass)
         = pg_stat_get_xact_tuples_updated('ml_h'::regclass) AS same_updated;
SELECT pg_stat_get_xact_tuples_updated('mc_h'::regclass) > 0 AS updated,
       pg_stat_get_xact_tuples_hot_updated('mc_h'::regclass) > 0 AS hot,
       pg_stat_get_xact_tuples_inserted('mc_h'::regclass)
         = pg_stat_get_xact_tuples_inserted('ms_h'::regclass) AS same_inserted,
       pg_stat_get_xact_tuples_updated('mc_h'::regclass)
         = pg_stat_get_xact_tuples_updated('ms_h'::regclass) AS same_updated,
       pg_stat_get_xact_tuples_hot_updated('mc_h'::regclass)
         >= pg_stat_get_xact_tuples_hot_updated('ms_h'::regclass) AS as_hot;
COMMIT;
SELECT cm_refresh_all();
SELECT * FROM cm_compare();
-- round 3: late events into old buckets, re-sends of earlier events
SELECT accepted FROM eventkit.ingest('mg', cm_batch(1001, 300, 4));
SELECT accepted FROM eventkit.ingest('mg', cm_batch(950, 100));
SELECT cm_refresh_all();
SELECT * FROM cm_compare();
-- the statement ran for mt_h: its trigger saw inserts, then updates
SELECT op, count(*) > 0 AS fired FROM mt_log GROUP BY op ORDER BY op;

-- two groups at the two ends of the range of buckets, hundreds of rows
-- between them: the walk gives up after 2 * 2 + 64 rows, having merged the
-- first, and the second is looked up (two index scans)
SELECT accepted FROM eventkit.ingest('mg', cm_batch(3000, 1, 60));
SELECT accepted FROM eventkit.ingest('mg', cm_batch(3119, 1, 60));
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT (SELECT count(*) FROM mc_h) > 2 * 2 + 64 AS many_rows_between;
SELECT eventkit.refresh_rollup('mc_h') AS mc_h;
SELECT pg_stat_get_xact_numscans('mc_h_key'::regclass) AS mc_h_key_scans,
       pg_stat_get_xact_tuples_updated('mc_h'::regclass) AS updated,
       pg_stat_get_xact_tuples_inserted('mc_h'::regclass) AS inserted;
COMMIT;
SELECT cm_refresh_all();
SELECT * FROM cm_compare();

-- what the pairs hold: NULL keys, bounded dimensions, skipped values, the
-- kinds of hll (the first byte: 0x11 empty, 0x12 EXPLICIT, 0x13 sparse,
-- 0x14 full)
SELECT count(*) FILTER (WHERE event IS NULL) AS null_event,
       count(*) FILTER (WHERE length(currency) > 100) AS long_currency,
       sum(skipped_events) > 0 AS skipped, count(*) FILTER (WHERE rev IS NULL) AS null_rev
  FROM mc_h;
SELECT r, array_agg(DISTINCT substr(users::text, 1, 4) ORDER BY substr(users::text, 1, 4)) AS kinds
  FROM (SELECT 'h' r, users FROM mc_h UNION ALL SELECT 'd', users FROM mc_d
        UNION ALL SELECT 'n', users FROM mc_n) x GROUP BY r ORDER BY r;
SELECT skipped_values FROM eventkit.rollups WHERE relid = 'mc_h'::regclass;

-- and equal to a from-scratch GROUP BY of the stream
SELECT count(*) AS mc_d_differences_from_group_by FROM mc_d r FULL JOIN (
    SELECT date_bin('1 day', ts, timestamptz '2000-01-01 00:00:00+00') AS bucket, type,
           count(*) AS count, hll_add_agg(hll_hash_text(user_id), 10) AS users,
           hll_add_agg(hll_hash_text(anonymous_id), 10) AS anons
      FROM mg GROUP BY 1, 2) f ON r.bucket = f.bucket AND r.type = f.type
 WHERE r.bucket IS NULL OR f.bucket IS NULL OR r.count <> f.count
    OR r.users::text <> f.users::text OR r.anons::text <> f.anons::text;
SELECT count(*) AS mc_n_differences_from_group_by FROM mc_n r FULL JOIN (
    SELECT date_bin('1 day', ts, timestamptz '2000-01-01 00:00:00+00') AS bucket, user_id,
           count(*) AS count, hll_add_agg(hll_hash_text(user_id)) AS users
      FROM mg GROUP BY 1, 2) f ON r.bucket = f.bucket AND r.user_id IS NOT DISTINCT FROM f.user_id
 WHERE r.bucket IS NULL OR f.bucket IS NULL OR r.count <> f.count OR r.users::text <> f.users::text;
SELECT count(*) AS mc_h_differences_from_group_by FROM mc_h r FULL JOIN (
    SELECT date_bin('1 hour', ts, timestamptz '2000-01-01 00:00:00+00') AS bucket, event,
           properties->>'currency' AS currency, count(*) AS count,
           hll_add_agg(hll_hash_text(user_id)) AS users
      FROM mg WHERE length(properties->>'currency') < 10 GROUP BY 1, 2, 3) f
    ON r.bucket = f.bucket AND r.event IS NOT DISTINCT FROM f.event AND r.currency = f.currency
 WHERE length(coalesce(r.currency, f.currency)) < 10
   AND (r.bucket IS NULL OR f.bucket IS NULL OR r.count <> f.count OR r.users::text <> f.users::text);

-- a row changed by another transaction meanwhile is the statement's to
-- merge (isolation/specs/rollup_refresh.spec); a hand-written change here
-- is merged into as any row
UPDATE mc_h SET count = count + 1000 WHERE bucket = (SELECT min(bucket) FROM mc_h);
UPDATE ms_h SET count = count + 1000 WHERE bucket = (SELECT min(bucket) FROM ms_h);
UPDATE mt_h SET count = count + 1000 WHERE bucket = (SELECT min(bucket) FROM mt_h);
UPDATE ml_h SET count = count + 1000 WHERE bucket = (SELECT min(bucket) FROM ml_h);
SELECT accepted FROM eventkit.ingest('mg', cm_batch(2001, 200, 3));
SELECT cm_refresh_all();
SELECT * FROM cm_compare();

SELECT count(eventkit.drop_rollup(s || '_' || r)) AS dropped
  FROM unnest(ARRAY['mc', 'ms']) s, unnest(ARRAY['h', 'd', 'n', 'p']) r;
SELECT eventkit.drop_rollup('mt_h');
SELECT eventkit.drop_rollup('ml_h');
SELECT eventkit.drop_stream('mg');
DROP FUNCTION cm_compare();
DROP FUNCTION cm_differences(regclass, regclass);
DROP FUNCTION cm_rows(regclass);
DROP FUNCTION cm_refresh_all();
DROP FUNCTION cm_rollups(text);
DROP FUNCTION cm_batch(int, int, int);
DROP FUNCTION mt_log() CASCADE;
DROP TABLE mt_log;
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
