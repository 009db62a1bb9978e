\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 */
