-- Per-batch rollup deltas (src/rollup_delta.c): ingest's fast path leaves
-- each batch's groups in <rollup>_delta, a refresh merges and deletes them,
-- and folds from the stream only the batches that have none (written by the
-- slow path here).  The rollup always equals a from-scratch GROUP BY.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
SET timezone = 'UTC';
SELECT eventkit.create_stream('dv') IS NOT NULL AS created;
ALTER TABLE dv ADD COLUMN note text;   -- a column of the user's: NULL in what ingest writes

CREATE FUNCTION batch(first int, n int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_build_object(
    'type', 'track', 'messageId', 'm' || i, 'userId', 'u' || i % 5,
    'event', (ARRAY['Order', 'View'])[1 + i % 2],
    'properties', jsonb_build_object('revenue', CASE WHEN i % 7 = 0 THEN to_jsonb('n/a'::text)
                                                     ELSE to_jsonb(i + 0.5) END),
    'timestamp', to_char(timestamptz '2026-03-01 00:00:00+00' + (i % 3) * interval '1 hour',
                         'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
    FROM generate_series(first, first + n - 1) i
$$;
SELECT accepted FROM eventkit.ingest('dv', batch(1, 10));

SELECT eventkit.create_rollup('dr', 'dv', '1 hour', '{event,note}',
  '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo",
    "avg(properties.revenue) AS mean","distinct(user_id) AS users"}');

CREATE FUNCTION differences() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM dr r FULL JOIN (
      SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, event, note, count(*) AS count,
             sum(v) AS rev, min(v) AS lo, sum(v) AS mean_sum, count(v) AS mean_count,
             hll_add_agg(hll_hash_text(user_id)) AS users,
             count(*) FILTER (WHERE jsonb_typeof(properties->'revenue') NOT IN ('number', 'null')) AS skipped
        FROM (SELECT *, CASE WHEN jsonb_typeof(properties->'revenue') = 'number'
                             THEN (properties->'revenue')::numeric END AS v FROM dv) s
       GROUP BY 1, 2, 3) f
      ON r.bucket = f.bucket AND r.event IS NOT DISTINCT FROM f.event AND r.note IS NOT DISTINCT FROM f.note
   WHERE r.bucket IS NULL OR f.bucket IS NULL OR r.count <> f.count OR r.rev IS DISTINCT FROM f.rev
      OR r.lo IS DISTINCT FROM f.lo OR r.mean_sum IS DISTINCT FROM f.mean_sum
      OR r.mean_count <> f.mean_count OR r.skipped_events <> f.skipped
      OR hll_cardinality(r.users) <> hll_cardinality(f.users)
$$;
SELECT differences();

-- new batches: one delta row per group and batch, nothing read back from the stream
SELECT accepted FROM eventkit.ingest('dv', batch(11, 10));
SELECT accepted FROM eventkit.ingest('dv', batch(21, 10) || batch(1, 2));  -- with 2 duplicates
SELECT count(DISTINCT batch_id) AS batches, sum(ek_events) AS events, sum(count) AS counted,
       sum(skipped_events) AS skipped FROM dr_delta;
SELECT event, note, count, rev, skipped_events FROM dr_delta
 WHERE batch_id = (SELECT min(batch_id) FROM dr_delta) ORDER BY bucket, event;
-- a rolled-back ingest leaves no delta
BEGIN;
SELECT accepted FROM eventkit.ingest('dv', batch(100, 5));
ROLLBACK;
SELECT count(DISTINCT batch_id) AS batches FROM dr_delta;
SELECT eventkit.refresh_rollup('dr');
SELECT count(*) AS deltas_left FROM dr_delta;
SELECT differences();

-- a column default sends ingest down the slow path: those batches have no
-- delta and are folded from the stream, the others from their deltas, in
-- one refresh
SELECT accepted FROM eventkit.ingest('dv', batch(31, 10));
ALTER TABLE dv ALTER COLUMN note SET DEFAULT 'slow';
SELECT accepted FROM eventkit.ingest('dv', batch(41, 10));
ALTER TABLE dv ALTER COLUMN note DROP DEFAULT;
SELECT accepted FROM eventkit.ingest('dv', batch(51, 10));
SELECT count(DISTINCT batch_id) AS batches_with_deltas FROM dr_delta;
SELECT eventkit.refresh_rollup('dr');
SELECT count(*) AS deltas_left FROM dr_delta;
SELECT note, sum(count) FROM dr GROUP BY note ORDER BY note;
SELECT differences();

-- chunks: each refresh merges the deltas of its own range only
SELECT accepted FROM eventkit.ingest('dv', batch(61, 10));
SELECT accepted FROM eventkit.ingest('dv', batch(71, 10));
SELECT eventkit.refresh_rollup('dr', 1);
SELECT count(DISTINCT batch_id) AS batches_left FROM dr_delta;
SELECT eventkit.refresh_rollup('dr');
SELECT differences();

-- without its delta table (dropped by hand) a rollup reads the stream
DROP TABLE dr_delta;
SELECT accepted FROM eventkit.ingest('dv', batch(81, 10));
SELECT eventkit.refresh_rollup('dr');
SELECT differences();

-- the delta table goes with the rollup
SELECT eventkit.create_rollup('dr2', 'dv', '1 day', '{}', '{count}');
SELECT to_regclass('dr2_delta') IS NOT NULL AS has_delta;
DROP TABLE dr2 CASCADE;   -- (the view depends on it)
SELECT to_regclass('dr2_delta') AS delta_after_drop_table;
SELECT eventkit.create_rollup('dr2', 'dv', '1 day', '{}', '{count}');
SELECT eventkit.drop_rollup('dr2');
SELECT to_regclass('dr2_delta') AS delta_after_drop_rollup;
-- a table of the delta's name is in the way
CREATE TABLE dr3_delta ();
SELECT eventkit.create_rollup('dr3', 'dv', '1 day', '{}', '{count}');
DROP TABLE dr3_delta;
-- the rollup table is made with fillfactor 50, so that a refresh's updates
-- of its groups stay on their pages: HOT, no new entry in the key's index
SELECT c.reloptions FROM pg_class c WHERE c.oid = 'dr'::regclass;
SELECT accepted FROM eventkit.ingest('dv', batch(5000, 30));
BEGIN;
SELECT eventkit.refresh_rollup('dr');
SELECT n_tup_upd > 0 AS updated, n_tup_hot_upd = n_tup_upd AS all_hot
  FROM pg_stat_xact_user_tables WHERE relid = 'dr'::regclass;
COMMIT;
SELECT differences();
SELECT eventkit.drop_rollup('dr');
SELECT eventkit.drop_stream('dv');
DROP FUNCTION differences();
DROP FUNCTION batch(int, int);
DROP EXTENSION eventkit;
DROP EXTENSION hll;
