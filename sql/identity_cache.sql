-- The identity stage's per-backend cache of known links
-- (pipeline/identity.c): a link the cache puts in one set writes nothing,
-- and the cache never hides a row that is not there: rows of an aborted
-- transaction or subtransaction, a recreated extension (stream ids start
-- again), forget_user in the same session.  (A merge by another session
-- after this one cached: isolation spec identity_cache.)
CREATE EXTENSION eventkit;
CREATE FUNCTION idev(mid text, anon text, uid text, ts text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('type', 'identify', 'messageId', mid,
                            'anonymousId', anon, 'userId', uid, 'timestamp', ts)::text
$$;
SELECT eventkit.create_stream('public.ev') IS NOT NULL AS created;

-- a known link again, the same day: nothing written (times as before)
SELECT accepted FROM eventkit.ingest('ev', idev('k1', 'anon-k', 'kate', '2026-01-01T10:00:00Z'), '2026-01-01T10:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('k2', 'anon-k', 'kate', '2026-01-01T20:00:00Z'), '2026-01-01T20:00:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities ORDER BY id;
-- two days later: last_seen moves (the cache's times are not enough)
SELECT accepted FROM eventkit.ingest('ev', idev('k3', 'anon-k', 'kate', '2026-01-03T10:00:00Z'), '2026-01-03T10:00:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities ORDER BY id;
-- and within a day of that: nothing written again
SELECT accepted FROM eventkit.ingest('ev', idev('k4', 'anon-k', 'kate', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
SELECT id, last_seen FROM eventkit.identities ORDER BY id;

-- links of a rolled-back transaction are not cached as known
BEGIN;
SELECT accepted FROM eventkit.ingest('ev', idev('r1', 'anon-r', 'rita', '2026-01-03T10:00:00Z'), '2026-01-03T10:00:00Z');
SELECT count(*) AS rita_links_inside FROM eventkit.identities WHERE canonical_user_id = 'rita';
ROLLBACK;
SELECT count(*) AS rita_links_after_rollback FROM eventkit.identities WHERE canonical_user_id = 'rita';
SELECT accepted FROM eventkit.ingest('ev', idev('r2', 'anon-r', 'rita', '2026-01-03T10:00:00Z'), '2026-01-03T10:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'rita' ORDER BY id;

-- nor those of a rolled-back subtransaction
BEGIN;
SAVEPOINT sp;
SELECT accepted FROM eventkit.ingest('ev', idev('s1', 'anon-s', 'sam', '2026-01-03T10:00:00Z'), '2026-01-03T10:00:00Z');
ROLLBACK TO SAVEPOINT sp;
SELECT accepted FROM eventkit.ingest('ev', idev('s2', 'anon-s', 'sam', '2026-01-03T10:00:00Z'), '2026-01-03T10:00:00Z');
COMMIT;
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'sam' ORDER BY id;

-- forget_user in this session: the erased ids are suppressed and no link
-- of theirs survives in the graph or in the cache
SELECT eventkit.forget_user('ev', 'sam') AS deleted;
SELECT rejected FROM eventkit.ingest('ev', idev('s3', 'anon-s', 'sam', '2026-01-03T11:00:00Z'), '2026-01-03T11:00:00Z');
SELECT count(*) AS sam_links FROM eventkit.identities WHERE canonical_user_id = 'sam' OR id IN ('sam', 'anon-s');

-- the extension dropped and created again in this session: the stream ids
-- start again, and the cache must not take the new stream's links for the
-- old one's
SELECT stream_id AS old_stream_id FROM eventkit.streams;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('public.ev') IS NOT NULL AS created;
SELECT stream_id AS new_stream_id FROM eventkit.streams;
SELECT accepted FROM eventkit.ingest('ev', idev('k1', 'anon-k', 'kate', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities ORDER BY id;

-- VACUUM and ANALYZE of identity_links (autovacuum's, while a session
-- ingests) write its pg_class row, whose invalidation reaches every
-- backend; they remove no link, and the cache stays.  A row deleted by hand
-- (outside the contract: the cache does not see it) shows whether it did:
-- a cached link writes nothing, so the row stays gone.
SELECT accepted FROM eventkit.ingest('ev', idev('v1', 'anon-v', 'vic', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
DELETE FROM eventkit.identity_links WHERE id = 'anon-v';
ANALYZE eventkit.identity_links;
VACUUM eventkit.identity_links;
SELECT accepted FROM eventkit.ingest('ev', idev('v2', 'anon-v', 'vic', '2026-01-03T13:00:00Z'), '2026-01-03T13:00:00Z');
SELECT count(*) AS vic_rows_cache_kept FROM eventkit.identity_links WHERE id = 'anon-v';
-- a rename (run.sh's way to turn the stage off) keeps it too
ALTER TABLE eventkit.identity_links RENAME TO identity_links_off;
ALTER TABLE eventkit.identity_links_off RENAME TO identity_links;
SELECT accepted FROM eventkit.ingest('ev', idev('v3', 'anon-v', 'vic', '2026-01-03T14:00:00Z'), '2026-01-03T14:00:00Z');
SELECT count(*) AS vic_rows_after_rename FROM eventkit.identity_links WHERE id = 'anon-v';
-- the table in another file (VACUUM FULL, CLUSTER; TRUNCATE) flushes it:
-- the link is read again, and its row written
VACUUM FULL eventkit.identity_links;
SELECT accepted FROM eventkit.ingest('ev', idev('v4', 'anon-v', 'vic', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'vic' ORDER BY id;
TRUNCATE eventkit.identity_links;
SELECT accepted FROM eventkit.ingest('ev', idev('v5', 'anon-v', 'vic', '2026-01-03T16:00:00Z'), '2026-01-03T16:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'vic' ORDER BY id;
-- and so does TRUNCATE in the transaction that cached, even of a table
-- created by it (emptied in place, in its own file)
BEGIN;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('public.ev') IS NOT NULL AS created;
SELECT accepted FROM eventkit.ingest('ev', idev('w1', 'anon-w', 'wes', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
TRUNCATE eventkit.identity_links;
SELECT accepted FROM eventkit.ingest('ev', idev('w2', 'anon-w', 'wes', '2026-01-03T13:00:00Z'), '2026-01-03T13:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id = 'wes' ORDER BY id;
COMMIT;

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
DROP FUNCTION idev(text, text, text, text);
