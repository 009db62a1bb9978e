
# Copyright: eventkit authors
#
# Partition maintenance must not block ingest.  pgbench ingests one event per
# transaction from 2 clients for a while; meanwhile the job clock
# (eventkit.testing_clock_offset) moves forward by 3 minutes every second or
# so, and the worker premakes new 1-minute partitions and detaches and drops
# old ones (made beforehand, 45 to 55 minutes ago).  Then: no ingest call took
# longer than 2 s, pgbench saw no error, and every acknowledged event is
# stored exactly once.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker_ingest');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.maintenance_lock_timeout = '1s'
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev', partition_interval => '1 minute', premake => 2,
							  retention => '1 hour');
-- old partitions for the worker to drop (11: more than one call creates by
-- default)
SET eventkit.max_new_partitions = 16;
SELECT * FROM eventkit.ingest('ev', (SELECT jsonb_agg(jsonb_build_object(
  'type', 'track', 'messageId', 'old-' || i, 'userId', 'u', 'event', 'Old',
  'timestamp', now() - interval '55 minutes' + i * interval '1 minute'))
  FROM generate_series(0, 10) i));
CREATE SEQUENCE load_ids;
});
my $old_parts = $node->safe_psql('postgres',
	q{SELECT count(*) FROM eventkit.partitions('ev') WHERE range_end < now() - interval '40 minutes'});
cmp_ok($old_parts, '>=', 10, 'old partitions exist');

my $script = $node->basedir . '/ingest.sql';
open(my $fh, '>', $script) or die;
print $fh q{SELECT accepted FROM eventkit.ingest('ev', jsonb_build_object('type', 'track', 'messageId', 'load-' || nextval('load_ids'), 'userId', 'u' || :client_id, 'event', 'Load'));
};
close $fh;

my $logprefix = $node->basedir . '/pgbench_log';
my ($out, $err) = ('', '');
my $duration = 12;
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '2', '-T', $duration, '-f', $script,
		'-l', "--log-prefix=$logprefix",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);

# move the job clock while pgbench runs
my $offset = 0;
my $t_end = time + $duration - 1;
while (time < $t_end)
{
	$offset += 3;
	$node->safe_psql('postgres', "ALTER SYSTEM SET eventkit.testing_clock_offset = '${offset}min'");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('eventkit.testing_clock_offset') = '${offset}min'")
	  or die 'offset not applied';
	$node->safe_psql('postgres',
		q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind IN ('premake', 'retention')});
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM eventkit.jobs WHERE kind IN ('premake', 'retention')
		  AND next_run_at <= now()})
	  or die 'jobs did not run';
}
IPC::Run::finish($pgbench);
is($?, 0, 'pgbench finished without error') or diag($err);
my ($acked) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
cmp_ok($acked, '>', 50, "pgbench ingested ($acked calls)");
is($failed // 0, 0, 'no ingest call failed');

# per-transaction latencies from the pgbench logs (3rd field, microseconds)
my $max_us = 0;
my $n = 0;
for my $f (glob("$logprefix.*"))
{
	open(my $lh, '<', $f) or die;
	while (<$lh>)
	{
		my @f = split;
		$n++;
		$max_us = $f[2] if $f[2] > $max_us;
	}
	close $lh;
}
is($n, $acked, 'a latency logged for every call');
cmp_ok($max_us, '<', 2_000_000, sprintf('slowest ingest call %.3f s, under 2 s', $max_us / 1e6));

is($node->safe_psql('postgres',
	q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM ev WHERE event = 'Load'}),
	"$acked|$acked", 'every acknowledged event stored exactly once');

# the worker did premake and drop partitions meanwhile
cmp_ok($node->safe_psql('postgres',
	q{SELECT count(*) FROM eventkit.partitions('ev') WHERE range_end < now() - interval '40 minutes'}),
	'<', $old_parts, 'old partitions were dropped during the run');
cmp_ok($node->safe_psql('postgres',
	q{SELECT coalesce(sum(rows_affected), 0) FROM eventkit.job_runs
	  WHERE kind = 'premake' AND status = 'succeeded'}), '>', 3,
	'new partitions were premade during the run');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM eventkit.job_runs WHERE status = 'failed'}), '0',
	'no job failed');

$node->stop;
done_testing();
