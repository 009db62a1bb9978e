-- The analyst queries of docs/analytics.md (issue 18), run on a small fixed
-- dataset with known answers.  The queries are read from the document
-- itself (every ```sql block that starts with "-- analytics: <name>"), so
-- the document cannot drift from what is tested.
--
-- The dataset (UTC; 2024-01-01 is a Monday):
--   u1  signs up Jan 1, views Jan 1, adds Jan 2, orders Jan 3 (100), views Jan 9,
--       orders Jan 16 (20)                        -> funnel complete; weeks 0, 1, 2
--   u2  signs up Jan 2, views Jan 2, adds and orders Jan 12 (50): the add is
--       10 days after the view                    -> funnel stops at "viewed"; weeks 0, 1
--   u3  signs up Jan 8, views and adds Jan 8, views Jan 15, never orders
--   a1  an anonymous visitor views Jan 9, then identifies as u4 on Jan 10
--       (anonymousId a1 + userId u4); u4 signs up Jan 10, adds Jan 10, orders
--       Jan 11 (30) and Jan 11 again with a revenue that is not a number
-- Without the identity graph (resolved_user_id = coalesce(user_id,
-- anonymous_id)) a1 and u4 are two users: the funnel sees a1 view and u4
-- never view.  With <stream>_resolved (issue 18, part 1) they are one user:
-- DAU is unchanged, WAU and MAU count one user fewer from Jan 10 while
-- a1's Jan 9 is in their window, and the funnel has 4 viewed, 3 added,
-- 2 ordered (50.0%): expected/analytics.out changes accordingly.
CREATE EXTENSION eventkit;
CREATE SCHEMA analytics;
SELECT eventkit.create_stream('shop_events', partition_interval => '7 days');
\set plan `cat test/fixtures/analytics_plan.json`
SELECT eventkit.create_plan('shop', :'plan'::jsonb);
SELECT eventkit.attach_plan('shop_events', 'shop');
SELECT accepted, quarantined FROM eventkit.ingest('shop_events', '[
 {"type": "track", "messageId": "1", "userId": "u1", "event": "Signed Up", "timestamp": "2024-01-01T09:00:00Z", "properties": {"plan": "free"}},
 {"type": "track", "messageId": "2", "userId": "u1", "event": "Product Viewed", "timestamp": "2024-01-01T10:00:00Z", "properties": {"product_id": "p1", "price": 100}},
 {"type": "track", "messageId": "3", "userId": "u1", "event": "Product Added", "timestamp": "2024-01-02T10:00:00Z", "properties": {"product_id": "p1", "quantity": 1}},
 {"type": "track", "messageId": "4", "userId": "u1", "event": "Order Completed", "timestamp": "2024-01-03T10:00:00Z", "properties": {"order_id": "o1", "revenue": 100}},
 {"type": "track", "messageId": "5", "userId": "u1", "event": "Product Viewed", "timestamp": "2024-01-09T10:00:00Z", "properties": {"product_id": "p2"}},
 {"type": "track", "messageId": "6", "userId": "u1", "event": "Order Completed", "timestamp": "2024-01-16T10:00:00Z", "properties": {"order_id": "o2", "revenue": 20}},
 {"type": "track", "messageId": "7", "userId": "u2", "event": "Signed Up", "timestamp": "2024-01-02T09:00:00Z", "properties": {"plan": "pro"}},
 {"type": "track", "messageId": "8", "userId": "u2", "event": "Product Viewed", "timestamp": "2024-01-02T09:30:00Z", "properties": {"product_id": "p1"}},
 {"type": "track", "messageId": "9", "userId": "u2", "event": "Product Added", "timestamp": "2024-01-12T09:00:00Z", "properties": {"product_id": "p1"}},
 {"type": "track", "messageId": "10", "userId": "u2", "event": "Order Completed", "timestamp": "2024-01-12T09:05:00Z", "properties": {"order_id": "o3", "revenue": 50}},
 {"type": "track", "messageId": "11", "userId": "u3", "event": "Signed Up", "timestamp": "2024-01-08T09:00:00Z"},
 {"type": "track", "messageId": "12", "userId": "u3", "event": "Product Viewed", "timestamp": "2024-01-08T09:10:00Z", "properties": {"product_id": "p3"}},
 {"type": "track", "messageId": "13", "userId": "u3", "event": "Product Added", "timestamp": "2024-01-08T09:20:00Z", "properties": {"product_id": "p3"}},
 {"type": "track", "messageId": "14", "userId": "u3", "event": "Product Viewed", "timestamp": "2024-01-15T09:00:00Z", "properties": {"product_id": "p3"}},
 {"type": "page", "messageId": "15", "anonymousId": "a1", "name": "Home", "timestamp": "2024-01-09T08:00:00Z"},
 {"type": "track", "messageId": "16", "anonymousId": "a1", "event": "Product Viewed", "timestamp": "2024-01-09T08:05:00Z", "properties": {"product_id": "p4"}},
 {"type": "identify", "messageId": "17", "anonymousId": "a1", "userId": "u4", "timestamp": "2024-01-10T08:00:00Z", "traits": {"email": "u4@example.com"}},
 {"type": "track", "messageId": "18", "userId": "u4", "event": "Signed Up", "timestamp": "2024-01-10T08:01:00Z", "properties": {"plan": "free"}},
 {"type": "track", "messageId": "19", "userId": "u4", "event": "Product Added", "timestamp": "2024-01-10T08:10:00Z", "properties": {"product_id": "p4"}},
 {"type": "track", "messageId": "20", "userId": "u4", "event": "Order Completed", "timestamp": "2024-01-11T08:00:00Z", "properties": {"order_id": "o4", "revenue": 30}},
 {"type": "track", "messageId": "21", "userId": "u4", "event": "Order Completed", "timestamp": "2024-01-11T09:00:00Z", "properties": {"order_id": "o5", "revenue": "thirty"}}
]', received_at => '2024-01-20T00:00:00Z');
SELECT count(*) FROM eventkit.create_event_views('shop_events', 'analytics');

-- the documented queries
\set doc `cat docs/analytics.md`
CREATE TEMP TABLE doc_queries AS
SELECT m[1] AS name, m[2] AS query
  FROM regexp_matches(:'doc', E'```sql\n-- analytics: ([a-z_]+)\n([^`]*)```', 'g') AS m;
SELECT name FROM doc_queries ORDER BY name;
CREATE FUNCTION pg_temp.run(q text) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE 'SELECT to_jsonb(r) FROM (' || rtrim(q, E'; \n') || ') r';
END $$;
SELECT pg_temp.run(query) AS active_users FROM doc_queries WHERE name = 'active_users';
SELECT pg_temp.run(query) AS funnel FROM doc_queries WHERE name = 'funnel';
SELECT pg_temp.run(query) AS retention FROM doc_queries WHERE name = 'retention';
SELECT pg_temp.run(query) AS revenue FROM doc_queries WHERE name = 'revenue';

DROP SCHEMA analytics CASCADE;
SELECT eventkit.drop_stream('shop_events');
DROP EXTENSION eventkit;
