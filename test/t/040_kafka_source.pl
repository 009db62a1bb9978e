
# Copyright: eventkit authors
#
# Intake from Kafka, against librdkafka's mock cluster (test/kafka/mock_cluster):
# a source created by an ordinary role consumes a 3-partition topic into a
# stream, as that role.  Messages hold one event, an array, a Segment batch
# envelope or NDJSON; unusable ones (not JSON, not UTF-8, a NUL byte, empty,
# a bad envelope, over eventkit.max_batch_bytes) and invalid events are
# quarantined with their topic, partition and offset; a re-sent event is a
# duplicate.  Then: what create_kafka_source refuses, the view with masked
# secrets and no access to the raw options, a topic that appears after its
# source, drop_kafka_source and DROP EXTENSION ending the consumers.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KafkaMock;

my $kafka = KafkaMock->new(topic => 'events', partitions => 3);
my $boot  = $kafka->bootstrap;

my $node = PostgreSQL::Test::Cluster->new('kafka_source');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.max_batch_bytes = 8192
eventkit.kafka_batch_ms = 50
max_worker_processes = 16
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
-- evaluated by the role that writes the row
ALTER TABLE ev ADD COLUMN ingested_as text DEFAULT current_user;
SELECT eventkit.create_stream('ev_later');
SELECT eventkit.create_stream('ev_closed');
CREATE TABLE not_a_stream (x int);
CREATE ROLE ingester;
CREATE ROLE other;
GRANT INSERT, SELECT ON ev, ev_later, not_a_stream TO ingester;
GRANT EXECUTE ON FUNCTION eventkit.create_kafka_source(text, regclass, text, text, jsonb) TO ingester, other;
});

sub psql_error
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $err;
}

sub as_ingester
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE ingester; $sql");
	return $ret == 0 ? $out : "ERROR: $err";
}

# ---- what create_kafka_source refuses
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'events',
	'{"plugin.library.paths": "/tmp/evil.so"}')}),
	qr/only superusers can set the Kafka option "plugin.library.paths"/,
	'a plugin library needs a superuser');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'events',
	'{"ssl.ca.location": "/etc/passwd"}')}),
	qr/only superusers can set the Kafka option "ssl.ca.location"/,
	'a server file needs a superuser');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'events',
	'{"enable.auto.commit": true}')}),
	qr/Kafka option "enable.auto.commit" is set by eventkit/, 'offset commits stay off');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'events',
	'{"no.such.property": 1}')}),
	qr/invalid Kafka option "no.such.property"/, 'unknown librdkafka property');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'events',
	'{"client.id": {"a": 1}}')}),
	qr/must be a string, a number or a boolean/, 'option values are scalars');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev', '$boot', 'bad topic')}),
	qr/invalid Kafka topic name "bad topic"/, 'topic name checked');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'ev_closed', '$boot', 'events')}),
	qr/permission denied for table ev_closed/, 'the creator needs INSERT on the stream');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('x', 'not_a_stream', '$boot', 'events')}),
	qr/"not_a_stream" is not an eventkit stream/, 'only streams');
like(psql_error(q{SET ROLE other; SELECT eventkit.drop_kafka_source('nope')}),
	qr/Kafka source "nope" does not exist/, 'dropping a missing source');

# ---- a source, as the ingester
is(as_ingester(qq{SELECT eventkit.create_kafka_source('s1', 'ev', '$boot', 'events',
	'{"topic.metadata.refresh.interval.ms": 500, "sasl.password": "hunter2",
	  "ssl.key.password": "s3cret", "client.id": "ek-test"}')}), '', 'source created');
like(as_ingester(qq{SELECT eventkit.create_kafka_source('s1', 'ev', '$boot', 'events')}),
	qr/Kafka source "s1" already exists/, 'names are unique');

my @events = map { qq({"type":"track","messageId":"s-$_","userId":"u$_","event":"Single"}) } 1 .. 10;
my $array = '[' . join(',', map { qq({"type":"track","messageId":"a-$_","userId":"u","event":"Array"}) } 1 .. 3) . ']';
my $envelope = '{"batch":['
  . join(',', map { qq({"type":"track","messageId":"e-$_","userId":"u","event":"Env","originalTimestamp":"2030-01-01T00:00:00Z"}) } 1 .. 2)
  . '],"sentAt":"2030-01-01T00:00:05Z","context":{"library":{"name":"envlib"}}}';
my $ndjson = join("\n", map { qq({"type":"track","messageId":"n-$_","userId":"u","event":"Nd"}) } 1 .. 2);

# partition 0: 10 single events, an array, an envelope, NDJSON, a re-sent event
$kafka->produce('events', 0, [ @events, $array, $envelope ]);
$kafka->produce_hex('events', 0, unpack('H*', $ndjson));
$kafka->produce('events', 0, [ $events[0] ]);

# partition 1: unusable messages and an invalid event, offsets 0..6
my @poison = (
	[ 'not json',        sub { $kafka->produce('events', 1, ['this is not json']) },                 'malformed_json',   'this is not json' ],
	[ 'not UTF-8',       sub { $kafka->produce_hex('events', 1, '7b22c328') },                      'malformed_json',   '\x7b22c328' ],
	[ 'a NUL byte',      sub { $kafka->produce_hex('events', 1, '7b007d') },                        'malformed_json',   '\x7b007d' ],
	[ 'empty',           sub { $kafka->cmd('empty events 1') },                                     'unusable_payload', '' ],
	[ 'bad envelope',    sub { $kafka->produce('events', 1, ['{"batch": 5}']) },                    'unusable_payload', '{"batch": 5}' ],
	[ 'too large',       sub { $kafka->produce('events', 1, ['[' . ('"x",' x 3000) . '"x"]']) },   'unusable_payload', undef ],
	[ 'no user id',      sub { $kafka->produce('events', 1, ['{"type":"track","messageId":"q-1","event":"NoUser"}']) }, 'missing_user_id', undef ],
);
$_->[1]->() for @poison;

# partition 2: five events, and one through kcat when it is installed
$kafka->produce('events', 2, [ map { qq({"type":"track","messageId":"p2-$_","userId":"u","event":"P2"}) } 1 .. 5 ]);
my $kcat = 0;
if (system('command -v kcat >/dev/null 2>&1') == 0)
{
	my $in = qq({"type":"track","messageId":"k-1","userId":"u","event":"Kcat"}\n);
	IPC::Run::run([ 'kcat', '-P', '-b', $boot, '-t', 'events', '-p', '2' ], '<', \$in)
	  or die 'kcat failed';
	$kcat = 1;
}
my $messages = 14 + @poison + 5 + $kcat;
my $accepted = 10 + 3 + 2 + 2 + 5 + $kcat;

ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 3 AND bool_and(next_offset = high_watermark) AND sum(messages) = $messages
	   FROM eventkit.kafka_sources WHERE name = 's1'}),
	'the consumer reaches the end of every partition')
  or diag($node->safe_psql('postgres', 'SELECT * FROM eventkit.kafka_sources'));

is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT message_id) FROM ev}),
	"$accepted $accepted", 'every event stored once');
is($node->safe_psql('postgres',
	q{SELECT sum(accepted) || ' ' || sum(duplicates) || ' ' || sum(quarantined) FROM eventkit.ingest_batches}),
	"$accepted 1 " . scalar(@poison), 'counts: accepted, the re-sent event a duplicate, the quarantined');
is($node->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT ingested_as, ',') FROM ev}), 'ingester',
	'rows written as the source owner (a default evaluated as that role)');
is($node->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT ingested_by::text, ',') FROM eventkit.ingest_batches}), 'ingester',
	'batches logged as ingested by the owner');
is($node->safe_psql('postgres',
	q{SELECT context->'library'->>'name' FROM ev WHERE message_id = 'e-1'}), 'envlib',
	'the envelope lends its context to its events');
is($node->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || messages || ':' || events, ' ' ORDER BY partition)
	  FROM eventkit.kafka_sources WHERE name = 's1'}),
	'0:14:18 1:7:7 2:' . (5 + $kcat) . ':' . (5 + $kcat),
	'messages and events per partition');

# every unusable message and invalid event in quarantine, with its offset
my $q = $node->safe_psql('postgres',
	q{SELECT origin->>'offset', reasons->0->>'reason', coalesce(raw, payload::text),
	         origin->>'source', origin->>'topic', origin->>'partition'
	  FROM eventkit.quarantine ORDER BY (origin->>'offset')::int});
my @rows = map { [ split /\|/, $_, -1 ] } split /\n/, $q;
is(scalar(@rows), scalar(@poison), 'one quarantine row per bad message');
for my $i (0 .. $#poison)
{
	my ($what, undef, $reason, $raw) = @{ $poison[$i] };
	my $row = $rows[$i] // [];
	is("$row->[0] $row->[1]", "$i $reason", "$what: quarantined at offset $i ($reason)");
	is("$row->[3] $row->[4] $row->[5]", 's1 events 1', "$what: with source, topic and partition");
	is($row->[2], $raw, "$what: raw bytes kept") if defined $raw;
}

# ---- the view and the raw options
is($node->safe_psql('postgres',
	q{SELECT DISTINCT options->>'sasl.password' || ' ' || (options->>'ssl.key.password') || ' ' || (options->>'client.id')
	  FROM eventkit.kafka_sources}),
	'******** ******** ek-test', 'secrets masked in the view, the rest shown');
like(as_ingester('SELECT options FROM eventkit.kafka_source_config'),
	qr/permission denied for table kafka_source_config/, 'the raw options are not readable');
is(as_ingester(q{SELECT count(*) FROM eventkit.kafka_sources}), '3', 'the owner sees its source');
is($node->safe_psql('postgres', q{SET ROLE other; SELECT count(*) FROM eventkit.kafka_sources}), '0',
	'another role does not');
is($node->safe_psql('postgres',
	q{SELECT status || ' ' || (consumer_pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'))
	  FROM eventkit.kafka_sources WHERE partition = 0}),
	'running true', 'the view names the consumer');
is($node->safe_psql('postgres',
	q{SELECT status || ' ' || detail FROM eventkit.health() WHERE component = 'kafka'}),
	"ok consumer pid "
	  . $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'})
	  . ', 3 partition(s), lag 0',
	'health: ok, no lag');

# ---- a topic that does not exist yet
is(as_ingester(qq{SELECT eventkit.create_kafka_source('s2', 'ev_later', '$boot', 'later',
	'{"topic.metadata.refresh.interval.ms": 500}')}), '', 'source for a missing topic');
ok($node->poll_query_until('postgres',
	q{SELECT last_error = 'topic "later" does not exist' AND status = 'failing' FROM eventkit.kafka_sources WHERE name = 's2'}),
	'a missing topic is shown as the error');
$kafka->cmd('create later 2');
$kafka->produce('later', -1, [ map { qq({"type":"track","messageId":"l-$_","userId":"u","event":"L"}) } 1 .. 6 ]);
ok($node->poll_query_until('postgres', q{SELECT count(*) = 6 FROM ev_later}),
	'the topic, created later, is consumed');
is($node->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || next_offset, ' ' ORDER BY partition) FROM eventkit.kafka_sources WHERE name = 's2'}),
	'0:3 1:3', 'both of its partitions');

# ---- a new source with auto.offset.reset latest starts at the end
$node->safe_psql('postgres', qq{SELECT eventkit.create_stream('ev_latest');
SELECT eventkit.create_kafka_source('s3', 'ev_latest', '$boot', 'events',
	'{"auto.offset.reset": "latest", "topic.metadata.refresh.interval.ms": 500}')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 3 AND bool_and(next_offset = high_watermark AND next_offset > 0)
	  FROM eventkit.kafka_sources WHERE name = 's3'}),
	'latest: the partitions are stored at their ends');
$kafka->produce('events', 0, ['{"type":"track","messageId":"late-1","userId":"u","event":"Late"}']);
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ev_latest}),
	'latest: only what is produced after the start is consumed');
is($node->safe_psql('postgres', q{SELECT string_agg(message_id, ',') FROM ev_latest}), 'late-1',
	'latest: the new event');
$node->safe_psql('postgres', q{SELECT eventkit.drop_kafka_source('s3')});

# ---- drop_kafka_source, DROP EXTENSION
like(psql_error(q{SET ROLE other; SELECT eventkit.drop_kafka_source('s1')}),
	qr/must be owner of Kafka source "s1"/, 'only the owner drops a source');
is(as_ingester(q{SELECT eventkit.drop_kafka_source('s1')}), '', 'the owner drops it');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'}),
	'its consumer exits, the other runs on');
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.kafka_offsets}), '2',
	'its offsets are gone');
$node->safe_psql('postgres', 'DROP EXTENSION eventkit CASCADE');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'}),
	'DROP EXTENSION: the consumers exit');
unlike(slurp_file($node->logfile), qr/server process .* was terminated by signal/,
	'no process crashed');

$node->stop;
$kafka->stop;
done_testing();
