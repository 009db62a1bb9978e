-- Privileges and search_path safety.
CREATE EXTENSION eventkit;
CREATE ROLE ek_owner;
CREATE ROLE ek_writer;
CREATE ROLE ek_nobody;
CREATE SCHEMA sec AUTHORIZATION ek_owner;
GRANT USAGE ON SCHEMA sec TO ek_writer, ek_nobody;

-- a non-superuser creates and owns a stream
SET ROLE ek_owner;
SELECT eventkit.create_stream('sec.ev');
SELECT tableowner FROM pg_tables WHERE schemaname = 'sec' AND tablename = 'ev';
GRANT INSERT ON sec.ev TO ek_writer;
RESET ROLE;

-- without INSERT on the stream: no ingest
SET ROLE ek_nobody;
SELECT * FROM eventkit.ingest('sec.ev', '{"type": "track", "messageId": "s0", "userId": "u", "event": "E"}'::jsonb);
SELECT * FROM eventkit.ingest('sec.ev', '{"type": "track", "messageId": "s0", "userId": "u", "event": "E"}'::text);
SELECT * FROM eventkit.ingest_verbose('sec.ev', '{"type": "track", "messageId": "s0", "userId": "u", "event": "E"}'::jsonb);
RESET ROLE;

-- with INSERT only: ingest works, bookkeeping is done by eventkit
SET ROLE ek_writer;
SELECT * FROM eventkit.ingest('sec.ev', '[{"type": "track", "messageId": "s1", "userId": "u", "event": "E"},
                                         {"type": "track", "messageId": "s2", "userId": "u"}]'::jsonb);
-- but the writer cannot read the stream, the quarantine (it sees no rows: they
-- are the stream owner's) or the ledger, nor write the catalog
SELECT count(*) FROM sec.ev;
SELECT count(*) FROM eventkit.quarantine;
SELECT count(*) FROM eventkit_internal.ledger_1;
INSERT INTO eventkit.streams VALUES (99, 'sec.ev', '1 day', 1, NULL, 0, '1 day');
DELETE FROM eventkit.ingest_batches;
UPDATE eventkit.ledger_generations SET gen = 5;
-- stream_stats and streams are readable
SELECT stream, accepted, quarantined FROM eventkit.stream_stats;
-- nor drop or maintain a stream it does not own
SELECT eventkit.drop_stream('sec.ev');
SELECT eventkit.run_maintenance('sec.ev');
RESET ROLE;
SELECT ingested_by, accepted, quarantined FROM eventkit.ingest_batches ORDER BY batch_id;

-- row-level security of the stream applies to the caller
ALTER TABLE sec.ev ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_u ON sec.ev FOR INSERT TO ek_writer WITH CHECK (user_id = 'u');
SET ROLE ek_writer;
SELECT * FROM eventkit.ingest('sec.ev', '{"type": "track", "messageId": "s3", "userId": "other", "event": "E"}'::jsonb);
SELECT * FROM eventkit.ingest('sec.ev', '{"type": "track", "messageId": "s4", "userId": "u", "event": "E"}'::jsonb);
RESET ROLE;
ALTER TABLE sec.ev DISABLE ROW LEVEL SECURITY;

-- a hostile search_path: shadowing functions and operators are never used
CREATE SCHEMA evil;
CREATE FUNCTION evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql AS $$ SELECT NULL::text::anyelement $$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE sql AS $$ SELECT -1::bigint $$;
CREATE FUNCTION evil.text_eq_evil(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evil operator called'; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq_evil);
CREATE FUNCTION evil.int_eq_evil(int, int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evil operator called'; END $$;
CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int_eq_evil);
CREATE OPERATOR evil.< (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int_eq_evil);
CREATE TABLE evil.streams (x int);
SET search_path = evil, pg_catalog, public;
SELECT eventkit.create_stream('public."Weird ""Name"""', key_partitions => 2);
SELECT * FROM eventkit.ingest('public."Weird ""Name"""', '[{"type": "track", "messageId": "w1", "userId": "u", "event": "E"},
  {"type": "track", "messageId": "w1", "userId": "u", "event": "E"}, {"type": "track", "userId": "u"}]'::jsonb);
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days';
SELECT eventkit.run_maintenance();
SELECT * FROM eventkit.ingest('public."Weird ""Name"""', '{"type": "track", "messageId": "w1", "userId": "u", "event": "E"}'::text);
RESET search_path;
SELECT message_id, user_id FROM public."Weird ""Name""" ORDER BY message_id;
SELECT relid, ledger_gen FROM eventkit.streams ORDER BY stream_id;

SELECT eventkit.drop_stream('public."Weird ""Name"""');
SELECT eventkit.drop_stream('sec.ev');
DROP SCHEMA evil CASCADE;
DROP SCHEMA sec CASCADE;
DROP EXTENSION eventkit;
DROP ROLE ek_owner;
DROP ROLE ek_writer;
DROP ROLE ek_nobody;
