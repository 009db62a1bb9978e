\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.5'" to load this file. \quit

/*
 * eventkit 1.4 -> 1.5.
 *
 * RULE while 1.5 is not released: every object added or changed in 1.5 goes
 * into BOTH this file (as the change from 1.4) and eventkit--1.5.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.5.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Typed event views: the attack pass (issue 18) ====
-- 1.4 as first released had the earlier create_event_views: no
-- screens view, names over 63 bytes not clipped, eventkit's own schemas
-- accepted as the target, the plan read once per view.  The same body as
-- eventkit--1.5.sql; an installation that already has it gets it again.
-- (That first 1.4 also kept eventkit.identity_links' ids in the database's
-- collation; they stay so: the views that read them would have to be
-- dropped, and lookups use the index's own collation, so links are right
-- either way, only slower to write; docs/identity.md.)
-- create_event_views: one view per planned track event, and tracks, pages,
-- identifies and users.  Re-running it after a new plan version replaces
-- the views in place: new properties become new columns at the end; a
-- property the plan no longer has keeps its column (and its type), so
-- nothing built on the views breaks; a property whose type changed makes
-- its view dropped and re-created, or, when other objects depend on the
-- view, an error that names them.
CREATE OR REPLACE FUNCTION eventkit.create_event_views(stream regclass, target_schema name DEFAULT NULL)
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

-- Every single-node ledger made before 1.5 (message_id text, user_key
-- text, batch_id) is converted in place: one rewrite of each generation,
-- its unique index rebuilt on the key.  batch_id is dropped (a dropped
-- column costs a null bit, inside the tuple header).  The sealed
-- generations' filters stay valid: a key's first lane is the id_hash64
-- they were built from.  The tables stay the extension owner's and stay
-- outside the extension, as create_stream made them.
DO $convert$
DECLARE
	l regclass;
BEGIN
	FOR l IN SELECT c.oid::regclass
			   FROM pg_catalog.pg_class c
			  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'eventkit_internal'::pg_catalog.regnamespace
				AND c.relkind OPERATOR(pg_catalog.=) 'p'
				AND c.relname OPERATOR(pg_catalog.~) '^ledger_[0-9]+$'
				AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
							 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid
							   AND a.attname OPERATOR(pg_catalog.=) 'message_id'
							   AND NOT a.attisdropped)
			  ORDER BY c.oid
	LOOP
		EXECUTE pg_catalog.format(
			'ALTER TABLE %s'
			' ALTER COLUMN message_id TYPE pg_catalog.uuid USING eventkit_internal.ledger_key(message_id),'
			' ALTER COLUMN user_key TYPE pg_catalog.int8 USING eventkit_internal.id_hash64(user_key),'
			' DROP COLUMN batch_id', l);
		EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN message_id TO message_key', l);
		EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN user_key TO user_key_hash', l);
	END LOOP;
END
$convert$;

-- ==== Rollup costs: the realtime view's hlls (issue 19) ====
-- What the realtime views made since 1.5 call on their tail instead of
-- hll_add_agg (src/rollup/hll.c): the same hll, without a 128 kB state per group.
CREATE FUNCTION eventkit.rollup_hll(hashes "any", empty anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'eventkit_rollup_hll'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventkit.rollup_hll("any", anyelement) IS
'the hll of the hashes (an array of hll_hashval or bigint; NULLs left out) with the parameters of empty (hll_empty(...)), equal to hll_add_agg over them; empty when there are none';
