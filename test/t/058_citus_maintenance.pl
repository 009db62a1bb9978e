
# Copyright: eventkit authors
#
# Maintenance of a distributed stream, each step against one
# node's stream 'events_local' fed the same batches in the same order:
#
# 1. Late events ingested on a worker wait there in quarantine
#    (out_of_range: no call makes a partition of a distributed stream), and
#    so do the coordinator's late events; run_maintenance on the
#    coordinator makes their partitions, redrive_quarantine stores the
#    coordinator's; replay_quarantine by hand on the worker stores the
#    worker's, and a re-send through the other worker is all duplicates.
# 2. stream_stats on the coordinator sums the workers' figures: accepted
#    and duplicates equal one node's; quarantined counts the attempts of
#    the late events (the worker's and the coordinator's); in_quarantine
#    is 0.
# 3. Retention (alter_stream + run_maintenance on the coordinator) drops
#    the old partitions, their shards on every worker included, and keeps
#    the others' rows: the same events as one node.  A re-send of events
#    older than the retention, through the coordinator and through a
#    worker, counts as on one node.
# 4. Both workers wait for the same late events, quarantined in crossing
#    orders (worker 1: day -8's batch, then day -7's; worker 2 the other way
#    round): run_maintenance makes their partitions, and the next one
#    re-drives them on one worker after the other, so that the two
#    replays (each a transaction of two batches, claiming the same ids)
#    do not deadlock (its premake of a partition in the same transaction
#    does not hold them up either): no warning, each id stored
#    once, none left in the workers' quarantines.  (Re-driven on both
#    workers at once, they deadlocked.)  The coordinator's redrive job, when
#    the coordinator and a worker wait for the same events, asks the
#    workers before it replays its own (which claims the ids in its own
#    transaction): each id stored once, nothing left waiting.
#
# 051 has health() and worker_health with a worker down; 053 retention
# with an ordinary superuser.
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;
use EventkitTest;

citus_skip_unless_installed();

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");

$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.create_stream('events_local', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
-- batch k: 40 events of day now() - d(k) days (d: 20, 15, 6, 3, 0 for k
-- 1..5), ids 100 k to 100 k + 39
CREATE TABLE batches AS
SELECT k, jsonb_build_object('batch', jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'm-' || id,
			'userId', 'u' || (id % 17), 'event', 'Order Completed',
			'properties', jsonb_build_object('revenue', id % 89),
			'timestamp', to_char(date_trunc('day', now()) - d * interval '1 day'
								 + (id % 600) * interval '1 minute',
								 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ORDER BY id)) AS payload
  FROM (VALUES (1, 20), (2, 15), (3, 6), (4, 3), (5, 0)) days(k, d),
	   LATERAL generate_series(100 * k, 100 * k + 39) id
 GROUP BY k;
CREATE TABLE results (node text, pass int, k int, accepted bigint, duplicates bigint,
					  conflicts bigint, quarantined bigint, rejected bigint);
});
my $partitions = q{SELECT string_agg(c.relname, ',' ORDER BY c.relname)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass};

# one node: every batch through one call each
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'local', 1, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r ORDER BY k});
is( $coord->safe_psql(
		'postgres', q{SELECT sum(accepted) || '|' || sum(duplicates) || '|' || sum(quarantined) FROM results WHERE node = 'local'}),
	'200|0|0', 'one node: every event stored');

# --- 1. late events wait on a worker, then are replayed by hand ----------------
# batch 1 (20 days ago) on worker 1: no partition there, so all of it waits
citus_ingest_on($coord, $w1, 1, 'k = 1');
is($coord->safe_psql('postgres', q{SELECT accepted || '|' || quarantined FROM results WHERE node = 'worker1' AND k = 1}),
	'0|40', 'late events on a worker wait in quarantine');
like($w1->safe_psql('postgres', q{SELECT DISTINCT reasons->0->>'reason' FROM eventkit.quarantine}),
	qr/^out_of_range$/, '... with reason out_of_range, on the worker');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.worker_quarantine('events')}),
	'40', '... listed on the coordinator by worker_quarantine');
# the rest through the coordinator: its late events wait too
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'coordinator', 1, k, r.* FROM batches, LATERAL eventkit.ingest('events', payload) r WHERE k > 1 ORDER BY k});
is( $coord->safe_psql(
		'postgres', q{SELECT sum(accepted) || '|' || sum(quarantined) FROM results WHERE node = 'coordinator'}),
	'40|120', 'the coordinator\'s late events wait in quarantine too (its calls make no partition)');
# batch 1's day has no partition yet: one event of that day through the coordinator waits for it
$coord->safe_psql(
	'postgres', q{
INSERT INTO results SELECT 'coordinator', 1, 0, r.* FROM eventkit.ingest('events', jsonb_build_object(
	'type', 'track', 'messageId', 'maker', 'userId', 'u0', 'event', 'Maker',
	'timestamp', to_char(date_trunc('day', now()) - 20 * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) r;
});
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
is($coord->safe_psql('postgres', q{SELECT replayed FROM eventkit.redrive_quarantine('events')}),
	'121', 'run_maintenance makes their partitions, and the coordinator re-drives its own');
my $replayed = $w1->safe_psql('postgres',
	q{SELECT accepted || '|' || duplicates || '|' || quarantined FROM eventkit.replay_quarantine('events')});
is($replayed, '40|0|0', 'replay_quarantine on the worker stores them once their partition exists');
is($w1->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... and empties its quarantine');
# a re-send of batch 1 through the other worker: all duplicates
citus_ingest_on($coord, $w2, 2, 'k = 1');
is($coord->safe_psql('postgres', q{SELECT accepted || '|' || duplicates FROM results WHERE node = 'worker2' AND pass = 2}),
	'0|40', 'a re-send through the other worker is all duplicates');
$coord->safe_psql('postgres', q{DELETE FROM events WHERE message_id = 'maker'});
citus_same_events($coord);

# --- 2. stream_stats sums the workers ------------------------------------------
is( $coord->safe_psql(
		'postgres', q{
SELECT d.accepted - 1 - l.accepted || '|' || d.duplicates - l.duplicates || '|' || d.quarantined
	   || '|' || d.in_quarantine || '|' || l.in_quarantine
  FROM eventkit.stream_stats d, eventkit.stream_stats l
 WHERE d.stream = 'events'::regclass AND l.stream = 'events_local'::regclass}),
	'0|40|161|0|0',
	'stream_stats on the coordinator: accepted as one node (and the maker), the re-send\'s duplicates, the late events\' quarantined attempts');

# --- 3. retention ------------------------------------------------------------
my $before = $coord->safe_psql('postgres', $partitions);
my $old = $coord->safe_psql(
	'postgres', q{
SELECT string_agg(c.relname, ',' ORDER BY c.relname)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass
   AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$TO \('([^']+)'\)$$))[1]::timestamptz
	   <= now() - interval '10 days'});
my @old = split /,/, $old;
is(scalar(@old), 2, 'the partitions of days -20 and -15 exist before retention')
  or diag("old partitions: $old; all: $before");
my $shards_of = sub {
	my ($node, $names) = @_;
	# Citus hides shards from pg_class unless told not to
	my $re = join('|', split /,/, $names);
	return $node->safe_psql('postgres',
		"SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relname ~ '^($re)_[0-9]+\$'");
};
ok($shards_of->($w1, $old) > 0 && $shards_of->($w2, $old) > 0, '... with shards on both workers');
for my $s ('events', 'events_local')
{
	$coord->safe_psql('postgres',
		"SELECT eventkit.alter_stream('$s', retention => '10 days'); SELECT eventkit.run_maintenance('$s');");
}
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM events WHERE ts < now() - interval '11 days'}),
	'0', 'retention dropped the old rows of the distributed stream');
is($shards_of->($w1, $old) . '|' . $shards_of->($w2, $old), '0|0', '... and the old partitions\' shards on both workers');
is($coord->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = ANY (string_to_array('$old', ','))"),
	'0', '... and the partitions on the coordinator');
citus_same_events($coord);
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_inherits i LEFT JOIN pg_dist_partition d ON d.logicalrelid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass AND d.logicalrelid IS NULL}),
	'0', 'every partition left is distributed');

# a re-send of the dropped days' batches: through the coordinator, then worker 2
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'local', 3, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r WHERE k <= 2 ORDER BY k});
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'coordinator', 3, k, r.* FROM batches, LATERAL eventkit.ingest('events', payload) r WHERE k <= 2 ORDER BY k});
citus_ingest_on($coord, $w2, 4, 'k <= 2');
for my $pass (3, 4)
{
	is( $coord->safe_psql(
			'postgres', qq{
SELECT count(*) FROM (
  SELECT k, accepted, duplicates, conflicts, quarantined, rejected FROM results WHERE pass = $pass AND node <> 'local'
  EXCEPT
  SELECT k, accepted, duplicates, conflicts, quarantined, rejected FROM results WHERE pass = 3 AND node = 'local') d}),
		'0', "a re-send of events older than the retention counts as on one node (pass $pass)");
}
note('one node\'s counts for the re-send of the dropped days: '
	  . $coord->safe_psql('postgres', q{SELECT string_agg(concat_ws(',', k, accepted, duplicates, quarantined, rejected), ' ') FROM results WHERE pass = 3 AND node = 'local'}));
citus_same_events($coord);

# --- 4. the same late events waiting on both workers, in crossing orders -------
# two batches of 300 events of days -8 and -7 (no partition), users over all
# shards; worker 1 gets day -8's first, worker 2 day -7's
$coord->safe_psql(
	'postgres', q{
CREATE TABLE crossing AS
SELECT d, jsonb_build_object('batch', jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'x' || d || '-' || id,
			'userId', 'c' || (id % 61), 'event', 'Crossing',
			'timestamp', to_char(date_trunc('day', now()) - d * interval '1 day'
								 + (id % 600) * interval '1 minute',
								 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ORDER BY id))::text AS payload
  FROM (VALUES (8), (7)) days(d), LATERAL generate_series(1, 300) id
 GROUP BY d;
});
my %crossing = split /[\t\n]/, $coord->safe_psql('postgres', q{SELECT d || E'\t' || payload FROM crossing});
for my $order ([ $w1, 8, 7 ], [ $w2, 7, 8 ])
{
	my ($node, @days) = @$order;
	for my $d (@days)
	{
		is( $node->safe_psql(
				'postgres', "SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '$crossing{$d}'::jsonb)"),
			'0|300', $node->name . ": day -${d}'s batch waits in quarantine");
	}
}
my $crossing_parts = q{SELECT count(*) FROM eventkit.partitions('events')
 WHERE range_start <= date_trunc('day', now()) - interval '7 days'
   AND range_end > date_trunc('day', now()) - interval '8 days'};
is($coord->safe_psql('postgres', $crossing_parts), '0', 'their days have no partition');
my ($stdout, $stderr) = ('', '');
$coord->psql('postgres', q{SELECT eventkit.run_maintenance('events')}, stderr => \$stderr, on_error_die => 1);
unlike($stderr, qr/WARNING|ERROR/, 'run_maintenance: no warning');
is($coord->safe_psql('postgres', $crossing_parts), '2', '... and it made the two partitions the workers\' events wait for');
# the next run also premakes a partition (the newest one, dropped here): its
# transaction holds that DDL's locks on every node until it commits, which
# the workers' re-drives (other transactions) must not wait for
my $newest = $coord->safe_psql('postgres', q{SELECT partition FROM eventkit.partitions('events') ORDER BY range_start DESC LIMIT 1});
$coord->safe_psql('postgres', "DROP TABLE $newest");
$coord->psql('postgres', q{SET statement_timeout = '60s'; SELECT eventkit.run_maintenance('events')},
	stderr => \$stderr);
is($coord->safe_psql('postgres', "SELECT to_regclass('$newest') IS NOT NULL"), 't', 'the next run_maintenance premakes the dropped partition again');
unlike($stderr, qr/WARNING|ERROR/, '... and re-drives the late events on both workers without a warning (no deadlock)')
  or diag($stderr);
my $crossing_waiting = q{SELECT count(*) FROM eventkit.quarantine WHERE message_id LIKE 'x%'};
is($w1->safe_psql('postgres', $crossing_waiting) . '|' . $w2->safe_psql('postgres', $crossing_waiting),
	'0|0', '... none of them left in the workers\' quarantines');
is($coord->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Crossing'}),
	'600|600', '... and each id is stored once');

# the coordinator's redrive job, when the coordinator and a worker wait for
# the same events (day -9's, on the coordinator because it was told not to
# make partitions at ingest): it asks the workers first, so that a worker's
# replay does not wait for the claims of the job's own transaction, which
# waits for the worker (a wait no deadlock detector sees)
$coord->safe_psql(
	'postgres', q{
INSERT INTO crossing
SELECT 9, jsonb_build_object('batch', jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'x9-' || id,
			'userId', 'c' || (id % 61), 'event', 'Crossing',
			'timestamp', to_char(date_trunc('day', now()) - 9 * interval '1 day'
								 + (id % 600) * interval '1 minute',
								 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ORDER BY id))::text
  FROM generate_series(1, 300) id;
});
my $day9 = $coord->safe_psql('postgres', q{SELECT payload FROM crossing WHERE d = 9});
is( $coord->safe_psql(
		'postgres', "SET eventkit.create_partitions_on_ingest = off;
SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '$day9'::jsonb)"),
	'0|300', 'day -9\'s batch waits on the coordinator (no partition made at ingest)');
is($w1->safe_psql('postgres', "SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '$day9'::jsonb)"),
	'0|300', '... and on worker 1');
$coord->psql('postgres', q{SELECT eventkit.run_maintenance('events')}, stderr => \$stderr, on_error_die => 1);
unlike($stderr, qr/WARNING|ERROR/, 'run_maintenance makes its partition');
my $sid = $coord->safe_psql('postgres', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
$coord->safe_psql(
	'postgres', qq{
UPDATE eventkit.jobs SET next_run_at = CASE WHEN kind = 'redrive' THEN now() ELSE now() + interval '1 day' END,
	   schedule = CASE WHEN kind = 'redrive' THEN interval '1 second' ELSE schedule END
 WHERE stream_id = $sid;
ALTER SYSTEM SET eventkit.naptime = 1;
ALTER SYSTEM SET eventkit.scheduler_enabled = on;
SELECT pg_reload_conf();
});
poll_jobs($coord, 'postgres', q{SELECT count(*) = 300 FROM events WHERE message_id LIKE 'x9-%'},
	'the redrive job stores them');
poll_jobs($coord, 'postgres', q{SELECT count(*) = 0 FROM eventkit.quarantine WHERE message_id LIKE 'x9-%'},
	'... and empties the coordinator\'s quarantine');
is($w1->safe_psql('postgres', $crossing_waiting), '0', '... and the worker\'s');
$coord->safe_psql(
	'postgres', q{
ALTER SYSTEM RESET eventkit.scheduler_enabled;
ALTER SYSTEM RESET eventkit.naptime;
SELECT pg_reload_conf();
});
is($coord->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Crossing'}),
	'900|900', 'each id of the three days is stored once');

done_testing();
