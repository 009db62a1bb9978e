
# Copyright: eventkit authors
#
# Maintenance's partition DDL against locks held on a worker, and a call
# that writes on two nodes (issue 17).
#
# Citus's ATTACH PARTITION of a distributed stream whose partitions have an
# index (here a rollup's BRIN on batch_id) locks, on every worker at once,
# the stream's shards and index shards of its existing partitions until its
# transaction ends.  Before, eventkit.maintenance_lock_timeout stayed on the
# coordinator (Citus sends a SET LOCAL to the workers only in a transaction
# block, a DO block or a procedure): the maintenance waited on one worker
# for as long as a lock there was held, holding what it had locked on the
# others; and the premake job's re-drive on each worker (a connection of
# its own, after the DDL) waited without a timeout for a worker transaction
# in flight.
#
# 1. A session on worker2 holds SHARE ROW EXCLUSIVE on a shard of the
#    stream.  run_maintenance on the coordinator (which makes the partition
#    a late event waits for) waits on worker2, then gives up after the lock
#    timeout (1 s here) with its premake reported as failed and what it
#    locked released; the lock released, the next run makes the partition.
# 2. A call on worker1 has written worker1's rows and stops (an advisory
#    lock this test holds) before it writes worker2's.  run_maintenance
#    (another late day) ends while the call is held (it took 1.09 s and
#    succeeded once the stream was adopted on both workers: the ATTACH's
#    locks did not conflict with the call's rows, written by the per-shard
#    fast path), and a write on worker2 goes through meanwhile; the call,
#    let go, stores everything (nothing cancelled on a deadlock); the next
#    run and the re-drive store the late events once.  On the 1.17-open
#    library with the stream adopted on worker1 by the held call itself,
#    run_maintenance waited 400 s, until cancelled: its re-drive on worker1
#    waited for the call's adoption, the ATTACH's SHARE ROW EXCLUSIVE on
#    both workers' index shards held meanwhile.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;

citus_skip_unless_installed();

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my @nodes = ($coord, $w1, $w2);

$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
SELECT eventkit.create_rollup('hourly', 'events', '1 hour', ARRAY['event'], ARRAY['count']);
ALTER SYSTEM SET eventkit.maintenance_lock_timeout = 1000;
SELECT pg_reload_conf();
});
my $partitions = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass};
my $parts_before = $coord->safe_psql('postgres', $partitions);
my $today = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"00:30:00"Z"')});

# users whose shards are on worker1, and on worker2
my %on;
for my $row (split /\n/, $coord->safe_psql('postgres', q{
SELECT 'u' || i, p.nodeport
  FROM generate_series(0, 59) i,
	   LATERAL (SELECT nodeport FROM pg_dist_shard_placement
				 WHERE shardid = get_shard_id_for_distribution_column('events', 'u' || i)) p
 ORDER BY i}))
{
	my ($u, $port) = split /\|/, $row;
	push @{ $on{$port} }, $u;
}
my @a = @{ $on{ $w1->port } // [] }[ 0 .. 9 ];
my @b = @{ $on{ $w2->port } // [] }[ 0 .. 9 ];
is(scalar(grep { defined } @a, @b), 20, 'ten users of worker1\'s shards and ten of worker2\'s');
my $batch = sub {
	my ($tag, @users) = @_;
	return '[' . join(',',
		map { qq{{"type":"track","messageId":"$tag-$_","userId":"$_","event":"E","timestamp":"$today"}} } @users)
	  . ']';
};

# each worker has taken a batch (the stream adopted there)
is($w1->safe_psql('postgres', q{SELECT accepted FROM eventkit.ingest('events', '} . $batch->('pre', $a[1]) . q{')}),
	'1', 'a batch through worker1');
is($w2->safe_psql('postgres', q{SELECT accepted FROM eventkit.ingest('events', '} . $batch->('pre', $b[1]) . q{')}),
	'1', 'a batch through worker2');

my $late_event = sub {
	my ($id, $days) = @_;
	my $ts = $coord->safe_psql('postgres',
		qq{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '$days days', 'YYYY-MM-DD"T"12:00:00"Z"')});
	return $coord->safe_psql(
		'postgres',
		qq{SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '{"type":"track","messageId":"$id","userId":"u0","event":"Late","timestamp":"$ts"}')});
};

# --- 1. a lock held on worker2 ------------------------------------------------------
is($late_event->('late1', 10), '0|1', 'a late event waits in quarantine');
my $w2shard = $coord->safe_psql('postgres', sprintf(q{
SELECT 'public.events_' || s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
  JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'events'::regclass AND n.nodeport = %d ORDER BY s.shardid LIMIT 1}, $w2->port));
my $locker = $w2->background_psql('postgres');
$locker->query_safe("SET citus.enable_manual_changes_to_shards = on; BEGIN; LOCK TABLE $w2shard IN SHARE ROW EXCLUSIVE MODE");
my $mout = '';
my $mstart = time();
my $mcall = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
	  '-d', 'postgres', '-c', q{SELECT eventkit.run_maintenance('events')} ],
	'>', \$mout, '2>', \$mout);
my $waits_held = sprintf(q{
SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = '%s'::regclass}, $w2shard);
my $seen_wait = 0;
ok( poll_until(
		sub {
			$mcall->pump_nb;
			$seen_wait ||= $w2->safe_psql('postgres', $waits_held) eq 't';
			return !$mcall->pumpable;
		}),
	'run_maintenance ended while the lock on worker2 is held');
$mcall->finish;
ok($seen_wait, '... after waiting for it on worker2');
note(sprintf('run_maintenance ended after %.2f s: %s', time() - $mstart, $mout =~ s/\s+$//r));
like($mout, qr/partitions of distributed stream .*events not made: a lock was not granted within eventkit.maintenance_lock_timeout \(1000 ms\)/,
	'its premake failed on the lock timeout, saying so');
is($coord->safe_psql('postgres', $partitions), $parts_before, 'no partition made');
is($w2->safe_psql('postgres', $waits_held), 'f', 'nothing waits on worker2 any more');
$locker->query_safe('COMMIT');
$locker->quit;
is(psql_err($coord, q{SELECT eventkit.run_maintenance('events')}), '', 'the lock released, the next run_maintenance succeeds');
is($coord->safe_psql('postgres', $partitions), $parts_before + 1, '... and makes the late day\'s partition');
$parts_before++;

# --- 2. a call writing on two nodes in flight ----------------------------------------
is($late_event->('late2', 11), '0|1', 'another late event waits in quarantine');

# a call on worker1 has written worker1's rows and waits
my $holder = $w1->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(6501)');
my $wscript = $w1->basedir . '/two_nodes.sql';
open(my $fh, '>', $wscript) or die "$wscript: $!";
print $fh "BEGIN;\n";
print $fh "SELECT 'first', accepted FROM eventkit.ingest('events', '" . $batch->('a', @a) . "'::jsonb);\n";
print $fh "SELECT 'waiting' AS w_inflight FROM pg_advisory_xact_lock_shared(6501);\n";
print $fh "SELECT 'second', accepted FROM eventkit.ingest('events', '" . $batch->('b', @b) . "'::jsonb);\n";
print $fh "COMMIT;\n";
close $fh;
my $wout = '';
my $wcall = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $w1->host, '-p', $w1->port,
	  '-d', 'postgres', '-f', $wscript ],
	'>', \$wout, '2>', \$wout);
ok( $w1->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%AS w_inflight%'}),
	'the call has written worker1\'s rows and waits before writing worker2\'s');

$mout = '';
$mstart = time();
$mcall = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
	  '-d', 'postgres', '-c', q{SELECT eventkit.run_maintenance('events')} ],
	'>', \$mout, '2>', \$mout);
my $holds_w2 = q{
SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'relation' AND mode = 'ShareRowExclusiveLock'};
ok( poll_until(
		sub {
			$mcall->pump_nb;
			return !$mcall->pumpable;
		}),
	'run_maintenance ended while the call still holds worker1');
$mcall->finish;
note(sprintf('run_maintenance ended after %.2f s: %s', time() - $mstart, $mout =~ s/\s+$//r));
is($w2->safe_psql('postgres', $holds_w2), 'f', 'it holds nothing on worker2 any more');
is( $coord->safe_psql('postgres', q{
SELECT concat_ws(',', accepted, quarantined) FROM eventkit.ingest('events', '} . $batch->('probe', $b[0]) . q{')}),
	'1,0', 'a call writing worker2 goes through while the two-node call still holds worker1');

# the call goes on; the next maintenance makes the partition
$holder->query_safe('SELECT pg_advisory_unlock(6501)');
$holder->quit;
$wcall->finish;
is($wout =~ s/\s+$//r, "BEGIN\nfirst|10\nwaiting\nsecond|10\nCOMMIT", 'the two-node call stored all its events');
unlike("$wout\n$mout", qr/deadlock/, 'nothing was cancelled on a deadlock');

is(psql_err($coord, q{SELECT eventkit.run_maintenance('events')}), '', 'the next run_maintenance succeeds');
is($coord->safe_psql('postgres', $partitions), $parts_before + 1, '... and the late days\' partitions are there');
$coord->safe_psql('postgres', q{SELECT eventkit.redrive_quarantine('events')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events}),
	'25|25', 'every id stored exactly once, the late events among them');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... none left in quarantine');

$_->stop for @nodes;
done_testing();
