
# Copyright: eventkit authors
#
# The per-shard fast path of ingest on Citus: a coordinator that holds
# shards too (shouldhaveshards) and two workers, so that every node has
# local and remote shards of the stream.  Checks: ingest on each node
# claims and writes its own shards directly (no statement reaches a node's
# own shards through Citus: log_statement on a worker) and each other
# node's with one call of the stream's node function there (each of the
# coordinator's calls reaches worker 1 with one, and no claim statement);
# two calls of the same ids in one transaction (the second through Citus)
# store each id once; the counts equal one node's; re-sends through any node are
# duplicates; rows are in the shard tables, none in the shells; concurrent
# clients on two nodes with overlapping ids store each id once; after a
# shard move a re-send through every node stores nothing new, and new ids
# land on the shard's new node; a rollup of a stream ingested on the
# coordinator (local and remote shards) equals GROUP BY, and its batches
# have rollup deltas (concurrent sessions with overlapping re-sends while a
# third refreshes, late events), which the refresh and the realtime view
# read instead of sending the stream's shards a statement
# (citus.log_remote_commands); a rollup made before distribute_stream too.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;

citus_skip_unless_installed();

my @nodes = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my ($coord, $w1, $w2) = @nodes;

# the coordinator holds shards too: every node has local and remote shards
$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_node_property('%s', %d, 'shouldhaveshards', true)},
		$coord->host, $coord->port));
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.create_stream('events_local', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
});
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(DISTINCT p.groupid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
 WHERE s.logicalrelid = 'events'::regclass}),
	'3', 'the stream\'s shards are on all three nodes');

# SDK-style batches: ~5% re-sent from the batch before, a few conflicts
$coord->safe_psql(
	'postgres', q{
CREATE TABLE batches AS
SELECT k, jsonb_build_object('batch', jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'm-' || id,
			'userId', 'u' || (id % 41), 'anonymousId', 'a' || (id % 53),
			'event', 'Order Completed',
			'properties', jsonb_build_object('id', id, 'revenue', id % 97),
			'timestamp', to_char(now() - (id % 40) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
			ORDER BY id)) AS payload
  FROM generate_series(1, 15) k,
	   LATERAL (SELECT g AS id FROM generate_series(100 * k, 100 * k + 99) g
				UNION ALL SELECT g FROM generate_series(100 * k - 5, 100 * k - 1) g WHERE k > 1) ids
 GROUP BY k;
INSERT INTO batches
SELECT 16, jsonb_build_object('batch', jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm-' || id,
		'userId', 'u' || (id % 41), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', -1)) ORDER BY id))
  FROM generate_series(101, 107) id;
CREATE TABLE results (node text, pass int, k int, accepted bigint, duplicates bigint,
					  conflicts bigint, quarantined bigint, rejected bigint);
SELECT count(*) FROM generate_series(0, 41) h, LATERAL eventkit.ingest('events', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
-- (no call makes a partition of a distributed stream: maintenance makes them)
SELECT eventkit.run_maintenance('events');
SELECT eventkit.redrive_quarantine('events');
INSERT INTO results SELECT 'local', 1, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r ORDER BY k;
});

sub ingest_on { return citus_ingest_on($coord, @_); }

# --- first pass: batches 1-5 on the coordinator, 6-10 on worker 1, 11-16 on worker 2
# (worker 1 logs every statement it receives meanwhile)
$w1->safe_psql('postgres', q{ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf()});
$w1->poll_query_until('postgres', q{SELECT current_setting('log_statement') = 'all'});
my $w1_log = -s $w1->logfile;
ingest_on($coord, 1, 'k <= 5');
ingest_on($w1, 1, 'k BETWEEN 6 AND 10');
ingest_on($w2, 1, 'k > 10');
$w1->safe_psql('postgres', q{ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf()});
my $log = slurp_file($w1->logfile, $w1_log);
my $own = $w1->safe_psql(
	'postgres', qq{
SELECT string_agg(s.shardid::text, ',') FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
 WHERE s.logicalrelid = 'eventkit_ledgers.dist_ledger_$sid'::regclass
   AND p.groupid = (SELECT groupid FROM pg_dist_local_group)});
ok(length($own) > 0, 'worker 1 holds ledger shards');
# Citus's connections name their origin: application_name "citus_internal
# gpid=N", N = the origin's node id * 10^10 + its pid
my $w1_node = $coord->safe_psql('postgres', sprintf(q{SELECT nodeid FROM pg_dist_node WHERE nodeport = %d}, $w1->port));
my $w2_node = $coord->safe_psql('postgres', sprintf(q{SELECT nodeid FROM pg_dist_node WHERE nodeport = %d}, $w2->port));
my $coord_node = $coord->safe_psql('postgres', sprintf(q{SELECT nodeid FROM pg_dist_node WHERE nodeport = %d}, $coord->port));
my (%from_node, %node_calls, %calls_of);
while ($log =~ /citus_internal gpid=(\d+)[^\n]*(?:statement|execute [^:\n]*): INSERT INTO eventkit_ledgers\.dist_ledger_${sid}_\d+/g)
{
	$from_node{int($1 / 10000000000)}++;
}
# one call of the stream's node function per other node's call: it claims
# and writes that call's ids of worker 1's shards there
while ($log =~ /citus_internal gpid=(\d+)[^\n]*(?:statement|execute [^:\n]*): SELECT pos, fingerprint, claimed, written FROM eventkit_ledgers\.dist_node_${sid}\(/g)
{
	$node_calls{int($1 / 10000000000)}++;
	$calls_of{$1}++;
}
is($node_calls{$coord_node}, 5,
	'each of the coordinator\'s 5 calls claimed and wrote in worker 1\'s shards with one call of the node function')
  or diag(explain \%node_calls);
is(scalar(grep { int($_ / 10000000000) == $coord_node && $calls_of{$_} == 1 } keys %calls_of), 5,
	'one node call per call (5 sessions, one each)')
  or diag(explain \%calls_of);
ok($node_calls{$w2_node} >= 5,
	'worker 2\'s calls too (its first may adopt the stream and take the statements through Citus)')
  or diag(explain \%node_calls);
ok(!$from_node{$coord_node},
	'no claim statement reached worker 1\'s ledger shards from the coordinator through Citus')
  or diag(explain \%from_node);
ok(!$from_node{$w1_node} && !$node_calls{$w1_node},
	'worker 1\'s own calls claimed in its own ledger shards directly, not through a connection to itself')
  or diag(explain \%from_node);
citus_counts_as_one_node($coord, q{pass = 1 AND node <> 'local'}, q{node = 'local'}, '1500|70|7',
	'through any node');
citus_same_events($coord, q{event <> 'Warm'});

# two calls in one transaction, the second re-sending the first's ids: the
# first claims and writes the other nodes' shards with node calls, the
# second (its transaction has written) through Citus; on each node, no
# wait on itself, each id once
for my $n ($coord, $w1)
{
	my $tag = 'tx-' . $n->name;
	is( $n->safe_psql(
			'postgres', qq{
SET statement_timeout = '60s';
CREATE TEMP TABLE tx AS SELECT jsonb_build_object('batch', jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', '$tag-' || id, 'userId', 'u' || (id % 41), 'event', 'Tx',
		'properties', jsonb_build_object('id', id)))) AS payload FROM generate_series(1, 120) id;
BEGIN;
SELECT concat_ws(',', accepted, duplicates) FROM tx, LATERAL eventkit.ingest('events', payload);
SELECT concat_ws(',', accepted, duplicates) FROM tx, LATERAL eventkit.ingest('events', payload);
COMMIT;}),
		"120,0\n0,120", 'two calls of the same ids in one transaction on ' . $n->name);
	is( $coord->safe_psql(
			'postgres', "SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE message_id LIKE '$tag-%'"),
		'120|120', '... each id stored once');
}

# rows are in the shard tables, none in the shells
is($coord->safe_psql('postgres', q{SELECT count(*) FROM ONLY events}), '0',
	'nothing in the coordinator\'s shell table (ONLY events)');
for my $n ($coord, $w1, $w2)
{
	is( $n->safe_psql(
			'postgres', q{
SELECT coalesce(sum(pg_relation_size(inhrelid)), 0) + pg_relation_size('events')
  FROM pg_inherits WHERE inhparent = 'events'::regclass}),
		'0', 'nothing written into the shell tables on ' . $n->name);
}
is( $coord->safe_psql(
		'postgres', q{
SELECT sum(result::bigint) FROM run_command_on_shards('events', 'SELECT count(*) FROM %s')}),
	$coord->safe_psql('postgres', q{SELECT count(*) FROM events}),
	'the shard tables hold every row of the stream');
is( $coord->safe_psql(
		'postgres', qq{
SELECT sum(result::bigint) FROM run_command_on_shards('eventkit_ledgers.dist_ledger_$sid', 'SELECT count(*) FROM %s')}),
	$coord->safe_psql('postgres', q{SELECT count(*) FROM events}),
	'the ledger shards hold one id per stored row');

# --- re-sends through any node --------------------------------------------------
ingest_on($w2, 2, 'k <= 8');
ingest_on($coord, 2, 'k > 8');
ingest_on($w1, 3, 'k <= 16');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(pass || ':' || a || ':' || d, ',' ORDER BY pass) FROM (
  SELECT pass, sum(accepted) a, sum(duplicates) + sum(conflicts) d FROM results WHERE pass IN (2, 3) GROUP BY pass) s}),
	'2:0:1577,3:0:1577', 're-sent through other nodes: nothing new is stored');

# --- concurrent clients on two nodes, overlapping ids ----------------------------
my $nbatches = 20;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE overlap AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ov-' || id, 'userId', 'u' || (id % 29),
			'event', 'Overlap', 'properties', jsonb_build_object('id', id))
			ORDER BY hashint4(id * 31 + k))::text AS payload
  FROM generate_series(1, $nbatches) k, generate_series(40 * k, 40 * k + 99) id
 GROUP BY k;
});
# both clients send every batch, in two orders
my ($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	[ $w1, 'SELECT payload FROM overlap ORDER BY k' ],
	[ $w2, 'SELECT payload FROM overlap ORDER BY k DESC' ]);
my $distinct = 40 * ($nbatches - 1) + 100;
is("$calls|$accepted|$conflicts", (2 * $nbatches) . "|$distinct|0",
	'concurrent clients on two workers: every call answered, accepted counts add up to the distinct ids')
  or diag($other);
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Overlap'}),
	"$distinct|$distinct", 'concurrent clients on two workers: every id stored exactly once');

# --- a shard move, then re-sends through every node -------------------------------
my ($shard, $from, $to) = split /\|/, $coord->safe_psql(
	'postgres', sprintf(q{
SELECT s.shardid, n.nodeport, %d
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'events'::regclass AND n.nodeport = %d
 ORDER BY s.shardid LIMIT 1}, $w2->port, $w1->port));
$coord->safe_psql(
	'postgres', sprintf(
		q{SELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, shard_transfer_mode => 'block_writes')},
		$shard, $w1->host, $from, $w1->host, $to));
is( $coord->safe_psql(
		'postgres', qq{SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
						WHERE p.shardid = $shard}),
	$to, 'a shard of worker 1 moved to worker 2');
ingest_on($w1, 4, 'k <= 5');
ingest_on($w2, 4, 'k BETWEEN 6 AND 10');
ingest_on($coord, 4, 'k > 10');
is( $coord->safe_psql(
		'postgres', q{SELECT sum(accepted) || '|' || sum(duplicates) + sum(conflicts) FROM results WHERE pass = 4}),
	'0|1577', 'after the move a re-send through every node stores nothing new');
# new ids after the move: those of the moved shard are on worker 2 now
is( $w1->safe_psql(
		'postgres', q{
SELECT accepted FROM eventkit.ingest('events', (SELECT jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'post-' || g, 'userId', 'p' || g, 'event', 'Post')) FROM generate_series(1, 200) g))}),
	'200', 'new ids after the move, through worker 1: all stored');
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) FROM events e WHERE event = 'Post'
   AND get_shard_id_for_distribution_column('events', e.user_key) = $shard}),
	$w2->safe_psql('postgres', qq{SELECT count(*) FROM events_$shard WHERE event = 'Post'}),
	'the moved shard\'s new rows are in its table on worker 2');
cmp_ok($w2->safe_psql('postgres', qq{SELECT count(*) FROM events_$shard WHERE event = 'Post'}),
	'>', 0, '... some of them');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Post'}),
	'200|200', '... and each once');
is( $w1->safe_psql(
		'postgres', q{
SELECT accepted || '|' || duplicates FROM eventkit.ingest('events', (SELECT jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'post-' || g, 'userId', 'p' || g, 'event', 'Post')) FROM generate_series(1, 200) g))}),
	'0|200', 'and re-sent, they are duplicates');

# --- more than 16,000 ids for one node: claimed in pieces of one order --------
$coord->safe_psql('postgres',
	q{SELECT eventkit.alter_stream('events', max_batch_items => 20000, max_batch_bytes => 16777216)});
my $bigkey = $coord->safe_psql(
	'postgres', sprintf(q{
SELECT k FROM (SELECT g, 'big-' || g AS k FROM generate_series(1, 100) g) s
 WHERE (SELECT p.groupid FROM pg_dist_placement p
		 WHERE p.shardid = get_shard_id_for_distribution_column('events', s.k))
	 = (SELECT groupid FROM pg_dist_node WHERE nodeport = %d)
 ORDER BY g LIMIT 1}, $w2->port));
my $big = qq{
SELECT accepted || '|' || duplicates FROM eventkit.ingest('events', (SELECT jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'big-' || g, 'userId', '$bigkey', 'event', 'Big')) FROM generate_series(1, 17000) g))};
is($w1->safe_psql('postgres', $big), '17000|0',
	'17,000 new ids of a shard of worker 2, through worker 1: all stored');
is($w1->safe_psql('postgres', $big), '0|17000', '... and re-sent, all duplicates');
is($coord->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Big'}),
	'17000|17000', '... each stored once');

# --- a rollup, ingest on the coordinator (local and remote shards) -----------
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('rolled', key_partitions => 0);
SELECT eventkit.distribute_stream('rolled', 8);
SELECT eventkit.create_rollup('rolled_hourly', 'rolled', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
SELECT count(*) FROM generate_series(0, 41) h, LATERAL eventkit.ingest('rolled', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
-- (no call makes a partition of a distributed stream: maintenance makes them)
SELECT eventkit.run_maintenance('rolled');
SELECT eventkit.redrive_quarantine('rolled');
SELECT count(*) FROM batches, LATERAL eventkit.ingest('rolled', payload) r;
SELECT eventkit.refresh_rollup('rolled_hourly');
SELECT count(*) FROM batches, LATERAL eventkit.ingest('rolled', payload) r WHERE k <= 3;
});
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly_realtime', 'rolled')),
	'0', 'a rollup of a stream ingested on the coordinator (local and remote shards): realtime equals GROUP BY');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('rolled_hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly', 'rolled')),
	'0', '... and after a refresh the rollup table equals GROUP BY');

# --- its rollup deltas: concurrent coordinator sessions, re-sends, late events ---
# Two sessions on the coordinator send every batch (in two orders, so each
# re-sends the other's ids, and within a batch ~5% of the batch before),
# users over all shards; then a batch of late events (new partitions).
$coord->safe_psql(
	'postgres', q{
CREATE TABLE rolled_overlap AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ro-' || id, 'userId', 'u' || (id % 37),
			'event', CASE WHEN id % 3 = 0 THEN 'Order Completed' ELSE 'Viewed' END,
			'properties', jsonb_build_object('revenue', id % 89),
			'timestamp', to_char(now() - (id % 30) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
			ORDER BY hashint4(id * 17 + k))::text AS payload
  FROM generate_series(1, 12) k, generate_series(60 * k - 5, 60 * k + 59) id
 GROUP BY k;
});
# a second rollup with the other measures (hll and t-digest in the view's tail)
$coord->safe_psql(
	'postgres', q{
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
SELECT eventkit.create_rollup('rolled_users', 'rolled', '1 day', ARRAY['event'],
		ARRAY['distinct(user_id) AS users', 'percentile(properties.revenue, 0.5) AS p50',
			  'avg(properties.revenue) AS mean', 'min(properties.revenue) AS low']);
});
my $users_diff = q{
SELECT count(*) FROM (
  (SELECT bucket, event, users, round(mean, 6), low FROM rolled_users_realtime
   EXCEPT SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
				 round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
			FROM rolled GROUP BY 1, 2)
  UNION ALL
  (SELECT date_bin('1 day', ts, '2000-01-01'), event, count(DISTINCT user_id),
		  round(avg((properties->>'revenue')::numeric), 6), min((properties->>'revenue')::numeric)
	 FROM rolled GROUP BY 1, 2
   EXCEPT SELECT bucket, event, users, round(mean, 6), low FROM rolled_users_realtime)) d};
my $rolled_sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'rolled'::regclass});
my $delta_batches = qq{
SELECT (SELECT count(DISTINCT batch_id) FROM rolled_hourly_delta) || '|' ||
	   (SELECT count(*) FROM eventkit.ingest_batches b
		 WHERE b.stream_id = $rolled_sid AND b.accepted > 0
		   AND b.batch_id > (SELECT watermark FROM eventkit.rollups WHERE relid = 'rolled_hourly'::regclass))};
# meanwhile a third session refreshes the second rollup again and again
my $refresher_out = '';
my $refresher = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
	  '-d', 'postgres', '-c', q{
DO $$
BEGIN
	FOR i IN 1..40 LOOP
		PERFORM eventkit.refresh_rollup('rolled_users');
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$} ],
	'>', \$refresher_out, '2>', \$refresher_out);
($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	[ $coord, 'SELECT payload FROM rolled_overlap ORDER BY k', 'rolled' ],
	[ $coord, 'SELECT payload FROM rolled_overlap ORDER BY k DESC', 'rolled' ]);
$refresher->finish;
is("$calls|$accepted|$conflicts", '24|725|0',
	'two concurrent coordinator sessions, overlapping ids: each id accepted once')
  or diag($other);
is($refresher_out =~ s/\s+$//r, 'DO', 'a third session refreshed a rollup 40 times meanwhile, without error');
my ($nd, $nb) = split /\|/, $coord->safe_psql('postgres', $delta_batches);
ok($nb > 0 && $nd == $nb,
	"every batch that stored events on the distributed stream has rollup deltas ($nd of $nb)");
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly_realtime', 'rolled')),
	'0', 'concurrent ingest: the realtime view equals GROUP BY over the distributed stream');
is($coord->safe_psql('postgres', $users_diff), '0',
	'concurrent ingest and refreshes: the second rollup\'s realtime view equals GROUP BY');

# a late batch: events days old (they wait in quarantine for maintenance to
# make their partitions, and are re-driven)
is( $coord->safe_psql(
		'postgres', q{
SELECT accepted || '|' || quarantined FROM eventkit.ingest('rolled', (SELECT jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'late-' || g, 'userId', 'late' || g, 'event', 'Viewed',
		'properties', jsonb_build_object('revenue', g),
		'timestamp', to_char(now() - interval '12 days' - g * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
  FROM generate_series(1, 40) g))}),
	'0|40', 'a batch of late events waits in quarantine');
$coord->safe_psql('postgres',
	q{SELECT eventkit.run_maintenance('rolled'); SELECT eventkit.redrive_quarantine('rolled')});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM rolled WHERE message_id LIKE 'late-%'}),
	'40', '... and is stored once maintenance made its partitions and re-drove it');
($nd, $nb) = split /\|/, $coord->safe_psql('postgres', $delta_batches);
is($nd, $nb, '... with its deltas');
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly_realtime', 'rolled')),
	'0', 'after late events the realtime view equals GROUP BY');
is($coord->safe_psql('postgres', $users_diff), '0',
	'distinct, avg and min in the realtime view (from deltas) equal GROUP BY');
$coord->safe_psql('postgres',
	q{CREATE TABLE users_before AS SELECT bucket, event, users, p50 FROM rolled_users_realtime});

# what goes through Citus: every statement Citus sends a shard, remote or
# local, is a NOTICE with these settings
my $citus_log = q{SET citus.log_remote_commands = on; SET citus.log_local_commands = on; };
sub citus_commands
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $coord->psql('postgres', $citus_log . $sql);
	die "$sql: $err" if $ret != 0;
	return join("\n", grep { /rolled_\d+/ } split /\n/, $err);
}
isnt(citus_commands('SELECT count(*) FROM rolled'), '',
	'(a query of the stream shows the statements Citus sends its shards)');
is(citus_commands('SELECT count(*) FROM rolled_hourly_realtime'), '',
	'the realtime view reads the deltas: no statement to the stream\'s shards');
is(citus_commands(q{SELECT eventkit.refresh_rollup('rolled_hourly')}), '',
	'the refresh reads the deltas: no statement to the stream\'s shards');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM rolled_hourly_delta'), '0',
	'the refresh folded the deltas (none left)');
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly', 'rolled')),
	'0', 'after the refresh the rollup table equals GROUP BY over the distributed stream');
is($coord->safe_psql('postgres', rollup_groupby_diff('rolled_hourly_realtime', 'rolled')),
	'0', '... and so does the realtime view');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('rolled_users')});
is($coord->safe_psql('postgres', $users_diff), '0',
	'the second rollup after its refresh: distinct, avg and min equal GROUP BY');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM ((TABLE users_before EXCEPT SELECT bucket, event, users, p50 FROM rolled_users_realtime)
  UNION ALL (SELECT bucket, event, users, p50 FROM rolled_users_realtime EXCEPT TABLE users_before)) d}),
	'0', 'its realtime view from the deltas (hll and t-digest merged per row) equals the refreshed rollup');

# --- a rollup made before its stream was distributed ---------------------------
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('rolled_pre', key_partitions => 0);
SELECT eventkit.create_rollup('pre_hourly', 'rolled_pre', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top']);
SELECT count(*) FROM batches, LATERAL eventkit.ingest('rolled_pre', payload) r WHERE k <= 4;
SELECT eventkit.distribute_stream('rolled_pre', 8);
SELECT count(*) FROM batches, LATERAL eventkit.ingest('rolled_pre', payload) r WHERE k > 2;
});
is($coord->safe_psql('postgres', rollup_groupby_diff('pre_hourly_realtime', 'rolled_pre')),
	'0', 'a rollup made before distribute_stream: its realtime view equals GROUP BY');
is(join("\n", grep { /rolled_pre_\d+/ } split /\n/,
		($coord->psql('postgres', $citus_log . 'SELECT count(*) FROM pre_hourly_realtime'))[2]),
	'', '... and reads the deltas (distribute_stream made it again)');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('pre_hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('pre_hourly', 'rolled_pre')),
	'0', '... and after a refresh the rollup table equals GROUP BY');

# a reader granted only the realtime view reads it (the tail's function
# checks the view's privilege, then reads as the rollup's owner)
$coord->safe_psql(
	'postgres', q{
CREATE ROLE rollup_reader;
GRANT SELECT ON rolled_hourly_realtime TO rollup_reader;
SELECT count(*) FROM eventkit.ingest('rolled', '{"type":"track","event":"Viewed","userId":"r1","messageId":"reader-1","properties":{"revenue":5}}');
});
is( $coord->safe_psql(
		'postgres', q{SET ROLE rollup_reader; SELECT sum(count) FROM rolled_hourly_realtime}),
	$coord->safe_psql('postgres', q{SELECT count(*) FROM rolled}),
	'a role granted only the realtime view reads it');
like(psql_err($coord, q{SET ROLE rollup_reader; SELECT count(*) FROM rolled_hourly}),
	qr/permission denied/, '... and not the rollup table');

done_testing();
