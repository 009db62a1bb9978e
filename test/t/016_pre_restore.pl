
# Copyright: eventkit authors
#
# eventkit.pre_restore() / eventkit.post_restore() keep the scheduler out
# of a database while a dump is restored into it, with the scheduler on.
# The dump's jobs are all due (a stream, a rollup refreshed every second)
# and its restore takes a few seconds (a table whose CHECK sleeps per row).
# It is restored with pg_restore
#
#  - into a new database where eventkit.restoring was set at the database
#    level first (what pre_restore() sets; the dump creates the extension);
#  - into a database that has eventkit, after eventkit.pre_restore().
#
# No job runs during the restore (no run recorded, the restored job rows
# untouched, no job failure logged); after post_restore() the jobs run
# again.  The setting holds across a restart; only superusers may call the
# functions.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitTest;

my $node = PostgreSQL::Test::Cluster->new('prerestore');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
});
$node->start;

sub sql { $node->safe_psql(@_) }

sql('postgres', 'CREATE DATABASE src');
sql(
	'src', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev', partition_interval => '1 minute', premake => 2,
							  retention => '1 hour');
SELECT eventkit.ingest('ev', jsonb_build_array(
  jsonb_build_object('type', 'track', 'messageId', 'a', 'userId', 'u', 'event', 'A'),
  jsonb_build_object('type', 'track', 'messageId', 'b', 'userId', 'u', 'event', 'B')));
SELECT eventkit.create_rollup('r', 'ev', '1 hour', '{event}', '{count}');
SELECT eventkit.set_rollup_schedule('r', '1 second');
CREATE FUNCTION slow_check(i int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.01); RETURN true; END $$;
CREATE TABLE zz_slow (i int CHECK (slow_check(i)));
});
sql('src', 'INSERT INTO zz_slow SELECT generate_series(1, 300)');
poll_jobs($node, 'src', q{SELECT count(DISTINCT kind) = 5 FROM eventkit.job_runs
  WHERE status = 'succeeded'}, 'the source database runs its jobs');

# With the scheduler off, every job made due, then dumped: the dump's jobs
# are all due, as in a dump of a live database.
sub scheduler_enabled
{
	my ($on) = @_;
	sql('postgres', "ALTER SYSTEM SET eventkit.scheduler_enabled = $on");
	$node->reload;
	$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
  WHERE backend_type IN ('eventkit scheduler', 'eventkit job worker')})
	  or die 'the scheduler still runs'
	  if $on eq 'off';
	return;
}
scheduler_enabled('off');
sql('src', q{UPDATE eventkit.jobs SET next_run_at = now() - interval '1 hour'});
my $dir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'src', '-f', "$dir/src.dump" ], 'pg_dump');
my $jobs = q{SELECT job_id, kind, target, next_run_at, last_run_at, last_status, failures
  FROM eventkit.jobs ORDER BY job_id};
my $src_jobs = sql('src', $jobs);
sql('src', q{UPDATE eventkit.jobs SET enabled = false});
scheduler_enabled('on');

like($src_jobs, qr/refresh_rollup/, 'the dump has the jobs, the rollup refresh among them');

# Restore into $db with pg_restore (@opts), then check that no job ran.
sub restore_and_check
{
	my ($db, $how, @opts) = @_;
	my $log_offset = -s $node->logfile;
	my $t0 = sql($db, 'SELECT clock_timestamp()');
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'pg_restore', @opts, '-d', $node->connstr($db), "$dir/src.dump" ],
		'>', \$stdout, '2>', \$stderr);
	my $t1 = sql($db, 'SELECT clock_timestamp()');
	cmp_ok(sql($db, qq{SELECT extract(epoch FROM '$t1'::timestamptz - '$t0')}), '>', 2,
		"$how: the restore took a few seconds (time for the scheduler to run jobs)");
	is(sql($db, q{SELECT state FROM eventkit.scheduler_status()}), 'restoring',
		"$how: the scheduler idles while the database is restored");
	is(sql($db, $jobs), $src_jobs, "$how: no job ran: the restored jobs are as in the dump");
	is(sql($db, qq{SELECT count(*) FROM eventkit.job_runs WHERE started_at >= '$t0'}),
		'0', "$how: no run recorded during the restore");
	unlike(slurp_file($node->logfile, $log_offset), qr/eventkit job \d+ .* failed/,
		"$how: no job failed during the restore");
	is(sql($db, 'SELECT sum(count) FROM r'), '2', "$how: the rollup is restored");
	return ($ok, $stderr, $t1);
}

# After post_restore(), every job runs again.
sub post_restore_and_check
{
	my ($db, $how, $t1) = @_;
	sql($db, 'SELECT eventkit.post_restore()');
	is(sql($db, 'SHOW eventkit.restoring'), 'off', "$how: post_restore() resets eventkit.restoring");
	poll_jobs($node, $db, qq{SELECT count(DISTINCT kind) = 5 FROM eventkit.job_runs
  WHERE started_at > '$t1' AND status = 'succeeded'}, "$how: after post_restore() every job runs");
	is(sql($db, q{SELECT state FROM eventkit.scheduler_status()}), 'running',
		"$how: the scheduler is running");
	sql($db, q{SELECT eventkit.ingest('ev', '{"type": "track", "messageId": "c", "userId": "u", "event": "A"}')});
	poll_jobs($node, $db, q{SELECT sum(count) = 3 FROM r}, "$how: the restored rollup is refreshed");
	return;
}

# ---- into a new database: eventkit.restoring set at the database level
# first (what pre_restore() sets), then pg_restore creates the extension
sql('postgres', 'CREATE DATABASE dst_new');
sql('dst_new', 'ALTER DATABASE dst_new SET eventkit.restoring = on');
my ($ok, $stderr, $t1) = restore_and_check('dst_new', 'new database', '--exit-on-error');
ok($ok, 'new database: pg_restore succeeds') or diag($stderr);
post_restore_and_check('dst_new', 'new database', $t1);

# ---- into a database that has eventkit: pre_restore() (the dump's CREATE
# SCHEMA eventkit is then the one statement that fails)
sql('postgres', 'CREATE DATABASE dst');
sql('dst', 'CREATE EXTENSION eventkit; SELECT eventkit.pre_restore()');
is(sql('dst', 'SHOW eventkit.restoring'), 'on', 'pre_restore() sets eventkit.restoring for the database');
poll_jobs($node, 'dst', q{SELECT state = 'restoring' FROM eventkit.scheduler_status()},
	'the scheduler of the database idles');
($ok, $stderr, $t1) = restore_and_check('dst', 'pre_restore()');
like($stderr, qr/schema "eventkit" already exists/, 'pre_restore(): pg_restore reports the existing schema');
like($stderr, qr/errors ignored on restore: 1$/m, 'and nothing else');
post_restore_and_check('dst', 'pre_restore()', $t1);

# ---- the setting outlives a restart; pre_restore() stops running jobs
sql('dst', q{UPDATE eventkit.jobs SET next_run_at = now() + interval '1 hour'});
sql('dst', 'SELECT eventkit.pre_restore()');
$node->restart;
poll_jobs($node, 'dst', q{SELECT state = 'restoring' FROM eventkit.scheduler_status()},
	'after a restart the scheduler still idles');
my $t2 = sql('dst', 'SELECT clock_timestamp()');
sql('dst', q{UPDATE eventkit.jobs SET next_run_at = now()});
# a few scheduler loops
$node->poll_query_until('dst', qq{SELECT last_loop_at > '$t2'::timestamptz + interval '2 seconds'
  FROM eventkit.scheduler_status()}) or die 'the scheduler does not loop';
is(sql('dst', qq{SELECT count(*) FROM eventkit.job_runs WHERE started_at >= '$t2'}),
	'0', 'no job runs while restoring, even when due');
sql('dst', 'SELECT eventkit.post_restore()');
poll_jobs($node, 'dst', qq{SELECT count(*) > 0 FROM eventkit.job_runs
  WHERE started_at >= '$t2' AND status = 'succeeded'}, 'and they run after post_restore()');

# only superusers (and roles granted it) may call them
sql('dst', 'CREATE ROLE someone');
my ($rc, $out, $err) = $node->psql('dst', 'SET ROLE someone; SELECT eventkit.pre_restore()');
like($err, qr/permission denied for function pre_restore/, 'pre_restore() is not for PUBLIC');

$node->stop;
done_testing();
