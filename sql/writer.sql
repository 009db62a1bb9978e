-- Writing into the stream: the routed multi-insert path and the INSERT fallback
-- must both honour what users add to a stream table.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev', key_partitions => 2);
CREATE FUNCTION ev(id text, uid text DEFAULT 'u', props jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', uid, 'event', 'E', 'properties', props)
$$;

-- a user index on the stream is maintained (fast path)
CREATE INDEX ev_user_idx ON ev (user_id);
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('a1', 'alice'), ev('a2', 'bob'), ev('a3', 'alice')));
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE FUNCTION plan_has_seqscan(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    IF l LIKE '%Seq Scan%' THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
END $$;
SELECT plan_has_seqscan($$SELECT message_id FROM ev WHERE user_id = 'alice'$$);
SELECT message_id FROM ev WHERE user_id = 'alice' ORDER BY message_id;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- a user CHECK constraint is enforced: the whole call fails, nothing is half-written
ALTER TABLE ev ADD CONSTRAINT no_mallory CHECK (user_id IS DISTINCT FROM 'mallory');
CREATE FUNCTION try_ingest(payload jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r eventkit.ingest_result; c text;
BEGIN
  r := eventkit.ingest('ev', payload);
  RETURN 'ok ' || r::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
  RETURN 'error ' || SQLSTATE || CASE WHEN c LIKE 'ev_p%' THEN ' on a partition index' ELSE ' on ' || c END;
END $$;
SELECT try_ingest(jsonb_build_array(ev('c1'), ev('c2', 'mallory')));
SELECT count(*) FROM ev WHERE message_id IN ('c1', 'c2');
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('c1'), ev('c2')));
ALTER TABLE ev DROP CONSTRAINT no_mallory;

-- a user unique index that rejects a row fails the call; the ledger keeps no trace
CREATE UNIQUE INDEX ev_order_uidx ON ev ((properties->>'order'), user_key, ts);
SELECT try_ingest(jsonb_build_array(ev('o1', 'u', '{"order": 1}'), ev('o2', 'u', '{"order": 1}')));
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('o1', 'u', '{"order": 1}')));
DROP INDEX ev_order_uidx;

-- an extra column with a default: the INSERT fallback fills it
ALTER TABLE ev ADD COLUMN source text DEFAULT 'eventkit';
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('d1'), ev('d2', 'other')));
SELECT message_id, source FROM ev WHERE message_id LIKE 'd%' ORDER BY 1;
ALTER TABLE ev DROP COLUMN source;
-- a dropped column does not disturb the fast path
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('e1')));
SELECT message_id, user_key FROM ev WHERE message_id = 'e1';

-- a row trigger on the stream fires for every event (fallback path)
CREATE TABLE seen (message_id text);
CREATE FUNCTION note_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO seen VALUES (NEW.message_id); RETURN NEW; END $$;
CREATE TRIGGER ev_note AFTER INSERT ON ev FOR EACH ROW EXECUTE FUNCTION note_event();
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(ev('t1'), ev('t2', 'other'), ev('t1')));
SELECT message_id FROM seen ORDER BY 1;
DROP TRIGGER ev_note ON ev;
-- a trigger on one partition only: also honoured
SELECT partition::text AS part FROM eventkit.partitions('ev') ORDER BY range_start LIMIT 1 \gset
SELECT inhrelid::regclass::text AS leaf FROM pg_inherits WHERE inhparent = :'part'::regclass ORDER BY 1 LIMIT 1 \gset
CREATE TRIGGER leaf_note BEFORE INSERT ON :leaf FOR EACH ROW EXECUTE FUNCTION note_event();
SELECT sum(accepted) FROM generate_series(1, 8) i, eventkit.ingest('ev', ev('l' || i, 'user' || i));
SELECT count(*) > 0 AS leaf_trigger_fired FROM seen WHERE message_id LIKE 'l%';
DROP TRIGGER leaf_note ON :leaf;

-- everything ingested is stored once, in the partition its time and key select
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids FROM ev;
SELECT count(*) AS misplaced FROM ev e
 WHERE NOT EXISTS (SELECT 1 FROM eventkit.partitions('ev') p WHERE e.ts >= p.range_start AND e.ts < p.range_end);
SELECT sum(accepted) AS accepted FROM eventkit.ingest_batches;

-- BRIN indexes get one entry per block range and value (util/bulk_insert.c):
-- a summarized range must still be widened by each
-- batch's rows, for a key the batch's rows share (received_at) and one whose
-- values differ per row (message_id)
SELECT eventkit.create_stream('wb', key_partitions => 0) IS NOT NULL AS created;
CREATE INDEX wb_rcv_brin ON wb USING brin (received_at) WITH (pages_per_range = 16);
CREATE INDEX wb_id_brin ON wb USING brin (message_id) WITH (pages_per_range = 16);
CREATE FUNCTION wb_batch(tag text, n int, second int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_build_object('type', 'track', 'event', 'e', 'messageId', tag || i,
                                      'userId', 'u' || i,
                                      'timestamp', format('2026-03-28T10:%s:%sZ', lpad((second / 60)::text, 2, '0'),
                                                          lpad((second % 60)::text, 2, '0'))) ORDER BY i)
  FROM generate_series(1, n) i
$$;
SELECT accepted FROM eventkit.ingest('wb', wb_batch('a', 10, 0));
SELECT max(received_at) AS first_received FROM wb \gset
-- a new partition's BRIN index has its first range summarized (as empty)
-- from the start: every value of the rows in it must widen that summary
SELECT c.relname AS brin_index, brin_summarize_range(c.oid, 0) AS newly_summarized
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
 WHERE i.indrelid = 'wb_p20260328'::regclass AND a.amname = 'brin' ORDER BY 1;
-- the second batch lands in the same range (a later receive time, other ids)
SELECT pg_sleep(0.01);
SELECT accepted FROM eventkit.ingest('wb', wb_batch('b', 10, 600));
SELECT pg_relation_size('wb_p20260328') / current_setting('block_size')::int <= 16 AS one_range;
SET enable_seqscan = off;
SET enable_indexscan = off;
SELECT count(*) AS later_received_by_brin FROM wb_p20260328 WHERE received_at > :'first_received';
SELECT count(*) AS later_ids_by_brin FROM wb_p20260328 WHERE message_id >= 'b';
SELECT count(*) AS first_ids_by_brin FROM wb_p20260328 WHERE message_id < 'b';
-- b3 .. b9: only rows after the batch's first in the range (b1) reach them
SELECT count(*) AS ids_after_b2_by_brin FROM wb_p20260328 WHERE message_id > 'b2';
EXPLAIN (COSTS OFF) SELECT count(*) FROM wb_p20260328 WHERE received_at > '2026-03-28';
EXPLAIN (COSTS OFF) SELECT count(*) FROM wb_p20260328 WHERE message_id >= 'b';
RESET enable_seqscan;
RESET enable_indexscan;
SELECT count(*) AS later_received_by_scan FROM wb_p20260328 WHERE received_at > :'first_received';
-- a key passed by value whose values differ per row (sent_at): each row's
-- own value widens the summary (the writer keeps the values of such keys
-- per row before the insert, util/bulk_insert.c's EkBrinKeys)
CREATE INDEX wb_sent_brin ON wb USING brin (sent_at) WITH (pages_per_range = 16);
SELECT accepted FROM eventkit.ingest('wb',
  (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'event', 'e', 'messageId', 'c' || i, 'userId', 'u' || i,
                                       'timestamp', '2026-03-28T10:20:00Z',
                                       'sentAt', format('2026-03-28T10:20:%sZ', lpad(i::text, 2, '0'))) ORDER BY i)
     FROM generate_series(1, 10) i));
SET enable_seqscan = off;
SET enable_indexscan = off;
SELECT count(*) AS later_sent_by_brin FROM wb_p20260328 WHERE sent_at > '2026-03-28 10:20:05+00';
SELECT count(*) AS earlier_sent_by_brin FROM wb_p20260328 WHERE sent_at < '2026-03-28 10:20:03+00';
EXPLAIN (COSTS OFF) SELECT count(*) FROM wb_p20260328 WHERE sent_at > '2026-03-28 10:20:05+00';
RESET enable_seqscan;
RESET enable_indexscan;
DROP FUNCTION wb_batch;
SELECT eventkit.drop_stream('wb');

-- rows of one batch whose times go back and forth between partitions, and
-- fall on their bounds, each go to the partition that covers them: the
-- writer sends a run of rows within one partition's bounds to the leaf the
-- run's first row was routed to, and placement checks a run's times
-- against the bounds of the partition it found last; a partition with an
-- unbounded (MINVALUE) lower bound is routed row by row.  r3, alone in
-- its partition, falls on the upper bound of the run before it
SELECT eventkit.create_stream('wr', key_partitions => 0) IS NOT NULL AS created;
CREATE TABLE wr_old (LIKE wr);
ALTER TABLE wr ATTACH PARTITION wr_old FOR VALUES FROM (MINVALUE) TO ('2026-03-01 00:00+00');
SELECT accepted, quarantined FROM eventkit.ingest('wr',
  (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'event', 'e', 'messageId', 'r' || i,
                                       'userId', 'u', 'timestamp', t, 'properties', jsonb_build_object('n', i),
                                       'context', jsonb_build_object('ip', 'x')) ORDER BY i)
     FROM unnest(ARRAY['2026-03-02T12:00:00Z', '2026-03-02T23:59:59.999999Z', '2026-03-03T00:00:00Z',
                       '2026-03-02T05:00:00Z', '2026-03-02T00:00:00Z', '2026-02-27T10:00:00Z',
                       '2026-02-28T23:59:59.999999Z', '2026-03-01T00:00:00Z', '2026-02-01T00:00:00Z',
                       '2026-03-02T06:00:00Z']) WITH ORDINALITY AS x(t, i)));
SELECT message_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS ts_utc,
       tableoid::regclass AS partition
  FROM wr ORDER BY ts, message_id;
-- the objects stored are exactly themselves: read from the event's
-- JEntries, a nested object's length leaves out the padding before it
SELECT count(*) AS rows,
       count(*) FILTER (WHERE eventkit_internal.jsonb_raw_roundtrip(properties)
                          AND eventkit_internal.jsonb_raw_roundtrip(context)) AS exact
  FROM wr;
SELECT eventkit.drop_stream('wr');

DROP TABLE seen;
DROP FUNCTION try_ingest;
DROP FUNCTION plan_has_seqscan;
DROP FUNCTION note_event;
DROP FUNCTION ev;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
