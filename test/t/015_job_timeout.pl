
# Copyright: eventkit authors
#
# Jobs run under eventkit.job_timeout, and a slow job cannot starve the
# others:
#
#  - a redrive made slow by the stream owner's trigger (pg_sleep) is
#    cancelled at eventkit.job_timeout, recorded as failed with the timeout
#    in its message (not crashed), and backs off; the worker keeps running
#    the other jobs;
#  - a job cancelled with pg_cancel_backend is recorded as failed too;
#  - a job whose code catches the cancel and goes on is terminated a grace
#    period after its timeout (its run is then marked crashed), so it
#    cannot hold its slot;
#  - with two job slots, a database whose jobs are slow leaves a slot to
#    another database: the other database's job runs at once.
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

my $node = PostgreSQL::Test::Cluster->new('jobtimeout');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.max_job_workers = 2
eventkit.job_timeout = '2s'
});
$node->start;

sub sql { $node->safe_psql(@_) }

sub set_job_timeout
{
	my ($value) = @_;
	sql('postgres', "ALTER SYSTEM SET eventkit.job_timeout = '$value'");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('eventkit.job_timeout') = '$value'")
	  or die 'job_timeout not applied';
}

# A stream whose trigger makes the insert of some events slow, and one such
# event waiting in quarantine (out_of_range) with its partition made: the
# redrive job replays it as soon as it runs.  $how: 'sleep' sleeps 60 s;
# 'stubborn' sleeps in a loop that swallows cancels.
sub slow_stream
{
	my ($db, $stream, $id, $how) = @_;
	my $body =
	  $how eq 'sleep'
	  ? 'PERFORM pg_sleep(60);'
	  : 'FOR i IN 1..60 LOOP BEGIN PERFORM pg_sleep(1); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP;';
	sql(
		$db, qq{
CREATE EXTENSION IF NOT EXISTS eventkit;
SELECT eventkit.create_stream('$stream', partition_interval => '1 minute', premake => 1);
CREATE FUNCTION ${stream}_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.message_id LIKE 'slow%' THEN $body END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER slow BEFORE INSERT ON $stream FOR EACH ROW EXECUTE FUNCTION ${stream}_slow();
SET eventkit.create_partitions_on_ingest = off;
SELECT eventkit.ingest('$stream', jsonb_build_object('type', 'track', 'messageId', '$id',
  'userId', 'u', 'event', 'E', 'timestamp', (now() - interval '3 minutes')::text));
RESET eventkit.create_partitions_on_ingest;
SELECT eventkit.ingest('$stream', jsonb_build_object('type', 'track', 'messageId', 'fast-$id',
  'userId', 'u', 'event', 'E', 'timestamp', (now() - interval '3 minutes')::text));
UPDATE eventkit.jobs SET next_run_at = now() WHERE kind = 'redrive' AND target = 'public.$stream';
});
	return;
}

# ---- a job past eventkit.job_timeout (2 s) is cancelled and recorded failed
slow_stream('postgres', 'slow', 'slow1', 'sleep');
poll_jobs($node, 'postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.job_runs
  WHERE kind = 'redrive' AND target = 'public.slow' AND status = 'failed'
	AND message LIKE 'job ran longer than eventkit.job_timeout (2000 ms): canceling statement due to statement timeout')},
	'the slow job is cancelled at job_timeout and recorded as failed, with why');
poll_jobs($node, 'postgres', q{SELECT failures >= 2 FROM eventkit.jobs
  WHERE kind = 'redrive' AND target = 'public.slow'}, 'it fails again after its backoff');
is( sql(
		'postgres', q{SELECT last_status || ' ' || (next_run_at > r.ended_at)
  FROM eventkit.jobs j, LATERAL (SELECT max(ended_at) AS ended_at FROM eventkit.job_runs
	WHERE job_id = j.job_id) r WHERE kind = 'redrive' AND target = 'public.slow'}),
	'failed true', 'the job shows the failure and its next run is after the backoff');
is(sql('postgres', q{SELECT count(*) FROM eventkit.job_runs WHERE status = 'crashed'}),
	'0', 'no run crashed');
is(sql('postgres', q{SELECT count(*) FROM slow}), '1', 'the slow event is still in quarantine');

# the worker still runs the other jobs
sql('postgres', q{SELECT eventkit.create_stream('other')});
poll_jobs($node, 'postgres', q{SELECT count(DISTINCT kind) = 3 FROM eventkit.job_runs
  WHERE target = 'public.other' AND status = 'succeeded'}, 'the jobs of another stream run meanwhile');

# no job of this database runs (after disabling some)
sub wait_idle
{
	$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND datname = 'postgres'})
	  or die 'jobs still running';
	return;
}

# ---- a cancelled job (pg_cancel_backend) is recorded as failed
sql('postgres', q{UPDATE eventkit.jobs SET enabled = false WHERE target = 'public.slow'});
wait_idle();
set_job_timeout('0');
sql('postgres', q{UPDATE eventkit.jobs SET enabled = true, next_run_at = now(), failures = 0
  WHERE kind = 'redrive' AND target = 'public.slow'});
my $slow_worker = q{SELECT pid FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event = 'PgSleep' AND datname = current_database()};
$node->poll_query_until('postgres', "SELECT EXISTS ($slow_worker)")
  or die 'the slow job does not run';
my $pid = sql('postgres', $slow_worker);
sql('postgres', "SELECT pg_cancel_backend($pid)");
poll_jobs($node, 'postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.job_runs
  WHERE kind = 'redrive' AND target = 'public.slow' AND status = 'failed'
	AND message = 'canceling statement due to user request')},
	'a cancelled job is recorded as failed, with the cancel as its error');
is(sql('postgres', q{SELECT last_status || ' ' || failures FROM eventkit.jobs
  WHERE kind = 'redrive' AND target = 'public.slow'}), 'failed 1', 'and counts a failure');
is(sql('postgres', q{SELECT count(*) FROM eventkit.job_runs WHERE status = 'crashed'}),
	'0', 'no run crashed');
sql('postgres', q{UPDATE eventkit.jobs SET enabled = false WHERE target = 'public.slow'});
wait_idle();

# ---- a job that swallows its cancel is terminated after a grace period
set_job_timeout('1s');
slow_stream('postgres', 'stubborn', 'slow2', 'stubborn');
$node->poll_query_until('postgres', "SELECT EXISTS ($slow_worker)")
  or die 'the stubborn job does not run';
$pid = sql('postgres', $slow_worker);
poll_jobs($node, 'postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.job_runs
  WHERE kind = 'redrive' AND target = 'public.stubborn' AND status = 'crashed')},
	'a job that goes on after its timeout is terminated (its run marked crashed)');
is(sql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"),
	'0', 'its worker is gone');
like(
	slurp_file($node->logfile),
	qr/eventkit: job \d+ still runs 10000 ms after eventkit.job_timeout; terminating its worker/,
	'the termination is logged');
sql('postgres', q{UPDATE eventkit.jobs SET enabled = false WHERE target = 'public.stubborn'});
wait_idle();
set_job_timeout('0');

# ---- two job slots, three databases with jobs: "busy" has two slow jobs,
# "calm" quick ones (and so has "postgres"); busy runs one slow job and
# leaves the other slot to the others
sql('postgres', 'CREATE DATABASE busy');
sql('postgres', 'CREATE DATABASE calm');
sql('calm', q{CREATE EXTENSION eventkit; SELECT eventkit.create_stream('c1')});
poll_jobs($node, 'calm', q{SELECT count(DISTINCT kind) = 3 FROM eventkit.job_runs
  WHERE status = 'succeeded'}, "calm's jobs have run once");
slow_stream('busy', 'b1', 'slow3', 'sleep');
slow_stream('busy', 'b2', 'slow4', 'sleep');
# both slow jobs are due: busy's scheduler has had its chance to start both
my $t = sql('busy', 'SELECT clock_timestamp()');
$node->poll_query_until('busy', qq{SELECT last_loop_at > '$t' FROM eventkit.scheduler_status()})
  or die 'the scheduler of busy does not run';
$node->poll_query_until('busy', q{SELECT count(*) >= 1 FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event = 'PgSleep' AND datname = 'busy'})
  or die 'no slow job runs in busy';
my $due = sql('calm',
	q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind = 'premake' RETURNING clock_timestamp()});
poll_jobs($node, 'calm', qq{SELECT EXISTS (SELECT 1 FROM eventkit.job_runs
  WHERE kind = 'premake' AND status = 'succeeded' AND started_at > '$due')},
	"calm's job runs while busy's are slow");
is( sql('calm', qq{SELECT max(ended_at) - '$due' < interval '20 seconds' FROM eventkit.job_runs
  WHERE kind = 'premake' AND status = 'succeeded' AND started_at > '$due'}),
	't', 'at once, not after a slow job has ended');
is( sql('busy', q{SELECT count(*) FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND datname = 'busy'}),
	'1', 'busy runs one job at a time while calm has jobs');

$node->stop('immediate');
done_testing();
