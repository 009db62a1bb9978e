
# Copyright: eventkit authors
#
# The real SDKs against the HTTP intake: @segment/analytics-node and
# @rudderstack/rudder-sdk-node (test/http, pinned in package.json) each send
# track, identify, page, screen, group and alias (test/http/sdk_send.js), and
# the stream holds each event once with the SDK's fields.  Then the failures
# an SDK retries through, each event still stored exactly once:
#
#  1. SIGKILL of the listener while it ingests a request (it waits for a
#     lock): crash recovery, the SDK's retry is stored;
#  2. SIGKILL of another backend (the lock's holder) while the listener
#     ingests: the same, through a crash of the whole server;
#  3. the SDK gives up waiting (its request timeout) while the listener is
#     still ingesting, and retries on another connection (the other
#     listener): both commit, the retry's events are duplicates.
#
# Needs node and test/http/node_modules (test/run_tests.sh installs them):
# under run_tests.sh (EK_HTTP_SDK_REQUIRED=1) their absence is a failure,
# elsewhere a skip.  Polls with deadlines, no fixed sleeps.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitHttp;

my $http_dir = "$FindBin::RealBin/../http";
my $have_sdks = system('node --version >/dev/null 2>&1') == 0
  && -d "$http_dir/node_modules/\@segment/analytics-node"
  && -d "$http_dir/node_modules/\@rudderstack/rudder-sdk-node";
if (!$have_sdks)
{
	plan skip_all => 'node or the SDKs are missing: run "npm ci" in test/http (test/run_tests.sh does)'
	  unless $ENV{EK_HTTP_SDK_REQUIRED};
	fail('node and the SDKs in test/http/node_modules (test/run_tests.sh installs them)');
	done_testing();
	exit 1;
}

my ($node, $port) = http_node('http_sdk', q{
eventkit.http_workers = 2
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
CREATE ROLE sdk_writer;
SELECT eventkit.create_stream('ev');
GRANT INSERT ON ev TO sdk_writer;
});
my $key = $node->safe_psql('postgres', q{SET ROLE sdk_writer; SELECT eventkit.create_write_key('ev', 'SDK tests')});
ok(wait_healthy($port), 'the listeners answer');

# Start an SDK sending the six events of run $run; returns the harness.
sub start_sdk
{
	my ($sdk, $run, @opts) = @_;
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[ 'node', "$http_dir/sdk_send.js", $sdk, "http://127.0.0.1:$port", $key, $run, @opts ],
		'>', \$h{out}, '2>', \$h{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%h;
}

# Wait for it; passes when it says every event was delivered.  Returns the
# number of HTTP requests it sent.
sub finish_sdk
{
	my ($h, $what) = @_;
	my $ok = eval { $h->{run}->finish; 1 } && $h->{run}->result == 0;
	ok($ok, "$what: the SDK delivered every event") or diag("stdout: $h->{out}\nstderr: $h->{err}");
	note($h->{out});
	return $h->{out} =~ /"requests":(\d+)/ ? $1 : 0;
}

# The run's events, each once, with the fields the SDK sent.
sub check_run
{
	my ($run, $what, $library) = @_;
	is( $node->safe_psql(
			'postgres', qq{
SELECT string_agg(format('%s|%s|%s|%s', type, count, ok, lib), ',' ORDER BY type)
  FROM (SELECT type, count(*) AS count,
			   bool_and(user_id = 'u-$run' AND message_id = '$run-' || type AND CASE type
				 WHEN 'track' THEN event = 'Order Completed' AND properties->>'run' = '$run'
								   AND (properties->>'revenue')::numeric = 42.5 AND properties->>'currency' = 'EUR'
				 WHEN 'identify' THEN traits->>'email' = '$run\@example.com' AND traits->>'plan' = 'pro'
				 WHEN 'page' THEN event = 'Home' AND properties->>'path' = '/'
				 WHEN 'screen' THEN event = 'Settings' AND properties->>'run' = '$run'
				 WHEN 'group' THEN traits->>'name' = 'Acme' AND extra->>'groupId' = 'g-$run'
				 WHEN 'alias' THEN extra->>'previousId' = 'anon-$run'
			   END) AS ok,
			   min(context->'library'->>'name') AS lib
		  FROM ev WHERE message_id LIKE '$run-%' GROUP BY type) t}),
		join(',', map { "$_|1|t|$library" } qw(alias group identify page screen track)),
		"$what: each event once, with the SDK's fields");
	return;
}

# A background session that holds a lock the listener's ingest waits for.
sub lock_stream
{
	my $locker = $node->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe('BEGIN; LOCK TABLE ev IN SHARE MODE;');
	return $locker;
}

sub listeners_waiting
{
	my ($n) = @_;
	return $node->poll_query_until('postgres',
		qq{SELECT count(*) >= $n FROM pg_stat_activity
			WHERE backend_type = 'eventkit http' AND wait_event_type = 'Lock'});
}

# ---- both SDKs, every call type
finish_sdk(start_sdk('segment', 'seg1'), 'analytics-node');
check_run('seg1', 'analytics-node', '@segment/analytics-node');
finish_sdk(start_sdk('rudder', 'rud1'), 'rudder-sdk-node');
check_run('rud1', 'rudder-sdk-node', 'analytics-node');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM ev t WHERE strpos(row_to_json(t)::text, '$key') > 0}),
	0, 'the write key (in the envelope and the header) is not stored');
my $pids = listener_pids($node);
like($pids, qr/^\d+,\d+$/, 'two listeners');

# ---- 1. SIGKILL of the listener in the middle of a request
my $locker = lock_stream();
my $sdk = start_sdk('segment', 'seg2', 'retries=20');
ok(listeners_waiting(1), 'kill 1: a listener is ingesting the batch (waiting for a lock)');
my $victim = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventkit http' AND wait_event_type = 'Lock'});
kill 'KILL', $victim;
cmp_ok(finish_sdk($sdk, 'kill 1'), '>=', 2, 'kill 1: the SDK retried');
check_run('seg2', 'kill 1 (listener)', '@segment/analytics-node');
eval { $locker->quit };
ok(wait_healthy($port), 'kill 1: the listeners are back');
isnt(listener_pids($node), $pids, 'kill 1: (new listeners after the crash recovery)');

# ---- 2. SIGKILL of another backend while the listener ingests
$locker = lock_stream();
my $locker_pid = $locker->query_safe('SELECT pg_backend_pid()');
$locker_pid =~ s/\s+//g;
$sdk = start_sdk('rudder', 'rud2', 'retries=10');
ok(listeners_waiting(1), 'kill 2: a listener is ingesting the batch');
kill 'KILL', $locker_pid;
# rudder-sdk-node sends the first event alone, then the five others
cmp_ok(finish_sdk($sdk, 'kill 2'), '>=', 3, 'kill 2: the SDK retried');
check_run('rud2', 'kill 2 (another backend)', 'analytics-node');
eval { $locker->quit };
ok(wait_healthy($port), 'kill 2: the listeners are back');

# ---- 3. the SDK times out while the listener still ingests, and retries
my $mark = $node->safe_psql('postgres', q{SELECT coalesce(max(batch_id), 0) FROM eventkit.ingest_batches});
$locker = lock_stream();
$sdk = start_sdk('segment', 'seg3', 'retries=20', 'timeout=1500');
ok(listeners_waiting(2), 'timeout: the first attempt and the retry both wait in a listener');
$locker->query_safe('ROLLBACK');
$locker->quit;
cmp_ok(finish_sdk($sdk, 'timeout'), '>=', 2, 'timeout: the SDK retried');
check_run('seg3', 'timeout and retry', '@segment/analytics-node');
my ($accepted, $duplicates) = split /\|/, $node->safe_psql('postgres',
	qq{SELECT sum(accepted) || '|' || sum(duplicates) FROM eventkit.ingest_batches WHERE batch_id > $mark});
is($accepted, 6, 'timeout: the events were accepted once');
cmp_ok($duplicates, '>=', 6, 'timeout: the retry found them stored (duplicates)');

# ---- nothing lost, nothing twice
is($node->safe_psql('postgres', q{SELECT count(*) || '/' || count(DISTINCT message_id) FROM ev}),
	'30/30', 'the stream holds the 30 events once each');

$node->stop;
done_testing();
