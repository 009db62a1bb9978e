
# Copyright: eventkit authors
#
# A Citus coordinator's pg_dump restored on a server without Citus: pg_dump
# reads a distributed stream's rows, and its distributed dedup ledger's,
# through Citus and dumps them as plain tables.  Checks: every stored event
# restored once; ingest into the restored stream refused (its ids are in
# the distributed ledger, which the single-node path does not read: a
# re-send would be stored again) with an error naming
# eventkit.undistribute_stream(), nothing stored by the refused call;
# undistribute_stream moves the ids (then re-sends through any node's
# batches are duplicates, a changed payload a conflict, new events
# accepted), drops the distributed ledger and the stream's cluster-wide
# catalog row; its errors (not a distributed stream, not the owner, still
# a Citus table on the coordinator).  The realtime view of a distributed
# stream's rollup names its rollup by name in its definition, so the
# restored view reads the restored rollup.
#
# A stream with rollups (count; a filtered one with count, sum and an hll
# distinct; a daily rollup of the first), whose batches went through the
# coordinator and the workers (a worker's batch ids past the
# coordinator's, some deltas not folded at the dump): undistribute_stream
# rebuilds each rollup from the restored rows, on both targets.  Then the
# rollup tables equal GROUP BY over the stream, the deltas are empty, the
# worker delta tables gone, the watermark past every row's batch id; the
# realtime views equal GROUP BY before a refresh after new ingest, and the
# tables after it; re-sent old batches are duplicates, folded once.  On
# the Citus coordinator, distribute_stream with the rollups in place
# makes their worker delta tables again, and ingest through the workers
# and the coordinator keeps them equal to GROUP BY.
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

my ($coord, $w1, $w2) = citus_cluster();

# two distributed streams of an ordinary role: app.events, and app.rolled
# with a rollup; batches b1..b3 of 40 events over 17 users, b1c: b1 with
# one payload changed.  The events' times are in today's first hours (UTC,
# at most 5 hours ahead of the clock, within max_future): a call into a
# distributed stream makes no partition, and the streams have today's and
# the next days' only, so an hour before now was yesterday's, quarantined,
# when the test ran shortly after midnight
$coord->safe_psql(
	'postgres', q{
CREATE ROLE ek_owner LOGIN;
CREATE SCHEMA app AUTHORIZATION ek_owner;
SET ROLE ek_owner;
SELECT eventkit.create_stream('app.events', key_partitions => 0);
SELECT eventkit.create_stream('app.rolled', key_partitions => 0);
RESET ROLE;
SELECT eventkit.distribute_stream('app.events');
SELECT eventkit.distribute_stream('app.rolled');
CREATE EXTENSION IF NOT EXISTS hll;
SET ROLE ek_owner;
SELECT eventkit.create_rollup('app.r', 'app.rolled', '1 hour', '{event}', '{count}') IS NOT NULL;
SELECT eventkit.create_rollup('app.rf', 'app.rolled', '1 hour', '{event}',
		ARRAY['count', 'sum(properties.i) AS total', 'distinct(user_id) AS users'],
		filter => $$event <> 'E2'$$) IS NOT NULL;
SELECT eventkit.create_rollup_of('app.rd', 'app.r', '1 day') IS NOT NULL;
GRANT SELECT ON app.rf_realtime TO PUBLIC;
RESET ROLE;
CREATE TABLE batches AS
SELECT 'b' || k AS b, jsonb_agg(jsonb_build_object(
		 'type', 'track', 'messageId', 'm-' || k || '-' || i, 'userId', 'u' || (i % 17),
		 'event', 'E' || (i % 3), 'properties', jsonb_build_object('i', i),
		 'timestamp', to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 hour',
							  'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		 ORDER BY i)::text AS payload
  FROM generate_series(1, 3) k, generate_series(1, 40) i GROUP BY k;
INSERT INTO batches
SELECT 'b1c', jsonb_set(payload::jsonb, '{0,properties,i}', '1000')::text FROM batches WHERE b = 'b1';
-- app.rolled's: r1..r14 of 10 events over 23 users and 4 hours
INSERT INTO batches
SELECT 'r' || k, jsonb_agg(jsonb_build_object(
		 'type', 'track', 'messageId', 'r-' || k || '-' || i, 'userId', 'u' || ((k * 10 + i) % 23),
		 'event', 'E' || (i % 3), 'properties', jsonb_build_object('i', k * 10 + i),
		 'timestamp', to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + (1 + i % 4) * interval '1 hour',
							  'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		 ORDER BY i)::text
  FROM generate_series(1, 14) k, generate_series(1, 10) i GROUP BY k;
});

# app.rolled's rollups against GROUP BY over the stream, in database $db
# of $node: the number of rows that differ, for app.r (count), app.rf
# (filtered: count, sum, hll distinct) and app.rd (daily, of app.r), as
# "r|rf|rd" ($which: those named); their tables, or ($view) their
# realtime views
sub rollups_diff
{
	my ($node, $db, $view, @which) = @_;
	@which = qw(r rf rd) unless @which;
	my $users = $view ? 'users' : 'round(hll_cardinality(users))::bigint';
	my %check = (
		r => [ 'bucket, event, count',
			q{SELECT date_trunc('hour', ts), event, count(*) FROM app.rolled GROUP BY 1, 2} ],
		rf => [ "bucket, event, count, total, $users",
			q{SELECT date_trunc('hour', ts), event, count(*), sum((properties->>'i')::numeric),
					 count(DISTINCT user_id) FROM app.rolled WHERE event <> 'E2' GROUP BY 1, 2} ],
		rd => [ 'bucket, event, count',
			q{SELECT date_bin('1 day', ts, '2000-01-01 00:00+00'), event, count(*) FROM app.rolled GROUP BY 1, 2} ]);
	my @diffs;
	for my $r (@which)
	{
		my ($cols, $groupby) = @{ $check{$r} };
		my $rel = $view ? "app.${r}_realtime" : "app.$r";
		push @diffs, $node->safe_psql($db,
			"SELECT count(*) FROM ((SELECT $cols FROM $rel EXCEPT $groupby)"
			  . " UNION ALL ($groupby EXCEPT SELECT $cols FROM $rel)) d");
	}
	return join('|', @diffs);
}

# the counts of one ingest call of batch $b into $stream on $node ($db)
sub ingest
{
	my ($node, $db, $stream, $b) = @_;
	my $p = $coord->safe_psql('postgres', "SELECT payload FROM batches WHERE b = '$b'");
	return $node->safe_psql($db,
		"SET ROLE ek_owner; SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
		  . " FROM eventkit.ingest('$stream', '$p')");
}

# the error of $sql in database $db of $node ('' when it succeeded)
sub err_in
{
	my ($node, $db, $sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql($db, $sql);
	return $ret == 0 ? '' : $stderr;
}

is(ingest($coord, 'postgres', 'app.events', 'b1'), '40,0,0,0,0', 'b1 through the coordinator');
is(ingest($w1, 'postgres', 'app.events', 'b2'), '40,0,0,0,0', 'b2 through worker1');
is(ingest($w2, 'postgres', 'app.events', 'b1'), '0,40,0,0,0', 'b1 again through worker2: duplicates');
# app.rolled: r1, r2 through the coordinator, r3..r10 through worker1 (its
# batch ids past the coordinator's), refreshed; then r11 through worker2
# and r12 through the coordinator, not folded at the dump (their deltas
# in the worker delta tables and the delta tables)
is(join(' ', map { ingest($coord, 'postgres', 'app.rolled', "r$_") } 1 .. 2),
	'10,0,0,0,0 10,0,0,0,0', 'app.rolled: r1, r2 through the coordinator');
# (worker1's batch ids far past the coordinator's, as a worker's that
# ingested more calls are)
$w1->safe_psql('postgres', q{SELECT setval('eventkit.batch_id_seq', 100)});
is(join(' ', map { ingest($w1, 'postgres', 'app.rolled', "r$_") } 3 .. 10),
	join(' ', ('10,0,0,0,0') x 8), '... r3..r10 through worker1');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('app.r'); SELECT eventkit.refresh_rollup('app.rf')});
is(ingest($w2, 'postgres', 'app.rolled', 'r11'), '10,0,0,0,0', '... r11 through worker2');
is(ingest($coord, 'postgres', 'app.rolled', 'r12'), '10,0,0,0,0', '... r12 through the coordinator');
is($coord->safe_psql('postgres', q{SELECT (SELECT count(*) > 0 FROM app.rf_wdelta), (SELECT count(*) > 0 FROM app.rf_delta)}),
	't|t', '... their deltas not folded yet');
my $coord_rollup = $coord->safe_psql('postgres', 'SELECT event, count FROM app.r_realtime ORDER BY event');

# the still distributed stream: undistribute_stream is for restored copies
like(psql_err($coord, q{SELECT eventkit.undistribute_stream('app.events')}),
	qr/stream "events" is still distributed on Citus.*HINT:  To leave Citus, dump the coordinator with pg_dump and restore the dump on a server without Citus; call eventkit.undistribute_stream\('app.events'\) there/s,
	'undistribute_stream of a live distributed stream: clear error');

my $dump = $coord->basedir . '/coordinator.dump';
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $coord->connstr('postgres') ],
	'pg_dump of the coordinator');

# --- restored on a server without Citus ----------------------------------

my $single = PostgreSQL::Test::Cluster->new('single');
$single->init;
$single->append_conf('postgresql.conf', "shared_preload_libraries = 'eventkit'\neventkit.scheduler_enabled = off\n");
$single->start;
$single->safe_psql('postgres', 'CREATE ROLE ek_owner LOGIN; CREATE DATABASE restored');
my ($out, $err) = ('', '');
IPC::Run::run([ 'pg_restore', '-d', $single->connstr('restored'), $dump ], '>', \$out, '2>', \$err);
# Citus itself cannot be restored here: its two objects fail, nothing else
my @errors = ($err =~ /^pg_restore: error: (.*)$/mg);
is(scalar(@errors), 2, 'pg_restore: two errors') or diag($err);
like($err, qr/Citus can only be loaded via shared_preload_libraries/, '... CREATE EXTENSION citus');
like($err, qr/extension "citus" does not exist\n.*COMMENT ON EXTENSION citus/, '... and its comment');

is($single->safe_psql('restored', 'SELECT count(*), count(DISTINCT message_id) FROM app.events'),
	'80|80', 'every event of every node restored once');

like(err_in($single, 'restored', q{SELECT * FROM eventkit.ingest('app.events', (SELECT payload FROM batches WHERE b = 'b1'))}),
	qr/stream "events" has the dedup ledger of a distributed stream but is not distributed.*DETAIL:  The ids it stored while distributed on Citus are in eventkit_ledgers.dist_ledger_\d+, which ingest on a stream that is not a Citus table does not read: re-sent events would be stored again.*HINT:  Call eventkit.undistribute_stream\('app.events'\) to move those ids into the stream's own ledger/s,
	'ingest into the restored stream: refused, naming undistribute_stream');
like(err_in($single, 'restored', q{SELECT * FROM eventkit.ingest('app.events', (SELECT payload FROM batches WHERE b = 'b3'))}),
	qr/has the dedup ledger of a distributed stream/, '... new events too');
is($single->safe_psql('restored', 'SELECT count(*) FROM app.events'), '80', 'nothing stored by the refused calls');

# the errors of undistribute_stream
like(err_in($single, 'restored', q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.local'); SELECT eventkit.undistribute_stream('app.local')}),
	qr/stream "local" was not distributed.*DETAIL:  It has no distributed dedup ledger; its ids are in its own ledger already/s,
	'undistribute_stream of a stream never distributed: clear error');
like(err_in($single, 'restored', q{CREATE ROLE other; GRANT USAGE ON SCHEMA app TO other; SET ROLE other; SELECT eventkit.undistribute_stream('app.events')}),
	qr/must be owner of table events/, '... by another role: refused');

# the restored realtime view reads the restored rollup (the view names it)
is($single->safe_psql('restored', 'SELECT event, count FROM app.r_realtime ORDER BY event'),
	$coord_rollup, "the restored rollup's realtime view: the coordinator's rows");
is(rollups_diff($single, 'restored', 1, 'r'), '0', '... equal to GROUP BY over the restored stream');

# a ledger row its owner made NULL: a clear error, nothing moved
like(err_in($single, 'restored', q{BEGIN; SET ROLE ek_owner;
ALTER TABLE eventkit_ledgers.dist_ledger_1 ALTER COLUMN fingerprint DROP NOT NULL;
UPDATE eventkit_ledgers.dist_ledger_1 SET fingerprint = NULL WHERE message_id = 'm-1-1';
SELECT eventkit.undistribute_stream('app.events')}),
	qr/the dedup ledger eventkit_ledgers.dist_ledger_1 has a row with a NULL user_key, message_id or fingerprint.*HINT:  Restore the row's values from the dump/s,
	'undistribute_stream of a ledger with a NULL: clear error (the statements roll back)');

# undistribute_stream by the stream's owner
is($single->safe_psql('restored', q{SET ROLE ek_owner; SELECT eventkit.undistribute_stream('app.events')}),
	'80', 'undistribute_stream: the 80 ids moved');
is($single->safe_psql('restored',
		q{SELECT count(*) FROM pg_class WHERE relnamespace = 'eventkit_ledgers'::regnamespace AND relkind = 'r' AND relname LIKE 'dist_ledger%'}),
	'1', "the stream's distributed ledger dropped (app.rolled's kept)");
is($single->safe_psql('restored',
		q{SELECT string_agg(relname, ',' ORDER BY relname) FROM eventkit_internal.cluster_streams}),
	'app.rolled', '... and its cluster-wide catalog row');

is(ingest($single, 'restored', 'app.events', 'b1'), '0,40,0,0,0', 'then b1 (sent through the coordinator) again: duplicates');
is(ingest($single, 'restored', 'app.events', 'b2'), '0,40,0,0,0', '... b2 (sent through worker1): duplicates');
is(ingest($single, 'restored', 'app.events', 'b1c'), '0,39,1,0,0', '... b1 with one payload changed: a conflict');
is(ingest($single, 'restored', 'app.events', 'b3'), '40,0,0,0,0', '... new events: accepted');
is(ingest($single, 'restored', 'app.events', 'b3'), '0,40,0,0,0', '... and again: duplicates');
is($single->safe_psql('restored', 'SELECT count(*), count(DISTINCT message_id) FROM app.events'),
	'120|120', 'each id stored once');
like(err_in($single, 'restored', q{SET ROLE ek_owner; SELECT eventkit.undistribute_stream('app.events')}),
	qr/stream "events" was not distributed/, 'undistribute_stream again: clear error');

# forget_user reaches the moved ids (their user key hashes are kept)
$single->safe_psql('restored', q{SET ROLE ek_owner; SELECT eventkit.forget_user('app.events', 'u3')});
is($single->safe_psql('restored', q{SELECT count(*) FROM app.events WHERE user_key = 'u3'}), '0',
	"forget_user: the user's events gone");
my $forgotten = $coord->safe_psql('postgres',
	q{SELECT count(*) FROM batches b, jsonb_array_elements(b.payload::jsonb) e WHERE b.b IN ('b1', 'b2', 'b3') AND e->>'userId' = 'u3'});
my $sid = $single->safe_psql('restored', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
my $ledger_rows = $single->safe_psql('restored', "SELECT count(*) FROM eventkit_internal.ledger_$sid");
is($ledger_rows, 120 - $forgotten, "... and the user's ids in the ledger, moved ones included");

# --- undistribute_stream of app.rolled, with its rollups -------------------

is($single->safe_psql('restored',
		q{SELECT max(batch_id) > (SELECT last_value FROM eventkit.batch_id_seq) FROM app.rolled}),
	't', "app.rolled restored: its rows' batch ids (worker1's) past this server's batch position")
;
is(rollups_diff($single, 'restored', 1), '0|0|0', "... its rollups' restored realtime views equal GROUP BY");
my ($ret, $stdout, $stderr) = $single->psql('restored',
	q{SET ROLE ek_owner; SELECT eventkit.undistribute_stream('app.rolled')});
is("$ret|$stdout", '0|120', 'undistribute_stream of the stream with rollups: its 120 ids moved') or diag($stderr);
like($stderr, qr/NOTICE:  rollup "r" rebuilt from the 120 events of stream "rolled"\nDETAIL:  Its rows were made again from all the stream's rows, its deltas deleted and its worker delta table dropped; its watermark is this server's batch position, \d+\./,
	'... a NOTICE for each rollup rebuilt');
like($stderr, qr/NOTICE:  rollup "rf" rebuilt from the 84 events of stream "rolled"/, '... (the filtered one: its 84 events)');
is(rollups_diff($single, 'restored'), '0|0|0',
	'the rollup tables equal GROUP BY over the stream (count; filtered count, sum, hll distinct; the daily rollup of the first)');
is($single->safe_psql('restored', q{
SELECT (SELECT count(*) FROM app.r_delta) + (SELECT count(*) FROM app.rf_delta),
	   to_regclass('app.r_wdelta') IS NULL AND to_regclass('app.rf_wdelta') IS NULL}),
	'0|t', '... their deltas deleted, their worker delta tables dropped');
is($single->safe_psql('restored', q{
SELECT bool_and(watermark >= (SELECT max(batch_id) FROM app.rolled)
				AND watermark = (SELECT last_value FROM eventkit.batch_id_seq) AND backfill_target = watermark),
	   string_agg(relid::regclass::text || ':' || events_folded || ':' || skipped_values::text, ' ' ORDER BY relid::regclass::text)
  FROM eventkit.rollups WHERE stream = 'app.rolled'::regclass}),
	't|app.r:120:{} app.rd:0:{} app.rf:84:{}',
	'... their watermarks this server\'s batch position, past every row\'s batch id; their counts those of the rebuild');
is($single->safe_psql('restored', q{SELECT has_table_privilege('other', 'app.rf_realtime', 'SELECT'), pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'app.rf_realtime'::regclass}),
	't|ek_owner', "... the realtime view's grant and owner kept");
is(rollups_diff($single, 'restored', 1), '0|0|0', '... the realtime views equal GROUP BY');

is(join(' ', map { ingest($single, 'restored', 'app.rolled', $_) } qw(r3 r11 r12)),
	'0,10,0,0,0 0,10,0,0,0 0,10,0,0,0', 'old batches (through worker1, worker2, the coordinator) again: duplicates');
is(ingest($single, 'restored', 'app.rolled', 'r13'), '10,0,0,0,0', 'new events: accepted');
is($single->safe_psql('restored',
		q{SELECT min(batch_id) FILTER (WHERE message_id LIKE 'r-13-%') > max(batch_id) FILTER (WHERE message_id NOT LIKE 'r-13-%') FROM app.rolled}),
	't', "... with a batch id past every old row's");
is(rollups_diff($single, 'restored', 1), '0|0|0', 'the realtime views equal GROUP BY before a refresh');
is($single->safe_psql('restored', q{SET ROLE ek_owner; SELECT eventkit.refresh_rollup('app.r'), eventkit.refresh_rollup('app.rf')}),
	'10|7', 'a refresh folds the new events');
is(rollups_diff($single, 'restored'), '0|0|0', '... and the rollup tables equal GROUP BY');
is(ingest($single, 'restored', 'app.rolled', 'r13'), '0,10,0,0,0', 'the new batch again: duplicates');
is($single->safe_psql('restored', q{SET ROLE ek_owner; SELECT eventkit.refresh_rollup('app.r'), eventkit.refresh_rollup('app.rf');
SELECT (SELECT sum(count) FROM app.r) = (SELECT count(*) FROM app.rolled)}),
	"0|0\nt", '... nothing more folded: every event counted once');
is(rollups_diff($single, 'restored'), '0|0|0', '... the rollup tables equal GROUP BY');
is($single->safe_psql('restored', q{SELECT count(*) FROM eventkit_internal.cluster_streams}),
	'0', 'no stream left in the cluster-wide catalog');

# --- restored on a Citus cluster, distributed again -----------------------
# (a new database on the same three nodes, Citus set up in it; pg_restore on
# its coordinator creates eventkit there, and Citus on the workers)

$coord->safe_psql('postgres', 'CREATE DATABASE again');
for my $n ($w1, $w2)
{
	$n->safe_psql('postgres', 'CREATE DATABASE again')
	  unless $n->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'again'});
	$n->safe_psql('again', 'CREATE EXTENSION IF NOT EXISTS citus');
}
$coord->safe_psql('again', 'CREATE EXTENSION IF NOT EXISTS citus');
$coord->safe_psql(
	'again', sprintf(
		q{SELECT citus_set_coordinator_host('%s', %d); SELECT citus_add_node('%s', %d); SELECT citus_add_node('%s', %d)},
		$coord->host, $coord->port, $w1->host, $w1->port, $w2->host, $w2->port));
($out, $err) = ('', '');
IPC::Run::run([ 'pg_restore', '-d', $coord->connstr('again'), $dump ], '>', \$out, '2>', \$err);
is($err, '', 'pg_restore on a Citus coordinator: no error');
is($w1->safe_psql('again', q{SELECT count(*) FROM pg_extension WHERE extname = 'eventkit'}), '1',
	'... eventkit created on the workers too');
like(err_in($coord, 'again', q{SELECT * FROM eventkit.ingest('app.events', (SELECT payload FROM batches WHERE b = 'b1'))}),
	qr/stream "events" has the dedup ledger of a distributed stream but is not distributed/,
	'ingest into the restored (local) stream on the coordinator: refused');
is($coord->safe_psql('again', q{SET ROLE ek_owner; SELECT eventkit.undistribute_stream('app.events')}),
	'80', 'undistribute_stream there: the 80 ids moved');
$coord->safe_psql('again', q{SELECT eventkit.distribute_stream('app.events')});
is($coord->safe_psql('again', q{SELECT relname FROM eventkit_internal.cluster_streams ORDER BY 1}),
	'app.events', "distributed again: the stream's cluster-wide row (the old cluster's rows gone)");
is($coord->safe_psql('again', q{SELECT count(*), count(DISTINCT message_id) FROM app.events}),
	'80|80', '... its 80 events in the new shards');
is(ingest($w1, 'again', 'app.events', 'b1'), '0,40,0,0,0', 'b1 again, through worker1: duplicates');
is(ingest($w2, 'again', 'app.events', 'b2'), '0,40,0,0,0', 'b2 again, through worker2: duplicates');
is(ingest($w2, 'again', 'app.events', 'b3'), '40,0,0,0,0', 'b3 through worker2: accepted');
is(ingest($coord, 'again', 'app.events', 'b3'), '0,40,0,0,0', '... and again through the coordinator: duplicates');
is($coord->safe_psql('again', q{SELECT count(*), count(DISTINCT message_id) FROM app.events}),
	'120|120', 'each id stored once');

# the stream with rollups there: undistributed, then distributed again with
# its rollups in place
($ret, $stdout, $stderr) = $coord->psql('again',
	q{SET ROLE ek_owner; SELECT eventkit.undistribute_stream('app.rolled')});
is("$ret|$stdout", '0|120', 'undistribute_stream of the stream with rollups there') or diag($stderr);
like($stderr, qr/NOTICE:  rollup "rf" rebuilt from the 84 events of stream "rolled"/, '... its rollups rebuilt');
is(rollups_diff($coord, 'again'), '0|0|0', '... the rollup tables equal GROUP BY');
is($coord->safe_psql('again', q{SELECT to_regclass('app.r_wdelta') IS NULL, (SELECT count(*) FROM app.rf_delta)}),
	't|0', '... the worker delta tables dropped, the deltas deleted');
is(err_in($coord, 'again', q{SELECT eventkit.distribute_stream('app.rolled')}), '',
	'distribute_stream of it, with its rollups in place');
is($coord->safe_psql('again', q{SELECT to_regclass('app.r_wdelta') IS NOT NULL AND to_regclass('app.rf_wdelta') IS NOT NULL}),
	't', '... their worker delta tables made again');
is(ingest($w1, 'again', 'app.rolled', 'r3'), '0,10,0,0,0', 'an old batch again, through worker1: duplicates');
is(ingest($coord, 'again', 'app.rolled', 'r12'), '0,10,0,0,0', '... another through the coordinator: duplicates');
is(ingest($w2, 'again', 'app.rolled', 'r13'), '10,0,0,0,0', 'new events through worker2: accepted');
is(ingest($coord, 'again', 'app.rolled', 'r14'), '10,0,0,0,0', '... and through the coordinator');
is(rollups_diff($coord, 'again', 1), '0|0|0', 'the realtime views equal GROUP BY over the distributed stream (the daily rollup of a rollup too)');
is($coord->safe_psql('again', q{SET ROLE ek_owner; SELECT eventkit.refresh_rollup('app.r'), eventkit.refresh_rollup('app.rf')}),
	'20|14', 'a refresh folds the new events, the worker\'s included');
is(rollups_diff($coord, 'again'), '0|0|0', '... and the rollup tables equal GROUP BY');
is($coord->safe_psql('again', q{SELECT (SELECT sum(count) FROM app.r) = (SELECT count(*) FROM app.rolled)}),
	't', '... every event counted once');

done_testing();
