-- eventkit ingest benchmark: deterministic data generator (run by run.sh).
--
-- psql variables: events (events sent, incl. re-sent duplicates), batch (events
-- per batch), rts (the run's reference receive time, whole seconds, UTC),
-- flatfile (server-side path for the flattened COPY file), small (optional, 0:
-- 1 makes small events of about 300 bytes: three properties and the library
-- in the context, instead of about 1 KB with products, page and user agent),
-- users (optional, 50000: the user ids; anonymous visitors have 4 x users
-- ids; fewer users with fewer events keep a run's pattern per user).
--
-- Everything is derived from the event index with hashint8extended()/md5();
-- nothing uses random(), so two runs with the same rts produce the same bytes.
--
-- Layout: slot p = 0..events-1 is sent in batch p / batch.  About 5% of the slots
-- from the second batch on are re-sends: the slot carries an exact copy (same
-- messageId, same bytes) of an event first sent in one of the previous three
-- batches.  Every other slot carries a new event; new events are numbered
-- eid = 0, 1, 2, ... in sending order.
--
-- Time: batch b is received at bench_rcv(b), spread evenly over the 3 days
-- ending at rts.  An event first sent in batch b happened 0-300 s before that
-- batch was sent (sentAt = received - 150 ms).  Web events (analytics.js, 70%)
-- carry originalTimestamp + sentAt, so the corrected time is
-- received_at - (sentAt - originalTimestamp); server events (analytics-node, 30%)
-- carry timestamp.

\set ON_ERROR_STOP 1
\if :{?small}
\else
\set small 0
\endif
\if :{?users}
\else
\set users 50000
\endif
SET client_min_messages = warning;
SET timezone = 'UTC';

CREATE TABLE bench_meta (k text PRIMARY KEY, v text NOT NULL);
INSERT INTO bench_meta VALUES ('events', :'events'), ('batch', :'batch'), ('rts', :'rts'),
	('span_ms', '259200000'), ('small', :'small'), ('users', :'users');

CREATE FUNCTION bench_meta_int(key text) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT v::bigint FROM bench_meta WHERE k = key $$;

CREATE FUNCTION bench_fmt(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Receive time of batch b out of nb batches spread over span_ms ending at rts
-- (millisecond aligned, so the JSON timestamps round-trip exactly).
CREATE FUNCTION bench_rcv(b bigint, nb bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT (SELECT v::timestamptz FROM bench_meta WHERE k = 'rts')
		 - ((nb - 1 - b) * bench_meta_int('span_ms') / nb) * interval '1 ms'
$$;

CREATE FUNCTION bench_uuid(m text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT substr(m, 1, 8) || '-' || substr(m, 9, 4) || '-4' || substr(m, 14, 3) || '-a'
		|| substr(m, 18, 3) || '-' || substr(m, 21, 12)
$$;

-- Segment track events as compact JSON text (what a library POSTs), a pure
-- function of (eid, receive time of the batch that first carries the event),
-- with the flattened columns alongside.  One set-based query: a per-event
-- plpgsql/jsonb builder is several times slower.
CREATE FUNCTION bench_events(eids bigint[], rcvs timestamptz[])
RETURNS TABLE (eid bigint, ev text, message_id text, event text, user_id text,
			   anonymous_id text, ts timestamptz, props text, ctx text)
LANGUAGE sql STABLE AS $$
SELECT u.eid,
	   '{"type":"track","event":"' || d.evname || '"'
		 || CASE WHEN d.known THEN ',"userId":"' || d.user_id || '"' ELSE '' END
		 || CASE WHEN d.web OR NOT d.known THEN ',"anonymousId":"' || d.anon || '"' ELSE '' END
		 || ',"properties":' || sz.props || ',"context":' || sz.ctx
		 || ',"messageId":"' || d.message_id || '"'
		 || CASE WHEN d.web
				 THEN ',"integrations":{},"originalTimestamp":"' || bench_fmt(d.t_evt)
					  || '","sentAt":"' || bench_fmt(u.rcv - interval '150 ms') || '"}'
				 ELSE ',"timestamp":"' || bench_fmt(d.t_evt) || '"}' END,
	   d.message_id, d.evname,
	   CASE WHEN d.known THEN d.user_id END,
	   CASE WHEN d.web OR NOT d.known THEN d.anon END,
	   -- Segment's corrected time: received - (sentAt - originalTimestamp) for web
	   -- events, timestamp for server events.
	   CASE WHEN d.web THEN u.rcv - d.lag_ms * interval '1 ms' ELSE d.t_evt END,
	   sz.props, sz.ctx
  FROM unnest(eids, rcvs) AS u(eid, rcv)
 CROSS JOIN (SELECT bench_meta_int('users') AS n) us
 CROSS JOIN LATERAL (
	SELECT hashint8extended(u.eid, 11) & 9223372036854775807 AS h1,
		   hashint8extended(u.eid, 22) & 9223372036854775807 AS h2,
		   hashint8extended(u.eid, 33) & 9223372036854775807 AS h3) h
 CROSS JOIN LATERAL (
	SELECT h.h1 % 10 < 7 AS web,                      -- analytics.js vs analytics-node
		   (h.h1 / 10) % 10 < 7 AS known,             -- 70% identified (userId)
		   'u' || (h.h2 % us.n) AS user_id,
		   bench_uuid(md5('anon:' || CASE WHEN (h.h1 / 10) % 10 < 7 THEN h.h2 % us.n
										  ELSE 2 * us.n + (h.h2 / 7) % (4 * us.n) END)) AS anon,
		   CASE WHEN h.h1 % 10 < 7 THEN 'ajs-next-' || md5('msg:' || u.eid)
				ELSE bench_uuid(md5('msg:' || u.eid)) END AS message_id,
		   (ARRAY['Order Completed', 'Product Viewed', 'Product Added', 'Checkout Started',
				  'Cart Viewed', 'Products Searched', 'Product Clicked', 'Coupon Applied'])[1 + (h.h1 / 100) % 8] AS evname,
		   (ARRAY['shoes', 'shirts', 'hats', 'bags', 'socks', 'jackets'])[1 + (h.h3 / 7) % 6] AS cat,
		   h.h3 % 300000 AS lag_ms,
		   u.rcv - interval '150 ms' - (h.h3 % 300000) * interval '1 ms' AS t_evt,
		   1 + (h.h2 / 1000003) % 3 AS nprod,
		   (h.h1 / 1000) % 100 AS viol,              -- 0, 1: plan violations (~2%)
		   '/' || (ARRAY['shoes', 'shirts', 'hats', 'bags', 'socks', 'jackets'])[1 + (h.h3 / 7) % 6]
			   || '/' || ((h.h3 / 23) % 500) AS path) d
 CROSS JOIN LATERAL (
	SELECT string_agg('{"product_id":"p' || ((h.h3 / 13 + i * 7919) % 5000)
					  || '","sku":"SKU-' || lpad(((h.h3 / 17 + i * 104729) % 100000)::text, 5, '0')
					  || '","name":"' || initcap(d.cat) || ' model ' || ((h.h3 / 19 + i) % 97)
					  || '","category":"' || d.cat || '","price":' || x.price
					  || ',"quantity":' || x.qty || ',"position":' || i || '}', ',' ORDER BY i) AS products,
		   sum(x.price * x.qty) AS revenue
	  FROM generate_series(1, d.nprod::int) i
	 CROSS JOIN LATERAL (
		SELECT round(((hashint8extended(u.eid, 100 + i) & 65535) % 20000) / 100.0 + 4.99, 2) AS price,
			   1 + (hashint8extended(u.eid, 200 + i) & 65535) % 3 AS qty) x) p
 CROSS JOIN LATERAL (
	SELECT '{"order_id":"o' || u.eid || '","checkout_id":"c' || (u.eid / 3)
		   || '","revenue":' || CASE WHEN d.viol = 0 THEN '"' || p.revenue || '"' ELSE p.revenue::text END
		   || ',"shipping":4.99,"tax":' || round(p.revenue * 0.08, 2)
		   || ',"discount":' || CASE WHEN h.h1 % 7 = 0 THEN 5 ELSE 0 END
		   || ',"coupon":' || CASE WHEN h.h1 % 9 = 0 THEN '"SAVE10"' ELSE 'null' END
		   || ',"currency":"' || CASE WHEN d.viol = 1 THEN 'CHF' ELSE (ARRAY['USD', 'EUR', 'GBP', 'JPY'])[1 + h.h2 % 4] END
		   || '","affiliation":"' || CASE WHEN d.web THEN 'web' ELSE 'backend' END || '"'
		   || CASE WHEN d.known THEN ',"email":"user' || (h.h2 % us.n) || '@example.com"' ELSE '' END
		   || ',"products":[' || p.products || ']}' AS props) pr
 CROSS JOIN LATERAL (
	SELECT CASE WHEN d.web THEN
		   '{"library":{"name":"analytics.js","version":"next-1.55.0"},"ip":"203.0.'
		   || ((h.h2 / 11) % 256) || '.' || ((h.h2 / 13) % 256)
		   || '","locale":"' || (ARRAY['en-US', 'en-GB', 'de-DE', 'fr-FR'])[1 + (h.h2 / 17) % 4]
		   || '","page":{"path":"' || d.path || '","referrer":"'
		   || CASE WHEN h.h1 % 3 = 0 THEN 'https://www.google.com/' ELSE '' END
		   || '","search":"","title":"' || initcap(d.cat) || ' | Example Shop","url":"https://shop.example.com'
		   || d.path || '"},"userAgent":"' || (ARRAY[
				'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36',
				'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
				'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'
			])[1 + (h.h2 / 19) % 3] || '"}'
		   ELSE
		   '{"library":{"name":"analytics-node","version":"1.3.0"},"ip":"10.1.'
		   || ((h.h2 / 11) % 256) || '.' || ((h.h2 / 13) % 256)
		   || '","page":{"path":"' || d.path || '","url":"https://shop.example.com' || d.path
		   || '"},"userAgent":"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36"}'
		   END AS ctx) c
 CROSS JOIN LATERAL (
	-- small events (bench_meta 'small' = 1): the order's id, revenue and
	-- currency, and the library alone in the context
	SELECT CASE WHEN sm.small THEN '{"order_id":"o' || u.eid || '","revenue":' || p.revenue
									|| ',"currency":"' || (ARRAY['USD', 'EUR', 'GBP', 'JPY'])[1 + h.h2 % 4] || '"}'
				ELSE pr.props END AS props,
		   CASE WHEN NOT sm.small THEN c.ctx
				WHEN d.web THEN '{"library":{"name":"analytics.js","version":"next-1.55.0"}}'
				ELSE '{"library":{"name":"analytics-node","version":"1.3.0"}}' END AS ctx
	  FROM (SELECT v = '1' AS small FROM bench_meta WHERE k = 'small') sm) sz
$$;

-- Corrected event time by Segment's rule, from the JSON (sanity check below).
CREATE FUNCTION bench_ts(ev jsonb, rcv timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT coalesce(rcv - ((ev->>'sentAt')::timestamptz - (ev->>'originalTimestamp')::timestamptz),
					(ev->>'timestamp')::timestamptz, rcv)
$$;

-- A prefill batch for the 10M measurement: brand-new events (eid >= 1e9, never
-- re-sent), batch k of nk spread over the same 3 days.
CREATE FUNCTION bench_prefill_rcv(k bigint, nk bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT bench_rcv(k, nk) $$;

CREATE FUNCTION bench_prefill_payload(k bigint, nk bigint, bsize int) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT '{"batch":[' || (SELECT string_agg(e.ev, ',' ORDER BY e.eid)
							  FROM bench_events(ARRAY(SELECT 1000000000 + k * bsize + g
														FROM generate_series(0, bsize - 1) g),
												array_fill(r.rcv, ARRAY[bsize])) e)
		   || '],"sentAt":"' || bench_fmt(r.rcv - interval '150 ms') || '"}'
	  FROM (SELECT bench_rcv(k, nk) AS rcv) r
$$;

-- Slots: which batch, re-send or new, which event.
CREATE UNLOGGED TABLE bench_slots AS
WITH s AS (
	SELECT p, p / :batch AS b,
		   (p >= :batch AND (hashint8extended(p, 7) & 1023) < 51) AS dup
	  FROM generate_series(0::bigint, :events - 1) p
), r AS (
	SELECT p, b, dup,
		   sum((NOT dup)::int) OVER (ORDER BY p) AS upto,
		   sum((NOT dup)::int) OVER (PARTITION BY b ORDER BY p) AS upto_in_batch,
		   sum(dup::int) OVER (PARTITION BY b ORDER BY p) - 1 AS dup_rank
	  FROM s
)
-- A re-send copies one of the last 3 batches' new events: the r-th re-send of a
-- batch takes offset (start(b) + r * 1000003) mod range, and 1000003 is a prime
-- larger than range, so no event is re-sent twice in one batch.
SELECT p, b, dup,
	   CASE WHEN NOT dup THEN upto - 1
			ELSE (upto - upto_in_batch) - 1
				 - ((hashint8extended(b, 8) & 2147483647) + dup_rank * 1000003)
				   % least(upto - upto_in_batch, 3 * :batch)
	   END AS eid
  FROM r;

CREATE UNLOGGED TABLE bench_rcvs AS
SELECT b, bench_rcv(b, (:events + :batch - 1) / :batch) AS rcv
  FROM generate_series(0::bigint, (:events + :batch - 1) / :batch - 1) b;

-- Every distinct event once, built at the receive time of the batch that first
-- carries it (a re-send repeats those bytes exactly).
CREATE UNLOGGED TABLE bench_ev AS
SELECT e.*
  FROM bench_events((SELECT array_agg(s.eid ORDER BY s.eid) FROM bench_slots s WHERE NOT s.dup),
					(SELECT array_agg(r.rcv ORDER BY s.eid) FROM bench_slots s JOIN bench_rcvs r USING (b)
					  WHERE NOT s.dup)) e;
CREATE INDEX ON bench_ev (eid);

-- The batches, as the HTTP body a Segment library POSTs.
CREATE TABLE bench_batches (id int PRIMARY KEY, received_at timestamptz NOT NULL, payload text NOT NULL);
ALTER TABLE bench_batches ALTER payload SET STORAGE EXTERNAL;
INSERT INTO bench_batches
SELECT g.b + 1, r.rcv, '{"batch":[' || g.evs || '],"sentAt":"' || bench_fmt(r.rcv - interval '150 ms') || '"}'
  FROM (SELECT s.b, string_agg(e.ev, ',' ORDER BY s.p) AS evs
		  FROM bench_slots s JOIN bench_ev e USING (eid) GROUP BY s.b) g
  JOIN bench_rcvs r ON r.b = g.b;

-- Each batch also as a file, the bytes of the HTTP body: the timed paths read it with
-- pg_read_file (one read from the page cache, as COPY reads flat.tsv) instead of
-- fetching ~500 TOAST chunks of bench_batches.payload in the measured backend, which
-- no collector pays.  CSV with impossible quote/delimiter characters writes the text
-- verbatim, plus a newline that bench_files.bytes leaves out.
CREATE TABLE bench_files (id int PRIMARY KEY, received_at timestamptz NOT NULL,
						  file text NOT NULL, bytes int NOT NULL);
INSERT INTO bench_files
SELECT id, received_at, :'batchdir' || '/' || id || '.json', octet_length(payload)
  FROM bench_batches;
DO $$
DECLARE
	f record;
BEGIN
	FOR f IN SELECT id, file FROM bench_files ORDER BY id LOOP
		EXECUTE format('COPY (SELECT payload FROM bench_batches WHERE id = %s) TO %L'
					   ' WITH (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')', f.id, f.file);
	END LOOP;
END
$$;
SELECT bool_and(pg_read_file(f.file, 0, f.bytes) = b.payload) AS files_ok
  FROM bench_files f JOIN bench_batches b USING (id)
 WHERE f.id IN (1, 2, (SELECT max(id) FROM bench_files)) \gset
\if :files_ok
\else
	\warn 'batch files differ from bench_batches.payload'
	\quit 3
\endif

-- The same events flattened (a re-send is a row again), for the COPY ceiling.
COPY (SELECT e.message_id, 'track', e.event, e.user_id, e.anonymous_id, e.ts, r.rcv,
			 e.props, NULL, e.ctx
		FROM bench_slots s JOIN bench_ev e USING (eid) JOIN bench_rcvs r USING (b)
	   ORDER BY s.p) TO :'flatfile';

-- Sanity: the JSON parses, and its corrected time is the flattened ts.
DO $$
DECLARE bad bigint;
BEGIN
	SELECT count(*) INTO bad
	  FROM bench_batches bb
	 CROSS JOIN LATERAL jsonb_array_elements(bb.payload::jsonb -> 'batch') WITH ORDINALITY AS j(ev, n)
	  JOIN bench_slots s ON s.p = (bb.id - 1) * bench_meta_int('batch') + j.n - 1
	  JOIN bench_ev e ON e.eid = s.eid
	  JOIN bench_slots o ON o.eid = s.eid AND NOT o.dup
	  JOIN bench_rcvs r ON r.b = o.b
	 WHERE bb.id IN (1, 2, 3, (SELECT max(id) FROM bench_batches))
	   AND (bench_ts(j.ev, r.rcv) IS DISTINCT FROM e.ts OR j.ev->>'messageId' IS DISTINCT FROM e.message_id
			OR j.ev->'properties' IS DISTINCT FROM e.props::jsonb);
	IF bad > 0 THEN
		RAISE EXCEPTION 'generator sanity check failed for % events', bad;
	END IF;
END
$$;

INSERT INTO bench_meta
SELECT 'distinct', count(*)::text FROM bench_ev
UNION ALL SELECT 'batches', count(*)::text FROM bench_batches
UNION ALL SELECT 'payload_bytes_max', max(octet_length(payload))::text FROM bench_batches
UNION ALL SELECT 'payload_bytes_avg', round(avg(octet_length(payload)))::text FROM bench_batches
UNION ALL SELECT 'ts_min', min(ts)::text FROM bench_ev
UNION ALL SELECT 'ts_max', max(ts)::text FROM bench_ev;

DROP TABLE bench_ev, bench_slots, bench_rcvs;

CREATE TABLE bench_results (accepted bigint, duplicates bigint, conflicts bigint,
							quarantined bigint, rejected bigint);
CREATE SEQUENCE bench_seq;

-- A fresh plain daily-partitioned table with the flattened columns, partitions
-- pre-created over [day(rts) - 4, day(rts) + 5).
CREATE FUNCTION bench_make_flat(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d0 date := (SELECT v::timestamptz AT TIME ZONE 'UTC' FROM bench_meta WHERE k = 'rts')::date - 4;
	d date;
BEGIN
	EXECUTE format('DROP TABLE IF EXISTS %I', tbl);
	EXECUTE format('CREATE TABLE %I (message_id text, type text, event text, user_id text, '
				   'anonymous_id text, ts timestamptz NOT NULL, received_at timestamptz, '
				   'properties jsonb, traits jsonb, context jsonb) PARTITION BY RANGE (ts)', tbl);
	FOR i IN 0..8 LOOP
		d := d0 + i;
		EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
					   tbl || '_' || to_char(d, 'YYYYMMDD'), tbl,
					   (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
	END LOOP;
END
$$;

VACUUM (ANALYZE) bench_batches;
VACUUM (ANALYZE) bench_files;
