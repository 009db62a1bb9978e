
# Copyright: eventkit authors
#
# Rollups refreshed by the background worker survive crashes without losing
# or doubling any event's contribution:
#
#  1. SIGKILL of the job worker while it refreshes a rollup (it is waiting
#     in WaitForLockers for an ingest transaction that is still open): the
#     postmaster reinitializes, the open ingest is rolled back, the run is
#     marked crashed, and the next refreshes fold exactly the committed
#     events;
#  2. an immediate stop of the whole server between refreshes: after the
#     restart the worker goes on, and the rollup again equals a from-scratch
#     GROUP BY over the stream.
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

my $node = PostgreSQL::Test::Cluster->new('rollup_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
restart_after_crash = on
});
$node->start;

sub poll { poll_jobs($node, 'postgres', @_) }

# The rollup equals the from-scratch aggregate over the stream (per hour and
# event: count and sum of properties.n).
my $diff_sql = q{
SELECT count(*) FROM (
  (SELECT bucket, event, count, total FROM r
   EXCEPT
   SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), event, count(*), sum((properties->>'n')::numeric)
	 FROM ev GROUP BY 1, 2)
  UNION ALL
  (SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), event, count(*), sum((properties->>'n')::numeric)
	 FROM ev GROUP BY 1, 2
   EXCEPT
   SELECT bucket, event, count, total FROM r)) d};

# ... and holds n events
sub equal_sql
{
	my ($n) = @_;
	return "SELECT ($diff_sql) = 0 AND (SELECT sum(count) FROM r) = $n";
}

# n events with ids prefix-1..n, n = i (so the sums tell events apart)
sub ingest
{
	my ($prefix, $n) = @_;
	return $node->safe_psql('postgres', qq{
SELECT accepted FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', '$prefix-' || i, 'userId', 'u' || i % 5,
  'event', CASE WHEN i % 3 = 0 THEN 'A' ELSE 'B' END,
  'properties', jsonb_build_object('n', i)))
  FROM generate_series(1, $n) i))});
}

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
});
is(ingest('base', 60), '60', '60 events');
$node->safe_psql(
	'postgres', q{
SELECT eventkit.create_rollup('r', 'ev', '1 hour', '{event}',
							  '{count, sum(properties.n) AS total}', backfill => false);
SELECT eventkit.set_rollup_schedule('r', '1 second');
});
poll(equal_sql(60), 'the worker folds the history');

# ---- 1. SIGKILL of the job worker in the middle of a refresh
my $writer = $node->background_psql('postgres', on_error_stop => 0);
$writer->query_safe(q{BEGIN;
SELECT accepted FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'open-' || i, 'userId', 'u', 'event', 'A',
  'properties', jsonb_build_object('n', 1000))) FROM generate_series(1, 10) i));});
is(ingest('committed', 7), '7', '7 more events committed while another ingest is open');

poll(q{SELECT count(*) > 0 FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event_type = 'Lock'},
	'a refresh waits for the open ingest');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
  WHERE backend_type = 'eventkit job worker' AND wait_event_type = 'Lock' LIMIT 1});
is($node->safe_psql('postgres', 'SELECT sum(count) FROM r'), '60',
	'nothing is folded while the open ingest may hold an older batch id');
kill 'KILL', $pid;
# the crash takes the writer's session (and its open transaction) with it
eval { $writer->quit; };

$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
poll(q{SELECT count(*) > 0 FROM eventkit.job_runs WHERE kind = 'refresh_rollup' AND status = 'crashed'},
	'the killed refresh is recorded as crashed');
poll(equal_sql(67),
	'after the crash the rollup folds the committed events once, and not the rolled-back ones');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ev WHERE message_id LIKE 'open-%'}), '0',
	'the open ingest was rolled back by the crash');

# ---- 2. immediate stop between refreshes
is(ingest('late', 11), '11', '11 more events');
$node->stop('immediate');
$node->start;
is(ingest('after', 5), '5', '5 events after the restart');
poll(equal_sql(83),
	'after an immediate stop the worker goes on: every committed event counted once');
is($node->safe_psql('postgres', q{SELECT sum(total) FROM r}),
	$node->safe_psql('postgres', q{SELECT sum((properties->>'n')::numeric) FROM ev}),
	'sums agree');
# re-sending everything changes nothing
is(ingest('base', 60), '0', 're-sent events are duplicates');
poll(equal_sql(83), 'and are never counted');

$node->stop;
done_testing();
