
# Copyright: eventkit authors
#
# Crash safety of ingest.
#
# A loader psql process ingests many batches, each in its own transaction,
# and prints "ack N" once batch N's COMMIT has returned.  The server is then
# crashed while an ingest is in flight, twice:
#
#  1. "immediate" stop while batch K has been ingested but not committed
#     (the loader is held between its ingest and its COMMIT by an advisory
#     lock the test holds), so batch K must be wholly absent afterwards;
#  2. SIGKILL of the backend that runs the loader's ingests, at no particular
#     point (the postmaster then restarts all processes and recovers).
#
# After each crash: every acknowledged batch is present exactly once, no
# event is present twice, each batch is wholly present or wholly absent, the
# present batches are exactly those acknowledged (plus at most the one in
# flight, whose commit may have happened without the ack reaching us), and
# eventkit.ingest_batches agrees with the stored rows.  Finally all batches
# are sent again: the stored events come back as duplicates, the others as
# accepted, and every messageId ends up stored exactly once.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX qw(strftime);

my $NB  = 2000;    # batches the loaders may send (they are stopped well before)
my $PER = 25;      # events per batch

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'eventkit'");
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

# Event times in the last hour, fixed once so a re-sent batch has exactly the
# same content; received_at fixed too.
my $now  = time();
my $base = strftime('%Y-%m-%d %H:%M:%S+00', gmtime($now - 3600));
my $recv = strftime('%Y-%m-%d %H:%M:%S+00', gmtime($now));

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
-- batch b: events "b<b>-e<i>", i = 1..$PER
CREATE FUNCTION batch_payload(b int) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS \$\$
  SELECT jsonb_agg(jsonb_build_object(
		   'type', 'track',
		   'messageId', 'b' || b || '-e' || i,
		   'userId', 'u' || (i % 17),
		   'event', 'Item Viewed',
		   'properties', jsonb_build_object('batch', b, 'item', i),
		   'timestamp', to_char(('$base'::timestamptz
								 + make_interval(secs => (b * $PER + i) % 3000))
								AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		 ORDER BY i)
	FROM generate_series(1, $PER) AS i
\$\$;
});

# Loader script for batches $from..$to.  With $hold, each transaction takes a
# shared advisory lock between its ingest and its COMMIT, and names its batch
# in that statement so the test can see which batch it is stuck in.
sub loader_script
{
	my ($from, $to, $hold) = @_;
	my $s = "SELECT 'pid', pg_backend_pid();\n";
	for my $bn ($from .. $to)
	{
		$s .= "BEGIN;\n";
		$s .= "SELECT 'res', $bn, r.* FROM eventkit.ingest('ev', batch_payload($bn), '$recv') AS r;\n";
		$s .= "SELECT $bn AS inflight FROM pg_advisory_xact_lock_shared(42);\n"
		  if $hold;
		$s .= "COMMIT;\n";
		$s .= "\\echo ack $bn\n";
	}
	my $file = $PostgreSQL::Test::Utils::tmp_check . "/loader_${from}_${hold}.sql";
	PostgreSQL::Test::Utils::append_to_file($file, $s);
	return $file;
}

sub start_loader
{
	my ($file, $out, $err) = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	return IPC::Run::start(
		[
			'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', 'postgres', '-f', $file
		],
		'<', \undef, '>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

# Wait for a (dead or dying) loader and parse its output.
sub finish_loader
{
	my ($h, $out, $err) = @_;
	eval { $h->finish; };
	note "loader stderr: $$err";
	my (%ack, %res);
	for my $line (split /\n/, $$out)
	{
		$ack{$1} = 1 if $line =~ /^ack (\d+)$/;
		$res{$1} = $2 if $line =~ /^res\|(\d+)\|(.*)$/;
	}
	return (\%ack, \%res);
}

# The state of the stream: for each batch number present, [rows, distinct
# message ids, distinct batch ids].
sub stored_batches
{
	my %st;
	my $r = $node->safe_psql(
		'postgres', q{
SELECT substring(message_id from '^b(\d+)-') AS b, count(*),
	   count(DISTINCT message_id), count(DISTINCT batch_id)
  FROM ev GROUP BY 1 ORDER BY 1});
	for my $line (split /\n/, $r)
	{
		my ($bn, $n, $nd, $nb) = split /\|/, $line;
		$st{$bn} = [ $n, $nd, $nb ];
	}
	return \%st;
}

# Checks common to every point: whole batches, nothing twice, ledger rows
# (eventkit.ingest_batches) agree with the stored rows.  Returns the highest
# batch number present, checking the present ones form a prefix 1..max.
sub check_consistent
{
	my ($label) = @_;
	my $st = stored_batches();
	my @present = sort { $a <=> $b } keys %$st;
	my $max = @present ? $present[-1] : 0;

	my @bad = grep {
		$st->{$_}[0] != $PER || $st->{$_}[1] != $PER || $st->{$_}[2] != 1
	} @present;
	is_deeply(\@bad, [],
		"$label: each batch stored wholly, once, by one ingest call");
	is_deeply(\@present, [ 1 .. $max ],
		"$label: the stored batches are exactly batches 1..$max");

	is( $node->safe_psql(
			'postgres',
			'SELECT count(*) = count(DISTINCT message_id) FROM ev'),
		't',
		"$label: no messageId stored twice");

	# eventkit.ingest_batches agrees with the stream
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*)
  FROM (SELECT * FROM eventkit.ingest_batches
		 WHERE stream_id = (SELECT stream_id FROM eventkit.streams
							 WHERE relid = 'ev'::regclass)) b
  FULL JOIN (SELECT batch_id, count(*) AS n FROM ev GROUP BY 1) e USING (batch_id)
 WHERE b.batch_id IS NULL
	OR b.accepted IS DISTINCT FROM coalesce(e.n, 0)
	OR b.items <> b.accepted + b.duplicates + b.conflicts + b.quarantined + b.rejected}),
		'0',
		"$label: eventkit.ingest_batches agrees with the stored rows");
	is( $node->safe_psql(
			'postgres',
			q{SELECT (SELECT coalesce(sum(accepted), 0) FROM eventkit.ingest_batches)
					 = (SELECT count(*) FROM ev)}),
		't',
		"$label: accepted events in eventkit.ingest_batches = stored rows");
	return $max;
}

#
# Phase 1: crash ("immediate" stop) while batch K is ingested, uncommitted.
#
my ($out1, $err1) = ('', '');
my $h1 = start_loader(loader_script(1, $NB, 1), \$out1, \$err1);

$node->poll_query_until('postgres',
	'SELECT count(*) >= 5 FROM eventkit.ingest_batches')
  or die "loader made no progress: $err1";

my $ctl = $node->background_psql('postgres');
$ctl->query_safe('SELECT pg_advisory_lock(42)');

# The loader gets stuck in the next batch, after its ingest, before COMMIT.
$node->poll_query_until(
	'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
   AND query LIKE '%AS inflight FROM pg_advisory_xact_lock_shared%'})
  or die "loader not blocked: $err1";
my ($k, $has_xid) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT substring(query from 'SELECT (\d+) AS inflight'), backend_xid IS NOT NULL
  FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
   AND query LIKE '%AS inflight FROM pg_advisory_xact_lock_shared%'});
is($has_xid, 't', "in-flight batch $k has written (its transaction has an xid)");

$node->stop('immediate');
$ctl->quit;
my ($ack1, $res1) = finish_loader($h1, \$out1, \$err1);
my @acked1 = sort { $a <=> $b } keys %$ack1;

cmp_ok(scalar(@acked1), '>=', 4, 'several batches acknowledged before the crash');
is_deeply(\@acked1, [ 1 .. $k - 1 ],
	"phase 1: batches 1.." . ($k - 1) . " acknowledged, in-flight batch $k not");
is_deeply([ grep { $res1->{$_} ne "$PER|0|0|0|0" } sort keys %$res1 ],
	[], 'phase 1: every batch reported all events accepted');

$node->start;

my $max1 = check_consistent('after crash 1');
is($max1, $k - 1,
	"after crash 1: acknowledged batches present, in-flight batch $k absent");

#
# Phase 2: the client re-sends from batch K on; SIGKILL the backend running
# the ingests at an arbitrary point.  The postmaster reinitializes.
#
my ($out2, $err2) = ('', '');
my $h2 = start_loader(loader_script($k, $NB, 0), \$out2, \$err2);

# the loader's backend, which runs its ingests
PostgreSQL::Test::Utils::pump_until($h2,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default),
	\$out2, qr/^pid\|\d+$/m)
  or die "loader did not start: $err2";
my ($pid) = $out2 =~ /^pid\|(\d+)$/m;

my $target = $k + 20;
$node->poll_query_until('postgres',
	"SELECT count(*) >= $target FROM eventkit.ingest_batches")
  or die "loader made no progress: $err2";
kill 'KILL', $pid;

my ($ack2, $res2) = finish_loader($h2, \$out2, \$err2);
my @acked2 = sort { $a <=> $b } keys %$ack2;
my $last_ack = @acked2 ? $acked2[-1] : $k - 1;
cmp_ok($last_ack, '>=', $target - 1, 'phase 2: batches acknowledged');
cmp_ok($last_ack, '<', $NB, 'phase 2: the loader was stopped by the crash');
is_deeply(\@acked2, [ $k .. $last_ack ], 'phase 2: acknowledgements in order');
is_deeply([ grep { $res2->{$_} ne "$PER|0|0|0|0" } sort keys %$res2 ],
	[], 'phase 2: every batch reported all events accepted');

# wait for crash recovery to finish
$node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'server did not come back after the backend crash';
ok( $node->log_contains(qr/server process \(PID $pid\) was terminated by signal 9/),
	'the postmaster saw the backend crash');

my $max2 = check_consistent('after crash 2');
ok( $max2 == $last_ack || $max2 == $last_ack + 1,
	"after crash 2: stored batches 1..$max2 = acknowledged batches (1..$last_ack) "
	  . 'plus at most the in-flight one');
note "in-flight batch " . ($last_ack + 1) . ": "
  . ($max2 > $last_ack ? 'committed' : 'not committed');

# The in-flight batch, if present, has its ledger row (checked above in
# check_consistent); if absent, it left no row behind either.
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM eventkit.ingest_batches WHERE accepted > 0'),
	$max2,
	'one eventkit.ingest_batches row per stored batch');

#
# Phase 3: send every batch 1..$max2 + 30 again (in one transaction per
# batch).  Stored events are duplicates, the others accepted.
#
my $resend_to = $max2 + 30;
my $script = '';
$script .=
  "SELECT 'res', $_, r.* FROM eventkit.ingest('ev', batch_payload($_), '$recv') AS r;\n"
  for (1 .. $resend_to);
my $file = $PostgreSQL::Test::Utils::tmp_check . '/resend.sql';
PostgreSQL::Test::Utils::append_to_file($file, $script);
my ($ret, $stdout, $stderr) = $node->psql('postgres', undef,
	extra_params => [ '-q', '-v', 'ON_ERROR_STOP=1', '-f', $file ]);
is($ret, 0, 'resend ran') or diag $stderr;

my @wrong;
my $seen = 0;
for my $line (split /\n/, $stdout)
{
	next unless $line =~ /^res\|(\d+)\|(.*)$/;
	$seen++;
	my $want = $1 <= $max2 ? "0|$PER|0|0|0" : "$PER|0|0|0|0";
	push @wrong, "batch $1: got $2, want $want" if $2 ne $want;
}
is($seen, $resend_to, 'a result for every re-sent batch');
is_deeply(\@wrong, [],
	'resend: duplicates exactly for the stored events, accepted for the rest');

is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT message_id) FROM ev'),
	($resend_to * $PER) . '|' . ($resend_to * $PER),
	'every messageId stored exactly once');
my $max3 = check_consistent('after resend');
is($max3, $resend_to, 'after resend: all batches stored');
is( $node->safe_psql(
		'postgres',
		'SELECT accepted, duplicates, conflicts, quarantined, rejected FROM eventkit.stream_stats'),
	($resend_to * $PER) . '|' . ($max2 * $PER) . '|0|0|0',
	'eventkit.stream_stats totals');

# And once more after a clean restart: the ledger is durable.
$node->restart;
is( $node->safe_psql(
		'postgres',
		"SELECT r.accepted, r.duplicates FROM eventkit.ingest('ev', batch_payload(1), '$recv') AS r"),
	"0|$PER",
	'after restart, batch 1 is still a duplicate');

$node->stop;
done_testing();
