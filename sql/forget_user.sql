-- Erasure: forget_user deletes every event of a user (all linked ids) from
-- the stream, quarantine and conflicts, rebuilds the rollup buckets it
-- touched (a rollup equals GROUP BY over the remaining rows afterwards),
-- records a suppression (a later event with those ids is rejected, reason
-- suppressed, and a re-send of an erased messageId is not stored), logs the
-- erasure for the owner, and refuses a non-owner.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
CREATE ROLE fu_owner;
CREATE ROLE fu_writer;
CREATE SCHEMA fu AUTHORIZATION fu_owner;
GRANT USAGE ON SCHEMA fu TO fu_writer;

SET ROLE fu_owner;
SELECT eventkit.create_stream('fu.ev');
GRANT INSERT, SELECT ON fu.ev TO fu_writer;
SELECT eventkit.create_plan('fu_plan', '{"events": {"Paid": {"properties": {"required": ["amount"]}}}}');
SELECT eventkit.attach_plan('fu.ev', 'fu_plan');
SELECT eventkit.create_rollup('fu.hourly', 'fu.ev', '1 hour', '{event}',
    '{count,"distinct(user_key) AS users","sum(properties.amount) AS amount","percentile(properties.amount, 0.5) AS p50"}');

-- alice browses anonymously (a-1), identifies, pays; bob pays in the same hours
SELECT * FROM eventkit.ingest('fu.ev', '[
  {"type": "page", "messageId": "m1", "anonymousId": "a-1", "name": "Home", "timestamp": "2026-02-01T10:00:00Z"},
  {"type": "identify", "messageId": "m2", "anonymousId": "a-1", "userId": "alice", "timestamp": "2026-02-01T10:05:00Z"},
  {"type": "track", "messageId": "m3", "userId": "alice", "event": "Paid", "properties": {"amount": 30}, "timestamp": "2026-02-01T10:10:00Z"},
  {"type": "track", "messageId": "m4", "userId": "bob", "event": "Paid", "properties": {"amount": 5}, "timestamp": "2026-02-01T10:20:00Z"},
  {"type": "track", "messageId": "m5", "userId": "bob", "event": "Paid", "properties": {"amount": 7}, "timestamp": "2026-02-01T11:20:00Z"}
]', '2026-02-01T12:00:00Z');
SELECT eventkit.refresh_rollup('fu.hourly');
-- more of alice after the refresh (still in the rollup's deltas), by another device
SELECT * FROM eventkit.ingest('fu.ev', '[
  {"type": "identify", "messageId": "m6", "anonymousId": "a-2", "userId": "alice", "timestamp": "2026-02-01T11:00:00Z"},
  {"type": "track", "messageId": "m7", "anonymousId": "a-2", "event": "Paid", "properties": {"amount": 12}, "timestamp": "2026-02-01T11:30:00Z"},
  {"type": "track", "messageId": "m8", "userId": "bob", "event": "Paid", "timestamp": "2026-02-01T11:40:00Z"},
  {"type": "track", "messageId": "m9", "userId": "alice", "event": "Paid", "timestamp": "2026-02-01T11:45:00Z"}
]', '2026-02-01T12:00:00Z');
-- a conflict of alice's (same messageId, other content)
SELECT * FROM eventkit.ingest('fu.ev', '{"type": "track", "messageId": "m3", "userId": "alice", "event": "Paid", "properties": {"amount": 31}, "timestamp": "2026-02-01T10:10:00Z"}', '2026-02-01T12:00:00Z');
SELECT message_id, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY 1;
SELECT bucket, event, count, users, amount, p50 FROM fu.hourly_realtime ORDER BY 1, 2;
RESET ROLE;
SELECT message_id FROM eventkit.conflicts ORDER BY 1;
SELECT format('eventkit_internal.%I', 'ledger_' || stream_id) AS ledger
  FROM eventkit.streams WHERE relid = 'fu.ev'::regclass \gset
-- (the ledger keeps a 64-bit hash of each user key, not the key)
SELECT k.user_key, count(*) FROM :ledger l
  JOIN unnest('{a-1,a-2,alice,bob}'::text[]) k(user_key)
    ON l.user_key_hash = eventkit_internal.id_hash64(k.user_key)
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS other_keys FROM :ledger
 WHERE user_key_hash <> ALL (SELECT eventkit_internal.id_hash64(k) FROM unnest('{a-1,a-2,alice,bob}'::text[]) k);

-- only the owner may erase
SET ROLE fu_writer;
SELECT eventkit.forget_user('fu.ev', 'alice');
RESET ROLE;

-- erase alice, named by one of her anonymous ids
SET ROLE fu_owner;
SELECT eventkit.forget_user('fu.ev', 'a-2') AS deleted;
SELECT message_id, user_id, anonymous_id FROM fu.ev ORDER BY 1;
SELECT message_id AS quarantined_left FROM eventkit.quarantine ORDER BY 1;
SELECT count(*) AS links_left FROM eventkit.identity_links;
SELECT stream, user_id, ids, erased_by = session_user AS by_me, events, quarantined, conflicts,
       ledger_rows, rollup_buckets
  FROM eventkit.erasures ORDER BY erasure_id;
SELECT id FROM eventkit.suppressions ORDER BY 1;

-- the rollup equals GROUP BY over the remaining rows, folded and realtime
SELECT bucket, event, count, users, amount, p50 FROM fu.hourly_realtime ORDER BY 1, 2;
CREATE TEMP VIEW fu_expected AS
SELECT date_trunc('hour', ts) AS bucket, event, count(*) AS count, count(DISTINCT user_key) AS users,
       sum((properties->>'amount')::numeric) AS amount,
       tdigest_percentile((properties->>'amount')::float8, 100, 0.5) AS p50
  FROM fu.ev GROUP BY 1, 2;
SELECT count(*) AS differences FROM (
  (SELECT bucket, event, count, users, amount, p50 FROM fu.hourly_realtime EXCEPT SELECT * FROM fu_expected)
  UNION ALL
  (SELECT * FROM fu_expected EXCEPT SELECT bucket, event, count, users, amount, p50 FROM fu.hourly_realtime)) d;
DROP VIEW fu_expected;
SELECT eventkit.refresh_rollup('fu.hourly') AS folded_after;
RESET ROLE;
SELECT count(*) AS conflicts_left FROM eventkit.conflicts;
-- nothing of alice's left in the ledger either
-- (the ledger keeps a 64-bit hash of each user key, not the key)
SELECT k.user_key, count(*) FROM :ledger l
  JOIN unnest('{a-1,a-2,alice,bob}'::text[]) k(user_key)
    ON l.user_key_hash = eventkit_internal.id_hash64(k.user_key)
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS other_keys FROM :ledger
 WHERE user_key_hash <> ALL (SELECT eventkit_internal.id_hash64(k) FROM unnest('{a-1,a-2,alice,bob}'::text[]) k);

-- suppressed: later events with any of her ids are rejected, never stored
SET ROLE fu_writer;
SELECT item, message_id, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('fu.ev', '[
  {"type": "track", "messageId": "n1", "anonymousId": "a-1", "event": "Viewed", "timestamp": "2026-02-02T10:00:00Z"},
  {"type": "track", "messageId": "n2", "userId": "alice", "event": "Viewed", "timestamp": "2026-02-02T10:00:00Z"},
  {"type": "alias", "messageId": "n3", "previousId": "a-2", "userId": "alice-new", "timestamp": "2026-02-02T10:00:00Z"},
  {"type": "track", "messageId": "n4", "userId": "bob", "event": "Viewed", "timestamp": "2026-02-02T10:00:00Z"},
  {"type": "track", "messageId": "m3", "userId": "alice", "event": "Paid", "properties": {"amount": 30}, "timestamp": "2026-02-01T10:10:00Z"}
]', '2026-02-02T12:00:00Z') ORDER BY item;
-- (rejected whatever eventkit.invalid_events says)
SET eventkit.invalid_events = quarantine;
SELECT * FROM eventkit.ingest('fu.ev', '{"type": "page", "messageId": "n5", "anonymousId": "a-2", "name": "Home", "timestamp": "2026-02-02T10:00:00Z"}', '2026-02-02T12:00:00Z');
RESET eventkit.invalid_events;
RESET ROLE;
SELECT message_id FROM fu.ev WHERE message_id LIKE 'n%' OR message_id = 'm3' ORDER BY 1;
SELECT count(*) AS quarantined FROM eventkit.quarantine;
SELECT count(*) AS ledger_m3 FROM :ledger WHERE message_key = eventkit_internal.ledger_key('m3');
SELECT count(*) AS links FROM eventkit.identity_links;

-- the erasure log and the suppressions are the stream owner's to read
CREATE ROLE fu_other;
SET ROLE fu_other;
SELECT count(*) AS erasures_seen FROM eventkit.erasures;
SELECT count(*) AS suppressions_seen FROM eventkit.suppressions;
RESET ROLE;

-- an unknown id: nothing to delete, but suppressed from now on
SET ROLE fu_owner;
SELECT eventkit.forget_user('fu.ev', 'zed') AS deleted;
SELECT * FROM eventkit.ingest('fu.ev', '{"type": "track", "messageId": "z1", "userId": "zed", "event": "Viewed", "timestamp": "2026-02-02T10:00:00Z"}', '2026-02-02T12:00:00Z');
SELECT eventkit.forget_user('fu.ev', NULL);
-- drop_stream forgets the suppressions; the erasure log stays
SELECT eventkit.drop_rollup('fu.hourly');
SELECT eventkit.drop_stream('fu.ev');
RESET ROLE;
SELECT count(*) AS suppressions_left FROM eventkit.suppressions;
SELECT count(*) AS erasures_kept FROM eventkit.erasures;

-- attack pass: forget_user is all-or-nothing (an error in its last step,
-- the audit row, leaves every event, link, ledger entry and suppression as
-- it was), and the stream's DELETE triggers run as the stream's owner, even
-- one created by a role granted TRIGGER and when a superuser calls it
SET ROLE fu_owner;
SELECT eventkit.create_stream('fu.ev2');
SELECT accepted FROM eventkit.ingest('fu.ev2', '[
  {"type": "identify", "messageId": "t1", "userId": "tu", "anonymousId": "ta", "timestamp": "2026-02-01T10:00:00Z"},
  {"type": "track", "messageId": "t2", "anonymousId": "ta", "event": "Viewed", "timestamp": "2026-02-01T10:01:00Z"}]',
  '2026-02-01T12:00:00Z');
CREATE TABLE fu.who (role name, op text);
GRANT INSERT, SELECT ON fu.who TO PUBLIC;
GRANT TRIGGER ON fu.ev2 TO fu_writer;
RESET ROLE;
CREATE FUNCTION fu.note_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fu.who VALUES (current_user, TG_OP);
  RETURN NULL;
END $$;
ALTER FUNCTION fu.note_delete() OWNER TO fu_writer;
SET ROLE fu_writer;
CREATE TRIGGER note AFTER DELETE ON fu.ev2 FOR EACH STATEMENT EXECUTE FUNCTION fu.note_delete();
RESET ROLE;
CREATE FUNCTION fu.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('fu.fail', true) = 'on' THEN
    RAISE EXCEPTION 'refusing the audit row';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON eventkit.erasures FOR EACH ROW EXECUTE FUNCTION fu.refuse();
SET fu.fail = on;
\set VERBOSITY terse
SELECT eventkit.forget_user('fu.ev2', 'ta');
\set VERBOSITY default
RESET fu.fail;
SELECT count(*) AS events_kept FROM fu.ev2;
SELECT count(*) AS links_kept FROM eventkit.identity_links l JOIN eventkit.streams s USING (stream_id)
 WHERE s.relid = 'fu.ev2'::regclass;
SELECT count(*) AS suppressed FROM eventkit.suppressions WHERE id IN ('ta', 'tu');
SELECT count(*) AS trigger_rows FROM fu.who;
-- a superuser's call: the trigger runs as fu_owner, the stream's owner
SELECT eventkit.forget_user('fu.ev2', 'ta') AS deleted;
SELECT role, op FROM fu.who;
SELECT count(*) AS suppressed FROM eventkit.suppressions WHERE id IN ('ta', 'tu');
DROP TRIGGER refuse ON eventkit.erasures;
DROP FUNCTION fu.refuse();
SET ROLE fu_owner;
SELECT eventkit.drop_stream('fu.ev2');
DROP TABLE fu.who;
RESET ROLE;
DROP FUNCTION fu.note_delete();

DROP SCHEMA fu;
DROP ROLE fu_owner, fu_writer, fu_other;
DROP EXTENSION eventkit;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
