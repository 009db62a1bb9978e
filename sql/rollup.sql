-- Rollups: API, naming, errors, skipped non-numeric values, the realtime
-- view, late events, duplicates, NULL dimensions, retention and drop.
CREATE EXTENSION eventkit;
SET timezone = 'UTC';
SELECT eventkit.create_stream('ev') IS NOT NULL AS created;

CREATE FUNCTION mk(id text, uid text, name text, props jsonb, at text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('type', 'track', 'messageId', id, 'userId', uid,
                                              'event', name, 'properties', props, 'timestamp', at))
$$;

-- history before the rollup exists
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_array(
  mk('h1', 'u1', 'Order', '{"revenue": 10, "currency": "EUR", "ms": 100}', '2026-01-05T10:05:00Z'),
  mk('h2', 'u2', 'Order', '{"revenue": 20.5, "currency": "EUR", "ms": 200}', '2026-01-05T10:10:00Z'),
  mk('h3', 'u1', 'Order', '{"revenue": 5, "currency": "USD", "ms": 300}', '2026-01-05T10:20:00Z'),
  mk('h4', 'u3', 'View', '{"page": {"path": "/a"}}', '2026-01-05T11:00:00Z')), '2026-01-05 12:00:00+00');

-- measures that need hll / tdigest, before those extensions exist
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{count,"distinct(user_id)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"percentile(properties.ms, 0.5)"}');
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;

-- definition errors
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{nope}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event.x}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{"properties..x"}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"median(properties.x)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"count(properties.x)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{sum}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"sum(user_id)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"percentile(properties.ms)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{"percentile(properties.ms, 1.5)"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event,"properties.event"}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{count,"sum(properties.x) AS count"}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{"event AS skipped_events"}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '1 hour', '{event}', '{}');
SELECT eventkit.create_rollup('r_bad', 'ev', '0 hours', '{event}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', '2 months', '{event}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'pg_class', '1 hour', '{relname}', '{count}');
SELECT eventkit.create_rollup(repeat('x', 60), 'ev', '1 hour', '{event}', '{count}');
SELECT eventkit.create_rollup('r_bad', 'ev', NULL, '{event}', '{count}');

-- a rollup over the history: folded at creation
SELECT eventkit.create_rollup('hourly', 'ev', '1 hour',
    '{event,"properties.currency","context.page.path AS path"}',
    '{count,"sum(properties.revenue)","min(properties.revenue)","max(properties.revenue)",
      "avg(properties.revenue) AS avg_rev","distinct(user_id) AS users",
      "percentile(properties.ms, 0.5) AS p50"}');
SELECT eventkit.create_rollup('hourly', 'ev', '1 hour', '{event}', '{count}');

-- names and types of the rollup table and the realtime view
SELECT table_name, column_name, data_type FROM information_schema.columns
 WHERE table_name IN ('hourly', 'hourly_realtime') ORDER BY table_name, ordinal_position;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'hourly'::regclass ORDER BY 1;
SELECT name, relid, realtime_view, stream, bucket, dimensions, schedule, watermark > 0 AS folded,
       events_folded, last_refresh_events
  FROM eventkit.rollups ORDER BY rollup_id;

SELECT bucket, event, currency, path, count, sum_revenue, min_revenue, max_revenue,
       avg_rev_sum, avg_rev_count, hll_cardinality(users) AS users, skipped_events
  FROM hourly ORDER BY 1, 2, 3;
SELECT * FROM hourly_realtime ORDER BY 1, 2, 3;

-- nothing new: nothing folded
SELECT eventkit.refresh_rollup('hourly');

-- new events, a late one into an old bucket, a duplicate, a non-numeric revenue,
-- events without currency (NULL dimension)
SELECT accepted, duplicates FROM eventkit.ingest('ev', jsonb_build_array(
  mk('n1', 'u4', 'Order', '{"revenue": 1, "currency": "EUR", "ms": 150}', '2026-01-05T10:30:00Z'),
  mk('h1', 'u1', 'Order', '{"revenue": 10, "currency": "EUR", "ms": 100}', '2026-01-05T10:05:00Z'),
  mk('n2', 'u5', 'Order', '{"revenue": "lots", "currency": "USD"}', '2026-01-05T10:40:00Z'),
  mk('n3', 'u5', 'Order', '{"revenue": true}', '2026-01-05T13:00:00Z'),
  mk('n4', 'u6', 'Order', '{"revenue": null}', '2026-01-05T13:10:00Z'),
  mk('n5', 'u7', 'Order', '{"revenue": 7}', '2026-01-04T09:00:00Z')), '2026-01-05 14:00:00+00');

-- the realtime view has them before any refresh; the rollup table does not
SELECT * FROM hourly_realtime ORDER BY 1, 2, 3;
SELECT count(*) AS rows, sum(count) AS events FROM hourly;

SELECT eventkit.refresh_rollup('hourly');
SELECT eventkit.refresh_rollup('hourly');
SELECT bucket, event, currency, path, count, sum_revenue, min_revenue, max_revenue,
       avg_rev_sum, avg_rev_count, hll_cardinality(users) AS users, skipped_events
  FROM hourly ORDER BY 1, 2, 3;
SELECT * FROM hourly_realtime ORDER BY 1, 2, 3;

-- NULL dimensions merge into one row across refreshes
SELECT accepted FROM eventkit.ingest('ev',
  mk('n6', 'u8', 'Order', '{"revenue": 2}', '2026-01-05T13:20:00Z'), '2026-01-05 14:00:00+00');
SELECT eventkit.refresh_rollup('hourly');
SELECT bucket, event, currency, count, sum_revenue FROM hourly
 WHERE bucket = '2026-01-05 13:00:00+00' ORDER BY 1, 2, 3;
-- a dimension from context (context.page.path AS path)
SELECT accepted FROM eventkit.ingest('ev',
  jsonb_set(mk('n7', 'u8', 'View', NULL, '2026-01-05T11:30:00Z'), '{context}', '{"page": {"path": "/pricing"}}'),
  '2026-01-05 14:00:00+00');
SELECT eventkit.refresh_rollup('hourly');
SELECT bucket, event, path, count FROM hourly WHERE event = 'View' ORDER BY 1, 2, 3;

-- the rollup equals a from-scratch GROUP BY over the stream
SELECT count(*) AS differences FROM (
  (SELECT bucket, event, currency, path, count, sum_revenue, min_revenue, max_revenue, avg_rev,
          users FROM hourly_realtime
   EXCEPT
   SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), event, properties->>'currency',
          context #>> '{page,path}', count(*),
          sum(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          min(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          max(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          avg(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint
     FROM ev GROUP BY 1, 2, 3, 4)
  UNION ALL
  (SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), event, properties->>'currency',
          context #>> '{page,path}', count(*),
          sum(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          min(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          max(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          avg(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END),
          round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint
     FROM ev GROUP BY 1, 2, 3, 4
   EXCEPT
   SELECT bucket, event, currency, path, count, sum_revenue, min_revenue, max_revenue, avg_rev,
          users FROM hourly_realtime)) d;

-- chunked refresh: max_events folds whole batches, about that many events
SELECT accepted FROM eventkit.ingest('ev', mk('c1', 'u1', 'Order', NULL, '2026-01-05T15:00:00Z'), '2026-01-05 16:00:00+00');
SELECT accepted FROM eventkit.ingest('ev', mk('c2', 'u1', 'Order', NULL, '2026-01-05T15:00:00Z'), '2026-01-05 16:00:00+00');
SELECT eventkit.refresh_rollup('hourly', 1);
SELECT eventkit.refresh_rollup('hourly', 1);
SELECT eventkit.refresh_rollup('hourly', 1);
SELECT eventkit.refresh_rollup('hourly', 0);

-- a refresh that is its own transaction commits without waiting for its WAL
-- flush (DEBUG1 says so); not when the transaction wrote before or after it
CREATE TABLE rollup_side (n int);
SELECT accepted FROM eventkit.ingest('ev', mk('a1', 'u1', 'Order', NULL, '2026-01-05T15:10:00Z'), '2026-01-05 16:00:00+00');
SET client_min_messages = debug1;
SELECT eventkit.refresh_rollup('hourly');
RESET client_min_messages;
SELECT accepted FROM eventkit.ingest('ev', mk('a2', 'u1', 'Order', NULL, '2026-01-05T15:10:00Z'), '2026-01-05 16:00:00+00');
BEGIN;
INSERT INTO rollup_side VALUES (1);
SET LOCAL client_min_messages = debug1;
SELECT eventkit.refresh_rollup('hourly');
COMMIT;
SELECT accepted FROM eventkit.ingest('ev', mk('a3', 'u1', 'Order', NULL, '2026-01-05T15:10:00Z'), '2026-01-05 16:00:00+00');
BEGIN;
SET LOCAL client_min_messages = debug1;
SELECT eventkit.refresh_rollup('hourly');
INSERT INTO rollup_side VALUES (2);
COMMIT;
SELECT accepted FROM eventkit.ingest('ev', mk('a4', 'u1', 'Order', NULL, '2026-01-05T15:10:00Z'), '2026-01-05 16:00:00+00');
-- two refreshes in one transaction, nothing else written: still without the wait
BEGIN;
SET LOCAL client_min_messages = debug1;
SELECT eventkit.refresh_rollup('hourly');
SELECT eventkit.refresh_rollup('hourly');
COMMIT;
SELECT count(*) AS side_rows FROM rollup_side;
DROP TABLE rollup_side;

-- a day bucket, a rollup without dimensions, a schema-qualified name,
-- created without backfill and then backfilled with the procedure
CREATE SCHEMA "Roll Ups";
SELECT eventkit.create_rollup('"Roll Ups".daily', 'ev', '1 day', '{}', '{count,"sum(properties.revenue) AS rev"}',
                              backfill => false);
SELECT * FROM "Roll Ups".daily ORDER BY bucket;
SELECT bucket, count, rev FROM "Roll Ups".daily_realtime ORDER BY bucket;
SELECT name, backfilled FROM eventkit.rollup_status ORDER BY rollup_id;
CALL eventkit.backfill_rollup('"Roll Ups".daily', 3);
SELECT name, backfilled, events_folded FROM eventkit.rollup_status ORDER BY rollup_id;
SELECT bucket, count, rev FROM "Roll Ups".daily ORDER BY bucket;

-- schedule for the background worker
SELECT eventkit.set_rollup_schedule('hourly', '5 minutes');
SELECT eventkit.set_rollup_schedule('hourly', '0 seconds');
SELECT name, schedule FROM eventkit.rollups ORDER BY rollup_id;

-- refresh needs READ COMMITTED; unknown names; rights
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT eventkit.refresh_rollup('hourly');
ROLLBACK;
SELECT eventkit.refresh_rollup('nope');
SELECT eventkit.refresh_rollup('ev');
SELECT eventkit.drop_rollup('nope');
CREATE ROLE ek_rollup_other;
SET ROLE ek_rollup_other;
SELECT eventkit.refresh_rollup('hourly');
SELECT eventkit.drop_rollup('hourly');
INSERT INTO eventkit.rollups (rollup_id, name, relid, realtime_view, stream_id, stream, bucket, dimensions, measures)
VALUES (99, 'x', 'ev', 'ev', 1, 'ev', '1 hour', '{}', '{}');
UPDATE eventkit.rollups SET watermark = 0;
SELECT count(*) > 0 AS can_read FROM eventkit.rollups;
RESET ROLE;
DROP ROLE ek_rollup_other;

-- retention drops old partitions; the rollup keeps its buckets
SELECT count(*) AS rows, sum(count) AS events FROM hourly;
UPDATE eventkit.streams SET retention = '1 day' WHERE relid = 'ev'::regclass;
SELECT eventkit.run_maintenance('ev');
SELECT count(*) AS events_left_in_stream FROM ev;
SELECT eventkit.refresh_rollup('hourly');
SELECT count(*) AS rows, sum(count) AS events FROM hourly;
SELECT count(*) AS rows, sum(count) AS events FROM hourly_realtime;

-- a stream with rollups cannot be dropped before them
SELECT eventkit.drop_stream('ev');
-- drop: the table, the view, the catalog row; the batch_id index with the last rollup
SELECT eventkit.drop_rollup('hourly');
SELECT to_regclass('hourly') AS t, to_regclass('hourly_realtime') AS v;
SELECT count(*) AS batch_index FROM pg_indexes WHERE indexname = 'ev_batch_id_brin' AND indexdef LIKE '%USING brin (batch_id)%';
SELECT eventkit.drop_rollup('"Roll Ups".daily');
SELECT count(*) AS batch_index FROM pg_indexes WHERE indexname = 'ev_batch_id_brin' AND indexdef LIKE '%USING brin (batch_id)%';
-- a plain DROP TABLE of a rollup forgets it too
SELECT eventkit.create_rollup('gone', 'ev', '1 hour', '{event}', '{count}') IS NOT NULL AS created;
DROP TABLE gone CASCADE;
SELECT count(*) AS rollups FROM eventkit.rollups;
SELECT eventkit.drop_stream('ev');
DROP SCHEMA "Roll Ups";
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
