
# Copyright: eventkit authors
#
# A stream distributed on Citus: a coordinator and two workers on this
# machine (Unix sockets), shared_preload_libraries = 'citus,eventkit'.
# Checks: the guards (Citus missing, key partitions, a worker, Citus tables
# of eventkit's internal tables and of streams); Segment SDK batches through
# the coordinator give the same results as on one node, re-sends are
# duplicates and nothing is left in the coordinator's shell tables;
# concurrent clients with overlapping ids store each id once; after
# citus_move_shard_placement the ledger is still beside its events and a
# re-send stores nothing; a late event gets a new (distributed) partition;
# kill -9 of a worker in the middle of ingest, restart, re-send: each id
# exactly once; drop_stream removes the Citus tables.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;
use IPC::Run;

citus_skip_unless_installed();

my @nodes = citus_cluster();
my ($coord, $w1, $w2) = @nodes;
is($w1->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'eventkit'"),
	'1', 'CREATE EXTENSION eventkit reached the workers');

# --- the guards ---------------------------------------------------------

$coord->safe_psql('postgres', q{CREATE DATABASE nocitus});
$coord->safe_psql('nocitus', q{CREATE EXTENSION eventkit; SELECT eventkit.create_stream('ev', key_partitions => 0)});
{
	my ($ret, $out, $err) = $coord->psql('nocitus', q{SELECT eventkit.distribute_stream('ev')});
	like($err, qr/Citus is not installed in this database/, 'distribute_stream without Citus: clear error');
}

$coord->safe_psql('postgres', q{SELECT eventkit.create_stream('keyed', key_partitions => 4)});
like(psql_err($coord, q{SELECT eventkit.distribute_stream('keyed')}),
	qr/stream "keyed" has key partitions and cannot be distributed/,
	'distribute_stream on a stream with key partitions: clear error');
like(psql_err($coord, q{SELECT create_reference_table('eventkit.streams')}),
	qr/cannot make eventkit's internal table "eventkit.streams" a Citus table/,
	'create_reference_table on the catalog is refused');
like(psql_err($coord, q{SELECT create_distributed_table('eventkit.ingest_batches', 'batch_id')}),
	qr/cannot make eventkit's internal table "eventkit.ingest_batches" a Citus table/,
	'create_distributed_table on the batch log is refused');


$coord->safe_psql('postgres', q{SELECT eventkit.create_stream('events', key_partitions => 0)});
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
like(psql_err($coord, qq{SELECT create_distributed_table('eventkit_internal.ledger_$sid', 'gen')}),
	qr/cannot make eventkit's internal table "eventkit_internal.ledger_$sid" a Citus table/,
	'create_distributed_table on a ledger is refused');
like(psql_err($coord, q{SELECT create_distributed_table('events', 'user_key')}),
	qr/stream "events" must be distributed with eventkit.distribute_stream\(\)/,
	'create_distributed_table on a stream is refused');

# --- SDK batches: deterministic, ~5% re-sent, a few conflicts ------------

$coord->safe_psql(
	'postgres', q{
CREATE TABLE batches AS
SELECT k, jsonb_build_object(
		'batch', jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
			'type', CASE WHEN id % 10 = 0 THEN 'identify' ELSE 'track' END,
			'messageId', 'm-' || id,
			'userId', CASE WHEN id % 3 = 0 THEN NULL ELSE 'u' || (id % 41) END,
			'anonymousId', 'a' || (id % 53),
			'event', CASE WHEN id % 10 = 0 THEN NULL ELSE 'Order Completed' END,
			'properties', jsonb_build_object('id', id, 'revenue', id % 97),
			'originalTimestamp', to_char(now() - (id % 40) * interval '1 hour' - interval '5 seconds',
										 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
			'sentAt', to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
			ORDER BY id),
		'sentAt', to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'context', jsonb_build_object('library', jsonb_build_object('name', 'analytics.js'))) AS payload
  FROM generate_series(1, 20) k,
	   LATERAL (SELECT g AS id FROM generate_series(100 * k, 100 * k + 99) g
				UNION ALL SELECT g FROM generate_series(100 * k - 5, 100 * k - 1) g WHERE k > 1) ids
 GROUP BY k;
-- the same ids with other content: conflicts
INSERT INTO batches
SELECT 21, jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm-' || id,
		'userId', 'u' || (id % 41), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', -1)) ORDER BY id)
  FROM generate_series(101, 110) id WHERE id % 3 <> 0;
CREATE TABLE results (stream text, pass int, k int, accepted bigint, duplicates bigint,
					  conflicts bigint, quarantined bigint, rejected bigint);
SELECT eventkit.create_stream('events_local', key_partitions => 0);
});

# a few events before distributing: their ids must travel into the new ledger
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'events', 0, k, r.* FROM batches, LATERAL eventkit.ingest('events', payload) r WHERE k = 1});
$coord->safe_psql('postgres', q{SELECT eventkit.distribute_stream('events', 8)});
is( $coord->safe_psql(
		'postgres', qq{
SELECT string_agg(logicalrelid::text || ':' || partmethod::text, ',' ORDER BY logicalrelid::text)
  FROM pg_dist_partition
 WHERE logicalrelid IN ('events'::regclass, 'eventkit_ledgers.dist_ledger_$sid'::regclass)}),
	"eventkit_ledgers.dist_ledger_$sid:h,events:h",
	'the stream and its ledger are hash-distributed');
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(DISTINCT colocationid) FROM pg_dist_partition
 WHERE logicalrelid IN ('events'::regclass, 'eventkit_ledgers.dist_ledger_$sid'::regclass)}),
	'1', 'the ledger is co-located with the stream');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM events'), '100', 'rows stored before distributing are in the shards');
like(psql_err($coord, q{SELECT eventkit.distribute_stream('events')}),
	qr/stream "events" is already a Citus table/, 'distributing twice: clear error');
like(psql_err($w1, q{SELECT eventkit.distribute_stream('events')}),
	qr/must run on the Citus coordinator/, 'distribute_stream on a worker: clear error');

# pass 1: everything; pass 2: everything again (re-sends)
for my $pass (1, 2)
{
	for my $stream ('events', 'events_local')
	{
		$coord->safe_psql('postgres',
			qq{INSERT INTO results SELECT '$stream', $pass, k, r.*
				 FROM batches, LATERAL eventkit.ingest('$stream', payload) r
				WHERE k > 1 OR '$stream' = 'events_local' ORDER BY k});
	}
}
citus_counts_as_one_node($coord, q{stream = 'events' AND pass IN (0, 1)},
	q{stream = 'events_local' AND pass = 1}, '2000|95|7', 'first pass');
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(stream || ':' || a || ':' || d || ':' || c, ',' ORDER BY stream) FROM (
  SELECT stream, sum(accepted) a, sum(duplicates) d, sum(conflicts) c FROM results
   WHERE pass = 2 GROUP BY stream) s}),
	'events:0:1995:7,events_local:0:2095:7', 're-sent batches are duplicates (batch 1 was not re-sent to events)');
citus_same_events($coord);
is( $coord->safe_psql(
		'postgres', qq{
SELECT coalesce(sum(pg_relation_size(inhrelid)), 0) + pg_relation_size('events')
	   + pg_relation_size('eventkit_ledgers.dist_ledger_$sid')
  FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	'0', 'nothing was written into the coordinator\'s shell tables');
ok( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_inherits i JOIN pg_dist_partition p ON p.logicalrelid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass}) >= 2,
	'the stream\'s partitions are distributed');

# --- concurrent clients with overlapping ids -----------------------------

my $nbatches = 40;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE overlap AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ov-' || id, 'userId', 'u' || (id % 29),
			'event', 'Overlap', 'properties', jsonb_build_object('id', id))
			ORDER BY hashint4(id * 31 + k)) AS payload
  FROM generate_series(1, $nbatches) k, generate_series(40 * k, 40 * k + 99) id
 GROUP BY k;
CREATE TABLE ov_results (k bigint, accepted int, duplicates int, conflicts int);
CREATE SEQUENCE next_batch;
});
my $script = $coord->basedir . '/overlap.sql';
open(my $fh, '>', $script) or die;
print $fh q{INSERT INTO ov_results
SELECT b.k, r.accepted, r.duplicates, r.conflicts
  FROM overlap b CROSS JOIN LATERAL eventkit.ingest('events', b.payload) r
 WHERE b.k = (SELECT nextval('next_batch'));
};
close $fh;
my ($out, $err) = ('', '');
IPC::Run::run(
	[
		'pgbench', '-n', '-c', '4', '-j', '4', '-t', $nbatches / 4, '-f', $script,
		'-h', $coord->host, '-p', $coord->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
my $distinct = 40 * ($nbatches - 1) + 100;
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || sum(accepted) || '|' || sum(conflicts) FROM ov_results}),
	"$nbatches|$distinct|0", 'concurrent clients: every call answered, accepted counts add up to the distinct ids')
  or diag($err);
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Overlap'}),
	"$distinct|$distinct", 'concurrent clients: every id stored exactly once');

# --- a rollup on the distributed stream (kept on the coordinator) ---------

$coord->safe_psql('postgres',
	q{SELECT eventkit.create_rollup('hourly', 'events', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top'])});
$coord->safe_psql('postgres',
	q{SELECT eventkit.ingest('events', jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'ru-' || g, 'userId', 'u' || (g % 13), 'event', 'Rollup ' || (g % 3),
		'properties', jsonb_build_object('revenue', g)))) FROM generate_series(1, 60) g});
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly_realtime', 'events')),
	'0', 'the rollup\'s realtime view equals GROUP BY over the distributed stream');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', rollup_groupby_diff('hourly', 'events')),
	'0', 'after a refresh the rollup table equals GROUP BY over the distributed stream');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('hourly')});

# --- a shard move: the ledger moves with its events ----------------------

my $colocated = qq{
SELECT count(*) FROM pg_dist_shard se
  JOIN pg_dist_shard sl ON sl.logicalrelid = 'eventkit_ledgers.dist_ledger_$sid'::regclass
					   AND sl.shardminvalue = se.shardminvalue
  JOIN pg_dist_placement pe ON pe.shardid = se.shardid
  JOIN pg_dist_placement pl ON pl.shardid = sl.shardid
 WHERE se.logicalrelid = 'events'::regclass AND pe.groupid <> pl.groupid};
my ($shard, $from, $to) = split /\|/, $coord->safe_psql(
	'postgres', qq{
SELECT s.shardid, n.nodeport, (SELECT nodeport FROM pg_dist_node o WHERE o.noderole = 'primary'
								AND o.groupid NOT IN (0, n.groupid) LIMIT 1)
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'events'::regclass AND n.groupid <> 0
 ORDER BY s.shardid LIMIT 1});
$coord->safe_psql(
	'postgres', sprintf(
		q{SELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, shard_transfer_mode => 'block_writes')},
		$shard, $w1->host, $from, $w1->host, $to));
is( $coord->safe_psql(
		'postgres', qq{SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
						WHERE p.shardid = $shard}),
	$to, 'the shard moved');
is($coord->safe_psql('postgres', $colocated), '0', 'after the move each ledger shard is beside its events');
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'events', 3, k, r.* FROM batches, LATERAL eventkit.ingest('events', payload) r ORDER BY k});
is( $coord->safe_psql('postgres',
		q{SELECT sum(accepted) || '|' || sum(duplicates) FROM results WHERE stream = 'events' AND pass = 3}),
	'0|2095', 'after the move a re-send stores nothing new');

# --- a late event needing a new partition --------------------------------

my $parts = $coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass});
is( $coord->safe_psql(
		'postgres', q{
SELECT accepted || '|' || quarantined FROM eventkit.ingest('events', jsonb_build_object('type', 'track', 'messageId', 'late-1',
		'userId', 'u1', 'event', 'Late', 'timestamp', now() - interval '20 days'))}),
	'0|1', 'a late event waits in quarantine: the call makes no partition of a distributed stream');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	$parts, '... none made');
$coord->safe_psql('postgres',
	q{SELECT eventkit.run_maintenance('events'); SELECT eventkit.redrive_quarantine('events')});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) - } . $parts . q{ || '|' || bool_and(p.logicalrelid IS NOT NULL)
  FROM pg_inherits i LEFT JOIN pg_dist_partition p ON p.logicalrelid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass}),
	'1|true', 'maintenance made its new partition, distributed');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id = 'late-1'}),
	'1', 'the late event is stored once re-driven');

# --- kill -9 of a worker in the middle of ingest -------------------------

$coord->safe_psql(
	'postgres', q{
CREATE TABLE crash AS
SELECT k, jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'cr-' || id,
		'userId', 'u' || (id % 31), 'event', 'Crash', 'properties', jsonb_build_object('id', id))
		ORDER BY id) AS payload
  FROM generate_series(1, 60) k, generate_series(50 * k, 50 * k + 49) id
 GROUP BY k;
CREATE TABLE crash_done (k int);
});
# The client's sixth call stops after its ingest, before its COMMIT, on an
# advisory lock this test holds: the worker is killed while that distributed
# transaction has written to it, and while the client still has 54 calls to make
# (a client that had finished all 60 before the kill tested nothing).
my $crash_sql = $coord->basedir . '/crash.sql';
open($fh, '>', $crash_sql) or die;
for my $k (1 .. 60)
{
	my $call =
	  "INSERT INTO crash_done SELECT k FROM crash, LATERAL eventkit.ingest('events', payload) WHERE k = $k;\n";
	$call = "BEGIN;\n$call" . "SELECT $k AS inflight FROM pg_advisory_xact_lock_shared(4242);\nCOMMIT;\n"
	  if $k == 6;
	print $fh $call;
}
close $fh;
my $holder = $coord->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(4242)');
my ($cout, $cerr) = ('', '');
my $client = IPC::Run::start(
	[
		'psql', '-X', '-q', '-h', $coord->host, '-p', $coord->port, '-d', 'postgres',
		'-f', $crash_sql
	],
	'>', \$cout, '2>', \$cerr);
ok( $coord->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
   AND query LIKE '%AS inflight FROM pg_advisory_xact_lock_shared%'}),
	'ingest is under way: five calls done, the sixth written and waiting to commit');
my $pid = $w2->{_pid};
$w2->kill9;
$holder->quit;
$client->finish;
# The postmaster is gone, or a zombie where nothing reaps orphans (a container
# without an init process): then its PID still looks alive to the next start.
ok( poll_until(sub { !-e "/proc/$pid" || slurp_file("/proc/$pid/status") =~ /^State:\s+Z/m }),
	'the killed worker is gone');
unlink($w2->data_dir . '/postmaster.pid', $w2->host . '/.s.PGSQL.' . $w2->port . '.lock')
  if -e "/proc/$pid";
$w2->start;
ok( $coord->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM pg_dist_transaction}),
	'Citus recovered the distributed transactions');
my $done = $coord->safe_psql('postgres', q{SELECT count(*) FROM crash_done});
# five before the kill, and at most the one in flight (if its PREPARE reached the
# dying worker's backend before it noticed its postmaster was gone)
cmp_ok($done, '<=', 6, "calls failed while the worker was down ($done of 60 done)");
# a call running on the worker when it dies can take the client's session with it:
# Citus re-raises the worker's FATAL on the coordinator; SDKs reconnect and retry
like($cerr, qr/ERROR|connection to server was lost/, 'the client saw errors') or diag($cerr);
$coord->safe_psql('postgres', q{SELECT eventkit.ingest('events', payload) FROM crash ORDER BY k});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Crash'}),
	'3000|3000', 'after kill -9 of a worker and a re-send, each id is stored exactly once');
is($coord->safe_psql('postgres', $colocated), '0', 'the ledger is still beside its events');

# --- the ledger job forgets ids older than dedup_window --------------------

$coord->safe_psql('postgres', q{SELECT eventkit.alter_stream('events', dedup_window => '1 second')});
ok( poll_until(
		sub {
			$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
			$coord->safe_psql('postgres', "SELECT count(*) FROM eventkit_ledgers.dist_ledger_$sid") eq '0';
		}),
	'the ledger job emptied the distributed ledger once its ids were older than dedup_window');
is( $coord->safe_psql('postgres',
		q{SELECT accepted FROM crash, LATERAL eventkit.ingest('events', payload) WHERE k = 1}),
	'50', 'a re-send after the window is stored again, as on one node');

# --- drop_stream ----------------------------------------------------------

$coord->safe_psql('postgres', q{SELECT eventkit.drop_stream('events')});
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) FROM pg_dist_partition
 WHERE logicalrelid::text IN ('events', 'eventkit_ledgers.dist_ledger_$sid')
	OR logicalrelid::text LIKE 'events_p%'}),
	'0', 'drop_stream removed the distributed stream and its ledger');
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM eventkit.streams WHERE stream_id = $sid}),
	'0', 'and its catalog row');

$_->stop for @nodes;
done_testing();
