# Copyright: eventkit authors
#
# Who may distribute and ingest into a distributed stream, on a Citus
# coordinator and two workers (test/t/EventkitCitus.pm).  Citus reaches
# co-located placements as one user per transaction, and eventkit claims
# ids in a distributed stream's ledger as the extension owner: so a
# distributed stream belongs to the extension owner, and only superusers
# make calls whose rows go through Citus; others get a clear error, not
# Citus's.  Checks: those errors (a stream of another owner; a role that
# is not a superuser, with events for other nodes' shards, through the
# coordinator and through a worker); that role's batch of one worker's
# shards, sent to that worker, is stored (its re-send a duplicate); a
# superuser other than the extension owner distributes and ingests
# through the coordinator and through a worker, and a re-send stores
# nothing; an event too new waits in quarantine and that superuser's
# replay_quarantine stores it once the bound moves; stream_stats on the
# coordinator sums every node; run_maintenance drops the partitions
# retention ends, on every node (their shards too), and makes the premade
# ones; an event older than retention is quarantined, not stored; a
# rollup of a stream with events ingested on the workers is refused; a
# rollup keeps drop_stream from dropping its stream; drop_stream leaves
# no shard behind.
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

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");

# roles, schema and grants made on the coordinator: Citus propagates them
$coord->safe_psql(
	'postgres', q{
CREATE ROLE ek_owner LOGIN;
CREATE ROLE ek_writer LOGIN;
CREATE SCHEMA app AUTHORIZATION ek_owner;
GRANT USAGE ON SCHEMA app TO ek_writer;
});
for my $w ($w1, $w2)
{
	is($w->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname IN ('ek_owner', 'ek_writer')}),
		'2', 'the roles reach worker ' . $w->name);
}

# a stream of a role that is not the extension owner cannot be distributed
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.own', key_partitions => 0)});
like(psql_err($coord, q{SELECT eventkit.distribute_stream('app.own', 4)}),
	qr/stream "own" does not belong to the extension owner.*HINT:  As a superuser: ALTER TABLE app.own OWNER TO postgres; then distribute it/s,
	'a stream of another owner: a clear error');
like(psql_err($coord, q{SET ROLE ek_owner; SELECT eventkit.distribute_stream('app.own', 4)}),
	qr/does not belong to the extension owner/, 'by its owner too');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_stream('app.own')});

# the extension owner's stream, distributed by another superuser
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('app.events', key_partitions => 0, premake => 2);
CREATE ROLE ek_admin LOGIN SUPERUSER;
SET ROLE ek_admin;
SELECT eventkit.distribute_stream('app.events', 4);
RESET ROLE;
GRANT INSERT ON app.events TO ek_writer, ek_owner;
});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'app.events'::regclass}),
	'1', 'a superuser other than the extension owner distributed it');

# batches: days_ago (whole days before now, at noon UTC of that day) per event
sub batch
{
	my ($tag, $n, $days_ago) = @_;
	my $ts = $coord->safe_psql('postgres',
		"SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '$days_ago days' + interval '12 hours',"
		  . q{ 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
	return '[' . join(',',
		map { qq({"type":"track","event":"e","messageId":"$tag$_","userId":"u$_","timestamp":"$ts"}) } 1 .. $n)
	  . ']';
}

sub ingest_as
{
	my ($role, $node, $payload) = @_;
	return $node->safe_psql('postgres',
		"SET ROLE $role; SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
		  . " FROM eventkit.ingest('app.events', '$payload')");
}

# --- ingest ------------------------------------------------------------

for my $n ($coord, $w1)
{
	like(
		psql_err($n, "SET ROLE ek_writer; SELECT * FROM eventkit.ingest('app.events', '" . batch('new', 20, 0) . "')"),
		qr/cannot ingest into distributed stream "events" as role "ek_writer".*HINT:  Ingest as a superuser, or send each batch to the node that holds the shards of all its users/s,
		'a role that is not a superuser, events for other nodes\' shards: a clear error on ' . $n->name);
}

# a batch whose users' shards are all on worker1, sent there: any role with
# INSERT ingests it (no write through Citus); a re-send is a duplicate
# $n users (u1, u2, ...) of $stream whose shards are on $node, comma-separated
sub users_on
{
	my ($stream, $node, $n) = @_;
	return $coord->safe_psql(
		'postgres', qq{
SELECT string_agg(u, ',' ORDER BY u) FROM (
  SELECT 'u' || i AS u FROM generate_series(1, 200) i
  WHERE (SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
         WHERE p.shardid = get_shard_id_for_distribution_column('$stream', 'u' || i))
        = } . $node->port . qq{ LIMIT $n) x});
}
my $w1_users = users_on('app.events', $w1, 10);
my $today = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
my $local_batch = '['
  . join(',', map { qq({"type":"track","event":"e","messageId":"loc-$_","userId":"$_","timestamp":"$today"}) }
	  split /,/, $w1_users)
  . ']';
is(ingest_as('ek_writer', $w1, $local_batch), '10,0,0,0,0',
	'a role that is not a superuser: a batch of worker1\'s shards, on worker1');
is(ingest_as('ek_writer', $w1, $local_batch), '0,10,0,0,0', 'its re-send: duplicates');
(my $local_batch2 = $local_batch) =~ s/loc-/loc2-/g;
like(psql_err($w2, "SET ROLE ek_writer; SELECT * FROM eventkit.ingest('app.events', '$local_batch2')"),
	qr/cannot ingest into distributed stream "events" as role "ek_writer"/,
	'such a batch (new ids) on worker2: the clear error');
$coord->safe_psql('postgres', q{DELETE FROM app.events WHERE message_id LIKE 'loc%'});
is(ingest_as('ek_admin', $coord, batch('old', 20, 10)), '20,0,0,0,0', 'a superuser: old events through the coordinator');
is(ingest_as('ek_admin', $w1, batch('new', 20, 0)), '20,0,0,0,0', 'recent events through a worker');
is(ingest_as('ek_admin', $w2, batch('old', 20, 10)), '0,20,0,0,0', 're-sent old events: duplicates');
is(ingest_as('ek_admin', $coord, batch('new', 20, 0)), '0,20,0,0,0', 're-sent recent events: duplicates');
is($coord->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT message_id) FROM app.events}),
	'40:40', 'each event stored once');

# an event too new (max_future: 1 day) waits in quarantine; a superuser's
# replay stores it once the bound moves (the owner's is refused)
my $future = $coord->safe_psql('postgres',
	q{SELECT to_char((now() + interval '30 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( ingest_as('ek_admin',
		$coord, qq([{"type":"track","event":"e","messageId":"fut","userId":"u1","timestamp":"$future"}])),
	'0,0,0,1,0', 'an event too new is quarantined');
my $fut_reason = $coord->safe_psql('postgres',
	q{SELECT string_agg(reasons::text, ',') FROM eventkit.quarantine WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass)});
like($fut_reason, qr/too_new/, 'with reason too_new');
$coord->safe_psql('postgres', q{SELECT eventkit.alter_stream('app.events', max_future => '3 days')});
is($coord->safe_psql('postgres', q{SET ROLE ek_admin; SELECT accepted || ',' || quarantined FROM eventkit.replay_quarantine('app.events')}),
	'1,0', 'a superuser replays it into the stream');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id = 'fut'}),
	'1', 'stored once');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine WHERE stream_id = (SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass) AND replayed_at IS NULL}),
	'0', 'and gone from quarantine');

# stream_stats on the coordinator: every node's calls
is( $coord->safe_psql(
		'postgres',
		q{SELECT accepted || ',' || duplicates || ',' || in_quarantine FROM eventkit.stream_stats WHERE stream = 'app.events'::regclass}
	),
	'51,50,0',
	'stream_stats on the coordinator counts the calls of every node');

# --- retention and premake ----------------------------------------------

my $old_day = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days', 'YYYYMMDD')});
my $shards_of_old = qq{SET citus.override_table_visibility = off;
  SELECT count(*) FROM pg_class WHERE relname LIKE 'events_p${old_day}_%' AND relkind = 'r'};
ok(($w1->safe_psql('postgres', $shards_of_old) + $w2->safe_psql('postgres', $shards_of_old)) > 0,
	'the old day\'s partition has shards on the workers');
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.alter_stream('app.events', retention => '5 days');
SELECT eventkit.run_maintenance('app.events');
});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'old%'}),
	'0', 'retention dropped the old events');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events}), '21', 'and kept the others');
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM pg_class WHERE relname = 'events_p$old_day'}),
	'0', 'the old partition is gone on the coordinator');
is($w1->safe_psql('postgres', $shards_of_old) + $w2->safe_psql('postgres', $shards_of_old),
	0, 'and its shards on the workers');
my $premade = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '2 days', 'YYYYMMDD')});
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text = 'app.events_p$premade'}),
	'1', 'the premade partition is distributed');

# an event older than retention: quarantined (out_of_range), not stored
is(ingest_as('ek_admin', $w2, batch('older', 1, 8)), '0,0,0,1,0', 'an event older than retention is quarantined');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'older%'}),
	'0', 'and not stored');

# --- drop_stream ------------------------------------------------------

# a rollup of a stream that holds events ingested on the workers: its
# backfill folds all the stream's rows (the workers number their batches
# on their own); without the backfill, refused
like(psql_err($coord, q{SELECT eventkit.create_rollup('app.hourly', 'app.events', '1 hour', '{event}', '{count}', backfill => false)}),
	qr/cannot create a rollup of distributed stream "events" without its backfill: it holds events ingested on the workers/,
	'a rollup without backfill of a stream with events ingested on the workers: a clear error');
is( $coord->safe_psql(
		'postgres', q{
SELECT eventkit.create_rollup('app.hourly', 'app.events', '1 hour', '{event}', '{count}') IS NOT NULL;
SELECT (SELECT sum(count) FROM app.hourly) = (SELECT count(*) FROM app.events);}),
	"t\nt", 'with its backfill: every event of the stream counted');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('app.hourly')});

# a stream ingested on the coordinator only: its rollup's realtime view
# reads the tail from the deltas (and the stream only through a function),
# yet keeps depending on the stream: the stream is not dropped from under
# its rollups
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('app.ev2', key_partitions => 0);
SELECT eventkit.distribute_stream('app.ev2', 4);
SELECT eventkit.create_rollup('app.hourly2', 'app.ev2', '1 hour', '{event}', '{count}');
});
(my $ev2_batch = batch('two', 30, 0)) =~ s/"event":"e"/"event":"e2"/g;
$coord->safe_psql('postgres', "SELECT eventkit.ingest('app.ev2', '$ev2_batch')");
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(count) FROM app.hourly2_realtime) || ':' || (SELECT count(*) FROM app.ev2)}),
	'30:30', 'the realtime view of a rollup of a distributed stream counts its events');

# a role that is not a superuser ingests, on worker1, a batch of worker1's
# shards of a stream with a rollup: its rows stay local, its deltas go to
# the coordinator's worker delta table (through Citus, as the rollup's
# owner); the realtime view and the refreshed rollup count them
$coord->safe_psql('postgres', q{GRANT INSERT ON app.ev2 TO ek_writer});
my $w1_users2 = users_on('app.ev2', $w1, 5);
my $local_ev2 = '['
  . join(',', map { qq({"type":"track","event":"e2","messageId":"wloc-$_","userId":"$_","timestamp":"$today"}) }
	  split /,/, $w1_users2)
  . ']';
is( $w1->safe_psql(
		'postgres',
		"SET ROLE ek_writer; SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
		  . " FROM eventkit.ingest('app.ev2', '$local_ev2')"),
	'5,0,0,0,0',
	'a role that is not a superuser: a batch of worker1\'s shards of a stream with a rollup, on worker1');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.hourly2_wdelta}) > 0 ? 1 : 0,
	1, '... its deltas are in the worker delta table');
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(count) FROM app.hourly2_realtime) || ':' || (SELECT count(*) FROM app.ev2)}),
	'35:35', '... the realtime view counts them');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('app.hourly2')});
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(count) FROM app.hourly2) || ':' || (SELECT count(*) FROM app.hourly2_wdelta)}),
	'35:0', '... and the refreshed rollup, the worker delta table folded');
like(psql_err($coord, q{SELECT eventkit.drop_stream('app.ev2')}),
	qr/cannot drop table app.ev2 because other objects depend on it.*view app.hourly2_realtime depends on table app.ev2/s,
	'drop_stream refuses while a rollup depends on the stream');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('app.hourly2'); SELECT eventkit.drop_stream('app.ev2')});
$coord->safe_psql('postgres', q{SET ROLE ek_admin; SELECT eventkit.drop_stream('app.events')});
my $left = q{SET citus.override_table_visibility = off;
  SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('app', 'eventkit_internal') AND (c.relname LIKE 'events%' OR c.relname LIKE 'dist_ledger%')};
is($coord->safe_psql('postgres', $left) + $w1->safe_psql('postgres', $left) + $w2->safe_psql('postgres', $left),
	0, 'drop_stream (by another superuser) leaves no table or shard on any node');

done_testing();
