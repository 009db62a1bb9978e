-- Upgrade from the oldest version: a 1.0 install with data, updated to the
-- current version, must keep its data and end up exactly as a fresh install
-- of the current version's full script (eventkit--<version>.sql): same
-- objects, columns, indexes, constraints, grants, comments, ... (see
-- pg_temp.ek_catalog() below).  The test prints only the differences.
CREATE EXTENSION eventkit VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventkit';
SELECT eventkit.create_stream('up_ev');
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u1", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u2", "userId": "a", "event": "Before Upgrade"}]');

-- 1.1 (no ledger filters in the catalog) with this library: a ledger
-- generation sealed there (by age) is probed without a filter
ALTER EXTENSION eventkit UPDATE TO '1.1';
UPDATE eventkit.ledger_generations SET started_at = started_at - interval '8 days';
SELECT eventkit.run_maintenance('up_ev');
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u1", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u0", "userId": "a", "event": "At 1.1"}]');
-- a tracking plan (its owner an OID at 1.1) and a quarantined event (no
-- retry key at 1.1)
SELECT eventkit.create_plan('up_plan', '{"events": {}}');
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');

-- rollups need the 1.3 catalog (their realtime views call its functions)
SELECT eventkit.create_rollup('up_r', 'up_ev', '1 hour', '{event}', '{count}');

-- The ledger as eventkit before 1.5 made it (message_id and user_key as
-- text, batch_id; this library makes the 1.5 layout): rebuilt with the same
-- ids, generations and fingerprints, for the update to convert.  Until the
-- update, this library refuses to use it.
CREATE FUNCTION pg_temp.key_of(text) RETURNS uuid
  AS '$libdir/eventkit', 'eventkit_ledger_key' LANGUAGE C IMMUTABLE STRICT;
CREATE TEMP TABLE old_ledger AS
SELECT e.message_id, l.gen, l.fingerprint, e.user_key, e.batch_id
  FROM eventkit_internal.ledger_1 l JOIN up_ev e ON pg_temp.key_of(e.message_id) = l.message_key;
DROP TABLE eventkit_internal.ledger_1;
CREATE TABLE eventkit_internal.ledger_1 (message_id text COLLATE "C" NOT NULL, gen int4 NOT NULL,
  fingerprint int8 NOT NULL, user_key text NOT NULL, batch_id int8 NOT NULL) PARTITION BY LIST (gen);
CREATE TABLE eventkit_internal.ledger_1_g1 PARTITION OF eventkit_internal.ledger_1 FOR VALUES IN (1);
CREATE TABLE eventkit_internal.ledger_1_g2 PARTITION OF eventkit_internal.ledger_1 FOR VALUES IN (2);
CREATE UNIQUE INDEX ON eventkit_internal.ledger_1_g1 (message_id);
CREATE UNIQUE INDEX ON eventkit_internal.ledger_1_g2 (message_id);
INSERT INTO eventkit_internal.ledger_1 SELECT * FROM old_ledger;
SELECT gen, message_id FROM eventkit_internal.ledger_1 ORDER BY 1, 2;
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "u9", "userId": "a", "event": "Refused"}');

ALTER EXTENSION eventkit UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'eventkit')
       AS at_default_version
  FROM pg_extension WHERE extname = 'eventkit';

-- 1.2: the generation sealed at 1.1 gets its filter at the next maintenance
SELECT gen, ended_at IS NULL AS current, filter IS NOT NULL AS has_filter
  FROM eventkit.ledger_generations ORDER BY gen;
SELECT eventkit.run_maintenance('up_ev');
SELECT gen, ended_at IS NULL AS current, filter IS NOT NULL AS has_filter
  FROM eventkit.ledger_generations ORDER BY gen;

-- 1.3: the plan's owner is a role name; the event quarantined at 1.1 has no
-- fingerprint, so its first retry is stored once more, and later ones not
SELECT name, owner = current_user AS owner_is_me FROM eventkit.plans;
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');
SELECT * FROM eventkit.ingest('up_ev', '{"type": "track", "messageId": "q1", "event": "No User"}');
SELECT message_id, fingerprint IS NOT NULL AS keyed FROM eventkit.quarantine ORDER BY quarantine_id;

-- the data and the ledger survive: re-sending is a duplicate
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u2", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u3", "userId": "a", "event": "After Upgrade"}]');
SELECT message_id, event FROM up_ev ORDER BY 1;
SELECT stream::text, accepted, duplicates FROM eventkit.stream_stats;

-- 1.5: the ledger was converted in place to 128-bit keys
-- (message_id text -> message_key uuid, user_key -> user_key_hash, batch_id
-- dropped); every stored id is there under its key, in its generation, and
-- the generation sealed at 1.1 (its filter built from the converted keys)
-- still answers: u1 and u0 are duplicates
SELECT format('eventkit_internal.%I', 'ledger_' || stream_id) AS up_ledger
  FROM eventkit.streams WHERE relid = 'up_ev'::regclass \gset
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = :'up_ledger'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT l.gen, count(*) AS ids, count(e.message_id) AS of_stored_events
  FROM :up_ledger l LEFT JOIN up_ev e ON eventkit_internal.ledger_key(e.message_id) = l.message_key
 GROUP BY 1 ORDER BY 1;
SELECT * FROM eventkit.ingest('up_ev', '[
  {"type": "track", "messageId": "u1", "userId": "a", "event": "Before Upgrade"},
  {"type": "track", "messageId": "u0", "userId": "a", "event": "At 1.1"}]');

-- What an installation of eventkit consists of, one row per fact:
-- (kind, object, detail).  Names, never OIDs, so that two installations
-- compare.  The objects: the extension's members and what belongs to them
-- (indexes, constraints, triggers, policies, column defaults, rules), and
-- the schema eventkit, which CREATE EXTENSION makes but does not own.
-- (Not echoed, to keep the expected output to what the test finds.)
\set ECHO none
CREATE FUNCTION pg_temp.ek_catalog()
RETURNS TABLE(kind text, object text, detail text)
LANGUAGE plpgsql
AS $fn$
DECLARE
	ext oid := (SELECT e.oid FROM pg_extension e WHERE e.extname = 'eventkit');
	t regclass;
BEGIN
	IF to_regclass('pg_temp.ek_objects') IS NOT NULL THEN
		DROP TABLE pg_temp.ek_objects;
	END IF;
	CREATE TEMP TABLE ek_objects AS
	WITH RECURSIVE o(classid, objid, member) AS (
		SELECT d.classid, d.objid, true FROM pg_depend d
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext AND d.deptype = 'e'
		UNION
		SELECT d.classid, d.objid, false FROM pg_depend d
		  JOIN o ON d.refclassid = o.classid AND d.refobjid = o.objid
		 WHERE d.deptype IN ('a', 'i')
	)
	SELECT o.classid, o.objid, bool_or(o.member) AS member FROM o GROUP BY o.classid, o.objid
	UNION
	SELECT 'pg_namespace'::regclass, n.oid, false FROM pg_namespace n WHERE n.nspname = 'eventkit';
	-- TOAST tables and their indexes are storage, named by OID
	DELETE FROM ek_objects o USING pg_class c
	 WHERE o.classid = 'pg_class'::regclass AND c.oid = o.objid AND c.relnamespace = 'pg_toast'::regnamespace;

	-- the extension itself
	RETURN QUERY
	SELECT 'extension', e.extname::text,
		   format('version %s, schema %s, relocatable %s', e.extversion, e.extnamespace::regnamespace, e.extrelocatable)
	  FROM pg_extension e WHERE e.oid = ext;

	-- members
	RETURN QUERY
	SELECT 'member', pg_describe_object(o.classid, o.objid, 0), ''
	  FROM ek_objects o WHERE o.member;

	-- schemas: owner, grants below, comments below
	RETURN QUERY
	SELECT 'schema', n.nspname::text, format('owner %s', n.nspowner::regrole)
	  FROM pg_namespace n JOIN ek_objects o ON o.classid = 'pg_namespace'::regclass AND o.objid = n.oid;

	-- relations (tables, views, sequences, composite types): kind, owner,
	-- persistence, options, replica identity, row-level security
	RETURN QUERY
	SELECT 'relation', c.oid::regclass::text,
		   format('relkind %s, owner %s, persistence %s, options %s, replica identity %s, row security %s, forced %s',
				  c.relkind, c.relowner::regrole, c.relpersistence, c.reloptions, c.relreplident,
				  c.relrowsecurity, c.relforcerowsecurity)
	  FROM pg_class c JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
	 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f');

	-- columns, by position among the columns a user sees
	RETURN QUERY
	SELECT 'column', format('%s.%s', a.attrelid::regclass, a.attname),
		   format('position %s, type %s, not null %s, default %s, collation %s, storage %s, compression %s, identity %s, generated %s',
				  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
				  format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  COALESCE(pg_get_expr(ad.adbin, ad.adrelid), '-'),
				  COALESCE((SELECT quote_ident(cl.collname) FROM pg_collation cl WHERE cl.oid = a.attcollation), '-'),
				  a.attstorage, quote_literal(a.attcompression::text), quote_literal(a.attidentity::text),
				  quote_literal(a.attgenerated::text))
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	  JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f') AND a.attnum > 0 AND NOT a.attisdropped;

	-- indexes, with their names
	RETURN QUERY
	SELECT 'index', i.indexrelid::regclass::text,
		   format('%s; clustered %s, replica identity %s', pg_get_indexdef(i.indexrelid),
				  i.indisclustered, i.indisreplident)
	  FROM pg_index i JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = i.indexrelid;

	-- constraints, with their names
	RETURN QUERY
	SELECT 'constraint', format('%s %s', COALESCE(k.conrelid::regclass::text, k.contypid::regtype::text), k.conname),
		   format('%s; type %s, deferrable %s, deferred %s, validated %s, no inherit %s',
				  pg_get_constraintdef(k.oid), k.contype, k.condeferrable, k.condeferred,
				  k.convalidated, k.connoinherit)
	  FROM pg_constraint k JOIN ek_objects o ON o.classid = 'pg_constraint'::regclass AND o.objid = k.oid;

	-- triggers (not those of foreign keys: the constraints cover them) and event triggers
	RETURN QUERY
	SELECT 'trigger', format('%s %s', tg.tgrelid::regclass, tg.tgname),
		   format('%s; enabled %s', pg_get_triggerdef(tg.oid), tg.tgenabled)
	  FROM pg_trigger tg JOIN ek_objects o ON o.classid = 'pg_trigger'::regclass AND o.objid = tg.oid
	 WHERE NOT tg.tgisinternal;
	RETURN QUERY
	SELECT 'event trigger', et.evtname::text,
		   format('on %s, tags %s, function %s, enabled %s, owner %s', et.evtevent, et.evttags,
				  et.evtfoid::regprocedure, et.evtenabled, et.evtowner::regrole)
	  FROM pg_event_trigger et JOIN ek_objects o ON o.classid = 'pg_event_trigger'::regclass AND o.objid = et.oid;

	-- rules other than views' (views: their definitions)
	RETURN QUERY
	SELECT 'rule', format('%s %s', r.ev_class::regclass, r.rulename), md5(pg_get_ruledef(r.oid))
	  FROM pg_rewrite r JOIN ek_objects o ON o.classid = 'pg_rewrite'::regclass AND o.objid = r.oid
	 WHERE r.rulename <> '_RETURN';
	RETURN QUERY
	SELECT 'view', c.oid::regclass::text, 'definition md5 ' || md5(pg_get_viewdef(c.oid))
	  FROM pg_class c JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
	 WHERE c.relkind IN ('v', 'm');

	-- functions and procedures: signature with argument names and defaults,
	-- result, language, properties, settings, and the C symbol or the body
	RETURN QUERY
	SELECT 'function', p.oid::regprocedure::text,
		   format('kind %s, arguments (%s), returns %s, language %s, volatility %s, strict %s, security definer %s, '
				  'leakproof %s, parallel %s, cost %s, rows %s, config %s, owner %s, %s',
				  p.prokind, pg_get_function_arguments(p.oid), COALESCE(pg_get_function_result(p.oid), '-'),
				  l.lanname, p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel,
				  p.procost, p.prorows, p.proconfig, p.proowner::regrole,
				  CASE WHEN l.lanname = 'c' THEN format('%s %s', p.probin, p.prosrc)
					   ELSE 'body md5 ' || md5(p.prosrc) END)
	  FROM pg_proc p
	  JOIN pg_language l ON l.oid = p.prolang
	  JOIN ek_objects o ON o.classid = 'pg_proc'::regclass AND o.objid = p.oid;

	-- aggregates: their support functions and state (pg_aggregate; the
	-- function row above has only the signature)
	RETURN QUERY
	SELECT 'aggregate', a.aggfnoid::regprocedure::text,
		   format('kind %s, direct args %s, transfn %s, finalfn %s, combinefn %s, serialfn %s, deserialfn %s, '
				  'mtransfn %s, minvtransfn %s, mfinalfn %s, finalextra %s, mfinalextra %s, finalmodify %s, '
				  'mfinalmodify %s, sortop %s, transtype %s, transspace %s, mtranstype %s, mtransspace %s, '
				  'initval %s, minitval %s',
				  a.aggkind, a.aggnumdirectargs, a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
				  a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn, a.aggfinalextra,
				  a.aggmfinalextra, a.aggfinalmodify, a.aggmfinalmodify, a.aggsortop, a.aggtranstype::regtype,
				  a.aggtransspace, a.aggmtranstype::regtype, a.aggmtransspace, a.agginitval, a.aggminitval)
	  FROM pg_aggregate a
	  JOIN ek_objects o ON o.classid = 'pg_proc'::regclass AND o.objid = a.aggfnoid;

	-- sequences: type, bounds, increment, cycle, owner column
	RETURN QUERY
	SELECT 'sequence', s.seqrelid::regclass::text,
		   format('type %s, start %s, increment %s, min %s, max %s, cache %s, cycle %s, owned by %s',
				  s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
				  COALESCE((SELECT string_agg(pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ', ')
							  FROM pg_depend d
							 WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
							   AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass), '-'))
	  FROM pg_sequence s JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = s.seqrelid;

	-- types that are members (composite types: their attributes are columns above)
	RETURN QUERY
	SELECT 'type', ty.oid::regtype::text,
		   format('type %s, owner %s, base %s', ty.typtype, ty.typowner::regrole, ty.typbasetype::regtype)
	  FROM pg_type ty JOIN ek_objects o ON o.classid = 'pg_type'::regclass AND o.objid = ty.oid AND o.member;

	-- grants, the defaults written out (no ACL and the default ACL are the same grants)
	RETURN QUERY
	SELECT 'grant', c.oid::regclass::text,
		   format('%s to %s%s, by %s', x.privilege_type,
				  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
				  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END, x.grantor::regrole)
	  FROM pg_class c
	  JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
	 CROSS JOIN LATERAL aclexplode(COALESCE(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
																  c.relowner))) x
	 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f');
	RETURN QUERY
	SELECT 'grant', format('%s.%s', a.attrelid::regclass, a.attname),
		   format('%s to %s%s, by %s', x.privilege_type,
				  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
				  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END, x.grantor::regrole)
	  FROM pg_attribute a
	  JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = a.attrelid
	 CROSS JOIN LATERAL aclexplode(a.attacl) x
	 WHERE a.attnum > 0 AND NOT a.attisdropped;
	RETURN QUERY
	SELECT 'grant', p.oid::regprocedure::text,
		   format('%s to %s%s, by %s', x.privilege_type,
				  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
				  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END, x.grantor::regrole)
	  FROM pg_proc p
	  JOIN ek_objects o ON o.classid = 'pg_proc'::regclass AND o.objid = p.oid
	 CROSS JOIN LATERAL aclexplode(COALESCE(p.proacl, acldefault('f'::"char", p.proowner))) x;
	RETURN QUERY
	SELECT 'grant', 'schema ' || n.nspname,
		   format('%s to %s%s, by %s', x.privilege_type,
				  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
				  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END, x.grantor::regrole)
	  FROM pg_namespace n
	  JOIN ek_objects o ON o.classid = 'pg_namespace'::regclass AND o.objid = n.oid
	 CROSS JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n'::"char", n.nspowner))) x;
	RETURN QUERY
	SELECT 'grant', 'type ' || ty.oid::regtype::text,
		   format('%s to %s%s, by %s', x.privilege_type,
				  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
				  CASE WHEN x.is_grantable THEN ' with grant option' ELSE '' END, x.grantor::regrole)
	  FROM pg_type ty
	  JOIN ek_objects o ON o.classid = 'pg_type'::regclass AND o.objid = ty.oid AND o.member
	 CROSS JOIN LATERAL aclexplode(COALESCE(ty.typacl, acldefault('T'::"char", ty.typowner))) x;
	RETURN QUERY
	SELECT 'default privileges', format('%s in schema %s on %s', da.defaclrole::regrole,
										da.defaclnamespace::regnamespace, da.defaclobjtype),
		   da.defaclacl::text
	  FROM pg_default_acl da
	 WHERE da.defaclnamespace IN (SELECT o.objid FROM ek_objects o WHERE o.classid = 'pg_namespace'::regclass);

	-- comments, of every object above and of every column
	RETURN QUERY
	SELECT 'comment', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
	  FROM pg_description d JOIN ek_objects o ON o.classid = d.classoid AND o.objid = d.objoid;

	-- row-level security policies
	RETURN QUERY
	SELECT 'policy', format('%s %s', pol.polrelid::regclass, pol.polname),
		   format('for %s, permissive %s, to %s, using %s, with check %s', pol.polcmd, pol.polpermissive,
				  (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ' ORDER BY 1)
					 FROM unnest(pol.polroles) r),
				  COALESCE(pg_get_expr(pol.polqual, pol.polrelid), '-'),
				  COALESCE(pg_get_expr(pol.polwithcheck, pol.polrelid), '-'))
	  FROM pg_policy pol JOIN ek_objects o ON o.classid = 'pg_policy'::regclass AND o.objid = pol.oid;

	-- what pg_dump dumps: pg_extension_config_dump's tables and conditions
	RETURN QUERY
	SELECT 'config dump', c.cfg::regclass::text, COALESCE(quote_literal(c.cond), '-')
	  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS c(cfg, cond)
	 WHERE e.oid = ext;

	-- the rows of the extension's own tables (member tables pg_dump does not dump)
	FOR t IN SELECT c.oid FROM pg_class c
			   JOIN ek_objects o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid AND o.member
			  WHERE c.relkind = 'r'
				AND c.oid <> ALL (COALESCE((SELECT e.extconfig FROM pg_extension e WHERE e.oid = ext), '{}'))
	LOOP
		RETURN QUERY EXECUTE format('SELECT %L::text, %L::text, x::text FROM %s x', 'row', t::text, t);
	END LOOP;
END
$fn$;
\set ECHO all

-- the upgraded installation
CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.ek_catalog();

SELECT eventkit.drop_stream('up_ev');
DROP EXTENSION eventkit CASCADE;
-- the schema is not a member (CREATE EXTENSION made it): its grants and
-- comment must come from the script too
DROP SCHEMA eventkit;

-- a fresh installation runs the current version's full script
SELECT v.name AS full_script,
       (pg_stat_file(format('%s/extension/%s', (SELECT setting FROM pg_config WHERE name = 'SHAREDIR'), v.name),
                     true)).size > 0 AS installed
  FROM (SELECT format('eventkit--%s.sql', default_version) AS name
          FROM pg_available_extensions WHERE name = 'eventkit') v;
CREATE EXTENSION eventkit;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.ek_catalog();

-- every kind of fact is compared (there is something of each)
SELECT k AS kind, count(f.kind) > 0 AS compared
  FROM unnest(ARRAY['extension', 'member', 'schema', 'relation', 'column', 'index', 'constraint',
                    'event trigger', 'view', 'function', 'sequence', 'type', 'grant', 'comment',
                    'policy', 'config dump', 'row']) k
  LEFT JOIN fresh f ON f.kind = k
 GROUP BY k ORDER BY k;

-- differences between the upgraded and the fresh installation (none expected)
(SELECT 'only after upgrade' AS side, * FROM upgraded
 EXCEPT ALL
 SELECT 'only after upgrade', * FROM fresh)
UNION ALL
(SELECT 'only when fresh', * FROM fresh
 EXCEPT ALL
 SELECT 'only when fresh', * FROM upgraded)
ORDER BY kind, object, side, detail;

-- the comparison sees drift of every kind: change the fresh installation
-- (and roll it back)
BEGIN;
ALTER INDEX eventkit.quarantine_stream RENAME TO quarantine_stream_idx;
ALTER TABLE eventkit.jobs DROP CONSTRAINT jobs_failures_check;
ALTER TABLE eventkit.jobs ALTER COLUMN failures SET DEFAULT 1;
ALTER TABLE eventkit.ledger_generations ALTER COLUMN filter SET STORAGE EXTENDED;
ALTER FUNCTION eventkit.health() STABLE;
CREATE OR REPLACE FUNCTION eventkit.partitions(stream regclass)
RETURNS TABLE(partition regclass, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT NULL::regclass, NULL::timestamptz, NULL::timestamptz $$;
CREATE OR REPLACE VIEW eventkit.rollup_status AS
SELECT r.rollup_id, r.name, r.relid AS rollup, r.stream, r.schedule, r.watermark, r.backfill_target,
       true AS backfilled, r.events_folded, r.last_refresh_at, r.last_refresh_events,
       r.skipped_values, r.last_skipped_at
  FROM eventkit.rollups r;
ALTER SEQUENCE eventkit.batch_id_seq CACHE 10;
ALTER TYPE eventkit.ingest_result ADD ATTRIBUTE extra bigint;
ALTER TABLE eventkit.job_runs SET (fillfactor = 50);
ALTER EXTENSION eventkit DROP FUNCTION eventkit.scheduler_status();
GRANT SELECT ON eventkit.ingest_batches TO PUBLIC;
GRANT SELECT (name) ON eventkit.plans TO pg_monitor;
REVOKE EXECUTE ON FUNCTION eventkit.ingest(regclass, text, timestamptz) FROM PUBLIC;
REVOKE USAGE ON SCHEMA eventkit FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA eventkit GRANT SELECT ON TABLES TO pg_monitor;
COMMENT ON COLUMN eventkit.jobs.enabled IS NULL;
ALTER TABLE eventkit.quarantine DISABLE ROW LEVEL SECURITY;
ALTER POLICY stream_owner ON eventkit.quarantine USING (true);
ALTER EVENT TRIGGER eventkit_forget_dropped_streams DISABLE;
CREATE TRIGGER jobs_touch BEFORE UPDATE ON eventkit.jobs
	FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
UPDATE eventkit.job_kinds SET description = 'drift' WHERE kind = 'redrive';
SELECT DISTINCT kind, object FROM (
  (SELECT * FROM upgraded EXCEPT ALL SELECT * FROM pg_temp.ek_catalog())
  UNION ALL
  (SELECT * FROM pg_temp.ek_catalog() EXCEPT ALL SELECT * FROM upgraded)) d
ORDER BY 1, 2;
ROLLBACK;

DROP EXTENSION eventkit;
