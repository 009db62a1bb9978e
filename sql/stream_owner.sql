-- ALTER TABLE ... OWNER TO of a stream: its partitions (both levels of a
-- key-partitioned stream) and its <stream>_resolved view follow it to the
-- new owner, so that the new owner's retention, drop_stream and the view
-- work.  An object the role running the ALTER may not give away stays
-- where it is; a superuser's ALTER takes everything.  A rollup table's
-- delta table and realtime view follow the rollup table.
CREATE EXTENSION eventkit;
CREATE ROLE so_alice;
CREATE ROLE so_bob;
CREATE ROLE so_carol;
CREATE ROLE so_dave;
CREATE SCHEMA so;
GRANT USAGE, CREATE ON SCHEMA so TO so_alice, so_bob, so_carol, so_dave;
GRANT so_bob TO so_alice;  -- alice may give her objects to bob
GRANT so_dave TO so_bob;   -- bob his to dave

CREATE FUNCTION so.ev_at(id text, usr text, at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', usr, 'anonymousId', 'anon-' || usr,
                            'event', 'E', 'timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
-- who owns the stream's objects: the stream, its partitions by level, its view
CREATE FUNCTION so.owners(stream regclass) RETURNS TABLE (object text, owner name, n bigint) LANGUAGE sql AS $$
  SELECT CASE WHEN t.level IS NULL THEN c.relname::text WHEN t.level = 0 THEN 'stream'
              ELSE 'partition, level ' || t.level END,
         pg_get_userbyid(c.relowner), count(*)
    FROM pg_class c LEFT JOIN pg_partition_tree(stream) t ON t.relid = c.oid
   WHERE t.relid IS NOT NULL OR c.relname = (SELECT relname FROM pg_class WHERE oid = stream) || '_resolved'
   GROUP BY 1, 2 ORDER BY 1, 2
$$;

SET ROLE so_alice;
SELECT eventkit.create_stream('so.ev', key_partitions => 2) IS NOT NULL AS created;
SELECT accepted FROM eventkit.ingest('so.ev', jsonb_build_array(so.ev_at('m1', 'u1', now() - interval '3 days'),
                                                                so.ev_at('m2', 'u2', now())));
RESET ROLE;
SELECT * FROM so.owners('so.ev');

-- alice gives the stream to bob: everything follows
SET ROLE so_alice;
ALTER TABLE so.ev OWNER TO so_bob;
RESET ROLE;
SELECT * FROM so.owners('so.ev');

-- bob's stream works for bob: its view, ingest (a new partition: yesterday's,
-- UTC, at any time of day), retention (the partition of 3 days ago goes)
UPDATE eventkit.streams SET retention = '2 days' WHERE relid = 'so.ev'::regclass;
SET ROLE so_bob;
SELECT message_id, resolved_user_id FROM so.ev_resolved ORDER BY message_id;
SELECT accepted FROM eventkit.ingest('so.ev', so.ev_at('m3', 'u3', (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '12 hours') AT TIME ZONE 'UTC'));
SELECT eventkit.run_maintenance('so.ev');
SELECT message_id FROM so.ev ORDER BY message_id;
RESET ROLE;
SELECT * FROM so.owners('so.ev');

-- a leaf partition given to carol: bob (not a member of carol) gives the
-- stream to dave, carol's leaf stays hers; a superuser gives it back to
-- bob, and carol's leaf goes too
SELECT c.relname AS carols FROM pg_partition_tree('so.ev') t JOIN pg_class c ON c.oid = t.relid
 WHERE t.level = 2 ORDER BY c.relname LIMIT 1 \gset
ALTER TABLE so.:"carols" OWNER TO so_carol;
SET ROLE so_bob;
ALTER TABLE so.ev OWNER TO so_dave;
RESET ROLE;
SELECT * FROM so.owners('so.ev');
ALTER TABLE so.ev OWNER TO so_bob;
SELECT * FROM so.owners('so.ev');

-- other ALTER TABLEs of a stream change no owner; OWNER TO of a
-- partitioned table that is not a stream leaves its partitions as
-- PostgreSQL does
ALTER TABLE so.ev ALTER COLUMN event SET STATISTICS 200;
SELECT * FROM so.owners('so.ev');
CREATE TABLE so.plain (a int) PARTITION BY RANGE (a);
CREATE TABLE so.plain_1 PARTITION OF so.plain FOR VALUES FROM (0) TO (10);
ALTER TABLE so.plain OWNER TO so_carol;
SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class
 WHERE relname IN ('plain', 'plain_1') ORDER BY 1;
DROP TABLE so.plain;

-- a rollup of bob's stream is bob's; given to dave, its delta table and
-- realtime view follow, and dave's refresh and view work
SET ROLE so_bob;
SELECT eventkit.create_rollup('so.r', 'so.ev', '1 hour', ARRAY['event'], ARRAY['count']) IS NOT NULL AS created;
SELECT accepted FROM eventkit.ingest('so.ev', so.ev_at('m4', 'u4', now()));
ALTER TABLE so.r OWNER TO so_dave;
RESET ROLE;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
 WHERE c.relnamespace = 'so'::regnamespace AND c.relname LIKE 'r%' AND c.relkind IN ('r', 'v') ORDER BY 1;
GRANT SELECT ON so.ev TO so_dave;
SET ROLE so_dave;
SELECT sum(count) AS realtime_events FROM so.r_realtime;
SELECT eventkit.refresh_rollup('so.r') AS folded;
SELECT sum(count) AS rollup_events, (SELECT count(*) FROM so.ev) AS stored FROM so.r;
SELECT eventkit.drop_rollup('so.r');
RESET ROLE;
REVOKE SELECT ON so.ev FROM so_dave;

-- renamed, the stream keeps its view under the old name: it follows too
ALTER TABLE so.ev RENAME TO ev_renamed;
ALTER TABLE so.ev_renamed OWNER TO so_dave;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
 WHERE c.relnamespace = 'so'::regnamespace AND c.relname IN ('ev_renamed', 'ev_resolved') ORDER BY 1;
ALTER TABLE so.ev_renamed OWNER TO so_bob;
ALTER TABLE so.ev_renamed RENAME TO ev;

-- the new owner drops it
SET ROLE so_bob;
SELECT eventkit.drop_stream('so.ev');
RESET ROLE;
SELECT count(*) AS left_over FROM pg_class WHERE relnamespace = 'so'::regnamespace AND relname LIKE 'ev%';
DROP FUNCTION so.owners, so.ev_at;
DROP SCHEMA so;
DROP ROLE so_alice, so_bob, so_carol, so_dave;
DROP EXTENSION eventkit;
