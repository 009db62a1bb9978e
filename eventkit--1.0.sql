\echo Use "CREATE EXTENSION eventkit" to load this file. \quit

/*
 * eventkit 1.0: catalog tables, views and thin SQL wrappers around the C
 * functions.  Per-stream objects (the stream table with its partitions and
 * the stream's dedup ledger) are created by eventkit.create_stream() and are
 * not members of the extension, so pg_dump dumps them like user tables.
 */

-- Per-stream dedup ledgers live here (see src/dedup.c).
CREATE SCHEMA eventkit_internal;
REVOKE ALL ON SCHEMA eventkit_internal FROM PUBLIC;

CREATE TYPE eventkit.ingest_result AS (
	accepted bigint,
	duplicates bigint,
	conflicts bigint,
	quarantined bigint,
	rejected bigint
);

-- One row per stream.
CREATE TABLE eventkit.streams (
	stream_id integer PRIMARY KEY,
	relid regclass NOT NULL UNIQUE,
	partition_interval interval NOT NULL,
	premake integer NOT NULL,
	retention interval,
	key_partitions integer NOT NULL,
	dedup_window interval NOT NULL,
	ledger_gen integer NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK (premake >= 0),
	CHECK (key_partitions >= 0),
	CHECK (ledger_gen >= 1)
);
CREATE SEQUENCE eventkit.streams_stream_id_seq AS integer OWNED BY eventkit.streams.stream_id;

-- Generations of a stream's dedup ledger: each generation is one table
-- (eventkit_internal.ledger_<stream_id>_g<gen>), dropped whole once it ended more than
-- dedup_window ago.
CREATE TABLE eventkit.ledger_generations (
	stream_id integer NOT NULL,
	gen integer NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	PRIMARY KEY (stream_id, gen)
);

-- Events that could not be stored normally, with the reasons.
CREATE TABLE eventkit.quarantine (
	quarantine_id bigserial PRIMARY KEY,
	stream_id integer NOT NULL,
	batch_id bigint NOT NULL,
	item integer NOT NULL,
	message_id text,
	received_at timestamptz NOT NULL,
	quarantined_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	reasons jsonb NOT NULL,
	payload jsonb,
	raw text,
	plan_version integer
);
CREATE INDEX ON eventkit.quarantine (stream_id, quarantine_id);

-- One row per ingest call (not per event): what it did.
CREATE SEQUENCE eventkit.batch_id_seq AS bigint;
CREATE TABLE eventkit.ingest_batches (
	batch_id bigint PRIMARY KEY,
	stream_id integer NOT NULL,
	received_at timestamptz NOT NULL,
	ingested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	ingested_by name NOT NULL DEFAULT CURRENT_USER,
	items integer NOT NULL,
	accepted bigint NOT NULL,
	duplicates bigint NOT NULL,
	conflicts bigint NOT NULL,
	quarantined bigint NOT NULL,
	rejected bigint NOT NULL
);
CREATE INDEX ON eventkit.ingest_batches (stream_id);

-- Events whose messageId was already stored with different content.
CREATE TABLE eventkit.conflicts (
	conflict_id bigserial PRIMARY KEY,
	stream_id integer NOT NULL,
	batch_id bigint NOT NULL,
	item integer NOT NULL,
	message_id text NOT NULL,
	received_at timestamptz NOT NULL,
	payload jsonb NOT NULL
);
CREATE INDEX ON eventkit.conflicts (stream_id, message_id);

SELECT pg_catalog.pg_extension_config_dump('eventkit.streams', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.streams_stream_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.ledger_generations', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.quarantine_quarantine_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.ingest_batches', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.conflicts_conflict_id_seq', '');

CREATE VIEW eventkit.stream_stats AS
SELECT s.stream_id,
	   s.relid AS stream,
	   COALESCE(b.batches, 0) AS batches,
	   COALESCE(b.accepted, 0) AS accepted,
	   COALESCE(b.duplicates, 0) AS duplicates,
	   COALESCE(b.conflicts, 0) AS conflicts,
	   COALESCE(b.quarantined, 0) AS quarantined,
	   COALESCE(b.rejected, 0) AS rejected,
	   (SELECT pg_catalog.count(*) FROM eventkit.quarantine q
		 WHERE q.stream_id OPERATOR(pg_catalog.=) s.stream_id) AS in_quarantine,
	   b.last_ingest_at
  FROM eventkit.streams s
  LEFT JOIN (SELECT stream_id,
					pg_catalog.count(*) AS batches,
					pg_catalog.sum(accepted)::bigint AS accepted,
					pg_catalog.sum(duplicates)::bigint AS duplicates,
					pg_catalog.sum(conflicts)::bigint AS conflicts,
					pg_catalog.sum(quarantined)::bigint AS quarantined,
					pg_catalog.sum(rejected)::bigint AS rejected,
					pg_catalog.max(ingested_at) AS last_ingest_at
			   FROM eventkit.ingest_batches
			  GROUP BY stream_id) b ON b.stream_id OPERATOR(pg_catalog.=) s.stream_id;

REVOKE ALL ON ALL TABLES IN SCHEMA eventkit FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA eventkit FROM PUBLIC;
GRANT USAGE ON SCHEMA eventkit TO PUBLIC;
GRANT SELECT ON eventkit.streams, eventkit.stream_stats TO PUBLIC;

-- Streams

CREATE FUNCTION eventkit.create_stream(stream text,
									   partition_interval interval DEFAULT '1 day',
									   premake integer DEFAULT 4,
									   retention interval DEFAULT NULL,
									   key_partitions integer DEFAULT 0,
									   dedup_window interval DEFAULT '7 days')
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_stream'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.drop_stream(stream regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_drop_stream'
LANGUAGE C VOLATILE STRICT;

-- Forget streams whose table was dropped by a plain DROP TABLE / DROP SCHEMA:
-- their catalog rows, quarantine, logs and dedup ledger go with them.
CREATE FUNCTION eventkit.forget_dropped_streams()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_forget_dropped_streams'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.forget_dropped_streams() FROM PUBLIC;

CREATE FUNCTION eventkit.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- nothing to do while the extension itself is being dropped
	IF pg_catalog.to_regclass('eventkit.streams') IS NULL THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects()
			   WHERE object_type IN ('table', 'schema')) THEN
		PERFORM eventkit.forget_dropped_streams();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION eventkit.on_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER eventkit_forget_dropped_streams ON sql_drop
	EXECUTE FUNCTION eventkit.on_sql_drop();

-- Ingest

CREATE FUNCTION eventkit.ingest(stream regclass, payload jsonb,
								received_at timestamptz DEFAULT pg_catalog.now())
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_ingest_jsonb'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.ingest(stream regclass, payload text,
								received_at timestamptz DEFAULT pg_catalog.now())
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_ingest_text'
LANGUAGE C VOLATILE;

CREATE FUNCTION eventkit.ingest_verbose(stream regclass, payload jsonb,
										received_at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE(item integer, message_id text, status text, reasons jsonb)
AS 'MODULE_PATHNAME', 'eventkit_ingest_verbose'
LANGUAGE C VOLATILE;

-- Maintenance

CREATE FUNCTION eventkit.run_maintenance(stream regclass DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_run_maintenance'
LANGUAGE C VOLATILE;

-- Partition bounds of a stream, for inspection: one row per range partition.
CREATE FUNCTION eventkit.partitions(stream regclass)
RETURNS TABLE(partition regclass, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.oid::regclass,
		   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']*)''\)'))[1]::timestamptz,
		   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']*)''\)'))[1]::timestamptz
	  FROM pg_inherits i
	  JOIN pg_class c ON c.oid = i.inhrelid
	 WHERE i.inhparent = $1
	 ORDER BY 2
$$;
