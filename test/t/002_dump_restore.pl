
# Copyright: eventkit authors
#
# Streams survive pg_dump / restore: the catalog (eventkit.streams,
# quarantine, ingest batches, conflicts, ledger generations), the stream
# tables with their partitions and rows, and the dedup ledger with the filter
# of a sealed generation (re-ingesting the same events in the restored
# database reports duplicates).  Checked for
# a plain-format dump restored with psql and a custom-format dump restored
# with pg_restore.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'eventkit'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');

# Payloads are built once (event times: the last hour) and kept in a table,
# which is dumped too, so the restored database can re-send exactly the same
# events.
$node->safe_psql(
	'src', q{
CREATE EXTENSION eventkit;
CREATE SCHEMA app;
SELECT eventkit.create_stream('app.events');
SELECT eventkit.create_stream('keyed', premake => 2, retention => '90 days',
							  key_partitions => 2, dedup_window => '3 days');

CREATE FUNCTION mkev(mid text, uid text, aid text, name text, props jsonb, mins int)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
		   'type', 'track', 'messageId', mid, 'userId', uid, 'anonymousId', aid,
		   'event', name, 'properties', props,
		   'timestamp', to_char((now() - make_interval(mins => mins)) AT TIME ZONE 'UTC',
								'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
$$;

CREATE TABLE payloads (name text PRIMARY KEY, p jsonb, t text);
-- b1: e1..e10
INSERT INTO payloads (name, p)
SELECT 'b1', jsonb_agg(mkev('e' || i, 'u' || (i % 3), NULL, 'Order Completed',
							jsonb_build_object('revenue', i), 50 - i) ORDER BY i)
  FROM generate_series(1, 10) AS i;
-- b2 (envelope): e9 e10 again, e11 new, q1 without userId/anonymousId
INSERT INTO payloads (name, p)
SELECT 'b2', jsonb_build_object('batch', jsonb_build_array(
		 p -> 8, p -> 9,
		 mkev('e11', 'u2', NULL, 'Order Completed', '{"revenue": 11}', 30),
		 mkev('q1', NULL, NULL, 'Order Completed', '{"revenue": 12}', 30)))
  FROM payloads WHERE name = 'b1';
-- b3: e1 with a different revenue
INSERT INTO payloads (name, p)
SELECT 'b3', jsonb_set(p -> 0, '{properties,revenue}', '999') FROM payloads WHERE name = 'b1';
-- d1: e9 e10 e11, to re-send after the restore
INSERT INTO payloads (name, p)
SELECT 'd1', jsonb_build_array(b1.p -> 8, b1.p -> 9, b2.p -> 'batch' -> 2)
  FROM payloads b1, payloads b2 WHERE b1.name = 'b1' AND b2.name = 'b2';
-- k1: k1..k6 for the keyed stream, half by userId, half by anonymousId
INSERT INTO payloads (name, p)
SELECT 'k1', jsonb_agg(mkev('k' || i,
							CASE WHEN i % 2 = 0 THEN 'ku' || i END,
							CASE WHEN i % 2 = 1 THEN 'ka' || i END,
							'Page Viewed', jsonb_build_object('n', i), 20 + i) ORDER BY i)
  FROM generate_series(1, 6) AS i;
-- k2: NDJSON text, k7 k8
INSERT INTO payloads (name, t)
SELECT 'k2', mkev('k7', 'ku7', NULL, 'Page Viewed', '{}', 10)::text || E'\n'
			 || mkev('k8', NULL, 'ka8', 'Page Viewed', '{}', 9)::text || E'\n';
});

sub ingest
{
	my ($db, $stream, $name) = @_;
	my $col = $name eq 'k2' ? 't' : 'p';
	return $node->safe_psql($db,
		"SELECT eventkit.ingest('$stream', $col)::text FROM payloads WHERE name = '$name'"
	);
}

is(ingest('src', 'app.events', 'b1'), '(10,0,0,0,0)', 'b1: 10 accepted');
is(ingest('src', 'app.events', 'b2'), '(1,2,0,1,0)',
	'b2: 1 accepted, 2 duplicates, 1 quarantined');
is(ingest('src', 'app.events', 'b3'), '(0,0,1,0,0)', 'b3: 1 conflict');
is(ingest('src', 'keyed', 'k1'), '(6,0,0,0,0)', 'k1: 6 accepted');
is(ingest('src', 'keyed', 'k2'), '(2,0,0,0,0)', 'k2 (NDJSON): 2 accepted');

is($node->safe_psql('src', 'SELECT count(*) FROM app.events'), '11', 'app.events has 11 rows');
is($node->safe_psql('src', 'SELECT count(*) FROM keyed'), '8', 'keyed has 8 rows');
is( $node->safe_psql(
		'src', 'SELECT message_id FROM eventkit.quarantine ORDER BY quarantine_id'),
	'q1',
	'q1 is in quarantine');
is($node->safe_psql('src', 'SELECT count(*) FROM eventkit.conflicts'),
	'1', 'one conflict logged');

# A tracking plan on keyed, pinned at version 1 of 2: plans, versions and the
# attachment must come back, and the restored stream must still apply it.
$node->safe_psql(
	'src', q{
SELECT eventkit.create_plan('keyed_plan', '{"events": {"Plan Checked": {"properties": {"required": ["x"]}}}}');
SELECT eventkit.create_plan('keyed_plan', '{"events": {"Plan Checked": {}}}');
SELECT eventkit.attach_plan('keyed', 'keyed_plan', 1);});

# Seal app.events's first ledger generation by size and build its filter: the
# filter is dumped and restored with eventkit.ledger_generations, and the
# re-sent events below are found through it.
$node->safe_psql(
	'src', q{
SET eventkit.ledger_generation_rows = 5;
SELECT eventkit.run_maintenance('app.events');
SELECT eventkit.run_maintenance('app.events');});
is( $node->safe_psql(
		'src', q{
SELECT string_agg(format('%s %s %s', stream_id, gen, filter IS NOT NULL), ',' ORDER BY stream_id, gen)
  FROM eventkit.ledger_generations}),
	'1 1 t,1 2 f,2 1 f',
	'app.events: generation 1 sealed with its filter');

# What must come back identical.
my %checks = (
	'plans' => q{
SELECT p.plan_id, p.name, p.owner, p.created_at, v.version, v.spec::text,
	   v.created_at, v.created_by
  FROM eventkit.plans p JOIN eventkit.plan_versions v USING (plan_id)
 ORDER BY 1, 5},
	'streams' => q{
SELECT stream_id, relid::text, partition_interval, premake, retention,
	   key_partitions, dedup_window, ledger_gen, created_at, plan_id, plan_version
  FROM eventkit.streams ORDER BY stream_id},
	'stream columns' => q{
SELECT attrelid::regclass::text, attnum, attname, format_type(atttypid, atttypmod), attnotnull
  FROM pg_attribute
 WHERE attrelid IN ('app.events'::regclass, 'keyed'::regclass)
   AND attnum > 0 AND NOT attisdropped
 ORDER BY 1, 2},
	'app.events rows' =>
	  q{SELECT tableoid::regclass::text, e::text FROM app.events e ORDER BY message_id},
	'keyed rows' =>
	  q{SELECT tableoid::regclass::text, e::text FROM keyed e ORDER BY message_id},
	'app.events partitions' =>
	  q{SELECT partition::text, range_start, range_end FROM eventkit.partitions('app.events')},
	'keyed partitions' =>
	  q{SELECT partition::text, range_start, range_end FROM eventkit.partitions('keyed')},
	'partition trees' => q{
SELECT t.relid::text, t.parentrelid::text, t.isleaf, t.level,
	   pg_get_expr(c.relpartbound, c.oid), pg_get_partkeydef(c.oid)
  FROM (SELECT * FROM pg_partition_tree('app.events')
		UNION ALL SELECT * FROM pg_partition_tree('keyed')) t
  JOIN pg_class c ON c.oid = t.relid
 ORDER BY 1},
	'stream indexes' => q{
SELECT tablename, indexname, indexdef FROM pg_indexes
 WHERE schemaname IN ('app', 'public') ORDER BY 1, 2},
	'quarantine' =>
	  q{SELECT q::text FROM eventkit.quarantine q ORDER BY quarantine_id},
	'ingest_batches' =>
	  q{SELECT b::text FROM eventkit.ingest_batches b ORDER BY batch_id},
	'conflicts' =>
	  q{SELECT c::text FROM eventkit.conflicts c ORDER BY conflict_id},
	'ledger_generations' =>
	  q{SELECT g::text FROM eventkit.ledger_generations g ORDER BY stream_id, gen},
	'stream_stats' => q{
SELECT stream_id, stream::text, batches, accepted, duplicates, conflicts,
	   quarantined, rejected, in_quarantine, last_ingest_at
  FROM eventkit.stream_stats ORDER BY stream_id},
	'extension members' => q{
SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventkit')
   AND deptype = 'e'
 ORDER BY 1},);

my %src;
$src{$_} = $node->safe_psql('src', $checks{$_}) for keys %checks;

like($src{'app.events partitions'}, qr/\S/, 'app.events has partitions');
like($src{'keyed partitions'},      qr/\S/, 'keyed has partitions');
like($src{'ledger_generations'},    qr/\S/, 'ledger generations are recorded');
like($src{'plans'},                 qr/keyed_plan/, 'the plan is recorded');

my $dir = PostgreSQL::Test::Utils::tempdir;

$node->command_ok([ 'pg_dump', '-d', 'src', '-f', "$dir/src.sql" ],
	'pg_dump (plain)');
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'src', '-f', "$dir/src.dump" ],
	'pg_dump (custom)');

$node->command_ok([ 'createdb', 'restored_plain' ], 'createdb restored_plain');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'restored_plain',
		'-f', "$dir/src.sql"
	],
	'restore the plain dump with psql');

$node->command_ok([ 'createdb', 'restored_custom' ], 'createdb restored_custom');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', 'restored_custom', "$dir/src.dump" ],
	'restore the custom dump with pg_restore');

for my $db ('restored_plain', 'restored_custom')
{
	for my $c (sort keys %checks)
	{
		is($node->safe_psql($db, $checks{$c}), $src{$c}, "$db: $c as in the source");
	}

	# The dedup ledger survived: the same events are duplicates (or, with
	# other content, a conflict).
	is(ingest($db, 'app.events', 'b1'), '(0,10,0,0,0)',
		"$db: b1 again: 10 duplicates");
	is(ingest($db, 'app.events', 'd1'), '(0,3,0,0,0)',
		"$db: e9 e10 e11 again: 3 duplicates");
	is(ingest($db, 'app.events', 'b3'), '(0,0,1,0,0)',
		"$db: e1 with other content: 1 conflict");
	is(ingest($db, 'keyed', 'k1'), '(0,6,0,0,0)', "$db: k1 again: 6 duplicates");
	is(ingest($db, 'keyed', 'k2'), '(0,2,0,0,0)',
		"$db: k2 (NDJSON) again: 2 duplicates");
	is($node->safe_psql($db, 'SELECT count(*) FROM app.events'),
		'11', "$db: still 11 rows in app.events");
	is($node->safe_psql($db, 'SELECT count(*) FROM keyed'),
		'8', "$db: still 8 rows in keyed");

	# The restored streams take new events; sequences came back too (new
	# batch and quarantine ids follow the old ones).
	is( $node->safe_psql(
			$db, q{
SELECT eventkit.ingest('app.events', mkev('n1', 'u9', NULL, 'Order Completed', '{"revenue": 1}', 1))::text}
		),
		'(1,0,0,0,0)',
		"$db: a new event is accepted");
	is( $node->safe_psql(
			$db, q{
SELECT eventkit.ingest('app.events', mkev('nq1', NULL, NULL, 'Order Completed', '{}', 1))::text}
		),
		'(0,0,0,1,0)',
		"$db: a new event without userId/anonymousId is quarantined");
	is( $node->safe_psql(
			$db, q{
SELECT eventkit.ingest('keyed', mkev('k9', NULL, 'ka9', 'Page Viewed', '{}', 1))::text}),
		'(1,0,0,0,0)',
		"$db: a new event is accepted in the keyed stream");
	is( $node->safe_psql(
			$db, q{
SELECT string_agg(message_id, ',' ORDER BY quarantine_id) FROM eventkit.quarantine}),
		'q1,nq1',
		"$db: new quarantine row follows the restored one");
	my $old_max_batch = $node->safe_psql('src',
		'SELECT max(batch_id) FROM eventkit.ingest_batches');
	is( $node->safe_psql(
			$db,
			"SELECT count(*) FROM eventkit.ingest_batches WHERE batch_id > $old_max_batch"
		),
		'8',
		"$db: batches after the restore got new batch ids");
	is( $node->safe_psql(
			$db,
			'SELECT count(*), count(DISTINCT message_id) FROM app.events'),
		'12|12',
		"$db: app.events: 12 rows, all distinct");

	# The restored plan applies: version 1 requires x.
	is( $node->safe_psql(
			$db, q{
SELECT eventkit.ingest('keyed', mkev('kp1', NULL, 'kap1', 'Plan Checked', '{}', 1))::text}),
		'(0,0,0,1,0)',
		"$db: the restored plan (pinned version 1) still applies");
	is( $node->safe_psql(
			$db,
			"SELECT plan_version, reasons->1->>'keyword' FROM eventkit.quarantine WHERE message_id = 'kp1'"
		),
		'1|required',
		"$db: the quarantine row records the plan version and the violation");

	# Maintenance works on restored streams, and they can be dropped.
	$node->safe_psql($db, 'SELECT eventkit.run_maintenance()');
	$node->safe_psql($db, "SELECT eventkit.drop_stream('keyed')");
	is( $node->safe_psql(
			$db,
			"SELECT count(*), to_regclass('keyed') IS NULL FROM eventkit.streams"),
		'1|t',
		"$db: run_maintenance and drop_stream work");
}

# The source was not touched by any of this.
is($node->safe_psql('src', 'SELECT count(*) FROM app.events'),
	'11', 'source still has 11 rows');

$node->stop;
done_testing();
