
# Copyright: eventkit authors
#
# Two clients (four in the last round) ingest overlapping batches at the
# same time, as a collector does when retries and re-sends of neighbouring
# batches race each other.  Batch k holds ids 40k .. 40k+99 in a shuffled
# order, so each batch shares ids with the two before and the two after it.
# Ingest claims new ids without waiting, writes those events, and only then
# waits for the batches holding its other ids in flight (pipeline/dedup/
# dedup.c): no call may fail (no deadlock), and every id is stored exactly
# once, with the calls' accepted counts adding up to it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $nbatches = 400;
my $rounds = 3;

my $node = PostgreSQL::Test::Cluster->new('concurrent_batches');
$node->init;
$node->append_conf('postgresql.conf', "deadlock_timeout = '100ms'\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION eventkit;
CREATE TABLE batches AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'm-' || id, 'userId', 'u' || (id % 7),
			'event', 'Overlap', 'properties', jsonb_build_object('id', id))
			ORDER BY hashint4(id * 31 + k)) AS payload
  FROM generate_series(1, $nbatches) k, generate_series(40 * k, 40 * k + 99) id
 GROUP BY k;
CREATE TABLE results (round int, k bigint, accepted int, duplicates int, conflicts int);
CREATE SEQUENCE next_batch;
});

my $script = $node->basedir . '/ingest.sql';
open(my $fh, '>', $script) or die;
print $fh q{INSERT INTO results
SELECT :round, b.k, r.accepted, r.duplicates, r.conflicts
  FROM batches b CROSS JOIN LATERAL eventkit.ingest('ov', b.payload) r
 WHERE b.k = (SELECT nextval('next_batch'));
};
close $fh;

my $distinct = 40 * ($nbatches - 1) + 100;
for my $round (1 .. $rounds)
{
	my $clients = $round == $rounds ? 4 : 2;
	$node->safe_psql(
		'postgres', q{
SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c WHERE c.oid = to_regclass('ov');
SELECT eventkit.create_stream('ov');
SELECT setval('next_batch', 1, false);
});
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-c', $clients, '-j', $clients, '-t', $nbatches / $clients,
			'-D', "round=$round", '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	is($?, 0, "round $round: pgbench finished without error") or diag($err);
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, "round $round: no ingest call failed");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) || '|' || sum(accepted) || '|' || sum(accepted + duplicates) || '|' || sum(conflicts)
  FROM results WHERE round = $round}),
		"$nbatches|$distinct|" . (100 * $nbatches) . "|0",
		"round $round: every call answered, accepted counts add up to the distinct ids");
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) || '|' || count(DISTINCT message_id) FROM ov}),
		"$distinct|$distinct", "round $round: every id stored exactly once");
}

my $log = slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock was detected');

$node->stop;
done_testing();
