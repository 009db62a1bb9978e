
# Copyright: eventkit authors
#
# Two replays of a distributed stream's quarantine at once (issue 17).
#
# Both workers keep copies of the same late events in crossing orders (a
# client's retries through two nodes): worker1 quarantined [A] then [B],
# worker2 [B] then [A], each its own batch.  Once their partition exists,
# redrive_quarantine by hand on worker1 and on worker2 at once replays each
# worker's copies in its own order, two batches in one transaction: worker1
# claims A then B, worker2 B then A.  To make them cross every time, a
# coordinator transaction holds claims of A and B (an ingest of the same
# events, not committed) while both replays start; it rolls back.
#
# Before, both replays waited for it, each took its first id and waited
# for the other's: a distributed deadlock, one replay cancelled.  Now a
# replay of a distributed stream first takes SHARE UPDATE EXCLUSIVE on the
# stream's distributed ledger on every node (LOCK TABLE, which Citus takes
# on every node in one order): the second replay waits for the first, both
# succeed, each id is stored once, both quarantines are empty.
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

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my @nodes = ($coord, $w1, $w2);

$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
});
my $late = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days', 'YYYY-MM-DD"T"12:00:00"Z"')});
my %ev = map { $_ => qq{{"type":"track","messageId":"r$_","userId":"u$_","event":"E","timestamp":"$late"}} } qw(a b);

is($w1->safe_psql('postgres', "SELECT quarantined FROM eventkit.ingest('events', '[$ev{a}]')"), '1', 'worker1: A waits');
is($w1->safe_psql('postgres', "SELECT quarantined FROM eventkit.ingest('events', '[$ev{b}]')"), '1', 'worker1: then B');
is($w2->safe_psql('postgres', "SELECT quarantined FROM eventkit.ingest('events', '[$ev{b}]')"), '1', 'worker2: B waits');
is($w2->safe_psql('postgres', "SELECT quarantined FROM eventkit.ingest('events', '[$ev{a}]')"), '1', 'worker2: then A');

# the partition; the workers' events stay in their quarantines
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
is( $coord->safe_psql('postgres',
		q{SELECT count(*) FROM eventkit.worker_quarantine('events')}),
	'4', 'the partition made, four copies wait on the workers');

# a coordinator transaction holds claims of A and B
my $holder = $coord->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT accepted FROM eventkit.ingest('events', '[$ev{a},$ev{b}]')");

my %out = (w1 => '', w2 => '');
my %run;
for my $pair ([ 'w1', $w1 ], [ 'w2', $w2 ])
{
	my ($name, $node) = @$pair;
	$run{$name} = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		  '-d', 'postgres', '-c', q{SELECT replayed FROM eventkit.redrive_quarantine('events')} ],
		'>', \$out{$name}, '2>', \$out{$name});
}
my $waiting = q{SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype <> 'advisory'};
ok( poll_until(
		sub {
			my $n = 0;
			$n += $_->safe_psql('postgres', $waiting) for @nodes;
			return $n >= 2;
		}),
	'both replays wait');
note('locks waited for: '
	  . join('; ',
		map { $_->name . ': ' . $_->safe_psql('postgres',
			q{SELECT string_agg(locktype || ' ' || mode || coalesce(' ' || relation::regclass::text, ''), ', ') FROM pg_locks WHERE NOT granted}) } @nodes));
$holder->query_safe('ROLLBACK');
$holder->quit;
$run{$_}->finish for qw(w1 w2);

is($out{w1} =~ s/\s+$//r, '2', 'worker1\'s replay succeeded, both its events replayed');
is($out{w2} =~ s/\s+$//r, '2', 'worker2\'s replay succeeded, both its events replayed');
unlike("$out{w1}\n$out{w2}", qr/deadlock/, 'no replay was cancelled on a deadlock');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events}),
	'2|2', 'A and B stored once each');
is($_->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0',
	$_->name . '\'s quarantine is empty')
  for ($w1, $w2);

$_->stop for @nodes;
done_testing();
