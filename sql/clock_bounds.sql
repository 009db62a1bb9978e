-- Clock bounds of a stream (max_past, max_future): events outside them are
-- quarantined too_old / too_new; eventkit.alter_stream changes them (owner
-- only) and validates its arguments like create_stream.
CREATE EXTENSION eventkit;
CREATE FUNCTION ev_at(id text, at timestamptz) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', 'u', 'event', 'E',
                            'timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

-- one create_stream and one alter_stream, with the same option names
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments
  FROM pg_proc p
 WHERE p.pronamespace = 'eventkit'::regnamespace AND p.proname IN ('create_stream', 'alter_stream')
 ORDER BY 1;

-- max_future defaults to 1 day, max_past to none
SELECT eventkit.create_stream('cb', max_past => '2 days');
SELECT max_past, max_future FROM eventkit.streams WHERE relid = 'cb'::regclass;
SELECT item, message_id, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cb', jsonb_build_array(
         ev_at('old', now() - interval '3 days'),
         ev_at('recent', now() - interval '1 day'),
         ev_at('soon', now() + interval '2 hours'),
         ev_at('ahead', now() + interval '2 days'))) ORDER BY item;
-- the corrected time counts: a device clock a year ahead, corrected by sentAt
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cb', jsonb_build_object('type', 'track', 'messageId', 'skewed',
         'userId', 'u', 'event', 'E',
         'originalTimestamp', to_char((now() + interval '1 year') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
         'sentAt', to_char((now() + interval '1 year 5 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
-- quarantined, not rejected, when invalid events are rejected (as out_of_range)
SET eventkit.invalid_events = 'reject';
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cb', jsonb_build_array(ev_at('old2', now() - interval '30 days'),
                                                       ev_at('ahead2', now() + interval '30 days'))) ORDER BY item;
RESET eventkit.invalid_events;
SELECT message_id, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY quarantine_id;
-- no partition was made for them
SELECT count(*) AS partitions FROM eventkit.partitions('cb')
 WHERE range_end <= now() - interval '2 days' OR range_start >= now() + interval '25 days';

-- alter_stream: wider bounds take effect for the next ingest and the replay
SELECT eventkit.alter_stream('cb', max_future => '3 days', clear => '{max_past}');
SELECT max_past, max_future FROM eventkit.streams WHERE relid = 'cb'::regclass;
SELECT * FROM eventkit.replay_quarantine('cb');
SELECT message_id, reasons->0->>'reason' AS reason FROM eventkit.quarantine ORDER BY quarantine_id;
SELECT message_id FROM cb ORDER BY message_id;
-- narrower ones too, in the same session
SELECT eventkit.alter_stream('cb', max_future => '1 hour', max_past => '1 hour');
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cb', jsonb_build_array(ev_at('soon2', now() + interval '2 hours'),
                                                       ev_at('late2', now() - interval '2 hours'),
                                                       ev_at('now2', now()))) ORDER BY item;
-- a stream without bounds
SELECT eventkit.alter_stream('cb', clear => '{max_past,max_future}');
SELECT max_past, max_future FROM eventkit.streams WHERE relid = 'cb'::regclass;
SELECT item, status, reasons->0->>'reason' AS reason
  FROM eventkit.ingest_verbose('cb', ev_at('soon3', now() + interval '2 hours'));

-- the other options: premake (applied at once), retention (gets its job), dedup_window
SELECT count(*) AS partitions FROM eventkit.partitions('cb') WHERE range_start >= now();
SELECT eventkit.alter_stream('cb', premake => 6, retention => '90 days', dedup_window => '2 days');
SELECT count(*) AS partitions FROM eventkit.partitions('cb') WHERE range_start >= now();
SELECT premake, retention, dedup_window FROM eventkit.streams WHERE relid = 'cb'::regclass;
SELECT kind FROM eventkit.jobs WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'cb'::regclass)
 ORDER BY kind;
-- NULL leaves an option as it is; an unchanged interval or key count is accepted
SELECT eventkit.alter_stream('cb', partition_interval => '24 hours', key_partitions => 0);
SELECT eventkit.alter_stream('cb');
SELECT partition_interval, premake, retention, key_partitions, dedup_window, max_past, max_future
  FROM eventkit.streams WHERE relid = 'cb'::regclass;

-- arguments are checked as create_stream checks them
SELECT eventkit.create_stream('bad', max_past => '0');
SELECT eventkit.create_stream('bad', max_future => '-1 day');
SELECT eventkit.alter_stream('cb', max_past => '-1 hour');
SELECT eventkit.alter_stream('cb', premake => -1);
SELECT eventkit.alter_stream('cb', partition_interval => '1 hour');
SELECT eventkit.alter_stream('cb', key_partitions => 2);
SELECT eventkit.alter_stream('cb', clear => '{premake}');
SELECT eventkit.alter_stream('cb', clear => ARRAY[NULL]::text[]);
SELECT eventkit.alter_stream('cb', max_past => '1 day', clear => '{max_past}');
SELECT eventkit.alter_stream(NULL);
CREATE TABLE plain (a int);
SELECT eventkit.alter_stream('plain', premake => 1);
DROP TABLE plain;
SELECT to_regclass('bad') IS NULL AS no_bad_stream;

-- only the owner (or a superuser) alters a stream
CREATE ROLE ek_cb_writer;
GRANT INSERT ON cb TO ek_cb_writer;
SET ROLE ek_cb_writer;
SELECT eventkit.alter_stream('cb', max_future => '100 years');
RESET ROLE;
SELECT max_future FROM eventkit.streams WHERE relid = 'cb'::regclass;

SELECT eventkit.drop_stream('cb');
DROP FUNCTION ev_at;
DROP EXTENSION eventkit;
DROP ROLE ek_cb_writer;
