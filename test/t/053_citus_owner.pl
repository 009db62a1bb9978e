# Copyright: eventkit authors
#
# Who may distribute and ingest into a distributed stream, on a Citus
# coordinator and two workers (test/t/EventkitCitus.pm).  Citus reaches
# co-located placements as one user per transaction: everything an
# ingest call does through Citus (the ledger claims, the partitions it
# makes, the rows of other nodes' shards) runs as the stream's owner,
# whose the distributed ledger is, after ingest checked the caller's
# INSERT.  Checks: a stream of an ordinary role cannot be distributed by
# that role (only a superuser's distribute_stream copies its rows as a
# superuser), a superuser other than the extension owner distributes it
# and its ledger (in eventkit_ledgers) and the ledger's shards on the
# workers belong to the stream's owner; a role with only INSERT ingests
# batches whose users' shards are on every node, old events (their
# partitions made by the call), through the coordinator and through each
# worker, and re-sends are duplicates; a role without INSERT gets the
# permission error on every node; an event too new waits in quarantine
# and the stream's owner (not a superuser) replays it; stream_stats on the
# coordinator sums every node; the owner lists a worker's conflict with
# worker_conflicts (a writer is refused) and forget_user erases the user on
# every node; run_maintenance drops the partitions
# retention ends, on every node (their shards too), and makes the premade
# ones; an event older than retention is quarantined, not stored; ALTER
# TABLE ... OWNER TO of the stream gives the ledger to the new owner and
# ingest goes on (by a role that is not a superuser: refused); a ledger in
# eventkit 1.10's place (eventkit_internal) is found there and moved when
# its stream changes owner; row-level security that applies to the caller
# refuses the rows that would go through Citus as the owner; a rollup
# of a stream of an ordinary role folds a role's batches ingested through
# the workers (the worker delta path) and the coordinator; drop_stream by
# the (ordinary) owner leaves no shard behind.
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
my @nodes = ($coord, $w1, $w2);

# roles and schema made on the coordinator: Citus propagates them
$coord->safe_psql(
	'postgres', q{
CREATE ROLE ek_owner LOGIN;
CREATE ROLE ek_owner2 LOGIN;
CREATE ROLE ek_writer LOGIN;
CREATE ROLE ek_reader LOGIN;
CREATE ROLE ek_admin LOGIN SUPERUSER;
CREATE SCHEMA app AUTHORIZATION ek_owner;
GRANT USAGE ON SCHEMA app TO ek_writer, ek_reader;
GRANT USAGE, CREATE ON SCHEMA app TO ek_owner2;
});
for my $w ($w1, $w2)
{
	is($w->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'ek\_%'}),
		'5', 'the roles reach worker ' . $w->name);
}

# a stream of an ordinary role: its owner may not distribute it (Citus
# would copy its rows and build its indexes as a superuser); a superuser
# other than the extension owner does
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.events', key_partitions => 0, premake => 2)});
like(psql_err($coord, q{SET ROLE ek_owner; SELECT eventkit.distribute_stream('app.events', 4)}),
	qr/only a superuser can distribute stream "events".*HINT:  Ask a superuser to call eventkit.distribute_stream\('app.events'\)/s,
	'its owner, not a superuser: a clear error');
$coord->safe_psql('postgres', q{SET ROLE ek_admin; SELECT eventkit.distribute_stream('app.events', 4)});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'app.events'::regclass}),
	'1', 'a superuser other than the extension owner distributed it');
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
is( $coord->safe_psql(
		'postgres',
		"SELECT c.relnamespace::regnamespace || ':' || pg_get_userbyid(c.relowner) || ':'"
		  . " || (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = c.oid)"
		  . " FROM pg_class c WHERE relname = 'dist_ledger_$sid'"),
	'eventkit_ledgers:ek_owner:1', 'its ledger is distributed, in eventkit_ledgers, the stream owner\'s');
# the owners of the ledger's shards on the workers
sub ledger_shard_owners
{
	my ($stream_id) = @_;
	return join(',',
		map {
			$_->safe_psql('postgres',
				"SET citus.override_table_visibility = off; SELECT coalesce(string_agg(DISTINCT"
				  . " c.relnamespace::regnamespace || ':' || pg_get_userbyid(c.relowner), ','), 'none')"
				  . " FROM pg_class c WHERE relname LIKE 'dist\\_ledger\\_${stream_id}\\_%' AND relkind = 'r'")
		} ($w1, $w2));
}
is(ledger_shard_owners($sid), 'eventkit_ledgers:ek_owner,eventkit_ledgers:ek_owner',
	'its shards on each worker too');

# the owner grants INSERT (Citus propagates the grant)
$coord->safe_psql('postgres', q{SET ROLE ek_owner; GRANT INSERT ON app.events TO ek_writer});

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

# how many of a batch's users have their shards on each node: all of them
sub nodes_of_users
{
	my ($stream, $n) = @_;
	return $coord->safe_psql(
		'postgres', qq{
SELECT count(DISTINCT n.nodeport) FROM generate_series(1, $n) i
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('$stream', 'u' || i)
  JOIN pg_dist_node n USING (groupid)});
}
is(nodes_of_users('app.events', 20), '2', 'a batch of 20 users has shards on both workers');

# --- ingest, by a role with only INSERT ------------------------------------

is(citus_ingest_as('ek_writer', $coord, batch('old', 20, 10)), '0,0,0,20,0',
	'a role with INSERT: old events of every node\'s shards, through the coordinator, wait for their partition');
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.run_maintenance('app.events'); SELECT eventkit.redrive_quarantine('app.events')});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'old%'}),
	'20', '... the owner\'s maintenance makes it and re-drives them');
is(citus_ingest_as('ek_writer', $w1, batch('new', 20, 0)), '20,0,0,0,0', '... recent events through worker1');
is(citus_ingest_as('ek_writer', $w2, batch('now', 20, 0)), '20,0,0,0,0', '... others through worker2');
is(citus_ingest_as('ek_writer', $w2, batch('old', 20, 10)), '0,20,0,0,0', 're-sent old events through worker2: duplicates');
is(citus_ingest_as('ek_writer', $coord, batch('new', 20, 0)), '0,20,0,0,0', '... recent ones through the coordinator');
is(citus_ingest_as('ek_writer', $w1, batch('now', 20, 0)), '0,20,0,0,0', '... worker2\'s through worker1');
is($coord->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT message_id) FROM app.events}),
	'60:60', 'each event stored once');
is( $coord->safe_psql(
		'postgres', "SELECT count(*) FROM eventkit_ledgers.dist_ledger_$sid"),
	'60', 'and claimed once in the ledger');

# a role without INSERT: the usual permission error, on every node
for my $n (@nodes)
{
	like(psql_err($n, "SET ROLE ek_reader; SELECT * FROM eventkit.ingest('app.events', '" . batch('rd', 5, 0) . "')"),
		qr/permission denied for table events/, 'a role without INSERT is refused on ' . $n->name);
}
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'rd%'}),
	'0', 'and stores nothing');

# an event too new (max_future: 1 day) waits in quarantine; the stream's
# owner (not a superuser) replays it once the bound moves
my $future = $coord->safe_psql('postgres',
	q{SELECT to_char((now() + interval '30 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( citus_ingest_as('ek_writer',
		$coord, qq([{"type":"track","event":"e","messageId":"fut","userId":"u1","timestamp":"$future"}])),
	'0,0,0,1,0', 'an event too new is quarantined');
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.alter_stream('app.events', max_future => '3 days')});
is($coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT accepted || ',' || quarantined FROM eventkit.replay_quarantine('app.events')}),
	'1,0', 'the owner, not a superuser, replays it into the stream (a partition made, the row through Citus)');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id = 'fut'}),
	'1', 'stored once');

# stream_stats on the coordinator: every node's calls
is( $coord->safe_psql(
		'postgres',
		q{SELECT accepted || ',' || duplicates || ',' || in_quarantine FROM eventkit.stream_stats WHERE stream = 'app.events'::regclass}
	),
	'61,60,0',
	'stream_stats on the coordinator counts the calls of every node');

# --- the workers' conflicts and erasure, by the owner (not a superuser) -----

sub zz { my $v = shift; return qq([{"type":"track","event":"e","messageId":"zz1","userId":"zz","properties":{"v":$v}}]); }
is(citus_ingest_as('ek_writer', $coord, zz(1)), '1,0,0,0,0', 'user zz: an event through the coordinator');
is(citus_ingest_as('ek_writer', $w1, zz(2)), '0,0,1,0,0', 're-sent with other content through worker1: a conflict there');
is( $coord->safe_psql(
		'postgres', q{SET ROLE ek_owner; SELECT string_agg(message_id || ':' || (payload->'properties'->>'v'), ',') FROM eventkit.worker_conflicts('app.events')}),
	'zz1:2', 'the owner, not a superuser, lists the worker\'s conflict on the coordinator');
like(psql_err($coord, q{SET ROLE ek_writer; SELECT count(*) FROM eventkit.worker_conflicts('app.events')}),
	qr/must be owner of table events/, 'a role that does not own the stream is refused');
is($coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.forget_user('app.events', 'zz')}),
	'2', 'the owner erases the user: its event and the worker\'s conflict');
is( join('|',
		map { $_->safe_psql('postgres',
			q{SELECT (SELECT count(*) FROM eventkit.conflicts WHERE message_id = 'zz1') || ':' || (SELECT count(*) FROM eventkit.suppressions WHERE id = 'zz')}) } @nodes),
	'0:1|0:1|0:1', 'no conflict left on any node, the id suppressed on every node');
is($coord->safe_psql('postgres', "SELECT count(*) FROM eventkit_ledgers.dist_ledger_$sid WHERE user_key = 'zz'"),
	'0', 'the user\'s id is gone from the distributed ledger');
is(citus_ingest_as('ek_writer', $w2, zz(1)), '0,0,0,0,1', 'a re-send through worker2 is rejected (suppressed)');

# --- retention and premake, as the owner ------------------------------------

my $old_day = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days', 'YYYYMMDD')});
my $shards_of_old = qq{SET citus.override_table_visibility = off;
  SELECT count(*) FROM pg_class WHERE relname LIKE 'events_p${old_day}_%' AND relkind = 'r'};
ok(($w1->safe_psql('postgres', $shards_of_old) + $w2->safe_psql('postgres', $shards_of_old)) > 0,
	'the old day\'s partition has shards on the workers');
$coord->safe_psql(
	'postgres', q{
SET ROLE ek_owner;
SELECT eventkit.alter_stream('app.events', retention => '5 days');
SELECT eventkit.run_maintenance('app.events');
});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'old%'}),
	'0', 'retention dropped the old events');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events}), '41', 'and kept the others');
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM pg_class WHERE relname = 'events_p$old_day'}),
	'0', 'the old partition is gone on the coordinator');
is($w1->safe_psql('postgres', $shards_of_old) + $w2->safe_psql('postgres', $shards_of_old),
	0, 'and its shards on the workers');
my $premade = $coord->safe_psql('postgres',
	q{SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '2 days', 'YYYYMMDD')});
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text = 'app.events_p$premade'}),
	'1', 'the premade partition is distributed');

# an event older than retention: quarantined (out_of_range), not stored
is(citus_ingest_as('ek_writer', $w2, batch('older', 1, 8)), '0,0,0,1,0', 'an event older than retention is quarantined');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.events WHERE message_id LIKE 'older%'}),
	'0', 'and not stored');

# --- a rollup of the stream, its events ingested on the workers ---------------

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

# --- the stream changes owner ------------------------------------------------

$coord->safe_psql('postgres', q{GRANT ek_owner2 TO ek_owner});
like(psql_err($coord, q{SET ROLE ek_owner; ALTER TABLE app.events OWNER TO ek_owner2}),
	qr/only a superuser can give distributed stream "events" another owner/,
	'ALTER TABLE ... OWNER TO by a role that is not a superuser: a clear error');
$coord->safe_psql('postgres', q{SET ROLE ek_admin; ALTER TABLE app.events OWNER TO ek_owner2});
is( $coord->safe_psql(
		'postgres', "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'dist_ledger_$sid'"),
	'ek_owner2', 'by a superuser: the ledger follows the stream to its new owner');
is(ledger_shard_owners($sid), 'eventkit_ledgers:ek_owner2,eventkit_ledgers:ek_owner2',
	'... its shards too');
is( $coord->safe_psql(
		'postgres',
		q{SELECT string_agg(DISTINCT pg_get_userbyid(c.relowner), ',') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		   WHERE i.inhparent = 'app.events'::regclass}),
	'ek_owner2', '... and its partitions');
is(citus_ingest_as('ek_writer', $w1, batch('own2', 20, 0)), '20,0,0,0,0', 'a role with INSERT ingests on');
is(citus_ingest_as('ek_writer', $coord, batch('own2', 20, 0)), '0,20,0,0,0', '... and its re-send is duplicates');

# row-level security that applies to the caller: the rows that would go
# through Citus as the owner are refused (the owner ingests)
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner2; ALTER TABLE app.events ENABLE ROW LEVEL SECURITY; CREATE POLICY w ON app.events FOR INSERT TO ek_writer WITH CHECK (event = 'x')});
like(psql_err($coord, "SET ROLE ek_writer; SELECT * FROM eventkit.ingest('app.events', '" . batch('rls', 20, 0) . "')"),
	qr/cannot ingest into distributed stream "events" as role "ek_writer": row-level security applies/,
	'row-level security that applies to the caller: a clear error');
is(citus_ingest_as('ek_owner2', $w2, batch('rls', 20, 0)), '20,0,0,0,0', 'its owner ingests');
$coord->safe_psql('postgres', q{SET ROLE ek_owner2; DROP POLICY w ON app.events; ALTER TABLE app.events DISABLE ROW LEVEL SECURITY});

# a ledger where eventkit 1.10 made it (eventkit_internal, the extension
# owner's, as the stream was): found there, and moved to eventkit_ledgers
# when its stream changes owner
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('app.legacy', key_partitions => 0);
SELECT eventkit.distribute_stream('app.legacy', 4);
GRANT INSERT ON app.legacy TO ek_writer;
});
my $lid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.legacy'::regclass});
$coord->safe_psql('postgres',
	"ALTER TABLE eventkit_ledgers.dist_ledger_$lid OWNER TO postgres; ALTER TABLE eventkit_ledgers.dist_ledger_$lid SET SCHEMA eventkit_internal");
is(ledger_shard_owners($lid), 'eventkit_internal:postgres,eventkit_internal:postgres',
	'a ledger put where 1.10 made it');
is(citus_ingest_as('postgres', $w1, batch('leg', 20, 0), 'app.legacy'), '20,0,0,0,0', 'its stream ingests');
$coord->safe_psql('postgres', q{ALTER TABLE app.legacy OWNER TO ek_owner});
is(ledger_shard_owners($lid), 'eventkit_ledgers:ek_owner,eventkit_ledgers:ek_owner',
	'its stream given to an ordinary role: the ledger moved to eventkit_ledgers, the new owner\'s');
is(citus_ingest_as('ek_writer', $w2, batch('leg', 20, 0), 'app.legacy'), '0,20,0,0,0',
	'a role with INSERT re-sends: duplicates');
is(citus_ingest_as('ek_writer', $coord, batch('leg2', 20, 0), 'app.legacy'), '20,0,0,0,0', '... new events stored');
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.drop_stream('app.legacy')});

# --- a rollup, and drop_stream ------------------------------------------------

# a stream of an ordinary role with a rollup (made before any ingest on
# the workers): a role with INSERT ingests through each worker (its deltas
# through Citus to the worker delta table, as the owner's) and the
# coordinator; the realtime view and the refreshed rollup count them all
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.ev2', key_partitions => 0)});
$coord->safe_psql('postgres', q{SET ROLE ek_admin; SELECT eventkit.distribute_stream('app.ev2', 4)});
$coord->safe_psql(
	'postgres', q{
SET ROLE ek_owner;
SELECT eventkit.create_rollup('app.hourly2', 'app.ev2', '1 hour', '{event}', '{count}');
GRANT INSERT ON app.ev2 TO ek_writer;
});
(my $ev2_a = batch('two', 30, 0)) =~ s/"event":"e"/"event":"e2"/g;
(my $ev2_b = batch('tri', 30, 0)) =~ s/"event":"e"/"event":"e2"/g;
(my $ev2_c = batch('fou', 30, 0)) =~ s/"event":"e"/"event":"e2"/g;
is(citus_ingest_as('ek_writer', $w1, $ev2_a, 'app.ev2'), '30,0,0,0,0', 'a stream with a rollup: a mixed batch through worker1');
is(citus_ingest_as('ek_writer', $w2, $ev2_b, 'app.ev2'), '30,0,0,0,0', '... through worker2');
is(citus_ingest_as('ek_writer', $coord, $ev2_c, 'app.ev2'), '30,0,0,0,0', '... through the coordinator');
is(citus_ingest_as('ek_writer', $coord, $ev2_a, 'app.ev2'), '0,30,0,0,0', '... a re-send: duplicates');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM app.hourly2_wdelta}) > 0 ? 1 : 0,
	1, '... the workers\' deltas are in the worker delta table');
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(count) FROM app.hourly2_realtime) || ':' || (SELECT count(*) FROM app.ev2)}),
	'90:90', '... the realtime view counts them');
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.refresh_rollup('app.hourly2')});
is( $coord->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(count) FROM app.hourly2) || ':' || (SELECT count(*) FROM app.hourly2_wdelta
		   WHERE ek_gen IS NULL OR ek_gen > (SELECT wdelta_folded FROM eventkit.rollups WHERE relid = 'app.hourly2'::regclass))}),
	'90:0', '... and the refreshed rollup, the worker delta table folded');
is( $coord->safe_psql(
		'postgres',
		q{SELECT count(*) FROM (
		    (SELECT event, date_bin('1 hour', ts, '2000-01-01') h, count(*) c FROM app.ev2 GROUP BY 1, 2
		     EXCEPT SELECT event, bucket, count FROM app.hourly2)
		    UNION ALL
		    (SELECT event, bucket, count FROM app.hourly2
		     EXCEPT SELECT event, date_bin('1 hour', ts, '2000-01-01'), count(*) FROM app.ev2 GROUP BY 1, 2)) d}),
	'0', '... equal to GROUP BY over the stream');
like(psql_err($coord, q{SET ROLE ek_owner; SELECT eventkit.drop_stream('app.ev2')}),
	qr/cannot drop table app.ev2 because other objects depend on it.*view app.hourly2_realtime depends on table app.ev2/s,
	'drop_stream refuses while a rollup depends on the stream');
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.drop_rollup('app.hourly2'); SELECT eventkit.drop_stream('app.ev2')});
$coord->safe_psql('postgres', q{SET ROLE ek_owner2; SELECT eventkit.drop_stream('app.events')});
my $left = q{SET citus.override_table_visibility = off;
  SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('app', 'eventkit_internal', 'eventkit_ledgers')
     AND (c.relname LIKE 'events%' OR c.relname LIKE 'ev2%' OR c.relname LIKE 'legacy%' OR c.relname LIKE 'dist_ledger%')};
is($coord->safe_psql('postgres', $left) + $w1->safe_psql('postgres', $left) + $w2->safe_psql('postgres', $left),
	0, 'drop_stream by their owners (not superusers) leaves no table or shard on any node');

done_testing();
