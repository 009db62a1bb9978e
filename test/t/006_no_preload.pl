
# Copyright: eventkit authors
#
# Without shared_preload_libraries there is no background worker, and every
# SQL function still works: streams get their jobs, run_maintenance does the
# work by hand, health() and scheduler_status() say that nothing runs by
# itself.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev', partition_interval => '1 minute', premake => 2,
							  retention => '1 hour');
SELECT * FROM eventkit.ingest('ev', '{"type": "track", "messageId": "m1", "userId": "u", "event": "E"}');
SELECT eventkit.run_maintenance('ev');
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM ev'), '1', 'ingest works');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.jobs'), '4',
	'the stream has its jobs');
is($node->safe_psql('postgres',
	'SELECT preloaded, state FROM eventkit.scheduler_status()'), 'f|not preloaded',
	'scheduler_status() says the library is not preloaded');
is($node->safe_psql('postgres',
	q{SELECT status FROM eventkit.health() WHERE component = 'scheduler'}), 'warning',
	'health() warns');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'eventkit%'}), '0',
	'no eventkit process');
$node->safe_psql('postgres', q{SELECT eventkit.drop_stream('ev')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.jobs'),
	'0', 'jobs go with the stream');

$node->stop;
done_testing();
