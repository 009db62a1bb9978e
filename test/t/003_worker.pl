
# Copyright: eventkit authors
#
# The background worker with a real server (shared_preload_libraries):
#
#  - the launcher starts a scheduler after CREATE EXTENSION, without restart,
#    and again after it is terminated; scheduler_enabled = off stops it;
#  - partitions are premade as time passes and retention drops old ones and
#    leaves the rest (time passes through eventkit.testing_clock_offset,
#    which shifts the job workers' clock; partitions are 1 minute wide);
#  - a retention job blocked by a reader's lock times out, is recorded as
#    failed with its message, does not block ingest, and succeeds once the
#    lock is gone;
#  - a rollup is refreshed by its refresh_rollup job; a failing
#    job backs off exponentially and the others keep running;
#  - job history is purged after eventkit.job_history_retention;
#  - quarantined out_of_range events are re-driven once premake covers them;
#  - DROP DATABASE, CREATE DATABASE ... TEMPLATE and DROP EXTENSION succeed
#    while the scheduler runs.
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

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.maintenance_lock_timeout = '500ms'
});
$node->start;

sub poll { poll_jobs($node, @_) }

sub set_offset
{
	my ($minutes) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET eventkit.testing_clock_offset = '${minutes}min'");
	$node->reload;
	# new processes (such as job workers) see the new value
	$node->poll_query_until('postgres',
		"SELECT current_setting('eventkit.testing_clock_offset') = '${minutes}min'")
	  or die "offset not applied";
	# run the stream jobs now rather than at their next turn
	$node->safe_psql('postgres',
		"UPDATE eventkit.jobs SET next_run_at = now() WHERE kind IN ('premake', 'retention')");
}

my $nsched = q{(SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'eventkit scheduler' AND datname = current_database())};

# ---- launcher and scheduler
poll('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'eventkit launcher'",
	'launcher running');
# (the launcher's probe of a database without eventkit exits at once)
poll('postgres', "SELECT $nsched = 0", 'no scheduler stays in a database without eventkit');

$node->safe_psql('postgres', 'CREATE EXTENSION eventkit');
poll('postgres', "SELECT $nsched = 1", 'scheduler appears after CREATE EXTENSION, without restart');
poll('postgres', q{SELECT state = 'running' FROM eventkit.scheduler_status()},
	'scheduler_status() reports it running');

my $pid1 = $node->safe_psql('postgres', 'SELECT pid FROM eventkit.scheduler_status()');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
poll('postgres',
	"SELECT pid IS NOT NULL AND pid <> $pid1 FROM eventkit.scheduler_status()",
	'a terminated scheduler is started again');

$node->safe_psql('postgres', 'ALTER SYSTEM SET eventkit.scheduler_enabled = off');
$node->reload;
poll('postgres', "SELECT $nsched = 0", 'scheduler_enabled = off stops the scheduler (SIGHUP)');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET eventkit.scheduler_enabled');
$node->reload;
poll('postgres', "SELECT $nsched = 1", 'and on starts it again');

# ---- premake and retention as time passes
# 1-minute partitions, 10 premade, 30 minutes retention; one event 20 minutes
# ago (its partition is made by ingest), one 9 minutes ahead.
$node->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('ev', partition_interval => '1 minute', premake => 10,
							  retention => '30 minutes');
SELECT * FROM eventkit.ingest('ev', jsonb_build_array(
  jsonb_build_object('type', 'track', 'messageId', 'old', 'userId', 'u', 'event', 'E',
					 'timestamp', now() - interval '20 minutes'),
  jsonb_build_object('type', 'track', 'messageId', 'ahead', 'userId', 'u', 'event', 'E',
					 'timestamp', now() + interval '9 minutes')));
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM ev'), '2', 'two events stored');
poll('postgres',
	q{SELECT count(DISTINCT kind) = 4 FROM eventkit.job_runs WHERE status IN ('succeeded', 'skipped')},
	'every job of the new stream has run');

# Job clock +35 min: premake reaches now+45min; retention drops every partition
# that ended before now+5min, including the one of the old event.
set_offset(35);
poll('postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.partitions('ev')
  WHERE range_start <= now() + interval '44 minutes' AND range_end > now() + interval '44 minutes')},
	'partitions premade as the clock moves');
poll('postgres', q{SELECT NOT EXISTS (SELECT 1 FROM eventkit.partitions('ev')
  WHERE range_end <= now() + interval '4 minutes')}, 'retention dropped the old partitions');
is($node->safe_psql('postgres', q{SELECT string_agg(message_id, ',') FROM ev}),
	'ahead', 'the event in a partition within retention is kept');
is($node->safe_psql('postgres',
	q{SELECT count(*) = count(DISTINCT range_start) FROM eventkit.partitions('ev')}),
	't', 'no partition made twice');
cmp_ok($node->safe_psql('postgres', q{SELECT max(rows_affected) FROM eventkit.job_runs
  WHERE kind = 'retention' AND status = 'succeeded'}), '>=', 1,
	'retention run recorded with the partitions it dropped');

# ---- a retention job blocked by a reader
my $part = $node->safe_psql('postgres', q{SELECT partition FROM eventkit.partitions('ev')
  WHERE range_start <= now() + interval '9 minutes' AND range_end > now() + interval '9 minutes'});
my $reader = $node->background_psql('postgres');
$reader->query_safe("BEGIN; LOCK TABLE $part IN ACCESS SHARE MODE;");

# Job clock +40 min: the partition of "ahead" is past retention now.
set_offset(40);
poll('postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.job_runs
  WHERE kind = 'retention' AND status = 'failed' AND message LIKE '%lock timeout%')},
	'blocked retention run recorded as failed with its message');
is($node->safe_psql('postgres', q{SELECT last_status || ' ' || (failures >= 1)
  FROM eventkit.jobs WHERE kind = 'retention'}), 'failed true', 'job shows the failure');
is($node->safe_psql('postgres', q{SELECT status FROM eventkit.health()
  WHERE component = 'job' AND target LIKE 'retention %'}), 'error', 'health() shows it');

# ingest into current partitions is not queued behind the blocked job
my $t0 = time;
$node->safe_psql('postgres', q{SET statement_timeout = '5s';
  SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "during", "userId": "u", "event": "E"}')});
cmp_ok(time - $t0, '<', 5, 'ingest not blocked by the waiting retention job');

$reader->query_safe('COMMIT');
$reader->quit;
poll('postgres', qq{SELECT to_regclass('$part') IS NULL}, 'dropped once the lock is gone');
poll('postgres', q{SELECT last_status = 'succeeded' AND failures = 0
  FROM eventkit.jobs WHERE kind = 'retention'}, 'the job recovered from its backoff');

# ---- refresh_rollup jobs: a rollup is refreshed on its schedule; a failing
# job (a rollup that does not exist) backs off exponentially and does not
# stop the others
$node->safe_psql('postgres', q{
SELECT eventkit.create_stream('rs');
SELECT eventkit.ingest('rs', jsonb_build_array(
  jsonb_build_object('type', 'track', 'messageId', 'r1', 'userId', 'u', 'event', 'A'),
  jsonb_build_object('type', 'track', 'messageId', 'r2', 'userId', 'u', 'event', 'A'),
  jsonb_build_object('type', 'track', 'messageId', 'r3', 'userId', 'u', 'event', 'B')));
SELECT eventkit.create_rollup('r_ok', 'rs', '1 hour', '{event}', '{count}', backfill => false);
SELECT eventkit.set_rollup_schedule('r_ok', '1 second');
SELECT eventkit.schedule_job('refresh_rollup', 'r_bad', '1 second');
});
is($node->safe_psql('postgres', q{SELECT schedule FROM eventkit.jobs
  WHERE kind = 'refresh_rollup' AND target = 'public.r_ok'}), '00:00:01',
	'create_rollup scheduled a refresh job, set_rollup_schedule changed it');
poll('postgres', q{SELECT coalesce(sum(count), 0) = 3 FROM r_ok},
	'the worker refreshes the rollup');
is($node->safe_psql('postgres', q{SELECT rows_affected FROM eventkit.job_runs
  WHERE target = 'public.r_ok' AND status = 'succeeded' AND rows_affected > 0
  ORDER BY run_id LIMIT 1}), '3', 'rows affected recorded');
poll('postgres', q{SELECT failures >= 3 FROM eventkit.jobs WHERE target = 'r_bad'},
	'the failing rollup job fails repeatedly');
is($node->safe_psql('postgres', q{SELECT last_status || ' / ' ||
	(abs(extract(epoch FROM next_run_at - r.ended_at) - 2 ^ (failures - 1)) < 0.5)
  FROM eventkit.jobs j, LATERAL (SELECT max(ended_at) AS ended_at FROM eventkit.job_runs
	WHERE job_id = j.job_id) r WHERE target = 'r_bad'}),
	'failed / true', 'it backs off by naptime * 2^(failures - 1)');
$node->safe_psql('postgres', q{
SELECT eventkit.ingest('rs', jsonb_build_array(
  jsonb_build_object('type', 'track', 'messageId', 'r4', 'userId', 'u', 'event', 'A'),
  jsonb_build_object('type', 'track', 'messageId', 'r1', 'userId', 'u', 'event', 'A')));
});
poll('postgres', q{SELECT string_agg(event || '=' || count, ',' ORDER BY event) = 'A=3,B=1' FROM r_ok},
	'the other rollup job keeps running: the new event is folded, the duplicate is not');
$node->safe_psql('postgres', q{
SELECT eventkit.unschedule_job('refresh_rollup', 'r_bad');
SELECT eventkit.drop_rollup('r_ok');
SELECT eventkit.drop_stream('rs');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.jobs WHERE kind = 'refresh_rollup'}),
	'0', 'drop_rollup removed its job');

# ---- history purge
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.job_runs'), '>', 4,
	'history recorded');
$node->safe_psql('postgres', q{ALTER SYSTEM SET eventkit.job_history_retention = '2s'});
$node->reload;
poll('postgres', q{SELECT count(*) = 0 FROM eventkit.job_runs
  WHERE ended_at < now() - interval '10 seconds'}, 'history older than the retention purged');

# ---- re-drive of quarantined out_of_range events once their partition exists
# (eventkit.replay_quarantine re-runs the event through the normal path)
$node->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('ev3', partition_interval => '1 minute', premake => 1);
});
# job clock is +40 min: premake made now+40..41min; an event at now+50min is
# out of range
is($node->safe_psql('postgres', q{SELECT quarantined FROM eventkit.ingest('ev3',
  jsonb_build_object('type', 'track', 'messageId', 'later', 'userId', 'u', 'event', 'E',
					 'timestamp', now() + interval '50 minutes'))}), '1',
	'an event beyond the premade partitions is quarantined');
poll('postgres', q{SELECT last_status = 'succeeded' FROM eventkit.jobs
  WHERE kind = 'redrive' AND target = 'public.ev3'}, 'redrive runs while its partition is missing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.quarantine'), '1',
	'and leaves the event in quarantine');
# +49 min, not +50: premake makes the minute containing the job clock's now and the
# next one, [floor(now + 49 min), + 2 min), which holds ingest time + 50 min for
# as long as less than a minute has passed since the ingest.  At +50 min, a minute
# boundary between the ingest and premake's run left the event's minute unmade.
set_offset(49);
poll('postgres', q{SELECT EXISTS (SELECT 1 FROM eventkit.partitions('ev3')
  WHERE range_start > now() + interval '48 minutes')}, 'premake covers it');
$node->safe_psql('postgres', q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind = 'redrive'});
poll('postgres', q{SELECT count(*) = 1 FROM ev3 WHERE message_id = 'later'},
	'once premake covers it, redrive replays the event');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.quarantine'), '0',
	'quarantine empty');

# ---- DROP DATABASE while its scheduler runs
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other',
	"CREATE EXTENSION eventkit; SELECT eventkit.create_stream('ev2', partition_interval => '1 minute')");
poll('other', "SELECT $nsched = 1", 'scheduler in a second database');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE other');
is($rc, 0, 'DROP DATABASE succeeds while the scheduler runs') or diag($err);
poll('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
  WHERE backend_type LIKE 'eventkit%' AND datname = 'other'}, 'no worker left for it');
poll('postgres', "SELECT $nsched = 1", 'the scheduler of the other database still runs');

# ---- CREATE DATABASE ... TEMPLATE of a database whose scheduler runs
($rc, $out, $err) = $node->psql('template1', 'CREATE DATABASE copy TEMPLATE postgres');
is($rc, 0, 'CREATE DATABASE with a template whose scheduler runs succeeds') or diag($err);
poll('postgres', "SELECT $nsched = 1", 'the template database gets its scheduler back');
poll('copy', "SELECT $nsched = 1", 'and the copy gets one');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE copy');
is($rc, 0, 'the copy is dropped') or diag($err);

# ---- DROP EXTENSION while the scheduler runs, and back
($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION eventkit CASCADE');
is($rc, 0, 'DROP EXTENSION succeeds while the scheduler runs') or diag($err);
poll('postgres', "SELECT $nsched = 0", 'scheduler gone after DROP EXTENSION');
$node->safe_psql('postgres', 'CREATE EXTENSION eventkit');
poll('postgres', "SELECT $nsched = 1", 'and back after CREATE EXTENSION');

$node->stop;
done_testing();
