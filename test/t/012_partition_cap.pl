
# Copyright: eventkit authors
#
# The cap on partitions created per ingest call, end to end with the
# background worker: a role with INSERT only sends 20 late events, one per
# past minute (1-minute partitions).  The call creates
# eventkit.max_new_partitions (8) partitions and quarantines the 12 others
# (out_of_range); the worker's premake job then makes their partitions, 8
# per run, and its redrive job stores them: in the end all 20 are stored
# exactly once and the quarantine is empty.  The writer cannot raise the cap.
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

my $node = PostgreSQL::Test::Cluster->new('partition_cap');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
CREATE ROLE owner_role;
CREATE ROLE writer LOGIN;
CREATE SCHEMA s AUTHORIZATION owner_role;
GRANT USAGE ON SCHEMA s TO writer;
SET ROLE owner_role;
SELECT eventkit.create_stream('s.ev', partition_interval => '1 minute', premake => 1);
GRANT INSERT ON s.ev TO writer;
});

# minutes 3 to 22 ago: well before the partitions premake keeps
my $result = $node->safe_psql(
	'postgres', q{
SET ROLE writer;
SELECT accepted, quarantined FROM eventkit.ingest('s.ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'm' || i, 'userId', 'u', 'event', 'Late',
  'timestamp', date_trunc('minute', now()) - i * interval '1 minute' + interval '30 seconds'))
  FROM generate_series(3, 22) i));
});
is($result, '8|12', 'the call stores 8 events and quarantines the other 12');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM eventkit.quarantine
  WHERE reasons @> '[{"reason": "out_of_range"}]'}),
	'12',
	'they wait with reason out_of_range');

my ($rc, $out, $err) = $node->psql('postgres',
	'SET ROLE writer; SET eventkit.max_new_partitions = 100');
like($err, qr/permission denied to set parameter "eventkit.max_new_partitions"/,
	'the writer cannot raise the cap');

poll_jobs($node, 'postgres',
	q{SELECT count(*) = 20 FROM s.ev WHERE event = 'Late'},
	'the worker makes their partitions and re-drives them');
is( $node->safe_psql(
		'postgres', q{SELECT count(*), count(DISTINCT message_id) FROM s.ev}),
	'20|20',
	'every event stored exactly once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.quarantine'),
	'0', 'the quarantine is empty');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM s.ev
  WHERE tableoid::regclass::text <> 's.ev_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MI')}),
	'0',
	'each event is in the partition of its minute');
$node->stop;
done_testing();
