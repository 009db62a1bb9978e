\echo Use "CREATE EXTENSION eventkit" to load this file. \quit

/*
 * eventkit 1.17, complete: what a fresh CREATE EXTENSION eventkit runs.
 *
 * RULE while 1.17 is not released: every object added or changed in 1.17 goes
 * into BOTH this file (in its final form, in its area below) and
 * eventkit--1.16--1.17.sql (for installations being upgraded).  1.16 has
 * landed: eventkit--1.16.sql and eventkit--1.15--1.16.sql are not edited any
 * more.  sql/upgrade.sql upgrades a 1.0 installation through 1.1, 1.2, 1.3,
 * 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 1.10, 1.11, 1.12, 1.13, 1.14, 1.15, 1.16 and 1.17 and compares it with
 * a fresh install of this file: members, columns, indexes, constraints,
 * triggers, views, functions, sequences, grants, comments, row-level
 * security, pg_extension_config_dump and the extension's own rows.  Any
 * difference fails it.
 *
 * Layout: one section per area; each object once, in its final form, with
 * its COMMENT ON, its grants and its pg_extension_config_dump.  Columns are
 * listed in the order an upgraded installation has them (a column added by
 * an upgrade comes last), so that SELECT * reads the same either way.
 *
 * Names.  Constraints carry PostgreSQL's own names, written out:
 * <table>_pkey, <table>_<column>_key, <table>_<column>_check,
 * <table>_<column>_fkey.  Indexes that back no constraint are named
 * <table>_<what they look up> (quarantine_stream, jobs_next_run_at).
 *
 * Grants.  Nothing is writable by PUBLIC; every table and sequence starts
 * with REVOKE ALL ... FROM PUBLIC (so that the installing role's default
 * privileges cannot open one), then what is readable is granted.
 *
 * Keys.  Every catalog table has a primary key.  Between catalog tables
 * there are no foreign keys: their data is dumped by pg_dump
 * (pg_extension_config_dump) and pg_restore -j loads each table's data in
 * a transaction of its own, in parallel and in no set order (pg_dump orders
 * the data by the keys, but the archive records no dependency between two
 * tables' data), so a referencing table's COPY can run before the
 * referenced rows are committed and fail on the key (DEFERRABLE does not
 * help: the loads are separate transactions).  TAP 011_parallel_restore.pl
 * restores with -j 2 and -j 4.  The code keeps those references instead:
 * drop_stream and the sql_drop event trigger remove a stream's rows from
 * every table with a stream_id, a job's runs go with the job, plans are
 * never deleted; a stream whose plan or plan version is missing quarantines
 * its events (plan_missing) and eventkit.health_plans reports it.  A
 * foreign key to a table whose rows are the extension's own (created by
 * this script, not dumped) does survive a parallel restore, as CREATE
 * EXTENSION fills it before any data is loaded: eventkit.job_kinds.
 *
 * Roles.  A role the catalog records (plans.owner, plan_versions.created_by,
 * ingest_batches.ingested_by) is a role name, as pg_cron's cron.job.username:
 * names survive pg_dump into another cluster, OIDs do not.  Those columns
 * have no default: the C code writes them as the extension owner, so a
 * default of CURRENT_USER would record the wrong role.  Who owns a stream
 * or a rollup is the owner of its table (pg_class.relowner), not recorded
 * here.
 *
 * Per-stream objects (the stream table with its partitions, the stream's
 * dedup ledger, rollup tables and views) are created by the C functions and
 * are not members of the extension, so pg_dump dumps them like user tables.
 */

-- ==== Schemas and types ====

COMMENT ON SCHEMA eventkit IS
'eventkit: event collection (streams, ingest, dedup, tracking plans, rollups, jobs); see README';
GRANT USAGE ON SCHEMA eventkit TO PUBLIC;

-- Per-stream dedup ledgers live here (see src/dedup.c).
CREATE SCHEMA eventkit_internal;
REVOKE ALL ON SCHEMA eventkit_internal FROM PUBLIC;
COMMENT ON SCHEMA eventkit_internal IS
'eventkit''s per-stream dedup ledgers (ledger_<stream_id> and its generations); written only by eventkit';

-- The dedup ledgers of streams distributed on Citus (dist_ledger_<stream_id>),
-- each owned by its stream's owner, who reaches it through Citus on every node
-- (src/pipeline/dedup/dist_ledger.c): USAGE for all, nothing else.
CREATE SCHEMA eventkit_ledgers;
REVOKE ALL ON SCHEMA eventkit_ledgers FROM PUBLIC;
GRANT USAGE ON SCHEMA eventkit_ledgers TO PUBLIC;
COMMENT ON SCHEMA eventkit_ledgers IS
'eventkit''s distributed dedup ledgers (dist_ledger_<stream_id>), each its stream owner''s; written only by eventkit';

CREATE TYPE eventkit.ingest_result AS (
	accepted bigint,
	duplicates bigint,
	conflicts bigint,
	quarantined bigint,
	rejected bigint
);
COMMENT ON TYPE eventkit.ingest_result IS
'what an ingest call did with the events of its payload, counted by outcome';
COMMENT ON COLUMN eventkit.ingest_result.accepted IS 'events stored in the stream';
COMMENT ON COLUMN eventkit.ingest_result.duplicates IS 'events whose messageId was already stored with the same content';
COMMENT ON COLUMN eventkit.ingest_result.conflicts IS 'events whose messageId was already stored with different content (logged in eventkit.conflicts)';
COMMENT ON COLUMN eventkit.ingest_result.quarantined IS 'events kept in eventkit.quarantine with their reasons';
COMMENT ON COLUMN eventkit.ingest_result.rejected IS 'events rejected by policy (eventkit.invalid_events = reject), not kept';

-- ==== Streams (src/catalog.c, src/partition.c) ====

-- One row per stream.
CREATE TABLE eventkit.streams (
	stream_id integer NOT NULL,
	relid regclass NOT NULL,
	partition_interval interval NOT NULL,
	premake integer NOT NULL,
	retention interval,
	key_partitions integer NOT NULL,
	dedup_window interval NOT NULL,
	ledger_gen integer NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	plan_id integer,				-- since 1.1
	plan_version integer,
	max_past interval,				-- since 1.3
	max_future interval,
	max_event_bytes integer,
	max_batch_bytes integer,
	max_batch_items integer,
	CONSTRAINT streams_pkey PRIMARY KEY (stream_id),
	CONSTRAINT streams_relid_key UNIQUE (relid),
	CONSTRAINT streams_premake_check CHECK (premake >= 0),
	CONSTRAINT streams_key_partitions_check CHECK (key_partitions >= 0),
	CONSTRAINT streams_ledger_gen_check CHECK (ledger_gen >= 1),
	CONSTRAINT streams_max_past_check CHECK (max_past > interval '0'),
	CONSTRAINT streams_max_future_check CHECK (max_future > interval '0'),
	CONSTRAINT streams_max_event_bytes_check CHECK (max_event_bytes > 0),
	CONSTRAINT streams_max_batch_bytes_check CHECK (max_batch_bytes > 0),
	CONSTRAINT streams_max_batch_items_check CHECK (max_batch_items > 0)
);
CREATE SEQUENCE eventkit.streams_stream_id_seq AS integer OWNED BY eventkit.streams.stream_id;
SELECT pg_catalog.pg_extension_config_dump('eventkit.streams', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.streams_stream_id_seq', '');
REVOKE ALL ON TABLE eventkit.streams FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.streams_stream_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.streams TO PUBLIC;

COMMENT ON TABLE eventkit.streams IS
'one row per stream (eventkit.create_stream): its table, partitioning, retention, dedup window, tracking plan, clock bounds and limits';
COMMENT ON COLUMN eventkit.streams.stream_id IS 'the stream''s id (eventkit.streams_stream_id_seq); other catalog tables refer to the stream by it';
COMMENT ON COLUMN eventkit.streams.relid IS 'the stream table (range-partitioned on ts)';
COMMENT ON COLUMN eventkit.streams.partition_interval IS 'the range of one time partition: whole months, or a fixed length of at least a minute';
COMMENT ON COLUMN eventkit.streams.premake IS 'how many future partitions are kept ready';
COMMENT ON COLUMN eventkit.streams.retention IS 'partitions wholly older than now - retention are dropped; NULL keeps everything';
COMMENT ON COLUMN eventkit.streams.key_partitions IS 'hash sub-partitions of each time partition by user_key; 0 for none';
COMMENT ON COLUMN eventkit.streams.dedup_window IS 'how long a messageId is remembered by the dedup ledger';
COMMENT ON COLUMN eventkit.streams.ledger_gen IS 'the dedup ledger''s current generation (eventkit.ledger_generations)';
COMMENT ON COLUMN eventkit.streams.created_at IS 'when the stream was created';
COMMENT ON COLUMN eventkit.streams.plan_id IS 'the tracking plan events are checked against (eventkit.plans), NULL for none';
COMMENT ON COLUMN eventkit.streams.plan_version IS 'the plan version pinned by attach_plan; NULL follows the plan''s latest version';
COMMENT ON COLUMN eventkit.streams.max_past IS 'an event older than now - max_past is quarantined (too_old); NULL: no bound';
COMMENT ON COLUMN eventkit.streams.max_future IS 'an event newer than now + max_future is quarantined (too_new); NULL: no bound';
COMMENT ON COLUMN eventkit.streams.max_event_bytes IS 'the stream''s own eventkit.max_event_bytes; NULL: the setting';
COMMENT ON COLUMN eventkit.streams.max_batch_bytes IS 'the stream''s own eventkit.max_batch_bytes; NULL: the setting';
COMMENT ON COLUMN eventkit.streams.max_batch_items IS 'the stream''s own eventkit.max_batch_items; NULL: the setting';
COMMENT ON SEQUENCE eventkit.streams_stream_id_seq IS 'ids of eventkit.streams';

CREATE FUNCTION eventkit.create_stream(stream text,
									   partition_interval interval DEFAULT '1 day',
									   premake integer DEFAULT 4,
									   retention interval DEFAULT NULL,
									   key_partitions integer DEFAULT 0,
									   dedup_window interval DEFAULT '7 days',
									   max_past interval DEFAULT NULL,
									   max_future interval DEFAULT '1 day',
									   max_event_bytes integer DEFAULT NULL,
									   max_batch_bytes integer DEFAULT NULL,
									   max_batch_items integer DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_stream(text, interval, integer, interval, integer, interval,
										   interval, interval, integer, integer, integer) IS
'Creates a stream: a partitioned table owned by the caller, its partitions, dedup ledger and jobs';

-- NULL leaves an option as it is; clear names the bounds and limits to remove.
CREATE FUNCTION eventkit.alter_stream(stream regclass,
									  partition_interval interval DEFAULT NULL,
									  premake integer DEFAULT NULL,
									  retention interval DEFAULT NULL,
									  key_partitions integer DEFAULT NULL,
									  dedup_window interval DEFAULT NULL,
									  max_past interval DEFAULT NULL,
									  max_future interval DEFAULT NULL,
									  max_event_bytes integer DEFAULT NULL,
									  max_batch_bytes integer DEFAULT NULL,
									  max_batch_items integer DEFAULT NULL,
									  clear text[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_alter_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.alter_stream(regclass, interval, integer, interval, integer, interval,
										  interval, interval, integer, integer, integer, text[]) IS
'Changes a stream''s options (owner only; limits above the settings: superuser only)';

CREATE FUNCTION eventkit.drop_stream(stream regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_drop_stream'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.drop_stream(regclass) IS
'drop a stream: its table with its partitions, its dedup ledger and every catalog row about it (owner only)';

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
COMMENT ON FUNCTION eventkit.partitions(regclass) IS
'the range partitions of a stream with their bounds, in time order';

CREATE FUNCTION eventkit.run_maintenance(stream regclass DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_run_maintenance'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.run_maintenance(regclass) IS
'premake and drop partitions, rotate and prune the dedup ledger: of one stream, or of every stream the caller owns (NULL)';

-- Forget streams whose table was dropped by a plain DROP TABLE / DROP SCHEMA:
-- their catalog rows, quarantine, logs and dedup ledger go with them.
CREATE FUNCTION eventkit.forget_dropped_streams()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_forget_dropped_streams'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.forget_dropped_streams() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.forget_dropped_streams() IS
'remove the catalog rows and dedup ledger of streams whose table no longer exists; returns how many (called by the sql_drop event trigger)';

-- The sql_drop event trigger forgets streams and rollups whose table was
-- dropped with a plain DROP TABLE / DROP SCHEMA.
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
		PERFORM eventkit.forget_dropped_rollups();
		PERFORM eventkit.forget_dropped_streams();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION eventkit.on_sql_drop() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.on_sql_drop() IS
'the function of event trigger eventkit_forget_dropped_streams';

CREATE EVENT TRIGGER eventkit_forget_dropped_streams ON sql_drop
	EXECUTE FUNCTION eventkit.on_sql_drop();
COMMENT ON EVENT TRIGGER eventkit_forget_dropped_streams IS
'after DROP TABLE or DROP SCHEMA: forget the streams and rollups whose table was dropped';

-- ==== Dedup ledger (src/dedup.c, src/ledger_filter.c) ====

-- Generations of a stream's dedup ledger: each generation is one table
-- (eventkit_internal.ledger_<stream_id>_g<gen>), dropped whole once it ended
-- more than dedup_window ago.  filter is the compact filter of a sealed
-- generation: a blocked Bloom filter over a 64-bit hash of every message id
-- it holds, built once after the generation is sealed; NULL for the current
-- generation and for sealed ones whose filter is not built yet (those are
-- probed for every id).  Stored uncompressed: the bits do not compress.
CREATE TABLE eventkit.ledger_generations (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	gen integer NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	filter bytea,					-- since 1.2
	CONSTRAINT ledger_generations_pkey PRIMARY KEY (stream_id, gen)
);
ALTER TABLE eventkit.ledger_generations ALTER COLUMN filter SET STORAGE EXTERNAL;
SELECT pg_catalog.pg_extension_config_dump('eventkit.ledger_generations', '');
REVOKE ALL ON TABLE eventkit.ledger_generations FROM PUBLIC;

COMMENT ON TABLE eventkit.ledger_generations IS
'the generations of each stream''s dedup ledger (one table each, eventkit_internal.ledger_<stream_id>_g<gen>)';
COMMENT ON COLUMN eventkit.ledger_generations.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.ledger_generations.gen IS 'the generation''s number, from 1';
COMMENT ON COLUMN eventkit.ledger_generations.started_at IS 'when the generation became the current one';
COMMENT ON COLUMN eventkit.ledger_generations.ended_at IS 'when it was sealed; NULL for the current generation';
COMMENT ON COLUMN eventkit.ledger_generations.filter IS 'blocked Bloom filter of a sealed generation''s message ids; NULL until built';

-- ==== Ingest and quarantine (src/ingest.c, src/quarantine.c) ====

-- One row per ingest call (not per event): what it did.
CREATE SEQUENCE eventkit.batch_id_seq AS bigint;
CREATE TABLE eventkit.ingest_batches (
	batch_id bigint NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	received_at timestamptz NOT NULL,
	ingested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	ingested_by name NOT NULL,
	items integer NOT NULL,
	accepted bigint NOT NULL,
	duplicates bigint NOT NULL,
	conflicts bigint NOT NULL,
	quarantined bigint NOT NULL,
	rejected bigint NOT NULL,
	CONSTRAINT ingest_batches_pkey PRIMARY KEY (batch_id)
);
CREATE INDEX ingest_batches_stream ON eventkit.ingest_batches (stream_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.ingest_batches', '');
REVOKE ALL ON TABLE eventkit.ingest_batches FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.batch_id_seq FROM PUBLIC;

COMMENT ON SEQUENCE eventkit.batch_id_seq IS
'ingest batch ids, taken once per ingest call; stream rows carry theirs (batch_id), rollup watermarks are positions in it';
COMMENT ON TABLE eventkit.ingest_batches IS
'one row per ingest call: the stream, who called, and the events by outcome';
COMMENT ON COLUMN eventkit.ingest_batches.batch_id IS 'the batch''s id (eventkit.batch_id_seq), also on the rows it stored';
COMMENT ON COLUMN eventkit.ingest_batches.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.ingest_batches.received_at IS 'the received_at argument of the call';
COMMENT ON COLUMN eventkit.ingest_batches.ingested_at IS 'the time of the ingesting transaction';
COMMENT ON COLUMN eventkit.ingest_batches.ingested_by IS 'the role that called ingest';
COMMENT ON COLUMN eventkit.ingest_batches.items IS 'events in the payload';
COMMENT ON COLUMN eventkit.ingest_batches.accepted IS 'events stored';
COMMENT ON COLUMN eventkit.ingest_batches.duplicates IS 'events already stored with the same content';
COMMENT ON COLUMN eventkit.ingest_batches.conflicts IS 'events already stored with different content';
COMMENT ON COLUMN eventkit.ingest_batches.quarantined IS 'events quarantined (a retry of a quarantined event included)';
COMMENT ON COLUMN eventkit.ingest_batches.rejected IS 'events rejected by policy';

-- Events whose messageId was already stored with different content.
CREATE TABLE eventkit.conflicts (
	conflict_id bigserial NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	batch_id bigint NOT NULL,
	item integer NOT NULL,
	message_id text NOT NULL,
	received_at timestamptz NOT NULL,
	payload jsonb NOT NULL,
	CONSTRAINT conflicts_pkey PRIMARY KEY (conflict_id)
);
CREATE INDEX conflicts_stream_message ON eventkit.conflicts (stream_id, message_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.conflicts_conflict_id_seq', '');
REVOKE ALL ON TABLE eventkit.conflicts FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.conflicts_conflict_id_seq FROM PUBLIC;

-- A stream's owner (a member of the owning role) reads its stream's logged
-- conflicts, as its quarantine (since 1.15: eventkit.worker_conflicts reads
-- each worker's as the caller).
ALTER TABLE eventkit.conflicts ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.conflicts FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) conflicts.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.conflicts TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.conflicts IS
'a stream''s owner (or a member of the owning role) reads the stream''s logged conflicts';

COMMENT ON TABLE eventkit.conflicts IS
'events whose messageId was already stored with different content: the stored copy is kept, the new one is logged here; readable by the stream''s owner';
COMMENT ON COLUMN eventkit.conflicts.conflict_id IS 'the row''s id';
COMMENT ON COLUMN eventkit.conflicts.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.conflicts.batch_id IS 'the ingest call (eventkit.ingest_batches)';
COMMENT ON COLUMN eventkit.conflicts.item IS 'the event''s position in the payload, from 1';
COMMENT ON COLUMN eventkit.conflicts.message_id IS 'the messageId stored before with other content';
COMMENT ON COLUMN eventkit.conflicts.received_at IS 'the received_at of the call';
COMMENT ON COLUMN eventkit.conflicts.payload IS 'the conflicting event as sent';
COMMENT ON SEQUENCE eventkit.conflicts_conflict_id_seq IS 'ids of eventkit.conflicts';

-- Events that could not be stored normally, with the reasons.  A retried
-- identical bad event is stored once: its content fingerprint (the one
-- dedup uses: sentAt and receivedAt left out; for an item that is not a
-- JSON object, a hash of its text) with its message id is unique per
-- stream.  Rows quarantined before 1.3 have no fingerprint.
CREATE TABLE eventkit.quarantine (
	quarantine_id bigserial NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	batch_id bigint NOT NULL,
	item integer NOT NULL,
	message_id text,
	received_at timestamptz NOT NULL,
	quarantined_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	reasons jsonb NOT NULL,
	payload jsonb,
	raw text,
	plan_version integer,
	envelope jsonb,					-- since 1.1
	plan_id integer,
	replayed_at timestamptz,
	replays integer NOT NULL DEFAULT 0,
	fingerprint bigint,				-- since 1.3
	origin jsonb,					-- since 1.3
	CONSTRAINT quarantine_pkey PRIMARY KEY (quarantine_id)
);
CREATE INDEX quarantine_stream ON eventkit.quarantine (stream_id, quarantine_id);
CREATE UNIQUE INDEX quarantine_retry_key ON eventkit.quarantine
	(stream_id, message_id, fingerprint) NULLS NOT DISTINCT
	WHERE fingerprint IS NOT NULL;
-- The events waiting for a partition (since 1.17): the redrive job reads a
-- stream's in id order, and a Citus coordinator's scheduler asks each worker
-- for the highest one per stream every eventkit.worker_quarantine_poll;
-- neither scans the rest of the quarantine (plan violations, which stay).
CREATE INDEX quarantine_out_of_range ON eventkit.quarantine (stream_id, quarantine_id)
	WHERE payload IS NOT NULL
	  AND reasons OPERATOR(pg_catalog.@>) '[{"reason": "out_of_range"}]'::pg_catalog.jsonb;
SELECT pg_catalog.pg_extension_config_dump('eventkit.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.quarantine_quarantine_id_seq', '');
REVOKE ALL ON TABLE eventkit.quarantine FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.quarantine_quarantine_id_seq FROM PUBLIC;

-- A stream's owner (a member of the owning role) reads its stream's
-- quarantine; nobody else but superusers.  eventkit's own code and views
-- read it as the table's owner, which row-level security does not restrict.
ALTER TABLE eventkit.quarantine ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.quarantine FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) quarantine.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.quarantine TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.quarantine IS
'a stream''s owner (or a member of the owning role) reads the stream''s quarantined events';

COMMENT ON TABLE eventkit.quarantine IS
'events that could not be stored normally, with the reasons; replayable (replay_quarantine), readable by the stream''s owner';
COMMENT ON COLUMN eventkit.quarantine.quarantine_id IS 'the row''s id';
COMMENT ON COLUMN eventkit.quarantine.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.quarantine.batch_id IS 'the ingest call that quarantined it (eventkit.ingest_batches)';
COMMENT ON COLUMN eventkit.quarantine.item IS 'the event''s position in that payload, from 1';
COMMENT ON COLUMN eventkit.quarantine.message_id IS 'the event''s messageId (or derived id), NULL when none could be read';
COMMENT ON COLUMN eventkit.quarantine.received_at IS 'the received_at of the ingest call';
COMMENT ON COLUMN eventkit.quarantine.quarantined_at IS 'when it was quarantined';
COMMENT ON COLUMN eventkit.quarantine.reasons IS 'JSON array of {"reason", "message"} (and plan findings); README lists the reason codes';
COMMENT ON COLUMN eventkit.quarantine.payload IS 'the event as sent, when it was a JSON value';
COMMENT ON COLUMN eventkit.quarantine.raw IS 'the text of an NDJSON line that is not JSON';
COMMENT ON COLUMN eventkit.quarantine.plan_version IS 'the tracking plan version it was checked against';
COMMENT ON COLUMN eventkit.quarantine.envelope IS 'what the batch envelope lent the event (sentAt, context), so that a replay sees it as first seen';
COMMENT ON COLUMN eventkit.quarantine.plan_id IS 'the tracking plan it was checked against';
COMMENT ON COLUMN eventkit.quarantine.replayed_at IS 'when it was last replayed and quarantined again';
COMMENT ON COLUMN eventkit.quarantine.replays IS 'how many replays quarantined it again';
COMMENT ON COLUMN eventkit.quarantine.fingerprint IS 'content fingerprint: a retry of the same event (same message_id and fingerprint) is not stored again; NULL before 1.3';
COMMENT ON COLUMN eventkit.quarantine.origin IS 'where an intake worker got the event: {"kind": "kafka", "source", "topic", "partition", "offset"}; NULL for events ingested through SQL or HTTP';
COMMENT ON SEQUENCE eventkit.quarantine_quarantine_id_seq IS 'ids of eventkit.quarantine';

-- On a Citus coordinator, a distributed stream's statistics include its
-- workers' (ingest on a worker logs there): these functions ask every worker,
-- as the caller; without Citus, on a worker, or without distributed streams
-- they return no rows.
CREATE FUNCTION eventkit.worker_stream_stats()
RETURNS TABLE (node text, stream_id integer, batches bigint, accepted bigint,
			   duplicates bigint, conflicts bigint, quarantined bigint, rejected bigint,
			   in_quarantine bigint, last_ingest_at timestamptz)
AS 'MODULE_PATHNAME', 'eventkit_worker_stream_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_stream_stats() IS
'on a Citus coordinator: each worker''s eventkit.stream_stats row of each distributed stream (node = host:port); no rows elsewhere';

CREATE FUNCTION eventkit.worker_quarantine(stream regclass)
RETURNS TABLE (node text, quarantine_id bigint, batch_id bigint, item integer,
			   message_id text, received_at timestamptz, quarantined_at timestamptz,
			   reasons jsonb, payload jsonb, raw text, replays integer)
AS 'MODULE_PATHNAME', 'eventkit_worker_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_quarantine(regclass) IS
'on a Citus coordinator: the rows the workers keep in quarantine for a distributed stream (node = host:port); the stream''s owner only; no rows elsewhere';

CREATE FUNCTION eventkit.worker_conflicts(stream regclass)
RETURNS TABLE (node text, conflict_id bigint, batch_id bigint, item integer,
			   message_id text, received_at timestamptz, payload jsonb)
AS 'MODULE_PATHNAME', 'eventkit_worker_conflicts'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_conflicts(regclass) IS
'on a Citus coordinator: the conflicts the workers logged for a distributed stream (node = host:port); the stream''s owner only; no rows elsewhere';

CREATE FUNCTION eventkit.worker_ingest_batches(stream regclass)
RETURNS TABLE (node text, batch_id bigint, received_at timestamptz, ingested_at timestamptz,
			   ingested_by name, items integer, accepted bigint, duplicates bigint,
			   conflicts bigint, quarantined bigint, rejected bigint)
AS 'MODULE_PATHNAME', 'eventkit_worker_ingest_batches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_ingest_batches(regclass) IS
'on a Citus coordinator: the workers'' eventkit.ingest_batches rows of a distributed stream (node = host:port); who may read ingest_batches only; no rows elsewhere';

CREATE VIEW eventkit.stream_stats AS
SELECT s.stream_id,
	   s.relid AS stream,
	   (COALESCE(b.batches, 0) OPERATOR(pg_catalog.+) COALESCE(w.batches, 0))::bigint AS batches,
	   (COALESCE(b.accepted, 0) OPERATOR(pg_catalog.+) COALESCE(w.accepted, 0))::bigint AS accepted,
	   (COALESCE(b.duplicates, 0) OPERATOR(pg_catalog.+) COALESCE(w.duplicates, 0))::bigint AS duplicates,
	   (COALESCE(b.conflicts, 0) OPERATOR(pg_catalog.+) COALESCE(w.conflicts, 0))::bigint AS conflicts,
	   (COALESCE(b.quarantined, 0) OPERATOR(pg_catalog.+) COALESCE(w.quarantined, 0))::bigint AS quarantined,
	   (COALESCE(b.rejected, 0) OPERATOR(pg_catalog.+) COALESCE(w.rejected, 0))::bigint AS rejected,
	   ((SELECT pg_catalog.count(*) FROM eventkit.quarantine q
		  WHERE q.stream_id OPERATOR(pg_catalog.=) s.stream_id)
		OPERATOR(pg_catalog.+) COALESCE(w.in_quarantine, 0))::bigint AS in_quarantine,
	   GREATEST(b.last_ingest_at, w.last_ingest_at) AS last_ingest_at
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
			  GROUP BY stream_id) b ON b.stream_id OPERATOR(pg_catalog.=) s.stream_id
  LEFT JOIN (SELECT ws.stream_id,
					pg_catalog.sum(ws.batches) AS batches,
					pg_catalog.sum(ws.accepted) AS accepted,
					pg_catalog.sum(ws.duplicates) AS duplicates,
					pg_catalog.sum(ws.conflicts) AS conflicts,
					pg_catalog.sum(ws.quarantined) AS quarantined,
					pg_catalog.sum(ws.rejected) AS rejected,
					pg_catalog.sum(ws.in_quarantine) AS in_quarantine,
					pg_catalog.max(ws.last_ingest_at) AS last_ingest_at
			   FROM eventkit.worker_stream_stats() ws
			  GROUP BY ws.stream_id) w ON w.stream_id OPERATOR(pg_catalog.=) s.stream_id;
REVOKE ALL ON TABLE eventkit.stream_stats FROM PUBLIC;
GRANT SELECT ON eventkit.stream_stats TO PUBLIC;

COMMENT ON VIEW eventkit.stream_stats IS
'per stream: ingest calls and their events by outcome, rows now in quarantine, last ingest; on a Citus coordinator, a distributed stream''s counts include its workers''';
COMMENT ON COLUMN eventkit.stream_stats.stream_id IS 'the stream''s id';
COMMENT ON COLUMN eventkit.stream_stats.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.stream_stats.batches IS 'ingest calls';
COMMENT ON COLUMN eventkit.stream_stats.accepted IS 'events stored';
COMMENT ON COLUMN eventkit.stream_stats.duplicates IS 'events already stored with the same content';
COMMENT ON COLUMN eventkit.stream_stats.conflicts IS 'events already stored with different content';
COMMENT ON COLUMN eventkit.stream_stats.quarantined IS 'events quarantined, every retry counted';
COMMENT ON COLUMN eventkit.stream_stats.rejected IS 'events rejected by policy';
COMMENT ON COLUMN eventkit.stream_stats.in_quarantine IS 'rows in eventkit.quarantine now (on a Citus coordinator, with the workers'' rows)';
COMMENT ON COLUMN eventkit.stream_stats.last_ingest_at IS 'the time of the last ingest call';

CREATE FUNCTION eventkit.ingest(stream regclass, payload jsonb,
								received_at timestamptz DEFAULT pg_catalog.now())
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_ingest_jsonb'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.ingest(regclass, jsonb, timestamptz) IS
'ingest one event, an array of events or a Segment batch envelope into a stream: dedup, checks, partitions, quarantine';

CREATE FUNCTION eventkit.ingest(stream regclass, payload text,
								received_at timestamptz DEFAULT pg_catalog.now())
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_ingest_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.ingest(regclass, text, timestamptz) IS
'ingest JSON text or NDJSON into a stream; a line that is not JSON is quarantined, the others are ingested';

CREATE FUNCTION eventkit.ingest_verbose(stream regclass, payload jsonb,
										received_at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE(item integer, message_id text, status text, reasons jsonb)
AS 'MODULE_PATHNAME', 'eventkit_ingest_verbose'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.ingest_verbose(regclass, jsonb, timestamptz) IS
'ingest as eventkit.ingest(jsonb) does, returning one row per event with its status and reasons';

CREATE FUNCTION eventkit.replay_quarantine(stream regclass, ids bigint[] DEFAULT NULL)
RETURNS eventkit.ingest_result
AS 'MODULE_PATHNAME', 'eventkit_replay_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.replay_quarantine(regclass, bigint[]) IS
'run a stream''s quarantined events (those listed, or all) through ingest again, dedup included; needs the stream''s ownership';

CREATE FUNCTION eventkit.discard_quarantine(stream regclass, ids bigint[] DEFAULT NULL,
											reasons text[] DEFAULT NULL,
											older_than interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_discard_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.discard_quarantine(regclass, bigint[], text[], interval) IS
'delete a stream''s quarantined events (those listed, with one of the reasons, quarantined longer ago than older_than); needs the stream''s ownership';

-- ==== JSON Schema validation (src/jsonschema*.c) ====

-- Errors of an instance against a JSON Schema (draft-07), in Ajv's shape:
-- [{"keyword", "instancePath", "schemaPath", "message"}, ...]; [] when valid.
CREATE FUNCTION eventkit.schema_errors(schema jsonb, instance jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'eventkit_schema_errors'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.schema_errors(jsonb, jsonb) IS
'validation errors of instance against a JSON Schema draft-07 schema, [] when valid';

CREATE FUNCTION eventkit.schema_valid(schema jsonb, instance jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_schema_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.schema_valid(jsonb, jsonb) IS
'whether instance is valid against a JSON Schema draft-07 schema';

-- ==== Tracking plans (src/plan.c, src/plan_check.c) ====

-- A tracking plan: a name and its versions.  Versions are immutable: every
-- eventkit.create_plan() call stores a new one.  A plan's owner is a role
-- name (see the top).  DROP ROLE cannot see rows of a table: after it the
-- plan keeps the name, only superusers can add versions (or a role created
-- again under that name), eventkit.health_plans warns, and
-- eventkit.alter_plan_owner() gives the plan a new owner.
CREATE TABLE eventkit.plans (
	plan_id integer NOT NULL,
	name text NOT NULL,
	owner name NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT plans_pkey PRIMARY KEY (plan_id),
	CONSTRAINT plans_name_key UNIQUE (name)
);
CREATE SEQUENCE eventkit.plans_plan_id_seq AS integer OWNED BY eventkit.plans.plan_id;

-- No foreign key to eventkit.plans (see the top; it was dropped in 1.3):
-- create_plan writes a plan and its versions under a lock on
-- eventkit.plans, and nothing deletes plans.
CREATE TABLE eventkit.plan_versions (
	plan_id integer NOT NULL,
	version integer NOT NULL,
	spec jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL,
	CONSTRAINT plan_versions_pkey PRIMARY KEY (plan_id, version),
	CONSTRAINT plan_versions_version_check CHECK (version >= 1)
);

-- Violations found per batch, aggregated (one row per batch, plan version,
-- event, keyword, property path and action; never updated).
CREATE TABLE eventkit.batch_violations (
	batch_id bigint NOT NULL,		-- eventkit.ingest_batches (no foreign key: see the top)
	stream_id integer NOT NULL,		-- eventkit.streams
	plan_id integer NOT NULL,		-- eventkit.plan_versions, with plan_version
	plan_version integer NOT NULL,
	event text,
	keyword text NOT NULL,
	property_path text NOT NULL,
	action text NOT NULL,
	violations bigint NOT NULL,
	violation_id bigserial NOT NULL,	-- since 1.3
	CONSTRAINT batch_violations_pkey PRIMARY KEY (violation_id)
);
CREATE INDEX batch_violations_stream_batch ON eventkit.batch_violations (stream_id, batch_id);

SELECT pg_catalog.pg_extension_config_dump('eventkit.plans', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.plans_plan_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.plan_versions', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_violations', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_violations_violation_id_seq', '');
REVOKE ALL ON TABLE eventkit.plans, eventkit.plan_versions, eventkit.batch_violations FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.plans_plan_id_seq, eventkit.batch_violations_violation_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.plans, eventkit.plan_versions TO PUBLIC;

COMMENT ON TABLE eventkit.plans IS
'tracking plans: a name, an owner and versions (eventkit.plan_versions)';
COMMENT ON COLUMN eventkit.plans.plan_id IS 'the plan''s id (eventkit.plans_plan_id_seq)';
COMMENT ON COLUMN eventkit.plans.name IS 'the plan''s name, as create_plan and attach_plan take it';
COMMENT ON COLUMN eventkit.plans.owner IS 'the owning role''s name: its members add versions';
COMMENT ON COLUMN eventkit.plans.created_at IS 'when the plan''s first version was stored';
COMMENT ON SEQUENCE eventkit.plans_plan_id_seq IS 'ids of eventkit.plans';
COMMENT ON TABLE eventkit.plan_versions IS
'the immutable versions of each tracking plan, numbered from 1';
COMMENT ON COLUMN eventkit.plan_versions.plan_id IS 'the plan (eventkit.plans)';
COMMENT ON COLUMN eventkit.plan_versions.version IS 'the version''s number, from 1';
COMMENT ON COLUMN eventkit.plan_versions.spec IS 'the plan spec as given to create_plan';
COMMENT ON COLUMN eventkit.plan_versions.created_at IS 'when the version was stored';
COMMENT ON COLUMN eventkit.plan_versions.created_by IS 'the role that stored it';
COMMENT ON TABLE eventkit.batch_violations IS
'tracking-plan findings per ingest call, counted by event, keyword, property path and action (summed by eventkit.violation_stats)';
COMMENT ON COLUMN eventkit.batch_violations.batch_id IS 'the ingest call (eventkit.ingest_batches)';
COMMENT ON COLUMN eventkit.batch_violations.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.batch_violations.plan_id IS 'the tracking plan (eventkit.plans)';
COMMENT ON COLUMN eventkit.batch_violations.plan_version IS 'the plan version the events were checked against';
COMMENT ON COLUMN eventkit.batch_violations.event IS 'the event name, NULL for events without one';
COMMENT ON COLUMN eventkit.batch_violations.keyword IS 'the JSON Schema keyword, or unplanned_event / unplanned_property';
COMMENT ON COLUMN eventkit.batch_violations.property_path IS 'the instance path, array indexes generalised';
COMMENT ON COLUMN eventkit.batch_violations.action IS 'what the plan''s policy did: allow, tag, omit, quarantine or reject';
COMMENT ON COLUMN eventkit.batch_violations.violations IS 'how many findings';
COMMENT ON COLUMN eventkit.batch_violations.violation_id IS 'the row''s id';
COMMENT ON SEQUENCE eventkit.batch_violations_violation_id_seq IS 'ids of eventkit.batch_violations';

-- Violation statistics are derived from the events of a stream, so, as
-- pg_stats does, the view shows only the streams the user may SELECT from.
CREATE FUNCTION eventkit.worker_violation_stats()
RETURNS TABLE (node text, stream_id integer, plan text, event text, keyword text,
			   property_path text, action text, violations bigint, batches bigint,
			   first_plan_version integer, last_plan_version integer, last_batch_id bigint)
AS 'MODULE_PATHNAME', 'eventkit_worker_violation_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_violation_stats() IS
'on a Citus coordinator: each worker''s eventkit.violation_stats rows of the distributed streams (node = host:port; the streams the caller may read there); no rows elsewhere';

CREATE VIEW eventkit.violation_stats AS
SELECT x.stream_id,
	   s.relid AS stream,
	   x.plan,
	   x.event,
	   x.keyword,
	   x.property_path,
	   x.action,
	   pg_catalog.sum(x.violations)::bigint AS violations,
	   pg_catalog.sum(x.batches)::bigint AS batches,
	   pg_catalog.min(x.first_plan_version) AS first_plan_version,
	   pg_catalog.max(x.last_plan_version) AS last_plan_version,
	   pg_catalog.max(x.last_batch_id) AS last_batch_id
  FROM (SELECT v.stream_id, p.name AS plan, v.event, v.keyword, v.property_path, v.action,
			   pg_catalog.sum(v.violations)::bigint AS violations,
			   pg_catalog.count(DISTINCT v.batch_id) AS batches,
			   pg_catalog.min(v.plan_version) AS first_plan_version,
			   pg_catalog.max(v.plan_version) AS last_plan_version,
			   pg_catalog.max(v.batch_id) AS last_batch_id
		  FROM eventkit.batch_violations v
		  JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) v.plan_id
		 GROUP BY v.stream_id, p.name, v.event, v.keyword, v.property_path, v.action
		UNION ALL
		SELECT w.stream_id, w.plan, w.event, w.keyword, w.property_path, w.action,
			   w.violations, w.batches, w.first_plan_version, w.last_plan_version,
			   w.last_batch_id
		  FROM eventkit.worker_violation_stats() w) x
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) x.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT')
 GROUP BY x.stream_id, s.relid, x.plan, x.event, x.keyword, x.property_path, x.action;
REVOKE ALL ON TABLE eventkit.violation_stats FROM PUBLIC;
GRANT SELECT ON eventkit.violation_stats TO PUBLIC;

COMMENT ON VIEW eventkit.violation_stats IS
'tracking-plan findings summed per stream, plan, event, keyword, property path and action (streams the user may read); on a Citus coordinator, a distributed stream''s findings include its workers''';
COMMENT ON COLUMN eventkit.violation_stats.stream_id IS 'the stream''s id';
COMMENT ON COLUMN eventkit.violation_stats.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.violation_stats.plan IS 'the tracking plan''s name';
COMMENT ON COLUMN eventkit.violation_stats.event IS 'the event name, NULL for events without one';
COMMENT ON COLUMN eventkit.violation_stats.keyword IS 'the JSON Schema keyword, or unplanned_event / unplanned_property';
COMMENT ON COLUMN eventkit.violation_stats.property_path IS 'the instance path, array indexes generalised';
COMMENT ON COLUMN eventkit.violation_stats.action IS 'what the plan''s policy did';
COMMENT ON COLUMN eventkit.violation_stats.violations IS 'how many findings';
COMMENT ON COLUMN eventkit.violation_stats.batches IS 'in how many ingest calls';
COMMENT ON COLUMN eventkit.violation_stats.first_plan_version IS 'the first plan version that found it';
COMMENT ON COLUMN eventkit.violation_stats.last_plan_version IS 'the last plan version that found it';
COMMENT ON COLUMN eventkit.violation_stats.last_batch_id IS 'the last ingest call that found it';

-- (1.4, issue 18: strict; a non-strict plan ignores unknown schema keywords
-- with one WARNING listing them)
CREATE FUNCTION eventkit.create_plan(name text, spec jsonb, strict boolean DEFAULT true)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_create_plan'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.create_plan(text, jsonb, boolean) IS
'store a new version of a tracking plan (eventkit''s format, Segment''s tracking-plan export or Config API plan; a new plan owned by the caller, or a plan the caller owns); strict => false ignores unknown schema keywords with a warning; returns the version';

CREATE FUNCTION eventkit.attach_plan(stream regclass, plan text, version integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_attach_plan'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.attach_plan(regclass, text, integer) IS
'check a stream''s events against a tracking plan, pinned to a version or (NULL) following the latest; needs the stream''s ownership';

CREATE FUNCTION eventkit.detach_plan(stream regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_detach_plan'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.detach_plan(regclass) IS
'stop checking a stream''s events against a tracking plan; needs the stream''s ownership';

CREATE FUNCTION eventkit.alter_plan_owner(plan text, new_owner regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_alter_plan_owner'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.alter_plan_owner(text, regrole) IS
'give a tracking plan a new owner (its owner or a superuser; the caller must be a member of the new owner)';

-- ==== Rollups (src/rollup.c, rollup_sql.c, rollup_fold.c, rollup_delta.c, rollup_values.c) ====

-- One row per rollup: its definition, its watermark (every event with a
-- batch_id up to it is folded in) and how often the background worker
-- refreshes it.  Readable by everyone (the realtime views read the
-- watermark), written only through the functions below.  A value that does
-- not fit a rollup never fails a batch or a refresh: skipped_values counts,
-- by reason, the values its refreshes skipped or bounded.  format tells what
-- its realtime view and delta table were made for (1: before 1.3; a refresh
-- makes them again for the current format, 2); restoring a dump from before
-- 1.3 leaves it at its default, 1.
CREATE TABLE eventkit.rollups (
	rollup_id integer NOT NULL,
	name text NOT NULL,
	relid regclass NOT NULL,
	realtime_view regclass NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	stream regclass NOT NULL,
	bucket interval NOT NULL,
	dimensions text[] NOT NULL,
	measures text[] NOT NULL,
	schedule interval NOT NULL DEFAULT '1 minute',
	watermark bigint NOT NULL DEFAULT 0,
	backfill_target bigint NOT NULL DEFAULT 0,
	events_folded bigint NOT NULL DEFAULT 0,
	last_refresh_at timestamptz,
	last_refresh_events bigint,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	skipped_values jsonb NOT NULL DEFAULT '{}',		-- since 1.3
	last_skipped_at timestamptz,
	format integer NOT NULL DEFAULT 1,
	CONSTRAINT rollups_pkey PRIMARY KEY (rollup_id),
	CONSTRAINT rollups_relid_key UNIQUE (relid),
	CONSTRAINT rollups_schedule_check CHECK (schedule >= interval '1 second'),
	CONSTRAINT rollups_watermark_check CHECK (watermark >= 0)
);
CREATE INDEX rollups_stream ON eventkit.rollups (stream_id);
CREATE SEQUENCE eventkit.rollups_rollup_id_seq AS integer OWNED BY eventkit.rollups.rollup_id;
SELECT pg_catalog.pg_extension_config_dump('eventkit.rollups', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.rollups_rollup_id_seq', '');
REVOKE ALL ON TABLE eventkit.rollups FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.rollups_rollup_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.rollups TO PUBLIC;

COMMENT ON TABLE eventkit.rollups IS
'one row per rollup (eventkit.create_rollup): its definition, watermark, backfill progress and refresh schedule';
COMMENT ON COLUMN eventkit.rollups.rollup_id IS 'the rollup''s id (eventkit.rollups_rollup_id_seq)';
COMMENT ON COLUMN eventkit.rollups.name IS 'the rollup''s name as given to create_rollup';
COMMENT ON COLUMN eventkit.rollups.relid IS 'the rollup table (partial states per bucket and dimensions)';
COMMENT ON COLUMN eventkit.rollups.realtime_view IS 'the <name>_realtime view: folded buckets and the unfolded tail';
COMMENT ON COLUMN eventkit.rollups.stream_id IS 'the stream it rolls up (eventkit.streams)';
COMMENT ON COLUMN eventkit.rollups.stream IS 'the stream table (the same stream as stream_id)';
COMMENT ON COLUMN eventkit.rollups.bucket IS 'the bucket width';
COMMENT ON COLUMN eventkit.rollups.dimensions IS 'the dimensions as given to create_rollup';
COMMENT ON COLUMN eventkit.rollups.measures IS 'the measures as given to create_rollup';
COMMENT ON COLUMN eventkit.rollups.schedule IS 'how often the background worker refreshes it';
COMMENT ON COLUMN eventkit.rollups.watermark IS 'every event with a batch_id up to it is folded in, none above it';
COMMENT ON COLUMN eventkit.rollups.backfill_target IS 'the batch position when it was created: the history is folded once watermark reaches it';
COMMENT ON COLUMN eventkit.rollups.events_folded IS 'events folded in since it was created';
COMMENT ON COLUMN eventkit.rollups.last_refresh_at IS 'when it was last refreshed';
COMMENT ON COLUMN eventkit.rollups.last_refresh_events IS 'events folded by the last refresh';
COMMENT ON COLUMN eventkit.rollups.created_at IS 'when it was created';
COMMENT ON COLUMN eventkit.rollups.skipped_values IS
	'values left out of a measure (not_a_number, out_of_range) and dimension values bounded (dimension_truncated), counted at refresh';
COMMENT ON COLUMN eventkit.rollups.last_skipped_at IS 'when a refresh last skipped or bounded a value';
COMMENT ON COLUMN eventkit.rollups.format IS
	'format of the rollup''s realtime view and delta table: 1 before eventkit 1.3, 2 since';
COMMENT ON SEQUENCE eventkit.rollups_rollup_id_seq IS 'ids of eventkit.rollups';

-- Backfill progress: how much of the history that existed at creation is folded.
CREATE VIEW eventkit.rollup_status AS
SELECT r.rollup_id, r.name, r.relid AS rollup, r.stream, r.schedule, r.watermark,
	   r.backfill_target,
	   r.watermark OPERATOR(pg_catalog.>=) r.backfill_target AS backfilled,
	   r.events_folded, r.last_refresh_at, r.last_refresh_events,
	   r.skipped_values, r.last_skipped_at
  FROM eventkit.rollups r;
REVOKE ALL ON TABLE eventkit.rollup_status FROM PUBLIC;
GRANT SELECT ON eventkit.rollup_status TO PUBLIC;

COMMENT ON VIEW eventkit.rollup_status IS
'per rollup: watermark, backfill progress, last refresh and values skipped';
COMMENT ON COLUMN eventkit.rollup_status.rollup_id IS 'the rollup''s id';
COMMENT ON COLUMN eventkit.rollup_status.name IS 'the rollup''s name';
COMMENT ON COLUMN eventkit.rollup_status.rollup IS 'the rollup table';
COMMENT ON COLUMN eventkit.rollup_status.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.rollup_status.schedule IS 'how often the background worker refreshes it';
COMMENT ON COLUMN eventkit.rollup_status.watermark IS 'every event with a batch_id up to it is folded in';
COMMENT ON COLUMN eventkit.rollup_status.backfill_target IS 'the batch position when it was created';
COMMENT ON COLUMN eventkit.rollup_status.backfilled IS 'whether the history that existed at creation is folded in';
COMMENT ON COLUMN eventkit.rollup_status.events_folded IS 'events folded in since it was created';
COMMENT ON COLUMN eventkit.rollup_status.last_refresh_at IS 'when it was last refreshed';
COMMENT ON COLUMN eventkit.rollup_status.last_refresh_events IS 'events folded by the last refresh';
COMMENT ON COLUMN eventkit.rollup_status.skipped_values IS 'values skipped or bounded since it was created, by reason';
COMMENT ON COLUMN eventkit.rollup_status.last_skipped_at IS 'when a refresh last skipped or bounded a value';

CREATE FUNCTION eventkit.refresh_rollup(name text, max_events bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_refresh_rollup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.refresh_rollup(text, bigint) IS
'fold the events committed since the rollup''s watermark (about max_events of them, whole batches; NULL: all); returns how many';

CREATE FUNCTION eventkit.drop_rollup(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_drop_rollup'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.drop_rollup(text) IS
'drop a rollup: its table, view, refresh job and catalog row';

CREATE FUNCTION eventkit.set_rollup_schedule(name text, schedule interval)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_set_rollup_schedule'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.set_rollup_schedule(text, interval) IS
'change how often the background worker refreshes a rollup';

-- Fold the history of a rollup created with backfill => false (or whose
-- backfill was interrupted), committing after each chunk of about
-- chunk_events events: interruptible, and resumable by calling it again.
-- (No SET clause: a procedure with one cannot commit.)
CREATE PROCEDURE eventkit.backfill_rollup(name text, chunk_events bigint DEFAULT 100000)
LANGUAGE plpgsql
AS $$
DECLARE
	r record;
	n bigint;
	total bigint := 0;
BEGIN
	IF backfill_rollup.name IS NULL OR chunk_events IS NULL OR chunk_events OPERATOR(pg_catalog.<=) 0 THEN
		RAISE EXCEPTION 'name must not be null and chunk_events must be positive'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	LOOP
		SELECT x.watermark, x.backfill_target INTO r
		  FROM eventkit.rollups x
		 WHERE x.relid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(backfill_rollup.name);
		IF NOT FOUND THEN
			RAISE EXCEPTION 'rollup "%" does not exist', backfill_rollup.name
				USING ERRCODE = 'undefined_object';
		END IF;
		EXIT WHEN r.watermark OPERATOR(pg_catalog.>=) r.backfill_target;
		n := eventkit.refresh_rollup(backfill_rollup.name, chunk_events);
		total := total OPERATOR(pg_catalog.+) n;
		RAISE NOTICE 'rollup %: % events of history folded', backfill_rollup.name, total;
		COMMIT;
	END LOOP;
END
$$;
COMMENT ON PROCEDURE eventkit.backfill_rollup(text, bigint) IS
'fold a rollup''s history chunk by chunk, committing after each: interruptible and resumable';

CREATE FUNCTION eventkit.forget_dropped_rollups()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_forget_dropped_rollups'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.forget_dropped_rollups() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.forget_dropped_rollups() IS
'remove the catalog rows and refresh jobs of rollups whose table or stream no longer exists; returns how many (called by the sql_drop event trigger)';

-- What the realtime views call to apply the rules the fold applies in C.
CREATE FUNCTION eventkit.rollup_number(value jsonb, measure text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_rollup_number_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_number(jsonb, text) IS
	'the number a rollup measure (sum, avg, min, max, percentile) takes from a JSON value, NULL if none or skipped';
CREATE FUNCTION eventkit.rollup_number(value numeric, measure text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_rollup_number_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_number(numeric, text) IS
	'the number a rollup measure (sum, avg, min, max, percentile) takes from a column value, NULL if skipped';
CREATE FUNCTION eventkit.rollup_skipped(value jsonb, measure text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_rollup_skipped_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_skipped(jsonb, text) IS
	'whether a rollup measure skips a JSON value (not a number, or out of its range)';
CREATE FUNCTION eventkit.rollup_skipped(value numeric, measure text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_rollup_skipped_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_skipped(numeric, text) IS
	'whether a rollup measure skips a column value (NaN, or out of its range)';
CREATE FUNCTION eventkit.rollup_dimension(value text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_rollup_dimension'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_dimension(text) IS
	'a text dimension value as a rollup key holds it: over 300 bytes, its first 64 characters, ...[sha256:<32 hex digits>]';

-- ==== Background worker and jobs (src/worker.c, src/jobs.c) ====

-- The kinds of jobs, one row each.  The rows are the extension's own (this
-- script writes them, pg_dump does not dump them), so the foreign keys of
-- jobs and job_runs to this table hold during a parallel restore too.  A
-- new kind is a new row here (in both 1.3 scripts while 1.3 is not
-- released); sql/catalog.sql checks that the kinds are those the C code
-- schedules.
CREATE TABLE eventkit.job_kinds (
	kind text NOT NULL,
	stream_job boolean NOT NULL,
	description text NOT NULL,
	CONSTRAINT job_kinds_pkey PRIMARY KEY (kind)
);
INSERT INTO eventkit.job_kinds (kind, stream_job, description) VALUES
	('premake', true,
	 'make the partitions for now and premake intervals ahead, and the past ones quarantined out_of_range events wait for'),
	('retention', true,
	 'drop the partitions whose whole range is older than now - retention'),
	('ledger', true,
	 'build the filters of sealed ledger generations, start a new generation, drop the expired ones'),
	('redrive', true,
	 'replay the quarantined out_of_range events whose partition exists now'),
	('refresh_rollup', false,
	 'refresh the rollup named by the job''s target (eventkit.refresh_rollup)');
REVOKE ALL ON TABLE eventkit.job_kinds FROM PUBLIC;
GRANT SELECT ON eventkit.job_kinds TO PUBLIC;

COMMENT ON TABLE eventkit.job_kinds IS
'the kinds of background jobs and what they do (rows of the extension, not dumped)';
COMMENT ON COLUMN eventkit.job_kinds.kind IS 'the kind''s name, as eventkit.jobs.kind holds it';
COMMENT ON COLUMN eventkit.job_kinds.stream_job IS 'true: one job per stream, with its stream_id; false: identified by kind and target';
COMMENT ON COLUMN eventkit.job_kinds.description IS 'what a job of this kind does';

-- One row per job.  Stream jobs (premake, retention, ledger, redrive) carry
-- the stream's id (target is its name when the job was made, for reading);
-- other jobs (refresh_rollup) are identified by kind and target.
CREATE TABLE eventkit.jobs (
	job_id bigserial NOT NULL,
	kind text NOT NULL,
	stream_id integer,				-- eventkit.streams (no foreign key: see the top)
	target text NOT NULL,
	schedule interval NOT NULL,
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	next_run_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_run_at timestamptz,
	last_status text,
	last_error text,
	failures integer NOT NULL DEFAULT 0,
	CONSTRAINT jobs_pkey PRIMARY KEY (job_id),
	CONSTRAINT jobs_kind_fkey FOREIGN KEY (kind) REFERENCES eventkit.job_kinds (kind),
	CONSTRAINT jobs_schedule_check CHECK (schedule >= interval '1 second'),
	CONSTRAINT jobs_last_status_check CHECK (last_status IN ('succeeded', 'failed', 'skipped', 'crashed')),
	CONSTRAINT jobs_failures_check CHECK (failures >= 0)
);
CREATE UNIQUE INDEX jobs_stream_kind ON eventkit.jobs (stream_id, kind) WHERE stream_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_kind_target ON eventkit.jobs (kind, target) WHERE stream_id IS NULL;
CREATE INDEX jobs_next_run_at ON eventkit.jobs (next_run_at) WHERE enabled;

-- One row per run of a job; finished runs are deleted after
-- eventkit.job_history_retention, and a job's runs with the job.
CREATE TABLE eventkit.job_runs (
	run_id bigserial NOT NULL,
	job_id bigint NOT NULL,			-- eventkit.jobs (no foreign key: see the top)
	kind text NOT NULL,
	target text NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	status text NOT NULL,
	message text,
	rows_affected bigint,
	pid integer,
	CONSTRAINT job_runs_pkey PRIMARY KEY (run_id),
	CONSTRAINT job_runs_kind_fkey FOREIGN KEY (kind) REFERENCES eventkit.job_kinds (kind),
	CONSTRAINT job_runs_status_check CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'crashed'))
);
CREATE INDEX job_runs_job ON eventkit.job_runs (job_id, run_id);
CREATE INDEX job_runs_running ON eventkit.job_runs (job_id) WHERE status = 'running';
CREATE INDEX job_runs_ended_at ON eventkit.job_runs (ended_at);

SELECT pg_catalog.pg_extension_config_dump('eventkit.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.jobs_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.job_runs_run_id_seq', '');
REVOKE ALL ON TABLE eventkit.jobs, eventkit.job_runs FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.jobs_job_id_seq, eventkit.job_runs_run_id_seq FROM PUBLIC;
GRANT SELECT ON eventkit.jobs, eventkit.job_runs TO pg_monitor;

COMMENT ON TABLE eventkit.jobs IS
'the background worker''s jobs: one per stream and kind, or per kind and target (rollup refreshes)';
COMMENT ON COLUMN eventkit.jobs.job_id IS 'the job''s id';
COMMENT ON COLUMN eventkit.jobs.kind IS 'what the job does (eventkit.job_kinds)';
COMMENT ON COLUMN eventkit.jobs.stream_id IS 'the stream, for stream jobs (eventkit.streams); NULL for others';
COMMENT ON COLUMN eventkit.jobs.target IS 'the stream''s name when the job was made (for reading), or the rollup''s name';
COMMENT ON COLUMN eventkit.jobs.schedule IS 'run every schedule, from the start of the last successful run';
COMMENT ON COLUMN eventkit.jobs.enabled IS 'false pauses the job';
COMMENT ON COLUMN eventkit.jobs.created_at IS 'when the job was made';
COMMENT ON COLUMN eventkit.jobs.next_run_at IS 'when it is due next';
COMMENT ON COLUMN eventkit.jobs.last_run_at IS 'when its last run started';
COMMENT ON COLUMN eventkit.jobs.last_status IS 'how its last run ended: succeeded, failed, skipped or crashed';
COMMENT ON COLUMN eventkit.jobs.last_error IS 'the error of its last failed run';
COMMENT ON COLUMN eventkit.jobs.failures IS 'failed or crashed runs in a row';
COMMENT ON SEQUENCE eventkit.jobs_job_id_seq IS 'ids of eventkit.jobs';
COMMENT ON TABLE eventkit.job_runs IS
'one row per run of a job; finished runs are kept for eventkit.job_history_retention';
COMMENT ON COLUMN eventkit.job_runs.run_id IS 'the run''s id';
COMMENT ON COLUMN eventkit.job_runs.job_id IS 'the job (eventkit.jobs)';
COMMENT ON COLUMN eventkit.job_runs.kind IS 'the job''s kind (eventkit.job_kinds)';
COMMENT ON COLUMN eventkit.job_runs.target IS 'the job''s target';
COMMENT ON COLUMN eventkit.job_runs.started_at IS 'when the run started';
COMMENT ON COLUMN eventkit.job_runs.ended_at IS 'when it ended; NULL while running';
COMMENT ON COLUMN eventkit.job_runs.status IS 'running, succeeded, failed, skipped or crashed';
COMMENT ON COLUMN eventkit.job_runs.message IS 'the error, or what the run did';
COMMENT ON COLUMN eventkit.job_runs.rows_affected IS 'what the run counted (partitions made or dropped, events replayed, events folded)';
COMMENT ON COLUMN eventkit.job_runs.pid IS 'the process that ran it';
COMMENT ON SEQUENCE eventkit.job_runs_run_id_seq IS 'ids of eventkit.job_runs';

-- (Re)creates a stream's default jobs; existing ones are kept.
CREATE FUNCTION eventkit.schedule_stream_jobs(stream regclass)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_schedule_stream_jobs'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.schedule_stream_jobs(regclass) FROM PUBLIC;
COMMENT ON FUNCTION eventkit.schedule_stream_jobs(regclass) IS
'(re)create a stream''s jobs, keeping those that exist; returns how many were created';

-- Jobs that are not per stream (kind 'refresh_rollup', target the rollup's name).
CREATE FUNCTION eventkit.schedule_job(kind text, target text, schedule interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_schedule_job'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.schedule_job(text, text, interval) FROM PUBLIC;
COMMENT ON FUNCTION eventkit.schedule_job(text, text, interval) IS
'register a job that is not per stream (kind refresh_rollup); an existing one is kept; returns its id';

CREATE FUNCTION eventkit.unschedule_job(kind text, target text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_unschedule_job'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit.unschedule_job(text, text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit.unschedule_job(text, text) IS
'remove a job that is not per stream, and its runs';

-- The scheduler of the current database, from shared memory.
CREATE FUNCTION eventkit.scheduler_status(OUT preloaded boolean, OUT enabled boolean,
										  OUT launcher_pid integer, OUT pid integer,
										  OUT state text, OUT started_at timestamptz,
										  OUT last_loop_at timestamptz,
										  OUT running_jobs integer)
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_scheduler_status'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.scheduler_status() IS
'the background worker''s scheduler of the current database, from shared memory';

-- Keep the scheduler out of a database while a dump is restored into it:
-- pre_restore() sets eventkit.restoring at the database level and stops the
-- jobs running there; post_restore() resets it and the jobs run again.
CREATE FUNCTION eventkit.pre_restore()
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_pre_restore'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.pre_restore() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.pre_restore() IS
	'Before restoring a dump into this database: the scheduler starts no job here until eventkit.post_restore()';

CREATE FUNCTION eventkit.post_restore()
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_post_restore'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.post_restore() FROM PUBLIC;
COMMENT ON FUNCTION eventkit.post_restore() IS
	'After restoring a dump into this database: the scheduler runs its jobs again';

-- ==== Intake over HTTP (src/intake/; docs/intake-http.md) ====

-- Write keys.  Only a key's SHA-256 is stored; key_prefix (its first 11
-- characters) names it in eventkit.write_keys and revoke_write_key().  A key
-- ingests into one stream with the rights of the role that created it (a
-- role name, see the top).  A key whose stream is gone is refused by the
-- listener (403) and shown without a stream.
CREATE TABLE eventkit.intake_keys (
	key_hash bytea NOT NULL,
	key_prefix text NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	role name NOT NULL,
	description text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_used_at timestamptz,
	revoked_at timestamptz,
	CONSTRAINT intake_keys_pkey PRIMARY KEY (key_hash),
	CONSTRAINT intake_keys_key_prefix_key UNIQUE (key_prefix),
	CONSTRAINT intake_keys_key_hash_check CHECK (pg_catalog.octet_length(key_hash) OPERATOR(pg_catalog.=) 32)
);
SELECT pg_catalog.pg_extension_config_dump('eventkit.intake_keys', '');
REVOKE ALL ON TABLE eventkit.intake_keys FROM PUBLIC;

COMMENT ON TABLE eventkit.intake_keys IS
'write keys of the HTTP intake: SHA-256 of each key, its stream and role (read eventkit.write_keys)';
COMMENT ON COLUMN eventkit.intake_keys.key_hash IS 'SHA-256 of the key (the key itself is not stored)';
COMMENT ON COLUMN eventkit.intake_keys.key_prefix IS 'the key''s first 11 characters, which name it (eventkit.write_keys, revoke_write_key)';
COMMENT ON COLUMN eventkit.intake_keys.stream_id IS 'the stream it ingests into (eventkit.streams)';
COMMENT ON COLUMN eventkit.intake_keys.role IS 'the role that created it, whose rights the listener ingests with';
COMMENT ON COLUMN eventkit.intake_keys.description IS 'as given to create_write_key';
COMMENT ON COLUMN eventkit.intake_keys.created_at IS 'when it was created';
COMMENT ON COLUMN eventkit.intake_keys.last_used_at IS 'when a request last used it (written at most once a minute)';
COMMENT ON COLUMN eventkit.intake_keys.revoked_at IS 'when it was revoked; NULL while it is valid';

-- What a user may see of the keys: those of the roles they have the
-- privileges of, and those of the streams they own; never a secret.
CREATE VIEW eventkit.write_keys WITH (security_barrier) AS
SELECT k.key_prefix,
	   s.relid AS stream,
	   k.role,
	   k.description,
	   k.created_at,
	   k.last_used_at,
	   k.revoked_at
  FROM eventkit.intake_keys k
  LEFT JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) k.stream_id
  LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) k.role
				  AND pg_catalog.pg_has_role(r.oid, 'USAGE'))
	OR (c.oid IS NOT NULL AND pg_catalog.pg_has_role(c.relowner, 'USAGE'))
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER AND r.rolsuper);
REVOKE ALL ON TABLE eventkit.write_keys FROM PUBLIC;
GRANT SELECT ON eventkit.write_keys TO PUBLIC;

COMMENT ON VIEW eventkit.write_keys IS
'write keys of the HTTP intake you may see (your roles'', your streams''): prefix, stream, role, use; never the secret';
COMMENT ON COLUMN eventkit.write_keys.key_prefix IS 'the key''s first 11 characters, which name it';
COMMENT ON COLUMN eventkit.write_keys.stream IS 'the stream it ingests into; NULL if the stream is gone';
COMMENT ON COLUMN eventkit.write_keys.role IS 'the role it ingests as';
COMMENT ON COLUMN eventkit.write_keys.description IS 'as given to create_write_key';
COMMENT ON COLUMN eventkit.write_keys.created_at IS 'when it was created';
COMMENT ON COLUMN eventkit.write_keys.last_used_at IS 'when a request last used it (to the minute)';
COMMENT ON COLUMN eventkit.write_keys.revoked_at IS 'when it was revoked; NULL while it is valid';

CREATE FUNCTION eventkit.create_write_key(stream regclass, description text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_create_write_key'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_write_key(regclass, text) IS
'a new write key for the HTTP intake: events sent with it are ingested into the stream as the current user (who needs INSERT on it); shown only this once';

CREATE FUNCTION eventkit.revoke_write_key(key text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_revoke_write_key'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.revoke_write_key(text) IS
'revoke a write key (the key, or its prefix as eventkit.write_keys shows it): requests that start after this commits get 401; by its role, the stream''s owner or a superuser';

-- ==== Intake from Kafka (src/intake/kafka_*.c; docs/intake-kafka.md) ====

-- One row per Kafka source.  options holds librdkafka properties, secrets
-- (sasl.password, ...) included: only the extension owner reads this
-- table; eventkit.kafka_sources shows it with secrets masked.  owner is the
-- role that created the source (a name, as eventkit.plans.owner): its
-- consumer ingests as that role.  The consumer writes last_error,
-- last_error_at and failing_since (NULL while it works).  No foreign key to
-- eventkit.streams (pg_restore -j loads the two tables in parallel): a
-- source whose stream is dropped fails, shown by eventkit.health().
CREATE TABLE eventkit.kafka_source_config (
	source_id integer PRIMARY KEY,
	name text NOT NULL UNIQUE,
	stream_id integer NOT NULL,
	brokers text NOT NULL,
	topic text NOT NULL,
	options jsonb NOT NULL DEFAULT '{}',
	owner name NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_error text,
	last_error_at timestamptz,
	failing_since timestamptz,
	CHECK (pg_catalog.jsonb_typeof(options) OPERATOR(pg_catalog.=) 'object')
);
CREATE SEQUENCE eventkit.kafka_source_config_source_id_seq AS integer
	OWNED BY eventkit.kafka_source_config.source_id;
ALTER TABLE eventkit.kafka_source_config ALTER COLUMN source_id
	SET DEFAULT pg_catalog.nextval('eventkit.kafka_source_config_source_id_seq');
COMMENT ON TABLE eventkit.kafka_source_config IS
'Kafka sources (eventkit.create_kafka_source), with their librdkafka options; read through eventkit.kafka_sources';

-- The next offset to consume (the last one stored + 1) of each partition
-- of a source, written in the transaction that stores the events consumed
-- up to it: what makes intake from Kafka exactly-once.  Deleted with the
-- source (no foreign key, as above).
CREATE TABLE eventkit.kafka_offsets (
	source_id integer NOT NULL,
	partition integer NOT NULL,
	next_offset bigint NOT NULL,
	high_watermark bigint,
	messages bigint NOT NULL DEFAULT 0,
	events bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (source_id, partition),
	CHECK (partition >= 0),
	CHECK (next_offset >= 0)
);
COMMENT ON TABLE eventkit.kafka_offsets IS
'per Kafka source and partition: the next offset to consume, stored in the transaction of the events before it';

SELECT pg_catalog.pg_extension_config_dump('eventkit.kafka_source_config', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.kafka_source_config_source_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.kafka_offsets', '');
REVOKE ALL ON eventkit.kafka_source_config, eventkit.kafka_offsets FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.kafka_source_config_source_id_seq FROM PUBLIC;

-- An option whose name says it holds a secret, shown masked.
CREATE FUNCTION eventkit.kafka_mask_options(options jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(pg_catalog.jsonb_object_agg(o.key,
		   CASE WHEN o.key ~* '(password|secret|key|token|credential|jaas|oauthbearer\.config)'
				THEN '"********"'::pg_catalog.jsonb ELSE o.value END), '{}'::pg_catalog.jsonb)
  FROM pg_catalog.jsonb_each(options) o
$$;
COMMENT ON FUNCTION eventkit.kafka_mask_options(jsonb) IS
'librdkafka options with the values of secret-looking keys (password, secret, key, token, ...) masked';

-- One row per source and partition (one row with a NULL partition for a
-- source that has none yet).  consumer_pid is the consumer that holds the
-- source's lock (an advisory lock with objsubid 3, which
-- pg_advisory_lock never uses).  Rows are shown to members of the
-- source's owner, to roles that may read its stream, and to pg_monitor.
CREATE VIEW eventkit.kafka_sources AS
SELECT c.name,
	   s.relid AS stream,
	   c.topic,
	   o.partition,
	   o.next_offset,
	   o.high_watermark,
	   CASE WHEN o.high_watermark IS NOT NULL
			THEN GREATEST(o.high_watermark OPERATOR(pg_catalog.-) o.next_offset, 0) END AS lag,
	   o.messages,
	   o.events,
	   o.updated_at,
	   CASE WHEN l.pid IS NULL THEN 'stopped'
			WHEN c.failing_since IS NOT NULL THEN 'failing'
			ELSE 'running' END AS status,
	   l.pid AS consumer_pid,
	   c.last_error,
	   c.last_error_at,
	   c.failing_since,
	   c.brokers,
	   eventkit.kafka_mask_options(c.options) AS options,
	   c.owner,
	   c.created_at
  FROM eventkit.kafka_source_config c
  LEFT JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) c.stream_id
  LEFT JOIN eventkit.kafka_offsets o ON o.source_id OPERATOR(pg_catalog.=) c.source_id
  LEFT JOIN LATERAL (
	SELECT pg_catalog.min(lk.pid) AS pid
	  FROM pg_catalog.pg_locks lk
	 WHERE lk.locktype OPERATOR(pg_catalog.=) 'advisory' AND lk.granted
	   AND lk.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
												WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
	   AND lk.classid OPERATOR(pg_catalog.=) 25963::pg_catalog.oid
	   AND lk.objid OPERATOR(pg_catalog.=) c.source_id::pg_catalog.oid
	   AND lk.objsubid OPERATOR(pg_catalog.=) 3) l ON true
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) c.owner
				  AND pg_catalog.pg_has_role(r.oid, 'USAGE'))
	OR pg_catalog.pg_has_role('pg_monitor', 'USAGE')
	OR (s.relid IS NOT NULL AND pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT'));
GRANT SELECT ON eventkit.kafka_sources TO PUBLIC;
COMMENT ON VIEW eventkit.kafka_sources IS
'Kafka sources, one row per partition: stored next offset, high watermark, lag, messages and events ingested, consumer status and last error; secrets in options masked';

-- Health: a source without a consumer is a warning (the scheduler starts
-- one within eventkit.naptime); a failing consumer, an error.
CREATE VIEW eventkit.health_kafka AS
SELECT 'kafka'::text AS component,
	   c.name AS target,
	   CASE WHEN l.pid IS NULL THEN 'warning'
			WHEN c.failing_since IS NOT NULL THEN 'error'
			ELSE 'ok' END AS status,
	   COALESCE(o.lag, 0)::numeric AS value,
	   CASE WHEN l.pid IS NULL
			THEN 'no consumer running (started by the scheduler of this database)'
			WHEN c.failing_since IS NOT NULL
			THEN pg_catalog.format('failing since %s: %s', c.failing_since, c.last_error)
			ELSE pg_catalog.format('consumer pid %s, %s partition(s), lag %s', l.pid,
								   COALESCE(o.partitions, 0), COALESCE(o.lag, 0)) END AS detail
  FROM eventkit.kafka_source_config c
  LEFT JOIN LATERAL (
	SELECT pg_catalog.count(*) AS partitions,
		   pg_catalog.sum(GREATEST(ko.high_watermark OPERATOR(pg_catalog.-) ko.next_offset, 0)) AS lag
	  FROM eventkit.kafka_offsets ko
	 WHERE ko.source_id OPERATOR(pg_catalog.=) c.source_id) o ON true
  LEFT JOIN LATERAL (
	SELECT pg_catalog.min(lk.pid) AS pid
	  FROM pg_catalog.pg_locks lk
	 WHERE lk.locktype OPERATOR(pg_catalog.=) 'advisory' AND lk.granted
	   AND lk.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
												WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
	   AND lk.classid OPERATOR(pg_catalog.=) 25963::pg_catalog.oid
	   AND lk.objid OPERATOR(pg_catalog.=) c.source_id::pg_catalog.oid
	   AND lk.objsubid OPERATOR(pg_catalog.=) 3) l ON true;
GRANT SELECT ON eventkit.health_kafka TO pg_monitor;
COMMENT ON VIEW eventkit.health_kafka IS
'health of Kafka sources: failing consumers (error), sources without a consumer (warning), lag';

CREATE FUNCTION eventkit.create_kafka_source(name text, stream regclass, brokers text,
											 topic text, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_create_kafka_source'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit.create_kafka_source(text, regclass, text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION eventkit.create_kafka_source(text, regclass, text, text, jsonb) IS
'consume a Kafka topic into a stream, exactly once, as the calling role (options: librdkafka properties); EXECUTE is granted by a superuser';

CREATE FUNCTION eventkit.drop_kafka_source(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_drop_kafka_source'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventkit.drop_kafka_source(text) IS
'drop a Kafka source and its stored offsets (its owner or a superuser); its consumer exits';

COMMENT ON SEQUENCE eventkit.kafka_source_config_source_id_seq IS 'ids of eventkit.kafka_source_config';
COMMENT ON COLUMN eventkit.kafka_sources.name IS 'the source''s name';
COMMENT ON COLUMN eventkit.kafka_sources.stream IS 'the stream it ingests into; NULL if the stream is gone';
COMMENT ON COLUMN eventkit.kafka_sources.topic IS 'the Kafka topic';
COMMENT ON COLUMN eventkit.kafka_sources.partition IS 'the topic partition; NULL for a source that has seen none yet';
COMMENT ON COLUMN eventkit.kafka_sources.next_offset IS 'the next offset to consume, stored with the events before it';
COMMENT ON COLUMN eventkit.kafka_sources.high_watermark IS 'the partition''s high watermark when the consumer last looked';
COMMENT ON COLUMN eventkit.kafka_sources.lag IS 'messages not consumed yet: high_watermark - next_offset';
COMMENT ON COLUMN eventkit.kafka_sources.messages IS 'messages consumed from the partition';
COMMENT ON COLUMN eventkit.kafka_sources.events IS 'events (or unusable items) those messages held';
COMMENT ON COLUMN eventkit.kafka_sources.updated_at IS 'when the partition''s offset was last stored';
COMMENT ON COLUMN eventkit.kafka_sources.status IS 'running, failing or stopped (no consumer)';
COMMENT ON COLUMN eventkit.kafka_sources.consumer_pid IS 'the process id of the source''s consumer (bgw_type eventkit kafka)';
COMMENT ON COLUMN eventkit.kafka_sources.last_error IS 'the last error of the consumer';
COMMENT ON COLUMN eventkit.kafka_sources.last_error_at IS 'when it happened';
COMMENT ON COLUMN eventkit.kafka_sources.failing_since IS 'when the consumer started failing; NULL while it works';
COMMENT ON COLUMN eventkit.kafka_sources.brokers IS 'the bootstrap brokers';
COMMENT ON COLUMN eventkit.kafka_sources.options IS 'the librdkafka options, with secrets masked';
COMMENT ON COLUMN eventkit.kafka_sources.owner IS 'the role that created the source, whose rights the consumer ingests with';
COMMENT ON COLUMN eventkit.kafka_sources.created_at IS 'when the source was created';
COMMENT ON COLUMN eventkit.health_kafka.component IS 'kafka';
COMMENT ON COLUMN eventkit.health_kafka.target IS 'the source''s name';
COMMENT ON COLUMN eventkit.health_kafka.status IS 'ok, warning (no consumer) or error (failing)';
COMMENT ON COLUMN eventkit.health_kafka.value IS 'the lag over all partitions';
COMMENT ON COLUMN eventkit.health_kafka.detail IS 'the consumer, its partitions and lag, or the error';

-- ==== Health (eventkit.health() and its views) ====

-- Every view named eventkit.health_<component> has the columns (component,
-- target, status, value, detail), status one of ok, warning, error;
-- eventkit.health() returns the rows of all of them, so a subsystem adds
-- its checks by creating such a view.  They are granted to pg_monitor.

CREATE VIEW eventkit.health_scheduler AS
SELECT 'scheduler'::text AS component,
	   pg_catalog.current_database()::text AS target,
	   CASE WHEN NOT s.preloaded OR NOT s.enabled THEN 'warning'
			WHEN s.pid IS NULL THEN 'error'
			WHEN s.state OPERATOR(pg_catalog.=) 'read-only' THEN 'warning'
			WHEN s.last_loop_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 (3 OPERATOR(pg_catalog.*) pg_catalog.current_setting('eventkit.naptime')::pg_catalog.interval
				  OPERATOR(pg_catalog.+) interval '5 seconds')) THEN 'warning'
			ELSE 'ok' END AS status,
	   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 3) AS value,
	   CASE WHEN NOT s.preloaded THEN 'eventkit is not in shared_preload_libraries: jobs run only by hand (eventkit.run_maintenance)'
			WHEN NOT s.enabled THEN 'eventkit.scheduler_enabled is off'
			WHEN s.pid IS NULL THEN pg_catalog.format('no scheduler running (%s)', s.state)
			WHEN s.state OPERATOR(pg_catalog.=) 'read-only' THEN 'the database is read-only (default_transaction_read_only): no job runs until it is writable'
			ELSE pg_catalog.format('scheduler pid %s, %s job(s) running, last check %s s ago', s.pid, s.running_jobs,
								   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) s.last_loop_at), 1))
	   END AS detail
  FROM eventkit.scheduler_status() s;

CREATE VIEW eventkit.health_partitions AS
SELECT 'partitions'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN a.ahead OPERATOR(pg_catalog.>=) s.premake THEN 'ok'
			WHEN a.ahead OPERATOR(pg_catalog.=) 0 THEN 'error'
			ELSE 'warning' END AS status,
	   a.ahead::numeric AS value,
	   pg_catalog.format('%s of %s future partitions ready', a.ahead, s.premake) AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS ahead
				  FROM eventkit.partitions(s.relid) p
				 WHERE p.range_start OPERATOR(pg_catalog.>) pg_catalog.now()) a;

CREATE VIEW eventkit.health_quarantine AS
SELECT 'quarantine'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN q.n OPERATOR(pg_catalog.=) 0 THEN 'ok' ELSE 'warning' END AS status,
	   COALESCE(pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) q.oldest), 3), 0) AS value,
	   CASE WHEN q.n OPERATOR(pg_catalog.=) 0 THEN 'no quarantined events'
			ELSE pg_catalog.format('%s quarantined events (%s out_of_range), the oldest since %s',
								   q.n, q.out_of_range, q.oldest) END AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS n,
					   pg_catalog.count(*) FILTER (WHERE qq.reasons OPERATOR(pg_catalog.@>)
												   '[{"reason": "out_of_range"}]'::pg_catalog.jsonb) AS out_of_range,
					   pg_catalog.min(qq.quarantined_at) AS oldest
				  FROM eventkit.quarantine qq
				 WHERE qq.stream_id OPERATOR(pg_catalog.=) s.stream_id) q;

CREATE VIEW eventkit.health_ledger AS
SELECT 'ledger'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN g.current_start OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 (2 OPERATOR(pg_catalog.*) s.dedup_window))
			THEN 'warning' ELSE 'ok' END AS status,
	   COALESCE(z.bytes, 0)::numeric AS value,
	   pg_catalog.format('%s generation(s), %s', g.n, pg_catalog.pg_size_pretty(COALESCE(z.bytes, 0))) AS detail
  FROM eventkit.streams s,
	   LATERAL (SELECT pg_catalog.count(*) AS n,
					   pg_catalog.max(lg.started_at) FILTER (WHERE lg.ended_at IS NULL) AS current_start
				  FROM eventkit.ledger_generations lg
				 WHERE lg.stream_id OPERATOR(pg_catalog.=) s.stream_id) g,
	   LATERAL (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(i.inhrelid))::bigint AS bytes
				  FROM pg_catalog.pg_inherits i
				  JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) i.inhparent
				 WHERE l.relnamespace OPERATOR(pg_catalog.=) 'eventkit_internal'::pg_catalog.regnamespace
				   AND l.relname OPERATOR(pg_catalog.=) pg_catalog.format('ledger_%s', s.stream_id)) z;

CREATE VIEW eventkit.health_jobs AS
SELECT 'job'::text AS component,
	   pg_catalog.format('%s %s', j.kind, j.target) AS target,
	   CASE WHEN j.last_status IN ('failed', 'crashed') THEN 'error'
			WHEN j.enabled AND j.next_run_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
				 GREATEST(j.schedule, interval '1 minute')) THEN 'warning'
			ELSE 'ok' END AS status,
	   j.failures::numeric AS value,
	   CASE WHEN j.last_status IN ('failed', 'crashed')
			THEN pg_catalog.format('%s %s time(s) in a row, last: %s', j.last_status, j.failures, j.last_error)
			WHEN NOT j.enabled THEN 'disabled'
			WHEN j.last_status IS NULL THEN 'not run yet'
			ELSE pg_catalog.format('last run %s', j.last_status) END AS detail
  FROM eventkit.jobs j;

-- Rollups: how long since the last refresh, when the stream has events the
-- rollup has not folded yet (the realtime view still shows them).
CREATE VIEW eventkit.health_rollups AS
SELECT 'rollup'::text AS component,
	   r.name AS target,
	   CASE WHEN NOT p.pending THEN 'ok'
			WHEN COALESCE(r.last_refresh_at, r.created_at) OPERATOR(pg_catalog.<)
				 (pg_catalog.now() OPERATOR(pg_catalog.-)
				  (2 OPERATOR(pg_catalog.*) r.schedule OPERATOR(pg_catalog.+) interval '1 minute'))
			THEN 'warning'
			ELSE 'ok' END AS status,
	   pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-)
							COALESCE(r.last_refresh_at, r.created_at)), 3) AS value,
	   CASE WHEN p.pending
			THEN pg_catalog.format('events not folded yet; last refresh %s, schedule %s',
								   COALESCE(r.last_refresh_at::text, 'never'), r.schedule)
			ELSE pg_catalog.format('up to date (watermark %s)', r.watermark) END AS detail
  FROM eventkit.rollups r
 CROSS JOIN LATERAL (
	SELECT EXISTS (SELECT 1 FROM eventkit.ingest_batches b
					WHERE b.stream_id OPERATOR(pg_catalog.=) r.stream_id
					  AND b.batch_id OPERATOR(pg_catalog.>) r.watermark
					  AND b.accepted OPERATOR(pg_catalog.>) 0) AS pending) p;

-- A warning per rollup whose refreshes skipped or bounded values (the
-- counts since the rollup was created, by reason).
CREATE VIEW eventkit.health_rollup_values AS
SELECT 'rollup values'::text AS component,
	   r.name AS target,
	   'warning'::text AS status,
	   s.total AS value,
	   pg_catalog.format('%s value(s) skipped or bounded since the rollup was created (%s), the last at %s',
						 s.total, s.reasons, r.last_skipped_at) AS detail
  FROM eventkit.rollups r
 CROSS JOIN LATERAL (
	SELECT pg_catalog.sum(e.value::pg_catalog.int8) AS total,
		   pg_catalog.string_agg(pg_catalog.format('%s %s', e.key, e.value), ', ' ORDER BY e.key) AS reasons
	  FROM pg_catalog.jsonb_each_text(r.skipped_values) e) s
 WHERE r.skipped_values OPERATOR(pg_catalog.<>) '{}'::pg_catalog.jsonb;

-- Tracking plans: a stream attached to a plan (or pinned version) that does
-- not exist, e.g. after a restore that lost eventkit.plan_versions, is an
-- error (its events are quarantined with reason plan_missing); a plan whose
-- owner role does not exist is a warning.
CREATE VIEW eventkit.health_plans AS
SELECT 'plan'::text AS component,
	   s.relid::text AS target,
	   CASE WHEN p.plan_id IS NULL OR v.version IS NULL THEN 'error' ELSE 'ok' END AS status,
	   v.version::numeric AS value,
	   CASE WHEN p.plan_id IS NULL
			THEN pg_catalog.format('attached to tracking plan id %s, which does not exist: events are quarantined (plan_missing)',
								   s.plan_id)
			WHEN v.version IS NULL AND s.plan_version IS NOT NULL
			THEN pg_catalog.format('attached to version %s of tracking plan "%s", which does not exist: events are quarantined (plan_missing)',
								   s.plan_version, p.name)
			WHEN v.version IS NULL
			THEN pg_catalog.format('tracking plan "%s" has no version: events are quarantined (plan_missing)', p.name)
			ELSE pg_catalog.format('checked against version %s of tracking plan "%s"', v.version, p.name)
	   END AS detail
  FROM eventkit.streams s
  LEFT JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) s.plan_id
  LEFT JOIN LATERAL (SELECT pg_catalog.max(pv.version) AS version
					   FROM eventkit.plan_versions pv
					  WHERE pv.plan_id OPERATOR(pg_catalog.=) s.plan_id
						AND (s.plan_version IS NULL
							 OR pv.version OPERATOR(pg_catalog.=) s.plan_version)) v ON true
 WHERE s.plan_id IS NOT NULL
UNION ALL
SELECT 'plan'::text, p.name, 'warning', NULL::numeric,
	   pg_catalog.format('the owner of tracking plan "%s", role "%s", does not exist: only superusers can add versions (eventkit.alter_plan_owner)',
						 p.name, p.owner)
  FROM eventkit.plans p
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) p.owner);

REVOKE ALL ON TABLE eventkit.health_scheduler, eventkit.health_partitions, eventkit.health_quarantine,
	eventkit.health_ledger, eventkit.health_jobs, eventkit.health_rollups, eventkit.health_rollup_values,
	eventkit.health_plans FROM PUBLIC;
GRANT SELECT ON eventkit.health_scheduler, eventkit.health_partitions, eventkit.health_quarantine,
	eventkit.health_ledger, eventkit.health_jobs, eventkit.health_rollups, eventkit.health_rollup_values,
	eventkit.health_plans TO pg_monitor;

COMMENT ON VIEW eventkit.health_scheduler IS
'health(): the background worker''s scheduler of this database (not preloaded, disabled, absent or stalled)';
COMMENT ON COLUMN eventkit.health_scheduler.component IS 'scheduler';
COMMENT ON COLUMN eventkit.health_scheduler.target IS 'the database';
COMMENT ON COLUMN eventkit.health_scheduler.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_scheduler.value IS 'seconds since the scheduler''s last pass';
COMMENT ON COLUMN eventkit.health_scheduler.detail IS 'what is wrong, or the scheduler''s state';
COMMENT ON VIEW eventkit.health_partitions IS
'health(): per stream, the future partitions ready (fewer than premake: warning; none: error)';
COMMENT ON COLUMN eventkit.health_partitions.component IS 'partitions';
COMMENT ON COLUMN eventkit.health_partitions.target IS 'the stream';
COMMENT ON COLUMN eventkit.health_partitions.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_partitions.value IS 'partitions starting after now';
COMMENT ON COLUMN eventkit.health_partitions.detail IS 'partitions ready out of premake';
COMMENT ON VIEW eventkit.health_quarantine IS
'health(): per stream, quarantined events (any: warning)';
COMMENT ON COLUMN eventkit.health_quarantine.component IS 'quarantine';
COMMENT ON COLUMN eventkit.health_quarantine.target IS 'the stream';
COMMENT ON COLUMN eventkit.health_quarantine.status IS 'ok or warning';
COMMENT ON COLUMN eventkit.health_quarantine.value IS 'age in seconds of the oldest quarantined event';
COMMENT ON COLUMN eventkit.health_quarantine.detail IS 'how many, how many out_of_range, the oldest';
COMMENT ON VIEW eventkit.health_ledger IS
'health(): per stream, the dedup ledger (current generation older than 2 x dedup_window: warning)';
COMMENT ON COLUMN eventkit.health_ledger.component IS 'ledger';
COMMENT ON COLUMN eventkit.health_ledger.target IS 'the stream';
COMMENT ON COLUMN eventkit.health_ledger.status IS 'ok or warning';
COMMENT ON COLUMN eventkit.health_ledger.value IS 'ledger bytes, all generations';
COMMENT ON COLUMN eventkit.health_ledger.detail IS 'generations and size';
COMMENT ON VIEW eventkit.health_jobs IS
'health(): per job (last run failed or crashed: error; overdue: warning)';
COMMENT ON COLUMN eventkit.health_jobs.component IS 'job';
COMMENT ON COLUMN eventkit.health_jobs.target IS 'the job''s kind and target';
COMMENT ON COLUMN eventkit.health_jobs.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_jobs.value IS 'failed or crashed runs in a row';
COMMENT ON COLUMN eventkit.health_jobs.detail IS 'the last run''s outcome and error';
COMMENT ON VIEW eventkit.health_rollups IS
'health(): per rollup, events not folded and no refresh for 2 x schedule + 1 minute (warning)';
COMMENT ON COLUMN eventkit.health_rollups.component IS 'rollup';
COMMENT ON COLUMN eventkit.health_rollups.target IS 'the rollup''s name';
COMMENT ON COLUMN eventkit.health_rollups.status IS 'ok or warning';
COMMENT ON COLUMN eventkit.health_rollups.value IS 'seconds since the last refresh (or the creation)';
COMMENT ON COLUMN eventkit.health_rollups.detail IS 'the watermark, or the last refresh and the schedule';
COMMENT ON VIEW eventkit.health_rollup_values IS
	'health(): a warning per rollup with values skipped or bounded (eventkit.rollups.skipped_values)';
COMMENT ON COLUMN eventkit.health_rollup_values.component IS 'rollup values';
COMMENT ON COLUMN eventkit.health_rollup_values.target IS 'the rollup''s name';
COMMENT ON COLUMN eventkit.health_rollup_values.status IS 'warning';
COMMENT ON COLUMN eventkit.health_rollup_values.value IS 'values skipped or bounded since the rollup was created';
COMMENT ON COLUMN eventkit.health_rollup_values.detail IS 'the counts by reason and the last time';
COMMENT ON VIEW eventkit.health_plans IS
'health of tracking plans: streams whose plan or version is missing (error), plans whose owner role is gone (warning)';
COMMENT ON COLUMN eventkit.health_plans.component IS 'plan';
COMMENT ON COLUMN eventkit.health_plans.target IS 'the stream, or the plan whose owner is gone';
COMMENT ON COLUMN eventkit.health_plans.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_plans.value IS 'the plan version in force';
COMMENT ON COLUMN eventkit.health_plans.detail IS 'the plan and version, or what is missing';

-- On a Citus coordinator with distributed streams: each worker reached or not,
-- and what its own health() finds wrong (asked as the caller).
CREATE FUNCTION eventkit.worker_health()
RETURNS TABLE (node text, component text, target text, status text, value numeric, detail text)
AS 'MODULE_PATHNAME', 'eventkit_worker_health'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.worker_health() IS
'on a Citus coordinator with distributed streams: a row per worker (component citus: ok when it answered, error when not) and the rows of its health() that are not ok; no rows elsewhere';

CREATE VIEW eventkit.health_citus AS
SELECT 'citus'::text AS component,
	   CASE WHEN w.component OPERATOR(pg_catalog.=) 'citus' THEN w.node
			ELSE w.node OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) w.component
				 OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) COALESCE(w.target, '') END AS target,
	   w.status,
	   w.value,
	   w.detail
  FROM eventkit.worker_health() w;
REVOKE ALL ON TABLE eventkit.health_citus FROM PUBLIC;
GRANT SELECT ON eventkit.health_citus TO pg_monitor;
COMMENT ON VIEW eventkit.health_citus IS
'health(): on a Citus coordinator, each worker (reached or not) and what its own health() finds wrong';
COMMENT ON COLUMN eventkit.health_citus.component IS 'citus';
COMMENT ON COLUMN eventkit.health_citus.target IS 'the worker (host:port), followed by the component and target of its finding';
COMMENT ON COLUMN eventkit.health_citus.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_citus.value IS 'the finding''s value on the worker';
COMMENT ON COLUMN eventkit.health_citus.detail IS 'the finding''s detail, or why the worker could not be asked';

CREATE FUNCTION eventkit.health()
RETURNS TABLE(component text, target text, status text, value numeric, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v name;
BEGIN
	FOR v IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'eventkit'::regnamespace AND c.relkind = 'v'
				AND c.relname LIKE 'health\_%'
			  ORDER BY c.relname
	LOOP
		RETURN QUERY EXECUTE format('SELECT component::text, target::text, status::text,'
									' value::numeric, detail::text FROM eventkit.%I', v);
	END LOOP;
END
$$;
COMMENT ON FUNCTION eventkit.health() IS
'the rows of every eventkit.health_* view: (component, target, status ok/warning/error, value, detail)';

-- ==== Pinned formats and cross-checks: functions for the tests only ====
-- (src/pipeline/dedup/ledger_filter.c, src/pipeline/event.c,
-- src/jsonschema/jsonschema_regex.c, src/jsonschema/jsonschema_sql.c;
-- sql/pinned_formats.sql, sql/regex_crosscheck.sql, sql/jsonb_raw.sql,
-- test/t/017_pinned_formats.pl)
--
-- Not an interface: in eventkit_internal, executable by superusers only.
-- The id hash behind the ledger filters, and a filter's answer for an id,
-- as ingest computes them: the filters are stored and dumped, so the tests
-- pin both against known answers.
CREATE FUNCTION eventkit_internal.id_hash64(id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_id_hash64'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.id_hash64(text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.id_hash64(text) IS
'for tests only: the 64-bit hash of a message id behind the ledger filters (pinned by known answers)';

CREATE FUNCTION eventkit_internal.ledger_filter_contains(filter bytea, id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_ledger_filter_contains'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.ledger_filter_contains(bytea, text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.ledger_filter_contains(bytea, text) IS
'for tests only: whether a stored ledger filter may hold an id, as ingest asks it';

-- whether the validator's fast matcher runs a "pattern" (NULL: invalid)
CREATE FUNCTION eventkit_internal.regex_fast_path(pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_regex_fast_path'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.regex_fast_path(text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.regex_fast_path(text) IS
'for tests only: whether the validator''s fast matcher runs an ECMA-262 pattern (NULL: not a valid pattern)';

-- whether the raw jsonb readers see a value exactly as it is: rebuilt from
-- what they read, it is byte for byte the input
CREATE FUNCTION eventkit_internal.jsonb_raw_roundtrip(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_jsonb_raw_roundtrip'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.jsonb_raw_roundtrip(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.jsonb_raw_roundtrip(jsonb) IS
'for tests only: whether a value rebuilt from what the raw jsonb readers see is byte for byte the value';

-- whether the fingerprint's walk over the JEntries equals the iterator's
CREATE FUNCTION eventkit_internal.fingerprint_walk_check(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_fingerprint_walk_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.fingerprint_walk_check(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.fingerprint_walk_check(jsonb) IS
'for tests only: whether the content fingerprint''s walk over a value''s JEntries equals a walk with the jsonb iterator';

-- ==== Rollup options, rollups of rollups, added measures (issue 19) ====
-- (src/rollup/refresh.c, src/rollup/options.c, src/rollup/definition.c;
-- sql/rollup_options.sql, sql/rollup_of.sql, test/isolation/specs/rollup_options.spec)
--
-- A rollup's options: a filter (only the events that match are folded), a
-- time zone and an origin for its buckets, the hll precision; a rollup over
-- another rollup (source_rollup) is refreshed by its source's refresh, from
-- the source's partial states.  NULL: the option is not used (the defaults
-- of before 1.4).
ALTER TABLE eventkit.rollups
	ADD COLUMN filter text,
	ADD COLUMN time_zone text,
	ADD COLUMN origin timestamptz,
	ADD COLUMN hll_log2m integer,
	ADD COLUMN source_rollup regclass,
	ADD CONSTRAINT rollups_hll_log2m_check CHECK (hll_log2m BETWEEN 4 AND 17);
COMMENT ON COLUMN eventkit.rollups.filter IS
	'only the events matching this condition are folded (create_rollup''s filter; NULL: all)';
COMMENT ON COLUMN eventkit.rollups.time_zone IS
	'the time zone its buckets are aligned in (NULL: UTC)';
COMMENT ON COLUMN eventkit.rollups.origin IS
	'the origin its fixed-width buckets are aligned on (NULL: 2000-01-01 00:00 in its time zone)';
COMMENT ON COLUMN eventkit.rollups.hll_log2m IS
	'log2 of the number of registers of its distinct() measures'' hll (NULL: the hll default, 11)';
COMMENT ON COLUMN eventkit.rollups.source_rollup IS
	'for a rollup of a rollup (create_rollup_of): the rollup table it is computed from; NULL: it folds the stream';

-- ==== The generations of a worker delta table distributed with its stream ====
-- (src/rollup/wdelta.c, src/rollup/view.c; TAP 068_citus_wdelta.pl)
--
-- A refresh marks the rows of a rollup's distributed worker delta table
-- with a generation (<rollup>_wdelta.ek_gen), folds the generations earlier
-- refreshes marked, and records here, with the merge into the rollup table,
-- the generation folded: the realtime view counts the rows above it, in the
-- same snapshot as the rollup table, so it stays exact while a refresh
-- commits on the coordinator before the workers.
ALTER TABLE eventkit.rollups
	ADD COLUMN wdelta_marked bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_folded bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_deleted bigint NOT NULL DEFAULT 0,
	ADD COLUMN wdelta_folded_xid xid8;
COMMENT ON COLUMN eventkit.rollups.wdelta_marked IS
	'the last generation a refresh marked the rows of its distributed worker delta table with (0: none)';
COMMENT ON COLUMN eventkit.rollups.wdelta_folded IS
	'the rows of its distributed worker delta table up to this generation are folded into the rollup table';
COMMENT ON COLUMN eventkit.rollups.wdelta_deleted IS
	'the rows of its distributed worker delta table up to this generation are deleted';
COMMENT ON COLUMN eventkit.rollups.wdelta_folded_xid IS
	'the transaction that last moved wdelta_folded (its rows are deleted once every snapshot sees it)';

CREATE FUNCTION eventkit.create_rollup(name text, stream regclass, bucket interval,
									   dimensions text[], measures text[],
									   backfill boolean DEFAULT true,
									   filter text DEFAULT NULL,
									   time_zone text DEFAULT NULL,
									   origin timestamptz DEFAULT NULL,
									   hll_log2m integer DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_rollup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_rollup(text, regclass, interval, text[], text[], boolean, text, text, timestamptz, integer) IS
'create a rollup of a stream (its table, its <name>_realtime view and its refresh job), folding the history unless backfill is false; optionally only the events matching filter, buckets in a time zone and from an origin, an hll precision';

CREATE FUNCTION eventkit.create_rollup_of(name text, source text, bucket interval,
										  dimensions text[] DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_rollup_of'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_rollup_of(text, text, interval, text[]) IS
'create a rollup of a rollup (e.g. daily from hourly): coarser buckets, a subset of its dimensions (NULL: all), its measures merged from its partial states; refreshed with its source';

CREATE FUNCTION eventkit.add_rollup_measures(name text, measures text[])
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_add_rollup_measures'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.add_rollup_measures(text, text[]) IS
'add measures to a rollup without dropping it: folds what is new, adds the columns, computes them from the stream''s stored events and makes its realtime view again';
-- ==== Scale-out on Citus (issue 17) ====
-- distribute_stream: on the Citus coordinator, hash-distributes a stream by
-- user_key with a co-located dedup ledger eventkit_internal.dist_ledger_<id>
-- unique on (user_key, message_id); not STRICT, shard_count NULL is Citus's
-- default.
CREATE FUNCTION eventkit.distribute_stream(stream regclass, shard_count int DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_distribute_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.distribute_stream(regclass, int) IS
'on the Citus coordinator: hash-distribute a stream by user_key (shard_count NULL: citus.shard_count) with its dedup ledger co-located, unique on (user_key, message_id) (owner only)';
-- undistribute_stream (1.13): a stream that was distributed and is no longer a
-- Citus table (a coordinator's dump restored elsewhere, or undistribute_table)
-- takes its distributed ledger's ids into its own ledger; until then ingest
-- refuses it.  Not STRICT: a NULL stream gets eventkit's error.
CREATE FUNCTION eventkit.undistribute_stream(stream regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_undistribute_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.undistribute_stream(regclass) IS
'a stream restored from a Citus coordinator''s dump (or undistributed with undistribute_table): move the ids of its distributed dedup ledger into its own ledger and drop that one, so that ingest on this server sees them; returns how many (owner only)';
-- distribute_identity_graph, apply_worker_links (1.16): the identity graph of
-- a distributed stream is the coordinator's, holding every node's links: a
-- call on a worker sends its batch's links, in its distributed transaction,
-- into the stream's worker links table eventkit_ledgers.worker_links_<id> (a
-- Citus local table on the coordinator, made by distribute_stream), whose
-- statement trigger apply_worker_links applies them to the coordinator's
-- graph (src/pipeline/identity_dist.c; docs/citus.md).  A stream distributed
-- before 1.16 gets that table, and the links its workers made so far, from
-- distribute_identity_graph; until then its calls on a worker link in that
-- worker's graph only, as 1.15 did.  Not STRICT: a NULL stream gets eventkit's error.
CREATE FUNCTION eventkit.apply_worker_links()
RETURNS trigger
AS 'MODULE_PATHNAME', 'eventkit_apply_worker_links'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.apply_worker_links() IS
'the statement trigger of a distributed stream''s worker links table, on the Citus coordinator: applies the links of a worker''s call to the coordinator''s identity graph (internal)';
CREATE FUNCTION eventkit.distribute_identity_graph(stream regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_distribute_identity_graph'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.distribute_identity_graph(regclass) IS
'on the Citus coordinator, for a stream distributed before 1.16: make its worker links table, so that the links of calls on the workers go to the coordinator''s identity graph, and link there the ids of the workers'' graphs so far; returns how many worker rows it read (superuser only)';
-- route_events, route_user (1.15): which node holds the shard of an event's
-- user key, for clients that send each node only its own shards' events
-- (src/stream/route.c; docs/citus.md, "Routing clients").  Read-only, with
-- the caller's rights (SELECT on the stream); any node.
CREATE FUNCTION eventkit.route_events(stream regclass, payload jsonb)
RETURNS TABLE (item integer, message_id text, user_key text, shard bigint,
			   nodename text, nodeport integer)
AS 'MODULE_PATHNAME', 'eventkit_route_events'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.route_events(regclass, jsonb) IS
'for each event of a payload (as ingest takes it) into a stream distributed on Citus: its item, messageId, user key (userId, else anonymousId), the key''s shard and the node that holds it (needs SELECT on the stream)';
CREATE FUNCTION eventkit.route_user(stream regclass, user_id text, anonymous_id text DEFAULT NULL)
RETURNS TABLE (user_key text, shard bigint, nodename text, nodeport integer)
AS 'MODULE_PATHNAME', 'eventkit_route_user'
LANGUAGE C STABLE;
COMMENT ON FUNCTION eventkit.route_user(regclass, text, text) IS
'the user key of an event with these ids (user_id, else anonymous_id) in a stream distributed on Citus, its shard and the node that holds it (needs SELECT on the stream)';
-- ==== Typed event views (issue 18) ====
-- (src/pipeline/plan/plan_columns.c; sql/event_views.sql, sql/analytics.sql;
-- docs/analytics.md)
--
-- The typed columns a tracking plan implies, and the views built from them
-- as Segment's warehouses lay data out.  The views belong to the caller
-- and read the stream with the caller's rights.

CREATE FUNCTION eventkit.warehouse_name(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_warehouse_name'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.warehouse_name(text) IS
'a name as Segment''s warehouses spell tables and columns: snake case (Order Completed -> order_completed)';

CREATE FUNCTION eventkit.plan_properties(plan text, version integer)
RETURNS TABLE(event_type text, event text, field text, property text, json_type text, column_type text)
AS 'MODULE_PATHNAME', 'eventkit_plan_properties'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.plan_properties(text, integer) IS
'the planned properties (and traits) of every planned event of a tracking plan version, with the SQL type a typed event view gives each';

CREATE FUNCTION eventkit.jsonb_to_text(value jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_text(jsonb) IS
'a property value as text: a string as it is, a number or boolean as written; NULL for null, objects and arrays (never an error)';

CREATE FUNCTION eventkit.jsonb_to_bigint(value jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_bigint'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_bigint(jsonb) IS
'a property value as bigint: a whole number in range (or a string holding one); NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_numeric(value jsonb)
RETURNS numeric
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_numeric'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_numeric(jsonb) IS
'a property value as numeric: a number (or a string holding a JSON number); NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_boolean(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_boolean'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_boolean(jsonb) IS
'a property value as boolean: true, false, "true" or "false"; NULL for anything else (never an error)';

CREATE FUNCTION eventkit.jsonb_to_timestamptz(value jsonb)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'eventkit_jsonb_to_timestamptz'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.jsonb_to_timestamptz(jsonb) IS
'a property value as timestamptz: an ISO 8601 string read as ingest reads event times (no zone: UTC); NULL for anything else (never an error)';

-- What the typed views read: the stream's <stream>_resolved view (the
-- stream plus resolved_user_id, from the identity graph) when it exists,
-- else the stream with resolved_user_id = coalesce(user_id, anonymous_id).
-- The one place that decides.
CREATE FUNCTION eventkit.event_views_source(stream regclass)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	nsp name;
	rel name;
BEGIN
	SELECT n.nspname, c.relname INTO nsp, rel
	  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) stream;
	IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', nsp, rel OPERATOR(pg_catalog.||) '_resolved')) IS NOT NULL THEN
		RETURN pg_catalog.format('%I.%I', nsp, rel OPERATOR(pg_catalog.||) '_resolved');
	END IF;
	RETURN pg_catalog.format('(SELECT e.*, COALESCE(e.user_id, e.anonymous_id) AS resolved_user_id FROM %I.%I e)',
							 nsp, rel);
END
$fn$;
COMMENT ON FUNCTION eventkit.event_views_source(regclass) IS
'what the typed event views of a stream read: <stream>_resolved when it exists, else the stream with resolved_user_id = coalesce(user_id, anonymous_id)';

-- create_event_views: one view per planned track event, and tracks, pages,
-- identifies and users.  Re-running it after a new plan version replaces
-- the views in place: new properties become new columns at the end; a
-- property the plan no longer has keeps its column (and its type), so
-- nothing built on the views breaks; a property whose type changed makes
-- its view dropped and re-created, or, when other objects depend on the
-- view, an error that names them.
CREATE FUNCTION eventkit.create_event_views(stream regclass, target_schema name DEFAULT NULL)
RETURNS SETOF regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	st record;
	ver integer;
	nsp name;
	src text;
	v record;
	prop record;
	oldcol record;
	names text[];
	types text[];
	exprs text[];
	fnames text[];
	ftypes text[];
	fexprs text[];
	i integer;
	cname text;
	expr text;
	changed text;
	deps text;
	vid regclass;
	ncommon integer;
	kept text[];
	keys text[];
	fkeys text[];
	note text;
	key text;
	allprops jsonb;
	clash record;
	reserved constant text[] := ARRAY['tracks', 'pages', 'screens', 'identifies', 'users'];
	common constant text[] := ARRAY['message_id', 'ts', 'received_at', 'event', 'user_id',
									'anonymous_id', 'resolved_user_id', 'context'];
BEGIN
	SELECT s.plan_id, s.plan_version, p.name AS plan_name, n.nspname AS stream_schema
	  INTO st
	  FROM eventkit.streams s
	  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	  LEFT JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) s.plan_id
	 WHERE s.relid OPERATOR(pg_catalog.=) stream;
	IF NOT FOUND THEN
		RAISE EXCEPTION '"%" is not an eventkit stream', stream
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create streams with eventkit.create_stream().';
	END IF;
	IF st.plan_id IS NULL OR st.plan_name IS NULL THEN
		RAISE EXCEPTION 'stream "%" has no tracking plan', stream
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'The typed views take their columns from the planned properties.',
				  HINT = 'Attach one with eventkit.attach_plan().';
	END IF;
	IF NOT pg_catalog.has_table_privilege(stream, 'SELECT') THEN
		RAISE EXCEPTION 'permission denied for table %', stream
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The views read the stream with the rights of their owner, the caller.';
	END IF;
	ver := COALESCE(NULLIF(st.plan_version, 0),
					(SELECT pg_catalog.max(pv.version) FROM eventkit.plan_versions pv
					  WHERE pv.plan_id OPERATOR(pg_catalog.=) st.plan_id));
	nsp := COALESCE(target_schema, st.stream_schema);
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) nsp) THEN
		RAISE EXCEPTION 'schema "%" does not exist', nsp USING ERRCODE = 'invalid_schema_name';
	END IF;
	-- not among eventkit's objects or the system's (DROP EXTENSION, pg_dump)
	IF nsp OPERATOR(pg_catalog.=) ANY (ARRAY['eventkit', 'eventkit_internal', 'rollups', 'information_schema'])
	   OR nsp OPERATOR(pg_catalog.~) '^pg_' THEN
		RAISE EXCEPTION 'cannot create event views in schema "%"', nsp
			USING ERRCODE = 'invalid_schema_name',
				  HINT = 'Give the views a schema of their own.';
	END IF;
	src := eventkit.event_views_source(stream) OPERATOR(pg_catalog.||) ' s';

	-- the plan's properties, read once (per view, a plan of 10,000 events
	-- made this quadratic): per event type, field and event, in the order
	-- they claim columns
	allprops := (SELECT pg_catalog.jsonb_object_agg(x.k, x.a) FROM (
		SELECT pg_catalog.concat_ws(E'\x01', pp.event_type, pp.field, pp.event) AS k,
			   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('property', pp.property, 'column_type', pp.column_type)
									ORDER BY eventkit.warehouse_name(pp.property) OPERATOR(pg_catalog.<>) pp.property, pp.property) AS a
		  FROM eventkit.plan_properties(st.plan_name, ver) pp
		 WHERE pp.property IS NOT NULL
		 GROUP BY 1) x);
	-- two planned events that would be one view
	SELECT w.view_name INTO clash FROM (
		SELECT eventkit.warehouse_name(e.event) AS view_name, pg_catalog.count(*) AS n
		  FROM (SELECT DISTINCT pp.event FROM eventkit.plan_properties(st.plan_name, ver) pp
				 WHERE pp.event_type OPERATOR(pg_catalog.=) 'track' AND pp.event IS NOT NULL) e
		 GROUP BY 1) w
	 WHERE w.n OPERATOR(pg_catalog.>) 1 ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'two planned events would both be view "%"', clash.view_name
			USING ERRCODE = 'duplicate_table',
				  HINT = 'Rename one of them in the tracking plan.';
	END IF;

	-- the views: planned track events, then the standard ones
	FOR v IN
		WITH ev AS (
			SELECT DISTINCT pp.event FROM eventkit.plan_properties(st.plan_name, ver) pp
			 WHERE pp.event_type OPERATOR(pg_catalog.=) 'track' AND pp.event IS NOT NULL)
		SELECT eventkit.warehouse_name(ev.event) AS view_name, 'event' AS kind, ev.event,
			   'track' AS event_type, 'properties' AS field, 1 AS ord
		  FROM ev
		UNION ALL
		SELECT x.view_name, x.view_name, NULL, x.event_type, x.field, x.ord
		  FROM (VALUES ('tracks', 'track', NULL, 2), ('pages', 'page', NULL, 3), ('screens', 'screen', NULL, 4),
					   ('identifies', 'identify', 'traits', 5), ('users', NULL, NULL, 6)) x(view_name, event_type, field, ord)
		ORDER BY ord, view_name, event
	LOOP
		IF v.kind OPERATOR(pg_catalog.=) 'event' THEN
			IF v.view_name OPERATOR(pg_catalog.=) ANY (reserved) THEN
				RAISE EXCEPTION 'event "%" would be view "%", which is one of the standard views', v.event, v.view_name
					USING ERRCODE = 'duplicate_table',
						  HINT = 'Rename the event in the tracking plan, or give the views a schema of their own.';
			END IF;
		END IF;

		-- the columns it should have: the common ones, then the typed ones
		keys := NULL;
		IF v.kind OPERATOR(pg_catalog.=) 'users' THEN
			names := ARRAY['user_id', 'traits', 'first_seen', 'last_seen'];
			types := ARRAY['text', 'jsonb', 'timestamp with time zone', 'timestamp with time zone'];
			exprs := ARRAY['u.resolved_user_id', 'COALESCE(t.traits, ''{}''::jsonb)', 'u.first_seen', 'u.last_seen'];
		ELSE
			names := ARRAY['message_id', 'ts', 'received_at'];
			types := ARRAY['text', 'timestamp with time zone', 'timestamp with time zone'];
			exprs := ARRAY['s.message_id', 's.ts', 's.received_at'];
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['event', 'tracks']) THEN
				names := names OPERATOR(pg_catalog.||) 'event'::text;
				types := types OPERATOR(pg_catalog.||) 'text'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.event'::text;
			ELSIF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['pages', 'screens']) THEN
				names := names OPERATOR(pg_catalog.||) 'name'::text;
				types := types OPERATOR(pg_catalog.||) 'text'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.event'::text;
			END IF;
			names := names OPERATOR(pg_catalog.||) ARRAY['user_id', 'anonymous_id', 'resolved_user_id', 'context'];
			types := types OPERATOR(pg_catalog.||) ARRAY['text', 'text', 'text', 'jsonb'];
			exprs := exprs OPERATOR(pg_catalog.||) ARRAY['s.user_id', 's.anonymous_id', 's.resolved_user_id', 's.context'];
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['tracks', 'pages', 'screens']) THEN
				names := names OPERATOR(pg_catalog.||) 'properties'::text;
				types := types OPERATOR(pg_catalog.||) 'jsonb'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.properties'::text;
			ELSIF v.kind OPERATOR(pg_catalog.=) 'identifies' THEN
				names := names OPERATOR(pg_catalog.||) 'traits'::text;
				types := types OPERATOR(pg_catalog.||) 'jsonb'::text;
				exprs := exprs OPERATOR(pg_catalog.||) 's.traits'::text;
			END IF;
			IF v.kind OPERATOR(pg_catalog.=) 'pages' THEN
				-- as Segment's pages table: the page properties every SDK sends
				FOREACH cname IN ARRAY ARRAY['path', 'referrer', 'search', 'title', 'url'] LOOP
					names := names OPERATOR(pg_catalog.||) cname;
					types := types OPERATOR(pg_catalog.||) 'text'::text;
					exprs := exprs OPERATOR(pg_catalog.||)
						pg_catalog.format('eventkit.jsonb_to_text(s.properties OPERATOR(pg_catalog.->) %L)', cname);
				END LOOP;
			END IF;
			IF v.kind OPERATOR(pg_catalog.=) 'pages' THEN
				-- as Segment's warehouses: the page context every web SDK sends
				FOREACH cname IN ARRAY ARRAY['path', 'referrer', 'search', 'title', 'url'] LOOP
					names := names OPERATOR(pg_catalog.||) ('context_page_' OPERATOR(pg_catalog.||) cname);
					types := types OPERATOR(pg_catalog.||) 'text'::text;
					exprs := exprs OPERATOR(pg_catalog.||)
						pg_catalog.format('eventkit.jsonb_to_text(s.context OPERATOR(pg_catalog.->) ''page'' OPERATOR(pg_catalog.->) %L)', cname);
				END LOOP;
			END IF;
			-- the planned properties (traits for identifies)
			IF v.kind OPERATOR(pg_catalog.=) ANY (ARRAY['event', 'identifies']) THEN
				ncommon := pg_catalog.array_length(names, 1);
				keys := pg_catalog.array_fill(NULL::text, ARRAY[ncommon]);
				-- a property already spelled as its column claims it first
				FOR prop IN
					SELECT x.e OPERATOR(pg_catalog.->>) 'property' AS property,
						   x.e OPERATOR(pg_catalog.->>) 'column_type' AS column_type
					  FROM pg_catalog.jsonb_array_elements(COALESCE(allprops OPERATOR(pg_catalog.->)
								pg_catalog.concat_ws(E'\x01', v.event_type, v.field, v.event), '[]'))
						   WITH ORDINALITY AS x(e, ord)
					 ORDER BY x.ord
				LOOP
					-- (warehouse_name clips to 63 bytes, as PostgreSQL would
					-- truncate; a prefix or a suffix clips what it extends)
					cname := eventkit.warehouse_name(prop.property);
					IF cname OPERATOR(pg_catalog.=) ANY (names[1:ncommon]) THEN
						cname := eventkit.warehouse_name(v.field OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) cname);
					END IF;
					i := 2;
					WHILE cname OPERATOR(pg_catalog.=) ANY (names) LOOP
						cname := pg_catalog.regexp_replace(cname, '_[0-9]+$', '');
						WHILE pg_catalog.octet_length(cname) OPERATOR(pg_catalog.+) pg_catalog.octet_length('_' OPERATOR(pg_catalog.||) i) OPERATOR(pg_catalog.>) 63 LOOP
							cname := pg_catalog.left(cname, -1);
						END LOOP;
						cname := cname OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) i;
						i := i OPERATOR(pg_catalog.+) 1;
					END LOOP;
					names := names OPERATOR(pg_catalog.||) cname;
					keys := keys OPERATOR(pg_catalog.||) prop.property;
					types := types OPERATOR(pg_catalog.||) (CASE prop.column_type WHEN 'timestamptz' THEN 'timestamp with time zone'
															 ELSE prop.column_type END);
					exprs := exprs OPERATOR(pg_catalog.||) (CASE prop.column_type
						WHEN 'jsonb' THEN pg_catalog.format('(s.%I OPERATOR(pg_catalog.->) %L)', v.field, prop.property)
						ELSE pg_catalog.format('eventkit.jsonb_to_%s(s.%I OPERATOR(pg_catalog.->) %L)',
											   prop.column_type, v.field, prop.property) END);
				END LOOP;
			END IF;
		END IF;

		-- an existing view keeps its columns, in their order; new ones go at the end
		vid := pg_catalog.to_regclass(pg_catalog.format('%I.%I', nsp, v.view_name));
		fnames := '{}';
		ftypes := '{}';
		fexprs := '{}';
		changed := NULL;
		kept := '{}';
		fkeys := '{}';
		IF vid IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) vid) OPERATOR(pg_catalog.=) 'v' THEN
			FOR oldcol IN
				SELECT a.attnum, a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
				  FROM pg_catalog.pg_attribute a
				 WHERE a.attrelid OPERATOR(pg_catalog.=) vid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
				 ORDER BY a.attnum
			LOOP
				i := pg_catalog.array_position(names, oldcol.name);
				IF i IS NOT NULL THEN
					IF types[i] OPERATOR(pg_catalog.<>) oldcol.type THEN
						changed := pg_catalog.format('column %I is %s, plan version %s makes it %s', oldcol.name, oldcol.type, ver, types[i]);
					END IF;
					fnames := fnames OPERATOR(pg_catalog.||) oldcol.name;
					ftypes := ftypes OPERATOR(pg_catalog.||) types[i];
					fexprs := fexprs OPERATOR(pg_catalog.||) exprs[i];
					fkeys := fkeys OPERATOR(pg_catalog.||) keys[i];
					CONTINUE;
				END IF;
				-- a property the plan no longer has: keep it, read as the
				-- earlier version did (its column comment names the property)
				expr := NULL;
				note := pg_catalog.col_description(vid, oldcol.attnum);
				IF v.field IS NOT NULL AND note LIKE v.field OPERATOR(pg_catalog.||) ' "%' THEN
					BEGIN
						key := (pg_catalog.substr(note, pg_catalog.length(v.field) OPERATOR(pg_catalog.+) 2))::jsonb
							OPERATOR(pg_catalog.#>>) '{}';
						expr := pg_catalog.format('(s.%I OPERATOR(pg_catalog.->) %L)', v.field, key);
					EXCEPTION WHEN invalid_text_representation THEN
						key := NULL;
					END;
				END IF;
				IF expr IS NULL THEN
					expr := 'NULL';
					RAISE WARNING 'column % of view % was never planned: it stays, always NULL', oldcol.name,
						pg_catalog.format('%I.%I', nsp, v.view_name);
				END IF;
				kept := kept OPERATOR(pg_catalog.||) oldcol.name;
				fkeys := fkeys OPERATOR(pg_catalog.||) key;
				fnames := fnames OPERATOR(pg_catalog.||) oldcol.name;
				ftypes := ftypes OPERATOR(pg_catalog.||) oldcol.type;
				-- the old type, through the cast the old plan chose
				fexprs := fexprs OPERATOR(pg_catalog.||) (CASE
					WHEN oldcol.type OPERATOR(pg_catalog.=) 'jsonb' OR expr OPERATOR(pg_catalog.=) 'NULL'
						THEN expr OPERATOR(pg_catalog.||) '::' OPERATOR(pg_catalog.||) oldcol.type
					WHEN oldcol.type OPERATOR(pg_catalog.=) 'timestamp with time zone'
						THEN 'eventkit.jsonb_to_timestamptz' OPERATOR(pg_catalog.||) expr
					ELSE 'eventkit.jsonb_to_' OPERATOR(pg_catalog.||) oldcol.type OPERATOR(pg_catalog.||) expr END);
			END LOOP;
			IF kept OPERATOR(pg_catalog.<>) '{}' THEN
				RAISE NOTICE 'view % keeps columns that plan version % no longer has: %',
					pg_catalog.format('%I.%I', nsp, v.view_name), ver, pg_catalog.array_to_string(kept, ', ')
					USING HINT = 'They read the properties as the earlier version typed them; drop the view and run create_event_views again to lose them.';
			END IF;
			FOR i IN 1 .. pg_catalog.array_length(names, 1) LOOP
				IF NOT names[i] OPERATOR(pg_catalog.=) ANY (fnames) THEN
					fnames := fnames OPERATOR(pg_catalog.||) names[i];
					ftypes := ftypes OPERATOR(pg_catalog.||) types[i];
					fexprs := fexprs OPERATOR(pg_catalog.||) exprs[i];
					fkeys := fkeys OPERATOR(pg_catalog.||) keys[i];
				END IF;
			END LOOP;
		ELSE
			fnames := names;
			ftypes := types;
			fexprs := exprs;
			fkeys := keys;
		END IF;

		IF changed IS NOT NULL THEN
			SELECT pg_catalog.string_agg(DISTINCT r.ev_class::pg_catalog.regclass::text, ', ') INTO deps
			  FROM pg_catalog.pg_depend d
			  JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
			 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
			   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND d.refobjid OPERATOR(pg_catalog.=) vid
			   AND r.ev_class OPERATOR(pg_catalog.<>) vid;
			IF deps IS NOT NULL THEN
				RAISE EXCEPTION 'cannot change view % for plan version %: %', pg_catalog.format('%I.%I', nsp, v.view_name), ver, changed
					USING ERRCODE = 'dependent_objects_still_exist',
						  DETAIL = pg_catalog.format('Objects that depend on the view: %s.', deps),
						  HINT = 'Drop or change those objects and run create_event_views again, or keep the stream on the earlier plan version.';
			END IF;
			RAISE NOTICE 'view % is re-created: %', pg_catalog.format('%I.%I', nsp, v.view_name), changed;
			EXECUTE pg_catalog.format('DROP VIEW %I.%I', nsp, v.view_name);
		END IF;

		EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %I.%I AS SELECT %s %s',
			nsp, v.view_name,
			(SELECT pg_catalog.string_agg(pg_catalog.format('%s::%s AS %I', e, t, c), ', ' ORDER BY o)
			   FROM unnest(fexprs, ftypes, fnames) WITH ORDINALITY x(e, t, c, o)),  -- ROWS FROM: not qualified
			CASE v.kind
				WHEN 'event' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''track'' AND s.event OPERATOR(pg_catalog.=) %L', src, v.event)
				WHEN 'tracks' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''track''', src)
				WHEN 'pages' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''page''', src)
				WHEN 'screens' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''screen''', src)
				WHEN 'identifies' THEN pg_catalog.format('FROM %s WHERE s.type OPERATOR(pg_catalog.=) ''identify''', src)
				ELSE pg_catalog.format(
					'FROM (SELECT s.resolved_user_id, pg_catalog.min(s.ts) AS first_seen, pg_catalog.max(s.ts) AS last_seen'
					' FROM %1$s WHERE s.resolved_user_id IS NOT NULL GROUP BY s.resolved_user_id) u'
					' LEFT JOIN (SELECT s.resolved_user_id, pg_catalog.jsonb_object_agg(k.key, k.value ORDER BY s.ts, s.message_id) AS traits'
					' FROM %1$s CROSS JOIN LATERAL pg_catalog.jsonb_each(s.traits) k'
					' WHERE s.type OPERATOR(pg_catalog.=) ''identify'' GROUP BY s.resolved_user_id) t'
					' ON t.resolved_user_id OPERATOR(pg_catalog.=) u.resolved_user_id', src)
			END);
		EXECUTE pg_catalog.format('COMMENT ON VIEW %I.%I IS %L', nsp, v.view_name,
			CASE v.kind
				WHEN 'event' THEN pg_catalog.format('eventkit: "%s" events of stream %s, typed by tracking plan "%s" version %s', v.event, stream, st.plan_name, ver)
				WHEN 'users' THEN pg_catalog.format('eventkit: the users of stream %s, one row per resolved user, latest traits merged', stream)
				ELSE pg_catalog.format('eventkit: the %s of stream %s (tracking plan "%s" version %s)', v.view_name, stream, st.plan_name, ver)
			END);
		-- each property column says which property it reads
		FOR i IN 1 .. COALESCE(pg_catalog.array_length(fkeys, 1), 0) LOOP
			IF fkeys[i] IS NOT NULL THEN
				EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', nsp, v.view_name, fnames[i],
										  v.field OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) pg_catalog.to_jsonb(fkeys[i])::text);
			END IF;
		END LOOP;
		RETURN NEXT pg_catalog.format('%I.%I', nsp, v.view_name)::pg_catalog.regclass;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION eventkit.create_event_views(regclass, name) IS
'create or update typed views of a stream from its tracking plan: one per planned event, and tracks, pages, screens, identifies and users; owned by the caller';
-- ==== Identity graph and erasure (issue 18) ====
-- (src/pipeline/identity.c, src/catalog/identity.c, src/stream/identity.c;
-- sql/identity.sql, sql/forget_user.sql, test/specs/identity_merge.spec;
-- docs/identity.md)

-- The identity graph of each stream, kept flat by ingest: every id an event
-- linked (anonymousId with userId; an alias's previousId to its userId)
-- names its canonical user, a userId; since 1.9 a
-- canonical id has no row of its own (an id without a row is its own user;
-- a row stored before names itself).  Readable through eventkit.identities
-- and <stream>_resolved.
-- The ids compare bytewise (COLLATE "C"): ingest probes and inserts a
-- batch's ids in both indexes, and a comparison under the database's
-- collation cost several times as much (test/bench/instructions.sh); for
-- equality, which is all identity needs, every deterministic collation
-- agrees, and a comparison with a column of the database's default
-- collation takes "C" (a non-default implicit collation wins).
-- identity_links_canonical (a set's members, by canonical id) is partial
-- since 1.8: a canonical id's own row (about half the rows) is found by
-- the primary key, so every reader of a set asks for the members with
-- id <> canonical_id and for the canonical row by id (catalog/identity.c).
CREATE TABLE eventkit.identity_links (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	id text COLLATE "C" NOT NULL,
	canonical_id text COLLATE "C" NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen timestamptz NOT NULL,
	CONSTRAINT identity_links_pkey PRIMARY KEY (stream_id, id)
);
CREATE INDEX identity_links_canonical ON eventkit.identity_links (stream_id, canonical_id)
	WHERE id OPERATOR(pg_catalog.<>) canonical_id;
SELECT pg_catalog.pg_extension_config_dump('eventkit.identity_links', '');
REVOKE ALL ON TABLE eventkit.identity_links FROM PUBLIC;

-- Who reads a stream's links: its owner (a member of the owning role), a
-- role that may SELECT the stream, or one that may SELECT the stream's
-- <stream>_resolved view (which reads the links with its owner's rights,
-- while this policy sees the role that queries the view).  eventkit's own
-- code reads them as the table's owner, which the policy does not restrict.
ALTER TABLE eventkit.identity_links ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_reader ON eventkit.identity_links FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) identity_links.stream_id
					  AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
						   OR pg_catalog.has_table_privilege(c.oid, 'SELECT')
						   OR EXISTS (SELECT 1 FROM pg_catalog.pg_class v
									   WHERE v.relnamespace OPERATOR(pg_catalog.=) c.relnamespace
										 AND v.relname OPERATOR(pg_catalog.=) (c.relname::pg_catalog.text
											 OPERATOR(pg_catalog.||) '_resolved')::pg_catalog.name
										 AND pg_catalog.has_table_privilege(v.oid, 'SELECT')))));
GRANT SELECT ON eventkit.identity_links TO PUBLIC;
COMMENT ON POLICY stream_reader ON eventkit.identity_links IS
'a stream''s links are read by its owner and by the roles that may read the stream or its <stream>_resolved view';

COMMENT ON TABLE eventkit.identity_links IS
'the identity graph of each stream, kept at ingest: every linked id and its canonical user (a userId)';
COMMENT ON COLUMN eventkit.identity_links.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.identity_links.id IS 'an anonymousId, previousId or userId that an event linked';
COMMENT ON COLUMN eventkit.identity_links.canonical_id IS 'the userId every id of its set resolves to (since 1.9 the canonical user has no row of its own; one stored before names itself)';
COMMENT ON COLUMN eventkit.identity_links.first_seen IS 'the event time of the first link that named the id';
COMMENT ON COLUMN eventkit.identity_links.last_seen IS 'the event time of the latest link that named the id';

-- The audit log of eventkit.forget_user(): who erased which ids of a
-- stream, when, and how many rows of each kind; never the erased data.
-- Kept when the stream is dropped.
CREATE TABLE eventkit.erasures (
	erasure_id bigserial NOT NULL,
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: kept after drop_stream)
	stream text NOT NULL,
	user_id text NOT NULL,
	ids text[] NOT NULL,
	erased_by name NOT NULL,
	erased_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	events bigint NOT NULL,
	quarantined bigint NOT NULL,
	conflicts bigint NOT NULL,
	ledger_rows bigint NOT NULL,
	rollup_buckets bigint NOT NULL,
	CONSTRAINT erasures_pkey PRIMARY KEY (erasure_id)
);
CREATE INDEX erasures_stream ON eventkit.erasures (stream_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.erasures', '');
SELECT pg_catalog.pg_extension_config_dump('eventkit.erasures_erasure_id_seq', '');
REVOKE ALL ON TABLE eventkit.erasures FROM PUBLIC;
REVOKE ALL ON SEQUENCE eventkit.erasures_erasure_id_seq FROM PUBLIC;
ALTER TABLE eventkit.erasures ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.erasures FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) erasures.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.erasures TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.erasures IS
'a stream''s owner (or a member of the owning role) reads the stream''s erasures';

COMMENT ON TABLE eventkit.erasures IS
'the audit log of eventkit.forget_user: who erased which ids of a stream, when, and how many rows; readable by the stream''s owner';
COMMENT ON COLUMN eventkit.erasures.erasure_id IS 'the erasure''s id';
COMMENT ON COLUMN eventkit.erasures.stream_id IS 'the stream (eventkit.streams; the row stays after drop_stream)';
COMMENT ON COLUMN eventkit.erasures.stream IS 'the stream''s qualified name at the time';
COMMENT ON COLUMN eventkit.erasures.user_id IS 'the id forget_user was called with';
COMMENT ON COLUMN eventkit.erasures.ids IS 'every id erased and suppressed: the user''s whole identity set';
COMMENT ON COLUMN eventkit.erasures.erased_by IS 'the session user that called forget_user';
COMMENT ON COLUMN eventkit.erasures.erased_at IS 'when (the transaction''s time)';
COMMENT ON COLUMN eventkit.erasures.events IS 'events deleted from the stream';
COMMENT ON COLUMN eventkit.erasures.quarantined IS 'events deleted from eventkit.quarantine';
COMMENT ON COLUMN eventkit.erasures.conflicts IS 'events deleted from eventkit.conflicts';
COMMENT ON COLUMN eventkit.erasures.ledger_rows IS 'dedup ledger entries deleted';
COMMENT ON COLUMN eventkit.erasures.rollup_buckets IS 'rollup buckets rebuilt from the remaining events (summed over the stream''s rollups)';
COMMENT ON SEQUENCE eventkit.erasures_erasure_id_seq IS 'ids of eventkit.erasures';

-- Ids erased by forget_user: a later event carrying one (userId,
-- anonymousId or previousId) is rejected with reason "suppressed".
CREATE TABLE eventkit.suppressions (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	id text NOT NULL,
	erasure_id bigint NOT NULL,		-- eventkit.erasures (no foreign key: parallel restore order)
	suppressed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT suppressions_pkey PRIMARY KEY (stream_id, id)
);
SELECT pg_catalog.pg_extension_config_dump('eventkit.suppressions', '');
REVOKE ALL ON TABLE eventkit.suppressions FROM PUBLIC;
ALTER TABLE eventkit.suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_owner ON eventkit.suppressions FOR SELECT TO PUBLIC
	USING (EXISTS (SELECT 1 FROM eventkit.streams s
					 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
					WHERE s.stream_id OPERATOR(pg_catalog.=) suppressions.stream_id
					  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
GRANT SELECT ON eventkit.suppressions TO PUBLIC;
COMMENT ON POLICY stream_owner ON eventkit.suppressions IS
'a stream''s owner (or a member of the owning role) reads the stream''s suppressed ids';

COMMENT ON TABLE eventkit.suppressions IS
'ids erased by eventkit.forget_user: later events carrying one are rejected (reason suppressed); readable by the stream''s owner';
COMMENT ON COLUMN eventkit.suppressions.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.suppressions.id IS 'a userId, anonymousId or previousId of an erased user';
COMMENT ON COLUMN eventkit.suppressions.erasure_id IS 'the erasure that suppressed it (eventkit.erasures)';
COMMENT ON COLUMN eventkit.suppressions.suppressed_at IS 'when it was suppressed';

-- The identity graph, as pg_stats shows statistics: only the streams the
-- user may SELECT from.
-- A canonical id has no row of its own since 1.9 (ingest writes none; one
-- stored before stays): it is listed with its set's first and latest times.
CREATE VIEW eventkit.identities WITH (security_barrier) AS
SELECT s.relid AS stream,
	   l.id,
	   l.canonical_id AS canonical_user_id,
	   l.first_seen,
	   l.last_seen
  FROM (SELECT k.stream_id, k.id, k.canonical_id, k.first_seen, k.last_seen
		  FROM eventkit.identity_links k
		UNION ALL
		SELECT m.stream_id, m.canonical_id, m.canonical_id,
			   pg_catalog.min(m.first_seen), pg_catalog.max(m.last_seen)
		  FROM eventkit.identity_links m
		 WHERE m.id OPERATOR(pg_catalog.<>) m.canonical_id
		   AND NOT EXISTS (SELECT FROM eventkit.identity_links c
							WHERE c.stream_id OPERATOR(pg_catalog.=) m.stream_id
							  AND c.id OPERATOR(pg_catalog.=) m.canonical_id)
		 GROUP BY m.stream_id, m.canonical_id) l
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT');
REVOKE ALL ON TABLE eventkit.identities FROM PUBLIC;
GRANT SELECT ON eventkit.identities TO PUBLIC;

COMMENT ON VIEW eventkit.identities IS
'the identity graph of the streams the user may read: each linked id and its canonical user (a canonical id without a row of its own with its set''s first and latest times)';
COMMENT ON COLUMN eventkit.identities.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.identities.id IS 'an id that an event linked (anonymousId, previousId or userId)';
COMMENT ON COLUMN eventkit.identities.canonical_user_id IS 'the userId it resolves to';
COMMENT ON COLUMN eventkit.identities.first_seen IS 'the event time of the first link that named it';
COMMENT ON COLUMN eventkit.identities.last_seen IS 'the event time of the latest link that named it';

CREATE FUNCTION eventkit.resolve_user(stream regclass, id text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventkit_resolve_user'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.resolve_user(regclass, text) IS
'the canonical user of an id in a stream''s identity graph; the id itself when no event linked it (needs SELECT on the stream)';

CREATE FUNCTION eventkit.forget_user(stream regclass, user_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.forget_user(regclass, text) IS
'erase a user (every id linked to it) from a stream, its quarantine, conflicts, ledger and rollups, and suppress its ids; returns the events deleted (owner only)';

-- On a Citus worker, forget_user's part there (since 1.15): a distributed
-- stream's quarantine and conflicts rows, identity links and suppressions
-- are each node's own; forget_user on the coordinator calls this on every
-- worker.
CREATE FUNCTION eventkit.forget_user_on_worker(stream regclass, ids text[], erasure_id bigint,
											   OUT quarantined bigint, OUT conflicts bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_forget_user_on_worker'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.forget_user_on_worker(regclass, text[], bigint) IS
'on a Citus worker, called by forget_user on the coordinator: deletes the ids'' quarantine and conflicts rows and identity links of a distributed stream kept on this node and suppresses the ids here; the stream''s owner only';

-- Gives every stream without one its <stream>_resolved view, owned by the
-- stream's owner (the 1.3 -> 1.4 update calls it; create_stream makes the
-- view of a new stream).  Not an interface: superusers only.
CREATE FUNCTION eventkit_internal.create_resolved_views()
RETURNS integer
AS 'MODULE_PATHNAME', 'eventkit_create_resolved_views'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION eventkit_internal.create_resolved_views() FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.create_resolved_views() IS
'make the <stream>_resolved view of every stream that has none (owned by the stream''s owner, not by the extension); returns how many';

-- ==== Compact dedup ledger (issue 19) ====
-- A ledger generation keeps (message_key uuid, gen, fingerprint,
-- user_key_hash): message_key is the 128-bit ledger key of the message id
-- (format 1, docs/architecture.md "Dedup ledger"), user_key_hash the
-- 64-bit id_hash64 of the user key, for forget_user.  The key is stored,
-- so sql/pinned_formats.sql pins it with known answers.  Not an
-- interface: executable by superusers and the extension owner only.
CREATE FUNCTION eventkit_internal.ledger_key(id text)
RETURNS uuid
AS 'MODULE_PATHNAME', 'eventkit_ledger_key'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.ledger_key(text) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.ledger_key(text) IS
'the 128-bit dedup ledger key of a message id (id_hash64 and a second lane, little-endian; pinned by known answers)';

-- ==== Rollup costs: the realtime view's hlls (issue 19) ====
-- What the realtime views made since 1.5 call on their tail instead of
-- hll_add_agg (src/rollup/hll.c): the same hll, without a 128 kB state per group.
CREATE FUNCTION eventkit.rollup_hll(hashes "any", empty anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hll("any", anyelement) IS
'the hll of the hashes (an array of hll_hashval or bigint; NULLs left out) with the parameters of empty (hll_empty(...)), equal to hll_add_agg over them; empty when there are none';

-- What the realtime views made since 1.12 hash their tail's values with
-- (rollup_hll's argument): the hll library's hll_hash_text(value, 0), computed
-- by eventkit (src/rollup/hll_hash.c), so that a new session's query of a
-- realtime view does not load the hll library (docs/performance.md).
CREATE FUNCTION eventkit.rollup_hash_text(value text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_rollup_hash_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hash_text(text) IS
'hll_hash_text(value, 0) as a bigint, computed by eventkit: what the realtime views made since 1.12 hash their tail with, so that a query of them loads no code of the hll library';

-- What the realtime views made since 1.11 collect a tail group's hashes with
-- (rollup_hll's argument): array_agg's own functions, with a transition space
-- (SSPACE) the planner can cost.  array_agg's internal state has none, and the
-- planner takes 8 kB per group for it, so the tail's groups did not fit
-- work_mem in its estimate and were sorted for a GroupAggregate instead of
-- hashed (docs/performance.md, "The realtime query (1.11)").
CREATE AGGREGATE eventkit.rollup_hashes(anynonarray) (
	SFUNC = pg_catalog.array_agg_transfn,
	STYPE = internal,
	SSPACE = 1024,
	FINALFUNC = pg_catalog.array_agg_finalfn,
	FINALFUNC_EXTRA,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE eventkit.rollup_hashes(anynonarray) IS
'array_agg, with a transition space the planner can cost (the realtime views hash their tail''s groups)';

-- ==== Rollup costs: the refresh's hll merge in C (issue 19) ====
-- (src/rollup/hll.c, src/rollup/fold_write.c; sql/rollup_hll_merge.sql)
-- Not an interface: in eventkit_internal, executable by superusers only.
-- What the refresh's merge in C writes for a rollup row's hll and a group's
-- hashes, so that the test compares it with hll_union byte for byte.
CREATE FUNCTION eventkit_internal.rollup_hll_union_hashes(old anyelement, hashes bigint[],
														   empty anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll_union_hashes'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION eventkit_internal.rollup_hll_union_hashes(anyelement, bigint[], anyelement) FROM PUBLIC;
COMMENT ON FUNCTION eventkit_internal.rollup_hll_union_hashes(anyelement, bigint[], anyelement) IS
'for tests only: the hll the refresh''s merge in C writes for a rollup row''s hll and a group''s hashes (NULLs left out), with the parameters of empty and the session''s hll max_sparse: hll_union''s bytes; NULL when the merge leaves it to hll_union';

-- ==== Re-driving waiting events by hand and on Citus workers (issue 17) ====
-- The redrive job's work on this node; on a Citus coordinator, the premake and
-- redrive jobs of a distributed stream call it on every worker.
CREATE FUNCTION eventkit.redrive_quarantine(stream regclass, OUT replayed bigint,
											OUT waiting_partitions timestamptz[])
RETURNS record
AS 'MODULE_PATHNAME', 'eventkit_redrive_quarantine'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.redrive_quarantine(regclass) IS
'replay a stream''s events waiting for a partition (quarantined out_of_range) whose partition exists now, as the redrive job does; returns how many were replayed and the start of each partition the others still wait for; needs the stream''s ownership';

-- ==== Identity graph: re-timing in place (issue 18) ====
-- The identity stage re-times a stored id (last_seen, first_seen: columns no
-- index holds) when a link moves them by more than a day: with room left on
-- the table's pages those updates are HOT, adding no index entries, so the
-- primary-key probe every batch makes for its ids stays short.
ALTER TABLE eventkit.identity_links SET (fillfactor = 70);

-- ==== Rollup costs: the realtime view's distinct counts (issue 19) ====
-- What the realtime views made since 1.7 call for a distinct() column
-- (src/rollup/hll.c): the count of a tail group's hll merged with its rollup
-- row's, without packing the union and unpacking it again.
CREATE FUNCTION eventkit.rollup_hll_count(a anyelement, b anyelement)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll_count'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hll_count(anyelement, anyelement) IS
'round(COALESCE(hll_cardinality(COALESCE(hll_union(a, b), a, b)), 0))::bigint for two hlls of the same parameters, either NULL: a realtime view''s distinct count';
-- ==== Rollups of distributed streams: the realtime view's tail (issue 17) ====
-- What the realtime view of a rollup of a stream distributed on Citus calls
-- beside its delta rows (src/rollup/view.c): the partial states of the
-- stream's rows of the batches newer than the watermark that have no deltas,
-- read through Citus only when there are any.  Not an interface; executable by
-- every reader of a realtime view (it checks the caller may read the rollup).
-- In schema eventkit (1.11; eventkit_internal before), where every rollup
-- owner who makes such a view may name it.
CREATE FUNCTION eventkit.rollup_stream_tail(rollup regclass)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'eventkit_rollup_stream_tail'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventkit.rollup_stream_tail(regclass) IS
'the realtime view''s tail of a rollup of a distributed stream from the stream''s rows: the groups'' partial states of the batches newer than the watermark that stored events without rollup deltas (none read when there are none); for callers who may read the rollup or its realtime view';
