-- Event time: Segment's clock-skew correction, timestamp, receivedAt.
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
SELECT date_trunc('hour', now()) AS rcv \gset

-- ts = receivedAt - (sentAt - originalTimestamp): a client clock 1 hour fast
SELECT * FROM eventkit.ingest('ev', jsonb_build_object(
  'type', 'track', 'messageId', 's1', 'userId', 'u', 'event', 'E',
  'originalTimestamp', to_char((:'rcv'::timestamptz + interval '50 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'sentAt', to_char((:'rcv'::timestamptz + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
  :'rcv');
-- sentAt from the batch envelope; offsets in +hh:mm form
SELECT * FROM eventkit.ingest('ev', jsonb_build_object('batch', jsonb_build_array(jsonb_build_object(
  'type', 'track', 'messageId', 's2', 'userId', 'u', 'event', 'E',
  'originalTimestamp', to_char((:'rcv'::timestamptz - interval '30 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))),
  'sentAt', to_char((:'rcv'::timestamptz - interval '20 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
  :'rcv');
-- timestamp alone is taken as is (offset +02:00 means two hours earlier in UTC)
SELECT * FROM eventkit.ingest('ev', jsonb_build_object(
  'type', 'track', 'messageId', 's3', 'userId', 'u', 'event', 'E',
  'timestamp', to_char((:'rcv'::timestamptz - interval '3 hours') AT TIME ZONE 'UTC' + interval '2 hours', 'YYYY-MM-DD"T"HH24:MI:SS.US"+02:00"')),
  :'rcv');
-- neither: receivedAt
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "s4", "userId": "u", "event": "E"}', :'rcv');
-- originalTimestamp without sentAt falls back to timestamp, then receivedAt
SELECT * FROM eventkit.ingest('ev', jsonb_build_object(
  'type', 'track', 'messageId', 's5', 'userId', 'u', 'event', 'E',
  'originalTimestamp', '2001-01-01T00:00:00Z'), :'rcv');

SELECT message_id, ts - :'rcv'::timestamptz AS ts_minus_received, received_at = :'rcv' AS rcv_ok,
       original_timestamp IS NOT NULL AS has_orig, sent_at IS NOT NULL AS has_sent
  FROM ev ORDER BY message_id;

-- accepted ISO 8601 forms, checked through the stored sent_at
CREATE TEMP TABLE forms AS
SELECT row_number() OVER () AS n, f FROM unnest(ARRAY[
  '2024-02-29T23:59:59Z', '2024-02-29t23:59:59.5z', '2024-02-29 23:59:59.123456+00:00',
  '2024-03-01T01:30:00+0130', '2024-03-01T00:00:00-05', '2024-03-01T12:00Z',
  '2024-03-01', '2016-12-31T23:59:60Z']) f;
SELECT sum(i.accepted) AS accepted
  FROM forms, LATERAL eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'f' || n,
                 'userId', 'u', 'event', 'E', 'sentAt', f), :'rcv') i;
SELECT f AS sent_at_text, sent_at AT TIME ZONE 'UTC' AS parsed_utc
  FROM forms JOIN ev ON message_id = 'f' || n ORDER BY n;

-- timestamps that are not ISO 8601 are quarantined with the field named
SELECT f, (SELECT reasons->0->>'message' FROM eventkit.ingest_verbose('ev', jsonb_build_object('type', 'track',
           'userId', 'u', 'event', 'E', 'timestamp', f), :'rcv')) AS problem
  FROM unnest(ARRAY['2024-02-30T00:00:00Z', '2023-02-29', '2024-13-01', '2024-01-01T24:00:00Z',
                    'yesterday', '1700000000', '2024-01-01T00:00:00+25:00', '2024-01-01T00:00:00.Z',
                    '2024-01-01T00:00:00Z trailing', '']) f;
SELECT * FROM eventkit.ingest_verbose('ev', '{"type": "track", "userId": "u", "event": "E", "timestamp": 1700000000}', :'rcv');
SELECT * FROM eventkit.ingest_verbose('ev', '{"type": "track", "userId": "u", "event": "E", "sentAt": "0001-01-01T00:00:00Z", "originalTimestamp": "9999-01-01T00:00:00Z"}', :'rcv');

SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
