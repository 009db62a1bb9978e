\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.7'" to load this file. \quit

/*
 * eventkit 1.6 -> 1.7.
 *
 * RULE while 1.7 is not released: every object added or changed in 1.7 goes
 * into BOTH this file (as the change from 1.6) and eventkit--1.7.sql (the
 * full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.7.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */

-- ==== Identity graph: re-timing in place (issue 18) ====
-- The identity stage re-times a stored id (last_seen, first_seen: columns no
-- index holds) when a link moves them by more than a day: with room left on
-- the table's pages those updates are HOT, adding no index entries, so the
-- primary-key probe every batch makes for its ids stays short.
ALTER TABLE eventkit.identity_links SET (fillfactor = 70);
