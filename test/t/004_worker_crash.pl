
# Copyright: eventkit authors
#
# The background worker survives crashes:
#
#  1. SIGKILL of a job worker in the middle of a retention job (it is waiting
#     for a lock a reader holds): the postmaster reinitializes, the run is
#     marked crashed, the job runs again and drops the partition once, and
#     nothing else changes (events, jobs, partitions made once);
#  2. an immediate stop of the whole server: after the restart the scheduler
#     is back and the jobs keep running, again without losing or doubling
#     anything.
#
# Polls with deadlines, no fixed sleeps.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitTest;

my $node = PostgreSQL::Test::Cluster->new('worker_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.maintenance_lock_timeout = '5min'
restart_after_crash = on
});
$node->start;

sub poll { poll_jobs($node, 'postgres', @_) }

# The state the jobs maintain, which must come out of each crash unchanged
# except for what the jobs are meant to change.
my $state_sql = q{
SELECT (SELECT count(*) FROM ev) || '|' ||
	   (SELECT count(DISTINCT message_id) FROM ev) || '|' ||
	   (SELECT count(*) FROM eventkit.jobs) || '|' ||
	   (SELECT count(*) = count(DISTINCT range_start) FROM eventkit.partitions('ev')) || '|' ||
	   (SELECT count(*) FROM eventkit.ledger_generations WHERE ended_at IS NULL)};

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev', partition_interval => '1 minute', premake => 5,
							  retention => '30 minutes');
-- 100 events now, 50 twenty minutes ago (their partition is made by ingest)
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'now-' || i, 'userId', 'u' || i % 7, 'event', 'E'))
  FROM generate_series(1, 100) i));
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'old-' || i, 'userId', 'u' || i % 7, 'event', 'E',
  'timestamp', now() - interval '20 minutes'))
  FROM generate_series(1, 50) i));
});
poll(q{SELECT count(*) = 4 FROM eventkit.jobs WHERE last_status IN ('succeeded', 'skipped')},
	'jobs ran once');
is($node->safe_psql('postgres', $state_sql), '150|150|4|true|1', 'initial state');

# ---- 1. SIGKILL of a job worker in the middle of its job
# the partition that holds the old events (not "the one 20 minutes ago" by a
# fresh now(): a minute boundary since the ingest would name an empty one)
my $old = $node->safe_psql('postgres',
	q{SELECT tableoid::regclass FROM ev WHERE message_id = 'old-1'});
my $reader = $node->background_psql('postgres');
$reader->query_safe("BEGIN; LOCK TABLE $old IN ACCESS SHARE MODE;");

# job clock +15 min: the old partition is past retention; the job waits for the lock
$node->safe_psql('postgres', q{ALTER SYSTEM SET eventkit.testing_clock_offset = '15min'});
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT current_setting('eventkit.testing_clock_offset') = '15min'})
  or die 'offset not applied';
$node->safe_psql('postgres', q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind = 'retention'});
poll(q{SELECT count(*) = 1 FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event_type = 'Lock'},
	'retention job worker waits for the lock');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event_type = 'Lock'});
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM eventkit.job_runs WHERE status = 'running' AND kind = 'retention'}),
	'1', 'its run is recorded as running');

kill 'KILL', $pid;
eval { $reader->quit; };    # its backend is gone with the reinitialization

$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
poll(q{SELECT count(*) = 1 FROM eventkit.job_runs WHERE status = 'crashed' AND kind = 'retention'},
	'after SIGKILL: the interrupted run is marked crashed');
poll(qq{SELECT to_regclass('$old') IS NULL}, 'the job ran again and dropped the partition');
poll(q{SELECT last_status = 'succeeded' FROM eventkit.jobs WHERE kind = 'retention'},
	'the retention job succeeded after the crash');
is($node->safe_psql('postgres', $state_sql), '100|100|4|true|1',
	'after SIGKILL: only the expired events are gone, nothing doubled');
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.job_runs WHERE status = 'running'
  AND pid NOT IN (SELECT pid FROM pg_stat_activity)}), '0', 'no run left dangling');

# ---- 2. immediate stop of the server
my $runs_before = $node->safe_psql('postgres',
	q{SELECT max(run_id) FROM eventkit.job_runs});
$node->stop('immediate');
$node->start;
poll(q{SELECT state = 'running' FROM eventkit.scheduler_status()},
	'after an immediate stop: the scheduler is back');
$node->safe_psql('postgres', q{UPDATE eventkit.jobs SET next_run_at = now()});
poll(qq{SELECT count(DISTINCT job_id) = 4 FROM eventkit.job_runs
  WHERE run_id > $runs_before AND status IN ('succeeded', 'skipped')},
	'every job ran again after the restart');
is($node->safe_psql('postgres', $state_sql), '100|100|4|true|1',
	'after the restart: nothing lost or doubled');

# the events are still there to be deduplicated: a re-send is all duplicates
is($node->safe_psql('postgres', q{SELECT duplicates FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'now-' || i, 'userId', 'u' || i % 7, 'event', 'E'))
  FROM generate_series(1, 100) i))}), '100', 're-sent events are duplicates');

$node->stop;
done_testing();
