
# Copyright: eventkit authors
#
# Rollups of a distributed stream with ingest on every node: ingest on a
# worker writes its batches' rollup deltas into the rollup's worker delta
# table (a Citus local table on the coordinator) in its distributed
# transaction; a refresh folds and deletes the rows its snapshot sees;
# the realtime view reads them with the rollup table in one snapshot.
#
# 1. Concurrent ingest through the coordinator and each worker (each
#    client re-sends the others' ids) while one coordinator session
#    refreshes both rollups again and again and another reads the realtime
#    view again and again, events of today and yesterday (whose partition
#    no call makes: they wait in quarantine until maintenance has made it,
#    and are re-driven): no call cancelled, every id stored once, the
#    view's total never
#    goes down nor past the events stored (no group counted twice or missed
#    during a refresh's commit), the realtime views and, after a final
#    refresh, the rollup tables equal GROUP BY over the distributed stream
#    (count, sum, max; hll distinct, avg, min; the t-digest percentile the
#    same before and after the refresh).
# 2. A late event on a worker waits for the coordinator's partition, is
#    re-driven on the worker, and is folded from its deltas; forget_user of
#    a user ingested on a worker leaves the rollup equal to GROUP BY.
# 3. create_rollup of a stream that holds events ingested on the workers
#    backfills them (057 races it with ingest); add_rollup_measures computes
#    the new measures from all rows; a stream that does not store ingest's
#    values as given is refused on a worker; drop_rollup drops the worker
#    delta table on every node.
# 4. create_rollup takes the stream's lock on every node: a worker's call
#    meanwhile waits and writes the new rollup's deltas; a worker's call in
#    flight ends before create_rollup's backfill reads the stream.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;

citus_skip_unless_installed();

# the worker delta tables of the setting off (on by default since 1.17: 068):
# a Citus local table on the coordinator, which this test is about
my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n"
	  . "eventkit.worker_deltas_on_shards = off\n");

$coord->safe_psql(
	'postgres', q{
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
SELECT eventkit.create_rollup('hourly', 'events', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
SELECT eventkit.create_rollup('users', 'events', '1 day', ARRAY['event'],
		ARRAY['distinct(user_id) AS users', 'percentile(properties.revenue, 0.5) AS p50',
			  'avg(properties.revenue) AS mean', 'min(properties.revenue) AS low']);
});
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(logicalrelid::text || ':' || partmethod::text, ',' ORDER BY logicalrelid::text)
  FROM pg_dist_partition WHERE logicalrelid::text LIKE '%wdelta'}),
	'hourly_wdelta:n,users_wdelta:n',
	'each rollup of the distributed stream has a worker delta table, a Citus local table');
is($w1->safe_psql('postgres', q{SELECT to_regclass('hourly_wdelta') IS NOT NULL}),
	't', '... known on the workers');

my $users_diff = q{
SELECT count(*) FROM (
  (SELECT bucket, event, users, round(mean, 6), low FROM %s
   EXCEPT SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
				 round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
			FROM events GROUP BY 1, 2)
  UNION ALL
  (SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
		  round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
	 FROM events GROUP BY 1, 2
   EXCEPT SELECT bucket, event, users, round(mean, 6), low FROM %s)) d};

# --- 1. concurrent ingest on every node, refreshes and readers meanwhile -------
# 12 batches of 65 events, users over all shards, ids overlapping the batch
# before (5 each); each client sends all of them in its own order, so each
# re-sends the others' ids.  Their times span the last 30 hours: today's
# partition, which the stream has from its premake, and yesterday's, which
# no call makes (a coordinator call that made it while other nodes' calls
# claimed the same ids deadlocked: Citus's ATTACH locks index shards of the
# partitions that exist); yesterday's events wait in quarantine on every
# node until maintenance has made the partition, and are re-driven
$coord->safe_psql(
	'postgres', q{
CREATE TABLE ov AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ov-' || id, 'userId', 'u' || (id % 37),
			'event', CASE WHEN id % 3 = 0 THEN 'Order Completed' ELSE 'Viewed' END,
			'properties', jsonb_build_object('revenue', id % 89),
			'timestamp', to_char(now() - (id % 30) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
			ORDER BY hashint4(id * 17 + k))::text AS payload
  FROM generate_series(1, 12) k, generate_series(60 * k - 5, 60 * k + 59) id
 GROUP BY k;
CREATE TABLE watch (i int, total bigint);
});

sub start_psql
{
	my ($node, $sql, $out) = @_;
	return IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		  '-d', 'postgres', '-c', $sql ],
		'>', $out, '2>', $out);
}

my ($refresher_out, $reader_out) = ('', '');
my $refresher = start_psql($coord, q{
DO $$
BEGIN
	FOR i IN 1..40 LOOP
		PERFORM eventkit.refresh_rollup('hourly');
		PERFORM eventkit.refresh_rollup('users');
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$}, \$refresher_out);
# the realtime view's total read again and again: it never goes down, and
# never exceeds the events there will be
my $reader = start_psql($coord, q{
DO $$
BEGIN
	FOR n IN 1..60 LOOP
		INSERT INTO watch SELECT n, (SELECT coalesce(sum(count), 0) FROM hourly_realtime);
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$}, \$reader_out);
my ($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	[ $coord, 'SELECT payload FROM ov ORDER BY k' ],
	[ $w1,    'SELECT payload FROM ov ORDER BY k DESC' ],
	[ $w2,    'SELECT payload FROM ov ORDER BY hashint4(k)' ]);
$refresher->finish;
$reader->finish;
is("$calls|$conflicts", '36|0',
	'concurrent clients on the coordinator and both workers, overlapping ids, events of two days: every call answered')
  or diag($other);
unlike($other, qr/deadlock/, '... none cancelled on a deadlock');
note("accepted at once: $accepted of 725; the others wait for yesterday's partition");
# maintenance makes yesterday's partition; each node re-drives what waits there
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
$_->safe_psql('postgres', q{SELECT eventkit.redrive_quarantine('events')}) for ($coord, $w1, $w2);
is( $coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine})
	  + $coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.worker_quarantine('events')}),
	0, '... re-driven once maintenance made the partition: none left in any node\'s quarantine');
is($refresher_out =~ s/\s+$//r, 'DO', 'a session refreshed both rollups 40 times meanwhile, without error');
is($reader_out =~ s/\s+$//r, 'DO', 'a session read the realtime view 60 times meanwhile, without error');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM (SELECT total, lag(total) OVER (ORDER BY i) AS before FROM watch) w
 WHERE total < before OR total > 725}),
	'0', 'the realtime view\'s total never went down nor past the events stored');
is($coord->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events}),
	'725|725', 'each id stored once');

is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', 'the realtime view equals GROUP BY over the distributed stream');
is($coord->safe_psql('postgres', sprintf($users_diff, 'users_realtime', 'users_realtime')),
	'0', 'the second rollup\'s realtime view (distinct, avg, min) equals GROUP BY');

# the workers' batches have their deltas in the worker delta table
$w1->safe_psql('postgres', q{SELECT eventkit.ingest('events', '{"type":"track","messageId":"one-w1","userId":"w1u","event":"Viewed","properties":{"revenue":5}}')});
$w2->safe_psql('postgres', q{SELECT eventkit.ingest('events', '{"type":"track","messageId":"one-w2","userId":"w2u","event":"Viewed","properties":{"revenue":6}}')});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(DISTINCT batch_id >> 48) FROM hourly_wdelta
 WHERE batch_id >> 48 IN (SELECT groupid FROM pg_dist_node WHERE groupid > 0)}),
	'2', 'a batch ingested on each worker left its deltas in the worker delta table (tagged with its node)');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM hourly_delta WHERE batch_id >= 1::bigint << 48}),
	'0', '... none in the coordinator\'s delta table');
# the t-digest's median near the exact one: approximate (one node's rollup
# of these events gives 42.1 for a group of 49 events whose median is 35,
# before and after a refresh), and merged here from the deltas' digests in
# other orders; a digest that missed the workers' values would be far off
my $p50_far = q{
SELECT count(*) FROM %s r
  JOIN (SELECT date_bin('1 day', ts, '2000-01-01') AS bucket, event,
			   percentile_cont(0.5) WITHIN GROUP (ORDER BY (properties->>'revenue')::numeric) AS exact
		  FROM events GROUP BY 1, 2) e USING (bucket, event)
 WHERE abs(r.p50 - e.exact) > 10};
is($coord->safe_psql('postgres', sprintf($p50_far, 'users_realtime')),
	'0', 'the percentile in the realtime view (t-digests of the worker deltas\' values) is near the exact median');

$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly'); SELECT eventkit.refresh_rollup('users')});
is($coord->safe_psql('postgres', q{SELECT (SELECT count(*) FROM hourly_wdelta) + (SELECT count(*) FROM users_wdelta)}),
	'0', 'the refresh folded the worker deltas (none left)');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', 'after the refresh the rollup table equals GROUP BY over the distributed stream');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', '... and so does the realtime view');
is($coord->safe_psql('postgres', sprintf($users_diff, 'users_realtime', 'users_realtime')),
	'0', 'the second rollup after its refresh (its table, no tail left): distinct, avg and min equal GROUP BY');
is($coord->safe_psql('postgres', sprintf($p50_far, 'users_realtime')),
	'0', '... and after the refresh');

# --- 2. a late event on a worker, re-driven, folded from its deltas ----------
my $parts = $coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass});
my $late = $coord->safe_psql('postgres', q{SELECT to_char(now() - interval '20 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( $w2->safe_psql(
		'postgres', qq{
SELECT accepted || ':' || quarantined FROM eventkit.ingest('events', '[
	{"type":"track","messageId":"late-w","userId":"u1","event":"Late","properties":{"revenue":70},"timestamp":"$late"},
	{"type":"track","messageId":"now-w","userId":"u1","event":"Now","properties":{"revenue":3}}]')}),
	'1:1', 'a late event on a worker waits in quarantine, the rest of its batch is stored');
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	$parts + 1, 'the coordinator made its partition');
is($w2->safe_psql('postgres', q{SELECT replayed FROM eventkit.redrive_quarantine('events')}),
	'1', 'the worker re-drives it');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id = 'late-w'}),
	'1', '... stored');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', 'the realtime view counts the late event (from its deltas)');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', '... and so does the rollup table after a refresh');

# --- erasure: forget_user rebuilds the rollup's buckets from all rows --------
# (the workers' batch ids are not in the watermark's order; the lock holds
# ingest off on every node meanwhile)
$w1->safe_psql('postgres', q{SELECT eventkit.ingest('events', '[
	{"type":"track","messageId":"gone-1","userId":"gone","event":"Viewed","properties":{"revenue":80}},
	{"type":"track","messageId":"stay-1","userId":"stay","event":"Viewed","properties":{"revenue":81}}]')});
$w2->safe_psql('postgres', q{SELECT eventkit.ingest('events', '{"type":"track","messageId":"stay-2","userId":"stay2","event":"Viewed","properties":{"revenue":82}}')});
is($coord->safe_psql('postgres', q{SELECT eventkit.forget_user('events', 'gone')}),
	'1', 'forget_user erases a user\'s event ingested on a worker');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', '... and the rollup table, its buckets rebuilt, equals GROUP BY over the stream');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', '... and so does the realtime view');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', '... and the rollup table after another refresh');

# --- 3. rollups made and measures added after ingest on the workers; what is
# refused, and drop_rollup ---------------------------------------------------
is(psql_err($coord, q{SELECT eventkit.create_rollup('late_made', 'events', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top'])}),
	'', 'create_rollup of a stream with events ingested on the workers');
is($coord->safe_psql('postgres', rollup_groupby_diff('late_made', 'events')),
	'0', '... its backfill folded all the stream\'s events: the rollup table equals GROUP BY');
is(psql_err($coord, q{SELECT eventkit.add_rollup_measures('hourly', ARRAY['min(properties.revenue) AS low'])}),
	'', 'add_rollup_measures of a rollup of a distributed stream');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM (SELECT bucket, event, low FROM hourly
  EXCEPT SELECT date_trunc('hour', ts), event, min((properties->>'revenue')::numeric) FROM events GROUP BY 1, 2) d}),
	'0', '... the new measure computed from all the stream\'s events');

# a stream that does not store ingest's values as given gets no deltas: refused on a worker
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('noted', key_partitions => 0);
SELECT eventkit.distribute_stream('noted', 8);
SELECT eventkit.create_rollup('noted_hourly', 'noted', '1 hour', ARRAY['event'], ARRAY['count']);
ALTER TABLE noted ADD COLUMN note text DEFAULT 'x';
});
like(psql_err($w1, q{SELECT eventkit.ingest('noted', '{"type":"track","event":"N","userId":"u","messageId":"n1"}')}),
	qr/stream "noted" has rollups and can be ingested only on the Citus coordinator/,
	'a stream with rollups that does not store the values as given: ingest on a worker is refused');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM noted}), '0', '... and stores nothing');

$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('noted_hourly')});
is($w1->safe_psql('postgres', q{SELECT to_regclass('noted_hourly_wdelta') IS NULL}),
	't', 'drop_rollup drops the worker delta table on the workers too');
is( $w1->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('noted', '{"type":"track","event":"N","userId":"u","messageId":"n1"}')}),
	'1', 'after drop_rollup a worker ingests the stream without deltas');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'noted_hourly%'}),
	'0', 'no Citus metadata is left of it');

# --- 4. create_rollup and ingest on a worker at the same time ------------------
# create_rollup locks the stream on every node until it commits: a worker's
# call that waited for it writes the new rollup's deltas (it reads the
# catalog after the lock); a call in flight ends before create_rollup checks
# for the workers' events
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('gated', key_partitions => 0);
SELECT eventkit.distribute_stream('gated', 8);
SELECT eventkit.create_stream('gated2', key_partitions => 0);
SELECT eventkit.distribute_stream('gated2', 8);
});
my $held = q{SELECT count(*) > 0 FROM pg_locks WHERE relation = '%s'::regclass AND mode = '%s' AND granted};
my $maker_out = '';
my $maker = start_psql($coord, q{BEGIN;
SELECT eventkit.create_rollup('gated_hourly', 'gated', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
SELECT pg_sleep(3);
COMMIT;}, \$maker_out);
ok(poll_until(sub { $w1->safe_psql('postgres', sprintf($held, 'gated', 'ShareLock')) eq 't' }),
	'create_rollup holds the stream\'s lock on a worker');
is( $w1->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('gated', '{"type":"track","messageId":"g1","userId":"gu","event":"Viewed","properties":{"revenue":4}}')}),
	'1', 'a call on the worker meanwhile waits, then stores its event');
$maker->finish;
like($maker_out, qr/COMMIT/, '... after create_rollup committed');
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly_realtime', 'gated')),
	'0', 'the call wrote the new rollup\'s deltas: the realtime view counts its event');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated_hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly', 'gated') . ' UNION ALL SELECT count(*) FROM gated_hourly'),
	"0\n1", '... and the rollup table after a refresh');

my $ingester_out = '';
my $ingester = start_psql($w2, q{BEGIN;
SELECT accepted FROM eventkit.ingest('gated2', '{"type":"track","messageId":"g2","userId":"gu","event":"Viewed"}');
SELECT pg_sleep(3);
COMMIT;}, \$ingester_out);
ok(poll_until(sub { $w2->safe_psql('postgres', sprintf($held, 'gated2', 'RowExclusiveLock')) eq 't' }),
	'a call on a worker is in flight');
is(psql_err($coord, q{SELECT eventkit.create_rollup('gated2_hourly', 'gated2', '1 hour', ARRAY['event'], ARRAY['count'])}),
	'', 'create_rollup meanwhile waits for it');
$ingester->finish;
like($ingester_out, qr/COMMIT/, '... which committed');
is($coord->safe_psql('postgres', q{SELECT (SELECT sum(count) FROM gated2_hourly) || '|' || (SELECT count(*) FROM gated2_hourly_wdelta)}),
	'1|0', '... and its backfill folded the call\'s event, which has no deltas');

done_testing();
