-- Partitions created per ingest call are capped (eventkit.max_new_partitions,
-- superuser-only): the other events wait in quarantine (out_of_range) until
-- maintenance has made their partitions, as many per run, and they are
-- re-driven; every event is then stored exactly once.
CREATE EXTENSION eventkit;
CREATE FUNCTION ev_at(id text, at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', 'u', 'event', 'E',
                            'timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
CREATE ROLE ek_cap_owner;
CREATE ROLE ek_cap_writer;
CREATE SCHEMA cap AUTHORIZATION ek_cap_owner;
GRANT USAGE ON SCHEMA cap TO ek_cap_writer;
SET ROLE ek_cap_owner;
SELECT eventkit.create_stream('cap.ev', premake => 1, retention => '60 days');
GRANT INSERT ON cap.ev TO ek_cap_writer;
RESET ROLE;
SHOW eventkit.max_new_partitions;
SELECT count(*) AS partitions FROM eventkit.partitions('cap.ev');

-- a role with INSERT only sends 20 events, one per past day: 8 partitions are
-- made, the other 12 events wait in quarantine
SELECT jsonb_agg(ev_at('d' || d, now() - d * interval '1 day') ORDER BY d) AS days
  FROM generate_series(2, 21) d \gset
SET ROLE ek_cap_writer;
SET eventkit.max_new_partitions = 1000;
SELECT * FROM eventkit.ingest('cap.ev', :'days'::jsonb);
RESET ROLE;
SELECT count(*) AS partitions FROM eventkit.partitions('cap.ev');
SELECT reasons->0->>'reason' AS reason, count(*) FROM eventkit.quarantine GROUP BY 1 ORDER BY 1;
SELECT message_id FROM cap.ev ORDER BY ts DESC;
-- within the call, a partition made for one event serves the next ones
SET ROLE ek_cap_writer;
SELECT * FROM eventkit.ingest('cap.ev', (SELECT jsonb_agg(ev_at('e' || d || '_' || i, now() - d * interval '1 day'))
                                           FROM generate_series(10, 11) d, generate_series(1, 3) i));
RESET ROLE;

-- an event older than retention is never given a partition
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cap.ev', ev_at('expired', now() - interval '90 days'));

-- maintenance (here by the owner, not a superuser) makes at most
-- max_new_partitions of the partitions waited for per run
SET ROLE ek_cap_owner;
SELECT eventkit.run_maintenance('cap.ev');
SELECT count(*) AS partitions FROM eventkit.partitions('cap.ev');
SELECT eventkit.run_maintenance('cap.ev');
SELECT count(*) AS partitions FROM eventkit.partitions('cap.ev');
SELECT eventkit.run_maintenance('cap.ev');
SELECT count(*) AS partitions FROM eventkit.partitions('cap.ev');
-- then the re-drive (what the redrive job does) stores the waiting events
SELECT * FROM eventkit.replay_quarantine('cap.ev');
RESET ROLE;
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids,
       count(*) FILTER (WHERE message_id LIKE 'd%') AS days
  FROM cap.ev;
SELECT message_id, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY quarantine_id;
-- each in the partition of its day
SELECT count(*) AS misplaced FROM cap.ev e
 WHERE tableoid::regclass::text <> 'cap.ev_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD');
-- sent again: duplicates
SET ROLE ek_cap_writer;
SELECT * FROM eventkit.ingest('cap.ev', :'days'::jsonb);
RESET ROLE;

-- a superuser may change the cap: 0 creates none
SET eventkit.max_new_partitions = 0;
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cap.ev', ev_at('d30', now() - interval '30 days'));
RESET eventkit.max_new_partitions;

SELECT eventkit.drop_stream('cap.ev');
DROP FUNCTION ev_at;
DROP SCHEMA cap;
DROP EXTENSION eventkit;
DROP ROLE ek_cap_owner;
DROP ROLE ek_cap_writer;
