\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.15'" to load this file. \quit

/*
 * eventkit 1.14 -> 1.15.
 *
 * RULE while 1.15 is not released: every object added or changed in 1.15
 * goes into BOTH this file (as the change from 1.14) and eventkit--1.15.sql
 * (the full script a fresh CREATE EXTENSION runs, in its final form, in its
 * area).  sql/upgrade.sql upgrades a 1.0 installation through every version
 * and compares it with a fresh install of eventkit--1.15.sql: any difference
 * fails it.  Each section gives its own objects their COMMENT ON.  New
 * capabilities append their own section at the end.
 */
