-- route_events and route_user (docs/citus.md, "Routing clients") on a
-- server without Citus: the caller's rights are checked first (USAGE on the
-- schema, SELECT on the stream), then a stream that is not distributed is
-- refused, as is any other relation; a NULL payload routes nothing.  The
-- routes themselves are in TAP 062_citus_routed.pl (a Citus cluster).
CREATE EXTENSION eventkit;
CREATE ROLE rt_reader;
CREATE ROLE rt_nobody;
CREATE SCHEMA rt;
GRANT USAGE ON SCHEMA rt TO rt_reader;
SELECT eventkit.create_stream('rt.ev');
CREATE TABLE rt.plain (user_key text);
GRANT SELECT ON rt.ev TO rt_reader, rt_nobody;

SELECT * FROM eventkit.route_events('rt.ev', '{"type": "track", "userId": "u1"}');
SELECT * FROM eventkit.route_user('rt.ev', 'u1');
SELECT * FROM eventkit.route_user('rt.plain', 'u1');
SELECT * FROM eventkit.route_user(NULL, 'u1');
SELECT count(*) FROM eventkit.route_events('rt.ev', NULL);

-- a role with SELECT reaches the same refusal; without USAGE on the schema
-- (by OID) or without SELECT, permission denied
SET ROLE rt_reader;
SELECT * FROM eventkit.route_user('rt.ev', 'u1');
RESET ROLE;
SELECT 'rt.ev'::regclass::oid AS ev_oid \gset
SET ROLE rt_nobody;
SELECT * FROM eventkit.route_user(:ev_oid, 'u1');
RESET ROLE;
GRANT USAGE ON SCHEMA rt TO rt_nobody;
REVOKE SELECT ON rt.ev FROM rt_nobody;
SET ROLE rt_nobody;
SELECT * FROM eventkit.route_events(:ev_oid, '[]');
RESET ROLE;

SELECT eventkit.drop_stream('rt.ev');
DROP TABLE rt.plain;
DROP SCHEMA rt;
DROP ROLE rt_reader;
DROP ROLE rt_nobody;
DROP EXTENSION eventkit;
