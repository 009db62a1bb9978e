\echo Use "ALTER EXTENSION eventkit UPDATE TO '1.3'" to load this file. \quit

/*
 * eventkit 1.2 -> 1.3: security and operations.  Jobs run as the object's
 * owner, cancellable validation, bad values that never fail a batch,
 * owner-only limits and clock bounds, quarantine ergonomics and parallel
 * restore.
 */

-- ---------------------------------------------------------------------
-- Owner-only limits and clock bounds (sec-limits)
-- ---------------------------------------------------------------------

-- A stream's clock bounds (an event outside them is quarantined too_old or
-- too_new) and its own size limits (NULL: the eventkit.* settings).  Streams
-- made before 1.3 keep their behaviour: no bounds, the settings' limits.
ALTER TABLE eventkit.streams
	ADD COLUMN max_past interval,
	ADD COLUMN max_future interval,
	ADD COLUMN max_event_bytes integer,
	ADD COLUMN max_batch_bytes integer,
	ADD COLUMN max_batch_items integer,
	ADD CONSTRAINT streams_max_past_check CHECK (max_past > interval '0'),
	ADD CONSTRAINT streams_max_future_check CHECK (max_future > interval '0'),
	ADD CONSTRAINT streams_max_event_bytes_check CHECK (max_event_bytes > 0),
	ADD CONSTRAINT streams_max_batch_bytes_check CHECK (max_batch_bytes > 0),
	ADD CONSTRAINT streams_max_batch_items_check CHECK (max_batch_items > 0);

-- create_stream gains the clock bounds and the limits: one function, not
-- an overload beside the 1.0 one.
DROP FUNCTION eventkit.create_stream(text, interval, integer, interval, integer, interval);
CREATE FUNCTION eventkit.create_stream(stream text,
									   partition_interval interval DEFAULT '1 day',
									   premake integer DEFAULT 4,
									   retention interval DEFAULT NULL,
									   key_partitions integer DEFAULT 0,
									   dedup_window interval DEFAULT '7 days',
									   max_past interval DEFAULT NULL,
									   max_future interval DEFAULT '1 day',
									   max_event_bytes integer DEFAULT NULL,
									   max_batch_bytes integer DEFAULT NULL,
									   max_batch_items integer DEFAULT NULL)
RETURNS regclass
AS 'MODULE_PATHNAME', 'eventkit_create_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.create_stream(text, interval, integer, interval, integer, interval,
										   interval, interval, integer, integer, integer) IS
'Creates a stream: a partitioned table owned by the caller, its partitions, dedup ledger and jobs';

-- NULL leaves an option as it is; clear names the bounds and limits to remove.
CREATE FUNCTION eventkit.alter_stream(stream regclass,
									  partition_interval interval DEFAULT NULL,
									  premake integer DEFAULT NULL,
									  retention interval DEFAULT NULL,
									  key_partitions integer DEFAULT NULL,
									  dedup_window interval DEFAULT NULL,
									  max_past interval DEFAULT NULL,
									  max_future interval DEFAULT NULL,
									  max_event_bytes integer DEFAULT NULL,
									  max_batch_bytes integer DEFAULT NULL,
									  max_batch_items integer DEFAULT NULL,
									  clear text[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventkit_alter_stream'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventkit.alter_stream(regclass, interval, integer, interval, integer, interval,
										  interval, interval, integer, integer, integer, text[]) IS
'Changes a stream''s options (owner only; limits above the settings: superuser only)';
