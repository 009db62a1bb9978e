
# Copyright: eventkit authors
#
# A directory-format dump restored in parallel (pg_restore -j) comes back
# whole: the data of eventkit's catalog tables is loaded by several
# connections at once, in no particular order, so no table's load may
# depend on another's (the plan_versions -> plans foreign key made the
# restore fail, and the restored stream then took events its plan rejects).
# Checked: plans with their versions and owners, the streams' attachments,
# rollups, the ledger and its generations, jobs, the quarantine, streams
# with a generated column; the restored streams enforce their plans, dedup
# against the restored ledger, and the sequences go on after the old ids.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('parallel_restore');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'eventkit'");
# this test decides when maintenance runs; the scheduler would also run jobs
# in the database being restored
$node->append_conf('postgresql.conf', 'eventkit.scheduler_enabled = off');
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('postgres', 'CREATE ROLE plan_owner');
$node->safe_psql(
	'src', q{
CREATE EXTENSION eventkit;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;
CREATE SCHEMA app;
SELECT eventkit.create_stream('app.events');
SELECT eventkit.create_stream('keyed', key_partitions => 2, dedup_window => '3 days');
ALTER TABLE app.events ADD COLUMN revenue numeric
  GENERATED ALWAYS AS ((properties ->> 'revenue')::numeric) STORED;

CREATE FUNCTION mkev(mid text, name text, props jsonb, mins int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('type', 'track', 'messageId', mid, 'userId', 'u' || length(mid), 'event', name,
                            'properties', props,
                            'timestamp', to_char((now() - make_interval(mins => mins)) AT TIME ZONE 'UTC',
                                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
CREATE TABLE payloads (name text PRIMARY KEY, p jsonb);
INSERT INTO payloads
SELECT 'b1', jsonb_agg(mkev('e' || i, 'Order Completed', jsonb_build_object('revenue', i), 30 + i) ORDER BY i)
  FROM generate_series(1, 200) i;
INSERT INTO payloads
SELECT 'k1', jsonb_agg(mkev('k' || i, 'Page Viewed', jsonb_build_object('path', '/p' || i), 20 + i) ORDER BY i)
  FROM generate_series(1, 50) i;

-- plans with many versions (plan_versions is loaded while plans may still
-- be loading), owned by another role
SET ROLE plan_owner;
SELECT eventkit.create_plan('shop', jsonb_build_object('events', jsonb_build_object(
  'Order Completed', jsonb_build_object('properties', jsonb_build_object('required', jsonb_build_array('revenue'),
    'description', repeat('x', 2000 + v))))))
  FROM generate_series(1, 20) v;
SELECT eventkit.create_plan('pages', '{"events": {"Page Viewed": {"properties": {"required": ["path"]}}}}');
SELECT eventkit.create_plan('pages', '{"events": {"Page Viewed": {}}}');
RESET ROLE;
SELECT eventkit.attach_plan('app.events', 'shop');
SELECT eventkit.attach_plan('keyed', 'pages', 1);

SELECT eventkit.ingest('app.events', p) FROM payloads WHERE name = 'b1';
SELECT eventkit.ingest('keyed', p) FROM payloads WHERE name = 'k1';
SELECT eventkit.ingest('app.events', mkev('bad1', 'Order Completed', '{}', 5));
SELECT eventkit.create_rollup('hourly', 'app.events', '1 hour', '{event}',
                              '{count,"sum(properties.revenue) AS total","distinct(user_id) AS users"}');
SELECT eventkit.ingest('app.events', mkev('e201', 'Order Completed', '{"revenue": 201}', 3));
SET eventkit.ledger_generation_rows = 100;
SELECT eventkit.run_maintenance();
SELECT eventkit.run_maintenance();
});

is( $node->safe_psql(
		'src', q{SELECT count(*) FILTER (WHERE filter IS NOT NULL), count(*) FROM eventkit.ledger_generations}),
	'1|3',
	'a sealed ledger generation with its filter');

# What must come back identical.
my %checks = (
	'plans' => q{SELECT p.plan_id, p.name, p.owner, p.created_at FROM eventkit.plans p ORDER BY 1},
	'plan_versions' =>
	  q{SELECT plan_id, version, md5(spec::text), created_at, created_by FROM eventkit.plan_versions ORDER BY 1, 2},
	'streams' => q{SELECT s::text FROM eventkit.streams s ORDER BY stream_id},
	'ledger_generations' =>
	  q{SELECT stream_id, gen, started_at, ended_at, md5(filter) FROM eventkit.ledger_generations ORDER BY 1, 2},
	'rollups' => q{SELECT r::text FROM eventkit.rollups r ORDER BY rollup_id},
	'rollup values' => q{SELECT bucket, event, count, total, users FROM hourly_realtime ORDER BY 1, 2},
	'jobs' =>
	  q{SELECT job_id, kind, stream_id, target, schedule, enabled, next_run_at FROM eventkit.jobs ORDER BY job_id},
	'quarantine' =>
	  q{SELECT quarantine_id, stream_id, message_id, reasons, fingerprint FROM eventkit.quarantine ORDER BY 1},
	'app.events' =>
	  q{SELECT message_id, tableoid::regclass, revenue, plan_version FROM app.events ORDER BY message_id},
	'keyed' => q{SELECT message_id, tableoid::regclass, plan_version FROM keyed ORDER BY message_id},
	'ledger rows' => q{SELECT count(*) FROM eventkit_internal.ledger_1},
	'health' =>
	  q{SELECT component, target, status, detail FROM eventkit.health() WHERE component IN ('plan', 'partitions') ORDER BY 1, 2},
);
my %src;
$src{$_} = $node->safe_psql('src', $checks{$_}) for keys %checks;
like($src{'quarantine'}, qr/bad1/, 'the source has a quarantined event');
like($src{'health'},     qr/plan\|public\.keyed\|ok/, 'the source plans are healthy');

my $dir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-Fd', '-d', 'src', '-f', "$dir/src.d" ],
	'pg_dump -Fd');

for my $jobs (2, 4)
{
	my $db = "restored_j$jobs";

	$node->command_ok([ 'createdb', $db ], "createdb $db");
	$node->command_ok(
		[ 'pg_restore', '--exit-on-error', '-j', $jobs, '-d', $db, "$dir/src.d" ],
		"pg_restore -j $jobs");

	for my $c (sort keys %checks)
	{
		is($node->safe_psql($db, $checks{$c}), $src{$c}, "$db: $c as in the source");
	}

	# The restored streams enforce their plans.
	is( $node->safe_psql(
			$db, q{SELECT eventkit.ingest('app.events', mkev('bad2', 'Order Completed', '{}', 1))::text}),
		'(0,0,0,1,0)',
		"$db: an event violating the plan is quarantined");
	is( $node->safe_psql(
			$db, q{SELECT eventkit.ingest('keyed', mkev('kbad', 'Page Viewed', '{}', 1))::text}),
		'(0,0,0,1,0)',
		"$db: the pinned version 1 still applies");
	is( $node->safe_psql(
			$db,
			q{SELECT string_agg(message_id || ':' || (reasons->1->>'keyword'), ',' ORDER BY quarantine_id)
				FROM eventkit.quarantine WHERE quarantine_id > (SELECT max(quarantine_id) FROM eventkit.quarantine
															   WHERE message_id = 'bad1')}),
		'bad2:required,kbad:required',
		"$db: quarantined by the plan, with new quarantine ids");

	# The ledger, its filter and the sequences came back.
	is($node->safe_psql($db, q{SELECT eventkit.ingest('app.events', p)::text FROM payloads WHERE name = 'b1'}),
		'(0,200,0,0,0)', "$db: re-sent events are duplicates");
	is( $node->safe_psql(
			$db, q{SELECT eventkit.ingest('app.events', mkev('n1', 'Order Completed', '{"revenue": 7}', 1))::text}),
		'(1,0,0,0,0)',
		"$db: a new event is accepted");
	is($node->safe_psql($db, q{SELECT revenue FROM app.events WHERE message_id = 'n1'}),
		'7', "$db: its generated column is computed");
	is( $node->safe_psql(
			$db, q{SET ROLE plan_owner; SELECT eventkit.create_plan('pages', '{"events": {}}')}),
		'3', "$db: the plan's owner adds a version after the restored ones");
	is( $node->safe_psql(
			$db, q{SELECT eventkit.create_plan('new', '{}'); SELECT plan_id FROM eventkit.plans WHERE name = 'new'}),
		"1\n3", "$db: a new plan gets a new id");
	is( $node->safe_psql(
			$db, q{SELECT eventkit.create_stream('later'); SELECT stream_id FROM eventkit.streams WHERE relid = 'later'::regclass}),
		"later\n3", "$db: a new stream gets a new id");
	is($node->safe_psql($db, q{SELECT eventkit.refresh_rollup('hourly')}),
		'2', "$db: the rollup folds the events not folded before the dump, and the new one");
	is( $node->safe_psql(
			$db, q{SELECT count(*) FROM eventkit.health() WHERE status = 'error' AND component <> 'scheduler'}),
		'0', "$db: health() has no errors");
}

$node->stop;
done_testing();
