-- Write keys of the HTTP intake: created for one stream by a role with
-- INSERT on it, stored as SHA-256 only, shown by prefix, revoked by their
-- role, the stream's owner or a superuser.  (The listener is in TAP 030/031.)
CREATE EXTENSION eventkit;
CREATE ROLE wk_owner;
CREATE ROLE wk_writer;
CREATE ROLE wk_other;
CREATE SCHEMA wk AUTHORIZATION wk_owner;
GRANT USAGE ON SCHEMA wk TO wk_writer, wk_other;
SET ROLE wk_owner;
SELECT eventkit.create_stream('wk.ev');
SELECT eventkit.create_stream('wk.ev2');
CREATE TABLE wk.plain (x int);
GRANT INSERT ON wk.ev TO wk_writer;
RESET ROLE;

-- a writer makes a key: "ek_" and 32 base32 characters
SET ROLE wk_writer;
SELECT eventkit.create_write_key('wk.ev', 'web shop') AS key1 \gset
SELECT eventkit.create_write_key('wk.ev') AS key2 \gset
SELECT :'key1' ~ '^ek_[a-z2-7]{32}$' AS key1_format, :'key2' ~ '^ek_[a-z2-7]{32}$' AS key2_format,
       :'key1' <> :'key2' AS distinct_keys;
-- the view shows the prefix, never the key; the table is not readable
SELECT key_prefix = left(:'key1', 11) AS prefix, stream, role, description,
       created_at IS NOT NULL AS created, last_used_at, revoked_at
  FROM eventkit.write_keys WHERE key_prefix = left(:'key1', 11);
SELECT count(*) AS rows_showing_a_secret FROM eventkit.write_keys k
 WHERE strpos(row_to_json(k)::text, substr(:'key1', 12)) > 0
    OR strpos(row_to_json(k)::text, substr(:'key2', 12)) > 0;
SELECT * FROM eventkit.intake_keys;
-- no key without INSERT on the stream, nor for a table that is not a stream
SELECT eventkit.create_write_key('wk.ev2');
SELECT eventkit.create_write_key('wk.plain');
SELECT eventkit.create_write_key(NULL);
RESET ROLE;

-- stored: the SHA-256 of the key (pinned: compare with PostgreSQL's sha256())
SELECT count(*) AS hashed_keys FROM eventkit.intake_keys
 WHERE key_hash IN (sha256(convert_to(:'key1', 'UTF8')), sha256(convert_to(:'key2', 'UTF8')));
SELECT count(*) AS plain_keys FROM eventkit.intake_keys
 WHERE strpos(encode(key_hash, 'escape'), :'key1') > 0 OR key_prefix = :'key1';

-- another role sees none of them; the stream's owner sees them
SET ROLE wk_other;
SELECT count(*) AS other_sees FROM eventkit.write_keys;
RESET ROLE;
SET ROLE wk_owner;
SELECT count(*) AS owner_sees FROM eventkit.write_keys;
RESET ROLE;

-- a superuser's key works, with a warning
SELECT length(eventkit.create_write_key('wk.ev', 'superuser key')) AS superuser_key_length;

-- revoking: not by another role; by the key's role; by prefix; twice is a
-- notice (the messages name the key's random prefix: SQLSTATEs only)
SET ROLE wk_other;
\set VERBOSITY sqlstate
SELECT eventkit.revoke_write_key(:'key1');
\set VERBOSITY default
RESET ROLE;
SET ROLE wk_writer;
SELECT eventkit.revoke_write_key(:'key1');
\set VERBOSITY sqlstate
SELECT eventkit.revoke_write_key(left(:'key1', 11));
\set VERBOSITY default
SELECT key_prefix = left(:'key1', 11) AS key1, revoked_at IS NOT NULL AS revoked
  FROM eventkit.write_keys WHERE role = 'wk_writer' ORDER BY 1;
RESET ROLE;
-- the stream's owner may revoke the writer's other key, by its prefix
SET ROLE wk_owner;
SELECT eventkit.revoke_write_key(left(:'key2', 11));
RESET ROLE;
-- unknown keys and things that are not keys; errors name a key by its prefix only
SELECT eventkit.revoke_write_key('ek_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT eventkit.revoke_write_key('ek_aaaaaaaa');
SELECT eventkit.revoke_write_key('not a key at all, longer than a prefix');

-- a dropped stream leaves its keys without a stream (the listener answers 403)
SELECT eventkit.drop_stream('wk.ev');
SELECT role, stream, revoked_at IS NOT NULL AS revoked FROM eventkit.write_keys ORDER BY role, revoked;
SELECT eventkit.create_write_key('wk.ev');

SELECT eventkit.drop_stream('wk.ev2');
DROP TABLE wk.plain;
DROP SCHEMA wk;
DROP EXTENSION eventkit;
DROP ROLE wk_owner, wk_writer, wk_other;
