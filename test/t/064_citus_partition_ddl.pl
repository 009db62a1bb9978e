
# Copyright: eventkit authors
#
# No partition DDL inside an ingest call of a distributed stream (issue 17).
#
# Citus's ATTACH PARTITION of a distributed stream whose partitions have an
# index (here a rollup's BRIN on batch_id) locks index shards of existing
# partitions on the workers in SHARE ROW EXCLUSIVE mode until its
# transaction ends.  A coordinator call that made a partition for a late
# event inside its own transaction and then claimed an id that a worker's
# call in flight had claimed waited for that call, which waited to write
# its rows under the lock: a distributed deadlock, one call cancelled.
#
# 1. A worker's transaction claims id X (one call, today's event) and stops
#    on an advisory lock this test holds, before its second call (events of
#    today on every shard) and its COMMIT.  A coordinator call sends a late
#    event (a day without a partition) and X; it waits (for the worker's
#    claim of X).  The lock released, both calls succeed: the worker's
#    stores its events, the coordinator's counts X as a duplicate and
#    leaves the late event in quarantine, out_of_range, with the reason
#    that maintenance makes a distributed stream's partitions; the call
#    made no partition.  (With the library of main 4cf11c5, where the
#    coordinator's call made the partition, that call was cancelled
#    "since it was involved in a distributed deadlock", waiting on worker1
#    for the worker transaction's claim of X.)
# 2. run_maintenance on the coordinator makes the late day's partition in
#    a transaction of its own, and the re-drive stores the late event
#    exactly once; nothing lost or doubled, the quarantine empty.
# 3. With the scheduler on (and sleeping an hour between passes unless
#    woken), a coordinator call's late event is stored without anyone
#    running maintenance: the call wakes the premake job when it commits,
#    the premake job makes the redrive job due.
# 4. A worker's call's late event is stored within seconds too: the
#    coordinator's scheduler looks at the workers' quarantines every
#    eventkit.worker_quarantine_poll (the worker's call cannot wake it).
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
});
my $partitions = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass};
my $parts_before = $coord->safe_psql('postgres', $partitions);
my $today = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"00:30:00"Z"')});
my $late = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days', 'YYYY-MM-DD"T"12:00:00"Z"')});

my $x = qq{{"type":"track","messageId":"x","userId":"u1","event":"X","timestamp":"$today"}};
my $many = '[' . join(',',
	map { qq{{"type":"track","messageId":"w-$_","userId":"u$_","event":"W","timestamp":"$today"}} } 0 .. 39)
  . ']';

# --- 1. a worker's claim in flight, a coordinator call with a late event ----------
my $holder = $w1->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(6301)');
my $wscript = $w1->basedir . '/worker_call.sql';
open(my $fh, '>', $wscript) or die "$wscript: $!";
print $fh "BEGIN;\n";
print $fh "SELECT 'first', accepted FROM eventkit.ingest('events', '[$x]'::jsonb);\n";
print $fh "SELECT 'waiting' AS w_inflight FROM pg_advisory_xact_lock_shared(6301);\n";
print $fh "SELECT 'second', accepted FROM eventkit.ingest('events', '$many'::jsonb);\n";
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
	'the worker\'s transaction has claimed x and waits before its second call');

my $cout = '';
my $ccall = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
	  '-d', 'postgres', '-c',
	  qq{SELECT 'coordinator', accepted, duplicates, quarantined FROM eventkit.ingest('events', '[{"type":"track","messageId":"late","userId":"u2","event":"Late","timestamp":"$late"},$x]'::jsonb)} ],
	'>', \$cout, '2>', \$cout);
# the coordinator's call waits on some node for a lock the worker's
# transaction holds (its claim of x; before, also its row's index shard)
my $waits = q{SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND locktype <> 'advisory'};
ok( poll_until(
		sub {
			$ccall->pump_nb;
			return 1 if !$ccall->pumpable;
			return scalar grep { $_->safe_psql('postgres', $waits) eq 't' } @nodes;
		}),
	'the coordinator\'s call waits for the worker\'s transaction (or has ended)');
note('locks waited for: '
	  . join('; ',
		map { $_->name . ': ' . $_->safe_psql('postgres',
			q{SELECT string_agg(locktype || ' ' || mode || coalesce(' ' || relation::regclass::text, ''), ', ') FROM pg_locks WHERE NOT granted}) } @nodes));
$holder->query_safe('SELECT pg_advisory_unlock(6301)');
$holder->quit;
$wcall->finish;
$ccall->finish;

is($wout =~ s/\s+$//r, "BEGIN\nfirst|1\nwaiting\nsecond|40\nCOMMIT", 'the worker\'s transaction stored all its events');
is($cout =~ s/\s+$//r, 'coordinator|0|1|1',
	'the coordinator\'s call succeeded: x a duplicate, the late event quarantined');
unlike("$wout\n$cout", qr/deadlock/, 'no call was cancelled on a deadlock');
is($coord->safe_psql('postgres', $partitions), $parts_before, 'the call made no partition');
like( $coord->safe_psql(
		'postgres', q{SELECT string_agg(r->>'reason' || ': ' || (r->>'message'), ';') FROM eventkit.quarantine, jsonb_array_elements(reasons) r}),
	qr/^out_of_range: .*the partitions of a distributed stream are made by maintenance on the Citus coordinator/,
	'the late event waits in quarantine, out_of_range, saying that maintenance makes the partition');

# --- 2. maintenance makes the partition, the re-drive stores the event ------------
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
is($coord->safe_psql('postgres', $partitions), $parts_before + 1, 'run_maintenance made the late day\'s partition');
$coord->safe_psql('postgres', q{SELECT eventkit.redrive_quarantine('events')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events}),
	'42|42', 'every id stored exactly once after the re-drive');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id = 'late'}),
	'1', '... the late event among them');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... and none left in quarantine');

# --- 3. the scheduler: the call wakes the premake job, which wakes the redrive -----
$coord->append_conf('postgresql.conf', "eventkit.scheduler_enabled = on\n");
$coord->reload;
ok( $coord->poll_query_until(
		'postgres', q{SELECT pid IS NOT NULL FROM eventkit.scheduler_status()}),
	'the coordinator\'s scheduler runs');
# the jobs have run once at start; their next run is an hour away
ok( $coord->poll_query_until(
		'postgres', q{
SELECT bool_and(next_run_at > now() + interval '10 minutes') FROM eventkit.jobs
 WHERE kind IN ('premake', 'redrive') AND stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass)}),
	'the premake and redrive jobs are not due for an hour') or diag($coord->safe_psql('postgres', 'SELECT * FROM eventkit.jobs'));
# from now on the scheduler sleeps an hour between passes unless woken
$coord->append_conf('postgresql.conf', "eventkit.naptime = 3600\n");
$coord->reload;
my $later = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '12 days', 'YYYY-MM-DD"T"12:00:00"Z"')});
is( $coord->safe_psql(
		'postgres',
		qq{SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '{"type":"track","messageId":"late2","userId":"u3","event":"Late","timestamp":"$later"}')}),
	'0|1', 'a late event through the coordinator waits in quarantine');
ok( $coord->poll_query_until(
		'postgres', q{SELECT count(*) = 1 FROM events WHERE message_id = 'late2'}),
	'the premake job, woken by the call, made its partition and the redrive job stored it')
  or diag($coord->safe_psql('postgres', 'SELECT kind, status, message FROM eventkit.job_runs ORDER BY run_id'));
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... none left in quarantine');
note('job runs after the call (kind, status, start and end in seconds after the call\'s commit): '
	  . $coord->safe_psql(
		'postgres', q{
SELECT string_agg(kind || ' ' || status || ' ' || round(extract(epoch FROM started_at - c.t)::numeric, 2)
				  || ' ' || round(extract(epoch FROM ended_at - c.t)::numeric, 2), '; ' ORDER BY run_id)
  FROM eventkit.job_runs, (SELECT max(received_at) AS t FROM eventkit.ingest_batches) c
 WHERE started_at >= c.t}));

# --- 4. a worker's late event: the coordinator's scheduler looks at the workers -----
# (the worker's call cannot wake it; it asks the workers every
# eventkit.worker_quarantine_poll, 2 s by default, while it sleeps an hour)
my $later3 = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '13 days', 'YYYY-MM-DD"T"12:00:00"Z"')});
my $sent = time();
is( $w1->safe_psql(
		'postgres',
		qq{SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', '{"type":"track","messageId":"late3","userId":"u5","event":"Late","timestamp":"$later3"}')}),
	'0|1', 'a late event through a worker waits in the worker\'s quarantine');
my $stored = poll_until(
	sub {
		return $coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id = 'late3'}) eq '1';
	});
my $secs = time() - $sent;
ok($stored, 'the coordinator\'s scheduler saw it, the premake job made its partition, the redrive job stored it')
  or diag($coord->safe_psql('postgres', 'SELECT kind, status, message FROM eventkit.job_runs ORDER BY run_id'));
note(sprintf('the worker\'s late event was stored %.2f s after its call', $secs));
ok($secs < 30, 'within seconds, not at the jobs\' next run an hour away');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id = 'late3'}), '1', '... exactly once');
is($w1->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... none left in the worker\'s quarantine');

$_->stop for @nodes;
done_testing();
