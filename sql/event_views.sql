-- Typed event views (issue 18): create_event_views from the tracking plan:
-- types, values that do not cast, names with spaces, quotes and unicode,
-- re-running after a new plan version, a dependent view, privileges.
CREATE EXTENSION eventkit;
CREATE SCHEMA "Shop Data";
SELECT eventkit.create_stream('"Shop Data".ev');

-- warehouse names, as Segment spells tables and columns
SELECT n, eventkit.warehouse_name(n) FROM (VALUES ('Order Completed'), ('orderId'), ('HTMLPage viewed'),
  ('  --Order  ID-- '), ('3d Model'), ('Größe "XL"'), ('Product "Viewed" – Größe'), ('')) t(n) ORDER BY 1;

-- the safe casts: what does not cast is NULL, never an error
SELECT v, eventkit.jsonb_to_text(v) AS text, eventkit.jsonb_to_bigint(v) AS bigint,
       eventkit.jsonb_to_numeric(v) AS numeric, eventkit.jsonb_to_boolean(v) AS boolean,
       eventkit.jsonb_to_timestamptz(v) AT TIME ZONE 'UTC' AS timestamptz_utc
  FROM (VALUES ('1'::jsonb), ('1.5'), ('"42"'), ('" 42"'), ('"4e2"'), ('"NaN"'), ('"1e99999"'),
               ('9223372036854775808'), ('-9223372036854775808'), ('true'), ('"false"'), ('"yes"'),
               ('null'), ('{"a": 1}'), ('[1]'), ('"2024-05-01T10:00:00+02:00"'), ('"2024-05-01 10:00"'),
               ('"2024-02-30T00:00:00Z"'), ('"tomorrow"')) t(v);

-- a plan: typed properties, awkward names (normalize_names off, so that
-- "Order ID" and "order_id" are both planned)
SELECT eventkit.create_plan('shop', $$ {
  "events": {
    "Order Completed": {"properties": {"type": "object", "properties": {
        "order_id": {"type": "string"},
        "revenue": {"type": "number"},
        "quantity": {"type": "integer"},
        "coupon": {"type": ["string", "null"]},
        "paid": {"type": "boolean"},
        "completed_at": {"type": "string", "format": "date-time"},
        "products": {"type": "array"},
        "address": {"type": "object"},
        "tier": {"enum": ["gold", "silver"]},
        "ts": {"type": "string"},
        "Order ID": {"type": "integer"}}}},
    "Product \"Viewed\" – Größe": {"properties": {"properties": {"productId": {"type": "string"}}}},
    "Signed Up": {}
  },
  "violations": "allow", "normalize_names": false} $$);
SELECT eventkit.attach_plan('"Shop Data".ev', 'shop');
SELECT event_type, event, field, property, json_type, column_type
  FROM eventkit.plan_properties('shop', 1) ORDER BY 1, 2, 3, 4;

SELECT * FROM eventkit.ingest('"Shop Data".ev', $$ [
  {"type": "track", "messageId": "o1", "anonymousId": "anon-1", "event": "Order Completed",
   "timestamp": "2024-05-01T10:00:00Z",
   "properties": {"order_id": "A-1", "revenue": 19.99, "quantity": 2, "coupon": null, "paid": true,
                  "completed_at": "2024-05-01T09:59:00Z", "products": [{"sku": "x"}],
                  "address": {"city": "Oslo"}, "tier": "gold", "ts": "early", "Order ID": 7}},
  {"type": "track", "messageId": "o2", "userId": "u-1", "anonymousId": "anon-1", "event": "Order Completed",
   "timestamp": "2024-05-02T10:00:00Z",
   "properties": {"order_id": 42, "revenue": "lots", "quantity": 2.5, "coupon": {"code": 1},
                  "paid": "yes", "completed_at": "yesterday", "products": "none", "address": 3,
                  "tier": 1, "Order ID": "8"}},
  {"type": "track", "messageId": "p1", "userId": "u-2", "event": "Product \"Viewed\" – Größe",
   "timestamp": "2024-05-01T11:00:00Z", "properties": {"productId": "sku-9"}},
  {"type": "track", "messageId": "s1", "userId": "u-2", "event": "Signed Up", "timestamp": "2024-05-01T08:00:00Z"},
  {"type": "page", "messageId": "pg1", "anonymousId": "anon-2", "name": "Home", "timestamp": "2024-05-01T07:00:00Z",
   "properties": {"url": "https://kicks.example/", "path": "/", "title": "Kicks"},
   "context": {"page": {"path": "/", "url": "https://kicks.example/?utm=ctx", "title": {"not": "text"}}}},
  {"type": "screen", "messageId": "sc1", "anonymousId": "anon-2", "name": "Cart", "timestamp": "2024-05-01T07:00:00Z",
   "properties": {"items": 2}},
  {"type": "identify", "messageId": "i1", "userId": "u-1", "timestamp": "2024-05-01T12:00:00Z",
   "traits": {"email": "old@kicks.example", "plan": "free"}},
  {"type": "identify", "messageId": "i2", "userId": "u-1", "timestamp": "2024-05-03T12:00:00Z",
   "traits": {"email": "new@kicks.example"}}
] $$);

SELECT * FROM eventkit.create_event_views('"Shop Data".ev') ORDER BY 1::text;

-- column names and types, in order
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = '"Shop Data"'::regnamespace AND c.relkind = 'v' AND a.attnum > 0
 ORDER BY 1, 2;

-- typed values; a value that does not cast is NULL (o2), never an error
SELECT message_id, ts, user_id, anonymous_id, resolved_user_id, order_id, revenue, quantity, coupon,
       paid, completed_at, products, address, tier, properties_ts, order_id_2
  FROM "Shop Data".order_completed ORDER BY message_id;
SELECT message_id, product_id FROM "Shop Data"."product_viewed_größe";
SELECT message_id, event FROM "Shop Data".signed_up;
SELECT message_id, event, resolved_user_id FROM "Shop Data".tracks ORDER BY message_id;
SELECT message_id, name, url, path, title, referrer FROM "Shop Data".pages;
-- pages: the page context as typed columns (an object does not cast: NULL); screens
SELECT message_id, context_page_path, context_page_url, context_page_title, context_page_referrer FROM "Shop Data".pages;
SELECT message_id, name, anonymous_id, properties FROM "Shop Data".screens;
SELECT message_id, user_id, traits FROM "Shop Data".identifies ORDER BY message_id;
-- users: one row per resolved user, latest traits merged, first and last seen
SELECT * FROM "Shop Data".users ORDER BY user_id;

-- the views are owned by the caller and search_path-safe
SELECT c.relname, pg_get_userbyid(c.relowner) = current_user AS owned_by_caller
  FROM pg_class c WHERE c.relnamespace = '"Shop Data"'::regnamespace AND c.relkind = 'v' ORDER BY 1;
SET search_path = "Shop Data";
SELECT count(*) FROM order_completed;
RESET search_path;

-- a dependent view, then a new plan version: a property added (a new column
-- at the end), one removed (kept, read as before), the others unchanged
CREATE VIEW "Shop Data".revenue_by_day AS
  SELECT date_trunc('day', ts) AS day, sum(revenue) AS revenue FROM "Shop Data".order_completed GROUP BY 1;
SELECT eventkit.create_plan('shop', $$ {
  "events": {
    "Order Completed": {"properties": {"type": "object", "properties": {
        "order_id": {"type": "string"}, "revenue": {"type": "number"}, "quantity": {"type": "integer"},
        "coupon": {"type": ["string", "null"]}, "paid": {"type": "boolean"},
        "completed_at": {"type": "string", "format": "date-time"}, "products": {"type": "array"},
        "address": {"type": "object"}, "ts": {"type": "string"}, "Order ID": {"type": "integer"},
        "shipping": {"type": "number"}}}},
    "Product \"Viewed\" – Größe": {"properties": {"properties": {"productId": {"type": "string"}}}},
    "Signed Up": {},
    "Cart Viewed": {"properties": {"properties": {"items": {"type": "integer"}}}}
  },
  "violations": "allow", "normalize_names": false} $$);
SELECT * FROM eventkit.create_event_views('"Shop Data".ev') ORDER BY 1::text;
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = '"Shop Data".order_completed'::regclass AND a.attnum > 8 ORDER BY 1;
SELECT message_id, tier, shipping FROM "Shop Data".order_completed ORDER BY 1;
SELECT * FROM "Shop Data".revenue_by_day ORDER BY 1;

-- a type change: refused while something depends on the view
SELECT eventkit.create_plan('shop', $$ {"events": {"Order Completed": {"properties": {"type": "object",
  "properties": {"revenue": {"type": "string"}}}}}} $$);
\set VERBOSITY default
SELECT * FROM eventkit.create_event_views('"Shop Data".ev');
\set VERBOSITY terse
-- without the dependent view, the view is re-created with the new type
DROP VIEW "Shop Data".revenue_by_day;
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".ev');
SELECT message_id, revenue, pg_typeof(revenue) FROM "Shop Data".order_completed ORDER BY 1;
-- the kept columns still read their properties, as their column comments say
SELECT message_id, tier, order_id_2, quantity, properties_ts FROM "Shop Data".order_completed ORDER BY 1;
SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a
 WHERE a.attrelid = '"Shop Data".order_completed'::regclass AND a.attname IN ('order_id', 'order_id_2', 'properties_ts', 'ts')
 ORDER BY 1;

-- the views can go to another schema
CREATE SCHEMA analytics;
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".ev', 'analytics');
SELECT count(*) FROM analytics.order_completed;

-- errors
\set VERBOSITY default
SELECT eventkit.create_event_views('"Shop Data".ev', 'no_such_schema');
CREATE TABLE plain (x int);
SELECT eventkit.create_event_views('plain');
SELECT eventkit.create_stream('unplanned');
SELECT eventkit.create_event_views('unplanned');
SELECT eventkit.create_plan('clash', '{"events": {"Tracks": {}}}');
SELECT eventkit.attach_plan('unplanned', 'clash');
SELECT eventkit.create_event_views('unplanned');
\set VERBOSITY terse

-- privileges: a role that cannot read the stream makes no views; the views
-- belong to their creator, whom another role must ask for access
CREATE ROLE views_reader;
GRANT USAGE, CREATE ON SCHEMA analytics TO views_reader;
GRANT USAGE ON SCHEMA "Shop Data" TO views_reader;
SET ROLE views_reader;
SELECT eventkit.create_event_views('"Shop Data".ev', 'analytics');
-- the views made by the test's superuser: views_reader needs a grant on them
SELECT count(*) FROM analytics.order_completed;
RESET ROLE;
-- the event views read the stream's <stream>_resolved view: its grant goes with the stream's
GRANT SELECT ON "Shop Data".ev, "Shop Data".ev_resolved TO views_reader;
CREATE SCHEMA reader_views AUTHORIZATION views_reader;
SET ROLE views_reader;
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".ev', 'reader_views');
SELECT count(*) FROM reader_views.order_completed;
RESET ROLE;
SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'reader_views.order_completed'::regclass;

-- a Segment Config API plan (the plan_formats fixture): the identify rule's
-- traits are typed columns of identifies; the superseded version of an
-- event gives no columns
SELECT eventkit.create_stream('"Shop Data".kicks');
\set export `cat test/fixtures/segment_config_api.json`
SELECT eventkit.create_plan('kicks', :'export'::jsonb);
SELECT eventkit.attach_plan('"Shop Data".kicks', 'kicks');
CREATE SCHEMA kicks;
SELECT * FROM eventkit.create_event_views('"Shop Data".kicks', 'kicks') ORDER BY 1::text;
SELECT * FROM eventkit.ingest('"Shop Data".kicks', '[
  {"type": "identify", "messageId": "k1", "userId": "u-9", "traits": {"email": "a@b.io", "age": 30},
   "timestamp": "2024-05-01T00:00:00Z"},
  {"type": "track", "messageId": "k2", "userId": "u-9", "event": "Order Completed",
   "properties": {"order_id": "o-9", "revenue": 5, "quantity": 1}, "timestamp": "2024-05-01T00:01:00Z"}]');
SELECT message_id, email, age FROM kicks.identifies;
SELECT message_id, order_id, revenue, quantity FROM kicks.order_completed;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'kicks.order_completed'::regclass AND a.attnum > 8 ORDER BY a.attnum;
DROP SCHEMA kicks CASCADE;
SELECT eventkit.drop_stream('"Shop Data".kicks');

-- attack pass: hostile names.  Names past 63 bytes are clipped as
-- PostgreSQL truncates identifiers, so two events that agree in their first
-- 63 bytes are refused (they would both be one view: before, the second
-- silently replaced the first), two such properties get distinct columns;
-- a quote, SQL in an event name, properties named like the common columns;
-- no views in eventkit's or the system's schemas.
SELECT eventkit.create_stream('"Shop Data".hv');
SELECT eventkit.create_plan('hostile', jsonb_build_object('events', jsonb_build_object(
  'x'');DROP TABLE pg_class;--', jsonb_build_object('properties', jsonb_build_object('properties', jsonb_build_object(
     'a"b', '{"type": "string"}'::jsonb, 'event', '{"type": "integer"}'::jsonb, 'user_id', '{"type": "boolean"}'::jsonb,
     repeat('p', 70) || '1', '{"type": "string"}'::jsonb, repeat('p', 70) || '2', '{"type": "integer"}'::jsonb))),
  repeat('e', 70) || ' one', '{}'::jsonb,
  repeat('e', 70) || ' two', '{}'::jsonb),
  'violations', 'allow', 'normalize_names', false));
SELECT eventkit.attach_plan('"Shop Data".hv', 'hostile');
SELECT accepted FROM eventkit.ingest('"Shop Data".hv', '[{"type": "track", "messageId": "h1", "userId": "u", "event": "x'');DROP TABLE pg_class;--",
  "timestamp": "2024-01-01T00:00:00Z", "properties": {"a\"b": "q", "event": 3, "user_id": true}}]');
SELECT length(eventkit.warehouse_name(repeat('é', 40))) AS clipped_chars, octet_length(eventkit.warehouse_name(repeat('é', 40))) AS clipped_bytes;
CREATE SCHEMA "h""views";
\set VERBOSITY terse
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".hv', 'h"views');
SELECT eventkit.create_plan('hostile', jsonb_build_object('events', jsonb_build_object(
  'x'');DROP TABLE pg_class;--', jsonb_build_object('properties', jsonb_build_object('properties', jsonb_build_object(
     'a"b', '{"type": "string"}'::jsonb, 'event', '{"type": "integer"}'::jsonb, 'user_id', '{"type": "boolean"}'::jsonb,
     repeat('p', 70) || '1', '{"type": "string"}'::jsonb, repeat('p', 70) || '2', '{"type": "integer"}'::jsonb))),
  repeat('e', 70) || ' one', '{}'::jsonb),
  'violations', 'allow', 'normalize_names', false));
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".hv', 'eventkit');
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".hv', 'pg_catalog');
SELECT count(*) FROM eventkit.create_event_views('"Shop Data".hv', 'information_schema');
\set VERBOSITY default
SELECT * FROM eventkit.create_event_views('"Shop Data".hv', 'h"views') ORDER BY 1::text;
SELECT a.attname FROM pg_attribute a
 WHERE a.attrelid = '"h""views".x_drop_table_pg_class'::regclass AND a.attnum > 8 ORDER BY a.attnum;
SELECT event, properties_event, properties_user_id, a_b FROM "h""views".x_drop_table_pg_class;
DROP SCHEMA "h""views" CASCADE;
SELECT eventkit.drop_stream('"Shop Data".hv');

DROP SCHEMA reader_views CASCADE;
DROP SCHEMA analytics CASCADE;
DROP TABLE plain;
SELECT eventkit.drop_stream('unplanned');
DROP SCHEMA "Shop Data" CASCADE;
DROP EXTENSION eventkit;
DROP ROLE views_reader;
