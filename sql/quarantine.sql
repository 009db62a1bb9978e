-- The quarantine belongs to the stream's owner: who reads, replays and
-- discards it; a retried bad event is stored once; violation_stats shows
-- the streams the user may read.
CREATE EXTENSION eventkit;
CREATE ROLE q_owner;
CREATE ROLE q_member IN ROLE q_owner;
CREATE ROLE q_writer;
CREATE ROLE q_reader;
CREATE ROLE q_other;
CREATE SCHEMA qs AUTHORIZATION q_owner;
GRANT USAGE ON SCHEMA qs TO q_writer, q_reader, q_other;
GRANT CREATE ON SCHEMA qs TO q_other;

SET ROLE q_owner;
SELECT eventkit.create_stream('qs.ev');
GRANT INSERT ON qs.ev TO q_writer;
GRANT SELECT ON qs.ev TO q_reader;
SELECT eventkit.create_plan('q_plan', '{"events": {"Paid": {"properties": {"required": ["amount"]}}}}');
SELECT eventkit.attach_plan('qs.ev', 'q_plan');
RESET ROLE;
SET ROLE q_other;
SELECT eventkit.create_stream('qs.other_ev');
SELECT * FROM eventkit.ingest('qs.other_ev', '{"type": "track", "messageId": "o1", "event": "E"}');
RESET ROLE;

-- a writer (INSERT only) ingests bad events
SET ROLE q_writer;
SELECT * FROM eventkit.ingest('qs.ev', '[
  {"type": "track", "messageId": "m1", "event": "Paid", "properties": {"amount": 1}},
  {"type": "track", "messageId": "m2", "userId": "u", "event": "Paid", "properties": {}},
  {"type": "track", "messageId": "m3", "userId": "u", "event": "Paid", "properties": {"amount": 3}},
  "not an event"]');
-- but cannot read, replay nor discard the quarantine
SELECT count(*) AS writer_sees FROM eventkit.quarantine;
SELECT * FROM eventkit.replay_quarantine('qs.ev');
SELECT eventkit.discard_quarantine('qs.ev');
-- nor see the stream's violation statistics (it cannot SELECT the stream)
SELECT count(*) AS writer_sees_violations FROM eventkit.violation_stats;
RESET ROLE;

-- the owner, and a member of the owning role, read their stream's rows only
SET ROLE q_owner;
SELECT message_id, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT stream, event, keyword, violations FROM eventkit.violation_stats;
RESET ROLE;
SET ROLE q_member;
SELECT count(*) AS member_sees FROM eventkit.quarantine;
RESET ROLE;
SET ROLE q_other;
SELECT message_id FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT count(*) AS other_sees_violations FROM eventkit.violation_stats;
RESET ROLE;
-- a role with SELECT on the stream sees its violation statistics (as
-- pg_stats), not its quarantine
SET ROLE q_reader;
SELECT count(*) AS reader_sees FROM eventkit.quarantine;
SELECT stream, event, keyword, violations FROM eventkit.violation_stats;
RESET ROLE;
-- the sums in stream_stats are for everyone, as before
SELECT stream, quarantined, in_quarantine FROM eventkit.stream_stats ORDER BY stream_id;

-- retrying the same bad events stores them once; the caller still hears
-- "quarantined".  Retries may carry another sentAt (left out of the
-- fingerprint, as for dedup); an item that is not an object and malformed
-- text are keyed by their content.
SET ROLE q_writer;
SELECT * FROM eventkit.ingest('qs.ev', '{"batch": [
  {"type": "track", "messageId": "m1", "event": "Paid", "properties": {"amount": 1}},
  {"type": "track", "messageId": "m1", "event": "Paid", "properties": {"amount": 1}},
  {"type": "track", "messageId": "m2", "userId": "u", "event": "Paid", "properties": {}, "sentAt": "2024-01-01T00:00:00Z"},
  "not an event"], "sentAt": "2024-01-01T00:00:05Z"}', now() + interval '1 minute');
SELECT * FROM eventkit.ingest('qs.ev', E'{"type": "track", "messageId": "m4", "event": \n{broken\n{broken');
SELECT * FROM eventkit.ingest('qs.ev', E'{broken\n{"type": "track", "messageId": "m4", "event": ');
-- same message id, other content: a second row
SELECT * FROM eventkit.ingest('qs.ev', '{"type": "track", "messageId": "m1", "event": "Paid", "properties": {"amount": 2}}');
RESET ROLE;
SELECT message_id, payload->'properties' AS properties, raw, reasons->0->>'reason' AS reason
  FROM eventkit.quarantine q JOIN eventkit.streams s USING (stream_id)
 WHERE s.relid = 'qs.ev'::regclass ORDER BY quarantine_id;
SELECT stream, quarantined, in_quarantine FROM eventkit.stream_stats ORDER BY stream_id;

-- the owner replays after fixing the plan: m2 is stored, the rest stay
SET ROLE q_owner;
SELECT eventkit.create_plan('q_plan', '{"events": {"Paid": {}}}');
SELECT * FROM eventkit.replay_quarantine('qs.ev');
SELECT message_id FROM qs.ev ORDER BY 1;
RESET ROLE;

-- discarding: only the owner (or a member), filters combine, the count comes back
SET ROLE q_other;
SELECT eventkit.discard_quarantine('qs.ev');
RESET ROLE;
SET ROLE q_member;
SELECT eventkit.discard_quarantine('qs.ev', reasons => '{not_an_object}');
SELECT eventkit.discard_quarantine('qs.ev', reasons => '{malformed_json}', older_than => '1 hour');
SELECT eventkit.discard_quarantine('qs.ev', ids => (SELECT array_agg(quarantine_id) FROM eventkit.quarantine
                                                     WHERE message_id = 'm1'),
                                   reasons => '{malformed_json}');
SELECT eventkit.discard_quarantine('qs.ev', ids => (SELECT array_agg(quarantine_id) FROM eventkit.quarantine
                                                     WHERE message_id = 'm1'));
SELECT message_id, raw FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT eventkit.discard_quarantine('qs.ev', older_than => '0');
SELECT count(*) AS left_in_quarantine FROM eventkit.quarantine;
SELECT eventkit.discard_quarantine('qs.ev', older_than => '-1 day');
SELECT eventkit.discard_quarantine(NULL);
RESET ROLE;
SELECT eventkit.discard_quarantine('pg_class');
-- the other stream's quarantine is untouched
SELECT count(*) AS other_stream_rows FROM eventkit.quarantine q JOIN eventkit.streams s USING (stream_id)
 WHERE s.relid = 'qs.other_ev'::regclass;

-- conflicts belong to the stream's owner as its quarantine does: the owner
-- and a member read the stream's, nobody else but superusers.  On a Citus
-- coordinator worker_conflicts lists the workers' (the owner's only, anyone
-- else refused) and worker_ingest_batches the workers' batch logs (who may
-- read ingest_batches only); without Citus they have no rows, as the other
-- worker_* functions.  forget_user_on_worker, forget_user's part on a
-- Citus worker, refuses to run here.
SET ROLE q_writer;
SELECT conflicts FROM eventkit.ingest('qs.ev', '{"type": "track", "messageId": "m3", "userId": "u", "event": "Paid", "properties": {"amount": 30}}');
SELECT count(*) AS writer_sees_conflicts FROM eventkit.conflicts;
RESET ROLE;
SET ROLE q_owner;
SELECT message_id, payload->'properties' AS properties FROM eventkit.conflicts;
SELECT count(*) AS owner_worker_conflicts FROM eventkit.worker_conflicts('qs.ev');
SELECT count(*) FROM eventkit.worker_ingest_batches('qs.ev');
SELECT * FROM eventkit.forget_user_on_worker('qs.ev', '{u}', 1);
RESET ROLE;
SET ROLE q_member;
SELECT count(*) AS member_sees_conflicts FROM eventkit.conflicts;
SELECT count(*) AS member_worker_conflicts FROM eventkit.worker_conflicts('qs.ev');
RESET ROLE;
SET ROLE q_other;
SELECT count(*) AS other_sees_conflicts FROM eventkit.conflicts;
SELECT count(*) FROM eventkit.worker_conflicts('qs.ev');
SELECT * FROM eventkit.forget_user_on_worker('qs.ev', '{u}', 1);
RESET ROLE;
SELECT count(*) AS superuser_worker_batches FROM eventkit.worker_ingest_batches('qs.ev');
SELECT count(*) FROM eventkit.worker_conflicts(NULL);
SELECT * FROM eventkit.forget_user_on_worker('qs.ev', NULL, 1);

SELECT eventkit.drop_stream('qs.ev');
SELECT eventkit.drop_stream('qs.other_ev');
DROP SCHEMA qs CASCADE;
DROP EXTENSION eventkit;
DROP ROLE q_member;
DROP ROLE q_owner;
DROP ROLE q_writer;
DROP ROLE q_reader;
DROP ROLE q_other;
