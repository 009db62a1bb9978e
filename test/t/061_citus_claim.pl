
# Copyright: eventkit authors
#
# The claim of ids in the ledger shards of a node (pipeline/dedup/dist_claim.c,
# in C, not through SQL) under concurrency, on a coordinator that holds shards
# and two workers, so that a call claims in its own node's shards directly and
# in the other nodes' with their node function: a call whose ids another
# transaction holds waits for it, then sees duplicates when it committed,
# conflicts when the content differs, and claims the ids itself when it rolled
# back; a call waiting there answers pg_cancel_backend within a second; two
# calls racing on the same ids store each once; an id stored before keeps its
# ledger row as it was (no new row version); under REPEATABLE READ the SQL
# claim runs instead, with the same counts.  drop_stream on this coordinator
# (which holds shards) drops the stream on every node.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;

citus_skip_unless_installed();

my @nodes = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my ($coord, $w1, $w2) = @nodes;

$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_node_property('%s', %d, 'shouldhaveshards', true)},
		$coord->host, $coord->port));
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
SELECT count(*) FROM generate_series(0, 3) h, LATERAL eventkit.ingest('events', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
-- (no call makes a partition of a distributed stream: maintenance makes them)
SELECT eventkit.run_maintenance('events');
SELECT eventkit.redrive_quarantine('events');
});
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
my $ledger = "eventkit_ledgers.dist_ledger_$sid";
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(DISTINCT p.groupid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
 WHERE s.logicalrelid = '$ledger'::regclass}),
	'3', 'the ledger\'s shards are on all three nodes');

# a batch of 200 ids of 40 users (every shard), $tag in the ids, $rev in the content
sub batch
{
	my ($tag, $rev) = @_;
	return $coord->safe_psql(
		'postgres', qq{
SELECT jsonb_build_object('batch', jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', '$tag-' || g, 'userId', 'u' || (g % 40), 'event', 'Order Completed',
		'properties', jsonb_build_object('n', g, 'rev', $rev)) ORDER BY g))
  FROM generate_series(1, 200) g});
}

sub ingest_sql
{
	my ($payload) = @_;
	return "SELECT concat_ws(',', accepted, duplicates, conflicts) FROM eventkit.ingest('events', '$payload'::jsonb);";
}

# true once some backend of some node waits for a transaction or a speculative insertion
sub claim_waits
{
	for my $n (@nodes)
	{
		return 1
		  if $n->safe_psql('postgres',
			q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			  AND wait_event IN ('transactionid', 'speculative token')}) eq 't';
	}
	return 0;
}

# the ledger shards' rows: id, version (xmin, ctid) and batch of each
sub ledger_rows
{
	return $coord->safe_psql(
		'postgres', qq{
SELECT string_agg(result, ';' ORDER BY shardid) FROM run_command_on_shards('$ledger',
  \$\$SELECT coalesce(string_agg(message_id || ' ' || xmin || ' ' || ctid || ' ' || batch_id, ',' ORDER BY message_id), '') FROM %s\$\$)});
}

# --- a holder that commits: the waiting call's ids are duplicates
my $x = batch('x', 1);
my $holder = $w1->background_psql('postgres');
my $waiter = $w2->background_psql('postgres');
is($holder->query_safe("BEGIN; " . ingest_sql($x)), '200,0,0', 'the holder claims 200 ids in its transaction');
$waiter->query_until(qr/sent/, "\\echo sent\n" . ingest_sql($x) . "\n");
ok(poll_until(\&claim_waits), 'a call of the same ids waits for the holder on a ledger shard');

# --- a call waiting there answers a cancel within a second
my $canceled = $coord->background_psql('postgres', on_error_stop => 0);
$canceled->query_until(qr/sent/, "\\echo sent\nSELECT pg_backend_pid() AS pid \\gset\n" . ingest_sql($x) . "\n");
ok( poll_until(
		sub {
			$coord->safe_psql('postgres',
				q{SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%eventkit.ingest%'
				  AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active'
				  AND wait_event IS NOT NULL}) eq 't';
		}),
	'a third call, on the coordinator, waits too');
my $pid = $coord->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%eventkit.ingest%'
	  AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active'});
my $t0 = time();
$coord->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
my ($out, $ret) = $canceled->query('SELECT 1');
my $took = time() - $t0;
like($canceled->{stderr}, qr/canceling statement due to user request/, 'the waiting call is canceled');
ok($took < 1.0, "... within a second (took ${took}s)");
$canceled->quit;

is($holder->query_safe('COMMIT'), '', 'the holder commits');
is($waiter->query_safe('SELECT 1'), "0,200,0\n1", 'the waiting call answers 200 duplicates');
my $before = ledger_rows();

# --- a holder that rolls back: the waiting call claims the ids
my $y = batch('y', 1);
is($holder->query_safe("BEGIN; " . ingest_sql($y)), '200,0,0', 'a holder claims 200 other ids');
$waiter->query_until(qr/sent/, "\\echo sent\n" . ingest_sql($y) . "\n");
ok(poll_until(\&claim_waits), 'a call of the same ids waits for it');
$holder->query_safe('ROLLBACK');
is($waiter->query_safe('SELECT 1'), "200,0,0\n1", 'after its rollback the waiting call claims all 200');

# --- the same ids with other content: conflicts
my $z = batch('z', 1);
my $z2 = batch('z', 2);
is($holder->query_safe("BEGIN; " . ingest_sql($z)), '200,0,0', 'a holder claims 200 more ids');
$waiter->query_until(qr/sent/, "\\echo sent\n" . ingest_sql($z2) . "\n");
ok(poll_until(\&claim_waits), 'a call of the same ids with other content waits for it');
$holder->query_safe('COMMIT');
is($waiter->query_safe('SELECT 1'), "0,0,200\n1", 'after its commit they are 200 conflicts');
$holder->quit;
$waiter->quit;

# --- two clients on two nodes racing on the same ids, 10 batches each
$coord->safe_psql(
	'postgres', q{
CREATE TABLE race AS
SELECT k, jsonb_build_object('batch', jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'r-' || g, 'userId', 'u' || (g % 37), 'event', 'Order Completed',
		'properties', jsonb_build_object('n', g)) ORDER BY g)) AS payload
  FROM generate_series(1, 10) k, LATERAL generate_series(100 * k, 100 * k + 149) g
 GROUP BY k});
my ($calls, $accepted, $conflicts, @other) = citus_clients(
	$coord,
	[ $w1, 'SELECT payload FROM race ORDER BY k' ],
	[ $w2, 'SELECT payload FROM race ORDER BY k' ],
	[ $coord, 'SELECT payload FROM race ORDER BY k DESC' ]);
is($calls, 30, 'three clients racing on the same ids: every call answered') or diag(join("\n", @other));
is($accepted, 1050, '... each of the 1,050 ids accepted once');
is($conflicts, 0, '... and no conflict');

# --- ids stored before keep their ledger rows as they were
is($coord->safe_psql('postgres', ingest_sql($x)), '0,200,0', 're-sent ids are duplicates');
my $after = ledger_rows();
my @xrows_before = sort grep { /^x-/ } map { split /[,;]/ } $before;
my @xrows_after = sort grep { /^x-/ } map { split /[,;]/ } $after;
is(scalar(@xrows_before), 200, 'the 200 ids of the first batch are in the ledger shards');
is_deeply(\@xrows_after, \@xrows_before,
	'... and a re-send of them left their rows as they were (no new row version)');

# --- REPEATABLE READ: the SQL claim, the same counts
is( $w1->safe_psql('postgres',
		'BEGIN ISOLATION LEVEL REPEATABLE READ; ' . ingest_sql($x) . ' COMMIT;'),
	'0,200,0', 'under REPEATABLE READ re-sent ids are duplicates too');
my $w = batch('w', 1);
is( $w1->safe_psql('postgres',
		'BEGIN ISOLATION LEVEL REPEATABLE READ; ' . ingest_sql($w) . ' COMMIT;'),
	'200,0,0', '... and new ids new');

# every id stored once
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || ',' || count(DISTINCT (user_key, message_id)) FROM events WHERE event <> 'Warm'}),
	'1850,1850', 'every id stored once (x, y, z, the race and w)');
is($coord->safe_psql('postgres', "SELECT count(*) FROM $ledger WHERE message_id NOT LIKE 'warm-%'"),
	'1850', 'the ledger holds each once');

# drop_stream on a coordinator that holds shards: Citus drops the
# coordinator's own shards from its sql_drop trigger, and eventkit's
# sql_drop trigger, fired again by those drops, leaves the stream to the
# DROP of the stream itself (it failed: "cannot execute a distributed query
# from a query on a shard")
is(psql_err($coord, q{SELECT eventkit.drop_stream('events')}), '',
	'drop_stream of the distributed stream on a coordinator that holds shards');
for my $n ($coord, $w1, $w2)
{
	is( $n->safe_psql(
			'postgres', qq{
SELECT (to_regclass('events') IS NULL) || ',' || (to_regclass('$ledger') IS NULL) || ','
	   || (SELECT count(*) FROM eventkit.streams) || ',' || (SELECT count(*) FROM eventkit_internal.cluster_streams)}),
		'true,true,0,0', '... the stream, its ledger and its catalog rows are gone on ' . $n->name);
}

done_testing();
