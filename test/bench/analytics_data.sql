-- The generated stream the analyst queries of docs/analytics.md are timed on
-- (test/bench/analytics.sh; not part of CI).  psql variables: events (the
-- number of events), batch (events per ingest call).
--
-- 60 days from 2024-01-01 UTC, in time order.  Users join evenly over the
-- 60 days (one per 50 events: 20,000 for 1M events), each with a Signed Up
-- event when they join; every other event belongs to a user who has joined
-- (uniformly): 40% Product Viewed, 15% Product Added, 5% Order Completed
-- (revenue 5 to 205; 1% of them "n/a", which does not cast), 25% pages,
-- 5% identify, 10% Home Viewed (unplanned).  A third of the users browse
-- anonymously for part of the time: 10% of their events carry only their
-- anonymousId, and their identify events link it to their userId.
-- Deterministic: the same events every run.
\set ON_ERROR_STOP 1
SELECT eventkit.create_stream('shop_events', partition_interval => '7 days');
\set plan `cat test/fixtures/analytics_plan.json`
SELECT eventkit.create_plan('shop', :'plan'::jsonb);
SELECT eventkit.attach_plan('shop_events', 'shop');

CREATE TEMP TABLE gen AS
WITH p AS (SELECT :events::bigint AS events, greatest(:events::bigint / 50, 1) AS users),
e AS (
  SELECT i, p.events, p.users,
         timestamptz '2024-01-01 00:00:00+00' + (i::float8 / p.events) * interval '60 days' AS ts,
         (i * p.users / p.events) AS joined,		-- users joined so far (ids 0 .. joined)
         ((i * p.users) % p.events) < p.users AS signup,
         abs(hashint8(i)) AS h
    FROM p, generate_series(0, (SELECT events FROM p) - 1) i
)
SELECT i, ts,
       CASE WHEN signup THEN joined ELSE h % (joined + 1) END AS u,
       CASE WHEN signup THEN 100 ELSE (h / 7919) % 100 END AS kind,
       (h / 104729) % 10 AS coin,
       h
  FROM e;

-- the events, as Segment sends them
CREATE TEMP TABLE payloads AS
SELECT i, jsonb_strip_nulls(jsonb_build_object(
         'messageId', 'm' || i,
         'timestamp', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'type', CASE WHEN kind = 100 OR kind < 65 OR kind >= 90 THEN 'track'
                      WHEN kind < 85 THEN 'page' ELSE 'identify' END,
         'event', CASE WHEN kind = 100 THEN 'Signed Up' WHEN kind < 40 THEN 'Product Viewed'
                       WHEN kind < 55 THEN 'Product Added' WHEN kind < 60 THEN 'Order Completed'
                       WHEN kind < 65 THEN 'Home Viewed' WHEN kind >= 90 THEN 'Home Viewed' END,
         'name', CASE WHEN kind >= 65 AND kind < 85 THEN 'Catalog' END,
         'userId', CASE WHEN u % 3 = 0 AND coin = 0 AND kind NOT IN (85, 86, 87, 88, 89, 100) THEN NULL ELSE 'u' || u END,
         'anonymousId', CASE WHEN u % 3 = 0 AND (coin = 0 OR kind BETWEEN 85 AND 89) THEN 'a' || u END,
         'properties', CASE
             WHEN kind = 100 THEN jsonb_build_object('plan', CASE WHEN h % 4 = 0 THEN 'pro' ELSE 'free' END)
             WHEN kind < 55 THEN jsonb_build_object('product_id', 'p' || (h % 500), 'price', (h % 20000) / 100.0,
                                                    'quantity', 1 + h % 3)
             WHEN kind < 60 THEN jsonb_build_object('order_id', 'o' || i,
                                                    'revenue', CASE WHEN h % 100 = 0 THEN to_jsonb('n/a'::text)
                                                                    ELSE to_jsonb(5 + (h % 20000) / 100.0) END)
             WHEN kind < 85 THEN jsonb_build_object('url', 'https://shop.example/c/' || (h % 50), 'path', '/c/' || (h % 50))
             END,
         'traits', CASE WHEN kind BETWEEN 85 AND 89 THEN jsonb_build_object('email', 'u' || u || '@shop.example',
                                                                            'plan', CASE WHEN h % 4 = 0 THEN 'pro' ELSE 'free' END) END
       )) AS payload
  FROM gen;

-- ingest in time order, :batch events per call (one transaction each would
-- be closer to production; one statement keeps the generator simple)
SELECT sum(r.accepted) AS accepted, sum(r.quarantined) AS quarantined, sum(r.rejected) AS rejected
  FROM (SELECT i / :batch AS b, jsonb_agg(payload ORDER BY i) AS batch FROM payloads GROUP BY 1 ORDER BY 1) g,
       LATERAL eventkit.ingest('shop_events', g.batch, received_at => '2024-03-02 00:00:00+00') r;
ANALYZE shop_events;
