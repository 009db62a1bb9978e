-- The identity stage reads the rows of a batch's ids that its cache cannot
-- answer by probing eventkit.identity_links' primary key, and probes
-- identity_links_canonical for the new anonymous ids (are they the
-- canonical id of stored members?), in the ids' order with one descent of
-- the index for the ids that fall on one leaf page (catalog/identity.c,
-- probe_ids; util/btree_probe.c): an id is searched on the leaf the
-- previous one was searched on when it is below that leaf's high key.  An
-- id whose entries may go on past the leaf it was searched on (a canonical
-- id of thousands of members: its entries in identity_links_canonical span
-- leaves) is probed with an index scan.  Each case reads from a fresh
-- backend (\c: an empty cache, no speculation), so that every id is probed.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('pr') IS NOT NULL AS created;

-- 1,250 anonymous ids (39 characters), each linked to its own user: the
-- primary key's entries fill several leaf pages
SELECT accepted FROM eventkit.ingest('pr', (
  SELECT jsonb_agg(jsonb_build_object('type', 'identify', 'messageId', 'l1-' || i,
                                      'anonymousId', 'k' || lpad(i::text, 4, '0') || '-' || md5(i::text) || 'a',
                                      'userId', 'u' || lpad(i::text, 4, '0'),
                                      'timestamp', '2026-01-01T10:00:00Z') ORDER BY i)
    FROM generate_series(1, 1250) i), '2026-01-01T12:00:00Z');
SELECT pg_relation_size('eventkit.identity_links_pkey') /
       current_setting('block_size')::int >= 8 AS pkey_of_many_leaves;

-- A fresh backend: the batch re-links every stored anonymous id (the same
-- day: nothing to write for those) and links a new one to each user.  In
-- the ids' order a stored id (k...a) and an absent one (k...b) alternate,
-- over every leaf, and the users (u..., without rows) come after them: a
-- stored id read as absent would be inserted again (a unique violation);
-- an absent id read as stored cannot be (each row taken is checked to
-- have the id probed).
\c
SELECT accepted FROM eventkit.ingest('pr', (
  SELECT jsonb_agg(jsonb_build_object('type', 'identify', 'messageId', 'l2' || k || '-' || i,
                                      'anonymousId', 'k' || lpad(i::text, 4, '0') || '-' || md5(i::text) || k,
                                      'userId', 'u' || lpad(i::text, 4, '0'),
                                      'timestamp', '2026-01-01T11:00:00Z') ORDER BY i, k)
    FROM generate_series(1, 1250) i, unnest(ARRAY['a', 'b']) k), '2026-01-01T12:00:00Z');
-- every anonymous id resolves to its user; the stored ones were not re-timed
SELECT count(*) AS rows,
       count(*) FILTER (WHERE substr(id, 2, 4) = substr(canonical_id, 2)) AS to_their_user,
       count(*) FILTER (WHERE id LIKE '%a' AND last_seen = '2026-01-01T10:00:00Z') AS a_untouched
  FROM eventkit.identity_links;

-- A canonical id of 2,400 members ('big'): its entries in
-- identity_links_canonical (posting lists of 6-byte tids) fill more than
-- a leaf page.
SELECT accepted FROM eventkit.ingest('pr', (
  SELECT jsonb_agg(jsonb_build_object('type', 'identify', 'messageId', 'l3-' || i,
                                      'anonymousId', 'm' || lpad(i::text, 4, '0'),
                                      'userId', 'big',
                                      'timestamp', '2026-01-02T10:00:00Z') ORDER BY i)
    FROM generate_series(1, 2400) i), '2026-01-02T12:00:00Z');
SELECT count(*) AS big_members FROM eventkit.identity_links WHERE canonical_id = 'big';

-- A fresh backend links 'big' as an anonymous id to a new user, beside new
-- anonymous ids whose probes share the canonical index's leaves: 'big' is
-- the canonical id of stored members, so the link merges the two sets (the
-- larger, big's, wins: x1 gets a row naming it, big none).  Read as not
-- canonical, 'big' would get a row naming x1 and its members would still
-- name it: the graph not flat.
\c
SELECT accepted FROM eventkit.ingest('pr', jsonb_build_array(
  jsonb_build_object('type', 'identify', 'messageId', 'l4-1', 'anonymousId', 'big',
                     'userId', 'x1', 'timestamp', '2026-01-02T11:00:00Z'),
  jsonb_build_object('type', 'identify', 'messageId', 'l4-2', 'anonymousId', 'bia',
                     'userId', 'x2', 'timestamp', '2026-01-02T11:00:00Z'),
  jsonb_build_object('type', 'identify', 'messageId', 'l4-3', 'anonymousId', 'bih',
                     'userId', 'x3', 'timestamp', '2026-01-02T11:00:00Z')),
  '2026-01-02T12:00:00Z');
SELECT eventkit.resolve_user('pr', 'x1') AS x1, eventkit.resolve_user('pr', 'm0001') AS m0001,
       eventkit.resolve_user('pr', 'big') AS big, eventkit.resolve_user('pr', 'bia') AS bia;
SELECT id, canonical_id FROM eventkit.identity_links
 WHERE id IN ('big', 'x1', 'bia', 'bih') ORDER BY id;
SELECT count(*) AS not_flat FROM eventkit.identity_links l
  JOIN eventkit.identity_links c ON c.stream_id = l.stream_id AND c.id = l.canonical_id
 WHERE c.id <> c.canonical_id;

SELECT eventkit.drop_stream('pr');
DROP EXTENSION eventkit;
