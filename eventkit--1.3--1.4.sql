\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.4'" to load this file. \quit

/*
 * eventkit 1.3 -> 1.4.
 *
 * RULE while 1.4 is not released: every object added or changed in 1.4 goes
 * into BOTH this file (as the change from 1.3) and eventkit--1.4.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.4.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

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

-- ---------------------------------------------------------------------
-- The scheduler in a read-only database: scheduler_status() says
-- 'read-only' (default_transaction_read_only on) and health() warns.
-- ---------------------------------------------------------------------
CREATE OR REPLACE VIEW eventkit.health_scheduler AS
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

-- ==== Identity graph and erasure (issue 18) ====
-- (src/pipeline/identity.c, src/catalog/identity.c, src/stream/identity.c;
-- sql/identity.sql, sql/forget_user.sql, test/specs/identity_merge.spec;
-- docs/identity.md)

-- The identity graph of each stream, kept flat by ingest: every id an event
-- linked (anonymousId with userId; an alias's previousId to its userId)
-- names its canonical user, a userId; the canonical user's own row names
-- itself.  Readable through eventkit.identities and <stream>_resolved.
CREATE TABLE eventkit.identity_links (
	stream_id integer NOT NULL,		-- eventkit.streams (no foreign key: see the top)
	id text NOT NULL,
	canonical_id text NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen timestamptz NOT NULL,
	CONSTRAINT identity_links_pkey PRIMARY KEY (stream_id, id)
);
CREATE INDEX identity_links_canonical ON eventkit.identity_links (stream_id, canonical_id);
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
COMMENT ON COLUMN eventkit.identity_links.canonical_id IS 'the userId every id of its set resolves to (the row of the canonical user names itself)';
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
CREATE VIEW eventkit.identities WITH (security_barrier) AS
SELECT s.relid AS stream,
	   l.id,
	   l.canonical_id AS canonical_user_id,
	   l.first_seen,
	   l.last_seen
  FROM eventkit.identity_links l
  JOIN eventkit.streams s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id
 WHERE pg_catalog.has_table_privilege(s.relid::pg_catalog.oid, 'SELECT');
REVOKE ALL ON TABLE eventkit.identities FROM PUBLIC;
GRANT SELECT ON eventkit.identities TO PUBLIC;

COMMENT ON VIEW eventkit.identities IS
'the identity graph of the streams the user may read: each linked id and its canonical user';
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

-- the streams made before 1.4 get their resolved view
SELECT eventkit_internal.create_resolved_views();
