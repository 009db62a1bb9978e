-- The identity stage's cache of known links keeps the heap tid of each
-- cached id's row (pipeline/identity.c): a read of a cached id goes to that
-- tuple and takes it only if it is still the version the read's snapshot
-- sees, with the same key (catalog/identity.c, fetch_hinted).  Each case
-- below leaves a stale tid in this backend's cache (or flushes it) between
-- two batches: a set re-pointed by a merge (the losing set's members are
-- updated by SQL, their cached tids now name dead versions), rows re-timed
-- twice (the tid of the first update's version), VACUUM FULL of
-- identity_links (every tuple moves), an aborted transaction and an aborted
-- subtransaction (the versions they wrote are dead), a row updated by hand.
-- The same batches go into a second stream, each from a fresh backend (no
-- cache); both graphs must be the same after every batch (a wrong read
-- may be healed by a later batch: the graphs are kept after each).  (Another session's updates
-- between two batches of this backend: isolation spec identity_tid.)
CREATE EXTENSION eventkit;
CREATE FUNCTION idev(mid text, anon text, uid text, ts text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('type', 'identify', 'messageId', mid,
                            'anonymousId', anon, 'userId', uid, 'timestamp', ts)
$$;
-- the graph of stream s after its batch n
CREATE TABLE tid_graphs (stream text, n int, id text, canonical_id text,
						 first_seen timestamptz, last_seen timestamptz);
-- batch n of the sequence, into stream s; returns the events accepted
CREATE FUNCTION tid_batch(s text, n int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  a int;
BEGIN
  SELECT accepted::int INTO a FROM eventkit.ingest(s::regclass, CASE n
    WHEN 1 THEN jsonb_build_array(idev('b1-1', 'a1', 'u1', '2026-01-01T10:00:00Z'),
                                  idev('b1-2', 'a2', 'u2', '2026-01-01T10:00:00Z'))
    -- a3 joins u1, then links u2's set: u1's (larger) wins; a2 re-pointed by SQL
    WHEN 2 THEN jsonb_build_array(idev('b2-1', 'a3', 'u1', '2026-01-01T11:00:00Z'),
                                  idev('b2-2', 'a3', 'u2', '2026-01-01T11:00:00Z'))
    -- a2 (cached under u2, at its dead version) links a new user u4
    WHEN 3 THEN jsonb_build_array(idev('b3-1', 'a2', 'u4', '2026-01-01T12:00:00Z'))
    -- a1 re-timed twice: the second read's tid is the first update's version
    WHEN 4 THEN jsonb_build_array(idev('b4-1', 'a1', 'u1', '2026-01-03T10:00:00Z'))
    WHEN 5 THEN jsonb_build_array(idev('b5-1', 'a1', 'u1', '2026-01-05T10:00:00Z'))
    -- after VACUUM FULL
    WHEN 6 THEN jsonb_build_array(idev('b6-1', 'a2', 'u1', '2026-01-07T10:00:00Z'),
                                  idev('b6-2', 'a6', 'u6', '2026-01-07T10:00:00Z'))
    -- rolled back: a new set merged into u1's, a1 and u6 re-timed
    WHEN 7 THEN jsonb_build_array(idev('b7-1', 'a5', 'u5', '2026-01-09T10:00:00Z'),
                                  idev('b7-2', 'a1', 'u5', '2026-01-09T10:00:00Z'),
                                  idev('b7-3', 'a6', 'u6', '2026-01-09T10:00:00Z'))
    WHEN 8 THEN jsonb_build_array(idev('b8-1', 'a1', 'u1', '2026-01-09T12:00:00Z'),
                                  idev('b8-2', 'a6', 'u6', '2026-01-11T10:00:00Z'))
    -- rolled back to a savepoint: u6's set merged into u1's
    WHEN 9 THEN jsonb_build_array(idev('b9-1', 'a6', 'u1', '2026-01-13T10:00:00Z'))
    WHEN 10 THEN jsonb_build_array(idev('b10-1', 'a6', 'u6', '2026-01-13T10:00:00Z'),
                                   idev('b10-2', 'a3', 'u1', '2026-01-13T10:00:00Z'))
    -- after a3's row was updated by hand
    WHEN 11 THEN jsonb_build_array(idev('b11-1', 'a3', 'u1', '2026-01-15T10:00:00Z'),
                                   idev('b11-2', 'a3', 'u7', '2026-01-15T10:00:00Z'))
  END, '2026-01-20 00:00:00+00');
  INSERT INTO tid_graphs
  SELECT s, n, id, canonical_user_id, first_seen, last_seen
    FROM eventkit.identities WHERE stream = s::regclass;
  RETURN a;
END
$$;
SELECT eventkit.create_stream('public.ev') IS NOT NULL AS created;
SELECT eventkit.create_stream('public.ev_fresh') IS NOT NULL AS created;

-- one backend, its cache warm from batch to batch
SELECT tid_batch('ev', 1);
SELECT tid_batch('ev', 2);
SELECT tid_batch('ev', 3);
SELECT tid_batch('ev', 4);
SELECT tid_batch('ev', 5);
VACUUM FULL eventkit.identity_links;
SELECT tid_batch('ev', 6);
BEGIN;
SELECT tid_batch('ev', 7);
ROLLBACK;
SELECT tid_batch('ev', 8);
BEGIN;
SAVEPOINT sp;
SELECT tid_batch('ev', 9);
ROLLBACK TO SAVEPOINT sp;
SELECT tid_batch('ev', 10);
COMMIT;
UPDATE eventkit.identity_links SET last_seen = '2026-01-14 00:00:00+00'
 WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'ev'::regclass) AND id = 'a3';
SELECT tid_batch('ev', 11);

-- the same batches, each from a fresh backend
\c
SELECT tid_batch('ev_fresh', 1);
\c
SELECT tid_batch('ev_fresh', 2);
\c
SELECT tid_batch('ev_fresh', 3);
\c
SELECT tid_batch('ev_fresh', 4);
\c
SELECT tid_batch('ev_fresh', 5);
\c
SELECT tid_batch('ev_fresh', 6);
\c
BEGIN;
SELECT tid_batch('ev_fresh', 7);
ROLLBACK;
\c
SELECT tid_batch('ev_fresh', 8);
\c
BEGIN;
SAVEPOINT sp;
SELECT tid_batch('ev_fresh', 9);
ROLLBACK TO SAVEPOINT sp;
SELECT tid_batch('ev_fresh', 10);
COMMIT;
\c
UPDATE eventkit.identity_links SET last_seen = '2026-01-14 00:00:00+00'
 WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'ev_fresh'::regclass) AND id = 'a3';
\c
SELECT tid_batch('ev_fresh', 11);

-- the graph, and no difference between the two streams' graphs
SELECT id, canonical_user_id, first_seen, last_seen FROM eventkit.identities
 WHERE stream = 'ev'::regclass ORDER BY id;
-- the batches after which the two graphs differ (none)
SELECT n, count(*) AS differences FROM (
  (SELECT n, id, canonical_id, first_seen, last_seen FROM tid_graphs WHERE stream = 'ev'
   EXCEPT SELECT n, id, canonical_id, first_seen, last_seen FROM tid_graphs WHERE stream = 'ev_fresh')
  UNION ALL
  (SELECT n, id, canonical_id, first_seen, last_seen FROM tid_graphs WHERE stream = 'ev_fresh'
   EXCEPT SELECT n, id, canonical_id, first_seen, last_seen FROM tid_graphs WHERE stream = 'ev')) d
 GROUP BY n ORDER BY n;
SELECT stream, count(DISTINCT n) AS batches_kept, count(*) AS rows_kept
  FROM tid_graphs GROUP BY stream ORDER BY stream;
-- flat: every id names a canonical id without a row of its own
SELECT count(*) AS not_flat FROM eventkit.identity_links l
 WHERE EXISTS (SELECT 1 FROM eventkit.identity_links c
				WHERE c.stream_id = l.stream_id AND c.id = l.canonical_id AND c.canonical_id <> c.id);
-- a canonical id has no row of its own (since 1.9)
SELECT count(*) AS self_rows FROM eventkit.identity_links WHERE id = canonical_id;

SELECT eventkit.drop_stream('ev');
SELECT eventkit.drop_stream('ev_fresh');
DROP EXTENSION eventkit;
DROP FUNCTION tid_batch(text, int);
DROP TABLE tid_graphs;
DROP FUNCTION idev(text, text, text, text);
