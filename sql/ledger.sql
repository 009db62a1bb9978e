-- Dedup ledger generations bounded by size (eventkit.ledger_generation_rows),
-- and the filters of sealed generations.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('lf') IS NOT NULL AS created;
CREATE FUNCTION lfev(mid text, n int DEFAULT 1) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', mid, 'userId', 'u', 'event', 'E',
                            'properties', jsonb_build_object('n', n))
$$;
CREATE FUNCTION lfbatch(prefix text, lo int, hi int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_agg(lfev(prefix || i) ORDER BY i) FROM generate_series(lo, hi) i
$$;
CREATE VIEW gens AS
  SELECT gen, ended_at IS NULL AS current, filter IS NOT NULL AS has_filter,
         octet_length(filter) AS filter_bytes
    FROM eventkit.ledger_generations ORDER BY gen;

-- the settings and their ranges
SELECT name, setting, unit, min_val, max_val, context FROM pg_settings
 WHERE name IN ('eventkit.ledger_generation_rows', 'eventkit.ledger_filter_cache_size')
 ORDER BY name;
SET eventkit.ledger_generation_rows = 0;
SET eventkit.ledger_filter_cache_size = -1;

SET eventkit.ledger_generation_rows = 50;
-- 40 ids: under the limit, maintenance does not rotate
SELECT accepted FROM eventkit.ingest('lf', lfbatch('a', 1, 40));
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
-- 40 more: over the limit, a new generation; the sealed one has no filter yet
SELECT accepted FROM eventkit.ingest('lf', lfbatch('b', 1, 40));
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
SELECT ledger_gen FROM eventkit.streams;
SELECT gen, count(*) FROM eventkit_internal.ledger_1 GROUP BY gen ORDER BY gen;

-- without its filter, generation 1 is probed for every id: duplicate and conflict found
SELECT * FROM eventkit.ingest_verbose('lf', jsonb_build_array(lfev('a1'), lfev('b40', 2), lfev('c1')))
 ORDER BY item;

-- the next run builds the filter (32 bits per id, 64-byte blocks, 24-byte header)
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
-- through the filter: the same verdicts
SELECT * FROM eventkit.ingest_verbose('lf', jsonb_build_array(lfev('a2'), lfev('b39', 2), lfev('c2')))
 ORDER BY item;
-- every id of generation 1 is still found (a filter has no false negatives)
SELECT * FROM eventkit.ingest('lf', lfbatch('a', 1, 40) || lfbatch('b', 1, 40));
-- and with the filters off (cache size 0): the same
SET eventkit.ledger_filter_cache_size = 0;
SELECT * FROM eventkit.ingest('lf', lfbatch('a', 1, 40) || lfbatch('b', 1, 40));
RESET eventkit.ledger_filter_cache_size;

-- The filter is what is consulted: a row slipped into the sealed generation
-- behind its back (never happens: a sealed generation is immutable) is not
-- seen through the filter, and is seen without it.
INSERT INTO eventkit_internal.ledger_1_g1 (message_key, gen, fingerprint, user_key_hash)
VALUES (eventkit_internal.ledger_key('slipped'), 1, 0, eventkit_internal.id_hash64('u'));
BEGIN;
SELECT accepted, duplicates, conflicts FROM eventkit.ingest('lf', jsonb_build_array(lfev('slipped')));
ROLLBACK;
SET eventkit.ledger_filter_cache_size = 0;
SELECT accepted, duplicates, conflicts FROM eventkit.ingest('lf', jsonb_build_array(lfev('slipped')));
RESET eventkit.ledger_filter_cache_size;
DELETE FROM eventkit_internal.ledger_1_g1 WHERE message_key = eventkit_internal.ledger_key('slipped');

-- a filter that cannot be read is not used (warning), the generation is probed
UPDATE eventkit.ledger_generations SET filter = '\x00'::bytea WHERE gen = 1;
SELECT * FROM eventkit.ingest('lf', jsonb_build_array(lfev('a3'), lfev('a4', 2)));
UPDATE eventkit.ledger_generations SET filter = NULL WHERE gen = 1;
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;

-- more generations: each sealed one gets its filter; ids of all are found
SELECT accepted FROM eventkit.ingest('lf', lfbatch('d', 1, 60));
SELECT eventkit.run_maintenance('lf');
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
SELECT * FROM eventkit.ingest('lf', lfbatch('a', 1, 40) || lfbatch('b', 1, 40) || lfbatch('d', 1, 60)
                                    || lfbatch('e', 1, 5));
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids FROM lf;

-- a generation of 5 ids (e1..e5) gets a one-block filter
SELECT eventkit.run_maintenance('lf');   -- 5 ids: under the limit of 50
SET eventkit.ledger_generation_rows = 1;
SELECT eventkit.run_maintenance('lf');
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
-- an empty generation (sealed by age) gets a one-block filter with no bit set
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days' WHERE gen = 4;
SELECT eventkit.run_maintenance('lf');
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
SELECT * FROM eventkit.ingest_verbose('lf', jsonb_build_array(lfev('d2'), lfev('e2'), lfev('f1')))
 ORDER BY item;

-- pruning is unchanged: generations that ended more than dedup_window ago go
UPDATE eventkit.ledger_generations SET ended_at = ended_at - interval '8 days' WHERE gen = 1;
SELECT eventkit.run_maintenance('lf');
SELECT * FROM gens;
-- a1 was in the dropped generation: stored again; d1 is still a duplicate
SELECT * FROM eventkit.ingest_verbose('lf', jsonb_build_array(lfev('a1'), lfev('d1'))) ORDER BY item;
RESET eventkit.ledger_generation_rows;

DROP VIEW gens;
SELECT eventkit.drop_stream('lf');
DROP FUNCTION lfbatch(text, int, int);
DROP FUNCTION lfev(text, int);
DROP EXTENSION eventkit;
