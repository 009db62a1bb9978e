-- The identity graph kept at ingest: anonymous -> user, alias of alias,
-- two anonymous ids merging into one user, a link arriving after the events
-- it resolves, identify with only a userId, resolve_user of an unknown id,
-- who reads the graph, and drop_stream's cleanup.
CREATE EXTENSION eventkit;
CREATE ROLE id_owner;
CREATE ROLE id_reader;
CREATE ROLE id_view_reader;
CREATE ROLE id_other;
CREATE SCHEMA ids AUTHORIZATION id_owner;
GRANT USAGE ON SCHEMA ids TO id_reader, id_view_reader, id_other;

SET ROLE id_owner;
SELECT eventkit.create_stream('ids.ev');
-- the resolved view belongs to the stream's owner
SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c WHERE c.oid = 'ids.ev_resolved'::regclass;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'ids.ev_resolved'::regclass AND attnum > 0 ORDER BY attnum DESC LIMIT 2;

-- an anonymous visitor browses, then identifies: both ids are linked
SELECT * FROM eventkit.ingest('ids.ev', '[
  {"type": "page", "messageId": "p1", "anonymousId": "anon-1", "name": "Home", "timestamp": "2026-01-01T10:00:00Z"},
  {"type": "track", "messageId": "t1", "anonymousId": "anon-1", "event": "Viewed", "timestamp": "2026-01-01T10:01:00Z"},
  {"type": "identify", "messageId": "i1", "anonymousId": "anon-1", "userId": "alice", "timestamp": "2026-01-01T10:02:00Z"},
  {"type": "track", "messageId": "t2", "userId": "alice", "event": "Bought", "timestamp": "2026-01-01T10:03:00Z"}
]', '2026-01-01T10:05:00Z');
SELECT stream, id, canonical_user_id, first_seen, last_seen FROM eventkit.identities ORDER BY id;
SELECT message_id, user_id, anonymous_id, resolved_user_id FROM ids.ev_resolved ORDER BY message_id;
SELECT eventkit.resolve_user('ids.ev', 'anon-1') AS anon_1, eventkit.resolve_user('ids.ev', 'alice') AS alice;

-- identify with only a userId: no link, the user resolves to itself
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "i2", "userId": "bob", "traits": {"plan": "pro"}, "timestamp": "2026-01-01T11:00:00Z"}', '2026-01-01T11:00:00Z');
SELECT count(*) AS bob_links FROM eventkit.identities WHERE id = 'bob';
SELECT message_id, resolved_user_id FROM ids.ev_resolved WHERE message_id = 'i2';
-- an id no event linked resolves to itself (never NULL)
SELECT eventkit.resolve_user('ids.ev', 'nobody') AS unknown;

-- two anonymous ids (two devices) merge into one user
SELECT * FROM eventkit.ingest('ids.ev', '[
  {"type": "track", "messageId": "c1", "anonymousId": "phone-1", "event": "Opened", "timestamp": "2026-01-02T09:00:00Z"},
  {"type": "track", "messageId": "c2", "anonymousId": "laptop-1", "event": "Opened", "timestamp": "2026-01-02T09:05:00Z"},
  {"type": "identify", "messageId": "c3", "anonymousId": "phone-1", "userId": "carol", "timestamp": "2026-01-02T09:10:00Z"}
]', '2026-01-02T09:30:00Z');
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c4", "anonymousId": "laptop-1", "userId": "carol", "timestamp": "2026-01-02T09:20:00Z"}', '2026-01-02T09:30:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'carol' ORDER BY id;
SELECT count(DISTINCT user_key) AS raw_users, count(DISTINCT resolved_user_id) AS resolved_users
  FROM ids.ev_resolved WHERE message_id LIKE 'c%';

-- a link arriving after the events it resolves: the view resolves them at once
SELECT * FROM eventkit.ingest('ids.ev', '[
  {"type": "track", "messageId": "l1", "anonymousId": "late-anon", "event": "Viewed", "timestamp": "2026-01-03T08:00:00Z"},
  {"type": "track", "messageId": "l2", "anonymousId": "late-anon", "event": "Viewed", "timestamp": "2026-01-03T08:01:00Z"}
]', '2026-01-03T08:05:00Z');
SELECT message_id, resolved_user_id FROM ids.ev_resolved WHERE message_id LIKE 'l%' ORDER BY 1;
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "track", "messageId": "l3", "anonymousId": "late-anon", "userId": "dave", "event": "Signed Up", "timestamp": "2026-01-03T09:00:00Z"}', '2026-01-03T09:05:00Z');
SELECT message_id, resolved_user_id FROM ids.ev_resolved WHERE message_id LIKE 'l%' ORDER BY 1;

-- alias of alias: x -> y, then y -> z: x, y and everything linked to them resolve to z
SELECT * FROM eventkit.ingest('ids.ev', '[
  {"type": "identify", "messageId": "a0", "anonymousId": "anon-x", "userId": "user-x", "timestamp": "2026-01-04T08:00:00Z"},
  {"type": "alias", "messageId": "a1", "previousId": "user-x", "userId": "user-y", "timestamp": "2026-01-04T09:00:00Z"}
]', '2026-01-04T10:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE id IN ('anon-x', 'user-x', 'user-y') ORDER BY id;
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "alias", "messageId": "a2", "previousId": "user-y", "userId": "user-z", "timestamp": "2026-01-04T11:00:00Z"}', '2026-01-04T12:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE id IN ('anon-x', 'user-x', 'user-y', 'user-z') ORDER BY id;
SELECT message_id, user_id, resolved_user_id FROM ids.ev_resolved WHERE message_id LIKE 'a%' ORDER BY 1;
-- an alias re-points its previousId's whole set: alice's set joins user-z's
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "alias", "messageId": "a3", "previousId": "alice", "userId": "user-z", "timestamp": "2026-01-04T13:00:00Z"}', '2026-01-04T13:00:00Z');
SELECT eventkit.resolve_user('ids.ev', 'anon-1') AS anon_1, eventkit.resolve_user('ids.ev', 'alice') AS alice;
-- a link carrying both ids merges two sets: the larger one's user stays canonical
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "m1", "anonymousId": "anon-x", "userId": "carol", "timestamp": "2026-01-05T08:00:00Z"}', '2026-01-05T08:00:00Z');
SELECT canonical_user_id, count(*) FROM eventkit.identities GROUP BY 1 ORDER BY 1;
-- an alias wins over set sizes: user-z's large set joins erin, a new user
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "alias", "messageId": "a4", "previousId": "user-z", "userId": "erin", "timestamp": "2026-01-05T09:00:00Z"}', '2026-01-05T09:00:00Z');
SELECT canonical_user_id, count(*) FROM eventkit.identities GROUP BY 1 ORDER BY 1;
SELECT eventkit.resolve_user('ids.ev', 'phone-1') AS phone_1, eventkit.resolve_user('ids.ev', 'user-x') AS user_x;
-- a link the graph already holds, seen within a day of what is recorded:
-- nothing written; over a day earlier: first_seen moves back
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c5", "anonymousId": "phone-1", "userId": "carol", "timestamp": "2026-01-02T09:00:00Z"}', '2026-01-02T09:30:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities WHERE id = 'phone-1';
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c6", "anonymousId": "phone-1", "userId": "carol", "timestamp": "2025-12-31T07:00:00Z"}', '2026-01-02T09:30:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities WHERE id = 'phone-1';
-- eventkit.identity_time_step (superuser; a day by default): a link within the
-- step of the recorded times writes nothing; past it, last_seen moves
SET eventkit.identity_time_step = '3d';
RESET ROLE;
SET eventkit.identity_time_step = '3d';
SET ROLE id_owner;
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c7", "anonymousId": "phone-1", "userId": "carol", "timestamp": "2026-01-04T09:00:00Z"}', '2026-01-04T09:30:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities WHERE id = 'phone-1';
RESET ROLE;
RESET eventkit.identity_time_step;
SET ROLE id_owner;
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c8", "anonymousId": "phone-1", "userId": "carol", "timestamp": "2026-01-04T10:00:00Z"}', '2026-01-04T10:30:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities WHERE id = 'phone-1';
-- the graph stays flat: every id names a canonical id without a row of its own
SELECT count(*) AS not_flat FROM eventkit.identity_links l
 WHERE EXISTS (SELECT 1 FROM eventkit.identity_links c
				WHERE c.stream_id = l.stream_id AND c.id = l.canonical_id AND c.canonical_id <> c.id);
-- a canonical id has no row of its own (since 1.9)
SELECT count(*) AS self_rows FROM eventkit.identity_links WHERE id = canonical_id;
-- re-sent links change nothing; a duplicate is not linked again
SELECT * FROM eventkit.ingest('ids.ev', '{"type": "identify", "messageId": "c4", "anonymousId": "laptop-1", "userId": "carol", "timestamp": "2026-01-02T09:20:00Z"}', '2026-01-02T09:30:00Z');
SELECT id, last_seen FROM eventkit.identities WHERE id = 'laptop-1';

-- who reads the graph: the stream's readers, and the resolved view's readers
GRANT SELECT ON ids.ev TO id_reader;
GRANT SELECT ON ids.ev_resolved TO id_view_reader;
RESET ROLE;
SET ROLE id_reader;
SELECT count(*) AS identities_seen FROM eventkit.identities;
SELECT eventkit.resolve_user('ids.ev', 'laptop-1');
RESET ROLE;
SET ROLE id_view_reader;
-- (through the view only; the view reads the links with its owner's rights)
SELECT message_id, resolved_user_id FROM ids.ev_resolved WHERE message_id IN ('c2', 'l1') ORDER BY 1;
SELECT count(*) AS identities_seen FROM eventkit.identities;
SELECT eventkit.resolve_user('ids.ev', 'laptop-1');
RESET ROLE;
SET ROLE id_other;
SELECT count(*) AS identities_seen FROM eventkit.identities;
SELECT count(*) AS links_seen FROM eventkit.identity_links;
SELECT eventkit.resolve_user('ids.ev', 'laptop-1');
SELECT * FROM ids.ev_resolved;
RESET ROLE;

-- not a stream
CREATE TABLE ids.plain (x int);
SELECT eventkit.resolve_user('ids.plain', 'x');

-- drop_stream drops the view and forgets the links
SET ROLE id_owner;
SELECT eventkit.drop_stream('ids.ev');
RESET ROLE;
SELECT to_regclass('ids.ev_resolved') AS view_left, count(*) AS links_left FROM eventkit.identity_links;
-- a plain DROP TABLE forgets them too: the view goes with the stream, as an index would
SET ROLE id_owner;
SELECT eventkit.create_stream('ids.ev2');
SELECT * FROM eventkit.ingest('ids.ev2', '{"type": "identify", "messageId": "x1", "anonymousId": "a", "userId": "u"}');
SELECT refobjid::regclass, deptype, count(*) > 0 AS some FROM pg_depend
 WHERE classid = 'pg_class'::regclass AND objid = 'ids.ev2_resolved'::regclass
   AND refclassid = 'pg_class'::regclass
 GROUP BY 1, 2 ORDER BY 1::text, 2;
DROP TABLE ids.ev2;
RESET ROLE;
SELECT to_regclass('ids.ev2_resolved') AS view_left, count(*) AS links_left FROM eventkit.identity_links;

-- since 1.9 a canonical id has no row of its own: identities lists it with
-- its set's first and latest times; a merge that re-points it gives it a row
SET ROLE id_owner;
SELECT eventkit.create_stream('ids.ev3');
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k1", "anonymousId": "k-a1", "userId": "k-u1", "timestamp": "2026-02-01T10:00:00Z"}', '2026-02-01T10:00:00Z');
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k2", "anonymousId": "k-a2", "userId": "k-u1", "timestamp": "2026-02-03T10:00:00Z"}', '2026-02-03T10:00:00Z');
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k3", "anonymousId": "k-b1", "userId": "k-u2", "timestamp": "2026-02-02T10:00:00Z"}', '2026-02-02T10:00:00Z');
SELECT l.id, l.canonical_id, l.first_seen, l.last_seen FROM eventkit.identity_links l
  JOIN eventkit.streams s USING (stream_id) WHERE s.relid = 'ids.ev3'::regclass ORDER BY l.id;
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities
 WHERE stream = 'ids.ev3'::regclass ORDER BY id;
SELECT eventkit.resolve_user('ids.ev3', 'k-u1') AS u1, eventkit.resolve_user('ids.ev3', 'k-a2') AS a2;
-- k-b1 links to k-u1: k-u1's set (3) is larger than k-u2's (2), so k-u2,
-- which has no row, is re-pointed: it gets a row naming k-u1
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k4", "anonymousId": "k-b1", "userId": "k-u1", "timestamp": "2026-02-05T10:00:00Z"}', '2026-02-05T10:00:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities
 WHERE stream = 'ids.ev3'::regclass ORDER BY id;
SELECT message_id, resolved_user_id FROM ids.ev3_resolved ORDER BY message_id;
-- an alias re-points a canonical id without a row, linked by the batch
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "alias", "messageId": "k5", "previousId": "k-u1", "userId": "k-w", "timestamp": "2026-02-06T10:00:00Z"}', '2026-02-06T10:00:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities
 WHERE stream = 'ids.ev3'::regclass ORDER BY id;
-- a canonical id without a row linked as an anonymousId: its set merges
SELECT * FROM eventkit.ingest('ids.ev3', '[
  {"type": "identify", "messageId": "k6", "anonymousId": "k-c1", "userId": "k-v", "timestamp": "2026-02-07T10:00:00Z"},
  {"type": "identify", "messageId": "k7", "anonymousId": "k-c2", "userId": "k-v", "timestamp": "2026-02-07T10:00:00Z"}
]', '2026-02-07T10:00:00Z');
-- (a subtransaction that rolls back flushes this backend's cache: k-v is read)
DO $$ BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN NULL; END $$;
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k8", "anonymousId": "k-v", "userId": "k-x", "timestamp": "2026-02-08T10:00:00Z"}', '2026-02-08T10:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities
 WHERE stream = 'ids.ev3'::regclass AND id LIKE ANY (ARRAY['k-c%', 'k-v', 'k-x']) ORDER BY id;
-- rows stored before 1.9 (a canonical id's own row) are accepted: k-old's
-- set, stored the old way, loses to k-w's larger set
RESET ROLE;
INSERT INTO eventkit.identity_links (stream_id, id, canonical_id, first_seen, last_seen)
SELECT s.stream_id, x.id, 'k-old', '2026-01-01', '2026-01-01'
  FROM eventkit.streams s, (VALUES ('k-old'), ('k-old-a')) AS x(id) WHERE s.relid = 'ids.ev3'::regclass;
SET ROLE id_owner;
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k9", "anonymousId": "k-old-a", "userId": "k-w", "timestamp": "2026-02-09T10:00:00Z"}', '2026-02-09T10:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities
 WHERE stream = 'ids.ev3'::regclass AND id LIKE 'k-old%' ORDER BY id;
SELECT count(*) AS not_flat FROM eventkit.identity_links l
 WHERE EXISTS (SELECT 1 FROM eventkit.identity_links c
				WHERE c.stream_id = l.stream_id AND c.id = l.canonical_id AND c.canonical_id <> c.id);
-- forget_user of a canonical id without a row erases its whole set
SELECT * FROM eventkit.ingest('ids.ev3', '{"type": "identify", "messageId": "k10", "anonymousId": "k-f1", "userId": "k-f", "timestamp": "2026-02-10T10:00:00Z"}', '2026-02-10T10:00:00Z');
SELECT eventkit.forget_user('ids.ev3', 'k-f') AS events_erased;
SELECT count(*) AS f_left FROM eventkit.identities WHERE stream = 'ids.ev3'::regclass AND id LIKE 'k-f%';
SELECT id FROM eventkit.suppressions WHERE id LIKE 'k-f%' ORDER BY id;
SELECT eventkit.drop_stream('ids.ev3');
RESET ROLE;

DROP TABLE ids.plain;
DROP SCHEMA ids;
DROP ROLE id_owner, id_reader, id_view_reader, id_other;
DROP EXTENSION eventkit;
