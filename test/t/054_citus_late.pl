
# Copyright: eventkit authors
#
# Late events on a distributed stream from concurrent coordinator
# sessions, each needing a partition (the same day in both) that does not
# exist yet.  No call makes a partition of a distributed stream (1.16):
# the events wait in quarantine (out_of_range) until the coordinator's
# maintenance makes their partitions, in a transaction of its own, and the
# re-drive stores them.
#
# 1. One call per transaction: every call answered, none made a partition;
#    after run_maintenance and the re-drive every event is stored, each id
#    once, one new partition per late day.
# 2. Several calls per transaction (one statement over a table of batches,
#    as clients and the tests batch their calls), in crossing orders.  When
#    calls made partitions, one session's late batch made the partition and
#    then claimed ids that the other session's earlier call claimed, while
#    the other waited for the partition: cancelled as a distributed
#    deadlock ("canceling the transaction since it was involved in a
#    distributed deadlock") or a local one.  Every statement succeeds, and
#    after the re-drive each id is stored once and the quarantine is empty.
#    (The late ids are each client's own: see the part.)
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

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");

# the coordinator holds shards too: the partition's shards are made on
# every node, the coordinator's through a connection of Citus's own
$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_node_property('%s', %d, 'shouldhaveshards', true)},
		$coord->host, $coord->port));
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
});
my $partitions = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass};

# --- 1. one call per transaction ---------------------------------------------------
# batch k of client c: 30 events of day now() - (5 + k) days, ids
# overlapping between the two clients (15 of 30)
my $nbatches = 6;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE late (client int, k int, payload text);
INSERT INTO late
SELECT c, k, jsonb_build_object('batch', jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'late-' || k || '-' || g,
			'userId', 'u' || (g % 13), 'event', 'Late',
			'timestamp', to_char(date_trunc('day', now()) - (5 + k) * interval '1 day' + g * interval '1 minute',
								 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ORDER BY g))::text
  FROM generate_series(1, 2) c, generate_series(1, $nbatches) k, generate_series(15 * c - 14, 15 * c + 15) g
 GROUP BY c, k;
});
my $parts_before = $coord->safe_psql('postgres', $partitions);

my ($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	[ $coord, 'SELECT payload FROM late WHERE client = 1 ORDER BY k' ],
	[ $coord, 'SELECT payload FROM late WHERE client = 2 ORDER BY k' ]);
my $distinct = 45 * $nbatches;
is("$calls|$accepted|$conflicts", (2 * $nbatches) . "|0|0",
	'one call per transaction, late events of days without a partition: every call answered, its late events in quarantine')
  or diag($other);
is($coord->safe_psql('postgres', $partitions) - $parts_before, 0, '... no call made a partition');
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
$coord->safe_psql('postgres', q{SELECT eventkit.redrive_quarantine('events')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Late'}),
	"$distinct|$distinct", 'maintenance made their partitions and the re-drive stored them: each id once');
is($coord->safe_psql('postgres', $partitions) - $parts_before,
	$nbatches, '... one new partition per late day');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}), '0', '... none left in quarantine');

# --- 2. several calls per transaction, in crossing orders --------------------------
# round r, client c: a batch of current events (k = 1), 40 ids, 20 of them
# shared with the other client, and a batch of late events of day
# now() - (20 + r) days (k = 2), 40 ids of the client's own; client 1 sends
# the late batch first, client 2 the current one.  (Late ids shared too
# would make the two transactions take the same keys in crossing orders:
# the late events' quarantine rows, unique per event, and the current
# ones' ledger claims.  Such clients deadlock on any stream, as two
# transactions that claim the same ids in crossing orders do on one
# server.)
my $rounds = 8;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE crossing (r int, c int, k int, payload jsonb);
INSERT INTO crossing
SELECT r, c, k, jsonb_agg(jsonb_build_object('type', 'track',
		'messageId', 'x-' || r || '-' || k || '-' || CASE WHEN k = 2 THEN c || '-' ELSE '' END || g,
		'userId', 'u' || g, 'event', 'Crossing',
		'timestamp', to_char(CASE WHEN k = 1 THEN now()
							 ELSE date_trunc('day', now()) - (20 + r) * interval '1 day' + g * interval '1 minute' END,
							 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
  FROM generate_series(1, $rounds) r, generate_series(1, 2) c, generate_series(1, 2) k,
	   generate_series(20 * c - 19, 20 * c + 20) g
 GROUP BY r, c, k;
});
my (@errors, $answered);
for my $r (1 .. $rounds)
{
	my (@runs, @out);
	for my $c (1, 2)
	{
		my $order = $c == 1 ? 'k DESC' : 'k';
		$out[$c] = '';
		push @runs, IPC::Run::start(
			[ 'psql', '-X', '-At', '-h', $coord->host, '-p', $coord->port, '-d', 'postgres', '-c',
			  "SELECT count(*) FROM (SELECT r.* FROM (SELECT payload FROM crossing WHERE r = $r AND c = $c"
				. " ORDER BY $order OFFSET 0) b, LATERAL eventkit.ingest('events', b.payload) r) s" ],
			'>', \$out[$c], '2>', \$out[$c]);
	}
	$_->finish for @runs;
	for my $c (1, 2)
	{
		if ($out[$c] =~ /^2\s*$/) { $answered++; }
		else { push @errors, "round $r, client $c: $out[$c]"; }
	}
}
is($answered, 2 * $rounds,
	'several calls per transaction in crossing orders, late events of a day without a partition: every statement succeeded')
  or diag(join("\n", @errors));
unlike(join("\n", @errors), qr/deadlock/, '... none cancelled on a deadlock');

# the late events are in quarantine: re-driven, stored once
note('late events that waited in quarantine: '
	  . $coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}));
$coord->safe_psql('postgres', q{SELECT eventkit.run_maintenance('events')});
$coord->safe_psql('postgres', q{SELECT eventkit.redrive_quarantine('events')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Crossing'}),
	(140 * $rounds) . '|' . (140 * $rounds),
	'after the re-drive every crossing id is stored exactly once');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine}),
	'0', '... and none is left in quarantine');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_inherits i LEFT JOIN pg_dist_partition d ON d.logicalrelid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass AND d.logicalrelid IS NULL}),
	'0', 'every partition is distributed');

done_testing();
