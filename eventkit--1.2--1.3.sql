\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 *
 * RULE while 1.3 is not released: every object added or changed in 1.3 goes
 * into BOTH this file (as the change from 1.2) and eventkit--1.3.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through 1.1, 1.2 and
 * this file and compares it with a fresh install of eventkit--1.3.sql
 * (members, columns, indexes, constraints, triggers, views, functions,
 * sequences, grants, comments, row-level security,
 * pg_extension_config_dump, the extension's own rows): any difference fails
 * it.  Each section gives its own objects their COMMENT ON; the section
 * "Catalog: keys, names and comments" comments those made before 1.3.
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

COMMENT ON COLUMN eventkit.quarantine.origin IS 'where an intake worker got the event: {"kind": "kafka", "source", "topic", "partition", "offset"}; NULL for events ingested through SQL or HTTP';
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

COMMENT ON COLUMN eventkit.intake_keys.key_hash IS 'SHA-256 of the key (the key itself is not stored)';
COMMENT ON COLUMN eventkit.intake_keys.key_prefix IS 'the key''s first 11 characters, which name it (eventkit.write_keys, revoke_write_key)';
COMMENT ON COLUMN eventkit.intake_keys.stream_id IS 'the stream it ingests into (eventkit.streams)';
COMMENT ON COLUMN eventkit.intake_keys.role IS 'the role that created it, whose rights the listener ingests with';
COMMENT ON COLUMN eventkit.intake_keys.description IS 'as given to create_write_key';
COMMENT ON COLUMN eventkit.intake_keys.created_at IS 'when it was created';
COMMENT ON COLUMN eventkit.intake_keys.last_used_at IS 'when a request last used it (written at most once a minute)';
COMMENT ON COLUMN eventkit.intake_keys.revoked_at IS 'when it was revoked; NULL while it is valid';
COMMENT ON COLUMN eventkit.write_keys.key_prefix IS 'the key''s first 11 characters, which name it';
COMMENT ON COLUMN eventkit.write_keys.stream IS 'the stream it ingests into; NULL if the stream is gone';
COMMENT ON COLUMN eventkit.write_keys.role IS 'the role it ingests as';
COMMENT ON COLUMN eventkit.write_keys.description IS 'as given to create_write_key';
COMMENT ON COLUMN eventkit.write_keys.created_at IS 'when it was created';
COMMENT ON COLUMN eventkit.write_keys.last_used_at IS 'when a request last used it (to the minute)';
COMMENT ON COLUMN eventkit.write_keys.revoked_at IS 'when it was revoked; NULL while it is valid';

-- ==== health() for pg_monitor ====
-- health_ledger named the ledger through to_regclass('eventkit_internal....'),
-- which needs USAGE on that schema: every non-superuser member of pg_monitor
-- got "permission denied for schema eventkit_internal" from health().  The
-- ledger's partitioned table is found through pg_class instead.
CREATE OR REPLACE VIEW eventkit.health_ledger AS
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

-- ==== Catalog: keys, names and comments ====
-- (eventkit--1.3.sql states the conventions at its top: names, grants,
-- keys, roles)

-- Every catalog table has a primary key.  batch_violations had none: its
-- rows get an id (the natural key, batch, plan version, event, keyword,
-- path and action, has a nullable event).
ALTER TABLE eventkit.batch_violations ADD COLUMN violation_id bigserial NOT NULL;
ALTER TABLE eventkit.batch_violations ADD CONSTRAINT batch_violations_pkey PRIMARY KEY (violation_id);
SELECT pg_catalog.pg_extension_config_dump('eventkit.batch_violations_violation_id_seq', '');
REVOKE ALL ON SEQUENCE eventkit.batch_violations_violation_id_seq FROM PUBLIC;

-- Indexes made without a name in 1.0 and 1.1 get the names of the 1.1
-- scheme, <table>_<what they look up> (no code names them).
ALTER INDEX eventkit.quarantine_stream_id_quarantine_id_idx RENAME TO quarantine_stream;
ALTER INDEX eventkit.ingest_batches_stream_id_idx RENAME TO ingest_batches_stream;
ALTER INDEX eventkit.conflicts_stream_id_message_id_idx RENAME TO conflicts_stream_message;
ALTER INDEX eventkit.batch_violations_stream_id_batch_id_idx RENAME TO batch_violations_stream_batch;
ALTER INDEX eventkit.rollups_stream_id_idx RENAME TO rollups_stream;

-- A recorded role is the caller's name, which the C code writes; a default
-- of CURRENT_USER would record the extension owner it writes as.
ALTER TABLE eventkit.ingest_batches ALTER COLUMN ingested_by DROP DEFAULT;
ALTER TABLE eventkit.plan_versions ALTER COLUMN created_by DROP DEFAULT;

-- Job kinds: a table of the extension's own rows instead of a CHECK (a new
-- kind is a row).  Not dumped, filled by CREATE EXTENSION before any data
-- is restored, so the foreign keys to it hold during pg_restore -j.
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
ALTER TABLE eventkit.jobs
	DROP CONSTRAINT jobs_kind_check,
	ADD CONSTRAINT jobs_kind_fkey FOREIGN KEY (kind) REFERENCES eventkit.job_kinds (kind);
ALTER TABLE eventkit.job_runs
	ADD CONSTRAINT job_runs_kind_fkey FOREIGN KEY (kind) REFERENCES eventkit.job_kinds (kind);

-- Every object gets its COMMENT ON (those made in 1.3 have theirs already),
-- the columns of every catalog table and view too.
COMMENT ON SCHEMA eventkit IS
'eventkit: event collection (streams, ingest, dedup, tracking plans, rollups, jobs); see README';
COMMENT ON SCHEMA eventkit_internal IS
'eventkit''s per-stream dedup ledgers (ledger_<stream_id> and its generations); written only by eventkit';
COMMENT ON TYPE eventkit.ingest_result IS
'what an ingest call did with the events of its payload, counted by outcome';
COMMENT ON COLUMN eventkit.ingest_result.accepted IS 'events stored in the stream';
COMMENT ON COLUMN eventkit.ingest_result.duplicates IS 'events whose messageId was already stored with the same content';
COMMENT ON COLUMN eventkit.ingest_result.conflicts IS 'events whose messageId was already stored with different content (logged in eventkit.conflicts)';
COMMENT ON COLUMN eventkit.ingest_result.quarantined IS 'events kept in eventkit.quarantine with their reasons';
COMMENT ON COLUMN eventkit.ingest_result.rejected IS 'events rejected by policy (eventkit.invalid_events = reject), not kept';
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
COMMENT ON FUNCTION eventkit.drop_stream(regclass) IS
'drop a stream: its table with its partitions, its dedup ledger and every catalog row about it (owner only)';
COMMENT ON FUNCTION eventkit.partitions(regclass) IS
'the range partitions of a stream with their bounds, in time order';
COMMENT ON FUNCTION eventkit.run_maintenance(regclass) IS
'premake and drop partitions, rotate and prune the dedup ledger: of one stream, or of every stream the caller owns (NULL)';
COMMENT ON FUNCTION eventkit.forget_dropped_streams() IS
'remove the catalog rows and dedup ledger of streams whose table no longer exists; returns how many (called by the sql_drop event trigger)';
COMMENT ON FUNCTION eventkit.on_sql_drop() IS
'the function of event trigger eventkit_forget_dropped_streams';
COMMENT ON EVENT TRIGGER eventkit_forget_dropped_streams IS
'after DROP TABLE or DROP SCHEMA: forget the streams and rollups whose table was dropped';
COMMENT ON TABLE eventkit.ledger_generations IS
'the generations of each stream''s dedup ledger (one table each, eventkit_internal.ledger_<stream_id>_g<gen>)';
COMMENT ON COLUMN eventkit.ledger_generations.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.ledger_generations.gen IS 'the generation''s number, from 1';
COMMENT ON COLUMN eventkit.ledger_generations.started_at IS 'when the generation became the current one';
COMMENT ON COLUMN eventkit.ledger_generations.ended_at IS 'when it was sealed; NULL for the current generation';
COMMENT ON COLUMN eventkit.ledger_generations.filter IS 'blocked Bloom filter of a sealed generation''s message ids; NULL until built';
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
COMMENT ON TABLE eventkit.conflicts IS
'events whose messageId was already stored with different content: the stored copy is kept, the new one is logged here';
COMMENT ON COLUMN eventkit.conflicts.conflict_id IS 'the row''s id';
COMMENT ON COLUMN eventkit.conflicts.stream_id IS 'the stream (eventkit.streams)';
COMMENT ON COLUMN eventkit.conflicts.batch_id IS 'the ingest call (eventkit.ingest_batches)';
COMMENT ON COLUMN eventkit.conflicts.item IS 'the event''s position in the payload, from 1';
COMMENT ON COLUMN eventkit.conflicts.message_id IS 'the messageId stored before with other content';
COMMENT ON COLUMN eventkit.conflicts.received_at IS 'the received_at of the call';
COMMENT ON COLUMN eventkit.conflicts.payload IS 'the conflicting event as sent';
COMMENT ON SEQUENCE eventkit.conflicts_conflict_id_seq IS 'ids of eventkit.conflicts';
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
COMMENT ON SEQUENCE eventkit.quarantine_quarantine_id_seq IS 'ids of eventkit.quarantine';
COMMENT ON VIEW eventkit.stream_stats IS
'per stream: ingest calls and their events by outcome, rows now in quarantine, last ingest';
COMMENT ON COLUMN eventkit.stream_stats.stream_id IS 'the stream''s id';
COMMENT ON COLUMN eventkit.stream_stats.stream IS 'the stream table';
COMMENT ON COLUMN eventkit.stream_stats.batches IS 'ingest calls';
COMMENT ON COLUMN eventkit.stream_stats.accepted IS 'events stored';
COMMENT ON COLUMN eventkit.stream_stats.duplicates IS 'events already stored with the same content';
COMMENT ON COLUMN eventkit.stream_stats.conflicts IS 'events already stored with different content';
COMMENT ON COLUMN eventkit.stream_stats.quarantined IS 'events quarantined, every retry counted';
COMMENT ON COLUMN eventkit.stream_stats.rejected IS 'events rejected by policy';
COMMENT ON COLUMN eventkit.stream_stats.in_quarantine IS 'rows in eventkit.quarantine now';
COMMENT ON COLUMN eventkit.stream_stats.last_ingest_at IS 'the time of the last ingest call';
COMMENT ON FUNCTION eventkit.ingest(regclass, jsonb, timestamptz) IS
'ingest one event, an array of events or a Segment batch envelope into a stream: dedup, checks, partitions, quarantine';
COMMENT ON FUNCTION eventkit.ingest(regclass, text, timestamptz) IS
'ingest JSON text or NDJSON into a stream; a line that is not JSON is quarantined, the others are ingested';
COMMENT ON FUNCTION eventkit.ingest_verbose(regclass, jsonb, timestamptz) IS
'ingest as eventkit.ingest(jsonb) does, returning one row per event with its status and reasons';
COMMENT ON FUNCTION eventkit.replay_quarantine(regclass, bigint[]) IS
'run a stream''s quarantined events (those listed, or all) through ingest again, dedup included; needs the stream''s ownership';
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
COMMENT ON VIEW eventkit.violation_stats IS
'tracking-plan findings summed per stream, plan, event, keyword, property path and action (streams the user may read)';
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
COMMENT ON FUNCTION eventkit.create_plan(text, jsonb) IS
'store a new version of a tracking plan (a new plan owned by the caller, or a plan the caller owns); returns the version';
COMMENT ON FUNCTION eventkit.attach_plan(regclass, text, integer) IS
'check a stream''s events against a tracking plan, pinned to a version or (NULL) following the latest; needs the stream''s ownership';
COMMENT ON FUNCTION eventkit.detach_plan(regclass) IS
'stop checking a stream''s events against a tracking plan; needs the stream''s ownership';
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
COMMENT ON COLUMN eventkit.rollups.last_skipped_at IS 'when a refresh last skipped or bounded a value';
COMMENT ON SEQUENCE eventkit.rollups_rollup_id_seq IS 'ids of eventkit.rollups';
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
COMMENT ON FUNCTION eventkit.create_rollup(text, regclass, interval, text[], text[], boolean) IS
'create a rollup of a stream (its table, its <name>_realtime view and its refresh job), folding the history unless backfill is false';
COMMENT ON FUNCTION eventkit.refresh_rollup(text, bigint) IS
'fold the events committed since the rollup''s watermark (about max_events of them, whole batches; NULL: all); returns how many';
COMMENT ON FUNCTION eventkit.drop_rollup(text) IS
'drop a rollup: its table, view, refresh job and catalog row';
COMMENT ON FUNCTION eventkit.set_rollup_schedule(text, interval) IS
'change how often the background worker refreshes a rollup';
COMMENT ON PROCEDURE eventkit.backfill_rollup(text, bigint) IS
'fold a rollup''s history chunk by chunk, committing after each: interruptible and resumable';
COMMENT ON FUNCTION eventkit.forget_dropped_rollups() IS
'remove the catalog rows and refresh jobs of rollups whose table or stream no longer exists; returns how many (called by the sql_drop event trigger)';
COMMENT ON TABLE eventkit.job_kinds IS
'the kinds of background jobs and what they do (rows of the extension, not dumped)';
COMMENT ON COLUMN eventkit.job_kinds.kind IS 'the kind''s name, as eventkit.jobs.kind holds it';
COMMENT ON COLUMN eventkit.job_kinds.stream_job IS 'true: one job per stream, with its stream_id; false: identified by kind and target';
COMMENT ON COLUMN eventkit.job_kinds.description IS 'what a job of this kind does';
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
COMMENT ON FUNCTION eventkit.schedule_stream_jobs(regclass) IS
'(re)create a stream''s jobs, keeping those that exist; returns how many were created';
COMMENT ON FUNCTION eventkit.schedule_job(text, text, interval) IS
'register a job that is not per stream (kind refresh_rollup); an existing one is kept; returns its id';
COMMENT ON FUNCTION eventkit.unschedule_job(text, text) IS
'remove a job that is not per stream, and its runs';
COMMENT ON FUNCTION eventkit.scheduler_status() IS
'the background worker''s scheduler of the current database, from shared memory';
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
COMMENT ON COLUMN eventkit.health_rollup_values.component IS 'rollup values';
COMMENT ON COLUMN eventkit.health_rollup_values.target IS 'the rollup''s name';
COMMENT ON COLUMN eventkit.health_rollup_values.status IS 'warning';
COMMENT ON COLUMN eventkit.health_rollup_values.value IS 'values skipped or bounded since the rollup was created';
COMMENT ON COLUMN eventkit.health_rollup_values.detail IS 'the counts by reason and the last time';
COMMENT ON COLUMN eventkit.health_plans.component IS 'plan';
COMMENT ON COLUMN eventkit.health_plans.target IS 'the stream, or the plan whose owner is gone';
COMMENT ON COLUMN eventkit.health_plans.status IS 'ok, warning or error';
COMMENT ON COLUMN eventkit.health_plans.value IS 'the plan version in force';
COMMENT ON COLUMN eventkit.health_plans.detail IS 'the plan and version, or what is missing';
COMMENT ON FUNCTION eventkit.health() IS
'the rows of every eventkit.health_* view: (component, target, status ok/warning/error, value, detail)';
