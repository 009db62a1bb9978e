-- Rollups stay equal to a from-scratch GROUP BY over the stream after a
-- seeded, deterministic random interleaving of ingests (new and late
-- events, re-sent duplicates, rolled-back ingests) and refreshes (whole or
-- in chunks), each in its own transaction.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SET timezone = 'UTC';
SELECT eventkit.create_stream('ev') IS NOT NULL AS created;

-- event number i: its content depends on i only, so a re-sent i is a duplicate;
-- its time is spread over 47 hours, so random order makes late events
CREATE FUNCTION ev_json(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'type', 'track', 'messageId', 'm' || i, 'userId', 'u' || (i * 7) % 53,
    'event', (ARRAY['Order', 'View', 'Click'])[1 + i % 3],
    'properties', jsonb_build_object(
        'currency', CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'EUR' ELSE 'USD' END,
        'revenue', CASE WHEN i % 11 = 0 THEN to_jsonb('n/a'::text) ELSE to_jsonb((i % 97) + 0.25) END,
        'ms', (i * 37) % 1000),
    'timestamp', to_char(timestamptz '2026-02-01 00:00:00+00' + ((i * 13) % 47) * interval '1 hour'
                         + (i % 60) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
$$;

SELECT eventkit.create_rollup('r', 'ev', '1 hour', '{event,properties.currency}',
  '{count,"sum(properties.revenue) AS rev","min(properties.revenue) AS lo","max(properties.revenue) AS hi",
    "avg(properties.revenue) AS mean","distinct(user_id) AS users","percentile(properties.ms, 0.9) AS p90"}');

-- differences between the rollup (materialized or realtime) and a from-scratch GROUP BY
CREATE FUNCTION from_scratch() RETURNS TABLE(bucket timestamptz, event text, currency text, count bigint,
    rev numeric, lo numeric, hi numeric, mean numeric, users bigint, p90 float8, skipped bigint)
LANGUAGE sql AS $$
  SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00'), event, properties->>'currency', count(*),
         sum(v), min(v), max(v), avg(v), round(hll_cardinality(hll_add_agg(hll_hash_text(user_id))))::bigint,
         tdigest_percentile((properties->'ms')::float8, 100, 0.9),
         count(*) FILTER (WHERE jsonb_typeof(properties->'revenue') NOT IN ('number', 'null'))
    FROM (SELECT *, CASE WHEN jsonb_typeof(properties->'revenue') = 'number'
                         THEN (properties->'revenue')::numeric END AS v FROM ev) s
   GROUP BY 1, 2, 3
$$;
CREATE FUNCTION rollup_table() RETURNS TABLE(bucket timestamptz, event text, currency text, count bigint,
    rev numeric, lo numeric, hi numeric, mean numeric, users bigint, p90 float8, skipped bigint)
LANGUAGE sql AS $$
  SELECT bucket, event, currency, count, rev, lo, hi, mean_sum / NULLIF(mean_count, 0),
         round(hll_cardinality(users))::bigint,
         (SELECT tdigest_percentile(x, 0.9) FROM (VALUES (p90)) v(x)), skipped_events FROM r
$$;
CREATE FUNCTION realtime() RETURNS TABLE(bucket timestamptz, event text, currency text, count bigint,
    rev numeric, lo numeric, hi numeric, mean numeric, users bigint, p90 float8, skipped bigint)
LANGUAGE sql AS $$
  SELECT bucket, event, currency, count, rev, lo, hi, mean, users, p90, skipped_events FROM r_realtime
$$;
-- exact measures must match exactly; the t-digest percentile within 1% of the value range
CREATE FUNCTION differences(which text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format($q$
    SELECT count(*) FROM %s() a FULL JOIN from_scratch() b
        ON a.bucket = b.bucket AND a.event IS NOT DISTINCT FROM b.event
       AND a.currency IS NOT DISTINCT FROM b.currency
     WHERE a.bucket IS NULL OR b.bucket IS NULL
        OR (a.count, a.rev, a.lo, a.hi, a.users, a.skipped) IS DISTINCT FROM
           (b.count, b.rev, b.lo, b.hi, b.users, b.skipped)
        OR round(a.mean, 12) IS DISTINCT FROM round(b.mean, 12)
        OR abs(a.p90 - b.p90) > 10 $q$, which) INTO n;
  RETURN n;
END $$;

CREATE TABLE log (step int, action text, events bigint);

DO $$
DECLARE
  k int;
  r float8;
  n bigint;
BEGIN
  PERFORM setseed(0.2026);
  FOR step IN 1..120 LOOP
    r := random();
    k := 1 + floor(random() * 40)::int;
    IF r < 0.55 THEN
      -- a batch of random event numbers: new, late or re-sent
      INSERT INTO log SELECT step, 'ingest', (eventkit.ingest('ev',
        (SELECT jsonb_agg(ev_json(floor(random() * 600)::int)) FROM generate_series(1, k)),
        '2026-02-03 00:00:00+00')).accepted;
    ELSIF r < 0.65 THEN
      -- an ingest that rolls back: never counted
      BEGIN
        PERFORM eventkit.ingest('ev',
          (SELECT jsonb_agg(ev_json(600 + floor(random() * 100)::int)) FROM generate_series(1, k)),
          '2026-02-03 00:00:00+00');
        RAISE EXCEPTION 'roll back';
      EXCEPTION WHEN raise_exception THEN
        INSERT INTO log VALUES (step, 'rolled back', 0);
      END;
    ELSIF r < 0.85 THEN
      n := eventkit.refresh_rollup('r');
      INSERT INTO log VALUES (step, 'refresh', n);
    ELSE
      n := eventkit.refresh_rollup('r', k);
      INSERT INTO log VALUES (step, 'refresh chunk', n);
    END IF;
    IF step % 20 = 0 THEN
      INSERT INTO log VALUES (step, 'realtime differences', differences('realtime'));
    END IF;
    COMMIT;
  END LOOP;
END
$$;

SELECT action, count(*) AS steps, sum(events) AS events FROM log
 WHERE action NOT LIKE '%differences' GROUP BY 1 ORDER BY 1;
SELECT step, events AS differences FROM log WHERE action = 'realtime differences' ORDER BY step;

-- every stored event folded exactly once, none of the rolled-back ones
SELECT (SELECT count(*) FROM ev) AS stored,
       (SELECT sum(events) FROM log WHERE action = 'ingest') AS accepted,
       (SELECT count(*) FROM ev WHERE message_id >= 'm600' AND length(message_id) = 4) AS rolled_back_stored;
SELECT eventkit.refresh_rollup('r') >= 0 AS refreshed;
SELECT events_folded = (SELECT count(*) FROM ev) AS all_folded_once FROM eventkit.rollups;
SELECT differences('rollup_table') AS materialized_differences,
       differences('realtime') AS realtime_differences;
SELECT count(*) AS buckets, sum(count) AS events, sum(skipped_events) AS skipped FROM r;

-- a rebuilt-from-scratch hll equals the merged one, bucket by bucket
SELECT count(*) AS hll_mismatches FROM r
  JOIN (SELECT date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, event, properties->>'currency' AS currency,
               hll_add_agg(hll_hash_text(user_id)) AS h FROM ev GROUP BY 1, 2, 3) f
    ON f.bucket = r.bucket AND f.event IS NOT DISTINCT FROM r.event AND f.currency IS NOT DISTINCT FROM r.currency
 WHERE hll_cardinality(f.h) <> hll_cardinality(r.users);

-- the check is not blind: a corrupted rollup row is seen
UPDATE r SET count = count + 1 WHERE bucket = (SELECT min(bucket) FROM r);
SELECT differences('rollup_table') > 0 AS corruption_detected;

SELECT eventkit.drop_rollup('r');
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
