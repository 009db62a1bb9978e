-- Tracking plans in the catalog: owners are role names (DROP ROLE leaves
-- the name; alter_plan_owner gives the plan a new owner), and a stream
-- whose plan or version is missing (say, after a restore that lost
-- eventkit.plan_versions) quarantines its events and is an error in
-- health(), instead of storing events unchecked.
CREATE EXTENSION eventkit;
CREATE ROLE pc_alice;
CREATE ROLE pc_bob;
CREATE ROLE pc_carol;
GRANT pc_carol TO pc_bob;

SET ROLE pc_alice;
SELECT eventkit.create_plan('pc_plan', '{"events": {"Paid": {"properties": {"required": ["amount"]}}}}');
RESET ROLE;
SELECT name, owner, pg_typeof(owner) FROM eventkit.plans;

-- the owner's role is dropped: the plan keeps its name, nobody but a
-- superuser adds versions, health() warns
DROP ROLE pc_alice;
SELECT name, owner FROM eventkit.plans;
SET ROLE pc_bob;
SELECT eventkit.create_plan('pc_plan', '{"events": {"Paid": {}}}');
SELECT eventkit.alter_plan_owner('pc_plan', 'pc_bob');
RESET ROLE;
SELECT component, target, status, value, detail FROM eventkit.health() WHERE component = 'plan';

-- a superuser gives it a new owner, who versions it and hands it on to a
-- role it is a member of, but not to one it is not
SELECT eventkit.alter_plan_owner('pc_plan', 'pc_bob');
SELECT eventkit.alter_plan_owner('no_such_plan', 'pc_bob');
SET ROLE pc_bob;
SELECT eventkit.create_plan('pc_plan', '{"events": {"Paid": {"properties": {"required": ["amount"]}}}}');
SELECT eventkit.alter_plan_owner('pc_plan', 'pc_alice');
SELECT eventkit.alter_plan_owner('pc_plan', 'postgres');
SELECT eventkit.alter_plan_owner('pc_plan', 'pc_carol');
SELECT eventkit.create_plan('pc_plan', '{"events": {"Paid": {"properties": {"required": ["amount"]}}}}');
RESET ROLE;
SELECT name, owner FROM eventkit.plans;
SELECT version, created_by FROM eventkit.plan_versions ORDER BY version;
SELECT count(*) AS plan_warnings FROM eventkit.health() WHERE component = 'plan';

-- a stream following the plan's latest version, one pinned to version 1
SELECT eventkit.create_stream('pc_latest');
SELECT eventkit.create_stream('pc_pinned');
SELECT eventkit.attach_plan('pc_latest', 'pc_plan');
SELECT eventkit.attach_plan('pc_pinned', 'pc_plan', 1);
SELECT component, target, status, value, detail FROM eventkit.health()
 WHERE component = 'plan' ORDER BY target;

-- the versions are lost: events are quarantined (plan_missing), even
-- with invalid_events = reject, and health() reports errors
CREATE TABLE saved_versions AS SELECT * FROM eventkit.plan_versions;
DELETE FROM eventkit.plan_versions WHERE version = 1;
SELECT * FROM eventkit.ingest_verbose('pc_pinned', '{"type": "track", "messageId": "p1", "userId": "u", "event": "Paid", "properties": {"amount": 1}}');
DELETE FROM eventkit.plan_versions;
SET eventkit.invalid_events = reject;
SELECT * FROM eventkit.ingest_verbose('pc_latest', '{"type": "track", "messageId": "l1", "userId": "u", "event": "Paid"}');
RESET eventkit.invalid_events;
SELECT component, target, status, value, detail FROM eventkit.health()
 WHERE component = 'plan' ORDER BY target;
-- the plan row itself is lost
CREATE TABLE saved_plans AS SELECT * FROM eventkit.plans;
DELETE FROM eventkit.plans;
INSERT INTO eventkit.plan_versions SELECT * FROM saved_versions;
SELECT * FROM eventkit.ingest_verbose('pc_latest', '{"type": "track", "messageId": "l2", "userId": "u", "event": "Paid"}');
SELECT component, target, status, detail FROM eventkit.health()
 WHERE component = 'plan' ORDER BY target;

-- put back: the health checks are ok, and a replay checks the events
-- against the plan
INSERT INTO eventkit.plans SELECT * FROM saved_plans;
SELECT component, target, status, value, detail FROM eventkit.health()
 WHERE component = 'plan' ORDER BY target;
SELECT * FROM eventkit.replay_quarantine('pc_pinned');
SELECT * FROM eventkit.replay_quarantine('pc_latest');
SELECT message_id, reasons->0->>'reason' AS reason, reasons->1->>'keyword' AS keyword
  FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT message_id, plan_version FROM pc_pinned ORDER BY 1;

SELECT eventkit.drop_stream('pc_latest');
SELECT eventkit.drop_stream('pc_pinned');
DROP TABLE saved_versions, saved_plans;
DROP EXTENSION eventkit;
DROP ROLE pc_bob;
DROP ROLE pc_carol;
