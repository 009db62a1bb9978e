
# Copyright: eventkit authors
#
# Intake from Kafka under faults, against the mock cluster: every broker
# down (health() shows the error, the consumer retries, and goes on when
# they are back), the database read-only, the owner's INSERT privilege
# revoked, the scheduler disabled, the stream dropped under a running
# source.  After each, the events produced meanwhile are stored, each once
# and none as a duplicate.

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

my $node = PostgreSQL::Test::Cluster->new('kafka_faults');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.kafka_batch_ms = 50
max_worker_processes = 16
});
$node->start;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
CREATE ROLE ingester;
GRANT INSERT, SELECT ON ev TO ingester;
GRANT EXECUTE ON FUNCTION eventkit.create_kafka_source(text, regclass, text, text, jsonb) TO ingester;
SET ROLE ingester;
SELECT eventkit.create_kafka_source('s', 'ev', '$boot', 'events',
	'{"topic.metadata.refresh.interval.ms": 500, "reconnect.backoff.max.ms": 500}');
});

my $total = 0;

sub produce
{
	my ($n) = @_;
	$kafka->produce('events', -1,
		[ map { my $i = $total + $_; qq({"type":"track","messageId":"m-$i","userId":"u","event":"E"}) } 1 .. $n ]);
	$total += $n;
	return;
}

sub all_stored
{
	my ($what) = @_;
	ok($node->poll_query_until('postgres', qq{SELECT count(*) = $total FROM ev}),
		"$what: the $total events are stored")
	  or diag($node->safe_psql('postgres', 'SELECT * FROM eventkit.kafka_sources'));
	is($node->safe_psql('postgres',
		q{SELECT count(DISTINCT message_id) || ' ' || (SELECT coalesce(sum(duplicates), 0) FROM eventkit.ingest_batches) FROM ev}),
		"$total 0", "$what: each once, none as a duplicate");
	return;
}

sub health
{
	return $node->safe_psql('postgres',
		q{SELECT status || ': ' || detail FROM eventkit.health() WHERE component = 'kafka'});
}

produce(100);
all_stored('start');
like(health(), qr/^ok: consumer pid \d+, 3 partition\(s\), lag 0$/, 'healthy');

# ---- every broker down
$kafka->cmd("down $_") for 1 .. 3;
ok($node->poll_query_until('postgres',
	q{SELECT status = 'error' FROM eventkit.health() WHERE component = 'kafka'}),
	'brokers down: health() shows an error');
like(health(), qr/^error: failing since .*(brokers are down|Connection refused|metadata)/,
	'with the reason');
is($node->safe_psql('postgres',
	q{SELECT DISTINCT status FROM eventkit.kafka_sources}), 'failing', 'the view says failing');
$kafka->cmd("up $_") for 1 .. 3;
produce(100);
all_stored('brokers back');
ok($node->poll_query_until('postgres',
	q{SELECT status = 'ok' FROM eventkit.health() WHERE component = 'kafka'}),
	'healthy again once the errors stopped');

# ---- the database read-only
$node->safe_psql('postgres', q{ALTER SYSTEM SET default_transaction_read_only = on});
$node->reload;
# the postmaster has read the file, and signalled its children
$node->poll_query_until('postgres', q{SELECT current_setting('default_transaction_read_only') = 'on'})
  or die 'read-only not applied';
produce(100);
# the consumer fails on its batch, or is not running (the scheduler starts
# none in a read-only database)
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'
	  AND query NOT LIKE '%failing: cannot execute % in a read-only transaction'}),
	'read-only: no consumer stores anything');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ev}), $total - 100, 'nothing stored meanwhile');
$node->safe_psql('postgres',
	q{SET default_transaction_read_only = off; ALTER SYSTEM RESET default_transaction_read_only});
$node->reload;
all_stored('writable again');

# ---- the owner's privilege revoked
$node->safe_psql('postgres', q{REVOKE INSERT ON ev FROM ingester});
produce(100);
ok($node->poll_query_until('postgres',
	q{SELECT detail LIKE '%permission denied for table ev' FROM eventkit.health() WHERE component = 'kafka'}),
	'revoked: health() shows the permission error (the consumer inserts as the owner)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ev}), $total - 100, 'nothing stored meanwhile');
$node->safe_psql('postgres', q{GRANT INSERT ON ev TO ingester});
all_stored('granted again');

# ---- the scheduler disabled: the consumer stops, and starts again after
$node->safe_psql('postgres', q{ALTER SYSTEM SET eventkit.scheduler_enabled = off});
$node->reload;
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'}),
	'scheduler disabled: the consumer exits');
like(health(), qr/^warning: no consumer running/, 'health() warns');
produce(100);
$node->safe_psql('postgres', q{ALTER SYSTEM RESET eventkit.scheduler_enabled});
$node->reload;
all_stored('scheduler enabled again');

# ---- SIGTERM is answered at once
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid, 5000)");
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"), '0',
	'pg_terminate_backend: the consumer exited within 5 s');
produce(100);
all_stored('restarted by the scheduler');

# ---- the stream dropped under a running source
$node->safe_psql('postgres', q{SELECT eventkit.drop_stream('ev')});
produce(10);
ok($node->poll_query_until('postgres',
	q{SELECT status = 'error' AND detail LIKE '%the stream of Kafka source "s" no longer exists'
	  FROM eventkit.health() WHERE component = 'kafka'}),
	'stream dropped: the source fails, and says why');
$node->safe_psql('postgres', q{SELECT eventkit.drop_kafka_source('s')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'}),
	'dropping the source ends its consumer, even in the middle of retries');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no process crashed');

$node->stop;
$kafka->stop;
done_testing();
