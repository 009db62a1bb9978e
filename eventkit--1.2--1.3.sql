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
