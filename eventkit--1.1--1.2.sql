\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.2'" to load this file. \quit

/*
 * eventkit 1.1 -> 1.2.
 */

-- Dedup ledger
--
-- The compact filter of a sealed ledger generation (src/ledger_filter.c): a
-- blocked Bloom filter over a 64-bit hash of every message id it holds, built
-- once after the generation is sealed.  NULL for the current generation and
-- for sealed ones whose filter is not built yet (those are probed for every
-- id).  Stored uncompressed: the bits do not compress.  eventkit.ledger_generations
-- is already dumped by pg_dump (pg_extension_config_dump), the filter with it.
ALTER TABLE eventkit.ledger_generations ADD COLUMN filter bytea;
ALTER TABLE eventkit.ledger_generations ALTER COLUMN filter SET STORAGE EXTERNAL;
