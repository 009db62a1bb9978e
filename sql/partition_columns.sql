-- Partitions carry what a user adds to a stream: generated columns,
-- defaults and CHECK constraints, in time partitions made on ingest, by
-- run_maintenance() and in hash sub-partitions (key_partitions).
CREATE EXTENSION eventkit;
-- (max_future: an event 2 days ahead goes into a partition run_maintenance made)
SELECT eventkit.create_stream('pc_ev', premake => 1, max_future => '7 days');
SELECT eventkit.create_stream('pc_keyed', premake => 1, key_partitions => 2);

CREATE FUNCTION pc_event(id text, at text, revenue numeric) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', id, 'userId', 'u' || id, 'event', 'Paid',
                            'timestamp', at, 'properties', jsonb_build_object('revenue', revenue))
$$;

ALTER TABLE pc_ev ADD COLUMN revenue numeric
  GENERATED ALWAYS AS ((properties OPERATOR(pg_catalog.->>) 'revenue')::numeric) STORED;
ALTER TABLE pc_ev ADD COLUMN channel text NOT NULL DEFAULT 'web';
ALTER TABLE pc_ev ADD CONSTRAINT pc_ev_revenue_positive CHECK (revenue >= 0);
ALTER TABLE pc_keyed ADD COLUMN revenue numeric
  GENERATED ALWAYS AS ((properties OPERATOR(pg_catalog.->>) 'revenue')::numeric) STORED;
ALTER TABLE pc_keyed ADD COLUMN channel text DEFAULT 'web';
-- PostgreSQL 15 has no identity columns on a partitioned table with
-- partitions, so a stream cannot get one
ALTER TABLE pc_ev ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

-- events in a year no partition covers: their partitions are made on ingest
SELECT * FROM eventkit.ingest('pc_ev', jsonb_build_array(pc_event('a', '2020-03-01T10:00:00Z', 5),
                                                         pc_event('b', '2020-03-02T10:00:00Z', 7)));
SELECT * FROM eventkit.ingest('pc_keyed', (SELECT jsonb_agg(pc_event(i::text, '2020-03-01T10:00:00Z', i) ORDER BY i)
                                             FROM generate_series(1, 6) i));
SELECT tableoid::regclass AS part, message_id, revenue, channel FROM pc_ev ORDER BY message_id;
SELECT message_id, revenue, channel FROM pc_keyed ORDER BY message_id;
SELECT tableoid::regclass AS part, count(*) FROM pc_keyed GROUP BY 1 ORDER BY 1;
-- the constraint holds in the new partitions
\set VERBOSITY terse
SELECT * FROM eventkit.ingest('pc_ev', pc_event('neg', '2020-03-01T10:00:00Z', -1));
\set VERBOSITY default

-- every new partition (leaves included) has the generated column and the default
SELECT c.relname, a.attname, a.attgenerated, pg_get_expr(d.adbin, d.adrelid) AS expr
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('revenue', 'channel')
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relname LIKE 'pc\_%\_p2020%' ORDER BY 1, 2;

-- run_maintenance() makes the next partitions of every stream
UPDATE eventkit.streams SET premake = 3;
SELECT eventkit.run_maintenance();
SELECT relid, (SELECT count(*) FROM eventkit.partitions(relid) WHERE range_start > now()) AS ahead
  FROM eventkit.streams ORDER BY stream_id;
SELECT * FROM eventkit.ingest('pc_ev', jsonb_build_array(
  pc_event('now', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 11),
  pc_event('soon', to_char((now() + interval '2 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 13)));
SELECT message_id, revenue, channel FROM pc_ev WHERE message_id IN ('now', 'soon') ORDER BY 1;

SELECT eventkit.drop_stream('pc_ev');
SELECT eventkit.drop_stream('pc_keyed');
DROP FUNCTION pc_event(text, text, numeric);
DROP EXTENSION eventkit;
