
# Copyright: eventkit authors
#
# Dedup ledger generations bounded by size, with the background worker:
#
#  1. ingest sees the current generation over eventkit.ledger_generation_rows
#     and wakes the ledger job, which rotates (ingest itself never does) and
#     builds the sealed generation's filter right after;
#  2. an immediate stop between a rotation and its filter build leaves a
#     correct ledger: the sealed generation has no filter and is probed for
#     every id, re-sent events are all duplicates; the filter is built later
#     and the answers do not change.
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

my $node = PostgreSQL::Test::Cluster->new('ledger_size');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.ledger_generation_rows = 100
});
$node->start;

sub poll { poll_jobs($node, 'postgres', @_) }

# 150 new events e<lo>..e<lo+149> as one batch
sub batch
{
	my ($lo, $hi) = @_;
	return qq{(SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'e' || i,
	  'userId', 'u' || i % 7, 'event', 'E', 'properties', jsonb_build_object('n', i)) ORDER BY i)
	  FROM generate_series($lo, $hi) i)};
}

sub ingest
{
	my ($lo, $hi) = @_;
	return $node->safe_psql('postgres',
		'SELECT accepted || \'/\' || duplicates || \'/\' || conflicts FROM eventkit.ingest(\'ev\', '
		  . batch($lo, $hi) . ')');
}

my $gens_sql = q{SELECT string_agg(format('%s:%s:%s', gen, CASE WHEN ended_at IS NULL THEN 'current' ELSE 'sealed' END,
	CASE WHEN filter IS NULL THEN 'nofilter' ELSE 'filter' END), ' ' ORDER BY gen) FROM eventkit.ledger_generations};

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
});
poll(q{SELECT last_status = 'succeeded' FROM eventkit.jobs WHERE kind = 'ledger'},
	'the ledger job ran once at creation');

# 1. over the limit: ingest wakes the ledger job
is(ingest(1, 150), '150/0/0', '150 events stored');
poll(q{SELECT count(*) = 1 FROM eventkit.ledger_generations WHERE ended_at IS NOT NULL AND filter IS NOT NULL},
	'woken by ingest, the worker rotated and built the filter');
is($node->safe_psql('postgres', $gens_sql), '1:sealed:filter 2:current:nofilter', 'generations');
is(ingest(1, 150), '0/150/0', 're-sent: all duplicates (through the filter)');

# 2. rotation, then an immediate stop before the filter is built
$node->safe_psql('postgres', q{
ALTER SYSTEM SET eventkit.scheduler_enabled = off;
SELECT pg_reload_conf();
});
poll(q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type IN ('eventkit scheduler', 'eventkit job worker')},
	'no scheduler or job worker runs');
is(ingest(141, 300), '150/10/0', 'more events into generation 2');
$node->safe_psql('postgres', q{SELECT eventkit.run_maintenance('ev')});
is($node->safe_psql('postgres', $gens_sql), '1:sealed:filter 2:sealed:nofilter 3:current:nofilter',
	'run_maintenance rotated; generation 2 has no filter yet');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $gens_sql), '1:sealed:filter 2:sealed:nofilter 3:current:nofilter',
	'after the crash: the same generations');
is($node->safe_psql('postgres', 'SELECT count(*) || \'/\' || count(DISTINCT message_id) FROM ev'),
	'300/300', 'every acknowledged event stored once');
is(ingest(1, 300), '0/300/0', 're-sent: all duplicates (generation 2 probed without its filter)');
is(ingest(301, 310), '10/0/0', 'new ids stored');

# the filter is built later (here by the worker, woken by ingest: generation 3
# is over the limit too once it holds 110 ids) and the answers do not change
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET eventkit.scheduler_enabled;
SELECT pg_reload_conf();
});
is(ingest(311, 410), '100/0/0', '100 more new ids');
poll(q{SELECT count(*) = 3 FROM eventkit.ledger_generations WHERE ended_at IS NOT NULL AND filter IS NOT NULL},
	'the worker built the missing filter and that of generation 3');
is(ingest(1, 410), '0/410/0', 're-sent: all duplicates (through the filters)');
is($node->safe_psql('postgres', 'SELECT count(*) || \'/\' || count(DISTINCT message_id) FROM ev'),
	'410/410', 'every event stored once');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM eventkit.job_runs WHERE kind = 'ledger' AND status NOT IN ('succeeded', 'crashed')}),
	'0', 'no ledger job failed');

$node->stop;
done_testing();
