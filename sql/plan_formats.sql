-- Tracking-plan formats (issue 18): Segment's Config API plan (as exported,
-- a real-shaped fixture, and wrapped in "tracking_plan"), draft-04 schemas,
-- malformed exports, violation paths into the user's document, strict and
-- non-strict create_plan.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('pf');

-- the fixture: Segment's Config API answer, unchanged
\set export `cat test/fixtures/segment_config_api.json`
SELECT eventkit.create_plan('kicks', :'export'::jsonb);
SELECT eventkit.attach_plan('pf', 'kicks');

-- each event against its rules; schemaPath points into the fixture
SELECT item, message_id, status, reasons FROM eventkit.ingest_verbose('pf', '[
  {"type": "track", "messageId": "ok1", "userId": "u1", "event": "Product Viewed",
   "properties": {"product_id": "sku-1", "price": 12.5, "currency": "EUR"}},
  {"type": "track", "messageId": "bad1", "userId": "u1", "event": "Product Viewed",
   "properties": {"price": -1, "currency": "euro"}},
  {"type": "track", "messageId": "ok2", "userId": "u1", "event": "Order Completed",
   "properties": {"order_id": "o1", "revenue": 0.01, "discount": 100, "quantity": 49,
                  "products": [{"sku": "a"}]}},
  {"type": "track", "messageId": "bad2", "userId": "u1", "event": "Order Completed",
   "properties": {"order_id": "o2", "revenue": 0, "quantity": 50, "discount": 100.5,
                  "products": [{"name": "no sku"}]}},
  {"type": "track", "messageId": "ok3", "userId": "u2", "event": "Signed Up",
   "properties": {"plan": "pro", "trial": true, "signed_up_at": "2024-05-01T10:00:00Z"}},
  {"type": "track", "messageId": "bad3", "userId": "u2", "event": "Signed Up",
   "properties": {"plan": "gold"}, "context": {"locale": 7}},
  {"type": "identify", "messageId": "ok4", "userId": "u2", "traits": {"email": "a@b.io", "age": 30}},
  {"type": "identify", "messageId": "bad4", "userId": "u2", "traits": {"age": 12}},
  {"type": "group", "messageId": "bad5", "userId": "u2", "groupId": "g1", "traits": {}}
]') ORDER BY item;

-- the highest version of "Order Completed" is in force (version 1 wanted "total")
SELECT message_id FROM pf ORDER BY 1;

-- the same plan wrapped as the Config API takes it, with a policy beside it
SELECT eventkit.create_plan('kicks_wrapped',
  jsonb_build_object('tracking_plan', (:'export'::jsonb) -> 'tracking_plan', 'violations', 'tag'));
-- and unwrapped, as the Config API answers GET (policies beside the rules)
SELECT eventkit.create_plan('kicks_unwrapped',
  ((:'export'::jsonb) -> 'tracking_plan') || '{"unplanned_events": "quarantine"}');

-- malformed exports: each a clear error pointing into the document
\set VERBOSITY default
SELECT eventkit.create_plan('bad', '{"tracking_plan": []}');
SELECT eventkit.create_plan('bad', '{"tracking_plan": {"display_name": "x"}}');
SELECT eventkit.create_plan('bad', '{"tracking_plan": {"rules": {}}, "rules": {}}');
SELECT eventkit.create_plan('bad', '{"tracking_plan": {"rules": 7}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": {"Order Completed": {}}}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"version": 1, "rules": {}}]}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"name": "A", "rules": {}}, "B"]}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"name": "A", "version": 1.5}]}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"name": "A", "rules": []}]}}');
SELECT eventkit.create_plan('bad', '{"rules": {"global": "any"}}');
SELECT eventkit.create_plan('bad', '{"rules": {"page": {}}}');
SELECT eventkit.create_plan('bad', '{"rules": {"identify_traits": [{"email": "string"}]}}');
SELECT eventkit.create_plan('bad', '{"tracking_plan": {"rules": {"events": [{"name": "A",
  "rules": {"properties": {"properties": {"properties": {"n": {"type": "int"}}}}}}]}}}');
-- draft-04: a boolean bound needs its number; draft-2019-09 is not read
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"name": "A", "rules": {
  "$schema": "http://json-schema.org/draft-04/schema#",
  "properties": {"properties": {"properties": {"n": {"exclusiveMinimum": true}}}}}}]}}');
SELECT eventkit.create_plan('bad', '{"rules": {"events": [{"name": "A", "rules": {
  "$schema": "https://json-schema.org/draft/2019-09/schema"}}]}}');
-- draft-07 has no "id" and no boolean exclusiveMinimum
SELECT eventkit.schema_valid('{"id": "x"}', '1');
SELECT eventkit.schema_valid('{"minimum": 1, "exclusiveMinimum": true}', '1');
\set VERBOSITY terse

-- draft-04 on its own (schema_errors): the exclusive bound is reported at
-- "minimum", where the user's schema states it
SELECT eventkit.schema_errors('{"$schema": "http://json-schema.org/draft-04/schema#",
  "minimum": 5, "exclusiveMinimum": true}', '5');
SELECT eventkit.schema_valid('{"$schema": "http://json-schema.org/draft-04/schema#",
  "minimum": 5, "exclusiveMinimum": true}', '5.001');
SELECT eventkit.schema_errors('{"$schema": "http://json-schema.org/draft-04/schema#",
  "maximum": 5, "exclusiveMaximum": false}', '5');
-- "id" is draft-04's base URI: a reference through it resolves
SELECT eventkit.schema_errors('{"$schema": "http://json-schema.org/draft-04/schema#",
  "id": "http://x.example/root.json",
  "properties": {"a": {"$ref": "http://x.example/defs.json#/definitions/pos"}},
  "definitions": {"d": {"id": "defs.json", "definitions": {"pos": {"minimum": 0}}}}}',
  '{"a": -1}');
-- draft-06 reads as draft-07
SELECT eventkit.schema_valid('{"$schema": "http://json-schema.org/draft-06/schema#", "const": 1}', '1');

-- strict (the default) rejects unknown keywords; strict => false ignores
-- them with ONE warning listing every one, located in the document
\set VERBOSITY default
SELECT eventkit.create_plan('loose', '{"events": {"A": {"properties": {
  "properties": {"n": {"type": "integer", "isInteger": true}}}}}}');
SELECT eventkit.create_plan('loose', '{"events": {"A": {"properties": {
  "properties": {"n": {"type": "integer", "isInteger": true},
                 "s": {"type": "string", "format": "currency", "unevaluatedItems": false}}}},
  "B": {"traits": {"propertyOrder": ["a"]}}}}', strict => false);
SELECT eventkit.create_plan('loose', '{"rules": {"events": [{"name": "A", "rules": {
  "properties": {"properties": {"properties": {"n": {"type": "integer", "isInteger": true}}}}}}],
  "page": {}}}', strict => false);
\set VERBOSITY terse
-- what is left still checks: n must be an integer; the ignored format checks nothing
SELECT eventkit.attach_plan('pf', 'loose', 1);
SELECT item, status, reasons FROM eventkit.ingest_verbose('pf', '[
  {"type": "track", "messageId": "l1", "userId": "u1", "event": "A", "properties": {"n": 1, "s": "?"}},
  {"type": "track", "messageId": "l2", "userId": "u1", "event": "A", "properties": {"n": 1.5}}
]') ORDER BY item;
-- a strict plan needs no warning; a lenient one with nothing unknown neither
SELECT eventkit.create_plan('loose', '{"events": {"A": {}}}', strict => false);
-- two-argument calls still work, and the strict flag is not null
SELECT eventkit.create_plan('loose', '{"events": {"A": {}}}');
SELECT eventkit.create_plan('loose', '{"events": {"A": {}}}', NULL) IS NULL AS null_strict;
SELECT p.name, count(*) AS versions FROM eventkit.plan_versions v JOIN eventkit.plans p USING (plan_id)
 GROUP BY 1 ORDER BY 1;

SELECT eventkit.detach_plan('pf');
SELECT eventkit.drop_stream('pf');
DROP EXTENSION eventkit;
