# Copyright: eventkit authors
#
# A distributed stream across an upgrade of eventkit, and what its owner
# needs, on a Citus coordinator and two workers (test/t/EventkitCitus.pm),
# one cluster for all of it.
#
# The upgrade: eventkit created at 1.10 on every node (this library on
# 1.10's catalog, which has no eventkit_ledgers): a superuser's stream is
# distributed with its ledger in eventkit_internal, as 1.10 did; an
# ordinary role's stream, or the superuser's given to an ordinary role,
# is refused with an error that says to update first.  Events are
# ingested through the coordinator and a worker, with a rollup.  ALTER
# EXTENSION eventkit UPDATE is refused on a worker; on the coordinator
# Citus runs it on every node.  After it the stream has no node function
# (1.10's catalog had no eventkit_ledgers for one) until the coordinator's
# ledger job (run_maintenance) makes it on every node; a worker's call then
# reaches the other worker with one call of it.  Ingest goes on on every node,
# re-sends of the events stored before are duplicates, each id is stored
# once, the rollup folds them all (equal to GROUP BY), stream_stats sums
# every node, and the stream given to an ordinary role takes its ledger
# to eventkit_ledgers.
#
# The owner's rights: a call reaches Citus as the stream's owner, so an
# owner without USAGE on the stream's schema, without INSERT on its own
# stream, without USAGE on eventkit_ledgers (each node's own) or without
# SELECT, INSERT and UPDATE on its ledger gets an error at the call's
# start, on every node, that names the stream and the role and gives the
# GRANT that mends it; with it, ingest goes on.
#
# REASSIGN OWNED BY the stream's owner (Citus runs it on every node, and
# refuses it on a worker) gives the stream, its ledger and partitions and
# all their shards to the new role, as ALTER TABLE ... OWNER TO does;
# a new owner without USAGE on the schema gets the error above until
# granted.  DROP OWNED BY the owner drops the stream, its ledger and
# partitions and their shards on every node, and its rollup (the stream
# owner's), and forgets the stream in the cluster-wide catalog too: a
# stream of the same name is distributed and ingested again.
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

citus_skip_unless_installed();

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n", '1.10');
my @nodes = ($coord, $w1, $w2);

sub versions
{
	return join(',',
		map { $_->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'eventkit'}) }
		  @nodes);
}
is(versions(), '1.10,1.10,1.10', 'eventkit 1.10 on every node');

# roles and schema made on the coordinator: Citus propagates them
$coord->safe_psql(
	'postgres', q{
CREATE ROLE ek_owner LOGIN;
CREATE ROLE ek_writer LOGIN;
CREATE ROLE ek_new LOGIN;
CREATE SCHEMA app;
GRANT USAGE, CREATE ON SCHEMA app TO ek_owner;
GRANT USAGE ON SCHEMA app TO ek_writer;
});

# a batch of $n events, ids $tag1..$tagN of users u1..uN (whose shards
# are on both workers), now
sub batch
{
	my ($tag, $n) = @_;
	return '['
	  . join(',', map { qq({"type":"track","event":"e$_","messageId":"$tag$_","userId":"u$_"}) } 1 .. $n)
	  . ']';
}

sub ingest_err
{
	my ($role, $node, $payload, $stream) = @_;
	$stream //= 'app.events';
	return psql_err($node, "SET ROLE $role; SELECT * FROM eventkit.ingest('$stream', '$payload')");
}

sub ledger_place
{
	my ($stream) = @_;
	return $coord->safe_psql(
		'postgres',
		"SELECT c.relnamespace::regnamespace || ':' || pg_get_userbyid(c.relowner) FROM pg_class c"
		  . " WHERE c.relname = 'dist_ledger_' || (SELECT stream_id FROM eventkit.streams WHERE relid = '$stream'::regclass)"
		  . " AND c.relkind = 'r'");
}

# --- at 1.10 -----------------------------------------------------------------

$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('app.events', key_partitions => 0);
SELECT eventkit.distribute_stream('app.events', 4);
SELECT eventkit.create_rollup('app.hourly', 'app.events', '1 hour', '{event}', '{count}');
GRANT INSERT ON app.events TO ek_writer;
});
is(ledger_place('app.events'), 'eventkit_internal:postgres',
	'1.10: the superuser\'s stream distributed, its ledger in eventkit_internal as 1.10 made it');
is( $coord->safe_psql(
		'postgres', q{SELECT count(DISTINCT n.nodeport) FROM generate_series(1, 20) i
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('app.events', 'u' || i)
  JOIN pg_dist_node n USING (groupid)}),
	'2', 'a batch of 20 users has shards on both workers');

$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.mine', key_partitions => 0)});
like(psql_err($coord, q{SELECT eventkit.distribute_stream('app.mine', 4)}),
	qr/cannot distribute stream "mine" of role "ek_owner" before eventkit's catalog is updated to 1.11.*HINT:  Run ALTER EXTENSION eventkit UPDATE on the coordinator \(Citus updates every worker with it\), then distribute the stream again/s,
	'1.10: an ordinary role\'s stream is refused with a clear error');
like(psql_err($coord, q{ALTER TABLE app.events OWNER TO ek_owner}),
	qr/cannot give distributed stream "events" to role "ek_owner" before eventkit's catalog is updated to 1.11.*HINT:  Run ALTER EXTENSION eventkit UPDATE on the coordinator \(Citus updates every worker with it\), then change the owner again/s,
	'1.10: giving the stream to an ordinary role is refused with a clear error');

is(citus_ingest_as('ek_writer', $coord, batch('a', 20)), '20,0,0,0,0', '1.10: a batch through the coordinator');
is(citus_ingest_as('ek_writer', $w1, batch('b', 20)), '20,0,0,0,0', '1.10: a batch through worker1');
is(citus_ingest_as('ek_writer', $w2, batch('a', 20)), '0,20,0,0,0', '1.10: a re-send through worker2: duplicates');

# --- the update ----------------------------------------------------------------

like(psql_err($w1, 'ALTER EXTENSION eventkit UPDATE'),
	qr/operation is not allowed on this node/, 'ALTER EXTENSION UPDATE on a worker: refused by Citus');
$coord->safe_psql('postgres', 'ALTER EXTENSION eventkit UPDATE');
my $newest = $coord->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'eventkit'});
is(versions(), join(',', ($newest) x 3), "on the coordinator: every node updated to $newest");
is(ledger_place('app.events'), 'eventkit_internal:postgres', 'the ledger stays where 1.10 made it');

# distributed on a 1.10 catalog, the stream has no node function (one call
# per other node); the ledger job of the coordinator makes it
my $sid = $coord->safe_psql('postgres', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
my $node_fn = "SELECT count(*) FROM pg_proc WHERE proname = 'dist_node_$sid' AND pronamespace = 'eventkit_ledgers'::regnamespace";
is(join(',', map { $_->safe_psql('postgres', $node_fn) } ($coord, $w1, $w2)), '0,0,0',
	'the stream distributed on the 1.10 catalog has no node function');
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('app.events')});
is(join(',', map { $_->safe_psql('postgres', $node_fn) } ($coord, $w1, $w2)), '1,1,1',
	'run_maintenance on the coordinator (the ledger job) makes it, on every node');

is(citus_ingest_as('ek_writer', $coord, batch('c', 20)), '20,0,0,0,0', 'after: new events through the coordinator');
my ($calls_out, $calls_err) = ('', '');
$w1->psql('postgres',
	"SET citus.log_remote_commands = on; SET client_min_messages = log; SET ROLE ek_writer; SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
	  . " FROM eventkit.ingest('app.events', '" . batch('d', 20) . "')",
	stdout => \$calls_out, stderr => \$calls_err);
is($calls_out, '20,0,0,0,0', '... through worker1');
like($calls_err, qr/dist_node_$sid\(/, '... which reaches worker2 with one call of the node function');
is(citus_ingest_as('ek_writer', $w2, batch('e', 20)), '20,0,0,0,0', '... through worker2');
is(citus_ingest_as('ek_writer', $w2, batch('b', 20)), '0,20,0,0,0', 'worker1\'s 1.10 events re-sent through worker2: duplicates');
is(citus_ingest_as('ek_writer', $w1, batch('a', 20)), '0,20,0,0,0', 'the coordinator\'s re-sent through worker1: duplicates');
is(citus_ingest_as('ek_writer', $coord, batch('e', 20)), '0,20,0,0,0', 'worker2\'s re-sent through the coordinator: duplicates');
is($coord->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT message_id) FROM app.events}),
	'100:100', 'each id stored once');
is( $coord->safe_psql(
		'postgres', q{SELECT accepted || ',' || duplicates FROM eventkit.stream_stats WHERE stream = 'app.events'::regclass}),
	'100,80', 'stream_stats on the coordinator sums the calls of every node, before and after');
is($coord->safe_psql('postgres', q{SELECT sum(count) FROM app.hourly_realtime}), '100', 'the realtime view counts them all');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('app.hourly')});
is( $coord->safe_psql(
		'postgres',
		q{SELECT count(*) FROM (
		    (SELECT event, date_bin('1 hour', ts, '2000-01-01') h, count(*) c FROM app.events GROUP BY 1, 2
		     EXCEPT SELECT event, bucket, count FROM app.hourly)
		    UNION ALL
		    (SELECT event, bucket, count FROM app.hourly
		     EXCEPT SELECT event, date_bin('1 hour', ts, '2000-01-01'), count(*) FROM app.events GROUP BY 1, 2)) d}),
	'0', 'the refreshed rollup folds them: equal to GROUP BY');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('app.hourly')});

# the 1.10 stream given to an ordinary role: its ledger moves to
# eventkit_ledgers, the new owner's; the ordinary role's stream distributes
$coord->safe_psql('postgres', q{ALTER TABLE app.events OWNER TO ek_owner});
is(ledger_place('app.events'), 'eventkit_ledgers:ek_owner', 'given to an ordinary role: the ledger moves to eventkit_ledgers');
is(citus_ingest_as('ek_writer', $w2, batch('c', 20)), '0,20,0,0,0', '... re-sends are still duplicates');
is(citus_ingest_as('ek_writer', $w1, batch('f', 20)), '20,0,0,0,0', '... new events stored');
$coord->safe_psql('postgres', q{SELECT eventkit.distribute_stream('app.mine', 4)});
is(ledger_place('app.mine'), 'eventkit_ledgers:ek_owner', 'the ordinary role\'s stream distributes now');

# --- what the stream's owner needs ---------------------------------------------

# each right the call uses through Citus as the owner, taken away: an
# error on every node, naming the stream, the role and the GRANT
$coord->safe_psql('postgres', 'REVOKE USAGE ON SCHEMA app FROM ek_owner');
for my $n (@nodes)
{
	like(ingest_err('ek_writer', $n, batch('g', 20)),
		qr/ERROR:  cannot ingest into distributed stream "events": its owner "ek_owner" has no USAGE on schema "app"\n.*HINT:  On the coordinator \(Citus gives the grant to every node\): GRANT USAGE ON SCHEMA app TO ek_owner;/s,
		'owner without USAGE on the stream\'s schema: a clear error on ' . $n->name);
}
$coord->safe_psql('postgres', 'GRANT USAGE ON SCHEMA app TO ek_owner');
is(citus_ingest_as('ek_writer', $w1, batch('g', 20)), '20,0,0,0,0', '... granted: ingest goes on');

$coord->safe_psql('postgres', 'SET ROLE ek_owner; REVOKE INSERT ON app.events FROM ek_owner');
for my $n (@nodes)
{
	like(ingest_err('ek_writer', $n, batch('h', 20)),
		qr/ERROR:  cannot ingest into distributed stream "events": its owner "ek_owner" has no INSERT privilege on it\n.*HINT:  .*GRANT INSERT ON app.events TO ek_owner;/s,
		'owner without INSERT on its stream: a clear error on ' . $n->name);
}
$coord->safe_psql('postgres', 'SET ROLE ek_owner; GRANT INSERT ON app.events TO ek_owner');
is(citus_ingest_as('ek_writer', $coord, batch('h', 20)), '20,0,0,0,0', '... granted: ingest goes on');

my $ledger = $coord->safe_psql('postgres',
	q{SELECT 'eventkit_ledgers.dist_ledger_' || stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
$coord->safe_psql('postgres', "SET ROLE ek_owner; REVOKE UPDATE ON $ledger FROM ek_owner");
for my $n (@nodes)
{
	like(ingest_err('ek_writer', $n, batch('i', 20)),
		qr/ERROR:  cannot ingest into distributed stream "events": its owner "ek_owner" lacks SELECT, INSERT or UPDATE on its dedup ledger\n.*HINT:  .*GRANT SELECT, INSERT, UPDATE ON \Q$ledger\E TO ek_owner;/s,
		'owner without UPDATE on its ledger: a clear error on ' . $n->name);
}
$coord->safe_psql('postgres', "SET ROLE ek_owner; GRANT UPDATE ON $ledger TO ek_owner");
is(citus_ingest_as('ek_writer', $w2, batch('i', 20)), '20,0,0,0,0', '... granted: ingest goes on');

# USAGE on eventkit_ledgers is each node's own: revoked on the
# coordinator and worker1, each refuses its calls
$_->safe_psql('postgres', 'REVOKE USAGE ON SCHEMA eventkit_ledgers FROM PUBLIC') for ($coord, $w1);
for my $n ($coord, $w1)
{
	like(ingest_err('ek_writer', $n, batch('j', 20)),
		qr/ERROR:  cannot ingest into distributed stream "events": its owner "ek_owner" has no USAGE on schema "eventkit_ledgers"\n.*HINT:  On every node where it was revoked \(eventkit grants it to PUBLIC; .*\): GRANT USAGE ON SCHEMA eventkit_ledgers TO ek_owner;/s,
		'owner without USAGE on eventkit_ledgers: a clear error on ' . $n->name);
}
$_->safe_psql('postgres', 'GRANT USAGE ON SCHEMA eventkit_ledgers TO PUBLIC') for ($coord, $w1);
is(citus_ingest_as('ek_writer', $w1, batch('j', 20)), '20,0,0,0,0', '... granted again: ingest goes on');
is($coord->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT message_id) FROM app.events}),
	'200:200', 'the refused calls stored nothing, each id once');

# --- REASSIGN OWNED and DROP OWNED ---------------------------------------------

sub owners_everywhere
{
	my ($stream_id) = @_;
	return join(
		';',
		map {
			$_->safe_psql('postgres',
				"SET citus.override_table_visibility = off; SELECT coalesce(string_agg(DISTINCT"
				  . " pg_get_userbyid(c.relowner), ','), 'none') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
				  . " WHERE c.relkind IN ('r', 'p') AND ((n.nspname = 'app' AND c.relname LIKE 'events%')"
				  . "   OR c.relname LIKE 'dist\\_ledger\\_${stream_id}%')")
		} @nodes);
}
$sid = $coord->safe_psql('postgres', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
is(owners_everywhere($sid), 'ek_owner;ek_owner;ek_owner', 'the stream, ledger, partitions and shards: ek_owner\'s');

like(psql_err($w1, 'REASSIGN OWNED BY ek_owner TO ek_new'),
	qr/operation is not allowed on this node/, 'REASSIGN OWNED on a worker: refused by Citus');
$coord->safe_psql('postgres', 'REASSIGN OWNED BY ek_owner TO ek_new');
is(owners_everywhere($sid), 'ek_new;ek_new;ek_new',
	'REASSIGN OWNED on the coordinator: all of them ek_new\'s, on every node');
like(ingest_err('ek_writer', $w2, batch('k', 20)),
	qr/its owner "ek_new" has no USAGE on schema "app".*GRANT USAGE ON SCHEMA app TO ek_new;/s,
	'the new owner has no USAGE on the schema: the clear error');
$coord->safe_psql('postgres', 'GRANT USAGE ON SCHEMA app TO ek_new');
is(citus_ingest_as('ek_writer', $w2, batch('k', 20)), '20,0,0,0,0', '... granted: ingest goes on through worker2');
is(citus_ingest_as('ek_writer', $coord, batch('k', 20)), '0,20,0,0,0', '... a re-send through the coordinator: duplicates');
is(citus_ingest_as('ek_writer', $w1, batch('a', 20)), '0,20,0,0,0', '... the first 1.10 batch re-sent through worker1: duplicates');

# DROP OWNED: everything of the stream goes, on every node, its rollup
# (the stream owner's) too, and eventkit forgets them, also in the
# cluster-wide catalog
$coord->safe_psql('postgres',
	q{GRANT CREATE ON SCHEMA app TO ek_new; SELECT eventkit.create_rollup('app.hr', 'app.events', '1 hour', '{event}', '{count}')});
is( $coord->safe_psql(
		'postgres', q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'app.hr'::regclass}),
	'ek_new', 'a rollup of the stream: its owner\'s');
$coord->safe_psql('postgres', 'DROP OWNED BY ek_new');
is(owners_everywhere($sid), 'none;none;none', 'DROP OWNED: no stream, ledger, partition or shard left on any node');
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM eventkit.rollups) || ':'
		   || (SELECT count(*) FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relname LIKE 'hr%')}),
	'0:0', '... nor its rollup, which eventkit forgot');
is( $coord->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM eventkit.streams WHERE stream_id = $sid) || ':'"
		  . " || (SELECT count(*) FROM eventkit_internal.cluster_streams WHERE stream_id = $sid)"),
	'0:0', '... eventkit forgot the stream, in the cluster-wide catalog too');
$coord->safe_psql(
	'postgres', q{
SET ROLE ek_owner;
SELECT eventkit.create_stream('app.events', key_partitions => 0);
GRANT INSERT ON app.events TO ek_writer;
RESET ROLE;
SELECT eventkit.distribute_stream('app.events', 4);
});
is(citus_ingest_as('ek_writer', $w1, batch('a', 20)), '20,0,0,0,0', 'a stream of the same name is distributed and ingests on a worker');
is(citus_ingest_as('ek_writer', $w2, batch('a', 20)), '0,20,0,0,0', '... and its re-sends are duplicates');

done_testing();
