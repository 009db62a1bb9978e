
# Copyright: eventkit authors
#
# Exactly-once intake from Kafka: 100,000 events and 30 poison messages over
# 3 partitions of a mock cluster, consumed in batches of 500 while the
# consumer is killed (SIGKILL) and the server stopped ('immediate') in the
# middle of a batch, after its events were written and before its offsets
# (a test session holds a SHARE lock on eventkit.kafka_offsets so that the
# batch waits there), and killed once more at no particular point.  Then
# every event is stored exactly once, and never as a duplicate: the offsets
# stored with the events, not dedup, did it; each poison message is in
# quarantine once, with its partition and offset.  Finally the stored
# offsets are reset to 0 while the consumer runs: it consumes everything
# again, and every event comes back as a duplicate (dedup, the second guard).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KafkaMock;

my $N      = 100_000;
my $CHUNKS = 10;
my $P      = 3;

my $kafka = KafkaMock->new(topic => 'events', partitions => $P);
my $boot  = $kafka->bootstrap;

my $node = PostgreSQL::Test::Cluster->new('kafka_eo');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.kafka_batch_messages = 500
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION eventkit;
SELECT eventkit.create_stream('ev');
SELECT eventkit.create_kafka_source('s', 'ev', '$boot', 'events',
	'{"topic.metadata.refresh.interval.ms": 1000}');
});

# produced so far, by partition: next offset; poison offsets
my @next = (0) x $P;
my %poison;    # "partition:offset" => text
my $sent = 0;

# chunk c: events (c-1)*N/CHUNKS+1 .. c*N/CHUNKS over the partitions, then
# one poison message per partition
sub produce_chunk
{
	my ($c) = @_;
	my $per = $N / $CHUNKS;
	my @lines = map {
		my $i = ($c - 1) * $per + $_;
		qq({"type":"track","messageId":"m-$i","userId":"u@{[$i % 97]}","event":"E","properties":{"i":$i}})
	} 1 .. $per;
	$kafka->produce('events', -1, \@lines);
	$next[ $_ % $P ]++ for 0 .. $#lines;
	for my $p (0 .. $P - 1)
	{
		my $text = "poison $c/$p {not json";
		$kafka->produce('events', $p, [$text]);
		$poison{"$p:$next[$p]"} = $text;
		$next[$p]++;
	}
	$sent += @lines + $P;
	return;
}

sub stored_messages
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(sum(messages), 0) FROM eventkit.kafka_sources WHERE name = 's'});
}

sub consumer_pid
{
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'});
}

# Hold the consumer in its next batch after the events, before the offsets.
sub hold_batch
{
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE eventkit.kafka_offsets IN SHARE MODE;');
	ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'eventkit kafka'
		  AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL}),
		'the consumer waits to store its offsets, its events written');
	return $holder;
}

sub wait_server
{
	$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
	return;
}

# ---- 1. SIGKILL of the consumer in the middle of a batch
produce_chunk($_) for 1 .. 3;
ok($node->poll_query_until('postgres', q{SELECT coalesce(sum(messages), 0) >= 2000 FROM eventkit.kafka_sources}),
	'the consumer is consuming');
my $holder = hold_batch();
my $before = stored_messages();
cmp_ok($before, '<', $sent, "mid-stream: $before of $sent messages stored");
kill 'KILL', consumer_pid();
eval { $holder->quit; };
wait_server();
ok($node->poll_query_until('postgres', qq{SELECT coalesce(sum(messages), 0) > $before FROM eventkit.kafka_sources}),
	'after SIGKILL: a new consumer goes on');

# ---- 2. immediate stop of the server in the middle of a batch
produce_chunk($_) for 4 .. 6;
$holder = hold_batch();
$before = stored_messages();
cmp_ok($before, '<', $sent, "mid-stream: $before of $sent messages stored");
$node->stop('immediate');
eval { $holder->quit; };
$node->start;
ok($node->poll_query_until('postgres', qq{SELECT coalesce(sum(messages), 0) > $before FROM eventkit.kafka_sources}),
	'after an immediate stop: the consumer goes on');

# ---- 3. SIGKILL at no particular point while it streams
produce_chunk($_) for 7 .. $CHUNKS;
$node->poll_query_until('postgres',
	qq{SELECT coalesce(sum(messages), 0) >= @{[ $sent - 20000 ]} FROM eventkit.kafka_sources});
kill 'KILL', consumer_pid();
wait_server();

ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = $P AND bool_and(next_offset = high_watermark) AND sum(messages) = $sent
	   FROM eventkit.kafka_sources WHERE name = 's'}),
	"every message consumed ($sent)")
  or diag($node->safe_psql('postgres', 'SELECT * FROM eventkit.kafka_sources'));
is($node->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || next_offset, ' ' ORDER BY partition) FROM eventkit.kafka_sources}),
	join(' ', map { "$_:$next[$_]" } 0 .. $P - 1), 'stored offsets are the ends of the partitions');

is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT message_id) FROM ev}),
	"$N $N", 'every event stored exactly once');
is($node->safe_psql('postgres',
	q{SELECT sum(accepted) || ' ' || sum(duplicates) || ' ' || sum(conflicts) || ' ' || sum(quarantined)
	  FROM eventkit.ingest_batches}),
	"$N 0 0 " . scalar(keys %poison),
	'no event was ever ingested twice: no duplicate for dedup to catch');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM generate_series(1, 100000) i
	  WHERE NOT EXISTS (SELECT 1 FROM ev WHERE message_id = 'm-' || i)}), '0', 'none missing');

my $q = $node->safe_psql('postgres',
	q{SELECT (origin->>'partition') || ':' || (origin->>'offset') || '|' || raw FROM eventkit.quarantine});
my %got = map { split /\|/, $_, 2 } split /\n/, $q;
is_deeply(\%got, \%poison, 'every poison message quarantined once, with its partition and offset');
unlike(slurp_file($node->logfile), qr/PANIC|TRAP/, 'no PANIC or assertion failure');

# ---- 4. the stored offsets reset while the consumer runs: duplicates
my $pid = consumer_pid();
$node->safe_psql('postgres', q{UPDATE eventkit.kafka_offsets SET next_offset = 0});
ok($node->poll_query_until('postgres',
	qq{SELECT bool_and(next_offset = high_watermark) AND sum(messages) = 2 * $sent
	   FROM eventkit.kafka_sources WHERE name = 's'}),
	'the consumer consumed the topic again from the reset offsets');
is(consumer_pid(), $pid, 'the same consumer, seeking to the stored offsets');
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT message_id) FROM ev}),
	"$N $N", 'still every event once');
is($node->safe_psql('postgres',
	q{SELECT sum(accepted) || ' ' || sum(duplicates) || ' ' || sum(quarantined) FROM eventkit.ingest_batches}),
	"$N $N " . 2 * scalar(keys %poison), 'the re-delivered events were duplicates');
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), scalar(keys %poison),
	'a re-delivered poison message is not quarantined twice');

$node->stop;
$kafka->stop;
done_testing();
