
# Copyright: eventkit authors
#
# forget_user on the coordinator while a worker's call for the user is in
# flight (issue 17).
#
# A transaction on worker1 ingests the user's first event (with an
# anonymousId: a link, sent to the coordinator's graph too), a late event
# of the user (quarantined on worker1, out_of_range) and an event whose id
# it then re-sends with other content (a conflict on worker1), and stops on
# an advisory lock this test holds, before its last call (another event of
# the user) and its COMMIT.  forget_user('events', 'ufor') on the
# coordinator runs meanwhile.  identity.md (Erasure): forget_user locks the
# stream against ingest (SHARE ROW EXCLUSIVE, which Citus takes on every
# node): in-flight ingests finish first, new ones wait.  So forget_user
# waits for the worker's transaction, then erases everything it stored:
# afterwards no trace of the user in the stream, the distributed ledger,
# the quarantine, conflicts and identity links of every node; its ids are
# suppressed on every node, and a re-send through the worker is rejected,
# suppressed.  Another user's events are untouched.
#
# What it found: forget_user read the user's set with its statement's
# snapshot, taken before it waited for the worker's transaction, and so
# missed the link that transaction made (anon-f to ufor): anon-f was
# suppressed nowhere (1 id suppressed on each node instead of 2).  It now
# reads with a snapshot taken once it holds its locks.
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
my $today = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"00:30:00"Z"')});
my $late = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days', 'YYYY-MM-DD"T"12:00:00"Z"')});
my $ev = sub {
	my ($id, $user, $ts, $event, $anon) = @_;
	my $a = defined $anon ? ',"anonymousId":"' . $anon . '"' : '';
	return '{"type":"track","messageId":"' . $id . '","userId":"' . $user . '"' . $a
	  . ',"event":"' . $event . '","timestamp":"' . $ts . '"}';
};

# the stream adopted on worker1, another user's event there
is($w1->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('events', '[" . $ev->('o1', 'other', $today, 'E') . "]')"),
	'1', 'another user\'s event through worker1');

my $holder = $w1->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(6701)');
my $wscript = $w1->basedir . '/inflight.sql';
open(my $fh, '>', $wscript) or die "$wscript: $!";
print $fh "BEGIN;\n";
print $fh "SELECT 'first', accepted, quarantined FROM eventkit.ingest('events', '["
  . join(',', $ev->('f1', 'ufor', $today, 'E', 'anon-f'), $ev->('f2', 'ufor', $late, 'Late'), $ev->('f3', 'ufor', $today, 'E'))
  . "]'::jsonb);\n";
print $fh "SELECT 'conflict', conflicts FROM eventkit.ingest('events', '[" . $ev->('f3', 'ufor', $today, 'Other') . "]'::jsonb);\n";
print $fh "SELECT 'waiting' AS w_inflight FROM pg_advisory_xact_lock_shared(6701);\n";
print $fh "SELECT 'last', accepted FROM eventkit.ingest('events', '[" . $ev->('f4', 'ufor', $today, 'E') . "]'::jsonb);\n";
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
	'the worker\'s transaction has ingested the user\'s events and waits before its last call');

my $fout = '';
my $fcall = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
	  '-d', 'postgres', '-c', q{SELECT 'forgot', eventkit.forget_user('events', 'ufor')} ],
	'>', \$fout, '2>', \$fout);
my $waits = q{SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND locktype <> 'advisory'};
ok( poll_until(
		sub {
			$fcall->pump_nb;
			return 1 if !$fcall->pumpable;
			return scalar grep { $_->safe_psql('postgres', $waits) eq 't' } @nodes;
		}),
	'forget_user waits (or has ended)');
note('locks waited for: '
	  . join('; ',
		map { $_->name . ': ' . $_->safe_psql('postgres',
			q{SELECT string_agg(locktype || ' ' || mode || coalesce(' ' || relation::regclass::text, ''), ', ') FROM pg_locks WHERE NOT granted}) } @nodes));
$holder->query_safe('SELECT pg_advisory_unlock(6701)');
$holder->quit;
$wcall->finish;
$fcall->finish;
note("worker's transaction: $wout");
note("forget_user: $fout");

is($wout =~ s/\s+$//r, "BEGIN\nfirst|2|1\nconflict|1\nwaiting\nlast|1\nCOMMIT",
	'the worker\'s transaction committed all its calls');
like($fout, qr/^forgot\|\d+$/m, 'forget_user succeeded');
unlike("$wout\n$fout", qr/deadlock/, 'nothing was cancelled on a deadlock');

# no trace of the user anywhere
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE user_id = 'ufor' OR anonymous_id = 'anon-f'}),
	'0', 'none of the user\'s events in the stream');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events}), '1', '... the other user\'s event kept');
my $ledger = $coord->safe_psql('postgres',
	q{SELECT 'eventkit_ledgers.dist_ledger_' || stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
is($coord->safe_psql('postgres', "SELECT count(*) FROM $ledger WHERE user_key IN ('ufor', 'anon-f')"),
	'0', 'none of its ids in the distributed ledger');
for my $node (@nodes)
{
	my $name = $node->name;
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT count(*) FROM eventkit.quarantine WHERE payload::text LIKE '%ufor%')
	|| '|' || (SELECT count(*) FROM eventkit.conflicts WHERE message_id LIKE 'f%')
	|| '|' || (SELECT count(*) FROM eventkit.identity_links WHERE 'ufor' IN (id, canonical_id) OR 'anon-f' IN (id, canonical_id))}),
		'0|0|0', "$name: no quarantine, conflicts or identity links of the user");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.suppressions WHERE id IN ('ufor', 'anon-f')}),
		'2', "$name: both ids suppressed");
}
is( $w1->safe_psql('postgres',
		"SELECT concat_ws(',', accepted, rejected) FROM eventkit.ingest('events', '[" . $ev->('f5', 'ufor', $today, 'E') . "]')"),
	'0,1', 'a later event of the user through worker1 is rejected');

$_->stop for @nodes;
done_testing();
