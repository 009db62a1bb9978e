-- Tracking plans: create_plan, attach/detach, every policy, naming rules,
-- version pinning, Segment's export format, violation stats, replay.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('pev');

-- a plan in eventkit's format; every create_plan is a new version
SELECT eventkit.create_plan('shop', '{
  "events": {
    "Order Completed": {
      "properties": {"type": "object", "required": ["order_id", "revenue"],
                     "properties": {"order_id": {"type": "string"},
                                    "revenue": {"type": "number", "minimum": 0},
                                    "coupon": {"type": "string"}}},
      "aliases": ["Checkout Finished"]},
    "Signed Up": {"traits": {"type": "object", "required": ["email"]}}
  }}');
SELECT eventkit.create_plan('shop', '{
  "events": {
    "Order Completed": {
      "properties": {"type": "object", "required": ["order_id", "revenue"],
                     "properties": {"order_id": {"type": "string"},
                                    "revenue": {"type": "number", "minimum": 0},
                                    "coupon": {"type": "string"}}},
      "aliases": ["Checkout Finished"]},
    "Signed Up": {"traits": {"type": "object", "required": ["email"]}}
  }}');
SELECT p.name, v.version, v.spec ? 'events' AS has_events
  FROM eventkit.plan_versions v JOIN eventkit.plans p USING (plan_id) ORDER BY 1, 2;

-- bad specs are errors at create_plan
SELECT eventkit.create_plan('bad', '[]');
SELECT eventkit.create_plan('bad', '{"evnts": {}}');
SELECT eventkit.create_plan('bad', '{"violations": "ignore"}');
SELECT eventkit.create_plan('bad', '{"unplanned_properties": "reject"}');
SELECT eventkit.create_plan('bad', '{"normalize_names": "yes"}');
SELECT eventkit.create_plan('bad', '{"events": []}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {"properties": 5}}}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {"propertes": {}}}}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {"properties": {"type": "objekt"}}}}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {"properties": {"pattern": "("}}}}');
SELECT eventkit.create_plan('bad', '{"events": {"Order Completed": {}, "order_completed": {}}}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {}, "B": {"aliases": ["A"]}}}');
SELECT eventkit.create_plan('bad', '{"events": {"A": {"properties": {"properties": {"orderId": {}, "order_id": {}}}}}}');
SELECT eventkit.create_plan('bad', '{"rules": [{"type": "TRACK", "jsonSchema": {}}]}');
SELECT eventkit.create_plan('bad', '{"rules": [{"type": "ALIAS", "key": "x"}]}');
SELECT eventkit.create_plan('', '{}');
SELECT count(*) AS bad_plans_stored FROM eventkit.plans WHERE name = 'bad';

-- attach: errors
SELECT eventkit.attach_plan('pev', 'nope');
SELECT eventkit.attach_plan('pev', 'shop', 7);

-- attach following the latest version; default policy: violations quarantined
SELECT eventkit.attach_plan('pev', 'shop');
SELECT plan_id IS NOT NULL AS attached, plan_version FROM eventkit.streams WHERE relid = 'pev'::regclass;
SELECT * FROM eventkit.ingest_verbose('pev', '[
  {"type": "track", "messageId": "p1", "userId": "u1", "event": "Order Completed",
   "properties": {"order_id": "o1", "revenue": 10}},
  {"type": "track", "messageId": "p2", "userId": "u1", "event": "Order Completed",
   "properties": {"order_id": 5, "revenue": -1}},
  {"type": "track", "messageId": "p3", "userId": "u1", "event": "Order Completed"},
  {"type": "identify", "messageId": "p4", "userId": "u1", "traits": {"name": "x"}},
  {"type": "track", "messageId": "p5", "userId": "u1", "event": "Something Else"}
]') ORDER BY item;
SELECT message_id, event, plan_version, violations FROM pev ORDER BY message_id;
SELECT message_id, plan_version, plan_id IS NOT NULL AS has_plan, reasons
  FROM eventkit.quarantine ORDER BY quarantine_id;

-- naming rules: variants of a planned name are stored under the planned spelling
SELECT * FROM eventkit.ingest_verbose('pev', '[
  {"type": "track", "messageId": "n1", "userId": "u1", "event": "OrderComplete", "properties": {"order_id": "o", "revenue": 1}},
  {"type": "track", "messageId": "n2", "userId": "u1", "event": "order_complete", "properties": {"order_id": "o", "revenue": 1}},
  {"type": "track", "messageId": "n3", "userId": "u1", "event": "order-completed", "properties": {"order_id": "o", "revenue": 1}},
  {"type": "track", "messageId": "n4", "userId": "u1", "event": "Order completed", "properties": {"order_id": "o", "revenue": 1}},
  {"type": "track", "messageId": "n5", "userId": "u1", "event": "Checkout Finished", "properties": {"order_id": "o", "revenue": 1}},
  {"type": "track", "messageId": "n6", "userId": "u1", "event": "checkoutFinished", "properties": {"orderId": "o", "Revenue": 1}},
  {"type": "track", "messageId": "n7", "userId": "u1", "event": "Order Completed", "properties": {"orderId": "x", "order_id": "o", "revenue": 1}}
]') ORDER BY item;
SELECT message_id, event, properties, extra FROM pev WHERE message_id LIKE 'n%' ORDER BY message_id;

-- tag: stored, with the violations on the row
SELECT eventkit.create_plan('tagging', '{"violations": "tag", "unplanned_events": "tag",
  "events": {"Viewed": {"properties": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}');
SELECT eventkit.attach_plan('pev', 'tagging');
SELECT * FROM eventkit.ingest('pev', '[
  {"type": "track", "messageId": "t1", "userId": "u1", "event": "Viewed", "properties": {"n": 1.5}},
  {"type": "track", "messageId": "t2", "userId": "u1", "event": "Unknown Thing"},
  {"type": "track", "messageId": "t3", "userId": "u1", "event": "Viewed", "properties": {"n": 2}}
]');
SELECT message_id, plan_version, violations FROM pev WHERE message_id LIKE 't%' ORDER BY message_id;

-- omit: the offending (and unplanned) properties are left out, the rest is stored
SELECT eventkit.create_plan('omitting', '{"violations": "omit", "unplanned_properties": "omit",
  "events": {"Viewed": {"properties": {"type": "object", "required": ["n"],
                                      "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}}}}');
SELECT eventkit.attach_plan('pev', 'omitting');
SELECT * FROM eventkit.ingest('pev', '[
  {"type": "track", "messageId": "o1", "userId": "u1", "event": "Viewed", "properties": {"n": "x", "s": "ok", "extra": 1}},
  {"type": "track", "messageId": "o2", "userId": "u1", "event": "Viewed", "properties": {"s": "no n"}}
]');
SELECT message_id, properties, violations FROM pev WHERE message_id LIKE 'o%' ORDER BY message_id;

-- reject and quarantine for unplanned events and properties
SELECT eventkit.create_plan('strict', '{"violations": "reject", "unplanned_events": "reject",
  "unplanned_properties": "quarantine",
  "events": {"Viewed": {"properties": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}');
SELECT eventkit.attach_plan('pev', 'strict');
SELECT * FROM eventkit.ingest_verbose('pev', '[
  {"type": "track", "messageId": "r1", "userId": "u1", "event": "Viewed", "properties": {"n": "x"}},
  {"type": "track", "messageId": "r2", "userId": "u1", "event": "Nope"},
  {"type": "track", "messageId": "r3", "userId": "u1", "event": "Viewed", "properties": {"n": 1, "m": 2}},
  {"type": "track", "messageId": "r4", "userId": "u1", "event": "Viewed", "properties": {"n": 1}}
]') ORDER BY item;
SELECT message_id FROM pev WHERE message_id LIKE 'r%' ORDER BY 1;
SELECT message_id, reasons FROM eventkit.quarantine WHERE message_id LIKE 'r%' ORDER BY 1;

-- allow: stored as is, but counted in the statistics
SELECT eventkit.create_plan('lenient', '{"violations": "allow",
  "events": {"Viewed": {"properties": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}');
SELECT eventkit.attach_plan('pev', 'lenient');
SELECT * FROM eventkit.ingest('pev', '{"type": "track", "messageId": "a1", "userId": "u1",
  "event": "Viewed", "properties": {"n": "x"}}');
SELECT message_id, violations, plan_version FROM pev WHERE message_id = 'a1';

-- an event pins a plan version with context.protocols.event_version
SELECT eventkit.create_plan('pinned', '{"events": {"E": {"properties": {"required": ["v1"]}}}}');
SELECT eventkit.create_plan('pinned', '{"events": {"E": {"properties": {"required": ["v2"]}}}}');
SELECT eventkit.attach_plan('pev', 'pinned');
SELECT * FROM eventkit.ingest_verbose('pev', '[
  {"type": "track", "messageId": "v1", "userId": "u1", "event": "E", "properties": {"v2": 1}},
  {"type": "track", "messageId": "v2", "userId": "u1", "event": "E", "properties": {"v1": 1},
   "context": {"protocols": {"event_version": 1}}},
  {"type": "track", "messageId": "v3", "userId": "u1", "event": "E", "properties": {"v1": 1},
   "context": {"protocols": {"event_version": "2"}}},
  {"type": "track", "messageId": "v4", "userId": "u1", "event": "E", "properties": {"v1": 1},
   "context": {"protocols": {"event_version": 9}}}
]') ORDER BY item;
SELECT message_id, plan_version FROM pev WHERE message_id LIKE 'v%' ORDER BY 1;
-- attached at a fixed version: later versions do not apply
SELECT eventkit.attach_plan('pev', 'pinned', 1);
SELECT eventkit.create_plan('pinned', '{"events": {"E": {"properties": {"required": ["v3"]}}}}');
SELECT * FROM eventkit.ingest('pev', '{"type": "track", "messageId": "v5", "userId": "u1",
  "event": "E", "properties": {"v1": 1}}');

-- Segment's tracking-plan export
SELECT eventkit.create_plan('segment', '{
  "name": "Web", "violations": "tag",
  "rules": [
    {"type": "TRACK", "key": "Product Viewed", "version": 1,
     "jsonSchema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
       "properties": {"properties": {"type": "object", "required": ["sku"],
                                     "properties": {"sku": {"type": "string"}}}}}},
    {"type": "TRACK", "key": "Product Viewed", "version": 2,
     "jsonSchema": {"type": "object", "required": ["properties"],
       "properties": {"properties": {"type": "object", "required": ["sku", "price"],
                                     "properties": {"sku": {"type": "string"},
                                                    "price": {"type": "number"}}}}}},
    {"type": "IDENTIFY",
     "jsonSchema": {"properties": {"traits": {"type": "object", "required": ["email"]}}}}
  ]}');
SELECT eventkit.attach_plan('pev', 'segment');
SELECT * FROM eventkit.ingest('pev', '[
  {"type": "track", "messageId": "s1", "userId": "u1", "event": "Product Viewed", "properties": {"sku": "a", "price": 1}},
  {"type": "track", "messageId": "s2", "userId": "u1", "event": "product_viewed", "properties": {"sku": "a"}},
  {"type": "track", "messageId": "s3", "userId": "u1", "event": "Product Viewed"},
  {"type": "identify", "messageId": "s4", "userId": "u1", "traits": {"name": "n"}},
  {"type": "identify", "messageId": "s5", "userId": "u1", "traits": {"email": "e@x.io"}}
]');
SELECT message_id, event, violations FROM pev WHERE message_id LIKE 's%' ORDER BY 1;

-- violation statistics per stream, event, keyword and property path
SELECT plan, event, keyword, property_path, action, violations
  FROM eventkit.violation_stats ORDER BY plan, event, keyword, property_path, action;

-- replay: after a plan fix, quarantined events go through the normal path
SELECT eventkit.create_plan('shop', '{"events": {"Order Completed": {"properties": {"type": "object"}}}}');
SELECT eventkit.attach_plan('pev', 'shop');
SELECT count(*) AS quarantined_before FROM eventkit.quarantine;
SELECT * FROM eventkit.replay_quarantine('pev',
  ARRAY(SELECT quarantine_id FROM eventkit.quarantine WHERE message_id IN ('p2', 'p3', 'r3')));
SELECT message_id, event, plan_version FROM pev WHERE message_id IN ('p2', 'p3', 'r3') ORDER BY 1;
SELECT message_id, replays FROM eventkit.quarantine ORDER BY message_id;
-- replaying everything: what the plan now accepts leaves quarantine, the rest stays
SELECT * FROM eventkit.replay_quarantine('pev');
SELECT message_id, replays, plan_version, reasons->0->>'reason' AS reason
  FROM eventkit.quarantine ORDER BY message_id;
-- a replay never double counts: the same events again are duplicates
SELECT * FROM eventkit.ingest('pev', '{"type": "track", "messageId": "p2", "userId": "u1",
  "event": "Order Completed", "properties": {"order_id": 5, "revenue": -1}}');
SELECT message_id, count(*) FROM pev GROUP BY 1 HAVING count(*) > 1;

-- a quarantined event from an envelope keeps its sentAt and context for replay
SELECT eventkit.create_plan('env', '{"events": {"Tapped": {"properties": {"required": ["x"]}}}}');
SELECT eventkit.attach_plan('pev', 'env');
SELECT * FROM eventkit.ingest('pev', '{"batch": [
  {"type": "track", "messageId": "e1", "userId": "u1", "event": "Tapped",
   "originalTimestamp": "2020-01-01T00:00:00Z"}],
  "sentAt": "2020-01-01T00:00:10Z", "context": {"app": "ios"}}',
  received_at => date_trunc('hour', now()));
SELECT message_id, envelope FROM eventkit.quarantine WHERE message_id = 'e1';
SELECT eventkit.create_plan('env', '{"events": {"Tapped": {}}}');
SELECT * FROM eventkit.replay_quarantine('pev');
SELECT message_id, ts = date_trunc('hour', now()) - interval '10 seconds' AS skew_corrected,
       context, received_at = date_trunc('hour', now()) AS original_receipt
  FROM pev WHERE message_id = 'e1';

-- detach: no checks
SELECT eventkit.detach_plan('pev');
SELECT * FROM eventkit.ingest('pev', '{"type": "track", "messageId": "d1", "userId": "u1", "event": "Tapped"}');
SELECT message_id, plan_version, violations FROM pev WHERE message_id = 'd1';

-- only the stream's owner attaches plans; only the plan's owner versions it
CREATE ROLE plan_stranger;
SET ROLE plan_stranger;
SELECT eventkit.attach_plan('pev', 'shop');
SELECT eventkit.create_plan('shop', '{}');
SELECT eventkit.create_plan('strangers_plan', '{}');
RESET ROLE;
SELECT name, owner FROM eventkit.plans WHERE name = 'strangers_plan';

-- fuzz: 400 truncated or byte-flipped specs either compile or fail with
-- invalid_parameter_value; the ones that compile check an event, which is
-- accounted for exactly once
CREATE TEMP TABLE fuzz_outcomes (outcome text);
DO $$
DECLARE
  base text := '{"violations": "tag", "unplanned_properties": "omit", "events": {"Order Completed": {"properties": {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string", "pattern": "^o[0-9]+$"}, "revenue": {"type": "number", "minimum": 0}, "items": {"type": "array", "items": {"$ref": "#/definitions/item"}}}, "definitions": {"item": {"type": "object", "properties": {"sku": {"type": "string", "minLength": 1}}}}}, "aliases": ["Checkout Finished"]}, "Signed Up": {"traits": {"required": ["email"], "properties": {"email": {"format": "email"}}}}}}';
  spec text;
  h int;
  r eventkit.ingest_result;
BEGIN
  FOR i IN 1..400 LOOP
    h := ('x' || substr(md5(i::text), 1, 8))::bit(32)::int & 2147483647;
    IF i % 2 = 0 THEN
      spec := substr(base, 1, h % length(base));
    ELSE
      spec := overlay(base placing substr('{}[]":,0a-#$ ', 1 + h % 13, 1) from 1 + (h / 13) % length(base) for 1);
    END IF;
    BEGIN
      PERFORM spec::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
      INSERT INTO fuzz_outcomes VALUES ('not json');
      CONTINUE;
    END;
    BEGIN
      PERFORM eventkit.create_plan('fuzz', spec::jsonb);
      PERFORM eventkit.attach_plan('pev', 'fuzz');
      r := eventkit.ingest('pev', jsonb_build_object('type', 'track', 'userId', 'f', 'messageId', 'fz' || i,
             'event', 'order_completed', 'properties', '{"order_id": 7, "items": [{"sku": ""}], "x": 1}'::jsonb));
      IF r.accepted + r.quarantined + r.rejected <> 1 THEN
        RAISE EXCEPTION 'fuzz %: event not accounted for: %', i, r;
      END IF;
      INSERT INTO fuzz_outcomes VALUES ('compiled');
    EXCEPTION WHEN invalid_parameter_value THEN
      INSERT INTO fuzz_outcomes VALUES ('invalid_parameter_value');
    END;
  END LOOP;
END $$;
SELECT outcome, count(*) > 0 AS seen FROM fuzz_outcomes GROUP BY 1 ORDER BY 1;
SELECT count(*) AS fuzz_events_twice FROM (SELECT message_id FROM pev WHERE message_id LIKE 'fz%' GROUP BY 1 HAVING count(*) > 1) x;

SELECT eventkit.drop_stream('pev');
SELECT count(*) AS violation_rows_left FROM eventkit.batch_violations;
DROP EXTENSION eventkit CASCADE;
DROP ROLE plan_stranger;
