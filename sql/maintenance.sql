-- Partition placement of late and early events, premake, retention.
CREATE EXTENSION eventkit;
-- (no clock bound short of 60 days: the early event below tests premake's reach)
SELECT eventkit.create_stream('ev', premake => 2, max_future => '60 days');
SELECT count(*) AS partitions FROM eventkit.partitions('ev');

CREATE FUNCTION ev_at(id text, at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', 'u', 'event', 'E',
                            'timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

-- a late event: its partition is created on ingest (CREATE + CHECK + ATTACH)
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev_at('late3', now() - interval '3 days'),
                                                      ev_at('late3b', now() - interval '3 days'),
                                                      ev_at('late10', now() - interval '10 days')));
SELECT count(*) AS partitions FROM eventkit.partitions('ev');
SELECT message_id, (SELECT count(*) FROM eventkit.partitions('ev') p
                     WHERE e.ts >= p.range_start AND e.ts < p.range_end) AS covering
  FROM ev e ORDER BY message_id;
-- an event in an existing future partition, and one beyond premake: quarantined
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('ev', jsonb_build_array(ev_at('soon', now() + interval '1 day'),
                                                       ev_at('far', now() + interval '30 days'))) ORDER BY item;
-- with create_partitions_on_ingest off, a late event without partition is quarantined
SET eventkit.create_partitions_on_ingest = off;
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('ev', jsonb_build_array(ev_at('late20', now() - interval '20 days'),
                                                       ev_at('late3c', now() - interval '3 days'))) ORDER BY item;
RESET eventkit.create_partitions_on_ingest;
SELECT message_id, payload->>'messageId' AS payload_id FROM eventkit.quarantine ORDER BY quarantine_id;
-- redrive_quarantine by hand: nothing has its partition yet; late20 and far
-- wait for the partitions of their days, each once, in order
SELECT r.replayed,
       r.waiting_partitions = ARRAY[date_trunc('day', (now() - interval '20 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                    date_trunc('day', (now() + interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC']
         AS waiting_days
  FROM eventkit.redrive_quarantine('ev') r;
SELECT count(*) AS quarantined FROM eventkit.quarantine;
-- needs the stream's ownership
CREATE ROLE ek_redrive_other;
SET ROLE ek_redrive_other;
SELECT * FROM eventkit.redrive_quarantine('ev');
RESET ROLE;
DROP ROLE ek_redrive_other;
SELECT * FROM eventkit.redrive_quarantine(NULL);

-- premake: a missing future partition is made again by run_maintenance, as is
-- the past partition the quarantined late20 waits for (5 + 1)
SELECT partition::text AS last_part FROM eventkit.partitions('ev') ORDER BY range_start DESC LIMIT 1 \gset
ALTER TABLE ev DETACH PARTITION :last_part;
DROP TABLE :last_part;
SELECT count(*) AS partitions FROM eventkit.partitions('ev');
SELECT eventkit.run_maintenance('ev');
SELECT count(*) AS partitions, max(range_end) - date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS ahead
  FROM eventkit.partitions('ev');
SELECT count(*) AS late20_partition FROM eventkit.partitions('ev')
 WHERE range_start <= now() - interval '20 days' AND range_end > now() - interval '20 days';
-- running it again changes nothing
SELECT eventkit.run_maintenance();
SELECT count(*) AS partitions FROM eventkit.partitions('ev');
-- the redrive stores late20 now; far still waits for its partition
SELECT r.replayed,
       r.waiting_partitions = ARRAY[date_trunc('day', (now() + interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC']
         AS waiting_far
  FROM eventkit.redrive_quarantine('ev') r;
SELECT message_id FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT count(*) AS late20_stored FROM ev WHERE message_id = 'late20';

-- retention: partitions wholly older than now - retention are dropped
UPDATE eventkit.streams SET retention = '1 day';
SELECT eventkit.run_maintenance('ev');
SELECT count(*) AS partitions, min(range_end) > now() - interval '1 day' AS none_expired
  FROM eventkit.partitions('ev');
SELECT message_id FROM ev ORDER BY message_id;
-- events older than retention are quarantined, not stored in a new partition
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('ev', ev_at('late5', now() - interval '5 days'));
SELECT count(*) AS partitions FROM eventkit.partitions('ev');

-- hourly stream with key partitions: late events get the whole sub-tree
SELECT eventkit.create_stream('hv', '1 hour', premake => 1, key_partitions => 3);
SELECT * FROM eventkit.ingest('hv', jsonb_build_array(ev_at('h1', now() - interval '5 hours'),
  ev_at('h2', now() - interval '5 hours') || '{"userId": "other"}', ev_at('h3', now())));
SELECT level, isleaf, count(*) FROM pg_partition_tree('hv') GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS stored FROM hv;

-- run_maintenance on something that is not a stream
CREATE TABLE plain (a int);
SELECT eventkit.run_maintenance('plain');
DROP TABLE plain;

SELECT eventkit.drop_stream('hv');
SELECT eventkit.drop_stream('ev');
DROP FUNCTION ev_at;
DROP EXTENSION eventkit;
