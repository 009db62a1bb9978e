-- Catalog tables are registered for pg_dump; per-stream objects are ordinary tables.
CREATE EXTENSION eventkit;
SELECT c.config_table, c.condition
  FROM pg_extension e, unnest(e.extconfig::regclass[], e.extcondition) AS c(config_table, condition)
 WHERE e.extname = 'eventkit' ORDER BY c.config_table::text;
SELECT eventkit.create_stream('ev');
-- the stream and the ledger are not members of the extension, so pg_dump dumps them
SELECT c.relname, d.objid IS NOT NULL AS extension_member
  FROM pg_class c
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
 WHERE c.relname IN ('ev', 'ledger_1', 'streams', 'quarantine') ORDER BY 1;
-- DROP EXTENSION needs CASCADE while streams exist (their ledgers are in its schema)
DROP EXTENSION eventkit;
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
-- the ledger schema goes with the extension; the (now empty) eventkit schema stays
SELECT nspname FROM pg_namespace WHERE nspname IN ('eventkit', 'eventkit_internal') ORDER BY 1;
SELECT count(*) AS leftovers FROM pg_class WHERE relnamespace = 'eventkit'::regnamespace;
