
# Copyright: eventkit authors
#
# Rollups survive pg_dump / restore: the catalog row (eventkit.rollups, with
# its watermark) is dumped as extension configuration, the rollup table (with
# its hll and tdigest partial states) and the realtime view as ordinary
# objects, and the stream's batch_id BRIN index with the stream.  After a
# plain and a custom-format restore, the realtime view shows the same values,
# the next refresh folds exactly the events that were not folded before the
# dump, and new events are folded once.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rollup_dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'eventkit'");
# the background worker would refresh the rollup on its own: this test
# controls when refreshes happen
$node->append_conf('postgresql.conf', 'eventkit.scheduler_enabled = off');
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
SELECT eventkit.create_stream('ev');
CREATE FUNCTION mkev(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', 'm' || i, 'userId', 'u' || i % 4,
                            'event', CASE WHEN i % 2 = 0 THEN 'Order' ELSE 'View' END,
                            'properties', jsonb_build_object('n', i),
                            'timestamp', '2026-01-05T1' || (i % 3) || ':00:00Z')
$$;
SELECT eventkit.ingest('ev', (SELECT jsonb_agg(mkev(i)) FROM generate_series(1, 10) i));
SELECT eventkit.create_rollup('hourly', 'ev', '1 hour', '{event}',
  '{count,"distinct(user_id) AS users","percentile(properties.n, 0.5) AS p50","sum(properties.n) AS total"}');
SELECT eventkit.ingest('ev', (SELECT jsonb_agg(mkev(i)) FROM generate_series(11, 14) i));
});

my $realtime =
  q{SELECT bucket, event, count, users, round(p50::numeric, 6), total FROM hourly_realtime ORDER BY 1, 2};
my $catalog =
  q{SELECT rollup_id, name, relid::text, realtime_view::text, stream::text, bucket, dimensions, measures,
		   schedule, watermark, backfill_target, events_folded FROM eventkit.rollups ORDER BY 1};
my $table = q{SELECT sum(count), sum(total) FROM hourly};

my %before = map { $_ => $node->safe_psql('src', $_) } ($realtime, $catalog, $table);
is($node->safe_psql('src', $table), '10|55', 'before the dump: 10 events folded');
is($node->safe_psql('src', 'SELECT sum(count) FROM hourly_realtime'),
	'14', 'before the dump: the realtime view has all 14');

my $dir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-d', 'src', '-f', "$dir/src.sql" ], 'pg_dump (plain)');
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'src', '-f', "$dir/src.dump" ], 'pg_dump (custom)');
$node->command_ok([ 'createdb', 'plain' ], 'createdb plain');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'plain', '-f', "$dir/src.sql" ],
	'restore the plain dump');
$node->command_ok([ 'createdb', 'custom' ], 'createdb custom');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'custom', "$dir/src.dump" ],
	'restore the custom dump');

for my $db ('plain', 'custom')
{
	for my $q ($realtime, $catalog, $table)
	{
		is($node->safe_psql($db, $q), $before{$q}, "$db: same result for: " . substr($q, 0, 40));
	}
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_indexes WHERE indexname = 'ev_batch_id_brin' AND indexdef LIKE '%USING brin%'}),
		'1', "$db: the batch_id index is restored");
	is($node->safe_psql($db, q{SELECT eventkit.refresh_rollup('hourly')}),
		'4', "$db: the next refresh folds the 4 events not folded before the dump");
	is($node->safe_psql($db, q{SELECT eventkit.ingest('ev', (SELECT jsonb_agg(mkev(i)) FROM generate_series(13, 16) i))::text}),
		'(2,2,0,0,0)', "$db: re-sent events are duplicates, new ones accepted");
	is($node->safe_psql($db, q{SELECT eventkit.refresh_rollup('hourly')}), '2', "$db: new events folded");
	is($node->safe_psql($db, $table), '16|136', "$db: every event folded once");
	is($node->safe_psql($db,
		q{SELECT count(*) FROM hourly_realtime r FULL JOIN
		    (SELECT date_bin('1 hour', ts, '2000-01-01') AS bucket, event, count(*) AS count FROM ev GROUP BY 1, 2) f
		    USING (bucket, event) WHERE r.count IS DISTINCT FROM f.count}),
		'0', "$db: realtime view equals a GROUP BY over the stream");
	$node->safe_psql($db, q{SELECT eventkit.drop_rollup('hourly')});
	is($node->safe_psql($db, q{SELECT count(*) FROM eventkit.rollups}),
		'0', "$db: drop_rollup works on the restored rollup");
}

$node->stop;
done_testing();
