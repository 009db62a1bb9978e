
# Copyright: eventkit authors
#
# Routed clients of a distributed stream (docs/citus.md, "Routing clients"):
# eventkit.route_events and eventkit.route_user say which node holds the
# shard of each event's user key, and a batch whose events all belong to
# the node it is sent to touches no other node.  On a coordinator that holds
# shards and two workers: route_events answers the same on every node,
# derives the user key as ingest does (userId, else anonymousId, a number as
# its text, a missing messageId as ingest derives it), and names the shard
# and node Citus itself finds for the key; route_user likewise; a plain
# stream, a role without SELECT and a NULL stream are refused; a role with
# SELECT only may route.  The batches split by node and sent each to its
# node by one session per node: no statement of those sessions reaches
# another node (citus.log_remote_commands in the session, log_statement on
# the others: nothing from the session's gpid) but, from a worker's, the
# batch's identity links to the coordinator's graph (1.16: the COPY into
# the stream's worker links table and its two-phase commit), while a mixed batch (the
# positive control) does; their counts and rows equal one node's
# (accepted, duplicates, conflicts, quarantined, each id stored once, the
# first copy kept); re-sent, routed or not, they are all duplicates or
# conflicts, as on one node.  With a rollup, a routed call on a worker
# writes its deltas into its own node's shard of the worker delta table
# (1.17, eventkit.worker_deltas_on_shards): it sends the coordinator only its identity links and reaches no
# other worker.
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

# the coordinator holds shards too: every node is a route's destination
$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_node_property('%s', %d, 'shouldhaveshards', true)},
		$coord->host, $coord->port));
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.create_stream('events_local', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
CREATE ROLE ek_reader;
CREATE ROLE ek_nobody;
GRANT SELECT ON events TO ek_reader;
});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(DISTINCT p.groupid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
 WHERE s.logicalrelid = 'events'::regclass}),
	'3', 'the stream\'s shards are on all three nodes');

# SDK-style batches: ~5% re-sent from the batch before; users by userId,
# by anonymousId alone (userId null or empty) and by a numeric userId;
# batch 13: changed copies of batch 2's ids (conflicts), an in-batch
# re-send, an event without messageId and two without any user id
# (quarantined)
$coord->safe_psql(
	'postgres', q{
CREATE FUNCTION ev(id int, revenue int) RETURNS jsonb LANGUAGE sql AS $$
SELECT jsonb_build_object('type', 'track', 'messageId', 'm-' || id,
		'userId', CASE WHEN id % 7 = 0 THEN 'null'::jsonb WHEN id % 17 = 0 THEN '""'::jsonb
					   WHEN id % 11 = 0 THEN to_jsonb(id % 13) ELSE to_jsonb('u' || (id % 41)) END,
		'anonymousId', 'a' || (id % 53), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', revenue),
		'timestamp', to_char(now() - (id % 40) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
CREATE TABLE batches AS
SELECT k, jsonb_build_object('sentAt', '2026-01-01T00:00:00Z', 'batch', jsonb_agg(ev(id, id % 97) ORDER BY id)) AS payload
  FROM generate_series(1, 12) k,
	   LATERAL (SELECT g AS id FROM generate_series(100 * k, 100 * k + 99) g
				UNION ALL SELECT g FROM generate_series(100 * k - 5, 100 * k - 1) g WHERE k > 1) ids
 GROUP BY k;
INSERT INTO batches
SELECT 13, jsonb_build_object('batch',
		(SELECT jsonb_agg(ev(id, -1) ORDER BY id) FROM generate_series(201, 206) id)
		|| jsonb_build_array(ev(1300, 5), ev(1300, 5),
							 ev(1301, 6) - 'messageId',
							 jsonb_build_object('type', 'track', 'messageId', 'm-x1', 'event', 'No User'),
							 jsonb_build_object('type', 'track', 'messageId', 'm-x2', 'event', 'No User', 'userId', '')));
CREATE TABLE results (node text, pass int, k int, accepted bigint, duplicates bigint,
					  conflicts bigint, quarantined bigint, rejected bigint);
SELECT count(*) FROM generate_series(0, 41) h, LATERAL eventkit.ingest('events', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
-- (no call makes a partition of a distributed stream: maintenance makes them)
SELECT eventkit.run_maintenance('events');
SELECT eventkit.redrive_quarantine('events');
});

# --- the routes
my $routes = q{SELECT b.k, r.* FROM batches b, LATERAL eventkit.route_events('events', b.payload) r};
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) FILTER (WHERE user_key IS NULL) || ',' || count(*) FILTER (WHERE nodeport IS NULL) || ','
	   || count(DISTINCT nodeport) || ',' || count(*)
  FROM ($routes) r}),
	'2,2,3,1266', 'every event with a user key has a node, all three nodes get events, the two without any id none');
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) FROM ($routes) r
 WHERE r.user_key IS NOT NULL
   AND (r.shard IS DISTINCT FROM get_shard_id_for_distribution_column('events', r.user_key)
		OR r.nodeport IS DISTINCT FROM (SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
										 WHERE p.shardid = r.shard)
		OR r.nodename IS DISTINCT FROM (SELECT n.nodename FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
										 WHERE p.shardid = r.shard))}),
	'0', 'each route names the shard and node Citus finds for the key');
is( $coord->safe_psql(
		'postgres', qq{
SELECT string_agg(user_key, ',' ORDER BY user_key) FROM ($routes) r
 WHERE k = 1 AND message_id IN ('m-100', 'm-105', 'm-110', 'm-136')}),
	'6,a30,a52,u18', 'the user key: userId, a number as its text, else anonymousId (userId null or empty)');

# the same on every node, by the payloads' text
my $payloads = $coord->safe_psql('postgres', q{SELECT string_agg(payload::text, E'\n' ORDER BY k) FROM batches WHERE k IN (1, 13)});
my @answers;
for my $n (@nodes)
{
	my $sql = join(' UNION ALL ',
		map { (my $p = $_) =~ s/'/''/g; "SELECT r.*::text AS r FROM eventkit.route_events('events', '$p'::jsonb) r" }
		  split /\n/, $payloads);
	push @answers, $n->safe_psql('postgres', "SELECT md5(string_agg(r, ';' ORDER BY r)) || count(*) FROM ($sql) s");
}
is_deeply([ $answers[1], $answers[2] ], [ $answers[0], $answers[0] ], 'route_events answers the same on every node');

is( $w2->safe_psql(
		'postgres', q{
SELECT (SELECT r::text FROM eventkit.route_user('events', 'u5') r)
	   || (SELECT r::text FROM eventkit.route_user('events', NULL, 'a5') r)
	   || (SELECT r::text FROM eventkit.route_user('events', '', 'a5') r)
	   || (SELECT r::text FROM eventkit.route_user('events', NULL) r)}),
	$w2->safe_psql(
		'postgres', q{
SELECT string_agg(format('(%s,%s,%s,%s)', r.user_key, r.shard, r.nodename, r.nodeport), '' ORDER BY r.item)
  FROM eventkit.route_events('events', '[{"userId": "u5", "anonymousId": "a1"}, {"anonymousId": "a5"},
										 {"userId": "", "anonymousId": "a5"}, {"type": "track"}]') r}),
	'route_user gives what route_events gives an event with those ids');
like(psql_err($coord, q{SELECT * FROM eventkit.route_events('events_local', '{}')}),
	qr/relation "events_local" is not a stream distributed on Citus/, 'a plain stream is refused');
like(psql_err($w1, q{SET ROLE ek_nobody; SELECT * FROM eventkit.route_user('events', 'u1')}),
	qr/permission denied for table events/, 'a role without SELECT on the stream is refused');
like(psql_err($w1, q{SELECT * FROM eventkit.route_user(NULL, 'u1')}),
	qr/stream must not be null/, 'a NULL stream is refused');
is($w1->safe_psql('postgres', q{SET ROLE ek_reader; SELECT count(*) FROM eventkit.route_user('events', 'u1') WHERE nodeport IS NOT NULL}),
	'1', 'a role with SELECT only routes');

# --- the batches split by node: each node's events in their order, in
# batches of 150 (the two without a user key go to worker 1)
my %port = map { $_->name => $_->port } @nodes;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE routed AS
WITH r AS MATERIALIZED (SELECT b.k, r.item, coalesce(r.nodeport, $port{worker1}) AS nodeport
						  FROM batches b, LATERAL eventkit.route_events('events', b.payload) r),
	 e AS (SELECT r.nodeport, b.k, e.i, e.ev,
				  (row_number() OVER (PARTITION BY r.nodeport ORDER BY b.k, e.i) - 1) / 150 AS rk
			 FROM batches b, LATERAL jsonb_array_elements(b.payload->'batch') WITH ORDINALITY e(ev, i), r
			WHERE r.k = b.k AND r.item = e.i)
SELECT nodeport, rk, jsonb_build_object('sentAt', '2026-01-01T00:00:00Z', 'batch', jsonb_agg(ev ORDER BY k, i)) AS payload
  FROM e GROUP BY nodeport, rk;
INSERT INTO results SELECT 'local', 1, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r ORDER BY k;
});

# (the statements of the last session_on's session on each other node)
my %reached_on;

# One session on $node that ingests $sql's payloads (selected on the
# coordinator), recording its counts in results as ($node, $pass, rk),
# with citus.log_remote_commands on, while the other nodes log every
# statement.  Returns (the session's gpid, its log messages, the other
# nodes' statements of that gpid).
sub session_on
{
	my ($node, $pass, $sql) = @_;
	my @others = grep { $_->name ne $node->name } @nodes;
	for my $o (@others)
	{
		$o->safe_psql('postgres', q{ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf()});
		$o->poll_query_until('postgres', q{SELECT current_setting('log_statement') = 'all'});
	}
	my %mark = map { $_->name => -s $_->logfile } @others;
	my $script = $node->basedir . "/routed_$pass.sql";
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "SET citus.log_remote_commands = on;\nSET client_min_messages = log;\nSELECT 'gpid ' || citus_backend_gpid();\n";
	for my $line (split /\n/, $coord->safe_psql('postgres', $sql))
	{
		my ($rk, $payload) = split /\t/, $line, 2;
		$payload =~ s/'/''/g;
		print $fh "SELECT 'rk $rk ' || concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
		  . " FROM eventkit.ingest('events', '$payload'::jsonb);\n";
	}
	close $fh;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
					'-d', 'postgres', '-f', $script ], '>', \$out, '2>', \$err)
	  or die "psql on " . $node->name . " failed: $err";
	my ($gpid) = $out =~ /^gpid (\d+)$/m;
	my @rows;
	while ($out =~ /^rk (\d+) (\d+),(\d+),(\d+),(\d+),(\d+)$/mg)
	{
		push @rows, sprintf("('%s', %d, %d, %d, %d, %d, %d, %d)", $node->name, $pass, $1, $2, $3, $4, $5, $6);
	}
	$coord->safe_psql('postgres', 'INSERT INTO results VALUES ' . join(', ', @rows)) if @rows;
	my $reached = '';
	%reached_on = ();
	for my $o (@others)
	{
		$o->safe_psql('postgres', q{ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf()});
		my $log = slurp_file($o->logfile, $mark{ $o->name });
		$reached_on{ $o->name } = join('', grep { /citus_internal gpid=$gpid\b/ } split /^/, $log);
		$reached .= $reached_on{ $o->name };
	}
	return ($gpid, $err, $reached, scalar(@rows));
}

my $by_node = q{SELECT rk || E'\t' || payload::text FROM routed WHERE nodeport = %d ORDER BY rk};
for my $n (@nodes)
{
	my ($gpid, $err, $reached, $calls) = session_on($n, 1, sprintf($by_node, $n->port));
	ok($calls >= 2, $n->name . ": its events in $calls routed calls");
	if ($n->name eq 'coordinator')
	{
		ok(defined $gpid && $err !~ /issuing/, $n->name . ': its routed calls sent no command to another node')
		  or diag($err);
		is($reached, '', $n->name . ': no statement of that session reached another node (no call, no two-phase commit)');
		next;
	}
	# 1.16: a worker's call whose batch links ids sends the links to the
	# coordinator's identity graph (its worker links table), in its
	# transaction (docs/citus.md): that, and only that, leaves the node
	my $links = qr/^(?:BEGIN TRANSACTION|SELECT assign_distributed_transaction_id|COPY eventkit_ledgers\.worker_links_\d+_\d+ |(?:RELEASE |ROLLBACK TO )?SAVEPOINT|PREPARE TRANSACTION|COMMIT PREPARED)/;
	my @issued = $err =~ /issuing (.*?)\nDETAIL:  on server \S+?:(\d+) /g;
	my @bad;
	while (my ($cmd, $port) = splice(@issued, 0, 2))
	{
		push @bad, "$port: $cmd" if $port != $coord->port || $cmd !~ $links;
	}
	ok(defined $gpid && $err =~ /issuing COPY eventkit_ledgers\.worker_links_/ && !@bad,
		$n->name . ': its routed calls sent another node only their identity links, to the coordinator')
	  or diag(join("\n", @bad));
	my $other = join('', map { $reached_on{$_} } grep { $_ ne 'coordinator' && $_ ne $n->name } keys %reached_on);
	my @stmts = grep { !/statement: (?:BEGIN TRANSACTION|COPY eventkit_ledgers\.worker_links_|(?:RELEASE |ROLLBACK TO )?SAVEPOINT|PREPARE TRANSACTION|COMMIT PREPARED)/ }
	  split /^/, $reached_on{coordinator};
	is($other . join('', @stmts), '',
		$n->name . ': no statement of that session reached the other worker, nor the coordinator but the links\' statement and its two-phase commit');
}

# the positive control: a batch of every node's users, on worker 1
my ($gpid, $err, $reached) = session_on($w1, 0, q{SELECT 0 || E'\t' || payload::text FROM batches WHERE k = 12});
like($err, qr/issuing .*PREPARE TRANSACTION/s,
	'a mixed batch on worker 1 sends the other nodes its rows and a two-phase commit');
like($reached, qr/citus_internal gpid=$gpid/, 'and its statements reach the other nodes');
$coord->safe_psql('postgres', q{DELETE FROM results WHERE pass = 0});

# --- the routed calls' counts and rows equal one node's
my $sums = q{SELECT sum(accepted) || ',' || sum(duplicates) || ',' || sum(conflicts) || ',' || sum(quarantined)
				|| ',' || sum(rejected) FROM results WHERE %s};
is($coord->safe_psql('postgres', sprintf($sums, q{pass = 1 AND node <> 'local'})),
	$coord->safe_psql('postgres', sprintf($sums, q{pass = 1 AND node = 'local'})),
	'the routed calls count as one node (accepted, duplicates, conflicts, quarantined, rejected)');
is($coord->safe_psql('postgres', sprintf($sums, q{pass = 1 AND node = 'local'})),
	'1202,56,6,2,0', 'one node: 1202 accepted, 56 re-sends, 6 conflicts, 2 quarantined');
citus_same_events($coord, q{event <> 'Warm'});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM ((SELECT message_id, user_key, properties FROM events WHERE event <> 'Warm'
					   EXCEPT SELECT message_id, user_key, properties FROM events_local)
					  UNION ALL (SELECT message_id, user_key, properties FROM events_local
								 EXCEPT SELECT message_id, user_key, properties FROM events)) d}),
	'0', 'the same rows, each once, the first copy kept');
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) || ',' || count(*) FILTER (WHERE s.user_key = r.user_key)
  FROM ($routes) r JOIN events s ON s.message_id = r.message_id}),
	'1264,1264', 'each stored event\'s user key and messageId (derived when missing) are its route\'s');

# --- re-sends: routed, and each node's batches through another node
for my $n (@nodes)
{
	session_on($n, 2, sprintf($by_node, $n->port));
}
my $other = q{SELECT rk || E'\t' || payload::text FROM routed WHERE nodeport <> %d ORDER BY nodeport, rk};
session_on($w2, 3, sprintf($other, $w2->port));
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'local', 2, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r ORDER BY k});
is($coord->safe_psql('postgres', sprintf($sums, q{pass = 2 AND node <> 'local'})),
	$coord->safe_psql('postgres', sprintf($sums, q{pass = 2 AND node = 'local'})),
	'routed re-sends count as on one node');
is($coord->safe_psql('postgres', sprintf($sums, q{pass = 2 AND node = 'local'})),
	'0,1258,6,2,0', 'one node: every re-sent event a duplicate or a conflict');
like($coord->safe_psql('postgres', sprintf($sums, q{pass = 3})), qr/^0,\d+,\d+,2,0$/,
	'the routed batches re-sent through worker 2 (mostly other nodes\' events): nothing accepted');
citus_same_events($coord, q{event <> 'Warm'});

# --- a stream with a rollup: a routed call on a worker writes its batch's
# deltas into its own shard of the worker delta table (1.17), and reaches
# no other node but the coordinator for its identity links
$coord->safe_psql('postgres',
	q{SET eventkit.worker_deltas_on_shards = on;
SELECT eventkit.create_rollup('events_hourly', 'events', '1 hour', ARRAY['event'], ARRAY['count'])});
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE routed_r AS
SELECT 0 AS rk, jsonb_build_object('batch', jsonb_agg(e.ev ORDER BY e.id)) AS payload
  FROM (SELECT id, ev(id, 1) AS ev FROM generate_series(5000, 5199) id) e,
	   LATERAL eventkit.route_events('events', e.ev) r
 WHERE r.nodeport = $port{worker1}});
($gpid, $err, $reached) = session_on($w1, 4, q{SELECT rk || E'\t' || payload::text FROM routed_r});
my @rstmts = grep { !/statement: (?:BEGIN TRANSACTION|COPY eventkit_ledgers\.worker_links_|(?:RELEASE |ROLLBACK TO )?SAVEPOINT|PREPARE TRANSACTION|COMMIT PREPARED)/ }
  split /^/, $reached_on{coordinator};
ok($err !~ /issuing INSERT/ && !@rstmts,
	'with a rollup (1.17), worker 1\'s routed call sends the coordinator only its identity links: its deltas stay on the worker')
  or diag($err . join('', @rstmts));
is($reached_on{worker2}, '', 'and reaches no other worker');
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) > 0 AND bool_and(n.nodeport = $port{worker1})
  FROM (SELECT DISTINCT get_shard_id_for_distribution_column('events_hourly_wdelta', ek_shard_key) AS shardid
		  FROM events_hourly_wdelta) s
  JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)}),
	't', 'its deltas are in worker 1\'s shards of the worker delta table');
is( $coord->safe_psql(
		'postgres', q{
SELECT (SELECT sum(count) FROM events_hourly_realtime WHERE event <> 'Warm')
	   = (SELECT count(*) FROM events WHERE event <> 'Warm')}),
	't', 'the realtime view counts every event stored, the routed call\'s too');

done_testing();
