
# Copyright: eventkit authors
#
# The scheduler in a database made read-only (default_transaction_read_only
# on, as managed services do when the disk fills up): it stays up, starts
# no job, says 'read-only' in scheduler_status() and health() warns; once
# the setting is reset, jobs run again.  The same when the scheduler's own
# session started read-only (the setting was on at the database level when
# it connected).  Before, every pass failed on its first UPDATE and the
# launcher restarted it at once, thousands of times a minute.
#
# Every wait polls with a deadline (poll_query_until); no fixed sleeps.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitTest;

my $node = PostgreSQL::Test::Cluster->new('read_only');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
});

sub poll { poll_jobs($node, 'app', @_) }

sub state_is { "SELECT state = '$_[0]' FROM eventkit.scheduler_status()" }
poll("SELECT pid IS NOT NULL AND state = 'running' FROM eventkit.scheduler_status()",
	'the scheduler runs');

# two more passes of the scheduler after now
sub two_passes
{
	my ($what) = @_;
	my $t0 = $node->safe_psql('app', 'SELECT clock_timestamp()');
	poll("SELECT last_loop_at > '$t0'::timestamptz + interval '1.5 s' FROM eventkit.scheduler_status()",
		"$what: the scheduler made two more passes");
}

sub runs { $node->safe_psql('app', 'SELECT count(*) FROM eventkit.job_runs') }

# ---- the database is made read-only while the scheduler runs
my $pid = $node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()');
$node->safe_psql('postgres', 'ALTER DATABASE app SET default_transaction_read_only = on');
poll(state_is('read-only'), 'scheduler_status() says read-only');
my $runs = runs();
$node->safe_psql('app',
	"BEGIN READ WRITE; UPDATE eventkit.jobs SET next_run_at = now(); COMMIT;");
two_passes('read-only');
is($node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()'), $pid,
	'the same scheduler: it did not fail and restart');
is(runs(), $runs, 'no job ran while the database is read-only, though all were due');
is($node->safe_psql('app',
		"SELECT status || ': ' || detail FROM eventkit.health() WHERE component = 'scheduler'"),
	'warning: the database is read-only (default_transaction_read_only): no job runs until it is writable',
	'health() warns');
ok($node->log_contains('database "app" is read-only, no job runs until it is writable'),
	'the change is logged');

# ---- a scheduler that connects while the database is read-only
$node->safe_psql('app', "SELECT pg_terminate_backend($pid)");
poll("SELECT pid IS NOT NULL AND pid <> $pid AND state = 'read-only' FROM eventkit.scheduler_status()",
	'a new scheduler, connected read-only, says read-only');
$pid = $node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()');
two_passes('connected read-only');
is($node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()'), $pid,
	'it stays up');
is(runs(), $runs, 'and runs no job');

# ---- writable again: the same scheduler runs the due jobs
$node->safe_psql('postgres', 'ALTER DATABASE app RESET default_transaction_read_only');
poll(state_is('running'), 'scheduler_status() says running again');
poll("SELECT count(*) > $runs FROM eventkit.job_runs WHERE status = 'succeeded'",
	'the due jobs ran and succeeded');
is($node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()'), $pid,
	'in the scheduler that had connected read-only');
ok($node->log_contains('database "app" is writable again, jobs run'), 'the change is logged');

# ---- read-only from the configuration file, after a reload
$node->append_conf('postgresql.conf', "default_transaction_read_only = on\n");
$node->reload;
poll(state_is('read-only'), 'read-only from postgresql.conf after a reload');
$node->adjust_conf('postgresql.conf', 'default_transaction_read_only', 'off');
$node->reload;
poll(state_is('running'), 'and running again after it is turned off');
is($node->safe_psql('app', 'SELECT pid FROM eventkit.scheduler_status()'), $pid,
	'the same scheduler throughout');

$node->stop;
done_testing();
