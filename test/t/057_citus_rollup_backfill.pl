
# Copyright: eventkit authors
#
# Rollups of a distributed stream made after ingest on the workers: the
# backfill of create_rollup folds all the stream's rows (a GROUP BY that
# Citus runs on the shards), and add_rollup_measures computes the new
# measures from all rows, both under the stream's lock on every node.
#
# 1. Events ingested on the coordinator and on both workers; then
#    create_rollup (count, sum, max; hll distinct, t-digest percentile,
#    avg, min) while clients keep ingesting on every node: every id stored
#    once, the realtime views and, after a refresh, the rollup tables equal
#    GROUP BY over the distributed stream; the backfill's GROUP BY ran on
#    the shards.
# 2. add_rollup_measures (min, distinct) of such a rollup while clients
#    keep ingesting on every node: the new measures equal GROUP BY, in the
#    realtime view and after a refresh (the workers write the new
#    measures' deltas after it); a worker's call made while
#    add_rollup_measures has not committed waits for it.
# 3. create_rollup and a worker's call at the same time, both orders, on a
#    stream that already holds events ingested on the workers: a call that
#    waited for create_rollup writes the new rollup's deltas and is not in
#    its backfill; a call in flight (its rows on every node's shards)
#    commits before create_rollup's backfill reads them, and is not in the
#    deltas: each counted once.
# 4. refresh_rollup with max_events folds about that many events of the
#    worker delta table (whole batches).
# 5. The values the backfill skips, by reason: events with a value of each
#    skippable kind (strings, booleans, objects, arrays, numbers out of a
#    sum's and a percentile's range, NaN and Infinity in a float8 column, a
#    long text dimension), ingested on the workers' shards: the
#    distributed backfill's eventkit.rollups.skipped_values and
#    skipped_events equal a single node's for the same events (a stream on
#    the coordinator that is not distributed).
# 6. The realtime views of rollups of a rollup (create_rollup_of: daily of
#    hourly, and monthly without its dimension), batches and late events
#    through the coordinator and both workers (one worker's batch ids past
#    the coordinator's, the other's below them): the views equal GROUP BY
#    before a refresh, after a refresh of the source, after new ingest, and
#    after refresh_rollup of the daily rollup; their tail is their
#    source's deltas, read by a role that may read only the daily view.
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
# a Citus local table on the coordinator, whose refresh folds batch by batch, which this test is about
my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n"
	  . "eventkit.worker_deltas_on_shards = off\n");

$coord->safe_psql(
	'postgres', q{
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
-- 36 batches of 25 events, users over all shards, each batch's ids
-- overlapping the one before (5 each)
CREATE TABLE ov AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ov-' || id, 'userId', 'u' || (id % 37),
			'event', CASE WHEN id % 3 = 0 THEN 'Order Completed' ELSE 'Viewed' END,
			'properties', jsonb_build_object('revenue', id % 89),
			'timestamp', to_char(now() - (id % 30) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
			ORDER BY hashint4(id * 17 + k))::text AS payload
  FROM generate_series(1, 36) k, generate_series(20 * k - 5, 20 * k + 19) id
 GROUP BY k;
});

my $users_diff = q{
SELECT count(*) FROM (
  (SELECT bucket, event, users, round(mean, 6), low FROM %1$s
   EXCEPT SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
				 round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
			FROM events GROUP BY 1, 2)
  UNION ALL
  (SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
		  round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
	 FROM events GROUP BY 1, 2
   EXCEPT SELECT bucket, event, users, round(mean, 6), low FROM %1$s)) d};
# the t-digest's median near the exact one (055's tolerance)
my $p50_far = q{
SELECT count(*) FROM %s r
  JOIN (SELECT date_bin('1 day', ts, '2000-01-01') AS bucket, event,
			   percentile_cont(0.5) WITHIN GROUP (ORDER BY (properties->>'revenue')::numeric) AS exact
		  FROM %s GROUP BY 1, 2) e USING (bucket, event)
 WHERE abs(r.p50 - e.exact) > 10};
# the measures add_rollup_measures adds to hourly: min and distinct users
my $added_diff = q{
SELECT count(*) FROM (
  (SELECT bucket, event, low, users FROM %s
   EXCEPT SELECT date_trunc('hour', ts), event, min((properties->>'revenue')::numeric),
				 count(DISTINCT user_id) FROM events GROUP BY 1, 2)
  UNION ALL
  (SELECT date_trunc('hour', ts), event, min((properties->>'revenue')::numeric),
		  count(DISTINCT user_id) FROM events GROUP BY 1, 2
   EXCEPT SELECT bucket, event, low, users FROM %s)) d};

sub start_psql
{
	my ($node, $sql, $out) = @_;
	return IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		  '-d', 'postgres', '-c', $sql ],
		'>', $out, '2>', $out);
}

sub worker_events
{
	my ($stream) = @_;
	return $coord->safe_psql('postgres',
		"SELECT coalesce(sum(accepted), 0) FROM eventkit.worker_stream_stats() WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = '$stream'::regclass)");
}

# --- 1. ingest on every node, then create_rollup while clients ingest -------
# (each node its own batches: 20 of each batch's ids are in no other batch)
my ($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	[ $coord, 'SELECT payload FROM ov WHERE k <= 4 ORDER BY k' ],
	[ $w1,    'SELECT payload FROM ov WHERE k > 4 AND k <= 8 ORDER BY k DESC' ],
	[ $w2,    'SELECT payload FROM ov WHERE k > 8 AND k <= 12 ORDER BY hashint4(k)' ]);
is("$calls|$conflicts", '12|0', 'clients on the coordinator and both workers ingested') or diag($other);
ok(worker_events('events') > 0, 'the workers stored events (' . worker_events('events') . ')');

my $clients = citus_clients_start($coord,
	[ $coord, 'SELECT payload FROM ov WHERE k > 12 AND k <= 24 ORDER BY k' ],
	[ $w1,    'SELECT payload FROM ov WHERE k > 12 AND k <= 24 ORDER BY k DESC' ],
	[ $w2,    'SELECT payload FROM ov WHERE k > 12 AND k <= 24 ORDER BY hashint4(k)' ]);
my ($ret, $stdout, $stderr) = $coord->psql(
	'postgres', q{
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT eventkit.create_rollup('hourly', 'events', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
RESET citus.log_remote_commands;
SELECT eventkit.create_rollup('users', 'events', '1 day', ARRAY['event'],
		ARRAY['distinct(user_id) AS users', 'percentile(properties.revenue, 0.5) AS p50',
			  'avg(properties.revenue) AS mean', 'min(properties.revenue) AS low']);
});
is($ret, 0, 'create_rollup of a stream with events ingested on the workers, while clients ingest on every node')
  or diag($stderr);
like($stderr, qr/NOTICE:  rollup "hourly": \d+ events of history folded/, '... its backfill folded the history');
# the backfill's GROUP BY on the shards: the commands Citus sent the
# stream's shards group (and do not just read the rows)
my @shard_reads = grep { /FROM public\.events_\d+ / } split /\n/, $stderr;
ok(@shard_reads >= 8, 'the backfill read each shard of the stream (' . scalar(@shard_reads) . ' commands)')
  or diag($stderr);
is(scalar(grep { !/GROUP BY/ } @shard_reads), 0, '... each with a GROUP BY: the groups are made on the shards')
  or diag(join("\n", @shard_reads));
note("one of them: $shard_reads[0]");
($calls, $accepted, $conflicts, $other) = citus_clients_finish($clients);
is("$calls|$conflicts", '36|0', 'the clients went on meanwhile') or diag($other);
is($coord->safe_psql('postgres', q{SELECT count(*) = count(DISTINCT message_id) FROM events}),
	't', 'each id stored once');

is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', 'the realtime view equals GROUP BY over the distributed stream (count, sum, max)');
is($coord->safe_psql('postgres', sprintf($users_diff, 'users_realtime')),
	'0', 'the second rollup\'s realtime view equals GROUP BY (hll distinct, avg, min)');
is($coord->safe_psql('postgres', sprintf($p50_far, 'users_realtime', 'events')),
	'0', '... and its t-digest median is near the exact one');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly'); SELECT eventkit.refresh_rollup('users')});
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', 'after a refresh the rollup table equals GROUP BY');
# (the realtime view finishes the table's states: hll, t-digest, avg's parts)
is($coord->safe_psql('postgres', q{SELECT (SELECT count(*) FROM users_wdelta) + (SELECT count(*) FROM users_delta)}),
	'0', 'no delta left after the refresh');
is($coord->safe_psql('postgres', sprintf($users_diff, 'users_realtime')),
	'0', '... and the second rollup\'s table equals GROUP BY (distinct, avg, min)');
is($coord->safe_psql('postgres', sprintf($p50_far, 'users_realtime', 'events')),
	'0', '... its median too');
is($coord->safe_psql('postgres', q{SELECT sum(count) = (SELECT count(*) FROM events) FROM hourly}),
	't', 'every event counted once');

# --- 2. add_rollup_measures while clients ingest on every node ---------------
$clients = citus_clients_start($coord,
	[ $coord, 'SELECT payload FROM ov WHERE k > 24 ORDER BY k' ],
	[ $w1,    'SELECT payload FROM ov WHERE k > 24 ORDER BY k DESC' ],
	[ $w2,    'SELECT payload FROM ov WHERE k > 24 ORDER BY hashint4(k)' ]);
is(psql_err($coord, q{SELECT eventkit.add_rollup_measures('hourly', ARRAY['min(properties.revenue) AS low', 'distinct(user_id) AS users'])}),
	'', 'add_rollup_measures of a rollup of the distributed stream, while clients ingest on every node');
($calls, $accepted, $conflicts, $other) = citus_clients_finish($clients);
is("$calls|$conflicts", '36|0', 'the clients went on meanwhile') or diag($other);
$w1->safe_psql('postgres', q{SELECT eventkit.ingest('events', '[{"type":"track","messageId":"after-w1","userId":"w1u","event":"Viewed","properties":{"revenue":1}}]')});
$w2->safe_psql('postgres', q{SELECT eventkit.ingest('events', '[{"type":"track","messageId":"after-w2","userId":"w2u","event":"Viewed","properties":{"revenue":2}}]')});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM hourly_wdelta WHERE low IS NULL OR users IS NULL}),
	'0', 'the workers\' calls since wrote the new measures\' deltas');
is($coord->safe_psql('postgres', sprintf($added_diff, 'hourly_realtime', 'hourly_realtime')),
	'0', 'the new measures in the realtime view equal GROUP BY')
  or diag($coord->safe_psql('postgres', q{
SELECT 'view', bucket, event, low, users, count FROM hourly_realtime
EXCEPT SELECT 'view', date_trunc('hour', ts), event, min((properties->>'revenue')::numeric),
	count(DISTINCT user_id), count(*) FROM events GROUP BY 1, 2, 3
UNION ALL SELECT 'table', bucket, event, low, round(hll_cardinality(users))::bigint, count FROM hourly
UNION ALL SELECT 'delta', bucket, event, low, ek_events, batch_id FROM hourly_delta
UNION ALL SELECT 'wdelta', bucket, event, low, ek_events, batch_id FROM hourly_wdelta
UNION ALL SELECT 'rollup', NULL, watermark::text, NULL, NULL, NULL FROM eventkit.rollups WHERE relid = 'hourly'::regclass
ORDER BY 1, 2, 3}));
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', '... and the old ones too');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', sprintf($added_diff, ("(SELECT bucket, event, low, round(hll_cardinality(users))::bigint AS users FROM hourly) h") x 2)),
	'0', '... and in the rollup table after a refresh');
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', '... the old ones too');

# add_rollup_measures and a worker's call at the same time: the call waits
# for it (the lock on every node), then writes the new measures' deltas
$coord->safe_psql('postgres', q{SELECT eventkit.create_rollup('late2', 'events', '1 hour', ARRAY['event'], ARRAY['count'])});
my $adder_out = '';
my $adder = start_psql($coord, q{BEGIN;
SELECT eventkit.add_rollup_measures('late2', ARRAY['min(properties.revenue) AS low', 'distinct(user_id) AS users']);
SELECT pg_sleep(3);
COMMIT;}, \$adder_out);
ok( poll_until(sub {
		$coord->safe_psql('postgres', q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 'late2_wdelta'::regclass AND mode = 'AccessExclusiveLock' AND granted}) eq 't' }),
	'add_rollup_measures altered the worker delta table, not committed yet');
is( $w1->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('events', '{"type":"track","messageId":"added-1","userId":"newcomer","event":"Added","properties":{"revenue":7}}')}),
	'1', 'a call on a worker meanwhile stores its event');
$adder->finish;
like($adder_out, qr/COMMIT/, '... add_rollup_measures committed');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM late2_wdelta WHERE event = 'Added' AND low = 7 AND users IS NOT NULL}),
	'1', 'the call waited for it and wrote the new measures\' deltas');
is($coord->safe_psql('postgres', sprintf($added_diff, 'late2_realtime', 'late2_realtime')),
	'0', 'the new measures in the realtime view equal GROUP BY');
# ... and a call on the coordinator: its statement began before the lock
# was granted, and it reads the rollups' definitions after it
$adder = start_psql($coord, q{BEGIN;
SELECT eventkit.add_rollup_measures('late2', ARRAY['max(properties.revenue) AS top']);
SELECT pg_sleep(3);
COMMIT;}, \$adder_out);
ok( poll_until(sub {
		$coord->safe_psql('postgres', q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 'late2_delta'::regclass AND mode = 'AccessExclusiveLock' AND granted}) eq 't' }),
	'add_rollup_measures altered the delta table, not committed yet');
is( $coord->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('events', '{"type":"track","messageId":"added-2","userId":"newcomer2","event":"Added2","properties":{"revenue":9}}')}),
	'1', 'a call on the coordinator meanwhile stores its event');
$adder->finish;
like($adder_out, qr/COMMIT/, '... add_rollup_measures committed');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM late2_delta WHERE event = 'Added2' AND top = 9 AND low = 9}),
	'1', 'the call waited for it and wrote the new measure\'s deltas');

# --- 3. create_rollup and a worker's call at the same time, both orders -------
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('gated', key_partitions => 0);
SELECT eventkit.distribute_stream('gated', 8);
SELECT eventkit.create_stream('gated2', key_partitions => 0);
SELECT eventkit.distribute_stream('gated2', 8);
-- a rollup each first: the stream's batch_id index is made by the first
-- (CREATE INDEX, which also locks the stream on every node), so the racing
-- create_rollup holds the stream by its own lock only
SELECT eventkit.create_rollup('gated_first', 'gated', '1 day', '{}', ARRAY['count']);
SELECT eventkit.create_rollup('gated2_first', 'gated2', '1 day', '{}', ARRAY['count']);
});
# events of users on every shard, on both workers
for my $s (qw(gated gated2))
{
	for my $w ([ $w1, 'a' ], [ $w2, 'b' ])
	{
		my ($node, $tag) = @$w;
		$node->safe_psql('postgres', qq{
SELECT eventkit.ingest('$s', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', '$tag' || i,
		'userId', 'u' || i, 'event', 'Viewed', 'properties', jsonb_build_object('revenue', i)))
	FROM generate_series(1, 30) i))});
	}
	is(worker_events($s), '60', "stream $s holds 60 events ingested on the workers");
}
# the batch of the racing call: 20 users, on every node's shards
my $race = q{(SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'r' || i,
		'userId', 'r' || i, 'event', 'Raced', 'properties', jsonb_build_object('revenue', 100 + i)))
	FROM generate_series(1, 20) i)};
my $held = q{SELECT count(*) > 0 FROM pg_locks WHERE relation = '%s'::regclass AND mode = '%s' AND granted};

# (a) create_rollup first: the call waits, then writes the deltas
my $maker_out = '';
my $maker = start_psql($coord, q{BEGIN;
SELECT eventkit.create_rollup('gated_hourly', 'gated', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
SELECT pg_sleep(3);
COMMIT;}, \$maker_out);
ok(poll_until(sub { $w1->safe_psql('postgres', sprintf($held, 'gated', 'ShareLock')) eq 't' }),
	'create_rollup holds the stream\'s lock on a worker');
is($w1->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('gated', $race)"),
	'20', 'a call on the worker meanwhile waits, then stores its events');
$maker->finish;
like($maker_out, qr/COMMIT/, '... after create_rollup committed');
is($coord->safe_psql('postgres', q{SELECT coalesce(sum(ek_events), 0) FROM gated_hourly_wdelta}),
	'20', 'the call wrote the new rollup\'s deltas');
is($coord->safe_psql('postgres', q{SELECT coalesce(sum(count), 0) FROM gated_hourly}),
	'60', 'the backfill folded the 60 events before it, not the call\'s');
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly_realtime', 'gated')),
	'0', 'the realtime view equals GROUP BY');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated_hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly', 'gated') . ' UNION ALL SELECT sum(count) FROM gated_hourly'),
	"0\n80", '... and the rollup table after a refresh: 80 events');

# (b) the call first (in flight, its rows on every node's shards):
# create_rollup waits for it, and its backfill folds the call's rows
my $ingester_out = '';
my $ingester = start_psql($w2, qq{BEGIN;
SELECT accepted FROM eventkit.ingest('gated2', $race);
SELECT pg_sleep(3);
COMMIT;}, \$ingester_out);
ok(poll_until(sub { $w2->safe_psql('postgres', sprintf($held, 'gated2', 'RowExclusiveLock')) eq 't' }),
	'a call on a worker is in flight');
is(psql_err($coord, q{SELECT eventkit.create_rollup('gated2_hourly', 'gated2', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top'])}),
	'', 'create_rollup meanwhile waits for it');
$ingester->finish;
ok($ingester_out =~ /^20$/m && $ingester_out =~ /^COMMIT$/m, '... which stored its 20 events and committed')
  or diag($ingester_out);
is($coord->safe_psql('postgres', q{SELECT count(*) FROM gated2_hourly_wdelta}),
	'0', 'the call wrote no deltas of the rollup');
is($coord->safe_psql('postgres', q{SELECT coalesce(sum(count), 0) FROM gated2_hourly}),
	'80', 'the backfill folded its events with the 60 before');
is($coord->safe_psql('postgres', rollup_groupby_diff('gated2_hourly_realtime', 'gated2')),
	'0', 'the realtime view equals GROUP BY');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated2_hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('gated2_hourly', 'gated2') . ' UNION ALL SELECT sum(count) FROM gated2_hourly'),
	"0\n80", '... and the rollup table after a refresh');

# --- 4. a refresh with max_events folds about that many events of the worker
# delta table too (whole batches, at least one) ------------------------------
for my $i (1 .. 5)
{
	my $node = $i <= 3 ? $w1 : $w2;
	$node->safe_psql('postgres', qq{
SELECT eventkit.ingest('gated', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm$i-' || j,
		'userId', 'm' || j, 'event', 'Chunked', 'properties', jsonb_build_object('revenue', j)))
	FROM generate_series(1, 5) j))});
}
my $wbatches = q{SELECT count(DISTINCT batch_id) FROM gated_hourly_wdelta};
is($coord->safe_psql('postgres', $wbatches), '5', 'five batches of 5 events ingested on the workers, in the worker delta table');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated_hourly', 1)}),
	'5', 'refresh_rollup with max_events 1 folds one batch of the worker delta table');
is($coord->safe_psql('postgres', $wbatches), '4', '... and leaves the others');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated_hourly', 12)}),
	'15', 'max_events 12: three batches (whole batches, until about 12 events)');
is($coord->safe_psql('postgres', $wbatches), '1', '... one left');
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly_realtime', 'gated')),
	'0', 'the realtime view equals GROUP BY meanwhile');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('gated_hourly')}),
	'5', 'a refresh without max_events folds the rest');
is($coord->safe_psql('postgres', rollup_groupby_diff('gated_hourly', 'gated') . ' UNION ALL ' . $wbatches),
	"0\n0", '... and the rollup table equals GROUP BY');

# --- 5. the values the backfill skips, by reason ------------------------------
# the same 80 events in a distributed stream (ingested through the workers)
# and in a stream on the coordinator alone; revenue by i % 8: a string, a
# boolean, an object, an array (not_a_number in sum, percentile and max),
# 1e131001 (out_of_range in sum and percentile), 1e300 (in percentile),
# null, a number; amount (float8) NaN (not_a_number) or Infinity
# (out_of_range) for some; page 400 characters long for i % 7 = 0
# (dimension_truncated)
sub bad_batch
{
	my ($tag) = @_;
	my @revenue = ('"12"', 'true', '{"a": 1}', '[1]', '1e131001', '1e300', 'null');
	return '[' . join(', ', map {
		my $i = $_;
		my $r = $i % 8 == 7 ? $i : $revenue[ $i % 8 ];
		my $page = $i % 7 == 0 ? 'p' x 400 : 'home';
		qq({"type": "track", "messageId": "bad-$tag-$i", "userId": "b$i", "event": "Viewed", )
		  . qq("properties": {"page": "$page", "revenue": $r}})
	} 1 .. 40) . ']';
}
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('bad', key_partitions => 0);
ALTER TABLE bad ADD COLUMN amount float8;
SELECT eventkit.distribute_stream('bad', 8);
SELECT eventkit.create_stream('bad_local', key_partitions => 0);
ALTER TABLE bad_local ADD COLUMN amount float8;
});
my $ingested = join(' ',
	$w1->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('bad', '" . bad_batch('a') . "')"),
	$w2->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('bad', '" . bad_batch('b') . "')"),
	map { $coord->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('bad_local', '" . bad_batch($_) . "')") } qw(a b));
is($ingested, '40 40 40 40', 'events with bad values stored, through the workers and on one node alike');
is(worker_events('bad'), '80', '... the distributed stream\'s by the workers');
my $bad_rollup = q{SELECT eventkit.create_rollup('%s', '%s', '1 hour', ARRAY['properties.page AS page'],
	ARRAY['count', 'sum(properties.revenue) AS revenue', 'percentile(properties.revenue, 0.5) AS p50',
		  'max(properties.revenue) AS top', 'sum(amount) AS amount']) IS NOT NULL};
for my $s (qw(bad bad_local))
{
	$coord->safe_psql('postgres', qq{
UPDATE $s SET amount = CASE split_part(message_id, '-', 3)::int % 10 WHEN 1 THEN 'NaN'::float8 ELSE 'Infinity' END
 WHERE split_part(message_id, '-', 3)::int % 10 IN (1, 2);
} . sprintf($bad_rollup, "${s}_r", $s));
}
is($coord->safe_psql('postgres', q{SELECT skipped_values FROM eventkit.rollups WHERE relid = 'bad_r'::regclass}),
	'{"not_a_number": 128, "out_of_range": 38, "dimension_truncated": 10}',
	'the distributed backfill counts the values it skipped by reason');
is($coord->safe_psql('postgres', q{SELECT a.skipped_values = b.skipped_values FROM eventkit.rollups a, eventkit.rollups b
	WHERE a.relid = 'bad_r'::regclass AND b.relid = 'bad_local_r'::regclass}),
	't', '... as a single node\'s backfill of the same events does');
is($coord->safe_psql('postgres', q{
SELECT (SELECT array_agg(row(page, count, skipped_events, revenue, top, amount) ORDER BY page) FROM bad_r)
	 = (SELECT array_agg(row(page, count, skipped_events, revenue, top, amount) ORDER BY page) FROM bad_local_r),
	   (SELECT sum(skipped_events) FROM bad_r)}),
	't|64', '... and the rollup tables hold the same groups, skipped_events included');

# backfill => false: the later folds read the coordinator's batches only
like(psql_err($coord, q{SELECT eventkit.create_rollup('nofill', 'gated', '1 hour', ARRAY['event'], ARRAY['count'], backfill => false)}),
	qr/cannot create a rollup of distributed stream "gated" without its backfill: it holds events ingested on the workers/,
	'create_rollup without backfill of a stream with events ingested on the workers is refused');

# --- 6. the realtime view of a rollup of a rollup -----------------------------
# hourly (count, sum, max, hll distinct) of a distributed stream, a daily
# create_rollup_of it and a monthly one without its dimension; batches
# through the coordinator and each worker, late events among them: the
# realtime views equal GROUP BY over the stream before any refresh, after a
# refresh of the source (which recomputes the buckets it touched), after
# new ingest, and after refresh_rollup of the daily rollup (a refresh of
# its source); then the tables too.
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('derived', key_partitions => 0);
SELECT eventkit.distribute_stream('derived', 8);
SELECT eventkit.create_rollup('derived_hourly', 'derived', '1 hour', ARRAY['event'],
	ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top',
		  'distinct(user_id) AS users']) IS NOT NULL;
SELECT eventkit.create_rollup_of('derived_daily', 'derived_hourly', '1 day') IS NOT NULL;
SELECT eventkit.create_rollup_of('derived_monthly', 'derived_hourly', '1 month', '{}') IS NOT NULL;
});
# the daily (or monthly, by month alone) rollup's table or view against
# GROUP BY over the stream (with $users: the distinct users too, finished
# in the view)
sub daily_diff
{
	my ($rel, $users) = @_;
	my ($bucket, $dims) = $rel =~ /monthly/
	  ? (q{date_trunc('month', ts, 'UTC')}, '') : (q{date_bin('1 day', ts, '2000-01-01')}, ', event');
	my $cols = "bucket$dims, count, revenue, top" . ($users ? ', users' : '');
	my $groupby = "SELECT $bucket$dims, count(*), sum((properties->>'revenue')::numeric),"
	  . " max((properties->>'revenue')::numeric)" . ($users ? ', count(DISTINCT user_id)' : '')
	  . ' FROM derived GROUP BY ' . ($dims ? '1, 2' : '1');
	return $coord->safe_psql('postgres',
		"SELECT count(*) FROM ((SELECT $cols FROM $rel EXCEPT $groupby)"
		  . " UNION ALL ($groupby EXCEPT SELECT $cols FROM $rel)) d");
}
# one call of ov's batch $k into derived on $node: accepted
sub derived_ingest
{
	my ($node, $k) = @_;
	my $p = $coord->safe_psql('postgres', "SELECT payload FROM ov WHERE k = $k");
	return $node->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('derived', '$p')");
}
# late events (two days ago, a day ago) through $node: accepted
sub derived_late
{
	my ($node, $tag) = @_;
	return $node->safe_psql('postgres', qq{
SELECT accepted FROM eventkit.ingest('derived', (SELECT jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'late-$tag-' || j, 'userId', 'late' || j, 'event', 'Viewed',
		'properties', jsonb_build_object('revenue', 1000 + j),
		'timestamp', to_char(now() - (j * 20) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
	FROM generate_series(1, 2) j))});
}
# (the coordinator's first batch waits for the partitions of every day the
# later batches hold, which maintenance makes, and is re-driven, so that
# none waits in quarantine on a worker; worker1's batch ids far past the
# coordinator's, worker2's below them, as in a cluster whose workers
# ingested more or fewer calls)
$w1->safe_psql('postgres', q{SELECT setval('eventkit.batch_id_seq', 100000)});
my $c0 = derived_late($coord, 'c0');
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('derived')});
is($c0 + $coord->safe_psql('postgres', q{SELECT replayed FROM eventkit.redrive_quarantine('derived')}),
	2, 'late events through the coordinator: stored, those whose partition maintenance made once re-driven');
is(join(' ', derived_ingest($coord, 1), derived_ingest($w1, 2),
		derived_ingest($w2, 3), derived_ingest($w1, 4)),
	'25 20 20 20', 'a rollup of a rollup: batches through the coordinator and both workers');
is(join('|', daily_diff('derived_daily_realtime', 1), daily_diff('derived_monthly_realtime', 1),
		$coord->safe_psql('postgres', rollup_groupby_diff('derived_hourly_realtime', 'derived'))),
	'0|0|0', '... the realtime views equal GROUP BY before a refresh (daily, monthly and the source\'s)');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('derived_hourly')}),
	'87', 'a refresh of the source folds every node\'s batches');
is(join('|', daily_diff('derived_daily'), daily_diff('derived_daily_realtime', 1),
		daily_diff('derived_monthly'), daily_diff('derived_monthly_realtime', 1)),
	'0|0|0|0', '... the daily and monthly tables and realtime views equal GROUP BY');
is(join(' ', derived_ingest($w2, 5), derived_late($w1, 'w1'), derived_ingest($coord, 6),
		derived_late($w2, 'w2'), derived_late($coord, 'c1')),
	'20 2 20 2 2', 'new batches and late events through every node');
is(join('|', daily_diff('derived_daily_realtime', 1), daily_diff('derived_monthly_realtime', 1),
		$coord->safe_psql('postgres', rollup_groupby_diff('derived_hourly_realtime', 'derived'))),
	'0|0|0', '... the realtime views equal GROUP BY before a refresh');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('derived_daily')}),
	'46', 'refresh_rollup of the daily rollup refreshes its source');
is(join('|', daily_diff('derived_daily'), daily_diff('derived_daily_realtime', 1),
		daily_diff('derived_monthly'), daily_diff('derived_monthly_realtime', 1),
		$coord->safe_psql('postgres', q{SELECT (SELECT count(*) FROM derived_hourly_wdelta) + (SELECT count(*) FROM derived_hourly_delta)})),
	'0|0|0|0|0', '... the tables and views equal GROUP BY, no delta left');
is(join(' ', derived_ingest($w1, 7), derived_late($w2, 'w2b')), '20 2', 'more through the workers');
# (a role that may read the daily view alone reads its source's tail through it)
is($coord->safe_psql('postgres', q{
CREATE ROLE derived_reader;
GRANT SELECT ON derived_daily_realtime TO derived_reader;
SET ROLE derived_reader;
SELECT sum(count) FROM derived_daily_realtime;
RESET ROLE;
SELECT count(*) FROM derived;}), "155\n155", '... read through the daily view by a role that may read only it');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('derived_hourly')}),
	'22', 'a refresh of the source again');
is(join('|', daily_diff('derived_daily'), daily_diff('derived_daily_realtime', 1),
		$coord->safe_psql('postgres', q{SELECT (SELECT sum(count) FROM derived_daily) = (SELECT count(*) FROM derived)})),
	'0|0|t', '... both equal GROUP BY, every event counted once');

done_testing();
