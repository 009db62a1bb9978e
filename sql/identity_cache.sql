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

-- ids that share a key (a test setting keeps none of its 64 bits: one key
-- for every id): the cache compares the ids' bytes, so it never answers for
-- another id.  Two new ids are linked after another link was cached under
-- that key: written
SET eventkit.testing_identity_key_bits = 0;
SELECT accepted FROM eventkit.ingest('ev', idev('x1', 'anon-x', 'xena', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('y1', 'anon-y', 'yann', '2026-01-03T12:00:00Z'), '2026-01-03T12:00:00Z');
-- the first link again (its entry replaced): read, nothing written twice;
-- then an alias joining the two sets, its ids under one key too
SELECT accepted FROM eventkit.ingest('ev', idev('x2', 'anon-x', 'xena', '2026-01-03T13:00:00Z'), '2026-01-03T13:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', jsonb_build_object('type', 'alias', 'messageId', 'a1', 'previousId', 'yann', 'userId', 'xena', 'timestamp', '2026-01-03T14:00:00Z')::text, '2026-01-03T14:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities WHERE canonical_user_id IN ('xena', 'yann') ORDER BY id;
SELECT count(*) AS links_xy FROM eventkit.identity_links WHERE id IN ('anon-x', 'anon-y', 'xena', 'yann');
-- the ids' bytes are compared in the entry (1.11: short ids and UUIDs
-- inline, longer ids by pointer): each pair below shares the key, and its
-- second id, cached under no other, is linked to the first while the one
-- entry under the key is the first's; it must get its own row.  A short
-- id, a UUID differing in its last digit, the same UUID in uppercase (another
-- id), and two long ids alike in their first 28 bytes
SELECT accepted FROM eventkit.ingest('ev', idev('p1', '-p1', 'zq1', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p2', 'zq2', 'zq1', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p3', '-p3', '9a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6a', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p4', '9a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6b', '9a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6a', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p5', '-p5', '7b4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6a', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p6', '7B4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', '7b4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6a', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p7', '-p7', 'user-with-a-long-identifier-0001', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p8', 'user-with-a-long-identifier-0002', 'user-with-a-long-identifier-0001', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
-- and a UUID's text with one letter in the other case, or a non-hex character
-- ('g', read as a 0 digit were it taken for hex): kept as text, other ids
SELECT accepted FROM eventkit.ingest('ev', idev('p9', '-p9', '5C4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p10', '5c4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', '5C4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p11', '-p11', '3a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b60', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT accepted FROM eventkit.ingest('ev', idev('p12', '3a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6g', '3a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b60', '2026-01-03T15:00:00Z'), '2026-01-03T15:00:00Z');
SELECT id, canonical_user_id FROM eventkit.identities
WHERE id IN ('zq2', '9a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6b',
             '7B4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', 'user-with-a-long-identifier-0002',
             '5c4E0C4E-5B6F-4E2A-8D3C-1F2E3D4C5B6A', '3a4e0c4e-5b6f-4e2a-8d3c-1f2e3d4c5b6g')
ORDER BY id;
RESET eventkit.testing_identity_key_bits;

-- a cache of more than 14,746 entries grows its array to 32,768 entries
-- (2 MB: since 1.16 mapped on huge pages, pipeline/identity_cache.c): 16,000
-- links, 2,000 a batch; the same links two days later (re-timed, read at
-- the cached tids); a rolled-back batch (its flush unmaps the array); the
-- links again within a day (read from the graph: nothing written)
CREATE FUNCTION bigbatch(tag text, b int, ts text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_agg(idev(tag || i, 'anon-big-' || i, 'big-' || i, ts)::jsonb)::text
    FROM generate_series(b * 2000, b * 2000 + 1999) i
$$;
SELECT sum(r.accepted) AS accepted
  FROM generate_series(0, 7) b,
       LATERAL eventkit.ingest('ev', bigbatch('m1-', b, '2026-02-01T10:00:00Z'), '2026-02-01T10:00:00Z') r;
SELECT sum(r.accepted) AS accepted
  FROM generate_series(0, 7) b,
       LATERAL eventkit.ingest('ev', bigbatch('m2-', b, '2026-02-03T10:00:00Z'), '2026-02-03T10:00:00Z') r;
BEGIN;
SELECT accepted FROM eventkit.ingest('ev', bigbatch('m3-', 0, '2026-02-05T10:00:00Z'), '2026-02-05T10:00:00Z');
ROLLBACK;
SELECT sum(r.accepted) AS accepted
  FROM generate_series(0, 7) b,
       LATERAL eventkit.ingest('ev', bigbatch('m4-', b, '2026-02-03T11:00:00Z'), '2026-02-03T11:00:00Z') r;
SELECT count(*) AS rows, count(DISTINCT canonical_id) AS users, min(first_seen), max(first_seen),
       min(last_seen), max(last_seen)
  FROM eventkit.identity_links WHERE id LIKE 'anon-big-%';
SELECT count(*) AS wrong FROM eventkit.identity_links
 WHERE id LIKE 'anon-big-%' AND canonical_id <> 'big-' || substr(id, 10);
DROP FUNCTION bigbatch(text, int, text);

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
DROP FUNCTION idev(text, text, text, text);
