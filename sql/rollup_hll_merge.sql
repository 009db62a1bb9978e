-- A refresh's merge in C joins a delta group's hashes to a rollup row's hll
-- itself (src/rollup/hll.c, ek_hll_union_hashes) instead of calling the
-- hll extension's hll_union: its bytes must be hll_union's, for every
-- stored format (EMPTY, EXPLICIT, SPARSE, FULL), the switches between them
-- (EXPLICIT past its threshold, SPARSE to FULL by the session's max_sparse),
-- every parameter set (log2m, register width, explicit threshold, sparse
-- on and off), duplicate hashes and hashes the hll already holds.
-- eventkit_internal.rollup_hll_union_hashes(old, hashes, empty) is what the
-- merge writes, NULL where it leaves the group to hll_union; it is compared
-- with hll_union(old, hll_add_agg(hashes)).  Then refreshes of a rollup
-- whose rows go through every format, against a GROUP BY of the stream.
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
SET timezone = 'UTC';
-- a hash as a bigint (no cast from hll_hashval)
CREATE FUNCTION hm_h(x bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS
  'SELECT hll_hash_bigint(x)::text::bigint';

-- the parameter sets: (log2m, regwidth, expthresh, sparseon)
CREATE TABLE hm_params (p int PRIMARY KEY, log2m int, regwidth int, expthresh bigint, sparseon int);
INSERT INTO hm_params VALUES
  (1, 11, 5, -1, 1),   -- the defaults: EXPLICIT up to 160 hashes
  (2, 11, 5, -1, 0),   -- sparse off
  (3, 8, 4, 16, 1),
  (4, 12, 5, 4, 1),
  (5, 4, 5, -1, 1),    -- 16 registers: EXPLICIT up to 1 hash
  (6, 14, 6, -1, 1),
  (7, 9, 3, 2, 0),
  (8, 15, 5, 64, 1),
  (9, 11, 5, 0, 1);    -- no EXPLICIT hll at all: left to hll_union

-- the stored hlls: hll_add_agg of n hashes (n = 0: hll_empty)
CREATE TABLE hm_old (p int, o int, n int, h hll);
INSERT INTO hm_old
SELECT p, o, n,
       CASE WHEN n = 0 THEN hll_empty(log2m, regwidth, expthresh, sparseon)
            ELSE (SELECT hll_add_agg(hll_hash_bigint(o * 1000003 + i), log2m, regwidth, expthresh, sparseon)
                  FROM generate_series(1, n) i) END
FROM hm_params, unnest(ARRAY[0, 1, 2, 4, 15, 16, 17, 63, 64, 65, 159, 160, 161, 300, 700, 2000, 20000])
       WITH ORDINALITY AS x(n, o);

-- the groups' hashes: new ones, duplicates, some the hll holds (the same
-- o * 1000003 + i), a NULL
CREATE TABLE hm_delta (d int PRIMARY KEY, hashes bigint[]);
INSERT INTO hm_delta VALUES
  (1, ARRAY[hm_h(7)]),
  (2, ARRAY[hm_h(7), hm_h(7), NULL, hm_h(8)]),
  (3, (SELECT array_agg(hm_h(500000 + i)) FROM generate_series(1, 3) i)),
  (4, (SELECT array_agg(hm_h(600000 + i)) FROM generate_series(1, 16) i)),
  (5, (SELECT array_agg(hm_h(700000 + i)) FROM generate_series(1, 100) i)),
  (6, (SELECT array_agg(hm_h(800000 + i)) FROM generate_series(1, 161) i)),
  (7, (SELECT array_agg(hm_h(900000 + i % 400)) FROM generate_series(1, 1200) i)),
  (8, (SELECT array_agg(hm_h(2000000 + i)) FROM generate_series(1, 5000) i));

CREATE FUNCTION hm_compare() RETURNS TABLE (p int, old_type int, result_type int, cases bigint,
                                            in_c bigint, differ bigint)
LANGUAGE sql AS $$
  WITH c AS (
    SELECT o.p, o.h, hll_type(o.h) AS old_type,
           -- the delta's hashes, plus (for some) hashes the old hll holds
           CASE WHEN d.d % 2 = 0 AND o.n > 0
                THEN d.hashes || (SELECT array_agg(hm_h(o.o * 1000003 + i))
                                  FROM generate_series(1, least(o.n, 40)) i)
                ELSE d.hashes END AS hashes,
           hll_empty(pa.log2m, pa.regwidth, pa.expthresh, pa.sparseon) AS empty,
           pa.log2m, pa.regwidth, pa.expthresh, pa.sparseon
    FROM hm_old o JOIN hm_params pa USING (p), hm_delta d),
  r AS (
    SELECT c.p, c.old_type,
           eventkit_internal.rollup_hll_union_hashes(c.h, c.hashes, c.empty) AS mine,
           hll_union(c.h, (SELECT hll_add_agg(x::hll_hashval, c.log2m, c.regwidth, c.expthresh, c.sparseon)
                           FROM unnest(c.hashes) x WHERE x IS NOT NULL)) AS theirs
    FROM c)
  SELECT p, old_type, hll_type(theirs), count(*), count(mine),
         count(*) FILTER (WHERE mine IS NOT NULL AND mine::text IS DISTINCT FROM theirs::text)
  FROM r GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
$$;

-- with max_sparse -1 (the default): sparse while smaller than full
SELECT * FROM hm_compare();
-- each parameter set but expthresh 0 (9) merged in C in every case
SELECT p, sum(cases) AS cases, sum(in_c) AS in_c, sum(differ) AS differ
FROM hm_compare() GROUP BY p ORDER BY p;

-- with max_sparse 100 and 0 (hll_set_max_sparse), and set back after each call
SELECT hll_set_max_sparse(100) AS was;
SELECT p, sum(cases) AS cases, sum(in_c) AS in_c, sum(differ) AS differ,
       sum(cases) FILTER (WHERE result_type = 3) AS sparse_results
FROM hm_compare() GROUP BY p ORDER BY p;
SELECT hll_set_max_sparse(0) AS was;
SELECT p, sum(cases) AS cases, sum(in_c) AS in_c, sum(differ) AS differ,
       sum(cases) FILTER (WHERE result_type = 3) AS sparse_results
FROM hm_compare() GROUP BY p ORDER BY p;
SELECT hll_set_max_sparse(-1) AS was;

-- what the merge leaves to hll_union: other parameters than empty's, an
-- hll the extension would refuse
SELECT eventkit_internal.rollup_hll_union_hashes(hll_empty(10, 5, -1, 1), ARRAY[1::bigint], hll_empty()) IS NULL
         AS other_params,
       eventkit_internal.rollup_hll_union_hashes('\x128b7f00000000000000020000000000000001'::bytea::hll,
                                                 ARRAY[1::bigint], hll_empty()) IS NULL AS unsorted;
-- a group whose only value is NULL (its hll is hll_empty()) joined to a
-- row's hll of every format and parameter set: the merge writes
-- hll_union(old, hll_empty())'s bytes itself (1.13), with max_sparse -1
-- and 100
CREATE FUNCTION hm_compare_empty() RETURNS TABLE (p int, old_type int, cases bigint, in_c bigint,
                                                  differ bigint)
LANGUAGE sql AS $$
  SELECT o.p, hll_type(o.h), count(*), count(m),
         count(*) FILTER (WHERE m IS NOT NULL AND m::text IS DISTINCT FROM hll_union(o.h, e)::text)
  FROM hm_old o JOIN hm_params pa USING (p),
       LATERAL (SELECT hll_empty(pa.log2m, pa.regwidth, pa.expthresh, pa.sparseon) AS e) x,
       LATERAL (SELECT eventkit_internal.rollup_hll_union_hashes(o.h, ARRAY[NULL::bigint], x.e) AS m) y
  GROUP BY 1, 2 ORDER BY 1, 2
$$;
SELECT * FROM hm_compare_empty();
SELECT hll_set_max_sparse(100) AS was;
SELECT p, sum(cases) AS cases, sum(in_c) AS in_c, sum(differ) AS differ
FROM hm_compare_empty() GROUP BY p ORDER BY p;
SELECT hll_set_max_sparse(-1) AS was;
-- SPARSE hlls of 16-bit entries (log2m 11, width 5), 13 entries: the check
-- that their registers ascend, each once, with no value 0 reads eight at a
-- time, then four, then one; an entry out of order, a register twice (with
-- two values: ascending entries) or a value 0 in each of those parts: the merge
-- writes hll_union's bytes or leaves the group to hll_union (NULL), and
-- merges the ascending ones itself
CREATE FUNCTION hm_sparse16(regs int[], vals int[]) RETURNS hll LANGUAGE sql IMMUTABLE AS $$
  SELECT ('\x138b7f' || string_agg(lpad(to_hex(r << 5 | v), 4, '0'), '' ORDER BY o))::bytea::hll
    FROM unnest(regs, vals) WITH ORDINALITY u(r, v, o)
$$;
SELECT c, eventkit_internal.rollup_hll_union_hashes(h, ARRAY[hm_h(7)], hll_empty()) IS NULL AS left_to_hll_union,
       coalesce(eventkit_internal.rollup_hll_union_hashes(h, ARRAY[hm_h(7)], hll_empty())::text,
                hll_union(h, hll_add(hll_empty(), hll_hash_bigint(7)))::text)
         = hll_union(h, hll_add(hll_empty(), hll_hash_bigint(7)))::text AS as_hll_union
  FROM (VALUES
    ('ascending', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('swapped in the first eight', hm_sparse16('{1,2,4,3,5,6,7,8,9,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('swapped across eight', hm_sparse16('{1,2,3,4,5,6,7,9,8,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('swapped in the next four', hm_sparse16('{1,2,3,4,5,6,7,8,9,11,10,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('swapped in the last one', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,13,12}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('repeated register', hm_sparse16('{1,2,3,4,5,6,6,8,9,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('repeated register in the next four', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,10,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('repeated register in the last one', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,12,12}', '{1,2,3,4,5,6,7,8,9,10,11,12,13}')),
    ('value 0 in the first eight', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,12,13}', '{1,2,3,4,0,6,7,8,9,10,11,12,13}')),
    ('value 0 in the next four', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,0,11,12,13}')),
    ('value 0 in the last one', hm_sparse16('{1,2,3,4,5,6,7,8,9,10,11,12,13}', '{1,2,3,4,5,6,7,8,9,10,11,12,0}')),
    ('high registers', hm_sparse16('{2000,2001,2002,2003,2004,2005,2006,2007,2040,2041,2042,2046,2047}',
                                   '{31,1,31,1,31,1,31,1,31,1,31,1,31}'))) t(c, h)
 ORDER BY c;
DROP FUNCTION hm_sparse16(int[], int[]);

-- refreshes: a rollup whose rows are EMPTY (NULL values), EXPLICIT, SPARSE
-- and FULL and change format as deltas come, against a GROUP BY
SELECT eventkit.create_stream('hm') IS NOT NULL AS stream;
-- e0..e2: up to 50, 90, 130 users (EXPLICIT), e3: a new user per event
-- (EXPLICIT, then SPARSE, then FULL), e4: no user (an EMPTY hll)
CREATE FUNCTION hm_batch(first int, n int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
    'type', 'track', 'messageId', 'm' || i, 'anonymousId', 'a',
    'userId', CASE WHEN i % 5 = 4 OR i % 7 = 0 THEN NULL
                   WHEN i % 5 = 3 THEN 'u' || i
                   ELSE 'u' || (i * 7919) % (50 + 40 * (i % 5)) END,
    'event', 'e' || i % 5,
    'timestamp', '2026-03-28T20:00:00Z')) ORDER BY i)
  FROM generate_series(first, first + n - 1) i
$$;
SELECT eventkit.create_rollup('hmr', 'hm', '1 day', '{event}',
    '{count,"distinct(user_id) AS users"}') IS NOT NULL AS created;
CREATE FUNCTION hm_check() RETURNS TABLE (grp text, type int, same_bytes boolean) LANGUAGE sql AS $$
  SELECT event, hll_type(r.users), r.users::text = g.users::text
  FROM hmr r
  FULL JOIN (SELECT event, hll_add_agg(hll_hash_text(user_id)) AS users
             FROM hm GROUP BY event) g USING (event)
  ORDER BY 1
$$;
SELECT accepted FROM eventkit.ingest('hm', hm_batch(1, 200));
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT * FROM hm_check();
SELECT accepted FROM eventkit.ingest('hm', hm_batch(201, 1000));
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT * FROM hm_check();
SELECT sum(accepted) FROM generate_series(1201, 6201, 1000) s, eventkit.ingest('hm', hm_batch(s, 1000));
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT * FROM hm_check();
-- with max_sparse set: the merge follows it, and leaves it as it was
SELECT hll_set_max_sparse(2000) AS was;
SELECT accepted FROM eventkit.ingest('hm', hm_batch(7201, 300));
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT hll_set_max_sparse(-1) AS was;
SELECT hll_set_max_sparse(2000) AS was;
SELECT * FROM hm_check();
SELECT hll_set_max_sparse(-1) AS was;
-- a refresh in a new session, where nothing has loaded the hll library:
-- it does not load it either (its hll_empty() and max_sparse written from
-- the library's defaults, hll_union not called: 1.13), and its bytes are
-- still hll_add_agg's (e4's group has only NULL users; with hll_log2m 8
-- too: hmr8)
SELECT eventkit.create_rollup('hmr8', 'hm', '1 day', '{event}',
    '{count,"distinct(user_id) AS users"}', hll_log2m => 8) IS NOT NULL AS created;
SELECT accepted FROM eventkit.ingest('hm', hm_batch(7501, 400));
\c
SELECT pg_read_file('/proc/self/maps') LIKE '%/hll.so%' AS hll_library_loaded;
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT eventkit.refresh_rollup('hmr8') IS NOT NULL AS refreshed;
SELECT pg_read_file('/proc/self/maps') LIKE '%/hll.so%' AS hll_library_loaded;
SELECT * FROM hm_check();
SELECT event, hll_type(r.users) AS type, r.users::text = g.users::text AS same_bytes
FROM hmr8 r
FULL JOIN (SELECT event, hll_add_agg(hll_hash_text(user_id), 8) AS users
           FROM hm GROUP BY event) g USING (event)
ORDER BY 1;
-- ingest in a new session: the rollups' distinct() values are hashed in C
-- as hll_hash_text(v, 0) hashes them (hll_hash.c, 1.14), so ingest does not
-- load the hll library either, and the refresh after it still writes
-- hll_add_agg's bytes
\c
SELECT accepted FROM eventkit.ingest('hm', hm_batch(7901, 100));
SELECT pg_read_file('/proc/self/maps') LIKE '%/hll.so%' AS hll_library_loaded;
SELECT eventkit.refresh_rollup('hmr8') IS NOT NULL AS refreshed;
SELECT eventkit.refresh_rollup('hmr') IS NOT NULL AS refreshed;
SELECT pg_read_file('/proc/self/maps') LIKE '%/hll.so%' AS hll_library_loaded;
SELECT * FROM hm_check();
SELECT event, hll_type(r.users) AS type, r.users::text = g.users::text AS same_bytes
FROM hmr8 r
FULL JOIN (SELECT event, hll_add_agg(hll_hash_text(user_id), 8) AS users
           FROM hm GROUP BY event) g USING (event)
ORDER BY 1;
SELECT eventkit.drop_rollup('hmr8');
SET timezone = 'UTC';

-- a rollup owned by a role that may not execute hll_set_max_sparse: the
-- merge cannot learn max_sparse, so it leaves register results to
-- hll_union; the refresh (by hand, as the owner) must neither fail nor
-- write other bytes than a GROUP BY
CREATE ROLE ek_hm_owner;
CREATE SCHEMA hmo AUTHORIZATION ek_hm_owner;
REVOKE EXECUTE ON FUNCTION hll_set_max_sparse(integer) FROM PUBLIC;
SET ROLE ek_hm_owner;
SELECT has_function_privilege('hll_set_max_sparse(integer)', 'EXECUTE') AS may_set_max_sparse;
SELECT eventkit.create_stream('hmo.ev') IS NOT NULL AS stream;
SELECT eventkit.create_rollup('hmo.r', 'hmo.ev', '1 day', '{event}',
    '{count,"distinct(user_id) AS users"}') IS NOT NULL AS created;
SELECT accepted FROM eventkit.ingest('hmo.ev', hm_batch(1, 200));
SELECT eventkit.refresh_rollup('hmo.r') IS NOT NULL AS refreshed;
SELECT sum(accepted) FROM generate_series(201, 4201, 1000) s, eventkit.ingest('hmo.ev', hm_batch(s, 1000));
SELECT eventkit.refresh_rollup('hmo.r') IS NOT NULL AS refreshed;
SELECT event, hll_type(r.users) AS type, r.users::text = g.users::text AS same_bytes, r.count = g.n AS same_count
FROM hmo.r r
FULL JOIN (SELECT event, count(*) AS n, hll_add_agg(hll_hash_text(user_id)) AS users
           FROM hmo.ev GROUP BY event) g USING (event)
ORDER BY 1;
SELECT eventkit.drop_rollup('hmo.r');
SELECT eventkit.drop_stream('hmo.ev');
RESET ROLE;
GRANT EXECUTE ON FUNCTION hll_set_max_sparse(integer) TO PUBLIC;
DROP SCHEMA hmo;
DROP ROLE ek_hm_owner;

SELECT eventkit.drop_rollup('hmr');
SELECT eventkit.drop_stream('hm');
DROP FUNCTION hm_check(), hm_batch(int, int), hm_compare(), hm_compare_empty(), hm_h(bigint);
DROP TABLE hm_params, hm_old, hm_delta;
DROP EXTENSION eventkit;
DROP EXTENSION hll;
