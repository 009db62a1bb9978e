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

-- ingest through the stream's OID checks USAGE on its schema, as an INSERT
-- naming the table does
CREATE SCHEMA hidden AUTHORIZATION ek_owner;
SET ROLE ek_owner;
SELECT eventkit.create_stream('hidden.ev');
GRANT INSERT ON hidden.ev TO ek_writer;
RESET ROLE;
SELECT 'hidden.ev'::regclass::oid AS hidden_oid \gset
SET ROLE ek_writer;
INSERT INTO hidden.ev (message_id, type, user_key, ts, received_at, batch_id)
VALUES ('h0', 'track', 'u', now(), now(), 0);
SELECT * FROM eventkit.ingest(:hidden_oid::regclass, '{"type": "track", "messageId": "h1", "userId": "u", "event": "E"}'::jsonb);
SELECT * FROM eventkit.ingest(:hidden_oid, '{"type": "track", "messageId": "h1", "userId": "u", "event": "E"}'::text);
SELECT * FROM eventkit.ingest_verbose(:hidden_oid, '{"type": "track", "messageId": "h1", "userId": "u", "event": "E"}'::jsonb);
SELECT * FROM eventkit.replay_quarantine(:hidden_oid);
RESET ROLE;
-- with USAGE it works
GRANT USAGE ON SCHEMA hidden TO ek_writer;
SET ROLE ek_writer;
SELECT * FROM eventkit.ingest(:hidden_oid::regclass, '{"type": "track", "messageId": "h2", "userId": "u", "event": "E"}'::jsonb);
RESET ROLE;
SELECT message_id FROM hidden.ev ORDER BY message_id;
SELECT eventkit.drop_stream('hidden.ev');
DROP SCHEMA hidden;

-- run_maintenance by the stream's owner (not a superuser): the ledger is
-- rotated, the sealed generation's filter built and an expired generation
-- dropped, reading and writing the catalog as the extension owner
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days',
       ended_at = CASE WHEN gen = 1 THEN ended_at - interval '8 days' ELSE ended_at END
 WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'sec.ev'::regclass);
SET ROLE ek_owner;
SELECT eventkit.run_maintenance('sec.ev');
SELECT eventkit.run_maintenance();
RESET ROLE;
SELECT g.gen, g.ended_at IS NULL AS current, g.filter IS NOT NULL AS has_filter
  FROM eventkit.ledger_generations g JOIN eventkit.streams s USING (stream_id)
 WHERE s.relid = 'sec.ev'::regclass ORDER BY g.gen;

SELECT eventkit.drop_stream('public."Weird ""Name"""');
SELECT eventkit.drop_stream('sec.ev');
DROP SCHEMA evil CASCADE;
DROP SCHEMA sec CASCADE;
DROP EXTENSION eventkit;
DROP ROLE ek_owner;
DROP ROLE ek_writer;
DROP ROLE ek_nobody;
