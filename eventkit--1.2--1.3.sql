\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 */

-- ==== Quarantine, tracking plans and parallel restore ====
-- (src/quarantine.c, src/ingest.c, src/plan.c, src/partition.c)

-- plan_versions -> plans has no foreign key any more.  pg_restore -j N loads
-- the data of extension configuration tables in parallel, each table in its
-- own transaction, so the plan_versions COPY could run before the plans
-- COPY had committed and fail on the key, leaving the restored streams
-- without their plans (DEFERRABLE does not help: the two loads are separate
-- transactions).  The key still holds: create_plan writes a plan and its
-- versions under a lock on eventkit.plans, and nothing deletes plans; a
-- stream whose plan or version is missing quarantines its events
-- (plan_missing) and eventkit.health_plans reports it as an error.
ALTER TABLE eventkit.plan_versions DROP CONSTRAINT plan_versions_plan_id_fkey;

-- A plan's owner is a role name (as pg_cron's cron.job.username), not an
-- OID: OIDs do not survive pg_dump into another cluster, nor are they the
-- same on every node of a Citus cluster.  DROP ROLE cannot see rows of a
-- table: after it the plan keeps the name, only superusers can add versions
-- (or a role created again under that name), eventkit.health_plans warns,
-- and eventkit.alter_plan_owner() gives the plan a new owner.  An owner
-- dropped before 1.3 shows as "unknown (OID=n)".
ALTER TABLE eventkit.plans ALTER COLUMN owner TYPE name
	USING pg_catalog.pg_get_userbyid(owner);

CREATE FUNCTION eventkit.alter_plan_owner(plan text, new_owner regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_alter_plan_owner'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION eventkit.alter_plan_owner(text, regrole) IS
'give a tracking plan a new owner (its owner or a superuser; the caller must be a member of the new owner)';

-- A retried identical bad event is stored once: its content fingerprint
-- (the one dedup uses: sentAt and receivedAt left out; for an item that is
-- not a JSON object, a hash of its text) with its message id is unique per
-- stream.  Rows quarantined before 1.3 have no fingerprint.  The ingest
-- result (and ingest_batches) still counts the retry as quarantined.
ALTER TABLE eventkit.quarantine ADD COLUMN fingerprint bigint;
CREATE UNIQUE INDEX quarantine_retry_key ON eventkit.quarantine
	(stream_id, message_id, fingerprint) NULLS NOT DISTINCT
	WHERE fingerprint IS NOT NULL;

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

CREATE FUNCTION eventkit.discard_quarantine(stream regclass, ids bigint[] DEFAULT NULL,
											reasons text[] DEFAULT NULL,
											older_than interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventkit_discard_quarantine'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION eventkit.discard_quarantine(regclass, bigint[], text[], interval) IS
'delete a stream''s quarantined events (those listed, with one of the reasons, quarantined longer ago than older_than); needs the stream''s ownership';

-- Violation statistics are derived from the events of a stream, so, as
-- pg_stats does, the view shows only the streams the user may SELECT from.
CREATE OR REPLACE VIEW eventkit.violation_stats AS
SELECT v.stream_id,
	   s.relid AS stream,
	   p.name AS plan,
	   v.event,
	   v.keyword,
	   v.property_path,
	   v.action,
	   pg_catalog.sum(v.violations)::bigint AS violations,
	   pg_catalog.count(DISTINCT v.batch_id) AS batches,
	   pg_catalog.min(v.plan_version) AS first_plan_version,
	   pg_catalog.max(v.plan_version) AS last_plan_version,
	   pg_catalog.max(v.batch_id) AS last_batch_id
  FROM eventkit.batch_violations v
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) v.stream_id
  JOIN eventkit.plans p ON p.plan_id OPERATOR(pg_catalog.=) v.plan_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT')
 GROUP BY v.stream_id, s.relid, p.name, v.event, v.keyword, v.property_path, v.action;

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
GRANT SELECT ON eventkit.health_plans TO pg_monitor;
COMMENT ON VIEW eventkit.health_plans IS
'health of tracking plans: streams whose plan or version is missing (error), plans whose owner role is gone (warning)';

-- ==== Rollups: bad values (src/rollup.c, rollup_sql.c, rollup_fold.c, rollup_delta.c) ====
--
-- A value that does not fit a rollup never fails a batch or a refresh: a
-- measure's value that is not a number or is outside the measure's range is
-- skipped, a long text dimension value is bounded (README, Rollups).  The
-- counts, by reason, of the values a rollup's refreshes skipped or bounded;
-- format tells what its realtime view and delta table were made for (1:
-- before 1.3; a refresh makes them again for the current format, 2).
-- Restoring a dump from before 1.3 leaves format at its default, 1.
ALTER TABLE eventkit.rollups
	ADD COLUMN skipped_values jsonb NOT NULL DEFAULT '{}',
	ADD COLUMN last_skipped_at timestamptz,
	ADD COLUMN format integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN eventkit.rollups.skipped_values IS
	'values left out of a measure (not_a_number, out_of_range) and dimension values bounded (dimension_truncated), counted at refresh';
COMMENT ON COLUMN eventkit.rollups.format IS
	'format of the rollup''s realtime view and delta table: 1 before eventkit 1.3, 2 since';

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

CREATE OR REPLACE VIEW eventkit.rollup_status AS
SELECT r.rollup_id, r.name, r.relid AS rollup, r.stream, r.schedule, r.watermark,
	   r.backfill_target,
	   r.watermark OPERATOR(pg_catalog.>=) r.backfill_target AS backfilled,
	   r.events_folded, r.last_refresh_at, r.last_refresh_events,
	   r.skipped_values, r.last_skipped_at
  FROM eventkit.rollups r;

-- health(): a warning per rollup whose refreshes skipped or bounded values
-- (the counts since the rollup was created, by reason).
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
GRANT SELECT ON eventkit.health_rollup_values TO pg_monitor;
COMMENT ON VIEW eventkit.health_rollup_values IS
	'health(): a warning per rollup with values skipped or bounded (eventkit.rollups.skipped_values)';

-- ==== Owner-only limits and clock bounds ====
-- (src/guc.c, src/catalog.c, src/ingest.c, src/partition.c)

-- A stream's clock bounds (an event outside them is quarantined too_old or
-- too_new) and its own size limits (NULL: the eventkit.* settings).  Streams
-- made before 1.3 keep their behaviour: no bounds, the settings' limits.
ALTER TABLE eventkit.streams
	ADD COLUMN max_past interval,
	ADD COLUMN max_future interval,
	ADD COLUMN max_event_bytes integer,
	ADD COLUMN max_batch_bytes integer,
	ADD COLUMN max_batch_items integer,
	ADD CONSTRAINT streams_max_past_check CHECK (max_past > interval '0'),
	ADD CONSTRAINT streams_max_future_check CHECK (max_future > interval '0'),
	ADD CONSTRAINT streams_max_event_bytes_check CHECK (max_event_bytes > 0),
	ADD CONSTRAINT streams_max_batch_bytes_check CHECK (max_batch_bytes > 0),
	ADD CONSTRAINT streams_max_batch_items_check CHECK (max_batch_items > 0);

-- create_stream gains the clock bounds and the limits: one function, not
-- an overload beside the 1.0 one.
DROP FUNCTION eventkit.create_stream(text, interval, integer, interval, integer, interval);
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

-- ==== Jobs and the worker: restore (src/worker.c) ====

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

-- ==== Intake over HTTP ====
-- (src/intake/: the listener serves Segment's tracking API; see docs/intake-http.md)

-- Write keys.  Only a key's SHA-256 is stored; key_prefix (its first 11
-- characters) names it in eventkit.write_keys and revoke_write_key().  A key
-- ingests into one stream with the rights of the role that created it (a
-- role name, as eventkit.plans.owner: OIDs do not survive pg_dump into
-- another cluster).  No foreign key to eventkit.streams: pg_restore -j loads
-- extension tables in parallel (see plan_versions above); a key whose stream
-- is gone is refused by the listener (403) and shown without a stream.
CREATE TABLE eventkit.intake_keys (
	key_hash bytea PRIMARY KEY,
	key_prefix text NOT NULL UNIQUE,
	stream_id integer NOT NULL,
	role name NOT NULL,
	description text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_used_at timestamptz,
	revoked_at timestamptz,
	CHECK (pg_catalog.octet_length(key_hash) OPERATOR(pg_catalog.=) 32)
);
SELECT pg_catalog.pg_extension_config_dump('eventkit.intake_keys', '');
REVOKE ALL ON eventkit.intake_keys FROM PUBLIC;
COMMENT ON TABLE eventkit.intake_keys IS
'write keys of the HTTP intake: SHA-256 of each key, its stream and role (read eventkit.write_keys)';

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
GRANT SELECT ON eventkit.write_keys TO PUBLIC;
COMMENT ON VIEW eventkit.write_keys IS
'write keys of the HTTP intake you may see (your roles'', your streams''): prefix, stream, role, use; never the secret';

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

-- ==== Intake from Kafka ====
-- (src/intake/kafka_source.c, src/intake/kafka_consumer.c, src/ingest.c;
-- docs/intake-kafka.md)

-- Where a quarantined event came from, when an intake worker ingested it:
-- {"kind": "kafka", "source": ..., "topic": ..., "partition": ..., "offset": ...}.
-- NULL for events ingested through SQL.
ALTER TABLE eventkit.quarantine ADD COLUMN origin jsonb;

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

-- ==== Pinned formats: functions for the tests only ====
-- (src/pipeline/dedup/ledger_filter.c, src/jsonschema/jsonschema_regex.c;
-- sql/pinned_formats.sql, sql/regex_crosscheck.sql,
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

CREATE FUNCTION eventkit_internal.ledger_filter_contains(filter bytea, id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_ledger_filter_contains'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.ledger_filter_contains(bytea, text) FROM PUBLIC;

-- whether the validator's fast matcher runs a "pattern" (NULL: invalid)
CREATE FUNCTION eventkit_internal.regex_fast_path(pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_regex_fast_path'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.regex_fast_path(text) FROM PUBLIC;

-- whether the raw jsonb readers see a value exactly as it is: rebuilt from
-- what they read, it is byte for byte the input
CREATE FUNCTION eventkit_internal.jsonb_raw_roundtrip(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_jsonb_raw_roundtrip'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.jsonb_raw_roundtrip(jsonb) FROM PUBLIC;

-- whether the fingerprint's walk over the JEntries equals the iterator's
CREATE FUNCTION eventkit_internal.fingerprint_walk_check(value jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventkit_fingerprint_walk_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION eventkit_internal.fingerprint_walk_check(jsonb) FROM PUBLIC;
